/* bandit.h: a synthetic contextual bandit whose policy values are computable exactly, for
 * the estimator and trainer tests and the trainer benchmark's input.
 *
 * A context is one of n_ctx types (uniform), seen as the features bias, ctx^C and a few
 * irrelevant noise features. P(referral | C, a) is a fixed table; the logging policy is a
 * table of probabilities in millionths (so VW files state them exactly). */
#ifndef LW_TEST_BANDIT_H
#define LW_TEST_BANDIT_H

#include <stdio.h>

#include "loopwise/learn.h"

#define BANDIT_MAX_CTX 8

typedef struct {
  int n_ctx, n_actions, n_noise;
  double reward[BANDIT_MAX_CTX][LW_MODEL_MAX_ACTIONS];  /* true P(referral | C, a) */
  uint32_t log_ppm[BANDIT_MAX_CTX][LW_MODEL_MAX_ACTIONS]; /* logging policy */
  char actions[LW_MODEL_MAX_ACTIONS][LW_NAME_LEN + 1];
} bandit;

/* 4 contexts, 3 actions (a0, a1, not_now); the best action differs by context. */
void bandit_default(bandit *b);
/* Logging policies: uniform, or skewed toward each context's worst action (90%). */
void bandit_log_uniform(bandit *b);
void bandit_log_skewed(bandit *b);
/* One action (a0) best in every context, logged by rules that mostly show each context's
 * worst (bandit_log_skewed): a trained candidate loses to always:a0. */
void bandit_one_best(bandit *b);
/* Draw one logged record (context index in *ctx). */
void bandit_draw(const bandit *b, lw_rng *rng, lw_logged *rec, int *ctx);
/* Exact value of a target policy given by pi[c][a]. */
double bandit_value(const bandit *b, double pi[BANDIT_MAX_CTX][LW_MODEL_MAX_ACTIONS]);
/* Write n records as VW cb text (features by name). Returns 0 on success. */
int bandit_write_vw(const bandit *b, uint64_t seed, long n, FILE *f);
/* Feature hash of context c ("ctx^c"). */
uint32_t bandit_ctx_hash(int c);

#endif
