/* test_sentinel_failover.c - issue 10 §4, "Fences must keep rising across
 * failovers" and "Release to the deposed master", on a real Sentinel group
 * (master + replica + 3 sentinels, down-after 1 s).
 *
 * 1. The scenario: a holder and three waiters queued on the
 *    master; the master is paused past down-after-milliseconds, Sentinel
 *    promotes the replica, the old master resumes and still answers as
 *    master; the holder (who never noticed) releases there, handing the
 *    lock to a waiter on the deposed master, while the other waiters end
 *    up on the new one. Every fence goes to a fence-checking store: they
 *    must never repeat or go back (they did: the two masters issued the
 *    same numbers), and the store must accept every commit.
 * 2. A holder whose keepalive moved to the new master after the old one
 *    was killed releases after the old master came back (restarted,
 *    empty, still a master until Sentinel reconfigures it): the release
 *    must reach the new master (it went to the old address: a false
 *    "not held", and the lease stayed). */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "topo.h"

typedef struct shared {
    _Atomic int n;
    int64_t fence[16];
    int accepted[16];
} shared;

static shared *g_sh;
static const char *g_url;
static int g_store_port;
static th_server *g_store;
static void check_store(int want);

/* Accepts a write only with a fence above every fence it accepted; keeps
 * every fence offered, in order, in store:seen. */
static const char STORE[] = "redis.call('RPUSH', KEYS[2], ARGV[1])\n"
                            "local cur = redis.call('GET', KEYS[1]) or '0'\n"
                            "local f = ARGV[1]\n"
                            "if #f > #cur or (#f == #cur and f > cur) then\n"
                            "  redis.call('SET', KEYS[1], f)\n"
                            "  return 1\n"
                            "end\n"
                            "return 0\n";

static void commit(int64_t fence) {
    redisContext *st = th_connect(g_store_port, 2000);
    TH_CHECK(st != NULL);
    redisReply *r = redisCommand(st, "EVAL %s 2 store:last store:seen %lld", STORE,
                                 (long long)fence);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    int k = atomic_fetch_add(&g_sh->n, 1);
    g_sh->fence[k] = fence;
    g_sh->accepted[k] = (int)r->integer;
    freeReplyObject(r);
    redisFree(st);
}

static int64_t fence_of(dlock_lock *l) {
    dlock_info i;
    dlock_info_get(l, &i);
    return i.fence;
}

/* A waiter: waits for "f", commits its fence, holds it a moment. */
static int waiter(void *arg) {
    (void)arg;
    dlock_client *c = tt_client(g_url, 300, 500);
    dlock_lock *l = NULL;
    int rc = dlock_wait(c, "f", 40000, 3000, &l);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "waiter: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
        return 1;
    }
    int64_t f = fence_of(l);
    commit(f);
    printf("waiter %d: fence %" PRId64 " (epoch %" PRId64 ")\n", (int)getpid(), f, f >> 40);
    th_sleep_ms(200);
    dlock_release(l); /* on a deposed master this may find nothing: fine */
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}

static th_server *other(tt_sentinels *g, th_server *m) {
    return g->data[0] == m ? g->data[1] : g->data[0];
}

static void sentinels_signal(tt_sentinels *g, int sig) {
    for (int i = 0; i < g->nsent; i++)
        TH_EQ_INT(kill(g->spid[i], sig), 0);
}

/* 1: the scenario. While the old master is back and not yet
 * demoted (the sentinels are held still, as they were for ~10 s in the
 * issue), the holder and a waiter that never noticed the failover use it
 * (sentinel_watch=off: a watching client is told of the switch, see
 * test_sentinel_watch.c); then a new client takes the lock on the new
 * master. */
static void pause_scenario(tt_sentinels *g) {
    th_server *m = g->data[0], *r = g->data[1];
    dlock_client *h = tt_client(g_url, 300, 500);
    dlock_lock *hl = NULL;
    TH_EQ_INT(dlock_acquire(h, "f", 4000, &hl), DLOCK_OK);
    commit(fence_of(hl));
    pid_t w[2];
    w[0] = th_spawn(waiter, NULL);
    TH_CHECK(w[0] > 0);
    long long end = th_now_us() + 10000000;
    while (th_server_int(m, "ZCARD %s", "dlock:{f}:q") < 1 && th_now_us() < end)
        th_sleep_ms(10);
    TH_EQ_INT(th_server_int(m, "ZCARD %s", "dlock:{f}:q"), 1);
    TH_EQ_INT(tt_wait_replica_acks(m, "sync-f", 1, 5000), 0);
    TH_EQ_INT(th_server_pause(m), 0);
    long long t0 = th_now_us();
    TH_EQ_INT(tt_sentinels_wait_master(g, th_server_port(r), 20000), 0);
    printf("promoted %d after %.1f s of pause\n", th_server_port(r), (th_now_us() - t0) / 1e6);
    sentinels_signal(g, SIGSTOP);
    TH_EQ_INT(th_server_resume(m), 0);
    /* The holder never noticed: its release goes to the old master. */
    int rc = dlock_release(hl);
    printf("holder's release on the deposed master: %s\n", dlock_err_name(rc));
    dlock_lock_free(hl);
    dlock_client_free(h);
    end = th_now_us() + 3000000;
    while (atomic_load(&g_sh->n) < 2 && th_now_us() < end)
        th_sleep_ms(10);
    printf("commits while the old master answered: %d\n", atomic_load(&g_sh->n) - 1);
    sentinels_signal(g, SIGCONT);
    /* A client that starts now finds the new master. */
    w[1] = th_spawn(waiter, NULL);
    TH_CHECK(w[1] > 0);
    for (int i = 0; i < 2; i++)
        TH_EQ_INT(th_wait(w[i], 50000), 0);
    check_store(3);
}

/* What the store saw, in order: never a repeat, never a step back, and
 * every commit accepted (a legitimate holder's write is never refused). */
static void check_store(int want) {
    redisReply *seen = th_server_cmd(g_store, "LRANGE %s 0 -1", "store:seen");
    TH_CHECK(seen != NULL && seen->type == REDIS_REPLY_ARRAY);
    printf("fences offered to the store, in order:");
    for (size_t i = 0; i < seen->elements; i++)
        printf(" %s", seen->element[i]->str);
    printf("\n");
    TH_EQ_INT(seen->elements, want);
    long long prev = 0;
    for (size_t i = 0; i < seen->elements; i++) {
        long long v = strtoll(seen->element[i]->str, NULL, 10);
        if (v <= prev)
            TH_FAIL("fence %lld offered after %lld: repeated or gone back", v, prev);
        prev = v;
    }
    freeReplyObject(seen);
    for (int i = 0; i < atomic_load(&g_sh->n); i++)
        if (!g_sh->accepted[i])
            TH_FAIL("the store refused fence %" PRId64, g_sh->fence[i]);
}

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    *(int *)ud = status;
}

/* 2: the keepalive follows the failover; the release must follow it too,
 * even once the old master is back at its old address. */
static void release_scenario(tt_sentinels *g) {
    th_server *m = g->data[0], *r = other(g, m);
    dlock_client *h = tt_client(g_url, 300, 500);
    dlock_lock *l = NULL;
    int lost = 0;
    TH_EQ_INT(dlock_acquire(h, "k", 15000, &l), DLOCK_OK);
    TH_EQ_INT(dlock_keepalive_start(l, 500, on_lost, &lost), DLOCK_OK);
    TH_EQ_INT(tt_wait_replica_acks(m, "sync-k", 1, 5000), 0);
    TH_EQ_INT(th_server_kill(m), 0);
    TH_EQ_INT(tt_sentinels_wait_master(g, th_server_port(r), 20000), 0);
    /* The keepalive extends on the new master. */
    long long end = th_now_us() + 10000000;
    while (th_server_int(r, "PTTL %s", "dlock:{k}") < 14700 && th_now_us() < end)
        th_sleep_ms(20);
    TH_CHECK(th_server_int(r, "PTTL %s", "dlock:{k}") >= 14700);
    TH_EQ_INT(lost, 0);
    TH_EQ_INT(th_server_restart(m), 0); /* empty, and a master for now */
    int rc = dlock_release(l);
    printf("release after the old master came back: %s: %s\n", dlock_err_name(rc),
           rc ? dlock_client_errstr(h) : "");
    TH_EQ_INT(rc, DLOCK_OK);
    TH_EQ_INT(th_server_int(r, "EXISTS %s", "dlock:{k}"), 0);
    dlock_lock_free(l);
    dlock_client_free(h);
}

int main(void) {
    th_test_init(85);
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    TH_CHECK(g_sh != MAP_FAILED);
    th_server *store = th_server_start(NULL);
    TH_CHECK(store != NULL);
    g_store = store;
    g_store_port = th_server_port(store);
    tt_sentinels *g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    /* Clients that do not watch the sentinels' +switch-master (as one whose
     * subscription was down at the switch): they keep using the deposed
     * master, which is what this scenario is about. */
    static char off[700];
    snprintf(off, sizeof off, "%s?sentinel_watch=off", g->url);
    g_url = off;
    pause_scenario(g);
    tt_sentinels_free(g);
    g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    g_url = g->url;
    release_scenario(g);
    tt_sentinels_free(g);
    th_server_free(store);
    return 0;
}
