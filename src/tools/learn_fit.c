/* learn_fit.c: the importance-weighted learner, personas, fairness offsets, off-policy
 * estimators, model comparison and promotion.
 *
 * Why importance weights: the logging policy chooses actions by context, so the records of
 * action a over-represent the contexts where a was likely. Weighting each record by 1/p
 * makes a's records stand for the whole logged population, so a skewed logging policy's
 * preferences do not leak into the fitted model. Weights are clipped (default 50) to keep
 * variance in check; the estimators report the effective sample size so a reader can see
 * when that matters. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "loopwise/learn.h"

#define Z95 1.959963984540054

/* ---- policy parameters and personas --------------------------------------------------- */

void lw_policy_params_init(lw_policy_params *pp, const lw_config *cfg) {
  lw_policy pol;
  lw_policy_settings(cfg, &pol);
  pp->value = pol.value;
  pp->fatigue = pol.fatigue;
  pp->temperature = pol.temperature;
  pp->floor = pol.floor;
}

void lw_policy_with_params(const lw_model *m, const lw_config *cfg, const lw_policy_params *pp, lw_policy *out) {
  lw_policy_for_model(m, cfg, out, NULL);
  out->value = pp->value;
  out->fatigue = pp->fatigue;
  out->temperature = pp->temperature;
  out->floor = pp->floor;
}

void lw_metric_init(lw_metric *mt, int net, const lw_config *cfg, const lw_policy_params *pp, int n_actions,
                    const char actions[][LW_NAME_LEN + 1]) {
  memset(mt, 0, sizeof *mt);
  mt->net = net && cfg;
  if (!mt->net) return;
  mt->value = pp->value;
  mt->fatigue = pp->fatigue;
  for (int a = 0; a < n_actions; a++) {
    int v = lw_config_variant_index(cfg, actions[a]);
    mt->is_prompt[a] = strcmp(actions[a], LW_ACTION_NOT_NOW) != 0;
    mt->cost[a] = v >= 0 ? cfg->variants[v].cost : 0.0;
  }
}

const char *lw_metric_name(const lw_metric *mt) {
  return mt && mt->net ? "net value per decision (share x (value - cost) - fatigue for a prompt)"
                       : "referral shares per decision";
}

void lw_apply_persona(const lw_model *m, lw_feature *x, int *n) {
  uint32_t ph[LW_MODEL_MAX_PERSONAS];
  for (int k = 0; k < LW_MODEL_MAX_PERSONAS; k++) ph[k] = lw_persona_hash(k);
  int w = 0;
  for (int i = 0; i < *n; i++) {
    int drop = 0;
    for (int k = 0; k < LW_MODEL_MAX_PERSONAS && !drop; k++) drop = x[i].hash == ph[k];
    if (!drop) x[w++] = x[i];
  }
  *n = w;
  if (!m || m->n_personas == 0 || w >= LW_LEARN_MAX_FEATURES) return;
  double dims[LW_MODEL_PERSONA_DIMS];
  lw_persona_dims(x, w, dims);
  int k = lw_model_persona(m, dims);
  if (k < 0) return;
  x[w].hash = ph[k];
  x[w].q = LW_FX_ONE;
  *n = w + 1;
}

/* ---- the learner ------------------------------------------------------------------------ */

void lw_train_defaults(lw_train_opts *o) {
  memset(o, 0, sizeof *o);
  o->bits = 14;
  o->passes = 1;
  o->lr = 0.3;
  o->l2 = 1e-6;
  o->clip = 50.0;
  o->min_ess = 200.0;
  o->min_positive = 10.0;
  o->personas = 4;
  o->fair_ratio = LW_AUDIT_FLAG_RATIO;
  o->max_offset = 1.0;
  o->holdout_mod = 10;
}

struct lw_learner {
  lw_train_opts o;
  int n_actions;
  char actions[LW_MODEL_MAX_ACTIONS][LW_NAME_LEN + 1];
  uint32_t ah[LW_MODEL_MAX_ACTIONS]; /* fnv1a("a^" + id), as lw_model_index */
  float *w, *g2, *sc; /* weights, AdaGrad's squared gradients, the largest |value| seen per weight */
  double t, norm;      /* normalized updates: importance weight seen, and sum iw * (v / sc)^2 */
  double sw[LW_MODEL_MAX_ACTIONS], sw2[LW_MODEL_MAX_ACTIONS], swr[LW_MODEL_MAX_ACTIONS];
  int64_t count[LW_MODEL_MAX_ACTIONS];
};

static inline uint32_t widx(const lw_learner *l, int a, uint32_t h) {
  return ((h ^ l->ah[a]) * 2654435761u) >> (32 - l->o.bits);
}

lw_status lw_learner_create(const lw_train_opts *o, int n_actions, const char actions[][LW_NAME_LEN + 1],
                            lw_learner **out) {
  *out = NULL;
  if (o->bits < 8 || o->bits > 16 || n_actions < 1 || n_actions > LW_MODEL_MAX_ACTIONS) return LW_ERR_INVALID;
  lw_learner *l = calloc(1, sizeof *l);
  if (!l) return LW_ERR_NOMEM;
  l->o = *o;
  l->n_actions = n_actions;
  size_t n = (size_t)1 << o->bits;
  l->w = calloc(n, sizeof *l->w);
  l->g2 = calloc(n, sizeof *l->g2);
  l->sc = calloc(n, sizeof *l->sc);
  if (!l->w || !l->g2 || !l->sc) {
    lw_learner_free(l);
    return LW_ERR_NOMEM;
  }
  for (int a = 0; a < n_actions; a++) {
    snprintf(l->actions[a], LW_NAME_LEN + 1, "%s", actions[a]);
    l->ah[a] = lw_fnv1a_bytes(lw_fnv1a("a^"), actions[a], strlen(actions[a]));
  }
  *out = l;
  return LW_OK;
}

void lw_learner_free(lw_learner *l) {
  if (!l) return;
  free(l->w);
  free(l->g2);
  free(l->sc);
  free(l);
}

static double sigm(double z) {
  if (z > 30) z = 30;
  if (z < -30) z = -30;
  return 1.0 / (1.0 + exp(-z));
}

double lw_learner_predict(const lw_learner *l, int a, const lw_feature *x, int n) {
  double z = 0.0;
  for (int i = 0; i < n; i++) z += (double)l->w[widx(l, a, x[i].hash)] * ((double)x[i].q / LW_FX_ONE);
  return sigm(z);
}

/* Normalized adaptive updates (Ross, Mineiro and Langford, "Normalized online learning",
 * 2013; Vowpal Wabbit's default learner): each weight remembers the largest |value| its
 * feature has had and is rescaled when a larger one arrives, and the step is AdaGrad's
 * divided by that scale, times sqrt(t / N) for the overall normalisation. Multiplying a
 * feature's values by c divides its weight by c and leaves every prediction as it was, so
 * amounts in currency, counts in the thousands and 0/1 indicators train alike with the
 * default step. Rewards are kept graded: the logistic target is the reward clamped to [0, 1]. */
void lw_learner_update(lw_learner *l, const lw_logged *r) {
  int a = r->action;
  if (a < 0 || a >= l->n_actions) return;
  double iw = 1.0 / r->p;
  if (iw > l->o.clip) iw = l->o.clip;
  l->sw[a] += iw;
  l->sw2[a] += iw * iw;
  l->swr[a] += iw * r->reward;
  l->count[a]++;
  double y = r->reward < 0 ? 0.0 : r->reward > 1 ? 1.0 : r->reward;
  double nx = 0.0;
  for (int i = 0; i < r->n; i++) {
    double v = fabs((double)r->x[i].q / LW_FX_ONE);
    if (v == 0.0) continue;
    uint32_t k = widx(l, a, r->x[i].hash);
    if (v > (double)l->sc[k]) {
      if (l->sc[k] > 0) l->w[k] = (float)((double)l->w[k] * ((double)l->sc[k] * l->sc[k]) / (v * v));
      l->sc[k] = (float)v;
    }
    nx += (v / (double)l->sc[k]) * (v / (double)l->sc[k]);
  }
  if (nx == 0.0) return;
  l->t += iw;
  l->norm += iw * nx;
  double g = (lw_learner_predict(l, a, r->x, r->n) - y) * iw, rate = l->o.lr * sqrt(l->t / l->norm);
  for (int i = 0; i < r->n; i++) {
    double v = (double)r->x[i].q / LW_FX_ONE;
    if (v == 0.0) continue;
    uint32_t k = widx(l, a, r->x[i].hash);
    double gi = g * v;
    l->g2[k] += (float)(gi * gi);
    double w = (double)l->w[k] * (1.0 - l->o.l2) - rate * gi / ((double)l->sc[k] * sqrt((double)l->g2[k] + 1e-12));
    if (w == w && w - w == 0.0) l->w[k] = (float)w;
  }
}

/* The enough-data rule: the action's effective sample size, (sum w)^2 / sum w^2, and its
 * importance-weighted referrals both clear their thresholds. */
static int enough_data(const lw_learner *l, int a) {
  double ess = l->sw2[a] > 0 ? l->sw[a] * l->sw[a] / l->sw2[a] : 0.0;
  /* "not now" needs no referrals behind it: its value is how rarely people refer unasked */
  int not_now = strcmp(l->actions[a], LW_ACTION_NOT_NOW) == 0;
  return ess >= l->o.min_ess && (not_now || l->swr[a] >= l->o.min_positive);
}

lw_status lw_learner_to_model(const lw_learner *l, lw_model **out, char *err, size_t errlen) {
  *out = NULL;
  lw_model *m = calloc(1, sizeof *m);
  size_t n = (size_t)1 << l->o.bits;
  if (!m || !(m->weights = malloc(n * sizeof *m->weights))) {
    free(m);
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  m->bits = (uint8_t)l->o.bits;
  m->n_actions = l->n_actions;
  m->scale = 1.0f; /* format version 2 stores the float weights themselves */
  memcpy(m->weights, l->w, n * sizeof *m->weights);
  for (int a = 0; a < l->n_actions; a++) {
    snprintf(m->action_ids[a], LW_NAME_LEN + 1, "%s", l->actions[a]);
    m->action_flags[a] = enough_data(l, a) ? LW_MODEL_ENOUGH_DATA : 0;
    m->support[a] = l->count[a];
  }
  *out = m;
  return LW_OK;
}

/* ---- estimators ------------------------------------------------------------------------ */

void lw_estimator_init(lw_estimator *s) { memset(s, 0, sizeof *s); }

void lw_estimator_add(lw_estimator *s, double pi_a, double p, double r, double dm, double rhat_a) {
  double w = pi_a / p;
  s->n += 1;
  s->sum_w += w;
  s->sum_w2 += w * w;
  s->sum_wr += w * r;
  s->sum_w2r += w * w * r;
  s->sum_w2r2 += w * w * r * r;
  s->sum_ips2 += (w * r) * (w * r);
  double dr = dm + w * (r - rhat_a);
  s->sum_dr += dr;
  s->sum_dr2 += dr * dr;
  s->sum_r += r;
  s->sum_r2 += r * r;
}

static lw_interval mean_ci(double n, double sum, double sum2) {
  lw_interval iv = {0, 0, 0};
  if (n < 1) return iv;
  double m = sum / n, var = n > 1 ? (sum2 - n * m * m) / (n - 1) : 0.0;
  if (var < 0) var = 0;
  double h = Z95 * sqrt(var / n);
  iv.est = m;
  iv.lo = m - h;
  iv.hi = m + h;
  return iv;
}

void lw_estimator_result(const lw_estimator *s, lw_estimates *out) {
  memset(out, 0, sizeof *out);
  out->n = s->n;
  out->logged = mean_ci(s->n, s->sum_r, s->sum_r2);
  out->ips = mean_ci(s->n, s->sum_wr, s->sum_ips2);
  out->dr = mean_ci(s->n, s->sum_dr, s->sum_dr2);
  out->ess = s->sum_w2 > 0 ? s->sum_w * s->sum_w / s->sum_w2 : 0.0;
  if (s->sum_w > 0) {
    /* Delta method for a ratio of means: var = sum w^2 (r - S)^2 / (sum w)^2. */
    double S = s->sum_wr / s->sum_w;
    double num = s->sum_w2r2 - 2 * S * s->sum_w2r + S * S * s->sum_w2;
    if (num < 0) num = 0;
    double h = Z95 * sqrt(num) / s->sum_w;
    out->snips.est = S;
    out->snips.lo = S - h;
    out->snips.hi = S + h;
  }
}

lw_status lw_target_model(lw_target *t, const lw_model *m, const lw_config *cfg, const lw_policy_params *pp,
                          int n_actions, const char actions[][LW_NAME_LEN + 1], char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  t->kind = LW_TARGET_MODEL;
  t->model = m;
  t->n_actions = n_actions;
  lw_policy_with_params(m, cfg, pp, &t->policy);
  int any = 0;
  for (int a = 0; a < n_actions; a++) {
    t->map[a] = lw_model_action_index(m, actions[a]);
    any |= t->map[a] >= 0;
  }
  if (!any) {
    snprintf(err, errlen, "the model has none of the data's actions");
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

void lw_target_probs(const lw_target *t, lw_feature *x, int *n, double *pi) {
  switch (t->kind) {
    case LW_TARGET_UNIFORM:
      for (int a = 0; a < t->n_actions; a++) pi[a] = 1.0 / t->n_actions;
      return;
    case LW_TARGET_ALWAYS:
      for (int a = 0; a < t->n_actions; a++) pi[a] = a == t->always ? 1.0 : 0.0;
      return;
    case LW_TARGET_LOGGED: /* not known beyond the logged action: eval_core handles it */
      for (int a = 0; a < t->n_actions; a++) pi[a] = 0.0;
      return;
    case LW_TARGET_MODEL: break;
  }
  const lw_model *m = t->model;
  lw_apply_persona(m, x, n);
  /* The fairness offset of the first segment the context belongs to, as the runtime does. */
  double offset = 0.0;
  for (int s = 0; s < m->n_segments && offset == 0.0; s++) {
    uint32_t h = lw_fnv1a(m->segment_names[s]);
    for (int i = 0; i < *n; i++)
      if (x[i].hash == h) offset = (double)m->segment_offsets[s];
  }
  uint32_t ppm[LW_MODEL_MAX_ACTIONS];
  if (lw_model_policy(m, &t->policy, x, *n, offset, ppm, NULL) != LW_OK) memset(ppm, 0, sizeof ppm);
  for (int a = 0; a < t->n_actions; a++) pi[a] = t->map[a] >= 0 ? ppm[t->map[a]] / 1e6 : 0.0;
}

/* ---- passes over a source ----------------------------------------------------------- */

static int is_holdout(const lw_logged *r, int mod) { return mod > 0 && r->line % (uint64_t)mod == (uint64_t)(mod - 1); }

typedef struct {
  lw_progress_fn fn;
  void *ctx;
  const char *phase;
  uint64_t count;
} progress_t;

static void tick(progress_t *p, lw_reader *r) {
  if (p->fn && (++p->count & 8191) == 0) p->fn(p->ctx, p->phase, lw_reader_progress(r));
}
static void tick_done(progress_t *p) {
  if (p->fn) p->fn(p->ctx, p->phase, 1.0);
}

/* k-means++ seeding then Lloyd iterations, on standardized points. */
static void kmeans(double *pts, int n, int k, lw_rng *rng, double *cent) {
  double *d2 = malloc((size_t)n * sizeof *d2);
  int *as = malloc((size_t)n * sizeof *as);
  if (!d2 || !as) {
    free(d2);
    free(as);
    return;
  }
  const int D = LW_MODEL_PERSONA_DIMS;
  memcpy(cent, pts + (size_t)lw_rng_below(rng, (uint32_t)n) * D, D * sizeof *cent);
  for (int c = 1; c < k; c++) {
    double tot = 0;
    for (int i = 0; i < n; i++) {
      double best = INFINITY;
      for (int j = 0; j < c; j++) {
        double d = 0;
        for (int t = 0; t < D; t++) d += (pts[(size_t)i * D + t] - cent[j * D + t]) * (pts[(size_t)i * D + t] - cent[j * D + t]);
        if (d < best) best = d;
      }
      d2[i] = best;
      tot += best;
    }
    double u = lw_rng_unit(rng) * tot;
    int pick = n - 1;
    for (int i = 0; i < n; i++) {
      u -= d2[i];
      if (u <= 0) {
        pick = i;
        break;
      }
    }
    memcpy(cent + c * D, pts + (size_t)pick * D, D * sizeof *cent);
  }
  for (int it = 0; it < 30; it++) {
    int changed = 0;
    for (int i = 0; i < n; i++) {
      int best = 0;
      double bd = INFINITY;
      for (int j = 0; j < k; j++) {
        double d = 0;
        for (int t = 0; t < D; t++) d += (pts[(size_t)i * D + t] - cent[j * D + t]) * (pts[(size_t)i * D + t] - cent[j * D + t]);
        if (d < bd) bd = d, best = j;
      }
      if (it == 0 || as[i] != best) changed++;
      as[i] = best;
    }
    double sum[LW_MODEL_MAX_PERSONAS * LW_MODEL_PERSONA_DIMS] = {0};
    int cnt[LW_MODEL_MAX_PERSONAS] = {0};
    for (int i = 0; i < n; i++) {
      cnt[as[i]]++;
      for (int t = 0; t < D; t++) sum[as[i] * D + t] += pts[(size_t)i * D + t];
    }
    for (int j = 0; j < k; j++)
      if (cnt[j])
        for (int t = 0; t < D; t++) cent[j * D + t] = sum[j * D + t] / cnt[j];
    if (!changed) break;
  }
  free(d2);
  free(as);
}

#define RESERVOIR 20000

/* Pass 0: data range, counts and a reservoir of persona states; fits the centroids. */
static int pass_personas(lw_reader *rd, lw_logged *rec, const lw_train_opts *o, lw_rng *rng, lw_model *shape,
                         lw_eval_report *rep, progress_t *pg, char *err, size_t errlen) {
  const int D = LW_MODEL_PERSONA_DIMS;
  double *pts = o->personas ? malloc((size_t)RESERVOIR * D * sizeof *pts) : NULL;
  if (o->personas && !pts) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  uint64_t seen = 0;
  int got;
  rep->records = 0;
  rep->t_min = rep->t_max = 0;
  pg->phase = "scan";
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(pg, rd);
    rep->records++;
    if (rec->t && (!rep->t_min || rec->t < rep->t_min)) rep->t_min = rec->t;
    if (rec->t > rep->t_max) rep->t_max = rec->t;
    if (!pts) continue;
    double dims[LW_MODEL_PERSONA_DIMS];
    lw_persona_dims(rec->x, rec->n, dims);
    uint64_t slot = seen < RESERVOIR ? seen : lw_rng_next(rng) % (seen + 1);
    if (slot < RESERVOIR) memcpy(pts + slot * D, dims, sizeof dims);
    seen++;
  }
  tick_done(pg);
  rep->skipped = lw_reader_skipped(rd);
  if (got < 0) {
    free(pts);
    return -1;
  }
  int n = (int)(seen < RESERVOIR ? seen : RESERVOIR);
  int k = o->personas < n ? o->personas : 0;
  if (k > 0) {
    shape->n_personas = k;
    shape->persona_dims = D;
    for (int t = 0; t < D; t++) {
      double s = 0, s2 = 0;
      for (int i = 0; i < n; i++) s += pts[(size_t)i * D + t], s2 += pts[(size_t)i * D + t] * pts[(size_t)i * D + t];
      double mu = s / n, var = s2 / n - mu * mu;
      shape->mean[t] = (float)mu;
      shape->sd[t] = var > 1e-6 ? (float)sqrt(var) : 1.0f;
    }
    for (int i = 0; i < n; i++)
      for (int t = 0; t < D; t++) pts[(size_t)i * D + t] = (pts[(size_t)i * D + t] - shape->mean[t]) / shape->sd[t];
    double cent[LW_MODEL_MAX_PERSONAS * LW_MODEL_PERSONA_DIMS];
    kmeans(pts, n, k, rng, cent);
    for (int i = 0; i < k * D; i++) shape->centroids[i] = (float)cent[i];
  }
  free(pts);
  return 0;
}

/* Fairness: per segment, the mean over the segment's contexts of the best prompt action's
 * predicted referral probability, measured during the last training pass. */
typedef struct {
  uint32_t h[LW_MODEL_MAX_SEGMENTS];
  double sum[LW_MODEL_MAX_SEGMENTS], n[LW_MODEL_MAX_SEGMENTS];
} fair_sums;

static void fair_add(fair_sums *fs, const lw_train_opts *o, const lw_source_opts *src, const lw_learner *l,
                     const lw_logged *rec) {
  double best = 0;
  for (int a = 0; a < src->n_actions; a++)
    if (strcmp(src->actions[a], LW_ACTION_NOT_NOW) != 0) {
      double p = lw_learner_predict(l, a, rec->x, rec->n);
      best = p > best ? p : best;
    }
  for (int s = 0; s < o->n_segments; s++)
    for (int i = 0; i < rec->n; i++)
      if (rec->x[i].hash == fs->h[s]) {
        fs->sum[s] += best;
        fs->n[s] += 1;
        break;
      }
}

/* The training passes: every record not held out is one importance-weighted step, with the
 * persona the record gets under the new centroids (as the runtime will assign it). */
static lw_status pass_train(lw_reader *rd, lw_logged *rec, const lw_train_opts *o, const lw_source_opts *src,
                            const lw_model *shape, lw_learner *l, fair_sums *fs, progress_t *pg, char *err,
                            size_t errlen) {
  for (int pass = 0; pass < o->passes; pass++) {
    int last = pass == o->passes - 1, got;
    char phase[32];
    snprintf(phase, sizeof phase, "train %d/%d", pass + 1, o->passes);
    pg->phase = phase;
    lw_status st = lw_reader_rewind(rd, err, errlen);
    if (st != LW_OK) return st;
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      tick(pg, rd);
      lw_apply_persona(shape, rec->x, &rec->n);
      if (last && o->n_segments) fair_add(fs, o, src, l, rec);
      if (is_holdout(rec, o->holdout_mod)) continue;
      lw_learner_update(l, rec);
    }
    tick_done(pg);
    pg->phase = "";
    if (got < 0) return LW_ERR_INVALID;
  }
  return LW_OK;
}

/* A segment whose mean predicted share probability falls below fair_ratio × the best
 * segment's gets the logit offset that lifts it to that ratio, at most max_offset. */
static void fairness_offsets(const lw_train_opts *o, const fair_sums *fs, lw_model *m) {
  double best = 0;
  for (int s = 0; s < o->n_segments; s++)
    if (fs->n[s] > 0 && fs->sum[s] / fs->n[s] > best) best = fs->sum[s] / fs->n[s];
  m->n_segments = o->n_segments;
  for (int s = 0; s < o->n_segments; s++) {
    snprintf(m->segment_names[s], LW_SEGMENT_NAME_LEN + 1, "%s", o->segments[s]);
    double mean = fs->n[s] > 0 ? fs->sum[s] / fs->n[s] : 0, off = 0;
    if (mean > 0 && best > 0 && mean < o->fair_ratio * best) {
      double tgt = o->fair_ratio * best;
      off = log(tgt / (1 - tgt)) - log(mean / (1 - mean));
      if (off > o->max_offset) off = o->max_offset;
    }
    m->segment_offsets[s] = (float)off;
  }
}

/* The model's own estimate: DR on the records it was not trained on, with the learner's float
 * predictions as the reward model (it has not seen those records either). */
static lw_status holdout_estimate(lw_reader *rd, lw_logged *rec, const lw_train_request *rq, const lw_model *m,
                                  const lw_learner *l, lw_estimates *out, progress_t *pg, char *err, size_t errlen) {
  const lw_source_opts *src = rq->src;
  lw_target t;
  lw_status st = lw_target_model(&t, m, rq->cfg, rq->pp, src->n_actions, src->actions, err, errlen);
  if (st != LW_OK) return st;
  lw_estimator est;
  lw_estimator_init(&est);
  lw_metric mt;
  lw_metric_init(&mt, 1, rq->cfg, rq->pp, src->n_actions, src->actions);
  pg->phase = "estimate";
  if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) return st;
  int got;
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(pg, rd);
    if (rq->opts->holdout_mod > 0 && !is_holdout(rec, rq->opts->holdout_mod)) continue;
    double pi[LW_MODEL_MAX_ACTIONS], dm = 0, rh_a = 0;
    lw_target_probs(&t, rec->x, &rec->n, pi);
    for (int a = 0; a < src->n_actions; a++) {
      double rh = lw_metric_value(&mt, a, lw_learner_predict(l, a, rec->x, rec->n));
      dm += pi[a] * rh;
      if (a == rec->action) rh_a = rh;
    }
    lw_estimator_add(&est, pi[rec->action], rec->p, lw_metric_value(&mt, rec->action, rec->reward), dm, rh_a);
  }
  tick_done(pg);
  if (got < 0) return LW_ERR_INVALID;
  lw_estimator_result(&est, out);
  return LW_OK;
}

/* The model's JSON metadata (models/FORMAT.md): how it was trained, on what, and what it is
 * estimated to be worth. */
static lw_status write_meta(lw_model *m, const lw_train_request *rq, const lw_train_result *res, char *err,
                            size_t errlen) {
  const lw_eval_report *rep = &res->report;
  char id[16];
  snprintf(id, sizeof id, "m%u", m->model_id);
  cJSON *j = cJSON_CreateObject(), *data = cJSON_CreateObject(), *est = cJSON_CreateObject(),
        *flags = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "model", id);
  cJSON_AddNumberToObject(j, "trained_at", (double)m->trained_at_ms);
  cJSON_AddItemToObject(j, "data", data);
  cJSON_AddNumberToObject(data, "from", (double)rep->t_min);
  cJSON_AddNumberToObject(data, "to", (double)rep->t_max);
  cJSON_AddNumberToObject(data, "records", (double)rep->records);
  cJSON_AddNumberToObject(data, "skipped", (double)rep->skipped);
  cJSON_AddItemToObject(j, "estimate", est);
  cJSON_AddStringToObject(est, "metric", res->net_metric ? "net value per decision" : "referral shares per decision");
  cJSON_AddStringToObject(est, "estimator", "dr");
  cJSON_AddNumberToObject(est, "value", rep->target.dr.est);
  cJSON_AddNumberToObject(est, "lo", rep->target.dr.lo);
  cJSON_AddNumberToObject(est, "hi", rep->target.dr.hi);
  cJSON_AddNumberToObject(est, "n", rep->target.n);
  cJSON_AddNumberToObject(est, "logged", rep->target.logged.est);
  cJSON_AddItemToObject(j, "enough_data", flags);
  for (int a = 0; a < m->n_actions; a++)
    cJSON_AddBoolToObject(flags, m->action_ids[a], (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) != 0);
  cJSON_AddNumberToObject(j, "personas", m->n_personas);
  cJSON_AddStringToObject(j, "command", rq->command ? rq->command : "");
  free(m->meta_json);
  m->meta_json = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (!m->meta_json) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  return LW_OK;
}

lw_status lw_train(const lw_train_request *rq, lw_train_result *res, char *err, size_t errlen) {
  const lw_source_opts *src = rq->src;
  const lw_train_opts *o = rq->opts;
  memset(res, 0, sizeof *res);
  res->net_metric = rq->cfg != NULL;
  lw_reader *rd = NULL;
  lw_learner *l = NULL;
  lw_model *m = NULL;
  lw_logged *rec = malloc(sizeof *rec);
  lw_model *shape = calloc(1, sizeof *shape);
  lw_status st = LW_OK;
  progress_t pg = {rq->progress, rq->progress_ctx, "", 0};
  fair_sums fs;
  memset(&fs, 0, sizeof fs);
  for (int s = 0; s < o->n_segments; s++) fs.h[s] = lw_fnv1a(o->segments[s]);
  lw_rng rng;
  lw_rng_seed(&rng, rq->seed, 0x6c6561726eULL);
  if (!rec || !shape) {
    st = LW_ERR_NOMEM;
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  if ((st = lw_reader_open(src, &rd, err, errlen)) != LW_OK) goto done;
  if (pass_personas(rd, rec, o, &rng, shape, &res->report, &pg, err, errlen) < 0) {
    st = LW_ERR_INVALID;
    goto done;
  }
  if (res->report.records == 0) {
    snprintf(err, errlen, "no logged decisions to learn from");
    st = LW_ERR_INVALID;
    goto done;
  }
  if ((st = lw_learner_create(o, src->n_actions, src->actions, &l)) != LW_OK) {
    snprintf(err, errlen, "bad training options (bits 8-16)");
    goto done;
  }
  if ((st = pass_train(rd, rec, o, src, shape, l, &fs, &pg, err, errlen)) != LW_OK) goto done;
  if ((st = lw_learner_to_model(l, &m, err, errlen)) != LW_OK) goto done;
  m->n_personas = shape->n_personas;
  m->persona_dims = shape->persona_dims;
  memcpy(m->centroids, shape->centroids, sizeof m->centroids);
  memcpy(m->mean, shape->mean, sizeof m->mean);
  memcpy(m->sd, shape->sd, sizeof m->sd);
  fairness_offsets(o, &fs, m);
  m->model_id = rq->model_id;
  m->trained_at_ms = rq->now_ms;
  if ((st = holdout_estimate(rd, rec, rq, m, l, &res->report.target, &pg, err, errlen)) != LW_OK) goto done;
  if ((st = write_meta(m, rq, res, err, errlen)) != LW_OK) goto done;
  res->model = m;
  m = NULL;
done:
  lw_model_free(m);
  lw_learner_free(l);
  lw_reader_close(rd);
  free(rec);
  free(shape);
  return st;
}

/* Evaluation core: cross-fitted reward models, then every target on every record (or only
 * the held-out ones). diff, when not NULL, accumulates DR(target 1) - DR(target 0). */
static lw_status eval_core(const lw_source_opts *src, lw_target *targets, int n_targets, const lw_metric *mt,
                           int only_holdout,
                           uint64_t seed, lw_progress_fn progress, void *pctx, lw_eval_report *reps,
                           lw_estimator *diff, char *err, size_t errlen) {
  (void)seed;
  lw_reader *rd = NULL;
  lw_learner *fold[2] = {NULL, NULL};
  lw_logged *rec = malloc(sizeof *rec);
  lw_estimator *est = calloc((size_t)n_targets, sizeof *est);
  lw_status st = LW_OK;
  progress_t pg = {progress, pctx, "", 0};
  lw_train_opts o;
  lw_train_defaults(&o);
  o.personas = 0;
  if (!rec || !est) {
    st = LW_ERR_NOMEM;
    goto done;
  }
  if ((st = lw_reader_open(src, &rd, err, errlen)) != LW_OK) goto done;
  for (int f = 0; f < 2; f++)
    if ((st = lw_learner_create(&o, src->n_actions, src->actions, &fold[f])) != LW_OK) goto done;
  int got;
  for (int pass = 0; pass < 2; pass++) {
    pg.phase = pass ? "reward model 2/2" : "reward model 1/2";
    if (pass && (st = lw_reader_rewind(rd, err, errlen)) != LW_OK) goto done;
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      tick(&pg, rd);
      lw_learner_update(fold[rec->line & 1], rec);
    }
    tick_done(&pg);
    if (got < 0) {
      st = LW_ERR_INVALID;
      goto done;
    }
  }
  if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) goto done;
  pg.phase = "estimate";
  for (int k = 0; k < n_targets; k++) {
    memset(&reps[k], 0, sizeof reps[k]);
    lw_estimator_init(&est[k]);
  }
  if (diff) lw_estimator_init(diff);
  uint64_t records = 0;
  int64_t tmin = 0, tmax = 0;
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(&pg, rd);
    if (only_holdout > 0 && !is_holdout(rec, only_holdout)) continue;
    records++;
    if (rec->t && (!tmin || rec->t < tmin)) tmin = rec->t;
    if (rec->t > tmax) tmax = rec->t;
    const lw_learner *rm = fold[(rec->line & 1) ^ 1];
    double rh[LW_MODEL_MAX_ACTIONS];
    for (int a = 0; a < src->n_actions; a++) rh[a] = lw_metric_value(mt, a, lw_learner_predict(rm, a, rec->x, rec->n));
    double r = lw_metric_value(mt, rec->action, rec->reward);
    double drv[2] = {0, 0};
    for (int k = 0; k < n_targets; k++) {
      lw_feature x[LW_LEARN_MAX_FEATURES];
      int n = rec->n;
      memcpy(x, rec->x, (size_t)n * sizeof *x);
      double pi[LW_MODEL_MAX_ACTIONS], dm = 0;
      if (targets[k].kind == LW_TARGET_LOGGED) { /* on-policy: every estimator is the observed mean */
        lw_estimator_add(&est[k], rec->p, rec->p, r, 0, 0);
        if (k < 2) drv[k] = r;
        continue;
      }
      lw_target_probs(&targets[k], x, &n, pi);
      for (int a = 0; a < src->n_actions; a++) dm += pi[a] * rh[a];
      lw_estimator_add(&est[k], pi[rec->action], rec->p, r, dm, rh[rec->action]);
      if (k < 2) drv[k] = dm + pi[rec->action] / rec->p * (r - rh[rec->action]);
    }
    if (diff) lw_estimator_add(diff, 0, 1, 0, drv[1] - drv[0], 0);
  }
  tick_done(&pg);
  if (got < 0) {
    st = LW_ERR_INVALID;
    goto done;
  }
  for (int k = 0; k < n_targets; k++) {
    lw_estimator_result(&est[k], &reps[k].target);
    reps[k].records = records;
    reps[k].skipped = lw_reader_skipped(rd);
    reps[k].t_min = tmin;
    reps[k].t_max = tmax;
  }
done:
  if (st == LW_ERR_NOMEM) snprintf(err, errlen, "out of memory");
  lw_learner_free(fold[0]);
  lw_learner_free(fold[1]);
  lw_reader_close(rd);
  free(rec);
  free(est);
  return st;
}

lw_status lw_eval_source(const lw_source_opts *src, lw_target *targets, int n_targets, const lw_metric *metric,
                         int only_holdout, uint64_t seed, lw_progress_fn progress, void *pctx, lw_eval_report *reps,
                         char *err, size_t errlen) {
  return eval_core(src, targets, n_targets, metric, only_holdout, seed, progress, pctx, reps, NULL, err, errlen);
}

lw_status lw_compare_models(const lw_source_opts *src, const lw_model *current, const lw_model *candidate,
                            const lw_config *cfg, const lw_policy_params *pp, const lw_metric *metric,
                            int only_holdout, uint64_t seed, lw_compare_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  lw_target t[2];
  lw_status st;
  memset(&t[0], 0, sizeof t[0]);
  t[0].kind = LW_TARGET_LOGGED;
  t[0].n_actions = src->n_actions;
  if ((current && (st = lw_target_model(&t[0], current, cfg, pp, src->n_actions, src->actions, err, errlen)) != LW_OK) ||
      (st = lw_target_model(&t[1], candidate, cfg, pp, src->n_actions, src->actions, err, errlen)) != LW_OK)
    return st;
  lw_eval_report reps[2];
  lw_estimator diff;
  if ((st = eval_core(src, t, 2, metric, only_holdout, seed, NULL, NULL, reps, &diff, err, errlen)) != LW_OK) return st;
  out->current = reps[0].target.dr;
  out->candidate = reps[1].target.dr;
  lw_estimates d;
  lw_estimator_result(&diff, &d);
  out->diff = d.dr;
  out->promote = !(d.n > 0 && out->diff.hi < 0);
  return LW_OK;
}

/* ---- files ------------------------------------------------------------------------------- */

lw_status lw_write_file_atomic(const char *path, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
    snprintf(err, errlen, "path too long");
    return LW_ERR_INVALID;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
    return LW_ERR_IO;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
      close(fd);
      unlink(tmp);
      return LW_ERR_IO;
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    unlink(tmp);
    return LW_ERR_IO;
  }
  return LW_OK;
}
