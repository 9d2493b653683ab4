/* rollup_sqlite.c: the writer-kept rollups of the SQLite store (rollup_sqlite.h).
 *
 * Every change goes through one accumulator fed in (site, dim, key, install) order: the rows
 * of one install under one key become one UPSERT of rollup_installs, and the rows of one key
 * one UPSERT of rollup_keys, whatever the number of events behind them. An install's count
 * going from 0 to more adds it to its key's distinct installs, and back to 0 removes it (and
 * its row), so additions and subtractions are the same code with the sign changed. */
#include "rollup_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "funnel_sql.h"
#include "loopwise/wire.h"

enum { DIM_ACTION = 0, DIM_SEGMENT = 1, DIM_CODE = 2, N_DIMS = 3 };
static const char *const dim_cols[N_DIMS] = {"action", "segment", "code"};

/* One column n_<wire name> per LW_KINDS row, in lw_kind order. Wire names are [a-z_]. */
#define RU_COL_DEF(e, name, stat, flags, rules) ", \"n_" name "\" INTEGER NOT NULL DEFAULT 0"
#define RU_COL(e, name, stat, flags, rules) ", \"n_" name "\""
#define RU_COL_ADD(e, name, stat, flags, rules) ", \"n_" name "\" = \"n_" name "\" + excluded.\"n_" name "\""
#define RU_COL_SUM(e, name, stat, flags, rules) ", SUM(kind = '" name "')"
#define RU_PARAM(e, name, stat, flags, rules) ", ?"

const char lw_sq_rollup_tables[] =
    "CREATE TABLE rollup_site(site TEXT PRIMARY KEY, outcomes INTEGER NOT NULL DEFAULT 0,"
    "  batches INTEGER NOT NULL DEFAULT 0, codes INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE rollup_keys(site TEXT NOT NULL, dim INTEGER NOT NULL, key TEXT NOT NULL,"
    "  installs INTEGER NOT NULL DEFAULT 0, n INTEGER NOT NULL DEFAULT 0" LW_KINDS(RU_COL_DEF)
    ", PRIMARY KEY(site, dim, key)) WITHOUT ROWID;"
    "CREATE INDEX rollup_keys_installs ON rollup_keys(site, dim, installs DESC, key);"
    "CREATE TABLE rollup_installs(site TEXT NOT NULL, dim INTEGER NOT NULL, key TEXT NOT NULL,"
    "  install TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(site, dim, key, install)) WITHOUT ROWID;"
    "CREATE TABLE rollup_days(site TEXT NOT NULL, day INTEGER NOT NULL, action TEXT NOT NULL,"
    "  segment TEXT NOT NULL, mode TEXT NOT NULL, decisions INTEGER NOT NULL, prompts INTEGER NOT NULL,"
    "  PRIMARY KEY(site, day, action, segment, mode)) WITHOUT ROWID;";

/* A decision's day (UTC, floor) and whether it prompted, as SQL over an events row and in C. */
#define DAY_SQL LW_FN_DAY_SQL /* funnel_sql.h */
#define PROMPTED_SQL LW_FN_PROMPTED_SQL
static int64_t day_of(int64_t t) { return t >= 0 ? t / 86400000 : (t - 86399999) / 86400000; }
static int prompted(const lw_event *e) { return e->action[0] && strcmp(e->action, LW_ACTION_NONE) != 0; }
/* A decision row's rollup_days key, as SQL over an events row (lw_fair: its fairness segments). */
#define DAYS_KEY_SQL \
  "site, " DAY_SQL ", coalesce(action, ''), coalesce(segment, ''), coalesce(mode, ''), lw_fair(segment, x)"

/* The fairness segments of a decision (segment "" = none), in C and, as lw_fair(segment, x), in
 * SQL: one rule, loopwise/audit.h's. */
static uint32_t fair_of(const lw_sq_fair *f, const char *segment, const lw_feature *x, int n_x) {
  if (!f->spec.n) return 0;
  return lw_audit_segments_of(segment && segment[0] ? segment : NULL, x, n_x, f->names, f->hashes, f->spec.n);
}

static void sql_fair(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const lw_sq_fair *f = sqlite3_user_data(ctx);
  if (!f->spec.n) {
    sqlite3_result_int64(ctx, 0);
    return;
  }
  lw_feature x[LW_X_PAIRS];
  int n = 0;
  if (sqlite3_value_type(argv[1]) == SQLITE_BLOB &&
      lw_sq_x_decode(sqlite3_value_blob(argv[1]), (size_t)sqlite3_value_bytes(argv[1]), x, &n) < 0) {
    sqlite3_result_error(ctx, "a decision's x is not whole (hash, value) pairs", -1);
    return;
  }
  sqlite3_result_int64(ctx, fair_of(f, (const char *)sqlite3_value_text(argv[0]), x, n));
}

lw_status lw_sq_rollup_functions(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  if (sqlite3_create_function(db, "lw_fair", 2, SQLITE_UTF8, &ru->fair, sql_fair, NULL,
                              NULL) != SQLITE_OK) {
    snprintf(err, errlen, "registering lw_fair: %s", sqlite3_errmsg(db));
    return LW_ERR_IO;
  }
  return LW_OK;
}

static const char k_up_key[] =
    "INSERT INTO rollup_keys(site, dim, key, installs, n" LW_KINDS(RU_COL) ") VALUES(?, ?, ?, ?, ?" LW_KINDS(RU_PARAM)
    ") ON CONFLICT(site, dim, key) DO UPDATE SET installs = installs + excluded.installs,"
    " n = n + excluded.n" LW_KINDS(RU_COL_ADD) " RETURNING n";

static const char k_kind_sums[] = LW_KINDS(RU_COL_SUM);

#define SITE_CAP 40 /* site ids are 1-32 of [A-Za-z0-9_-] (config.c) */

struct lw_sq_rollup_entry { /* an event under one key */
  char site[SITE_CAP], key[LW_NAME_LEN + 1], install[LW_INSTALL_LEN + 1];
  int dim, kind;
};
struct lw_sq_rollup_day { /* a decision */
  char site[SITE_CAP], action[LW_NAME_LEN + 1], segment[LW_NAME_LEN + 1], mode[8];
  int64_t day;
  int prompted;
  uint32_t fair; /* its fairness segments (lw_sq_fair) */
};
struct lw_sq_rollup_site {
  char site[SITE_CAP];
  int64_t outcomes, batches;
};

static lw_status fail(sqlite3 *db, const char *what, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
  return LW_ERR_IO;
}

static lw_status prepare_funnel(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen);
static int step_done(sqlite3_stmt *st);
static lw_status mark_row(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision, int64_t id,
                          char *err, size_t errlen);

lw_status lw_sq_rollup_prepare(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  const struct {
    sqlite3_stmt **st;
    const char *sql;
  } stmts[] = {
      {&ru->up_install,
       "INSERT INTO rollup_installs(site, dim, key, install, n) VALUES(?1, ?2, ?3, ?4, ?5)"
       " ON CONFLICT(site, dim, key, install) DO UPDATE SET n = n + excluded.n RETURNING n"},
      {&ru->del_install, "DELETE FROM rollup_installs WHERE site = ?1 AND dim = ?2 AND key = ?3 AND install = ?4"},
      {&ru->up_key, k_up_key},
      {&ru->del_key, "DELETE FROM rollup_keys WHERE site = ?1 AND dim = ?2 AND key = ?3"},
      {&ru->up_day,
       "INSERT INTO rollup_days(site, day, action, segment, mode, fair, decisions, prompts)"
       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(site, day, action, segment, mode, fair)"
       " DO UPDATE SET decisions = decisions + excluded.decisions, prompts = prompts + excluded.prompts"},
      {&ru->up_site,
       "INSERT INTO rollup_site(site, outcomes, batches, codes) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(site) DO UPDATE SET"
       " outcomes = outcomes + excluded.outcomes, batches = batches + excluded.batches, codes = codes + excluded.codes"},
  };
  for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
    if (sqlite3_prepare_v3(db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st, NULL) != SQLITE_OK)
      return fail(db, "preparing the rollups' statements", err, errlen);
  return prepare_funnel(ru, db, err, errlen);
}

void lw_sq_rollup_finalize(lw_sq_rollup *ru) {
  sqlite3_finalize(ru->up_install);
  sqlite3_finalize(ru->del_install);
  sqlite3_finalize(ru->up_key);
  sqlite3_finalize(ru->del_key);
  sqlite3_finalize(ru->up_site);
  sqlite3_finalize(ru->up_day);
  for (int i = 0; i < LW_SQ_FUNNEL_STMTS; i++) sqlite3_finalize(ru->fn[i]);
  free(ru->fd);
  free(ru->buf);
  free(ru->days);
  free(ru->sites);
  memset(ru, 0, sizeof *ru);
}

void lw_sq_rollup_reset(lw_sq_rollup *ru) {
  sqlite3_reset(ru->up_install);
  sqlite3_reset(ru->del_install);
  sqlite3_reset(ru->up_key);
  sqlite3_reset(ru->del_key);
  sqlite3_reset(ru->up_site);
  sqlite3_reset(ru->up_day);
  for (int i = 0; i < LW_SQ_FUNNEL_STMTS; i++) sqlite3_reset(ru->fn[i]);
  if (ru->fn[3]) step_done(ru->fn[3]); /* a failed transaction's marks go (ROLLBACK took them already) */
  if (ru->fn[18]) step_done(ru->fn[18]);
  ru->n_fd = 0;
  ru->n_sites = ru->n_days = ru->n_buf = 0; /* a failed transaction's additions are dropped */
}

/* ---------------------------------------------------------------- the accumulator */

typedef struct {
  lw_sq_rollup *ru;
  sqlite3 *db;
  int have;                  /* a key is open */
  char site[SITE_CAP], key[LW_NAME_LEN + 1], install[LW_INSTALL_LEN + 1];
  int dim;
  int64_t inst_n;            /* the open install's delta */
  int64_t installs, n, kinds[LW_KIND_COUNT]; /* the open key's deltas */
} acc;

static lw_status site_add(lw_sq_rollup *ru, sqlite3 *db, const char *site, int64_t outcomes, int64_t batches,
                          int64_t codes, char *err, size_t errlen) {
  sqlite3_stmt *st = ru->up_site;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, outcomes);
  sqlite3_bind_int64(st, 3, batches);
  sqlite3_bind_int64(st, 4, codes);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? LW_OK : fail(db, "keeping the rollups", err, errlen);
}

static void bind_key(sqlite3_stmt *st, const acc *a) {
  sqlite3_bind_text(st, 1, a->site, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, a->dim);
  sqlite3_bind_text(st, 3, a->key, -1, SQLITE_STATIC);
}

static lw_status flush_install(acc *a, char *err, size_t errlen) {
  if (!a->inst_n) return LW_OK;
  sqlite3_stmt *st = a->ru->up_install;
  sqlite3_reset(st);
  bind_key(st, a);
  sqlite3_bind_text(st, 4, a->install, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, a->inst_n);
  if (sqlite3_step(st) != SQLITE_ROW) return fail(a->db, "keeping the rollups", err, errlen);
  int64_t now = sqlite3_column_int64(st, 0), before = now - a->inst_n;
  sqlite3_reset(st);
  a->inst_n = 0;
  if (before <= 0 && now > 0) a->installs++;
  if (before > 0 && now <= 0) {
    a->installs--;
    st = a->ru->del_install;
    sqlite3_reset(st);
    bind_key(st, a);
    sqlite3_bind_text(st, 4, a->install, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail(a->db, "keeping the rollups", err, errlen);
  }
  return LW_OK;
}

static lw_status flush_key(acc *a, char *err, size_t errlen) {
  lw_status s = flush_install(a, err, errlen);
  if (s != LW_OK || !a->have) return s;
  a->have = 0;
  sqlite3_stmt *st = a->ru->up_key;
  sqlite3_reset(st);
  bind_key(st, a);
  sqlite3_bind_int64(st, 4, a->installs);
  sqlite3_bind_int64(st, 5, a->n);
  for (int k = 0; k < LW_KIND_COUNT; k++) sqlite3_bind_int64(st, 6 + k, a->kinds[k]);
  if (sqlite3_step(st) != SQLITE_ROW) return fail(a->db, "keeping the rollups", err, errlen);
  int64_t left = sqlite3_column_int64(st, 0), before = left - a->n;
  sqlite3_reset(st);
  /* The site's number of codes (rollup_site.codes), so /v1/stats counts the codes below
   * min_installs without counting them one by one. */
  if (a->dim == DIM_CODE && (before <= 0) != (left <= 0)) {
    lw_status cs = site_add(a->ru, a->db, a->site, 0, 0, left > 0 ? 1 : -1, err, errlen);
    if (cs != LW_OK) return cs;
  }
  if (left > 0) return LW_OK;
  /* No event left under the key: it leaves the breakdown, as a walk would not see it. */
  st = a->ru->del_key;
  sqlite3_reset(st);
  bind_key(st, a);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? LW_OK : fail(a->db, "keeping the rollups", err, errlen);
}

/* count events of kind by install under (site, dim, key); rows must come in that order. */
static lw_status feed(acc *a, const char *site, int dim, const char *key, const char *install, int kind,
                      int64_t count, char *err, size_t errlen) {
  int same_key = a->have && a->dim == dim && !strcmp(a->site, site) && !strcmp(a->key, key);
  lw_status s = LW_OK;
  if (!same_key) {
    if ((s = flush_key(a, err, errlen)) != LW_OK) return s;
    a->have = 1;
    a->dim = dim;
    snprintf(a->site, sizeof a->site, "%s", site);
    snprintf(a->key, sizeof a->key, "%s", key);
    a->install[0] = '\0';
    a->installs = a->n = 0;
    memset(a->kinds, 0, sizeof a->kinds);
  }
  if (!same_key || strcmp(a->install, install) != 0) {
    if ((s = flush_install(a, err, errlen)) != LW_OK) return s;
    snprintf(a->install, sizeof a->install, "%s", install);
  }
  a->inst_n += count;
  a->n += count;
  if (kind >= 0 && kind < LW_KIND_COUNT) a->kinds[kind] += count;
  return LW_OK;
}

/* ---------------------------------------------------------------- adding batches
 * lw_sq_rollup_add copies what a batch adds into the group's buffers; lw_sq_rollup_flush, once
 * per write transaction (or when the buffers are full), sorts them and writes one UPSERT per
 * touched (key, install), per touched key, per touched day and per site, however many batches
 * of the group touched them. */

#define ENTRIES_MAX 65536 /* flushed early past this: memory stays bounded in a huge group */

static int entry_order(const void *x, const void *y) {
  const struct lw_sq_rollup_entry *a = x, *b = y;
  int c = strcmp(a->site, b->site);
  if (c) return c;
  if (a->dim != b->dim) return a->dim - b->dim;
  c = strcmp(a->key, b->key);
  return c ? c : strcmp(a->install, b->install);
}

static int day_order(const void *x, const void *y) {
  const struct lw_sq_rollup_day *a = x, *b = y;
  int c = strcmp(a->site, b->site);
  if (c) return c;
  if (a->day != b->day) return a->day < b->day ? -1 : 1;
  c = strcmp(a->action, b->action);
  if (!c) c = strcmp(a->segment, b->segment);
  if (!c) c = strcmp(a->mode, b->mode);
  return c ? c : (a->fair > b->fair) - (a->fair < b->fair);
}

lw_status lw_sq_rollup_flush(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  lw_status s = LW_OK;
  for (size_t i = 0; s == LW_OK && i < ru->n_sites; i++)
    s = site_add(ru, db, ru->sites[i].site, ru->sites[i].outcomes, ru->sites[i].batches, 0, err, errlen);
  if (ru->n_days) qsort(ru->days, ru->n_days, sizeof *ru->days, day_order);
  for (size_t i = 0; s == LW_OK && i < ru->n_days;) {
    size_t j = i;
    int64_t prompts = 0;
    while (j < ru->n_days && day_order(&ru->days[i], &ru->days[j]) == 0) prompts += ru->days[j++].prompted;
    const struct lw_sq_rollup_day *d = &ru->days[i];
    sqlite3_stmt *st = ru->up_day;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, d->site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d->day);
    sqlite3_bind_text(st, 3, d->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->segment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->mode, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, d->fair);
    sqlite3_bind_int64(st, 7, (int64_t)(j - i));
    sqlite3_bind_int64(st, 8, prompts);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) s = fail(db, "keeping the rollups", err, errlen);
    i = j;
  }
  if (ru->n_buf) qsort(ru->buf, ru->n_buf, sizeof *ru->buf, entry_order);
  acc a = {.ru = ru, .db = db};
  for (size_t i = 0; s == LW_OK && i < ru->n_buf; i++)
    s = feed(&a, ru->buf[i].site, ru->buf[i].dim, ru->buf[i].key, ru->buf[i].install, ru->buf[i].kind, 1, err,
             errlen);
  if (s == LW_OK) s = flush_key(&a, err, errlen);
  ru->n_sites = ru->n_days = ru->n_buf = 0;
  if (s == LW_OK) s = lw_sq_rollup_settle(ru, db, err, errlen);
  return s;
}

lw_status lw_sq_rollup_add(lw_sq_rollup *ru, sqlite3 *db, const char *site, const lw_event *events,
                           size_t n, int64_t first_id, char *err, size_t errlen) {
  if (ru->n_buf + n * N_DIMS > ENTRIES_MAX) {
    lw_status s = lw_sq_rollup_flush(ru, db, err, errlen);
    if (s != LW_OK) return s;
  }
  size_t k = 0;
  while (k < ru->n_sites && strcmp(ru->sites[k].site, site) != 0) k++;
  if (!lw_grow((void **)&ru->sites, &ru->sites_cap, k + 1, sizeof *ru->sites) ||
      !lw_grow((void **)&ru->buf, &ru->buf_cap, ru->n_buf + n * N_DIMS, sizeof *ru->buf) ||
      !lw_grow((void **)&ru->days, &ru->days_cap, ru->n_days + n, sizeof *ru->days)) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  if (k == ru->n_sites) {
    memset(&ru->sites[k], 0, sizeof ru->sites[k]);
    snprintf(ru->sites[k].site, sizeof ru->sites[k].site, "%s", site);
    ru->n_sites++;
  }
  ru->sites[k].outcomes += (int64_t)n;
  ru->sites[k].batches++;
  for (size_t i = 0; i < n; i++) {
    const lw_event *e = &events[i];
    const char *keys[N_DIMS] = {e->action, e->segment, e->code};
    for (int d = 0; d < N_DIMS; d++) { /* the store keeps "" as NULL: no key */
      if (!keys[d][0]) continue;
      struct lw_sq_rollup_entry *en = &ru->buf[ru->n_buf++];
      memcpy(en->site, ru->sites[k].site, sizeof en->site);
      snprintf(en->key, sizeof en->key, "%s", keys[d]);
      memcpy(en->install, e->install, sizeof en->install);
      en->dim = d;
      en->kind = (int)e->kind;
    }
    /* the console's funnel: the decisions this event may change */
    lw_status ms = LW_OK;
    if ((e->kind == LW_KIND_DECISION || (lw_kind_flags(e->kind) & LW_KIND_F_SHARED)) && e->decision[0])
      ms = lw_sq_rollup_mark(ru, db, site, e->decision, NULL, err, errlen);
    if (ms == LW_OK && e->kind == LW_KIND_DECISION && e->decision[0])
      ms = mark_row(ru, db, site, e->decision, first_id + (int64_t)i, err, errlen);
    else if (e->kind == LW_KIND_LANDING && e->code[0])
      ms = lw_sq_rollup_mark(ru, db, site, NULL, e->code, err, errlen);
    if (ms != LW_OK) return ms;
    if (e->kind == LW_KIND_DECISION) {
      struct lw_sq_rollup_day *dy = &ru->days[ru->n_days++];
      memcpy(dy->site, ru->sites[k].site, sizeof dy->site);
      dy->day = day_of(e->t);
      memcpy(dy->action, e->action, sizeof dy->action);
      memcpy(dy->segment, e->segment, sizeof dy->segment);
      memcpy(dy->mode, e->mode, sizeof dy->mode);
      dy->prompted = prompted(e);
      dy->fair = fair_of(&ru->fair, e->segment, e->has_x ? e->x : NULL, e->has_x ? e->n_x : 0);
    }
  }
  return LW_OK;
}

/* ---------------------------------------------------------------- subtracting deletions */

static void bind_where(sqlite3_stmt *st, const char *a, const char *b, int64_t i) {
  if (a) {
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  } else {
    sqlite3_bind_int64(st, 1, i);
  }
}

/* The console's funnel: mark the decisions the deletion may change (their own decision rows,
 * shares and copies; the shares of the codes its landings carry; the other shares of the
 * tokens its shares carry, one of which may own the token next), to settle after it. */
static lw_status mark_deleted(sqlite3 *db, const char *where, const char *a, const char *b, int64_t i, char *err,
                              size_t errlen) {
  static const char *const marks[] = {LW_FN_MARK_DELETED_DECISIONS, LW_FN_MARK_LANDED_CODES, LW_FN_MARK_TOKENS};
  for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
    char sql[2048];
    if (!lw_fn_expand_sq(marks[m], where, sql, sizeof sql)) {
      snprintf(err, errlen, "rollup subtraction: condition too long");
      return LW_ERR_INVALID;
    }
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return fail(db, "preparing the funnel", err, errlen);
    bind_where(q, a, b, i);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return fail(db, "keeping the funnel", err, errlen);
  }
  return LW_OK;
}

lw_status lw_sq_rollup_subtract(lw_sq_rollup *ru, sqlite3 *db, const char *where, const char *batches_where,
                                const char *a, const char *b, int64_t i, char *err, size_t errlen) {
  char sql[2048];
  size_t len = 0;
  lw_status ms = mark_deleted(db, where, a, b, i, err, errlen);
  if (ms != LW_OK) return ms;
  for (int d = 0; d < N_DIMS; d++)
    len += (size_t)snprintf(sql + len, sizeof sql - len,
                            "SELECT site, %d, %s, install, kind, count(*) FROM events WHERE (%s) AND %s IS NOT NULL"
                            " GROUP BY site, %s, install, kind UNION ALL ",
                            d, dim_cols[d], where, dim_cols[d], dim_cols[d]);
  len += (size_t)snprintf(sql + len, sizeof sql - len,
                          "SELECT site, -1, '', '', '', count(*) FROM events WHERE (%s) GROUP BY site"
                          " ORDER BY 1, 2, 3, 4",
                          where);
  if (len >= sizeof sql) {
    snprintf(err, errlen, "rollup subtraction: condition too long");
    return LW_ERR_INVALID;
  }
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return fail(db, "preparing the rollups", err, errlen);
  bind_where(q, a, b, i);
  acc ac = {.ru = ru, .db = db};
  lw_status s = LW_OK;
  int rc;
  while (s == LW_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    const char *site = (const char *)sqlite3_column_text(q, 0);
    int dim = sqlite3_column_int(q, 1);
    int64_t count = sqlite3_column_int64(q, 5);
    if (dim < 0) {
      s = site_add(ru, db, site, -count, 0, 0, err, errlen);
      continue;
    }
    s = feed(&ac, site, dim, (const char *)sqlite3_column_text(q, 2), (const char *)sqlite3_column_text(q, 3),
             lw_kind_parse((const char *)sqlite3_column_text(q, 4)), -count, err, errlen);
  }
  if (s == LW_OK && rc != SQLITE_DONE) s = fail(db, "reading what a deletion takes from the rollups", err, errlen);
  sqlite3_finalize(q);
  if (s == LW_OK) s = flush_key(&ac, err, errlen);
  if (s == LW_OK) {
    /* The decisions' days: one statement, which returns the rows it changed; those it emptied
     * are deleted by key (not by a scan of the table for decisions <= 0: it holds a row per day
     * and key of the whole store, and a retention step must cost what it deletes). */
    snprintf(sql, sizeof sql,
             "INSERT INTO rollup_days(site, day, action, segment, mode, fair, decisions, prompts)"
             " SELECT " DAYS_KEY_SQL ", -count(*), -sum(" PROMPTED_SQL ") FROM events WHERE (%s) AND kind = '%s'"
             " GROUP BY 1, 2, 3, 4, 5, 6"
             " ON CONFLICT(site, day, action, segment, mode, fair) DO UPDATE SET"
             " decisions = decisions + excluded.decisions, prompts = prompts + excluded.prompts"
             " RETURNING site, day, action, segment, mode, fair, decisions",
             where, lw_kind_name(LW_KIND_DECISION));
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return fail(db, "preparing the rollups", err, errlen);
    bind_where(q, a, b, i);
    struct lw_sq_rollup_day *gone = NULL; /* the emptied rows (prompted unused) */
    size_t n_gone = 0, cap = 0;
    while (s == LW_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
      if (sqlite3_column_int64(q, 6) > 0) continue;
      if (!lw_grow((void **)&gone, &cap, n_gone + 1, sizeof *gone)) {
        snprintf(err, errlen, "out of memory");
        s = LW_ERR_NOMEM;
        break;
      }
      struct lw_sq_rollup_day *g = &gone[n_gone++];
      snprintf(g->site, sizeof g->site, "%s", (const char *)sqlite3_column_text(q, 0));
      g->day = sqlite3_column_int64(q, 1);
      snprintf(g->action, sizeof g->action, "%s", (const char *)sqlite3_column_text(q, 2));
      snprintf(g->segment, sizeof g->segment, "%s", (const char *)sqlite3_column_text(q, 3));
      snprintf(g->mode, sizeof g->mode, "%s", (const char *)sqlite3_column_text(q, 4));
      g->fair = (uint32_t)sqlite3_column_int64(q, 5);
    }
    if (s == LW_OK && rc != SQLITE_DONE) s = fail(db, "keeping the rollups", err, errlen);
    sqlite3_finalize(q);
    if (s == LW_OK && n_gone &&
        sqlite3_prepare_v2(db,
                           "DELETE FROM rollup_days WHERE site = ?1 AND day = ?2 AND action = ?3 AND segment = ?4"
                           " AND mode = ?5 AND fair = ?6",
                           -1, &q, NULL) != SQLITE_OK)
      s = fail(db, "preparing the rollups", err, errlen);
    else if (s == LW_OK && n_gone) {
      for (size_t k = 0; s == LW_OK && k < n_gone; k++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, gone[k].site, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, gone[k].day);
        sqlite3_bind_text(q, 3, gone[k].action, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, gone[k].segment, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, gone[k].mode, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 6, (int64_t)gone[k].fair);
        if (!step_done(q)) s = fail(db, "keeping the rollups", err, errlen);
      }
      sqlite3_finalize(q);
    }
    free(gone);
  }
  if (s != LW_OK || !batches_where) return s;
  snprintf(sql, sizeof sql, "SELECT site, count(*) FROM batches WHERE (%s) GROUP BY site", batches_where);
  if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return fail(db, "preparing the rollups", err, errlen);
  bind_where(q, a, b, i);
  while (s == LW_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
    s = site_add(ru, db, (const char *)sqlite3_column_text(q, 0), 0, -sqlite3_column_int64(q, 1), 0, err, errlen);
  if (s == LW_OK && rc != SQLITE_DONE) s = fail(db, "reading what a deletion takes from the rollups", err, errlen);
  sqlite3_finalize(q);
  return s;
}

/* ---------------------------------------------------------------- the console's funnel (schema 11)
 * What each shared decision row brings to the console's report, kept per decision row
 * (rollup_dec) and summed per (site, day, action, segment, mode) (rollup_funnel). A decision's
 * outcomes are those of its referee join (store.h "How a decision's referee outcomes were
 * joined"), computed here with the cursor's rules (store_sqlite.c k_shared_sql) on the indexed
 * tables: anything that can change them (a decision, a share or copy, a landing, a referee
 * report or review, a deletion of any of those) marks the decisions it may touch in
 * temp.rollup_dirty (index lookups: the decision id, the shares of the same code or token), and
 * lw_sq_rollup_settle recomputes each marked decision and moves its row's contribution from
 * the old figures to the new ones, in the same transaction. The floating sums (value,
 * revenue, incentive cost) are not summed in SQL: the reader adds the converted decisions'
 * rows in decision order as the walk does, so they are the same to the last bit. */

const char lw_sq_funnel_tables[] =
    "CREATE TABLE rollup_dec(site TEXT NOT NULL, decision TEXT NOT NULL, id INTEGER NOT NULL, day INTEGER NOT NULL,"
    "  action TEXT NOT NULL, segment TEXT NOT NULL, mode TEXT NOT NULL, shares INTEGER NOT NULL,"
    "  landed INTEGER NOT NULL, converted INTEGER NOT NULL, kept INTEGER NOT NULL, landings INTEGER NOT NULL,"
    "  conversions INTEGER NOT NULL, retained INTEGER NOT NULL, value REAL NOT NULL, revenue REAL NOT NULL,"
    "  PRIMARY KEY(site, decision, id)) WITHOUT ROWID;"
    "CREATE INDEX rollup_dec_converted ON rollup_dec(site, id) WHERE conversions > 0;"
    "CREATE TABLE rollup_funnel(site TEXT NOT NULL, day INTEGER NOT NULL, action TEXT NOT NULL,"
    "  segment TEXT NOT NULL, mode TEXT NOT NULL, n INTEGER NOT NULL, shares INTEGER NOT NULL,"
    "  landed INTEGER NOT NULL, converted INTEGER NOT NULL, kept INTEGER NOT NULL, landings INTEGER NOT NULL,"
    "  conversions INTEGER NOT NULL, retained INTEGER NOT NULL,"
    "  PRIMARY KEY(site, day, action, segment, mode)) WITHOUT ROWID;";

/* full: a deletion touched the decision (its rows are recomputed from its events); else only
 * its outcomes may have changed and its new rows (rollup_rows: decision rows stored in this
 * transaction) join it, so a decision id seen in many batches is not rewritten each time. */
static const char k_dirty_table[] =
    "CREATE TEMP TABLE IF NOT EXISTS rollup_dirty(site TEXT NOT NULL, decision TEXT NOT NULL,"
    " full INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(site, decision)) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS rollup_rows(site TEXT NOT NULL, decision TEXT NOT NULL, id INTEGER NOT NULL,"
    " PRIMARY KEY(site, decision, id)) WITHOUT ROWID;";

/* The join's statements are funnel_sql.h's, shared with the PostgreSQL backend (the decision
 * rows with their fairness segments, lw_fair, and the channel too). */
#define DEC_ROW_COLS LW_FN_DEC_ROW_COLS

static const char *const k_funnel_sql[] = {
    /* 0 mark a decision */
    "INSERT OR IGNORE INTO temp.rollup_dirty(site, decision) VALUES(?1, ?2)",
    /* 1 mark the decisions whose shares carry a code */
    LW_FN_MARK_CODE,
    /* 2 the marked decisions */
    "SELECT site, decision, full FROM temp.rollup_dirty",
    /* 3 */
    "DELETE FROM temp.rollup_dirty",
    /* 4 a decision's rows as they count now */
    "SELECT id, day, action, segment, mode, shares, landed, converted, kept, landings, conversions, retained,"
    " channel, fair FROM rollup_dec WHERE site = ?1 AND decision = ?2",
    /* 5 */
    "DELETE FROM rollup_dec WHERE site = ?1 AND decision = ?2",
    /* 6 shared? */
    LW_FN_SHARED,
    /* 7 joined by token: the landings' installs */
    LW_FN_TOKEN_LANDINGS,
    /* 8 joined by token: the referee reports */
    LW_FN_TOKEN_RX,
    /* 9 joined by code: the decision's first share or copy with a code and no token */
    LW_FN_CODE_OF,
    /* 10 joined by code ?2: the landings' installs */
    LW_FN_CODE_LANDINGS,
    /* 11 joined by code ?2: the referee reports */
    LW_FN_CODE_RX,
    /* 12 the decision's rows */
    "SELECT " DEC_ROW_COLS LW_FN_DEC_ROWS_FROM,
    /* 13 */
    "INSERT OR IGNORE INTO rollup_dec(site, decision, id, day, action, segment, mode, shares, landed, converted, kept,"
    " landings, conversions, retained, value, revenue, channel, fair) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    /* 14 */
    "INSERT INTO rollup_funnel(site, day, action, segment, mode, channel, fair, n, shares, landed, converted, kept,"
    " landings, conversions, retained) VALUES(?1, ?2, ?3, ?4, ?5, ?14, ?15, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT(site, day, action, segment, mode, channel, fair) DO UPDATE SET n = n + excluded.n,"
    " shares = shares + excluded.shares, landed = landed + excluded.landed,"
    " converted = converted + excluded.converted, kept = kept + excluded.kept,"
    " landings = landings + excluded.landings, conversions = conversions + excluded.conversions,"
    " retained = retained + excluded.retained RETURNING n",
    /* 15 */
    "DELETE FROM rollup_funnel WHERE site = ?1 AND day = ?2 AND action = ?3 AND segment = ?4 AND mode = ?5"
    " AND channel = ?6 AND fair = ?7",
    /* 16 mark the decisions of a referee report's code, by its id */
    LW_FN_MARK_REPORT,
    /* 17 a decision row stored now */
    "INSERT OR IGNORE INTO temp.rollup_rows(site, decision, id) VALUES(?1, ?2, ?3)",
    /* 18 */
    "DELETE FROM temp.rollup_rows",
    /* 19 the outcomes a decision's rows carry (all the same), and its channel */
    "SELECT landings, conversions, retained, value, revenue, channel FROM rollup_dec WHERE site = ?1 AND decision = ?2"
    " LIMIT 1",
    /* 20 a decision's rows stored now */
    "SELECT " DEC_ROW_COLS " FROM events WHERE id IN (SELECT id FROM temp.rollup_rows WHERE site = ?1 AND decision = ?2)"
    " AND site = ?1 AND decision = ?2 AND kind = 'decision' AND t >= 0",
    /* 21 a shared decision's channel: its first share's or copy's (the cursor's lw_shared2) */
    LW_FN_CHANNEL,
};
_Static_assert(sizeof k_funnel_sql / sizeof k_funnel_sql[0] == LW_SQ_FUNNEL_STMTS, "one statement per slot");

static lw_status prepare_funnel(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, k_dirty_table, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "preparing the rollups: %s", msg ? msg : "");
    sqlite3_free(msg);
    return LW_ERR_IO;
  }
  /* The landing kind (?3) written into the text, as PostgreSQL's statements have it: bound as a
   * parameter, it made SQLite prepare the statement again on every run (the planner had used
   * its value to decide that no partial index on kind applies, so each new binding re-planned),
   * 40 to 80 us per recomputed decision. */
  char landing[40];
  lw_fn_landing_literal(landing);
  const char *const sub[] = {NULL, NULL, landing};
  for (int i = 0; i < LW_SQ_FUNNEL_STMTS; i++) {
    char sql[2048];
    int landing_kind = i == 7 || i == 10; /* LW_FN_TOKEN_LANDINGS, LW_FN_CODE_LANDINGS: ?3 is the kind */
    if (!lw_fn_expand_dialect(k_funnel_sql[i], NULL, sub, landing_kind ? 3 : 0, 1, sql, sizeof sql)) {
      snprintf(err, errlen, "preparing the funnel's statements: too long");
      return LW_ERR_INVALID;
    }
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &ru->fn[i], NULL) != SQLITE_OK)
      return fail(db, "preparing the funnel's statements", err, errlen);
  }
  return LW_OK;
}

static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE;
}

lw_status lw_sq_rollup_mark(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision,
                            const char *code, char *err, size_t errlen) {
  sqlite3_stmt *st = ru->fn[code ? 1 : 0];
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, code ? code : decision, -1, SQLITE_TRANSIENT);
  return step_done(st) ? LW_OK : fail(db, "keeping the funnel", err, errlen);
}

/* A decision row (events.id) stored in this transaction. */
static lw_status mark_row(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision, int64_t id,
                          char *err, size_t errlen) {
  sqlite3_stmt *st = ru->fn[17];
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, decision, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, id);
  return step_done(st) ? LW_OK : fail(db, "keeping the funnel", err, errlen);
}

lw_status lw_sq_rollup_mark_report(lw_sq_rollup *ru, sqlite3 *db, int64_t report, char *err, size_t errlen) {
  sqlite3_stmt *st = ru->fn[16];
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, report);
  return step_done(st) ? LW_OK : fail(db, "keeping the funnel", err, errlen);
}

typedef struct {
  int64_t shares, landed, converted, kept, landings, conversions, retained;
} contrib;

/* Add sign * c to the funnel row of (day, action, segment, mode). */
/* The funnel rows' changes of one settle, summed in memory per key (one UPSERT per touched key,
 * however many decision rows moved), written by funnel_flush. */
struct lw_sq_funnel_delta {
  char site[SITE_CAP], action[LW_NAME_LEN + 1], segment[LW_NAME_LEN + 1], mode[8], channel[LW_NAME_LEN + 1];
  int64_t day, fair, v[8]; /* n, then contrib's fields in order */
};
#define DELTAS_MAX 256 /* written early past this: a backfill touches thousands of keys */

static lw_status funnel_flush(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  lw_status s = LW_OK;
  for (size_t k = 0; s == LW_OK && k < ru->n_fd; k++) {
    const struct lw_sq_funnel_delta *d = &ru->fd[k];
    int zero = 1;
    for (int i = 0; i < 8; i++) zero = zero && d->v[i] == 0;
    if (zero) continue;
    sqlite3_stmt *st = ru->fn[14];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, d->site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d->day);
    sqlite3_bind_text(st, 3, d->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->segment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->mode, -1, SQLITE_STATIC);
    for (int i = 0; i < 8; i++) sqlite3_bind_int64(st, 6 + i, d->v[i]);
    sqlite3_bind_text(st, 14, d->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, d->fair);
    if (sqlite3_step(st) != SQLITE_ROW) {
      s = fail(db, "keeping the funnel", err, errlen);
      break;
    }
    int64_t left = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (left > 0) continue;
    st = ru->fn[15]; /* no shared decision row left under the key */
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, d->site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d->day);
    sqlite3_bind_text(st, 3, d->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->segment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->mode, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, d->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, d->fair);
    if (!step_done(st)) s = fail(db, "keeping the funnel", err, errlen);
  }
  ru->n_fd = 0;
  return s;
}

/* A funnel row's key: (site, day, action, segment, mode, channel, fair). */
typedef struct {
  const char *site, *action, *segment, *mode, *channel;
  int64_t day, fair;
} fkey;

/* Add sign * c to the funnel row of k. */
static lw_status funnel_add(lw_sq_rollup *ru, sqlite3 *db, const fkey *key, int sign, const contrib *c, char *err,
                            size_t errlen) {
  size_t k = 0;
  while (k < ru->n_fd &&
         (ru->fd[k].day != key->day || ru->fd[k].fair != key->fair || strcmp(ru->fd[k].action, key->action) ||
          strcmp(ru->fd[k].segment, key->segment) || strcmp(ru->fd[k].mode, key->mode) ||
          strcmp(ru->fd[k].channel, key->channel) || strcmp(ru->fd[k].site, key->site)))
    k++;
  if (k == ru->n_fd) {
    if (ru->n_fd == DELTAS_MAX) {
      lw_status s = funnel_flush(ru, db, err, errlen);
      if (s != LW_OK) return s;
      k = 0;
    }
    if (!lw_grow((void **)&ru->fd, &ru->fd_cap, ru->n_fd + 1, sizeof *ru->fd)) {
      snprintf(err, errlen, "out of memory");
      return LW_ERR_NOMEM;
    }
    struct lw_sq_funnel_delta *d = &ru->fd[ru->n_fd++];
    memset(d, 0, sizeof *d);
    snprintf(d->site, sizeof d->site, "%s", key->site);
    snprintf(d->action, sizeof d->action, "%s", key->action);
    snprintf(d->segment, sizeof d->segment, "%s", key->segment);
    snprintf(d->mode, sizeof d->mode, "%s", key->mode);
    snprintf(d->channel, sizeof d->channel, "%s", key->channel);
    d->day = key->day;
    d->fair = key->fair;
  }
  const int64_t v[8] = {1, c->shares, c->landed, c->converted, c->kept, c->landings, c->conversions, c->retained};
  for (int i = 0; i < 8; i++) ru->fd[k].v[i] += sign * v[i];
  return LW_OK;
}

static void bind_sd(sqlite3_stmt *st, const char *site, const char *decision) {
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, decision, -1, SQLITE_TRANSIENT);
}

/* The referee outcomes of a shared decision, as the cursor's join gives them (window 0). */
typedef struct {
  int64_t landings, conversions, retained;
  double value, revenue;
} outcomes;

static int read_rx(sqlite3_stmt *st, outcomes *o) {
  if (sqlite3_step(st) != SQLITE_ROW) return 0;
  o->conversions = sqlite3_column_int64(st, 0);
  o->retained = sqlite3_column_int64(st, 1);
  o->value = sqlite3_column_double(st, 2);
  o->revenue = sqlite3_column_double(st, 3);
  sqlite3_reset(st);
  return 1;
}

static lw_status outcomes_of(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision, outcomes *o,
                             char *err, size_t errlen) {
  memset(o, 0, sizeof *o);
  sqlite3_stmt *st = ru->fn[7];
  bind_sd(st, site, decision);
  if (sqlite3_step(st) != SQLITE_ROW) return fail(db, "keeping the funnel", err, errlen);
  int64_t tokens = sqlite3_column_int64(st, 0);
  o->landings = sqlite3_column_int64(st, 1);
  sqlite3_reset(st);
  if (tokens > 0) {
    st = ru->fn[8];
    bind_sd(st, site, decision);
    return read_rx(st, o) ? LW_OK : fail(db, "keeping the funnel", err, errlen);
  }
  st = ru->fn[9];
  bind_sd(st, site, decision);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(st);
    return LW_OK; /* no join: shared, but no outcome */
  }
  if (rc != SQLITE_ROW) return fail(db, "keeping the funnel", err, errlen);
  char code[LW_NAME_LEN + 1];
  snprintf(code, sizeof code, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_reset(st);
  st = ru->fn[10];
  bind_sd(st, site, code);
  if (sqlite3_step(st) != SQLITE_ROW) return fail(db, "keeping the funnel", err, errlen);
  o->landings = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  st = ru->fn[11];
  bind_sd(st, site, code);
  return read_rx(st, o) ? LW_OK : fail(db, "keeping the funnel", err, errlen);
}

/* Move one decision's rows from what they brought to what they bring now. */
static lw_status add_rows(lw_sq_rollup *ru, sqlite3 *db, sqlite3_stmt *st, const char *site, const char *decision,
                          const outcomes *o, const char *channel, char *err, size_t errlen);

/* The channel of a shared decision (fn[21]) into out. */
static lw_status channel_of(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision,
                            char out[LW_NAME_LEN + 1], char *err, size_t errlen) {
  sqlite3_stmt *st = ru->fn[21];
  bind_sd(st, site, decision);
  int rc = sqlite3_step(st);
  out[0] = '\0';
  if (rc == SQLITE_ROW) snprintf(out, LW_NAME_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? LW_OK : fail(db, "keeping the funnel", err, errlen);
}

static lw_status recompute(lw_sq_rollup *ru, sqlite3 *db, const char *site, const char *decision, int full,
                           char *err, size_t errlen) {
  lw_status s = LW_OK;
  sqlite3_stmt *st;
  char channel[LW_NAME_LEN + 1];
  if (!full) {
    /* Still shared with the same outcomes as its rows carry: only its new rows join (with its
     * channel: no deletion, so its first share is still the first). */
    st = ru->fn[6];
    bind_sd(st, site, decision);
    if (sqlite3_step(st) != SQLITE_ROW) return fail(db, "keeping the funnel", err, errlen);
    int shared = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    st = ru->fn[19];
    bind_sd(st, site, decision);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(db, "keeping the funnel", err, errlen);
    outcomes old = {0}, now;
    if (rc == SQLITE_ROW) {
      old.landings = sqlite3_column_int64(st, 0);
      old.conversions = sqlite3_column_int64(st, 1);
      old.retained = sqlite3_column_int64(st, 2);
      old.value = sqlite3_column_double(st, 3);
      old.revenue = sqlite3_column_double(st, 4);
      snprintf(channel, sizeof channel, "%s", (const char *)sqlite3_column_text(st, 5));
    }
    sqlite3_reset(st);
    if (!shared && rc == SQLITE_DONE) return LW_OK; /* not shared, nor before (no deletion): no rows */
    if (shared && rc == SQLITE_ROW) {
      if ((s = outcomes_of(ru, db, site, decision, &now, err, errlen)) != LW_OK) return s;
      if (now.landings == old.landings && now.conversions == old.conversions && now.retained == old.retained &&
          !memcmp(&now.value, &old.value, sizeof now.value) && !memcmp(&now.revenue, &old.revenue, sizeof now.revenue)) {
        st = ru->fn[20];
        bind_sd(st, site, decision);
        return add_rows(ru, db, st, site, decision, &now, channel, err, errlen);
      }
    }
  }
  st = ru->fn[4];
  bind_sd(st, site, decision);
  int rc;
  while (s == LW_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    contrib c = {sqlite3_column_int64(st, 5),  sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7),
                 sqlite3_column_int64(st, 8),  sqlite3_column_int64(st, 9), sqlite3_column_int64(st, 10),
                 sqlite3_column_int64(st, 11)};
    fkey k = {site,
              (const char *)sqlite3_column_text(st, 2),
              (const char *)sqlite3_column_text(st, 3),
              (const char *)sqlite3_column_text(st, 4),
              (const char *)sqlite3_column_text(st, 12),
              sqlite3_column_int64(st, 1),
              sqlite3_column_int64(st, 13)};
    s = funnel_add(ru, db, &k, -1, &c, err, errlen);
  }
  sqlite3_reset(st);
  if (s != LW_OK) return s;
  if (rc != SQLITE_DONE) return fail(db, "keeping the funnel", err, errlen);
  bind_sd(ru->fn[5], site, decision);
  if (!step_done(ru->fn[5])) return fail(db, "keeping the funnel", err, errlen);
  st = ru->fn[6];
  bind_sd(st, site, decision);
  if (sqlite3_step(st) != SQLITE_ROW) return fail(db, "keeping the funnel", err, errlen);
  int shared = sqlite3_column_int(st, 0);
  sqlite3_reset(st);
  if (!shared) return LW_OK;
  outcomes o;
  if ((s = outcomes_of(ru, db, site, decision, &o, err, errlen)) != LW_OK) return s;
  if ((s = channel_of(ru, db, site, decision, channel, err, errlen)) != LW_OK) return s;
  st = ru->fn[12];
  bind_sd(st, site, decision);
  return add_rows(ru, db, st, site, decision, &o, channel, err, errlen);
}

/* Insert the decision rows st selects (DEC_ROW_COLS) with the outcomes o and the decision's
 * channel, and add them to their funnel rows. */
static lw_status add_rows(lw_sq_rollup *ru, sqlite3 *db, sqlite3_stmt *st, const char *site, const char *decision,
                          const outcomes *op, const char *channel, char *err, size_t errlen) {
  lw_status s = LW_OK;
  const outcomes o = *op;
  int rc = SQLITE_DONE;
  while (s == LW_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *action = (const char *)sqlite3_column_text(st, 2);
    /* as console.c add_decision */
    int prompted = action[0] && strcmp(action, LW_ACTION_NONE) != 0;
    contrib c = {prompted,
                 prompted && o.landings > 0,
                 prompted && o.conversions > 0,
                 prompted && o.conversions > 0 && o.retained > 0,
                 o.landings,
                 o.conversions,
                 o.retained};
    sqlite3_stmt *ins = ru->fn[13];
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 2, decision, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 3, sqlite3_column_int64(st, 0));
    sqlite3_bind_int64(ins, 4, sqlite3_column_int64(st, 1));
    for (int k = 0; k < 3; k++) sqlite3_bind_text(ins, 5 + k, (const char *)sqlite3_column_text(st, 2 + k), -1, SQLITE_TRANSIENT);
    const int64_t v[7] = {c.shares, c.landed, c.converted, c.kept, c.landings, c.conversions, c.retained};
    for (int k = 0; k < 7; k++) sqlite3_bind_int64(ins, 8 + k, v[k]);
    sqlite3_bind_double(ins, 15, o.value);
    sqlite3_bind_double(ins, 16, o.revenue);
    sqlite3_bind_text(ins, 17, channel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 18, sqlite3_column_int64(st, 5));
    if (!step_done(ins)) {
      s = fail(db, "keeping the funnel", err, errlen);
      break;
    }
    if (sqlite3_changes(db) != 1) continue; /* there already */
    fkey k = {site,    action, (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4),
              channel, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 5)};
    s = funnel_add(ru, db, &k, 1, &c, err, errlen);
  }
  sqlite3_reset(st);
  if (s == LW_OK && rc != SQLITE_DONE) s = fail(db, "keeping the funnel", err, errlen);
  return s;
}

lw_status lw_sq_rollup_settle(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  /* The marks are read out first: recomputing writes to the tables the marks came from. */
  struct mark {
    char site[SITE_CAP], decision[LW_DECISION_ID_LEN + 1];
    int full;
  } *marks = NULL;
  size_t n = 0, cap = 0;
  lw_status s = LW_OK;
  sqlite3_stmt *st = ru->fn[2];
  sqlite3_reset(st);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!lw_grow((void **)&marks, &cap, n + 1, sizeof *marks)) {
      s = LW_ERR_NOMEM;
      snprintf(err, errlen, "out of memory");
      break;
    }
    snprintf(marks[n].site, sizeof marks[n].site, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(marks[n].decision, sizeof marks[n].decision, "%s", (const char *)sqlite3_column_text(st, 1));
    marks[n].full = sqlite3_column_int(st, 2);
    n++;
  }
  sqlite3_reset(st);
  if (s == LW_OK && rc != SQLITE_DONE) s = fail(db, "keeping the funnel", err, errlen);
  if (s == LW_OK && !step_done(ru->fn[3])) s = fail(db, "keeping the funnel", err, errlen);
  for (size_t i = 0; s == LW_OK && i < n; i++)
    s = recompute(ru, db, marks[i].site, marks[i].decision, marks[i].full, err, errlen);
  free(marks);
  if (s == LW_OK) s = funnel_flush(ru, db, err, errlen);
  if (s == LW_OK && !step_done(ru->fn[18])) s = fail(db, "keeping the funnel", err, errlen);
  return s;
}

static lw_status exec_sql(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return LW_ERR_IO;
  }
  return LW_OK;
}

lw_status lw_sq_funnel_backfill(sqlite3 *db, char *err, size_t errlen) {
  return exec_sql(db, lw_sq_funnel_tables, "migrating schema 10 to 11 (the console's funnel)", err, errlen);
}

/* ---------------------------------------------------------------- schema 12: channels, fairness
 * rollup_days gains the decision's fairness segments (fair: a bit per value of the spec in
 * rollup_fairness, lw_sq_fair), rollup_dec its channel and segments, rollup_funnel both in its
 * key: the fairness page sums rollup_days and rollup_funnel per segment, the report's channel
 * table rollup_funnel per channel, and the other readers sum over both as before. */

static const char k_v12_tables[] =
    "DROP TABLE IF EXISTS rollup_days; DROP TABLE IF EXISTS rollup_dec; DROP TABLE IF EXISTS rollup_funnel;"
    "DROP TABLE IF EXISTS rollup_fairness;"
    "CREATE TABLE rollup_days(site TEXT NOT NULL, day INTEGER NOT NULL, action TEXT NOT NULL,"
    "  segment TEXT NOT NULL, mode TEXT NOT NULL, fair INTEGER NOT NULL, decisions INTEGER NOT NULL,"
    "  prompts INTEGER NOT NULL, PRIMARY KEY(site, day, action, segment, mode, fair)) WITHOUT ROWID;"
    "CREATE TABLE rollup_dec(site TEXT NOT NULL, decision TEXT NOT NULL, id INTEGER NOT NULL, day INTEGER NOT NULL,"
    "  action TEXT NOT NULL, segment TEXT NOT NULL, mode TEXT NOT NULL, shares INTEGER NOT NULL,"
    "  landed INTEGER NOT NULL, converted INTEGER NOT NULL, kept INTEGER NOT NULL, landings INTEGER NOT NULL,"
    "  conversions INTEGER NOT NULL, retained INTEGER NOT NULL, value REAL NOT NULL, revenue REAL NOT NULL,"
    "  channel TEXT NOT NULL, fair INTEGER NOT NULL, PRIMARY KEY(site, decision, id)) WITHOUT ROWID;"
    "CREATE INDEX rollup_dec_converted ON rollup_dec(site, id) WHERE conversions > 0;"
    "CREATE TABLE rollup_funnel(site TEXT NOT NULL, day INTEGER NOT NULL, action TEXT NOT NULL,"
    "  segment TEXT NOT NULL, mode TEXT NOT NULL, channel TEXT NOT NULL, fair INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  shares INTEGER NOT NULL, landed INTEGER NOT NULL, converted INTEGER NOT NULL, kept INTEGER NOT NULL,"
    "  landings INTEGER NOT NULL, conversions INTEGER NOT NULL, retained INTEGER NOT NULL,"
    "  PRIMARY KEY(site, day, action, segment, mode, channel, fair)) WITHOUT ROWID;"
    "CREATE TABLE rollup_fairness(attribute TEXT NOT NULL, vals TEXT NOT NULL);"
    "INSERT INTO rollup_fairness(attribute, vals) VALUES('', '');";

/* rollup_days from the stored decisions (empty before). */
static lw_status fill_days(sqlite3 *db, const char *what, char *err, size_t errlen) {
  return exec_sql(db, LW_FN_FILL_DAYS, what, err, errlen);
}

lw_status lw_sq_rollup_migrate_12(sqlite3 *db, char *err, size_t errlen) {
  static const char what[] = "migrating schema 11 to 12 (the channels and fairness segments)";
  lw_status s = exec_sql(db, k_v12_tables, what, err, errlen);
  if (s == LW_OK) s = fill_days(db, what, err, errlen);
  if (s != LW_OK) return s;
  /* Every shared decision recomputed once (its rows, outcomes and channel), as the writer does. */
  lw_sq_rollup ru;
  memset(&ru, 0, sizeof ru);
  char sql[512];
  s = prepare_funnel(&ru, db, err, errlen);
  if (s == LW_OK && !lw_fn_expand_sq(LW_FN_MARK_ALL, NULL, sql, sizeof sql)) {
    snprintf(err, errlen, "%s: a statement too long", what);
    s = LW_ERR_INVALID;
  }
  if (s == LW_OK) s = exec_sql(db, sql, what, err, errlen);
  if (s == LW_OK) s = lw_sq_rollup_settle(&ru, db, err, errlen);
  for (int i = 0; i < LW_SQ_FUNNEL_STMTS; i++) sqlite3_finalize(ru.fn[i]);
  free(ru.fd);
  return s;
}

/* The spec compiled: its segments' names and hashes (funnel_sql.h normalizes it). */
static void fair_compile(lw_sq_fair *f, const lw_fairness_spec *spec) {
  memset(f, 0, sizeof *f);
  lw_fn_spec_norm(spec, &f->spec);
  for (int i = 0; i < f->spec.n; i++) {
    lw_audit_segment_name(f->spec.attribute, f->spec.values[i], f->names[i]);
    f->hashes[i] = lw_fnv1a(f->names[i]);
  }
}

/* rollup_fairness's spec (db: any connection). */
static lw_status stored_spec(sqlite3 *db, lw_fairness_spec *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT attribute, vals FROM rollup_fairness", -1, &st, NULL) != SQLITE_OK)
    return fail(db, "reading the fairness spec", err, errlen);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    lw_fn_spec_parse((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), out);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? LW_OK : fail(db, "reading the fairness spec", err, errlen);
}

lw_status lw_sq_rollup_load_fairness(lw_sq_rollup *ru, sqlite3 *db, char *err, size_t errlen) {
  lw_fairness_spec spec;
  lw_status s = stored_spec(db, &spec, err, errlen);
  if (s == LW_OK) fair_compile(&ru->fair, &spec);
  return s;
}

lw_status lw_sq_rollup_set_fairness(lw_sq_rollup *ru, sqlite3 *db, const lw_fairness_spec *spec, int *changed,
                                    char *err, size_t errlen) {
  static const char what[] = "recomputing the fairness segments";
  *changed = 0;
  if (lw_fn_same_spec(&ru->fair.spec, spec)) return LW_OK;
  *changed = 1;
  fair_compile(&ru->fair, spec); /* lw_fair computes with it from here (the caller restores it on failure) */
  static const char *const refair[LW_FN_REFAIR_N] = LW_FN_REFAIR;
  lw_status s = LW_OK;
  for (int i = 0; s == LW_OK && i < LW_FN_REFAIR_N; i++) s = exec_sql(db, refair[i], what, err, errlen);
  if (s != LW_OK) return s;
  char text[LW_FN_SPEC_TEXT_CAP];
  lw_fn_spec_text(&ru->fair.spec, text, sizeof text);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "UPDATE rollup_fairness SET attribute = ?1, vals = ?2", -1, &st, NULL) != SQLITE_OK)
    return fail(db, what, err, errlen);
  sqlite3_bind_text(st, 1, ru->fair.spec.attribute, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? LW_OK : fail(db, what, err, errlen);
}

lw_status lw_sq_rollup_fairness(sqlite3 *db, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                                char *err, size_t errlen) {
  lw_fairness_spec kept;
  lw_status s = stored_spec(db, &kept, err, errlen);
  if (s != LW_OK) return s;
  if (!lw_fn_same_spec(&kept, spec)) {
    snprintf(err, errlen, "the fairness rollups are kept for another attribute or values");
    return LW_ERR_INVALID;
  }
  for (int i = 0; i < spec->n && i < LW_FAIRNESS_VALUES; i++) memset(&out[i], 0, sizeof out[i]);
  static const char *const sql[2] = {LW_FN_READ_FAIR_DAYS, LW_FN_READ_FAIR_FUNNEL}; /* funnel_sql.h */
  for (int q = 0; s == LW_OK && q < 2; q++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql[q], -1, &st, NULL) != SQLITE_OK) return fail(db, "reading the fairness rollups", err, errlen);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      lw_fn_fair_add(out, spec->n, q, (uint64_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                     sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) s = fail(db, "reading the fairness rollups", err, errlen);
  }
  return s;
}

/* Every row of st (prepared and bound, not yet stepped), each read by read() into a zeroed
 * element of size bytes: *rows (the caller frees it) and *n_rows. st is finalized; what names
 * the rows in an error ("the funnel", "stats"). */
static lw_status read_rows(sqlite3 *db, sqlite3_stmt *st, size_t size, void (*read)(sqlite3_stmt *, void *),
                           void **rows, size_t *n_rows, const char *what, char *err, size_t errlen) {
  size_t n = 0, cap = 0;
  unsigned char *out = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!lw_grow((void **)&out, &cap, n + 1, size)) {
      free(out);
      sqlite3_finalize(st);
      snprintf(err, errlen, "out of memory reading %s", what);
      return LW_ERR_NOMEM;
    }
    memset(out + n * size, 0, size);
    read(st, out + n++ * size);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    free(out);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "reading %s", what);
    return fail(db, ctx, err, errlen);
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

static void read_value(sqlite3_stmt *st, void *row) {
  lw_funnel_value *v = row;
  v->day = sqlite3_column_int64(st, 0);
  snprintf(v->action, sizeof v->action, "%s", (const char *)sqlite3_column_text(st, 1));
  snprintf(v->segment, sizeof v->segment, "%s", (const char *)sqlite3_column_text(st, 2));
  snprintf(v->mode, sizeof v->mode, "%s", (const char *)sqlite3_column_text(st, 3));
  v->conversions = sqlite3_column_int64(st, 4);
  v->value = sqlite3_column_double(st, 5);
  v->revenue = sqlite3_column_double(st, 6);
  snprintf(v->channel, sizeof v->channel, "%s", (const char *)sqlite3_column_text(st, 7));
}

lw_status lw_sq_rollup_values(sqlite3 *db, const char *site, lw_funnel_value **rows, size_t *n_rows, char *err,
                              size_t errlen) {
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT day, action, segment, mode, conversions, value, revenue, channel FROM rollup_dec"
                         " WHERE site = ?1 AND conversions > 0 ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return fail(db, "preparing the funnel", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  return read_rows(db, st, sizeof **rows, read_value, (void **)rows, n_rows, "the funnel", err, errlen);
}

/* ---------------------------------------------------------------- the migration */

lw_status lw_sq_rollup_backfill(sqlite3 *db, char *err, size_t errlen) {
  char sql[4096];
  char *msg = NULL;
  if (sqlite3_exec(db, lw_sq_rollup_tables, NULL, NULL, &msg) != SQLITE_OK) goto failed;
  for (int d = 0; d < N_DIMS; d++) {
    const char *c = dim_cols[d];
    snprintf(sql, sizeof sql,
             "INSERT INTO rollup_installs(site, dim, key, install, n) SELECT site, %d, %s, install, count(*)"
             "  FROM events WHERE %s IS NOT NULL GROUP BY site, %s, install;"
             "INSERT INTO rollup_keys(site, dim, key, installs, n" LW_KINDS(RU_COL) ")"
             "  SELECT site, %d, %s, count(DISTINCT install), count(*)%s FROM events WHERE %s IS NOT NULL"
             "  GROUP BY site, %s;",
             d, c, c, c, d, c, k_kind_sums, c, c);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) goto failed;
  }
  snprintf(sql, sizeof sql,
           "INSERT INTO rollup_days(site, day, action, segment, mode, decisions, prompts)"
           " SELECT site, " DAY_SQL ", coalesce(action, ''), coalesce(segment, ''), coalesce(mode, ''), count(*),"
           " sum(" PROMPTED_SQL ") FROM events WHERE kind = '%s' GROUP BY 1, 2, 3, 4, 5;",
           lw_kind_name(LW_KIND_DECISION));
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) goto failed;
  if (sqlite3_exec(db,
                   "INSERT INTO rollup_site(site, outcomes, batches) SELECT site, 0, count(*) FROM batches GROUP BY site;"
                   "UPDATE rollup_site SET outcomes = (SELECT count(*) FROM events e WHERE e.site = rollup_site.site),"
                   "  codes = (SELECT count(*) FROM rollup_keys k WHERE k.site = rollup_site.site AND k.dim = 2);",
                   NULL, NULL, &msg) != SQLITE_OK)
    goto failed;
  return LW_OK;
failed:
  snprintf(err, errlen, "migrating schema 8 to 9 (the rollups): %s", msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  return LW_ERR_IO;
}

/* ---------------------------------------------------------------- GET /v1/stats */

static void read_row(sqlite3_stmt *st, void *r) {
  lw_stats_row *row = r;
  const unsigned char *key = sqlite3_column_text(st, 0);
  snprintf(row->key, sizeof row->key, "%s", key ? (const char *)key : "");
  row->installs = sqlite3_column_int64(st, 1);
  for (int k = 0; k < LW_KIND_COUNT; k++) row->counts[k] = sqlite3_column_int64(st, 2 + k);
}

/* The rows of one dimension, bound by ?1 site, ?2 dim and what extra binds. */
static lw_status rows_of(sqlite3 *db, const char *sql, const char *site, int dim, int64_t min, int64_t limit,
                         lw_stats_row **rows, size_t *n_rows, char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return fail(db, "preparing stats", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, dim);
  if (sqlite3_bind_parameter_count(st) >= 3) sqlite3_bind_int64(st, 3, min);
  if (sqlite3_bind_parameter_count(st) >= 4) sqlite3_bind_int64(st, 4, limit);
  return read_rows(db, st, sizeof **rows, read_row, (void **)rows, n_rows, "stats", err, errlen);
}

static lw_status scalar(sqlite3 *db, const char *sql, const char *site, int64_t x, int64_t *out, char *err,
                        size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return fail(db, "preparing stats", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, x);
  int rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? LW_OK : fail(db, "reading stats", err, errlen);
}

static int code_order(const void *a, const void *b) {
  return strcmp(((const lw_stats_row *)a)->key, ((const lw_stats_row *)b)->key);
}

#define KEY_COLS "SELECT key, installs" LW_KINDS(RU_COL) " FROM rollup_keys WHERE site = ?1 AND dim = ?2"

lw_status lw_sq_rollup_stats(sqlite3 *db, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                             char *err, size_t errlen) {
  lw_status s = scalar(db, "SELECT outcomes FROM rollup_site WHERE site = ?1", site, 0, &out->outcomes, err, errlen);
  if (s == LW_OK) s = scalar(db, "SELECT batches FROM rollup_site WHERE site = ?1", site, 0, &out->batches, err, errlen);
  if (s == LW_OK) s = rows_of(db, KEY_COLS " ORDER BY key", site, DIM_ACTION, 0, 0, &out->variants, &out->n_variants, err, errlen);
  if (s == LW_OK) s = rows_of(db, KEY_COLS " ORDER BY key", site, DIM_SEGMENT, 0, 0, &out->segments, &out->n_segments, err, errlen);
  if (s != LW_OK) return s;
  if (!bounds || !bounds->max_codes)
    return rows_of(db, KEY_COLS " ORDER BY key", site, DIM_CODE, 0, 0, &out->codes, &out->n_codes, err, errlen);
  /* Within bounds: the max_codes codes with the most installs (ties: the smaller code) of
   * those with at least min_installs, straight from rollup_keys_installs; those are counted on
   * the same index (the few codes many installs share), the others are the site's code count
   * minus them, so no read walks the long tail of one-install codes. */
  int64_t eligible = 0, codes = 0;
  s = scalar(db, "SELECT codes FROM rollup_site WHERE site = ?1", site, 0, &codes, err, errlen);
  if (s == LW_OK)
    s = scalar(db, "SELECT count(*) FROM rollup_keys WHERE site = ?1 AND dim = 2 AND installs >= ?2", site,
               bounds->min_installs, &eligible, err, errlen);
  out->codes_below_min = codes - eligible;
  if (s == LW_OK)
    s = rows_of(db, KEY_COLS " AND installs >= ?3 ORDER BY installs DESC, key LIMIT ?4", site, DIM_CODE,
                bounds->min_installs, (int64_t)bounds->max_codes, &out->codes, &out->n_codes, err, errlen);
  if (s != LW_OK) return s;
  out->codes_left_out = eligible - (int64_t)out->n_codes;
  if (out->n_codes) qsort(out->codes, out->n_codes, sizeof *out->codes, code_order);
  return LW_OK;
}

/* ---------------------------------------------------------------- the console's funnel days */

/* The report's key order (rollup_days' and rollup_funnel's primary keys start with it). */
static int day_key_cmp(const lw_funnel_day *a, int64_t day, const char *action, const char *segment, const char *mode) {
  if (a->day != day) return a->day < day ? -1 : 1;
  int c = strcmp(a->action, action);
  if (!c) c = strcmp(a->segment, segment);
  return c ? c : strcmp(a->mode, mode);
}

/* Schema 12 splits each (day, action, segment, mode) by fairness segments (rollup_days) and by
 * channel and segments (rollup_funnel): both are read in their primary key's order, which
 * starts with the report's key, and summed per key as they come (consecutive rows), the
 * funnel's merged into the days' in one pass: no sort, no temporary index. */
lw_status lw_sq_rollup_days(sqlite3 *db, const char *site, lw_funnel_day **rows, size_t *n_rows, char *err,
                            size_t errlen) {
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT day, action, segment, mode, decisions, prompts FROM rollup_days WHERE site = ?1"
                         " ORDER BY site, day, action, segment, mode",
                         -1, &st, NULL) != SQLITE_OK)
    return fail(db, "preparing the funnel", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  lw_funnel_day *out = NULL;
  size_t n = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t day = sqlite3_column_int64(st, 0);
    const char *action = (const char *)sqlite3_column_text(st, 1), *segment = (const char *)sqlite3_column_text(st, 2),
               *mode = (const char *)sqlite3_column_text(st, 3);
    if (!n || day_key_cmp(&out[n - 1], day, action, segment, mode) != 0) {
      if (!lw_grow((void **)&out, &cap, n + 1, sizeof *out)) {
        rc = SQLITE_NOMEM;
        break;
      }
      lw_funnel_day *d = &out[n++];
      memset(d, 0, sizeof *d);
      d->day = day;
      snprintf(d->action, sizeof d->action, "%s", action);
      snprintf(d->segment, sizeof d->segment, "%s", segment);
      snprintf(d->mode, sizeof d->mode, "%s", mode);
    }
    out[n - 1].decisions += sqlite3_column_int64(st, 4);
    out[n - 1].prompts += sqlite3_column_int64(st, 5);
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_DONE) {
    if (sqlite3_prepare_v2(db,
                           "SELECT day, action, segment, mode, shares, landed, converted, kept, landings, conversions,"
                           " retained FROM rollup_funnel WHERE site = ?1 ORDER BY site, day, action, segment, mode",
                           -1, &st, NULL) != SQLITE_OK) {
      free(out);
      return fail(db, "preparing the funnel", err, errlen);
    }
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    size_t i = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      int64_t day = sqlite3_column_int64(st, 0);
      const char *action = (const char *)sqlite3_column_text(st, 1), *segment = (const char *)sqlite3_column_text(st, 2),
                 *mode = (const char *)sqlite3_column_text(st, 3);
      while (i < n && day_key_cmp(&out[i], day, action, segment, mode) < 0) i++;
      if (i == n || day_key_cmp(&out[i], day, action, segment, mode) != 0) continue; /* no decision left: none */
      int64_t *v[7] = {&out[i].shares, &out[i].landed, &out[i].converted, &out[i].kept,
                       &out[i].landings, &out[i].conversions, &out[i].retained};
      for (int k = 0; k < 7; k++) *v[k] += sqlite3_column_int64(st, 4 + k);
    }
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_DONE) {
    free(out);
    if (rc == SQLITE_NOMEM) {
      snprintf(err, errlen, "out of memory reading the funnel");
      return LW_ERR_NOMEM;
    }
    return fail(db, "reading the funnel", err, errlen);
  }
  *rows = out;
  *n_rows = n;
  return LW_OK;
}

/* ---------------------------------------------------------------- the console's channels */

static void read_channel(sqlite3_stmt *st, void *row) {
  lw_funnel_channel *c = row;
  snprintf(c->channel, sizeof c->channel, "%s", (const char *)sqlite3_column_text(st, 0));
  int64_t *v[7] = {&c->shares, &c->landed, &c->converted, &c->kept, &c->landings, &c->conversions, &c->retained};
  for (int i = 0; i < 7; i++) *v[i] = sqlite3_column_int64(st, 1 + i);
}

lw_status lw_sq_rollup_channels(sqlite3 *db, const char *site, lw_funnel_channel **rows, size_t *n_rows, char *err,
                                size_t errlen) {
  *rows = NULL;
  *n_rows = 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, LW_FN_READ_CHANNELS, -1, &st, NULL) != SQLITE_OK)
    return fail(db, "preparing the channels", err, errlen);
  sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
  return read_rows(db, st, sizeof **rows, read_channel, (void **)rows, n_rows, "the channels", err, errlen);
}
