/* log.h: structured one-line logs for the ingest server.
 *
 * Every line is one JSON object written with a single write(2), so lines from different threads
 * never interleave: {"ts":"2026-11-25T21:40:45.123Z","level":"info","msg":"listening","port":8080}
 * Callers never log client addresses, user agents or request bodies. */
#ifndef LW_INGEST_LOG_H
#define LW_INGEST_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LW_LOG_DEBUG = 0, LW_LOG_INFO, LW_LOG_WARN, LW_LOG_ERROR, LW_LOG_OFF } lw_log_level;

/* Parse "debug", "info", "warn", "error" or "off"; -1 when unknown. */
int lw_log_level_parse(const char *s);

typedef struct {
  lw_log_level min;   /* lines below this level are dropped */
  int fd;             /* usually 2 (stderr) */
} lw_logger;

/* A line being built on the caller's stack. Overlong lines are cut, never split. */
typedef struct {
  const lw_logger *lg;
  int on;
  size_t len;
  char buf[1024];
} lw_log_line;

int lw_log_begin(lw_log_line *line, const lw_logger *lg, lw_log_level level, const char *msg);
void lw_log_str(lw_log_line *line, const char *key, const char *value);
void lw_log_int(lw_log_line *line, const char *key, int64_t value);
void lw_log_num(lw_log_line *line, const char *key, double value);
void lw_log_end(lw_log_line *line);

/* A line with only a message and, when detail is non-NULL, a "detail" string. */
void lw_log_msg(const lw_logger *lg, lw_log_level level, const char *msg, const char *detail);

#endif
