/* sim.h: a seeded population simulator of a SaaS user base that drives the real engine.
 *
 * Every simulated user has one lw_engine (the same C core the browser runs) and reports
 * usage events to it; when the engine decides to prompt, the simulated user responds
 * (share, dismiss, close) by a latent model the engine never sees. Logged decisions leave
 * the engines as wire batches (lw_engine_batch_id + lw_wire_take_batch), exactly as they would reach the
 * ingest server; the learning policy turns them into VW records, retrains with the real
 * trainer, and loads promoted models into every engine with lw_engine_set_model.
 * The assumptions are listed in README.md, "Simulator". Internal to src/tools. */
#ifndef LW_TOOLS_SIM_H
#define LW_TOOLS_SIM_H

#include <stdio.h>

#include "loopwise/engine.h"
#include "loopwise/learn.h"

typedef enum {
  LW_SIM_MONTHLY = 0, /* the traditional program: the config given (one fixed reward, monthly ask) */
  LW_SIM_RULES,       /* the program config's milestone rules alone */
  LW_SIM_LEARNING,    /* rules until a model is promoted, then model mode, retrained every month */
  LW_SIM_ORACLE       /* a ceiling, not a policy anyone can run: the rules' timing, but at each prompt
                         the variant, and the channel offered first, that the simulator's own
                         formulas value most for this user (its latent willingness and habit) */
} lw_sim_policy;

typedef struct {
  uint64_t seed;
  int users, days;
  int64_t start_ms;        /* day 0, 00:00 UTC */
  int retrain_days;        /* LW_SIM_LEARNING: retrain this often (30), on every decision logged so far */
  int model_bits;          /* weight table of the models it trains (12) */
  int use_busy;            /* tell the engine when the user is busy (Loopwise hosts do) */
  int habit_channel_only;  /* every share goes through the user's habit channel, whatever order the
                              prompt offers (a diagnostic: what the channel ranking is worth) */
  const char *workdir;     /* where LW_SIM_LEARNING keeps its logs and models */
  int via_ingest;          /* LW_SIM_LEARNING: send the batches to an in-process loopwise-ingest
                              (workdir/sim-outcomes.db) and train from its SQLite store */
  int retained_labels;     /* LW_SIM_LEARNING via_ingest: train on the retained referee value the
                              config's reward block prices (closed attribution windows only), as
                              loopwise-train --labels retained; 0: the share labels */
  const uint8_t *model;    /* when set (--model), every engine starts with this model (.lwm bytes) */
  size_t model_len;
  FILE *vw_out;            /* when set, every logged choice as a VW line (action list of the config) */
  FILE *events_out;        /* when set, every usage event as a JSON line (the engine benchmark's input) */
  FILE *log;               /* progress and retraining lines (NULL = quiet) */
} lw_sim_opts;

/* What happened, for one group of users (treatment, or the holdout under LW_SIM_LEARNING). */
typedef struct {
  uint64_t users, decisions, prompts, shares, dismissals, invites, referred, churned;
  uint64_t landings;       /* referees who landed through a share link */
  uint64_t retained;       /* referred customers still active after 30 days (their lifetime) */
  uint64_t retained_90;    /* ... and after 90 days */
  double incentive_cost;  /* sum of the variant's cost over referred customers */
  double referral_value;  /* sum over referred customers of ARPU x months retained (24 max) */
} lw_sim_group;

/* One retraining round's promotion decision, with its figures (also written to the log). */
#define LW_SIM_MAX_ROUNDS 64
typedef struct {
  int day, promoted;
  double held_out;          /* held-out decisions compared on */
  double candidate, baseline, diff_lo, threshold;
  char baseline_name[LW_NAME_LEN + 16];
} lw_sim_round;

typedef struct {
  lw_sim_group treat, holdout;
  uint64_t batches_posted; /* via_ingest: wire batches the ingest server stored */
  uint64_t referee_reports; /* via_ingest: reports the host posted to /v1/referees (all events) */
  uint64_t referee_landings; /* via_ingest: landings posted from referees' devices */
  uint64_t referee_retained_30; /* via_ingest: of the reports, retained_30 ones */
  int models_promoted, models_rejected;
  int channels_only;       /* rejected rounds whose channel rankings went live (no model decided) */
  int single_action;       /* rejected rounds in which a single action went live where no model decided
                              (lw_fallback_model; a later round replacing it is not counted again) */
  uint32_t last_model_id;
  int n_rounds;
  lw_sim_round rounds[LW_SIM_MAX_ROUNDS];
} lw_sim_result;

void lw_sim_defaults(lw_sim_opts *o);
/* 1 when this build can run the learning policy through the ingest server (via_ingest). */
int lw_sim_has_ingest(void);
/* Run one policy over the population. cfg is the program (for LW_SIM_MONTHLY, the
 * traditional program's config). LW_SIM_MONTHLY and LW_SIM_RULES run with no holdout. */
lw_status lw_sim_run(const lw_sim_opts *o, const lw_config *cfg, lw_sim_policy policy, lw_sim_result *out,
                     char *err, size_t errlen);

#endif
