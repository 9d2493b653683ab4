/* loopwise-train: fit the runtime's model from logged decisions, and (with --promote-into)
 * put it live only when it is not worse than the current one.
 *
 *   loopwise-train --data outcomes.db --config models/referral.json --out model.lwm
 *   loopwise-train --data logs.vw --config models/referral.json --out model.lwm
 *   loopwise-train --data outcomes.db --config referral.json --promote-into models/sites/default
 *                  [--retrain-every 24h] [--window-days 90]
 *
 * Run with no arguments for every option. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: loopwise-train --data FILE (--config program.json | --actions a,b,...) (--out model.lwm | --promote-into DIR)\n"
          "  data:      --data FILE (VW cb text, cb_adf, '-' for stdin, or the ingest SQLite store),\n"
          "             or --data postgres://... (the ingest PostgreSQL store)\n"
          "             --format auto|vw|vw_adf|sqlite   --site ID (SQLite, default 'default')\n"
          "             --from MS --to MS | --window-days N  (decision time range)\n"
          "  labels:    --labels retained|shares (SQLite with --config: retained, the referee value the\n"
          "               config's reward block prices, minus the incentive, for decisions whose\n"
          "               attribution window closed by --now; the others are left out and counted; a site\n"
          "               without referee reports falls back to shares x value_per_share, and says so)\n"
          "  model:     --bits 8-16 (14)  --passes N (3)  --personas 0-16 (4)  --clip W (50)\n"
          "             --refine N (50: at most N passes of L-BFGS on the whole objective after the\n"
          "               online passes, stopping once converged; 0 = none)\n"
          "             --min-ess N (200)  --min-positive N (10)  --holdout-mod N (10; 0 trains on all)\n"
          "               held out: the latest 1/N of the records by time when every record has one (the\n"
          "               store), else 1 in N by the hash of the record's id (VW: content and position)\n"
          "             --lr R (0.5 step of the normalized adaptive updates)  --l2 R (1e-6 shrink per update)\n"
          "             --segment attr^value (repeatable: fairness offsets; default: the values of the\n"
          "               config's fairness attribute)  --fair-ratio R (the config's, else 0.8)\n"
          "             --model-id N (default: now in seconds)  --now MS  --seed N\n"
          "  policy:    --value V --fatigue F --temperature T --floor P (default: the config's)\n"
          "  serving:   --promote-into DIR   promote only if, on the held-out records, the 95%% interval's\n"
          "                                   lower end of the difference from the best of DIR/current.lwm,\n"
          "                                   the rules and the best single action is above -margin x its value;\n"
          "                                   refused while no model decides: the best single action when it\n"
          "                                   beats the rules (lower end above 0, promoted=single), else the\n"
          "                                   candidate's channel rankings alone (promoted=channels)\n"
          "             --margin M (0.02)  --min-holdout N (200 held-out decisions, else promoted=no)\n"
          "             --retrain-every 24h   repeat forever (with --promote-into)\n"
          "  output:    --quiet (no progress)\n");
}

typedef struct {
  lw_cli c;
  lw_train_opts o;
  lw_promote_opts po;
  const char *out, *promote_dir;
  int64_t every_ms, window_ms, now_ms;
  uint32_t model_id;
  uint64_t seed;
  char command[1024];
} train_args;

static int parse(train_args *a, int argc, char **argv) {
  lw_cli_init(&a->c);
  lw_train_defaults(&a->o);
  lw_promote_defaults(&a->po);
  a->seed = 1;
  int fair_set = 0;
  size_t cl = 0;
  for (int i = 0; i < argc && cl < sizeof a->command - 2; i++)
    cl += (size_t)snprintf(a->command + cl, sizeof a->command - cl, "%s%s", i ? " " : "", argv[i]);
  for (int i = 1; i < argc; i++) {
    int r = lw_cli_option(&a->c, argc, argv, &i);
    if (r < 0) return -1;
    if (r) continue;
    const char *o = argv[i];
    if (i + 1 >= argc) {
      fprintf(stderr, "unknown option or missing value: %s\n", o);
      return -1;
    }
    const char *v = argv[++i];
    double d = 0;
    int isnum = lw_parse_decimal(v, strlen(v), &d);
    if (strcmp(o, "--out") == 0) a->out = v;
    else if (strcmp(o, "--promote-into") == 0) a->promote_dir = v;
    else if (strcmp(o, "--retrain-every") == 0) {
      if ((a->every_ms = lw_cli_duration_ms(v)) < 0) {
        fprintf(stderr, "--retrain-every: expected a duration like 24h, got '%s'\n", v);
        return -1;
      }
    } else if (strcmp(o, "--segment") == 0) {
      if (a->o.n_segments >= LW_MODEL_MAX_SEGMENTS || strlen(v) >= LW_SEGMENT_NAME_LEN + 1 || !strchr(v, '^')) {
        fprintf(stderr, "--segment: expected attr^value (at most %d segments), got '%s'\n", LW_MODEL_MAX_SEGMENTS, v);
        return -1;
      }
      snprintf(a->o.segments[a->o.n_segments++], LW_SEGMENT_NAME_LEN + 1, "%s", v);
    } else if (!isnum) {
      fprintf(stderr, "%s: '%s' is not a number (or the option is unknown)\n", o, v);
      return -1;
    } else if (strcmp(o, "--bits") == 0) a->o.bits = (int)d;
    else if (strcmp(o, "--passes") == 0) a->o.passes = (int)d;
    else if (strcmp(o, "--refine") == 0) a->o.refine = (int)d;
    else if (strcmp(o, "--personas") == 0) a->o.personas = (int)d;
    else if (strcmp(o, "--clip") == 0) a->o.clip = d;
    else if (strcmp(o, "--min-ess") == 0) a->o.min_ess = d;
    else if (strcmp(o, "--min-positive") == 0) a->o.min_positive = d;
    else if (strcmp(o, "--holdout-mod") == 0) a->o.holdout_mod = (int)d;
    else if (strcmp(o, "--fair-ratio") == 0) a->o.fair_ratio = d, fair_set = 1;
    else if (strcmp(o, "--lr") == 0) a->o.lr = d;
    else if (strcmp(o, "--l2") == 0) a->o.l2 = d;
    else if (strcmp(o, "--model-id") == 0) a->model_id = (uint32_t)d;
    else if (strcmp(o, "--now") == 0) a->now_ms = (int64_t)d;
    else if (strcmp(o, "--seed") == 0) a->seed = (uint64_t)d;
    else if (strcmp(o, "--window-days") == 0) a->window_ms = (int64_t)(d * 86400000.0);
    else if (strcmp(o, "--margin") == 0 && d >= 0) a->po.margin = d;
    else if (strcmp(o, "--min-holdout") == 0 && d >= 0) a->po.min_holdout = (int)d;
    else {
      fprintf(stderr, "unknown option %s\n", o);
      return -1;
    }
  }
  if (lw_cli_finish(&a->c, "loopwise-train") < 0) return -1;
  if (a->c.have_cfg && a->o.n_segments == 0) { /* the runtime offsets the config's fairness attribute */
    a->o.n_segments = lw_cli_fairness_segments(&a->c.cfg, a->o.segments, LW_MODEL_MAX_SEGMENTS);
    if (!fair_set && a->c.cfg.fairness_attr >= 0) a->o.fair_ratio = a->c.cfg.fairness_min_ratio;
  }
  if (!a->out && !a->promote_dir) {
    fprintf(stderr, "loopwise-train: say where the model goes: --out FILE or --promote-into DIR\n");
    return -1;
  }
  if (a->o.bits < 8 || a->o.bits > 16 || a->o.passes < 1 || a->o.refine < 0 || a->o.personas < 0 ||
      a->o.personas > LW_MODEL_MAX_PERSONAS || a->o.holdout_mod < 0 || a->o.holdout_mod == 1) {
    fprintf(stderr, "loopwise-train: --bits 8-16, --passes >= 1, --refine >= 0, --personas 0-16, --holdout-mod 0 or >= 2\n");
    return -1;
  }
  if (a->every_ms && !a->promote_dir) {
    fprintf(stderr, "loopwise-train: --retrain-every needs --promote-into DIR\n");
    return -1;
  }
  return 0;
}

static void print_report(const lw_model *m, const lw_train_result *res) {
  const lw_eval_report *rep = &res->report;
  printf("model=m%u records=%llu skipped=%llu data_from=%lld data_to=%lld\n", m->model_id,
         (unsigned long long)rep->records, (unsigned long long)rep->skipped, (long long)rep->t_min, (long long)rep->t_max);
  int deciding = 0;
  for (int a = 0; a < m->n_actions; a++) {
    printf("action %-12s enough_data=%s support=%lld\n", m->action_ids[a],
           (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) ? "yes" : "no", (long long)lw_model_support(m, (size_t)a));
    deciding += (m->action_flags[a] & LW_MODEL_ENOUGH_DATA) && strcmp(m->action_ids[a], LW_ACTION_NOT_NOW) != 0;
  }
  if (!deciding)
    printf("warning: no prompt action has enough data: the runtime keeps deciding by the rules with this model\n");
  for (int s = 0; s < m->n_segments; s++) printf("segment %-16s offset=%.3f\n", m->segment_names[s], m->segment_offsets[s]);
  printf("personas=%d\n", m->n_personas);
  printf("refine_passes=%d\n", res->refine_passes);
  printf("labels=%s", lw_label_kind_name(rep->labels));
  if (rep->labels != LW_LABELS_SHARES)
    printf(" attribution_days=%d left_out_open_window=%llu", rep->attribution_days,
           (unsigned long long)rep->open_windows);
  printf("\n");
  if (rep->labels == LW_LABELS_FALLBACK)
    printf("warning: the site reported no referee outcomes: labels are shares x value_per_share, not retained value\n");
  if (rep->labels == LW_LABELS_FALLBACK_OPEN)
    printf("warning: no decision's attribution window has closed yet: labels are shares x value_per_share, not retained "
           "value, until one has\n");
  for (int k = 0; rep->labels != LW_LABELS_SHARES && k < res->n_channel_personas; k++) {
    const lw_channel_ranking *r = &res->channels[k];
    printf("channels persona-%d:", k);
    if (!r->n_ranked) printf(" (fewer than %d shares through any channel)", LW_CHANNEL_MIN_SHARES);
    for (int i = 0; i < r->n_ranked; i++)
      printf(" %s=%.3f(n=%lld)", lw_channel_name((lw_channel)r->channel[i]), r->value[i], (long long)r->shares[i]);
    const lw_channel_ranking *c = lw_carried_ranking(res, k);
    if (r->n_ranked > 1 || c)
      printf("; first vs the others %+.3f (lower end %+.3f): %s", r->advantage, r->lo,
             c == r ? "carried" : c ? "the site's order carried" : "not carried, the prompt keeps its order");
    printf("\n");
  }
  if (rep->labels != LW_LABELS_SHARES && res->n_channel_personas > 1) {
    const lw_channel_ranking *r = &res->site_channels;
    printf("channels site:");
    for (int i = 0; i < r->n_ranked; i++)
      printf(" %s=%.3f(n=%lld)", lw_channel_name((lw_channel)r->channel[i]), r->value[i], (long long)r->shares[i]);
    printf("; first vs the others %+.3f (lower end %+.3f): %s\n", r->advantage, r->lo,
           r->confident ? "shown" : "not shown");
  }
  lw_cli_warn_data(rep);
  printf("%s (%s, n=%.0f):\n",
         res->in_sample ? "in-sample estimate (--holdout-mod 0: on the records it was trained on)" : "held-out estimate",
         !res->net_metric ? "referral shares per decision"
         : rep->labels != LW_LABELS_SHARES ? "retained value per decision" : "net value per decision", rep->target.n);
  lw_cli_print_interval("logged", &rep->target.logged);
  lw_cli_print_interval("ips", &rep->target.ips);
  lw_cli_print_interval("snips", &rep->target.snips);
  lw_cli_print_interval("dr", &rep->target.dr);
  if (!res->in_sample) lw_cli_warn_estimate("the model's estimate", rep);
}

/* Compare the candidate with DIR/current.lwm and promote it unless it is worse beyond the
 * interval. Appends one JSON line per decision to DIR/promotions.log. */
static int promote(train_args *a, const lw_model *cand, const uint8_t *bytes, size_t len) {
  char err[LW_ERRMSG_MAX], cur_path[4096], cand_path[4096], prev_path[4096], log_path[4096];
  if (lw_cli_mkdirs(a->promote_dir, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-train: %s\n", err);
    return -1;
  }
  snprintf(cur_path, sizeof cur_path, "%s/current.lwm", a->promote_dir);
  snprintf(cand_path, sizeof cand_path, "%s/candidate.lwm", a->promote_dir);
  snprintf(prev_path, sizeof prev_path, "%s/previous.lwm", a->promote_dir);
  snprintf(log_path, sizeof log_path, "%s/promotions.log", a->promote_dir);
  if (lw_write_file_atomic(cand_path, bytes, len, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-train: %s\n", err);
    return -1;
  }
  lw_compare_result cr;
  memset(&cr, 0, sizeof cr);
  lw_model *cur = lw_cli_load_model(cur_path, NULL, NULL, err, sizeof err);
  const char *why;
  if (!cur && access(cur_path, F_OK) == 0) fprintf(stderr, "loopwise-train: %s (comparing with the rules)\n", err);
  /* a live model that does not decide (channel rankings only) leaves the decisions to the rules:
   * the candidate is compared with those */
  lw_model *live = cur;
  if (cur && !lw_model_decides(cur)) cur = NULL;
  lw_metric mt;
  lw_promote_opts po = a->po;
  if (cur && lw_model_same_decisions(cur, cand)) {
    /* nothing new to serve: keep the current file, so its ETag (and every cache) stays */
    why = "same model as the current one";
  } else {
    /* the best of the live model, the rules (which logged what the model did not) and the
     * best single action, on the held-out records */
    lw_metric_init(&mt, 1, a->c.have_cfg ? &a->c.cfg : NULL, &a->c.pp, a->c.src.n_actions,
                   (const char(*)[LW_NAME_LEN + 1])a->c.src.actions);
    if (lw_source_graded(&a->c.src)) lw_metric_graded(&mt);
    po.eval.only_holdout = a->o.holdout_mod;
    po.eval.seed = a->seed;
    po.eval.n_segments = a->o.n_segments;
    memcpy(po.eval.segments, a->o.segments, sizeof po.eval.segments);
    po.fair_ratio = a->o.n_segments ? a->o.fair_ratio : 0.0;
    if (a->o.holdout_mod <= 0) {
      cr.promote = 0;
      why = "--holdout-mod 0 leaves no held-out records to compare on";
    } else if (lw_compare_models(&a->c.src, cur, cand, a->c.have_cfg ? &a->c.cfg : NULL, &a->c.pp, &mt, &po, &cr, err,
                                 sizeof err) != LW_OK) {
      fprintf(stderr, "loopwise-train: comparing with %s: %s\n", cur ? cur_path : "the rules", err);
      lw_model_free(live);
      return -1;
    } else {
      why = cr.reason;
      printf("compare n=%.0f rules=%.6f best_single=%s:%.6f", cr.n, cr.rules.est, cr.best_single_action,
             cr.best_single.est);
      if (cr.has_model) printf(" current=m%u:%.6f", cur->model_id, cr.model.est);
      printf("\ncompare baseline=%s dr=%.6f candidate=m%u dr=%.6f diff=%.6f [%.6f, %.6f] threshold=%.6f "
             "exposure_ratio=%.3f\n",
             cr.baseline, cr.current.est, cand->model_id, cr.candidate.est, cr.diff.est, cr.diff.lo, cr.diff.hi,
             cr.threshold, cr.exposure_ratio);
    }
  }
  if (cr.promote) {
    if (live) rename(cur_path, prev_path);
    if (rename(cand_path, cur_path) != 0) {
      fprintf(stderr, "loopwise-train: promoting %s: %s\n", cand_path, strerror(errno));
      lw_model_free(live);
      return -1;
    }
  } else {
    unlink(cand_path);
  }
  /* refused while no model decides: the best single action, when it beats the rules, or the
   * candidate's confident channel rankings alone (learn.h lw_fallback_model) */
  lw_fallback fb;
  memset(&fb, 0, sizeof fb);
  if (!cr.promote && a->o.holdout_mod > 0 && !(cur && lw_model_same_decisions(cur, cand))) {
    if (lw_fallback_model(&a->c.src, cur, cand, &cr, a->c.have_cfg ? &a->c.cfg : NULL, &a->c.pp, &mt, &po, &fb, err,
                          sizeof err) != LW_OK) {
      fprintf(stderr, "loopwise-train: %s\n", err);
      fb.kind = LW_FALLBACK_NONE;
    }
    if (fb.kind == LW_FALLBACK_SINGLE && fb.single.n > 0)
      printf("single n=%.0f rules=%.6f single=%s:%.6f diff=%.6f [%.6f, %.6f]\n", fb.single.n, fb.single.rules.est,
             fb.action, fb.single.candidate.est, fb.single.diff.est, fb.single.diff.lo, fb.single.diff.hi);
    lw_model *fm = NULL;
    if (fb.kind != LW_FALLBACK_NONE && live && lw_model_load(fb.bytes, fb.len, &fm, err, sizeof err) == LW_OK &&
        lw_model_same_decisions(live, fm)) {
      /* nothing new to serve: the live file stays, and its ETag (and every cache) with it */
      printf("%s: the live model already decides and ranks the channels so; kept\n", lw_fallback_name(fb.kind));
      fb.kind = LW_FALLBACK_NONE;
      free(fb.bytes);
      fb.bytes = NULL;
      fb.len = 0;
    }
    lw_model_free(fm);
    if (fb.kind != LW_FALLBACK_NONE) {
      if (live) rename(cur_path, prev_path);
      if (lw_write_file_atomic(cur_path, fb.bytes, fb.len, err, sizeof err) != LW_OK) {
        fprintf(stderr, "loopwise-train: %s\n", err);
        fb.kind = LW_FALLBACK_NONE;
      }
    }
  }
  const char *promoted = cr.promote ? "yes" : fb.kind == LW_FALLBACK_NONE ? "no" : lw_fallback_name(fb.kind);
  char etag[64];
  lw_model_etag(cr.promote ? bytes : fb.bytes, cr.promote ? len : fb.len, etag, sizeof etag);
  free(fb.bytes);
  printf("promoted=%s reason=\"%s\" etag=%s\n", promoted, why, cr.promote || fb.kind ? etag : "(unchanged)");
  if (fb.kind == LW_FALLBACK_CHANNELS)
    printf("channels: m%u's channel rankings went live alone; the rules still decide\n", cand->model_id);
  if (fb.kind == LW_FALLBACK_SINGLE)
    printf("single: %s went live, with m%u's channel rankings: %s\n", fb.action, cand->model_id, fb.reason);
  FILE *lf = fopen(log_path, "a");
  if (lf) {
    fprintf(lf,
            "{\"t\":%lld,\"candidate\":\"m%u\",\"current\":%s%u%s,\"promoted\":%s,\"reason\":\"%s\","
            "\"baseline\":\"%s\",\"n\":%.0f,\"candidate_value\":%.6f,\"baseline_value\":%.6f,"
            "\"rules\":%.6f,\"best_single\":[\"%s\",%.6f],\"diff\":[%.6f,%.6f,%.6f],\"threshold\":%.6f,"
            "\"exposure_ratio\":%.4f,\"channels_only\":%s,\"single_action\":%s%s%s}\n",
            (long long)lw_cli_now_ms(), cand->model_id, cur ? "\"m" : "", cur ? cur->model_id : 0, cur ? "\"" : "",
            cr.promote ? "true" : "false", why, cr.baseline, cr.n, cr.candidate.est, cr.current.est, cr.rules.est,
            cr.best_single_action, cr.best_single.est, cr.diff.est, cr.diff.lo, cr.diff.hi, cr.threshold,
            cr.exposure_ratio, fb.kind == LW_FALLBACK_CHANNELS ? "true" : "false",
            fb.kind == LW_FALLBACK_SINGLE ? "\"" : "", fb.kind == LW_FALLBACK_SINGLE ? fb.action : "null",
            fb.kind == LW_FALLBACK_SINGLE ? "\"" : "");
    fclose(lf);
  }
  lw_model_free(live);
  return 0;
}

static int run_once(train_args *a) {
  char err[LW_ERRMSG_MAX];
  int64_t now = a->now_ms ? a->now_ms : lw_cli_now_ms();
  a->c.src.now_ms = now; /* which attribution windows are closed */
  if (a->window_ms) {
    a->c.src.from_ms = now - a->window_ms;
    a->c.src.to_ms = now + 1;
  }
  uint32_t id = a->model_id ? a->model_id : (uint32_t)(now / 1000);
  if (!a->model_id && a->promote_dir) { /* ids only grow at a site, even within one second */
    char cur_path[4096];
    snprintf(cur_path, sizeof cur_path, "%s/current.lwm", a->promote_dir);
    lw_model *cur = lw_cli_load_model(cur_path, NULL, NULL, err, sizeof err);
    if (cur && cur->model_id >= id) id = cur->model_id + 1;
    lw_model_free(cur);
  }
  lw_train_request rq = {&a->c.src, &a->o, a->c.have_cfg ? &a->c.cfg : NULL, &a->c.pp, a->seed, id, now, a->command,
                         lw_cli_progress, &a->c};
  lw_train_result res;
  lw_status st = lw_train(&rq, &res, err, sizeof err);
  if (st != LW_OK) {
    fprintf(stderr, "loopwise-train: %s\n", err);
    return st == LW_ERR_IO ? 3 : 2;
  }
  lw_model *m = res.model;
  uint8_t *bytes = NULL;
  size_t len = 0;
  int rc = 0;
  if (lw_model_write(m, &bytes, &len, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-train: %s\n", err);
    lw_model_free(m);
    return 2;
  }
  print_report(m, &res);
  if (a->out && lw_write_file_atomic(a->out, bytes, len, err, sizeof err) != LW_OK) {
    fprintf(stderr, "loopwise-train: %s\n", err);
    rc = 3;
  } else if (a->out) {
    printf("wrote %s (%zu bytes)\n", a->out, len);
  }
  if (!rc && a->promote_dir && promote(a, m, bytes, len) < 0) rc = 3;
  free(bytes);
  lw_model_free(m);
  return rc;
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
  train_args a;
  memset(&a, 0, sizeof a);
  if (parse(&a, argc, argv) < 0) {
    fprintf(stderr, "(run loopwise-train without arguments for usage)\n");
    return 2;
  }
  if (!a.every_ms) {
    int rc = run_once(&a);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) printf("peak_rss_mb=%.1f\n", (double)ru.ru_maxrss / 1024.0);
    return rc;
  }
  for (;;) { /* a failed round keeps the current model and tries again next time */
    a.model_id = 0;
    run_once(&a);
    fflush(stdout);
    struct timespec ts = {(time_t)(a.every_ms / 1000), (long)(a.every_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}
