/* approval.c: the runtime's side of approval requests through the ingest server (wire v3,
 * README "Approval requests"): the approval-request record for a decision the approval rule
 * holds, and the answer the device picked up. The hold itself is engine.c's (decide). */
#include <string.h>

#include "engine_internal.h"
#include "sbuf.h"

lw_pending_approval *lw_engine_hold(lw_engine *e, const char *decision_id, int64_t now_ms) {
  lw_pending_approval *pa = &e->approval;
  int64_t ttl = pa->requested ? LW_APPROVAL_HOLD_MS : LW_OPEN_PROMPT_TTL_MS;
  return pa->d.decided && decision_id && strcmp(pa->d.id, decision_id) == 0 && now_ms - pa->since_ms <= ttl
             ? pa
             : NULL;
}

const char *lw_engine_approval_held(lw_engine *e, int requested, int64_t now_ms) {
  lw_pending_approval *pa = &e->approval;
  return !pa->requested == !requested && lw_engine_hold(e, pa->d.id, now_ms) ? pa->d.id : "";
}

static int key_ok(const char *key) {
  size_t n = key ? strlen(key) : 0;
  if (n != LW_APPROVAL_KEY_LEN) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f'))) return 0;
  return 1;
}

lw_status lw_engine_approval_request(lw_engine *e, const char *decision_id, const char *key, int64_t now_ms,
                                     int *sent, char *err, size_t errlen) {
  *sent = 0;
  lw_pending_approval *pa = lw_engine_hold(e, decision_id, now_ms);
  if (!pa) {
    lw_strlcpy(err, "no decision with this id is waiting for approval", errlen);
    return LW_ERR_NOT_FOUND;
  }
  if (!key_ok(key)) {
    lw_strlcpy(err, "an approval key is 32 lowercase hex characters", errlen);
    return LW_ERR_INVALID;
  }
  /* The request carries account attributes to a person: only with consent actually given,
   * whatever the config says about collecting before consent. */
  if (e->guard.consent != LW_CONSENT_GIVEN || !lw_engine_collecting(e)) {
    lw_engine_collecting(e); /* refused: what the outbox held goes too */
    return LW_OK;
  }
  char buf[1024];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  lw_engine_record_begin(e, &sb, lw_kind_name(LW_KIND_APPROVAL_REQUEST), now_ms, pa->d.id);
  lw_sb_str(&sb, ",\"action\":");
  lw_sb_json_str(&sb, pa->d.action);
  lw_sb_str(&sb, ",\"reason\":");
  lw_sb_json_str(&sb, pa->explain);
  if (pa->d.segment[0]) {
    lw_sb_str(&sb, ",\"segment\":");
    lw_sb_json_str(&sb, pa->d.segment);
  }
  lw_sb_str(&sb, ",\"attrs\":{");
  int n = 0;
  for (int a = 0; a < e->cfg.n_attributes && a < LW_APPROVAL_ATTRS; a++) {
    if (!(e->cfg.approval_send >> a & 1u) || e->beh.attrs[a] < 0) continue;
    if (n++) lw_sb_char(&sb, ',');
    lw_sb_json_str(&sb, e->cfg.attr_names[a]);
    lw_sb_char(&sb, ':');
    lw_sb_json_str(&sb, e->cfg.attr_values[a][e->beh.attrs[a]]);
  }
  lw_sb_str(&sb, "},\"key\":\"");
  lw_sb_str(&sb, key);
  lw_sb_char(&sb, '"');
  lw_engine_record_push(e, &sb);
  *sent = !sb.overflow;
  pa->requested |= *sent; /* from now on the hold waits for the server's answer, and is saved */
  return LW_OK;
}

lw_status lw_engine_approval_answer(lw_engine *e, const char *decision_id, const char *answer, int64_t now_ms,
                                    int tz_offset_min, lw_decision *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int an = lw_answer_parse(answer);
  if (an <= LW_ANSWER_PENDING) {
    lw_strlcpy(err, "an answer is approved, declined or expired", errlen);
    return LW_ERR_INVALID;
  }
  const lw_pending_approval *pa = lw_engine_hold(e, decision_id, now_ms);
  if (!pa) {
    lw_strlcpy(err, "no decision with this id is waiting for approval", errlen);
    return LW_ERR_NOT_FOUND;
  }
  char buf[256];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  lw_engine_record_begin(e, &sb, lw_kind_name(LW_KIND_APPROVAL_ANSWER), now_ms, pa->d.id);
  lw_sb_str(&sb, ",\"action\":");
  lw_sb_json_str(&sb, pa->d.action);
  if (pa->d.segment[0]) {
    lw_sb_str(&sb, ",\"segment\":");
    lw_sb_json_str(&sb, pa->d.segment);
  }
  lw_sb_str(&sb, ",\"answer\":\"");
  lw_sb_str(&sb, lw_answer_name((lw_approval_answer)an));
  lw_sb_char(&sb, '"');
  lw_engine_record_push(e, &sb);
  if (an == LW_ANSWER_APPROVED) return lw_engine_approve(e, decision_id, now_ms, tz_offset_min, out, err, errlen);
  *out = pa->d;
  lw_sb_init(&sb, out->reason, sizeof out->reason);
  lw_sb_str(&sb, an == LW_ANSWER_DECLINED ? "not shown: approval declined" : "not shown: approval request expired");
  e->approval.d.decided = 0;
  e->last = *out;
  return LW_OK;
}
