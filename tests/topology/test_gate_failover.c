/* test_gate_failover.c - the replica gate (?replicas=1) across a manual
 * Cluster failover (CLUSTER FAILOVER), found by the failover soak
 * (tests/faults/test_failover.c): a grant on the master, then its WAIT
 * reached the same node after the failover had made it a replica, which
 * refuses WAIT ("ERR WAIT cannot be used with replica instances"), or a
 * WAIT blocked there was cut by the demotion (UNBLOCKED). The acquire then
 * failed with DLOCK_ESERVER: a `dlock_wait` of 20 s gave up at once. The
 * grant's fate there is unknown, as after READONLY: the gate must give it
 * back and the wait take the lock again from the new master.
 *
 * 3 masters + 3 replicas; 4 processes take and release a lock in a tight
 * loop (dlock_wait or dlock_sem_wait, 10 s; two on a mutex, two on a
 * semaphore of one permit, in one slot) while the slot's master and
 * replica swap roles 4 times (CLUSTER FAILOVER; the masters vote for one
 * slot's failover at most once per two node timeouts, 4 s). No acquire may
 * fail. Each failover has a window between a grant's answer and its WAIT;
 * tight loops hit it a few times per failover. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "topo.h"

#define LOOPS 4
#define SWAPS 4
/* One slot ("{g" is the tag of both): a mutex and a semaphore. */
#define NAME "{g}mutex"
#define SEM "{g}sem"

typedef struct shared {
    _Atomic int stop;
    _Atomic long ok, failed;
    char first[300];
    _Atomic int first_set;
} shared;

static shared *g_sh;
static char g_url[700];

static int loop(void *arg) {
    int sem = arg != NULL;
    dlock_client *c = tt_client(g_url, 300, 1000);
    while (!atomic_load(&g_sh->stop)) {
        dlock_lock *l = NULL;
        int rc = sem ? dlock_sem_wait(c, SEM, 1, 10000, 5000, &l)
                     : dlock_wait(c, NAME, 10000, 5000, &l);
        if (rc != DLOCK_OK) {
            atomic_fetch_add(&g_sh->failed, 1);
            if (atomic_exchange(&g_sh->first_set, 1) == 0)
                snprintf(g_sh->first, sizeof g_sh->first, "%s: %s", dlock_err_name(rc),
                         dlock_client_errstr(c));
            continue;
        }
        atomic_fetch_add(&g_sh->ok, 1);
        dlock_release(l);
        dlock_lock_free(l);
    }
    dlock_client_free(c);
    return 0;
}

static int replica_of(tt_cluster *k, int master) {
    char want[32];
    snprintf(want, sizeof want, "master_port:%d\r", th_server_port(k->node[master]));
    for (int i = 0; i < k->n; i++) {
        redisReply *ir = th_server_cmd(k->node[i], "INFO replication");
        int is = ir != NULL && ir->type == REDIS_REPLY_STRING && strstr(ir->str, want) != NULL &&
                 strstr(ir->str, "master_link_status:up") != NULL;
        freeReplyObject(ir);
        if (is)
            return i;
    }
    return -1;
}

/* The replica of the slot's master takes over; waits until it serves (a
 * manual failover that timed out, e.g. for want of votes, is asked again). */
static int swap(tt_cluster *k, int slot) {
    int m = tt_cluster_owner(k, 0, slot);
    long long end = th_now_us() + 10000000;
    int r;
    while ((r = replica_of(k, m)) < 0 && th_now_us() < end)
        th_sleep_ms(10);
    TH_CHECK(r >= 0);
    for (int tries = 0; tries < 3; tries++) {
        redisReply *x = th_server_cmd(k->node[r], "CLUSTER FAILOVER");
        TH_CHECK(x != NULL && x->type == REDIS_REPLY_STATUS);
        freeReplyObject(x);
        end = th_now_us() + 7000000;
        while (th_now_us() < end) {
            if (tt_cluster_owner(k, r, slot) == r && tt_cluster_owner(k, m, slot) == r)
                return r;
            th_sleep_ms(10);
        }
    }
    TH_FAIL("CLUSTER FAILOVER of node %d to node %d did not finish", m, r);
}

int main(void) {
    th_test_init(85);
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    TH_CHECK(g_sh != MAP_FAILED);
    memset(g_sh, 0, sizeof *g_sh);
    tt_cluster *k = tt_cluster_start_replicated(3, 1);
    TH_CHECK(k != NULL);
    snprintf(g_url, sizeof g_url, "%s?replicas=1&replica_timeout=2000", k->url);
    int slot = tt_lock_slot("dlock:", NAME);
    pid_t p[LOOPS];
    for (int i = 0; i < LOOPS; i++) {
        p[i] = th_spawn(loop, i % 2 ? g_sh : NULL); /* odd ones: the semaphore */
        TH_CHECK(p[i] > 0);
    }
    th_sleep_ms(500);
    for (int i = 0; i < SWAPS; i++) {
        int now = swap(k, slot);
        printf("failover %d: node %d serves slot %d (%ld acquires, %ld failed so far)\n", i + 1,
               now, slot, atomic_load(&g_sh->ok), atomic_load(&g_sh->failed));
        if (i + 1 < SWAPS)
            th_sleep_ms(4500); /* masters vote for one slot's failover once per 2 node timeouts */
    }
    th_sleep_ms(500);
    atomic_store(&g_sh->stop, 1);
    for (int i = 0; i < LOOPS; i++)
        TH_EQ_INT(th_wait(p[i], 30000), 0);
    printf("%ld acquires, %ld failed%s%s\n", atomic_load(&g_sh->ok), atomic_load(&g_sh->failed),
           g_sh->first_set ? "; first: " : "", g_sh->first_set ? g_sh->first : "");
    TH_EQ_INT(atomic_load(&g_sh->failed), 0);
    TH_CHECK(atomic_load(&g_sh->ok) > 100);
    tt_cluster_free(k);
    printf("test_gate_failover: ok\n");
    return 0;
}
