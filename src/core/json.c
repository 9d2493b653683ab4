/* json.c: cJSON with failed allocations told apart from bad input (see loopwise/json.h). */
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

cJSON *lw_json_parse(const char *text, size_t len, const char **end, lw_status *st) {
  t_failed = 0;
  cJSON *doc = cJSON_ParseWithLengthOpts(text, len, end, 0);
  *st = doc ? LW_OK : t_failed ? LW_ERR_NOMEM : LW_ERR_INVALID;
  t_failed = 0;
  return doc;
}
