/* ratelimit.h: token buckets keyed by an opaque byte string (a client address or a write key).
 *
 * Memory only, fixed size chosen at create time: a table of slots holding a 64-bit keyed hash
 * of the key (never the address itself), the tokens left and the last refill time. When the
 * table is full the stalest slot in the probe window is reused, which at worst forgets a
 * client's history (lets it through), never blocks an innocent one. */
#ifndef LW_INGEST_RATELIMIT_H
#define LW_INGEST_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/common.h"

typedef struct lw_ratelimit lw_ratelimit;

/* rate: tokens per second; burst: bucket size. slots: table size (rounded up to a power of 2).
 * seed: hash key (random per process). */
lw_status lw_ratelimit_create(double rate, double burst, size_t slots, uint64_t seed,
                              lw_ratelimit **out);
void lw_ratelimit_free(lw_ratelimit *rl);

/* Take one token for key at time now_ms. Returns 1 when allowed; 0 when limited, with
 * *retry_after_s the whole seconds until a token is back (at least 1). Thread-safe. */
int lw_ratelimit_take(lw_ratelimit *rl, const void *key, size_t len, int64_t now_ms,
                      int *retry_after_s);

#endif
