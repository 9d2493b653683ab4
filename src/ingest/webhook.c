/* webhook.c: the webhook sender (webhook.h).
 *
 * Exactly-once is the host's part, at-least-once ours: every delivery carries an idempotency key
 * (Idempotency-Key header and the body's "id"), so a host that saw a key already answers 2xx
 * and does nothing. What the store adds is that replicas do not race: a delivery is claimed with
 * one UPDATE (lw_store_delivery_claim) that leases it to this sender for webhook_lease_s, longer
 * than an attempt may take (webhook_timeout_s), and its answer is recorded only while the lease
 * is still ours. A sender that dies mid-attempt leaves the row to be claimed again once the
 * lease runs out: the host then sees the key twice, which is what the key is for.
 *
 * The signature follows the scheme hosts know from Stripe: Loopwise-Signature:
 * t=<unix seconds>,v1=<hex HMAC-SHA-256(webhook_secret, "<t>.<body>")>; the receiver recomputes
 * it, compares in constant time and refuses a t too far from its clock (README "Webhooks"). */
#include "webhook.h"

#include <curl/curl.h>
#include <nettle/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "loopwise/store.h"

struct lw_webhook {
  const lw_ingest_config *cfg;
  lw_writer *writer;
  const lw_logger *log;
  char owner[64];
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stopping;
};

void lw_webhook_signature(const char *secret, int64_t t_s, const char *body, size_t len,
                          char out[96]) {
  struct hmac_sha256_ctx h;
  uint8_t d[SHA256_DIGEST_SIZE];
  char t[24];
  int tn = snprintf(t, sizeof t, "%lld.", (long long)t_s);
  hmac_sha256_set_key(&h, strlen(secret), (const uint8_t *)secret);
  hmac_sha256_update(&h, (size_t)tn, (const uint8_t *)t);
  hmac_sha256_update(&h, len, (const uint8_t *)body);
  hmac_sha256_digest(&h, sizeof d, d);
  int n = snprintf(out, 96, "t=%lld,v1=", (long long)t_s);
  for (size_t i = 0; i < sizeof d; i++) snprintf(out + n + 2 * i, 3, "%02x", d[i]);
}

int64_t lw_webhook_next_attempt(int64_t now_ms, int64_t created_at, int64_t attempts,
                                int64_t retry_ms, int64_t max_age_ms) {
  const int64_t cap = 6LL * 3600 * 1000;
  int64_t delay = retry_ms;
  for (int64_t i = 1; i < attempts && delay < cap; i++) delay *= 2;
  if (delay > cap) delay = cap;
  int64_t next = now_ms + delay;
  return next > created_at + max_age_ms ? 0 : next;
}

/* ---------------------------------------------------------------- store calls on the writer */

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t done_cv;
  int done;
} waiter;

static void job_done(lw_job *job) {
  waiter *w = job->ctx;
  pthread_mutex_lock(&w->lock);
  w->done = 1;
  pthread_cond_signal(&w->done_cv);
  pthread_mutex_unlock(&w->lock);
}

/* Run call(arg) on the writer thread and wait for it. */
static lw_status on_writer(lw_webhook *h, lw_status (*call)(lw_store *, void *, char *, size_t),
                           void *arg, char *err, size_t errlen) {
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  lw_job job;
  memset(&job, 0, sizeof job);
  job.kind = LW_JOB_CALL;
  job.call = call;
  job.arg = arg;
  job.on_done = job_done;
  job.ctx = &w;
  if (lw_writer_enqueue(h->writer, &job) != LW_OK) {
    snprintf(err, errlen, "the writer is stopping");
    return LW_ERR_IO;
  }
  pthread_mutex_lock(&w.lock);
  while (!w.done) pthread_cond_wait(&w.done_cv, &w.lock);
  pthread_mutex_unlock(&w.lock);
  pthread_mutex_destroy(&w.lock);
  pthread_cond_destroy(&w.done_cv);
  if (job.status != LW_OK) snprintf(err, errlen, "%s", job.errmsg);
  return job.status;
}

typedef struct {
  lw_webhook *h;
  const char *site;
  int64_t now_ms, added;
  lw_delivery d;
  int found, kept;
  const char *state;
  int64_t next_at, status;
  const char *error;
} step;

static lw_status enqueue_call(lw_store *s, void *arg, char *err, size_t errlen) {
  step *p = arg;
  return lw_store_deliveries_enqueue(s, p->site, p->now_ms, &p->added, err, errlen);
}

static lw_status claim_call(lw_store *s, void *arg, char *err, size_t errlen) {
  step *p = arg;
  return lw_store_delivery_claim(s, p->site, p->h->owner, p->now_ms, p->h->cfg->webhook_lease_s * 1000,
                                 &p->d, &p->found, err, errlen);
}

static lw_status finish_call(lw_store *s, void *arg, char *err, size_t errlen) {
  step *p = arg;
  return lw_store_delivery_finish(s, p->d.id, p->h->owner, p->state, p->next_at, p->status, p->error,
                                  p->now_ms, &p->kept, err, errlen);
}

/* ---------------------------------------------------------------- one attempt */

static size_t discard(char *ptr, size_t size, size_t n, void *user) {
  (void)ptr, (void)user;
  return size * n;
}

/* POST the delivery; the HTTP status (0 when there was no answer) and why it failed. */
static long post(lw_webhook *h, const lw_delivery *d, char *why, size_t whylen) {
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(why, whylen, "curl_easy_init failed");
    return 0;
  }
  char sig[96], hdr_sig[128], hdr_key[128], hdr_attempt[64];
  size_t len = strlen(d->body);
  lw_webhook_signature(h->cfg->webhook_secret, lw_wall_ms() / 1000, d->body, len, sig);
  snprintf(hdr_sig, sizeof hdr_sig, "Loopwise-Signature: %s", sig);
  snprintf(hdr_key, sizeof hdr_key, "Idempotency-Key: %s", d->key);
  snprintf(hdr_attempt, sizeof hdr_attempt, "Loopwise-Attempt: %lld", (long long)d->attempts);
  struct curl_slist *hs = NULL;
  hs = curl_slist_append(hs, "Content-Type: application/json");
  hs = curl_slist_append(hs, hdr_sig);
  hs = curl_slist_append(hs, hdr_key);
  hs = curl_slist_append(hs, hdr_attempt);
  hs = curl_slist_append(hs, "Expect:");
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, h->cfg->webhook_url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)h->cfg->webhook_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "loopwise-ingest webhook");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  long status = 0;
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) snprintf(why, whylen, "the receiver answered %ld", status);
  } else {
    snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
  }
  curl_slist_free_all(hs);
  curl_easy_cleanup(c);
  return status;
}

/* Deliver what is due on site; 0 when the writer is gone (stop). */
static int run_site(lw_webhook *h, const char *site) {
  char err[LW_ERRMSG_MAX];
  step p = {.h = h, .site = site, .now_ms = lw_wall_ms()};
  if (on_writer(h, enqueue_call, &p, err, sizeof err) != LW_OK) {
    lw_log_msg(h->log, LW_LOG_WARN, "webhook: adding deliveries failed", err);
    return 0;
  }
  for (;;) {
    pthread_mutex_lock(&h->lock);
    int stopping = h->stopping;
    pthread_mutex_unlock(&h->lock);
    if (stopping) return 0;
    step c = {.h = h, .site = site, .now_ms = lw_wall_ms()};
    if (on_writer(h, claim_call, &c, err, sizeof err) != LW_OK) {
      lw_log_msg(h->log, LW_LOG_WARN, "webhook: claiming a delivery failed", err);
      return 0;
    }
    if (!c.found) return 1;
    char why[256] = "";
    long status = post(h, &c.d, why, sizeof why);
    c.now_ms = lw_wall_ms();
    c.status = status;
    if (status >= 200 && status <= 299) {
      c.state = "delivered";
      c.next_at = c.now_ms;
    } else {
      c.next_at = lw_webhook_next_attempt(c.now_ms, c.d.created_at, c.d.attempts,
                                          h->cfg->webhook_retry_s * 1000, h->cfg->webhook_max_age_s * 1000);
      c.state = c.next_at ? "pending" : "failed";
      if (!c.next_at) c.next_at = c.now_ms;
      c.error = why;
    }
    lw_log_line line;
    if (lw_log_begin(&line, h->log, c.state[0] == 'd' ? LW_LOG_INFO : LW_LOG_WARN, "webhook attempt")) {
      lw_log_str(&line, "key", c.d.key);
      lw_log_int(&line, "attempt", c.d.attempts);
      lw_log_int(&line, "status", status);
      lw_log_str(&line, "state", c.state);
      if (why[0]) lw_log_str(&line, "error", why);
      lw_log_end(&line);
    }
    lw_status st = on_writer(h, finish_call, &c, err, sizeof err);
    free(c.d.body);
    if (st != LW_OK) {
      lw_log_msg(h->log, LW_LOG_WARN, "webhook: recording a delivery failed", err);
      return 0;
    }
  }
}

static void *sender_main(void *arg) {
  lw_webhook *h = arg;
  for (;;) {
    for (size_t i = 0; i < h->cfg->n_sites; i++)
      if (!run_site(h, h->cfg->sites[i].id)) break;
    pthread_mutex_lock(&h->lock);
    if (!h->stopping) {
      /* The poll interval is the sender's schedule (a retry is due at a time), not a wait for
       * an event another thread could signal. */
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      int64_t ns = until.tv_nsec + (h->cfg->webhook_poll_ms % 1000) * 1000000;
      until.tv_sec += h->cfg->webhook_poll_ms / 1000 + ns / 1000000000;
      until.tv_nsec = ns % 1000000000;
      pthread_cond_timedwait(&h->wake, &h->lock, &until);
    }
    int stopping = h->stopping;
    pthread_mutex_unlock(&h->lock);
    if (stopping) break;
  }
  return NULL;
}

lw_status lw_webhook_start(const lw_ingest_config *cfg, lw_writer *w, const lw_logger *log,
                           lw_webhook **out, char *err, size_t errlen) {
  *out = NULL;
  if (!cfg->webhook_url) return LW_OK;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "webhook: curl_global_init failed");
    return LW_ERR_IO;
  }
  lw_webhook *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  h->cfg = cfg, h->writer = w, h->log = log;
  uint8_t r[8] = {0};
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) memset(r, 0, sizeof r);
  char host[32] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  snprintf(h->owner, sizeof h->owner, "%.31s-%ld-%02x%02x%02x%02x%02x%02x%02x%02x", host,
           (long)getpid(), r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->wake, NULL);
  if (pthread_create(&h->thread, NULL, sender_main, h) != 0) {
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake);
    free(h);
    snprintf(err, errlen, "webhook: could not start the sender thread");
    return LW_ERR_IO;
  }
  *out = h;
  return LW_OK;
}

void lw_webhook_stop(lw_webhook *h) {
  if (!h) return;
  pthread_mutex_lock(&h->lock);
  h->stopping = 1;
  pthread_cond_signal(&h->wake);
  pthread_mutex_unlock(&h->lock);
  pthread_join(h->thread, NULL);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->wake);
  free(h);
  curl_global_cleanup();
}
