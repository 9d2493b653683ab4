/* loopwise/ingest.h: the ingest server (loopwise-ingest) as a library: its configuration and
 * a start/stop pair, so tests and the command-line front end drive the same code.
 *
 * Settings come from one table: each has a config-file key ("max_body"), a flag
 * ("--max-body") and an environment variable ("LW_INGEST_MAX_BODY"). Precedence: built-in
 * defaults, then the config file, then the environment, then flags. Sites (write keys and
 * their allowed browser Origins) come only from the config file; without one, the built-in
 * site "default" has write key "demo-site-key" and allows loopback Origins. */
#ifndef LOOPWISE_INGEST_H
#define LOOPWISE_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loopwise/common.h"
#include "loopwise/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char *id;           /* [A-Za-z0-9_-]{1,32}; the store keys everything by it */
  char *write_key;    /* public: it is in every page that embeds the widget */
  char **origins;     /* "https://app.example.com", or "http://localhost:*" for any port */
  size_t n_origins;
  /* The trust block (README "Rewards nobody can forge"): the secret keys the host's backend
   * reports referees with (POST /v1/referees; two so one can be rotated in while the other is
   * retired; none: the site takes no referee reports) and the integrity rules that decide
   * whether a reported conversion counts. */
  char *secret_keys[2];
  size_t n_secret_keys;
  lw_integrity_rules integrity;
} lw_ingest_site;

/* An address or network (CIDR) of a trusted reverse proxy: family AF_INET or AF_INET6, the
 * address bytes and the prefix length in bits. */
typedef struct {
  int family;
  unsigned char addr[16];
  unsigned prefix;
} lw_ingest_net;

typedef struct {
  char *db;                    /* SQLite file (required) */
  char *bind;                  /* listen address, IPv4 or IPv6 literal; default 127.0.0.1 */
  int port;                    /* 0: any free port (the "listening" log line says which) */
  char *read_token;            /* NULL: stats and metrics answer loopback clients only */
  int64_t max_body;            /* bytes; larger bodies get 413 before being read */
  int64_t max_events;          /* per batch */
  int64_t max_future_s;        /* how far ahead of the server clock an event time may be */
  int64_t timeout_s;           /* a connection idle (or trickling) this long is closed */
  int64_t request_timeout_s;    /* a request whose body is still arriving after this is dropped */
  int64_t max_connections;
  int64_t threads;             /* HTTP threads (epoll); 0: one per CPU, at least 2 */
  int64_t max_connections_per_address;  /* 0: no limit (e.g. behind a load balancer) */
  int rate_limit;              /* 0: off */
  double rate_per_address, burst_per_address;   /* requests/s and bucket size */
  double rate_per_key, burst_per_key;
  int64_t k_anonymity;         /* stats hide rows with fewer distinct installs */
  double retention_days;       /* by receive time; 0: keep forever */
  int64_t purge_interval_s;
  int64_t max_group;           /* most batches in one commit */
  int64_t drain_timeout_s;     /* SIGTERM: how long to wait for in-flight requests */
  char *log_level;             /* debug, info, warn, error, off */
  char *models_dir;            /* <dir>/<site id>/current.lwm served at GET /v1/model; NULL: none */
  lw_ingest_site *sites;
  size_t n_sites;
  /* Slow clients and exposure (issue 12, section 4). */
  int64_t header_timeout_s;    /* a request whose headers are not complete by then is closed */
  int64_t body_budget;         /* bytes all bodies being received may hold together */
  int64_t stats_max_codes;     /* most code rows in one /v1/stats answer */
  int64_t read_connections;    /* the store's read connections (stats, referrals, attributions) */
  char *trusted_proxies;       /* "10.0.0.1, 192.0.2.0/24, ::1": may set the client address */
  lw_ingest_net *proxies;      /* trusted_proxies parsed by lw_ingest_config_finish */
  size_t n_proxies;
  /* The product manager's console (issue 15, README "The console"). */
  char *console_users;         /* "name:pbkdf2-sha256$iter$salt$hash, ...": NULL: loopback only */
  char *console_secret;        /* HMAC key of session cookies, shared by the replicas */
  char *console_assets;        /* directory of the built console (web/console/dist) */
  int64_t console_session_s;   /* how long a login lasts */
  char *console_config;        /* the product config (models/referral.json) the console shows */
  int64_t approval_days;       /* an approval request expires this many days after it arrived */
  /* Webhooks for approved conversions (README "Webhooks"). */
  char *webhook_url;           /* http(s) URL the host's backend receives them at; NULL: none */
  char *webhook_secret;        /* HMAC-SHA-256 key of their signature */
  int64_t webhook_retry_s;     /* the first retry's delay; each next one doubles (at most 6 h) */
  int64_t webhook_max_age_s;   /* retried this long, then marked failed */
  int64_t webhook_lease_s;     /* a claimed delivery is this replica's for this long */
  int64_t webhook_poll_ms;     /* how often the sender looks for due deliveries */
  int64_t webhook_timeout_s;   /* one attempt's time limit (below the lease) */
} lw_ingest_config;

/* Fill cfg with the built-in defaults (no sites yet). Clear it with lw_ingest_config_clear. */
void lw_ingest_config_init(lw_ingest_config *cfg);

/* Free everything cfg owns and leave it zeroed. */
void lw_ingest_config_clear(lw_ingest_config *cfg);

/* Set one setting by its config-file key or flag name ("max_body" or "max-body") from text.
 * LW_ERR_NOT_FOUND for an unknown name, LW_ERR_INVALID for a bad value. */
lw_status lw_ingest_config_set(lw_ingest_config *cfg, const char *name, const char *value,
                               char *err, size_t errlen);

/* Apply every LW_INGEST_* variable of the environment (envp as in main; NULL-terminated). */
lw_status lw_ingest_config_apply_env(lw_ingest_config *cfg, char **envp, char *err, size_t errlen);

/* Read a JSON config file: the settings by key, plus "sites": [{"id", "write_key",
 * "origins": [...]}]. Unknown keys are refused, naming them. */
lw_status lw_ingest_config_load_file(lw_ingest_config *cfg, const char *path, char *err, size_t errlen);

/* Check the whole config; adds the built-in default site when there are no sites. */
lw_status lw_ingest_config_finish(lw_ingest_config *cfg, char *err, size_t errlen);

/* A site's integrity rules before its config says otherwise: self-referrals and a referee's
 * second reward rejected, more than 100 conversions of one code in a day flagged for review. */
lw_integrity_rules lw_integrity_defaults(void);

/* 1 when the address (4 bytes for IPv4, 16 for IPv6) is in one of the networks. */
int lw_ingest_net_contains(const lw_ingest_net *nets, size_t n, const unsigned char *addr,
                           size_t len);

/* Print the settings table (flag, environment variable, default, meaning) for --help. */
void lw_ingest_config_usage(FILE *out);

/* 1 when origin matches pattern ("scheme://host" exactly, or "scheme://host:*" for the host
 * with any port or none). */
int lw_origin_matches(const char *pattern, const char *origin);

typedef struct lw_ingest_server lw_ingest_server;

/* Open the store (migrating it), start the writer and the HTTP daemon. cfg is borrowed and
 * must outlive the server. On LW_OK *out is running. */
lw_status lw_ingest_server_start(const lw_ingest_config *cfg, lw_ingest_server **out,
                                 char *err, size_t errlen);

/* The same over a store the caller opened (a test wraps one in a fault-injecting backend,
 * loopwise/store.h). The server owns store from this call on, also when it fails. */
typedef struct lw_store lw_store;
lw_status lw_ingest_server_start_with_store(const lw_ingest_config *cfg, lw_store *store,
                                            lw_ingest_server **out, char *err, size_t errlen);

/* The TCP port the server listens on (useful with port 0). */
int lw_ingest_server_port(const lw_ingest_server *s);

/* Graceful stop: stop accepting, wait up to drain_timeout_s for in-flight requests, stop the
 * daemon, finish queued writes, close the store. Frees s. NULL is fine. */
void lw_ingest_server_stop(lw_ingest_server *s);

#ifdef __cplusplus
}
#endif
#endif
