/* test_store_pg.c: the PostgreSQL backend (store_pg.c) gives the answers the SQLite backend (the
 * reference) gives. One scenario of writes, duplicates, code ownership, referee reports under the
 * integrity rules (the schema-7 join included), reviews, stats, referrals, attributions, the
 * decisions read with and without a window, forget and purge runs against both stores, and
 * every answer goes into a transcript; the two transcripts must be equal, and a few answers are
 * checked outright. Runs only when LW_TEST_PG names a database (src/scripts/test.sh starts a
 * throwaway cluster and sets it); otherwise it reports skipped (exit 77). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "loopwise/batch.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"

#define NOW 1764100000000LL
#define DAY (24LL * 3600 * 1000)
#define REFERRER "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define FORGER "ffffffffffffffffffffffffffffffff"
#define REFEREE_INSTALL "aa11bb22cc33dd44ee55ff6600112233"
#define TOKEN_A "5e0c1d2b3a4f5968778695a4b3c2d1e0"
#define TOKEN_B "9a8b7c6d5e4f30211203f4e5d6c7b8a9"

typedef struct {
  char *buf;
  size_t len, cap;
} transcript;

static void say(transcript *t, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (t->len + (size_t)n + 2 > t->cap) {
    t->cap = (t->len + (size_t)n + 2) * 2;
    t->buf = realloc(t->buf, t->cap);
    if (!t->buf) abort();
  }
  memcpy(t->buf + t->len, line, (size_t)n);
  t->len += (size_t)n;
  t->buf[t->len++] = '\n';
  t->buf[t->len] = '\0';
}

static void write_json(lw_store *s, transcript *t, const char *site, const char *json, int64_t received_ms) {
  lw_batch *b = NULL;
  lw_batch_error err;
  char errmsg[LW_ERRMSG_MAX];
  lw_status st = lw_batch_parse(json, strlen(json), NULL, received_ms, &b, &err);
  if (st != LW_OK) fprintf(stderr, "parse: %s: %s\n", err.field, err.message);
  CHECK_INT(st, LW_OK);
  if (!b) return;
  /* The same batch twice in one group, as the writer may hand it over. */
  lw_store_item one = {site, b, received_ms, 0, 0}, two = {site, b, received_ms, 0, 0};
  lw_store_item *items[] = {&one, &two};
  st = lw_store_write(s, items, 2, errmsg, sizeof errmsg);
  CHECK_INT(st, LW_OK);
  if (st != LW_OK) fprintf(stderr, "write: %s\n", errmsg);
  say(t, "write %s: stored %zu dup %d, then stored %zu dup %d", b->batch_id, one.stored, one.duplicate, two.stored,
      two.duplicate);
  lw_batch_free(b);
}

static void say_stats(lw_store *s, transcript *t, const lw_stats_bounds *bounds) {
  char errmsg[LW_ERRMSG_MAX];
  lw_stats st;
  CHECK_INT(lw_store_stats_bounded(s, "default", bounds, &st, errmsg, sizeof errmsg), LW_OK);
  say(t, "stats outcomes %lld batches %lld below %lld left %lld", (long long)st.outcomes, (long long)st.batches,
      (long long)st.codes_below_min, (long long)st.codes_left_out);
  const struct {
    const char *name;
    lw_stats_row *rows;
    size_t n;
  } parts[] = {{"variant", st.variants, st.n_variants}, {"segment", st.segments, st.n_segments},
               {"code", st.codes, st.n_codes}};
  for (size_t p = 0; p < 3; p++)
    for (size_t i = 0; i < parts[p].n; i++) {
      const lw_stats_row *r = &parts[p].rows[i];
      char counts[256] = "";
      size_t len = 0;
      for (int k = 0; k < LW_KIND_COUNT; k++) len += (size_t)snprintf(counts + len, sizeof counts - len, " %lld", (long long)r->counts[k]);
      say(t, "  %s %s installs %lld:%s", parts[p].name, r->key, (long long)r->installs, counts);
    }
  lw_stats_clear(&st);
}

static void say_decisions(lw_store *s, transcript *t, int referrers, int days) {
  char errmsg[LW_ERRMSG_MAX];
  lw_store_range range = {"default", 0, 0};
  lw_store_cursor *c = NULL;
  lw_status st = referrers ? lw_store_referrers(s, &range, &c, errmsg, sizeof errmsg)
                           : lw_store_decisions_within(s, &range, days, &c, errmsg, sizeof errmsg);
  CHECK_INT(st, LW_OK);
  if (st != LW_OK) {
    fprintf(stderr, "decisions: %s\n", errmsg);
    return;
  }
  lw_store_decision d;
  int rc;
  while ((rc = lw_store_next(c, &d, errmsg, sizeof errmsg)) == 1) {
    const lw_referee_outcomes *o = &d.outcomes;
    say(t,
        "  %s t %lld %s p %d/%.3f mode %s seg %s x %d shared %d flagged %d conv %lld from %lld join %d/%lld"
        " land %lld conv %lld r30 %lld r90 %lld churn %lld value %.2f revenue %.2f last %lld",
        d.decision, (long long)d.t, d.action, d.has_p, d.p, d.mode, d.segment, d.n_x, d.shared, d.flagged,
        (long long)d.conversions, (long long)d.window_from, o->join, (long long)o->code_decisions,
        (long long)o->landings, (long long)o->conversions, (long long)o->retained_30, (long long)o->retained_90,
        (long long)o->churned, o->conversion_value, o->revenue, (long long)o->last_at);
  }
  CHECK_INT(rc, 0);
  lw_store_cursor_free(c);
  uint64_t n = 0;
  CHECK_INT(lw_store_count_decisions(s, &range, &n, errmsg, sizeof errmsg), LW_OK);
  say(t, "decisions (referrers %d, days %d): count %llu", referrers, days, (unsigned long long)n);
}

static void report(lw_store *s, transcript *t, lw_referee_report *r) {
  char errmsg[LW_ERRMSG_MAX];
  CHECK_INT(lw_store_referee(s, r, errmsg, sizeof errmsg), LW_OK);
  say(t, "referee %s %s: refused %d %s dup %d state %s reason %s", r->code, r->event, r->refused, r->refused_field,
      r->duplicate, r->refused ? "" : r->state, r->refused ? "" : r->reason);
}

static void scenario(lw_store *s, transcript *t) {
  char errmsg[LW_ERRMSG_MAX], json[4096];
  snprintf(json, sizeof json,
           "{\"v\":2,\"batch_id\":\"j1\",\"write_key\":\"k\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000a\","
           "\"action\":\"credit_10\",\"p\":0.5,\"mode\":\"model\",\"reason\":\"\",\"segment\":\"pro\",\"x\":[[7,1],[9,0.5]]},"
           "{\"kind\":\"share\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000a\","
           "\"code\":\"K7QX2M9PLA\",\"token\":\"" TOKEN_A "\",\"channel\":\"email\"},"
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000b\","
           "\"action\":\"credit_20\",\"p\":0.25,\"mode\":\"model\",\"reason\":\"\"},"
           "{\"kind\":\"copy\",\"t\":%lld,\"install\":\"" REFERRER "\",\"decision\":\"000000000000000b\","
           "\"code\":\"K7QX2M9PLA\",\"token\":\"" TOKEN_B "\",\"channel\":\"copy\"},"
           "{\"kind\":\"landing\",\"t\":%lld,\"install\":\"" REFEREE_INSTALL "\",\"code\":\"K7QX2M9PLA\","
           "\"token\":\"" TOKEN_A "\"}]}",
           NOW, NOW - 5000, NOW - 4000, NOW - 3000, NOW - 2000, NOW - 1000);
  write_json(s, t, "default", json, NOW);
  snprintf(json, sizeof json,
           "{\"v\":1,\"batch_id\":\"j2\",\"write_key\":\"k\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"11111111111111111111111111111111\","
           "\"decision\":\"000000000000000c\",\"action\":\"credit_10\",\"p\":1,\"mode\":\"rules\",\"reason\":\"\"},"
           "{\"kind\":\"share\",\"t\":%lld,\"install\":\"11111111111111111111111111111111\","
           "\"decision\":\"000000000000000c\",\"code\":\"V1CODE0001\"},"
           "{\"kind\":\"landing\",\"t\":%lld,\"install\":\"22222222222222222222222222222222\",\"code\":\"V1CODE0001\"}]}",
           NOW + DAY, NOW + DAY - 5000, NOW + DAY - 4000, NOW + DAY - 3000);
  write_json(s, t, "default", json, NOW + DAY);
  /* A forger shares the referrer's code: refused and flagged; its decision stays. */
  snprintf(json, sizeof json,
           "{\"v\":1,\"batch_id\":\"j3\",\"write_key\":\"k\",\"sent_at\":%lld,\"events\":["
           "{\"kind\":\"decision\",\"t\":%lld,\"install\":\"" FORGER "\",\"decision\":\"000000000000000d\","
           "\"action\":\"none\",\"p\":1,\"mode\":\"rules\",\"reason\":\"cap\"},"
           "{\"kind\":\"share\",\"t\":%lld,\"install\":\"" FORGER "\",\"decision\":\"000000000000000d\","
           "\"code\":\"K7QX2M9PLA\"},"
           "{\"kind\":\"landing\",\"t\":%lld,\"install\":\"" REFERRER "\",\"code\":\"K7QX2M9PLA\"}]}",
           NOW + 2 * DAY, NOW + 2 * DAY - 5000, NOW + 2 * DAY - 4000, NOW + 2 * DAY - 3000);
  write_json(s, t, "default", json, NOW + 2 * DAY);
  write_json(s, t, "other", json, NOW + 2 * DAY); /* the same batch id on another site is another batch */

  uint8_t salt[LW_SALT_LEN], fresh[LW_SALT_LEN], again[LW_SALT_LEN];
  memset(fresh, 7, sizeof fresh);
  CHECK_INT(lw_store_site_salt(s, "default", fresh, salt, errmsg, sizeof errmsg), LW_OK);
  memset(fresh, 8, sizeof fresh);
  CHECK_INT(lw_store_site_salt(s, "default", fresh, again, errmsg, sizeof errmsg), LW_OK);
  say(t, "salt kept %d first byte %d", memcmp(salt, again, sizeof salt) == 0, salt[0]);

  uint8_t h1[LW_REFEREE_HASH_LEN], h2[LW_REFEREE_HASH_LEN], h3[LW_REFEREE_HASH_LEN], me[LW_REFEREE_HASH_LEN];
  memset(h1, 1, sizeof h1), memset(h2, 2, sizeof h2), memset(h3, 3, sizeof h3), memset(me, 9, sizeof me);
  int conflict = -1;
  CHECK_INT(lw_store_register_referrer(s, "default", "K7QX2M9PLA", me, &conflict, errmsg, sizeof errmsg), LW_OK);
  say(t, "register: conflict %d", conflict);
  CHECK_INT(lw_store_register_referrer(s, "default", "K7QX2M9PLA", me, &conflict, errmsg, sizeof errmsg), LW_OK);
  say(t, "register again: conflict %d", conflict);
  CHECK_INT(lw_store_register_referrer(s, "default", "K7QX2M9PLA", h3, &conflict, errmsg, sizeof errmsg), LW_OK);
  say(t, "register another: conflict %d", conflict);
  CHECK_INT(conflict, 1);

  lw_integrity_rules rules = lw_integrity_defaults();
  lw_referee_report r = {.site = "default", .code = "K7QX2M9PLA", .referee = h1, .event = "retained_30",
                         .at = NOW, .received_ms = NOW, .rules = &rules};
  report(s, t, &r); /* before its conversion: refused */
  CHECK_INT(r.refused, 1);
  r.event = "conversion", r.token = TOKEN_A, r.has_value = 1, r.value = 40;
  report(s, t, &r);
  r.event = "retained_30", r.token = NULL, r.has_value = 0, r.received_ms = NOW + 29 * DAY;
  report(s, t, &r);
  report(s, t, &r); /* the host's retry */
  CHECK_INT(r.duplicate, 1);
  r.event = "revenue", r.has_value = 1, r.value = 120, r.received_ms = NOW + 31 * DAY;
  report(s, t, &r);
  r.event = "churned", r.token = TOKEN_B, r.has_value = 0;
  report(s, t, &r); /* not the conversion's token */
  lw_referee_report v1 = {.site = "default", .code = "V1CODE0001", .referee = h2, .event = "conversion",
                          .at = NOW, .received_ms = NOW + DAY, .rules = &rules};
  report(s, t, &v1);
  v1.event = "retained_90", v1.received_ms = NOW + 90 * DAY;
  report(s, t, &v1);
  /* The self-referral rule (the registered referrer converts on its own code) and review. */
  lw_integrity_rules strict = rules;
  strict.self_referral = LW_RULE_FLAG;
  strict.repeat_referee = LW_RULE_REJECT;
  lw_referee_report self = {.site = "default", .code = "K7QX2M9PLA", .referee = me, .event = "conversion",
                            .at = NOW, .received_ms = NOW + 3 * DAY, .rules = &strict};
  report(s, t, &self);
  CHECK_STR(self.state, "flagged");
  lw_referee_report repeat = {.site = "default", .code = "V1CODE0001", .referee = h1, .event = "conversion",
                              .at = NOW, .received_ms = NOW + 3 * DAY, .rules = &strict};
  report(s, t, &repeat);
  CHECK_STR(repeat.state, "rejected");
  strict.review_all = 1;
  lw_referee_report waits = {.site = "default", .code = "V1CODE0001", .referee = h3, .event = "conversion",
                             .at = NOW, .received_ms = NOW + 3 * DAY, .rules = &strict};
  report(s, t, &waits);

  lw_review *rows = NULL;
  size_t n = 0;
  CHECK_INT(lw_store_reviews(s, "default", 10, &rows, &n, errmsg, sizeof errmsg), LW_OK);
  say(t, "reviews: %zu", n);
  for (size_t i = 0; i < n; i++)
    say(t, "  %s %s %s at %lld received %lld", rows[i].code, rows[i].event, rows[i].reason, (long long)rows[i].at,
        (long long)rows[i].received_at);
  int result = -1;
  if (n == 2) {
    CHECK_INT(lw_store_review(s, "default", rows[1].id, 1, "pm", NOW + 4 * DAY, &result, errmsg, sizeof errmsg), LW_OK);
    say(t, "approve: %d", result);
    CHECK_INT(lw_store_review(s, "default", rows[1].id, 0, "pm", NOW + 4 * DAY, &result, errmsg, sizeof errmsg), LW_OK);
    say(t, "again: %d", result);
    CHECK_INT(lw_store_review(s, "other", rows[0].id, 0, "pm", NOW + 4 * DAY, &result, errmsg, sizeof errmsg), LW_OK);
    say(t, "another site's: %d", result);
  }
  CHECK_INT(n, 2);
  free(rows);
  /* who decided, in the store: the approval only (the second decision and another site's were refused) */
  lw_console_action *acts = NULL;
  size_t n_acts = 0;
  CHECK_INT(lw_store_console_actions(s, "default", 10, &acts, &n_acts, errmsg, sizeof errmsg), LW_OK);
  say(t, "console actions: %zu", n_acts);
  for (size_t i = 0; i < n_acts; i++)
    say(t, "  %s %s %s at %lld", acts[i].who, acts[i].action, acts[i].target, (long long)acts[i].at);
  CHECK_INT(n_acts, 1);
  free(acts);

  lw_referral ref;
  CHECK_INT(lw_store_referral(s, "default", "K7QX2M9PLA", REFERRER, &ref, errmsg, sizeof errmsg), LW_OK);
  say(t, "referral owner %d conversions %lld landings %lld", ref.owner, (long long)ref.conversions, (long long)ref.landings);
  CHECK_INT(ref.owner, LW_OWNER_SELF);
  CHECK_INT(lw_store_referral(s, "default", "K7QX2M9PLA", FORGER, &ref, errmsg, sizeof errmsg), LW_OK);
  say(t, "referral as another %d %lld", ref.owner, (long long)ref.conversions);
  CHECK_INT(lw_store_referral(s, "default", "NOBODY0001", FORGER, &ref, errmsg, sizeof errmsg), LW_OK);
  say(t, "referral of nobody's %d", ref.owner);
  lw_attribution *att = NULL;
  CHECK_INT(lw_store_attributions(s, "default", 0, &att, &n, errmsg, sizeof errmsg), LW_OK);
  say(t, "attributions %zu", n);
  for (size_t i = 0; i < n; i++)
    say(t, "  %s %lld %lld..%lld", att[i].code, (long long)att[i].conversions, (long long)att[i].first_at,
        (long long)att[i].last_at);
  free(att);

  say_stats(s, t, NULL);
  lw_stats_bounds bounds = {1, 1};
  say_stats(s, t, &bounds);
  say_decisions(s, t, 0, 0);
  say_decisions(s, t, 0, 30);
  say_decisions(s, t, 1, 0);

  lw_forget_item f1 = {"default", FORGER, "K7QX2M9PLA", 0, 0}, f2 = {"default", "22222222222222222222222222222222", NULL, 0, 0};
  lw_forget_item *fs[] = {&f1, &f2};
  CHECK_INT(lw_store_forget(s, fs, 2, errmsg, sizeof errmsg), LW_OK);
  say(t, "forget: code by another denied %d deleted %lld; install deleted %lld", f1.denied, (long long)f1.deleted,
      (long long)f2.deleted);
  CHECK_INT(f1.denied, 1);
  int64_t purged = -1;
  CHECK_INT(lw_store_purge(s, NOW + DAY / 2, &purged, errmsg, sizeof errmsg), LW_OK);
  say(t, "purge: %lld", (long long)purged);
  CHECK_INT(purged, 5);
  say_stats(s, t, NULL);
  say_decisions(s, t, 0, 0);
  CHECK_INT(lw_store_ping(s, errmsg, sizeof errmsg), LW_OK);
}

/* What the server logs of its store setting keeps a connection string's password out. */
static void a_logged_connection_string_shows_no_password(void) {
  char out[256];
  lw_store_describe("postgresql://app:s3cret@db.internal:5432/lw?sslmode=require", out, sizeof out);
  CHECK_STR(out, "postgresql://app:***@db.internal:5432/lw?sslmode=require");
  lw_store_describe("postgres://db/lw?sslmode=require&password=s3cret&x=1", out, sizeof out);
  CHECK_STR(out, "postgres://db/lw?sslmode=require&password=***&x=1");
  lw_store_describe("postgresql://app@/lw?host=/run/pg", out, sizeof out);
  CHECK_STR(out, "postgresql://app@/lw?host=/run/pg");
  lw_store_describe("/var/lib/loopwise/user:pass@x.db", out, sizeof out);
  CHECK_STR(out, "/var/lib/loopwise/user:pass@x.db");
  CHECK_INT(lw_store_is_pg("postgres://x"), 1);
  CHECK_INT(lw_store_is_pg("postgresql://x"), 1);
  CHECK_INT(lw_store_is_pg("outcomes.db"), 0);
  CHECK_INT(lw_store_is_pg("postgres.db"), 0);
}

int main(void) {
  a_logged_connection_string_shows_no_password();
  const char *url = getenv("LW_TEST_PG");
  if (!url || !*url) {
    printf("skipped: LW_TEST_PG is not set (src/scripts/test.sh starts a cluster and sets it)\n");
    return check_failures ? 1 : 77;
  }
  char errmsg[LW_ERRMSG_MAX];
  /* A schema of this run's own on the test database, so reruns start empty. */
  char pgurl[2048];
  snprintf(pgurl, sizeof pgurl, "%s%soptions=-csearch_path%%3Dlwc_%ld", url, strchr(url, '?') ? "&" : "?", (long)getpid());
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "PGOPTIONS='-c client_min_messages=warning' psql '%s' -X -q -c 'DROP SCHEMA IF EXISTS lwc_%ld CASCADE; CREATE SCHEMA lwc_%ld'", url,
           (long)getpid(), (long)getpid());
  CHECK_INT(system(cmd), 0);
  char path[] = "/tmp/lw-test-pg-parity-XXXXXX";
  close(mkstemp(path));
  unlink(path);
  lw_store *sq = NULL, *pg = NULL;
  CHECK_INT(lw_store_open(path, &sq, errmsg, sizeof errmsg), LW_OK);
  CHECK_INT(lw_store_is_pg(pgurl), 1);
  lw_status st = lw_store_open(pgurl, &pg, errmsg, sizeof errmsg);
  if (st != LW_OK) fprintf(stderr, "open: %s\n", errmsg);
  CHECK_INT(st, LW_OK);
  if (sq && pg) {
    CHECK_STR(pg->backend->name, "postgresql");
    transcript a = {0}, b = {0};
    scenario(sq, &a);
    scenario(pg, &b);
    if (strcmp(a.buf, b.buf) != 0) {
      fprintf(stderr, "the backends answered differently.\n--- sqlite\n%s--- postgresql\n%s", a.buf, b.buf);
      check_failures++;
    }
    if (getenv("LW_TEST_SHOW")) fputs(b.buf, stdout);
    free(a.buf), free(b.buf);
    /* A second open finds the schema current; the read-only open refuses writes. */
    lw_store *again = NULL, *ro = NULL;
    CHECK_INT(lw_store_open(pgurl, &again, errmsg, sizeof errmsg), LW_OK);
    lw_store_free(again);
    CHECK_INT(lw_store_open_read(pgurl, &ro, errmsg, sizeof errmsg), LW_OK);
    if (ro) {
      int64_t purged = 0;
      CHECK_INT(lw_store_purge(ro, NOW * 2, &purged, errmsg, sizeof errmsg), LW_ERR_INVALID);
      uint64_t n = 0;
      lw_store_range range = {"default", 0, 0};
      CHECK_INT(lw_store_count_decisions(ro, &range, &n, errmsg, sizeof errmsg), LW_OK);
      CHECK(n > 0);
    }
    lw_store_free(ro);
  }
  lw_store_free(sq);
  lw_store_free(pg);
  unlink(path);
  char side[sizeof path + 8];
  snprintf(side, sizeof side, "%s-wal", path), unlink(side);
  snprintf(side, sizeof side, "%s-shm", path), unlink(side);
  snprintf(cmd, sizeof cmd, "PGOPTIONS='-c client_min_messages=warning' psql '%s' -X -q -c 'DROP SCHEMA IF EXISTS lwc_%ld CASCADE'", url, (long)getpid());
  CHECK_INT(system(cmd), 0);
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
