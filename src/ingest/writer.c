/* writer.c: see writer.h. */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

struct lw_writer {
  lw_store *store;
  lw_writer_config cfg;
  lw_metrics *metrics;
  const lw_logger *log;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t work;     /* signalled when a job is queued or on stop */
  lw_job *head, *tail;     /* queue, guarded by lock */
  int idle;                /* the writer is waiting on work: only then is a signal needed */
  int busy;                /* a group is being written */
  pthread_cond_t drained;  /* broadcast when the queue is empty and no group is in flight */
  int stopping;
  lw_store_item **items;   /* scratch for one group, writer thread only */
};

static void run_purge(lw_writer *w) {
  char errmsg[LW_ERRMSG_MAX];
  int64_t deleted = 0;
  lw_status st = lw_store_purge(w->store, lw_wall_ms() - w->cfg.retention_ms, &deleted, errmsg,
                                sizeof errmsg);
  lw_log_line line;
  if (st != LW_OK) {
    lw_log_msg(w->log, LW_LOG_ERROR, "retention purge failed", errmsg);
    return;
  }
  atomic_fetch_add(&w->metrics->purged_events, (uint64_t)deleted);
  if (deleted && lw_log_begin(&line, w->log, LW_LOG_INFO, "retention purge")) {
    lw_log_int(&line, "deleted_events", deleted);
    lw_log_end(&line);
  }
}

/* Write one group of batches in one transaction and record what happened. */
static void run_group(lw_writer *w, lw_job *jobs) {
  size_t n = 0;
  for (lw_job *j = jobs; j; j = j->next)
    if (j->kind == LW_JOB_WRITE) w->items[n++] = &j->item;
  if (n) {
    char errmsg[LW_ERRMSG_MAX];
    int64_t t0 = lw_mono_us();
    lw_status st = lw_store_write(w->store, w->items, n, errmsg, sizeof errmsg);
    atomic_fetch_add(&w->metrics->commit_us_sum, (uint64_t)(lw_mono_us() - t0));
    if (st == LW_OK) {
      atomic_fetch_add(&w->metrics->commits, 1);
      atomic_fetch_add(&w->metrics->committed_batches, n);
    } else {
      lw_log_msg(w->log, LW_LOG_ERROR, "group commit failed", errmsg);
    }
    for (lw_job *j = jobs; j; j = j->next) {
      if (j->kind != LW_JOB_WRITE) continue;
      j->status = st;
      if (st != LW_OK) {
        memcpy(j->errmsg, errmsg, sizeof errmsg);
      } else if (j->item.duplicate) {
        atomic_fetch_add(&w->metrics->batches_duplicate, 1);
      } else {
        atomic_fetch_add(&w->metrics->batches_stored, 1);
        atomic_fetch_add(&w->metrics->events_stored, j->item.stored);
        atomic_fetch_add(&w->metrics->rejects[LW_REJECT_CODE_OWNER], j->item.batch->n_events - j->item.stored);
      }
    }
  }
  for (lw_job *j = jobs; j; j = j->next)
    if (j->kind == LW_JOB_CALL) j->status = j->call(w->store, j->arg, j->errmsg, sizeof j->errmsg);
  for (lw_job *j = jobs; j; j = j->next) {
    if (j->kind != LW_JOB_FORGET) continue;
    j->status = lw_store_forget(w->store, j->site, j->install, &j->deleted, j->errmsg,
                                sizeof j->errmsg);
    if (j->status == LW_OK) atomic_fetch_add(&w->metrics->forgotten_events, (uint64_t)j->deleted);
  }
}

static void *writer_main(void *arg) {
  lw_writer *w = arg;
  int64_t next_purge = 0; /* purge once at start */
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->head && !w->stopping) {
      if (w->cfg.retention_ms > 0 && lw_wall_ms() >= next_purge) break;
      if (w->cfg.retention_ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t wait_ms = next_purge - lw_wall_ms();
        if (wait_ms > 1000) wait_ms = 1000;
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        w->idle = 1;
        pthread_cond_timedwait(&w->work, &w->lock, &until);
        w->idle = 0;
      } else {
        w->idle = 1;
        pthread_cond_wait(&w->work, &w->lock);
        w->idle = 0;
      }
    }
    if (!w->head && w->stopping) break;
    /* Take up to max_group jobs; the rest wait for the next commit. */
    lw_job *jobs = w->head, *last = w->head;
    size_t n = jobs ? 1 : 0;
    while (last && last->next && n < w->cfg.max_group) last = last->next, n++;
    if (last) {
      w->head = last->next;
      if (!w->head) w->tail = NULL;
      last->next = NULL;
    }
    w->busy = 1;
    pthread_mutex_unlock(&w->lock);

    if (jobs) run_group(w, jobs);
    if (w->cfg.retention_ms > 0 && lw_wall_ms() >= next_purge) {
      run_purge(w);
      next_purge = lw_wall_ms() + w->cfg.purge_interval_ms;
    }

    /* Hand each job back; its owner may free it as soon as on_done returns. */
    for (lw_job *j = jobs; j;) {
      lw_job *next = j->next;
      j->on_done(j);
      j = next;
    }
    pthread_mutex_lock(&w->lock);
    w->busy = 0;
    if (!w->head) pthread_cond_broadcast(&w->drained);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

lw_status lw_writer_create(lw_store *store, const lw_writer_config *cfg, lw_metrics *metrics,
                           const lw_logger *log, lw_writer **out, char *err, size_t errlen) {
  *out = NULL;
  lw_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->items = calloc(cfg->max_group ? cfg->max_group : 1, sizeof *w->items))) {
    free(w);
    snprintf(err, errlen, "out of memory");
    return LW_ERR_NOMEM;
  }
  w->store = store;
  w->cfg = *cfg;
  if (w->cfg.max_group == 0) w->cfg.max_group = 1;
  if (w->cfg.purge_interval_ms <= 0) w->cfg.purge_interval_ms = 3600 * 1000;
  w->metrics = metrics;
  w->log = log;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->work, NULL);
  pthread_cond_init(&w->drained, NULL);
  int rc = pthread_create(&w->thread, NULL, writer_main, w);
  if (rc != 0) {
    snprintf(err, errlen, "starting the writer thread: %s", strerror(rc));
    pthread_cond_destroy(&w->drained);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    free(w->items);
    free(w);
    return LW_ERR_IO;
  }
  *out = w;
  return LW_OK;
}

lw_status lw_writer_enqueue(lw_writer *w, lw_job *job) {
  job->next = NULL;
  job->errmsg[0] = '\0';
  pthread_mutex_lock(&w->lock);
  if (w->stopping) {
    pthread_mutex_unlock(&w->lock);
    snprintf(job->errmsg, sizeof job->errmsg, "shutting down");
    job->status = LW_ERR_IO;
    return LW_ERR_IO;
  }
  if (w->tail)
    w->tail->next = job;
  else
    w->head = job;
  w->tail = job;
  if (w->idle) pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  return LW_OK;
}

void lw_writer_close(lw_writer *w) {
  pthread_mutex_lock(&w->lock);
  w->stopping = 1;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
}

void lw_writer_drain(lw_writer *w) {
  pthread_mutex_lock(&w->lock);
  while (w->head || w->busy) pthread_cond_wait(&w->drained, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

void lw_writer_free(lw_writer *w) {
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  w->stopping = 1;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->drained);
  pthread_cond_destroy(&w->work);
  pthread_mutex_destroy(&w->lock);
  free(w->items);
  free(w);
}
