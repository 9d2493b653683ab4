/* bytes.c: see bytes.h. */
#include "bytes.h"

#include <string.h>

void lw_wr_bytes(lw_wr *w, const void *p, size_t n) {
  if (w->len + n <= w->cap) memcpy(w->buf + w->len, p, n);
  w->len += n;
}

void lw_wr_u(lw_wr *w, int nbytes, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < nbytes; i++) b[i] = (uint8_t)(v >> (8 * i));
  lw_wr_bytes(w, b, (size_t)nbytes);
}

const uint8_t *lw_rd_take(lw_rd *r, size_t n) {
  if (r->bad || r->len - r->off < n) {
    r->bad = 1;
    return NULL;
  }
  r->off += n;
  return r->p + r->off - n;
}

void lw_rd_bytes(lw_rd *r, void *out, size_t n) {
  const uint8_t *p = lw_rd_take(r, n);
  if (p)
    memcpy(out, p, n);
  else
    memset(out, 0, n);
}

uint64_t lw_rd_u(lw_rd *r, int nbytes) {
  const uint8_t *p = lw_rd_take(r, (size_t)nbytes);
  uint64_t v = 0;
  for (int i = nbytes - 1; p && i >= 0; i--) v = v << 8 | p[i];
  return v;
}
