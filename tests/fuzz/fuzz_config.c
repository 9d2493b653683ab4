/* fuzz_config: the program config parser on arbitrary bytes. Every input is either a
 * config or refused with a path and a message; never a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <string.h>

#include "loopwise/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lw_config cfg;
  char err[LW_ERRMSG_MAX];
  lw_status st = lw_config_parse((const char *)data, size, &cfg, err, sizeof err);
  if (st != LW_OK && (err[0] == '\0' || !strchr(err, ':'))) __builtin_trap(); /* "path: problem" */
  if (st == LW_OK && (cfg.n_events < 1 || cfg.n_variants < 1 || cfg.n_milestones < 1)) __builtin_trap();
  return 0;
}
