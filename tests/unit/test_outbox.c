/* The outbox: bounded, batches within the byte limit, valid JSON, oldest dropped first. */
#include <cJSON.h>
#include <stdlib.h>

#include "check.h"
#include "loopwise/wire.h"
#include "testutil.h"

static void push_n(lw_outbox *ob, int from, int n) {
  for (int i = from; i < from + n; i++) {
    char rec[64];
    int len = snprintf(rec, sizeof rec, "{\"kind\":\"impression\",\"t\":%d}", i);
    CHECK_INT(lw_outbox_push(ob, rec, (size_t)len), LW_OK);
  }
}

static void empty_outbox_gives_no_batch(void) {
  lw_outbox *ob;
  CHECK_INT(lw_outbox_create(1024, &ob), LW_OK);
  char buf[256];
  size_t len = 99, n = 99;
  CHECK_INT(lw_wire_take_batch(ob, "b1", "k", 5, 1000, buf, sizeof buf, &len, &n), LW_OK);
  CHECK_INT(len, 0);
  CHECK_INT(n, 0);
  lw_outbox_free(ob);
}

static void batches_respect_the_byte_limit_and_parse(void) {
  lw_outbox *ob;
  CHECK_INT(lw_outbox_create(65536, &ob), LW_OK);
  push_n(ob, 0, 100);
  char buf[4096];
  size_t len, n, total = 0;
  int batches = 0, next_t = 0;
  while (lw_wire_take_batch(ob, "batch-1", "demo-site-key", 1767614400000LL, 600, buf, sizeof buf, &len,
                              &n) == LW_OK && n) {
    CHECK(len <= 600);
    CHECK_INT(strlen(buf), len);
    cJSON *b = cJSON_Parse(buf);
    CHECK(b != NULL);
    if (!b) break;
    CHECK_INT(cJSON_GetObjectItem(b, "v")->valueint, LW_WIRE_VERSION);
    CHECK_STR(cJSON_GetObjectItem(b, "batch_id")->valuestring, "batch-1");
    CHECK_STR(cJSON_GetObjectItem(b, "write_key")->valuestring, "demo-site-key");
    CHECK(cJSON_GetObjectItem(b, "sent_at")->valuedouble == 1767614400000.0);
    cJSON *ev = cJSON_GetObjectItem(b, "events");
    CHECK_INT(cJSON_GetArraySize(ev), n);
    for (cJSON *it = ev->child; it; it = it->next) /* oldest first, none lost, none twice */
      CHECK_INT(cJSON_GetObjectItem(it, "t")->valueint, next_t++);
    cJSON_Delete(b);
    total += n;
    batches++;
  }
  CHECK_INT(total, 100);
  CHECK(batches > 5);
  CHECK_INT(lw_outbox_count(ob), 0);
  lw_outbox_free(ob);
}

static void full_outbox_drops_oldest_and_counts(void) {
  lw_outbox *ob;
  CHECK_INT(lw_outbox_create(300, &ob), LW_OK); /* room for about 9 records */
  push_n(ob, 0, 20);
  CHECK(lw_outbox_count(ob) < 20);
  CHECK_INT(lw_outbox_count(ob) + lw_outbox_dropped(ob), 20);
  char buf[1024];
  size_t len, n;
  lw_wire_take_batch(ob, "b", "k", 0, 1000, buf, sizeof buf, &len, &n);
  cJSON *b = cJSON_Parse(buf);
  cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "events"), (int)n - 1);
  CHECK_INT(cJSON_GetObjectItem(last, "t")->valueint, 19); /* the newest survived */
  cJSON_Delete(b);
  lw_outbox_free(ob);
}

static void record_too_big_for_any_batch_is_dropped_not_stuck(void) {
  lw_outbox *ob;
  CHECK_INT(lw_outbox_create(4096, &ob), LW_OK);
  char big[2000];
  memset(big, 'x', sizeof big);
  big[0] = '{';
  big[sizeof big - 1] = '}';
  CHECK_INT(lw_outbox_push(ob, big, sizeof big), LW_OK);
  push_n(ob, 0, 1);
  char buf[4096];
  size_t len, n;
  CHECK_INT(lw_wire_take_batch(ob, "b", "k", 0, 500, buf, sizeof buf, &len, &n), LW_ERR_FULL);
  CHECK_INT(lw_wire_take_batch(ob, "b", "k", 0, 500, buf, sizeof buf, &len, &n), LW_OK);
  CHECK_INT(n, 1);
  CHECK_INT(lw_outbox_dropped(ob), 1);
  lw_outbox_free(ob);
}

static void records_with_newlines_or_too_large_are_refused(void) {
  lw_outbox *ob;
  CHECK_INT(lw_outbox_create(64, &ob), LW_OK);
  CHECK_INT(lw_outbox_push(ob, "{\"a\":\n1}", 8), LW_ERR_INVALID);
  char big[100];
  memset(big, 'x', sizeof big);
  CHECK_INT(lw_outbox_push(ob, big, sizeof big), LW_ERR_INVALID);
  CHECK_INT(lw_outbox_count(ob), 0);
  lw_outbox_free(ob);
}

int main(void) {
  RUN(empty_outbox_gives_no_batch);
  RUN(batches_respect_the_byte_limit_and_parse);
  RUN(full_outbox_drops_oldest_and_counts);
  RUN(record_too_big_for_any_batch_is_dropped_not_stuck);
  RUN(records_with_newlines_or_too_large_are_refused);
  return check_failures ? 1 : 0;
}
