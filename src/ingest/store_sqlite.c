/* store_sqlite.c: the SQLite backend of lw_store.
 *
 * Durability: WAL mode with synchronous=FULL, so COMMIT returns only after the WAL is fsynced.
 * The server's writer thread puts many batches in one transaction (group commit), so many
 * requests share that one fsync.
 *
 * Connections: the writer's (used by one thread at a time, see store.h), a small pool of
 * readers (see reader_take) and one for the ping, so no read waits for a commit or blocks one
 * (WAL), a slow read holds up only reads that find every reader busy, and /healthz none. */
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

#include "rollup_sqlite.h"

/* Events go in with multi-row INSERTs of up to this many rows: one statement run per chunk
 * instead of per event, which is most of what a row costs the writer besides the b-trees. */
#define EVENT_ROWS_MAX 8
#define EVENT_COLS 18

/* Reads (stats, referrals, attributions, the tools' cursors) each take one connection of a
 * small pool, so a slow read holds up only reads that find every connection busy, and never
 * /healthz, which pings on its own connection. In WAL mode none of them blocks the writer. */
#define READERS_MAX 4
#define READERS 3

/* WAL checkpoints run on a thread of their own (ckpt_main), not inside the writer's COMMIT as
 * SQLite's autocheckpoint would: copying a few thousand pages into the database and fsyncing
 * it took the writer tens of milliseconds every 16 MB of WAL, and every request of the group
 * waited for it (most of the p99). A PASSIVE checkpoint from another connection never blocks
 * the writer. The WAL restarts from its beginning only when a write transaction begins with
 * every frame copied, which under constant load seldom happens by itself; so past
 * CKPT_HARD_PAGES the writer checkpoints once itself (cheap: the thread has copied all but the
 * last few commits) and the WAL stays bounded. */
#define CKPT_PAGES 2000
#define CKPT_HARD_PAGES 8000

typedef struct {
  sqlite3 *db;
  pthread_mutex_t lock;
} reader;

/* Referral counts already computed (see sq_referral), by a hash of (site, code). An entry is
 * good while its slot's generation and the store's are what they were when it was computed:
 * the writer bumps a slot's generation when it commits an event with a code of that slot, and
 * the store's on every forget and purge. */
#define REFERRAL_CACHE 1024
typedef struct {
  char site[33], code[LW_CODE_LEN + 1];
  int64_t conversions, landings;
  uint64_t gen, epoch;
} referral_cached;

typedef struct {
  lw_store base;
  referral_cached refc[REFERRAL_CACHE];
  uint64_t refgen[REFERRAL_CACHE], epoch; /* guarded by refc_lock */
  pthread_mutex_t refc_lock;
  sqlite3 *w;            /* writer connection */
  reader readers[READERS_MAX]; /* read connections, each guarded by its lock */
  int n_readers;
  atomic_uint next_reader;
  sqlite3 *p;            /* the ping's own connection (NULL read-only: a reader pings) */
  pthread_mutex_t plock;
  sqlite3 *ck;           /* the checkpointer's connection (ckpt_main; NULL read-only) */
  pthread_t ck_thread;
  int ck_started, ck_pending, ck_stop; /* guarded by ck_lock */
  pthread_mutex_t ck_lock;
  pthread_cond_t ck_wake;
  pthread_mutex_t ck_run; /* held by whoever checkpoints (one at a time, else SQLITE_BUSY) */
  sqlite3_stmt *ins_batch;
  sqlite3_stmt *ins_events[EVENT_ROWS_MAX + 1]; /* [k]: insert k events in one statement */
  sqlite3_stmt *sel_owner, *ins_owner, *ins_flag, *fix_count; /* code ownership (schema 6) */
  lw_event *kept;        /* the records of one batch that are stored (writer only) */
  size_t kept_cap;
  atomic_uint fail_step; /* test seam (lw_store_sqlite_fail_step): 0, or which step fails */
  unsigned steps;        /* statements run in the current write transaction (writer only) */
  uint8_t xbuf[EVENT_ROWS_MAX][LW_X_PAIRS * 8];  /* the x blobs of one statement (writer only) */
  lw_sq_rollup ru;       /* the rollups' statements (schema 9, rollup_sqlite.h; writer only) */
  int purge_deleted;     /* a step of the current retention pass deleted batches (writer only) */
  int64_t purge_scanned; /* the last purge step's full-scan steps (lw_store_sqlite_purge_scanned) */
  int64_t write_steps, write_reprepares; /* the last write's (lw_store_sqlite_write_work) */
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
 * clock-skew allowance (NULL otherwise).
 * Version 7 is the retained-value join (README "Retained value"): events.token and
 * events.channel (wire v2: a share's per-share token and channel, the token a referee landed
 * with), a partial index on the events that carry a token (the shares and landings of v2, so the
 * join from a referee to the share that produced it is one lookup) and one on the referee
 * reports that carry a token. Older rows keep NULL: their decisions join by code.
 * Version 8 adds the webhook deliveries.
 * Version 9 adds the writer-kept rollups (rollup_sqlite.h: rollup_site, rollup_keys,
 * rollup_installs), which GET /v1/stats reads instead of walking the events; the migration
 * fills them from the stored events.
 * Version 10 adds the approval requests, 11 the console's funnel (rollup_dec, rollup_funnel), 12
 * the shared decisions' channels and the fairness audit's segments in the funnel's keys
 * (rollup_sqlite.h lw_sq_fair; rollup_fairness), 13 the console's actions (console_actions: who
 * did what, when, on which row). Version 14 orders the shares index by id within a token
 * (events_shares: site, decision, token, id, ...), so a decision's first share without a token
 * is one lookup however many times the decision was shared; before, the writer's funnel
 * recompute sorted them all on every write of the decision. */
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

#define V7_CHANGES                                                                         \
  "ALTER TABLE events ADD COLUMN token TEXT;"                                              \
  "ALTER TABLE events ADD COLUMN channel TEXT;"                                            \
  "CREATE INDEX events_token ON events(site, token) WHERE token IS NOT NULL;"              \
  "CREATE INDEX referees_token ON referees(site, token) WHERE token IS NOT NULL;"

/* Schema 8: webhook deliveries (store.h "webhook deliveries"), one row per counting conversion. */
#define V8_TABLES                                                                          \
  "CREATE TABLE deliveries("                                                               \
  "  id INTEGER PRIMARY KEY, site TEXT NOT NULL, report INTEGER NOT NULL,"                 \
  "  idempotency_key TEXT NOT NULL UNIQUE, body TEXT NOT NULL, state TEXT NOT NULL,"       \
  "  attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"                    \
  "  next_at INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0,"  \
  "  last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered_at INTEGER);"      \
  "CREATE INDEX deliveries_due ON deliveries(site, state, next_at);"

/* Schema 10: approval requests (store.h "approval requests"), one row per site and decision. */
#define V10_TABLES                                                                         \
  "CREATE TABLE approvals("                                                                \
  "  id INTEGER PRIMARY KEY, site TEXT NOT NULL, decision TEXT NOT NULL,"                  \
  "  install TEXT NOT NULL, key_hash TEXT NOT NULL, action TEXT NOT NULL, segment TEXT,"   \
  "  reason TEXT NOT NULL, attrs TEXT NOT NULL, t INTEGER NOT NULL,"                       \
  "  received_at INTEGER NOT NULL, state TEXT NOT NULL, answered_by TEXT,"                 \
  "  answered_at INTEGER, device_answer TEXT, device_at INTEGER, UNIQUE(site, decision));" \
  "CREATE INDEX approvals_install ON approvals(site, install);"

/* Schema 13: the console's actions (store.h "console actions"), one row per write a person asked
 * for; the index answers a row's latest action (the delivery log's "sent again by"). */
#define V13_TABLES                                                                         \
  "CREATE TABLE console_actions(id INTEGER PRIMARY KEY, site TEXT NOT NULL, at INTEGER NOT NULL," \
  "  who TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, ref INTEGER NOT NULL);" \
  "CREATE INDEX console_actions_ref ON console_actions(site, target, ref);"

static const char *const schema_v7 =
    BATCHES_TABLE EVENTS_TABLE CODES_INDEX V6_TABLES V7_CHANGES V8_TABLES V10_TABLES V13_TABLES;

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
int lw_sq_x_decode(const uint8_t *p, size_t len, lw_feature *x, int *n) {
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

/* Schema 9's indexes for the console's shared decisions (lw_store_shared_decisions): the shares
 * and copies (a few in a hundred rows) by decision, covering what the referee join reads, and
 * the decisions by id, so a shared decision is one lookup instead of a walk of every event.
 * The kinds are the wire's (the shared ones quoted by with_shared_kinds; the decision kind is
 * the 'decision' of LW_KINDS), written as the queries write them so the planner may use them. */
#define SHARES_INDEX "CREATE INDEX events_shares ON events(site, decision, token, id, code, channel) WHERE kind IN (%s);"
static const char k_shared_indexes_sql[] =
    SHARES_INDEX "CREATE INDEX events_decisions ON events(site, decision) WHERE kind = 'decision';";

static lw_status shared_indexes(sqlite3 *db, char *err, size_t errlen) {
  char sql[512];
  with_shared_kinds(k_shared_indexes_sql, sql, sizeof sql);
  return exec(db, sql, "creating the shared decisions' indexes", err, errlen);
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
    if ((st = exec(db, schema_v7, "creating the schema", err, errlen)) != LW_OK ||
        (st = exec(db, lw_sq_rollup_tables, "creating the schema", err, errlen)) != LW_OK ||
        (st = exec(db, lw_sq_funnel_tables, "creating the schema", err, errlen)) != LW_OK ||
        (st = shared_indexes(db, err, errlen)) != LW_OK)
      goto fail;
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
    if (version <= 6 && (st = exec(db, V7_CHANGES, "migrating schema 6 to 7", err, errlen)) != LW_OK) goto fail;
    if (version <= 7 && (st = exec(db, V8_TABLES, "migrating schema 7 to 8", err, errlen)) != LW_OK) goto fail;
    if (version <= 8 && ((st = lw_sq_rollup_backfill(db, err, errlen)) != LW_OK ||
                         (st = shared_indexes(db, err, errlen)) != LW_OK))
      goto fail;
    if (version <= 9 && (st = exec(db, V10_TABLES, "migrating schema 9 to 10", err, errlen)) != LW_OK) goto fail;
    /* Schema 11: the console's funnel (rollup_sqlite.h), filled by step 12. */
    if (version <= 10 && (st = lw_sq_funnel_backfill(db, err, errlen)) != LW_OK) goto fail;
  }
  /* Schema 12: the funnel rebuilt with channels and fairness segments, from the stored events and
   * reports (a new file: on its empty tables). */
  if (version <= 11 && (st = lw_sq_rollup_migrate_12(db, err, errlen)) != LW_OK) goto fail;
  /* Schema 13: the console's actions (a new file has them from schema_v7). */
  if (version != 0 && version <= 12 && (st = exec(db, V13_TABLES, "migrating schema 12 to 13", err, errlen)) != LW_OK)
    goto fail;
  /* Schema 14: the shares index in id order within a token (stores from before 9 got it above). */
  if (version >= 9 && version <= 13) {
    char sql[512];
    with_shared_kinds("DROP INDEX events_shares;" SHARES_INDEX, sql, sizeof sql);
    if ((st = exec(db, sql, "migrating schema 13 to 14", err, errlen)) != LW_OK) goto fail;
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

/* The approval records among the kept events: a request becomes a row (the first one of a
 * site's decision id wins), an answer fills the device's side of its row. */
static lw_status write_approvals(sqlite_store *s, lw_store_item *it, size_t n_kept, char *err, size_t errlen) {
  for (size_t i = 0; i < n_kept; i++) {
    const lw_event *e = &s->kept[i];
    if (!(lw_kind_flags(e->kind) & LW_KIND_F_APPROVAL)) continue;
    sqlite3_stmt *st;
    int req = e->kind == LW_KIND_APPROVAL_REQUEST;
    const char *sql = req ? "INSERT OR IGNORE INTO approvals(site, decision, install, key_hash, action, segment,"
                            " reason, attrs, t, received_at, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')"
                          : "UPDATE approvals SET device_answer = ?4, device_at = ?9"
                            " WHERE site = ?1 AND decision = ?2 AND install = ?3";
    if (sqlite3_prepare_v2(s->w, sql, -1, &st, NULL) != SQLITE_OK)
      return sql_error(s->w, "storing an approval request", err, errlen);
    char hash[LW_APPROVAL_HASH_LEN + 1], attrs[sizeof ((lw_approval *)0)->attrs];
    sqlite3_bind_text(st, 1, it->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->decision, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->install, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, e->t);
    if (req) {
      lw_store_approval_key_hash(e->key, hash);
      lw_store_approval_attrs(e, attrs, sizeof attrs);
      sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 5, e->action, -1, SQLITE_STATIC);
      bind_text_or_null(st, 6, e->segment);
      sqlite3_bind_text(st, 7, e->reason, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 8, attrs, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 10, it->received_ms);
    } else {
      sqlite3_bind_text(st, 4, e->answer, -1, SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_error(s->w, "storing an approval request", err, errlen);
  }
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
      bind_text_or_null(st, c + 17, e->token);
      bind_text_or_null(st, c + 18, e->channel);
    }
    if ((fault = step_fault(s, "storing events", err, errlen)) != LW_OK) return fault;
    if (sqlite3_step(st) != SQLITE_DONE) return sql_error(s->w, "storing events", err, errlen);
    if (sqlite3_changes(s->w) != (int)k) { /* OR IGNORE (see the statements): never, but not silently */
      snprintf(err, errlen, "storing events: %d of %zu rows stored", sqlite3_changes(s->w), k);
      return LW_ERR_IO;
    }
    at += k;
  }
  if ((fault = write_approvals(s, it, n_kept, err, errlen)) != LW_OK) return fault;
  it->duplicate = 0;
  it->stored = n_kept;
  if (n_kept < b->n_events) {
    sqlite3_reset(s->fix_count);
    sqlite3_bind_int64(s->fix_count, 1, (sqlite3_int64)n_kept);
    sqlite3_bind_int64(s->fix_count, 2, batch_row);
    if (sqlite3_step(s->fix_count) != SQLITE_DONE) return sql_error(s->w, "storing a batch", err, errlen);
  }
  return lw_sq_rollup_add(&s->ru, s->w, it->site, s->kept, n_kept, batch_row * EVENT_ID_STRIDE, err, errlen);
}

static unsigned referral_slot(const char *site, const char *code) {
  unsigned h = 2166136261u;
  for (const char *p = site; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  h = (h ^ 0xffu) * 16777619u;
  for (const char *p = code; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  return h % REFERRAL_CACHE;
}

/* After a commit: the cached counts of every code the items carried are stale. */
static void referral_touch(sqlite_store *s, lw_store_item *const *items, size_t n) {
  pthread_mutex_lock(&s->refc_lock);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; !items[i]->duplicate && k < items[i]->batch->n_events; k++)
      if (items[i]->batch->events[k].code[0])
        s->refgen[referral_slot(items[i]->site, items[i]->batch->events[k].code)]++;
  pthread_mutex_unlock(&s->refc_lock);
}

/* After a referee report: that code's counted conversions may have changed. */
static void referral_touch_code(sqlite_store *s, const char *site, const char *code) {
  pthread_mutex_lock(&s->refc_lock);
  s->refgen[referral_slot(site, code)]++;
  pthread_mutex_unlock(&s->refc_lock);
}

static void referral_touch_all(sqlite_store *s) {
  pthread_mutex_lock(&s->refc_lock);
  s->epoch++;
  pthread_mutex_unlock(&s->refc_lock);
}

/* The VM steps and re-prepares of the writer's prepared statements since the last call, zeroing
 * them (a walk of the connection's few dozen statements, once per write transaction). */
static void take_work(sqlite3 *db, int64_t *steps, int64_t *reprepares) {
  int64_t n = 0, r = 0;
  for (sqlite3_stmt *p = sqlite3_next_stmt(db, NULL); p; p = sqlite3_next_stmt(db, p)) {
    n += sqlite3_stmt_status(p, SQLITE_STMTSTATUS_VM_STEP, 1);
    r += sqlite3_stmt_status(p, SQLITE_STMTSTATUS_REPREPARE, 1);
  }
  if (steps) *steps = n;
  if (reprepares) *reprepares = r;
}

static lw_status sq_write(lw_store *base, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  s->steps = 0;
  take_work(s->w, NULL, NULL);
  lw_status st = step_fault(s, "starting a write", err, errlen);
  if (st == LW_OK) st = exec(s->w, "BEGIN IMMEDIATE", "starting a write", err, errlen);
  for (size_t i = 0; st == LW_OK && i < n; i++) st = write_one(s, items[i], err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_flush(&s->ru, s->w, err, errlen);
  if (st == LW_OK) st = step_fault(s, "committing", err, errlen);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing", err, errlen);
  if (st == LW_OK) referral_touch(s, items, n);
  sqlite3_reset(s->ins_batch);
  for (int k = 1; k <= EVENT_ROWS_MAX; k++) sqlite3_reset(s->ins_events[k]);
  sqlite3_reset(s->sel_owner);
  sqlite3_reset(s->ins_owner);
  sqlite3_reset(s->ins_flag);
  sqlite3_reset(s->fix_count);
  lw_sq_rollup_reset(&s->ru);
  take_work(s->w, &s->write_steps, &s->write_reprepares);
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

/* sql with its one %s replaced by the shared kinds' names, quoted: 'share','copy'. */
static void with_shared_kinds(const char *sql, char *out, size_t cap);

/* One prepared statement run with text parameters; *changes gets the rows it changed, *row
 * (when not NULL) the first column of its first row. */
static lw_status run_text(sqlite3 *db, const char *sql, const char *a, const char *b, int64_t *changes,
                          int64_t *row, char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return sql_error(db, "preparing a forget", err, errlen);
  sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (row) *row = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_error(db, "forgetting", err, errlen);
  if (changes) *changes = sqlite3_changes(db);
  return LW_OK;
}

/* Every forget of one writer group in one transaction (one fsync however many arrive at once),
 * then the WAL checkpointed into the database and truncated: the WAL still holds the pages as
 * they were before the delete (and secure_delete zeroes only the database's copy), so until
 * then the forgotten rows could be read back from it. A checkpoint that cannot finish (a
 * reader holding an old snapshot past the busy timeout) fails the call: the rows are deleted
 * but the promise is not kept yet, so the client hears 503 and retries (deleting nothing more,
 * checkpointing again). */
static lw_status sq_forget(lw_store *base, lw_forget_item *const *items, size_t n, char *err,
                           size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  char owner_sql[512];
  with_shared_kinds("SELECT EXISTS(SELECT 1 FROM events WHERE site = ?1 AND code = ?2 AND kind IN (%s)"
                    " AND install = ?3)", owner_sql, sizeof owner_sql);
  for (size_t i = 0; i < n; i++) items[i]->deleted = 0, items[i]->denied = 0;
  lw_status st = exec(s->w, "BEGIN IMMEDIATE", "starting a forget", err, errlen);
  for (size_t i = 0; st == LW_OK && i < n; i++) {
    lw_forget_item *it = items[i];
    if (!it->code) {
      st = lw_sq_rollup_subtract(&s->ru, s->w, "site = ?1 AND install = ?2", NULL, it->site, it->install, 0,
                                 err, errlen);
      if (st == LW_OK)
        st = run_text(s->w, "DELETE FROM events WHERE site = ?1 AND install = ?2", it->site, it->install,
                      &it->deleted, NULL, err, errlen);
      /* The install key is also in code_owners and flags (schema 6): it leaves those too. */
      if (st == LW_OK)
        st = run_text(s->w, "DELETE FROM code_owners WHERE site = ?1 AND install = ?2", it->site,
                      it->install, NULL, NULL, err, errlen);
      if (st == LW_OK)
        st = run_text(s->w, "DELETE FROM flags WHERE site = ?1 AND kind = 'install' AND value = ?2",
                      it->site, it->install, NULL, NULL, err, errlen);
      if (st == LW_OK) /* schema 10 */
        st = run_text(s->w, "DELETE FROM approvals WHERE site = ?1 AND install = ?2", it->site, it->install,
                      NULL, NULL, err, errlen);
      continue;
    }
    sqlite3_stmt *q;
    int owner = 0;
    if (sqlite3_prepare_v2(s->w, owner_sql, -1, &q, NULL) != SQLITE_OK) {
      st = sql_error(s->w, "preparing a forget", err, errlen);
      break;
    }
    sqlite3_bind_text(q, 1, it->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, it->code, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, it->install, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) owner = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW) {
      st = sql_error(s->w, "forgetting a code", err, errlen);
      break;
    }
    if (!owner) {
      it->denied = 1;
      continue;
    }
    st = lw_sq_rollup_subtract(&s->ru, s->w, "site = ?1 AND code = ?2", NULL, it->site, it->code, 0, err,
                               errlen);
    if (st == LW_OK)
      st = run_text(s->w, "DELETE FROM events WHERE site = ?1 AND code = ?2", it->site, it->code, &it->deleted,
                    NULL, err, errlen);
    /* The code leaves code_owners and flags too; referee reports are the host's ledger and stay. */
    if (st == LW_OK)
      st = run_text(s->w, "DELETE FROM code_owners WHERE site = ?1 AND code = ?2", it->site, it->code,
                    NULL, NULL, err, errlen);
    if (st == LW_OK)
      st = run_text(s->w, "DELETE FROM flags WHERE site = ?1 AND kind = 'code' AND value = ?2", it->site,
                    it->code, NULL, NULL, err, errlen);
  }
  if (st == LW_OK) st = lw_sq_rollup_settle(&s->ru, s->w, err, errlen);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing a forget", err, errlen);
  if (st == LW_OK) referral_touch_all(s);
  if (st != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    lw_sq_rollup_reset(&s->ru);
    for (size_t i = 0; i < n; i++) items[i]->deleted = 0, items[i]->denied = 0;
    return st;
  }
  int64_t busy = 0;
  pthread_mutex_lock(&s->ck_run);
  st = run_text(s->w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL, &busy, err, errlen);
  pthread_mutex_unlock(&s->ck_run);
  if (st == LW_OK && busy) {
    snprintf(err, errlen, "forgetting: the WAL could not be checkpointed (a read is in the way)");
    st = LW_ERR_IO;
  }
  return st;
}

/* Retention by receive time. Batches are numbered in commit order, so the expired ones are a
 * prefix of the table: walk it from the oldest until a batch is recent enough (or the step's
 * budget of events is reached), then delete that prefix and its events, which are a rowid range
 * (see EVENT_ID_STRIDE), with what they take from the rollups. No index is needed, and the walk
 * touches only rows about to be deleted.
 *
 * A pass over a big store deletes millions of events, and everything a step deletes is one
 * transaction of the one writer: so a step takes whole batches up to max_events and commits,
 * and the writer serves its queue between steps (writer.c). Since each step deletes the oldest
 * batches left, "id < (last + 1) * stride" names exactly the step's events (bounded below too by
 * the first batch's, see sq_purge_step: the planner then reads that range only). The rows that
 * leave with the events (code owners and flags whose install has no stored share or event left,
 * approval requests and console actions received before the cut) are taken once, by the step
 * that ends the pass: between steps a code's owner may be an install whose shares went in an
 * earlier step, which only delays that code's reuse until the pass ends. */
static lw_status purge_leftovers(sqlite_store *s, int64_t before_ms, char *err, size_t errlen) {
  /* schema 10: requests leave with the records they came in */
  lw_status st = delete_where(s, "DELETE FROM approvals WHERE received_at < ?1", NULL, before_ms, NULL, err, errlen);
  /* Schema 6: an install key leaves code_owners and flags with its last stored share (the coded
   * events' index answers each lookup). Referee reports are the host's ledger and stay. */
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
  return st;
}

/* What a step reads, counted for the tests (lw_store_sqlite_purge_scanned): every statement the
 * writer's connection runs during the step adds its full-scan steps (rows of a table or an
 * index stepped over in order rather than looked up) when it finishes. */
static int purge_count(unsigned type, void *ctx, void *stmt, void *x) {
  (void)type, (void)x;
  ((sqlite_store *)ctx)->purge_scanned += sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1);
  return 0;
}

static void purge_count_start(sqlite_store *s) {
  /* the writer's persistent statements hold counts of earlier runs: zeroed */
  for (sqlite3_stmt *p = sqlite3_next_stmt(s->w, NULL); p; p = sqlite3_next_stmt(s->w, p))
    sqlite3_stmt_status(p, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1);
  s->purge_scanned = 0;
  sqlite3_trace_v2(s->w, SQLITE_TRACE_PROFILE, purge_count, s);
}

static lw_status purge_step(sqlite_store *s, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                            char *err, size_t errlen);

static lw_status sq_purge_step(lw_store *base, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                               char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  purge_count_start(s);
  lw_status st = purge_step(s, before_ms, max_events, deleted, more, err, errlen);
  sqlite3_trace_v2(s->w, 0, NULL, NULL);
  return st;
}

static lw_status purge_step(sqlite_store *s, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                            char *err, size_t errlen) {
  *deleted = 0;
  *more = 0;
  lw_status st = exec(s->w, "BEGIN IMMEDIATE", "starting a purge", err, errlen);
  if (st != LW_OK) return st;
  sqlite3_stmt *q;
  sqlite3_int64 first = -1, last = -1, events = 0;
  if (sqlite3_prepare_v2(s->w, "SELECT id, received_at, n_events FROM batches ORDER BY id", -1, &q, NULL) !=
      SQLITE_OK) {
    st = sql_error(s->w, "preparing a purge", err, errlen);
  } else {
    while (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 1) < before_ms) {
      if (last >= 0 && max_events > 0 && events >= max_events) {
        *more = 1; /* this batch is expired too: the next step's */
        break;
      }
      last = sqlite3_column_int64(q, 0);
      if (first < 0) first = last;
      events += sqlite3_column_int64(q, 2);
    }
    sqlite3_finalize(q);
  }
  if (st == LW_OK && last >= 0) {
    /* Both ends of the step's id range, first's as a literal: with "id < ?1" alone SQLite's
     * planner (no statistics) took a covering index for the GROUP BYs and read every event of
     * the store in every step (README "Measured figures": retention_s_*); bounded on both
     * sides, the rowid range is the cheaper plan and a step reads its own events only. */
    char events_in[96], batches_in[96];
    snprintf(events_in, sizeof events_in, "id >= %lld AND id < ?1", (long long)first * EVENT_ID_STRIDE);
    snprintf(batches_in, sizeof batches_in, "id >= %lld AND id < ?1 / " SQL_NUM(EVENT_ID_STRIDE), (long long)first);
    char events_delete[128]; /* the very rows subtracted */
    snprintf(events_delete, sizeof events_delete, "DELETE FROM events WHERE %s", events_in);
    st = lw_sq_rollup_subtract(&s->ru, s->w, events_in, batches_in, NULL, NULL, (last + 1) * EVENT_ID_STRIDE, err,
                               errlen);
    if (st == LW_OK)
      st = delete_where(s, events_delete, NULL, (last + 1) * EVENT_ID_STRIDE, deleted, err, errlen);
    if (st == LW_OK)
      st = delete_where(s, "DELETE FROM batches WHERE id <= ?1", NULL, last, NULL, err, errlen);
    if (st == LW_OK) st = lw_sq_rollup_settle(&s->ru, s->w, err, errlen);
    if (st == LW_OK) s->purge_deleted = 1;
  }
  /* The pass's end: what leaves with the events, once (only if some step of it deleted any);
   * the console actions before the cut whatever was deleted (they come in no batch). */
  if (st == LW_OK && !*more && s->purge_deleted) st = purge_leftovers(s, before_ms, err, errlen);
  if (st == LW_OK && !*more)
    st = delete_where(s, "DELETE FROM console_actions WHERE at < ?1", NULL, before_ms, NULL, err, errlen);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing a purge", err, errlen);
  if (st != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    lw_sq_rollup_reset(&s->ru);
    *deleted = 0;
    *more = 0;
    return st;
  }
  if (*deleted) referral_touch_all(s);
  if (!*more) s->purge_deleted = 0;
  return LW_OK;
}

/* The whole pass, step after step (the tools' and tests' call; the writer steps itself). */
static lw_status sq_purge(lw_store *base, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  *deleted = 0;
  int more = 1;
  while (more) {
    int64_t n = 0;
    lw_status st = sq_purge_step(base, before_ms, LW_PURGE_STEP_EVENTS, &n, &more, err, errlen);
    if (st != LW_OK) return st;
    *deleted += n;
  }
  return LW_OK;
}

/* ---------------------------------------------------------------- reads */

/* A free read connection, or (all busy) the next one in turn, waited for. */
static reader *reader_take(sqlite_store *s) {
  unsigned start = atomic_fetch_add(&s->next_reader, 1);
  for (int i = 0; i < s->n_readers; i++) {
    reader *r = &s->readers[(start + (unsigned)i) % (unsigned)s->n_readers];
    if (pthread_mutex_trylock(&r->lock) == 0) return r;
  }
  reader *r = &s->readers[start % (unsigned)s->n_readers];
  pthread_mutex_lock(&r->lock);
  return r;
}

static void reader_give(reader *r) { pthread_mutex_unlock(&r->lock); }


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
    if (!lw_grow((void **)&out, &cap, n + 1, sizeof *out)) {
      free(out);
      sqlite3_finalize(st);
      snprintf(err, errlen, "out of memory reading stats");
      return LW_ERR_NOMEM;
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

/* Which of two code rows a bounded answer keeps first: more installs, then the smaller code. */
static int code_before(const lw_stats_row *a, const lw_stats_row *b) {
  return a->installs != b->installs ? a->installs > b->installs : strcmp(a->key, b->key) < 0;
}

static int code_order(const void *a, const void *b) {
  return strcmp(((const lw_stats_row *)a)->key, ((const lw_stats_row *)b)->key);
}

/* The codes breakdown within bounds. The rows stream out of the coded-events index in code
 * order, one group at a time, so SQLite holds one group; this keeps the best max_codes rows
 * in a fixed array (replacing its weakest) and counts the rest, so memory stays
 * O(max_codes) however many codes exist. */
static lw_status codes_bounded(sqlite3 *db, const char *site, const lw_stats_bounds *b, lw_stats *out,
                               char *err, size_t errlen) {
  char sql[sizeof kind_sums + 256];
  snprintf(sql, sizeof sql,
           "SELECT code, COUNT(DISTINCT install)%s FROM events WHERE site = ?1 AND code IS NOT NULL"
           " GROUP BY code",
           kind_sums);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return sql_error(db, "preparing stats", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  size_t cap = b->max_codes, n = 0, weakest = 0;
  lw_stats_row *rows = calloc(cap ? cap : 1, sizeof *rows), row;
  if (!rows) {
    sqlite3_finalize(st);
    snprintf(err, errlen, "out of memory reading stats");
    return LW_ERR_NOMEM;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    memset(&row, 0, sizeof row);
    row.installs = sqlite3_column_int64(st, 1);
    if (row.installs < b->min_installs) {
      out->codes_below_min++;
      continue;
    }
    const unsigned char *key = sqlite3_column_text(st, 0);
    snprintf(row.key, sizeof row.key, "%s", key ? (const char *)key : "");
    for (int k = 0; k < LW_KIND_COUNT; k++) row.counts[k] = sqlite3_column_int64(st, 2 + k);
    if (n < cap) {
      rows[n++] = row;
    } else {
      out->codes_left_out++;
      if (!code_before(&row, &rows[weakest])) continue;
      rows[weakest] = row;
    }
    if (n == cap) /* find the new weakest only when the array is full */
      for (size_t i = 0; i < n; i++)
        if (code_before(&rows[weakest], &rows[i])) weakest = i;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    free(rows);
    return sql_error(db, "reading stats", err, errlen);
  }
  qsort(rows, n, sizeof *rows, code_order);
  out->codes = rows;
  out->n_codes = n;
  return LW_OK;
}

/* The stats walked from every stored event: what the rollups must equal (lw_store_stats_walk). */
static lw_status sq_stats_walk(lw_store *base, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                               char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  memset(out, 0, sizeof *out);
  reader *rd = reader_take(s);
  /* One read transaction, so every number comes from the same snapshot. */
  lw_status st = exec(rd->db, "BEGIN", "starting a read", err, errlen);
  if (st == LW_OK)
    st = count(rd->db, "SELECT COUNT(*) FROM events WHERE site = ?1", site, &out->outcomes, err, errlen);
  if (st == LW_OK)
    st = count(rd->db, "SELECT COUNT(*) FROM batches WHERE site = ?1", site, &out->batches, err, errlen);
  if (st == LW_OK) st = breakdown(rd->db, "action", site, &out->variants, &out->n_variants, err, errlen);
  if (st == LW_OK) st = breakdown(rd->db, "segment", site, &out->segments, &out->n_segments, err, errlen);
  if (st == LW_OK && bounds && bounds->max_codes)
    st = codes_bounded(rd->db, site, bounds, out, err, errlen);
  else if (st == LW_OK)
    st = breakdown(rd->db, "code", site, &out->codes, &out->n_codes, err, errlen);
  sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
  reader_give(rd);
  if (st != LW_OK) lw_stats_clear(out);
  return st;
}

/* GET /v1/stats from the writer-kept rollups (schema 9): a few index lookups however many
 * events and codes the site has. */
static lw_status sq_stats(lw_store *base, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                          char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  memset(out, 0, sizeof *out);
  reader *rd = reader_take(s);
  lw_status st = exec(rd->db, "BEGIN", "starting a read", err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_stats(rd->db, site, bounds, out, err, errlen);
  sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
  reader_give(rd);
  if (st != LW_OK) lw_stats_clear(out);
  return st;
}

static lw_status sq_ping(lw_store *base, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  int64_t v;
  if (!s->p) { /* read-only: no ping connection */
    reader *rd = reader_take(s);
    lw_status st = count(rd->db, "SELECT COUNT(*) FROM batches WHERE site = ?1 AND 0", "", &v, err, errlen);
    reader_give(rd);
    return st;
  }
  pthread_mutex_lock(&s->plock);
  lw_status st = count(s->p, "SELECT COUNT(*) FROM batches WHERE site = ?1 AND 0", "", &v, err, errlen);
  pthread_mutex_unlock(&s->plock);
  return st;
}

/* ---------------------------------------------------------------- referrals
 * Both reads use the partial index on coded events (see the schema), so they touch only the
 * share, copy, landing and conversion rows of one code or one site, never the decisions.
 * Kind names come from loopwise/wire.h: the shared kinds written into the SQL, the referee
 * kinds bound as parameters. */

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

/* One statement with site, code and maybe install bound, answering one row of integers. */
static int referral_row(sqlite3 *db, const char *sql, const char *site, const char *code, const char *install,
                        int64_t *cols, int n) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
  if (install) sqlite3_bind_text(st, 3, install, -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(st) >= 5) {
    sqlite3_bind_text(st, 4, lw_kind_name(LW_KIND_CONVERSION), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, lw_kind_name(LW_KIND_LANDING), -1, SQLITE_STATIC);
  }
  rc = sqlite3_step(st);
  for (int i = 0; rc == SQLITE_ROW && i < n; i++) cols[i] = sqlite3_column_int64(st, i);
  sqlite3_finalize(st);
  return rc;
}


/* The owner check first (one index probe), and the counts only for the owner: any holder of
 * the public write key can ask for any code, and counting a code's landings costs a walk over
 * all its coded events (200,000 forged landings made each read ~50 ms). The counts are then
 * kept until a write touches the code (see referral_cached), so a referrer's widget polling,
 * or a flood of its reads, counts once per change, and every answer is as fresh as a count. */
static lw_status sq_referral(lw_store *base, const char *site, const char *code,
                             const char *install, lw_referral *out, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  memset(out, 0, sizeof *out);
  reader *rd = reader_take(s);
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(rd->db, "SELECT install FROM code_owners WHERE site = ?1 AND code = ?2", -1, &st,
                              NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const unsigned char *owner = sqlite3_column_text(st, 0);
      out->owner = owner && strcmp((const char *)owner, install) == 0 ? LW_OWNER_SELF : LW_OWNER_OTHER;
    } else if (rc == SQLITE_DONE) {
      out->owner = LW_OWNER_NONE;
      rc = SQLITE_ROW; /* nobody shared it yet: zero counts */
    }
    sqlite3_finalize(st);
  }
  if (rc == SQLITE_ROW && out->owner == LW_OWNER_SELF) {
    unsigned slot = referral_slot(site, code);
    pthread_mutex_lock(&s->refc_lock);
    referral_cached hit = s->refc[slot];
    uint64_t gen = s->refgen[slot], epoch = s->epoch; /* before the count's snapshot begins */
    pthread_mutex_unlock(&s->refc_lock);
    if (hit.gen == gen && hit.epoch == epoch && !strcmp(hit.site, site) &&
        !strcmp(hit.code, code)) {
      out->conversions = hit.conversions;
      out->landings = hit.landings;
    } else {
      int64_t counts[2] = {0, 0};
      rc = referral_row(rd->db,
                        "SELECT (SELECT COUNT(DISTINCT referee) " COUNTED_CONVERSIONS " AND code = ?2),"
                        " (SELECT COUNT(DISTINCT install) FROM events WHERE site = ?1 AND code = ?2 AND kind = ?5)",
                        site, code, NULL, counts, 2);
      if (rc == SQLITE_ROW) {
        out->conversions = counts[0];
        out->landings = counts[1];
        referral_cached c = {{0}, {0}, counts[0], counts[1], gen, epoch};
        snprintf(c.site, sizeof c.site, "%s", site);
        snprintf(c.code, sizeof c.code, "%s", code);
        pthread_mutex_lock(&s->refc_lock);
        s->refc[slot] = c;
        pthread_mutex_unlock(&s->refc_lock);
      }
    }
  }
  lw_status ret = rc == SQLITE_ROW ? LW_OK : sql_error(rd->db, "reading a referral", err, errlen);
  reader_give(rd);
  return ret;
}

static lw_status sq_attributions(lw_store *base, const char *site, int64_t since_ms,
                                 lw_attribution **rows, size_t *n_rows, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  reader *rd = reader_take(s);
  int rc = sqlite3_prepare_v2(
      rd->db,
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
    ret = sql_error(rd->db, "reading attributions", err, errlen);
  }
  reader_give(rd);
  if (ret != LW_OK) {
    free(out);
    return ret;
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

static void ckpt_stop(sqlite_store *s);

static void sq_close(lw_store *base) {
  sqlite_store *s = (sqlite_store *)base;
  ckpt_stop(s);
  sqlite3_close(s->ck);
  sqlite3_finalize(s->ins_batch);
  for (int k = 1; k <= EVENT_ROWS_MAX; k++) sqlite3_finalize(s->ins_events[k]);
  sqlite3_finalize(s->sel_owner);
  sqlite3_finalize(s->ins_owner);
  sqlite3_finalize(s->ins_flag);
  sqlite3_finalize(s->fix_count);
  lw_sq_rollup_finalize(&s->ru);
  free(s->kept);
  for (int i = 0; i < READERS_MAX; i++) {
    sqlite3_close(s->readers[i].db);
    pthread_mutex_destroy(&s->readers[i].lock);
  }
  sqlite3_close(s->p);
  pthread_mutex_destroy(&s->plock);
  pthread_mutex_destroy(&s->refc_lock);
  pthread_mutex_destroy(&s->ck_lock);
  pthread_mutex_destroy(&s->ck_run);
  pthread_cond_destroy(&s->ck_wake);
  /* Closing the last connection checkpoints the WAL into the database and removes it. */
  sqlite3_close(s->w);
  free(s);
}

/* ---------------------------------------------------------------- reading decisions
 * The events table has no index on decision ids (the writer would pay for it on every row), so
 * a cursor first puts the ids of the site's shared decisions into an indexed temporary table
 * (the temp database, which a read-only connection may write); the join is then one lookup
 * per decision. */

/* The referee join (schema 7) the same way: lw_tok maps each share token to its decision and
 * code; lw_join gives each shared decision its join (1 token, 2 code: LW_JOIN_*) and the key its
 * outcomes are filed under (its decision id, or "code:" and the code); lw_rx holds one row per
 * outcome under its key (what: the landing kind or a referee event; who: the install or the
 * referee hash; at: the server's receive time), which the main query counts per decision within
 * its window. Conversions rejected under the integrity rules bring nothing; the later events
 * come with their conversion's token (lw_store_referee). ?1 the site, ?2 the landing kind. */
static const char k_shared_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS lw_shared2(decision TEXT PRIMARY KEY, channel TEXT) WITHOUT ROWID;"
    "DELETE FROM temp.lw_shared2;"
    "INSERT OR IGNORE INTO temp.lw_shared2 SELECT decision, channel FROM main.events"
    "  WHERE site = ?1 AND kind IN (%1$s) AND decision IS NOT NULL ORDER BY id;"
    "CREATE TEMP TABLE IF NOT EXISTS lw_tok(token TEXT PRIMARY KEY, code TEXT, decision TEXT) WITHOUT ROWID;"
    "DELETE FROM temp.lw_tok;"
    "INSERT OR IGNORE INTO temp.lw_tok SELECT token, code, decision FROM main.events"
    "  WHERE site = ?1 AND token IS NOT NULL AND kind IN (%1$s) AND decision IS NOT NULL ORDER BY id;"
    "CREATE TEMP TABLE IF NOT EXISTS lw_join(decision TEXT PRIMARY KEY, how INTEGER, key TEXT, n INTEGER)"
    "  WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS temp.lw_join_key ON lw_join(key);"
    "DELETE FROM temp.lw_join;"
    "INSERT OR IGNORE INTO temp.lw_join SELECT decision, 1, decision, 1 FROM temp.lw_tok;"
    "INSERT OR IGNORE INTO temp.lw_join SELECT decision, 2, 'code:' || code, 0 FROM main.events"
    "  WHERE site = ?1 AND code IS NOT NULL AND token IS NULL AND kind IN (%1$s) AND decision IS NOT NULL"
    "  ORDER BY id;"
    "UPDATE temp.lw_join SET n = (SELECT count(*) FROM temp.lw_join j WHERE j.key = lw_join.key) WHERE how = 2;"
    "CREATE TEMP TABLE IF NOT EXISTS lw_rx(key TEXT, what TEXT, who BLOB, value REAL, at INTEGER);"
    "CREATE INDEX IF NOT EXISTS temp.lw_rx_key ON lw_rx(key, what, at);"
    "DELETE FROM temp.lw_rx;"
    "INSERT INTO temp.lw_rx SELECT t.decision, l.kind, l.install, NULL, b.received_at"
    "  FROM main.events l JOIN temp.lw_tok t ON t.token = l.token AND t.code = l.code"
    "  JOIN main.batches b ON b.id = l.batch WHERE l.site = ?1 AND l.token IS NOT NULL AND l.kind = ?2;"
    "INSERT INTO temp.lw_rx SELECT 'code:' || l.code, l.kind, l.install, NULL, b.received_at"
    "  FROM main.events l JOIN main.batches b ON b.id = l.batch"
    "  WHERE l.site = ?1 AND l.code IS NOT NULL AND l.kind = ?2 AND l.token IS NULL"
    "  AND 'code:' || l.code IN (SELECT key FROM temp.lw_join WHERE how = 2);"
    "INSERT INTO temp.lw_rx SELECT coalesce(t.decision, 'code:' || r.code), r.event, r.referee, r.value,"
    "  r.received_at FROM main.referees r JOIN main.referees c ON c.site = r.site AND c.code = r.code"
    "  AND c.referee = r.referee AND c.event = 'conversion' AND c.state <> 'rejected'"
    "  LEFT JOIN temp.lw_tok t ON t.token = c.token AND t.code = c.code"
    "  WHERE r.site = ?1 AND (t.decision IS NOT NULL OR c.token IS NULL);";

/* Whether the decision's install is flagged (schema 6's flags: a forged share, a self-referral,
 * a flagged or rejected conversion of its codes). */
#define FLAGGED " EXISTS(SELECT 1 FROM main.flags f WHERE f.site = ?1 AND f.kind = 'install' AND f.value = d.install)"

/* One outcome count of the decision's key within its window (?6: the window in ms, 0 none). */
#define WINDOW_FROM "coalesce(d.received_at, d.t)"
#define RX(agg, what)                                                                           \
  ", (SELECT " agg " FROM temp.lw_rx x WHERE x.key = j.key AND x.what = " what                  \
  " AND (?6 = 0 OR x.at <= " WINDOW_FROM " + ?6))"

static const char k_decisions_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, s.decision IS NOT NULL, 0," FLAGGED
    ", d.decision, " WINDOW_FROM ", coalesce(j.how, 0), coalesce(j.n, 0)"
    RX("count(DISTINCT who)", "?7") RX("count(DISTINCT who)", "'conversion'")
    RX("count(DISTINCT who)", "'retained_30'") RX("count(DISTINCT who)", "'retained_90'")
    RX("count(DISTINCT who)", "'churned'") RX("total(value)", "'conversion'") RX("total(value)", "'revenue'")
    ", (SELECT max(at) FROM temp.lw_rx x WHERE x.key = j.key AND (?6 = 0 OR x.at <= " WINDOW_FROM " + ?6))"
    ", s.channel" /* the channel of the decision's first share or copy (v2), NULL before v2 */
    " FROM main.events d LEFT JOIN temp.lw_shared2 s ON s.decision = d.decision"
    " LEFT JOIN temp.lw_join j ON j.decision = d.decision"
    " WHERE d.site = ?1 AND d.kind = ?4 AND d.t >= ?2 AND d.t < ?3 ORDER BY d.id";

/* The shared decisions alone (lw_store_shared_decisions): the same columns from the shared ones
 * (temp.lw_shared2) and their decision rows through events_decisions. */
static const char k_shared_decisions_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, 1, 0," FLAGGED
    ", d.decision, " WINDOW_FROM ", coalesce(j.how, 0), coalesce(j.n, 0)"
    RX("count(DISTINCT who)", "?7") RX("count(DISTINCT who)", "'conversion'")
    RX("count(DISTINCT who)", "'retained_30'") RX("count(DISTINCT who)", "'retained_90'")
    RX("count(DISTINCT who)", "'churned'") RX("total(value)", "'conversion'") RX("total(value)", "'revenue'")
    ", (SELECT max(at) FROM temp.lw_rx x WHERE x.key = j.key AND (?6 = 0 OR x.at <= " WINDOW_FROM " + ?6))"
    ", s.channel"
    " FROM temp.lw_shared2 s CROSS JOIN main.events d ON d.site = ?1 AND d.decision = s.decision AND d.kind = 'decision'"
    " LEFT JOIN temp.lw_join j ON j.decision = d.decision"
    " WHERE d.kind = ?4 AND d.t >= ?2 AND d.t < ?3 ORDER BY d.id";

/* Conversions whose code an install shared (codes are per install), with that install's
 * latest decision. */
static const char k_referrers_sql[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, 0, c.n," FLAGGED ", d.decision FROM"
    " (SELECT sh.install AS install, count(*) AS n FROM"
    "   (SELECT DISTINCT install, code FROM events WHERE site = ?1 AND kind IN (%s)"
    "    AND code IS NOT NULL) sh JOIN events cv ON cv.site = ?1 AND cv.kind = ?5"
    "    AND cv.code = sh.code AND cv.t >= ?2 AND cv.t < ?3 GROUP BY sh.install) c"
    " JOIN events d ON d.id = (SELECT max(id) FROM events WHERE site = ?1 AND install = c.install"
    "  AND kind = ?4) ORDER BY d.id";

typedef struct {
  lw_store_cursor base;
  sqlite_store *s;
  reader *rd;
  sqlite3_stmt *st;
} sqlite_cursor;

/* Kind names come from loopwise/wire.h: ?4 is the decision kind, ?5 the conversion kind, ?7 the
 * landing kind (?6 the attribution window in ms), and
 * the shared kinds (LW_KIND_F_SHARED) are written into the SQL as a quoted list. */
static void bind_range(sqlite3_stmt *st, const lw_store_range *r, int attribution_days) {
  sqlite3_bind_text(st, 1, r->site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, r->from_ms);
  sqlite3_bind_int64(st, 3, r->to_ms > 0 ? r->to_ms : INT64_MAX);
  if (sqlite3_bind_parameter_count(st) >= 4) sqlite3_bind_text(st, 4, lw_kind_name(LW_KIND_DECISION), -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(st) >= 5)
    sqlite3_bind_text(st, 5, lw_kind_name(LW_KIND_CONVERSION), -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(st) >= 6)
    sqlite3_bind_int64(st, 6, (int64_t)(attribution_days > 0 ? attribution_days : 0) * 24 * 3600 * 1000);
  if (sqlite3_bind_parameter_count(st) >= 7) sqlite3_bind_text(st, 7, lw_kind_name(LW_KIND_LANDING), -1, SQLITE_STATIC);
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
    snprintf(err, errlen, "reading decisions: %s", sqlite3_errmsg(c->rd->db));
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
       lw_sq_x_decode(sqlite3_column_blob(st, 6), (size_t)sqlite3_column_bytes(st, 6), d->x, &d->n_x) < 0)) {
    snprintf(err, errlen, "row %llu: x is not a list of at most %d (hash, value) pairs",
             (unsigned long long)d->id, LW_X_PAIRS);
    return -1;
  }
  d->shared = sqlite3_column_int(st, 7);
  d->conversions = sqlite3_column_int64(st, 8);
  d->flagged = sqlite3_column_int(st, 9);
  copy_col(st, 10, d->decision, sizeof d->decision);
  memset(&d->outcomes, 0, sizeof d->outcomes);
  d->window_from = d->t;
  if (sqlite3_column_count(st) > 11) {
    lw_referee_outcomes *o = &d->outcomes;
    d->window_from = sqlite3_column_int64(st, 11);
    o->join = (lw_join)sqlite3_column_int(st, 12);
    o->code_decisions = sqlite3_column_int64(st, 13);
    o->landings = sqlite3_column_int64(st, 14);
    o->conversions = sqlite3_column_int64(st, 15);
    o->retained_30 = sqlite3_column_int64(st, 16);
    o->retained_90 = sqlite3_column_int64(st, 17);
    o->churned = sqlite3_column_int64(st, 18);
    o->conversion_value = sqlite3_column_double(st, 19);
    o->revenue = sqlite3_column_double(st, 20);
    o->last_at = sqlite3_column_int64(st, 21);
  }
  d->channel[0] = '\0';
  if (sqlite3_column_count(st) > 22) copy_col(st, 22, d->channel, sizeof d->channel);
  return 1;
}

static void cur_free(lw_store_cursor *base) {
  sqlite_cursor *c = (sqlite_cursor *)base;
  sqlite3_finalize(c->st);
  reader_give(c->rd);
  free(c);
}

/* which: 0 decisions, 1 referrers, 2 the shared decisions alone. */
static lw_status open_cursor(lw_store *base, const lw_store_range *r, int which, int attribution_days,
                             lw_store_cursor **out, char *err, size_t errlen) {
  int referrers = which == 1;
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
  c->rd = reader_take(s); /* held until the cursor is freed */
  char shared_sql[4096], main_sql[4096];
  with_shared_kinds(k_shared_sql, shared_sql, sizeof shared_sql);
  with_shared_kinds(referrers ? k_referrers_sql : which == 2 ? k_shared_decisions_sql : k_decisions_sql, main_sql,
                    sizeof main_sql);
  const char *sql = shared_sql;
  while (sql && *sql) {
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(c->rd->db, sql, -1, &st, &tail);
    if (rc == SQLITE_OK && st) {
      if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_text(st, 1, r->site, -1, SQLITE_STATIC);
      if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_text(st, 2, lw_kind_name(LW_KIND_LANDING), -1, SQLITE_STATIC);
      rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
      snprintf(err, errlen, "collecting shared decisions: %s", sqlite3_errmsg(c->rd->db));
      cur_free(&c->base);
      return LW_ERR_IO;
    }
    sql = tail;
  }
  if (sqlite3_prepare_v2(c->rd->db, main_sql, -1, &c->st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "reading decisions: %s", sqlite3_errmsg(c->rd->db));
    cur_free(&c->base);
    return LW_ERR_IO;
  }
  bind_range(c->st, r, attribution_days);
  *out = &c->base;
  return LW_OK;
}

static lw_status sq_decisions(lw_store *base, const lw_store_range *r, int referrers, int attribution_days,
                              lw_store_cursor **out, char *err, size_t errlen) {
  return open_cursor(base, r, referrers ? 1 : 0, attribution_days, out, err, errlen);
}

static lw_status sq_shared_decisions(lw_store *base, const lw_store_range *r, lw_store_cursor **out, char *err,
                                     size_t errlen) {
  return open_cursor(base, r, 2, 0, out, err, errlen);
}

static lw_status sq_funnel_days(lw_store *base, const char *site, lw_funnel_day **rows, size_t *n, char *err,
                                size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  reader *rd = reader_take(s);
  lw_status st = lw_sq_rollup_days(rd->db, site, rows, n, err, errlen);
  reader_give(rd);
  return st;
}

static lw_status sq_funnel_outcomes(lw_store *base, const char *site, lw_funnel_day **days, size_t *n_days,
                                    lw_funnel_value **values, size_t *n_values, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  reader *rd = reader_take(s);
  lw_status st = exec(rd->db, "BEGIN", "starting a read", err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_days(rd->db, site, days, n_days, err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_values(rd->db, site, values, n_values, err, errlen);
  sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
  reader_give(rd);
  if (st != LW_OK) {
    free(*days);
    free(*values);
    *days = NULL, *values = NULL, *n_days = *n_values = 0;
  }
  return st;
}

static lw_status sq_funnel_channels(lw_store *base, const char *site, lw_funnel_channel **rows, size_t *n, char *err,
                                    size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  reader *rd = reader_take(s);
  lw_status st = lw_sq_rollup_channels(rd->db, site, rows, n, err, errlen);
  reader_give(rd);
  return st;
}

static lw_status sq_fairness(lw_store *base, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                             char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  reader *rd = reader_take(s);
  lw_status st = exec(rd->db, "BEGIN", "starting a read", err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_fairness(rd->db, site, spec, out, err, errlen);
  sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
  reader_give(rd);
  return st;
}

/* The writer's: the fairness spec in force, recomputed in one transaction when it changes. */
static lw_status sq_set_fairness(lw_store *base, const lw_fairness_spec *spec, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  lw_sq_fair before = s->ru.fair;
  int changed = 0;
  lw_status st = exec(s->w, "BEGIN IMMEDIATE", "starting a write", err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_set_fairness(&s->ru, s->w, spec, &changed, err, errlen);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing the fairness segments", err, errlen);
  if (st != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    s->ru.fair = before;
  }
  return st;
}

static lw_status sq_count_decisions(lw_store *base, const lw_store_range *r, uint64_t *n, char *err,
                                    size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *n = 0;
  reader *rd = reader_take(s);
  int rc = sqlite3_prepare_v2(rd->db,
                              "SELECT count(*) FROM events WHERE site = ?1 AND kind = ?4"
                              " AND t >= ?2 AND t < ?3",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    bind_range(st, r, 0);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_ROW) snprintf(err, errlen, "counting decisions: %s", sqlite3_errmsg(rd->db));
  reader_give(rd);
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

/* A later event (not a conversion) joins to the referee's conversion with the same code: none
 * stored yet refuses it (the host reports the conversion first, or again later), a token other
 * than the conversion's refuses it too. *token gets the conversion's token (NULL: none), which
 * the later event takes, so every report of a referee joins to the same share. */
static lw_status later_event(sqlite_store *s, lw_referee_report *r, char *token, size_t cap, int *has_token,
                             char *err, size_t errlen) {
  sqlite3_stmt *q;
  *has_token = 0;
  lw_status st = prep(s->w,
                      "SELECT token FROM referees WHERE site = ?1 AND code = ?2 AND referee = ?3"
                      " AND event = 'conversion'",
                      &q, err, errlen);
  if (st != LW_OK) return st;
  sqlite3_bind_text(q, 1, r->site, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 2, r->code, -1, SQLITE_STATIC);
  sqlite3_bind_blob(q, 3, r->referee, LW_REFEREE_HASH_LEN, SQLITE_STATIC);
  int rc = sqlite3_step(q);
  if (rc == SQLITE_DONE) {
    r->refused = 1;
    snprintf(r->refused_field, sizeof r->refused_field, "event");
    snprintf(r->refused_msg, sizeof r->refused_msg,
             "no conversion of this referee with this code is stored yet: report the conversion first");
  } else if (rc == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(q, 0);
    if (t) {
      *has_token = 1;
      snprintf(token, cap, "%s", (const char *)t);
    }
    if (t && r->token && strcmp((const char *)t, r->token) != 0) {
      r->refused = 1;
      snprintf(r->refused_field, sizeof r->refused_field, "token");
      snprintf(r->refused_msg, sizeof r->refused_msg, "not the token of this referee's conversion");
    }
  } else {
    st = sql_error(s->w, "reading a referee's conversion", err, errlen);
  }
  sqlite3_finalize(q);
  return st;
}

static lw_status sq_referee(lw_store *base, lw_referee_report *r, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  char token[LW_TOKEN_LEN + 1];
  int has_token = r->token && r->token[0];
  if (has_token) snprintf(token, sizeof token, "%s", r->token);
  r->duplicate = 0;
  r->refused = 0;
  r->refused_field[0] = r->refused_msg[0] = '\0';
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
  if (strcmp(r->event, "conversion") != 0) {
    if ((st = later_event(s, r, token, sizeof token, &has_token, err, errlen)) != LW_OK || r->refused) goto done;
  }
  if ((st = judge(s, r, err, errlen)) != LW_OK) goto done;
  if ((st = prep(s->w,
                 "INSERT INTO referees(site, code, referee, event, at, received_at, value, state, reason,"
                 " counted_at, token) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, nullif(?9, ''), ?10, ?11)",
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
  if (has_token)
    sqlite3_bind_text(q, 11, token, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(q, 11);
  if (sqlite3_step(q) != SQLITE_DONE) {
    st = sql_error(s->w, "storing a referee", err, errlen);
    goto done;
  }
  r->id = sqlite3_last_insert_rowid(s->w);
  if (r->reason[0]) st = flag_code(s, r->site, r->code, r->reason, r->received_ms, err, errlen);
  /* the console's funnel: the decisions whose shares carry the code */
  if (st == LW_OK) st = lw_sq_rollup_mark(&s->ru, s->w, r->site, NULL, r->code, err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_settle(&s->ru, s->w, err, errlen);
done:
  sqlite3_finalize(q);
  if (st == LW_OK) st = exec(s->w, "COMMIT", "committing a referee report", err, errlen);
  if (st == LW_OK) referral_touch_code(s, r->site, r->code);
  if (st != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    lw_sq_rollup_reset(&s->ru);
  }
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

/* One console action (store.h "console actions") on the writer, inside the caller's transaction. */
static lw_status record_action(sqlite_store *s, const char *site, lw_action a, const char *who, int64_t at,
                               int64_t ref, char *err, size_t errlen) {
  sqlite3_stmt *st;
  lw_status ret = prep(s->w,
                       "INSERT INTO console_actions(site, at, who, action, target, ref) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                       &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, at);
  sqlite3_bind_text(st, 3, who && who[0] ? who : "?", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, lw_action_name(a), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, lw_action_target(a), -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, ref);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? LW_OK : sql_error(s->w, "recording a console action", err, errlen);
}

static lw_status sq_review(lw_store *base, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *result = 1;
  /* The state change, who made it and what it does to the console's funnel (a rejected
   * conversion brings nothing) in one transaction. */
  lw_status ret = exec(s->w, "BEGIN IMMEDIATE", "starting a review", err, errlen);
  if (ret != LW_OK) return ret;
  ret = prep(s->w,
             "UPDATE referees SET state = ?3, counted_at = CASE WHEN ?4 THEN ?5 END"
             " WHERE site = ?1 AND id = ?2 AND state = 'flagged'",
             &st, err, errlen);
  if (ret != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    return ret;
  }
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  sqlite3_bind_text(st, 3, approve ? "approved" : "rejected", -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, approve);
  sqlite3_bind_int64(st, 5, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  int changed = rc == SQLITE_DONE && sqlite3_changes(s->w) == 1;
  if (rc != SQLITE_DONE) ret = sql_error(s->w, "reviewing", err, errlen);
  if (ret == LW_OK && changed)
    ret = record_action(s, site, approve ? LW_ACTION_APPROVE : LW_ACTION_REJECT, who, now_ms, id, err, errlen);
  if (ret == LW_OK && changed) ret = lw_sq_rollup_mark_report(&s->ru, s->w, id, err, errlen);
  if (ret == LW_OK && changed) ret = lw_sq_rollup_settle(&s->ru, s->w, err, errlen);
  if (ret == LW_OK) ret = exec(s->w, "COMMIT", "committing a review", err, errlen);
  if (ret != LW_OK) {
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    lw_sq_rollup_reset(&s->ru);
    return ret;
  }
  if (changed) {
    referral_touch_all(s); /* the review's code is not at hand; reviews are rare */
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
  reader *rd = reader_take(s);
  int rc = sqlite3_prepare_v2(rd->db,
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
    ret = sql_error(rd->db, "reading reviews", err, errlen);
  }
  reader_give(rd);
  if (ret != LW_OK) {
    free(out);
    return ret;
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

/* ---------------------------------------------------------------- approval requests */

/* The columns every approval read selects, the state as of ?now with ?days of validity. */
#define APPROVAL_COLS                                                                             \
  "SELECT id, decision, install, action, coalesce(segment, ''), reason, attrs, t, received_at,"  \
  " CASE WHEN received_at + ?3 * 86400000 <= ?2 THEN 'expired' ELSE state END,"                   \
  " coalesce(answered_by, ''), coalesce(answered_at, 0), coalesce(device_answer, ''),"            \
  " coalesce(device_at, 0), received_at + ?3 * 86400000 FROM approvals "

static lw_status read_approvals(sqlite_store *s, const char *sql, const char *site, const char *install,
                                const char *hash, int64_t now_ms, int days, size_t max, lw_approval **rows,
                                size_t *n_rows, char *err, size_t errlen) {
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  reader *rd = reader_take(s);
  int rc = sqlite3_prepare_v2(rd->db, sql, -1, &st, NULL);
  lw_approval *out = max ? calloc(max, sizeof *out) : NULL;
  size_t n = 0;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, days);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    if (install) sqlite3_bind_text(st, 5, install, -1, SQLITE_STATIC);
    if (hash) sqlite3_bind_text(st, 6, hash, -1, SQLITE_STATIC);
    while (out && n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      lw_approval *a = &out[n++];
      a->id = sqlite3_column_int64(st, 0);
      copy_col(st, 1, a->decision, sizeof a->decision);
      copy_col(st, 2, a->install, sizeof a->install);
      copy_col(st, 3, a->action, sizeof a->action);
      copy_col(st, 4, a->segment, sizeof a->segment);
      copy_col(st, 5, a->reason, sizeof a->reason);
      copy_col(st, 6, a->attrs, sizeof a->attrs);
      a->t = sqlite3_column_int64(st, 7);
      a->received_at = sqlite3_column_int64(st, 8);
      copy_col(st, 9, a->state, sizeof a->state);
      copy_col(st, 10, a->answered_by, sizeof a->answered_by);
      a->answered_at = sqlite3_column_int64(st, 11);
      copy_col(st, 12, a->device_answer, sizeof a->device_answer);
      a->device_at = sqlite3_column_int64(st, 13);
      a->expires_at = sqlite3_column_int64(st, 14);
    }
    sqlite3_finalize(st);
  }
  lw_status ret = LW_OK;
  if (max && !out) {
    snprintf(err, errlen, "out of memory reading approval requests");
    ret = LW_ERR_NOMEM;
  } else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    ret = sql_error(rd->db, "reading approval requests", err, errlen);
  }
  reader_give(rd);
  if (ret != LW_OK) {
    free(out);
    return ret;
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

static lw_status sq_approvals(lw_store *base, const char *site, int64_t now_ms, int days, size_t max,
                              lw_approval **rows, size_t *n, char *err, size_t errlen) {
  return read_approvals((sqlite_store *)base, APPROVAL_COLS "WHERE site = ?1 ORDER BY id DESC LIMIT ?4", site,
                        NULL, NULL, now_ms, days, max, rows, n, err, errlen);
}

static lw_status sq_approval_check(lw_store *base, const char *site, const char *install, const char *hash,
                                   int64_t now_ms, int days, size_t max, lw_approval **rows, size_t *n,
                                   char *err, size_t errlen) {
  return read_approvals((sqlite_store *)base,
                        APPROVAL_COLS "WHERE site = ?1 AND install = ?5 AND key_hash = ?6 ORDER BY id DESC LIMIT ?4",
                        site, install, hash, now_ms, days, max, rows, n, err, errlen);
}

static lw_status approval_answer(sqlite_store *s, const char *site, int64_t id, int approve, const char *who,
                                 int64_t now_ms, int days, int *result, char *err, size_t errlen) {
  sqlite3_stmt *st;
  lw_status ret = prep(s->w,
                       "SELECT state, received_at + ?3 * 86400000 <= ?2 FROM approvals WHERE site = ?1 AND id = ?4",
                       &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now_ms);
  sqlite3_bind_int64(st, 3, days);
  sqlite3_bind_int64(st, 4, id);
  int rc = sqlite3_step(st);
  *result = rc != SQLITE_ROW ? 1
            : sqlite3_column_int(st, 1) ? 3
            : strcmp((const char *)sqlite3_column_text(st, 0), "pending") ? 2 : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_error(s->w, "answering an approval request", err, errlen);
  if (*result) return LW_OK;
  if ((ret = prep(s->w,
                  "UPDATE approvals SET state = ?2, answered_by = ?3, answered_at = ?4"
                  " WHERE site = ?1 AND id = ?5 AND state = 'pending'",
                  &st, err, errlen)) != LW_OK)
    return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, lw_answer_name(approve ? LW_ANSWER_APPROVED : LW_ANSWER_DECLINED), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, who, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now_ms);
  sqlite3_bind_int64(st, 5, id);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "answering an approval request", err, errlen);
  return record_action(s, site, approve ? LW_ACTION_APPROVE_REQUEST : LW_ACTION_DECLINE_REQUEST, who, now_ms, id,
                       err, errlen);
}

/* The answer and its console action in one transaction (BEGIN IMMEDIATE: another process on the
 * file cannot answer between the read and the UPDATE). */
static lw_status sq_approval_answer(lw_store *base, const char *site, int64_t id, int approve, const char *who,
                                    int64_t now_ms, int days, int *result, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  lw_status ret = exec(s->w, "BEGIN IMMEDIATE", "starting an approval answer", err, errlen);
  if (ret != LW_OK) return ret;
  ret = approval_answer(s, site, id, approve, who, now_ms, days, result, err, errlen);
  if (ret == LW_OK) ret = exec(s->w, "COMMIT", "committing an approval answer", err, errlen);
  if (ret != LW_OK) sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
  return ret;
}

/* ---------------------------------------------------------------- webhook deliveries */

static lw_status sq_deliveries_enqueue(lw_store *base, const char *site, int64_t now_ms,
                                       int64_t *added, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *added = 0;
  lw_status ret = prep(s->w,
      "INSERT OR IGNORE INTO deliveries(site, report, idempotency_key, body, state, created_at, next_at)"
      " SELECT site, id, site || ':' || id,"
      "  json_object('id', site || ':' || id, 'type', 'conversion', 'site', site, 'code', code,"
      "              'report', id, 'at', at, 'counted_at', counted_at, 'value', value),"
      "  'pending', ?2, ?2 FROM referees r"
      " WHERE site = ?1 AND event = 'conversion' AND state IN ('counted', 'approved')"
      "  AND NOT EXISTS(SELECT 1 FROM deliveries d WHERE d.idempotency_key = r.site || ':' || r.id)",
      &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "adding deliveries", err, errlen);
  *added = sqlite3_changes(s->w);
  return LW_OK;
}

static void delivery_row(sqlite3_stmt *st, lw_delivery *d) {
  d->id = sqlite3_column_int64(st, 0);
  d->report = sqlite3_column_int64(st, 1);
  copy_col(st, 2, d->key, sizeof d->key);
  copy_col(st, 3, d->state, sizeof d->state);
  d->attempts = sqlite3_column_int64(st, 4);
  d->created_at = sqlite3_column_int64(st, 5);
  d->next_at = sqlite3_column_int64(st, 6);
  d->delivered_at = sqlite3_column_int64(st, 7);
  d->last_status = sqlite3_column_int64(st, 8);
  copy_col(st, 9, d->last_error, sizeof d->last_error);
}
#define DELIVERY_COLS "id, report, idempotency_key, state, attempts, created_at, next_at," \
                      " coalesce(delivered_at, 0), last_status, coalesce(last_error, '')"

/* One statement, so the claim is atomic across processes sharing the file. */
static lw_status sq_delivery_claim(lw_store *base, const char *site, const char *owner, int64_t now_ms,
                                   int64_t lease_ms, lw_delivery *out, int *found, char *err,
                                   size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  *found = 0;
  memset(out, 0, sizeof *out);
  lw_status ret = prep(s->w,
      "UPDATE deliveries SET lease_owner = ?2, lease_until = ?3 + ?4, attempts = attempts + 1"
      " WHERE id = (SELECT id FROM deliveries WHERE site = ?1 AND state = 'pending'"
      "  AND next_at <= ?3 AND lease_until <= ?3 ORDER BY next_at, id LIMIT 1)"
      " RETURNING " DELIVERY_COLS ", body",
      &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now_ms);
  sqlite3_bind_int64(st, 4, lease_ms);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    delivery_row(st, out);
    const char *body = (const char *)sqlite3_column_text(st, 10);
    size_t blen = body ? strlen(body) : 0;
    if ((out->body = malloc(blen + 1))) {
      memcpy(out->body, body ? body : "", blen);
      out->body[blen] = '\0';
    }
    rc = out->body ? sqlite3_step(st) : SQLITE_NOMEM;
    *found = out->body != NULL;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    free(out->body);
    out->body = NULL;
    *found = 0;
    return sql_error(s->w, "claiming a delivery", err, errlen);
  }
  return LW_OK;
}

static lw_status sq_delivery_finish(lw_store *base, int64_t id, const char *owner, const char *state,
                                    int64_t next_at, int64_t status, const char *error, int64_t now_ms,
                                    int *kept, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  sqlite3_stmt *st;
  lw_status ret = prep(s->w,
      "UPDATE deliveries SET state = ?3, next_at = ?4, lease_owner = NULL, lease_until = 0,"
      " last_status = ?5, last_error = ?6,"
      " delivered_at = CASE WHEN ?3 = 'delivered' THEN ?7 END"
      " WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
      &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, next_at);
  sqlite3_bind_int64(st, 5, status);
  sqlite3_bind_text(st, 6, error && error[0] ? error : NULL, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "recording a delivery", err, errlen);
  *kept = sqlite3_changes(s->w) == 1;
  return LW_OK;
}

static lw_status delivery_resend(sqlite_store *s, const char *site, int64_t id, const char *who, int64_t now_ms,
                                 int *result, char *err, size_t errlen) {
  sqlite3_stmt *st;
  lw_status ret = prep(s->w,
      "UPDATE deliveries SET state = 'pending', next_at = ?3, created_at = ?3, attempts = 0,"
      " lease_until = 0, lease_owner = NULL WHERE site = ?1 AND id = ?2 AND state = 'failed'",
      &st, err, errlen);
  if (ret != LW_OK) return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  sqlite3_bind_int64(st, 3, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(s->w, "resending a delivery", err, errlen);
  *result = 0;
  if (sqlite3_changes(s->w) == 1) return record_action(s, site, LW_ACTION_RESEND, who, now_ms, id, err, errlen);
  if ((ret = prep(s->w, "SELECT 1 FROM deliveries WHERE site = ?1 AND id = ?2", &st, err, errlen)) != LW_OK)
    return ret;
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  *result = rc == SQLITE_ROW ? 2 : 1;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? LW_OK : sql_error(s->w, "resending a delivery", err, errlen);
}

/* The resend and its console action in one transaction. */
static lw_status sq_delivery_resend(lw_store *base, const char *site, int64_t id, const char *who, int64_t now_ms,
                                    int *result, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  lw_status ret = exec(s->w, "BEGIN IMMEDIATE", "starting a resend", err, errlen);
  if (ret != LW_OK) return ret;
  ret = delivery_resend(s, site, id, who, now_ms, result, err, errlen);
  if (ret == LW_OK) ret = exec(s->w, "COMMIT", "committing a resend", err, errlen);
  if (ret != LW_OK) sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
  return ret;
}

static lw_status sq_deliveries(lw_store *base, const char *site, size_t max, lw_delivery **rows,
                               size_t *n_rows, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  reader *rd = reader_take(s);
  /* who sent it again last, and when: its latest resend in console_actions (one index lookup) */
#define LAST_RESEND(col)                                                                              \
  "coalesce((SELECT a." col " FROM console_actions a WHERE a.site = deliveries.site AND a.target = ?3" \
  " AND a.ref = deliveries.id AND a.action = ?4 ORDER BY a.id DESC LIMIT 1), '')"
  int rc = sqlite3_prepare_v2(rd->db,
                              "SELECT " DELIVERY_COLS ", " LAST_RESEND("who") ", " LAST_RESEND("at")
                              " FROM deliveries WHERE site = ?1 ORDER BY id DESC LIMIT ?2", -1, &st, NULL);
#undef LAST_RESEND
  lw_delivery *out = max ? calloc(max, sizeof *out) : NULL;
  size_t n = 0;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    sqlite3_bind_text(st, 3, lw_action_target(LW_ACTION_RESEND), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, lw_action_name(LW_ACTION_RESEND), -1, SQLITE_STATIC);
    while (out && n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      delivery_row(st, &out[n]);
      copy_col(st, 10, out[n].resent_by, sizeof out[n].resent_by);
      out[n++].resent_at = sqlite3_column_int64(st, 11);
    }
    sqlite3_finalize(st);
  }
  lw_status ret = LW_OK;
  if (max && !out) {
    snprintf(err, errlen, "out of memory reading deliveries");
    ret = LW_ERR_NOMEM;
  } else if (max && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    ret = sql_error(rd->db, "reading deliveries", err, errlen);
  }
  reader_give(rd);
  if (ret != LW_OK) {
    free(out);
    return ret;
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

/* ---------------------------------------------------------------- console actions */

static lw_status sq_console_actions(lw_store *base, const char *site, size_t max, lw_console_action **rows,
                                    size_t *n_rows, char *err, size_t errlen) {
  sqlite_store *s = (sqlite_store *)base;
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  reader *rd = reader_take(s);
  int rc = sqlite3_prepare_v2(rd->db,
                              "SELECT id, at, who, action, target, ref FROM console_actions WHERE site = ?1"
                              " ORDER BY id DESC LIMIT ?2", -1, &st, NULL);
  lw_console_action *out = calloc(max ? max : 1, sizeof *out);
  size_t n = 0;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while (out && n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      lw_console_action *a = &out[n++];
      a->id = sqlite3_column_int64(st, 0);
      a->at = sqlite3_column_int64(st, 1);
      copy_col(st, 2, a->who, sizeof a->who);
      copy_col(st, 3, a->action, sizeof a->action);
      copy_col(st, 4, a->target, sizeof a->target);
      a->ref = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
  }
  lw_status ret = LW_OK;
  if (!out) {
    snprintf(err, errlen, "out of memory reading console actions");
    ret = LW_ERR_NOMEM;
  } else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    ret = sql_error(rd->db, "reading console actions", err, errlen);
  }
  reader_give(rd);
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
    sq_site_salt, sq_referee, sq_register_referrer, sq_review, sq_reviews,
    sq_deliveries_enqueue, sq_delivery_claim, sq_delivery_finish, sq_delivery_resend, sq_deliveries,
    sq_stats_walk, sq_funnel_days, sq_shared_decisions,
    sq_approvals, sq_approval_answer, sq_approval_check, sq_funnel_outcomes,
    sq_funnel_channels, sq_set_fairness, sq_fairness, sq_console_actions, sq_purge_step};

/* ---------------------------------------------------------------- read-only */

static lw_status ro_write(lw_store *s, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  (void)s, (void)items, (void)n;
  snprintf(err, errlen, "the store was opened read-only");
  return LW_ERR_INVALID;
}
static lw_status ro_forget(lw_store *s, lw_forget_item *const *items, size_t n, char *err, size_t errlen) {
  (void)items, (void)n;
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
static lw_status ro_review(lw_store *s, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  (void)site, (void)id, (void)approve, (void)who, (void)now_ms, (void)result;
  return ro_write(s, NULL, 0, err, errlen);
}

static const lw_store_backend sqlite_read_backend = {
    "sqlite (read-only)", ro_write,    ro_forget,       ro_purge, sq_stats,
    sq_ping,              sq_referral, sq_attributions, sq_close, sq_decisions, sq_count_decisions,
    ro_site_salt,         ro_referee,  ro_register_referrer, ro_review, sq_reviews,
    NULL, NULL, NULL, NULL, sq_deliveries, sq_stats_walk, sq_funnel_days, sq_shared_decisions,
    sq_approvals, NULL, sq_approval_check, sq_funnel_outcomes,
    sq_funnel_channels, NULL, sq_fairness, sq_console_actions, NULL};

int64_t lw_store_sqlite_purge_scanned(const lw_store *base) {
  if (base->backend != &sqlite_backend) return -1;
  return ((const sqlite_store *)base)->purge_scanned;
}

int lw_store_sqlite_write_work(const lw_store *base, int64_t *steps, int64_t *reprepares) {
  if (base->backend != &sqlite_backend) return -1;
  *steps = ((const sqlite_store *)base)->write_steps;
  *reprepares = ((const sqlite_store *)base)->write_reprepares;
  return 0;
}

static sqlite_store *store_alloc(const lw_store_backend *backend) {
  sqlite_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->base.backend = backend;
  for (int i = 0; i < READERS_MAX; i++) pthread_mutex_init(&s->readers[i].lock, NULL);
  pthread_mutex_init(&s->plock, NULL);
  pthread_mutex_init(&s->refc_lock, NULL);
  pthread_mutex_init(&s->ck_lock, NULL);
  pthread_mutex_init(&s->ck_run, NULL);
  pthread_cond_init(&s->ck_wake, NULL);
  return s;
}

/* ---------------------------------------------------------------- checkpoints (see CKPT_PAGES) */

static void *ckpt_main(void *arg) {
  sqlite_store *s = arg;
  pthread_mutex_lock(&s->ck_lock);
  for (;;) {
    while (!s->ck_pending && !s->ck_stop) pthread_cond_wait(&s->ck_wake, &s->ck_lock);
    if (s->ck_stop) break;
    s->ck_pending = 0;
    pthread_mutex_unlock(&s->ck_lock);
    pthread_mutex_lock(&s->ck_run);
    /* SQLITE_BUSY (a forget's TRUNCATE is not possible here: ck_run) or an I/O error leaves the
     * frames in the WAL, where they are as durable; the next commit asks again. */
    sqlite3_wal_checkpoint_v2(s->ck, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_unlock(&s->ck_run);
    pthread_mutex_lock(&s->ck_lock);
  }
  pthread_mutex_unlock(&s->ck_lock);
  return NULL;
}

/* sqlite3_wal_hook on the writer's connection, after each commit: frames is the WAL's length in
 * pages. Replaces the autocheckpoint. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames) {
  sqlite_store *s = arg;
  /* Past the hard mark wait for the thread's pass, if one runs, so the bound holds whatever
   * the timing: the pass has copied most of these frames, and this one copies the rest. */
  if (frames >= CKPT_HARD_PAGES) {
    pthread_mutex_lock(&s->ck_run);
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_unlock(&s->ck_run);
  } else if (frames >= CKPT_PAGES) {
    pthread_mutex_lock(&s->ck_lock);
    if (!s->ck_pending) {
      s->ck_pending = 1;
      pthread_cond_signal(&s->ck_wake);
    }
    pthread_mutex_unlock(&s->ck_lock);
  }
  return SQLITE_OK;
}

static void ckpt_stop(sqlite_store *s) {
  if (!s->ck_started) return;
  sqlite3_wal_hook(s->w, NULL, NULL);
  pthread_mutex_lock(&s->ck_lock);
  s->ck_stop = 1;
  pthread_cond_signal(&s->ck_wake);
  pthread_mutex_unlock(&s->ck_lock);
  pthread_join(s->ck_thread, NULL);
  s->ck_started = 0;
}

lw_status lw_store_open_sqlite_read(const char *path, lw_store **out, char *err, size_t errlen) {
  *out = NULL;
  sqlite_store *s = store_alloc(&sqlite_read_backend);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  s->n_readers = 1; /* one tool, one cursor at a time */
  sqlite3 **r = &s->readers[0].db;
  lw_status st = LW_OK;
  if (sqlite3_open_v2(path, r, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", path, *r ? sqlite3_errmsg(*r) : "cannot open");
    st = LW_ERR_IO;
  } else {
    sqlite3_busy_timeout(*r, 10000);
    char msg[LW_ERRMSG_MAX];
    int version = -1;
    if (user_version(*r, &version, msg, sizeof msg) != LW_OK) {
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

/* PRAGMA quick_check: every page's b-tree structure (not the index contents, which
 * integrity_check would compare too, at several times the cost). A damaged file is refused at
 * start instead of failing, or answering wrong, on whichever request first reads the page. */
static lw_status quick_check(sqlite3 *db, const char *path, char *err, size_t errlen) {
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check(5)", -1, &q, NULL) != SQLITE_OK)
    return sql_error(db, "integrity check failed", err, errlen);
  int rc = sqlite3_step(q);
  const unsigned char *first = rc == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL;
  lw_status st = LW_OK;
  if (!first || strcmp((const char *)first, "ok") != 0) {
    snprintf(err, errlen, "integrity check failed for %s: %s (restore it from a backup)", path,
             first ? (const char *)first : sqlite3_errmsg(db));
    st = LW_ERR_IO;
  }
  sqlite3_finalize(q);
  return st;
}

lw_status lw_store_open_sqlite(const char *path, lw_store **out, char *err, size_t errlen) {
  *out = NULL;
  sqlite_store *s = store_alloc(&sqlite_backend);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
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
  if (st == LW_OK) st = quick_check(s->w, path, err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_functions(&s->ru, s->w, err, errlen); /* lw_fair, for the migration too */
  if (st == LW_OK) st = migrate(s->w, err, errlen);
  if (st == LW_OK) st = lw_sq_rollup_load_fairness(&s->ru, s->w, err, errlen);
  /* Deleted rows are overwritten with zeros, so what /v1/forget deletes leaves no copy in
   * the database file's pages (the WAL is taken care of by sq_forget). */
  if (st == LW_OK) st = exec(s->w, "PRAGMA secure_delete = ON", "setting secure_delete", err, errlen);
  for (int i = 0; st == LW_OK && i < READERS; i++, s->n_readers++)
    st = open_conn(path, &s->readers[i].db, err, errlen);
  if (st == LW_OK) st = open_conn(path, &s->p, err, errlen);
  if (st == LW_OK) st = open_conn(path, &s->ck, err, errlen);
  if (st == LW_OK) {
    int rc = pthread_create(&s->ck_thread, NULL, ckpt_main, s);
    if (rc != 0) {
      snprintf(err, errlen, "starting the checkpoint thread: %s", strerror(rc));
      st = LW_ERR_IO;
    } else {
      s->ck_started = 1;
      sqlite3_wal_hook(s->w, on_wal_commit, s); /* and no autocheckpoint */
    }
  }
  /* Page caches: the writer keeps its 32 MB (open_conn); a read walks the coded-events index
   * or the events once, so each reader gets 8 MB and the ping next to nothing, which bounds
   * what the read side can hold however large the database grows. */
  for (int i = 0; st == LW_OK && i < s->n_readers; i++)
    st = exec(s->readers[i].db, "PRAGMA cache_size = -8000", "sizing a read cache", err, errlen);
  if (st == LW_OK) st = exec(s->p, "PRAGMA cache_size = -256", "sizing a read cache", err, errlen);
  if (st == LW_OK) st = exec(s->ck, "PRAGMA cache_size = -256", "sizing a read cache", err, errlen);
  if (st == LW_OK &&
      sqlite3_prepare_v3(s->w,
                         "INSERT INTO batches(site, batch_id, received_at, sent_at, n_events)"
                         " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(site, batch_id) DO NOTHING",
                         -1, SQLITE_PREPARE_PERSISTENT, &s->ins_batch, NULL) != SQLITE_OK)
    st = sql_error(s->w, "preparing statements", err, errlen);
  /* OR IGNORE: a statement that may fail half-way through its rows (a plain multi-row INSERT)
   * makes SQLite keep a statement journal to undo them, some 6% of the writer's instructions a
   * batch (callgrind, bench_store). These rows cannot conflict (each id is its batch's rowid
   * times EVENT_ID_STRIDE plus its position, every NOT NULL column is bound), and write_one
   * checks that every row went in, failing the group otherwise, so nothing is ever dropped
   * silently. */
  for (int k = 1; st == LW_OK && k <= EVENT_ROWS_MAX; k++) {
    char sql[4096];
    size_t len = (size_t)snprintf(sql, sizeof sql,
                                  "INSERT OR IGNORE INTO events(batch, site, kind, t, install, decision,"
                                  " action, p, mode, reason, segment, model, x, code, id, received_at,"
                                  " token, channel)"
                                  " VALUES");
    for (int r = 0; r < k; r++)
      len += (size_t)snprintf(sql + len, sizeof sql - len, "%s(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
  if (st == LW_OK) st = lw_sq_rollup_prepare(&s->ru, s->w, err, errlen);
  if (st != LW_OK) {
    sq_close(&s->base);
    return st;
  }
  *out = &s->base;
  return LW_OK;
}
