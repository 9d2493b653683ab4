/* sim_ingest.c: the simulator's way into the real ingest server. It starts loopwise-ingest's
 * library in-process on a loopback port with its own SQLite file and POSTs wire batches (and,
 * as the host's backend, referee reports with the site's secret key) to it over HTTP, so the
 * learning policy trains from exactly what the server stored.
 *
 * Why a clock wrapper: the server stamps what it stores with its wall clock, and the trainer's
 * attribution windows compare those receive times with the decisions' times. Simulated months
 * pass in seconds, so the wall clock would put every referee report outside every window. The
 * store is therefore wrapped in a backend (the same lw_store_backend table the fault-injecting
 * test backend uses) that passes every call through and sets each batch's and each referee
 * report's receive time to the simulator's clock, the time at which it was sent. */
#define _POSIX_C_SOURCE 200809L
#include "sim_ingest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdatomic.h>

#include "loopwise/ingest.h"
#include "loopwise/store.h"

struct lw_sim_ingest {
  lw_ingest_config cfg;
  lw_ingest_server *srv;
  int port;
  _Atomic int64_t *clock; /* the clock store's, read on the server's writer thread */
};

/* ---- the simulated clock: a store that stamps receive times with it ----------------------- */

typedef struct {
  lw_store base;
  lw_store *inner;
  _Atomic int64_t now_ms;
} clock_store;

#define INNER(base) (((clock_store *)(base))->inner)
static lw_status cs_write(lw_store *b, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  int64_t now = atomic_load(&((clock_store *)b)->now_ms);
  for (size_t i = 0; i < n; i++) items[i]->received_ms = now;
  return INNER(b)->backend->write(INNER(b), items, n, err, errlen);
}
static lw_status cs_forget(lw_store *b, lw_forget_item *const *items, size_t n, char *err, size_t errlen) {
  return INNER(b)->backend->forget(INNER(b), items, n, err, errlen);
}
static lw_status cs_purge(lw_store *b, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  return INNER(b)->backend->purge(INNER(b), before_ms, deleted, err, errlen);
}
static lw_status cs_stats(lw_store *b, const char *site, const lw_stats_bounds *bounds, lw_stats *out, char *err,
                          size_t errlen) {
  return INNER(b)->backend->stats(INNER(b), site, bounds, out, err, errlen);
}
static lw_status cs_ping(lw_store *b, char *err, size_t errlen) { return INNER(b)->backend->ping(INNER(b), err, errlen); }
static lw_status cs_referral(lw_store *b, const char *site, const char *code, const char *install, lw_referral *out,
                             char *err, size_t errlen) {
  return INNER(b)->backend->referral(INNER(b), site, code, install, out, err, errlen);
}
static lw_status cs_attributions(lw_store *b, const char *site, int64_t since_ms, lw_attribution **rows, size_t *n,
                                 char *err, size_t errlen) {
  return INNER(b)->backend->attributions(INNER(b), site, since_ms, rows, n, err, errlen);
}
static void cs_close(lw_store *b) {
  lw_store_free(INNER(b));
  free(b);
}
static lw_status cs_decisions(lw_store *b, const lw_store_range *r, int referrers, int days, lw_store_cursor **out,
                              char *err, size_t errlen) {
  return INNER(b)->backend->decisions(INNER(b), r, referrers, days, out, err, errlen);
}
static lw_status cs_count(lw_store *b, const lw_store_range *r, uint64_t *n, char *err, size_t errlen) {
  return INNER(b)->backend->count_decisions(INNER(b), r, n, err, errlen);
}
static lw_status cs_salt(lw_store *b, const char *site, const uint8_t fresh[LW_SALT_LEN], uint8_t out[LW_SALT_LEN],
                         char *err, size_t errlen) {
  return INNER(b)->backend->site_salt(INNER(b), site, fresh, out, err, errlen);
}
static lw_status cs_referee(lw_store *b, lw_referee_report *r, char *err, size_t errlen) {
  r->received_ms = atomic_load(&((clock_store *)b)->now_ms);
  return INNER(b)->backend->referee(INNER(b), r, err, errlen);
}
static lw_status cs_register(lw_store *b, const char *site, const char *code,
                             const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict, char *err, size_t errlen) {
  return INNER(b)->backend->register_referrer(INNER(b), site, code, referrer, conflict, err, errlen);
}
static lw_status cs_review(lw_store *b, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                           int *result,
                           char *err, size_t errlen) {
  return INNER(b)->backend->review(INNER(b), site, id, approve, who, now_ms, result, err, errlen);
}
static lw_status cs_reviews(lw_store *b, const char *site, size_t max, lw_review **rows, size_t *n, char *err,
                            size_t errlen) {
  return INNER(b)->backend->reviews(INNER(b), site, max, rows, n, err, errlen);
}
/* no webhooks (no webhook_url), no stats walk, no console rollups, no approval requests and no
 * console actions: those calls stay NULL, which the server treats as absent; its purge is one
 * call (the inner store's whole pass) */
static const lw_store_backend k_clock_backend = {
    "sim-clock", cs_write, cs_forget, cs_purge, cs_stats, cs_ping, cs_referral, cs_attributions, cs_close,
    cs_decisions, cs_count, cs_salt, cs_referee, cs_register, cs_review, cs_reviews,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

lw_status lw_sim_ingest_start(const char *db_path, lw_sim_ingest **out, char *err, size_t errlen) {
  *out = NULL;
  lw_sim_ingest *s = calloc(1, sizeof *s);
  if (!s) return LW_ERR_NOMEM;
  char msg[LW_ERRMSG_MAX] = "";
  lw_ingest_config_init(&s->cfg);
  /* The site: the default one's write key, and a secret key for the host's referee reports
   * (sites come only from a config file). */
  char site_path[1100];
  snprintf(site_path, sizeof site_path, "%s.site.json", db_path);
  FILE *f = fopen(site_path, "w");
  lw_status st = f ? LW_OK : LW_ERR_IO;
  if (!f) snprintf(msg, sizeof msg, "cannot write %.200s", site_path);
  if (f) {
    fprintf(f, "{\"sites\": [{\"id\": \"default\", \"write_key\": \"demo-site-key\", "
               "\"origins\": [\"http://localhost:*\"], \"secret_keys\": [\"%s\"]}]}\n",
            LW_SIM_SECRET_KEY);
    if (fclose(f) != 0) st = LW_ERR_IO;
    if (st == LW_OK) st = lw_ingest_config_load_file(&s->cfg, site_path, msg, sizeof msg);
    remove(site_path);
  }
  /* simulated months lie in the past: no retention purge; one client: no rate limit */
  const char *set[][2] = {{"db", db_path}, {"port", "0"}, {"retention_days", "0"}, {"rate_limit", "off"},
                          {"log_level", "off"}, {"max_future_s", "31622400"}};
  for (size_t i = 0; i < sizeof set / sizeof set[0] && st == LW_OK; i++)
    st = lw_ingest_config_set(&s->cfg, set[i][0], set[i][1], msg, sizeof msg);
  if (st == LW_OK) st = lw_ingest_config_finish(&s->cfg, msg, sizeof msg);
  lw_store *inner = NULL;
  if (st == LW_OK) st = lw_store_open_sqlite(db_path, &inner, msg, sizeof msg);
  clock_store *cs = NULL;
  if (st == LW_OK && !(cs = calloc(1, sizeof *cs))) {
    lw_store_free(inner);
    st = LW_ERR_NOMEM;
    snprintf(msg, sizeof msg, "out of memory");
  }
  if (cs) {
    cs->base.backend = &k_clock_backend;
    cs->inner = inner;
    atomic_init(&cs->now_ms, 0);
    s->clock = &cs->now_ms;
    /* the server owns the store from here, also when it fails */
    st = lw_ingest_server_start_with_store(&s->cfg, &cs->base, &s->srv, msg, sizeof msg);
  }
  if (st != LW_OK) {
    snprintf(err, errlen, "starting the ingest server: %s", msg);
    lw_ingest_config_clear(&s->cfg);
    free(s);
    return st;
  }
  s->port = lw_ingest_server_port(s->srv);
  *out = s;
  return LW_OK;
}

void lw_sim_ingest_clock(lw_sim_ingest *s, int64_t now_ms) { atomic_store(s->clock, now_ms); }

static lw_status post(lw_sim_ingest *s, const char *path, const char *auth, const char *body, size_t len,
                      char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)s->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "connecting to the ingest server failed");
    return LW_ERR_IO;
  }
  char head[512];
  int hl = snprintf(head, sizeof head,
                    "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s%s%s"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    path, auth ? "application/json" : "text/plain", auth ? "Authorization: Bearer " : "",
                    auth ? auth : "", auth ? "\r\n" : "", len);
  const char *parts[2] = {head, body};
  size_t lens[2] = {(size_t)hl, len};
  for (int k = 0; k < 2; k++)
    for (size_t off = 0; off < lens[k];) {
      ssize_t w = write(fd, parts[k] + off, lens[k] - off);
      if (w <= 0) {
        close(fd);
        snprintf(err, errlen, "sending to the ingest server failed");
        return LW_ERR_IO;
      }
      off += (size_t)w;
    }
  char resp[1024];
  size_t got = 0;
  ssize_t r;
  while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
  resp[got] = '\0';
  close(fd);
  if (strncmp(resp, "HTTP/1.1 200", 12) != 0) {
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(err, errlen, "the ingest server refused %s: %.200s", auth ? "a referee report" : "a batch",
             b ? b + 4 : resp);
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

lw_status lw_sim_ingest_post(lw_sim_ingest *s, const char *body, size_t len, char *err, size_t errlen) {
  return post(s, "/v1/outcomes", NULL, body, len, err, errlen);
}

lw_status lw_sim_ingest_referee(lw_sim_ingest *s, const char *body, size_t len, char *err, size_t errlen) {
  return post(s, "/v1/referees", LW_SIM_SECRET_KEY, body, len, err, errlen);
}

void lw_sim_ingest_stop(lw_sim_ingest *s) {
  if (!s) return;
  lw_ingest_server_stop(s->srv);
  lw_ingest_config_clear(&s->cfg);
  free(s);
}
