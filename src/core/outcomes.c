/* outcomes.c: what happens after a decision: the outcomes of a shown prompt, which start
 * cooldowns and count shares, and the referee side of a referral link. */
#include <string.h>

#include "engine_internal.h"
#include "loopwise/text.h"
#include "sbuf.h"

static int is_hex_id(const char *s) { return lw_ascii_is(LW_CS_HEX, s, LW_DECISION_ID_LEN, LW_DECISION_ID_LEN); }

static lw_status bad_id(char *err, size_t errlen) {
  lw_strlcpy(err, "decision id must be 16 lowercase hex characters", errlen);
  return LW_ERR_INVALID;
}

lw_status lw_engine_close(lw_engine *e, const char *decision_id, char *err, size_t errlen) {
  if (!is_hex_id(decision_id)) return bad_id(err, errlen);
  if (strcmp(e->guard.open_id, decision_id) == 0) e->guard.open_id[0] = '\0';
  return LW_OK; /* local only: closing is not an outcome the server learns from */
}

lw_status lw_engine_outcome_named(lw_engine *e, const char *decision_id, const char *name,
                                  int64_t now_ms, char *err, size_t errlen) {
  if (strcmp(name, LW_OUTCOME_CLOSE) == 0) return lw_engine_close(e, decision_id, err, errlen);
  int kind = lw_kind_parse(name);
  return lw_engine_outcome(e, decision_id, kind < 0 ? LW_KIND_COUNT : (lw_kind)kind, now_ms, err, errlen);
}

/* One outcome record. token and channel: a share's or copy's (wire v2), else NULL. */
static lw_status log_outcome(lw_engine *e, const char *decision_id, lw_kind kind, const char *token,
                             const char *channel, int64_t now_ms) {
  unsigned flags = lw_kind_flags(kind);
  lw_guard *g = &e->guard;
  int is_open = strcmp(g->open_id, decision_id) == 0;
  if (kind == LW_KIND_DISMISS) {
    g->dismiss_total++;
    g->last_dismiss_ms = now_ms;
  } else if (flags & LW_KIND_F_SHARED) {
    g->share_total++;
    g->last_share_ms = now_ms;
  }
  /* Every outcome but an impression ends the prompt on screen. */
  int closes = is_open && kind != LW_KIND_IMPRESSION;
  char buf[400];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  lw_engine_record_begin(e, &sb, lw_kind_name(kind), now_ms, decision_id);
  if (is_open) {
    lw_sb_str(&sb, ",\"action\":\"");
    lw_sb_str(&sb, g->open_action);
    lw_sb_char(&sb, '"');
  }
  if (flags & LW_KIND_F_SHARED) {
    lw_sb_str(&sb, ",\"code\":\"");
    lw_sb_str(&sb, g->code);
    lw_sb_str(&sb, "\",\"token\":\"");
    lw_sb_str(&sb, token);
    lw_sb_str(&sb, "\",\"channel\":\"");
    lw_sb_str(&sb, channel);
    lw_sb_char(&sb, '"');
  }
  lw_engine_record_push(e, &sb);
  if (closes) g->open_id[0] = '\0';
  return LW_OK;
}

/* A share through channel with the token made of random (LW_TOKEN_BYTES). The record's kind
 * follows the channel: the clipboard is a copy, every other channel a share. */
static lw_status share(lw_engine *e, const char *decision_id, lw_channel ch, const uint8_t *random,
                       int64_t now_ms, char *token_out) {
  lw_sbuf sb;
  lw_sb_init(&sb, e->last_token, sizeof e->last_token);
  lw_sb_hex(&sb, random, LW_TOKEN_BYTES);
  if (token_out) memcpy(token_out, e->last_token, sizeof e->last_token);
  return log_outcome(e, decision_id, ch == LW_CHANNEL_COPY ? LW_KIND_COPY : LW_KIND_SHARE, e->last_token,
                     lw_channel_name(ch), now_ms);
}

lw_status lw_engine_share(lw_engine *e, const char *decision_id, const char *channel,
                          const uint8_t random[LW_TOKEN_BYTES], int64_t now_ms,
                          char token_out[LW_TOKEN_LEN + 1], char *err, size_t errlen) {
  if (!is_hex_id(decision_id)) return bad_id(err, errlen);
  int ch = channel ? lw_channel_parse(channel) : -1;
  if (ch < 0) {
    lw_strlcpy(err, "channel: unknown share channel (see LW_CHANNELS: native, copy, email, ...)", errlen);
    return LW_ERR_INVALID;
  }
  if (!random) {
    lw_strlcpy(err, "a share needs 16 random bytes for its token", errlen);
    return LW_ERR_INVALID;
  }
  return share(e, decision_id, (lw_channel)ch, random, now_ms, token_out);
}

const char *lw_engine_last_token(const lw_engine *e) { return e->last_token; }

int lw_engine_channels(lw_engine *e, int64_t now_ms, int tz_offset_min, const char **out, int cap) {
  const lw_model *m = e->model;
  /* a holdout install sees nothing learned: the prompt keeps the config's channel order */
  if (!m || m->n_channel_rows == 0 || lw_engine_in_holdout(e)) return 0;
  int n_x = 0;
  lw_feature x[LW_MAX_FEATURES];
  int k = lw_engine_build_features(e, now_ms, tz_offset_min, -1, x, NULL, LW_MAX_FEATURES, &n_x);
  if (k < 0 || k >= m->n_channel_rows) k = 0;
  int n = 0;
  for (int i = 0; i < m->n_channels[k] && n < cap; i++) out[n++] = lw_channel_name((lw_channel)m->channels[k][i]);
  return n;
}

lw_status lw_engine_outcome(lw_engine *e, const char *decision_id, lw_kind kind, int64_t now_ms,
                            char *err, size_t errlen) {
  if (!is_hex_id(decision_id)) return bad_id(err, errlen);
  unsigned flags = lw_kind_flags(kind);
  if (!(flags & LW_KIND_F_OUTCOME)) {
    lw_strlcpy(err, "unknown outcome kind", errlen);
    return LW_ERR_INVALID;
  }
  if (flags & LW_KIND_F_SHARED) {
    /* A caller that passes no bytes of its own: the token comes from the engine's token
     * stream (seeded from the engine's seed, so from the browser's CSPRNG in production). */
    uint8_t random[LW_TOKEN_BYTES];
    lw_rng_bytes(&e->token_rng, random, sizeof random);
    return share(e, decision_id, kind == LW_KIND_COPY ? LW_CHANNEL_COPY : LW_CHANNEL_NATIVE, random, now_ms,
                 NULL);
  }
  return log_outcome(e, decision_id, kind, NULL, NULL, now_ms);
}

static int is_code(const char *s) { return lw_ascii_is(LW_CS_CODE, s, LW_CODE_MIN_LEN, LW_CODE_LEN); }

static void log_referee(lw_engine *e, lw_kind kind, int64_t now_ms) {
  char buf[200];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  lw_engine_record_begin(e, &sb, lw_kind_name(kind), now_ms, NULL);
  lw_sb_str(&sb, ",\"code\":\"");
  lw_sb_str(&sb, e->guard.referred_by);
  lw_sb_char(&sb, '"');
  if (e->referred_token[0]) {
    lw_sb_str(&sb, ",\"token\":\"");
    lw_sb_str(&sb, e->referred_token);
    lw_sb_char(&sb, '"');
  }
  lw_engine_record_push(e, &sb);
}

lw_status lw_engine_referee_landing(lw_engine *e, const char *code, int64_t now_ms, char *err,
                                    size_t errlen) {
  return lw_engine_referee_landing_token(e, code, NULL, now_ms, err, errlen);
}

lw_status lw_engine_referee_landing_token(lw_engine *e, const char *code, const char *token, int64_t now_ms,
                                          char *err, size_t errlen) {
  if (token && !*token) token = NULL;
  if (token && !lw_ascii_is(LW_CS_HEX, token, LW_TOKEN_LEN, LW_TOKEN_LEN)) {
    lw_strlcpy(err, "token must be 32 lowercase hex characters", errlen);
    return LW_ERR_INVALID;
  }
  if (!is_code(code)) {
    lw_strlcpy(err, "referral code must be 6-16 of A-Z and 0-9", errlen);
    return LW_ERR_INVALID;
  }
  if (strcmp(code, e->guard.code) == 0) {
    lw_strlcpy(err, "a device cannot refer itself", errlen);
    return LW_ERR_INVALID;
  }
  if (strcmp(e->guard.referred_by, code) == 0 && (!token || strcmp(e->referred_token, token) == 0))
    return LW_OK; /* a reload of the same link */
  lw_strlcpy(e->guard.referred_by, code, sizeof e->guard.referred_by);
  lw_strlcpy(e->referred_token, token ? token : "", sizeof e->referred_token);
  e->guard.referee_converted = 0;
  log_referee(e, LW_KIND_LANDING, now_ms);
  return LW_OK;
}

lw_status lw_engine_referee_conversion(lw_engine *e, int64_t now_ms, char *err, size_t errlen) {
  if (!e->guard.referred_by[0]) {
    lw_strlcpy(err, "this device did not arrive through a referral link", errlen);
    return LW_ERR_NOT_FOUND;
  }
  if (e->guard.referee_converted) return LW_OK; /* counted once */
  e->guard.referee_converted = 1;
  log_referee(e, LW_KIND_CONVERSION, now_ms);
  return LW_OK;
}

