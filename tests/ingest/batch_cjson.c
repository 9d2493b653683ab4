/* batch_cjson.c: the outcome-batch validator as it was before the single-pass reader (src/ingest/batch.c
 * up to commit 09e9606): cJSON builds a tree behind lw_json_parse's strict grammar check, then the tree
 * is walked. Kept only as the oracle of the differential tests (tests/ingest/test_batch_equiv.c and
 * the fuzz target tests/fuzz/fuzz_batch_diff.c): the server's reader must accept exactly what this one
 * accepts, with the same batch, and refuse exactly what it refuses, with the same field and message.
 * It reads the same tables (loopwise/wire.h), so a record kind added there is added to both. */
#include "batch_cjson.h"


#include "loopwise/json.h"
#include "loopwise/text.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- errors and paths */

/* Field paths are built into a small buffer; names that are not printable ASCII are shown
 * as '?' so the error body is always valid JSON text. */
static void set_field(lw_batch_error *err, const char *prefix, const char *name) {
  char clean[LW_FIELD_PATH_LEN + 1];
  size_t i = 0;
  for (; name && name[i] && i < 40; i++) {
    unsigned char c = (unsigned char)name[i];
    clean[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
  }
  clean[i] = '\0';
  if (prefix && prefix[0])
    snprintf(err->field, sizeof err->field, "%.20s.%.40s", prefix, clean);
  else
    snprintf(err->field, sizeof err->field, "%s", clean);
}

static lw_status fail(lw_batch_error *err, const char *prefix, const char *name,
                      const char *fmt, ...) {
  va_list ap;
  set_field(err, prefix, name);
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return LW_ERR_INVALID;
}

static lw_status fail_nomem(lw_batch_error *err) {
  err->field[0] = '\0';
  snprintf(err->message, sizeof err->message, "out of memory");
  return LW_ERR_NOMEM;
}

/* ---------------------------------------------------------------- typed field readers */

/* Character sets and UTF-8 are loopwise/text.h's, shared with the config checker. */
/* A string of min..max characters from cs, copied into out (which has room for max bytes
 * of ASCII, or max*4 for LW_CS_TEXT). */
static lw_status read_string(const cJSON *item, const char *prefix, const char *name, lw_charset cs,
                             size_t min, size_t max, char *out, size_t out_size,
                             lw_batch_error *err) {
  if (!cJSON_IsString(item) || !item->valuestring)
    return fail(err, prefix, name, "expected a string");
  const char *s = item->valuestring;
  size_t bytes = strlen(s);
  if (!lw_utf8_valid(s, bytes)) return fail(err, prefix, name, "invalid UTF-8");
  for (size_t i = 0; i < bytes; i++)
    if (!lw_char_ok(cs, (unsigned char)s[i]))
      return fail(err, prefix, name, "expected %zu-%zu characters of %s", min, max,
                  lw_charset_desc(cs));
  size_t chars = cs == LW_CS_TEXT ? lw_utf8_chars(s) : bytes;
  if (chars < min || chars > max || bytes >= out_size) {
    if (min == max) return fail(err, prefix, name, "expected exactly %zu characters of %s", min,
                                lw_charset_desc(cs));
    return fail(err, prefix, name, "expected %zu-%zu characters of %s", min, max,
                lw_charset_desc(cs));
  }
  memcpy(out, s, bytes + 1);
  return LW_OK;
}

#define LW_MAX_SAFE_INT 9007199254740992.0 /* 2^53: every integer below is exact in a double */

static lw_status read_int(const cJSON *item, const char *prefix, const char *name, int64_t *out,
                          lw_batch_error *err) {
  if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < 0 ||
      item->valuedouble > LW_MAX_SAFE_INT || floor(item->valuedouble) != item->valuedouble)
    return fail(err, prefix, name, "expected a non-negative integer");
  *out = (int64_t)item->valuedouble;
  return LW_OK;
}

/* A device's clock may be anywhere: a time beyond the allowance is kept as sent and marked
 * *skewed (NULL: not needed), so the store puts the receive time beside it. Never refused for
 * that alone: the record is still what the device saw. */
static lw_status read_time(const cJSON *item, const char *prefix, const char *name,
                           const lw_batch_limits *lim, int64_t now_ms, int64_t *out, int *skewed,
                           lw_batch_error *err) {
  lw_status st = read_int(item, prefix, name, out, err);
  if (st != LW_OK)
    return fail(err, prefix, name, "expected an integer time in ms since the Unix epoch");
  if (skewed) *skewed = *out > now_ms + lim->max_future_ms;
  return LW_OK;
}

/* ---------------------------------------------------------------- objects */

/* Walk an object's members once: every name must be in names[] and appear once. Fills
 * found[i] with the member named names[i] (or NULL). */
static lw_status scan_object(const cJSON *obj, const char *prefix, const char *const *names,
                             size_t n_names, const cJSON **found, lw_batch_error *err) {
  for (size_t i = 0; i < n_names; i++) found[i] = NULL;
  for (const cJSON *m = obj->child; m; m = m->next) {
    size_t i = 0;
    const char *key = m->string ? m->string : "";
    while (i < n_names && strcmp(names[i], key) != 0) i++;
    if (i == n_names) {
      if (!lw_utf8_valid(key, strlen(key)))
        return fail(err, prefix, key, "invalid UTF-8 in a field name");
      return fail(err, prefix, key, "unknown field");
    }
    if (found[i]) return fail(err, prefix, key, "duplicate field");
    found[i] = m;
  }
  return LW_OK;
}

enum { B_V, B_BATCH_ID, B_WRITE_KEY, B_SENT_AT, B_EVENTS, B_COUNT };
static const char *const batch_fields[B_COUNT] = {"v", "batch_id", "write_key", "sent_at",
                                                  "events"};

/* The record fields and each kind's rules are loopwise/wire.h's LW_FIELDS and LW_KINDS. */
static const char *const event_fields[LW_FIELD_COUNT] = {
#define LW_X_FIELD_NAME(e, name, since) name,
    LW_FIELDS(LW_X_FIELD_NAME)
#undef LW_X_FIELD_NAME
};

/* "decision, impression, ... or conversion", from the table, for the unknown-kind error. */
static void kind_list(char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int k = 0; k < LW_KIND_COUNT && n < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%s", k == 0 ? "" : k == LW_KIND_COUNT - 1 ? " or " : ", ",
                          lw_kind_name((lw_kind)k));
}

/* x becomes fixed-point pairs as soon as it is validated, so nothing downstream re-parses
 * numbers (see lw_event.x). */
static lw_status read_x(const cJSON *arr, const char *prefix, lw_event *ev, lw_batch_error *err) {
  if (!cJSON_IsArray(arr)) return fail(err, prefix, "x", "expected an array of [hash, value]");
  int n = cJSON_GetArraySize(arr);
  if (n > LW_X_PAIRS) return fail(err, prefix, "x", "expected at most %d pairs", LW_X_PAIRS);
  lw_feature *x = malloc((size_t)(n ? n : 1) * sizeof *x);
  if (!x) return LW_ERR_NOMEM;
  int i = 0;
  char name[24];
  for (const cJSON *pair = arr->child; pair; pair = pair->next, i++) {
    snprintf(name, sizeof name, "x[%d]", i);
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2) {
      free(x);
      return fail(err, prefix, name, "expected a pair [hash, value]");
    }
    const cJSON *h = pair->child, *v = pair->child->next;
    if (!cJSON_IsNumber(h) || !(h->valuedouble >= 0) || h->valuedouble >= 4294967296.0 ||
        floor(h->valuedouble) != h->valuedouble) {
      free(x);
      snprintf(name, sizeof name, "x[%d][0]", i);
      return fail(err, prefix, name, "expected an integer hash in [0, 2^32)");
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
      free(x);
      snprintf(name, sizeof name, "x[%d][1]", i);
      return fail(err, prefix, name, "expected a finite number");
    }
    x[i].hash = (uint32_t)h->valuedouble;
    x[i].q = lw_fx(v->valuedouble);
  }
  ev->has_x = 1;
  ev->n_x = n;
  ev->x = x;
  return LW_OK;
}

/* An approval request's attrs: {"name": "value", ...}, at most LW_APPROVAL_ATTRS, names and values
 * of the config's name charset (approval's reader before the single-pass one). */
static lw_status read_attrs(const cJSON *obj, const char *prefix, lw_event *ev, lw_batch_error *err) {
  if (!cJSON_IsObject(obj)) return fail(err, prefix, "attrs", "expected an object of attribute: value");
  char name[LW_FIELD_PATH_LEN + 1];
  ev->n_attrs = 0;
  for (const cJSON *m = obj->child; m; m = m->next) {
    if (ev->n_attrs == LW_APPROVAL_ATTRS)
      return fail(err, prefix, "attrs", "expected at most %d attributes", LW_APPROVAL_ATTRS);
    const char *key = m->string ? m->string : "";
    for (int i = 0; i < ev->n_attrs; i++)
      if (!strcmp(ev->attr_names[i], key)) return fail(err, prefix, "attrs", "duplicate attribute");
    cJSON k = {0};
    k.type = cJSON_String;
    k.valuestring = (char *)key;
    lw_status st = read_string(&k, prefix, "attrs", LW_CS_NAME, 1, LW_NAME_LEN, ev->attr_names[ev->n_attrs],
                               sizeof ev->attr_names[0], err);
    if (st != LW_OK) return fail(err, prefix, "attrs", "attribute names are 1-%d characters of %s", LW_NAME_LEN,
                                 lw_charset_desc(LW_CS_NAME));
    snprintf(name, sizeof name, "attrs.%.32s", ev->attr_names[ev->n_attrs]);
    if ((st = read_string(m, prefix, name, LW_CS_NAME, 1, LW_NAME_LEN, ev->attr_values[ev->n_attrs],
                          sizeof ev->attr_values[0], err)) != LW_OK)
      return st;
    ev->n_attrs++;
  }
  return LW_OK;
}

static lw_status read_event(const cJSON *obj, const char *path, int v, const lw_batch_limits *lim,
                            int64_t now_ms, lw_event *ev, lw_batch_error *err) {
  const cJSON *f[LW_FIELD_COUNT];
  lw_status st;
  if (!cJSON_IsObject(obj)) return fail(err, "", path, "expected an object");
  if ((st = scan_object(obj, path, event_fields, LW_FIELD_COUNT, f, err)) != LW_OK) return st;

  if (!f[LW_FIELD_KIND]) return fail(err, path, "kind", "missing required field");
  if (!cJSON_IsString(f[LW_FIELD_KIND])) return fail(err, path, "kind", "expected a string");
  int kind = lw_kind_parse(f[LW_FIELD_KIND]->valuestring);
  if (kind < 0) {
    char kinds[160];
    kind_list(kinds, sizeof kinds);
    return fail(err, path, "kind", "unknown event kind (expected %s)", kinds);
  }
  ev->kind = (lw_kind)kind;
  /* The approval kinds exist from the version that added them (and their fields). */
  if ((lw_kind_flags(ev->kind) & LW_KIND_F_APPROVAL) && v < LW_APPROVAL_VERSION)
    return fail(err, path, "kind", "%s is not in batch version %d (added in version %d)", lw_kind_name(ev->kind), v,
                LW_APPROVAL_VERSION);

  for (int i = 0; i < LW_FIELD_COUNT; i++) {
    int since = lw_field_since((lw_field)i);
    if (since > v && f[i])
      return fail(err, path, event_fields[i], "not in batch version %d (added in version %d)", v, since);
    if (since > v) continue;
    char rule = lw_kind_rule(ev->kind, (lw_field)i);
    if (rule == 'R' && !f[i]) return fail(err, path, event_fields[i], "required for kind %s",
                                          lw_kind_name(ev->kind));
    if (rule == '-' && f[i]) return fail(err, path, event_fields[i], "not allowed for kind %s",
                                         lw_kind_name(ev->kind));
  }

  if ((st = read_time(f[LW_FIELD_T], path, "t", lim, now_ms, &ev->t, &ev->skewed, err)) != LW_OK) return st;
  if ((st = read_string(f[LW_FIELD_INSTALL], path, "install", LW_CS_HEX, LW_INSTALL_LEN, LW_INSTALL_LEN,
                        ev->install, sizeof ev->install, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_DECISION] &&
      (st = read_string(f[LW_FIELD_DECISION], path, "decision", LW_CS_HEX, LW_DECISION_ID_LEN,
                        LW_DECISION_ID_LEN, ev->decision, sizeof ev->decision, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_ACTION] && (st = read_string(f[LW_FIELD_ACTION], path, "action", LW_CS_NAME, 1, LW_NAME_LEN,
                                       ev->action, sizeof ev->action, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_P]) {
    const cJSON *p = f[LW_FIELD_P];
    if (!cJSON_IsNumber(p) || !isfinite(p->valuedouble) || !(p->valuedouble > 0.0) ||
        p->valuedouble > 1.0)
      return fail(err, path, "p", "expected a number in (0, 1]");
    ev->has_p = 1;
    ev->p = p->valuedouble;
  }
  if (f[LW_FIELD_MODE]) {
    const cJSON *m = f[LW_FIELD_MODE];
    int mode = cJSON_IsString(m) ? lw_mode_parse(m->valuestring) : -1;
    if (mode < 0) return fail(err, path, "mode", "expected %s, %s or %s", lw_mode_name(LW_MODE_RULES),
                              lw_mode_name(LW_MODE_MODEL), lw_mode_name(LW_MODE_HOLDOUT));
    snprintf(ev->mode, sizeof ev->mode, "%s", lw_mode_name((lw_mode)mode));
  }
  if (f[LW_FIELD_REASON] && (st = read_string(f[LW_FIELD_REASON], path, "reason", LW_CS_TEXT, 0, LW_REASON_CHARS,
                                       ev->reason, sizeof ev->reason, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_SEGMENT] && (st = read_string(f[LW_FIELD_SEGMENT], path, "segment", LW_CS_NAME, 1, LW_NAME_LEN,
                                        ev->segment, sizeof ev->segment, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_MODEL] && (st = read_string(f[LW_FIELD_MODEL], path, "model", LW_CS_MODEL, 1, LW_NAME_LEN,
                                      ev->model, sizeof ev->model, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_CODE] && (st = read_string(f[LW_FIELD_CODE], path, "code", LW_CS_CODE, LW_CODE_MIN_LEN, LW_CODE_LEN, ev->code,
                                     sizeof ev->code, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_TOKEN]) {
    if ((st = read_string(f[LW_FIELD_TOKEN], path, "token", LW_CS_HEX, LW_TOKEN_LEN, LW_TOKEN_LEN, ev->token,
                          sizeof ev->token, err)) != LW_OK)
      return st;
    if (!f[LW_FIELD_CODE]) return fail(err, path, "token", "a token needs the code of its link beside it");
  }
  if (f[LW_FIELD_CHANNEL]) {
    const cJSON *c = f[LW_FIELD_CHANNEL];
    int ch = cJSON_IsString(c) ? lw_channel_parse(c->valuestring) : -1;
    if (ch < 0) {
      char names[160];
      size_t n = 0;
      for (int k = 0; k < LW_CHANNEL_COUNT && n < sizeof names; k++)
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", k == 0 ? "" : k == LW_CHANNEL_COUNT - 1 ? " or " : ", ",
                              lw_channel_name((lw_channel)k));
      return fail(err, path, "channel", "unknown channel (expected %s)", names);
    }
    snprintf(ev->channel, sizeof ev->channel, "%s", lw_channel_name((lw_channel)ch));
  }
  if (f[LW_FIELD_ATTRS] && (st = read_attrs(f[LW_FIELD_ATTRS], path, ev, err)) != LW_OK) return st;
  if (f[LW_FIELD_KEY] && (st = read_string(f[LW_FIELD_KEY], path, "key", LW_CS_HEX, LW_APPROVAL_KEY_LEN,
                                           LW_APPROVAL_KEY_LEN, ev->key, sizeof ev->key, err)) != LW_OK)
    return st;
  if (f[LW_FIELD_ANSWER]) {
    const cJSON *a = f[LW_FIELD_ANSWER];
    int an = cJSON_IsString(a) ? lw_answer_parse(a->valuestring) : -1;
    if (an <= LW_ANSWER_PENDING)
      return fail(err, path, "answer", "expected %s, %s or %s", lw_answer_name(LW_ANSWER_APPROVED),
                  lw_answer_name(LW_ANSWER_DECLINED), lw_answer_name(LW_ANSWER_EXPIRED));
    snprintf(ev->answer, sizeof ev->answer, "%s", lw_answer_name((lw_approval_answer)an));
  }
  if (f[LW_FIELD_FEATURES] && (st = read_x(f[LW_FIELD_FEATURES], path, ev, err)) != LW_OK) return st;
  /* An approval request holds a prompt: its action is a variant, never "none" or "not_now". */
  if ((lw_kind_flags(ev->kind) & LW_KIND_F_HELD) && !lw_action_is_prompt(ev->action))
    return fail(err, path, "action", "expected the variant the approval rule held");
  return LW_OK;
}

/* ---------------------------------------------------------------- documents */

/* Parse body as exactly one JSON value, refusing what cJSON would accept but JSON does not:
 * raw control bytes (they can only be inside strings, where JSON forbids them; a raw NUL would
 * also cut a string short) and trailing data. */
static lw_status parse_document(const char *body, size_t len, cJSON **out, lw_batch_error *err) {
  *out = NULL;
  if (len == 0) return fail(err, "", "", "empty body: expected a JSON object");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)body[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
      return fail(err, "", "", "malformed JSON: control character at byte %zu", i);
  }
  const char *end = NULL;
  lw_status st;
  cJSON *doc = lw_json_parse(body, len, &end, &st);
  if (st == LW_ERR_NOMEM) return fail_nomem(err);
  if (!doc) {
    size_t at = (end && end >= body && end <= body + len) ? (size_t)(end - body) : 0;
    return fail(err, "", "", "malformed JSON near byte %zu", at);
  }
  for (const char *p = end; p < body + len; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(doc);
      return fail(err, "", "", "malformed JSON: trailing data at byte %zu", (size_t)(p - body));
    }
  }
  if (!cJSON_IsObject(doc)) {
    cJSON_Delete(doc);
    return fail(err, "", "", "expected a JSON object");
  }
  *out = doc;
  return LW_OK;
}

void lw_batch_free_cjson(lw_batch *batch) {
  if (!batch) return;
  for (size_t i = 0; i < batch->n_events; i++) free(batch->events[i].x);
  free(batch->events);
  free(batch);
}

static lw_status read_batch(const cJSON *doc, const lw_batch_limits *lim, int64_t now_ms,
                            lw_batch *b, lw_batch_error *err) {
  const cJSON *f[B_COUNT];
  lw_status st;
  int64_t v = 0;
  if ((st = scan_object(doc, "", batch_fields, B_COUNT, f, err)) != LW_OK) return st;
  for (int i = 0; i < B_COUNT; i++)
    if (!f[i]) return fail(err, "", batch_fields[i], "missing required field");
  if (read_int(f[B_V], "", "v", &v, err) != LW_OK || v < 1 || v > LW_WIRE_READ_VERSION)
    return fail(err, "", "v", "unsupported schema version (this server reads 1 to %d)", LW_WIRE_READ_VERSION);
  b->v = (int)v;
  if ((st = read_string(f[B_BATCH_ID], "", "batch_id", LW_CS_NAME, 1, LW_BATCH_ID_LEN, b->batch_id,
                        sizeof b->batch_id, err)) != LW_OK)
    return st;
  if ((st = read_string(f[B_WRITE_KEY], "", "write_key", LW_CS_MODEL, 1, LW_WRITE_KEY_LEN,
                        b->write_key, sizeof b->write_key, err)) != LW_OK)
    return st;
  if ((st = read_time(f[B_SENT_AT], "", "sent_at", lim, now_ms, &b->sent_at, NULL, err)) != LW_OK)
    return st;
  const cJSON *events = f[B_EVENTS];
  if (!cJSON_IsArray(events)) return fail(err, "", "events", "expected an array");
  int n = cJSON_GetArraySize(events);
  if (n < 1 || (size_t)n > lim->max_events)
    return fail(err, "", "events", "expected 1-%zu events, got %d", lim->max_events, n);
  b->events = calloc((size_t)n, sizeof *b->events);
  if (!b->events) return LW_ERR_NOMEM;
  char path[24];
  for (const cJSON *e = events->child; e; e = e->next) {
    snprintf(path, sizeof path, "events[%zu]", b->n_events);
    lw_event *ev = &b->events[b->n_events++];
    if ((st = read_event(e, path, b->v, lim, now_ms, ev, err)) != LW_OK) return st;
  }
  return LW_OK;
}

lw_status lw_batch_parse_cjson(const char *body, size_t len, const lw_batch_limits *limits,
                         int64_t now_ms, lw_batch **out, lw_batch_error *err) {
  lw_batch_limits def = lw_batch_default_limits();
  const lw_batch_limits *lim = limits ? limits : &def;
  cJSON *doc;
  *out = NULL;
  err->field[0] = err->message[0] = '\0';
  lw_status st = parse_document(body, len, &doc, err);
  if (st != LW_OK) return st;
  lw_batch *b = calloc(1, sizeof *b);
  if (!b) {
    cJSON_Delete(doc);
    snprintf(err->message, sizeof err->message, "out of memory");
    return LW_ERR_NOMEM;
  }
  st = read_batch(doc, lim, now_ms, b, err);
  cJSON_Delete(doc);
  if (st != LW_OK) {
    if (st == LW_ERR_NOMEM) snprintf(err->message, sizeof err->message, "out of memory");
    lw_batch_free_cjson(b);
    return st;
  }
  *out = b;
  return LW_OK;
}
