/* sbuf.h: a bounded string builder (internal to the core).
 *
 * The WASM build avoids the printf family to stay small, so the core formats its
 * reasons, error messages and JSON with these few appenders. A builder never writes
 * past its buffer: once full it sets `overflow` and keeps the text NUL-terminated. */
#ifndef LW_SBUF_H
#define LW_SBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *buf;
  size_t cap;  /* bytes available, including the terminating NUL */
  size_t len;
  int overflow;
} lw_sbuf;

void lw_sb_init(lw_sbuf *sb, char *buf, size_t cap);
void lw_sb_str(lw_sbuf *sb, const char *s);
void lw_sb_mem(lw_sbuf *sb, const char *s, size_t n);
void lw_sb_char(lw_sbuf *sb, char c);
void lw_sb_u64(lw_sbuf *sb, uint64_t v);
void lw_sb_i64(lw_sbuf *sb, int64_t v);
/* whole, then up to `digits` (1-10) decimals of frac (frac < 10^digits) without trailing zeros. */
void lw_sb_decimal(lw_sbuf *sb, uint64_t whole, uint32_t frac, int digits);
/* A number for a human message: integers exactly, others with up to 6 decimals. */
void lw_sb_num(lw_sbuf *sb, double v);
/* A probability held in millionths, as the shortest exact decimal ("0.75", "1"). */
void lw_sb_ppm(lw_sbuf *sb, uint32_t ppm);
/* A fixed-point value q/256 as its exact decimal ("-1.5", "0.00390625"; feature_text.c). */
void lw_sb_fx(lw_sbuf *sb, int32_t q);
/* A JSON string literal with quotes, escaping what JSON requires. */
void lw_sb_json_str(lw_sbuf *sb, const char *s);
/* Lower-case hex of n bytes. */
void lw_sb_hex(lw_sbuf *sb, const uint8_t *bytes, size_t n);

/* Copy at most cap-1 bytes of src into dst, always NUL-terminating (cap > 0). */
void lw_strlcpy(char *dst, const char *src, size_t cap);

#endif
