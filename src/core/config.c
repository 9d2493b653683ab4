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

/* Refuse fields we do not know (a typo would otherwise be silently ignored) and
 * duplicated fields (cJSON keeps both; which one wins would be a surprise). */
static void check_fields(ctx_t *c, const cJSON *obj, const char *const *allowed) {
  for (const cJSON *it = obj->child; it && !c->failed; it = it->next) {
    int known = 0;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, it->string) == 0) known = 1;
    size_t mark = path_push_key(c, it->string);
    if (!known) {
      lw_sbuf sb;
      if (fail_begin(c, &sb)) {
        lw_sb_str(&sb, "unknown field (expected one of:");
        for (const char *const *a = allowed; *a; a++) {
          lw_sb_char(&sb, ' ');
          lw_sb_str(&sb, *a);
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

static void read_uint(ctx_t *c, const cJSON *obj, const char *key, int required, uint32_t min,
                      uint32_t max, uint32_t *out) {
  const cJSON *v = field(c, obj, key, required);
  if (!v || c->failed) return;
  size_t mark = path_push_key(c, key);
  double d = v->valuedouble;
  if (!cJSON_IsNumber(v) || !(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
    lw_sbuf range;
    char expected[96];
    lw_sb_init(&range, expected, sizeof expected);
    if (min == 1 && max == UINT32_MAX) {
      lw_sb_str(&range, "a positive integer");
    } else if (min == 0 && max == UINT32_MAX) {
      lw_sb_str(&range, "an integer >= 0");
    } else {
      lw_sb_str(&range, "an integer from ");
      lw_sb_u64(&range, min);
      lw_sb_str(&range, " to ");
      lw_sb_u64(&range, max);
    }
    fail_got(c, expected, v);
  } else {
    *out = (uint32_t)d;
  }
  path_pop(c, mark);
}

static void read_number(ctx_t *c, const cJSON *obj, const char *key, int required, double min,
                        double max, double *out) {
  const cJSON *v = field(c, obj, key, required);
  if (!v || c->failed) return;
  size_t mark = path_push_key(c, key);
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= min && v->valuedouble <= max)) {
    char expected[96];
    lw_sbuf sb;
    lw_sb_init(&sb, expected, sizeof expected);
    lw_sb_str(&sb, "a number from ");
    lw_sb_num(&sb, min);
    lw_sb_str(&sb, " to ");
    lw_sb_num(&sb, max);
    fail_got(c, expected, v);
  } else {
    *out = v->valuedouble;
  }
  path_pop(c, mark);
}

static void read_bool(ctx_t *c, const cJSON *obj, const char *key, int *out) {
  const cJSON *v = field(c, obj, key, 0);
  if (!v || c->failed) return;
  size_t mark = path_push_key(c, key);
  if (!cJSON_IsBool(v))
    fail_got(c, "true or false", v);
  else
    *out = cJSON_IsTrue(v);
  path_pop(c, mark);
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

/* kind: 'n' = a name ([A-Za-z0-9_-], 1-32), 't' = text (1..cap-1 bytes of UTF-8). */
static void read_string(ctx_t *c, const cJSON *obj, const char *key, int required, char kind,
                        char *out, size_t cap) {
  const cJSON *v = field(c, obj, key, required);
  if (!v || c->failed) return;
  size_t mark = path_push_key(c, key);
  if (!cJSON_IsString(v)) {
    fail_got(c, "a string", v);
  } else if (kind == 'n' && !is_name(v->valuestring)) {
    fail(c, "expected a name of 1-32 letters, digits, '_' or '-'");
  } else if (kind == 't' && (v->valuestring[0] == '\0' || strlen(v->valuestring) >= cap)) {
    lw_sbuf sb;
    if (fail_begin(c, &sb)) {
      lw_sb_str(&sb, "expected a non-empty text of at most ");
      lw_sb_u64(&sb, cap - 1);
      lw_sb_str(&sb, " bytes");
    }
  } else if (!utf8_valid((const unsigned char *)v->valuestring)) {
    fail(c, "text is not valid UTF-8");
  } else {
    lw_strlcpy(out, v->valuestring, cap);
  }
  path_pop(c, mark);
}

static const cJSON *open_object(ctx_t *c, const cJSON *parent, const char *key, int required,
                                const char *const *allowed, size_t *mark) {
  const cJSON *v = field(c, parent, key, required);
  if (!v || c->failed) return NULL;
  *mark = path_push_key(c, key);
  if (!cJSON_IsObject(v)) {
    fail_got(c, "an object", v);
    return NULL;
  }
  check_fields(c, v, allowed);
  return c->failed ? NULL : v;
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

static void parse_milestones(ctx_t *c, const cJSON *root, lw_config *cfg) {
  static const char *const fields[] = {"event", "after", "every", NULL};
  size_t mark;
  const cJSON *arr = open_array(c, root, "milestones", LW_MAX_MILESTONES, &mark);
  if (!arr) return;
  int i = 0;
  for (const cJSON *it = arr->child; it && !c->failed; it = it->next, i++) {
    size_t m = path_push_index(c, i);
    lw_milestone *ms = &cfg->milestones[cfg->n_milestones];
    char event[LW_NAME_MAX] = "";
    if (!cJSON_IsObject(it)) {
      fail_got(c, "an object", it);
    } else {
      check_fields(c, it, fields);
      read_string(c, it, "event", 1, 'n', event, sizeof event);
      read_uint(c, it, "after", 1, 1, UINT32_MAX, &ms->after);
      ms->every = 0;
      read_uint(c, it, "every", 0, 0, UINT32_MAX, &ms->every);
      if (!c->failed) {
        ms->event = lw_config_event_index(cfg, event);
        if (ms->event < 0) {
          size_t k = path_push_key(c, "event");
          lw_sbuf sb;
          if (fail_begin(c, &sb)) {
            lw_sb_str(&sb, "unknown event '");
            lw_sb_str(&sb, event);
            lw_sb_str(&sb, "' (list it in events)");
          }
          path_pop(c, k);
        }
      }
      if (!c->failed) cfg->n_milestones++;
    }
    path_pop(c, m);
  }
  path_pop(c, mark);
}

static void parse_variants(ctx_t *c, const cJSON *root, lw_config *cfg) {
  static const char *const fields[] = {"id",     "title",  "message", "referrer_reward",
                                       "referee_reward", "cost", "weight", NULL};
  size_t mark;
  const cJSON *arr = open_array(c, root, "variants", LW_MAX_VARIANTS, &mark);
  if (!arr) return;
  int i = 0;
  uint64_t total = 0;
  for (const cJSON *it = arr->child; it && !c->failed; it = it->next, i++) {
    size_t m = path_push_index(c, i);
    lw_variant *v = &cfg->variants[cfg->n_variants];
    memset(v, 0, sizeof *v);
    if (!cJSON_IsObject(it)) {
      fail_got(c, "an object", it);
    } else {
      check_fields(c, it, fields);
      read_string(c, it, "id", 1, 'n', v->id, sizeof v->id);
      if (!c->failed && (lw_config_variant_index(cfg, v->id) >= 0 ||
                         strcmp(v->id, "none") == 0 || strcmp(v->id, "not_now") == 0)) {
        size_t k = path_push_key(c, "id");
        fail(c, "variant id must be unique and not 'none' or 'not_now'");
        path_pop(c, k);
      }
      read_string(c, it, "title", 1, 't', v->title, sizeof v->title);
      read_string(c, it, "message", 1, 't', v->message, sizeof v->message);
      read_string(c, it, "referrer_reward", 1, 't', v->referrer_reward, sizeof v->referrer_reward);
      read_string(c, it, "referee_reward", 1, 't', v->referee_reward, sizeof v->referee_reward);
      read_number(c, it, "cost", 1, 0, 1e9, &v->cost);
      v->weight = 1;
      read_uint(c, it, "weight", 0, 0, 1000000, &v->weight);
      total += v->weight;
      if (!c->failed) cfg->n_variants++;
    }
    path_pop(c, m);
  }
  if (!c->failed && total == 0) fail(c, "at least one variant needs a weight above 0");
  path_pop(c, mark);
}

static void parse_policy(ctx_t *c, const cJSON *root, lw_config *cfg) {
  static const char *const consent_fields[] = {"required", "default", NULL};
  static const char *const cap_fields[] = {"max_prompts", "window_days", "min_gap_hours", NULL};
  static const char *const cd_fields[] = {"days", "growth", "max_days", NULL};
  static const char *const quiet_fields[] = {"start", "end", NULL};
  static const char *const share_fields[] = {"url", "title", "text", NULL};
  size_t mark;
  const cJSON *o;

  if ((o = open_object(c, root, "share", 1, share_fields, &mark))) {
    read_string(c, o, "url", 1, 't', cfg->share_url, sizeof cfg->share_url);
    read_string(c, o, "title", 0, 't', cfg->share_title, sizeof cfg->share_title);
    read_string(c, o, "text", 0, 't', cfg->share_text, sizeof cfg->share_text);
    if (!c->failed && !strstr(cfg->share_url, "{code}")) {
      size_t k = path_push_key(c, "url");
      fail(c, "must contain {code}, where the referral code goes");
      path_pop(c, k);
    }
  }
  if (o) path_pop(c, mark);

  if ((o = open_object(c, root, "consent", 0, consent_fields, &mark))) {
    read_bool(c, o, "required", &cfg->consent_required);
    read_bool(c, o, "default", &cfg->consent_default);
    path_pop(c, mark);
  }
  if ((o = open_object(c, root, "caps", 0, cap_fields, &mark))) {
    read_uint(c, o, "max_prompts", 0, 1, 1000, &cfg->cap_max_prompts);
    read_uint(c, o, "window_days", 0, 1, 3650, &cfg->cap_window_days);
    read_uint(c, o, "min_gap_hours", 0, 0, 24 * 3650, &cfg->cap_min_gap_hours);
    path_pop(c, mark);
  }
  if ((o = open_object(c, root, "cooldown", 0, cd_fields, &mark))) {
    read_uint(c, o, "days", 0, 0, 3650, &cfg->cooldown_days);
    read_uint(c, o, "growth", 0, 1, 100, &cfg->cooldown_growth);
    read_uint(c, o, "max_days", 0, 0, 3650, &cfg->cooldown_max_days);
    if (!c->failed && cfg->cooldown_max_days < cfg->cooldown_days) {
      size_t k = path_push_key(c, "max_days");
      fail(c, "must be at least cooldown.days");
      path_pop(c, k);
    }
    path_pop(c, mark);
  }
  if ((o = open_object(c, root, "quiet_hours", 0, quiet_fields, &mark))) {
    uint32_t start = 0, end = 0;
    read_uint(c, o, "start", 1, 0, 23, &start);
    read_uint(c, o, "end", 1, 0, 23, &end);
    if (!c->failed && start == end) fail(c, "start and end must differ");
    cfg->quiet_start_hour = (int)start;
    cfg->quiet_end_hour = (int)end;
    path_pop(c, mark);
  }
}

/* Names one attribute from the config's `attributes`, or fails at the current path. */
static int read_attr_ref(ctx_t *c, const cJSON *o, const char *key, const lw_config *cfg) {
  char name[LW_NAME_MAX] = "";
  read_string(c, o, key, 1, 'n', name, sizeof name);
  if (c->failed) return -1;
  int a = lw_config_attr_index(cfg, name);
  if (a < 0) {
    size_t k = path_push_key(c, key);
    lw_sbuf sb;
    if (fail_begin(c, &sb)) {
      lw_sb_str(&sb, "unknown attribute '");
      lw_sb_str(&sb, name);
      lw_sb_str(&sb, "' (list it in attributes)");
    }
    path_pop(c, k);
  }
  return a;
}

static void parse_attributes(ctx_t *c, const cJSON *root, lw_config *cfg) {
  const cJSON *o = field(c, root, "attributes", 0);
  if (!o || c->failed) return;
  size_t mark = path_push_key(c, "attributes");
  if (!cJSON_IsObject(o)) fail_got(c, "an object of attribute name to allowed values", o);
  for (const cJSON *it = o ? o->child : NULL; it && !c->failed; it = it->next) {
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
}

static void parse_engine(ctx_t *c, const cJSON *root, lw_config *cfg) {
  static const char *const session_fields[] = {"min_age_s", NULL};
  static const char *const privacy_fields[] = {"respect_gpc", "respect_dnt", NULL};
  static const char *const explore_fields[] = {"temperature", "floor", NULL};
  static const char *const model_fields[] = {"refresh_hours", NULL};
  static const char *const approval_fields[] = {"attribute", "values", NULL};
  static const char *const fairness_fields[] = {"attribute", "min_exposure_ratio", NULL};
  static const char *const ladder_fields[] = {"referrals", "reward", NULL};
  size_t mark;
  const cJSON *o;

  if ((o = open_object(c, root, "session", 0, session_fields, &mark))) {
    read_uint(c, o, "min_age_s", 0, 0, 86400, &cfg->min_session_s);
    path_pop(c, mark);
  }
  if ((o = open_object(c, root, "privacy", 0, privacy_fields, &mark))) {
    read_bool(c, o, "respect_gpc", &cfg->respect_gpc);
    read_bool(c, o, "respect_dnt", &cfg->respect_dnt);
    path_pop(c, mark);
  }
  read_number(c, root, "value_per_referral", 0, 0, 1e9, &cfg->value_per_referral);
  read_number(c, root, "fatigue_cost", 0, 0, 1e9, &cfg->fatigue_cost);
  read_number(c, root, "holdout", 0, 0, 0.5, &cfg->holdout);
  if ((o = open_object(c, root, "explore", 0, explore_fields, &mark))) {
    read_number(c, o, "temperature", 0, 0.001, 1e9, &cfg->explore_temperature);
    read_number(c, o, "floor", 0, 0, 0.1, &cfg->explore_floor);
    path_pop(c, mark);
  }
  if ((o = open_object(c, root, "model", 0, model_fields, &mark))) {
    read_uint(c, o, "refresh_hours", 0, 1, 720, &cfg->model_refresh_hours);
    path_pop(c, mark);
  }
  parse_attributes(c, root, cfg);
  if ((o = open_object(c, root, "approval", 0, approval_fields, &mark))) {
    int a = read_attr_ref(c, o, "attribute", cfg);
    const cJSON *vals = field(c, o, "values", 1);
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
  if ((o = open_object(c, root, "fairness", 0, fairness_fields, &mark))) {
    cfg->fairness_attr = read_attr_ref(c, o, "attribute", cfg);
    read_number(c, o, "min_exposure_ratio", 0, 0, 1, &cfg->fairness_min_ratio);
    path_pop(c, mark);
  }
  const cJSON *lad = field(c, root, "ladder", 0);
  if (lad && !c->failed) {
    const cJSON *arr = open_array(c, root, "ladder", LW_MAX_LADDER, &mark);
    int i = 0;
    for (const cJSON *it = arr ? arr->child : NULL; it && !c->failed; it = it->next, i++) {
      size_t m = path_push_index(c, i);
      if (!cJSON_IsObject(it)) {
        fail_got(c, "an object", it);
      } else {
        check_fields(c, it, ladder_fields);
        read_uint(c, it, "referrals", 1, 0, 1000000, &cfg->ladder_referrals[i]);
        read_string(c, it, "reward", 1, 't', cfg->ladder_reward[i], sizeof cfg->ladder_reward[i]);
        if (!c->failed && i > 0 && cfg->ladder_referrals[i] <= cfg->ladder_referrals[i - 1]) {
          size_t k = path_push_key(c, "referrals");
          fail(c, "must be larger than the previous step's");
          path_pop(c, k);
        }
        if (!c->failed) cfg->n_ladder++;
      }
      path_pop(c, m);
    }
    if (arr) path_pop(c, mark);
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
  static const char *const top_fields[] = {"version",  "program", "share",   "events",
                                           "milestones", "variants", "not_now_weight", "consent",
                                           "caps",     "cooldown", "quiet_hours", "session",
                                           "privacy", "value_per_referral", "fatigue_cost",
                                           "explore", "holdout", "model", "attributes",
                                           "approval", "fairness", "ladder", NULL};
  ctx_t c;
  memset(&c, 0, sizeof c);
  c.err = err;
  c.errlen = errlen;
  if (errlen) err[0] = '\0';

  lw_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.consent_default = 1;
  cfg.cap_max_prompts = 2;
  cfg.cap_window_days = 30;
  cfg.cap_min_gap_hours = 24;
  cfg.cooldown_days = 7;
  cfg.cooldown_growth = 2;
  cfg.cooldown_max_days = 90;
  cfg.quiet_start_hour = -1;
  cfg.quiet_end_hour = -1;
  cfg.respect_gpc = 1;
  cfg.value_per_referral = 50;
  cfg.fatigue_cost = 1;
  cfg.explore_temperature = 5;
  cfg.explore_floor = 0.02;
  cfg.model_refresh_hours = 24;
  cfg.approval_attr = -1;
  cfg.fairness_attr = -1;
  cfg.fairness_min_ratio = 0.8;

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
    check_fields(&c, root, top_fields);
    read_uint(&c, root, "version", 1, 1, 1, &cfg.version);
    read_string(&c, root, "program", 0, 't', cfg.program, sizeof cfg.program);
    parse_events(&c, root, &cfg);
    parse_milestones(&c, root, &cfg);
    parse_variants(&c, root, &cfg);
    read_uint(&c, root, "not_now_weight", 0, 0, 1000000, &cfg.not_now_weight);
    parse_policy(&c, root, &cfg);
    parse_engine(&c, root, &cfg);
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
