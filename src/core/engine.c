/* engine.c: the engine's lifecycle and its public calls: recording an event, deciding at a
 * milestone, approval, consent and batch ids.
 *
 * A decision happens only at a configured milestone. It first walks the hard constraints
 * (constraints.c); the first that blocks makes the decision "none" with probability 1.
 * Otherwise one of three modes (holdout, model, rules) draws an action among the variants
 * and the explicit "not now" (choose.c). An approval rule can then hold a chosen prompt for
 * the host. Features are features.c's, the logged records records.c's, what follows a
 * prompt outcomes.c's. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "sbuf.h"

static const char k_code_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no I, O, 0, 1 */
_Static_assert(sizeof k_code_alphabet - 1 == 32, "lw_engine_set_identity picks a letter from 5 bits");

/* ---- names ---------------------------------------------------------------------- */

const char *lw_status_name(lw_status st) {
  static const char *const names[] = {
#define LW_X_STATUS_NAME(e, v, name) name,
      LW_STATUSES(LW_X_STATUS_NAME)
#undef LW_X_STATUS_NAME
  };
  return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

const char *lw_why_name(lw_why why) {
  static const char *const names[LW_WHY_COUNT] = {
#define LW_X_WHY_NAME(e, name) name,
      LW_WHYS(LW_X_WHY_NAME)
#undef LW_X_WHY_NAME
  };
  return (unsigned)why < LW_WHY_COUNT ? names[why] : "unknown";
}

/* ---- lifecycle ------------------------------------------------------------------ */

void lw_engine_refresh_install_hex(lw_engine *e) {
  lw_sbuf sb;
  lw_sb_init(&sb, e->install_hex, sizeof e->install_hex);
  lw_sb_hex(&sb, e->guard.install, sizeof e->guard.install);
}

void lw_engine_fresh_guard(lw_engine *e) {
  memset(&e->guard, 0, sizeof e->guard);
  lw_rng_bytes(&e->rng, e->guard.install, sizeof e->guard.install);
  for (int i = 0; i < LW_CODE_GEN_LEN; i++)
    e->guard.code[i] = k_code_alphabet[lw_rng_below(&e->rng, sizeof k_code_alphabet - 1)];
  e->guard.consent = LW_CONSENT_UNSET;
  if (e->has_identity) lw_engine_set_identity(e, e->identity);
  lw_engine_refresh_install_hex(e);
}

/* The code alphabet has 32 letters, so the low 5 bits of each byte pick one without bias. */
void lw_engine_set_identity(lw_engine *e, const uint8_t bytes[LW_IDENTITY_BYTES]) {
  if (bytes != e->identity) memcpy(e->identity, bytes, LW_IDENTITY_BYTES);
  e->has_identity = 1;
  memcpy(e->guard.install, bytes, sizeof e->guard.install);
  for (int i = 0; i < LW_CODE_GEN_LEN; i++) e->guard.code[i] = k_code_alphabet[bytes[16 + i] & 31];
  e->guard.code[LW_CODE_GEN_LEN] = '\0';
  lw_engine_refresh_install_hex(e);
}

void lw_behaviour_reset(lw_behaviour *b) {
  memset(b, 0, sizeof *b);
  b->nps = -1;
  memset(b->attrs, -1, sizeof b->attrs);
}

lw_status lw_engine_create(const lw_config *cfg, uint64_t seed_lo, uint64_t seed_hi,
                           size_t outbox_bytes, lw_engine **out, char *err, size_t errlen) {
  lw_engine *e = calloc(1, sizeof *e);
  if (!e || lw_outbox_create(outbox_bytes ? outbox_bytes : 65536, &e->outbox) != LW_OK) {
    free(e);
    if (errlen) lw_strlcpy(err, "out of memory", errlen);
    return LW_ERR_NOMEM;
  }
  e->cfg = *cfg;
  lw_rng_seed128(&e->rng, seed_lo, seed_hi);
  /* Batch ids: a second generator seeded from the same seed under another constant, so its
   * draws are independent of the decisions' (a jump of 2^128 steps would guarantee no overlap
   * but costs 170 B of gzip on every page; two splitmix-seeded points of a 2^256 - 1 period
   * meet with negligible probability). */
  lw_rng_seed128(&e->id_rng, seed_lo ^ 0x6a09e667f3bcc908ull, seed_hi);
  /* The same for the tokens of shares reported without caller bytes (lw_engine_outcome). */
  lw_rng_seed128(&e->token_rng, seed_lo ^ 0xbb67ae8584caa73bull, seed_hi);
  lw_engine_reset(e);
  *out = e;
  return LW_OK;
}

void lw_engine_reset(lw_engine *e) {
  lw_engine_fresh_guard(e);
  lw_behaviour_reset(&e->beh);
  lw_outbox_drop(e->outbox, lw_outbox_count(e->outbox), 0);
  memset(&e->last, 0, sizeof e->last);
  memset(&e->approval, 0, sizeof e->approval);
  e->last_token[0] = e->referred_token[0] = '\0';
}

void lw_engine_free(lw_engine *e) {
  if (!e) return;
  lw_outbox_free(e->outbox);
  lw_model_free(e->model);
  free(e);
}

const lw_decision *lw_engine_last_decision(const lw_engine *e) { return &e->last; }
const char *lw_engine_install_key(const lw_engine *e) { return e->install_hex; }
const char *lw_engine_referral_code(const lw_engine *e) { return e->guard.code; }
lw_outbox *lw_engine_outbox(lw_engine *e) { return e->outbox; }
const lw_config *lw_engine_config(const lw_engine *e) { return &e->cfg; }
uint32_t lw_engine_model_id(const lw_engine *e) { return e->model ? e->model->model_id : 0; }
void lw_engine_set_privacy(lw_engine *e, int gpc, int dnt) {
  e->gpc = gpc != 0;
  e->dnt = dnt != 0;
}
void lw_engine_set_busy(lw_engine *e, int busy) { e->busy = busy != 0; }

const char *lw_engine_model_status(const lw_engine *e) {
  return !e->model ? "none" : e->model_ready ? "ready" : "no_data";
}

lw_status lw_engine_set_model(lw_engine *e, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  lw_model *m;
  lw_status st = lw_model_load(buf, len, &m, err, errlen);
  if (st != LW_OK) return st;
  lw_model_free(e->model);
  e->model = m;
  e->model_ready = lw_policy_for_config(m, &e->cfg, &e->pol, e->variant_of);
  return LW_OK;
}

lw_status lw_engine_set_attribute(lw_engine *e, const char *name, const char *value, char *err,
                                  size_t errlen) {
  int a = lw_config_attr_index(&e->cfg, name);
  int v = value ? lw_config_attr_value_index(&e->cfg, a, value) : -1;
  if (a < 0 || (value && v < 0)) {
    lw_sbuf sb;
    lw_sb_init(&sb, err, errlen);
    lw_sb_str(&sb, a < 0 ? "unknown attribute '" : "value not allowed for attribute '");
    lw_sb_str(&sb, name);
    lw_sb_str(&sb, "': see the config's attributes");
    return LW_ERR_INVALID;
  }
  e->beh.attrs[a] = (int8_t)v;
  return LW_OK;
}

/* Whether this account needs the host's approval before a prompt. */
static int needs_approval(const lw_engine *e) {
  int a = e->cfg.approval_attr;
  return a >= 0 && e->beh.attrs[a] >= 0 && (e->cfg.approval_values >> e->beh.attrs[a] & 1u);
}

static void mark_shown(lw_engine *e, const lw_decision *d, int64_t now_ms) {
  lw_guard *g = &e->guard;
  memmove(&g->shown_ms[1], &g->shown_ms[0], sizeof g->shown_ms - sizeof g->shown_ms[0]);
  g->shown_ms[0] = now_ms;
  g->shown_total++;
  lw_strlcpy(g->open_id, d->id, sizeof g->open_id);
  lw_strlcpy(g->open_action, d->action, sizeof g->open_action);
  g->open_since_ms = now_ms;
}

/* ---- public calls ----------------------------------------------------------------- */

static int milestone_fires(const lw_config *cfg, int event, uint32_t count) {
  for (int i = 0; i < cfg->n_milestones; i++) {
    const lw_milestone *m = &cfg->milestones[i];
    if (m->event != event) continue;
    if (count == m->after) return 1;
    if (m->every && count > m->after && (count - m->after) % m->every == 0) return 1;
  }
  return 0;
}

static void decide(lw_engine *e, int idx, int64_t now_ms, int tz, lw_decision *d) {
  const char *event = e->cfg.events[idx];
  uint32_t count = e->beh.ev[idx].count;
  d->decided = 1;
  d->variant = -1;
  uint8_t id[8];
  lw_rng_bytes(&e->rng, id, sizeof id);
  lw_sbuf sb;
  lw_sb_init(&sb, d->id, sizeof d->id);
  lw_sb_hex(&sb, id, sizeof id);

  int persona = lw_engine_build_features(e, now_ms, tz, idx, e->x, e->x_names, LW_MAX_FEATURES, &e->n_x);
  if (persona >= 0) {
    lw_sb_init(&sb, d->segment, sizeof d->segment);
    lw_sb_str(&sb, "persona-");
    lw_sb_i64(&sb, persona);
  }
  d->model_id = e->model ? e->model->model_id : 0;
  d->mode = lw_engine_in_holdout(e) ? LW_MODE_HOLDOUT : e->model_ready ? LW_MODE_MODEL : LW_MODE_RULES;

  if (lw_engine_blocked(e, now_ms, tz, d)) {
    lw_strlcpy(d->action, LW_ACTION_NONE, sizeof d->action);
    d->p_ppm = LW_PPM;
  } else if (d->mode == LW_MODE_MODEL) {
    lw_engine_choose_by_model(e, event, count, d);
  } else {
    lw_engine_choose_by_rules(e, d->mode == LW_MODE_HOLDOUT ? "holdout baseline at "
                                 : e->model ? "rules (model has no data) at " : "",
                              event, count, d);
  }
  if (d->prompt && needs_approval(e)) {
    d->prompt = 0;
    d->why = LW_WHY_APPROVAL;
    lw_strlcpy(e->approval.explain, d->reason, sizeof e->approval.explain);
    lw_sb_init(&sb, d->reason, sizeof d->reason);
    lw_sb_str(&sb, "awaiting approval: ");
    lw_sb_str(&sb, e->cfg.attr_names[e->cfg.approval_attr]);
    lw_sb_char(&sb, ' ');
    lw_sb_str(&sb, e->cfg.attr_values[e->cfg.approval_attr][e->beh.attrs[e->cfg.approval_attr]]);
    e->approval.d = *d;
    e->approval.since_ms = now_ms;
    e->approval.requested = 0;
  }
  if (d->prompt) mark_shown(e, d, now_ms); /* counted now, once, whichever tab renders it */
  lw_engine_log_decision(e, d, now_ms);
  e->last = *d;
}

lw_status lw_engine_track_value(lw_engine *e, const char *event, double value, const char *label,
                                int64_t now_ms, int tz_offset_min, lw_decision *out, char *err,
                                size_t errlen) {
  memset(out, 0, sizeof *out);
  int idx = lw_config_event_index(&e->cfg, event);
  if (idx < 0) {
    lw_sbuf sb;
    lw_sb_init(&sb, err, errlen);
    lw_sb_str(&sb, "unknown event '");
    lw_sb_str(&sb, event);
    lw_sb_str(&sb, "': list it in the config's events");
    return LW_ERR_NOT_FOUND;
  }
  lw_engine_record_event(e, idx, value, label, now_ms);
  if (milestone_fires(&e->cfg, idx, e->beh.ev[idx].count)) decide(e, idx, now_ms, tz_offset_min, out);
  return LW_OK;
}

lw_status lw_engine_track(lw_engine *e, const char *event, int64_t now_ms, int tz_offset_min,
                          lw_decision *out, char *err, size_t errlen) {
  double nan = 0.0 / 0.0;
  return lw_engine_track_value(e, event, nan, NULL, now_ms, tz_offset_min, out, err, errlen);
}

lw_status lw_engine_approve(lw_engine *e, const char *decision_id, int64_t now_ms, int tz_offset_min,
                            lw_decision *out, char *err, size_t errlen) {
  lw_pending_approval *pa = lw_engine_hold(e, decision_id, now_ms);
  if (!pa) {
    lw_strlcpy(err, "no decision with this id is waiting for approval", errlen);
    return LW_ERR_NOT_FOUND;
  }
  lw_decision check = pa->d;
  if (lw_engine_blocked(e, now_ms, tz_offset_min, &check)) {
    lw_strlcpy(err, check.reason, errlen);
    pa->d.decided = 0;
    return LW_ERR_INVALID;
  }
  *out = pa->d;
  out->prompt = 1;
  out->why = LW_WHY_SHOWN;
  lw_sbuf sb;
  lw_sb_init(&sb, out->reason, sizeof out->reason);
  lw_sb_str(&sb, "shown: approved by the host");
  pa->d.decided = 0;
  mark_shown(e, out, now_ms);
  e->last = *out;
  return LW_OK;
}

void lw_engine_set_consent(lw_engine *e, int given, int64_t now_ms) {
  e->guard.consent = given ? LW_CONSENT_GIVEN : LW_CONSENT_REFUSED;
  e->guard.consent_ms = now_ms;
}

void lw_engine_batch_id(lw_engine *e, char out[LW_BATCH_ID_HEX_LEN + 1]) {
  uint8_t raw[LW_BATCH_ID_HEX_LEN / 2];
  lw_rng_bytes(&e->id_rng, raw, sizeof raw);
  lw_sbuf sb;
  lw_sb_init(&sb, out, LW_BATCH_ID_HEX_LEN + 1);
  lw_sb_hex(&sb, raw, sizeof raw);
}

