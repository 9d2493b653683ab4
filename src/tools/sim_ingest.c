/* sim_ingest.c: the simulator's way into the real ingest server. It starts loopwise-ingest's
 * library in-process on a loopback port with its own SQLite file and POSTs wire batches to
 * it over HTTP, so the learning policy trains from exactly what the server stored. */
#define _POSIX_C_SOURCE 200809L
#include "sim_ingest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopwise/ingest.h"

struct lw_sim_ingest {
  lw_ingest_config cfg;
  lw_ingest_server *srv;
  int port;
};

lw_status lw_sim_ingest_start(const char *db_path, lw_sim_ingest **out, char *err, size_t errlen) {
  *out = NULL;
  lw_sim_ingest *s = calloc(1, sizeof *s);
  if (!s) return LW_ERR_NOMEM;
  char msg[LW_ERRMSG_MAX] = "";
  lw_ingest_config_init(&s->cfg);
  /* simulated months lie in the past: no retention purge; one client: no rate limit */
  const char *set[][2] = {{"db", db_path}, {"port", "0"}, {"retention_days", "0"}, {"rate_limit", "off"},
                          {"log_level", "off"}, {"max_future_s", "31622400"}};
  lw_status st = LW_OK;
  for (size_t i = 0; i < sizeof set / sizeof set[0] && st == LW_OK; i++)
    st = lw_ingest_config_set(&s->cfg, set[i][0], set[i][1], msg, sizeof msg);
  if (st == LW_OK) st = lw_ingest_config_finish(&s->cfg, msg, sizeof msg);
  if (st == LW_OK) st = lw_ingest_server_start(&s->cfg, &s->srv, msg, sizeof msg);
  if (st != LW_OK) {
    snprintf(err, errlen, "starting the ingest server: %s", msg);
    lw_ingest_config_clear(&s->cfg);
    free(s);
    return st;
  }
  s->port = lw_ingest_server_port(s->srv);
  *out = s;
  return LW_OK;
}

lw_status lw_sim_ingest_post(lw_sim_ingest *s, const char *body, size_t len, char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)s->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "connecting to the ingest server failed");
    return LW_ERR_IO;
  }
  char head[256];
  int hl = snprintf(head, sizeof head,
                    "POST /v1/outcomes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    len);
  const char *parts[2] = {head, body};
  size_t lens[2] = {(size_t)hl, len};
  for (int k = 0; k < 2; k++)
    for (size_t off = 0; off < lens[k];) {
      ssize_t w = write(fd, parts[k] + off, lens[k] - off);
      if (w <= 0) {
        close(fd);
        snprintf(err, errlen, "sending to the ingest server failed");
        return LW_ERR_IO;
      }
      off += (size_t)w;
    }
  char resp[1024];
  size_t got = 0;
  ssize_t r;
  while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
  resp[got] = '\0';
  close(fd);
  if (strncmp(resp, "HTTP/1.1 200", 12) != 0) {
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(err, errlen, "the ingest server refused a batch: %.200s", b ? b + 4 : resp);
    return LW_ERR_INVALID;
  }
  return LW_OK;
}

void lw_sim_ingest_stop(lw_sim_ingest *s) {
  if (!s) return;
  lw_ingest_server_stop(s->srv);
  lw_ingest_config_clear(&s->cfg);
  free(s);
}
