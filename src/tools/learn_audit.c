/* learn_audit.c: the fairness audit over a data source: per configured segment, how often its
 * users are asked (exposure), how often an ask leads to a share, and how often to a referred
 * customer. The rates, ratios and flags are loopwise/audit.h's (shared with the console). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/learn.h"
#include "loopwise/store.h"

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
        if (!lw_audit_in_segment(d->segment, d->x, d->n_x, segs[s], h[s])) continue;
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
        if (!lw_audit_in_segment(NULL, rec->x, rec->n, segments[s], h[s])) continue;
        rows[s].decisions++;
        rows[s].prompts += (uint64_t)prompt;
        rows[s].shares += (uint64_t)(prompt && rec->reward > 0);
      }
    }
    free(rec);
    lw_reader_close(rd);
    if (got < 0) st = LW_ERR_INVALID;
  }
  if (st == LW_OK) lw_audit_finish(rows, n_segments);
  return st;
}
