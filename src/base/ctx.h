/* ctx.h - the call context at the bottom of every layer: the detail string
 * of the last failure, the server's error code behind it, the caller's
 * deadline cap, and the event hook.
 *
 * Every layer reports failures through dl_seterr on the context it was
 * given; no layer reads another layer's state to learn what went wrong.
 * Decisions about an error are made on `status` and `code` (structured),
 * never by searching the text in `err`. */
#ifndef DLOCK_CTX_H
#define DLOCK_CTX_H

#include <stdint.h>

#include "dlock.h"

#define DL_INTERNAL __attribute__((visibility("hidden")))

typedef struct dl_ctx {
    char err[512];  /* detail of the last failure, "" after a success */
    int code;       /* server error code behind it (dl_srv_code), 0 for none */
    int64_t cap_us; /* while > 0: no call may end later (monotonic us) */
    dlock_event_fn on_event;
    void *event_ud;
} dl_ctx;

/* Set the detail (printf-style), clear the server error code, and return
 * `status`. A caller whose failure has a server code sets x->code after. */
DL_INTERNAL int dl_seterr(dl_ctx *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Forget the last failure. */
DL_INTERNAL void dl_clearerr(dl_ctx *x);
/* Call the event hook, if any. The hook runs on the caller's thread with no
 * library lock held. */
DL_INTERNAL void dl_emit(const dl_ctx *x, dlock_event_type type, const char *name, int status,
                         int64_t fence, int64_t wait_us, int attempts);
/* A DLOCK_EV_WARNING event with `message` (a static string), if there is a
 * hook: a setting that weakens a guarantee. */
DL_INTERNAL void dl_warn(const dl_ctx *x, const char *message);
#define DL_WARN_TLS_NO_VERIFY                                                              \
    "tls_verify=off: the servers' TLS certificates are not checked; anyone on the network " \
    "path can pose as a server, read the password and grant a lock that is not free"
/* The earlier of deadline_us and the context's cap (when set). */
DL_INTERNAL int64_t dl_capped(const dl_ctx *x, int64_t deadline_us);

#endif
