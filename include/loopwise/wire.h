/* loopwise/wire.h: the wire vocabulary, defined once (README "Wire contract").
 *
 * Every record kind, decision mode, special action, record field and size limit that crosses
 * from the runtime to the ingest server and on to the learning tools is written here and
 * nowhere else. The tables are X-macros so that C code generates its enums and name tables
 * from them; JavaScript and SQL use the names, never the positions. Adding a record kind
 * means one row in LW_KINDS (its fields' rules included), its docs and its tests.
 *
 * Sizes follow one naming rule: *_LEN is a number of characters without the NUL (a buffer
 * for one is [X_LEN + 1]); *_MIN_LEN the least; *_CHARS counts code points, not bytes. */
#ifndef LOOPWISE_WIRE_H
#define LOOPWISE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/common.h"
#include "loopwise/outbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------------------
 * LW_WIRE_VERSION is the batch schema version `v` this build's runtime writes (lw_wire_take_batch);
 * the server accepts every version it shipped, 1..LW_WIRE_READ_VERSION. Version 2 adds the
 * per-share token and the share channel (LW_FIELDS' `since` column); the runtime writes 2 since it
 * draws a token for every share and copy (lw_engine_share). */
/* Version 3 adds the approval records (approval-request, approval-answer) and their fields
 * attrs, key and answer (README "Approval requests"). */
#define LW_WIRE_VERSION 3
#define LW_WIRE_READ_VERSION 3

/* ---- limits --------------------------------------------------------------------------- */
#define LW_NAME_LEN 32         /* action, segment, model, event, variant, attribute names */
#define LW_DECISION_ID_LEN 16  /* lowercase hex */
#define LW_INSTALL_LEN 32      /* lowercase hex: the device's random install key */
#define LW_BATCH_ID_LEN 64     /* at most, of [A-Za-z0-9_-]; the runtime writes 32 hex */
#define LW_BATCH_ID_HEX_LEN 32 /* what the runtime draws */
#define LW_WRITE_KEY_LEN 128
#define LW_CODE_MIN_LEN 6      /* referral codes: [A-Z0-9] */
#define LW_CODE_LEN 16
#define LW_CODE_GEN_LEN 10     /* what the runtime draws */
#define LW_REASON_CHARS 160
#define LW_X_PAIRS 256         /* hashed features in a decision's x */
#define LW_BATCH_EVENTS 500    /* records in one batch */
#define LW_TOKEN_BYTES 16      /* the random bytes a token is the hex of */
#define LW_TOKEN_LEN 32        /* exactly, lowercase hex: a share's random token (128 bits from the
                                  device's CSPRNG), in the share link beside the code (wire v2) */
#define LW_APPROVAL_KEY_LEN 32 /* exactly, lowercase hex: the install's approval key (wire v3), 128
                                  random bits the device drew and keeps; the server stores a hash */
#define LW_APPROVAL_ATTRS 4    /* an approval request's attrs: at most this many name/value pairs
                                  (the config's attributes, LW_MAX_ATTRIBUTES) */

/* ---- record fields --------------------------------------------------------------------
 * X(ENUM, wire name, since): the order is the column order of LW_KINDS' rules strings below;
 * since is the batch version `v` that introduced the field. A batch of an older version refuses
 * the field (it never had it) and does not require it. */
#define LW_FIELDS(X)                                                                       \
  X(KIND, "kind", 1) X(T, "t", 1) X(INSTALL, "install", 1) X(DECISION, "decision", 1)      \
  X(ACTION, "action", 1) X(P, "p", 1) X(MODE, "mode", 1) X(REASON, "reason", 1)            \
  X(SEGMENT, "segment", 1) X(MODEL, "model", 1) X(FEATURES, "x", 1) X(CODE, "code", 1)     \
  X(TOKEN, "token", 2) X(CHANNEL, "channel", 2) X(ATTRS, "attrs", 3) X(KEY, "key", 3)       \
  X(ANSWER, "answer", 3)

typedef enum {
#define LW_X_FIELD_ENUM(e, name, since) LW_FIELD_##e,
  LW_FIELDS(LW_X_FIELD_ENUM)
#undef LW_X_FIELD_ENUM
  LW_FIELD_COUNT
} lw_field;

/* ---- record kinds ---------------------------------------------------------------------
 * X(ENUM, wire name, stats name, flags, rules). rules has one letter per LW_FIELDS entry:
 * R required, O optional, - refused.
 *   LW_KIND_F_OUTCOME  the host reports it for a shown prompt (lw_engine_outcome)
 *   LW_KIND_F_SHARED   the referrer passed the referral on: it carries the code
 *   LW_KIND_F_REFEREE  sent by the referee's device; the decision is optional */
#define LW_KIND_F_OUTCOME 1u
#define LW_KIND_F_SHARED 2u
#define LW_KIND_F_REFEREE 4u
#define LW_KIND_F_APPROVAL 8u /* the approval exchange (wire v3): not an outcome, not in the funnel */
#define LW_KIND_F_HELD 16u    /* its action is the variant a rule held: a prompt, never "none" or "not_now" */
#define LW_APPROVAL_VERSION 3 /* the batch version that added the approval kinds: older refuse them */
/* A share or copy of v2 carries its link's token and the channel it went through; a landing or
 * conversion carries the token from the URL it landed on when there was one (a v1 link had
 * none), and a token needs the code beside it (lw_batch_parse checks that pairing).
 * An approval-request (v3) is sent, only with consent, when the approval rule held a prompt: its
 * decision, the variant held (action), the decision's explanation (reason), the account's
 * attributes the config's approval.send names (attrs: {"plan":"enterprise",...}, values from the
 * config's allowed lists, so never personal) and the install's approval key, with which the
 * device later asks for the answer (POST /v1/approvals). An approval-answer (v3) records what
 * the device did with the answer it picked up: "approved" (shown, or not if another constraint
 * holds it now), "declined" or "expired".
 *                                                               k t i d a p m r s m x c t c a k a */
#define LW_KINDS(X)                                                                       \
  X(DECISION, "decision", "decisions", 0, "RRRRRRRROOO------")                            \
  X(IMPRESSION, "impression", "impressions", LW_KIND_F_OUTCOME, "RRRRO---OO-------")      \
  X(SHARE, "share", "shares", LW_KIND_F_OUTCOME | LW_KIND_F_SHARED, "RRRRO---OO-ORR---")  \
  X(COPY, "copy", "copies", LW_KIND_F_OUTCOME | LW_KIND_F_SHARED, "RRRRO---OO-ORR---")    \
  X(DISMISS, "dismiss", "dismissals", LW_KIND_F_OUTCOME, "RRRRO---OO-------")             \
  X(LANDING, "landing", "landings", LW_KIND_F_REFEREE, "RRROO---OO-OO----")               \
  X(CONVERSION, "conversion", "conversions", LW_KIND_F_REFEREE, "RRROO---OO-OO----")      \
  X(APPROVAL_REQUEST, "approval-request", "approval_requests", LW_KIND_F_APPROVAL | LW_KIND_F_HELD, \
    "RRRRR--RO-----RR-")                                                                  \
  X(APPROVAL_ANSWER, "approval-answer", "approval_answers", LW_KIND_F_APPROVAL,             \
    "RRRRO---O-------R")

typedef enum {
#define LW_X_KIND_ENUM(e, name, stat, flags, rules) LW_KIND_##e,
  LW_KINDS(LW_X_KIND_ENUM)
#undef LW_X_KIND_ENUM
  LW_KIND_COUNT
} lw_kind;

/* ---- decision modes ------------------------------------------------------------------ */
#define LW_MODES(X) X(RULES, "rules") X(MODEL, "model") X(HOLDOUT, "holdout")

typedef enum {
#define LW_X_MODE_ENUM(e, name) LW_MODE_##e,
  LW_MODES(LW_X_MODE_ENUM)
#undef LW_X_MODE_ENUM
  LW_MODE_COUNT
} lw_mode;

/* ---- special actions ------------------------------------------------------------------
 * A decision's action is a variant id or one of these (config validation refuses variants
 * named like them). */
#define LW_ACTION_NONE "none"       /* a hard constraint suppressed the prompt: no choice made */
#define LW_ACTION_NOT_NOW "not_now" /* the explicit "not now" action was chosen */

/* ---- names ----------------------------------------------------------------------------
 * Each returns a stable name, "unknown" out of range; each parse returns -1 for an unknown
 * name. lw_kind_stat_name is the plural used as a /v1/stats field ("shares"). */
const char *lw_kind_name(lw_kind kind);
const char *lw_kind_stat_name(lw_kind kind);
unsigned lw_kind_flags(lw_kind kind);
/* The rule letter ('R', 'O' or '-') of field f for kind. */
char lw_kind_rule(lw_kind kind, lw_field f);
int lw_kind_parse(const char *name);
const char *lw_field_name(lw_field f);
const char *lw_mode_name(lw_mode mode);
int lw_mode_parse(const char *name);
/* 1 when action is a variant (the user was shown a prompt), 0 for "none" and "not_now". */
int lw_action_is_prompt(const char *action);
/* The batch version that introduced field f (LW_FIELDS' since column); 0 out of range. */
int lw_field_since(lw_field f);

/* ---- approval answers (wire v3) ------------------------------------------------------
 * X(ENUM, wire name): what POST /v1/approvals answers for a request and what an
 * approval-answer record carries ("pending" is an answer only, never a record's). */
#define LW_APPROVAL_ANSWERS(X) \
  X(PENDING, "pending") X(APPROVED, "approved") X(DECLINED, "declined") X(EXPIRED, "expired")

typedef enum {
#define LW_X_ANSWER_ENUM(e, name) LW_ANSWER_##e,
  LW_APPROVAL_ANSWERS(LW_X_ANSWER_ENUM)
#undef LW_X_ANSWER_ENUM
  LW_ANSWER_COUNT
} lw_approval_answer;

const char *lw_answer_name(lw_approval_answer a);
int lw_answer_parse(const char *name);

/* ---- share channels -------------------------------------------------------------------
 * How a share or copy went out (the record's "channel", wire v2). X(ENUM, wire name): native is
 * the device's share sheet (navigator.share), copy the clipboard; the rest are the prompt's
 * direct channels. The trainer ranks them per persona; a new one is a row here, its docs and
 * tests. */
#define LW_CHANNELS(X)                                                                      \
  X(NATIVE, "native") X(COPY, "copy") X(EMAIL, "email") X(LINKEDIN, "linkedin") X(X, "x")  \
  X(WHATSAPP, "whatsapp")

typedef enum {
#define LW_X_CHANNEL_ENUM(e, name) LW_CHANNEL_##e,
  LW_CHANNELS(LW_X_CHANNEL_ENUM)
#undef LW_X_CHANNEL_ENUM
  LW_CHANNEL_COUNT
} lw_channel;

const char *lw_channel_name(lw_channel c);
int lw_channel_parse(const char *name);

/* ---- referee reports (server to server) -----------------------------------------------
 * POST /v1/referees {"v":1|2,"site","code","referee","event","at"?,"value"?,"install"?,
 * "token"?}, from the host's backend with a site's secret key (README "Referee endpoint").
 * X(ENUM, wire name, since version, value rule): v1 reports conversions only; v2 adds the share
 * token from the landing URL and the later events, each of which joins to the conversion of the
 * same site, code and referee (refused while there is none). value: O optional (a conversion's
 * value), R required (revenue: the referee's revenue to date), - refused. */
#define LW_REFEREE_VERSION 2     /* the newest; the server reads 1..LW_REFEREE_VERSION */
#define LW_REFEREE_ID_LEN 256   /* the host's opaque id of the referee, at most, in bytes */
#define LW_SECRET_KEY_MIN_LEN 16
#define LW_REFEREE_EVENTS(X)                                                                  \
  X(CONVERSION, "conversion", 1, 'O') X(RETAINED_30, "retained_30", 2, '-')                   \
  X(RETAINED_90, "retained_90", 2, '-') X(CHURNED, "churned", 2, '-') X(REVENUE, "revenue", 2, 'R')

typedef enum {
#define LW_X_REFEREE_ENUM(e, name, since, value) LW_REFEREE_##e,
  LW_REFEREE_EVENTS(LW_X_REFEREE_ENUM)
#undef LW_X_REFEREE_ENUM
  LW_REFEREE_EVENT_COUNT
} lw_referee_event;

/* ---- batch envelope -------------------------------------------------------------------
 * {"v":…,"batch_id":"…","write_key":"…","sent_at":…,"events":[records…]}. The outbox holds
 * records only; the edges (the WASM binding, the simulator, tests) wrap them with this.
 * Moves the oldest records of ob into one batch of at most max_bytes in buf (cap bytes,
 * NUL-terminated) and removes them; *len is its length, *n_events its records (0 and "" when
 * the outbox is empty). batch_id and write_key are copied as given (the caller checks them).
 * LW_ERR_FULL when not even one record fits (that record is dropped: it never would). */
lw_status lw_wire_take_batch(lw_outbox *ob, const char *batch_id, const char *write_key,
                             int64_t sent_at_ms, size_t max_bytes, char *buf, size_t cap, size_t *len,
                             size_t *n_events);

#ifdef __cplusplus
}
#endif
#endif
