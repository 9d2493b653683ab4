/* test_faults.c: the failure paths of the write path. A store that fails (before the real
 * store is reached, after it committed, or at any one statement inside the SQLite transaction)
 * must keep nothing of the failed call, answer 503 over HTTP, and let the next write and the
 * retry through, the retry stored exactly once. The server runs in this process over the
 * fault-injecting backend (store_fault.c) and is spoken to over loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "loopwise/batch.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"

#define NOW 1764100000000LL
#define VALID_ID "b-7f3c9a1e2d4b5c6a"

static char *valid_text;


/* valid-batch.json with its batch_id replaced by one of the same length, made from tag. */
static char *batch_text(const char *tag) {
  char *t = strdup(valid_text);
  char *at = strstr(t, VALID_ID);
  char id[sizeof VALID_ID];
  snprintf(id, sizeof id, "b-%16s", tag);
  for (char *p = id; *p; p++)
    if (*p == ' ') *p = '0';
  memcpy(at, id, strlen(id));
  return t;
}

static lw_batch *batch_of(const char *tag) {
  char *t = batch_text(tag);
  lw_batch *b = NULL;
  lw_batch_error e;
  CHECK_INT(lw_batch_parse(t, strlen(t), NULL, NOW, &b, &e), LW_OK);
  free(t);
  return b;
}

static char *temp_db(void) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/lw-test-faults-XXXXXX");
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  return path;
}


static int64_t outcomes(lw_store *s) {
  lw_stats st;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_store_stats(s, "default", &st, err, sizeof err), LW_OK);
  int64_t n = st.outcomes;
  lw_stats_clear(&st);
  return n;
}

/* ---------------------------------------------------------------- inside the SQLite backend */

/* Two batches in one group are 6 statements: BEGIN, a batch row, its 5 events in one INSERT,
 * the same for the second batch, COMMIT. Failing each one in turn must leave nothing of the
 * group, and the very next write must work: without the ROLLBACK the transaction would stay
 * open and that next BEGIN would fail. */
static void sqlite_failing_any_statement_of_a_group_keeps_nothing_and_the_next_write_works(void) {
  char *path = temp_db();
  char err[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &s, err, sizeof err), LW_OK);
  if (!s) return;
  int64_t expected = 0;
  for (unsigned step = 1; step <= 6; step++) {
    char ta[16], tb[16], tc[16];
    snprintf(ta, sizeof ta, "a%u", step);
    snprintf(tb, sizeof tb, "b%u", step);
    snprintf(tc, sizeof tc, "c%u", step);
    lw_batch *a = batch_of(ta), *b = batch_of(tb), *c = batch_of(tc);
    lw_store_item ia = {"default", a, NOW, 0, 0}, ib = {"default", b, NOW, 0, 0};
    lw_store_item ic = {"default", c, NOW, 0, 0};
    lw_store_item *group[] = {&ia, &ib}, *alone[] = {&ic};
    lw_store_sqlite_fail_step(s, step);
    err[0] = '\0';
    CHECK_INT(lw_store_write(s, group, 2, err, sizeof err), LW_ERR_IO);
    CHECK_CONTAINS(err, "injected fault");
    CHECK_INT(ia.stored + ib.stored, 0);
    CHECK_INT(outcomes(s), expected); /* nothing of the failed group */
    CHECK_INT(lw_store_write(s, alone, 1, err, sizeof err), LW_OK); /* the next write */
    CHECK_INT(ic.stored, 5);
    CHECK_INT(lw_store_write(s, group, 2, err, sizeof err), LW_OK); /* the retry */
    CHECK_INT(ia.stored + ib.stored, 10);
    CHECK_INT(ia.duplicate + ib.duplicate, 0);
    expected += 15;
    CHECK_INT(outcomes(s), expected);
    lw_batch_free(a);
    lw_batch_free(b);
    lw_batch_free(c);
  }
  lw_store_free(s);
  tu_remove_db(path);
}

/* A failed read through the fault store hands back nothing and says why; the next read works
 * (the trainer reads through this interface). */
static void failed_decision_read_returns_no_cursor_and_the_next_read_works(void) {
  char *path = temp_db();
  char err[LW_ERRMSG_MAX];
  lw_store *sq = NULL, *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &sq, err, sizeof err), LW_OK);
  CHECK_INT(lw_store_open_fault(sq, &s, err, sizeof err), LW_OK);
  if (!s) return;
  lw_batch *a = batch_of("r1");
  lw_store_item ia = {"default", a, NOW, 0, 0}, *one[] = {&ia};
  CHECK_INT(lw_store_write(s, one, 1, err, sizeof err), LW_OK);
  lw_store_range r = {"default", 0, 0};
  lw_store_cursor *c = (lw_store_cursor *)1;
  uint64_t n = 99;
  lw_store_fault_arm(s, LW_FAULT_OP_DECISIONS, 1, LW_FAULT_BEFORE);
  CHECK(lw_store_decisions(s, &r, &c, err, sizeof err) != LW_OK);
  CHECK(c == NULL);
  CHECK_CONTAINS(err, "decisions: injected fault");
  lw_store_fault_arm(s, LW_FAULT_OP_COUNT_DECISIONS, 1, LW_FAULT_BEFORE);
  CHECK(lw_store_count_decisions(s, &r, &n, err, sizeof err) != LW_OK);
  CHECK_CONTAINS(err, "count_decisions: injected fault");
  CHECK_INT(lw_store_count_decisions(s, &r, &n, err, sizeof err), LW_OK);
  CHECK_INT(n, 2); /* valid-batch.json holds two decisions */
  CHECK_INT(lw_store_decisions(s, &r, &c, err, sizeof err), LW_OK);
  lw_store_decision d;
  CHECK_INT(lw_store_next(c, &d, err, sizeof err), 1);
  CHECK_INT(lw_store_next(c, &d, err, sizeof err), 1);
  CHECK_INT(lw_store_next(c, &d, err, sizeof err), 0);
  lw_store_cursor_free(c);
  lw_batch_free(a);
  lw_store_free(s);
  tu_remove_db(path);
}

/* ---------------------------------------------------------------- over HTTP */

typedef struct {
  int status;
  char text[4096]; /* the whole answer, headers included */
  const char *body;
} http_answer;

/* One request on a fresh connection (Connection: close), read to the end. */
static void http(int port, const char *method, const char *path, const char *body,
                 http_answer *out) {
  memset(out, 0, sizeof *out);
  out->body = "";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {60, 0}; /* a hung server fails the test instead of hanging it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return;
  }
  char req[8192];
  size_t blen = body ? strlen(body) : 0;
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   method, path, blen);
  size_t len = (size_t)n;
  if (body && len + blen < sizeof req) memcpy(req + len, body, blen), len += blen;
  for (size_t sent = 0; sent < len;) {
    ssize_t w = write(fd, req + sent, len - sent);
    if (w <= 0) break;
    sent += (size_t)w;
  }
  size_t got = 0;
  for (ssize_t r; got < sizeof out->text - 1 &&
                  (r = read(fd, out->text + got, sizeof out->text - 1 - got)) > 0;)
    got += (size_t)r;
  out->text[got] = '\0';
  close(fd);
  sscanf(out->text, "HTTP/1.1 %d", &out->status);
  const char *b = strstr(out->text, "\r\n\r\n");
  if (b) out->body = b + 4;
}

static void post(int port, const char *tag, http_answer *out) {
  char *t = batch_text(tag);
  http(port, "POST", "/v1/outcomes", t, out);
  free(t);
}

static int64_t stats_outcomes(int port) {
  http_answer a;
  http(port, "GET", "/v1/stats", NULL, &a);
  CHECK_INT(a.status, 200);
  const char *o = strstr(a.body, "\"outcomes\":");
  return o ? atoll(o + strlen("\"outcomes\":")) : -1;
}

typedef struct {
  lw_ingest_config cfg;
  lw_ingest_server *server;
  lw_store *fault;  /* the server's store */
  lw_store *sqlite; /* inside it */
  char *path;
  int port;
} fixture;

static int start(fixture *fx) {
  char err[LW_ERRMSG_MAX];
  memset(fx, 0, sizeof *fx);
  fx->path = temp_db();
  lw_ingest_config_init(&fx->cfg);
  CHECK_INT(lw_ingest_config_set(&fx->cfg, "db", fx->path, err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&fx->cfg, "port", "0", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&fx->cfg, "log-level", "off", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_set(&fx->cfg, "k-anonymity", "1", err, sizeof err), LW_OK);
  CHECK_INT(lw_ingest_config_finish(&fx->cfg, err, sizeof err), LW_OK);
  CHECK_INT(lw_store_open_sqlite(fx->path, &fx->sqlite, err, sizeof err), LW_OK);
  if (!fx->sqlite) return 0;
  CHECK_INT(lw_store_open_fault(fx->sqlite, &fx->fault, err, sizeof err), LW_OK);
  if (!fx->fault) return 0;
  CHECK_INT(lw_ingest_server_start_with_store(&fx->cfg, fx->fault, &fx->server, err, sizeof err), LW_OK);
  if (!fx->server) {
    fprintf(stderr, "server: %s\n", err);
    return 0;
  }
  fx->port = lw_ingest_server_port(fx->server);
  return 1;
}

static void stop(fixture *fx) {
  lw_ingest_server_stop(fx->server);
  lw_ingest_config_clear(&fx->cfg);
  tu_remove_db(fx->path);
}

static void failed_write_answers_503_stores_nothing_and_the_server_recovers(void) {
  fixture fx;
  if (!start(&fx)) return;
  http_answer a;
  lw_store_fault_arm(fx.fault, LW_FAULT_OP_WRITE, 1, LW_FAULT_BEFORE);
  post(fx.port, "x", &a);
  CHECK_INT(a.status, 503);
  CHECK_CONTAINS(a.text, "Retry-After: 1");
  CHECK_CONTAINS(a.body, "store unavailable");
  CHECK_INT(lw_store_fault_injected(fx.fault, LW_FAULT_OP_WRITE), 1);
  CHECK_INT(stats_outcomes(fx.port), 0);
  post(fx.port, "y", &a); /* the next batch */
  CHECK_INT(a.status, 200);
  CHECK_STR(a.body, "{\"stored\":5,\"refused\":0}");
  post(fx.port, "x", &a); /* the retry of the failed one */
  CHECK_INT(a.status, 200);
  CHECK_STR(a.body, "{\"stored\":5,\"refused\":0}");
  post(fx.port, "x", &a);
  CHECK_STR(a.body, "{\"stored\":0,\"duplicate\":true}");
  CHECK_INT(stats_outcomes(fx.port), 10);
  http(fx.port, "GET", "/metrics", NULL, &a);
  CHECK_CONTAINS(a.body, "loopwise_ingest_rejects_total{reason=\"store\"} 1\n");
  CHECK_CONTAINS(a.body, "loopwise_ingest_requests_total{code=\"503\"} 1\n");
  stop(&fx);
}

/* The store committed but the server heard of a failure (a lost COMMIT answer): the client
 * gets 503 and retries, and the retry is answered as the duplicate it is. */
static void commit_whose_answer_was_lost_is_stored_once_when_retried(void) {
  fixture fx;
  if (!start(&fx)) return;
  http_answer a;
  lw_store_fault_arm(fx.fault, LW_FAULT_OP_WRITE, 1, LW_FAULT_AFTER);
  post(fx.port, "lost", &a);
  CHECK_INT(a.status, 503);
  post(fx.port, "lost", &a);
  CHECK_INT(a.status, 200);
  CHECK_STR(a.body, "{\"stored\":0,\"duplicate\":true}");
  CHECK_INT(stats_outcomes(fx.port), 5);
  stop(&fx);
}

/* The real transaction fails at COMMIT (statement 4 of a lone 5-event batch: BEGIN, batch row,
 * events, COMMIT) and at the events INSERT: 503, rolled back, and the server goes on. */
static void sqlite_commit_failure_answers_503_and_rolls_back(void) {
  fixture fx;
  if (!start(&fx)) return;
  http_answer a;
  unsigned steps[] = {4, 3, 1};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    char tag[16], next[16];
    snprintf(tag, sizeof tag, "s%u", steps[i]);
    snprintf(next, sizeof next, "n%u", steps[i]);
    lw_store_sqlite_fail_step(fx.sqlite, steps[i]);
    post(fx.port, tag, &a);
    CHECK_INT(a.status, 503);
    CHECK_INT(stats_outcomes(fx.port), (int64_t)(10 * i));
    post(fx.port, next, &a);
    CHECK_STR(a.body, "{\"stored\":5,\"refused\":0}");
    post(fx.port, tag, &a);
    CHECK_STR(a.body, "{\"stored\":5,\"refused\":0}");
    CHECK_INT(stats_outcomes(fx.port), (int64_t)(10 * (i + 1)));
  }
  stop(&fx);
}

int main(void) {
  valid_text = tu_read_case("ingest/valid-batch.json");
  if (!valid_text) return 1;
  RUN(sqlite_failing_any_statement_of_a_group_keeps_nothing_and_the_next_write_works);
  RUN(failed_decision_read_returns_no_cursor_and_the_next_read_works);
  RUN(failed_write_answers_503_stores_nothing_and_the_server_recovers);
  RUN(commit_whose_answer_was_lost_is_stored_once_when_retried);
  RUN(sqlite_commit_failure_answers_503_and_rolls_back);
  free(valid_text);
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
