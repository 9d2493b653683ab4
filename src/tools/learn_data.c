/* learn_data.c: reading logged decisions from Vowpal Wabbit text or the ingest store.
 *
 * Readers stream: one line (or one cb_adf example, or one SQLite row) at a time, so memory
 * stays bounded by the longest line. Every refusal names the line and the reason, because
 * the person who exported the file needs to find and fix that line. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loopwise/learn.h"
#include "loopwise/store.h"

struct lw_reader {
  lw_source_opts o;
  lw_source_kind kind;
  FILE *f;
  int is_stdin;
  char *line;
  size_t line_cap;
  uint64_t line_no;
  uint64_t bytes, size;
  uint64_t skipped;
  int failed;
  /* Binary cache of a text source: the first full pass writes every parsed record to an
   * anonymous temporary file, later passes read that instead of parsing text again. */
  FILE *cache;
  int cache_state; /* 0 off, 1 writing, 2 complete, 3 reading in cache order, 4 reading in key order */
  uint64_t cache_size, cache_pos;
  /* The order of later passes (lw_reader_order): cache offsets sorted by a seeded hash of
   * each record's key, so the passes do not depend on the order the records arrived in. */
  uint64_t *order; /* pairs (sort key, cache offset) */
  size_t n_order, order_at;
  uint64_t first_skipped;
  uint64_t tiny_values; /* non-zero feature values below the fixed point's resolution */
  /* the ingest store, through its read interface */
  lw_store *store;
  lw_store_cursor *cur;
  lw_store_decision *row;
  uint64_t rows_total, rows_seen;
  lw_label_kind labels;
  uint64_t open_windows;
  uint64_t yielded; /* records yielded by the store's first cursor */
  double cost[LW_LEARN_MAX_ACTIONS]; /* the incentive per converted referee, by action */
};

/* ---- small helpers ------------------------------------------------------------------ */

int lw_parse_decimal(const char *s, size_t n, double *out) {
  size_t i = 0, digits = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) i++;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
  }
  if (!digits) return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t ed = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, ed++;
    if (!ed) return 0;
  }
  if (i != n) return 0;
  /* Fast path (Clinger): at most 15 significant digits and a power of ten up to 22 are both
   * exact doubles, so one IEEE multiply or divide gives the correctly rounded value, the
   * same as strtod. Everything else goes to strtod. */
  {
    static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t k = 0;
    int neg = 0, sig = 0, frac = 0, exp10 = 0, in_frac = 0, ok = 1;
    uint64_t m = 0;
    if (s[k] == '+' || s[k] == '-') neg = s[k++] == '-';
    for (; k < n && ok; k++) {
      char ch = s[k];
      if (ch == '.') {
        in_frac = 1;
      } else if (ch >= '0' && ch <= '9') {
        if (m == 0 && ch == '0') {
          if (in_frac) frac++;
          continue;
        }
        if (++sig > 15) ok = 0;
        m = m * 10 + (uint64_t)(ch - '0');
        if (in_frac) frac++;
      } else {
        break; /* exponent */
      }
    }
    if (ok && k < n) {
      int eneg = 0, ev = 0;
      k++;
      if (s[k] == '+' || s[k] == '-') eneg = s[k++] == '-';
      for (; k < n && ev < 1000; k++) ev = ev * 10 + (s[k] - '0');
      exp10 = eneg ? -ev : ev;
    }
    int e = exp10 - frac;
    if (ok && e >= -22 && e <= 22) {
      double v = (double)m;
      v = e < 0 ? v / p10[-e] : v * p10[e];
      *out = neg ? -v : v;
      return 1;
    }
  }
  char tmp[128];
  if (n >= sizeof tmp) return 0;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  errno = 0;
  double v = strtod(tmp, NULL);
  if (!(v == v) || v - v != 0.0) return 0; /* overflowed to infinity */
  *out = v;
  return 1;
}

void lw_actions_from_config(const lw_config *cfg, int *n_actions,
                            char actions[LW_LEARN_MAX_ACTIONS][LW_NAME_LEN + 1]) {
  int n = 0;
  for (int v = 0; v < cfg->n_variants && n < LW_MODEL_MAX_ACTIONS - 1; v++)
    snprintf(actions[n++], LW_NAME_LEN + 1, "%s", cfg->variants[v].id);
  snprintf(actions[n++], LW_NAME_LEN + 1, "%s", LW_ACTION_NOT_NOW);
  *n_actions = n;
}

static int reader_fail(lw_reader *r, char *err, size_t errlen, const char *what, uint64_t at,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int reader_fail(lw_reader *r, char *err, size_t errlen, const char *what, uint64_t at,
                       const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s %llu: %s", what, (unsigned long long)at, msg);
  r->failed = 1;
  return -1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* 64-bit FNV-1a, for record keys. */
static uint64_t fnv64(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}
#define FNV64_BASIS 14695981039346656037ULL

/* ---- Vowpal Wabbit text --------------------------------------------------------------- */

/* Parse the features of the text after a '|' (namespaces and all) into rec. A feature in a
 * named namespace ("|user age:3") is hashed as "user^age", so namespaces stay apart as in
 * Vowpal Wabbit; the unnamed namespace hashes the bare name, as the runtime does. A
 * namespace's weight ("|user:2") multiplies its values. cross, when not NULL, is an action
 * id: a cb_adf action line's features are the context crossed with that action
 * ("credit_10^price"), so they reach the model as features of the record. */
static int vw_features(lw_reader *r, const char *s, size_t n, const char *cross, lw_logged *rec, char *err,
                       size_t errlen) {
  size_t i = 0, ns_len = 0;
  const char *ns = NULL;
  double ns_w = 1.0;
  while (i < n) {
    if (s[i] == '|') { /* a namespace: its name (and any :weight) sits right after the bar */
      size_t b = ++i;
      while (i < n && !is_space(s[i]) && s[i] != '|') i++;
      ns = s + b;
      ns_len = i - b;
      ns_w = 1.0;
      const char *c = memchr(ns, ':', ns_len);
      if (c) {
        size_t wl = (size_t)(ns + ns_len - c - 1);
        if (!lw_parse_decimal(c + 1, wl, &ns_w))
          return reader_fail(r, err, errlen, "line", r->line_no, "namespace '%.*s': weight is not a decimal number",
                             (int)(ns_len > 40 ? 40 : ns_len), ns);
        ns_len = (size_t)(c - ns);
      }
      continue;
    }
    if (is_space(s[i])) {
      i++;
      continue;
    }
    size_t b = i;
    while (i < n && !is_space(s[i]) && s[i] != '|') i++;
    const char *tok = s + b;
    size_t tl = i - b, colon = tl;
    for (size_t k = 0; k < tl; k++)
      if (tok[k] == ':') {
        colon = k;
        break;
      }
    double v = 1.0;
    if (colon == 0)
      return reader_fail(r, err, errlen, "line", r->line_no, "feature '%.*s' has no name", (int)(tl > 40 ? 40 : tl), tok);
    if (colon < tl && !lw_parse_decimal(tok + colon + 1, tl - colon - 1, &v))
      return reader_fail(r, err, errlen, "line", r->line_no, "feature '%.*s': value is not a decimal number",
                         (int)(tl > 40 ? 40 : tl), tok);
    v *= ns_w;
    if (v > 8e6 || v < -8e6)
      return reader_fail(r, err, errlen, "line", r->line_no, "feature '%.*s': value out of range (|v| <= 8e6)",
                         (int)(tl > 40 ? 40 : tl), tok);
    uint32_t h;
    if (!lw_feature_hash(tok, colon, &h))
      return reader_fail(r, err, errlen, "line", r->line_no, "feature '%.*s': a #hash must be an integer below 2^32",
                         (int)(tl > 40 ? 40 : tl), tok);
    if (tok[0] != '#' && (ns_len || cross)) { /* "cross^ns^name" */
      h = 2166136261u;
      if (cross) {
        h = lw_fnv1a_bytes(h, cross, strlen(cross));
        h = lw_fnv1a_bytes(h, "^", 1);
      }
      if (ns_len) {
        h = lw_fnv1a_bytes(h, ns, ns_len);
        h = lw_fnv1a_bytes(h, "^", 1);
      }
      h = lw_fnv1a_bytes(h, tok, colon);
    } else if (cross) { /* a #hash on an action line: crossed with the action's hash */
      h = (h ^ lw_fnv1a(cross)) * 16777619u;
    }
    if (rec->n >= LW_LEARN_MAX_FEATURES)
      return reader_fail(r, err, errlen, "line", r->line_no, "more than %d features", LW_LEARN_MAX_FEATURES);
    int32_t q = lw_fx(v);
    if (q == 0 && v != 0.0) r->tiny_values++;
    rec->x[rec->n].hash = h;
    rec->x[rec->n].q = q;
    rec->n++;
  }
  return 1;
}

/* Parse "a:cost:prob" into its parts; adf ignores the action number. */
static int vw_label(lw_reader *r, const char *tok, size_t tl, int adf, int *action, double *cost, double *p,
                    char *err, size_t errlen) {
  const char *c1 = memchr(tok, ':', tl);
  const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(tok + tl - c1 - 1)) : NULL;
  if (!c1 || !c2)
    return reader_fail(r, err, errlen, "line", r->line_no,
                       "expected a label action:cost:probability before '|', got '%.*s'", (int)(tl > 40 ? 40 : tl), tok);
  double a;
  if (!lw_parse_decimal(tok, (size_t)(c1 - tok), &a) || a != (double)(long)a || a < 0)
    return reader_fail(r, err, errlen, "line", r->line_no, "action '%.*s' is not a non-negative integer",
                       (int)(c1 - tok > 20 ? 20 : c1 - tok), tok);
  if (!lw_parse_decimal(c1 + 1, (size_t)(c2 - c1 - 1), cost))
    return reader_fail(r, err, errlen, "line", r->line_no, "cost '%.*s' is not a decimal number",
                       (int)(c2 - c1 - 1 > 30 ? 30 : c2 - c1 - 1), c1 + 1);
  size_t pl = (size_t)(tok + tl - c2 - 1);
  if (!lw_parse_decimal(c2 + 1, pl, p))
    return reader_fail(r, err, errlen, "line", r->line_no, "probability '%.*s' is not a decimal number",
                       (int)(pl > 30 ? 30 : pl), c2 + 1);
  if (!(*p > 0.0 && *p <= 1.0))
    return reader_fail(r, err, errlen, "line", r->line_no, "probability must be in (0, 1], got %.17g", *p);
  if (!adf && (a < 1 || a > r->o.n_actions))
    return reader_fail(r, err, errlen, "line", r->line_no, "action %ld out of range 1-%d", (long)a, r->o.n_actions);
  *action = adf ? -1 : (int)a - 1;
  return 1;
}

static int vw_getline(lw_reader *r) {
  ssize_t n = getline(&r->line, &r->line_cap, r->f);
  if (n < 0) return -1;
  r->line_no++;
  r->bytes += (uint64_t)n;
  while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r')) r->line[--n] = '\0';
  return (int)(n > 0x7fffffff ? 0x7fffffff : n);
}

static int blank(const char *s) {
  for (; *s; s++)
    if (!is_space(*s)) return 0;
  return 1;
}

static int vw_next(lw_reader *r, lw_logged *rec, char *err, size_t errlen) {
  for (;;) {
    int n = vw_getline(r);
    if (n < 0) return 0;
    if (blank(r->line)) continue;
    memset(rec, 0, offsetof(lw_logged, x));
    rec->channel = -1;
    rec->line = r->line_no;
    const char *bar = strchr(r->line, '|');
    if (!bar) return reader_fail(r, err, errlen, "line", r->line_no, "no '|' before the features");
    /* label and an optional 'tag before the bar */
    const char *s = r->line;
    int have_label = 0;
    while (s < bar) {
      while (s < bar && is_space(*s)) s++;
      if (s >= bar) break;
      const char *b = s;
      while (s < bar && !is_space(*s)) s++;
      if (*b == '\'') continue; /* VW tag */
      if (have_label)
        return reader_fail(r, err, errlen, "line", r->line_no, "unexpected '%.*s' after the label", (int)(s - b > 30 ? 30 : s - b), b);
      double cost, p;
      int a;
      if (vw_label(r, b, (size_t)(s - b), 0, &a, &cost, &p, err, errlen) < 0) return -1;
      rec->action = a;
      rec->p = p;
      rec->reward = -cost;
      have_label = 1;
    }
    if (!have_label)
      return reader_fail(r, err, errlen, "line", r->line_no, "no action:cost:probability label (unlabelled lines cannot be learned from)");
    if (vw_features(r, bar, strlen(bar), NULL, rec, err, errlen) < 0) return -1;
    /* no id in a VW line: its key is a hash of its content and position */
    rec->order_key = fnv64(FNV64_BASIS, r->line, strlen(r->line));
    rec->key = fnv64(rec->order_key, &r->line_no, sizeof r->line_no);
    return 1;
  }
}

static int vw_adf_next(lw_reader *r, lw_logged *rec, char *err, size_t errlen) {
  int n_lines = 0, labelled = 0, in_example = 0;
  memset(rec, 0, offsetof(lw_logged, x));
  rec->channel = -1;
  uint64_t key = FNV64_BASIS, content = FNV64_BASIS;
  for (;;) {
    int n = vw_getline(r);
    int end = n < 0 || blank(r->line);
    if (end) {
      if (!in_example) {
        if (n < 0) return 0;
        continue;
      }
      uint64_t at = n < 0 ? r->line_no : r->line_no;
      if (n_lines != r->o.n_actions)
        return reader_fail(r, err, errlen, "line", at, "example has %d action lines, expected %d (one per action, in order)",
                           n_lines, r->o.n_actions);
      if (labelled != 1)
        return reader_fail(r, err, errlen, "line", at, "example has %d labelled action lines, expected exactly 1", labelled);
      rec->key = key;
      rec->order_key = content;
      return 1;
    }
    if (!in_example) key = fnv64(key, &r->line_no, sizeof r->line_no); /* the example's position */
    key = fnv64(key, r->line, strlen(r->line) + 1);
    content = fnv64(content, r->line, strlen(r->line) + 1);
    in_example = 1;
    const char *s = r->line;
    while (is_space(*s)) s++;
    if (strncmp(s, "shared", 6) == 0 && (is_space(s[6]) || s[6] == '|')) {
      if (n_lines) return reader_fail(r, err, errlen, "line", r->line_no, "a shared line must come before the action lines");
      const char *bar = strchr(s, '|');
      if (!bar) return reader_fail(r, err, errlen, "line", r->line_no, "no '|' before the features");
      if (vw_features(r, bar, strlen(bar), NULL, rec, err, errlen) < 0) return -1;
      continue;
    }
    const char *bar = strchr(s, '|');
    if (!bar) return reader_fail(r, err, errlen, "line", r->line_no, "no '|' before the features");
    const char *b = s;
    while (b < bar && is_space(*b)) b++;
    const char *e = b;
    while (e < bar && !is_space(*e)) e++;
    if (e > b) {
      double cost, p;
      int a;
      if (vw_label(r, b, (size_t)(e - b), 1, &a, &cost, &p, err, errlen) < 0) return -1;
      if (labelled++) return reader_fail(r, err, errlen, "line", r->line_no, "a second labelled action line in one example");
      rec->action = n_lines;
      rec->p = p;
      rec->reward = -cost;
      rec->line = r->line_no;
    }
    if (n_lines >= r->o.n_actions)
      return reader_fail(r, err, errlen, "line", r->line_no, "more action lines than the %d actions", r->o.n_actions);
    if (vw_features(r, bar, strlen(bar), r->o.actions[n_lines], rec, err, errlen) < 0) return -1;
    n_lines++;
  }
}

/* ---- the ingest server's store ------------------------------------------------------- */

static lw_store_range store_range(const lw_reader *r) {
  lw_store_range range = {r->o.site ? r->o.site : "default", r->o.from_ms, r->o.to_ms};
  return range;
}

static int store_start(lw_reader *r, char *err, size_t errlen) {
  lw_store_cursor_free(r->cur);
  r->cur = NULL;
  r->rows_seen = 0;
  r->open_windows = 0;
  lw_store_range range = store_range(r);
  if (r->labels == LW_LABELS_SHARES || r->labels == LW_LABELS_FALLBACK_OPEN)
    return lw_store_decisions(r->store, &range, &r->cur, err, errlen) == LW_OK ? 0 : -1;
  return lw_store_decisions_within(r->store, &range, (int)r->o.reward->reward_attribution_days, &r->cur, err,
                                   errlen) == LW_OK ? 0 : -1;
}

const char *lw_label_kind_name(lw_label_kind k) {
  switch (k) {
    case LW_LABELS_RETAINED: return "retained referee value";
    case LW_LABELS_FALLBACK: return "fallback: shares x value_per_share (no referee outcomes reported)";
    case LW_LABELS_FALLBACK_OPEN: return "fallback: shares x value_per_share (no attribution window has closed yet)";
    default: return "shares";
  }
}

double lw_retained_value(const lw_config *cfg, double cost, int64_t conversions, int64_t retained_30,
                         int64_t retained_90, int64_t churned, double revenue, int64_t code_decisions) {
  double v = (double)conversions * (cfg->reward_value_per_conversion - cost) +
             (double)retained_30 * cfg->reward_value_per_retained +
             (double)retained_90 * cfg->reward_value_per_retained_90 - (double)churned * cfg->reward_churn_cost +
             revenue * cfg->reward_revenue_weight;
  return code_decisions > 1 ? v / (double)code_decisions : v;
}

/* Whether the site reported any referee outcome in the range: if not, the labels fall back
 * to shares × value_per_share (a pass over the decisions before the first). */
static lw_status store_any_referee(lw_reader *r, int *any, char *err, size_t errlen) {
  *any = 0;
  lw_store_range range = store_range(r);
  lw_store_cursor *c = NULL;
  lw_status st = lw_store_decisions(r->store, &range, &c, err, errlen);
  int got = 0;
  while (st == LW_OK && !*any && (got = lw_store_next(c, r->row, err, errlen)) == 1) {
    const lw_referee_outcomes *o = &r->row->outcomes;
    *any = o->conversions || o->retained_30 || o->retained_90 || o->churned || o->revenue != 0;
  }
  lw_store_cursor_free(c);
  return st != LW_OK ? st : got < 0 ? LW_ERR_IO : LW_OK;
}

/* Decisions with a choice among the reader's actions; "none", holdout decisions and actions
 * the list does not have are skipped (counted). */
static int store_next(lw_reader *r, lw_logged *rec, char *err, size_t errlen) {
  lw_store_decision *d = r->row;
  for (;;) {
    int got = lw_store_next(r->cur, d, err, errlen);
    if (got == 0 && r->yielded == 0 && r->open_windows > 0 &&
        (r->labels == LW_LABELS_RETAINED || r->labels == LW_LABELS_FALLBACK)) {
      /* Every decision is still inside its attribution window (a first retrain sooner than
       * reward.attribution_days): rather than nothing to learn from, the shares fallback for
       * all of them, which needs no window (a share is known within the session), said so by
       * the label kind. Once one window closes, the retained labels are used again. */
      r->labels = LW_LABELS_FALLBACK_OPEN;
      r->skipped = 0;
      if (store_start(r, err, errlen) < 0) {
        r->failed = 1;
        return -1;
      }
      continue;
    }
    if (got <= 0) {
      r->failed = got < 0;
      return got;
    }
    r->rows_seen++;
    int a = -1;
    for (int i = 0; i < r->o.n_actions; i++)
      if (strcmp(d->action, r->o.actions[i]) == 0) a = i;
    if (a < 0 || lw_mode_parse(d->mode) == LW_MODE_HOLDOUT) {
      r->skipped++;
      continue;
    }
    if (r->labels != LW_LABELS_SHARES && r->labels != LW_LABELS_FALLBACK_OPEN &&
        !lw_store_window_closed(d, (int)r->o.reward->reward_attribution_days, r->o.now_ms)) {
      r->open_windows++; /* its label could still change: left out, counted */
      continue;
    }
    memset(rec, 0, offsetof(lw_logged, x));
    rec->line = d->id;
    /* the decision's own id, not the row id: the same whatever order batches arrived in */
    rec->key = d->decision[0] ? fnv64(FNV64_BASIS, d->decision, strlen(d->decision)) : fnv64(FNV64_BASIS, &d->id, sizeof d->id);
    rec->order_key = rec->key;
    rec->t = d->t;
    rec->action = a;
    rec->channel = d->shared && d->channel[0] ? lw_channel_parse(d->channel) : -1;
    rec->p = d->has_p ? d->p : 0.0;
    const lw_referee_outcomes *oc = &d->outcomes;
    if (r->labels == LW_LABELS_RETAINED)
      rec->reward = lw_retained_value(r->o.reward, r->cost[a], oc->conversions, oc->retained_30, oc->retained_90,
                                      oc->churned, oc->revenue, oc->join == LW_JOIN_CODE ? oc->code_decisions : 1);
    else if (r->labels == LW_LABELS_FALLBACK || r->labels == LW_LABELS_FALLBACK_OPEN)
      rec->reward = d->shared ? r->o.reward->reward_value_per_share : 0.0;
    else
      rec->reward = d->shared ? 1.0 : 0.0;
    if (!(rec->p > 0 && rec->p <= 1))
      return reader_fail(r, err, errlen, "row", d->id, "probability must be in (0, 1], got %.17g", rec->p);
    _Static_assert(LW_X_PAIRS <= LW_LEARN_MAX_FEATURES, "a stored x fits a logged record");
    rec->n = d->n_x;
    memcpy(rec->x, d->x, (size_t)d->n_x * sizeof d->x[0]);
    r->yielded++;
    return 1;
  }
}

/* ---- the reader ------------------------------------------------------------------------- */

static lw_source_kind sniff(FILE *f) {
  char head[16] = {0};
  size_t n = fread(head, 1, sizeof head, f);
  rewind(f);
  if (n == 16 && memcmp(head, "SQLite format 3", 16) == 0) return LW_SRC_SQLITE;
  /* cb_adf: the first non-blank line starts with "shared", or an example has several lines */
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  lw_source_kind k = LW_SRC_VW;
  int lines_in_example = 0, unlabeled = 0;
  for (int seen = 0; seen < 64 && (len = getline(&line, &cap, f)) >= 0; seen++) {
    if (blank(line)) {
      if (lines_in_example > 1 && unlabeled) {
        k = LW_SRC_VW_ADF;
        break;
      }
      lines_in_example = 0;
      continue;
    }
    char *s = line;
    while (is_space(*s)) s++;
    if (strncmp(s, "shared", 6) == 0) {
      k = LW_SRC_VW_ADF;
      break;
    }
    if (*s == '|') unlabeled = 1;
    lines_in_example++;
  }
  free(line);
  rewind(f);
  return k;
}

lw_status lw_reader_open(const lw_source_opts *o, lw_reader **out, char *err, size_t errlen) {
  *out = NULL;
  if (o->n_actions < 1 || o->n_actions > LW_LEARN_MAX_ACTIONS) {
    snprintf(err, errlen, "an action list of 1-%d actions is needed (--config or --actions)", LW_LEARN_MAX_ACTIONS);
    return LW_ERR_INVALID;
  }
  lw_reader *r = calloc(1, sizeof *r);
  if (!r) return LW_ERR_NOMEM;
  r->o = *o;
  r->kind = o->kind;
  if (lw_store_is_pg(o->path)) {
    r->kind = LW_SRC_SQLITE; /* a store, read through the store interface whatever its backend */
  } else if (strcmp(o->path, "-") == 0) {
    r->f = stdin;
    r->is_stdin = 1;
    if (r->kind == LW_SRC_AUTO) r->kind = LW_SRC_VW;
    if (r->kind == LW_SRC_SQLITE) {
      snprintf(err, errlen, "a SQLite store cannot be read from stdin");
      free(r);
      return LW_ERR_INVALID;
    }
  } else {
    r->f = fopen(o->path, "rb");
    if (!r->f) {
      snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
      free(r);
      return LW_ERR_IO;
    }
    struct stat sb;
    if (fstat(fileno(r->f), &sb) == 0) r->size = (uint64_t)sb.st_size;
    if (r->kind == LW_SRC_AUTO) r->kind = sniff(r->f);
    setvbuf(r->f, NULL, _IOFBF, 1 << 20);
  }
  if ((r->cache = tmpfile())) {
    r->cache_state = 1;
    setvbuf(r->cache, NULL, _IOFBF, 1 << 20);
  }
  if (r->kind == LW_SRC_SQLITE) {
    if (r->f) fclose(r->f);
    r->f = NULL;
    lw_status st = lw_store_open_read(o->path, &r->store, err, errlen);
    if (st == LW_OK && !(r->row = malloc(sizeof *r->row))) {
      snprintf(err, errlen, "out of memory");
      st = LW_ERR_NOMEM;
    }
    lw_store_range range = store_range(r);
    if (st == LW_OK) st = lw_store_count_decisions(r->store, &range, &r->rows_total, err, errlen);
    if (st == LW_OK && o->reward) {
      int any = 0;
      st = store_any_referee(r, &any, err, errlen);
      r->labels = any ? LW_LABELS_RETAINED : LW_LABELS_FALLBACK;
      for (int a = 0; a < o->n_actions; a++) {
        int v = lw_config_variant_index(o->reward, o->actions[a]);
        r->cost[a] = v >= 0 ? o->reward->variants[v].cost : 0.0;
      }
    }
    if (st == LW_OK && store_start(r, err, errlen) < 0) st = LW_ERR_IO;
    if (st != LW_OK) {
      lw_reader_close(r);
      return st;
    }
  }
  *out = r;
  return LW_OK;
}

#define CACHE_HEAD offsetof(lw_logged, x)
/* The seeded order's entries hold a record's cache offset and, above it, its length in bytes. */
#define ORDER_LEN_SHIFT 48
#define ORDER_OFF_MASK ((1ULL << ORDER_LEN_SHIFT) - 1)
_Static_assert(sizeof(lw_logged) < (1u << (64 - ORDER_LEN_SHIFT)), "a record's length fits above its offset");

static int cache_read(lw_reader *r, lw_logged *rec) {
  if (fread(rec, CACHE_HEAD, 1, r->cache) != 1) return 0;
  if (rec->n < 0 || rec->n > LW_LEARN_MAX_FEATURES || fread(rec->x, sizeof rec->x[0], (size_t)rec->n, r->cache) != (size_t)rec->n)
    return 0;
  r->cache_pos += CACHE_HEAD + sizeof rec->x[0] * (size_t)rec->n;
  return 1;
}

static void cache_write(lw_reader *r, const lw_logged *rec) {
  if (fwrite(rec, CACHE_HEAD, 1, r->cache) != 1 ||
      fwrite(rec->x, sizeof rec->x[0], (size_t)rec->n, r->cache) != (size_t)rec->n) {
    fclose(r->cache); /* disk full or the like: carry on parsing text every pass */
    r->cache = NULL;
    r->cache_state = 0;
  }
}

int lw_reader_next(lw_reader *r, lw_logged *rec, char *err, size_t errlen) {
  if (r->failed) return -1;
  if (r->cache_state == 3) return cache_read(r, rec);
  if (r->cache_state == 4) {
    if (r->order_at >= r->n_order) return 0;
    uint64_t at = r->order[2 * r->order_at++ + 1], off = at & ORDER_OFF_MASK;
    size_t len = (size_t)(at >> ORDER_LEN_SHIFT);
    /* complete and flushed: one read by offset, past stdio's buffer, of exactly the record */
    ssize_t got = pread(fileno(r->cache), rec, len, (off_t)off);
    if (got != (ssize_t)len || len < CACHE_HEAD || rec->n < 0 || rec->n > LW_LEARN_MAX_FEATURES ||
        len != CACHE_HEAD + sizeof rec->x[0] * (size_t)rec->n) {
      snprintf(err, errlen, "reading the temporary record cache failed");
      r->failed = 1;
      return -1;
    }
    return 1;
  }
  int got;
  switch (r->kind) {
    case LW_SRC_SQLITE: got = store_next(r, rec, err, errlen); break;
    case LW_SRC_VW_ADF: got = vw_adf_next(r, rec, err, errlen); break;
    default: got = vw_next(r, rec, err, errlen); break;
  }
  if (r->cache_state == 1) {
    if (got == 1) cache_write(r, rec);
    else if (got == 0 && fflush(r->cache) == 0) {
      r->cache_state = 2;
      r->cache_size = (uint64_t)ftell(r->cache);
    }
  }
  return got;
}

static uint64_t mix64(uint64_t z) { /* splitmix64's finalizer */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static int cmp_pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
  return x[1] < y[1] ? -1 : x[1] > y[1];
}

lw_status lw_reader_order(lw_reader *r, uint64_t seed, char *err, size_t errlen) {
  if (r->cache_state == 4) {
    r->order_at = 0;
    return LW_OK;
  }
  if (r->cache_state < 2) {
    snprintf(err, errlen, "ordering the records needs one full pass and room for the temporary record cache");
    return LW_ERR_INVALID;
  }
  if (r->cache_state == 2) r->first_skipped = r->skipped;
  r->skipped = r->first_skipped;
  rewind(r->cache);
  r->cache_state = 3;
  r->cache_pos = 0;
  size_t cap = 0;
  lw_logged *rec = malloc(sizeof *rec);
  if (!rec) return LW_ERR_NOMEM;
  for (;;) {
    uint64_t off = r->cache_pos;
    if (!cache_read(r, rec)) break;
    if (r->n_order == cap) {
      size_t nc = cap ? 2 * cap : 4096;
      uint64_t *p = realloc(r->order, nc * 2 * sizeof *p);
      if (!p) {
        free(rec);
        snprintf(err, errlen, "out of memory");
        return LW_ERR_NOMEM;
      }
      r->order = p;
      cap = nc;
    }
    if (off > ORDER_OFF_MASK) {
      free(rec);
      snprintf(err, errlen, "the temporary record cache is too large to order (over 2^48 bytes)");
      return LW_ERR_INVALID;
    }
    r->order[2 * r->n_order] = mix64(rec->order_key ^ mix64(seed));
    r->order[2 * r->n_order + 1] = off | ((uint64_t)(r->cache_pos - off) << ORDER_LEN_SHIFT);
    r->n_order++;
  }
  free(rec);
  /* ties are records with the same content (or id): interchangeable (same length too), so their
   * cache order (the second element) does not change what a pass computes */
  if (r->n_order) qsort(r->order, r->n_order, 2 * sizeof *r->order, cmp_pair);
  r->cache_state = 4;
  r->order_at = 0;
  return LW_OK;
}

uint64_t lw_reader_tiny_values(const lw_reader *r) { return r->tiny_values; }

uint64_t lw_record_hash(const lw_logged *r) { return mix64(r->key ^ 0x686f6c646f7574ULL); }

int lw_record_fold(const lw_logged *r) { return (int)(mix64(r->key ^ 0x666f6c64ULL) & 1); }

int lw_split_holdout(const lw_split *s, const lw_logged *r) {
  if (s->mod <= 0) return 0;
  uint64_t h = lw_record_hash(r);
  if (s->by_time) return r->t > s->t_split || (r->t == s->t_split && h >= s->h_split);
  return h % (uint64_t)s->mod == (uint64_t)(s->mod - 1);
}

lw_status lw_reader_rewind(lw_reader *r, char *err, size_t errlen) {
  r->failed = 0;
  if (r->cache_state >= 2) { /* later passes read the cache: the first pass's count stands */
    if (r->cache_state == 2) r->first_skipped = r->skipped;
    r->skipped = r->first_skipped;
  } else {
    r->skipped = 0;
  }
  if (r->cache_state == 4) {
    r->order_at = 0;
    return LW_OK;
  }
  if (r->kind == LW_SRC_SQLITE && r->cache_state < 2) {
    if (r->cache_state == 1) rewind(r->cache);
    return store_start(r, err, errlen) < 0 ? LW_ERR_IO : LW_OK;
  }
  if (r->cache_state >= 2) {
    rewind(r->cache);
    r->cache_state = 3;
    r->cache_pos = 0;
    return LW_OK;
  }
  if (r->is_stdin) {
    snprintf(err, errlen, "stdin can be read only once: pass a file for several passes");
    return LW_ERR_INVALID;
  }
  if (r->cache_state == 1) rewind(r->cache); /* an unfinished first pass: write it again */
  rewind(r->f);
  r->line_no = 0;
  r->bytes = 0;
  return LW_OK;
}

double lw_reader_progress(const lw_reader *r) {
  if (r->cache_state == 4) return r->n_order ? (double)r->order_at / (double)r->n_order : 0.0;
  if (r->cache_state == 3) return r->cache_size ? (double)r->cache_pos / (double)r->cache_size : 0.0;
  if (r->kind == LW_SRC_SQLITE) return r->rows_total ? (double)r->rows_seen / (double)r->rows_total : 0.0;
  return r->size ? (double)r->bytes / (double)r->size : 0.0;
}

uint64_t lw_reader_skipped(const lw_reader *r) { return r->skipped; }
uint64_t lw_reader_open_windows(const lw_reader *r) { return r->open_windows; }
lw_label_kind lw_reader_labels(const lw_reader *r) { return r->labels; }

int lw_source_graded(const lw_source_opts *src) {
  if (!src->reward || !src->path || strcmp(src->path, "-") == 0) return 0;
  if (src->kind == LW_SRC_SQLITE) return 1;
  if (src->kind != LW_SRC_AUTO) return 0;
  FILE *f = fopen(src->path, "rb");
  if (!f) return 0;
  lw_source_kind k = sniff(f);
  fclose(f);
  return k == LW_SRC_SQLITE;
}

void lw_reader_close(lw_reader *r) {
  if (!r) return;
  if (r->f && !r->is_stdin) fclose(r->f);
  if (r->cache) fclose(r->cache);
  free(r->order);
  lw_store_cursor_free(r->cur);
  lw_store_free(r->store);
  free(r->row);
  free(r->line);
  free(r);
}
