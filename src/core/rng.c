/* rng.c: xoshiro256** seeded through splitmix64 (public-domain algorithms by
 * Blackman and Vigna). Small, fast, and identical on every platform. */
#include "loopwise/rng.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void lw_rng_seed(lw_rng *rng, uint64_t seed_lo, uint64_t seed_hi) {
  uint64_t x = seed_lo ^ rotl(seed_hi, 32) ^ (seed_hi * 0x2545f4914f6cdd1dull);
  for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

/* Each half of the seed runs a splitmix64 stream of its own, and every odd state word mixes in
 * the even one before it: s[1] = f(hi) ^ s[0] with s[0] = f(lo), where f, splitmix64's output,
 * is a bijection of its counter. So s[0] gives back seed_lo and s[1] ^ s[0] seed_hi: all 128 bits
 * reach the state (lw_rng_seed folds both halves into one 64-bit counter: 2^64 seeds give each
 * of its streams), and the first output, which reads only s[1], depends on both halves. The state
 * is never all zero: s[0] and s[2] come from two different counters of one stream, and only one
 * counter value maps to 0. */
void lw_rng_seed128(lw_rng *rng, uint64_t seed_lo, uint64_t seed_hi) {
  uint64_t lo = seed_lo, hi = seed_hi;
  for (int i = 0; i < 4; i += 2) {
    rng->s[i] = splitmix64(&lo);
    rng->s[i + 1] = splitmix64(&hi) ^ rng->s[i];
  }
}

uint64_t lw_rng_next(lw_rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint32_t lw_rng_below(lw_rng *rng, uint32_t n) {
  /* Rejection sampling on 32-bit draws: accept only below the largest multiple of n. */
  uint32_t limit = (uint32_t)(0x100000000ull - (0x100000000ull % n));
  for (;;) {
    uint32_t r = (uint32_t)(lw_rng_next(rng) >> 32);
    if (limit == 0 || r < limit) return r % n;
  }
}

double lw_rng_unit(lw_rng *rng) { return (double)(lw_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0); }

void lw_rng_bytes(lw_rng *rng, uint8_t *out, int n) {
  for (int i = 0; i < n; i += 8) {
    uint64_t v = lw_rng_next(rng);
    for (int j = 0; j < 8 && i + j < n; j++) out[i + j] = (uint8_t)(v >> (8 * j));
  }
}

