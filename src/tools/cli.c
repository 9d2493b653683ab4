/* cli.c: option parsing and terminal output shared by the learning-loop CLIs. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

lw_status lw_cli_mkdirs(const char *path, char *err, size_t errlen) {
  char p[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof p) {
    snprintf(err, errlen, "cannot make the folder %s: %s", path, n ? "path too long" : "empty path");
    return LW_ERR_IO;
  }
  memcpy(p, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char c = p[i];
    p[i] = '\0';
    struct stat st;
    if (mkdir(p, 0755) != 0 && (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
      int e = errno == EEXIST ? ENOTDIR : errno;
      snprintf(err, errlen, "cannot make the folder %s: %s", path, strerror(e));
      return LW_ERR_IO;
    }
    p[i] = c;
  }
  return LW_OK;
}

void lw_cli_init(lw_cli *c) {
  memset(c, 0, sizeof *c);
  c->src.path = NULL;
  c->src.site = "default";
  lw_policy_params_init(&c->pp, NULL);
  c->progress_pct = -1;
}

static int need(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "%s needs a value\n", argv[*i]);
    return -1;
  }
  (*i)++;
  return 0;
}

static int num(const char *opt, const char *s, double *out) {
  if (!lw_parse_decimal(s, strlen(s), out)) {
    fprintf(stderr, "%s: '%s' is not a decimal number\n", opt, s);
    return -1;
  }
  return 0;
}

int lw_cli_option(lw_cli *c, int argc, char **argv, int *i) {
  const char *o = argv[*i];
  double v;
  if (strcmp(o, "--quiet") == 0) {
    c->quiet = 1;
    return 1;
  }
  static const char *const with_value[] = {"--data", "--format", "--site", "--from", "--to", "--config", "--actions",
                                           "--value", "--fatigue", "--temperature", "--floor", "--labels", NULL};
  int known = 0;
  for (int k = 0; with_value[k]; k++) known |= strcmp(o, with_value[k]) == 0;
  if (!known) return 0;
  if (need(argc, argv, i) < 0) return -1;
  const char *a = argv[*i];
  if (strcmp(o, "--data") == 0) c->src.path = a;
  else if (strcmp(o, "--site") == 0) c->src.site = a;
  else if (strcmp(o, "--labels") == 0) {
    if (strcmp(a, "retained") != 0 && strcmp(a, "shares") != 0) {
      fprintf(stderr, "--labels: expected retained or shares, got '%s'\n", a);
      return -1;
    }
    c->shares_labels = strcmp(a, "shares") == 0;
  }
  else if (strcmp(o, "--format") == 0) {
    if (strcmp(a, "auto") == 0) c->src.kind = LW_SRC_AUTO;
    else if (strcmp(a, "vw") == 0) c->src.kind = LW_SRC_VW;
    else if (strcmp(a, "vw_adf") == 0 || strcmp(a, "cb_adf") == 0) c->src.kind = LW_SRC_VW_ADF;
    else if (strcmp(a, "sqlite") == 0) c->src.kind = LW_SRC_SQLITE;
    else {
      fprintf(stderr, "--format: expected auto, vw, vw_adf or sqlite, got '%s'\n", a);
      return -1;
    }
  } else if (strcmp(o, "--from") == 0 || strcmp(o, "--to") == 0) {
    if (num(o, a, &v) < 0) return -1;
    *(strcmp(o, "--from") == 0 ? &c->src.from_ms : &c->src.to_ms) = (int64_t)v;
  } else if (strcmp(o, "--config") == 0) {
    char err[LW_ERRMSG_MAX + 256];
    if (lw_cli_load_config(a, &c->cfg, err, sizeof err) != LW_OK) {
      fprintf(stderr, "--config: %s\n", err);
      return -1;
    }
    c->have_cfg = 1;
  } else if (strcmp(o, "--actions") == 0) {
    c->src.n_actions = 0;
    const char *s = a;
    while (*s) {
      size_t n = strcspn(s, ",");
      if (n == 0 || n >= LW_NAME_LEN + 1 || c->src.n_actions >= LW_LEARN_MAX_ACTIONS) {
        fprintf(stderr, "--actions: expected 1-%d comma-separated ids of 1-32 characters\n", LW_LEARN_MAX_ACTIONS);
        return -1;
      }
      memcpy(c->src.actions[c->src.n_actions], s, n);
      c->src.actions[c->src.n_actions++][n] = '\0';
      s += n + (s[n] == ',');
    }
  } else {
    if (num(o, a, &v) < 0) return -1;
    if (strcmp(o, "--value") == 0) c->pp.value = v, c->pp_set |= 1;
    else if (strcmp(o, "--fatigue") == 0) c->pp.fatigue = v, c->pp_set |= 2;
    else if (strcmp(o, "--temperature") == 0) {
      if (!(v > 0)) {
        fprintf(stderr, "--temperature must be positive\n");
        return -1;
      }
      c->pp.temperature = v;
      c->pp_set |= 4;
    } else c->pp.floor = v, c->pp_set |= 8;
  }
  return 1;
}

int lw_cli_finish(lw_cli *c, const char *prog) {
  if (!c->src.path) {
    fprintf(stderr, "%s: --data FILE is required (a VW text file, '-' for stdin, or the ingest SQLite store)\n", prog);
    return -1;
  }
  if (c->src.n_actions == 0 && c->have_cfg) lw_actions_from_config(&c->cfg, &c->src.n_actions, c->src.actions);
  if (c->have_cfg) { /* the engine's exploration policy comes from the config unless overridden */
    lw_policy_params pp;
    lw_policy_params_init(&pp, &c->cfg);
    if (!(c->pp_set & 1)) c->pp.value = pp.value;
    if (!(c->pp_set & 2)) c->pp.fatigue = pp.fatigue;
    if (!(c->pp_set & 4)) c->pp.temperature = pp.temperature;
    if (!(c->pp_set & 8)) c->pp.floor = pp.floor;
  }
  /* Delayed, graded labels (learn.h lw_label_kind) when a config prices them; --labels shares
   * keeps the label "a share or copy followed". */
  c->src.reward = c->have_cfg && !c->shares_labels ? &c->cfg : NULL;
  if (!c->src.now_ms) c->src.now_ms = lw_cli_now_ms();
  if (c->src.n_actions == 0) {
    fprintf(stderr, "%s: the action list is needed: --config program.json (its variants, then " LW_ACTION_NOT_NOW ") or --actions a,b,c\n", prog);
    return -1;
  }
  return 0;
}

void lw_cli_progress(void *ctx, const char *phase, double fraction) {
  lw_cli *c = ctx;
  if (c->quiet) return;
  int pct = (int)(fraction * 100 + 0.5);
  if (pct > 100) pct = 100;
  int same = strcmp(c->progress_phase, phase) == 0, last_pct = c->progress_pct;
  if (isatty(2)) {
    if (same && pct == last_pct) return;
    int w = 30, f = pct * w / 100;
    fprintf(stderr, "\r%-16s [", phase);
    for (int k = 0; k < w; k++) fputc(k < f ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%%", pct);
    if (pct >= 100) fputc('\n', stderr);
  } else {
    if (same && pct / 10 == last_pct / 10) return;
    fprintf(stderr, "%s: %d%%\n", phase, pct);
  }
  fflush(stderr);
  c->progress_pct = pct;
  snprintf(c->progress_phase, sizeof c->progress_phase, "%s", phase);
}

char *lw_cli_read_file(const char *path, size_t *len, char *err, size_t errlen) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  int bad = ferror(f);
  if (f != stdin) fclose(f);
  if (!buf || bad) {
    snprintf(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

lw_status lw_cli_load_config(const char *path, lw_config *cfg, char *err, size_t errlen) {
  size_t len = 0;
  char *text = lw_cli_read_file(path, &len, err, errlen);
  if (!text) return LW_ERR_IO;
  char why[LW_ERRMSG_MAX];
  lw_status st = len >= 4 && memcmp(text, "LWCF", 4) == 0
                     ? lw_config_read((const uint8_t *)text, len, cfg, why, sizeof why)
                     : lw_config_parse(text, len, cfg, why, sizeof why);
  free(text);
  if (st != LW_OK) snprintf(err, errlen, "%s: %s", path, why);
  return st;
}

int lw_cli_write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
  int ok = f && fwrite(bytes, 1, n, f) == n;
  if (f && f != stdout) ok &= fclose(f) == 0;
  else if (f) ok &= fflush(f) == 0;
  if (!ok) perror(path);
  return ok ? 0 : -1;
}

lw_model *lw_cli_load_model(const char *path, uint8_t **bytes, size_t *len, char *err, size_t errlen) {
  size_t n;
  char *buf = lw_cli_read_file(path, &n, err, errlen);
  if (!buf) return NULL;
  lw_model *m = NULL;
  char e2[LW_ERRMSG_MAX];
  if (lw_model_load((const uint8_t *)buf, n, &m, e2, sizeof e2) != LW_OK) {
    snprintf(err, errlen, "%s: %s", path, e2);
    free(buf);
    return NULL;
  }
  if (bytes) {
    *bytes = (uint8_t *)buf;
    *len = n;
  } else {
    free(buf);
  }
  return m;
}

int64_t lw_cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lw_cli_duration_ms(const char *s) {
  size_t n = strlen(s);
  if (n == 0) return -1;
  int64_t unit = 1;
  switch (s[n - 1]) {
    case 's': unit = 1000; n--; break;
    case 'm': unit = 60000; n--; break;
    case 'h': unit = 3600000; n--; break;
    case 'd': unit = 86400000; n--; break;
    default: break;
  }
  double v;
  if (!lw_parse_decimal(s, n, &v) || v <= 0) return -1;
  return (int64_t)(v * (double)unit);
}

void lw_cli_print_interval(const char *name, const lw_interval *iv) {
  printf("  %-6s %.6f  [%.6f, %.6f]\n", name, iv->est, iv->lo, iv->hi);
}

int lw_cli_fairness_segments(const lw_config *cfg, char segs[][LW_SEGMENT_NAME_LEN + 1], int cap) {
  int a = cfg->fairness_attr, n = 0;
  for (int v = 0; a >= 0 && v < cfg->attr_n_values[a] && n < cap; v++)
    snprintf(segs[n++], LW_SEGMENT_NAME_LEN + 1, "%s^%s", cfg->attr_names[a], cfg->attr_values[a][v]);
  return n;
}

int lw_cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

void lw_cli_warn_data(const lw_eval_report *rep) {
  if (rep->tiny_values)
    printf("warning: %llu non-zero feature values were read as 0: values are fixed point in steps of 1/256, so "
           "anything below 1/512 rounds to 0; rescale those features (e.g. thousands instead of units)\n",
           (unsigned long long)rep->tiny_values);
  if (rep->costs_look_01)
    printf("warning: every cost is 0 or 1: Loopwise reads cost as minus the reward (-1 = the prompt led to a "
           "referral, 0 = it did not); if 1 marks a bad outcome, this data teaches the opposite: write the good "
           "outcome as -1 and the bad one as 0\n");
}

void lw_cli_warn_estimate(const char *what, const lw_eval_report *rep) {
  const lw_estimates *e = &rep->target;
  if (e->n > 0 && e->ess < 100)
    printf("warning: %s: effective sample size %.0f is under 100: the estimate rests on few records\n", what, e->ess);
  if (e->n > 0 && e->dr.hi - e->dr.lo == 0.0)
    printf("warning: %s: the interval has zero width: the data cannot say how uncertain this is\n", what);
  if (e->unsupported > 0)
    printf("warning: %s: %.1f%% of its choices go to actions with no logged data; DR credits them nothing and "
           "its upper end is raised by up to %.6g for what they could be worth\n",
           what, 100.0 * e->unsupported, e->unsupported_value);
  if (rep->trained_on > 0)
    printf("warning: %s: %llu of the %llu evaluated records %s the model was trained on (its metadata's data range "
           "and held-out rule): this estimate is in-sample and flatters the model\n",
           what, (unsigned long long)rep->trained_on, (unsigned long long)rep->records,
           rep->exactly_trained ? "are exactly the records" : "are among the records");
}
