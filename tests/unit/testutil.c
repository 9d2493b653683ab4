#include "testutil.h"

#include <stdio.h>
#include <string.h>

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  if (len) *len = (size_t)n;
  return buf;
}

const char *tu_path(const char *rel) {
  static char buf[1024];
  snprintf(buf, sizeof buf, "%s/%s", LW_SOURCE_DIR, rel);
  return buf;
}

char *tu_read_case(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/cases/%s", LW_SOURCE_DIR, rel);
  return tu_read_file(path, NULL);
}

void tu_remove_db(const char *path) {
  char side[1100];
  remove(path);
  snprintf(side, sizeof side, "%s-wal", path);
  remove(side);
  snprintf(side, sizeof side, "%s-shm", path);
  remove(side);
}

lw_config tu_config(const char *json) {
  lw_config cfg;
  char err[LW_ERRMSG_MAX];
  if (lw_config_parse(json, strlen(json), &cfg, err, sizeof err) != LW_OK) {
    fprintf(stderr, "test config rejected: %s\n", err);
    exit(2);
  }
  return cfg;
}

lw_config tu_default_config(void) {
  char *text = tu_read_file(tu_path("models/referral.json"), NULL);
  if (!text) {
    fprintf(stderr, "cannot read models/referral.json\n");
    exit(2);
  }
  lw_config cfg = tu_config(text);
  free(text);
  return cfg;
}

lw_status tu_take_batch(lw_engine *e, const char *write_key, int64_t now_ms, size_t max_bytes, char *buf,
                        size_t cap, size_t *len, size_t *n_events) {
  char id[LW_BATCH_ID_HEX_LEN + 1];
  lw_engine_batch_id(e, id);
  return lw_wire_take_batch(lw_engine_outbox(e), id, write_key, now_ms, max_bytes, buf, cap, len, n_events);
}
