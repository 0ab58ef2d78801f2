/* internal.h - the client and lock structures shared by the library's layers.
 * Not installed. Layers call downward only: lock -> quorum -> topology -> conn. */
#ifndef DLOCK_INTERNAL_H
#define DLOCK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "conn.h"
#include "dlock.h"
#include "token.h"
#include "url.h"

#define DL_INTERNAL __attribute__((visibility("hidden")))

/* ---- topology: which servers a key's commands go to ---- */

typedef struct dl_cluster dl_cluster; /* topology.c, Redis Cluster state */
typedef struct dl_sentinel dl_sentinel;

typedef struct dl_topo {
    enum dl_url_kind kind;
    int n;          /* servers in `conns` (single: 1, Redlock: N) */
    dl_conn *conns; /* single / Redlock servers; Sentinel: the current master */
    dl_cluster *cluster;
    dl_sentinel *sentinel;
} dl_topo;

/* ---- one logical call over 1..N servers (quorum.c) ---- */

typedef struct dl_call {
    int n;      /* targets */
    int quorum; /* replies needed: n/2+1 */
    int nok;    /* targets that answered with a non-error reply */
    dl_conn *conns[DL_URL_MAX_HOSTS];
    redisReply *replies[DL_URL_MAX_HOSTS]; /* NULL where the target failed */
    int status[DL_URL_MAX_HOSTS];          /* per target: DLOCK_OK / EIO / ESERVER ... */
    int unknown[DL_URL_MAX_HOSTS];         /* 1: the command may have run but no reply came */
} dl_call;

enum dl_script_id { DL_S_ACQUIRE, DL_S_RELEASE, DL_S_EXTEND, DL_S_INSPECT, DL_S_CANCEL,
                    DL_S_FENCE, DL_NSCRIPTS };

/* ---- the client ---- */

struct dlock_client {
    dlock_options opts;
    char *prefix;
    size_t prefix_len;
    char *label;
    char url_redacted[512];
    dl_url url;
    dl_conn_cfg cfg;
    dl_topo topo;
    char host[256]; /* this process's host name, for owner metadata */
    long pid;
    char meta[600]; /* "host\tpid\tlabel", stored with every lock */
    size_t meta_len;
    uint64_t rng;
    dl_rand_pool pool; /* token randomness */
    char err[512];
    char sha[DL_NSCRIPTS][41]; /* EVALSHA digests */
    int64_t cap_us;           /* while > 0: no call may end later (dlock_wait) */
    int unusable;             /* dlock_client_new failed: that status */
    char unusable_why[512];
    struct dl_keepalive *ka; /* keepalive.c, created on first use */
    pthread_mutex_t ka_mu;   /* guards ka creation */
};

/* ---- the lock handle ---- */

struct dlock_lock {
    dlock_client *client;
    char *name;
    size_t name_len;
    char token[DL_TOKEN_HEX + 1];
    int64_t fence;
    int64_t ttl_ms;
    int64_t acquired_wall_ms;
    _Atomic int64_t valid_until_us; /* monotonic; 0 once released or lost */
    _Atomic int released;
    _Atomic int lost;
    /* keepalive (keepalive.c) */
    dlock_lost_fn on_lost;
    void *lost_ud;
};

/* Start of every public call on a client: clear the detail string, and
 * refuse a client whose creation failed (with the reason it failed). */
DL_INTERNAL int dl_begin(dlock_client *c);

/* error.c helpers */
DL_INTERNAL int dl_seterr(dlock_client *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
DL_INTERNAL void dl_clearerr(dlock_client *c);
DL_INTERNAL void dl_emit(dlock_client *c, dlock_event_type type, const char *name, int status,
                         int64_t fence, int64_t wait_us, int attempts);

/* Keys of one lock: all share the hash tag {name}. */
enum { DL_KEY_LOCK, DL_KEY_FENCE, DL_KEY_QUEUE, DL_KEY_QINFO, DL_NKEYS };
typedef struct dl_keys {
    char *buf; /* one allocation holding all keys */
    const char *k[DL_NKEYS];
    size_t len[DL_NKEYS];
    char small[4 * (DLOCK_NAME_MAX + 80)];
} dl_keys;
DL_INTERNAL int dl_keys_make(const dlock_client *c, const char *name, size_t name_len,
                             dl_keys *out);
static inline void dl_keys_free(dl_keys *k) { free(k->buf); }

/* lock.c: argument checks and reply helpers shared by the lock files. */
DL_INTERNAL int dl_check_name(dlock_client *c, const char *name, size_t *len);
DL_INTERNAL int dl_check_ttl(dlock_client *c, int64_t ttl_ms);
/* Integer value of an integer or numeric-string reply, else dflt. */
DL_INTERNAL int64_t dl_reply_int(const redisReply *r, int64_t dflt);
/* Element i of an array reply, or NULL. */
DL_INTERNAL const redisReply *dl_elem(const redisReply *r, size_t i);

/* topology.c */
DL_INTERNAL int dl_topo_init(dlock_client *c);
DL_INTERNAL void dl_topo_free(dl_topo *t);
/* Fill call->conns with the servers for `key`; sets n and quorum. */
DL_INTERNAL int dl_topo_targets(dlock_client *c, const char *key, size_t klen, dl_call *call);
/* A reply said the key lives elsewhere (MOVED/ASK) or the server is no
 * longer a master (READONLY), or (r == NULL) the connection to `from`
 * failed: update the topology. Returns 1 if the call
 * should be retried (and, for ASK, sets *asking). */
DL_INTERNAL int dl_topo_redirect(dlock_client *c, dl_conn *from, const redisReply *r,
                                 dl_conn **to, int *asking);
/* Per-call deadline: now + command timeout (+ connect timeout if needed). */
DL_INTERNAL int64_t dl_call_deadline(const dlock_client *c, const dl_call *call);

/* quorum.c: run one script on every target of keys->k[0], waiting for
 * every reply (or the deadline). */
DL_INTERNAL int dl_call_script(dlock_client *c, dl_call *call, enum dl_script_id id,
                               const dl_keys *keys, int nargs, const char **args,
                               const size_t *alens, int64_t deadline_us);
/* A decider says, from the replies so far, that the outcome is settled:
 * the call then stops waiting for the rest (their connections are closed
 * and marked unknown). */
typedef int (*dl_decided_fn)(const dl_call *call);
DL_INTERNAL int dl_call_script_q(dlock_client *c, dl_call *call, enum dl_script_id id,
                                 const dl_keys *keys, int nargs, const char **args,
                                 const size_t *alens, int64_t deadline_us,
                                 dl_decided_fn decided);
/* dl_call_script_q on the keys of lock `name` (built and freed here).
 * deadline_us 0: the default. Returns DLOCK_ENOMEM if the keys could not be
 * built, else as dl_call_script_q. */
DL_INTERNAL int dl_call_named(dlock_client *c, dl_call *call, enum dl_script_id id,
                              const char *name, size_t name_len, int nargs, const char **args,
                              const size_t *alens, int64_t deadline_us, dl_decided_fn decided);
/* Decider: a majority answered (any non-error reply). */
DL_INTERNAL int dl_decided_majority(const dl_call *call);
/* Run a plain command (argv) on every target of `key` (Redlock: until a
 * majority answered). */
DL_INTERNAL int dl_call_argv(dlock_client *c, dl_call *call, const char *key, size_t klen,
                             int argc, const char **argv, const size_t *lens,
                             int64_t deadline_us);
/* Record the first per-target failure of `call` in the client's detail
 * string and return the status for the whole call (ENOQUORUM for Redlock). */
DL_INTERNAL int dl_call_error(dlock_client *c, const dl_call *call, const char *what);

/* scripts.c */
DL_INTERNAL const char *dl_script_source(enum dl_script_id id, size_t *len);
/* Compute the SHA-1 of every script (for EVALSHA) into sha[id]. */
DL_INTERNAL void dl_scripts_digest(char sha[][41]);

/* client.c: a second client on the same deployment (own connections). */
DL_INTERNAL int dl_client_clone(const dlock_client *src, dlock_client **out);
/* (Re)compute c->meta from host, pid and label. */
DL_INTERNAL void dl_client_meta(dlock_client *c);

/* keepalive.c */
DL_INTERNAL void dl_keepalive_client_free(dlock_client *c);

#endif
