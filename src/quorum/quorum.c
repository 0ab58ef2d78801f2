/* quorum.c - one logical operation over 1..N servers (see quorum.h).
 * Replies are handled as they arrive: a target that needs a retry is
 * re-sent at once, not after the slowest target answers. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "quorum.h"

#define DL_MAX_ROUNDS 4

/* Per-target retry decision after a round. */
enum { R_DONE, R_AGAIN, R_EVAL, R_ASK, R_ASK_EVAL };

/* Classify one finished connection of a round: record its reply in the
 * call, or ask for a retry. Returns 1 if it is to be re-sent. */
static int classify(dl_topo *t, dl_call *call, int i, dl_conn *cn, int reused, int round,
                    int script, int *todo) {
    int prev = todo[i];
    todo[i] = R_DONE;
    if (cn->status != DLOCK_OK) {
        call->status[i] = cn->status;
        call->code[i] = cn->code;
        /* Only a lost connection or a timeout after the request went out
         * leaves the outcome open (not an AUTH error). Sticky across
         * rounds: a re-send that fails before it is written does not undo
         * an earlier copy that may have run. */
        call->unknown[i] |= cn->status == DLOCK_EIO && cn->sent;
        dl_conn *to = NULL;
        int asking = 0;
        if (cn->status == DLOCK_EIO && !cn->timed_out &&
            dl_topo_redirect(t, cn, NULL, &to, &asking) && to != NULL) {
            call->conns[i] = to; /* Sentinel: the new master */
            todo[i] = R_AGAIN;
        } else if (cn->status == DLOCK_EIO && reused && !cn->timed_out && round == 0) {
            todo[i] = R_AGAIN; /* stale connection: reconnect once */
        }
        return todo[i] != R_DONE;
    }
    redisReply *r = cn->replies[cn->got - 1];
    int code = dl_srv_code(r);
    if (code == DL_SRV_NOSCRIPT && script) {
        /* Reached through ASK: the EVAL needs its own ASKING. */
        todo[i] = prev == R_ASK || prev == R_ASK_EVAL ? R_ASK_EVAL : R_EVAL;
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        dl_conn *to = NULL;
        int asking = 0;
        if (dl_topo_redirect(t, cn, r, &to, &asking) && to != NULL) {
            call->conns[i] = to;
            todo[i] = asking ? R_ASK : R_AGAIN;
            return 1;
        }
        call->status[i] = DLOCK_ESERVER;
        call->code[i] = code;
    } else {
        call->status[i] = DLOCK_OK;
    }
    call->replies[i] = r;
    call->unknown[i] = 0;
    return 0;
}

static void count_ok(dl_call *call) {
    call->nok = 0;
    for (int i = 0; i < call->n; i++)
        if (call->status[i] == DLOCK_OK)
            call->nok++;
}

/* Queue the command for target i again (a first send or a retry). */
static int prepare(dl_call *call, int i, int todo, const dl_req *req, int *reused) {
    dl_conn *cn = call->conns[i];
    dl_conn_batch_reset(cn);
    dl_conn_check_idle(cn);
    *reused = cn->state == DL_CONN_READY;
    int rc = DLOCK_OK;
    if (todo == R_ASK || todo == R_ASK_EVAL) {
        const char *asking = "ASKING";
        size_t alen = 6;
        rc = dl_conn_append(cn, 1, &asking, &alen);
    }
    if (rc == DLOCK_OK && (todo == R_EVAL || todo == R_ASK_EVAL) && req->script != NULL) {
        const char *av[DL_REQ_MAX_ARGV];
        size_t al[DL_REQ_MAX_ARGV];
        memcpy(av, req->argv, (size_t)req->argc * sizeof *av);
        memcpy(al, req->lens, (size_t)req->argc * sizeof *al);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = req->script;
        al[1] = req->script_len;
        rc = dl_conn_append(cn, req->argc, av, al);
    } else if (rc == DLOCK_OK) {
        rc = dl_conn_append(cn, req->argc, req->argv, req->lens);
    }
    if (rc != DLOCK_OK) {
        call->status[i] = rc;
        call->replies[i] = NULL;
    }
    return rc;
}

/* Send to every target, then handle replies as they arrive: a target that
 * needs a retry is re-sent at once (not after the slowest target answers),
 * and with a decider the call ends soon after its outcome is settled. */
static int run_rounds(dl_topo *t, dl_call *call, const dl_req *req, int64_t deadline_us,
                      dl_decided_fn decided) {
    int script = req->script != NULL;
    int todo[DL_URL_MAX_HOSTS], done[DL_URL_MAX_HOSTS], reused[DL_URL_MAX_HOSTS];
    int tries[DL_URL_MAX_HOSTS];
    int settled = 0;
    int64_t t_start = dl_mono_us();
    for (int i = 0; i < call->n; i++) {
        call->replies[i] = NULL;
        call->status[i] = DLOCK_EIO;
        call->unknown[i] = 0;
        call->code[i] = DL_SRV_NONE;
        tries[i] = 1;
        todo[i] = R_AGAIN;
        done[i] = prepare(call, i, R_AGAIN, req, &reused[i]) != DLOCK_OK;
        call->done[i] = done[i];
    }
    for (;;) {
        dl_conn *run[DL_URL_MAX_HOSTS];
        int map[DL_URL_MAX_HOSTS];
        int nrun = 0;
        for (int i = 0; i < call->n; i++) {
            if (!done[i]) {
                run[nrun] = call->conns[i];
                map[nrun++] = i;
            }
        }
        if (nrun == 0)
            break;
        dl_conn_run_some(run, nrun, deadline_us, 1);
        int resent = 0;
        for (int k = 0; k < nrun; k++) {
            dl_conn *cn = run[k];
            int i = map[k];
            if (!(cn->status != DLOCK_OK || cn->got >= cn->expect))
                continue;
            int again = classify(t, call, i, cn, reused[i], tries[i] - 1, script, todo);
            if (again && tries[i] < DL_MAX_ROUNDS) {
                tries[i]++;
                resent = 1;
                if (prepare(call, i, todo[i], req, &reused[i]) != DLOCK_OK)
                    done[i] = call->done[i] = 1;
            } else {
                if (again) {
                    /* Out of tries: the last answer stands. */
                    call->conns[i] = cn;
                    if (cn->status == DLOCK_OK && cn->got > 0) {
                        call->replies[i] = cn->replies[cn->got - 1];
                        call->status[i] = DLOCK_ESERVER;
                        call->code[i] = dl_srv_code(call->replies[i]);
                    }
                }
                done[i] = call->done[i] = 1;
            }
        }
        count_ok(call);
        if (decided != NULL && !settled && decided(call)) {
            /* Settled: give the stragglers as long again as the quorum
             * took (they are usually microseconds behind), then stop
             * waiting; a slow or paused minority costs little. */
            settled = 1;
            int64_t now = dl_mono_us();
            int64_t grace = now - t_start;
            if (grace < 1000)
                grace = 1000;
            if (now + grace < deadline_us)
                deadline_us = now + grace;
        }
        if (resent && !settled) {
            /* A reconnect may need its connect time on top of the deadline. */
            int64_t floor = dl_capped(t->ctx, dl_mono_us() + (int64_t)t->connect_timeout_ms * 1000);
            if (deadline_us < floor)
                deadline_us = floor;
        }
    }
    count_ok(call);
    return DLOCK_OK;
}

int dl_decided_majority(const dl_call *call) { return call->nok >= call->quorum; }

int dl_settled(const dl_call *call, dl_yes_fn yes) {
    int y = 0, no = 0;
    for (int i = 0; i < call->n; i++) {
        if (!call->done[i])
            continue;
        if (call->status[i] == DLOCK_OK && yes(call->replies[i]))
            y++;
        else
            no++;
    }
    return y >= call->quorum || no > call->n - call->quorum;
}

int dl_quorum_run(dl_topo *t, dl_call *call, const dl_req *req, int64_t deadline_us,
                  dl_decided_fn decided) {
    memset(call, 0, sizeof *call);
    if (req->argc > DL_REQ_MAX_ARGV)
        return dl_seterr(t->ctx, DLOCK_EINVAL, "too many arguments");
    dl_targets tg;
    int rc = dl_topo_targets(t, req->key, req->klen, &tg);
    if (rc != DLOCK_OK)
        return rc;
    call->n = tg.n;
    call->quorum = tg.n / 2 + 1;
    memcpy(call->conns, tg.conns, sizeof tg.conns);
    if (deadline_us == 0)
        deadline_us = dl_topo_deadline(t, &tg);
    if (call->n < 2)
        decided = NULL;
    return run_rounds(t, call, req, deadline_us, decided);
}

static void reply_text(const redisReply *r, char *out, size_t n) {
    if (r != NULL && (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS))
        snprintf(out, n, "%.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    else
        snprintf(out, n, "unexpected reply");
}

int dl_call_error(dl_ctx *x, const dl_call *call, const char *what) {
    char detail[sizeof x->err];
    size_t off = 0;
    int first = DLOCK_OK, first_code = 0;
    int nfail = 0;
    detail[0] = '\0';
    for (int i = 0; i < call->n; i++) {
        if (call->status[i] == DLOCK_OK)
            continue;
        char one[260];
        if (call->status[i] == DLOCK_ESERVER && call->replies[i] != NULL)
            reply_text(call->replies[i], one, sizeof one);
        else if (!call->done[i])
            snprintf(one, sizeof one, "no answer yet when the others settled the call");
        else
            snprintf(one, sizeof one, "%s", call->conns[i]->err);
        if (first == DLOCK_OK) {
            first = call->status[i];
            first_code = call->code[i];
        }
        nfail++;
        if (off < sizeof detail) {
            int w;
            if (call->status[i] == DLOCK_ESERVER || call->n > 1)
                w = snprintf(detail + off, sizeof detail - off, "%s%s: %s", nfail > 1 ? "; " : "",
                             call->conns[i]->addr, one);
            else
                w = snprintf(detail + off, sizeof detail - off, "%s", one);
            if (w > 0)
                off += (size_t)w;
        }
    }
    if (first == DLOCK_OK)
        return DLOCK_OK;
    if (call->n > 1) {
        if (call->nok >= call->quorum)
            return DLOCK_OK;
        dl_seterr(x, DLOCK_ENOQUORUM, "%s: %d of %d servers answered, %d needed: %s", what,
                  call->nok, call->n, call->quorum, detail);
        x->code = first_code;
        return DLOCK_ENOQUORUM;
    }
    dl_seterr(x, first, "%s: %s", what, detail);
    x->code = first_code;
    return first;
}
