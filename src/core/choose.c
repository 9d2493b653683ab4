/* choose.c: drawing an action once no constraint blocks, in one of three modes:
 *   holdout  a configured fraction of installs (by install key) always gets the rules;
 *   model    a loaded model with enough data: softmax over expected net value, with a floor;
 *   rules    otherwise (cold start): the configured weights.
 * Probabilities are exact multiples of one millionth and the draw is an integer in
 * [0, 1e6), so the logged probability is exactly the one the action was chosen with, on
 * every platform. */
#include <string.h>

#include "engine_internal.h"
#include "sbuf.h"

static double fabs_(double v) { return v < 0 ? -v : v; }

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

/* The configured weights. Outside the holdout (the baseline, kept as configured) "not now"
 * gets at least explore.not_now, so the first model can learn when not to ask; the variants
 * then share the rest by weight. */
void lw_engine_choose_by_rules(lw_engine *e, const char *how, const char *event, uint32_t count, lw_decision *d) {
  const lw_config *cfg = &e->cfg;
  uint32_t w[LW_MAX_VARIANTS + 1], ppm[LW_MAX_VARIANTS + 1];
  int n = cfg->n_variants;
  for (int i = 0; i < n; i++) w[i] = cfg->variants[i].weight;
  w[n] = cfg->not_now_weight;
  lw_ppm_split(w, n + 1, ppm);
  uint32_t least = (uint32_t)(cfg->explore_not_now * LW_PPM + 0.5);
  if (d->mode != LW_MODE_HOLDOUT && ppm[n] < least) {
    lw_ppm_split_to(w, n, LW_PPM - least, ppm);
    ppm[n] = least;
  }
  int pick = draw(e, ppm, n + 1);
  d->p_ppm = ppm[pick];
  set_action(e, d, pick == n ? -1 : pick, how, event, count);
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

/* The model's policy; a virtual action (a variant the model has no action for) has no
 * features to explain. */
void lw_engine_choose_by_model(lw_engine *e, const char *event, uint32_t count, lw_decision *d) {
  const lw_policy *pol = &e->pol;
  const int *variant_of = e->variant_of;
  uint32_t ppm[LW_POLICY_MAX_ACTIONS];
  int n = e->model->n_actions;
  lw_model_policy(e->model, pol, e->x, e->n_x, fairness_offset(e), ppm, NULL);
  int a = draw(e, ppm, n + pol->n_virtual);
  d->p_ppm = ppm[a];
  set_action(e, d, a >= n ? pol->virtual_variant[a - n] : pol->is_prompt[a] ? variant_of[a] : -1, "model at ", event,
             count);
  if (a < n) explain(e, a, d);
}

int lw_engine_in_holdout(const lw_engine *e) {
  const uint8_t *k = e->guard.install;
  uint32_t u = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
  return (double)u < e->cfg.holdout * 4294967296.0;
}

