/* test_pause.c - process pauses (SIGSTOP), the classic way a lease-based
 * lock fails.
 *
 * 1. The server is paused for longer than the TTL while six workers
 *    contend: every call returns within its deadline, a holder's dlock_held
 *    turns false on its own clock, calls sent into the pause end with
 *    EIO/EUNKNOWN, any lease left behind by EUNKNOWN ends by its TTL, and
 *    the history stays clean.
 * 2. A holder stops itself between its "still held?" check and its write
 *    (Kleppmann's scenario), past its TTL. Meanwhile another client acquires
 *    with a higher fence and writes. When the holder resumes, dlock_held is
 *    false, its late write is rejected by the storage-side fence check, and
 *    its extend and release are answered with ENOTHELD.
 * 3. Workers are stopped from outside at random moments for longer than the
 *    TTL: the history stays clean; late commits are counted.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "faults.h"

#define WORKERS 6

static int64_t fence_of(dlock_lock *l) {
    dlock_info info;
    dlock_info_get(l, &info);
    return info.fence;
}

/* ---- 1. server paused past the TTL ---- */

static void server_paused_single(th_server *s) {
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *a = it_client(th_server_url(s), &o);
    dlock_client *b = it_client(th_server_url(s), &o);
    dlock_lock *la = NULL, *lb = NULL;
    IT_RC(a, dlock_try_acquire(a, "sp", 500, &la), DLOCK_OK);
    int64_t fa = fence_of(la);
    long long t_acq = th_now_us();
    TH_EQ_INT(th_server_pause(s), 0);
    /* The holder's own clock ends the lease: held turns false before 500 ms. */
    while (dlock_held(la))
        th_sleep_ms(1);
    long long held_ms = ft_ms_since(t_acq);
    printf("server paused: holder's dlock_held turned false %lld ms after acquire (ttl 500)\n",
           held_ms);
    TH_CHECK(held_ms <= 500);
    long long t0 = th_now_us();
    int rc = dlock_extend(la, 500);
    long long el = ft_ms_since(t0);
    printf("server paused: extend -> %s after %lld ms\n", dlock_err_name(rc), el);
    TH_CHECK(rc == DLOCK_EIO || rc == DLOCK_ENOTHELD);
    TH_CHECK(el < 300 + 200);
    t0 = th_now_us();
    rc = dlock_try_acquire(b, "sp", 1500, &lb);
    el = ft_ms_since(t0);
    printf("server paused: another acquire -> %s after %lld ms: %s\n", dlock_err_name(rc), el,
           dlock_client_errstr(b));
    TH_CHECK(rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN);
    TH_CHECK(el < 200 + 2 * 300 + 300);
    while (ft_ms_since(t_acq) < 1200)
        th_sleep_ms(10);
    TH_EQ_INT(th_server_resume(s), 0);
    /* After the pause the lease has ended on the server's clock too. But B's
     * timed-out acquire may have run when the server woke (EUNKNOWN: its
     * lease, if any, lasts at most its TTL of 1.5 s). */
    int gone = ft_wait_gone(s, "sp", 2500);
    printf("server resumed: lock key gone after %d ms more\n", gone);
    TH_CHECK(gone >= 0);
    IT_RC(b, dlock_try_acquire(b, "sp", 5000, &lb), DLOCK_OK);
    TH_CHECK(fence_of(lb) > fa);
    IT_RC(a, dlock_release(la), DLOCK_ENOTHELD);
    IT_RC(b, dlock_release(lb), DLOCK_OK);
    dlock_lock_free(la);
    dlock_lock_free(lb);
    dlock_client_free(a);
    dlock_client_free(b);
}

static void server_paused_workers(th_server *s, th_server *store) {
    hist *h = hist_new(100000);
    ft_stats *st = ft_stats_new();
    ft_cfg *x = ft_cfg_new();
    snprintf(x->url, sizeof x->url, "%s", th_server_url(s));
    snprintf(x->name, sizeof x->name, "spw");
    x->nnames = 2;
    x->ttl_ms = 500;
    x->wait_ms = 600;
    x->hold_steps = 40;
    x->step_us = 5000;
    x->random_hold = 1;
    x->extend = 1;
    x->store_port = th_server_port(store);
    x->end_us = th_now_us() + 5500 * 1000LL;
    x->h = h;
    x->st = st;
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = ft_spawn_worker(x, i);
    ft_go(x);
    for (int k = 0; k < 2; k++) {
        th_sleep_ms(1000);
        TH_EQ_INT(th_server_pause(s), 0);
        hist_fault(h);
        th_sleep_ms(1200); /* > ttl */
        TH_EQ_INT(th_server_resume(s), 0);
    }
    TH_EQ_INT(ft_join(pids, WORKERS, 30000), 0);
    hist_result res;
    TH_EQ_INT(hist_check(h, "server-paused", &res), 0);
    ft_stats_print("server-paused", st);
    TH_CHECK(res.acquisitions > 20);
    TH_CHECK(atomic_load(&st->acquire[-DLOCK_EIO]) + atomic_load(&st->acquire[-DLOCK_EUNKNOWN]) +
                 atomic_load(&st->acquire[-DLOCK_ETIMEDOUT]) >
             0);
    /* Bounded: the wait timeout plus one attempt's connect + command timeouts
     * plus one clean-up. */
    TH_CHECK(atomic_load(&st->max_call_us) < (600 + 200 + 2 * 300 + 300) * 1000LL);
    hist_free(h);
}

/* ---- 2. the holder pauses between its check and its write ---- */

struct holder_arg {
    const char *url;
    int store_port;
    int pipe_w;
};

static int holder(void *arg) {
    struct holder_arg *ha = arg;
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *c = it_client(ha->url, &o);
    redisContext *sc = th_connect(ha->store_port, 2000);
    TH_CHECK(sc != NULL);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "hp", 400, &l), DLOCK_OK);
    int64_t f = fence_of(l);
    TH_EQ_INT(ft_store_commit(sc, "hp", f), 1); /* a first write while held */
    TH_CHECK(dlock_held(l));                    /* "still mine?" yes... */
    TH_CHECK(write(ha->pipe_w, &f, sizeof f) == (ssize_t)sizeof f);
    raise(SIGSTOP); /* ...and here the process stops: GC, swap, VM pause */
    /* Resumed, long after the lease ended. The write it was about to do: */
    int late = ft_store_commit(sc, "hp", f);
    int held = dlock_held(l);
    int erc = dlock_extend(l, 400);
    int rrc = dlock_release(l);
    printf("holder resumed: late write %s, dlock_held %d, extend %s, release %s\n",
           late == 0 ? "rejected" : "ACCEPTED", held, dlock_err_name(erc), dlock_err_name(rrc));
    TH_EQ_INT(late, 0);
    TH_EQ_INT(held, 0);
    TH_EQ_INT(erc, DLOCK_ENOTHELD);
    TH_EQ_INT(rrc, DLOCK_ENOTHELD);
    dlock_lock_free(l);
    redisFree(sc);
    dlock_client_free(c);
    return 0;
}

static int proc_state(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

static void holder_paused(th_server *s, th_server *store) {
    int fds[2];
    TH_EQ_INT(pipe(fds), 0);
    struct holder_arg ha = {th_server_url(s), th_server_port(store), fds[1]};
    pid_t pid = th_spawn(holder, &ha);
    TH_CHECK(pid > 0);
    int64_t f_holder = 0;
    TH_CHECK(read(fds[0], &f_holder, sizeof f_holder) == (ssize_t)sizeof f_holder);
    long long t0 = th_now_us();
    while (proc_state(pid) != 'T' && ft_ms_since(t0) < 5000)
        th_sleep_ms(1);
    TH_CHECK(proc_state(pid) == 'T');
    /* Another client waits for the lease to end, takes the lock, writes. */
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *b = it_client(th_server_url(s), &o);
    dlock_lock *lb = NULL;
    IT_RC(b, dlock_wait(b, "hp", 2000, 5000, &lb), DLOCK_OK);
    long long waited = ft_ms_since(t0);
    int64_t fb = fence_of(lb);
    TH_CHECK(fb > f_holder);
    redisContext *sc = th_connect(th_server_port(store), 2000);
    TH_EQ_INT(ft_store_commit(sc, "hp", fb), 1);
    printf("holder stopped: the next client acquired after %lld ms (ttl 400) with fence %lld "
           "> %lld and wrote\n",
           waited, (long long)fb, (long long)f_holder);
    TH_EQ_INT(kill(pid, SIGCONT), 0);
    TH_EQ_INT(th_wait(pid, 10000), 0);
    IT_RC(b, dlock_release(lb), DLOCK_OK);
    dlock_lock_free(lb);
    dlock_client_free(b);
    redisFree(sc);
    close(fds[0]);
    close(fds[1]);
}

/* ---- 3. workers stopped from outside ---- */

static void workers_paused(th_server *s, th_server *store) {
    hist *h = hist_new(100000);
    ft_stats *st = ft_stats_new();
    ft_cfg *x = ft_cfg_new();
    snprintf(x->url, sizeof x->url, "%s", th_server_url(s));
    snprintf(x->name, sizeof x->name, "wp");
    x->nnames = 1;
    x->ttl_ms = 300;
    x->wait_ms = 1000;
    x->hold_steps = 10;
    x->step_us = 3000;
    x->random_hold = 1;
    x->store_port = th_server_port(store);
    x->end_us = th_now_us() + 5000 * 1000LL;
    x->h = h;
    x->st = st;
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = ft_spawn_worker(x, i);
    ft_go(x);
    int stops = 0;
    while (th_now_us() < x->end_us - 800 * 1000LL) {
        th_sleep_ms(ft_rand(50, 200));
        pid_t victim = pids[ft_rand(0, WORKERS - 1)];
        kill(victim, SIGSTOP);
        hist_fault(h);
        stops++;
        th_sleep_ms(ft_rand(350, 700)); /* > ttl */
        kill(victim, SIGCONT);
    }
    TH_EQ_INT(ft_join(pids, WORKERS, 30000), 0);
    hist_result res;
    TH_EQ_INT(hist_check(h, "holder-paused", &res), 0);
    ft_stats_print("holder-paused", st);
    TH_CHECK(res.acquisitions > 50);
    hist_free(h);
}

int main(void) {
    th_test_init(100);
    th_server *store = th_server_start(NULL);
    th_server *s = th_server_start(NULL);
    TH_CHECK(store != NULL && s != NULL);
    printf("== server paused past the ttl\n");
    server_paused_single(s);
    server_paused_workers(s, store);
    printf("== holder paused between check and write\n");
    holder_paused(s, store);
    printf("== workers paused at random\n");
    workers_paused(s, store);
    th_server_free(s);
    th_server_free(store);
    IT_PASS("test_pause");
    return 0;
}
