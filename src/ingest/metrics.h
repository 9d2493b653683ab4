/* metrics.h: counters for GET /metrics (Prometheus text format).
 *
 * These are per-process observations for monitoring, summed by Prometheus across replicas.
 * They are never used as truth: /v1/stats reads the store. */
#ifndef LW_INGEST_METRICS_H
#define LW_INGEST_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  LW_REJECT_INVALID = 0,   /* 400: the body broke the wire contract */
  LW_REJECT_HTTP,          /* 400: a request the HTTP rules refuse (Content-Length + Transfer-Encoding) */
  LW_REJECT_TOO_LARGE,     /* 413 */
  LW_REJECT_BAD_KEY,       /* 401: unknown write key or read token */
  LW_REJECT_ORIGIN,        /* 403: Origin not allowed, or a non-loopback reader without a token */
  LW_REJECT_RATE_ADDRESS,  /* 429 */
  LW_REJECT_RATE_KEY,      /* 429 */
  LW_REJECT_NOT_FOUND,     /* 404 */
  LW_REJECT_METHOD,        /* 405 */
  LW_REJECT_STORE,         /* 503: the store failed */
  LW_REJECT_CODE_OWNER,    /* a share or copy record with another install's code (not stored;
                              the rest of its batch is): counted per record, not per request */
  LW_REJECT_COUNT
} lw_reject_reason;

const char *lw_reject_reason_name(lw_reject_reason r);

#define LW_LATENCY_BUCKETS 12

typedef struct {
  atomic_uint_fast64_t requests_by_code[600];  /* index: HTTP status */
  atomic_uint_fast64_t rejects[LW_REJECT_COUNT];
  atomic_uint_fast64_t batches_stored, batches_duplicate, events_stored;
  atomic_uint_fast64_t commits, committed_batches, commit_us_sum;
  atomic_uint_fast64_t purged_events, forgotten_events;
  /* POST /v1/outcomes latency from first byte of headers handled to response queued. */
  atomic_uint_fast64_t latency_bucket[LW_LATENCY_BUCKETS + 1]; /* last: +Inf */
  atomic_uint_fast64_t latency_us_sum, latency_count;
} lw_metrics;

void lw_metrics_init(lw_metrics *m);
void lw_metrics_request(lw_metrics *m, unsigned status);
void lw_metrics_reject(lw_metrics *m, lw_reject_reason r);
void lw_metrics_latency(lw_metrics *m, uint64_t us);

/* Render as Prometheus text exposition format into a new NUL-terminated string the caller
 * frees with free(); NULL when out of memory. */
char *lw_metrics_render(lw_metrics *m, size_t *len);

#endif
