/* audit.c: the fairness audit's arithmetic (loopwise/audit.h). */
#include "loopwise/audit.h"

#include <stdio.h>
#include <string.h>

void lw_audit_segment_name(const char *attribute, const char *value, char out[LW_SEGMENT_NAME_LEN + 1]) {
  snprintf(out, LW_SEGMENT_NAME_LEN + 1, "%.*s^%.*s", LW_NAME_LEN, attribute, LW_NAME_LEN, value);
}

int lw_audit_in_segment(const char *segment_field, const lw_feature *x, int n, const char *name, uint32_t hash) {
  if (segment_field && strcmp(segment_field, name) == 0) return 1;
  for (int i = 0; x && i < n; i++)
    if (x[i].hash == hash) return 1;
  return 0;
}

uint32_t lw_audit_segments_of(const char *segment_field, const lw_feature *x, int n,
                              const char (*names)[LW_SEGMENT_NAME_LEN + 1], const uint32_t *hashes, int n_names) {
  uint32_t in = 0;
  for (int s = 0; s < n_names && s < 32; s++)
    if (lw_audit_in_segment(segment_field, x, n, names[s], hashes[s])) in |= 1u << s;
  return in;
}

void lw_audit_finish(lw_audit_row *rows, int n) {
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
