/* mathx.c: the arithmetic decisions depend on, in plain IEEE operations.
 *
 * libm's exp and log differ between glibc and musl in the last bit for some inputs, and
 * one bit is enough to flip a draw. These versions use only +, -, *, / and bit moves,
 * which IEEE 754 makes identical on x86-64 and in WebAssembly (the build also turns off
 * fused multiply-add contraction). Accuracy is within a few ulp, far below the fixed-point
 * step of the features. */
#include <string.h>

#include "loopwise/model.h"

static double pow2i(int k) { /* 2^k for -1022 <= k <= 1023 */
  uint64_t bits = (uint64_t)(k + 1023) << 52;
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

double lw_exp(double x) {
  if (x != x) return x;
  if (x > 709.0) return pow2i(1023) * 2.0; /* +inf */
  if (x < -745.0) return 0.0;
  /* x = k ln2 + r, |r| <= ln2 / 2, with ln2 split in two for an exact k ln2 */
  double t = x * 1.4426950408889634;
  int k = (int)(t >= 0 ? t + 0.5 : t - 0.5);
  double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  /* Taylor series of e^r to degree 13 (remainder below 2^-55 for |r| <= 0.35) */
  double p = 1.0 / 6227020800.0;
  static const double inv_fact[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                    1.0 / 362880.0,    1.0 / 40320.0,    1.0 / 5040.0,
                                    1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,
                                    1.0 / 6.0,         0.5,              1.0,
                                    1.0};
  for (int i = 0; i < 13; i++) p = p * r + inv_fact[i];
  if (k < -1022) return p * pow2i(k + 600) * pow2i(-600);
  if (k > 1023) return p * pow2i(k - 1) * 2.0;
  return p * pow2i(k);
}

double lw_ln1p(double x) {
  if (!(x > 0)) return 0.0; /* features are never negative; NaN maps to 0 too */
  double y = 1.0 + x;
  uint64_t bits;
  memcpy(&bits, &y, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* mantissa in [1, 2) */
  double m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  /* ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172 */
  double s = (m - 1.0) / (m + 1.0), s2 = s * s, term = s, sum = 0.0;
  for (int i = 1; i <= 23; i += 2) {
    sum += term / i;
    term *= s2;
  }
  return e * 0.6931471805599453 + 2.0 * sum;
}

double lw_sigmoid(double z) { return 1.0 / (1.0 + lw_exp(-z)); }

int32_t lw_fx(double v) {
  double s = v * LW_FX_ONE + 0.5;
  if (!(s > -2147483648.0)) return v != v ? 0 : INT32_MIN;
  if (s >= 2147483647.0) return INT32_MAX;
  int32_t q = (int32_t)s;
  return (double)q > s ? q - 1 : q; /* floor */
}

uint32_t lw_fnv1a_bytes(uint32_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

uint32_t lw_fnv1a(const char *s) { return lw_fnv1a_bytes(2166136261u, s, strlen(s)); }

uint32_t lw_crc32(uint32_t crc, const uint8_t *p, size_t n) {
  static const uint32_t t[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190,
                                 0x6b6b51f4, 0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344,
                                 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278,
                                 0xbdbdf21c};
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc = (crc >> 4) ^ t[(crc ^ p[i]) & 15];
    crc = (crc >> 4) ^ t[(crc ^ (p[i] >> 4)) & 15];
  }
  return ~crc;
}
