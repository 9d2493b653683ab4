/* Snapshots: round trip, migration from version 1, and damaged data that must never
 * forget a user's "no". */
#include <stdlib.h>

#include "../../src/core/engine_internal.h"
#include "check.h"
#include "testutil.h"

#define CFG(consent)                                                                              \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\",\"b\"],"  \
  "\"milestones\":[{\"event\":\"a\",\"after\":2,\"every\":1}],"                                   \
  "\"variants\":[{\"id\":\"v1\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\","     \
  "\"referee_reward\":\"E\",\"cost\":5}],\"consent\":" consent ","                                \
  "\"caps\":{\"max_prompts\":50,\"window_days\":30,\"min_gap_hours\":0},\"cooldown\":{\"days\":7}}"
#define OPTIONAL CFG("{\"required\":false,\"default\":true}")
/* Consent required, but assumed for a new user: only a recorded "no" blocks. */
#define REQUIRED CFG("{\"required\":true,\"default\":true}")

static lw_engine *make(const char *json, uint64_t seed) {
  lw_config cfg = tu_config(json);
  lw_engine *e = NULL;
  char err[LW_ERRMSG_MAX];
  if (lw_engine_create(&cfg, seed, 1, 0, &e, err, sizeof err) != LW_OK) exit(2);
  return e;
}

static lw_decision track(lw_engine *e, const char *ev, int64_t t) {
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  lw_engine_track(e, ev, t, 0, &d, err, sizeof err);
  return d;
}

static size_t snap(lw_engine *e, uint8_t **out) {
  size_t n = lw_engine_snapshot(e, NULL, 0);
  *out = malloc(n);
  CHECK_INT(lw_engine_snapshot(e, *out, n), n);
  return n;
}

/* Offset of a section's payload (tag 1..3) inside a v2 snapshot. */
static size_t section_at(const uint8_t *s, int tag, uint32_t *len) {
  size_t off = 8;
  for (;;) {
    uint32_t n = (uint32_t)s[off + 4] | (uint32_t)s[off + 5] << 8 | (uint32_t)s[off + 6] << 16 |
                 (uint32_t)s[off + 7] << 24;
    if (s[off] == tag) {
      *len = n;
      return off + 8;
    }
    off += 8 + n + 4;
  }
}

static void round_trip_keeps_everything(void) {
  lw_engine *e = make(OPTIONAL, 1);
  track(e, "b", T0);
  lw_decision d = track(e, "a", T0);
  d = track(e, "a", T0 + HOUR);
  CHECK_INT(d.prompt, 1);
  char err[LW_ERRMSG_MAX];
  lw_engine_outcome(e, d.id, LW_KIND_DISMISS, T0 + HOUR, err, sizeof err);
  uint8_t *s;
  size_t n = snap(e, &s);

  lw_engine *r = make(OPTIONAL, 99);
  CHECK_INT(lw_engine_restore(r, s, n, T0 + 2 * HOUR, err, sizeof err), LW_OK);
  CHECK_STR(lw_engine_install_key(r), lw_engine_install_key(e));
  CHECK_STR(lw_engine_referral_code(r), lw_engine_referral_code(e));
  CHECK_INT(r->beh.ev[0].count, 2);
  CHECK_INT(r->beh.ev[1].count, 1);
  CHECK_INT(r->guard.dismiss_total, 1);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(r)), 2); /* decision + dismiss, unsent */
  uint8_t *s2;
  size_t n2 = snap(r, &s2);
  CHECK_INT(n2, n);
  CHECK(memcmp(s, s2, n) == 0);
  d = track(r, "a", T0 + 3 * HOUR);
  CHECK_STR(d.reason, "suppressed: cooldown 7d left");
  free(s);
  free(s2);
  lw_engine_free(e);
  lw_engine_free(r);
}

/* The approval rule of the config above, for plan enterprise. */
#define HELD                                                                                      \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"a\",\"b\"],"  \
  "\"milestones\":[{\"event\":\"a\",\"after\":2,\"every\":1}],"                                   \
  "\"variants\":[{\"id\":\"v1\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\","     \
  "\"referee_reward\":\"E\",\"cost\":5}],\"caps\":{\"max_prompts\":50,\"window_days\":30,"          \
  "\"min_gap_hours\":0},\"attributes\":{\"plan\":[\"free\",\"enterprise\"]},"                         \
  "\"approval\":{\"attribute\":\"plan\",\"values\":[\"enterprise\"],\"send\":[\"plan\"]}}"

static lw_decision held(lw_engine *e) {
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_set_attribute(e, "plan", "enterprise", err, sizeof err), LW_OK);
  lw_engine_set_consent(e, 1, T0);
  track(e, "a", T0);
  lw_decision d = track(e, "a", T0 + 1);
  CHECK_INT(d.why, LW_WHY_APPROVAL);
  return d;
}

static void a_requested_approval_hold_survives_the_snapshot_and_an_unrequested_one_does_not(void) {
  char err[LW_ERRMSG_MAX];
  lw_engine *e = make(HELD, 1);
  lw_decision d = held(e);
  uint8_t *s;
  size_t n = snap(e, &s);
  lw_engine *r = make(HELD, 2);
  CHECK_INT(lw_engine_restore(r, s, n, T0 + 2, err, sizeof err), LW_OK);
  CHECK_STR(lw_engine_approval_held(r, 1, T0 + 2), ""); /* not requested: in-page only */
  CHECK_STR(lw_engine_approval_held(r, 0, T0 + 2), "");
  CHECK_STR(lw_engine_approval_held(e, 0, T0 + 2), d.id); /* held, its request not sent yet */
  free(s);
  lw_engine_free(r);

  int sent = 0;
  CHECK_INT(lw_engine_approval_request(e, d.id, "0123456789abcdef0123456789abcdef", T0 + 2, &sent, err, sizeof err), LW_OK);
  CHECK_INT(sent, 1);
  CHECK_STR(lw_engine_approval_held(e, 1, T0 + 2), d.id);
  n = snap(e, &s);
  r = make(HELD, 3);
  /* Days later (past the in-page 30 minutes), on another page: still held, and approvable. */
  int64_t later = T0 + 3 * 24 * HOUR;
  CHECK_INT(lw_engine_restore(r, s, n, later, err, sizeof err), LW_OK);
  CHECK_STR(lw_engine_approval_held(r, 1, later), d.id);
  uint8_t *s2;
  size_t n2 = snap(r, &s2);
  CHECK_INT(n2, n);
  CHECK(memcmp(s, s2, n) == 0);
  lw_decision out;
  CHECK_INT(lw_engine_approval_answer(r, d.id, "approved", later, 0, &out, err, sizeof err), LW_OK);
  CHECK_INT(out.prompt, 1);
  CHECK_STR(out.action, d.action);
  CHECK_STR(lw_engine_approval_held(r, 1, later), "");
  free(s2);

  /* A damaged hold section is dropped (nothing shows), the rest of the state kept. */
  uint32_t len;
  size_t at = section_at(s, 4, &len);
  s[at + 2] ^= 0x20;
  lw_engine *x = make(HELD, 4);
  lw_engine_restore(x, s, n, later, err, sizeof err);
  CHECK_STR(lw_engine_approval_held(x, 1, later), "");
  CHECK_STR(lw_engine_install_key(x), lw_engine_install_key(e));
  free(s);
  lw_engine_free(x);
  lw_engine_free(r);
  lw_engine_free(e);
}

static void empty_snapshot_is_a_new_user(void) {
  lw_engine *e = make(REQUIRED, 1);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(e, NULL, 0, T0, err, sizeof err), LW_OK);
  CHECK_INT(e->guard.consent, LW_CONSENT_UNSET);
  CHECK_INT(e->guard.history_unknown_until_ms, 0);
  lw_engine_free(e);
}

static void damaged_guard_keeps_a_no_where_consent_is_required(void) {
  lw_engine *e = make(REQUIRED, 1);
  lw_engine_set_consent(e, 0, T0);
  track(e, "a", T0);
  uint8_t *s;
  size_t n = snap(e, &s);
  uint32_t len;
  size_t at = section_at(s, 1, &len);
  s[at + 20] ^= 0x5a; /* flip bits inside the guard payload */

  lw_engine *r = make(REQUIRED, 2);
  lw_engine_set_consent(r, 1, T0); /* whatever the fresh engine had must not survive either */
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(r, s, n, T0 + DAY, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "guard section damaged: consent and history treated as unknown");
  CHECK_INT(r->beh.ev[0].count, 1); /* the behaviour section was intact */
  lw_decision d = track(r, "a", T0 + DAY);
  CHECK_STR(d.reason, "suppressed: no consent");
  d = track(r, "a", T0 + 30 * DAY); /* and still later: unknown consent is not consent */
  CHECK_STR(d.reason, "suppressed: no consent");
  free(s);
  lw_engine_free(e);
  lw_engine_free(r);
}

static void damaged_guard_means_no_prompt_for_a_cooldown(void) {
  lw_engine *e = make(OPTIONAL, 1);
  uint8_t *s;
  size_t n = snap(e, &s);
  uint32_t len;
  size_t at = section_at(s, 1, &len);
  s[at + len + 1] ^= 1; /* break the guard section's checksum */
  lw_engine *r = make(OPTIONAL, 2);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(r, s, n, T0, err, sizeof err), LW_ERR_CORRUPT);
  track(r, "a", T0);
  lw_decision d = track(r, "a", T0 + DAY);
  CHECK_STR(d.reason, "suppressed: history unknown, 6d left");
  d = track(r, "a", T0 + 7 * DAY);
  CHECK_INT(d.prompt, 1);
  free(s);
  lw_engine_free(e);
  lw_engine_free(r);
}

static void garbage_and_truncation_fall_back_conservatively(void) {
  lw_engine *e = make(OPTIONAL, 1);
  track(e, "a", T0);
  uint8_t *s;
  size_t n = snap(e, &s);
  char err[LW_ERRMSG_MAX];

  lw_engine *r = make(OPTIONAL, 2);
  const uint8_t junk[] = "this is not a snapshot at all";
  CHECK_INT(lw_engine_restore(r, junk, sizeof junk, T0, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_INT(r->guard.consent, LW_CONSENT_UNKNOWN);
  CHECK_INT(r->guard.history_unknown_until_ms, T0 + 7 * DAY);
  lw_engine_free(r);

  for (size_t cut = 0; cut < n; cut += 7) { /* every truncation is handled, none crashes */
    r = make(OPTIONAL, 3);
    lw_status st = lw_engine_restore(r, s, cut, T0, err, sizeof err);
    CHECK(cut == 0 ? st == LW_OK : st != LW_OK);
    if (cut > 0 && cut < 8 + 8 + 100) CHECK_INT(r->guard.consent, LW_CONSENT_UNKNOWN);
    lw_engine_free(r);
  }
  free(s);
  lw_engine_free(e);
}

static void damaged_behaviour_resets_only_counters(void) {
  lw_engine *e = make(REQUIRED, 1);
  lw_engine_set_consent(e, 1, T0);
  track(e, "a", T0);
  uint8_t *s;
  size_t n = snap(e, &s);
  uint32_t len;
  size_t at = section_at(s, 2, &len);
  s[at] ^= 0xff;
  lw_engine *r = make(REQUIRED, 2);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(r, s, n, T0, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "behaviour section damaged: counters reset");
  CHECK_INT(r->guard.consent, LW_CONSENT_GIVEN);
  CHECK_INT(r->beh.ev[0].count, 0);
  free(s);
  lw_engine_free(e);
  lw_engine_free(r);
}

static void newer_version_is_refused_conservatively(void) {
  lw_engine *e = make(OPTIONAL, 1);
  uint8_t *s;
  size_t n = snap(e, &s);
  s[4] = 9;
  lw_engine *r = make(OPTIONAL, 2);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(r, s, n, T0, err, sizeof err), LW_ERR_VERSION);
  CHECK_CONTAINS(err, "snapshot version 9 is unknown to this runtime");
  CHECK_INT(r->guard.consent, LW_CONSENT_UNKNOWN);
  free(s);
  lw_engine_free(e);
  lw_engine_free(r);
}

/* ---- version 1 -------------------------------------------------------------------- */

static size_t put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
  return 4;
}
static size_t put64(uint8_t *p, int64_t v) {
  put32(p, (uint32_t)(uint64_t)v);
  return 4 + put32(p + 4, (uint32_t)((uint64_t)v >> 32));
}
static uint32_t crc32_ref(const uint8_t *p, size_t n) { /* bitwise reference CRC-32 */
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

/* A version-1 snapshot as the first prototype wrote it. */
static size_t make_v1(uint8_t *b, uint8_t consent, int64_t last_dismiss, uint32_t count_a) {
  size_t o = 0;
  memcpy(b, "LWSN\x01\x00", 6);
  o = 6;
  for (int i = 0; i < 16; i++) b[o++] = (uint8_t)(0xa0 + i);
  b[o++] = consent;
  o += put32(b + o, 1);           /* shown_total */
  o += put64(b + o, T0 - 9 * DAY); /* last shown */
  o += put32(b + o, 1);           /* dismiss_total */
  o += put64(b + o, last_dismiss);
  b[o++] = 2;
  b[o++] = 0;
  o += put32(b + o, lw_name_hash("a"));
  o += put32(b + o, count_a);
  o += put32(b + o, lw_name_hash("gone"));
  o += put32(b + o, 5);
  o += put32(b + o, crc32_ref(b + 6, o - 6));
  return o;
}

static void version_1_snapshot_is_migrated(void) {
  uint8_t b[128];
  size_t n = make_v1(b, LW_CONSENT_REFUSED, T0 - 8 * DAY, 4);
  lw_engine *r = make(OPTIONAL, 2);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(r, b, n, T0, err, sizeof err), LW_OK);
  CHECK_STR(lw_engine_install_key(r), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  CHECK_INT(r->beh.ev[0].count, 4);
  CHECK_INT(r->guard.dismiss_total, 1);
  CHECK_INT(r->guard.shown_ms[0], T0 - 9 * DAY);
  CHECK_INT(strlen(lw_engine_referral_code(r)), 10);
  lw_decision d = track(r, "a", T0); /* count 5 is a milestone; the v1 "no" holds */
  CHECK_STR(d.reason, "suppressed: no consent");
  lw_engine_free(r);

  n = make_v1(b, LW_CONSENT_UNSET, T0 - 2 * DAY, 4);
  r = make(OPTIONAL, 2);
  CHECK_INT(lw_engine_restore(r, b, n, T0, err, sizeof err), LW_OK);
  d = track(r, "a", T0); /* dismissed 2 days ago: the cooldown carried over */
  CHECK_STR(d.reason, "suppressed: cooldown 5d left");
  lw_engine_free(r);

  b[10] ^= 1; /* a damaged v1 snapshot is handled like any damaged one */
  r = make(OPTIONAL, 2);
  CHECK_INT(lw_engine_restore(r, b, n, T0, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_INT(r->guard.consent, LW_CONSENT_UNKNOWN);
  lw_engine_free(r);
}

static void events_are_matched_by_name_across_config_changes(void) {
  lw_engine *e = make(OPTIONAL, 1);
  track(e, "b", T0);
  track(e, "b", T0);
  uint8_t *s;
  size_t n = snap(e, &s);
  /* the new config lists the events in another order and adds one */
  const char *cfg2 =
      "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},\"events\":[\"c\",\"b\",\"a\"],"
      "\"milestones\":[{\"event\":\"a\",\"after\":2}],\"variants\":[{\"id\":\"v1\",\"title\":\"T\","
      "\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":5}]}";
  lw_engine *r = make(cfg2, 2);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_restore(r, s, n, T0, err, sizeof err), LW_OK);
  CHECK_INT(r->beh.ev[0].count, 0);
  CHECK_INT(r->beh.ev[1].count, 2);
  free(s);
  lw_engine_free(e);
  lw_engine_free(r);
}

int main(void) {
  RUN(round_trip_keeps_everything);
  RUN(empty_snapshot_is_a_new_user);
  RUN(a_requested_approval_hold_survives_the_snapshot_and_an_unrequested_one_does_not);
  RUN(damaged_guard_keeps_a_no_where_consent_is_required);
  RUN(damaged_guard_means_no_prompt_for_a_cooldown);
  RUN(garbage_and_truncation_fall_back_conservatively);
  RUN(damaged_behaviour_resets_only_counters);
  RUN(newer_version_is_refused_conservatively);
  RUN(version_1_snapshot_is_migrated);
  RUN(events_are_matched_by_name_across_config_changes);
  return check_failures ? 1 : 0;
}
