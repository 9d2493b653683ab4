/* bench_engine: native track+decide latency over simulator event streams.
 *
 *   bench_engine EVENTS.jsonl CONFIG.json [MODEL.lwm]
 *
 * EVENTS.jsonl is `loopwise-sim --events-out` output: one {"u","t","e","v","l"} object per
 * line. Every user gets an engine of their own (as every browser does); the user's events
 * are replayed in time order and each lw_engine_track_value call is timed. The outbox is
 * drained every 500 calls, untimed, as the widget's transport would. Prints name=value. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loopwise/engine.h"
#include "testutil.h"

typedef struct {
  int u;
  int64_t t;
  char e[LW_NAME_LEN + 1];
  char l[LW_NAME_LEN + 1];
  double v;
} event_t;

static int by_user_then_time(const void *a, const void *b) {
  const event_t *x = a, *y = b;
  if (x->u != y->u) return x->u < y->u ? -1 : 1;
  return x->t < y->t ? -1 : x->t > y->t;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_engine EVENTS.jsonl CONFIG.json [MODEL.lwm]\n");
    return 2;
  }
  size_t cfg_len, model_len = 0;
  char *cfg_text = tu_read_file(argv[2], &cfg_len);
  char *model = argc > 3 ? tu_read_file(argv[3], &model_len) : NULL;
  FILE *f = fopen(argv[1], "r");
  if (!cfg_text || !f || (argc > 3 && !model)) {
    fprintf(stderr, "bench_engine: cannot read inputs\n");
    return 1;
  }
  lw_config cfg;
  char err[LW_ERRMSG_MAX];
  if (lw_config_parse(cfg_text, cfg_len, &cfg, err, sizeof err) != LW_OK) {
    fprintf(stderr, "bench_engine: %s\n", err);
    return 1;
  }
  size_t n = 0, cap = 1 << 16;
  event_t *ev = malloc(cap * sizeof *ev);
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    cJSON *j = cJSON_Parse(line);
    if (!j) continue;
    if (n == cap) ev = realloc(ev, (cap *= 2) * sizeof *ev);
    event_t *e = &ev[n++];
    memset(e, 0, sizeof *e);
    e->u = cJSON_GetObjectItem(j, "u")->valueint;
    e->t = (int64_t)cJSON_GetObjectItem(j, "t")->valuedouble;
    snprintf(e->e, sizeof e->e, "%s", cJSON_GetObjectItem(j, "e")->valuestring);
    const cJSON *v = cJSON_GetObjectItem(j, "v"), *l = cJSON_GetObjectItem(j, "l");
    e->v = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (cJSON_IsString(l)) snprintf(e->l, sizeof e->l, "%s", l->valuestring);
    cJSON_Delete(j);
  }
  fclose(f);
  qsort(ev, n, sizeof *ev, by_user_then_time);

  double *ns = malloc(n * sizeof *ns), *dns = malloc(n * sizeof *dns);
  size_t decisions = 0, calls = 0;
  static char batch[65536];
  lw_engine *e = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!e || ev[i].u != ev[i - 1].u) {
      lw_engine_free(e);
      lw_engine_create(&cfg, (uint64_t)ev[i].u, 99, 0, &e, err, sizeof err);
      if (model) lw_engine_set_model(e, (const uint8_t *)model, model_len, err, sizeof err);
    }
    lw_decision d;
    double t0 = now_ns();
    lw_status st = lw_engine_track_value(e, ev[i].e, ev[i].v, ev[i].l[0] ? ev[i].l : NULL, ev[i].t, 0, &d,
                                         err, sizeof err);
    ns[calls++] = now_ns() - t0;
    if (st == LW_OK && d.decided) dns[decisions++] = ns[calls - 1];
    if (d.prompt) lw_engine_close(e, d.id, err, sizeof err);
    if (calls % 500 == 0) {
      size_t len, k;
      while (tu_take_batch(e, "bench", ev[i].t, 60000, batch, sizeof batch, &len, &k) == LW_OK && k) {}
    }
  }
  lw_engine_free(e);
  qsort(ns, calls, sizeof *ns, cmp_double);
  printf("decide_calls_native=%zu\n", calls);
  printf("decide_decisions_native=%zu\n", decisions);
  printf("decide_p50_us_native=%.3f\n", ns[calls / 2] / 1000.0);
  printf("decide_p99_us_native=%.3f\n", ns[calls * 99 / 100] / 1000.0);
  qsort(dns, decisions, sizeof *dns, cmp_double);
  if (decisions) printf("decide_only_p99_us_native=%.3f\n", dns[decisions * 99 / 100] / 1000.0);
  free(ns);
  free(dns);
  free(ev);
  free(cfg_text);
  free(model);
  return 0;
}
