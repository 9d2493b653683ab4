/* rollup_sqlite.h: the writer-kept rollups of the SQLite store (schema 9), internal to
 * store_sqlite.c. README "The store" describes the tables.
 *
 * GET /v1/stats used to walk every event of a site (COUNT(DISTINCT install) per variant,
 * segment and code: 4 s with 200,000 codes). The writer now keeps, in the same transaction as
 * the events:
 *   rollup_site(site, outcomes, batches)
 *   rollup_keys(site, dim, key, installs, n, n_<kind>...)   dim 0 action, 1 segment, 2 code
 *   rollup_installs(site, dim, key, install, n)             events per install under a key,
 *                                                           so a distinct-install count
 *                                                           survives deletions exactly
 *   rollup_days(site, day, action, segment, mode, decisions, prompts)  the console's first two
 *                                                           funnel stages, per UTC day (schema
 *                                                           12: also per fairness segments, fair)
 * and every deletion of events (forget, retention) subtracts what it deletes before deleting
 * it, so the rollups are always what a walk of the stored events would give. */
#ifndef LW_INGEST_ROLLUP_SQLITE_H
#define LW_INGEST_ROLLUP_SQLITE_H

#include <sqlite3.h>
#include <stdint.h>

#include "loopwise/audit.h"
#include "loopwise/batch.h"
#include "loopwise/store.h"
#include "grow.h"


/* The schema 9 tables (created with the store, or by the migration). */
extern const char lw_sq_rollup_tables[];
/* Schema 11's: the console's funnel per shared decision row and per (site, day, action,
 * segment, mode):
 *   rollup_dec(site, decision, id, day, action, segment, mode, shares, landed, converted, kept,
 *              landings, conversions, retained, value, revenue)  what each shared decision row
 *                                                           (t >= 0) brings to the report
 *   rollup_funnel(site, day, action, segment, mode, n, shares, ... retained)  their sums
 * (the console's stages and totals: console.c add_decision). This is 11's shape, which step 11
 * creates; step 12 (lw_sq_rollup_migrate_12) rebuilds rollup_days, rollup_dec and rollup_funnel
 * with the decision's channel and fairness segments (fair) and adds rollup_fairness. */
extern const char lw_sq_funnel_tables[];
#define LW_SQ_FUNNEL_STMTS 22

/* The fairness spec the rollups are kept for (schema 12: the table rollup_fairness): the
 * segments' names ("attribute^value", loopwise/audit.h) and hashes. A decision's segments are
 * the bitmask lw_audit_segments_of gives (the rollups' `fair` column); SQL reaches it through the
 * function lw_fair(segment, x) lw_sq_rollup_functions registers. */
typedef struct {
  lw_fairness_spec spec;
  char names[LW_FAIRNESS_VALUES][LW_SEGMENT_NAME_LEN + 1];
  uint32_t hashes[LW_FAIRNESS_VALUES];
} lw_sq_fair;

/* The writer's prepared statements. */
typedef struct {
  sqlite3_stmt *up_install, *del_install, *up_key, *del_key, *up_site, *up_day;
  sqlite3_stmt *fn[LW_SQ_FUNNEL_STMTS]; /* the console's funnel (schema 11) */
  struct lw_sq_funnel_delta *fd;        /* its rows' changes, until the settle writes them */
  size_t n_fd, fd_cap;
  /* what the write transaction's batches add, until lw_sq_rollup_flush */
  struct lw_sq_rollup_entry *buf;
  size_t n_buf, buf_cap;
  struct lw_sq_rollup_day *days;
  size_t n_days, days_cap;
  struct lw_sq_rollup_site *sites;
  size_t n_sites, sites_cap;
  lw_sq_fair fair; /* schema 12: the fairness spec in force (the writer's connection's lw_fair) */
} lw_sq_rollup;

/* A stored x (schema 5's pairs) decoded: 0, or -1 when the blob is not whole pairs or holds more
 * than the wire allows (store_sqlite.c). */
int lw_sq_x_decode(const uint8_t *p, size_t len, lw_feature *x, int *n);

/* Register lw_fair(segment, x) on db, computing with ru->fair (which must outlive db's use of
 * it): before the migration and the statements that use it. */
lw_status lw_sq_rollup_functions(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen);
/* Schema 12 (inside the migration, after 11's tables exist; ru->fair empty, as rollup_fairness
 * starts): rollup_days, rollup_dec and rollup_funnel rebuilt with the decision's channel and
 * fairness segments in their keys, from the stored events and referee reports. */
lw_status lw_sq_rollup_migrate_12(sqlite3 *db, char *err, size_t errlen);
/* Read rollup_fairness into ru->fair (after the migration). */
lw_status lw_sq_rollup_load_fairness(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen);
/* Keep the fairness rollups for spec: nothing when it is the one in force, else (in the
 * caller's write transaction) every decision's segments recomputed. */
lw_status lw_sq_rollup_set_fairness(lw_sq_rollup *ru, sqlite3 *db, const lw_fairness_spec *spec, int *changed,
                                    char *err, size_t errlen);
/* lw_store_fairness and lw_store_funnel_channels from the rollups (one read transaction is the
 * caller's). */
lw_status lw_sq_rollup_fairness(sqlite3 *db, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                                char *err, size_t errlen);
lw_status lw_sq_rollup_channels(sqlite3 *db, const char *site, lw_funnel_channel **rows, size_t *n_rows, char *err,
                                size_t errlen);

lw_status lw_sq_rollup_prepare(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen);
void lw_sq_rollup_finalize(lw_sq_rollup *ru);
void lw_sq_rollup_reset(lw_sq_rollup *ru);

/* Add one stored batch: its events[0..n) (those kept; events[i] is the row first_id + i) on site, copied (written by the next
 * lw_sq_rollup_flush, or at once when the buffers are full). Inside the writer's transaction. */
lw_status lw_sq_rollup_add(lw_sq_rollup *ru, sqlite3 *db, const char *site, const lw_event *events,
                           size_t n, int64_t first_id, char *err, size_t errlen);
/* Write what the transaction's batches added: before its COMMIT. lw_sq_rollup_reset drops it
 * (after a ROLLBACK). */
lw_status lw_sq_rollup_flush(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen);

/* Subtract the events that `where` selects (an SQL condition on the events table, with ?1 and
 * ?2 bound to a and b when a is set, else ?1 to i), before they are deleted; with batches_where
 * (same binding, on the batches table) the batches about to be deleted too. */
lw_status lw_sq_rollup_subtract(lw_sq_rollup *ru, sqlite3 *db, const char *where, const char *batches_where,
                                const char *a, const char *b, int64_t i, char *err, size_t errlen);

/* The console's funnel: mark the decisions of site that an event may change (decision, or
 * with code the decisions whose shares carry it; report: those of a referee report's code, by
 * its id), then lw_sq_rollup_settle recomputes the marked ones (lw_sq_rollup_flush and
 * lw_sq_rollup_subtract's marks included: call it after the deletion, before COMMIT). */
lw_status lw_sq_rollup_mark(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision,
                            const char *code, char *err, size_t errlen);
lw_status lw_sq_rollup_mark_report(lw_sq_rollup *ru, sqlite3 *db, int64_t report, char *err, size_t errlen);
lw_status lw_sq_rollup_settle(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen);
/* Schema 11's tables, empty (10 to 11: step 12 fills them, in the same migration). */
lw_status lw_sq_funnel_backfill(sqlite3 *db, char *err, size_t errlen);
/* The console's converted decision rows in decision order (lw_store_funnel_values). */
lw_status lw_sq_rollup_values(sqlite3 *db, const char *site, lw_funnel_value **rows, size_t *n_rows, char *err,
                              size_t errlen);

/* Fill a migrated store's rollups from its events (schema 8 to 9, inside the migration). */
lw_status lw_sq_rollup_backfill(sqlite3 *db, char *err, size_t errlen);

/* GET /v1/stats from the rollups (one read transaction is the caller's). */
lw_status lw_sq_rollup_stats(sqlite3 *db, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                             char *err, size_t errlen);

/* The console's funnel days of site (lw_store_funnel_days). */
lw_status lw_sq_rollup_days(sqlite3 *db, const char *site, lw_funnel_day **rows, size_t *n_rows, char *err,
                            size_t errlen);

#endif
