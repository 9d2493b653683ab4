/* fuzz_config: the program config parser on arbitrary bytes. Every input is either a
 * config or refused with a path and a message; never a crash, a leak or undefined behaviour.
 * Every config it accepts compiles, and the runtime's reader accepts the compiled form and
 * reads back the same engine part. The every-error form (lw_config_check_all) agrees: the
 * same answer, and its first error is the one lw_config_parse reports. With its locales
 * (lw_config_write_json) it compiles to the same engine part. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lw_config cfg;
  char err[LW_ERRMSG_MAX];
  lw_status st = lw_config_parse((const char *)data, size, &cfg, err, sizeof err);
  if (st != LW_OK && (err[0] == '\0' || !strchr(err, ':'))) __builtin_trap(); /* "path: problem" */
  if (st == LW_OK && (cfg.n_events < 1 || cfg.n_variants < 1 || cfg.n_milestones < 1)) __builtin_trap();
  char *all = malloc(1 << 14);
  int n_errors = -1;
  if (!all) __builtin_trap();
  lw_status st_all = lw_config_check_all((const char *)data, size, &cfg, all, 1 << 14, &n_errors);
  if (st_all != st || (st == LW_OK) != (n_errors == 0)) __builtin_trap();
  if (st == LW_ERR_INVALID && strncmp(all, err, strlen(err)) != 0) __builtin_trap();
  free(all);
  if (st != LW_OK) return 0;
  size_t n = lw_config_write(&cfg, NULL, 0);
  uint8_t *a = malloc(n), *b = malloc(n + 64);
  lw_config back;
  if (!a || !b || lw_config_write(&cfg, a, n) != n) __builtin_trap();
  if (lw_config_read(a, n, &back, err, sizeof err) != LW_OK) __builtin_trap();
  /* Written again (now without texts), the engine part is the same bytes. */
  size_t m = lw_config_write(&back, b, n + 64), engine = 12 + (a[8] | a[9] << 8 | (size_t)a[10] << 16);
  if (m > n + 64 || engine > n || memcmp(a, b, engine) != 0) __builtin_trap();
  /* With its locales (lw_config_write_json): the same engine part, and only a longer display part. */
  size_t k = lw_config_write_json(&cfg, (const char *)data, size, NULL, 0);
  uint8_t *c = k ? malloc(k) : NULL;
  if (!c || lw_config_write_json(&cfg, (const char *)data, size, c, k) != k || k < n || memcmp(a, c, engine) != 0)
    __builtin_trap();
  if (lw_config_read(c, k, &back, err, sizeof err) != LW_OK) __builtin_trap();
  free(c);
  free(a);
  free(b);
  return 0;
}
