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

void lw_metric_graded(lw_metric *mt) {
  if (!mt->net) return;
  mt->graded = 1;
  mt->value = 1.0; /* the label is value already, the incentive already taken off */
  for (int a = 0; a < LW_LEARN_MAX_ACTIONS; a++) mt->cost[a] = 0.0;
}

const char *lw_metric_name(const lw_metric *mt) {
  if (mt && mt->net && mt->graded)
    return "retained value per decision (referee value - incentive cost - fatigue for a prompt)";
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
  o->passes = 3;
  o->refine = 50;
  o->lr = 0.5;
  o->l2 = 1e-6;
  o->clip = 50.0;
  o->min_ess = 200.0;
  o->min_positive = 10.0;
  o->personas = 4;
  o->fair_ratio = LW_AUDIT_FLAG_RATIO;
  o->max_offset = 1.0;
  o->holdout_mod = 10;
  o->reward_lo = 0.0;
  o->reward_hi = 1.0;
}

struct lw_learner {
  lw_train_opts o;
  int n_actions;
  char actions[LW_LEARN_MAX_ACTIONS][LW_NAME_LEN + 1];
  uint32_t ah[LW_LEARN_MAX_ACTIONS]; /* fnv1a("a^" + id), as lw_model_index */
  float *w, *g2, *sc; /* weights, AdaGrad's squared gradients, the largest |value| seen per weight */
  double t, norm;      /* normalized updates: importance weight seen, and sum iw * (v / sc)^2 */
  double sw[LW_LEARN_MAX_ACTIONS], sw2[LW_LEARN_MAX_ACTIONS], swr[LW_LEARN_MAX_ACTIONS];
  int64_t count[LW_LEARN_MAX_ACTIONS];
  struct refine *rf; /* the batch refinement's state, between lw_learner_refine_begin and its end */
};

static inline uint32_t widx(const lw_learner *l, int a, uint32_t h) {
  return ((h ^ l->ah[a]) * 2654435761u) >> (32 - l->o.bits);
}

lw_status lw_learner_create(const lw_train_opts *o, int n_actions, const char actions[][LW_NAME_LEN + 1],
                            lw_learner **out) {
  *out = NULL;
  if (o->bits < 8 || o->bits > 16 || n_actions < 1 || n_actions > LW_LEARN_MAX_ACTIONS) return LW_ERR_INVALID;
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

static void refine_free(struct refine *rf);

void lw_learner_free(lw_learner *l) {
  if (!l) return;
  refine_free(l->rf);
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
 * default step. Rewards are kept graded: the logistic target is the reward mapped from the
 * data's range [reward_lo, reward_hi] onto [0, 1]. */
double lw_learner_predict_reward(const lw_learner *l, int a, const lw_feature *x, int n) {
  return l->o.reward_lo + (l->o.reward_hi - l->o.reward_lo) * lw_learner_predict(l, a, x, n);
}

int64_t lw_learner_support(const lw_learner *l, int a) { return a >= 0 && a < l->n_actions ? l->count[a] : 0; }

void lw_learner_update(lw_learner *l, const lw_logged *r) {
  int a = r->action;
  if (a < 0 || a >= l->n_actions) return;
  double iw = 1.0 / r->p;
  if (iw > l->o.clip) iw = l->o.clip;
  l->sw[a] += iw;
  l->sw2[a] += iw * iw;
  l->swr[a] += iw * r->reward;
  l->count[a]++;
  double span = l->o.reward_hi - l->o.reward_lo, y = span > 0 ? (r->reward - l->o.reward_lo) / span : 0.0;
  y = y < 0 ? 0.0 : y > 1 ? 1.0 : y;
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

/* ---- batch refinement -----------------------------------------------------------------
 * The online passes leave the weights near the optimum but, on features whose values are all
 * of one sign (amounts, counts, beside the bias), not at it: scale invariance fixes each
 * feature's step, not the correlation between an uncentered feature and the bias, and a
 * diagonal (AdaGrad) step cannot undo that. So training ends with limited-memory BFGS
 * (Nocedal 1980; Vowpal Wabbit's --bfgs) on the whole objective the online passes descend,
 *   F(w) = sum_i iw_i (log(1 + e^z_i) - y_i z_i) + (l2 × sum_i iw_i / 2) sum_k (sc_k w_k)^2,
 * z_i = sum_k w_k x_ik over the training records, iw_i the clipped importance weight and sc_k
 * the largest |value| the weight's feature has had (the ridge is on the logit each weight
 * gives its feature's largest value, so it is as scale-free as the updates; it keeps weights
 * of features seen with one label only finite). The quasi-Newton curvature pairs learn the
 * correlations; their starting metric is the exact diagonal of the Hessian (what AdaGrad's
 * squared gradients approximate), scaled by the latest pair's curvature, or before the first
 * pair by the importance-weighted features a record has (a diagonal step along k correlated
 * features overshoots by up to k). Coordinates are u_k = sc_k w_k. Each evaluation of F and its gradient is one pass over the records, in the reader's
 * seeded order, so the result does not depend on arrival order; a step is accepted when it
 * decreases F enough (Armijo), else shortened; refinement stops once two accepted steps in a
 * row improve F by under 1e-7 of its value, or after `refine` passes, keeping the best point. */
#define REFINE_HIST 8

struct refine {
  size_t n;
  double *x, *g;         /* accepted point (u) and its gradient */
  double *xt, *gt, *wt;  /* trial point, its gradient being summed, its weights w = u / sc */
  double *d;             /* search direction */
  double *h, *ht;        /* the Hessian's diagonal at the accepted point and at the trial point: the
                            quasi-Newton steps' starting metric (as AdaGrad's, but exact) */
  double *s[REFINE_HIST], *y[REFINE_HIST], rho[REFINE_HIST];
  int n_hist, head;
  double f, ft, sum_iw, nnz, alpha, gd; /* nnz: importance-weighted features summed over records */
  int started, passes, quiet_steps, done;
};

static void refine_free(struct refine *rf) {
  if (!rf) return;
  free(rf->x);
  free(rf->g);
  free(rf->xt);
  free(rf->gt);
  free(rf->wt);
  free(rf->d);
  free(rf->h);
  free(rf->ht);
  for (int k = 0; k < REFINE_HIST; k++) free(rf->s[k]), free(rf->y[k]);
  free(rf);
}

lw_status lw_learner_refine_begin(lw_learner *l) {
  refine_free(l->rf);
  l->rf = NULL;
  if (l->o.refine <= 0) return LW_OK;
  struct refine *rf = calloc(1, sizeof *rf);
  if (!rf) return LW_ERR_NOMEM;
  size_t n = rf->n = (size_t)1 << l->o.bits;
  int ok = (rf->x = calloc(n, sizeof(double))) && (rf->g = calloc(n, sizeof(double))) &&
           (rf->xt = calloc(n, sizeof(double))) && (rf->gt = calloc(n, sizeof(double))) &&
           (rf->wt = calloc(n, sizeof(double))) && (rf->d = calloc(n, sizeof(double))) &&
           (rf->h = calloc(n, sizeof(double))) && (rf->ht = calloc(n, sizeof(double)));
  for (int k = 0; ok && k < REFINE_HIST; k++) ok = (rf->s[k] = calloc(n, sizeof(double))) && (rf->y[k] = calloc(n, sizeof(double)));
  if (!ok) {
    refine_free(rf);
    return LW_ERR_NOMEM;
  }
  for (size_t k = 0; k < n; k++) {
    rf->x[k] = rf->xt[k] = (double)l->w[k] * (double)l->sc[k];
    rf->wt[k] = l->sc[k] > 0 ? (double)l->w[k] : 0.0;
  }
  l->rf = rf;
  return LW_OK;
}

int lw_learner_refining(const lw_learner *l) { return l->rf && !l->rf->done; }

void lw_learner_refine_add(lw_learner *l, const lw_logged *r) {
  struct refine *rf = l->rf;
  int a = r->action;
  if (!rf || rf->done || a < 0 || a >= l->n_actions) return;
  double iw = 1.0 / r->p;
  if (iw > l->o.clip) iw = l->o.clip;
  double span = l->o.reward_hi - l->o.reward_lo, y = span > 0 ? (r->reward - l->o.reward_lo) / span : 0.0;
  y = y < 0 ? 0.0 : y > 1 ? 1.0 : y;
  double z = 0.0;
  for (int i = 0; i < r->n; i++) z += rf->wt[widx(l, a, r->x[i].hash)] * ((double)r->x[i].q / LW_FX_ONE);
  /* log(1 + e^z) - y z without overflow, and its derivative p - y */
  double loss = (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y * z, p = 1.0 / (1.0 + exp(-z));
  rf->ft += iw * loss;
  rf->sum_iw += iw;
  for (int i = 0; i < r->n; i++) {
    double v = (double)r->x[i].q / LW_FX_ONE;
    uint32_t k = widx(l, a, r->x[i].hash);
    if (v != 0.0 && l->sc[k] > 0) {
      double u = v / (double)l->sc[k];
      rf->gt[k] += iw * (p - y) * u;
      rf->nnz += iw;
      rf->ht[k] += iw * p * (1.0 - p) * u * u;
    }
  }
}

static double dot(const double *a, const double *b, size_t n) {
  double s = 0.0;
  for (size_t k = 0; k < n; k++) s += a[k] * b[k];
  return s;
}

/* d = -H g by the two-loop recursion over the stored pairs (oldest first in the second loop). */
static void refine_direction(struct refine *rf) {
  size_t n = rf->n;
  double al[REFINE_HIST];
  for (size_t k = 0; k < n; k++) rf->d[k] = -rf->g[k];
  for (int j = 0; j < rf->n_hist; j++) {
    int i = (rf->head - 1 - j + REFINE_HIST) % REFINE_HIST;
    al[i] = rf->rho[i] * dot(rf->s[i], rf->d, n);
    for (size_t k = 0; k < n; k++) rf->d[k] -= al[i] * rf->y[i][k];
  }
  /* the starting metric: the diagonal, scaled by the latest pair's curvature (or, before any
   * pair, by the features a record has: a diagonal step along correlated features overshoots
   * by up to their number) */
  double gamma = rf->nnz > 0 ? rf->sum_iw / rf->nnz : 1.0;
  if (rf->n_hist > 0) {
    int i = (rf->head - 1 + REFINE_HIST) % REFINE_HIST;
    double ydy = 0;
    for (size_t k = 0; k < n; k++)
      if (rf->h[k] > 0) ydy += rf->y[i][k] * rf->y[i][k] / rf->h[k];
    if (ydy > 0) gamma = 1.0 / (rf->rho[i] * ydy);
  }
  for (size_t k = 0; k < n; k++) rf->d[k] = rf->h[k] > 0 ? gamma * rf->d[k] / rf->h[k] : 0.0;
  for (int j = rf->n_hist - 1; j >= 0; j--) {
    int i = (rf->head - 1 - j + REFINE_HIST) % REFINE_HIST;
    double b = rf->rho[i] * dot(rf->y[i], rf->d, n);
    for (size_t k = 0; k < n; k++) rf->d[k] += (al[i] - b) * rf->s[i][k];
  }
  rf->gd = dot(rf->g, rf->d, n);
  if (!(rf->gd < 0)) { /* not a descent direction: forget the curvature pairs */
    rf->n_hist = 0;
    for (size_t k = 0; k < n; k++) rf->d[k] = rf->h[k] > 0 ? -gamma * rf->g[k] / rf->h[k] : 0.0;
    rf->gd = dot(rf->g, rf->d, n);
  }
}

static void refine_trial(lw_learner *l, struct refine *rf) {
  for (size_t k = 0; k < rf->n; k++) {
    rf->xt[k] = rf->x[k] + rf->alpha * rf->d[k];
    rf->wt[k] = l->sc[k] > 0 ? rf->xt[k] / (double)l->sc[k] : 0.0;
  }
}

/* The weights become the accepted point's and the refinement ends. */
static void refine_finish(lw_learner *l, struct refine *rf) {
  for (size_t k = 0; k < rf->n; k++)
    if (l->sc[k] > 0) {
      double w = rf->x[k] / (double)l->sc[k];
      if (w == w && w - w == 0.0) l->w[k] = (float)w;
    }
  rf->done = 1;
}

int lw_learner_refine_step(lw_learner *l) {
  struct refine *rf = l->rf;
  if (!rf || rf->done) return 0;
  size_t n = rf->n;
  double lam = l->o.l2 * rf->sum_iw; /* the ridge, and its gradient, at the trial point */
  for (size_t k = 0; k < n; k++) {
    rf->ft += 0.5 * lam * rf->xt[k] * rf->xt[k];
    rf->gt[k] += lam * rf->xt[k];
    rf->ht[k] += lam;
  }
  rf->passes++;
  int accept = 0;
  if (!rf->started) {
    rf->started = 1;
    accept = 1;
  } else if (rf->ft == rf->ft && rf->ft <= rf->f + 1e-4 * rf->alpha * rf->gd) {
    accept = 1;
    double *s = rf->s[rf->head], *y = rf->y[rf->head];
    for (size_t k = 0; k < n; k++) s[k] = rf->xt[k] - rf->x[k], y[k] = rf->gt[k] - rf->g[k];
    double sy = dot(s, y, n);
    if (sy > 1e-12 * dot(y, y, n) && sy > 0) {
      rf->rho[rf->head] = 1.0 / sy;
      rf->head = (rf->head + 1) % REFINE_HIST;
      if (rf->n_hist < REFINE_HIST) rf->n_hist++;
    }
    rf->quiet_steps = rf->f - rf->ft <= 1e-7 * fabs(rf->ft) ? rf->quiet_steps + 1 : 0;
  }
  if (accept) {
    rf->f = rf->ft;
    memcpy(rf->x, rf->xt, n * sizeof *rf->x);
    memcpy(rf->g, rf->gt, n * sizeof *rf->g);
    memcpy(rf->h, rf->ht, n * sizeof *rf->h);
  } else { /* shorten the step: the minimum of the quadratic through F(0), F'(0) and F(alpha) */
    double a = rf->alpha, q = -rf->gd * a * a / (2.0 * (rf->ft - rf->f - rf->gd * a));
    rf->alpha = q == q && q > 0.1 * a && q < 0.5 * a ? q : 0.5 * a;
  }
  int stop = rf->passes >= l->o.refine || rf->quiet_steps >= 2 || (!accept && rf->alpha < 1e-12);
  if (accept && !stop) {
    double gmax = 0;
    for (size_t k = 0; k < n; k++) gmax = fabs(rf->g[k]) > gmax ? fabs(rf->g[k]) : gmax;
    if (gmax <= 1e-10 * (rf->sum_iw > 1 ? rf->sum_iw : 1)) stop = 1;
  }
  if (stop) {
    refine_finish(l, rf);
    return 0;
  }
  if (accept) {
    refine_direction(rf);
    rf->alpha = 1.0;
  }
  refine_trial(l, rf);
  rf->ft = 0.0;
  rf->sum_iw = rf->nnz = 0.0;
  memset(rf->gt, 0, n * sizeof *rf->gt);
  memset(rf->ht, 0, n * sizeof *rf->ht);
  return 1;
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
  if (l->n_actions > LW_MODEL_MAX_ACTIONS) {
    snprintf(err, errlen, "a model file holds at most %d actions (%d variants and \"not now\"); data with %d actions can be "
             "evaluated (uniform, always:ACTION) but not trained into a model", LW_MODEL_MAX_ACTIONS,
             LW_MODEL_MAX_ACTIONS - 1, l->n_actions);
    return LW_ERR_INVALID;
  }
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

void lw_estimator_gap(lw_estimator *s, double gap, double mass) {
  s->sum_gap += gap;
  s->sum_mass += mass;
}

void lw_estimator_result(const lw_estimator *s, lw_estimates *out) {
  memset(out, 0, sizeof *out);
  out->n = s->n;
  out->logged = mean_ci(s->n, s->sum_r, s->sum_r2);
  out->ips = mean_ci(s->n, s->sum_wr, s->sum_ips2);
  out->dr = mean_ci(s->n, s->sum_dr, s->sum_dr2);
  if (s->n > 0) { /* what actions without logged data could add, and nothing is credited for it */
    out->unsupported_value = s->sum_gap / s->n;
    out->dr.hi += out->unsupported_value;
    out->unsupported = s->sum_mass / s->n;
  }
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
  uint32_t ppm[LW_POLICY_MAX_ACTIONS];
  if (lw_model_policy(m, &t->policy, x, *n, offset, ppm, NULL) != LW_OK) memset(ppm, 0, sizeof ppm);
  for (int a = 0; a < t->n_actions; a++) pi[a] = t->map[a] >= 0 ? ppm[t->map[a]] / 1e6 : 0.0;
}

/* ---- passes over a source ----------------------------------------------------------- */

/* The first pass over a source: counts, time and reward ranges, the held-out split, the
 * {0 good, 1 bad} cost check; then the reader is put in the seeded order for every later pass. */
typedef struct {
  uint64_t records, skipped, held_out, tiny;
  int64_t t_min, t_max;
  double r_min, r_max;
  int costs_01;
  lw_split split;
  lw_label_kind labels;
  uint64_t open_windows;
} scan_t;

static int cmp_u64pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
  return x[1] < y[1] ? -1 : x[1] > y[1];
}

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

static lw_status scan_source(lw_reader *rd, lw_logged *rec, int mod, uint64_t seed, scan_t *sc, progress_t *pg,
                             char *err, size_t errlen) {
  memset(sc, 0, sizeof *sc);
  sc->split.mod = mod;
  uint64_t *tp = NULL; /* (t offset to t_min, hash) per record, for the time split */
  size_t cap = 0;
  int all_timed = 1, all_01 = 1, some_bad = 0, got;
  lw_status st = LW_OK;
  pg->phase = "scan";
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(pg, rd);
    if (sc->records == 0 || rec->reward < sc->r_min) sc->r_min = rec->reward;
    if (sc->records == 0 || rec->reward > sc->r_max) sc->r_max = rec->reward;
    sc->records++;
    if (rec->reward != 0.0 && rec->reward != -1.0) all_01 = 0;
    some_bad |= rec->reward == -1.0;
    if (rec->t && (!sc->t_min || rec->t < sc->t_min)) sc->t_min = rec->t;
    if (rec->t > sc->t_max) sc->t_max = rec->t;
    if (!rec->t) all_timed = 0;
    if (mod > 0 && all_timed) {
      if (sc->records > cap) {
        size_t nc = cap ? 2 * cap : 4096;
        uint64_t *p = realloc(tp, nc * 2 * sizeof *p);
        if (!p) {
          free(tp);
          snprintf(err, errlen, "out of memory");
          return LW_ERR_NOMEM;
        }
        tp = p;
        cap = nc;
      }
      tp[2 * (sc->records - 1)] = (uint64_t)rec->t ^ (1ULL << 63); /* order-preserving for signed t */
      tp[2 * (sc->records - 1) + 1] = lw_record_hash(rec);
    }
  }
  tick_done(pg);
  sc->skipped = lw_reader_skipped(rd);
  sc->labels = lw_reader_labels(rd);
  sc->open_windows = lw_reader_open_windows(rd);
  sc->tiny = lw_reader_tiny_values(rd);
  sc->costs_01 = sc->records > 0 && all_01 && some_bad;
  if (got < 0) st = LW_ERR_INVALID;
  if (st == LW_OK && mod > 0 && all_timed && sc->records > 0) {
    qsort(tp, sc->records, 2 * sizeof *tp, cmp_u64pair);
    uint64_t hold = (sc->records + (uint64_t)mod - 1) / (uint64_t)mod, at = sc->records - hold;
    sc->split.by_time = 1;
    sc->split.t_split = (int64_t)(tp[2 * at] ^ (1ULL << 63));
    sc->split.h_split = tp[2 * at + 1];
  }
  free(tp);
  if (st == LW_OK) st = lw_reader_order(rd, seed, err, errlen);
  if (st == LW_OK && mod > 0) { /* count the held-out records (cheap: the cache) */
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) sc->held_out += lw_split_holdout(&sc->split, rec);
    if (got < 0) st = LW_ERR_INVALID;
    else st = lw_reader_rewind(rd, err, errlen);
  }
  return st;
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

/* After the scan: a reservoir of persona states (in the seeded order); fits the centroids. */
static int pass_personas(lw_reader *rd, lw_logged *rec, const lw_train_opts *o, lw_rng *rng, lw_model *shape,
                         progress_t *pg, char *err, size_t errlen) {
  const int D = LW_MODEL_PERSONA_DIMS;
  double *pts = o->personas ? malloc((size_t)RESERVOIR * D * sizeof *pts) : NULL;
  if (o->personas && !pts) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  uint64_t seen = 0;
  int got = 0;
  pg->phase = "personas";
  if (lw_reader_rewind(rd, err, errlen) != LW_OK) {
    free(pts);
    return -1;
  }
  while (pts && (got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(pg, rd);
    double dims[LW_MODEL_PERSONA_DIMS];
    lw_persona_dims(rec->x, rec->n, dims);
    uint64_t slot = seen < RESERVOIR ? seen : lw_rng_next(rng) % (seen + 1);
    if (slot < RESERVOIR) memcpy(pts + slot * D, dims, sizeof dims);
    seen++;
  }
  tick_done(pg);
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
 * persona the record gets under the new centroids (as the runtime will assign it); then the
 * batch refinement's passes (lw_learner_refine_step), and with segments one more pass that
 * measures each segment's predicted share rate under the final weights. */
static lw_status pass_train(lw_reader *rd, lw_logged *rec, const lw_train_opts *o, const lw_source_opts *src,
                            const lw_split *split, const lw_model *shape, lw_learner *l, fair_sums *fs,
                            uint64_t *fingerprint, int64_t *support, int *refine_passes, progress_t *pg, char *err,
                            size_t errlen) {
  char phase[32];
  int got;
  lw_status st;
  for (int pass = 0; pass < o->passes; pass++) {
    int last = pass == o->passes - 1;
    snprintf(phase, sizeof phase, "train %d/%d", pass + 1, o->passes);
    pg->phase = phase;
    if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) return st;
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      tick(pg, rd);
      lw_apply_persona(shape, rec->x, &rec->n);
      if (lw_split_holdout(split, rec)) continue;
      if (last) {
        *fingerprint ^= lw_record_hash(rec);
        if (rec->action >= 0 && rec->action < src->n_actions) support[rec->action]++;
      }
      lw_learner_update(l, rec);
    }
    tick_done(pg);
    pg->phase = "";
    if (got < 0) return LW_ERR_INVALID;
  }
  if (lw_learner_refine_begin(l) != LW_OK) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  *refine_passes = 0;
  while (lw_learner_refining(l)) {
    snprintf(phase, sizeof phase, "refine %d", ++*refine_passes);
    pg->phase = phase;
    if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) return st;
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      tick(pg, rd);
      lw_apply_persona(shape, rec->x, &rec->n);
      if (!lw_split_holdout(split, rec)) lw_learner_refine_add(l, rec);
    }
    tick_done(pg);
    pg->phase = "";
    if (got < 0) return LW_ERR_INVALID;
    lw_learner_refine_step(l);
  }
  if (o->n_segments) {
    pg->phase = "fairness";
    if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) return st;
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      tick(pg, rd);
      lw_apply_persona(shape, rec->x, &rec->n);
      fair_add(fs, o, src, l, rec);
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

/* The reward model's predictions for every data action, in the metric's units. An action the
 * reward model has no logged record of is unsupported: it is credited the least it could be
 * worth (unsup[a] = 1, width[a] = the most it could add on top). */
static void reward_hats(const lw_learner *l, const lw_metric *mt, const lw_logged *rec, int n_actions, double *rh,
                        double *width, int *unsup) {
  double lo = l->o.reward_lo, hi = l->o.reward_hi;
  for (int a = 0; a < n_actions; a++) {
    unsup[a] = lw_learner_support(l, a) == 0;
    if (!unsup[a]) {
      rh[a] = lw_metric_value(mt, a, lw_learner_predict_reward(l, a, rec->x, rec->n));
      width[a] = 0.0;
    } else {
      double vlo = lw_metric_value(mt, a, lo), vhi = lw_metric_value(mt, a, hi);
      rh[a] = vlo < vhi ? vlo : vhi;
      width[a] = fabs(vhi - vlo);
    }
  }
}

/* One record's DR term for a target with probabilities pi; the unsupported part into est. */
static double dr_add(lw_estimator *est, const double *pi, const double *rh, const double *width, const int *unsup,
                     int n_actions, const lw_logged *rec, double r) {
  double dm = 0, gap = 0, mass = 0;
  for (int a = 0; a < n_actions; a++) {
    dm += pi[a] * rh[a];
    gap += pi[a] * width[a];
    mass += unsup[a] ? pi[a] : 0.0;
  }
  lw_estimator_add(est, pi[rec->action], rec->p, r, dm, rh[rec->action]);
  lw_estimator_gap(est, gap, mass);
  return dm + pi[rec->action] / rec->p * (r - rh[rec->action]);
}

/* The model's own estimate: DR on the held-out records (every record with --holdout-mod 0:
 * then it is in-sample), with the learner's float predictions as the reward model. */
static lw_status holdout_estimate(lw_reader *rd, lw_logged *rec, const lw_train_request *rq, const lw_split *split,
                                  const lw_model *m, const lw_learner *l, lw_estimates *out, progress_t *pg, char *err,
                                  size_t errlen) {
  const lw_source_opts *src = rq->src;
  lw_target t;
  lw_status st = lw_target_model(&t, m, rq->cfg, rq->pp, src->n_actions, src->actions, err, errlen);
  if (st != LW_OK) return st;
  lw_estimator est;
  lw_estimator_init(&est);
  lw_metric mt;
  lw_metric_init(&mt, 1, rq->cfg, rq->pp, src->n_actions, src->actions);
  if (lw_source_graded(src)) lw_metric_graded(&mt);
  pg->phase = "estimate";
  if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) return st;
  int got;
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(pg, rd);
    if (split->mod > 0 && !lw_split_holdout(split, rec)) continue;
    double pi[LW_LEARN_MAX_ACTIONS], rh[LW_LEARN_MAX_ACTIONS], width[LW_LEARN_MAX_ACTIONS];
    int unsup[LW_LEARN_MAX_ACTIONS];
    lw_target_probs(&t, rec->x, &rec->n, pi);
    reward_hats(l, &mt, rec, src->n_actions, rh, width, unsup);
    dr_add(&est, pi, rh, width, unsup, src->n_actions, rec, lw_metric_value(&mt, rec->action, rec->reward));
  }
  tick_done(pg);
  if (got < 0) return LW_ERR_INVALID;
  lw_estimator_result(&est, out);
  return LW_OK;
}

/* Channels that fit the person (learn.h lw_channel_ranking): one pass over every record,
 * each shared decision's label summed under its persona (the model's, as the runtime assigns
 * it) and the channel its share went through. */
static int cmp_rank(const void *a, const void *b) {
  const double *x = a, *y = b;
  return x[0] > y[0] ? -1 : x[0] < y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* The standard normal quantile of p in (0, 1), by bisection on erfc (exact to 1e-12). */
static double normal_quantile(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 100; i++) {
    double mid = 0.5 * (lo + hi);
    if (0.5 * erfc(-mid / sqrt(2.0)) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* One ranking from per-channel sums of labels, squared labels and counts, with its evidence
 * (learn.h lw_channel_ranking). */
static void rank_row(const double sum[LW_CHANNEL_COUNT], const double sum2[LW_CHANNEL_COUNT],
                     const int64_t cnt[LW_CHANNEL_COUNT], lw_channel_ranking *r) {
  double all = 0, n_all = 0;
  for (int c = 0; c < LW_CHANNEL_COUNT; c++) all += sum[c], n_all += (double)cnt[c];
  double prior = n_all > 0 ? all / n_all : 0.0;
  double rows[LW_CHANNEL_COUNT][2];
  int n = 0;
  for (int c = 0; c < LW_CHANNEL_COUNT; c++) {
    if (cnt[c] < LW_CHANNEL_MIN_SHARES) continue;
    rows[n][0] = (sum[c] + LW_CHANNEL_PRIOR * prior) / ((double)cnt[c] + LW_CHANNEL_PRIOR);
    rows[n++][1] = c;
  }
  qsort(rows, (size_t)n, sizeof rows[0], cmp_rank);
  memset(r, 0, sizeof *r);
  r->n_ranked = n;
  for (int i = 0; i < n; i++) {
    r->channel[i] = (int)rows[i][1];
    r->value[i] = rows[i][0];
    r->shares[i] = cnt[r->channel[i]];
  }
  if (n < 2) return; /* nothing to order */
  /* the first channel against the other shares */
  int c0 = r->channel[0];
  double n1 = (double)cnt[c0], n2 = n_all - n1, s1 = sum[c0], s2 = all - s1;
  double q1 = sum2[c0], q2 = -q1;
  for (int c = 0; c < LW_CHANNEL_COUNT; c++) q2 += sum2[c];
  if (n1 < 2 || n2 < 2) return;
  double m1 = s1 / n1, m2 = s2 / n2;
  double v1 = (q1 - n1 * m1 * m1) / (n1 - 1), v2 = (q2 - n2 * m2 * m2) / (n2 - 1);
  double se = sqrt((v1 > 0 ? v1 : 0) / n1 + (v2 > 0 ? v2 : 0) / n2);
  r->advantage = m1 - m2;
  r->lo = r->advantage - normal_quantile(1.0 - 0.025 / n) * se;
  r->confident = r->lo > 0;
}

const lw_channel_ranking *lw_carried_ranking(const lw_train_result *res, int k) {
  if (k < 0 || k >= res->n_channel_personas) return NULL;
  if (res->channels[k].confident) return &res->channels[k];
  return res->site_channels.confident ? &res->site_channels : NULL;
}

static lw_status rank_channels(lw_reader *rd, lw_logged *rec, const lw_model *m, lw_train_result *res,
                               progress_t *pg, char *err, size_t errlen) {
  int np = m->n_personas > 0 ? m->n_personas : 1;
  /* row np: every persona's shares together (the site's ranking) */
  static double sum[LW_MODEL_MAX_PERSONAS + 1][LW_CHANNEL_COUNT], sum2[LW_MODEL_MAX_PERSONAS + 1][LW_CHANNEL_COUNT];
  static int64_t cnt[LW_MODEL_MAX_PERSONAS + 1][LW_CHANNEL_COUNT];
  memset(sum, 0, sizeof sum);
  memset(sum2, 0, sizeof sum2);
  memset(cnt, 0, sizeof cnt);
  lw_status st = lw_reader_rewind(rd, err, errlen);
  if (st != LW_OK) return st;
  pg->phase = "channels";
  int got;
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(pg, rd);
    if (rec->channel < 0 || rec->channel >= LW_CHANNEL_COUNT) continue;
    int k = 0;
    if (m->n_personas > 0) {
      lw_apply_persona(NULL, rec->x, &rec->n); /* drop the persona the runtime logged */
      double dims[LW_MODEL_PERSONA_DIMS];
      lw_persona_dims(rec->x, rec->n, dims);
      k = lw_model_persona(m, dims);
      if (k < 0 || k >= np) k = 0;
    }
    for (int row = 0; row < 2; row++) {
      int kk = row ? np : k;
      sum[kk][rec->channel] += rec->reward;
      sum2[kk][rec->channel] += rec->reward * rec->reward;
      cnt[kk][rec->channel]++;
    }
  }
  tick_done(pg);
  if (got < 0) return LW_ERR_INVALID;
  res->n_channel_personas = np;
  for (int k = 0; k < np; k++) rank_row(sum[k], sum2[k], cnt[k], &res->channels[k]);
  rank_row(sum[np], sum2[np], cnt[np], &res->site_channels);
  return LW_OK;
}

/* The model's JSON metadata (models/FORMAT.md): how it was trained, on what, and what it is
 * estimated to be worth. "trained_on" lets the evaluator tell when it is shown the records the
 * model learned from: the data range, the held-out rule and a fingerprint of the trained set. */
static lw_status write_meta(lw_model *m, const lw_train_request *rq, const lw_train_result *res, const scan_t *sc,
                            uint64_t fingerprint, char *err, size_t errlen) {
  const lw_eval_report *rep = &res->report;
  char id[16], hex[24];
  snprintf(id, sizeof id, "m%u", m->model_id);
  cJSON *j = cJSON_CreateObject(), *data = cJSON_CreateObject(), *est = cJSON_CreateObject(),
        *flags = cJSON_CreateObject(), *on = cJSON_CreateObject(), *sup = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "model", id);
  cJSON_AddNumberToObject(j, "trained_at", (double)m->trained_at_ms);
  cJSON_AddItemToObject(j, "data", data);
  cJSON_AddNumberToObject(data, "from", (double)rep->t_min);
  cJSON_AddNumberToObject(data, "to", (double)rep->t_max);
  cJSON_AddNumberToObject(data, "records", (double)rep->records);
  cJSON_AddNumberToObject(data, "skipped", (double)rep->skipped);
  cJSON_AddItemToObject(j, "trained_on", on);
  cJSON_AddStringToObject(on, "rule", sc->split.mod <= 0 ? "all" : sc->split.by_time ? "time" : "hash");
  cJSON_AddNumberToObject(on, "holdout_mod", sc->split.mod);
  cJSON_AddNumberToObject(on, "t_split", (double)sc->split.t_split);
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sc->split.h_split);
  cJSON_AddStringToObject(on, "h_split", hex);
  cJSON_AddNumberToObject(on, "records", (double)(sc->records - (sc->split.mod > 0 ? sc->held_out : 0)));
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fingerprint);
  cJSON_AddStringToObject(on, "fingerprint", hex);
  cJSON_AddItemToObject(j, "estimate", est);
  cJSON_AddStringToObject(est, "metric", !res->net_metric ? "referral shares per decision"
                                         : rep->labels != LW_LABELS_SHARES ? "retained value per decision"
                                                                            : "net value per decision");
  /* What the labels were: a site without referee reports trains on the fallback, and says so. */
  cJSON *lab = cJSON_CreateObject();
  cJSON_AddItemToObject(j, "labels", lab);
  cJSON_AddStringToObject(lab, "kind", rep->labels == LW_LABELS_RETAINED   ? "retained_value"
                                       : rep->labels == LW_LABELS_FALLBACK || rep->labels == LW_LABELS_FALLBACK_OPEN
                                           ? "shares_fallback"
                                                                           : "shares");
  if (rep->labels != LW_LABELS_SHARES && rq->src->reward) {
    cJSON_AddNumberToObject(lab, "attribution_days", rq->src->reward->reward_attribution_days);
    cJSON_AddNumberToObject(lab, "open_windows_left_out", (double)rep->open_windows);
    if (rep->labels == LW_LABELS_FALLBACK || rep->labels == LW_LABELS_FALLBACK_OPEN) {
      cJSON_AddNumberToObject(lab, "value_per_share", rq->src->reward->reward_value_per_share);
      cJSON_AddStringToObject(lab, "reason", rep->labels == LW_LABELS_FALLBACK ? "no_referee_reports" : "no_closed_window");
    }
  }
  cJSON_AddStringToObject(est, "estimator", "dr");
  cJSON_AddStringToObject(est, "on", sc->split.mod > 0 ? "held-out" : "in-sample");
  cJSON_AddNumberToObject(est, "value", rep->target.dr.est);
  cJSON_AddNumberToObject(est, "lo", rep->target.dr.lo);
  cJSON_AddNumberToObject(est, "hi", rep->target.dr.hi);
  cJSON_AddNumberToObject(est, "n", rep->target.n);
  cJSON_AddNumberToObject(est, "ess", rep->target.ess);
  cJSON_AddNumberToObject(est, "logged", rep->target.logged.est);
  cJSON_AddItemToObject(j, "enough_data", flags);
  cJSON_AddItemToObject(j, "support", sup);
  for (int a = 0; a < m->n_actions; a++) {
    cJSON_AddBoolToObject(flags, m->action_ids[a], (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) != 0);
    cJSON_AddNumberToObject(sup, m->action_ids[a], (double)m->support[a]);
  }
  cJSON_AddNumberToObject(j, "personas", m->n_personas);
  /* channels that fit the person: per persona, best first (learn.h lw_channel_ranking) */
  cJSON *chs = cJSON_CreateObject();
  cJSON_AddItemToObject(j, "channels", chs);
  for (int k = 0; k < res->n_channel_personas; k++) {
    char name[24];
    snprintf(name, sizeof name, "persona-%d", k);
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToObject(chs, name, arr);
    const lw_channel_ranking *r = &res->channels[k];
    for (int i = 0; i < r->n_ranked; i++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "channel", lw_channel_name((lw_channel)r->channel[i]));
      cJSON_AddNumberToObject(o, "value_per_share", r->value[i]);
      cJSON_AddNumberToObject(o, "shares", (double)r->shares[i]);
      cJSON_AddItemToArray(arr, o);
    }
  }
  /* the evidence each ranking carries and which order the model carries (lw_carried_ranking) */
  cJSON *evd = cJSON_CreateObject();
  cJSON_AddItemToObject(j, "channel_evidence", evd);
  for (int k = 0; k < res->n_channel_personas; k++) {
    char name[24];
    snprintf(name, sizeof name, "persona-%d", k);
    const lw_channel_ranking *r = &res->channels[k];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(evd, name, o);
    cJSON_AddNumberToObject(o, "advantage", r->advantage);
    cJSON_AddNumberToObject(o, "lo", r->lo);
    const lw_channel_ranking *c = lw_carried_ranking(res, k);
    cJSON_AddStringToObject(o, "carried", !c ? "none" : c == r ? "own" : "site");
  }
  if (res->n_channel_personas > 1) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(evd, "site", o);
    cJSON_AddNumberToObject(o, "advantage", res->site_channels.advantage);
    cJSON_AddNumberToObject(o, "lo", res->site_channels.lo);
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToObject(o, "order", arr);
    for (int i = 0; i < res->site_channels.n_ranked; i++)
      cJSON_AddItemToArray(arr, cJSON_CreateString(lw_channel_name((lw_channel)res->site_channels.channel[i])));
  }
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

static void report_scan(lw_eval_report *rep, const scan_t *sc) {
  rep->records = sc->records;
  rep->skipped = sc->skipped;
  rep->t_min = sc->t_min;
  rep->t_max = sc->t_max;
  rep->tiny_values = sc->tiny;
  rep->reward_lo = sc->r_min < 0 ? sc->r_min : 0.0;
  rep->reward_hi = sc->r_max > 1 ? sc->r_max : 1.0;
  rep->costs_look_01 = sc->costs_01;
  rep->labels = sc->labels;
  rep->attribution_days = 0;
  rep->open_windows = sc->open_windows;
}

lw_status lw_train(const lw_train_request *rq, lw_train_result *res, char *err, size_t errlen) {
  const lw_source_opts *src = rq->src;
  lw_train_opts o = *rq->opts;
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
  for (int s = 0; s < o.n_segments; s++) fs.h[s] = lw_fnv1a(o.segments[s]);
  lw_rng rng;
  lw_rng_seed(&rng, rq->seed, 0x6c6561726eULL);
  scan_t sc;
  uint64_t fingerprint = 0;
  if (!rec || !shape) {
    st = LW_ERR_NOMEM;
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  if (src->n_actions > LW_MODEL_MAX_ACTIONS) {
    snprintf(err, errlen, "a model file holds at most %d actions (%d variants and \"not now\"), the data has %d: "
             "loopwise-eval can evaluate it", LW_MODEL_MAX_ACTIONS, LW_MODEL_MAX_ACTIONS - 1, src->n_actions);
    st = LW_ERR_INVALID;
    goto done;
  }
  if ((st = lw_reader_open(src, &rd, err, errlen)) != LW_OK) goto done;
  if ((st = scan_source(rd, rec, o.holdout_mod, rq->seed, &sc, &pg, err, errlen)) != LW_OK) goto done;
  report_scan(&res->report, &sc);
  if (src->reward) res->report.attribution_days = (int)src->reward->reward_attribution_days;
  if (sc.records == 0) {
    snprintf(err, errlen, "no logged decisions to learn from (the input is empty%s)",
             sc.skipped ? " or every decision was skipped: no choice, holdout or an action not in the list" : "");
    st = LW_ERR_INVALID;
    goto done;
  }
  /* as the model file stores them (f32), so the trainer's estimates and the runtime's policy
   * map predictions back to value identically */
  o.reward_lo = (double)(float)res->report.reward_lo;
  o.reward_hi = (double)(float)res->report.reward_hi;
  if (pass_personas(rd, rec, &o, &rng, shape, &pg, err, errlen) < 0) {
    st = LW_ERR_INVALID;
    goto done;
  }
  if ((st = lw_learner_create(&o, src->n_actions, src->actions, &l)) != LW_OK) {
    snprintf(err, errlen, "bad training options (bits 8-16)");
    goto done;
  }
  int64_t support[LW_LEARN_MAX_ACTIONS] = {0};
  if ((st = pass_train(rd, rec, &o, src, &sc.split, shape, l, &fs, &fingerprint, support, &res->refine_passes, &pg,
                       err, errlen)) != LW_OK)
    goto done;
  if ((st = lw_learner_to_model(l, &m, err, errlen)) != LW_OK) goto done;
  for (int a = 0; a < m->n_actions; a++) m->support[a] = support[a]; /* records, not updates (passes) */
  m->n_personas = shape->n_personas;
  m->persona_dims = shape->persona_dims;
  memcpy(m->centroids, shape->centroids, sizeof m->centroids);
  memcpy(m->mean, shape->mean, sizeof m->mean);
  memcpy(m->sd, shape->sd, sizeof m->sd);
  fairness_offsets(&o, &fs, m);
  if (lw_source_graded(src) && o.reward_lo < o.reward_hi) { /* value labels: the policy prices in their units */
    m->value_labels = 1;
    m->reward_lo = (float)o.reward_lo;
    m->reward_hi = (float)o.reward_hi;
  }
  m->model_id = rq->model_id;
  m->trained_at_ms = rq->now_ms;
  res->held_out = sc.split.mod > 0 ? sc.held_out : 0;
  res->in_sample = sc.split.mod <= 0;
  if ((st = holdout_estimate(rd, rec, rq, &sc.split, m, l, &res->report.target, &pg, err, errlen)) != LW_OK) goto done;
  if ((st = rank_channels(rd, rec, m, res, &pg, err, errlen)) != LW_OK) goto done;
  /* the model carries each persona's ranking with its evidence, else the site's with its own, else
   * none for that persona (format 3; learn.h lw_channel_ranking) */
  m->n_channel_rows = 0;
  for (int k = 0; k < res->n_channel_personas; k++) {
    const lw_channel_ranking *r = lw_carried_ranking(res, k);
    if (r) m->n_channel_rows = res->n_channel_personas;
  }
  for (int k = 0; k < m->n_channel_rows; k++) {
    const lw_channel_ranking *r = lw_carried_ranking(res, k);
    m->n_channels[k] = r ? (uint8_t)r->n_ranked : 0;
    for (int i = 0; i < m->n_channels[k]; i++) m->channels[k][i] = (uint8_t)r->channel[i];
  }
  if ((st = write_meta(m, rq, res, &sc, fingerprint, err, errlen)) != LW_OK) goto done;
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

/* What a model's metadata says it was trained on (write_meta's "trained_on"). */
typedef struct {
  int known;
  int64_t from, to;
  lw_split split;
  uint64_t records, fingerprint;
} trained_on;

static void read_trained_on(const lw_model *m, trained_on *to) {
  memset(to, 0, sizeof *to);
  cJSON *j = m && m->meta_json ? cJSON_Parse(m->meta_json) : NULL;
  cJSON *on = cJSON_GetObjectItemCaseSensitive(j, "trained_on"), *data = cJSON_GetObjectItemCaseSensitive(j, "data");
  if (cJSON_IsObject(on)) {
    cJSON *rule = cJSON_GetObjectItemCaseSensitive(on, "rule");
    const char *rs = cJSON_IsString(rule) ? rule->valuestring : "";
    to->known = 1;
    to->split.mod = strcmp(rs, "all") == 0 ? 0 : (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(on, "holdout_mod"));
    to->split.by_time = strcmp(rs, "time") == 0;
    to->split.t_split = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(on, "t_split"));
    const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(on, "h_split"));
    const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(on, "fingerprint"));
    to->split.h_split = h ? strtoull(h, NULL, 16) : 0;
    to->fingerprint = f ? strtoull(f, NULL, 16) : 0;
    to->records = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(on, "records"));
    to->from = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(data, "from"));
    to->to = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(data, "to"));
    if (to->split.mod < 0) to->known = 0;
  }
  cJSON_Delete(j);
}

static int was_trained_on(const trained_on *to, const lw_logged *rec) {
  if (!to->known) return 0;
  if (rec->t && (rec->t < to->from || rec->t > to->to)) return 0;
  return !lw_split_holdout(&to->split, rec);
}

static int is_prompt_action(const lw_source_opts *src, int a) { return strcmp(src->actions[a], LW_ACTION_NOT_NOW) != 0; }

/* Evaluation core: a scan (split, reward range, order), cross-fitted reward models, then
 * every target on every record (or only the held-out ones). With cand >= 0, diffs[k]
 * accumulates DR(target cand) − DR(target k) record by record (paired). */
static lw_status eval_core(const lw_source_opts *src, lw_target *targets, int n_targets, const lw_metric *mt,
                           const lw_eval_opts *eo, lw_eval_report *reps, int cand, lw_estimator *diffs, char *err,
                           size_t errlen) {
  lw_reader *rd = NULL;
  lw_learner *fold[2] = {NULL, NULL};
  lw_logged *rec = malloc(sizeof *rec);
  lw_estimator *est = calloc((size_t)n_targets, sizeof *est);
  double *drv = calloc((size_t)n_targets, sizeof *drv);
  trained_on *ton = calloc((size_t)n_targets, sizeof *ton);
  uint64_t *fp = calloc((size_t)n_targets, sizeof *fp);
  lw_status st = LW_OK;
  progress_t pg = {eo->progress, eo->progress_ctx, "", 0};
  lw_train_opts o;
  lw_train_defaults(&o);
  o.personas = 0;
  scan_t sc;
  uint32_t seg_h[LW_MODEL_MAX_SEGMENTS];
  for (int s = 0; s < eo->n_segments; s++) seg_h[s] = lw_fnv1a(eo->segments[s]);
  if (!rec || !est || !drv || !ton || !fp) {
    st = LW_ERR_NOMEM;
    goto done;
  }
  for (int k = 0; k < n_targets; k++) {
    memset(&reps[k], 0, sizeof reps[k]);
    lw_estimator_init(&est[k]);
    if (targets[k].kind == LW_TARGET_MODEL) read_trained_on(targets[k].model, &ton[k]);
  }
  if ((st = lw_reader_open(src, &rd, err, errlen)) != LW_OK) goto done;
  if ((st = scan_source(rd, rec, eo->only_holdout, eo->seed, &sc, &pg, err, errlen)) != LW_OK) goto done;
  if (sc.records == 0) {
    snprintf(err, errlen, "no logged decisions to evaluate on (the input is empty%s)",
             sc.skipped ? " or every decision was skipped: no choice, holdout or an action not in the list" : "");
    st = LW_ERR_INVALID;
    goto done;
  }
  for (int k = 0; k < n_targets; k++) report_scan(&reps[k], &sc);
  o.reward_lo = reps[0].reward_lo;
  o.reward_hi = reps[0].reward_hi;
  for (int f = 0; f < 2; f++)
    if ((st = lw_learner_create(&o, src->n_actions, src->actions, &fold[f])) != LW_OK) goto done;
  int got;
  for (int pass = 0; pass < 2; pass++) {
    pg.phase = pass ? "reward model 2/2" : "reward model 1/2";
    if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) goto done;
    while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      tick(&pg, rd);
      lw_learner_update(fold[lw_record_fold(rec)], rec);
    }
    tick_done(&pg);
    if (got < 0) {
      st = LW_ERR_INVALID;
      goto done;
    }
  }
  if ((st = lw_reader_rewind(rd, err, errlen)) != LW_OK) goto done;
  pg.phase = "estimate";
  if (diffs)
    for (int k = 0; k < n_targets; k++) lw_estimator_init(&diffs[k]);
  uint64_t records = 0;
  int64_t tmin = 0, tmax = 0;
  while ((got = lw_reader_next(rd, rec, err, errlen)) == 1) {
    tick(&pg, rd);
    if (eo->only_holdout > 0 && !lw_split_holdout(&sc.split, rec)) continue;
    records++;
    if (rec->t && (!tmin || rec->t < tmin)) tmin = rec->t;
    if (rec->t > tmax) tmax = rec->t;
    const lw_learner *rm = fold[lw_record_fold(rec) ^ 1];
    double rh[LW_LEARN_MAX_ACTIONS], width[LW_LEARN_MAX_ACTIONS];
    int unsup[LW_LEARN_MAX_ACTIONS];
    reward_hats(rm, mt, rec, src->n_actions, rh, width, unsup);
    double r = lw_metric_value(mt, rec->action, rec->reward);
    int in_seg[LW_MODEL_MAX_SEGMENTS];
    for (int s = 0; s < eo->n_segments; s++) {
      in_seg[s] = 0;
      for (int i = 0; i < rec->n && !in_seg[s]; i++) in_seg[s] = rec->x[i].hash == seg_h[s];
    }
    for (int k = 0; k < n_targets; k++) {
      lw_feature x[LW_LEARN_MAX_FEATURES];
      int n = rec->n;
      memcpy(x, rec->x, (size_t)n * sizeof *x);
      double pi[LW_LEARN_MAX_ACTIONS], exposure = 0;
      if (was_trained_on(&ton[k], rec)) {
        reps[k].trained_on++;
        fp[k] ^= lw_record_hash(rec);
      }
      if (targets[k].kind == LW_TARGET_LOGGED) { /* on-policy: every estimator is the observed mean */
        lw_estimator_add(&est[k], rec->p, rec->p, r, 0, 0);
        drv[k] = r;
        exposure = is_prompt_action(src, rec->action);
      } else {
        lw_target_probs(&targets[k], x, &n, pi);
        drv[k] = dr_add(&est[k], pi, rh, width, unsup, src->n_actions, rec, r);
        for (int a = 0; a < src->n_actions; a++) exposure += is_prompt_action(src, a) ? pi[a] : 0.0;
      }
      for (int s = 0; s < eo->n_segments; s++)
        if (in_seg[s]) {
          reps[k].exposure[s] += exposure;
          reps[k].segment_n[s] += 1;
        }
    }
    if (diffs)
      for (int k = 0; k < n_targets; k++) lw_estimator_add(&diffs[k], 0, 1, 0, drv[cand] - drv[k], 0);
  }
  tick_done(&pg);
  if (got < 0) {
    st = LW_ERR_INVALID;
    goto done;
  }
  for (int k = 0; k < n_targets; k++) {
    lw_estimator_result(&est[k], &reps[k].target);
    reps[k].records = records;
    reps[k].t_min = tmin;
    reps[k].t_max = tmax;
    reps[k].exactly_trained = ton[k].known && reps[k].trained_on == ton[k].records && fp[k] == ton[k].fingerprint &&
                              reps[k].trained_on > 0;
    /* records without times (VW) match the held-out rule whatever file they come from: only
     * the fingerprint of the whole training set can tell, so only an exact match counts */
    if (!reps[k].exactly_trained && !tmax) reps[k].trained_on = 0;
    reps[k].n_segments = eo->n_segments;
    for (int s = 0; s < eo->n_segments; s++)
      if (reps[k].segment_n[s] > 0) reps[k].exposure[s] /= reps[k].segment_n[s];
    if (diffs) { /* unsupported actions widen a difference both ways */
      diffs[k].sum_gap = est[cand].sum_gap;
      diffs[k].sum_mass = est[cand].sum_mass;
    }
  }
done:
  if (st == LW_ERR_NOMEM) snprintf(err, errlen, "out of memory");
  lw_learner_free(fold[0]);
  lw_learner_free(fold[1]);
  lw_reader_close(rd);
  free(rec);
  free(est);
  free(drv);
  free(ton);
  free(fp);
  return st;
}

lw_status lw_eval_source(const lw_source_opts *src, lw_target *targets, int n_targets, const lw_metric *metric,
                         const lw_eval_opts *eo, lw_eval_report *reps, char *err, size_t errlen) {
  return eval_core(src, targets, n_targets, metric, eo, reps, -1, NULL, err, errlen);
}

void lw_promote_defaults(lw_promote_opts *o) {
  memset(o, 0, sizeof *o);
  o->eval.only_holdout = 10;
  o->eval.seed = 1;
  o->min_holdout = 200;
  o->margin = 0.02;
}

/* Targets: 0 the candidate, 1 the rules (logging policy), 2 the current model (when there is
 * one), then always:<action> for each data action. */
int lw_model_decides(const lw_model *m) {
  for (int a = 0; m && a < m->n_actions; a++)
    if (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) return 1;
  return 0;
}

/* A copy of candidate to change (through its own file format, so nothing is shared). */
static lw_status copy_model(const lw_model *candidate, lw_model **m, char *err, size_t errlen) {
  uint8_t *buf = NULL;
  size_t n = 0;
  lw_status st = lw_model_write(candidate, &buf, &n, err, errlen);
  if (st == LW_OK) st = lw_model_load(buf, n, m, err, errlen);
  free(buf);
  return st;
}

/* m's metadata made to say what it now is: each action's enough-data flag as m has it, and
 * which fallback it is (key `what`: "channels_only" true, or "single_action" the action); then
 * m written into *out. Frees m. */
static lw_status write_relabelled(lw_model *m, const char *what, const char *action, uint8_t **out, size_t *len,
                                  char *err, size_t errlen) {
  cJSON *meta = m->meta_json && m->meta_json[0] ? cJSON_Parse(m->meta_json) : cJSON_CreateObject();
  if (meta) {
    cJSON *ed = cJSON_GetObjectItemCaseSensitive(meta, "enough_data");
    for (cJSON *e = ed ? ed->child : NULL; e; e = e->next) {
      int a = e->string ? lw_model_action_index(m, e->string) : -1;
      e->type = a >= 0 && (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) ? cJSON_True : cJSON_False;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, what);
    if (action ? !cJSON_AddStringToObject(meta, what, action) : !cJSON_AddBoolToObject(meta, what, 1)) {
      cJSON_Delete(meta);
      meta = NULL;
    }
    char *text = meta ? cJSON_PrintUnformatted(meta) : NULL;
    cJSON_Delete(meta);
    if (!text) {
      lw_model_free(m);
      snprintf(err, errlen, "out of memory");
      return LW_ERR_NOMEM;
    }
    free(m->meta_json);
    m->meta_json = text;
  }
  lw_status st = lw_model_write(m, out, len, err, errlen);
  lw_model_free(m);
  return st;
}

lw_status lw_channels_only_model(const lw_model *candidate, uint8_t **out, size_t *len, char *err, size_t errlen) {
  int ranked = 0;
  for (int k = 0; k < candidate->n_channel_rows; k++) ranked |= candidate->n_channels[k] > 0;
  if (!ranked) {
    snprintf(err, errlen, "the candidate carries no channel ranking");
    return LW_ERR_INVALID;
  }
  lw_model *m = NULL;
  lw_status st = copy_model(candidate, &m, err, errlen);
  if (st != LW_OK) return st;
  for (int a = 0; a < m->n_actions; a++) m->action_flags[a] &= (uint8_t)~LW_MODEL_ENOUGH_DATA;
  return write_relabelled(m, "channels_only", NULL, out, len, err, errlen);
}

lw_status lw_single_action_model(const lw_model *candidate, const char *action, uint8_t **out, size_t *len, char *err,
                                 size_t errlen) {
  int pick = lw_model_action_index(candidate, action);
  if (pick < 0) {
    snprintf(err, errlen, "the candidate has no action '%s'", action);
    return LW_ERR_INVALID;
  }
  lw_model *m = NULL;
  lw_status st = copy_model(candidate, &m, err, errlen);
  if (st != LW_OK) return st;
  memset(m->weights, 0, ((size_t)1 << m->bits) * sizeof *m->weights);
  m->scale = 1.0f;
  uint32_t bias = lw_fnv1a("bias");
  for (int a = 0; a < m->n_actions; a++) {
    uint32_t i = lw_model_index(m, a, bias);
    if (m->weights[i] != 0.0f) { /* two actions' bias weights in one slot of the table */
      snprintf(err, errlen, "the actions' bias weights collide at %u bits", (unsigned)m->bits);
      lw_model_free(m);
      return LW_ERR_INVALID;
    }
    m->weights[i] = a == pick ? LW_SINGLE_LOGIT : -LW_SINGLE_LOGIT;
  }
  m->n_segments = 0;
  m->action_flags[pick] |= LW_MODEL_ENOUGH_DATA;
  return write_relabelled(m, "single_action", action, out, len, err, errlen);
}

const char *lw_fallback_name(lw_fallback_kind k) {
  return k == LW_FALLBACK_SINGLE ? "single" : k == LW_FALLBACK_CHANNELS ? "channels" : "none";
}

int lw_model_single_action(const lw_model *m, char out[LW_NAME_LEN + 1]) {
  out[0] = '\0';
  if (!m || !m->meta_json) return 0;
  cJSON *meta = cJSON_Parse(m->meta_json);
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(meta, "single_action");
  if (cJSON_IsString(a) && strlen(a->valuestring) <= LW_NAME_LEN) snprintf(out, LW_NAME_LEN + 1, "%s", a->valuestring);
  cJSON_Delete(meta);
  return out[0] != '\0';
}

lw_status lw_fallback_model(const lw_source_opts *src, const lw_model *current, const lw_model *candidate,
                            const lw_compare_result *refused, const lw_config *cfg, const lw_policy_params *pp,
                            const lw_metric *metric, const lw_promote_opts *po, lw_fallback *out, char *err,
                            size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *best = refused->best_single_action;
  lw_status st = LW_OK;
  char live[LW_NAME_LEN + 1];
  int single_live = current && lw_model_single_action(current, live);
  if (current && !single_live) {
    snprintf(out->reason, sizeof out->reason, "nothing: the live model stays");
    return LW_OK;
  }
  /* the best single action, a prompt estimated above what decides now (the rules, or the live
   * single action, whose decisions then logged the records the "rules" target replays) */
  double now_est = single_live ? refused->model.est : refused->rules.est;
  if (best[0] && strcmp(best, LW_ACTION_NOT_NOW) != 0 && (!single_live || strcmp(best, live) != 0) &&
      refused->best_single.est > now_est && lw_model_action_index(candidate, best) >= 0) {
    uint8_t *buf = NULL;
    size_t n = 0;
    lw_model *single = NULL;
    if ((st = lw_single_action_model(candidate, best, &buf, &n, err, errlen)) == LW_OK)
      st = lw_model_load(buf, n, &single, err, errlen);
    lw_promote_opts vs = *po;
    vs.against_rules = 1;
    if (st == LW_OK)
      st = lw_compare_models(src, NULL, single, cfg, pp, metric, &vs, &out->single, err, errlen);
    lw_model_free(single);
    if (st == LW_OK && out->single.promote) {
      out->kind = LW_FALLBACK_SINGLE;
      out->bytes = buf;
      out->len = n;
      snprintf(out->action, sizeof out->action, "%s", best);
      snprintf(out->reason, sizeof out->reason, "always %s%s%s, exploring as configured: %s%s (difference %.6f [%.6f, %.6f])",
               best, single_live ? " in place of always " : "", single_live ? live : "", out->single.reason,
               single_live ? " (the logged decisions, always that action's)" : "", out->single.diff.est,
               out->single.diff.lo, out->single.diff.hi);
      return LW_OK;
    }
    free(buf);
    if (st != LW_OK) return st;
  }
  if (single_live) { /* stays; the candidate's rankings join it */
    if (lw_single_action_model(candidate, live, &out->bytes, &out->len, err, errlen) != LW_OK) {
      snprintf(out->reason, sizeof out->reason, "nothing: %s", err);
      return LW_OK;
    }
    out->kind = LW_FALLBACK_SINGLE;
    snprintf(out->action, sizeof out->action, "%s", live);
    snprintf(out->reason, sizeof out->reason, "always %s kept, with the candidate's channel rankings", live);
    if (out->single.n > 0) {
      size_t k = strlen(out->reason);
      snprintf(out->reason + k, sizeof out->reason - k, "; always %s was not taken in its place: %s", best,
               out->single.reason);
    }
    return LW_OK;
  }
  char why[LW_ERRMSG_MAX];
  if (lw_channels_only_model(candidate, &out->bytes, &out->len, why, sizeof why) == LW_OK) {
    out->kind = LW_FALLBACK_CHANNELS;
    snprintf(out->reason, sizeof out->reason, "the candidate's channel rankings, the rules still deciding");
  } else {
    snprintf(out->reason, sizeof out->reason, "nothing: %s", why);
  }
  if (out->single.n > 0) { /* why the single action was not taken */
    size_t k = strlen(out->reason);
    snprintf(out->reason + k, sizeof out->reason - k, "; always %s was not: %s", best, out->single.reason);
  }
  return LW_OK;
}

lw_status lw_compare_models(const lw_source_opts *src, const lw_model *current, const lw_model *candidate,
                            const lw_config *cfg, const lw_policy_params *pp, const lw_metric *metric,
                            const lw_promote_opts *po, lw_compare_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (po->against_rules) current = NULL;
  int singles = po->against_rules ? 0 : src->n_actions;
  int nt = 2 + (current != NULL) + singles, first_single = 2 + (current != NULL);
  lw_target *t = calloc((size_t)nt, sizeof *t);
  lw_eval_report *reps = calloc((size_t)nt, sizeof *reps);
  lw_estimator *diffs = calloc((size_t)nt, sizeof *diffs);
  lw_status st = LW_OK;
  if (!t || !reps || !diffs) {
    snprintf(err, errlen, "out of memory");
    st = LW_ERR_NOMEM;
    goto done;
  }
  if ((st = lw_target_model(&t[0], candidate, cfg, pp, src->n_actions, src->actions, err, errlen)) != LW_OK) goto done;
  t[1].kind = LW_TARGET_LOGGED;
  t[1].n_actions = src->n_actions;
  if (current && (st = lw_target_model(&t[2], current, cfg, pp, src->n_actions, src->actions, err, errlen)) != LW_OK)
    goto done;
  for (int a = 0; a < singles; a++) {
    t[first_single + a].kind = LW_TARGET_ALWAYS;
    t[first_single + a].always = a;
    t[first_single + a].n_actions = src->n_actions;
  }
  if ((st = eval_core(src, t, nt, metric, &po->eval, reps, 0, diffs, err, errlen)) != LW_OK) goto done;
  /* the best baseline by its DR estimate */
  int best = 1, best_single = first_single;
  for (int k = first_single; k < nt; k++)
    if (reps[k].target.dr.est > reps[best_single].target.dr.est) best_single = k;
  for (int k = 1; k < nt; k++)
    if (reps[k].target.dr.est > reps[best].target.dr.est) best = k;
  out->candidate = reps[0].target.dr;
  out->rules = reps[1].target.dr;
  out->has_model = current != NULL;
  if (current) out->model = reps[2].target.dr;
  if (singles) {
    out->best_single = reps[best_single].target.dr;
    snprintf(out->best_single_action, sizeof out->best_single_action, "%s", src->actions[best_single - first_single]);
  }
  out->current = reps[best].target.dr;
  if (best == 1) snprintf(out->baseline, sizeof out->baseline, "rules");
  else if (current && best == 2) snprintf(out->baseline, sizeof out->baseline, "model m%u", current->model_id);
  else snprintf(out->baseline, sizeof out->baseline, "always:%s", src->actions[best - first_single]);
  lw_estimates d;
  lw_estimator_result(&diffs[best], &d);
  out->diff = d.dr;
  /* what the baseline's own unsupported actions could add lowers the difference's low end */
  out->diff.lo -= reps[best].target.unsupported_value;
  out->n = d.n;
  out->unsupported = reps[0].target.unsupported;
  out->threshold = po->against_rules ? 0.0 : -po->margin * fabs(out->current.est);
  out->exposure_ratio = 1.0;
  double hi = 0, lo = INFINITY;
  for (int s = 0; s < reps[0].n_segments; s++)
    if (reps[0].segment_n[s] > 0) {
      hi = reps[0].exposure[s] > hi ? reps[0].exposure[s] : hi;
      lo = reps[0].exposure[s] < lo ? reps[0].exposure[s] : lo;
    }
  if (hi > 0 && lo < INFINITY) out->exposure_ratio = lo / hi;
  if (out->n < po->min_holdout)
    snprintf(out->reason, sizeof out->reason, "only %.0f held-out decisions (at least %d needed)", out->n, po->min_holdout);
  else if (!(out->diff.lo > out->threshold))
    snprintf(out->reason, sizeof out->reason, "the difference from %s is not above %.3g (lower end %.6f)", out->baseline,
             out->threshold, out->diff.lo);
  else if (po->fair_ratio > 0 && out->exposure_ratio < po->fair_ratio)
    snprintf(out->reason, sizeof out->reason, "segment exposure ratio %.3f is below the fairness ratio %.3g",
             out->exposure_ratio, po->fair_ratio);
  else {
    out->promote = 1;
    snprintf(out->reason, sizeof out->reason, po->against_rules ? "better than %s" : "not worse than %s beyond the margin",
             out->baseline);
  }
done:
  free(t);
  free(reps);
  free(diffs);
  return st;
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
