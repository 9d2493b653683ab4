/* server.c: the HTTP edge of the ingest server, on libmicrohttpd.
 *
 * Threading: libmicrohttpd runs a small pool of epoll threads (MHD_OPTION_THREAD_POOL_SIZE).
 * A handler never waits for the disk: it validates the batch, queues it for the writer thread
 * and suspends its connection (MHD_suspend_connection); once the group commit holding the batch
 * is fsynced, the writer resumes the connection and libmicrohttpd calls the handler again,
 * which answers. So a few threads serve thousands of connections and many requests share one
 * fsync. Everything a request needs is in lw_request (allocated on its first callback, freed in
 * the completion callback); everything shared is in lw_ingest_server.
 *
 * Routes:
 *   POST /v1/outcomes   a batch (wire contract v1)          public, per site write key + Origin
 *   POST /v1/forget     delete one install's records        public, per site write key + Origin
 *   OPTIONS /v1/...     CORS preflight                      public
 *   GET  /v1/stats      aggregates, k-anonymous             read token, or loopback
 *   GET  /metrics       Prometheus text                     read token, or loopback
 *   GET  /healthz       liveness + store check              public
 *   GET  /v1/model      the site's current model            public, per site write key + Origin
 *   GET  /v1/referrals/<code>  a referrer's own counts      same, and the referrer's install key
 *   GET  /v1/attributions  the host's reward list           read token, or loopback
 * The last three answer from serving.h (models.c, referrals.c). */
#include "loopwise/ingest.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "loopwise/batch.h"
#include "loopwise/store.h"
#include "metrics.h"
#include "ratelimit.h"
#include "serving.h"
#include "writer.h"

typedef enum {
  R_NOT_FOUND = 0,
  R_OUTCOMES,
  R_FORGET,
  R_PREFLIGHT,
  R_STATS,
  R_METRICS,
  R_HEALTHZ,
  R_BAD_METHOD,
  R_MODEL,
  R_REFERRAL,
  R_ATTRIBUTIONS
} lw_route;

struct lw_ingest_server {
  const lw_ingest_config *cfg;
  lw_logger log;
  lw_metrics metrics;
  lw_store *store;
  lw_writer *writer;
  lw_ratelimit *rl_address, *rl_key;
  lw_batch_limits limits;
  struct MHD_Daemon *daemon;
  int port;
  atomic_int in_flight;
};

typedef struct {
  lw_route route;
  const char *allow;      /* for 405 */
  struct MHD_Connection *conn;
  int64_t start_us;
  char *body;
  size_t len, cap;
  int too_large;
  size_t dropped;         /* bytes of an oversized chunked body read and thrown away */
  /* Set when the request waits for the writer (its connection suspended). */
  int queued;
  lw_job job;
  lw_batch *batch;        /* owned by the request until it completes */
  lw_forget_request forget;
  const char *cors;       /* Origin to echo in the answer (libmicrohttpd's header memory) */
  const char *path;       /* the request path (libmicrohttpd's memory, valid until completion) */
} lw_request;

/* ---------------------------------------------------------------- routing */

static lw_route route_of(const char *method, const char *url, const char **allow) {
  static const struct {
    const char *path, *method;
    lw_route route;
  } table[] = {
      {"/v1/outcomes", "POST", R_OUTCOMES}, {"/v1/forget", "POST", R_FORGET},
      {"/v1/stats", "GET", R_STATS},        {"/metrics", "GET", R_METRICS},
      {"/healthz", "GET", R_HEALTHZ},
      {"/v1/model", "GET", R_MODEL},        {"/v1/referrals/", "GET", R_REFERRAL},
      {"/v1/attributions", "GET", R_ATTRIBUTIONS},
  };
  /* /v1/referrals/<code>: one route for every code (the handler checks the code). */
  if (strncmp(url, "/v1/referrals/", 14) == 0 && url[14]) url = "/v1/referrals/";
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(url, table[i].path) != 0) continue;
    if (strcmp(method, table[i].method) == 0) return table[i].route;
    if (strcmp(method, "HEAD") == 0 && strcmp(table[i].method, "GET") == 0)
      return table[i].route;
    if (strcmp(method, "OPTIONS") == 0 &&
        (table[i].route <= R_FORGET || table[i].route == R_MODEL ||
         table[i].route == R_REFERRAL)) {
      *allow = table[i].method; /* what the preflight allows */
      return R_PREFLIGHT;
    }
    *allow = strcmp(table[i].method, "POST") == 0 ? "POST, OPTIONS" : "GET, HEAD";
    return R_BAD_METHOD;
  }
  return R_NOT_FOUND;
}

static const lw_ingest_site *site_by_key(const lw_ingest_config *cfg, const char *key) {
  for (size_t i = 0; i < cfg->n_sites; i++)
    if (strcmp(cfg->sites[i].write_key, key) == 0) return &cfg->sites[i];
  return NULL;
}

static const lw_ingest_site *site_by_id(const lw_ingest_config *cfg, const char *id) {
  for (size_t i = 0; i < cfg->n_sites; i++)
    if (strcmp(cfg->sites[i].id, id) == 0) return &cfg->sites[i];
  return NULL;
}

static int site_allows(const lw_ingest_site *site, const char *origin) {
  for (size_t i = 0; i < site->n_origins; i++)
    if (lw_origin_matches(site->origins[i], origin)) return 1;
  return 0;
}

static int any_site_allows(const lw_ingest_config *cfg, const char *origin) {
  for (size_t i = 0; i < cfg->n_sites; i++)
    if (site_allows(&cfg->sites[i], origin)) return 1;
  return 0;
}

/* ---------------------------------------------------------------- client address */

/* The peer address as bytes for the rate limiter, and whether it is loopback. The address is
 * only ever hashed in memory: never logged, never stored. */
static size_t client_address(struct MHD_Connection *c, unsigned char out[16], int *loopback) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  *loopback = 0;
  if (!ci || !ci->client_addr) return 0;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    memcpy(out, &in->sin_addr, 4);
    *loopback = out[0] == 127;
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) { /* an IPv4 client on an IPv6 socket */
      memcpy(out, (const unsigned char *)&in6->sin6_addr + 12, 4);
      *loopback = out[0] == 127;
      return 4;
    }
    memcpy(out, &in6->sin6_addr, 16);
    *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    return 16;
  }
  return 0;
}

/* ---------------------------------------------------------------- responses */

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Queue a response. extra_* are optional header pairs (name NULL to skip). */
static enum MHD_Result reply(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                             unsigned status, const char *body, const char *origin,
                             const char *h1, const char *v1) {
  size_t len = strlen(body);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  if (len) MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (origin) {
    MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r, "Vary", "Origin");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "ETag, Retry-After");
  }
  if (h1) MHD_add_response_header(r, h1, v1);
  enum MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  lw_metrics_request(&s->metrics, status);
  if (rq && rq->route == R_OUTCOMES)
    lw_metrics_latency(&s->metrics, (uint64_t)(lw_mono_us() - rq->start_us));
  lw_log_line line;
  if (rq && lw_log_begin(&line, &s->log, LW_LOG_DEBUG, "request")) {
    static const char *const names[] = {"not_found", "outcomes", "forget", "preflight",
                                        "stats", "metrics", "healthz", "bad_method",
                                        "model", "referral", "attributions"};
    lw_log_str(&line, "route", names[rq->route]);
    lw_log_int(&line, "status", status);
    lw_log_num(&line, "ms", (double)(lw_mono_us() - rq->start_us) / 1000.0);
    lw_log_end(&line);
  }
  return ok;
}

/* {"error": message, "field": field} with the reason counted in the metrics. */
static enum MHD_Result reply_error(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                   unsigned status, lw_reject_reason reason, const char *message,
                                   const char *field, const char *origin, const char *h1,
                                   const char *v1) {
  lw_metrics_reject(&s->metrics, reason);
  cJSON *o = cJSON_CreateObject();
  char *text = NULL;
  if (o && cJSON_AddStringToObject(o, "error", message) &&
      (!field || cJSON_AddStringToObject(o, "field", field)))
    text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  enum MHD_Result ok = reply(s, c, rq, status, text ? text : "{\"error\":\"out of memory\"}",
                             origin, h1, v1);
  cJSON_free(text);
  return ok;
}

static enum MHD_Result reply_rate_limited(lw_ingest_server *s, struct MHD_Connection *c,
                                          lw_request *rq, lw_reject_reason reason, int retry,
                                          const char *origin) {
  char secs[16];
  snprintf(secs, sizeof secs, "%d", retry);
  return reply_error(s, c, rq, 429, reason, "rate limit exceeded", NULL, origin, "Retry-After",
                     secs);
}

/* ---------------------------------------------------------------- access rules */

/* A browser's Origin must be on the site's allowlist; a request without one (a server, curl)
 * needs only the key. Returns the origin to echo in CORS headers, or sets *forbidden. */
static const char *check_origin(struct MHD_Connection *c, const lw_ingest_site *site,
                                int *forbidden) {
  const char *origin = header(c, "Origin");
  *forbidden = 0;
  if (!origin) return NULL;
  if (site_allows(site, origin)) return origin;
  *forbidden = 1;
  return NULL;
}

/* Stats and metrics: the read token when one is configured, else loopback clients only. A
 * request carrying proxy headers is not treated as loopback: behind a local reverse proxy
 * every client would otherwise look local. */
static int read_allowed(lw_ingest_server *s, struct MHD_Connection *c, unsigned *status) {
  const char *token = s->cfg->read_token;
  if (token) {
    const char *auth = header(c, "Authorization");
    const char *prefix = "Bearer ";
    *status = 401;
    if (!auth || strncmp(auth, prefix, strlen(prefix)) != 0) return 0;
    auth += strlen(prefix);
    size_t n = strlen(token), m = strlen(auth);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(token[i] ^ auth[i < m ? i : 0]);
    return diff == 0;
  }
  unsigned char addr[16];
  int loopback;
  client_address(c, addr, &loopback);
  *status = 403;
  return loopback && !header(c, "Forwarded") && !header(c, "X-Forwarded-For");
}

/* ---------------------------------------------------------------- handlers */

/* The writer calls this once the job is durable (or failed): wake the connection. */
static void on_job_done(lw_job *job) {
  lw_request *rq = job->ctx;
  MHD_resume_connection(rq->conn);
}

/* Hand rq->job to the writer and suspend the connection until on_job_done resumes it; the
 * handler then runs again and answer_job replies. Suspending first means the resume can never
 * come before the suspend. */
static enum MHD_Result queue_job(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  rq->conn = c;
  rq->job.on_done = on_job_done;
  rq->job.ctx = rq;
  rq->queued = 1;
  MHD_suspend_connection(c);
  if (lw_writer_enqueue(s->writer, &rq->job) != LW_OK) MHD_resume_connection(c); /* stopping */
  return MHD_YES;
}

static enum MHD_Result answer_job(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  const lw_job *job = &rq->job;
  char body[64];
  if (job->status != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_WARN, "write failed", job->errmsg);
    return reply_error(s, c, rq, 503, LW_REJECT_STORE, "store unavailable, retry later", NULL,
                       rq->cors, "Retry-After", "1");
  }
  if (job->kind == LW_JOB_FORGET)
    snprintf(body, sizeof body, "{\"deleted\":%lld}", (long long)job->deleted);
  else if (job->item.duplicate)
    snprintf(body, sizeof body, "{\"stored\":0,\"duplicate\":true}");
  else
    snprintf(body, sizeof body, "{\"stored\":%zu}", job->item.stored);
  return reply(s, c, rq, 200, body, rq->cors, NULL, NULL);
}

static enum MHD_Result handle_outcomes(lw_ingest_server *s, struct MHD_Connection *c,
                                       lw_request *rq) {
  lw_batch *batch = NULL;
  lw_batch_error err;
  lw_status st = lw_batch_parse(rq->body ? rq->body : "", rq->len, &s->limits, lw_wall_ms(), &batch,
                                &err);
  /* Until the key is known, echo the Origin only if some site allows it, so a browser can
   * read why its batch was refused. */
  const char *origin = header(c, "Origin");
  const char *cors = origin && any_site_allows(s->cfg, origin) ? origin : NULL;
  if (st == LW_ERR_NOMEM)
    return reply_error(s, c, rq, 503, LW_REJECT_STORE, "out of memory", NULL, cors, "Retry-After",
                       "1");
  if (st != LW_OK)
    return reply_error(s, c, rq, 400, LW_REJECT_INVALID, err.message, err.field, cors, NULL,
                       NULL);
  const lw_ingest_site *site = site_by_key(s->cfg, batch->write_key);
  enum MHD_Result ok;
  if (!site) {
    ok = reply_error(s, c, rq, 401, LW_REJECT_BAD_KEY, "unknown write key", "write_key", cors,
                     NULL, NULL);
    goto done;
  }
  int forbidden, retry;
  cors = check_origin(c, site, &forbidden);
  if (forbidden) {
    ok = reply_error(s, c, rq, 403, LW_REJECT_ORIGIN, "origin not allowed for this write key",
                     "Origin", NULL, NULL, NULL);
    goto done;
  }
  if (s->rl_key && !lw_ratelimit_take(s->rl_key, site->id, strlen(site->id),
                                      lw_mono_us() / 1000, &retry)) {
    ok = reply_rate_limited(s, c, rq, LW_REJECT_RATE_KEY, retry, cors);
    goto done;
  }
  rq->batch = batch;
  batch = NULL;
  rq->job.kind = LW_JOB_WRITE;
  rq->job.item.site = site->id;
  rq->job.item.batch = rq->batch;
  rq->job.item.received_ms = lw_wall_ms();
  rq->cors = cors;
  ok = queue_job(s, c, rq);
done:
  lw_batch_free(batch);
  return ok;
}

static enum MHD_Result handle_forget(lw_ingest_server *s, struct MHD_Connection *c,
                                     lw_request *rq) {
  lw_forget_request *req = &rq->forget;
  lw_batch_error err;
  const char *origin = header(c, "Origin");
  const char *cors = origin && any_site_allows(s->cfg, origin) ? origin : NULL;
  if (lw_forget_parse(rq->body ? rq->body : "", rq->len, req, &err) != LW_OK)
    return reply_error(s, c, rq, 400, LW_REJECT_INVALID, err.message, err.field, cors, NULL,
                       NULL);
  const lw_ingest_site *site = site_by_key(s->cfg, req->write_key);
  if (!site)
    return reply_error(s, c, rq, 401, LW_REJECT_BAD_KEY, "unknown write key", "write_key", cors,
                       NULL, NULL);
  int forbidden;
  cors = check_origin(c, site, &forbidden);
  if (forbidden)
    return reply_error(s, c, rq, 403, LW_REJECT_ORIGIN, "origin not allowed for this write key",
                       "Origin", NULL, NULL, NULL);
  rq->job.kind = LW_JOB_FORGET;
  rq->job.site = site->id;
  rq->job.install = req->install;
  rq->cors = cors;
  return queue_job(s, c, rq);
}

static enum MHD_Result handle_preflight(lw_ingest_server *s, struct MHD_Connection *c,
                                        lw_request *rq) {
  const char *origin = header(c, "Origin");
  /* GET routes are preflighted for the model's If-None-Match, POST ones for Content-Type. */
  int get = rq->allow && rq->allow[0] == 'G';
  const char *methods = get ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
  if (!origin) return reply(s, c, rq, 204, "", NULL, "Allow", methods);
  if (!any_site_allows(s->cfg, origin))
    return reply_error(s, c, rq, 403, LW_REJECT_ORIGIN, "origin not allowed", "Origin", NULL,
                       NULL, NULL);
  struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
  MHD_add_response_header(r, "Access-Control-Allow-Methods", methods);
  MHD_add_response_header(r, "Access-Control-Allow-Headers", get ? "If-None-Match" : "Content-Type");
  MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
  MHD_add_response_header(r, "Vary", "Origin, Access-Control-Request-Method, "
                                     "Access-Control-Request-Headers");
  enum MHD_Result ok = MHD_queue_response(c, 204, r);
  MHD_destroy_response(r);
  lw_metrics_request(&s->metrics, 204);
  return ok;
}

/* Add one breakdown to the stats answer, leaving out rows below k distinct installs. */
static int add_rows(cJSON *root, const char *name, const char *key_name, const lw_stats_row *rows,
                    size_t n, int64_t k, cJSON *suppressed) {
  static const char *const plural[LW_KIND_COUNT] = {
      "decisions", "impressions", "shares", "copies", "dismissals", "landings", "conversions"};
  cJSON *arr = cJSON_AddArrayToObject(root, name);
  if (!arr) return 0;
  int hidden = 0;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].installs < k) {
      hidden++;
      continue;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) return 0;
    cJSON_AddItemToArray(arr, o);
    cJSON_AddStringToObject(o, key_name, rows[i].key);
    cJSON_AddNumberToObject(o, "installs", (double)rows[i].installs);
    for (int kind = 0; kind < LW_KIND_COUNT; kind++)
      cJSON_AddNumberToObject(o, plural[kind], (double)rows[i].counts[kind]);
  }
  return cJSON_AddNumberToObject(suppressed, name, hidden) != NULL;
}

/* The start every read-protected route shares: the read rule (a read token, or loopback when
 * none is configured), then `?site=` (default: the first site). Returns 0 after queueing the
 * refusal in *ret; with want_site 0 only the read rule is checked. */
static int read_route(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq, const char *what,
                      int want_site, const lw_ingest_site **site, enum MHD_Result *ret) {
  unsigned status;
  if (!read_allowed(s, c, &status)) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s answer loopback clients only", what);
    *ret = reply_error(s, c, rq, status, status == 401 ? LW_REJECT_BAD_KEY : LW_REJECT_ORIGIN,
                       status == 401 ? "a read token is required (Authorization: Bearer ...)" : msg,
                       NULL, NULL, NULL, NULL);
    return 0;
  }
  if (!want_site) return 1;
  const char *site_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "site");
  *site = site_id ? site_by_id(s->cfg, site_id) : &s->cfg->sites[0];
  if (!*site) {
    *ret = reply_error(s, c, rq, 404, LW_REJECT_NOT_FOUND, "unknown site", "site", NULL, NULL, NULL);
    return 0;
  }
  return 1;
}

static enum MHD_Result handle_stats(lw_ingest_server *s, struct MHD_Connection *c,
                                    lw_request *rq) {
  const lw_ingest_site *site;
  enum MHD_Result refused;
  if (!read_route(s, c, rq, "stats", 1, &site, &refused)) return refused;
  lw_stats stats;
  char errmsg[LW_ERRMSG_MAX];
  if (lw_store_stats(s->store, site->id, &stats, errmsg) != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_ERROR, "stats failed", errmsg);
    return reply_error(s, c, rq, 503, LW_REJECT_STORE, "store unavailable", NULL, NULL,
                       "Retry-After", "1");
  }
  int64_t k = s->cfg->k_anonymity;
  cJSON *root = cJSON_CreateObject();
  cJSON *suppressed = cJSON_CreateObject();
  char *text = NULL;
  if (root && suppressed && cJSON_AddStringToObject(root, "site", site->id) &&
      cJSON_AddNumberToObject(root, "outcomes", (double)stats.outcomes) &&
      cJSON_AddNumberToObject(root, "batches", (double)stats.batches) &&
      cJSON_AddNumberToObject(root, "k_anonymity", (double)k) &&
      add_rows(root, "variants", "action", stats.variants, stats.n_variants, k, suppressed) &&
      add_rows(root, "segments", "segment", stats.segments, stats.n_segments, k, suppressed) &&
      add_rows(root, "codes", "code", stats.codes, stats.n_codes, k, suppressed)) {
    cJSON_AddItemToObject(root, "suppressed", suppressed);
    suppressed = NULL;
    text = cJSON_PrintUnformatted(root);
  }
  cJSON_Delete(suppressed);
  cJSON_Delete(root);
  lw_stats_clear(&stats);
  if (!text)
    return reply_error(s, c, rq, 503, LW_REJECT_STORE, "out of memory", NULL, NULL, NULL, NULL);
  enum MHD_Result ok = reply(s, c, rq, 200, text, NULL, NULL, NULL);
  cJSON_free(text);
  return ok;
}

static enum MHD_Result handle_metrics(lw_ingest_server *s, struct MHD_Connection *c,
                                      lw_request *rq) {
  enum MHD_Result refused;
  if (!read_route(s, c, rq, "metrics", 0, NULL, &refused)) return refused;
  size_t len;
  /* Count this request before rendering, so the answer includes itself. */
  lw_metrics_request(&s->metrics, 200);
  char *text = lw_metrics_render(&s->metrics, &len);
  if (!text) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(text);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result handle_healthz(lw_ingest_server *s, struct MHD_Connection *c,
                                      lw_request *rq) {
  char errmsg[LW_ERRMSG_MAX];
  if (lw_store_ping(s->store, errmsg) != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_ERROR, "health check failed", errmsg);
    return reply(s, c, rq, 503, "{\"ok\":false}", NULL, NULL, NULL);
  }
  return reply(s, c, rq, 200, "{\"ok\":true}", NULL, NULL, NULL);
}

/* ---------------------------------------------------------------- learning loop routes */

/* The runtime's own GETs (its model, its referral counts) are public per site like outcomes:
 * the write key (?key=) selects the site and a browser Origin must be on its list. Returns the
 * site, or NULL with the refusal queued in *ok. */
static const lw_ingest_site *public_site(lw_ingest_server *s, struct MHD_Connection *c,
                                         lw_request *rq, const char **cors, enum MHD_Result *ok) {
  const char *key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
  const char *origin = header(c, "Origin");
  *cors = origin && any_site_allows(s->cfg, origin) ? origin : NULL;
  const lw_ingest_site *site = key ? site_by_key(s->cfg, key) : NULL;
  int forbidden = 0;
  if (site) *cors = check_origin(c, site, &forbidden);
  if (!site)
    *ok = reply_error(s, c, rq, 401, LW_REJECT_BAD_KEY, "unknown write key", "key", *cors, NULL,
                      NULL);
  else if (forbidden)
    *ok = reply_error(s, c, rq, 403, LW_REJECT_ORIGIN, "origin not allowed for this write key",
                      "Origin", NULL, NULL, NULL);
  return site && !forbidden ? site : NULL;
}

/* <models_dir>/<site>/current.lwm, read fresh each time (the trainer renames a new file into
 * place), with its ETag; 304 when the runtime already has it. no-cache: a browser cache may
 * keep it but must revalidate, so a promoted model is seen on the runtime's next refresh. */
static enum MHD_Result handle_model(lw_ingest_server *s, struct MHD_Connection *c,
                                    lw_request *rq) {
  const char *cors;
  enum MHD_Result ok;
  const lw_ingest_site *site = public_site(s, c, rq, &cors, &ok);
  if (!site) return ok;
  uint8_t *buf;
  size_t len;
  char errmsg[LW_ERRMSG_MAX], etag[LW_ETAG_MAX];
  lw_status st = lw_model_file_read(s->cfg->models_dir, site->id, &buf, &len, errmsg);
  if (st == LW_ERR_NOT_FOUND)
    return reply_error(s, c, rq, 404, LW_REJECT_NOT_FOUND, "no model for this site", NULL, cors,
                       NULL, NULL);
  if (st != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_ERROR, "model read failed", errmsg);
    return reply_error(s, c, rq, 503, LW_REJECT_STORE, "model unavailable", NULL, cors,
                       "Retry-After", "60");
  }
  lw_model_file_etag(buf, len, etag);
  const char *inm = header(c, "If-None-Match");
  unsigned status = inm && lw_etag_matches(inm, etag) ? 304 : 200;
  struct MHD_Response *r =
      status == 200 ? MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE)
                    : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (status != 200 || !r) free(buf); /* else the response owns it */
  if (!r) return MHD_NO;
  if (status == 200) MHD_add_response_header(r, "Content-Type", "application/octet-stream");
  MHD_add_response_header(r, "ETag", etag);
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Vary", "Origin");
  if (cors) {
    MHD_add_response_header(r, "Access-Control-Allow-Origin", cors);
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "ETag, Retry-After");
  }
  ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  lw_metrics_request(&s->metrics, status);
  return ok;
}

/* Answer what referrals.c decided: 200 with its JSON, 400 with its error, 403, or 503. */
static enum MHD_Result reply_answer(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                    unsigned status, char *json, const char *errmsg,
                                    const char *cors) {
  enum MHD_Result ok;
  if (json && status == 400) lw_metrics_reject(&s->metrics, LW_REJECT_INVALID);
  if (json)
    ok = reply(s, c, rq, status, json, cors, NULL, NULL);
  else if (status == 403)
    ok = reply_error(s, c, rq, 403, LW_REJECT_ORIGIN, "this install did not share this code",
                     "install", cors, NULL, NULL);
  else {
    lw_log_msg(&s->log, LW_LOG_ERROR, "referral read failed", errmsg);
    ok = reply_error(s, c, rq, 503, LW_REJECT_STORE, "store unavailable", NULL, cors,
                     "Retry-After", "1");
  }
  free(json);
  return ok;
}

static enum MHD_Result handle_referral(lw_ingest_server *s, struct MHD_Connection *c,
                                       lw_request *rq) {
  const char *cors;
  enum MHD_Result ok;
  const lw_ingest_site *site = public_site(s, c, rq, &cors, &ok);
  if (!site) return ok;
  const char *install = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "install");
  char *json, errmsg[LW_ERRMSG_MAX] = "";
  unsigned status = lw_referral_answer(s->store, site->id, rq->path + strlen("/v1/referrals/"),
                                       install, &json, errmsg);
  return reply_answer(s, c, rq, status, json, errmsg, cors);
}

/* The host's reward list: read-protected exactly like /v1/stats. */
static enum MHD_Result handle_attributions(lw_ingest_server *s, struct MHD_Connection *c,
                                           lw_request *rq) {
  const lw_ingest_site *site;
  enum MHD_Result refused;
  if (!read_route(s, c, rq, "attributions", 1, &site, &refused)) return refused;
  char *json, errmsg[LW_ERRMSG_MAX] = "";
  unsigned status = lw_attributions_answer(s->store, site->id,
                                  MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
                                  &json, errmsg);
  return reply_answer(s, c, rq, status, json, errmsg, NULL);
}

/* ---------------------------------------------------------------- libmicrohttpd callbacks */

typedef struct {
  int content_length, transfer_encoding;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
  framing *f = cls;
  if (strcasecmp(key, "Content-Length") == 0) f->content_length++;
  if (strcasecmp(key, "Transfer-Encoding") == 0) f->transfer_encoding++;
  return MHD_YES;
}

static int has_body(lw_route r) { return r == R_OUTCOMES || r == R_FORGET; }

/* First callback of a request: only headers are known. Everything that can be refused without
 * the body is refused here, so an oversized or abusive request is never read. */
static enum MHD_Result on_headers(lw_ingest_server *s, struct MHD_Connection *c,
                                  lw_request *rq) {
  /* Request smuggling: refuse every framing that two parsers could read differently. Both
   * headers at once, either one repeated (libmicrohttpd would use the first Content-Length),
   * or a Transfer-Encoding other than plain "chunked" (the library would wait for a body it
   * cannot frame). */
  framing f = {0, 0};
  MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
  const char *te = header(c, "Transfer-Encoding");
  const char *why = NULL;
  if (f.content_length && f.transfer_encoding)
    why = "both Content-Length and Transfer-Encoding";
  else if (f.content_length > 1 || f.transfer_encoding > 1)
    why = "repeated Content-Length or Transfer-Encoding";
  else if (te && strcasecmp(te, "chunked") != 0)
    why = "unsupported Transfer-Encoding (only chunked)";
  if (why) return reply_error(s, c, rq, 400, LW_REJECT_HTTP, why, NULL, NULL, NULL, NULL);
  if (rq->route == R_NOT_FOUND)
    return reply_error(s, c, rq, 404, LW_REJECT_NOT_FOUND, "not found", NULL, NULL, NULL, NULL);
  if (rq->route == R_BAD_METHOD)
    return reply_error(s, c, rq, 405, LW_REJECT_METHOD, "method not allowed", NULL, NULL, "Allow",
                       rq->allow);
  if (s->rl_address && (has_body(rq->route) || rq->route == R_PREFLIGHT ||
                        rq->route == R_MODEL || rq->route == R_REFERRAL)) {
    unsigned char addr[16];
    int loopback, retry;
    size_t n = client_address(c, addr, &loopback);
    if (n == 16) n = 8; /* IPv6: one bucket per /64, what one subscriber usually holds */
    if (n && !lw_ratelimit_take(s->rl_address, addr, n, lw_mono_us() / 1000, &retry)) {
      const char *origin = header(c, "Origin");
      return reply_rate_limited(s, c, rq, LW_REJECT_RATE_ADDRESS, retry,
                                origin && any_site_allows(s->cfg, origin) ? origin : NULL);
    }
  }
  if (has_body(rq->route)) {
    const char *cl = header(c, "Content-Length");
    if (cl) {
      char *end;
      unsigned long long n = strtoull(cl, &end, 10);
      if (*end || n > (unsigned long long)s->cfg->max_body)
        return reply_error(s, c, rq, 413, LW_REJECT_TOO_LARGE, "body too large", NULL, NULL,
                           NULL, NULL);
      /* Size the buffer for the announced body, but never more than 64 KiB before the bytes
       * arrive: a client announcing a large body and sending nothing must not cost memory. */
      rq->cap = (size_t)n + 1 < 65536 ? (size_t)n + 1 : 65536;
      rq->body = malloc(rq->cap);
      if (!rq->body) return MHD_NO;
    }
    return MHD_YES; /* wait for the body */
  }
  switch (rq->route) {
  case R_PREFLIGHT: return handle_preflight(s, c, rq);
  case R_STATS: return handle_stats(s, c, rq);
  case R_METRICS: return handle_metrics(s, c, rq);
  case R_HEALTHZ: return handle_healthz(s, c, rq);
  case R_MODEL: return handle_model(s, c, rq);
  case R_REFERRAL: return handle_referral(s, c, rq);
  case R_ATTRIBUTIONS: return handle_attributions(s, c, rq);
  default: return MHD_NO;
  }
}

static int append_body(lw_ingest_server *s, lw_request *rq, const char *data, size_t n) {
  if (rq->len + n > (size_t)s->cfg->max_body) return 0;
  if (rq->len + n + 1 > rq->cap) {
    size_t cap = rq->cap ? rq->cap : 4096;
    while (cap < rq->len + n + 1) cap *= 2;
    if (cap > (size_t)s->cfg->max_body + 1) cap = (size_t)s->cfg->max_body + 1;
    char *grown = realloc(rq->body, cap);
    if (!grown) return 0;
    rq->body = grown;
    rq->cap = cap;
  }
  memcpy(rq->body + rq->len, data, n);
  rq->len += n;
  rq->body[rq->len] = '\0';
  return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  lw_ingest_server *s = cls;
  lw_request *rq = *con_cls;
  if (!rq) {
    rq = calloc(1, sizeof *rq);
    if (!rq) return MHD_NO;
    *con_cls = rq;
    atomic_fetch_add(&s->in_flight, 1);
    rq->start_us = lw_mono_us();
    rq->route = route_of(method, url, &rq->allow);
    rq->path = url;
    return on_headers(s, c, rq);
  }
  if (*upload_size) {
    /* The idle timeout resets on every byte, so a client trickling its body would never hit
     * it; a whole request gets request_timeout_s at most. */
    if (lw_mono_us() - rq->start_us > s->cfg->request_timeout_s * 1000000) {
      lw_metrics_reject(&s->metrics, LW_REJECT_HTTP);
      return MHD_NO; /* closes the connection */
    }
    if (!rq->too_large && !append_body(s, rq, upload, *upload_size)) {
      /* A chunked body grew past the limit. libmicrohttpd (0.9.75) cannot queue an answer in
       * the middle of a body, so the rest is read and dropped and 413 goes out at its end;
       * past four times the limit the connection is simply closed. */
      rq->too_large = 1;
      free(rq->body);
      rq->body = NULL;
      rq->len = rq->cap = 0;
    }
    if (rq->too_large) {
      rq->dropped += *upload_size;
      if (rq->dropped > 4 * (size_t)s->cfg->max_body) {
        lw_metrics_reject(&s->metrics, LW_REJECT_TOO_LARGE);
        return MHD_NO;
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (rq->queued) return answer_job(s, c, rq); /* resumed by the writer */
  if (rq->too_large)
    return reply_error(s, c, rq, 413, LW_REJECT_TOO_LARGE, "body too large", NULL, NULL, NULL,
                       NULL);
  return rq->route == R_OUTCOMES ? handle_outcomes(s, c, rq) : handle_forget(s, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  lw_ingest_server *s = cls;
  lw_request *rq = *con_cls;
  if (!rq) return;
  lw_batch_free(rq->batch);
  free(rq->body);
  free(rq);
  *con_cls = NULL;
  atomic_fetch_sub(&s->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  lw_ingest_server *s = cls;
  char text[512];
  vsnprintf(text, sizeof text, fmt, ap);
  size_t n = strlen(text);
  while (n && (text[n - 1] == '\n' || text[n - 1] == '\r')) text[--n] = '\0';
  lw_log_msg(&s->log, LW_LOG_DEBUG, "libmicrohttpd", text); /* mostly bad clients: no floods */
}

/* ---------------------------------------------------------------- lifecycle */

static void free_parts(lw_ingest_server *s) {
  lw_writer_free(s->writer);
  lw_store_free(s->store);
  lw_ratelimit_free(s->rl_address);
  lw_ratelimit_free(s->rl_key);
  free(s);
}

lw_status lw_ingest_server_start(const lw_ingest_config *cfg, lw_ingest_server **out,
                                 char *errmsg) {
  *out = NULL;
  if (cfg->n_sites == 0) {
    snprintf(errmsg, LW_ERRMSG_MAX, "no sites configured (call lw_ingest_config_finish)");
    return LW_ERR_INVALID;
  }
  lw_ingest_server *s = calloc(1, sizeof *s);
  if (!s) return LW_ERR_NOMEM;
  s->cfg = cfg;
  s->log.fd = 2;
  s->log.min = (lw_log_level)lw_log_level_parse(cfg->log_level ? cfg->log_level : "info");
  lw_metrics_init(&s->metrics);
  s->limits.max_events = (size_t)cfg->max_events;
  s->limits.max_future_ms = cfg->max_future_s * 1000;

  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } addr;
  memset(&addr, 0, sizeof addr);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ITC | MHD_USE_ERROR_LOG;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : (unsigned)(cpus > 1 ? cpus : 2);
  const char *bind = cfg->bind ? cfg->bind : "127.0.0.1";
  if (inet_pton(AF_INET, bind, &addr.in.sin_addr) == 1) {
    addr.in.sin_family = AF_INET;
    addr.in.sin_port = htons((uint16_t)cfg->port);
  } else if (inet_pton(AF_INET6, bind, &addr.in6.sin6_addr) == 1) {
    addr.in6.sin6_family = AF_INET6;
    addr.in6.sin6_port = htons((uint16_t)cfg->port);
    flags |= MHD_USE_IPv6;
  } else {
    free(s);
    snprintf(errmsg, LW_ERRMSG_MAX, "bind: '%s' is not an IPv4 or IPv6 address", bind);
    return LW_ERR_INVALID;
  }

  lw_status st = lw_store_open_sqlite(cfg->db, &s->store, errmsg);
  if (st != LW_OK) {
    free_parts(s);
    return st;
  }
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)lw_mono_us();
  if (cfg->rate_limit &&
      (lw_ratelimit_create(cfg->rate_per_address, cfg->burst_per_address, 65536, seed,
                           &s->rl_address) != LW_OK ||
       lw_ratelimit_create(cfg->rate_per_key, cfg->burst_per_key, 1024, seed ^ 0x9e3779b97f4a7c15ULL,
                           &s->rl_key) != LW_OK)) {
    free_parts(s);
    snprintf(errmsg, LW_ERRMSG_MAX, "out of memory");
    return LW_ERR_NOMEM;
  }
  lw_writer_config wc = {(size_t)cfg->max_group, (int64_t)(cfg->retention_days * 86400000.0),
                         cfg->purge_interval_s * 1000};
  if ((st = lw_writer_create(s->store, &wc, &s->metrics, &s->log, &s->writer, errmsg)) != LW_OK) {
    free_parts(s);
    return st;
  }

  s->daemon = MHD_start_daemon(
      flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
      MHD_OPTION_SOCK_ADDR, &addr.sa,
      MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
      MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->timeout_s,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->max_connections_per_address,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_END);
  if (!s->daemon) {
    free_parts(s);
    snprintf(errmsg, LW_ERRMSG_MAX, "could not listen on %s port %d", bind, cfg->port);
    return LW_ERR_IO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = di ? di->port : cfg->port;
  *out = s;
  return LW_OK;
}

int lw_ingest_server_port(const lw_ingest_server *s) { return s->port; }

void lw_ingest_server_stop(lw_ingest_server *s) {
  if (!s) return;
  /* Stop accepting; connections already open keep being served while they drain. */
  MHD_socket listen_fd = MHD_quiesce_daemon(s->daemon);
  /* The kernel would keep completing handshakes on the still-listening socket; shut it down
   * so new connections are refused now. It is closed only after MHD_stop_daemon, as the
   * library asks, since a polling thread may still hold it. */
  if (listen_fd != MHD_INVALID_SOCKET) shutdown(listen_fd, SHUT_RDWR);
  int64_t deadline = lw_mono_us() + s->cfg->drain_timeout_s * 1000000;
  while (atomic_load(&s->in_flight) > 0 && lw_mono_us() < deadline) usleep(10000);
  lw_log_line line;
  if (lw_log_begin(&line, &s->log, LW_LOG_INFO, "drained")) {
    lw_log_int(&line, "in_flight", atomic_load(&s->in_flight));
    lw_log_end(&line);
  }
  /* Refuse new jobs (a late request answers 503), let the writer finish and resume every
   * connection it holds: libmicrohttpd must not be stopped with suspended connections. */
  lw_writer_close(s->writer);
  lw_writer_drain(s->writer);
  MHD_stop_daemon(s->daemon);
  if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
  free_parts(s); /* the writer finishes its queue, then the store closes (WAL checkpoint) */
}
