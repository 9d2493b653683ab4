/* console_http.c: the console's routes (README "The console"). Included by server.c, whose
 * static helpers (respond, refuse, queue_read, queue_call) they use; not compiled on its own.
 *
 * Access: with console_users, a session cookie (console.h) from POST /console/login; without
 * any, loopback clients only (no proxy headers), as /v1/stats without a read token. Every
 * write (logout, a review) also needs the session's CSRF token in X-Loopwise-CSRF, which a
 * page of another origin cannot read; the cookie is SameSite=Strict besides. Every action is
 * logged with who did it and when (the "console action" log line); every write to the store
 * (a review, a resend, an approval request's answer) is also kept in the store with who and
 * when, in the transaction of the change (store.h "console actions"), which any replica then
 * answers (GET /console/api/actions). */

static const char *console_cookie(struct MHD_Connection *c) {
  return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, LW_CONSOLE_COOKIE);
}

/* Who the request is from, in rq->console_user; 0 after queueing the refusal in *ret. */
static int console_allowed(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq, int write,
                           enum MHD_Result *ret) {
  const char *cookie = console_cookie(c);
  if (lw_console_has_users(s->console)) {
    if (!lw_console_session(s->console, cookie, lw_wall_ms(), rq->console_user)) {
      *ret = refuse(s, c, rq, (lw_refusal){401, LW_REJECT_BAD_KEY, "log in to the console first", NULL, 0});
      return 0;
    }
  } else {
    unsigned char addr[16];
    int loopback;
    client_address(c, addr, &loopback);
    if (!loopback || header(c, "Forwarded") || header(c, "X-Forwarded-For")) {
      *ret = refuse(s, c, rq, (lw_refusal){403, LW_REJECT_ORIGIN,
                                           "the console answers loopback clients only (no console_users)",
                                           NULL, 0});
      return 0;
    }
    snprintf(rq->console_user, sizeof rq->console_user, "loopback");
    cookie = "";
  }
  if (write && !lw_console_csrf_ok(s->console, cookie, header(c, "X-Loopwise-CSRF"))) {
    *ret = refuse(s, c, rq, (lw_refusal){403, LW_REJECT_ORIGIN, "missing or wrong CSRF token",
                                         "X-Loopwise-CSRF", 0});
    return 0;
  }
  return 1;
}

/* The "console action" log line; at_ms 0: now (the stored actions pass the time they store). */
static void console_log_at(lw_ingest_server *s, const lw_request *rq, const char *action,
                           const char *site, int64_t id, int64_t at_ms) {
  lw_log_line line;
  if (!lw_log_begin(&line, &s->log, LW_LOG_INFO, "console action")) return;
  lw_log_str(&line, "user", rq->console_user);
  lw_log_str(&line, "action", action);
  if (site) lw_log_str(&line, "site", site);
  if (id) lw_log_int(&line, "id", id);
  lw_log_int(&line, "at_ms", at_ms ? at_ms : lw_wall_ms());
  lw_log_end(&line);
}

static void console_log(lw_ingest_server *s, const lw_request *rq, const char *action,
                        const char *site, int64_t id) {
  console_log_at(s, rq, action, site, id, 0);
}

static const lw_ingest_site *console_site(lw_ingest_server *s, struct MHD_Connection *c,
                                          lw_request *rq, enum MHD_Result *ret) {
  const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "site");
  const lw_ingest_site *site = id ? site_by_id(s->cfg, id) : &s->cfg->sites[0];
  if (!site) *ret = refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "unknown site", "site", 0});
  return site;
}

/* ---- the page */

static enum MHD_Result handle_console_asset(lw_ingest_server *s, struct MHD_Connection *c,
                                            lw_request *rq) {
  size_t len;
  const char *type;
  const char *body = lw_console_asset(s->console, rq->path, &len, &type);
  if (!body && lw_console_assets_error(s->console)[0]) {
    lw_log_msg(&s->log, LW_LOG_WARN, "console page not served", lw_console_assets_error(s->console));
    return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "the console page is not built", NULL, 0});
  }
  if (!body) return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "not found", NULL, 0});
  /* The page itself is public (it holds no data; the API answers only a session), so the login
   * form can load. */
  lw_answer a = {.status = 200, .body = body, .len = len, .type = type, .cache = "no-cache"};
  return respond(s, c, rq, &a);
}

/* ---- login and logout */

typedef struct {
  char name[LW_CONSOLE_USER_MAX + 1];
  char password[256];
  int ok;
} console_login_t;

static void run_console_login(lw_ingest_server *s, lw_request *rq) {
  console_login_t *l = rq->call;
  l->ok = lw_console_login(s->console, l->name, l->password, lw_wall_ms(), rq->console_cookie);
  memset(l->password, 0, sizeof l->password);
}

static enum MHD_Result answer_console_login(lw_ingest_server *s, struct MHD_Connection *c,
                                            lw_request *rq) {
  console_login_t *l = rq->call;
  snprintf(rq->console_user, sizeof rq->console_user, "%s", l->name);
  console_log(s, rq, l->ok ? "login" : "login refused", NULL, 0);
  if (!l->ok)
    return refuse(s, c, rq, (lw_refusal){401, LW_REJECT_BAD_KEY, "wrong name or password", NULL, 0});
  char cookie[LW_CONSOLE_COOKIE_MAX + 128], body[64 + LW_CONSOLE_USER_MAX];
  snprintf(cookie, sizeof cookie, "%s=%s; Path=/console; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
           LW_CONSOLE_COOKIE, rq->console_cookie, (long long)s->cfg->console_session_s,
           header(c, "X-Forwarded-Proto") && !strcmp(header(c, "X-Forwarded-Proto"), "https")
               ? "; Secure" : "");
  snprintf(body, sizeof body, "{\"user\":\"%s\"}", l->name);
  lw_answer a = {.status = 200, .body = body, .len = strlen(body), .cookie = cookie};
  return respond(s, c, rq, &a);
}

/* POST /console/login {"name","password"}. Without users there is nothing to log in to. */
static enum MHD_Result handle_console_login(lw_ingest_server *s, struct MHD_Connection *c,
                                            lw_request *rq) {
  if (!lw_console_has_users(s->console))
    return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND,
                                         "no console users are configured: the console is loopback-only", NULL, 0});
  lw_status pst;
  cJSON *doc = lw_json_parse(rq->body ? rq->body : "", rq->len, NULL, &pst);
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
  const cJSON *password = cJSON_GetObjectItemCaseSensitive(doc, "password");
  const char *field = !cJSON_IsString(name) || strlen(name->valuestring) > LW_CONSOLE_USER_MAX ? "name"
                      : !cJSON_IsString(password) || strlen(password->valuestring) >= 256 ? "password"
                                                                                       : NULL;
  if (field) {
    cJSON_Delete(doc);
    return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID,
                                         "expected {\"name\": string, \"password\": string (under 256 bytes)}",
                                         field, 0});
  }
  console_login_t *l = calloc(1, sizeof *l);
  if (!l) {
    cJSON_Delete(doc);
    return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  }
  snprintf(l->name, sizeof l->name, "%s", name->valuestring);
  snprintf(l->password, sizeof l->password, "%s", password->valuestring);
  cJSON_Delete(doc);
  memset(rq->body, 0, rq->len);
  rq->call = l; /* freed at completion */
  rq->read_answer = answer_console_login;
  return queue_read(s, c, rq, run_console_login); /* PBKDF2 is slow by design: off the HTTP threads */
}

static enum MHD_Result handle_console_logout(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 1, &refused)) return refused;
  console_log(s, rq, "logout", NULL, 0);
  lw_answer a = {.status = 200, .body = "{}", .len = 2,
                 .cookie = LW_CONSOLE_COOKIE "=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"};
  return respond(s, c, rq, &a);
}

/* GET /console/api/session: who is logged in, the CSRF token, the sites. */
static enum MHD_Result handle_console_session(lw_ingest_server *s, struct MHD_Connection *c,
                                              lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  char csrf[LW_CONSOLE_CSRF_LEN + 1];
  lw_console_csrf(s->console, lw_console_has_users(s->console) ? console_cookie(c) : "", csrf);
  cJSON *o = cJSON_CreateObject(), *sites = o ? cJSON_AddArrayToObject(o, "sites") : NULL;
  char *text = NULL;
  if (sites && cJSON_AddStringToObject(o, "user", rq->console_user) &&
      cJSON_AddStringToObject(o, "csrf", csrf)) {
    for (size_t i = 0; i < s->cfg->n_sites; i++)
      cJSON_AddItemToArray(sites, cJSON_CreateString(s->cfg->sites[i].id));
    text = cJSON_PrintUnformatted(o);
  }
  cJSON_Delete(o);
  if (!text) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  enum MHD_Result ok = respond_json(s, c, rq, 200, text);
  cJSON_free(text);
  return ok;
}

/* ---- the report */

static void run_console_report(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_console_report(s->console, s->store, rq->read_site->id,
                                      rq->console_arg[0] ? rq->console_arg : NULL, lw_wall_ms(),
                                      &rq->read_json, rq->read_err, sizeof rq->read_err);
}

static enum MHD_Result answer_console_report(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  if (rq->read_status == 404)
    return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, rq->read_err, "table", 0});
  if (rq->read_status != 200 || !rq->read_json)
    return reply_answer(s, c, rq, 503, NULL, rq->read_err);
  lw_answer a = {.status = 200, .owned = rq->read_json, .len = strlen(rq->read_json),
                 .type = rq->console_arg[0] ? "text/csv; charset=utf-8" : "application/json"};
  rq->read_json = NULL; /* the response owns it */
  return respond(s, c, rq, &a);
}

/* GET /console/api/report[?site=] (JSON) and /console/api/report.csv?table=variants|... */
static enum MHD_Result handle_console_report(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  if (!strcmp(rq->path, "/console/api/report.csv")) {
    const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "table");
    snprintf(rq->console_arg, sizeof rq->console_arg, "%s", t && t[0] ? t : "variants");
  }
  rq->read_answer = answer_console_report;
  return queue_read(s, c, rq, run_console_report);
}

/* ---- the review queue and the reward list */

static void run_console_reviews(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_reviews_answer(s->store, rq->read_site->id, &rq->read_json, rq->read_err,
                                      sizeof rq->read_err);
}

static enum MHD_Result handle_console_reviews(lw_ingest_server *s, struct MHD_Connection *c,
                                              lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  return queue_read(s, c, rq, run_console_reviews);
}

static void run_console_rewards(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_attributions_answer(s->store, rq->read_site->id, NULL, &rq->read_json,
                                           rq->read_err, sizeof rq->read_err);
}

static enum MHD_Result handle_console_rewards(lw_ingest_server *s, struct MHD_Connection *c,
                                              lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  return queue_read(s, c, rq, run_console_rewards);
}

static enum MHD_Result answer_console_review(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  const lw_review_call_t *call = rq->call;
  if (call->result == 0)
    console_log_at(s, rq, lw_action_name(call->approve ? LW_ACTION_APPROVE : LW_ACTION_REJECT), call->site->id,
                   call->id, call->now_ms);
  return answer_review(s, c, rq);
}

/* POST /console/api/reviews/<id>[?site=] {"decision":"approve"|"reject"}: the review API's
 * call (lw_store_review) under the console's access rule, stored and logged with who and when. */
static enum MHD_Result handle_console_review(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 1, &refused)) return refused;
  const lw_ingest_site *site = console_site(s, c, rq, &refused);
  if (!site) return refused;
  return queue_review(s, c, rq, site, rq->console_user, answer_console_review);
}

/* ---- the webhook delivery log */

#define CONSOLE_DELIVERIES_MAX 500

static void run_console_deliveries(lw_ingest_server *s, lw_request *rq) {
  lw_delivery *rows;
  size_t n;
  rq->read_status = 503;
  if (lw_store_deliveries(s->store, rq->read_site->id, CONSOLE_DELIVERIES_MAX, &rows, &n, rq->read_err,
                          sizeof rq->read_err) != LW_OK)
    return;
  cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "deliveries") : NULL;
  int ok = arr && cJSON_AddStringToObject(o, "site", rq->read_site->id) &&
           cJSON_AddBoolToObject(o, "configured", s->cfg->webhook_url != NULL);
  for (size_t i = 0; ok && i < n; i++) {
    const lw_delivery *d = &rows[i];
    cJSON *r = cJSON_CreateObject();
    ok = r && cJSON_AddItemToArray(arr, r) && cJSON_AddNumberToObject(r, "id", (double)d->id) &&
         cJSON_AddNumberToObject(r, "report", (double)d->report) &&
         cJSON_AddStringToObject(r, "key", d->key) && cJSON_AddStringToObject(r, "state", d->state) &&
         cJSON_AddNumberToObject(r, "attempts", (double)d->attempts) &&
         cJSON_AddNumberToObject(r, "created_at", (double)d->created_at) &&
         cJSON_AddNumberToObject(r, "next_at", (double)d->next_at) &&
         cJSON_AddNumberToObject(r, "delivered_at", (double)d->delivered_at) &&
         cJSON_AddNumberToObject(r, "last_status", (double)d->last_status) &&
         cJSON_AddStringToObject(r, "last_error", d->last_error) &&
         cJSON_AddStringToObject(r, "resent_by", d->resent_by) &&
         cJSON_AddNumberToObject(r, "resent_at", (double)d->resent_at);
  }
  free(rows);
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text) {
    snprintf(rq->read_err, sizeof rq->read_err, "out of memory");
    return;
  }
  rq->read_status = 200;
  rq->read_json = text;
}

static enum MHD_Result handle_console_deliveries(lw_ingest_server *s, struct MHD_Connection *c,
                                                 lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  return queue_read(s, c, rq, run_console_deliveries);
}

typedef struct {
  const lw_ingest_site *site;
  int64_t id, now_ms;
  char who[LW_ACTOR_LEN + 1];
  int result;
} console_resend_t;

static lw_status console_resend_call(lw_store *store, void *arg, char *err, size_t errlen) {
  console_resend_t *r = arg;
  return lw_store_delivery_resend(store, r->site->id, r->id, r->who, r->now_ms, &r->result, err, errlen);
}

static enum MHD_Result answer_console_resend(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  const console_resend_t *r = rq->call;
  if (r->result == 1)
    return refuse(s, c, rq, (lw_refusal){404, LW_REJECT_NOT_FOUND, "no such delivery on this site", "id", 0});
  if (r->result == 2)
    return refuse(s, c, rq, (lw_refusal){409, LW_REJECT_INVALID, "only a failed delivery is sent again", "id", 0});
  console_log_at(s, rq, lw_action_name(LW_ACTION_RESEND), r->site->id, r->id, r->now_ms);
  char body[64];
  snprintf(body, sizeof body, "{\"id\":%lld,\"state\":\"pending\"}", (long long)r->id);
  return respond_json(s, c, rq, 200, body);
}

/* POST /console/api/deliveries/<id>[?site=]: send a failed delivery again (body ignored). */
static enum MHD_Result handle_console_resend(lw_ingest_server *s, struct MHD_Connection *c,
                                             lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 1, &refused)) return refused;
  const lw_ingest_site *site = console_site(s, c, rq, &refused);
  if (!site) return refused;
  long long id = path_id(rq);
  if (id <= 0)
    return refuse(s, c, rq, (lw_refusal){400, LW_REJECT_INVALID, "expected a delivery id, a positive integer", "id", 0});
  console_resend_t *r = calloc(1, sizeof *r);
  if (!r) return refuse(s, c, rq, (lw_refusal){503, LW_REJECT_STORE, "out of memory", NULL, 1});
  r->site = site;
  r->id = id;
  r->now_ms = lw_wall_ms();
  snprintf(r->who, sizeof r->who, "%s", rq->console_user);
  return queue_call(s, c, rq, r, console_resend_call, answer_console_resend);
}

/* ---- the action log: who did what, when, on which row (store.h "console actions") */

#define CONSOLE_ACTIONS_MAX 500

/* CSV cells here are a number or a fixed name (actions, targets) and a user name of
 * [A-Za-z0-9_-] or "loopback" / "review api": nothing to quote. */
static void run_console_actions(lw_ingest_server *s, lw_request *rq) {
  lw_console_action *rows;
  size_t n;
  rq->read_status = 503;
  if (lw_store_console_actions(s->store, rq->read_site->id, CONSOLE_ACTIONS_MAX, &rows, &n, rq->read_err,
                               sizeof rq->read_err) != LW_OK)
    return;
  char *text = NULL;
  if (rq->console_arg[0]) { /* CSV */
    size_t cap = 64 + n * (3 * 21 + LW_ACTOR_LEN + 24 + 12 + 8), len = 0;
    text = malloc(cap);
    if (text) len = (size_t)snprintf(text, cap, "at,user,action,target,id\n");
    for (size_t i = 0; text && i < n; i++)
      len += (size_t)snprintf(text + len, cap - len, "%lld,%s,%s,%s,%lld\n", (long long)rows[i].at, rows[i].who,
                              rows[i].action, rows[i].target, (long long)rows[i].ref);
  } else {
    cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "actions") : NULL;
    int ok = arr && cJSON_AddStringToObject(o, "site", rq->read_site->id);
    for (size_t i = 0; ok && i < n; i++) {
      const lw_console_action *a = &rows[i];
      cJSON *r = cJSON_CreateObject();
      ok = r && cJSON_AddItemToArray(arr, r) && cJSON_AddNumberToObject(r, "id", (double)a->id) &&
           cJSON_AddNumberToObject(r, "at", (double)a->at) && cJSON_AddStringToObject(r, "user", a->who) &&
           cJSON_AddStringToObject(r, "action", a->action) && cJSON_AddStringToObject(r, "target", a->target) &&
           cJSON_AddNumberToObject(r, "ref", (double)a->ref) &&
           cJSON_AddStringToObject(r, "site", rq->read_site->id);
    }
    text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
  }
  free(rows);
  if (!text) {
    snprintf(rq->read_err, sizeof rq->read_err, "out of memory");
    return;
  }
  rq->read_status = 200;
  rq->read_json = text;
}

static enum MHD_Result answer_console_actions(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  if (rq->read_status != 200 || !rq->read_json) return reply_answer(s, c, rq, 503, NULL, rq->read_err);
  lw_answer a = {.status = 200, .owned = rq->read_json, .len = strlen(rq->read_json),
                 .type = rq->console_arg[0] ? "text/csv; charset=utf-8" : "application/json"};
  rq->read_json = NULL; /* the response owns it */
  return respond(s, c, rq, &a);
}

/* GET /console/api/actions[?site=] (JSON, newest first, at most 500) and /console/api/actions.csv */
static enum MHD_Result handle_console_actions(lw_ingest_server *s, struct MHD_Connection *c,
                                              lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  if (!strcmp(rq->path, "/console/api/actions.csv")) snprintf(rq->console_arg, sizeof rq->console_arg, "csv");
  rq->read_answer = answer_console_actions;
  return queue_read(s, c, rq, run_console_actions);
}
