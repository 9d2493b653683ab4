/* metrics.c: see metrics.h. Relaxed atomics: each counter is independent. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reject_names[LW_REJECT_COUNT] = {
    "invalid", "http", "too_large", "bad_key", "forbidden",
    "rate_address", "rate_key", "not_found", "method", "store", "code_owner"};

/* Upper bounds in milliseconds. */
static const double latency_le_ms[LW_LATENCY_BUCKETS] = {0.25, 0.5, 1,  2,   5,   10,
                                                         25,   50,  100, 250, 1000, 5000};

const char *lw_reject_reason_name(lw_reject_reason r) {
  return (r >= 0 && r < LW_REJECT_COUNT) ? reject_names[r] : "other";
}

void lw_metrics_init(lw_metrics *m) {
  memset(m, 0, sizeof *m); /* all-zero is a valid initial state for atomic integers here */
}

#define INC(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

void lw_metrics_request(lw_metrics *m, unsigned status) {
  if (status < 600) INC(m->requests_by_code[status], 1);
}

void lw_metrics_reject(lw_metrics *m, lw_reject_reason r) {
  if (r >= 0 && r < LW_REJECT_COUNT) INC(m->rejects[r], 1);
}

void lw_metrics_latency(lw_metrics *m, uint64_t us) {
  int b = 0;
  while (b < LW_LATENCY_BUCKETS && (double)us > latency_le_ms[b] * 1000.0) b++;
  INC(m->latency_bucket[b], 1);
  INC(m->latency_us_sum, us);
  INC(m->latency_count, 1);
}

typedef struct {
  char *buf;
  size_t len, cap;
  int oom;
} sbuf;

static void add(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(sbuf *s, const char *fmt, ...) {
  if (s->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0) { s->oom = 1; return; }
    if ((size_t)n < s->cap - s->len) { s->len += (size_t)n; return; }
    size_t ncap = s->cap * 2 + (size_t)n;
    char *grown = realloc(s->buf, ncap);
    if (!grown) { s->oom = 1; return; }
    s->buf = grown;
    s->cap = ncap;
  }
}

char *lw_metrics_render(lw_metrics *m, size_t *len) {
  sbuf s = {malloc(8192), 0, 8192, 0};
  if (!s.buf) return NULL;
  s.buf[0] = '\0';
  add(&s, "# HELP loopwise_ingest_requests_total HTTP requests answered, by status code.\n"
          "# TYPE loopwise_ingest_requests_total counter\n");
  for (unsigned c = 100; c < 600; c++)
    if (GET(m->requests_by_code[c]))
      add(&s, "loopwise_ingest_requests_total{code=\"%u\"} %llu\n", c, GET(m->requests_by_code[c]));
  add(&s, "# HELP loopwise_ingest_rejects_total Requests refused, by reason.\n"
          "# TYPE loopwise_ingest_rejects_total counter\n");
  for (int r = 0; r < LW_REJECT_COUNT; r++)
    add(&s, "loopwise_ingest_rejects_total{reason=\"%s\"} %llu\n", reject_names[r],
        GET(m->rejects[r]));
  add(&s, "# HELP loopwise_ingest_batches_total Batches acknowledged, by result.\n"
          "# TYPE loopwise_ingest_batches_total counter\n"
          "loopwise_ingest_batches_total{result=\"stored\"} %llu\n"
          "loopwise_ingest_batches_total{result=\"duplicate\"} %llu\n",
      GET(m->batches_stored), GET(m->batches_duplicate));
  add(&s, "# HELP loopwise_ingest_events_stored_total Event records stored.\n"
          "# TYPE loopwise_ingest_events_stored_total counter\n"
          "loopwise_ingest_events_stored_total %llu\n", GET(m->events_stored));
  add(&s, "# HELP loopwise_ingest_commits_total Durable commits (each one fsync) and the batches they held.\n"
          "# TYPE loopwise_ingest_commits_total counter\n"
          "loopwise_ingest_commits_total %llu\n"
          "# TYPE loopwise_ingest_committed_batches_total counter\n"
          "loopwise_ingest_committed_batches_total %llu\n"
          "# TYPE loopwise_ingest_commit_seconds_total counter\n"
          "loopwise_ingest_commit_seconds_total %.6f\n",
      GET(m->commits), GET(m->committed_batches), (double)GET(m->commit_us_sum) / 1e6);
  add(&s, "# HELP loopwise_ingest_deleted_events_total Events deleted by retention or on request.\n"
          "# TYPE loopwise_ingest_deleted_events_total counter\n"
          "loopwise_ingest_deleted_events_total{cause=\"retention\"} %llu\n"
          "loopwise_ingest_deleted_events_total{cause=\"forget\"} %llu\n",
      GET(m->purged_events), GET(m->forgotten_events));
  add(&s, "# HELP loopwise_ingest_request_duration_seconds POST /v1/outcomes latency.\n"
          "# TYPE loopwise_ingest_request_duration_seconds histogram\n");
  unsigned long long cum = 0;
  for (int b = 0; b < LW_LATENCY_BUCKETS; b++) {
    cum += GET(m->latency_bucket[b]);
    add(&s, "loopwise_ingest_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
        latency_le_ms[b] / 1000.0, cum);
  }
  cum += GET(m->latency_bucket[LW_LATENCY_BUCKETS]);
  add(&s, "loopwise_ingest_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
          "loopwise_ingest_request_duration_seconds_sum %.6f\n"
          "loopwise_ingest_request_duration_seconds_count %llu\n",
      cum, (double)GET(m->latency_us_sum) / 1e6, GET(m->latency_count));
  if (s.oom) {
    free(s.buf);
    return NULL;
  }
  *len = s.len;
  return s.buf;
}
