/* loopwise-config: check a program config and compile it for the runtime.
 *
 *   loopwise-config check referral.json           names the JSON path of the first problem
 *   loopwise-config compile referral.json -o referral.lwc
 *   loopwise-config check referral.lwc            a compiled file is re-checked the same way
 *
 * The runtime in the page reads only the compiled form (models/FORMAT.md), so it ships no
 * JSON parser; this tool is where product managers' JSON meets the schema. "-" reads
 * standard input or writes standard output. Exit status: 0 ok, 1 invalid config, 2 usage
 * or I/O error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loopwise/config.h"

static void usage(void) {
  fprintf(stderr,
          "usage: loopwise-config check FILE          (a JSON config or a compiled .lwc)\n"
          "       loopwise-config compile FILE.json [-o OUT.lwc]   (default: FILE with .lwc; '-' = stdin/stdout)\n");
}

/* A config from JSON or from its compiled form: 0, 1 (invalid) or 2 (unreadable). */
static int load(const char *path, lw_config *cfg) {
  char err[LW_ERRMSG_MAX + 256];
  lw_status st = lw_cli_load_config(path, cfg, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "%s\n", err);
  return st == LW_OK ? 0 : st == LW_ERR_IO ? 2 : 1;
}

static int compile(const char *in, const char *out) {
  lw_config cfg;
  int loaded = load(in, &cfg);
  if (loaded) return loaded;
  size_t n = lw_config_write(&cfg, NULL, 0);
  uint8_t *buf = n ? malloc(n) : NULL;
  if (!buf || lw_config_write(&cfg, buf, n) != n) {
    fprintf(stderr, "loopwise-config: out of memory\n");
    free(buf);
    return 2;
  }
  char def[4096];
  if (!out) {
    const char *dot = strrchr(in, '.'), *slash = strrchr(in, '/');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - in) : strlen(in);
    if (strcmp(in, "-") == 0 || stem + 5 > sizeof def) {
      fprintf(stderr, "loopwise-config: name the output with -o\n");
      free(buf);
      return 2;
    }
    memcpy(def, in, stem);
    memcpy(def + stem, ".lwc", 5);
    out = def;
  }
  int rc = lw_cli_write_file(out, buf, n) ? 2 : 0;
  free(buf);
  if (rc) return rc;
  if (strcmp(out, "-") != 0) fprintf(stderr, "%s: %zu bytes\n", out, n);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "check") == 0) {
    lw_config cfg;
    int rc = load(argv[2], &cfg);
    if (!rc)
      printf("%s: ok (%d events, %d milestones, %d variants, %d ladder steps, %d attributes)\n", argv[2],
             cfg.n_events, cfg.n_milestones, cfg.n_variants, cfg.n_ladder, cfg.n_attributes);
    return rc;
  }
  if ((argc == 3 || (argc == 5 && strcmp(argv[3], "-o") == 0)) && strcmp(argv[1], "compile") == 0)
    return compile(argv[2], argc == 5 ? argv[4] : NULL);
  usage();
  return 2;
}
