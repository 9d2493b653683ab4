/* outbox.c: a bounded arena of newline-terminated JSON records (see loopwise/outbox.h). */
#include "loopwise/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

struct lw_outbox {
  char *data;
  size_t cap;
  size_t used;
  size_t count;
  uint32_t dropped;
};

lw_status lw_outbox_create(size_t cap_bytes, lw_outbox **out) {
  lw_outbox *ob = calloc(1, sizeof *ob);
  if (!ob) return LW_ERR_NOMEM;
  ob->data = malloc(cap_bytes ? cap_bytes : 1);
  if (!ob->data) {
    free(ob);
    return LW_ERR_NOMEM;
  }
  ob->cap = cap_bytes;
  *out = ob;
  return LW_OK;
}

void lw_outbox_free(lw_outbox *ob) {
  if (!ob) return;
  free(ob->data);
  free(ob);
}

/* Remove the first n records (and the bytes they take). */
static void drop_front(lw_outbox *ob, size_t n) {
  size_t off = 0;
  for (size_t i = 0; i < n && off < ob->used; i++) {
    const char *nl = memchr(ob->data + off, '\n', ob->used - off);
    off = nl ? (size_t)(nl - ob->data) + 1 : ob->used;
    ob->count--;
  }
  memmove(ob->data, ob->data + off, ob->used - off);
  ob->used -= off;
}

lw_status lw_outbox_push(lw_outbox *ob, const char *record, size_t len) {
  if (len + 1 > ob->cap || memchr(record, '\n', len)) return LW_ERR_INVALID;
  while (ob->used + len + 1 > ob->cap) {
    drop_front(ob, 1);
    ob->dropped++;
  }
  memcpy(ob->data + ob->used, record, len);
  ob->data[ob->used + len] = '\n';
  ob->used += len + 1;
  ob->count++;
  return LW_OK;
}

size_t lw_outbox_count(const lw_outbox *ob) { return ob->count; }

uint32_t lw_outbox_dropped(const lw_outbox *ob) { return ob->dropped; }

void lw_outbox_drop(lw_outbox *ob, size_t n, int lost) {
  if (n > ob->count) n = ob->count;
  drop_front(ob, n);
  if (lost) ob->dropped += (uint32_t)n;
}

const char *lw_outbox_data(const lw_outbox *ob, size_t *len) {
  *len = ob->used;
  return ob->data;
}

lw_status lw_outbox_load(lw_outbox *ob, const char *data, size_t len) {
  if (len > ob->cap || (len && data[len - 1] != '\n')) return LW_ERR_CORRUPT;
  size_t count = 0;
  for (size_t i = 0; i < len; i++)
    if (data[i] == '\n') count++;
  memcpy(ob->data, data, len);
  ob->used = len;
  ob->count = count;
  ob->dropped = 0;
  return LW_OK;
}
