/* bytes.h: little-endian byte writing and bounds-checked reading (internal to the core),
 * shared by the snapshot and model file formats. */
#ifndef LW_BYTES_H
#define LW_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* A writer into buf[0..cap). It keeps counting past cap without writing, so a first pass
 * with cap 0 measures the size a second pass needs. */
typedef struct {
  uint8_t *buf;
  size_t cap, len;
} lw_wr;

void lw_wr_bytes(lw_wr *w, const void *p, size_t n);
void lw_wr_u(lw_wr *w, int nbytes, uint64_t v); /* the low nbytes of v, little-endian */

/* A reader over p[0..len). Reading past the end sets `bad` and yields zeros. */
typedef struct {
  const uint8_t *p;
  size_t len, off;
  int bad;
} lw_rd;

const uint8_t *lw_rd_take(lw_rd *r, size_t n); /* NULL (and bad) when fewer than n remain */
void lw_rd_bytes(lw_rd *r, void *out, size_t n);
uint64_t lw_rd_u(lw_rd *r, int nbytes);

#endif
