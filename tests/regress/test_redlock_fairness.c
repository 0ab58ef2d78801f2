/* test_redlock_fairness.c - issue 9, "Redlock starves under contention".
 *
 * With 3 servers and 4 workers on one name, one worker took all 3,109
 * acquisitions in a second: waiting on a Redlock set polled with backoff,
 * and the releasing worker re-took its own lock before any sleeper woke.
 * Here 4 worker processes loop dlock_wait -> hold 1 ms -> release on one
 * name of a Redlock-3 set for 2 s; each reports its acquisitions and its
 * longest wait. The least-served worker must get at least half the mean
 * share, and no wait may exceed 1 s (a few of a Redlock waiter's 250 ms
 * slices: what a missed wake-up may cost).
 */
#include <stdatomic.h>
#include <sys/mman.h>

#include "itest.h"

#define WORKERS 4
#define RUN_MS 2000

typedef struct shared {
    atomic_long count[WORKERS];
    atomic_long max_wait_us[WORKERS];
    long long end_us;
    char url[512];
} shared;

static shared *g;
static int g_id;

static int worker(void *arg) {
    (void)arg;
    dlock_options o;
    it_options(&o, 500, 500);
    dlock_client *c = it_client(g->url, &o);
    while (th_now_us() < g->end_us) {
        dlock_lock *l = NULL;
        long long t0 = th_now_us();
        int rc = dlock_wait(c, "fair", 3000, 5000, &l);
        long long w = th_now_us() - t0;
        if (rc != DLOCK_OK)
            continue;
        if (w > atomic_load(&g->max_wait_us[g_id]))
            atomic_store(&g->max_wait_us[g_id], w);
        atomic_fetch_add(&g->count[g_id], 1);
        th_sleep_ms(1);
        dlock_release(l);
        dlock_lock_free(l);
    }
    dlock_client_free(c);
    return 0;
}

int main(void) {
    th_test_init(60);
    g = mmap(NULL, sizeof *g, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    TH_CHECK(g != MAP_FAILED);
    th_server *s[3];
    for (int i = 0; i < 3; i++)
        TH_CHECK((s[i] = th_server_start(NULL)) != NULL);
    snprintf(g->url, sizeof g->url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(s[0]), th_server_port(s[1]), th_server_port(s[2]));
    g->end_us = th_now_us() + 300000 + RUN_MS * 1000LL;
    pid_t pid[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        g_id = i;
        TH_CHECK((pid[i] = th_spawn(worker, NULL)) > 0);
    }
    for (int i = 0; i < WORKERS; i++)
        TH_EQ_INT(th_wait(pid[i], 30000), 0);
    long total = 0, min = -1;
    long long worst = 0;
    for (int i = 0; i < WORKERS; i++) {
        long n = atomic_load(&g->count[i]);
        long long w = atomic_load(&g->max_wait_us[i]);
        printf("worker %d: %ld acquisitions, longest wait %lld ms\n", i, n, w / 1000);
        total += n;
        if (min < 0 || n < min)
            min = n;
        if (w > worst)
            worst = w;
    }
    double mean = (double)total / WORKERS;
    printf("total %ld, mean %.1f, least served %ld (%.2f of the mean), longest wait %lld ms\n",
           total, mean, min, mean > 0 ? min / mean : 0, worst / 1000);
    TH_CHECK(total > 0);
    if (min < mean / 2)
        TH_FAIL("the least-served worker got %ld of a mean %.1f: starved", min, mean);
    if (worst > 1000000)
        TH_FAIL("a wait took %lld ms", worst / 1000);
    for (int i = 0; i < 3; i++)
        th_server_free(s[i]);
    IT_PASS("test_redlock_fairness");
    return 0;
}
