/* loopwise-eval: estimate what a policy would have earned on logged decisions, and audit
 * fairness across segments.
 *
 *   loopwise-eval --data logs.vw --config models/referral.json \
 *                 --policy models/default.lwm --policy uniform --policy always:credit_10
 *   loopwise-eval --data outcomes.db --config models/referral.json --audit \
 *                 --segment plan^free --segment plan^pro --segment plan^team
 *
 * Estimates are of referral shares per decision, by inverse propensity scoring (IPS),
 * self-normalised IPS and doubly robust (cross-fitted logistic reward model), each with a
 * 95% interval, beside the logging policy's observed value. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

#define MAX_POLICIES 8

static void usage(FILE *out) {
  fprintf(out,
          "usage: loopwise-eval --data FILE|postgres://... (--config program.json | --actions a,b,...) --policy P [--policy P ...]\n"
          "       loopwise-eval --data FILE (--config ... | --actions ...) --audit [--segment attr^value ...]\n"
          "         (segments default to the values of the config's fairness attribute)\n"
          "  P: a model file (.lwm), 'uniform', or 'always:ACTION'\n"
          "  --format auto|vw|vw_adf|sqlite  --site ID  --from MS --to MS\n"
          "  --labels retained|shares (SQLite with --config: retained referee value, closed windows only)\n"
          "  --holdout-only N (only the records the trainer with --holdout-mod N holds out: the latest 1/N by\n"
          "    time when every record has one, else 1 in N by the hash of the record's id)\n"
          "  --audit with --policy: the policies' exposure per segment (a fairness audit of a candidate)\n"
          "  --value V --fatigue F --temperature T --floor P (the runtime's exploration policy for model files)\n"
          "  --metric net|shares (net: share x (value - cost) - fatigue, the default with --config; shares otherwise)\n"
          "  --quiet (no progress)\n");
}

static void print_iv(const char *name, const lw_interval *iv) {
  printf("  %-22s %.6f  [%.6f, %.6f]\n", name, iv->est, iv->lo, iv->hi);
}

static int audit(lw_cli *c, int n, char segs[][LW_SEGMENT_NAME_LEN + 1]) {
  lw_audit_row rows[LW_MODEL_MAX_SEGMENTS];
  char err[LW_ERRMSG_MAX];
  if (lw_audit_source(&c->src, n, (const char(*)[LW_SEGMENT_NAME_LEN + 1])segs, rows, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-eval: %s\n", err);
    return 2;
  }
  printf("%-18s %9s %8s %9s %8s %8s %8s %8s %8s %8s  %s\n", "segment", "decisions", "prompts", "exposure", "ratio",
         "share", "ratio", "convert", "ratio", "referred", "flag");
  int flagged = 0;
  for (int s = 0; s < n; s++) {
    lw_audit_row *r = &rows[s];
    printf("%-18s %9llu %8llu %9.4f %8.3f %8.4f %8.3f %8.4f %8.3f %8llu  %s\n", r->name,
           (unsigned long long)r->decisions, (unsigned long long)r->prompts, r->exposure, r->exposure_ratio,
           r->share_rate, r->share_ratio, r->conversion_rate, r->conversion_ratio, (unsigned long long)r->conversions,
           r->decisions == 0 ? "no data" : r->flagged ? "BELOW 0.8" : "ok");
    flagged += r->flagged;
  }
  printf("flagged=%d (a ratio to the best segment below %.1f)\n", flagged, LW_AUDIT_FLAG_RATIO);
  return 0;
}

int main(int argc, char **argv) {
  if (lw_cli_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  lw_cli c;
  lw_cli_init(&c);
  const char *pol[MAX_POLICIES];
  int n_pol = 0, do_audit = 0, n_seg = 0, holdout = 0, metric_net = 1;
  char segs[LW_MODEL_MAX_SEGMENTS][LW_SEGMENT_NAME_LEN + 1];
  for (int i = 1; i < argc; i++) {
    int r = lw_cli_option(&c, argc, argv, &i);
    if (r < 0) return 2;
    if (r) continue;
    if (strcmp(argv[i], "--audit") == 0) {
      do_audit = 1;
    } else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc && n_pol < MAX_POLICIES) {
      pol[n_pol++] = argv[++i];
    } else if (strcmp(argv[i], "--segment") == 0 && i + 1 < argc && n_seg < LW_MODEL_MAX_SEGMENTS &&
               strlen(argv[i + 1]) < LW_SEGMENT_NAME_LEN + 1) {
      snprintf(segs[n_seg++], LW_SEGMENT_NAME_LEN + 1, "%s", argv[++i]);
    } else if (strcmp(argv[i], "--metric") == 0 && i + 1 < argc &&
               (strcmp(argv[i + 1], "shares") == 0 || strcmp(argv[i + 1], "net") == 0)) {
      metric_net = strcmp(argv[++i], "net") == 0;
    } else if (strcmp(argv[i], "--holdout-only") == 0 && i + 1 < argc) {
      holdout = atoi(argv[++i]);
    } else {
      fprintf(stderr, "loopwise-eval: unknown option or missing value: %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (lw_cli_finish(&c, "loopwise-eval") < 0) return 2;
  if (do_audit && n_seg == 0 && c.have_cfg) n_seg = lw_cli_fairness_segments(&c.cfg, segs, LW_MODEL_MAX_SEGMENTS);
  if (do_audit && n_pol == 0) return audit(&c, n_seg, segs);
  if (n_pol == 0) {
    fprintf(stderr, "loopwise-eval: name at least one --policy (a model file, uniform, always:ACTION)\n");
    return 2;
  }
  lw_target t[MAX_POLICIES];
  lw_model *models[MAX_POLICIES] = {0};
  char err[LW_ERRMSG_MAX];
  int rc = 0;
  for (int k = 0; k < n_pol && !rc; k++) {
    memset(&t[k], 0, sizeof t[k]);
    t[k].n_actions = c.src.n_actions;
    if (strcmp(pol[k], "uniform") == 0) {
      t[k].kind = LW_TARGET_UNIFORM;
    } else if (strncmp(pol[k], "always:", 7) == 0) {
      t[k].kind = LW_TARGET_ALWAYS;
      t[k].always = -1;
      for (int a = 0; a < c.src.n_actions; a++)
        if (strcmp(c.src.actions[a], pol[k] + 7) == 0) t[k].always = a;
      if (t[k].always < 0) {
        fprintf(stderr, "loopwise-eval: %s: no such action in the action list\n", pol[k]);
        rc = 2;
      }
    } else if (!(models[k] = lw_cli_load_model(pol[k], NULL, NULL, err, sizeof err)) ||
               lw_target_model(&t[k], models[k], c.have_cfg ? &c.cfg : NULL, &c.pp, c.src.n_actions,
                               (const char(*)[LW_NAME_LEN + 1])c.src.actions, err, sizeof err) != LW_OK) {
      fprintf(stderr, "loopwise-eval: %s\n", err);
      rc = 2;
    }
  }
  lw_eval_report reps[MAX_POLICIES];
  lw_metric mt;
  lw_metric_init(&mt, metric_net, c.have_cfg ? &c.cfg : NULL, &c.pp, c.src.n_actions,
                 (const char(*)[LW_NAME_LEN + 1])c.src.actions);
  if (lw_source_graded(&c.src)) lw_metric_graded(&mt);
  lw_eval_opts eo;
  memset(&eo, 0, sizeof eo);
  eo.only_holdout = holdout;
  eo.seed = 1;
  eo.progress = lw_cli_progress;
  eo.progress_ctx = &c;
  eo.n_segments = do_audit ? n_seg : 0;
  memcpy(eo.segments, segs, sizeof segs);
  if (!rc && lw_eval_source(&c.src, t, n_pol, &mt, &eo, reps, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-eval: %s\n", err);
    rc = 2;
  }
  if (!rc) {
    printf("records=%llu skipped=%llu on=%s\nvalue: %s; 95%% intervals\n", (unsigned long long)reps[0].records,
           (unsigned long long)reps[0].skipped, holdout > 0 ? "held-out" : "all", lw_metric_name(&mt));
    lw_cli_warn_data(&reps[0]);
    print_iv("logging policy (observed)", &reps[0].target.logged);
    for (int k = 0; k < n_pol; k++) {
      printf("policy %s  (effective sample size %.0f)\n", pol[k], reps[k].target.ess);
      print_iv("ips", &reps[k].target.ips);
      print_iv("snips", &reps[k].target.snips);
      print_iv("dr", &reps[k].target.dr);
      lw_cli_warn_estimate(pol[k], &reps[k]);
    }
    if (do_audit) { /* the policies' own exposure per segment, off-policy on the logged contexts */
      printf("%-18s %9s", "segment", "decisions");
      for (int k = 0; k < n_pol; k++) printf(" %14.14s %6s", pol[k], "ratio");
      printf("\n");
      double best[MAX_POLICIES] = {0};
      for (int k = 0; k < n_pol; k++)
        for (int s = 0; s < n_seg; s++) best[k] = reps[k].exposure[s] > best[k] ? reps[k].exposure[s] : best[k];
      int flagged = 0;
      for (int s = 0; s < n_seg; s++) {
        printf("%-18s %9.0f", segs[s], reps[0].segment_n[s]);
        int low = 0;
        for (int k = 0; k < n_pol; k++) {
          double ratio = best[k] > 0 ? reps[k].exposure[s] / best[k] : 0.0;
          low |= reps[k].segment_n[s] > 0 && ratio < LW_AUDIT_FLAG_RATIO;
          printf(" %14.4f %6.3f", reps[k].exposure[s], ratio);
        }
        printf("  %s\n", reps[0].segment_n[s] == 0 ? "no data" : low ? "BELOW 0.8" : "ok");
        flagged += low;
      }
      printf("flagged=%d (a policy's exposure ratio to its best segment below %.1f)\n", flagged, LW_AUDIT_FLAG_RATIO);
    }
  }
  for (int k = 0; k < n_pol; k++) lw_model_free(models[k]);
  struct rusage ru;
  if (!rc && getrusage(RUSAGE_SELF, &ru) == 0) printf("peak_rss_mb=%.1f\n", (double)ru.ru_maxrss / 1024.0);
  return rc;
}
