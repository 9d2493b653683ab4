/* engine.c: recording events, deciding, outcomes and logging.
 *
 * A decision happens only at a configured milestone. It first walks the hard
 * constraints in a fixed order (consent, privacy signals, lost history, an open prompt,
 * cooldown, frequency cap, minimum gap, quiet hours, session age, busy); the first that
 * blocks makes the decision "none" with probability 1. Otherwise one of three modes
 * draws an action among the variants and the explicit "not now":
 *   holdout  a configured fraction of installs (by install key) always gets the rules;
 *   model    a loaded model with enough data: softmax over expected net value, with a floor;
 *   rules    otherwise (cold start): the configured weights.
 * Probabilities are exact multiples of one millionth and the draw is an integer in
 * [0, 1e6), so the logged probability is exactly the one the action was chosen with, on
 * every platform. An approval rule can then hold a chosen prompt for the host. */
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
  lw_rng_seed(&e->rng, seed_lo, seed_hi);
  e->id_rng = e->rng;
  lw_rng_jump(&e->id_rng); /* 2^128 draws ahead: a stream that never meets the decisions' */
  lw_engine_fresh_guard(e);
  lw_behaviour_reset(&e->beh);
  *out = e;
  return LW_OK;
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

lw_status lw_engine_set_model(lw_engine *e, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  lw_model *m;
  lw_status st = lw_model_load(buf, len, &m, err, errlen);
  if (st != LW_OK) return st;
  lw_model_free(e->model);
  e->model = m;
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

/* ---- logging -------------------------------------------------------------------- */

/* Start a record with the fields every kind has (decision_id may be NULL). */
static void record_begin(lw_engine *e, lw_sbuf *sb, const char *kind, int64_t now_ms,
                         const char *decision_id) {
  lw_sb_str(sb, "{\"kind\":\"");
  lw_sb_str(sb, kind);
  lw_sb_str(sb, "\",\"t\":");
  lw_sb_i64(sb, now_ms);
  lw_sb_str(sb, ",\"install\":\"");
  lw_sb_str(sb, e->install_hex);
  lw_sb_char(sb, '"');
  if (decision_id) {
    lw_sb_str(sb, ",\"decision\":\"");
    lw_sb_str(sb, decision_id);
    lw_sb_char(sb, '"');
  }
}

static void record_push(lw_engine *e, lw_sbuf *sb) {
  lw_sb_char(sb, '}');
  if (!sb->overflow) lw_outbox_push(e->outbox, sb->buf, sb->len);
}

/* A fixed-point feature value q/256 as its exact decimal ("-1.5", "0.00390625"). */
static void sb_fx(lw_sbuf *sb, int32_t q) {
  uint32_t a = q < 0 ? (uint32_t)0 - (uint32_t)q : (uint32_t)q;
  if (q < 0) lw_sb_char(sb, '-');
  lw_sb_u64(sb, a >> 8);
  uint32_t frac = (a & 255u) * 390625u; /* /256 = ×390625 / 10^8 */
  if (!frac) return;
  char digits[8];
  for (int i = 7; i >= 0; i--) {
    digits[i] = (char)('0' + frac % 10);
    frac /= 10;
  }
  int n = 8;
  while (digits[n - 1] == '0') n--;
  lw_sb_char(sb, '.');
  lw_sb_mem(sb, digits, (size_t)n);
}

static void sb_model(lw_sbuf *sb, uint32_t id) {
  lw_sb_str(sb, ",\"model\":\"m");
  lw_sb_u64(sb, id);
  lw_sb_char(sb, '"');
}

/* The fields a decision has both in its wire record and in its JSON for the host:
 * ,"action":…,"p":…,"mode":…,"reason":…[,"model":…][,"segment":…] */
static void sb_decision_fields(lw_sbuf *sb, const lw_decision *d) {
  lw_sb_str(sb, ",\"action\":");
  lw_sb_json_str(sb, d->action);
  lw_sb_str(sb, ",\"p\":");
  lw_sb_ppm(sb, d->p_ppm);
  lw_sb_str(sb, ",\"mode\":\"");
  lw_sb_str(sb, lw_mode_name(d->mode));
  lw_sb_str(sb, "\",\"reason\":");
  lw_sb_json_str(sb, d->reason);
  if (d->model_id) sb_model(sb, d->model_id);
  if (d->segment[0]) {
    lw_sb_str(sb, ",\"segment\":");
    lw_sb_json_str(sb, d->segment);
  }
}

static void log_decision(lw_engine *e, const lw_decision *d, int64_t now_ms) {
  char buf[4608];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  record_begin(e, &sb, lw_kind_name(LW_KIND_DECISION), now_ms, d->id);
  sb_decision_fields(&sb, d);
  lw_sb_str(&sb, ",\"x\":[");
  for (int i = 0; i < e->n_x && i < 256; i++) {
    if (i) lw_sb_char(&sb, ',');
    lw_sb_char(&sb, '[');
    lw_sb_u64(&sb, e->x[i].hash);
    lw_sb_char(&sb, ',');
    sb_fx(&sb, e->x[i].q);
    lw_sb_char(&sb, ']');
  }
  lw_sb_char(&sb, ']');
  record_push(e, &sb);
}

/* ---- recording -------------------------------------------------------------------- */

static const double k_half_life_days[LW_HALF_LIVES] = {1, 7, 30};

/* 2^(-dt / half_life) */
static double decay(int64_t dt_ms, double half_life_days) {
  if (dt_ms <= 0) return 1.0;
  return lw_exp(-(double)dt_ms / (half_life_days * (double)DAY_MS) * 0.6931471805599453);
}

static void record_event(lw_engine *e, int idx, double value, const char *label, int64_t now) {
  lw_behaviour *b = &e->beh;
  lw_event_state *ev = &b->ev[idx];
  for (int h = 0; h < LW_HALF_LIVES; h++)
    ev->decayed[h] = ev->decayed[h] * decay(now - ev->last_ms, k_half_life_days[h]) + 1.0;
  if (ev->count < UINT32_MAX) ev->count++;
  if (!ev->first_ms) ev->first_ms = now;
  ev->last_ms = now;

  b->act[0] = b->act[0] * decay(now - b->last_activity_ms, 7) + 1.0;
  b->act[1] = b->act[1] * decay(now - b->last_activity_ms, 30) + 1.0;
  if (!b->first_seen_ms) b->first_seen_ms = now;
  if (!b->last_activity_ms || now - b->last_activity_ms > 30 * MINUTE_MS) { /* a new session */
    b->sessions++;
    b->session_start_ms = now;
  }
  b->last_activity_ms = now;

  const char *name = e->cfg.events[idx];
  if (label && *label) b->feature_bits |= 1ull << (lw_fnv1a(label) & 63);
  if (value == value) {
    if (strcmp(name, "nps_answered") == 0 && value >= 0 && value <= 10) {
      b->nps = (int32_t)value;
      b->nps_ms = now;
    } else if (strcmp(name, "support_rated") == 0 && value >= 1 && value <= 5) {
      b->support = (int32_t)value;
      b->support_ms = now;
    }
  }
}

/* ---- features ----------------------------------------------------------------------- */

typedef struct {
  lw_engine *e;
  lw_feature *x;
  char (*names)[LW_FEATURE_NAME_LEN + 1];
  int n, cap;
} fx_t;

/* Add feature "a^b^c" (parts may be NULL) with value v; zero values are left out. */
static void add(fx_t *f, const char *a, const char *b, const char *c, double v) {
  int32_t q = lw_fx(v);
  if (q == 0 || f->n >= f->cap) return;
  char name[LW_FEATURE_NAME_LEN + 1];
  lw_sbuf sb;
  lw_sb_init(&sb, name, sizeof name);
  lw_sb_str(&sb, a);
  if (b) {
    lw_sb_char(&sb, '^');
    lw_sb_str(&sb, b);
  }
  if (c) {
    lw_sb_char(&sb, '^');
    lw_sb_str(&sb, c);
  }
  f->x[f->n].hash = lw_fnv1a(name);
  f->x[f->n].q = q;
  if (f->names) lw_strlcpy(f->names[f->n], name, LW_FEATURE_NAME_LEN + 1);
  f->n++;
}

static void add_int(fx_t *f, const char *a, int v, double value) {
  char num[12];
  lw_sbuf sb;
  lw_sb_init(&sb, num, sizeof num);
  lw_sb_i64(&sb, v);
  add(f, a, num, NULL, value);
}

static double fabs_(double v) { return v < 0 ? -v : v; }

static double days(int64_t ms) { return ms > 0 ? (double)ms / (double)DAY_MS : 0.0; }

/* The persona dimensions of models/FORMAT.md, from the features already built. */
static void persona_dims(const fx_t *f, double dims[LW_MODEL_PERSONA_DIMS]) {
  static const char *const names[LW_MODEL_PERSONA_DIMS] = {"act^d7", "act^d30", "tenure", "sessions",
                                                          "features", "shown", "dismissed", "shared"};
  for (int i = 0; i < LW_MODEL_PERSONA_DIMS; i++) {
    uint32_t h = lw_fnv1a(names[i]);
    dims[i] = 0.0;
    for (int j = 0; j < f->n; j++)
      if (f->x[j].hash == h) dims[i] = (double)f->x[j].q / LW_FX_ONE;
  }
}

/* Builds the context features; returns the persona index (-1 without a model's personas). */
static int build_features(fx_t *f, int64_t now, int tz, int milestone_event) {
  lw_engine *e = f->e;
  const lw_behaviour *b = &e->beh;
  const lw_guard *g = &e->guard;
  static const char *const hl[LW_HALF_LIVES] = {"d1", "d7", "d30"};
  add(f, "bias", NULL, NULL, 1.0);
  for (int i = 0; i < e->cfg.n_events; i++) {
    const lw_event_state *ev = &b->ev[i];
    if (!ev->count) continue;
    for (int h = 0; h < LW_HALF_LIVES; h++)
      add(f, "ev", e->cfg.events[i], hl[h],
          lw_ln1p(ev->decayed[h] * decay(now - ev->last_ms, k_half_life_days[h])));
    add(f, "ev", e->cfg.events[i], "age", lw_ln1p((double)(now - ev->last_ms) / (double)HOUR_MS));
  }
  add(f, "act", "d7", NULL, lw_ln1p(b->act[0] * decay(now - b->last_activity_ms, 7)));
  add(f, "act", "d30", NULL, lw_ln1p(b->act[1] * decay(now - b->last_activity_ms, 30)));
  add(f, "tenure", NULL, NULL, lw_ln1p(days(now - b->first_seen_ms)));
  add(f, "sessions", NULL, NULL, lw_ln1p(b->sessions));
  int distinct = 0;
  for (uint64_t bits = b->feature_bits; bits; bits &= bits - 1) distinct++;
  add(f, "features", NULL, NULL, lw_ln1p(distinct));
  if (b->nps >= 0) {
    add(f, "nps", b->nps >= 9 ? "promoter" : b->nps >= 7 ? "passive" : "detractor", NULL, 1.0);
    add(f, "nps", "age", NULL, lw_ln1p(days(now - b->nps_ms)));
  }
  if (b->support) add(f, "support", NULL, NULL, (b->support - 3) / 2.0);
  add(f, "shown", NULL, NULL, lw_ln1p(g->shown_total));
  add(f, "dismissed", NULL, NULL, lw_ln1p(g->dismiss_total));
  add(f, "shared", NULL, NULL, lw_ln1p(g->share_total));
  if (g->dismiss_total) add(f, "since_dismiss", NULL, NULL, lw_ln1p(days(now - g->last_dismiss_ms)));
  int64_t local = now + (int64_t)tz * MINUTE_MS;
  int64_t day = local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS;
  add_int(f, "hour", (int)((local - day * DAY_MS) / HOUR_MS), 1.0);
  add_int(f, "wday", (int)(((day + 4) % 7 + 7) % 7), 1.0); /* 1970-01-01 was a Thursday */
  for (int a = 0; a < e->cfg.n_attributes; a++)
    if (b->attrs[a] >= 0) add(f, e->cfg.attr_names[a], e->cfg.attr_values[a][b->attrs[a]], NULL, 1.0);
  if (milestone_event >= 0) add(f, "milestone", e->cfg.events[milestone_event], NULL, 1.0);
  int persona = -1;
  if (e->model && e->model->n_personas) {
    double dims[LW_MODEL_PERSONA_DIMS];
    persona_dims(f, dims);
    persona = lw_model_persona(e->model, dims);
    add_int(f, "persona", persona, 1.0);
  }
  return persona;
}

int lw_engine_features(lw_engine *e, int64_t now_ms, int tz_offset_min, lw_feature *out,
                       char (*names)[LW_FEATURE_NAME_LEN + 1], int cap) {
  fx_t f = {e, out, names, 0, cap};
  build_features(&f, now_ms, tz_offset_min, -1);
  return f.n;
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
  int64_t d = cfg->cooldown_days;
  for (uint32_t i = 1; i < dismissals && d < cfg->cooldown_max_days; i++) d *= cfg->cooldown_growth;
  if (d > cfg->cooldown_max_days) d = cfg->cooldown_max_days;
  return d * DAY_MS;
}

static int local_hour(int64_t now_ms, int tz_offset_min) {
  int64_t local = now_ms + (int64_t)tz_offset_min * MINUTE_MS;
  int64_t h = (local / HOUR_MS) % 24;
  if (local % HOUR_MS < 0) h--; /* floor for times before 1970 */
  return (int)((h % 24 + 24) % 24);
}

static int set_why(lw_decision *d, lw_why why) {
  d->why = why;
  return 1;
}

/* Returns 1 and fills why/reason when a hard constraint blocks a prompt now. */
static int blocked(const lw_engine *e, int64_t now, int tz, lw_decision *d) {
  const lw_config *cfg = &e->cfg;
  const lw_guard *g = &e->guard;
  const lw_behaviour *b = &e->beh;
  lw_sbuf sb;
  lw_sb_init(&sb, d->reason, sizeof d->reason);
  lw_sb_str(&sb, "suppressed: ");

  if (!consent_allows(e)) {
    lw_sb_str(&sb, "no consent");
    return set_why(d, LW_WHY_CONSENT);
  }
  if (g->consent != LW_CONSENT_GIVEN && ((cfg->respect_gpc && e->gpc) || (cfg->respect_dnt && e->dnt))) {
    lw_sb_str(&sb, cfg->respect_gpc && e->gpc ? "Global Privacy Control" : "Do Not Track");
    return set_why(d, LW_WHY_PRIVACY);
  }
  if (now < g->history_unknown_until_ms) {
    lw_sb_str(&sb, "history unknown, ");
    sb_left(&sb, g->history_unknown_until_ms - now);
    return set_why(d, LW_WHY_HISTORY_UNKNOWN);
  }
  if (g->open_id[0] && now - g->open_since_ms < OPEN_PROMPT_TTL_MS) {
    lw_sb_str(&sb, "a prompt is already open");
    return set_why(d, LW_WHY_OPEN_PROMPT);
  }
  if (g->dismiss_total > 0) {
    int64_t until = g->last_dismiss_ms + cooldown_ms(cfg, g->dismiss_total);
    if (now < until) {
      lw_sb_str(&sb, "cooldown ");
      sb_left(&sb, until - now);
      return set_why(d, LW_WHY_COOLDOWN);
    }
  }
  uint32_t in_window = 0;
  int64_t window = (int64_t)cfg->cap_window_days * DAY_MS;
  for (int i = 0; i < LW_SHOWN_RING; i++)
    if (g->shown_ms[i] && now - g->shown_ms[i] < window) in_window++;
  if (in_window >= cfg->cap_max_prompts) {
    lw_sb_str(&sb, "frequency cap ");
    lw_sb_u64(&sb, cfg->cap_max_prompts);
    lw_sb_char(&sb, '/');
    lw_sb_u64(&sb, cfg->cap_window_days);
    lw_sb_char(&sb, 'd');
    return set_why(d, LW_WHY_CAP);
  }
  int64_t gap_until = g->shown_ms[0] + (int64_t)cfg->cap_min_gap_hours * HOUR_MS;
  if (g->shown_ms[0] && now < gap_until) {
    lw_sb_str(&sb, "min gap ");
    sb_left(&sb, gap_until - now);
    return set_why(d, LW_WHY_GAP);
  }
  if (cfg->quiet_start_hour >= 0) {
    int h = local_hour(now, tz), s = cfg->quiet_start_hour, en = cfg->quiet_end_hour;
    if (s < en ? (h >= s && h < en) : (h >= s || h < en)) {
      lw_sb_str(&sb, "quiet hours");
      return set_why(d, LW_WHY_QUIET_HOURS);
    }
  }
  int64_t age = now - b->session_start_ms, min_age = (int64_t)cfg->min_session_s * 1000;
  if (age < min_age) {
    lw_sb_str(&sb, "session ");
    lw_sb_i64(&sb, age / 1000);
    lw_sb_str(&sb, "s old, needs ");
    lw_sb_u64(&sb, cfg->min_session_s);
    lw_sb_char(&sb, 's');
    return set_why(d, LW_WHY_SESSION_AGE);
  }
  if (e->busy) {
    lw_sb_str(&sb, "host busy");
    return set_why(d, LW_WHY_BUSY);
  }
  return 0;
}

/* ---- choosing an action ---------------------------------------------------------- */

/* Draw an index from exact millionths. */
static int draw(lw_engine *e, const uint32_t *ppm, int n) {
  uint32_t r = lw_rng_below(&e->rng, LW_PPM), acc = 0;
  for (int i = 0; i < n; i++) {
    acc += ppm[i];
    if (r < acc) return i;
  }
  return n - 1;
}

static void set_action(lw_engine *e, lw_decision *d, int variant, const char *how, const char *event,
                       uint32_t count) {
  lw_sbuf sb;
  lw_sb_init(&sb, d->reason, sizeof d->reason);
  if (variant < 0) {
    d->why = LW_WHY_NOT_NOW;
    lw_strlcpy(d->action, LW_ACTION_NOT_NOW, sizeof d->action);
    lw_sb_str(&sb, "not now: ");
  } else {
    d->why = LW_WHY_SHOWN;
    d->prompt = 1;
    d->variant = variant;
    lw_strlcpy(d->action, e->cfg.variants[variant].id, sizeof d->action);
    lw_sb_str(&sb, "shown: ");
  }
  lw_sb_str(&sb, how);
  lw_sb_str(&sb, "milestone ");
  lw_sb_str(&sb, event);
  lw_sb_str(&sb, "\xC3\x97"); /* U+00D7 multiplication sign */
  lw_sb_u64(&sb, count);
}

static void choose_by_rules(lw_engine *e, const char *event, uint32_t count, lw_decision *d) {
  const lw_config *cfg = &e->cfg;
  uint32_t w[LW_MAX_VARIANTS + 1], ppm[LW_MAX_VARIANTS + 1];
  int n = cfg->n_variants;
  for (int i = 0; i < n; i++) w[i] = cfg->variants[i].weight;
  w[n] = cfg->not_now_weight;
  lw_ppm_split(w, n + 1, ppm);
  int pick = draw(e, ppm, n + 1);
  d->p_ppm = ppm[pick];
  set_action(e, d, pick == n ? -1 : pick, d->mode == LW_MODE_HOLDOUT ? "holdout baseline at " : "",
             event, count);
}

/* The fairness offset for this user's configured segment ("plan^free"). */
static double fairness_offset(const lw_engine *e) {
  int a = e->cfg.fairness_attr;
  if (a < 0 || e->beh.attrs[a] < 0) return 0.0;
  char seg[LW_SEGMENT_NAME_LEN + 1];
  lw_sbuf sb;
  lw_sb_init(&sb, seg, sizeof seg);
  lw_sb_str(&sb, e->cfg.attr_names[a]);
  lw_sb_char(&sb, '^');
  lw_sb_str(&sb, e->cfg.attr_values[a][e->beh.attrs[a]]);
  return lw_model_segment_offset(e->model, seg);
}

/* The model's policy for this engine's config; returns 0 if the model can't decide here
 * (no prompt action it knows has enough data). */
static int model_policy(const lw_engine *e, lw_policy *pol, int *variant_of) {
  const lw_model *m = e->model;
  int ready = 0;
  memset(pol, 0, sizeof *pol);
  pol->value = e->cfg.value_per_referral;
  pol->fatigue = e->cfg.fatigue_cost;
  pol->temperature = e->cfg.explore_temperature;
  pol->floor = e->cfg.explore_floor;
  for (int a = 0; a < m->n_actions; a++) {
    int v = lw_config_variant_index(&e->cfg, m->action_ids[a]);
    variant_of[a] = v;
    if (strcmp(m->action_ids[a], LW_ACTION_NOT_NOW) == 0) {
      pol->enabled[a] = 1;
    } else if (v >= 0) {
      pol->enabled[a] = pol->is_prompt[a] = 1;
      pol->cost[a] = e->cfg.variants[v].cost;
      if (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) ready = 1;
    }
  }
  return ready;
}

/* The three features with the largest |weight × value| for model action a. */
static void explain(lw_engine *e, int a, lw_decision *d) {
  double contrib[LW_MAX_FEATURES];
  lw_model_contributions(e->model, a, e->x, e->n_x, contrib);
  for (int i = 0; i < e->n_x; i++) {
    double c = contrib[i];
    int k;
    if (d->n_top < 3)
      k = d->n_top++;
    else if (fabs_(c) > fabs_(d->top[2].contribution))
      k = 2;
    else
      continue;
    d->top[k].contribution = c;
    lw_strlcpy(d->top[k].name, e->x_names[i], sizeof d->top[k].name);
    for (; k > 0 && fabs_(d->top[k - 1].contribution) < fabs_(c); k--) { /* largest first */
      lw_contribution t = d->top[k];
      d->top[k] = d->top[k - 1];
      d->top[k - 1] = t;
    }
  }
}

static void choose_by_model(lw_engine *e, const lw_policy *pol, const int *variant_of, const char *event,
                            uint32_t count, lw_decision *d) {
  uint32_t ppm[LW_MODEL_MAX_ACTIONS];
  lw_model_policy(e->model, pol, e->x, e->n_x, fairness_offset(e), ppm, NULL);
  int a = draw(e, ppm, e->model->n_actions);
  d->p_ppm = ppm[a];
  set_action(e, d, pol->is_prompt[a] ? variant_of[a] : -1, "model at ", event, count);
  explain(e, a, d);
}

/* Whether this account needs the host's approval before a prompt. */
static int needs_approval(const lw_engine *e) {
  int a = e->cfg.approval_attr;
  return a >= 0 && e->beh.attrs[a] >= 0 && (e->cfg.approval_values >> e->beh.attrs[a] & 1u);
}

static int in_holdout(const lw_engine *e) {
  const uint8_t *k = e->guard.install;
  uint32_t u = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
  return (double)u < e->cfg.holdout * 4294967296.0;
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

  fx_t f = {e, e->x, e->x_names, 0, LW_MAX_FEATURES};
  int persona = build_features(&f, now_ms, tz, idx);
  e->n_x = f.n;
  if (persona >= 0) {
    lw_sb_init(&sb, d->segment, sizeof d->segment);
    lw_sb_str(&sb, "persona-");
    lw_sb_i64(&sb, persona);
  }
  lw_policy pol;
  int variant_of[LW_MODEL_MAX_ACTIONS];
  int model_ready = e->model && model_policy(e, &pol, variant_of);
  d->model_id = e->model ? e->model->model_id : 0;
  d->mode = in_holdout(e) ? LW_MODE_HOLDOUT : model_ready ? LW_MODE_MODEL : LW_MODE_RULES;

  if (blocked(e, now_ms, tz, d)) {
    lw_strlcpy(d->action, LW_ACTION_NONE, sizeof d->action);
    d->p_ppm = LW_PPM;
  } else if (d->mode == LW_MODE_MODEL) {
    choose_by_model(e, &pol, variant_of, event, count, d);
  } else {
    choose_by_rules(e, event, count, d);
  }
  if (d->prompt && needs_approval(e)) {
    d->prompt = 0;
    d->why = LW_WHY_APPROVAL;
    lw_sb_init(&sb, d->reason, sizeof d->reason);
    lw_sb_str(&sb, "awaiting approval: ");
    lw_sb_str(&sb, e->cfg.attr_names[e->cfg.approval_attr]);
    lw_sb_char(&sb, ' ');
    lw_sb_str(&sb, e->cfg.attr_values[e->cfg.approval_attr][e->beh.attrs[e->cfg.approval_attr]]);
    e->approval.d = *d;
    e->approval.since_ms = now_ms;
  }
  if (d->prompt) mark_shown(e, d, now_ms); /* counted now, once, whichever tab renders it */
  log_decision(e, d, now_ms);
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
  record_event(e, idx, value, label, now_ms);
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
  lw_pending_approval *pa = &e->approval;
  if (!pa->d.decided || strcmp(pa->d.id, decision_id) != 0 || now_ms - pa->since_ms > OPEN_PROMPT_TTL_MS) {
    lw_strlcpy(err, "no decision with this id is waiting for approval", errlen);
    return LW_ERR_NOT_FOUND;
  }
  lw_decision check = pa->d;
  if (blocked(e, now_ms, tz_offset_min, &check)) {
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

static int is_hex_id(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
  return n == LW_DECISION_ID_LEN;
}

static lw_status bad_id(char *err, size_t errlen) {
  lw_strlcpy(err, "decision id must be 16 lowercase hex characters", errlen);
  return LW_ERR_INVALID;
}

lw_status lw_engine_close(lw_engine *e, const char *decision_id, char *err, size_t errlen) {
  if (!is_hex_id(decision_id)) return bad_id(err, errlen);
  if (strcmp(e->guard.open_id, decision_id) == 0) e->guard.open_id[0] = '\0';
  return LW_OK; /* local only: closing is not an outcome the server learns from */
}

lw_status lw_engine_outcome_named(lw_engine *e, const char *decision_id, const char *name,
                                  int64_t now_ms, char *err, size_t errlen) {
  if (strcmp(name, LW_OUTCOME_CLOSE) == 0) return lw_engine_close(e, decision_id, err, errlen);
  int kind = lw_kind_parse(name);
  return lw_engine_outcome(e, decision_id, kind < 0 ? LW_KIND_COUNT : (lw_kind)kind, now_ms, err, errlen);
}

lw_status lw_engine_outcome(lw_engine *e, const char *decision_id, lw_kind kind, int64_t now_ms,
                            char *err, size_t errlen) {
  if (!is_hex_id(decision_id)) return bad_id(err, errlen);
  unsigned flags = lw_kind_flags(kind);
  if (!(flags & LW_KIND_F_OUTCOME)) {
    lw_strlcpy(err, "unknown outcome kind", errlen);
    return LW_ERR_INVALID;
  }
  lw_guard *g = &e->guard;
  int is_open = strcmp(g->open_id, decision_id) == 0;
  if (kind == LW_KIND_DISMISS) {
    g->dismiss_total++;
    g->last_dismiss_ms = now_ms;
  } else if (flags & LW_KIND_F_SHARED) {
    g->share_total++;
    g->last_share_ms = now_ms;
  }
  /* Every outcome but an impression ends the prompt on screen. */
  int closes = is_open && kind != LW_KIND_IMPRESSION;
  char buf[320];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  record_begin(e, &sb, lw_kind_name(kind), now_ms, decision_id);
  if (is_open) {
    lw_sb_str(&sb, ",\"action\":\"");
    lw_sb_str(&sb, g->open_action);
    lw_sb_char(&sb, '"');
  }
  if (flags & LW_KIND_F_SHARED) {
    lw_sb_str(&sb, ",\"code\":\"");
    lw_sb_str(&sb, g->code);
    lw_sb_char(&sb, '"');
  }
  record_push(e, &sb);
  if (closes) g->open_id[0] = '\0';
  return LW_OK;
}

static int is_code(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9'))) return 0;
  return n >= 6 && n <= 16;
}

static void log_referee(lw_engine *e, lw_kind kind, int64_t now_ms) {
  char buf[200];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  record_begin(e, &sb, lw_kind_name(kind), now_ms, NULL);
  lw_sb_str(&sb, ",\"code\":\"");
  lw_sb_str(&sb, e->guard.referred_by);
  lw_sb_char(&sb, '"');
  record_push(e, &sb);
}

lw_status lw_engine_referee_landing(lw_engine *e, const char *code, int64_t now_ms, char *err,
                                    size_t errlen) {
  if (!is_code(code)) {
    lw_strlcpy(err, "referral code must be 6-16 of A-Z and 0-9", errlen);
    return LW_ERR_INVALID;
  }
  if (strcmp(code, e->guard.code) == 0) {
    lw_strlcpy(err, "a device cannot refer itself", errlen);
    return LW_ERR_INVALID;
  }
  if (strcmp(e->guard.referred_by, code) == 0) return LW_OK; /* a reload of the same link */
  lw_strlcpy(e->guard.referred_by, code, sizeof e->guard.referred_by);
  e->guard.referee_converted = 0;
  log_referee(e, LW_KIND_LANDING, now_ms);
  return LW_OK;
}

lw_status lw_engine_referee_conversion(lw_engine *e, int64_t now_ms, char *err, size_t errlen) {
  if (!e->guard.referred_by[0]) {
    lw_strlcpy(err, "this device did not arrive through a referral link", errlen);
    return LW_ERR_NOT_FOUND;
  }
  if (e->guard.referee_converted) return LW_OK; /* counted once */
  e->guard.referee_converted = 1;
  log_referee(e, LW_KIND_CONVERSION, now_ms);
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

size_t lw_decision_to_json(const lw_decision *d, char *buf, size_t cap) {
  lw_sbuf sb;
  lw_sb_init(&sb, buf, cap);
  if (!d->decided) {
    lw_sb_str(&sb, "null");
    return sb.len;
  }
  lw_sb_str(&sb, "{\"id\":\"");
  lw_sb_str(&sb, d->id);
  lw_sb_str(&sb, d->prompt ? "\",\"prompt\":true,\"variant\":" : "\",\"prompt\":false,\"variant\":");
  lw_sb_i64(&sb, d->variant);
  lw_sb_str(&sb, ",\"code\":\"");
  lw_sb_str(&sb, lw_why_name(d->why));
  lw_sb_char(&sb, '"');
  sb_decision_fields(&sb, d);
  if (d->n_top) {
    lw_sb_str(&sb, ",\"top\":[");
    for (int i = 0; i < d->n_top; i++) {
      lw_sb_str(&sb, i ? ",{\"feature\":" : "{\"feature\":");
      lw_sb_json_str(&sb, d->top[i].name);
      lw_sb_str(&sb, ",\"contribution\":");
      lw_sb_num(&sb, d->top[i].contribution);
      lw_sb_char(&sb, '}');
    }
    lw_sb_char(&sb, ']');
  }
  lw_sb_char(&sb, '}');
  return sb.len;
}
