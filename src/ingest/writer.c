/* writer.c: see writer.h. */
#include "writer.h"

#include <errno.h>
#include <stdatomic.h>
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
  atomic_int failing;      /* see lw_writer_failing */
  lw_store_item **items;   /* scratch for one group, writer thread only */
  lw_forget_item **forgets;
  unsigned pass_steps;     /* retention: steps of the pass under way (0: none), writer thread only */
  int64_t pass_t0_us, pass_before_ms, pass_deleted;
};

int lw_writer_failing(lw_writer *w) { return atomic_load(&w->failing); }

/* Hand jobs of one kind back; an owner may free its job as soon as on_done returns. */
static void hand_back(lw_job *jobs, lw_job_kind kind) {
  for (lw_job *j = jobs, *next; j; j = next) {
    next = j->next;
    if (j->kind == kind) j->on_done(j);
  }
}

/* One step of the retention pass (lw_store_purge_step: a bounded transaction); 1 while the pass
 * has more, so the loop serves its queue and comes back. The pass is logged at its end. */
static int run_purge(lw_writer *w) {
  char errmsg[LW_ERRMSG_MAX];
  int64_t deleted = 0;
  int more = 0;
  if (!w->pass_steps) {
    w->pass_t0_us = lw_mono_us();
    w->pass_before_ms = lw_wall_ms() - w->cfg.retention_ms; /* one cut for the whole pass */
    w->pass_deleted = 0;
  }
  lw_status st = lw_store_purge_step(w->store, w->pass_before_ms, LW_PURGE_STEP_EVENTS, &deleted, &more, errmsg,
                                     sizeof errmsg);
  w->pass_steps++;
  lw_log_line line;
  if (st != LW_OK) {
    lw_log_msg(w->log, LW_LOG_ERROR, "retention purge failed", errmsg);
    w->pass_steps = 0;
    return 0;
  }
  atomic_fetch_add(&w->metrics->purged_events, (uint64_t)deleted);
  w->pass_deleted += deleted;
  if (more) return 1;
  if (w->pass_deleted && lw_log_begin(&line, w->log, LW_LOG_INFO, "retention purge")) {
    lw_log_int(&line, "deleted_events", w->pass_deleted);
    lw_log_int(&line, "steps", (int64_t)w->pass_steps);
    lw_log_int(&line, "duration_ms", (lw_mono_us() - w->pass_t0_us) / 1000);
    lw_log_end(&line);
  }
  w->pass_steps = 0;
  return 0;
}

/* Write one group: the batches in one transaction, answered as soon as it is durable, then
 * the forgets in one transaction of their own (a forget also checkpoints the WAL, which the
 * batches need not wait for), answered in turn. So a flood of forgets costs one commit per
 * group, never one per request. Every job is handed back here; the list is unlinked first, as
 * an owner may free its job from on_done. */
static void run_group(lw_writer *w, lw_job *jobs) {
  size_t n = 0, nf = 0;
  lw_job *writes = NULL, *calls = NULL, *forgets = NULL;
  lw_job **wt = &writes, **ct = &calls, **ft = &forgets;
  for (lw_job *j = jobs, *next; j; j = next) {
    next = j->next;
    j->next = NULL;
    if (j->kind == LW_JOB_WRITE) {
      w->items[n++] = &j->item;
      *wt = j, wt = &j->next;
    } else if (j->kind == LW_JOB_CALL) {
      *ct = j, ct = &j->next;
    } else {
      w->forgets[nf++] = &j->forget;
      *ft = j, ft = &j->next;
    }
  }
  if (n) {
    char errmsg[LW_ERRMSG_MAX];
    int64_t t0 = lw_mono_us();
    lw_status st = lw_store_write(w->store, w->items, n, errmsg, sizeof errmsg);
    atomic_fetch_add(&w->metrics->commit_us_sum, (uint64_t)(lw_mono_us() - t0));
    atomic_store(&w->failing, st != LW_OK);
    if (st == LW_OK) {
      atomic_fetch_add(&w->metrics->commits, 1);
      atomic_fetch_add(&w->metrics->committed_batches, n);
    } else {
      lw_log_msg(w->log, LW_LOG_ERROR, "group commit failed", errmsg);
    }
    for (lw_job *j = writes; j; j = j->next) {
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
    hand_back(writes, LW_JOB_WRITE);
  }
  for (lw_job *j = calls; j; j = j->next)
    j->status = j->call(w->store, j->arg, j->errmsg, sizeof j->errmsg);
  hand_back(calls, LW_JOB_CALL);
  if (nf) {
    char errmsg[LW_ERRMSG_MAX];
    lw_status st = lw_store_forget(w->store, w->forgets, nf, errmsg, sizeof errmsg);
    atomic_fetch_add(&w->metrics->forget_commits, 1);
    if (st != LW_OK) lw_log_msg(w->log, LW_LOG_ERROR, "forget failed", errmsg);
    for (lw_job *j = forgets; j; j = j->next) {
      j->status = st;
      if (st != LW_OK) {
        memcpy(j->errmsg, errmsg, sizeof errmsg);
        continue;
      }
      atomic_fetch_add(&w->metrics->forgets, 1);
      atomic_fetch_add(&w->metrics->forgotten_events, (uint64_t)j->forget.deleted);
    }
    hand_back(forgets, LW_JOB_FORGET);
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

    if (jobs) run_group(w, jobs); /* answers every job */
    /* A pass is steps with the queue served between them (a group of writes, calls, forgets):
     * a big store's retention never holds a batch for longer than one step. */
    if (w->cfg.retention_ms > 0 && lw_wall_ms() >= next_purge && !run_purge(w))
      next_purge = lw_wall_ms() + w->cfg.purge_interval_ms;
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
  if (!w || !(w->items = calloc(cfg->max_group ? cfg->max_group : 1, sizeof *w->items)) ||
      !(w->forgets = calloc(cfg->max_group ? cfg->max_group : 1, sizeof *w->forgets))) {
    if (w) free(w->items);
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
    free(w->forgets);
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
  free(w->forgets);
  free(w);
}
