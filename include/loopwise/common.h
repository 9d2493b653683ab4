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

/* X(ENUM, value, name): values are part of the WASM binding's return codes. */
#define LW_STATUSES(X)                                                                  \
  X(OK, 0, "ok")                                                                        \
  X(ERR_INVALID, 1, "invalid")     /* bad argument or input; the message says why */    \
  X(ERR_NOMEM, 2, "nomem")         /* an allocation failed; nothing was changed */      \
  X(ERR_CORRUPT, 3, "corrupt")     /* stored data failed its checksum or structure */   \
  X(ERR_VERSION, 4, "version")     /* stored data has a version this build can't read */\
  X(ERR_FULL, 5, "full")           /* a bounded buffer is full */                       \
  X(ERR_NOT_FOUND, 6, "not_found") /* the named thing does not exist */                 \
  X(ERR_IO, 7, "io")               /* the OS or a library refused (native edges only) */

typedef enum {
#define LW_X_STATUS_ENUM(e, v, name) LW_##e = v,
  LW_STATUSES(LW_X_STATUS_ENUM)
#undef LW_X_STATUS_ENUM
} lw_status;

#define LW_ERRMSG_MAX 256

/* A stable lower-case name for a status ("ok", "invalid", ...). Never NULL. */
const char *lw_status_name(lw_status st);

#ifdef __cplusplus
}
#endif
#endif
