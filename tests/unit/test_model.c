/* The model file, deterministic math, model/holdout modes, exploration probabilities,
 * the policy layer's newer constraints, approval, referee attribution and explanations. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "../../src/core/engine_internal.h"
#include "check.h"
#include "testutil.h"

#define CFG_HEAD                                                                                   \
  "{\"version\":1,\"share\":{\"url\":\"https://x.example/?r={code}\"},"                            \
  "\"events\":[\"a\",\"b\",\"nps_answered\",\"feature_discovered\"],"                              \
  "\"milestones\":[{\"event\":\"a\",\"after\":1,\"every\":1}],\"variants\":["                       \
  "{\"id\":\"cheap\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":5}," \
  "{\"id\":\"rich\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":30}]," \
  "\"caps\":{\"max_prompts\":1000,\"window_days\":1,\"min_gap_hours\":0},\"cooldown\":{\"days\":0,\"max_days\":0}," \
  "\"attributes\":{\"plan\":[\"free\",\"pro\",\"enterprise\"]},\"value_per_referral\":100,\"fatigue_cost\":0.5,"   \
  "\"explore\":{\"temperature\":2,\"floor\":0.05}"
#define CFG CFG_HEAD "}"

/* A model over actions cheap, rich, not_now with all weights zero except those set. */
static lw_model *new_model(int enough) {
  lw_model *m = calloc(1, sizeof *m);
  m->bits = 14;
  m->n_actions = 3;
  strcpy(m->action_ids[0], "cheap");
  strcpy(m->action_ids[1], "rich");
  strcpy(m->action_ids[2], "not_now");
  for (int a = 0; a < 3; a++) m->action_flags[a] = enough ? LW_MODEL_ENOUGH_DATA : 0;
  m->scale = 0.05f;
  m->weights = calloc(1u << 14, sizeof *m->weights);
  m->model_id = 7;
  m->trained_at_ms = T0;
  const char meta[] = "{\"trainer\":\"test\"}";
  m->meta_json = malloc(sizeof meta);
  memcpy(m->meta_json, meta, sizeof meta);
  return m;
}

static void set_w(lw_model *m, int action, const char *feature, int q) {
  m->weights[lw_model_index(m, action, lw_fnv1a(feature))] = (float)q;
}

static lw_engine *engine_with(const char *cfg_json, lw_model *m, uint64_t seed) {
  lw_config cfg = tu_config(cfg_json);
  lw_engine *e;
  char err[LW_ERRMSG_MAX];
  if (lw_engine_create(&cfg, seed, 3, 0, &e, err, sizeof err) != LW_OK) exit(2);
  if (m) {
    uint8_t *buf;
    size_t len;
    CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
    CHECK_INT(lw_engine_set_model(e, buf, len, err, sizeof err), LW_OK);
    free(buf);
  }
  return e;
}

static lw_decision track(lw_engine *e, const char *ev, int64_t t) {
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  lw_engine_track(e, ev, t, 0, &d, err, sizeof err);
  if (d.prompt) lw_engine_close(e, d.id, err, sizeof err);
  return d;
}

static void math_matches_libm_closely(void) {
  for (double x = -30; x <= 30; x += 0.37) CHECK(fabs(lw_exp(x) - exp(x)) <= 4e-16 * exp(x));
  for (double x = 0; x < 1e6; x = x * 1.7 + 0.013) CHECK(fabs(lw_ln1p(x) - log1p(x)) <= 1e-15 * (1 + log1p(x)));
  CHECK(lw_exp(-800) == 0.0);
  CHECK(lw_sigmoid(0) == 0.5);
  CHECK_INT(lw_fx(1.0), 256);
  CHECK_INT(lw_fx(-0.5), -128);
  CHECK_INT(lw_fx(0.001), 0);
  CHECK_INT(lw_fnv1a(""), 2166136261u);
  CHECK_INT(lw_fnv1a("a"), 0xe40c292cu); /* published FNV-1a test vector */
}

static void model_file_round_trips_and_damage_is_refused(void) {
  lw_model *m = new_model(1);
  set_w(m, 0, "bias", 17);
  m->n_segments = 1;
  strcpy(m->segment_names[0], "plan^free");
  m->segment_offsets[0] = 0.25f;
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  lw_model *r;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_OK);
  CHECK_INT(r->model_id, 7);
  CHECK_STR(r->action_ids[1], "rich");
  CHECK(memcmp(r->weights, m->weights, (1u << 14) * sizeof *m->weights) == 0);
  CHECK(lw_model_segment_offset(r, "plan^free") == 0.25);
  CHECK_STR(r->meta_json, "{\"trainer\":\"test\"}");
  lw_model_free(r);

  buf[40] ^= 1;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "checksum mismatch");
  buf[40] ^= 1;
  CHECK_INT(lw_model_load(buf, len - 9, &r, err, sizeof err), LW_ERR_CORRUPT);
  buf[0] = 'X';
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "not a Loopwise model file");
  buf[0] = 'L';
  buf[4] = 5; /* version 5, with a valid checksum */
  uint32_t crc = lw_crc32(0, buf, len - 4);
  for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_VERSION);
  free(buf);
  lw_model_free(m);
}

/* A newer model file is refused for its version, whatever its checksum says: a later format may
 * lay out or check its bytes differently, and "damaged" would send the reader looking for the
 * wrong problem (README "How the contracts evolve"). The version is read before the checksum. */
static void a_newer_model_is_refused_for_its_version_before_its_checksum(void) {
  lw_model *m = new_model(1);
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  lw_model *r = NULL;
  buf[4] = 5; /* version 5; the checksum is now wrong for these bytes */
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_VERSION);
  CHECK_STR(err, "model: format version is unknown to this runtime (reads 1-4)");
  CHECK(r == NULL);
  buf[5] = 1; /* version 260 */
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_VERSION);
  /* Only the header is needed to tell: a newer file cut short is still a newer file. */
  CHECK_INT(lw_model_load(buf, 32, &r, err, sizeof err), LW_ERR_VERSION);
  /* Version 2 with the same damage is damage. */
  buf[4] = 2;
  buf[5] = 0;
  buf[40] ^= 1;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "checksum mismatch");
  free(buf);
  lw_model_free(m);
}

static void bad_model_is_rejected_and_rules_keep_deciding(void) {
  lw_engine *e = engine_with(CFG, NULL, 1);
  /* A version 1 header and then damage (a higher version would be refused as newer). */
  const uint8_t junk[64] = "LWMD\1\0 not really a model";
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_set_model(e, junk, sizeof junk, err, sizeof err), LW_ERR_CORRUPT);
  lw_decision d = track(e, "a", T0);
  CHECK_INT(d.mode, LW_MODE_RULES);
  CHECK_INT(d.prompt, 1);
  CHECK_INT(lw_engine_model_id(e), 0);
  lw_engine_free(e);
}

static void model_mode_favours_the_cheapest_incentive_that_works(void) {
  lw_model *m = new_model(1);
  set_w(m, 0, "bias", -40); /* cheap and rich equally likely to convert: z = -2 */
  set_w(m, 1, "bias", -40);
  set_w(m, 2, "bias", -100); /* not now: z = -5 */
  lw_engine *e = engine_with(CFG, m, 5);
  int n[3] = {0, 0, 0};
  uint32_t p_of[3] = {0, 0, 0};
  for (int i = 0; i < 6000; i++) {
    lw_decision d = track(e, "a", T0 + i);
    CHECK_INT(d.mode, LW_MODE_MODEL);
    int k = d.variant >= 0 ? d.variant : 2;
    if (p_of[k] && p_of[k] != d.p_ppm) CHECK_INT(d.p_ppm, p_of[k]); /* same state, same policy */
    p_of[k] = d.p_ppm;
    n[k]++;
    if (i % 500 == 0) lw_outbox_load(lw_engine_outbox(e), "", 0);
  }
  CHECK_INT(p_of[0] + p_of[1] + p_of[2], 1000000);
  CHECK(p_of[0] > p_of[1]); /* same P(referral), lower cost: more likely */
  CHECK(p_of[1] >= 50000 - 1 && p_of[2] >= 50000 - 1); /* the exploration floor */
  for (int k = 0; k < 3; k++) { /* empirical frequencies match the logged probabilities */
    double expect = 6000.0 * p_of[k] / 1e6, sd = sqrt(6000.0 * p_of[k] / 1e6 * (1 - p_of[k] / 1e6));
    CHECK(fabs(n[k] - expect) < 5 * sd + 1);
  }
  lw_engine_free(e);
  lw_model_free(m);
}

static void actions_without_enough_data_only_get_the_floor(void) {
  lw_model *m = new_model(1);
  m->action_flags[1] = 0; /* "rich" lacks data */
  set_w(m, 1, "bias", 120); /* however good it looks */
  lw_engine *e = engine_with(CFG, m, 5);
  char err[LW_ERRMSG_MAX];
  uint32_t ppm[3];
  lw_policy pol;
  memset(&pol, 0, sizeof pol);
  pol.value = 100;
  pol.temperature = 2;
  pol.floor = 0.05;
  pol.enabled[0] = pol.enabled[1] = pol.enabled[2] = 1;
  pol.is_prompt[0] = pol.is_prompt[1] = 1;
  lw_feature x = {lw_fnv1a("bias"), 256};
  CHECK_INT(lw_model_policy(e->model, &pol, &x, 1, 0, ppm, NULL), LW_OK);
  CHECK_INT(ppm[1], 50000);
  CHECK_INT(ppm[0] + ppm[1] + ppm[2], 1000000);
  (void)err;
  lw_engine_free(e);
  lw_model_free(m);
}

static void holdout_installs_get_the_rules_baseline(void) {
  lw_model *m = new_model(1);
  int holdout = 0, total = 400;
  for (int i = 0; i < total; i++) {
    lw_engine *e = engine_with(CFG_HEAD ",\"holdout\":0.25}", m, 1000 + (uint64_t)i);
    lw_decision d = track(e, "a", T0);
    CHECK(d.mode == LW_MODE_HOLDOUT || d.mode == LW_MODE_MODEL);
    if (d.mode == LW_MODE_HOLDOUT) {
      holdout++;
      CHECK_CONTAINS(d.reason, "holdout baseline");
      CHECK_INT(d.p_ppm, 500000); /* the rules: two variants of weight 1 */
    }
    lw_decision again = track(e, "a", T0 + 1000); /* an install stays in its group */
    CHECK_INT(again.mode, d.mode);
    lw_engine_free(e);
  }
  CHECK(holdout > 60 && holdout < 140); /* 25% of 400, within about 4.5 sd */
  lw_model_free(m);
}

static double feature(lw_engine *e, int64_t t, const char *name) {
  lw_feature x[LW_MAX_FEATURES];
  char names[LW_MAX_FEATURES][LW_FEATURE_NAME_LEN + 1];
  int n = lw_engine_features(e, t, 0, x, names, LW_MAX_FEATURES);
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return (double)x[i].q / 256.0;
  return 0.0;
}

static void features_decay_and_describe_the_user(void) {
  lw_engine *e = engine_with(CFG, NULL, 1);
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < 3; i++) lw_engine_track(e, "b", T0, 0, &d, err, sizeof err);
  CHECK(fabs(feature(e, T0, "ev^b^d1") - log(4.0)) < 0.005);
  CHECK(fabs(feature(e, T0 + DAY, "ev^b^d1") - log(2.5)) < 0.005);   /* 3 halved by one day */
  CHECK(fabs(feature(e, T0 + DAY, "ev^b^d7") - log(1 + 3 * pow(0.5, 1 / 7.0))) < 0.005);
  CHECK(fabs(feature(e, T0 + DAY, "tenure") - log(2.0)) < 0.005);
  CHECK(fabs(feature(e, T0 + 2 * HOUR, "ev^b^age") - log(3.0)) < 0.005);
  CHECK(feature(e, T0, "sessions") > 0);
  lw_engine_track_value(e, "nps_answered", 9, NULL, T0, 0, &d, err, sizeof err);
  lw_engine_track_value(e, "feature_discovered", NAN, "gantt", T0, 0, &d, err, sizeof err);
  lw_engine_track_value(e, "feature_discovered", NAN, "gantt", T0, 0, &d, err, sizeof err);
  lw_engine_track_value(e, "feature_discovered", NAN, "export", T0, 0, &d, err, sizeof err);
  CHECK(feature(e, T0, "nps^promoter") == 1.0);
  CHECK(fabs(feature(e, T0, "features") - log(3.0)) < 0.005); /* two distinct labels */
  CHECK_INT(lw_engine_set_attribute(e, "plan", "pro", err, sizeof err), LW_OK);
  CHECK(feature(e, T0, "plan^pro") == 1.0);
  CHECK_INT(lw_engine_set_attribute(e, "plan", "platinum", err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_engine_set_attribute(e, "colour", "red", err, sizeof err), LW_ERR_INVALID);
  /* 2026-01-05 is a Monday: weekday 1; 12:00 UTC in UTC+2 is 14h */
  lw_feature x[LW_MAX_FEATURES];
  char names[LW_MAX_FEATURES][LW_FEATURE_NAME_LEN + 1];
  int n = lw_engine_features(e, T0, 120, x, names, LW_MAX_FEATURES), hour = 0, wday = 0;
  for (int i = 0; i < n; i++) {
    hour |= strcmp(names[i], "hour^14") == 0;
    wday |= strcmp(names[i], "wday^1") == 0;
    CHECK(x[i].q != 0);
  }
  CHECK(hour && wday);
  lw_engine_free(e);
}

static void decisions_log_features_model_and_segment(void) {
  lw_model *m = new_model(1);
  m->n_personas = 2;
  m->persona_dims = LW_MODEL_PERSONA_DIMS;
  for (int i = 0; i < LW_MODEL_PERSONA_DIMS; i++) {
    m->mean[i] = 0;
    m->sd[i] = 1;
    m->centroids[i] = 0;                             /* persona 0: brand new */
    m->centroids[LW_MODEL_PERSONA_DIMS + i] = 3;     /* persona 1: very active */
  }
  lw_engine *e = engine_with(CFG, m, 9);
  lw_decision d = track(e, "a", T0);
  CHECK_STR(d.segment, "persona-0");
  CHECK_INT(d.model_id, 7);
  char buf[65536];
  size_t len, n;
  tu_take_batch(e, "k", T0, 60000, buf, sizeof buf, &len, &n);
  cJSON *b = cJSON_Parse(buf);
  cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "events"), 0);
  CHECK_STR(cJSON_GetObjectItem(rec, "model")->valuestring, "m7");
  CHECK_STR(cJSON_GetObjectItem(rec, "segment")->valuestring, "persona-0");
  CHECK_STR(cJSON_GetObjectItem(rec, "mode")->valuestring, "model");
  cJSON *x = cJSON_GetObjectItem(rec, "x");
  CHECK(cJSON_GetArraySize(x) >= 5);
  int bias = 0, persona = 0;
  cJSON *pair;
  cJSON_ArrayForEach(pair, x) {
    double h = cJSON_GetArrayItem(pair, 0)->valuedouble;
    bias |= h == (double)lw_fnv1a("bias") && cJSON_GetArrayItem(pair, 1)->valuedouble == 1.0;
    persona |= h == (double)lw_fnv1a("persona^0");
  }
  CHECK(bias && persona);
  cJSON_Delete(b);
  lw_engine_free(e);
  lw_model_free(m);
}

static void explanation_names_the_top_three_contributions(void) {
  lw_model *m = new_model(1);
  for (int a = 0; a < 3; a++) {
    set_w(m, a, "bias", -20);
    set_w(m, a, "milestone^a", 60);
    set_w(m, a, "sessions", -90);
    set_w(m, a, "act^d7", 10);
  }
  lw_engine *e = engine_with(CFG, m, 2);
  lw_decision d = track(e, "a", T0);
  CHECK_INT(d.n_top, 3);
  /* ranked by size, sign kept: sessions -4.5 × ln 2 (177/256 in fixed point), the
   * milestone +3, the bias -1; act^d7 (+0.35) is left out */
  CHECK_STR(d.top[0].name, "sessions");
  CHECK(fabs(d.top[0].contribution + 4.5 * 177.0 / 256.0) < 1e-6);
  CHECK_STR(d.top[1].name, "milestone^a");
  CHECK(fabs(d.top[1].contribution - 3.0) < 1e-6);
  CHECK_STR(d.top[2].name, "bias");
  CHECK(fabs(d.top[2].contribution + 1.0) < 1e-6);
  char json[2048];
  lw_decision_to_json(&d, json, sizeof json);
  CHECK_CONTAINS(json, "\"top\":[{\"feature\":");
  lw_engine_free(e);
  lw_model_free(m);
}

static void privacy_signals_session_age_and_busy_block_prompts(void) {
  lw_engine *e = engine_with(CFG_HEAD ",\"privacy\":{\"respect_gpc\":true,\"respect_dnt\":true}}", NULL, 1);
  lw_engine_set_privacy(e, 1, 0);
  CHECK_STR(track(e, "a", T0).reason, "suppressed: Global Privacy Control");
  lw_engine_set_privacy(e, 0, 1);
  CHECK_STR(track(e, "a", T0).reason, "suppressed: Do Not Track");
  lw_engine_set_consent(e, 1, T0); /* an explicit yes outranks the signal */
  CHECK_INT(track(e, "a", T0).prompt, 1);
  lw_engine_set_busy(e, 1);
  CHECK_STR(track(e, "a", T0).reason, "suppressed: host busy");
  lw_engine_free(e);

  e = engine_with(CFG_HEAD ",\"session\":{\"min_age_s\":60}}", NULL, 1);
  CHECK_STR(track(e, "a", T0).reason, "suppressed: session 0s old, needs 60s");
  CHECK_STR(track(e, "a", T0 + 30000).reason, "suppressed: session 30s old, needs 60s");
  CHECK_INT(track(e, "a", T0 + 61000).prompt, 1);
  lw_engine_free(e);
}

static void approval_rule_holds_prompt_for_the_host(void) {
  lw_engine *e = engine_with(CFG_HEAD ",\"approval\":{\"attribute\":\"plan\",\"values\":[\"enterprise\"]}}", NULL, 1);
  char err[LW_ERRMSG_MAX];
  lw_engine_set_attribute(e, "plan", "enterprise", err, sizeof err);
  lw_decision d;
  lw_engine_track(e, "a", T0, 0, &d, err, sizeof err);
  CHECK_INT(d.prompt, 0);
  CHECK_INT(d.why, LW_WHY_APPROVAL);
  CHECK_STR(d.reason, "awaiting approval: plan enterprise");
  CHECK_INT(e->guard.shown_total, 0);
  lw_decision shown;
  CHECK_INT(lw_engine_approve(e, "0000000000000000", T0, 0, &shown, err, sizeof err), LW_ERR_NOT_FOUND);
  CHECK_INT(lw_engine_approve(e, d.id, T0 + 1000, 0, &shown, err, sizeof err), LW_OK);
  CHECK_INT(shown.prompt, 1);
  CHECK_STR(shown.id, d.id);
  CHECK_INT(e->guard.shown_total, 1);
  CHECK_INT(lw_engine_approve(e, d.id, T0 + 2000, 0, &shown, err, sizeof err), LW_ERR_NOT_FOUND); /* once */
  lw_engine_set_attribute(e, "plan", "pro", err, sizeof err);
  lw_engine_close(e, d.id, err, sizeof err);
  CHECK_INT(track(e, "a", T0 + 3000).prompt, 1); /* other plans need no approval */
  lw_engine_free(e);
}

static void referee_landing_and_conversion_are_logged_once(void) {
  lw_engine *e = engine_with(CFG, NULL, 1);
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_engine_referee_conversion(e, T0, err, sizeof err), LW_ERR_NOT_FOUND);
  CHECK_INT(lw_engine_referee_landing(e, "bad code", T0, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_engine_referee_landing(e, lw_engine_referral_code(e), T0, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_engine_referee_landing(e, "K7QX2M9PLA", T0, err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_referee_landing(e, "K7QX2M9PLA", T0 + 5, err, sizeof err), LW_OK); /* reload */
  CHECK_INT(lw_engine_referee_conversion(e, T0 + DAY, err, sizeof err), LW_OK);
  CHECK_INT(lw_engine_referee_conversion(e, T0 + 2 * DAY, err, sizeof err), LW_OK);
  CHECK_INT(lw_outbox_count(lw_engine_outbox(e)), 2);
  char buf[4096];
  size_t len, n;
  tu_take_batch(e, "k", T0, 60000, buf, sizeof buf, &len, &n);
  CHECK_CONTAINS(buf, "{\"kind\":\"landing\",\"t\":1767614400000,\"install\":\"");
  CHECK_CONTAINS(buf, "\"code\":\"K7QX2M9PLA\"}");
  CHECK_CONTAINS(buf, "{\"kind\":\"conversion\",\"t\":1767700800000");
  /* the landing survives a snapshot */
  uint8_t snap[8192];
  size_t sn = lw_engine_snapshot(e, snap, sizeof snap);
  lw_engine *r = engine_with(CFG, NULL, 2);
  CHECK_INT(lw_engine_restore(r, snap, sn, T0, err, sizeof err), LW_OK);
  CHECK_STR(r->guard.referred_by, "K7QX2M9PLA");
  lw_engine_free(r);
  lw_engine_free(e);
}

static void snapshot_keeps_features_and_attributes(void) {
  lw_engine *e = engine_with(CFG, NULL, 1);
  char err[LW_ERRMSG_MAX];
  lw_decision d;
  lw_engine_set_attribute(e, "plan", "pro", err, sizeof err);
  lw_engine_track_value(e, "nps_answered", 3, NULL, T0, 0, &d, err, sizeof err);
  lw_engine_track(e, "b", T0 + HOUR, 0, &d, err, sizeof err);
  uint8_t snap[8192];
  size_t sn = lw_engine_snapshot(e, snap, sizeof snap);
  lw_engine *r = engine_with(CFG, NULL, 2);
  CHECK_INT(lw_engine_restore(r, snap, sn, T0, err, sizeof err), LW_OK);
  lw_feature a[LW_MAX_FEATURES], b[LW_MAX_FEATURES];
  int na = lw_engine_features(e, T0 + DAY, 0, a, NULL, LW_MAX_FEATURES);
  int nb = lw_engine_features(r, T0 + DAY, 0, b, NULL, LW_MAX_FEATURES);
  CHECK_INT(na, nb);
  CHECK(memcmp(a, b, sizeof a[0] * (size_t)na) == 0);
  CHECK(feature(r, T0, "plan^pro") == 1.0 && feature(r, T0, "nps^detractor") == 1.0);
  lw_engine_free(r);
  lw_engine_free(e);
}

/* The model the shared cases use (tests/cases/models/cases.lwm), for the default config's
 * variants. Regenerate with: build/native/tests/unit/test_model --write-case-model FILE */
static int write_case_model(const char *path) {
  lw_model *m = new_model(1);
  strcpy(m->action_ids[0], "credit_10");
  strcpy(m->action_ids[1], "month_free");
  m->model_id = 42;
  static const char *const feats[] = {"bias", "milestone^project_completed", "nps^promoter", "nps^detractor",
                                      "sessions", "act^d7", "plan^team", "hour^13", "features", "shown"};
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < 10; i++) set_w(m, a, feats[i], (int)((i * 37 + a * 101) % 127) - 63);
  m->n_personas = 3;
  m->persona_dims = LW_MODEL_PERSONA_DIMS;
  for (int i = 0; i < LW_MODEL_PERSONA_DIMS; i++) {
    m->mean[i] = 1.0f;
    m->sd[i] = 0.5f;
    for (int k = 0; k < 3; k++) m->centroids[k * LW_MODEL_PERSONA_DIMS + i] = (float)(k - 1);
  }
  m->n_segments = 1;
  strcpy(m->segment_names[0], "plan^free");
  m->segment_offsets[0] = 0.5f;
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  FILE *f = fopen(path, "wb");
  int ok = f && lw_model_write(m, &buf, &len, err, sizeof err) == LW_OK;
  if (ok) {
    ok = fwrite(buf, 1, len, f) == len;
    free(buf);
  }
  if (f) fclose(f);
  lw_model_free(m);
  return ok ? 0 : 1;
}

/* Format 4 carries what the model predicts: value labels with their range round-trip, a range
 * that is not finite with lo < hi is refused, and a format 3 file (the same bytes without the
 * label kind) still loads, priced as a share-label model. */
static void a_model_says_what_its_labels_are_and_format_3_still_reads(void) {
  lw_model *m = new_model(1);
  set_w(m, 0, "bias", 20);
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  m->value_labels = 1;
  m->reward_lo = -15.0f;
  m->reward_hi = 160.0f;
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  CHECK_INT(buf[4], 4);
  lw_model *r = NULL;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_OK);
  CHECK(r && r->value_labels == 1 && r->reward_lo == -15.0f && r->reward_hi == 160.0f);
  CHECK(r && lw_model_same_decisions(m, r));
  lw_model_free(r);
  r = NULL;
  /* the range sits just before the metadata: u8 1, f32 lo, f32 hi, u16 length, metadata, crc */
  size_t meta = strlen(m->meta_json), at = len - 4 - meta - 2 - 8;
  CHECK_INT(buf[at - 1], 1);
  float bad = 200.0f; /* lo above hi */
  memcpy(buf + at, &bad, 4);
  uint32_t crc = lw_crc32(0, buf, len - 4);
  for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "label range");
  free(buf);
  /* a share-label model written as format 3: drop its u8 0 label kind */
  m->value_labels = 0;
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  at = len - 4 - meta - 2 - 1;
  CHECK_INT(buf[at], 0);
  memmove(buf + at, buf + at + 1, len - at - 1);
  len--;
  buf[4] = 3;
  crc = lw_crc32(0, buf, len - 4);
  for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
  r = NULL;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_OK);
  CHECK(r && r->value_labels == 0 && lw_model_same_decisions(m, r));
  lw_model_free(r);
  free(buf);
  lw_model_free(m);
}

/* Format version 2 records how many logged decisions each action was trained on; a version 1
 * file (the shipped cases model) still loads, and says it does not know (-1). */
static void a_model_says_how_much_data_each_action_had(void) {
  lw_model *m = new_model(1);
  m->support[0] = 1234;
  m->support[1] = 0;
  m->support[2] = -1;
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  CHECK_INT(buf[4], LW_MODEL_FORMAT_VERSION); /* format 3 keeps 2's support */
  lw_model *r = NULL;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_OK);
  if (r) {
    CHECK(lw_model_support(r, 0) == 1234);
    CHECK(lw_model_support(r, 1) == 0);
    CHECK(lw_model_support(r, 2) == -1);
    CHECK(lw_model_support(r, 3) == -1);
    CHECK(lw_model_same_decisions(m, r));
  }
  lw_model_free(r);
  free(buf);
  size_t n;
  char *v1 = tu_read_file(LW_SOURCE_DIR "/tests/cases/models/cases.lwm", &n);
  CHECK(v1 && n > 6 && v1[4] == 1);
  r = NULL;
  CHECK_INT(lw_model_load((const uint8_t *)v1, n, &r, err, sizeof err), LW_OK);
  if (r) CHECK(lw_model_support(r, 0) == -1);
  lw_model_free(r);
  free(v1);
  lw_model_free(m);
}

/* A float weight far below the largest one survives the file: version 1's one int8 scale
 * rounded it to 0; version 2 stores it as it is. */
static void small_weights_beside_large_ones_survive_the_file(void) {
  lw_model *m = new_model(1);
  m->scale = 1.0f;
  m->weights[lw_model_index(m, 0, lw_fnv1a("bias"))] = 3.0f;
  m->weights[lw_model_index(m, 0, lw_fnv1a("amount"))] = 1.5e-4f;
  uint8_t *buf;
  size_t len;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_model_write(m, &buf, &len, err, sizeof err), LW_OK);
  lw_model *r = NULL;
  CHECK_INT(lw_model_load(buf, len, &r, err, sizeof err), LW_OK);
  lw_feature x[2] = {{lw_fnv1a("bias"), LW_FX_ONE}, {lw_fnv1a("amount"), lw_fx(5000)}};
  if (r) CHECK(fabs(lw_model_score(r, 0, x, 2, 0) - (3.0 + 1.5e-4 * 5000)) < 1e-5);
  CHECK(len < 200); /* sparse: two non-zero weights, not a 2^14 table */
  lw_model_free(r);
  free(buf);
  lw_model_free(m);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write-case-model") == 0) return write_case_model(argv[2]);
  RUN(math_matches_libm_closely);
  RUN(model_file_round_trips_and_damage_is_refused);
  RUN(a_newer_model_is_refused_for_its_version_before_its_checksum);
  RUN(a_model_says_what_its_labels_are_and_format_3_still_reads);
  RUN(a_model_says_how_much_data_each_action_had);
  RUN(small_weights_beside_large_ones_survive_the_file);
  RUN(bad_model_is_rejected_and_rules_keep_deciding);
  RUN(model_mode_favours_the_cheapest_incentive_that_works);
  RUN(actions_without_enough_data_only_get_the_floor);
  RUN(holdout_installs_get_the_rules_baseline);
  RUN(features_decay_and_describe_the_user);
  RUN(decisions_log_features_model_and_segment);
  RUN(explanation_names_the_top_three_contributions);
  RUN(privacy_signals_session_age_and_busy_block_prompts);
  RUN(approval_rule_holds_prompt_for_the_host);
  RUN(referee_landing_and_conversion_are_logged_once);
  RUN(snapshot_keeps_features_and_attributes);
  return check_failures ? 1 : 0;
}
