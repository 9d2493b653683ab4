/* approvals_http.c: the approval requests' routes (README "Approval requests"). Included by
 * server.c after console_http.c, whose helpers (console_allowed, console_site, console_log)
 * and server.c's (path_id, refuse_body, refuse, respond_json, queue_read, queue_call) they use;
 * not compiled on its own.
 *
 * A device's approval-request records arrive in its batches (wire v3) and the store keeps one
 * row per request. A console user approves or declines one (POST /console/api/approvals/<id>,
 * CSRF-safe, recorded with who and when); the device asks for its answers with POST
 * /v1/approvals, its install's approval key in the body (the store compares its hash). */

#define APPROVALS_MAX 500      /* one console page: the newest */
#define APPROVALS_CHECK_MAX 20 /* one device's newest requests */

/* {"site":…, "approvals":[{…}]} (console) or {"answers":[{"decision","answer","action"}]}
 * (device: nothing about who answered). NULL when out of memory. */
static char *approvals_json(const char *site, const lw_approval *rows, size_t n, int device) {
  cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, device ? "answers" : "approvals") : NULL;
  int ok = arr && (device || cJSON_AddStringToObject(o, "site", site));
  for (size_t i = 0; ok && i < n; i++) {
    const lw_approval *a = &rows[i];
    cJSON *r = cJSON_CreateObject();
    ok = r && cJSON_AddItemToArray(arr, r) && cJSON_AddStringToObject(r, "decision", a->decision) &&
         cJSON_AddStringToObject(r, "answer", a->state) && cJSON_AddStringToObject(r, "action", a->action);
    if (!ok || device) continue;
    cJSON *attrs = cJSON_Parse(a->attrs);
    ok = attrs && cJSON_AddItemToObject(r, "attrs", attrs) && cJSON_AddNumberToObject(r, "id", (double)a->id) &&
         cJSON_AddStringToObject(r, "segment", a->segment) && cJSON_AddStringToObject(r, "reason", a->reason) &&
         cJSON_AddNumberToObject(r, "t", (double)a->t) &&
         cJSON_AddNumberToObject(r, "received_at", (double)a->received_at) &&
         cJSON_AddNumberToObject(r, "expires_at", (double)a->expires_at) &&
         cJSON_AddStringToObject(r, "answered_by", a->answered_by) &&
         cJSON_AddNumberToObject(r, "answered_at", (double)a->answered_at) &&
         cJSON_AddStringToObject(r, "device_answer", a->device_answer) &&
         cJSON_AddNumberToObject(r, "device_at", (double)a->device_at);
  }
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return text;
}

/* ---- the device's check */

static void run_approval_check(lw_ingest_server *s, lw_request *rq) {
  lw_approval *rows;
  size_t n;
  rq->read_status = 503;
  if (lw_store_approval_check(s->store, rq->read_site->id, rq->approval.install, rq->approval.key, lw_wall_ms(),
                              (int)s->cfg->approval_days, APPROVALS_CHECK_MAX, &rows, &n, rq->read_err,
                              sizeof rq->read_err) != LW_OK)
    return;
  rq->read_json = approvals_json(rq->read_site->id, rows, n, 1);
  free(rows);
  if (rq->read_json) rq->read_status = 200;
  else snprintf(rq->read_err, sizeof rq->read_err, "out of memory");
}

/* POST /v1/approvals {"v":1,"write_key","install","key"}: the answers to this install's requests
 * made with this key, newest first (a wrong key: none). On a read thread like POST /v1/referrals. */
static enum MHD_Result handle_approval_check(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  lw_batch_error berr;
  lw_status st = lw_approval_check_parse(rq->body ? rq->body : "", rq->len, &rq->approval, &berr);
  if (st != LW_OK) return refuse_body(s, c, rq, st, &berr);
  enum MHD_Result ok;
  const lw_ingest_site *site = authorize_site(s, c, rq, rq->approval.write_key, "write_key", &ok);
  if (!site) return ok;
  rq->read_site = site;
  return queue_read(s, c, rq, run_approval_check);
}

/* ---- the console's queue */

static void run_console_approvals(lw_ingest_server *s, lw_request *rq) {
  lw_approval *rows;
  size_t n;
  rq->read_status = 503;
  if (lw_store_approvals(s->store, rq->read_site->id, lw_wall_ms(), (int)s->cfg->approval_days, APPROVALS_MAX,
                         &rows, &n, rq->read_err, sizeof rq->read_err) != LW_OK)
    return;
  rq->read_json = approvals_json(rq->read_site->id, rows, n, 0);
  free(rows);
  if (rq->read_json) rq->read_status = 200;
  else snprintf(rq->read_err, sizeof rq->read_err, "out of memory");
}

/* GET /console/api/approvals[?site=]: the site's requests, newest first. */
static enum MHD_Result handle_console_approvals(lw_ingest_server *s, struct MHD_Connection *c,
                                                lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  return queue_read(s, c, rq, run_console_approvals);
}

typedef struct {
  const lw_ingest_site *site;
  int64_t id, now_ms;
  int approve, days, result;
  char who[LW_CONSOLE_USER_MAX + 1];
} console_approval_t;

static lw_status console_approval_call(lw_store *store, void *arg, char *err, size_t errlen) {
  console_approval_t *a = arg;
  return lw_store_approval_answer(store, a->site->id, a->id, a->approve, a->who, a->now_ms, a->days, &a->result,
                                  err, errlen);
}

static enum MHD_Result answer_console_approval(lw_ingest_server *s, struct MHD_Connection *c,
                                               lw_request *rq) {
  const console_approval_t *a = rq->call;
  if (a->result == 1)
    return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "no such approval request on this site", "id", 0});
  if (a->result == 2)
    return refuse(s, c, rq, (lw_refusal){409, LW_REJECT_INVALID, "this request is already answered", "id", 0});
  if (a->result == 3)
    return refuse(s, c, rq, (lw_refusal){409, LW_REJECT_INVALID, "this request has expired", "id", 0});
  console_log_at(s, rq, lw_action_name(a->approve ? LW_ACTION_APPROVE_REQUEST : LW_ACTION_DECLINE_REQUEST),
                 a->site->id, a->id, a->now_ms);
  char body[160];
  snprintf(body, sizeof body, "{\"id\":%lld,\"answer\":\"%s\",\"answered_by\":\"%s\",\"answered_at\":%lld}",
           (long long)a->id, lw_answer_name(a->approve ? LW_ANSWER_APPROVED : LW_ANSWER_DECLINED), a->who,
           (long long)a->now_ms);
  return respond_json(s, c, rq, 200, body);
}

/* POST /console/api/approvals/<id>[?site=] {"decision":"approve"|"decline"}: the console user's
 * answer, stored with who and when (and logged as a console action). */
static enum MHD_Result handle_console_approval(lw_ingest_server *s, struct MHD_Connection *c,
                                               lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 1, &refused)) return refused;
  const lw_ingest_site *site = console_site(s, c, rq, &refused);
  if (!site) return refused;
  long long id = path_id(rq);
  if (id <= 0)
    return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, "expected a request id, a positive integer", "id", 0});
  console_approval_t *a = calloc(1, sizeof *a);
  if (!a) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  lw_batch_error berr;
  lw_status st = lw_approval_decision_parse(rq->body ? rq->body : "", rq->len, &a->approve, &berr);
  if (st != LW_OK) {
    free(a);
    return refuse_body(s, c, rq, st, &berr);
  }
  a->site = site;
  a->id = id;
  a->now_ms = lw_wall_ms();
  a->days = (int)s->cfg->approval_days;
  snprintf(a->who, sizeof a->who, "%s", rq->console_user);
  return queue_call(s, c, rq, a, console_approval_call, answer_console_approval);
}
