/* sim_ingest.h: an in-process loopwise-ingest for the simulator (internal to src/tools). */
#ifndef LW_TOOLS_SIM_INGEST_H
#define LW_TOOLS_SIM_INGEST_H

#include <stddef.h>

#include "loopwise/common.h"

#include <stdint.h>

/* The site's secret key, with which the simulated host's backend reports referees. */
#define LW_SIM_SECRET_KEY "sim-host-secret-key-0001"

typedef struct lw_sim_ingest lw_sim_ingest;
/* Start the server on a free loopback port storing into db_path (site "default", write key
 * "demo-site-key", secret key LW_SIM_SECRET_KEY), its receive times from lw_sim_ingest_clock. */
lw_status lw_sim_ingest_start(const char *db_path, lw_sim_ingest **out, char *err, size_t errlen);
/* POST one wire batch; LW_OK only on 200 (the batch is on disk). */
lw_status lw_sim_ingest_post(lw_sim_ingest *s, const char *body, size_t len, char *err, size_t errlen);
/* POST one referee report (JSON) to /v1/referees with the secret key; LW_OK only on 200. */
lw_status lw_sim_ingest_referee(lw_sim_ingest *s, const char *body, size_t len, char *err, size_t errlen);
/* The server's clock from now on: the receive time of every batch and report it stores. */
void lw_sim_ingest_clock(lw_sim_ingest *s, int64_t now_ms);
void lw_sim_ingest_stop(lw_sim_ingest *s);

#endif
