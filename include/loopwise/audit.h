/* loopwise/audit.h: the fairness audit's arithmetic, shared by the trainer's audit
 * (loopwise-eval --audit, src/tools/learn_audit.c) and the console's fairness page
 * (src/ingest/console_fairness.c), so both flag the same segments the same way.
 *
 * Per segment ("attribute^value", the hashed feature the runtime puts in a decision's x): how
 * often its users are asked (exposure: prompts / decision points), how often an ask leads to a
 * share (shares / prompts) and to a referred customer (conversions / prompts), each beside the
 * best segment's rate; a segment is flagged when a ratio to the best falls below 0.8 (the
 * four-fifths rule of adverse-impact audits). */
#ifndef LOOPWISE_AUDIT_H
#define LOOPWISE_AUDIT_H

#include <stdint.h>

#include "loopwise/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LW_AUDIT_FLAG_RATIO 0.8

typedef struct {
  char name[LW_SEGMENT_NAME_LEN + 1];
  uint64_t decisions, prompts, shares, conversions;
  double exposure, share_rate, conversion_rate;       /* prompts/decisions, shares/prompts, conv/prompts */
  double exposure_ratio, share_ratio, conversion_ratio; /* to the best segment */
  int flagged;
} lw_audit_row;

/* A segment's name: "attribute^value" (the hashed feature the runtime puts in x), truncated to
 * LW_SEGMENT_NAME_LEN. */
void lw_audit_segment_name(const char *attribute, const char *value, char out[LW_SEGMENT_NAME_LEN + 1]);

/* 1 when a decision belongs to segment name (hash: lw_fnv1a(name)): its segment field is the
 * name (NULL: none), or one of its n hashed features x is. */
int lw_audit_in_segment(const char *segment_field, const lw_feature *x, int n, const char *name, uint32_t hash);

/* The segments of names[0..n_names) (n_names <= 32; hashes[i] = lw_fnv1a(names[i])) a decision
 * belongs to, by lw_audit_in_segment: bit i for names[i]. The one rule the console's audit page,
 * the store's fairness rollups (schema 12) and the trainer's audit share. */
uint32_t lw_audit_segments_of(const char *segment_field, const lw_feature *x, int n,
                              const char (*names)[LW_SEGMENT_NAME_LEN + 1], const uint32_t *hashes, int n_names);

/* From the counts of rows[0..n), fill each row's rates, its ratios to the best row and its flag
 * (a row with decisions and a ratio below LW_AUDIT_FLAG_RATIO; conversions only count when some
 * row has any). */
void lw_audit_finish(lw_audit_row *rows, int n);

#ifdef __cplusplus
}
#endif
#endif
