/* quorum.h - one logical operation over 1..N servers: what it sends (a
 * dl_req), what it learns (a dl_call), and how a call is read.
 *
 * The same command goes to every target at once (one round trip for a
 * Redlock set, not N), non-blocking (fan.h). A decider may end the wait
 * early once the outcome is settled. The per-server retries a caller
 * should never see are handled by the fan:
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
    /* Set when target why_at failed with no server to blame (the
     * topology's discovery failed: no master, no slot map): its reason.
     * conns[why_at] may then be NULL. Owned by whoever filled the call
     * (the fan). Only a routing topology discovers, and it gives one
     * target: one reason is enough. */
    const char *why;
    int why_at;
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
 * call then gives the rest a short grace and stops waiting for them (they
 * are marked unknown: their requests may yet run). */
typedef int (*dl_decided_fn)(const dl_call *call);
/* Says whether one target's reply is a "yes" for the operation. */
typedef int (*dl_yes_fn)(const redisReply *r);

/* Decider helper: settled once `yes` holds for a majority, or so many
 * targets have answered otherwise (or failed) that a majority of yes is no
 * longer possible. A "no" from one server never outvotes a slow "yes". */
DL_INTERNAL int dl_settled(const dl_call *call, dl_yes_fn yes);
/* Decider for plain commands (PING, WAIT): any majority of answers. */
DL_INTERNAL int dl_decided_majority(const dl_call *call);

/* Record the per-target failures of `call` in the context's detail (and
 * the first server error code in x->code) and return the status for the
 * whole call: DLOCK_OK if enough targets answered, else the first failure
 * (one server: a failed discovery's reason as it is) or DLOCK_ENOQUORUM
 * (Redlock). */
DL_INTERNAL int dl_call_error(dl_ctx *x, const dl_call *call, const char *what);

#endif
