/* store_read.c: the backend-neutral half of the store's read API (loopwise/store.h). */
#include <stdio.h>

#include "loopwise/store.h"

lw_status lw_store_decisions(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                             size_t errlen) {
  return s->backend->decisions(s, r, 0, 0, out, err, errlen);
}
lw_status lw_store_decisions_within(lw_store *s, const lw_store_range *r, int attribution_days,
                                    lw_store_cursor **out, char *err, size_t errlen) {
  return s->backend->decisions(s, r, 0, attribution_days > 0 ? attribution_days : 0, out, err, errlen);
}
lw_status lw_store_referrers(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                             size_t errlen) {
  return s->backend->decisions(s, r, 1, 0, out, err, errlen);
}
int lw_store_next(lw_store_cursor *c, lw_store_decision *d, char *err, size_t errlen) {
  return c->next(c, d, err, errlen);
}
void lw_store_cursor_free(lw_store_cursor *c) {
  if (c) c->free(c);
}
lw_status lw_store_funnel_days(lw_store *s, const char *site, lw_funnel_day **rows, size_t *n, char *err,
                               size_t errlen) {
  *rows = NULL;
  *n = 0;
  if (!s->backend->funnel_days) {
    snprintf(err, errlen, "the %s store keeps no funnel rollups", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->funnel_days(s, site, rows, n, err, errlen);
}
lw_status lw_store_funnel_outcomes(lw_store *s, const char *site, lw_funnel_day **days, size_t *n_days,
                                   lw_funnel_value **values, size_t *n_values, char *err, size_t errlen) {
  *days = NULL;
  *values = NULL;
  *n_days = *n_values = 0;
  if (!s->backend->funnel_outcomes) {
    snprintf(err, errlen, "the %s store keeps no funnel outcomes", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->funnel_outcomes(s, site, days, n_days, values, n_values, err, errlen);
}
lw_status lw_store_shared_decisions(lw_store *s, const lw_store_range *r, lw_store_cursor **out, char *err,
                                    size_t errlen) {
  *out = NULL;
  if (!s->backend->shared_decisions) {
    snprintf(err, errlen, "the %s store cannot read the shared decisions alone", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->shared_decisions(s, r, out, err, errlen);
}
lw_status lw_store_count_decisions(lw_store *s, const lw_store_range *r, uint64_t *n, char *err,
                                   size_t errlen) {
  return s->backend->count_decisions(s, r, n, err, errlen);
}

#define LW_DAY_MS (24LL * 3600 * 1000)

int64_t lw_store_window_end(const lw_store_decision *d, int days) {
  return d->window_from + (int64_t)(days > 0 ? days : 0) * LW_DAY_MS;
}
int lw_store_window_closed(const lw_store_decision *d, int days, int64_t now_ms) {
  return now_ms >= lw_store_window_end(d, days);
}

lw_status lw_store_funnel_channels(lw_store *s, const char *site, lw_funnel_channel **rows, size_t *n, char *err,
                                   size_t errlen) {
  *rows = NULL;
  *n = 0;
  if (!s->backend->funnel_channels) {
    snprintf(err, errlen, "the %s store keeps no channel rollups", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->funnel_channels(s, site, rows, n, err, errlen);
}
lw_status lw_store_set_fairness(lw_store *s, const lw_fairness_spec *spec, char *err, size_t errlen) {
  if (!s->backend->set_fairness) {
    snprintf(err, errlen, "the %s store keeps no fairness rollups", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->set_fairness(s, spec, err, errlen);
}
lw_status lw_store_fairness(lw_store *s, const char *site, const lw_fairness_spec *spec, lw_fairness_counts *out,
                            char *err, size_t errlen) {
  if (!s->backend->fairness) {
    snprintf(err, errlen, "the %s store keeps no fairness rollups", s->backend->name);
    return LW_ERR_INVALID;
  }
  return s->backend->fairness(s, site, spec, out, err, errlen);
}
