/* client.c - the public client calls: options, create, free, detail
 * string and server error code, ping. The state behind them is set up in
 * lock/core.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "engine.h"

const char *dlock_client_errstr(const dlock_client *c) { return c ? c->ctx.err : "no client"; }

/* ctx.code holds a dl_srv_code, whose values are the public ones (resp.h). */
int dlock_client_errcode(const dlock_client *c) { return c ? c->ctx.code : DLOCK_SRV_NONE; }

int dlock_client_new(dlock_client **out, const char *url, const dlock_options *opts) {
    if (out == NULL)
        return DLOCK_EINVAL;
    *out = NULL;
    dlock_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DLOCK_ENOMEM;
    *out = c;
    int rc = dl_client_setup(c, url, opts);
    if (rc == DLOCK_ENOMEM) {
        dlock_client_free(c);
        *out = NULL;
        return rc;
    }
    if (rc != DLOCK_OK) {
        c->unusable = rc; /* every later call repeats why */
        snprintf(c->unusable_why, sizeof c->unusable_why, "%s", c->ctx.err);
    }
    return rc;
}

void dlock_client_free(dlock_client *c) {
    if (c == NULL)
        return;
    /* In a child after fork() the sockets are the parent's too: they are
     * closed here, and nothing is sent on them. */
    c->cfg.forked = dl_forked(c);
    dl_keepalive_client_free(c);
    dl_engine_free(c->eng);
    dl_engine_free(c->beng);
    dl_client_orphan_locks(c);
    dl_client_teardown(c);
    free(c);
}

int dlock_client_ping(dlock_client *c) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    dl_req req = {.argc = 1, .argv = argv, .lens = lens, .key = "", .klen = 0};
    dl_fan *f;
    rc = dl_block_call(c, &req, dl_decided_majority, &f);
    if (rc != DLOCK_OK)
        return rc;
    rc = dl_call_error(&c->ctx, &f->call, "ping");
    dl_fan_put(f);
    return rc;
}
