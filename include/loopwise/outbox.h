/* loopwise/outbox.h: the bounded log of decision and outcome records waiting to be sent.
 *
 * Records are kept as ready-made JSON objects (one per line) in a byte arena sized at
 * create time, so logging never allocates. When the arena is full the oldest records
 * are dropped and counted. lw_outbox_take_batch moves records out into a wire batch
 * (README "Wire contract"); from then on the caller owns that batch and resends the
 * same text, with the same batch_id, until the server acknowledges it. */
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

/* Write a batch of the oldest records into buf (cap bytes, NUL-terminated) such that the
 * whole batch is at most max_bytes, and remove those records. *len gets the batch length
 * and *n_events its record count (0 and an empty buf when the outbox is empty).
 * batch_id and write_key are copied in as given (the caller checks their syntax).
 * LW_ERR_FULL if not even one record fits in max_bytes/cap (that record is dropped). */
lw_status lw_outbox_take_batch(lw_outbox *ob, const char *batch_id, const char *write_key,
                               int64_t sent_at_ms, size_t max_bytes, char *buf, size_t cap,
                               size_t *len, size_t *n_events);

/* The raw record lines, for snapshots: a pointer into the outbox, valid until the next
 * call that changes it. lw_outbox_load replaces the contents with such lines. */
const char *lw_outbox_data(const lw_outbox *ob, size_t *len);
lw_status lw_outbox_load(lw_outbox *ob, const char *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
