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

/* ---- the checks: each returns 1 when it blocks, with its reason in sb ----------------- */

typedef struct {
  const lw_engine *e;
  int64_t now;
  int tz;
  lw_sbuf *sb;
} ctx_t;

static int no_consent(const ctx_t *c) {
  if (consent_allows(c->e)) return 0;
  lw_sb_str(c->sb, "no consent");
  return 1;
}

static int privacy_signal(const ctx_t *c) {
  const lw_engine *e = c->e;
  const lw_config *cfg = &e->cfg;
  if (e->guard.consent == LW_CONSENT_GIVEN || !((cfg->respect_gpc && e->gpc) || (cfg->respect_dnt && e->dnt)))
    return 0;
  lw_sb_str(c->sb, cfg->respect_gpc && e->gpc ? "Global Privacy Control" : "Do Not Track");
  return 1;
}

static int history_unknown(const ctx_t *c) {
  const lw_guard *g = &c->e->guard;
  if (c->now >= g->history_unknown_until_ms) return 0;
  lw_sb_str(c->sb, "history unknown, ");
  sb_left(c->sb, g->history_unknown_until_ms - c->now);
  return 1;
}

static int open_prompt(const ctx_t *c) {
  const lw_guard *g = &c->e->guard;
  if (!g->open_id[0] || c->now - g->open_since_ms >= LW_OPEN_PROMPT_TTL_MS) return 0;
  lw_sb_str(c->sb, "a prompt is already open");
  return 1;
}

static int cooldown(const ctx_t *c) {
  const lw_guard *g = &c->e->guard;
  if (g->dismiss_total == 0) return 0;
  int64_t until = g->last_dismiss_ms + lw_cooldown_ms(&c->e->cfg, g->dismiss_total);
  if (c->now >= until) return 0;
  lw_sb_str(c->sb, "cooldown ");
  sb_left(c->sb, until - c->now);
  return 1;
}

static int cap(const ctx_t *c) {
  const lw_config *cfg = &c->e->cfg;
  const lw_guard *g = &c->e->guard;
  uint32_t in_window = 0;
  int64_t window = (int64_t)cfg->cap_window_days * LW_DAY_MS;
  for (int i = 0; i < LW_SHOWN_RING; i++)
    if (g->shown_ms[i] && c->now - g->shown_ms[i] < window) in_window++;
  if (in_window < cfg->cap_max_prompts) return 0;
  lw_sb_str(c->sb, "frequency cap ");
  lw_sb_u64(c->sb, cfg->cap_max_prompts);
  lw_sb_char(c->sb, '/');
  lw_sb_u64(c->sb, cfg->cap_window_days);
  lw_sb_char(c->sb, 'd');
  return 1;
}

static int gap(const ctx_t *c) {
  const lw_guard *g = &c->e->guard;
  int64_t until = g->shown_ms[0] + (int64_t)c->e->cfg.cap_min_gap_hours * LW_HOUR_MS;
  if (!g->shown_ms[0] || c->now >= until) return 0;
  lw_sb_str(c->sb, "min gap ");
  sb_left(c->sb, until - c->now);
  return 1;
}

static int quiet_hours(const ctx_t *c) {
  const lw_config *cfg = &c->e->cfg;
  if (cfg->quiet_start_hour < 0) return 0;
  int h = lw_local_time_of(c->now, c->tz).hour, s = cfg->quiet_start_hour, en = cfg->quiet_end_hour;
  if (!(s < en ? (h >= s && h < en) : (h >= s || h < en))) return 0;
  lw_sb_str(c->sb, "quiet hours");
  return 1;
}

static int session_age(const ctx_t *c) {
  const lw_config *cfg = &c->e->cfg;
  int64_t age = c->now - c->e->beh.session_start_ms, min_age = (int64_t)cfg->min_session_s * 1000;
  if (age >= min_age) return 0;
  lw_sb_str(c->sb, "session ");
  lw_sb_i64(c->sb, age / 1000);
  lw_sb_str(c->sb, "s old, needs ");
  lw_sb_u64(c->sb, cfg->min_session_s);
  lw_sb_char(c->sb, 's');
  return 1;
}

static int busy(const ctx_t *c) {
  if (!c->e->busy) return 0;
  lw_sb_str(c->sb, "host busy");
  return 1;
}

static const struct {
  lw_why why;
  int (*blocks)(const ctx_t *c);
} k_constraints[] = {
    {LW_WHY_CONSENT, no_consent},   {LW_WHY_PRIVACY, privacy_signal}, {LW_WHY_HISTORY_UNKNOWN, history_unknown},
    {LW_WHY_OPEN_PROMPT, open_prompt}, {LW_WHY_COOLDOWN, cooldown},   {LW_WHY_CAP, cap},
    {LW_WHY_GAP, gap},              {LW_WHY_QUIET_HOURS, quiet_hours}, {LW_WHY_SESSION_AGE, session_age},
    {LW_WHY_BUSY, busy}};

int lw_engine_blocked(const lw_engine *e, int64_t now_ms, int tz_offset_min, lw_decision *d) {
  lw_sbuf sb;
  lw_sb_init(&sb, d->reason, sizeof d->reason);
  lw_sb_str(&sb, "suppressed: ");
  ctx_t c = {e, now_ms, tz_offset_min, &sb};
  for (size_t i = 0; i < sizeof k_constraints / sizeof k_constraints[0]; i++)
    if (k_constraints[i].blocks(&c)) {
      d->why = k_constraints[i].why;
      return 1;
    }
  return 0;
}
