/* batch_equiv.h: does lw_batch_parse answer exactly as the oracle (batch_cjson.c) does? Shared by
 * tests/ingest/test_batch_equiv.c and the fuzz target tests/fuzz/fuzz_batch_diff.c. */
#ifndef LW_TEST_BATCH_EQUIV_H
#define LW_TEST_BATCH_EQUIV_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "batch_cjson.h"

/* why: what differs, cut to cap bytes (a diagnostic, so cutting it is fine); always 0. */
__attribute__((format(printf, 3, 4))) static int equiv_why(char *why, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return 0;
}

static int equiv_event(const lw_event *a, const lw_event *b, char *why, size_t cap) {
#define EQ_STR(f) if (strcmp(a->f, b->f) != 0) return equiv_why(why, cap, #f ": '%s' vs '%s'", a->f, b->f)
#define EQ_INT(f) if (a->f != b->f) return equiv_why(why, cap, #f ": %lld vs %lld", (long long)a->f, (long long)b->f)
  EQ_INT(kind); EQ_INT(t); EQ_STR(install); EQ_STR(decision); EQ_STR(action); EQ_INT(has_p);
  if (a->has_p && memcmp(&a->p, &b->p, sizeof a->p) != 0) return equiv_why(why, cap, "p: %.17g vs %.17g", a->p, b->p);
  EQ_STR(mode); EQ_STR(reason); EQ_STR(segment); EQ_STR(model); EQ_STR(code); EQ_STR(token); EQ_STR(channel);
  EQ_INT(skewed); EQ_INT(has_x); EQ_INT(n_x); EQ_STR(key); EQ_STR(answer); EQ_INT(n_attrs);
  for (int i = 0; i < a->n_attrs; i++) {
    EQ_STR(attr_names[i]);
    EQ_STR(attr_values[i]);
  }
  for (int i = 0; i < a->n_x; i++)
    if (a->x[i].hash != b->x[i].hash || a->x[i].q != b->x[i].q) return equiv_why(why, cap, "x[%d]", i);
#undef EQ_STR
#undef EQ_INT
  return 1;
}

/* 1 when both readers give the same status, the same field and message on refusal and the
 * same batch on acceptance; else 0 with why (cap bytes) saying what differs. */
static int batch_equiv(const char *body, size_t len, const lw_batch_limits *lim, int64_t now_ms, char *why,
                       size_t cap) {
  lw_batch *a = NULL, *b = NULL;
  lw_batch_error ea, eb;
  lw_status sa = lw_batch_parse(body, len, lim, now_ms, &a, &ea);
  lw_status sb = lw_batch_parse_cjson(body, len, lim, now_ms, &b, &eb);
  int ok = 1;
  if (sa != sb) {
    equiv_why(why, cap, "status %d vs oracle %d (%s: %s | %s: %s)", (int)sa, (int)sb, ea.field, ea.message,
             eb.field, eb.message);
    ok = 0;
  } else if (sa != LW_OK) {
    if (strcmp(ea.field, eb.field) != 0 || strcmp(ea.message, eb.message) != 0) {
      equiv_why(why, cap, "refused as '%s: %s', oracle '%s: %s'", ea.field, ea.message, eb.field, eb.message);
      ok = 0;
    }
  } else if (a->v != b->v || strcmp(a->batch_id, b->batch_id) != 0 || strcmp(a->write_key, b->write_key) != 0 ||
             a->sent_at != b->sent_at || a->n_events != b->n_events) {
    snprintf(why, cap, "envelope differs");
    ok = 0;
  } else {
    for (size_t i = 0; ok && i < a->n_events; i++) {
      char what[200];
      if (!equiv_event(&a->events[i], &b->events[i], what, sizeof what)) {
        equiv_why(why, cap, "events[%zu].%s", i, what);
        ok = 0;
      }
    }
  }
  if (sa == LW_OK) lw_batch_free(a);
  if (sb == LW_OK) lw_batch_free_cjson(b);
  return ok;
}

#endif
