/* writer.h: the single writer thread that gives the store its group commit.
 *
 * Request handlers hand a job to lw_writer_submit and block. The writer takes every queued
 * job, writes all the batches in one transaction, commits (one fsync), and only then wakes
 * the handlers, which answer 2xx. So no acknowledgement precedes the fsync that makes it
 * durable, and under load many requests share one fsync. The writer also runs the retention
 * purge on a timer, and install deletions, so the store has exactly one writer. */
#ifndef LW_INGEST_WRITER_H
#define LW_INGEST_WRITER_H

#include <semaphore.h>
#include <stdint.h>

#include "log.h"
#include "loopwise/store.h"
#include "metrics.h"

typedef struct lw_writer lw_writer;

typedef enum { LW_JOB_WRITE, LW_JOB_FORGET } lw_job_kind;

/* A job lives on the submitting handler's stack until lw_writer_submit returns. */
typedef struct lw_job {
  lw_job_kind kind;
  lw_store_item item;      /* LW_JOB_WRITE: in and out */
  const char *site;        /* LW_JOB_FORGET */
  const char *install;     /* LW_JOB_FORGET */
  int64_t deleted;         /* LW_JOB_FORGET: out */
  lw_status status;        /* out */
  char errmsg[LW_ERRMSG_MAX];
  sem_t done;              /* posted by the writer when the job is finished */
  struct lw_job *next;
} lw_job;

typedef struct {
  size_t max_group;            /* most batches in one transaction */
  int64_t retention_ms;        /* 0: keep forever */
  int64_t purge_interval_ms;   /* how often the retention purge runs */
} lw_writer_config;

/* Start the writer thread over store (borrowed; it must outlive the writer). */
lw_status lw_writer_create(lw_store *store, const lw_writer_config *cfg, lw_metrics *metrics,
                           const lw_logger *log, lw_writer **out, char *errmsg);

/* Queue job and wait until it is durable (or failed). Returns job->status. After
 * lw_writer_stop has begun, refuses new jobs with LW_ERR_IO. */
lw_status lw_writer_submit(lw_writer *w, lw_job *job);

/* Finish every queued job, stop the thread and free the writer. NULL is fine. */
void lw_writer_free(lw_writer *w);

#endif
