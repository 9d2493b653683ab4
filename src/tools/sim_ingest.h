/* sim_ingest.h: an in-process loopwise-ingest for the simulator (internal to src/tools). */
#ifndef LW_TOOLS_SIM_INGEST_H
#define LW_TOOLS_SIM_INGEST_H

#include <stddef.h>

#include "loopwise/common.h"

typedef struct lw_sim_ingest lw_sim_ingest;
/* Start the server on a free loopback port storing into db_path (site "default", write key
 * "demo-site-key"). */
lw_status lw_sim_ingest_start(const char *db_path, lw_sim_ingest **out, char *err, size_t errlen);
/* POST one wire batch; LW_OK only on 200 (the batch is on disk). */
lw_status lw_sim_ingest_post(lw_sim_ingest *s, const char *body, size_t len, char *err, size_t errlen);
void lw_sim_ingest_stop(lw_sim_ingest *s);

#endif
