/* features.c: what the engine records of the host's usage, and the context features a
 * decision sees (names, hashing and fixed-point values: models/FORMAT.md). */
#include <string.h>

#include "engine_internal.h"
#include "sbuf.h"

static const double k_half_life_days[LW_HALF_LIVES] = {1, 7, 30};

/* 2^(-dt / half_life) */
static double decay(int64_t dt_ms, double half_life_days) {
  if (dt_ms <= 0) return 1.0;
  return lw_exp(-(double)dt_ms / (half_life_days * (double)LW_DAY_MS) * 0.6931471805599453);
}

void lw_engine_record_event(lw_engine *e, int idx, double value, const char *label, int64_t now) {
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
  if (!b->last_activity_ms || now - b->last_activity_ms > 30 * LW_MINUTE_MS) { /* a new session */
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

/* ---- features ---------------------------------------------------------------------- */

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

static double days(int64_t ms) { return ms > 0 ? (double)ms / (double)LW_DAY_MS : 0.0; }

/* Builds the context features; returns the persona index (-1 without a model's personas). */
int lw_engine_build_features(lw_engine *e, int64_t now, int tz, int milestone_event, lw_feature *x,
                             char (*names)[LW_FEATURE_NAME_LEN + 1], int cap, int *n_out) {
  fx_t fx = {e, x, names, 0, cap}, *f = &fx;
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
    add(f, "ev", e->cfg.events[i], "age", lw_ln1p((double)(now - ev->last_ms) / (double)LW_HOUR_MS));
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
  lw_local_time lt = lw_local_time_of(now, tz);
  add_int(f, "hour", lt.hour, 1.0);
  add_int(f, "wday", lt.wday, 1.0);
  for (int a = 0; a < e->cfg.n_attributes; a++)
    if (b->attrs[a] >= 0) add(f, e->cfg.attr_names[a], e->cfg.attr_values[a][b->attrs[a]], NULL, 1.0);
  if (milestone_event >= 0) add(f, "milestone", e->cfg.events[milestone_event], NULL, 1.0);
  int persona = -1;
  if (e->model && e->model->n_personas) {
    double dims[LW_MODEL_PERSONA_DIMS];
    lw_persona_dims(f->x, f->n, dims);
    persona = lw_model_persona(e->model, dims);
    add_int(f, "persona", persona, 1.0);
  }
  *n_out = f->n;
  return persona;
}

int lw_engine_features(lw_engine *e, int64_t now_ms, int tz_offset_min, lw_feature *out,
                       char (*names)[LW_FEATURE_NAME_LEN + 1], int cap) {
  int n;
  lw_engine_build_features(e, now_ms, tz_offset_min, -1, out, names, cap, &n);
  return n;
}

