/* config_bin.c: the compiled program config (.lwc; layout in models/FORMAT.md).
 *
 * Product managers write JSON; `loopwise-config compile` checks it (config.c) and writes
 * this form, which the runtime reads without a JSON parser: the page then downloads no
 * parser and no schema messages it would only need for a config that was never checked.
 * It has two parts under one checksum: what the engine reads (binary), and what the widget
 * shows (the texts, as JSON for the page's own JSON.parse); the engine never sees a text.
 * The reader trusts no byte: past the checksum it bounds every count, string and index and
 * re-checks every number against the schema's tables (config_schema.c), so nothing the engine
 * relies on can be out of range. One walker both writes and reads the layout, so the two
 * cannot disagree. */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "config_schema.h"
#include "loopwise/config.h"
#include "loopwise/model.h"

/* 2 added explore.relative_temperature, explore.not_now and explore.new_variant; a version 1
 * file is read with their defaults (fields are marked with the version that added them). 3
 * added approval.send (none in an older file). */
#define LWC_VERSION 3

typedef struct {
  int reading;
  unsigned version; /* of the file being read or written */
  lw_wr w;
  lw_rd r;
} io_t;

static void io_u32(io_t *io, int nbytes, uint32_t *v) {
  if (io->reading)
    *v = (uint32_t)lw_rd_u(&io->r, nbytes);
  else
    lw_wr_u(&io->w, nbytes, *v);
}

/* A small signed count or index, stored plus one in one byte (so -1 is 0); a value read
 * back above max marks the file bad before anything is stored past an array's end. */
static void io_small(io_t *io, int *v, int max) {
  uint32_t t = (uint32_t)(*v + 1);
  io_u32(io, 1, &t);
  if (io->reading) {
    if ((int)t - 1 > max) io->r.bad = 1;
    *v = io->r.bad ? 0 : (int)t - 1;
  }
}

static void io_str(io_t *io, char *s, size_t size) {
  if (!io->reading) {
    size_t n = strlen(s);
    lw_wr_u(&io->w, 1, n);
    lw_wr_bytes(&io->w, s, n);
    return;
  }
  size_t n = (size_t)lw_rd_u(&io->r, 1);
  const uint8_t *p = lw_rd_take(&io->r, n);
  if (!p || n >= size || memchr(p, 0, n)) {
    io->r.bad = 1;
    n = 0;
  }
  if (n) memcpy(s, p, n);
  s[n] = '\0';
}

static void io_fields(io_t *io, const lw_cfg_object *o, void *base) {
  for (int i = 0; i < o->n; i++) {
    const lw_cfg_field *f = &o->fields[i];
    void *p = (char *)base + f->off;
    if (f->since > io->version) continue; /* an older file: the field keeps its default */
    if (f->kind == LW_K_NUM) {
      uint64_t u;
      memcpy(&u, p, sizeof u);
      uint32_t lo = (uint32_t)u, hi = (uint32_t)(u >> 32);
      io_u32(io, 4, &lo);
      io_u32(io, 4, &hi);
      u = (uint64_t)hi << 32 | lo;
      memcpy(p, &u, sizeof u);
    } else if (f->kind == LW_K_UINT || f->kind == LW_K_BOOL) {
      io_u32(io, f->kind == LW_K_BOOL ? 1 : 4, p);
    } else if (f->kind == LW_K_NAME) {
      io_str(io, p, f->size);
    } /* texts are the widget's, in the display part */
  }
}

/* The whole layout after the header, for writing and reading alike. */
static void walk(io_t *io, lw_config *cfg) {
  for (int i = 0; i < lw_cfg_n_objects; i++) io_fields(io, &lw_cfg_objects[i], cfg);
  io_small(io, &cfg->n_events, LW_MAX_EVENTS);
  for (int i = 0; i < cfg->n_events; i++) io_str(io, cfg->events[i], LW_NAME_LEN + 1);
  io_small(io, &cfg->n_milestones, LW_MAX_MILESTONES);
  for (int i = 0; i < cfg->n_milestones; i++) {
    io_small(io, &cfg->milestones[i].event, LW_MAX_EVENTS);
    io_fields(io, &lw_cfg_milestone, &cfg->milestones[i]);
  }
  io_small(io, &cfg->n_variants, LW_MAX_VARIANTS);
  for (int i = 0; i < cfg->n_variants; i++) io_fields(io, &lw_cfg_variant, &cfg->variants[i]);
  io_small(io, &cfg->n_ladder, LW_MAX_LADDER);
  for (int i = 0; i < cfg->n_ladder; i++) io_fields(io, &lw_cfg_ladder, &cfg->ladder[i]);
  io_small(io, &cfg->n_attributes, LW_MAX_ATTRIBUTES);
  for (int a = 0; a < cfg->n_attributes; a++) {
    io_str(io, cfg->attr_names[a], LW_NAME_LEN + 1);
    io_small(io, &cfg->attr_n_values[a], LW_MAX_ATTR_VALUES);
    for (int v = 0; v < cfg->attr_n_values[a]; v++) io_str(io, cfg->attr_values[a][v], LW_NAME_LEN + 1);
  }
  io_small(io, &cfg->approval_attr, LW_MAX_ATTRIBUTES);
  io_u32(io, 4, &cfg->approval_values);
  if (io->version >= 3) io_u32(io, 4, &cfg->approval_send);
  io_small(io, &cfg->fairness_attr, LW_MAX_ATTRIBUTES);
}

/* ---- the display part: what the widget shows, as JSON ------------------------------ */

static void key_str(lw_sbuf *sb, const char *key, const char *val) {
  lw_sb_json_str(sb, key);
  lw_sb_char(sb, ':');
  lw_sb_json_str(sb, val);
}

/* The widget's fields (lw_cfg_shown: theme, placement) that the config sets, as one object per
 * table ("theme":{"accent":"#25e"}); nothing for a table with none set. */
static void ui_tables(lw_sbuf *sb, const lw_config *cfg) {
  for (int i = 0; i < lw_cfg_n_shown; i++) {
    const lw_cfg_object *o = &lw_cfg_shown[i];
    int n = 0;
    for (int k = 0; k < o->n; k++) {
      const lw_cfg_field *f = &o->fields[k];
      const char *p = (const char *)cfg + f->off;
      uint32_t u = 0;
      if (f->kind == LW_K_UINT) memcpy(&u, p, sizeof u);
      size_t d = f->kind == LW_K_CHOICE ? strcspn(LW_CFG_CHOICES(f), " ") : 0; /* the default choice's length */
      if (f->kind == LW_K_UINT ? u == UINT32_MAX : !*p || (d && strncmp(p, LW_CFG_CHOICES(f), d) == 0 && !p[d]))
        continue; /* not set (a choice: the default) */
      lw_sb_str(sb, n++ ? "," : ",\"");
      if (n == 1) {
        lw_sb_str(sb, o->key);
        lw_sb_str(sb, "\":{");
      }
      lw_sb_json_str(sb, f->key);
      lw_sb_char(sb, ':');
      if (f->kind == LW_K_UINT)
        lw_sb_u64(sb, u);
      else
        lw_sb_json_str(sb, p);
    }
    if (n) lw_sb_char(sb, '}');
  }
}

static size_t ui_json(const lw_config *cfg, const char *extra, char *buf, size_t cap) {
  lw_sbuf sb;
  lw_sb_init(&sb, buf, cap);
  lw_sb_str(&sb, "{\"share\":{");
  key_str(&sb, "url", cfg->share_url);
  lw_sb_char(&sb, ',');
  key_str(&sb, "title", cfg->share_title);
  lw_sb_char(&sb, ',');
  key_str(&sb, "text", cfg->share_text);
  lw_sb_str(&sb, "},\"variants\":[");
  for (int i = 0; i < cfg->n_variants; i++) {
    const lw_variant *v = &cfg->variants[i];
    lw_sb_str(&sb, i ? ",{" : "{");
    key_str(&sb, "id", v->id); /* for Loopwise.preview(id) */
    lw_sb_char(&sb, ',');
    key_str(&sb, "title", v->title);
    lw_sb_char(&sb, ',');
    key_str(&sb, "message", v->message);
    lw_sb_char(&sb, ',');
    key_str(&sb, "referrer_reward", v->referrer_reward);
    lw_sb_char(&sb, ',');
    key_str(&sb, "referee_reward", v->referee_reward);
    lw_sb_char(&sb, '}');
  }
  lw_sb_char(&sb, ']');
  if (cfg->n_ladder) {
    lw_sb_str(&sb, ",\"ladder\":[");
    for (int i = 0; i < cfg->n_ladder; i++) {
      lw_sb_str(&sb, i ? ",{\"referrals\":" : "{\"referrals\":");
      lw_sb_u64(&sb, cfg->ladder[i].referrals);
      lw_sb_char(&sb, ',');
      key_str(&sb, "reward", cfg->ladder[i].reward);
      lw_sb_char(&sb, '}');
    }
    lw_sb_char(&sb, ']');
  }
  /* The prompt's channels in their default order, and whether ?loopwise-preview is allowed
   * (only when it is: the widget reads an absent key as false). */
  lw_sb_str(&sb, ",\"channels\":[");
  for (int i = 0; i < cfg->n_channels && i < LW_CHANNEL_COUNT; i++) {
    if (i) lw_sb_char(&sb, ',');
    lw_sb_json_str(&sb, lw_channel_name((lw_channel)cfg->channels[i]));
  }
  lw_sb_char(&sb, ']');
  if (cfg->preview_url) lw_sb_str(&sb, ",\"preview\":true");
  lw_sb_str(&sb, ",\"model\":{\"refresh_hours\":");
  lw_sb_u64(&sb, cfg->model_refresh_hours);
  lw_sb_char(&sb, '}');
  ui_tables(&sb, cfg);
  if (extra && *extra) {
    lw_sb_char(&sb, ',');
    lw_sb_str(&sb, extra);
  }
  lw_sb_char(&sb, '}');
  return sb.overflow ? 0 : sb.len;
}

/* Room for the display JSON of any config: every text escaped at worst 6 bytes a byte. */
static size_t ui_bound(const lw_config *cfg) {
  size_t n = 4096 + 16 * LW_CHANNEL_COUNT + 6 * (strlen(cfg->share_url) + strlen(cfg->share_title) + strlen(cfg->share_text));
  for (int i = 0; i < cfg->n_variants; i++) {
    const lw_variant *v = &cfg->variants[i];
    n += 6 * (strlen(v->id) + strlen(v->title) + strlen(v->message) + strlen(v->referrer_reward) +
              strlen(v->referee_reward)) + 128;
  }
  for (int i = 0; i < cfg->n_ladder; i++) n += 6 * strlen(cfg->ladder[i].reward) + 64;
  n += 6 * (strlen(cfg->theme_logo) + strlen(cfg->theme_font) + strlen(cfg->placement_target)) + 512; /* theme, placement */
  return n;
}

size_t lw_config_write(const lw_config *cfg, uint8_t *buf, size_t cap) { return lw_cfg_write(cfg, NULL, buf, cap); }

size_t lw_cfg_write(const lw_config *cfg, const char *extra, uint8_t *buf, size_t cap) {
  size_t ui_cap = ui_bound(cfg) + (extra ? strlen(extra) + 1 : 0);
  char *ui = malloc(ui_cap);
  if (!ui) return 0;
  size_t ui_len = ui_json(cfg, extra, ui, ui_cap);
  io_t io = {0};
  io.version = LWC_VERSION;
  io.w.buf = buf;
  io.w.cap = cap;
  lw_wr_bytes(&io.w, "LWCF", 4);
  lw_wr_u(&io.w, 2, LWC_VERSION);
  lw_wr_u(&io.w, 2, 0);
  lw_wr_u(&io.w, 4, 0); /* the engine part's length, filled in below */
  lw_config copy = *cfg; /* the walker takes a mutable config; writing leaves it unchanged */
  walk(&io, &copy);
  size_t engine_len = io.w.len - 12;
  if (cap >= 12) {
    lw_wr len_at = {buf + 8, 4, 0};
    lw_wr_u(&len_at, 4, engine_len);
  }
  lw_wr_bytes(&io.w, ui, ui_len);
  free(ui);
  size_t n = io.w.len;
  lw_wr_u(&io.w, 4, n + 4 <= cap ? lw_crc32(0, buf, n) : 0);
  return io.w.len;
}

/* The runtime re-checks what its own safety depends on: every number within its table's
 * range (so no NaN or overflow reaches the engine), the counts and indexes, a weight to draw
 * by. The rules a product manager needs explained (names' characters and uniqueness, ladder
 * order, UTF-8, the share URL's {code}) are loopwise-config's job, and the checksum keeps an
 * accident from getting past it; this keeps their messages out of the page download. Returns
 * the first field out of range, or NULL. */
static const char *out_of_range(const lw_cfg_object *o, const void *base) {
  for (int i = 0; i < o->n; i++) {
    const lw_cfg_field *f = &o->fields[i];
    const char *p = (const char *)base + f->off;
    double d;
    uint32_t u;
    if (f->kind == LW_K_NUM) {
      memcpy(&d, p, sizeof d);
    } else if (f->kind == LW_K_UINT || f->kind == LW_K_BOOL) {
      memcpy(&u, p, sizeof u);
      d = (int32_t)u == -1 && f->def == -1 ? -1.0 : (double)u; /* -1 is "none" where it is the default */
    } else {
      d = f->min; /* names: the walker already bounded and terminated them */
    }
    if (!(d >= f->min && d <= f->max) && !(d == -1 && f->def == -1)) return f->key;
  }
  return NULL;
}

static const char *invalid_part(const lw_config *cfg) {
  const char *bad = NULL;
  for (int i = 0; i < lw_cfg_n_objects && !bad; i++) bad = out_of_range(&lw_cfg_objects[i], cfg);
  uint64_t weight = 0;
  for (int i = 0; i < cfg->n_milestones && !bad; i++) {
    bad = out_of_range(&lw_cfg_milestone, &cfg->milestones[i]);
    if (cfg->milestones[i].event < 0 || cfg->milestones[i].event >= cfg->n_events) bad = "event";
  }
  for (int i = 0; i < cfg->n_variants && !bad; i++) {
    bad = out_of_range(&lw_cfg_variant, &cfg->variants[i]);
    weight += cfg->variants[i].weight;
  }
  for (int i = 0; i < cfg->n_ladder && !bad; i++) bad = out_of_range(&lw_cfg_ladder, &cfg->ladder[i]);
  for (int a = 0; a < cfg->n_attributes && !bad; a++)
    if (cfg->attr_n_values[a] < 1) bad = "attributes";
  if (bad) return bad;
  if (cfg->n_events < 1 || cfg->n_milestones < 1 || cfg->n_variants < 1 || !weight) return "variants";
  if (cfg->approval_attr >= cfg->n_attributes || cfg->fairness_attr >= cfg->n_attributes) return "attribute";
  if ((cfg->quiet_start_hour < 0) != (cfg->quiet_end_hour < 0)) return "quiet_hours";
  if (cfg->approval_send >> cfg->n_attributes) return "approval.send"; /* only attributes it has */
  return NULL;
}

static lw_status fail_with(char *err, size_t errlen, lw_status st, const char *msg) {
  lw_sbuf sb;
  lw_sb_init(&sb, err, errlen);
  lw_sb_str(&sb, msg);
  return st;
}

lw_status lw_config_read(const uint8_t *data, size_t len, lw_config *out, char *err, size_t errlen) {
  if (len < 16 || memcmp(data, "LWCF", 4) != 0)
    return fail_with(err, errlen, LW_ERR_INVALID,
                     "not a compiled Loopwise config (compile the JSON with loopwise-config)");
  unsigned version = data[4] | data[5] << 8;
  if (version < 1 || version > LWC_VERSION || data[6] || data[7])
    return fail_with(err, errlen, LW_ERR_VERSION,
                     "compiled config version is unknown to this runtime (reads 1-3): recompile it");
  lw_rd tail = {data + len - 4, 4, 0, 0}, head = {data + 8, 4, 0, 0};
  if (lw_crc32(0, data, len - 4) != (uint32_t)lw_rd_u(&tail, 4))
    return fail_with(err, errlen, LW_ERR_CORRUPT, "compiled config checksum mismatch (damaged or truncated file)");

  lw_config cfg;
  lw_cfg_defaults(&cfg);
  io_t io = {0};
  io.reading = 1;
  io.version = version;
  io.r.p = data + 12;
  io.r.len = (size_t)lw_rd_u(&head, 4);
  if (io.r.len <= len - 16) walk(&io, &cfg);
  if (io.r.len > len - 16 || io.r.bad || io.r.off != io.r.len)
    return fail_with(err, errlen, LW_ERR_CORRUPT, "compiled config is malformed (recompile it)");

  const char *bad = invalid_part(&cfg);
  if (bad) {
    lw_sbuf sb;
    lw_sb_init(&sb, err, errlen);
    lw_sb_str(&sb, "compiled config is invalid (");
    lw_sb_str(&sb, bad);
    lw_sb_str(&sb, "): check and recompile it with loopwise-config");
    return LW_ERR_INVALID;
  }
  *out = cfg;
  return LW_OK;
}

