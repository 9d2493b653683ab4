/* text.c: UTF-8 and character-set rules (see loopwise/text.h). */
#include "loopwise/text.h"

#include <string.h>

#include "loopwise/wire.h"

int lw_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i], cp;
    size_t n;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (len - i <= n) return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += n + 1;
  }
  return 1;
}

size_t lw_utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

int lw_char_ok(lw_charset cs, unsigned char c) {
  switch (cs) {
    case LW_CS_NAME:
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    case LW_CS_MODEL: return lw_char_ok(LW_CS_NAME, c) || c == '.';
    case LW_CS_HEX: return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    case LW_CS_CODE: return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    case LW_CS_TEXT: return c >= 0x20 && c != 0x7f;
  }
  return 0;
}

const char *lw_charset_desc(lw_charset cs) {
  switch (cs) {
    case LW_CS_NAME: return "[A-Za-z0-9_-]";
    case LW_CS_MODEL: return "[A-Za-z0-9_.-]";
    case LW_CS_HEX: return "lowercase hex";
    case LW_CS_CODE: return "[A-Z0-9]";
    case LW_CS_TEXT: return "printable";
  }
  return "?";
}

int lw_ascii_is(lw_charset cs, const char *s, size_t min, size_t max) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!lw_char_ok(cs, (unsigned char)s[n])) return 0;
  return n >= min && n <= max;
}

int lw_text_is(lw_charset cs, const char *s, size_t min, size_t max) {
  if (cs != LW_CS_TEXT) return lw_ascii_is(cs, s, min, max);
  size_t bytes = strlen(s);
  for (size_t i = 0; i < bytes; i++)
    if (!lw_char_ok(cs, (unsigned char)s[i])) return 0;
  if (!lw_utf8_valid(s, bytes)) return 0;
  size_t n = lw_utf8_chars(s);
  return n >= min && n <= max;
}

int lw_is_name(const char *s) { return lw_ascii_is(LW_CS_NAME, s, 1, LW_NAME_LEN); }
