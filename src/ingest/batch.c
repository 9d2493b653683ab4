/* batch.c: the wire-contract validators of the request bodies (see loopwise/batch.h).
 *
 * An outcome batch, the hot path, is read by a single-pass reader of its own (below, "the batch
 * reader"): no tree is built. The other bodies (forget, referrals, referee and referrer reports,
 * reviews) are small and rare: cJSON builds them behind lw_json_parse's strict grammar check.
 * Both refuse what a lenient JSON reader would let through and the contract refuses: raw control
 * bytes and invalid UTF-8 inside strings, duplicate keys, trailing data, non-integral or
 * non-finite numbers. Errors carry the JSON path of the field. */
#include "loopwise/batch.h"

#include "loopwise/json.h"
#include "loopwise/text.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lw_batch_limits lw_batch_default_limits(void) {
  lw_batch_limits l = {LW_BATCH_EVENTS, 24LL * 3600 * 1000};
  return l;
}

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


#define LW_MAX_SAFE_INT 9007199254740992.0 /* 2^53: every integer below is exact in a double */

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


/* ---------------------------------------------------------------- the batch reader
 *
 * lw_batch_parse reads a batch in one pass over its bytes, building nothing but the batch: the
 * grammar is checked exactly as lw_json_check does (loopwise/json.h: RFC 8259, no escaped NUL,
 * surrogates only in pairs, CJSON_NESTING_LIMIT), stopping at the same byte, while the members
 * the contract knows are located as spans of the body (a jval). Each record is validated as
 * soon as its object closes, straight from those spans into its lw_event, in the order of
 * checks the contract's errors have always followed: the first record that fails is the one
 * named, but only once the whole body is known to be JSON and the envelope's fields to be right
 * (a body that is not JSON is refused as such, whatever its records hold). Strings are copied
 * (escapes decoded) into the event's fixed fields; a string too long for its field is decoded
 * on the heap only to be refused with the right message. A batch is one allocation (the batch
 * with room for a few records) plus one per 512 "x" pairs; a larger batch grows its records.
 *
 * Table-driven: the envelope's members (batch_fields) and a record's (LW_FIELDS, each kind's
 * rules in LW_KINDS) are loopwise/wire.h's tables; nothing here names a kind. */

#include "json_scan.h" /* the grammar: jreader, jval, j_value, j_string, ... */


/* ---- strings: decoded as cJSON decodes them */

static size_t j_put_utf8(unsigned cp, unsigned char *o) {
  if (cp < 0x80) return o[0] = (unsigned char)cp, 1;
  if (cp < 0x800) return o[0] = (unsigned char)(0xC0 | cp >> 6), o[1] = (unsigned char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static unsigned j_hex_at(const unsigned char *p) {
  return j_hexval(p[0]) << 12 | j_hexval(p[1]) << 8 | j_hexval(p[2]) << 4 | j_hexval(p[3]);
}

/* The decoded bytes of a string the grammar passed: the first cap written to out, the whole
 * length returned. (Never longer than its text: every escape shrinks.) */
static size_t j_decode(const jval *v, char *out, size_t cap) {
  const unsigned char *s = v->s, *e = v->e;
  if (!v->esc) {
    size_t n = (size_t)(e - s);
    memcpy(out, s, n < cap ? n : cap);
    return n;
  }
  size_t n = 0;
  unsigned char tmp[4];
  while (s < e) {
    if (*s != '\\') {
      if (n < cap) out[n] = (char)*s;
      n++, s++;
      continue;
    }
    unsigned char c = s[1];
    size_t k = 1;
    if (c == 'u') {
      unsigned cp = j_hex_at(s + 2);
      s += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (j_hex_at(s + 2) & 0x3FF));
        s += 6;
      }
      k = j_put_utf8(cp, tmp);
    } else {
      tmp[0] = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
      s += 2;
    }
    for (size_t i = 0; i < k; i++, n++)
      if (n < cap) out[n] = (char)tmp[i];
  }
  return n;
}

/* Is the decoded string valid UTF-8? An escape always decodes to whole code points, so it is
 * exactly when every run of raw bytes between escapes is. */
static int j_utf8_valid(const jval *v) {
  if (!v->esc) return lw_utf8_valid((const char *)v->s, (size_t)(v->e - v->s));
  const unsigned char *s = v->s, *run = s;
  while (s < v->e) {
    if (*s != '\\') {
      s++;
      continue;
    }
    if (!lw_utf8_valid((const char *)run, (size_t)(s - run))) return 0;
    if (s[1] != 'u') s += 2;
    else if (j_hex_at(s + 2) >= 0xD800 && j_hex_at(s + 2) <= 0xDBFF) s += 12;
    else s += 6;
    run = s;
  }
  return lw_utf8_valid((const char *)run, (size_t)(s - run));
}

/* A short string decoded NUL-terminated into buf (cap > 1), or "" when it does not fit (no
 * name it is compared with is that long). */
static const char *j_short(const jval *v, char *buf, size_t cap) {
  size_t n = j_decode(v, buf, cap);
  buf[n < cap ? n : 0] = '\0';
  return buf;
}

/* ---- numbers: the double strtod gives (which is what cJSON stored) */

static const double k_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number of at most 15 significant digits scaled by at most 10^22 is exact after one
 * correctly rounded multiplication or division (Clinger's fast path), so it equals strtod's
 * correctly rounded answer; anything else goes to strtod. */
static double j_number_value(const jval *v) {
  const unsigned char *p = v->s, *e = v->e;
  int neg = 0, digits = 0, scale = 0;
  uint64_t w = 0;
  if (*p == '-') neg = 1, p++;
  for (; p < e && j_digit(*p); p++)
    if (w || *p != '0') w = w * 10 + (uint64_t)(*p - '0'), digits++;
  if (p < e && *p == '.')
    for (p++; p < e && j_digit(*p); p++) {
      if (w || *p != '0') w = w * 10 + (uint64_t)(*p - '0'), digits++;
      scale--;
      if (digits > 15) break;
    }
  if (digits <= 15 && p < e && (*p == 'e' || *p == 'E')) {
    int esign = 1, ex = 0;
    p++;
    if (*p == '+' || *p == '-') esign = *p == '-' ? -1 : 1, p++;
    for (; p < e && j_digit(*p) && ex < 1000; p++) ex = ex * 10 + (*p - '0');
    scale += esign * ex;
  }
  if (digits <= 15 && p == e && scale >= -22 && scale <= 22) {
    double d = (double)w;
    d = scale >= 0 ? d * k_pow10[scale] : d / k_pow10[-scale];
    return neg ? -d : d;
  }
  /* In place: a number the contract reads is inside the batch object, so a ',', ']', '}' or
   * whitespace of the body follows it, where strtod (whose grammar only adds forms that start
   * differently: hex, inf, nan) stops. */
  return strtod((const char *)v->s, NULL);
}

/* ---- the typed readers, on located values (the same checks and messages as the cJSON ones) */

/* Bit cs of k_charsets[c] is lw_char_ok(cs, c): text.c's character sets as one lookup a byte,
 * built once. */
static unsigned char k_charsets[256];
static pthread_once_t k_charsets_once = PTHREAD_ONCE_INIT;

static void charsets_build(void) {
  for (int c = 0; c < 256; c++)
    for (int cs = LW_CS_NAME; cs <= LW_CS_TEXT; cs++)
      if (lw_char_ok((lw_charset)cs, (unsigned char)c)) k_charsets[c] |= (unsigned char)(1u << cs);
}

static lw_status j_read_string(const jval *v, const char *prefix, const char *name, lw_charset cs, size_t min,
                               size_t max, char *out, size_t out_size, lw_batch_error *err) {
  if (v->type != J_STR) return fail(err, prefix, name, "expected a string");
  size_t raw = (size_t)(v->e - v->s);
  if (!v->esc && raw < out_size) {
    /* The common case, in one loop: copied, its character set and whether it is ASCII. The
     * checks and messages are those below, in the same order. */
    unsigned all = 0xFF, high = 0;
    for (size_t i = 0; i < raw; i++) {
      unsigned char c = v->s[i];
      out[i] = (char)c;
      all &= k_charsets[c];
      high |= c;
    }
    out[raw] = '\0';
    if (high >= 0x80 && !lw_utf8_valid(out, raw)) return fail(err, prefix, name, "invalid UTF-8");
    if (!(all >> cs & 1u))
      return fail(err, prefix, name, "expected %zu-%zu characters of %s", min, max, lw_charset_desc(cs));
    size_t chars = cs == LW_CS_TEXT && high >= 0x80 ? lw_utf8_chars(out) : raw;
    if (chars >= min && chars <= max) return LW_OK;
    if (min == max)
      return fail(err, prefix, name, "expected exactly %zu characters of %s", min, lw_charset_desc(cs));
    return fail(err, prefix, name, "expected %zu-%zu characters of %s", min, max, lw_charset_desc(cs));
  }
  char *heap = NULL, *s = out;
  if (raw >= out_size && !(s = heap = malloc(raw + 1))) return LW_ERR_NOMEM;
  size_t bytes = j_decode(v, s, raw);
  s[bytes] = '\0';
  lw_status st = LW_OK;
  if (!j_utf8_valid(v)) {
    st = fail(err, prefix, name, "invalid UTF-8");
  } else if (!lw_text_is(cs, s, 0, (size_t)-1)) {
    st = fail(err, prefix, name, "expected %zu-%zu characters of %s", min, max, lw_charset_desc(cs));
  } else {
    size_t chars = cs == LW_CS_TEXT ? lw_utf8_chars(s) : bytes;
    if (chars < min || chars > max || bytes >= out_size) {
      if (min == max)
        st = fail(err, prefix, name, "expected exactly %zu characters of %s", min, lw_charset_desc(cs));
      else
        st = fail(err, prefix, name, "expected %zu-%zu characters of %s", min, max, lw_charset_desc(cs));
    } else if (heap) {
      memcpy(out, heap, bytes + 1);
    }
  }
  free(heap);
  return st;
}

static int j_int_value(const jval *v, int64_t *out) {
  if (v->type != J_NUM) return 0;
  double d = j_number_value(v);
  if (!isfinite(d) || d < 0 || d > LW_MAX_SAFE_INT || floor(d) != d) return 0;
  *out = (int64_t)d;
  return 1;
}

/* A device's clock may be anywhere: a time beyond the allowance is kept as sent and marked
 * *skewed (NULL: not needed), so the store puts the receive time beside it. Never refused for
 * that alone: the record is still what the device saw. */
static lw_status j_read_time(const jval *v, const char *prefix, const char *name, const lw_batch_limits *lim,
                             int64_t now_ms, int64_t *out, int *skewed, lw_batch_error *err) {
  if (!j_int_value(v, out)) return fail(err, prefix, name, "expected an integer time in ms since the Unix epoch");
  if (skewed) *skewed = *out > now_ms + lim->max_future_ms;
  return LW_OK;
}

/* ---- objects: members matched against a table of names */

typedef struct {
  const char *const *names;
  const unsigned char *lens;
  int n;
  jval *found;         /* [n]: each known member's value (type J_NONE when absent) */
  int problem;         /* 0, or the first member that was unknown (1) or repeated (2)... */
  jval problem_key;    /* ...and its name */
} jobject;

static int j_match(const jobject *o, const jval *key) {
  char buf[64];
  const unsigned char *k = key->s;
  size_t n = (size_t)(key->e - key->s);
  if (key->esc) {
    n = j_decode(key, buf, sizeof buf);
    if (n >= sizeof buf) return -1;
    k = (const unsigned char *)buf;
  }
  for (int i = 0; i < o->n; i++)
    if (o->lens[i] == n && n && o->names[i][0] == (char)k[0] && memcmp(o->names[i], k, n) == 0) return i;
  return -1;
}

/* The error for o's problem member, as scan_object words it. */
static lw_status j_object_problem(const jobject *o, const char *prefix, lw_batch_error *err) {
  char name[48];
  size_t n = j_decode(&o->problem_key, name, 40);
  name[n < 40 ? n : 40] = '\0';
  if (o->problem == 2) return fail(err, prefix, name, "duplicate field");
  if (!j_utf8_valid(&o->problem_key)) return fail(err, prefix, name, "invalid UTF-8 in a field name");
  return fail(err, prefix, name, "unknown field");
}

struct jparse;
/* Reads the value of member idx (-1: unknown or repeated) of o; 0 when the grammar fails. */
typedef int (*j_member_fn)(jreader *r, jobject *o, int idx, struct jparse *c);

static int j_member_plain(jreader *r, jobject *o, int idx, struct jparse *c) {
  jval v;
  (void)c;
  if (!j_value(r, &v)) return 0;
  if (idx >= 0) o->found[idx] = v;
  return 1;
}

/* An object, r->p at '{': j_container's object branch, member by member through fn. */
static int j_object(jreader *r, jobject *o, j_member_fn fn, struct jparse *c) {
  for (int i = 0; i < o->n; i++) o->found[i].type = J_NONE;
  o->problem = 0;
  if (++r->depth > CJSON_NESTING_LIMIT) return 0;
  r->p++;
  j_skip_ws(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    r->depth--;
    return 1;
  }
  for (;;) {
    jval key;
    int esc = 0;
    j_skip_ws(r);
    if (r->p >= r->end || *r->p != '"') return 0;
    key.s = r->p + 1;
    if (!j_string(r, &esc)) return 0;
    key.e = r->p - 1;
    key.esc = (unsigned char)esc;
    key.type = J_STR;
    j_skip_ws(r);
    if (r->p >= r->end || *r->p != ':') return 0;
    r->p++;
    int idx = j_match(o, &key);
    if (idx < 0 || o->found[idx].type != J_NONE) {
      if (!o->problem) o->problem = idx < 0 ? 1 : 2, o->problem_key = key;
      idx = -1;
    }
    if (!fn(r, o, idx, c)) return 0;
    j_skip_ws(r);
    if (r->p >= r->end) return 0;
    if (*r->p == ',') {
      r->p++;
      continue;
    }
    if (*r->p != '}') return 0;
    r->p++;
    r->depth--;
    return 1;
  }
}

/* ---- the batch being read */

#define INLINE_EVENTS 8 /* records in the batch's own allocation */
#define X_CHUNK 512     /* "x" pairs per pool chunk (a record has at most LW_X_PAIRS) */

typedef struct xchunk {
  struct xchunk *next;
  size_t cap, used;
  lw_feature pairs[];
} xchunk;

typedef struct {
  lw_batch b; /* first: lw_batch_free takes the block back from it */
  xchunk *x;
  size_t cap; /* room in b.events */
  lw_event inline_events[INLINE_EVENTS];
} batch_block;

typedef struct jparse {
  batch_block *blk;
  const lw_batch_limits *lim;
  int64_t now_ms;
  int v;             /* the batch version, once known (0 before) */
  size_t seen;       /* elements of the events array */
  int failed;        /* a record was refused: ev_err says why (later ones are not read) */
  int nomem;
  lw_batch_error ev_err;
} jparse;

static lw_feature *x_alloc(batch_block *blk, size_t n) {
  xchunk *c = blk->x;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > X_CHUNK ? n : X_CHUNK;
    if (!(c = malloc(sizeof *c + cap * sizeof c->pairs[0]))) return NULL;
    c->cap = cap, c->used = 0, c->next = blk->x;
    blk->x = c;
  }
  c->used += n;
  return c->pairs + c->used - n;
}

static lw_event *event_slot(batch_block *blk, size_t i) {
  if (i >= blk->cap) {
    size_t cap = blk->cap * 2;
    lw_event *ev = malloc(cap * sizeof *ev);
    if (!ev) return NULL;
    memcpy(ev, blk->b.events, blk->b.n_events * sizeof *ev);
    if (blk->b.events != blk->inline_events) free(blk->b.events);
    blk->b.events = ev;
    blk->cap = cap;
  }
  return &blk->b.events[i];
}

/* The elements of an array located in v (the grammar already passed): up to max of them
 * located in out, their count returned. */
static size_t j_elements(const jval *v, jval *out, size_t max) {
  jreader r = {v->s + 1, v->e - 1, 0};
  size_t n = 0;
  jval e;
  j_skip_ws(&r);
  if (r.p >= r.end) return 0;
  for (;;) {
    j_value(&r, n < max ? &out[n] : &e);
    n++;
    j_skip_ws(&r);
    if (r.p >= r.end || *r.p != ',') return n;
    r.p++;
  }
}

/* x becomes fixed-point pairs as soon as it is validated, so nothing downstream re-parses
 * numbers (see lw_event.x). */
static lw_status j_read_x(const jval *arr, const char *prefix, batch_block *blk, lw_event *ev, lw_batch_error *err) {
  if (arr->type != J_ARR) return fail(err, prefix, "x", "expected an array of [hash, value]");
  jval pairs[LW_X_PAIRS];
  size_t n = j_elements(arr, pairs, LW_X_PAIRS);
  if (n > LW_X_PAIRS) return fail(err, prefix, "x", "expected at most %d pairs", LW_X_PAIRS);
  lw_feature *x = x_alloc(blk, n ? n : 1);
  if (!x) return LW_ERR_NOMEM;
  char name[24];
  for (size_t i = 0; i < n; i++) {
    jval hv[2];
    if (pairs[i].type != J_ARR || j_elements(&pairs[i], hv, 2) != 2) {
      snprintf(name, sizeof name, "x[%d]", (int)i);
      return fail(err, prefix, name, "expected a pair [hash, value]");
    }
    double h = hv[0].type == J_NUM ? j_number_value(&hv[0]) : -1;
    if (hv[0].type != J_NUM || !(h >= 0) || h >= 4294967296.0 || floor(h) != h) {
      snprintf(name, sizeof name, "x[%d][0]", (int)i);
      return fail(err, prefix, name, "expected an integer hash in [0, 2^32)");
    }
    double q = hv[1].type == J_NUM ? j_number_value(&hv[1]) : 0;
    if (hv[1].type != J_NUM || !isfinite(q)) {
      snprintf(name, sizeof name, "x[%d][1]", (int)i);
      return fail(err, prefix, name, "expected a finite number");
    }
    x[i].hash = (uint32_t)h;
    x[i].q = lw_fx(q);
  }
  ev->has_x = 1;
  ev->n_x = (int)n;
  ev->x = x;
  return LW_OK;
}

static const unsigned char event_field_lens[LW_FIELD_COUNT] = {
#define LW_X_FIELD_LEN(e, name, since) sizeof name - 1,
    LW_FIELDS(LW_X_FIELD_LEN)
#undef LW_X_FIELD_LEN
};

/* How each record field is read, in LW_FIELDS' order (kind is read first, and x last, as the
 * contract's errors have always come): a new field is a row of LW_FIELDS and one here. A
 * string's character set, length and place in lw_event are its row; "always" fields are read
 * even when absent (every kind requires them); "needs" names a field that must be beside it. */
enum { FR_NONE, FR_TIME, FR_STRING, FR_PROB, FR_MODE, FR_CHANNEL, FR_ATTRS, FR_ANSWER, FR_X };
typedef struct {
  unsigned char how, always, cs;
  unsigned short min, max;
  size_t off, size;
  int needs;              /* LW_FIELD_* + 1 that must be present too (0: none)... */
  const char *needs_msg;  /* ...else this is the error */
} field_reader;

#define FR_STR(always, cs, min, max, member) \
  {FR_STRING, always, cs, min, max, offsetof(lw_event, member), sizeof((lw_event *)0)->member, 0, NULL}
static const field_reader event_readers[LW_FIELD_COUNT] = {
    [LW_FIELD_T] = {FR_TIME, 1, 0, 0, 0, 0, 0, 0, NULL},
    [LW_FIELD_INSTALL] = FR_STR(1, LW_CS_HEX, LW_INSTALL_LEN, LW_INSTALL_LEN, install),
    [LW_FIELD_DECISION] = FR_STR(0, LW_CS_HEX, LW_DECISION_ID_LEN, LW_DECISION_ID_LEN, decision),
    [LW_FIELD_ACTION] = FR_STR(0, LW_CS_NAME, 1, LW_NAME_LEN, action),
    [LW_FIELD_P] = {FR_PROB, 0, 0, 0, 0, 0, 0, 0, NULL},
    [LW_FIELD_MODE] = {FR_MODE, 0, 0, 0, 0, 0, 0, 0, NULL},
    [LW_FIELD_REASON] = FR_STR(0, LW_CS_TEXT, 0, LW_REASON_CHARS, reason),
    [LW_FIELD_SEGMENT] = FR_STR(0, LW_CS_NAME, 1, LW_NAME_LEN, segment),
    [LW_FIELD_MODEL] = FR_STR(0, LW_CS_MODEL, 1, LW_NAME_LEN, model),
    [LW_FIELD_FEATURES] = {FR_X, 0, 0, 0, 0, 0, 0, 0, NULL},
    [LW_FIELD_CODE] = FR_STR(0, LW_CS_CODE, LW_CODE_MIN_LEN, LW_CODE_LEN, code),
    [LW_FIELD_TOKEN] = {FR_STRING, 0, LW_CS_HEX, LW_TOKEN_LEN, LW_TOKEN_LEN, offsetof(lw_event, token),
                        sizeof((lw_event *)0)->token, LW_FIELD_CODE + 1, "a token needs the code of its link beside it"},
    [LW_FIELD_CHANNEL] = {FR_CHANNEL, 0, 0, 0, 0, 0, 0, 0, NULL},
    [LW_FIELD_ATTRS] = {FR_ATTRS, 0, 0, 0, 0, 0, 0, 0, NULL},
    [LW_FIELD_KEY] = FR_STR(0, LW_CS_HEX, LW_APPROVAL_KEY_LEN, LW_APPROVAL_KEY_LEN, key),
    [LW_FIELD_ANSWER] = {FR_ANSWER, 0, 0, 0, 0, 0, 0, 0, NULL},
};
#undef FR_STR

static void channel_list(char *names, size_t cap) {
  size_t n = 0;
  names[0] = '\0';
  for (int k = 0; k < LW_CHANNEL_COUNT && n < cap; k++)
    n += (size_t)snprintf(names + n, cap - n, "%s%s", k == 0 ? "" : k == LW_CHANNEL_COUNT - 1 ? " or " : ", ",
                          lw_channel_name((lw_channel)k));
}

/* The members of an object located in v (the grammar already passed): up to max of their
 * names and values located in keys and vals, their count returned. */
static size_t j_members(const jval *v, jval *keys, jval *vals, size_t max) {
  jreader r = {v->s + 1, v->e - 1, 0};
  size_t n = 0;
  jval k, e;
  j_skip_ws(&r);
  if (r.p >= r.end) return 0;
  for (;;) {
    int esc = 0;
    jval *kp = n < max ? &keys[n] : &k;
    kp->s = r.p + 1;
    j_string(&r, &esc);
    kp->e = r.p - 1, kp->esc = (unsigned char)esc, kp->type = J_STR;
    j_skip_ws(&r);
    r.p++; /* ':' */
    j_value(&r, n < max ? &vals[n] : &e);
    n++;
    j_skip_ws(&r);
    if (r.p >= r.end || *r.p != ',') return n;
    r.p++;
    j_skip_ws(&r);
  }
}

/* An approval request's attrs: {"name": "value", ...}, at most LW_APPROVAL_ATTRS, names and values
 * of the config's name charset (the values are the config's allowed values: categories, never
 * free text). Which attributes a device sends is its config's approval.send. */
static lw_status j_read_attrs(const jval *obj, const char *prefix, lw_event *ev, lw_batch_error *err) {
  if (obj->type != J_OBJ) return fail(err, prefix, "attrs", "expected an object of attribute: value");
  jval keys[LW_APPROVAL_ATTRS + 1], vals[LW_APPROVAL_ATTRS + 1];
  size_t n = j_members(obj, keys, vals, LW_APPROVAL_ATTRS + 1);
  char name[LW_FIELD_PATH_LEN + 1], key[LW_NAME_LEN + 2];
  ev->n_attrs = 0;
  for (size_t m = 0; m < n; m++) {
    if (ev->n_attrs == LW_APPROVAL_ATTRS)
      return fail(err, prefix, "attrs", "expected at most %d attributes", LW_APPROVAL_ATTRS);
    size_t kn = j_decode(&keys[m], key, sizeof key - 1);
    key[kn < sizeof key - 1 ? kn : sizeof key - 1] = '\0';
    for (int i = 0; i < ev->n_attrs; i++)
      if (kn <= LW_NAME_LEN && !strcmp(ev->attr_names[i], key)) return fail(err, prefix, "attrs", "duplicate attribute");
    if (kn < 1 || kn > LW_NAME_LEN || !lw_text_is(LW_CS_NAME, key, 0, (size_t)-1))
      return fail(err, prefix, "attrs", "attribute names are 1-%d characters of %s", LW_NAME_LEN,
                  lw_charset_desc(LW_CS_NAME));
    memcpy(ev->attr_names[ev->n_attrs], key, kn + 1);
    snprintf(name, sizeof name, "attrs.%.32s", key);
    lw_status st = j_read_string(&vals[m], prefix, name, LW_CS_NAME, 1, LW_NAME_LEN, ev->attr_values[ev->n_attrs],
                                 sizeof ev->attr_values[0], err);
    if (st != LW_OK) return st;
    ev->n_attrs++;
  }
  return LW_OK;
}

/* snprintf(dst, cap, "%s", name) without its cost. */
static void copy_name(char *dst, size_t cap, const char *name) {
  size_t n = strlen(name);
  if (n >= cap) n = cap - 1;
  memcpy(dst, name, n);
  dst[n] = '\0';
}

static lw_status j_read_field(jparse *c, const jval *f, int i, const char *path, lw_event *ev, lw_batch_error *err) {
  const field_reader *fr = &event_readers[i];
  const jval *v = &f[i];
  char buf[64];
  lw_status st = LW_OK;
  switch (fr->how) {
  case FR_TIME:
    return j_read_time(v, path, event_fields[i], c->lim, c->now_ms, &ev->t, &ev->skewed, err);
  case FR_STRING:
    st = j_read_string(v, path, event_fields[i], (lw_charset)fr->cs, fr->min, fr->max, (char *)ev + fr->off,
                       fr->size, err);
    if (st == LW_OK && fr->needs && f[fr->needs - 1].type == J_NONE)
      return fail(err, path, event_fields[i], "%s", fr->needs_msg);
    return st;
  case FR_PROB: {
    double p = v->type == J_NUM ? j_number_value(v) : NAN;
    if (!isfinite(p) || !(p > 0.0) || p > 1.0) return fail(err, path, event_fields[i], "expected a number in (0, 1]");
    ev->has_p = 1;
    ev->p = p;
    return LW_OK;
  }
  case FR_MODE: {
    int mode = v->type == J_STR ? lw_mode_parse(j_short(v, buf, sizeof buf)) : -1;
    if (mode < 0) return fail(err, path, event_fields[i], "expected %s, %s or %s", lw_mode_name(LW_MODE_RULES),
                              lw_mode_name(LW_MODE_MODEL), lw_mode_name(LW_MODE_HOLDOUT));
    copy_name(ev->mode, sizeof ev->mode, lw_mode_name((lw_mode)mode));
    return LW_OK;
  }
  case FR_CHANNEL: {
    int ch = v->type == J_STR ? lw_channel_parse(j_short(v, buf, sizeof buf)) : -1;
    if (ch < 0) {
      char names[160];
      channel_list(names, sizeof names);
      return fail(err, path, event_fields[i], "unknown channel (expected %s)", names);
    }
    copy_name(ev->channel, sizeof ev->channel, lw_channel_name((lw_channel)ch));
    return LW_OK;
  }
  case FR_ATTRS:
    return j_read_attrs(v, path, ev, err);
  case FR_ANSWER: {
    int an = v->type == J_STR ? lw_answer_parse(j_short(v, buf, sizeof buf)) : -1;
    if (an <= LW_ANSWER_PENDING)
      return fail(err, path, event_fields[i], "expected %s, %s or %s", lw_answer_name(LW_ANSWER_APPROVED),
                  lw_answer_name(LW_ANSWER_DECLINED), lw_answer_name(LW_ANSWER_EXPIRED));
    copy_name(ev->answer, sizeof ev->answer, lw_answer_name((lw_approval_answer)an));
    return LW_OK;
  }
  case FR_X:
    return j_read_x(v, path, c->blk, ev, err);
  }
  return st;
}

/* One record's checks, in the order read_event has always made them (the first failing one is
 * the error): members, kind, each field's version and rule for the kind, then the values. */
static lw_status j_read_event(jparse *c, jobject *o, const char *path, lw_event *ev, lw_batch_error *err) {
  const jval *f = o->found;
  lw_status st;
  char buf[64];
  if (o->problem) return j_object_problem(o, path, err);
  if (f[LW_FIELD_KIND].type == J_NONE) return fail(err, path, "kind", "missing required field");
  if (f[LW_FIELD_KIND].type != J_STR) return fail(err, path, "kind", "expected a string");
  int kind = lw_kind_parse(j_short(&f[LW_FIELD_KIND], buf, sizeof buf));
  if (kind < 0) {
    char kinds[160];
    kind_list(kinds, sizeof kinds);
    return fail(err, path, "kind", "unknown event kind (expected %s)", kinds);
  }
  ev->kind = (lw_kind)kind;
  /* The approval kinds exist from the version that added them (and their fields). */
  if ((lw_kind_flags(ev->kind) & LW_KIND_F_APPROVAL) && c->v < LW_APPROVAL_VERSION)
    return fail(err, path, "kind", "%s is not in batch version %d (added in version %d)", lw_kind_name(ev->kind), c->v,
                LW_APPROVAL_VERSION);
  for (int i = 0; i < LW_FIELD_COUNT; i++) {
    int since = lw_field_since((lw_field)i), present = f[i].type != J_NONE;
    if (since > c->v && present)
      return fail(err, path, event_fields[i], "not in batch version %d (added in version %d)", c->v, since);
    if (since > c->v) continue;
    char rule = lw_kind_rule(ev->kind, (lw_field)i);
    if (rule == 'R' && !present) return fail(err, path, event_fields[i], "required for kind %s", lw_kind_name(ev->kind));
    if (rule == '-' && present) return fail(err, path, event_fields[i], "not allowed for kind %s", lw_kind_name(ev->kind));
  }
  for (int i = 0; i < LW_FIELD_COUNT; i++) {
    const field_reader *fr = &event_readers[i];
    if (fr->how == FR_NONE || fr->how == FR_X || (f[i].type == J_NONE && !fr->always)) continue;
    if ((st = j_read_field(c, f, i, path, ev, err)) != LW_OK) return st;
  }
  for (int i = 0; i < LW_FIELD_COUNT; i++) /* x last */
    if (event_readers[i].how == FR_X && f[i].type != J_NONE && (st = j_read_field(c, f, i, path, ev, err)) != LW_OK)
      return st;
  /* A kind that holds a prompt (an approval request) names the variant held, never "none" or "not_now". */
  if ((lw_kind_flags(ev->kind) & LW_KIND_F_HELD) && !lw_action_is_prompt(ev->action))
    return fail(err, path, "action", "expected the variant the approval rule held");
  return LW_OK;
}

/* "events[i]" into buf (24 bytes), as snprintf would write it, without its cost per record. */
static void events_path(char *buf, size_t i) {
  char digits[24];
  size_t n = 0;
  do digits[n++] = (char)('0' + i % 10), i /= 10;
  while (i && n < 15);
  memcpy(buf, "events[", 7);
  for (size_t k = 0; k < n; k++) buf[7 + k] = digits[n - 1 - k];
  buf[7 + n] = ']';
  buf[8 + n] = '\0';
}

/* The events array, r->p at '['. Every element is counted; while sem, each is read as a
 * record until one is refused (or one past the limit: the count is then the error). */
static int j_events(jreader *r, jparse *c, int sem) {
  c->seen = 0;
  if (++r->depth > CJSON_NESTING_LIMIT) return 0;
  r->p++;
  j_skip_ws(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    r->depth--;
    return 1;
  }
  jval found[LW_FIELD_COUNT];
  jobject o = {event_fields, event_field_lens, LW_FIELD_COUNT, found, 0, {0}};
  for (;;) {
    size_t i = c->seen++;
    int read = sem && !c->failed && !c->nomem && i < c->lim->max_events;
    j_skip_ws(r);
    if (read && r->p < r->end && *r->p == '{') {
      if (!j_object(r, &o, j_member_plain, c)) return 0;
      lw_event *ev = event_slot(c->blk, i);
      if (!ev) {
        c->nomem = 1;
      } else {
        char path[24];
        memset(ev, 0, sizeof *ev);
        events_path(path, i);
        lw_status st = j_read_event(c, &o, path, ev, &c->ev_err);
        c->blk->b.n_events = i + 1;
        if (st == LW_ERR_NOMEM) c->nomem = 1;
        else if (st != LW_OK) c->failed = 1;
      }
    } else {
      jval v;
      if (!j_value(r, &v)) return 0;
      if (read) {
        char path[24];
        events_path(path, i);
        fail(&c->ev_err, "", path, "expected an object");
        c->failed = 1;
      }
    }
    j_skip_ws(r);
    if (r->p >= r->end) return 0;
    if (*r->p == ',') {
      r->p++;
      continue;
    }
    if (*r->p != ']') return 0;
    r->p++;
    r->depth--;
    return 1;
  }
}

enum { B_V, B_BATCH_ID, B_WRITE_KEY, B_SENT_AT, B_EVENTS, B_COUNT };
static const char *const batch_fields[B_COUNT] = {"v", "batch_id", "write_key", "sent_at", "events"};
static const unsigned char batch_field_lens[B_COUNT] = {1, 8, 9, 7, 6};

static int j_version(const jval *v, int64_t *out) {
  return j_int_value(v, out) && *out >= 1 && *out <= LW_WIRE_READ_VERSION;
}

/* The envelope's members: the records are read as they come when "v" came first (the
 * runtime writes it first); otherwise only located, and read once the envelope is checked. */
static int j_member_top(jreader *r, jobject *o, int idx, jparse *c) {
  if (idx == B_EVENTS) {
    j_skip_ws(r);
    if (r->p < r->end && *r->p == '[') {
      jval *v = &o->found[B_EVENTS];
      v->s = r->p, v->type = J_ARR, v->esc = 0;
      int64_t ver;
      int sem = !o->problem && o->found[B_V].type != J_NONE && j_version(&o->found[B_V], &ver);
      c->v = sem ? (int)ver : 0;
      if (!j_events(r, c, sem)) return 0;
      v->e = r->p;
      return 1;
    }
  }
  return j_member_plain(r, o, idx, c);
}

/* The first byte of body that is a control character other than JSON's whitespace, or len. */
static size_t control_at(const char *body, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)body[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return i;
  }
  return len;
}

static lw_status j_read_batch(const char *body, size_t len, jparse *c, lw_batch_error *err) {
  lw_batch *b = &c->blk->b;
  jreader r = {(const unsigned char *)body, (const unsigned char *)body + len, 0};
  jval found[B_COUNT];
  jobject o = {batch_fields, batch_field_lens, B_COUNT, found, 0, {0}};
  jval doc;
  if (len == 0) return fail(err, "", "", "empty body: expected a JSON object");
  j_skip_ws(&r);
  int object = r.p < r.end && *r.p == '{', ok;
  if (object)
    ok = j_object(&r, &o, j_member_top, c);
  else
    ok = j_value(&r, &doc);
  size_t at = (size_t)(r.p - (const unsigned char *)body), trailing = at;
  while (ok && trailing < len && j_ws((unsigned char)body[trailing])) trailing++;
  if (!ok || trailing < len) {
    size_t ctl = control_at(body, len);
    if (ctl < len) return fail(err, "", "", "malformed JSON: control character at byte %zu", ctl);
    if (!ok) return fail(err, "", "", "malformed JSON near byte %zu", at);
  }
  if (c->nomem) return LW_ERR_NOMEM;
  if (trailing < len) return fail(err, "", "", "malformed JSON: trailing data at byte %zu", trailing);
  if (!object) return fail(err, "", "", "expected a JSON object");

  lw_status st;
  int64_t v = 0;
  if (o.problem) return j_object_problem(&o, "", err);
  for (int i = 0; i < B_COUNT; i++)
    if (found[i].type == J_NONE) return fail(err, "", batch_fields[i], "missing required field");
  if (!j_version(&found[B_V], &v))
    return fail(err, "", "v", "unsupported schema version (this server reads 1 to %d)", LW_WIRE_READ_VERSION);
  b->v = (int)v;
  if ((st = j_read_string(&found[B_BATCH_ID], "", "batch_id", LW_CS_NAME, 1, LW_BATCH_ID_LEN, b->batch_id,
                          sizeof b->batch_id, err)) != LW_OK)
    return st;
  if ((st = j_read_string(&found[B_WRITE_KEY], "", "write_key", LW_CS_MODEL, 1, LW_WRITE_KEY_LEN, b->write_key,
                          sizeof b->write_key, err)) != LW_OK)
    return st;
  if ((st = j_read_time(&found[B_SENT_AT], "", "sent_at", c->lim, c->now_ms, &b->sent_at, NULL, err)) != LW_OK)
    return st;
  if (found[B_EVENTS].type != J_ARR) return fail(err, "", "events", "expected an array");
  size_t n = c->seen;
  if (n < 1 || n > c->lim->max_events)
    return fail(err, "", "events", "expected 1-%zu events, got %d", c->lim->max_events, (int)n);
  if (c->v != b->v) { /* the records came before "v": read them now */
    jreader again = {found[B_EVENTS].s, found[B_EVENTS].e, 1};
    c->v = b->v;
    j_events(&again, c, 1);
  }
  if (c->nomem) return LW_ERR_NOMEM;
  if (c->failed) {
    *err = c->ev_err;
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

void lw_batch_free(lw_batch *batch) {
  if (!batch) return;
  batch_block *blk = (batch_block *)batch;
  for (xchunk *c = blk->x, *next; c; c = next) next = c->next, free(c);
  if (batch->events != blk->inline_events) free(batch->events);
  free(blk);
}

lw_status lw_batch_parse(const char *body, size_t len, const lw_batch_limits *limits, int64_t now_ms,
                         lw_batch **out, lw_batch_error *err) {
  lw_batch_limits def = lw_batch_default_limits();
  jparse c;
  *out = NULL;
  err->field[0] = err->message[0] = '\0';
  c.lim = limits ? limits : &def;
  c.now_ms = now_ms;
  c.v = 0;
  c.seen = 0;
  c.failed = c.nomem = 0;
  pthread_once(&k_charsets_once, charsets_build);
  c.blk = malloc(sizeof *c.blk);
  if (!c.blk) return fail_nomem(err);
  memset(&c.blk->b, 0, sizeof c.blk->b);
  c.blk->x = NULL;
  c.blk->cap = INLINE_EVENTS;
  c.blk->b.events = c.blk->inline_events;
  lw_status st = j_read_batch(body, len, &c, err);
  if (st != LW_OK) {
    if (st == LW_ERR_NOMEM) fail_nomem(err);
    lw_batch_free(&c.blk->b);
    return st;
  }
  *out = &c.blk->b;
  return LW_OK;
}

/* ---------------------------------------------------------------- the small bodies' typed readers (cJSON) */

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

static lw_status read_int(const cJSON *item, const char *prefix, const char *name, int64_t *out,
                          lw_batch_error *err) {
  if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < 0 ||
      item->valuedouble > LW_MAX_SAFE_INT || floor(item->valuedouble) != item->valuedouble)
    return fail(err, prefix, name, "expected a non-negative integer");
  *out = (int64_t)item->valuedouble;
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

/* Version 1: {"v":1,"write_key","install"}, every event of that install. Version 2 adds an
 * optional "code": every event carrying that referral code instead (the install must be the one
 * that shared it; the store checks). */
enum { F_V, F_WRITE_KEY, F_INSTALL, F_CODE, F_COUNT };
static const char *const forget_fields[F_COUNT] = {"v", "write_key", "install", "code"};

lw_status lw_forget_parse(const char *body, size_t len, lw_forget_request *out,
                          lw_batch_error *err) {
  cJSON *doc;
  const cJSON *f[F_COUNT];
  int64_t v = 0;
  err->field[0] = err->message[0] = '\0';
  out->code[0] = '\0';
  lw_status st = parse_document(body, len, &doc, err);
  if (st != LW_OK) return st;
  st = scan_object(doc, "", forget_fields, F_COUNT, f, err);
  for (int i = 0; st == LW_OK && i < F_CODE; i++)
    if (!f[i]) st = fail(err, "", forget_fields[i], "missing required field");
  if (st == LW_OK && (read_int(f[F_V], "", "v", &v, err) != LW_OK || (v != 1 && v != 2)))
    st = fail(err, "", "v", "unsupported schema version (expected 1 or 2)");
  if (st == LW_OK && v == 1 && f[F_CODE]) st = fail(err, "", "code", "unknown field in version 1 (use v 2)");
  if (st == LW_OK)
    st = read_string(f[F_WRITE_KEY], "", "write_key", LW_CS_MODEL, 1, LW_WRITE_KEY_LEN,
                     out->write_key, sizeof out->write_key, err);
  if (st == LW_OK)
    st = read_string(f[F_INSTALL], "", "install", LW_CS_HEX, LW_INSTALL_LEN, LW_INSTALL_LEN,
                     out->install, sizeof out->install, err);
  if (st == LW_OK && f[F_CODE])
    st = read_string(f[F_CODE], "", "code", LW_CS_CODE, LW_CODE_MIN_LEN, LW_CODE_LEN, out->code,
                     sizeof out->code, err);
  cJSON_Delete(doc);
  return st;
}

/* ---------------------------------------------------------------- small bodies
 * The other request bodies: one flat object each, every field named in a table, all refused
 * the same way as a batch (unknown or repeated fields, wrong types, the path in the error). */

/* Scan doc's members against names (all required but those in optional, a bit per index). */
static lw_status small_object(const char *body, size_t len, cJSON **doc, const char *const *names,
                              size_t n, unsigned optional, const cJSON **f, lw_batch_error *err) {
  err->field[0] = err->message[0] = '\0';
  lw_status st = parse_document(body, len, doc, err);
  if (st != LW_OK) return st;
  st = scan_object(*doc, "", names, n, f, err);
  for (size_t i = 0; st == LW_OK && i < n; i++)
    if (!f[i] && !(optional & (1u << i))) st = fail(err, "", names[i], "missing required field");
  return st;
}

static lw_status read_version(const cJSON *item, int64_t want, lw_batch_error *err) {
  int64_t v = 0;
  if (read_int(item, "", "v", &v, err) != LW_OK || v != want)
    return fail(err, "", "v", "unsupported schema version (expected %lld)", (long long)want);
  return LW_OK;
}

enum { RR_V, RR_WRITE_KEY, RR_CODE, RR_INSTALL, RR_COUNT };
static const char *const referral_fields[RR_COUNT] = {"v", "write_key", "code", "install"};

lw_status lw_referral_request_parse(const char *body, size_t len, lw_referral_request *out,
                                    lw_batch_error *err) {
  cJSON *doc = NULL;
  const cJSON *f[RR_COUNT];
  lw_status st = small_object(body, len, &doc, referral_fields, RR_COUNT, 0, f, err);
  if (st == LW_OK) st = read_version(f[RR_V], 1, err);
  if (st == LW_OK)
    st = read_string(f[RR_WRITE_KEY], "", "write_key", LW_CS_MODEL, 1, LW_WRITE_KEY_LEN, out->write_key,
                     sizeof out->write_key, err);
  if (st == LW_OK)
    st = read_string(f[RR_CODE], "", "code", LW_CS_CODE, LW_CODE_MIN_LEN, LW_CODE_LEN, out->code,
                     sizeof out->code, err);
  if (st == LW_OK)
    st = read_string(f[RR_INSTALL], "", "install", LW_CS_HEX, LW_INSTALL_LEN, LW_INSTALL_LEN, out->install,
                     sizeof out->install, err);
  cJSON_Delete(doc);
  return st;
}

/* The host's opaque ids: 1..LW_REFEREE_ID_LEN bytes of printable UTF-8. */
static lw_status read_host_id(const cJSON *item, const char *name, char *out, size_t cap,
                              lw_batch_error *err) {
  if (!cJSON_IsString(item) || !item->valuestring) return fail(err, "", name, "expected a string");
  size_t n = strlen(item->valuestring);
  if (n < 1 || n > LW_REFEREE_ID_LEN || !lw_utf8_valid(item->valuestring, n))
    return fail(err, "", name, "expected the host's id: 1-%d bytes of UTF-8", LW_REFEREE_ID_LEN);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)item->valuestring[i] < 0x20 || item->valuestring[i] == 0x7f)
      return fail(err, "", name, "control characters are not allowed");
  memcpy(out, item->valuestring, n + 1);
  (void)cap;
  return LW_OK;
}

enum { RF_V, RF_SITE, RF_CODE, RF_REFEREE, RF_EVENT, RF_AT, RF_VALUE, RF_INSTALL, RF_TOKEN, RF_COUNT };
static const char *const referee_fields[RF_COUNT] = {"v", "site", "code", "referee", "event",
                                                     "at", "value", "install", "token"};

#define LW_X_REFEREE_NAME(e, name, since, value) name,
#define LW_X_REFEREE_SINCE(e, name, since, value) since,
#define LW_X_REFEREE_VALUE(e, name, since, value) value,
static const char *const referee_event_names[LW_REFEREE_EVENT_COUNT] = {LW_REFEREE_EVENTS(LW_X_REFEREE_NAME)};
static const int referee_event_since[LW_REFEREE_EVENT_COUNT] = {LW_REFEREE_EVENTS(LW_X_REFEREE_SINCE)};
static const char referee_event_value[LW_REFEREE_EVENT_COUNT] = {LW_REFEREE_EVENTS(LW_X_REFEREE_VALUE)};
#undef LW_X_REFEREE_NAME
#undef LW_X_REFEREE_SINCE
#undef LW_X_REFEREE_VALUE

lw_status lw_referee_parse(const char *body, size_t len, lw_referee_request *out,
                           lw_batch_error *err) {
  cJSON *doc = NULL;
  const cJSON *f[RF_COUNT];
  memset(out, 0, sizeof *out);
  unsigned optional = 1u << RF_AT | 1u << RF_VALUE | 1u << RF_INSTALL | 1u << RF_TOKEN;
  lw_status st = small_object(body, len, &doc, referee_fields, RF_COUNT, optional, f, err);
  int64_t v = 0;
  if (st == LW_OK && (read_int(f[RF_V], "", "v", &v, err) != LW_OK || v < 1 || v > LW_REFEREE_VERSION))
    st = fail(err, "", "v", "unsupported schema version (this server reads 1 to %d)", LW_REFEREE_VERSION);
  out->v = (int)v;
  if (st == LW_OK && f[RF_TOKEN] && v < 2)
    st = fail(err, "", "token", "not in version %d (added in version 2)", (int)v);
  if (st == LW_OK)
    st = read_string(f[RF_SITE], "", "site", LW_CS_NAME, 1, LW_NAME_LEN, out->site, sizeof out->site, err);
  if (st == LW_OK)
    st = read_string(f[RF_CODE], "", "code", LW_CS_CODE, LW_CODE_MIN_LEN, LW_CODE_LEN, out->code,
                     sizeof out->code, err);
  if (st == LW_OK) st = read_host_id(f[RF_REFEREE], "referee", out->referee, sizeof out->referee, err);
  size_t evi = 0;
  if (st == LW_OK) {
    size_t n = LW_REFEREE_EVENT_COUNT;
    const char *ev = cJSON_IsString(f[RF_EVENT]) ? f[RF_EVENT]->valuestring : NULL;
    while (ev && evi < n && strcmp(referee_event_names[evi], ev) != 0) evi++;
    if (!ev || evi == n)
      st = fail(err, "", "event", "expected one of conversion, retained_30, retained_90, churned, revenue");
    else if (referee_event_since[evi] > v)
      st = fail(err, "", "event", "%s is not in version %d (added in version %d)", ev, (int)v,
                referee_event_since[evi]);
    else
      snprintf(out->event, sizeof out->event, "%s", ev);
  }
  if (st == LW_OK && referee_event_value[evi] == 'R' && !f[RF_VALUE])
    st = fail(err, "", "value", "required for %s (the referee's revenue to date)", out->event);
  if (st == LW_OK && referee_event_value[evi] == '-' && f[RF_VALUE])
    st = fail(err, "", "value", "not allowed for %s", out->event);
  if (st == LW_OK && f[RF_AT]) {
    st = read_int(f[RF_AT], "", "at", &out->at, err);
    if (st != LW_OK) st = fail(err, "", "at", "expected an integer time in ms since the Unix epoch");
    out->has_at = 1;
  }
  if (st == LW_OK && f[RF_VALUE]) {
    if (!cJSON_IsNumber(f[RF_VALUE]) || !isfinite(f[RF_VALUE]->valuedouble) || f[RF_VALUE]->valuedouble < 0)
      st = fail(err, "", "value", "expected a non-negative number");
    out->has_value = 1;
    out->value = f[RF_VALUE]->valuedouble;
  }
  if (st == LW_OK && f[RF_INSTALL])
    st = read_string(f[RF_INSTALL], "", "install", LW_CS_HEX, LW_INSTALL_LEN, LW_INSTALL_LEN, out->install,
                     sizeof out->install, err);
  if (st == LW_OK && f[RF_TOKEN])
    st = read_string(f[RF_TOKEN], "", "token", LW_CS_HEX, LW_TOKEN_LEN, LW_TOKEN_LEN, out->token,
                     sizeof out->token, err);
  cJSON_Delete(doc);
  return st;
}

enum { RG_V, RG_SITE, RG_CODE, RG_REFERRER, RG_COUNT };
static const char *const referrer_fields[RG_COUNT] = {"v", "site", "code", "referrer"};

lw_status lw_referrer_parse(const char *body, size_t len, lw_referrer_request *out,
                            lw_batch_error *err) {
  cJSON *doc = NULL;
  const cJSON *f[RG_COUNT];
  lw_status st = small_object(body, len, &doc, referrer_fields, RG_COUNT, 0, f, err);
  if (st == LW_OK) st = read_version(f[RG_V], 1, err);
  if (st == LW_OK)
    st = read_string(f[RG_SITE], "", "site", LW_CS_NAME, 1, LW_NAME_LEN, out->site, sizeof out->site, err);
  if (st == LW_OK)
    st = read_string(f[RG_CODE], "", "code", LW_CS_CODE, LW_CODE_MIN_LEN, LW_CODE_LEN, out->code,
                     sizeof out->code, err);
  if (st == LW_OK) st = read_host_id(f[RG_REFERRER], "referrer", out->referrer, sizeof out->referrer, err);
  cJSON_Delete(doc);
  return st;
}

enum { AC_V, AC_WRITE_KEY, AC_INSTALL, AC_KEY, AC_COUNT };
static const char *const approval_check_fields[AC_COUNT] = {"v", "write_key", "install", "key"};

lw_status lw_approval_check_parse(const char *body, size_t len, lw_approval_check *out,
                                  lw_batch_error *err) {
  cJSON *doc = NULL;
  const cJSON *f[AC_COUNT];
  lw_status st = small_object(body, len, &doc, approval_check_fields, AC_COUNT, 0, f, err);
  if (st == LW_OK) st = read_version(f[AC_V], 1, err);
  if (st == LW_OK)
    st = read_string(f[AC_WRITE_KEY], "", "write_key", LW_CS_MODEL, 1, LW_WRITE_KEY_LEN, out->write_key,
                     sizeof out->write_key, err);
  if (st == LW_OK)
    st = read_string(f[AC_INSTALL], "", "install", LW_CS_HEX, LW_INSTALL_LEN, LW_INSTALL_LEN, out->install,
                     sizeof out->install, err);
  if (st == LW_OK)
    st = read_string(f[AC_KEY], "", "key", LW_CS_HEX, LW_APPROVAL_KEY_LEN, LW_APPROVAL_KEY_LEN, out->key,
                     sizeof out->key, err);
  cJSON_Delete(doc);
  return st;
}

static const char *const review_fields[1] = {"decision"};

/* {"decision": "approve" | no}: *approve 1 or 0 (a review's no is "reject", an approval's
 * "decline"). */
static lw_status decision_parse(const char *body, size_t len, const char *no, int *approve, lw_batch_error *err) {
  cJSON *doc = NULL;
  const cJSON *f[1];
  lw_status st = small_object(body, len, &doc, review_fields, 1, 0, f, err);
  if (st == LW_OK) {
    const char *d = cJSON_IsString(f[0]) ? f[0]->valuestring : "";
    if (strcmp(d, "approve") == 0) *approve = 1;
    else if (strcmp(d, no) == 0) *approve = 0;
    else st = fail(err, "", "decision", "expected \"approve\" or \"%s\"", no);
  }
  cJSON_Delete(doc);
  return st;
}

lw_status lw_approval_decision_parse(const char *body, size_t len, int *approve, lw_batch_error *err) {
  return decision_parse(body, len, "decline", approve, err);
}

lw_status lw_review_parse(const char *body, size_t len, int *approve, lw_batch_error *err) {
  return decision_parse(body, len, "reject", approve, err);
}
