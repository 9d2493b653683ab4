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
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Events go in with multi-row INSERTs of up to this many rows: one statement run per chunk
 * instead of per event, which is most of what a row costs the writer besides the b-trees. */
#define EVENT_ROWS_MAX 8
#define EVENT_COLS 16

typedef struct {
  lw_store base;
  sqlite3 *w;            /* writer connection */
  sqlite3 *r;            /* reader connection, guarded by rlock */
  pthread_mutex_t rlock;
  sqlite3_stmt *ins_batch;
  sqlite3_stmt *ins_events[EVENT_ROWS_MAX + 1]; /* [k]: insert k events in one statement */
  sqlite3_stmt *sel_owner, *ins_owner, *ins_flag, *fix_count; /* code ownership (schema 6) */
  lw_event *kept;        /* the records of one batch that are stored (writer only) */
  size_t kept_cap;
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
 * declared TEXT type; its affinity leaves BLOBs as they are.)
 * Version 6 is the trust layer (README "Rewards nobody can forge"): code_owners (a code
 * belongs to the install that first shared it), referees (the host's reports through the
 * secret-key endpoint, the referee id only as a salted hash, each with its state under the
 * site's integrity rules), referrers (the host's hashed id of a code's referrer), site_salts,
 * flags (codes and installs an integrity rule marked, for the trainer to leave out), and
 * events.received_at: the server's receive time, written beside a record dated beyond the
 * clock-skew allowance (NULL otherwise). */
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

#define V6_TABLES                                                                          \
  "ALTER TABLE events ADD COLUMN received_at INTEGER;"                                     \
  "CREATE TABLE code_owners(site TEXT NOT NULL, code TEXT NOT NULL, install TEXT NOT NULL," \
  "  PRIMARY KEY(site, code)) WITHOUT ROWID;"                                              \
  "CREATE TABLE site_salts(site TEXT PRIMARY KEY, salt BLOB NOT NULL) WITHOUT ROWID;"      \
  "CREATE TABLE referrers(site TEXT NOT NULL, code TEXT NOT NULL, referrer BLOB NOT NULL,"  \
  "  PRIMARY KEY(site, code)) WITHOUT ROWID;"                                              \
  "CREATE TABLE referees("                                                                 \
  "  id INTEGER PRIMARY KEY,"                                                              \
  "  site TEXT NOT NULL, code TEXT NOT NULL, referee BLOB NOT NULL, event TEXT NOT NULL,"  \
  "  at INTEGER NOT NULL, received_at INTEGER NOT NULL, value REAL, token TEXT,"           \
  "  state TEXT NOT NULL, reason TEXT, counted_at INTEGER,"                                \
  "  UNIQUE(site, code, referee, event));"                                                 \
  "CREATE INDEX referees_referee ON referees(site, referee, event);"                       \
  "CREATE TABLE flags(site TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,"        \
  "  reason TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(site, kind, value)) WITHOUT ROWID;"

/* The owners of the codes already stored: the first install (in storage order) that shared
 * each. %s: the shared kinds, quoted (with_shared_kinds). */
static const char k_owners_sql[] =
    "INSERT OR IGNORE INTO code_owners(site, code, install)"
    "  SELECT site, code, install FROM events WHERE code IS NOT NULL AND kind IN (%s) ORDER BY id;";

static const char *const schema_v6 = BATCHES_TABLE EVENTS_TABLE CODES_INDEX V6_TABLES;

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

static void with_shared_kinds(const char *sql, char *out, size_t cap);

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
    if ((st = exec(db, schema_v6, "creating the schema", err, errlen)) != LW_OK) goto fail;
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
    if (version <= 5) {
      char owners[512];
      with_shared_kinds(k_owners_sql, owners, sizeof owners);
      if ((st = exec(db, V6_TABLES, "migrating schema 5 to 6", err, errlen)) != LW_OK ||
          (st = exec(db, owners, "migrating schema 5 to 6", err, errlen)) != LW_OK)
        goto fail;
    }
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

/* Mark a code or an install for the trainer (flags table; the first reason stays). */
static lw_status flag(sqlite_store *s, sqlite3 *db, sqlite3_stmt *st, const char *site, const char *kind,
                      const char *value, const char *reason, int64_t now_ms, char *err, size_t errlen) {
  (void)s;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? LW_OK : sql_error(db, "flagging", err, errlen);
}

/* The owner of code on site into owner (LW_INSTALL_LEN + 1 bytes); 0 when it has none. */
static int owner_of(sqlite_store *s, const char *site, const char *code, char *owner) {
  sqlite3_reset(s->sel_owner);
  sqlite3_bind_text(s->sel_owner, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(s->sel_owner, 2, code, -1, SQLITE_STATIC);
  int found = sqlite3_step(s->sel_owner) == SQLITE_ROW;
  if (found) snprintf(owner, LW_INSTALL_LEN + 1, "%s", (const char *)sqlite3_column_text(s->sel_owner, 0));
  sqlite3_reset(s->sel_owner);
  return found;
}

/* Code ownership: a code belongs to the install that first shared it. A share or copy with a
 * code another install owns is not stored (it->stored counts the others; the install is
 * flagged); a landing or conversion from the owner's own install marks a self-referral. The
 * records kept go into s->kept, in order. Only codes cost a lookup: decisions and impressions
 * pass straight through. */
static lw_status keep_owned(sqlite_store *s, lw_store_item *it, size_t *n_kept, char *err, size_t errlen) {
  const lw_batch *b = it->batch;
  if (s->kept_cap < b->n_events) {
    lw_event *grown = realloc(s->kept, b->n_events * sizeof *grown);
    if (!grown) {
      snprintf(err, errlen, "out of memory");
      return LW_ERR_NOMEM;
    }
    s->kept = grown;
    s->kept_cap = b->n_events;
  }
  size_t n = 0;
  for (size_t i = 0; i < b->n_events; i++) {
    const lw_event *e = &b->events[i];
    unsigned fl = lw_kind_flags(e->kind);
    char owner[LW_INSTALL_LEN + 1];
    if (e->code[0] && (fl & LW_KIND_F_SHARED)) {
      if (!owner_of(s, it->site, e->code, owner)) {
        sqlite3_reset(s->ins_owner);
        sqlite3_bind_text(s->ins_owner, 1, it->site, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->ins_owner, 2, e->code, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->ins_owner, 3, e->install, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s->ins_owner);
        sqlite3_reset(s->ins_owner);
        if (rc != SQLITE_DONE) return sql_error(s->w, "storing a code's owner", err, errlen);
      } else if (strcmp(owner, e->install) != 0) {
        lw_status st = flag(s, s->w, s->ins_flag, it->site, "install", e->install, "code_owner",
                            it->received_ms, err, errlen);
        if (st != LW_OK) return st;
        continue; /* not stored */
      }
    } else if (e->code[0] && (fl & LW_KIND_F_REFEREE) && owner_of(s, it->site, e->code, owner) &&
               strcmp(owner, e->install) == 0) {
      lw_status st = flag(s, s->w, s->ins_flag, it->site, "install", e->install, "self_referral",
                          it->received_ms, err, errlen);
      if (st == LW_OK)
        st = flag(s, s->w, s->ins_flag, it->site, "code", e->code, "self_referral", it->received_ms, err, errlen);
      if (st != LW_OK) return st;
    }
    s->kept[n++] = *e;
  }
  *n_kept = n;
  return LW_OK;
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
  size_t n_kept;
  lw_status own = keep_owned(s, it, &n_kept, err, errlen);
  if (own != LW_OK) return own;
  for (size_t at = 0; at < n_kept;) {
    size_t k = n_kept - at < EVENT_ROWS_MAX ? n_kept - at : EVENT_ROWS_MAX;
    st = s->ins_events[k];
    sqlite3_reset(st);
    for (size_t r = 0; r < k; r++) {
      const lw_event *e = &s->kept[at + r];
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
      if (e->skewed)
        sqlite3_bind_int64(st, c + 16, it->received_ms);
      else
        sqlite3_bind_null(st, c + 16);
    }
    if ((fault = step_fault(s, "storing events", err, errlen)) != LW_OK) return fault;
    if (sqlite3_step(st) != SQLITE_DONE) return sql_error(s->w, "storing events", err, errlen);
    at += k;
  }
  it->duplicate = 0;
  it->stored = n_kept;
  if (n_kept < b->n_events) {
    sqlite3_reset(s->fix_count);
    sqlite3_bind_int64(s->fix_count, 1, (sqlite3_int64)n_kept);
    sqlite3_bind_int64(s->fix_count, 2, batch_row);
    if (sqlite3_step(s->fix_count) != SQLITE_DONE) return sql_error(s->w, "storing a batch", err, errlen);
  }
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
  sqlite3_reset(s->sel_owner);
  sqlite3_reset(s->ins_owner);
  sqlite3_reset(s->ins_flag);
  sqlite3_reset(s->fix_count);
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
  /* The install key is also in code_owners and flags (schema 6): it leaves those too. */
  static const char *const also[] = {"DELETE FROM code_owners WHERE site = ?1 AND install = ?2",
                                     "DELETE FROM flags WHERE site = ?1 AND kind = 'install' AND value = ?2"};
  for (size_t i = 0; i < sizeof also / sizeof also[0]; i++) {
    if (sqlite3_prepare_v2(s->w, also[i], -1, &st, NULL) != SQLITE_OK)
      return sql_error(s->w, "preparing a delete", err, errlen);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, install, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_error(s->w, "deleting an install", err, errlen);
  }
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
    /* Schema 6: an install key leaves code_owners and flags with its last stored share (the
     * coded events' index answers each lookup). Referee reports are the host's ledger and stay. */
    char owners[512];
    with_shared_kinds("DELETE FROM code_owners WHERE ?1 >= 0 AND NOT EXISTS(SELECT 1 FROM events e"
                      " WHERE e.site = code_owners.site AND e.code = code_owners.code AND e.kind IN (%s)"
                      " AND e.install = code_owners.install)",
                      owners, sizeof owners);
    if (st == LW_OK) st = delete_where(s, owners, NULL, 0, NULL, err, errlen);
    if (st == LW_OK)
      st = delete_where(s,
                        "DELETE FROM flags WHERE kind = 'install' AND ?1 >= 0 AND NOT EXISTS(SELECT 1 FROM"
                        " events e WHERE e.site = flags.site AND e.install = flags.value)",
                        NULL, 0, NULL, err, errlen);
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


/* Conversions that count for rewards: reported by the host (referees), counted or approved. */
#define COUNTED_CONVERSIONS "FROM referees WHERE site = ?1 AND event = 'conversion' AND counted_at IS NOT NULL"

static lw_status sq_referral(lw_store *base, const char *site, const char *code,
                             const char *install, lw_referral *out, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  pthread_mutex_lock(&s->rlock);
  int rc = sqlite3_prepare_v2(
      s->r,
      "SELECT (SELECT install FROM code_owners WHERE site = ?1 AND code = ?2),"
      " (SELECT COUNT(DISTINCT referee) " COUNTED_CONVERSIONS " AND code = ?2),"
      " (SELECT COUNT(DISTINCT install) FROM events WHERE site = ?1 AND code = ?2 AND kind = ?3)",
      -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, lw_kind_name(LW_KIND_LANDING), -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const unsigned char *owner = sqlite3_column_text(st, 0);
      out->owner = !owner ? LW_OWNER_NONE : strcmp((const char *)owner, install) == 0 ? LW_OWNER_SELF : LW_OWNER_OTHER;
      if (out->owner == LW_OWNER_SELF) {
        out->conversions = sqlite3_column_int64(st, 1);
        out->landings = sqlite3_column_int64(st, 2);
      }
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
      " (SELECT code, MIN(counted_at) AS first " COUNTED_CONVERSIONS " GROUP BY code, referee)"
      " WHERE first >= ?2 GROUP BY code ORDER BY code",
      -1, &st, NULL);
  lw_attribution *out = NULL;
  size_t n = 0, cap = 0;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
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
  sqlite3_finalize(s->sel_owner);
  sqlite3_finalize(s->ins_owner);
  sqlite3_finalize(s->ins_flag);
  sqlite3_finalize(s->fix_count);
  free(s->kept);
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

/* Whether the decision's install is flagged (schema 6's flags: a forged share, a self-referral,
 * a flagged or rejected conversion of its codes). */
#define FLAGGED " EXISTS(SELECT 1 FROM main.flags f WHERE f.site = ?1 AND f.kind = 'install' AND f.value = d.install)"

static const char k_decisions_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, s.decision IS NOT NULL, 0," FLAGGED
    " FROM main.events d LEFT JOIN temp.lw_shared s ON s.decision = d.decision"
    " WHERE d.site = ?1 AND d.kind = ?4 AND d.t >= ?2 AND d.t < ?3 ORDER BY d.id";

/* Conversions whose code an install shared (codes are per install), with that install's
 * latest decision. */
static const char k_referrers_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, 0, c.n," FLAGGED " FROM"
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
  d->flagged = sqlite3_column_int(st, 9);
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
  char shared_sql[512], main_sql[2048];
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


/* ---------------------------------------------------------------- referees
 * The host's reports (store.h "referees"). Each call is one transaction on the writer
 * connection (the writer thread runs them, see writer.h), so a report and the flags its rules
 * set are kept together or not at all. */

/* Prepare sql on db; on failure the error is in err. */
static lw_status prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK) return LW_OK;
  *st = NULL;
  return sql_error(db, "preparing a referee statement", err, errlen);
}

static lw_status sq_site_salt(lw_store *base, const char *site, const uint8_t fresh[LW_SALT_LEN],
                              uint8_t out[LW_SALT_LEN], char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  lw_status ret = prep(s->w, "INSERT OR IGNORE INTO site_salts(site, salt) VALUES(?1, ?2)", &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, fresh, LW_SALT_LEN, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "storing a salt", err, errlen);
  if ((ret = prep(s->w, "SELECT salt FROM site_salts WHERE site = ?1", &st, err, errlen)) != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == LW_SALT_LEN)
    memcpy(out, sqlite3_column_blob(st, 0), LW_SALT_LEN);
  else
    ret = rc == SQLITE_ROW ? (snprintf(err, errlen, "site %s: damaged salt", site), LW_ERR_IO)
                           : sql_error(s->w, "reading a salt", err, errlen);
  sqlite3_finalize(st);
  return ret;
}

/* One integer from sql with the report's site (?1), code (?2), referee (?3) and an integer (?4). */
static lw_status query_int(sqlite_store *s, const char *sql, const lw_referee_report *r, int64_t x,
                           int64_t *out, char *err, size_t errlen) {
  sqlite3_stmt *st;
  lw_status ret = prep(s->w, sql, &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, r->site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, r->code, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, r->referee, LW_REFEREE_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, x);
  int rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? LW_OK : sql_error(s->w, "checking a referee", err, errlen);
}

/* The site's rules, in order; the first that matches and is not off decides. */
static lw_status judge(sqlite_store *s, lw_referee_report *r, char *err, size_t errlen) {
  const lw_integrity_rules *rules = r->rules;
  snprintf(r->state, sizeof r->state, "counted");
  r->reason[0] = '\0';
  if (!rules || strcmp(r->event, "conversion") != 0) return LW_OK;
  int64_t hit = 0;
  lw_status st = LW_OK;
  lw_rule_action action = LW_RULE_OFF;
  const char *why = "";
  if (rules->self_referral != LW_RULE_OFF) {
    st = query_int(s, "SELECT EXISTS(SELECT 1 FROM referrers WHERE site = ?1 AND code = ?2 AND referrer = ?3)",
                   r, 0, &hit, err, errlen);
    if (st == LW_OK && !hit && r->install && r->install[0]) {
      char owner[LW_INSTALL_LEN + 1];
      hit = owner_of(s, r->site, r->code, owner) && strcmp(owner, r->install) == 0;
    }
    if (st == LW_OK && hit) action = rules->self_referral, why = "self_referral";
  }
  if (st == LW_OK && action == LW_RULE_OFF && rules->repeat_referee != LW_RULE_OFF) {
    st = query_int(s,
                   "SELECT EXISTS(SELECT 1 FROM referees WHERE site = ?1 AND referee = ?3 AND event = 'conversion'"
                   " AND code <> ?2 AND state IN ('counted', 'approved', 'flagged'))",
                   r, 0, &hit, err, errlen);
    if (st == LW_OK && hit) action = rules->repeat_referee, why = "repeat_referee";
  }
  if (st == LW_OK && action == LW_RULE_OFF && rules->velocity != LW_RULE_OFF && rules->velocity_max > 0) {
    st = query_int(s,
                   "SELECT COUNT(*) FROM referees WHERE site = ?1 AND code = ?2 AND event = 'conversion'"
                   " AND received_at > ?4 AND state <> 'rejected' AND length(?3) > 0",
                   r, r->received_ms - rules->velocity_window_ms, &hit, err, errlen);
    if (st == LW_OK && hit >= rules->velocity_max) action = rules->velocity, why = "velocity";
  }
  if (st == LW_OK && action == LW_RULE_OFF && rules->review_all) action = LW_RULE_FLAG, why = "review";
  if (st != LW_OK || action == LW_RULE_OFF) return st;
  snprintf(r->state, sizeof r->state, "%s", action == LW_RULE_REJECT ? "rejected" : "flagged");
  snprintf(r->reason, sizeof r->reason, "%s", why);
  return LW_OK;
}

/* Mark a code and its owner install (records the trainer may leave out). */
static lw_status flag_code(sqlite_store *s, const char *site, const char *code, const char *reason,
                           int64_t now_ms, char *err, size_t errlen) {
  lw_status st = flag(s, s->w, s->ins_flag, site, "code", code, reason, now_ms, err, errlen);
  char owner[LW_INSTALL_LEN + 1];
  if (st == LW_OK && owner_of(s, site, code, owner))
    st = flag(s, s->w, s->ins_flag, site, "install", owner, reason, now_ms, err, errlen);
  return st;
}

static lw_status sq_referee(lw_store *base, lw_referee_report *r, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  r->duplicate = 0;
  r->id = 0;
  lw_status st = exec(s->w, "BEGIN IMMEDIATE", "starting a referee report", err, errlen);
  if (st != LW_OK) return st;
  sqlite3_stmt *q = NULL;
  if ((st = prep(s->w,
                 "SELECT id, state, coalesce(reason, '') FROM referees"
                 " WHERE site = ?1 AND code = ?2 AND referee = ?3 AND event = ?4",
                 &q, err, errlen)) != LW_OK)
    goto done;
  sqlite3_bind_text(q, 1, r->site, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 2, r->code, -1, SQLITE_STATIC);
  sqlite3_bind_blob(q, 3, r->referee, LW_REFEREE_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_text(q, 4, r->event, -1, SQLITE_STATIC);
  int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) { /* a retry: the first report stands */
    r->duplicate = 1;
    r->id = sqlite3_column_int64(q, 0);
    snprintf(r->state, sizeof r->state, "%s", (const char *)sqlite3_column_text(q, 1));
    snprintf(r->reason, sizeof r->reason, "%s", (const char *)sqlite3_column_text(q, 2));
    goto done;
  }
  if (rc != SQLITE_DONE) {
    st = sql_error(s->w, "reading a referee", err, errlen);
    goto done;
  }
  sqlite3_finalize(q);
  q = NULL;
  if ((st = judge(s, r, err, errlen)) != LW_OK) goto done;
  if ((st = prep(s->w,
                 "INSERT INTO referees(site, code, referee, event, at, received_at, value, state, reason,"
                 " counted_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, nullif(?9, ''), ?10)",
                 &q, err, errlen)) != LW_OK)
    goto done;
  sqlite3_bind_text(q, 1, r->site, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 2, r->code, -1, SQLITE_STATIC);
  sqlite3_bind_blob(q, 3, r->referee, LW_REFEREE_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_text(q, 4, r->event, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 5, r->at);
  sqlite3_bind_int64(q, 6, r->received_ms);
  if (r->has_value)
    sqlite3_bind_double(q, 7, r->value);
  else
    sqlite3_bind_null(q, 7);
  sqlite3_bind_text(q, 8, r->state, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 9, r->reason, -1, SQLITE_STATIC);
  if (strcmp(r->state, "counted") == 0)
    sqlite3_bind_int64(q, 10, r->received_ms);
  else
    sqlite3_bind_null(q, 10);
  if (sqlite3_step(q) != SQLITE_DONE) {
    st = sql_error(s->w, "storing a referee", err, errlen);
    goto done;
  }
  r->id = sqlite3_last_insert_rowid(s->w);
  if (r->reason[0]) st = flag_code(s, r->site, r->code, r->reason, r->received_ms, err, errlen);
done:
  sqlite3_finalize(q);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing a referee report", err, errlen);
  if (st != LW_OK) sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_reset(s->sel_owner);
  sqlite3_reset(s->ins_flag);
  return st;
}

static lw_status sq_register_referrer(lw_store *base, const char *site, const char *code,
                                      const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict,
                                      char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *conflict = 0;
  lw_status ret = prep(s->w,
                       "INSERT INTO referrers(site, code, referrer) VALUES(?1, ?2, ?3)"
                       " ON CONFLICT(site, code) DO NOTHING",
                       &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, referrer, LW_REFEREE_HASH_LEN, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "registering a referrer", err, errlen);
  if (sqlite3_changes(s->w) == 1) return LW_OK;
  if ((ret = prep(s->w, "SELECT referrer = ?3 FROM referrers WHERE site = ?1 AND code = ?2", &st, err, errlen)) !=
      LW_OK)
    return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, referrer, LW_REFEREE_HASH_LEN, SQLITE_STATIC);
  rc = sqlite3_step(st);
  *conflict = rc == SQLITE_ROW && !sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? LW_OK : sql_error(s->w, "registering a referrer", err, errlen);
}

static lw_status sq_review(lw_store *base, const char *site, int64_t id, int approve, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *result = 1;
  lw_status ret = prep(s->w,
                       "UPDATE referees SET state = ?3, counted_at = CASE WHEN ?4 THEN ?5 END"
                       " WHERE site = ?1 AND id = ?2 AND state = 'flagged'",
                       &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  sqlite3_bind_text(st, 3, approve ? "approved" : "rejected", -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, approve);
  sqlite3_bind_int64(st, 5, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "reviewing", err, errlen);
  if (sqlite3_changes(s->w) == 1) {
    *result = 0;
    return LW_OK;
  }
  if ((ret = prep(s->w, "SELECT 1 FROM referees WHERE site = ?1 AND id = ?2", &st, err, errlen)) != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc == SQLITE_ROW) *result = 2;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? LW_OK : sql_error(s->w, "reviewing", err, errlen);
}

static lw_status sq_reviews(lw_store *base, const char *site, size_t max, lw_review **rows, size_t *n_rows,
                            char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  pthread_mutex_lock(&s->rlock);
  int rc = sqlite3_prepare_v2(s->r,
                              "SELECT id, code, event, coalesce(reason, ''), at, received_at FROM referees"
                              " WHERE site = ?1 AND state = 'flagged' ORDER BY id LIMIT ?2",
                              -1, &st, NULL);
  lw_review *out = max ? calloc(max, sizeof *out) : NULL;
  size_t n = 0;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while (out && (rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
      lw_review *v = &out[n++];
      v->id = sqlite3_column_int64(st, 0);
      copy_col(st, 1, v->code, sizeof v->code);
      copy_col(st, 2, v->event, sizeof v->event);
      copy_col(st, 3, v->reason, sizeof v->reason);
      v->at = sqlite3_column_int64(st, 4);
      v->received_at = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
  }
  lw_status ret = LW_OK;
  if (max && !out) {
    snprintf(err, errlen, "out of memory reading reviews");
    ret = LW_ERR_NOMEM;
  } else if (max && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    ret = sql_error(s->r, "reading reviews", err, errlen);
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

static const lw_store_backend sqlite_backend = {
    "sqlite", sq_write,    sq_forget,       sq_purge, sq_stats,
    sq_ping,  sq_referral, sq_attributions, sq_close, sq_decisions, sq_count_decisions,
    sq_site_salt, sq_referee, sq_register_referrer, sq_review, sq_reviews};

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

static lw_status ro_site_salt(lw_store *s, const char *site, const uint8_t fresh[LW_SALT_LEN],
                              uint8_t out[LW_SALT_LEN], char *err, size_t errlen) {
  (void)site, (void)fresh, (void)out;
  return ro_write(s, NULL, 0, err, errlen);
}
static lw_status ro_referee(lw_store *s, lw_referee_report *r, char *err, size_t errlen) {
  (void)r;
  return ro_write(s, NULL, 0, err, errlen);
}
static lw_status ro_register_referrer(lw_store *s, const char *site, const char *code,
                                      const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict,
                                      char *err, size_t errlen) {
  (void)site, (void)code, (void)referrer, (void)conflict;
  return ro_write(s, NULL, 0, err, errlen);
}
static lw_status ro_review(lw_store *s, const char *site, int64_t id, int approve, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  (void)site, (void)id, (void)approve, (void)now_ms, (void)result;
  return ro_write(s, NULL, 0, err, errlen);
}

static const lw_store_backend sqlite_read_backend = {
    "sqlite (read-only)", ro_write,    ro_forget,       ro_purge, sq_stats,
    sq_ping,              sq_referral, sq_attributions, sq_close, sq_decisions, sq_count_decisions,
    ro_site_salt,         ro_referee,  ro_register_referrer, ro_review, sq_reviews};

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
                                  " action, p, mode, reason, segment, model, x, code, id, received_at)"
                                  " VALUES");
    for (int r = 0; r < k; r++)
      len += (size_t)snprintf(sql + len, sizeof sql - len, "%s(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              r ? "," : "");
    if (sqlite3_prepare_v3(s->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->ins_events[k], NULL) !=
        SQLITE_OK)
      st = sql_error(s->w, "preparing statements", err, errlen);
  }
  static const struct {
    size_t offset;
    const char *sql;
  } owner_stmts[] = {
      {offsetof(sqlite_store, sel_owner), "SELECT install FROM code_owners WHERE site = ?1 AND code = ?2"},
      {offsetof(sqlite_store, ins_owner), "INSERT INTO code_owners(site, code, install) VALUES(?1, ?2, ?3)"},
      {offsetof(sqlite_store, ins_flag),
       "INSERT OR IGNORE INTO flags(site, kind, value, reason, at) VALUES(?1, ?2, ?3, ?4, ?5)"},
      {offsetof(sqlite_store, fix_count), "UPDATE batches SET n_events = ?1 WHERE id = ?2"},
  };
  for (size_t i = 0; st == LW_OK && i < sizeof owner_stmts / sizeof owner_stmts[0]; i++)
    if (sqlite3_prepare_v3(s->w, owner_stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
                           (sqlite3_stmt **)((char *)s + owner_stmts[i].offset), NULL) != SQLITE_OK)
      st = sql_error(s->w, "preparing statements", err, errlen);
  if (st != LW_OK) {
    sq_close(&s->base);
    return st;
  }
  *out = &s->base;
  return LW_OK;
}
