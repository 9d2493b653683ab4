/* console.h: the product manager's console (GET /console, README "The console"), without the
 * HTTP library: its users and their passwords, signed session cookies and CSRF tokens, the
 * built page's files, and the report it shows, computed from the store's read API. server.c
 * does the HTTP part (routes, the read threads, the writer). Internal to loopwise-ingest. */
#ifndef LW_INGEST_CONSOLE_H
#define LW_INGEST_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/common.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"

#define LW_CONSOLE_USER_MAX 32    /* [A-Za-z0-9_-]{1,32} */
#define LW_CONSOLE_COOKIE "lw_console"
#define LW_CONSOLE_COOKIE_MAX 160 /* name.expires.64 hex */
#define LW_CONSOLE_CSRF_LEN 64    /* hex of an HMAC-SHA-256 */

/* Check the console settings of cfg (called by lw_ingest_config_finish): every user parses,
 * a secret of at least 32 characters when there are users. */
lw_status lw_console_check_config(const lw_ingest_config *cfg, char *err, size_t errlen);

typedef struct lw_console lw_console;

/* Build the console from cfg (which must outlive it): its users, its assets (read once from
 * cfg->console_assets; a missing directory leaves the page answering 503, the API working) and
 * its key (cfg->console_secret, else the 32 random bytes fresh: sessions then last as long as
 * the process, and only loopback clients are served anyway). *out is freed with
 * lw_console_free. */
lw_status lw_console_create(const lw_ingest_config *cfg, const uint8_t fresh[32], lw_console **out,
                            char *err, size_t errlen);
void lw_console_free(lw_console *c); /* NULL is fine */

/* 1 when users are configured (sessions required), 0 when the console is loopback-only. */
int lw_console_has_users(const lw_console *c);

/* A built file of the page by its URL path ("/console", "/console/console.js", ...): NULL when
 * there is none. *type is its Content-Type. The bytes belong to c. */
const char *lw_console_asset(const lw_console *c, const char *path, size_t *len, const char **type);
/* Why the assets are missing ("" when they are loaded). */
const char *lw_console_assets_error(const lw_console *c);

/* Check name and password (PBKDF2-SHA-256, constant time in the hash) and, on success, write
 * the session cookie's value (valid until now_ms + console_session_s) into cookie. 1: logged in;
 * 0: refused (unknown name or wrong password: the same answer). Slow by design: call it off
 * the HTTP threads. */
int lw_console_login(const lw_console *c, const char *name, const char *password, int64_t now_ms,
                     char cookie[LW_CONSOLE_COOKIE_MAX]);
/* The user of a session cookie value (its signature checked in constant time, not expired at
 * now_ms, the user still configured): 1 and user filled, else 0. */
int lw_console_session(const lw_console *c, const char *cookie, int64_t now_ms,
                       char user[LW_CONSOLE_USER_MAX + 1]);
/* The CSRF token of a session (cookie value, or "" for the loopback console): an HMAC of it,
 * so every replica computes the same one and a page of another origin cannot read it. */
void lw_console_csrf(const lw_console *c, const char *cookie, char out[LW_CONSOLE_CSRF_LEN + 1]);
int lw_console_csrf_ok(const lw_console *c, const char *cookie, const char *token);

/* The report of one site (README "The console"): the funnel per variant, segment, mode and
 * week with 95% Wilson intervals, costs and value, learning against holdout and rules
 * (Newcombe's interval of the difference), the model history and the config in force.
 * table NULL: *out is JSON; else the CSV of that table ("variants", "segments", "modes",
 * "weeks"). Returns the HTTP status (200; 404 for an unknown table; 503 with err when the
 * store fails); *out is the caller's to free(). */
unsigned lw_console_report(const lw_console *c, lw_store *store, const char *site,
                           const char *table, int64_t now_ms, char **out, char *err, size_t errlen);

/* The fairness audit of one site (README "The console", the fairness page): per value of the
 * product config's fairness attribute, loopwise/audit.h's rates (exposure, share, conversion)
 * with their 95% Wilson intervals, ratios to the best value and flags, over every decision of
 * the site. csv 0: *out is JSON; 1: the same rows as CSV. Returns the HTTP status (200; 503 with
 * err when the store fails); *out is the caller's to free(). */
unsigned lw_console_fairness(const lw_ingest_config *cfg, lw_store *store, const char *site, int csv,
                             char **out, char *err, size_t errlen);

/* The fairness audit's segments from the product config at console_config (its
 * fairness.attribute and that attribute's values; none without them): what the page compares
 * and what the server asks the store to keep rollups for (lw_store_set_fairness). */
void lw_console_fairness_spec(const char *console_config, lw_fairness_spec *spec);

/* The product config (console_config) as JSON, NULL without one or when it does not parse;
 * the caller cJSON_Delete()s it. */
struct cJSON;
struct cJSON *lw_console_product_config(const char *path);

/* The 95% Wilson score interval of k successes in n trials (n 0: [0, 1]). */
void lw_wilson(int64_t k, int64_t n, double *lo, double *hi);

#endif
