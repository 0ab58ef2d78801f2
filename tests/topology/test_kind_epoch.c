/* test_kind_epoch.c - issue 10 §4, "Fences must keep rising across
 * failovers", for the other kinds: on Sentinel and Cluster every fence
 * carries the issuing master's failover epoch in its high bits
 * (docs/FAILOVER.md), so a deposed master can only issue fences below its
 * successor's. The mutex scripts take that floor; the kinds' scripts
 * (kinds.lua.h) did not: their fences were the bare counter + 1.
 *
 * For a semaphore permit (a direct grant and one admitted by a release),
 * an rw writer and a first reader, and a multi-lock (a direct grant and a
 * name a multi-lock's release hands to a mutex waiter), the fence's bits
 * above 2^40 must be the epoch of the master that issued it, also when the
 * counter is behind (set back before each release, as a replica that had
 * not caught up would have it):
 *   1. on a 3-master Cluster: the owner's configEpoch (CLUSTER INFO);
 *   2. on Sentinel after a failover (SENTINEL FAILOVER): the master's
 *      config-epoch.
 * Waiters are blocking calls in child processes (the async API refuses
 * Sentinel and Cluster URLs). */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "topo.h"

#define SHIFT 40

typedef struct shared {
    _Atomic int64_t fence;
} shared;

static shared *g_sh;
static const char *g_url;
static const char *g_wait_name;
static int g_wait_kind; /* 0 a mutex, 1 a semaphore permit of 1 */

static int64_t fence_of(dlock_lock *l) {
    dlock_info i;
    dlock_info_get(l, &i);
    return i.fence;
}

static void expect_epoch(const char *what, int64_t fence, int64_t epoch) {
    printf("%s: fence %" PRId64 " (epoch bits %" PRId64 ", want %" PRId64 ")\n", what, fence,
           fence >> SHIFT, epoch);
    if (fence <= 0 || fence >> SHIFT != epoch)
        TH_FAIL("%s: fence %" PRId64 " does not carry epoch %" PRId64, what, fence, epoch);
}

#define OK(c, expr)                                                                       \
    do {                                                                                  \
        int ok_rc_ = (expr);                                                              \
        if (ok_rc_ != DLOCK_OK)                                                           \
            TH_FAIL("%s: %s: %s", #expr, dlock_err_name(ok_rc_), dlock_client_errstr(c)); \
    } while (0)

/* A waiter in a child process: reports the fence it was handed. */
static int waiter(void *arg) {
    (void)arg;
    dlock_client *c = tt_client(g_url, 1000, 2000);
    dlock_lock *l = NULL;
    int rc = g_wait_kind ? dlock_sem_wait(c, g_wait_name, 1, 20000, 10000, &l)
                         : dlock_wait(c, g_wait_name, 20000, 10000, &l);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "waiter: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
        return 1;
    }
    atomic_store(&g_sh->fence, fence_of(l));
    dlock_release(l);
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}

/* Start a waiter for `name` and wait until it is queued in `qkey` on s. */
static pid_t queue_waiter(th_server *s, const char *name, int kind, const char *qkey) {
    g_wait_name = name;
    g_wait_kind = kind;
    atomic_store(&g_sh->fence, 0);
    pid_t p = th_spawn(waiter, NULL);
    TH_CHECK(p > 0);
    long long end = th_now_us() + 10000000;
    while (th_server_int(s, "ZCARD %s", qkey) < 1 && th_now_us() < end)
        th_sleep_ms(5);
    TH_EQ_INT(th_server_int(s, "ZCARD %s", qkey), 1);
    return p;
}

/* The counter of `name` set back to 5, as a replica that was behind would
 * have it after a failover: a hand-over must still issue a fence at the
 * master's floor. */
static void counter_behind(th_server *s, const char *name) {
    char key[96];
    snprintf(key, sizeof key, "dlock:{%s}:fence", name);
    redisReply *r = th_server_cmd(s, "SET %s 5", key);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

/* Each kind's fences on the master `s` of every name below, whose epoch
 * is `epoch`. Names: tag "{t}" keeps them in one slot. */
static void kinds(dlock_client *c, th_server *s, int64_t epoch, const char *t) {
    char sem[64], rw[64], rd[64], ma[64], mb[64], q[96];
    snprintf(sem, sizeof sem, "{%s}sem", t);
    snprintf(rw, sizeof rw, "{%s}rw", t);
    snprintf(rd, sizeof rd, "{%s}rd", t);
    snprintf(ma, sizeof ma, "{%s}ma", t);
    snprintf(mb, sizeof mb, "{%s}mb", t);
    dlock_lock *l = NULL;
    OK(c, dlock_sem_try_acquire(c, sem, 1, 10000, &l));
    expect_epoch("semaphore permit", fence_of(l), epoch);
    snprintf(q, sizeof q, "dlock:{%s}:pq", sem);
    pid_t w = queue_waiter(s, sem, 1, q);
    counter_behind(s, sem);
    OK(c, dlock_release(l));
    dlock_lock_free(l);
    TH_EQ_INT(th_wait(w, 20000), 0);
    expect_epoch("semaphore permit admitted by a release", atomic_load(&g_sh->fence), epoch);

    OK(c, dlock_rw_try_acquire(c, rw, DLOCK_EXCLUSIVE, 10000, &l));
    expect_epoch("rw writer", fence_of(l), epoch);
    OK(c, dlock_release(l));
    dlock_lock_free(l);
    OK(c, dlock_rw_try_acquire(c, rd, DLOCK_SHARED, 10000, &l));
    expect_epoch("rw reader, the first on its name", fence_of(l), epoch);
    OK(c, dlock_release(l));
    dlock_lock_free(l);

    const char *names[2] = {ma, mb};
    OK(c, dlock_multi_try_acquire(c, names, 2, 10000, &l));
    for (int i = 0; i < 2; i++) {
        int64_t f;
        dlock_lock_name_at(l, i, NULL, &f);
        expect_epoch(i == 0 ? "multi-lock, first name" : "multi-lock, second name", f, epoch);
    }
    snprintf(q, sizeof q, "dlock:{%s}:q", mb);
    w = queue_waiter(s, mb, 0, q);
    counter_behind(s, mb);
    OK(c, dlock_release(l));
    dlock_lock_free(l);
    TH_EQ_INT(th_wait(w, 20000), 0);
    expect_epoch("name handed over by a multi-lock's release", atomic_load(&g_sh->fence), epoch);
}

static int64_t info_field(th_server *s, const char *field) {
    redisReply *r = th_server_cmd(s, "CLUSTER INFO");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, field);
    TH_CHECK(p != NULL);
    int64_t v = strtoll(p + strlen(field), NULL, 10);
    freeReplyObject(r);
    return v;
}

static void cluster(void) {
    tt_cluster *k = tt_cluster_start(3);
    TH_CHECK(k != NULL);
    g_url = k->url;
    dlock_client *c = tt_client(k->url, 1000, 2000);
    for (int node = 0; node < 3; node++) {
        /* Every "{t}..." hashes as "{t": one slot; find a t on this node. */
        char t[32], probe[48];
        int owner = -1;
        for (int i = 0; i < 500 && owner != node; i++) {
            snprintf(t, sizeof t, "t%d", i);
            snprintf(probe, sizeof probe, "{%s}sem", t);
            owner = tt_cluster_owner(k, 0, tt_lock_slot("dlock:", probe));
        }
        TH_EQ_INT(owner, node);
        int64_t epoch = info_field(k->node[owner], "cluster_my_epoch:");
        printf("cluster: names {%s}... on node %d, configEpoch %" PRId64 "\n", t, owner, epoch);
        TH_CHECK(epoch >= 1);
        kinds(c, k->node[owner], epoch, t);
    }
    dlock_client_free(c);
    tt_cluster_free(k);
}

/* The master's config-epoch as sentinel 0 reports it. */
static int64_t sentinel_epoch(tt_sentinels *g) {
    redisContext *sc = th_connect(g->sport[0], 2000);
    TH_CHECK(sc != NULL);
    redisReply *r = redisCommand(sc, "SENTINEL MASTER %s", TT_MASTER_NAME);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY);
    int64_t e = -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "config-epoch") == 0)
            e = strtoll(r->element[i + 1]->str, NULL, 10);
    freeReplyObject(r);
    redisFree(sc);
    return e;
}

static void sentinel(void) {
    tt_sentinels *g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    g_url = g->url;
    th_server *r = g->data[1];
    TH_EQ_INT(tt_wait_replica_acks(g->data[0], "sync", 1, 5000), 0);
    redisContext *sc = th_connect(g->sport[0], 2000);
    TH_CHECK(sc != NULL);
    redisReply *x = redisCommand(sc, "SENTINEL FAILOVER %s", TT_MASTER_NAME);
    TH_CHECK(x != NULL && x->type == REDIS_REPLY_STATUS);
    freeReplyObject(x);
    redisFree(sc);
    TH_EQ_INT(tt_sentinels_wait_master(g, th_server_port(r), 20000), 0);
    int64_t epoch = sentinel_epoch(g);
    printf("sentinel: master %d after a failover, config-epoch %" PRId64 "\n", th_server_port(r),
           epoch);
    TH_CHECK(epoch >= 1);
    dlock_client *c = tt_client(g->url, 1000, 2000);
    kinds(c, r, epoch, "s");
    dlock_client_free(c);
    tt_sentinels_free(g);
}

int main(void) {
    th_test_init(85);
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    TH_CHECK(g_sh != MAP_FAILED);
    cluster();
    sentinel();
    printf("test_kind_epoch: ok\n");
    return 0;
}
