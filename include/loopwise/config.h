/* loopwise/config.h: the referral program's configuration.
 *
 * Product managers write one JSON file (models/referral.json documents every field).
 * lw_config_parse checks it against the schema and fills a fixed-size struct; on any
 * problem it names the JSON path and the problem, e.g.
 *   "milestones[2].after: expected a positive integer, got -3". */
#ifndef LOOPWISE_CONFIG_H
#define LOOPWISE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "loopwise/common.h"
#include "loopwise/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LW_MAX_EVENTS 32
#define LW_MAX_MILESTONES 16
#define LW_MAX_VARIANTS 8
#define LW_TEXT_LEN 240 /* bytes of UTF-8 */
#define LW_URL_LEN 200  /* names are LW_NAME_LEN (wire.h) characters of [A-Za-z0-9_-] */
#define LW_MAX_ATTRIBUTES 4
#define LW_MAX_ATTR_VALUES 16
#define LW_MAX_LADDER 6
#define LW_COLOR_LEN 7 /* "#rrggbb" */
#define LW_CSS_LEN 63  /* theme.font, placement.target */
#define LW_MAX_LOCALES 12
#define LW_LOCALE_TAG_LEN 35 /* a BCP 47 tag, e.g. "pt-BR" */
#define LW_PLACEMENT_DEFAULT "modal"

typedef struct {
  int event;      /* index into lw_config.events */
  uint32_t after; /* fires when the event's count reaches this */
  uint32_t every; /* then again every `every` occurrences; 0 = only once */
} lw_milestone;

typedef struct {
  char id[LW_NAME_LEN + 1];
  char title[LW_TEXT_LEN + 1];
  char message[LW_TEXT_LEN + 1];
  char referrer_reward[LW_TEXT_LEN + 1];
  char referee_reward[LW_TEXT_LEN + 1];
  double cost;     /* incentive cost of one referred customer, in the program's currency */
  uint32_t weight; /* relative share among variants in rules mode; 0 = switched off in every mode
                    * (the JSON's "enabled": false compiles to 0) */
} lw_variant;

typedef struct {
  uint32_t referrals;
  char reward[LW_TEXT_LEN + 1];
} lw_ladder_step;

typedef struct {
  uint32_t version;
  char program[LW_TEXT_LEN + 1];
  char share_url[LW_URL_LEN + 1]; /* contains "{code}" */
  char share_title[LW_TEXT_LEN + 1];
  char share_text[LW_TEXT_LEN + 1];

  int n_events;
  char events[LW_MAX_EVENTS][LW_NAME_LEN + 1];
  int n_milestones;
  lw_milestone milestones[LW_MAX_MILESTONES];
  int n_variants;
  lw_variant variants[LW_MAX_VARIANTS];
  uint32_t not_now_weight; /* weight of the explicit "not now" action beside the variants */

  int consent_required; /* a prompt needs consent; unknown consent then counts as "no" */
  int consent_default;  /* consent assumed for a new user until the host says otherwise */

  uint32_t cap_max_prompts;  /* at most this many prompts ... */
  uint32_t cap_window_days;  /* ... in any rolling window of this many days */
  uint32_t cap_min_gap_hours; /* and at least this long between two prompts */

  uint32_t cooldown_days;     /* no prompt this long after a dismissal ... */
  uint32_t cooldown_growth;   /* ... multiplied by this for every earlier dismissal ... */
  uint32_t cooldown_max_days; /* ... up to this */

  int quiet_start_hour; /* local hours [start, end) with no prompt; -1 = none */
  int quiet_end_hour;

  uint32_t min_session_s; /* no prompt in the first seconds of a session */
  int respect_gpc;        /* Global Privacy Control counts as "no" unless the user said yes */
  int respect_dnt;        /* likewise Do Not Track */

  /* The model (engine issue): expected net value and exploration. */
  double value_per_referral; /* value of one referred customer */
  double fatigue_cost;       /* cost of showing one prompt */
  double explore_temperature; /* softmax temperature in value units ... */
  double explore_floor;       /* least probability of every action the model may choose */
  double explore_relative;    /* ... or, above 0, relative to the spread of the action values */
  double explore_not_now;     /* least probability of "not now" (rules and model mode) */
  double explore_new_variant; /* least probability of a variant without enough data (model mode) */
  double holdout; /* fraction of installs that always get the rules baseline */
  uint32_t model_refresh_hours;

  /* The reward the trainer learns (retained-value issue; README "Program config reference",
   * `reward.*`): what each referee outcome the store joins to a decision is worth, in the same
   * value units as variants[].cost and fatigue_cost. Read by the learning tools, not the engine. */
  uint32_t reward_attribution_days; /* a decision's label counts outcomes received within this many days */
  double reward_value_per_conversion; /* a referee the host reported converted */
  double reward_value_per_retained;   /* on top: that referee still active at 30 days (retained_30) */
  double reward_value_per_retained_90; /* on top: still active at 90 days (retained_90) */
  double reward_churn_cost;            /* subtracted: that referee churned */
  double reward_revenue_weight;        /* value units per unit of revenue the host reported */
  double reward_value_per_share;       /* the fallback for a site that reports no referee outcomes:
                                          one share or copy (visibly so in the trainer's output) */

  /* Host attributes: non-personal categories the host may set (plan, seats, industry). */
  int n_attributes;
  char attr_names[LW_MAX_ATTRIBUTES][LW_NAME_LEN + 1];
  int attr_n_values[LW_MAX_ATTRIBUTES];
  char attr_values[LW_MAX_ATTRIBUTES][LW_MAX_ATTR_VALUES][LW_NAME_LEN + 1];

  int approval_attr;           /* accounts with this attribute ... (-1 = no approval rule) */
  uint32_t approval_values;    /* ... set to one of these values (bit i = value i) need approval */
  uint32_t approval_send;      /* the attributes (bit a = attribute a) an approval request carries */
  int fairness_attr;           /* the segment the trainer keeps exposure fair across (-1 = none) */
  double fairness_min_ratio;

  int n_ladder; /* referrer incentive ladder: reward once `referrals` conversions are reached */
  lw_ladder_step ladder[LW_MAX_LADDER];

  /* The prompt's look and place (issue 14; README "Program config reference", `theme.*`,
   * `placement.*`): the widget's alone, in the compiled file's display part; "" = not set. */
  char theme_accent[LW_COLOR_LEN + 1], theme_background[LW_COLOR_LEN + 1], theme_text[LW_COLOR_LEN + 1];
  char theme_dark_accent[LW_COLOR_LEN + 1], theme_dark_background[LW_COLOR_LEN + 1];
  char theme_dark_text[LW_COLOR_LEN + 1];
  uint32_t theme_radius; /* px; UINT32_MAX = not set */
  char theme_font[LW_CSS_LEN + 1];
  char theme_logo[LW_URL_LEN + 1];
  char placement_type[8]; /* "modal" (the default), "corner" or "inline" */
  char placement_target[LW_CSS_LEN + 1]; /* inline: the host element's selector */
  /* The prompt's share channels and preview (prompt issue 14). Like the texts they are the
   * widget's, in the compiled file's display part only: lw_config_read leaves them empty
   * (n_channels 0, preview_url 0); lw_config_parse fills the defaults. */
  int n_channels;                     /* channels the prompt offers ... */
  uint8_t channels[LW_CHANNEL_COUNT]; /* ... in this default order (lw_channel values, each once;
                                         default: every channel in LW_CHANNELS order) */
  int preview_url;                    /* preview.allow_url: `?loopwise-preview=<variant>` shows a
                                         variant on a live page (default 0: refused) */
} lw_config;

/* Parse and check a program config. On success fills *out and returns LW_OK; otherwise
 * returns LW_ERR_INVALID and writes "path: problem" into err (errlen bytes, caller-owned).
 * json need not be NUL-terminated. Allocates only temporarily (cJSON), frees it all. */
lw_status lw_config_parse(const char *json, size_t len, lw_config *out, char *err, size_t errlen);
/* As lw_config_parse, but reports every error, one "path: problem" a line in errs (errlen
 * bytes, caller-owned; cut short, NUL-terminated, when it fills), their count in *n_errors
 * (0 on success). A mistake is reported once, not again by the checks that follow from it. */
lw_status lw_config_check_all(const char *json, size_t len, lw_config *out, char *errs, size_t errlen,
                              int *n_errors);

/* The compiled form (.lwc, models/FORMAT.md) that the runtime reads instead of JSON, so the
 * page downloads no JSON parser. lw_config_write writes it into buf (cap bytes) and returns
 * the size it needs: when that is more than cap, nothing usable was written (call it with
 * cap 0 to measure); 0 means its temporary buffer could not be allocated. The reader checks magic, version and checksum, bounds every count,
 * string and index and re-checks every number's range, so nothing the engine relies on can be
 * wrong whatever the bytes; the rules lw_config_parse explains to people (names' characters
 * and uniqueness, ladder order, UTF-8 text) it leaves to the compiler. On failure it returns LW_ERR_INVALID,
 * LW_ERR_VERSION or LW_ERR_CORRUPT with the reason in err and leaves *out untouched. */
size_t lw_config_write(const lw_config *cfg, uint8_t *buf, size_t cap);
/* lw_config_write for a config read from JSON: json (len bytes) is the text lw_config_parse
 * accepted as cfg; its `locales` (per-language texts, checked by lw_config_parse but not kept
 * in lw_config) go into the display part too. Same return values as lw_config_write. */
size_t lw_config_write_json(const lw_config *cfg, const char *json, size_t len, uint8_t *buf, size_t cap);
/* The texts (program, share, variant and ladder texts) are in the file's display part for
 * the widget (models/FORMAT.md); the engine never uses them and lw_config_read leaves them
 * empty. */
lw_status lw_config_read(const uint8_t *data, size_t len, lw_config *out, char *err, size_t errlen);

/* The program config's JSON Schema (draft 2020-12), generated from the checker's field
 * tables, as compact JSON into buf (cap bytes, NUL-terminated). Returns its length, more than
 * cap - 1 when it did not fit (call again with more room), 0 on an internal overflow. The
 * committed copy is web/config.schema.json (`loopwise-config schema`). */
size_t lw_config_schema(char *buf, size_t cap);

/* Index of an event or variant by name, or -1. */
int lw_config_event_index(const lw_config *cfg, const char *name);
int lw_config_variant_index(const lw_config *cfg, const char *id);
int lw_config_attr_index(const lw_config *cfg, const char *name);
int lw_config_attr_value_index(const lw_config *cfg, int attr, const char *value);

#ifdef __cplusplus
}
#endif
#endif
