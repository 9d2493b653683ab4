/* batch_cjson.h: the cJSON-tree batch validator, the differential tests' oracle (batch_cjson.c). */
#ifndef LW_TEST_BATCH_CJSON_H
#define LW_TEST_BATCH_CJSON_H

#include "loopwise/batch.h"

/* lw_batch_parse as it was: same contract; free the result with lw_batch_free_cjson. */
lw_status lw_batch_parse_cjson(const char *body, size_t len, const lw_batch_limits *limits,
                               int64_t now_ms, lw_batch **out, lw_batch_error *err);
void lw_batch_free_cjson(lw_batch *batch);

#endif
