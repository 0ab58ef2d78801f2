/* test_cluster.c - the other kinds on a 3-master Redis Cluster:
 *   1. a multi-lock whose names share a hash slot ({tag} in the names) is
 *      one script on the slot's master (EVALSHA calls counted there);
 *   2. a multi-lock over names on every master is taken slot group by
 *      slot group: every name held on its own master; extend, keepalive
 *      and release act on every part;
 *   3. semaphores and read-write locks live on their name's master;
 *   4. no deadlock across slots: 4 processes take the same three names
 *      (one per master) given in opposite orders, and 2 take overlapping
 *      pairs, for 3 s; all finish, and the history shows mutual exclusion
 *      and rising fences per name.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ktest.h"
#include "topo.h"

static tt_cluster *K;
static char N3[3][64]; /* a name on each master */

static dlock_client *client(void) { return tt_client(K->url, 1000, 2000); }

#define OK(c, expr)                                                                        \
    do {                                                                                   \
        int ok_rc_ = (expr);                                                               \
        if (ok_rc_ != DLOCK_OK)                                                            \
            TH_FAIL("%s: %s: %s", #expr, dlock_err_name(ok_rc_), dlock_client_errstr(c));  \
    } while (0)

static long long exists_on(int node, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    redisReply *r = th_server_cmd(K->node[node], "EXISTS %s", key);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return v;
}

static void one_slot(void) {
    dlock_client *c = client();
    const char *names[] = {"{db}users", "{db}orders", "{db}items"};
    int slot = tt_lock_slot("dlock:", "{db}users");
    TH_EQ_INT(tt_lock_slot("dlock:", "{db}items"), slot);
    int owner = tt_cluster_owner(K, 0, slot);
    TH_CHECK(owner >= 0);
    dlock_lock *l;
    OK(c, dlock_multi_try_acquire(c, names, 3, 5000, &l)); /* loads the script */
    OK(c, dlock_release(l));
    dlock_lock_free(l);
    long before = tt_cmd_calls(K->node[owner], "evalsha");
    OK(c, dlock_multi_try_acquire(c, names, 3, 5000, &l));
    TH_EQ_INT(tt_cmd_calls(K->node[owner], "evalsha") - before, 1);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(exists_on(owner, names[i]), 1);
    OK(c, dlock_release(l));
    dlock_lock_free(l);
    dlock_client_free(c);
    printf("3 names of slot %d: one EVALSHA on node %d\n", slot, owner);
}

static void across_slots(void) {
    dlock_client *c = client();
    const char *names[] = {N3[2], N3[0], N3[1]};
    dlock_lock *l, *x = NULL;
    OK(c, dlock_multi_try_acquire(c, names, 3, 600, &l));
    TH_EQ_INT(dlock_lock_names(l), 3);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(exists_on(i, N3[i]), 1);
    TH_EQ_INT(dlock_try_acquire(c, N3[1], 1000, &x), DLOCK_EBUSY);
    OK(c, dlock_extend(l, 600));
    OK(c, dlock_keepalive_start(l, 0, NULL, NULL));
    th_sleep_ms(1500);
    TH_CHECK(dlock_held(l));
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(exists_on(i, N3[i]), 1);
    OK(c, dlock_release(l));
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(exists_on(i, N3[i]), 0);
    dlock_lock_free(l);
    /* A group busy: nothing is kept. */
    dlock_lock *m;
    OK(c, dlock_try_acquire(c, N3[2], 5000, &m));
    TH_EQ_INT(dlock_multi_try_acquire(c, names, 3, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(exists_on(0, N3[0]) + exists_on(1, N3[1]), 0);
    OK(c, dlock_release(m));
    dlock_lock_free(m);
    dlock_client_free(c);
}

static void sem_rw(void) {
    dlock_client *c = client();
    dlock_lock *a, *b, *x = NULL;
    OK(c, dlock_sem_try_acquire(c, N3[1], 2, 5000, &a));
    OK(c, dlock_sem_try_acquire(c, N3[1], 2, 5000, &b));
    TH_EQ_INT(dlock_sem_try_acquire(c, N3[1], 2, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(exists_on(1, N3[1]), 1);
    dlock_holders *h;
    OK(c, dlock_holders_get(c, N3[1], &h));
    TH_EQ_INT(dlock_holders_count(h), 2);
    dlock_holders_free(h);
    OK(c, dlock_release(a));
    OK(c, dlock_release(b));
    dlock_lock_free(a);
    dlock_lock_free(b);
    OK(c, dlock_rw_try_acquire(c, N3[2], DLOCK_SHARED, 5000, &a));
    OK(c, dlock_rw_try_acquire(c, N3[2], DLOCK_SHARED, 5000, &b));
    TH_EQ_INT(dlock_rw_try_acquire(c, N3[2], DLOCK_EXCLUSIVE, 5000, &x), DLOCK_EBUSY);
    OK(c, dlock_release(a));
    OK(c, dlock_release(b));
    dlock_lock_free(a);
    dlock_lock_free(b);
    dlock_client_free(c);
}

static hist *H;

static int crossing(int idx, void *arg) {
    (void)arg;
    const char *fwd[] = {N3[0], N3[1], N3[2]}, *rev[] = {N3[2], N3[1], N3[0]};
    const char *p01[] = {N3[1], N3[0]}, *p12[] = {N3[2], N3[1]};
    const char *const *set = idx == 4 ? p01 : idx == 5 ? p12 : idx % 2 ? rev : fwd;
    int n = idx >= 4 ? 2 : 3;
    dlock_client *c = client();
    long long end = th_now_us() + 3000000;
    int got = 0;
    while (th_now_us() < end) {
        dlock_lock *l;
        long long req = th_now_us();
        int rc = dlock_multi_wait(c, set, n, 15000, 3000, &l);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "worker %d: %s: %s\n", idx, dlock_err_name(rc),
                    dlock_client_errstr(c));
            return 1;
        }
        long long start = th_now_us();
        kt_record_names(H, l, n, req, start, kt_hold(l, start, 3), idx);
        if (dlock_release(l) != DLOCK_OK)
            return 2;
        dlock_lock_free(l);
        got++;
    }
    printf("worker %d: %d multi-locks\n", idx, got);
    dlock_client_free(c);
    return got > 0 ? 0 : 3;
}

int main(void) {
    th_test_init(110);
    K = tt_cluster_start(3);
    TH_CHECK(K != NULL);
    for (int i = 0; i < 3; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "kind%d", i);
        TH_CHECK(tt_name_on_node(K, i, "dlock:", tag, N3[i], sizeof N3[i]) >= 0);
    }
    one_slot();
    across_slots();
    sem_rw();
    H = hist_new(50000);
    TH_EQ_INT(th_run_workers(6, crossing, NULL, 60), 0);
    TH_EQ_INT(hist_check(H, "multi-locks across slots", NULL), 0);
    hist_free(H);
    tt_cluster_free(K);
    printf("test_cluster (kinds): 1 passed, 0 failed\n");
    return 0;
}
