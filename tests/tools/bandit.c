/* bandit.c: the synthetic contextual bandit (see bandit.h). */
#include "bandit.h"

#include <string.h>

void bandit_default(bandit *b) {
  memset(b, 0, sizeof *b);
  b->n_ctx = 4;
  b->n_actions = 3;
  b->n_noise = 3;
  static const double r[4][3] = {{0.10, 0.30, 0.05}, {0.55, 0.15, 0.05}, {0.20, 0.25, 0.10}, {0.05, 0.05, 0.20}};
  for (int c = 0; c < 4; c++)
    for (int a = 0; a < 3; a++) b->reward[c][a] = r[c][a];
  strcpy(b->actions[0], "a0");
  strcpy(b->actions[1], "a1");
  strcpy(b->actions[2], LW_ACTION_NOT_NOW);
  bandit_log_uniform(b);
}

void bandit_log_uniform(bandit *b) {
  for (int c = 0; c < b->n_ctx; c++) {
    uint32_t w[LW_MODEL_MAX_ACTIONS];
    for (int a = 0; a < b->n_actions; a++) w[a] = 1;
    lw_ppm_split(w, b->n_actions, b->log_ppm[c]);
  }
}

void bandit_log_skewed(bandit *b) {
  for (int c = 0; c < b->n_ctx; c++) {
    int worst = 0;
    for (int a = 1; a < b->n_actions; a++)
      if (b->reward[c][a] < b->reward[c][worst]) worst = a;
    uint32_t rest = 100000 / (uint32_t)(b->n_actions - 1);
    for (int a = 0; a < b->n_actions; a++) b->log_ppm[c][a] = a == worst ? 0 : rest;
    b->log_ppm[c][worst] = 1000000 - rest * (uint32_t)(b->n_actions - 1);
  }
}

void bandit_one_best(bandit *b) {
  static const double r[4][3] = {{0.40, 0.10, 0.05}, {0.35, 0.15, 0.05}, {0.45, 0.20, 0.10}, {0.30, 0.05, 0.02}};
  for (int c = 0; c < 4; c++)
    for (int a = 0; a < 3; a++) b->reward[c][a] = r[c][a];
  bandit_log_skewed(b);
}

uint32_t bandit_ctx_hash(int c) {
  char name[16] = "ctx^0";
  name[4] = (char)('0' + c);
  return lw_fnv1a(name);
}

void bandit_draw(const bandit *b, lw_rng *rng, lw_logged *rec, int *ctx) {
  int c = (int)lw_rng_below(rng, (uint32_t)b->n_ctx);
  uint32_t u = lw_rng_below(rng, 1000000), acc = 0;
  int a = b->n_actions - 1;
  for (int k = 0; k < b->n_actions; k++) {
    acc += b->log_ppm[c][k];
    if (u < acc) {
      a = k;
      break;
    }
  }
  rec->action = a;
  rec->p = b->log_ppm[c][a] / 1e6;
  rec->reward = lw_rng_unit(rng) < b->reward[c][a] ? 1.0 : 0.0;
  rec->t = 0;
  rec->n = 0;
  rec->x[rec->n].hash = lw_fnv1a("bias");
  rec->x[rec->n++].q = LW_FX_ONE;
  rec->x[rec->n].hash = bandit_ctx_hash(c);
  rec->x[rec->n++].q = LW_FX_ONE;
  for (int k = 0; k < b->n_noise; k++) {
    char name[24];
    snprintf(name, sizeof name, "noise^%d", k);
    rec->x[rec->n].hash = lw_fnv1a(name);
    rec->x[rec->n++].q = lw_fx(lw_rng_unit(rng) * 4.0);
  }
  if (ctx) *ctx = c;
}

double bandit_value(const bandit *b, double pi[BANDIT_MAX_CTX][LW_MODEL_MAX_ACTIONS]) {
  double v = 0;
  for (int c = 0; c < b->n_ctx; c++)
    for (int a = 0; a < b->n_actions; a++) v += pi[c][a] * b->reward[c][a] / b->n_ctx;
  return v;
}

int bandit_write_vw(const bandit *b, uint64_t seed, long n, FILE *f) {
  lw_rng rng;
  lw_rng_seed(&rng, seed, 99);
  lw_logged rec;
  for (long i = 0; i < n; i++) {
    int c;
    bandit_draw(b, &rng, &rec, &c);
    uint32_t ppm = b->log_ppm[c][rec.action];
    fprintf(f, "%d:%s:0.%06u | bias ctx^%d", rec.action + 1, rec.reward > 0 ? "-1" : "0", ppm, c);
    if (ppm == 1000000) return -1; /* not expected with these tables */
    for (int k = 2; k < rec.n; k++) fprintf(f, " noise^%d:%.4f", k - 2, (double)rec.x[k].q / LW_FX_ONE);
    fputc('\n', f);
  }
  return ferror(f) ? -1 : 0;
}
