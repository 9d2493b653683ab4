/* The population simulator: seeded and repeatable, driving the real engine (its logged
 * probabilities are the config's), the traditional program's cadence, and the learning
 * policy's retrain-and-promote cycle. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "check.h"
#include "loopwise/learn.h"
#include "loopwise/store.h"
#include "sim.h"

static lw_status take_batch(lw_engine *e, int64_t now, char *buf, size_t cap, size_t *len, size_t *n) {
  char id[LW_BATCH_ID_HEX_LEN + 1];
  lw_engine_batch_id(e, id);
  return lw_wire_take_batch(lw_engine_outbox(e), id, "k", now, cap, buf, cap, len, n);
}

static lw_config load(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", LW_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if (!f) exit(2);
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  lw_config cfg;
  char err[LW_ERRMSG_MAX];
  if (lw_config_parse(text, n, &cfg, err, sizeof err) != LW_OK) {
    fprintf(stderr, "%s: %s\n", rel, err);
    exit(2);
  }
  return cfg;
}

static cJSON *load_json(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", LW_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  return cJSON_Parse(text);
}

/* The proof's config (src/tools/sim-program.json) is the shipped program (models/referral.json)
 * priced as the simulated business earns (src/tools/sim-reward.py): the two differ in the reward
 * block and fatigue_cost and nowhere else, so a change to the shipped program that the proof
 * config does not follow fails here instead of drifting silently. */
static void the_proof_config_is_the_shipped_program_with_the_simulators_prices(void) {
  cJSON *shipped = load_json("models/referral.json"), *proof = load_json("src/tools/sim-program.json");
  CHECK(shipped && proof);
  if (shipped && proof) {
    const cJSON *reward = cJSON_GetObjectItemCaseSensitive(proof, "reward");
    CHECK(cJSON_IsObject(reward) && cJSON_GetObjectItemCaseSensitive(reward, "revenue_weight"));
    CHECK(!cJSON_GetObjectItemCaseSensitive(shipped, "reward"));
    const cJSON *fatigue = cJSON_GetObjectItemCaseSensitive(proof, "fatigue_cost");
    CHECK(cJSON_IsNumber(fatigue) && fatigue->valuedouble == 0);
    cJSON_DeleteItemFromObjectCaseSensitive(proof, "reward");
    cJSON_DeleteItemFromObjectCaseSensitive(proof, "fatigue_cost");
    cJSON_DeleteItemFromObjectCaseSensitive(shipped, "fatigue_cost");
    CHECK(cJSON_Compare(shipped, proof, 1));
  }
  cJSON_Delete(shipped);
  cJSON_Delete(proof);
}

static lw_sim_opts small(uint64_t seed) {
  lw_sim_opts o;
  lw_sim_defaults(&o);
  o.seed = seed;
  o.users = 400;
  o.days = 60;
  return o;
}

static void same_seed_gives_the_same_run_and_another_seed_does_not(void) {
  lw_config cfg = load("models/referral.json");
  lw_sim_opts o = small(5);
  lw_sim_result a, b, c;
  char err[LW_ERRMSG_MAX];
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &a, err, sizeof err) == LW_OK);
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &b, err, sizeof err) == LW_OK);
  CHECK(memcmp(&a.treat, &b.treat, sizeof a.treat) == 0);
  o.seed = 6;
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &c, err, sizeof err) == LW_OK);
  CHECK(memcmp(&a.treat, &c.treat, sizeof a.treat) != 0);
  CHECK(a.treat.users == 400 && a.treat.prompts > 100 && a.treat.shares > 0 && a.treat.referred > 0);
}

/* The logs come out of the engine's own wire batches: in rules mode every prompt's logged
 * probability is the config's weight share (3:1 -> 0.75 and 0.25). */
static void logs_carry_the_engines_exact_probabilities(void) {
  lw_config cfg = load("models/referral.json");
  lw_sim_opts o = small(7);
  char path[256];
  snprintf(path, sizeof path, "/tmp/lw-test-sim-%ld.vw", (long)getpid());
  o.vw_out = fopen(path, "w");
  lw_sim_result r;
  char err[LW_ERRMSG_MAX];
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &r, err, sizeof err) == LW_OK);
  fclose(o.vw_out);
  lw_source_opts src;
  memset(&src, 0, sizeof src);
  src.path = path;
  lw_actions_from_config(&cfg, &src.n_actions, src.actions);
  lw_reader *rd = NULL;
  CHECK(lw_reader_open(&src, &rd, err, sizeof err) == LW_OK);
  lw_logged *rec = malloc(sizeof *rec);
  uint64_t n = 0, shared = 0, bad_p = 0, with_plan = 0, not_now = 0;
  uint32_t plan_free = lw_fnv1a("plan^free"), plan_pro = lw_fnv1a("plan^pro"), plan_team = lw_fnv1a("plan^team");
  int got;
  while (rd && (got = lw_reader_next(rd, rec, err, sizeof err)) == 1) {
    n++;
    shared += rec->reward > 0;
    /* weights 3:1 share what "not now"'s minimum (explore.not_now, 0.05) leaves */
    double want = rec->action == 0 ? 0.7125 : rec->action == 1 ? 0.2375 : 0.05;
    not_now += rec->action == 2;
    bad_p += rec->p != want;
    for (int i = 0; i < rec->n; i++)
      with_plan += rec->x[i].hash == plan_free || rec->x[i].hash == plan_pro || rec->x[i].hash == plan_team;
  }
  CHECK_INT(n - not_now, r.treat.prompts); /* every other choice is a prompt */
  CHECK(not_now > 0);
  CHECK_INT(shared, r.treat.shares);
  CHECK_INT(bad_p, 0);
  CHECK_INT(with_plan, n); /* the host attribute reaches the logged features */
  free(rec);
  lw_reader_close(rd);
  unlink(path);
}

static void the_monthly_program_asks_at_most_once_a_month(void) {
  lw_config cfg = load("src/tools/monthly-program.json");
  lw_sim_opts o = small(8);
  lw_sim_result r;
  char err[LW_ERRMSG_MAX];
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_MONTHLY, &r, err, sizeof err) == LW_OK);
  CHECK(r.treat.prompts <= (uint64_t)o.users * 2);
  CHECK(r.treat.prompts > (uint64_t)o.users); /* most users are active in both months */
  CHECK(r.treat.incentive_cost == 20.0 * (double)r.treat.referred);
}

/* Every promotion decision follows the rule: promoted exactly when at least 200 held-out
 * decisions were compared on and the difference's lower end clears -2% of the best baseline. */
static void rounds_follow_the_promotion_rule(const lw_sim_result *r) {
  for (int k = 0; k < r->n_rounds; k++) {
    const lw_sim_round *rd = &r->rounds[k];
    printf("  day %d: %.0f held out, candidate %.3f vs %s %.3f, lower end %.3f, threshold %.3f: %s\n", rd->day,
           rd->held_out, rd->candidate, rd->baseline_name, rd->baseline, rd->diff_lo, rd->threshold,
           rd->promoted ? "promoted" : "kept");
    CHECK(rd->held_out > 0); /* the held-out set is never empty, whatever the batch layout */
    CHECK(fabs(rd->threshold + 0.02 * fabs(rd->baseline)) < 1e-9);
    CHECK_INT(rd->promoted, rd->held_out >= 200 && rd->diff_lo > rd->threshold);
  }
}

/* Learning: a retrain every 30 days, each promoted only against the right baseline; the
 * engines decide in model mode once one is; about a tenth of the users stay in the holdout. */
static void the_learning_policy_retrains_promotes_and_keeps_a_holdout(void) {
  lw_config cfg = load("models/referral.json");
  lw_sim_opts o = small(9);
  o.users = 1500;
  o.days = 75;
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/lw-test-sim-%ld", (long)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
  if (system(cmd) != 0) exit(2);
  o.workdir = dir;
  lw_sim_result learn, rules;
  char err[LW_ERRMSG_MAX];
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_LEARNING, &learn, err, sizeof err) == LW_OK);
  CHECK(learn.models_promoted + learn.models_rejected == 2); /* days 30 and 60 */
  CHECK_INT(learn.n_rounds, 2);
  rounds_follow_the_promotion_rule(&learn);
  CHECK(learn.holdout.users > 100 && learn.holdout.users < 220);
  CHECK(learn.holdout.prompts > 0);
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &rules, err, sizeof err) == LW_OK);
  CHECK(rules.holdout.users == 0 && rules.treat.users == 1500);
  /* model mode changes what is shown: once a model is live the runs differ */
  if (learn.models_promoted) CHECK(learn.treat.prompts + learn.holdout.prompts != rules.treat.prompts);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) exit(2);
}

/* The whole loop through the real ingest server: the engines' wire batches are POSTed to an
 * in-process loopwise-ingest, and the retrain reads what its SQLite store holds. */
static void the_learning_loop_runs_through_the_ingest_server(void) {
  if (!lw_sim_has_ingest()) {
    printf("  (skipped: built without the ingest server)\n");
    return;
  }
  lw_config cfg = load("models/referral.json");
  lw_sim_opts o = small(10);
  o.users = 600;
  o.days = 40;
  o.via_ingest = 1;
  char dir[256], cmd[300];
  snprintf(dir, sizeof dir, "/tmp/lw-test-simi-%ld", (long)getpid());
  snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
  if (system(cmd) != 0) exit(2);
  o.workdir = dir;
  lw_sim_result r;
  char err[LW_ERRMSG_MAX] = "";
  lw_status st = lw_sim_run(&o, &cfg, LW_SIM_LEARNING, &r, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "  %s\n", err);
  CHECK(st == LW_OK);
  CHECK(r.batches_posted > 10);
  CHECK_INT(r.n_rounds, 1);
  rounds_follow_the_promotion_rule(&r); /* held out from the store's batch layout: not empty */
  /* the store holds the decisions the trainer read */
  char db[300];
  snprintf(db, sizeof db, "%s/sim-outcomes.db", dir);
  lw_source_opts src;
  memset(&src, 0, sizeof src);
  src.path = db;
  lw_actions_from_config(&cfg, &src.n_actions, src.actions);
  lw_reader *rd = NULL;
  CHECK(lw_reader_open(&src, &rd, err, sizeof err) == LW_OK);
  lw_logged *rec = malloc(sizeof *rec);
  uint64_t n = 0, rewarded = 0;
  while (rd && lw_reader_next(rd, rec, err, sizeof err) == 1) {
    n++;
    rewarded += rec->reward > 0;
  }
  CHECK(n > 500);
  CHECK(rewarded == r.treat.shares); /* holdout decisions are not choices a model made */
  free(rec);
  lw_reader_close(rd);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) exit(2);
}

/* Issue 11: a simulated referee's landing and the host's reports go through the real ingest
 * server, and a retained_30 report reaches the trainer's input joined by the share token to the
 * very decision whose share the referee came through. */
static void a_simulated_referees_retained_report_joins_by_token_to_the_decision_that_shared(void) {
  if (!lw_sim_has_ingest()) {
    printf("  (skipped: built without the ingest server)\n");
    return;
  }
  lw_config cfg = load("models/referral.json");
  lw_sim_opts o = small(4);
  o.users = 500;
  o.days = 80;
  o.via_ingest = 1;
  o.retained_labels = 1;
  o.retrain_days = 0; /* the store is what is checked; no retraining needed */
  char dir[256], cmd[300];
  snprintf(dir, sizeof dir, "/tmp/lw-test-simr-%ld", (long)getpid());
  snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
  if (system(cmd) != 0) exit(2);
  o.workdir = dir;
  lw_sim_result r;
  char err[LW_ERRMSG_MAX] = "";
  lw_status st = lw_sim_run(&o, &cfg, LW_SIM_LEARNING, &r, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "  %s\n", err);
  CHECK(st == LW_OK);
  CHECK(r.referee_landings > 0);
  CHECK(r.referee_retained_30 > 0);
  CHECK(r.referee_reports > r.referee_retained_30);
  char db[300];
  snprintf(db, sizeof db, "%s/sim-outcomes.db", dir);
  lw_store *s = NULL;
  CHECK(lw_store_open_sqlite_read(db, &s, err, sizeof err) == LW_OK);
  /* every retained_30 report joins one decision, by token, and only a decision that shared */
  lw_store_range range = {"default", 0, 0};
  lw_store_cursor *cur = NULL;
  CHECK(s && lw_store_decisions_within(s, &range, 0, &cur, err, sizeof err) == LW_OK);
  lw_store_decision *d = malloc(sizeof *d);
  int64_t retained = 0, landings = 0;
  while (cur && lw_store_next(cur, d, err, sizeof err) == 1) {
    retained += d->outcomes.retained_30;
    landings += d->outcomes.landings;
    if (d->outcomes.retained_30 > 0) {
      CHECK(d->shared);
      CHECK_INT(d->outcomes.join, LW_JOIN_TOKEN);
      CHECK(d->outcomes.conversions >= d->outcomes.retained_30);
      /* the host reports each retained referee's monthly revenue (its plan's: 4, 20 or 60) */
      CHECK(d->outcomes.revenue >= 4.0 * (double)d->outcomes.retained_30);
      CHECK(d->outcomes.revenue <= 60.0 * (double)d->outcomes.retained_30);
    } else {
      CHECK(d->outcomes.revenue == 0);
    }
  }
  lw_store_cursor_free(cur);
  CHECK_INT(retained, (int64_t)r.referee_retained_30);
  CHECK_INT(landings, (int64_t)r.referee_landings);
  /* the trainer's input: the decisions whose window has closed by the end, labelled with the
   * retained value the config prices, a retained referee's decision among them */
  int64_t now = o.start_ms + (int64_t)o.days * 86400000LL;
  int days = (int)cfg.reward_attribution_days;
  enum { MAX_WANT = 4096 };
  static uint64_t want_id[MAX_WANT];
  static double want_label[MAX_WANT], without_retained[MAX_WANT];
  int n_want = 0;
  CHECK(lw_store_decisions_within(s, &range, days, &cur, err, sizeof err) == LW_OK);
  while (cur && lw_store_next(cur, d, err, sizeof err) == 1) {
    if (d->outcomes.retained_30 == 0 || !lw_store_window_closed(d, days, now) || strcmp(d->mode, "holdout") == 0 ||
        n_want == MAX_WANT)
      continue;
    double cost = 0;
    for (int k = 0; k < cfg.n_variants; k++)
      if (strcmp(cfg.variants[k].id, d->action) == 0) cost = cfg.variants[k].cost;
    want_id[n_want] = d->id;
    without_retained[n_want] = lw_retained_value(&cfg, cost, d->outcomes.conversions, 0, d->outcomes.retained_90,
                                                 d->outcomes.churned, d->outcomes.revenue, 1);
    want_label[n_want++] = lw_retained_value(&cfg, cost, d->outcomes.conversions, d->outcomes.retained_30,
                                             d->outcomes.retained_90, d->outcomes.churned, d->outcomes.revenue, 1);
  }
  lw_store_cursor_free(cur);
  free(d);
  lw_store_free(s);
  CHECK(n_want > 0);
  lw_source_opts src;
  memset(&src, 0, sizeof src);
  src.kind = LW_SRC_SQLITE;
  src.path = db;
  src.site = "default";
  src.reward = &cfg;
  src.now_ms = now;
  lw_actions_from_config(&cfg, &src.n_actions, src.actions);
  lw_reader *rd = NULL;
  CHECK(lw_reader_open(&src, &rd, err, sizeof err) == LW_OK);
  lw_logged *rec = malloc(sizeof *rec);
  int found = 0;
  while (rd && lw_reader_next(rd, rec, err, sizeof err) == 1)
    for (int k = 0; k < n_want; k++)
      if (rec->line == want_id[k]) {
        CHECK(fabs(rec->reward - want_label[k]) < 1e-9);
        CHECK(rec->reward > without_retained[k]); /* the retained referee's value is in it */
        found++;
      }
  CHECK_INT(found, n_want);
  CHECK(rd && lw_reader_labels(rd) == LW_LABELS_RETAINED);
  CHECK(rd && lw_reader_open_windows(rd) > 0); /* the latest decisions' labels are still open */
  free(rec);
  lw_reader_close(rd);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) exit(2);
}

/* A logged wire record's action when it is a decision the model made (mode "model", a choice
 * rather than "none"), else NULL. */
static const char *model_choice(const cJSON *ev) {
  const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "mode"));
  const char *action = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "action"));
  if (!mode || lw_mode_parse(mode) != LW_MODE_MODEL || !action || strcmp(action, LW_ACTION_NONE) == 0) return NULL;
  return action;
}

/* The record's x as the engine's fixed-point features; returns how many. */
static int logged_x(const cJSON *ev, lw_feature x[LW_LEARN_MAX_FEATURES]) {
  int n = 0;
  const cJSON *pair;
  cJSON_ArrayForEach(pair, cJSON_GetObjectItemCaseSensitive(ev, "x")) {
    if (n >= LW_LEARN_MAX_FEATURES) break;
    x[n].hash = (uint32_t)cJSON_GetArrayItem(pair, 0)->valuedouble;
    x[n++].q = lw_fx(cJSON_GetArrayItem(pair, 1)->valuedouble);
  }
  return n;
}

/* The shipped default model (models/default.lwm) loaded, and its bytes in *bytes and *n (a
 * static buffer), or NULL after a failed check. */
static lw_model *load_default_model(const uint8_t **bytes, size_t *n) {
  char path[1024], err[LW_ERRMSG_MAX];
  snprintf(path, sizeof path, "%s/models/default.lwm", LW_SOURCE_DIR);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f) return NULL;
  static uint8_t buf[1 << 17];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  lw_model *m = NULL;
  CHECK(lw_model_load(buf, len, &m, err, sizeof err) == LW_OK);
  *bytes = buf;
  *n = len;
  return m;
}

/* The evaluator scores a model policy as the runtime runs it: for every model-mode decision
 * an engine logs, lw_target_probs on the logged x gives exactly the logged probability of the
 * chosen action (personas recomputed, the fairness offset, the config's exploration). */
/* The oracle is a ceiling, not a policy: at the rules' own moments it picks the variant and the
 * first channel the simulator's formulas value most for that user. On the same people it must be
 * worth more than the rules (it fails if it picked at random or by the rules' weights); a model
 * given with --model (lw_sim_opts.model) reaches every engine from day 0 (model mode). */
static void the_oracle_ceiling_beats_the_rules_and_a_given_model_decides_from_day_0(void) {
  lw_config cfg = load("src/tools/sim-program.json");
  lw_sim_opts o = small(3);
  o.users = 2000;
  o.days = 90;
  lw_sim_result rules, oracle;
  char err[LW_ERRMSG_MAX];
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &rules, err, sizeof err) == LW_OK);
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_ORACLE, &oracle, err, sizeof err) == LW_OK);
  double v_rules = rules.treat.referral_value - rules.treat.incentive_cost;
  double v_oracle = oracle.treat.referral_value - oracle.treat.incentive_cost;
  printf("  value: rules %.0f, oracle %.0f (%.3fx)\n", v_rules, v_oracle, v_oracle / v_rules);
  CHECK(v_oracle > 1.1 * v_rules);
  /* the rules' moments (the counts differ only through what users answered: dismissals lengthen
   * cooldowns), better asks */
  CHECK(fabs((double)oracle.treat.prompts - (double)rules.treat.prompts) < 0.02 * (double)rules.treat.prompts);
  CHECK(oracle.treat.referred > rules.treat.referred);
  /* a damaged model is refused, not silently ignored */
  static const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  o.model = junk;
  o.model_len = sizeof junk;
  CHECK(lw_sim_run(&o, &cfg, LW_SIM_RULES, &rules, err, sizeof err) != LW_OK);
}

static void the_evaluator_reproduces_the_runtimes_logged_probabilities(void) {
  lw_config cfg = load("models/referral.json");
  char err[LW_ERRMSG_MAX];
  const uint8_t *buf;
  size_t len;
  lw_model *m = load_default_model(&buf, &len);
  if (!m) return;
  int n_actions;
  char actions[LW_LEARN_MAX_ACTIONS][LW_NAME_LEN + 1];
  lw_actions_from_config(&cfg, &n_actions, actions);
  lw_policy_params pp;
  lw_policy_params_init(&pp, &cfg);
  lw_target t;
  CHECK(lw_target_model(&t, m, &cfg, &pp, n_actions, (const char(*)[LW_NAME_LEN + 1])actions, err, sizeof err) == LW_OK);
  static const char *const plans[] = {"free", "pro", "team"};
  int checked = 0, mismatched = 0;
  static char batch[1 << 16];
  for (int u = 0; u < 60; u++) {
    lw_engine *e = NULL;
    if (lw_engine_create(&cfg, 100 + (uint64_t)u, 1, 0, &e, err, sizeof err) != LW_OK) break;
    CHECK(lw_engine_set_model(e, buf, len, err, sizeof err) == LW_OK);
    lw_engine_set_attribute(e, "plan", plans[u % 3], err, sizeof err);
    int64_t t0 = 1767261600000LL; /* 10:00 UTC */
    for (int day = 0; day < 40; day++) {
      lw_decision d;
      int64_t tt = t0 + (int64_t)day * 86400000LL;
      lw_engine_track(e, "session_started", tt, 0, &d, err, sizeof err);
      lw_engine_track_value(e, "feature_discovered", 0.0 / 0.0, day % 2 ? "gantt" : "board", tt + 60000, 0, &d, err,
                            sizeof err);
      if ((day + u) % 3 == 0) lw_engine_track(e, "project_completed", tt + 120000, 0, &d, err, sizeof err);
      if (d.decided && d.prompt) lw_engine_outcome(e, d.id, (day % 2) ? LW_KIND_DISMISS : LW_KIND_SHARE, tt + 180000, err, sizeof err);
    }
    size_t blen, n;
    while (take_batch(e, t0, batch, sizeof batch, &blen, &n) == LW_OK && n > 0) {
      cJSON *b = cJSON_ParseWithLength(batch, blen), *ev;
      cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(b, "events")) {
        const char *action = model_choice(ev);
        if (!action) continue;
        lw_feature x[LW_LEARN_MAX_FEATURES];
        int nx = logged_x(ev, x);
        double pi[LW_LEARN_MAX_ACTIONS];
        lw_target_probs(&t, x, &nx, pi);
        int a = -1;
        for (int k = 0; k < n_actions; k++)
          if (strcmp(actions[k], action) == 0) a = k;
        double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ev, "p"));
        checked++;
        if (a < 0 || (long)(pi[a] * 1e6 + 0.5) != (long)(p * 1e6 + 0.5)) {
          if (mismatched++ < 3) fprintf(stderr, "  %s logged p=%.6f, evaluator %.6f\n", action, p, a >= 0 ? pi[a] : -1.0);
        }
      }
      cJSON_Delete(b);
    }
    lw_engine_free(e);
  }
  printf("  %d model-mode decisions compared\n", checked);
  CHECK(checked > 50);
  CHECK_INT(mismatched, 0);
  lw_model_free(m);
}

/* One policy, one persona rule: the core's lw_policy_for_model, lw_persona_dims and
 * lw_persona_hash (src/core/policy.c) are what the engine ran. For every model-mode decision
 * an engine logs, the persona feature in x is the one the core assigns to the rest of x, and
 * the core's policy gives the logged probability of the chosen action to the millionth (the
 * engine draws from those millionths). The engine calls the same functions; this checks the
 * tools' use of them reproduces what it logged. */
static void the_cores_policy_and_personas_are_the_engines(void) {
  lw_config cfg = load("models/referral.json");
  char err[LW_ERRMSG_MAX];
  const uint8_t *buf;
  size_t len;
  lw_model *m = load_default_model(&buf, &len);
  if (!m) return;
  CHECK(m->n_personas > 0);
  lw_policy pol;
  int variant_of[LW_MODEL_MAX_ACTIONS];
  CHECK_INT(lw_policy_for_model(m, &cfg, &pol, variant_of), 1);
  static const char *const plans[] = {"free", "pro", "team"};
  int checked = 0, wrong_persona = 0, wrong_p = 0;
  static char batch[1 << 16];
  for (int u = 0; u < 45; u++) {
    lw_engine *e = NULL;
    if (lw_engine_create(&cfg, 500 + (uint64_t)u, 1, 0, &e, err, sizeof err) != LW_OK) break;
    CHECK(lw_engine_set_model(e, buf, len, err, sizeof err) == LW_OK);
    lw_engine_set_attribute(e, "plan", plans[u % 3], err, sizeof err);
    char seg[LW_SEGMENT_NAME_LEN + 1];
    snprintf(seg, sizeof seg, "plan^%s", plans[u % 3]);
    double offset = lw_model_segment_offset(m, seg);
    int64_t t0 = 1767261600000LL;
    for (int day = 0; day < 40; day++) {
      lw_decision d;
      int64_t tt = t0 + (int64_t)day * 86400000LL;
      lw_engine_track(e, "session_started", tt, 0, &d, err, sizeof err);
      if ((day + u) % 2 == 0) lw_engine_track(e, "project_completed", tt + 120000, 0, &d, err, sizeof err);
      if (d.decided && d.prompt) lw_engine_outcome(e, d.id, (day % 3) ? LW_KIND_DISMISS : LW_KIND_SHARE, tt + 180000, err, sizeof err);
    }
    size_t blen, n;
    while (take_batch(e, t0, batch, sizeof batch, &blen, &n) == LW_OK && n > 0) {
      cJSON *b = cJSON_ParseWithLength(batch, blen), *ev;
      cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(b, "events")) {
        const char *action = model_choice(ev);
        if (!action) continue;
        lw_feature x[LW_LEARN_MAX_FEATURES], rest[LW_LEARN_MAX_FEATURES];
        int nx = logged_x(ev, x), nr = 0, persona = -1;
        for (int i = 0; i < nx; i++) {
          int is_persona = 0;
          for (int k = 0; k < m->n_personas; k++)
            if (x[i].hash == lw_persona_hash(k)) persona = k, is_persona = 1;
          if (!is_persona) rest[nr++] = x[i];
        }
        double dims[LW_MODEL_PERSONA_DIMS];
        lw_persona_dims(rest, nr, dims);
        wrong_persona += persona < 0 || lw_model_persona(m, dims) != persona;
        uint32_t ppm[LW_POLICY_MAX_ACTIONS];
        CHECK(lw_model_policy(m, &pol, x, nx, offset, ppm, NULL) == LW_OK);
        int a = lw_model_action_index(m, action);
        double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ev, "p"));
        checked++;
        if (a < 0 || ppm[a] != (uint32_t)(p * 1e6 + 0.5) ||
            (strcmp(action, LW_ACTION_NOT_NOW) != 0 && variant_of[a] != lw_config_variant_index(&cfg, action))) {
          if (wrong_p++ < 3) fprintf(stderr, "  %s logged p=%.6f, core %u ppm\n", action, p, a >= 0 ? ppm[a] : 0);
        }
      }
      cJSON_Delete(b);
    }
    lw_engine_free(e);
  }
  printf("  %d model-mode decisions compared with the core's policy\n", checked);
  CHECK(checked > 50);
  CHECK_INT(wrong_persona, 0);
  CHECK_INT(wrong_p, 0);
  /* without a config, every action is enabled at no cost: the tools on a bare action list */
  lw_policy bare;
  lw_policy_for_model(m, NULL, &bare, NULL);
  for (int a = 0; a < m->n_actions; a++) {
    CHECK_INT(bare.enabled[a], 1);
    CHECK_INT(bare.is_prompt[a], strcmp(m->action_ids[a], LW_ACTION_NOT_NOW) != 0);
  }
  CHECK(bare.value == 50 && bare.fatigue == 1 && bare.temperature == 5 && bare.floor == 0.02);
  lw_model_free(m);
}

int main(void) {
  RUN(same_seed_gives_the_same_run_and_another_seed_does_not);
  RUN(logs_carry_the_engines_exact_probabilities);
  RUN(the_monthly_program_asks_at_most_once_a_month);
  RUN(the_learning_policy_retrains_promotes_and_keeps_a_holdout);
  RUN(the_learning_loop_runs_through_the_ingest_server);
  RUN(a_simulated_referees_retained_report_joins_by_token_to_the_decision_that_shared);
  RUN(the_oracle_ceiling_beats_the_rules_and_a_given_model_decides_from_day_0);
  RUN(the_evaluator_reproduces_the_runtimes_logged_probabilities);
  RUN(the_cores_policy_and_personas_are_the_engines);
  RUN(the_proof_config_is_the_shipped_program_with_the_simulators_prices);
  return check_failures ? 1 : 0;
}
