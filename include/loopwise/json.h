/* loopwise/json.h: parsing JSON with cJSON so that running out of memory is told apart from
 * bad input (native edges and tools only; the runtime in the page parses no JSON).
 *
 * cJSON answers NULL both for malformed text and for a failed allocation, and a server that
 * answers 400 to a valid batch because it ran short of memory makes the client drop that
 * batch for good. lw_json_install_hooks routes cJSON's allocations through a malloc that
 * notes a failure in a per-thread flag; lw_json_parse reads and clears that flag. Call
 * lw_json_install_hooks once at start, before any thread parses (cJSON's hooks are process
 * wide); without it lw_json_parse still works and reports every NULL as bad input. */
#ifndef LOOPWISE_JSON_H
#define LOOPWISE_JSON_H

#include <stddef.h>

#include <cJSON.h>

#include "loopwise/common.h"

#ifdef __cplusplus
extern "C" {
#endif

void lw_json_install_hooks(void);

/* Parse text[0..len) as one JSON value (trailing data left to the caller: *end points after
 * the value, or where parsing stopped). NULL with *st LW_ERR_NOMEM when an allocation failed,
 * LW_ERR_INVALID when the text is not JSON. The caller frees the result with cJSON_Delete.
 *
 * Strict: the text must follow RFC 8259's grammar (leading whitespace allowed), which cJSON
 * alone does not enforce, so numbers such as 01, 1., .5, +1, 0x10, NaN or Infinity are refused;
 * so are an escaped NUL (\u0000) anywhere, a lone surrogate escape and nesting deeper than
 * CJSON_NESTING_LIMIT. (Whether string bytes are UTF-8 is left to the readers of each field,
 * which name the field.) */
cJSON *lw_json_parse(const char *text, size_t len, const char **end, lw_status *st);

/* The same check without building anything: a pointer just past the one JSON value at the
 * start of text[0..len), or NULL when there is none. */
const char *lw_json_check(const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif
