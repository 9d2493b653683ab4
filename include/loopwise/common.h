/* loopwise/common.h: status codes and limits shared by every Loopwise component.
 *
 * Errors are a return code plus a message written into a buffer the caller owns
 * (at least LW_ERRMSG_MAX bytes is always enough). Nothing keeps global error state. */
#ifndef LOOPWISE_COMMON_H
#define LOOPWISE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  LW_OK = 0,
  LW_ERR_INVALID = 1,   /* bad argument or input; the message says which and why */
  LW_ERR_NOMEM = 2,     /* an allocation failed; nothing was changed */
  LW_ERR_CORRUPT = 3,   /* stored data failed its checksum or structure check */
  LW_ERR_VERSION = 4,   /* stored data has a version this build cannot read */
  LW_ERR_FULL = 5,      /* a bounded buffer is full */
  LW_ERR_NOT_FOUND = 6, /* the named thing does not exist */
  LW_ERR_IO = 7         /* the operating system or a library refused (native edges only) */
} lw_status;

#define LW_ERRMSG_MAX 256

/* A stable lower-case name for a status ("ok", "invalid", ...). Never NULL. */
const char *lw_status_name(lw_status st);

#ifdef __cplusplus
}
#endif
#endif
