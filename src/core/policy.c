/* policy.c: what the runtime and the learning tools must agree on about a model's policy:
 * the persona dimensions of a feature vector, the persona feature, and which actions of a
 * model a config lets the policy choose, with the config's exploration settings.
 *
 * These used to be written twice, once in the engine and once in the trainer/evaluator; an
 * evaluator that scores a model differently from the runtime estimates a policy nobody runs.
 * There is one copy now, here, and tests/tools/test_sim.c checks it against the engine's
 * logged decisions. */
#include <string.h>

#include "config_schema.h"
#include "loopwise/model.h"

/* The persona dimensions of models/FORMAT.md: feature names whose values make the point. */
static const char *const k_persona_names[LW_MODEL_PERSONA_DIMS] = {"act^d7",   "act^d30", "tenure",    "sessions",
                                                                   "features", "shown",   "dismissed", "shared"};

void lw_persona_dims(const lw_feature *x, int n, double dims[LW_MODEL_PERSONA_DIMS]) {
  for (int d = 0; d < LW_MODEL_PERSONA_DIMS; d++) {
    uint32_t h = lw_fnv1a(k_persona_names[d]);
    dims[d] = 0.0;
    for (int i = 0; i < n; i++) /* the last one wins, as a feature vector never repeats a name */
      if (x[i].hash == h) dims[d] = (double)x[i].q / LW_FX_ONE;
  }
}

uint32_t lw_persona_hash(int k) {
  char d[12];
  int n = 0;
  unsigned v = k < 0 ? 0u : (unsigned)k;
  do d[sizeof d - 1 - n++] = (char)('0' + v % 10); while ((v /= 10) && n < (int)sizeof d);
  return lw_fnv1a_bytes(lw_fnv1a("persona^"), d + sizeof d - n, (size_t)n);
}

/* The config's settings of the policy. */
static void settings_of(const lw_config *cfg, lw_policy *pol) {
  pol->value = cfg->value_per_referral;
  pol->fatigue = cfg->fatigue_cost;
  pol->temperature = cfg->explore_temperature;
  pol->relative = cfg->explore_relative;
  pol->floor = cfg->explore_floor;
  pol->not_now = cfg->explore_not_now;
  pol->new_variant = cfg->explore_new_variant;
}

/* A tool run without a config uses what a config that says nothing gives the runtime: the
 * config schema's defaults (src/core/config_schema.c). Its own function so that the 14 KB
 * config on its stack is only there when this path runs (never in the engine). */
static void __attribute__((noinline)) settings_from_defaults(lw_policy *pol) {
  lw_config defaults;
  lw_cfg_defaults(&defaults);
  settings_of(&defaults, pol);
}

void lw_policy_settings(const lw_config *cfg, lw_policy *pol) {
  if (cfg)
    settings_of(cfg, pol);
  else
    settings_from_defaults(pol);
}

/* Whether model action a, a variant, is still to be explored as new: the trainer did not
 * flag it enough-data, or the model was trained on fewer than LW_POLICY_NEW_SUPPORT of its
 * logged decisions (format 1 files do not say: -1). */
static int variant_is_new(const lw_model *m, int a) {
  /* (lw_model_support's count, read directly: -1 is above any count as unsigned) */
  return !(m->action_flags[a] & LW_MODEL_ENOUGH_DATA) || (uint64_t)m->support[a] < LW_POLICY_NEW_SUPPORT;
}

/* The actions a model's policy may choose under cfg (every action without one); settings
 * left to the callers below. A variant switched off (weight 0) is never enabled; a live
 * variant the model has no action for becomes a virtual action. */
static int enable_actions(const lw_model *m, const lw_config *cfg, lw_policy *pol, int *variant_of) {
  int ready = 0;
  uint32_t known = 0; /* the config's variants the model has an action for */
  memset(pol, 0, sizeof *pol);
  for (int a = 0; a < m->n_actions; a++) {
    int not_now = strcmp(m->action_ids[a], LW_ACTION_NOT_NOW) == 0;
    int v = cfg ? lw_config_variant_index(cfg, m->action_ids[a]) : -1;
    if (variant_of) variant_of[a] = v;
    if (not_now) {
      pol->enabled[a] = 1;
      continue;
    }
    if (v >= 0) known |= 1u << v;
    if (cfg && (v < 0 || !cfg->variants[v].weight)) continue; /* not this program's, or switched off */
    pol->enabled[a] = pol->is_prompt[a] = 1;
    pol->cost[a] = v >= 0 ? cfg->variants[v].cost : 0.0;
    if (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) ready = 1;
  }
  for (int v = 0; cfg && v < cfg->n_variants; v++)
    if (cfg->variants[v].weight && !(known >> v & 1u)) pol->virtual_variant[pol->n_virtual++] = v;
  return ready;
}

/* ---- the exploration rule ---------------------------------------------------------- */

/* Probabilities as exact millionths: each weighed in units of 2^-30, then split; zero stays
 * zero and anything above zero keeps a chance. */
static void ppm_of(const double *p, int n, uint32_t *ppm) {
  uint32_t w[LW_POLICY_MAX_ACTIONS];
  for (int a = 0; a < n; a++) {
    w[a] = (uint32_t)(p[a] * 1073741824.0 + 0.5); /* 2^30 */
    if (p[a] > 0 && w[a] == 0) w[a] = 1;
  }
  lw_ppm_split(w, n, ppm);
}

lw_status lw_model_policy(const lw_model *m, const lw_policy *pol, const lw_feature *x, int n,
                          double offset, uint32_t *ppm, double *ev) {
  double v[LW_MODEL_MAX_ACTIONS], p[LW_POLICY_MAX_ACTIONS], best = 0.0, worst = 0.0, total = 0.0, least = 0.0;
  int na = m->n_actions, n_all = na + pol->n_virtual, n_on = 0, n_soft = 0;
  for (int a = 0; a < n_all; a++) { /* each action's minimum into p, and the values' range */
    int in_model = a < na;
    p[a] = 0.0;
    if (in_model) {
      double q = lw_sigmoid(lw_model_score(m, a, x, n, pol->is_prompt[a] ? offset : 0.0));
      if (m->value_labels) { /* the label's expectation, net of the incentive already */
        double e = (double)m->reward_lo + ((double)m->reward_hi - (double)m->reward_lo) * q;
        v[a] = pol->is_prompt[a] ? e - pol->fatigue : e;
      } else {
        v[a] = pol->is_prompt[a] ? q * (pol->value - pol->cost[a]) - pol->fatigue : q * pol->value;
      }
      if (ev) ev[a] = v[a];
      if (!pol->enabled[a]) continue;
      if (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) {
        if (n_soft++ == 0 || v[a] > best) best = v[a];
        if (n_soft == 1 || v[a] < worst) worst = v[a];
      }
    }
    double g = !in_model || (pol->is_prompt[a] && variant_is_new(m, a)) ? pol->new_variant
               : !pol->is_prompt[a]                                     ? pol->not_now
                                                                        : 0.0;
    p[a] = g > pol->floor ? g : pol->floor;
    least += p[a];
    n_on++;
  }
  if (n_on == 0) return LW_ERR_INVALID;
  /* (+1e-300: with one action, or equal values, every weight is e^0 rather than 0/0) */
  double t = pol->relative > 0 ? pol->relative * (best - worst) + 1e-300 : pol->temperature;
  for (int a = 0; a < na; a++) { /* the softmax weights, in v */
    int in = pol->enabled[a] && (m->action_flags[a] & LW_MODEL_ENOUGH_DATA);
    v[a] = in ? lw_exp((v[a] - best) / t) : 0.0;
    total += v[a];
  }
  /* What the minimums leave goes by the softmax, or evenly when nothing has enough data.
   * Minimums adding up to more than one are scaled down by the split, which divides by the
   * total. */
  double rest = least < 1.0 ? 1.0 - least : 0.0;
  for (int a = 0; a < n_all; a++)
    if (a >= na || pol->enabled[a]) p[a] += !n_soft ? rest / n_on : a < na ? rest * v[a] / total : 0.0;
  ppm_of(p, n_all, ppm);
  return LW_OK;
}

int lw_policy_for_config(const lw_model *m, const lw_config *cfg, lw_policy *pol, int *variant_of) {
  int ready = enable_actions(m, cfg, pol, variant_of);
  settings_of(cfg, pol);
  return ready;
}

int lw_policy_for_model(const lw_model *m, const lw_config *cfg, lw_policy *pol, int *variant_of) {
  if (cfg) return lw_policy_for_config(m, cfg, pol, variant_of);
  int ready = enable_actions(m, NULL, pol, variant_of);
  settings_from_defaults(pol);
  return ready;
}
