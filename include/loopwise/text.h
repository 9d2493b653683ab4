/* loopwise/text.h: the text rules shared by the config checker and the wire validator.
 *
 * One definition of well-formed UTF-8 and of each character set a name, id or code may use,
 * so a string the config accepts is one the server accepts (and the other way round). */
#ifndef LOOPWISE_TEXT_H
#define LOOPWISE_TEXT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when s[0..len) is well-formed UTF-8: no overlongs, surrogates, truncated sequences or
 * code points past U+10FFFF. */
int lw_utf8_valid(const char *s, size_t len);
/* Code points in a NUL-terminated string already known to be valid UTF-8. */
size_t lw_utf8_chars(const char *s);

typedef enum {
  LW_CS_NAME,  /* [A-Za-z0-9_-]: actions, segments, events, variants, attributes */
  LW_CS_MODEL, /* [A-Za-z0-9_.-]: model versions, write keys */
  LW_CS_HEX,   /* [0-9a-f]: decision ids, install keys */
  LW_CS_CODE,  /* [A-Z0-9]: referral codes */
  LW_CS_TEXT   /* printable: no control characters (UTF-8 checked separately) */
} lw_charset;

int lw_char_ok(lw_charset cs, unsigned char c);
/* "[A-Za-z0-9_-]", "lowercase hex", ...: for error messages. */
const char *lw_charset_desc(lw_charset cs);
/* 1 when s is min..max characters (code points for LW_CS_TEXT), all of cs, and valid UTF-8. */
int lw_text_is(lw_charset cs, const char *s, size_t min, size_t max);
/* The same for the ASCII sets (every one but LW_CS_TEXT): what the runtime needs, without
 * the UTF-8 decoder in its download. */
int lw_ascii_is(lw_charset cs, const char *s, size_t min, size_t max);

/* The wire's and config's names (1..LW_NAME_LEN of LW_CS_NAME). */
int lw_is_name(const char *s);

#ifdef __cplusplus
}
#endif
#endif
