/* referees.c: the host's side of the reward (see serving.h): referee reports through
 * POST /v1/referees, a code's referrer through POST /v1/referrers, and the review of flagged
 * conversions (GET /v1/reviews, POST /v1/reviews/<id>).
 *
 * Why a secret key: the write key is public (it is in every page that embeds the widget), so
 * anything a browser can send, anyone can forge; one request with it stored 500 conversions for
 * any code. Conversions that count for rewards therefore come only from the host's backend,
 * which knows a customer really converted, authenticated with a per-site secret key that never
 * appears in a page. The host's id of the referee is stored only as HMAC-SHA-256 under a salt
 * of the site's (random, kept in the store), so the store cannot be joined back to the host's
 * users without the file and the ids, yet a retried report and a referee's second reward are
 * still recognised. Whether a conversion counts is the store's decision under the site's
 * integrity rules (lw_store_referee); these functions run on the writer thread (LW_JOB_CALL). */
#include <cJSON.h>
#include <nettle/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/store.h"
#include "serving.h"

/* Constant time in the length of the configured key. */
static int same_key(const char *want, const char *got) {
  size_t n = strlen(want), m = strlen(got);
  unsigned char diff = (unsigned char)(n != m);
  for (size_t i = 0; i < n; i++) diff |= (unsigned char)(want[i] ^ got[i < m ? i : 0]);
  return diff == 0;
}

const lw_ingest_site *lw_secret_key_site(const lw_ingest_config *cfg, const char *key, int *is_write_key) {
  *is_write_key = 0;
  const lw_ingest_site *found = NULL;
  for (size_t i = 0; key && i < cfg->n_sites; i++) {
    for (size_t k = 0; k < cfg->sites[i].n_secret_keys; k++)
      if (same_key(cfg->sites[i].secret_keys[k], key)) found = &cfg->sites[i];
    if (same_key(cfg->sites[i].write_key, key)) *is_write_key = 1;
  }
  return found;
}

/* The salted hash of a host id under the site's salt (created from call->fresh on first use). */
static lw_status hash_id(lw_store *store, const char *site, const uint8_t fresh[LW_SALT_LEN], const char *id,
                         uint8_t out[LW_REFEREE_HASH_LEN], char *err, size_t errlen) {
  uint8_t salt[LW_SALT_LEN];
  lw_status st = lw_store_site_salt(store, site, fresh, salt, err, errlen);
  if (st != LW_OK) return st;
  struct hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, sizeof salt, salt);
  hmac_sha256_update(&ctx, strlen(id), (const uint8_t *)id);
  hmac_sha256_digest(&ctx, LW_REFEREE_HASH_LEN, out);
  return LW_OK;
}

lw_status lw_referee_call(lw_store *store, void *arg, char *err, size_t errlen) {
  lw_referee_call_t *c = arg;
  lw_status st = hash_id(store, c->site->id, c->fresh, c->req.referee, c->hash, err, errlen);
  if (st != LW_OK) return st;
  lw_referee_report *r = &c->report;
  memset(r, 0, sizeof *r);
  r->site = c->site->id;
  r->code = c->req.code;
  r->referee = c->hash;
  r->install = c->req.install[0] ? c->req.install : NULL;
  r->event = c->req.event;
  r->token = c->req.token[0] ? c->req.token : NULL;
  r->received_ms = c->received_ms;
  r->at = c->req.has_at ? c->req.at : c->received_ms;
  r->has_value = c->req.has_value;
  r->value = c->req.value;
  r->rules = &c->site->integrity;
  return lw_store_referee(store, r, err, errlen);
}

lw_status lw_referrer_call(lw_store *store, void *arg, char *err, size_t errlen) {
  lw_referrer_call_t *c = arg;
  lw_status st = hash_id(store, c->site->id, c->fresh, c->req.referrer, c->hash, err, errlen);
  if (st != LW_OK) return st;
  return lw_store_register_referrer(store, c->site->id, c->req.code, c->hash, &c->conflict, err, errlen);
}

lw_status lw_review_call(lw_store *store, void *arg, char *err, size_t errlen) {
  lw_review_call_t *c = arg;
  return lw_store_review(store, c->site->id, c->id, c->approve, c->who, c->now_ms, &c->result, err, errlen);
}

char *lw_referee_answer_json(const lw_referee_report *r) {
  cJSON *o = cJSON_CreateObject();
  char *text = NULL;
  if (o && cJSON_AddNumberToObject(o, "id", (double)r->id) &&
      (r->duplicate ? cJSON_AddTrueToObject(o, "duplicate") != NULL : cJSON_AddTrueToObject(o, "stored") != NULL) &&
      cJSON_AddStringToObject(o, "state", r->state) &&
      (!r->reason[0] || cJSON_AddStringToObject(o, "reason", r->reason)))
    text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

#define LW_REVIEWS_MAX 1000 /* one page: the oldest first; the rest follow once these are decided */

unsigned lw_reviews_answer(lw_store *store, const char *site, char **json, char *err, size_t errlen) {
  *json = NULL;
  lw_review *rows;
  size_t n;
  if (lw_store_reviews(store, site, LW_REVIEWS_MAX, &rows, &n, err, errlen) != LW_OK) return 503;
  cJSON *root = cJSON_CreateObject(), *arr = NULL;
  int ok = root && cJSON_AddStringToObject(root, "site", site) &&
           (arr = cJSON_AddArrayToObject(root, "reviews")) != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    if (!ok) break;
    cJSON_AddItemToArray(arr, o);
    ok = cJSON_AddNumberToObject(o, "id", (double)rows[i].id) && cJSON_AddStringToObject(o, "code", rows[i].code) &&
         cJSON_AddStringToObject(o, "event", rows[i].event) && cJSON_AddStringToObject(o, "reason", rows[i].reason) &&
         cJSON_AddNumberToObject(o, "at", (double)rows[i].at) &&
         cJSON_AddNumberToObject(o, "received_at", (double)rows[i].received_at);
  }
  if (ok) *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  free(rows);
  if (!*json) {
    snprintf(err, errlen, "out of memory");
    return 503;
  }
  return 200;
}
