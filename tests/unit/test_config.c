/* Config parsing: the shipped default parses; bad configs are refused with the JSON
 * path and the problem. */
#include <stdlib.h>

#include "check.h"
#include "testutil.h"

#define SHARE "\"share\":{\"url\":\"https://x.example/?r={code}\"}"
#define EVENTS "\"events\":[\"a\",\"b\"]"
#define MS "\"milestones\":[{\"event\":\"a\",\"after\":2}]"
#define VAR(id, extra)                                                                  \
  "{\"id\":\"" id "\",\"title\":\"T\",\"message\":\"M\",\"referrer_reward\":\"R\","   \
  "\"referee_reward\":\"E\",\"cost\":5" extra "}"
#define VARS "\"variants\":[" VAR("v1", "") "]"
#define MINIMAL "{\"version\":1," SHARE "," EVENTS "," MS "," VARS

static void default_config_parses_with_its_values(void) {
  lw_config cfg = tu_default_config();
  CHECK_INT(cfg.version, 1);
  CHECK_INT(cfg.n_events, 5);
  CHECK_STR(cfg.events[0], "project_completed");
  CHECK_INT(cfg.n_milestones, 2);
  CHECK_INT(cfg.milestones[0].after, 3);
  CHECK_INT(cfg.milestones[0].every, 5);
  CHECK_INT(cfg.n_variants, 2);
  CHECK_STR(cfg.variants[1].id, "month_free");
  CHECK(cfg.variants[1].cost == 25.0);
  CHECK_INT(cfg.quiet_start_hour, 22);
  CHECK_INT(cfg.quiet_end_hour, 7);
}

static void minimal_config_gets_documented_defaults(void) {
  lw_config cfg = tu_config(MINIMAL "}");
  CHECK_INT(cfg.cap_max_prompts, 2);
  CHECK_INT(cfg.cap_window_days, 30);
  CHECK_INT(cfg.cap_min_gap_hours, 24);
  CHECK_INT(cfg.cooldown_days, 7);
  CHECK_INT(cfg.cooldown_growth, 2);
  CHECK_INT(cfg.cooldown_max_days, 90);
  CHECK_INT(cfg.quiet_start_hour, -1);
  CHECK_INT(cfg.consent_required, 0);
  CHECK_INT(cfg.consent_default, 1);
  CHECK_INT(cfg.variants[0].weight, 1);
  CHECK_INT(cfg.not_now_weight, 0);
}

static const struct {
  const char *json;
  const char *message;
} bad[] = {
    {"{\"version\":1,", "(top level): not valid JSON near line 1, column 14"},
    {"[1,2]", "(top level): expected an object, got an array"},
    {"{\"version\":1," SHARE "," MS "," VARS "}", "events: is required"},
    {MINIMAL ",\"evnets\":[]}", "evnets: unknown field (expected one of: version program"},
    {"{\"version\":1," SHARE "," EVENTS ",\"milestones\":[{\"event\":\"a\",\"after\":-3}]," VARS "}",
     "milestones[0].after: expected a positive integer, got -3"},
    {"{\"version\":1," SHARE "," EVENTS ",\"milestones\":[{\"event\":\"a\",\"after\":2.5}]," VARS "}",
     "milestones[0].after: expected a positive integer, got 2.5"},
    {"{\"version\":1," SHARE "," EVENTS
     ",\"milestones\":[{\"event\":\"a\",\"after\":1},{\"event\":\"zzz\",\"after\":1}]," VARS "}",
     "milestones[1].event: unknown event 'zzz' (list it in events)"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[{\"id\":\"v1\",\"title\":\"T\","
     "\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":\"5\"}]}",
     "variants[0].cost: expected a number from 0 to 1000000000, got a string"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("v1", "") "," VAR("v1", "") "]}",
     "variants[1].id: variant id must be unique"},
    {"{\"version\":1,\"share\":{\"url\":\"https://x.example/\"}," EVENTS "," MS "," VARS "}",
     "share.url: must contain {code}"},
    {MINIMAL ",\"quiet_hours\":{\"start\":25,\"end\":7}}",
     "quiet_hours.start: expected an integer from 0 to 23, got 25"},
    {MINIMAL ",\"quiet_hours\":{\"start\":7,\"end\":7}}", "quiet_hours: start and end must differ"},
    {"{\"version\":2," SHARE "," EVENTS "," MS "," VARS "}",
     "version: expected an integer from 1 to 1, got 2"},
    {"{\"version\":1," SHARE ",\"events\":[\"a\",\"a\"]," MS "," VARS "}", "events[1]: event listed twice"},
    {"{\"version\":1," SHARE ",\"events\":[\"a\",\"has space\"]," MS "," VARS "}",
     "events[1]: expected a name of 1-32 letters"},
    {MINIMAL ",\"caps\":{\"max_prompts\":0}}", "caps.max_prompts: expected an integer from 1 to 1000, got 0"},
    {MINIMAL ",\"consent\":{\"required\":\"yes\"}}", "consent.required: expected true or false, got a string"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[]}", "variants: expected 1 to 8 entries, got 0"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("v1", ",\"weight\":0") "]}",
     "variants: at least one variant needs a weight above 0"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[{\"id\":\"v1\",\"title\":\"\xff\","
     "\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":5}]}",
     "variants[0].title: text is not valid UTF-8"},
    /* F4 90 80 80 would be U+110000, past the last code point: the wire refuses it too */
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[{\"id\":\"v1\",\"title\":\"\xf4\x90\x80\x80\","
     "\"message\":\"M\",\"referrer_reward\":\"R\",\"referee_reward\":\"E\",\"cost\":5}]}",
     "variants[0].title: text is not valid UTF-8"},
    {"{\"version\":1,\"version\":1," SHARE "," EVENTS "," MS "," VARS "}", "version: field appears twice"},
    {MINIMAL ",\"cooldown\":{\"days\":30,\"max_days\":10}}", "cooldown.max_days: must be at least cooldown.days"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("v1", ",\"enabled\":false") "]}",
     "variants: at least one variant needs a weight above 0"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("v1", ",\"enabled\":0") "]}",
     "variants[0].enabled: expected true or false, got 0"},
    {MINIMAL ",\"explore\":{\"not_now\":0.7}}", "explore.not_now: expected a number from 0 to 0.5, got 0.7"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("none", "") "]}",
     "variants[0].id: variant id must be unique and not 'none' or 'not_now'"},
    {MINIMAL ",\"attributes\":{\"plan\":[\"free\",\"pro\"]},\"approval\":{\"attribute\":\"plan\","
     "\"values\":[\"pro\"],\"send\":[\"plan\",\"seats\"]}}",
     "approval.send[1]: unknown attribute 'seats' (list it in attributes)"},
    {MINIMAL ",\"attributes\":{\"plan\":[\"free\",\"pro\"]},\"approval\":{\"attribute\":\"plan\","
     "\"values\":[\"pro\"],\"send\":[\"plan\",\"plan\"]}}",
     "approval.send[1]: attribute listed twice"},
    {MINIMAL ",\"attributes\":{\"plan\":[\"free\",\"pro\"]},\"approval\":{\"attribute\":\"plan\","
     "\"values\":[\"pro\"],\"send\":\"plan\"}}",
     "approval.send: expected an array of attribute names, got a string"},
    {MINIMAL ",\"channels\":[\"copy\",\"fax\"]}",
     "channels[1]: expected one of: native copy email linkedin x whatsapp, got 'fax'"},
    {MINIMAL ",\"channels\":[\"copy\",3]}", "channels[1]: expected one of: native copy email linkedin x whatsapp, got a number"},
    {MINIMAL ",\"channels\":[\"x\",\"email\",\"x\"]}", "channels[2]: channel listed twice"},
    {MINIMAL ",\"channels\":[]}", "channels: expected 1 to 6 entries, got 0"},
    {MINIMAL ",\"channels\":\"copy\"}", "channels: expected an array of channel names, got a string"},
    {MINIMAL ",\"preview\":{\"allow_url\":1}}", "preview.allow_url: expected true or false, got 1"},
    {MINIMAL ",\"preview\":{\"allow\":true}}", "preview.allow: unknown field (expected one of: allow_url)"},
};

static void bad_configs_name_path_and_problem(void) {
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lw_config cfg;
    char err[LW_ERRMSG_MAX] = "";
    lw_status st = lw_config_parse(bad[i].json, strlen(bad[i].json), &cfg, err, sizeof err);
    if (st != LW_ERR_INVALID) fprintf(stderr, "case %zu was accepted\n", i);
    CHECK_INT(st, LW_ERR_INVALID);
    CHECK_CONTAINS(err, bad[i].message);
  }
}

static void error_message_is_truncated_not_overflowed(void) {
  lw_config cfg;
  char err[12];
  const char *json = MINIMAL ",\"evnets\":[]}";
  CHECK_INT(lw_config_parse(json, strlen(json), &cfg, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(strlen(err), sizeof err - 1);
}

static void input_need_not_be_nul_terminated(void) {
  const char *json = MINIMAL "}garbage-after-the-length";
  size_t len = strlen(MINIMAL "}");
  lw_config cfg;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_config_parse(json, len, &cfg, err, sizeof err), LW_OK);
}

/* ---- the compiled form (.lwc) ----------------------------------------------------- */

static size_t compile(const lw_config *cfg, uint8_t *buf, size_t cap) {
  size_t n = lw_config_write(cfg, buf, cap);
  CHECK(n > 12 && n <= cap);
  return n;
}

/* The config without its texts: what the engine part of a compiled file carries. */
static lw_config engine_part(lw_config cfg) {
  memset(cfg.program, 0, sizeof cfg.program);
  memset(cfg.share_url, 0, sizeof cfg.share_url);
  memset(cfg.share_title, 0, sizeof cfg.share_title);
  memset(cfg.share_text, 0, sizeof cfg.share_text);
  for (int i = 0; i < LW_MAX_VARIANTS; i++) {
    lw_variant *v = &cfg.variants[i];
    memset(v->title, 0, sizeof v->title);
    memset(v->message, 0, sizeof v->message);
    memset(v->referrer_reward, 0, sizeof v->referrer_reward);
    memset(v->referee_reward, 0, sizeof v->referee_reward);
  }
  for (int i = 0; i < LW_MAX_LADDER; i++) memset(cfg.ladder[i].reward, 0, sizeof cfg.ladder[i].reward);
  /* channels and preview are the display part's too: a read file has none */
  cfg.n_channels = 0;
  memset(cfg.channels, 0, sizeof cfg.channels);
  cfg.preview_url = 0;
  return cfg;
}

/* The display part of a compiled file (after the engine part, before the checksum). */
static void display_part(const uint8_t *buf, size_t n, char *out, size_t cap) {
  size_t at = 12 + (buf[8] | buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24);
  CHECK(at < n - 4 && n - 4 - at < cap);
  memcpy(out, buf + at, n - 4 - at);
  out[n - 4 - at] = '\0';
}

static void compiled_config_reads_back_identical(void) {
  lw_config cfg = tu_default_config(), back;
  uint8_t buf[8192];
  CHECK_INT(lw_config_write(&cfg, NULL, 0), compile(&cfg, buf, sizeof buf)); /* cap 0 measures */
  size_t n = compile(&cfg, buf, sizeof buf);
  char err[LW_ERRMSG_MAX] = "";
  CHECK_INT(lw_config_read(buf, n, &back, err, sizeof err), LW_OK);
  CHECK_STR(err, "");
  lw_config want = engine_part(cfg);
  CHECK(memcmp(&want, &back, sizeof cfg) == 0);
  /* Smaller than the JSON it came from. */
  size_t json_len;
  char *json = tu_read_file(tu_path("models/referral.json"), &json_len);
  CHECK(n < json_len);
  free(json);
  lw_config min = tu_config(MINIMAL "}");
  n = compile(&min, buf, sizeof buf);
  CHECK_INT(lw_config_read(buf, n, &back, err, sizeof err), LW_OK);
  want = engine_part(min);
  CHECK(memcmp(&want, &back, sizeof min) == 0);
}

static void damaged_compiled_config_is_refused_whatever_the_byte(void) {
  lw_config cfg = tu_default_config(), back;
  memset(&back, 0x5a, sizeof back);
  lw_config untouched = back;
  uint8_t buf[8192], spoilt[8192];
  size_t n = compile(&cfg, buf, sizeof buf);
  char err[LW_ERRMSG_MAX];
  for (size_t i = 0; i < n; i++) {
    memcpy(spoilt, buf, n);
    spoilt[i] ^= 0x20;
    lw_status st = lw_config_read(spoilt, n, &back, err, sizeof err);
    if (st == LW_OK) fprintf(stderr, "flip at byte %zu accepted\n", i);
    CHECK(st != LW_OK);
    CHECK(err[0] != '\0');
  }
  for (size_t len = 0; len < n; len++) CHECK(lw_config_read(buf, len, &back, err, sizeof err) != LW_OK);
  CHECK(memcmp(&back, &untouched, sizeof back) == 0); /* nothing stored on failure */

  memcpy(spoilt, buf, n);
  memcpy(spoilt, "LWMD", 4);
  CHECK_INT(lw_config_read(spoilt, n, &back, err, sizeof err), LW_ERR_INVALID);
  CHECK_CONTAINS(err, "not a compiled Loopwise config");
  memcpy(spoilt, buf, n);
  spoilt[4] = 4; /* one past LWC_VERSION 3 */
  CHECK_INT(lw_config_read(spoilt, n, &back, err, sizeof err), LW_ERR_VERSION);
  CHECK_CONTAINS(err, "version");
  memcpy(spoilt, buf, n);
  spoilt[n / 2] ^= 1;
  CHECK_INT(lw_config_read(spoilt, n, &back, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "checksum");
}

/* A file with a good checksum but values no checked JSON could give (hand-made, or from a
 * buggy writer): whatever the engine's safety depends on is refused, naming the field. */
static void check_spoiled(const lw_config *cfg, const char *field) {
  uint8_t buf[8192];
  size_t n = compile(cfg, buf, sizeof buf);
  lw_config back;
  char err[LW_ERRMSG_MAX] = "", want[LW_ERRMSG_MAX];
  snprintf(want, sizeof want, "compiled config is invalid (%s): check and recompile it with loopwise-config", field);
  CHECK_INT(lw_config_read(buf, n, &back, err, sizeof err), LW_ERR_INVALID);
  CHECK_STR(err, want);
}

static void compiled_config_refuses_what_the_engine_cannot_run(void) {
  const lw_config good = tu_default_config();
  lw_config c = good;
  c.cap_max_prompts = 5000;
  check_spoiled(&c, "max_prompts");
  c = good;
  c.explore_temperature = 0;
  check_spoiled(&c, "temperature");
  c = good;
  c.holdout = 0.0 / 0.0; /* NaN */
  check_spoiled(&c, "holdout");
  c = good;
  c.consent_default = 7;
  check_spoiled(&c, "default");
  c = good;
  c.milestones[1].event = 5;
  check_spoiled(&c, "event");
  c = good;
  c.milestones[0].after = 0;
  check_spoiled(&c, "after");
  c = good;
  c.variants[1].cost = -1;
  check_spoiled(&c, "cost");
  c = good;
  c.quiet_end_hour = -1;
  check_spoiled(&c, "quiet_hours");
  c = good;
  c.quiet_start_hour = 24;
  check_spoiled(&c, "start");
  c = good;
  c.approval_attr = 3;
  check_spoiled(&c, "attribute");
  c = good;
  c.approval_send = 1u << c.n_attributes; /* an attribute the config does not have */
  check_spoiled(&c, "approval.send");
  c = good;
  c.n_variants = 0;
  check_spoiled(&c, "variants");
  c = good;
  c.variants[0].weight = c.variants[1].weight = 0;
  check_spoiled(&c, "variants");
  c = good;
  c.ladder[1].referrals = 2000000;
  check_spoiled(&c, "referrals");
  /* Counts beyond the arrays never get stored: the walker marks the file malformed. */
  c = good;
  c.n_events = LW_MAX_EVENTS + 1;
  uint8_t buf[16384];
  size_t n = lw_config_write(&c, buf, sizeof buf);
  char err[LW_ERRMSG_MAX];
  lw_config back;
  CHECK_INT(lw_config_read(buf, n, &back, err, sizeof err), LW_ERR_CORRUPT);
  CHECK_CONTAINS(err, "malformed");
}

/* channels and preview.allow_url: optional, with documented defaults, into the display part. */
static void channels_and_url_preview_are_optional_and_reach_the_display_part(void) {
  lw_config cfg = tu_config(MINIMAL "}");
  CHECK_INT(cfg.n_channels, LW_CHANNEL_COUNT);
  for (int i = 0; i < LW_CHANNEL_COUNT; i++) CHECK_INT(cfg.channels[i], i);
  CHECK_INT(cfg.preview_url, 0);
  cfg = tu_config(MINIMAL ",\"channels\":[\"whatsapp\",\"copy\"],\"preview\":{\"allow_url\":true}}");
  CHECK_INT(cfg.n_channels, 2);
  CHECK_INT(cfg.channels[0], LW_CHANNEL_WHATSAPP);
  CHECK_INT(cfg.channels[1], LW_CHANNEL_COPY);
  CHECK_INT(cfg.preview_url, 1);
  uint8_t bin[16384];
  char buf[8192];
  display_part(bin, compile(&cfg, bin, sizeof bin), buf, sizeof buf);
  CHECK_CONTAINS(buf, "\"channels\":[\"whatsapp\",\"copy\"],\"preview\":true,");
}

static void display_part_carries_what_the_widget_shows(void) {
  lw_config cfg = tu_default_config();
  uint8_t bin[16384];
  char buf[8192];
  display_part(bin, compile(&cfg, bin, sizeof bin), buf, sizeof buf);
  CHECK_CONTAINS(buf, "{\"share\":{\"url\":\"https://acme.example/join?ref={code}\",\"title\":\"Try Acme Projects\"");
  CHECK_CONTAINS(buf, "},{\"id\":\"month_free\",\"title\":\"Share Acme, get a month free\"");
  CHECK_CONTAINS(buf, "{\"id\":\"month_free\",\"title\""); /* for Loopwise.preview(id) */
  CHECK_CONTAINS(buf, "\"channels\":[\"native\",\"copy\",\"email\",\"linkedin\",\"x\",\"whatsapp\"]");
  CHECK(strstr(buf, "\"preview\"") == NULL); /* ?loopwise-preview is refused unless allowed */
  CHECK_CONTAINS(buf, "\"ladder\":[{\"referrals\":0,\"reward\":\"$10 credit for each friend who joins\"}");
  CHECK_CONTAINS(buf, "\"model\":{\"refresh_hours\":24}}");
  strcpy(cfg.variants[0].title, "Say \"hi\"\n");
  display_part(bin, compile(&cfg, bin, sizeof bin), buf, sizeof buf);
  CHECK_CONTAINS(buf, "\"title\":\"Say \\\"hi\\\"\\u000a\"");
  cfg.n_ladder = 0;
  display_part(bin, compile(&cfg, bin, sizeof bin), buf, sizeof buf);
  CHECK(strstr(buf, "ladder") == NULL);
  /* The longest texts everywhere, each all quotes (escaped to two bytes each) still fit. */
  memset(cfg.share_url, '"', LW_URL_LEN);
  for (int i = 0; i < cfg.n_variants; i++) memset(cfg.variants[i].message, 1, LW_TEXT_LEN);
  static uint8_t big[65536];
  size_t n = lw_config_write(&cfg, big, sizeof big);
  CHECK(n > 2 * (LW_URL_LEN) + 6 * (LW_TEXT_LEN) && n <= sizeof big);
}

/* Issue 10's fields: optional, their defaults keeping what a config meant before; a variant
 * switched off compiles to weight 0; a version 1 compiled file (written before them) reads
 * with those defaults. */
static void exploration_and_switch_off_fields_are_optional_and_compile(void) {
  lw_config cfg = tu_config("{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("v1", "") ","
                            VAR("v2", ",\"weight\":5,\"enabled\":false") "," VAR("v3", ",\"enabled\":true") "],"
                            "\"explore\":{\"relative_temperature\":0.3,\"not_now\":0.05,\"new_variant\":0.1}}");
  CHECK_INT(cfg.variants[0].weight, 1);
  CHECK_INT(cfg.variants[1].weight, 0);
  CHECK_INT(cfg.variants[2].weight, 1);
  CHECK(cfg.explore_relative == 0.3 && cfg.explore_not_now == 0.05 && cfg.explore_new_variant == 0.1);
  uint8_t buf[4096];
  size_t n = lw_config_write(&cfg, buf, sizeof buf);
  CHECK_INT(buf[4], 3); /* .lwc version 3 (approval.send) */
  lw_config back;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_config_read(buf, n, &back, err, sizeof err), LW_OK);
  CHECK(back.explore_relative == 0.3 && back.explore_not_now == 0.05 && back.explore_new_variant == 0.1);
  CHECK_INT(back.variants[1].weight, 0);

  lw_config dflt = tu_config(MINIMAL "}");
  CHECK(dflt.explore_relative == 0 && dflt.explore_not_now == 0 && dflt.explore_new_variant == 0);
  CHECK(dflt.explore_temperature == 5 && dflt.explore_floor == 0.02);

  size_t len;
  char *v1 = tu_read_file(tu_path("tests/cases/models/referral-v1.lwc"), &len);
  CHECK(v1 && v1[4] == 1);
  CHECK_INT(lw_config_read((const uint8_t *)v1, len, &back, err, sizeof err), LW_OK);
  CHECK(back.explore_temperature == 10 && back.explore_floor == 0.03 && back.explore_relative == 0 &&
        back.explore_not_now == 0 && back.explore_new_variant == 0);
  CHECK_INT(back.n_variants, 2);
  free(v1);
}

/* loopwise-config check reports every problem at once, each at its JSON path, and a problem
 * is not reported again by the checks that follow from it. */
static void check_all_reports_every_error_with_its_path(void) {
  const char *json = "{\"version\":1,\"share\":{\"url\":\"http://x.example/?r={code}\"},\"events\":[\"a\",\"has space\"],"
                     "\"milestones\":[{\"event\":\"a\",\"after\":0},{\"event\":\"zzz\",\"after\":1}],"
                     "\"variants\":[" VAR("v1", ",\"weight\":\"3\"") "," VAR("v2", ",\"enabled\":1") "],"
                     "\"caps\":{\"max_prompts\":0,\"colour\":1},\"evnets\":[]}";
  lw_config cfg;
  char errs[4096];
  int n = -1;
  CHECK_INT(lw_config_check_all(json, strlen(json), &cfg, errs, sizeof errs, &n), LW_ERR_INVALID);
  static const char *const want[] = {
      "evnets: unknown field",
      "caps.max_prompts: expected an integer from 1 to 1000, got 0",
      "caps.colour: unknown field",
      "events[1]: expected a name of 1-32 letters, digits, '_' or '-'",
      "milestones[0].after: expected a positive integer, got 0",
      "milestones[1].event: unknown event 'zzz' (list it in events)",
      "variants[0].weight: expected an integer from 0 to 1000000, got a string",
      "variants[1].enabled: expected true or false, got 1",
      "share.url: must be an https:// link (http:// only on localhost or 127.0.0.1): it is put into links"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK_CONTAINS(errs, want[i]);
  CHECK_INT(n, (int)(sizeof want / sizeof want[0]));
  int lines = 1;
  for (const char *p = errs; *p; p++) lines += *p == '\n';
  CHECK_INT(lines, n);
  /* the first-error form is unchanged: the first of them only */
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_config_parse(json, strlen(json), &cfg, err, sizeof err), LW_ERR_INVALID);
  CHECK(strchr(err, '\n') == NULL);
  CHECK_CONTAINS(errs, err);
  /* an editor's "$schema" is allowed (a string), and nothing else unknown */
  const char *with_schema = "{\"$schema\":\"../web/config.schema.json\"," SHARE "," EVENTS "," MS "," VARS ",\"version\":1}";
  CHECK_INT(lw_config_parse(with_schema, strlen(with_schema), &cfg, err, sizeof err), LW_OK);
  const char *bad_schema = "{\"$schema\":1," SHARE "," EVENTS "," MS "," VARS ",\"version\":1}";
  CHECK_INT(lw_config_parse(bad_schema, strlen(bad_schema), &cfg, err, sizeof err), LW_ERR_INVALID);
  CHECK_STR(err, "$schema: expected a string, got 1");
  /* a good config: no error */
  const char *good = MINIMAL "}";
  CHECK_INT(lw_config_check_all(good, strlen(good), &cfg, errs, sizeof errs, &n), LW_OK);
  CHECK_INT(n, 0);
}

static void share_url_must_be_https_or_local_http(void) {
  static const struct {
    const char *url;
    int ok;
  } urls[] = {{"https://x.example/?r={code}", 1},       {"http://localhost:8000/?r={code}", 1},
              {"http://127.0.0.1/r/{code}", 1},         {"http://localhost?r={code}", 1},
              {"http://x.example/?r={code}", 0},        {"javascript:alert(1)//{code}", 0},
              {"http://localhost.evil.example/{code}", 0}, {"https:///{code}", 0},
              {"//x.example/?r={code}", 0},             {"HTTP://x.example/{code}", 0},
              {"data:text/html,{code}", 0},             {"http://127.0.0.1.evil/{code}", 0}};
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    char json[1024], err[LW_ERRMSG_MAX];
    snprintf(json, sizeof json, "{\"version\":1,\"share\":{\"url\":\"%s\"}," EVENTS "," MS "," VARS "}", urls[i].url);
    lw_config cfg;
    lw_status st = lw_config_parse(json, strlen(json), &cfg, err, sizeof err);
    if ((st == LW_OK) != urls[i].ok) fprintf(stderr, "share.url %s: %s\n", urls[i].url, st == LW_OK ? "accepted" : err);
    CHECK((st == LW_OK) == urls[i].ok);
    if (!urls[i].ok) CHECK_CONTAINS(err, "share.url: must be an https:// link");
  }
}

/* The retained-value reward settings (reward.*): optional, their documented defaults, kept by
 * the compiled form, refused out of range naming the field; a version 1 file reads the defaults. */
static void reward_settings_have_defaults_compile_and_refuse_bad_values(void) {
  lw_config d = tu_config(MINIMAL "}");
  CHECK_INT(d.reward_attribution_days, 45);
  CHECK(d.reward_value_per_conversion == 10 && d.reward_value_per_retained == 40);
  CHECK(d.reward_value_per_retained_90 == 0 && d.reward_churn_cost == 0 && d.reward_revenue_weight == 0);
  CHECK(d.reward_value_per_share == 5);
  lw_config cfg = tu_config(MINIMAL ",\"reward\":{\"attribution_days\":120,\"value_per_retained_90\":30,"
                            "\"revenue_weight\":0.5,\"value_per_share\":2}}");
  CHECK_INT(cfg.reward_attribution_days, 120);
  CHECK(cfg.reward_value_per_retained_90 == 30 && cfg.reward_revenue_weight == 0.5 && cfg.reward_value_per_share == 2);
  uint8_t buf[4096];
  size_t n = lw_config_write(&cfg, buf, sizeof buf);
  lw_config back;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_config_read(buf, n, &back, err, sizeof err), LW_OK);
  CHECK_INT(back.reward_attribution_days, 120);
  CHECK(back.reward_revenue_weight == 0.5 && back.reward_value_per_share == 2);
  const char *body = MINIMAL ",\"reward\":{\"attribution_days\":0}}";
  CHECK_INT(lw_config_parse(body, strlen(body), &cfg, err, sizeof err), LW_ERR_INVALID);
  CHECK(strstr(err, "reward.attribution_days") != NULL);
  body = MINIMAL ",\"reward\":{\"value_per_share\":-1}}";
  CHECK_INT(lw_config_parse(body, strlen(body), &cfg, err, sizeof err), LW_ERR_INVALID);
  CHECK(strstr(err, "reward.value_per_share") != NULL);
  size_t len;
  char *v1 = tu_read_file(tu_path("tests/cases/models/referral-v1.lwc"), &len);
  CHECK(v1 != NULL);
  if (v1) {
    CHECK_INT(lw_config_read((const uint8_t *)v1, len, &back, err, sizeof err), LW_OK);
    CHECK_INT(back.reward_attribution_days, 45);
    CHECK(back.reward_value_per_share == 5);
  }
  free(v1);
}

/* ---- the prompt's theme, placement and locales (issue 14) ---------------------------- */

/* Every widget value is checked by its table, and the message names the JSON path. */
static void theme_placement_and_locale_values_are_checked_with_their_path(void) {
  static const struct {
    const char *json, *message;
  } cases[] = {
      {MINIMAL ",\"theme\":{\"accent\":\"red\"}}", "theme.accent: expected a colour #rgb or #rrggbb"},
      {MINIMAL ",\"theme\":{\"background\":\"#12345\"}}", "theme.background: expected a colour #rgb or #rrggbb"},
      {MINIMAL ",\"theme\":{\"dark_text\":5}}", "theme.dark_text: expected a colour #rgb or #rrggbb, got 5"},
      {MINIMAL ",\"theme\":{\"radius\":40}}", "theme.radius: expected an integer from 0 to 32, got 40"},
      {MINIMAL ",\"theme\":{\"font\":\"x;background:url(a)\"}}", "theme.font: expected a CSS font list or selector"},
      {MINIMAL ",\"theme\":{\"font\":\"\"}}", "theme.font: expected a CSS font list or selector"},
      {MINIMAL ",\"theme\":{\"logo\":\"javascript:alert(1)\"}}", "theme.logo: expected an https:// link"},
      {MINIMAL ",\"theme\":{\"colour\":\"#fff\"}}", "theme.colour: unknown field (expected one of: accent"},
      {MINIMAL ",\"theme\":[]}", "theme: expected an object, got an array"},
      {MINIMAL ",\"placement\":{\"type\":\"popup\"}}", "placement.type: expected one of: modal corner inline"},
      {MINIMAL ",\"placement\":{\"type\":\"inline\",\"target\":\"#a{}\"}}", "placement.target: expected a CSS"},
      {MINIMAL ",\"locales\":{\"default\":\"english\"}}", "locales.default: expected a language tag"},
      {MINIMAL ",\"locales\":{\"fr_FR\":{}}}", "locales.fr_FR: expected a language tag such as fr or pt-BR"},
      {MINIMAL ",\"locales\":{\"fr\":{\"variants\":{\"v9\":{\"title\":\"T\"}}}}}",
       "locales.fr.variants.v9: unknown variant 'v9' (list it in variants)"},
      {MINIMAL ",\"locales\":{\"fr\":{\"variants\":{\"v1\":{\"message\":\"Ils ont {reward}\"}}}}}",
       "locales.fr.variants.v1.message: unknown placeholder {reward} (expected {referrer_reward} or {referee_reward})"},
      {MINIMAL ",\"locales\":{\"fr\":{\"variants\":{\"v1\":{\"titel\":\"T\"}}}}}",
       "locales.fr.variants.v1.titel: unknown field (expected one of: title message"},
      {MINIMAL ",\"locales\":{\"de\":{\"labels\":{\"share\":\"\"}}}}", "locales.de.labels.share: expected a non-empty text"},
      {MINIMAL ",\"locales\":{\"de\":{\"labels\":{\"shar\":\"Teilen\"}}}}", "locales.de.labels.shar: unknown field"},
      {MINIMAL ",\"locales\":{\"de\":{\"labels\":{\"whatsapp\":\"\"}}}}", "locales.de.labels.whatsapp: expected a non-empty text"},
      {MINIMAL ",\"locales\":{\"de\":{\"share\":{\"title\":7}}}}", "locales.de.share.title: expected a string, got 7"},
      {MINIMAL ",\"locales\":{\"de\":{\"extra\":{}}}}", "locales.de.extra: unknown field (expected one of: share variants labels)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lw_config cfg;
    char err[LW_ERRMSG_MAX] = "";
    lw_status st = lw_config_parse(cases[i].json, strlen(cases[i].json), &cfg, err, sizeof err);
    if (st != LW_ERR_INVALID || !strstr(err, cases[i].message)) fprintf(stderr, "case %zu: %s\n", i, err);
    CHECK_INT(st, LW_ERR_INVALID);
    CHECK_CONTAINS(err, cases[i].message);
  }
}

/* A config that sets them compiles them into the display part (locales' variants by index);
 * one that does not compiles to the bytes it did before (no theme, no placement, no locales). */
static void theme_placement_and_locales_compile_into_the_display_part(void) {
  const char *json = "{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("v1", "") "," VAR("v2", "") "],"
                     "\"theme\":{\"accent\":\"#0a7\",\"dark_background\":\"#101820\",\"radius\":4,"
                     "\"font\":\"\\\"Inter\\\", sans-serif\",\"logo\":\"https://x.example/logo.svg\"},"
                     "\"placement\":{\"type\":\"inline\",\"target\":\"#slot\"},"
                     "\"locales\":{\"default\":\"en\",\"fr\":{\"variants\":{\"v2\":{\"title\":\"Invitez {referee_reward}\"}},"
                     "\"labels\":{\"share\":\"Partager\"}}}}";
  lw_config cfg = tu_config(json);
  CHECK_STR(cfg.theme_accent, "#0a7");
  CHECK_INT(cfg.theme_radius, 4);
  CHECK_STR(cfg.placement_type, "inline");
  uint8_t bin[16384];
  char buf[8192];
  size_t n = lw_config_write_json(&cfg, json, strlen(json), NULL, 0);
  CHECK(n > 0 && n <= sizeof bin);
  CHECK_INT(lw_config_write_json(&cfg, json, strlen(json), bin, sizeof bin), n);
  display_part(bin, n, buf, sizeof buf);
  CHECK_CONTAINS(buf, ",\"theme\":{\"accent\":\"#0a7\",\"dark_background\":\"#101820\",\"radius\":4,"
                      "\"font\":\"\\\"Inter\\\", sans-serif\",\"logo\":\"https://x.example/logo.svg\"}");
  CHECK_CONTAINS(buf, ",\"placement\":{\"type\":\"inline\",\"target\":\"#slot\"}");
  CHECK_CONTAINS(buf, ",\"locales\":{\"default\":\"en\",\"fr\":{\"labels\":{\"share\":\"Partager\"},"
                      "\"variants\":[null,{\"title\":\"Invitez {referee_reward}\"}]}}}");
  /* the variants carry their ids (for Loopwise.preview); a locale's variants go by index */
  CHECK_CONTAINS(buf, "\"id\":\"v2\"");
  CHECK(strstr(buf, "\"v2\":") == NULL);
  lw_config back;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_config_read(bin, n, &back, err, sizeof err), LW_OK); /* the engine part is unchanged */

  /* Without them: the display part has none of them, and JSON or not, the same bytes. */
  lw_config plain = tu_default_config();
  uint8_t a[16384], b[16384];
  const char *min = MINIMAL "}";
  lw_config m = tu_config(min);
  size_t na = lw_config_write(&m, a, sizeof a), nb = lw_config_write_json(&m, min, strlen(min), b, sizeof b);
  CHECK_INT(na, nb);
  CHECK(memcmp(a, b, na) == 0);
  display_part(a, compile(&plain, a, sizeof a), buf, sizeof buf);
  CHECK(strstr(buf, "theme") == NULL && strstr(buf, "placement") == NULL && strstr(buf, "locales") == NULL);
  CHECK_STR(plain.placement_type, "modal");
}

int main(void) {
  RUN(default_config_parses_with_its_values);
  RUN(minimal_config_gets_documented_defaults);
  RUN(reward_settings_have_defaults_compile_and_refuse_bad_values);
  RUN(bad_configs_name_path_and_problem);
  RUN(error_message_is_truncated_not_overflowed);
  RUN(input_need_not_be_nul_terminated);
  RUN(compiled_config_reads_back_identical);
  RUN(damaged_compiled_config_is_refused_whatever_the_byte);
  RUN(compiled_config_refuses_what_the_engine_cannot_run);
  RUN(display_part_carries_what_the_widget_shows);
  RUN(channels_and_url_preview_are_optional_and_reach_the_display_part);
  RUN(exploration_and_switch_off_fields_are_optional_and_compile);
  RUN(check_all_reports_every_error_with_its_path);
  RUN(share_url_must_be_https_or_local_http);
  RUN(theme_placement_and_locale_values_are_checked_with_their_path);
  RUN(theme_placement_and_locales_compile_into_the_display_part);
  return check_failures ? 1 : 0;
}
