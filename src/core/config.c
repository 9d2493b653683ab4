/* config.c: parse and check the program config (see loopwise/config.h).
 *
 * Every check reports the JSON path it was looking at, so a product manager can find
 * the mistake without reading code. The path is kept in a small stack-like buffer:
 * each nested read appends ".key" or "[i]" and truncates back when it returns. */
#include "loopwise/config.h"

#include <cJSON.h>
#include <string.h>

#include "sbuf.h"

typedef struct {
  char path[160];
  size_t path_len;
  char *err;
  size_t errlen;
  int failed;
} ctx_t;

/* ---- path handling ------------------------------------------------------------ */

static size_t path_push_key(ctx_t *c, const char *key) {
  size_t mark = c->path_len;
  lw_sbuf sb = {c->path, sizeof c->path, c->path_len, 0};
  if (sb.len) lw_sb_char(&sb, '.');
  lw_sb_str(&sb, key);
  c->path_len = sb.len;
  return mark;
}

static size_t path_push_index(ctx_t *c, int i) {
  size_t mark = c->path_len;
  lw_sbuf sb = {c->path, sizeof c->path, c->path_len, 0};
  lw_sb_char(&sb, '[');
  lw_sb_u64(&sb, (uint64_t)i);
  lw_sb_char(&sb, ']');
  c->path_len = sb.len;
  return mark;
}

static void path_pop(ctx_t *c, size_t mark) {
  c->path_len = mark;
  c->path[mark] = '\0';
}

/* Starts the error message "path: " and returns a builder for the rest. Only the
 * first error is kept: later checks see c->failed and stop. */
static int fail_begin(ctx_t *c, lw_sbuf *sb) {
  if (c->failed) return 0;
  c->failed = 1;
  lw_sb_init(sb, c->err, c->errlen);
  lw_sb_str(sb, c->path_len ? c->path : "(top level)");
  lw_sb_str(sb, ": ");
  return 1;
}

static void fail(ctx_t *c, const char *msg) {
  lw_sbuf sb;
  if (fail_begin(c, &sb)) lw_sb_str(&sb, msg);
}

static const char *type_name(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  return "something else";
}

static void fail_got(ctx_t *c, const char *expected, const cJSON *got) {
  lw_sbuf sb;
  if (!fail_begin(c, &sb)) return;
  lw_sb_str(&sb, "expected ");
  lw_sb_str(&sb, expected);
  lw_sb_str(&sb, ", got ");
  if (cJSON_IsNumber(got))
    lw_sb_num(&sb, got->valuedouble);
  else
    lw_sb_str(&sb, type_name(got));
}

/* ---- checks --------------------------------------------------------------------- */

/* ---- the schema ------------------------------------------------------------------
 * Scalar fields are described by tables: the key, its type and range, and where it goes
 * in the target struct. One reader checks and stores every field of an object, and
 * refuses fields the table does not list (a typo would otherwise be silently ignored). */

enum { K_UINT, K_NUM, K_BOOL, K_NAME, K_TEXT };

typedef struct {
  const char *key;
  uint8_t kind, required;
  uint16_t off, size; /* offset in the target struct; size of a text buffer */
  double min, max;
  double def; /* the default of an optional number or boolean (README "Program config reference") */
} field_t;

#define UINT_F(k, req, T, m, lo, hi, d) {k, K_UINT, req, offsetof(T, m), 0, lo, hi, d}
#define NUM_F(k, req, T, m, lo, hi, d) {k, K_NUM, req, offsetof(T, m), 0, lo, hi, d}
#define BOOL_F(k, T, m, d) {k, K_BOOL, 0, offsetof(T, m), 0, 0, 1, d}
#define TEXT_F(k, req, T, m) {k, K_TEXT, req, offsetof(T, m), sizeof(((T *)0)->m), 0, 0, 0}
#define NAME_F(k, req, T, m) {k, K_NAME, req, offsetof(T, m), sizeof(((T *)0)->m), 0, 0, 0}
#define COUNT(a) (int)(sizeof a / sizeof a[0])

/* Refuse fields that are neither in the table nor in `extra` (NULL-terminated), and
 * fields given twice (cJSON keeps both; which one wins would be a surprise). */
static void check_fields(ctx_t *c, const cJSON *obj, const field_t *f, int n, const char *const *extra) {
  for (const cJSON *it = obj->child; it && !c->failed; it = it->next) {
    int known = 0;
    for (int i = 0; i < n; i++) known |= strcmp(f[i].key, it->string) == 0;
    for (const char *const *x = extra; x && *x; x++) known |= strcmp(*x, it->string) == 0;
    size_t mark = path_push_key(c, it->string);
    if (!known) {
      lw_sbuf sb;
      if (fail_begin(c, &sb)) {
        lw_sb_str(&sb, "unknown field (expected one of:");
        for (int i = 0; i < n; i++) {
          lw_sb_char(&sb, ' ');
          lw_sb_str(&sb, f[i].key);
        }
        for (const char *const *x = extra; x && *x; x++) {
          lw_sb_char(&sb, ' ');
          lw_sb_str(&sb, *x);
        }
        lw_sb_char(&sb, ')');
      }
    }
    for (const cJSON *other = it->next; other && !c->failed; other = other->next)
      if (strcmp(other->string, it->string) == 0) fail(c, "field appears twice");
    path_pop(c, mark);
  }
}

/* Returns the field, or NULL when absent (an error if required). */
static const cJSON *field(ctx_t *c, const cJSON *obj, const char *key, int required) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v && required && !c->failed) {
    size_t mark = path_push_key(c, key);
    fail(c, "is required");
    path_pop(c, mark);
  }
  return v;
}

static int utf8_valid(const unsigned char *s) {
  while (*s) {
    unsigned char b = *s;
    int n = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    if (n < 0 || (n == 1 && b < 0xC2) || (n == 3 && b > 0xF4)) return 0;
    uint32_t cp = n == 0 ? b : n == 1 ? (b & 31u) : n == 2 ? (b & 15u) : (b & 7u);
    s++;
    for (int i = 0; i < n; i++, s++) {
      if ((*s & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (*s & 63u);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
  }
  return 1;
}

static int is_name(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char ch = s[n];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-';
    if (!ok) return 0;
  }
  return n >= 1 && n < LW_NAME_MAX;
}

/* Check one value against its field description and store it at dst. */
static void read_value(ctx_t *c, const cJSON *v, const field_t *f, void *dst) {
  double d = v->valuedouble;
  lw_sbuf sb;
  char expected[64];
  lw_sb_init(&sb, expected, sizeof expected);
  switch (f->kind) {
    case K_UINT:
      if (cJSON_IsNumber(v) && d >= f->min && d <= f->max && d == (double)(int64_t)d) {
        uint32_t u = (uint32_t)d;
        memcpy(dst, &u, sizeof u);
        return;
      }
      if (f->min == 1 && f->max == UINT32_MAX) {
        lw_sb_str(&sb, "a positive integer");
      } else {
        lw_sb_str(&sb, "an integer from ");
        lw_sb_num(&sb, f->min);
        lw_sb_str(&sb, " to ");
        lw_sb_num(&sb, f->max);
      }
      break;
    case K_NUM:
      if (cJSON_IsNumber(v) && d >= f->min && d <= f->max) {
        memcpy(dst, &d, sizeof d);
        return;
      }
      lw_sb_str(&sb, "a number from ");
      lw_sb_num(&sb, f->min);
      lw_sb_str(&sb, " to ");
      lw_sb_num(&sb, f->max);
      break;
    case K_BOOL:
      if (cJSON_IsBool(v)) {
        int b = cJSON_IsTrue(v);
        memcpy(dst, &b, sizeof b);
        return;
      }
      lw_sb_str(&sb, "true or false");
      break;
    default: { /* K_NAME, K_TEXT */
      const char *str = cJSON_IsString(v) ? v->valuestring : NULL;
      if (!str) {
        lw_sb_str(&sb, "a string");
      } else if (f->kind == K_NAME && !is_name(str)) {
        fail(c, "expected a name of 1-32 letters, digits, '_' or '-'");
        return;
      } else if (f->kind == K_TEXT && (!*str || strlen(str) >= f->size)) {
        if (fail_begin(c, &sb)) {
          lw_sb_str(&sb, "expected a non-empty text of at most ");
          lw_sb_u64(&sb, f->size - 1u);
          lw_sb_str(&sb, " bytes");
        }
        return;
      } else if (!utf8_valid((const unsigned char *)str)) {
        fail(c, "text is not valid UTF-8");
        return;
      } else {
        lw_strlcpy(dst, str, f->size);
        return;
      }
    }
  }
  fail_got(c, expected, v);
}

/* Store the defaults of a table's numbers and booleans into base. */
static void set_defaults(const field_t *f, int n, void *base) {
  for (int i = 0; i < n; i++) {
    char *dst = (char *)base + f[i].off;
    if (f[i].kind == K_NUM) {
      memcpy(dst, &f[i].def, sizeof f[i].def);
    } else if (f[i].kind == K_UINT || f[i].kind == K_BOOL) {
      int32_t v = (int32_t)f[i].def; /* -1 stands for "none" where a field allows it */
      memcpy(dst, &v, sizeof v);
    }
  }
}

/* Check obj against the table (plus `extra` fields the caller reads itself) and store
 * every field present into base. */
static void read_fields(ctx_t *c, const cJSON *obj, const field_t *f, int n, const char *const *extra,
                        void *base) {
  check_fields(c, obj, f, n, extra);
  for (int i = 0; i < n && !c->failed; i++) {
    const cJSON *v = field(c, obj, f[i].key, f[i].required);
    if (!v) continue;
    size_t mark = path_push_key(c, f[i].key);
    read_value(c, v, &f[i], (char *)base + f[i].off);
    path_pop(c, mark);
  }
}

/* Open the object field `key` of parent (NULL when absent or wrong); the caller pops. */
static const cJSON *open_object(ctx_t *c, const cJSON *parent, const char *key, int required,
                                size_t *mark) {
  const cJSON *v = field(c, parent, key, required);
  if (!v || c->failed) return NULL;
  *mark = path_push_key(c, key);
  if (!cJSON_IsObject(v)) {
    fail_got(c, "an object", v);
    path_pop(c, *mark);
    return NULL;
  }
  return v;
}

static const cJSON *open_array(ctx_t *c, const cJSON *parent, const char *key, int max,
                               size_t *mark) {
  const cJSON *v = field(c, parent, key, 1);
  if (!v || c->failed) return NULL;
  *mark = path_push_key(c, key);
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  if (!cJSON_IsArray(v)) {
    fail_got(c, "an array", v);
  } else if (n < 1 || n > max) {
    lw_sbuf sb;
    if (fail_begin(c, &sb)) {
      lw_sb_str(&sb, "expected 1 to ");
      lw_sb_u64(&sb, (uint64_t)max);
      lw_sb_str(&sb, " entries, got ");
      lw_sb_u64(&sb, (uint64_t)n);
    }
  }
  return c->failed ? NULL : v;
}

/* ---- sections ------------------------------------------------------------------- */

static void parse_events(ctx_t *c, const cJSON *root, lw_config *cfg) {
  size_t mark;
  const cJSON *arr = open_array(c, root, "events", LW_MAX_EVENTS, &mark);
  if (!arr) return;
  int i = 0;
  for (const cJSON *it = arr->child; it && !c->failed; it = it->next, i++) {
    size_t m = path_push_index(c, i);
    if (!cJSON_IsString(it)) {
      fail_got(c, "an event name", it);
    } else if (!is_name(it->valuestring)) {
      fail(c, "expected a name of 1-32 letters, digits, '_' or '-'");
    } else if (lw_config_event_index(cfg, it->valuestring) >= 0) {
      fail(c, "event listed twice");
    } else {
      lw_strlcpy(cfg->events[cfg->n_events++], it->valuestring, LW_NAME_MAX);
    }
    path_pop(c, m);
  }
  path_pop(c, mark);
}

static const field_t k_milestone[] = {UINT_F("after", 1, lw_milestone, after, 1, UINT32_MAX, 0),
                                      UINT_F("every", 0, lw_milestone, every, 0, UINT32_MAX, 0)};
static const field_t k_variant[] = {
    NAME_F("id", 1, lw_variant, id),           TEXT_F("title", 1, lw_variant, title),
    TEXT_F("message", 1, lw_variant, message), TEXT_F("referrer_reward", 1, lw_variant, referrer_reward),
    TEXT_F("referee_reward", 1, lw_variant, referee_reward), NUM_F("cost", 1, lw_variant, cost, 0, 1e9, 0),
    UINT_F("weight", 0, lw_variant, weight, 0, 1000000, 1)};
static const field_t k_ladder[] = {UINT_F("referrals", 1, lw_ladder_step, referrals, 0, 1000000, 0),
                                   TEXT_F("reward", 1, lw_ladder_step, reward)};

/* Fields of the top level, and of the plain objects below it, all stored in lw_config. */
static const field_t k_top[] = {
    UINT_F("version", 1, lw_config, version, 1, 1, 1),
    TEXT_F("program", 0, lw_config, program),
    UINT_F("not_now_weight", 0, lw_config, not_now_weight, 0, 1000000, 0),
    NUM_F("value_per_referral", 0, lw_config, value_per_referral, 0, 1e9, 50),
    NUM_F("fatigue_cost", 0, lw_config, fatigue_cost, 0, 1e9, 1),
    NUM_F("holdout", 0, lw_config, holdout, 0, 0.5, 0)};
static const field_t k_share[] = {TEXT_F("url", 1, lw_config, share_url), TEXT_F("title", 0, lw_config, share_title),
                                  TEXT_F("text", 0, lw_config, share_text)};
static const field_t k_consent[] = {BOOL_F("required", lw_config, consent_required, 0),
                                    BOOL_F("default", lw_config, consent_default, 1)};
static const field_t k_caps[] = {UINT_F("max_prompts", 0, lw_config, cap_max_prompts, 1, 1000, 2),
                                 UINT_F("window_days", 0, lw_config, cap_window_days, 1, 3650, 30),
                                 UINT_F("min_gap_hours", 0, lw_config, cap_min_gap_hours, 0, 87600, 24)};
static const field_t k_cooldown[] = {UINT_F("days", 0, lw_config, cooldown_days, 0, 3650, 7),
                                     UINT_F("growth", 0, lw_config, cooldown_growth, 1, 100, 2),
                                     UINT_F("max_days", 0, lw_config, cooldown_max_days, 0, 3650, 90)};
static const field_t k_quiet[] = {UINT_F("start", 1, lw_config, quiet_start_hour, 0, 23, -1),
                                  UINT_F("end", 1, lw_config, quiet_end_hour, 0, 23, -1)};
static const field_t k_session[] = {UINT_F("min_age_s", 0, lw_config, min_session_s, 0, 86400, 0)};
static const field_t k_privacy[] = {BOOL_F("respect_gpc", lw_config, respect_gpc, 1),
                                    BOOL_F("respect_dnt", lw_config, respect_dnt, 0)};
static const field_t k_explore[] = {NUM_F("temperature", 0, lw_config, explore_temperature, 0.001, 1e9, 5),
                                    NUM_F("floor", 0, lw_config, explore_floor, 0, 0.1, 0.02)};
static const field_t k_model[] = {UINT_F("refresh_hours", 0, lw_config, model_refresh_hours, 1, 720, 24)};
static const field_t k_fairness[] = {NUM_F("min_exposure_ratio", 0, lw_config, fairness_min_ratio, 0, 1, 0.8)};

static const struct {
  const char *key;
  int required;
  const field_t *fields;
  int n;
} k_objects[] = {{"share", 1, k_share, COUNT(k_share)},         {"consent", 0, k_consent, COUNT(k_consent)},
                 {"caps", 0, k_caps, COUNT(k_caps)},             {"cooldown", 0, k_cooldown, COUNT(k_cooldown)},
                 {"quiet_hours", 0, k_quiet, COUNT(k_quiet)},    {"session", 0, k_session, COUNT(k_session)},
                 {"privacy", 0, k_privacy, COUNT(k_privacy)},    {"explore", 0, k_explore, COUNT(k_explore)},
                 {"model", 0, k_model, COUNT(k_model)}};
/* Top-level fields read by their own code below. */
static const char *const k_top_custom[] = {"share",   "consent",  "caps",       "cooldown", "quiet_hours",
                                           "session", "privacy",  "explore",    "model",    "events",
                                           "milestones", "variants", "attributes", "approval", "fairness",
                                           "ladder",  NULL};

/* Fails at the current path plus `key` with "prefix 'name' suffix". */
static void fail_named(ctx_t *c, const char *key, const char *prefix, const char *name, const char *suffix) {
  size_t k = key ? path_push_key(c, key) : c->path_len;
  lw_sbuf sb;
  if (fail_begin(c, &sb)) {
    lw_sb_str(&sb, prefix);
    lw_sb_str(&sb, name);
    lw_sb_str(&sb, suffix);
  }
  path_pop(c, k);
}

/* An array of objects, each checked against `fields` (plus `extra`) and stored at
 * base + i × stride; `each` (optional) reads and checks the rest. Returns the count. */
static int read_array(ctx_t *c, const cJSON *root, const char *key, int max, const field_t *fields, int n,
                      const char *const *extra, void *base, size_t stride,
                      void (*each)(ctx_t *, const cJSON *, int, lw_config *), lw_config *cfg) {
  size_t mark;
  const cJSON *arr = open_array(c, root, key, max, &mark);
  if (!arr) return 0;
  int i = 0;
  for (const cJSON *it = arr->child; it && !c->failed; it = it->next, i++) {
    size_t m = path_push_index(c, i);
    if (!cJSON_IsObject(it)) {
      fail_got(c, "an object", it);
    } else {
      set_defaults(fields, n, (char *)base + (size_t)i * stride);
      read_fields(c, it, fields, n, extra, (char *)base + (size_t)i * stride);
      if (each && !c->failed) each(c, it, i, cfg);
    }
    path_pop(c, m);
  }
  path_pop(c, mark);
  return c->failed ? 0 : i;
}

static void each_milestone(ctx_t *c, const cJSON *it, int i, lw_config *cfg) {
  static const field_t event = {"event", K_NAME, 1, 0, LW_NAME_MAX, 0, 0, 0};
  const cJSON *v = field(c, it, "event", 1);
  if (!v) return;
  size_t k = path_push_key(c, "event");
  char name[LW_NAME_MAX];
  read_value(c, v, &event, name);
  path_pop(c, k);
  if (c->failed) return;
  cfg->milestones[i].event = lw_config_event_index(cfg, name);
  if (cfg->milestones[i].event < 0) fail_named(c, "event", "unknown event '", name, "' (list it in events)");
}

static void each_variant(ctx_t *c, const cJSON *it, int i, lw_config *cfg) {
  const char *id = cfg->variants[i].id;
  int dup = strcmp(id, "none") == 0 || strcmp(id, "not_now") == 0;
  for (int j = 0; j < i; j++) dup |= strcmp(cfg->variants[j].id, id) == 0;
  if (dup) fail_named(c, "id", "variant id must be unique and not 'none' or 'not_now'", "", "");
}

static void each_ladder(ctx_t *c, const cJSON *it, int i, lw_config *cfg) {
  if (i > 0 && cfg->ladder[i].referrals <= cfg->ladder[i - 1].referrals)
    fail_named(c, "referrals", "must be larger than the previous step's", "", "");
}

static void parse_sections(ctx_t *c, const cJSON *root, lw_config *cfg) {
  static const char *const event_extra[] = {"event", NULL};
  for (int i = 0; i < COUNT(k_objects) && !c->failed; i++) {
    size_t mark;
    const cJSON *o = open_object(c, root, k_objects[i].key, k_objects[i].required, &mark);
    if (!o) continue;
    read_fields(c, o, k_objects[i].fields, k_objects[i].n, NULL, cfg);
    path_pop(c, mark);
  }
  if (!c->failed && !strstr(cfg->share_url, "{code}"))
    fail_named(c, "share.url", "must contain {code}, where the referral code goes", "", "");
  if (!c->failed && cfg->cooldown_max_days < cfg->cooldown_days)
    fail_named(c, "cooldown.max_days", "must be at least cooldown.days", "", "");
  if (!c->failed && cfg->quiet_start_hour >= 0 && cfg->quiet_start_hour == cfg->quiet_end_hour)
    fail_named(c, "quiet_hours", "start and end must differ", "", "");

  parse_events(c, root, cfg);
  cfg->n_milestones = read_array(c, root, "milestones", LW_MAX_MILESTONES, k_milestone, COUNT(k_milestone),
                                 event_extra, cfg->milestones, sizeof cfg->milestones[0], each_milestone, cfg);
  cfg->n_variants = read_array(c, root, "variants", LW_MAX_VARIANTS, k_variant, COUNT(k_variant), NULL,
                               cfg->variants, sizeof cfg->variants[0], each_variant, cfg);
  uint64_t total = 0;
  for (int i = 0; i < cfg->n_variants; i++) total += cfg->variants[i].weight;
  if (!c->failed && total == 0) fail_named(c, "variants", "at least one variant needs a weight above 0", "", "");
  if (field(c, root, "ladder", 0))
    cfg->n_ladder = read_array(c, root, "ladder", LW_MAX_LADDER, k_ladder, COUNT(k_ladder), NULL, cfg->ladder,
                               sizeof cfg->ladder[0], each_ladder, cfg);
}

/* Names one attribute from the config's `attributes`, or fails at the current path. */
static int read_attr_ref(ctx_t *c, const cJSON *o, const lw_config *cfg) {
  static const field_t attr = {"attribute", K_NAME, 1, 0, LW_NAME_MAX, 0, 0, 0};
  char name[LW_NAME_MAX] = "";
  const cJSON *v = field(c, o, "attribute", 1);
  if (!v) return -1;
  size_t k = path_push_key(c, "attribute");
  read_value(c, v, &attr, name);
  path_pop(c, k);
  int a = c->failed ? -1 : lw_config_attr_index(cfg, name);
  if (!c->failed && a < 0) fail_named(c, "attribute", "unknown attribute '", name, "' (list it in attributes)");
  return a;
}

static void parse_attributes(ctx_t *c, const cJSON *root, lw_config *cfg) {
  const cJSON *o = field(c, root, "attributes", 0);
  if (!o || c->failed) return;
  size_t mark = path_push_key(c, "attributes");
  if (!cJSON_IsObject(o)) fail_got(c, "an object of attribute name to allowed values", o);
  for (const cJSON *it = o->child; it && !c->failed; it = it->next) {
    size_t m = path_push_key(c, it->string);
    int a = cfg->n_attributes;
    if (a >= LW_MAX_ATTRIBUTES) {
      fail(c, "too many attributes (at most 4)");
    } else if (!is_name(it->string)) {
      fail(c, "attribute names are 1-32 letters, digits, '_' or '-'");
    } else if (lw_config_attr_index(cfg, it->string) >= 0) {
      fail(c, "field appears twice");
    } else if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 ||
               cJSON_GetArraySize(it) > LW_MAX_ATTR_VALUES) {
      fail(c, "expected an array of 1 to 16 allowed values");
    } else {
      lw_strlcpy(cfg->attr_names[a], it->string, LW_NAME_MAX);
      int i = 0;
      for (const cJSON *v = it->child; v && !c->failed; v = v->next, i++) {
        size_t k = path_push_index(c, i);
        if (!cJSON_IsString(v) || !is_name(v->valuestring))
          fail(c, "expected a value name of 1-32 letters, digits, '_' or '-'");
        else if (lw_config_attr_value_index(cfg, a, v->valuestring) >= 0)
          fail(c, "value listed twice");
        else
          lw_strlcpy(cfg->attr_values[a][cfg->attr_n_values[a]++], v->valuestring, LW_NAME_MAX);
        path_pop(c, k);
      }
      if (!c->failed) cfg->n_attributes++;
    }
    path_pop(c, m);
  }
  path_pop(c, mark);

  static const char *const approval_extra[] = {"attribute", "values", NULL};
  static const char *const fairness_extra[] = {"attribute", NULL};
  const cJSON *ap = open_object(c, root, "approval", 0, &mark);
  if (ap) {
    check_fields(c, ap, NULL, 0, approval_extra);
    int a = read_attr_ref(c, ap, cfg);
    const cJSON *vals = field(c, ap, "values", 1);
    if (!c->failed) {
      size_t k = path_push_key(c, "values");
      if (!cJSON_IsArray(vals) || cJSON_GetArraySize(vals) < 1) fail_got(c, "a non-empty array", vals);
      int i = 0;
      for (const cJSON *v = vals->child; v && !c->failed; v = v->next, i++) {
        size_t kk = path_push_index(c, i);
        int vi = cJSON_IsString(v) ? lw_config_attr_value_index(cfg, a, v->valuestring) : -1;
        if (vi < 0)
          fail(c, "not one of the attribute's allowed values");
        else
          cfg->approval_values |= 1u << vi;
        path_pop(c, kk);
      }
      path_pop(c, k);
      cfg->approval_attr = a;
    }
    path_pop(c, mark);
  }
  const cJSON *fa = open_object(c, root, "fairness", 0, &mark);
  if (fa) {
    read_fields(c, fa, k_fairness, COUNT(k_fairness), fairness_extra, cfg);
    cfg->fairness_attr = read_attr_ref(c, fa, cfg);
    path_pop(c, mark);
  }
}

/* Line and column of a byte offset, for "not valid JSON" messages. */
static void where(const char *json, size_t off, uint64_t *line, uint64_t *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off; i++) {
    if (json[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

lw_status lw_config_parse(const char *json, size_t len, lw_config *out, char *err, size_t errlen) {

  ctx_t c;
  memset(&c, 0, sizeof c);
  c.err = err;
  c.errlen = errlen;
  if (errlen) err[0] = '\0';

  lw_config cfg;
  memset(&cfg, 0, sizeof cfg);
  set_defaults(k_top, COUNT(k_top), &cfg);
  for (int i = 0; i < COUNT(k_objects); i++) set_defaults(k_objects[i].fields, k_objects[i].n, &cfg);
  set_defaults(k_fairness, COUNT(k_fairness), &cfg);
  cfg.approval_attr = -1;
  cfg.fairness_attr = -1;

  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
    uint64_t line, col;
    where(json, off, &line, &col);
    lw_sbuf sb;
    lw_sb_init(&sb, err, errlen);
    lw_sb_str(&sb, "(top level): not valid JSON near line ");
    lw_sb_u64(&sb, line);
    lw_sb_str(&sb, ", column ");
    lw_sb_u64(&sb, col);
    return LW_ERR_INVALID;
  }
  if (!cJSON_IsObject(root)) {
    fail_got(&c, "an object", root);
  } else {
    read_fields(&c, root, k_top, COUNT(k_top), k_top_custom, &cfg);
    parse_sections(&c, root, &cfg);
    parse_attributes(&c, root, &cfg);
  }
  cJSON_Delete(root);
  if (c.failed) return LW_ERR_INVALID;
  *out = cfg;
  return LW_OK;
}

int lw_config_event_index(const lw_config *cfg, const char *name) {
  for (int i = 0; i < cfg->n_events; i++)
    if (strcmp(cfg->events[i], name) == 0) return i;
  return -1;
}

int lw_config_variant_index(const lw_config *cfg, const char *id) {
  for (int i = 0; i < cfg->n_variants; i++)
    if (strcmp(cfg->variants[i].id, id) == 0) return i;
  return -1;
}

int lw_config_attr_index(const lw_config *cfg, const char *name) {
  for (int i = 0; i < cfg->n_attributes; i++)
    if (strcmp(cfg->attr_names[i], name) == 0) return i;
  return -1;
}

int lw_config_attr_value_index(const lw_config *cfg, int attr, const char *value) {
  if (attr < 0 || attr >= cfg->n_attributes) return -1;
  for (int i = 0; i < cfg->attr_n_values[attr]; i++)
    if (strcmp(cfg->attr_values[attr][i], value) == 0) return i;
  return -1;
}
