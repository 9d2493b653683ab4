/* writer.h: the single writer thread that gives the store its group commit.
 *
 * Request handlers queue a job with lw_writer_enqueue and suspend their connection. The writer
 * takes every queued job, writes all the batches in one transaction, commits (one fsync), and
 * only then calls each job's on_done, which resumes the connection to answer 2xx. So no acknowledgement precedes the fsync that makes it
 * durable, and under load many requests share one fsync. The writer also runs the retention
 * purge on a timer, and install deletions, so the store has exactly one writer. */
#ifndef LW_INGEST_WRITER_H
#define LW_INGEST_WRITER_H

#include <stdint.h>

#include "log.h"
#include "loopwise/store.h"
#include "metrics.h"

typedef struct lw_writer lw_writer;

/* LW_JOB_CALL: any other write (the referee endpoint's and the review's), run on the writer
 * thread so the store keeps one writer: call(store, arg, err, errlen) sets status. */
typedef enum { LW_JOB_WRITE, LW_JOB_FORGET, LW_JOB_CALL } lw_job_kind;

/* A job belongs to its submitter, who keeps it alive until on_done has been called. */
typedef struct lw_job {
  lw_job_kind kind;
  lw_store_item item;      /* LW_JOB_WRITE: in and out */
  const char *site;        /* LW_JOB_FORGET */
  const char *install;     /* LW_JOB_FORGET */
  int64_t deleted;         /* LW_JOB_FORGET: out */
  lw_status (*call)(lw_store *store, void *arg, char *err, size_t errlen); /* LW_JOB_CALL */
  void *arg;               /* LW_JOB_CALL */
  lw_status status;        /* out */
  char errmsg[LW_ERRMSG_MAX];
  /* Called on the writer thread once the job is durable (or failed); after it returns the
   * writer never touches the job again. */
  void (*on_done)(struct lw_job *job);
  void *ctx;               /* for on_done */
  struct lw_job *next;
} lw_job;

typedef struct {
  size_t max_group;            /* most batches in one transaction */
  int64_t retention_ms;        /* 0: keep forever */
  int64_t purge_interval_ms;   /* how often the retention purge runs */
} lw_writer_config;

/* Start the writer thread over store (borrowed; it must outlive the writer). */
lw_status lw_writer_create(lw_store *store, const lw_writer_config *cfg, lw_metrics *metrics,
                           const lw_logger *log, lw_writer **out, char *err, size_t errlen);

/* Queue job; on_done follows once it is durable (or failed). Returns LW_OK, or LW_ERR_IO
 * without queueing (and without calling on_done) once lw_writer_free has begun. */
lw_status lw_writer_enqueue(lw_writer *w, lw_job *job);

/* Refuse new jobs from now on; queued ones are still written. */
void lw_writer_close(lw_writer *w);

/* Wait until no job is queued or being written (used before the HTTP daemon stops). */
void lw_writer_drain(lw_writer *w);

/* Finish every queued job, stop the thread and free the writer. NULL is fine. */
void lw_writer_free(lw_writer *w);

#endif
