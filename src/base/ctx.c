/* ctx.c - the call context: detail string, server error code, deadline cap
 * and event hook. Every detail string of the library is written here. */
#include "ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dl_seterr(dl_ctx *x, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    x->code = 0;
    return status;
}

void dl_clearerr(dl_ctx *x) {
    x->err[0] = '\0';
    x->code = 0;
}

void dl_emit(const dl_ctx *x, dlock_event_type type, const char *name, int status,
             int64_t fence, int64_t wait_us, int attempts) {
    if (x->on_event == NULL)
        return;
    dlock_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.name = name;
    ev.status = status;
    ev.fence = fence;
    ev.wait_us = wait_us;
    ev.attempts = attempts;
    x->on_event(&ev, x->event_ud);
}

void dl_warn(const dl_ctx *x, const char *message) {
    if (x->on_event == NULL)
        return;
    dlock_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = DLOCK_EV_WARNING;
    ev.name = "";
    ev.message = message;
    x->on_event(&ev, x->event_ud);
}

int64_t dl_capped(const dl_ctx *x, int64_t deadline_us) {
    if (x->cap_us > 0 && deadline_us > x->cap_us)
        return x->cap_us;
    return deadline_us;
}
