/* sbuf.c: bounded string building without printf (see sbuf.h). */
#include "sbuf.h"

#include <string.h>

void lw_sb_init(lw_sbuf *sb, char *buf, size_t cap) {
  sb->buf = buf;
  sb->cap = cap;
  sb->len = 0;
  sb->overflow = 0;
  if (cap > 0) buf[0] = '\0';
}

void lw_sb_mem(lw_sbuf *sb, const char *s, size_t n) {
  if (sb->cap == 0) {
    sb->overflow = 1;
    return;
  }
  size_t room = sb->cap - 1 - sb->len;
  if (n > room) {
    n = room;
    sb->overflow = 1;
  }
  memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

void lw_sb_str(lw_sbuf *sb, const char *s) { lw_sb_mem(sb, s, strlen(s)); }

void lw_sb_char(lw_sbuf *sb, char c) { lw_sb_mem(sb, &c, 1); }

void lw_sb_u64(lw_sbuf *sb, uint64_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  lw_sb_mem(sb, tmp + i, sizeof tmp - i);
}

void lw_sb_i64(lw_sbuf *sb, int64_t v) {
  if (v < 0) {
    lw_sb_char(sb, '-');
    lw_sb_u64(sb, (uint64_t)0 - (uint64_t)v);
  } else {
    lw_sb_u64(sb, (uint64_t)v);
  }
}

void lw_sb_decimal(lw_sbuf *sb, uint64_t whole, uint32_t frac, int digits) {
  lw_sb_u64(sb, whole);
  if (!frac) return;
  char d[10];
  for (int i = digits - 1; i >= 0; i--) {
    d[i] = (char)('0' + frac % 10);
    frac /= 10;
  }
  while (d[digits - 1] == '0') digits--;
  lw_sb_char(sb, '.');
  lw_sb_mem(sb, d, (size_t)digits);
}

void lw_sb_num(lw_sbuf *sb, double v) {
  if (v != v) {
    lw_sb_str(sb, "NaN");
    return;
  }
  if (v < 0) {
    lw_sb_char(sb, '-');
    v = -v;
  }
  if (v >= 1e18) {
    lw_sb_str(sb, "a very large number");
    return;
  }
  uint64_t whole = (uint64_t)v;
  uint64_t frac = (uint64_t)((v - (double)whole) * 1e6 + 0.5);
  if (frac >= 1000000) {
    whole++;
    frac -= 1000000;
  }
  lw_sb_decimal(sb, whole, (uint32_t)frac, 6);
}

void lw_sb_ppm(lw_sbuf *sb, uint32_t ppm) {
  if (ppm > 1000000) ppm = 1000000;
  lw_sb_decimal(sb, ppm / 1000000, ppm % 1000000, 6);
}

void lw_sb_json_str(lw_sbuf *sb, const char *s) {
  static const char hexd[] = "0123456789abcdef";
  lw_sb_char(sb, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if (c < 0x20) { /* control characters as \u00XX: valid JSON, and one rule for all of them */
      char esc[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
      lw_sb_mem(sb, esc, 6);
      continue;
    }
    if (c == '"' || c == '\\') lw_sb_char(sb, '\\');
    lw_sb_char(sb, (char)c);
  }
  lw_sb_char(sb, '"');
}

void lw_sb_hex(lw_sbuf *sb, const uint8_t *bytes, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    char two[2] = {hexd[bytes[i] >> 4], hexd[bytes[i] & 15]};
    lw_sb_mem(sb, two, 2);
  }
}

void lw_strlcpy(char *dst, const char *src, size_t cap) {
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}
