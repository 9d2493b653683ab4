/* failalloc.c: see failalloc.h. */
#include "failalloc.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

static long g_fail_at; /* 0: never; N: the Nth allocation from now fails */
static long g_calls;

static int fail_here(void) { return g_fail_at && ++g_calls == g_fail_at; }
void *__wrap_malloc(size_t n) { return fail_here() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_here() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_here() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_here() ? NULL : __real_strdup(s); }

static void *cjson_malloc(size_t n) { return __wrap_malloc(n); }

void tu_failalloc_begin(void) {
  cJSON_Hooks hooks = {cjson_malloc, free};
  cJSON_InitHooks(&hooks);
}

void tu_fail_nth_allocation(long n) {
  g_calls = 0;
  g_fail_at = n;
}

long tu_allocations(void) { return g_calls; }

int tu_allocation_failed(void) {
  int reached = g_fail_at && g_calls >= g_fail_at;
  g_fail_at = 0;
  return reached;
}
