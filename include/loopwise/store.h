/* loopwise/store.h: where the ingest server keeps outcome batches.
 *
 * A small interface with one backend today (SQLite, lw_store_open_sqlite) and room for a
 * second (PostgreSQL, for stateless replicas behind a load balancer): every operation is a
 * function pointer in lw_store_backend, and nothing the server treats as truth lives outside
 * the store. Idempotency is a UNIQUE (site, batch_id) key in the same database, so it holds
 * across replicas and across a lost acknowledgement.
 *
 * Errors: every operation writes a message into err (errlen bytes, the caller's), as the core
 * does.
 *
 * Threading: writes (lw_store_write, lw_store_forget, lw_store_purge) come from one writer
 * thread at a time; reads (lw_store_stats, lw_store_ping) may run on any thread, concurrently
 * with the writer. */
#ifndef LOOPWISE_STORE_H
#define LOOPWISE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/batch.h"
#include "loopwise/common.h"
#include "loopwise/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lw_store lw_store;

/* The schema version this build writes; older databases are migrated on open. */
#define LW_STORE_SCHEMA_VERSION 14

/* Who asked for a write (console actions, below): a console user ([A-Za-z0-9_-]{1,32}),
 * "loopback" (a console without users) or LW_ACTOR_REVIEW_API (POST /v1/reviews/<id> with the
 * read token: no console user). */
#define LW_ACTOR_LEN 39
#define LW_ACTOR_REVIEW_API "review api"

/* One batch to write. The writer fills stored/duplicate. */
typedef struct {
  const char *site;        /* the site id the write key resolved to */
  const lw_batch *batch;
  int64_t received_ms;     /* server clock */
  size_t stored;           /* out: events stored (0 for a duplicate); the batch's other records
                              were refused (a share or copy of another install's code) */
  int duplicate;           /* out: 1 when (site, batch_id) was already stored */
} lw_store_item;

/* Aggregates for one breakdown value (a variant, a segment or a referral code). */
typedef struct {
  char key[LW_NAME_LEN + 1];
  int64_t installs;                /* distinct install keys */
  int64_t counts[LW_KIND_COUNT];   /* events per kind */
} lw_stats_row;

typedef struct {
  int64_t outcomes;       /* event records stored for the site */
  int64_t batches;        /* batches stored for the site */
  size_t n_variants, n_segments, n_codes;
  lw_stats_row *variants; /* by action */
  lw_stats_row *segments; /* by segment */
  lw_stats_row *codes;    /* by referral code, ordered by code; see lw_stats_bounds */
  /* Codes with fewer than min_installs installs, and codes with enough that did not fit. */
  int64_t codes_below_min, codes_left_out;
} lw_stats;

/* Codes grow without limit (one per sharing install), so a stats answer bounds them: only codes
 * with at least min_installs distinct installs, and of those the max_codes with the most
 * installs (ties: the smaller code). 0: no bound. */
typedef struct {
  size_t max_codes;
  int64_t min_installs;
} lw_stats_bounds;

/* Free the rows of a lw_stats filled by lw_store_stats (the struct itself is the caller's). */
void lw_stats_clear(lw_stats *stats);

/* ---------------------------------------------------------------- operations */

/* Write items[0..n) in one transaction and make it durable before returning LW_OK. A batch whose
 * (site, batch_id) is already stored is marked duplicate and not written again. On any error
 * nothing of the call is kept. */
lw_status lw_store_write(lw_store *s, lw_store_item *const *items, size_t n, char *err, size_t errlen);

/* One deletion request (POST /v1/forget). */
typedef struct {
  const char *site;
  const char *install; /* whose records; with code, the install that must have shared it */
  const char *code;    /* NULL: every event of install; else every event carrying code */
  int64_t deleted;     /* out: events deleted */
  int denied;          /* out: code set and install never sent a share or copy with it */
} lw_forget_item;

/* Apply items[0..n) in one transaction, durable before LW_OK, and see that the deleted rows are
 * left nowhere in the store's files (SQLite: secure_delete, then the WAL checkpointed and
 * truncated, so no older copy of a page survives in it). On error nothing of the call is kept. */
lw_status lw_store_forget(lw_store *s, lw_forget_item *const *items, size_t n, char *err,
                          size_t errlen);

/* Delete the batches received before before_ms and all their events (every step below until
 * none is left). */
lw_status lw_store_purge(lw_store *s, int64_t before_ms, int64_t *deleted, char *err, size_t errlen);
/* One bounded step of that: the oldest expired batches holding about max_events events (whole
 * batches, at least one) with their events and rollups, in one transaction, so a writer that
 * runs its other work between steps is never held for long. *more: 1 while expired batches
 * remain (call again), 0 once the pass is done (its last step also takes the rows that leave
 * with the events: code owners, flags, approval requests, console actions). A backend without
 * steps purges everything in one call (*more 0). */
#define LW_PURGE_STEP_EVENTS 5000
lw_status lw_store_purge_step(lw_store *s, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                              char *err, size_t errlen);

/* Aggregates for one site, every code included. The caller clears *out with lw_stats_clear. */
lw_status lw_store_stats(lw_store *s, const char *site, lw_stats *out, char *err, size_t errlen);
/* The same within bounds (NULL: none); memory and the answer stay bounded however many codes
 * exist. */
lw_status lw_store_stats_bounded(lw_store *s, const char *site, const lw_stats_bounds *bounds,
                                 lw_stats *out, char *err, size_t errlen);

/* The same answer (bounds NULL: none) walked from every stored event instead of read from the
 * rollups the writer keeps (schema 9, README "The store"): slow on a big store, for checks
 * that the rollups are exact (the tests; an operator's audit). */
lw_status lw_store_stats_walk(lw_store *s, const char *site, const lw_stats_bounds *bounds,
                              lw_stats *out, char *err, size_t errlen);

/* A cheap read that proves the store answers (for /healthz). */
lw_status lw_store_ping(lw_store *s, char *err, size_t errlen);

/* ---------------------------------------------------------------- referrals */

/* Who owns a code: the install that first sent a share or copy with it on the site (the
 * store's code_owners table, filled by lw_store_write). */
typedef enum {
  LW_OWNER_NONE = 0,  /* no install has shared the code yet */
  LW_OWNER_SELF = 1,  /* the asking install owns it */
  LW_OWNER_OTHER = 2  /* another install owns it */
} lw_owner;

/* What one referral code brought on one site, as its referrer's device may see it. Conversions
 * are the host's reports through the referee endpoint (lw_store_referee) that count: each
 * referee once, never a browser-reported conversion. Landings are the devices' own records. */
typedef struct {
  lw_owner owner;
  int64_t conversions;  /* distinct referees whose reported conversion counts (not flagged or rejected) */
  int64_t landings;     /* distinct installs that sent a landing with the code */
} lw_referral;

/* One row of the host's reward list: a code and its counted referees, each once, at the server
 * time their conversion came to count (received, or approved after review). */
typedef struct {
  char code[LW_NAME_LEN + 1];
  int64_t conversions;
  int64_t first_at, last_at; /* ms, server clock: the earliest and latest of those times */
} lw_attribution;

/* Counts for code on site; owner says who shared it (the counts are filled only for
 * LW_OWNER_SELF). */
lw_status lw_store_referral(lw_store *s, const char *site, const char *code, const char *install,
                            lw_referral *out, char *err, size_t errlen);

/* Every code with at least one referee that came to count at or after since_ms (server clock),
 * ordered by code. *rows is the caller's to free() (NULL when *n is 0). */
lw_status lw_store_attributions(lw_store *s, const char *site, int64_t since_ms,
                                lw_attribution **rows, size_t *n, char *err, size_t errlen);

/* ---------------------------------------------------------------- referees (host reports)
 * The host's backend reports referees through POST /v1/referees with a site's secret key
 * (src/ingest/referees.c). The store keeps only a salted hash of the host's referee id (the
 * salt is per site and never leaves the store's file), and decides whether a conversion counts
 * for rewards by the site's integrity rules. All of these are writes (the writer thread's),
 * except lw_store_reviews. */

#define LW_REFEREE_HASH_LEN 32 /* HMAC-SHA-256 */
#define LW_SALT_LEN 32

/* What a rule does when it matches a conversion. */
typedef enum { LW_RULE_OFF = 0, LW_RULE_FLAG = 1, LW_RULE_REJECT = 2 } lw_rule_action;

/* A site's integrity rules (ingest config, sites[].integrity). */
typedef struct {
  lw_rule_action self_referral;  /* the referee is the code's registered referrer or its install */
  lw_rule_action repeat_referee; /* the referee already counts (or waits) for another code */
  lw_rule_action velocity;       /* the code has velocity_max conversions in the window already */
  int64_t velocity_max;          /* 0: no limit */
  int64_t velocity_window_ms;
  int review_all;                /* every conversion waits for review */
} lw_integrity_rules;

/* One report. State names: "counted", "flagged" (waits for review), "rejected", "approved". */
typedef struct {
  const char *site;
  const char *code;
  const uint8_t *referee;        /* LW_REFEREE_HASH_LEN bytes: the salted hash */
  const char *install;           /* the referee's install key when the host gave it, else NULL */
  const char *event;             /* wire name (loopwise/wire.h LW_REFEREE_EVENTS) */
  const char *token;             /* the share token from the landing URL, or NULL */
  int64_t at;                    /* when the host says it happened (ms) */
  int64_t received_ms;           /* server clock */
  int has_value;
  double value;
  const lw_integrity_rules *rules;
  /* out */
  int refused;                   /* not stored: refused_field and refused_msg say why (a later event
                                    with no conversion of the same site, code and referee yet, or
                                    a token other than that conversion's); the answer is a 409 */
  char refused_field[16];
  char refused_msg[128];
  int duplicate;                 /* already stored: the first report's id, state and reason */
  int64_t id;
  char state[12];
  char reason[24];               /* the rule that flagged or rejected it, else "" */
} lw_referee_report;

/* The site's salt, created from fresh (random bytes the caller drew) on first use. */
lw_status lw_store_site_salt(lw_store *s, const char *site, const uint8_t fresh[LW_SALT_LEN],
                             uint8_t out[LW_SALT_LEN], char *err, size_t errlen);
/* Store one report (idempotent on site, code, referee hash and event) in one transaction.
 * A later event (retained_30, retained_90, churned, revenue) needs the referee's conversion
 * with the same code stored first (else r->refused); it takes that conversion's token. Each
 * event is reported once per referee (revenue too: the host's figure for the referee, once), so
 * a label never changes after the fact; a repeat is answered as the duplicate it is. */
lw_status lw_store_referee(lw_store *s, lw_referee_report *r, char *err, size_t errlen);
/* Register the host's (hashed) id of a code's referrer, for the self-referral rule. *conflict
 * is 1 when another referrer is registered for the code (nothing changes). */
lw_status lw_store_register_referrer(lw_store *s, const char *site, const char *code,
                                     const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict,
                                     char *err, size_t errlen);

/* The review of a flagged conversion by who (the console user, or LW_ACTOR_REVIEW_API):
 * approve (it counts from now_ms) or reject, recorded as a console action (below) in the same
 * transaction. *result: 0 done, 1 no such report on the site, 2 not waiting for review (decided
 * already; nothing recorded). */
lw_status lw_store_review(lw_store *s, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                          int *result, char *err, size_t errlen);

/* One conversion waiting for review. */
typedef struct {
  int64_t id;
  char code[LW_NAME_LEN + 1];
  char event[16];
  char reason[24];
  int64_t at, received_at;
} lw_review;

/* The flagged conversions of a site, oldest first, at most max. *rows is the caller's to free(). */
lw_status lw_store_reviews(lw_store *s, const char *site, size_t max, lw_review **rows, size_t *n,
                           char *err, size_t errlen);

/* ---------------------------------------------------------------- reading decisions
 * What the learning tools read (loopwise-train, loopwise-eval and its audit, the simulator):
 * the stored decisions of one site, each joined with whether a share or copy of it is stored,
 * and the conversions each referrer's codes brought. Rows come in storage order (ids only
 * grow), so two reads of the same store give the same records in the same order. Nothing
 * above this interface knows the database behind it. */

/* The decisions to read: one site, decision time t in [from_ms, to_ms); to_ms 0 = no bound. */
typedef struct {
  const char *site;
  int64_t from_ms, to_ms;
} lw_store_range;

/* How a decision's referee outcomes were joined to it. */
typedef enum {
  LW_JOIN_NONE = 0,  /* no share or copy with a code of this decision is stored: no outcomes */
  LW_JOIN_TOKEN = 1, /* by the per-share token (wire v2): the landings and the host's reports
                        that carried one of this decision's share tokens, and only those */
  LW_JOIN_CODE = 2   /* by the referral code (v1 shares carry no token): every outcome with the
                        code that carried no token, as the referral counts are; a code is the
                        install's, so the same outcomes appear on each of the code_decisions
                        decisions that shared it (divide, or credit one, in the trainer) */
} lw_join;

/* What the referees a decision's shares brought did (store.h "referees"), within its window.
 * Conversions and the later events are the host's reports (never a browser's), counted unless
 * the conversion was rejected under the integrity rules; each referee once per event. */
typedef struct {
  lw_join join;
  int64_t code_decisions;  /* LW_JOIN_CODE: the decisions whose shares carry that code, else 1 or 0 */
  int64_t landings;        /* distinct installs that sent a landing through the shares */
  int64_t conversions;     /* referees the host reported converted */
  int64_t retained_30, retained_90, churned; /* of those referees, the host's later reports */
  double conversion_value; /* sum of the conversions' optional value */
  double revenue;          /* sum of those referees' reported revenue */
  int64_t last_at;         /* server ms: when the latest of these arrived; 0 when none did */
} lw_referee_outcomes;

/* One stored decision. Strings are "" when the record did not carry them. */
typedef struct {
  uint64_t id;         /* the store's row id: stable and increasing in storage order */
  char decision[LW_DECISION_ID_LEN + 1]; /* the decision's own id (the wire's `decision`): the
                                            same whatever order its batch arrived in */
  int64_t t;
  char action[LW_NAME_LEN + 1];
  char mode[8];
  char segment[LW_NAME_LEN + 1];
  int has_p;
  double p;
  int shared;          /* a share or copy event of this decision is stored for the site */
  int flagged;         /* the decision's install is flagged by an integrity rule (a forged share,
                          a self-referral, a flagged or rejected conversion of its codes): the
                          trainer may leave it out */
  int64_t conversions; /* lw_store_referrers only: the conversions this install's codes brought */
  int64_t window_from; /* ms: where its attribution window starts: t, or the server's receive time
                          when t was beyond the clock-skew allowance */
  lw_referee_outcomes outcomes; /* lw_store_decisions only (zero for lw_store_referrers) */
  char channel[LW_NAME_LEN + 1]; /* lw_store_decisions: the channel of the decision's first share
                                    or copy (wire v2, LW_CHANNELS), "" when none or before v2 */
  int n_x;
  lw_feature x[LW_X_PAIRS]; /* as lw_batch_parse validated them (lw_event.x) */
} lw_store_decision;

typedef struct lw_store_cursor lw_store_cursor;

/* Every decision of the range, oldest first, each with its referee outcomes (d->outcomes:
 * every outcome received so far). On LW_OK *out is a cursor the caller frees with
 * lw_store_cursor_free before it frees the store; one cursor per store at a time (it holds
 * the store's read connection). */
lw_status lw_store_decisions(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                             size_t errlen);
/* The same with an attribution window of attribution_days days: a decision's referee outcomes
 * count only when the server received them within that many days of the decision
 * (lw_store_window_end), so a label no longer changes once its window has closed
 * (lw_store_window_closed); 0 = no window (lw_store_decisions). */
lw_status lw_store_decisions_within(lw_store *s, const lw_store_range *r, int attribution_days,
                                    lw_store_cursor **out, char *err, size_t errlen);
/* Referred customers by referrer: for each install that shared or copied a code on the site,
 * the number of conversions with its codes whose time is in the range, as one row carrying
 * that install's latest decision (its segment and x: who the referrer was when last asked). */
lw_status lw_store_referrers(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                             size_t errlen);
/* The end (ms) of d's attribution window of days days: window_from + days. */
int64_t lw_store_window_end(const lw_store_decision *d, int days);
/* 1 when d's attribution window of days days is closed at now_ms (its label is final: no
 * outcome received later counts in lw_store_decisions_within with those days), else 0. */
int lw_store_window_closed(const lw_store_decision *d, int days, int64_t now_ms);
/* 1: *d filled; 0: no more rows; -1: a read failed or a row is damaged (err says which row). */
int lw_store_next(lw_store_cursor *c, lw_store_decision *d, char *err, size_t errlen);
void lw_store_cursor_free(lw_store_cursor *c); /* NULL is fine */
/* ---------------------------------------------------------------- the console's rollups (schema 9, 10)
 * The console's report (src/ingest/console.c) without walking every decision: the writer keeps
 * the decisions and prompts per UTC day, action, segment and mode in the transaction of the
 * events (forget and retention subtract what they delete), and the later stages come from the
 * shared decisions only (a decision nobody shared has no share, landing or referee outcome). */

typedef struct {
  int64_t day;                   /* days since 1970-01-01 (UTC) of the decisions' t */
  char action[LW_NAME_LEN + 1];
  char segment[LW_NAME_LEN + 1]; /* "" when the decisions carried none */
  char mode[8];                  /* "" when none */
  int64_t decisions;
  int64_t prompts;               /* of those, the ones whose action is not LW_ACTION_NONE */
  /* lw_store_funnel_outcomes only (SQLite schema 11, PostgreSQL 4), else 0: the later stages and the referee totals
   * of the shared decisions among them, as the console counts them (console.c add_decision) */
  int64_t shares;                /* prompted and shared */
  int64_t landed;                /* ... with at least one landing */
  int64_t converted;             /* ... with at least one referee conversion */
  int64_t kept;                  /* ... converted with at least one referee retained_30 */
  int64_t landings, conversions, retained; /* sums of the shared decisions' outcomes */
} lw_funnel_day;

/* A shared decision with at least one referee conversion (lw_store_funnel_outcomes): its key,
 * its outcomes' conversions, conversion value and revenue (summed in decision order by the
 * reader, as a walk adds them). */
typedef struct {
  int64_t day;
  char action[LW_NAME_LEN + 1];
  char segment[LW_NAME_LEN + 1];
  char mode[8];
  int64_t conversions;
  double value, revenue;
  char channel[LW_NAME_LEN + 1]; /* filled by a backend with lw_store_funnel_channels (the
                                    decision's channel as there), else "" */
} lw_funnel_value;

/* Every (day, action, segment, mode) of site with at least one stored decision, ordered by
 * those. *rows is the caller's to free() (NULL when *n is 0). LW_ERR_INVALID from a backend
 * without the rollups (the caller then walks lw_store_decisions). */
lw_status lw_store_funnel_days(lw_store *s, const char *site, lw_funnel_day **rows, size_t *n, char *err,
                               size_t errlen);
/* The whole funnel without a walk (SQLite schema 11, PostgreSQL 4): *days as lw_store_funnel_days with the
 * later stages and totals filled, and *values every shared decision with a conversion, oldest
 * first (decision t >= 0), both from one read snapshot; the caller frees both. LW_ERR_INVALID
 * from a backend without it (the caller then walks lw_store_shared_decisions). */
lw_status lw_store_funnel_outcomes(lw_store *s, const char *site, lw_funnel_day **days, size_t *n_days,
                                   lw_funnel_value **values, size_t *n_values, char *err, size_t errlen);
/* ---- the share channels and the fairness audit's segments (schema 12; PostgreSQL 6)
 * A shared decision's channel is the channel of its first share or copy (lw_store_decision
 * .channel: the decision reader's rule, which the trainer's channel ranking uses too), "" when
 * that record carried none (wire v1). Its fairness segments are the values of the product
 * config's fairness attribute it belongs to by lw_audit_segments_of (loopwise/audit.h: its
 * segment field or one of its hashed features is "attribute^value"). The writer keeps both in
 * the funnel's rollups, the segments for the spec lw_store_set_fairness last gave it. */

/* The later stages and referee totals of the shared decision rows (t >= 0) of one channel,
 * as lw_funnel_day's. */
typedef struct {
  char channel[LW_NAME_LEN + 1];
  int64_t shares, landed, converted, kept, landings, conversions, retained;
} lw_funnel_channel;

/* Every channel of site with a shared decision row, ordered by channel. *rows: free(). A
 * backend with it fills lw_funnel_value.channel in lw_store_funnel_outcomes. LW_ERR_INVALID
 * from a backend without it (the caller then walks lw_store_shared_decisions). */
lw_status lw_store_funnel_channels(lw_store *s, const char *site, lw_funnel_channel **rows, size_t *n, char *err,
                                   size_t errlen);

#define LW_FAIRNESS_VALUES LW_MAX_ATTR_VALUES

/* Which segments the fairness audit compares: the attribute ("" none) and its values. */
typedef struct {
  char attribute[LW_NAME_LEN + 1];
  int n;
  char values[LW_FAIRNESS_VALUES][LW_NAME_LEN + 1];
} lw_fairness_spec;

/* One segment's counts over the decisions (t >= 0) that belong to it, as the audit counts them
 * (console_fairness.c): decision points, prompts, prompts shared, and prompts whose shares
 * brought a referee conversion. */
typedef struct {
  int64_t decisions, prompts, shares, conversions;
} lw_fairness_counts;

/* Keep the fairness rollups for spec from now on (a write: before the writer starts). The same
 * spec as kept costs one comparison; another is recomputed from the stored decisions in one
 * transaction. LW_ERR_INVALID from a backend without them. */
lw_status lw_store_set_fairness(lw_store *s, const lw_fairness_spec *spec, char *err, size_t errlen);
/* out[i] for spec->values[i], from the rollups, when they are kept for exactly spec;
 * LW_ERR_INVALID otherwise (another spec, or a backend without them: the caller walks). */
lw_status lw_store_fairness(lw_store *s, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                            char *err, size_t errlen);

/* As lw_store_decisions, only the decisions with a share or copy stored (d->shared is 1 for
 * each), each with its referee outcomes. LW_ERR_INVALID from a backend without it. */
lw_status lw_store_shared_decisions(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                                    size_t errlen);

/* The number of decisions in the range (for progress). */
lw_status lw_store_count_decisions(lw_store *s, const lw_store_range *r, uint64_t *n, char *err,
                                   size_t errlen);

/* ---------------------------------------------------------------- webhook deliveries (schema 8)
 * Every conversion that counts for rewards (counted on arrival, or approved after review) gets
 * one delivery row, keyed by an idempotency key "<site>:<report id>", which the webhook sender
 * (src/ingest/webhook.c) posts to the host. A sender claims one due row at a time with a lease
 * (its owner name and an expiry): another replica's sender skips a leased row, so a row is
 * posted by one replica at a time, and a delivered one never again. All but lw_store_deliveries
 * are writes (the writer thread's). */

typedef struct {
  int64_t id;
  int64_t report;            /* the referee report (lw_referee_report.id) it tells of */
  char key[80];              /* the idempotency key */
  char state[12];            /* "pending", "delivered", "failed" */
  int64_t attempts;
  int64_t created_at, next_at, delivered_at; /* ms, server clock (delivered_at 0: not yet) */
  int64_t last_status;       /* the receiver's last HTTP status, 0: none (no answer) */
  char last_error[128];
  char resent_by[LW_ACTOR_LEN + 1]; /* lw_store_deliveries only: who last sent it again ("" never) */
  int64_t resent_at;         /* and when (0: never) */
  char *body;                /* lw_store_delivery_claim only: the JSON to post; the caller free()s */
} lw_delivery;

/* Add a pending delivery, due now_ms, for every counting conversion of site without one.
 * *added: how many. */
lw_status lw_store_deliveries_enqueue(lw_store *s, const char *site, int64_t now_ms, int64_t *added,
                                      char *err, size_t errlen);
/* Claim the site's most overdue pending delivery not leased at now_ms: lease it to owner until
 * now_ms + lease_ms, count the attempt and fill *out (body included). *found 0: none due. */
lw_status lw_store_delivery_claim(lw_store *s, const char *site, const char *owner, int64_t now_ms,
                                  int64_t lease_ms, lw_delivery *out, int *found, char *err,
                                  size_t errlen);
/* Record the attempt of a claimed delivery (only while owner holds its lease; *kept 0 when it
 * no longer does): state "delivered" (delivered_at now_ms), "pending" again at next_at, or
 * "failed"; the receiver's status (0: no answer) and error text. */
lw_status lw_store_delivery_finish(lw_store *s, int64_t id, const char *owner, const char *state,
                                   int64_t next_at, int64_t status, const char *error,
                                   int64_t now_ms, int *kept, char *err, size_t errlen);
/* Make a failed delivery of site pending again, due now_ms, with a fresh retry window, by who
 * (recorded as a console action in the same transaction). *result: 0 done, 1 no such delivery
 * on the site, 2 not failed (nothing recorded). */
lw_status lw_store_delivery_resend(lw_store *s, const char *site, int64_t id, const char *who, int64_t now_ms,
                                   int *result, char *err, size_t errlen);
/* The site's deliveries, newest first, at most max (bodies not filled). *rows: free(). */
lw_status lw_store_deliveries(lw_store *s, const char *site, size_t max, lw_delivery **rows,
                              size_t *n, char *err, size_t errlen);

/* ---------------------------------------------------------------- approval requests (schema 9)
 * Every approval-request record (wire v3) a batch carries becomes one row of the approvals
 * table, written with its batch (lw_store_write; the first of a site's decision id wins), with
 * the SHA-256 of the install's approval key (lw_store_approval_key_hash), never the key. A
 * console user approves or declines it (lw_store_approval_answer, a write); the device asks for
 * its answers with the key (lw_store_approval_check, a read). A request expires `days` days
 * after the server received it: from then on it reads as "expired" (whatever was answered) and
 * is never answered again. An approval-answer record updates the device's side of its row.
 * Forgetting an install deletes its rows; retention deletes rows received before its cut. */

#define LW_APPROVAL_HASH_LEN 64 /* lowercase hex of SHA-256 */

typedef struct {
  int64_t id;
  char decision[LW_DECISION_ID_LEN + 1];
  char install[LW_INSTALL_LEN + 1];
  char action[LW_NAME_LEN + 1];     /* the variant held */
  char segment[LW_NAME_LEN + 1];
  char reason[LW_REASON_CHARS * 4 + 1];
  char attrs[LW_APPROVAL_ATTRS * (2 * LW_NAME_LEN + 6) + 3]; /* the attrs as a JSON object */
  char state[12];                   /* lw_answer_name: pending, approved, declined or expired */
  int64_t t, received_at, expires_at, answered_at; /* ms; answered_at 0: not answered */
  char answered_by[LW_ACTOR_LEN + 1]; /* the console user, "" when not answered */
  char device_answer[12];           /* the device's approval-answer record, "" before one */
  int64_t device_at;
} lw_approval;

/* The hex SHA-256 of an approval key (what the store keeps and compares). */
void lw_store_approval_key_hash(const char *key, char out[LW_APPROVAL_HASH_LEN + 1]);
/* An approval request's attrs as the JSON object the store keeps ({"plan":"enterprise"}). */
void lw_store_approval_attrs(const lw_event *e, char *out, size_t cap);
/* The site's requests, newest first, at most max, states as of now_ms. *rows: free(). */
lw_status lw_store_approvals(lw_store *s, const char *site, int64_t now_ms, int days, size_t max,
                             lw_approval **rows, size_t *n, char *err, size_t errlen);
/* A console user's answer to request id: approve 1 or 0, by who at now_ms, also recorded as a
 * console action in the same transaction. *result: 0 done, 1 no such request on the site, 2
 * already answered, 3 expired. */
lw_status lw_store_approval_answer(lw_store *s, const char *site, int64_t id, int approve, const char *who,
                                   int64_t now_ms, int days, int *result, char *err, size_t errlen);
/* The requests of install on site made with approval key key (the hash compared), newest first,
 * at most max, states as of now_ms. A wrong key reads as no requests. *rows: free(). */
lw_status lw_store_approval_check(lw_store *s, const char *site, const char *install, const char *key,
                                  int64_t now_ms, int days, size_t max, lw_approval **rows, size_t *n,
                                  char *err, size_t errlen);

/* ---------------------------------------------------------------- console actions (schema 13; PostgreSQL 5)
 * Every write a person asks for through the console (or the review API) is one row of
 * console_actions, written in the transaction of the change itself: who, what, when and on
 * what. So any replica on the store answers who did what (GET /console/api/actions), and an
 * action is recorded exactly when its change is (a refused or repeated one is neither). The
 * rows name a console user and a row id of the site, nothing of a device: forgetting an install
 * leaves them; retention deletes those older than its cut. The action names are the "console
 * action" log line's (LW_ACTIONS: one table for both). */


/* X(enum, name, target): the action and the kind of row it acts on. */
#define LW_ACTIONS(X)                              \
  X(APPROVE, "approve", "review")                  \
  X(REJECT, "reject", "review")                    \
  X(RESEND, "resend", "delivery")                  \
  X(APPROVE_REQUEST, "approve request", "approval") \
  X(DECLINE_REQUEST, "decline request", "approval")
#define LW_ACTION_ENUM_(e, name, target) LW_ACTION_##e,
typedef enum { LW_ACTIONS(LW_ACTION_ENUM_) LW_ACTION_COUNT } lw_action;
#undef LW_ACTION_ENUM_
const char *lw_action_name(lw_action a);
const char *lw_action_target(lw_action a);

typedef struct {
  int64_t id;
  int64_t at;                  /* ms, server clock */
  char who[LW_ACTOR_LEN + 1];
  char action[24];             /* lw_action_name */
  char target[12];             /* lw_action_target: "review", "delivery", "approval" */
  int64_t ref;                 /* the row acted on: a referee report, a delivery, an approval request */
} lw_console_action;

/* The site's console actions, newest first, at most max. *rows: free(). */
lw_status lw_store_console_actions(lw_store *s, const char *site, size_t max, lw_console_action **rows, size_t *n,
                                   char *err, size_t errlen);

/* Close the store (checkpointing what a backend needs to). NULL is fine. */
void lw_store_free(lw_store *s);

/* ---------------------------------------------------------------- backends */

/* Open (creating or migrating) a SQLite database at path, in WAL mode with synchronous=FULL,
 * after a quick_check of every page (a damaged file is refused, LW_ERR_IO, "integrity check
 * failed: ..."). Reads run on a small pool of read connections, so one slow read never holds
 * up another, and the ping on a connection of its own. On LW_OK *out is a store the caller
 * frees with lw_store_free. */
lw_status lw_store_open_sqlite(const char *path, lw_store **out, char *err, size_t errlen);

/* What the SQLite backend's last lw_store_purge_step read in order rather than by key: the
 * rows of tables and indexes its statements stepped over in full scans, summed
 * (SQLITE_STMTSTATUS_FULLSCAN_STEP); -1 for another backend. For the tests: a step that deletes
 * the same batches reads as much of a big store as of a small one (a step that reads the
 * whole store takes seconds at 10M events, README "Measured figures" retention_s_*). */
int64_t lw_store_sqlite_purge_scanned(const lw_store *s);

/* What the SQLite backend's last lw_store_write cost, for the tests: *steps the virtual-machine
 * steps its prepared statements ran (SQLITE_STMTSTATUS_VM_STEP: a row looked at, sorted or
 * written is a few steps; a lookup by key is one, whatever the size of the table), *reprepares
 * how many times SQLite had to prepare one of them again (SQLITE_STMTSTATUS_REPREPARE). -1 (both
 * left alone) for another backend. A write costs what it writes, not what the store already holds
 * of the same decision (a writer whose work grew with a decision's history kept the ingest at a
 * fraction of its rate on a long run), and its statements stay prepared (a bound value the
 * planner had looked at made SQLite re-plan on every run). */
int lw_store_sqlite_write_work(const lw_store *s, int64_t *steps, int64_t *reprepares);

/* Test seam of the SQLite backend: the nth statement of its next write transaction (1: BEGIN,
 * then each INSERT in order, the last one COMMIT) fails as if SQLite had refused it, so the
 * failure path (ROLLBACK, nothing kept) can be tested. 0 disarms. Safe to call from another
 * thread than the writer's. */
void lw_store_sqlite_fail_step(lw_store *s, unsigned nth);

/* ---------------------------------------------------------------- fault injection (tests) */

/* A backend that wraps inner (and owns it from this call on, also on failure) and fails the
 * calls a test arms. The server runs over it unchanged (lw_ingest_server_start_with_store). */
typedef enum {
  LW_FAULT_OP_WRITE,
  LW_FAULT_OP_FORGET,
  LW_FAULT_OP_PURGE,
  LW_FAULT_OP_STATS,
  LW_FAULT_OP_PING,
  LW_FAULT_OP_REFERRAL,
  LW_FAULT_OP_ATTRIBUTIONS,
  LW_FAULT_OP_DECISIONS, /* opening a read cursor (decisions or referrers) */
  LW_FAULT_OP_COUNT_DECISIONS,
  LW_FAULT_OP_REFEREE, /* lw_store_referee */
  LW_FAULT_OP_COUNT
} lw_fault_op;

typedef enum {
  LW_FAULT_BEFORE, /* fail without reaching the real store, like a BEGIN that fails */
  LW_FAULT_AFTER   /* do the call, then report failure, like a COMMIT whose answer was lost */
} lw_fault_when;

lw_status lw_store_open_fault(lw_store *inner, lw_store **out, char *err, size_t errlen);

/* Fail the nth next call of op (1: the very next one), once; 0 disarms. Any thread. */
void lw_store_fault_arm(lw_store *fault_store, lw_fault_op op, unsigned nth, lw_fault_when when);

/* How many calls of op have failed by injection. */
unsigned lw_store_fault_injected(lw_store *fault_store, lw_fault_op op);

/* The wrapped store (still owned by the fault store). */
lw_store *lw_store_fault_inner(lw_store *fault_store);

/* Open an existing SQLite store read-only, for the learning tools: nothing is created or
 * migrated, and a schema version other than LW_STORE_SCHEMA_VERSION is refused with
 * LW_ERR_VERSION and a message saying which (an older file is migrated by opening it once with
 * loopwise-ingest of this version; a newer one needs newer tools). Writes through it fail
 * with LW_ERR_INVALID. */
lw_status lw_store_open_sqlite_read(const char *path, lw_store **out, char *err, size_t errlen);

/* ---------------------------------------------------------------- PostgreSQL (store_pg.c) */

/* The PostgreSQL schema's own version (its lw_schema table); older databases are migrated on
 * open, once however many replicas start together (an advisory lock). */
#define LW_STORE_PG_SCHEMA_VERSION 7

/* Open (creating or migrating) the store in the PostgreSQL database url names (a libpq URI,
 * postgres:// or postgresql://). Every connection runs with synchronous_commit = on. On LW_OK
 * *out is a store the caller frees with lw_store_free. */
lw_status lw_store_open_pg(const char *url, lw_store **out, char *err, size_t errlen);
/* The same read-only, for the learning tools: a schema version other than
 * LW_STORE_PG_SCHEMA_VERSION is refused with LW_ERR_VERSION; writes fail with LW_ERR_INVALID. */
lw_status lw_store_open_pg_read(const char *url, lw_store **out, char *err, size_t errlen);

/* ---------------------------------------------------------------- choosing a backend */

/* 1 when where is a PostgreSQL connection string (postgres:// or postgresql://), else 0 (a
 * SQLite file). */
int lw_store_is_pg(const char *where);
/* where as it may be logged: a connection string's password (user:PASSWORD@ or password=) as
 * "***"; a file path unchanged. */
void lw_store_describe(const char *where, char *out, size_t cap);
/* Open the store where names: PostgreSQL for a connection string, else the SQLite file
 * (lw_store_open_sqlite). */
lw_status lw_store_open(const char *where, lw_store **out, char *err, size_t errlen);
/* The same read-only (lw_store_open_pg_read or lw_store_open_sqlite_read). */
lw_status lw_store_open_read(const char *where, lw_store **out, char *err, size_t errlen);

/* A cursor of any backend starts with this table. */
struct lw_store_cursor {
  int (*next)(lw_store_cursor *c, lw_store_decision *d, char *err, size_t errlen);
  void (*free)(lw_store_cursor *c);
};

/* What a backend implements. A backend's handle starts with a lw_store whose backend field
 * points at its table. */
typedef struct {
  const char *name;
  lw_status (*write)(lw_store *s, lw_store_item *const *items, size_t n, char *err, size_t errlen);
  lw_status (*forget)(lw_store *s, lw_forget_item *const *items, size_t n, char *err,
                      size_t errlen);
  lw_status (*purge)(lw_store *s, int64_t before_ms, int64_t *deleted, char *err, size_t errlen);
  lw_status (*stats)(lw_store *s, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                     char *err, size_t errlen);
  lw_status (*ping)(lw_store *s, char *err, size_t errlen);
  lw_status (*referral)(lw_store *s, const char *site, const char *code, const char *install,
                       lw_referral *out, char *err, size_t errlen);
  lw_status (*attributions)(lw_store *s, const char *site, int64_t since_ms,
                            lw_attribution **rows, size_t *n, char *err, size_t errlen);
  void (*close)(lw_store *s);
  /* reading decisions (above); referrers selects lw_store_referrers' rows */
  lw_status (*decisions)(lw_store *s, const lw_store_range *r, int referrers, int attribution_days,
                         lw_store_cursor **out, char *err, size_t errlen);
  lw_status (*count_decisions)(lw_store *s, const lw_store_range *r, uint64_t *n, char *err,
                               size_t errlen);
  /* referees (above) */
  lw_status (*site_salt)(lw_store *s, const char *site, const uint8_t fresh[LW_SALT_LEN],
                         uint8_t out[LW_SALT_LEN], char *err, size_t errlen);
  lw_status (*referee)(lw_store *s, lw_referee_report *r, char *err, size_t errlen);
  lw_status (*register_referrer)(lw_store *s, const char *site, const char *code,
                                 const uint8_t referrer[LW_REFEREE_HASH_LEN], int *conflict,
                                 char *err, size_t errlen);
  lw_status (*review)(lw_store *s, const char *site, int64_t id, int approve, const char *who, int64_t now_ms,
                      int *result, char *err, size_t errlen);
  lw_status (*reviews)(lw_store *s, const char *site, size_t max, lw_review **rows, size_t *n,
                       char *err, size_t errlen);
  /* webhook deliveries (above); NULL in a backend without them (the calls then fail) */
  lw_status (*deliveries_enqueue)(lw_store *s, const char *site, int64_t now_ms, int64_t *added,
                                  char *err, size_t errlen);
  lw_status (*delivery_claim)(lw_store *s, const char *site, const char *owner, int64_t now_ms,
                              int64_t lease_ms, lw_delivery *out, int *found, char *err,
                              size_t errlen);
  lw_status (*delivery_finish)(lw_store *s, int64_t id, const char *owner, const char *state,
                               int64_t next_at, int64_t status, const char *error, int64_t now_ms,
                               int *kept, char *err, size_t errlen);
  lw_status (*delivery_resend)(lw_store *s, const char *site, int64_t id, const char *who, int64_t now_ms,
                               int *result, char *err, size_t errlen);
  lw_status (*deliveries)(lw_store *s, const char *site, size_t max, lw_delivery **rows,
                          size_t *n, char *err, size_t errlen);
  /* lw_store_stats_walk (the stats without the rollups) */
  lw_status (*stats_walk)(lw_store *s, const char *site, const lw_stats_bounds *bounds, lw_stats *out,
                          char *err, size_t errlen);
  /* the console's rollups (above); NULL in a backend without them */
  lw_status (*funnel_days)(lw_store *s, const char *site, lw_funnel_day **rows, size_t *n, char *err,
                           size_t errlen);
  lw_status (*shared_decisions)(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                                size_t errlen);
  /* approval requests (above); NULL in a backend without them (the calls then fail) */
  lw_status (*approvals)(lw_store *s, const char *site, int64_t now_ms, int days, size_t max,
                         lw_approval **rows, size_t *n, char *err, size_t errlen);
  lw_status (*approval_answer)(lw_store *s, const char *site, int64_t id, int approve, const char *who,
                               int64_t now_ms, int days, int *result, char *err, size_t errlen);
  lw_status (*approval_check)(lw_store *s, const char *site, const char *install, const char *key_hash,
                              int64_t now_ms, int days, size_t max, lw_approval **rows, size_t *n,
                              char *err, size_t errlen);
  /* the console's funnel rollups (above); NULL in a backend without them (the console walks) */
  lw_status (*funnel_outcomes)(lw_store *s, const char *site, lw_funnel_day **days, size_t *n_days,
                               lw_funnel_value **values, size_t *n_values, char *err, size_t errlen);
  /* the channels and the fairness segments (above); NULL in a backend without them */
  lw_status (*funnel_channels)(lw_store *s, const char *site, lw_funnel_channel **rows, size_t *n, char *err,
                               size_t errlen);
  lw_status (*set_fairness)(lw_store *s, const lw_fairness_spec *spec, char *err, size_t errlen);
  lw_status (*fairness)(lw_store *s, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                        char *err, size_t errlen);
  /* console actions (above); NULL in a backend without them (the call then fails) */
  lw_status (*console_actions)(lw_store *s, const char *site, size_t max, lw_console_action **rows, size_t *n,
                               char *err, size_t errlen);
  /* lw_store_purge_step; NULL: the backend's purge does it all in one call */
  lw_status (*purge_step)(lw_store *s, int64_t before_ms, int64_t max_events, int64_t *deleted, int *more,
                          char *err, size_t errlen);
} lw_store_backend;

struct lw_store {
  const lw_store_backend *backend;
};

#ifdef __cplusplus
}
#endif
#endif
