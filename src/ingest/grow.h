/* grow.h: the one array grower of the ingest server's stores (both backends' row readers and
 * the SQLite rollups' buffers). Private to src/ingest. */
#ifndef LW_INGEST_GROW_H
#define LW_INGEST_GROW_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Make *buf (of *cap elements of `size` bytes, realloc'd memory or NULL) hold at least `need`
 * elements, doubling from 16. 1 on success; 0 when out of memory (*buf and *cap unchanged, still
 * the caller's to free). */
static inline int lw_grow(void **buf, size_t *cap, size_t need, size_t size) {
  if (*cap >= need) return 1;
  size_t ncap = *cap ? *cap * 2 : 16;
  while (ncap < need) ncap *= 2;
  if (ncap > (size_t)-1 / size) return 0;
  void *grown = realloc(*buf, ncap * size);
  if (!grown) return 0;
  *buf = grown, *cap = ncap;
  return 1;
}

/* Append one element to *buf (*n of *cap in use): its address, zeroed; NULL when out of memory
 * (nothing changed). */
static inline void *lw_push(void **buf, size_t *n, size_t *cap, size_t size) {
  if (!lw_grow(buf, cap, *n + 1, size)) return NULL;
  void *slot = (char *)*buf + (*n)++ * size;
  memset(slot, 0, size);
  return slot;
}

#endif
