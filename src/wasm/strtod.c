/* strtod.c: the WASM build's strtod, answered by the host.
 *
 * musl's strtod pulls 128-bit soft-float arithmetic into the module (about 8 KB gzip).
 * JavaScript's Number() is correctly rounded, as glibc's strtod is, so asking the host
 * gives the same double natively and in WASM at a fraction of the size. cJSON, in the config
 * checker (loopwise-config.wasm), is the only caller; it passes the number text it has
 * already isolated. */
#include <stddef.h>
#include <stdlib.h>

__attribute__((import_module("env"), import_name("lw_parse_number"))) extern double lw_parse_number(
    const char *text, size_t len);

static const char *digits(const char *p) {
  while (*p >= '0' && *p <= '9') p++;
  return p;
}

double strtod(const char *s, char **end) {
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  const char *int_end = digits(p);
  const char *q = int_end;
  if (*q == '.') q = digits(q + 1);
  if (q == p || (q == p + 1 && *p == '.')) { /* no digits at all */
    if (end) *end = (char *)s;
    return 0.0;
  }
  if (*q == 'e' || *q == 'E') {
    const char *r = q + 1;
    if (*r == '-' || *r == '+') r++;
    const char *exp_end = digits(r);
    if (exp_end > r) q = exp_end;
  }
  if (end) *end = (char *)q;
  return lw_parse_number(s, (size_t)(q - s));
}
