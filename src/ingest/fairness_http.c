/* fairness_http.c: the console's fairness page API (console_fairness.c computes it). Included
 * by server.c after console_http.c, whose access helpers it uses; not compiled on its own. */

static void run_console_fairness(lw_ingest_server *s, lw_request *rq) {
  rq->read_status = lw_console_fairness(s->cfg, s->store, rq->read_site->id, rq->console_arg[0] == 'c',
                                        &rq->read_json, rq->read_err, sizeof rq->read_err);
}

static enum MHD_Result answer_console_fairness(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  if (rq->read_status != 200 || !rq->read_json) return reply_answer(s, c, rq, 503, NULL, rq->read_err);
  lw_answer a = {.status = 200, .owned = rq->read_json, .len = strlen(rq->read_json),
                 .type = rq->console_arg[0] == 'c' ? "text/csv; charset=utf-8" : "application/json"};
  rq->read_json = NULL; /* the response owns it */
  return respond(s, c, rq, &a);
}

/* GET /console/api/fairness[?site=] (JSON) and /console/api/fairness.csv (the same rows). */
static enum MHD_Result handle_console_fairness(lw_ingest_server *s, struct MHD_Connection *c, lw_request *rq) {
  enum MHD_Result refused;
  if (!console_allowed(s, c, rq, 0, &refused)) return refused;
  if (!(rq->read_site = console_site(s, c, rq, &refused))) return refused;
  snprintf(rq->console_arg, sizeof rq->console_arg, "%s", strcmp(rq->path, "/console/api/fairness.csv") ? "" : "csv");
  rq->read_answer = answer_console_fairness;
  return queue_read(s, c, rq, run_console_fairness);
}
