/* store_fault.c: a store backend that fails on demand, for tests (see loopwise/store.h).
 *
 * It wraps another backend and passes every call through, except the calls a test has armed a
 * fault for: the nth next call of one operation fails, either before it reaches the real store
 * (a BEGIN that fails: nothing is done) or after the real store has done it (a COMMIT whose
 * answer was lost: the data may be durable, the caller hears of a failure). The same
 * lw_store_backend table as any other backend, so the server above cannot tell. SQLite tests
 * its own code this way (do_faultsim_test); this is the seam for ours. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/store.h"

typedef struct {
  unsigned nth;       /* 0: not armed; 1: the next call fails */
  lw_fault_when when;
  unsigned injected;  /* faults injected so far */
} fault_slot;

typedef struct {
  lw_store base;
  lw_store *inner;
  pthread_mutex_t lock; /* the writer thread calls while a test arms */
  fault_slot slots[LW_FAULT_OP_COUNT];
} fault_store;

static const char *const op_names[LW_FAULT_OP_COUNT] = {
    "write", "forget", "purge", "stats", "ping", "referral", "attributions", "decisions", "count_decisions", "referee"};

/* Whether this call of op fails, and when. Counts the call. */
static int take(fault_store *f, lw_fault_op op, lw_fault_when *when) {
  pthread_mutex_lock(&f->lock);
  fault_slot *slot = &f->slots[op];
  int fail = slot->nth && --slot->nth == 0;
  if (fail) {
    *when = slot->when;
    slot->injected++;
  }
  pthread_mutex_unlock(&f->lock);
  return fail;
}

static lw_status injected(lw_fault_op op, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: injected fault", op_names[op]);
  return LW_ERR_IO;
}

/* Run one call through the fault rule: BEFORE skips inner, AFTER runs it and fails anyway. */
#define PASS(op, call)                                                                     \
  do {                                                                                     \
    fault_store *f = (fault_store *)base;                                                  \
    lw_fault_when when;                                                                    \
    if (!take(f, op, &when)) return call;                                                  \
    if (when == LW_FAULT_AFTER) (void)(call);                                              \
    return injected(op, err, errlen);                                                      \
  } while (0)

static lw_status fs_write(lw_store *base, lw_store_item *const *items, size_t n, char *err,
                          size_t errlen) {
  PASS(LW_FAULT_OP_WRITE, lw_store_write(f->inner, items, n, err, errlen));
}
static lw_status fs_forget(lw_store *base, lw_forget_item *const *items, size_t n, char *err,
                           size_t errlen) {
  PASS(LW_FAULT_OP_FORGET, lw_store_forget(f->inner, items, n, err, errlen));
}
static lw_status fs_purge(lw_store *base, int64_t before_ms, int64_t *deleted, char *err,
                          size_t errlen) {
  PASS(LW_FAULT_OP_PURGE, lw_store_purge(f->inner, before_ms, deleted, err, errlen));
}
static lw_status fs_stats(lw_store *base, const char *site, const lw_stats_bounds *bounds,
                          lw_stats *out, char *err, size_t errlen) {
  /* AFTER would leave rows the caller never clears: a failed read hands back nothing. */
  fault_store *f = (fault_store *)base;
  lw_fault_when when;
  if (!take(f, LW_FAULT_OP_STATS, &when))
    return lw_store_stats_bounded(f->inner, site, bounds, out, err, errlen);
  memset(out, 0, sizeof *out);
  return injected(LW_FAULT_OP_STATS, err, errlen);
}
static lw_status fs_ping(lw_store *base, char *err, size_t errlen) {
  PASS(LW_FAULT_OP_PING, lw_store_ping(f->inner, err, errlen));
}
static lw_status fs_referral(lw_store *base, const char *site, const char *code,
                             const char *install, lw_referral *out, char *err, size_t errlen) {
  PASS(LW_FAULT_OP_REFERRAL, lw_store_referral(f->inner, site, code, install, out, err, errlen));
}
static lw_status fs_attributions(lw_store *base, const char *site, int64_t since_ms,
                                 lw_attribution **rows, size_t *n, char *err, size_t errlen) {
  fault_store *f = (fault_store *)base;
  lw_fault_when when;
  if (!take(f, LW_FAULT_OP_ATTRIBUTIONS, &when))
    return lw_store_attributions(f->inner, site, since_ms, rows, n, err, errlen);
  *rows = NULL;
  *n = 0;
  return injected(LW_FAULT_OP_ATTRIBUTIONS, err, errlen);
}
static lw_status fs_decisions(lw_store *base, const lw_store_range *r, int referrers, int attribution_days,
                              lw_store_cursor **out,
                              char *err, size_t errlen) {
  fault_store *f = (fault_store *)base;
  lw_fault_when when;
  if (!take(f, LW_FAULT_OP_DECISIONS, &when))
    return f->inner->backend->decisions(f->inner, r, referrers, attribution_days, out, err, errlen);
  *out = NULL;
  return injected(LW_FAULT_OP_DECISIONS, err, errlen);
}
static lw_status fs_count_decisions(lw_store *base, const lw_store_range *r, uint64_t *n, char *err,
                                    size_t errlen) {
  PASS(LW_FAULT_OP_COUNT_DECISIONS, lw_store_count_decisions(f->inner, r, n, err, errlen));
}
/* The referee report has a fault slot; the other referee calls pass straight through. */
static lw_status fs_site_salt(lw_store *base, const char *site, const uint8_t fresh[LW_SALT_LEN],
                              uint8_t out[LW_SALT_LEN], char *err, size_t errlen) {
  return lw_store_site_salt(((fault_store *)base)->inner, site, fresh, out, err, errlen);
}
static lw_status fs_referee(lw_store *base, lw_referee_report *r, char *err, size_t errlen) {
  PASS(LW_FAULT_OP_REFEREE, lw_store_referee(f->inner, r, err, errlen));
}
static lw_status fs_register_referrer(lw_store *base, const char *site, const char *code,
                                      const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict,
                                      char *err, size_t errlen) {
  return lw_store_register_referrer(((fault_store *)base)->inner, site, code, referrer, conflict, err, errlen);
}
static lw_status fs_review(lw_store *base, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  return lw_store_review(((fault_store *)base)->inner, site, id, approve, who, now_ms, result, err, errlen);
}
static lw_status fs_reviews(lw_store *base, const char *site, size_t max, lw_review **rows, size_t *n,
                            char *err, size_t errlen) {
  return lw_store_reviews(((fault_store *)base)->inner, site, max, rows, n, err, errlen);
}

static void fs_close(lw_store *base) {
  fault_store *f = (fault_store *)base;
  lw_store_free(f->inner);
  pthread_mutex_destroy(&f->lock);
  free(f);
}

static const lw_store_backend fault_backend = {
    "fault",  fs_write,    fs_forget,       fs_purge, fs_stats,     fs_ping,
    fs_referral, fs_attributions, fs_close, fs_decisions, fs_count_decisions,
    fs_site_salt, fs_referee, fs_register_referrer, fs_review, fs_reviews,
    NULL, NULL, NULL, NULL, NULL, /* no webhook deliveries through the fault store */
    NULL,                         /* nor a walk of the stats */
    NULL, NULL,                   /* nor the console's rollups (the console walks) */
    NULL, NULL, NULL,             /* nor approval requests */
    NULL,                         /* nor the funnel's rollups */
    NULL, NULL, NULL,             /* nor its channels and fairness segments */
    NULL,                         /* nor console actions */
    NULL};                        /* its purge is one call (the inner store's whole pass) */

lw_status lw_store_open_fault(lw_store *inner, lw_store **out, char *err, size_t errlen) {
  *out = NULL;
  fault_store *f = calloc(1, sizeof *f);
  if (!f) {
    lw_store_free(inner);
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  f->base.backend = &fault_backend;
  f->inner = inner;
  pthread_mutex_init(&f->lock, NULL);
  *out = &f->base;
  return LW_OK;
}

void lw_store_fault_arm(lw_store *s, lw_fault_op op, unsigned nth, lw_fault_when when) {
  fault_store *f = (fault_store *)s;
  pthread_mutex_lock(&f->lock);
  f->slots[op].nth = nth;
  f->slots[op].when = when;
  pthread_mutex_unlock(&f->lock);
}

unsigned lw_store_fault_injected(lw_store *s, lw_fault_op op) {
  fault_store *f = (fault_store *)s;
  pthread_mutex_lock(&f->lock);
  unsigned n = f->slots[op].injected;
  pthread_mutex_unlock(&f->lock);
  return n;
}

lw_store *lw_store_fault_inner(lw_store *s) { return ((fault_store *)s)->inner; }
