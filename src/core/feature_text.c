/* feature_text.c: a hashed feature's two text forms (models/FORMAT.md, "Hashed features"): its
 * name as a trainer reads it in a Vowpal Wabbit line, and its fixed-point value as the exact
 * decimal every decision logs. The shared cases (tests/cases/functions.json, groups vw_hash and
 * fx_decimal) pin both for the native build, the WASM build and the browser. */
#include <string.h>

#include "loopwise/model.h"
#include "sbuf.h"

/* "#<decimal>" is the raw hash (VW's form for a feature already hashed): a decision's logged
 * pairs [hash, value] turn into VW text and back without a dictionary. Any other name, and "#"
 * alone, is hashed. */
int lw_feature_hash(const char *name, size_t n, uint32_t *hash) {
  if (n < 2 || name[0] != '#') {
    *hash = lw_fnv1a_bytes(2166136261u, name, n);
    return 1;
  }
  uint64_t v = 0;
  for (size_t i = 1; i < n; i++) {
    if (name[i] < '0' || name[i] > '9') return 0;
    v = v * 10 + (uint64_t)(name[i] - '0');
    if (v > 0xFFFFFFFFull) return 0;
  }
  *hash = (uint32_t)v;
  return 1;
}

/* q/256 as its exact decimal ("-1.5", "0.00390625"): 1/256 is 390625/10^8, so eight digits
 * always suffice and the trailing zeros are dropped. */
void lw_sb_fx(lw_sbuf *sb, int32_t q) {
  uint32_t a = q < 0 ? (uint32_t)0 - (uint32_t)q : (uint32_t)q;
  if (q < 0) lw_sb_char(sb, '-');
  lw_sb_decimal(sb, a >> 8, (a & 255u) * 390625u, 8); /* /256 = ×390625 / 10^8 */
}
