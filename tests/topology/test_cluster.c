/* test_cluster.c - dlock over a 3-master Redis Cluster on loopback.
 *
 *   1. names in every master's slots: acquire / extend / inspect / release,
 *      and each lock lives on the master that serves its slot;
 *   2. many names spread over all masters;
 *   3. a slot holding a held lock (with a queued waiter in another process)
 *      is migrated by hand, as `redis-cli --cluster reshard` does: a new name
 *      of that slot accessed mid-migration is redirected with ASK, the held
 *      lock is released through ASK (after SCRIPT FLUSH on the target, so
 *      NOSCRIPT follows the ASK), the waiter gets it with the next fence,
 *      and after the slot moved the client follows MOVED;
 *   4. mutual exclusion: 8 processes, each with its own client, increment a
 *      counter in the lock's slot with a non-atomic GET/SET under the lock:
 *      no lost update, and fences strictly increase in acquisition order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlock.h"
#include "harness.h"
#include "engine.h"
#include "topo.h"


static tt_cluster *K;

static dlock_client *client(const char *url) { return tt_client(url, 500, 2000); }

/* The fence node `node` issues after `prev`: one more, but never below its
 * failover floor (its configEpoch * 2^40, docs/FAILOVER.md). */
static int64_t next_fence(int node, int64_t prev) {
    redisReply *r = th_server_cmd(K->node[node], "CLUSTER INFO");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "cluster_my_epoch:");
    TH_CHECK(p != NULL);
    int64_t floor = (int64_t)strtoll(p + 17, NULL, 10) << 40;
    freeReplyObject(r);
    return prev + 1 > floor ? prev + 1 : floor;
}

/* 1 if the lock key of `name` is stored on node, 0 if not (also when the
 * node redirects: the slot is not its own). */
static long long exists_on(int node, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    redisReply *r = th_server_cmd(K->node[node], "EXISTS %s", key);
    TH_CHECK(r != NULL);
    long long v = -1;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0)
        v = 0;
    else
        TH_FAIL("EXISTS %s on node %d: unexpected reply", key, node);
    freeReplyObject(r);
    return v;
}

static void expect_ok(dlock_client *c, int rc, const char *what) {
    if (rc != DLOCK_OK)
        TH_FAIL("%s: %s: %s", what, dlock_err_name(rc), dlock_client_errstr(c));
}

/* ---- 1 + 2: names on every master ---- */

static void every_master(dlock_client *c) {
    for (int i = 0; i < K->n; i++) {
        char name[64], tag[16];
        snprintf(tag, sizeof tag, "node%d", i);
        int slot = tt_name_on_node(K, i, "dlock:", tag, name, sizeof name);
        TH_CHECK(slot >= 0);
        dlock_lock *l = NULL;
        expect_ok(c, dlock_try_acquire(c, name, 30000, &l), "acquire");
        for (int j = 0; j < K->n; j++)
            TH_EQ_INT(exists_on(j, name), j == i ? 1 : 0);
        expect_ok(c, dlock_extend(l, 60000), "extend");
        dlock_holder h;
        expect_ok(c, dlock_inspect(c, name, &h), "inspect");
        TH_EQ_INT(h.locked, 1);
        TH_EQ_INT(h.fence, next_fence(i, 0));
        TH_CHECK(h.pttl_ms > 30000);
        dlock_info info;
        TH_EQ_INT(dlock_info_get(l, &info), DLOCK_OK);
        TH_EQ_STR(h.token, info.token);
        dlock_lock *busy = NULL;
        TH_EQ_INT(dlock_try_acquire(c, name, 1000, &busy), DLOCK_EBUSY);
        expect_ok(c, dlock_release(l), "release");
        TH_EQ_INT(dlock_release(l), DLOCK_ENOTHELD);
        int locked = -1;
        expect_ok(c, dlock_is_locked(c, name, &locked, NULL), "is_locked");
        TH_EQ_INT(locked, 0);
        dlock_lock_free(l);
        printf("node %d (port %d): lock '%s' in slot %d ok\n", i, th_server_port(K->node[i]),
               name, slot);
    }
    /* Many names: all masters get some. */
    enum { N = 300 };
    int per[TT_MAX_NODES] = {0};
    dlock_lock *ls[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "spread-%d", i);
        expect_ok(c, dlock_try_acquire(c, name, 30000, &ls[i]), "acquire spread");
        int owner = -1;
        for (int j = 0; j < K->n; j++)
            if (exists_on(j, name) == 1) {
                TH_CHECK(owner < 0);
                owner = j;
            }
        TH_CHECK(owner >= 0);
        per[owner]++;
    }
    for (int i = 0; i < N; i++) {
        expect_ok(c, dlock_release(ls[i]), "release spread");
        dlock_lock_free(ls[i]);
    }
    printf("%d names over the masters:", N);
    for (int j = 0; j < K->n; j++) {
        printf(" %d", per[j]);
        TH_CHECK(per[j] >= N / 10);
    }
    printf("\n");
    dl_cluster_stats st;
    dl_client_cluster_stats(c, &st);
    printf("stats: moved %ld asks %ld tryagain %ld refreshes %ld nodes %d\n", st.moved, st.asks,
           st.tryagain, st.refreshes, st.nodes);
    TH_EQ_INT(st.moved, 0); /* the map was right from the start */
    TH_EQ_INT(st.refreshes, 1);
}

/* Keepalive: one lock on each master, extended together by the keepalive
 * thread (one pipelined round over several nodes). */
static void keepalive(dlock_client *c) {
    dlock_lock *ls[TT_MAX_NODES];
    char names[TT_MAX_NODES][64];
    for (int i = 0; i < K->n; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "ka%d", i);
        TH_CHECK(tt_name_on_node(K, i, "dlock:", tag, names[i], sizeof names[i]) >= 0);
        expect_ok(c, dlock_try_acquire(c, names[i], 600, &ls[i]), "acquire for keepalive");
        TH_EQ_INT(dlock_keepalive_start(ls[i], 150, NULL, NULL), DLOCK_OK);
    }
    th_sleep_ms(1500); /* 2.5 leases */
    for (int i = 0; i < K->n; i++) {
        TH_CHECK(dlock_held(ls[i]));
        TH_EQ_INT(exists_on(i, names[i]), 1);
        dlock_holder h;
        expect_ok(c, dlock_inspect(c, names[i], &h), "inspect kept-alive");
        TH_EQ_INT(h.locked, 1);
        dlock_keepalive_stop(ls[i]);
        expect_ok(c, dlock_release(ls[i]), "release kept-alive");
        dlock_lock_free(ls[i]);
    }
    printf("keepalive: %d locks on %d masters kept for 2.5 leases\n", K->n, K->n);
}

/* ---- 3: slot migration ---- */

typedef struct waiter_arg {
    const char *url;
    const char *name;
    int64_t expect_fence;
} waiter_arg;

static int waiter(void *p) {
    waiter_arg *a = p;
    dlock_client *c = client(a->url);
    dlock_lock *l = NULL;
    long long t = th_now_us();
    int rc = dlock_wait(c, a->name, 20000, 10000, &l);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "waiter: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
        return 2;
    }
    dlock_info info;
    dlock_info_get(l, &info);
    printf("waiter: got '%s' with fence %" PRId64 " after %.2f s\n", a->name, info.fence,
           (th_now_us() - t) / 1e6);
    if (info.fence != a->expect_fence) {
        fprintf(stderr, "waiter: fence %" PRId64 ", expected %" PRId64 "\n", info.fence,
                a->expect_fence);
        return 3;
    }
    rc = dlock_release(l);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "waiter: release: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
        return 4;
    }
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}

static void migrate(dlock_client *c) {
    const int src = 0, dst = 1;
    char lname[64], mname[64];
    int slot = tt_name_on_node(K, src, "dlock:", "mig-held", lname, sizeof lname);
    TH_CHECK(slot >= 0);
    TH_EQ_INT(tt_name_in_slot(slot, "dlock:", "mig-new", mname, sizeof mname), 0);
    printf("migrating slot %d (locks '%s' held, '%s' new) from port %d to %d\n", slot, lname,
           mname, th_server_port(K->node[src]), th_server_port(K->node[dst]));

    dlock_lock *l = NULL;
    expect_ok(c, dlock_try_acquire(c, lname, 30000, &l), "acquire held");
    dlock_info info;
    dlock_info_get(l, &info);
    int64_t f1 = info.fence;

    /* A waiter in another process queues behind us. */
    waiter_arg wa = {K->url, lname, next_fence(dst, f1)}; /* handed over on dst */
    pid_t wpid = th_spawn(waiter, &wa);
    TH_CHECK(wpid > 0);
    long long end = th_now_us() + 10000000LL;
    for (;;) {
        dlock_holder h;
        expect_ok(c, dlock_inspect(c, lname, &h), "inspect");
        if (h.waiters == 1)
            break;
        if (th_now_us() > end)
            TH_FAIL("the waiter never queued");
        th_sleep_ms(10);
    }

    dl_cluster_stats s0, s1, s2, s3;
    dl_client_cluster_stats(c, &s0);
    TH_EQ_INT(tt_slot_begin(K, slot, src, dst), 0);

    /* A new name of the migrating slot: its keys are on neither node, so the
     * source answers ASK; the target, asked with ASKING, refuses a multi-key
     * script whose keys it does not have with TRYAGAIN until the slot is
     * settled. The call must follow ASK and end with the server's word. */
    long asking0 = tt_cmd_calls(K->node[dst], "asking");
    dlock_lock *lm = NULL;
    long long t = th_now_us();
    int rc = dlock_try_acquire(c, mname, 30000, &lm);
    dl_client_cluster_stats(c, &s1);
    long asking1 = tt_cmd_calls(K->node[dst], "asking");
    printf("new name mid-migration: %s in %lld ms (%s); client asks %ld, tryagain %ld; "
           "ASKING on target %ld -> %ld\n",
           dlock_err_name(rc), (th_now_us() - t) / 1000, dlock_client_errstr(c),
           s1.asks - s0.asks, s1.tryagain - s0.tryagain, asking0, asking1);
    TH_CHECK(s1.asks > s0.asks);
    TH_CHECK(asking1 > asking0);
    /* A one-shot try during the migration: got it, or EBUSY saying why. */
    TH_CHECK(rc == DLOCK_OK || (rc == DLOCK_EBUSY && strstr(dlock_client_errstr(c), "migrating")));
    if (rc == DLOCK_OK) {
        expect_ok(c, dlock_release(lm), "release new");
        dlock_lock_free(lm);
    }

    /* Move the keys (lock, fence, queue) while the lock is held; forget the
     * target's scripts so the ASK'd call also meets NOSCRIPT. */
    redisReply *fr = th_server_cmd(K->node[dst], "SCRIPT FLUSH");
    TH_CHECK(fr != NULL && fr->type == REDIS_REPLY_STATUS);
    freeReplyObject(fr);
    TH_EQ_INT(tt_slot_keys(K, slot, src, dst), 0);
    TH_EQ_INT(th_server_int(K->node[src], "CLUSTER COUNTKEYSINSLOT %d", slot), 0);
    long long moved_keys = th_server_int(K->node[dst], "CLUSTER COUNTKEYSINSLOT %d", slot);
    TH_CHECK(moved_keys >= 2);

    /* Release through ASK: hands the lock to the waiter (on the target).
     * The target lost its scripts: ASKING + EVALSHA, NOSCRIPT, ASKING + EVAL. */
    long eval0 = tt_cmd_calls(K->node[dst], "eval");
    t = th_now_us();
    rc = dlock_release(l);
    dl_client_cluster_stats(c, &s2);
    long eval1 = tt_cmd_calls(K->node[dst], "eval");
    printf("release mid-migration (%lld keys moved): %s in %lld ms, asks +%ld, EVAL on target "
           "%ld -> %ld\n",
           moved_keys, dlock_err_name(rc), (th_now_us() - t) / 1000, s2.asks - s1.asks, eval0,
           eval1);
    expect_ok(c, rc, "release held mid-migration");
    TH_CHECK(s2.asks > s1.asks);
    TH_CHECK(eval1 > eval0);
    dlock_lock_free(l);

    TH_EQ_INT(tt_slot_finish(K, slot, dst), 0);
    TH_EQ_INT(th_wait(wpid, 15000), 0);

    /* The slot moved for good: our map still says src, src says MOVED. */
    dlock_lock *lm2 = NULL, *l2 = NULL;
    expect_ok(c, dlock_try_acquire(c, mname, 30000, &lm2), "acquire new after migration");
    dl_client_cluster_stats(c, &s3);
    TH_CHECK(s3.moved > s2.moved);
    TH_EQ_INT(exists_on(dst, mname), 1);
    TH_EQ_INT(exists_on(src, mname), 0);
    expect_ok(c, dlock_try_acquire(c, lname, 30000, &l2), "acquire held after migration");
    dlock_info_get(l2, &info);
    /* The fence counter moved with the slot (and importing the slot raised
     * dst's epoch: its floor). */
    TH_EQ_INT(info.fence, next_fence(dst, wa.expect_fence));
    TH_EQ_INT(exists_on(dst, lname), 1);
    expect_ok(c, dlock_release(lm2), "release");
    expect_ok(c, dlock_release(l2), "release");
    dlock_lock_free(lm2);
    dlock_lock_free(l2);
    dl_client_cluster_stats(c, &s3);
    printf("after migration: moved %ld asks %ld tryagain %ld refreshes %ld\n", s3.moved, s3.asks,
           s3.tryagain, s3.refreshes);
}

/* ---- 4: mutual exclusion ---- */

enum { WORKERS = 8, ROUNDS = 40 };

typedef struct mx_arg {
    const char *url;
    const char *name;
    int port; /* node that owns the lock's slot */
} mx_arg;

static int mx_worker(int idx, void *p) {
    mx_arg *a = p;
    dlock_client *c = client(a->url);
    redisContext *r = th_connect(a->port, 5000);
    if (r == NULL)
        return 2;
    char counter[128], fences[128];
    snprintf(counter, sizeof counter, "{%s}counter", a->name);
    snprintf(fences, sizeof fences, "{%s}fences", a->name);
    for (int i = 0; i < ROUNDS; i++) {
        dlock_lock *l = NULL;
        int rc = dlock_wait(c, a->name, 30000, 5000, &l);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "worker %d: wait: %s: %s\n", idx, dlock_err_name(rc),
                    dlock_client_errstr(c));
            return 3;
        }
        dlock_info info;
        dlock_info_get(l, &info);
        redisReply *g = redisCommand(r, "GET %s", counter);
        if (g == NULL)
            return 4;
        long long v = g->type == REDIS_REPLY_STRING ? atoll(g->str) : 0;
        freeReplyObject(g);
        if (i % 8 == idx % 8)
            usleep(200); /* widen the window for a lost update */
        redisReply *s = redisCommand(r, "SET %s %lld", counter, v + 1);
        redisReply *f = redisCommand(r, "RPUSH %s %lld", fences, (long long)info.fence);
        if (s == NULL || f == NULL || s->type == REDIS_REPLY_ERROR || f->type == REDIS_REPLY_ERROR)
            return 5;
        freeReplyObject(s);
        freeReplyObject(f);
        if (!dlock_held(l)) {
            fprintf(stderr, "worker %d: lease ran out inside the critical section\n", idx);
            return 6;
        }
        rc = dlock_release(l);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "worker %d: release: %s: %s\n", idx, dlock_err_name(rc),
                    dlock_client_errstr(c));
            return 7;
        }
        dlock_lock_free(l);
    }
    redisFree(r);
    dlock_client_free(c);
    return 0;
}

static void mutex(void) {
    const char *name = "mx";
    int slot = tt_lock_slot("dlock:", name);
    int owner = tt_cluster_owner(K, 0, slot);
    TH_CHECK(owner >= 0);
    mx_arg a = {K->url, name, th_server_port(K->node[owner])};
    long long t = th_now_us();
    TH_EQ_INT(th_run_workers(WORKERS, mx_worker, &a, 60), 0);
    double secs = (th_now_us() - t) / 1e6;
    char counter[64], fences[64];
    snprintf(counter, sizeof counter, "{%s}counter", name);
    snprintf(fences, sizeof fences, "{%s}fences", name);
    redisReply *g = th_server_cmd(K->node[owner], "GET %s", counter);
    TH_CHECK(g != NULL && g->type == REDIS_REPLY_STRING);
    TH_EQ_INT(atoll(g->str), WORKERS * ROUNDS);
    freeReplyObject(g);
    redisReply *f = th_server_cmd(K->node[owner], "LRANGE %s 0 -1", fences);
    TH_CHECK(f != NULL && f->type == REDIS_REPLY_ARRAY);
    TH_EQ_INT(f->elements, WORKERS * ROUNDS);
    long long prev = 0;
    for (size_t i = 0; i < f->elements; i++) {
        long long v = atoll(f->element[i]->str);
        if (v <= prev)
            TH_FAIL("fence #%zu is %lld after %lld", i, v, prev);
        prev = v;
    }
    freeReplyObject(f);
    printf("mutex: %d workers x %d rounds on node %d (slot %d): counter %d, fences 1..%lld "
           "strictly increasing, %.2f s (%.0f handoffs/s)\n",
           WORKERS, ROUNDS, owner, slot, WORKERS * ROUNDS, prev, secs, WORKERS * ROUNDS / secs);
}

int main(void) {
    th_test_init(85);
    long long t0 = th_now_us();
    K = tt_cluster_start(3);
    TH_CHECK(K != NULL);
    printf("cluster up in %.1f s: %s\n", (th_now_us() - t0) / 1e6, K->url);
    dlock_client *c = client(K->url);
    TH_EQ_INT(dlock_client_ping(c), DLOCK_OK);
    long long t = th_now_us();
    every_master(c);
    printf("every master: %.2f s\n", (th_now_us() - t) / 1e6);
    keepalive(c);
    t = th_now_us();
    migrate(c);
    printf("migration: %.2f s\n", (th_now_us() - t) / 1e6);
    t = th_now_us();
    mutex();
    dlock_client_free(c);
    tt_cluster_free(K);
    printf("test_cluster: ok in %.1f s\n", (th_now_us() - t0) / 1e6);
    return 0;
}
