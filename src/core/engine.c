/* engine.c: recording events, the rules decision, outcomes and logging.
 *
 * A decision happens only at a configured milestone. It first walks the hard
 * constraints in a fixed order (consent, lost history, an open prompt, cooldown,
 * frequency cap, minimum gap, quiet hours); the first that blocks makes the decision
 * "none" with probability 1. Otherwise it draws an action among the variants and the
 * explicit "not now" by their configured weights. Probabilities are exact multiples of
 * one millionth and the draw is an integer in [0, 1e6), so the logged probability is
 * exactly the one the action was chosen with, on every platform. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "sbuf.h"

#define MINUTE_MS 60000LL
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)
#define OPEN_PROMPT_TTL_MS (30 * MINUTE_MS) /* a prompt open longer was left behind */

static const char k_code_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no I, O, 0, 1 */

/* ---- names ---------------------------------------------------------------------- */

const char *lw_status_name(lw_status st) {
  static const char *const names[] = {"ok",    "invalid", "nomem",     "corrupt",
                                      "version", "full",  "not_found", "io"};
  return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

const char *lw_why_name(lw_why why) {
  static const char *const names[] = {"shown", "not_now", "consent", "history_unknown", "open_prompt",
                                      "cooldown", "cap", "gap", "quiet_hours"};
  return (unsigned)why < sizeof names / sizeof names[0] ? names[why] : "unknown";
}

const char *lw_mode_name(lw_mode mode) {
  return mode == LW_MODE_MODEL ? "model" : mode == LW_MODE_HOLDOUT ? "holdout" : "rules";
}

static const char *const k_outcomes[] = {"impression", "share", "copy", "dismiss", "close"};

const char *lw_outcome_name(lw_outcome kind) {
  return (unsigned)kind < 5 ? k_outcomes[kind] : "unknown";
}

int lw_outcome_parse(const char *name) {
  for (int i = 0; i < 5; i++)
    if (strcmp(name, k_outcomes[i]) == 0) return i;
  return -1;
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
  lw_rng_bytes(&e->rng, e->guard.secret, sizeof e->guard.secret);
  for (int i = 0; i < LW_CODE_LEN - 1; i++)
    e->guard.code[i] = k_code_alphabet[lw_rng_below(&e->rng, sizeof k_code_alphabet - 1)];
  e->guard.consent = LW_CONSENT_UNSET;
  lw_engine_refresh_install_hex(e);
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
  lw_rng_seed(&e->rng, seed_lo, seed_hi);
  lw_engine_fresh_guard(e);
  *out = e;
  return LW_OK;
}

void lw_engine_free(lw_engine *e) {
  if (!e) return;
  lw_outbox_free(e->outbox);
  free(e);
}

const lw_decision *lw_engine_last_decision(const lw_engine *e) { return &e->last; }
const char *lw_engine_install_key(const lw_engine *e) { return e->install_hex; }
const char *lw_engine_referral_code(const lw_engine *e) { return e->guard.code; }
lw_outbox *lw_engine_outbox(lw_engine *e) { return e->outbox; }
const lw_config *lw_engine_config(const lw_engine *e) { return &e->cfg; }

/* ---- logging -------------------------------------------------------------------- */

/* Start a record with the fields every kind has. */
static void record_begin(lw_engine *e, lw_sbuf *sb, const char *kind, int64_t now_ms,
                         const char *decision_id) {
  lw_sb_str(sb, "{\"kind\":\"");
  lw_sb_str(sb, kind);
  lw_sb_str(sb, "\",\"t\":");
  lw_sb_i64(sb, now_ms);
  lw_sb_str(sb, ",\"install\":\"");
  lw_sb_str(sb, e->install_hex);
  lw_sb_str(sb, "\",\"decision\":\"");
  lw_sb_str(sb, decision_id);
  lw_sb_char(sb, '"');
}

static void record_push(lw_engine *e, lw_sbuf *sb) {
  lw_sb_char(sb, '}');
  if (!sb->overflow) lw_outbox_push(e->outbox, sb->buf, sb->len);
}

static void log_decision(lw_engine *e, const lw_decision *d, int64_t now_ms) {
  char buf[512];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  record_begin(e, &sb, "decision", now_ms, d->id);
  lw_sb_str(&sb, ",\"action\":\"");
  lw_sb_str(&sb, d->action);
  lw_sb_str(&sb, "\",\"p\":");
  lw_sb_ppm(&sb, d->p_ppm);
  lw_sb_str(&sb, ",\"mode\":\"");
  lw_sb_str(&sb, lw_mode_name(d->mode));
  lw_sb_str(&sb, "\",\"reason\":");
  lw_sb_json_str(&sb, d->reason);
  record_push(e, &sb);
}

/* ---- constraints ---------------------------------------------------------------- */

/* "5d", "3h" or "12m": the time left, rounded up to the largest whole unit. */
static void sb_left(lw_sbuf *sb, int64_t ms) {
  int64_t unit = ms >= DAY_MS ? DAY_MS : ms >= HOUR_MS ? HOUR_MS : MINUTE_MS;
  int64_t n = (ms + unit - 1) / unit;
  lw_sb_i64(sb, n < 1 ? 1 : n);
  lw_sb_str(sb, unit == DAY_MS ? "d left" : unit == HOUR_MS ? "h left" : "m left");
}

static int consent_allows(const lw_engine *e) {
  switch (e->guard.consent) {
    case LW_CONSENT_GIVEN: return 1;
    case LW_CONSENT_REFUSED: return 0;
    case LW_CONSENT_UNKNOWN: return !e->cfg.consent_required && e->cfg.consent_default;
    default: return e->cfg.consent_default;
  }
}

static int64_t cooldown_ms(const lw_config *cfg, uint32_t dismissals) {
  int64_t days = cfg->cooldown_days;
  for (uint32_t i = 1; i < dismissals && days < cfg->cooldown_max_days; i++) days *= cfg->cooldown_growth;
  if (days > cfg->cooldown_max_days) days = cfg->cooldown_max_days;
  return days * DAY_MS;
}

static int local_hour(int64_t now_ms, int tz_offset_min) {
  int64_t local = now_ms + (int64_t)tz_offset_min * MINUTE_MS;
  int64_t h = (local / HOUR_MS) % 24;
  if (local % HOUR_MS < 0) h--; /* floor for times before 1970 */
  return (int)((h % 24 + 24) % 24);
}

/* Returns 1 and fills why/reason when a hard constraint blocks a prompt now. */
static int blocked(const lw_engine *e, int64_t now, int tz, lw_decision *d) {
  const lw_config *cfg = &e->cfg;
  const lw_guard *g = &e->guard;
  lw_sbuf sb;
  lw_sb_init(&sb, d->reason, sizeof d->reason);
  lw_sb_str(&sb, "suppressed: ");

  if (!consent_allows(e)) {
    d->why = LW_WHY_CONSENT;
    lw_sb_str(&sb, "no consent");
    return 1;
  }
  if (now < g->history_unknown_until_ms) {
    d->why = LW_WHY_HISTORY_UNKNOWN;
    lw_sb_str(&sb, "history unknown, ");
    sb_left(&sb, g->history_unknown_until_ms - now);
    return 1;
  }
  if (g->open_id[0] && now - g->open_since_ms < OPEN_PROMPT_TTL_MS) {
    d->why = LW_WHY_OPEN_PROMPT;
    lw_sb_str(&sb, "a prompt is already open");
    return 1;
  }
  if (g->dismiss_total > 0) {
    int64_t until = g->last_dismiss_ms + cooldown_ms(cfg, g->dismiss_total);
    if (now < until) {
      d->why = LW_WHY_COOLDOWN;
      lw_sb_str(&sb, "cooldown ");
      sb_left(&sb, until - now);
      return 1;
    }
  }
  uint32_t in_window = 0;
  int64_t window = (int64_t)cfg->cap_window_days * DAY_MS;
  for (int i = 0; i < LW_SHOWN_RING; i++)
    if (g->shown_ms[i] && now - g->shown_ms[i] < window) in_window++;
  if (in_window >= cfg->cap_max_prompts) {
    d->why = LW_WHY_CAP;
    lw_sb_str(&sb, "frequency cap ");
    lw_sb_u64(&sb, cfg->cap_max_prompts);
    lw_sb_char(&sb, '/');
    lw_sb_u64(&sb, cfg->cap_window_days);
    lw_sb_char(&sb, 'd');
    return 1;
  }
  int64_t gap_until = g->shown_ms[0] + (int64_t)cfg->cap_min_gap_hours * HOUR_MS;
  if (g->shown_ms[0] && now < gap_until) {
    d->why = LW_WHY_GAP;
    lw_sb_str(&sb, "min gap ");
    sb_left(&sb, gap_until - now);
    return 1;
  }
  if (cfg->quiet_start_hour >= 0) {
    int h = local_hour(now, tz), s = cfg->quiet_start_hour, en = cfg->quiet_end_hour;
    int quiet = s < en ? (h >= s && h < en) : (h >= s || h < en);
    if (quiet) {
      d->why = LW_WHY_QUIET_HOURS;
      lw_sb_str(&sb, "quiet hours");
      return 1;
    }
  }
  return 0;
}

/* ---- choosing an action ---------------------------------------------------------- */

static void choose_by_rules(lw_engine *e, const char *event, uint32_t count, lw_decision *d) {
  const lw_config *cfg = &e->cfg;
  uint32_t w[LW_MAX_VARIANTS + 1], ppm[LW_MAX_VARIANTS + 1];
  int n = cfg->n_variants;
  for (int i = 0; i < n; i++) w[i] = cfg->variants[i].weight;
  w[n] = cfg->not_now_weight;
  lw_ppm_split(w, n + 1, ppm);

  uint32_t r = lw_rng_below(&e->rng, LW_PPM), acc = 0;
  int pick = n;
  for (int i = 0; i <= n; i++) {
    acc += ppm[i];
    if (r < acc) {
      pick = i;
      break;
    }
  }
  d->p_ppm = ppm[pick];
  lw_sbuf sb;
  lw_sb_init(&sb, d->reason, sizeof d->reason);
  if (pick == n) {
    d->why = LW_WHY_NOT_NOW;
    lw_strlcpy(d->action, "not_now", sizeof d->action);
    lw_sb_str(&sb, "not now: drawn at milestone ");
  } else {
    d->why = LW_WHY_SHOWN;
    d->prompt = 1;
    d->variant = pick;
    lw_strlcpy(d->action, cfg->variants[pick].id, sizeof d->action);
    lw_sb_str(&sb, "shown: milestone ");
  }
  lw_sb_str(&sb, event);
  lw_sb_str(&sb, "\xC3\x97"); /* U+00D7 multiplication sign */
  lw_sb_u64(&sb, count);
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

lw_status lw_engine_track(lw_engine *e, const char *event, int64_t now_ms, int tz_offset_min,
                          lw_decision *out, char *err, size_t errlen) {
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
  lw_event_state *ev = &e->beh.ev[idx];
  if (ev->count < UINT32_MAX) ev->count++;
  if (!ev->first_ms) ev->first_ms = now_ms;
  ev->last_ms = now_ms;
  if (!e->beh.first_seen_ms) e->beh.first_seen_ms = now_ms;

  if (!milestone_fires(&e->cfg, idx, ev->count)) return LW_OK;

  lw_decision *d = out;
  d->decided = 1;
  d->variant = -1;
  d->mode = LW_MODE_RULES;
  uint8_t id[8];
  lw_rng_bytes(&e->rng, id, sizeof id);
  lw_sbuf sb;
  lw_sb_init(&sb, d->id, sizeof d->id);
  lw_sb_hex(&sb, id, sizeof id);

  if (blocked(e, now_ms, tz_offset_min, d)) {
    lw_strlcpy(d->action, "none", sizeof d->action);
    d->p_ppm = LW_PPM;
  } else {
    choose_by_rules(e, event, ev->count, d);
  }
  if (d->prompt) {
    /* Counted now, once, whichever tab renders it. */
    lw_guard *g = &e->guard;
    memmove(&g->shown_ms[1], &g->shown_ms[0], sizeof g->shown_ms - sizeof g->shown_ms[0]);
    g->shown_ms[0] = now_ms;
    g->shown_total++;
    lw_strlcpy(g->open_id, d->id, sizeof g->open_id);
    lw_strlcpy(g->open_action, d->action, sizeof g->open_action);
    g->open_since_ms = now_ms;
  }
  log_decision(e, d, now_ms);
  e->last = *d;
  return LW_OK;
}

static int is_hex_id(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
  return n == LW_ID_HEX - 1;
}

lw_status lw_engine_outcome(lw_engine *e, const char *decision_id, lw_outcome kind, int64_t now_ms,
                            char *err, size_t errlen) {
  if (!is_hex_id(decision_id) || (unsigned)kind > LW_OUTCOME_CLOSE) {
    lw_strlcpy(err, is_hex_id(decision_id) ? "unknown outcome kind"
                                           : "decision id must be 16 lowercase hex characters",
               errlen);
    return LW_ERR_INVALID;
  }
  lw_guard *g = &e->guard;
  int is_open = strcmp(g->open_id, decision_id) == 0;
  if (kind == LW_OUTCOME_DISMISS) {
    g->dismiss_total++;
    g->last_dismiss_ms = now_ms;
  } else if (kind == LW_OUTCOME_SHARE || kind == LW_OUTCOME_COPY) {
    g->share_total++;
    g->last_share_ms = now_ms;
  }
  if (kind == LW_OUTCOME_CLOSE) {
    if (is_open) g->open_id[0] = '\0';
    return LW_OK; /* local only: closing is not an outcome the server learns from */
  }
  /* Every outcome but an impression ends the prompt on screen. */
  int closes = is_open && kind != LW_OUTCOME_IMPRESSION;
  char buf[320];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  record_begin(e, &sb, lw_outcome_name(kind), now_ms, decision_id);
  if (is_open) {
    lw_sb_str(&sb, ",\"action\":\"");
    lw_sb_str(&sb, g->open_action);
    lw_sb_char(&sb, '"');
  }
  if (kind == LW_OUTCOME_SHARE || kind == LW_OUTCOME_COPY) {
    lw_sb_str(&sb, ",\"code\":\"");
    lw_sb_str(&sb, g->code);
    lw_sb_char(&sb, '"');
  }
  record_push(e, &sb);
  if (closes) g->open_id[0] = '\0';
  return LW_OK;
}

void lw_engine_set_consent(lw_engine *e, int given, int64_t now_ms) {
  e->guard.consent = given ? LW_CONSENT_GIVEN : LW_CONSENT_REFUSED;
  e->guard.consent_ms = now_ms;
}

lw_status lw_engine_take_batch(lw_engine *e, const char *write_key, int64_t now_ms, size_t max_bytes,
                               char *buf, size_t cap, size_t *len, size_t *n_events) {
  uint8_t raw[16];
  char id[LW_KEY_HEX];
  lw_rng_bytes(&e->rng, raw, sizeof raw);
  lw_sbuf sb;
  lw_sb_init(&sb, id, sizeof id);
  lw_sb_hex(&sb, raw, sizeof raw);
  return lw_outbox_take_batch(e->outbox, id, write_key, now_ms, max_bytes, buf, cap, len, n_events);
}

size_t lw_decision_to_json(const lw_decision *d, char *buf, size_t cap) {
  lw_sbuf sb;
  lw_sb_init(&sb, buf, cap);
  if (!d->decided) {
    lw_sb_str(&sb, "null");
    return sb.len;
  }
  lw_sb_str(&sb, "{\"id\":\"");
  lw_sb_str(&sb, d->id);
  lw_sb_str(&sb, d->prompt ? "\",\"prompt\":true,\"action\":" : "\",\"prompt\":false,\"action\":");
  lw_sb_json_str(&sb, d->action);
  lw_sb_str(&sb, ",\"variant\":");
  lw_sb_i64(&sb, d->variant);
  lw_sb_str(&sb, ",\"p\":");
  lw_sb_ppm(&sb, d->p_ppm);
  lw_sb_str(&sb, ",\"mode\":\"");
  lw_sb_str(&sb, lw_mode_name(d->mode));
  lw_sb_str(&sb, "\",\"code\":\"");
  lw_sb_str(&sb, lw_why_name(d->why));
  lw_sb_str(&sb, "\",\"reason\":");
  lw_sb_json_str(&sb, d->reason);
  lw_sb_char(&sb, '}');
  return sb.len;
}
