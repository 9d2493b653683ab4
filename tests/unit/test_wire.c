/* test_wire.c: what the runtime writes is what the server accepts. An engine runs the
 * default program for a simulated month with every kind of record it can log (decisions in
 * each mode, every outcome, the referee side, a model's x), and each batch it takes goes
 * through the ingest server's own validator, lw_batch_parse. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "loopwise/batch.h"
#include "loopwise/wire.h"
#include "testutil.h"

static void every_batch_the_engine_writes_passes_the_validator(void) {
  lw_config cfg = tu_default_config();
  cfg.holdout = 0;
  lw_engine *e = NULL;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_create(&cfg, 1, 2, 0, &e, err, sizeof err), LW_OK);
  size_t model_len = 0;
  char *model = tu_read_file(tu_path("models/default.lwm"), &model_len);
  CHECK(model != NULL);
  CHECK_INT(lw_engine_set_model(e, (const uint8_t *)model, model_len, err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_set_attribute(e, "plan", "free", err, sizeof err), LW_OK);

  static const char *const outcomes[] = {"impression", "share", "copy", "dismiss", "close"};
  int kinds_seen[LW_KIND_COUNT] = {0}, decided = 0, prompts = 0;
  size_t stored = 0, taken = 0;
  char batch[60001];
  for (int day = 0; day < 60; day++) {
    int64_t t = T0 + day * DAY;
    for (int i = 0; i < 6; i++) {
      lw_decision d;
      const char *ev = cfg.events[(day + i) % cfg.n_events];
      if (lw_engine_track(e, ev, t + i * 60000, 60, &d, err, sizeof err) != LW_OK) continue;
      if (!d.decided) continue;
      decided++;
      if (d.prompt) {
        lw_engine_outcome_named(e, d.id, "impression", t + i * 60000 + 1, err, sizeof err);
        lw_engine_outcome_named(e, d.id, outcomes[1 + prompts++ % 4], t + i * 60000 + 2, err, sizeof err);
      }
    }
    if (day == 3) CHECK_INT(lw_engine_referee_landing(e, "ZZZZ2222", t, err, sizeof err), LW_OK);
    /* From day 20 the account needs approval (seats 50-plus): the first held decision is
     * requested and answered; later ones stay held. */
    if (day == 20) {
      lw_engine_set_consent(e, 1, t);
      CHECK_INT(lw_engine_set_attribute(e, "seats", "50-plus", err, sizeof err), LW_OK);
    }
    if (day >= 20 && !kinds_seen[LW_KIND_APPROVAL_ANSWER] && lw_engine_last_decision(e)->why == LW_WHY_APPROVAL) {
      int sent = 0;
      lw_decision out;
      const char *id = lw_engine_last_decision(e)->id;
      char held[LW_DECISION_ID_LEN + 1];
      memcpy(held, id, sizeof held);
      CHECK_INT(lw_engine_approval_request(e, held, "0123456789abcdef0123456789abcdef", t + 6 * 60000, &sent, err,
                                           sizeof err), LW_OK);
      CHECK_INT(sent, 1);
      lw_engine_approval_answer(e, held, "declined", t + 6 * 60000 + 1, 60, &out, err, sizeof err);
      CHECK_INT(lw_engine_set_attribute(e, "seats", "1", err, sizeof err), LW_OK); /* prompts again */
    }
    if (day == 4) CHECK_INT(lw_engine_referee_conversion(e, t, err, sizeof err), LW_OK);
    size_t len, n;
    while (tu_take_batch(e, "demo-site-key", t + DAY - 1, 60000, batch, sizeof batch, &len, &n) == LW_OK && n) {
      lw_batch *b = NULL;
      lw_batch_error be;
      lw_status st = lw_batch_parse(batch, len, NULL, t + DAY - 1, &b, &be);
      if (st != LW_OK) fprintf(stderr, "refused at %s: %s\n", be.field, be.message);
      CHECK_INT(st, LW_OK);
      if (b) {
        CHECK_INT(b->n_events, n);
        for (size_t k = 0; k < b->n_events; k++) kinds_seen[b->events[k].kind]++;
        stored += b->n_events;
      }
      taken += n;
      lw_batch_free(b);
    }
  }
  CHECK(decided > 10);
  CHECK_INT(stored, taken);
  for (int k = 0; k < LW_KIND_COUNT; k++) {
    if (!kinds_seen[k]) fprintf(stderr, "no %s record written\n", lw_kind_name((lw_kind)k));
    CHECK(kinds_seen[k] > 0);
  }
  free(model);
  lw_engine_free(e);
}

int main(void) {
  RUN(every_batch_the_engine_writes_passes_the_validator);
  return check_failures ? 1 : 0;
}
