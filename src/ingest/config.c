/* config.c: the ingest server's settings (see loopwise/ingest.h).
 *
 * One table drives the config file, the environment, the flags and --help, so the four can
 * never disagree about a name or a default. */
#include "loopwise/ingest.h"

#include <cJSON.h>

#include "loopwise/json.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "console.h"
#include "log.h"

typedef enum { T_STR, T_INT, T_NUM, T_BOOL } setting_type;

typedef struct {
  const char *key;      /* config-file key; the flag is this with '-' for '_' */
  setting_type type;
  size_t offset;
  const char *def;      /* default, as text */
  int64_t min, max;     /* for T_INT */
  const char *help;
} setting;

#define OFF(f) offsetof(lw_ingest_config, f)

static const setting settings[] = {
    {"db", T_STR, OFF(db), NULL, 0, 0, "the store: a SQLite database file (created if missing), or a PostgreSQL connection string (postgres://... or postgresql://...)"},
    {"bind", T_STR, OFF(bind), "127.0.0.1", 0, 0, "listen address (IPv4 or IPv6 literal)"},
    {"port", T_INT, OFF(port), "8080", 0, 65535, "TCP port; 0 picks a free one"},
    {"read_token", T_STR, OFF(read_token), NULL, 0, 0,
     "bearer token for /v1/stats and /metrics; unset: loopback clients only"},
    {"max_body", T_INT, OFF(max_body), "1048576", 64, 64 << 20, "largest request body, bytes"},
    {"max_events", T_INT, OFF(max_events), "500", 1, 500, "most events in one batch"},
    {"max_future_s", T_INT, OFF(max_future_s), "86400", 0, 366LL * 86400,
     "clock-skew allowance: a record dated further ahead is stored with the receive time beside it"},
    {"timeout_s", T_INT, OFF(timeout_s), "10", 1, 3600, "close connections idle this long"},
    {"request_timeout_s", T_INT, OFF(request_timeout_s), "30", 1, 3600,
     "drop a request whose body is still arriving after this long"},
    {"max_connections", T_INT, OFF(max_connections), "4096", 1, 1 << 20,
     "most concurrent connections"},
    {"threads", T_INT, OFF(threads), "0", 0, 256, "HTTP threads; 0: one per CPU (at least 2)"},
    {"max_connections_per_address", T_INT, OFF(max_connections_per_address), "64", 0, 1 << 20,
     "most concurrent connections from one client address; 0: no limit"},
    {"rate_limit", T_BOOL, OFF(rate_limit), "on", 0, 1, "per-address and per-key rate limits"},
    {"rate_per_address", T_NUM, OFF(rate_per_address), "50", 0, 0,
     "requests per second per client address"},
    {"burst_per_address", T_NUM, OFF(burst_per_address), "200", 0, 0,
     "burst size per client address"},
    {"rate_per_key", T_NUM, OFF(rate_per_key), "5000", 0, 0, "requests per second per write key"},
    {"burst_per_key", T_NUM, OFF(burst_per_key), "20000", 0, 0, "burst size per write key"},
    {"k_anonymity", T_INT, OFF(k_anonymity), "5", 1, 1000000,
     "stats hide any row with fewer distinct installs"},
    {"retention_days", T_NUM, OFF(retention_days), "395", 0, 0,
     "delete batches received longer ago than this, with their events; 0 keeps them"},
    {"purge_interval_s", T_INT, OFF(purge_interval_s), "3600", 1, 86400 * 7,
     "how often the retention purge runs"},
    {"max_group", T_INT, OFF(max_group), "1024", 1, 65536, "most batches in one commit"},
    {"drain_timeout_s", T_INT, OFF(drain_timeout_s), "10", 0, 3600,
     "on SIGTERM, wait this long for in-flight requests"},
    {"log_level", T_STR, OFF(log_level), "info", 0, 0, "debug, info, warn, error or off"},
    {"models_dir", T_STR, OFF(models_dir), NULL, 0, 0,
     "per-site models served at GET /v1/model: <dir>/<site id>/current.lwm"},
    /* ---- slow clients and exposure (issue 12, section 4) */
    {"header_timeout_s", T_INT, OFF(header_timeout_s), "10", 1, 3600,
     "close a connection whose request headers are not complete after this long"},
    {"body_budget", T_INT, OFF(body_budget), "33554432", 65536, 1LL << 36,
     "bytes all request bodies being received may hold together; past it the largest is closed"},
    {"stats_max_codes", T_INT, OFF(stats_max_codes), "100", 1, 100000,
     "most referral codes in one /v1/stats answer (those with the most installs)"},
    {"read_connections", T_INT, OFF(read_connections), "2", 1, 64,
     "database read connections for stats, referral and attribution reads"},
    {"trusted_proxies", T_STR, OFF(trusted_proxies), NULL, 0, 0,
     "reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For "
     "gives the client address"},
    {"console_users", T_STR, OFF(console_users), NULL, 0, 0,
     "console users, comma-separated name:pbkdf2-sha256$iterations$salt$hash (base64); "
     "none: the console answers loopback clients only"},
    {"console_secret", T_STR, OFF(console_secret), NULL, 0, 0,
     "HMAC-SHA-256 key of console session cookies (at least 32 characters, the same on "
     "every replica); required with console_users"},
    {"console_assets", T_STR, OFF(console_assets), LW_CONSOLE_ASSETS_DIR, 0, 0,
     "directory of the built console page (node web/console/build.mjs)"},
    {"console_session_s", T_INT, OFF(console_session_s), "43200", 60, 86400 * 30,
     "how long a console login lasts, seconds"},
    {"console_config", T_STR, OFF(console_config), NULL, 0, 0,
     "the product config (JSON) the console shows as the config in force and takes variant "
     "costs from"},
    {"approval_days", T_INT, OFF(approval_days), "7", 1, 365,
     "days an approval request waits for a console user's answer, then expires (never shown)"},
    {"webhook_url", T_STR, OFF(webhook_url), NULL, 0, 0,
     "http(s) URL that receives approved conversions as signed webhooks; none: no webhooks"},
    {"webhook_secret", T_STR, OFF(webhook_secret), NULL, 0, 0,
     "HMAC-SHA-256 key of the webhooks' Loopwise-Signature (at least 32 characters)"},
    {"webhook_retry_s", T_INT, OFF(webhook_retry_s), "30", 1, 86400,
     "first retry delay of a failed webhook, seconds; doubles each time, at most 6 hours"},
    {"webhook_max_age_s", T_INT, OFF(webhook_max_age_s), "259200", 1, 86400 * 30,
     "how long a webhook is retried before it is marked failed, seconds"},
    {"webhook_lease_s", T_INT, OFF(webhook_lease_s), "60", 2, 3600,
     "how long a replica holds a delivery it claimed, seconds"},
    {"webhook_poll_ms", T_INT, OFF(webhook_poll_ms), "1000", 10, 600000,
     "how often the webhook sender looks for due deliveries, milliseconds"},
    {"webhook_timeout_s", T_INT, OFF(webhook_timeout_s), "10", 1, 600,
     "one webhook attempt's time limit, seconds (below webhook_lease_s)"},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Put prefix in front of the message in err, cutting the end if it no longer fits. */
static void prefix_message(char *err, size_t errlen, const char *prefix) {
  if (errlen == 0) return;
  size_t p = strlen(prefix), n = strlen(err);
  if (p >= errlen) p = errlen - 1;
  if (p + n >= errlen) n = errlen - 1 - p;
  memmove(err + p, err, n);
  memcpy(err, prefix, p);
  err[p + n] = '\0';
}

static const setting *find_setting(const char *name) {
  char key[64];
  size_t i = 0;
  for (; name[i] && i < sizeof key - 1; i++) key[i] = name[i] == '-' ? '_' : name[i];
  key[i] = '\0';
  for (size_t k = 0; k < N_SETTINGS; k++)
    if (strcmp(settings[k].key, key) == 0) return &settings[k];
  return NULL;
}

static lw_status set_value(lw_ingest_config *cfg, const setting *s, const char *value,
                           char *err, size_t errlen) {
  char *field = (char *)cfg + s->offset;
  char *end = NULL;
  switch (s->type) {
  case T_STR: {
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy) return LW_ERR_NOMEM;
    if (strcmp(s->key, "log_level") == 0 && (!value || lw_log_level_parse(value) < 0)) {
      free(copy);
      snprintf(err, errlen, "%s: expected debug, info, warn, error or off", s->key);
      return LW_ERR_INVALID;
    }
    free(*(char **)field);
    *(char **)field = copy;
    return LW_OK;
  }
  case T_INT: {
    errno = 0;
    long long v = value ? strtoll(value, &end, 10) : 0;
    if (!value || !*value || *end || errno || v < s->min || v > s->max) {
      snprintf(err, errlen, "%s: expected an integer in [%lld, %lld], got '%s'", s->key,
               (long long)s->min, (long long)s->max, value ? value : "");
      return LW_ERR_INVALID;
    }
    if (s->offset == OFF(port))
      *(int *)field = (int)v;
    else
      *(int64_t *)field = v;
    return LW_OK;
  }
  case T_NUM: {
    double v = value ? strtod(value, &end) : 0;
    int zero_ok = s->offset == OFF(retention_days);
    if (!value || !*value || *end || !isfinite(v) || v < 0 || (v == 0 && !zero_ok)) {
      snprintf(err, errlen, "%s: expected a positive number, got '%s'", s->key,
               value ? value : "");
      return LW_ERR_INVALID;
    }
    *(double *)field = v;
    return LW_OK;
  }
  case T_BOOL: {
    int v;
    if (value && (!strcmp(value, "on") || !strcmp(value, "true") || !strcmp(value, "1")))
      v = 1;
    else if (value && (!strcmp(value, "off") || !strcmp(value, "false") || !strcmp(value, "0")))
      v = 0;
    else {
      snprintf(err, errlen, "%s: expected on or off, got '%s'", s->key,
               value ? value : "");
      return LW_ERR_INVALID;
    }
    *(int *)field = v;
    return LW_OK;
  }
  }
  return LW_ERR_INVALID;
}

void lw_ingest_config_init(lw_ingest_config *cfg) {
  char ignored[LW_ERRMSG_MAX];
  memset(cfg, 0, sizeof *cfg);
  for (size_t k = 0; k < N_SETTINGS; k++)
    if (settings[k].def) (void)set_value(cfg, &settings[k], settings[k].def, ignored, sizeof ignored);
}

static void free_site(lw_ingest_site *site) {
  for (size_t i = 0; i < site->n_secret_keys; i++) free(site->secret_keys[i]);
  free(site->id);
  free(site->write_key);
  for (size_t i = 0; i < site->n_origins; i++) free(site->origins[i]);
  free(site->origins);
}

void lw_ingest_config_clear(lw_ingest_config *cfg) {
  for (size_t k = 0; k < N_SETTINGS; k++)
    if (settings[k].type == T_STR) free(*(char **)((char *)cfg + settings[k].offset));
  for (size_t i = 0; i < cfg->n_sites; i++) free_site(&cfg->sites[i]);
  free(cfg->sites);
  free(cfg->proxies);
  memset(cfg, 0, sizeof *cfg);
}

lw_status lw_ingest_config_set(lw_ingest_config *cfg, const char *name, const char *value,
                               char *err, size_t errlen) {
  const setting *s = find_setting(name);
  if (!s) {
    snprintf(err, errlen, "unknown setting '%s'", name);
    return LW_ERR_NOT_FOUND;
  }
  return set_value(cfg, s, value, err, errlen);
}

lw_status lw_ingest_config_apply_env(lw_ingest_config *cfg, char **envp, char *err, size_t errlen) {
  static const char prefix[] = "LW_INGEST_";
  for (char **e = envp; e && *e; e++) {
    if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    char name[64];
    size_t n = (size_t)(eq - *e) - (sizeof prefix - 1);
    if (n >= sizeof name) n = sizeof name - 1;
    for (size_t i = 0; i < n; i++) name[i] = (char)tolower((unsigned char)(*e)[sizeof prefix - 1 + i]);
    name[n] = '\0';
    lw_status st = lw_ingest_config_set(cfg, name, eq + 1, err, errlen);
    if (st != LW_OK) {
      prefix_message(err, errlen, "environment: ");
      return st == LW_ERR_NOT_FOUND ? LW_ERR_INVALID : st;
    }
  }
  return LW_OK;
}

/* ---------------------------------------------------------------- sites */

static int id_ok(const char *s, size_t max, int allow_dot) {
  size_t n = strlen(s);
  if (n < 1 || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '_' && c != '-' && !(allow_dot && c == '.')) return 0;
  }
  return 1;
}

/* An Origin pattern is "scheme://host" or "scheme://host:port" or "scheme://host:*", with no
 * path: exactly what a browser sends in the Origin header. */
static int origin_pattern_ok(const char *p) {
  const char *sep = strstr(p, "://");
  if (!sep || sep == p || strlen(p) > 255) return 0;
  for (const char *c = p; *c; c++)
    if (*c == '/' && c != sep + 1 && c != sep + 2) return 0;
  for (const char *c = p; *c; c++)
    if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) return 0;
  return sep[3] != '\0';
}

int lw_origin_matches(const char *pattern, const char *origin) {
  size_t n = strlen(pattern);
  if (n >= 2 && strcmp(pattern + n - 2, ":*") == 0) {
    size_t base = n - 2;
    if (strncmp(pattern, origin, base) != 0) return 0;
    const char *rest = origin + base;
    if (*rest == '\0') return 1;
    if (*rest != ':' || !rest[1]) return 0;
    for (rest++; *rest; rest++)
      if (!isdigit((unsigned char)*rest)) return 0;
    return 1;
  }
  return strcmp(pattern, origin) == 0;
}

static lw_status add_site(lw_ingest_config *cfg, const char *id, const char *key,
                          const char *const *origins, size_t n_origins, char *err, size_t errlen) {
  lw_ingest_site *grown = realloc(cfg->sites, (cfg->n_sites + 1) * sizeof *grown);
  if (!grown) return LW_ERR_NOMEM;
  cfg->sites = grown;
  lw_ingest_site *s = &cfg->sites[cfg->n_sites];
  memset(s, 0, sizeof *s);
  s->integrity = lw_integrity_defaults();
  s->id = strdup(id);
  s->write_key = strdup(key);
  s->origins = calloc(n_origins ? n_origins : 1, sizeof *s->origins);
  if (!s->id || !s->write_key || !s->origins) {
    free_site(s);
    return LW_ERR_NOMEM;
  }
  cfg->n_sites++;
  for (size_t i = 0; i < n_origins; i++) {
    if (!(s->origins[i] = strdup(origins[i]))) return LW_ERR_NOMEM;
    s->n_origins++;
  }
  (void)err, (void)errlen;
  return LW_OK;
}

/* ---------------------------------------------------------------- sites: the trust block
 * sites[].secret_keys and sites[].integrity (README "Rewards nobody can forge"). */

lw_integrity_rules lw_integrity_defaults(void) {
  lw_integrity_rules r = {LW_RULE_REJECT, LW_RULE_REJECT, LW_RULE_FLAG, 100, 86400LL * 1000, 0};
  return r;
}

static int key_in_use(const lw_ingest_config *cfg, const char *key) {
  for (size_t k = 0; k < cfg->n_sites; k++) {
    if (!strcmp(cfg->sites[k].write_key, key)) return 1;
    for (size_t j = 0; j < cfg->sites[k].n_secret_keys; j++)
      if (!strcmp(cfg->sites[k].secret_keys[j], key)) return 1;
  }
  return 0;
}

static lw_status load_secret_keys(lw_ingest_config *cfg, lw_ingest_site *site, int i, const cJSON *keys,
                                  char *err, size_t errlen) {
  if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) < 1 || cJSON_GetArraySize(keys) > 2) {
    snprintf(err, errlen, "sites[%d].secret_keys: expected an array of one or two keys", i);
    return LW_ERR_INVALID;
  }
  size_t n = 0;
  for (const cJSON *k = keys->child; k; k = k->next, n++) {
    if (!cJSON_IsString(k) || !id_ok(k->valuestring, 128, 1) || strlen(k->valuestring) < LW_SECRET_KEY_MIN_LEN) {
      snprintf(err, errlen, "sites[%d].secret_keys[%zu]: expected %d-128 of [A-Za-z0-9_.-]", i, n,
               LW_SECRET_KEY_MIN_LEN);
      return LW_ERR_INVALID;
    }
    if (key_in_use(cfg, k->valuestring) || !strcmp(site->write_key, k->valuestring) ||
        (n == 1 && !strcmp(site->secret_keys[0], k->valuestring))) {
      snprintf(err, errlen, "sites[%d].secret_keys[%zu]: every write and secret key must be unique", i, n);
      return LW_ERR_INVALID;
    }
    if (!(site->secret_keys[n] = strdup(k->valuestring))) return LW_ERR_NOMEM;
    site->n_secret_keys = n + 1;
  }
  return LW_OK;
}

static lw_status load_integrity(lw_integrity_rules *r, int i, const cJSON *obj, char *err, size_t errlen) {
  if (!cJSON_IsObject(obj)) {
    snprintf(err, errlen, "sites[%d].integrity: expected an object", i);
    return LW_ERR_INVALID;
  }
  for (const cJSON *m = obj->child; m; m = m->next) {
    lw_rule_action *action = !strcmp(m->string, "self_referral")    ? &r->self_referral
                             : !strcmp(m->string, "repeat_referee") ? &r->repeat_referee
                             : !strcmp(m->string, "velocity")       ? &r->velocity
                                                                    : NULL;
    if (action) {
      const char *v = cJSON_IsString(m) ? m->valuestring : "";
      if (!strcmp(v, "off")) *action = LW_RULE_OFF;
      else if (!strcmp(v, "flag")) *action = LW_RULE_FLAG;
      else if (!strcmp(v, "reject")) *action = LW_RULE_REJECT;
      else {
        snprintf(err, errlen, "sites[%d].integrity.%s: expected \"off\", \"flag\" or \"reject\"", i, m->string);
        return LW_ERR_INVALID;
      }
    } else if (!strcmp(m->string, "velocity_max") || !strcmp(m->string, "velocity_window_s")) {
      int window = m->string[9] == 'w';
      double v = cJSON_IsNumber(m) ? m->valuedouble : -1;
      if (v != floor(v) || v < window || v > (window ? 366.0 * 86400 : 1e9)) {
        snprintf(err, errlen, "sites[%d].integrity.%s: expected an integer %s", i, m->string,
                 window ? "in [1, 31622400] (seconds)" : "in [0, 1000000000] (0: no limit)");
        return LW_ERR_INVALID;
      }
      if (window) r->velocity_window_ms = (int64_t)v * 1000;
      else r->velocity_max = (int64_t)v;
    } else if (!strcmp(m->string, "review_all")) {
      if (!cJSON_IsBool(m)) {
        snprintf(err, errlen, "sites[%d].integrity.review_all: expected true or false", i);
        return LW_ERR_INVALID;
      }
      r->review_all = cJSON_IsTrue(m);
    } else {
      snprintf(err, errlen, "sites[%d].integrity.%.40s: unknown field", i, m->string);
      return LW_ERR_INVALID;
    }
  }
  return LW_OK;
}

static lw_status load_sites(lw_ingest_config *cfg, const cJSON *arr, char *err, size_t errlen) {
  if (!cJSON_IsArray(arr)) {
    snprintf(err, errlen, "sites: expected an array");
    return LW_ERR_INVALID;
  }
  int i = 0;
  for (const cJSON *site = arr->child; site; site = site->next, i++) {
    const cJSON *id = NULL, *key = NULL, *origins = NULL, *secrets = NULL, *integrity = NULL;
    if (!cJSON_IsObject(site)) {
      snprintf(err, errlen, "sites[%d]: expected an object", i);
      return LW_ERR_INVALID;
    }
    for (const cJSON *m = site->child; m; m = m->next) {
      if (!strcmp(m->string, "id")) id = m;
      else if (!strcmp(m->string, "write_key")) key = m;
      else if (!strcmp(m->string, "origins")) origins = m;
      else if (!strcmp(m->string, "secret_keys")) secrets = m;
      else if (!strcmp(m->string, "integrity")) integrity = m;
      else {
        snprintf(err, errlen, "sites[%d].%.40s: unknown field", i, m->string);
        return LW_ERR_INVALID;
      }
    }
    if (!cJSON_IsString(id) || !id_ok(id->valuestring, 32, 0)) {
      snprintf(err, errlen, "sites[%d].id: expected 1-32 of [A-Za-z0-9_-]", i);
      return LW_ERR_INVALID;
    }
    if (!cJSON_IsString(key) || !id_ok(key->valuestring, 128, 1)) {
      snprintf(err, errlen, "sites[%d].write_key: expected 1-128 of [A-Za-z0-9_.-]", i);
      return LW_ERR_INVALID;
    }
    const char *list[64];
    size_t n = 0;
    if (origins) {
      if (!cJSON_IsArray(origins) || cJSON_GetArraySize(origins) > 64) {
        snprintf(err, errlen, "sites[%d].origins: expected an array of at most 64", i);
        return LW_ERR_INVALID;
      }
      for (const cJSON *o = origins->child; o; o = o->next, n++) {
        if (!cJSON_IsString(o) || !origin_pattern_ok(o->valuestring)) {
          snprintf(err, errlen,
                   "sites[%d].origins[%zu]: expected scheme://host[:port|:*] without a path", i, n);
          return LW_ERR_INVALID;
        }
        list[n] = o->valuestring;
      }
    }
    for (size_t k = 0; k < cfg->n_sites; k++) {
      if (!strcmp(cfg->sites[k].id, id->valuestring) || key_in_use(cfg, key->valuestring)) {
        snprintf(err, errlen, "sites[%d]: id and write_key must be unique", i);
        return LW_ERR_INVALID;
      }
    }
    lw_status st = add_site(cfg, id->valuestring, key->valuestring, list, n, err, errlen);
    if (st != LW_OK) return st;
    lw_ingest_site *added = &cfg->sites[cfg->n_sites - 1];
    /* The new site is already in cfg: key_in_use sees its write key, so check against the
     * others only by hiding it for the secret keys' check. */
    cfg->n_sites--;
    st = secrets ? load_secret_keys(cfg, added, i, secrets, err, errlen) : LW_OK;
    cfg->n_sites++;
    if (st == LW_OK && integrity) st = load_integrity(&added->integrity, i, integrity, err, errlen);
    if (st != LW_OK) return st;
  }
  return LW_OK;
}

lw_status lw_ingest_config_load_file(lw_ingest_config *cfg, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return LW_ERR_IO;
  }
  char *text = malloc(1 << 20);
  size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (!text) {
    snprintf(err, errlen, "%s: out of memory", path);
    return LW_ERR_NOMEM;
  }
  text[n] = '\0';
  lw_status pst;
  cJSON *doc = lw_json_parse(text, n, NULL, &pst);
  free(text);
  if (pst == LW_ERR_NOMEM) {
    snprintf(err, errlen, "%s: out of memory", path);
    return LW_ERR_NOMEM;
  }
  if (!cJSON_IsObject(doc)) {
    cJSON_Delete(doc);
    snprintf(err, errlen, "%s: expected a JSON object", path);
    return LW_ERR_INVALID;
  }
  lw_status st = LW_OK;
  for (const cJSON *m = doc->child; m && st == LW_OK; m = m->next) {
    if (!strcmp(m->string, "sites")) {
      st = load_sites(cfg, m, err, errlen);
      continue;
    }
    const setting *s = find_setting(m->string);
    if (!s || strchr(m->string, '-')) {
      snprintf(err, errlen, "%.60s: unknown setting", m->string);
      st = LW_ERR_INVALID;
      break;
    }
    char num[64];
    const char *value = NULL;
    if (cJSON_IsString(m)) value = m->valuestring;
    else if (cJSON_IsBool(m)) value = cJSON_IsTrue(m) ? "on" : "off";
    else if (cJSON_IsNumber(m)) {
      if (s->type == T_NUM) snprintf(num, sizeof num, "%.17g", m->valuedouble);
      else snprintf(num, sizeof num, "%.0f", m->valuedouble);
      value = num;
    }
    if (!value) {
      snprintf(err, errlen, "%s: expected a string, number or boolean", s->key);
      st = LW_ERR_INVALID;
      break;
    }
    st = set_value(cfg, s, value, err, errlen);
  }
  cJSON_Delete(doc);
  if (st == LW_ERR_NOMEM) snprintf(err, errlen, "out of memory"); /* the readers leave it */
  if (st != LW_OK) {
    char where[LW_ERRMSG_MAX];
    snprintf(where, sizeof where, "%.200s: ", path);
    prefix_message(err, errlen, where);
  }
  return st;
}

/* ---------------------------------------------------------------- exposure (issue 12, 4) */

static int bind_is_loopback(const char *bind) {
  struct in_addr a4;
  struct in6_addr a6;
  if (!bind) return 1; /* the default, 127.0.0.1 */
  if (inet_pton(AF_INET, bind, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, bind, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return 0;
}

/* "10.0.0.1, 192.0.2.0/24, ::1" into cfg->proxies. */
static lw_status parse_proxies(lw_ingest_config *cfg, char *err, size_t errlen) {
  free(cfg->proxies);
  cfg->proxies = NULL;
  cfg->n_proxies = 0;
  const char *p = cfg->trusted_proxies;
  if (!p) return LW_OK;
  size_t cap = 1;
  for (const char *c = p; *c; c++) cap += *c == ',';
  if (!(cfg->proxies = calloc(cap, sizeof *cfg->proxies))) return LW_ERR_NOMEM;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    size_t n = strcspn(p, ", ");
    char item[64];
    if (n >= sizeof item) n = sizeof item - 1;
    memcpy(item, p, n);
    item[n] = '\0';
    p += n;
    lw_ingest_net *net = &cfg->proxies[cfg->n_proxies];
    char *slash = strchr(item, '/');
    long prefix = -1;
    if (slash) {
      char *end;
      *slash = '\0';
      prefix = strtol(slash + 1, &end, 10);
      if (!slash[1] || *end) prefix = 1000;
    }
    if (inet_pton(AF_INET, item, net->addr) == 1) {
      net->family = AF_INET;
      if (prefix < 0) prefix = 32;
      if (prefix > 32) goto bad;
    } else if (inet_pton(AF_INET6, item, net->addr) == 1) {
      net->family = AF_INET6;
      if (prefix < 0) prefix = 128;
      if (prefix > 128) goto bad;
    } else {
      goto bad;
    }
    net->prefix = (unsigned)prefix;
    cfg->n_proxies++;
    continue;
  bad:
    if (slash) *slash = '/';
    snprintf(err, errlen, "trusted_proxies: '%s' is not an IPv4 or IPv6 address or network", item);
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

int lw_ingest_net_contains(const lw_ingest_net *nets, size_t n, const unsigned char *addr,
                           size_t len) {
  for (size_t i = 0; i < n; i++) {
    const lw_ingest_net *net = &nets[i];
    if ((net->family == AF_INET ? 4u : 16u) != len) continue;
    unsigned bits = net->prefix, k = 0;
    for (; bits >= 8; bits -= 8, k++)
      if (addr[k] != net->addr[k]) break;
    if (bits >= 8) continue;
    if (bits && ((addr[k] ^ net->addr[k]) & (0xFFu << (8 - bits)) & 0xFFu)) continue;
    return 1;
  }
  return 0;
}

lw_status lw_ingest_config_finish(lw_ingest_config *cfg, char *err, size_t errlen) {
  if (!bind_is_loopback(cfg->bind) && !cfg->read_token) {
    snprintf(err, errlen,
             "read_token: required when bind is not a loopback address (bind %.64s): stats, "
             "metrics and attributions would otherwise have no protection",
             cfg->bind);
    return LW_ERR_INVALID;
  }
  lw_status pst = parse_proxies(cfg, err, errlen);
  if (pst != LW_OK) return pst;
  if (!cfg->db || !cfg->db[0]) {
    snprintf(err, errlen, "db: a store is required (--db FILE or --db postgres://...)");
    return LW_ERR_INVALID;
  }
  if (cfg->read_token && strlen(cfg->read_token) < 16) {
    snprintf(err, errlen, "read_token: use at least 16 characters");
    return LW_ERR_INVALID;
  }
  if (lw_console_check_config(cfg, err, errlen) != LW_OK) return LW_ERR_INVALID;
  if (cfg->webhook_url) {
    if (strncmp(cfg->webhook_url, "http://", 7) != 0 && strncmp(cfg->webhook_url, "https://", 8) != 0) {
      snprintf(err, errlen, "webhook_url: expected an http:// or https:// URL");
      return LW_ERR_INVALID;
    }
    if (!cfg->webhook_secret || strlen(cfg->webhook_secret) < 32) {
      snprintf(err, errlen, "webhook_secret: required with webhook_url, at least 32 characters");
      return LW_ERR_INVALID;
    }
    if (cfg->webhook_timeout_s >= cfg->webhook_lease_s) {
      snprintf(err, errlen, "webhook_timeout_s: must be below webhook_lease_s, so a lease outlasts its attempt");
      return LW_ERR_INVALID;
    }
  }
  if (cfg->n_sites == 0) {
    static const char *const loopback[] = {"http://127.0.0.1:*", "http://localhost:*",
                                           "http://[::1]:*"};
    return add_site(cfg, "default", "demo-site-key", loopback, 3, err, errlen);
  }
  return LW_OK;
}

void lw_ingest_config_usage(FILE *out) {
  fprintf(out, "Settings (config-file key, flag, environment variable; flags win over the\n"
               "environment, which wins over the config file):\n\n");
  for (size_t k = 0; k < N_SETTINGS; k++) {
    char flag[64], env[64];
    size_t i = 0;
    for (; settings[k].key[i]; i++) {
      flag[i] = settings[k].key[i] == '_' ? '-' : settings[k].key[i];
      env[i] = (char)toupper((unsigned char)settings[k].key[i]);
    }
    flag[i] = env[i] = '\0';
    fprintf(out, "  --%-19s LW_INGEST_%-18s %s", flag, env, settings[k].help);
    if (settings[k].def) fprintf(out, " [%s]", settings[k].def);
    fprintf(out, "\n");
  }
}
