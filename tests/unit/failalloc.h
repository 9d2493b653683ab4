/* failalloc.h: fail the Nth allocation, for the tests that run a function under every
 * allocation failure (SQLite's do_faultsim_test -faults oom* idea, through our own seam).
 *
 * A test that uses it links with lw_failalloc and the link options LW_FAILALLOC_LINK_OPTIONS
 * sets (tests/unit/CMakeLists.txt): -Wl,--wrap routes the malloc, calloc, realloc and strdup
 * calls of the statically linked code (ours) through the hook. cJSON is a shared library, so
 * tu_failalloc_begin also installs cJSON hooks that go through the same counter. */
#ifndef LW_TEST_FAILALLOC_H
#define LW_TEST_FAILALLOC_H

/* Install the cJSON hooks (once per test program). */
void tu_failalloc_begin(void);
/* From now on, the nth allocation fails (n = 0: none does). */
void tu_fail_nth_allocation(long n);
/* Allocations counted since tu_fail_nth_allocation (arm it with a huge n to only count). */
long tu_allocations(void);
/* 1 when the armed allocation was reached since tu_fail_nth_allocation (so the call under
 * test met a failure); disarms the hook. */
int tu_allocation_failed(void);

#endif
