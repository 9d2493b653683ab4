/* console.c: the product manager's console without HTTP (console.h).
 *
 * Users come from console_users ("name:pbkdf2-sha256$iterations$salt$hash", salt and hash in
 * base64), checked with nettle's PBKDF2-HMAC-SHA-256. A session is a cookie value
 * "<user>.<expires s>.<hex HMAC-SHA-256(secret, user.expires)>": nothing is kept server-side,
 * so any replica with the same console_secret accepts it. The CSRF token is an HMAC of that
 * value under another label; the page reads it from GET /console/api/session (same origin, no
 * CORS headers) and sends it in X-Loopwise-CSRF with every write.
 *
 * The report is the learning tools' view of the data: a decision's referee outcomes are those
 * its shares brought (store.h "reading decisions"). With a store that keeps the whole funnel
 * (SQLite schema 11, PostgreSQL 4: lw_store_funnel_outcomes) it reads only rollup rows: every stage and referee total
 * per day, action, segment and mode, and the converted decisions' values in decision order (so
 * the floating sums are the walk's to the last bit). With one that keeps only the decisions and
 * prompts per day (lw_store_funnel_days) it walks the shared decisions for the later stages
 * (every later stage needs a share); otherwise it walks every decision once
 * (lw_store_decisions). All give the same numbers (tests/ingest/test_rollups.c,
 * tests/ingest/console.test.mjs). */
#include "console.h"

#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/pbkdf2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loopwise/json.h"

#define PBKDF2_MIN_ITER 1000
#define PBKDF2_MAX_ITER 10000000
#define HASH_MAX 64

typedef struct {
  char name[LW_CONSOLE_USER_MAX + 1];
  unsigned iterations;
  uint8_t salt[64];
  size_t salt_len;
  uint8_t hash[HASH_MAX];
  size_t hash_len;
} user;

typedef struct {
  const char *path, *file, *type;
  char *body;
  size_t len;
} asset;

struct lw_console {
  const lw_ingest_config *cfg;
  user *users;
  size_t n_users;
  uint8_t key[64];
  size_t key_len;
  asset assets[3];
  char assets_error[256];
};

/* ---------------------------------------------------------------- users */

static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > LW_CONSOLE_USER_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
  return 1;
}

static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len) {
  struct base64_decode_ctx ctx;
  base64_decode_init(&ctx);
  if (BASE64_DECODE_LENGTH(n) > cap) return 0;
  size_t got = cap;
  if (!base64_decode_update(&ctx, &got, out, n, s) || !base64_decode_final(&ctx)) return 0;
  *len = got;
  return 1;
}

/* One "name:pbkdf2-sha256$iter$salt$hash" of length n at s. */
static int parse_user(const char *s, size_t n, user *u, char *why, size_t whylen) {
  const char *colon = memchr(s, ':', n);
  if (!colon || !valid_name(s, (size_t)(colon - s))) {
    snprintf(why, whylen, "expected name:hash with a name of 1-%d of [A-Za-z0-9_-]", LW_CONSOLE_USER_MAX);
    return 0;
  }
  memset(u, 0, sizeof *u);
  memcpy(u->name, s, (size_t)(colon - s));
  const char *h = colon + 1, *end = s + n;
  const char *prefix = "pbkdf2-sha256$";
  if ((size_t)(end - h) < strlen(prefix) || strncmp(h, prefix, strlen(prefix)) != 0) {
    snprintf(why, whylen, "user %s: expected pbkdf2-sha256$iterations$salt$hash", u->name);
    return 0;
  }
  h += strlen(prefix);
  char *stop;
  unsigned long iter = strtoul(h, &stop, 10);
  const char *d1 = stop, *d2 = d1 < end && *d1 == '$' ? memchr(d1 + 1, '$', (size_t)(end - d1 - 1)) : NULL;
  if (stop == h || iter < PBKDF2_MIN_ITER || iter > PBKDF2_MAX_ITER || !d2) {
    snprintf(why, whylen, "user %s: expected pbkdf2-sha256$iterations$salt$hash with %d-%d iterations",
             u->name, PBKDF2_MIN_ITER, PBKDF2_MAX_ITER);
    return 0;
  }
  u->iterations = (unsigned)iter;
  if (!b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), u->salt, sizeof u->salt, &u->salt_len) ||
      u->salt_len < 8 ||
      !b64_decode(d2 + 1, (size_t)(end - d2 - 1), u->hash, sizeof u->hash, &u->hash_len) ||
      u->hash_len < 16) {
    snprintf(why, whylen, "user %s: salt (8-64 bytes) and hash (16-64 bytes) must be base64", u->name);
    return 0;
  }
  return 1;
}

/* Parse the comma-separated list; users NULL only counts and checks. */
static int parse_users(const char *list, user *users, size_t *n, char *why, size_t whylen) {
  *n = 0;
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    const char *q = p;
    while (*q && *q != ',' && *q != ' ') q++;
    user u;
    if (!parse_user(p, (size_t)(q - p), &u, why, whylen)) return 0;
    if (users) {
      for (size_t i = 0; i < *n; i++)
        if (!strcmp(users[i].name, u.name)) {
          snprintf(why, whylen, "user %s appears twice", u.name);
          return 0;
        }
      users[*n] = u;
    }
    (*n)++;
    p = q;
  }
  return 1;
}

lw_status lw_console_check_config(const lw_ingest_config *cfg, char *err, size_t errlen) {
  char why[160];
  size_t n = 0;
  if (cfg->console_users && !parse_users(cfg->console_users, NULL, &n, why, sizeof why)) {
    snprintf(err, errlen, "console_users: %s", why);
    return LW_ERR_INVALID;
  }
  if (n && (!cfg->console_secret || strlen(cfg->console_secret) < 32)) {
    snprintf(err, errlen, "console_secret: required with console_users, at least 32 characters "
                          "(the same on every replica)");
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

/* ---------------------------------------------------------------- assets */

static void load_assets(lw_console *c) {
  static const asset table[] = {
      {"/console", "index.html", "text/html; charset=utf-8", NULL, 0},
      {"/console/console.js", "console.js", "text/javascript; charset=utf-8", NULL, 0},
      {"/console/console.css", "console.css", "text/css; charset=utf-8", NULL, 0},
  };
  memcpy(c->assets, table, sizeof table);
  const char *dir = c->cfg->console_assets;
  if (!dir) {
    snprintf(c->assets_error, sizeof c->assets_error, "console_assets is not set");
    return;
  }
  for (size_t i = 0; i < 3; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, c->assets[i].file);
    FILE *f = fopen(path, "rb");
    if (!f) {
      snprintf(c->assets_error, sizeof c->assets_error,
               "%.200s: %s (build it: node web/console/build.mjs)", path, strerror(errno));
      return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *body = size >= 0 && size < (8L << 20) ? malloc((size_t)size + 1) : NULL;
    size_t got = body ? fread(body, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!body || got != (size_t)size) {
      free(body);
      snprintf(c->assets_error, sizeof c->assets_error, "%.200s: unreadable", path);
      return;
    }
    c->assets[i].body = body;
    c->assets[i].len = got;
  }
}

const char *lw_console_asset(const lw_console *c, const char *path, size_t *len, const char **type) {
  if (c->assets_error[0]) return NULL;
  for (size_t i = 0; i < 3; i++)
    if (!strcmp(path, c->assets[i].path) ||
        (i == 0 && !strcmp(path, "/console/"))) {
      *len = c->assets[i].len;
      *type = c->assets[i].type;
      return c->assets[i].body;
    }
  return NULL;
}

const char *lw_console_assets_error(const lw_console *c) { return c->assets_error; }

lw_status lw_console_create(const lw_ingest_config *cfg, const uint8_t fresh[32], lw_console **out,
                            char *err, size_t errlen) {
  lw_console *c = calloc(1, sizeof *c);
  if (!c) goto nomem;
  c->cfg = cfg;
  char why[160];
  size_t n = 0;
  if (cfg->console_users && !parse_users(cfg->console_users, NULL, &n, why, sizeof why)) {
    snprintf(err, errlen, "console_users: %s", why);
    free(c);
    return LW_ERR_INVALID;
  }
  if (n) {
    c->users = calloc(n, sizeof *c->users);
    if (!c->users) goto nomem;
    parse_users(cfg->console_users, c->users, &c->n_users, why, sizeof why);
  }
  if (cfg->console_secret) {
    size_t k = strlen(cfg->console_secret);
    if (k > sizeof c->key) k = sizeof c->key; /* HMAC hashes longer keys down anyway */
    memcpy(c->key, cfg->console_secret, k);
    c->key_len = k;
  } else {
    memcpy(c->key, fresh, 32);
    c->key_len = 32;
  }
  load_assets(c);
  *out = c;
  return LW_OK;
nomem:
  if (c) free(c->users);
  free(c);
  snprintf(err, errlen, "out of memory");
  return LW_ERR_NOMEM;
}

void lw_console_free(lw_console *c) {
  if (!c) return;
  for (size_t i = 0; i < 3; i++) free(c->assets[i].body);
  free(c->users);
  free(c);
}

int lw_console_has_users(const lw_console *c) { return c->n_users > 0; }

/* ---------------------------------------------------------------- sessions */

static void mac_hex(const lw_console *c, const char *label, const char *text, char out[65]) {
  struct hmac_sha256_ctx h;
  uint8_t d[SHA256_DIGEST_SIZE];
  hmac_sha256_set_key(&h, c->key_len, c->key);
  hmac_sha256_update(&h, strlen(label) + 1, (const uint8_t *)label); /* the NUL separates */
  hmac_sha256_update(&h, strlen(text), (const uint8_t *)text);
  hmac_sha256_digest(&h, sizeof d, d);
  for (size_t i = 0; i < sizeof d; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int same(const char *a, const char *b, size_t n) {
  unsigned char diff = 0;
  for (size_t i = 0; i < n; i++) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

int lw_console_login(const lw_console *c, const char *name, const char *password, int64_t now_ms,
                     char cookie[LW_CONSOLE_COOKIE_MAX]) {
  const user *u = NULL;
  for (size_t i = 0; i < c->n_users; i++)
    if (!strcmp(c->users[i].name, name)) u = &c->users[i];
  /* An unknown name costs the same PBKDF2 as a known one, so timing does not tell names. */
  static const user nobody = {.name = "", .iterations = 100000, .salt_len = 16, .hash_len = 32};
  const user *check = u ? u : &nobody;
  uint8_t got[HASH_MAX];
  pbkdf2_hmac_sha256(strlen(password), (const uint8_t *)password, check->iterations,
                     check->salt_len, check->salt, check->hash_len, got);
  unsigned char diff = 0;
  for (size_t i = 0; i < check->hash_len; i++) diff |= (unsigned char)(got[i] ^ check->hash[i]);
  if (!u || diff) return 0;
  char text[LW_CONSOLE_USER_MAX + 24], mac[65];
  snprintf(text, sizeof text, "%s.%lld", u->name,
           (long long)(now_ms / 1000 + c->cfg->console_session_s));
  mac_hex(c, "lw-console-session", text, mac);
  snprintf(cookie, LW_CONSOLE_COOKIE_MAX, "%s.%s", text, mac);
  return 1;
}

int lw_console_session(const lw_console *c, const char *cookie, int64_t now_ms,
                       char user_out[LW_CONSOLE_USER_MAX + 1]) {
  if (!cookie) return 0;
  size_t n = strlen(cookie);
  const char *last = strrchr(cookie, '.');
  if (n >= LW_CONSOLE_COOKIE_MAX || !last || strlen(last + 1) != 64) return 0;
  char text[LW_CONSOLE_COOKIE_MAX], mac[65];
  memcpy(text, cookie, (size_t)(last - cookie));
  text[last - cookie] = '\0';
  mac_hex(c, "lw-console-session", text, mac);
  if (!same(mac, last + 1, 64)) return 0;
  char *dot = strchr(text, '.');
  if (!dot) return 0;
  *dot = '\0';
  long long expires = strtoll(dot + 1, NULL, 10);
  if (expires * 1000 <= now_ms) return 0;
  for (size_t i = 0; i < c->n_users; i++)
    if (!strcmp(c->users[i].name, text)) {
      memcpy(user_out, c->users[i].name, sizeof c->users[i].name);
      return 1;
    }
  return 0;
}

void lw_console_csrf(const lw_console *c, const char *cookie, char out[LW_CONSOLE_CSRF_LEN + 1]) {
  mac_hex(c, "lw-console-csrf", cookie ? cookie : "", out);
}

int lw_console_csrf_ok(const lw_console *c, const char *cookie, const char *token) {
  char want[LW_CONSOLE_CSRF_LEN + 1];
  if (!token || strlen(token) != LW_CONSOLE_CSRF_LEN) return 0;
  lw_console_csrf(c, cookie, want);
  return same(want, token, LW_CONSOLE_CSRF_LEN);
}

/* ---------------------------------------------------------------- the report */

void lw_wilson(int64_t k, int64_t n, double *lo, double *hi) {
  if (n <= 0) {
    *lo = 0, *hi = 1;
    return;
  }
  const double z = 1.959963984540054; /* the 97.5th percentile of the standard normal */
  double p = (double)k / (double)n, z2n = z * z / (double)n;
  double centre = (p + z2n / 2) / (1 + z2n);
  double half = z / (1 + z2n) * sqrt(p * (1 - p) / (double)n + z2n / (4 * (double)n));
  *lo = centre - half < 0 ? 0 : centre - half;
  *hi = centre + half > 1 ? 1 : centre + half;
}

/* The funnel's stages: each is the number of decisions that reached it, so every rate is a
 * proportion of a stage it is a subset of (a Wilson interval applies): see base_of. */
#define STAGES(X)                                                                          \
  X(DECISIONS, "decisions") X(PROMPTS, "prompts") X(SHARES, "shares") X(LANDINGS, "landings") \
  X(CONVERSIONS, "conversions") X(RETAINED, "retained")
#define STAGE_ENUM(e, name) ST_##e,
#define STAGE_NAME(e, name) name,
enum { STAGES(STAGE_ENUM) N_STAGES };
static const char *const stage_names[N_STAGES] = {STAGES(STAGE_NAME)};

/* The stage a stage's rate is over: the stage before, where every decision that reached s
 * reached it; conversions over shares, since the host reports a referee's conversion with its
 * code and token whether or not the referee's landing was recorded (no consent on its device),
 * so a decision can convert without a landing. Retained needs a conversion. */
static int base_of(int s) { return s == ST_CONVERSIONS ? ST_SHARES : s - 1; }
#define RATE_RULE                                                                                     \
  "each stage as a share of the stage before, conversions as a share of shares (a conversion needs no " \
  "recorded landing)"

typedef struct {
  char key[LW_NAME_LEN + 1];
  int64_t reached[N_STAGES];
  int64_t landings, conversions, retained; /* totals (referees), not decisions */
  double cost, value, revenue;
} agg;

typedef struct {
  agg *rows;
  size_t n, cap;
  int first; /* the first stage the table has (ST_SHARES for the channels: a channel is a share's) */
} table;

static agg *row_of(table *t, const char *key) {
  for (size_t i = 0; i < t->n; i++)
    if (!strcmp(t->rows[i].key, key)) return &t->rows[i];
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    agg *grown = realloc(t->rows, cap * sizeof *grown);
    if (!grown) return NULL;
    t->rows = grown, t->cap = cap;
  }
  agg *a = &t->rows[t->n++];
  memset(a, 0, sizeof *a);
  snprintf(a->key, sizeof a->key, "%s", key);
  return a;
}

static int by_key(const void *x, const void *y) {
  return strcmp(((const agg *)x)->key, ((const agg *)y)->key);
}

/* The variants' incentive cost, per referred customer, from the product config. */
typedef struct {
  char id[LW_NAME_LEN + 1];
  double cost;
} variant_cost;

cJSON *lw_console_product_config(const char *path) {
  if (!path) return NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *text = malloc(1 << 20);
  size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (!text) return NULL;
  text[n] = '\0';
  lw_status st;
  cJSON *doc = lw_json_parse(text, n, NULL, &st);
  free(text);
  return doc;
}

static double cost_of(const variant_cost *costs, size_t n, const char *action) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(costs[i].id, action)) return costs[i].cost;
  return 0;
}

/* first: the first stage to count (ST_SHARES when the rollups gave the decisions and prompts). */
static void add_decision(agg *a, const lw_store_decision *d, double cost, int first) {
  const lw_referee_outcomes *o = &d->outcomes;
  int prompted = strcmp(d->action, "none") != 0 && d->action[0];
  int stage[N_STAGES] = {1, prompted, prompted && d->shared, prompted && d->shared && o->landings > 0,
                         prompted && d->shared && o->conversions > 0,
                         prompted && d->shared && o->conversions > 0 && o->retained_30 > 0};
  for (int i = first; i < N_STAGES; i++) a->reached[i] += stage[i];
  a->landings += o->landings;
  a->conversions += o->conversions;
  a->retained += o->retained_30;
  a->cost += cost * (double)o->conversions;
  a->value += o->conversion_value;
  a->revenue += o->revenue;
}

/* The start (UTC date) of t's week, Monday first. */
static void week_of(int64_t t_ms, char out[16]) {
  int64_t day = t_ms >= 0 ? t_ms / 86400000 : (t_ms - 86399999) / 86400000;
  int64_t monday = day - ((day + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
  time_t secs = (time_t)(monday * 86400);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
}

static int add_num(cJSON *o, const char *name, double v) {
  return isfinite(v) ? cJSON_AddNumberToObject(o, name, v) != NULL
                     : cJSON_AddNullToObject(o, name) != NULL;
}

static cJSON *table_json(const table *t) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < t->n; i++) {
    const agg *a = &t->rows[i];
    cJSON *o = cJSON_CreateObject(), *rates = NULL;
    int ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddStringToObject(o, "key", a->key);
    for (int s = t->first; ok && s < N_STAGES; s++) ok = add_num(o, stage_names[s], (double)a->reached[s]);
    ok = ok && (rates = cJSON_AddObjectToObject(o, "rates")) != NULL;
    for (int s = t->first + 1; ok && s < N_STAGES; s++) {
      double lo, hi;
      int64_t n = a->reached[base_of(s)];
      lw_wilson(a->reached[s], n, &lo, &hi);
      cJSON *r = cJSON_AddObjectToObject(rates, stage_names[s]);
      ok = r && add_num(r, "k", (double)a->reached[s]) && add_num(r, "n", (double)n) &&
           cJSON_AddStringToObject(r, "of", stage_names[base_of(s)]) &&
           add_num(r, "rate", n ? (double)a->reached[s] / (double)n : NAN) && add_num(r, "lo", lo) &&
           add_num(r, "hi", hi);
    }
    ok = ok && add_num(o, "referees_landed", (double)a->landings) &&
         add_num(o, "referred", (double)a->conversions) &&
         add_num(o, "referred_retained", (double)a->retained) && add_num(o, "incentive_cost", a->cost) &&
         add_num(o, "cost_per_referred", a->conversions ? a->cost / (double)a->conversions : NAN) &&
         add_num(o, "cost_per_retained", a->retained ? a->cost / (double)a->retained : NAN) &&
         add_num(o, "value", a->value + a->revenue) &&
         add_num(o, t->first ? "value_per_share" : "value_per_decision",
                 a->reached[t->first] ? (a->value + a->revenue) / (double)a->reached[t->first] : NAN);
    if (!ok) {
      cJSON_Delete(arr);
      return NULL;
    }
  }
  return arr;
}

/* The CSV of a table: the same figures as its JSON, one row per key. Keys are [A-Za-z0-9_-]
 * or a date, so nothing needs quoting. */
static char *table_csv(const table *t) {
  size_t cap = 1024 + t->n * 1024, len = 0;
  char *out = malloc(cap);
  if (!out) return NULL;
  len += (size_t)snprintf(out + len, cap - len, "key");
  for (int s = t->first; s < N_STAGES; s++) len += (size_t)snprintf(out + len, cap - len, ",%s", stage_names[s]);
  for (int s = t->first + 1; s < N_STAGES; s++)
    len += (size_t)snprintf(out + len, cap - len, ",%s_rate,%s_lo,%s_hi", stage_names[s],
                            stage_names[s], stage_names[s]);
  len += (size_t)snprintf(out + len, cap - len,
                          ",referred,referred_retained,incentive_cost,cost_per_referred,"
                          "cost_per_retained,value\r\n");
  for (size_t i = 0; i < t->n; i++) {
    const agg *a = &t->rows[i];
    len += (size_t)snprintf(out + len, cap - len, "%s", a->key);
    for (int s = t->first; s < N_STAGES; s++)
      len += (size_t)snprintf(out + len, cap - len, ",%lld", (long long)a->reached[s]);
    for (int s = t->first + 1; s < N_STAGES; s++) {
      double lo, hi;
      int64_t n = a->reached[base_of(s)];
      lw_wilson(a->reached[s], n, &lo, &hi);
      if (n)
        len += (size_t)snprintf(out + len, cap - len, ",%.6f,%.6f,%.6f", (double)a->reached[s] / (double)n, lo, hi);
      else
        len += (size_t)snprintf(out + len, cap - len, ",,,");
    }
    len += (size_t)snprintf(out + len, cap - len, ",%lld,%lld,%.2f,", (long long)a->conversions,
                            (long long)a->retained, a->cost);
    if (a->conversions) len += (size_t)snprintf(out + len, cap - len, "%.2f", a->cost / (double)a->conversions);
    len += (size_t)snprintf(out + len, cap - len, ",");
    if (a->retained) len += (size_t)snprintf(out + len, cap - len, "%.2f", a->cost / (double)a->retained);
    len += (size_t)snprintf(out + len, cap - len, ",%.2f\r\n", a->value + a->revenue);
  }
  return out;
}

/* Newcombe's hybrid score interval (1998, method 10) for the difference of two proportions,
 * from each one's Wilson interval. */
static cJSON *difference(const table *modes, const char *a_key, const char *b_key, int stage) {
  const agg *a = NULL, *b = NULL;
  for (size_t i = 0; i < modes->n; i++) {
    if (!strcmp(modes->rows[i].key, a_key)) a = &modes->rows[i];
    if (!strcmp(modes->rows[i].key, b_key)) b = &modes->rows[i];
  }
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "arm", a_key);
  cJSON_AddStringToObject(o, "against", b_key);
  cJSON_AddStringToObject(o, "measure", stage_names[stage]);
  int64_t na = a ? a->reached[ST_DECISIONS] : 0, nb = b ? b->reached[ST_DECISIONS] : 0;
  int64_t ka = a ? a->reached[stage] : 0, kb = b ? b->reached[stage] : 0;
  add_num(o, "arm_k", (double)ka), add_num(o, "arm_n", (double)na);
  add_num(o, "against_k", (double)kb), add_num(o, "against_n", (double)nb);
  if (!na || !nb) {
    cJSON_AddNullToObject(o, "difference");
    cJSON_AddNullToObject(o, "lo");
    cJSON_AddNullToObject(o, "hi");
    return o;
  }
  double p1 = (double)ka / (double)na, p2 = (double)kb / (double)nb, l1, u1, l2, u2;
  lw_wilson(ka, na, &l1, &u1);
  lw_wilson(kb, nb, &l2, &u2);
  double d = p1 - p2;
  add_num(o, "difference", d);
  add_num(o, "lo", d - sqrt((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2)));
  add_num(o, "hi", d + sqrt((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2)));
  return o;
}

/* The trainer's promotion rounds: <models_dir>/<site>/promotions.log, one JSON object a line;
 * the newest 200. */
static cJSON *model_history(const lw_ingest_config *cfg, const char *site) {
  cJSON *arr = cJSON_CreateArray();
  if (!arr || !cfg->models_dir) return arr;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/promotions.log", cfg->models_dir, site);
  FILE *f = fopen(path, "r");
  if (!f) return arr;
  char line[16384];
  while (fgets(line, sizeof line, f)) {
    lw_status st;
    cJSON *o = lw_json_parse(line, strlen(line), NULL, &st);
    if (!cJSON_IsObject(o)) {
      cJSON_Delete(o);
      continue;
    }
    cJSON_AddItemToArray(arr, o);
    if (cJSON_GetArraySize(arr) > 200) cJSON_DeleteItemFromArray(arr, 0);
  }
  fclose(f);
  return arr;
}

unsigned lw_console_report(const lw_console *c, lw_store *store, const char *site,
                           const char *table_name, int64_t now_ms, char **out, char *err,
                           size_t errlen) {
  *out = NULL;
  /* The tables: four of every decision by its keys, and the shared decisions by channel. */
  enum { T_VARIANTS, T_SEGMENTS, T_MODES, T_WEEKS, T_CHANNELS, N_TABLES };
  static const char *const names[N_TABLES] = {"variants", "segments", "modes", "weeks", "channels"};
  int want = -1;
  if (table_name) {
    for (int i = 0; i < N_TABLES; i++)
      if (!strcmp(table_name, names[i])) want = i;
    if (want < 0) {
      snprintf(err, errlen, "table: expected variants, segments, modes, weeks or channels");
      return 404;
    }
  }
  cJSON *product = lw_console_product_config(c->cfg->console_config);
  variant_cost costs[64];
  size_t n_costs = 0;
  const cJSON *vars = cJSON_GetObjectItemCaseSensitive(product, "variants"), *v;
  cJSON_ArrayForEach(v, vars) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(v, "cost");
    if (n_costs < 64 && cJSON_IsString(id) && cJSON_IsNumber(cost)) {
      snprintf(costs[n_costs].id, sizeof costs[n_costs].id, "%s", id->valuestring);
      costs[n_costs++].cost = cost->valuedouble;
    }
  }
  table t[N_TABLES] = {{0}};
  t[T_CHANNELS].first = ST_SHARES;
  lw_funnel_channel *chans = NULL;
  size_t n_chans = 0;
  lw_store_range range = {site, 0, 0};
  lw_store_cursor *cur = NULL;
  unsigned status = 503;
  cJSON *root = NULL;
  lw_funnel_day *days = NULL;
  lw_funnel_value *values = NULL;
  size_t n_days = 0, n_values = 0;
  /* Everything from the rollups (SQLite schema 11, PostgreSQL 4); else the decisions and prompts from them and the
   * shared decisions walked; else every decision walked. */
  lw_status whole = lw_store_funnel_outcomes(store, site, &days, &n_days, &values, &n_values, err, errlen);
  if (whole != LW_OK && whole != LW_ERR_INVALID) goto done;
  lw_status rolled = whole == LW_OK ? LW_OK : lw_store_funnel_days(store, site, &days, &n_days, err, errlen);
  if (rolled != LW_OK && rolled != LW_ERR_INVALID) goto done;
  int first = rolled == LW_OK ? ST_SHARES : ST_DECISIONS;
  /* The channels from the rollups too when the store keeps them (its values then carry their
   * decision's channel); else from the walk below. */
  lw_status by_channel = whole == LW_OK ? lw_store_funnel_channels(store, site, &chans, &n_chans, err, errlen)
                                        : LW_ERR_INVALID;
  if (by_channel != LW_OK && by_channel != LW_ERR_INVALID) goto done;
  for (size_t i = 0; i < n_chans; i++) {
    const lw_funnel_channel *fc = &chans[i];
    agg *a = row_of(&t[T_CHANNELS], fc->channel[0] ? fc->channel : "(none)");
    if (!a) {
      snprintf(err, errlen, "out of memory");
      goto done;
    }
    /* as add_decision from ST_SHARES, summed by the writer */
    a->reached[ST_SHARES] += fc->shares;
    a->reached[ST_LANDINGS] += fc->landed;
    a->reached[ST_CONVERSIONS] += fc->converted;
    a->reached[ST_RETAINED] += fc->kept;
    a->landings += fc->landings;
    a->conversions += fc->conversions;
    a->retained += fc->retained;
  }
  for (size_t i = 0; i < n_days; i++) {
    const lw_funnel_day *fd = &days[i];
    if (fd->day < 0) continue; /* the walk's range starts at t = 0 */
    char week[16];
    week_of(fd->day * 86400000, week);
    const char *keys[4] = {fd->action, fd->segment[0] ? fd->segment : "(none)", fd->mode[0] ? fd->mode : "(none)",
                           week};
    for (int k = 0; k < 4; k++) {
      agg *a = row_of(&t[k], keys[k]);
      if (!a) {
        snprintf(err, errlen, "out of memory");
        goto done;
      }
      a->reached[ST_DECISIONS] += fd->decisions;
      a->reached[ST_PROMPTS] += fd->prompts;
      if (whole != LW_OK) continue;
      /* as add_decision, summed by the writer */
      a->reached[ST_SHARES] += fd->shares;
      a->reached[ST_LANDINGS] += fd->landed;
      a->reached[ST_CONVERSIONS] += fd->converted;
      a->reached[ST_RETAINED] += fd->kept;
      a->landings += fd->landings;
      a->conversions += fd->conversions;
      a->retained += fd->retained;
    }
  }
  /* The floating sums in decision order, as the walk adds them (a decision without a conversion
   * adds zeros). */
  for (size_t i = 0; i < n_values; i++) {
    const lw_funnel_value *fv = &values[i];
    char week[16];
    week_of(fv->day * 86400000, week);
    const char *keys[4] = {fv->action, fv->segment[0] ? fv->segment : "(none)", fv->mode[0] ? fv->mode : "(none)",
                           week};
    double cost = cost_of(costs, n_costs, fv->action);
    for (int k = 0; k < (by_channel == LW_OK ? 5 : 4); k++) {
      agg *a = row_of(&t[k], k == T_CHANNELS ? (fv->channel[0] ? fv->channel : "(none)") : keys[k]);
      if (!a) {
        snprintf(err, errlen, "out of memory");
        goto done;
      }
      a->cost += cost * (double)fv->conversions;
      a->value += fv->value;
      a->revenue += fv->revenue;
    }
  }
  if (whole == LW_OK && by_channel == LW_OK) goto report;
  /* The walk: every stage the rollups did not give (with the funnel rolled up, only the channels:
   * the shared decisions, since a channel is a share's). */
  lw_status walk = rolled == LW_OK ? lw_store_shared_decisions(store, &range, &cur, err, errlen) : LW_ERR_INVALID;
  if (walk == LW_ERR_INVALID) walk = lw_store_decisions(store, &range, &cur, err, errlen);
  if (walk != LW_OK) goto done;
  lw_store_decision d;
  int rc;
  while ((rc = lw_store_next(cur, &d, err, errlen)) == 1) {
    char week[16];
    week_of(d.t, week);
    const char *keys[4] = {d.action, d.segment[0] ? d.segment : "(none)", d.mode[0] ? d.mode : "(none)", week};
    double cost = cost_of(costs, n_costs, d.action);
    for (int i = 0; i < N_TABLES; i++) {
      if (i < T_CHANNELS ? whole == LW_OK : !d.shared) continue;
      agg *a = row_of(&t[i], i == T_CHANNELS ? (d.channel[0] ? d.channel : "(none)") : keys[i]);
      if (!a) {
        snprintf(err, errlen, "out of memory");
        goto done;
      }
      add_decision(a, &d, cost, i == T_CHANNELS ? ST_SHARES : first);
    }
  }
  if (rc < 0) goto done;
report:
  for (int i = 0; i < N_TABLES; i++) if (t[i].n) qsort(t[i].rows, t[i].n, sizeof *t[i].rows, by_key);
  if (want >= 0) {
    *out = table_csv(&t[want]);
    status = *out ? 200 : 503;
    if (!*out) snprintf(err, errlen, "out of memory");
    goto done;
  }
  root = cJSON_CreateObject();
  cJSON *tables = root ? cJSON_AddObjectToObject(root, "tables") : NULL;
  cJSON *learning = root ? cJSON_AddObjectToObject(root, "learning") : NULL;
  if (!tables || !learning) goto nomem;
  cJSON_AddStringToObject(root, "site", site);
  cJSON_AddNumberToObject(root, "generated_ms", (double)now_ms);
  cJSON_AddStringToObject(root, "interval",
                          "95% Wilson score interval for each rate (" RATE_RULE "); the difference of two arms by Newcombe's hybrid score "
                          "interval (1998, method 10) from their Wilson intervals");
  for (int i = 0; i < N_TABLES; i++) {
    cJSON *arr = table_json(&t[i]);
    if (!arr) goto nomem;
    cJSON_AddItemToObject(tables, names[i], arr);
  }
  cJSON *diffs = cJSON_AddArrayToObject(learning, "differences");
  if (!diffs) goto nomem;
  cJSON_AddItemToArray(diffs, difference(&t[2], "model", "holdout", ST_CONVERSIONS));
  cJSON_AddItemToArray(diffs, difference(&t[2], "model", "rules", ST_CONVERSIONS));
  cJSON_AddItemToArray(diffs, difference(&t[2], "model", "holdout", ST_SHARES));
  cJSON_AddItemToArray(diffs, difference(&t[2], "model", "rules", ST_SHARES));
  cJSON_AddItemToObject(root, "models", model_history(c->cfg, site));
  if (product) {
    cJSON_AddItemToObject(root, "config", product);
    product = NULL;
  } else {
    cJSON_AddNullToObject(root, "config");
  }
  *out = cJSON_PrintUnformatted(root);
  if (!*out) goto nomem;
  status = 200;
  goto done;
nomem:
  snprintf(err, errlen, "out of memory");
  status = 503;
done:
  cJSON_Delete(root);
  cJSON_Delete(product);
  lw_store_cursor_free(cur);
  free(days);
  free(values);
  free(chans);
  for (int i = 0; i < N_TABLES; i++) free(t[i].rows);
  return status;
}
