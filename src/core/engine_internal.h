/* engine_internal.h: the engine's state, shared by engine.c and snapshot.c only. */
#ifndef LW_ENGINE_INTERNAL_H
#define LW_ENGINE_INTERNAL_H

#include "loopwise/engine.h"
#include "loopwise/model.h"
#include "loopwise/rng.h"
#include "sbuf.h"

#define LW_SHOWN_RING 16 /* prompt times remembered for rolling-window caps */

enum { LW_CONSENT_UNSET = 0, LW_CONSENT_GIVEN = 1, LW_CONSENT_REFUSED = 2, LW_CONSENT_UNKNOWN = 3 };

#define LW_HALF_LIVES 3 /* 1, 7 and 30 days */

typedef struct {
  uint32_t count;
  int64_t first_ms; /* 0 = never seen (or unknown after a migration) */
  int64_t last_ms;
  double decayed[LW_HALF_LIVES]; /* decayed counts as of last_ms */
} lw_event_state;

/* Consent and prompt history: what must never be forgotten silently. */
typedef struct {
  uint8_t install[16]; /* also the secret that proves this device owns `code` */
  char code[LW_CODE_GEN_LEN + 1];
  char referred_by[LW_CODE_LEN + 1]; /* referee side: the code this device landed with */
  uint8_t referee_converted;
  uint8_t consent; /* LW_CONSENT_* */
  int64_t consent_ms;
  uint32_t shown_total, dismiss_total, share_total;
  int64_t shown_ms[LW_SHOWN_RING]; /* most recent first; 0 = empty */
  int64_t last_dismiss_ms, last_share_ms;
  char open_id[LW_DECISION_ID_LEN + 1]; /* the prompt on screen, "" if none */
  char open_action[LW_NAME_LEN + 1];
  int64_t open_since_ms;
  int64_t history_unknown_until_ms; /* set when history was lost */
} lw_guard;

typedef struct {
  int64_t first_seen_ms;
  int64_t last_activity_ms;
  int64_t session_start_ms;
  uint32_t sessions;
  double act[2];         /* all events, half-lives 7 and 30 days, as of last_activity_ms */
  uint64_t feature_bits; /* distinct feature labels, by hash */
  int32_t nps;           /* last NPS answer 0-10, -1 unknown */
  int64_t nps_ms;
  int32_t support;       /* last support rating 1-5, 0 unknown */
  int64_t support_ms;
  int8_t attrs[LW_MAX_ATTRIBUTES]; /* value index, -1 unset */
  lw_event_state ev[LW_MAX_EVENTS]; /* aligned with config events */
} lw_behaviour;

/* A decision waiting for approval. Held for LW_OPEN_PROMPT_TTL_MS for the host's own workflow
 * (lw_engine_approve, in-page, not persisted); once its approval request was sent to the
 * server (requested) it is kept in the snapshot and held until answered, for at most
 * LW_APPROVAL_HOLD_MS: the server's answer says when it expired. */
typedef struct {
  lw_decision d;
  int64_t since_ms;
  char explain[LW_REASON_CHARS + 1]; /* the decision's own reason, before "awaiting approval" */
  int requested;
} lw_pending_approval;

struct lw_engine {
  lw_config cfg;
  lw_rng rng;    /* decisions, install key, referral code */
  lw_rng id_rng; /* batch ids only (lw_engine_batch_id) */
  lw_rng token_rng; /* share tokens of callers that pass no bytes (lw_engine_outcome) */
  char last_token[LW_TOKEN_LEN + 1]; /* the last share's token, "" before the first */
  /* Referee side: the share token of the link this device landed with ("" for a v1 link).
   * Not in the snapshot (a reload before the conversion loses it; the host's report through
   * the referee endpoint carries the token from the landing URL either way). */
  char referred_token[LW_TOKEN_LEN + 1];
  lw_guard guard;
  lw_behaviour beh;
  lw_outbox *outbox;
  lw_decision last;
  char install_hex[LW_INSTALL_LEN + 1];
  lw_model *model; /* owned, NULL = rules only */
  /* The model's policy under cfg (lw_policy_for_config), set with the model: both are fixed
   * until the next model. model_ready: it can decide (model mode). */
  lw_policy pol;
  int variant_of[LW_MODEL_MAX_ACTIONS];
  int model_ready;
  int gpc, dnt, busy;
  uint8_t identity[LW_IDENTITY_BYTES]; /* the caller's, when has_identity (lw_engine_set_identity) */
  int has_identity;
  lw_pending_approval approval;
  /* scratch for the features of the decision being made */
  int n_x;
  lw_feature x[LW_MAX_FEATURES];
  char x_names[LW_MAX_FEATURES][LW_FEATURE_NAME_LEN + 1];
};

void lw_behaviour_reset(lw_behaviour *b);

/* Fresh guard state: new install key, referral code and secret from the engine's rng. */
void lw_engine_fresh_guard(lw_engine *e);
void lw_engine_refresh_install_hex(lw_engine *e);
#define lw_name_hash lw_fnv1a /* event names are matched across config changes by hash */

#define LW_MINUTE_MS 60000LL
#define LW_HOUR_MS (60 * LW_MINUTE_MS)
#define LW_DAY_MS (24 * LW_HOUR_MS)
#define LW_OPEN_PROMPT_TTL_MS (30 * LW_MINUTE_MS) /* a prompt open longer was left behind */
#define LW_APPROVAL_HOLD_MS (365 * LW_DAY_MS) /* the longest the server's approval_days can be */
/* The held decision with this id, if it is still held at now_ms (approval.c); NULL otherwise. */
lw_pending_approval *lw_engine_hold(lw_engine *e, const char *decision_id, int64_t now_ms);

/* ---- the engine's parts (one file each) -------------------------------------------- */

/* features.c: record one event into the behaviour state; build the context features a
 * decision sees into x (and their names, if names is not NULL), at most cap. *n gets the
 * count; returns the persona index, or -1 without a model's personas. */
void lw_engine_record_event(lw_engine *e, int idx, double value, const char *label, int64_t now);
int lw_engine_build_features(lw_engine *e, int64_t now, int tz, int milestone_event, lw_feature *x,
                             char (*names)[LW_FEATURE_NAME_LEN + 1], int cap, int *n);

/* constraints.c: 1 and d->why / d->reason ("suppressed: ...") when a hard constraint blocks
 * a prompt now. The cooldown after the given number of dismissals; the local hour and
 * weekday (0 = Sunday) at now_ms for a UTC offset in minutes east. */
int lw_engine_blocked(const lw_engine *e, int64_t now_ms, int tz_offset_min, lw_decision *d);
int64_t lw_cooldown_ms(const lw_config *cfg, uint32_t dismissals);
typedef struct {
  int hour, wday;
} lw_local_time;
lw_local_time lw_local_time_of(int64_t now_ms, int tz_offset_min);

/* choose.c: the modes. The model's policy for this config is lw_policy_for_model's
 * (policy.c, shared with the learning tools). */
int lw_engine_in_holdout(const lw_engine *e);
/* how: what the reason says after "shown: " ("", "holdout baseline at ", ...). */
void lw_engine_choose_by_rules(lw_engine *e, const char *how, const char *event, uint32_t count, lw_decision *d);
void lw_engine_choose_by_model(lw_engine *e, const char *event, uint32_t count, lw_decision *d);

/* records.c: the wire records. A record starts with the fields every kind has (decision_id
 * may be NULL) and is pushed to the outbox whole or not at all. */
void lw_engine_record_begin(lw_engine *e, lw_sbuf *sb, const char *kind, int64_t now_ms, const char *decision_id);
void lw_engine_record_push(lw_engine *e, lw_sbuf *sb);
void lw_engine_log_decision(lw_engine *e, const lw_decision *d, int64_t now_ms);
/* The fields a decision has both in its wire record and in its JSON for the host. */
void lw_sb_decision_fields(lw_sbuf *sb, const lw_decision *d);

#endif
