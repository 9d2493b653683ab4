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
 * The batch schema version `v` this build writes; the server accepts 1..LW_WIRE_VERSION. */
#define LW_WIRE_VERSION 1

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

/* ---- record fields --------------------------------------------------------------------
 * X(ENUM, wire name). The order is the column order of LW_KINDS' rules strings below. */
#define LW_FIELDS(X)                                                                       \
  X(KIND, "kind") X(T, "t") X(INSTALL, "install") X(DECISION, "decision")                  \
  X(ACTION, "action") X(P, "p") X(MODE, "mode") X(REASON, "reason") X(SEGMENT, "segment")  \
  X(MODEL, "model") X(FEATURES, "x") X(CODE, "code")

typedef enum {
#define LW_X_FIELD_ENUM(e, name) LW_FIELD_##e,
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
/*                                                             k t i d a p m r s m x c  */
#define LW_KINDS(X)                                                                     \
  X(DECISION, "decision", "decisions", 0, "RRRRRRRROOO-")                               \
  X(IMPRESSION, "impression", "impressions", LW_KIND_F_OUTCOME, "RRRRO---OO--")         \
  X(SHARE, "share", "shares", LW_KIND_F_OUTCOME | LW_KIND_F_SHARED, "RRRRO---OO-O")     \
  X(COPY, "copy", "copies", LW_KIND_F_OUTCOME | LW_KIND_F_SHARED, "RRRRO---OO-O")       \
  X(DISMISS, "dismiss", "dismissals", LW_KIND_F_OUTCOME, "RRRRO---OO--")                \
  X(LANDING, "landing", "landings", LW_KIND_F_REFEREE, "RRROO---OO-O")                  \
  X(CONVERSION, "conversion", "conversions", LW_KIND_F_REFEREE, "RRROO---OO-O")

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

/* ---- referee reports (server to server) -----------------------------------------------
 * POST /v1/referees {"v":1,"site","code","referee","event","at"?,"value"?,"install"?}, from the
 * host's backend with a site's secret key (README "Referee endpoint"). X(ENUM, wire name,
 * accepted in this version): the retained-value issue accepts the later ones with its version. */
#define LW_REFEREE_VERSION 1
#define LW_REFEREE_ID_LEN 256   /* the host's opaque id of the referee, at most, in bytes */
#define LW_SECRET_KEY_MIN_LEN 16
#define LW_REFEREE_EVENTS(X)                                                                  \
  X(CONVERSION, "conversion", 1) X(RETAINED_30, "retained_30", 0)                             \
  X(RETAINED_90, "retained_90", 0) X(CHURNED, "churned", 0) X(REVENUE, "revenue", 0)

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
