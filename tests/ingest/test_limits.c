/* test_limits.c: the writer shares one commit among every forget of a group (a flood of
 * POST /v1/forget cannot cost one fsync each), a read the store is slow to answer never holds
 * up batches or health checks, and trusted-proxy networks match as CIDR. The store is held
 * still by a backend that wraps SQLite and blocks its first forget (or stats read) until the
 * test lets it go, so each is checked without any timing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
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
  int gate_stats; /* block stats reads instead of forgets */
} gate_store;

/* Wait at the gate: note the entry, then block until the test releases it. */
static void gate_wait(gate_store *g) {
  pthread_mutex_lock(&g->lock);
  g->calls++;
  g->entered = 1;
  pthread_cond_broadcast(&g->cond);
  while (!g->released) pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
}

static lw_status g_write(lw_store *b, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  return lw_store_write(((gate_store *)b)->inner, items, n, err, errlen);
}
static lw_status g_forget(lw_store *b, lw_forget_item *const *items, size_t n, char *err, size_t errlen) {
  gate_store *g = (gate_store *)b;
  pthread_mutex_lock(&g->lock);
  g->items_seen += n;
  pthread_mutex_unlock(&g->lock);
  if (!g->gate_stats) gate_wait(g);
  return lw_store_forget(g->inner, items, n, err, errlen);
}
static lw_status g_purge(lw_store *b, int64_t before, int64_t *d, char *err, size_t errlen) {
  return lw_store_purge(((gate_store *)b)->inner, before, d, err, errlen);
}
static lw_status g_stats(lw_store *b, const char *site, const lw_stats_bounds *bounds, lw_stats *out, char *err,
                         size_t errlen) {
  gate_store *g = (gate_store *)b;
  if (g->gate_stats) gate_wait(g);
  return lw_store_stats_bounded(g->inner, site, bounds, out, err, errlen);
}
static lw_status g_ping(lw_store *b, char *err, size_t errlen) { return lw_store_ping(((gate_store *)b)->inner, err, errlen); }
static void g_close(lw_store *b) {
  gate_store *g = (gate_store *)b;
  lw_store_free(g->inner);
  free(g);
}
/* Only what the tests here reach; the trust calls (site_salt, referee, ...) stay NULL. */
static const lw_store_backend gate_backend = {.name = "gate", .write = g_write, .forget = g_forget,
                                              .purge = g_purge, .stats = g_stats, .ping = g_ping,
                                              .close = g_close};

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

/* One request on a fresh connection, read to the end; the status (0: no answer). */
static int http_status(int port, const char *method, const char *path, const char *body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {60, 0}; /* a server that never answers fails the test, not hangs it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return 0;
  }
  char req[8192];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                   method, path, body ? strlen(body) : 0, body ? body : "");
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return 0;
  }
  char buf[4096];
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  int status = 0;
  if (got > 0) {
    buf[got] = '\0';
    sscanf(buf, "HTTP/1.1 %d", &status);
  }
  return status;
}

typedef struct {
  int port, status;
} stats_call;

static void *call_stats(void *arg) {
  stats_call *c = arg;
  c->status = http_status(c->port, "GET", "/v1/stats", NULL);
  return NULL;
}

/* With a single HTTP thread, a stats read the store does not answer must leave that thread
 * free: a batch is stored and acknowledged and /healthz answers while the read waits; the read
 * is answered once the store is. */
static void a_slow_read_never_holds_up_batches_or_health_checks(void) {
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
  g->gate_stats = 1;
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->cond, NULL);
  lw_ingest_config cfg;
  lw_ingest_config_init(&cfg);
  CHECK_INT(lw_ingest_config_set(&cfg, "db", path, err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&cfg, "port", "0", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&cfg, "threads", "1", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&cfg, "log-level", "off", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_finish(&cfg, err, sizeof err), LW_OK);
  lw_ingest_server *server = NULL;
  CHECK_INT(lw_ingest_server_start_with_store(&cfg, &g->base, &server, err, sizeof err), LW_OK);
  if (!server) return;
  int port = lw_ingest_server_port(server);
  stats_call call = {port, -1};
  pthread_t t;
  pthread_create(&t, NULL, call_stats, &call);
  pthread_mutex_lock(&g->lock);
  while (!g->entered) pthread_cond_wait(&g->cond, &g->lock); /* the read is in the store */
  pthread_mutex_unlock(&g->lock);
  char *batch = tu_read_case("ingest/valid-batch.json");
  CHECK(batch != NULL);
  CHECK_INT(http_status(port, "POST", "/v1/outcomes", batch), 200);
  CHECK_INT(http_status(port, "GET", "/healthz", NULL), 200);
  pthread_mutex_lock(&g->lock);
  g->released = 1;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->lock);
  pthread_join(t, NULL);
  CHECK_INT(call.status, 200);
  free(batch);
  lw_ingest_server_stop(server);
  lw_ingest_config_clear(&cfg);
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
  a_slow_read_never_holds_up_batches_or_health_checks();
  trusted_proxy_networks_match_as_cidr();
  if (check_failures) fprintf(stderr, "test_limits: %d failures\n", check_failures);
  return check_failures != 0;
}
