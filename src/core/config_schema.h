/* config_schema.h: the program config's schema and rules, shared by the JSON reader
 * (config.c, which needs cJSON) and the compiled-config reader and writer (config_bin.c,
 * which the WASM runtime links without any JSON parser). Internal to the core. */
#ifndef LW_CONFIG_SCHEMA_H
#define LW_CONFIG_SCHEMA_H

#include <stddef.h>

#include "loopwise/config.h"
#include "sbuf.h"

/* ---- errors with a JSON path -------------------------------------------------------
 * Each nested check appends ".key" or "[i]" to the path and truncates back when it
 * returns. By default only the first error is kept and later checks see `failed` and stop;
 * with `all` every error is kept, one "path: problem" a line, and checks go on (LW_CFG_GOING)
 * wherever what they read stays meaningful; a second error at a path already reported is
 * dropped, so one mistake is not reported again by the checks that follow from it. */
typedef struct {
  char path[160];
  size_t path_len;
  char *err;
  size_t errlen;
  int failed; /* at least one error */
  int all;    /* keep every error */
  int n_errors;
} lw_cfg_ctx;
#define LW_CFG_GOING(c) (!(c)->failed || (c)->all)

void lw_cfg_ctx_init(lw_cfg_ctx *c, char *err, size_t errlen);
size_t lw_cfg_push_key(lw_cfg_ctx *c, const char *key);
size_t lw_cfg_push_index(lw_cfg_ctx *c, int i);
void lw_cfg_pop(lw_cfg_ctx *c, size_t mark);
/* Starts "path: " in the error and returns 1 with a builder for the rest (0 once failed). */
int lw_cfg_fail_begin(lw_cfg_ctx *c, lw_sbuf *sb);
void lw_cfg_fail(lw_cfg_ctx *c, const char *msg);
/* Fails at the current path plus `key` (NULL: the current path) with prefix + name + suffix. */
void lw_cfg_fail_named(lw_cfg_ctx *c, const char *key, const char *prefix, const char *name,
                       const char *suffix);

/* ---- the schema ----------------------------------------------------------------------
 * Scalar fields are described by tables: the key, its type and range, and where it goes
 * in the target struct. The JSON reader checks and stores fields by them; the compiled
 * format writes and reads the same fields in table order and re-checks their ranges. */
enum { LW_K_UINT, LW_K_NUM, LW_K_BOOL, LW_K_NAME, LW_K_TEXT };

typedef struct {
  const char *key;
  unsigned char kind, required;
  unsigned char since; /* the compiled format (.lwc) version that added the field (0 = the first) */
  unsigned short off, size; /* offset in the target struct; size of a text buffer */
  double min, max;
  double def; /* the default of an optional number or boolean (README "Program config reference") */
} lw_cfg_field;

typedef struct {
  const char *key; /* NULL for the top level */
  int required;
  const lw_cfg_field *fields;
  int n;
} lw_cfg_object;

/* The top level and the plain objects below it, all stored in lw_config. */
extern const lw_cfg_object lw_cfg_objects[];
extern const int lw_cfg_n_objects;
/* Array elements: milestones (plus "event"), variants, ladder steps. */
extern const lw_cfg_object lw_cfg_milestone, lw_cfg_variant, lw_cfg_ladder;
/* preview (display part only: the widget's, never the engine's). */
extern const lw_cfg_object lw_cfg_preview;
/* A variant's fields besides its table: "enabled" (JSON only; false compiles to weight 0). */
extern const char *const lw_cfg_variant_extra[];

/* A config with every default set and nothing else. */
void lw_cfg_defaults(lw_config *cfg);
/* An array element (a milestone, variant or ladder step) with its defaults set. */
void lw_cfg_element_defaults(const lw_cfg_object *o, void *elem);
/* Is the name or text s (stored for f) acceptable: a valid name, or valid UTF-8 and non-empty
 * where required? On failure reports "expected ..." (or the UTF-8 problem) at the current path. */
int lw_cfg_check_text(lw_cfg_ctx *c, const lw_cfg_field *f, const char *s);
/* "expected an integer from 1 to 1000" and the like: what f accepts, for messages. */
void lw_cfg_describe(lw_sbuf *sb, const lw_cfg_field *f);
/* Whether an array at path.key (key NULL: the current path) has min to max entries; if not,
 * fails with "expected min to max entries, got n". */
int lw_cfg_count_ok(lw_cfg_ctx *c, const char *key, int n, int min, int max);
/* The rules that span fields and the limits the engine relies on (counts, indexes,
 * unique names): run on every config however it was read. */
void lw_cfg_check_rules(lw_cfg_ctx *c, const lw_config *cfg);

#endif
