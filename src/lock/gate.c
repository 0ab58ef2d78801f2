/* gate.c - the replica gate's request (opts.replicas): WAIT on the lock's
 * server, and reading its answer. The acquire's state machine
 * (acquire_async.c) decides what a short count means; an extension's
 * gate (dl_gate_extension) is read by the three extension paths (user
 * extends, engine keepalive, the keepalive thread). */
#include <stdio.h>

#include "clock.h"
#include "engine.h"
#include "resp.h"

/* WAIT's own timeout when the call has no deadline of its own:
 * replica_timeout_ms, or for 0 ("no timeout") one command timeout. */
static int64_t wait_ms_plain(const dlock_client *c) {
    return c->opts.replica_timeout_ms > 0 ? c->opts.replica_timeout_ms
                                          : c->opts.command_timeout_ms;
}

/* WAIT's own timeout for op: as wait_ms_plain, but with replica_timeout_ms
 * 0 a dlock_wait gets what it has left until its deadline. A WAIT holds
 * its connection, so it must end before the request does. */
static int64_t gate_wait_ms(const dl_aop *op) {
    const dlock_client *c = op->e->c;
    if (c->opts.replica_timeout_ms > 0 || op->mode != DL_AM_DEADLINE)
        return wait_ms_plain(c);
    int64_t left = (op->deadline_us - dl_mono_us() + 999) / 1000;
    return left > 0 ? left : 1;
}

/* "WAIT <replicas> <ms>" into argv/lens (its numbers in the caller's
 * nrep[16] and tmo[24]). */
static void wait_args(const dlock_client *c, int64_t ms, char *nrep, char *tmo,
                      const char **argv, size_t *lens) {
    int n1 = snprintf(nrep, 16, "%d", c->opts.replicas);
    argv[0] = "WAIT";
    lens[0] = 4;
    argv[1] = nrep;
    lens[1] = (size_t)n1;
    argv[2] = tmo;
    lens[2] = dl_fmt_i64(tmo, ms);
}

int dl_gate_send(dl_aop *op, dl_fan_done_fn done) {
    const dlock_client *c = op->e->c;
    char nrep[16], tmo[24];
    const char *argv[3];
    size_t lens[3];
    int64_t ms = gate_wait_ms(op);
    op->gate_ms = ms;
    wait_args(c, ms, nrep, tmo, argv, lens);
    int64_t deadline =
        dl_capped(&op->x, dl_mono_us() + (ms + c->opts.command_timeout_ms) * 1000);
    return dl_aop_command(op, 3, argv, lens, deadline, done);
}

int dl_gate_demoted(const dl_aop *op, const dl_fan *f) {
    if (!op->e->routed)
        return 0;
    for (int i = 0; i < f->call.n; i++) {
        int code = f->call.code[i];
        if (f->call.status[i] == DLOCK_ESERVER &&
            (code == DL_SRV_ERR || code == DL_SRV_UNBLOCKED || code == DL_SRV_READONLY))
            return 1;
    }
    return 0;
}

int dl_gate_acked(dl_aop *op, dl_fan *f, int64_t *acked) {
    *acked = -1;
    int rc = dl_call_error(&op->x, &f->call, "wait for replicas");
    for (int i = 0; rc == DLOCK_OK && i < f->call.n; i++) {
        int64_t a = dl_reply_int(f->call.replies[i], -1);
        if (f->call.status[i] == DLOCK_OK && (*acked < 0 || a < *acked))
            *acked = a;
    }
    return rc;
}

/* ---- extensions ----
 * A lease extended on a master whose replicas do not have it is not one a
 * failover keeps (a deposed master still taking writes, with no replica,
 * extends whatever it is asked to). So with opts.replicas an extension
 * counts only once a WAIT shows enough replicas: sent on the lock's route
 * right after the EXTEND, on the same connection (WAIT counts that
 * connection's writes, the EXTEND's included). One master per lock only:
 * a Redlock set's extensions are counted by their quorum. */

int dl_gate_extension_on(const dl_engine *e) { return e->c->opts.replicas > 0 && e->n == 1; }

dl_fan *dl_gate_extension(dl_engine *e, const dl_keyset *ks, dl_fan_done_fn done, void *arg) {
    const dlock_client *c = e->c;
    char nrep[16], tmo[24];
    const char *argv[3];
    size_t lens[3];
    int64_t ms = wait_ms_plain(c);
    wait_args(c, ms, nrep, tmo, argv, lens);
    dl_req req = {.argc = 3, .argv = argv, .lens = lens, .key = ks->k[0], .klen = ks->len[0]};
    int64_t deadline = dl_mono_us() + (ms + c->opts.command_timeout_ms) * 1000;
    int rc;
    return dl_engine_fan(e, &req, deadline, dl_decided_majority, done, arg, &rc);
}

int dl_gate_extension_ok(const dl_engine *e, const dl_fan *f) {
    if (f == NULL || !f->completed || f->call.n < 1)
        return 0;
    for (int i = 0; i < f->call.n; i++)
        if (f->call.status[i] != DLOCK_OK ||
            dl_reply_int(f->call.replies[i], -1) < e->c->opts.replicas)
            return 0;
    return 1;
}
