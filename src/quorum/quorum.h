/* quorum.h - one logical operation over 1..N servers.
 *
 * The same command goes to every target at once (one round trip for a
 * Redlock set, not N); replies are collected under one deadline. A decider
 * may end the wait early once the outcome is settled. The per-server
 * retries a caller should never see are handled here:
 *   - NOSCRIPT: the request is re-sent with EVAL and the script's source
 *     (which caches it again);
 *   - a reused connection found dead: reconnect and re-send once (every
 *     request dlock sends is idempotent for the same token);
 *   - redirects (MOVED / ASK, READONLY or a lost Sentinel master): the
 *     topology says where to go, and the request is re-sent there.
 * A timeout is never retried: that would double the caller's deadline. */
#ifndef DLOCK_QUORUM_H
#define DLOCK_QUORUM_H

#include "resp.h"
#include "topology.h"

typedef struct dl_call {
    int n;      /* targets */
    int quorum; /* n/2+1 */
    int nok;    /* targets that answered with a non-error reply */
    dl_conn *conns[DL_URL_MAX_HOSTS];
    redisReply *replies[DL_URL_MAX_HOSTS]; /* NULL where the target failed */
    int status[DL_URL_MAX_HOSTS];          /* per target: DLOCK_OK / EIO / ESERVER ... */
    int code[DL_URL_MAX_HOSTS];            /* server error code (dl_srv_code) */
    int unknown[DL_URL_MAX_HOSTS];         /* 1: the request may have run, no reply came */
    int done[DL_URL_MAX_HOSTS];            /* 1: this target has its final outcome */
} dl_call;

/* Most arguments one request may have (command name included). */
#define DL_REQ_MAX_ARGV 80 /* a multi-lock script: 3 + 4 * 16 keys + 9 args */

/* One request: argv with explicit lengths, the key that routes it, and for
 * EVALSHA the script's source (argv[1] is its digest). */
typedef struct dl_req {
    int argc;
    const char **argv;
    const size_t *lens;
    const char *key;
    size_t klen;
    const char *script; /* NULL: not a script */
    size_t script_len;
    /* > 0: argv[floor_at] is the fence's failover floor, written per
     * target as that server's epoch * 2^40 (its conn's epoch; "" when
     * unknown) at every send, redirects included (docs/FAILOVER.md). */
    int floor_at;
} dl_req;

/* A decider says, from the replies so far, that the outcome is settled: the
 * call then gives the rest a short grace and stops waiting for them (their
 * connections are closed and marked unknown). */
typedef int (*dl_decided_fn)(const dl_call *call);
/* Says whether one target's reply is a "yes" for the operation. */
typedef int (*dl_yes_fn)(const redisReply *r);

/* Run `req` on every target of req->key. deadline_us 0: one round trip
 * (dl_topo_deadline). Returns DLOCK_OK when the call ran (each target's
 * outcome is in *call), or the topology's error (no target found). */
DL_INTERNAL int dl_quorum_run(dl_topo *t, dl_call *call, const dl_req *req, int64_t deadline_us,
                              dl_decided_fn decided);

/* Decider helper: settled once `yes` holds for a majority, or so many
 * targets have answered otherwise (or failed) that a majority of yes is no
 * longer possible. A "no" from one server never outvotes a slow "yes". */
DL_INTERNAL int dl_settled(const dl_call *call, dl_yes_fn yes);
/* Decider for plain commands (PING, WAIT): any majority of answers. */
DL_INTERNAL int dl_decided_majority(const dl_call *call);

/* Record the per-target failures of `call` in the context's detail (and
 * the first server error code in x->code) and return the status for the
 * whole call: DLOCK_OK if enough targets answered, else the first failure
 * (one server) or DLOCK_ENOQUORUM (Redlock). */
DL_INTERNAL int dl_call_error(dl_ctx *x, const dl_call *call, const char *what);

#endif
