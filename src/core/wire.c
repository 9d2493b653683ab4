/* wire.c: the name tables of loopwise/wire.h, generated from its X-macros, and the batch
 * envelope. Shared by the runtime, the ingest server and the tools. */
#include "loopwise/wire.h"

#include <string.h>

#include "sbuf.h"

#define LW_STR_(x) #x
#define LW_STR(x) LW_STR_(x)

/* One array per column, so a program links only the columns it uses (the WASM runtime needs
 * the names and flags, not the ingest's rules or stats names). */
static const char *const k_kind_names[LW_KIND_COUNT] = {
#define LW_X_KIND_NAME(e, name, stat, flags, rules) name,
    LW_KINDS(LW_X_KIND_NAME)
#undef LW_X_KIND_NAME
};
static const char *const k_kind_stats[LW_KIND_COUNT] = {
#define LW_X_KIND_STAT(e, name, stat, flags, rules) stat,
    LW_KINDS(LW_X_KIND_STAT)
#undef LW_X_KIND_STAT
};
static const unsigned char k_kind_flags[LW_KIND_COUNT] = {
#define LW_X_KIND_FLAGS(e, name, stat, flags, rules) flags,
    LW_KINDS(LW_X_KIND_FLAGS)
#undef LW_X_KIND_FLAGS
};
static const char *const k_kind_rules[LW_KIND_COUNT] = {
#define LW_X_KIND_RULES(e, name, stat, flags, rules) rules,
    LW_KINDS(LW_X_KIND_RULES)
#undef LW_X_KIND_RULES
};

/* Every rules string has one letter per field. */
#define LW_X_RULES_LEN(e, name, stat, flags, rules) \
  _Static_assert(sizeof rules - 1 == LW_FIELD_COUNT, "LW_KINDS rules for " name " need one letter per field");
LW_KINDS(LW_X_RULES_LEN)
#undef LW_X_RULES_LEN

static const char *const k_fields[LW_FIELD_COUNT] = {
#define LW_X_FIELD_NAME(e, name, since) name,
    LW_FIELDS(LW_X_FIELD_NAME)
#undef LW_X_FIELD_NAME
};
static const unsigned char k_field_since[LW_FIELD_COUNT] = {
#define LW_X_FIELD_SINCE(e, name, since) since,
    LW_FIELDS(LW_X_FIELD_SINCE)
#undef LW_X_FIELD_SINCE
};
#define LW_X_FIELD_SINCE_OK(e, name, since) \
  _Static_assert(since >= 1 && since <= LW_WIRE_READ_VERSION, "LW_FIELDS: " name " since a version the server reads");
LW_FIELDS(LW_X_FIELD_SINCE_OK)
#undef LW_X_FIELD_SINCE_OK

/* The approval kinds came with their fields. */
#define LW_X_FIELD_APPROVAL(e, name, since) \
  _Static_assert(LW_FIELD_##e != LW_FIELD_ATTRS || since == LW_APPROVAL_VERSION, "LW_APPROVAL_VERSION is attrs' since");
LW_FIELDS(LW_X_FIELD_APPROVAL)
#undef LW_X_FIELD_APPROVAL

static const char *const k_channels[LW_CHANNEL_COUNT] = {
#define LW_X_CHANNEL_NAME(e, name) name,
    LW_CHANNELS(LW_X_CHANNEL_NAME)
#undef LW_X_CHANNEL_NAME
};

static const char *const k_answers[LW_ANSWER_COUNT] = {
#define LW_X_ANSWER_NAME(e, name) name,
    LW_APPROVAL_ANSWERS(LW_X_ANSWER_NAME)
#undef LW_X_ANSWER_NAME
};

static const char *const k_modes[LW_MODE_COUNT] = {
#define LW_X_MODE_NAME(e, name) name,
    LW_MODES(LW_X_MODE_NAME)
#undef LW_X_MODE_NAME
};

const char *lw_kind_name(lw_kind kind) { return (unsigned)kind < LW_KIND_COUNT ? k_kind_names[kind] : "unknown"; }
const char *lw_kind_stat_name(lw_kind kind) {
  return (unsigned)kind < LW_KIND_COUNT ? k_kind_stats[kind] : "unknown";
}
unsigned lw_kind_flags(lw_kind kind) { return (unsigned)kind < LW_KIND_COUNT ? k_kind_flags[kind] : 0; }
char lw_kind_rule(lw_kind kind, lw_field f) {
  return (unsigned)kind < LW_KIND_COUNT && (unsigned)f < LW_FIELD_COUNT ? k_kind_rules[kind][f] : '-';
}
const char *lw_field_name(lw_field f) { return (unsigned)f < LW_FIELD_COUNT ? k_fields[f] : "unknown"; }
int lw_field_since(lw_field f) { return (unsigned)f < LW_FIELD_COUNT ? k_field_since[f] : 0; }
const char *lw_channel_name(lw_channel c) {
  return (unsigned)c < LW_CHANNEL_COUNT ? k_channels[c] : "unknown";
}
const char *lw_mode_name(lw_mode mode) { return (unsigned)mode < LW_MODE_COUNT ? k_modes[mode] : "unknown"; }

static int find(const char *const *names, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (name && strcmp(names[i], name) == 0) return i;
  return -1;
}

int lw_kind_parse(const char *name) { return find(k_kind_names, LW_KIND_COUNT, name); }
int lw_mode_parse(const char *name) { return find(k_modes, LW_MODE_COUNT, name); }
int lw_channel_parse(const char *name) { return find(k_channels, LW_CHANNEL_COUNT, name); }
const char *lw_answer_name(lw_approval_answer a) {
  return (unsigned)a < LW_ANSWER_COUNT ? k_answers[a] : "unknown";
}
int lw_answer_parse(const char *name) { return find(k_answers, LW_ANSWER_COUNT, name); }

int lw_action_is_prompt(const char *action) {
  return action && action[0] && strcmp(action, LW_ACTION_NONE) != 0 && strcmp(action, LW_ACTION_NOT_NOW) != 0;
}

lw_status lw_wire_take_batch(lw_outbox *ob, const char *batch_id, const char *write_key,
                             int64_t sent_at_ms, size_t max_bytes, char *buf, size_t cap, size_t *len,
                             size_t *n_events) {
  *len = 0;
  *n_events = 0;
  if (cap) buf[0] = '\0';
  if (lw_outbox_count(ob) == 0 || cap == 0) return LW_OK;
  if (max_bytes > cap - 1) max_bytes = cap - 1;
  lw_sbuf sb;
  lw_sb_init(&sb, buf, max_bytes + 1);
  lw_sb_str(&sb, "{\"v\":" LW_STR(LW_WIRE_VERSION) ",\"batch_id\":");
  lw_sb_json_str(&sb, batch_id);
  lw_sb_str(&sb, ",\"write_key\":");
  lw_sb_json_str(&sb, write_key);
  lw_sb_str(&sb, ",\"sent_at\":");
  lw_sb_i64(&sb, sent_at_ms);
  lw_sb_str(&sb, ",\"events\":[");
  size_t used, off = 0, n = 0;
  const char *data = lw_outbox_data(ob, &used);
  while (off < used) {
    const char *rec = data + off;
    size_t rlen = (size_t)((const char *)memchr(rec, '\n', used - off) - rec);
    /* this record, a comma before it, and the closing "]}" must still fit */
    if (sb.overflow || sb.len + rlen + (n ? 1 : 0) + 2 > max_bytes) break;
    if (n) lw_sb_char(&sb, ',');
    lw_sb_mem(&sb, rec, rlen);
    off += rlen + 1;
    n++;
  }
  /* A record that can never fit would block the outbox forever: it is dropped, as lost. */
  lw_outbox_drop(ob, n ? n : 1, n == 0);
  if (n == 0) {
    buf[0] = '\0';
    return LW_ERR_FULL;
  }
  lw_sb_str(&sb, "]}");
  *len = sb.len;
  *n_events = n;
  return LW_OK;
}
