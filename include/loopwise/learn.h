/* loopwise/learn.h: the learning loop's native side: reading logged decisions, fitting the
 * per-action logistic model, estimating policy values off-policy, and promoting models.
 *
 * Everything here is streaming: a reader yields one logged decision at a time, the learner
 * and the estimators keep only fixed-size state (a hashed weight table, a few sums, a
 * bounded reservoir for persona centroids), so millions of lines run in bounded memory.
 * Randomness (k-means seeding, reservoir sampling) comes from an lw_rng the caller seeds.
 *
 * Rewards: read from the store with a config, a decision's reward is the retained referee value
 * its shares brought, final once its attribution window closed (lw_label_kind; a site without
 * referee reports falls back to shares × value_per_share); otherwise 1 when its prompt led to a
 * share or copy, else 0 (VW files carry it as cost = -reward). Off-policy estimates are of the
 * expected reward per decision point. */
#ifndef LOOPWISE_LEARN_H
#define LOOPWISE_LEARN_H

#include "loopwise/common.h"
#include "loopwise/audit.h"
#include "loopwise/config.h"
#include "loopwise/model.h"
#include "loopwise/rng.h"
#include "loopwise/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LW_LEARN_MAX_FEATURES 256 /* as the wire contract's x */
#define LW_LEARN_MAX_ACTIONS 64    /* in data (VW files); a model file holds LW_MODEL_MAX_ACTIONS */

/* One logged decision, as the trainer and evaluator see it. */
typedef struct {
  int action;     /* index into the reader's action list */
  double p;       /* the probability the logging policy chose it with, (0, 1] */
  double reward;  /* the label (lw_label_kind): 1/0 for a share, or value units (VW: -cost) */
  int64_t t;      /* ms since epoch; 0 when the source has no time (VW) */
  uint64_t line;  /* 1-based line (VW) or row id (SQLite): where to find it, for messages */
  uint64_t key;   /* the record's identity: a hash of the decision id (SQLite), of the line's
                     (or cb_adf example's) content and position (VW). Held-out sets and folds
                     are chosen by it, never by storage position. */
  uint64_t order_key; /* what later passes are ordered by: the decision id's hash, or the
                         content's alone (VW), so no pass depends on arrival order */
  int channel;    /* the channel its share went through (lw_channel, wire v2), -1 none or unknown */
  int n;          /* features in x */
  lw_feature x[LW_LEARN_MAX_FEATURES];
} lw_logged;

/* ---- reading logged decisions ------------------------------------------------------
 * Sources: the ingest server's SQLite store, read through the store's read interface
 * (loopwise/store.h: lw_store_open_sqlite_read refuses a schema version other than this
 * build's; decisions joined with their share/copy outcomes; decisions without a choice, i.e.
 * action LW_ACTION_NONE or mode holdout, are skipped), or a Vowpal Wabbit contextual-bandit text file, in its one-line form
 *   action:cost:probability | feature[:value] ...
 * (action 1-based into the action list) or its cb_adf multi-line form (an optional
 * "shared | ..." line, one line per action in action-list order, exactly one of them
 * labelled "0:cost:probability" or "N:cost:probability", a blank line after each example).
 * A feature written "#123" is the hash 123 itself; any other name is hashed with FNV-1a, as
 * the runtime hashes its feature names. Namespace names ("|user") are ignored. */
typedef enum { LW_SRC_AUTO = 0, LW_SRC_VW, LW_SRC_VW_ADF, LW_SRC_SQLITE } lw_source_kind;

typedef struct {
  lw_source_kind kind;
  const char *path;     /* "-" reads VW text from stdin (one pass only) */
  const char *site;     /* SQLite: the site id (default "default") */
  int64_t from_ms, to_ms; /* SQLite: decision time range [from, to); 0 = unbounded */
  int n_actions;
  char actions[LW_LEARN_MAX_ACTIONS][LW_NAME_LEN + 1];
  /* SQLite with a program config: delayed, graded labels (lw_label_kind). reward is the config
   * whose `reward` block prices the referee outcomes and whose variants' costs are the incentive
   * paid per converted referee; now_ms decides which attribution windows are closed. NULL: the
   * label is 1 for a share or copy, 0 otherwise (VW files always). */
  const lw_config *reward;
  int64_t now_ms;
} lw_source_opts;

/* What a record's reward is.
 *   LW_LABELS_SHARES    1 when the decision led to a share or copy (VW files, no config)
 *   LW_LABELS_RETAINED  value units, final once the decision's attribution window
 *                       (reward.attribution_days) has closed: conversions × value_per_conversion
 *                       + retained_30 × value_per_retained + retained_90 × value_per_retained_90
 *                       + revenue × revenue_weight − churned × churn_cost − conversions × the
 *                       variant's cost (the incentive paid per converted referee); outcomes joined
 *                       by code only (v1 shares) are divided among the decisions sharing the code
 *   LW_LABELS_FALLBACK  the site reported no referee outcome at all: shared × value_per_share,
 *                       visibly (trainer output, model metadata)
 *   LW_LABELS_FALLBACK_OPEN  the same fallback, because no decision's attribution window has
 *                       closed yet at now_ms (a retrain sooner than attribution_days): every
 *                       decision, no window to wait for (metadata labels.reason
 *                       "no_closed_window") */
typedef enum { LW_LABELS_SHARES = 0, LW_LABELS_RETAINED, LW_LABELS_FALLBACK, LW_LABELS_FALLBACK_OPEN } lw_label_kind;
const char *lw_label_kind_name(lw_label_kind k);

typedef struct lw_reader lw_reader;

lw_status lw_reader_open(const lw_source_opts *o, lw_reader **out, char *err, size_t errlen);
/* 1: *rec filled; 0: end of input; -1: bad input, err says "line N: reason" (or
 * "row N: reason") and the reader stops. */
int lw_reader_next(lw_reader *r, lw_logged *rec, char *err, size_t errlen);
/* Start again from the first record (LW_ERR_INVALID for stdin before one full pass; after
 * it, text sources are read back from their binary cache). */
lw_status lw_reader_rewind(lw_reader *r, char *err, size_t errlen);
/* After one full pass: every later pass (and lw_reader_rewind) yields the records in the order
 * of a seeded hash of their order_key, read back from the temporary cache, so what a pass
 * computes does not depend on the order the records were stored or arrived in. */
lw_status lw_reader_order(lw_reader *r, uint64_t seed, char *err, size_t errlen);
/* Non-zero feature values that the fixed point (1/256) rounded to 0, so far (VW text). */
uint64_t lw_reader_tiny_values(const lw_reader *r);
/* Fraction of the input read so far, 0..1 (bytes for files, rows for SQLite). */
double lw_reader_progress(const lw_reader *r);
/* Records skipped as carrying no choice (SQLite: action "none", holdout, unknown actions). */
uint64_t lw_reader_skipped(const lw_reader *r);
/* Decisions left out because their attribution window was still open at now_ms (their label
 * could still change), and what the labels are. */
uint64_t lw_reader_open_windows(const lw_reader *r);
lw_label_kind lw_reader_labels(const lw_reader *r);
/* The label of one stored decision's outcomes for the action with incentive cost `cost`
 * (LW_LABELS_RETAINED), from the config's reward block. */
double lw_retained_value(const lw_config *cfg, double cost, int64_t conversions, int64_t retained_30,
                         int64_t retained_90, int64_t churned, double revenue, int64_t code_decisions);
void lw_reader_close(lw_reader *r);

/* Parse one decimal number: [+-]digits[.digits][(e|E)[+-]digits], nothing else (no hex,
 * inf, nan, spaces). 1 on success. */
int lw_parse_decimal(const char *s, size_t n, double *out);

/* The action list of a program: its variants in config order, then LW_ACTION_NOT_NOW. */
void lw_actions_from_config(const lw_config *cfg, int *n_actions,
                            char actions[LW_LEARN_MAX_ACTIONS][LW_NAME_LEN + 1]);

/* ---- the runtime's exploration policy parameters -----------------------------------
 * What lw_model_policy needs besides the model: the value of a referral, prompt fatigue,
 * temperature, floor, and each action's incentive cost (from the config's variants).
 * Actions the config does not have are disabled. */
typedef struct {
  double value, fatigue, temperature, floor;
} lw_policy_params;
/* The settings the runtime would use: cfg's (lw_policy_settings, src/core/policy.c), or with
 * cfg NULL the config schema's defaults. The CLIs' --value/--fatigue/--temperature/--floor
 * then override single fields. */
void lw_policy_params_init(lw_policy_params *pp, const lw_config *cfg);
/* The runtime's policy for m under cfg (lw_policy_for_model) with pp's settings. */
void lw_policy_with_params(const lw_model *m, const lw_config *cfg, const lw_policy_params *pp, lw_policy *out);

/* Replace any persona^K features of x with the persona m assigns (the runtime adds the same
 * feature when the model has personas: lw_persona_dims, lw_persona_hash). *n may grow by one
 * (cap LW_LEARN_MAX_FEATURES). */
void lw_apply_persona(const lw_model *m, lw_feature *x, int *n);

/* ---- the learner -------------------------------------------------------------------
 * Per-action logistic regression over hashed features crossed with the action (the same
 * weight index as the model file), fitted by importance-weighted AdaGrad: a record of
 * action a weighs min(1/p, clip), so the fit targets the whole logged context population
 * rather than the contexts the logging policy happened to favour for a. */
typedef struct {
  int bits;            /* weight table 2^bits (8-16), default 14 */
  int passes;          /* default 3 (in a seeded order of the records each time) */
  int refine;          /* then at most this many passes of batch quasi-Newton refinement (L-BFGS,
                          lw_learner_refine_step), stopping once converged; default 50, 0 = none */
  double lr;           /* step of the normalized adaptive updates, default 0.5 (Vowpal Wabbit's) */
  double l2;           /* per-update L2 shrink, default 1e-6 */
  double clip;         /* largest importance weight, default 50 */
  double min_ess;      /* enough data: effective sample size of an action, default 200 */
  double min_positive; /* ... and importance-weighted referrals (prompt actions), default 10 */
  int personas;        /* k-means centroids, 0-16, default 4 */
  int n_segments;      /* segments for fairness offsets, "attr^value" feature names */
  char segments[LW_MODEL_MAX_SEGMENTS][LW_SEGMENT_NAME_LEN + 1];
  double fair_ratio;   /* lift a segment's predicted share rate to at least this × the best, 0.8 */
  double max_offset;   /* cap on a fairness offset (logits), default 1.0 */
  int holdout_mod;     /* 1 record in holdout_mod is not trained on (the model's estimate and
                          promotion use them); 0 = train on all. Default 10. Which ones: see
                          lw_split below */
  double reward_lo, reward_hi; /* the learner's target is (reward - lo) / (hi - lo): lw_train
                                  sets them from the data (lo <= 0, hi >= 1); default 0, 1 */
} lw_train_opts;

/* ---- the held-out split --------------------------------------------------------------
 * When every record has a time (the store): the latest 1/mod of the records, by time and
 * then by the hash of the record's key, a later time window than training. Otherwise (VW):
 * the records whose key hash is mod-1 modulo mod. Never storage position: the store numbers
 * records batch × 1024 + position, so a position rule can select nothing. */
typedef struct {
  int mod;          /* 0: nothing held out */
  int by_time;
  int64_t t_split;  /* by_time: held out when (t, hash) >= (t_split, h_split) */
  uint64_t h_split;
} lw_split;
uint64_t lw_record_hash(const lw_logged *r); /* a well-mixed hash of r->key */
int lw_split_holdout(const lw_split *s, const lw_logged *r);
int lw_record_fold(const lw_logged *r); /* 0 or 1: cross-fitting folds, independent of the split */
void lw_train_defaults(lw_train_opts *o);

typedef struct lw_learner lw_learner;
lw_status lw_learner_create(const lw_train_opts *o, int n_actions,
                            const char actions[][LW_NAME_LEN + 1], lw_learner **out);
void lw_learner_free(lw_learner *l);
/* One importance-weighted step on a record. */
void lw_learner_update(lw_learner *l, const lw_logged *r);
/* P(referral | a, x) under the current (float) weights (on the normalized reward scale). */
double lw_learner_predict(const lw_learner *l, int action, const lw_feature *x, int n);
/* Batch refinement after the online updates (learn_fit.c "batch refinement"): begin, then
 * while lw_learner_refining: lw_learner_refine_add every training record (one pass, any
 * order gives the same sums up to rounding; lw_train passes them in the reader's seeded
 * order), then lw_learner_refine_step, which moves to the next trial point or, converged or
 * out of passes (opts.refine), sets the weights and returns 0. begin with opts.refine 0 leaves
 * the weights as they are. LW_ERR_NOMEM: the weights are untouched. */
lw_status lw_learner_refine_begin(lw_learner *l);
int lw_learner_refining(const lw_learner *l);
void lw_learner_refine_add(lw_learner *l, const lw_logged *r);
int lw_learner_refine_step(lw_learner *l);
/* The predicted reward, back on the data's scale: lo + (hi - lo) × lw_learner_predict. */
double lw_learner_predict_reward(const lw_learner *l, int action, const lw_feature *x, int n);
/* Updates of the action the learner has had (records × passes; 0: no logged support). */
int64_t lw_learner_support(const lw_learner *l, int action);
/* Quantize into a model: actions, flags (from the counts seen by lw_learner_update), int8
 * weights. model_id, trained_at and meta_json are left for the caller; no personas or
 * segments (lw_train adds them). The caller frees with lw_model_free. */
lw_status lw_learner_to_model(const lw_learner *l, lw_model **out, char *err, size_t errlen);

/* ---- estimators ----------------------------------------------------------------------
 * Streaming IPS, self-normalised IPS and doubly robust estimates of a target policy's
 * expected reward per decision, with 95% normal intervals (SNIPS by the delta method),
 * beside the logging policy's observed mean reward. */
typedef struct {
  double n, sum_w, sum_w2, sum_wr, sum_w2r, sum_w2r2; /* w = pi(a)/p */
  double sum_ips2;                                     /* sum (w r)^2 */
  double sum_dr, sum_dr2;
  double sum_r, sum_r2;
  double sum_gap, sum_mass; /* DR: value range and probability the target puts on actions the
                               reward model has no logged data for (lw_estimator_gap) */
} lw_estimator;

typedef struct {
  double est, lo, hi;
} lw_interval;

typedef struct {
  double n;
  lw_interval logged, ips, snips, dr;
  double ess; /* effective sample size of the importance weights */
  double unsupported; /* mean probability the target gives actions without logged support: DR
                         credits them the lowest value they could have and widens its upper
                         end by the most they could add */
  double unsupported_value; /* that most they could add (mean, value units) */
} lw_estimates;

void lw_estimator_init(lw_estimator *s);
/* pi_a: target probability of the logged action; p: logged probability; r: reward;
 * dm: sum over actions of pi(b) * rhat(b) (the direct-method term); rhat_a: rhat of the
 * logged action. Pass dm = rhat_a = 0 to make DR equal IPS. */
void lw_estimator_add(lw_estimator *s, double pi_a, double p, double r, double dm, double rhat_a);
/* The record's unsupported part: gap = sum over unsupported actions of pi(b) × (the most b could
 * be worth − the least), mass = sum of their pi(b). */
void lw_estimator_gap(lw_estimator *s, double gap, double mass);
void lw_estimator_result(const lw_estimator *s, lw_estimates *out);

/* What a decision is worth, for the estimators. "shares": 1 when it led to a share, else 0.
 * "net" (the default when a config is known): the quantity the runtime's policy maximizes,
 * share × (value_per_referral − the variant's cost) − fatigue_cost for a prompt, 0 for
 * "not now". The reward model's predictions go through the same map for DR. */
typedef struct {
  int net;
  int graded; /* lw_metric_graded */
  double value, fatigue;
  double cost[LW_LEARN_MAX_ACTIONS];   /* by data action */
  int is_prompt[LW_LEARN_MAX_ACTIONS];
} lw_metric;
/* cfg NULL gives "shares". */
void lw_metric_init(lw_metric *mt, int net, const lw_config *cfg, const lw_policy_params *pp, int n_actions,
                    const char actions[][LW_NAME_LEN + 1]);
static inline double lw_metric_value(const lw_metric *mt, int a, double share) {
  return mt && mt->net ? share * (mt->value - mt->cost[a]) - (mt->is_prompt[a] ? mt->fatigue : 0.0) : share;
}
const char *lw_metric_name(const lw_metric *mt);
/* Labels already in value units with the incentive cost taken off (LW_LABELS_RETAINED or
 * FALLBACK): the metric is label − fatigue_cost for a prompt, label for "not now". */
void lw_metric_graded(lw_metric *mt);
/* 1 when src's labels will be value units: a config to price them and a SQLite source. */
int lw_source_graded(const lw_source_opts *src);

/* A target policy: a model under the runtime's exploration policy, uniform random over the
 * action list, or always one action. */
typedef enum {
  LW_TARGET_MODEL,
  LW_TARGET_UNIFORM,
  LW_TARGET_ALWAYS,
  LW_TARGET_LOGGED /* the logging policy itself: its value is the observed reward (weight 1) */
} lw_target_kind;
typedef struct {
  lw_target_kind kind;
  const lw_model *model;  /* LW_TARGET_MODEL */
  lw_policy policy;       /* LW_TARGET_MODEL: actions in the model's order */
  int always;             /* LW_TARGET_ALWAYS: index into the data's action list */
  int n_actions;          /* the data's action list */
  int map[LW_LEARN_MAX_ACTIONS]; /* data action -> model action, -1 if the model lacks it */
} lw_target;
/* Fill pi[0..n_actions) for the data's actions. x may be rewritten (persona). */
void lw_target_probs(const lw_target *t, lw_feature *x, int *n, double *pi);
/* Set up a model target for data with the given action list. */
lw_status lw_target_model(lw_target *t, const lw_model *m, const lw_config *cfg,
                          const lw_policy_params *pp, int n_actions,
                          const char actions[][LW_NAME_LEN + 1], char *err, size_t errlen);

/* ---- whole-file operations (what the CLIs run) ---------------------------------------- */
typedef void (*lw_progress_fn)(void *ctx, const char *phase, double fraction);

typedef struct {
  lw_estimates target;    /* the evaluated policy, on held-out records when training */
  uint64_t records, skipped;
  int64_t t_min, t_max;   /* data range (0 when unknown) */
  uint64_t trained_on;    /* model targets: evaluated records the model's metadata says it was
                             trained on (its data range and held-out rule); 0 when none */
  int exactly_trained;    /* ... and they are exactly its training records (count and fingerprint) */
  uint64_t tiny_values;   /* VW: non-zero feature values the fixed point rounded to 0 */
  double reward_lo, reward_hi; /* the data's reward range (lo <= 0, hi >= 1) */
  int costs_look_01;      /* VW: every cost is 0 or 1, some 1: maybe {0 good, 1 bad} */
  int n_segments;
  double exposure[LW_MODEL_MAX_SEGMENTS]; /* the target's prompt probability per segment (the
                                             mean over the segment's evaluated records) */
  double segment_n[LW_MODEL_MAX_SEGMENTS];
  lw_label_kind labels;   /* what the rewards are (lw_label_kind) */
  uint64_t open_windows;  /* decisions left out: attribution window still open */
  int attribution_days;   /* the window (LW_LABELS_RETAINED / FALLBACK) */
} lw_eval_report;

/* What to train: the data, the options, the program (cfg NULL: a bare action list, estimate in
 * referral shares per decision; else in net value) with the exploration settings pp the
 * estimate scores the model under, the seed (k-means, reservoir), the new model's id and
 * training time, the command line to record, and an optional progress callback. */
typedef struct {
  const lw_source_opts *src;
  const lw_train_opts *opts;
  const lw_config *cfg;
  const lw_policy_params *pp;
  uint64_t seed;
  uint32_t model_id;
  int64_t now_ms;
  const char *command;
  lw_progress_fn progress;
  void *progress_ctx;
} lw_train_request;

/* Channels that fit the person: per persona, the share channels ranked by the mean label of
 * the decisions whose share went through them (retained referee value per share), shrunk
 * toward the persona's mean over all channels with LW_CHANNEL_PRIOR pseudo-shares; channels
 * with fewer than LW_CHANNEL_MIN_SHARES shares of the persona are not ranked. */
#define LW_CHANNEL_PRIOR 5.0
#define LW_CHANNEL_MIN_SHARES 5
/* A ranking reorders a prompt's share options, which the promotion rule's off-policy estimate
 * cannot see (no logged decision chose an order), so it carries its own evidence: the model
 * carries a persona's ranking only when its first channel's mean label per share is above the
 * mean of the persona's other shares with the lower end of a 95% interval (Welch, Bonferroni
 * over the channels ranked) above 0: `confident`. Otherwise that persona keeps the prompt's
 * own order, unless the site's ranking (every persona's shares together) passes the same test:
 * then that persona gets the site's order (lw_carried_ranking). The comparison is observational
 * (who picks a channel is not random), as every channel ranking is; README "Learning loop". */
typedef struct {
  int n_ranked;                     /* channels ranked, best first */
  int channel[LW_CHANNEL_COUNT];    /* lw_channel */
  double value[LW_CHANNEL_COUNT];   /* its shrunk mean label per share */
  int64_t shares[LW_CHANNEL_COUNT];
  double advantage, lo;             /* first channel's mean label per share − the others' mean, and
                                       the lower end of its corrected interval */
  int confident;                    /* lo > 0: the model carries this ranking */
} lw_channel_ranking;

typedef struct {
  lw_model *model;       /* the caller frees it with lw_model_free */
  int n_channel_personas; /* rankings in channels[] (the model's personas, or 1 without) */
  lw_channel_ranking channels[LW_MODEL_MAX_PERSONAS];
  lw_channel_ranking site_channels; /* every persona's shares together (the same as channels[0]
                                       without personas) */
  lw_eval_report report; /* data range and counts; target = the held-out DR estimate */
  int net_metric;        /* 1: the estimate is net value per decision; 0: shares per decision */
  uint64_t held_out;     /* records the estimate is on (held out of training) */
  int in_sample;         /* --holdout-mod 0: the estimate is on the training records themselves */
  int refine_passes;     /* passes the batch refinement took (lw_train_opts.refine caps them) */
} lw_train_result;

/* Train a model: a scan (data range, a reservoir of persona states, k-means centroids), the
 * importance-weighted passes, enough-data flags, fairness offsets, the model's DR estimate
 * on the held-out records, and its JSON metadata (the data range, the estimate, the
 * enough-data flags, the command). On LW_OK res->model is set. */
lw_status lw_train(const lw_train_request *rq, lw_train_result *res, char *err, size_t errlen);
/* The ranking the model carries for persona k: its own when confident, else the site's when that
 * one is (a persona with too few shares of its own still gets the order the site's shares show),
 * else NULL (the prompt keeps its own order for that persona). */
const lw_channel_ranking *lw_carried_ranking(const lw_train_result *res, int k);

/* How to evaluate: only the held-out records (only_holdout = the trainer's holdout mod, under
 * the same lw_split rule) or all (0); the seed orders the passes; segments ("attr^value") for
 * each target's exposure per segment (its fairness audit). */
typedef struct {
  int only_holdout;
  uint64_t seed;
  lw_progress_fn progress;
  void *progress_ctx;
  int n_segments;
  char segments[LW_MODEL_MAX_SEGMENTS][LW_SEGMENT_NAME_LEN + 1];
} lw_eval_opts;

/* Evaluate targets[0..n_targets) on a source. The DR reward model is cross-fitted: two
 * learners on the two folds of lw_record_fold, each record scored by the one that did not see
 * it; an action a fold has no record of is unsupported for the records it scores. */
lw_status lw_eval_source(const lw_source_opts *src, lw_target *targets, int n_targets, const lw_metric *metric,
                         const lw_eval_opts *eo, lw_eval_report *reps, char *err, size_t errlen);

/* Promotion: a candidate goes live only if, on at least min_holdout held-out decisions, the
 * lower end of the 95% interval of its DR difference from the best of {the current model, the
 * rules (the logging policy), the best single action} is above −margin × |that baseline's
 * value|, and (when fair_ratio > 0 and segments are given) its lowest segment exposure is at
 * least fair_ratio × its highest. */
typedef struct {
  lw_eval_opts eval;  /* only_holdout: the trainer's holdout mod */
  int min_holdout;    /* default 200 */
  double margin;      /* default 0.02 */
  double fair_ratio;  /* default 0: not checked */
  /* 1: compare with the rules alone (no current model, no single action) and require the
   * difference's lower end above 0: better than the rules, not merely not worse (what a
   * single-action model must show before it replaces them, lw_fallback_model) */
  int against_rules;
} lw_promote_opts;
void lw_promote_defaults(lw_promote_opts *o);

typedef struct {
  lw_interval current, candidate, diff; /* diff = candidate − the best baseline */
  lw_interval model, rules, best_single; /* the baselines (model: n 0 without a current model) */
  int has_model;
  char baseline[LW_NAME_LEN + 16];       /* "model m12", "rules", "always:credit_10" */
  char best_single_action[LW_NAME_LEN + 1];
  double n;               /* held-out decisions compared on */
  double threshold;       /* the bar diff.lo must clear: −margin × |baseline value| */
  double exposure_ratio;  /* the candidate's lowest / highest segment exposure (1 without segments) */
  double unsupported;     /* the candidate's probability on actions without logged support */
  int promote;
  char reason[256];
} lw_compare_result;
lw_status lw_compare_models(const lw_source_opts *src, const lw_model *current, const lw_model *candidate,
                            const lw_config *cfg, const lw_policy_params *pp, const lw_metric *metric,
                            const lw_promote_opts *po, lw_compare_result *out, char *err, size_t errlen);

/* What goes live when a candidate's decisions are refused while no model decides (none is live,
 * or the live one is itself of this kind): the candidate with no action flagged enough-data, so
 * the runtime decides by the rules (status "no_data"), ordering the share options by the
 * candidate's confident channel rankings, which carry their own evidence (lw_channel_ranking).
 * lw_model_decides says whether a model decides (any action with enough data).
 * lw_channels_only_model writes that model (*out malloc'd); LW_ERR_INVALID when the candidate
 * carries no ranking. */
int lw_model_decides(const lw_model *m);
lw_status lw_channels_only_model(const lw_model *candidate, uint8_t **out, size_t *len, char *err, size_t errlen);

/* The best single action as a model: the candidate's actions, personas and channel rankings,
 * every weight 0 but each action's bias (+/-LW_SINGLE_LOGIT: P about 1 for `action`, about 0
 * for the others), no fairness offsets, `action` flagged enough-data. The runtime's policy then
 * shows `action` at every decision point but for the config's exploration minimums (floor, not
 * now, new variants), so the logs keep every action's support. The metadata says
 * "single_action":"<action>". LW_ERR_INVALID when the candidate has no such action. */
#define LW_SINGLE_LOGIT 12.0f
lw_status lw_single_action_model(const lw_model *candidate, const char *action, uint8_t **out, size_t *len, char *err,
                                 size_t errlen);

/* What goes live when a candidate's decisions are refused (`refused`, from lw_compare_models),
 * one place for loopwise-train and the simulator. current is the live model (NULL for none or
 * one that does not decide). A live model of the trainer's own stays as it is (NONE). A live
 * single-action model is replaced by the refusal's best single action when that is another
 * prompt whose single-action model beats the logged decisions (which the live one made) by the
 * rule below (SINGLE, the new action); else it stays, with the candidate's channel rankings
 * (SINGLE, the same action, nothing compared: its decisions do not change). With no model
 * deciding:
 *   LW_FALLBACK_SINGLE    the refusal's best single action is a prompt, estimated above the
 *                         rules, and its single-action model (with the candidate's rankings)
 *                         beats the rules on the held-out decisions: lower end of the
 *                         difference above 0 (po's min_holdout and fairness ratio hold too);
 *   LW_FALLBACK_CHANNELS  otherwise, the candidate's confident rankings alone
 *                         (lw_channels_only_model), the rules still deciding;
 *   LW_FALLBACK_NONE      neither: nothing changes.
 * out->bytes is the model file to put live (malloc'd; NULL for NONE); out->single the
 * single-action model's comparison with the rules (n 0 when it was not tried); out->reason
 * says what was chosen and why. */
typedef enum { LW_FALLBACK_NONE = 0, LW_FALLBACK_SINGLE, LW_FALLBACK_CHANNELS } lw_fallback_kind;
typedef struct {
  lw_fallback_kind kind;
  uint8_t *bytes;
  size_t len;
  lw_compare_result single;
  char action[LW_NAME_LEN + 1]; /* SINGLE: the action */
  char reason[512];
} lw_fallback;
lw_status lw_fallback_model(const lw_source_opts *src, const lw_model *current, const lw_model *candidate,
                            const lw_compare_result *refused, const lw_config *cfg, const lw_policy_params *pp,
                            const lw_metric *metric, const lw_promote_opts *po, lw_fallback *out, char *err,
                            size_t errlen);
const char *lw_fallback_name(lw_fallback_kind k); /* "none", "single", "channels" */
/* 1 when m is a single-action model (its metadata's "single_action"), with the action in out. */
int lw_model_single_action(const lw_model *m, char out[LW_NAME_LEN + 1]);

/* Write bytes to path atomically (temp file in the same directory, fsync, rename). */
lw_status lw_write_file_atomic(const char *path, const uint8_t *buf, size_t len, char *err, size_t errlen);
/* A model file's HTTP entity tag is lw_model_etag (loopwise/model.h). */

/* ---- fairness audit ------------------------------------------------------------------ */
/* lw_audit_row, its rates, ratios and flags: loopwise/audit.h (shared with the console). */
/* Per segment (feature name "attr^value", matched by hash in x; SQLite also matches the
 * decision's segment field): exposure, share and conversion rates, ratio to the best
 * segment, flagged below 0.8. VW files have no conversions (rate 0). Counts every
 * decision record, "none" and holdout included (exposure is over decision points). */
lw_status lw_audit_source(const lw_source_opts *src, int n_segments,
                          const char segments[][LW_SEGMENT_NAME_LEN + 1], lw_audit_row *rows,
                          char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
