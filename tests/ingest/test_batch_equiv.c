/* test_batch_equiv.c: the single-pass batch reader (src/ingest/batch.c) answers exactly as the
 * cJSON-tree validator it replaced (batch_cjson.c, kept as the oracle): the same status, the
 * same field and message for every refusal, the same batch for every acceptance. Run over every
 * input the fuzzers kept (corpus and crash inputs of fuzz_batch and fuzz_batch_diff) and the
 * hand-picked corners of the strict JSON rules below, under the default limits and tight ones,
 * and every prefix, deletion and substitution of a byte of the two valid batches. The fuzz target
 * tests/fuzz/fuzz_batch_diff.c runs the same comparison on what libFuzzer makes up. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_equiv.h"
#include "check.h"
#include "testutil.h"
#include "loopwise/json.h"

#define NOW 1764100000000LL

static long compared;

/* Compared under the default limits and (tight) under 2 records and no clock-skew allowance. */
static void compare(const char *body, size_t len, const char *what, int tight_too) {
  lw_batch_limits def = lw_batch_default_limits(), tight = {2, 0};
  char why[512];
  if (!batch_equiv(body, len, &def, NOW, why, sizeof why)) {
    fprintf(stderr, "%s (%zu bytes: %.*s): %s\n", what, len, (int)(len < 80 ? len : 80), body, why);
    check_failures++;
  }
  if (tight_too && !batch_equiv(body, len, &tight, NOW, why, sizeof why)) {
    fprintf(stderr, "%s, tight limits (%zu bytes: %.*s): %s\n", what, len, (int)(len < 80 ? len : 80), body, why);
    check_failures++;
  }
  compared++;
}

static void same(const char *body, size_t len, const char *what) { compare(body, len, what, 1); }

static void same_str(const char *body) { same(body, strlen(body), "case"); }

static int dir_inputs(const char *rel) {
  DIR *d = opendir(tu_path(rel));
  int n = 0;
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/%s", LW_SOURCE_DIR, rel, e->d_name);
    size_t len;
    char *body = tu_read_file(path, &len);
    if (!body) continue;
    same(body, len, path);
    free(body);
    n++;
  }
  closedir(d);
  return n;
}

static void the_reader_answers_as_the_oracle_on_every_kept_fuzz_input(void) {
  int n = dir_inputs("tests/fuzz/corpus/batch") + dir_inputs("tests/fuzz/corpus/batch_diff") +
          dir_inputs("tests/fuzz/regressions/batch") + dir_inputs("tests/fuzz/regressions/batch_diff");
  CHECK(n >= 8);
}

static void mutations_of(const char *name) {
  char *text = tu_read_case(name);
  size_t n = strlen(text);
  char *buf = malloc(n + 1);
  static const char subst[] = "\"\\{}[],: 0-1.eEa\x01\x7f\x80\xc3\xff";
  for (size_t len = 0; len <= n; len++) {
    char *exact = malloc(len ? len : 1); /* exactly len bytes: ASan sees any read past them */
    memcpy(exact, text, len);
    compare(exact, len, "prefix", 0);
    free(exact);
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(buf, text, i);
    memcpy(buf + i, text + i + 1, n - i - 1);
    compare(buf, n - 1, "deletion", 0);
    memcpy(buf, text, n);
    for (size_t k = 0; k < sizeof subst - 1; k++) {
      buf[i] = subst[k];
      compare(buf, n, "substitution", 0);
    }
  }
  free(buf);
  free(text);
}

static void the_reader_answers_as_the_oracle_on_every_mutation_of_the_valid_batches(void) {
  mutations_of("ingest/valid-batch.json");
  mutations_of("ingest/valid-batch-v2.json");
  mutations_of("ingest/valid-batch-v3.json");
}

#define ENV(v, events) "{\"v\":" v ",\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" events "]}"
#define IMP(extra) "{\"kind\":\"impression\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"" extra "}"
#define DEC(extra) "{\"kind\":\"decision\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"p\":0.5,\"mode\":\"rules\",\"reason\":\"r\"" extra "}"
#define SHARE(extra) "{\"kind\":\"share\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"code\":\"K7QX2M9PLA\"" extra "}"

#define APR(action, attrs) "{\"kind\":\"approval-request\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"" action "\",\"reason\":\"r\",\"key\":\"00112233445566778899aabbccddeeff\",\"attrs\":" attrs "}"
#define ANS(answer) "{\"kind\":\"approval-answer\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"answer\":" answer "}"

/* Wire v3's approval records: the attrs object, the key, the answer and the held variant. */
static void the_reader_answers_as_the_oracle_on_approval_records(void) {
  static const char *const cases[] = {
      ENV("3", APR("a", "{\"plan\":\"enterprise\",\"seats\":\"50-plus\"}")), ENV("3", APR("a", "{}")),
      ENV("2", APR("a", "{}")), ENV("1", APR("a", "{}")), ENV("3", APR("none", "{}")), ENV("3", APR("not_now", "{}")),
      ENV("3", APR("a", "[]")), ENV("3", APR("a", "\"plan\"")), ENV("3", APR("a", "{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\"}")),
      ENV("3", APR("a", "{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\",\"e\":\"5\"}")),
      ENV("3", APR("a", "{\"a\":\"1\",\"a\":\"2\"}")), ENV("3", APR("a", "{\"a\":\"1\",\"\\u0061\":\"2\"}")),
      ENV("3", APR("a", "{\"\":\"1\"}")), ENV("3", APR("a", "{\"a b\":\"1\"}")), ENV("3", APR("a", "{\"\xc3\xa9\":\"1\"}")),
      ENV("3", APR("a", "{\"\xc3\":\"1\"}")), ENV("3", APR("a", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"1\"}")),
      ENV("3", APR("a", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"1\"}")),
      ENV("3", APR("a", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"1\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"1\"}")),
      ENV("3", APR("a", "{\"plan\":1}")), ENV("3", APR("a", "{\"plan\":\"\"}")), ENV("3", APR("a", "{\"plan\":\"Jane Doe\"}")),
      ENV("3", APR("a", "{\"plan\":\"\\u0065nterprise\"}")), ENV("3", APR("a", "{ \"plan\" : \"e\" , \"s\" :\"1\" }")),
      ENV("3", APR("a", "{\"plan\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}")), ENV("3", APR("a", "{\"plan\":[\"x\"]}")),
      ENV("3", APR("a", "{\"plan\":\"e\"}") "," DEC(",\"x\":[[1,2]]")),
      ENV("3", "{\"kind\":\"approval-request\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"reason\":\"r\",\"attrs\":{}}"),
      ENV("3", "{\"kind\":\"approval-request\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"reason\":\"r\",\"attrs\":{},\"key\":\"ABC\"}"),
      ENV("3", ANS("\"approved\"")), ENV("3", ANS("\"declined\"")), ENV("3", ANS("\"expired\"")), ENV("3", ANS("\"pending\"")),
      ENV("3", ANS("\"yes\"")), ENV("3", ANS("1")), ENV("3", ANS("\"appr\\u006fved\"")), ENV("2", ANS("\"approved\"")),
      ENV("3", IMP(",\"answer\":\"approved\"")), ENV("3", IMP(",\"key\":\"00112233445566778899aabbccddeeff\"")),
      ENV("2", IMP(",\"attrs\":{}")), ENV("3", SHARE(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"channel\":\"email\"")),
      "{\"events\":[" APR("a", "{}") "],\"v\":3,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1}",
      "{\"events\":[" APR("a", "{}") "],\"v\":2,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1}",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) same_str(cases[i]);
  lw_batch *b = NULL;
  lw_batch_error err;
  const char *ok = cases[0];
  CHECK_INT(lw_batch_parse(ok, strlen(ok), NULL, NOW, &b, &err), LW_OK);
  CHECK(b && b->events[0].n_attrs == 2);
  if (b) CHECK_STR(b->events[0].attr_values[1], "50-plus");
  lw_batch_free(b);
}

static void the_reader_answers_as_the_oracle_on_the_corners_of_strict_json(void) {
  static const char *const cases[] = {
      ENV("1", IMP("")), ENV("2", IMP("")), ENV("3", IMP("")), ENV("0", IMP("")), ENV("1.0", IMP("")),
      ENV("1e0", IMP("")), ENV("10e-1", IMP("")), ENV("-0", IMP("")), ENV("01", IMP("")), ENV("1.", IMP("")),
      ENV("\"1\"", IMP("")), ENV("true", IMP("")), ENV("null", IMP("")), ENV("1", ""), ENV("1", "1"),
      ENV("1", IMP(",\"t\":2")), ENV("1", IMP(",\"x\":1")), ENV("1", IMP(",\"p\":0.5")),
      ENV("1", DEC(",\"x\":[]")), ENV("1", DEC(",\"x\":[[1,0.5],[4294967295,-1e300]]")),
      ENV("1", DEC(",\"x\":[[1,0.5,3]]")), ENV("1", DEC(",\"x\":[[4294967296,1]]")), ENV("1", DEC(",\"x\":[[1.5,1]]")),
      ENV("1", DEC(",\"x\":[[-0,1e400]]")), ENV("1", DEC(",\"x\":[[1,\"a\"]]")), ENV("1", DEC(",\"x\":[1]")),
      ENV("1", DEC(",\"x\":{}")), ENV("1", DEC(",\"x\":[[1e2,0.1],[2E+1,123456789.123456789],[3,1e-7]]")),
      ENV("1", DEC(",\"x\":[[0.0000000000000000000000000001e28,5e-324]]")),
      ENV("1", DEC(",\"x\":[[1000000000000000000000000000000000000000000000000000000000000000000000e-70,0.50000000000000000000000000000000000000000000000000000000000000000000001]]")),
      ENV("1.00000000000000000000000000000000000000000000000000000000000000000000000", IMP(",\"t\":1764099990000.000000000000000000000000000000000000000000000000000000000000000")),
      ENV("1", DEC(",\"segment\":\"s\",\"model\":\"m.1\"")), ENV("1", DEC(",\"segment\":\"\"")),
      ENV("1", "{\"kind\":\"decision\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"p\":1e-1,\"mode\":\"m\\u006fdel\",\"reason\":\"\\ud83d\\ude00 \\u00e9\\n\\t\\\"\"}"),
      ENV("1", "{\"kind\":\"decision\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"p\":0,\"mode\":\"rules\",\"reason\":\"\"}"),
      ENV("1", "{\"kind\":\"decision\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\",\"p\":1.0000000000000002,\"mode\":\"rules\",\"reason\":\"\"}"),
      ENV("1", "{\"k\\u0069nd\":\"impr\\u0065ssion\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"}"),
      ENV("1", "{\"kind\":\"impression\",\"kind\":\"impression\"}"), ENV("1", "{\"kind\":1}"), ENV("1", "{\"kind\":\"nope\"}"),
      ENV("1", "{\"kind\\u0000\":1}"), ENV("1", "{\"\\u00e9\":1}"), ENV("1", "{\"\xc3\":1}"), ENV("1", "{\"\xc3\\u00e9\":1}"),
      ENV("1", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}"),
      ENV("1", IMP(",\"segment\":\"\\u0061\\u0062\\u0063\\u0064\\u0065\\u0066\\u0067\\u0068\\u0069\\u006a\\u006b\\u006c\\u006d\\u006e\\u006f\\u0070\\u0071\\u0072\\u0073\\u0074\\u0075\\u0076\\u0077\\u0078\\u0079\\u007a\\u0041\\u0042\\u0043\\u0044\\u0045\\u0046\"")),
      ENV("1", IMP(",\"segment\":\"\\u0061\\u0062\\u0063\\u0064\\u0065\\u0066\\u0067\\u0068\\u0069\\u006a\\u006b\\u006c\\u006d\\u006e\\u006f\\u0070\\u0071\\u0072\\u0073\\u0074\\u0075\\u0076\\u0077\\u0078\\u0079\\u007a\\u0041\\u0042\\u0043\\u0044\\u0045\\u0046G\"")),
      ENV("1", IMP(",\"segment\":1")), ENV("1", DEC(",\"model\":null")), ENV("1", SHARE(",\"code\":[\"K7QX2M9PLA\"]")),
      ENV("1", IMP(",\"segment\":\"\\u00e9\"")), ENV("1", IMP(",\"segment\":\"\xff\"")), ENV("1", IMP(",\"code\":\"k7qx2m\"")),
      ENV("1", SHARE("")), ENV("2", SHARE("")), ENV("2", SHARE(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"channel\":\"email\"")),
      ENV("2", SHARE(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"channel\":\"fax\"")),
      ENV("1", SHARE(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"channel\":\"email\"")),
      ENV("2", "{\"kind\":\"landing\",\"t\":1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"}"),
      ENV("1", IMP(",\"t\":9007199254740992")), ENV("1", "{\"kind\":\"impression\",\"t\":9007199254740993,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"}"),
      ENV("1", "{\"kind\":\"impression\",\"t\":1764186400001,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"}"),
      ENV("1", "{\"kind\":\"impression\",\"t\":1.5,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"}"),
      ENV("1", "{\"kind\":\"impression\",\"t\":-1,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"}"),
      ENV("1", "{\"kind\":\"impression\",\"t\":1,\"install\":\"0F1E2D3C4B5A69788796A5B4C3D2E1F0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"a\"}"),
      ENV("1", IMP("") "," IMP("") "," IMP("")), ENV("1", IMP("") ",1"), ENV("1", IMP("") ",{\"kind\":2}," IMP(",\"bad\":1")),
      "{\"events\":[" IMP("") "],\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1}",
      "{\"events\":[" IMP(",\"t\":\"x\"") "],\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1}",
      "{\"events\":[" IMP(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"") "],\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1}",
      "{\"events\":[" IMP("") "],\"v\":9,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1}",
      "{\"v\":1,\"events\":[1],\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"v\":1}",
      "{\"v\":1,\"events\":[" IMP("") "],\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[]}",
      "{\"v\":1,\"x\":1,\"events\":[1]}", "{\"\\u0076\":1,\"batch_id\":\"b\\u0031\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP("") "]}",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":{}}",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[]}",
      "{\"v\":1,\"batch_id\":\"\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP("") "]}",
      "{\"v\":1,\"batch_id\":\"b/1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP("") "]}",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1.5,\"events\":[" IMP("") "]}",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP("") "]} x",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP("") "]}\x01",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP("") "]} \r\n\t",
      " {}", "{}", "[]", "1", "\"x\"", "nul", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\u12\"}", "{\"a\" 1}", "{\"a\":1,}", "{,}", "{\"a\":[1,]}",
      "{\"a\":1e}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":0x1}", "{\"a\":Infinity}", "\xef\xbb\xbf{}",
      "{\"v\":1,\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[" IMP(",\"reason\":\"x\x01\"") "]}",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) same_str(cases[i]);
  /* nesting at and past the limit, inside a record and around one */
  for (int depth = CJSON_NESTING_LIMIT - 4; depth <= CJSON_NESTING_LIMIT + 1; depth++) {
    size_t cap = 2 * (size_t)depth + 512, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n, "{\"v\":1,\"batch_id\":\"b\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[{\"kind\":");
    for (int k = 0; k < depth - 3; k++) b[n++] = '[';
    for (int k = 0; k < depth - 3; k++) b[n++] = ']';
    n += (size_t)snprintf(b + n, cap - n, "}]}");
    same(b, n, "nesting");
    free(b);
  }
}

/* Not only the same answer: a batch whose "v" comes after its records (any member order is
 * JSON) is read, with the records checked against that version. */
static void records_before_the_version_are_read_against_it(void) {
  static const char v2_after[] =
      "{\"events\":[" SHARE(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"channel\":\"email\"") "],"
      "\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"v\":2}";
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK_INT(lw_batch_parse(v2_after, strlen(v2_after), NULL, NOW, &b, &err), LW_OK);
  CHECK(b && b->v == 2 && b->n_events == 1);
  if (b) CHECK_STR(b->events[0].channel, "email");
  lw_batch_free(b);
  static const char v1_after[] =
      "{\"events\":[" SHARE(",\"token\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"") "],"
      "\"batch_id\":\"b1\",\"write_key\":\"k\",\"sent_at\":1,\"v\":1}";
  CHECK_INT(lw_batch_parse(v1_after, strlen(v1_after), NULL, NOW, &b, &err), LW_ERR_INVALID);
  CHECK_STR(err.field, "events[0].token");
}

/* Every batch of the limit's size, and larger ones under a raised limit, grow past the records
 * the batch holds in its own allocation. */
static void batches_of_many_records_are_read_whole(void) {
  for (int n = 1; n <= 40; n += 13) {
    size_t cap = 256 + (size_t)n * 600, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b, cap, "{\"v\":1,\"batch_id\":\"b\",\"write_key\":\"k\",\"sent_at\":1,\"events\":[");
    for (int i = 0; i < n; i++)
      len += (size_t)snprintf(b + len, cap - len, "%s" DEC(",\"x\":[[%d,0.25],[7,-2]]"), i ? "," : "", i);
    len += (size_t)snprintf(b + len, cap - len, "]}");
    same(b, len, "many records");
    lw_batch *out = NULL;
    lw_batch_error err;
    CHECK_INT(lw_batch_parse(b, len, NULL, NOW, &out, &err), LW_OK);
    CHECK(out && (int)out->n_events == n && out->events[n - 1].n_x == 2 && out->events[n - 1].x[0].hash == (uint32_t)(n - 1));
    lw_batch_free(out);
    free(b);
  }
}

int main(void) {
  lw_json_install_hooks();
  RUN(the_reader_answers_as_the_oracle_on_every_kept_fuzz_input);
  RUN(the_reader_answers_as_the_oracle_on_the_corners_of_strict_json);
  RUN(the_reader_answers_as_the_oracle_on_approval_records);
  RUN(records_before_the_version_are_read_against_it);
  RUN(batches_of_many_records_are_read_whole);
  RUN(the_reader_answers_as_the_oracle_on_every_mutation_of_the_valid_batches);
  fprintf(stderr, "%ld bodies compared\n", compared);
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
