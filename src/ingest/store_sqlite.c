/* store_sqlite.c: the SQLite backend of lw_store.
 *
 * Durability: WAL mode with synchronous=FULL, so COMMIT returns only after the WAL is fsynced.
 * The server's writer thread puts many batches in one transaction (group commit), so many
 * requests share that one fsync.
 *
 * Two connections: the writer's (used by one thread at a time, see store.h) and a reader's
 * guarded by a mutex, so /v1/stats never waits for a commit and never blocks one (WAL). */
#include "loopwise/store.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Events go in with multi-row INSERTs of up to this many rows: one statement run per chunk
 * instead of per event, which is most of what a row costs the writer besides the b-trees. */
#define EVENT_ROWS_MAX 8
#define EVENT_COLS 15

typedef struct {
  lw_store base;
  sqlite3 *w;            /* writer connection */
  sqlite3 *r;            /* reader connection, guarded by rlock */
  pthread_mutex_t rlock;
  sqlite3_stmt *ins_batch;
  sqlite3_stmt *ins_events[EVENT_ROWS_MAX + 1]; /* [k]: insert k events in one statement */
  atomic_uint fail_step; /* test seam (lw_store_sqlite_fail_step): 0, or which step fails */
  unsigned steps;        /* statements run in the current write transaction (writer only) */
  uint8_t xbuf[EVENT_ROWS_MAX][LW_X_PAIRS * 8];  /* the x blobs of one statement (writer only) */
} sqlite_store;

/* ---------------------------------------------------------------- schema */

/* Version 1 was the first slice's single-site layout:
 *   batches(batch_id TEXT PRIMARY KEY, received_at, n_events)
 *   events(id, batch_id, kind, t, install, decision, action, p, mode, reason, segment, model,
 *          x, code)
 * Version 2 added sites (a batch_id is unique per site), the client's sent_at, and indexes on
 * events(t) and batches(received_at) for retention.
 * Version 3 drops those two indexes (a third of the writer's work per batch) and numbers an
 * event from its batch: events.id = batches.id * EVENT_ID_STRIDE + position. The events of
 * the oldest batches are then the lowest rowids, and retention (now by receive time, which no
 * client clock can skew) deletes rowid ranges.
 * Version 4 adds a partial index on the events that carry a referral code (share, copy,
 * landing, conversion: a few in a hundred), for the referral counts and the attribution list;
 * decisions and impressions, most of the rows, cost the writer nothing more.
 * Version 5 stores a decision's x as what the validator checked, once: a BLOB of 8-byte pairs,
 * u32 hash then i32 fixed-point value (× 256, lw_fx), both little-endian, instead of JSON text
 * with %.17g numbers that every reader parsed again. (Migrated files keep the column's
 * declared TEXT type; its affinity leaves BLOBs as they are.) */
#define EVENT_ID_STRIDE 1024 /* more than the 500 events a batch may hold */
#define SQL_NUM_(x) #x
#define SQL_NUM(x) SQL_NUM_(x)

#define BATCHES_TABLE                                                                      \
  "CREATE TABLE batches("                                                                  \
  "  id INTEGER PRIMARY KEY,"                                                              \
  "  site TEXT NOT NULL,"                                                                  \
  "  batch_id TEXT NOT NULL,"                                                              \
  "  received_at INTEGER NOT NULL,"                                                        \
  "  sent_at INTEGER NOT NULL,"                                                            \
  "  n_events INTEGER NOT NULL,"                                                           \
  "  UNIQUE(site, batch_id));"
#define EVENTS_TABLE                                                                       \
  "CREATE TABLE events("                                                                   \
  "  id INTEGER PRIMARY KEY,"                                                              \
  "  batch INTEGER NOT NULL,"                                                              \
  "  site TEXT NOT NULL,"                                                                  \
  "  kind TEXT NOT NULL,"                                                                  \
  "  t INTEGER NOT NULL,"                                                                  \
  "  install TEXT NOT NULL,"                                                               \
  "  decision TEXT, action TEXT, p REAL, mode TEXT, reason TEXT,"                          \
  "  segment TEXT, model TEXT, x BLOB, code TEXT);"                                        \
  "CREATE INDEX events_site_install ON events(site, install);"

static const char *const schema_v2 =
    BATCHES_TABLE EVENTS_TABLE
    "CREATE INDEX events_t ON events(t);"
    "CREATE INDEX batches_received ON batches(received_at);";

#define CODES_INDEX                                                                        \
  "CREATE INDEX events_code ON events(site, code, kind, install, t) WHERE code IS NOT NULL;"

static const char *const schema_v5 = BATCHES_TABLE EVENTS_TABLE CODES_INDEX;

static const char *const migrate_v1_v2 =
    "ALTER TABLE batches RENAME TO batches_v1;"
    "ALTER TABLE events RENAME TO events_v1;"
    "%s"
    "INSERT INTO batches(site, batch_id, received_at, sent_at, n_events)"
    "  SELECT 'default', batch_id, received_at, received_at, n_events FROM batches_v1;"
    "INSERT INTO events(batch, site, kind, t, install, decision, action, p, mode, reason,"
    "                   segment, model, x, code)"
    "  SELECT b.id, 'default', e.kind, e.t, e.install, e.decision, e.action, e.p, e.mode,"
    "         e.reason, e.segment, e.model, e.x, e.code"
    "  FROM events_v1 e JOIN batches b ON b.site = 'default' AND b.batch_id = e.batch_id"
    "  ORDER BY e.id;"
    "DROP TABLE events_v1;"
    "DROP TABLE batches_v1;";

static const char *const migrate_v2_v3 =
    "DROP INDEX events_t;"
    "DROP INDEX batches_received;"
    "DROP INDEX events_site_install;"
    "ALTER TABLE events RENAME TO events_v2;"
    EVENTS_TABLE
    "INSERT INTO events(id, batch, site, kind, t, install, decision, action, p, mode, reason,"
    "                   segment, model, x, code)"
    "  SELECT batch * " SQL_NUM(EVENT_ID_STRIDE) " + row_number() OVER (PARTITION BY batch ORDER BY id) - 1,"
    "         batch, site, kind, t, install, decision, action, p, mode, reason, segment,"
    "         model, x, code"
    "  FROM events_v2 ORDER BY batch, id;"
    "DROP TABLE events_v2;";

static lw_status sql_error(sqlite3 *db, const char *what, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
  return LW_ERR_IO;
}

static lw_status exec(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return LW_ERR_IO;
  }
  return LW_OK;
}

static lw_status user_version(sqlite3 *db, int *out, char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return sql_error(db, "reading the schema version", err, errlen);
  *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  return LW_OK;
}

/* ---- x as stored (schema 5) ------------------------------------------------------ */

static size_t x_encode(const lw_feature *x, int n, uint8_t *out) {
  for (int i = 0; i < n; i++) {
    uint32_t h = x[i].hash, q = (uint32_t)x[i].q;
    for (int k = 0; k < 4; k++) out[8 * i + k] = (uint8_t)(h >> (8 * k)), out[8 * i + 4 + k] = (uint8_t)(q >> (8 * k));
  }
  return (size_t)n * 8;
}

/* 0 on success, -1 when the blob is not whole pairs or holds more than the wire allows. */
static int x_decode(const uint8_t *p, size_t len, lw_feature *x, int *n) {
  if (len % 8 || len / 8 > LW_X_PAIRS) return -1;
  *n = (int)(len / 8);
  for (int i = 0; i < *n; i++, p += 8) {
    x[i].hash = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    x[i].q = (int32_t)((uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24);
  }
  return 0;
}

/* lw_x_blob(text): schema 4's JSON x, [[hash, value], ...] as the validator wrote it, to
 * schema 5's pairs, with the value converted as lw_batch_parse now converts it (lw_fx), so a
 * migrated decision reads back exactly as the trainer read it before. Anything else raises an
 * error, and the migration rolls back: the validator wrote every row, so that is damage. */
static void sql_x_blob(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  cJSON *j = cJSON_Parse((const char *)sqlite3_value_text(argv[0])), *it;
  lw_feature x[LW_X_PAIRS];
  int n = 0, ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) <= LW_X_PAIRS;
  cJSON *pairs = ok ? j : NULL;
  cJSON_ArrayForEach(it, pairs) {
    cJSON *h = cJSON_GetArrayItem(it, 0), *v = cJSON_GetArrayItem(it, 1);
    if (cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(h) || !cJSON_IsNumber(v) || !(h->valuedouble >= 0) ||
        h->valuedouble >= 4294967296.0 || !isfinite(v->valuedouble)) {
      ok = 0;
      break;
    }
    x[n].hash = (uint32_t)h->valuedouble;
    x[n++].q = lw_fx(v->valuedouble);
  }
  cJSON_Delete(j);
  if (!ok) {
    sqlite3_result_error(ctx, "an event's x is not a JSON array of at most 256 [hash, value] pairs", -1);
    return;
  }
  uint8_t buf[LW_X_PAIRS * 8];
  sqlite3_result_blob(ctx, buf, (int)x_encode(x, n, buf), SQLITE_TRANSIENT);
}

/* Schema 4 to 5 (inside migrate's transaction): every stored x from JSON text to pairs. */
static lw_status migrate_v4_v5(sqlite3 *db, char *err, size_t errlen) {
  if (sqlite3_create_function(db, "lw_x_blob", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_x_blob, NULL,
                              NULL) != SQLITE_OK)
    return sql_error(db, "migrating schema 4 to 5", err, errlen);
  lw_status st = exec(db, "UPDATE events SET x = lw_x_blob(x) WHERE x IS NOT NULL", "migrating schema 4 to 5", err, errlen);
  sqlite3_create_function(db, "lw_x_blob", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL);
  return st;
}

/* Bring the schema to LW_STORE_SCHEMA_VERSION in one transaction, so a crash mid-migration
 * leaves the old version intact. */
static lw_status migrate(sqlite3 *db, char *err, size_t errlen) {
  int version;
  lw_status st = exec(db, "BEGIN IMMEDIATE", "starting the migration", err, errlen);
  if (st != LW_OK) return st;
  if ((st = user_version(db, &version, err, errlen)) != LW_OK) goto fail;
  if (version > LW_STORE_SCHEMA_VERSION) {
    snprintf(err, errlen,
             "database schema version %d is newer than this build's %d: refusing to touch it",
             version, LW_STORE_SCHEMA_VERSION);
    st = LW_ERR_VERSION;
    goto fail;
  }
  if (version == 0) {
    /* A new file, or one with unrelated tables: only create into an empty database. */
    sqlite3_stmt *q;
    int tables = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL) == SQLITE_OK) {
      if (sqlite3_step(q) == SQLITE_ROW) tables = sqlite3_column_int(q, 0);
      sqlite3_finalize(q);
    }
    if (tables) {
      snprintf(err, errlen, "database has tables but no Loopwise schema version");
      st = LW_ERR_VERSION;
      goto fail;
    }
    if ((st = exec(db, schema_v5, "creating the schema", err, errlen)) != LW_OK) goto fail;
  } else {
    if (version == 1) {
      char sql[4096];
      snprintf(sql, sizeof sql, migrate_v1_v2, schema_v2);
      if ((st = exec(db, sql, "migrating schema 1 to 2", err, errlen)) != LW_OK) goto fail;
    }
    if (version <= 2 &&
        (st = exec(db, migrate_v2_v3, "migrating schema 2 to 3", err, errlen)) != LW_OK)
      goto fail;
    if (version <= 3 &&
        (st = exec(db, CODES_INDEX, "migrating schema 3 to 4", err, errlen)) != LW_OK)
      goto fail;
    if (version <= 4 && (st = migrate_v4_v5(db, err, errlen)) != LW_OK) goto fail;
  }
  if (version != LW_STORE_SCHEMA_VERSION) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", LW_STORE_SCHEMA_VERSION);
    if ((st = exec(db, sql, "setting the schema version", err, errlen)) != LW_OK) goto fail;
  }
  return exec(db, "COMMIT", "committing the migration", err, errlen);
fail:
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return st;
}

/* ---------------------------------------------------------------- writes */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
  if (s && s[0])
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* The test seam: counts the statements of one write transaction and fails the armed one, as
 * if SQLite had refused it, so the failure path below runs with real rows in the
 * transaction. */
static lw_status step_fault(sqlite_store *s, const char *what, char *err, size_t errlen) {
  unsigned at = ++s->steps;
  unsigned armed = atomic_load(&s->fail_step);
  if (!armed || at != armed || !atomic_compare_exchange_strong(&s->fail_step, &armed, 0))
    return LW_OK;
  snprintf(err, errlen, "%s: injected fault at statement %u", what, at);
  return LW_ERR_IO;
}

void lw_store_sqlite_fail_step(lw_store *base, unsigned nth) {
  atomic_store(&((sqlite_store *)base)->fail_step, nth);
}

static lw_status write_one(sqlite_store *s, lw_store_item *it, char *err, size_t errlen) {
  const lw_batch *b = it->batch;
  sqlite3_stmt *st = s->ins_batch;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, it->site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, b->batch_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, it->received_ms);
  sqlite3_bind_int64(st, 4, b->sent_at);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)b->n_events);
  lw_status fault = step_fault(s, "storing a batch", err, errlen);
  if (fault != LW_OK) return fault;
  if (sqlite3_step(st) != SQLITE_DONE) return sql_error(s->w, "storing a batch", err, errlen);
  if (sqlite3_changes(s->w) == 0) {
    it->duplicate = 1;
    it->stored = 0;
    return LW_OK;
  }
  sqlite3_int64 batch_row = sqlite3_last_insert_rowid(s->w);
  for (size_t at = 0; at < b->n_events;) {
    size_t k = b->n_events - at < EVENT_ROWS_MAX ? b->n_events - at : EVENT_ROWS_MAX;
    st = s->ins_events[k];
    sqlite3_reset(st);
    for (size_t r = 0; r < k; r++) {
      const lw_event *e = &b->events[at + r];
      int c = (int)(r * EVENT_COLS);
      sqlite3_bind_int64(st, c + 15, batch_row * EVENT_ID_STRIDE + (sqlite3_int64)(at + r));
      sqlite3_bind_int64(st, c + 1, batch_row);
      sqlite3_bind_text(st, c + 2, it->site, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, c + 3, lw_kind_name(e->kind), -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, c + 4, e->t);
      sqlite3_bind_text(st, c + 5, e->install, -1, SQLITE_STATIC);
      bind_text_or_null(st, c + 6, e->decision);
      bind_text_or_null(st, c + 7, e->action);
      if (e->has_p)
        sqlite3_bind_double(st, c + 8, e->p);
      else
        sqlite3_bind_null(st, c + 8);
      bind_text_or_null(st, c + 9, e->mode);
      if (e->kind == LW_KIND_DECISION)
        sqlite3_bind_text(st, c + 10, e->reason, -1, SQLITE_STATIC); /* "" is a valid reason */
      else
        sqlite3_bind_null(st, c + 10);
      bind_text_or_null(st, c + 11, e->segment);
      bind_text_or_null(st, c + 12, e->model);
      if (e->has_x)
        sqlite3_bind_blob(st, c + 13, s->xbuf[r], (int)x_encode(e->x, e->n_x, s->xbuf[r]), SQLITE_STATIC);
      else
        sqlite3_bind_null(st, c + 13);
      bind_text_or_null(st, c + 14, e->code);
    }
    if ((fault = step_fault(s, "storing events", err, errlen)) != LW_OK) return fault;
    if (sqlite3_step(st) != SQLITE_DONE) return sql_error(s->w, "storing events", err, errlen);
    at += k;
  }
  it->duplicate = 0;
  it->stored = b->n_events;
  return LW_OK;
}

static lw_status sq_write(lw_store *base, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  s->steps = 0;
  lw_status st = step_fault(s, "starting a write", err, errlen);
  if (st == LW_OK) st = exec(s->w, "BEGIN IMMEDIATE", "starting a write", err, errlen);
  for (size_t i = 0; st == LW_OK && i < n; i++) st = write_one(s, items[i], err, errlen);
  if (st == LW_OK) st = step_fault(s, "committing", err, errlen);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing", err, errlen);
  sqlite3_reset(s->ins_batch);
  for (int k = 1; k <= EVENT_ROWS_MAX; k++) sqlite3_reset(s->ins_events[k]);
  if (st != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++) items[i]->stored = 0, items[i]->duplicate = 0;
  }
  return st;
}

static lw_status delete_where(sqlite_store *s, const char *sql, const char *a, int64_t b,
                              int64_t *deleted, char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->w, sql, -1, &st, NULL) != SQLITE_OK)
    return sql_error(s->w, "preparing a delete", err, errlen);
  if (a) sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, a ? 2 : 1, b);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "deleting", err, errlen);
  if (deleted) *deleted += sqlite3_changes(s->w);
  return LW_OK;
}

static lw_status sq_forget(lw_store *base, const char *site, const char *install,
                           int64_t *deleted, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *deleted = 0;
  if (sqlite3_prepare_v2(s->w, "DELETE FROM events WHERE site = ?1 AND install = ?2", -1, &st,
                         NULL) != SQLITE_OK)
    return sql_error(s->w, "preparing a delete", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, install, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st); /* autocommit: one durable transaction */
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "deleting an install", err, errlen);
  *deleted = sqlite3_changes(s->w);
  return LW_OK;
}

/* Retention by receive time. Batches are numbered in commit order, so the expired ones are a
 * prefix of the table: walk it from the oldest until a batch is recent enough, then delete that
 * prefix and its events, which are a rowid range (see EVENT_ID_STRIDE). No index is needed,
 * and the walk touches only rows about to be deleted. */
static lw_status sq_purge(lw_store *base, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *deleted = 0;
  lw_status st = exec(s->w, "BEGIN IMMEDIATE", "starting a purge", err, errlen);
  if (st != LW_OK) return st;
  sqlite3_stmt *q;
  sqlite3_int64 last = -1;
  if (sqlite3_prepare_v2(s->w, "SELECT id, received_at FROM batches ORDER BY id", -1, &q, NULL) !=
      SQLITE_OK) {
    st = sql_error(s->w, "preparing a purge", err, errlen);
  } else {
    while (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 1) < before_ms)
      last = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
  }
  if (st == LW_OK && last >= 0) {
    st = delete_where(s, "DELETE FROM events WHERE id < ?1", NULL,
                      (last + 1) * EVENT_ID_STRIDE, deleted, err, errlen);
    if (st == LW_OK)
      st = delete_where(s, "DELETE FROM batches WHERE id <= ?1", NULL, last, NULL, err, errlen);
  }
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing a purge", err, errlen);
  if (st != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    *deleted = 0;
  }
  return st;
}

/* ---------------------------------------------------------------- reads */


static lw_status count(sqlite3 *db, const char *sql, const char *site, int64_t *out,
                       char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return sql_error(db, "preparing stats", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? LW_OK : sql_error(db, "reading stats", err, errlen);
}

/* One SUM(kind = '<wire name>') column per LW_KINDS row, in lw_kind order, so column 2 + k of
 * a breakdown is lw_stats_row.counts[k] and a new kind needs no edit here. Wire names are
 * [a-z_] (wire.h), so pasting them into SQL quotes nothing. */
#define SQL_KIND_SUM(e, name, stat, flags, rules) ", SUM(kind = '" name "')"
static const char kind_sums[] = LW_KINDS(SQL_KIND_SUM);
#undef SQL_KIND_SUM

/* One breakdown: a row per distinct value of column col (a fixed name, never input). */
static lw_status breakdown(sqlite3 *db, const char *col, const char *site, lw_stats_row **rows,
                           size_t *n_rows, char *err, size_t errlen) {
  char sql[sizeof kind_sums + 256];
  int len = snprintf(sql, sizeof sql,
                     "SELECT %s, COUNT(DISTINCT install)%s"
                     " FROM events WHERE site = ?1 AND %s IS NOT NULL GROUP BY %s ORDER BY %s",
                     col, kind_sums, col, col, col);
  if (len < 0 || (size_t)len >= sizeof sql) {
    snprintf(err, errlen, "stats query for %s too long", col);
    return LW_ERR_INVALID;
  }
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return sql_error(db, "preparing stats", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  size_t n = 0, cap = 0;
  lw_stats_row *out = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      lw_stats_row *grown = realloc(out, ncap * sizeof *out);
      if (!grown) {
        free(out);
        sqlite3_finalize(st);
        snprintf(err, errlen, "out of memory reading stats");
        return LW_ERR_NOMEM;
      }
      out = grown;
      cap = ncap;
    }
    lw_stats_row *row = &out[n++];
    memset(row, 0, sizeof *row);
    const unsigned char *key = sqlite3_column_text(st, 0);
    snprintf(row->key, sizeof row->key, "%s", key ? (const char *)key : "");
    row->installs = sqlite3_column_int64(st, 1);
    for (int k = 0; k < LW_KIND_COUNT; k++) row->counts[k] = sqlite3_column_int64(st, 2 + k);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    free(out);
    return sql_error(db, "reading stats", err, errlen);
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

static lw_status sq_stats(lw_store *base, const char *site, lw_stats *out, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->rlock);
  /* One read transaction, so every number comes from the same snapshot. */
  lw_status st = exec(s->r, "BEGIN", "starting a read", err, errlen);
  if (st == LW_OK)
    st = count(s->r, "SELECT COUNT(*) FROM events WHERE site = ?1", site, &out->outcomes, err, errlen);
  if (st == LW_OK)
    st = count(s->r, "SELECT COUNT(*) FROM batches WHERE site = ?1", site, &out->batches, err, errlen);
  if (st == LW_OK) st = breakdown(s->r, "action", site, &out->variants, &out->n_variants, err, errlen);
  if (st == LW_OK) st = breakdown(s->r, "segment", site, &out->segments, &out->n_segments, err, errlen);
  if (st == LW_OK) st = breakdown(s->r, "code", site, &out->codes, &out->n_codes, err, errlen);
  sqlite3_exec(s->r, "COMMIT", NULL, NULL, NULL);
  pthread_mutex_unlock(&s->rlock);
  if (st != LW_OK) lw_stats_clear(out);
  return st;
}

static lw_status sq_ping(lw_store *base, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  int64_t v;
  pthread_mutex_lock(&s->rlock);
  lw_status st = count(s->r, "SELECT COUNT(*) FROM batches WHERE site = ?1 AND 0", "", &v, err, errlen);
  pthread_mutex_unlock(&s->rlock);
  return st;
}

/* ---------------------------------------------------------------- referrals
 * Both reads use the partial index on coded events (see the schema), so they touch only the
 * share, copy, landing and conversion rows of one code or one site, never the decisions.
 * Kind names come from loopwise/wire.h: the shared kinds written into the SQL, the referee
 * kinds bound as parameters. */

/* sql with its one %s replaced by the shared kinds' names, quoted: 'share','copy'. */
static void with_shared_kinds(const char *sql, char *out, size_t cap) {
  char kinds[128] = "";
  size_t n = 0;
  for (int k = 0; k < LW_KIND_COUNT; k++)
    if (lw_kind_flags((lw_kind)k) & LW_KIND_F_SHARED)
      n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s'%s'", n ? "," : "", lw_kind_name((lw_kind)k));
  snprintf(out, cap, sql, kinds);
}


static lw_status sq_referral(lw_store *base, const char *site, const char *code,
                             const char *install, lw_referral *out, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  pthread_mutex_lock(&s->rlock);
  char sql[512];
  with_shared_kinds("SELECT EXISTS(SELECT 1 FROM events WHERE site = ?1 AND code = ?2 AND kind IN (%s)"
                    "               AND install = ?3),"
                    " (SELECT COUNT(DISTINCT install) FROM events WHERE site = ?1 AND code = ?2 AND kind = ?4),"
                    " (SELECT COUNT(DISTINCT install) FROM events WHERE site = ?1 AND code = ?2 AND kind = ?5)",
                    sql, sizeof sql);
  int rc = sqlite3_prepare_v2(s->r, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, install, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, lw_kind_name(LW_KIND_CONVERSION), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, lw_kind_name(LW_KIND_LANDING), -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && (out->owner = sqlite3_column_int(st, 0))) {
      out->conversions = sqlite3_column_int64(st, 1);
      out->landings = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
  }
  lw_status ret = rc == SQLITE_ROW ? LW_OK : sql_error(s->r, "reading a referral", err, errlen);
  pthread_mutex_unlock(&s->rlock);
  return ret;
}

static lw_status sq_attributions(lw_store *base, const char *site, int64_t since_ms,
                                 lw_attribution **rows, size_t *n_rows, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  pthread_mutex_lock(&s->rlock);
  int rc = sqlite3_prepare_v2(
      s->r,
      "SELECT code, COUNT(*), MIN(first), MAX(first) FROM"
      " (SELECT code, MIN(t) AS first FROM events"
      "   WHERE site = ?1 AND code IS NOT NULL AND kind = ?3 GROUP BY code, install)"
      " WHERE first >= ?2 GROUP BY code ORDER BY code",
      -1, &st, NULL);
  lw_attribution *out = NULL;
  size_t n = 0, cap = 0;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    sqlite3_bind_text(st, 3, lw_kind_name(LW_KIND_CONVERSION), -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (n == cap) {
        size_t ncap = cap ? cap * 2 : 16;
        lw_attribution *grown = realloc(out, ncap * sizeof *out);
        if (!grown) break;
        out = grown;
        cap = ncap;
      }
      lw_attribution *a = &out[n++];
      const unsigned char *code = sqlite3_column_text(st, 0);
      snprintf(a->code, sizeof a->code, "%s", code ? (const char *)code : "");
      a->conversions = sqlite3_column_int64(st, 1);
      a->first_at = sqlite3_column_int64(st, 2);
      a->last_at = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
  }
  lw_status ret = LW_OK;
  if (rc == SQLITE_ROW) {
    snprintf(err, errlen, "out of memory reading attributions");
    ret = LW_ERR_NOMEM;
  } else if (rc != SQLITE_DONE) {
    ret = sql_error(s->r, "reading attributions", err, errlen);
  }
  pthread_mutex_unlock(&s->rlock);
  if (ret != LW_OK) {
    free(out);
    return ret;
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

static void sq_close(lw_store *base) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_finalize(s->ins_batch);
  for (int k = 1; k <= EVENT_ROWS_MAX; k++) sqlite3_finalize(s->ins_events[k]);
  sqlite3_close(s->r);
  /* Closing the last connection checkpoints the WAL into the database and removes it. */
  sqlite3_close(s->w);
  pthread_mutex_destroy(&s->rlock);
  free(s);
}

/* ---------------------------------------------------------------- reading decisions
 * The events table has no index on decision ids (the writer would pay for it on every row), so
 * a cursor first puts the ids of the site's shared decisions into an indexed temporary table
 * (the temp database, which a read-only connection may write); the join is then one lookup
 * per decision. */

static const char k_shared_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS lw_shared(decision TEXT PRIMARY KEY) WITHOUT ROWID;"
    "DELETE FROM temp.lw_shared;"
    "INSERT OR IGNORE INTO temp.lw_shared SELECT decision FROM main.events"
    "  WHERE site = ?1 AND kind IN (%s) AND decision IS NOT NULL;";

static const char k_decisions_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, s.decision IS NOT NULL, 0, d.decision"
    " FROM main.events d LEFT JOIN temp.lw_shared s ON s.decision = d.decision"
    " WHERE d.site = ?1 AND d.kind = ?4 AND d.t >= ?2 AND d.t < ?3 ORDER BY d.id";

/* Conversions whose code an install shared (codes are per install), with that install's
 * latest decision. */
static const char k_referrers_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, 0, c.n, d.decision FROM"
    " (SELECT sh.install AS install, count(*) AS n FROM"
    "   (SELECT DISTINCT install, code FROM events WHERE site = ?1 AND kind IN (%s)"
    "    AND code IS NOT NULL) sh JOIN events cv ON cv.site = ?1 AND cv.kind = ?5"
    "    AND cv.code = sh.code AND cv.t >= ?2 AND cv.t < ?3 GROUP BY sh.install) c"
    " JOIN events d ON d.id = (SELECT max(id) FROM events WHERE site = ?1 AND install = c.install"
    "  AND kind = ?4) ORDER BY d.id";

typedef struct {
  lw_store_cursor base;
  sqlite_store *s;
  sqlite3_stmt *st;
} sqlite_cursor;

/* Kind names come from loopwise/wire.h: ?4 is the decision kind, ?5 the conversion kind, and
 * the shared kinds (LW_KIND_F_SHARED) are written into the SQL as a quoted list. */
static void bind_range(sqlite3_stmt *st, const lw_store_range *r) {
  sqlite3_bind_text(st, 1, r->site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, r->from_ms);
  sqlite3_bind_int64(st, 3, r->to_ms > 0 ? r->to_ms : INT64_MAX);
  if (sqlite3_bind_parameter_count(st) >= 4) sqlite3_bind_text(st, 4, lw_kind_name(LW_KIND_DECISION), -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(st) >= 5)
    sqlite3_bind_text(st, 5, lw_kind_name(LW_KIND_CONVERSION), -1, SQLITE_STATIC);
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t cap) {
  const unsigned char *v = sqlite3_column_text(st, col);
  snprintf(out, cap, "%s", v ? (const char *)v : "");
}

static int cur_next(lw_store_cursor *base, lw_store_decision *d, char *err, size_t errlen) {
  sqlite_cursor *c = (sqlite_cursor *)base;
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) {
    snprintf(err, errlen, "reading decisions: %s", sqlite3_errmsg(c->s->r));
    return -1;
  }
  sqlite3_stmt *st = c->st;
  d->id = (uint64_t)sqlite3_column_int64(st, 0);
  d->t = sqlite3_column_int64(st, 1);
  copy_col(st, 2, d->action, sizeof d->action);
  d->has_p = sqlite3_column_type(st, 3) != SQLITE_NULL;
  d->p = sqlite3_column_double(st, 3);
  copy_col(st, 4, d->mode, sizeof d->mode);
  copy_col(st, 5, d->segment, sizeof d->segment);
  d->n_x = 0;
  if (sqlite3_column_type(st, 6) != SQLITE_NULL &&
      (sqlite3_column_type(st, 6) != SQLITE_BLOB ||
       x_decode(sqlite3_column_blob(st, 6), (size_t)sqlite3_column_bytes(st, 6), d->x, &d->n_x) < 0)) {
    snprintf(err, errlen, "row %llu: x is not a list of at most %d (hash, value) pairs",
             (unsigned long long)d->id, LW_X_PAIRS);
    return -1;
  }
  d->shared = sqlite3_column_int(st, 7);
  d->conversions = sqlite3_column_int64(st, 8);
  copy_col(st, 9, d->decision, sizeof d->decision);
  return 1;
}

static void cur_free(lw_store_cursor *base) {
  sqlite_cursor *c = (sqlite_cursor *)base;
  sqlite3_finalize(c->st);
  pthread_mutex_unlock(&c->s->rlock);
  free(c);
}

static lw_status sq_decisions(lw_store *base, const lw_store_range *r, int referrers, lw_store_cursor **out,
                              char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *out = NULL;
  sqlite_cursor *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  c->base.next = cur_next;
  c->base.free = cur_free;
  c->s = s;
  pthread_mutex_lock(&s->rlock); /* held until the cursor is freed */
  char shared_sql[512], main_sql[1024];
  with_shared_kinds(k_shared_sql, shared_sql, sizeof shared_sql);
  with_shared_kinds(referrers ? k_referrers_sql : k_decisions_sql, main_sql, sizeof main_sql);
  const char *sql = shared_sql;
  while (sql && *sql) {
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(s->r, sql, -1, &st, &tail);
    if (rc == SQLITE_OK && st) {
      if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_text(st, 1, r->site, -1, SQLITE_STATIC);
      rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
      snprintf(err, errlen, "collecting shared decisions: %s", sqlite3_errmsg(s->r));
      cur_free(&c->base);
      return LW_ERR_IO;
    }
    sql = tail;
  }
  if (sqlite3_prepare_v2(s->r, main_sql, -1, &c->st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "reading decisions: %s", sqlite3_errmsg(s->r));
    cur_free(&c->base);
    return LW_ERR_IO;
  }
  bind_range(c->st, r);
  *out = &c->base;
  return LW_OK;
}

static lw_status sq_count_decisions(lw_store *base, const lw_store_range *r, uint64_t *n, char *err,
                                    size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *n = 0;
  pthread_mutex_lock(&s->rlock);
  int rc = sqlite3_prepare_v2(s->r,
                              "SELECT count(*) FROM events WHERE site = ?1 AND kind = ?4"
                              " AND t >= ?2 AND t < ?3",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    bind_range(st, r);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_ROW) snprintf(err, errlen, "counting decisions: %s", sqlite3_errmsg(s->r));
  pthread_mutex_unlock(&s->rlock);
  return rc == SQLITE_ROW ? LW_OK : LW_ERR_IO;
}

static const lw_store_backend sqlite_backend = {
    "sqlite", sq_write,    sq_forget,       sq_purge, sq_stats,
    sq_ping,  sq_referral, sq_attributions, sq_close, sq_decisions, sq_count_decisions};

/* ---------------------------------------------------------------- read-only */

static lw_status ro_write(lw_store *s, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  (void)s, (void)items, (void)n;
  snprintf(err, errlen, "the store was opened read-only");
  return LW_ERR_INVALID;
}
static lw_status ro_forget(lw_store *s, const char *site, const char *install, int64_t *deleted, char *err,
                           size_t errlen) {
  (void)site, (void)install, (void)deleted;
  return ro_write(s, NULL, 0, err, errlen);
}
static lw_status ro_purge(lw_store *s, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  (void)before_ms, (void)deleted;
  return ro_write(s, NULL, 0, err, errlen);
}

static const lw_store_backend sqlite_read_backend = {
    "sqlite (read-only)", ro_write,    ro_forget,       ro_purge, sq_stats,
    sq_ping,              sq_referral, sq_attributions, sq_close, sq_decisions, sq_count_decisions};

lw_status lw_store_open_sqlite_read(const char *path, lw_store **out, char *err, size_t errlen) {
  *out = NULL;
  sqlite_store *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  s->base.backend = &sqlite_read_backend;
  pthread_mutex_init(&s->rlock, NULL);
  lw_status st = LW_OK;
  if (sqlite3_open_v2(path, &s->r, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", path, s->r ? sqlite3_errmsg(s->r) : "cannot open");
    st = LW_ERR_IO;
  } else {
    sqlite3_busy_timeout(s->r, 10000);
    char msg[LW_ERRMSG_MAX];
    int version = -1;
    if (user_version(s->r, &version, msg, sizeof msg) != LW_OK) {
      snprintf(err, errlen, "%s: %s (is it a Loopwise ingest store?)", path, msg);
      st = LW_ERR_IO;
    } else if (version != LW_STORE_SCHEMA_VERSION) {
      if (version == 0)
        snprintf(err, errlen, "%s: not a Loopwise ingest store (no schema version)", path);
      else if (version < LW_STORE_SCHEMA_VERSION)
        snprintf(err, errlen,
                 "%s: store schema version %d is older than this build's %d: open it once with this "
                 "version's loopwise-ingest to migrate it",
                 path, version, LW_STORE_SCHEMA_VERSION);
      else
        snprintf(err, errlen, "%s: store schema version %d is newer than this build's %d: use newer tools",
                 path, version, LW_STORE_SCHEMA_VERSION);
      st = LW_ERR_VERSION;
    }
  }
  if (st != LW_OK) {
    sq_close(&s->base);
    return st;
  }
  *out = &s->base;
  return LW_OK;
}

static lw_status open_conn(const char *path, sqlite3 **db, char *err, size_t errlen) {
  if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    lw_status st = sql_error(*db, "opening the database", err, errlen);
    sqlite3_close(*db);
    *db = NULL;
    return st;
  }
  sqlite3_busy_timeout(*db, 10000);
  /* synchronous=FULL in WAL mode: every COMMIT fsyncs the WAL before it returns. A larger
   * autocheckpoint interval means fewer checkpoints (each one also fsyncs the database). */
  return exec(*db,
              "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
              " PRAGMA wal_autocheckpoint = 4000; PRAGMA cache_size = -32000;",
              "setting WAL mode", err, errlen);
}

lw_status lw_store_open_sqlite(const char *path, lw_store **out, char *err, size_t errlen) {
  *out = NULL;
  sqlite_store *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  s->base.backend = &sqlite_backend;
  pthread_mutex_init(&s->rlock, NULL);
  lw_status st = open_conn(path, &s->w, err, errlen);
  if (st == LW_OK) {
    /* journal_mode=WAL answers the mode in force: refuse to run without it. */
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->w, "PRAGMA journal_mode", -1, &q, NULL) == SQLITE_OK) {
      if (sqlite3_step(q) != SQLITE_ROW ||
          sqlite3_stricmp((const char *)sqlite3_column_text(q, 0), "wal") != 0) {
        snprintf(err, errlen, "the database at %s cannot use WAL mode", path);
        st = LW_ERR_IO;
      }
      sqlite3_finalize(q);
    }
  }
  if (st == LW_OK) st = migrate(s->w, err, errlen);
  if (st == LW_OK) st = open_conn(path, &s->r, err, errlen);
  if (st == LW_OK &&
      sqlite3_prepare_v3(s->w,
                         "INSERT INTO batches(site, batch_id, received_at, sent_at, n_events)"
                         " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(site, batch_id) DO NOTHING",
                         -1, SQLITE_PREPARE_PERSISTENT, &s->ins_batch, NULL) != SQLITE_OK)
    st = sql_error(s->w, "preparing statements", err, errlen);
  for (int k = 1; st == LW_OK && k <= EVENT_ROWS_MAX; k++) {
    char sql[4096];
    size_t len = (size_t)snprintf(sql, sizeof sql,
                                  "INSERT INTO events(batch, site, kind, t, install, decision,"
                                  " action, p, mode, reason, segment, model, x, code, id)"
                                  " VALUES");
    for (int r = 0; r < k; r++)
      len += (size_t)snprintf(sql + len, sizeof sql - len, "%s(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              r ? "," : "");
    if (sqlite3_prepare_v3(s->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->ins_events[k], NULL) !=
        SQLITE_OK)
      st = sql_error(s->w, "preparing statements", err, errlen);
  }
  if (st != LW_OK) {
    sq_close(&s->base);
    return st;
  }
  *out = &s->base;
  return LW_OK;
}
