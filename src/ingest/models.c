/* models.c: reading a site's current model for GET /v1/model (see serving.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serving.h"

lw_status lw_model_file_read(const char *dir, const char *site, uint8_t **buf, size_t *len,
                             char *err, size_t errlen) {
  *buf = NULL;
  *len = 0;
  if (!dir || !*dir) return LW_ERR_NOT_FOUND;
  char path[4096];
  /* Site ids are [A-Za-z0-9_-]{1,32} (checked when the config is read): no path tricks. */
  if ((size_t)snprintf(path, sizeof path, "%s/%s/current.lwm", dir, site) >= sizeof path) {
    snprintf(err, errlen, "models_dir path too long");
    return LW_ERR_INVALID;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return LW_ERR_NOT_FOUND;
    snprintf(err, errlen, "%.200s: %s", path, strerror(errno));
    return LW_ERR_IO;
  }
  struct stat sb;
  lw_status st = LW_OK;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)LW_MODEL_FILE_MAX) {
    snprintf(err, errlen, "%.200s: not a regular file under %u bytes", path,
             LW_MODEL_FILE_MAX);
    st = LW_ERR_IO;
  }
  size_t n = st == LW_OK ? (size_t)sb.st_size : 0, got = 0;
  uint8_t *b = st == LW_OK ? malloc(n ? n : 1) : NULL;
  if (st == LW_OK && !b) {
    snprintf(err, errlen, "out of memory reading a model");
    st = LW_ERR_NOMEM;
  }
  while (st == LW_OK && got < n) {
    ssize_t r = read(fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { /* shorter than fstat said: the file is not what we opened as */
      snprintf(err, errlen, "%.200s: %s", path, r < 0 ? strerror(errno) : "short read");
      st = LW_ERR_IO;
    } else {
      got += (size_t)r;
    }
  }
  close(fd);
  if (st != LW_OK) {
    free(b);
    return st;
  }
  *buf = b;
  *len = n;
  return LW_OK;
}

/* CRC-32 (IEEE), only for files too short to hold their own (see below). */
static uint32_t crc32_bytes(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The same few lines as lw_model_etag in src/tools/learn_fit.c (the ingest server does not
 * link the trainer's library): the model id at offset 16, the file's own CRC-32 (its last four
 * bytes) and its length. */
void lw_model_file_etag(const uint8_t *buf, size_t len, char out[LW_ETAG_MAX]) {
  uint32_t id = len >= 20 ? le32(buf + 16) : 0;
  uint32_t crc = len >= 4 ? le32(buf + len - 4) : crc32_bytes(buf, len);
  snprintf(out, LW_ETAG_MAX, "\"m%u-%08x-%zx\"", id, crc, len);
}

int lw_etag_matches(const char *inm, const char *etag) {
  size_t n = strlen(etag);
  for (const char *p = inm; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (*p == '*') return 1;
    if (p[0] == 'W' && p[1] == '/') p += 2; /* weak comparison, as If-None-Match asks */
    if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) return 1;
    while (*p && *p != ',') p++;
  }
  return 0;
}
