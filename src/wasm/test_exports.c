/* test_exports.c: exports only the tests and benchmarks call, linked into loopwise-test.wasm
 * next to binding.c and never into the shipped loopwise.wasm (every export is page download).
 * tests/wasm/test-engine.mjs is their JavaScript face. Same conventions as binding.c. */
#include <emscripten.h>
#include <stdint.h>
#include <string.h>

#include "loopwise/engine.h"
#include "loopwise/model.h"
#include "loopwise/outbox.h"
#include "loopwise/wire.h"
#include "alloc.h"
#include "sbuf.h"

#define LW_EXPORT(name) __attribute__((used, export_name(name)))

/* binding.c's handle starts with its engine. */
typedef struct {
  lw_engine *engine;
} handle_head;

LW_EXPORT("pending") size_t lw_t_pending(handle_head *h) { return lw_outbox_count(lw_engine_outbox(h->engine)); }
LW_EXPORT("model_id") uint32_t lw_t_model_id(handle_head *h) { return lw_engine_model_id(h->engine); }

/* Bytes of heap allocated and in use (for the memory benchmark): live blocks at their
 * class size plus header, see alloc.h. */
LW_EXPORT("heap_used") size_t lw_t_heap_used(void) { return lw_alloc_in_use(); }

/* ---- the shared cases' function groups (tests/cases/functions.json) ---- */
LW_EXPORT("fnv1a") uint32_t lw_t_fnv1a(const char *s) { return lw_fnv1a(s); }
LW_EXPORT("fx") int32_t lw_t_fx(double v) { return lw_fx(v); }
/* lw_feature_hash on the NUL-terminated name: the hash, or -1 (as a double, which holds
 * every u32 too) for a refusal. */
LW_EXPORT("vw_hash") double lw_t_vw_hash(const char *name) {
  uint32_t h;
  return lw_feature_hash(name, strlen(name), &h) ? (double)h : -1.0;
}
/* q/256 as the engine logs it (lw_sb_fx), NUL-terminated in a static buffer. */
LW_EXPORT("fx_decimal") const char *lw_t_fx_decimal(int32_t q) {
  static char text[32];
  lw_sbuf sb;
  lw_sb_init(&sb, text, sizeof text);
  lw_sb_fx(&sb, q);
  return text;
}
/* w and ppm: n uint32 each, in memory the caller allocated. */
LW_EXPORT("ppm_split") void lw_t_ppm_split(const uint32_t *w, int n, uint32_t *ppm) { lw_ppm_split(w, n, ppm); }
/* A record kind's wire name by its number (NULL past the last): JS learns the table, never
 * positions it assumed. */
LW_EXPORT("kind_name") const char *lw_t_kind_name(int kind) {
  return kind >= 0 && kind < LW_KIND_COUNT ? lw_kind_name((lw_kind)kind) : 0;
}
