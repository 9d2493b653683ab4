/* lw-store-decisions DB [SITE] [DAYS]: print the decisions the store's read API gives the
 * trainer (lw_store_decisions_within over the whole range, read-only), one line each:
 *   decision=<id> action=<a> shared=0|1 join=none|token|code landings=N conversions=N
 *   retained_30=N retained_90=N churned=N
 * For the browser test that a referee's retained conversion joins to its sharing decision
 * (tests/web/referee.test.mjs). Exit 1 with the store's message on a failed read. */
#include <stdio.h>
#include <stdlib.h>

#include "loopwise/store.h"

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: lw-store-decisions DB [SITE (default)] [ATTRIBUTION_DAYS (0: no window)]\n");
    return 2;
  }
  char err[256] = "";
  lw_store *s = NULL;
  if (lw_store_open_sqlite_read(argv[1], &s, err, sizeof err) != LW_OK) {
    fprintf(stderr, "lw-store-decisions: %s\n", err);
    return 1;
  }
  lw_store_range r = {argc > 2 ? argv[2] : "default", 0, 0};
  lw_store_cursor *c = NULL;
  int rc = 0;
  if (lw_store_decisions_within(s, &r, argc > 3 ? atoi(argv[3]) : 0, &c, err, sizeof err) != LW_OK) {
    fprintf(stderr, "lw-store-decisions: %s\n", err);
    lw_store_free(s);
    return 1;
  }
  static lw_store_decision d; /* large (its x): not on the stack */
  static const char *const joins[] = {"none", "token", "code"};
  int got;
  while ((got = lw_store_next(c, &d, err, sizeof err)) == 1) {
    const lw_referee_outcomes *o = &d.outcomes;
    printf("decision=%s action=%s shared=%d join=%s landings=%lld conversions=%lld retained_30=%lld "
           "retained_90=%lld churned=%lld\n",
           d.decision, d.action, d.shared, o->join >= 0 && o->join <= 2 ? joins[o->join] : "?",
           (long long)o->landings, (long long)o->conversions, (long long)o->retained_30,
           (long long)o->retained_90, (long long)o->churned);
  }
  if (got < 0) {
    fprintf(stderr, "lw-store-decisions: %s\n", err);
    rc = 1;
  }
  lw_store_cursor_free(c);
  lw_store_free(s);
  return rc;
}
