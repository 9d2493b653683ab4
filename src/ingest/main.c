/* main.c: the loopwise-ingest command: settings from a config file, the environment and flags,
 * then serve until SIGTERM or SIGINT, then stop gracefully.
 *
 * Signals are blocked before any thread starts and taken with sigwait on the main thread, so
 * no handler runs in an arbitrary thread and shutdown is ordinary code. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loopwise/ingest.h"
#include "loopwise/json.h"

extern char **environ;

static void usage(FILE *out) {
  fprintf(out,
          "usage: loopwise-ingest --db FILE|postgres://... [--port N] [--config FILE] [--SETTING VALUE ...]\n"
          "\n"
          "Receives Loopwise outcome batches (POST /v1/outcomes), stores them durably in SQLite\n"
          "(or PostgreSQL, for several replicas on one database: --db postgres://...)\n"
          "and serves aggregates (GET /v1/stats), Prometheus metrics (GET /metrics), a\n"
          "health check (GET /healthz), each site's model (GET /v1/model, from --models-dir),\n"
          "a referrer's counts (GET /v1/referrals/CODE) and the reward list (GET\n"
          "/v1/attributions). SIGTERM stops accepting, drains in-flight requests and closes\n"
          "the database.\n"
          "\n"
          "  --config FILE          JSON config: any setting below by key, plus \"sites\":\n"
          "                         [{\"id\": \"acme\", \"write_key\": \"...\",\n"
          "                           \"origins\": [\"https://app.acme.example\"]}]\n"
          "                         Without sites: site \"default\", write key \"demo-site-key\",\n"
          "                         loopback Origins (http://127.0.0.1:*, http://localhost:*).\n"
          "  --help                 this text\n"
          "\n");
  lw_ingest_config_usage(out);
}

int main(int argc, char **argv) {
  lw_ingest_config cfg;
  char errmsg[LW_ERRMSG_MAX];
  const char *config_path = NULL;
  lw_logger log = {LW_LOG_INFO, 2};
  lw_json_install_hooks(); /* before any thread parses: a failed allocation answers 503, not 400 */
#ifdef M_TRIM_THRESHOLD
  /* glibc gives a thread arena's free top back to the kernel (madvise) once it passes the trim
   * threshold, 128 KiB by default: the writer's SQLite statement journals and temporary
   * b-trees crossed it on most group commits, so the kernel zeroed and faulted the same pages
   * in again and again (madvise about once per batch under load, 4% of the server's time).
   * Kept up to 32 MiB per arena instead; the memory a client may hold is bounded elsewhere
   * (ingest.h limits), and ingest_peak_rss_mb measures the whole. */
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--config") && i + 1 < argc) config_path = argv[i + 1];
  }

  lw_ingest_config_init(&cfg);
  lw_status st = LW_OK;
  if (config_path) st = lw_ingest_config_load_file(&cfg, config_path, errmsg, sizeof errmsg);
  if (st == LW_OK) st = lw_ingest_config_apply_env(&cfg, environ, errmsg, sizeof errmsg);
  for (int i = 1; st == LW_OK && i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0) {
      snprintf(errmsg, sizeof errmsg, "unexpected argument '%s'", arg);
      st = LW_ERR_INVALID;
      break;
    }
    const char *name = arg + 2, *value;
    char flag[64];
    const char *eq = strchr(name, '=');
    if (eq) { /* --name=value */
      snprintf(flag, sizeof flag, "%.*s", (int)(eq - name), name);
      name = flag;
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      snprintf(errmsg, sizeof errmsg, "--%s needs a value", name);
      st = LW_ERR_INVALID;
      break;
    }
    if (!strcmp(name, "config")) continue;
    st = lw_ingest_config_set(&cfg, name, value, errmsg, sizeof errmsg);
  }
  if (st == LW_OK) st = lw_ingest_config_finish(&cfg, errmsg, sizeof errmsg);
  if (st != LW_OK) {
    fprintf(stderr, "loopwise-ingest: %s\n(see --help)\n", errmsg);
    lw_ingest_config_clear(&cfg);
    return 2;
  }
  log.min = (lw_log_level)lw_log_level_parse(cfg.log_level);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

  lw_ingest_server *server;
  if (lw_ingest_server_start(&cfg, &server, errmsg, sizeof errmsg) != LW_OK) {
    lw_log_msg(&log, LW_LOG_ERROR, "could not start", errmsg);
    lw_ingest_config_clear(&cfg);
    return 1;
  }
  lw_log_line line;
  if (lw_log_begin(&line, &log, LW_LOG_INFO, "listening")) {
    lw_log_str(&line, "bind", cfg.bind);
    lw_log_int(&line, "port", lw_ingest_server_port(server));
    char db[1024];
    lw_store_describe(cfg.db, db, sizeof db); /* no password in the log */
    lw_log_str(&line, "db", db);
    lw_log_int(&line, "sites", (int64_t)cfg.n_sites);
    lw_log_str(&line, "rate_limit", cfg.rate_limit ? "on" : "off");
    lw_log_str(&line, "read_token", cfg.read_token ? "set" : "unset (loopback only)");
    lw_log_end(&line);
  }
  /* Tests and supervisors may read the port from stdout as well: one line, then flush. */
  printf("listening on %s port %d\n", cfg.bind, lw_ingest_server_port(server));
  fflush(stdout);

  int sig = 0;
  sigdelset(&stop_signals, SIGPIPE);
  sigwait(&stop_signals, &sig);
  if (lw_log_begin(&line, &log, LW_LOG_INFO, "stopping")) {
    lw_log_str(&line, "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    lw_log_end(&line);
  }
  lw_ingest_server_stop(server);
  lw_log_msg(&log, LW_LOG_INFO, "stopped", NULL);
  lw_ingest_config_clear(&cfg);
  return 0;
}
