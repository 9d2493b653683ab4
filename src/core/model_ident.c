/* model_ident.c: a model's identity: the entity tag a server sends for its file and whether
 * two models decide alike. The trainer (promotion), the simulator and the ingest server
 * (If-None-Match) use these, so a model file has one tag everywhere. */
#include <stdio.h>
#include <string.h>

#include "loopwise/model.h"

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The model id sits at offset 16 of the file (models/FORMAT.md) and its last four bytes are
 * its own CRC-32, so the tag needs no pass over the bytes. A CRC over the whole file would not
 * do: CRC(data || CRC(data)) is the same constant for all data. Files too short to hold a CRC
 * (not models, but the server may be pointed at anything) get one computed. */
void lw_model_etag(const uint8_t *buf, size_t len, char *out, size_t cap) {
  uint32_t id = len >= 20 ? le32(buf + 16) : 0;
  uint32_t crc = len >= 4 ? le32(buf + len - 4) : lw_crc32(0, buf, len);
  snprintf(out, cap, "\"m%u-%08x-%zx\"", id, crc, len);
}

int lw_model_same_decisions(const lw_model *a, const lw_model *b) {
  if (a->bits != b->bits || a->n_actions != b->n_actions || a->scale != b->scale || a->n_personas != b->n_personas ||
      a->n_segments != b->n_segments || a->value_labels != b->value_labels ||
      (a->value_labels && (a->reward_lo != b->reward_lo || a->reward_hi != b->reward_hi)) || memcmp(a->weights, b->weights, ((size_t)1 << a->bits) * sizeof *a->weights) != 0)
    return 0;
  for (int k = 0; k < a->n_actions; k++)
    if (strcmp(a->action_ids[k], b->action_ids[k]) != 0 || a->action_flags[k] != b->action_flags[k]) return 0;
  size_t pd = (size_t)a->n_personas * (size_t)a->persona_dims;
  if (a->n_personas && (a->persona_dims != b->persona_dims || memcmp(a->centroids, b->centroids, pd * sizeof(float)) != 0 ||
                        memcmp(a->mean, b->mean, sizeof a->mean) != 0 || memcmp(a->sd, b->sd, sizeof a->sd) != 0))
    return 0;
  for (int k = 0; k < a->n_segments; k++)
    if (strcmp(a->segment_names[k], b->segment_names[k]) != 0 || a->segment_offsets[k] != b->segment_offsets[k]) return 0;
  if (a->n_channel_rows != b->n_channel_rows) return 0;
  for (int k = 0; k < a->n_channel_rows; k++)
    if (a->n_channels[k] != b->n_channels[k] || memcmp(a->channels[k], b->channels[k], a->n_channels[k]) != 0) return 0;
  return 1;
}
