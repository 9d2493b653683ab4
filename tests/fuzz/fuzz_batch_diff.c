/* fuzz_batch_diff.c: differential libFuzzer target for the batch reader (src/ingest/batch.c).
 *
 * Runs lw_batch_parse and the cJSON-tree validator it replaced (tests/ingest/batch_cjson.c, kept
 * as the oracle) on the same bytes, under the default limits and tight ones, and aborts when they
 * differ: in status, in the field or message of a refusal, or in any value of an accepted batch
 * (tests/ingest/batch_equiv.h). Its corpus starts from fuzz_batch's and the shared cases; crash
 * inputs land in tests/fuzz/regressions/batch_diff/ and test_batch_equiv replays them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "batch_equiv.h"
#include "loopwise/json.h"

#define NOW_MS 1764100000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int hooked;
  if (!hooked) lw_json_install_hooks(), hooked = 1;
  lw_batch_limits def = lw_batch_default_limits(), tight = {2, 0};
  char why[512];
  if (!batch_equiv((const char *)data, size, &def, NOW_MS, why, sizeof why) ||
      !batch_equiv((const char *)data, size, &tight, NOW_MS, why, sizeof why)) {
    fprintf(stderr, "fuzz_batch_diff: %s\n", why);
    abort();
  }
  return 0;
}
