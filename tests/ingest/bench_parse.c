/* bench_parse.c: not a test: the batch reader's cost on the benchmark's request body (the one
 * tests/bench/ingest.lua sends: 5 records shaped like valid-batch.json), for counting
 * instructions under callgrind (tests/bench/parse.sh), against the cJSON-tree validator it
 * replaced (batch_cjson.c).
 *   bench_parse new|old N   parses the body N times with one reader */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_cjson.h"
#include "loopwise/json.h"

static const char body[] =
    "{\"v\":1,\"batch_id\":\"wrk-1a2b3c4d-1-12345\",\"write_key\":\"demo-site-key\",\"sent_at\":1764100000000,\"events\":["
    "{\"kind\":\"decision\",\"t\":1764099990000,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"credit_10\",\"p\":0.75,\"mode\":\"rules\",\"reason\":\"shown: milestone project_completed\\u00d73\"},"
    "{\"kind\":\"impression\",\"t\":1764099990500,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"credit_10\"},"
    "{\"kind\":\"copy\",\"t\":1764099995000,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"credit_10\",\"code\":\"K7QX2M9PLA\"},"
    "{\"kind\":\"decision\",\"t\":1764099996000,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"99aa00bb11cc22dd\",\"action\":\"none\",\"p\":1,\"mode\":\"rules\",\"reason\":\"suppressed: frequency cap 1/1d\"},"
    "{\"kind\":\"dismiss\",\"t\":1764099999000,\"install\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\",\"decision\":\"a1b2c3d4e5f60718\",\"action\":\"credit_10\"}]}";

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "new") != 0 && strcmp(argv[1], "old") != 0)) {
    fprintf(stderr, "usage: bench_parse new|old N\n");
    return 2;
  }
  int old = strcmp(argv[1], "old") == 0;
  long n = atol(argv[2]);
  lw_json_install_hooks();
  for (long i = 0; i < n; i++) {
    lw_batch *b = NULL;
    lw_batch_error err;
    lw_status st = old ? lw_batch_parse_cjson(body, sizeof body - 1, NULL, 1764100000000LL, &b, &err)
                       : lw_batch_parse(body, sizeof body - 1, NULL, 1764100000000LL, &b, &err);
    if (st != LW_OK || b->n_events != 5) {
      fprintf(stderr, "bench_parse: %s: %s\n", err.field, err.message);
      return 1;
    }
    if (old) lw_batch_free_cjson(b);
    else lw_batch_free(b);
  }
  return 0;
}
