/* log.c: see log.h. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int lw_log_level_parse(const char *s) {
  for (int i = 0; i <= LW_LOG_OFF; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

static void put(lw_log_line *line, const char *s, size_t n) {
  size_t room = sizeof line->buf - 3 - line->len; /* keep room for "}\n\0" */
  if (n > room) n = room;
  memcpy(line->buf + line->len, s, n);
  line->len += n;
}

static void put_escaped(lw_log_line *line, const char *s) {
  put(line, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(line, esc, 2);
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(line, esc, 6);
    } else {
      put(line, (const char *)&c, 1);
    }
  }
  put(line, "\"", 1);
}

int lw_log_begin(lw_log_line *line, const lw_logger *lg, lw_log_level level, const char *msg) {
  line->lg = lg;
  line->len = 0;
  line->on = lg && level >= lg->min && lg->min != LW_LOG_OFF;
  if (!line->on) return 0;
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[64];
  int n = snprintf(stamp, sizeof stamp, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000);
  put(line, stamp, (size_t)n);
  put_escaped(line, level_names[level]);
  lw_log_str(line, "msg", msg);
  return 1;
}

void lw_log_str(lw_log_line *line, const char *key, const char *value) {
  if (!line->on) return;
  put(line, ",", 1);
  put_escaped(line, key);
  put(line, ":", 1);
  put_escaped(line, value ? value : "");
}

void lw_log_int(lw_log_line *line, const char *key, int64_t value) {
  if (!line->on) return;
  char num[32];
  int n = snprintf(num, sizeof num, "%lld", (long long)value);
  put(line, ",", 1);
  put_escaped(line, key);
  put(line, ":", 1);
  put(line, num, (size_t)n);
}

void lw_log_num(lw_log_line *line, const char *key, double value) {
  if (!line->on) return;
  char num[32];
  int n = snprintf(num, sizeof num, "%.3f", value);
  put(line, ",", 1);
  put_escaped(line, key);
  put(line, ":", 1);
  put(line, num, (size_t)n);
}

void lw_log_end(lw_log_line *line) {
  if (!line->on) return;
  line->buf[line->len++] = '}';
  line->buf[line->len++] = '\n';
  ssize_t off = 0;
  while (off < (ssize_t)line->len) {
    ssize_t w = write(line->lg->fd, line->buf + off, line->len - (size_t)off);
    if (w <= 0) break;
    off += w;
  }
}

void lw_log_msg(const lw_logger *lg, lw_log_level level, const char *msg, const char *detail) {
  lw_log_line line;
  if (!lw_log_begin(&line, lg, level, msg)) return;
  if (detail) lw_log_str(&line, "detail", detail);
  lw_log_end(&line);
}
