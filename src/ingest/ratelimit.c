/* ratelimit.c: see ratelimit.h. */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct {
  uint64_t hash;   /* 0: empty */
  double tokens;
  int64_t last_ms;
} slot;

struct lw_ratelimit {
  double rate, burst;
  size_t mask;
  uint64_t seed;
  pthread_mutex_t lock;
  slot *slots;
};

#define PROBE 8

/* FNV-1a over the seed then the key, finished with a 64-bit mixer. */
static uint64_t hash_key(uint64_t seed, const void *key, size_t len) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  const unsigned char *p = key;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h ? h : 1;
}

lw_status lw_ratelimit_create(double rate, double burst, size_t slots, uint64_t seed,
                              lw_ratelimit **out) {
  size_t n = 64;
  while (n < slots) n <<= 1;
  lw_ratelimit *rl = calloc(1, sizeof *rl);
  if (!rl || !(rl->slots = calloc(n, sizeof *rl->slots))) {
    free(rl);
    return LW_ERR_NOMEM;
  }
  rl->rate = rate;
  rl->burst = burst < 1 ? 1 : burst;
  rl->mask = n - 1;
  rl->seed = seed;
  pthread_mutex_init(&rl->lock, NULL);
  *out = rl;
  return LW_OK;
}

void lw_ratelimit_free(lw_ratelimit *rl) {
  if (!rl) return;
  pthread_mutex_destroy(&rl->lock);
  free(rl->slots);
  free(rl);
}

int lw_ratelimit_take(lw_ratelimit *rl, const void *key, size_t len, int64_t now_ms,
                      int *retry_after_s) {
  uint64_t h = hash_key(rl->seed, key, len);
  pthread_mutex_lock(&rl->lock);
  slot *s = NULL, *stalest = NULL;
  for (size_t i = 0; i < PROBE; i++) {
    slot *c = &rl->slots[(h + i) & rl->mask];
    if (c->hash == h) { s = c; break; }
    if (!stalest || c->hash == 0 || (stalest->hash != 0 && c->last_ms < stalest->last_ms))
      if (!stalest || stalest->hash != 0) stalest = c;
  }
  if (!s) {
    s = stalest;
    s->hash = h;
    s->tokens = rl->burst;
    s->last_ms = now_ms;
  }
  if (now_ms > s->last_ms) {
    s->tokens += (double)(now_ms - s->last_ms) / 1000.0 * rl->rate;
    if (s->tokens > rl->burst) s->tokens = rl->burst;
    s->last_ms = now_ms;
  }
  int ok = s->tokens >= 1.0;
  if (ok) {
    s->tokens -= 1.0;
  } else if (retry_after_s) {
    double wait = rl->rate > 0 ? (1.0 - s->tokens) / rl->rate : 3600;
    *retry_after_s = (int)ceil(wait) < 1 ? 1 : (int)ceil(wait);
  }
  pthread_mutex_unlock(&rl->lock);
  return ok;
}
