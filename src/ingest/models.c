/* models.c: reading a site's current model for GET /v1/model (see serving.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serving.h"

#include "loopwise/model.h"

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

/* The core's lw_model_etag (loopwise/model.h), so the trainer's log and the server agree. */
void lw_model_file_etag(const uint8_t *buf, size_t len, char out[LW_ETAG_MAX]) {
  lw_model_etag(buf, len, out, LW_ETAG_MAX);
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
