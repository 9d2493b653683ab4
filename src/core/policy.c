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

/* The config's four settings of the policy. */
static void settings_of(const lw_config *cfg, lw_policy *pol) {
  pol->value = cfg->value_per_referral;
  pol->fatigue = cfg->fatigue_cost;
  pol->temperature = cfg->explore_temperature;
  pol->floor = cfg->explore_floor;
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

/* The actions a model's policy may choose under cfg (every action without one); settings
 * left to the callers below. */
static int enable_actions(const lw_model *m, const lw_config *cfg, lw_policy *pol, int *variant_of) {
  int ready = 0;
  memset(pol, 0, sizeof *pol);
  for (int a = 0; a < m->n_actions; a++) {
    int not_now = strcmp(m->action_ids[a], LW_ACTION_NOT_NOW) == 0;
    int v = cfg ? lw_config_variant_index(cfg, m->action_ids[a]) : -1;
    if (variant_of) variant_of[a] = v;
    if (not_now) {
      pol->enabled[a] = 1;
      continue;
    }
    if (cfg && v < 0) continue; /* a variant this program does not have */
    pol->enabled[a] = pol->is_prompt[a] = 1;
    pol->cost[a] = v >= 0 ? cfg->variants[v].cost : 0.0;
    if (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) ready = 1;
  }
  return ready;
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
