/* testutil.h: loading files and building engines for the C unit tests. */
#ifndef LW_TEST_UTIL_H
#define LW_TEST_UTIL_H

#include <stdlib.h>

#include "loopwise/config.h"
#include "loopwise/engine.h"

#define DAY 86400000LL
#define HOUR 3600000LL
/* 2026-01-05 12:00 UTC, a Monday: the tests' day zero. */
#define T0 1767614400000LL

/* Read a whole file (NUL-terminated); NULL on error. The caller frees. */
char *tu_read_file(const char *path, size_t *len);
/* Path of a file under the source tree (LW_SOURCE_DIR is set by CMake). */
const char *tu_path(const char *rel);
/* A shared case file under tests/cases ("ingest/valid-batch.json"), NUL-terminated; NULL if
 * missing. The caller frees. */
char *tu_read_case(const char *rel);
/* Delete an SQLite database file with its -wal and -shm files. */
void tu_remove_db(const char *path);
/* Parse a config text or abort the test program with its message. */
lw_config tu_config(const char *json);
/* The default config from models/referral.json. */
lw_config tu_default_config(void);
/* What an edge does to send: a fresh batch id from the engine, the outbox's oldest records
 * wrapped by lw_wire_take_batch. */
lw_status tu_take_batch(lw_engine *e, const char *write_key, int64_t now_ms, size_t max_bytes, char *buf,
                        size_t cap, size_t *len, size_t *n_events);

#endif
