/* loopwise/outbox.h: the bounded log of decision and outcome records waiting to be sent.
 *
 * Records are kept as ready-made JSON objects (one per line) in a byte arena sized at
 * create time, so logging never allocates. When the arena is full the oldest records
 * are dropped and counted. lw_wire_take_batch (wire.h) moves the oldest records out as a wire batch, which the caller then owns and resends, with the same batch_id, until
 * the server acknowledges it. */
#ifndef LOOPWISE_OUTBOX_H
#define LOOPWISE_OUTBOX_H

#include "loopwise/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lw_outbox lw_outbox;

/* Create an outbox holding up to cap_bytes of records. Free with lw_outbox_free. */
lw_status lw_outbox_create(size_t cap_bytes, lw_outbox **out);
void lw_outbox_free(lw_outbox *ob);

/* Append one record (a JSON object without newlines). Drops the oldest records to make
 * room; LW_ERR_INVALID if the record alone is larger than the outbox. */
lw_status lw_outbox_push(lw_outbox *ob, const char *record, size_t len);
size_t lw_outbox_count(const lw_outbox *ob);
/* Records dropped because the outbox was full, since create (or lw_outbox_load). */
uint32_t lw_outbox_dropped(const lw_outbox *ob);

/* Remove the n oldest records (they were sent, or, with lost 1, can never be: counted as
 * dropped). */
void lw_outbox_drop(lw_outbox *ob, size_t n, int lost);

/* The raw record lines, for snapshots and lw_wire_take_batch: a pointer into the outbox, valid until the next
 * call that changes it. lw_outbox_load replaces the contents with such lines. */
const char *lw_outbox_data(const lw_outbox *ob, size_t *len);
lw_status lw_outbox_load(lw_outbox *ob, const char *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
