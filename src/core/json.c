/* json.c: cJSON behind a strict RFC 8259 check, with failed allocations told apart from bad
 * input (see loopwise/json.h).
 *
 * cJSON is lenient where JSON is not: it reads numbers with strtod (so "1.", ".5", "01",
 * "+1", "0x1F", "Infinity" or "1e" pass), and it decodes an escaped \u0000 into a C string
 * that then ends there (a key "kind\u0000x" is read as "kind"). Two parsers that read the
 * same bytes differently are how forged records get past a check, so every text goes through
 * check_value first, a recursive-descent reader of the RFC 8259 grammar that builds nothing;
 * cJSON then only builds the tree of a text already known to be JSON. */
#include "loopwise/json.h"

#include <stdlib.h>

static _Thread_local int t_failed; /* an allocation failed in this thread since the last parse */

static void *noting_malloc(size_t n) {
  void *p = malloc(n);
  if (!p) t_failed = 1;
  return p;
}

void lw_json_install_hooks(void) {
  cJSON_Hooks hooks = {noting_malloc, free};
  cJSON_InitHooks(&hooks);
}

/* ---------------------------------------------------------------- the grammar */

typedef struct {
  const unsigned char *p, *end;
  int depth;
} reader;

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static void skip_ws(reader *r) {
  while (r->p < r->end && is_ws(*r->p)) r->p++;
}

static int lit(reader *r, const char *word) {
  for (; *word; word++, r->p++)
    if (r->p >= r->end || *r->p != (unsigned char)*word) return 0;
  return 1;
}

/* number = [ "-" ] int [ frac ] [ exp ]; int = "0" / digit1-9 *digit */
static int check_number(reader *r) {
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p >= r->end || !is_digit(*r->p)) return 0;
  if (*r->p == '0') r->p++;
  else
    while (r->p < r->end && is_digit(*r->p)) r->p++;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (r->p >= r->end || !is_digit(*r->p)) return 0;
    while (r->p < r->end && is_digit(*r->p)) r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || !is_digit(*r->p)) return 0;
    while (r->p < r->end && is_digit(*r->p)) r->p++;
  }
  return 1;
}

static int hex4(reader *r, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++, r->p++) {
    if (r->p >= r->end) return 0;
    unsigned char c = *r->p;
    unsigned d = is_digit(c)                          ? (unsigned)(c - '0')
                 : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (unsigned)((c | 0x20) - 'a' + 10)
                                                          : 16u;
    if (d > 15) return 0;
    v = v << 4 | d;
  }
  *out = v;
  return 1;
}

/* A string: no raw control character, only the RFC's escapes, no escaped NUL (a C string
 * would end there), surrogate escapes only as pairs. Bytes from 0x80 up pass: whether they are
 * UTF-8 is the field readers' question (they name the field; see text.c), not the grammar's. */
static int check_string(reader *r) {
  r->p++; /* the opening quote */
  while (r->p < r->end) {
    unsigned char c = *r->p;
    if (c == '"') {
      r->p++;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c != '\\') {
      r->p++;
      continue;
    }
    r->p++;
    if (r->p >= r->end) return 0;
    c = *r->p;
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
        c == 't') {
      r->p++;
      continue;
    }
    if (c != 'u') return 0;
    r->p++;
    unsigned u;
    const unsigned char *at = r->p - 2;
    if (!hex4(r, &u) || u == 0) {
      r->p = at;
      return 0;
    }
    if (u >= 0xDC00 && u <= 0xDFFF) {
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
      if (!hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
        r->p = at;
        return 0;
      }
    }
  }
  return 0;
}

static int check_value(reader *r) {
  skip_ws(r);
  if (r->p >= r->end) return 0;
  switch (*r->p) {
  case '"':
    return check_string(r);
  case 't':
    return lit(r, "true");
  case 'f':
    return lit(r, "false");
  case 'n':
    return lit(r, "null");
  case '[':
  case '{': {
    unsigned char close = *r->p == '[' ? ']' : '}';
    if (++r->depth > CJSON_NESTING_LIMIT) return 0;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
      r->p++;
      r->depth--;
      return 1;
    }
    for (;;) {
      if (close == '}') {
        skip_ws(r);
        if (r->p >= r->end || *r->p != '"' || !check_string(r)) return 0;
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':') return 0;
        r->p++;
      }
      if (!check_value(r)) return 0;
      skip_ws(r);
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
  default:
    return check_number(r);
  }
}

const char *lw_json_check(const char *text, size_t len) {
  reader r = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
  if (!check_value(&r)) return NULL;
  return (const char *)r.p;
}

cJSON *lw_json_parse(const char *text, size_t len, const char **end, lw_status *st) {
  reader r = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
  if (!check_value(&r)) {
    if (end) *end = (const char *)r.p;
    *st = LW_ERR_INVALID;
    return NULL;
  }
  t_failed = 0;
  /* Only the checked value: cJSON never sees what follows it (the caller judges that). */
  cJSON *doc = cJSON_ParseWithLengthOpts(text, (size_t)((const char *)r.p - text), NULL, 0);
  if (end) *end = (const char *)r.p;
  *st = doc ? LW_OK : t_failed ? LW_ERR_NOMEM : LW_ERR_INVALID;
  t_failed = 0;
  return doc;
}
