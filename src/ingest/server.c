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
 *   POST /v1/referrals  a referrer's own counts            same, and the referrer's install key
 *   POST /v1/approvals  the answers to a device's approval requests  same, and its approval key
 *   GET  /v1/referrals/<code>  the same, deprecated (the install key in the URL)
 *   GET  /v1/attributions  the host's reward list           read token, or loopback
 *   POST /v1/referees   the host reports a referee          a site's secret key (server to server)
 *   POST /v1/referrers  the host registers a code's referrer  the same
 *   GET  /v1/reviews    conversions waiting for review      read token, or loopback
 *   POST /v1/reviews/<id>  approve or reject one            the same
 *   GET  /console, /console/...  the product manager's console  console users, or loopback
 *   POST /console/login, /console/logout, /console/api/reviews/<id>  the same, plus CSRF token
 * The learning-loop and trust routes answer from serving.h (models.c, referrals.c, referees.c). */
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
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "console.h"
#include "log.h"
#include "loopwise/batch.h"
#include "loopwise/json.h"
#include "loopwise/store.h"
#include "metrics.h"
#include "ratelimit.h"
#include "serving.h"
#include "webhook.h"
#include "writer.h"

typedef struct lw_request lw_request;
typedef enum MHD_Result (*lw_handler)(lw_ingest_server *s, struct MHD_Connection *c,
                                      lw_request *rq);

/* ---------------------------------------------------------------- routes
 * One row per route, the way batch.c:field_rules drives validation. A browser route is one the
 * runtime calls from a page: it is preflighted, its answers carry CORS headers under one rule
 * (cors_headers) and it is rate-limited per address before anything else is done. */
#define ROUTE_BODY 1u    /* POST: the handler runs once the body is read */
#define ROUTE_BROWSER 2u
#define ROUTE_PREFIX 4u  /* the path is a prefix and one more segment follows (/v1/referrals/CODE) */
#define ROUTE_TIMED 8u   /* in the request duration histogram */
#define ROUTE_CONSOLE 16u /* the console: its answers carry the strict CSP (console_headers) */

typedef struct {
  const char *path;
  const char *method; /* "POST", or "GET" (which answers HEAD too) */
  const char *name;   /* in the request log line */
  unsigned flags;
  lw_handler handler;
} lw_route;

/* What a request turned out to be once its method and path are known. */
typedef enum { OP_HANDLE, OP_PREFLIGHT, OP_BAD_METHOD, OP_NOT_FOUND } lw_op;

/* ---------------------------------------------------------------- connections
 * libmicrohttpd 0.9.75 resets its idle timeout on every byte and calls the application only once
 * the headers are complete, so a client trickling its headers one byte at a time would hold a
 * connection until the header memory ran out; 512 of them outnumbered the connection limit.
 * So the server keeps its own table of open connections (MHD_OPTION_NOTIFY_CONNECTION): when
 * each one's current request began, whether its headers are complete, and how many body bytes
 * it holds. A sweeper thread shuts down the socket of every connection still in its header
 * phase after header_timeout_s (shutdown(2), never close: libmicrohttpd then sees the end of
 * the stream and closes the connection its own way; an entry leaves the table in the CLOSED
 * notification, which libmicrohttpd sends before it closes the socket, so the sweeper never
 * touches a socket number that was reused). The same table holds the per-address connection
 * counts (IPv6 by /64, the library's own limit counts every address apart) and finds the
 * largest body to close when the body budget runs out. */

typedef struct lw_conn {
  struct lw_conn *prev, *next;
  int fd;
  int64_t phase_start_us;   /* when the current request (or the wait for one) began */
  int in_headers;           /* the current request's headers are not complete yet */
  int cut;                  /* its socket was shut down by the sweeper or the budget */
  int queued;               /* its request waits for the writer or a read thread */
  size_t held;              /* body bytes it holds (body_budget) */
  unsigned slot;            /* its per-address counting slot, or UINT_MAX when not counted */
} lw_conn;

#define ADDR_SLOTS 65536u /* per-address connection counts, by keyed hash */

typedef struct {
  pthread_mutex_t lock;
  lw_conn *head;
  uint16_t counts[ADDR_SLOTS];
  size_t total;             /* entries in the table */
  uint64_t seed;
  pthread_t sweeper;
  pthread_cond_t wake;
  int stopping, started;
} lw_conns;

/* ---------------------------------------------------------------- reads off the HTTP threads
 * Reads that may take long (stats, referral counts, the attribution list) run on read threads
 * of their own: the handler suspends its connection and queues the request, a read thread
 * computes the answer and resumes it. So however slow or many the reads, libmicrohttpd's
 * threads keep accepting and answering batches. */
#define READ_THREADS 2

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t work;
  lw_request *head, *tail;
  pthread_t threads[READ_THREADS];
  int n_threads, stopping;
} lw_readq;

struct lw_ingest_server {
  const lw_ingest_config *cfg;
  lw_conns conns;
  lw_readq reads;
  lw_logger log;
  lw_metrics metrics;
  lw_store *store;
  lw_console *console;
  lw_webhook *webhook;
  lw_writer *writer;
  lw_ratelimit *rl_address, *rl_key;
  lw_batch_limits limits;
  struct MHD_Daemon *daemon;
  int port;
  atomic_int in_flight;
};

struct lw_request {
  const lw_route *route;  /* NULL for OP_NOT_FOUND */
  lw_op op;
  struct MHD_Connection *conn;
  int64_t start_us;
  char *body;
  size_t len, cap;
  int too_large;
  size_t dropped;         /* bytes of an oversized chunked body read and thrown away */
  int counted;            /* the answer is already in requests_total (GET /metrics counts itself) */
  /* Set when the request waits for the writer (its connection suspended). */
  int queued;
  lw_job job;
  lw_batch *batch;        /* owned by the request until it completes */
  lw_forget_request forget;
  lw_referral_request referral; /* POST /v1/referrals: read_arg points into it */
  lw_approval_check approval;   /* POST /v1/approvals */
  const char *cors;       /* Origin to echo (libmicrohttpd's header memory); see cors_headers */
  const char *path;       /* the request path (libmicrohttpd's memory, valid until completion) */
  /* LW_JOB_CALL: the call's argument (malloc()ed, freed at completion) and what answers once
   * the writer is done. */
  void *call;
  enum MHD_Result (*answer)(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq);
  lw_conn *cn;            /* its connection's entry (valid until completion) */
  size_t held;            /* bytes of body_budget this request holds */
  /* A read handed to a read thread (rq->reading): run computes the answer into read_*. */
  int reading;
  void (*read_run)(lw_ingest_server *s, lw_request *rq);
  const lw_ingest_site *read_site;
  const char *read_arg[2];
  unsigned read_status;
  char *read_json;
  char read_err[LW_ERRMSG_MAX];
  lw_request *read_next;
  /* A read whose answer is not plain JSON (the console's login, its CSV): sends it instead of
   * reply_answer. */
  enum MHD_Result (*read_answer)(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq);
  /* The console (console.h): who is logged in, and the cookie a login sets. */
  char console_user[LW_CONSOLE_USER_MAX + 1];
  char console_cookie[LW_CONSOLE_COOKIE_MAX];
  char console_arg[32];
};

static enum MHD_Result handle_outcomes(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_forget(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_stats(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_metrics(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_healthz(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_model(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_referral(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_attributions(lw_ingest_server *, struct MHD_Connection *,
                                           lw_request *);
static enum MHD_Result handle_referral_post(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_referee(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_referrer(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_reviews(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_review(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_login(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_logout(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_review(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_session(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_report(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_reviews(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_rewards(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_asset(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_deliveries(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_resend(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_fairness(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_approval_check(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_approvals(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_approval(lw_ingest_server *, struct MHD_Connection *, lw_request *);
static enum MHD_Result handle_console_actions(lw_ingest_server *, struct MHD_Connection *, lw_request *);

static const lw_route routes[] = {
    {"/v1/outcomes", "POST", "outcomes", ROUTE_BODY | ROUTE_BROWSER | ROUTE_TIMED, handle_outcomes},
    {"/v1/forget", "POST", "forget", ROUTE_BODY | ROUTE_BROWSER, handle_forget},
    {"/v1/stats", "GET", "stats", 0, handle_stats},
    {"/metrics", "GET", "metrics", 0, handle_metrics},
    {"/healthz", "GET", "healthz", 0, handle_healthz},
    {"/v1/model", "GET", "model", ROUTE_BROWSER, handle_model},
    {"/v1/referrals/", "GET", "referral", ROUTE_BROWSER | ROUTE_PREFIX, handle_referral},
    {"/v1/attributions", "GET", "attributions", 0, handle_attributions},
    /* the trust routes (README "Rewards nobody can forge") */
    {"/v1/referrals", "POST", "referral", ROUTE_BODY | ROUTE_BROWSER, handle_referral_post},
    {"/v1/approvals", "POST", "approvals", ROUTE_BODY | ROUTE_BROWSER, handle_approval_check},
    {"/v1/referees", "POST", "referee", ROUTE_BODY, handle_referee},
    {"/v1/referrers", "POST", "referrer", ROUTE_BODY, handle_referrer},
    {"/v1/reviews", "GET", "reviews", 0, handle_reviews},
    {"/v1/reviews/", "POST", "review", ROUTE_BODY | ROUTE_PREFIX, handle_review},
    /* the console (README "The console"); exact paths before the asset prefix */
    {"/console/login", "POST", "console_login", ROUTE_BODY | ROUTE_CONSOLE, handle_console_login},
    {"/console/logout", "POST", "console_logout", ROUTE_BODY | ROUTE_CONSOLE, handle_console_logout},
    {"/console/api/reviews/", "POST", "console_review", ROUTE_BODY | ROUTE_PREFIX | ROUTE_CONSOLE,
     handle_console_review},
    {"/console/api/deliveries/", "POST", "console_resend", ROUTE_BODY | ROUTE_PREFIX | ROUTE_CONSOLE,
     handle_console_resend},
    {"/console/api/deliveries", "GET", "console_deliveries", ROUTE_CONSOLE, handle_console_deliveries},
    {"/console/api/approvals/", "POST", "console_approval", ROUTE_BODY | ROUTE_PREFIX | ROUTE_CONSOLE,
     handle_console_approval},
    {"/console/api/approvals", "GET", "console_approvals", ROUTE_CONSOLE, handle_console_approvals},
    {"/console/api/fairness", "GET", "console_fairness", ROUTE_CONSOLE, handle_console_fairness},
    {"/console/api/fairness.csv", "GET", "console_fairness", ROUTE_CONSOLE, handle_console_fairness},
    {"/console/api/session", "GET", "console_session", ROUTE_CONSOLE, handle_console_session},
    {"/console/api/report", "GET", "console_report", ROUTE_CONSOLE, handle_console_report},
    {"/console/api/report.csv", "GET", "console_report", ROUTE_CONSOLE, handle_console_report},
    {"/console/api/reviews", "GET", "console_reviews", ROUTE_CONSOLE, handle_console_reviews},
    {"/console/api/rewards", "GET", "console_rewards", ROUTE_CONSOLE, handle_console_rewards},
    {"/console/api/actions", "GET", "console_actions", ROUTE_CONSOLE, handle_console_actions},
    {"/console/api/actions.csv", "GET", "console_actions", ROUTE_CONSOLE, handle_console_actions},
    {"/console", "GET", "console", ROUTE_CONSOLE, handle_console_asset},
    {"/console/", "GET", "console", ROUTE_PREFIX | ROUTE_CONSOLE, handle_console_asset},
};

static lw_op route_of(const char *method, const char *url, const lw_route **out) {
  *out = NULL;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const lw_route *r = &routes[i];
    size_t n = strlen(r->path);
    if (r->flags & ROUTE_PREFIX ? strncmp(url, r->path, n) != 0 || !url[n]
                                : strcmp(url, r->path) != 0)
      continue;
    *out = r;
    if (strcmp(method, r->method) == 0) return OP_HANDLE;
    if (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0) return OP_HANDLE;
    if (strcmp(method, "OPTIONS") == 0 && (r->flags & ROUTE_BROWSER)) return OP_PREFLIGHT;
    return OP_BAD_METHOD;
  }
  return OP_NOT_FOUND;
}

static int is_get(const lw_route *r) { return r && r->method[0] == 'G'; }

/* The Allow header of a 405 and of a preflight without Origin. */
static const char *allowed_methods(const lw_route *r, int preflight) {
  if (preflight) return is_get(r) ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
  return is_get(r) ? "GET, HEAD" : "POST, OPTIONS";
}

static const char *log_name(const lw_request *rq) {
  static const char *const names[] = {NULL, "preflight", "bad_method", "not_found"};
  return rq->op == OP_HANDLE ? rq->route->name : names[rq->op];
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

/* Address bytes of a sockaddr (4 for IPv4, IPv4-mapped IPv6 included; 16 for IPv6); 0 when
 * neither. */
static size_t sockaddr_bytes(const struct sockaddr *sa, unsigned char out[16]) {
  if (!sa) return 0;
  if (sa->sa_family == AF_INET) {
    memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      memcpy(out, (const unsigned char *)&in6->sin6_addr + 12, 4);
      return 4;
    }
    memcpy(out, &in6->sin6_addr, 16);
    return 16;
  }
  return 0;
}

static int is_trusted_proxy(const lw_ingest_server *s, const unsigned char *addr, size_t n) {
  return n && s->cfg->n_proxies && lw_ingest_net_contains(s->cfg->proxies, s->cfg->n_proxies, addr, n);
}

/* The client's address for the per-address limits: the peer, or, when the peer is a trusted
 * proxy (trusted_proxies), the last address of its X-Forwarded-For (the one that proxy wrote:
 * anything before it came from the client and proves nothing). An unreadable header leaves
 * the proxy's own address. Returns the length in bytes: 4, or 16 for IPv6. */
static size_t client_key(lw_ingest_server *s, struct MHD_Connection *c, unsigned char out[16]) {
  int loopback;
  size_t n = client_address(c, out, &loopback);
  if (!is_trusted_proxy(s, out, n)) return n;
  const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
  if (!xff) return n;
  const char *last = strrchr(xff, ',');
  last = last ? last + 1 : xff;
  while (*last == ' ' || *last == '\t') last++;
  char text[64];
  size_t len = strcspn(last, " \t");
  if (len == 0 || len >= sizeof text) return n;
  memcpy(text, last, len);
  text[len] = '\0';
  unsigned char addr[16];
  if (inet_pton(AF_INET, text, addr) == 1) {
    memcpy(out, addr, 4);
    return 4;
  }
  if (inet_pton(AF_INET6, text, addr) == 1) {
    memcpy(out, addr, 16);
    return 16;
  }
  return n;
}

/* The part of an address that counts as one client: all of IPv4, the /64 of IPv6 (what one
 * subscriber usually holds). */
static size_t one_client(size_t n) { return n == 16 ? 8 : n; }

/* ---------------------------------------------------------------- connection table */

static unsigned addr_slot(const lw_conns *t, const unsigned char *key, size_t n) {
  uint64_t h = t->seed ^ 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ key[i]) * 0x100000001b3ULL;
  h ^= h >> 29;
  return (unsigned)(h % ADDR_SLOTS);
}

/* Whether one more connection from this address fits max_connections_per_address (checked at
 * accept; counted once libmicrohttpd has set the connection up, so the check and the count
 * can differ by the few connections the HTTP threads accept at the same moment). Trusted
 * proxies are not counted: every client behind them shares their address. */
/* A full table makes room for a new connection by shutting down one still in its header phase:
 * from the client holding the most connections, and of its connections the one longest in that
 * phase. A healthy client sends its headers in one packet right after the handshake and holds a
 * connection or two, so what goes is a slow client's (or an idle keep-alive connection), and
 * connections trickling headers can never keep newcomers out. (The library's own limit is set
 * above max_connections, per HTTP thread, so the newcomer fits while the evicted one closes.) */
#define CONNECTION_HEADROOM 64u
#define CONNECTION_POOL_BYTES (20u * 1024u) /* see MHD_OPTION_CONNECTION_MEMORY_LIMIT below */

static int make_room(lw_ingest_server *s) {
  lw_conns *t = &s->conns;
  if (t->total < (size_t)s->cfg->max_connections) return 1;
  lw_conn *victim = NULL;
  unsigned most = 0;
  for (lw_conn *e = t->head; e; e = e->next) {
    if (!e->in_headers || e->cut || e->fd < 0) continue;
    unsigned held = e->slot == UINT_MAX ? 1u : t->counts[e->slot];
    if (!victim || held > most || (held == most && e->phase_start_us < victim->phase_start_us))
      victim = e, most = held;
  }
  if (!victim) return 0;
  victim->cut = 1;
  shutdown(victim->fd, SHUT_RDWR);
  lw_metrics_reject(&s->metrics, LW_REJECT_HEADER_TIMEOUT);
  return 1;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
  lw_ingest_server *s = cls;
  (void)addrlen;
  unsigned char a[16];
  size_t n = sockaddr_bytes(addr, a);
  int counted = s->cfg->max_connections_per_address && n && !is_trusted_proxy(s, a, n);
  unsigned slot = counted ? addr_slot(&s->conns, a, one_client(n)) : 0;
  pthread_mutex_lock(&s->conns.lock);
  int ok = !counted || s->conns.counts[slot] < s->cfg->max_connections_per_address;
  if (ok) ok = make_room(s);
  pthread_mutex_unlock(&s->conns.lock);
  if (!ok) lw_metrics_reject(&s->metrics, LW_REJECT_CONNECTIONS);
  return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  lw_ingest_server *s = cls;
  lw_conns *t = &s->conns;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    lw_conn *e = calloc(1, sizeof *e);
    if (!e) return; /* not tracked: only the library's own timeouts apply to it */
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    unsigned char a[16];
    size_t n = ci ? sockaddr_bytes(ci->client_addr, a) : 0;
    e->fd = fd ? fd->connect_fd : -1;
    e->phase_start_us = lw_mono_us();
    e->in_headers = 1;
    e->slot = UINT_MAX;
    pthread_mutex_lock(&t->lock);
    if (n && !is_trusted_proxy(s, a, n)) { /* counted even without a cap: see make_room */
      e->slot = addr_slot(t, a, one_client(n));
      if (t->counts[e->slot] < UINT16_MAX) t->counts[e->slot]++;
    }
    e->next = t->head;
    if (t->head) t->head->prev = e;
    t->head = e;
    t->total++;
    pthread_mutex_unlock(&t->lock);
    *socket_context = e;
    return;
  }
  lw_conn *e = *socket_context;
  if (!e) return;
  pthread_mutex_lock(&t->lock);
  if (e->slot != UINT_MAX && t->counts[e->slot]) t->counts[e->slot]--;
  if (e->prev) e->prev->next = e->next;
  else t->head = e->next;
  if (e->next) e->next->prev = e->prev;
  t->total--;
  pthread_mutex_unlock(&t->lock);
  free(e);
  *socket_context = NULL;
}

static lw_conn *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* The sweeper: every 100 ms, shut down the connections whose headers are overdue. */
static void *sweeper_main(void *arg) {
  lw_ingest_server *s = arg;
  lw_conns *t = &s->conns;
  int64_t limit_us = s->cfg->header_timeout_s * 1000000;
  pthread_mutex_lock(&t->lock);
  while (!t->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&t->wake, &t->lock, &until);
    int64_t now = lw_mono_us();
    for (lw_conn *e = t->head; e; e = e->next) {
      if (!e->in_headers || e->cut || e->fd < 0 || now - e->phase_start_us <= limit_us) continue;
      e->cut = 1;
      shutdown(e->fd, SHUT_RDWR);
      lw_metrics_reject(&s->metrics, LW_REJECT_HEADER_TIMEOUT);
    }
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

/* ---------------------------------------------------------------- body budget
 * Bodies being received share body_budget bytes (256 stalled 1 MiB uploads held 277 MB).
 * When a request needs more than is left, the connection holding the most body bytes (not
 * this one, and not one whose body is complete and queued) is shut down and its bytes are
 * counted free at once, so the newest request goes on: an upload that stalls is the one
 * that loses, never a small batch that arrives whole. What is held never passes the budget
 * by more than one max_body (bytes of a closed connection until libmicrohttpd frees them). */
static int budget_take(lw_ingest_server *s, lw_request *rq, size_t n) {
  atomic_int_fast64_t *used = &s->metrics.body_bytes;
  int64_t budget = s->cfg->body_budget;
  if (atomic_fetch_add(used, (int64_t)n) + (int64_t)n > budget) {
    lw_conns *t = &s->conns;
    pthread_mutex_lock(&t->lock);
    while (atomic_load(used) > budget) {
      lw_conn *victim = NULL;
      for (lw_conn *e = t->head; e; e = e->next)
        if (e != rq->cn && !e->cut && !e->queued && e->held && (!victim || e->held > victim->held)) victim = e;
      if (!victim) break;
      victim->cut = 1;
      atomic_fetch_sub(used, (int64_t)victim->held); /* its request gives nothing back later */
      victim->held = 0;
      if (victim->fd >= 0) shutdown(victim->fd, SHUT_RDWR);
      lw_metrics_reject(&s->metrics, LW_REJECT_BODY_BUDGET);
    }
    int over = atomic_load(used) > budget + s->cfg->max_body;
    if (over) atomic_fetch_sub(used, (int64_t)n);
    else if (rq->cn) rq->cn->held += n;
    pthread_mutex_unlock(&t->lock);
    if (over) return 0;
    rq->held += n;
    return 1;
  }
  if (rq->cn) {
    pthread_mutex_lock(&s->conns.lock);
    rq->cn->held += n;
    pthread_mutex_unlock(&s->conns.lock);
  }
  rq->held += n;
  return 1;
}

/* Give back what rq holds (its body freed or handed on). */
static void budget_give(lw_ingest_server *s, lw_request *rq) {
  if (!rq->held) return;
  pthread_mutex_lock(&s->conns.lock);
  size_t back = rq->held;
  if (rq->cn) {
    /* An evicted connection's bytes were counted free when it was cut. */
    back = rq->cn->held < rq->held ? rq->cn->held : rq->held;
    rq->cn->held -= back;
  }
  pthread_mutex_unlock(&s->conns.lock);
  atomic_fetch_sub(&s->metrics.body_bytes, (int64_t)back);
  rq->held = 0;
}

static void free_body(lw_ingest_server *s, lw_request *rq) {
  free(rq->body);
  rq->body = NULL;
  rq->len = rq->cap = 0;
  budget_give(s, rq);
}

/* ---------------------------------------------------------------- responses
 * Every answer goes out through respond(), which adds the common and CORS headers, counts the
 * status in the metrics, times POST /v1/outcomes and logs the request at debug; refusals go
 * through refuse(), which also counts the reason. */

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* One answer. Zero fields are left out (Cache-Control defaults to no-store). */
typedef struct {
  unsigned status;
  const char *body;        /* copied; NULL: no body */
  char *owned;             /* instead of body: a malloc()ed body the response takes over */
  size_t len;              /* of body or owned */
  const char *type;        /* Content-Type; application/json for a body when NULL */
  const char *cache;       /* Cache-Control; "no-store" when NULL */
  const char *etag;
  const char *retry_after;
  const char *allow;
  const char *cookie;      /* Set-Cookie */
} lw_answer;

/* A refusal: {"error": message, "field": field}, counted under reason. */
typedef struct {
  unsigned status;
  lw_reject_reason reason;
  const char *message;
  const char *field;       /* NULL: no field */
  int retry_after_s;       /* 0: no Retry-After */
} lw_refusal;

/* The one CORS rule. Only browser routes carry CORS headers, and as their answers depend on the
 * Origin they always say so in Vary. rq->cors is the Origin to echo: on_headers sets it when
 * some site allows it (the write key is not known yet), authorize_site narrows it to the key's
 * site. A preflight adds what it allows: GET routes If-None-Match (the model), POST routes
 * Content-Type. */
static void cors_headers(struct MHD_Response *r, const lw_request *rq) {
  if (!rq->route || !(rq->route->flags & ROUTE_BROWSER)) return;
  int preflight = rq->op == OP_PREFLIGHT;
  MHD_add_response_header(r, "Vary", preflight ? "Origin, Access-Control-Request-Method, "
                                                 "Access-Control-Request-Headers"
                                               : "Origin");
  if (!rq->cors) return;
  MHD_add_response_header(r, "Access-Control-Allow-Origin", rq->cors);
  MHD_add_response_header(r, "Access-Control-Expose-Headers", "ETag, Retry-After");
  if (!preflight) return;
  MHD_add_response_header(r, "Access-Control-Allow-Methods", allowed_methods(rq->route, 1));
  MHD_add_response_header(r, "Access-Control-Allow-Headers",
                          is_get(rq->route) ? "If-None-Match" : "Content-Type");
  MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
}

/* The debug line of one request; status 0 when the connection was closed without an answer.
 * No address, no header: see README "Privacy". */
static void log_request(lw_ingest_server *s, const lw_request *rq, unsigned status) {
  lw_log_line line;
  if (!lw_log_begin(&line, &s->log, LW_LOG_DEBUG, "request")) return;
  lw_log_str(&line, "route", log_name(rq));
  lw_log_int(&line, "status", status);
  lw_log_num(&line, "ms", (double)(lw_mono_us() - rq->start_us) / 1000.0);
  lw_log_end(&line);
}

static enum MHD_Result respond(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                               const lw_answer *a) {
  struct MHD_Response *r =
      a->owned ? MHD_create_response_from_buffer(a->len, a->owned, MHD_RESPMEM_MUST_FREE)
               : MHD_create_response_from_buffer(a->len, (void *)(a->body ? a->body : ""),
                                                 MHD_RESPMEM_MUST_COPY);
  if (!r) {
    free(a->owned);
    log_request(s, rq, 0);
    return MHD_NO;
  }
  const char *type = a->type ? a->type : a->len ? "application/json" : NULL;
  if (type) MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", a->cache ? a->cache : "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (a->etag) MHD_add_response_header(r, "ETag", a->etag);
  if (a->retry_after) MHD_add_response_header(r, "Retry-After", a->retry_after);
  if (a->allow) MHD_add_response_header(r, "Allow", a->allow);
  if (a->cookie) MHD_add_response_header(r, "Set-Cookie", a->cookie);
  if (rq->route && (rq->route->flags & ROUTE_CONSOLE)) {
    /* The console's page loads only its own script and style: no inline code, no frames. */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; "
                            "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  }
  cors_headers(r, rq);
  enum MHD_Result ok = MHD_queue_response(c, a->status, r);
  MHD_destroy_response(r);
  if (!rq->counted) lw_metrics_request(&s->metrics, a->status);
  if (rq->op == OP_HANDLE && (rq->route->flags & ROUTE_TIMED))
    lw_metrics_latency(&s->metrics, (uint64_t)(lw_mono_us() - rq->start_us));
  log_request(s, rq, a->status);
  return ok;
}

static enum MHD_Result refuse(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                              lw_refusal why) {
  lw_metrics_reject(&s->metrics, why.reason);
  cJSON *o = cJSON_CreateObject();
  char *text = NULL, secs[24];
  if (o && cJSON_AddStringToObject(o, "error", why.message) &&
      (!why.field || cJSON_AddStringToObject(o, "field", why.field)))
    text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  lw_answer a = {.status = why.status, .body = text ? text : "{\"error\":\"out of memory\"}"};
  a.len = strlen(a.body);
  if (why.retry_after_s) {
    snprintf(secs, sizeof secs, "%d", why.retry_after_s);
    a.retry_after = secs;
  }
  if (why.status == 405) a.allow = allowed_methods(rq->route, 0);
  enum MHD_Result ok = respond(s, c, rq, &a);
  cJSON_free(text);
  return ok;
}

/* Close the connection without an answer (a body past every limit, a request past its time),
 * still counted and logged. */
static enum MHD_Result drop(lw_ingest_server *s, lw_request *rq, lw_reject_reason reason) {
  lw_metrics_reject(&s->metrics, reason);
  log_request(s, rq, 0);
  return MHD_NO;
}

/* A JSON body of ours (not a refusal). */
static enum MHD_Result respond_json(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                    unsigned status, const char *json) {
  lw_answer a = {.status = status, .body = json, .len = strlen(json)};
  return respond(s, c, rq, &a);
}

/* ---------------------------------------------------------------- access rules */

/* The write key selects the site (401 when it selects none) and a browser's Origin must be on
 * that site's list (403); a request without Origin (a server, curl) needs only the key. On
 * success rq->cors is the Origin to echo, if any. Returns NULL after queueing the refusal in
 * *ret. key_field names where the key came from ("write_key" in a body, "key" in a query). */
static const lw_ingest_site *authorize_site(lw_ingest_server *s, struct MHD_Connection *c,
                                            lw_request *rq, const char *key,
                                            const char *key_field, enum MHD_Result *ret) {
  const lw_ingest_site *site = key ? site_by_key(s->cfg, key) : NULL;
  if (!site) {
    *ret = refuse(s, c, rq, (lw_refusal){401, LW_REJECT_BAD_KEY, "unknown write key", key_field, 0});
    return NULL;
  }
  const char *origin = header(c, "Origin");
  if (origin && !site_allows(site, origin)) {
    rq->cors = NULL;
    *ret = refuse(s, c, rq, (lw_refusal){403, LW_REJECT_ORIGIN,
                                         "origin not allowed for this write key", "Origin", 0});
    return NULL;
  }
  rq->cors = origin;
  return site;
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
  free_body(s, rq); /* parsed: the job holds what it needs */
  if (rq->cn) {
    pthread_mutex_lock(&s->conns.lock);
    rq->cn->queued = 1;
    pthread_mutex_unlock(&s->conns.lock);
  }
  MHD_suspend_connection(c);
  if (lw_writer_enqueue(s->writer, &rq->job) != LW_OK) MHD_resume_connection(c); /* stopping */
  return MHD_YES;
}

static enum MHD_Result answer_job(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  const lw_job *job = &rq->job;
  char body[64];
  if (job->status != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_WARN, "write failed", job->errmsg);
    return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "store unavailable, retry later",
                                         NULL, 1});
  }
  if (job->kind == LW_JOB_CALL) return rq->answer(s, c, rq);
  if (job->kind == LW_JOB_FORGET && job->forget.denied)
    return refuse(s, c, rq, (lw_refusal){403, LW_REJECT_ORIGIN, "this install did not share this code",
                                         "install", 0});
  if (job->kind == LW_JOB_FORGET)
    snprintf(body, sizeof body, "{\"deleted\":%lld}", (long long)job->forget.deleted);
  else if (job->item.duplicate)
    snprintf(body, sizeof body, "{\"stored\":0,\"duplicate\":true}");
  else
    snprintf(body, sizeof body, "{\"stored\":%zu,\"refused\":%zu}", job->item.stored,
             job->item.batch->n_events - job->item.stored);
  return respond_json(s, c, rq, 200, body);
}

/* The per-key limit, per client network: one bucket for each write key and /24 (IPv4) or /48
 * (IPv6) the requests come from. A single key shared by every device of a site would let one
 * client that spends it (from many addresses of its network, past the per-address limit) lock
 * every other device of the site out; this way it spends only its own network's share. */
static int take_key_token(lw_ingest_server *s, struct MHD_Connection *c, const lw_ingest_site *site,
                          int *retry) {
  unsigned char key[32 + 1 + 6], addr[16];
  size_t id = strlen(site->id), n = client_key(s, c, addr);
  size_t net = n == 16 ? 6 : n == 4 ? 3 : 0;
  memcpy(key, site->id, id);
  key[id] = 0;
  memcpy(key + id + 1, addr, net);
  return lw_ratelimit_take(s->rl_key, key, id + 1 + net, lw_mono_us() / 1000, retry);
}

static enum MHD_Result handle_outcomes(lw_ingest_server *s, struct MHD_Connection *c,
                                       lw_request *rq) {
  lw_batch *batch = NULL;
  lw_batch_error err;
  lw_status st = lw_batch_parse(rq->body ? rq->body : "", rq->len, &s->limits, lw_wall_ms(), &batch,
                                &err);
  if (st == LW_ERR_NOMEM)
    return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  if (st != LW_OK)
    return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, err.message, err.field, 0});
  enum MHD_Result ok;
  int retry;
  const lw_ingest_site *site = authorize_site(s, c, rq, batch->write_key, "write_key", &ok);
  if (!site) goto done;
  if (s->rl_key && !take_key_token(s, c, site, &retry)) {
    ok = refuse(s, c, rq, (lw_refusal){429, LW_REJECT_RATE_KEY, "rate limit exceeded", NULL, retry});
    goto done;
  }
  rq->batch = batch;
  batch = NULL;
  rq->job.kind = LW_JOB_WRITE;
  rq->job.item.site = site->id;
  rq->job.item.batch = rq->batch;
  rq->job.item.received_ms = lw_wall_ms();
  ok = queue_job(s, c, rq);
done:
  lw_batch_free(batch);
  return ok;
}

static enum MHD_Result handle_forget(lw_ingest_server *s, struct MHD_Connection *c,
                                     lw_request *rq) {
  lw_forget_request *req = &rq->forget;
  lw_batch_error err;
  lw_status st = lw_forget_parse(rq->body ? rq->body : "", rq->len, req, &err);
  if (st == LW_ERR_NOMEM)
    return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  if (st != LW_OK)
    return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, err.message, err.field, 0});
  enum MHD_Result ok;
  const lw_ingest_site *site = authorize_site(s, c, rq, req->write_key, "write_key", &ok);
  if (!site) return ok;
  rq->job.kind = LW_JOB_FORGET;
  rq->job.forget.site = site->id;
  rq->job.forget.install = req->install;
  rq->job.forget.code = req->code[0] ? req->code : NULL;
  return queue_job(s, c, rq);
}

static enum MHD_Result handle_preflight(lw_ingest_server *s, struct MHD_Connection *c,
                                        lw_request *rq) {
  if (!header(c, "Origin")) {
    lw_answer a = {.status = 204, .allow = allowed_methods(rq->route, 1)};
    return respond(s, c, rq, &a);
  }
  if (!rq->cors)
    return refuse(s, c, rq,
                  (lw_refusal){403, LW_REJECT_ORIGIN, "origin not allowed", "Origin", 0});
  lw_answer a = {.status = 204};
  return respond(s, c, rq, &a);
}

/* Which rows of a breakdown to hide: every row below k distinct installs, and then, so the
 * hidden ones cannot be recovered by subtracting the visible rows from the answer's totals
 * (`outcomes`), complementary rows: while one row alone is hidden, or the hidden rows hold
 * fewer than k installs together, the smallest visible row is hidden too. hide[] is n bytes. */
static int rows_to_hide(const lw_stats_row *rows, size_t n, int64_t k, unsigned char *hide) {
  int hidden = 0;
  int64_t hidden_installs = 0;
  for (size_t i = 0; i < n; i++) {
    hide[i] = rows[i].installs < k;
    if (hide[i]) hidden++, hidden_installs += rows[i].installs;
  }
  while (hidden == 1 || (hidden > 0 && hidden_installs < k)) {
    size_t pick = n;
    for (size_t i = 0; i < n; i++)
      if (!hide[i] && (pick == n || rows[i].installs < rows[pick].installs)) pick = i;
    if (pick == n) break; /* everything is hidden already */
    hide[pick] = 1;
    hidden++;
    hidden_installs += rows[pick].installs;
  }
  return hidden;
}

/* Add one breakdown to the stats answer, leaving out the rows rows_to_hide picks. The
 * per-kind fields are the kinds' stats names (loopwise/wire.h). */
static int add_rows(cJSON *root, const char *name, const char *key_name, const lw_stats_row *rows,
                    size_t n, int64_t k, cJSON *suppressed) {
  cJSON *arr = cJSON_AddArrayToObject(root, name);
  unsigned char *hide = calloc(n ? n : 1, 1);
  if (!arr || !hide) {
    free(hide);
    return 0;
  }
  int hidden = rows_to_hide(rows, n, k, hide);
  for (size_t i = 0; i < n; i++) {
    if (hide[i]) continue;
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    if (ok) cJSON_AddItemToArray(arr, o);
    ok = ok && cJSON_AddStringToObject(o, key_name, rows[i].key) &&
         cJSON_AddNumberToObject(o, "installs", (double)rows[i].installs);
    for (int kind = 0; ok && kind < LW_KIND_COUNT; kind++)
      ok = cJSON_AddNumberToObject(o, lw_kind_stat_name((lw_kind)kind), (double)rows[i].counts[kind]) != NULL;
    if (!ok) {
      free(hide);
      return 0;
    }
  }
  free(hide);
  return cJSON_AddNumberToObject(suppressed, name, hidden) != NULL;
}

/* The start every read-protected route shares: the read rule (a read token, or loopback when
 * none is configured), then `?site=` (default: the first site). Returns 0 after queueing the
 * refusal in *ret; with site NULL only the read rule is checked. */
static int read_route(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                      const lw_ingest_site **site, enum MHD_Result *ret) {
  unsigned status;
  if (!read_allowed(s, c, &status)) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s answer loopback clients only", rq->route->name);
    *ret = refuse(s, c, rq,
                  status == 401 ? (lw_refusal){401, LW_REJECT_BAD_KEY,
                                               "a read token is required (Authorization: Bearer ...)",
                                               NULL, 0}
                                : (lw_refusal){403, LW_REJECT_ORIGIN, msg, NULL, 0});
    return 0;
  }
  if (!site) return 1;
  const char *site_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "site");
  *site = site_id ? site_by_id(s->cfg, site_id) : &s->cfg->sites[0];
  if (!*site) {
    *ret = refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "unknown site", "site", 0});
    return 0;
  }
  return 1;
}

static enum MHD_Result reply_answer(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                    unsigned status, char *json, const char *err);

/* ---- reads on the read threads (see lw_readq) */

static void *read_main(void *arg) {
  lw_ingest_server *s = arg;
  lw_readq *q = &s->reads;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (!q->head && !q->stopping) pthread_cond_wait(&q->work, &q->lock);
    if (!q->head) break;
    lw_request *rq = q->head;
    q->head = rq->read_next;
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    rq->read_run(s, rq);
    MHD_resume_connection(rq->conn);
    pthread_mutex_lock(&q->lock);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

/* Suspend the connection and hand rq to a read thread; libmicrohttpd calls the handler again
 * once the answer is ready, and answer_read sends it. */
static enum MHD_Result queue_read(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                  void (*run)(lw_ingest_server *, lw_request *)) {
  lw_readq *q = &s->reads;
  rq->conn = c;
  rq->reading = 1;
  rq->read_run = run;
  rq->read_next = NULL;
  if (rq->cn) {
    pthread_mutex_lock(&s->conns.lock);
    rq->cn->queued = 1;
    pthread_mutex_unlock(&s->conns.lock);
  }
  MHD_suspend_connection(c);
  pthread_mutex_lock(&q->lock);
  int stopping = q->stopping;
  if (!stopping) {
    if (q->tail) q->tail->read_next = rq;
    else q->head = rq;
    q->tail = rq;
    pthread_cond_signal(&q->work);
  }
  pthread_mutex_unlock(&q->lock);
  if (stopping) {
    rq->read_status = 503;
    snprintf(rq->read_err, sizeof rq->read_err, "shutting down");
    MHD_resume_connection(c);
  }
  return MHD_YES;
}

static enum MHD_Result answer_read(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  if (rq->read_answer) {
    rq->reading = 0;
    return rq->read_answer(s, c, rq);
  }
  char *json = rq->read_json;
  rq->read_json = NULL;
  rq->reading = 0;
  return reply_answer(s, c, rq, rq->read_status, json, rq->read_err);
}

static void run_stats(lw_ingest_server *s, lw_request *rq) {
  const lw_ingest_site *site = rq->read_site;
  lw_stats stats;
  int64_t k = s->cfg->k_anonymity;
  lw_stats_bounds bounds = {(size_t)s->cfg->stats_max_codes, k};
  rq->read_status = 503;
  if (lw_store_stats_bounded(s->store, site->id, &bounds, &stats, rq->read_err, sizeof rq->read_err) != LW_OK)
    return;
  cJSON *root = cJSON_CreateObject();
  cJSON *suppressed = cJSON_CreateObject();
  char *text = NULL;
  if (root && suppressed && cJSON_AddStringToObject(root, "site", site->id) &&
      cJSON_AddNumberToObject(root, "outcomes", (double)stats.outcomes) &&
      cJSON_AddNumberToObject(root, "batches", (double)stats.batches) &&
      cJSON_AddNumberToObject(root, "k_anonymity", (double)k) &&
      add_rows(root, "variants", "action", stats.variants, stats.n_variants, k, suppressed) &&
      add_rows(root, "segments", "segment", stats.segments, stats.n_segments, k, suppressed) &&
      add_rows(root, "codes", "code", stats.codes, stats.n_codes, k, suppressed) &&
      cJSON_AddNumberToObject(root, "codes_left_out", (double)stats.codes_left_out)) {
    /* the codes below k were left out by the store: they count as suppressed */
    cJSON *sc = cJSON_GetObjectItemCaseSensitive(suppressed, "codes");
    if (sc) cJSON_SetNumberValue(sc, sc->valuedouble + (double)stats.codes_below_min);
    cJSON_AddItemToObject(root, "suppressed", suppressed);
    suppressed = NULL;
    text = cJSON_PrintUnformatted(root);
  }
  cJSON_Delete(suppressed);
  cJSON_Delete(root);
  lw_stats_clear(&stats);
  if (!text) {
    snprintf(rq->read_err, sizeof rq->read_err, "out of memory");
    return;
  }
  rq->read_status = 200;
  rq->read_json = text;
}

static enum MHD_Result handle_stats(lw_ingest_server *s, struct MHD_Connection *c,
                                    lw_request *rq) {
  enum MHD_Result refused;
  if (!read_route(s, c, rq, &rq->read_site, &refused)) return refused;
  return queue_read(s, c, rq, run_stats);
}

static enum MHD_Result handle_metrics(lw_ingest_server *s, struct MHD_Connection *c,
                                      lw_request *rq) {
  enum MHD_Result refused;
  if (!read_route(s, c, rq, NULL, &refused)) return refused;
  /* Count this request before rendering, so the answer includes itself. */
  lw_metrics_request(&s->metrics, 200);
  rq->counted = 1;
  lw_answer a = {.status = 200, .type = "text/plain; version=0.0.4"};
  a.owned = lw_metrics_render(&s->metrics, &a.len);
  if (!a.owned) return drop(s, rq, LW_REJECT_STORE);
  return respond(s, c, rq, &a);
}

static enum MHD_Result handle_healthz(lw_ingest_server *s, struct MHD_Connection *c,
                                      lw_request *rq) {
  char err[LW_ERRMSG_MAX];
  if (lw_store_ping(s->store, err, sizeof err) != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_ERROR, "health check failed", err);
    return respond_json(s, c, rq, 503, "{\"ok\":false,\"store\":\"unreadable\"}");
  }
  /* Reads can work while writes fail (a full disk): the last write says. */
  if (lw_writer_failing(s->writer))
    return respond_json(s, c, rq, 503, "{\"ok\":false,\"store\":\"writes failing\"}");
  return respond_json(s, c, rq, 200, "{\"ok\":true}");
}

/* ---------------------------------------------------------------- learning loop routes
 * The runtime's own GETs (its model, its referral counts) are public per site like outcomes:
 * the write key (?key=) selects the site and a browser Origin must be on its list. */

static const lw_ingest_site *query_site(lw_ingest_server *s, struct MHD_Connection *c,
                                        lw_request *rq, enum MHD_Result *ret) {
  const char *key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
  return authorize_site(s, c, rq, key, "key", ret);
}

/* <models_dir>/<site>/current.lwm, read fresh each time (the trainer renames a new file into
 * place), with its ETag; 304 when the runtime already has it. no-cache: a browser cache may
 * keep it but must revalidate, so a promoted model is seen on the runtime's next refresh. */
static enum MHD_Result handle_model(lw_ingest_server *s, struct MHD_Connection *c,
                                    lw_request *rq) {
  enum MHD_Result ok;
  const lw_ingest_site *site = query_site(s, c, rq, &ok);
  if (!site) return ok;
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX], etag[LW_ETAG_MAX];
  lw_status st = lw_model_file_read(s->cfg->models_dir, site->id, &buf, &len, err, sizeof err);
  if (st == LW_ERR_NOT_FOUND) {
    /* Not an error: a site has no model until its first promotion, and the runtime decides
     * with its default meanwhile. 204 keeps a first load free of failed requests. */
    lw_answer none = {.status = 204, .cache = "no-cache"};
    return respond(s, c, rq, &none);
  }
  if (st != LW_OK) {
    lw_log_msg(&s->log, LW_LOG_ERROR, "model read failed", err);
    return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "model unavailable", NULL, 60});
  }
  lw_model_file_etag(buf, len, etag);
  const char *inm = header(c, "If-None-Match");
  lw_answer a = {.status = 200, .cache = "no-cache", .etag = etag};
  if (inm && lw_etag_matches(inm, etag)) {
    a.status = 304;
    free(buf);
  } else {
    a.owned = (char *)buf;
    a.len = len;
    a.type = "application/octet-stream";
  }
  return respond(s, c, rq, &a);
}

/* Answer what referrals.c decided: 200 with its JSON, 400 with its error, 403, or 503. */
static enum MHD_Result reply_answer(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                    unsigned status, char *json, const char *err) {
  enum MHD_Result ok;
  if (json && status == 400) lw_metrics_reject(&s->metrics, LW_REJECT_INVALID);
  if (json) {
    ok = respond_json(s, c, rq, status, json);
  } else if (status == 403) {
    ok = refuse(s, c, rq, (lw_refusal){403, LW_REJECT_ORIGIN,
                                       "another install shared this code", "install", 0});
  } else {
    lw_log_msg(&s->log, LW_LOG_ERROR, "read failed", err);
    ok = refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "store unavailable", NULL, 1});
  }
  free(json);
  return ok;
}

static void run_referral(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_referral_answer(s->store, rq->read_site->id, rq->read_arg[0], rq->read_arg[1],
                                       &rq->read_json, rq->read_err, sizeof rq->read_err);
}

static enum MHD_Result handle_referral(lw_ingest_server *s, struct MHD_Connection *c,
                                       lw_request *rq) {
  enum MHD_Result ok;
  const lw_ingest_site *site = query_site(s, c, rq, &ok);
  if (!site) return ok;
  rq->read_site = site;
  rq->read_arg[0] = rq->path + strlen(rq->route->path);
  rq->read_arg[1] = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "install");
  return queue_read(s, c, rq, run_referral);
}

static void run_attributions(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_attributions_answer(s->store, rq->read_site->id, rq->read_arg[0], &rq->read_json,
                                           rq->read_err, sizeof rq->read_err);
}

/* The host's reward list: read-protected exactly like /v1/stats. */
static enum MHD_Result handle_attributions(lw_ingest_server *s, struct MHD_Connection *c,
                                           lw_request *rq) {
  enum MHD_Result refused;
  if (!read_route(s, c, rq, &rq->read_site, &refused)) return refused;
  rq->read_arg[0] = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
  return queue_read(s, c, rq, run_attributions);
}

/* ---------------------------------------------------------------- trust routes */

/* The id after a route's path (POST /v1/reviews/<id>, the console's rows): a positive integer
 * without sign or leading zero, else 0. */
static long long path_id(const lw_request *rq) {
  const char *t = rq->path + strlen(rq->route->path);
  char *end;
  long long id = strtoll(t, &end, 10);
  return (*end || id <= 0 || t[0] < '1' || t[0] > '9') ? 0 : id;
}

/* A body a small parser refused (st): 503 when it ran out of memory, else 400 naming the field. */
static enum MHD_Result refuse_body(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq, lw_status st,
                                   const lw_batch_error *berr) {
  if (st == LW_ERR_NOMEM) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, berr->message, berr->field, 0});
}

/* POST /v1/referrals: the counts a referrer's device reads, its install key in the body. */
static enum MHD_Result handle_referral_post(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  lw_referral_request *req = &rq->referral;
  lw_batch_error berr;
  lw_status st = lw_referral_request_parse(rq->body ? rq->body : "", rq->len, req, &berr);
  if (st != LW_OK) return refuse_body(s, c, rq, st, &berr);
  enum MHD_Result ok;
  const lw_ingest_site *site = authorize_site(s, c, rq, req->write_key, "write_key", &ok);
  if (!site) return ok;
  /* On a read thread like the GET, so a flood of these cannot hold the HTTP thread. */
  rq->read_site = site;
  rq->read_arg[0] = req->code;
  rq->read_arg[1] = req->install;
  return queue_read(s, c, rq, run_referral);
}

/* The host's backend: Authorization: Bearer <a site's secret key>. Never the public write key
 * (403, saying so: it is in every page, so anyone holds it). */
static const lw_ingest_site *authorize_secret(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                              enum MHD_Result *ret) {
  const char *auth = header(c, "Authorization");
  const char *prefix = "Bearer ";
  if (!auth || strncmp(auth, prefix, strlen(prefix)) != 0) {
    *ret = refuse(s, c, rq, (lw_refusal){401, LW_REJECT_BAD_KEY,
                                         "a site's secret key is required (Authorization: Bearer ...)",
                                         "Authorization", 0});
    return NULL;
  }
  int is_write_key;
  const lw_ingest_site *site = lw_secret_key_site(s->cfg, auth + strlen(prefix), &is_write_key);
  if (!site) {
    *ret = is_write_key ? refuse(s, c, rq, (lw_refusal){403, LW_REJECT_BAD_KEY,
                                                        "the public write key cannot report referees: use the "
                                                        "site's secret key, from the host's backend",
                                                        "Authorization", 0})
                        : refuse(s, c, rq, (lw_refusal){401, LW_REJECT_BAD_KEY, "unknown secret key",
                                                        "Authorization", 0});
    return NULL;
  }
  return site;
}

/* A body site other than the key's. */
static enum MHD_Result wrong_site(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  return refuse(s, c, rq, (lw_refusal){403, LW_REJECT_BAD_KEY, "this secret key is for another site", "site", 0});
}

static void fresh_salt(uint8_t out[LW_SALT_LEN]) {
  if (getrandom(out, LW_SALT_LEN, 0) != (ssize_t)LW_SALT_LEN) /* never short for 32 bytes on Linux */
    for (int i = 0; i < LW_SALT_LEN; i++) out[i] = (uint8_t)(lw_mono_us() >> (i % 8));
}

/* Hand a LW_JOB_CALL to the writer; answer() replies once it is durable. */
static enum MHD_Result queue_call(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq, void *arg,
                                  lw_status (*call)(lw_store *, void *, char *, size_t),
                                  enum MHD_Result (*answer)(lw_ingest_server *, struct MHD_Connection *, lw_request *)) {
  rq->call = arg;
  rq->answer = answer;
  rq->job.kind = LW_JOB_CALL;
  rq->job.call = call;
  rq->job.arg = arg;
  return queue_job(s, c, rq);
}

static enum MHD_Result answer_referee(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  const lw_referee_report *r = &((lw_referee_call_t *)rq->call)->report;
  if (r->refused) /* a later event with no conversion to join to yet: nothing stored */
    return refuse(s, c, rq, (lw_refusal){409, LW_REJECT_INVALID, r->refused_msg, r->refused_field, 0});
  char *json = lw_referee_answer_json(r);
  if (!json) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  enum MHD_Result ok = respond_json(s, c, rq, 200, json);
  cJSON_free(json);
  return ok;
}

/* A host backend's body, parsed: 1 (and *ret answered) when it is refused: 503 out of memory,
 * 400 naming the field, or 403 when it names another site than the secret key's. */
static int refused_body(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq, lw_status st,
                        const lw_batch_error *berr, const char *body_site, const lw_ingest_site *site,
                        enum MHD_Result *ret) {
  if (st == LW_ERR_NOMEM)
    *ret = refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  else if (st != LW_OK)
    *ret = refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, berr->message, berr->field, 0});
  else if (strcmp(body_site, site->id) != 0)
    *ret = wrong_site(s, c, rq);
  else
    return 0;
  return 1;
}

static enum MHD_Result handle_referee(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  enum MHD_Result ok;
  const lw_ingest_site *site = authorize_secret(s, c, rq, &ok);
  if (!site) return ok;
  lw_referee_call_t *call = calloc(1, sizeof *call);
  if (!call) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  lw_batch_error berr;
  lw_status st = lw_referee_parse(rq->body ? rq->body : "", rq->len, &call->req, &berr);
  if (refused_body(s, c, rq, st, &berr, call->req.site, site, &ok)) {
    free(call);
    return ok;
  }
  call->site = site;
  call->received_ms = lw_wall_ms();
  fresh_salt(call->fresh);
  return queue_call(s, c, rq, call, lw_referee_call, answer_referee);
}

static enum MHD_Result answer_referrer(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  if (((lw_referrer_call_t *)rq->call)->conflict)
    return refuse(s, c, rq, (lw_refusal){409, LW_REJECT_INVALID, "another referrer is registered for this code",
                                         "referrer", 0});
  return respond_json(s, c, rq, 200, "{\"registered\":true}");
}

static enum MHD_Result handle_referrer(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  enum MHD_Result ok;
  const lw_ingest_site *site = authorize_secret(s, c, rq, &ok);
  if (!site) return ok;
  lw_referrer_call_t *call = calloc(1, sizeof *call);
  if (!call) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  lw_batch_error berr;
  lw_status st = lw_referrer_parse(rq->body ? rq->body : "", rq->len, &call->req, &berr);
  if (refused_body(s, c, rq, st, &berr, call->req.site, site, &ok)) {
    free(call);
    return ok;
  }
  call->site = site;
  fresh_salt(call->fresh);
  return queue_call(s, c, rq, call, lw_referrer_call, answer_referrer);
}

static void run_reviews(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_reviews_answer(s->store, rq->read_site->id, &rq->read_json, rq->read_err,
                                      sizeof rq->read_err);
}

static enum MHD_Result handle_reviews(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  enum MHD_Result refused;
  if (!read_route(s, c, rq, &rq->read_site, &refused)) return refused;
  return queue_read(s, c, rq, run_reviews);
}

static enum MHD_Result answer_review(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  const lw_review_call_t *call = rq->call;
  if (call->result == 1)
    return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "no such report on this site", "id", 0});
  if (call->result == 2)
    return refuse(s, c, rq, (lw_refusal){409, LW_REJECT_INVALID, "this report is not waiting for review", "id", 0});
  char body[96];
  snprintf(body, sizeof body, "{\"id\":%lld,\"state\":\"%s\"}", (long long)call->id,
           call->approve ? "approved" : "rejected");
  return respond_json(s, c, rq, 200, body);
}

/* A review of site's report: the id from the path, the decision from the body, queued as the
 * store's call (the review API's and the console's, each with its own answer). */
static enum MHD_Result queue_review(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq,
                                    const lw_ingest_site *site, const char *who,
                                    enum MHD_Result (*answer)(lw_ingest_server *, struct MHD_Connection *,
                                                              lw_request *)) {
  long long id = path_id(rq);
  if (id <= 0)
    return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, "expected a report id, a positive integer", "id", 0});
  lw_review_call_t *call = calloc(1, sizeof *call);
  if (!call) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  lw_batch_error berr;
  lw_status st = lw_review_parse(rq->body ? rq->body : "", rq->len, &call->approve, &berr);
  if (st != LW_OK) {
    free(call);
    return refuse_body(s, c, rq, st, &berr);
  }
  call->site = site;
  call->id = id;
  call->now_ms = lw_wall_ms();
  snprintf(call->who, sizeof call->who, "%s", who);
  return queue_call(s, c, rq, call, lw_review_call, answer);
}

/* POST /v1/reviews/<id>[?site=]: {"decision":"approve"|"reject"}, read-protected. */
static enum MHD_Result handle_review(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  const lw_ingest_site *site;
  enum MHD_Result refused;
  if (!read_route(s, c, rq, &site, &refused)) return refused;
  return queue_review(s, c, rq, site, LW_ACTOR_REVIEW_API, answer_review);
}

/* The console's handlers: part of this file (they use its static helpers), kept apart. */
#include "console_http.c"
#include "approvals_http.c"
#include "fairness_http.c"

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

/* First callback of a request: only headers are known. Everything that can be refused without
 * the body is refused here, so an oversized or abusive request is never read. */
static enum MHD_Result on_headers(lw_ingest_server *s, struct MHD_Connection *c,
                                  lw_request *rq) {
  if (rq->route && (rq->route->flags & ROUTE_BROWSER)) {
    /* Until a write key says which site, echo the Origin only if some site allows it, so a
     * browser can read why its request was refused. */
    const char *origin = header(c, "Origin");
    rq->cors = origin && any_site_allows(s->cfg, origin) ? origin : NULL;
  }
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
  if (why) return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_HTTP, why, NULL, 0});
  if (rq->op == OP_NOT_FOUND)
    return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "not found", NULL, 0});
  if (rq->op == OP_BAD_METHOD)
    return refuse(s, c, rq, (lw_refusal){405, LW_REJECT_METHOD, "method not allowed", NULL, 0});
  if (s->rl_address && (rq->route->flags & ROUTE_BROWSER)) {
    unsigned char addr[16];
    int retry;
    size_t n = one_client(client_key(s, c, addr)); /* behind a trusted proxy: the forwarded one */
    if (n && !lw_ratelimit_take(s->rl_address, addr, n, lw_mono_us() / 1000, &retry))
      return refuse(s, c, rq, (lw_refusal){429, LW_REJECT_RATE_ADDRESS, "rate limit exceeded",
                                           NULL, retry});
  }
  if (rq->op == OP_PREFLIGHT) return handle_preflight(s, c, rq);
  if (rq->route->flags & ROUTE_BODY) {
    const char *cl = header(c, "Content-Length");
    if (cl) {
      char *end;
      unsigned long long n = strtoull(cl, &end, 10);
      if (*end || n > (unsigned long long)s->cfg->max_body)
        return refuse(s, c, rq, (lw_refusal){413, LW_REJECT_TOO_LARGE, "body too large", NULL, 0});
      /* Size the buffer for the announced body, but never more than 64 KiB before the bytes
       * arrive: a client announcing a large body and sending nothing must not cost memory. */
      rq->cap = (size_t)n + 1 < 65536 ? (size_t)n + 1 : 65536;
      if (!budget_take(s, rq, rq->cap))
        return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_BODY_BUDGET, "server busy, retry later", NULL, 1});
      rq->body = malloc(rq->cap);
      if (!rq->body) return drop(s, rq, LW_REJECT_STORE);
    }
    return MHD_YES; /* wait for the body */
  }
  return rq->route->handler(s, c, rq);
}

/* 1: appended; 0: past max_body; -1: past the body budget (the connection is closed). */
static int append_body(lw_ingest_server *s, lw_request *rq, const char *data, size_t n) {
  if (rq->len + n > (size_t)s->cfg->max_body) return 0;
  if (rq->len + n + 1 > rq->cap) {
    size_t cap = rq->cap ? rq->cap : 4096;
    while (cap < rq->len + n + 1) cap *= 2;
    if (cap > (size_t)s->cfg->max_body + 1) cap = (size_t)s->cfg->max_body + 1;
    if (!budget_take(s, rq, cap - rq->cap)) return -1;
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
    rq->op = route_of(method, url, &rq->route);
    rq->path = url;
    if ((rq->cn = conn_of(c))) { /* the headers are complete: out of the sweeper's reach */
      pthread_mutex_lock(&s->conns.lock);
      rq->cn->in_headers = 0;
      pthread_mutex_unlock(&s->conns.lock);
    }
    return on_headers(s, c, rq);
  }
  if (*upload_size) {
    /* The idle timeout resets on every byte, so a client trickling its body would never hit
     * it; a whole request gets request_timeout_s at most. */
    if (lw_mono_us() - rq->start_us > s->cfg->request_timeout_s * 1000000)
      return drop(s, rq, LW_REJECT_HTTP); /* closes the connection */
    int appended = rq->too_large ? 0 : append_body(s, rq, upload, *upload_size);
    if (appended < 0) return drop(s, rq, LW_REJECT_BODY_BUDGET);
    if (!rq->too_large && !appended) {
      /* A chunked body grew past the limit. libmicrohttpd (0.9.75) cannot queue an answer in
       * the middle of a body, so the rest is read and dropped and 413 goes out at its end;
       * past four times the limit the connection is simply closed. */
      rq->too_large = 1;
      free_body(s, rq);
    }
    if (rq->too_large) {
      rq->dropped += *upload_size;
      if (rq->dropped > 4 * (size_t)s->cfg->max_body) return drop(s, rq, LW_REJECT_TOO_LARGE);
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (rq->queued) return answer_job(s, c, rq); /* resumed by the writer */
  if (rq->reading) return answer_read(s, c, rq); /* resumed by a read thread */
  if (rq->too_large)
    return refuse(s, c, rq, (lw_refusal){413, LW_REJECT_TOO_LARGE, "body too large", NULL, 0});
  return rq->route->handler(s, c, rq); /* a body route, its body complete */
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  lw_ingest_server *s = cls;
  lw_request *rq = *con_cls;
  (void)toe;
  if (!rq) return;
  lw_batch_free(rq->batch);
  free_body(s, rq);
  free(rq->call);
  free(rq->read_json);
  if (rq->cn) { /* a keep-alive connection waits for its next request's headers from now */
    pthread_mutex_lock(&s->conns.lock);
    rq->cn->in_headers = 1;
    rq->cn->queued = 0;
    rq->cn->phase_start_us = lw_mono_us();
    pthread_mutex_unlock(&s->conns.lock);
  }
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

/* Start the sweeper and the read threads. */
static lw_status start_threads(lw_ingest_server *s, char *err, size_t errlen) {
  int rc = pthread_create(&s->conns.sweeper, NULL, sweeper_main, s);
  if (rc == 0) s->conns.started = 1;
  for (int i = 0; rc == 0 && i < READ_THREADS; i++)
    if ((rc = pthread_create(&s->reads.threads[i], NULL, read_main, s)) == 0) s->reads.n_threads++;
  if (rc != 0) {
    snprintf(err, errlen, "starting a thread: %s", strerror(rc));
    return LW_ERR_IO;
  }
  return LW_OK;
}

static void stop_threads(lw_ingest_server *s) {
  pthread_mutex_lock(&s->reads.lock);
  s->reads.stopping = 1;
  pthread_cond_broadcast(&s->reads.work);
  pthread_mutex_unlock(&s->reads.lock);
  for (int i = 0; i < s->reads.n_threads; i++) pthread_join(s->reads.threads[i], NULL);
  s->reads.n_threads = 0;
  if (s->conns.started) {
    pthread_mutex_lock(&s->conns.lock);
    s->conns.stopping = 1;
    pthread_cond_signal(&s->conns.wake);
    pthread_mutex_unlock(&s->conns.lock);
    pthread_join(s->conns.sweeper, NULL);
    s->conns.started = 0;
  }
}

static void free_parts(lw_ingest_server *s) {
  lw_webhook_stop(s->webhook); /* before the writer its store calls go through */
  s->webhook = NULL;
  stop_threads(s);
  pthread_mutex_destroy(&s->conns.lock);
  pthread_cond_destroy(&s->conns.wake);
  pthread_mutex_destroy(&s->reads.lock);
  pthread_cond_destroy(&s->reads.work);
  lw_writer_free(s->writer);
  lw_store_free(s->store);
  lw_console_free(s->console);
  lw_ratelimit_free(s->rl_address);
  lw_ratelimit_free(s->rl_key);
  free(s);
}

lw_status lw_ingest_server_start(const lw_ingest_config *cfg, lw_ingest_server **out,
                                 char *err, size_t errlen) {
  lw_store *store;
  *out = NULL;
  lw_status st = lw_store_open(cfg->db, &store, err, errlen); /* SQLite file or postgres:// */
  if (st != LW_OK) return st;
  return lw_ingest_server_start_with_store(cfg, store, out, err, errlen);
}

lw_status lw_ingest_server_start_with_store(const lw_ingest_config *cfg, lw_store *store,
                                            lw_ingest_server **out, char *err, size_t errlen) {
  *out = NULL;
  if (cfg->n_sites == 0) {
    lw_store_free(store);
    snprintf(err, errlen, "no sites configured (call lw_ingest_config_finish)");
    return LW_ERR_INVALID;
  }
  lw_ingest_server *s = calloc(1, sizeof *s);
  if (!s) {
    lw_store_free(store);
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  s->store = store; /* from here free_parts closes it */
  s->cfg = cfg;
  pthread_mutex_init(&s->conns.lock, NULL);
  pthread_cond_init(&s->conns.wake, NULL);
  pthread_mutex_init(&s->reads.lock, NULL);
  pthread_cond_init(&s->reads.work, NULL);
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
    free_parts(s);
    snprintf(err, errlen, "bind: '%s' is not an IPv4 or IPv6 address", bind);
    return LW_ERR_INVALID;
  }

  lw_status st;
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)lw_mono_us();
  s->conns.seed = seed ^ 0x2545f4914f6cdd1dULL;
  if (cfg->rate_limit &&
      (lw_ratelimit_create(cfg->rate_per_address, cfg->burst_per_address, 65536, seed,
                           &s->rl_address) != LW_OK ||
       lw_ratelimit_create(cfg->rate_per_key, cfg->burst_per_key, 1024, seed ^ 0x9e3779b97f4a7c15ULL,
                           &s->rl_key) != LW_OK)) {
    free_parts(s);
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  /* The fairness page's segments, kept by the writer from here (a store with them recomputes its
   * rollups once when the console config names other ones; one without: the page walks). */
  lw_fairness_spec fairness;
  lw_console_fairness_spec(cfg->console_config, &fairness);
  st = lw_store_set_fairness(s->store, &fairness, err, errlen);
  if (st != LW_OK && st != LW_ERR_INVALID) {
    free_parts(s);
    return st;
  }
  lw_writer_config wc = {(size_t)cfg->max_group, (int64_t)(cfg->retention_days * 86400000.0),
                         cfg->purge_interval_s * 1000};
  if ((st = lw_writer_create(s->store, &wc, &s->metrics, &s->log, &s->writer, err,
                             errlen)) != LW_OK) {
    free_parts(s);
    return st;
  }
  uint8_t fresh[32];
  if (getrandom(fresh, sizeof fresh, 0) != (ssize_t)sizeof fresh) {
    free_parts(s);
    snprintf(err, errlen, "no randomness for the console's key");
    return LW_ERR_IO;
  }
  if ((st = lw_console_create(cfg, fresh, &s->console, err, errlen)) != LW_OK) {
    free_parts(s);
    return st;
  }
  if (!lw_console_has_users(s->console) && lw_console_assets_error(s->console)[0])
    lw_log_msg(&s->log, LW_LOG_INFO, "console page not served", lw_console_assets_error(s->console));
  if ((st = lw_webhook_start(cfg, s->writer, &s->log, &s->webhook, err, errlen)) != LW_OK) {
    free_parts(s);
    return st;
  }
  if ((st = start_threads(s, err, errlen)) != LW_OK) {
    free_parts(s);
    return st;
  }

  s->daemon = MHD_start_daemon(
      flags, (uint16_t)cfg->port, on_accept, s, /* per-address connection cap, IPv6 by /64 */
      on_request, s,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
      MHD_OPTION_SOCK_ADDR, &addr.sa,
      MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
      MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->timeout_s,
      /* the library splits its limit between its threads: ours (make_room) is the real one */
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections * threads + CONNECTION_HEADROOM,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
      /* A connection's memory pool holds its headers and read buffer (the body is copied out,
       * append_body). libmicrohttpd 0.9.75 zeroes the whole pool between the requests of a
       * keep-alive connection: at the default 32 KiB that memset was 3.5% of the server's CPU
       * per batch. 20 KiB still holds 8 KiB of headers request after request (16 KiB did not: the
       * library then closes the keep-alive connection). */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_POOL_BYTES,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_END);
  if (!s->daemon) {
    free_parts(s);
    snprintf(err, errlen, "could not listen on %s port %d", bind, cfg->port);
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
  stop_threads(s); /* a queued read is answered before its thread ends */
  MHD_stop_daemon(s->daemon);
  if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
  free_parts(s); /* the writer finishes its queue, then the store closes (WAL checkpoint) */
}
