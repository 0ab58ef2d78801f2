/* quorum.c - one logical operation over 1..N servers.
 *
 * Sends the same command to every target at once (one round trip for a
 * Redlock set, not N), collects the replies under one deadline, and handles
 * the per-server retries that the caller should never see:
 *   - NOSCRIPT (restart, failover, SCRIPT FLUSH): re-sent with EVAL, which
 *     also caches the script again;
 *   - a reused connection found dead (EOF/reset, e.g. the server restarted
 *     since the last call): reconnect and re-send once. Every script is
 *     idempotent for the same token, so a re-send cannot double an effect;
 *   - MOVED / ASK (Cluster) and READONLY or a lost master (Sentinel): the
 *     topology layer says where to go, and the command is re-sent there.
 * A timeout is never retried: it would double the caller's deadline.
 */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

#define DL_MAX_ARGV 24
#define DL_MAX_ROUNDS 4

static int starts_with(const redisReply *r, const char *p) {
    size_t n = strlen(p);
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= n && memcmp(r->str, p, n) == 0;
}

/* Per-target retry decision after a round. */
enum { R_DONE, R_AGAIN, R_EVAL, R_ASK, R_ASK_EVAL };

/* Classify one finished connection of a round: record its reply in the
 * call, or ask for a retry. Returns 1 if it is to be re-sent. */
static int classify(dlock_client *c, dl_call *call, int i, dl_conn *cn, int reused, int round,
                    int script, int *todo) {
    int prev = todo[i];
    todo[i] = R_DONE;
    if (cn->status != DLOCK_OK) {
        call->status[i] = cn->status;
        /* Only a lost connection or a timeout after the request went out
         * leaves the outcome open (not an AUTH error). Sticky across
         * rounds: a re-send that fails before it is written does not undo
         * an earlier copy that may have run. */
        call->unknown[i] |= cn->status == DLOCK_EIO && cn->sent;
        dl_conn *to = NULL;
        int asking = 0;
        if (cn->status == DLOCK_EIO && !cn->timed_out &&
            dl_topo_redirect(c, cn, NULL, &to, &asking) && to != NULL) {
            call->conns[i] = to; /* Sentinel: the new master */
            todo[i] = R_AGAIN;
        } else if (cn->status == DLOCK_EIO && reused && !cn->timed_out && round == 0) {
            todo[i] = R_AGAIN; /* stale connection: reconnect once */
        }
        return todo[i] != R_DONE;
    }
    redisReply *r = cn->replies[cn->got - 1];
    if (starts_with(r, "NOSCRIPT") && script >= 0) {
        /* Reached through ASK: the EVAL needs its own ASKING. */
        todo[i] = prev == R_ASK || prev == R_ASK_EVAL ? R_ASK_EVAL : R_EVAL;
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        dl_conn *to = NULL;
        int asking = 0;
        if (dl_topo_redirect(c, cn, r, &to, &asking) && to != NULL) {
            call->conns[i] = to;
            todo[i] = asking ? R_ASK : R_AGAIN;
            return 1;
        }
        call->status[i] = DLOCK_ESERVER;
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
static int prepare(dl_call *call, int i, int todo, int argc, const char **argv,
                   const size_t *lens, int script, int *reused) {
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
    if (rc == DLOCK_OK && (todo == R_EVAL || todo == R_ASK_EVAL) && script >= 0) {
        const char *av[DL_MAX_ARGV + 1];
        size_t al[DL_MAX_ARGV + 1];
        memcpy(av, argv, (size_t)argc * sizeof *av);
        memcpy(al, lens, (size_t)argc * sizeof *al);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = dl_script_source((enum dl_script_id)script, &al[1]);
        rc = dl_conn_append(cn, argc, av, al);
    } else if (rc == DLOCK_OK) {
        rc = dl_conn_append(cn, argc, argv, lens);
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
static int run_rounds(dlock_client *c, dl_call *call, int argc, const char **argv,
                      const size_t *lens, int script, int64_t deadline_us,
                      dl_decided_fn decided) {
    int todo[DL_URL_MAX_HOSTS], done[DL_URL_MAX_HOSTS], reused[DL_URL_MAX_HOSTS];
    int tries[DL_URL_MAX_HOSTS];
    int settled = 0;
    int64_t t_start = dl_mono_us();
    for (int i = 0; i < call->n; i++) {
        call->replies[i] = NULL;
        call->status[i] = DLOCK_EIO;
        call->unknown[i] = 0;
        tries[i] = 1;
        todo[i] = R_AGAIN;
        done[i] = prepare(call, i, R_AGAIN, argc, argv, lens, script, &reused[i]) != DLOCK_OK;
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
            int again = classify(c, call, i, cn, reused[i], tries[i] - 1, script, todo);
            if (again && tries[i] < DL_MAX_ROUNDS) {
                tries[i]++;
                resent = 1;
                if (prepare(call, i, todo[i], argc, argv, lens, script, &reused[i]) != DLOCK_OK)
                    done[i] = 1;
            } else {
                if (again) {
                    /* Out of tries: the last answer stands. */
                    call->conns[i] = cn;
                    if (cn->status == DLOCK_OK && cn->got > 0) {
                        call->replies[i] = cn->replies[cn->got - 1];
                        call->status[i] = DLOCK_ESERVER;
                    }
                }
                done[i] = 1;
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
            int64_t floor = dl_mono_us() + (int64_t)c->opts.connect_timeout_ms * 1000;
            if (c->cap_us > 0 && floor > c->cap_us)
                floor = c->cap_us;
            if (deadline_us < floor)
                deadline_us = floor;
        }
    }
    count_ok(call);
    return DLOCK_OK;
}

int dl_decided_majority(const dl_call *call) { return call->nok >= call->quorum; }

int dl_call_script(dlock_client *c, dl_call *call, enum dl_script_id id, const dl_keys *keys,
                   int nargs, const char **args, const size_t *alens, int64_t deadline_us) {
    return dl_call_script_q(c, call, id, keys, nargs, args, alens, deadline_us, NULL);
}

int dl_call_script_q(dlock_client *c, dl_call *call, enum dl_script_id id, const dl_keys *keys,
                     int nargs, const char **args, const size_t *alens, int64_t deadline_us,
                     dl_decided_fn decided) {
    int rc = dl_topo_targets(c, keys->k[0], keys->len[0], call);
    if (rc != DLOCK_OK)
        return rc;
    const char *argv[DL_MAX_ARGV];
    size_t lens[DL_MAX_ARGV];
    int argc = 0;
    argv[argc] = "EVALSHA";
    lens[argc++] = 7;
    argv[argc] = c->sha[id];
    lens[argc++] = 40;
    argv[argc] = "4";
    lens[argc++] = 1;
    for (int i = 0; i < DL_NKEYS; i++) {
        argv[argc] = keys->k[i];
        lens[argc++] = keys->len[i];
    }
    for (int i = 0; i < nargs && argc < DL_MAX_ARGV; i++) {
        argv[argc] = args[i];
        lens[argc++] = alens[i];
    }
    if (deadline_us == 0)
        deadline_us = dl_call_deadline(c, call);
    if (call->n < 2)
        decided = NULL;
    return run_rounds(c, call, argc, argv, lens, (int)id, deadline_us, decided);
}

int dl_call_named(dlock_client *c, dl_call *call, enum dl_script_id id, const char *name,
                  size_t name_len, int nargs, const char **args, const size_t *alens,
                  int64_t deadline_us, dl_decided_fn decided) {
    dl_keys keys;
    if (dl_keys_make(c, name, name_len, &keys) != DLOCK_OK)
        return dl_seterr(c, DLOCK_ENOMEM, "out of memory");
    int rc = dl_call_script_q(c, call, id, &keys, nargs, args, alens, deadline_us, decided);
    dl_keys_free(&keys);
    return rc;
}

int dl_call_argv(dlock_client *c, dl_call *call, const char *key, size_t klen, int argc,
                 const char **argv, const size_t *lens, int64_t deadline_us) {
    int rc = dl_topo_targets(c, key, klen, call);
    if (rc != DLOCK_OK)
        return rc;
    if (argc > DL_MAX_ARGV)
        return dl_seterr(c, DLOCK_EINVAL, "too many arguments");
    if (deadline_us == 0)
        deadline_us = dl_call_deadline(c, call);
    return run_rounds(c, call, argc, argv, lens, -1, deadline_us,
                      call->n > 1 ? dl_decided_majority : NULL);
}

static void reply_text(const redisReply *r, char *out, size_t n) {
    if (r != NULL && (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS))
        snprintf(out, n, "%.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    else
        snprintf(out, n, "unexpected reply");
}

int dl_call_error(dlock_client *c, const dl_call *call, const char *what) {
    char detail[sizeof c->err];
    size_t off = 0;
    int first = DLOCK_OK;
    int nfail = 0;
    detail[0] = '\0';
    for (int i = 0; i < call->n; i++) {
        if (call->status[i] == DLOCK_OK)
            continue;
        char one[260];
        if (call->status[i] == DLOCK_ESERVER && call->replies[i] != NULL)
            reply_text(call->replies[i], one, sizeof one);
        else
            snprintf(one, sizeof one, "%s", call->conns[i]->err);
        if (first == DLOCK_OK)
            first = call->status[i];
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
        return dl_seterr(c, DLOCK_ENOQUORUM, "%s: %d of %d servers answered, %d needed: %s", what,
                         call->nok, call->n, call->quorum, detail);
    }
    return dl_seterr(c, first, "%s: %s", what, detail);
}
