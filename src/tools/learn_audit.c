/* learn_audit.c: the fairness audit: per configured segment, how often its users are asked
 * (exposure), how often an ask leads to a share, and how often to a referred customer, each
 * beside the best segment's rate, flagged when the ratio falls below 0.8 (the four-fifths
 * rule of adverse-impact audits). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/learn.h"
#include "loopwise/store.h"

static int in_segment(const char *seg_field, const lw_feature *x, int n, const char *name, uint32_t h) {
  if (seg_field && strcmp(seg_field, name) == 0) return 1;
  for (int i = 0; x && i < n; i++)
    if (x[i].hash == h) return 1;
  return 0;
}

static void finish(int n, lw_audit_row *rows) {
  double best[3] = {0, 0, 0};
  for (int s = 0; s < n; s++) {
    lw_audit_row *r = &rows[s];
    r->exposure = r->decisions ? (double)r->prompts / (double)r->decisions : 0;
    r->share_rate = r->prompts ? (double)r->shares / (double)r->prompts : 0;
    r->conversion_rate = r->prompts ? (double)r->conversions / (double)r->prompts : 0;
    if (r->exposure > best[0]) best[0] = r->exposure;
    if (r->share_rate > best[1]) best[1] = r->share_rate;
    if (r->conversion_rate > best[2]) best[2] = r->conversion_rate;
  }
  for (int s = 0; s < n; s++) {
    lw_audit_row *r = &rows[s];
    r->exposure_ratio = best[0] > 0 ? r->exposure / best[0] : 1;
    r->share_ratio = best[1] > 0 ? r->share_rate / best[1] : 1;
    r->conversion_ratio = best[2] > 0 ? r->conversion_rate / best[2] : 1;
    r->flagged = r->decisions > 0 && (r->exposure_ratio < LW_AUDIT_FLAG_RATIO || r->share_ratio < LW_AUDIT_FLAG_RATIO ||
                                      (best[2] > 0 && r->conversion_ratio < LW_AUDIT_FLAG_RATIO));
  }
}

/* The store: every decision point of the range (pass 0), then the referred customers by
 * referrer (pass 1), each attributed to the segments of the referrer's latest decision. */
static lw_status audit_store(const lw_source_opts *src, int n, const char segs[][LW_SEGMENT_NAME_LEN + 1],
                             const uint32_t *h, lw_audit_row *rows, char *err, size_t errlen) {
  lw_store *store = NULL;
  lw_status st = lw_store_open_read(src->path, &store, err, errlen);
  lw_store_decision *d = malloc(sizeof *d);
  if (st == LW_OK && !d) {
    snprintf(err, errlen, "out of memory");
    st = LW_ERR_NOMEM;
  }
  lw_store_range range = {src->site ? src->site : "default", src->from_ms, src->to_ms};
  for (int pass = 0; pass < 2 && st == LW_OK; pass++) {
    lw_store_cursor *cur = NULL;
    st = pass ? lw_store_referrers(store, &range, &cur, err, errlen) : lw_store_decisions(store, &range, &cur, err, errlen);
    int got = 0;
    while (st == LW_OK && (got = lw_store_next(cur, d, err, errlen)) == 1) {
      for (int s = 0; s < n; s++) {
        if (!in_segment(d->segment, d->x, d->n_x, segs[s], h[s])) continue;
        if (pass) {
          rows[s].conversions += (uint64_t)d->conversions;
          continue;
        }
        int prompt = lw_action_is_prompt(d->action);
        rows[s].decisions++;
        rows[s].prompts += (uint64_t)prompt;
        rows[s].shares += (uint64_t)(prompt && d->shared);
      }
    }
    if (got < 0) st = LW_ERR_IO;
    lw_store_cursor_free(cur);
  }
  free(d);
  lw_store_free(store);
  return st;
}

lw_status lw_audit_source(const lw_source_opts *src, int n_segments, const char segments[][LW_SEGMENT_NAME_LEN + 1],
                          lw_audit_row *rows, char *err, size_t errlen) {
  uint32_t h[LW_MODEL_MAX_SEGMENTS];
  if (n_segments < 1 || n_segments > LW_MODEL_MAX_SEGMENTS) {
    snprintf(err, errlen, "name 1-%d segments to audit (--segment attr^value)", LW_MODEL_MAX_SEGMENTS);
    return LW_ERR_INVALID;
  }
  for (int s = 0; s < n_segments; s++) {
    memset(&rows[s], 0, sizeof rows[s]);
    snprintf(rows[s].name, sizeof rows[s].name, "%s", segments[s]);
    h[s] = lw_fnv1a(segments[s]);
  }
  lw_reader *rd = NULL;
  lw_status st = lw_reader_open(src, &rd, err, errlen);
  if (st != LW_OK) return st;
  FILE *probe = NULL;
  int is_sqlite = lw_store_is_pg(src->path);
  if (!is_sqlite && strcmp(src->path, "-") != 0 && (probe = fopen(src->path, "rb"))) {
    char head[16] = {0};
    is_sqlite = fread(head, 1, 16, probe) == 16 && memcmp(head, "SQLite format 3", 16) == 0;
    fclose(probe);
  }
  if (is_sqlite) {
    lw_reader_close(rd);
    st = audit_store(src, n_segments, segments, h, rows, err, errlen);
  } else {
    lw_logged *rec = malloc(sizeof *rec);
    int got = -1;
    while (rec && (got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      int prompt = strcmp(src->actions[rec->action], LW_ACTION_NOT_NOW) != 0;
      for (int s = 0; s < n_segments; s++) {
        if (!in_segment(NULL, rec->x, rec->n, segments[s], h[s])) continue;
        rows[s].decisions++;
        rows[s].prompts += (uint64_t)prompt;
        rows[s].shares += (uint64_t)(prompt && rec->reward > 0);
      }
    }
    free(rec);
    lw_reader_close(rd);
    if (got < 0) st = LW_ERR_INVALID;
  }
  if (st == LW_OK) finish(n_segments, rows);
  return st;
}
