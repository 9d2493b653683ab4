/* config.c: read the program config from JSON (see loopwise/config.h).
 *
 * Every check reports the JSON path it was looking at, so a product manager can find
 * the mistake without reading code. The schema tables and the rules that span fields
 * live in config_schema.c, shared with the compiled format (config_bin.c); this file
 * adds what only JSON needs: types, unknown and repeated keys, names looked up by text. */
#include "loopwise/config.h"

#include <cJSON.h>
#include <string.h>

#include "config_schema.h"
#include "loopwise/json.h"
#include "loopwise/text.h"

typedef lw_cfg_ctx ctx_t;
typedef lw_cfg_field field_t;

static const char *type_name(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  return "something else";
}

static void fail_got(ctx_t *c, const char *expected, const field_t *f, const cJSON *got) {
  lw_sbuf sb;
  if (!lw_cfg_fail_begin(c, &sb)) return;
  lw_sb_str(&sb, "expected ");
  if (f)
    lw_cfg_describe(&sb, f);
  else
    lw_sb_str(&sb, expected);
  lw_sb_str(&sb, ", got ");
  if (cJSON_IsNumber(got))
    lw_sb_num(&sb, got->valuedouble);
  else
    lw_sb_str(&sb, type_name(got));
}

/* Refuse fields that are neither in the table nor in `extra` (NULL-terminated), and
 * fields given twice (cJSON keeps both; which one wins would be a surprise). */
static void check_fields(ctx_t *c, const cJSON *obj, const field_t *f, int n, const char *const *extra) {
  for (const cJSON *it = obj->child; it && LW_CFG_GOING(c); it = it->next) {
    int known = 0;
    for (int i = 0; i < n; i++) known |= strcmp(f[i].key, it->string) == 0;
    for (const char *const *x = extra; x && *x; x++) known |= strcmp(*x, it->string) == 0;
    size_t mark = lw_cfg_push_key(c, it->string);
    if (!known) {
      lw_sbuf sb;
      if (lw_cfg_fail_begin(c, &sb)) {
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
    for (const cJSON *other = it->next; other; other = other->next)
      if (strcmp(other->string, it->string) == 0) {
        lw_cfg_fail(c, "field appears twice");
        break;
      }
    lw_cfg_pop(c, mark);
  }
}

/* Returns the field, or NULL when absent (an error if required). */
static const cJSON *field(ctx_t *c, const cJSON *obj, const char *key, int required) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v && required && LW_CFG_GOING(c)) lw_cfg_fail_named(c, key, "is required", "", "");
  return v;
}

/* Check one value's JSON type and range (and, for integers, that it is one) and store it at
 * dst; a name or text is checked once stored, by the shared schema. */
static void read_value(ctx_t *c, const cJSON *v, const field_t *f, void *dst) {
  double d = v->valuedouble;
  switch (f->kind) {
    case LW_K_UINT:
      if (!cJSON_IsNumber(v) || !(d >= f->min && d <= f->max) || d != (double)(int64_t)d) break;
      uint32_t u = (uint32_t)d;
      memcpy(dst, &u, sizeof u);
      return;
    case LW_K_NUM:
      if (!cJSON_IsNumber(v) || !(d >= f->min && d <= f->max)) break;
      memcpy(dst, &d, sizeof d);
      return;
    case LW_K_BOOL:
      if (!cJSON_IsBool(v)) break;
      int b = cJSON_IsTrue(v);
      memcpy(dst, &b, sizeof b);
      return;
    default: { /* LW_K_NAME, LW_K_TEXT: too long is refused before it could be cut short */
      if (!cJSON_IsString(v)) {
        fail_got(c, "a string", f->kind > LW_K_TEXT ? f : NULL, v);
        return;
      }
      const char *s = v->valuestring;
      if (strlen(s) >= f->size || (f->kind != LW_K_NAME && !*s)) {
        lw_sbuf sb;
        if (lw_cfg_fail_begin(c, &sb)) {
          lw_sb_str(&sb, "expected ");
          lw_cfg_describe(&sb, f);
        }
        return;
      }
      lw_strlcpy(dst, s, f->size);
      lw_cfg_check_text(c, f, dst);
      return;
    }
  }
  fail_got(c, NULL, f, v);
}

/* Check obj against the table (plus `extra` fields the caller reads itself) and store
 * every field present into base. */
static void read_fields(ctx_t *c, const cJSON *obj, const field_t *f, int n, const char *const *extra,
                        void *base) {
  check_fields(c, obj, f, n, extra);
  for (int i = 0; i < n && LW_CFG_GOING(c); i++) {
    const cJSON *v = field(c, obj, f[i].key, f[i].required);
    if (!v) continue;
    size_t mark = lw_cfg_push_key(c, f[i].key);
    read_value(c, v, &f[i], (char *)base + f[i].off);
    lw_cfg_pop(c, mark);
  }
}

/* Open the object field `key` of parent (NULL when absent or wrong); the caller pops. */
static const cJSON *open_object(ctx_t *c, const cJSON *parent, const char *key, int required,
                                size_t *mark) {
  const cJSON *v = field(c, parent, key, required);
  if (!v || !LW_CFG_GOING(c)) return NULL;
  *mark = lw_cfg_push_key(c, key);
  if (!cJSON_IsObject(v)) {
    fail_got(c, "an object", NULL, v);
    lw_cfg_pop(c, *mark);
    return NULL;
  }
  return v;
}

static const cJSON *open_array(ctx_t *c, const cJSON *parent, const char *key, int max,
                               size_t *mark) {
  const cJSON *v = field(c, parent, key, 1);
  if (!v || !LW_CFG_GOING(c)) return NULL;
  int before = c->n_errors;
  *mark = lw_cfg_push_key(c, key);
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  if (!cJSON_IsArray(v)) {
    fail_got(c, "an array", NULL, v);
  } else {
    lw_cfg_count_ok(c, NULL, n, 1, max);
  }
  if (c->n_errors == before) return v;
  lw_cfg_pop(c, *mark);
  return NULL;
}

/* A name from JSON into dst (LW_NAME_LEN + 1 bytes), or a failure at the current path. */
static void read_name(ctx_t *c, const cJSON *v, const char *what, char *dst) {
  if (!cJSON_IsString(v))
    fail_got(c, what, NULL, v);
  else if (!lw_is_name(v->valuestring))
    lw_cfg_fail(c, "expected a name of 1-32 letters, digits, '_' or '-'");
  else
    lw_strlcpy(dst, v->valuestring, LW_NAME_LEN + 1);
}

/* ---- sections ------------------------------------------------------------------- */

static void parse_events(ctx_t *c, const cJSON *root, lw_config *cfg) {
  size_t mark;
  const cJSON *arr = open_array(c, root, "events", LW_MAX_EVENTS, &mark);
  if (!arr) return;
  int i = 0;
  for (const cJSON *it = arr->child; it && LW_CFG_GOING(c); it = it->next, i++) {
    size_t m = lw_cfg_push_index(c, i);
    read_name(c, it, "an event name", cfg->events[i]);
    lw_cfg_pop(c, m);
  }
  cfg->n_events = i;
  lw_cfg_pop(c, mark);
}

/* An array of objects, each checked against o's fields (plus `extra`) and stored at
 * base + i × stride; `each` (optional) reads the rest. Returns the count. */
static int read_array(ctx_t *c, const cJSON *root, const lw_cfg_object *o, int max, const char *const *extra,
                      void *base, size_t stride, void (*each)(ctx_t *, const cJSON *, int, lw_config *),
                      lw_config *cfg) {
  size_t mark;
  const cJSON *arr = open_array(c, root, o->key, max, &mark);
  if (!arr) return 0;
  int i = 0;
  for (const cJSON *it = arr->child; it && LW_CFG_GOING(c); it = it->next, i++) {
    size_t m = lw_cfg_push_index(c, i);
    char *elem = (char *)base + (size_t)i * stride;
    if (!cJSON_IsObject(it)) {
      fail_got(c, "an object", NULL, it);
    } else {
      lw_cfg_element_defaults(o, elem);
      read_fields(c, it, o->fields, o->n, extra, elem);
      if (each && LW_CFG_GOING(c)) each(c, it, i, cfg);
    }
    lw_cfg_pop(c, m);
  }
  lw_cfg_pop(c, mark);
  return i; /* (a failed element holds what could be read: checked further only with `all`) */
}

static void each_milestone(ctx_t *c, const cJSON *it, int i, lw_config *cfg) {
  const cJSON *v = field(c, it, "event", 1);
  if (!v) return;
  size_t k = lw_cfg_push_key(c, "event");
  char name[LW_NAME_LEN + 1];
  int before = c->n_errors;
  read_name(c, v, "an event name", name);
  if (c->n_errors == before) {
    cfg->milestones[i].event = lw_config_event_index(cfg, name);
    if (cfg->milestones[i].event < 0) lw_cfg_fail_named(c, NULL, "unknown event '", name, "' (list it in events)");
  }
  lw_cfg_pop(c, k);
}

/* "enabled": false switches a variant off: it compiles to weight 0, which every mode honours. */
static void each_variant(ctx_t *c, const cJSON *it, int i, lw_config *cfg) {
  const cJSON *v = field(c, it, "enabled", 0);
  if (!v) return;
  size_t k = lw_cfg_push_key(c, "enabled");
  if (!cJSON_IsBool(v))
    fail_got(c, "true or false", NULL, v);
  else if (cJSON_IsFalse(v))
    cfg->variants[i].weight = 0;
  lw_cfg_pop(c, k);
}

/* Names one attribute from the config's `attributes`, or fails at the current path. */
static int read_attr_ref(ctx_t *c, const cJSON *o, const lw_config *cfg) {
  char name[LW_NAME_LEN + 1] = "";
  const cJSON *v = field(c, o, "attribute", 1);
  if (!v) return -1;
  size_t k = lw_cfg_push_key(c, "attribute");
  int before = c->n_errors;
  read_name(c, v, "an attribute name", name);
  int a = c->n_errors != before ? -1 : lw_config_attr_index(cfg, name);
  if (c->n_errors == before && a < 0) lw_cfg_fail_named(c, NULL, "unknown attribute '", name, "' (list it in attributes)");
  lw_cfg_pop(c, k);
  return a;
}

static void parse_attributes(ctx_t *c, const cJSON *root, lw_config *cfg) {
  const cJSON *o = field(c, root, "attributes", 0);
  if (!o || !LW_CFG_GOING(c)) return;
  size_t mark = lw_cfg_push_key(c, "attributes");
  if (!cJSON_IsObject(o)) fail_got(c, "an object of attribute name to allowed values", NULL, o);
  for (const cJSON *it = cJSON_IsObject(o) ? o->child : NULL; it && LW_CFG_GOING(c); it = it->next) {
    size_t m = lw_cfg_push_key(c, it->string);
    int a = cfg->n_attributes;
    if (a >= LW_MAX_ATTRIBUTES) {
      lw_cfg_fail(c, "too many attributes (at most 4)");
    } else if (!lw_is_name(it->string)) {
      lw_cfg_fail(c, "attribute names are 1-32 letters, digits, '_' or '-'");
    } else if (lw_config_attr_index(cfg, it->string) >= 0) {
      lw_cfg_fail(c, "field appears twice");
    } else if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 ||
               cJSON_GetArraySize(it) > LW_MAX_ATTR_VALUES) {
      lw_cfg_fail(c, "expected an array of 1 to 16 allowed values");
    } else {
      lw_strlcpy(cfg->attr_names[a], it->string, LW_NAME_LEN + 1);
      int i = 0;
      for (const cJSON *v = it->child; v && LW_CFG_GOING(c); v = v->next, i++) {
        size_t k = lw_cfg_push_index(c, i);
        if (!cJSON_IsString(v) || !lw_is_name(v->valuestring))
          lw_cfg_fail(c, "expected a value name of 1-32 letters, digits, '_' or '-'");
        else
          lw_strlcpy(cfg->attr_values[a][cfg->attr_n_values[a]++], v->valuestring, LW_NAME_LEN + 1);
        lw_cfg_pop(c, k);
      }
      cfg->n_attributes++;
    }
    lw_cfg_pop(c, m);
  }
  lw_cfg_pop(c, mark);

  static const char *const approval_extra[] = {"attribute", "values", "send", NULL};
  static const char *const fairness_extra[] = {"attribute", NULL};
  const cJSON *ap = open_object(c, root, "approval", 0, &mark);
  if (ap) {
    check_fields(c, ap, NULL, 0, approval_extra);
    int a = read_attr_ref(c, ap, cfg);
    const cJSON *vals = field(c, ap, "values", 1);
    if (vals && LW_CFG_GOING(c)) {
      size_t k = lw_cfg_push_key(c, "values");
      int is_list = cJSON_IsArray(vals) && cJSON_GetArraySize(vals) >= 1, i = 0;
      if (!is_list) fail_got(c, "a non-empty array", NULL, vals);
      /* (values of an attribute that failed are not checked against it) */
      for (const cJSON *v = is_list && a >= 0 ? vals->child : NULL; v && LW_CFG_GOING(c); v = v->next, i++) {
        size_t kk = lw_cfg_push_index(c, i);
        int vi = cJSON_IsString(v) ? lw_config_attr_value_index(cfg, a, v->valuestring) : -1;
        if (vi < 0)
          lw_cfg_fail(c, "not one of the attribute's allowed values");
        else
          cfg->approval_values |= 1u << vi;
        lw_cfg_pop(c, kk);
      }
      lw_cfg_pop(c, k);
      cfg->approval_attr = a;
    }
    /* send: the attributes an approval request carries to the console (wire v3), by name. */
    const cJSON *send = field(c, ap, "send", 0);
    if (send && LW_CFG_GOING(c)) {
      size_t k = lw_cfg_push_key(c, "send");
      int i = 0;
      if (!cJSON_IsArray(send)) fail_got(c, "an array of attribute names", NULL, send);
      for (const cJSON *v = cJSON_IsArray(send) ? send->child : NULL; v && LW_CFG_GOING(c); v = v->next, i++) {
        size_t kk = lw_cfg_push_index(c, i);
        int sa = cJSON_IsString(v) ? lw_config_attr_index(cfg, v->valuestring) : -1;
        if (!cJSON_IsString(v))
          fail_got(c, "an attribute name", NULL, v);
        else if (sa < 0)
          lw_cfg_fail_named(c, NULL, "unknown attribute '", v->valuestring, "' (list it in attributes)");
        else if (cfg->approval_send >> sa & 1u)
          lw_cfg_fail(c, "attribute listed twice");
        else
          cfg->approval_send |= 1u << sa;
        lw_cfg_pop(c, kk);
      }
      lw_cfg_pop(c, k);
    }
    lw_cfg_pop(c, mark);
  }
  const lw_cfg_object *fo = &lw_cfg_objects[lw_cfg_n_objects - 1];
  const cJSON *fa = open_object(c, root, fo->key, 0, &mark);
  if (fa) {
    read_fields(c, fa, fo->fields, fo->n, fairness_extra, cfg);
    cfg->fairness_attr = read_attr_ref(c, fa, cfg);
    lw_cfg_pop(c, mark);
  }
}

/* ---- locales: the texts per language (issue 14) --------------------------------------
 * Checked here with their JSON paths; not kept in lw_config (the engine never sees a text):
 * lw_config_write_json copies them from the JSON into the compiled display part. */

/* A BCP 47 tag as navigator.language gives it: a 2-3 letter language, then subtags. */
static int tag_ok(const char *s) {
  size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
  if (n < 2 || n > 3 || strlen(s) > LW_LOCALE_TAG_LEN) return 0;
  for (s += n; *s; s += n) {
    if (*s++ != '-') return 0;
    n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    if (n < 1 || n > 8) return 0;
  }
  return 1;
}

/* The placeholders the widget fills in a text: {referrer_reward} and {referee_reward}. A
 * locale's text with any other {word} is refused (the config's own texts are shown as they
 * were before, any other braces included). */
static void placeholders_ok(ctx_t *c, const char *s) {
  for (const char *o = strchr(s, '{'); o; o = strchr(o + 1, '{')) {
    const char *e = strchr(o, '}');
    size_t n = e ? (size_t)(e - o - 1) : 0;
    if (!e || strspn(o + 1, "abcdefghijklmnopqrstuvwxyz_") != n) continue; /* not a placeholder */
    if ((n == 15 && strncmp(o + 1, "referrer_reward", n) == 0) || (n == 14 && strncmp(o + 1, "referee_reward", n) == 0))
      continue;
    char word[64];
    lw_strlcpy(word, o, n + 3 < sizeof word ? n + 3 : sizeof word);
    lw_cfg_fail_named(c, NULL, "unknown placeholder ", word, " (expected {referrer_reward} or {referee_reward})");
    return;
  }
}

/* The fields of table o in obj (an object at the current path), each checked as a text and for
 * its placeholders. scratch: room for the table's target struct (nothing is kept). */
static void locale_texts(ctx_t *c, const cJSON *obj, const lw_cfg_object *o, void *scratch) {
  if (!cJSON_IsObject(obj)) {
    fail_got(c, "an object", NULL, obj);
    return;
  }
  read_fields(c, obj, o->fields, o->n, NULL, scratch);
  for (int i = 0; i < o->n && LW_CFG_GOING(c); i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, o->fields[i].key);
    if (!cJSON_IsString(v)) continue;
    size_t k = lw_cfg_push_key(c, o->fields[i].key);
    placeholders_ok(c, v->valuestring);
    lw_cfg_pop(c, k);
  }
}

static void parse_locales(ctx_t *c, const cJSON *root, const lw_config *cfg) {
  static const char *const members[] = {"share", "variants", "labels", NULL};
  lw_variant scratch; /* where the texts are checked; nothing is kept */
  size_t mark;
  const cJSON *o = open_object(c, root, "locales", 0, &mark);
  if (!o) return;
  if (cJSON_GetArraySize(o) > LW_MAX_LOCALES + 1) lw_cfg_fail(c, "too many locales (at most 12 and default)");
  for (const cJSON *it = o->child; it && LW_CFG_GOING(c); it = it->next) {
    size_t m = lw_cfg_push_key(c, it->string);
    if (strcmp(it->string, "default") == 0) {
      if (!cJSON_IsString(it) || !tag_ok(it->valuestring))
        lw_cfg_fail(c, "expected a language tag such as en or pt-BR (the language of the config's own texts)");
    } else if (!tag_ok(it->string)) {
      lw_cfg_fail(c, "expected a language tag such as fr or pt-BR, or default");
    } else if (!cJSON_IsObject(it)) {
      fail_got(c, "an object", NULL, it);
    } else {
      check_fields(c, it, NULL, 0, members);
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "share");
      size_t k;
      if (v && LW_CFG_GOING(c)) {
        k = lw_cfg_push_key(c, "share");
        locale_texts(c, v, &lw_cfg_locale_share, &scratch);
        lw_cfg_pop(c, k);
      }
      if ((v = cJSON_GetObjectItemCaseSensitive(it, "labels")) && LW_CFG_GOING(c)) {
        k = lw_cfg_push_key(c, "labels");
        locale_texts(c, v, &lw_cfg_locale_labels, scratch.title);
        lw_cfg_pop(c, k);
      }
      if ((v = cJSON_GetObjectItemCaseSensitive(it, "variants")) && LW_CFG_GOING(c)) {
        k = lw_cfg_push_key(c, "variants");
        if (!cJSON_IsObject(v)) fail_got(c, "an object of variant id to texts", NULL, v);
        for (const cJSON *e = cJSON_IsObject(v) ? v->child : NULL; e && LW_CFG_GOING(c); e = e->next) {
          size_t ek = lw_cfg_push_key(c, e->string);
          if (lw_config_variant_index(cfg, e->string) < 0)
            lw_cfg_fail_named(c, NULL, "unknown variant '", e->string, "' (list it in variants)");
          else
            locale_texts(c, e, &lw_cfg_locale_variant, &scratch);
          lw_cfg_pop(c, ek);
        }
        lw_cfg_pop(c, k);
      }
    }
    lw_cfg_pop(c, m);
  }
  lw_cfg_pop(c, mark);
}

/* Top-level fields read by their own code rather than the top-level table. */
static const char *const k_top_custom[] = {"share",   "consent",    "caps",     "cooldown",   "quiet_hours",
                                           "session", "privacy",    "explore",  "model",      "reward",     "events",
                                           "milestones", "variants", "attributes", "approval", "fairness",
                                           "ladder",  "theme", "placement", "locales", "channels", "preview", "$schema", NULL};

/* "channels" (issue 14): the share channels the prompt offers, in their default order: names
 * from LW_CHANNELS (wire.h), each once. Absent, every channel in that order (lw_cfg_defaults). */
static void parse_channels(ctx_t *c, const cJSON *root, lw_config *cfg) {
  const cJSON *arr = field(c, root, "channels", 0);
  if (!arr || !LW_CFG_GOING(c)) return;
  size_t mark = lw_cfg_push_key(c, "channels");
  int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
  if (!cJSON_IsArray(arr)) {
    fail_got(c, "an array of channel names", NULL, arr);
  } else if (lw_cfg_count_ok(c, NULL, n, 1, LW_CHANNEL_COUNT)) {
    unsigned seen = 0;
    int i = 0;
    cfg->n_channels = 0;
    for (const cJSON *it = arr->child; it && LW_CFG_GOING(c); it = it->next, i++) {
      size_t m = lw_cfg_push_index(c, i);
      int ch = cJSON_IsString(it) ? lw_channel_parse(it->valuestring) : -1;
      lw_sbuf sb;
      if (ch < 0 && lw_cfg_fail_begin(c, &sb)) {
        lw_sb_str(&sb, "expected one of:");
        for (int k = 0; k < LW_CHANNEL_COUNT; k++) {
          lw_sb_char(&sb, ' ');
          lw_sb_str(&sb, lw_channel_name((lw_channel)k));
        }
        lw_sb_str(&sb, cJSON_IsString(it) ? ", got '" : ", got ");
        lw_sb_str(&sb, cJSON_IsString(it) ? it->valuestring : type_name(it));
        if (cJSON_IsString(it)) lw_sb_char(&sb, '\'');
      } else if (ch >= 0 && (seen >> ch & 1u)) {
        lw_cfg_fail(c, "channel listed twice");
      } else if (ch >= 0) {
        seen |= 1u << ch;
        cfg->channels[cfg->n_channels++] = (uint8_t)ch;
      }
      lw_cfg_pop(c, m);
    }
  }
  lw_cfg_pop(c, mark);
}

static void parse_root(ctx_t *c, const cJSON *root, lw_config *cfg) {
  static const char *const event_extra[] = {"event", NULL};
  read_fields(c, root, lw_cfg_objects[0].fields, lw_cfg_objects[0].n, k_top_custom, cfg);
  /* "$schema": where an editor finds the JSON Schema (web/config.schema.json); not stored. */
  const cJSON *sch = field(c, root, "$schema", 0);
  if (sch && !cJSON_IsString(sch)) {
    size_t k = lw_cfg_push_key(c, "$schema");
    fail_got(c, "a string", NULL, sch);
    lw_cfg_pop(c, k);
  }
  /* The plain objects: all but the top level and fairness (read with the attributes), then the
   * widget's. */
  for (int i = 1; i < lw_cfg_n_objects - 1 + lw_cfg_n_shown && LW_CFG_GOING(c); i++) {
    const lw_cfg_object *t = i < lw_cfg_n_objects - 1 ? &lw_cfg_objects[i] : &lw_cfg_shown[i - lw_cfg_n_objects + 1];
    size_t mark;
    const cJSON *o = open_object(c, root, t->key, t->required, &mark);
    if (!o) continue;
    read_fields(c, o, t->fields, t->n, NULL, cfg);
    lw_cfg_pop(c, mark);
  }
  parse_events(c, root, cfg);
  cfg->n_milestones = read_array(c, root, &lw_cfg_milestone, LW_MAX_MILESTONES, event_extra, cfg->milestones,
                                 sizeof cfg->milestones[0], each_milestone, cfg);
  cfg->n_variants = read_array(c, root, &lw_cfg_variant, LW_MAX_VARIANTS, lw_cfg_variant_extra, cfg->variants,
                               sizeof cfg->variants[0], each_variant, cfg);
  if (field(c, root, "ladder", 0))
    cfg->n_ladder = read_array(c, root, &lw_cfg_ladder, LW_MAX_LADDER, NULL, cfg->ladder,
                               sizeof cfg->ladder[0], NULL, cfg);
  parse_attributes(c, root, cfg);
  parse_locales(c, root, cfg);
  parse_channels(c, root, cfg);
  size_t mark;
  const cJSON *pv = open_object(c, root, lw_cfg_preview.key, 0, &mark);
  if (pv) {
    read_fields(c, pv, lw_cfg_preview.fields, lw_cfg_preview.n, NULL, cfg);
    lw_cfg_pop(c, mark);
  }
  lw_cfg_check_rules(c, cfg);
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

static lw_status parse(const char *json, size_t len, lw_config *out, char *err, size_t errlen, int all,
                       int *n_errors) {
  ctx_t c;
  lw_cfg_ctx_init(&c, err, errlen);
  c.all = all;
  if (n_errors) *n_errors = 1; /* until the JSON parses */
  lw_config cfg;
  lw_cfg_defaults(&cfg);
  /* The display part's channels default here, not in lw_cfg_defaults: the runtime's reader
   * (WASM) never needs them, so it carries no code for them. Every channel, LW_CHANNELS order. */
  cfg.n_channels = LW_CHANNEL_COUNT;
  for (int i = 0; i < LW_CHANNEL_COUNT; i++) cfg.channels[i] = (uint8_t)i;

  const char *end = NULL;
  lw_status pst;
  cJSON *root = lw_json_parse(json, len, &end, &pst);
  if (pst == LW_ERR_NOMEM) {
    lw_strlcpy(err, "out of memory", errlen);
    return LW_ERR_NOMEM;
  }
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
  if (!cJSON_IsObject(root))
    fail_got(&c, "an object", NULL, root);
  else
    parse_root(&c, root, &cfg);
  cJSON_Delete(root);
  if (n_errors) *n_errors = c.n_errors;
  if (c.failed) return LW_ERR_INVALID;
  *out = cfg;
  return LW_OK;
}

lw_status lw_config_parse(const char *json, size_t len, lw_config *out, char *err, size_t errlen) {
  return parse(json, len, out, err, errlen, 0, NULL);
}

lw_status lw_config_check_all(const char *json, size_t len, lw_config *out, char *errs, size_t errlen,
                              int *n_errors) {
  return parse(json, len, out, errs, errlen, 1, n_errors);
}

/* The checked `locales` as display JSON: each locale's variants become an array in the
 * config's variant order (null where a locale has no texts for one), as the widget finds a
 * variant by the index a decision reports; ids stay the engine's. */
size_t lw_config_write_json(const lw_config *cfg, const char *json, size_t len, uint8_t *buf, size_t cap) {
  lw_status pst;
  cJSON *root = lw_json_parse(json, len, NULL, &pst);
  cJSON *loc = root ? cJSON_GetObjectItemCaseSensitive(root, "locales") : NULL;
  char *text = NULL;
  if (cJSON_IsObject(loc)) {
    for (cJSON *it = loc->child; it; it = it->next) {
      cJSON *vars = cJSON_DetachItemFromObjectCaseSensitive(it, "variants");
      if (!vars) continue;
      cJSON *arr = cJSON_CreateArray();
      int ok = arr != NULL;
      for (int i = 0; ok && i < cfg->n_variants; i++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(vars, cfg->variants[i].id);
        if (!v) v = cJSON_CreateNull();
        ok = v && cJSON_AddItemToArray(arr, v);
        if (!ok) cJSON_Delete(v);
      }
      cJSON_Delete(vars);
      if (!ok || !cJSON_AddItemToObject(it, "variants", arr)) {
        cJSON_Delete(arr);
        cJSON_Delete(root);
        return 0;
      }
    }
    char *body = cJSON_PrintUnformatted(loc);
    size_t n = body ? strlen(body) : 0;
    text = body ? cJSON_malloc(n + sizeof "\"locales\":") : NULL;
    if (text) {
      memcpy(text, "\"locales\":", sizeof "\"locales\":" - 1);
      memcpy(text + sizeof "\"locales\":" - 1, body, n + 1);
    }
    cJSON_free(body);
    if (!text) {
      cJSON_Delete(root);
      return 0;
    }
  }
  int nomem = !root && pst == LW_ERR_NOMEM;
  cJSON_Delete(root);
  if (nomem) return 0;
  size_t n = lw_cfg_write(cfg, text, buf, cap);
  cJSON_free(text);
  return n;
}
