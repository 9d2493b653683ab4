/* Engine behaviour over simulated days: recording, milestones, each constraint,
 * exact probabilities, and logging of every decision. Time is passed in. */
#include <cJSON.h>
#include <stdlib.h>

#include "../../src/core/engine_internal.h"
#include "check.h"
#include "testutil.h"

/* One variant, so a decision that is not suppressed is always "shown" with p = 1. */
#define ONE_VARIANT                                                                               \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\",\"b\"],"  \
  "\"milestones\":[{\"event\":\"a\",\"after\":2,\"every\":3}],"                                   \
  "\"variants\":[{\"id\":\"v1\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\","     \
  "\"referee_reward\":\"E\",\"cost\":5}],"                                                        \
  "\"cooldown\":{\"days\":7,\"growth\":2,\"max_days\":20},\"quiet_hours\":{\"start\":22,\"end\":7}"
#define CAPS ",\"caps\":{\"max_prompts\":2,\"window_days\":30,\"min_gap_hours\":24}}"

static lw_engine *make(const char *json) {
  lw_config cfg = tu_config(json);
  lw_engine *e = NULL;
  char err[LW_ERRMSG_MAX];
  if (lw_engine_create(&cfg, 42, 7, 0, &e, err, sizeof err) != LW_OK) exit(2);
  return e;
}

/* Track `event` until the next milestone fires; returns that decision. */
static lw_decision next_decision(lw_engine *e, const char *event, int64_t t, int tz) {
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < 100; i++) {
    if (lw_engine_track(e, event, t, tz, &d, err, sizeof err) != LW_OK) break;
    if (d.decided) return d;
  }
  memset(&d, 0, sizeof d);
  return d;
}

/* kind: an outcome's wire name, or "close" */
static void outcome(lw_engine *e, const lw_decision *d, const char *kind, int64_t t) {
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_outcome_named(e, d->id, kind, t, err, sizeof err), LW_OK);
}

static void recording_counts_events_with_first_and_last_times(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < 3; i++) CHECK_INT(lw_engine_track(e, "b", T0 + i * HOUR, 0, &d, err, sizeof err), LW_OK);
  CHECK_INT(e->beh.ev[1].count, 3);
  CHECK_INT(e->beh.ev[1].first_ms, T0);
  CHECK_INT(e->beh.ev[1].last_ms, T0 + 2 * HOUR);
  CHECK_INT(e->beh.ev[0].count, 0);
  CHECK_INT(e->beh.first_seen_ms, T0);
  CHECK_INT(d.decided, 0); /* "b" has no milestone */
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  lw_engine_free(e);
}

static void unknown_event_is_refused_and_changes_nothing(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_track(e, "nope", T0, 0, &d, err, sizeof err), LW_ERR_NOT_FOUND);
  CHECK_STR(err, "unknown event 'nope': list it in the config's events");
  CHECK_INT(e->beh.first_seen_ms, 0);
  lw_engine_free(e);
}

static void milestone_fires_at_after_then_every(void) {
  lw_engine *e = make(ONE_VARIANT ",\"caps\":{\"max_prompts\":100,\"min_gap_hours\":0}}");
  int fired[12] = {0};
  for (int i = 1; i <= 11; i++) {
    lw_decision d;
    char err[LW_ERRMSG_MAX];
    lw_engine_track(e, "a", T0 + i * DAY, 0, &d, err, sizeof err);
    fired[i] = d.decided;
    if (d.decided) outcome(e, &d, LW_OUTCOME_CLOSE, T0 + i * DAY);
  }
  for (int i = 1; i <= 11; i++) CHECK_INT(fired[i], i == 2 || i == 5 || i == 8 || i == 11);
  lw_engine_free(e);
}

static void shown_decision_has_reason_id_and_probability(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d = next_decision(e, "a", T0, 0);
  CHECK_INT(d.decided, 1);
  CHECK_INT(d.prompt, 1);
  CHECK_STR(d.action, "v1");
  CHECK_INT(d.variant, 0);
  CHECK_INT(d.p_ppm, 1000000);
  CHECK_INT(d.why, LW_WHY_SHOWN);
  CHECK_STR(d.reason, "shown: milestone a\xC3\x97" "2");
  CHECK_INT(strlen(d.id), 16);
  char json[512];
  lw_decision_to_json(&d, json, sizeof json);
  CHECK_CONTAINS(json, "\"prompt\":true,\"variant\":0,\"code\":\"shown\",\"action\":\"v1\",\"p\":1,\"mode\":\"rules\"");
  lw_engine_free(e);
}

static void min_gap_then_cap_over_rolling_window(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d = next_decision(e, "a", T0, 0); /* count 2: shown */
  outcome(e, &d, lw_kind_name(LW_KIND_SHARE), T0 + 1000);
  d = next_decision(e, "a", T0 + HOUR, 0); /* count 5 */
  CHECK_INT(d.prompt, 0);
  CHECK_STR(d.action, "none");
  CHECK_INT(d.p_ppm, 1000000);
  CHECK_STR(d.reason, "suppressed: min gap 23h left");
  d = next_decision(e, "a", T0 + 2 * DAY, 0); /* count 8: second prompt */
  CHECK_INT(d.prompt, 1);
  outcome(e, &d, LW_OUTCOME_CLOSE, T0 + 2 * DAY);
  d = next_decision(e, "a", T0 + 10 * DAY, 0); /* two in the last 30 days */
  CHECK_STR(d.reason, "suppressed: frequency cap 2/30d");
  CHECK_INT(d.why, LW_WHY_CAP);
  d = next_decision(e, "a", T0 + 31 * DAY, 0); /* the first fell out of the window */
  CHECK_INT(d.prompt, 1);
  lw_engine_free(e);
}

static void cooldown_grows_after_second_dismissal(void) {
  lw_engine *e = make(ONE_VARIANT ",\"caps\":{\"max_prompts\":100,\"min_gap_hours\":0}}");
  lw_decision d = next_decision(e, "a", T0, 0);
  outcome(e, &d, lw_kind_name(LW_KIND_DISMISS), T0);
  d = next_decision(e, "a", T0 + 2 * DAY, 0);
  CHECK_STR(d.reason, "suppressed: cooldown 5d left");
  d = next_decision(e, "a", T0 + 7 * DAY, 0); /* first cooldown: 7 days */
  CHECK_INT(d.prompt, 1);
  outcome(e, &d, lw_kind_name(LW_KIND_DISMISS), T0 + 7 * DAY);
  d = next_decision(e, "a", T0 + 17 * DAY, 0); /* second: 14 days */
  CHECK_STR(d.reason, "suppressed: cooldown 4d left");
  d = next_decision(e, "a", T0 + 21 * DAY, 0);
  CHECK_INT(d.prompt, 1);
  outcome(e, &d, lw_kind_name(LW_KIND_DISMISS), T0 + 21 * DAY);
  d = next_decision(e, "a", T0 + 21 * DAY + 19 * DAY + 23 * HOUR, 0); /* third: 28 capped at 20 */
  CHECK_STR(d.reason, "suppressed: cooldown 1h left");
  d = next_decision(e, "a", T0 + 41 * DAY, 0);
  CHECK_INT(d.prompt, 1);
  lw_engine_free(e);
}

static void quiet_hours_use_local_time(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  /* T0 is 12:00 UTC: 22:30 in UTC+10:30 is quiet, 12:00 UTC is not. */
  lw_decision d = next_decision(e, "a", T0, 630);
  CHECK_STR(d.reason, "suppressed: quiet hours");
  CHECK_INT(d.why, LW_WHY_QUIET_HOURS);
  d = next_decision(e, "a", T0 + 1000, 0);
  CHECK_INT(d.prompt, 1);
  outcome(e, &d, LW_OUTCOME_CLOSE, T0 + 1000);
  /* 06:59 local (UTC-5 at 11:59 UTC) is still quiet; 07:00 is not. */
  d = next_decision(e, "a", T0 + 3 * DAY - 60000, -300);
  CHECK_STR(d.reason, "suppressed: quiet hours");
  d = next_decision(e, "a", T0 + 3 * DAY, -300);
  CHECK_INT(d.prompt, 1);
  lw_engine_free(e);
}

static void consent_refused_or_required_blocks_prompts(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_engine_set_consent(e, 0, T0);
  lw_decision d = next_decision(e, "a", T0, 0);
  CHECK_STR(d.reason, "suppressed: no consent");
  lw_engine_set_consent(e, 1, T0);
  d = next_decision(e, "a", T0 + 1000, 0);
  CHECK_INT(d.prompt, 1);
  lw_engine_free(e);

  e = make(ONE_VARIANT ",\"consent\":{\"required\":true,\"default\":false}" CAPS);
  d = next_decision(e, "a", T0, 0);
  CHECK_INT(d.why, LW_WHY_CONSENT);
  lw_engine_free(e);
}

/* Issue 12: without consent, after a refusal and under a respected privacy signal the engine
 * records nothing, deletes what it had queued and snapshots carry no identity. */
static int snapshot_has(const lw_engine *e, const uint8_t *bytes, size_t n) {
  static uint8_t buf[1 << 16];
  size_t len = lw_engine_snapshot(e, buf, sizeof buf);
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(buf + i, bytes, n) == 0) return 1;
  return 0;
}

static void no_record_and_no_stored_identity_without_consent(void) {
  lw_engine *e = make(ONE_VARIANT ",\"consent\":{\"required\":true,\"default\":true}" CAPS);
  char err[LW_ERRMSG_MAX];
  const uint8_t *install = e->guard.install;
  next_decision(e, "a", T0, 0);
  CHECK_INT(lw_engine_referee_landing(e, "K7QX2M9PLA", T0, err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_referee_conversion(e, T0, err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_collects(e), 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  CHECK_INT(snapshot_has(e, install, 16), 0);
  CHECK_INT(snapshot_has(e, (const uint8_t *)e->guard.code, strlen(e->guard.code)), 0);
  /* A snapshot without identity restored into an engine keeps that engine's own. */
  uint8_t snap[1 << 16];
  size_t n = lw_engine_snapshot(e, snap, sizeof snap);
  char key[LW_INSTALL_LEN + 1];
  lw_strlcpy(key, lw_engine_install_key(e), sizeof key);
  CHECK_INT(lw_engine_restore(e, snap, n, T0, err, sizeof err), LW_OK);
  CHECK_STR(lw_engine_install_key(e), key);
  CHECK_INT((int)strlen(lw_engine_referral_code(e)), LW_CODE_GEN_LEN);
  /* Consent given: collection starts, with nothing from before. */
  lw_engine_set_consent(e, 1, T0);
  CHECK_INT(lw_engine_collects(e), 1);
  next_decision(e, "a", T0 + 1000, 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 1);
  CHECK_INT(snapshot_has(e, install, 16), 1);
  lw_engine_free(e);

  /* A refusal deletes what was queued; the privacy signal likewise, unless the user said yes. */
  e = make(ONE_VARIANT CAPS);
  next_decision(e, "a", T0, 0);
  CHECK(lw_outbox_count(lw_engine_outbox(e)) > 0);
  lw_engine_set_consent(e, 0, T0);
  CHECK_INT(lw_engine_collecting(e), 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  lw_engine_free(e);
  e = make(ONE_VARIANT CAPS);
  lw_engine_set_privacy(e, 1, 0);
  next_decision(e, "a", T0, 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  lw_engine_set_consent(e, 1, T0);
  next_decision(e, "a", T0 + 1000, 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 1);
  lw_engine_free(e);
}

/* The caller's random bytes are the identity, whatever the seed; the seed's draws (decisions)
 * are the same with or without them. */
static void identity_comes_from_the_callers_bytes_not_the_seed(void) {
  lw_engine *a = make(ONE_VARIANT CAPS), *b = make(ONE_VARIANT CAPS);
  uint8_t id[LW_IDENTITY_BYTES];
  for (int i = 0; i < LW_IDENTITY_BYTES; i++) id[i] = (uint8_t)(i * 37 + 1);
  lw_engine_set_identity(b, id);
  CHECK_STR(lw_engine_install_key(b), "01264b7095badf04294e7398bde2072c");
  CHECK_STR(lw_engine_referral_code(b), "TY5AFLRW38");
  CHECK(strcmp(lw_engine_install_key(a), lw_engine_install_key(b)) != 0);
  lw_decision da = next_decision(a, "a", T0, 0), db = next_decision(b, "a", T0, 0);
  CHECK_STR(da.id, db.id);
  /* A lost guard section gets the caller's identity again, not a draw. */
  char err[LW_ERRMSG_MAX];
  lw_engine_restore(b, (const uint8_t *)"x", 1, T0, err, sizeof err);
  CHECK_STR(lw_engine_install_key(b), "01264b7095badf04294e7398bde2072c");
  /* Reset (forget): a fresh state with the identity set last, nothing queued or remembered. */
  next_decision(b, "a", T0, 0);
  lw_engine_set_consent(b, 0, T0);
  id[0] = 0xff;
  lw_engine_set_identity(b, id);
  lw_engine_reset(b);
  CHECK_STR(lw_engine_install_key(b), "ff264b7095badf04294e7398bde2072c");
  CHECK_INT(lw_outbox_count(lw_engine_outbox(b)), 0);
  CHECK_INT(lw_engine_last_decision(b)->decided, 0);
  CHECK_INT(lw_engine_consent_state(b), 0);
  CHECK_INT((int)b->beh.ev[0].count, 0);
  lw_engine_free(a);
  lw_engine_free(b);
}

static void open_prompt_blocks_until_closed_or_stale(void) {
  lw_engine *e = make(ONE_VARIANT ",\"caps\":{\"max_prompts\":100,\"min_gap_hours\":0}}");
  lw_decision first = next_decision(e, "a", T0, 0);
  outcome(e, &first, lw_kind_name(LW_KIND_IMPRESSION), T0); /* an impression does not close it */
  lw_decision d = next_decision(e, "a", T0 + 60000, 0);
  CHECK_STR(d.reason, "suppressed: a prompt is already open");
  d = next_decision(e, "a", T0 + 31 * 60000, 0); /* left open over 30 minutes: stale */
  CHECK_INT(d.prompt, 1);
  outcome(e, &d, lw_kind_name(LW_KIND_COPY), T0 + 32 * 60000);
  d = next_decision(e, "a", T0 + 33 * 60000, 0);
  CHECK_INT(d.prompt, 1);
  lw_engine_free(e);
}

static void every_decision_and_outcome_is_logged(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d = next_decision(e, "a", T0, 0);
  outcome(e, &d, lw_kind_name(LW_KIND_IMPRESSION), T0 + 1);
  outcome(e, &d, lw_kind_name(LW_KIND_SHARE), T0 + 2);
  outcome(e, &d, LW_OUTCOME_CLOSE, T0 + 3); /* local only */
  lw_decision s = next_decision(e, "a", T0 + HOUR, 0); /* suppressed: still logged */
  CHECK_INT(s.prompt, 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 4);
  char buf[4096];
  size_t len, n;
  CHECK_INT(tu_take_batch(e, "demo-site-key", T0 + 2 * HOUR, 60000, buf, sizeof buf, &len, &n), LW_OK);
  CHECK_INT(n, 4);
  cJSON *batch = cJSON_Parse(buf);
  CHECK(batch != NULL);
  cJSON *events = cJSON_GetObjectItem(batch, "events");
  CHECK_INT(cJSON_GetArraySize(events), 4);
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 0), "kind")->valuestring, "decision");
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 2), "kind")->valuestring, "share");
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 2), "code")->valuestring, lw_engine_referral_code(e));
  CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 2), "decision")->valuestring, d.id);
  cJSON *sup = cJSON_GetArrayItem(events, 3);
  CHECK_STR(cJSON_GetObjectItem(sup, "action")->valuestring, "none");
  CHECK(cJSON_GetObjectItem(sup, "p")->valuedouble == 1.0);
  CHECK_STR(cJSON_GetObjectItem(sup, "reason")->valuestring, "suppressed: min gap 23h left");
  CHECK_STR(cJSON_GetObjectItem(sup, "install")->valuestring, lw_engine_install_key(e));
  cJSON_Delete(batch);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  lw_engine_free(e);
}

#define THREE_ACTIONS                                                                             \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\"],"        \
  "\"milestones\":[{\"event\":\"a\",\"after\":1,\"every\":1}],\"variants\":["                     \
  "{\"id\":\"v1\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":5,\"weight\":3}," \
  "{\"id\":\"v2\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":9,\"weight\":1}]," \
  "\"not_now_weight\":1,\"caps\":{\"max_prompts\":1000,\"window_days\":1,\"min_gap_hours\":0},"   \
  "\"cooldown\":{\"days\":0,\"max_days\":0}}"

static void probabilities_are_exact_and_match_frequencies(void) {
  lw_engine *e = make(THREE_ACTIONS);
  const int n = 40000;
  int seen[3] = {0, 0, 0};
  for (int i = 0; i < n; i++) {
    lw_decision d = next_decision(e, "a", T0 + i * 1000LL, 0);
    int k = d.variant >= 0 ? d.variant : 2;
    uint32_t expected = k == 0 ? 600000 : 200000;
    if (d.p_ppm != expected) CHECK_INT(d.p_ppm, expected);
    seen[k]++;
    if (d.prompt) outcome(e, &d, LW_OUTCOME_CLOSE, T0 + i * 1000LL);
    if (i % 1000 == 999) { /* keep the outbox small; the records are not under test here */
      char buf[65536];
      size_t len, m;
      while (tu_take_batch(e, "k", T0, 60000, buf, sizeof buf, &len, &m) == LW_OK && m) {}
    }
  }
  /* Binomial sd for p=0.6 over 40000 draws is ~98; allow 5 sd. */
  CHECK(abs(seen[0] - 24000) < 490);
  CHECK(abs(seen[1] - 8000) < 400);
  CHECK(abs(seen[2] - 8000) < 400);
  lw_engine_free(e);
}

static void same_seed_same_decisions(void) {
  lw_engine *a = make(THREE_ACTIONS), *b = make(THREE_ACTIONS);
  for (int i = 0; i < 200; i++) {
    lw_decision da = next_decision(a, "a", T0 + i * 1000LL, 0);
    lw_decision db = next_decision(b, "a", T0 + i * 1000LL, 0);
    CHECK_STR(da.id, db.id);
    CHECK_STR(da.action, db.action);
    if (da.prompt) outcome(a, &da, LW_OUTCOME_CLOSE, T0 + i * 1000LL);
    if (db.prompt) outcome(b, &db, LW_OUTCOME_CLOSE, T0 + i * 1000LL);
  }
  lw_engine_free(a);
  lw_engine_free(b);
}

static void outcome_rejects_bad_decision_ids(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_outcome(e, "not-hex", LW_KIND_SHARE, T0, err, sizeof err), LW_ERR_INVALID);
  CHECK_STR(err, "decision id must be 16 lowercase hex characters");
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  lw_engine_free(e);
}

int main(void) {
  RUN(recording_counts_events_with_first_and_last_times);
  RUN(unknown_event_is_refused_and_changes_nothing);
  RUN(milestone_fires_at_after_then_every);
  RUN(shown_decision_has_reason_id_and_probability);
  RUN(min_gap_then_cap_over_rolling_window);
  RUN(cooldown_grows_after_second_dismissal);
  RUN(quiet_hours_use_local_time);
  RUN(consent_refused_or_required_blocks_prompts);
  RUN(no_record_and_no_stored_identity_without_consent);
  RUN(identity_comes_from_the_callers_bytes_not_the_seed);
  RUN(open_prompt_blocks_until_closed_or_stale);
  RUN(every_decision_and_outcome_is_logged);
  RUN(probabilities_are_exact_and_match_frequencies);
  RUN(same_seed_same_decisions);
  RUN(outcome_rejects_bad_decision_ids);
  return check_failures ? 1 : 0;
}
