/* bench_store.c: how fast the store alone takes batches, without HTTP: the ceiling the ingest
 * server's single writer puts on its throughput. Run by tests/bench/ingest.sh:
 *   bench_store DB_PATH [GROUPS [GROUP_SIZE]]
 * writes GROUPS group commits of GROUP_SIZE batches shaped like
 * tests/cases/ingest/valid-batch.json (fresh batch_ids), each durable (WAL, synchronous=FULL),
 * and prints store_batches_per_s=N and store_us_per_batch=N; then reads every decision back once
 * through the learning tools' read API with its referee outcomes joined (a 45-day window) and
 * prints store_read_decisions_per_s=N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loopwise/batch.h"
#include "loopwise/store.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_store DB_PATH [GROUPS [GROUP_SIZE]]\n");
    return 2;
  }
  int groups = argc > 2 ? atoi(argv[2]) : 1000;
  int size = argc > 3 ? atoi(argv[3]) : 64;
  char path[512], text[8192], errmsg[LW_ERRMSG_MAX];
  snprintf(path, sizeof path, "%s/tests/cases/ingest/valid-batch.json", LW_SOURCE_DIR);
  FILE *f = fopen(path, "rb");
  if (!f) return 1;
  size_t n = fread(text, 1, sizeof text, f);
  fclose(f);

  lw_store *store;
  if (lw_store_open_sqlite(argv[1], &store, errmsg, sizeof errmsg) != LW_OK) {
    fprintf(stderr, "bench_store: %s\n", errmsg);
    return 1;
  }
  /* The fairness segments the server keeps with models/referral.json (store schema 12). */
  static const lw_fairness_spec spec = {"plan", 4, {"free", "pro", "team", "enterprise"}};
  if (lw_store_set_fairness(store, &spec, errmsg, sizeof errmsg) != LW_OK) {
    fprintf(stderr, "bench_store: %s\n", errmsg);
    return 1;
  }
  lw_batch **batches = calloc((size_t)size, sizeof *batches);
  lw_store_item *items = calloc((size_t)size, sizeof *items);
  lw_store_item **ptrs = calloc((size_t)size, sizeof *ptrs);
  lw_batch_error err;
  for (int i = 0; i < size; i++) {
    if (lw_batch_parse(text, n, NULL, 1764100000000LL, &batches[i], &err) != LW_OK) return 1;
    ptrs[i] = &items[i];
  }
  long id = 0;
  double t0 = now_s();
  for (int g = 0; g < groups; g++) {
    for (int i = 0; i < size; i++) {
      snprintf(batches[i]->batch_id, sizeof batches[i]->batch_id, "bench-%ld", id++);
      lw_store_item it = {"default", batches[i], 1764100000000LL, 0, 0};
      items[i] = it;
    }
    if (lw_store_write(store, ptrs, (size_t)size, errmsg, sizeof errmsg) != LW_OK) {
      fprintf(stderr, "bench_store: %s\n", errmsg);
      return 1;
    }
  }
  double secs = now_s() - t0;
  printf("store_batches_per_s=%.0f\n", (double)id / secs);
  printf("store_us_per_batch=%.1f\n", secs * 1e6 / (double)id);
  lw_store_range range = {"default", 0, 0};
  lw_store_cursor *cur;
  lw_store_decision *d = malloc(sizeof *d);
  double r0 = now_s();
  long read = 0;
  if (!d || lw_store_decisions_within(store, &range, 45, &cur, errmsg, sizeof errmsg) != LW_OK) {
    fprintf(stderr, "bench_store: %s\n", errmsg);
    return 1;
  }
  while (lw_store_next(cur, d, errmsg, sizeof errmsg) == 1) read++;
  lw_store_cursor_free(cur);
  free(d);
  printf("store_read_decisions_per_s=%.0f\n", (double)read / (now_s() - r0));
  for (int i = 0; i < size; i++) lw_batch_free(batches[i]);
  free(batches);
  free(items);
  free(ptrs);
  lw_store_free(store);
  return 0;
}
