/* funnel_sql.h: the console funnel's rules as SQL text, defined once for the two backends that
 * keep the funnel rollups (SQLite schema 11, src/ingest/rollup_sqlite.c; PostgreSQL schema 4,
 * src/ingest/store_pg.c). Internal to those two files. SQLite's schema 12 and PostgreSQL's 6 add
 * the decision's channel (LW_FN_CHANNEL) and fairness segments (lw_fair(segment, x), a function
 * each backend defines: SQLite's in C, rollup_sqlite.c; PostgreSQL's in SQL over the spec's
 * segment names and hashes, store_pg.c) to the funnel's keys; "the fairness spec" below is how
 * both keep the spec those segments are for.
 *
 * What a shared decision brings to the console is its referee join (store.h "How a decision's
 * referee outcomes were joined"): by the tokens it owns (the first share or copy with a token on
 * the site owns it), else by the code of its first share or copy without a token, else none.
 * The statements below compute one decision's part of that join; SQLite runs each with bound
 * parameters, PostgreSQL runs them for every marked decision at once inside LATERAL subqueries
 * (lw_fn_expand replaces the parameters by the outer row's columns), so both backends join by
 * the very same text.
 *
 * Templates are in SQLite's dialect: %1$s is the shared kinds' quoted names ('share','copy'),
 * %2$s (the marks of a deletion) an SQL condition on the events table; ?1 the site, ?2 the
 * decision (or the code, in the code join's statements), ?3 the landing kind (both backends write it in
 * as a literal: bound, it made SQLite re-plan the statement on every run). PostgreSQL's
 * schema 4 defines total() as SQLite has it (a float8 sum that is 0.0 over no rows), so the
 * text runs there unchanged. rollup_dirty(site, decision, full) is each writer connection's
 * temporary table of the decisions to recompute before COMMIT (full quoted: a keyword in
 * PostgreSQL). */
#ifndef LW_INGEST_FUNNEL_SQL_H
#define LW_INGEST_FUNNEL_SQL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/store.h"
#include "loopwise/wire.h"

/* SQLite's planner hints: an SQL comment whose text starts "sq:" stands for the rest of its text in
 * SQLite's statements (lw_fn_expand_sq) and is dropped in PostgreSQL's (lw_fn_expand). With tokened shares SQLite's planner otherwise scanned every share or
 * token of the site per recomputed decision (the fill grew with the square of the shares);
 * CROSS JOIN fixes SQLite's join order (PostgreSQL plans a JOIN itself). */
#define LW_FN_CROSS "/*sq:CROSS*/ JOIN"

/* A decision's day (UTC, floor) and whether it prompted, over an events row. */
#define LW_FN_DAY_SQL "(CASE WHEN t >= 0 THEN t / 86400000 ELSE (t - 86399999) / 86400000 END)"
#define LW_FN_PROMPTED_SQL "(action IS NOT NULL AND action <> '" LW_ACTION_NONE "')"

/* ---- one decision's join (?1 site, ?2 decision) */

/* The decision's tokens it owns. SQLite: not materialized (it is read twice in
 * LW_FN_TOKEN_LANDINGS; materialized beside the count(DISTINCT) there, the statement took 34 us
 * with no token to read, 5.7 us inlined). */
#define LW_FN_OWNED_TOKENS                                                                            \
  "tok(token, code) AS /*sq:NOT MATERIALIZED*/ (SELECT s.token, s.code FROM events s WHERE s.site = ?1 AND s.decision = ?2"     \
  " AND s.kind IN (%1$s) AND s.token IS NOT NULL AND s.id = (SELECT min(o.id) FROM events o"           \
  " WHERE o.site = ?1 AND o.token = s.token AND o.kind IN (%1$s) AND o.decision IS NOT NULL))"
/* The counts of the referee rows rx(event, referee, value, received_at, id) of a join: referees
 * converted, retained 30 days, the conversions' value and the revenue, in receive order. */
#define LW_FN_RX_COUNTS                                                                                \
  " SELECT count(DISTINCT CASE WHEN event = 'conversion' THEN referee END),"                           \
  " count(DISTINCT CASE WHEN event = 'retained_30' THEN referee END),"                                 \
  " total(CASE WHEN event = 'conversion' THEN value END), total(CASE WHEN event = 'revenue' THEN value END)" \
  " FROM (SELECT r.event AS event, r.referee AS referee, r.value AS value FROM rx r ORDER BY r.received_at, r.id) rxo"

/* Shared: a share or copy of it is stored. One row: 0 or 1. */
#define LW_FN_SHARED "SELECT EXISTS(SELECT 1 FROM events WHERE site = ?1 AND decision = ?2 AND kind IN (%1$s))"
/* Joined by token: how many tokens it owns, and the installs that landed through them. */
#define LW_FN_TOKEN_LANDINGS                                                                           \
  "WITH " LW_FN_OWNED_TOKENS " SELECT (SELECT count(*) FROM tok), (SELECT count(DISTINCT l.install) FROM tok" \
  " " LW_FN_CROSS " events l ON l.site = ?1 AND l.token = tok.token AND l.code = tok.code AND l.kind = ?3)"
/* Joined by token: the referee reports of the conversions that carried its tokens (a rejected
 * conversion brings nothing). */
#define LW_FN_TOKEN_RX                                                                                 \
  "WITH " LW_FN_OWNED_TOKENS ", rx AS (SELECT r.* FROM tok " LW_FN_CROSS " referees c ON c.site = ?1"              \
  " AND c.token = tok.token AND c.code = tok.code AND c.event = 'conversion' AND c.state <> 'rejected'" \
  " " LW_FN_CROSS " referees r ON r.site = ?1 AND r.code = c.code AND r.referee = c.referee)" LW_FN_RX_COUNTS
/* Joined by code: the code of its first share or copy with a code and no token (no row: no
 * join). */
#define LW_FN_CODE_OF                                                                                  \
  "SELECT code FROM events WHERE site = ?1 AND decision = ?2 AND kind IN (%1$s) AND code IS NOT NULL" \
  " AND token IS NULL ORDER BY id LIMIT 1"
/* Joined by code ?2: the installs that landed with it and no token. */
#define LW_FN_CODE_LANDINGS                                                                            \
  "SELECT count(DISTINCT install) FROM events WHERE site = ?1 AND code = ?2 AND kind = ?3 AND token IS NULL"
/* Joined by code ?2: the referee reports of its conversions without a token. */
#define LW_FN_CODE_RX                                                                                  \
  "WITH rx AS (SELECT r.* FROM referees c JOIN referees r ON r.site = ?1 AND r.code = c.code"          \
  " AND r.referee = c.referee WHERE c.site = ?1 AND c.code = ?2 AND c.event = 'conversion'"            \
  " AND c.state <> 'rejected' AND c.token IS NULL)" LW_FN_RX_COUNTS
/* Its decision rows the console counts (t >= 0): id, day, action, segment, mode, fairness
 * segments. */
#define LW_FN_DEC_ROW_COLS                                                                             \
  "id, " LW_FN_DAY_SQL ", coalesce(action, ''), coalesce(segment, ''), coalesce(mode, ''), lw_fair(segment, x)"
#define LW_FN_DEC_ROWS_FROM " FROM events WHERE site = ?1 AND decision = ?2 AND kind = 'decision' AND t >= 0"
#define LW_FN_DEC_ROWS "SELECT " LW_FN_DEC_ROW_COLS LW_FN_DEC_ROWS_FROM
/* A shared decision's channel: its first share's or copy's (the decision reader's lw_shared), ""
 * when that record carried none. */
#define LW_FN_CHANNEL \
  "SELECT coalesce(channel, '') FROM events WHERE site = ?1 AND decision = ?2 AND kind IN (%1$s) ORDER BY id LIMIT 1"

/* ---- the marks: which decisions a change may touch */

/* The decisions whose shares or copies carry code ?2 (a landing, a referee report). */
#define LW_FN_MARK_CODE                                                                                \
  "INSERT INTO rollup_dirty(site, decision) SELECT site, decision FROM events"                        \
  " /*sq:INDEXED BY events_code*/ WHERE site = ?1 AND code = ?2 AND kind IN (%1$s) AND decision IS NOT NULL ON CONFLICT DO NOTHING"
/* Those of a referee report's code, by the report's id ?1 (a review). */
#define LW_FN_MARK_REPORT                                                                              \
  "INSERT INTO rollup_dirty(site, decision) SELECT e.site, e.decision FROM referees r"                \
  " " LW_FN_CROSS " events e /*sq:INDEXED BY events_code*/ ON e.site = r.site AND e.code = r.code AND e.kind IN (%1$s) AND e.decision IS NOT NULL" \
  " WHERE r.id = ?1 ON CONFLICT DO NOTHING"
/* Every shared decision (a migration's backfill). */
#define LW_FN_MARK_ALL                                                                                 \
  "INSERT INTO rollup_dirty(site, decision, \"full\") SELECT site, decision, 1 FROM events"               \
  " WHERE kind IN (%1$s) AND decision IS NOT NULL ON CONFLICT DO NOTHING"
/* Before the events that %2$s selects are deleted: their own decisions (a decision row only
 * when the funnel holds it: an unshared decision brought nothing), the shares of the codes
 * their landings carry, and the other shares of the tokens their shares carry (one of which
 * may own the token next). Also, on PostgreSQL, for the events a write added (see
 * LW_FN_MARK_ADDED), where a smaller id may commit later. DISTINCT: PostgreSQL's upsert takes a
 * row once per statement. */
#define LW_FN_MARK_DELETED_DECISIONS                                                                   \
  "INSERT INTO rollup_dirty(site, decision, \"full\") SELECT DISTINCT site, decision, 1 FROM events WHERE (%2$s)" \
  " AND decision IS NOT NULL AND (kind IN (%1$s) OR (kind = 'decision' AND EXISTS(SELECT 1 FROM rollup_dec r" \
  " WHERE r.site = events.site AND r.decision = events.decision)))"                                   \
  " ON CONFLICT(site, decision) DO UPDATE SET \"full\" = 1"
#define LW_FN_MARK_LANDED_CODES                                                                        \
  "INSERT INTO rollup_dirty(site, decision) SELECT e.site, e.decision FROM (SELECT DISTINCT"           \
  " site, code FROM events WHERE (%2$s) AND kind = 'landing' AND code IS NOT NULL) l " LW_FN_CROSS " events e" \
  " /*sq:INDEXED BY events_code*/ ON e.site = l.site AND e.code = l.code AND e.kind IN (%1$s) AND e.decision IS NOT NULL"            \
  " WHERE true ON CONFLICT DO NOTHING"
#define LW_FN_MARK_TOKENS                                                                              \
  "INSERT INTO rollup_dirty(site, decision) SELECT e.site, e.decision FROM (SELECT DISTINCT"           \
  " site, token FROM events WHERE (%2$s) AND kind IN (%1$s) AND token IS NOT NULL) k " LW_FN_CROSS " events e" \
  " /*sq:INDEXED BY events_token*/ ON e.site = k.site AND e.token = k.token AND e.kind IN (%1$s) AND e.decision IS NOT NULL"          \
  " WHERE true ON CONFLICT DO NOTHING"
/* The events %2$s selects were just added: their decisions (a decision row or a share or copy;
 * SQLite marks these from the batch in memory, rollup_sqlite.c lw_sq_rollup_add). */
#define LW_FN_MARK_ADDED                                                                               \
  "INSERT INTO rollup_dirty(site, decision) SELECT site, decision FROM events WHERE (%2$s)"           \
  " AND decision IS NOT NULL AND kind IN ('decision', %1$s) ON CONFLICT DO NOTHING"

/* ---- the console's reads (?1 the site) */

/* Every (day, action, segment, mode) with a decision: its decisions, prompts and the funnel's
 * later stages and totals (store.h lw_funnel_day's order), summed over the channels and fairness
 * segments the rows are split by (PostgreSQL's; SQLite merges the two tables in C,
 * rollup_sqlite.c lw_sq_rollup_outcomes). */
#define LW_FN_READ_DAYS                                                                                \
  "SELECT d.day, d.action, d.segment, d.mode, d.decisions, d.prompts, coalesce(f.shares, 0),"           \
  " coalesce(f.landed, 0), coalesce(f.converted, 0), coalesce(f.kept, 0),"                              \
  " coalesce(f.landings, 0), coalesce(f.conversions, 0), coalesce(f.retained, 0)"                       \
  " FROM (SELECT day, action, segment, mode, CAST(sum(decisions) AS bigint) AS decisions,"              \
  " CAST(sum(prompts) AS bigint) AS prompts FROM rollup_days WHERE site = ?1 GROUP BY 1, 2, 3, 4) d"    \
  " LEFT JOIN (SELECT day, action, segment, mode, CAST(sum(shares) AS bigint) AS shares,"               \
  " CAST(sum(landed) AS bigint) AS landed, CAST(sum(converted) AS bigint) AS converted,"                \
  " CAST(sum(kept) AS bigint) AS kept, CAST(sum(landings) AS bigint) AS landings,"                      \
  " CAST(sum(conversions) AS bigint) AS conversions, CAST(sum(retained) AS bigint) AS retained"          \
  " FROM rollup_funnel WHERE site = ?1 GROUP BY 1, 2, 3, 4) f ON f.day = d.day"                          \
  " AND f.action = d.action AND f.segment = d.segment AND f.mode = d.mode"                              \
  " ORDER BY d.day, d.action, d.segment, d.mode"
/* The converted decision rows in decision order (lw_funnel_value's order), with their channel. */
#define LW_FN_READ_VALUES                                                                              \
  "SELECT day, action, segment, mode, conversions, value, revenue, channel FROM rollup_dec"            \
  " WHERE site = ?1 AND conversions > 0 ORDER BY id"
/* The report's channels table (lw_funnel_channel's order; the walk's range, t >= 0). */
#define LW_FN_READ_CHANNELS                                                                            \
  "SELECT channel, sum(shares), sum(landed), sum(converted), sum(kept), sum(landings),"                 \
  " sum(conversions), sum(retained) FROM rollup_funnel WHERE site = ?1 AND day >= 0"                   \
  " GROUP BY channel ORDER BY channel"
/* The fairness page: the decision points of every decision (t >= 0: the walk's range), then the
 * shared decision rows and the converted ones, per set of segments and action (the audit's
 * prompt is lw_action_is_prompt's, which the action tells; lw_fn_fair_add). */
#define LW_FN_READ_FAIR_DAYS                                                                           \
  "SELECT fair, action, sum(decisions), 0 FROM rollup_days WHERE site = ?1 AND day >= 0 AND fair <> 0" \
  " GROUP BY fair, action"
#define LW_FN_READ_FAIR_FUNNEL                                                                         \
  "SELECT fair, action, sum(n), sum(converted) FROM rollup_funnel WHERE site = ?1 AND day >= 0"        \
  " AND fair <> 0 GROUP BY fair, action"

/* One row (fair, action, a, b) of LW_FN_READ_FAIR_DAYS (funnel 0) or LW_FN_READ_FAIR_FUNNEL
 * (funnel 1) into out[0..n). */
static inline void lw_fn_fair_add(lw_fairness_counts *out, int n, int funnel, uint64_t fair, const char *action,
                                  int64_t a, int64_t b) {
  int prompt = lw_action_is_prompt(action);
  for (int i = 0; i < n && i < LW_FAIRNESS_VALUES; i++) {
    if (!(fair >> i & 1)) continue;
    if (!funnel) out[i].decisions += a, out[i].prompts += prompt ? a : 0;
    else if (prompt) out[i].shares += a, out[i].conversions += b;
  }
}

/* ---- the fairness segments kept (lw_store_set_fairness) */

/* rollup_days from every stored decision (the table empty before), its segments by lw_fair. */
#define LW_FN_FILL_DAYS                                                                                \
  "INSERT INTO rollup_days(site, day, action, segment, mode, fair, decisions, prompts) SELECT site, "  \
  LW_FN_DAY_SQL ", coalesce(action, ''), coalesce(segment, ''), coalesce(mode, ''), lw_fair(segment, x)," \
  " count(*), sum(CASE WHEN " LW_FN_PROMPTED_SQL " THEN 1 ELSE 0 END) FROM events WHERE kind = 'decision'" \
  " GROUP BY 1, 2, 3, 4, 5, 6"
/* Another spec in force: every decision's segments again (lw_fair computing with the new one). */
#define LW_FN_REFAIR_N 5
#define LW_FN_REFAIR                                                                                   \
  {"DELETE FROM rollup_days", LW_FN_FILL_DAYS,                                                         \
   "UPDATE rollup_dec SET fair = coalesce((SELECT lw_fair(e.segment, e.x) FROM events e"              \
   " WHERE e.id = rollup_dec.id), 0)",                                                                 \
   "DELETE FROM rollup_funnel",                                                                        \
   "INSERT INTO rollup_funnel(site, day, action, segment, mode, channel, fair, n, shares, landed,"     \
   " converted, kept, landings, conversions, retained) SELECT site, day, action, segment, mode, channel," \
   " fair, count(*), sum(shares), sum(landed), sum(converted), sum(kept), sum(landings),"              \
   " sum(conversions), sum(retained) FROM rollup_dec GROUP BY 1, 2, 3, 4, 5, 6, 7"}

/* The spec as rollup_fairness(attribute, vals) keeps it: normalized (no values without an
 * attribute, at most LW_FAIRNESS_VALUES), each value as <length>:<value>, so no value can make
 * two specs read alike. */
#define LW_FN_SPEC_TEXT_CAP (LW_FAIRNESS_VALUES * (LW_NAME_LEN + 8) + 1)
static inline void lw_fn_spec_norm(const lw_fairness_spec *in, lw_fairness_spec *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->attribute, sizeof out->attribute, "%s", in->attribute);
  out->n = in->attribute[0] ? (in->n < LW_FAIRNESS_VALUES ? in->n : LW_FAIRNESS_VALUES) : 0;
  for (int i = 0; i < out->n; i++) snprintf(out->values[i], sizeof out->values[i], "%s", in->values[i]);
}
static inline void lw_fn_spec_text(const lw_fairness_spec *spec, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < spec->n && n < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%zu:%s", strlen(spec->values[i]), spec->values[i]);
}
static inline void lw_fn_spec_parse(const char *attribute, const char *vals, lw_fairness_spec *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->attribute, sizeof out->attribute, "%s", attribute ? attribute : "");
  const char *p = vals;
  while (p && *p && out->n < LW_FAIRNESS_VALUES) {
    char *colon;
    unsigned long len = strtoul(p, &colon, 10);
    if (*colon != ':' || strlen(colon + 1) < len || len > LW_NAME_LEN) break;
    memcpy(out->values[out->n], colon + 1, len);
    out->values[out->n++][len] = '\0';
    p = colon + 1 + len;
  }
}
/* 1 when a and b name the same segments in the same order. */
static inline int lw_fn_same_spec(const lw_fairness_spec *a, const lw_fairness_spec *b) {
  lw_fairness_spec x, y;
  lw_fn_spec_norm(a, &x);
  lw_fn_spec_norm(b, &y);
  char ta[LW_FN_SPEC_TEXT_CAP], tb[LW_FN_SPEC_TEXT_CAP];
  lw_fn_spec_text(&x, ta, sizeof ta);
  lw_fn_spec_text(&y, tb, sizeof tb);
  return !strcmp(x.attribute, y.attribute) && !strcmp(ta, tb);
}

/* The landing kind as an SQL literal ('landing'), what both backends write for ?3. */
static inline void lw_fn_landing_literal(char out[40]) { snprintf(out, 40, "'%s'", lw_kind_name(LW_KIND_LANDING)); }

/* tmpl with %1$s the shared kinds, %2$s cond (NULL: ""), then each ?N (N = 1..n_sub) replaced by
 * sub[N - 1] (NULL: left as it is; "$": PostgreSQL's $N), and the "sq:" hints kept (sqlite) or
 * dropped. 0 when out did not hold it. */
static inline int lw_fn_expand_dialect(const char *tmpl, const char *cond, const char *const *sub, int n_sub,
                                       int sqlite, char *out, size_t cap) {
  char kinds[128] = "", mid[8192];
  size_t n = 0;
  for (int k = 0; k < LW_KIND_COUNT; k++)
    if (lw_kind_flags((lw_kind)k) & LW_KIND_F_SHARED)
      n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s'%s'", n ? "," : "", lw_kind_name((lw_kind)k));
  int len = snprintf(mid, sizeof mid, tmpl, kinds, cond ? cond : "");
  if (len < 0 || (size_t)len >= sizeof mid) return 0;
  size_t o = 0;
  for (const char *p = mid; *p; p++) {
    if (strncmp(p, "/*sq:", 5) == 0) {
      const char *end = strstr(p + 5, "*/");
      if (!end) return 0;
      size_t hl = sqlite ? (size_t)(end - (p + 5)) : 0;
      if (o + hl >= cap) return 0;
      memcpy(out + o, p + 5, hl), o += hl, p = end + 1;
      continue;
    }
    int num = p[0] == '?' && p[1] >= '1' && p[1] <= '9' && !(p[2] >= '0' && p[2] <= '9') ? p[1] - '0' : 0;
    const char *rep = num && num <= n_sub ? sub[num - 1] : NULL;
    if (rep && strcmp(rep, "$") != 0) {
      size_t rl = strlen(rep);
      if (o + rl >= cap) return 0;
      memcpy(out + o, rep, rl), o += rl, p++;
      continue;
    }
    if (o + 1 >= cap) return 0;
    out[o++] = rep ? '$' : *p;
  }
  out[o] = '\0';
  return 1;
}
/* PostgreSQL's statements (the hints dropped) and SQLite's (the hints kept). */
static inline int lw_fn_expand(const char *tmpl, const char *cond, const char *const *sub, int n_sub, char *out,
                               size_t cap) {
  return lw_fn_expand_dialect(tmpl, cond, sub, n_sub, 0, out, cap);
}
static inline int lw_fn_expand_sq(const char *tmpl, const char *cond, char *out, size_t cap) {
  return lw_fn_expand_dialect(tmpl, cond, NULL, 0, 1, out, cap);
}

#endif
