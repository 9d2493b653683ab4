/* test_limits.c: the writer shares one commit among every forget of a group (a flood of
 * POST /v1/forget cannot cost one fsync each), and trusted-proxy networks match as CIDR. The
 * store is held still by a backend that wraps SQLite and blocks its first forget until the
 * test has queued the rest, so the grouping is checked without any timing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"
#include "writer.h"

typedef struct {
  lw_store base;
  lw_store *inner;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int entered, released, calls;
  size_t items_seen;
} gate_store;

static lw_status g_write(lw_store *b, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  return lw_store_write(((gate_store *)b)->inner, items, n, err, errlen);
}
static lw_status g_forget(lw_store *b, lw_forget_item *const *items, size_t n, char *err, size_t errlen) {
  gate_store *g = (gate_store *)b;
  pthread_mutex_lock(&g->lock);
  g->calls++;
  g->items_seen += n;
  g->entered = 1;
  pthread_cond_broadcast(&g->cond);
  while (!g->released) pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
  return lw_store_forget(g->inner, items, n, err, errlen);
}
static lw_status g_purge(lw_store *b, int64_t before, int64_t *d, char *err, size_t errlen) {
  return lw_store_purge(((gate_store *)b)->inner, before, d, err, errlen);
}
static lw_status g_stats(lw_store *b, const char *site, const lw_stats_bounds *bounds, lw_stats *out, char *err,
                         size_t errlen) {
  return lw_store_stats_bounded(((gate_store *)b)->inner, site, bounds, out, err, errlen);
}
static lw_status g_ping(lw_store *b, char *err, size_t errlen) { return lw_store_ping(((gate_store *)b)->inner, err, errlen); }
static void g_close(lw_store *b) {
  gate_store *g = (gate_store *)b;
  lw_store_free(g->inner);
  free(g);
}
static const lw_store_backend gate_backend = {"gate", g_write, g_forget, g_purge, g_stats, g_ping,
                                              NULL,   NULL,    g_close,  NULL,    NULL};

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int done;
} counter;
static counter answered = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_done(lw_job *job) {
  (void)job;
  pthread_mutex_lock(&answered.lock);
  answered.done++;
  pthread_cond_broadcast(&answered.cond);
  pthread_mutex_unlock(&answered.lock);
}

static void a_flood_of_forgets_shares_one_commit_per_group(void) {
  char path[] = "/tmp/lw-test-limits-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  char err[LW_ERRMSG_MAX];
  lw_store *inner = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &inner, err, sizeof err), LW_OK);
  if (!inner) return;
  gate_store *g = calloc(1, sizeof *g);
  g->base.backend = &gate_backend;
  g->inner = inner;
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->cond, NULL);
  lw_metrics metrics;
  lw_metrics_init(&metrics);
  lw_logger log = {LW_LOG_OFF, 2};
  lw_writer_config wc = {1024, 0, 3600000};
  lw_writer *w = NULL;
  CHECK_INT(lw_writer_create(&g->base, &wc, &metrics, &log, &w, err, sizeof err), LW_OK);
  if (!w) return;
  enum { N = 31 };
  static lw_job jobs[N];
  static char installs[N][33];
  for (int i = 0; i < N; i++) {
    snprintf(installs[i], sizeof installs[i], "%032x", i + 1);
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].kind = LW_JOB_FORGET;
    jobs[i].forget.site = "default";
    jobs[i].forget.install = installs[i];
    jobs[i].on_done = on_done;
  }
  /* The first forget enters the store and is held there ... */
  CHECK_INT(lw_writer_enqueue(w, &jobs[0]), LW_OK);
  pthread_mutex_lock(&g->lock);
  while (!g->entered) pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
  /* ... while 30 more arrive; then the store is let go. */
  for (int i = 1; i < N; i++) CHECK_INT(lw_writer_enqueue(w, &jobs[i]), LW_OK);
  pthread_mutex_lock(&g->lock);
  g->released = 1;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->lock);
  pthread_mutex_lock(&answered.lock);
  while (answered.done < N) pthread_cond_wait(&answered.cond, &answered.lock);
  pthread_mutex_unlock(&answered.lock);
  CHECK_INT(g->calls, 2); /* the held one alone, then the other 30 in one transaction */
  CHECK_INT(g->items_seen, N);
  for (int i = 0; i < N; i++) CHECK_INT(jobs[i].status, LW_OK);
  CHECK_INT(atomic_load(&metrics.forget_commits), 2);
  CHECK_INT(atomic_load(&metrics.forgets), N);
  lw_writer_free(w);
  lw_store_free(&g->base);
  tu_remove_db(path);
}

static void trusted_proxy_networks_match_as_cidr(void) {
  lw_ingest_config cfg;
  char err[LW_ERRMSG_MAX];
  lw_ingest_config_init(&cfg);
  CHECK_INT(lw_ingest_config_set(&cfg, "db", "/tmp/unused.db", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&cfg, "trusted-proxies", "10.1.2.3, 192.0.2.0/24,2001:db8::/33", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_finish(&cfg, err, sizeof err), LW_OK);
  CHECK_INT(cfg.n_proxies, 3);
  unsigned char a[16] = {10, 1, 2, 3}, b[16] = {10, 1, 2, 4}, c[16] = {192, 0, 2, 200}, d[16] = {192, 0, 3, 1};
  CHECK(lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, a, 4));
  CHECK(!lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, b, 4));
  CHECK(lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, c, 4));
  CHECK(!lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, d, 4));
  unsigned char v6in[16] = {0x20, 0x01, 0x0d, 0xb8, 0x7f, 0xff, 1}, v6out[16] = {0x20, 0x01, 0x0d, 0xb8, 0x80};
  CHECK(lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, v6in, 16));
  CHECK(!lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, v6out, 16));
  CHECK(!lw_ingest_net_contains(cfg.proxies, cfg.n_proxies, a, 16)); /* families never mix */
  lw_ingest_config_clear(&cfg);
}

int main(void) {
  a_flood_of_forgets_shares_one_commit_per_group();
  trusted_proxy_networks_match_as_cidr();
  if (check_failures) fprintf(stderr, "test_limits: %d failures\n", check_failures);
  return check_failures != 0;
}
