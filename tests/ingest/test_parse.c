/* test_parse.c: the ingest readers under hostile input, the way picohttpparser and SQLite test
 * theirs. Every prefix of a valid batch and of a forget request is refused cleanly (a message,
 * a field path, nothing allocated); tests/cases/ingest/invalid-batches.json runs against
 * lw_batch_parse directly, field and message checked; and the batch, forget and config readers
 * run with the Nth allocation failing for every N until they succeed.
 *
 * The allocation hook is tests/unit/failalloc.h's: the validator's and the config reader's own
 * allocations through -Wl,--wrap, cJSON's through its hooks. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch_equiv.h"
#include "check.h"
#include "failalloc.h"
#include "testutil.h"
#include "loopwise/batch.h"
#include "loopwise/json.h"
#include "loopwise/ingest.h"

#define NOW 1764100000000LL

/* ---------------------------------------------------------------- cases */


static const char forget_body[] =
    "{\"v\":1,\"write_key\":\"demo-site-key\",\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"}";

/* The length of the JSON value in text (through its last '}'): shorter prefixes are not a
 * document, longer ones only add whitespace. */
static size_t document_len(const char *text) { return (size_t)(strrchr(text, '}') - text) + 1; }

static void every_prefix_is_refused_and_the_whole_accepted(const char *name) {
  char *text = tu_read_case(name);
  size_t n = strlen(text), whole = document_len(text);
  int bad = 0;
  for (size_t len = 0; len <= n; len++) {
    char *copy = malloc(len ? len : 1); /* exactly len bytes: ASan sees any read past them */
    memcpy(copy, text, len);
    lw_batch *b = (lw_batch *)1;
    lw_batch_error err;
    lw_status st = lw_batch_parse(copy, len, NULL, NOW, &b, &err);
    if (len < whole) {
      if (st != LW_ERR_INVALID || b != NULL || !err.message[0] || strcmp(err.field, "") != 0) {
        fprintf(stderr, "prefix %zu: status %d field '%s' message '%s'\n", len, (int)st,
                err.field, err.message);
        bad++;
      }
    } else {
      CHECK_INT(st, LW_OK);
      CHECK(b && b->n_events == 5);
    }
    if (st == LW_OK) lw_batch_free(b);
    free(copy);
  }
  CHECK_INT(bad, 0);
  free(text);
}

static void every_prefix_of_a_valid_batch_is_refused_and_the_whole_accepted(void) {
  every_prefix_is_refused_and_the_whole_accepted("ingest/valid-batch.json");
}
static void every_prefix_of_a_v2_batch_is_refused_and_the_whole_accepted(void) {
  every_prefix_is_refused_and_the_whole_accepted("ingest/valid-batch-v2.json");
}

static void every_prefix_of_a_v3_batch_is_refused_and_the_whole_accepted(void) {
  every_prefix_is_refused_and_the_whole_accepted("ingest/valid-batch-v3.json");
}

static void every_prefix_of_a_forget_request_is_refused_and_the_whole_accepted(void) {
  size_t n = strlen(forget_body);
  for (size_t len = 0; len <= n; len++) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, forget_body, len);
    lw_forget_request req;
    lw_batch_error err;
    lw_status st = lw_forget_parse(copy, len, &req, &err);
    if (len < n) {
      CHECK_INT(st, LW_ERR_INVALID);
      CHECK(err.message[0] != '\0');
      CHECK_STR(err.field, "");
    } else {
      CHECK_INT(st, LW_OK);
      CHECK_STR(req.install, "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
      CHECK_STR(req.write_key, "demo-site-key");
    }
    free(copy);
  }
}

/* ---------------------------------------------------------------- invalid-batches.json */

/* Follow path (keys and indexes) to the parent of its last step. */
static cJSON *parent_of(cJSON *doc, const cJSON *path) {
  cJSON *o = doc;
  for (const cJSON *k = path->child; o && k && k->next; k = k->next)
    o = cJSON_IsNumber(k) ? cJSON_GetArrayItem(o, k->valueint) : cJSON_GetObjectItemCaseSensitive(o, k->valuestring);
  return o;
}

static const cJSON *last(const cJSON *path) {
  const cJSON *k = path->child;
  while (k && k->next) k = k->next;
  return k;
}

/* The body a case describes, as contract.test.mjs builds it (times are valid at NOW). */
static char *body_of(const cJSON *c, const char *valid, size_t *len) {
  const cJSON *raw = cJSON_GetObjectItemCaseSensitive(c, "raw");
  const cJSON *raw_repeat = cJSON_GetObjectItemCaseSensitive(c, "raw_repeat");
  if (raw) {
    *len = strlen(raw->valuestring);
    return strdup(raw->valuestring);
  }
  if (raw_repeat) {
    const char *unit = cJSON_GetArrayItem(raw_repeat, 0)->valuestring;
    int times = cJSON_GetArrayItem(raw_repeat, 1)->valueint;
    size_t u = strlen(unit);
    char *out = malloc(u * (size_t)times + 1);
    for (int i = 0; i < times; i++) memcpy(out + u * (size_t)i, unit, u);
    *len = u * (size_t)times;
    out[*len] = '\0';
    return out;
  }
  cJSON *doc = cJSON_Parse(valid);
  const cJSON *set = cJSON_GetObjectItemCaseSensitive(c, "set");
  for (const cJSON *pv = set ? set->child : NULL; pv; pv = pv->next) {
    const cJSON *path = cJSON_GetArrayItem(pv, 0);
    cJSON *value = cJSON_Duplicate(cJSON_GetArrayItem(pv, 1), 1);
    cJSON *o = parent_of(doc, path);
    const cJSON *k = last(path);
    if (cJSON_IsNumber(k))
      cJSON_ReplaceItemInArray(o, k->valueint, value);
    else if (cJSON_GetObjectItemCaseSensitive(o, k->valuestring))
      cJSON_ReplaceItemInObjectCaseSensitive(o, k->valuestring, value);
    else
      cJSON_AddItemToObject(o, k->valuestring, value);
  }
  const cJSON *del = cJSON_GetObjectItemCaseSensitive(c, "delete");
  for (const cJSON *path = del ? del->child : NULL; path; path = path->next) {
    cJSON *o = parent_of(doc, path);
    const cJSON *k = last(path);
    if (cJSON_IsNumber(k))
      cJSON_DeleteItemFromArray(o, k->valueint);
    else
      cJSON_DeleteItemFromObjectCaseSensitive(o, k->valuestring);
  }
  const cJSON *repeat = cJSON_GetObjectItemCaseSensitive(c, "repeat");
  if (repeat) {
    cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "events");
    cJSON *one = cJSON_Duplicate(cJSON_GetArrayItem(events, cJSON_GetArrayItem(repeat, 0)->valueint), 1);
    cJSON *many = cJSON_CreateArray();
    for (int i = 0; i < cJSON_GetArrayItem(repeat, 1)->valueint; i++)
      cJSON_AddItemToArray(many, cJSON_Duplicate(one, 1));
    cJSON_Delete(one);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "events", many);
  }
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(c, "bytes");
  for (const cJSON *m = bytes ? bytes->child : NULL; m; m = m->next) {
    char *at = strstr(text, m->string);
    CHECK(at != NULL);
    if (!at) continue;
    size_t hex = strlen(m->valuestring) / 2, mark = strlen(m->string), tlen = strlen(text);
    char *out = malloc(tlen - mark + hex + 1);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    for (size_t i = 0; i < hex; i++) {
      unsigned v;
      sscanf(m->valuestring + 2 * i, "%2x", &v);
      out[pre + i] = (char)v;
    }
    memcpy(out + pre + hex, at + mark, tlen - pre - mark + 1);
    free(text);
    text = out;
    *len = tlen - mark + hex;
  }
  if (!bytes) *len = strlen(text);
  return text;
}

static void invalid_batch_cases_are_refused_by_the_parser_naming_field_and_error(void) {
  char *valid = tu_read_case("ingest/valid-batch.json"), *cases_text = tu_read_case("ingest/invalid-batches.json");
  cJSON *cases = cJSON_Parse(cases_text);
  CHECK(cases != NULL);
  int ran = 0;
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(cases, "cases");
  for (const cJSON *c = list ? list->child : NULL; c; c = c->next, ran++) {
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(c, "field");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(c, "error");
    size_t len;
    char *body = body_of(c, valid, &len);
    lw_batch *b = (lw_batch *)1;
    lw_batch_error err;
    lw_status st = lw_batch_parse(body, len, NULL, NOW, &b, &err);
    if (st != LW_ERR_INVALID || b || strcmp(err.field, field->valuestring) != 0 ||
        (error && !strstr(err.message, error->valuestring))) {
      fprintf(stderr, "case %s: status %d field '%s' (expected '%s') message '%s'\n", name,
              (int)st, err.field, field->valuestring, err.message);
      check_failures++;
    }
    if (st == LW_OK) lw_batch_free(b);
    char why[512];
    if (!batch_equiv(body, len, NULL, NOW, why, sizeof why)) {
      fprintf(stderr, "case %s: the cJSON oracle answers otherwise: %s\n", name, why);
      check_failures++;
    }
    free(body);
  }
  CHECK(ran >= 50);
  const cJSON *accepted = cJSON_GetObjectItemCaseSensitive(cases, "valid");
  for (const cJSON *c = accepted ? accepted->child : NULL; c; c = c->next) {
    size_t len;
    char *body = body_of(c, valid, &len);
    lw_batch *b = NULL;
    lw_batch_error err;
    lw_status st = lw_batch_parse(body, len, NULL, NOW, &b, &err);
    if (st != LW_OK)
      fprintf(stderr, "valid case %s: %s: %s\n",
              cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, err.field, err.message);
    CHECK_INT(st, LW_OK);
    lw_batch_free(b);
    free(body);
  }
  cJSON_Delete(cases);
  free(cases_text);
  free(valid);
}

/* ---------------------------------------------------------------- allocation failures */

/* How many allocations cJSON makes to parse text. While one of those fails cJSON answers NULL
 * as it does for malformed JSON; lw_json_parse (its allocation hooks) tells the two apart, so
 * the readers still say out of memory, and the server answers 503, not a 400 that makes the
 * client drop a valid batch. (The batch reader builds no cJSON tree: a batch is one allocation,
 * plus one per 512 "x" pairs and one when it has more records than the batch holds itself.) */
static long parse_allocations(const char *text) {
  tu_fail_nth_allocation(1L << 40); /* count, never fail */
  cJSON *doc = cJSON_Parse(text);
  long n = tu_allocations();
  tu_allocation_failed(); /* disarm */
  cJSON_Delete(doc);
  return n;
}

static void parse_fails_cleanly_at_every_allocation(const char *name, long allocations) {
  char *text = tu_read_case(name);
  size_t len = strlen(text);
  long n;
  for (n = 1;; n++) {
    lw_batch *b = (lw_batch *)1;
    lw_batch_error err;
    tu_fail_nth_allocation(n);
    lw_status st = lw_batch_parse(text, len, NULL, NOW, &b, &err);
    if (!tu_allocation_failed()) {
      CHECK_INT(st, LW_OK);
      CHECK(b && b->n_events == 5);
      lw_batch_free(b);
      break;
    }
    CHECK(b == NULL);
    if (st != LW_ERR_NOMEM) fprintf(stderr, "allocation %ld: status %d\n", n, (int)st);
    CHECK_INT(st, LW_ERR_NOMEM);
    CHECK_STR(err.message, "out of memory");
  }
  CHECK_INT(n - 1, allocations); /* every one of them was made to fail */
  free(text);
}

static void batch_parse_fails_cleanly_at_every_allocation(void) {
  parse_fails_cleanly_at_every_allocation("ingest/valid-batch.json", 1); /* 5 records, no x */
}
static void v2_batch_parse_fails_cleanly_at_every_allocation(void) {
  parse_fails_cleanly_at_every_allocation("ingest/valid-batch-v2.json", 2); /* and the x pairs' pool */
}

static void v3_batch_parse_fails_cleanly_at_every_allocation(void) {
  parse_fails_cleanly_at_every_allocation("ingest/valid-batch-v3.json", 1); /* 5 records, attrs in them, no x */
}

static void forget_parse_fails_cleanly_at_every_allocation(void) {
  long in_cjson = parse_allocations(forget_body), n;
  for (n = 1;; n++) {
    lw_forget_request req;
    lw_batch_error err;
    tu_fail_nth_allocation(n);
    lw_status st = lw_forget_parse(forget_body, strlen(forget_body), &req, &err);
    if (!tu_allocation_failed()) {
      CHECK_INT(st, LW_OK);
      CHECK_STR(req.install, "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
      break;
    }
    CHECK(n <= in_cjson); /* it allocates nothing of its own */
    CHECK_INT(st, LW_ERR_NOMEM);
    CHECK_STR(err.message, "out of memory");
  }
  CHECK_INT(n, in_cjson + 1);
}

static void config_file_reader_fails_cleanly_at_every_allocation(void) {
  char path[] = "/tmp/lw-test-config-XXXXXX";
  int fd = mkstemp(path);
  static const char text[] =
      "{\"k_anonymity\": 3, \"log_level\": \"warn\", \"db\": \"x.db\",\n"
      " \"sites\": [{\"id\": \"acme\", \"write_key\": \"acme-pk-2f9c1e7a\",\n"
      "            \"origins\": [\"https://app.acme.example\", \"http://localhost:*\"]},\n"
      "           {\"id\": \"beta\", \"write_key\": \"beta-pk-00000000\", \"origins\": []}]}\n";
  CHECK_INT(write(fd, text, sizeof text - 1), (long long)(sizeof text - 1));
  close(fd);
  long n;
  for (n = 1;; n++) {
    lw_ingest_config cfg;
    char err[LW_ERRMSG_MAX] = "";
    lw_ingest_config_init(&cfg);
    tu_fail_nth_allocation(n);
    lw_status st = lw_ingest_config_load_file(&cfg, path, err, sizeof err);
    int failed = tu_allocation_failed();
    if (!failed) {
      CHECK_INT(st, LW_OK);
      CHECK_INT(cfg.n_sites, 2);
      CHECK_INT(cfg.k_anonymity, 3);
      CHECK_STR(cfg.sites[0].origins[1], "http://localhost:*");
      lw_ingest_config_clear(&cfg);
      break;
    }
    /* the reader's own allocations and cJSON's alike: out of memory, a message, no leak */
    if (st != LW_ERR_NOMEM) fprintf(stderr, "allocation %ld: status %d (%s)\n", n, (int)st, err);
    CHECK_INT(st, LW_ERR_NOMEM);
    CHECK_CONTAINS(err, "out of memory");
    lw_ingest_config_clear(&cfg);
  }
  CHECK(n > 5);
  unlink(path);
}

int main(void) {
  tu_failalloc_begin();
  lw_json_install_hooks(); /* over failalloc's: json.c's own malloc calls are the wrapped ones */
  RUN(every_prefix_of_a_valid_batch_is_refused_and_the_whole_accepted);
  RUN(every_prefix_of_a_forget_request_is_refused_and_the_whole_accepted);
  RUN(invalid_batch_cases_are_refused_by_the_parser_naming_field_and_error);
  RUN(batch_parse_fails_cleanly_at_every_allocation);
  RUN(v2_batch_parse_fails_cleanly_at_every_allocation);
  RUN(every_prefix_of_a_v2_batch_is_refused_and_the_whole_accepted);
  RUN(v3_batch_parse_fails_cleanly_at_every_allocation);
  RUN(every_prefix_of_a_v3_batch_is_refused_and_the_whole_accepted);
  RUN(forget_parse_fails_cleanly_at_every_allocation);
  RUN(config_file_reader_fails_cleanly_at_every_allocation);
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
