/* test_oom.c: every create, load and parse function under allocation failure.
 *
 * The hook is failalloc.h's: our code's allocations through -Wl,--wrap, cJSON's through
 * lw_json's hooks (whose malloc calls are wrapped), one counter that fails the Nth. Each function runs with N = 1, 2, ... until it no longer meets a failure:
 * every failing run must return a clean error (LW_ERR_NOMEM, or 0 bytes written) and free
 * what it took (ASan's leak check runs at exit), and the last run must succeed. The way
 * SQLite's do_faultsim_test -faults oom* does it. */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "loopwise/engine.h"
#include "loopwise/json.h"
#include "loopwise/model.h"
#include "failalloc.h"
#include "testutil.h"

/* Run body(ctx) with the 1st, 2nd, ... allocation failing until a run meets no failure.
 * body returns LW_OK or an error; a run that met a failure must have returned an error. */
static int fault_loop(const char *name, lw_status (*body)(void *ctx), void *ctx) {
  for (long n = 1; n < 10000; n++) {
    tu_fail_nth_allocation(n);
    lw_status st = body(ctx);
    int failed = tu_allocation_failed();
    if (!failed) {
      if (st != LW_OK) fprintf(stderr, "%s: %s without a failure\n", name, lw_status_name(st));
      CHECK_INT(st, LW_OK);
      return (int)n - 1;
    }
    if (st == LW_OK) fprintf(stderr, "%s: allocation %ld failed but the call said ok\n", name, n);
    CHECK(st != LW_OK);
  }
  CHECK(!"fault loop never finished");
  return -1;
}

typedef struct {
  const char *json;
  size_t json_len;
  lw_config cfg;
  const uint8_t *bytes;
  size_t len;
} ctx_t;

static lw_status config_parse(void *p) {
  ctx_t *c = p;
  char err[LW_ERRMSG_MAX];
  lw_config cfg;
  lw_status st = lw_config_parse(c->json, c->json_len, &cfg, err, sizeof err);
  /* cJSON's own failures too: lw_json_parse tells them from bad JSON */
  if (st != LW_OK && st != LW_ERR_NOMEM) fprintf(stderr, "lw_config_parse: %s\n", err);
  CHECK(st == LW_OK || st == LW_ERR_NOMEM);
  return st;
}

static lw_status config_write(void *p) {
  ctx_t *c = p;
  uint8_t buf[8192];
  return lw_config_write(&c->cfg, buf, sizeof buf) ? LW_OK : LW_ERR_NOMEM;
}

static lw_status engine_create_and_run(void *p) {
  ctx_t *c = p;
  char err[LW_ERRMSG_MAX];
  lw_engine *e = NULL;
  lw_status st = lw_engine_create(&c->cfg, 1, 2, 0, &e, err, sizeof err);
  if (st != LW_OK) return st;
  if ((st = lw_engine_set_model(e, c->bytes, c->len, err, sizeof err)) == LW_OK) {
    lw_decision d;
    for (int i = 0; i < 20 && st == LW_OK; i++) st = lw_engine_track(e, c->cfg.events[0], T0 + i * DAY, 0, &d, err, sizeof err);
  }
  lw_engine_free(e);
  return st;
}

static lw_status model_load_and_write(void *p) {
  ctx_t *c = p;
  char err[LW_ERRMSG_MAX];
  lw_model *m = NULL;
  lw_status st = lw_model_load(c->bytes, c->len, &m, err, sizeof err);
  if (st != LW_OK) return st;
  uint8_t *out = NULL;
  size_t n = 0;
  st = lw_model_write(m, &out, &n, err, sizeof err);
  free(out);
  lw_model_free(m);
  return st;
}

static void every_allocation_failure_is_clean(void) {
  tu_failalloc_begin();
  lw_json_install_hooks(); /* over failalloc's: json.c's own malloc calls are the wrapped ones */
  ctx_t c;
  memset(&c, 0, sizeof c);
  char *json = tu_read_file(tu_path("models/referral.json"), &c.json_len);
  size_t model_len;
  char *model = tu_read_file(tu_path("models/default.lwm"), &model_len);
  CHECK(json && model);
  c.json = json;
  c.cfg = tu_default_config();
  c.bytes = (const uint8_t *)model;
  c.len = model_len;
  CHECK(fault_loop("lw_config_parse", config_parse, &c) > 10); /* cJSON allocates per node */
  CHECK(fault_loop("lw_config_write", config_write, &c) >= 1);
  CHECK(fault_loop("lw_engine_create + set_model + track", engine_create_and_run, &c) >= 3);
  CHECK(fault_loop("lw_model_load + lw_model_write", model_load_and_write, &c) >= 3);
  free(json);
  free(model);
}

int main(void) {
  RUN(every_allocation_failure_is_clean);
  return check_failures ? 1 : 0;
}
