/* cli.h: what loopwise-train and loopwise-eval share: the data-source options, progress
 * output, and reading config and model files. Internal to src/tools. */
#ifndef LW_TOOLS_CLI_H
#define LW_TOOLS_CLI_H

#include "loopwise/learn.h"

typedef struct {
  lw_source_opts src;
  lw_config cfg;
  int have_cfg;
  int shares_labels; /* --labels shares: a share or copy is the label, even with a config */
  lw_policy_params pp;
  unsigned pp_set; /* bit per --value/--fatigue/--temperature/--floor given */
  int quiet;
  int progress_pct;          /* what the progress line last showed */
  char progress_phase[32];
} lw_cli;

/* Handle one of the shared options at argv[*i] (--data, --format, --site, --from, --to,
 * --config, --actions, --value, --fatigue, --temperature, --floor, --quiet), advancing *i
 * past its value. 1 handled, 0 not a shared option, -1 error (printed). */
int lw_cli_option(lw_cli *c, int argc, char **argv, int *i);
void lw_cli_init(lw_cli *c);
/* Check the options after parsing; fills the action list from the config. 0 ok, -1 error. */
int lw_cli_finish(lw_cli *c, const char *prog);
/* Progress on stderr: a bar on a terminal, plain lines every 10% otherwise. */
void lw_cli_progress(void *ctx, const char *phase, double fraction);
/* Whole file ("-": standard input) into a malloc'd buffer (NUL-terminated); NULL with err set. */
char *lw_cli_read_file(const char *path, size_t *len, char *err, size_t errlen);
/* A program config from path ("-": standard input), JSON or compiled (.lwc, told apart by its
 * magic). LW_OK, LW_ERR_IO (unreadable) or the reader's status, with "path: problem" in err. */
lw_status lw_cli_load_config(const char *path, lw_config *cfg, char *err, size_t errlen);
/* Write n bytes to path ("-": standard output); 0, or -1 after printing why. */
int lw_cli_write_file(const char *path, const void *bytes, size_t n);
/* mkdir -p: make the folder and every missing parent (0755). LW_OK when it is there, else
 * LW_ERR_IO with "cannot make the folder PATH: <reason>". */
lw_status lw_cli_mkdirs(const char *path, char *err, size_t errlen);
/* Load a model file; NULL with err set. */
lw_model *lw_cli_load_model(const char *path, uint8_t **bytes, size_t *len, char *err, size_t errlen);
int64_t lw_cli_now_ms(void);
/* The segments of the config's fairness attribute ("plan^free", ...); returns how many. */
int lw_cli_fairness_segments(const lw_config *cfg, char segs[][LW_SEGMENT_NAME_LEN + 1], int cap);
/* "90" (ms), "30s", "15m", "24h", "7d" -> ms; -1 if invalid. */
int64_t lw_cli_duration_ms(const char *s);
void lw_cli_print_interval(const char *name, const lw_interval *iv);
/* 1 when an argument is --help or -h: the CLI prints its usage on stdout and exits 0. */
int lw_cli_wants_help(int argc, char **argv);
/* "warning: ..." lines on stdout: about the data (values the fixed point rounds to 0, costs that
 * look like {0 good, 1 bad}), and about an estimate (effective sample size under 100, a
 * zero-width interval, choices on actions without logged data, records the model was trained on). */
void lw_cli_warn_data(const lw_eval_report *rep);
void lw_cli_warn_estimate(const char *what, const lw_eval_report *rep);

#endif
