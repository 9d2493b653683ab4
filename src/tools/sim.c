/* sim.c: the population simulator (see sim.h and README.md, "Simulator").
 *
 * Randomness is split into streams so that policies can be compared on the same
 * population: a user's traits come from (seed, user), the sessions of a user-day from
 * (seed, user, day), and responses to prompts from a per-user stream. Two policies thus see
 * the same people doing the same work on the same days until a prompt changes something
 * (a churn, say). */
#define _POSIX_C_SOURCE 200809L
#include "sim.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loopwise/rng.h"
#ifdef LW_SIM_WITH_INGEST
#include "sim_ingest.h"
#else
typedef struct lw_sim_ingest lw_sim_ingest;
static lw_status lw_sim_ingest_start(const char *db, lw_sim_ingest **out, char *err, size_t errlen) {
  (void)db;
  *out = NULL;
  snprintf(err, errlen, "this build has no ingest server (LW_BUILD_INGEST=OFF)");
  return LW_ERR_INVALID;
}
static lw_status lw_sim_ingest_post(lw_sim_ingest *s, const char *b, size_t n, char *err, size_t errlen) {
  (void)s, (void)b, (void)n, (void)err, (void)errlen;
  return LW_ERR_INVALID;
}
static lw_status lw_sim_ingest_referee(lw_sim_ingest *s, const char *b, size_t n, char *err, size_t errlen) {
  (void)s, (void)b, (void)n, (void)err, (void)errlen;
  return LW_ERR_INVALID;
}
static void lw_sim_ingest_clock(lw_sim_ingest *s, int64_t now_ms) { (void)s, (void)now_ms; }
static void lw_sim_ingest_stop(lw_sim_ingest *s) { (void)s; }
#endif

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define N_LABELS 40
#define BATCH_CAP (256 * 1024)

enum { PLAN_FREE, PLAN_PRO, PLAN_TEAM, N_PLANS };
static const char *const k_plan_names[N_PLANS] = {"free", "pro", "team"};

typedef struct {
  lw_engine *e;
  int plan;
  double will;       /* latent willingness to refer, N(plan mean, 1) */
  double sessions;   /* mean sessions per active day */
  double p_active;   /* chance a given day has any session */
  double p_project, p_feature;
  int tz;            /* minutes east of UTC */
  int nps_day;       /* day the user answers the NPS survey, -1 never */
  int nps_score;
  int churned, holdout;
  int busy_until;    /* busy through this day */
  int dismissals;
  int recent[8];     /* days of the last prompts (ring), -1000 empty */
  lw_rng resp;       /* responses to prompts */
  lw_rng tok;        /* per-share token bytes (a stream of their own: tokens change no response) */
  lw_rng ref;        /* the referees' channel, landings, conversions and lifetimes (their own) */
  int habit;         /* the channel this user shares through by habit (lw_channel) */
} sim_user;

void lw_sim_defaults(lw_sim_opts *o) {
  memset(o, 0, sizeof *o);
  o->seed = 1;
  o->users = 5000;
  o->days = 180;
  o->start_ms = 1767225600000LL; /* 2026-01-01 00:00 UTC */
  o->retrain_days = 30;
  o->model_bits = 12;
  o->use_busy = 1;
}

int lw_sim_has_ingest(void) {
#ifdef LW_SIM_WITH_INGEST
  return 1;
#else
  return 0;
#endif
}

static double normal(lw_rng *r) {
  double u1 = lw_rng_unit(r), u2 = lw_rng_unit(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int poisson(lw_rng *r, double mean) {
  double l = exp(-mean), p = 1.0;
  int k = 0;
  do {
    k++;
    p *= lw_rng_unit(r);
  } while (p > l && k < 50);
  return k - 1;
}

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* ---- referees: the parameters (issue 11, item 5) --------------------------------------------
 * Committed before any lift was measured with them, and not to be changed to reach a target
 * (README "Simulator", "Referees"). Each share reaches 1 + Poisson(0.4 + 0.4 max(will, 0))
 * people (unchanged); what each of them does now runs through the real pipeline: a landing
 * (a device record with the link's code and token, from an engine of the referee's own), then
 * the host's reports to POST /v1/referees with the site's secret key: conversion, and later
 * retained_30 / retained_90 / churned, each at its simulated time.
 *
 * Channel. A user shares through a habit channel drawn by plan (k_habit): free users live in
 * messengers and the share sheet, teams in e-mail and LinkedIn; the shares are what people
 * report using for work tools, not measured. When the engine's model ranks channels for the
 * user's persona (lw_engine_channels, model format 3), the user takes the prompt's first
 * channel half the time (REF_FOLLOW_TOP), else the habit. FAVOURS LOOPWISE: that people follow
 * the first option that often is an assumption, and the rules and the monthly program never
 * reorder (they have no model).
 * Per channel (k_chan): a landing logit (reach: a WhatsApp message to a friend is opened, a
 * post on X mostly is not), a conversion logit (a personal e-mail or LinkedIn note reaches
 * people with the same job to be done) and a multiplier of the referee's monthly churn
 * (strangers from a broadcast leave sooner). Fit (k_fit): +0.3 conversion logit for a referrer
 * on the channels of their plan's audience (free on WhatsApp, pro and team on e-mail and
 * LinkedIn). FAVOURS LOOPWISE: this persona x channel interaction is exactly what the trainer's
 * per-persona channel ranking looks for, and the plan is a feature the engine sees.
 *
 * Landing: P = sigmoid(REF_LAND_BASE + channel − REF_LAND_BUSY if the referrer shared while
 * busy: a hurried share, no note). Delay: REF_LAND_MIN_H + exponential(mean REF_LAND_MEAN_H),
 * at most REF_LAND_MAX_D days. Conversion of a landed referee: P = sigmoid(REF_CONV_BASE +
 * 0.25 ln(1 + cost/10) (the referee's reward, as before) + 0.35 x referrer willingness + 0.3
 * team referrer (as before) + channel + fit + REF_CONV_AFTER_WIN when the prompt came right
 * after a completed project (the referrer's enthusiasm shows in the message; FAVOURS LOOPWISE:
 * its rules prompt at wins, the monthly program does not)). REF_CONV_BASE is set so a reached
 * person converts about as often as in the earlier one-step model (sigmoid(-1.7 + ...)): 0.55 x
 * 0.26 = 0.145 vs 0.18 at willingness 0, cost 10, native. Delay after the landing:
 * exponential(mean REF_CONV_MEAN_D days), at most REF_CONV_MAX_D; the host reports it then.
 * Retention: the referee's plan is the referrer's 60% of the time, else free (as before); its
 * monthly churn h = (0.09 − 0.025 w − 0.02 team referee) (as before) x channel multiplier x
 * (1 + REF_DEAL_SEEKERS ln(1 + cost/10)) (bigger rewards bring more deal seekers), within
 * [0.02, 0.5]; its lifetime L months ~ exponential with rate −ln(1 − h). Reported: retained_30
 * at conversion + 30 days when L > 1, retained_90 at + 90 days when L > 3, churned at
 * conversion + 30 L days when L <= 3 (the host follows a referee for 90 days), and (since
 * 2026-12-03) `revenue` with the referee's monthly price (k_arpu of its plan) once, beside its
 * retained_30: a host bills its customers, so it knows what a referee pays; without it a label
 * could price a retained referee only at one figure whatever its plan. Each report is
 * posted only once the simulated clock reaches it, so a retrain sees recent decisions with
 * labels still open. FAVOURS LOOPWISE: the host reports every conversion and retention,
 * promptly and truthfully; real hosts miss some. The simulator's value is the referee's ARPU
 * (free 4, pro 20, team 60) x min(L, 24) months, less the incentive paid for a conversion. */
#define REF_FOLLOW_TOP 0.5
#define REF_LAND_BASE 0.2
#define REF_LAND_BUSY 0.3
#define REF_LAND_MIN_H 1.0
#define REF_LAND_MEAN_H 18.0
#define REF_LAND_MAX_D 10.0
#define REF_CONV_BASE -1.2
#define REF_CONV_AFTER_WIN 0.2
#define REF_CONV_MEAN_D 3.0
#define REF_CONV_MAX_D 21.0
#define REF_DEAL_SEEKERS 0.1
#define REF_FIT 0.3
/* habit channel by plan, in LW_CHANNELS order: native, copy, email, linkedin, x, whatsapp */
static const double k_habit[N_PLANS][LW_CHANNEL_COUNT] = {
    {0.30, 0.20, 0.05, 0.05, 0.15, 0.25}, /* free */
    {0.25, 0.20, 0.20, 0.15, 0.10, 0.10}, /* pro */
    {0.15, 0.15, 0.35, 0.25, 0.05, 0.05}, /* team */
};
typedef struct {
  double land, conv, churn_mult;
} ref_channel;
static const ref_channel k_chan[LW_CHANNEL_COUNT] = {
    {0.0, 0.0, 1.0},   /* native: the share sheet, whatever app the person picks */
    {-0.2, 0.0, 1.0},  /* copy: pasted somewhere, with less context */
    {0.2, 0.3, 0.85},  /* email: a considered note to a colleague */
    {-0.3, 0.2, 0.8},  /* linkedin: a professional audience */
    {-0.8, -0.5, 1.3}, /* x: a broadcast to strangers */
    {0.5, 0.1, 1.0},   /* whatsapp: friends open it; a weaker work fit */
};
/* the channels of each plan's audience (+REF_FIT conversion logit) */
static const int k_fit[N_PLANS][LW_CHANNEL_COUNT] = {
    {0, 0, 0, 0, 0, 1}, /* free: whatsapp */
    {0, 0, 1, 1, 0, 0}, /* pro: email, linkedin */
    {0, 0, 1, 1, 0, 0}, /* team: email, linkedin */
};
/* what a referred customer pays a month, by its plan: the simulator's value is this x its months */
static const double k_arpu[N_PLANS] = {4.0, 20.0, 60.0};
_Static_assert(LW_CHANNEL_COUNT == 6, "k_habit, k_chan and k_fit have one column per LW_CHANNELS row");

/* ---- the latent population ----------------------------------------------------------- */

static void make_user(sim_user *u, uint64_t seed, int i) {
  lw_rng r;
  lw_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)i, 0x7573657273ull);
  double x = lw_rng_unit(&r);
  u->plan = x < 0.6 ? PLAN_FREE : x < 0.9 ? PLAN_PRO : PLAN_TEAM;
  static const double plan_will[N_PLANS] = {-0.4, 0.2, 0.5};
  u->will = plan_will[u->plan] + normal(&r);
  /* activity correlates with willingness (rho ~ 0.45): what a browser can observe */
  double a = 0.45 * (u->will - plan_will[u->plan]) + 0.89 * normal(&r);
  u->p_active = 0.25 + 0.6 * sigmoid(0.9 * a + (u->plan == PLAN_FREE ? -0.3 : 0.3));
  u->sessions = 1.0 + 1.2 * sigmoid(a);
  u->p_project = 0.08 + 0.12 * sigmoid(a + 0.5 * (u->plan == PLAN_TEAM));
  u->p_feature = 0.05 + 0.10 * sigmoid(0.5 * a + 0.5 * u->will);
  static const int tzs[] = {-480, -300, 0, 60, 120, 330, 540};
  u->tz = tzs[lw_rng_below(&r, 7)];
  u->nps_day = lw_rng_unit(&r) < 0.5 ? 7 + (int)lw_rng_below(&r, 60) : -1;
  double nps = 7.0 + 1.6 * u->will + 1.2 * normal(&r);
  u->nps_score = nps < 0 ? 0 : nps > 10 ? 10 : (int)(nps + 0.5);
  u->busy_until = -1;
  for (int k = 0; k < 8; k++) u->recent[k] = -1000;
  lw_rng_seed(&u->resp, seed ^ 0x726573706f6e7365ull, (uint64_t)i);
  lw_rng_seed(&u->tok, seed ^ 0x746f6b656e730000ull, (uint64_t)i);
  lw_rng_seed(&u->ref, seed ^ 0x7265666572656573ull, (uint64_t)i);
  double h = lw_rng_unit(&u->ref), acc = 0;
  u->habit = LW_CHANNEL_COUNT - 1;
  for (int c = 0; c < LW_CHANNEL_COUNT; c++)
    if (h < (acc += k_habit[u->plan][c])) {
      u->habit = c;
      break;
    }
}

/* Message and incentive sensitivity by plan (what the learner can discover through the
 * plan^X features): free users answer to bigger incentives, pro users to the credit. */
static double variant_effect(const char *id, double cost, int plan) {
  static const double gamma[N_PLANS] = {0.55, 0.20, 0.10}; /* per ln(1 + cost/10) */
  double msg = 0.15;
  if (strcmp(id, "credit_10") == 0) msg = plan == PLAN_FREE ? 0.0 : plan == PLAN_PRO ? 0.35 : 0.10;
  else if (strcmp(id, "month_free") == 0) msg = plan == PLAN_FREE ? 0.45 : plan == PLAN_PRO ? -0.05 : 0.30;
  return msg + gamma[plan] * log(1.0 + cost / 10.0);
}

static int recent_prompts(const sim_user *u, int day) {
  int n = 0;
  for (int k = 0; k < 8; k++) n += day - u->recent[k] < 30;
  return n;
}

/* ---- logging: wire batches to VW lines ------------------------------------------------- */

typedef struct {
  const lw_sim_opts *o;
  const lw_config *cfg;
  int n_actions;
  char actions[LW_LEARN_MAX_ACTIONS][LW_NAME_LEN + 1];
  FILE *train;      /* LW_SIM_LEARNING without the ingest server: the logged choices so far */
  char *batch;
  uint64_t lines;
  lw_sim_ingest *ing; /* via_ingest: records go to the server in batches of up to 400 */
  cJSON *pending;
  int n_pending;
  size_t pending_bytes;
  uint64_t posted;
  lw_status ing_status;
  char ing_err[LW_ERRMSG_MAX];
  /* via_ingest: the referees' landings and the host's reports, waiting for their time */
  struct ref_event *q;
  size_t nq, capq;
  struct sim_referee *refs;
  size_t nrefs, caprefs;
  uint64_t reports, landings, retained_30;
} sim_log;

/* ---- referees through the pipeline (via_ingest) -------------------------------------------- */

enum { RV_LAND, RV_CONVERSION, RV_RETAINED_30, RV_RETAINED_90, RV_CHURNED, RV_REVENUE };
static const char *const k_rv_event[] = {"landing", "conversion", "retained_30", "retained_90", "churned", "revenue"};

typedef struct ref_event {
  int64_t t;
  uint32_t ref;
  int kind;
  double value; /* RV_REVENUE: the revenue reported */
} ref_event;

typedef struct sim_referee {
  char code[LW_CODE_LEN + 1], token[LW_TOKEN_LEN + 1], install[LW_INSTALL_LEN + 1];
} sim_referee;

/* A new referee of the share (code, token); its index, or -1 without the pipeline. */
static long add_referee(sim_log *lg, const char *code, const char *token) {
  if (!lg->ing) return -1;
  if (lg->nrefs == lg->caprefs) {
    size_t cap = lg->caprefs ? 2 * lg->caprefs : 1024;
    sim_referee *r = realloc(lg->refs, cap * sizeof *r);
    if (!r) return -1;
    lg->refs = r;
    lg->caprefs = cap;
  }
  sim_referee *r = &lg->refs[lg->nrefs];
  memset(r, 0, sizeof *r);
  snprintf(r->code, sizeof r->code, "%s", code);
  snprintf(r->token, sizeof r->token, "%s", token);
  return (long)lg->nrefs++;
}

static void schedule_value(sim_log *lg, long ref, int kind, int64_t t, double value) {
  if (ref < 0) return;
  if (lg->nq == lg->capq) {
    size_t cap = lg->capq ? 2 * lg->capq : 4096;
    ref_event *q = realloc(lg->q, cap * sizeof *q);
    if (!q) return;
    lg->q = q;
    lg->capq = cap;
  }
  lg->q[lg->nq++] = (ref_event){t, (uint32_t)ref, kind, value};
}

static void schedule(sim_log *lg, long ref, int kind, int64_t t) { schedule_value(lg, ref, kind, t, 0.0); }

static int by_time(const void *a, const void *b) {
  const ref_event *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  if (x->ref != y->ref) return x->ref < y->ref ? -1 : 1;
  return x->kind - y->kind;
}


/* Send the pending records as one wire batch. */
static void flush_pending(sim_log *lg, int64_t now) {
  if (!lg->ing || !lg->n_pending || lg->ing_status != LW_OK) return;
  cJSON *b = cJSON_CreateObject();
  char id[40];
  snprintf(id, sizeof id, "sim%llu-%llu", (unsigned long long)lg->o->seed, (unsigned long long)lg->posted);
  cJSON_AddNumberToObject(b, "v", LW_WIRE_VERSION); /* the records are the engine's own */
  cJSON_AddStringToObject(b, "batch_id", id);
  cJSON_AddStringToObject(b, "write_key", "demo-site-key");
  cJSON_AddNumberToObject(b, "sent_at", (double)now);
  cJSON_AddItemToObject(b, "events", lg->pending);
  char *text = cJSON_PrintUnformatted(b);
  lg->ing_status = text ? lw_sim_ingest_post(lg->ing, text, strlen(text), lg->ing_err, sizeof lg->ing_err) : LW_ERR_NOMEM;
  lg->posted++;
  free(text);
  cJSON_Delete(b);
  lg->pending = cJSON_CreateArray();
  lg->n_pending = 0;
  lg->pending_bytes = 0;
}

/* A string field of a wire record, by its name in loopwise/wire.h. */
static const char *field(const cJSON *ev, lw_field f) {
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, lw_field_name(f)));
}

/* Drain one engine's outbox; decisions with a choice become VW lines, rewarded when the
 * same batch holds a share or copy of that decision. */
static void drain(sim_log *lg, lw_engine *e, int64_t now) {
  size_t len, n;
  for (;;) {
    char batch_id[LW_BATCH_ID_HEX_LEN + 1];
    lw_engine_batch_id(e, batch_id);
    if (lw_wire_take_batch(lw_engine_outbox(e), batch_id, "sim-key", now, BATCH_CAP, lg->batch, BATCH_CAP, &len, &n) !=
            LW_OK ||
        n == 0)
      return;
    if (!lg->train && !lg->o->vw_out && !lg->ing) continue;
    cJSON *b = cJSON_ParseWithLength(lg->batch, len);
    cJSON *evs = cJSON_GetObjectItemCaseSensitive(b, "events"), *ev;
    cJSON_ArrayForEach(ev, evs) {
      const char *kind = field(ev, LW_FIELD_KIND), *mode = field(ev, LW_FIELD_MODE);
      const char *action = field(ev, LW_FIELD_ACTION), *id = field(ev, LW_FIELD_DECISION);
      if (!kind || lw_kind_parse(kind) != LW_KIND_DECISION || !mode || lw_mode_parse(mode) == LW_MODE_HOLDOUT ||
          !action || !id)
        continue;
      int a = -1;
      for (int k = 0; k < lg->n_actions; k++)
        if (strcmp(lg->actions[k], action) == 0) a = k;
      if (a < 0) continue; /* LW_ACTION_NONE: a constraint decided, there was no choice */
      int shared = 0;
      cJSON *o2;
      cJSON_ArrayForEach(o2, evs) {
        const char *k2 = field(o2, LW_FIELD_KIND), *d2 = field(o2, LW_FIELD_DECISION);
        int kk = k2 ? lw_kind_parse(k2) : -1;
        if (kk >= 0 && d2 && strcmp(d2, id) == 0 && (lw_kind_flags((lw_kind)kk) & LW_KIND_F_SHARED)) shared = 1;
      }
      double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ev, lw_field_name(LW_FIELD_P)));
      char line[8192];
      int off = snprintf(line, sizeof line, "%d:%d:%.6f |", a + 1, -shared, p);
      cJSON *x = cJSON_GetObjectItemCaseSensitive(ev, lw_field_name(LW_FIELD_FEATURES)), *pair;
      cJSON_ArrayForEach(pair, x) {
        if (off > (int)sizeof line - 64) break;
        off += snprintf(line + off, sizeof line - (size_t)off, " #%.0f:%.17g", cJSON_GetArrayItem(pair, 0)->valuedouble,
                        cJSON_GetArrayItem(pair, 1)->valuedouble);
      }
      if (lg->train) fprintf(lg->train, "%s\n", line);
      if (lg->o->vw_out) fprintf(lg->o->vw_out, "%s\n", line);
      lg->lines++;
    }
    while (lg->ing && cJSON_GetArraySize(evs) > 0) {
      cJSON_AddItemToArray(lg->pending, cJSON_DetachItemFromArray(evs, 0));
      lg->n_pending++;
    }
    lg->pending_bytes += len;
    if (lg->n_pending >= 400 || lg->pending_bytes >= 600000) flush_pending(lg, now);
    cJSON_Delete(b);
  }
}

/* The host's report of one referee event (README "Ingest API", referee report v2). */
static void post_report(sim_log *lg, const ref_event *ev) {
  const sim_referee *r = &lg->refs[ev->ref];
  cJSON *o = cJSON_CreateObject();
  char id[48];
  snprintf(id, sizeof id, "sim%llu-r%u", (unsigned long long)lg->o->seed, ev->ref);
  cJSON_AddNumberToObject(o, "v", 2);
  cJSON_AddStringToObject(o, "site", "default");
  cJSON_AddStringToObject(o, "code", r->code);
  cJSON_AddStringToObject(o, "referee", id);
  cJSON_AddStringToObject(o, "event", k_rv_event[ev->kind]);
  cJSON_AddNumberToObject(o, "at", (double)ev->t);
  cJSON_AddStringToObject(o, "token", r->token);
  if (ev->kind == RV_CONVERSION && r->install[0]) cJSON_AddStringToObject(o, "install", r->install);
  if (ev->kind == RV_REVENUE) cJSON_AddNumberToObject(o, "value", ev->value);
  char *text = cJSON_PrintUnformatted(o);
  lg->ing_status = text ? lw_sim_ingest_referee(lg->ing, text, strlen(text), lg->ing_err, sizeof lg->ing_err)
                        : LW_ERR_NOMEM;
  lg->reports += lg->ing_status == LW_OK;
  lg->retained_30 += lg->ing_status == LW_OK && ev->kind == RV_RETAINED_30;
  free(text);
  cJSON_Delete(o);
}

/* Everything the referees do before end: a landing from the referee's own device (an engine
 * of its own, drained like any), then the host's reports, in time order. */
static void referees_due(sim_log *lg, int64_t end) {
  if (!lg->ing || !lg->nq) return;
  size_t nd = 0;
  for (size_t i = 0; i < lg->nq; i++)
    if (lg->q[i].t < end) {
      ref_event tmp = lg->q[nd];
      lg->q[nd++] = lg->q[i];
      lg->q[i] = tmp;
    }
  qsort(lg->q, nd, sizeof *lg->q, by_time);
  for (size_t i = 0; i < nd && lg->ing_status == LW_OK; i++) {
    ref_event *ev = &lg->q[i];
    sim_referee *r = &lg->refs[ev->ref];
    if (ev->kind != RV_LAND) {
      post_report(lg, ev);
      continue;
    }
    lw_engine *e = NULL;
    char err[LW_ERRMSG_MAX];
    if (lw_engine_create(lg->cfg, lg->o->seed * 7919u + ev->ref, 0x7265666572656521ull, 4096, &e, err, sizeof err) !=
        LW_OK)
      continue;
    snprintf(r->install, sizeof r->install, "%s", lw_engine_install_key(e));
    if (lw_engine_referee_landing_token(e, r->code, r->token, ev->t, err, sizeof err) == LW_OK) lg->landings++;
    drain(lg, e, end);
    lw_engine_free(e);
  }
  memmove(lg->q, lg->q + nd, (lg->nq - nd) * sizeof *lg->q);
  lg->nq -= nd;
}

/* ---- retraining (LW_SIM_LEARNING) ------------------------------------------------------ */

typedef struct {
  uint8_t *cur;
  size_t cur_len;
  lw_model *cur_model;
} sim_models;

static void retrain(const lw_sim_opts *o, const lw_config *cfg, sim_log *lg, sim_models *sm, sim_user *us,
                    int day, lw_sim_result *res) {
  char path[1024];
  lw_source_opts src;
  memset(&src, 0, sizeof src);
  if (lg->ing) { /* what the ingest server stored */
    flush_pending(lg, o->start_ms + (int64_t)day * DAY_MS);
    snprintf(path, sizeof path, "%s/sim-outcomes.db", o->workdir);
    src.kind = LW_SRC_SQLITE;
    src.site = "default";
  } else {
    fflush(lg->train);
    snprintf(path, sizeof path, "%s/sim-train.vw", o->workdir);
    src.kind = LW_SRC_VW;
  }
  src.path = path;
  if (lg->ing && o->retained_labels) { /* the retained referee value, closed windows only */
    src.reward = cfg;
    src.now_ms = o->start_ms + (int64_t)day * DAY_MS;
  }
  src.n_actions = lg->n_actions;
  memcpy(src.actions, lg->actions, sizeof src.actions);
  lw_train_opts to;
  lw_train_defaults(&to);
  to.bits = o->model_bits;
  /* the config's fairness attribute and ratio, as loopwise-train takes them */
  to.n_segments = lw_cli_fairness_segments(cfg, to.segments, LW_MODEL_MAX_SEGMENTS);
  if (cfg->fairness_attr >= 0) to.fair_ratio = cfg->fairness_min_ratio;
  lw_policy_params pp;
  lw_policy_params_init(&pp, cfg);
  int64_t now = o->start_ms + (int64_t)day * DAY_MS;
  lw_model *m = NULL;
  lw_eval_report rep;
  char err[LW_ERRMSG_MAX];
  uint32_t id = (uint32_t)(res->models_promoted + res->models_rejected + 1);
  lw_train_request rq = {&src, &to, cfg, &pp, o->seed + (uint64_t)day, id, now, "loopwise-sim (monthly retrain)",
                         NULL, NULL};
  lw_train_result tr;
  if (lw_train(&rq, &tr, err, sizeof err) != LW_OK) {
    if (o->log) fprintf(o->log, "day %d: retrain failed: %s\n", day, err);
    return;
  }
  m = tr.model;
  rep = tr.report;
  lw_compare_result cr;
  memset(&cr, 0, sizeof cr);
  lw_metric mt;
  lw_metric_init(&mt, 1, cfg, &pp, src.n_actions, src.actions);
  if (lw_source_graded(&src)) lw_metric_graded(&mt);
  /* against the best of the live model, the rules (the logging policy) and the best single action */
  lw_promote_opts po;
  lw_promote_defaults(&po);
  po.eval.only_holdout = to.holdout_mod;
  po.eval.seed = o->seed;
  po.eval.n_segments = to.n_segments;
  memcpy(po.eval.segments, to.segments, sizeof po.eval.segments);
  po.fair_ratio = to.n_segments ? to.fair_ratio : 0.0;
  if (lw_compare_models(&src, sm->cur_model, m, cfg, &pp, &mt, &po, &cr, err, sizeof err) != LW_OK) cr.promote = 0;
  lw_policy pol;
  int ready = lw_policy_for_model(m, cfg, &pol, NULL); /* whether the engines will decide by it */
  if (o->log)
    fprintf(o->log, "day %d: labels %s, %llu open windows left out\n", day, lw_label_kind_name(rep.labels),
            (unsigned long long)rep.open_windows);
  if (o->log)
    fprintf(o->log, "day %d: m%u trained on %llu records, DR %.4f [%.4f, %.4f], logged %.4f; vs %s %+.4f [%+.4f, %+.4f] on %.0f held out: %s (%s)\n",
            day, id, (unsigned long long)rep.records, rep.target.dr.est, rep.target.dr.lo, rep.target.dr.hi,
            rep.target.logged.est, cr.baseline, cr.diff.est, cr.diff.lo, cr.diff.hi, cr.n,
            !cr.promote ? "kept the current model" : ready ? "promoted" : "promoted (no action has enough data yet)",
            cr.reason);
  if (res->n_rounds < LW_SIM_MAX_ROUNDS) {
    lw_sim_round *rd = &res->rounds[res->n_rounds++];
    rd->day = day;
    rd->promoted = cr.promote;
    rd->held_out = cr.n;
    rd->candidate = cr.candidate.est;
    rd->baseline = cr.current.est;
    rd->diff_lo = cr.diff.lo;
    rd->threshold = cr.threshold;
    snprintf(rd->baseline_name, sizeof rd->baseline_name, "%s", cr.baseline);
  }
  uint8_t *buf = NULL;
  size_t len = 0;
  if (!cr.promote) {
    res->models_rejected++;
    /* no model decides yet: the best single action when it beats the rules, else the
     * candidate's confident channel rankings alone, the rules still deciding (learn.h
     * lw_fallback_model, as loopwise-train --promote-into) */
    lw_fallback fb;
    if (lw_fallback_model(&src, sm->cur_model, m, &cr, cfg, &pp, &mt, &po, &fb, err, sizeof err) != LW_OK ||
        fb.kind == LW_FALLBACK_NONE) {
      lw_model_free(m);
      return;
    }
    if (o->log) fprintf(o->log, "day %d: m%u refused; went live instead: %s\n", day, id, fb.reason);
    if (fb.kind == LW_FALLBACK_CHANNELS) {
      res->channels_only++;
      for (int i = 0; i < o->users; i++)
        if (us[i].e) lw_engine_set_model(us[i].e, fb.bytes, fb.len, err, sizeof err);
      free(fb.bytes);
      lw_model_free(m);
      return;
    }
    /* the single-action model decides: it is the live model the next candidate must beat */
    if (!sm->cur_model) res->single_action++;
    lw_model_free(m);
    m = NULL;
    buf = fb.bytes;
    len = fb.len;
    if (lw_model_load(buf, len, &m, err, sizeof err) != LW_OK) {
      free(buf);
      return;
    }
  }
  if (!buf && lw_model_write(m, &buf, &len, err, sizeof err) != LW_OK) {
    lw_model_free(m);
    return;
  }
  if (cr.promote) res->models_promoted++;
  res->last_model_id = id;
  free(sm->cur);
  lw_model_free(sm->cur_model);
  sm->cur = buf;
  sm->cur_len = len;
  sm->cur_model = m;
  for (int i = 0; i < o->users; i++)
    if (us[i].e) lw_engine_set_model(us[i].e, buf, len, err, sizeof err);
}

/* ---- one user's day ------------------------------------------------------------------------ */

typedef struct {
  const lw_sim_opts *o;
  const lw_config *cfg;
  lw_sim_policy policy;
  lw_sim_result *res;
  int uid;
  sim_log *lg;
} sim_ctx;

static void emit_event(const sim_ctx *c, int64_t t, const char *ev, double v, const char *label) {
  if (!c->o->events_out) return;
  fprintf(c->o->events_out, "{\"u\":%d,\"t\":%lld,\"e\":\"%s\"", c->uid, (long long)t, ev);
  if (v == v) fprintf(c->o->events_out, ",\"v\":%g", v);
  if (label) fprintf(c->o->events_out, ",\"l\":\"%s\"", label);
  fputs("}\n", c->o->events_out);
}

/* The simulator's response formulas (README "Simulator"; the referee parameters above), shared
 * by respond(), which draws from them, and LW_SIM_ORACLE, which maximises their expectation. */
static double share_logit(const sim_user *u, const lw_variant *v, const char *milestone, int recent, int busy) {
  double z = -3.1 + u->will + variant_effect(v->id, v->cost, u->plan) - 0.35 * recent - 0.4 * u->dismissals;
  if (strcmp(milestone, "project_completed") == 0) z += 0.6; /* asked right after a win */
  else if (strcmp(milestone, "feature_discovered") == 0) z += 0.3;
  else if (strcmp(milestone, "session_started") == 0) z -= 0.2; /* asked before any work */
  if (busy) z -= 1.5;
  return z;
}
/* the mean of the Poisson number of people a share reaches beyond the first */
static double extra_reach(const sim_user *u) { return 0.4 + 0.4 * (u->will > 0 ? u->will : 0); }
static double p_land(const ref_channel *rc, int busy) {
  return sigmoid(REF_LAND_BASE + rc->land - (busy ? REF_LAND_BUSY : 0.0));
}
static double p_convert(const sim_user *u, double lg_cost, int ch, int win) {
  return sigmoid(REF_CONV_BASE + 0.25 * lg_cost + 0.35 * u->will + 0.3 * (u->plan == PLAN_TEAM) + k_chan[ch].conv +
                 (k_fit[u->plan][ch] ? REF_FIT : 0.0) + (win ? REF_CONV_AFTER_WIN : 0.0));
}
/* a referee's monthly churn, by its plan, the channel it came through and the incentive */
static double referee_churn(const sim_user *u, int rplan, int ch, double lg_cost) {
  double w = u->will < -1 ? -1 : u->will > 1.5 ? 1.5 : u->will;
  double h = (0.09 - 0.025 * w - 0.02 * (rplan == PLAN_TEAM)) * k_chan[ch].churn_mult * (1.0 + REF_DEAL_SEEKERS * lg_cost);
  return h < 0.02 ? 0.02 : h > 0.5 ? 0.5 : h;
}

/* The referral value a share by u through channel ch is expected to bring under variant v (reach,
 * landing, conversion, the referee's plan and lifetime), less the incentive. */
static double share_value(const sim_user *u, const lw_variant *v, int ch, int win, int busy) {
  double lg_cost = log(1.0 + v->cost / 10.0), life = 0;
  for (int k = 0; k < 2; k++) { /* the referee's plan: the referrer's 60% of the time, else free */
    int rplan = k == 0 ? u->plan : PLAN_FREE;
    double rate = -log(1.0 - referee_churn(u, rplan, ch, lg_cost)); /* E[min(L, 24)] for L exponential */
    life += (k == 0 ? 0.6 : 0.4) * k_arpu[rplan] * (1.0 - exp(-24.0 * rate)) / rate;
  }
  return (1.0 + extra_reach(u)) * p_land(&k_chan[ch], busy) * p_convert(u, lg_cost, ch, win) * (life - v->cost);
}

/* LW_SIM_ORACLE: the variant and first channel worth most for this user now, by the simulator's
 * truth (share probability x share_value, the first channel followed REF_FOLLOW_TOP of the time). */
static int oracle_choice(const lw_config *cfg, const sim_user *u, const char *milestone, int recent, int busy,
                         int habit_only, int *channel) {
  int best = 0, win = strcmp(milestone, "project_completed") == 0;
  double best_ev = -1e300;
  for (int a = 0; a < cfg->n_variants; a++) {
    const lw_variant *v = &cfg->variants[a];
    if (v->weight <= 0) continue;
    int top = u->habit;
    double top_val = -1e300;
    for (int ch = 0; ch < LW_CHANNEL_COUNT; ch++) {
      double sv = share_value(u, v, ch, win, busy);
      if (sv > top_val) top_val = sv, top = ch;
    }
    double follow = habit_only ? 0.0 : REF_FOLLOW_TOP;
    double ev = sigmoid(share_logit(u, v, milestone, recent, busy)) *
                (follow * top_val + (1 - follow) * share_value(u, v, u->habit, win, busy));
    if (ev > best_ev) best_ev = ev, best = a, *channel = top;
  }
  return best;
}

static void respond(const sim_ctx *c, sim_user *u, const lw_decision *d, const char *milestone, int day, int64_t t) {
  lw_sim_group *g = u->holdout ? &c->res->holdout : &c->res->treat;
  char err[LW_ERRMSG_MAX];
  g->prompts++;
  lw_engine_outcome(u->e, d->id, LW_KIND_IMPRESSION, t, err, sizeof err);
  int busy = day <= u->busy_until, recent = recent_prompts(u, day), oracle_ch = -1;
  int chosen = c->policy == LW_SIM_ORACLE
                   ? oracle_choice(c->cfg, u, milestone, recent, busy, c->o->habit_channel_only, &oracle_ch)
                   : d->variant;
  const lw_variant *v = &c->cfg->variants[chosen];
  double z = share_logit(u, v, milestone, recent, busy);
  double p_share = sigmoid(z), p_dismiss = busy ? 0.8 : 0.5;
  double x = lw_rng_unit(&u->resp);
  for (int k = 7; k > 0; k--) u->recent[k] = u->recent[k - 1];
  u->recent[0] = day;
  int64_t t2 = t + 20000;
  if (x < p_share) {
    g->shares++;
    /* the channel: the prompt's first when the model ranks them and the user follows it, else
     * the habit (the draw is made either way, so every policy sees the same referees) */
    int ch = u->habit;
    double follow = lw_rng_unit(&u->ref);
    const char *top[LW_CHANNEL_COUNT];
    if (c->o->habit_channel_only) { /* --habit-channels: the prompt's order moves nobody */
    } else if (oracle_ch >= 0) {
      if (follow < REF_FOLLOW_TOP) ch = oracle_ch;
    } else if (lw_engine_channels(u->e, t2, u->tz, top, LW_CHANNEL_COUNT) > 0 && follow < REF_FOLLOW_TOP) {
      int pc = lw_channel_parse(top[0]);
      if (pc >= 0) ch = pc;
    }
    uint8_t random[LW_TOKEN_BYTES]; /* as a browser passes crypto.getRandomValues bytes */
    lw_rng_bytes(&u->tok, random, sizeof random);
    char token[LW_TOKEN_LEN + 1] = "";
    lw_engine_share(u->e, d->id, lw_channel_name((lw_channel)ch), random, t2, token, err, sizeof err);
    const char *code = lw_engine_referral_code(u->e);
    double lg_cost = log(1.0 + v->cost / 10.0);
    int win = strcmp(milestone, "project_completed") == 0;
    /* the people it reaches: who lands, converts and stays (parameters above) */
    int n = 1 + poisson(&u->ref, extra_reach(u));
    for (int k = 0; k < n; k++) {
      g->invites++;
      double u_land = lw_rng_unit(&u->ref), u_land_t = lw_rng_unit(&u->ref), u_conv = lw_rng_unit(&u->ref);
      double u_conv_t = lw_rng_unit(&u->ref), u_plan = lw_rng_unit(&u->ref), u_life = lw_rng_unit(&u->ref);
      if (u_land >= p_land(&k_chan[ch], busy)) continue;
      g->landings++;
      double land_h = REF_LAND_MIN_H - REF_LAND_MEAN_H * log(1.0 - u_land_t);
      if (land_h > REF_LAND_MAX_D * 24) land_h = REF_LAND_MAX_D * 24;
      int64_t t_land = t2 + (int64_t)(land_h * HOUR_MS);
      long ref = add_referee(c->lg, code, token);
      schedule(c->lg, ref, RV_LAND, t_land);
      if (u_conv >= p_convert(u, lg_cost, ch, win)) continue;
      g->referred++;
      g->incentive_cost += v->cost;
      int rplan = u_plan < 0.6 ? u->plan : PLAN_FREE;
      double h = referee_churn(u, rplan, ch, lg_cost);
      double months = -log(1.0 - u_life) / -log(1.0 - h); /* exponential, rate -ln(1 - h) a month */
      g->referral_value += k_arpu[rplan] * (months < 24 ? months : 24);
      g->retained += months > 1;
      g->retained_90 += months > 3;
      double conv_d = -REF_CONV_MEAN_D * log(1.0 - u_conv_t);
      if (conv_d > REF_CONV_MAX_D) conv_d = REF_CONV_MAX_D;
      int64_t t_conv = t_land + (int64_t)(conv_d * DAY_MS);
      schedule(c->lg, ref, RV_CONVERSION, t_conv);
      if (months > 1) schedule(c->lg, ref, RV_RETAINED_30, t_conv + 30 * DAY_MS);
      /* what a month of this referee pays, reported with its first month (the host bills it) */
      if (months > 1) schedule_value(c->lg, ref, RV_REVENUE, t_conv + 30 * DAY_MS, k_arpu[rplan]);
      if (months > 3) schedule(c->lg, ref, RV_RETAINED_90, t_conv + 90 * DAY_MS);
      else schedule(c->lg, ref, RV_CHURNED, t_conv + (int64_t)(months * 30 * DAY_MS));
    }
  } else if (x < p_share + (1 - p_share) * p_dismiss) {
    g->dismissals++;
    u->dismissals++;
    lw_engine_outcome(u->e, d->id, LW_KIND_DISMISS, t2, err, sizeof err);
  } else {
    lw_engine_close(u->e, d->id, err, sizeof err);
  }
  /* fatigue: every ask, more so when recent, busy or after dismissals, may lose the user */
  double p_churn = 0.002 + 0.003 * recent + (busy ? 0.006 : 0) + 0.002 * u->dismissals;
  if (lw_rng_unit(&u->resp) < p_churn) u->churned = 1;
}

static void track(const sim_ctx *c, sim_user *u, const char *ev, double v, const char *label, int day, int64_t t) {
  lw_decision d;
  char err[LW_ERRMSG_MAX];
  emit_event(c, t, ev, v, label);
  if (lw_engine_track_value(u->e, ev, v, label, t, u->tz, &d, err, sizeof err) != LW_OK || !d.decided) return;
  lw_sim_group *g = u->holdout ? &c->res->holdout : &c->res->treat;
  g->decisions++;
  if (d.prompt) respond(c, u, &d, ev, day, t);
}

static void user_day(const sim_ctx *c, sim_user *u, int day) {
  if (u->churned) return;
  lw_rng r;
  lw_rng_seed(&r, c->o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)c->uid, 0x646179ull + (uint64_t)day);
  static const double base_churn[N_PLANS] = {0.0015, 0.0008, 0.0005};
  if (lw_rng_unit(&r) < base_churn[u->plan]) {
    u->churned = 1;
    return;
  }
  if (day > u->busy_until && lw_rng_unit(&r) < 0.04) u->busy_until = day + 1 + (int)lw_rng_below(&r, 6);
  int busy = day <= u->busy_until;
  int64_t day0 = c->o->start_ms + (int64_t)day * DAY_MS;
  int wday = (int)((day0 / DAY_MS + 4) % 7);
  double p_active = u->p_active * (wday == 0 || wday == 6 ? 0.4 : 1.0);
  if (lw_rng_unit(&r) >= p_active) return;
  int n = 1 + poisson(&r, u->sessions - 1.0);
  double nan = 0.0 / 0.0;
  /* session start times in local working hours (mostly 8-19, some evenings), in order */
  double hours[8];
  if (n > 8) n = 8;
  for (int s = 0; s < n; s++) {
    hours[s] = lw_rng_unit(&r) < 0.85 ? 8 + 11 * lw_rng_unit(&r) : 19 + 3.5 * lw_rng_unit(&r);
    for (int k = s; k > 0 && hours[k] < hours[k - 1]; k--) {
      double tmp = hours[k];
      hours[k] = hours[k - 1];
      hours[k - 1] = tmp;
    }
  }
  int64_t t_end = 0; /* a session starts at least 31 minutes after the previous one's last event */
  for (int s = 0; s < n && !u->churned; s++) {
    int64_t t = day0 + (int64_t)(hours[s] * HOUR_MS) - (int64_t)u->tz * 60000;
    if (t < t_end + 31 * 60000) t = t_end + 31 * 60000;
    if (c->o->use_busy) lw_engine_set_busy(u->e, busy);
    track(c, u, "session_started", nan, NULL, day, t);
    if (day == u->nps_day && s == 0) track(c, u, "nps_answered", (double)u->nps_score, NULL, day, t + 60000);
    int steps = 1 + (int)lw_rng_below(&r, 4);
    for (int k = 0; k < steps && !u->churned; k++) {
      t += 300000 + (int64_t)lw_rng_below(&r, 900000);
      if (lw_rng_unit(&r) < u->p_feature) {
        char label[8];
        snprintf(label, sizeof label, "f%u", lw_rng_below(&r, N_LABELS));
        track(c, u, "feature_discovered", nan, label, day, t);
      }
      if (lw_rng_unit(&r) < u->p_project * (busy ? 1.6 : 1.0)) track(c, u, "project_completed", nan, NULL, day, t);
      if (lw_rng_unit(&r) < 0.01 + 0.01 * (u->will > 0)) track(c, u, "invite_sent", nan, NULL, day, t);
    }
    t_end = t;
  }
}

/* ---- the run ---------------------------------------------------------------------------------- */

lw_status lw_sim_run(const lw_sim_opts *o, const lw_config *cfg_in, lw_sim_policy policy, lw_sim_result *res,
                     char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  lw_config cfg = *cfg_in;
  if (policy != LW_SIM_LEARNING) cfg.holdout = 0;
  sim_user *us = calloc((size_t)o->users, sizeof *us);
  sim_log lg;
  memset(&lg, 0, sizeof lg);
  lg.o = o;
  lg.cfg = &cfg;
  lg.batch = malloc(BATCH_CAP);
  lw_actions_from_config(&cfg, &lg.n_actions, lg.actions);
  sim_models sm = {0};
  lw_status st = LW_OK;
  if (!us || !lg.batch) {
    snprintf(err, errlen, "out of memory");
    st = LW_ERR_NOMEM;
    goto done;
  }
  if (policy == LW_SIM_LEARNING && o->via_ingest) {
    char path[1024];
    snprintf(path, sizeof path, "%s/sim-outcomes.db", o->workdir ? o->workdir : ".");
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) { /* a fresh store each run */
      char f[1100];
      snprintf(f, sizeof f, "%s%s", path, suffixes[k]);
      remove(f);
    }
    if (!o->workdir || (st = lw_sim_ingest_start(path, &lg.ing, err, errlen)) != LW_OK) {
      if (!o->workdir) snprintf(err, errlen, "the learning policy needs a workdir");
      if (st == LW_OK) st = LW_ERR_INVALID;
      goto done;
    }
    lg.pending = cJSON_CreateArray();
  } else if (policy == LW_SIM_LEARNING) {
    char path[1024];
    snprintf(path, sizeof path, "%s/sim-train.vw", o->workdir ? o->workdir : ".");
    if (!o->workdir || !(lg.train = fopen(path, "w"))) {
      snprintf(err, errlen, "the learning policy needs a writable workdir (%s)", path);
      st = LW_ERR_IO;
      goto done;
    }
  }
  for (int i = 0; i < o->users; i++) {
    sim_user *u = &us[i];
    make_user(u, o->seed, i);
    if ((st = lw_engine_create(&cfg, o->seed * 1000003u + (uint64_t)i, 0x656e67ull, 16384, &u->e, err, errlen)) != LW_OK)
      goto done;
    lw_engine_set_attribute(u->e, "plan", k_plan_names[u->plan], err, errlen);
    if (o->model && (st = lw_engine_set_model(u->e, o->model, o->model_len, err, errlen)) != LW_OK) goto done;
    /* holdout membership as the engine assigns it: the install key's first 32 bits */
    const char *key = lw_engine_install_key(u->e);
    uint32_t k32 = (uint32_t)strtoul((char[9]){key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7], 0}, NULL, 16);
    u->holdout = policy == LW_SIM_LEARNING && (double)k32 < cfg.holdout * 4294967296.0;
    (u->holdout ? &res->holdout : &res->treat)->users++;
  }
  for (int day = 0; day < o->days; day++) {
    sim_ctx c = {o, &cfg, policy, res, 0, &lg};
    int64_t end_of_day = o->start_ms + (int64_t)(day + 1) * DAY_MS;
    if (lg.ing) lw_sim_ingest_clock(lg.ing, end_of_day); /* the server receives the day's at its end */
    for (int i = 0; i < o->users; i++) {
      c.uid = i;
      int was = us[i].churned;
      user_day(&c, &us[i], day);
      if (us[i].churned && !was) (us[i].holdout ? &res->holdout : &res->treat)->churned++;
      drain(&lg, us[i].e, end_of_day);
    }
    flush_pending(&lg, end_of_day);
    referees_due(&lg, end_of_day); /* after the day's shares are stored */
    flush_pending(&lg, end_of_day);
    if (lg.ing_status != LW_OK) {
      snprintf(err, errlen, "%s", lg.ing_err);
      st = lg.ing_status;
      goto done;
    }
    if (policy == LW_SIM_LEARNING && o->retrain_days > 0 && (day + 1) % o->retrain_days == 0 && day + 1 < o->days)
      retrain(o, &cfg, &lg, &sm, us, day + 1, res);
  }
done:
  if (us)
    for (int i = 0; i < o->users; i++) lw_engine_free(us[i].e);
  free(us);
  if (lg.train) fclose(lg.train);
  res->batches_posted = lg.posted;
  res->referee_reports = lg.reports;
  res->referee_landings = lg.landings;
  res->referee_retained_30 = lg.retained_30;
  free(lg.q);
  free(lg.refs);
  lw_sim_ingest_stop(lg.ing);
  cJSON_Delete(lg.pending);
  free(lg.batch);
  free(sm.cur);
  lw_model_free(sm.cur_model);
  return st;
}
