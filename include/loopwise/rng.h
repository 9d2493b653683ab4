/* loopwise/rng.h: the runtime's own seeded random generator (xoshiro256**).
 *
 * Every random draw a decision depends on comes from an lw_rng the caller owns and
 * seeds, so the same seed gives the same decisions natively, in WASM and in tests. */
#ifndef LOOPWISE_RNG_H
#define LOOPWISE_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint64_t s[4];
} lw_rng;

/* Seed from two 64-bit words folded into one 64-bit splitmix64 counter (any value, zero
 * included, is fine): the tools' and simulator's generators, whose seeds are 64-bit at most. */
void lw_rng_seed(lw_rng *rng, uint64_t seed_lo, uint64_t seed_hi);
/* Seed from 128 bits, all of them kept (each half expanded with splitmix64): the engine's, seeded
 * from a CSPRNG's 16 bytes in the browser. */
void lw_rng_seed128(lw_rng *rng, uint64_t seed_lo, uint64_t seed_hi);
uint64_t lw_rng_next(lw_rng *rng);
/* A uniform integer in [0, n), without modulo bias. n must be > 0. */
uint32_t lw_rng_below(lw_rng *rng, uint32_t n);
/* A uniform double in [0, 1) with 53 random bits. */
double lw_rng_unit(lw_rng *rng);
void lw_rng_bytes(lw_rng *rng, uint8_t *out, int n);

#ifdef __cplusplus
}
#endif
#endif
