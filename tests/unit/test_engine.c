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

static cJSON *take_events(lw_engine *e, cJSON **batch) {
  static char buf[8192];
  size_t len, n;
  CHECK_INT(tu_take_batch(e, "demo-site-key", T0 + 2 * HOUR, 60000, buf, sizeof buf, &len, &n), LW_OK);
  *batch = cJSON_Parse(buf);
  CHECK(*batch != NULL);
  return cJSON_GetObjectItem(*batch, "events");
}

static const char *field(cJSON *events, int i, const char *name) {
  cJSON *f = cJSON_GetObjectItem(cJSON_GetArrayItem(events, i), name);
  return cJSON_IsString(f) ? f->valuestring : "(absent)";
}

static void share_carries_the_callers_token_and_its_channel_in_a_v2_batch(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d = next_decision(e, "a", T0, 0);
  CHECK_INT(d.prompt, 1);
  CHECK_STR(lw_engine_last_token(e), "");
  uint8_t r[LW_TOKEN_BYTES];
  for (int i = 0; i < LW_TOKEN_BYTES; i++) r[i] = (uint8_t)(0xf0 + i);
  char token[LW_TOKEN_LEN + 1], err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_share(e, d.id, "copy", r, T0 + 1, token, err, sizeof err), LW_OK);
  CHECK_STR(token, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  CHECK_STR(lw_engine_last_token(e), token);
  r[0] = 0x01;
  CHECK_INT(lw_engine_share(e, d.id, "native", r, T0 + 2, NULL, err, sizeof err), LW_OK);
  CHECK_STR(lw_engine_last_token(e), "01f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  CHECK_INT(lw_engine_share(e, d.id, "email", r, T0 + 3, token, err, sizeof err), LW_OK);
  /* an unknown channel is refused, naming the field, and nothing is logged */
  CHECK_INT(lw_engine_share(e, d.id, "pigeon", r, T0 + 4, token, err, sizeof err), LW_ERR_INVALID);
  CHECK_CONTAINS(err, "channel");
  CHECK_INT(lw_engine_share(e, "nothex", "native", r, T0 + 4, token, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 4);
  cJSON *batch, *ev = take_events(e, &batch);
  CHECK_INT(cJSON_GetObjectItem(batch, "v")->valueint, LW_WIRE_VERSION); /* the newest; token and channel since 2 */
  CHECK_STR(field(ev, 1, "kind"), "copy");
  CHECK_STR(field(ev, 1, "channel"), "copy");
  CHECK_STR(field(ev, 1, "token"), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  CHECK_STR(field(ev, 1, "code"), lw_engine_referral_code(e));
  CHECK_STR(field(ev, 2, "kind"), "share");
  CHECK_STR(field(ev, 2, "channel"), "native");
  CHECK_STR(field(ev, 3, "kind"), "share");
  CHECK_STR(field(ev, 3, "channel"), "email");
  cJSON_Delete(batch);
  lw_engine_free(e);
}

static void share_reported_without_bytes_still_gets_a_token_and_the_default_channel(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  lw_decision d = next_decision(e, "a", T0, 0);
  outcome(e, &d, lw_kind_name(LW_KIND_SHARE), T0 + 1);
  char first[LW_TOKEN_LEN + 1];
  lw_strlcpy(first, lw_engine_last_token(e), sizeof first);
  CHECK_INT((int)strlen(first), LW_TOKEN_LEN);
  outcome(e, &d, lw_kind_name(LW_KIND_COPY), T0 + 2);
  CHECK(strcmp(first, lw_engine_last_token(e)) != 0); /* a fresh token for every share */
  cJSON *batch, *ev = take_events(e, &batch);
  CHECK_STR(field(ev, 1, "channel"), "native");
  CHECK_STR(field(ev, 1, "token"), first);
  CHECK_STR(field(ev, 2, "channel"), "copy");
  cJSON_Delete(batch);
  lw_engine_free(e);
}

static void landing_token_travels_to_the_referees_conversion(void) {
  lw_engine *e = make(ONE_VARIANT CAPS);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_referee_landing_token(e, "ABCDEF12", "NOTHEX", T0, err, sizeof err), LW_ERR_INVALID);
  CHECK_CONTAINS(err, "token");
  CHECK_INT(lw_engine_referee_landing_token(e, "ABCDEF12", "00112233445566778899aabbccddeeff", T0, err,
                                            sizeof err), LW_OK);
  CHECK_INT(lw_engine_referee_conversion(e, T0 + DAY, err, sizeof err), LW_OK);
  cJSON *batch, *ev = take_events(e, &batch);
  CHECK_INT(cJSON_GetArraySize(ev), 2);
  CHECK_STR(field(ev, 0, "kind"), "landing");
  CHECK_STR(field(ev, 0, "token"), "00112233445566778899aabbccddeeff");
  CHECK_STR(field(ev, 1, "kind"), "conversion");
  CHECK_STR(field(ev, 1, "token"), "00112233445566778899aabbccddeeff");
  cJSON_Delete(batch);
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

/* ---- the product manager's control and exploration that learns (issue 10) ------------- */

#define PM_HEAD                                                                                    \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\"],"          \
  "\"milestones\":[{\"event\":\"a\",\"after\":1,\"every\":1}],"                                    \
  "\"caps\":{\"max_prompts\":1000,\"window_days\":1,\"min_gap_hours\":0},\"cooldown\":{\"days\":0,\"max_days\":0}," \
  "\"value_per_referral\":100,\"fatigue_cost\":0.5"
#define PM_VARIANT(id, cost, extra)                                                                  \
  "{\"id\":\"" id "\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\"," \
  "\"cost\":" #cost extra "}"

/* A model over cheap, rich and not_now, every action with enough data, rich made to look best. */
static lw_model *pm_model(const char *first, const char *second) {
  lw_model *m = calloc(1, sizeof *m);
  m->bits = 12;
  m->n_actions = 3;
  strcpy(m->action_ids[0], first);
  strcpy(m->action_ids[1], second);
  strcpy(m->action_ids[2], "not_now");
  for (int a = 0; a < 3; a++) {
    m->action_flags[a] = LW_MODEL_ENOUGH_DATA;
    m->support[a] = 1000;
  }
  m->scale = 0.05f;
  m->weights = calloc(1u << 12, sizeof *m->weights);
  m->weights[lw_model_index(m, 1, lw_fnv1a("bias"))] = 60;
  m->model_id = 7;
  return m;
}

static lw_engine *pm_engine(const char *json, const lw_model *m, uint64_t seed) {
  lw_config cfg = tu_config(json);
  lw_engine *e;
  char err[LW_ERRMSG_MAX];
  if (lw_engine_create(&cfg, seed, 9, 0, &e, err, sizeof err) != LW_OK) exit(2);
  if (m) {
    uint8_t *buf;
    size_t len;
    CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
    CHECK_INT(lw_engine_set_model(e, buf, len, err, sizeof err), LW_OK);
    free(buf);
  }
  return e;
}

/* n decisions of one engine; counts each mode and how often `action` was drawn. */
static int pm_count(lw_engine *e, int n, const char *action, int mode_count[3]) {
  int hits = 0;
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < n; i++) {
    lw_decision d = next_decision(e, "a", T0 + i * 60000LL, 0);
    if (d.mode >= 0 && d.mode < 3) mode_count[d.mode]++;
    hits += strcmp(d.action, action) == 0;
    if (d.prompt) lw_engine_close(e, d.id, err, sizeof err);
    if (i % 200 == 199) lw_outbox_load(lw_engine_outbox(e), "", 0);
  }
  return hits;
}

static void switched_off_variant_is_never_shown_in_rules_model_or_holdout(void) {
  static const char *const configs[] = {
      PM_HEAD ",\"variants\":[" PM_VARIANT("cheap", 5, "") "," PM_VARIANT("rich", 30, ",\"weight\":0") "]",
      PM_HEAD ",\"variants\":[" PM_VARIANT("cheap", 5, "") "," PM_VARIANT("rich", 30, ",\"weight\":3,\"enabled\":false") "]"};
  lw_model *m = pm_model("cheap", "rich");
  for (int c = 0; c < 2; c++) {
    char json[2048];
    int modes[3] = {0, 0, 0}, shown = 0;
    snprintf(json, sizeof json, "%s}", configs[c]); /* rules: no model */
    lw_engine *e = pm_engine(json, NULL, 1);
    shown += pm_count(e, 300, "rich", modes);
    lw_engine_free(e);
    e = pm_engine(json, m, 2); /* model: rich looks best */
    shown += pm_count(e, 300, "rich", modes);
    lw_engine_free(e);
    snprintf(json, sizeof json, "%s,\"holdout\":0.5}", configs[c]);
    for (uint64_t s = 0; s < 40; s++) { /* holdout: about half of these installs */
      e = pm_engine(json, m, 100 + s);
      shown += pm_count(e, 10, "rich", modes);
      lw_engine_free(e);
    }
    CHECK_INT(shown, 0);
    CHECK(modes[LW_MODE_RULES] >= 300 && modes[LW_MODE_MODEL] >= 300 && modes[LW_MODE_HOLDOUT] >= 50);
  }
  lw_model_free(m);
}

static void variant_the_model_has_no_action_for_is_explored(void) {
  lw_model *m = pm_model("cheap", "rich");
  lw_engine *e = pm_engine(PM_HEAD ",\"explore\":{\"temperature\":2,\"floor\":0.02,\"new_variant\":0.1},\"variants\":["
                               PM_VARIANT("cheap", 5, "") "," PM_VARIANT("rich", 30, "") ","
                               PM_VARIANT("fresh", 8, "") "]}", m, 3);
  char err[LW_ERRMSG_MAX];
  int fresh = 0, n = 2000;
  uint32_t p_fresh = 0;
  for (int i = 0; i < n; i++) {
    lw_decision d = next_decision(e, "a", T0 + i * 60000LL, 0);
    CHECK(d.mode == LW_MODE_MODEL);
    if (strcmp(d.action, "fresh") == 0) {
      fresh++;
      p_fresh = d.p_ppm;
      CHECK_INT(d.variant, 2);
      CHECK(d.prompt);
    }
    if (d.prompt) lw_engine_close(e, d.id, err, sizeof err);
    if (i % 200 == 199) lw_outbox_load(lw_engine_outbox(e), "", 0);
  }
  CHECK(p_fresh >= 100000 - 1);
  CHECK(fresh > 120 && fresh < 300); /* 2000 × 0.1 = 200, sd 13 */
  lw_engine_free(e);
  lw_model_free(m);
}

/* A variant the model was trained on too few times is still new, whatever its flag says. */
static void variant_with_little_support_keeps_its_exploration(void) {
  lw_model *m = pm_model("cheap", "rich");
  m->support[0] = 150; /* cheap: under LW_POLICY_NEW_SUPPORT */
  m->weights[lw_model_index(m, 1, lw_fnv1a("bias"))] = 100; /* rich looks far better */
  const char *json = PM_HEAD ",\"explore\":{\"relative_temperature\":0.1,\"floor\":0.01,\"new_variant\":0.1},"
                     "\"variants\":[" PM_VARIANT("cheap", 5, "") "," PM_VARIANT("rich", 30, "") "]}";
  uint32_t ppm[LW_POLICY_MAX_ACTIONS];
  lw_config cfg = tu_config(json);
  lw_policy pol;
  CHECK_INT(lw_policy_for_config(m, &cfg, &pol, NULL), 1);
  lw_feature x = {lw_fnv1a("bias"), 256};
  CHECK_INT(lw_model_policy(m, &pol, &x, 1, 0, ppm, NULL), LW_OK);
  CHECK(ppm[0] >= 100000 - 1);
  m->support[0] = 5000; /* enough: only the floor and its softmax share are left */
  CHECK_INT(lw_model_policy(m, &pol, &x, 1, 0, ppm, NULL), LW_OK);
  CHECK(ppm[0] < 50000);
  lw_model_free(m);
}

static void not_now_is_explored_from_the_first_day_at_its_minimum(void) {
  lw_engine *e = pm_engine(PM_HEAD ",\"explore\":{\"not_now\":0.05},\"variants\":[" PM_VARIANT("cheap", 5, ",\"weight\":3") ","
                               PM_VARIANT("rich", 30, "") "]}", NULL, 4);
  int modes[3] = {0, 0, 0};
  char err[LW_ERRMSG_MAX];
  uint32_t p[3] = {0, 0, 0};
  for (int i = 0; i < 400; i++) {
    lw_decision d = next_decision(e, "a", T0 + i * 60000LL, 0);
    modes[d.mode]++;
    p[d.variant >= 0 ? d.variant : 2] = d.p_ppm;
    if (d.prompt) lw_engine_close(e, d.id, err, sizeof err);
    if (i % 200 == 199) lw_outbox_load(lw_engine_outbox(e), "", 0);
  }
  CHECK_INT(modes[LW_MODE_RULES], 400);
  CHECK_INT(p[2], 50000);  /* "not now" at its minimum ... */
  CHECK_INT(p[0], 712500); /* ... and the variants share the rest by weight */
  CHECK_INT(p[1], 237500);
  lw_engine_free(e);
}

/* The probabilities a model gives at one context under a config. */
static void policy_at(const char *json, const lw_model *m, uint32_t *ppm) {
  lw_config cfg = tu_config(json);
  lw_policy pol;
  CHECK_INT(lw_policy_for_config(m, &cfg, &pol, NULL), 1);
  lw_feature x = {lw_fnv1a("bias"), 256};
  CHECK_INT(lw_model_policy(m, &pol, &x, 1, 0, ppm, NULL), LW_OK);
}

static void relative_temperature_explores_alike_at_any_value_scale(void) {
  lw_model *m = pm_model("cheap", "rich");
  uint32_t small[LW_POLICY_MAX_ACTIONS], large[LW_POLICY_MAX_ACTIONS], abs_small[LW_POLICY_MAX_ACTIONS],
      abs_large[LW_POLICY_MAX_ACTIONS];
#define SCALED(v, c1, c2, explore)                                                                      \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\"],"              \
  "\"milestones\":[{\"event\":\"a\",\"after\":1}],\"value_per_referral\":" #v ",\"fatigue_cost\":0,"     \
  "\"explore\":" explore ",\"variants\":[" PM_VARIANT("cheap", c1, "") "," PM_VARIANT("rich", c2, "") "]}"
  policy_at(SCALED(100, 5, 30, "{\"relative_temperature\":0.25,\"floor\":0.01}"), m, small);
  policy_at(SCALED(100000, 5000, 30000, "{\"relative_temperature\":0.25,\"floor\":0.01}"), m, large);
  for (int a = 0; a < 3; a++) CHECK(abs((int)small[a] - (int)large[a]) <= 2);
  CHECK(small[1] > 800000); /* the best action is exploited, not drowned in exploration */
  policy_at(SCALED(100, 5, 30, "{\"temperature\":10,\"floor\":0.01}"), m, abs_small);
  policy_at(SCALED(100000, 5000, 30000, "{\"temperature\":10,\"floor\":0.01}"), m, abs_large);
  CHECK(abs_small[1] < abs_large[1] - 100000); /* value units: the old rule depends on the scale */
#undef SCALED
  lw_model_free(m);
}

static void model_without_data_for_the_variants_says_so(void) {
  lw_model *m = pm_model("credit_10", "month_free"); /* another program's actions */
  const char *json = PM_HEAD ",\"variants\":[" PM_VARIANT("cheap", 5, "") "," PM_VARIANT("rich", 30, "") "]}";
  lw_engine *e = pm_engine(json, NULL, 5);
  CHECK_STR(lw_engine_model_status(e), "none");
  lw_engine_free(e);
  e = pm_engine(json, m, 5);
  CHECK_STR(lw_engine_model_status(e), "no_data");
  lw_decision d = next_decision(e, "a", T0, 0);
  CHECK(d.mode == LW_MODE_RULES);
  CHECK_STR(d.reason, "shown: rules (model has no data) at milestone a\xC3\x97" "1");
  lw_engine_free(e);
  lw_model_free(m);
  m = pm_model("cheap", "rich");
  e = pm_engine(json, m, 5);
  CHECK_STR(lw_engine_model_status(e), "ready");
  lw_engine_free(e);
  lw_model_free(m);
}

/* The model's channel ranking (format 3) reaches the prompt through lw_engine_channels, and
 * survives the model file's round trip; a model without one gives none. */
static void engine_returns_the_models_channel_ranking_for_the_persona(void) {
  lw_model *m = pm_model("cheap", "rich");
  const char *json = PM_HEAD ",\"variants\":[" PM_VARIANT("cheap", 1, "") "," PM_VARIANT("rich", 30, "") "]}";
  lw_engine *plain = pm_engine(json, m, 3);
  const char *names[LW_CHANNEL_COUNT];
  CHECK_INT(lw_engine_channels(plain, T0, 0, names, LW_CHANNEL_COUNT), 0);
  lw_engine_free(plain);
  m->n_channel_rows = 1;
  m->n_channels[0] = 3;
  m->channels[0][0] = LW_CHANNEL_EMAIL;
  m->channels[0][1] = LW_CHANNEL_COPY;
  m->channels[0][2] = LW_CHANNEL_NATIVE;
  lw_engine *e = pm_engine(json, m, 3);
  CHECK_INT(lw_engine_channels(e, T0, 0, names, LW_CHANNEL_COUNT), 3);
  CHECK_STR(names[0], "email");
  CHECK_STR(names[1], "copy");
  CHECK_STR(names[2], "native");
  CHECK_INT(lw_engine_channels(e, T0, 0, names, 1), 1);
  lw_engine_free(e);
  /* a repeated channel is damage */
  m->channels[0][1] = LW_CHANNEL_EMAIL;
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  lw_model *back = NULL;
  CHECK_INT(lw_model_load(buf, len, &back, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "channel");
  free(buf);
  lw_model_free(m);
}

/* The holdout measures what learning adds, so a holdout install gets none of it: not the model's
 * decisions and not its channel order either (the prompt falls back to the config's order). */
static void a_holdout_install_gets_no_learned_channel_order(void) {
  lw_model *m = pm_model("cheap", "rich");
  m->n_channel_rows = 1;
  m->n_channels[0] = 2;
  m->channels[0][0] = LW_CHANNEL_EMAIL;
  m->channels[0][1] = LW_CHANNEL_COPY;
  const char *json = PM_HEAD ",\"holdout\":0.5,\"variants\":[" PM_VARIANT("cheap", 1, "") "," PM_VARIANT("rich", 30, "") "]}";
  int seen[2] = {0, 0};
  for (uint64_t seed = 1; seed < 200 && !(seen[0] && seen[1]); seed++) {
    lw_engine *e = pm_engine(json, m, seed);
    lw_decision d = next_decision(e, "a", T0, 0);
    const char *names[LW_CHANNEL_COUNT];
    int n = lw_engine_channels(e, T0, 0, names, LW_CHANNEL_COUNT);
    int holdout = d.mode == LW_MODE_HOLDOUT;
    CHECK_INT(n, holdout ? 0 : 2);
    seen[holdout] = 1;
    lw_engine_free(e);
  }
  CHECK(seen[0] && seen[1]);
  lw_model_free(m);
}

/* ---- approval requests through the server (wire v3) */

#define APPROVAL_RULE                                                                              \
  ",\"attributes\":{\"plan\":[\"free\",\"enterprise\"],\"seats\":[\"1\",\"50-plus\"],"             \
  "\"industry\":[\"software\",\"other\"]},"                                                        \
  "\"approval\":{\"attribute\":\"plan\",\"values\":[\"enterprise\"],\"send\":[\"plan\",\"seats\"]}}"
#define AKEY "0123456789abcdef0123456789abcdef"

static lw_engine *held_engine(lw_decision *d) {
  lw_engine *e = make(ONE_VARIANT APPROVAL_RULE);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_set_attribute(e, "plan", "enterprise", err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_set_attribute(e, "seats", "50-plus", err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_set_attribute(e, "industry", "software", err, sizeof err), LW_OK);
  *d = next_decision(e, "a", T0, 0);
  CHECK_INT(d->why, LW_WHY_APPROVAL);
  CHECK_INT(d->prompt, 0);
  return e;
}

static void approval_request_carries_the_configured_attributes_and_the_decisions_explanation(void) {
  lw_decision d;
  lw_engine *e = held_engine(&d);
  char err[LW_ERRMSG_MAX];
  int sent = -1;
  lw_engine_set_consent(e, 1, T0);
  lw_outbox_drop(lw_engine_outbox(e), lw_outbox_count(lw_engine_outbox(e)), 0);
  CHECK_INT(lw_engine_approval_request(e, d.id, "not-a-key", T0, &sent, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_engine_approval_request(e, "0000000000000000", AKEY, T0, &sent, err, sizeof err),
            LW_ERR_NOT_FOUND);
  CHECK_INT(lw_engine_approval_request(e, d.id, AKEY, T0 + 1, &sent, err, sizeof err), LW_OK);
  CHECK_INT(sent, 1);
  cJSON *batch, *ev = take_events(e, &batch);
  CHECK_INT(cJSON_GetArraySize(ev), 1);
  CHECK_STR(field(ev, 0, "kind"), "approval-request");
  CHECK_STR(field(ev, 0, "decision"), d.id);
  CHECK_STR(field(ev, 0, "action"), "v1");
  CHECK_STR(field(ev, 0, "key"), AKEY);
  CHECK(strncmp(field(ev, 0, "reason"), "shown:", 6) == 0); /* the decision's own, not "awaiting" */
  cJSON *attrs = cJSON_GetObjectItem(cJSON_GetArrayItem(ev, 0), "attrs");
  CHECK_INT(cJSON_GetArraySize(attrs), 2); /* plan and seats: send does not name industry */
  CHECK_STR(cJSON_GetObjectItem(attrs, "plan")->valuestring, "enterprise");
  CHECK_STR(cJSON_GetObjectItem(attrs, "seats")->valuestring, "50-plus");
  cJSON_Delete(batch);
  lw_engine_free(e);
}

static void no_approval_request_without_consent_given(void) {
  lw_decision d;
  lw_engine *e = held_engine(&d); /* consent not asked: the config collects by default */
  char err[LW_ERRMSG_MAX];
  int sent = -1;
  size_t before = lw_outbox_count(lw_engine_outbox(e));
  CHECK_INT(lw_engine_approval_request(e, d.id, AKEY, T0, &sent, err, sizeof err), LW_OK);
  CHECK_INT(sent, 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), before);
  lw_engine_set_consent(e, 0, T0);
  CHECK_INT(lw_engine_approval_request(e, d.id, AKEY, T0, &sent, err, sizeof err), LW_OK);
  CHECK_INT(sent, 0);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 0);
  lw_engine_free(e);
}

static void approved_answer_shows_the_prompt_and_a_declined_one_never_does(void) {
  lw_decision d, out;
  char err[LW_ERRMSG_MAX];
  lw_engine *e = held_engine(&d);
  lw_engine_set_consent(e, 1, T0);
  CHECK_INT(lw_engine_approval_answer(e, d.id, "pending", T0, 0, &out, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_engine_approval_answer(e, d.id, "approved", T0 + 5, 0, &out, err, sizeof err), LW_OK);
  CHECK_INT(out.prompt, 1);
  CHECK_STR(out.id, d.id);
  /* once answered nothing waits any more */
  CHECK_INT(lw_engine_approval_answer(e, d.id, "approved", T0 + 6, 0, &out, err, sizeof err),
            LW_ERR_NOT_FOUND);
  lw_engine_free(e);

  for (int expired = 0; expired < 2; expired++) {
    e = held_engine(&d);
    lw_engine_set_consent(e, 1, T0);
    lw_outbox_drop(lw_engine_outbox(e), lw_outbox_count(lw_engine_outbox(e)), 0);
    CHECK_INT(lw_engine_approval_answer(e, d.id, expired ? "expired" : "declined", T0 + 5, 0, &out,
                                        err, sizeof err), LW_OK);
    CHECK_INT(out.prompt, 0);
    CHECK_INT(lw_engine_approve(e, d.id, T0 + 6, 0, &out, err, sizeof err), LW_ERR_NOT_FOUND);
    cJSON *batch, *ev = take_events(e, &batch);
    CHECK_STR(field(ev, 0, "kind"), "approval-answer");
    CHECK_STR(field(ev, 0, "answer"), expired ? "expired" : "declined");
    cJSON_Delete(batch);
    lw_engine_free(e);
  }
}

static void approved_answer_still_obeys_every_other_constraint(void) {
  lw_decision d, out;
  char err[LW_ERRMSG_MAX];
  lw_engine *e = held_engine(&d);
  lw_engine_set_consent(e, 0, T0 + 1); /* consent withdrawn while the request waited */
  CHECK_INT(lw_engine_approval_answer(e, d.id, "approved", T0 + 5, 0, &out, err, sizeof err),
            LW_ERR_INVALID);
  CHECK_INT(out.prompt, 0);
  lw_engine_free(e);
}

int main(void) {
  RUN(recording_counts_events_with_first_and_last_times);
  RUN(approval_request_carries_the_configured_attributes_and_the_decisions_explanation);
  RUN(no_approval_request_without_consent_given);
  RUN(approved_answer_shows_the_prompt_and_a_declined_one_never_does);
  RUN(approved_answer_still_obeys_every_other_constraint);
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
  RUN(share_carries_the_callers_token_and_its_channel_in_a_v2_batch);
  RUN(share_reported_without_bytes_still_gets_a_token_and_the_default_channel);
  RUN(landing_token_travels_to_the_referees_conversion);
  RUN(probabilities_are_exact_and_match_frequencies);
  RUN(same_seed_same_decisions);
  RUN(outcome_rejects_bad_decision_ids);
  RUN(switched_off_variant_is_never_shown_in_rules_model_or_holdout);
  RUN(variant_the_model_has_no_action_for_is_explored);
  RUN(variant_with_little_support_keeps_its_exploration);
  RUN(not_now_is_explored_from_the_first_day_at_its_minimum);
  RUN(relative_temperature_explores_alike_at_any_value_scale);
  RUN(model_without_data_for_the_variants_says_so);
  RUN(engine_returns_the_models_channel_ranking_for_the_persona);
  RUN(a_holdout_install_gets_no_learned_channel_order);
  return check_failures ? 1 : 0;
}
