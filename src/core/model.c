/* model.c: loading, writing and scoring the per-action logistic model (models/FORMAT.md). */
#include "loopwise/model.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "sbuf.h"

#define MODEL_VERSION LW_MODEL_FORMAT_VERSION
#define LW_STR_(x) #x
#define LW_STR(x) LW_STR_(x)

/* ---- reading ---------------------------------------------------------------------- */

static uint32_t u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t rd_u(lw_rd *r, int n) { return (uint32_t)lw_rd_u(r, n); }
static float rd_f32(lw_rd *r) {
  uint32_t u = rd_u(r, 4);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static int finite_f(float f) { return f == f && f - f == 0.0f; }
static void rd_name(lw_rd *r, char *out, size_t cap) {
  size_t n = rd_u(r, 1);
  const uint8_t *p = lw_rd_take(r, n);
  if (!p || n == 0 || n >= cap || memchr(p, '\0', n)) { /* names are text: no NUL inside */
    r->bad = 1;
    out[0] = '\0';
    return;
  }
  memcpy(out, p, n);
  out[n] = '\0';
}

static lw_status fail(char *err, size_t errlen, lw_status st, const char *msg) {
  lw_sbuf sb;
  lw_sb_init(&sb, err, errlen);
  lw_sb_str(&sb, "model: ");
  lw_sb_str(&sb, msg);
  return st;
}

static const char k_out_of_memory[] = "out of memory";

lw_status lw_model_load(const uint8_t *buf, size_t len, lw_model **out, char *err, size_t errlen) {
  *out = NULL;
  if (len < 32 || memcmp(buf, "LWMD", 4) != 0) return fail(err, errlen, LW_ERR_CORRUPT, "not a Loopwise model file");
  lw_rd r = {buf, len - 4, 4, 0};
  /* The version before the checksum: a newer format may check its bytes another way, and its
   * reader must hear "version", not "damaged" (README "How the contracts evolve"). The words
   * are the compiled config's (config_bin.c), which is also a few bytes less to download. */
  unsigned version = rd_u(&r, 2);
  if (version < 1 || version > MODEL_VERSION)
    return fail(err, errlen, LW_ERR_VERSION, "format version is unknown to this runtime (reads 1-" LW_STR(MODEL_VERSION) ")");
  if (lw_crc32(0, buf, len - 4) != u32le(buf + len - 4))
    return fail(err, errlen, LW_ERR_CORRUPT, "checksum mismatch (damaged or truncated file)");

  lw_model *m = calloc(1, sizeof *m);
  if (!m) return fail(err, errlen, LW_ERR_NOMEM, "out of memory");
  m->bits = (uint8_t)rd_u(&r, 1);
  m->n_actions = (int)rd_u(&r, 1);
  m->n_personas = (int)rd_u(&r, 1);
  m->persona_dims = (int)rd_u(&r, 1);
  m->n_segments = (int)rd_u(&r, 1);
  int reserved = (int)rd_u(&r, 1);
  m->scale = rd_f32(&r);
  m->model_id = rd_u(&r, 4);
  uint64_t lo = rd_u(&r, 4), hi = rd_u(&r, 4);
  m->trained_at_ms = (int64_t)(lo | hi << 32);
  const char *why = NULL;
  if (m->bits < 8 || m->bits > 16) why = "bits out of range (8-16)";
  else if (m->n_actions < 1 || m->n_actions > LW_MODEL_MAX_ACTIONS) why = "action count out of range (1-9)";
  else if (m->n_personas > LW_MODEL_MAX_PERSONAS) why = "too many personas";
  else if (m->persona_dims != (m->n_personas ? LW_MODEL_PERSONA_DIMS : 0)) why = "personas need 8 dimensions (0 without personas)";
  else if (reserved != 0) why = "reserved byte must be 0";
  else if (m->n_segments > LW_MODEL_MAX_SEGMENTS) why = "too many segments";
  else if (!finite_f(m->scale) || m->scale <= 0) why = "scale must be a positive number";
  for (int a = 0; !why && a < m->n_actions; a++) {
    rd_name(&r, m->action_ids[a], sizeof m->action_ids[a]);
    m->action_flags[a] = (uint8_t)rd_u(&r, 1);
    if (version >= 2) {
      uint32_t sup = rd_u(&r, 4);
      m->support[a] = sup == UINT32_MAX ? -1 : (int64_t)sup;
    } else {
      m->support[a] = -1;
    }
    for (int b = 0; b < a && !r.bad; b++)
      if (strcmp(m->action_ids[a], m->action_ids[b]) == 0) why = "action listed twice";
  }
  if (!why) {
    size_t n = (size_t)1 << m->bits;
    m->weights = calloc(n, sizeof *m->weights);
    if (!m->weights) {
      why = k_out_of_memory;
    } else if (version == 1) { /* 2^bits int8, weight = int8 × scale */
      const uint8_t *w = lw_rd_take(&r, n);
      for (size_t i = 0; w && i < n; i++) m->weights[i] = (float)(int8_t)w[i];
    } else { /* u32 count, then that many {u16 index (increasing), f32 weight (finite, non-zero)} */
      uint32_t k = rd_u(&r, 4);
      if (k > n) why = "too many weights";
      for (uint32_t j = 0, prev = 0; !why && !r.bad && j < k; j++) {
        uint32_t i = rd_u(&r, 2);
        float f = rd_f32(&r);
        if (r.bad) break;
        if (i >= n || (j && i <= prev)) why = "bad weight index";
        else if (!finite_f(f) || f == 0.0f) why = "bad weight";
        else m->weights[i] = f;
        prev = i;
      }
    }
  }
  for (int i = 0; !why && i < m->n_personas * m->persona_dims; i++) m->centroids[i] = rd_f32(&r);
  for (int i = 0; !why && m->n_personas && i < m->persona_dims; i++) {
    m->mean[i] = rd_f32(&r);
    m->sd[i] = rd_f32(&r);
    if (!finite_f(m->mean[i]) || !(m->sd[i] > 0) || !finite_f(m->sd[i])) why = "persona scale must be finite and positive";
  }
  for (int s = 0; !why && s < m->n_segments; s++) {
    rd_name(&r, m->segment_names[s], sizeof m->segment_names[s]);
    m->segment_offsets[s] = rd_f32(&r);
    if (!finite_f(m->segment_offsets[s])) why = "segment offset must be finite";
  }
  if (!why && version >= 3) { /* u8 rows, each u8 count then that many distinct channel indices */
    m->n_channel_rows = (int)rd_u(&r, 1);
    if (m->n_channel_rows > (m->n_personas ? m->n_personas : 1)) why = "more channel rankings than personas";
    for (int k = 0; !why && !r.bad && k < m->n_channel_rows; k++) {
      m->n_channels[k] = (uint8_t)rd_u(&r, 1);
      if (m->n_channels[k] > LW_CHANNEL_COUNT) why = "too many ranked channels";
      unsigned seen = 0;
      for (int i = 0; !why && !r.bad && i < m->n_channels[k]; i++) {
        unsigned c = rd_u(&r, 1);
        if (c >= LW_CHANNEL_COUNT || (seen >> c & 1u)) why = "unknown or repeated channel in a ranking";
        seen |= 1u << (c & 31u);
        m->channels[k][i] = (uint8_t)c;
      }
    }
  }
  if (!why && version >= 4 && (m->value_labels = (int)rd_u(&r, 1))) { /* value labels: f32 lo < f32 hi */
    m->reward_lo = rd_f32(&r);
    m->reward_hi = rd_f32(&r);
    if (m->value_labels > 1 || !finite_f(m->reward_lo) || !finite_f(m->reward_hi) || !(m->reward_lo < m->reward_hi))
      why = "bad label range";
  }
  if (!why) {
    size_t n = rd_u(&r, 2);
    const uint8_t *p = lw_rd_take(&r, n);
    m->meta_json = malloc(n + 1);
    if (!m->meta_json) {
      why = k_out_of_memory; /* a model without its metadata would write back without it */
    } else if (p) {
      memcpy(m->meta_json, p, n);
      m->meta_json[n] = '\0';
      if (strlen(m->meta_json) != n) why = "metadata must be text without NUL bytes";
    }
  }
  if (!why && r.bad) why = "file ends early";
  if (!why && r.off != r.len) why = "unexpected bytes after the metadata";
  if (why) {
    lw_model_free(m);
    return fail(err, errlen, why == k_out_of_memory ? LW_ERR_NOMEM : LW_ERR_CORRUPT, why);
  }
  *out = m;
  return LW_OK;
}

void lw_model_free(lw_model *m) {
  if (!m) return;
  free(m->weights);
  free(m->meta_json);
  free(m);
}

/* ---- writing ---------------------------------------------------------------------- */

static void put_f32(lw_wr *w, float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  lw_wr_u(w, 4, u);
}
static void put_name(lw_wr *w, const char *s) {
  size_t n = strlen(s);
  lw_wr_u(w, 1, n);
  lw_wr_bytes(w, s, n);
}

/* Everything but the checksum; run once to measure, once to write. */
static void write_body(lw_wr *w, const lw_model *m, size_t meta) {
  size_t n = (size_t)1 << m->bits;
  uint32_t nonzero = 0;
  for (size_t i = 0; i < n; i++) nonzero += m->weights[i] != 0.0f;
  lw_wr_bytes(w, "LWMD", 4);
  lw_wr_u(w, 2, MODEL_VERSION);
  lw_wr_u(w, 1, m->bits);
  lw_wr_u(w, 1, (uint64_t)m->n_actions);
  lw_wr_u(w, 1, (uint64_t)m->n_personas);
  lw_wr_u(w, 1, (uint64_t)(m->n_personas ? m->persona_dims : 0));
  lw_wr_u(w, 1, (uint64_t)m->n_segments);
  lw_wr_u(w, 1, 0);
  put_f32(w, m->scale);
  lw_wr_u(w, 4, m->model_id);
  lw_wr_u(w, 8, (uint64_t)m->trained_at_ms);
  for (int a = 0; a < m->n_actions; a++) {
    put_name(w, m->action_ids[a]);
    lw_wr_u(w, 1, m->action_flags[a]);
    int64_t sup = m->support[a];
    lw_wr_u(w, 4, sup < 0 ? UINT32_MAX : sup >= (int64_t)UINT32_MAX ? UINT32_MAX - 1 : (uint64_t)sup);
  }
  lw_wr_u(w, 4, nonzero);
  for (size_t i = 0; i < n; i++)
    if (m->weights[i] != 0.0f) {
      lw_wr_u(w, 2, i); /* bits <= 16 */
      put_f32(w, m->weights[i]);
    }
  for (int i = 0; i < m->n_personas * m->persona_dims; i++) put_f32(w, m->centroids[i]);
  for (int i = 0; m->n_personas && i < m->persona_dims; i++) {
    put_f32(w, m->mean[i]);
    put_f32(w, m->sd[i]);
  }
  for (int s = 0; s < m->n_segments; s++) {
    put_name(w, m->segment_names[s]);
    put_f32(w, m->segment_offsets[s]);
  }
  lw_wr_u(w, 1, (uint64_t)m->n_channel_rows);
  for (int k = 0; k < m->n_channel_rows; k++) {
    lw_wr_u(w, 1, m->n_channels[k]);
    for (int i = 0; i < m->n_channels[k]; i++) lw_wr_u(w, 1, m->channels[k][i]);
  }
  lw_wr_u(w, 1, m->value_labels ? 1u : 0u);
  if (m->value_labels) {
    put_f32(w, m->reward_lo);
    put_f32(w, m->reward_hi);
  }
  lw_wr_u(w, 2, meta);
  lw_wr_bytes(w, m->meta_json ? m->meta_json : "", meta);
}

lw_status lw_model_write(const lw_model *m, uint8_t **out, size_t *len, char *err, size_t errlen) {
  *out = NULL;
  *len = 0;
  size_t meta = m->meta_json ? strlen(m->meta_json) : 0;
  if (m->bits < 8 || m->bits > 16 || m->n_actions < 1 || m->n_actions > LW_MODEL_MAX_ACTIONS ||
      m->n_personas > LW_MODEL_MAX_PERSONAS || m->n_segments > LW_MODEL_MAX_SEGMENTS ||
      m->n_channel_rows < 0 || m->n_channel_rows > (m->n_personas ? m->n_personas : 1) ||
      (m->n_personas && m->persona_dims != LW_MODEL_PERSONA_DIMS) || !(m->scale > 0) || !m->weights ||
      meta > 65535 || (m->value_labels && !(m->reward_lo < m->reward_hi && finite_f(m->reward_hi) && finite_f(m->reward_lo))))
    return fail(err, errlen, LW_ERR_INVALID, "sizes out of range for format version " LW_STR(MODEL_VERSION));
  for (size_t i = 0; i < (size_t)1 << m->bits; i++)
    if (!finite_f(m->weights[i])) return fail(err, errlen, LW_ERR_INVALID, "a weight is not a finite number");
  lw_wr w = {NULL, 0, 0};
  write_body(&w, m, meta); /* measure */
  w.cap = w.len + 4;
  w.buf = malloc(w.cap);
  if (!w.buf) return fail(err, errlen, LW_ERR_NOMEM, "out of memory");
  w.len = 0;
  write_body(&w, m, meta);
  lw_wr_u(&w, 4, lw_crc32(0, w.buf, w.len));
  *out = w.buf;
  *len = w.len;
  return LW_OK;
}

/* ---- scoring ---------------------------------------------------------------------- */

int64_t lw_model_support(const lw_model *m, size_t action_index) {
  return action_index < (size_t)m->n_actions ? m->support[action_index] : -1;
}

int lw_model_action_index(const lw_model *m, const char *id) {
  for (int a = 0; a < m->n_actions; a++)
    if (strcmp(m->action_ids[a], id) == 0) return a;
  return -1;
}

static uint32_t action_hash(const lw_model *m, int action) {
  return lw_fnv1a_bytes(lw_fnv1a("a^"), m->action_ids[action], strlen(m->action_ids[action]));
}

uint32_t lw_model_index(const lw_model *m, int action, uint32_t h) {
  return ((h ^ action_hash(m, action)) * 2654435761u) >> (32 - m->bits);
}

double lw_model_score(const lw_model *m, int action, const lw_feature *x, int n, double offset) {
  uint32_t ah = action_hash(m, action);
  double z = 0.0;
  for (int i = 0; i < n; i++)
    z += (double)m->weights[((x[i].hash ^ ah) * 2654435761u) >> (32 - m->bits)] * ((double)x[i].q / LW_FX_ONE);
  return z * (double)m->scale + offset;
}

void lw_model_contributions(const lw_model *m, int action, const lw_feature *x, int n, double *out) {
  uint32_t ah = action_hash(m, action);
  for (int i = 0; i < n; i++)
    out[i] = (double)m->weights[((x[i].hash ^ ah) * 2654435761u) >> (32 - m->bits)] * (double)m->scale *
             ((double)x[i].q / LW_FX_ONE);
}

int lw_model_persona(const lw_model *m, const double dims[LW_MODEL_PERSONA_DIMS]) {
  int best = -1;
  double best_d = 0.0;
  for (int k = 0; k < m->n_personas; k++) {
    double d = 0.0;
    for (int i = 0; i < m->persona_dims; i++) {
      double v = (dims[i] - (double)m->mean[i]) / (double)m->sd[i] - (double)m->centroids[k * m->persona_dims + i];
      d += v * v;
    }
    if (best < 0 || d < best_d) {
      best = k;
      best_d = d;
    }
  }
  return best;
}

double lw_model_segment_offset(const lw_model *m, const char *segment) {
  for (int s = 0; s < m->n_segments; s++)
    if (strcmp(m->segment_names[s], segment) == 0) return (double)m->segment_offsets[s];
  return 0.0;
}

/* ---- policy ----------------------------------------------------------------------- */

void lw_ppm_split_to(const uint32_t *w, int n, uint32_t whole, uint32_t *ppm) {
  uint64_t total = 0, given = 0, rem[LW_POLICY_MAX_ACTIONS];
  for (int i = 0; i < n; i++) total += w[i];
  for (int i = 0; i < n; i++) {
    uint64_t scaled = (uint64_t)w[i] * whole;
    ppm[i] = (uint32_t)(scaled / total);
    rem[i] = scaled % total;
    given += ppm[i];
  }
  for (uint64_t left = whole - given; left > 0; left--) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (w[i] && (best < 0 || rem[i] > rem[best])) best = i;
    ppm[best]++;
    rem[best] = 0;
  }
}

void lw_ppm_split(const uint32_t *w, int n, uint32_t *ppm) { lw_ppm_split_to(w, n, 1000000u, ppm); }

/* lw_model_policy, the exploration rule, is in policy.c with the rest of the policy. */
