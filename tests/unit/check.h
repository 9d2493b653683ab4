/* check.h: the few assertion macros the C unit tests use. A failed check prints the
 * file, line and values, counts the failure, and the test carries on; main returns
 * the failure count so ctest sees it. */
#ifndef LW_TEST_CHECK_H
#define LW_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures++;                                                     \
    }                                                                       \
  } while (0)

#define CHECK_INT(a, b)                                                                    \
  do {                                                                                     \
    long long va_ = (long long)(a), vb_ = (long long)(b);                                  \
    if (va_ != vb_) {                                                                      \
      fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, va_, \
              #b, vb_);                                                                    \
      check_failures++;                                                                    \
    }                                                                                      \
  } while (0)

#define CHECK_STR(a, b)                                                                   \
  do {                                                                                    \
    const char *sa_ = (a), *sb_ = (b);                                                    \
    if (strcmp(sa_, sb_) != 0) {                                                          \
      fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, sa_, sb_); \
      check_failures++;                                                                   \
    }                                                                                     \
  } while (0)

#define CHECK_CONTAINS(hay, needle)                                                       \
  do {                                                                                    \
    const char *h_ = (hay), *n_ = (needle);                                               \
    if (!strstr(h_, n_)) {                                                                \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, h_, n_); \
      check_failures++;                                                                   \
    }                                                                                     \
  } while (0)

/* Run one named test function and report it. */
#define RUN(fn)                                        \
  do {                                                 \
    int before_ = check_failures;                      \
    fn();                                              \
    printf("%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #fn); \
  } while (0)

#endif
