/* alloc.c: malloc, free, calloc and realloc for loopwise.wasm (linked with -sMALLOC=none).
 *
 * emmalloc cost about 1.45 KB of the module's gzip size, for features this module does not
 * use: coalescing, splitting, memory release. The module holds a few long-lived objects
 * (engine, model weights, output buffer, outbox), a config read once at start, and frees
 * and remallocs the same few short strings around every call from JavaScript. Segregated power-of-two free lists fit that: a freed block goes on the list of its
 * class and the next request of that class takes it back, so a repeated workload never grows
 * the heap. Nothing is split or merged, so a block's size never changes; the price is up to
 * 2x internal waste and memory that stays with the class that first asked for it.
 *
 * Classes are by payload: 16, 32, 64, ... bytes up to 1 GB, each block preceded by a 16-byte
 * header. Keeping the header outside the class means a power-of-two request (the outbox's
 * 64 KB, a model's 2^bits weights) fits its own class instead of taking twice as much.
 * Header and class sizes are multiples of 16 and the heap starts 16-aligned, so every
 * payload is 16-aligned (max_align_t on wasm32).
 *
 * Memory comes straight from memory.grow: with MALLOC=none Emscripten links no sbrk, and
 * nothing else in the module grows memory. JavaScript must re-read memory.buffer after any
 * call that may allocate (web/src/engine.js does on every access), so no growth notice is
 * sent to the host. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define HDR 16                        /* header before each payload: its class */
#define MIN_SHIFT 4                   /* smallest payload: 16 bytes */
#define NCLASS 27                     /* payloads 16 B .. 1 GB */
#define MAX_REQUEST ((size_t)1 << 30) /* larger requests fail rather than wrap */
#define FREED ((size_t)-1)            /* header of a block on a free list */

extern unsigned char __heap_base; /* defined by wasm-ld: first byte after data and stack */

/* The allocator's whole state. The project keeps state in structs the caller owns, but
 * malloc has no caller-owned context to put it in: the heap belongs to the module instance,
 * and a test that wants a fresh heap instantiates the module again. */
static struct {
  uintptr_t top, end;   /* [top, end) is memory never handed out; end is memory's end */
  void *free[NCLASS];   /* per class, freed payloads linked through their first word */
  size_t in_use;        /* bytes in live blocks, headers included */
} heap;

static size_t *header(void *p) { return (size_t *)((char *)p - HDR); }

/* The class of a live block. A header that is not a live block's (a double free, or a
 * pointer malloc never returned whose word there happens to be out of range) traps rather
 * than corrupting a free list. */
static size_t live_class(void *p) {
  size_t c = *header(p);
  if (c >= NCLASS) __builtin_trap();
  return c;
}

/* Class c holds payloads of 16 << c bytes. n must be at most MAX_REQUEST. */
static size_t class_of(size_t n) {
  return n <= (1u << MIN_SHIFT) ? 0 : (size_t)(32 - MIN_SHIFT - __builtin_clz((unsigned)(n - 1)));
}

/* malloc itself, under another name so that the compiler cannot turn calloc's call plus
 * memset into a call to calloc. */
static void *take(size_t n) {
  if (n > MAX_REQUEST) return NULL;
  size_t c = class_of(n), size = HDR + ((size_t)1 << (c + MIN_SHIFT));
  char *p = heap.free[c];
  if (p) {
    heap.free[c] = *(void **)p;
  } else {
    if (!heap.end) {
      heap.top = ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15;
      heap.end = __builtin_wasm_memory_size(0) << 16;
    }
    if (size > heap.end - heap.top) {
      /* Grow by whole 64 KB pages. Neither sum can wrap: size is at most 1 GB plus the
       * header and memory is capped at 2 GB (Emscripten's MAXIMUM_MEMORY default), past
       * which memory.grow fails. */
      size_t pages = (size - (heap.end - heap.top) + 0xFFFF) >> 16;
      size_t old = __builtin_wasm_memory_grow(0, pages);
      if (old == (size_t)-1) return NULL;
      heap.end = (old + pages) << 16;
    }
    p = (char *)heap.top + HDR;
    heap.top += size;
  }
  *header(p) = c;
  heap.in_use += size;
  return p;
}

/* malloc(0) returns a unique 16-byte block, as most allocators do. */
void *malloc(size_t n) { return take(n); }

void free(void *p) {
  if (!p) return;
  size_t c = live_class(p);
  *header(p) = FREED;
  *(void **)p = heap.free[c];
  heap.free[c] = p;
  heap.in_use -= HDR + ((size_t)1 << (c + MIN_SHIFT));
}

void *calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return NULL;
  void *p = take(total);
  if (p) memset(p, 0, total); /* reused blocks are dirty */
  return p;
}

/* A block keeps its class for life, so a request that fits (any shrink, and any growth
 * within the class) returns p unchanged. realloc(p, 0) is such a shrink: it returns p,
 * still live, and never frees, so NULL from realloc always means failure with p intact. */
void *realloc(void *p, size_t n) {
  if (!p) return take(n);
  size_t cap = (size_t)1 << (live_class(p) + MIN_SHIFT);
  if (n <= cap) return p;
  void *q = take(n);
  if (q) {
    memcpy(q, p, cap);
    free(p);
  }
  return q;
}

size_t lw_alloc_in_use(void) { return heap.in_use; }
