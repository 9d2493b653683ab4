/* loopwise-sim: run the population simulator against the real engine.
 *
 *   loopwise-sim --lift --config models/referral.json --monthly src/tools/monthly-program.json
 *   loopwise-sim --policy rules --config models/referral.json --vw-out logs.vw
 *   loopwise-sim --policy rules --config models/referral.json --events-out events.jsonl
 *
 * --lift runs the three policies of README "Proving the lift" on the same seeded
 * population and prints the table, then name=value headline lines. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sim.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: loopwise-sim (--lift | --policy monthly|rules|learning|oracle) --config program.json\n"
          "       (oracle: a ceiling, not a policy: the rules' moments, the variant and first channel\n"
          "        the simulator's own formulas value most for each user)\n"
          "       [--monthly traditional.json] [--users N (5000)] [--days N (180)] [--seed N (1)]\n"
          "       [--retrain-days N (30)] [--workdir DIR (/tmp)] [--no-busy]\n"
          "       [--via-ingest | --no-ingest]  learning: wire batches go through an in-process\n"
          "                        loopwise-ingest and the trainer reads its SQLite store (the\n"
          "                        default for --lift when the build has the ingest server)\n"
          "       [--labels retained|shares]  learning through loopwise-ingest: train on the retained\n"
          "                        referee value (closed attribution windows; the default) or shares\n"
          "       [--model FILE]  every engine starts with this model (.lwm), from day 0\n"
          "       [--habit-channels]  users share through their habit channel whatever the prompt's\n"
          "                        order (what the model's channel ranking is worth, by difference)\n"
          "       [--vw-out FILE] [--events-out FILE] [--quiet]\n");
}

static int load_config(const char *path, lw_config *cfg) {
  char err[LW_ERRMSG_MAX + 256];
  if (lw_cli_load_config(path, cfg, err, sizeof err) == LW_OK) return 0;
  fprintf(stderr, "loopwise-sim: %s\n", err);
  return -1;
}

static double div0(double a, double b) { return b > 0 ? a / b : 0.0; }

/* The proof table's figures of one group (README "Proving the lift"), in column order. */
#define LW_SIM_FIGURES(X)                                                                            \
  X(prompts_per_1k, "prompts / 1k u", 1000 * div0((double)g->prompts, (double)g->users))             \
  X(shares_per_1k, "shares / 1k u", 1000 * div0((double)g->shares, (double)g->users))                \
  X(converted_per_1k, "conv / 1k u", 1000 * div0((double)g->referred, (double)g->users))             \
  X(converted_per_prompt, "conv / prompt", div0((double)g->referred, (double)g->prompts))            \
  X(retained_per_1k, "ret / 1k u", 1000 * div0((double)g->retained, (double)g->users))               \
  X(retained_per_prompt, "ret / prompt", div0((double)g->retained, (double)g->prompts))              \
  X(cost_per_retained, "cost / ret", div0(g->incentive_cost, (double)g->retained))                   \
  X(dismissals_per_1k_prompts, "dism / 1k pr", 1000 * div0((double)g->dismissals, (double)g->prompts)) \
  X(churn_pct, "churn %", 100 * div0((double)g->churned, (double)g->users))                          \
  X(value_per_1k, "value / 1k u", 1000 * div0(g->referral_value - g->incentive_cost, (double)g->users))

static void row(const char *name, const lw_sim_group *g) {
  printf("| %-34s | %7llu", name, (unsigned long long)g->users);
#define LW_X_CELL(id, title, expr) printf(" | %10.4g", (double)(expr));
  LW_SIM_FIGURES(LW_X_CELL)
#undef LW_X_CELL
  printf(" |\n");
}

/* The same figures as name=value lines, sim_<arm>_<figure>=, for lift-seeds.sh to average. */
static void figures(const char *arm, const lw_sim_group *g) {
#define LW_X_LINE(id, title, expr) printf("sim_%s_" #id "=%.6g\n", arm, (double)(expr));
  LW_SIM_FIGURES(LW_X_LINE)
#undef LW_X_LINE
}

static double figure(const lw_sim_group *g, int k) {
  int i = 0;
#define LW_X_PICK(id, title, expr) if (i++ == k) return (double)(expr);
  LW_SIM_FIGURES(LW_X_PICK)
#undef LW_X_PICK
  return 0.0;
}
enum {
#define LW_X_ENUM(id, title, expr) F_##id,
  LW_SIM_FIGURES(LW_X_ENUM)
#undef LW_X_ENUM
  F_COUNT
};

static void header(void) {
  printf("| %-34s | %7s", "policy", "users");
#define LW_X_HEAD(id, title, expr) printf(" | %10s", title);
  LW_SIM_FIGURES(LW_X_HEAD)
#undef LW_X_HEAD
  printf(" |\n|------------------------------------|---------");
  for (int k = 0; k < F_COUNT; k++) printf("|------------");
  printf("|\n");
}

int main(int argc, char **argv) {
  if (lw_cli_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  lw_sim_opts o;
  lw_sim_defaults(&o);
  const char *cfg_path = NULL, *monthly_path = NULL, *policy = NULL, *vw = NULL, *evs = NULL;
  const char *workdir = "/tmp", *model_path = NULL;
  int lift = 0, quiet = 0, via = -1, labels_retained = 1; /* -1: through the ingest server for --lift when built */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--lift") == 0) lift = 1;
    else if (strcmp(a, "--quiet") == 0) quiet = 1;
    else if (strcmp(a, "--no-busy") == 0) o.use_busy = 0;
    else if (strcmp(a, "--habit-channels") == 0) o.habit_channel_only = 1;
    else if (strcmp(a, "--via-ingest") == 0) via = 1;
    else if (strcmp(a, "--no-ingest") == 0) via = 0;
    else if (!v) {
      fprintf(stderr, "loopwise-sim: unknown option or missing value: %s\n", a);
      usage(stderr);
      return 2;
    } else {
      i++;
      if (strcmp(a, "--config") == 0) cfg_path = v;
      else if (strcmp(a, "--monthly") == 0) monthly_path = v;
      else if (strcmp(a, "--policy") == 0) policy = v;
      else if (strcmp(a, "--vw-out") == 0) vw = v;
      else if (strcmp(a, "--events-out") == 0) evs = v;
      else if (strcmp(a, "--workdir") == 0) workdir = v;
      else if (strcmp(a, "--model") == 0) model_path = v;
      else if (strcmp(a, "--users") == 0) o.users = atoi(v);
      else if (strcmp(a, "--days") == 0) o.days = atoi(v);
      else if (strcmp(a, "--seed") == 0) o.seed = strtoull(v, NULL, 10);
      else if (strcmp(a, "--retrain-days") == 0) o.retrain_days = atoi(v);
      else if (strcmp(a, "--labels") == 0 && (!strcmp(v, "retained") || !strcmp(v, "shares")))
        labels_retained = strcmp(v, "retained") == 0;
      else {
        fprintf(stderr, "loopwise-sim: unknown option %s\n", a);
        usage(stderr);
        return 2;
      }
    }
  }
  if (!cfg_path || (!lift && !policy) || o.users < 1 || o.days < 1) {
    usage(stderr);
    return 2;
  }
  lw_config cfg, monthly;
  if (load_config(cfg_path, &cfg) < 0) return 2;
  if (lift && !monthly_path) monthly_path = "src/tools/monthly-program.json";
  if (monthly_path && load_config(monthly_path, &monthly) < 0) return 2;
  o.workdir = workdir;
  uint8_t *model = NULL;
  if (model_path) {
    FILE *f = fopen(model_path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (model = malloc((size_t)n)) && fread(model, 1, (size_t)n, f) == (size_t)n) {
      o.model = model;
      o.model_len = (size_t)n;
    }
    if (f) fclose(f);
    if (!o.model) {
      fprintf(stderr, "loopwise-sim: cannot read the model %s\n", model_path);
      free(model);
      return 2;
    }
  }
  o.via_ingest = via == 1 || (via < 0 && lift && lw_sim_has_ingest());
  o.retained_labels = labels_retained;
  char err0[LW_ERRMSG_MAX + 64];
  if (lw_cli_mkdirs(workdir, err0, sizeof err0) != LW_OK) {
    fprintf(stderr, "loopwise-sim: %s\n", err0);
    return 3;
  }
  o.log = quiet ? NULL : stderr;
  if (vw && !(o.vw_out = fopen(vw, "w"))) {
    perror(vw);
    return 3;
  }
  if (evs && !(o.events_out = fopen(evs, "w"))) {
    perror(evs);
    return 3;
  }
  char err[LW_ERRMSG_MAX];
  int rc = 0;
  if (!lift) {
    lw_sim_policy p = strcmp(policy, "monthly") == 0 ? LW_SIM_MONTHLY
                      : strcmp(policy, "rules") == 0 ? LW_SIM_RULES
                      : strcmp(policy, "learning") == 0 ? LW_SIM_LEARNING
                      : strcmp(policy, "oracle") == 0   ? LW_SIM_ORACLE
                                                        : (lw_sim_policy)-1;
    if ((int)p < 0) {
      fprintf(stderr, "loopwise-sim: --policy monthly, rules, learning or oracle\n");
      return 2;
    }
    lw_sim_result r;
    if (lw_sim_run(&o, p == LW_SIM_MONTHLY && monthly_path ? &monthly : &cfg, p, &r, err, sizeof err) != LW_OK) {
      fprintf(stderr, "loopwise-sim: %s\n", err);
      rc = 1;
    } else {
      header();
      row(policy, &r.treat);
      if (p == LW_SIM_LEARNING) row("holdout (rules)", &r.holdout);
      figures(policy, &r.treat); /* sim_<policy>_<figure>= lines */
    }
  } else {
    lw_sim_result r[3];
    const lw_config *cf[3] = {&monthly, &cfg, &cfg};
    for (int k = 0; k < 3 && !rc; k++) {
      if (o.log) fprintf(o.log, "== policy %d/3\n", k + 1);
      if (lw_sim_run(&o, cf[k], (lw_sim_policy)k, &r[k], err, sizeof err) != LW_OK) {
        fprintf(stderr, "loopwise-sim: %s\n", err);
        rc = 1;
      }
    }
    if (!rc) {
      printf("population %d users, %d days, seed %llu\n\n", o.users, o.days, (unsigned long long)o.seed);
      header();
      row("1. monthly ask, fixed $20 reward", &r[0].treat);
      row("2. milestone rules (config only)", &r[1].treat);
      row("3. Loopwise learning (treatment)", &r[2].treat);
      row("3h. its holdout (rules)", &r[2].holdout);
      const lw_sim_group *m = &r[0].treat, *ru = &r[1].treat, *l = &r[2].treat;
      printf("\nmodels promoted %d, kept current %d (channel rankings alone went live in %d of those, the best single "
             "action in %d)",
             r[2].models_promoted, r[2].models_rejected, r[2].channels_only, r[2].single_action);
      if (o.via_ingest)
        printf("; %llu wire batches, %llu referee landings and %llu host reports through loopwise-ingest",
               (unsigned long long)r[2].batches_posted, (unsigned long long)r[2].referee_landings,
               (unsigned long long)r[2].referee_reports);
      printf("\n");
      figures("monthly", m);
      figures("rules", ru);
      figures("learning", l);
      figures("holdout", &r[2].holdout);
      printf("sim_value_ratio_vs_rules=%.3f\n", div0(figure(l, F_value_per_1k), figure(ru, F_value_per_1k)));
      printf("sim_conversion_ratio_vs_monthly=%.3f\n",
             div0(figure(l, F_converted_per_prompt), figure(m, F_converted_per_prompt)));
      printf("sim_retained_ratio_vs_monthly=%.3f\n", div0(figure(l, F_retained_per_1k), figure(m, F_retained_per_1k)));
      printf("sim_cost_per_retained_ratio_vs_monthly=%.3f\n",
             div0(figure(l, F_cost_per_retained), figure(m, F_cost_per_retained)));
      printf("sim_cost_per_retained_ratio_vs_rules=%.3f\n",
             div0(figure(l, F_cost_per_retained), figure(ru, F_cost_per_retained)));
      printf("sim_value_ratio_vs_holdout=%.3f\n",
             div0(figure(l, F_value_per_1k), figure(&r[2].holdout, F_value_per_1k)));
    }
  }
  if (o.vw_out) fclose(o.vw_out);
  if (o.events_out) fclose(o.events_out);
  free(model);
  return rc;
}
