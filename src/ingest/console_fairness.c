/* console_fairness.c: the console's fairness page (README "The console"). The segments are the
 * values of the product config's fairness attribute ("plan^free", ...: the hashed features the
 * runtime puts in every decision's x); the counts come from the writer's rollups (SQLite schema
 * 12, PostgreSQL 6: lw_store_fairness, kept for the spec the server gave the store at start), else
 * from a walk of the store's decision reader (rollups kept for another spec), both by
 * lw_audit_segments_of; the rates, ratios and flags from loopwise/audit.h, the trainer's own audit arithmetic
 * (loopwise-eval --audit), so the page flags what the trainer flags. Each rate carries its 95%
 * Wilson interval. A conversion here is a prompt that brought at least one referred customer,
 * so every rate is a proportion (k <= n) an interval can describe. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "loopwise/audit.h"
#include "loopwise/model.h"


static const char *const k_measures[3] = {"exposure", "share", "conversion"};

/* k and n of measure m of row r (the proportion lw_audit_finish computed). */
static void measure(const lw_audit_row *r, int m, int64_t *k, int64_t *n) {
  *k = (int64_t)(m == 0 ? r->prompts : m == 1 ? r->shares : r->conversions);
  *n = (int64_t)(m == 0 ? r->decisions : r->prompts);
}

static double ratio_of(const lw_audit_row *r, int m) {
  return m == 0 ? r->exposure_ratio : m == 1 ? r->share_ratio : r->conversion_ratio;
}

/* Whether measure m is what flags row r (the audit's rule, per measure, for the page). */
static int flags_on(const lw_audit_row *rows, int n, const lw_audit_row *r, int m) {
  int any_conv = 0;
  for (int i = 0; i < n; i++) any_conv |= rows[i].conversions > 0;
  return r->decisions > 0 && ratio_of(r, m) < LW_AUDIT_FLAG_RATIO && (m < 2 || any_conv);
}

static char *fair_csv(const lw_audit_row *rows, int n) {
  size_t cap = 512 + (size_t)n * 512, len = 0;
  char *out = malloc(cap);
  if (!out) return NULL;
  len += (size_t)snprintf(out + len, cap - len, "key,decisions,prompts,shares,conversions");
  for (int m = 0; m < 3; m++)
    len += (size_t)snprintf(out + len, cap - len, ",%s_rate,%s_lo,%s_hi,%s_ratio", k_measures[m], k_measures[m],
                            k_measures[m], k_measures[m]);
  len += (size_t)snprintf(out + len, cap - len, ",flagged\r\n");
  for (int i = 0; i < n; i++) {
    const lw_audit_row *r = &rows[i];
    len += (size_t)snprintf(out + len, cap - len, "%s,%llu,%llu,%llu,%llu", r->name, (unsigned long long)r->decisions,
                            (unsigned long long)r->prompts, (unsigned long long)r->shares,
                            (unsigned long long)r->conversions);
    for (int m = 0; m < 3; m++) {
      int64_t k, nn;
      double lo, hi;
      measure(r, m, &k, &nn);
      lw_wilson(k, nn, &lo, &hi);
      if (nn)
        len += (size_t)snprintf(out + len, cap - len, ",%.6f,%.6f,%.6f,%.6f", (double)k / (double)nn, lo, hi,
                                ratio_of(r, m));
      else
        len += (size_t)snprintf(out + len, cap - len, ",,,,");
    }
    len += (size_t)snprintf(out + len, cap - len, ",%d\r\n", r->flagged);
  }
  return out;
}

static char *fair_json(const char *site, const char *attr, const lw_audit_row *rows, int n) {
  cJSON *o = cJSON_CreateObject(), *arr = NULL;
  int ok = o && cJSON_AddStringToObject(o, "site", site) &&
           (attr ? cJSON_AddStringToObject(o, "attribute", attr) != NULL : cJSON_AddNullToObject(o, "attribute") != NULL) &&
           cJSON_AddNumberToObject(o, "flag_ratio", LW_AUDIT_FLAG_RATIO) &&
           cJSON_AddStringToObject(o, "method",
                                   "per value of the fairness attribute: exposure (prompts / decision points), "
                                   "share rate (shares / prompts) and conversion rate (prompts that brought a "
                                   "referred customer / prompts), each with its 95% Wilson score interval and its "
                                   "ratio to the best value; flagged below 0.8 (the four-fifths rule), as "
                                   "loopwise-eval --audit") &&
           (arr = cJSON_AddArrayToObject(o, "rows")) != NULL;
  for (int i = 0; ok && i < n; i++) {
    const lw_audit_row *r = &rows[i];
    cJSON *row = cJSON_CreateObject(), *flags = NULL;
    ok = row && cJSON_AddItemToArray(arr, row) && cJSON_AddStringToObject(row, "key", r->name) &&
         cJSON_AddStringToObject(row, "value", strchr(r->name, '^') ? strchr(r->name, '^') + 1 : r->name) &&
         cJSON_AddNumberToObject(row, "decisions", (double)r->decisions) &&
         cJSON_AddNumberToObject(row, "prompts", (double)r->prompts) &&
         cJSON_AddNumberToObject(row, "shares", (double)r->shares) &&
         cJSON_AddNumberToObject(row, "conversions", (double)r->conversions) &&
         cJSON_AddBoolToObject(row, "flagged", r->flagged) && (flags = cJSON_AddArrayToObject(row, "flags")) != NULL;
    for (int m = 0; ok && m < 3; m++) {
      int64_t k, nn;
      double lo, hi;
      measure(r, m, &k, &nn);
      lw_wilson(k, nn, &lo, &hi);
      cJSON *x = cJSON_AddObjectToObject(row, k_measures[m]);
      ok = x && cJSON_AddNumberToObject(x, "k", (double)k) && cJSON_AddNumberToObject(x, "n", (double)nn) &&
           (nn ? cJSON_AddNumberToObject(x, "rate", (double)k / (double)nn) : cJSON_AddNullToObject(x, "rate")) &&
           cJSON_AddNumberToObject(x, "lo", lo) && cJSON_AddNumberToObject(x, "hi", hi) &&
           cJSON_AddNumberToObject(x, "ratio", ratio_of(r, m));
      if (ok && flags_on(rows, n, r, m)) ok = cJSON_AddItemToArray(flags, cJSON_CreateString(k_measures[m]));
    }
  }
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return text;
}

void lw_console_fairness_spec(const char *console_config, lw_fairness_spec *spec) {
  memset(spec, 0, sizeof *spec);
  cJSON *product = lw_console_product_config(console_config);
  const cJSON *fa = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(product, "fairness"), "attribute");
  if (cJSON_IsString(fa)) {
    snprintf(spec->attribute, sizeof spec->attribute, "%s", fa->valuestring);
    const cJSON *values =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(product, "attributes"), fa->valuestring);
    const cJSON *v;
    cJSON_ArrayForEach(v, values) {
      if (spec->n == LW_FAIRNESS_VALUES || !cJSON_IsString(v)) continue;
      snprintf(spec->values[spec->n++], sizeof spec->values[0], "%s", v->valuestring);
    }
  }
  cJSON_Delete(product);
}

/* The counts of every segment by a walk of every decision of the site (a backend without the
 * rollups, or rollups kept for another spec). */
static lw_status walk_counts(lw_store *store, const char *site, const lw_audit_row *rows, int n,
                             lw_fairness_counts *out, char *err, size_t errlen) {
  char names[LW_FAIRNESS_VALUES][LW_SEGMENT_NAME_LEN + 1];
  uint32_t hashes[LW_FAIRNESS_VALUES];
  for (int s = 0; s < n; s++) {
    memcpy(names[s], rows[s].name, sizeof names[s]);
    hashes[s] = lw_fnv1a(names[s]);
    memset(&out[s], 0, sizeof out[s]);
  }
  lw_store_range range = {site, 0, 0};
  lw_store_cursor *cur = NULL;
  lw_store_decision *d = malloc(sizeof *d);
  if (!d) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  lw_status st = lw_store_decisions(store, &range, &cur, err, errlen);
  int rc = 0;
  while (st == LW_OK && (rc = lw_store_next(cur, d, err, errlen)) == 1) {
    uint32_t in = lw_audit_segments_of(d->segment[0] ? d->segment : NULL, d->x, d->n_x, names, hashes, n);
    int prompt = lw_action_is_prompt(d->action);
    for (int s = 0; s < n; s++) {
      if (!(in >> s & 1)) continue;
      out[s].decisions++;
      out[s].prompts += prompt;
      out[s].shares += prompt && d->shared;
      out[s].conversions += prompt && d->shared && d->outcomes.conversions > 0; /* the funnel's */
    }
  }
  if (st == LW_OK && rc < 0) st = LW_ERR_IO;
  free(d);
  lw_store_cursor_free(cur);
  return st;
}

unsigned lw_console_fairness(const lw_ingest_config *cfg, lw_store *store, const char *site, int csv,
                             char **out, char *err, size_t errlen) {
  *out = NULL;
  lw_fairness_spec spec;
  lw_console_fairness_spec(cfg->console_config, &spec);
  lw_audit_row rows[LW_FAIRNESS_VALUES];
  lw_fairness_counts counts[LW_FAIRNESS_VALUES];
  int n = spec.n;
  for (int s = 0; s < n; s++) {
    memset(&rows[s], 0, sizeof rows[s]);
    lw_audit_segment_name(spec.attribute, spec.values[s], rows[s].name);
  }
  /* The writer's rollups (SQLite schema 12, PostgreSQL 6, kept for this spec); else the walk. */
  lw_status st = n ? lw_store_fairness(store, site, &spec, counts, err, errlen) : LW_OK;
  if (st == LW_ERR_INVALID) st = walk_counts(store, site, rows, n, counts, err, errlen);
  if (st != LW_OK) return 503;
  for (int s = 0; s < n; s++) {
    rows[s].decisions = (uint64_t)counts[s].decisions;
    rows[s].prompts = (uint64_t)counts[s].prompts;
    rows[s].shares = (uint64_t)counts[s].shares;
    rows[s].conversions = (uint64_t)counts[s].conversions;
  }
  lw_audit_finish(rows, n);
  *out = csv ? fair_csv(rows, n) : fair_json(site, spec.attribute[0] ? spec.attribute : NULL, rows, n);
  if (*out) return 200;
  snprintf(err, errlen, "out of memory");
  return 503;
}
