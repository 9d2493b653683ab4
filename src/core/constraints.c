/* constraints.c: the hard constraints, as a table walked in order.
 *
 * Each row is a check and the reason it gives. The first check that blocks makes the
 * decision "none" with probability 1 and writes its reason after "suppressed: ". The order
 * is the README's (consent, privacy signals, lost history, an open prompt, cooldown,
 * frequency cap, minimum gap, quiet hours, session age, busy): a user who said no is told
 * "no consent" even when a cap would also have blocked. */
#include "engine_internal.h"
#include "sbuf.h"

/* "5d", "3h" or "12m": the time left, rounded up to the largest whole unit. */
static void sb_left(lw_sbuf *sb, int64_t ms) {
  int64_t unit = ms >= LW_DAY_MS ? LW_DAY_MS : ms >= LW_HOUR_MS ? LW_HOUR_MS : LW_MINUTE_MS;
  int64_t n = (ms + unit - 1) / unit;
  lw_sb_i64(sb, n < 1 ? 1 : n);
  lw_sb_str(sb, unit == LW_DAY_MS ? "d left" : unit == LW_HOUR_MS ? "h left" : "m left");
}

static int consent_allows(const lw_engine *e) {
  switch (e->guard.consent) {
    case LW_CONSENT_GIVEN: return 1;
    case LW_CONSENT_REFUSED: return 0;
    case LW_CONSENT_UNKNOWN: return !e->cfg.consent_required && e->cfg.consent_default;
    default: return e->cfg.consent_default;
  }
}

/* Whether records may be made (and what is queued sent): the user said yes, or nothing says
 * no: consent not required, not refused, assumed by default, and no respected privacy signal.
 * The same rules as the consent and privacy constraints below, with one more: where consent
 * is required, only a given consent collects. */
int lw_engine_collects(const lw_engine *e) {
  const lw_config *cfg = &e->cfg;
  if (e->guard.consent == LW_CONSENT_GIVEN) return 1;
  return !cfg->consent_required && consent_allows(e) && !(cfg->respect_gpc && e->gpc) &&
         !(cfg->respect_dnt && e->dnt);
}

int64_t lw_cooldown_ms(const lw_config *cfg, uint32_t dismissals) {
  int64_t d = cfg->cooldown_days;
  for (uint32_t i = 1; i < dismissals && d < cfg->cooldown_max_days; i++) d *= cfg->cooldown_growth;
  if (d > cfg->cooldown_max_days) d = cfg->cooldown_max_days;
  return d * LW_DAY_MS;
}

lw_local_time lw_local_time_of(int64_t now_ms, int tz_offset_min) {
  int64_t local = now_ms + (int64_t)tz_offset_min * LW_MINUTE_MS;
  int64_t day = local >= 0 ? local / LW_DAY_MS : (local - LW_DAY_MS + 1) / LW_DAY_MS; /* floor */
  lw_local_time lt;
  lt.hour = (int)((local - day * LW_DAY_MS) / LW_HOUR_MS);
  lt.wday = (int)(((day + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
  return lt;
}

/* ---- the table ---------------------------------------------------------------------
 * Each row: the constraint, the start of its reason, and how the reason ends. The checks
 * compute whether it blocks and the number the reason shows; one writer formats them all. */
typedef enum { END_NONE, END_LEFT, END_CAP, END_SESSION } reason_end;

static const struct {
  lw_why why;
  const char *reason;
  reason_end end;
} k_constraints[] = {
    {LW_WHY_CONSENT, "no consent", END_NONE},
    {LW_WHY_PRIVACY, NULL, END_NONE}, /* names the signal: Global Privacy Control or Do Not Track */
    {LW_WHY_HISTORY_UNKNOWN, "history unknown, ", END_LEFT},
    {LW_WHY_OPEN_PROMPT, "a prompt is already open", END_NONE},
    {LW_WHY_COOLDOWN, "cooldown ", END_LEFT},
    {LW_WHY_CAP, "frequency cap ", END_CAP},
    {LW_WHY_GAP, "min gap ", END_LEFT},
    {LW_WHY_QUIET_HOURS, "quiet hours", END_NONE},
    {LW_WHY_SESSION_AGE, "session ", END_SESSION},
    {LW_WHY_BUSY, "host busy", END_NONE},
};

/* 1 when constraint `why` blocks now; *n gets the number its reason shows (time left in ms,
 * the session's age in ms). */
static int blocks(const lw_engine *e, lw_why why, int64_t now, int tz, int64_t *n) {
  const lw_config *cfg = &e->cfg;
  const lw_guard *g = &e->guard;
  switch (why) {
    case LW_WHY_CONSENT: return !consent_allows(e);
    case LW_WHY_PRIVACY:
      return g->consent != LW_CONSENT_GIVEN && ((cfg->respect_gpc && e->gpc) || (cfg->respect_dnt && e->dnt));
    case LW_WHY_HISTORY_UNKNOWN: return (*n = g->history_unknown_until_ms - now) > 0;
    case LW_WHY_OPEN_PROMPT: return g->open_id[0] && now - g->open_since_ms < LW_OPEN_PROMPT_TTL_MS;
    case LW_WHY_COOLDOWN:
      return g->dismiss_total > 0 && (*n = g->last_dismiss_ms + lw_cooldown_ms(cfg, g->dismiss_total) - now) > 0;
    case LW_WHY_CAP: {
      uint32_t in_window = 0;
      int64_t window = (int64_t)cfg->cap_window_days * LW_DAY_MS;
      for (int i = 0; i < LW_SHOWN_RING; i++)
        if (g->shown_ms[i] && now - g->shown_ms[i] < window) in_window++;
      return in_window >= cfg->cap_max_prompts;
    }
    case LW_WHY_GAP:
      return g->shown_ms[0] && (*n = g->shown_ms[0] + (int64_t)cfg->cap_min_gap_hours * LW_HOUR_MS - now) > 0;
    case LW_WHY_QUIET_HOURS: {
      if (cfg->quiet_start_hour < 0) return 0;
      int h = lw_local_time_of(now, tz).hour, s = cfg->quiet_start_hour, en = cfg->quiet_end_hour;
      return s < en ? (h >= s && h < en) : (h >= s || h < en);
    }
    case LW_WHY_SESSION_AGE: return (*n = now - e->beh.session_start_ms) < (int64_t)cfg->min_session_s * 1000;
    case LW_WHY_BUSY: return e->busy;
    default: return 0;
  }
}

int lw_engine_blocked(const lw_engine *e, int64_t now_ms, int tz_offset_min, lw_decision *d) {
  const lw_config *cfg = &e->cfg;
  for (size_t i = 0; i < sizeof k_constraints / sizeof k_constraints[0]; i++) {
    int64_t n = 0;
    if (!blocks(e, k_constraints[i].why, now_ms, tz_offset_min, &n)) continue;
    lw_sbuf sb;
    lw_sb_init(&sb, d->reason, sizeof d->reason);
    lw_sb_str(&sb, "suppressed: ");
    lw_sb_str(&sb, k_constraints[i].reason ? k_constraints[i].reason
                   : cfg->respect_gpc && e->gpc ? "Global Privacy Control" : "Do Not Track");
    switch (k_constraints[i].end) {
      case END_LEFT: sb_left(&sb, n); break;
      case END_CAP:
        lw_sb_u64(&sb, cfg->cap_max_prompts);
        lw_sb_char(&sb, '/');
        lw_sb_u64(&sb, cfg->cap_window_days);
        lw_sb_char(&sb, 'd');
        break;
      case END_SESSION:
        lw_sb_i64(&sb, n / 1000);
        lw_sb_str(&sb, "s old, needs ");
        lw_sb_u64(&sb, cfg->min_session_s);
        lw_sb_char(&sb, 's');
        break;
      case END_NONE: break;
    }
    d->why = k_constraints[i].why;
    return 1;
  }
  return 0;
}
