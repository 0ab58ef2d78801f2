/* test_engine_keepalive.c - 10,000 locks kept alive by one engine, with no
 * thread: leases of 3 s stay held for 4.5 s on the server and locally, the
 * extensions go out pipelined, a lock whose key is deleted is reported lost
 * through on_lost (from dlock_client_process), and stopping works. */
#include <dirent.h>
#include <stdlib.h>

#include "etest.h"

#define N 10000

static dlock_lock *g_l[N];
static int g_got, g_lost_cb;
static dlock_lock *g_lost_lock;

static void on_acq(const dlock_result *r, void *ud) {
    int i = (int)(intptr_t)ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("acquire %d: %s (%s)", i, dlock_err_name(r->status), r->detail);
    g_l[i] = r->lock;
    g_got++;
}

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)ud;
    TH_EQ_INT(status, DLOCK_ENOTHELD);
    TH_CHECK(!dlock_held(l));
    g_lost_cb++;
    g_lost_lock = l;
}

static int threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    it_options(&o, 1000, 2000);
    dlock_client *c = it_client(th_server_url(s), &o);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "ka-%d", i);
        IT_RC(c, dlock_try_acquire_async(c, name, 3000, on_acq, (void *)(intptr_t)i, NULL),
              DLOCK_OK);
    }
    long long t0 = th_now_us();
    while (g_got < N && th_now_us() - t0 < 30000000LL)
        dlock_poll_once(c, 50);
    TH_EQ_INT(g_got, N);
    printf("%d locks acquired in %lld ms\n", N, (th_now_us() - t0) / 1000);
    for (int i = 0; i < N; i++)
        IT_RC(c, dlock_keepalive_start(g_l[i], 1000, on_lost, NULL), DLOCK_OK);
    TH_EQ_INT(threads(), 1);
    /* Run the loop well past the 3 s lease (one ttl is 3 rounds: a loaded
     * machine may miss one). */
    long long t1 = th_now_us();
    int deleted = 0;
    while (th_now_us() - t1 < 4500000LL) {
        dlock_poll_once(c, 100);
        if (!deleted && th_now_us() - t1 > 1000000LL) {
            TH_EQ_INT(th_server_int(s, "DEL %s", "dlock:{ka-7}"), 1);
            deleted = 1;
        }
    }
    TH_EQ_INT(threads(), 1);
    TH_EQ_INT(g_lost_cb, 1);
    TH_CHECK(g_lost_lock == g_l[7]);
    int held = 0;
    for (int i = 0; i < N; i++)
        held += dlock_held(g_l[i]);
    TH_EQ_INT(held, N - 1);
    TH_EQ_INT(th_server_int(s, "DBSIZE"), 2 * N - 1); /* lock + fence keys */
    for (int i = 0; i < N; i += 997) {
        snprintf(name, sizeof name, "dlock:{ka-%d}", i);
        TH_CHECK(i == 7 || th_server_int(s, "PTTL %s", name) > 0);
    }
    /* Stop half, free all; the stopped ones run out by their TTL. */
    for (int i = 0; i < N; i += 2)
        dlock_keepalive_stop(g_l[i]);
    for (int i = 0; i < N; i++)
        dlock_lock_free(g_l[i]);
    TH_EQ_INT(dlock_client_process(c), 0);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_engine_keepalive");
    return 0;
}
