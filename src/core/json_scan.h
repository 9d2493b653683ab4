/* json_scan.h: the strict JSON grammar, one copy for every reader (src/core/json.c's check before
 * cJSON sees a body, and the ingest's one-pass batch reader, src/ingest/batch.c). RFC 8259 with
 * the contract's extra refusals: no raw control byte or escaped NUL in a string, surrogate
 * escapes only as pairs, at most CJSON_NESTING_LIMIT levels. Bytes from 0x80 up pass: whether
 * they are UTF-8 is the field readers' question (they name the field; see text.c).
 *
 * Static inline functions of a header private to the core and the ingest (not a public
 * header): the batch reader's speed depends on their being inlined. j_value locates each value
 * it passes (jval); a failing call leaves r->p where the grammar stopped. */
#ifndef LW_JSON_SCAN_H
#define LW_JSON_SCAN_H

#include <cJSON.h> /* CJSON_NESTING_LIMIT */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { J_NONE, J_STR, J_NUM, J_TRUE, J_FALSE, J_NULL, J_ARR, J_OBJ };

/* A value located in the body: a string's s..e is between its quotes (esc: it has a
 * backslash), anything else's is its text. */
typedef struct {
  const unsigned char *s, *e;
  unsigned char type, esc;
} jval;

typedef struct {
  const unsigned char *p, *end;
  int depth;
} jreader;

static inline int j_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline int j_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static inline void j_skip_ws(jreader *r) {
  while (r->p < r->end && j_ws(*r->p)) r->p++;
}

static inline int j_lit(jreader *r, const char *word) {
  for (; *word; word++, r->p++)
    if (r->p >= r->end || *r->p != (unsigned char)*word) return 0;
  return 1;
}

static inline int j_number(jreader *r) {
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p >= r->end || !j_digit(*r->p)) return 0;
  if (*r->p == '0') r->p++;
  else
    while (r->p < r->end && j_digit(*r->p)) r->p++;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (r->p >= r->end || !j_digit(*r->p)) return 0;
    while (r->p < r->end && j_digit(*r->p)) r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || !j_digit(*r->p)) return 0;
    while (r->p < r->end && j_digit(*r->p)) r->p++;
  }
  return 1;
}

static inline unsigned j_hexval(unsigned char c) {
  return j_digit(c) ? (unsigned)(c - '0') : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (unsigned)((c | 0x20) - 'a' + 10) : 16u;
}

static inline int j_hex4(jreader *r, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++, r->p++) {
    if (r->p >= r->end) return 0;
    unsigned d = j_hexval(*r->p);
    if (d > 15) return 0;
    v = v << 4 | d;
  }
  *out = v;
  return 1;
}

/* The first byte from p that ends a run of plain string bytes (a quote, a backslash or a
 * control character), or end. Sixteen bytes at a time where SSE2 is there (every x86-64). */
static inline const unsigned char *j_plain_run(const unsigned char *p, const unsigned char *end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1F);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
    int m = _mm_movemask_epi8(stop);
    if (m) return p + __builtin_ctz((unsigned)m);
    p += 16;
  }
#endif
  while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) p++;
  return p;
}

/* r->p at the opening quote; *esc set when the string has an escape. */
static inline int j_string(jreader *r, int *esc) {
  r->p++;
  for (;;) {
    const unsigned char *p = j_plain_run(r->p, r->end);
    r->p = p;
    if (p >= r->end) return 0;
    unsigned char c = *p;
    if (c == '"') {
      r->p++;
      return 1;
    }
    if (c < 0x20) return 0;
    *esc = 1;
    r->p++;
    if (r->p >= r->end) return 0;
    c = *r->p;
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
      r->p++;
      continue;
    }
    if (c != 'u') return 0;
    r->p++;
    unsigned u;
    const unsigned char *at = r->p - 2;
    if (!j_hex4(r, &u) || u == 0 || (u >= 0xDC00 && u <= 0xDFFF)) {
      r->p = at;
      return 0;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
      unsigned lo;
      if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') {
        r->p = at;
        return 0;
      }
      r->p += 2;
      if (!j_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
        r->p = at;
        return 0;
      }
    }
  }
}

static inline int j_value(jreader *r, jval *v);

/* The members of an object or the elements of an array, r->p at '{' or '['. */
static inline int j_container(jreader *r) {
  unsigned char close = *r->p == '[' ? ']' : '}';
  if (++r->depth > CJSON_NESTING_LIMIT) return 0;
  r->p++;
  j_skip_ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    r->depth--;
    return 1;
  }
  jval v;
  for (;;) {
    if (close == '}') {
      int esc = 0;
      j_skip_ws(r);
      if (r->p >= r->end || *r->p != '"' || !j_string(r, &esc)) return 0;
      j_skip_ws(r);
      if (r->p >= r->end || *r->p != ':') return 0;
      r->p++;
    }
    if (!j_value(r, &v)) return 0;
    j_skip_ws(r);
    if (r->p >= r->end) return 0;
    if (*r->p == ',') {
      r->p++;
      continue;
    }
    if (*r->p != close) return 0;
    r->p++;
    r->depth--;
    return 1;
  }
}

/* One value, leading whitespace skipped, located in *v. */
static inline int j_value(jreader *r, jval *v) {
  j_skip_ws(r);
  v->esc = 0;
  v->s = r->p;
  if (r->p >= r->end) return 0;
  int ok, esc = 0;
  switch (*r->p) {
  case '"':
    v->type = J_STR;
    ok = j_string(r, &esc);
    v->s++;
    v->e = r->p - 1;
    v->esc = (unsigned char)esc;
    return ok;
  case 't': v->type = J_TRUE; ok = j_lit(r, "true"); break;
  case 'f': v->type = J_FALSE; ok = j_lit(r, "false"); break;
  case 'n': v->type = J_NULL; ok = j_lit(r, "null"); break;
  case '[': v->type = J_ARR; ok = j_container(r); break;
  case '{': v->type = J_OBJ; ok = j_container(r); break;
  default: v->type = J_NUM; ok = j_number(r); break;
  }
  v->e = r->p;
  return ok;
}

#endif
