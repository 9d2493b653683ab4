/* snapshot.c: saving and restoring the engine state (format: models/FORMAT.md).
 *
 * Version 3 (current) is a header and three sections, each with its own CRC-32, so
 * damage to one section costs only that section (version 2 is the same layout, read alike;
 * 3 says that a zeroed install key and referral code mean no identity was kept: saved while not
 * collecting):
 *   "LWSN" u16 version=2 u16 sections
 *   { u8 tag, u8 0, u16 0, u32 length, payload[length], u32 crc32(payload) } ...
 *   tag 1 = guard (consent, prompt history, install key, referral code)
 *   tag 2 = behaviour (event counters, keyed by event-name hash)
 *   tag 3 = outbox (unsent records, newline-terminated JSON)
 *   tag 4 = approval hold (optional: a decision whose approval request was sent, waiting for
 *           the server's answer; readers before it skip the section, as they skip any tag they
 *           do not know, and hold nothing)
 * Version 1 (the first prototype) was one flat record with a single CRC; it is migrated.
 * All integers are little-endian. */
#include <stddef.h>
#include <string.h>

#include "bytes.h"
#include "engine_internal.h"
#include "loopwise/model.h"
#include "sbuf.h"

#define SNAP_VERSION 3

enum { TAG_GUARD = 1, TAG_BEHAVIOUR = 2, TAG_OUTBOX = 3, TAG_HOLD = 4 };

/* ---- sections ------------------------------------------------------------------- */

/* The guard and behaviour sections are their structs' fields in a fixed order, each
 * written as its in-memory bytes. Every platform Loopwise runs on (x86-64, arm64,
 * WebAssembly) is little-endian with IEEE doubles, which is what the format specifies;
 * a big-endian build stops here rather than write snapshots no one else can read. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapshots are little-endian: add byte swapping for this platform"
#endif

typedef struct {
  uint16_t off, size;
} field_t;
#define F(type, member) {(uint16_t)offsetof(type, member), (uint16_t)sizeof(((type *)0)->member)}

static const field_t k_guard[] = {
    F(lw_guard, install),       F(lw_guard, code),          F(lw_guard, referred_by),
    F(lw_guard, referee_converted), F(lw_guard, consent),   F(lw_guard, consent_ms),
    F(lw_guard, shown_total),   F(lw_guard, dismiss_total), F(lw_guard, share_total),
    F(lw_guard, shown_ms),      F(lw_guard, last_dismiss_ms), F(lw_guard, last_share_ms),
    F(lw_guard, open_id),       F(lw_guard, open_action),   F(lw_guard, open_since_ms),
    F(lw_guard, history_unknown_until_ms)};
static const field_t k_behaviour[] = {
    F(lw_behaviour, first_seen_ms), F(lw_behaviour, last_activity_ms), F(lw_behaviour, session_start_ms),
    F(lw_behaviour, sessions),      F(lw_behaviour, act),              F(lw_behaviour, feature_bits),
    F(lw_behaviour, nps),           F(lw_behaviour, nps_ms),           F(lw_behaviour, support),
    F(lw_behaviour, support_ms)};
static const field_t k_event[] = {F(lw_event_state, count), F(lw_event_state, first_ms),
                                  F(lw_event_state, last_ms), F(lw_event_state, decayed)};
#define N(table) (sizeof table / sizeof table[0])

static void w_fields(lw_wr *w, const void *base, const field_t *f, size_t n) {
  for (size_t i = 0; i < n; i++) lw_wr_bytes(w, (const uint8_t *)base + f[i].off, f[i].size);
}
static void r_fields(lw_rd *r, void *base, const field_t *f, size_t n) {
  for (size_t i = 0; i < n; i++) lw_rd_bytes(r, (uint8_t *)base + f[i].off, f[i].size);
}

static int terminated(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }
static int finite(double v) { return v == v && v - v == 0.0; }

static int read_guard(lw_rd *r, lw_guard *g) {
  memset(g, 0, sizeof *g);
  r_fields(r, g, k_guard, N(k_guard));
  return !r->bad && r->off == r->len && g->consent <= LW_CONSENT_UNKNOWN &&
         terminated(g->code, sizeof g->code) && terminated(g->referred_by, sizeof g->referred_by) &&
         terminated(g->open_id, sizeof g->open_id) && terminated(g->open_action, sizeof g->open_action);
}

static void write_behaviour(lw_wr *w, const lw_engine *e) {
  const lw_behaviour *b = &e->beh;
  const lw_config *cfg = &e->cfg;
  w_fields(w, b, k_behaviour, N(k_behaviour));
  /* attributes by name and value hash, so config edits keep what still exists */
  lw_wr_u(w, 1, (uint8_t)cfg->n_attributes);
  for (int a = 0; a < cfg->n_attributes; a++) {
    lw_wr_u(w, 4, lw_fnv1a(cfg->attr_names[a]));
    lw_wr_u(w, 4, b->attrs[a] >= 0 ? lw_fnv1a(cfg->attr_values[a][b->attrs[a]]) : 0);
  }
  lw_wr_u(w, 2, (uint16_t)cfg->n_events);
  for (int i = 0; i < cfg->n_events; i++) {
    lw_wr_u(w, 4, lw_name_hash(cfg->events[i]));
    w_fields(w, &b->ev[i], k_event, N(k_event));
  }
}

/* Events are matched by name hash, so adding or reordering events in the config keeps
 * the counters of the events that stay; counters of removed events are dropped. */
static int read_behaviour(lw_rd *r, const lw_config *cfg, lw_behaviour *b) {
  lw_behaviour_reset(b);
  r_fields(r, b, k_behaviour, N(k_behaviour));
  int ok = b->nps >= -1 && b->nps <= 10 && b->support >= 0 && b->support <= 5 && finite(b->act[0]) &&
           finite(b->act[1]);
  unsigned n_attr = (uint8_t)lw_rd_u(r, 1);
  for (unsigned i = 0; i < n_attr && !r->bad; i++) {
    uint32_t name = (uint32_t)lw_rd_u(r, 4), value = (uint32_t)lw_rd_u(r, 4);
    for (int a = 0; a < cfg->n_attributes; a++) {
      if (lw_fnv1a(cfg->attr_names[a]) != name) continue;
      for (int v = 0; v < cfg->attr_n_values[a]; v++)
        if (value && lw_fnv1a(cfg->attr_values[a][v]) == value) b->attrs[a] = (int8_t)v;
    }
  }
  unsigned n = (uint16_t)lw_rd_u(r, 2);
  for (unsigned i = 0; i < n && !r->bad; i++) {
    uint32_t h = (uint32_t)lw_rd_u(r, 4);
    lw_event_state ev;
    r_fields(r, &ev, k_event, N(k_event));
    for (int k = 0; k < LW_HALF_LIVES; k++) ok &= finite(ev.decayed[k]);
    for (int j = 0; j < cfg->n_events; j++)
      if (lw_name_hash(cfg->events[j]) == h) b->ev[j] = ev;
  }
  return ok && !r->bad && r->off == r->len;
}

/* The approval hold: what lw_engine_approve needs of the held decision (its strings fixed-size,
 * NUL-padded: the decision was zeroed before it was filled), and since when it is held. */
static void write_hold(lw_wr *w, const lw_pending_approval *pa) {
  lw_wr_bytes(w, pa->d.id, sizeof pa->d.id);
  lw_wr_bytes(w, pa->d.action, sizeof pa->d.action);
  lw_wr_bytes(w, pa->d.segment, sizeof pa->d.segment);
  lw_wr_u(w, 4, (uint32_t)pa->d.variant);
  lw_wr_u(w, 4, pa->d.p_ppm);
  lw_wr_u(w, 1, (uint8_t)pa->d.mode);
  lw_wr_u(w, 4, pa->d.model_id);
  lw_wr_u(w, 8, (uint64_t)pa->since_ms);
}

static int read_hold(lw_rd *r, const lw_config *cfg, lw_pending_approval *pa) {
  memset(pa, 0, sizeof *pa);
  lw_decision *d = &pa->d;
  lw_rd_bytes(r, d->id, sizeof d->id);
  lw_rd_bytes(r, d->action, sizeof d->action);
  lw_rd_bytes(r, d->segment, sizeof d->segment);
  d->variant = (int32_t)(uint32_t)lw_rd_u(r, 4);
  d->p_ppm = (uint32_t)lw_rd_u(r, 4);
  d->mode = (lw_mode)lw_rd_u(r, 1);
  d->model_id = (uint32_t)lw_rd_u(r, 4);
  pa->since_ms = (int64_t)lw_rd_u(r, 8);
  d->decided = 1;
  d->why = LW_WHY_APPROVAL;
  pa->requested = 1;
  return !r->bad && r->off == r->len && terminated(d->id, sizeof d->id) && terminated(d->action, sizeof d->action) &&
         terminated(d->segment, sizeof d->segment) && d->variant >= 0 && d->variant < cfg->n_variants &&
         d->p_ppm <= LW_PPM && (unsigned)d->mode < LW_MODE_COUNT;
}

size_t lw_engine_snapshot(const lw_engine *e, uint8_t *buf, size_t cap) {
  lw_wr w = {buf, cap, 0};
  int hold = e->approval.d.decided && e->approval.requested && lw_engine_collects(e);
  lw_wr_bytes(&w, "LWSN", 4);
  lw_wr_u(&w, 2, SNAP_VERSION);
  lw_wr_u(&w, 2, hold ? 4 : 3);
  for (int tag = TAG_GUARD; tag <= (hold ? TAG_HOLD : TAG_OUTBOX); tag++) {
    lw_wr_u(&w, 1, (uint8_t)tag);
    lw_wr_u(&w, 1, 0);
    lw_wr_u(&w, 2, 0);
    size_t len_at = w.len;
    lw_wr_u(&w, 4, 0); /* patched below */
    size_t start = w.len;
    if (tag == TAG_GUARD) {
      w_fields(&w, &e->guard, k_guard, N(k_guard));
      /* While the engine does not collect, the device keeps no identity: the install key and
       * referral code, the section's first bytes (k_guard starts with them), are written as
       * zeros, and restore then keeps the engine's own. */
      if (!lw_engine_collects(e) && w.len <= cap) memset(buf + start, 0, sizeof e->guard.install + sizeof e->guard.code);
    } else if (tag == TAG_BEHAVIOUR) {
      write_behaviour(&w, e);
    } else if (tag == TAG_HOLD) {
      write_hold(&w, &e->approval);
    } else {
      size_t n;
      const char *data = lw_outbox_data(e->outbox, &n);
      lw_wr_bytes(&w, data, n);
    }
    size_t n = w.len - start;
    if (w.len <= cap) {
      lw_wr patch = {buf + len_at, 4, 0};
      lw_wr_u(&patch, 4, (uint32_t)n);
    }
    lw_wr_u(&w, 4, w.len <= cap ? lw_crc32(0, buf + start, n) : 0);
  }
  return w.len;
}

/* ---- restore ---------------------------------------------------------------------- */

/* The conservative stand-in for a lost guard section: a new identity, consent unknown,
 * and no prompt for one cooldown period. */
static void lose_guard(lw_engine *e, int64_t now_ms) {
  lw_engine_fresh_guard(e);
  e->guard.consent = LW_CONSENT_UNKNOWN;
  e->guard.history_unknown_until_ms = now_ms + (int64_t)e->cfg.cooldown_days * LW_DAY_MS;
}

static lw_status damaged(lw_sbuf *sb, const char *what) {
  if (sb->len) lw_sb_str(sb, "; ");
  lw_sb_str(sb, what);
  return LW_ERR_CORRUPT;
}

/* Version 1: "LWSN" u16 1, install[16], consent u8, shown_total u32, last_shown i64,
 * dismiss_total u32, last_dismiss i64, u16 n, {hash u32, count u32} * n, crc32 of all
 * bytes after the 6-byte header. */
static lw_status migrate_v1(lw_engine *e, lw_rd *r, int64_t now_ms, lw_sbuf *msg) {
  if (r->len < 10 || lw_crc32(0, r->p + 6, r->len - 10) !=
                         (uint32_t)(r->p[r->len - 4] | r->p[r->len - 3] << 8 |
                                    r->p[r->len - 2] << 16 | (uint32_t)r->p[r->len - 1] << 24)) {
    lose_guard(e, now_ms);
    lw_behaviour_reset(&e->beh);
    return damaged(msg, "version 1 snapshot failed its checksum");
  }
  r->len -= 4;
  lw_guard g;
  memset(&g, 0, sizeof g);
  lw_rd_bytes(r, g.install, 16);
  g.consent = (uint8_t)lw_rd_u(r, 1);
  g.shown_total = (uint32_t)lw_rd_u(r, 4);
  g.shown_ms[0] = (int64_t)lw_rd_u(r, 8);
  g.dismiss_total = (uint32_t)lw_rd_u(r, 4);
  g.last_dismiss_ms = (int64_t)lw_rd_u(r, 8);
  lw_behaviour b;
  lw_behaviour_reset(&b);
  unsigned n = (uint16_t)lw_rd_u(r, 2);
  for (unsigned i = 0; i < n && !r->bad; i++) {
    uint32_t h = (uint32_t)lw_rd_u(r, 4), count = (uint32_t)lw_rd_u(r, 4);
    for (int j = 0; j < e->cfg.n_events; j++)
      if (lw_name_hash(e->cfg.events[j]) == h) b.ev[j].count = count;
  }
  if (r->bad || r->off != r->len || g.consent > LW_CONSENT_REFUSED) {
    lose_guard(e, now_ms);
    lw_behaviour_reset(&e->beh);
    return damaged(msg, "version 1 snapshot is malformed");
  }
  /* v1 had no referral code: keep the fresh one made at create. */
  memcpy(g.code, e->guard.code, sizeof g.code);
  e->guard = g;
  e->beh = b;
  lw_engine_refresh_install_hex(e);
  return LW_OK;
}

lw_status lw_engine_restore(lw_engine *e, const uint8_t *buf, size_t len, int64_t now_ms, char *err,
                            size_t errlen) {
  lw_sbuf msg;
  lw_sb_init(&msg, err, errlen);
  if (!buf || len == 0) return LW_OK; /* no snapshot: a new user, keep the fresh state */

  lw_rd r = {buf, len, 0, 0};
  uint8_t magic[4] = {0};
  lw_rd_bytes(&r, magic, 4);
  uint16_t version = (uint16_t)lw_rd_u(&r, 2);
  if (r.bad || memcmp(magic, "LWSN", 4) != 0) {
    lose_guard(e, now_ms);
    lw_behaviour_reset(&e->beh);
    lw_outbox_load(e->outbox, "", 0);
    return damaged(&msg, "not a Loopwise snapshot: consent and history treated as unknown");
  }
  if (version == 1) return migrate_v1(e, &r, now_ms, &msg);
  if (version != 2 && version != SNAP_VERSION) {
    lose_guard(e, now_ms);
    lw_behaviour_reset(&e->beh);
    lw_outbox_load(e->outbox, "", 0);
    lw_sb_str(&msg, "snapshot version ");
    lw_sb_u64(&msg, version);
    lw_sb_str(&msg, " is unknown to this runtime (reads 1 to 3): consent and history treated as unknown");
    return LW_ERR_VERSION;
  }

  int have[5] = {0, 0, 0, 0, 0};
  /* A hold whose request was sent lives in the snapshot: the stored one (or none) replaces it.
   * An in-page hold (lw_engine_approve only) is not saved and stays as it was. */
  if (e->approval.requested) memset(&e->approval, 0, sizeof e->approval);
  lw_status st = LW_OK;
  unsigned sections = (uint16_t)lw_rd_u(&r, 2);
  for (unsigned s = 0; s < sections && !r.bad; s++) {
    uint8_t tag = (uint8_t)lw_rd_u(&r, 1);
    lw_rd_take(&r, 3);
    uint32_t n = (uint32_t)lw_rd_u(&r, 4);
    const uint8_t *payload = lw_rd_take(&r, n);
    uint32_t crc = (uint32_t)lw_rd_u(&r, 4);
    if (r.bad) break;
    if (tag < TAG_GUARD || tag > TAG_HOLD || have[tag] || lw_crc32(0, payload, n) != crc)
      continue; /* a damaged section counts as missing */
    lw_rd sec = {payload, n, 0, 0};
    if (tag == TAG_GUARD) {
      lw_guard g;
      if (read_guard(&sec, &g)) {
        if (!g.code[0]) { /* saved while not collecting: no identity (a kept one has a code) */
          memcpy(g.install, e->guard.install, sizeof g.install);
          memcpy(g.code, e->guard.code, sizeof g.code);
        }
        e->guard = g;
        lw_engine_refresh_install_hex(e);
        have[tag] = 1;
      }
    } else if (tag == TAG_BEHAVIOUR) {
      lw_behaviour b;
      if (read_behaviour(&sec, &e->cfg, &b)) {
        e->beh = b;
        have[tag] = 1;
      }
    } else if (tag == TAG_HOLD) {
      lw_pending_approval pa;
      if (read_hold(&sec, &e->cfg, &pa)) { /* a damaged hold is dropped: the prompt stays unshown */
        e->approval = pa;
        have[tag] = 1;
      }
    } else if (lw_outbox_load(e->outbox, (const char *)payload, n) == LW_OK) {
      have[tag] = 1;
    }
  }
  if (!have[TAG_GUARD]) {
    lose_guard(e, now_ms);
    st = damaged(&msg, "guard section damaged: consent and history treated as unknown");
  }
  if (!have[TAG_BEHAVIOUR]) {
    lw_behaviour_reset(&e->beh);
    st = damaged(&msg, "behaviour section damaged: counters reset");
  }
  if (!have[TAG_OUTBOX]) {
    lw_outbox_load(e->outbox, "", 0);
    st = damaged(&msg, "outbox section damaged: unsent records lost");
  }
  return st;
}
