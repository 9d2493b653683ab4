/* test_rollups.c: the writer-kept rollups (store schema 9, README "The store") answer GET
 * /v1/stats exactly as a walk of every stored event does, after random writes, forgets and
 * retention; a forgotten or expired event leaves them as if it had never been stored; and a
 * store of schema 8 (main's before the rollups) is migrated to answer as before. The backend is
 * the SQLite one, or PostgreSQL when LW_TEST_PG names a throwaway database (the same checks). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "console.h"
#include "rollup_sqlite.h"
#include "testutil.h"
#include "loopwise/audit.h"
#include "loopwise/batch.h"
#include "loopwise/ingest.h"
#include "loopwise/store.h"

#define NOW 1764100000000LL

static const char *pg_url(void) {
  const char *u = getenv("LW_TEST_PG");
  return u && *u ? u : NULL;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

static const char *const actions[] = {"credit_10", "credit_20", "none", "not_now"};
static const char *const segments[] = {"new", "loyal", "risk"};
/* The fairness spec the stores keep (spec_a), and another the tests switch to (spec_b), whose
 * values partly match the decisions' plan features (k_plans: "enterprise" never does). */
static const lw_fairness_spec spec_a = {"plan", 3, {"free", "pro", "team"}};
static const lw_fairness_spec spec_b = {"plan", 3, {"team", "enterprise", "free"}};
static const char *const plans[] = {"free", "pro", "team", "solo"};
static const char *const channels[] = {"native", "email", "linkedin", "x", "whatsapp"};
#define N_INSTALLS 10
#define N_CODES 8

static void install_of(unsigned i, char out[33]) { snprintf(out, 33, "%032x", 0xabc00 + i); }
static void code_of(unsigned i, char out[17]) { snprintf(out, 17, "CODE%04u", i); }

/* One random v1 batch: decisions, impressions, shares, copies, dismissals, landings and
 * conversions of a few installs, some with codes (a share of another install's code is
 * refused by the store, which both answers must reflect). */
static int batch_seq;
#define N_TOKENS 12
static void token_of(unsigned i, char out[33]) { snprintf(out, 33, "%032x", 0x70000 + i); }
/* Half the batches are v2: their shares, copies and landings may carry a share token from a
 * small pool (so tokens are reused across decisions, and a landing's token may name another
 * code than its share's), which the console's referee join follows. */
static char *random_batch(void) {
  size_t cap = 64 * 1024, len = 0;
  char *j = malloc(cap);
  int v2 = rnd(2);
  len += (size_t)snprintf(j + len, cap - len,
                          "{\"v\":%d,\"batch_id\":\"rb%06d\",\"write_key\":\"k\",\"sent_at\":%lld,\"events\":[",
                          v2 ? 2 : 1, batch_seq++, NOW);
  unsigned n = 1 + rnd(12), main_install = rnd(N_INSTALLS);
  static const char *const kinds[] = {"decision", "impression", "share", "copy", "dismiss", "landing", "conversion"};
  for (unsigned i = 0; i < n; i++) {
    char inst[33], code[17];
    install_of(rnd(4) ? main_install : rnd(N_INSTALLS), inst);
    code_of(rnd(N_CODES), code);
    const char *kind = kinds[rnd(7)];
    len += (size_t)snprintf(j + len, cap - len, "%s{\"kind\":\"%s\",\"t\":%lld,\"install\":\"%s\"", i ? "," : "",
                            kind, NOW - 1000 + i, inst);
    int referee = !strcmp(kind, "landing") || !strcmp(kind, "conversion");
    if (!referee || rnd(2))
      len += (size_t)snprintf(j + len, cap - len, ",\"decision\":\"%016x\"", 0x1000 + rnd(50));
    if (!strcmp(kind, "decision")) {
      len += (size_t)snprintf(j + len, cap - len, ",\"action\":\"%s\",\"p\":0.5,\"mode\":\"rules\",\"reason\":\"r\"",
                              actions[rnd(4)]);
      /* hashed features: most decisions carry a plan (some two, one none), beside another */
      char plan[LW_SEGMENT_NAME_LEN + 1], other[LW_SEGMENT_NAME_LEN + 1];
      lw_audit_segment_name("plan", plans[rnd(4)], plan);
      lw_audit_segment_name("plan", plans[rnd(4)], other);
      unsigned how = rnd(6);
      if (how == 0)
        len += (size_t)snprintf(j + len, cap - len, ",\"x\":[[%u,1],[%u,1]]", lw_fnv1a(plan), lw_fnv1a(other));
      else if (how < 5)
        len += (size_t)snprintf(j + len, cap - len, ",\"x\":[[%u,1],[%u,0.5]]", lw_fnv1a(plan), 12345u + rnd(3));
    }
    else if (rnd(2))
      len += (size_t)snprintf(j + len, cap - len, ",\"action\":\"%s\"", actions[rnd(4)]);
    if (rnd(3)) len += (size_t)snprintf(j + len, cap - len, ",\"segment\":\"%s\"", segments[rnd(3)]);
    int coded = !strcmp(kind, "share") || !strcmp(kind, "copy") || referee;
    int has_code = coded && (rnd(4) || (v2 && !referee)); /* v2: a share or copy carries its code and token */
    if (has_code) len += (size_t)snprintf(j + len, cap - len, ",\"code\":\"%s\"", code);
    if (v2 && has_code && strcmp(kind, "conversion") != 0 && (!referee || rnd(3))) {
      char tok[33];
      token_of(rnd(N_TOKENS), tok);
      len += (size_t)snprintf(j + len, cap - len, ",\"token\":\"%s\"", tok);
    }
    if (v2 && (!strcmp(kind, "share") || !strcmp(kind, "copy")))
      len += (size_t)snprintf(j + len, cap - len, ",\"channel\":\"%s\"", !strcmp(kind, "copy") ? "copy" : channels[rnd(5)]);
    len += (size_t)snprintf(j + len, cap - len, "}");
  }
  snprintf(j + len, cap - len, "]}");
  return j;
}

static void write_json(lw_store *s, const char *site, const char *json, int64_t received_ms) {
  lw_batch *b = NULL;
  lw_batch_error berr;
  char err[LW_ERRMSG_MAX];
  lw_status st = lw_batch_parse(json, strlen(json), NULL, received_ms, &b, &berr);
  if (st != LW_OK) fprintf(stderr, "write_json: %s: %s\n%s\n", berr.field, berr.message, json);
  CHECK_INT(st, LW_OK);
  if (!b) return;
  lw_store_item it = {site, b, received_ms, 0, 0}, *items[] = {&it};
  st = lw_store_write(s, items, 1, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "write: %s\n", err);
  CHECK_INT(st, LW_OK);
  lw_batch_free(b);
}

/* Several batches in one write (one transaction, as the writer groups them), one of them twice
 * (stored once), over both sites. */
static void write_group(lw_store *s, const char *const *sites, int64_t received_ms) {
  lw_batch *b[4] = {0};
  lw_store_item it[5], *items[5];
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < 4; i++) {
    char *j = random_batch();
    lw_batch_error berr;
    CHECK_INT(lw_batch_parse(j, strlen(j), NULL, received_ms, &b[i], &berr), LW_OK);
    free(j);
    it[i] = (lw_store_item){sites[i % 2], b[i], received_ms, 0, 0};
    items[i] = &it[i];
  }
  it[4] = (lw_store_item){sites[0], b[0], received_ms, 0, 0};
  items[4] = &it[4];
  if (b[0] && b[1] && b[2] && b[3]) {
    CHECK_INT(lw_store_write(s, items, 5, err, sizeof err), LW_OK);
    CHECK_INT(it[4].duplicate, 1);
  }
  for (int i = 0; i < 4; i++) lw_batch_free(b[i]);
}

static int rows_equal(const char *what, const lw_stats_row *a, size_t na, const lw_stats_row *b, size_t nb) {
  if (na != nb) {
    fprintf(stderr, "%s: %zu rows from the rollups, %zu from the walk\n", what, na, nb);
    return 0;
  }
  for (size_t i = 0; i < na; i++) {
    int same = !strcmp(a[i].key, b[i].key) && a[i].installs == b[i].installs;
    for (int k = 0; k < LW_KIND_COUNT; k++) same = same && a[i].counts[k] == b[i].counts[k];
    if (!same) {
      fprintf(stderr, "%s row %zu: rollups %s/%lld, walk %s/%lld\n", what, i, a[i].key, (long long)a[i].installs,
              b[i].key, (long long)b[i].installs);
      return 0;
    }
  }
  return 1;
}

/* The console's rollups against a walk of every decision: the funnel days equal the decisions
 * and prompts counted per (day, action, segment, mode), and the shared-decisions cursor gives
 * exactly the walk's shared decisions, outcomes included. */
#define WALK_MAX 4096
static int64_t day_of(int64_t t) { return t >= 0 ? t / 86400000 : (t - 86399999) / 86400000; }

/* The whole funnel (SQLite schema 11, PostgreSQL 4) against the walk of every decision with its outcomes:
 * per (day, action, segment, mode) the later stages and referee totals the console counts
 * (console.c add_decision, over the shared decisions), and the converted decisions' values in
 * decision order, to the last bit. A backend without it says LW_ERR_INVALID. */
static void check_funnel_against_walk(lw_store *s, const char *site, const char *when, const lw_store_decision *all,
                                      size_t n_all) {
  char err[LW_ERRMSG_MAX];
  lw_funnel_day *days = NULL;
  lw_funnel_value *values = NULL;
  size_t n_days = 0, n_values = 0;
  lw_status st = lw_store_funnel_outcomes(s, site, &days, &n_days, &values, &n_values, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "%s: funnel: %s\n", when, err);
  CHECK_INT(st, LW_OK);
  for (size_t k = 0; k < n_days; k++) {
    int64_t w[7] = {0};
    for (size_t i = 0; i < n_all; i++) {
      const lw_store_decision *d = &all[i];
      if (!d->shared || day_of(d->t) != days[k].day || strcmp(d->action, days[k].action) ||
          strcmp(d->segment, days[k].segment) || strcmp(d->mode, days[k].mode))
        continue;
      const lw_referee_outcomes *o = &d->outcomes;
      int prompted = d->action[0] && strcmp(d->action, "none") != 0;
      w[0] += prompted;
      w[1] += prompted && o->landings > 0;
      w[2] += prompted && o->conversions > 0;
      w[3] += prompted && o->conversions > 0 && o->retained_30 > 0;
      w[4] += o->landings, w[5] += o->conversions, w[6] += o->retained_30;
    }
    const int64_t r[7] = {days[k].shares,   days[k].landed,      days[k].converted, days[k].kept,
                          days[k].landings, days[k].conversions, days[k].retained};
    int same = !memcmp(w, r, sizeof w);
    if (!same)
      fprintf(stderr,
              "%s, site %s: day %lld %s/%s/%s: rollups %lld %lld %lld %lld / %lld %lld %lld,"
              " walk %lld %lld %lld %lld / %lld %lld %lld\n",
              when, site, (long long)days[k].day, days[k].action, days[k].segment, days[k].mode, (long long)r[0],
              (long long)r[1], (long long)r[2], (long long)r[3], (long long)r[4], (long long)r[5], (long long)r[6],
              (long long)w[0], (long long)w[1], (long long)w[2], (long long)w[3], (long long)w[4], (long long)w[5],
              (long long)w[6]);
    CHECK(same);
  }
  size_t v = 0;
  for (size_t i = 0; i < n_all; i++) {
    const lw_store_decision *d = &all[i];
    if (!d->shared || d->outcomes.conversions <= 0) {
      if (d->shared) CHECK(d->outcomes.conversion_value == 0 && d->outcomes.revenue == 0);
      continue;
    }
    const lw_funnel_value *fv = v < n_values ? &values[v] : NULL;
    v++;
    int same = fv && fv->day == day_of(d->t) && !strcmp(fv->action, d->action) && !strcmp(fv->segment, d->segment) &&
               !strcmp(fv->mode, d->mode) &&
               !strcmp(fv->channel, d->channel) &&
               fv->conversions == d->outcomes.conversions &&
               !memcmp(&fv->value, &d->outcomes.conversion_value, sizeof fv->value) &&
               !memcmp(&fv->revenue, &d->outcomes.revenue, sizeof fv->revenue);
    if (!same)
      fprintf(stderr, "%s, site %s: converted decision %llu: rollups %lld/%.17g/%.17g, walk %lld/%.17g/%.17g\n", when,
              site, (unsigned long long)d->id, fv ? (long long)fv->conversions : -1LL, fv ? fv->value : 0,
              fv ? fv->revenue : 0, (long long)d->outcomes.conversions, d->outcomes.conversion_value,
              d->outcomes.revenue);
    CHECK(same);
  }
  CHECK_INT(n_values, v);
  if (getenv("LW_DEBUG_FUNNEL")) { int64_t sh = 0, la = 0, cv = 0, kp = 0; for (size_t k = 0; k < n_days; k++) sh += days[k].shares, la += days[k].landed, cv += days[k].converted, kp += days[k].kept; fprintf(stderr, "%s %s: %zu values, shares %lld landed %lld converted %lld kept %lld\n", when, site, n_values, (long long)sh, (long long)la, (long long)cv, (long long)kp); }
  free(days);
  free(values);
}
/* The spec the store under test was last given (lw_store_set_fairness). */
static const lw_fairness_spec *current_spec = &spec_a;

static void set_spec(lw_store *s, const lw_fairness_spec *spec) {
  char err[LW_ERRMSG_MAX];
  lw_status st = lw_store_set_fairness(s, spec, err, sizeof err); /* SQLite 12, PostgreSQL 6 */
  if (st != LW_OK) fprintf(stderr, "set_fairness: %s\n", err);
  CHECK_INT(st, LW_OK);
  current_spec = spec;
}

/* The fairness page's counts (schema 12) against the walk of every decision by the segment
 * rule (loopwise/audit.h), for the spec in force; another spec is refused (the page walks). */
static int walk_without_segments; /* a case whose data has no fairness segment */

static void check_fairness_against_walk(lw_store *s, const char *site, const char *when, const lw_store_decision *all,
                                        size_t n_all) {
  char err[LW_ERRMSG_MAX];
  const lw_fairness_spec *spec = current_spec;
  lw_fairness_counts got[LW_FAIRNESS_VALUES], want[LW_FAIRNESS_VALUES];
  lw_status st = lw_store_fairness(s, site, spec, got, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "%s: fairness: %s\n", when, err);
  CHECK_INT(st, LW_OK);
  const lw_fairness_spec *other = spec == &spec_a ? &spec_b : &spec_a;
  CHECK_INT(lw_store_fairness(s, site, other, got, err, sizeof err), LW_ERR_INVALID);
  CHECK_INT(lw_store_fairness(s, site, spec, got, err, sizeof err), LW_OK);
  char names[LW_FAIRNESS_VALUES][LW_SEGMENT_NAME_LEN + 1];
  uint32_t hashes[LW_FAIRNESS_VALUES];
  for (int v = 0; v < spec->n; v++) {
    lw_audit_segment_name(spec->attribute, spec->values[v], names[v]);
    hashes[v] = lw_fnv1a(names[v]);
  }
  memset(want, 0, sizeof want);
  for (size_t i = 0; i < n_all; i++) {
    const lw_store_decision *d = &all[i];
    uint32_t in = lw_audit_segments_of(d->segment[0] ? d->segment : NULL, d->x, d->n_x, names, hashes, spec->n);
    int prompted = lw_action_is_prompt(d->action); /* the audit's prompt: not "none", not "not now" */
    for (int v = 0; v < spec->n; v++) {
      if (!(in >> v & 1)) continue;
      want[v].decisions++;
      want[v].prompts += prompted;
      want[v].shares += prompted && d->shared;
      want[v].conversions += prompted && d->shared && d->outcomes.conversions > 0;
    }
  }
  int64_t seen = 0;
  for (int v = 0; v < spec->n; v++) {
    int same = !memcmp(&got[v], &want[v], sizeof got[v]);
    if (!same)
      fprintf(stderr, "%s, site %s: segment %s: rollups %lld %lld %lld %lld, walk %lld %lld %lld %lld\n", when, site,
              names[v], (long long)got[v].decisions, (long long)got[v].prompts, (long long)got[v].shares,
              (long long)got[v].conversions, (long long)want[v].decisions, (long long)want[v].prompts,
              (long long)want[v].shares, (long long)want[v].conversions);
    CHECK(same);
    seen += want[v].decisions;
  }
  if (n_all > 20 && !walk_without_segments) CHECK(seen > 0); /* the data reaches the segments */
}

/* The channels (schema 12): per channel of the shared decisions' first share, the later stages
 * and totals the console counts. */
static void check_channels_against_walk(lw_store *s, const char *site, const char *when, const lw_store_decision *all,
                                        size_t n_all) {
  char err[LW_ERRMSG_MAX];
  lw_funnel_channel *rows = NULL;
  size_t n = 0;
  lw_status st = lw_store_funnel_channels(s, site, &rows, &n, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "%s: channels: %s\n", when, err);
  CHECK_INT(st, LW_OK);
  size_t walked = 0;
  for (size_t i = 0; i < n_all; i++) walked += all[i].shared;
  int64_t total = 0;
  for (size_t k = 0; k < n; k++) {
    int64_t w[7] = {0}, rows_of_channel = 0;
    for (size_t i = 0; i < n_all; i++) {
      const lw_store_decision *d = &all[i];
      if (!d->shared || strcmp(d->channel, rows[k].channel)) continue;
      const lw_referee_outcomes *o = &d->outcomes;
      int prompted = d->action[0] && strcmp(d->action, "none") != 0;
      rows_of_channel++;
      w[0] += prompted;
      w[1] += prompted && o->landings > 0;
      w[2] += prompted && o->conversions > 0;
      w[3] += prompted && o->conversions > 0 && o->retained_30 > 0;
      w[4] += o->landings, w[5] += o->conversions, w[6] += o->retained_30;
    }
    const int64_t r[7] = {rows[k].shares,   rows[k].landed,      rows[k].converted, rows[k].kept,
                          rows[k].landings, rows[k].conversions, rows[k].retained};
    int same = !memcmp(w, r, sizeof w) && rows_of_channel > 0;
    if (!same)
      fprintf(stderr, "%s, site %s: channel '%s': rollups %lld %lld %lld %lld / %lld %lld %lld, walk %lld %lld %lld %lld"
              " / %lld %lld %lld\n", when, site, rows[k].channel, (long long)r[0], (long long)r[1], (long long)r[2],
              (long long)r[3], (long long)r[4], (long long)r[5], (long long)r[6], (long long)w[0], (long long)w[1],
              (long long)w[2], (long long)w[3], (long long)w[4], (long long)w[5], (long long)w[6]);
    CHECK(same);
    total += rows_of_channel;
  }
  CHECK_INT(total, (int64_t)walked); /* every shared decision under its channel */
  free(rows);
}

static void check_console_against_walk(lw_store *s, const char *site, const char *when) {
  char err[LW_ERRMSG_MAX];
  lw_store_range range = {site, 0, 0};
  lw_store_cursor *cur = NULL;
  static lw_store_decision all[WALK_MAX], shared[WALK_MAX];
  size_t n_all = 0, n_shared = 0, n_walk_shared = 0;
  CHECK_INT(lw_store_decisions(s, &range, &cur, err, sizeof err), LW_OK);
  while (cur && n_all < WALK_MAX && lw_store_next(cur, &all[n_all], err, sizeof err) == 1) n_all++;
  lw_store_cursor_free(cur);
  cur = NULL;
  CHECK_INT(lw_store_shared_decisions(s, &range, &cur, err, sizeof err), LW_OK);
  while (cur && n_shared < WALK_MAX && lw_store_next(cur, &shared[n_shared], err, sizeof err) == 1) n_shared++;
  lw_store_cursor_free(cur);
  for (size_t i = 0; i < n_all; i++) {
    if (!all[i].shared) continue;
    const lw_store_decision *w = &all[i], *r = n_walk_shared < n_shared ? &shared[n_walk_shared] : NULL;
    n_walk_shared++;
    int same = r && r->id == w->id && r->shared && !strcmp(r->channel, w->channel) && r->t == w->t &&
               !memcmp(&r->outcomes, &w->outcomes, sizeof r->outcomes) && !strcmp(r->segment, w->segment);
    if (!same) fprintf(stderr, "%s, site %s: shared decision %llu differs\n", when, site, (unsigned long long)w->id);
    CHECK(same);
  }
  CHECK_INT(n_shared, n_walk_shared);
  lw_funnel_day *days = NULL;
  size_t n_days = 0;
  CHECK_INT(lw_store_funnel_days(s, site, &days, &n_days, err, sizeof err), LW_OK);
  int64_t total = 0;
  for (size_t k = 0; k < n_days; k++) {
    int64_t dec = 0, pr = 0;
    for (size_t i = 0; i < n_all; i++)
      if (day_of(all[i].t) == days[k].day && !strcmp(all[i].action, days[k].action) &&
          !strcmp(all[i].segment, days[k].segment) && !strcmp(all[i].mode, days[k].mode))
        dec++, pr += strcmp(all[i].action, "none") != 0;
    if (dec != days[k].decisions || pr != days[k].prompts)
      fprintf(stderr, "%s, site %s: day %lld %s/%s/%s: rollups %lld/%lld, walk %lld/%lld\n", when, site,
              (long long)days[k].day, days[k].action, days[k].segment, days[k].mode, (long long)days[k].decisions,
              (long long)days[k].prompts, (long long)dec, (long long)pr);
    CHECK(dec == days[k].decisions && pr == days[k].prompts && dec > 0);
    total += days[k].decisions;
  }
  CHECK_INT(total, (int64_t)n_all); /* and no decision outside them */
  free(days);
  check_funnel_against_walk(s, site, when, all, n_all);
  check_fairness_against_walk(s, site, when, all, n_all);
  check_channels_against_walk(s, site, when, all, n_all);
}

/* The rollups' answer against the walk's, unbounded and within two bounds. */
static void check_against_walk(lw_store *s, const char *site, const char *when) {
  check_console_against_walk(s, site, when);
  const lw_stats_bounds bounds[] = {{0, 0}, {3, 2}, {100, 1}, {2, 0}};
  for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
    lw_stats r, w;
    char err[LW_ERRMSG_MAX];
    CHECK_INT(lw_store_stats_bounded(s, site, &bounds[i], &r, err, sizeof err), LW_OK);
    CHECK_INT(lw_store_stats_walk(s, site, &bounds[i], &w, err, sizeof err), LW_OK);
    int ok = r.outcomes == w.outcomes && r.batches == w.batches && r.codes_below_min == w.codes_below_min &&
             r.codes_left_out == w.codes_left_out &&
             rows_equal("variants", r.variants, r.n_variants, w.variants, w.n_variants) &&
             rows_equal("segments", r.segments, r.n_segments, w.segments, w.n_segments) &&
             rows_equal("codes", r.codes, r.n_codes, w.codes, w.n_codes);
    if (!ok)
      fprintf(stderr, "%s, site %s, bounds %zu/%lld: outcomes %lld/%lld batches %lld/%lld below %lld/%lld left %lld/%lld\n",
              when, site, bounds[i].max_codes, (long long)bounds[i].min_installs, (long long)r.outcomes,
              (long long)w.outcomes, (long long)r.batches, (long long)w.batches, (long long)r.codes_below_min,
              (long long)w.codes_below_min, (long long)r.codes_left_out, (long long)w.codes_left_out);
    CHECK(ok);
    lw_stats_clear(&r);
    lw_stats_clear(&w);
  }
}

/* ---------------------------------------------------------------- stores under test */


/* PostgreSQL: a schema of this case's own on the test database (as test_store_pg.c), so
 * reruns start empty. */
static char tmp_path[64], pg_case_url[2048], pg_schema[64];
static int pg_cases;
static void psql(const char *sql) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "PGOPTIONS='-c client_min_messages=warning' psql '%s' -X -q -c '%s'", pg_url(), sql);
  CHECK_INT(system(cmd), 0);
}
static void pg_schema_sql(const char *fmt) {
  char sql[1024];
  snprintf(sql, sizeof sql, fmt, pg_schema, pg_schema);
  psql(sql);
}

/* PostgreSQL schema 6 taken back to 5 (the store this build's predecessor left): rollup_days and
 * rollup_funnel summed over the channel and fairness segments and keyed without them, rollup_dec
 * without them, and no rollup_fairness, rollup_fair_segments or lw_fair. */
static void pg_back_to_5(void) {
  static char sql[4096];
  snprintf(sql, sizeof sql,
           "SET search_path = %s;"
           "CREATE TABLE d5 AS SELECT site, day, action, segment, mode, sum(decisions)::bigint AS decisions,"
           " sum(prompts)::bigint AS prompts FROM rollup_days GROUP BY 1, 2, 3, 4, 5;"
           "CREATE TABLE f5 AS SELECT site, day, action, segment, mode, sum(n)::bigint AS n, sum(shares)::bigint AS s,"
           " sum(landed)::bigint AS l, sum(converted)::bigint AS c, sum(kept)::bigint AS k, sum(landings)::bigint AS ls,"
           " sum(conversions)::bigint AS cs, sum(retained)::bigint AS rs FROM rollup_funnel GROUP BY 1, 2, 3, 4, 5;"
           "DELETE FROM rollup_days; ALTER TABLE rollup_days DROP COLUMN fair;"
           "ALTER TABLE rollup_days ADD PRIMARY KEY(site, day, action, segment, mode);"
           "INSERT INTO rollup_days SELECT * FROM d5;"
           "DELETE FROM rollup_funnel; ALTER TABLE rollup_funnel DROP COLUMN channel, DROP COLUMN fair;"
           "ALTER TABLE rollup_funnel ADD PRIMARY KEY(site, day, action, segment, mode);"
           "INSERT INTO rollup_funnel SELECT * FROM f5;"
           "ALTER TABLE rollup_dec DROP COLUMN channel, DROP COLUMN fair;"
           "DROP TABLE d5, f5, rollup_fairness, rollup_fair_segments; DROP FUNCTION lw_fair(text, bytea);"
           "UPDATE lw_schema SET version = 5;",
           pg_schema);
  psql(sql);
}

static lw_store *fresh_store(void) {
  char err[LW_ERRMSG_MAX];
  lw_store *s = NULL;
  if (pg_url()) {
    snprintf(pg_schema, sizeof pg_schema, "lwr_%ld_%d", (long)getpid(), pg_cases++);
    snprintf(pg_case_url, sizeof pg_case_url, "%s%soptions=-csearch_path%%3D%s", pg_url(),
             strchr(pg_url(), '?') ? "&" : "?", pg_schema);
    pg_schema_sql("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s");
    if (lw_store_open_pg(pg_case_url, &s, err, sizeof err) != LW_OK) {
      fprintf(stderr, "open: %s\n", err);
      CHECK(0);
      return NULL;
    }
    set_spec(s, &spec_a);
    return s;
  }
  snprintf(tmp_path, sizeof tmp_path, "/tmp/lw-rollups-XXXXXX");
  int fd = mkstemp(tmp_path);
  close(fd);
  unlink(tmp_path);
  CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  if (s) set_spec(s, &spec_a);
  return s;
}

/* One referee report of a random code, referee and event (some conversions with a token of the
 * pool; the later events take their conversion's), some with a value that binary fractions do not hold exactly), under rules that flag some
 * conversions for review; refused later events are part of it. */
static int64_t reports;
static void random_report(lw_store *s, const char *site, int64_t clock_ms) {
  static const char *const events[] = {"conversion", "conversion", "retained_30", "retained_90", "churned", "revenue"};
  char code[17], tok[33], err[LW_ERRMSG_MAX];
  uint8_t referee[LW_REFEREE_HASH_LEN];
  memset(referee, 0x40 + (int)rnd(6), sizeof referee);
  code_of(rnd(N_CODES), code);
  token_of(rnd(N_TOKENS), tok);
  lw_integrity_rules rules;
  memset(&rules, 0, sizeof rules);
  rules.review_all = rnd(3) == 0;
  const char *event = events[rnd(6)];
  lw_referee_report r = {.site = site, .code = code, .referee = referee, .event = event,
                         .token = !strcmp(event, "conversion") && rnd(2) ? tok : NULL, .at = clock_ms, .received_ms = clock_ms, .rules = &rules};
  if (!strcmp(event, "revenue") || (!strcmp(event, "conversion") && rnd(2))) {
    r.has_value = 1;
    r.value = 0.1 * (1 + rnd(30));
  }
  lw_status st = lw_store_referee(s, &r, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "referee: %s\n", err);
  CHECK_INT(st, LW_OK);
  if (r.id > reports) reports = r.id;
}

static int rare_deletions; /* forgets and retention in one round of ten of their share */
static int no_reviews;     /* reports instead (report ids may differ between two backends) */
static int no_checks;      /* random_ops without the walk's checks (the caller compares) */
static void random_ops(lw_store *s, int rounds, int64_t *clock_ms) {
  char err[LW_ERRMSG_MAX];
  const char *sites[] = {"default", "other"};
  for (int r = 0; r < rounds; r++) {
    unsigned op = rnd(13);
    if (rare_deletions && op >= 7 && op <= 9 && rnd(10)) op = rnd(7);
    *clock_ms += 1000;
    if (op >= 10) {
      if (op < 12 || !reports || no_reviews) {
        random_report(s, sites[rnd(2)], *clock_ms);
      } else {
        int result;
        CHECK_INT(lw_store_review(s, sites[rnd(2)], 1 + (int64_t)rnd((unsigned)reports), (int)rnd(2), "pm", *clock_ms,
                                  &result, err, sizeof err), LW_OK);
      }
    } else if (op < 5) {
      char *j = random_batch();
      write_json(s, sites[rnd(2)], j, *clock_ms);
      free(j);
    } else if (op < 7) {
      write_group(s, sites, *clock_ms);
    } else if (op == 7) {
      char inst[33];
      install_of(rnd(N_INSTALLS), inst);
      lw_forget_item fi = {sites[rnd(2)], inst, NULL, 0, 0}, *fis[] = {&fi};
      lw_status st = lw_store_forget(s, fis, 1, err, sizeof err);
      if (st != LW_OK) fprintf(stderr, "forget: %s\n", err);
      CHECK_INT(st, LW_OK);
    } else if (op == 8) {
      char inst[33], code[17];
      install_of(rnd(N_INSTALLS), inst);
      code_of(rnd(N_CODES), code);
      lw_forget_item fi = {sites[rnd(2)], inst, code, 0, 0}, *fis[] = {&fi};
      lw_status st = lw_store_forget(s, fis, 1, err, sizeof err);
      if (st != LW_OK) fprintf(stderr, "forget a code: %s\n", err);
      CHECK_INT(st, LW_OK);
    } else {
      int64_t deleted = 0;
      lw_status st = lw_store_purge(s, *clock_ms - 1000 * (int64_t)(20 + rnd(100)) * (rare_deletions ? 5 : 1),
                                    &deleted, err, sizeof err);
      if (st != LW_OK) fprintf(stderr, "purge: %s\n", err);
      CHECK_INT(st, LW_OK);
    }
    if (r % 7 == 0 && !no_checks) {
      check_against_walk(s, "default", "random ops");
      check_against_walk(s, "other", "random ops");
    }
  }
  if (no_checks) return;
  check_against_walk(s, "default", "random ops (end)");
  check_against_walk(s, "other", "random ops (end)");
}

static void drop_store(lw_store *s) {
  lw_store_free(s);
  if (pg_url())
    pg_schema_sql("DROP SCHEMA IF EXISTS %s CASCADE");
  else
    tu_remove_db(tmp_path);
}

/* ---------------------------------------------------------------- the tests */

static void stats_from_rollups_equal_a_walk_after_random_writes_forgets_and_retention(void) {
  lw_store *s = fresh_store();
  if (!s) return;
  int64_t clock_ms = NOW;
  random_ops(s, 300, &clock_ms);
  drop_store(s);
}

/* The console's whole funnel (store schema 11) against the walk of every decision with its
 * referee outcomes, with many shares, landings, reports and reviews kept long enough to convert
 * and retain (forgets and retention rarer than above, still there). */
static void the_console_funnel_from_rollups_equals_the_walk_after_writes_reports_and_reviews(void) {
  lw_store *s = fresh_store();
  if (!s) return;
  int64_t clock_ms = NOW;
  rng_state = 11;
  reports = 0;
  rare_deletions = 1;
  random_ops(s, 300, &clock_ms);
  /* The console config names other segments (a restart with another one): the store recomputes
   * them, and the writer keeps them from there; then back. */
  set_spec(s, &spec_b);
  check_against_walk(s, "default", "another fairness spec");
  random_ops(s, 200, &clock_ms);
  set_spec(s, &spec_a);
  random_ops(s, 100, &clock_ms);
  rare_deletions = 0;
  drop_store(s);
}

/* The rollup tables as text, in key order (SQLite), for an exact comparison of two stores. */
static char *dump_rollups(const char *path, int with_batches) {
  sqlite3 *db;
  size_t cap = 1 << 20, len = 0;
  char *out = calloc(1, cap);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return out;
  const char *sql[] = {with_batches ? "SELECT site, outcomes, batches, codes FROM rollup_site WHERE outcomes OR batches ORDER BY site"
                                    : "SELECT site, outcomes, codes FROM rollup_site WHERE outcomes ORDER BY site",
                       "SELECT * FROM rollup_keys ORDER BY site, dim, key",
                       "SELECT * FROM rollup_installs ORDER BY site, dim, key, install",
                       "SELECT * FROM rollup_days ORDER BY site, day, action, segment, mode"};
  for (size_t q = 0; q < 4; q++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql[q], -1, &st, NULL) != SQLITE_OK) continue;
    while (sqlite3_step(st) == SQLITE_ROW && len + 512 < cap) {
      for (int c = 0; c < sqlite3_column_count(st); c++)
        len += (size_t)snprintf(out + len, cap - len, "%s|", (const char *)sqlite3_column_text(st, c));
      out[len++] = '\n';
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

static lw_store *sqlite_at(char *path) {
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  lw_store *s = NULL;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_store_open_sqlite(path, &s, err, sizeof err), LW_OK);
  if (s) set_spec(s, &spec_a);
  return s;
}

#define ONE_INSTALL_BATCH(id, install, code)                                                             \
  "{\"v\":1,\"batch_id\":\"" id "\",\"write_key\":\"k\",\"sent_at\":1764100000000,\"events\":["        \
  "{\"kind\":\"decision\",\"t\":1764099990000,\"install\":\"" install "\",\"decision\":\"00000000000000f1\"," \
  "\"action\":\"credit_10\",\"p\":0.5,\"mode\":\"rules\",\"reason\":\"r\",\"segment\":\"new\"},"             \
  "{\"kind\":\"share\",\"t\":1764099990001,\"install\":\"" install "\",\"decision\":\"00000000000000f1\","  \
  "\"action\":\"credit_10\",\"segment\":\"new\",\"code\":\"" code "\"}]}"

/* A: the common batches, then install I's batch, then I forgotten; B: only the common batches.
 * Their rollups (but the batch count: a forget deletes events, not the batch row) are equal.
 * C: I's batch received long ago, then the common ones, then retention past I's; D: only the
 * common ones. Their rollups are equal, batches included. */
static void a_forgotten_or_expired_event_leaves_the_rollups_as_if_never_stored(void) {
  if (pg_url()) return; /* compares the SQLite files' tables */
  char pa[] = "/tmp/lw-ru-a-XXXXXX", pb[] = "/tmp/lw-ru-b-XXXXXX", pc[] = "/tmp/lw-ru-c-XXXXXX",
       pd[] = "/tmp/lw-ru-d-XXXXXX";
  lw_store *a = sqlite_at(pa), *b = sqlite_at(pb), *c = sqlite_at(pc), *d = sqlite_at(pd);
  if (!a || !b || !c || !d) return;
  char err[LW_ERRMSG_MAX];
  const char *forgotten = ONE_INSTALL_BATCH("forgotten1", "ffffffffffffffffffffffffffffffff", "GONE0001");
  write_json(c, "default", forgotten, NOW - 100000);
  rng_state = 42;
  char *common[40];
  for (int i = 0; i < 40; i++) common[i] = random_batch();
  for (int i = 0; i < 40; i++) {
    const char *site = i % 3 ? "default" : "other";
    write_json(a, site, common[i], NOW + i);
    write_json(b, site, common[i], NOW + i);
    write_json(c, site, common[i], NOW + i);
    write_json(d, site, common[i], NOW + i);
    if (i == 20) write_json(a, "default", forgotten, NOW + i);
  }
  lw_forget_item fi = {"default", "ffffffffffffffffffffffffffffffff", NULL, 0, 0}, *fis[] = {&fi};
  CHECK_INT(lw_store_forget(a, fis, 1, err, sizeof err), LW_OK);
  CHECK_INT(fi.deleted, 2);
  int64_t deleted = 0;
  CHECK_INT(lw_store_purge(c, NOW - 1, &deleted, err, sizeof err), LW_OK);
  CHECK_INT(deleted, 2);
  char *da = dump_rollups(pa, 0), *db = dump_rollups(pb, 0), *dc = dump_rollups(pc, 1), *dd = dump_rollups(pd, 1);
  CHECK(strlen(db) > 100);
  CHECK_STR(da, db);
  CHECK_STR(dc, dd);
  /* And by code: the code's events leave the rollups, the rest stays. */
  lw_forget_item fc = {"default", "ffffffffffffffffffffffffffffffff", "GONE0001", 0, 0}, *fcs[] = {&fc};
  write_json(b, "default", forgotten, NOW + 100);
  CHECK_INT(lw_store_forget(b, fcs, 1, err, sizeof err), LW_OK);
  CHECK_INT(fc.deleted, 1);
  check_against_walk(b, "default", "forget by code");
  for (int i = 0; i < 40; i++) free(common[i]);
  free(da), free(db), free(dc), free(dd);
  lw_store_free(a), lw_store_free(b), lw_store_free(c), lw_store_free(d);
  tu_remove_db(pa), tu_remove_db(pb), tu_remove_db(pc), tu_remove_db(pd);
}

/* A retention pass in steps of a few events (lw_store_purge_step), with writes, referee reports
 * and reviews between the steps, as the writer serves its queue between them: after every step
 * the rollups and the console's funnel equal a walk of what is left (each step takes its own
 * deletions from them, in its own transaction), and the pass ends with nothing expired left.
 * SQLite also: two stores given the same writes, one purged in steps of one batch and one in a
 * single call, hold the same rollups to the byte. (PostgreSQL purges in one call: its pass is
 * one step.) */
static void a_retention_pass_in_steps_keeps_the_rollups_equal_to_a_walk_after_each_step(void) {
  const char *sites[] = {"default", "other"};
  char err[LW_ERRMSG_MAX];
  lw_store *s = fresh_store();
  if (!s) return;
  rng_state = 23;
  reports = 0;
  int64_t clock_ms = NOW;
  for (int i = 0; i < 160; i++) {
    clock_ms += 1000;
    if (i % 5 == 4) random_report(s, sites[rnd(2)], clock_ms);
    else if (i % 7 == 6) write_group(s, sites, clock_ms);
    else {
      char *j = random_batch();
      write_json(s, sites[rnd(2)], j, clock_ms);
      free(j);
    }
  }
  const int64_t cut = clock_ms - 60 * 1000; /* about the first 100 writes' batches */
  int more = 1, steps = 0;
  int64_t total = 0;
  while (more) {
    int64_t deleted = 0;
    CHECK_INT(lw_store_purge_step(s, cut, 1 + (int64_t)rnd(40), &deleted, &more, err, sizeof err), LW_OK);
    steps++;
    total += deleted;
    check_against_walk(s, "default", "a retention step");
    check_against_walk(s, "other", "a retention step");
    /* what the writer serves between two steps: fresh batches, a report, a review */
    clock_ms += 1000;
    char *j = random_batch();
    write_json(s, sites[rnd(2)], j, clock_ms);
    free(j);
    random_report(s, sites[rnd(2)], clock_ms);
    int result;
    if (reports)
      CHECK_INT(lw_store_review(s, sites[rnd(2)], 1 + (int64_t)rnd((unsigned)reports), (int)rnd(2), "pm", clock_ms,
                                &result, err, sizeof err), LW_OK);
    if (steps > 1000) break;
  }
  CHECK(total > 0);
  CHECK(steps > 3); /* in steps on both backends (PostgreSQL's since schema 6) */
  int64_t again = 0;
  CHECK_INT(lw_store_purge_step(s, cut, 1, &again, &more, err, sizeof err), LW_OK);
  CHECK_INT(again, 0);
  CHECK_INT(more, 0);
  check_against_walk(s, "default", "after a stepped pass");
  check_against_walk(s, "other", "after a stepped pass");
  drop_store(s);
  if (pg_url()) {
    /* One batch a step, and the pass ends where the last expired batch went (SQLite's below is
     * also held to the whole pass's rollups, table for table). */
    s = fresh_store();
    if (!s) return;
    rng_state = 5;
    for (int i = 0; i < 60; i++) {
      char *j = random_batch();
      write_json(s, sites[i % 2], j, NOW + 1000 * i);
      free(j);
    }
    int64_t n_all = 0;
    for (more = 1, steps = 0; more && steps < 100; steps++) {
      int64_t n = 0;
      CHECK_INT(lw_store_purge_step(s, NOW + 1000 * 40, 1, &n, &more, err, sizeof err), LW_OK);
      n_all += n;
    }
    CHECK_INT(steps, 40);
    CHECK(n_all > 0);
    lw_stats st;
    CHECK_INT(lw_store_stats(s, "default", &st, err, sizeof err), LW_OK);
    lw_stats st2;
    CHECK_INT(lw_store_stats(s, "other", &st2, err, sizeof err), LW_OK);
    CHECK_INT(st.batches + st2.batches, 20);
    lw_stats_clear(&st), lw_stats_clear(&st2);
    check_against_walk(s, "default", "after one batch a step");
    check_against_walk(s, "other", "after one batch a step");
    drop_store(s);
    return;
  }

  char pa[] = "/tmp/lw-ru-step-XXXXXX", pb[] = "/tmp/lw-ru-once-XXXXXX";
  lw_store *a = sqlite_at(pa), *b = sqlite_at(pb);
  if (!a || !b) return;
  rng_state = 5;
  for (int i = 0; i < 60; i++) {
    char *j = random_batch();
    write_json(a, sites[i % 2], j, NOW + 1000 * i);
    write_json(b, sites[i % 2], j, NOW + 1000 * i);
    free(j);
  }
  int64_t da_n = 0, db_n = 0;
  for (more = 1, steps = 0; more; steps++) {
    int64_t n = 0;
    CHECK_INT(lw_store_purge_step(a, NOW + 1000 * 40, 1, &n, &more, err, sizeof err), LW_OK);
    da_n += n;
  }
  CHECK_INT(steps, 40); /* one batch a step */
  CHECK_INT(lw_store_purge(b, NOW + 1000 * 40, &db_n, err, sizeof err), LW_OK);
  CHECK_INT(da_n, db_n);
  char *da = dump_rollups(pa, 1), *dbt = dump_rollups(pb, 1);
  CHECK(strlen(da) > 100);
  CHECK_STR(da, dbt);
  free(da), free(dbt);
  lw_store_free(a), lw_store_free(b);
  tu_remove_db(pa), tu_remove_db(pb);
}

/* A retention step costs what it deletes, not what the store holds: the same oldest batches
 * deleted from a store and from the same store with many more recent batches (of another site,
 * so they share no decision, code or token with what goes) read the same rows in full scans
 * (lw_store_sqlite_purge_scanned). Before, a step's subtraction read a covering index of every
 * event for its GROUP BYs, and its emptied funnel days were found by a scan of every day, so a
 * step at 10M events took seconds (README "Measured figures": retention_s_*). Not a timing test:
 * it counts rows. */
static void a_retention_step_reads_as_much_of_a_big_store_as_of_a_small_one(void) {
  if (pg_url()) return; /* SQLite's steps (PostgreSQL purges in one transaction) */
  char pa[] = "/tmp/lw-ru-small-XXXXXX", pb[] = "/tmp/lw-ru-big-XXXXXX", err[LW_ERRMSG_MAX];
  lw_store *a = sqlite_at(pa), *b = sqlite_at(pb);
  if (!a || !b) return;
  rng_state = 11;
  for (int i = 0; i < 60; i++) {
    char *j = random_batch();
    write_json(a, "default", j, NOW + 1000 * i);
    write_json(b, "default", j, NOW + 1000 * i);
    free(j);
  }
  for (int i = 0; i < 400; i++) {
    char *j = random_batch();
    write_json(b, "other", j, NOW + 1000 * (60 + i));
    free(j);
  }
  for (int step = 0; step < 3; step++) {
    int64_t na = 0, nb = 0;
    int more_a = 0, more_b = 0;
    CHECK_INT(lw_store_purge_step(a, NOW + 1000 * 40, 30, &na, &more_a, err, sizeof err), LW_OK);
    CHECK_INT(lw_store_purge_step(b, NOW + 1000 * 40, 30, &nb, &more_b, err, sizeof err), LW_OK);
    CHECK(na > 0);
    CHECK_INT(nb, na);
    CHECK_INT(more_a, 1); /* steps within the pass: its last one also takes the leftovers */
    CHECK_INT(more_b, 1);
    int64_t sa = lw_store_sqlite_purge_scanned(a), sb = lw_store_sqlite_purge_scanned(b);
    CHECK(sa >= 0);
    if (sb != sa) fprintf(stderr, "step %d read %lld rows in scans of the big store, %lld of the small one\n", step,
                          (long long)sb, (long long)sa);
    CHECK_INT(sb, sa);
  }
  check_against_walk(b, "default", "a step of a big store");
  check_against_walk(b, "other", "a step of a big store");
  lw_store_free(a), lw_store_free(b);
  tu_remove_db(pa), tu_remove_db(pb);
}

/* A write costs what it writes, not what the store holds: one more batch shaped like
 * tests/cases/ingest/valid-batch.json (a decision, its copy with a code and no token, as every
 * request of the ingest benchmark repeats them) costs the writer as many SQLite steps after 600
 * of them as after 6 (lw_store_sqlite_write_work). Before, the funnel's recompute of the
 * decision found its first copy by sorting all of them, so the writer slowed down the longer
 * the benchmark ran (46 us a batch after 3,200 batches, 208 us after 192,000). Not a timing
 * test: it counts steps. */
static void a_write_costs_as_much_after_many_repeats_of_its_decision_as_after_few(void) {
  if (pg_url()) return; /* SQLite's step counts */
  char pa[] = "/tmp/lw-ru-few-XXXXXX", pb[] = "/tmp/lw-ru-many-XXXXXX";
  lw_store *a = sqlite_at(pa), *b = sqlite_at(pb);
  if (!a || !b) return;
  char path[512], *text = NULL, json[8192];
  snprintf(path, sizeof path, "%s/tests/cases/ingest/valid-batch.json", LW_SOURCE_DIR);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f) return;
  size_t len = 0;
  text = calloc(1, 8192);
  len = fread(text, 1, 8191, f);
  fclose(f);
  CHECK(len > 0 && strstr(text, "\"b-7f3c9a1e2d4b5c6a\"") != NULL);
  const char *id = strstr(text, "b-7f3c9a1e2d4b5c6a");
  for (int i = 0; i <= 600; i++) {
    /* the same batch with a fresh batch_id of the same length */
    snprintf(json, sizeof json, "%.*sb-%016d%s", (int)(id - text), text, i, id + strlen("b-7f3c9a1e2d4b5c6a"));
    if (i < 6 || i == 600) write_json(a, "default", json, NOW + i);
    write_json(b, "default", json, NOW + i);
  }
  int64_t sa = 0, sb = 0, ra = -1, rb = -1;
  CHECK_INT(lw_store_sqlite_write_work(a, &sa, &ra), 0);
  CHECK_INT(lw_store_sqlite_write_work(b, &sb, &rb), 0);
  CHECK(sa > 0);
  CHECK_INT(ra, 0);
  CHECK_INT(rb, 0);
  if (sb != sa) fprintf(stderr, "the 601st repeat of a decision took %lld steps, the 7th %lld\n", (long long)sb, (long long)sa);
  CHECK_INT(sb, sa);
  walk_without_segments = 1; /* valid-batch.json's decisions carry no fairness segment */
  check_against_walk(b, "default", "a decision repeated 601 times");
  walk_without_segments = 0;
  free(text);
  lw_store_free(a), lw_store_free(b);
  tu_remove_db(pa), tu_remove_db(pb);
}

/* The writer's statements stay prepared: random batches (decisions, shares with tokens and codes,
 * landings, from several installs) written one by one make SQLite prepare none of them again.
 * Before, the funnel's landing counts bound the landing kind as a parameter; the planner had
 * looked at its value (to rule out the partial indexes on kind), so every run re-planned,
 * 40-80 us per recomputed decision. */
static void the_writers_statements_are_never_prepared_again(void) {
  if (pg_url()) return; /* SQLite's statement counters */
  char pa[] = "/tmp/lw-ru-prep-XXXXXX";
  lw_store *a = sqlite_at(pa);
  if (!a) return;
  rng_state = 5;
  int64_t total = 0;
  for (int i = 0; i < 80; i++) {
    char *j = random_batch();
    write_json(a, "default", j, NOW + 1000 * i);
    free(j);
    int64_t steps = 0, reprepares = -1;
    CHECK_INT(lw_store_sqlite_write_work(a, &steps, &reprepares), 0);
    if (i > 0) total += reprepares;
  }
  if (total) fprintf(stderr, "79 writes prepared their statements again %lld times\n", (long long)total);
  CHECK_INT(total, 0);
  lw_store_free(a);
  tu_remove_db(pa);
}

/* Schema 8 is schema 11 without the rollup tables and the two indexes of the shared decisions
 * (step 9), the approvals table (step 10) and the funnel's tables (step 11): a store written now, those dropped and its version
 * set back, is what main's build wrote (PostgreSQL: schema 1 of 3, without the rollups, the
 * deliveries and the approvals). Opened again it is migrated, and answers exactly
 * what the walk answered before. */
static void a_schema_8_store_is_migrated_and_answers_as_before(void) {
  lw_store *s = fresh_store();
  if (!s) return;
  int64_t clock_ms = NOW;
  rng_state = 7;
  random_ops(s, 120, &clock_ms);
  lw_stats before[2];
  char err[LW_ERRMSG_MAX];
  const lw_stats_bounds bounds = {3, 2};
  CHECK_INT(lw_store_stats_walk(s, "default", &bounds, &before[0], err, sizeof err), LW_OK);
  CHECK_INT(lw_store_stats_walk(s, "other", NULL, &before[1], err, sizeof err), LW_OK);
  lw_store_free(s);
  s = NULL;
  if (pg_url()) {
    pg_schema_sql("SET search_path = %s; DROP TABLE rollup_site, rollup_keys, rollup_installs, rollup_days;"
                  " DROP INDEX events_shares, events_decisions; DROP TABLE deliveries, approvals, console_actions;"
                  " DROP TABLE rollup_dec, rollup_funnel; DROP AGGREGATE total(double precision);"
                  " DROP FUNCTION lw_fair(text, bytea); DROP TABLE rollup_fairness, rollup_fair_segments;"
                  " UPDATE lw_schema SET version = 1; -- %s");
    CHECK_INT(lw_store_open_pg(pg_case_url, &s, err, sizeof err), LW_OK);
  } else {
    sqlite3 *db;
    CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "DROP TABLE rollup_site; DROP TABLE rollup_keys; DROP TABLE rollup_installs;"
                               "DROP TABLE rollup_days; DROP INDEX events_shares; DROP INDEX events_decisions;"
                               "DROP TABLE rollup_dec; DROP TABLE rollup_funnel; DROP TABLE approvals; DROP TABLE console_actions;"
                               "PRAGMA user_version = 8;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  }
  if (!s) {
    lw_stats_clear(&before[0]), lw_stats_clear(&before[1]);
    return;
  }
  set_spec(s, &spec_a); /* as the server does at start */
  lw_stats after[2];
  CHECK_INT(lw_store_stats_bounded(s, "default", &bounds, &after[0], err, sizeof err), LW_OK);
  CHECK_INT(lw_store_stats(s, "other", &after[1], err, sizeof err), LW_OK);
  for (int i = 0; i < 2; i++) {
    CHECK_INT(after[i].outcomes, before[i].outcomes);
    CHECK_INT(after[i].batches, before[i].batches);
    CHECK_INT(after[i].codes_below_min, before[i].codes_below_min);
    CHECK_INT(after[i].codes_left_out, before[i].codes_left_out);
    CHECK(rows_equal("variants", after[i].variants, after[i].n_variants, before[i].variants, before[i].n_variants));
    CHECK(rows_equal("segments", after[i].segments, after[i].n_segments, before[i].segments, before[i].n_segments));
    CHECK(rows_equal("codes", after[i].codes, after[i].n_codes, before[i].codes, before[i].n_codes));
    lw_stats_clear(&after[i]);
    lw_stats_clear(&before[i]);
  }
  random_ops(s, 60, &clock_ms); /* and the writer keeps them from there */
  drop_store(s);
}

/* PostgreSQL: two replicas (two stores on one database) at once, one writing batches, the other
 * batches and referee reports, sharing codes and tokens: a recompute of one replica's decisions
 * depends on rows the other is committing, and a share with a smaller id may commit after one
 * with a larger. The funnel is still the walk's (the per-site lock, store_pg.c "the console's
 * funnel"). */
typedef struct {
  char code[17], token[33];
  uint8_t referee[LW_REFEREE_HASH_LEN];
  const char *event;
  int has_token, has_value;
  double value;
} planned_report;

typedef struct {
  lw_store *s;
  char **jsons;
  planned_report *reports; /* NULL: batches only; else one after each batch */
  int n;
  int64_t t;
} replica_job;

static void *replica_writes(void *arg) {
  replica_job *j = arg;
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < j->n; i++) {
    const char *site = i % 3 ? "default" : "other";
    write_json(j->s, site, j->jsons[i], j->t + i);
    if (!j->reports) continue;
    planned_report *p = &j->reports[i];
    lw_integrity_rules rules;
    memset(&rules, 0, sizeof rules);
    lw_referee_report r = {.site = site, .code = p->code, .referee = p->referee, .event = p->event,
                           .token = p->has_token ? p->token : NULL, .at = j->t + i, .received_ms = j->t + i,
                           .rules = &rules, .has_value = p->has_value, .value = p->value};
    lw_status st = lw_store_referee(j->s, &r, err, sizeof err);
    if (st != LW_OK) fprintf(stderr, "referee: %s\n", err);
    CHECK_INT(st, LW_OK);
  }
  return NULL;
}

static void two_replicas_at_once_keep_the_funnel_a_walk_gives(void) {
  if (!pg_url()) return;
  lw_store *a = fresh_store(), *b = NULL;
  if (!a) return;
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_store_open_pg(pg_case_url, &b, err, sizeof err), LW_OK);
  if (!b) {
    drop_store(a);
    return;
  }
  enum { PER_REPLICA = 80 };
  static const char *const events[] = {"conversion", "conversion", "conversion", "retained_30"};
  rng_state = 31;
  char *jsons[2][PER_REPLICA];
  static planned_report plan[PER_REPLICA];
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < PER_REPLICA; i++) jsons[r][i] = random_batch();
  for (int i = 0; i < PER_REPLICA; i++) {
    planned_report *p = &plan[i];
    code_of(rnd(N_CODES), p->code);
    token_of(rnd(N_TOKENS), p->token);
    memset(p->referee, 0x40 + (int)rnd(6), sizeof p->referee);
    p->event = events[rnd(4)];
    p->has_token = !strcmp(p->event, "conversion") && rnd(2);
    p->has_value = !strcmp(p->event, "conversion") && rnd(2);
    p->value = 0.1 * (1 + rnd(30));
  }
  replica_job jobs[2] = {{a, jsons[0], NULL, PER_REPLICA, NOW}, {b, jsons[1], plan, PER_REPLICA, NOW}};
  pthread_t th[2];
  for (int r = 0; r < 2; r++) CHECK_INT(pthread_create(&th[r], NULL, replica_writes, &jobs[r]), 0);
  for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
  check_against_walk(a, "default", "two replicas");
  check_against_walk(b, "other", "two replicas");
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < PER_REPLICA; i++) free(jsons[r][i]);
  /* A replica starting with another console config (another fairness spec) while the other
   * writes: the spec change waits for the writes' funnel locks and they for it, so every
   * decision's segments are the new spec's either way. */
  for (int i = 0; i < PER_REPLICA; i++) jsons[0][i] = random_batch();
  replica_job more = {a, jsons[0], NULL, PER_REPLICA, NOW + 10000};
  pthread_t writer;
  CHECK_INT(pthread_create(&writer, NULL, replica_writes, &more), 0);
  usleep(20000);
  lw_status st = lw_store_set_fairness(b, &spec_b, err, sizeof err);
  if (st != LW_OK) fprintf(stderr, "set_fairness: %s\n", err);
  CHECK_INT(st, LW_OK);
  pthread_join(writer, NULL);
  current_spec = &spec_b;
  check_against_walk(a, "default", "a spec change beside a writing replica");
  check_against_walk(b, "other", "a spec change beside a writing replica");
  for (int i = 0; i < PER_REPLICA; i++) free(jsons[0][i]);
  lw_store_free(b);
  drop_store(a);
}

/* The funnel of both sites, as the console reads it, into days[2] and values[2]. */
static void read_funnel(lw_store *s, lw_funnel_day **days, size_t *n_days, lw_funnel_value **values, size_t *n_values) {
  const char *sites[] = {"default", "other"};
  char err[LW_ERRMSG_MAX];
  for (int i = 0; i < 2; i++) {
    lw_status st = lw_store_funnel_outcomes(s, sites[i], &days[i], &n_days[i], &values[i], &n_values[i], err, sizeof err);
    if (st != LW_OK) fprintf(stderr, "funnel: %s\n", err);
    CHECK_INT(st, LW_OK);
  }
}

/* A store of the schema before the funnel (SQLite 10; PostgreSQL 3, main's before this step):
 * one written now with the funnel's tables dropped (and, on PostgreSQL, total()) and its version
 * set back. Opened again it is migrated: the backfill from the stored events and reports gives
 * the funnel the writer had kept, row for row and to the last bit, which equals the walk; and
 * the writer keeps it from there. */
static void a_store_from_before_the_funnel_is_migrated_and_its_funnel_equals_the_walk(void) {
  lw_store *s = fresh_store();
  if (!s) return;
  int64_t clock_ms = NOW;
  rng_state = 23;
  reports = 0;
  rare_deletions = 1;
  random_ops(s, 250, &clock_ms);
  lw_funnel_day *days[2], *days2[2];
  lw_funnel_value *values[2], *values2[2];
  size_t n_days[2], n_values[2], n_days2[2], n_values2[2];
  read_funnel(s, days, n_days, values, n_values);
  CHECK(n_values[0] + n_values[1] > 0); /* converted decisions to fill */
  lw_store_free(s);
  s = NULL;
  char err[LW_ERRMSG_MAX];
  if (pg_url()) {
    pg_back_to_5();
    pg_schema_sql("SET search_path = %s; DROP TABLE rollup_dec, rollup_funnel; DROP AGGREGATE total(double precision);"
                  " DROP TABLE console_actions; UPDATE lw_schema SET version = 3; -- %s");
    CHECK_INT(lw_store_open_pg_read(pg_case_url, &s, err, sizeof err), LW_ERR_VERSION); /* schema 3 indeed */
    CHECK_INT(lw_store_open_pg(pg_case_url, &s, err, sizeof err), LW_OK);
  } else {
    sqlite3 *db;
    CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "DROP TABLE rollup_dec; DROP TABLE rollup_funnel; DROP TABLE console_actions;"
                               " PRAGMA user_version = 10;", NULL, NULL,
                           NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  }
  if (s) {
    set_spec(s, &spec_a); /* as the server does at start: a store migrated to 12 keeps no spec */
    read_funnel(s, days2, n_days2, values2, n_values2);
    for (int i = 0; i < 2; i++) {
      CHECK_INT(n_days2[i], n_days[i]);
      CHECK_INT(n_values2[i], n_values[i]);
      if (n_days2[i] == n_days[i]) CHECK(!n_days[i] || !memcmp(days2[i], days[i], n_days[i] * sizeof *days[i]));
      if (n_values2[i] == n_values[i])
        CHECK(!n_values[i] || !memcmp(values2[i], values[i], n_values[i] * sizeof *values[i]));
      free(days2[i]), free(values2[i]);
    }
    lw_console_action *acts = NULL;
    size_t n_acts = 9;
    CHECK_INT(lw_store_console_actions(s, "default", 10, &acts, &n_acts, err, sizeof err), LW_OK); /* and step 5 / 13 */
    CHECK_INT(n_acts, 0);
    free(acts);
    check_against_walk(s, "default", "migrated to the funnel");
    check_against_walk(s, "other", "migrated to the funnel");
    random_ops(s, 60, &clock_ms); /* and the writer keeps it from there */
    drop_store(s);
  }
  rare_deletions = 0;
  for (int i = 0; i < 2; i++) free(days[i]), free(values[i]);
}

/* A fresh store (fresh_store: this case's file or schema) filled by 120 random operations from
 * seed and closed, for a migration case to take back and open again; 0 when it could not open. */
static int filled_and_closed(uint64_t seed, int64_t *clock_ms) {
  lw_store *s = fresh_store();
  if (!s) return 0;
  rng_state = seed;
  reports = 0;
  random_ops(s, 120, clock_ms);
  lw_store_free(s);
  return 1;
}

/* A store of the schema before the console actions (SQLite 12, the channels'; PostgreSQL 4, the funnel's): one
 * written now with console_actions dropped and its version set back. Opened again it is migrated
 * (the table added, empty), and the funnel the writer kept is untouched: it still equals the walk,
 * and the writer (reviews included, which now record their actions) keeps it from there. */
static void a_store_from_before_the_console_actions_is_migrated_and_keeps_its_funnel(void) {
  int64_t clock_ms = NOW;
  if (!filled_and_closed(29, &clock_ms)) return;
  lw_store *s = NULL;
  char err[LW_ERRMSG_MAX];
  if (pg_url()) {
    pg_back_to_5();
    pg_schema_sql("SET search_path = %s; DROP TABLE console_actions; UPDATE lw_schema SET version = 4; -- %s");
    CHECK_INT(lw_store_open_pg_read(pg_case_url, &s, err, sizeof err), LW_ERR_VERSION); /* schema 4 indeed */
    CHECK_INT(lw_store_open_pg(pg_case_url, &s, err, sizeof err), LW_OK);
  } else {
    sqlite3 *db;
    CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "DROP TABLE console_actions; PRAGMA user_version = 12;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  }
  if (!s) return;
  set_spec(s, &spec_a); /* as the server does at start (PostgreSQL 4 to 6 keeps no spec before it) */
  lw_console_action *acts = NULL;
  size_t n_acts = 9;
  CHECK_INT(lw_store_console_actions(s, "default", 10, &acts, &n_acts, err, sizeof err), LW_OK);
  CHECK_INT(n_acts, 0);
  free(acts);
  check_against_walk(s, "default", "migrated to the console actions");
  check_against_walk(s, "other", "migrated to the console actions");
  random_ops(s, 60, &clock_ms);
  drop_store(s);
}

/* Store schema 13 (PostgreSQL 6): events_shares without the event id, so the writer's lookup of
 * a decision's first untokened share sorted every share of it. Opened by this build, it is
 * migrated to the index with the id (14; PostgreSQL 7), which this checks in the catalogue, and
 * the rollups answer as the walk does, before and after more writes. */
static void a_schema_13_store_gets_the_shares_index_with_ids_and_answers_as_before(void) {
  int64_t clock_ms = NOW;
  if (!filled_and_closed(31, &clock_ms)) return;
  lw_store *s = NULL;
  char err[LW_ERRMSG_MAX], def[512] = "";
  if (pg_url()) {
    pg_schema_sql("SET search_path = %s; DROP INDEX events_shares; CREATE INDEX events_shares ON events(site, decision)"
                  " WHERE kind IN ($$share$$, $$copy$$); UPDATE lw_schema SET version = 6; -- %s");
    CHECK_INT(lw_store_open_pg_read(pg_case_url, &s, err, sizeof err), LW_ERR_VERSION); /* schema 6 indeed */
    CHECK_INT(lw_store_open_pg(pg_case_url, &s, err, sizeof err), LW_OK);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "psql '%s' -X -q -tA -c \"SELECT indexdef FROM pg_indexes WHERE schemaname = '%s' AND indexname = "
             "'events_shares'\"",
             pg_url(), pg_schema);
    FILE *p = popen(cmd, "r");
    if (p) {
      if (!fgets(def, sizeof def, p)) def[0] = '\0';
      pclose(p);
    }
    CHECK(strstr(def, "(site, decision, token, id)") != NULL);
  } else {
    sqlite3 *db;
    CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "DROP INDEX events_shares; CREATE INDEX events_shares ON events(site, decision, token, "
                           "code, channel) WHERE kind IN ('share','copy'); PRAGMA user_version = 13;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
    sqlite3_stmt *st;
    CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'events_shares'", -1, &st, NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW) snprintf(def, sizeof def, "%s", (const char *)sqlite3_column_text(st, 0));
      sqlite3_finalize(st);
    }
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    CHECK(strstr(def, "(site, decision, token, id, code, channel)") != NULL);
    CHECK_INT(version, LW_STORE_SCHEMA_VERSION);
  }
  if (!s) return;
  printf("  events_shares after the migration: %s", def);
  if (!strchr(def, '\n')) printf("\n");
  set_spec(s, &spec_a);
  check_against_walk(s, "default", "migrated from 13 to the shares index with ids");
  check_against_walk(s, "other", "migrated from 13 to the shares index with ids");
  random_ops(s, 60, &clock_ms);
  check_against_walk(s, "default", "written after the migration from 13");
  drop_store(s);
}

/* A store main (09e9606, schema 8) wrote (tests/ingest/fixtures/schema-v8.sql): migrated on open,
 * its rollups answer what the walk (main's own stats code) answers, and the writer keeps them. */
static void a_store_written_by_main_is_migrated_and_answers_as_main_did(void) {
  if (pg_url()) return;
  char path[512], err[LW_ERRMSG_MAX];
  snprintf(path, sizeof path, "%s/tests/ingest/fixtures/schema-v8.sql", LW_SOURCE_DIR);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f) return;
  static char sql[1 << 16];
  size_t n = fread(sql, 1, sizeof sql - 1, f);
  fclose(f);
  sql[n] = '\0';
  snprintf(tmp_path, sizeof tmp_path, "/tmp/lw-ru-v8-XXXXXX");
  close(mkstemp(tmp_path));
  unlink(tmp_path);
  sqlite3 *db;
  CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
  CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  lw_store *s = NULL;
  CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  if (!s) return;
  set_spec(s, &spec_a);
  lw_stats st;
  CHECK_INT(lw_store_stats(s, "default", &st, err, sizeof err), LW_OK);
  CHECK_INT(st.outcomes, 40);
  CHECK_INT(st.batches, 8);
  CHECK(st.n_variants > 0 && st.n_codes > 0);
  lw_stats_clear(&st);
  check_against_walk(s, "default", "migrated from main's store");
  int64_t clock_ms = NOW;
  rng_state = 99;
  random_ops(s, 40, &clock_ms);
  drop_store(s);
}

/* Schema 11 (PostgreSQL 5) is schema 12 (PostgreSQL 6) without the channels and fairness
 * segments in the funnel's keys (rollup_days, rollup_dec, rollup_funnel) and without
 * rollup_fairness: a store written now, its tables brought back to 11's (5's) shape (summed over
 * the new keys) and its version set back, is what the build before left. Opened again it is migrated: its funnel answers as before,
 * its channels and (once the server gives it the spec) its fairness segments are the walk's,
 * and the writer keeps them. */
static void a_schema_11_store_is_migrated_with_channels_and_fairness_segments(void) {
  lw_store *s = fresh_store();
  if (!s) return;
  int64_t clock_ms = NOW;
  rng_state = 1234;
  reports = 0;
  random_ops(s, 150, &clock_ms);
  char err[LW_ERRMSG_MAX];
  lw_funnel_day *before = NULL, *after = NULL;
  lw_funnel_value *vb = NULL, *va = NULL;
  size_t nb = 0, na = 0, nvb = 0, nva = 0;
  CHECK_INT(lw_store_funnel_outcomes(s, "default", &before, &nb, &vb, &nvb, err, sizeof err), LW_OK);
  lw_store_free(s);
  s = NULL;
  if (pg_url()) {
    pg_back_to_5();
    CHECK_INT(lw_store_open_pg_read(pg_case_url, &s, err, sizeof err), LW_ERR_VERSION); /* schema 5 indeed */
    CHECK_INT(lw_store_open_pg(pg_case_url, &s, err, sizeof err), LW_OK);
  } else {
  sqlite3 *db;
  CHECK_INT(sqlite3_open(tmp_path, &db), SQLITE_OK);
  char *msg = NULL;
  static char sql[8192];
  snprintf(sql, sizeof sql,
           "ALTER TABLE rollup_days RENAME TO d12; ALTER TABLE rollup_dec RENAME TO dec12;"
           "ALTER TABLE rollup_funnel RENAME TO f12; DROP INDEX rollup_dec_converted; DROP TABLE rollup_fairness;"
           "CREATE TABLE rollup_days(site TEXT NOT NULL, day INTEGER NOT NULL, action TEXT NOT NULL,"
           "  segment TEXT NOT NULL, mode TEXT NOT NULL, decisions INTEGER NOT NULL, prompts INTEGER NOT NULL,"
           "  PRIMARY KEY(site, day, action, segment, mode)) WITHOUT ROWID;"
           "INSERT INTO rollup_days SELECT site, day, action, segment, mode, sum(decisions), sum(prompts) FROM d12"
           "  GROUP BY 1, 2, 3, 4, 5;"
           "%s"
           "INSERT INTO rollup_dec SELECT site, decision, id, day, action, segment, mode, shares, landed, converted, kept,"
           "  landings, conversions, retained, value, revenue FROM dec12;"
           "INSERT INTO rollup_funnel SELECT site, day, action, segment, mode, sum(n), sum(shares), sum(landed),"
           "  sum(converted), sum(kept), sum(landings), sum(conversions), sum(retained) FROM f12 GROUP BY 1, 2, 3, 4, 5;"
           "DROP TABLE d12; DROP TABLE dec12; DROP TABLE f12; DROP TABLE console_actions; PRAGMA user_version = 11;",
           lw_sq_funnel_tables);
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) fprintf(stderr, "back to schema 11: %s\n", msg);
  CHECK_INT(rc, SQLITE_OK);
  sqlite3_free(msg);
  sqlite3_close(db);
  CHECK_INT(lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  }
  if (!s) return;
  CHECK_INT(lw_store_funnel_outcomes(s, "default", &after, &na, &va, &nva, err, sizeof err), LW_OK);
  CHECK_INT(na, nb);
  CHECK_INT(nva, nvb);
  for (size_t i = 0; i < na && i < nb; i++) CHECK(!memcmp(&after[i], &before[i], sizeof after[i]));
  for (size_t i = 0; i < nva && i < nvb; i++) {
    CHECK(va[i].conversions == vb[i].conversions && !memcmp(&va[i].value, &vb[i].value, sizeof va[i].value));
    CHECK_STR(va[i].channel, vb[i].channel);
  }
  free(before), free(after), free(vb), free(va);
  /* Migrated without a spec: the segments come with the server's (lw_store_set_fairness). */
  lw_fairness_counts counts[LW_FAIRNESS_VALUES];
  CHECK_INT(lw_store_fairness(s, "default", &spec_a, counts, err, sizeof err), LW_ERR_INVALID);
  set_spec(s, &spec_a);
  check_against_walk(s, "default", "migrated from schema 11");
  check_against_walk(s, "other", "migrated from schema 11");
  /* The spec survives a restart, and the writer keeps it. */
  lw_store_free(s);
  s = NULL;
  CHECK_INT(pg_url() ? lw_store_open_pg(pg_case_url, &s, err, sizeof err)
                     : lw_store_open_sqlite(tmp_path, &s, err, sizeof err), LW_OK);
  if (!s) return;
  CHECK_INT(lw_store_fairness(s, "default", &spec_a, counts, err, sizeof err), LW_OK);
  random_ops(s, 60, &clock_ms);
  drop_store(s);
}

/* The console's pages (the report with its channels table, the fairness audit, and their CSV)
 * answer alike on SQLite and on PostgreSQL, both from their rollups: the same operations
 * on both stores, the same answers byte for byte. Only with LW_TEST_PG. */
static void the_console_answers_alike_on_sqlite_and_postgresql(void) {
  if (!pg_url()) return;
  char product[] = "/tmp/lw-ru-product-XXXXXX";
  int fd = mkstemp(product);
  const char *json = "{\"attributes\":{\"plan\":[\"free\",\"pro\",\"team\"]},\"fairness\":{\"attribute\":\"plan\"},"
                     "\"variants\":[{\"id\":\"credit_10\",\"cost\":10},{\"id\":\"credit_20\",\"cost\":20.5}]}";
  CHECK((size_t)write(fd, json, strlen(json)) == strlen(json));
  close(fd);
  lw_ingest_config cfg;
  lw_ingest_config_init(&cfg);
  cfg.console_config = product;
  lw_console *console = NULL;
  uint8_t key[32] = {1};
  char err[LW_ERRMSG_MAX];
  CHECK_INT(lw_console_create(&cfg, key, &console, err, sizeof err), LW_OK);
  lw_fairness_spec spec;
  lw_console_fairness_spec(product, &spec);
  CHECK_INT(spec.n, 3);
  char sqlite_path[] = "/tmp/lw-ru-alike-XXXXXX";
  lw_store *sq = sqlite_at(sqlite_path), *pg = fresh_store();
  if (!sq || !pg || !console) return;
  CHECK_INT(lw_store_set_fairness(sq, &spec, err, sizeof err), LW_OK);
  lw_store *stores[2] = {sq, pg};
  no_reviews = no_checks = 1;
  for (int round = 0; round < 4; round++) {
    int64_t clocks[2];
    uint64_t seed = rng_state;
    for (int b = 0; b < 2; b++) {
      rng_state = seed;
      clocks[b] = NOW + round * 1000000;
      reports = 0;
      random_ops(stores[b], 120, &clocks[b]);
    }
    static const char *const tables[] = {NULL, "channels", "variants", "weeks"};
    for (int site = 0; site < 2; site++) {
      const char *id = site ? "other" : "default";
      for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        char *a = NULL, *b = NULL;
        CHECK_INT(lw_console_report(console, sq, id, tables[t], NOW, &a, err, sizeof err), 200);
        CHECK_INT(lw_console_report(console, pg, id, tables[t], NOW, &b, err, sizeof err), 200);
        if (a && b && strcmp(a, b)) fprintf(stderr, "report %s (%s):\nsqlite %s\npg     %s\n", tables[t] ? tables[t] : "json", id, a, b);
        CHECK(a && b && !strcmp(a, b));
        if (t == 0 && a) CHECK(strstr(a, "\"channels\":[{\"key\"") != NULL);
        free(a), free(b);
      }
      for (int csv = 0; csv < 2; csv++) {
        char *a = NULL, *b = NULL;
        CHECK_INT(lw_console_fairness(&cfg, sq, id, csv, &a, err, sizeof err), 200);
        CHECK_INT(lw_console_fairness(&cfg, pg, id, csv, &b, err, sizeof err), 200);
        if (a && b && strcmp(a, b)) fprintf(stderr, "fairness (%s):\nsqlite %s\npg     %s\n", id, a, b);
        CHECK(a && b && !strcmp(a, b));
        free(a), free(b);
      }
    }
  }
  no_reviews = no_checks = 0;
  lw_store_free(sq);
  tu_remove_db(sqlite_path);
  drop_store(pg);
  lw_console_free(console);
  cfg.console_config = NULL;
  lw_ingest_config_clear(&cfg);
  unlink(product);
}

int main(void) {
  stats_from_rollups_equal_a_walk_after_random_writes_forgets_and_retention();
  the_console_funnel_from_rollups_equals_the_walk_after_writes_reports_and_reviews();
  a_forgotten_or_expired_event_leaves_the_rollups_as_if_never_stored();
  a_retention_pass_in_steps_keeps_the_rollups_equal_to_a_walk_after_each_step();
  a_retention_step_reads_as_much_of_a_big_store_as_of_a_small_one();
  a_write_costs_as_much_after_many_repeats_of_its_decision_as_after_few();
  the_writers_statements_are_never_prepared_again();
  a_schema_8_store_is_migrated_and_answers_as_before();
  a_store_from_before_the_funnel_is_migrated_and_its_funnel_equals_the_walk();
  a_store_from_before_the_console_actions_is_migrated_and_keeps_its_funnel();
  a_schema_13_store_gets_the_shares_index_with_ids_and_answers_as_before();
  two_replicas_at_once_keep_the_funnel_a_walk_gives();
  a_store_written_by_main_is_migrated_and_answers_as_main_did();
  a_schema_11_store_is_migrated_with_channels_and_fairness_segments();
  the_console_answers_alike_on_sqlite_and_postgresql();
  if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}
