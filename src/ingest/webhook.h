/* webhook.h: approved conversions posted to the host's backend (README "Webhooks"). A sender
 * thread per server finds the due deliveries in the store (store.h "webhook deliveries"),
 * claims one at a time with a lease, posts it signed and records the answer; its store calls go
 * through the writer thread like every other write. Internal to loopwise-ingest. */
#ifndef LW_INGEST_WEBHOOK_H
#define LW_INGEST_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "loopwise/common.h"
#include "loopwise/ingest.h"
#include "writer.h"

typedef struct lw_webhook lw_webhook;

/* Start the sender when cfg->webhook_url is set (else *out is NULL and nothing runs). cfg, w
 * and log must outlive it; stop it with lw_webhook_stop before the writer goes. */
lw_status lw_webhook_start(const lw_ingest_config *cfg, lw_writer *w, const lw_logger *log,
                           lw_webhook **out, char *err, size_t errlen);
void lw_webhook_stop(lw_webhook *h); /* NULL is fine; waits for an attempt under way */

/* The signature header's value for body sent at t_s (unix seconds):
 * "t=<t_s>,v1=<hex HMAC-SHA-256(secret, "<t_s>." body)>". out holds 96 bytes. */
void lw_webhook_signature(const char *secret, int64_t t_s, const char *body, size_t len,
                          char out[96]);

/* When a failed attempt (the attempts-th) is retried: retry_ms doubled per attempt, at most
 * 6 hours; 0 when that is past created_at + max_age_ms (the delivery is then failed). */
int64_t lw_webhook_next_attempt(int64_t now_ms, int64_t created_at, int64_t attempts,
                                int64_t retry_ms, int64_t max_age_ms);

#endif
