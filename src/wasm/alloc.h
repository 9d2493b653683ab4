/* alloc.h: what src/wasm/alloc.c offers beyond malloc, free, calloc and realloc. */
#ifndef LW_WASM_ALLOC_H
#define LW_WASM_ALLOC_H

#include <stddef.h>

/* Bytes of heap in live blocks: each block counts its whole size class plus its header,
 * which is what it takes from the heap, not the size the caller asked for. */
size_t lw_alloc_in_use(void);

#endif
