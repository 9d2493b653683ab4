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
          "usage: loopwise-sim (--lift | --policy monthly|rules|learning) --config program.json\n"
          "       [--monthly traditional.json] [--users N (5000)] [--days N (180)] [--seed N (1)]\n"
          "       [--retrain-days N (30)] [--workdir DIR (/tmp)] [--no-busy]\n"
          "       [--via-ingest | --no-ingest]  learning: wire batches go through an in-process\n"
          "                        loopwise-ingest and the trainer reads its SQLite store (the\n"
          "                        default for --lift when the build has the ingest server)\n"
          "       [--labels retained|shares]  learning through loopwise-ingest: train on the retained\n"
          "                        referee value (closed attribution windows; the default) or shares\n"
          "       [--vw-out FILE] [--events-out FILE] [--quiet]\n");
}

static int load_config(const char *path, lw_config *cfg) {
  char err[LW_ERRMSG_MAX + 256];
  if (lw_cli_load_config(path, cfg, err, sizeof err) == LW_OK) return 0;
  fprintf(stderr, "loopwise-sim: %s\n", err);
  return -1;
}

static double div0(double a, double b) { return b > 0 ? a / b : 0.0; }

static void row(const char *name, const lw_sim_group *g) {
  printf("| %-34s | %7llu | %7llu | %6.2f%% | %7.4f | %8.1f | %6llu | %8.2f | %7.0f | %5.1f%% | %9.0f |\n", name,
         (unsigned long long)g->users, (unsigned long long)g->prompts, 100 * div0((double)g->shares, (double)g->prompts),
         div0((double)g->referred, (double)g->prompts), 1000 * div0((double)g->referred, (double)g->users),
         (unsigned long long)g->referred, div0(g->incentive_cost, (double)g->referred),
         1000 * div0((double)g->dismissals, (double)g->prompts), 100 * div0((double)g->churned, (double)g->users),
         1000 * div0(g->referral_value - g->incentive_cost, (double)g->users));
}

static void header(void) {
  printf("| %-34s | %7s | %7s | %7s | %7s | %8s | %6s | %8s | %7s | %6s | %9s |\n", "policy", "users", "prompts",
         "share", "conv/pr", "conv/1k u", "refd", "cost/ref", "dism/1k", "churn", "value/1k u");
  printf("|%s|---------|---------|---------|---------|----------|--------|----------|---------|--------|-----------|\n",
         "------------------------------------");
}

int main(int argc, char **argv) {
  if (lw_cli_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  lw_sim_opts o;
  lw_sim_defaults(&o);
  const char *cfg_path = NULL, *monthly_path = NULL, *policy = NULL, *vw = NULL, *evs = NULL;
  const char *workdir = "/tmp";
  int lift = 0, quiet = 0, via = -1, labels_retained = 1; /* -1: through the ingest server for --lift when built */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--lift") == 0) lift = 1;
    else if (strcmp(a, "--quiet") == 0) quiet = 1;
    else if (strcmp(a, "--no-busy") == 0) o.use_busy = 0;
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
  o.via_ingest = via == 1 || (via < 0 && lift && lw_sim_has_ingest());
  o.retained_labels = labels_retained;
  mkdir(workdir, 0755);
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
                      : strcmp(policy, "learning") == 0 ? LW_SIM_LEARNING : (lw_sim_policy)-1;
    if ((int)p < 0) {
      fprintf(stderr, "loopwise-sim: --policy monthly, rules or learning\n");
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
      const lw_sim_group *m = &r[0].treat, *l = &r[2].treat;
      double conv_m = div0((double)m->referred, (double)m->prompts), conv_l = div0((double)l->referred, (double)l->prompts);
      double cpr_m = div0(m->incentive_cost, (double)m->referred), cpr_l = div0(l->incentive_cost, (double)l->referred);
      printf("\nmodels promoted %d, kept current %d", r[2].models_promoted, r[2].models_rejected);
      if (o.via_ingest) printf("; %llu wire batches through loopwise-ingest", (unsigned long long)r[2].batches_posted);
      printf("\n");
      printf("sim_conversion_ratio_vs_monthly=%.3f\n", div0(conv_l, conv_m));
      printf("sim_conversion_per_1k_users_ratio_vs_monthly=%.3f\n",
             div0(div0((double)l->referred, (double)l->users), div0((double)m->referred, (double)m->users)));
      printf("sim_cost_per_referred_ratio_vs_monthly=%.3f\n", div0(cpr_l, cpr_m));
      const lw_sim_group *ru = &r[1].treat;
      printf("sim_value_ratio_vs_rules=%.3f\n", div0(div0(l->referral_value - l->incentive_cost, (double)l->users),
                                                     div0(ru->referral_value - ru->incentive_cost, (double)ru->users)));
      printf("sim_conversion_ratio_vs_rules=%.3f\n",
             div0(conv_l, div0((double)ru->referred, (double)ru->prompts)));
      printf("sim_learning_vs_holdout_referred_per_user_ratio=%.3f\n",
             div0(div0((double)l->referred, (double)l->users),
                  div0((double)r[2].holdout.referred, (double)r[2].holdout.users)));
    }
  }
  if (o.vw_out) fclose(o.vw_out);
  if (o.events_out) fclose(o.events_out);
  return rc;
}
