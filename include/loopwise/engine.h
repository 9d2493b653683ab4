/* loopwise/engine.h: the on-device decision engine.
 *
 * The engine records the host's usage events into bounded state, decides at configured
 * milestones whether to prompt and with which variant, enforces consent, caps, cooldowns
 * and quiet hours, and logs every decision and outcome into its outbox.
 *
 * Time and randomness are inputs: every call takes now_ms (ms since the Unix epoch) and
 * the engine draws only from the lw_rng seeded at create time, so the same seed, config
 * and calls give the same decisions natively and in WebAssembly. */
#ifndef LOOPWISE_ENGINE_H
#define LOOPWISE_ENGINE_H

#include "loopwise/common.h"
#include "loopwise/config.h"
#include "loopwise/model.h"
#include "loopwise/outbox.h"
#include "loopwise/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LW_PPM 1000000u /* probabilities are exact multiples of one millionth */
#define LW_FEATURE_NAME_LEN 47
#define LW_MAX_FEATURES 160

/* Why a decision came out as it did: X(ENUM, machine name), the `code` of explain(). */
#define LW_WHYS(X)                                                                       \
  X(SHOWN, "shown")                                                                      \
  X(NOT_NOW, "not_now")                 /* the explicit "not now" action was drawn */     \
  X(CONSENT, "consent")                 /* no consent */                                  \
  X(HISTORY_UNKNOWN, "history_unknown") /* history lost (corrupt snapshot): a cooldown */ \
  X(OPEN_PROMPT, "open_prompt")         /* a prompt is already open (maybe another tab) */\
  X(COOLDOWN, "cooldown")               /* after a dismissal */                           \
  X(CAP, "cap")                         /* frequency cap over the rolling window */       \
  X(GAP, "gap")                         /* minimum gap since the last prompt */           \
  X(QUIET_HOURS, "quiet_hours")         /* local quiet hours */                           \
  X(PRIVACY, "privacy")                 /* GPC / Do Not Track, and no explicit consent */ \
  X(SESSION_AGE, "session_age")         /* the session is younger than the minimum */     \
  X(BUSY, "busy")                       /* the host said the user is busy */              \
  X(APPROVAL, "approval")               /* a high-value account: the host must approve */

typedef enum {
#define LW_X_WHY_ENUM(e, name) LW_WHY_##e,
  LW_WHYS(LW_X_WHY_ENUM)
#undef LW_X_WHY_ENUM
  LW_WHY_COUNT
} lw_why;

typedef struct {
  char name[LW_FEATURE_NAME_LEN + 1];
  double contribution; /* weight × value, in log-odds */
} lw_contribution;

typedef struct {
  int decided;             /* 0: the event was not a decision point; nothing else is set */
  int prompt;              /* 1: show variant `variant` now */
  char id[LW_DECISION_ID_LEN + 1];      /* random decision id that outcomes reference */
  int variant;             /* index into config variants, or -1 */
  char action[LW_NAME_LEN + 1]; /* variant id, "none" (suppressed) or "not_now" */
  uint32_t p_ppm;          /* exact probability the action was chosen with, in millionths */
  lw_mode mode;
  lw_why why;
  char reason[LW_REASON_CHARS + 1]; /* e.g. "shown: milestone project_completed×3" */
  uint32_t model_id;          /* the model loaded when deciding (0 = none) */
  char segment[LW_NAME_LEN + 1];  /* reporting segment ("persona-2"), "" if none */
  int n_top;                  /* the features that contributed most to the chosen action */
  lw_contribution top[3];     /* (model mode), largest |contribution| first */
} lw_decision;

typedef struct lw_engine lw_engine;

/* Create an engine for cfg (copied) with a fresh state: a new random install key and
 * referral code, consent as the config's default. seed_lo/hi seed the engine's lw_rng
 * (pass 128 bits from a CSPRNG in production, fixed values in tests). outbox_bytes
 * bounds the outbox (0 = 64 KiB). Free with lw_engine_free. */
lw_status lw_engine_create(const lw_config *cfg, uint64_t seed_lo, uint64_t seed_hi,
                           size_t outbox_bytes, lw_engine **out, char *err, size_t errlen);
void lw_engine_free(lw_engine *e);
/* Forget everything: a fresh state as at create (a new identity: the caller's, after
 * lw_engine_set_identity, else drawn; consent as the config's default; no history, counters
 * or queued records). The model and the privacy and busy flags stay. */
void lw_engine_reset(lw_engine *e);

/* Report a usage event. Always updates the state; at a milestone it makes a decision,
 * logs it and fills *out (out->decided = 1). LW_ERR_NOT_FOUND for an event the config
 * does not list (nothing changes). tz_offset_min is the local offset from UTC
 * (minutes east, as -Date.getTimezoneOffset() in a browser). */
lw_status lw_engine_track(lw_engine *e, const char *event, int64_t now_ms, int tz_offset_min,
                          lw_decision *out, char *err, size_t errlen);

/* As lw_engine_track, with the event's value and label: "nps_answered" with value 0-10
 * records an NPS answer, "support_rated" with 1-5 a support rating, and any event with a
 * label (e.g. feature_discovered "gantt") adds the label to the distinct-features set.
 * value NAN (or label NULL) when there is none. */
lw_status lw_engine_track_value(lw_engine *e, const char *event, double value, const char *label,
                                int64_t now_ms, int tz_offset_min, lw_decision *out, char *err,
                                size_t errlen);

/* Set a host attribute from the config's `attributes` ("plan", "pro"). An unknown name or
 * value is LW_ERR_INVALID; value NULL clears it. */
lw_status lw_engine_set_attribute(lw_engine *e, const char *name, const char *value, char *err,
                                  size_t errlen);

/* Browser privacy signals (Global Privacy Control, Do Not Track) and the host's busy flag. */
void lw_engine_set_privacy(lw_engine *e, int gpc, int dnt);
void lw_engine_set_busy(lw_engine *e, int busy);

/* Load a model file (copied). On error the previous model (or the rules) stays in force. */
lw_status lw_engine_set_model(lw_engine *e, const uint8_t *buf, size_t len, char *err, size_t errlen);
uint32_t lw_engine_model_id(const lw_engine *e); /* 0 without a model */
/* Whether the loaded model can decide for this program: "none" (no model: the rules decide),
 * "ready" (it has enough data for at least one live variant: model mode), or "no_data" (it
 * was loaded but has no data for the configured variants, e.g. another program's model:
 * the rules decide, and each such decision's reason says so). */
const char *lw_engine_model_status(const lw_engine *e);

/* The host approved a decision that waited for approval (why LW_WHY_APPROVAL): the prompt
 * may show now. Fills *out like a shown decision. LW_ERR_NOT_FOUND if nothing with that id
 * is waiting, LW_ERR_INVALID (with the reason) if a constraint blocks it by now. */
lw_status lw_engine_approve(lw_engine *e, const char *decision_id, int64_t now_ms, int tz_offset_min,
                            lw_decision *out, char *err, size_t errlen);

/* Approval requests through the ingest server (wire v3, README "Approval requests"), for a
 * decision waiting for approval. lw_engine_approval_request logs its approval-request record:
 * the decision, the variant held, the decision's own explanation, the attributes the config's
 * approval.send names (those set) and key, the install's approval key (LW_APPROVAL_KEY_LEN
 * lowercase hex, drawn and kept by the caller). Only with consent given (lw_engine_set_consent):
 * *sent 0 and nothing logged otherwise. LW_ERR_NOT_FOUND if nothing with that id is waiting,
 * LW_ERR_INVALID for a malformed key.
 * lw_engine_approval_answer applies the answer the device picked up ("approved", "declined" or
 * "expired"; anything else LW_ERR_INVALID) and logs an approval-answer record: approved is
 * lw_engine_approve (the prompt shows only if every constraint still allows it: LW_ERR_INVALID
 * with the reason otherwise); declined and expired end the wait, *out the held decision, not
 * shown. */
lw_status lw_engine_approval_request(lw_engine *e, const char *decision_id, const char *key, int64_t now_ms,
                                     int *sent, char *err, size_t errlen);
lw_status lw_engine_approval_answer(lw_engine *e, const char *decision_id, const char *answer, int64_t now_ms,
                                    int tz_offset_min, lw_decision *out, char *err, size_t errlen);
/* The id of the decision held at now_ms ("" when none) whose approval request was sent
 * (requested 1: it is kept in the snapshot, so a later page asks the server for its answer) or
 * not yet (requested 0: held for 30 minutes, in memory only, for lw_engine_approve or until its
 * request goes). */
const char *lw_engine_approval_held(lw_engine *e, int requested, int64_t now_ms);

/* Referee side. A visitor arrived through a share link with `code`: remembered on this
 * device and logged as "landing". Later the host reports the visitor's conversion (sign-up
 * or purchase, as the host defines it): logged once as "conversion" with that code, for the
 * ingest server to attribute. LW_ERR_NOT_FOUND when this device never landed with a code. */
lw_status lw_engine_referee_landing(lw_engine *e, const char *code, int64_t now_ms, char *err,
                                    size_t errlen);
lw_status lw_engine_referee_conversion(lw_engine *e, int64_t now_ms, char *err, size_t errlen);
/* A landing through a v2 share link, which carries the share's token beside the code (token
 * NULL or "" for a link without one): the landing and a later conversion carry it, so the
 * server joins the referee to the decision whose share produced it. The token is kept in
 * memory only (not in the snapshot). LW_ERR_INVALID for a token that is not 32 lowercase hex. */
lw_status lw_engine_referee_landing_token(lw_engine *e, const char *code, const char *token, int64_t now_ms,
                                          char *err, size_t errlen);

/* The context features the engine would use now (as logged in `x`), with their names.
 * Returns how many were written (at most cap). names may be NULL. */
int lw_engine_features(lw_engine *e, int64_t now_ms, int tz_offset_min, lw_feature *out,
                       char (*names)[LW_FEATURE_NAME_LEN + 1], int cap);

/* Report what happened to a shown prompt: kind is one of the wire kinds with
 * LW_KIND_F_OUTCOME (impression: rendered; share, copy; dismiss: "not now" from the user,
 * which starts the cooldown). decision_id is 16 lowercase hex characters. */
lw_status lw_engine_outcome(lw_engine *e, const char *decision_id, lw_kind kind, int64_t now_ms,
                            char *err, size_t errlen);
/* A share (or copy) of a shown prompt through `channel`, a LW_CHANNELS name (wire.h):
 * "native" for the device's share sheet, "copy" for the clipboard, the prompt's direct
 * channels ("email", ...) as they come. The record's kind follows the channel (copy for
 * "copy", share otherwise). Its per-share token is the lowercase hex of the LW_TOKEN_BYTES
 * random bytes the caller passes (crypto.getRandomValues in a browser, a seeded stream in
 * the simulator); it is written to token_out (may be NULL) and kept for lw_engine_last_token,
 * for the share link to carry beside the referral code. LW_ERR_INVALID (naming the field) for
 * an unknown channel or a bad decision id; nothing is logged then.
 * lw_engine_outcome with LW_KIND_SHARE / LW_KIND_COPY stays for callers that pass no bytes:
 * channel "native" / "copy", the token drawn from a stream of the engine's own seed. */
lw_status lw_engine_share(lw_engine *e, const char *decision_id, const char *channel,
                          const uint8_t random[LW_TOKEN_BYTES], int64_t now_ms,
                          char token_out[LW_TOKEN_LEN + 1], char *err, size_t errlen);
/* Channels that fit the person: the share channels the loaded model ranks best first for the
 * current user's persona (as a decision at now_ms would assign it), as LW_CHANNELS names into
 * out (at most cap); returns how many. 0 without a model, when the model carries no ranking
 * (format 1-2, or too few shares per channel), or for an install in the config's holdout (which
 * measures what learning adds, so it sees nothing learned): the prompt keeps its own order then. */
int lw_engine_channels(lw_engine *e, int64_t now_ms, int tz_offset_min, const char **out, int cap);
/* The token of the last share or copy (32 lowercase hex), "" before the first. */
const char *lw_engine_last_token(const lw_engine *e);
/* The prompt was closed without a choice (navigation, another tab): local only, not logged. */
lw_status lw_engine_close(lw_engine *e, const char *decision_id, char *err, size_t errlen);
/* The edges' form (JavaScript passes names): an outcome kind's wire name, or
 * LW_OUTCOME_CLOSE for lw_engine_close. LW_ERR_INVALID for anything else. */
#define LW_OUTCOME_CLOSE "close"
lw_status lw_engine_outcome_named(lw_engine *e, const char *decision_id, const char *name,
                                  int64_t now_ms, char *err, size_t errlen);

/* The user's (or host's) consent answer. */
void lw_engine_set_consent(lw_engine *e, int given, int64_t now_ms);

/* Whether the engine collects now: consent given, or (consent not required) neither refused
 * nor overridden by a respected privacy signal (README "On-device state and privacy"). While
 * it does not, no record is made, snapshots leave out the install key and referral code, and
 * lw_engine_collecting also deletes what the outbox holds (returning 0). */
int lw_engine_collects(const lw_engine *e);
/* The consent answer: 0 none yet, 1 given, 2 refused, 3 unknown (a damaged snapshot). */
int lw_engine_consent_state(const lw_engine *e);
/* Shares and copies made on this device (0: it never shared, so no server knows its code). */
uint32_t lw_engine_shares(const lw_engine *e);
int lw_engine_collecting(lw_engine *e);

/* The device's identity from the caller's CSPRNG (16 bytes of install key, then
 * LW_CODE_GEN_LEN bytes for the referral code), in place of the seeded generator's: set now
 * and used again whenever the engine needs a fresh identity (a lost guard section, a snapshot
 * without one). Draws from the seeded generator are unchanged, so decisions are too. */
#define LW_IDENTITY_BYTES (16 + LW_CODE_GEN_LEN)
void lw_engine_set_identity(lw_engine *e, const uint8_t bytes[LW_IDENTITY_BYTES]);

/* The last decision made (decided = 0 before the first). */
const lw_decision *lw_engine_last_decision(const lw_engine *e);
const char *lw_engine_install_key(const lw_engine *e); /* 32 hex characters */
const char *lw_engine_referral_code(const lw_engine *e);
lw_outbox *lw_engine_outbox(lw_engine *e);
const lw_config *lw_engine_config(const lw_engine *e);

/* A fresh random batch id (32 lowercase hex characters) for lw_wire_take_batch. Batch ids
 * come from a stream of their own, so when and how often the host flushes never changes
 * which decisions the engine makes. */
void lw_engine_batch_id(lw_engine *e, char out[LW_BATCH_ID_HEX_LEN + 1]);

/* ---- snapshots -------------------------------------------------------------------
 * A snapshot is a compact binary copy of the whole on-device state (format in
 * models/FORMAT.md): consent and prompt history ("guard"), behavioural counters, and
 * unsent outbox records, each section with its own checksum.
 *
 * lw_engine_snapshot writes it into buf and returns its size. When the size is more than
 * cap, what buf holds is not a snapshot: call again with at least the size returned (cap 0
 * with buf NULL just measures).
 *
 * lw_engine_restore replaces the state with a snapshot. Snapshots of earlier versions
 * are migrated. A damaged section never becomes a silent fresh start: a lost guard
 * section leaves consent unknown (not given where the config requires it) and no prompt
 * for one cooldown period from now_ms; a lost behaviour or outbox section is reset.
 * Returns LW_OK, or LW_ERR_CORRUPT / LW_ERR_VERSION with a message after applying that
 * conservative fallback (the engine stays usable either way). */
size_t lw_engine_snapshot(const lw_engine *e, uint8_t *buf, size_t cap);
lw_status lw_engine_restore(lw_engine *e, const uint8_t *buf, size_t len, int64_t now_ms, char *err,
                            size_t errlen);

/* The decision as one JSON object, the form the WASM binding hands to JavaScript and the
 * shared test cases compare:
 * {"id":"…","prompt":true,"variant":0,"code":"shown","action":"credit_10","p":0.75,
 *  "mode":"rules","reason":"shown: milestone project_completed×3","model":"m3",
 *  "segment":"persona-1","top":[{"feature":"nps^promoter","contribution":0.41},…]}
 * ("model", "segment" and "top" only when there is one.)
 * Writes at most cap bytes (NUL-terminated) and returns the length; "null" if not decided. */
size_t lw_decision_to_json(const lw_decision *d, char *buf, size_t cap);

const char *lw_why_name(lw_why why);

#ifdef __cplusplus
}
#endif
#endif
