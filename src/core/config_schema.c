/* config_schema.c: the config's field tables, its cross-field rules and the error-path
 * helpers, shared by the JSON reader (config.c) and the compiled format (config_bin.c). */
#include "config_schema.h"

#include "loopwise/text.h"

#include <string.h>

/* ---- path handling -------------------------------------------------------------- */

void lw_cfg_ctx_init(lw_cfg_ctx *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->err = err;
  c->errlen = errlen;
  if (errlen) err[0] = '\0';
}

size_t lw_cfg_push_key(lw_cfg_ctx *c, const char *key) {
  size_t mark = c->path_len;
  lw_sbuf sb = {c->path, sizeof c->path, c->path_len, 0};
  if (sb.len) lw_sb_char(&sb, '.');
  lw_sb_str(&sb, key);
  c->path_len = sb.len;
  return mark;
}

size_t lw_cfg_push_index(lw_cfg_ctx *c, int i) {
  size_t mark = c->path_len;
  lw_sbuf sb = {c->path, sizeof c->path, c->path_len, 0};
  lw_sb_char(&sb, '[');
  lw_sb_u64(&sb, (uint64_t)i);
  lw_sb_char(&sb, ']');
  c->path_len = sb.len;
  return mark;
}

void lw_cfg_pop(lw_cfg_ctx *c, size_t mark) {
  c->path_len = mark;
  c->path[mark] = '\0';
}

/* Whether an error at the current path is already in the list. */
static int reported_here(const lw_cfg_ctx *c) {
  const char *path = c->path_len ? c->path : "(top level)";
  size_t n = strlen(path);
  for (const char *line = c->err; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
    if (strncmp(line, path, n) == 0 && line[n] == ':') return 1;
  return 0;
}

int lw_cfg_fail_begin(lw_cfg_ctx *c, lw_sbuf *sb) {
  if (c->failed && (!c->all || reported_here(c))) return 0;
  lw_sbuf b = {c->err, c->errlen, c->n_errors ? strlen(c->err) : 0, 0};
  if (c->n_errors) lw_sb_char(&b, '\n');
  c->failed = 1;
  c->n_errors++;
  *sb = b;
  lw_sb_str(sb, c->path_len ? c->path : "(top level)");
  lw_sb_str(sb, ": ");
  return 1;
}

void lw_cfg_fail(lw_cfg_ctx *c, const char *msg) { lw_cfg_fail_named(c, NULL, msg, "", ""); }

void lw_cfg_fail_named(lw_cfg_ctx *c, const char *key, const char *prefix, const char *name,
                       const char *suffix) {
  size_t k = key ? lw_cfg_push_key(c, key) : c->path_len;
  lw_sbuf sb;
  if (lw_cfg_fail_begin(c, &sb)) {
    lw_sb_str(&sb, prefix);
    lw_sb_str(&sb, name);
    lw_sb_str(&sb, suffix);
  }
  lw_cfg_pop(c, k);
}

/* ---- the tables ------------------------------------------------------------------ */

#define UINT_F(k, req, T, m, lo, hi, d) {k, LW_K_UINT, req, 0, offsetof(T, m), 0, lo, hi, d}
#define NUM_F(k, req, T, m, lo, hi, d) {k, LW_K_NUM, req, 0, offsetof(T, m), 0, lo, hi, d}
/* An optional number added by compiled format version `since` (older files lack it). */
#define NUM_SINCE(since, k, T, m, lo, hi, d) {k, LW_K_NUM, 0, since, offsetof(T, m), 0, lo, hi, d}
#define UINT_SINCE(since, k, T, m, lo, hi, d) {k, LW_K_UINT, 0, since, offsetof(T, m), 0, lo, hi, d}
#define BOOL_F(k, T, m, d) {k, LW_K_BOOL, 0, 0, offsetof(T, m), 0, 0, 1, d}
#define TEXT_F(k, req, T, m) {k, LW_K_TEXT, req, 0, offsetof(T, m), sizeof(((T *)0)->m), 0, 0, 0}
#define NAME_F(k, req, T, m) {k, LW_K_NAME, req, 0, offsetof(T, m), sizeof(((T *)0)->m), 0, 0, 0}
#define COUNT(a) (int)(sizeof a / sizeof a[0])
/* The widget's fields (display part only; unset is "" or, for a UINT, UINT32_MAX). */
#define SHOW_F(k, kind, T, m) {k, kind, 0, 0, offsetof(T, m), sizeof(((T *)0)->m), 0, 0, 0}

static const lw_cfg_field k_milestone[] = {UINT_F("after", 1, lw_milestone, after, 1, UINT32_MAX, 0),
                                           UINT_F("every", 0, lw_milestone, every, 0, UINT32_MAX, 0)};
static const lw_cfg_field k_variant[] = {
    NAME_F("id", 1, lw_variant, id),           TEXT_F("title", 1, lw_variant, title),
    TEXT_F("message", 1, lw_variant, message), TEXT_F("referrer_reward", 1, lw_variant, referrer_reward),
    TEXT_F("referee_reward", 1, lw_variant, referee_reward), NUM_F("cost", 1, lw_variant, cost, 0, 1e9, 0),
    UINT_F("weight", 0, lw_variant, weight, 0, 1000000, 1)};
static const lw_cfg_field k_ladder[] = {UINT_F("referrals", 1, lw_ladder_step, referrals, 0, 1000000, 0),
                                        TEXT_F("reward", 1, lw_ladder_step, reward)};
const char *const lw_cfg_variant_extra[] = {"enabled", NULL};
const lw_cfg_object lw_cfg_milestone = {"milestones", 1, k_milestone, COUNT(k_milestone)};
const lw_cfg_object lw_cfg_variant = {"variants", 1, k_variant, COUNT(k_variant)};
const lw_cfg_object lw_cfg_ladder = {"ladder", 0, k_ladder, COUNT(k_ladder)};
/* preview (issue 14): the widget's, in the display part only, so not in lw_cfg_objects (whose
 * fields the engine part carries). */
static const lw_cfg_field k_preview[] = {BOOL_F("allow_url", lw_config, preview_url, 0)};
const lw_cfg_object lw_cfg_preview = {"preview", 0, k_preview, COUNT(k_preview)};

static const lw_cfg_field k_top[] = {
    UINT_F("version", 1, lw_config, version, 1, 1, 1),
    TEXT_F("program", 0, lw_config, program),
    UINT_F("not_now_weight", 0, lw_config, not_now_weight, 0, 1000000, 0),
    NUM_F("value_per_referral", 0, lw_config, value_per_referral, 0, 1e9, 50),
    NUM_F("fatigue_cost", 0, lw_config, fatigue_cost, 0, 1e9, 1),
    NUM_F("holdout", 0, lw_config, holdout, 0, 0.5, 0)};
static const lw_cfg_field k_share[] = {TEXT_F("url", 1, lw_config, share_url),
                                       TEXT_F("title", 0, lw_config, share_title),
                                       TEXT_F("text", 0, lw_config, share_text)};
static const lw_cfg_field k_consent[] = {BOOL_F("required", lw_config, consent_required, 0),
                                         BOOL_F("default", lw_config, consent_default, 1)};
static const lw_cfg_field k_caps[] = {UINT_F("max_prompts", 0, lw_config, cap_max_prompts, 1, 1000, 2),
                                      UINT_F("window_days", 0, lw_config, cap_window_days, 1, 3650, 30),
                                      UINT_F("min_gap_hours", 0, lw_config, cap_min_gap_hours, 0, 87600, 24)};
static const lw_cfg_field k_cooldown[] = {UINT_F("days", 0, lw_config, cooldown_days, 0, 3650, 7),
                                          UINT_F("growth", 0, lw_config, cooldown_growth, 1, 100, 2),
                                          UINT_F("max_days", 0, lw_config, cooldown_max_days, 0, 3650, 90)};
static const lw_cfg_field k_quiet[] = {UINT_F("start", 1, lw_config, quiet_start_hour, 0, 23, -1),
                                       UINT_F("end", 1, lw_config, quiet_end_hour, 0, 23, -1)};
static const lw_cfg_field k_session[] = {UINT_F("min_age_s", 0, lw_config, min_session_s, 0, 86400, 0)};
static const lw_cfg_field k_privacy[] = {BOOL_F("respect_gpc", lw_config, respect_gpc, 1),
                                         BOOL_F("respect_dnt", lw_config, respect_dnt, 0)};
/* relative_temperature, not_now and new_variant came with issue 10 (.lwc version 2); their
 * defaults (0) keep what a config that does not set them meant before. */
static const lw_cfg_field k_explore[] = {
    NUM_F("temperature", 0, lw_config, explore_temperature, 0.001, 1e9, 5),
    NUM_F("floor", 0, lw_config, explore_floor, 0, 0.1, 0.02),
    NUM_SINCE(2, "relative_temperature", lw_config, explore_relative, 0, 100, 0),
    NUM_SINCE(2, "not_now", lw_config, explore_not_now, 0, 0.5, 0),
    NUM_SINCE(2, "new_variant", lw_config, explore_new_variant, 0, 0.5, 0)};
static const lw_cfg_field k_model[] = {UINT_F("refresh_hours", 0, lw_config, model_refresh_hours, 1, 720, 24)};
static const lw_cfg_field k_fairness[] = {
    NUM_F("min_exposure_ratio", 0, lw_config, fairness_min_ratio, 0, 1, 0.8)};

/* The prompt's look (issue 14): colours for the light and the dark scheme, the corner radius
 * in px, a font list and a logo; each set one overrides the widget's CSS custom property of
 * the same name (--lw-accent, ..., README "Widget"). */
static const lw_cfg_field k_theme[] = {
    SHOW_F("accent", LW_K_COLOR, lw_config, theme_accent),
    SHOW_F("background", LW_K_COLOR, lw_config, theme_background),
    SHOW_F("text", LW_K_COLOR, lw_config, theme_text),
    SHOW_F("dark_accent", LW_K_COLOR, lw_config, theme_dark_accent),
    SHOW_F("dark_background", LW_K_COLOR, lw_config, theme_dark_background),
    SHOW_F("dark_text", LW_K_COLOR, lw_config, theme_dark_text),
    UINT_F("radius", 0, lw_config, theme_radius, 0, 32, -1),
    SHOW_F("font", LW_K_CSS, lw_config, theme_font),
    SHOW_F("logo", LW_K_LINK, lw_config, theme_logo)};
/* Where the prompt goes: a modal dialog, a card in the page's bottom corner (the end side), or
 * inline in the page's element that `target` selects (or that init({target}) passes). */
static const lw_cfg_field k_placement[] = {
    SHOW_F("type\0" LW_PLACEMENT_DEFAULT " corner inline", LW_K_CHOICE, lw_config, placement_type),
    SHOW_F("target", LW_K_CSS, lw_config, placement_target)};

/* A `locales` entry's texts (issue 14): the variant and share texts of one language, each
 * optional (unset ones fall back to the config's own), and the widget's built-in labels. */
static const lw_cfg_field k_locale_variant[] = {
    TEXT_F("title", 0, lw_variant, title), TEXT_F("message", 0, lw_variant, message),
    TEXT_F("referrer_reward", 0, lw_variant, referrer_reward), TEXT_F("referee_reward", 0, lw_variant, referee_reward)};
/* (checked into a scratch lw_variant, as the labels: nothing of a locale is kept in lw_config) */
static const lw_cfg_field k_locale_share[] = {TEXT_F("title", 0, lw_variant, title),
                                              TEXT_F("text", 0, lw_variant, message)};
/* The labels are only checked (each into the same scratch text), never stored. */
#define LABEL_F(k) {k, LW_K_TEXT, 0, 0, 0, LW_TEXT_LEN + 1, 0, 0, 0}
/* (web/src/ui.js KEYS: the prompt's, then the share channels' names, web/src/channels.js) */
static const lw_cfg_field k_locale_labels[] = {
    LABEL_F("share"),     LABEL_F("copy"),  LABEL_F("not_now"),  LABEL_F("close"), LABEL_F("copied"),
    LABEL_F("copy_this"), LABEL_F("email"), LABEL_F("linkedin"), LABEL_F("x"),     LABEL_F("whatsapp")};
const lw_cfg_object lw_cfg_locale_variant = {"variants", 0, k_locale_variant, COUNT(k_locale_variant)};
const lw_cfg_object lw_cfg_locale_share = {"share", 0, k_locale_share, COUNT(k_locale_share)};
const lw_cfg_object lw_cfg_locale_labels = {"labels", 0, k_locale_labels, COUNT(k_locale_labels)};

/* The top level first, fairness last (its "attribute" is read by code of its own). */
/* The retained-value reward (the learning tools read it; compiled format 2): what each outcome of
 * a decision's referees is worth. Defaults: a retained referee (10 + 40) is worth what
 * value_per_referral has always said a referred customer is (50); a share alone 5. */
static const lw_cfg_field k_reward[] = {
    UINT_SINCE(2, "attribution_days", lw_config, reward_attribution_days, 1, 3650, 45),
    NUM_SINCE(2, "value_per_conversion", lw_config, reward_value_per_conversion, 0, 1e9, 10),
    NUM_SINCE(2, "value_per_retained", lw_config, reward_value_per_retained, 0, 1e9, 40),
    NUM_SINCE(2, "value_per_retained_90", lw_config, reward_value_per_retained_90, 0, 1e9, 0),
    NUM_SINCE(2, "churn_cost", lw_config, reward_churn_cost, 0, 1e9, 0),
    NUM_SINCE(2, "revenue_weight", lw_config, reward_revenue_weight, 0, 1e9, 0),
    NUM_SINCE(2, "value_per_share", lw_config, reward_value_per_share, 0, 1e9, 5)};

const lw_cfg_object lw_cfg_objects[] = {
    {NULL, 1, k_top, COUNT(k_top)},           {"share", 1, k_share, COUNT(k_share)},
    {"consent", 0, k_consent, COUNT(k_consent)}, {"caps", 0, k_caps, COUNT(k_caps)},
    {"cooldown", 0, k_cooldown, COUNT(k_cooldown)}, {"quiet_hours", 0, k_quiet, COUNT(k_quiet)},
    {"session", 0, k_session, COUNT(k_session)}, {"privacy", 0, k_privacy, COUNT(k_privacy)},
    {"explore", 0, k_explore, COUNT(k_explore)}, {"model", 0, k_model, COUNT(k_model)},
    {"reward", 0, k_reward, COUNT(k_reward)},
    {"fairness", 0, k_fairness, COUNT(k_fairness)}};
const int lw_cfg_n_objects = COUNT(lw_cfg_objects);
const lw_cfg_object lw_cfg_shown[] = {{"theme", 0, k_theme, COUNT(k_theme)},
                                      {"placement", 0, k_placement, COUNT(k_placement)}};
const int lw_cfg_n_shown = COUNT(lw_cfg_shown);

/* ---- values ---------------------------------------------------------------------- */

static void set_defaults(const lw_cfg_field *f, int n, void *base) {
  for (int i = 0; i < n; i++) {
    char *dst = (char *)base + f[i].off;
    if (f[i].kind == LW_K_NUM) {
      memcpy(dst, &f[i].def, sizeof f[i].def);
    } else if (f[i].kind == LW_K_UINT || f[i].kind == LW_K_BOOL) {
      int32_t v = (int32_t)f[i].def; /* -1 stands for "none" where a field allows it */
      memcpy(dst, &v, sizeof v);
    }
  }
}

void lw_cfg_defaults(lw_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (int i = 0; i < lw_cfg_n_objects; i++) set_defaults(lw_cfg_objects[i].fields, lw_cfg_objects[i].n, cfg);
  cfg->approval_attr = -1;
  cfg->fairness_attr = -1;
  /* the widget's (lw_cfg_shown, whose tables the runtime does not link): not set */
  cfg->theme_radius = UINT32_MAX;
  memcpy(cfg->placement_type, LW_PLACEMENT_DEFAULT, sizeof LW_PLACEMENT_DEFAULT);
}

/* Array elements start from their own defaults (a variant's weight is 1). */
void lw_cfg_element_defaults(const lw_cfg_object *o, void *elem) { set_defaults(o->fields, o->n, elem); }

void lw_cfg_describe(lw_sbuf *sb, const lw_cfg_field *f) {
  switch (f->kind) {
    case LW_K_UINT:
    case LW_K_NUM:
      if (f->kind == LW_K_UINT && f->min == 1 && f->max == UINT32_MAX) {
        lw_sb_str(sb, "a positive integer");
        return;
      }
      lw_sb_str(sb, f->kind == LW_K_UINT ? "an integer from " : "a number from ");
      lw_sb_num(sb, f->min);
      lw_sb_str(sb, " to ");
      lw_sb_num(sb, f->max);
      return;
    case LW_K_BOOL: lw_sb_str(sb, "true or false"); return;
    case LW_K_NAME: lw_sb_str(sb, "a name of 1-32 letters, digits, '_' or '-'"); return;
    case LW_K_COLOR: lw_sb_str(sb, "a colour #rgb or #rrggbb"); return;
    case LW_K_LINK: lw_sb_str(sb, "an https:// link (http:// only on localhost or 127.0.0.1)"); return;
    case LW_K_CSS:
      lw_sb_str(sb, "a CSS font list or selector of at most ");
      lw_sb_u64(sb, f->size - 1u);
      lw_sb_str(sb, " bytes without ; { } < \\ or control characters");
      return;
    case LW_K_CHOICE:
      lw_sb_str(sb, "one of: ");
      lw_sb_str(sb, LW_CFG_CHOICES(f));
      return;
    default:
      lw_sb_str(sb, "a non-empty text of at most ");
      lw_sb_u64(sb, f->size - 1u);
      lw_sb_str(sb, " bytes");
  }
}

/* Whether s has the form a widget kind asks for (see the enum in config_schema.h). */
static int form_ok(const lw_cfg_field *f, const char *s) {
  size_t n = strlen(s);
  switch (f->kind) {
    case LW_K_COLOR:
      return (n == 4 || n == 7) && s[0] == '#' && strspn(s + 1, "0123456789abcdefABCDEF") == n - 1;
    case LW_K_LINK: return lw_cfg_link_ok(s);
    case LW_K_CSS:
      for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || strchr(";{}<\\", *p)) return 0;
      return n > 0;
    case LW_K_CHOICE:
      for (const char *w = LW_CFG_CHOICES(f); *w; w += strcspn(w, " "), w += *w == ' ') {
        if (strcspn(w, " ") == n && strncmp(w, s, n) == 0) return 1;
      }
      return 0;
    case LW_K_NAME: return lw_is_name(s);
    default: return *s || !f->required;
  }
}

int lw_cfg_check_text(lw_cfg_ctx *c, const lw_cfg_field *f, const char *s) {
  if (f->kind == LW_K_TEXT && *s && !lw_utf8_valid(s, strlen(s))) {
    lw_cfg_fail(c, "text is not valid UTF-8");
    return 0;
  }
  int ok = form_ok(f, s);
  lw_sbuf sb;
  if (!ok && lw_cfg_fail_begin(c, &sb)) {
    lw_sb_str(&sb, "expected ");
    lw_cfg_describe(&sb, f);
  }
  return ok;
}

/* ---- rules across fields ---------------------------------------------------------- */

int lw_cfg_count_ok(lw_cfg_ctx *c, const char *key, int n, int min, int max) {
  if (n >= min && n <= max) return 1;
  size_t mark = key ? lw_cfg_push_key(c, key) : c->path_len;
  lw_sbuf sb;
  if (lw_cfg_fail_begin(c, &sb)) {
    lw_sb_str(&sb, "expected ");
    lw_sb_u64(&sb, (uint64_t)min);
    lw_sb_str(&sb, " to ");
    lw_sb_u64(&sb, (uint64_t)max);
    lw_sb_str(&sb, " entries, got ");
    lw_sb_i64(&sb, n);
  }
  lw_cfg_pop(c, mark);
  return 0;
}

/* names[i] for i < n, `stride` bytes apart: each a valid name, none twice. */
static void names_ok(lw_cfg_ctx *c, const char *names, size_t stride, int n, const char *twice) {
  for (int i = 0; i < n && LW_CFG_GOING(c); i++) {
    const char *s = names + (size_t)i * stride;
    size_t mark = lw_cfg_push_index(c, i);
    if (!lw_is_name(s)) lw_cfg_fail(c, "expected a name of 1-32 letters, digits, '_' or '-'");
    for (int j = 0; j < i; j++)
      if (strcmp(names + (size_t)j * stride, s) == 0) lw_cfg_fail(c, twice);
    lw_cfg_pop(c, mark);
  }
}

static void attr_ref_ok(lw_cfg_ctx *c, const char *key, int attr, const lw_config *cfg) {
  if (attr < -1 || attr >= cfg->n_attributes) lw_cfg_fail_named(c, key, "unknown attribute", "", "");
}

/* The share link is put into links on the host's page: https, or plain http on this machine
 * only (development). */
int lw_cfg_link_ok(const char *url) {
  static const char *const local[] = {"http://localhost", "http://127.0.0.1"};
  if (strncmp(url, "https://", 8) == 0) return url[8] && url[8] != '/';
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(local[i]);
    if (strncmp(url, local[i], n) == 0 && strchr(":/?#", url[n])) return 1; /* (or the end) */
  }
  return 0;
}

void lw_cfg_check_rules(lw_cfg_ctx *c, const lw_config *cfg) {
  if (!LW_CFG_GOING(c)) return;
  /* (the JSON reader never fills an array past its limit, so with `all` the checks go on) */
  int counts = lw_cfg_count_ok(c, "events", cfg->n_events, 1, LW_MAX_EVENTS) &
               lw_cfg_count_ok(c, "milestones", cfg->n_milestones, 1, LW_MAX_MILESTONES) &
               lw_cfg_count_ok(c, "variants", cfg->n_variants, 1, LW_MAX_VARIANTS) &
               lw_cfg_count_ok(c, "ladder", cfg->n_ladder, 0, LW_MAX_LADDER) &
               lw_cfg_count_ok(c, "attributes", cfg->n_attributes, 0, LW_MAX_ATTRIBUTES);
  if (!counts && !c->all) return;
  if (!lw_cfg_link_ok(cfg->share_url))
    lw_cfg_fail_named(c, "share.url",
                      "must be an https:// link (http:// only on localhost or 127.0.0.1): it is put into links", "", "");
  if (!strstr(cfg->share_url, "{code}"))
    lw_cfg_fail_named(c, "share.url", "must contain {code}, where the referral code goes", "", "");
  if (cfg->cooldown_max_days < cfg->cooldown_days)
    lw_cfg_fail_named(c, "cooldown.max_days", "must be at least cooldown.days", "", "");
  if ((cfg->quiet_start_hour < 0) != (cfg->quiet_end_hour < 0))
    lw_cfg_fail_named(c, "quiet_hours", "start and end go together", "", "");
  if (cfg->quiet_start_hour >= 0 && cfg->quiet_start_hour == cfg->quiet_end_hour)
    lw_cfg_fail_named(c, "quiet_hours", "start and end must differ", "", "");

  size_t mark = lw_cfg_push_key(c, "events");
  names_ok(c, cfg->events[0], sizeof cfg->events[0], cfg->n_events, "event listed twice");
  lw_cfg_pop(c, mark);

  for (int i = 0; i < cfg->n_milestones && LW_CFG_GOING(c); i++) {
    int e = cfg->milestones[i].event;
    if (e < 0 || e >= cfg->n_events) {
      mark = lw_cfg_push_key(c, "milestones");
      lw_cfg_push_index(c, i);
      lw_cfg_fail_named(c, "event", "unknown event", "", "");
      lw_cfg_pop(c, mark);
    }
  }

  uint64_t total = 0;
  for (int i = 0; i < cfg->n_variants && LW_CFG_GOING(c); i++) {
    const char *id = cfg->variants[i].id;
    int dup = strcmp(id, "none") == 0 || strcmp(id, "not_now") == 0;
    for (int j = 0; j < i; j++) dup |= strcmp(cfg->variants[j].id, id) == 0;
    total += cfg->variants[i].weight;
    if (dup) {
      mark = lw_cfg_push_key(c, "variants");
      lw_cfg_push_index(c, i);
      lw_cfg_fail_named(c, "id", "variant id must be unique and not 'none' or 'not_now'", "", "");
      lw_cfg_pop(c, mark);
    }
  }
  if (LW_CFG_GOING(c) && total == 0)
    lw_cfg_fail_named(c, "variants", "at least one variant needs a weight above 0", "", "");

  for (int i = 1; i < cfg->n_ladder && LW_CFG_GOING(c); i++) {
    if (cfg->ladder[i].referrals <= cfg->ladder[i - 1].referrals) {
      mark = lw_cfg_push_key(c, "ladder");
      lw_cfg_push_index(c, i);
      lw_cfg_fail_named(c, "referrals", "must be larger than the previous step's", "", "");
      lw_cfg_pop(c, mark);
    }
  }

  mark = lw_cfg_push_key(c, "attributes");
  names_ok(c, cfg->attr_names[0], sizeof cfg->attr_names[0], cfg->n_attributes, "attribute listed twice");
  for (int a = 0; a < cfg->n_attributes && LW_CFG_GOING(c); a++) {
    size_t m = lw_cfg_push_key(c, cfg->attr_names[a]);
    if (lw_cfg_count_ok(c, NULL, cfg->attr_n_values[a], 1, LW_MAX_ATTR_VALUES))
      names_ok(c, cfg->attr_values[a][0], sizeof cfg->attr_values[a][0], cfg->attr_n_values[a],
               "value listed twice");
    lw_cfg_pop(c, m);
  }
  lw_cfg_pop(c, mark);

  /* channels: known, each once (the JSON reader explains which was wrong; this guards configs
   * made in code) */
  unsigned seen = 0;
  if (lw_cfg_count_ok(c, "channels", cfg->n_channels, 1, LW_CHANNEL_COUNT))
    for (int i = 0; i < cfg->n_channels && LW_CFG_GOING(c); i++) {
      unsigned ch = cfg->channels[i];
      if (ch >= LW_CHANNEL_COUNT || (seen >> ch & 1u)) {
        mark = lw_cfg_push_key(c, "channels");
        lw_cfg_push_index(c, i);
        lw_cfg_fail(c, "unknown channel, or listed twice");
        lw_cfg_pop(c, mark);
      }
      seen |= ch < LW_CHANNEL_COUNT ? 1u << ch : 0;
    }

  attr_ref_ok(c, "approval.attribute", cfg->approval_attr, cfg);
  attr_ref_ok(c, "fairness.attribute", cfg->fairness_attr, cfg);
  if (LW_CFG_GOING(c)) {
    int nv = cfg->approval_attr < 0 ? 0 : cfg->attr_n_values[cfg->approval_attr];
    uint32_t allowed = nv >= 32 ? UINT32_MAX : (1u << nv) - 1u;
    if (cfg->approval_values & ~allowed)
      lw_cfg_fail_named(c, "approval.values", "not one of the attribute's allowed values", "", "");
  }
}

/* ---- the JSON Schema (draft 2020-12) --------------------------------------------------
 * Generated from the tables above, so an editor checks and completes the fields the reader
 * accepts, with the same types, ranges and defaults. What code reads (events, attributes,
 * approval, an element's "event" and "enabled", the attribute a fairness rule names) and the
 * rules the schema can state (the share link's form, reserved variant ids, uniqueness of
 * plain names) are written here beside them; the rest (unique variant ids, names that must be
 * listed elsewhere, ladder order) stays the checker's, which reports it with its JSON path. */

/* lw_cfg_link_ok as a JSON Schema pattern (share.url, theme.logo). */
#define LW_CFG_TAG_SCHEMA "{\"type\":\"string\",\"maxLength\":35,\"pattern\":\"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$\"}"
#define LW_CFG_LINK_PATTERN "^(https://[^/]|http://(localhost|127\\\\.0\\\\.0\\\\.1)([:/?#]|$))"

static void js_key(lw_sbuf *sb, const char *key) {
  lw_sb_json_str(sb, key);
  lw_sb_char(sb, ':');
}

static void js_name(lw_sbuf *sb) {
  lw_sb_str(sb, "{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_-]{1,");
  lw_sb_u64(sb, LW_NAME_LEN);
  lw_sb_str(sb, "}$\"}");
}

static void js_field(lw_sbuf *sb, const lw_cfg_field *f) {
  js_key(sb, f->key);
  switch (f->kind) {
    case LW_K_UINT:
    case LW_K_NUM:
      lw_sb_str(sb, f->kind == LW_K_UINT ? "{\"type\":\"integer\",\"minimum\":" : "{\"type\":\"number\",\"minimum\":");
      lw_sb_num(sb, f->min);
      lw_sb_str(sb, ",\"maximum\":");
      lw_sb_num(sb, f->max);
      if (!f->required && f->def != -1) {
        lw_sb_str(sb, ",\"default\":");
        lw_sb_num(sb, f->def);
      }
      break;
    case LW_K_BOOL:
      lw_sb_str(sb, f->def ? "{\"type\":\"boolean\",\"default\":true" : "{\"type\":\"boolean\",\"default\":false");
      break;
    case LW_K_NAME: js_name(sb); return;
    case LW_K_COLOR: lw_sb_str(sb, "{\"type\":\"string\",\"pattern\":\"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$\""); break;
    case LW_K_LINK:
      lw_sb_str(sb, "{\"type\":\"string\",\"maxLength\":");
      lw_sb_u64(sb, f->size - 1u);
      lw_sb_str(sb, ",\"pattern\":\"" LW_CFG_LINK_PATTERN "\"");
      break;
    case LW_K_CSS:
      lw_sb_str(sb, "{\"type\":\"string\",\"maxLength\":");
      lw_sb_u64(sb, f->size - 1u);
      lw_sb_str(sb, ",\"pattern\":\"^[^;{}<\\\\\\\\\\\\x00-\\\\x1f\\\\x7f]+$\"");
      break;
    case LW_K_CHOICE:
      lw_sb_str(sb, "{\"enum\":[");
      for (const char *w = LW_CFG_CHOICES(f); *w; w += *w == ' ') {
        size_t n = strcspn(w, " ");
        lw_sb_str(sb, w == LW_CFG_CHOICES(f) ? "\"" : ",\"");
        lw_sb_mem(sb, w, n);
        lw_sb_char(sb, '"');
        w += n;
      }
      lw_sb_str(sb, "],\"default\":\"");
      lw_sb_mem(sb, LW_CFG_CHOICES(f), strcspn(LW_CFG_CHOICES(f), " "));
      lw_sb_char(sb, '"');
      break;
    default:
      lw_sb_str(sb, "{\"type\":\"string\",\"minLength\":1,\"maxLength\":");
      lw_sb_u64(sb, f->size - 1u);
      lw_sb_str(sb, ",\"description\":\"at most ");
      lw_sb_u64(sb, f->size - 1u);
      lw_sb_str(sb, " bytes of UTF-8\"");
  }
  lw_sb_char(sb, '}');
}

/* The "required" list and the properties of a table, then `extra` (already JSON members,
 * with `extra_required` added to "required"), as one closed object schema. */
static void js_object(lw_sbuf *sb, const lw_cfg_field *f, int n, const char *extra_required, const char *extra) {
  lw_sb_str(sb, "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[");
  int k = 0;
  for (int i = 0; i < n; i++)
    if (f[i].required) {
      if (k++) lw_sb_char(sb, ',');
      lw_sb_json_str(sb, f[i].key);
    }
  if (extra_required && *extra_required) {
    if (k) lw_sb_char(sb, ',');
    lw_sb_str(sb, extra_required);
  }
  lw_sb_str(sb, "],\"properties\":{");
  for (int i = 0; i < n; i++) {
    if (i) lw_sb_char(sb, ',');
    js_field(sb, &f[i]);
  }
  if (extra && *extra) {
    if (n) lw_sb_char(sb, ',');
    lw_sb_str(sb, extra);
  }
  lw_sb_str(sb, "}}");
}

static void js_array(lw_sbuf *sb, int min, int max) {
  lw_sb_str(sb, "\"type\":\"array\",\"minItems\":");
  lw_sb_u64(sb, (uint64_t)min);
  lw_sb_str(sb, ",\"maxItems\":");
  lw_sb_u64(sb, (uint64_t)max);
}

size_t lw_config_schema(char *buf, size_t cap) {
  char name[64];
  lw_sbuf nb;
  lw_sb_init(&nb, name, sizeof name);
  js_name(&nb);
  lw_sbuf sb;
  lw_sb_init(&sb, buf, cap);
  lw_sb_str(&sb, "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                 "\"$comment\":\"Generated from the field tables of src/core/config_schema.c by "
                 "'loopwise-config schema > web/config.schema.json': do not edit by hand. "
                 "loopwise-config check is the full check.\","
                 "\"title\":\"Loopwise program config\","
                 "\"description\":\"The referral program a product manager configures (README, "
                 "'Program config reference').\",");
  const lw_cfg_object *top = &lw_cfg_objects[0];
  /* the top level's required members besides its table */
  char req[256], props[16384];
  lw_sbuf r, p;
  lw_sb_init(&r, req, sizeof req);
  lw_sb_init(&p, props, sizeof props);
  lw_sb_str(&r, "\"events\",\"milestones\",\"variants\"");
  for (int i = 1; i < lw_cfg_n_objects; i++) {
    const lw_cfg_object *o = &lw_cfg_objects[i];
    if (o->required) {
      lw_sb_char(&r, ',');
      lw_sb_json_str(&r, o->key);
    }
    if (i > 1) lw_sb_char(&p, ',');
    js_key(&p, o->key);
    if (strcmp(o->key, "share") == 0) { /* the link's rules (lw_cfg_check_rules) */
      lw_sb_str(&p, "{\"allOf\":[");
      js_object(&p, o->fields, o->n, NULL, NULL);
      lw_sb_str(&p, ",{\"properties\":{\"url\":{\"allOf\":["
                    "{\"pattern\":\"\\\\{code\\\\}\",\"description\":\"must contain {code}, where the "
                    "referral code goes\"},"
                    "{\"pattern\":\"" LW_CFG_LINK_PATTERN "\","
                    "\"description\":\"an https:// link (http:// only on localhost or 127.0.0.1): it is put "
                    "into links\"}]}}}]}");
    } else if (i == lw_cfg_n_objects - 1) { /* fairness: its attribute */
      char ex[128];
      lw_sbuf e;
      lw_sb_init(&e, ex, sizeof ex);
      js_key(&e, "attribute");
      lw_sb_str(&e, name);
      js_object(&p, o->fields, o->n, "\"attribute\"", ex);
    } else {
      js_object(&p, o->fields, o->n, NULL, NULL);
    }
  }
  for (int i = 0; i < lw_cfg_n_shown; i++) {
    lw_sb_char(&p, ',');
    js_key(&p, lw_cfg_shown[i].key);
    js_object(&p, lw_cfg_shown[i].fields, lw_cfg_shown[i].n, NULL, NULL);
  }
  /* events */
  lw_sb_str(&p, ",\"events\":{");
  js_array(&p, 1, LW_MAX_EVENTS);
  lw_sb_str(&p, ",\"uniqueItems\":true,\"items\":");
  lw_sb_str(&p, name);
  lw_sb_char(&p, '}');
  /* milestones, variants, ladder: tables plus what code reads */
  const struct {
    const lw_cfg_object *o;
    int min, max;
    const char *extra_required, *extra_key, *extra;
  } arrays[] = {
      {&lw_cfg_milestone, 1, LW_MAX_MILESTONES, "\"event\"", "event", NULL},
      {&lw_cfg_variant, 1, LW_MAX_VARIANTS, NULL, "enabled",
       "{\"type\":\"boolean\",\"default\":true,\"description\":\"false switches the variant off in "
       "every mode, as weight 0 does\"}"},
      {&lw_cfg_ladder, 1, LW_MAX_LADDER, NULL, NULL, NULL}};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
    char ex[512];
    lw_sbuf e;
    lw_sb_init(&e, ex, sizeof ex);
    if (arrays[i].extra_key) {
      js_key(&e, arrays[i].extra_key);
      lw_sb_str(&e, arrays[i].extra ? arrays[i].extra : name);
    }
    lw_sb_char(&p, ',');
    js_key(&p, arrays[i].o->key);
    lw_sb_char(&p, '{');
    js_array(&p, arrays[i].min, arrays[i].max);
    lw_sb_str(&p, ",\"items\":");
    js_object(&p, arrays[i].o->fields, arrays[i].o->n, arrays[i].extra_required, ex);
    lw_sb_char(&p, '}');
  }
  /* attributes and approval */
  lw_sb_str(&p, ",\"attributes\":{\"type\":\"object\",\"maxProperties\":");
  lw_sb_u64(&p, LW_MAX_ATTRIBUTES);
  lw_sb_str(&p, ",\"propertyNames\":");
  lw_sb_str(&p, name);
  lw_sb_str(&p, ",\"additionalProperties\":{");
  js_array(&p, 1, LW_MAX_ATTR_VALUES);
  lw_sb_str(&p, ",\"uniqueItems\":true,\"items\":");
  lw_sb_str(&p, name);
  lw_sb_str(&p, "},\"description\":\"up to 4 host attributes with their allowed values; non-personal "
                "categories only\"}");
  lw_sb_str(&p, ",\"approval\":{\"type\":\"object\",\"additionalProperties\":false,"
                "\"required\":[\"attribute\",\"values\"],\"properties\":{\"attribute\":");
  lw_sb_str(&p, name);
  lw_sb_str(&p, ",\"values\":{\"type\":\"array\",\"minItems\":1,\"items\":");
  lw_sb_str(&p, name);
  lw_sb_str(&p, "},\"send\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":");
  lw_sb_str(&p, name);
  lw_sb_str(&p, ",\"description\":\"the attributes an approval request carries to the console\"}}}");
  /* locales: "default" and language tags, each with its texts */
  lw_sb_str(&p, ",\"locales\":{\"type\":\"object\",\"maxProperties\":");
  lw_sb_u64(&p, LW_MAX_LOCALES + 1);
  lw_sb_str(&p, ",\"description\":\"texts per language, chosen from the browser's language (exact tag, then "
                "language, then default: the language of the config's own texts)\",\"properties\":{\"default\":"
                LW_CFG_TAG_SCHEMA "},\"propertyNames\":{\"pattern\":\"^(default|[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)$\"},"
                "\"additionalProperties\":{\"type\":\"object\",\"additionalProperties\":false,"
                "\"properties\":{\"share\":");
  js_object(&p, k_locale_share, COUNT(k_locale_share), NULL, NULL);
  lw_sb_str(&p, ",\"variants\":{\"type\":\"object\",\"description\":\"by variant id\",\"propertyNames\":");
  lw_sb_str(&p, name);
  lw_sb_str(&p, ",\"additionalProperties\":");
  js_object(&p, k_locale_variant, COUNT(k_locale_variant), NULL, NULL);
  lw_sb_str(&p, "},\"labels\":");
  js_object(&p, k_locale_labels, COUNT(k_locale_labels), NULL, NULL);
  lw_sb_str(&p, "}}}");
  /* channels and preview (issue 14) */
  lw_sb_str(&p, ",\"channels\":{");
  js_array(&p, 1, LW_CHANNEL_COUNT);
  lw_sb_str(&p, ",\"uniqueItems\":true,\"items\":{\"enum\":[");
  for (int i = 0; i < LW_CHANNEL_COUNT; i++) {
    if (i) lw_sb_char(&p, ',');
    lw_sb_json_str(&p, lw_channel_name((lw_channel)i));
  }
  lw_sb_str(&p, "]},\"default\":[");
  for (int i = 0; i < LW_CHANNEL_COUNT; i++) {
    if (i) lw_sb_char(&p, ',');
    lw_sb_json_str(&p, lw_channel_name((lw_channel)i));
  }
  lw_sb_str(&p, "],\"description\":\"the share channels the prompt offers, in their order when the model "
                "ranks none for the user's persona (native: the device's share sheet, shown only where there "
                "is one)\"},");
  js_key(&p, lw_cfg_preview.key);
  js_object(&p, lw_cfg_preview.fields, lw_cfg_preview.n, NULL, NULL);

  lw_sb_str(&sb, "\"type\":\"object\",\"additionalProperties\":false,\"required\":[");
  for (int i = 0; i < top->n; i++)
    if (top->fields[i].required) {
      lw_sb_json_str(&sb, top->fields[i].key);
      lw_sb_char(&sb, ',');
    }
  lw_sb_str(&sb, req);
  lw_sb_str(&sb, "],\"properties\":{\"$schema\":{\"type\":\"string\",\"description\":\"the JSON Schema an editor "
                "checks this file against; loopwise-config ignores it\"},");
  for (int i = 0; i < top->n; i++) {
    js_field(&sb, &top->fields[i]);
    lw_sb_char(&sb, ',');
  }
  lw_sb_str(&sb, props);
  lw_sb_str(&sb, "}}");
  return r.overflow || p.overflow || nb.overflow ? 0 : sb.overflow ? cap + 1 : sb.len;
}

/* ---- lookups ---------------------------------------------------------------------- */

int lw_config_event_index(const lw_config *cfg, const char *name) {
  for (int i = 0; i < cfg->n_events; i++)
    if (strcmp(cfg->events[i], name) == 0) return i;
  return -1;
}

int lw_config_variant_index(const lw_config *cfg, const char *id) {
  for (int i = 0; i < cfg->n_variants; i++)
    if (strcmp(cfg->variants[i].id, id) == 0) return i;
  return -1;
}

int lw_config_attr_index(const lw_config *cfg, const char *name) {
  for (int i = 0; i < cfg->n_attributes; i++)
    if (strcmp(cfg->attr_names[i], name) == 0) return i;
  return -1;
}

int lw_config_attr_value_index(const lw_config *cfg, int attr, const char *value) {
  if (attr < 0 || attr >= cfg->n_attributes) return -1;
  for (int i = 0; i < cfg->attr_n_values[attr]; i++)
    if (strcmp(cfg->attr_values[attr][i], value) == 0) return i;
  return -1;
}
