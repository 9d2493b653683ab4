/* records.c: the wire records the engine logs into its outbox (README "Wire contract"):
 * decisions, the outcomes of shown prompts and the referee side. Kinds and field names are
 * loopwise/wire.h's. */
#include <string.h>

#include "engine_internal.h"
#include "sbuf.h"

/* Start a record with the fields every kind has (decision_id may be NULL). */
void lw_engine_record_begin(lw_engine *e, lw_sbuf *sb, const char *kind, int64_t now_ms,
                         const char *decision_id) {
  lw_sb_str(sb, "{\"kind\":\"");
  lw_sb_str(sb, kind);
  lw_sb_str(sb, "\",\"t\":");
  lw_sb_i64(sb, now_ms);
  lw_sb_str(sb, ",\"install\":\"");
  lw_sb_str(sb, e->install_hex);
  lw_sb_char(sb, '"');
  if (decision_id) {
    lw_sb_str(sb, ",\"decision\":\"");
    lw_sb_str(sb, decision_id);
    lw_sb_char(sb, '"');
  }
}

/* Without consent (or with a respected privacy signal) the engine records nothing, and what it
 * had queued is deleted, never sent later: a record made while collection was off would
 * otherwise leave once consent is given. */
int lw_engine_collecting(lw_engine *e) {
  if (lw_engine_collects(e)) return 1;
  lw_outbox_drop(e->outbox, lw_outbox_count(e->outbox), 0);
  return 0;
}

int lw_engine_consent_state(const lw_engine *e) { return e->guard.consent; }
uint32_t lw_engine_shares(const lw_engine *e) { return e->guard.share_total; }

void lw_engine_record_push(lw_engine *e, lw_sbuf *sb) {
  lw_sb_char(sb, '}');
  if (!sb->overflow && lw_engine_collecting(e)) lw_outbox_push(e->outbox, sb->buf, sb->len);
}

static void sb_model(lw_sbuf *sb, uint32_t id) {
  lw_sb_str(sb, ",\"model\":\"m");
  lw_sb_u64(sb, id);
  lw_sb_char(sb, '"');
}

/* The fields a decision has both in its wire record and in its JSON for the host:
 * ,"action":…,"p":…,"mode":…,"reason":…[,"model":…][,"segment":…] */
void lw_sb_decision_fields(lw_sbuf *sb, const lw_decision *d) {
  lw_sb_str(sb, ",\"action\":");
  lw_sb_json_str(sb, d->action);
  lw_sb_str(sb, ",\"p\":");
  lw_sb_ppm(sb, d->p_ppm);
  lw_sb_str(sb, ",\"mode\":\"");
  lw_sb_str(sb, lw_mode_name(d->mode));
  lw_sb_str(sb, "\",\"reason\":");
  lw_sb_json_str(sb, d->reason);
  if (d->model_id) sb_model(sb, d->model_id);
  if (d->segment[0]) {
    lw_sb_str(sb, ",\"segment\":");
    lw_sb_json_str(sb, d->segment);
  }
}

void lw_engine_log_decision(lw_engine *e, const lw_decision *d, int64_t now_ms) {
  char buf[4608];
  lw_sbuf sb;
  lw_sb_init(&sb, buf, sizeof buf);
  lw_engine_record_begin(e, &sb, lw_kind_name(LW_KIND_DECISION), now_ms, d->id);
  lw_sb_decision_fields(&sb, d);
  lw_sb_str(&sb, ",\"x\":[");
  for (int i = 0; i < e->n_x && i < LW_X_PAIRS; i++) {
    if (i) lw_sb_char(&sb, ',');
    lw_sb_char(&sb, '[');
    lw_sb_u64(&sb, e->x[i].hash);
    lw_sb_char(&sb, ',');
    lw_sb_fx(&sb, e->x[i].q);
    lw_sb_char(&sb, ']');
  }
  lw_sb_char(&sb, ']');
  lw_engine_record_push(e, &sb);
}


size_t lw_decision_to_json(const lw_decision *d, char *buf, size_t cap) {
  lw_sbuf sb;
  lw_sb_init(&sb, buf, cap);
  if (!d->decided) {
    lw_sb_str(&sb, "null");
    return sb.len;
  }
  lw_sb_str(&sb, "{\"id\":\"");
  lw_sb_str(&sb, d->id);
  lw_sb_str(&sb, d->prompt ? "\",\"prompt\":true,\"variant\":" : "\",\"prompt\":false,\"variant\":");
  lw_sb_i64(&sb, d->variant);
  lw_sb_str(&sb, ",\"code\":\"");
  lw_sb_str(&sb, lw_why_name(d->why));
  lw_sb_char(&sb, '"');
  lw_sb_decision_fields(&sb, d);
  if (d->n_top) {
    lw_sb_str(&sb, ",\"top\":[");
    for (int i = 0; i < d->n_top; i++) {
      lw_sb_str(&sb, i ? ",{\"feature\":" : "{\"feature\":");
      lw_sb_json_str(&sb, d->top[i].name);
      lw_sb_str(&sb, ",\"contribution\":");
      lw_sb_num(&sb, d->top[i].contribution);
      lw_sb_char(&sb, '}');
    }
    lw_sb_char(&sb, ']');
  }
  lw_sb_char(&sb, '}');
  return sb.len;
}
