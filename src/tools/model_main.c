/* loopwise-model: look inside a model file, and make the copy a page downloads.
 *
 *   loopwise-model show models/default.lwm
 *   loopwise-model strip models/default.lwm -o web/dist/loopwise.lwm
 *
 * `strip` drops the JSON metadata (how and from what the model was trained): the runtime
 * never reads it, and it is about a third of the default model's gzip size. Everything the
 * runtime uses (weights, personas, segment offsets, the model id) is kept byte for byte; the
 * full file stays in models/ and is what the ingest server serves. Exit status: 0 ok,
 * 1 unreadable or damaged model, 2 usage or write error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: loopwise-model show FILE.lwm\n"
          "       loopwise-model strip FILE.lwm -o OUT.lwm   (OUT '-' = standard output)\n");
}

static int show(const lw_model *m, size_t len) {
  printf("model m%u, %zu bytes, 2^%u weights, trained at %lld ms\n", m->model_id, len, m->bits,
         (long long)m->trained_at_ms);
  int nonzero = 0;
  for (size_t i = 0; i < (size_t)1 << m->bits; i++) nonzero += m->weights[i] != 0.0f;
  printf("weights: %d non-zero, scale %g\n", nonzero, m->scale);
  for (int a = 0; a < m->n_actions; a++)
    printf("action %s%s, trained on %lld logged decisions%s\n", m->action_ids[a],
           m->action_flags[a] & LW_MODEL_ENOUGH_DATA ? " (enough data)" : "", (long long)lw_model_support(m, (size_t)a),
           lw_model_support(m, (size_t)a) < 0 ? " (not recorded: format version 1)" : "");
  printf("personas: %d\n", m->n_personas);
  for (int s = 0; s < m->n_segments; s++) printf("segment %s offset %g\n", m->segment_names[s], m->segment_offsets[s]);
  printf("metadata: %s\n", m->meta_json && *m->meta_json ? m->meta_json : "(none)");
  return 0;
}

static int strip(lw_model *m, const char *out) {
  free(m->meta_json);
  m->meta_json = NULL;
  uint8_t *bytes = NULL;
  size_t n = 0;
  char err[LW_ERRMSG_MAX];
  if (lw_model_write(m, &bytes, &n, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-model: %s\n", err);
    return 1;
  }
  int rc = lw_cli_write_file(out, bytes, n) ? 2 : 0;
  free(bytes);
  return rc;
}

int main(int argc, char **argv) {
  if (lw_cli_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  int is_show = argc == 3 && strcmp(argv[1], "show") == 0;
  int is_strip = argc == 5 && strcmp(argv[1], "strip") == 0 && strcmp(argv[3], "-o") == 0;
  if (!is_show && !is_strip) {
    usage(stderr);
    return 2;
  }
  char err[LW_ERRMSG_MAX];
  size_t len = 0;
  uint8_t *bytes = NULL;
  lw_model *m = lw_cli_load_model(argv[2], &bytes, &len, err, sizeof err);
  if (!m) {
    fprintf(stderr, "loopwise-model: %s\n", err);
    return 1;
  }
  int rc = is_show ? show(m, len) : strip(m, argv[4]);
  free(bytes);
  lw_model_free(m);
  return rc;
}
