/* topo.h - deployments for the topology tests, built on loopback with the
 * harness (tests/harness/harness.h): a Sentinel group (master + replica +
 * sentinels), a small Redis Cluster, and a scripted fake server that answers
 * whatever a test wants (hostile replies).
 *
 * Everything started here is registered with the harness (servers through
 * th_server_start, sentinels through th_spawn), so it is killed and its files
 * removed on exit, on the test timeout and on signals.
 */
#ifndef DLOCK_TEST_TOPO_H
#define DLOCK_TEST_TOPO_H

#include <stddef.h>
#include <sys/types.h>

#include "dlock.h"
#include "harness.h"

#define TT_MAX_SENTINELS 5
#define TT_MAX_NODES 6
#define TT_MASTER_NAME "mymaster"

/* ---- Sentinel ------------------------------------------------------------ */

typedef struct tt_sentinels {
    th_server *data[2]; /* [0] the first master, [1] its replica */
    int nsent;
    int sport[TT_MAX_SENTINELS];
    pid_t spid[TT_MAX_SENTINELS];
    char url[512]; /* redis-sentinel://127.0.0.1:P1,.../mymaster */
} tt_sentinels;

/* Starts a master, one replica of it (in sync) and nsent sentinels
 * monitoring it (quorum 2, down-after 1000 ms, failover-timeout 3000 ms),
 * and waits until every sentinel knows the replica and the other sentinels.
 * Returns NULL on failure (message printed). */
tt_sentinels *tt_sentinels_start(int nsent);
/* Kills the sentinels and the data servers, frees g. NULL is ignored. */
void tt_sentinels_free(tt_sentinels *g);
/* The master's port as sentinel i reports it, or -1. */
int tt_sentinel_master_port(tt_sentinels *g, int i);
/* The master's config-epoch as sentinel i reports it (every failover
 * raises it), or -1. */
long long tt_sentinel_config_epoch(tt_sentinels *g, int i);
/* Waits until every live sentinel reports `port` as the master and the
 * server there says ROLE master. Returns 0, or -1 after timeout_ms. */
int tt_sentinels_wait_master(tt_sentinels *g, int port, int timeout_ms);
/* The data server listening on port, or NULL. */
th_server *tt_sentinels_server(tt_sentinels *g, int port);
/* Waits until the server's replication link is up (it is a replica in
 * sync). Returns 0 or -1. */
int tt_wait_replica_synced(th_server *s, int timeout_ms);
/* Waits until n replicas of master m acknowledge a write (SET key, then
 * WAIT): right after a sync a replica is "online" but the master starts its
 * command stream only on the replica's first ACK (up to a second later), so
 * WAIT does not count it yet. Returns 0 or -1. */
int tt_wait_replica_acks(th_server *m, const char *key, int n, int timeout_ms);

/* ---- Cluster ------------------------------------------------------------- */

typedef struct tt_cluster {
    int n;       /* nodes */
    int masters; /* nodes serving slots when the cluster was made */
    th_server *node[TT_MAX_NODES];
    char id[TT_MAX_NODES][48];
    char url[512]; /* redis-cluster://127.0.0.1:P1,... */
} tt_cluster;

/* Starts n (3..TT_MAX_NODES) masters with --cluster-enabled, joins them with
 * `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes` and
 * waits until every node says cluster_state:ok and agrees on the slots.
 * Returns NULL on failure. */
tt_cluster *tt_cluster_start(int n);
/* Same with `replicas` replicas per master (n = masters * (1 + replicas)
 * nodes); also waits until every replica is in sync. */
tt_cluster *tt_cluster_start_replicated(int masters, int replicas);
void tt_cluster_free(tt_cluster *k);
/* Index of the node that serves `slot` according to node `ask` (its CLUSTER
 * SLOTS), or -1. */
int tt_cluster_owner(tt_cluster *k, int ask, int slot);
/* Index of the node whose port is `port`, or -1. */
int tt_cluster_index(tt_cluster *k, int port);
/* The slot-migration steps of `redis-cli --cluster reshard`, for one slot,
 * in three parts so a test can act in between:
 *   begin:  target SETSLOT IMPORTING source, source SETSLOT MIGRATING target;
 *   keys:   MIGRATE every key of the slot from source to target;
 *   finish: SETSLOT NODE target on the target, the source and the other
 *           masters (replicas follow their masters).
 * Each returns 0 or -1 (message printed). */
int tt_slot_begin(tt_cluster *k, int slot, int from, int to);
int tt_slot_keys(tt_cluster *k, int slot, int from, int to);
int tt_slot_finish(tt_cluster *k, int slot, int to);

/* ---- helpers --------------------------------------------------------------- */

/* A 127.0.0.1 port nobody listens on right now, or -1. */
int tt_free_port(void);
/* "name" such that the key "<prefix>{name}" lies in a slot served by node
 * `want` of k (checked with the library's dl_key_slot); written to out.
 * tag makes different calls give different names. Returns the slot, -1. */
int tt_name_on_node(tt_cluster *k, int want, const char *prefix, const char *tag, char *out,
                    size_t outlen);
/* A name (tagged) whose lock key lies in `slot`. Returns 0 or -1. */
int tt_name_in_slot(int slot, const char *prefix, const char *tag, char *out, size_t outlen);
/* Slot of the lock key of `name` ("<prefix>{name}"). */
int tt_lock_slot(const char *prefix, const char *name);
/* INFO commandstats: calls of `cmd` (lower case, e.g. "asking") on s, or -1. */
long tt_cmd_calls(th_server *s, const char *cmd);

/* A client for url with these timeouts (other options default); fails the
 * test if it cannot be created. */
static inline dlock_client *tt_client(const char *url, int connect_ms, int command_ms) {
    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = connect_ms;
    o.command_timeout_ms = command_ms;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    if (rc != DLOCK_OK)
        TH_FAIL("dlock_client_new(%s): %s: %s", url, dlock_err_name(rc), dlock_client_errstr(c));
    return c;
}

/* What an async operation ended with (tt_on_done records it). */
typedef struct tt_res {
    int done, status;
    dlock_lock *lock;
} tt_res;

static inline void tt_on_done(const dlock_result *r, void *ud) {
    tt_res *o = (tt_res *)ud;
    o->done = 1;
    o->status = r->status;
    o->lock = r->status == DLOCK_OK ? r->lock : NULL;
}

/* ---- fake server ------------------------------------------------------------ */

/* Given one request (one RESP command, or the whole chunk read if it is not
 * a well-formed command), returns the raw bytes to answer with (*outlen set;
 * 0 bytes: answer nothing, keep the connection), or NULL to close the
 * connection. Called on the fake's thread. */
typedef const char *(*tt_fake_fn)(const char *req, size_t len, size_t *outlen, void *ud);

typedef struct tt_fake tt_fake;
tt_fake *tt_fake_start(tt_fake_fn fn, void *ud);
int tt_fake_port(const tt_fake *f);
long tt_fake_requests(tt_fake *f);
void tt_fake_stop(tt_fake *f);

#endif
