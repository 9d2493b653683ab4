/* store_read.c: the backend-neutral half of the store's read API (loopwise/store.h). */
#include <stdio.h>

#include "loopwise/store.h"

lw_status lw_store_decisions(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                             size_t errlen) {
  return s->backend->decisions(s, r, 0, out, err, errlen);
}
lw_status lw_store_referrers(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                             size_t errlen) {
  return s->backend->decisions(s, r, 1, out, err, errlen);
}
int lw_store_next(lw_store_cursor *c, lw_store_decision *d, char *err, size_t errlen) {
  return c->next(c, d, err, errlen);
}
void lw_store_cursor_free(lw_store_cursor *c) {
  if (c) c->free(c);
}
lw_status lw_store_count_decisions(lw_store *s, const lw_store_range *r, uint64_t *n, char *err,
                                   size_t errlen) {
  return s->backend->count_decisions(s, r, n, err, errlen);
}
