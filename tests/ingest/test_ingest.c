/* test_ingest.c: C unit tests for the ingest server's parts that have no HTTP in them: the
 * validator, origin patterns, the rate limiter, settings and the SQLite store. The HTTP
 * behaviour is tested end to end by the *.test.mjs files against the real binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void) {
  valid_batch_case_parses_into_five_events();
  refusal_names_the_field_and_allocates_nothing();
  body_need_not_be_nul_terminated();
  utf8_validator_refuses_overlongs_surrogates_and_truncation();
  origin_patterns_match_host_and_port_exactly();
  rate_limiter_refills_at_its_rate();
  settings_refuse_bad_values_and_unknown_names();
  store_writes_once_forgets_and_purges();
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
