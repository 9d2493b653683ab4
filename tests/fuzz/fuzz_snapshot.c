/* fuzz_snapshot: restoring arbitrary bytes as a snapshot. Damage must fall back to the
 * conservative state (never crash), the engine must keep deciding, and whatever state
 * results must survive its own snapshot round trip byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/engine.h"

static const char k_config[] =
    "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\",\"b\"],"
    "\"milestones\":[{\"event\":\"a\",\"after\":1,\"every\":1}],\"variants\":[{\"id\":\"v\",\"title\":\"T\","
    "\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":1}],"
    "\"attributes\":{\"plan\":[\"free\",\"pro\"]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lw_config cfg;
  static int ready;
  char err[LW_ERRMSG_MAX];
  if (!ready) {
    if (lw_config_parse(k_config, sizeof k_config - 1, &cfg, err, sizeof err) != LW_OK) __builtin_trap();
    ready = 1;
  }
  lw_engine *e;
  if (lw_engine_create(&cfg, 1, 2, 4096, &e, err, sizeof err) != LW_OK) return 0;
  const int64_t now = 1767614400000LL;
  lw_engine_restore(e, data, size, now, err, sizeof err);
  lw_decision d;
  if (lw_engine_track(e, "a", now, 0, &d, err, sizeof err) != LW_OK || !d.decided) __builtin_trap();

  size_t n = lw_engine_snapshot(e, NULL, 0);
  uint8_t *a = malloc(n), *b = malloc(n);
  lw_engine_snapshot(e, a, n);
  lw_engine *r;
  lw_engine_create(&cfg, 3, 4, 4096, &r, err, sizeof err);
  if (lw_engine_restore(r, a, n, now, err, sizeof err) != LW_OK) __builtin_trap();
  if (lw_engine_snapshot(r, b, n) != n || memcmp(a, b, n) != 0) __builtin_trap();
  free(a);
  free(b);
  lw_engine_free(r);
  lw_engine_free(e);
  return 0;
}
