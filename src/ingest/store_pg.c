/* store_pg.c: the PostgreSQL backend of lw_store (libpq), for several stateless replicas on one
 * database. The same contract and answers as store_sqlite.c, which is the reference.
 *
 * Exactly-once across replicas: batches has UNIQUE (site, batch_id) and a batch goes in with
 * INSERT ... ON CONFLICT DO NOTHING in the same transaction as its events, so two replicas
 * that receive the same retried batch at once store it once (the second waits on the first's
 * index entry, then finds it). Durability: every connection runs with synchronous_commit = on,
 * so COMMIT returns only once the WAL is flushed; the writer thread still puts many requests in
 * one transaction (group commit). A deadlock or serialization failure between replicas is
 * retried inside the call.
 *
 * Connections: the writer's (one thread at a time, see store.h), a small pool of readers and one
 * for the ping. A connection the server dropped (a restart) fails the call it was on (the
 * client hears 503) and is re-established on the next one.
 *
 * Schema: its own version numbers (LW_STORE_PG_SCHEMA_VERSION, in lw_schema), migrated on open
 * in one transaction under an advisory lock, so replicas starting together migrate once. Text
 * columns use the "C" collation, so every order is byte order, as in SQLite. */
#include "loopwise/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "funnel_sql.h"
#include "grow.h"
#include "loopwise/audit.h"

#define READERS 3
#define EVENT_ID_STRIDE 1024 /* as store_sqlite.c: events.id = batches.id * stride + position */
#define EVENT_COLS 18
#define MIGRATION_LOCK 0x4c6f6f70 /* 'Loop': the advisory lock the migration holds */
#define WRITE_ATTEMPTS 4          /* a deadlock or serialization failure is retried */

/* PostgreSQL type oids, for typed parameters (so a statement may leave one unused). */
#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA 17
#define OID_FLOAT8 701

#define TXT "text COLLATE \"C\""

/* The writer's statements, prepared once per connection (ids of pg_store.prepared). */
enum { STMT_BATCH, STMT_CLAIM, STMT_OWNER, STMT_FLAG, STMT_FIX, STMT_EVENTS };
#define LW_MAX_EVENTS_PREPARED 64 /* an INSERT of k events for k up to this is prepared too */
static const char *const k_writer_sql[STMT_EVENTS] = {
    "INSERT INTO batches(site, batch_id, received_at, sent_at, n_events)"
    " VALUES($1, $2, $3, $4, $5) ON CONFLICT (site, batch_id) DO NOTHING RETURNING id",
    "WITH ins AS (INSERT INTO code_owners(site, code, install) VALUES($1, $2, $3)"
    " ON CONFLICT DO NOTHING RETURNING install)"
    " SELECT install FROM ins UNION ALL SELECT install FROM code_owners WHERE site = $1 AND code = $2 LIMIT 1",
    "SELECT install FROM code_owners WHERE site = $1 AND code = $2 AND $3::text IS NOT NULL",
    "INSERT INTO flags(site, kind, value, reason, at) VALUES($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    "UPDATE batches SET n_events = $1 WHERE id = $2"};
static const Oid k_writer_types[STMT_EVENTS][5] = {
    {25, 25, 20, 20, 20}, {25, 25, 25}, {25, 25, 25}, {25, 25, 25, 25, 20}, {20, 20}};
static const int k_writer_nparams[STMT_EVENTS] = {5, 3, 3, 5, 2};

/* Version 1: schema 7 of the SQLite store (see store_sqlite.c) in PostgreSQL's types: bigint
 * times, bytea for x and the referee hashes, an index on batches(received_at) for retention
 * (batch ids come from a sequence several replicas draw from, so commit order is not id order
 * and retention cannot walk a prefix as SQLite's does). */
static const char *const pg_schema_v1[] = {
    "CREATE TABLE lw_schema(version integer NOT NULL)",
    "CREATE TABLE batches(id bigserial PRIMARY KEY, site " TXT " NOT NULL, batch_id " TXT " NOT NULL,"
    " received_at bigint NOT NULL, sent_at bigint NOT NULL, n_events integer NOT NULL, UNIQUE(site, batch_id))",
    "CREATE INDEX batches_received ON batches(received_at)",
    "CREATE TABLE events(id bigint PRIMARY KEY, batch bigint NOT NULL, site " TXT " NOT NULL,"
    " kind " TXT " NOT NULL, t bigint NOT NULL, install " TXT " NOT NULL, decision " TXT ", action " TXT ","
    " p double precision, mode " TXT ", reason " TXT ", segment " TXT ", model " TXT ", x bytea, code " TXT ","
    " received_at bigint, token " TXT ", channel " TXT ")",
    "CREATE INDEX events_site_install ON events(site, install)",
    "CREATE INDEX events_code ON events(site, code, kind, install, t) WHERE code IS NOT NULL",
    "CREATE INDEX events_token ON events(site, token) WHERE token IS NOT NULL",
    "CREATE TABLE code_owners(site " TXT " NOT NULL, code " TXT " NOT NULL, install " TXT " NOT NULL,"
    " PRIMARY KEY(site, code))",
    "CREATE TABLE site_salts(site " TXT " PRIMARY KEY, salt bytea NOT NULL)",
    "CREATE TABLE referrers(site " TXT " NOT NULL, code " TXT " NOT NULL, referrer bytea NOT NULL,"
    " PRIMARY KEY(site, code))",
    "CREATE TABLE referees(id bigserial PRIMARY KEY, site " TXT " NOT NULL, code " TXT " NOT NULL,"
    " referee bytea NOT NULL, event " TXT " NOT NULL, at bigint NOT NULL, received_at bigint NOT NULL,"
    " value double precision, token " TXT ", state " TXT " NOT NULL, reason " TXT ", counted_at bigint,"
    " UNIQUE(site, code, referee, event))",
    "CREATE INDEX referees_referee ON referees(site, referee, event)",
    "CREATE INDEX referees_token ON referees(site, token) WHERE token IS NOT NULL",
    "CREATE TABLE flags(site " TXT " NOT NULL, kind " TXT " NOT NULL, value " TXT " NOT NULL,"
    " reason " TXT " NOT NULL, at bigint NOT NULL, PRIMARY KEY(site, kind, value))",
    NULL};

/* Version 2: the writer-kept rollups (as SQLite's schema 9, src/ingest/rollup_sqlite.h), with
 * partial indexes on the rows a deletion emptied, and their backfill from the stored events.
 * dim: 0 action, 1 segment, 2 code. */
#define PG_RU_COL_DEF(e, name, stat, flags, rules) ", \"n_" name "\" bigint NOT NULL DEFAULT 0"
#define PG_RU_COL(e, name, stat, flags, rules) ", \"n_" name "\""
#define PG_RU_FILTER(e, name, stat, flags, rules) ", count(*) FILTER (WHERE kind = '" name "')"
#define PG_RU_DIMS "CROSS JOIN LATERAL (VALUES (0, e.action), (1, e.segment), (2, e.code)) AS v(dim, key)"
#define PG_RU_DAY "floor(t / 86400000.0)::bigint"
#define PG_RU_PROMPTED "action IS NOT NULL AND action <> '" LW_ACTION_NONE "'"
static const char *const pg_schema_v2[] = {
    "CREATE TABLE rollup_site(site " TXT " PRIMARY KEY, outcomes bigint NOT NULL DEFAULT 0,"
    " batches bigint NOT NULL DEFAULT 0, codes bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE rollup_keys(site " TXT " NOT NULL, dim integer NOT NULL, key " TXT " NOT NULL,"
    " installs bigint NOT NULL DEFAULT 0, n bigint NOT NULL DEFAULT 0" LW_KINDS(PG_RU_COL_DEF)
    ", PRIMARY KEY(site, dim, key))",
    "CREATE INDEX rollup_keys_installs ON rollup_keys(site, dim, installs DESC, key)",
    "CREATE INDEX rollup_keys_empty ON rollup_keys(site) WHERE n <= 0",
    "CREATE TABLE rollup_installs(site " TXT " NOT NULL, dim integer NOT NULL, key " TXT " NOT NULL,"
    " install " TXT " NOT NULL, n bigint NOT NULL, PRIMARY KEY(site, dim, key, install))",
    "CREATE INDEX rollup_installs_empty ON rollup_installs(site) WHERE n <= 0",
    "INSERT INTO rollup_installs(site, dim, key, install, n) SELECT e.site, v.dim, v.key, e.install, count(*)"
    " FROM events e " PG_RU_DIMS " WHERE v.key IS NOT NULL GROUP BY 1, 2, 3, 4",
    "INSERT INTO rollup_keys(site, dim, key, installs, n" LW_KINDS(PG_RU_COL) ")"
    " SELECT e.site, v.dim, v.key, count(DISTINCT e.install), count(*)" LW_KINDS(PG_RU_FILTER)
    " FROM events e " PG_RU_DIMS " WHERE v.key IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO rollup_site(site, outcomes, batches) SELECT site, 0, count(*) FROM batches GROUP BY site",
    "UPDATE rollup_site r SET outcomes = x.n FROM (SELECT site, count(*) AS n FROM events GROUP BY site) x"
    " WHERE r.site = x.site",
    "UPDATE rollup_site r SET codes = x.n FROM (SELECT site, count(*) AS n FROM rollup_keys WHERE dim = 2"
    " GROUP BY site) x WHERE r.site = x.site",
    "CREATE TABLE rollup_days(site " TXT " NOT NULL, day bigint NOT NULL, action " TXT " NOT NULL,"
    " segment " TXT " NOT NULL, mode " TXT " NOT NULL, decisions bigint NOT NULL, prompts bigint NOT NULL,"
    " PRIMARY KEY(site, day, action, segment, mode))",
    "INSERT INTO rollup_days SELECT site, " PG_RU_DAY ", coalesce(action, ''), coalesce(segment, ''),"
    " coalesce(mode, ''), count(*), count(*) FILTER (WHERE " PG_RU_PROMPTED ") FROM events"
    " WHERE kind = 'decision' GROUP BY 1, 2, 3, 4, 5",
    /* the console's shared decisions (as SQLite's events_shares and events_decisions) */
    "CREATE INDEX events_shares ON events(site, decision) WHERE kind IN ('share', 'copy')",
    "CREATE INDEX events_decisions ON events(site, decision) WHERE kind = 'decision'",
    NULL};

/* Version 3: SQLite schemas 8 and 10, webhook deliveries and approval requests (store.h). */
static const char *const pg_schema_v3[] = {
    "CREATE TABLE deliveries(id bigserial PRIMARY KEY, site " TXT " NOT NULL, report bigint NOT NULL,"
    " idempotency_key " TXT " NOT NULL UNIQUE, body text NOT NULL, state " TXT " NOT NULL,"
    " attempts bigint NOT NULL DEFAULT 0, created_at bigint NOT NULL, next_at bigint NOT NULL,"
    " lease_owner " TXT ", lease_until bigint NOT NULL DEFAULT 0, last_status bigint NOT NULL DEFAULT 0,"
    " last_error text, delivered_at bigint)",
    "CREATE INDEX deliveries_due ON deliveries(site, state, next_at)",
    "CREATE TABLE approvals(id bigserial PRIMARY KEY, site " TXT " NOT NULL, decision " TXT " NOT NULL,"
    " install " TXT " NOT NULL, key_hash " TXT " NOT NULL, action " TXT " NOT NULL, segment " TXT ","
    " reason text NOT NULL, attrs text NOT NULL, t bigint NOT NULL, received_at bigint NOT NULL,"
    " state " TXT " NOT NULL, answered_by " TXT ", answered_at bigint, device_answer " TXT ","
    " device_at bigint, UNIQUE(site, decision))",
    "CREATE INDEX approvals_install ON approvals(site, install)",
    NULL};

/* Version 4: SQLite's schema 11, the console's funnel per shared decision row (rollup_dec) and
 * per (site, day, action, segment, mode) (rollup_funnel), kept by the writer with the rules of
 * funnel_sql.h (see "the console's funnel" below); total() as SQLite's, for that shared text
 * (float8pl is sum(float8)'s own step: the same additions in the same order). The backfill
 * (funnel_rebuild, schema 6's) fills them. */
static const char *const pg_schema_v4[] = {
    "CREATE AGGREGATE total(double precision) (sfunc = float8pl, stype = float8, initcond = '0')",
    "CREATE TABLE rollup_dec(site " TXT " NOT NULL, decision " TXT " NOT NULL, id bigint NOT NULL,"
    " day bigint NOT NULL, action " TXT " NOT NULL, segment " TXT " NOT NULL, mode " TXT " NOT NULL,"
    " shares bigint NOT NULL, landed bigint NOT NULL, converted bigint NOT NULL, kept bigint NOT NULL,"
    " landings bigint NOT NULL, conversions bigint NOT NULL, retained bigint NOT NULL,"
    " value double precision NOT NULL, revenue double precision NOT NULL, PRIMARY KEY(site, decision, id))",
    "CREATE INDEX rollup_dec_converted ON rollup_dec(site, id) WHERE conversions > 0",
    "CREATE TABLE rollup_funnel(site " TXT " NOT NULL, day bigint NOT NULL, action " TXT " NOT NULL,"
    " segment " TXT " NOT NULL, mode " TXT " NOT NULL, n bigint NOT NULL, shares bigint NOT NULL,"
    " landed bigint NOT NULL, converted bigint NOT NULL, kept bigint NOT NULL, landings bigint NOT NULL,"
    " conversions bigint NOT NULL, retained bigint NOT NULL, PRIMARY KEY(site, day, action, segment, mode))",
    "CREATE INDEX rollup_funnel_empty ON rollup_funnel(site) WHERE n <= 0",
    NULL};

/* Version 5: SQLite schema 12, the console's actions (store.h "console actions"). */
static const char *const pg_schema_v5[] = {
    "CREATE TABLE console_actions(id bigserial PRIMARY KEY, site " TXT " NOT NULL, at bigint NOT NULL,"
    " who " TXT " NOT NULL, action " TXT " NOT NULL, target " TXT " NOT NULL, ref bigint NOT NULL)",
    "CREATE INDEX console_actions_ref ON console_actions(site, target, ref)",
    NULL};

/* Version 6: SQLite schema 12's channels and fairness segments. rollup_days, rollup_dec and
 * rollup_funnel are rebuilt with the shared decision's channel (LW_FN_CHANNEL) and the fairness
 * audit's segments (fair: bit i for the spec's value i) in their keys, and filled from the stored
 * events and referee reports (funnel_rebuild). The spec is rollup_fairness's (SQLite's text) and,
 * compiled, rollup_fair_segments (each value's segment name "attribute^value" and the
 * little-endian bytes of its hash, lw_fnv1a: C computes both, lw_audit_segment_name). lw_fair
 * is loopwise/audit.h's lw_audit_segments_of over those rows: a decision is in a segment when
 * its segment field is the name or one of its x pairs (8 bytes: the hash, then the value) has
 * the hash; test_rollups holds it to the C rule through the walk. */
static const char *const pg_schema_v6[] = {
    "DROP TABLE rollup_days, rollup_dec, rollup_funnel",
    "CREATE TABLE rollup_fairness(attribute " TXT " NOT NULL, vals " TXT " NOT NULL)",
    "INSERT INTO rollup_fairness(attribute, vals) VALUES('', '')",
    "CREATE TABLE rollup_fair_segments(bit integer PRIMARY KEY, name " TXT " NOT NULL, hash bytea NOT NULL)",
    "CREATE FUNCTION lw_fair(text, bytea) RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$"
    " SELECT coalesce(sum(1::bigint << f.bit), 0)::bigint FROM rollup_fair_segments f WHERE f.name = $1"
    " OR EXISTS(SELECT 1 FROM generate_series(0, length($2) / 8 - 1) k WHERE substring($2 FROM 8 * k + 1 FOR 4) = f.hash)"
    " $$",
    "CREATE TABLE rollup_days(site " TXT " NOT NULL, day bigint NOT NULL, action " TXT " NOT NULL,"
    " segment " TXT " NOT NULL, mode " TXT " NOT NULL, fair bigint NOT NULL, decisions bigint NOT NULL,"
    " prompts bigint NOT NULL, PRIMARY KEY(site, day, action, segment, mode, fair))",
    "CREATE TABLE rollup_dec(site " TXT " NOT NULL, decision " TXT " NOT NULL, id bigint NOT NULL,"
    " day bigint NOT NULL, action " TXT " NOT NULL, segment " TXT " NOT NULL, mode " TXT " NOT NULL,"
    " shares bigint NOT NULL, landed bigint NOT NULL, converted bigint NOT NULL, kept bigint NOT NULL,"
    " landings bigint NOT NULL, conversions bigint NOT NULL, retained bigint NOT NULL,"
    " value double precision NOT NULL, revenue double precision NOT NULL, channel " TXT " NOT NULL,"
    " fair bigint NOT NULL, PRIMARY KEY(site, decision, id))",
    "CREATE INDEX rollup_dec_converted ON rollup_dec(site, id) WHERE conversions > 0",
    "CREATE TABLE rollup_funnel(site " TXT " NOT NULL, day bigint NOT NULL, action " TXT " NOT NULL,"
    " segment " TXT " NOT NULL, mode " TXT " NOT NULL, channel " TXT " NOT NULL, fair bigint NOT NULL,"
    " n bigint NOT NULL, shares bigint NOT NULL, landed bigint NOT NULL, converted bigint NOT NULL,"
    " kept bigint NOT NULL, landings bigint NOT NULL, conversions bigint NOT NULL, retained bigint NOT NULL,"
    " PRIMARY KEY(site, day, action, segment, mode, channel, fair))",
    "CREATE INDEX rollup_funnel_empty ON rollup_funnel(site) WHERE n <= 0",
    NULL};

/* Version 7: SQLite schema 14's shares index, in id order within a token, so a decision's first
 * share without a token (LW_FN_CODE_OF) is read off the index instead of sorting every share of
 * the decision on each write of it. */
static const char *const pg_schema_v7[] = {
    "DROP INDEX events_shares",
    "CREATE INDEX events_shares ON events(site, decision, token, id) WHERE kind IN ('share', 'copy')",
    NULL};

/* migrations[v - 1] brings version v - 1 to v (0: an empty database). */
static const char *const *const pg_migrations[] = {pg_schema_v1, pg_schema_v2, pg_schema_v3, pg_schema_v4,
                                                              pg_schema_v5, pg_schema_v6, pg_schema_v7};
_Static_assert(sizeof pg_migrations / sizeof pg_migrations[0] == LW_STORE_PG_SCHEMA_VERSION,
               "one migration per PostgreSQL schema version");
/* What a migration fills from the stored data after its statements (NULL: nothing more). Schema
 * 4's funnel is filled by 6's rebuild (the fill runs this build's statements, which need 6's
 * columns; a migration always ends at this build's version, in the same transaction). */
static lw_status funnel_rebuild(PGconn *c, char *err, size_t errlen);
static lw_status (*const pg_migration_fills[])(PGconn *c, char *err, size_t errlen) = {NULL, NULL, NULL,
                                                                                          NULL, NULL, funnel_rebuild,
                                                                                          NULL};
_Static_assert(sizeof pg_migration_fills / sizeof pg_migration_fills[0] == LW_STORE_PG_SCHEMA_VERSION,
               "one fill (or NULL) per PostgreSQL schema version");

typedef struct {
  PGconn *c;
  pthread_mutex_t lock;
} pg_conn;

typedef struct {
  lw_store base;
  PGconn *w;                 /* the writer's */
  pg_conn readers[READERS];
  atomic_uint next_reader;
  pg_conn ping;
  char *sql;                 /* the events INSERT being built (writer only) */
  size_t sql_cap;
  /* The writer's prepared statements (see prepare_writer): on the backend with this pid, by
   * id: 0 none, 1 sent in the current group, 2 ready. */
  int prepared_pid;
  uint8_t prepared[STMT_EVENTS + LW_MAX_EVENTS_PREPARED + 1];
  int purge_deleted; /* a step of the retention pass under way deleted batches (writer only) */
} pg_store;

/* ---------------------------------------------------------------- parameters */

typedef struct {
  int n, cap;
  const char **v;
  int *len, *fmt;
  Oid *type;
  char (*num)[32];
  int *is_num;
  int oom;
} params;

static void p_init(params *p) { memset(p, 0, sizeof *p); }
static void p_free(params *p) {
  free(p->v), free(p->len), free(p->fmt), free(p->type), free(p->num), free(p->is_num);
  memset(p, 0, sizeof *p);
}
static int p_slot(params *p) {
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    const char **v = realloc(p->v, (size_t)cap * sizeof *v);
    if (v) p->v = v;
    int *len = realloc(p->len, (size_t)cap * sizeof *len);
    if (len) p->len = len;
    int *fmt = realloc(p->fmt, (size_t)cap * sizeof *fmt);
    if (fmt) p->fmt = fmt;
    Oid *type = realloc(p->type, (size_t)cap * sizeof *type);
    if (type) p->type = type;
    char(*num)[32] = realloc(p->num, (size_t)cap * sizeof *num);
    if (num) p->num = num;
    int *is_num = realloc(p->is_num, (size_t)cap * sizeof *is_num);
    if (is_num) p->is_num = is_num;
    if (!v || !len || !fmt || !type || !num || !is_num) {
      p->oom = 1;
      return -1;
    }
    p->cap = cap;
  }
  int i = p->n++;
  p->v[i] = NULL, p->len[i] = 0, p->fmt[i] = 0, p->is_num[i] = 0;
  return i;
}
/* NULL or "" is SQL NULL when empty_null, as store_sqlite.c's bind_text_or_null. */
static void p_text(params *p, const char *s) {
  int i = p_slot(p);
  if (i < 0) return;
  p->type[i] = OID_TEXT;
  p->v[i] = s;
}
static void p_text_or_null(params *p, const char *s) { p_text(p, s && s[0] ? s : NULL); }
static void p_int(params *p, int64_t x) {
  int i = p_slot(p);
  if (i < 0) return;
  p->type[i] = OID_INT8;
  snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)x);
  p->is_num[i] = 1;
}
static void p_null_int(params *p) {
  int i = p_slot(p);
  if (i >= 0) p->type[i] = OID_INT8;
}
static void p_double(params *p, double x) {
  int i = p_slot(p);
  if (i < 0) return;
  p->type[i] = OID_FLOAT8;
  snprintf(p->num[i], sizeof p->num[i], "%.17g", x);
  p->is_num[i] = 1;
}
static void p_null_double(params *p) {
  int i = p_slot(p);
  if (i >= 0) p->type[i] = OID_FLOAT8;
}
static void p_blob(params *p, const void *b, size_t n) {
  int i = p_slot(p);
  if (i < 0) return;
  p->type[i] = OID_BYTEA;
  p->v[i] = b;
  p->len[i] = (int)n;
  p->fmt[i] = 1;
}
static void p_null_blob(params *p) {
  int i = p_slot(p);
  if (i >= 0) p->type[i] = OID_BYTEA;
}

/* ---------------------------------------------------------------- running statements */

static void trim_copy(char *err, size_t errlen, const char *what, const char *msg) {
  snprintf(err, errlen, "%s: %s", what, msg && msg[0] ? msg : "no answer from PostgreSQL");
  size_t n = strlen(err);
  while (n && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
}

/* Every session (also after a reset): durable COMMITs whatever the server's default, and no
 * NOTICEs on stderr. */
static lw_status session_setup(PGconn *c, char *err, size_t errlen) {
  PGresult *r = PQexec(c, "SET synchronous_commit = on; SET client_min_messages = warning");
  int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) trim_copy(err, errlen, "setting up a session", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  PQclear(r);
  return ok ? LW_OK : LW_ERR_IO;
}

/* A connection that answers: one the server dropped (a restart) is re-established here. */
static lw_status conn_ready(PGconn *c, const char *what, char *err, size_t errlen) {
  if (!c) {
    snprintf(err, errlen, "%s: no connection", what);
    return LW_ERR_IO;
  }
  /* A pipeline left half read (a write that failed mid-way) is no state to go on from. */
  if (PQstatus(c) != CONNECTION_OK || PQpipelineStatus(c) != PQ_PIPELINE_OFF) {
    PQreset(c);
    if (PQstatus(c) == CONNECTION_OK && session_setup(c, err, errlen) != LW_OK) return LW_ERR_IO;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    trim_copy(err, errlen, what, PQerrorMessage(c));
    return LW_ERR_IO;
  }
  return LW_OK;
}

/* Run sql with p's parameters (NULL: none). On success *out (when not NULL) is the result the
 * caller clears; a failure puts PostgreSQL's message in err and, when sqlstate is not NULL, its
 * SQLSTATE there. binary: results in binary format. */
static lw_status run_ex(PGconn *c, const char *sql, params *p, int binary, PGresult **out, char *sqlstate,
                        const char *what, char *err, size_t errlen) {
  if (out) *out = NULL;
  if (sqlstate) sqlstate[0] = '\0';
  if (p && p->oom) {
    snprintf(err, errlen, "%s: out of memory", what);
    return LW_ERR_NOMEM;
  }
  if (p)
    for (int i = 0; i < p->n; i++)
      if (p->is_num[i]) p->v[i] = p->num[i];
  PGresult *r = PQexecParams(c, sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, binary);
  ExecStatusType rs = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
    trim_copy(err, errlen, what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    if (sqlstate && r) {
      const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      snprintf(sqlstate, 6, "%s", code ? code : "");
    }
    PQclear(r);
    return LW_ERR_IO;
  }
  if (out)
    *out = r;
  else
    PQclear(r);
  return LW_OK;
}

static lw_status run(PGconn *c, const char *sql, params *p, PGresult **out, const char *what, char *err,
                     size_t errlen) {
  return run_ex(c, sql, p, 0, out, NULL, what, err, errlen);
}

static int64_t get_int(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}
static double get_double(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}
static void get_text(const PGresult *r, int row, int col, char *out, size_t cap) {
  snprintf(out, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* One integer: the first column of the first row (0 when none). */
static lw_status one_int(PGconn *c, const char *sql, params *p, int64_t *out, const char *what, char *err,
                         size_t errlen) {
  PGresult *r;
  lw_status st = run(c, sql, p, &r, what, err, errlen);
  if (st != LW_OK) return st;
  *out = PQntuples(r) > 0 ? get_int(r, 0, 0) : 0;
  PQclear(r);
  return LW_OK;
}

static void rollback(PGconn *c) { PQclear(PQexec(c, "ROLLBACK")); }

/* sql with its one %s replaced by the shared kinds' names, quoted: 'share','copy'. */
static void with_shared_kinds(const char *sql, char *out, size_t cap) {
  char kinds[128] = "";
  size_t n = 0;
  for (int k = 0; k < LW_KIND_COUNT; k++)
    if (lw_kind_flags((lw_kind)k) & LW_KIND_F_SHARED)
      n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s'%s'", n ? "," : "", lw_kind_name((lw_kind)k));
  snprintf(out, cap, sql, kinds);
}

/* ---------------------------------------------------------------- readers */

static pg_conn *reader_take(pg_store *s) {
  unsigned start = atomic_fetch_add(&s->next_reader, 1);
  for (int i = 0; i < READERS; i++) {
    pg_conn *r = &s->readers[(start + (unsigned)i) % READERS];
    if (pthread_mutex_trylock(&r->lock) == 0) return r;
  }
  pg_conn *r = &s->readers[start % READERS];
  pthread_mutex_lock(&r->lock);
  return r;
}
static void reader_give(pg_conn *r) { pthread_mutex_unlock(&r->lock); }

/* ---------------------------------------------------------------- x as stored */

static size_t x_encode(const lw_feature *x, int n, uint8_t *out) {
  for (int i = 0; i < n; i++) {
    uint32_t h = x[i].hash, q = (uint32_t)x[i].q;
    for (int k = 0; k < 4; k++) out[8 * i + k] = (uint8_t)(h >> (8 * k)), out[8 * i + 4 + k] = (uint8_t)(q >> (8 * k));
  }
  return (size_t)n * 8;
}

static int x_decode(const uint8_t *p, size_t len, lw_feature *x, int *n) {
  if (len % 8 || len / 8 > LW_X_PAIRS) return -1;
  *n = (int)(len / 8);
  for (int i = 0; i < *n; i++, p += 8) {
    x[i].hash = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    x[i].q = (int32_t)((uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24);
  }
  return 0;
}

/* ---------------------------------------------------------------- writes */

static lw_status flag(PGconn *c, const char *site, const char *kind, const char *value, const char *reason,
                      int64_t now_ms, char *err, size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, site), p_text(&p, kind), p_text(&p, value), p_text(&p, reason), p_int(&p, now_ms);
  lw_status st = run(c,
                     "INSERT INTO flags(site, kind, value, reason, at) VALUES($1, $2, $3, $4, $5)"
                     " ON CONFLICT DO NOTHING",
                     &p, NULL, "flagging", err, errlen);
  p_free(&p);
  return st;
}

/* The owner of code on site into owner (LW_INSTALL_LEN + 1 bytes): *found 0 when none. */
static lw_status owner_of(PGconn *c, const char *site, const char *code, char *owner, int *found, char *err,
                          size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, site), p_text(&p, code);
  PGresult *r;
  lw_status st = run(c, "SELECT install FROM code_owners WHERE site = $1 AND code = $2", &p, &r,
                     "reading a code's owner", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  *found = PQntuples(r) > 0;
  if (*found) get_text(r, 0, 0, owner, LW_INSTALL_LEN + 1);
  PQclear(r);
  return LW_OK;
}

/* ---- the write path, pipelined (libpq pipeline mode: statements run in order, each seeing the
 * ones before, and a group costs three round trips however many batches it holds):
 *   1. BEGIN and every batch row (ON CONFLICT DO NOTHING RETURNING id: no row is a duplicate);
 *   2. for every event with a code of the new batches, in order: a share or copy claims the code
 *      or reads its owner (one statement), a landing or conversion reads the owner;
 *   3. the kept events, the flags, the corrected event counts, and COMMIT.
 * Code ownership is store_sqlite.c's keep_owned: a share or copy with a code another install
 * owns is not stored (the install is flagged); a landing or conversion from the owner's own
 * install marks a self-referral. */

/* Send one statement into the pipeline: sql itself (id < 0), or the writer's prepared statement id
 * (an events INSERT is prepared on first use, in the pipeline, ahead of its first run). */
static lw_status pipe_send(pg_store *s, PGconn *c, int id, const char *sql, params *p, int *sent, const char *what,
                           char *err, size_t errlen) {
  if (p && p->oom) {
    snprintf(err, errlen, "%s: out of memory", what);
    return LW_ERR_NOMEM;
  }
  if (p)
    for (int i = 0; i < p->n; i++)
      if (p->is_num[i]) p->v[i] = p->num[i];
  /* libpq serializes the statement and its parameters here: both may go once this returns. */
  char name[16];
  if (id >= 0) {
    snprintf(name, sizeof name, "lw_w%d", id);
    if (!s->prepared[id]) {
      if (!PQsendPrepare(c, name, sql, p->n, p->type)) {
        trim_copy(err, errlen, what, PQerrorMessage(c));
        return LW_ERR_IO;
      }
      (*sent)++;
      s->prepared[id] = 1;
    }
  }
  if (id >= 0 ? !PQsendQueryPrepared(c, name, p->n, p->v, p->len, p->fmt, 0)
              : !PQsendQueryParams(c, sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL, p ? p->len : NULL,
                                   p ? p->fmt : NULL, 0)) {
    trim_copy(err, errlen, what, PQerrorMessage(c));
    return LW_ERR_IO;
  }
  (*sent)++;
  return LW_OK;
}

/* Sync, then the results of the sent statements in order: res[i] (the caller clears them; NULL
 * for a failed one) when res is not NULL. The first failure's message goes to err, its SQLSTATE
 * to sqlstate. */
static lw_status pipe_sync(PGconn *c, int sent, PGresult **res, char *sqlstate, const char *what, char *err,
                           size_t errlen) {
  lw_status st = LW_OK;
  if (res)
    for (int i = 0; i < sent; i++) res[i] = NULL;
  if (!PQpipelineSync(c)) {
    trim_copy(err, errlen, what, PQerrorMessage(c));
    return LW_ERR_IO;
  }
  for (int i = 0; i < sent; i++) {
    PGresult *r = PQgetResult(c);
    if (!r) {
      if (st == LW_OK) trim_copy(err, errlen, what, PQerrorMessage(c));
      return LW_ERR_IO; /* the connection is gone: conn_ready opens it again */
    }
    ExecStatusType rs = PQresultStatus(r);
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
      if (st == LW_OK && rs != PGRES_PIPELINE_ABORTED) {
        trim_copy(err, errlen, what, PQresultErrorMessage(r));
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (sqlstate) snprintf(sqlstate, 6, "%s", code ? code : "");
        st = LW_ERR_IO;
      }
      PQclear(r);
    } else if (res) {
      res[i] = r;
    } else {
      PQclear(r);
    }
    while ((r = PQgetResult(c))) PQclear(r); /* the NULL that ends each statement's results */
  }
  PGresult *r = PQgetResult(c);
  if ((!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) && st == LW_OK) {
    trim_copy(err, errlen, what, PQerrorMessage(c));
    st = LW_ERR_IO;
  }
  PQclear(r);
  return st;
}

static void clear_all(PGresult **res, int n) {
  for (int i = 0; res && i < n; i++) PQclear(res[i]), res[i] = NULL;
}

static lw_status send_flag(pg_store *s, PGconn *c, int *sent, const char *site, const char *kind, const char *value,
                           const char *reason, int64_t now_ms, char *err, size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, site), p_text(&p, kind), p_text(&p, value), p_text(&p, reason), p_int(&p, now_ms);
  lw_status st = pipe_send(s, c, STMT_FLAG, k_writer_sql[STMT_FLAG], &p, sent, "flagging", err, errlen);
  p_free(&p);
  return st;
}

/* Whether event e of a new batch needs an owner statement in phase 2. */
static int coded(const lw_event *e) {
  return e->code[0] && (lw_kind_flags(e->kind) & (LW_KIND_F_SHARED | LW_KIND_F_REFEREE));
}

/* The kept events of one batch as one INSERT (phase 3). */
static lw_status send_events(pg_store *s, lw_store_item *it, int64_t batch_row, const uint8_t *keep, size_t n_kept,
                             int *sent, char *err, size_t errlen) {
  size_t need = 256 + n_kept * (EVENT_COLS * 6 + 8);
  if (s->sql_cap < need) {
    char *grown = realloc(s->sql, need);
    if (!grown) {
      snprintf(err, errlen, "out of memory");
      return LW_ERR_NOMEM;
    }
    s->sql = grown;
    s->sql_cap = need;
  }
  size_t len = (size_t)snprintf(s->sql, s->sql_cap,
                                "INSERT INTO events(batch, site, kind, t, install, decision, action, p, mode,"
                                " reason, segment, model, x, code, id, received_at, token, channel) VALUES");
  uint8_t(*xbuf)[LW_X_PAIRS * 8] = malloc(n_kept * sizeof *xbuf);
  if (!xbuf) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  params p;
  p_init(&p);
  size_t k = 0;
  for (size_t i = 0; i < it->batch->n_events; i++) {
    if (!keep[i]) continue;
    const lw_event *e = &it->batch->events[i];
    len += (size_t)snprintf(s->sql + len, s->sql_cap - len, "%s(", k ? "," : "");
    for (int c = 1; c <= EVENT_COLS; c++)
      len += (size_t)snprintf(s->sql + len, s->sql_cap - len, "$%zu%s", k * EVENT_COLS + (size_t)c,
                              c < EVENT_COLS ? "," : ")");
    p_int(&p, batch_row);
    p_text(&p, it->site);
    p_text(&p, lw_kind_name(e->kind));
    p_int(&p, e->t);
    p_text(&p, e->install);
    p_text_or_null(&p, e->decision);
    p_text_or_null(&p, e->action);
    if (e->has_p)
      p_double(&p, e->p);
    else
      p_null_double(&p);
    p_text_or_null(&p, e->mode);
    p_text(&p, e->kind == LW_KIND_DECISION ? e->reason : NULL); /* "" is a valid reason */
    p_text_or_null(&p, e->segment);
    p_text_or_null(&p, e->model);
    if (e->has_x)
      p_blob(&p, xbuf[k], x_encode(e->x, e->n_x, xbuf[k]));
    else
      p_null_blob(&p);
    p_text_or_null(&p, e->code);
    p_int(&p, batch_row * EVENT_ID_STRIDE + (int64_t)k); /* the position among the stored ones */
    if (e->skewed)
      p_int(&p, it->received_ms);
    else
      p_null_int(&p);
    p_text_or_null(&p, e->token);
    p_text_or_null(&p, e->channel);
    k++;
  }
  int id = n_kept <= LW_MAX_EVENTS_PREPARED ? STMT_EVENTS + (int)n_kept : -1;
  lw_status st = pipe_send(s, s->w, id, s->sql, &p, sent, "storing events", err, errlen);
  p_free(&p);
  free(xbuf);
  return st;
}

/* The approval records among an item's kept events (store.h "approval requests"): a request
 * becomes a row (the first of a site's decision id wins), an answer fills the device's side. */
static lw_status send_approvals(pg_store *s, lw_store_item *it, const uint8_t *keep, int *sent, char *err,
                                size_t errlen) {
  lw_status st = LW_OK;
  for (size_t k = 0; st == LW_OK && k < it->batch->n_events; k++) {
    const lw_event *e = &it->batch->events[k];
    if (!keep[k] || !(lw_kind_flags(e->kind) & LW_KIND_F_APPROVAL)) continue;
    params p;
    p_init(&p);
    p_text(&p, it->site), p_text(&p, e->decision), p_text(&p, e->install);
    if (e->kind == LW_KIND_APPROVAL_REQUEST) {
      char hash[LW_APPROVAL_HASH_LEN + 1], attrs[sizeof ((lw_approval *)0)->attrs];
      lw_store_approval_key_hash(e->key, hash);
      lw_store_approval_attrs(e, attrs, sizeof attrs);
      p_text(&p, hash), p_text(&p, e->action), p_text_or_null(&p, e->segment), p_text(&p, e->reason);
      p_text(&p, attrs), p_int(&p, e->t), p_int(&p, it->received_ms);
      st = pipe_send(s, s->w, -1,
                     "INSERT INTO approvals(site, decision, install, key_hash, action, segment, reason, attrs, t,"
                     " received_at, state) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')"
                     " ON CONFLICT (site, decision) DO NOTHING",
                     &p, sent, "storing an approval request", err, errlen);
    } else {
      p_text(&p, e->answer), p_int(&p, e->t);
      st = pipe_send(s, s->w, -1,
                     "UPDATE approvals SET device_answer = $4, device_at = $5"
                     " WHERE site = $1 AND decision = $2 AND install = $3",
                     &p, sent, "storing an approval answer", err, errlen);
    }
    p_free(&p);
  }
  return st;
}

/* The console funnel's marks (see "the console's funnel" below): each writer connection's own. */
static const char k_funnel_dirty_pg[] =
    "CREATE TEMP TABLE IF NOT EXISTS rollup_dirty(site " TXT " NOT NULL, decision " TXT " NOT NULL,"
    " \"full\" integer NOT NULL DEFAULT 0, PRIMARY KEY(site, decision))";

/* The writer's fixed statements and its rollup_dirty, prepared on the current backend (again
 * after a reconnect, or after a failed group, which may have left some prepared and some not).
 * Every write path of the writer connection calls it before its BEGIN. */
static lw_status prepare_writer(pg_store *s, char *err, size_t errlen) {
  PGconn *c = s->w;
  if (s->prepared_pid && s->prepared_pid == PQbackendPID(c)) return LW_OK;
  memset(s->prepared, 0, sizeof s->prepared);
  lw_status st = run(c, "DEALLOCATE ALL", NULL, NULL, "preparing the writer", err, errlen);
  if (st == LW_OK) st = run(c, k_funnel_dirty_pg, NULL, NULL, "preparing the writer", err, errlen);
  for (int id = 0; st == LW_OK && id < STMT_EVENTS; id++) {
    char name[16];
    snprintf(name, sizeof name, "lw_w%d", id);
    PGresult *r = PQprepare(c, name, k_writer_sql[id], k_writer_nparams[id], k_writer_types[id]);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
      trim_copy(err, errlen, "preparing the writer", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
      st = LW_ERR_IO;
    }
    PQclear(r);
    s->prepared[id] = 2;
  }
  if (st == LW_OK) s->prepared_pid = PQbackendPID(c);
  return st;
}

/* ---- rollups (PG schema 2): kept by the writer in the transaction of the events ----------
 * The rows of one stored batch ($1 its row id, $2 the id stride, $3 its site) added in one
 * statement: an install new under a key (inserted, xmax 0) adds one to the key's installs. */
#define PG_RU_SUM(e, name, stat, flags, rules) ", (sum(n) FILTER (WHERE kind = '" name "'))::bigint AS \"n_" name "\""
#define PG_RU_K(e, name, stat, flags, rules) ", coalesce(k.\"n_" name "\", 0)"
#define PG_RU_ADD(e, name, stat, flags, rules) ", \"n_" name "\" = r.\"n_" name "\" + excluded.\"n_" name "\""
#define PG_RU_SUB(e, name, stat, flags, rules) ", \"n_" name "\" = r.\"n_" name "\" - coalesce(k.\"n_" name "\", 0)"
#define PG_RU_GROUPS                                                                              \
  " g AS (SELECT e.site, v.dim, v.key, e.install, e.kind, count(*) AS n FROM ev e " PG_RU_DIMS   \
  "  WHERE v.key IS NOT NULL GROUP BY 1, 2, 3, 4, 5),"                                            \
  " k AS (SELECT site, dim, key, sum(n)::bigint AS n" LW_KINDS(PG_RU_SUM) " FROM g GROUP BY 1, 2, 3),"
/* The decisions among ev into rollup_days (sign "" adds, "-" subtracts), with their fairness
 * segments (PG schema 6). */
#define PG_RU_DAYS_ADD(sign)                                                                         \
  " dy AS (INSERT INTO rollup_days AS r(site, day, action, segment, mode, fair, decisions, prompts)"   \
  "  SELECT site, " PG_RU_DAY ", coalesce(action, ''), coalesce(segment, ''), coalesce(mode, ''),"   \
  "  lw_fair(segment, x), " sign "count(*), " sign "count(*) FILTER (WHERE " PG_RU_PROMPTED ") FROM ev" \
  "  WHERE kind = 'decision' GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"                    \
  "  ON CONFLICT (site, day, action, segment, mode, fair) DO UPDATE"                                  \
  "  SET decisions = r.decisions + excluded.decisions, prompts = r.prompts + excluded.prompts)"
static const char k_rollup_add_pg[] =
    "WITH ev AS (SELECT site, install, kind, action, segment, code, mode, t, x FROM events"
    "  WHERE id >= $1 * $2 AND id < ($1 + 1) * $2),"
    PG_RU_GROUPS
    " ins AS (INSERT INTO rollup_installs AS r(site, dim, key, install, n)"
    "  SELECT site, dim, key, install, sum(n)::bigint FROM g GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (site, dim, key, install) DO UPDATE SET n = r.n + excluded.n"
    "  RETURNING r.site, r.dim, r.key, (r.xmax = 0) AS fresh),"
    " f AS (SELECT site, dim, key, count(*) FILTER (WHERE fresh) AS fresh FROM ins GROUP BY 1, 2, 3),"
    PG_RU_DAYS_ADD("") ","
    " kk AS (INSERT INTO rollup_keys AS r(site, dim, key, installs, n" LW_KINDS(PG_RU_COL) ")"
    "  SELECT k.site, k.dim, k.key, coalesce(f.fresh, 0), k.n" LW_KINDS(PG_RU_K)
    "  FROM k LEFT JOIN f ON f.site = k.site AND f.dim = k.dim AND f.key = k.key ORDER BY 1, 2, 3"
    "  ON CONFLICT (site, dim, key) DO UPDATE SET installs = r.installs + excluded.installs, n = r.n + excluded.n"
    LW_KINDS(PG_RU_ADD) " RETURNING r.dim, (r.xmax = 0) AS fresh)"
    " INSERT INTO rollup_site AS r(site, outcomes, batches, codes)"
    "  VALUES($3, (SELECT count(*) FROM ev), 1, (SELECT count(*) FROM kk WHERE fresh AND dim = 2))"
    "  ON CONFLICT (site) DO UPDATE SET outcomes = r.outcomes + excluded.outcomes, batches = r.batches + 1,"
    "  codes = r.codes + excluded.codes";

static lw_status rollup_send_add(pg_store *s, PGconn *c, const lw_store_item *it, int64_t batch_row, int *sent,
                                 char *err, size_t errlen) {
  params p;
  p_init(&p);
  p_int(&p, batch_row), p_int(&p, EVENT_ID_STRIDE), p_text(&p, it->site);
  lw_status st = pipe_send(s, c, -1, k_rollup_add_pg, &p, sent, "keeping the rollups", err, errlen);
  p_free(&p);
  return st;
}

/* Subtract the events ev_sql selects (its columns site, install, kind, action, segment, code, mode, t, x;
 * parameters p), before they are deleted: a key's installs lose those whose count reaches 0, and
 * the emptied rows go (found through the partial indexes on n <= 0). */
static const char k_rollup_sub_pg[] =
    "WITH ev AS (%s),"
    PG_RU_GROUPS
    " upd AS (UPDATE rollup_installs r SET n = r.n - x.n FROM (SELECT site, dim, key, install, sum(n)::bigint AS n"
    "  FROM g GROUP BY 1, 2, 3, 4) x WHERE r.site = x.site AND r.dim = x.dim AND r.key = x.key AND r.install = x.install"
    "  RETURNING r.site, r.dim, r.key, r.n),"
    " f AS (SELECT site, dim, key, count(*) FILTER (WHERE n <= 0) AS gone FROM upd GROUP BY 1, 2, 3),"
    " st AS (UPDATE rollup_site r SET outcomes = r.outcomes - x.n FROM (SELECT site, count(*) AS n FROM ev GROUP BY 1) x"
    "  WHERE r.site = x.site),"
    PG_RU_DAYS_ADD("-")
    " UPDATE rollup_keys r SET installs = r.installs - coalesce(f.gone, 0), n = r.n - k.n" LW_KINDS(PG_RU_SUB)
    " FROM k LEFT JOIN f ON f.site = k.site AND f.dim = k.dim AND f.key = k.key"
    " WHERE r.site = k.site AND r.dim = k.dim AND r.key = k.key";

static lw_status rollup_subtract(PGconn *c, const char *ev_sql, params *p, char *err, size_t errlen) {
  char sql[sizeof k_rollup_sub_pg + 512];
  if ((size_t)snprintf(sql, sizeof sql, k_rollup_sub_pg, ev_sql) >= sizeof sql) {
    snprintf(err, errlen, "keeping the rollups: query too long");
    return LW_ERR_INVALID;
  }
  lw_status st = run(c, sql, p, NULL, "keeping the rollups", err, errlen);
  if (st == LW_OK)
    st = run(c, "DELETE FROM rollup_installs WHERE n <= 0", NULL, NULL, "keeping the rollups", err, errlen);
  if (st == LW_OK)
    st = run(c,
             "WITH d AS (DELETE FROM rollup_keys WHERE n <= 0 RETURNING site, dim)"
             " UPDATE rollup_site r SET codes = r.codes - x.n FROM (SELECT site, count(*) AS n FROM d WHERE dim = 2"
             " GROUP BY site) x WHERE r.site = x.site",
             NULL, NULL, "keeping the rollups", err, errlen);
  if (st == LW_OK) st = run(c, "DELETE FROM rollup_days WHERE decisions <= 0", NULL, NULL, "keeping the rollups", err, errlen);
  return st;
}

/* ---- the console's funnel (PG schema 4): kept by the writer in the transaction of the events ----
 * As SQLite's (rollup_sqlite.c "the console's funnel"), with the same rules (funnel_sql.h):
 * whatever may change a shared decision's part of the console report marks the decision in the
 * connection's temporary rollup_dirty (a write by its new batches' id ranges, a landing by its
 * code, a referee report by its code, a review by the report, a deletion by what it deletes,
 * before deleting it), and funnel_settle recomputes every marked decision at once, before
 * COMMIT: its rollup_dec rows leave rollup_funnel, then the rows it brings now (the join's
 * statements run for each marked decision in LATERAL subqueries) go in and are added.
 *
 * Several replicas: a recompute reads what is committed when it runs, so the transactions that
 * change a site's funnel take the site's advisory lock (funnel_lock) before they change or read
 * anything it depends on, and hold it to COMMIT: each then marks and recomputes over everything
 * committed before it. The writer held the site's rollup_site row from its first batch to COMMIT
 * already (PG schema 2), so this orders nothing that was not ordered. The lock is taken in the
 * order of the sites' hashes, so two transactions of several sites cannot wait on each other. */
#define FUNNEL_LOCK "1282893422" /* 'Lwfn': the first key of the two-key advisory locks */
/* $1: the sites, comma-separated (site ids are [A-Za-z0-9_-], config.c), or every site. */
static const char k_funnel_lock_sites[] =
    "SELECT pg_advisory_xact_lock(" FUNNEL_LOCK ", h) FROM (SELECT DISTINCT hashtext(s) AS h"
    " FROM unnest(string_to_array($1, ',')) s ORDER BY h) x";
static const char k_funnel_lock_all[] =
    "SELECT pg_advisory_xact_lock(" FUNNEL_LOCK ", h) FROM (SELECT DISTINCT hashtext(site) AS h"
    " FROM rollup_site ORDER BY h) x";

/* What a decision row brings, in the tables' column order (console.c add_decision). */
#define PG_FN_CONTRIB(X) X(shares) X(landed) X(converted) X(kept) X(landings) X(conversions) X(retained)
#define PG_FN_COL(c) ", " #c
#define PG_FN_R_COL(c) ", r." #c
#define PG_FN_ADD(c) ", " #c " = f." #c " + excluded." #c
#define PG_FN_SUB_SUM(c) ", -sum(" #c ")::bigint"
#define PG_FN_ADD_SUM(c) ", sum(" #c ")::bigint"
#define PG_FN_UPSERT(sums)                                                                            \
  " INSERT INTO rollup_funnel AS f(site, day, action, segment, mode, channel, fair, n" PG_FN_CONTRIB(PG_FN_COL) ")" \
  " SELECT site, day, action, segment, mode, channel, fair, " sums " FROM moved GROUP BY 1, 2, 3, 4, 5, 6, 7"   \
  " ORDER BY 1, 2, 3, 4, 5, 6, 7 ON CONFLICT (site, day, action, segment, mode, channel, fair) DO UPDATE"      \
  " SET n = f.n + excluded.n" PG_FN_CONTRIB(PG_FN_ADD)

/* 0: the marked decisions' rows leave rollup_dec and rollup_funnel. */
static const char k_funnel_sub_pg[] =
    "WITH moved AS (DELETE FROM rollup_dec r USING rollup_dirty d WHERE r.site = d.site AND r.decision = d.decision"
    " RETURNING r.site, r.day, r.action, r.segment, r.mode, r.channel, r.fair" PG_FN_CONTRIB(PG_FN_R_COL) ")"
    PG_FN_UPSERT("-count(*)" PG_FN_CONTRIB(PG_FN_SUB_SUM));
/* 1: the rows they bring now go in (%s: the join's statements, funnel_sql.h, for fm's decision:
 * shared; owned tokens and their landings; the token join's reports; the code of the first
 * share without a token; that code's landings; its reports; its channel; the decision rows with
 * their fairness segments). Which join
 * holds is store.h's order: by token when it owns one, else by code, else none; a row counts
 * as console.c add_decision counts it (prompted: an action other than "" and none). */
static const char k_funnel_add_pg[] =
    "WITH fm AS (SELECT d.site, d.decision FROM rollup_dirty d WHERE (%s)),"
    " fo AS (SELECT fm.site, fm.decision,"
    "  CASE WHEN t7.tokens > 0 THEN t7.landings WHEN t9.code IS NOT NULL THEN t10.landings ELSE 0 END AS landings,"
    "  CASE WHEN t7.tokens > 0 THEN t8.c WHEN t9.code IS NOT NULL THEN t11.c ELSE 0 END AS conversions,"
    "  CASE WHEN t7.tokens > 0 THEN t8.k WHEN t9.code IS NOT NULL THEN t11.k ELSE 0 END AS retained,"
    "  CASE WHEN t7.tokens > 0 THEN t8.v WHEN t9.code IS NOT NULL THEN t11.v ELSE 0 END AS value,"
    "  CASE WHEN t7.tokens > 0 THEN t8.r WHEN t9.code IS NOT NULL THEN t11.r ELSE 0 END AS revenue"
    "  FROM fm CROSS JOIN LATERAL (%s) t7(tokens, landings) CROSS JOIN LATERAL (%s) t8(c, k, v, r)"
    "  LEFT JOIN LATERAL (%s) t9(code) ON true CROSS JOIN LATERAL (%s) t10(landings)"
    "  CROSS JOIN LATERAL (%s) t11(c, k, v, r)),"
    " fc AS (SELECT fo.*, coalesce(ch.channel, '') AS channel FROM fo LEFT JOIN LATERAL (%s) ch(channel) ON true),"
    " fr AS (SELECT fc.*, e.id, e.day, e.action, e.segment, e.mode, e.fair,"
    "  (e.action <> '' AND e.action <> '" LW_ACTION_NONE "') AS p"
    "  FROM fc CROSS JOIN LATERAL (%s) e(id, day, action, segment, mode, fair)),"
    " moved AS (INSERT INTO rollup_dec(site, decision, id, day, action, segment, mode" PG_FN_CONTRIB(PG_FN_COL)
    ", value, revenue, channel, fair) SELECT site, decision, id, day, action, segment, mode, p::int,"
    "  (p AND landings > 0)::int, (p AND conversions > 0)::int, (p AND conversions > 0 AND retained > 0)::int,"
    "  landings, conversions, retained, value, revenue, channel, fair FROM fr"
    "  RETURNING site, day, action, segment, mode, channel, fair" PG_FN_CONTRIB(PG_FN_COL) ")"
    PG_FN_UPSERT("count(*)" PG_FN_CONTRIB(PG_FN_ADD_SUM));

/* The settle's FUNNEL_SETTLE_N statements into sql[i]: k_funnel_sub_pg, k_funnel_add_pg with the
 * join's statements in (t7..t11 as rollup_sqlite.c's statements 7..11), then the emptied funnel
 * rows and the marks go. */
#define FUNNEL_SQL_CAP 16384
enum { FUNNEL_SETTLE_N = 4 };
static lw_status funnel_settle_sql(char sql[FUNNEL_SETTLE_N][FUNNEL_SQL_CAP], char *err, size_t errlen) {
  char landing[40];
  lw_fn_landing_literal(landing);
  const char *const d[] = {"d.site", "d.decision"}, *const m[] = {"fm.site", "fm.decision", landing},
                    *const c[] = {"fm.site", "t9.code", landing}, *const o[] = {"fc.site", "fc.decision"},
                    *const h[] = {"fo.site", "fo.decision"};
  static const struct {
    const char *tmpl;
    int sub; /* 0 d, 1 m, 2 c, 3 o, 4 h */
  } parts[] = {{LW_FN_SHARED, 0},   {LW_FN_TOKEN_LANDINGS, 1}, {LW_FN_TOKEN_RX, 1}, {LW_FN_CODE_OF, 1},
               {LW_FN_CODE_LANDINGS, 2}, {LW_FN_CODE_RX, 2},  {LW_FN_CHANNEL, 4},  {LW_FN_DEC_ROWS, 3}};
  enum { N_PARTS = sizeof parts / sizeof parts[0] };
  const char *const *subs[] = {d, m, c, o, h};
  const int n_subs[] = {2, 3, 3, 2, 2};
  char(*x)[4096] = malloc(N_PARTS * sizeof *x);
  if (!x) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  int ok = 1;
  for (int i = 0; ok && i < N_PARTS; i++)
    ok = lw_fn_expand(parts[i].tmpl, NULL, subs[parts[i].sub], n_subs[parts[i].sub], x[i], sizeof x[i]);
  ok = ok && snprintf(sql[0], FUNNEL_SQL_CAP, "%s", k_funnel_sub_pg) < FUNNEL_SQL_CAP &&
       snprintf(sql[1], FUNNEL_SQL_CAP, k_funnel_add_pg, x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]) <
           FUNNEL_SQL_CAP;
  free(x);
  snprintf(sql[2], FUNNEL_SQL_CAP, "DELETE FROM rollup_funnel WHERE n <= 0");
  snprintf(sql[3], FUNNEL_SQL_CAP, "DELETE FROM rollup_dirty");
  if (!ok) {
    snprintf(err, errlen, "keeping the funnel: a statement is too long");
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

/* A mark of funnel_sql.h with cond (?1, ?2: p's first two parameters) in PostgreSQL's form. */
static lw_status funnel_mark_sql(const char *tmpl, const char *cond, char *out, size_t cap, char *err, size_t errlen) {
  static const char *const dollars[] = {"$", "$", "$"};
  if (lw_fn_expand(tmpl, cond, dollars, 3, out, cap)) return LW_OK;
  snprintf(err, errlen, "keeping the funnel: a statement is too long");
  return LW_ERR_INVALID;
}

/* Run the marks of a deletion (cond with p's parameters), before it. */
static lw_status funnel_mark_deleted(PGconn *c, const char *cond, params *p, char *err, size_t errlen) {
  static const char *const marks[] = {LW_FN_MARK_DELETED_DECISIONS, LW_FN_MARK_LANDED_CODES, LW_FN_MARK_TOKENS};
  char sql[4096];
  lw_status st = LW_OK;
  for (size_t i = 0; st == LW_OK && i < sizeof marks / sizeof marks[0]; i++) {
    st = funnel_mark_sql(marks[i], cond, sql, sizeof sql, err, errlen);
    if (st == LW_OK) st = run(c, sql, p, NULL, "keeping the funnel", err, errlen);
  }
  return st;
}

/* One mark with p's parameters (LW_FN_MARK_CODE: site, code; LW_FN_MARK_REPORT: the id). */
static lw_status funnel_mark(PGconn *c, const char *tmpl, params *p, char *err, size_t errlen) {
  char sql[4096];
  lw_status st = funnel_mark_sql(tmpl, NULL, sql, sizeof sql, err, errlen);
  return st == LW_OK ? run(c, sql, p, NULL, "keeping the funnel", err, errlen) : st;
}

/* Recompute the marked decisions (outside the write pipeline). */
static lw_status funnel_settle(PGconn *c, char *err, size_t errlen) {
  char(*sql)[FUNNEL_SQL_CAP] = malloc(FUNNEL_SETTLE_N * sizeof *sql);
  if (!sql) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  lw_status st = funnel_settle_sql(sql, err, errlen);
  for (int i = 0; st == LW_OK && i < FUNNEL_SETTLE_N; i++) st = run(c, sql[i], NULL, NULL, "keeping the funnel", err, errlen);
  free(sql);
  return st;
}

/* The funnel's lock on one site ($1) or, site NULL, on every site. */
static lw_status funnel_lock(PGconn *c, const char *site, char *err, size_t errlen) {
  params p;
  p_init(&p);
  if (site) p_text(&p, site);
  lw_status st = run(c, site ? k_funnel_lock_sites : k_funnel_lock_all, site ? &p : NULL, NULL,
                     "locking the funnel", err, errlen);
  p_free(&p);
  return st;
}

/* Schema 5 to 6 (and 3 to 4 with it): rollup_days from every stored decision, then every shared
 * decision marked and settled, as the writer does (under the migration's lock). No spec is kept
 * yet (the server gives it, lw_store_set_fairness), so every decision's segments are 0. */
static lw_status funnel_rebuild(PGconn *c, char *err, size_t errlen) {
  static const char what[] = "migrating the schema to 6";
  char sql[1024];
  lw_status st = run(c, LW_FN_FILL_DAYS, NULL, NULL, what, err, errlen);
  if (st == LW_OK) st = run(c, k_funnel_dirty_pg, NULL, NULL, what, err, errlen);
  if (st == LW_OK) st = funnel_mark_sql(LW_FN_MARK_ALL, NULL, sql, sizeof sql, err, errlen);
  if (st == LW_OK) st = run(c, sql, NULL, NULL, what, err, errlen);
  if (st == LW_OK) st = funnel_settle(c, err, errlen);
  return st;
}

static lw_status write_group(pg_store *s, lw_store_item **order, size_t n, char *sqlstate, char *err,
                             size_t errlen) {
  PGconn *c = s->w;
  size_t total_events = 0;
  for (size_t i = 0; i < n; i++) total_events += order[i]->batch->n_events;
  int64_t *rows = calloc(n ? n : 1, sizeof *rows);
  uint8_t *keep = calloc(total_events ? total_events : 1, 1);
  PGresult **res = calloc(total_events + n + 1, sizeof *res);
  if (!rows || !keep || !res) {
    free(rows), free(keep), free(res);
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  int sent = 0;
  lw_status st = prepare_writer(s, err, errlen);
  if (st == LW_OK && !PQenterPipelineMode(c)) {
    trim_copy(err, errlen, "starting a write", PQerrorMessage(c));
    st = LW_ERR_IO;
  }
  /* 1: the batches */
  if (st == LW_OK) st = pipe_send(s, c, -1, "BEGIN", NULL, &sent, "starting a write", err, errlen);
  for (size_t i = 0; st == LW_OK && i < n; i++) {
    const lw_batch *b = order[i]->batch;
    params p;
    p_init(&p);
    p_text(&p, order[i]->site), p_text(&p, b->batch_id), p_int(&p, order[i]->received_ms), p_int(&p, b->sent_at);
    p_int(&p, (int64_t)b->n_events);
    st = pipe_send(s, c, STMT_BATCH, k_writer_sql[STMT_BATCH], &p, &sent, "storing a batch", err, errlen);
    p_free(&p);
  }
  int sent1 = sent;
  if (sent) {
    lw_status synced = pipe_sync(c, sent, res, sqlstate, "storing a batch", err, errlen);
    if (st == LW_OK) st = synced;
  }
  for (size_t i = 0; st == LW_OK && i < n; i++) {
    order[i]->duplicate = PQntuples(res[1 + i]) == 0;
    rows[i] = order[i]->duplicate ? 0 : get_int(res[1 + i], 0, 0);
  }
  clear_all(res, sent1);
  /* 2: the owners of the codes the new batches carry */
  sent = 0;
  for (size_t i = 0; st == LW_OK && i < n; i++) {
    if (order[i]->duplicate) continue;
    for (size_t k = 0; st == LW_OK && k < order[i]->batch->n_events; k++) {
      const lw_event *e = &order[i]->batch->events[k];
      if (!coded(e)) continue;
      params p;
      p_init(&p);
      p_text(&p, order[i]->site), p_text(&p, e->code), p_text(&p, e->install);
      int id = lw_kind_flags(e->kind) & LW_KIND_F_SHARED ? STMT_CLAIM : STMT_OWNER;
      st = pipe_send(s, c, id, k_writer_sql[id], &p, &sent, "storing a code's owner", err, errlen);
      p_free(&p);
    }
  }
  int sent2 = sent;
  if (st == LW_OK && sent) st = pipe_sync(c, sent, res, sqlstate, "storing a code's owner", err, errlen);
  /* 3: the funnel's lock on the new batches' sites, the kept events, flags, counts, the funnel's
   * marks and recompute, COMMIT */
  sent = 0;
  int at = 0;
  size_t off = 0;
  char marks[3][2048];
  size_t sites_len = 0, sites_cap = 1;
  for (size_t i = 0; i < n; i++) sites_cap += strlen(order[i]->site) + 1;
  char *sites = malloc(sites_cap);
  if (!sites && st == LW_OK) {
    snprintf(err, errlen, "out of memory");
    st = LW_ERR_NOMEM;
  }
  for (size_t i = 0; sites && i < n; i++) /* the new batches' sites (repeats are harmless) */
    if (!order[i]->duplicate)
      sites_len += (size_t)snprintf(sites + sites_len, sites_cap - sites_len, "%s%s", sites_len ? "," : "",
                                    order[i]->site);
  if (st == LW_OK && sites_len) {
    params p;
    p_init(&p);
    p_text(&p, sites);
    st = pipe_send(s, c, -1, k_funnel_lock_sites, &p, &sent, "locking the funnel", err, errlen);
    p_free(&p);
  }
  static const char *const added[3] = {LW_FN_MARK_ADDED, LW_FN_MARK_LANDED_CODES, LW_FN_MARK_TOKENS};
  for (int m = 0; st == LW_OK && m < 3; m++)
    st = funnel_mark_sql(added[m], "id >= ?1 * ?2 AND id < (?1 + 1) * ?2", marks[m], sizeof marks[m], err, errlen);
  for (size_t i = 0; st == LW_OK && i < n; off += order[i]->batch->n_events, i++) {
    lw_store_item *it = order[i];
    if (it->duplicate) continue;
    size_t n_kept = 0;
    for (size_t k = 0; st == LW_OK && k < it->batch->n_events; k++) {
      const lw_event *e = &it->batch->events[k];
      keep[off + k] = 1;
      if (coded(e)) {
        PGresult *r = res[at++];
        const char *owner = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : NULL;
        if ((lw_kind_flags(e->kind) & LW_KIND_F_SHARED) && owner && strcmp(owner, e->install) != 0) {
          keep[off + k] = 0; /* another install's code: not stored */
          st = send_flag(s, c, &sent, it->site, "install", e->install, "code_owner", it->received_ms, err, errlen);
        } else if (!(lw_kind_flags(e->kind) & LW_KIND_F_SHARED) && owner && strcmp(owner, e->install) == 0) {
          st = send_flag(s, c, &sent, it->site, "install", e->install, "self_referral", it->received_ms, err, errlen);
          if (st == LW_OK)
            st = send_flag(s, c, &sent, it->site, "code", e->code, "self_referral", it->received_ms, err, errlen);
        }
      }
      n_kept += keep[off + k];
    }
    if (st == LW_OK && n_kept) st = send_events(s, it, rows[i], keep + off, n_kept, &sent, err, errlen);
    if (st == LW_OK) st = rollup_send_add(s, c, it, rows[i], &sent, err, errlen);
    if (st == LW_OK && n_kept) st = send_approvals(s, it, keep + off, &sent, err, errlen);
    if (st == LW_OK && n_kept < it->batch->n_events) {
      params p;
      p_init(&p);
      p_int(&p, (int64_t)n_kept), p_int(&p, rows[i]);
      st = pipe_send(s, c, STMT_FIX, k_writer_sql[STMT_FIX], &p, &sent, "storing a batch", err, errlen);
      p_free(&p);
    }
    it->stored = n_kept;
    for (int m = 0; st == LW_OK && n_kept && m < 3; m++) {
      params p;
      p_init(&p);
      p_int(&p, rows[i]), p_int(&p, EVENT_ID_STRIDE);
      st = pipe_send(s, c, -1, marks[m], &p, &sent, "keeping the funnel", err, errlen);
      p_free(&p);
    }
  }
  clear_all(res, sent2);
  if (st == LW_OK && sites_len) {
    char(*settle)[FUNNEL_SQL_CAP] = malloc(FUNNEL_SETTLE_N * sizeof *settle);
    st = settle ? funnel_settle_sql(settle, err, errlen) : LW_ERR_NOMEM;
    if (!settle) snprintf(err, errlen, "out of memory");
    for (int k = 0; st == LW_OK && k < FUNNEL_SETTLE_N; k++)
      st = pipe_send(s, c, -1, settle[k], NULL, &sent, "keeping the funnel", err, errlen);
    free(settle);
  }
  if (st == LW_OK) st = pipe_send(s, c, -1, "COMMIT", NULL, &sent, "committing", err, errlen);
  if (sent) {
    lw_status synced = pipe_sync(c, sent, NULL, sqlstate, "committing", err, errlen);
    if (st == LW_OK) st = synced;
  }
  if (PQpipelineStatus(c) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c) && st == LW_OK) {
    trim_copy(err, errlen, "committing", PQerrorMessage(c));
    st = LW_ERR_IO;
  }
  /* The events INSERTs prepared in this group exist once it committed; after a failure the
   * next group starts over (prepare_writer). */
  for (size_t i = STMT_EVENTS; i < sizeof s->prepared; i++)
    if (s->prepared[i] == 1) s->prepared[i] = st == LW_OK ? 2 : 0;
  if (st != LW_OK) s->prepared_pid = 0;
  free(rows), free(keep), free(res), free(sites);
  return st;
}

static int item_order(const void *a, const void *b) {
  const lw_store_item *x = *(lw_store_item *const *)a, *y = *(lw_store_item *const *)b;
  int c = strcmp(x->site, y->site);
  return c ? c : strcmp(x->batch->batch_id, y->batch->batch_id);
}

/* A deadlock (two replicas' groups taking the same rows in other orders) or a serialization
 * failure: the transaction is rolled back and may simply run again. */
static int retryable(const char *sqlstate) { return !strcmp(sqlstate, "40P01") || !strcmp(sqlstate, "40001"); }

static lw_status pg_write(lw_store *base, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  /* Batches go in in (site, batch_id) order, so two replicas' groups lock their index entries
   * in the same order; code owners can still cross, which the retry covers. */
  lw_store_item **order = malloc((n ? n : 1) * sizeof *order);
  if (!order) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  memcpy(order, items, n * sizeof *order);
  qsort(order, n, sizeof *order, item_order);
  lw_status st = LW_OK;
  for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    char sqlstate[6] = "";
    for (size_t i = 0; i < n; i++) items[i]->stored = 0, items[i]->duplicate = 0;
    st = conn_ready(s->w, "starting a write", err, errlen);
    if (st == LW_OK) st = write_group(s, order, n, sqlstate, err, errlen);
    if (st == LW_OK) break;
    if (PQstatus(s->w) == CONNECTION_OK) rollback(s->w);
    if (!retryable(sqlstate)) break;
  }
  free(order);
  if (st != LW_OK)
    for (size_t i = 0; i < n; i++) items[i]->stored = 0, items[i]->duplicate = 0;
  return st;
}

static lw_status exec_text2(PGconn *c, const char *sql, const char *a, const char *b, int64_t *changes, char *err,
                            size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, a), p_text(&p, b);
  PGresult *r;
  lw_status st = run(c, sql, &p, &r, "forgetting", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  if (changes) *changes = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return LW_OK;
}

/* Every forget of one writer group in one transaction. PostgreSQL keeps no deleted row where a
 * query can reach it once this commits; its pages are reused by (auto)vacuum and its WAL
 * segments recycled after checkpoints (README "PostgreSQL": the operator's retention of WAL
 * archives and backups is outside the store). */
static lw_status pg_forget(lw_store *base, lw_forget_item *const *items, size_t n, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  char owner_sql[512];
  with_shared_kinds("SELECT EXISTS(SELECT 1 FROM events WHERE site = $1 AND code = $2 AND kind IN (%s)"
                    " AND install = $3)::int",
                    owner_sql, sizeof owner_sql);
  for (size_t i = 0; i < n; i++) items[i]->deleted = 0, items[i]->denied = 0;
  lw_status st = conn_ready(s->w, "starting a forget", err, errlen);
  if (st == LW_OK) st = prepare_writer(s, err, errlen);
  if (st == LW_OK) st = run(s->w, "BEGIN", NULL, NULL, "starting a forget", err, errlen);
  size_t sites_len = 0, sites_cap = 1;
  for (size_t i = 0; i < n; i++) sites_cap += strlen(items[i]->site) + 1;
  char *sites = malloc(sites_cap);
  if (!sites && st == LW_OK) {
    snprintf(err, errlen, "out of memory");
    st = LW_ERR_NOMEM;
  }
  for (size_t i = 0; sites && i < n; i++)
    sites_len += (size_t)snprintf(sites + sites_len, sites_cap - sites_len, "%s%s", sites_len ? "," : "", items[i]->site);
  if (st == LW_OK && sites_len) st = funnel_lock(s->w, sites, err, errlen);
  free(sites);
  for (size_t i = 0; st == LW_OK && i < n; i++) {
    lw_forget_item *it = items[i];
    if (!it->code) {
      params rp;
      p_init(&rp);
      p_text(&rp, it->site), p_text(&rp, it->install);
      st = rollup_subtract(s->w, "SELECT site, install, kind, action, segment, code, mode, t, x FROM events"
                                 " WHERE site = $1 AND install = $2", &rp, err, errlen);
      if (st == LW_OK) st = funnel_mark_deleted(s->w, "site = ?1 AND install = ?2", &rp, err, errlen);
      p_free(&rp);
      if (st == LW_OK)
        st = exec_text2(s->w, "DELETE FROM events WHERE site = $1 AND install = $2", it->site, it->install,
                        &it->deleted, err, errlen);
      if (st == LW_OK)
        st = exec_text2(s->w, "DELETE FROM code_owners WHERE site = $1 AND install = $2", it->site, it->install,
                        NULL, err, errlen);
      if (st == LW_OK)
        st = exec_text2(s->w, "DELETE FROM flags WHERE site = $1 AND kind = 'install' AND value = $2", it->site,
                        it->install, NULL, err, errlen);
      if (st == LW_OK) /* schema 3 */
        st = exec_text2(s->w, "DELETE FROM approvals WHERE site = $1 AND install = $2", it->site, it->install,
                        NULL, err, errlen);
      continue;
    }
    params p;
    p_init(&p);
    p_text(&p, it->site), p_text(&p, it->code), p_text(&p, it->install);
    int64_t owner = 0;
    st = one_int(s->w, owner_sql, &p, &owner, "forgetting a code", err, errlen);
    p_free(&p);
    if (st != LW_OK) break;
    if (!owner) {
      it->denied = 1;
      continue;
    }
    p_init(&p);
    p_text(&p, it->site), p_text(&p, it->code);
    st = rollup_subtract(s->w, "SELECT site, install, kind, action, segment, code, mode, t, x FROM events"
                               " WHERE site = $1 AND code = $2", &p, err, errlen);
    if (st == LW_OK) st = funnel_mark_deleted(s->w, "site = ?1 AND code = ?2", &p, err, errlen);
    p_free(&p);
    if (st == LW_OK)
      st = exec_text2(s->w, "DELETE FROM events WHERE site = $1 AND code = $2", it->site, it->code, &it->deleted,
                      err, errlen);
    if (st == LW_OK)
      st = exec_text2(s->w, "DELETE FROM code_owners WHERE site = $1 AND code = $2", it->site, it->code, NULL, err,
                      errlen);
    if (st == LW_OK)
      st = exec_text2(s->w, "DELETE FROM flags WHERE site = $1 AND kind = 'code' AND value = $2", it->site,
                      it->code, NULL, err, errlen);
  }
  if (st == LW_OK) st = funnel_settle(s->w, err, errlen);
  if (st == LW_OK) st = run(s->w, "COMMIT", NULL, NULL, "committing a forget", err, errlen);
  if (st != LW_OK) {
    rollback(s->w);
    for (size_t i = 0; i < n; i++) items[i]->deleted = 0, items[i]->denied = 0;
  }
  return st;
}

/* Retention by receive time (the index on batches.received_at), in bounded steps as SQLite's
 * (store.h lw_store_purge_step): a step takes the oldest expired batches (receive time, then id:
 * batch ids come from a sequence several replicas draw from, so they are not commit order)
 * holding about max_events events, whole batches and at least one, with their events and
 * rollups, in one transaction; the pass's last step also takes what leaves with the events. $1
 * the cut, $2 the id stride, $3 the step's batch ids (an array). */
#define PG_STEP_BATCHES "SELECT b.id FROM unnest($3::bigint[]) AS b(id)"
static lw_status pg_purge_step(lw_store *base, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                               char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *deleted = 0;
  *more = 0;
  lw_status st = conn_ready(s->w, "starting a purge", err, errlen);
  if (st == LW_OK) st = prepare_writer(s, err, errlen);
  if (st == LW_OK) st = run(s->w, "BEGIN", NULL, NULL, "starting a purge", err, errlen);
  if (st != LW_OK) return st;
  st = funnel_lock(s->w, NULL, err, errlen);
  /* The step's batches: read in order until they hold max_events (one more row says whether
   * any expired batch is left for the next step). */
  char *ids = NULL;
  size_t ids_len = 0, ids_cap = 0;
  int64_t n_batches = 0;
  if (st == LW_OK) {
    params p;
    p_init(&p);
    p_int(&p, before_ms), p_int(&p, max_events > 0 ? max_events + 1 : 0);
    PGresult *r = NULL;
    st = run(s->w,
             "SELECT id, n_events FROM batches WHERE received_at < $1 ORDER BY received_at, id"
             " LIMIT CASE WHEN $2 > 0 THEN $2 END",
             &p, &r, "purging", err, errlen);
    p_free(&p);
    int64_t events = 0;
    for (int k = 0; st == LW_OK && k < PQntuples(r); k++) {
      if (n_batches && max_events > 0 && events >= max_events) {
        *more = 1; /* this batch is expired too: the next step's */
        break;
      }
      const char *id = PQgetvalue(r, k, 0);
      if (!lw_grow((void **)&ids, &ids_cap, ids_len + strlen(id) + 3, 1)) {
        snprintf(err, errlen, "out of memory");
        st = LW_ERR_NOMEM;
        break;
      }
      ids_len += (size_t)snprintf(ids + ids_len, ids_cap - ids_len, "%s%s", ids_len ? "," : "{", id);
      events += get_int(r, k, 1);
      n_batches++;
    }
    /* as many rows as asked, all taken: more may be left */
    if (st == LW_OK && max_events > 0 && n_batches && n_batches == PQntuples(r) && n_batches == max_events + 1)
      *more = 1;
    PQclear(r);
  }
  if (st == LW_OK && n_batches) {
    ids[ids_len++] = '}', ids[ids_len] = '\0';
    params p;
    p_init(&p);
    p_int(&p, before_ms), p_int(&p, EVENT_ID_STRIDE), p_text(&p, ids);
    PGresult *r = NULL;
    st = funnel_mark_deleted(s->w,
                             "id IN (SELECT e.id FROM (" PG_STEP_BATCHES ") b JOIN events e ON e.id >= b.id * ?2"
                             " AND e.id < (b.id + 1) * ?2 WHERE ?1 IS NOT NULL AND ?3 IS NOT NULL)",
                             &p, err, errlen);
    if (st == LW_OK)
      st = rollup_subtract(s->w,
                           "SELECT e.site, e.install, e.kind, e.action, e.segment, e.code, e.mode, e.t, e.x"
                           " FROM (" PG_STEP_BATCHES ") b JOIN events e ON e.id >= b.id * $2 AND e.id < (b.id + 1) * $2"
                           " WHERE $1::bigint IS NOT NULL",
                           &p, err, errlen);
    if (st == LW_OK)
      st = run(s->w,
               "UPDATE rollup_site r SET batches = r.batches - x.n FROM (SELECT site, count(*) AS n FROM batches"
               " WHERE id IN (" PG_STEP_BATCHES ") AND $1::bigint IS NOT NULL AND $2 > 0 GROUP BY 1) x"
               " WHERE r.site = x.site",
               &p, NULL, "keeping the rollups", err, errlen);
    if (st == LW_OK)
      st = run(s->w,
               "DELETE FROM events e USING (" PG_STEP_BATCHES ") b WHERE e.id >= b.id * $2 AND e.id < (b.id + 1) * $2"
               " AND $1::bigint IS NOT NULL",
               &p, &r, "purging", err, errlen);
    if (st == LW_OK) *deleted = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if (st == LW_OK)
      st = run(s->w, "DELETE FROM batches WHERE id IN (" PG_STEP_BATCHES ") AND $1::bigint IS NOT NULL AND $2 > 0",
               &p, NULL, "purging", err, errlen);
    p_free(&p);
    if (st == LW_OK) st = funnel_settle(s->w, err, errlen);
    if (st == LW_OK) s->purge_deleted = 1;
  }
  free(ids);
  /* The pass's end, as SQLite's: approval requests and console actions before the cut; and,
   * when some step of the pass deleted batches, install keys leave code_owners and flags with
   * their last stored share (referee reports are the host's ledger and stay). */
  if (st == LW_OK && !*more) {
    params p;
    p_init(&p);
    p_int(&p, before_ms);
    st = run(s->w, "DELETE FROM approvals WHERE received_at < $1", &p, NULL, "purging", err, errlen);
    if (st == LW_OK) /* schema 5 */
      st = run(s->w, "DELETE FROM console_actions WHERE at < $1", &p, NULL, "purging", err, errlen);
    p_free(&p);
  }
  if (st == LW_OK && !*more && s->purge_deleted) {
    char owners[512];
    with_shared_kinds("DELETE FROM code_owners o WHERE NOT EXISTS(SELECT 1 FROM events e"
                      " WHERE e.site = o.site AND e.code = o.code AND e.kind IN (%s) AND e.install = o.install)",
                      owners, sizeof owners);
    st = run(s->w, owners, NULL, NULL, "purging", err, errlen);
    if (st == LW_OK)
      st = run(s->w,
               "DELETE FROM flags f WHERE kind = 'install' AND NOT EXISTS(SELECT 1 FROM events e"
               " WHERE e.site = f.site AND e.install = f.value)",
               NULL, NULL, "purging", err, errlen);
  }
  if (st == LW_OK) st = run(s->w, "COMMIT", NULL, NULL, "committing a purge", err, errlen);
  if (st != LW_OK) {
    rollback(s->w);
    *deleted = 0;
    *more = 0;
    return st;
  }
  if (!*more) s->purge_deleted = 0;
  return LW_OK;
}

/* The whole pass, step after step (the tools' and tests' call; the writer steps itself). */
static lw_status pg_purge(lw_store *base, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  *deleted = 0;
  int more = 1;
  while (more) {
    int64_t n = 0;
    lw_status st = pg_purge_step(base, before_ms, LW_PURGE_STEP_EVENTS, &n, &more, err, errlen);
    if (st != LW_OK) return st;
    *deleted += n;
  }
  return LW_OK;
}

/* ---------------------------------------------------------------- stats */

#define SQL_KIND_SUM(e, name, stat, flags, rules) ", count(*) FILTER (WHERE kind = '" name "')"
static const char kind_sums[] = LW_KINDS(SQL_KIND_SUM);
#undef SQL_KIND_SUM

/* Rows of a query one at a time (single-row mode), so a large answer never sits in memory. */
typedef int (*row_fn)(void *ctx, const PGresult *r);

static lw_status stream(PGconn *c, const char *sql, params *p, row_fn fn, void *ctx, const char *what, char *err,
                        size_t errlen) {
  if (p && p->oom) {
    snprintf(err, errlen, "%s: out of memory", what);
    return LW_ERR_NOMEM;
  }
  if (p)
    for (int i = 0; i < p->n; i++)
      if (p->is_num[i]) p->v[i] = p->num[i];
  if (!PQsendQueryParams(c, sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL, p ? p->len : NULL,
                         p ? p->fmt : NULL, 0)) {
    trim_copy(err, errlen, what, PQerrorMessage(c));
    return LW_ERR_IO;
  }
  PQsetSingleRowMode(c);
  lw_status st = LW_OK;
  int stop = 0;
  PGresult *r;
  while ((r = PQgetResult(c))) {
    ExecStatusType rs = PQresultStatus(r);
    if (rs == PGRES_SINGLE_TUPLE) {
      if (!stop && fn(ctx, r) != 0) {
        stop = 1;
        snprintf(err, errlen, "%s: out of memory", what);
        st = LW_ERR_NOMEM;
      }
    } else if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK && st == LW_OK) {
      trim_copy(err, errlen, what, PQresultErrorMessage(r));
      st = LW_ERR_IO;
    }
    PQclear(r);
  }
  return st;
}

typedef struct {
  lw_stats_row *rows;
  size_t n, cap;
  /* bounded */
  const lw_stats_bounds *b;
  lw_stats *out;
  size_t weakest;
} rows_ctx;

static void fill_row(lw_stats_row *row, const PGresult *r) {
  memset(row, 0, sizeof *row);
  get_text(r, 0, 0, row->key, sizeof row->key);
  row->installs = get_int(r, 0, 1);
  for (int k = 0; k < LW_KIND_COUNT; k++) row->counts[k] = get_int(r, 0, 2 + k);
}

static int collect_row(void *vctx, const PGresult *r) {
  rows_ctx *c = vctx;
  if (!lw_grow((void **)&c->rows, &c->cap, c->n + 1, sizeof *c->rows)) return -1;
  fill_row(&c->rows[c->n++], r);
  return 0;
}

static int code_before(const lw_stats_row *a, const lw_stats_row *b) {
  return a->installs != b->installs ? a->installs > b->installs : strcmp(a->key, b->key) < 0;
}
static int code_order(const void *a, const void *b) {
  return strcmp(((const lw_stats_row *)a)->key, ((const lw_stats_row *)b)->key);
}

/* As store_sqlite.c's codes_bounded: the best max_codes rows in a fixed array. */
static int bounded_row(void *vctx, const PGresult *r) {
  rows_ctx *c = vctx;
  lw_stats_row row;
  fill_row(&row, r);
  if (row.installs < c->b->min_installs) {
    c->out->codes_below_min++;
    return 0;
  }
  if (c->n < c->cap) {
    c->rows[c->n++] = row;
  } else {
    c->out->codes_left_out++;
    if (!code_before(&row, &c->rows[c->weakest])) return 0;
    c->rows[c->weakest] = row;
  }
  if (c->n == c->cap)
    for (size_t i = 0; i < c->n; i++)
      if (code_before(&c->rows[c->weakest], &c->rows[i])) c->weakest = i;
  return 0;
}

static lw_status breakdown(PGconn *c, const char *col, const char *site, lw_stats_row **rows, size_t *n_rows,
                           char *err, size_t errlen) {
  char sql[sizeof kind_sums + 256];
  snprintf(sql, sizeof sql,
           "SELECT %s, COUNT(DISTINCT install)%s FROM events WHERE site = $1 AND %s IS NOT NULL GROUP BY %s"
           " ORDER BY %s",
           col, kind_sums, col, col, col);
  params p;
  p_init(&p);
  p_text(&p, site);
  rows_ctx ctx = {0};
  lw_status st = stream(c, sql, &p, collect_row, &ctx, "reading stats", err, errlen);
  p_free(&p);
  if (st != LW_OK) {
    free(ctx.rows);
    return st;
  }
  *rows = ctx.rows;
  *n_rows = ctx.n;
  return LW_OK;
}

/* The stats walked from every stored event: what the rollups must equal (lw_store_stats_walk). */
static lw_status pg_stats_walk(lw_store *base, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                               char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  memset(out, 0, sizeof *out);
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading stats", err, errlen);
  /* One snapshot for every number. */
  if (st == LW_OK)
    st = run(rd->c, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL, NULL, "starting a read", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site);
  if (st == LW_OK)
    st = one_int(rd->c, "SELECT COUNT(*) FROM events WHERE site = $1", &p, &out->outcomes, "reading stats", err,
                 errlen);
  if (st == LW_OK)
    st = one_int(rd->c, "SELECT COUNT(*) FROM batches WHERE site = $1", &p, &out->batches, "reading stats", err,
                 errlen);
  p_free(&p);
  if (st == LW_OK) st = breakdown(rd->c, "action", site, &out->variants, &out->n_variants, err, errlen);
  if (st == LW_OK) st = breakdown(rd->c, "segment", site, &out->segments, &out->n_segments, err, errlen);
  if (st == LW_OK && bounds && bounds->max_codes) {
    char sql[sizeof kind_sums + 256];
    snprintf(sql, sizeof sql,
             "SELECT code, COUNT(DISTINCT install)%s FROM events WHERE site = $1 AND code IS NOT NULL GROUP BY code",
             kind_sums);
    rows_ctx ctx = {0};
    ctx.b = bounds, ctx.out = out, ctx.cap = bounds->max_codes;
    if (!(ctx.rows = calloc(ctx.cap, sizeof *ctx.rows))) {
      snprintf(err, errlen, "out of memory reading stats");
      st = LW_ERR_NOMEM;
    } else {
      p_init(&p);
      p_text(&p, site);
      st = stream(rd->c, sql, &p, bounded_row, &ctx, "reading stats", err, errlen);
      p_free(&p);
      qsort(ctx.rows, ctx.n, sizeof *ctx.rows, code_order);
      out->codes = ctx.rows;
      out->n_codes = ctx.n;
    }
  } else if (st == LW_OK) {
    st = breakdown(rd->c, "code", site, &out->codes, &out->n_codes, err, errlen);
  }
  rollback(rd->c);
  reader_give(rd);
  if (st != LW_OK) lw_stats_clear(out);
  return st;
}

/* GET /v1/stats from the writer-kept rollups (PG schema 2): index reads however many events and
 * codes the site has. */
#define PG_RU_KEY_COLS "SELECT key, installs" LW_KINDS(PG_RU_COL) " FROM rollup_keys WHERE site = $1 AND dim = "
static lw_status rollup_rows(PGconn *c, const char *sql, const char *site, const lw_stats_bounds *b, lw_stats_row **rows,
                             size_t *n_rows, char *err, size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, site);
  if (b) p_int(&p, b->min_installs), p_int(&p, (int64_t)b->max_codes);
  rows_ctx ctx = {0};
  lw_status st = stream(c, sql, &p, collect_row, &ctx, "reading stats", err, errlen);
  p_free(&p);
  if (st != LW_OK) {
    free(ctx.rows);
    return st;
  }
  *rows = ctx.rows;
  *n_rows = ctx.n;
  return LW_OK;
}

static lw_status pg_stats(lw_store *base, const char *site, const lw_stats_bounds *bounds, lw_stats *out, char *err,
                          size_t errlen) {
  pg_store *s = (pg_store *)base;
  memset(out, 0, sizeof *out);
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading stats", err, errlen);
  if (st == LW_OK)
    st = run(rd->c, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL, NULL, "starting a read", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site);
  if (st == LW_OK)
    st = one_int(rd->c, "SELECT coalesce(max(outcomes), 0) FROM rollup_site WHERE site = $1", &p, &out->outcomes,
                 "reading stats", err, errlen);
  if (st == LW_OK)
    st = one_int(rd->c, "SELECT coalesce(max(batches), 0) FROM rollup_site WHERE site = $1", &p, &out->batches,
                 "reading stats", err, errlen);
  p_free(&p);
  if (st == LW_OK)
    st = rollup_rows(rd->c, PG_RU_KEY_COLS "0 ORDER BY key", site, NULL, &out->variants, &out->n_variants, err, errlen);
  if (st == LW_OK)
    st = rollup_rows(rd->c, PG_RU_KEY_COLS "1 ORDER BY key", site, NULL, &out->segments, &out->n_segments, err, errlen);
  if (st == LW_OK && bounds && bounds->max_codes) {
    /* As SQLite's: the codes below min_installs are the site's code count minus the others. */
    int64_t eligible = 0, codes = 0;
    p_init(&p);
    p_text(&p, site), p_int(&p, bounds->min_installs);
    st = one_int(rd->c, "SELECT coalesce(max(codes), 0) FROM rollup_site WHERE site = $1 AND $2 >= 0", &p, &codes,
                 "reading stats", err, errlen);
    if (st == LW_OK)
      st = one_int(rd->c, "SELECT count(*) FROM rollup_keys WHERE site = $1 AND dim = 2 AND installs >= $2", &p,
                   &eligible, "reading stats", err, errlen);
    out->codes_below_min = codes - eligible;
    p_free(&p);
    if (st == LW_OK)
      st = rollup_rows(rd->c, PG_RU_KEY_COLS "2 AND installs >= $2 ORDER BY installs DESC, key LIMIT $3", site, bounds,
                       &out->codes, &out->n_codes, err, errlen);
    if (st == LW_OK) {
      out->codes_left_out = eligible - (int64_t)out->n_codes;
      if (out->n_codes) qsort(out->codes, out->n_codes, sizeof *out->codes, code_order);
    }
  } else if (st == LW_OK) {
    st = rollup_rows(rd->c, PG_RU_KEY_COLS "2 ORDER BY key", site, NULL, &out->codes, &out->n_codes, err, errlen);
  }
  rollback(rd->c);
  reader_give(rd);
  if (st != LW_OK) lw_stats_clear(out);
  return st;
}

static lw_status pg_ping(lw_store *base, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  pthread_mutex_lock(&s->ping.lock);
  lw_status st = conn_ready(s->ping.c, "ping", err, errlen);
  if (st == LW_OK) st = run(s->ping.c, "SELECT 1", NULL, NULL, "ping", err, errlen);
  pthread_mutex_unlock(&s->ping.lock);
  return st;
}

/* ---------------------------------------------------------------- referrals */

#define COUNTED_CONVERSIONS "FROM referees WHERE site = $1 AND event = 'conversion' AND counted_at IS NOT NULL"

/* The owner check first, the counts only for the owner (store_sqlite.c says why). No cache:
 * another replica's writes would not reach it. */
static lw_status pg_referral(lw_store *base, const char *site, const char *code, const char *install,
                             lw_referral *out, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  memset(out, 0, sizeof *out);
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading a referral", err, errlen);
  char owner[LW_INSTALL_LEN + 1];
  int found = 0;
  if (st == LW_OK) st = owner_of(rd->c, site, code, owner, &found, err, errlen);
  if (st == LW_OK && found) out->owner = strcmp(owner, install) == 0 ? LW_OWNER_SELF : LW_OWNER_OTHER;
  if (st == LW_OK && out->owner == LW_OWNER_SELF) {
    params p;
    p_init(&p);
    p_text(&p, site), p_text(&p, code), p_text(&p, lw_kind_name(LW_KIND_LANDING));
    PGresult *r;
    st = run(rd->c,
             "SELECT (SELECT COUNT(DISTINCT referee) " COUNTED_CONVERSIONS " AND code = $2),"
             " (SELECT COUNT(DISTINCT install) FROM events WHERE site = $1 AND code = $2 AND kind = $3)",
             &p, &r, "reading a referral", err, errlen);
    p_free(&p);
    if (st == LW_OK) {
      out->conversions = get_int(r, 0, 0);
      out->landings = get_int(r, 0, 1);
      PQclear(r);
    }
  }
  reader_give(rd);
  return st;
}

static lw_status pg_attributions(lw_store *base, const char *site, int64_t since_ms, lw_attribution **rows,
                                 size_t *n_rows, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *rows = NULL;
  *n_rows = 0;
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading attributions", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, since_ms);
  PGresult *r = NULL;
  if (st == LW_OK)
    st = run(rd->c,
             "SELECT code, COUNT(*), MIN(f), MAX(f) FROM"
             " (SELECT code, MIN(counted_at) AS f " COUNTED_CONVERSIONS " GROUP BY code, referee) c"
             " WHERE f >= $2 GROUP BY code ORDER BY code",
             &p, &r, "reading attributions", err, errlen);
  p_free(&p);
  reader_give(rd);
  if (st != LW_OK) return st;
  size_t n = (size_t)PQntuples(r);
  lw_attribution *out = n ? calloc(n, sizeof *out) : NULL;
  if (n && !out) {
    PQclear(r);
    snprintf(err, errlen, "out of memory reading attributions");
    return LW_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    get_text(r, (int)i, 0, out[i].code, sizeof out[i].code);
    out[i].conversions = get_int(r, (int)i, 1);
    out[i].first_at = get_int(r, (int)i, 2);
    out[i].last_at = get_int(r, (int)i, 3);
  }
  PQclear(r);
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

/* ---------------------------------------------------------------- reading decisions
 * As store_sqlite.c: the shared decisions, the share tokens and each decision's join and
 * outcomes go into indexed temporary tables (dropped with the cursor's transaction), and the
 * main query counts each decision's outcomes within its window. $1 the site, $2 the landing
 * kind; %1$s the shared kinds. */
static const char *const k_shared_pg[] = {
    /* with the channel of the decision's first share or copy, as SQLite's lw_shared2 */
    "CREATE TEMP TABLE lw_shared(decision " TXT " PRIMARY KEY, channel " TXT ") ON COMMIT DROP",
    "INSERT INTO lw_shared SELECT DISTINCT ON (decision) decision, channel FROM events"
    "  WHERE site = $1 AND kind IN (%1$s) AND decision IS NOT NULL ORDER BY decision, id",
    "CREATE TEMP TABLE lw_tok(token " TXT " PRIMARY KEY, code " TXT ", decision " TXT ") ON COMMIT DROP",
    "INSERT INTO lw_tok SELECT DISTINCT ON (token) token, code, decision FROM events"
    "  WHERE site = $1 AND token IS NOT NULL AND kind IN (%1$s) AND decision IS NOT NULL ORDER BY token, id",
    "CREATE TEMP TABLE lw_join(decision " TXT " PRIMARY KEY, how integer, key " TXT ", n bigint) ON COMMIT DROP",
    "CREATE INDEX ON lw_join(key)",
    "INSERT INTO lw_join SELECT decision, 1, decision, 1 FROM lw_tok ON CONFLICT DO NOTHING",
    "INSERT INTO lw_join SELECT DISTINCT ON (decision) decision, 2, 'code:' || code, 0 FROM events"
    "  WHERE site = $1 AND code IS NOT NULL AND token IS NULL AND kind IN (%1$s) AND decision IS NOT NULL"
    "  ORDER BY decision, id ON CONFLICT DO NOTHING",
    "UPDATE lw_join SET n = (SELECT count(*) FROM lw_join j WHERE j.key = lw_join.key) WHERE how = 2",
    "CREATE TEMP TABLE lw_rx(key " TXT ", what " TXT ", who " TXT ", value double precision, at bigint)"
    " ON COMMIT DROP",
    "CREATE INDEX ON lw_rx(key, what, at)",
    "INSERT INTO lw_rx SELECT t.decision, l.kind, l.install, NULL, b.received_at"
    "  FROM events l JOIN lw_tok t ON t.token = l.token AND t.code = l.code"
    "  JOIN batches b ON b.id = l.batch WHERE l.site = $1 AND l.token IS NOT NULL AND l.kind = $2",
    "INSERT INTO lw_rx SELECT 'code:' || l.code, l.kind, l.install, NULL, b.received_at"
    "  FROM events l JOIN batches b ON b.id = l.batch"
    "  WHERE l.site = $1 AND l.code IS NOT NULL AND l.kind = $2 AND l.token IS NULL"
    "  AND 'code:' || l.code IN (SELECT key FROM lw_join WHERE how = 2)",
    "INSERT INTO lw_rx SELECT coalesce(t.decision, 'code:' || r.code), r.event, encode(r.referee, 'hex'), r.value,"
    "  r.received_at FROM referees r JOIN referees c ON c.site = r.site AND c.code = r.code"
    "  AND c.referee = r.referee AND c.event = 'conversion' AND c.state <> 'rejected'"
    "  LEFT JOIN lw_tok t ON t.token = c.token AND t.code = c.code"
    "  WHERE r.site = $1 AND (t.decision IS NOT NULL OR c.token IS NULL)",
    "ANALYZE lw_join",
    "ANALYZE lw_rx",
    NULL};

#define FLAGGED \
  " (EXISTS(SELECT 1 FROM flags f WHERE f.site = $1 AND f.kind = 'install' AND f.value = d.install))::int"
#define WINDOW_FROM "coalesce(d.received_at, d.t)"
#define RX(agg, what)                                                                        \
  ", (SELECT " agg " FROM lw_rx x WHERE x.key = j.key AND x.what = " what                    \
  " AND ($6 = 0 OR x.at <= " WINDOW_FROM " + $6))"

/* $1 site, $2 from, $3 to, $4 the decision kind, $5 the conversion kind, $6 the window (ms, 0
 * none), $7 the landing kind. */
static const char k_decisions_pg[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, (s.decision IS NOT NULL)::int, 0," FLAGGED
    ", d.decision, " WINDOW_FROM ", coalesce(j.how, 0), coalesce(j.n, 0)"
    RX("count(DISTINCT who)", "$7") RX("count(DISTINCT who)", "'conversion'")
    RX("count(DISTINCT who)", "'retained_30'") RX("count(DISTINCT who)", "'retained_90'")
    RX("count(DISTINCT who)", "'churned'") RX("coalesce(sum(value), 0)", "'conversion'")
    RX("coalesce(sum(value), 0)", "'revenue'")
    ", (SELECT max(at) FROM lw_rx x WHERE x.key = j.key AND ($6 = 0 OR x.at <= " WINDOW_FROM " + $6))"
    ", s.channel FROM events d LEFT JOIN lw_shared s ON s.decision = d.decision"
    " LEFT JOIN lw_join j ON j.decision = d.decision"
    " WHERE d.site = $1 AND d.kind = $4 AND d.t >= $2 AND d.t < $3 ORDER BY d.id";

/* The shared decisions alone (lw_store_shared_decisions), through events_decisions. */
static const char k_shared_decisions_pg[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, 1, 0," FLAGGED
    ", d.decision, " WINDOW_FROM ", coalesce(j.how, 0), coalesce(j.n, 0)"
    RX("count(DISTINCT who)", "$7") RX("count(DISTINCT who)", "'conversion'")
    RX("count(DISTINCT who)", "'retained_30'") RX("count(DISTINCT who)", "'retained_90'")
    RX("count(DISTINCT who)", "'churned'") RX("coalesce(sum(value), 0)", "'conversion'")
    RX("coalesce(sum(value), 0)", "'revenue'")
    ", (SELECT max(at) FROM lw_rx x WHERE x.key = j.key AND ($6 = 0 OR x.at <= " WINDOW_FROM " + $6))"
    ", s.channel FROM lw_shared s JOIN events d ON d.site = $1 AND d.decision = s.decision AND d.kind = 'decision'"
    " LEFT JOIN lw_join j ON j.decision = d.decision"
    " WHERE d.kind = $4 AND d.t >= $2 AND d.t < $3 ORDER BY d.id";

static const char k_referrers_pg[] =
    "SELECT d.id, d.t, d.action, d.p, d.mode, d.segment, d.x, 0, c.n," FLAGGED ", d.decision FROM"
    " (SELECT sh.install AS install, count(*) AS n FROM"
    "   (SELECT DISTINCT install, code FROM events WHERE site = $1 AND kind IN (%s)"
    "    AND code IS NOT NULL) sh JOIN events cv ON cv.site = $1 AND cv.kind = $5"
    "    AND cv.code = sh.code AND cv.t >= $2 AND cv.t < $3 GROUP BY sh.install) c"
    " JOIN events d ON d.id = (SELECT max(id) FROM events WHERE site = $1 AND install = c.install"
    "  AND kind = $4) ORDER BY d.id";

typedef struct {
  lw_store_cursor base;
  pg_conn *rd;
  int open;       /* the main query's rows are still coming */
  int failed;
} pg_cursor;

static void range_params(params *p, const lw_store_range *r, int attribution_days) {
  p_text(p, r->site);
  p_int(p, r->from_ms);
  p_int(p, r->to_ms > 0 ? r->to_ms : INT64_MAX);
  p_text(p, lw_kind_name(LW_KIND_DECISION));
  p_text(p, lw_kind_name(LW_KIND_CONVERSION));
  p_int(p, (int64_t)(attribution_days > 0 ? attribution_days : 0) * 24 * 3600 * 1000);
  p_text(p, lw_kind_name(LW_KIND_LANDING));
}

static void cur_drain(pg_cursor *c) {
  PGresult *r;
  if (c->open)
    while ((r = PQgetResult(c->rd->c))) PQclear(r);
  c->open = 0;
}

static int cur_next(lw_store_cursor *base, lw_store_decision *d, char *err, size_t errlen) {
  pg_cursor *c = (pg_cursor *)base;
  if (!c->open) return c->failed ? -1 : 0;
  PGresult *r = PQgetResult(c->rd->c);
  if (!r) {
    c->open = 0;
    return 0;
  }
  ExecStatusType rs = PQresultStatus(r);
  if (rs == PGRES_TUPLES_OK) { /* the end of the rows */
    PQclear(r);
    cur_drain(c);
    return 0;
  }
  if (rs != PGRES_SINGLE_TUPLE) {
    trim_copy(err, errlen, "reading decisions", PQresultErrorMessage(r));
    PQclear(r);
    cur_drain(c);
    c->failed = 1;
    return -1;
  }
  d->id = (uint64_t)get_int(r, 0, 0);
  d->t = get_int(r, 0, 1);
  get_text(r, 0, 2, d->action, sizeof d->action);
  d->has_p = !PQgetisnull(r, 0, 3);
  d->p = get_double(r, 0, 3);
  get_text(r, 0, 4, d->mode, sizeof d->mode);
  get_text(r, 0, 5, d->segment, sizeof d->segment);
  d->n_x = 0;
  if (!PQgetisnull(r, 0, 6)) {
    size_t len = 0;
    unsigned char *x = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 6), &len);
    int bad = !x || x_decode(x, len, d->x, &d->n_x) < 0;
    PQfreemem(x);
    if (bad) {
      snprintf(err, errlen, "row %llu: x is not a list of at most %d (hash, value) pairs",
               (unsigned long long)d->id, LW_X_PAIRS);
      PQclear(r);
      cur_drain(c);
      c->failed = 1;
      return -1;
    }
  }
  d->shared = (int)get_int(r, 0, 7);
  d->conversions = get_int(r, 0, 8);
  d->flagged = (int)get_int(r, 0, 9);
  get_text(r, 0, 10, d->decision, sizeof d->decision);
  memset(&d->outcomes, 0, sizeof d->outcomes);
  d->window_from = d->t;
  if (PQnfields(r) > 11) {
    lw_referee_outcomes *o = &d->outcomes;
    d->window_from = get_int(r, 0, 11);
    o->join = (lw_join)get_int(r, 0, 12);
    o->code_decisions = get_int(r, 0, 13);
    o->landings = get_int(r, 0, 14);
    o->conversions = get_int(r, 0, 15);
    o->retained_30 = get_int(r, 0, 16);
    o->retained_90 = get_int(r, 0, 17);
    o->churned = get_int(r, 0, 18);
    o->conversion_value = get_double(r, 0, 19);
    o->revenue = get_double(r, 0, 20);
    o->last_at = get_int(r, 0, 21);
  }
  d->channel[0] = '\0'; /* the decision's first share's channel (lw_shared), "" when none */
  if (PQnfields(r) > 22) get_text(r, 0, 22, d->channel, sizeof d->channel);
  PQclear(r);
  return 1;
}

static void cur_free(lw_store_cursor *base) {
  pg_cursor *c = (pg_cursor *)base;
  cur_drain(c);
  rollback(c->rd->c); /* drops the temporary tables */
  reader_give(c->rd);
  free(c);
}

/* which: 0 decisions, 1 referrers, 2 the shared decisions alone. */
static lw_status pg_open_cursor(lw_store *base, const lw_store_range *r, int which, int attribution_days,
                                lw_store_cursor **out, char *err, size_t errlen) {
  int referrers = which == 1;
  pg_store *s = (pg_store *)base;
  *out = NULL;
  pg_cursor *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  c->base.next = cur_next;
  c->base.free = cur_free;
  c->rd = reader_take(s); /* held until the cursor is freed */
  lw_status st = conn_ready(c->rd->c, "reading decisions", err, errlen);
  if (st == LW_OK)
    st = run(c->rd->c, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL, NULL, "reading decisions", err, errlen);
  char sql[4096];
  for (int i = 0; st == LW_OK && !referrers && k_shared_pg[i]; i++) {
    with_shared_kinds(k_shared_pg[i], sql, sizeof sql);
    params p;
    p_init(&p);
    p_text(&p, r->site), p_text(&p, lw_kind_name(LW_KIND_LANDING));
    st = run(c->rd->c, sql, &p, NULL, "collecting shared decisions", err, errlen);
    p_free(&p);
  }
  if (st == LW_OK) {
    if (referrers)
      with_shared_kinds(k_referrers_pg, sql, sizeof sql);
    else
      snprintf(sql, sizeof sql, "%s", which == 2 ? k_shared_decisions_pg : k_decisions_pg);
    params p;
    p_init(&p);
    range_params(&p, r, attribution_days);
    for (int i = 0; i < p.n; i++)
      if (p.is_num[i]) p.v[i] = p.num[i];
    if (p.oom || !PQsendQueryParams(c->rd->c, sql, p.n, p.type, p.v, p.len, p.fmt, 0)) {
      trim_copy(err, errlen, "reading decisions", p.oom ? "out of memory" : PQerrorMessage(c->rd->c));
      st = LW_ERR_IO;
    } else {
      PQsetSingleRowMode(c->rd->c);
      c->open = 1;
    }
    p_free(&p);
  }
  if (st != LW_OK) {
    cur_free(&c->base);
    return st;
  }
  *out = &c->base;
  return LW_OK;
}

static lw_status pg_decisions(lw_store *base, const lw_store_range *r, int referrers, int attribution_days,
                              lw_store_cursor **out, char *err, size_t errlen) {
  return pg_open_cursor(base, r, referrers ? 1 : 0, attribution_days, out, err, errlen);
}

static lw_status pg_shared_decisions(lw_store *base, const lw_store_range *r, lw_store_cursor **out, char *err,
                                     size_t errlen) {
  return pg_open_cursor(base, r, 2, 0, out, err, errlen);
}

typedef struct {
  lw_funnel_day *rows;
  size_t n, cap;
} days_ctx;

static int collect_day(void *vctx, const PGresult *r) {
  days_ctx *c = vctx;
  lw_funnel_day *d = lw_push((void **)&c->rows, &c->n, &c->cap, sizeof *c->rows);
  if (!d) return -1;
  d->day = get_int(r, 0, 0);
  get_text(r, 0, 1, d->action, sizeof d->action);
  get_text(r, 0, 2, d->segment, sizeof d->segment);
  get_text(r, 0, 3, d->mode, sizeof d->mode);
  d->decisions = get_int(r, 0, 4);
  d->prompts = get_int(r, 0, 5);
  if (PQnfields(r) > 6) { /* LW_FN_READ_DAYS */
    int64_t *later[7] = {&d->shares, &d->landed, &d->converted, &d->kept, &d->landings, &d->conversions, &d->retained};
    for (int k = 0; k < 7; k++) *later[k] = get_int(r, 0, 6 + k);
  }
  return 0;
}

typedef struct {
  lw_funnel_value *rows;
  size_t n, cap;
} values_ctx;

static int collect_value(void *vctx, const PGresult *r) {
  values_ctx *c = vctx;
  lw_funnel_value *v = lw_push((void **)&c->rows, &c->n, &c->cap, sizeof *c->rows);
  if (!v) return -1;
  v->day = get_int(r, 0, 0);
  get_text(r, 0, 1, v->action, sizeof v->action);
  get_text(r, 0, 2, v->segment, sizeof v->segment);
  get_text(r, 0, 3, v->mode, sizeof v->mode);
  v->conversions = get_int(r, 0, 4);
  v->value = get_double(r, 0, 5);
  v->revenue = get_double(r, 0, 6);
  get_text(r, 0, 7, v->channel, sizeof v->channel); /* PG schema 6 */
  return 0;
}

/* One query of a site's rows on a reader connection ($1: the site), each row to collect. */
static lw_status stream_site(pg_store *s, const char *sql, const char *site, row_fn collect,
                             void *ctx, const char *what, char *err, size_t errlen) {
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, what, err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site);
  if (st == LW_OK) st = stream(rd->c, sql, &p, collect, ctx, what, err, errlen);
  p_free(&p);
  reader_give(rd);
  return st;
}

static lw_status pg_funnel_days(lw_store *base, const char *site, lw_funnel_day **rows, size_t *n, char *err,
                                size_t errlen) {
  days_ctx ctx = {0};
  lw_status st = stream_site((pg_store *)base,
                             "SELECT day, action, segment, mode, sum(decisions)::bigint, sum(prompts)::bigint"
                             " FROM rollup_days WHERE site = $1 GROUP BY 1, 2, 3, 4 ORDER BY day, action, segment, mode",
                             site, collect_day, &ctx, "reading the funnel", err, errlen);
  if (st != LW_OK) {
    free(ctx.rows);
    return st;
  }
  *rows = ctx.rows;
  *n = ctx.n;
  return LW_OK;
}

/* The whole funnel from the rollups (PG schema 4), one snapshot: funnel_sql.h's reads. The
 * floating sums come as text in the shortest form that reads back exactly (extra_float_digits
 * 1, the default since PostgreSQL 12), so strtod gives back the stored double. */
static lw_status pg_funnel_outcomes(lw_store *base, const char *site, lw_funnel_day **days, size_t *n_days,
                                    lw_funnel_value **values, size_t *n_values, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *days = NULL, *values = NULL, *n_days = *n_values = 0;
  static const char *const dollars[] = {"$"};
  char days_sql[2048], values_sql[1024];
  lw_fn_expand(LW_FN_READ_DAYS, NULL, dollars, 1, days_sql, sizeof days_sql);
  lw_fn_expand(LW_FN_READ_VALUES, NULL, dollars, 1, values_sql, sizeof values_sql);
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading the funnel", err, errlen);
  if (st == LW_OK)
    st = run(rd->c, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL, NULL, "starting a read", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site);
  days_ctx dc = {0};
  values_ctx vc = {0};
  if (st == LW_OK) st = stream(rd->c, days_sql, &p, collect_day, &dc, "reading the funnel", err, errlen);
  if (st == LW_OK) st = stream(rd->c, values_sql, &p, collect_value, &vc, "reading the funnel", err, errlen);
  p_free(&p);
  rollback(rd->c);
  reader_give(rd);
  if (st != LW_OK) {
    free(dc.rows), free(vc.rows);
    return st;
  }
  *days = dc.rows, *n_days = dc.n;
  *values = vc.rows, *n_values = vc.n;
  return LW_OK;
}

/* ---- the channels and the fairness segments (PG schema 6), as SQLite's schema 12 ---------- */

typedef struct {
  lw_funnel_channel *rows;
  size_t n, cap;
} channels_ctx;

static int collect_channel(void *vctx, const PGresult *r) {
  channels_ctx *c = vctx;
  lw_funnel_channel *ch = lw_push((void **)&c->rows, &c->n, &c->cap, sizeof *c->rows);
  if (!ch) return -1;
  get_text(r, 0, 0, ch->channel, sizeof ch->channel);
  int64_t *v[7] = {&ch->shares, &ch->landed, &ch->converted, &ch->kept, &ch->landings, &ch->conversions, &ch->retained};
  for (int i = 0; i < 7; i++) *v[i] = get_int(r, 0, 1 + i);
  return 0;
}

static lw_status pg_funnel_channels(lw_store *base, const char *site, lw_funnel_channel **rows, size_t *n, char *err,
                                    size_t errlen) {
  static const char *const dollars[] = {"$"};
  char sql[1024];
  lw_fn_expand(LW_FN_READ_CHANNELS, NULL, dollars, 1, sql, sizeof sql);
  channels_ctx ctx = {0};
  lw_status st = stream_site((pg_store *)base, sql, site, collect_channel, &ctx, "reading the channels", err, errlen);
  if (st != LW_OK) {
    free(ctx.rows);
    return st;
  }
  *rows = ctx.rows, *n = ctx.n;
  return LW_OK;
}

/* rollup_fairness's spec (c: any connection, inside the caller's transaction). */
static lw_status stored_spec(PGconn *c, lw_fairness_spec *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  PGresult *r;
  lw_status st = run(c, "SELECT attribute, vals FROM rollup_fairness", NULL, &r, "reading the fairness spec", err, errlen);
  if (st != LW_OK) return st;
  if (PQntuples(r) > 0) lw_fn_spec_parse(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), out);
  PQclear(r);
  return LW_OK;
}

typedef struct {
  lw_fairness_counts *out;
  int n, funnel;
} fair_ctx;

static int collect_fair(void *vctx, const PGresult *r) {
  fair_ctx *c = vctx;
  char action[LW_NAME_LEN + 1];
  get_text(r, 0, 1, action, sizeof action);
  lw_fn_fair_add(c->out, c->n, c->funnel, (uint64_t)get_int(r, 0, 0), action, get_int(r, 0, 2), get_int(r, 0, 3));
  return 0;
}

/* The fairness page from the rollups, one snapshot (the spec kept checked in it). */
static lw_status pg_fairness(lw_store *base, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                             char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  static const char *const dollars[] = {"$"};
  char sql[2][1024];
  lw_fn_expand(LW_FN_READ_FAIR_DAYS, NULL, dollars, 1, sql[0], sizeof sql[0]);
  lw_fn_expand(LW_FN_READ_FAIR_FUNNEL, NULL, dollars, 1, sql[1], sizeof sql[1]);
  for (int i = 0; i < spec->n && i < LW_FAIRNESS_VALUES; i++) memset(&out[i], 0, sizeof out[i]);
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading the fairness rollups", err, errlen);
  if (st == LW_OK)
    st = run(rd->c, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL, NULL, "starting a read", err, errlen);
  lw_fairness_spec kept;
  if (st == LW_OK) st = stored_spec(rd->c, &kept, err, errlen);
  if (st == LW_OK && !lw_fn_same_spec(&kept, spec)) {
    snprintf(err, errlen, "the fairness rollups are kept for another attribute or values");
    st = LW_ERR_INVALID;
  }
  params p;
  p_init(&p);
  p_text(&p, site);
  for (int q = 0; st == LW_OK && q < 2; q++) {
    fair_ctx ctx = {out, spec->n, q};
    st = stream(rd->c, sql[q], &p, collect_fair, &ctx, "reading the fairness rollups", err, errlen);
  }
  p_free(&p);
  rollback(rd->c);
  reader_give(rd);
  return st;
}

/* The writer's: the spec in force. Another one is compiled into rollup_fair_segments (lw_fair
 * reads it) and every decision's segments recomputed (funnel_sql.h LW_FN_REFAIR), in one
 * transaction under the funnel's lock on every site and rollup_fairness's row lock, so replicas
 * starting together with one config recompute once. */
static lw_status pg_set_fairness(lw_store *base, const lw_fairness_spec *spec, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  static const char what[] = "recomputing the fairness segments";
  lw_fairness_spec want, kept;
  lw_fn_spec_norm(spec, &want);
  lw_status st = conn_ready(s->w, "starting a write", err, errlen);
  if (st == LW_OK) st = prepare_writer(s, err, errlen);
  if (st == LW_OK) st = run(s->w, "BEGIN", NULL, NULL, "starting a write", err, errlen);
  if (st != LW_OK) return st;
  /* The same spec (every start but the first with a config): one read, no lock. */
  st = stored_spec(s->w, &kept, err, errlen);
  if (st == LW_OK && lw_fn_same_spec(&kept, &want)) {
    rollback(s->w);
    return LW_OK;
  }
  if (st == LW_OK) st = run(s->w, "SELECT 1 FROM rollup_fairness FOR UPDATE", NULL, NULL, what, err, errlen);
  if (st == LW_OK) st = funnel_lock(s->w, NULL, err, errlen);
  if (st == LW_OK) st = stored_spec(s->w, &kept, err, errlen); /* again under the locks: another replica's */
  if (st == LW_OK && lw_fn_same_spec(&kept, &want)) {
    rollback(s->w);
    return LW_OK;
  }
  if (st == LW_OK) st = run(s->w, "DELETE FROM rollup_fair_segments", NULL, NULL, what, err, errlen);
  for (int i = 0; st == LW_OK && i < want.n; i++) {
    char name[LW_SEGMENT_NAME_LEN + 1];
    lw_audit_segment_name(want.attribute, want.values[i], name);
    uint32_t h = lw_fnv1a(name);
    uint8_t le[4] = {(uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16), (uint8_t)(h >> 24)}; /* as x_encode */
    params p;
    p_init(&p);
    p_int(&p, i), p_text(&p, name), p_blob(&p, le, sizeof le);
    st = run(s->w, "INSERT INTO rollup_fair_segments(bit, name, hash) VALUES($1, $2, $3)", &p, NULL, what, err, errlen);
    p_free(&p);
  }
  if (st == LW_OK) {
    char text[LW_FN_SPEC_TEXT_CAP];
    lw_fn_spec_text(&want, text, sizeof text);
    params p;
    p_init(&p);
    p_text(&p, want.attribute), p_text(&p, text);
    st = run(s->w, "UPDATE rollup_fairness SET attribute = $1, vals = $2", &p, NULL, what, err, errlen);
    p_free(&p);
  }
  static const char *const refair[LW_FN_REFAIR_N] = LW_FN_REFAIR;
  for (int i = 0; st == LW_OK && i < LW_FN_REFAIR_N; i++) st = run(s->w, refair[i], NULL, NULL, what, err, errlen);
  if (st == LW_OK) st = run(s->w, "COMMIT", NULL, NULL, "committing the fairness segments", err, errlen);
  if (st != LW_OK) rollback(s->w);
  return st;
}

static lw_status pg_count_decisions(lw_store *base, const lw_store_range *r, uint64_t *n, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *n = 0;
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "counting decisions", err, errlen);
  params p;
  p_init(&p);
  range_params(&p, r, 0);
  int64_t v = 0;
  if (st == LW_OK)
    st = one_int(rd->c, "SELECT count(*) FROM events WHERE site = $1 AND kind = $4 AND t >= $2 AND t < $3", &p, &v,
                 "counting decisions", err, errlen);
  p_free(&p);
  reader_give(rd);
  *n = (uint64_t)v;
  return st;
}

/* ---------------------------------------------------------------- referees */

static lw_status pg_site_salt(lw_store *base, const char *site, const uint8_t fresh[LW_SALT_LEN],
                              uint8_t out[LW_SALT_LEN], char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  lw_status st = conn_ready(s->w, "storing a salt", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_text(&p, site), p_blob(&p, fresh, LW_SALT_LEN);
  PGresult *r;
  /* Claim the salt, or read the one another replica stored first, in one statement. */
  st = run_ex(s->w,
              "WITH ins AS (INSERT INTO site_salts(site, salt) VALUES($1, $2) ON CONFLICT DO NOTHING RETURNING salt)"
              " SELECT salt FROM ins UNION ALL SELECT salt FROM site_salts WHERE site = $1 LIMIT 1",
              &p, 1, &r, NULL, "storing a salt", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == LW_SALT_LEN) {
    memcpy(out, PQgetvalue(r, 0, 0), LW_SALT_LEN);
  } else {
    snprintf(err, errlen, "site %s: damaged salt", site);
    st = LW_ERR_IO;
  }
  PQclear(r);
  return st;
}

/* One integer from sql with the report's site ($1), code ($2), referee ($3) and an integer ($4). */
static lw_status query_int(pg_store *s, const char *sql, const lw_referee_report *r, int64_t x, int64_t *out,
                           char *err, size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, r->site), p_text(&p, r->code), p_blob(&p, r->referee, LW_REFEREE_HASH_LEN), p_int(&p, x);
  lw_status st = one_int(s->w, sql, &p, out, "checking a referee", err, errlen);
  p_free(&p);
  return st;
}

static lw_status judge(pg_store *s, lw_referee_report *r, char *err, size_t errlen) {
  const lw_integrity_rules *rules = r->rules;
  snprintf(r->state, sizeof r->state, "counted");
  r->reason[0] = '\0';
  if (!rules || strcmp(r->event, "conversion") != 0) return LW_OK;
  int64_t hit = 0;
  lw_status st = LW_OK;
  lw_rule_action action = LW_RULE_OFF;
  const char *why = "";
  if (rules->self_referral != LW_RULE_OFF) {
    st = query_int(s, "SELECT (EXISTS(SELECT 1 FROM referrers WHERE site = $1 AND code = $2 AND referrer = $3))::int",
                   r, 0, &hit, err, errlen);
    if (st == LW_OK && !hit && r->install && r->install[0]) {
      char owner[LW_INSTALL_LEN + 1];
      int found = 0;
      st = owner_of(s->w, r->site, r->code, owner, &found, err, errlen);
      hit = st == LW_OK && found && strcmp(owner, r->install) == 0;
    }
    if (st == LW_OK && hit) action = rules->self_referral, why = "self_referral";
  }
  if (st == LW_OK && action == LW_RULE_OFF && rules->repeat_referee != LW_RULE_OFF) {
    st = query_int(s,
                   "SELECT (EXISTS(SELECT 1 FROM referees WHERE site = $1 AND referee = $3 AND event = 'conversion'"
                   " AND code <> $2 AND state IN ('counted', 'approved', 'flagged')))::int",
                   r, 0, &hit, err, errlen);
    if (st == LW_OK && hit) action = rules->repeat_referee, why = "repeat_referee";
  }
  if (st == LW_OK && action == LW_RULE_OFF && rules->velocity != LW_RULE_OFF && rules->velocity_max > 0) {
    st = query_int(s,
                   "SELECT COUNT(*) FROM referees WHERE site = $1 AND code = $2 AND event = 'conversion'"
                   " AND received_at > $4 AND state <> 'rejected'",
                   r, r->received_ms - rules->velocity_window_ms, &hit, err, errlen);
    if (st == LW_OK && hit >= rules->velocity_max) action = rules->velocity, why = "velocity";
  }
  if (st == LW_OK && action == LW_RULE_OFF && rules->review_all) action = LW_RULE_FLAG, why = "review";
  if (st != LW_OK || action == LW_RULE_OFF) return st;
  snprintf(r->state, sizeof r->state, "%s", action == LW_RULE_REJECT ? "rejected" : "flagged");
  snprintf(r->reason, sizeof r->reason, "%s", why);
  return LW_OK;
}

static lw_status flag_code(pg_store *s, const char *site, const char *code, const char *reason, int64_t now_ms,
                           char *err, size_t errlen) {
  lw_status st = flag(s->w, site, "code", code, reason, now_ms, err, errlen);
  char owner[LW_INSTALL_LEN + 1];
  int found = 0;
  if (st == LW_OK) st = owner_of(s->w, site, code, owner, &found, err, errlen);
  if (st == LW_OK && found) st = flag(s->w, site, "install", owner, reason, now_ms, err, errlen);
  return st;
}

static lw_status later_event(pg_store *s, lw_referee_report *r, char *token, size_t cap, int *has_token, char *err,
                             size_t errlen) {
  *has_token = 0;
  params p;
  p_init(&p);
  p_text(&p, r->site), p_text(&p, r->code), p_blob(&p, r->referee, LW_REFEREE_HASH_LEN);
  PGresult *q;
  lw_status st = run(s->w,
                     "SELECT token FROM referees WHERE site = $1 AND code = $2 AND referee = $3"
                     " AND event = 'conversion'",
                     &p, &q, "reading a referee's conversion", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  if (PQntuples(q) == 0) {
    r->refused = 1;
    snprintf(r->refused_field, sizeof r->refused_field, "event");
    snprintf(r->refused_msg, sizeof r->refused_msg,
             "no conversion of this referee with this code is stored yet: report the conversion first");
  } else if (!PQgetisnull(q, 0, 0)) {
    const char *t = PQgetvalue(q, 0, 0);
    *has_token = 1;
    snprintf(token, cap, "%s", t);
    if (r->token && strcmp(t, r->token) != 0) {
      r->refused = 1;
      snprintf(r->refused_field, sizeof r->refused_field, "token");
      snprintf(r->refused_msg, sizeof r->refused_msg, "not the token of this referee's conversion");
    }
  }
  PQclear(q);
  return LW_OK;
}

/* One attempt at a report in one transaction; *sqlstate says whether a failure may be retried. */
static lw_status referee_once(pg_store *s, lw_referee_report *r, char *sqlstate, char *err, size_t errlen) {
  char token[LW_TOKEN_LEN + 1];
  int has_token = r->token && r->token[0];
  if (has_token) snprintf(token, sizeof token, "%s", r->token);
  r->duplicate = 0;
  r->refused = 0;
  r->refused_field[0] = r->refused_msg[0] = '\0';
  r->id = 0;
  lw_status st = conn_ready(s->w, "starting a referee report", err, errlen);
  if (st == LW_OK) st = prepare_writer(s, err, errlen);
  if (st == LW_OK) st = run(s->w, "BEGIN", NULL, NULL, "starting a referee report", err, errlen);
  if (st != LW_OK) return st;
  /* Reports of one code are taken one at a time across replicas, so the rules (velocity, repeat)
   * see every report committed before this one. */
  params p;
  p_init(&p);
  p_text(&p, r->site), p_text(&p, r->code);
  st = run_ex(s->w, "SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2))", &p, 0, NULL, sqlstate,
              "starting a referee report", err, errlen);
  p_free(&p);
  if (st == LW_OK) st = funnel_lock(s->w, r->site, err, errlen);
  PGresult *q = NULL;
  if (st == LW_OK) {
    p_init(&p);
    p_text(&p, r->site), p_text(&p, r->code), p_blob(&p, r->referee, LW_REFEREE_HASH_LEN), p_text(&p, r->event);
    st = run(s->w,
             "SELECT id, state, coalesce(reason, '') FROM referees"
             " WHERE site = $1 AND code = $2 AND referee = $3 AND event = $4",
             &p, &q, "reading a referee", err, errlen);
    p_free(&p);
  }
  if (st != LW_OK) goto done;
  if (PQntuples(q) > 0) { /* a retry: the first report stands */
    r->duplicate = 1;
    r->id = get_int(q, 0, 0);
    get_text(q, 0, 1, r->state, sizeof r->state);
    get_text(q, 0, 2, r->reason, sizeof r->reason);
    goto done;
  }
  if (strcmp(r->event, "conversion") != 0) {
    if ((st = later_event(s, r, token, sizeof token, &has_token, err, errlen)) != LW_OK || r->refused) goto done;
  }
  if ((st = judge(s, r, err, errlen)) != LW_OK) goto done;
  PQclear(q);
  q = NULL;
  p_init(&p);
  p_text(&p, r->site), p_text(&p, r->code), p_blob(&p, r->referee, LW_REFEREE_HASH_LEN), p_text(&p, r->event);
  p_int(&p, r->at), p_int(&p, r->received_ms);
  if (r->has_value)
    p_double(&p, r->value);
  else
    p_null_double(&p);
  p_text(&p, r->state), p_text(&p, r->reason);
  if (strcmp(r->state, "counted") == 0)
    p_int(&p, r->received_ms);
  else
    p_null_int(&p);
  p_text(&p, has_token ? token : NULL);
  st = run_ex(s->w,
              "INSERT INTO referees(site, code, referee, event, at, received_at, value, state, reason, counted_at,"
              " token) VALUES($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, ''), $10, $11) RETURNING id",
              &p, 0, &q, sqlstate, "storing a referee", err, errlen);
  p_free(&p);
  if (st != LW_OK) goto done;
  r->id = get_int(q, 0, 0);
  if (r->reason[0]) st = flag_code(s, r->site, r->code, r->reason, r->received_ms, err, errlen);
  /* the console's funnel: the decisions whose shares carry the code */
  if (st == LW_OK) {
    p_init(&p);
    p_text(&p, r->site), p_text(&p, r->code);
    st = funnel_mark(s->w, LW_FN_MARK_CODE, &p, err, errlen);
    p_free(&p);
  }
  if (st == LW_OK) st = funnel_settle(s->w, err, errlen);
done:
  PQclear(q);
  if (st == LW_OK) st = run_ex(s->w, "COMMIT", NULL, 0, NULL, sqlstate, "committing a referee report", err, errlen);
  if (st != LW_OK) rollback(s->w);
  return st;
}

static lw_status pg_referee(lw_store *base, lw_referee_report *r, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  lw_status st = LW_OK;
  for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    char sqlstate[6] = "";
    st = referee_once(s, r, sqlstate, err, errlen);
    /* 23505: another replica stored the same report between our read and our insert: run again
     * and answer its report as the duplicate it is. */
    if (st == LW_OK || (!retryable(sqlstate) && strcmp(sqlstate, "23505") != 0)) break;
  }
  return st;
}

static lw_status pg_register_referrer(lw_store *base, const char *site, const char *code,
                                      const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict, char *err,
                                      size_t errlen) {
  pg_store *s = (pg_store *)base;
  *conflict = 0;
  lw_status st = conn_ready(s->w, "registering a referrer", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_text(&p, site), p_text(&p, code), p_blob(&p, referrer, LW_REFEREE_HASH_LEN);
  PGresult *r;
  /* The registered referrer (this one when it was the first) compared with this one. */
  st = run(s->w,
           "WITH ins AS (INSERT INTO referrers(site, code, referrer) VALUES($1, $2, $3) ON CONFLICT DO NOTHING"
           " RETURNING referrer) SELECT (referrer = $3)::int FROM (SELECT referrer FROM ins UNION ALL"
           " SELECT referrer FROM referrers WHERE site = $1 AND code = $2 LIMIT 1) x",
           &p, &r, "registering a referrer", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  *conflict = PQntuples(r) > 0 && !get_int(r, 0, 0);
  PQclear(r);
  return LW_OK;
}

/* The console action of a change (store.h "console actions"), one statement with it: an UPDATE
 * whose RETURNING id feeds the INSERT, so the row and its action are kept together or not at
 * all, and a refused change (no row updated) records nothing. $A the site, $B the time, then
 * who, the action and its target as the statement's last three parameters. */
#define ACTION_OF(update, site, at, who, action, target)                                                      \
  "WITH u AS (" update " RETURNING id) INSERT INTO console_actions(site, at, who, action, target, ref)"      \
  " SELECT " site "::text, " at "::bigint, " who "::text, " action "::text, " target "::text, id FROM u"

static void p_action(params *p, const char *who, lw_action a) {
  p_text(p, who && who[0] ? who : "?"), p_text(p, lw_action_name(a)), p_text(p, lw_action_target(a));
}

static lw_status pg_review(lw_store *base, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *result = 1;
  lw_status st = conn_ready(s->w, "reviewing", err, errlen);
  if (st == LW_OK) st = prepare_writer(s, err, errlen);
  if (st == LW_OK) st = run(s->w, "BEGIN", NULL, NULL, "starting a review", err, errlen);
  if (st != LW_OK) return st;
  st = funnel_lock(s->w, site, err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, id), p_text(&p, approve ? "approved" : "rejected"), p_int(&p, approve),
      p_int(&p, now_ms);
  p_action(&p, who, approve ? LW_ACTION_APPROVE : LW_ACTION_REJECT);
  PGresult *r = NULL;
  if (st == LW_OK)
    st = run(s->w,
             ACTION_OF("UPDATE referees SET state = $3, counted_at = CASE WHEN $4 <> 0 THEN $5::bigint END"
                       " WHERE site = $1 AND id = $2 AND state = 'flagged'", "$1", "$5", "$6", "$7", "$8"),
             &p, &r, "reviewing", err, errlen);
  p_free(&p);
  int changed = st == LW_OK && strtoll(PQcmdTuples(r), NULL, 10) == 1;
  PQclear(r);
  if (changed) {
    p_init(&p);
    p_int(&p, id);
    st = funnel_mark(s->w, LW_FN_MARK_REPORT, &p, err, errlen);
    p_free(&p);
    if (st == LW_OK) st = funnel_settle(s->w, err, errlen);
  } else if (st == LW_OK) {
    p_init(&p);
    p_text(&p, site), p_int(&p, id);
    int64_t exists = 0;
    st = one_int(s->w, "SELECT count(*) FROM referees WHERE site = $1 AND id = $2", &p, &exists, "reviewing", err,
                 errlen);
    p_free(&p);
    if (st == LW_OK && exists) *result = 2;
  }
  if (st == LW_OK) st = run(s->w, "COMMIT", NULL, NULL, "committing a review", err, errlen);
  if (st != LW_OK) {
    rollback(s->w);
    *result = 1;
    return st;
  }
  if (changed) *result = 0;
  return LW_OK;
}

static lw_status pg_reviews(lw_store *base, const char *site, size_t max, lw_review **rows, size_t *n_rows, char *err,
                            size_t errlen) {
  pg_store *s = (pg_store *)base;
  *rows = NULL;
  *n_rows = 0;
  if (!max) return LW_OK;
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading reviews", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, (int64_t)max);
  PGresult *r = NULL;
  if (st == LW_OK)
    st = run(rd->c,
             "SELECT id, code, event, coalesce(reason, ''), at, received_at FROM referees"
             " WHERE site = $1 AND state = 'flagged' ORDER BY id LIMIT $2",
             &p, &r, "reading reviews", err, errlen);
  p_free(&p);
  reader_give(rd);
  if (st != LW_OK) return st;
  size_t n = (size_t)PQntuples(r);
  lw_review *out = calloc(max, sizeof *out);
  if (!out) {
    PQclear(r);
    snprintf(err, errlen, "out of memory reading reviews");
    return LW_ERR_NOMEM;
  }
  for (size_t i = 0; i < n && i < max; i++) {
    lw_review *v = &out[i];
    v->id = get_int(r, (int)i, 0);
    get_text(r, (int)i, 1, v->code, sizeof v->code);
    get_text(r, (int)i, 2, v->event, sizeof v->event);
    get_text(r, (int)i, 3, v->reason, sizeof v->reason);
    v->at = get_int(r, (int)i, 4);
    v->received_at = get_int(r, (int)i, 5);
  }
  PQclear(r);
  *rows = out;
  *n_rows = n < max ? n : max;
  return LW_OK;
}

/* ---------------------------------------------------------------- approval requests */

#define APPROVAL_COLS_PG                                                                          \
  "SELECT id, decision, install, action, coalesce(segment, ''), reason, attrs, t, received_at,"  \
  " CASE WHEN received_at + $3 * 86400000 <= $2 THEN 'expired' ELSE state END,"                   \
  " coalesce(answered_by, ''), coalesce(answered_at, 0), coalesce(device_answer, ''),"            \
  " coalesce(device_at, 0), received_at + $3 * 86400000 FROM approvals "

/* params: $1 site, $2 now, $3 days, $4 max, then the query's own. */
static lw_status read_approvals_pg(pg_store *s, const char *sql, params *p, size_t max, lw_approval **rows,
                                   size_t *n_rows, char *err, size_t errlen) {
  *rows = NULL;
  *n_rows = 0;
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading approval requests", err, errlen);
  PGresult *r = NULL;
  if (st == LW_OK) st = run(rd->c, sql, p, &r, "reading approval requests", err, errlen);
  reader_give(rd);
  if (st != LW_OK) return st;
  size_t n = (size_t)PQntuples(r);
  if (n > max) n = max;
  lw_approval *out = calloc(n ? n : 1, sizeof *out);
  if (!out) {
    PQclear(r);
    snprintf(err, errlen, "out of memory reading approval requests");
    return LW_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    lw_approval *a = &out[i];
    int row = (int)i;
    a->id = get_int(r, row, 0);
    get_text(r, row, 1, a->decision, sizeof a->decision);
    get_text(r, row, 2, a->install, sizeof a->install);
    get_text(r, row, 3, a->action, sizeof a->action);
    get_text(r, row, 4, a->segment, sizeof a->segment);
    get_text(r, row, 5, a->reason, sizeof a->reason);
    get_text(r, row, 6, a->attrs, sizeof a->attrs);
    a->t = get_int(r, row, 7);
    a->received_at = get_int(r, row, 8);
    get_text(r, row, 9, a->state, sizeof a->state);
    get_text(r, row, 10, a->answered_by, sizeof a->answered_by);
    a->answered_at = get_int(r, row, 11);
    get_text(r, row, 12, a->device_answer, sizeof a->device_answer);
    a->device_at = get_int(r, row, 13);
    a->expires_at = get_int(r, row, 14);
  }
  PQclear(r);
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

static lw_status pg_approvals(lw_store *base, const char *site, int64_t now_ms, int days, size_t max,
                              lw_approval **rows, size_t *n, char *err, size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, now_ms), p_int(&p, days), p_int(&p, (int64_t)max);
  lw_status st = read_approvals_pg((pg_store *)base, APPROVAL_COLS_PG "WHERE site = $1 ORDER BY id DESC LIMIT $4", &p,
                                   max, rows, n, err, errlen);
  p_free(&p);
  return st;
}

static lw_status pg_approval_check(lw_store *base, const char *site, const char *install, const char *hash,
                                   int64_t now_ms, int days, size_t max, lw_approval **rows, size_t *n, char *err,
                                   size_t errlen) {
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, now_ms), p_int(&p, days), p_int(&p, (int64_t)max), p_text(&p, install), p_text(&p, hash);
  lw_status st = read_approvals_pg((pg_store *)base,
                                   APPROVAL_COLS_PG "WHERE site = $1 AND install = $5 AND key_hash = $6"
                                                    " ORDER BY id DESC LIMIT $4",
                                   &p, max, rows, n, err, errlen);
  p_free(&p);
  return st;
}

/* One UPDATE decides, so two replicas answering at once cannot both win: the row changes only
 * while pending and not expired; otherwise a read says why. */
static lw_status pg_approval_answer(lw_store *base, const char *site, int64_t id, int approve, const char *who,
                                    int64_t now_ms, int days, int *result, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *result = 1;
  lw_status st = conn_ready(s->w, "answering an approval request", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, now_ms), p_int(&p, days), p_int(&p, id);
  p_text(&p, lw_answer_name(approve ? LW_ANSWER_APPROVED : LW_ANSWER_DECLINED)), p_text(&p, who);
  p_text(&p, lw_action_name(approve ? LW_ACTION_APPROVE_REQUEST : LW_ACTION_DECLINE_REQUEST));
  p_text(&p, lw_action_target(LW_ACTION_APPROVE_REQUEST));
  PGresult *r = NULL;
  st = run(s->w,
           ACTION_OF("UPDATE approvals SET state = $5, answered_by = $6, answered_at = $2"
                     " WHERE site = $1 AND id = $4 AND state = 'pending' AND received_at + $3 * 86400000 > $2",
                     "$1", "$2", "$6", "$7", "$8"),
           &p, &r, "answering an approval request", err, errlen);
  int changed = st == LW_OK && strtoll(PQcmdTuples(r), NULL, 10) == 1;
  PQclear(r);
  r = NULL;
  if (st == LW_OK && !changed)
    st = run(s->w,
             "SELECT (received_at + $3 * 86400000 <= $2)::int, state, $5::text, $6::text, $7::text, $8::text"
             " FROM approvals WHERE site = $1 AND id = $4",
             &p, &r, "answering an approval request", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  if (changed) *result = 0;
  else if (PQntuples(r) == 0) *result = 1;
  else *result = get_int(r, 0, 0) ? 3 : 2;
  PQclear(r);
  return LW_OK;
}

/* ---------------------------------------------------------------- webhook deliveries
 * As SQLite's (store.h "webhook deliveries"). A claim is one UPDATE of the row a sub-select
 * locks with FOR UPDATE SKIP LOCKED: two replicas claiming at once take different rows (or
 * one takes it and the other finds none), and a leased row is skipped until its lease ends. */

static lw_status pg_deliveries_enqueue(lw_store *base, const char *site, int64_t now_ms, int64_t *added, char *err,
                                       size_t errlen) {
  pg_store *s = (pg_store *)base;
  *added = 0;
  lw_status st = conn_ready(s->w, "adding deliveries", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, now_ms);
  PGresult *r = NULL;
  st = run(s->w,
           "INSERT INTO deliveries(site, report, idempotency_key, body, state, created_at, next_at)"
           " SELECT site, id, site || ':' || id,"
           "  json_build_object('id', site || ':' || id, 'type', 'conversion', 'site', site, 'code', code,"
           "                    'report', id, 'at', at, 'counted_at', counted_at, 'value', value)::text,"
           "  'pending', $2, $2 FROM referees r"
           " WHERE site = $1 AND event = 'conversion' AND state IN ('counted', 'approved')"
           "  AND NOT EXISTS(SELECT 1 FROM deliveries d WHERE d.idempotency_key = r.site || ':' || r.id)"
           " ORDER BY id ON CONFLICT (idempotency_key) DO NOTHING",
           &p, &r, "adding deliveries", err, errlen);
  p_free(&p);
  if (st == LW_OK) *added = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return st;
}

#define DELIVERY_COLS_PG "id, report, idempotency_key, state, attempts, created_at, next_at," \
                         " coalesce(delivered_at, 0), last_status, coalesce(last_error, '')"

static void delivery_row_pg(const PGresult *r, int row, lw_delivery *d) {
  d->id = get_int(r, row, 0);
  d->report = get_int(r, row, 1);
  get_text(r, row, 2, d->key, sizeof d->key);
  get_text(r, row, 3, d->state, sizeof d->state);
  d->attempts = get_int(r, row, 4);
  d->created_at = get_int(r, row, 5);
  d->next_at = get_int(r, row, 6);
  d->delivered_at = get_int(r, row, 7);
  d->last_status = get_int(r, row, 8);
  get_text(r, row, 9, d->last_error, sizeof d->last_error);
}

static lw_status pg_delivery_claim(lw_store *base, const char *site, const char *owner, int64_t now_ms,
                                   int64_t lease_ms, lw_delivery *out, int *found, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *found = 0;
  memset(out, 0, sizeof *out);
  lw_status st = conn_ready(s->w, "claiming a delivery", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_text(&p, site), p_text(&p, owner), p_int(&p, now_ms), p_int(&p, lease_ms);
  PGresult *r = NULL;
  st = run(s->w,
           "UPDATE deliveries SET lease_owner = $2, lease_until = $3 + $4, attempts = attempts + 1"
           " WHERE id = (SELECT id FROM deliveries WHERE site = $1 AND state = 'pending'"
           "  AND next_at <= $3 AND lease_until <= $3 ORDER BY next_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
           "  AND state = 'pending' AND lease_until <= $3"
           " RETURNING " DELIVERY_COLS_PG ", body",
           &p, &r, "claiming a delivery", err, errlen);
  p_free(&p);
  if (st != LW_OK) return st;
  if (PQntuples(r) == 1) {
    delivery_row_pg(r, 0, out);
    const char *body = PQgetvalue(r, 0, 10);
    size_t blen = strlen(body);
    if ((out->body = malloc(blen + 1))) memcpy(out->body, body, blen + 1);
    *found = out->body != NULL;
    if (!out->body) {
      snprintf(err, errlen, "out of memory claiming a delivery");
      st = LW_ERR_NOMEM;
    }
  }
  PQclear(r);
  return st;
}

static lw_status pg_delivery_finish(lw_store *base, int64_t id, const char *owner, const char *state, int64_t next_at,
                                    int64_t status, const char *error, int64_t now_ms, int *kept, char *err,
                                    size_t errlen) {
  pg_store *s = (pg_store *)base;
  *kept = 0;
  lw_status st = conn_ready(s->w, "recording a delivery", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_int(&p, id), p_text(&p, owner), p_text(&p, state), p_int(&p, next_at), p_int(&p, status);
  p_text_or_null(&p, error), p_int(&p, now_ms);
  PGresult *r = NULL;
  st = run(s->w,
           "UPDATE deliveries SET state = $3, next_at = $4, lease_owner = NULL, lease_until = 0,"
           " last_status = $5, last_error = $6,"
           " delivered_at = CASE WHEN $3 = 'delivered' THEN $7::bigint END"
           " WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
           &p, &r, "recording a delivery", err, errlen);
  p_free(&p);
  if (st == LW_OK) *kept = strtoll(PQcmdTuples(r), NULL, 10) == 1;
  PQclear(r);
  return st;
}

static lw_status pg_delivery_resend(lw_store *base, const char *site, int64_t id, const char *who, int64_t now_ms,
                                    int *result, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *result = 1;
  lw_status st = conn_ready(s->w, "resending a delivery", err, errlen);
  if (st != LW_OK) return st;
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, id), p_int(&p, now_ms);
  p_action(&p, who, LW_ACTION_RESEND);
  PGresult *r = NULL;
  st = run(s->w,
           ACTION_OF("UPDATE deliveries SET state = 'pending', next_at = $3, created_at = $3, attempts = 0,"
                     " lease_until = 0, lease_owner = NULL WHERE site = $1 AND id = $2 AND state = 'failed'",
                     "$1", "$3", "$4", "$5", "$6"),
           &p, &r, "resending a delivery", err, errlen);
  int changed = st == LW_OK && strtoll(PQcmdTuples(r), NULL, 10) == 1;
  PQclear(r);
  int64_t exists = 0;
  if (st == LW_OK && !changed)
    st = one_int(s->w,
                 "SELECT count(*) FROM deliveries WHERE site = $1 AND id = $2 AND $3::bigint IS NOT NULL"
                 " AND $4::text IS NOT NULL AND $5::text IS NOT NULL AND $6::text IS NOT NULL",
                 &p, &exists, "resending a delivery", err, errlen);
  p_free(&p);
  if (st == LW_OK) *result = changed ? 0 : exists ? 2 : 1;
  return st;
}

static lw_status pg_deliveries(lw_store *base, const char *site, size_t max, lw_delivery **rows, size_t *n_rows,
                               char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *rows = NULL;
  *n_rows = 0;
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading deliveries", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, (int64_t)max);
  p_text(&p, lw_action_target(LW_ACTION_RESEND)), p_text(&p, lw_action_name(LW_ACTION_RESEND));
  PGresult *r = NULL;
  /* who sent it again last, and when: its latest resend in console_actions */
#define LAST_RESEND(col, none)                                                                        \
  "coalesce((SELECT a." col " FROM console_actions a WHERE a.site = deliveries.site AND a.target = $3" \
  " AND a.ref = deliveries.id AND a.action = $4 ORDER BY a.id DESC LIMIT 1), " none ")"
  if (st == LW_OK)
    st = run(rd->c,
             "SELECT " DELIVERY_COLS_PG ", " LAST_RESEND("who", "''") ", " LAST_RESEND("at", "0")
             " FROM deliveries WHERE site = $1 ORDER BY id DESC LIMIT $2",
             &p, &r, "reading deliveries", err, errlen);
#undef LAST_RESEND
  p_free(&p);
  reader_give(rd);
  if (st != LW_OK) return st;
  size_t n = (size_t)PQntuples(r);
  if (n > max) n = max;
  lw_delivery *out = calloc(n ? n : 1, sizeof *out);
  if (!out) {
    PQclear(r);
    snprintf(err, errlen, "out of memory reading deliveries");
    return LW_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    delivery_row_pg(r, (int)i, &out[i]);
    get_text(r, (int)i, 10, out[i].resent_by, sizeof out[i].resent_by);
    out[i].resent_at = get_int(r, (int)i, 11);
  }
  PQclear(r);
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

/* ---------------------------------------------------------------- console actions */

static lw_status pg_console_actions(lw_store *base, const char *site, size_t max, lw_console_action **rows,
                                    size_t *n_rows, char *err, size_t errlen) {
  pg_store *s = (pg_store *)base;
  *rows = NULL;
  *n_rows = 0;
  pg_conn *rd = reader_take(s);
  lw_status st = conn_ready(rd->c, "reading console actions", err, errlen);
  params p;
  p_init(&p);
  p_text(&p, site), p_int(&p, (int64_t)max);
  PGresult *r = NULL;
  if (st == LW_OK)
    st = run(rd->c,
             "SELECT id, at, who, action, target, ref FROM console_actions WHERE site = $1 ORDER BY id DESC LIMIT $2",
             &p, &r, "reading console actions", err, errlen);
  p_free(&p);
  reader_give(rd);
  if (st != LW_OK) return st;
  size_t n = (size_t)PQntuples(r);
  if (n > max) n = max;
  lw_console_action *out = calloc(n ? n : 1, sizeof *out);
  if (!out) {
    PQclear(r);
    snprintf(err, errlen, "out of memory reading console actions");
    return LW_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    lw_console_action *a = &out[i];
    a->id = get_int(r, (int)i, 0);
    a->at = get_int(r, (int)i, 1);
    get_text(r, (int)i, 2, a->who, sizeof a->who);
    get_text(r, (int)i, 3, a->action, sizeof a->action);
    get_text(r, (int)i, 4, a->target, sizeof a->target);
    a->ref = get_int(r, (int)i, 5);
  }
  PQclear(r);
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

/* ---------------------------------------------------------------- open and close */

static void pg_close(lw_store *base) {
  pg_store *s = (pg_store *)base;
  if (!s) return;
  PQfinish(s->w);
  for (int i = 0; i < READERS; i++) {
    PQfinish(s->readers[i].c);
    pthread_mutex_destroy(&s->readers[i].lock);
  }
  PQfinish(s->ping.c);
  pthread_mutex_destroy(&s->ping.lock);
  free(s->sql);
  free(s);
}

static void quiet(void *arg, const char *message) { (void)arg, (void)message; }

/* A connection with synchronous_commit = on for its whole life (also after a reset). */
static lw_status connect_one(const char *url, PGconn **out, char *err, size_t errlen) {
  const char *keys[] = {"dbname", "connect_timeout", "fallback_application_name", NULL};
  const char *vals[] = {url, "10", "loopwise", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    trim_copy(err, errlen, "connecting to PostgreSQL", c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    *out = NULL;
    return LW_ERR_IO;
  }
  PQsetNoticeProcessor(c, quiet, NULL);
  *out = c;
  return session_setup(c, err, errlen);
}

/* The schema version stored in the database: 0 when it has no lw_schema (*other_tables then
 * says whether it has other tables). */
static lw_status read_version(PGconn *c, int *version, int *other_tables, char *err, size_t errlen) {
  int64_t has = 0, v = 0, tables = 0;
  lw_status st = one_int(c, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'lw_schema'",
                         NULL, &has, "reading the schema version", err, errlen);
  if (st == LW_OK && has) st = one_int(c, "SELECT max(version) FROM lw_schema", NULL, &v, "reading the schema version", err, errlen);
  if (st == LW_OK && !has)
    st = one_int(c, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()", NULL, &tables,
                 "reading the schema version", err, errlen);
  *version = (int)v;
  if (other_tables) *other_tables = tables > 0;
  return st;
}

/* Bring the schema to LW_STORE_PG_SCHEMA_VERSION in one transaction under an advisory lock:
 * replicas starting together wait for the first, then find the schema current. */
static lw_status migrate(PGconn *c, char *err, size_t errlen) {
  lw_status st = run(c, "BEGIN", NULL, NULL, "starting the migration", err, errlen);
  if (st != LW_OK) return st;
  char sql[64];
  snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%d)", MIGRATION_LOCK);
  int version = 0, others = 0;
  if ((st = run(c, sql, NULL, NULL, "locking the migration", err, errlen)) != LW_OK) goto fail;
  if ((st = read_version(c, &version, &others, err, errlen)) != LW_OK) goto fail;
  if (version > LW_STORE_PG_SCHEMA_VERSION) {
    snprintf(err, errlen, "database schema version %d is newer than this build's %d: refusing to touch it", version,
             LW_STORE_PG_SCHEMA_VERSION);
    st = LW_ERR_VERSION;
    goto fail;
  }
  if (version == 0 && others) {
    snprintf(err, errlen, "database has tables but no Loopwise schema version");
    st = LW_ERR_VERSION;
    goto fail;
  }
  for (int v = version; v < LW_STORE_PG_SCHEMA_VERSION; v++) {
    for (const char *const *q = pg_migrations[v]; *q && st == LW_OK; q++) {
      char what[48];
      snprintf(what, sizeof what, "migrating the schema to %d", v + 1);
      st = run(c, *q, NULL, NULL, what, err, errlen);
    }
    if (st == LW_OK && pg_migration_fills[v]) st = pg_migration_fills[v](c, err, errlen);
    if (st != LW_OK) goto fail;
  }
  if (version != LW_STORE_PG_SCHEMA_VERSION) {
    snprintf(sql, sizeof sql, "DELETE FROM lw_schema; INSERT INTO lw_schema VALUES(%d)", LW_STORE_PG_SCHEMA_VERSION);
    PGresult *r = PQexec(c, sql); /* two statements: the simple protocol */
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) trim_copy(err, errlen, "setting the schema version", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    if (!ok) {
      st = LW_ERR_IO;
      goto fail;
    }
  }
  return run(c, "COMMIT", NULL, NULL, "committing the migration", err, errlen);
fail:
  rollback(c);
  return st;
}

static const lw_store_backend pg_backend = {
    "postgresql", pg_write, pg_forget, pg_purge, pg_stats, pg_ping, pg_referral, pg_attributions, pg_close,
    pg_decisions, pg_count_decisions, pg_site_salt, pg_referee, pg_register_referrer, pg_review, pg_reviews,
    pg_deliveries_enqueue, pg_delivery_claim, pg_delivery_finish, pg_delivery_resend, pg_deliveries,
    pg_stats_walk, pg_funnel_days, pg_shared_decisions, pg_approvals, pg_approval_answer, pg_approval_check,
    pg_funnel_outcomes, pg_funnel_channels, pg_set_fairness, pg_fairness /* PG schema 6 */,
    pg_console_actions, pg_purge_step};

/* ---- read-only (the learning tools) */

static lw_status ro_refuse(char *err, size_t errlen) {
  snprintf(err, errlen, "the store was opened read-only");
  return LW_ERR_INVALID;
}
static lw_status ro_write(lw_store *s, lw_store_item *const *items, size_t n, char *err, size_t errlen) {
  (void)s, (void)items, (void)n;
  return ro_refuse(err, errlen);
}
static lw_status ro_forget(lw_store *s, lw_forget_item *const *items, size_t n, char *err, size_t errlen) {
  (void)s, (void)items, (void)n;
  return ro_refuse(err, errlen);
}
static lw_status ro_purge(lw_store *s, int64_t before_ms, int64_t *deleted, char *err, size_t errlen) {
  (void)s, (void)before_ms, (void)deleted;
  return ro_refuse(err, errlen);
}
static lw_status ro_site_salt(lw_store *s, const char *site, const uint8_t fresh[LW_SALT_LEN],
                              uint8_t out[LW_SALT_LEN], char *err, size_t errlen) {
  (void)s, (void)site, (void)fresh, (void)out;
  return ro_refuse(err, errlen);
}
static lw_status ro_referee(lw_store *s, lw_referee_report *r, char *err, size_t errlen) {
  (void)s, (void)r;
  return ro_refuse(err, errlen);
}
static lw_status ro_register_referrer(lw_store *s, const char *site, const char *code,
                                      const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict, char *err,
                                      size_t errlen) {
  (void)s, (void)site, (void)code, (void)referrer, (void)conflict;
  return ro_refuse(err, errlen);
}
static lw_status ro_review(lw_store *s, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                           int *result, char *err, size_t errlen) {
  (void)s, (void)site, (void)id, (void)approve, (void)who, (void)now_ms, (void)result;
  return ro_refuse(err, errlen);
}

static const lw_store_backend pg_read_backend = {
    "postgresql (read-only)", ro_write, ro_forget, ro_purge, pg_stats, pg_ping, pg_referral, pg_attributions,
    pg_close, pg_decisions, pg_count_decisions, ro_site_salt, ro_referee, ro_register_referrer, ro_review,
    pg_reviews, NULL, NULL, NULL, NULL, pg_deliveries, pg_stats_walk, pg_funnel_days, pg_shared_decisions,
    pg_approvals, NULL, pg_approval_check, pg_funnel_outcomes,
    pg_funnel_channels, NULL, pg_fairness, pg_console_actions, NULL};

static lw_status open_pg(const char *url, int read_only, lw_store **out, char *err, size_t errlen) {
  *out = NULL;
  pg_store *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  s->base.backend = read_only ? &pg_read_backend : &pg_backend;
  for (int i = 0; i < READERS; i++) pthread_mutex_init(&s->readers[i].lock, NULL);
  pthread_mutex_init(&s->ping.lock, NULL);
  lw_status st = LW_OK;
  if (read_only) {
    int version = 0;
    st = connect_one(url, &s->readers[0].c, err, errlen);
    if (st == LW_OK) st = read_version(s->readers[0].c, &version, NULL, err, errlen);
    if (st == LW_OK && version != LW_STORE_PG_SCHEMA_VERSION) {
      if (version == 0)
        snprintf(err, errlen, "not a Loopwise ingest store (no schema version in the database)");
      else if (version < LW_STORE_PG_SCHEMA_VERSION)
        snprintf(err, errlen,
                 "store schema version %d (PostgreSQL) is older than this build's %d: start this version's "
                 "loopwise-ingest on it once to migrate it",
                 version, LW_STORE_PG_SCHEMA_VERSION);
      else
        snprintf(err, errlen, "store schema version %d (PostgreSQL) is newer than this build's %d: use newer tools",
                 version, LW_STORE_PG_SCHEMA_VERSION);
      st = LW_ERR_VERSION;
    }
    for (int i = 1; st == LW_OK && i < READERS; i++) st = connect_one(url, &s->readers[i].c, err, errlen);
    if (st == LW_OK) st = connect_one(url, &s->ping.c, err, errlen);
  } else {
    st = connect_one(url, &s->w, err, errlen);
    if (st == LW_OK) st = migrate(s->w, err, errlen);
    for (int i = 0; st == LW_OK && i < READERS; i++) st = connect_one(url, &s->readers[i].c, err, errlen);
    if (st == LW_OK) st = connect_one(url, &s->ping.c, err, errlen);
  }
  if (st != LW_OK) {
    pg_close(&s->base);
    return st;
  }
  *out = &s->base;
  return LW_OK;
}

lw_status lw_store_open_pg(const char *url, lw_store **out, char *err, size_t errlen) {
  return open_pg(url, 0, out, err, errlen);
}

lw_status lw_store_open_pg_read(const char *url, lw_store **out, char *err, size_t errlen) {
  return open_pg(url, 1, out, err, errlen);
}
