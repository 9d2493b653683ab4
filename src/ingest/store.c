/* store.c: the backend-neutral half of lw_store (see loopwise/store.h): calls go through the
 * backend's table, so the server never knows which database it writes to. */
#include "loopwise/store.h"

#include <nettle/sha2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lw_stats_clear(lw_stats *stats) {
  if (!stats) return;
  free(stats->variants);
  free(stats->segments);
  free(stats->codes);
  memset(stats, 0, sizeof *stats);
}

lw_status lw_store_write(lw_store *s, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  return s->backend->write(s, items, n, err, errlen);
}
lw_status lw_store_forget(lw_store *s, lw_forget_item *const *items, size_t n, char *err,
                          size_t errlen) {
  return s->backend->forget(s, items, n, err, errlen);
}
lw_status lw_store_purge(lw_store *s, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  return s->backend->purge(s, before_ms, deleted, err, errlen);
}
lw_status lw_store_purge_step(lw_store *s, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                              char *err, size_t errlen) {
  *more = 0;
  if (!s->backend->purge_step) return s->backend->purge(s, before_ms, deleted, err, errlen);
  return s->backend->purge_step(s, before_ms, max_events, deleted, more, err, errlen);
}
lw_status lw_store_stats(lw_store *s, const char *site, lw_stats *out, char *err, size_t errlen) {
  return s->backend->stats(s, site, NULL, out, err, errlen);
}
lw_status lw_store_stats_bounded(lw_store *s, const char *site, const lw_stats_bounds *bounds,
                                 lw_stats *out, char *err, size_t errlen) {
  return s->backend->stats(s, site, bounds, out, err, errlen);
}
lw_status lw_store_stats_walk(lw_store *s, const char *site, const lw_stats_bounds *bounds,
                              lw_stats *out, char *err, size_t errlen) {
  if (!s->backend->stats_walk) {
    memset(out, 0, sizeof *out);
    snprintf(err, errlen, "the %s store cannot walk its stats", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->stats_walk(s, site, bounds, out, err, errlen);
}
lw_status lw_store_ping(lw_store *s, char *err, size_t errlen) { return s->backend->ping(s, err, errlen); }
lw_status lw_store_referral(lw_store *s, const char *site, const char *code, const char *install,
                            lw_referral *out, char *err, size_t errlen) {
  return s->backend->referral(s, site, code, install, out, err, errlen);
}
lw_status lw_store_attributions(lw_store *s, const char *site, int64_t since_ms,
                                lw_attribution **rows, size_t *n, char *err, size_t errlen) {
  return s->backend->attributions(s, site, since_ms, rows, n, err, errlen);
}
lw_status lw_store_site_salt(lw_store *s, const char *site, const uint8_t fresh[LW_SALT_LEN],
                             uint8_t out[LW_SALT_LEN], char *err, size_t errlen) {
  return s->backend->site_salt(s, site, fresh, out, err, errlen);
}
lw_status lw_store_referee(lw_store *s, lw_referee_report *r, char *err, size_t errlen) {
  return s->backend->referee(s, r, err, errlen);
}
lw_status lw_store_register_referrer(lw_store *s, const char *site, const char *code,
                                     const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict,
                                     char *err, size_t errlen) {
  return s->backend->register_referrer(s, site, code, referrer, conflict, err, errlen);
}
lw_status lw_store_review(lw_store *s, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                          int *result, char *err, size_t errlen) {
  return s->backend->review(s, site, id, approve, who, now_ms, result, err, errlen);
}
lw_status lw_store_reviews(lw_store *s, const char *site, size_t max, lw_review **rows, size_t *n,
                           char *err, size_t errlen) {
  return s->backend->reviews(s, site, max, rows, n, err, errlen);
}
void lw_store_free(lw_store *s) {
  if (s) s->backend->close(s);
}

int lw_store_is_pg(const char *where) {
  return where && (strncmp(where, "postgres://", 11) == 0 || strncmp(where, "postgresql://", 13) == 0);
}
lw_status lw_store_open(const char *where, lw_store **out, char *err, size_t errlen) {
  return lw_store_is_pg(where) ? lw_store_open_pg(where, out, err, errlen)
                               : lw_store_open_sqlite(where, out, err, errlen);
}
lw_status lw_store_open_read(const char *where, lw_store **out, char *err, size_t errlen) {
  return lw_store_is_pg(where) ? lw_store_open_pg_read(where, out, err, errlen)
                               : lw_store_open_sqlite_read(where, out, err, errlen);
}

void lw_store_describe(const char *where, char *out, size_t cap) {
  if (!cap) return;
  out[0] = '\0';
  if (!where) return;
  size_t n = 0;
  const char *p = where, *auth_end = NULL, *at = NULL, *colon = NULL;
  if (lw_store_is_pg(where)) {
    const char *a = strstr(where, "://") + 3;
    auth_end = a + strcspn(a, "/?");
    for (const char *q = a; q < auth_end; q++)
      if (*q == '@') at = q;
    for (const char *q = a; at && q < at; q++)
      if (*q == ':') {
        colon = q;
        break;
      }
  }
  while (*p && n + 1 < cap) {
    if (colon && p == colon + 1) { /* user:PASSWORD@ */
      n += (size_t)snprintf(out + n, cap - n, "***");
      p = at;
      continue;
    }
    if (auth_end && p > auth_end && strncmp(p, "password=", 9) == 0 && (p[-1] == '?' || p[-1] == '&')) {
      n += (size_t)snprintf(out + n, cap - n, "password=***");
      p += 9 + strcspn(p + 9, "&");
      continue;
    }
    out[n++] = *p++;
  }
  if (n >= cap) n = cap - 1;
  out[n] = '\0';
}

/* ---------------------------------------------------------------- webhook deliveries */

static lw_status no_deliveries(lw_store *s, char *err, size_t errlen) {
  snprintf(err, errlen, "the %s store keeps no webhook deliveries", s->backend->name);
  return LW_ERR_INVALID;
}

lw_status lw_store_deliveries_enqueue(lw_store *s, const char *site, int64_t now_ms, int64_t *added,
                                      char *err, size_t errlen) {
  if (!s->backend->deliveries_enqueue) return no_deliveries(s, err, errlen);
  return s->backend->deliveries_enqueue(s, site, now_ms, added, err, errlen);
}

lw_status lw_store_delivery_claim(lw_store *s, const char *site, const char *owner, int64_t now_ms,
                                  int64_t lease_ms, lw_delivery *out, int *found, char *err,
                                  size_t errlen) {
  if (!s->backend->delivery_claim) return no_deliveries(s, err, errlen);
  return s->backend->delivery_claim(s, site, owner, now_ms, lease_ms, out, found, err, errlen);
}

lw_status lw_store_delivery_finish(lw_store *s, int64_t id, const char *owner, const char *state,
                                   int64_t next_at, int64_t status, const char *error,
                                   int64_t now_ms, int *kept, char *err, size_t errlen) {
  if (!s->backend->delivery_finish) return no_deliveries(s, err, errlen);
  return s->backend->delivery_finish(s, id, owner, state, next_at, status, error, now_ms, kept, err,
                                     errlen);
}

lw_status lw_store_delivery_resend(lw_store *s, const char *site, int64_t id, const char *who, int64_t now_ms,
                                   int *result, char *err, size_t errlen) {
  if (!s->backend->delivery_resend) return no_deliveries(s, err, errlen);
  return s->backend->delivery_resend(s, site, id, who, now_ms, result, err, errlen);
}

lw_status lw_store_deliveries(lw_store *s, const char *site, size_t max, lw_delivery **rows,
                              size_t *n, char *err, size_t errlen) {
  *rows = NULL;
  *n = 0;
  if (!s->backend->deliveries) return no_deliveries(s, err, errlen);
  return s->backend->deliveries(s, site, max, rows, n, err, errlen);
}

/* ---- approval requests */

void lw_store_approval_key_hash(const char *key, char out[LW_APPROVAL_HASH_LEN + 1]) {
  struct sha256_ctx ctx;
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_init(&ctx);
  sha256_update(&ctx, strlen(key), (const uint8_t *)key);
  sha256_digest(&ctx, sizeof d, d);
  for (size_t i = 0; i < sizeof d; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* An approval request's attrs as the JSON object stored (names and values are of the name
 * charset, checked by the parser: nothing to escape). */
void lw_store_approval_attrs(const lw_event *e, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "{");
  for (int i = 0; i < e->n_attrs && n < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s\"%s\":\"%s\"", i ? "," : "", e->attr_names[i], e->attr_values[i]);
  if (n < cap) snprintf(out + n, cap - n, "}");
}

static lw_status no_approvals(lw_store *s, char *err, size_t errlen) {
  snprintf(err, errlen, "the %s store keeps no approval requests", s->backend->name);
  return LW_ERR_INVALID;
}

lw_status lw_store_approvals(lw_store *s, const char *site, int64_t now_ms, int days, size_t max,
                             lw_approval **rows, size_t *n, char *err, size_t errlen) {
  *rows = NULL;
  *n = 0;
  if (!s->backend->approvals) return no_approvals(s, err, errlen);
  return s->backend->approvals(s, site, now_ms, days, max, rows, n, err, errlen);
}

lw_status lw_store_approval_answer(lw_store *s, const char *site, int64_t id, int approve, const char *who,
                                   int64_t now_ms, int days, int *result, char *err, size_t errlen) {
  if (!s->backend->approval_answer) return no_approvals(s, err, errlen);
  return s->backend->approval_answer(s, site, id, approve, who, now_ms, days, result, err, errlen);
}

lw_status lw_store_approval_check(lw_store *s, const char *site, const char *install, const char *key,
                                  int64_t now_ms, int days, size_t max, lw_approval **rows, size_t *n,
                                  char *err, size_t errlen) {
  *rows = NULL;
  *n = 0;
  if (!s->backend->approval_check) return no_approvals(s, err, errlen);
  char hash[LW_APPROVAL_HASH_LEN + 1];
  lw_store_approval_key_hash(key, hash);
  return s->backend->approval_check(s, site, install, hash, now_ms, days, max, rows, n, err, errlen);
}

/* ---- console actions */

#define LW_ACTION_NAME_(e, name, target) name,
#define LW_ACTION_TARGET_(e, name, target) target,
static const char *const k_action_names[] = {LW_ACTIONS(LW_ACTION_NAME_)};
static const char *const k_action_targets[] = {LW_ACTIONS(LW_ACTION_TARGET_)};
_Static_assert(sizeof k_action_names / sizeof k_action_names[0] == LW_ACTION_COUNT, "one name per action");

const char *lw_action_name(lw_action a) { return a < LW_ACTION_COUNT ? k_action_names[a] : "?"; }
const char *lw_action_target(lw_action a) { return a < LW_ACTION_COUNT ? k_action_targets[a] : "?"; }

lw_status lw_store_console_actions(lw_store *s, const char *site, size_t max, lw_console_action **rows, size_t *n,
                                   char *err, size_t errlen) {
  *rows = NULL;
  *n = 0;
  if (!s->backend->console_actions) {
    snprintf(err, errlen, "the %s store keeps no console actions", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->console_actions(s, site, max, rows, n, err, errlen);
}
