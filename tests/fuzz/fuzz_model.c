/* fuzz_model: loading arbitrary bytes as a model file. A damaged file is refused with a
 * message; an accepted one scores without faults and writes back to the same bytes (an older
 * format version: to a current-version file that decides the same). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/model.h"

static int check(const uint8_t *data, size_t size);

/* Each input is tried as it is, and with its checksum made right, so the fuzzer gets past
 * the checksum into the structure checks. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check(data, size);
  if (size >= 8) {
    uint8_t *fixed = malloc(size);
    memcpy(fixed, data, size);
    uint32_t crc = lw_crc32(0, fixed, size - 4);
    for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    check(fixed, size);
    free(fixed);
  }
  return 0;
}

static int check(const uint8_t *data, size_t size) {
  lw_model *m;
  char err[LW_ERRMSG_MAX];
  if (lw_model_load(data, size, &m, err, sizeof err) != LW_OK) {
    if (err[0] == '\0') __builtin_trap();
    return 0;
  }
  lw_feature x[3] = {{lw_fnv1a("bias"), 256}, {lw_fnv1a("act^d7"), 300}, {12345u, -70}};
  double dims[LW_MODEL_PERSONA_DIMS] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (int a = 0; a < m->n_actions; a++) (void)lw_model_score(m, a, x, 3, 0.5);
  (void)lw_model_persona(m, dims);
  uint8_t *out;
  size_t len;
  if (lw_model_write(m, &out, &len, err, sizeof err) != LW_OK) __builtin_trap();
  if (data[4] == LW_MODEL_FORMAT_VERSION) { /* the current version writes back byte for byte */
    if (len != size || memcmp(out, data, size) != 0) __builtin_trap();
  } else { /* an older one is rewritten in the current version, deciding the same */
    lw_model *again;
    if (lw_model_load(out, len, &again, err, sizeof err) != LW_OK || !lw_model_same_decisions(m, again)) __builtin_trap();
    lw_model_free(again);
  }
  free(out);
  lw_model_free(m);
  return 0;
}
