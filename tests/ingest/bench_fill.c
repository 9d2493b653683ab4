/* bench_fill.c: a big store built fast through the store interface (no HTTP), for
 * tests/bench/console.sh:
 *   bench_fill DB EVENTS          (DB: a SQLite path or a postgres:// URL, lw_store_open)
 * writes about EVENTS events to site "default" in batches of 500, 128 batches a transaction, as a
 * deployment's devices would have sent them over 90 days: each session a decision (3 variants,
 * "none" and "not_now"; rules, model and holdout; 3 personas), an impression when prompted, a
 * share or copy with the install's code for about 3% of prompts, landings from referees for
 * half of those shares and a conversion for a third of the landings. Each decision's x carries
 * its install's plan and seats (the hashed features "plan^free", ... of models/referral.json's
 * attributes, whose fairness attribute is plan, the spec the store is given); each share or copy
 * its channel and token (wire v2), which its landings carry. Prints fill_events=N and fill_s=S.
 * Deterministic (a fixed xorshift seed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loopwise/audit.h"
#include "loopwise/batch.h"
#include "loopwise/store.h"

#define BATCH_EVENTS 500
#define GROUP 128
#define DAYS 90
#define START_MS 1756684800000LL /* 2025-09-01 */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static unsigned rnd(unsigned n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (unsigned)(rng % n);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *const actions[] = {"credit_10", "credit_20", "badge", "none", "not_now"};
static const char *const modes[] = {"rules", "model", "holdout"};
static const char *const segments[] = {"new", "loyal", "at_risk"};
/* models/referral.json's attributes (plan is its fairness attribute) and the share channels */
static const lw_fairness_spec k_spec = {"plan", 4, {"free", "pro", "team", "enterprise"}};
static const char *const seats[] = {"1", "2-9", "10-49", "50-plus"};
static const char *const channels[] = {"native", "email", "linkedin", "x", "whatsapp"};
static uint32_t plan_hash[4], seats_hash[4];
#define X_PAIRS 3
static lw_feature xs[GROUP * BATCH_EVENTS][X_PAIRS]; /* the decisions' x, reused per group */
static size_t n_xs;

static lw_event *next_event(lw_batch *b) {
  lw_event *e = &b->events[b->n_events++];
  memset(e, 0, sizeof *e);
  return e;
}

/* One session of install i at time t into b (room for 5 events is the caller's). */
static void session(lw_batch *b, unsigned long long i, int64_t t, unsigned long long *decision_seq) {
  char install[LW_INSTALL_LEN + 1], decision[LW_DECISION_ID_LEN + 1];
  snprintf(install, sizeof install, "%032llx", i);
  snprintf(decision, sizeof decision, "%016llx", (*decision_seq)++);
  const char *action = actions[rnd(5)];
  const char *segment = segments[i % 3];
  lw_event *e = next_event(b);
  e->kind = LW_KIND_DECISION;
  e->t = t;
  memcpy(e->install, install, sizeof install);
  memcpy(e->decision, decision, sizeof decision);
  snprintf(e->action, sizeof e->action, "%s", action);
  e->has_p = 1;
  e->p = 0.25;
  snprintf(e->mode, sizeof e->mode, "%s", modes[rnd(3)]);
  snprintf(e->segment, sizeof e->segment, "%s", segment);
  lw_feature *x = xs[n_xs++];
  x[0] = (lw_feature){plan_hash[(i / 3) % 4], 256}, x[1] = (lw_feature){seats_hash[(i / 7) % 4], 256};
  x[2] = (lw_feature){12345u, 128};
  e->has_x = 1, e->n_x = X_PAIRS, e->x = x;
  if (!strcmp(action, "none")) return;
  e = next_event(b);
  e->kind = LW_KIND_IMPRESSION;
  e->t = t + 1;
  memcpy(e->install, install, sizeof install);
  memcpy(e->decision, decision, sizeof decision);
  snprintf(e->action, sizeof e->action, "%s", action);
  snprintf(e->segment, sizeof e->segment, "%s", segment);
  if (rnd(100) >= 3) return;
  char code[LW_CODE_LEN + 1];
  snprintf(code, sizeof code, "C%011llx", i);
  e = next_event(b);
  e->kind = rnd(2) ? LW_KIND_SHARE : LW_KIND_COPY;
  e->t = t + 2;
  memcpy(e->install, install, sizeof install);
  memcpy(e->decision, decision, sizeof decision);
  snprintf(e->action, sizeof e->action, "%s", action);
  snprintf(e->code, sizeof e->code, "%s", code);
  snprintf(e->channel, sizeof e->channel, "%s", e->kind == LW_KIND_COPY ? "copy" : channels[rnd(5)]);
  char token[LW_TOKEN_LEN + 1];
  snprintf(token, sizeof token, "%032llx", *decision_seq);
  snprintf(e->token, sizeof e->token, "%s", token);
  if (rnd(2)) return;
  e = next_event(b);
  e->kind = LW_KIND_LANDING;
  e->t = t + 60000;
  snprintf(e->install, sizeof e->install, "%032llx", 0xf000000000000000ull + *decision_seq);
  snprintf(e->code, sizeof e->code, "%s", code);
  snprintf(e->token, sizeof e->token, "%s", token);
  if (rnd(3)) return;
  lw_event *c = next_event(b);
  *c = *e;
  c->kind = LW_KIND_CONVERSION;
  c->t = t + 120000;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_fill DB EVENTS\n");
    return 2;
  }
  long long target = atoll(argv[2]);
  char errmsg[LW_ERRMSG_MAX];
  lw_store *store;
  if (lw_store_open(argv[1], &store, errmsg, sizeof errmsg) != LW_OK) {
    fprintf(stderr, "bench_fill: %s\n", errmsg);
    return 1;
  }
  for (int k = 0; k < 4; k++) {
    char name[LW_SEGMENT_NAME_LEN + 1];
    lw_audit_segment_name("plan", k_spec.values[k], name);
    plan_hash[k] = lw_fnv1a(name);
    lw_audit_segment_name("seats", seats[k], name);
    seats_hash[k] = lw_fnv1a(name);
  }
  if (lw_store_set_fairness(store, &k_spec, errmsg, sizeof errmsg) != LW_OK) { /* as the server at start */
    fprintf(stderr, "bench_fill: %s\n", errmsg);
    return 1;
  }
  lw_batch batches[GROUP];
  lw_store_item items[GROUP], *ptrs[GROUP];
  for (int k = 0; k < GROUP; k++) {
    memset(&batches[k], 0, sizeof batches[k]);
    batches[k].v = 2;
    batches[k].events = calloc(BATCH_EVENTS, sizeof(lw_event));
    if (!batches[k].events) return 1;
    ptrs[k] = &items[k];
  }
  long long written = 0, batch_seq = 0;
  unsigned long long decision_seq = 1, sessions = 0;
  /* Sessions per day so that the target spreads over DAYS days; installs come back. */
  long long per_day = target / 2 / DAYS + 1;
  double t0 = now_s();
  while (written < target) {
    n_xs = 0;
    for (int k = 0; k < GROUP; k++) {
      lw_batch *b = &batches[k];
      b->n_events = 0;
      snprintf(b->batch_id, sizeof b->batch_id, "fill-%lld", batch_seq++);
      int64_t t = START_MS + (int64_t)(sessions / (unsigned long long)per_day) * 86400000LL;
      b->sent_at = t;
      while (b->n_events + 5 <= BATCH_EVENTS) {
        session(b, 1 + sessions % 400000, t + (int64_t)(sessions % 80000000), &decision_seq);
        sessions++;
      }
      items[k] = (lw_store_item){"default", b, t + 1000, 0, 0};
      written += (long long)b->n_events;
    }
    if (lw_store_write(store, ptrs, GROUP, errmsg, sizeof errmsg) != LW_OK) {
      fprintf(stderr, "bench_fill: %s\n", errmsg);
      return 1;
    }
  }
  printf("fill_events=%lld\nfill_s=%.1f\n", written, now_s() - t0);
  for (int k = 0; k < GROUP; k++) free(batches[k].events);
  lw_store_free(store);
  return 0;
}
