/* learn_audit.c: the fairness audit: per configured segment, how often its users are asked
 * (exposure), how often an ask leads to a share, and how often to a referred customer, each
 * beside the best segment's rate, flagged when the ratio falls below 0.8 (the four-fifths
 * rule of adverse-impact audits). */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/learn.h"

int lw_sqlite_shared_table(sqlite3 *db, const char *site, char *err, size_t errlen); /* learn_data.c */

static int in_segment(const char *seg_field, const char *xs, const lw_feature *x, int n, const char *name,
                      uint32_t h) {
  if (seg_field && strcmp(seg_field, name) == 0) return 1;
  for (int i = 0; x && i < n; i++)
    if (x[i].hash == h) return 1;
  if (xs) { /* SQLite rows: scan the JSON for the hash */
    cJSON *j = cJSON_Parse(xs), *it;
    int hit = 0;
    cJSON_ArrayForEach(it, j) {
      cJSON *hh = cJSON_GetArrayItem(it, 0);
      if (cJSON_IsNumber(hh) && (uint32_t)hh->valuedouble == h) hit = 1;
    }
    cJSON_Delete(j);
    return hit;
  }
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

static lw_status audit_sqlite(const lw_source_opts *src, int n, const char segs[][LW_SEGMENT_NAME_LEN + 1],
                              const uint32_t *h, lw_audit_row *rows, char *err, size_t errlen) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  lw_status ret = LW_OK;
  if (sqlite3_open_v2(src->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", src->path, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return LW_ERR_IO;
  }
  const char *site = src->site ? src->site : "default";
  static const char q1[] =
      "SELECT d.action, d.segment, d.x, s.decision IS NOT NULL FROM main.events d LEFT JOIN temp.lw_shared s"
      " ON s.decision = d.decision WHERE d.site = ?1 AND d.kind = 'decision' AND d.t >= ?2 AND d.t < ?3";
  if (lw_sqlite_shared_table(db, site, err, errlen) < 0) {
    sqlite3_close(db);
    return LW_ERR_IO;
  }
  /* Referred customers: conversions whose code a user of the segment shared (codes are per
   * install), attributed through that install's latest decision. */
  static const char q2[] =
      "SELECT c.n, d.segment, d.x FROM (SELECT sh.install AS install, count(*) AS n FROM"
      " (SELECT DISTINCT install, code FROM events WHERE site = ?1 AND kind IN ('share','copy')"
      "  AND code IS NOT NULL) sh JOIN events cv ON cv.site = ?1 AND cv.kind = 'conversion' AND cv.code = sh.code"
      "  AND cv.t >= ?2 AND cv.t < ?3 GROUP BY sh.install) c"
      " JOIN events d ON d.id = (SELECT max(id) FROM events WHERE site = ?1 AND install = c.install"
      "  AND kind = 'decision')";
  for (int q = 0; q < 2 && ret == LW_OK; q++) {
    if (sqlite3_prepare_v2(db, q ? q2 : q1, -1, &st, NULL) != SQLITE_OK) {
      snprintf(err, errlen, "reading %s: %s", src->path, sqlite3_errmsg(db));
      ret = LW_ERR_IO;
      break;
    }
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, src->from_ms);
    sqlite3_bind_int64(st, 3, src->to_ms > 0 ? src->to_ms : INT64_MAX);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const char *seg = (const char *)sqlite3_column_text(st, 1);
      const char *xs = (const char *)sqlite3_column_text(st, 2);
      for (int s = 0; s < n; s++) {
        if (!in_segment(seg, xs, NULL, 0, segs[s], h[s])) continue;
        if (q) {
          rows[s].conversions += (uint64_t)sqlite3_column_int64(st, 0);
          continue;
        }
        const char *action = (const char *)sqlite3_column_text(st, 0);
        int prompt = action && lw_action_is_prompt(action);
        rows[s].decisions++;
        rows[s].prompts += (uint64_t)prompt;
        rows[s].shares += (uint64_t)(prompt && sqlite3_column_int(st, 3));
      }
    }
    if (rc != SQLITE_DONE) {
      snprintf(err, errlen, "reading %s: %s", src->path, sqlite3_errmsg(db));
      ret = LW_ERR_IO;
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  sqlite3_close(db);
  return ret;
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
  int is_sqlite = 0;
  if (strcmp(src->path, "-") != 0 && (probe = fopen(src->path, "rb"))) {
    char head[16] = {0};
    is_sqlite = fread(head, 1, 16, probe) == 16 && memcmp(head, "SQLite format 3", 16) == 0;
    fclose(probe);
  }
  if (is_sqlite) {
    lw_reader_close(rd);
    st = audit_sqlite(src, n_segments, segments, h, rows, err, errlen);
  } else {
    lw_logged *rec = malloc(sizeof *rec);
    int got = -1;
    while (rec && (got = lw_reader_next(rd, rec, err, errlen)) == 1) {
      int prompt = strcmp(src->actions[rec->action], LW_ACTION_NOT_NOW) != 0;
      for (int s = 0; s < n_segments; s++) {
        if (!in_segment(NULL, NULL, rec->x, rec->n, segments[s], h[s])) continue;
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
