/* fuzz_compiled: the compiled-config reader (what the WASM runtime reads) on arbitrary bytes,
 * as they come and with the checksum made to fit (or the checksum alone would refuse almost
 * everything). Every input is refused with a message or gives a config the engine can run:
 * writing it back reads back the same engine part, and an engine made from it tracks every
 * event without a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/config.h"
#include "loopwise/engine.h"
#include "loopwise/model.h"

static void one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size);
  if (size < 16) return 0;
  uint8_t *fixed = malloc(size);
  if (!fixed) return 0;
  memcpy(fixed, data, size);
  uint32_t crc = lw_crc32(0, fixed, size - 4);
  for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
  one(fixed, size);
  free(fixed);
  return 0;
}

static void one(const uint8_t *data, size_t size) {
  lw_config cfg, again;
  char err[LW_ERRMSG_MAX];
  if (lw_config_read(data, size, &cfg, err, sizeof err) != LW_OK) {
    if (err[0] == '\0') __builtin_trap();
    return;
  }
  size_t n = lw_config_write(&cfg, NULL, 0);
  uint8_t *buf = malloc(n);
  if (!buf || lw_config_write(&cfg, buf, n) != n) __builtin_trap();
  if (lw_config_read(buf, n, &again, err, sizeof err) != LW_OK) __builtin_trap();
  if (memcmp(&cfg, &again, sizeof cfg) != 0) __builtin_trap(); /* texts are empty in both */
  free(buf);

  lw_engine *e = NULL;
  if (lw_engine_create(&cfg, 1, 2, 0, &e, err, sizeof err) != LW_OK) return;
  lw_decision d;
  int64_t t = 1767614400000LL;
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < cfg.n_events; i++, t += 3600000)
      if (lw_engine_track(e, cfg.events[i], t, 0, &d, err, sizeof err) != LW_OK) __builtin_trap();
  lw_engine_free(e);
}
