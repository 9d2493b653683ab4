/* serving.h: what the ingest server serves back to the runtime and the host's backend, besides
 * storing outcomes: the site's current model (GET /v1/model), a referrer's own counts
 * (GET /v1/referrals/<code>) and the host's reward list (GET /v1/attributions). server.c does
 * the HTTP part (routes, access rules, CORS); these functions do the rest and know no HTTP
 * library. Internal to loopwise-ingest. */
#ifndef LW_INGEST_SERVING_H
#define LW_INGEST_SERVING_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/batch.h"
#include "loopwise/common.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"

typedef struct lw_store lw_store; /* loopwise/store.h */

#define LW_MODEL_FILE_MAX (16u << 20) /* far above any valid model (2^16 weights + metadata) */
#define LW_ETAG_MAX 48

/* Read <dir>/<site>/current.lwm whole, fresh on every call: the trainer replaces it by atomic
 * rename, so an open file is always one complete version. LW_ERR_NOT_FOUND when dir is NULL or
 * the site has no model. On LW_OK *buf is the caller's to free(). The bytes are not checked:
 * the runtime checks them and keeps its last good model on a bad one. */
lw_status lw_model_file_read(const char *dir, const char *site, uint8_t **buf, size_t *len,
                             char *err, size_t errlen);

/* The model's entity tag, quotes included: "m<id>-<crc32 hex>-<length hex>", byte for byte what
 * lw_model_etag (loopwise/model.h) gives, so the trainer's log and the server agree. */
void lw_model_file_etag(const uint8_t *buf, size_t len, char out[LW_ETAG_MAX]);

/* 1 when an If-None-Match header value (a list of tags, weak or strong, or "*") matches etag. */
int lw_etag_matches(const char *if_none_match, const char *etag);

/* POST /v1/referrals (and the deprecated GET /v1/referrals/<code>?install=...): the HTTP
 * status and, for 200, *json (the caller free()s it): {"code","conversions","landings"}. 400
 * for a malformed code or install, 403 when another install owns the code, 200 with zero
 * counts when no install has shared it yet (a first load is not an error), 503 when the store
 * fails (err). */
unsigned lw_referral_answer(lw_store *store, const char *site, const char *code,
                            const char *install, char **json, char *err, size_t errlen);

/* GET /v1/attributions?since=ms: status and *json {"site","attributions":[...]} as above;
 * 400 for a malformed since. */
unsigned lw_attributions_answer(lw_store *store, const char *site, const char *since,
                                char **json, char *err, size_t errlen);

/* ---- referees.c: the host's reports (POST /v1/referees, /v1/referrers, /v1/reviews) ---- */

/* The site whose secret key key is (NULL: none); *is_write_key says whether key is some site's
 * public write key (so the refusal can say to use the secret one). */
const lw_ingest_site *lw_secret_key_site(const lw_ingest_config *cfg, const char *key, int *is_write_key);

/* What a request hands the writer thread (LW_JOB_CALL): arg of the matching call. */
typedef struct {
  const lw_ingest_site *site;
  lw_referee_request req;
  uint8_t fresh[LW_SALT_LEN]; /* random: the site's salt if it has none yet */
  int64_t received_ms;
  uint8_t hash[LW_REFEREE_HASH_LEN];
  lw_referee_report report;   /* out */
} lw_referee_call_t;

typedef struct {
  const lw_ingest_site *site;
  lw_referrer_request req;
  uint8_t fresh[LW_SALT_LEN];
  uint8_t hash[LW_REFEREE_HASH_LEN];
  int conflict;               /* out */
} lw_referrer_call_t;

typedef struct {
  const lw_ingest_site *site;
  int64_t id;
  int approve;
  int64_t now_ms;
  char who[LW_ACTOR_LEN + 1]; /* the console user, or LW_ACTOR_REVIEW_API */
  int result;                 /* out: lw_store_review's */
} lw_review_call_t;

lw_status lw_referee_call(lw_store *store, void *arg, char *err, size_t errlen);
lw_status lw_referrer_call(lw_store *store, void *arg, char *err, size_t errlen);
lw_status lw_review_call(lw_store *store, void *arg, char *err, size_t errlen);

/* {"id","stored":true | "duplicate":true,"state","reason"?}; NULL when out of memory. */
char *lw_referee_answer_json(const lw_referee_report *r);

/* GET /v1/reviews: {"site","reviews":[{"id","code","event","reason","at","received_at"}]}. */
unsigned lw_reviews_answer(lw_store *store, const char *site, char **json, char *err, size_t errlen);

#endif
