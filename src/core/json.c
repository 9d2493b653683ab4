/* json.c: cJSON behind a strict RFC 8259 check, with failed allocations told apart from bad
 * input (see loopwise/json.h).
 *
 * cJSON is lenient where JSON is not: it reads numbers with strtod (so "1.", ".5", "01",
 * "+1", "0x1F", "Infinity" or "1e" pass), and it decodes an escaped \u0000 into a C string
 * that then ends there (a key "kind\u0000x" is read as "kind"). Two parsers that read the
 * same bytes differently are how forged records get past a check, so every text goes through
 * check_value first, a recursive-descent reader of the RFC 8259 grammar that builds nothing
 * (json_scan.h, which the batch reader shares);
 * cJSON then only builds the tree of a text already known to be JSON. */
#include "loopwise/json.h"

#include "json_scan.h"

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

/* json_scan.h's, shared with the batch reader: the value, located and thrown away. */
static int check_value(jreader *r) {
  jval v;
  return j_value(r, &v);
}

const char *lw_json_check(const char *text, size_t len) {
  jreader r = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
  if (!check_value(&r)) return NULL;
  return (const char *)r.p;
}

cJSON *lw_json_parse(const char *text, size_t len, const char **end, lw_status *st) {
  jreader r = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
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
