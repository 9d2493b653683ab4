/* loopwise/model.h: hashed features, the per-action logistic model, and its file format.
 *
 * The byte layout of a model file and the feature hashing are specified in
 * models/FORMAT.md. The runtime loads a model with lw_model_load; the trainer fills an
 * lw_model and writes it with lw_model_write. All arithmetic a decision depends on (exp,
 * log, the sigmoid) is computed here with basic IEEE operations only, so native and WASM
 * builds score identically. */
#ifndef LOOPWISE_MODEL_H
#define LOOPWISE_MODEL_H

#include "loopwise/common.h"
#include "loopwise/config.h"
#include "loopwise/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LW_MODEL_MAX_ACTIONS 9 /* up to 8 variants and "not_now" */
#define LW_MODEL_MAX_PERSONAS 16
#define LW_MODEL_PERSONA_DIMS 8
#define LW_MODEL_MAX_SEGMENTS 32
#define LW_SEGMENT_NAME_LEN (2 * LW_NAME_LEN + 1) /* "attribute^value" */
#define LW_FX_ONE 256          /* feature values are fixed-point q / 256 */

typedef struct {
  uint32_t hash; /* FNV-1a of the feature name */
  int32_t q;     /* value × 256, rounded */
} lw_feature;

typedef struct {
  uint8_t bits; /* weight table of 2^bits int8 */
  int n_actions;
  char action_ids[LW_MODEL_MAX_ACTIONS][LW_NAME_LEN + 1];
  uint8_t action_flags[LW_MODEL_MAX_ACTIONS]; /* bit 0: enough data */
  int64_t support[LW_MODEL_MAX_ACTIONS];       /* logged decisions trained on; -1 unknown (v1) */
  float scale;
  float *weights; /* owned: 2^bits entries; weight = weights[i] × scale (v1 files: the int8
                     values; v2 files: the stored f32 weights, scale 1) */
  uint32_t model_id;
  int64_t trained_at_ms;
  int n_personas, persona_dims;
  float centroids[LW_MODEL_MAX_PERSONAS * LW_MODEL_PERSONA_DIMS];
  float mean[LW_MODEL_PERSONA_DIMS], sd[LW_MODEL_PERSONA_DIMS];
  int n_segments;
  char segment_names[LW_MODEL_MAX_SEGMENTS][LW_SEGMENT_NAME_LEN + 1];
  float segment_offsets[LW_MODEL_MAX_SEGMENTS];
  /* Channels that fit the person (format 3): per persona (one row without personas), the share
   * channels (lw_channel, loopwise/wire.h) best first, as the trainer ranked them by retained
   * value per share; n_channel_rows 0 when the model carries no ranking (v1, v2 files). */
  int n_channel_rows;
  uint8_t n_channels[LW_MODEL_MAX_PERSONAS];
  uint8_t channels[LW_MODEL_MAX_PERSONAS][LW_CHANNEL_COUNT];
  /* What the model predicts (format 4). 0: P(label) of a 0/1 label (a share), which the policy
   * prices as P × (value_per_referral − cost) − fatigue (v1-v3 files). 1: the label is value
   * already, net of the incentive (retained referee value, or the shares fallback): the model's
   * P is (label − reward_lo) / (reward_hi − reward_lo), and the policy prices a prompt at
   * reward_lo + (reward_hi − reward_lo) × P − fatigue and "not now" at the same without fatigue,
   * as the trainer's objective (lw_metric_graded) does. */
  int value_labels;
  float reward_lo, reward_hi;
  char *meta_json; /* owned, NUL-terminated; may be NULL */
} lw_model;

#define LW_MODEL_ENOUGH_DATA 1u
#define LW_MODEL_FORMAT_VERSION 4 /* what lw_model_write writes; lw_model_load reads 1 to 4 */

/* Parse and check a model file. On success *out is a new model (free with lw_model_free).
 * Any damage (magic, version, checksum, sizes, trailing bytes) is LW_ERR_CORRUPT or
 * LW_ERR_VERSION with a message. */
lw_status lw_model_load(const uint8_t *buf, size_t len, lw_model **out, char *err, size_t errlen);
void lw_model_free(lw_model *m);

/* Serialize m. *out is malloc'd (the caller frees); *len its size. */
lw_status lw_model_write(const lw_model *m, uint8_t **out, size_t *len, char *err, size_t errlen);

int lw_model_action_index(const lw_model *m, const char *id); /* -1 if absent */
/* How many logged decisions of action action_index the model was trained on: -1 when the
 * file does not say (format version 1) or the index is out of range. */
int64_t lw_model_support(const lw_model *m, size_t action_index);
/* Weight index of feature hash h for action a (models/FORMAT.md). */
uint32_t lw_model_index(const lw_model *m, int action, uint32_t h);
/* z for action a over features x[0..n) plus offset. */
double lw_model_score(const lw_model *m, int action, const lw_feature *x, int n, double offset);
/* Each feature's contribution to action a's score (weight × value, log-odds) into out[0..n). */
void lw_model_contributions(const lw_model *m, int action, const lw_feature *x, int n, double *out);
/* Nearest persona to the raw (unstandardized) dimensions, or -1 without personas. */
int lw_model_persona(const lw_model *m, const double dims[LW_MODEL_PERSONA_DIMS]);
/* Fairness offset of a segment ("plan^free"), 0 when the model has none for it. */
double lw_model_segment_offset(const lw_model *m, const char *segment);

/* ---- the model's exploration policy (src/core/policy.c) -----------------------
 * Expected net value of action a: EV(a) = P(referral | a) × (value − cost[a]) − fatigue
 * for a prompt, P(referral | not_now) × value for "not now". Actions flagged enough-data
 * share a softmax over EV / T, where T is `temperature` (value units) or, when `relative` is
 * above 0, relative × the spread (largest − smallest EV) of those actions, so the same setting
 * explores alike whatever the currency and the size of the values. Every enabled action also
 * gets at least `floor`; "not now" at least `not_now`; a new variant (one without enough
 * data or support, and the config's variants the model has no action for, which follow the
 * model's actions as "virtual" actions n_actions + j) at least `new_variant`. When those minimums add
 * up to more than one they are scaled down to sum to one. The result is exact: millionths
 * summing to one million, which is what the draw and the log use. */
#define LW_POLICY_MAX_ACTIONS (LW_MODEL_MAX_ACTIONS + LW_MAX_VARIANTS) /* model actions + virtual */
/* A variant is new (explored at least at `new_variant`) until the model was trained on this
 * many of its logged decisions (the trainer's --min-ess default). */
#define LW_POLICY_NEW_SUPPORT 200
typedef struct {
  double value;                          /* value of one referred customer */
  double fatigue;                        /* cost of showing one prompt */
  double temperature;                    /* softmax temperature, in value units (> 0) */
  double relative;                       /* > 0: temperature relative to the values' spread */
  double floor;                          /* least probability of every enabled action */
  double not_now;                        /* least probability of "not now" */
  double new_variant;                    /* least probability of a new variant */
  double cost[LW_MODEL_MAX_ACTIONS];     /* incentive cost per referred customer */
  int is_prompt[LW_MODEL_MAX_ACTIONS];   /* 0 for "not_now" */
  int enabled[LW_MODEL_MAX_ACTIONS];     /* may be chosen (the config has this variant, switched on) */
  int n_virtual;                         /* the config's live variants the model has no action for */
  int virtual_variant[LW_MAX_VARIANTS];  /* their variant indexes in the config */
} lw_policy;

/* Fills ppm[0..n_actions + pol->n_virtual) (0 for disabled actions; size it
 * LW_POLICY_MAX_ACTIONS) and, when ev is not NULL, the expected values of the model's actions.
 * offset is the segment's fairness offset (added to prompt actions' scores).
 * LW_ERR_INVALID when no action is enabled. */
lw_status lw_model_policy(const lw_model *m, const lw_policy *pol, const lw_feature *x, int n,
                          double offset, uint32_t *ppm, double *ev);

/* ---- the runtime's policy for a model (src/core/policy.c) ---------------------------
 * One implementation for the engine, the trainer, the evaluator and the simulator. */

/* The config's value_per_referral, fatigue_cost and explore settings into pol (nothing else
 * is touched); cfg NULL gives the config schema's defaults (config_schema.c:
 * what a config that sets none of them gives the runtime). */
void lw_policy_settings(const lw_config *cfg, lw_policy *pol);
/* The policy the runtime runs for model m under cfg: the settings above, "not_now" always
 * enabled, a prompt action enabled (with its variant's cost) only when cfg has that variant.
 * A variant switched off (weight 0) is never enabled; the config's live variants the model has
 * no action for become pol's virtual actions, explored at the new-variant minimum.
 * cfg NULL (data with a bare action list) enables every action at no cost. variant_of, when
 * not NULL, gets each model action's variant index in cfg (-1 for none). Returns 1 when the
 * model can decide: an enabled prompt action is flagged enough-data; else the runtime keeps
 * deciding by the rules. */
/* The runtime's form: cfg required. lw_policy_for_model with a config is this; the engine
 * calls this one so the no-config defaults path never reaches the page's download. */
int lw_policy_for_config(const lw_model *m, const lw_config *cfg, lw_policy *pol, int *variant_of);
int lw_policy_for_model(const lw_model *m, const lw_config *cfg, lw_policy *pol, int *variant_of);
/* The eight persona dimensions of a feature vector (models/FORMAT.md): the values of
 * act^d7, act^d30, tenure, sessions, features, shown, dismissed and shared, 0 when absent. */
void lw_persona_dims(const lw_feature *x, int n, double dims[LW_MODEL_PERSONA_DIMS]);
/* The hash of the feature "persona^k" the runtime adds for persona k. */
uint32_t lw_persona_hash(int k);

/* ---- a model's identity (src/core/model_ident.c) ---------------------------------- */
/* The HTTP entity tag of a model file: "\"m<id>-<crc32 hex>-<length hex>\"", from its bytes
 * alone (the id and the file's own checksum), so it changes exactly when the served bytes
 * do. cap >= 32. */
void lw_model_etag(const uint8_t *buf, size_t len, char *out, size_t cap);
/* 1 when a and b decide identically: same weights, scale, actions and their flags, personas,
 * segment offsets and channel rankings (the order the prompt offers its share options in); id,
 * training time and metadata aside. */
int lw_model_same_decisions(const lw_model *a, const lw_model *b);

/* Split one million among n weights in proportion (largest remainders, ties to the lower
 * index): the result sums to exactly 1000000 and a zero weight gets zero.
 * n <= LW_POLICY_MAX_ACTIONS. */
void lw_ppm_split(const uint32_t *w, int n, uint32_t *ppm);
/* The same for `whole` millionths instead of one million (at least one weight above 0). */
void lw_ppm_split_to(const uint32_t *w, int n, uint32_t whole, uint32_t *ppm);

/* ---- a feature named in text (src/core/feature_text.c) ---------------------------- */
/* The hash of a feature named by its n bytes in a Vowpal Wabbit line: "#<decimal>" is that
 * hash itself (below 2^32), any other name (and "#" alone) its FNV-1a. Returns 0, leaving
 * *hash alone, for a "#" form that is not such an integer. */
int lw_feature_hash(const char *name, size_t n, uint32_t *hash);

/* ---- shared arithmetic ---------------------------------------------------------- */
uint32_t lw_fnv1a(const char *s);
uint32_t lw_fnv1a_bytes(uint32_t h, const void *p, size_t n); /* continue a hash */
int32_t lw_fx(double v);      /* fixed-point value: floor(v × 256 + 0.5), saturating */
double lw_exp(double x);      /* e^x */
double lw_ln1p(double x);     /* ln(1 + x), x >= 0 */
double lw_sigmoid(double z);  /* 1 / (1 + e^-z) */
uint32_t lw_crc32(uint32_t crc, const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
