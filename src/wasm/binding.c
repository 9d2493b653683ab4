/* binding.c: the thin WebAssembly export layer over the core (the only file that knows
 * about Emscripten). web/src/engine.js is its only caller.
 *
 * Calling convention: JavaScript passes strings as NUL-terminated UTF-8 in memory it got
 * from malloc, times as doubles (ms since the epoch; exact up to 2^53), and reads results
 * from the handle's output buffer (lw_w_out / lw_w_out_len) or error text (lw_w_err).
 * Each handle owns one engine, so one page can run several independently (tests do).
 * Exports only tests need live in test_exports.c (loopwise-test.wasm), not here. */
#include <emscripten.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/config.h"
#include "loopwise/engine.h"
#include "loopwise/wire.h"

/* Exported under one-letter names: the export section and the loader's property accesses
 * (which no minifier can shorten) are part of every page download, and the names cost about
 * 180 B of its gzip size. Each function's name is in its LW_EXPORT; web/src/engine.js lists
 * them beside the calls. */
#define LW_EXPORT(name) __attribute__((used, export_name(name)))

typedef struct {
  lw_engine *engine; /* first: test_exports.c reads it */
  char err[LW_ERRMSG_MAX];
  char *out;
  size_t out_cap, out_len;
} handle;

/* Make room for n bytes (plus a NUL) in the output buffer. */
static int out_reserve(handle *h, size_t n) {
  if (n + 1 <= h->out_cap) return 1;
  char *p = realloc(h->out, n + 1);
  if (!p) return 0;
  h->out = p;
  h->out_cap = n + 1;
  return 1;
}

static void set_err(handle *h, const char *msg) {
  size_t n = strlen(msg);
  if (n >= sizeof h->err) n = sizeof h->err - 1;
  memcpy(h->err, msg, n);
  h->err[n] = '\0';
}

LW_EXPORT("N") handle *lw_w_new(void) {
  handle *h = calloc(1, sizeof *h);
  if (h && !out_reserve(h, 1024)) {
    free(h);
    h = NULL;
  }
  return h;
}

LW_EXPORT("R") void lw_w_free(handle *h) {
  if (!h) return;
  lw_engine_free(h->engine);
  free(h->out);
  free(h);
}

LW_EXPORT("E") const char *lw_w_err(handle *h) { return h->err; }
LW_EXPORT("o") const char *lw_w_out(handle *h) { return h->out; }
LW_EXPORT("l") size_t lw_w_out_len(handle *h) { return h->out_len; }

/* Start the engine from a compiled config (.lwc; its display part is for the JS). */
LW_EXPORT("i") int lw_w_init(handle *h, const uint8_t *cfg_bytes, size_t len, uint32_t s0, uint32_t s1,
                                   uint32_t s2, uint32_t s3) {
  lw_config *cfg = malloc(sizeof *cfg);
  if (!cfg) return LW_ERR_NOMEM;
  lw_status st = lw_config_read(cfg_bytes, len, cfg, h->err, sizeof h->err);
  if (st == LW_OK) {
    lw_engine_free(h->engine);
    h->engine = NULL;
    st = lw_engine_create(cfg, (uint64_t)s1 << 32 | s0, (uint64_t)s3 << 32 | s2, 0, &h->engine, h->err,
                          sizeof h->err);
  }
  free(cfg);
  return st;
}

/* value: NaN for none; label: NULL or "" for none. */
LW_EXPORT("t") int lw_w_track(handle *h, const char *event, double value, const char *label,
                                    double now_ms, int tz_offset_min) {
  lw_decision d;
  lw_status st = lw_engine_track_value(h->engine, event, value, label, (int64_t)now_ms, tz_offset_min,
                                       &d, h->err, sizeof h->err);
  if (st == LW_OK) h->out_len = lw_decision_to_json(&d, h->out, h->out_cap);
  return st;
}

LW_EXPORT("a") int lw_w_approve(handle *h, const char *decision_id, double now_ms, int tz_offset_min) {
  lw_decision d;
  lw_status st = lw_engine_approve(h->engine, decision_id, (int64_t)now_ms, tz_offset_min, &d, h->err,
                                   sizeof h->err);
  if (st == LW_OK) h->out_len = lw_decision_to_json(&d, h->out, h->out_cap);
  return st;
}

/* The approval exchange (README "Approval requests"), one export: op 0 logs the request of
 * decision id with approval key arg (the out buffer says "1" when queued, "0" without consent);
 * op 1 applies answer arg (out: the decision's JSON); op 2 puts the id of the decision still
 * held for the server's answer in out, op 3 that of one held whose request was not sent ("":
 * none). */
LW_EXPORT("P") int lw_w_approval(handle *h, int op, const char *id, const char *arg, double now_ms,
                                 int tz_offset_min) {
  lw_decision d;
  int sent = 0;
  lw_status st = LW_OK;
  const char *text = "";
  if (op == 0) {
    st = lw_engine_approval_request(h->engine, id, arg, (int64_t)now_ms, &sent, h->err, sizeof h->err);
    text = sent ? "1" : "0";
  } else if (op == 1) {
    st = lw_engine_approval_answer(h->engine, id, arg, (int64_t)now_ms, tz_offset_min, &d, h->err, sizeof h->err);
    if (st == LW_OK) h->out_len = lw_decision_to_json(&d, h->out, h->out_cap);
    return st;
  } else {
    text = lw_engine_approval_held(h->engine, op == 2, (int64_t)now_ms);
  }
  size_t n = strlen(text);
  if (st == LW_OK && n < h->out_cap) {
    memcpy(h->out, text, n + 1);
    h->out_len = n;
  }
  return st;
}

LW_EXPORT("A") int lw_w_attribute(handle *h, const char *name, const char *value) {
  return lw_engine_set_attribute(h->engine, name, value, h->err, sizeof h->err);
}

LW_EXPORT("f") void lw_w_flags(handle *h, int gpc, int dnt, int busy) {
  lw_engine_set_privacy(h->engine, gpc, dnt);
  lw_engine_set_busy(h->engine, busy);
}

LW_EXPORT("m") int lw_w_model(handle *h, const uint8_t *buf, size_t len) {
  return lw_engine_set_model(h->engine, buf, len, h->err, sizeof h->err);
}

/* "none", "ready" or "no_data": whether the loaded model can decide for this program. */
LW_EXPORT("M") const char *lw_w_model_status(handle *h) { return lw_engine_model_status(h->engine); }


/* Referee side: code != NULL records a landing (token: the link's share token, NULL or ""
 * for none), code == NULL a conversion. */
LW_EXPORT("r") int lw_w_referee(handle *h, const char *code, const char *token, double now_ms) {
  return code ? lw_engine_referee_landing_token(h->engine, code, token, (int64_t)now_ms, h->err, sizeof h->err)
              : lw_engine_referee_conversion(h->engine, (int64_t)now_ms, h->err, sizeof h->err);
}

LW_EXPORT("L") int lw_w_last(handle *h) {
  h->out_len = lw_decision_to_json(lw_engine_last_decision(h->engine), h->out, h->out_cap);
  return LW_OK;
}

/* kind: an outcome's wire name ("share", ...) or "close". */
LW_EXPORT("O") int lw_w_outcome(handle *h, const char *decision_id, const char *kind, double now_ms) {
  return lw_engine_outcome_named(h->engine, decision_id, kind, (int64_t)now_ms, h->err, sizeof h->err);
}

/* A share through a channel ("native", "copy", ...) with its token made of 16 random bytes
 * at `random` (crypto.getRandomValues); the token is then lw_w_token's. */
LW_EXPORT("s") int lw_w_share(handle *h, const char *decision_id, const char *channel,
                                  const uint8_t *random, double now_ms) {
  return lw_engine_share(h->engine, decision_id, channel, random, (int64_t)now_ms, NULL, h->err,
                         sizeof h->err);
}
LW_EXPORT("T") const char *lw_w_token(handle *h) { return lw_engine_last_token(h->engine); }

/* The channels the model ranks best first for the current persona, space-separated, into the
 * output buffer ("" when it has no ranking). */
LW_EXPORT("c") size_t lw_w_channels(handle *h, double now_ms, int tz_offset_min) {
  const char *names[LW_CHANNEL_COUNT];
  int n = lw_engine_channels(h->engine, (int64_t)now_ms, tz_offset_min, names, LW_CHANNEL_COUNT);
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    size_t k = strlen(names[i]);
    if (len + k + 2 > h->out_cap) break; /* out_cap is at least 1 KiB: never for six names */
    if (i) h->out[len++] = ' ';
    memcpy(h->out + len, names[i], k);
    len += k;
  }
  h->out[len] = '\0';
  h->out_len = len;
  return len;
}

LW_EXPORT("C") void lw_w_consent(handle *h, int given, double now_ms) {
  lw_engine_set_consent(h->engine, given, (int64_t)now_ms);
}

/* 1 while the engine collects; 0 after deleting what its outbox held (lw_engine_collecting). */
LW_EXPORT("k") int lw_w_collecting(handle *h) { return lw_engine_collecting(h->engine); }

LW_EXPORT("z") void lw_w_reset(handle *h) { lw_engine_reset(h->engine); }

/* bytes: LW_IDENTITY_BYTES from crypto.getRandomValues. */
LW_EXPORT("I") void lw_w_identity(handle *h, const uint8_t *bytes) { lw_engine_set_identity(h->engine, bytes); }

/* What Loopwise.status() reads: 0 the consent state (0 unset, 1 given, 2 refused, 3 unknown
 * after damage), 1 records in the outbox, 2 records the full outbox dropped, 3 shares and
 * copies made on this device. */
LW_EXPORT("n") double lw_w_info(handle *h, int what) {
  lw_engine *e = h->engine;
  return what == 0 ? lw_engine_consent_state(e) : what == 1 ? (double)lw_outbox_count(lw_engine_outbox(e))
         : what == 2 ? lw_outbox_dropped(lw_engine_outbox(e)) : lw_engine_shares(e);
}

LW_EXPORT("K") const char *lw_w_install_key(handle *h) { return lw_engine_install_key(h->engine); }
LW_EXPORT("D") const char *lw_w_referral_code(handle *h) {
  return lw_engine_referral_code(h->engine);
}

/* Snapshot into the output buffer; returns its length (0 when out of memory). */
LW_EXPORT("S") size_t lw_w_snapshot(handle *h) {
  /* One pass when the buffer is already big enough (the usual case: it is called on every
   * track), a second only after growing it. */
  size_t n = lw_engine_snapshot(h->engine, (uint8_t *)h->out, h->out_cap);
  if (n > h->out_cap) {
    if (!out_reserve(h, n)) return 0;
    n = lw_engine_snapshot(h->engine, (uint8_t *)h->out, h->out_cap);
  }
  h->out_len = n;
  return n;
}

LW_EXPORT("e") int lw_w_restore(handle *h, const uint8_t *buf, size_t len, double now_ms) {
  h->err[0] = '\0';
  return lw_engine_restore(h->engine, buf, len, (int64_t)now_ms, h->err, sizeof h->err);
}

/* A batch of at most max_bytes into the output buffer; returns its length (0 = empty). The
 * batch id the engine drew follows the body's NUL as a string of its own, so the caller gets
 * it without parsing the body: out = body "\0" batch_id "\0". */
LW_EXPORT("b") size_t lw_w_take_batch(handle *h, const char *write_key, double now_ms,
                                            size_t max_bytes) {
  size_t len = 0, n = 0;
  if (!out_reserve(h, max_bytes + 1 + LW_BATCH_ID_HEX_LEN)) {
    set_err(h, "out of memory");
    return 0;
  }
  char id[LW_BATCH_ID_HEX_LEN + 1];
  lw_engine_batch_id(h->engine, id);
  lw_status st = lw_wire_take_batch(lw_engine_outbox(h->engine), id, write_key, (int64_t)now_ms, max_bytes,
                                    h->out, max_bytes + 1, &len, &n);
  if (st != LW_OK) set_err(h, "a record larger than the batch limit was dropped");
  memcpy(h->out + len + 1, id, sizeof id);
  h->out_len = len;
  return len;
}
