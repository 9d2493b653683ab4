/* fuzz_json: the one JSON entry point (lw_json_parse, src/core/json.c) on arbitrary bytes.
 * Never a crash; the grammar check and the parse agree on where the value ends; whatever it
 * accepts, cJSON prints back to text that it accepts again, with the same printed form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data, *end = NULL;
  lw_status st;
  cJSON *doc = lw_json_parse(text, size, &end, &st);
  const char *checked = lw_json_check(text, size);
  if (!end || end < text || end > text + size) __builtin_trap();
  if ((doc != NULL) != (checked != NULL) && st != LW_ERR_NOMEM) __builtin_trap();
  if (!doc) return 0;
  if (checked != end) __builtin_trap();
  char *printed = cJSON_PrintUnformatted(doc);
  if (printed) {
    size_t n = strlen(printed);
    cJSON *again = lw_json_parse(printed, n, &end, &st);
    if (!again || end != printed + n) __builtin_trap();
    char *twice = cJSON_PrintUnformatted(again);
    if (twice && strcmp(twice, printed) != 0) __builtin_trap();
    cJSON_free(twice);
    cJSON_Delete(again);
    cJSON_free(printed);
  }
  cJSON_Delete(doc);
  return 0;
}
