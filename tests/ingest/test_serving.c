/* test_serving.c: the ingest server's model ETag is the trainer's, byte for byte, and
 * If-None-Match matching. (The HTTP side is tests/ingest/serving.test.mjs.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "loopwise/learn.h"
#include "serving.h"

static uint8_t *read_file(const char *rel, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", LW_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = malloc(1 << 20);
  *len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  return buf;
}

static void same_etag(const uint8_t *buf, size_t len) {
  char a[LW_ETAG_MAX], b[64];
  lw_model_file_etag(buf, len, a);
  lw_model_etag(buf, len, b, sizeof b);
  CHECK_STR(a, b);
}

static void model_etag_is_the_trainers(void) {
  const char *files[] = {"models/default.lwm", "tests/cases/models/cases.lwm"};
  for (int i = 0; i < 2; i++) {
    size_t len = 0;
    uint8_t *buf = read_file(files[i], &len);
    CHECK(buf != NULL && len > 32);
    if (!buf) continue;
    same_etag(buf, len);
    same_etag(buf, len - 7); /* truncated files too */
    for (size_t n = 0; n < 24; n++) same_etag(buf, n);
    char a[LW_ETAG_MAX], b[LW_ETAG_MAX];
    lw_model_file_etag(buf, len, a);
    buf[len - 1] ^= 1; /* another checksum: another tag */
    lw_model_file_etag(buf, len, b);
    CHECK(strcmp(a, b) != 0);
    free(buf);
  }
}

static void if_none_match_takes_lists_weak_tags_and_star(void) {
  const char *tag = "\"m42-0badc0de-4102\"";
  CHECK(lw_etag_matches("\"m42-0badc0de-4102\"", tag));
  CHECK(lw_etag_matches("W/\"m42-0badc0de-4102\"", tag));
  CHECK(lw_etag_matches("\"x\", \"m42-0badc0de-4102\"", tag));
  CHECK(lw_etag_matches("*", tag));
  CHECK(!lw_etag_matches("\"m42-0badc0de-410\"", tag));
  CHECK(!lw_etag_matches("\"m42-0badc0de-41022\"", tag));
  CHECK(!lw_etag_matches("m42-0badc0de-4102", tag));
  CHECK(!lw_etag_matches("", tag));
}

int main(void) {
  model_etag_is_the_trainers();
  if_none_match_takes_lists_weak_tags_and_star();
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
