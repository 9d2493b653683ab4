/* fuzz_batch.c: libFuzzer target for the request-body parser and validator (src/ingest/batch.c).
 *
 * Feeds arbitrary bytes to lw_batch_parse and every other body reader of batch.c (forget, the
 * referral request, the referee and referrer reports, the review, the approval check and the
 * console's approval answer) and checks what they promise:
 * an accepted batch obeys every limit of the wire contract, a refused one names a printable
 * field and a message, and nothing leaks or overruns (ASan/UBSan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopwise/batch.h"
#include "loopwise/text.h"

#define NOW_MS 1764100000000LL

static void check_printable(const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  if (n == cap) abort();
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) abort();
}

static void check_batch(const lw_batch *b, const lw_batch_limits *lim) {
  if (b->v < 1 || b->v > LW_WIRE_READ_VERSION || b->n_events < 1 || b->n_events > lim->max_events) abort();
  size_t id = strlen(b->batch_id);
  if (id < 1 || id > LW_BATCH_ID_LEN || !b->write_key[0]) abort();
  if (b->sent_at < 0) abort();
  for (size_t i = 0; i < b->n_events; i++) {
    const lw_event *e = &b->events[i];
    if (e->kind < 0 || e->kind >= LW_KIND_COUNT) abort();
    if (strlen(e->install) != LW_INSTALL_LEN) abort();
    /* A time beyond the allowance is kept and marked, never refused. */
    if (e->t < 0 || e->skewed != (e->t > NOW_MS + lim->max_future_ms)) abort();
    if (e->kind == LW_KIND_DECISION && (!e->has_p || !(e->p > 0.0) || e->p > 1.0 || !e->action[0]))
      abort();
    if (e->kind != LW_KIND_DECISION && e->has_p) abort();
    if (!lw_utf8_valid(e->reason, strlen(e->reason))) abort();
    /* Wire v2: a token is 32 lowercase hex beside a code, a channel one of the table's, both
     * only on the kinds whose rules allow them, neither in a v1 batch; a v2 share or copy has both. */
    size_t tl = strlen(e->token);
    if (tl && (tl != LW_TOKEN_LEN || !lw_ascii_is(LW_CS_HEX, e->token, LW_TOKEN_LEN, LW_TOKEN_LEN) || !e->code[0]))
      abort();
    if (e->channel[0] && lw_channel_parse(e->channel) < 0) abort();
    if ((tl && lw_kind_rule(e->kind, LW_FIELD_TOKEN) == '-') || (e->channel[0] && lw_kind_rule(e->kind, LW_FIELD_CHANNEL) == '-'))
      abort();
    if (b->v < 2 && (tl || e->channel[0])) abort();
    if (b->v >= 2 && (lw_kind_flags(e->kind) & LW_KIND_F_SHARED) && (!tl || !e->channel[0])) abort();
    /* Wire v3: an approval request has its key (32 lowercase hex), at most LW_APPROVAL_ATTRS
     * attrs of the name charset and a variant for its action; an answer one of the three
     * answers; none of it in an older batch or on another kind. */
    size_t kl = strlen(e->key);
    if (kl && (kl != LW_APPROVAL_KEY_LEN || !lw_ascii_is(LW_CS_HEX, e->key, kl, kl))) abort();
    if (e->n_attrs < 0 || e->n_attrs > LW_APPROVAL_ATTRS) abort();
    for (int a = 0; a < e->n_attrs; a++)
      if (!lw_ascii_is(LW_CS_NAME, e->attr_names[a], 1, LW_NAME_LEN) ||
          !lw_ascii_is(LW_CS_NAME, e->attr_values[a], 1, LW_NAME_LEN))
        abort();
    if (e->answer[0] && lw_answer_parse(e->answer) <= LW_ANSWER_PENDING) abort();
    if (e->kind == LW_KIND_APPROVAL_REQUEST && (kl != LW_APPROVAL_KEY_LEN || !lw_action_is_prompt(e->action))) abort();
    if (e->kind == LW_KIND_APPROVAL_ANSWER && !e->answer[0]) abort();
    if (!(lw_kind_flags(e->kind) & LW_KIND_F_APPROVAL) && (kl || e->n_attrs || e->answer[0])) abort();
    if (b->v < 3 && (lw_kind_flags(e->kind) & LW_KIND_F_APPROVAL)) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lw_batch_limits lim = lw_batch_default_limits();
  lw_batch *b = NULL;
  lw_batch_error err;
  lw_status st = lw_batch_parse((const char *)data, size, &lim, NOW_MS, &b, &err);
  if (st == LW_OK) {
    if (!b) abort();
    check_batch(b, &lim);
    lw_batch_free(b);
  } else {
    if (b) abort();
    if (st == LW_ERR_INVALID && !err.message[0]) abort();
    check_printable(err.field, sizeof err.field);
  }
  lw_forget_request fr;
  st = lw_forget_parse((const char *)data, size, &fr, &err);
  if (st == LW_OK && strlen(fr.install) != LW_INSTALL_LEN) abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  lw_referral_request rr;
  st = lw_referral_request_parse((const char *)data, size, &rr, &err);
  if (st == LW_OK && (strlen(rr.install) != LW_INSTALL_LEN || strlen(rr.code) < LW_CODE_MIN_LEN)) abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  lw_referee_request re;
  st = lw_referee_parse((const char *)data, size, &re, &err);
  if (st == LW_OK && (!re.referee[0] || strlen(re.referee) > LW_REFEREE_ID_LEN || re.v < 1 ||
                      re.v > LW_REFEREE_VERSION || (re.v == 1 && strcmp(re.event, "conversion") != 0) ||
                      (re.v == 1 && re.token[0]) || (re.token[0] && strlen(re.token) != LW_TOKEN_LEN) ||
                      (strcmp(re.event, "revenue") == 0 && !re.has_value) ||
                      (re.has_value && strcmp(re.event, "conversion") != 0 && strcmp(re.event, "revenue") != 0) ||
                      (re.has_value && !(re.value >= 0))))
    abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  lw_referrer_request rg;
  st = lw_referrer_parse((const char *)data, size, &rg, &err);
  if (st == LW_OK && !rg.referrer[0]) abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  int approve = -1;
  st = lw_review_parse((const char *)data, size, &approve, &err);
  if (st == LW_OK && approve != 0 && approve != 1) abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  lw_approval_check ac;
  st = lw_approval_check_parse((const char *)data, size, &ac, &err);
  if (st == LW_OK && (strlen(ac.install) != LW_INSTALL_LEN || strlen(ac.key) != LW_APPROVAL_KEY_LEN)) abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  approve = -1;
  st = lw_approval_decision_parse((const char *)data, size, &approve, &err);
  if (st == LW_OK && approve != 0 && approve != 1) abort();
  if (st != LW_OK) check_printable(err.field, sizeof err.field);
  return 0;
}
