/* loopwise-config: check a program config, compile it for the runtime, print its schema.
 *
 *   loopwise-config check referral.json           every problem, each with its JSON path
 *   loopwise-config compile referral.json -o referral.lwc
 *   loopwise-config check referral.lwc            a compiled file is re-checked the same way
 *   loopwise-config schema > web/config.schema.json   the JSON Schema editors check against
 *
 * The runtime in the page reads only the compiled form (models/FORMAT.md), so it ships no
 * JSON parser; this tool is where product managers' JSON meets the schema. "-" reads
 * standard input or writes standard output. Exit status: 0 ok, 1 invalid config, 2 usage
 * or I/O error. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loopwise/config.h"

static void usage(FILE *to) {
  fprintf(to,
          "usage: loopwise-config check FILE          (a JSON config or a compiled .lwc: every error, with its JSON path)\n"
          "       loopwise-config compile FILE.json [-o OUT.lwc]   (default: FILE with .lwc; '-' = stdin/stdout)\n"
          "       loopwise-config schema              (the config's JSON Schema, draft 2020-12, on stdout)\n");
}

/* A config from JSON or from its compiled form: 0, 1 (invalid) or 2 (unreadable). */
static int load(const char *path, lw_config *cfg) {
  char err[LW_ERRMSG_MAX + 256];
  lw_status st = lw_cli_load_config(path, cfg, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "%s\n", err);
  return st == LW_OK ? 0 : st == LW_ERR_IO ? 2 : 1;
}

/* check: a JSON file reports every error at once, one "FILE: path: problem" a line. */
static int check(const char *path, lw_config *cfg) {
  char err[LW_ERRMSG_MAX];
  size_t len = 0;
  char *text = lw_cli_read_file(path, &len, err, sizeof err);
  if (!text) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (len >= 4 && memcmp(text, "LWCF", 4) == 0) {
    free(text);
    return load(path, cfg);
  }
  size_t cap = 1 << 16;
  char *errs = malloc(cap);
  int n = 0;
  lw_status st = errs ? lw_config_check_all(text, len, cfg, errs, cap, &n) : LW_ERR_NOMEM;
  free(text);
  if (st == LW_OK) {
    free(errs);
    return 0;
  }
  if (!errs || st == LW_ERR_NOMEM) {
    fprintf(stderr, "loopwise-config: out of memory\n");
    free(errs);
    return 2;
  }
  for (char *line = errs, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    fprintf(stderr, "%s: %s\n", path, line);
  }
  if (n > 1) fprintf(stderr, "%s: %d errors\n", path, n);
  free(errs);
  return 1;
}

/* A JSON config compiles with its `locales` (lw_config_write_json), which lw_config does not
 * hold; a compiled file is written again from what it holds. */
static int compile(const char *in, const char *out) {
  lw_config cfg;
  char err[LW_ERRMSG_MAX + 256], why[LW_ERRMSG_MAX];
  size_t len = 0;
  char *text = lw_cli_read_file(in, &len, err, sizeof err);
  if (!text) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  int json = !(len >= 4 && memcmp(text, "LWCF", 4) == 0);
  lw_status st = json ? lw_config_parse(text, len, &cfg, why, sizeof why)
                      : lw_config_read((const uint8_t *)text, len, &cfg, why, sizeof why);
  if (st != LW_OK) {
    fprintf(stderr, "%s: %s\n", in, why);
    free(text);
    return st == LW_ERR_NOMEM ? 2 : 1;
  }
  size_t n = json ? lw_config_write_json(&cfg, text, len, NULL, 0) : lw_config_write(&cfg, NULL, 0);
  uint8_t *buf = n ? malloc(n) : NULL;
  if (!buf || (json ? lw_config_write_json(&cfg, text, len, buf, n) : lw_config_write(&cfg, buf, n)) != n) {
    fprintf(stderr, "loopwise-config: out of memory\n");
    free(buf);
    free(text);
    return 2;
  }
  free(text);
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

/* Print cJSON's indented text with two spaces a level and ": " (its tabs; the schema's own
 * strings hold none). */
static void print_indented(const char *t) {
  for (int start = 1; *t; t++) {
    if (*t == '\t')
      fputs(start ? "  " : " ", stdout);
    else
      putchar(*t);
    start = *t == '\n' || (start && *t == '\t');
  }
  putchar('\n');
}

/* schema: the generated schema, indented by cJSON (which also proves it is JSON). */
static int schema(void) {
  size_t cap = 1 << 16;
  char *buf = malloc(cap);
  size_t n = buf ? lw_config_schema(buf, cap) : 0;
  cJSON *doc = n && n < cap ? cJSON_Parse(buf) : NULL;
  char *text = doc ? cJSON_Print(doc) : NULL;
  if (text) print_indented(text);
  cJSON_free(text);
  cJSON_Delete(doc);
  free(buf);
  if (!text) fprintf(stderr, "loopwise-config: could not write the schema\n");
  return text ? 0 : 2;
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "schema") == 0) return schema();
  if (argc == 3 && strcmp(argv[1], "check") == 0) {
    lw_config cfg;
    int rc = check(argv[2], &cfg);
    if (!rc)
      printf("%s: ok (%d events, %d milestones, %d variants, %d ladder steps, %d attributes)\n", argv[2],
             cfg.n_events, cfg.n_milestones, cfg.n_variants, cfg.n_ladder, cfg.n_attributes);
    return rc;
  }
  if ((argc == 3 || (argc == 5 && strcmp(argv[3], "-o") == 0)) && strcmp(argv[1], "compile") == 0)
    return compile(argv[2], argc == 5 ? argv[4] : NULL);
  usage(stderr);
  return 2;
}
