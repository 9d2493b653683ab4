/* config_tool.c: loopwise-config in the browser (loopwise-config.wasm), for the demo's config
 * editor and for anyone who checks a program config without a native build.
 *
 * The same checker as the native tool (config.c with cJSON compiled from Debian's sources)
 * and the same compiler (config_bin.c): a config gets the same JSON-path message and the same
 * compiled bytes here as from `loopwise-config compile`. Not part of the page download: the
 * runtime (loopwise.wasm) reads only the compiled output. */
#include <emscripten.h>
#include <stdint.h>
#include <string.h>

#include "loopwise/config.h"

/* Check json (len bytes) and compile it into out (cap bytes). Returns the compiled size (more
 * than cap: call again with room for it; cap 0 measures), or 0 with "path: problem" in err
 * (LW_ERRMSG_MAX bytes, the caller's). */
EMSCRIPTEN_KEEPALIVE size_t lw_c_compile(const char *json, size_t len, char *err, uint8_t *out, size_t cap) {
  lw_config cfg;
  if (lw_config_parse(json, len, &cfg, err, LW_ERRMSG_MAX) != LW_OK) return 0;
  size_t n = lw_config_write_json(&cfg, json, len, out, cap);
  if (!n) memcpy(err, "out of memory", sizeof "out of memory");
  return n;
}
