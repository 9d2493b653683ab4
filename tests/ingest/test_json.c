/* test_json.c: the one JSON entry point (src/core/json.c) follows RFC 8259's grammar, and
 * what it refuses never reaches the stored batches or the config.
 *
 * The cases are our own, one per rule of the grammar; the public conformance suite
 * (JSONTestSuite's y_/n_ files) was run once by hand, see README "Strict JSON". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testutil.h"
#include "loopwise/batch.h"
#include "loopwise/json.h"

#define NOW 1764100000000LL

typedef struct {
  const char *text;
  size_t len; /* 0: strlen */
} jcase;

#define J(s) {s, sizeof s - 1}

static const jcase accepted[] = {
    J("0"), J("-0"), J("1"), J("-1"), J("10"), J("1.5"), J("-0.25"), J("1e5"), J("1E5"),
    J("1e+5"), J("1e-5"), J("0.0e0"), J("123456789012345678901234567890"), J("1.0E-400"),
    J("\"\""), J("\"a\""), J("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), J("\"\\u00e9\""), J("\"\\uD83D\\uDE00\""),
    J("\"\xc3\xa9\""), J("\"\xf0\x9f\x98\x80\""), J("true"), J("false"), J("null"), J("[]"), J("{}"),
    J(" \t\r\n[ 1 , 2 ]"), J("{\"a\":{\"b\":[null,true,false,\"c\",-1.5e3]}}"), J("{\"\":0}"),
    J("[[[[[[[[[[]]]]]]]]]]"),
};

static const jcase refused[] = {
    /* numbers cJSON's strtod would take */
    J("01"), J("-01"), J("00"), J("1."), J(".5"), J("-.5"), J("+1"), J("1e"), J("1e+"), J("1E-"),
    J("0x10"), J("0X1F"), J("NaN"), J("-NaN"), J("Infinity"), J("-Infinity"), J("inf"), J("1.e5"),
    J("- 1"), J("-"), J("1_000"), J("[1.]"), J("{\"a\":01}"), J("[-]"), J("[.1]"), J("[1e]"),
    /* strings */
    J("\"\\u0000\""), J("{\"kind\\u0000x\":1}"), J("\"a\\u0000\""), J("\"\\x41\""), J("\"\\a\""),
    J("\"\\u12\""), J("\"\\u12G4\""), J("\"\\uD800\""), J("\"\\uDC00\""), J("\"\\uD800\\u0041\""),
    J("\"\\uD800x\""), J("\"unterminated"), J("'single'"), J("\"\t\""), J("\"a\nb\""),
    {"\"a\0b\"", 5},
    /* structure */
    J(""), J(" "), J("["), J("]"), J("{"), J("[1,]"), J("[,1]"), J("[1 2]"), J("{\"a\"}"),
    J("{\"a\":}"), J("{\"a\":1,}"), J("{a:1}"), J("{1:1}"), J("{\"a\" 1}"), J("{\"a\":1 \"b\":2}"),
    J("tru"), J("True"), J("nul"), J("[null"), J("/* c */ 1"), J("\xef\xbb\xbf{}"), J("[\"a\",]"),
};

static void grammar_cases_are_accepted_or_refused_by_the_rfc(void) {
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
    lw_status st;
    cJSON *doc = lw_json_parse(accepted[i].text, accepted[i].len, NULL, &st);
    if (!doc) fprintf(stderr, "refused valid JSON: %s\n", accepted[i].text);
    CHECK(doc != NULL);
    CHECK_INT(st, LW_OK);
    cJSON_Delete(doc);
  }
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    lw_status st;
    const char *end = NULL;
    cJSON *doc = lw_json_parse(refused[i].text, refused[i].len, &end, &st);
    /* A value that parses but leaves trailing bytes is refused by every caller (they check
     * that only whitespace follows); count that as refused too. */
    int whole = doc && end == refused[i].text + refused[i].len;
    if (whole) fprintf(stderr, "accepted invalid JSON: %.*s\n", (int)refused[i].len, refused[i].text);
    CHECK(!whole);
    if (!doc) CHECK_INT(st, LW_ERR_INVALID);
    CHECK(end != NULL);
    cJSON_Delete(doc);
  }
}

static void nesting_deeper_than_the_limit_is_refused(void) {
  size_t n = CJSON_NESTING_LIMIT + 1;
  char *deep = malloc(2 * n);
  for (size_t i = 0; i < n; i++) deep[i] = '[', deep[2 * n - 1 - i] = ']';
  lw_status st;
  CHECK(lw_json_parse(deep, 2 * n, NULL, &st) == NULL);
  cJSON *ok = lw_json_parse(deep + 1, 2 * n - 2, NULL, &st);
  CHECK(ok != NULL);
  cJSON_Delete(ok);
  free(deep);
}

/* The batch validator reads through lw_json_parse: a batch with a number outside the grammar,
 * or with an escaped NUL in a key, is refused with 400, not stored. */
static void batch_with_a_non_json_number_or_an_escaped_nul_is_refused(void) {
  char *text = tu_read_case("ingest/valid-batch.json");
  CHECK(text != NULL);
  if (!text) return;
  struct {
    const char *from, *to;
  } edits[] = {
      {"\"p\": 0.75", "\"p\": .75"},
      {"\"p\": 0.75", "\"p\": 0.75e"},
      {"\"v\": 1", "\"v\": 01"},
      {"\"v\": 1", "\"v\": +1"},
      {"\"kind\": \"decision\"", "\"kind\\u0000x\": \"decision\""},
      {"\"kind\": \"decision\"", "\"kind\": \"decision\\u0000\""},
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    const char *at = strstr(text, edits[i].from);
    CHECK(at != NULL);
    if (!at) continue;
    size_t pre = (size_t)(at - text), fl = strlen(edits[i].from), tl = strlen(edits[i].to);
    size_t n = strlen(text) - fl + tl;
    char *body = malloc(n + 1);
    memcpy(body, text, pre);
    memcpy(body + pre, edits[i].to, tl);
    strcpy(body + pre + tl, at + fl);
    lw_batch *b = NULL;
    lw_batch_error err;
    lw_status st = lw_batch_parse(body, n, NULL, NOW, &b, &err);
    if (st == LW_OK) fprintf(stderr, "stored a batch edited to %s\n", edits[i].to);
    CHECK_INT(st, LW_ERR_INVALID);
    lw_batch_free(b);
    free(body);
  }
  /* the unedited case still parses */
  lw_batch *b = NULL;
  lw_batch_error err;
  CHECK_INT(lw_batch_parse(text, strlen(text), NULL, NOW, &b, &err), LW_OK);
  lw_batch_free(b);
  free(text);
}

int main(void) {
  lw_json_install_hooks();
  grammar_cases_are_accepted_or_refused_by_the_rfc();
  nesting_deeper_than_the_limit_is_refused();
  batch_with_a_non_json_number_or_an_escaped_nul_is_refused();
  if (check_failures) fprintf(stderr, "test_json: %d failures\n", check_failures);
  return check_failures != 0;
}
