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
    {"{\"version\":1,", "(top level): not valid JSON near line 1, column 13"},
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
    {"{\"version\":1,\"version\":1," SHARE "," EVENTS "," MS "," VARS "}", "version: field appears twice"},
    {MINIMAL ",\"cooldown\":{\"days\":30,\"max_days\":10}}", "cooldown.max_days: must be at least cooldown.days"},
    {"{\"version\":1," SHARE "," EVENTS "," MS ",\"variants\":[" VAR("none", "") "]}",
     "variants[0].id: variant id must be unique and not 'none' or 'not_now'"},
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

int main(void) {
  RUN(default_config_parses_with_its_values);
  RUN(minimal_config_gets_documented_defaults);
  RUN(bad_configs_name_path_and_problem);
  RUN(error_message_is_truncated_not_overflowed);
  RUN(input_need_not_be_nul_terminated);
  return check_failures ? 1 : 0;
}
