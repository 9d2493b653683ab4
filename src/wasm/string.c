/* string.c: byte-at-a-time memchr and strlen for the WASM build.
 *
 * musl's versions scan a word at a time, which pays on long buffers; ours are names, short
 * records and at most one 64 KB outbox, and the word-at-a-time code is about 260 B of gzip
 * in a page download. Built with -fno-builtin so the compiler does not turn these loops back
 * into calls to themselves. */
#include <stddef.h>
#include <string.h>

void *memchr(const void *s, int c, size_t n) {
  const unsigned char *p = s;
  for (; n; n--, p++)
    if (*p == (unsigned char)c) return (void *)p;
  return NULL;
}

size_t strlen(const char *s) {
  const char *p = s;
  while (*p) p++;
  return (size_t)(p - s);
}
