/* test_ingest.c: C unit tests for the ingest server's parts that have no HTTP in them: the
 * validator, origin patterns, the rate limiter, settings and the SQLite store. The HTTP
 * behaviour is tested end to end by the *.test.mjs files against the real binary. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "loopwise/batch.h"
#include "loopwise/text.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"
#include "ratelimit.h"

#define NOW 1764100000000LL


static void valid_batch_case_parses_into_five_events(void) {
  char *text = tu_read_case("ingest/valid-batch.json");
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK(text != NULL);
  CHECK_INT(lw_batch_parse(text, strlen(text), NULL, NOW, &b, &err), LW_OK);
  if (b) {
    CHECK_INT(b->n_events, 5);
    CHECK_STR(b->batch_id, "b-7f3c9a1e2d4b5c6a");
    CHECK_INT(b->events[0].kind, LW_KIND_DECISION);
    CHECK(b->events[0].has_p && b->events[0].p == 0.75);
    CHECK_STR(b->events[0].reason, "shown: milestone project_completed\xc3\x97" "3");
    CHECK_STR(b->events[2].code, "K7QX2M9PLA");
    CHECK_INT(b->events[4].kind, LW_KIND_DISMISS);
  }
  lw_batch_free(b);
  free(text);
}

static void refusal_names_the_field_and_allocates_nothing(void) {
  const char *body = "{\"v\":1,\"batch_id\":\"a\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[{\"kind\":"
                     "\"decision\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\","
                     "\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"x\",\"p\":1.5,\"mode\":\"rules\","
                     "\"reason\":\"r\"}]}";
  lw_batch *b = (lw_batch *)1;
  lw_batch_error err;
  CHECK_INT(lw_batch_parse(body, strlen(body), NULL, NOW, &b, &err), LW_ERR_INVALID);
  CHECK(b == NULL);
  CHECK_STR(err.field, "events[0].p");
  CHECK_STR(err.message, "expected a number in (0, 1]");
}

static void body_need_not_be_nul_terminated(void) {
  char *text = tu_read_case("ingest/valid-batch.json");
  size_t n = strlen(text);
  char *copy = malloc(n); /* exactly n bytes: ASan catches any read past the end */
  memcpy(copy, text, n);
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK_INT(lw_batch_parse(copy, n, NULL, NOW, &b, &err), LW_OK);
  lw_batch_free(b);
  size_t without_last_brace = (size_t)(strrchr(text, '}') - text);
  CHECK_INT(lw_batch_parse(copy, without_last_brace, NULL, NOW, &b, &err), LW_ERR_INVALID);
  lw_batch_free(b);
  free(copy);
  free(text);
}

static void utf8_validator_refuses_overlongs_surrogates_and_truncation(void) {
  CHECK(lw_utf8_valid("plain", 5));
  CHECK(lw_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
  CHECK(!lw_utf8_valid("\xc0\xaf", 2));
  CHECK(!lw_utf8_valid("\xe0\x80\xaf", 3));
  CHECK(!lw_utf8_valid("\xed\xa0\x80", 3));
  CHECK(!lw_utf8_valid("\xf4\x90\x80\x80", 4));
  CHECK(!lw_utf8_valid("\xe2\x82", 2));
  CHECK(!lw_utf8_valid("\x80", 1));
  CHECK(!lw_utf8_valid("\xff", 1));
}

static void origin_patterns_match_host_and_port_exactly(void) {
  CHECK(lw_origin_matches("https://app.example", "https://app.example"));
  CHECK(!lw_origin_matches("https://app.example", "http://app.example"));
  CHECK(!lw_origin_matches("https://app.example", "https://app.example:8443"));
  CHECK(lw_origin_matches("http://localhost:*", "http://localhost"));
  CHECK(lw_origin_matches("http://localhost:*", "http://localhost:5173"));
  CHECK(!lw_origin_matches("http://localhost:*", "http://localhost.evil.example"));
  CHECK(!lw_origin_matches("http://localhost:*", "http://localhost:80.evil"));
  CHECK(!lw_origin_matches("http://localhost:*", "http://localhost:"));
}

static void rate_limiter_refills_at_its_rate(void) {
  lw_ratelimit *rl;
  int retry = 0;
  CHECK_INT(lw_ratelimit_create(2.0, 3.0, 64, 42, &rl), LW_OK);
  for (int i = 0; i < 3; i++) CHECK(lw_ratelimit_take(rl, "a", 1, 1000, &retry));
  CHECK(!lw_ratelimit_take(rl, "a", 1, 1000, &retry));
  CHECK_INT(retry, 1);
  CHECK(lw_ratelimit_take(rl, "b", 1, 1000, &retry)); /* keys are independent */
  CHECK(lw_ratelimit_take(rl, "a", 1, 1500, &retry)); /* half a second: one token back */
  CHECK(!lw_ratelimit_take(rl, "a", 1, 1500, &retry));
  lw_ratelimit_free(rl);
}

static void settings_refuse_bad_values_and_unknown_names(void) {
  lw_ingest_config cfg;
  char errmsg[LW_ERRMSG_MAX];
  lw_ingest_config_init(&cfg);
  CHECK_INT(cfg.port, 8080);
  CHECK_INT(cfg.k_anonymity, 5);
  CHECK_INT(lw_ingest_config_set(&cfg, "max-body", "4096", errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(cfg.max_body, 4096);
  CHECK_INT(lw_ingest_config_set(&cfg, "port", "70000", errmsg, sizeof errmsg), LW_ERR_INVALID);
  CHECK_INT(lw_ingest_config_set(&cfg, "nope", "1", errmsg, sizeof errmsg), LW_ERR_NOT_FOUND);
  char *env[] = {"LW_INGEST_K_ANONYMITY=9", "OTHER=1", NULL};
  CHECK_INT(lw_ingest_config_apply_env(&cfg, env, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(cfg.k_anonymity, 9);
  CHECK_INT(lw_ingest_config_finish(&cfg, errmsg, sizeof errmsg), LW_ERR_INVALID); /* no db */
  CHECK_INT(lw_ingest_config_set(&cfg, "db", "x.db", errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(lw_ingest_config_finish(&cfg, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(cfg.n_sites, 1);
  CHECK_STR(cfg.sites[0].write_key, "demo-site-key");
  lw_ingest_config_clear(&cfg);
}

static void store_writes_once_forgets_and_purges(void) {
  char path[] = "/tmp/lw-test-store-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &s, errmsg, sizeof errmsg), LW_OK);
  if (!s) return;
  char *text = tu_read_case("ingest/valid-batch.json");
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK_INT(lw_batch_parse(text, strlen(text), NULL, NOW, &b, &err), LW_OK);
  lw_store_item one = {"default", b, NOW, 0, 0}, two = {"default", b, NOW, 0, 0};
  lw_store_item *items[] = {&one, &two}; /* the same batch twice in one group */
  CHECK_INT(lw_store_write(s, items, 2, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(one.stored, 5);
  CHECK_INT(one.duplicate, 0);
  CHECK_INT(two.duplicate, 1);
  lw_store_item other_site = {"other", b, NOW, 0, 0}, *items2[] = {&other_site};
  CHECK_INT(lw_store_write(s, items2, 1, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(other_site.stored, 5); /* batch ids are unique per site */

  lw_stats st;
  CHECK_INT(lw_store_stats(s, "default", &st, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(st.outcomes, 5);
  CHECK_INT(st.batches, 1);
  CHECK_INT(st.n_variants, 2); /* credit_10 and none */
  lw_stats_clear(&st);

  int64_t deleted = 0;
  lw_forget_item fi = {"default", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", NULL, 0, 0}, *fis[] = {&fi};
  CHECK_INT(lw_store_forget(s, fis, 1, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(fi.deleted, 5);
  CHECK_INT(lw_store_purge(s, NOW, &deleted, errmsg, sizeof errmsg), LW_OK); /* received at NOW: kept */
  CHECK_INT(deleted, 0);
  CHECK_INT(lw_store_purge(s, NOW + 1, &deleted, errmsg, sizeof errmsg), LW_OK); /* now both batches expire */
  CHECK_INT(deleted, 5); /* the other site's; the default site's were forgotten */
  CHECK_INT(lw_store_stats(s, "other", &st, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(st.outcomes, 0);
  lw_stats_clear(&st);
  lw_store_free(s);

  CHECK_INT(lw_store_open_sqlite(path, &s, errmsg, sizeof errmsg), LW_OK); /* reopens at the current version */
  lw_store_free(s);
  lw_batch_free(b);
  free(text);
  tu_remove_db(path);
}

/* ---------------------------------------------------------------- trust (store schema 6) */

static lw_batch *parse_or_null(const char *text) {
  lw_batch *b = NULL;
  lw_batch_error err;
  if (lw_batch_parse(text, strlen(text), NULL, NOW, &b, &err) != LW_OK)
    fprintf(stderr, "parse: %s: %s\n", err.field, err.message);
  return b;
}

#define INSTALL_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define INSTALL_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BATCH_OF(id, install, kind2)                                                                  \
  "{\"v\":1,\"batch_id\":\"" id "\",\"write_key\":\"k\",\"sent_at\":1764100000000,\"events\":["     \
  "{\"kind\":\"decision\",\"t\":1764099990000,\"install\":\"" install "\",\"decision\":\"a1b2c3d4e5f60718\","  \
  "\"action\":\"credit_10\",\"p\":0.5,\"mode\":\"rules\",\"reason\":\"r\",\"x\":[[1,1]]},"               \
  "{\"kind\":\"" kind2 "\",\"t\":1764099990001,\"install\":\"" install "\",\"decision\":\"a1b2c3d4e5f60718\"," \
  "\"action\":\"credit_10\",\"code\":\"OWNED123\"}]}"

static void store_refuses_a_share_of_another_installs_code_and_marks_the_forger(void) {
  char path[] = "/tmp/lw-test-owner-XXXXXX";
  close(mkstemp(path));
  unlink(path);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &s, errmsg, sizeof errmsg), LW_OK);
  if (!s) return;
  lw_batch *a = parse_or_null(BATCH_OF("owner-1", INSTALL_A, "copy"));
  lw_batch *b = parse_or_null(BATCH_OF("forger-1", INSTALL_B, "share"));
  CHECK(a && b);
  if (!a || !b) return;
  lw_store_item ia = {"default", a, NOW, 0, 0}, ib = {"default", b, NOW, 0, 0};
  lw_store_item *items[] = {&ia, &ib}; /* one group: the first share wins within a commit too */
  CHECK_INT(lw_store_write(s, items, 2, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(ia.stored, 2);
  CHECK_INT(ib.stored, 1); /* its decision; its share of A's code is refused */
  lw_referral r;
  CHECK_INT(lw_store_referral(s, "default", "OWNED123", INSTALL_B, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.owner, LW_OWNER_OTHER);
  CHECK_INT(lw_store_referral(s, "default", "OWNED123", INSTALL_A, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.owner, LW_OWNER_SELF);
  CHECK_INT(lw_store_referral(s, "default", "NOBODY12", INSTALL_A, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.owner, LW_OWNER_NONE);
  /* The trainer's reader marks the forger's decision, not the owner's. */
  lw_store_range range = {"default", 0, 0};
  lw_store_cursor *c = NULL;
  CHECK_INT(lw_store_decisions(s, &range, &c, errmsg, sizeof errmsg), LW_OK);
  lw_store_decision d;
  int n = 0, flagged = 0;
  while (c && lw_store_next(c, &d, errmsg, sizeof errmsg) == 1) n++, flagged += d.flagged;
  lw_store_cursor_free(c);
  CHECK_INT(n, 2);
  CHECK_INT(flagged, 1);
  lw_store_free(s);
  lw_batch_free(a);
  lw_batch_free(b);
  tu_remove_db(path);
}

static void referee_reports_are_stored_once_and_judged_by_the_rules(void) {
  char path[] = "/tmp/lw-test-referee-XXXXXX";
  close(mkstemp(path));
  unlink(path);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &s, errmsg, sizeof errmsg), LW_OK);
  if (!s) return;
  uint8_t fresh[LW_SALT_LEN], salt[LW_SALT_LEN], again[LW_SALT_LEN], other[LW_SALT_LEN];
  memset(fresh, 7, sizeof fresh);
  CHECK_INT(lw_store_site_salt(s, "default", fresh, salt, errmsg, sizeof errmsg), LW_OK);
  memset(fresh, 9, sizeof fresh);
  CHECK_INT(lw_store_site_salt(s, "default", fresh, again, errmsg, sizeof errmsg), LW_OK);
  CHECK(memcmp(salt, again, sizeof salt) == 0); /* created once */
  CHECK_INT(lw_store_site_salt(s, "other", fresh, other, errmsg, sizeof errmsg), LW_OK);
  CHECK(memcmp(salt, other, sizeof salt) != 0); /* per site */

  lw_integrity_rules rules = lw_integrity_defaults();
  rules.velocity_max = 2;
  uint8_t h1[LW_REFEREE_HASH_LEN], h2[LW_REFEREE_HASH_LEN], h3[LW_REFEREE_HASH_LEN];
  memset(h1, 1, sizeof h1), memset(h2, 2, sizeof h2), memset(h3, 3, sizeof h3);
  lw_referee_report r = {.site = "default", .code = "CODE0001", .referee = h1, .event = "conversion",
                         .at = NOW, .received_ms = NOW, .rules = &rules};
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_STR(r.state, "counted");
  int64_t first = r.id;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.duplicate, 1);
  CHECK_INT(r.id, first);
  r.duplicate = 0;
  r.code = "CODE0002"; /* the same referee for another code */
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_STR(r.state, "rejected");
  CHECK_STR(r.reason, "repeat_referee");
  r.code = "CODE0001";
  r.referee = h2;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_STR(r.state, "counted");
  r.referee = h3; /* the third of CODE0001 within the window: velocity */
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_STR(r.state, "flagged");
  CHECK_STR(r.reason, "velocity");
  lw_review *rows = NULL;
  size_t n = 0;
  CHECK_INT(lw_store_reviews(s, "default", 10, &rows, &n, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(n, 1);
  if (n) CHECK_INT(rows[0].id, r.id);
  free(rows);
  int result = -1;
  CHECK_INT(lw_store_review(s, "other", r.id, 1, "pm", NOW + 5, &result, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(result, 1); /* another site's report is unknown here */
  CHECK_INT(lw_store_review(s, "default", r.id, 1, "pm", NOW + 5, &result, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(result, 0);
  CHECK_INT(lw_store_review(s, "default", r.id, 0, "pm", NOW + 6, &result, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(result, 2);
  /* the review is a console action of its site, the refused ones none */
  lw_console_action *acts = NULL;
  CHECK_INT(lw_store_console_actions(s, "default", 10, &acts, &n, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(n, 1);
  if (n) {
    CHECK_STR(acts[0].who, "pm");
    CHECK_STR(acts[0].action, "approve");
    CHECK_STR(acts[0].target, "review");
    CHECK_INT(acts[0].ref, r.id);
    CHECK_INT(acts[0].at, NOW + 5);
  }
  free(acts);
  CHECK_INT(lw_store_console_actions(s, "other", 10, &acts, &n, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(n, 0);
  free(acts);
  lw_attribution *att = NULL;
  CHECK_INT(lw_store_attributions(s, "default", NOW + 1, &att, &n, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(n, 1); /* the approval counts from its own time */
  if (n) {
    CHECK_STR(att[0].code, "CODE0001");
    CHECK_INT(att[0].conversions, 1);
    CHECK_INT(att[0].first_at, NOW + 5);
  }
  free(att);
  int conflict = -1;
  CHECK_INT(lw_store_register_referrer(s, "default", "CODE0009", h1, &conflict, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(conflict, 0);
  CHECK_INT(lw_store_register_referrer(s, "default", "CODE0009", h1, &conflict, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(conflict, 0); /* the same again */
  CHECK_INT(lw_store_register_referrer(s, "default", "CODE0009", h2, &conflict, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(conflict, 1);
  r.code = "CODE0009"; /* its registered referrer converting on its own code */
  r.referee = h1;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_STR(r.reason, "self_referral");
  lw_store_free(s);
  tu_remove_db(path);
}

/* A report whose write fails keeps nothing; one whose answer was lost (the write done, the
 * caller told it failed) is stored once when the host retries. */
static void a_retried_referee_report_is_stored_once_after_a_failure(void) {
  char path[] = "/tmp/lw-test-referee-fault-XXXXXX";
  close(mkstemp(path));
  unlink(path);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *inner = NULL, *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &inner, errmsg, sizeof errmsg), LW_OK);
  if (!inner) return;
  CHECK_INT(lw_store_open_fault(inner, &s, errmsg, sizeof errmsg), LW_OK);
  if (!s) return;
  lw_integrity_rules rules = lw_integrity_defaults();
  uint8_t h[LW_REFEREE_HASH_LEN];
  memset(h, 5, sizeof h);
  lw_referee_report r = {.site = "default", .code = "FAULT001", .referee = h, .event = "conversion",
                         .at = NOW, .received_ms = NOW, .rules = &rules};
  lw_attribution *att = NULL;
  size_t n = 9;
  lw_store_fault_arm(s, LW_FAULT_OP_REFEREE, 1, LW_FAULT_BEFORE);
  CHECK(lw_store_referee(s, &r, errmsg, sizeof errmsg) != LW_OK);
  CHECK_INT(lw_store_attributions(s, "default", 0, &att, &n, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(n, 0);
  free(att);
  lw_store_fault_arm(s, LW_FAULT_OP_REFEREE, 1, LW_FAULT_AFTER);
  CHECK(lw_store_referee(s, &r, errmsg, sizeof errmsg) != LW_OK);
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK); /* the host's retry */
  CHECK_INT(r.duplicate, 1);
  CHECK_STR(r.state, "counted");
  CHECK_INT(lw_store_attributions(s, "default", 0, &att, &n, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(n, 1);
  if (n) CHECK_INT(att[0].conversions, 1);
  free(att);
  CHECK_INT(lw_store_fault_injected(s, LW_FAULT_OP_REFEREE), 2);
  lw_store_free(s);
  tu_remove_db(path);
}

static void referee_bodies_are_refused_naming_the_field(void) {
  static const struct {
    const char *body, *field;
  } cases[] = {
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\"}", NULL},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"churned\"}", "event"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u\\u0001\",\"event\":\"conversion\"}", "referee"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\",\"at\":1.5}", "at"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\",\"value\":-1}", "value"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\",\"install\":\"x\"}", "install"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"event\":\"conversion\"}", "referee"},
      {"{\"v\":1,\"site\":\"s\",\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\"}", "site"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lw_referee_request req;
    lw_batch_error err;
    lw_status st = lw_referee_parse(cases[i].body, strlen(cases[i].body), &req, &err);
    CHECK_INT(st, cases[i].field ? LW_ERR_INVALID : LW_OK);
    if (cases[i].field) CHECK_STR(err.field, cases[i].field);
  }
  /* Every prefix of a valid body is refused cleanly (ASan: nothing read past it). */
  const char *ok = cases[0].body;
  for (size_t n = 0; n < strlen(ok); n++) {
    char *copy = malloc(n ? n : 1);
    memcpy(copy, ok, n);
    lw_referee_request req;
    lw_batch_error err;
    CHECK_INT(lw_referee_parse(copy, n, &req, &err), LW_ERR_INVALID);
    free(copy);
  }
  int approve = -1;
  lw_batch_error err;
  CHECK_INT(lw_review_parse("{\"decision\":\"approve\"}", 22, &approve, &err), LW_OK);
  CHECK_INT(approve, 1);
  CHECK_INT(lw_review_parse("{\"decision\":\"ok\"}", 17, &approve, &err), LW_ERR_INVALID);
  CHECK_STR(err.field, "decision");
}

/* A config file with the given sites array; returns the load status and leaves the message. */
static lw_status load_sites_json(const char *sites, char *errmsg, size_t errlen, lw_ingest_config *cfg) {
  char path[] = "/tmp/lw-test-cfg-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "{\"sites\": %s}", sites);
  fclose(f);
  lw_ingest_config_init(cfg);
  lw_status st = lw_ingest_config_load_file(cfg, path, errmsg, errlen);
  unlink(path);
  return st;
}

static void site_secret_keys_and_integrity_rules_are_checked(void) {
  char errmsg[LW_ERRMSG_MAX];
  lw_ingest_config cfg;
  CHECK_INT(load_sites_json("[{\"id\":\"a\",\"write_key\":\"a-key\",\"secret_keys\":[\"a-secret-0123456789\","
                            "\"a-secret-rotated-0123\"],\"integrity\":{\"velocity\":\"reject\",\"velocity_max\":3}}]",
                            errmsg, sizeof errmsg, &cfg),
            LW_OK);
  CHECK_INT(cfg.sites[0].n_secret_keys, 2);
  CHECK_INT(cfg.sites[0].integrity.velocity, LW_RULE_REJECT);
  CHECK_INT(cfg.sites[0].integrity.velocity_max, 3);
  CHECK_INT(cfg.sites[0].integrity.self_referral, LW_RULE_REJECT); /* the default */
  lw_ingest_config_clear(&cfg);
  static const struct {
    const char *sites, *says;
  } bad[] = {
      {"[{\"id\":\"a\",\"write_key\":\"a-key\",\"secret_keys\":[\"short\"]}]", "sites[0].secret_keys[0]"},
      {"[{\"id\":\"a\",\"write_key\":\"a-key-0123456789abc\",\"secret_keys\":[\"a-key-0123456789abc\"]}]", "unique"},
      {"[{\"id\":\"a\",\"write_key\":\"a-key\",\"secret_keys\":[\"s-0123456789abcdef\"]},"
       "{\"id\":\"b\",\"write_key\":\"s-0123456789abcdef\"}]", "unique"},
      {"[{\"id\":\"a\",\"write_key\":\"a-key\",\"secret_keys\":[\"1-0123456789abcdef\",\"2-0123456789abcdef\","
       "\"3-0123456789abcdef\"]}]", "one or two"},
      {"[{\"id\":\"a\",\"write_key\":\"a-key\",\"integrity\":{\"velocity\":\"maybe\"}}]", "sites[0].integrity.velocity"},
      {"[{\"id\":\"a\",\"write_key\":\"a-key\",\"integrity\":{\"nope\":1}}]", "sites[0].integrity.nope"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_INT(load_sites_json(bad[i].sites, errmsg, sizeof errmsg, &cfg), LW_ERR_INVALID);
    if (!strstr(errmsg, bad[i].says)) fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", i, errmsg, bad[i].says);
    CHECK(strstr(errmsg, bad[i].says) != NULL);
    lw_ingest_config_clear(&cfg);
  }
}

static void records_beyond_the_clock_skew_allowance_are_kept_and_marked(void) {
  char *text = tu_read_case("ingest/valid-batch.json");
  lw_batch *b = NULL;
  lw_batch_error err;
  lw_batch_limits lim = lw_batch_default_limits();
  /* The valid batch is dated around NOW; a server clock two days earlier sees it ahead. */
  CHECK_INT(lw_batch_parse(text, strlen(text), &lim, NOW - 2 * 86400000LL, &b, &err), LW_OK);
  if (b) CHECK_INT(b->events[0].skewed, 1);
  lw_batch_free(b);
  CHECK_INT(lw_batch_parse(text, strlen(text), &lim, NOW, &b, &err), LW_OK);
  if (b) CHECK_INT(b->events[0].skewed, 0);
  lw_batch_free(b);
  free(text);
}


/* ---------------------------------------------------------------- retained value (wire v2, schema 7) */

static void v2_batch_case_parses_with_tokens_and_channels(void) {
  char *text = tu_read_case("ingest/valid-batch-v2.json");
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK(text != NULL);
  CHECK_INT(lw_batch_parse(text, strlen(text), NULL, NOW, &b, &err), LW_OK);
  if (b) {
    CHECK_INT(b->v, 2);
    CHECK_INT(b->events[1].kind, LW_KIND_SHARE);
    CHECK_STR(b->events[1].token, "5e0c1d2b3a4f5968778695a4b3c2d1e0");
    CHECK_STR(b->events[1].channel, "email");
    CHECK_STR(b->events[2].channel, "copy");
    CHECK_STR(b->events[3].token, "5e0c1d2b3a4f5968778695a4b3c2d1e0");
    CHECK_STR(b->events[3].channel, "");
    CHECK_STR(b->events[0].token, "");
  }
  lw_batch_free(b);
  free(text);
}

/* A batch from JSON text, stored at received_ms. */
static void store_json(lw_store *s, const char *json, int64_t received_ms) {
  lw_batch *b = NULL;
  lw_batch_error err;
  char errmsg[LW_ERRMSG_MAX];
  lw_status st = lw_batch_parse(json, strlen(json), NULL, received_ms, &b, &err);
  if (st != LW_OK) fprintf(stderr, "store_json: %s: %s\n", err.field, err.message);
  CHECK_INT(st, LW_OK);
  if (!b) return;
  lw_store_item it = {"default", b, received_ms, 0, 0}, *items[] = {&it};
  CHECK_INT(lw_store_write(s, items, 1, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(it.stored, b->n_events);
  lw_batch_free(b);
}

#define REFERRER "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define REFEREE_INSTALL "aa11bb22cc33dd44ee55ff6600112233"
#define TOKEN_A "5e0c1d2b3a4f5968778695a4b3c2d1e0"
#define TOKEN_B "9a8b7c6d5e4f30211203f4e5d6c7b8a9"

/* Reads every decision of the site with a window of days into out (by decision order). */
static size_t read_decisions(lw_store *s, int days, lw_store_decision *out, size_t max) {
  char errmsg[LW_ERRMSG_MAX];
  lw_store_range range = {"default", 0, 0};
  lw_store_cursor *c = NULL;
  CHECK_INT(lw_store_decisions_within(s, &range, days, &c, errmsg, sizeof errmsg), LW_OK);
  size_t n = 0;
  int rc;
  while (c && n < max && (rc = lw_store_next(c, &out[n], errmsg, sizeof errmsg)) == 1) n++;
  lw_store_cursor_free(c);
  return n;
}

static void a_referees_retained_report_joins_to_the_decision_whose_share_produced_it(void) {
  char path[] = "/tmp/lw-test-join-XXXXXX";
  close(mkstemp(path));
  unlink(path);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &s, errmsg, sizeof errmsg), LW_OK);
  if (!s) return;
  /* Decision A shared by email (token A), decision B by copy (token B), same referrer and code;
   * a v1 decision C of another install shared code V1CODE0001 without a token. */
  char json[4096];
  snprintf(json, sizeof json,
           "{\"v\":2,\"batch_id\":\"j1\",\"write_key\":\"k\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000a\","
           "\"action\":\"credit_10\",\"p\":0.5,\"mode\":\"model\",\"reason\":\"\",\"x\":[[7,1]]},"
           "{\"kind\":\"share\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000a\","
           "\"code\":\"K7QX2M9PLA\",\"token\":\"" TOKEN_A "\",\"channel\":\"email\"},"
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000b\","
           "\"action\":\"credit_20\",\"p\":0.25,\"mode\":\"model\",\"reason\":\"\"},"
           "{\"kind\":\"copy\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000b\","
           "\"code\":\"K7QX2M9PLA\",\"token\":\"" TOKEN_B "\",\"channel\":\"copy\"},"
           "{\"kind\":\"landing\",\"t\":%lld,\"install\":\"" REFEREE_INSTALL "\",\"code\":\"K7QX2M9PLA\","
           "\"token\":\"" TOKEN_A "\"}]}",
           NOW, NOW - 5000, NOW - 4000, NOW - 3000, NOW - 2000, NOW - 1000);
  store_json(s, json, NOW);
  snprintf(json, sizeof json,
           "{\"v\":1,\"batch_id\":\"j2\",\"write_key\":\"k\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"11111111111111111111111111111111\","
           "\"decision\":\"000000000000000c\",\"action\":\"credit_10\",\"p\":1,\"mode\":\"rules\",\"reason\":\"\"},"
           "{\"kind\":\"share\",\"t\":%lld,\"install\":\"11111111111111111111111111111111\","
           "\"decision\":\"000000000000000c\",\"code\":\"V1CODE0001\"}]}",
           NOW, NOW - 5000, NOW - 4000);
  store_json(s, json, NOW);

  uint8_t h1[LW_REFEREE_HASH_LEN], h2[LW_REFEREE_HASH_LEN];
  memset(h1, 1, sizeof h1), memset(h2, 2, sizeof h2);
  lw_integrity_rules rules = lw_integrity_defaults();
  /* A later event before its conversion: refused, nothing stored. */
  lw_referee_report r = {.site = "default", .code = "K7QX2M9PLA", .referee = h1, .event = "retained_30",
                         .at = NOW, .received_ms = NOW, .rules = &rules};
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.refused, 1);
  CHECK_STR(r.refused_field, "event");
  lw_store_decision d[8];
  CHECK_INT(read_decisions(s, 0, d, 8), 3);
  CHECK_INT(d[0].outcomes.join, LW_JOIN_TOKEN);
  CHECK_INT(d[0].outcomes.landings, 1); /* the device's landing through token A */
  CHECK_INT(d[0].outcomes.conversions, 0);
  CHECK_INT(d[0].outcomes.retained_30, 0);

  r.event = "conversion", r.token = TOKEN_A, r.has_value = 1, r.value = 40;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.refused, 0);
  CHECK_STR(r.state, "counted");
  r.event = "retained_30", r.token = NULL, r.has_value = 0, r.received_ms = NOW + 29 * DAY;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.refused, 0);
  CHECK_INT(r.duplicate, 0);
  int64_t retained_id = r.id;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK); /* the host's retry */
  CHECK_INT(r.duplicate, 1);
  CHECK_INT(r.id, retained_id);
  r.event = "revenue", r.has_value = 1, r.value = 120, r.received_ms = NOW + 31 * DAY;
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  r.event = "churned", r.token = TOKEN_B, r.has_value = 0; /* not the conversion's token */
  CHECK_INT(lw_store_referee(s, &r, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(r.refused, 1);
  CHECK_STR(r.refused_field, "token");
  /* The v1 decision's code: a conversion without a token joins by code. */
  lw_referee_report v1 = {.site = "default", .code = "V1CODE0001", .referee = h2, .event = "conversion",
                          .at = NOW, .received_ms = NOW + DAY, .rules = &rules};
  CHECK_INT(lw_store_referee(s, &v1, errmsg, sizeof errmsg), LW_OK);
  v1.event = "retained_90", v1.received_ms = NOW + 90 * DAY;
  CHECK_INT(lw_store_referee(s, &v1, errmsg, sizeof errmsg), LW_OK);

  CHECK_INT(read_decisions(s, 0, d, 8), 3);
  const lw_referee_outcomes *a = &d[0].outcomes, *b = &d[1].outcomes, *c = &d[2].outcomes;
  CHECK(d[0].has_p && d[0].p == 0.5);   /* the logged probability and features come along */
  CHECK_INT(d[0].n_x, 1);
  CHECK_INT(a->join, LW_JOIN_TOKEN);
  CHECK_INT(a->landings, 1);
  CHECK_INT(a->conversions, 1);
  CHECK_INT(a->retained_30, 1); /* stored once */
  CHECK_INT(a->retained_90, 0);
  CHECK_INT(a->churned, 0);
  CHECK(a->conversion_value == 40);
  CHECK(a->revenue == 120);
  CHECK_INT(a->last_at, NOW + 31 * DAY);
  CHECK_INT(b->join, LW_JOIN_TOKEN); /* the other share of the same code brought nobody */
  CHECK_INT(b->landings + b->conversions + b->retained_30, 0);
  CHECK_INT(b->last_at, 0);
  CHECK_INT(c->join, LW_JOIN_CODE);
  CHECK_INT(c->code_decisions, 1);
  CHECK_INT(c->conversions, 1);
  CHECK_INT(c->retained_90, 1);

  /* A 30-day window: the revenue (day 31) and the v1 retained_90 (day 90) arrived after it. */
  CHECK_INT(read_decisions(s, 30, d, 8), 3);
  CHECK_INT(d[0].outcomes.retained_30, 1);
  CHECK(d[0].outcomes.revenue == 0);
  CHECK_INT(d[0].outcomes.last_at, NOW + 29 * DAY);
  CHECK_INT(d[2].outcomes.retained_90, 0);
  CHECK_INT(d[0].window_from, NOW - 5000);
  CHECK_INT(lw_store_window_end(&d[0], 30), NOW - 5000 + 30 * DAY);
  CHECK(!lw_store_window_closed(&d[0], 30, NOW + 29 * DAY));
  CHECK(lw_store_window_closed(&d[0], 30, NOW + 30 * DAY));
  lw_store_free(s);

  /* The read-only store the tools open gives the same join. */
  CHECK_INT(lw_store_open_sqlite_read(path, &s, errmsg, sizeof errmsg), LW_OK);
  if (s) {
    CHECK_INT(read_decisions(s, 0, d, 8), 3);
    CHECK_INT(d[0].outcomes.retained_30, 1);
    lw_store_free(s);
  }
  tu_remove_db(path);
}

static void referee_v2_bodies_are_checked_naming_the_field(void) {
  static const struct {
    const char *body, *field;
  } cases[] = {
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"retained_30\"}", NULL},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"churned\",\"token\":\"" TOKEN_A "\"}", NULL},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"revenue\",\"value\":12.5}", NULL},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\",\"value\":3,"
       "\"token\":\"" TOKEN_A "\"}", NULL},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"revenue\"}", "value"},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"retained_90\",\"value\":1}", "value"},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\",\"token\":\"XYZ\"}", "token"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\",\"token\":\"" TOKEN_A "\"}", "token"},
      {"{\"v\":1,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"revenue\",\"value\":1}", "event"},
      {"{\"v\":3,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\"}", "v"},
      {"{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"retained_60\"}", "event"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lw_referee_request req;
    lw_batch_error err;
    lw_status st = lw_referee_parse(cases[i].body, strlen(cases[i].body), &req, &err);
    if (!cases[i].field) {
      if (st != LW_OK) fprintf(stderr, "referee case %zu: %s: %s\n", i, err.field, err.message);
      CHECK_INT(st, LW_OK);
    } else {
      CHECK_INT(st, LW_ERR_INVALID);
      if (strcmp(err.field, cases[i].field) != 0) fprintf(stderr, "referee case %zu: field %s\n", i, err.field);
      CHECK_STR(err.field, cases[i].field);
    }
  }
  lw_referee_request req;
  lw_batch_error err;
  const char *body = "{\"v\":2,\"site\":\"s\",\"code\":\"ABCDEF\",\"referee\":\"u1\",\"event\":\"conversion\","
                     "\"token\":\"" TOKEN_A "\"}";
  CHECK_INT(lw_referee_parse(body, strlen(body), &req, &err), LW_OK);
  CHECK_INT(req.v, 2);
  CHECK_STR(req.token, TOKEN_A);
}


/* One HTTP request on a fresh loopback connection, read to the end; the status, or 0. */
static int http_post(int port, const char *path, const char *auth, const char *body, char *answer, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {60, 0}; /* a hung server fails the test instead of hanging it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  answer[0] = '\0';
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return 0;
  }
  char req[8192];
  int n = snprintf(req, sizeof req,
                   "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                   "%s%s%sContent-Length: %zu\r\n\r\n%s",
                   path, auth ? "Authorization: Bearer " : "", auth ? auth : "", auth ? "\r\n" : "", strlen(body), body);
  for (size_t sent = 0; sent < (size_t)n;) {
    ssize_t w = write(fd, req + sent, (size_t)n - sent);
    if (w <= 0) break;
    sent += (size_t)w;
  }
  size_t got = 0;
  for (ssize_t r; got < cap - 1 && (r = read(fd, answer + got, cap - 1 - got)) > 0;) got += (size_t)r;
  answer[got] = '\0';
  close(fd);
  int status = 0;
  sscanf(answer, "HTTP/1.1 %d", &status);
  return status;
}

#define SHOP_SECRET "shop-secret-0123456789abcdef"

/* End to end on loopback: the referrer's device posts a v2 batch (a decision and its share with
 * token A), the referee's device its landing through that link, the host's backend the
 * conversion with the token and the 30-day report with the secret key (the public write key
 * refused), a retry of that report stored once; the trainer's read API then finds the retained
 * referee on the decision whose share produced it. */
static void a_retained_referee_reported_over_http_joins_to_its_decision(void) {
  char errmsg[LW_ERRMSG_MAX], answer[4096], body[4096];
  lw_ingest_config cfg;
  CHECK_INT(load_sites_json("[{\"id\":\"shop\",\"write_key\":\"shop-key\",\"secret_keys\":[\"" SHOP_SECRET "\"]}]",
                            errmsg, sizeof errmsg, &cfg),
            LW_OK);
  char path[] = "/tmp/lw-test-e2e-join-XXXXXX";
  close(mkstemp(path));
  unlink(path);
  CHECK_INT(lw_ingest_config_set(&cfg, "db", path, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(lw_ingest_config_set(&cfg, "port", "0", errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(lw_ingest_config_set(&cfg, "log-level", "off", errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(lw_ingest_config_finish(&cfg, errmsg, sizeof errmsg), LW_OK);
  lw_store *store = NULL;
  lw_ingest_server *server = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &store, errmsg, sizeof errmsg), LW_OK);
  if (store) CHECK_INT(lw_ingest_server_start_with_store(&cfg, store, &server, errmsg, sizeof errmsg), LW_OK);
  if (!server) {
    lw_ingest_config_clear(&cfg);
    return;
  }
  int port = lw_ingest_server_port(server);
  long long now = (long long)time(NULL) * 1000;
  snprintf(body, sizeof body,
           "{\"v\":2,\"batch_id\":\"e2e-1\",\"write_key\":\"shop-key\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"00000000000000e1\","
           "\"action\":\"credit_10\",\"p\":0.4,\"mode\":\"model\",\"reason\":\"\",\"x\":[[3,1]]},"
           "{\"kind\":\"share\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"00000000000000e1\","
           "\"code\":\"E2ECODE001\",\"token\":\"" TOKEN_A "\",\"channel\":\"whatsapp\"}]}",
           now, now - 2000, now - 1000);
  CHECK_INT(http_post(port, "/v1/outcomes", NULL, body, answer, sizeof answer), 200);
  snprintf(body, sizeof body,
           "{\"v\":2,\"batch_id\":\"e2e-2\",\"write_key\":\"shop-key\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"landing\",\"t\":%lld,\"install\":\"" REFEREE_INSTALL "\",\"code\":\"E2ECODE001\","
           "\"token\":\"" TOKEN_A "\"}]}",
           now, now - 500);
  CHECK_INT(http_post(port, "/v1/outcomes", NULL, body, answer, sizeof answer), 200);
  const char *conversion = "{\"v\":2,\"site\":\"shop\",\"code\":\"E2ECODE001\",\"referee\":\"cust-77\","
                           "\"event\":\"conversion\",\"token\":\"" TOKEN_A "\"}";
  const char *retained = "{\"v\":2,\"site\":\"shop\",\"code\":\"E2ECODE001\",\"referee\":\"cust-77\","
                         "\"event\":\"retained_30\"}";
  CHECK_INT(http_post(port, "/v1/referees", "shop-key", conversion, answer, sizeof answer), 403);
  CHECK_INT(http_post(port, "/v1/referees", SHOP_SECRET, retained, answer, sizeof answer), 409);
  CHECK_INT(http_post(port, "/v1/referees", SHOP_SECRET, conversion, answer, sizeof answer), 200);
  CHECK_INT(http_post(port, "/v1/referees", SHOP_SECRET, retained, answer, sizeof answer), 200);
  CHECK(strstr(answer, "\"stored\":true") != NULL);
  CHECK_INT(http_post(port, "/v1/referees", SHOP_SECRET, retained, answer, sizeof answer), 200);
  CHECK(strstr(answer, "\"duplicate\":true") != NULL);
  lw_ingest_server_stop(server);
  lw_ingest_config_clear(&cfg);

  CHECK_INT(lw_store_open_sqlite_read(path, &store, errmsg, sizeof errmsg), LW_OK);
  if (store) {
    lw_store_range range = {"shop", 0, 0};
    lw_store_cursor *c = NULL;
    lw_store_decision *d = malloc(sizeof *d);
    CHECK_INT(lw_store_decisions_within(store, &range, 45, &c, errmsg, sizeof errmsg), LW_OK);
    CHECK_INT(lw_store_next(c, d, errmsg, sizeof errmsg), 1);
    CHECK_STR(d->action, "credit_10");
    CHECK(d->has_p && d->p == 0.4);
    CHECK_INT(d->outcomes.join, LW_JOIN_TOKEN);
    CHECK_INT(d->outcomes.landings, 1);
    CHECK_INT(d->outcomes.conversions, 1);
    CHECK_INT(d->outcomes.retained_30, 1);
    CHECK(d->outcomes.last_at >= now);
    CHECK(!lw_store_window_closed(d, 45, now));
    CHECK_INT(lw_store_next(c, d, errmsg, sizeof errmsg), 0);
    lw_store_cursor_free(c);
    free(d);
    lw_store_free(store);
  }
  tu_remove_db(path);
}

/* Checkpoints run beside the writer (store_sqlite.c, CKPT_PAGES), not inside its commits; under
 * writes that never pause the WAL must still restart now and then, so it never holds more than
 * about CKPT_HARD_PAGES (8000) pages and one commit's: 40 MB is far above that and far below
 * what 3000 commits with no checkpoint leave (each dirties several pages). */
static void the_wal_stays_bounded_under_writes_that_never_pause(void) {
  char path[] = "/tmp/lw-test-wal-XXXXXX", wal[64];
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  snprintf(wal, sizeof wal, "%s-wal", path);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(path, &s, errmsg, sizeof errmsg), LW_OK);
  if (!s) return;
  char *text = tu_read_case("ingest/valid-batch.json");
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK_INT(lw_batch_parse(text, strlen(text), NULL, NOW, &b, &err), LW_OK);
  long max_wal = 0, pages = 0;
  for (int i = 0; b && i < 3000; i++) {
    snprintf(b->batch_id, sizeof b->batch_id, "wal-%d", i);
    lw_store_item it = {"default", b, NOW, 0, 0}, *items[] = {&it};
    if (lw_store_write(s, items, 1, errmsg, sizeof errmsg) != LW_OK) {
      CHECK_STR(errmsg, "");
      break;
    }
    struct stat st;
    if (stat(wal, &st) == 0 && st.st_size > max_wal) max_wal = (long)st.st_size;
  }
  pages = max_wal / 4096;
  CHECK(max_wal > 0);
  CHECK(pages < 40L * 1024 * 1024 / 4096);
  lw_batch_free(b);
  free(text);
  lw_store_free(s);
  unlink(path);
  unlink(wal);
  char shm[64];
  snprintf(shm, sizeof shm, "%s-shm", path);
  unlink(shm);
}

int main(void) {
  valid_batch_case_parses_into_five_events();
  refusal_names_the_field_and_allocates_nothing();
  body_need_not_be_nul_terminated();
  utf8_validator_refuses_overlongs_surrogates_and_truncation();
  origin_patterns_match_host_and_port_exactly();
  rate_limiter_refills_at_its_rate();
  settings_refuse_bad_values_and_unknown_names();
  store_writes_once_forgets_and_purges();
  store_refuses_a_share_of_another_installs_code_and_marks_the_forger();
  referee_reports_are_stored_once_and_judged_by_the_rules();
  referee_bodies_are_refused_naming_the_field();
  a_retried_referee_report_is_stored_once_after_a_failure();
  records_beyond_the_clock_skew_allowance_are_kept_and_marked();
  site_secret_keys_and_integrity_rules_are_checked();
  v2_batch_case_parses_with_tokens_and_channels();
  a_referees_retained_report_joins_to_the_decision_whose_share_produced_it();
  referee_v2_bodies_are_checked_naming_the_field();
  a_retained_referee_reported_over_http_joins_to_its_decision();
  the_wal_stays_bounded_under_writes_that_never_pause();
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
