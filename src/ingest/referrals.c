/* referrals.c: referral attribution answers (see serving.h).
 *
 * The server, not the client, counts, and only what the host's backend reported through the
 * secret-key referee endpoint (referees.c): a browser's conversion records are learning
 * signals, never rewards. A referee counts once however often it is reported. Only the
 * referrer's device may read a code's counts, and it proves it is the referrer with its random
 * install key: a code belongs to the install that first shared it, and any other install gets
 * 403 (an install asking about a code nobody has shared yet gets zero counts: its share may
 * still be on its way). The codes and install keys are random (see the wire contract), so the
 * answer tells nothing to anyone who does not already hold both. Rewards are not decided here:
 * the host's backend reads GET /v1/attributions (read-protected) and pays from it. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/store.h"
#include "loopwise/wire.h"
#include "serving.h"

static int valid_code(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < LW_CODE_MIN_LEN || n > LW_CODE_LEN) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
  return 1;
}

static int valid_install(const char *s) {
  if (!s || strlen(s) != LW_INSTALL_LEN) return 0;
  for (int i = 0; i < LW_INSTALL_LEN; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static unsigned error_json(const char *message, const char *field, char **json) {
  cJSON *o = cJSON_CreateObject();
  if (o && cJSON_AddStringToObject(o, "error", message) && cJSON_AddStringToObject(o, "field", field))
    *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return 400;
}

unsigned lw_referral_answer(lw_store *store, const char *site, const char *code,
                            const char *install, char **json, char *err, size_t errlen) {
  *json = NULL;
  if (!valid_code(code)) return error_json("expected a referral code, 6-16 of [A-Z0-9]", "code", json);
  if (!valid_install(install))
    return error_json("expected the install key, 32 lowercase hex characters", "install", json);
  lw_referral r;
  if (lw_store_referral(store, site, code, install, &r, err, errlen) != LW_OK) return 503;
  if (r.owner == LW_OWNER_OTHER) return 403;
  char buf[128];
  snprintf(buf, sizeof buf, "{\"code\":\"%s\",\"conversions\":%lld,\"landings\":%lld}", code,
           (long long)r.conversions, (long long)r.landings);
  *json = strdup(buf);
  if (!*json) {
    snprintf(err, errlen, "out of memory");
    return 503;
  }
  return 200;
}

unsigned lw_attributions_answer(lw_store *store, const char *site, const char *since,
                                char **json, char *err, size_t errlen) {
  *json = NULL;
  long long since_ms = 0;
  if (since) {
    char *end;
    errno = 0;
    since_ms = strtoll(since, &end, 10);
    if (!*since || *end || errno || since_ms < 0)
      return error_json("expected ms since the epoch, a non-negative integer", "since", json);
  }
  lw_attribution *rows;
  size_t n;
  if (lw_store_attributions(store, site, since_ms, &rows, &n, err, errlen) != LW_OK) return 503;
  cJSON *root = cJSON_CreateObject(), *arr = NULL;
  int ok = root && cJSON_AddStringToObject(root, "site", site) &&
           (arr = cJSON_AddArrayToObject(root, "attributions")) != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o) break;
    cJSON_AddItemToArray(arr, o); /* owned by root from here */
    ok = cJSON_AddStringToObject(o, "code", rows[i].code) &&
         cJSON_AddNumberToObject(o, "conversions", (double)rows[i].conversions) &&
         cJSON_AddNumberToObject(o, "first_at", (double)rows[i].first_at) &&
         cJSON_AddNumberToObject(o, "last_at", (double)rows[i].last_at);
  }
  ok = ok && cJSON_GetArraySize(arr) == (int)n;
  if (ok) *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  free(rows);
  if (!*json) {
    snprintf(err, errlen, "out of memory");
    return 503;
  }
  return 200;
}
