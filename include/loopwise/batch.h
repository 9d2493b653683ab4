/* loopwise/batch.h: parse and validate an outcome batch (wire contract v1 and v2, README "Ingest API").
 *
 * The validator is the only code that reads request bodies. It is strict on purpose: any field
 * that is missing, of the wrong type, out of range, unknown, duplicated or not valid UTF-8 is
 * refused, and the error names the JSON path of the first offending field ("events[3].p").
 * A batch that passes is copied into fixed-size fields, so the store never sees JSON. Batches are
 * read in one pass without building a JSON tree (batch.c, "the batch reader"); the smaller bodies
 * go through cJSON behind loopwise/json.h's strict check. */
#ifndef LOOPWISE_BATCH_H
#define LOOPWISE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/common.h"
#include "loopwise/model.h"
#include "loopwise/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kinds, fields and limits are loopwise/wire.h's. */
#define LW_FIELD_PATH_LEN 63 /* room for "events[499].x[255][1]" and unknown key names */

/* One validated event. Optional strings absent from the wire are "" (and has_p is 0). */
typedef struct {
  lw_kind kind;
  int64_t t;
  char install[LW_INSTALL_LEN + 1];
  char decision[LW_DECISION_ID_LEN + 1];
  char action[LW_NAME_LEN + 1];
  int has_p;
  double p;
  char mode[8];
  char reason[LW_REASON_CHARS * 4 + 1];
  char segment[LW_NAME_LEN + 1];
  char model[LW_NAME_LEN + 1];
  char code[LW_CODE_LEN + 1];
  char token[LW_TOKEN_LEN + 1];   /* v2: the share link's token ("" when absent) */
  char channel[LW_NAME_LEN + 1];  /* v2: a share's or copy's channel (LW_CHANNELS), else "" */
  /* "x": the hashed features, each value in the fixed point the model reads (lw_fx: value ×
   * 256 rounded, saturating at the int32 range), which is exactly what the trainer used when it
   * read the JSON back. The wire allows any finite value; it is converted once, here. */
  /* v3 approval records: an approval-request's attrs (n_attrs name/value pairs, in the order
   * sent) and the install's approval key; an approval-answer's answer ("" when absent). */
  int n_attrs;
  char attr_names[LW_APPROVAL_ATTRS][LW_NAME_LEN + 1];
  char attr_values[LW_APPROVAL_ATTRS][LW_NAME_LEN + 1];
  char key[LW_APPROVAL_KEY_LEN + 1];
  char answer[12];
  int skewed;     /* t is beyond the clock-skew allowance (max_future_ms): kept as sent, and the
                     store writes the server's receive time beside it */
  int has_x;      /* the record carried "x" (possibly empty) */
  int n_x;
  lw_feature *x;  /* n_x pairs, or NULL; owned by the batch */
} lw_event;

typedef struct {
  int v;
  char batch_id[LW_BATCH_ID_LEN + 1];
  char write_key[LW_WRITE_KEY_LEN + 1];
  int64_t sent_at;
  size_t n_events;
  lw_event *events; /* n_events records, owned by the batch */
} lw_batch;

typedef struct {
  size_t max_events;        /* wire contract: 500 */
  int64_t max_future_ms;    /* the clock-skew allowance: records dated later are marked skewed
                               (never refused for that alone) */
} lw_batch_limits;

/* Where and why a body was refused. field is a JSON path ("" for the body as a whole). */
typedef struct {
  char field[LW_FIELD_PATH_LEN + 1];
  char message[LW_ERRMSG_MAX];
} lw_batch_error;

/* The contract's limits: 500 events, times at most one day ahead. */
lw_batch_limits lw_batch_default_limits(void);

/* Parse and validate body[0..len) (need not be NUL-terminated) against the wire contract,
 * with now_ms as the server clock. On LW_OK, *out is a new batch the caller frees with
 * lw_batch_free (one allocation for up to 8 records, plus one per 512 "x" pairs and one for a
 * larger batch's records). On LW_ERR_INVALID, *out is NULL and err says where and why; a body
 * that is not JSON is refused as such before anything its records hold. LW_ERR_NOMEM when an
 * allocation failed. Thread-safe: no shared state but a byte table built once. */
lw_status lw_batch_parse(const char *body, size_t len, const lw_batch_limits *limits,
                         int64_t now_ms, lw_batch **out, lw_batch_error *err);

/* Free a batch from lw_batch_parse. NULL is fine. */
void lw_batch_free(lw_batch *batch);

/* A request to delete everything stored for one install: {"v":1,"write_key":"...","install":"..."},
 * or (v 2, with "code") every event carrying one referral code, asked by the install that
 * shared it. Same rules and error reporting as lw_batch_parse; fills *out, allocates nothing. */
typedef struct {
  char write_key[LW_WRITE_KEY_LEN + 1];
  char install[LW_INSTALL_LEN + 1];
  char code[LW_CODE_LEN + 1]; /* "" : forget the install */
} lw_forget_request;

lw_status lw_forget_parse(const char *body, size_t len, lw_forget_request *out,
                          lw_batch_error *err);

/* POST /v1/referrals: {"v":1,"write_key":"...","code":"...","install":"<32 hex>"}, the install
 * key in the body instead of a URL. Same rules as lw_forget_parse. */
typedef struct {
  char write_key[LW_WRITE_KEY_LEN + 1];
  char code[LW_CODE_LEN + 1];
  char install[LW_INSTALL_LEN + 1];
} lw_referral_request;

lw_status lw_referral_request_parse(const char *body, size_t len, lw_referral_request *out,
                                    lw_batch_error *err);

/* POST /v1/referees (loopwise/wire.h "referee reports"): one report from the host's backend.
 * An event this version does not accept is refused naming "event". */
typedef struct {
  char site[LW_NAME_LEN + 1];
  char code[LW_CODE_LEN + 1];
  char referee[LW_REFEREE_ID_LEN + 1];
  char event[LW_NAME_LEN + 1];
  int has_at;
  int64_t at;
  int has_value;
  double value;
  char install[LW_INSTALL_LEN + 1]; /* "" when not given */
  int v;                            /* the report's version */
  char token[LW_TOKEN_LEN + 1];     /* v2: the share token from the landing URL, "" when not given */
} lw_referee_request;

lw_status lw_referee_parse(const char *body, size_t len, lw_referee_request *out,
                           lw_batch_error *err);

/* POST /v1/referrers: {"v":1,"site","code","referrer"}: the host's id of a code's referrer. */
typedef struct {
  char site[LW_NAME_LEN + 1];
  char code[LW_CODE_LEN + 1];
  char referrer[LW_REFEREE_ID_LEN + 1];
} lw_referrer_request;

lw_status lw_referrer_parse(const char *body, size_t len, lw_referrer_request *out,
                            lw_batch_error *err);

/* POST /v1/approvals (README "Approval requests"): {"v":1,"write_key","install","key"}: a device
 * asking for the answers to its approval requests, its approval key in the body (never in a
 * URL). Same rules as lw_forget_parse. */
typedef struct {
  char write_key[LW_WRITE_KEY_LEN + 1];
  char install[LW_INSTALL_LEN + 1];
  char key[LW_APPROVAL_KEY_LEN + 1];
} lw_approval_check;

lw_status lw_approval_check_parse(const char *body, size_t len, lw_approval_check *out,
                                  lw_batch_error *err);

/* POST /console/api/approvals/<id>: {"decision":"approve"|"decline"}; *approve is 1 or 0. */
lw_status lw_approval_decision_parse(const char *body, size_t len, int *approve, lw_batch_error *err);

/* POST /v1/reviews/<id>: {"decision":"approve"|"reject"}; *approve is 1 or 0. */
lw_status lw_review_parse(const char *body, size_t len, int *approve, lw_batch_error *err);


#ifdef __cplusplus
}
#endif
#endif
