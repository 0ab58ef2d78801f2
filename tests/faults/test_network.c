/* test_network.c - network faults through the harness's TCP fault proxy.
 *
 * 1. Connection resets fired at random while acquires are in flight: every
 *    DLOCK_OK is a lease the server really holds with the caller's token;
 *    after DLOCK_EIO no lease exists; after DLOCK_EUNKNOWN a lease may
 *    exist but ends by its TTL. Nothing is left once the TTLs pass.
 * 2. Replies delayed past the command timeout: calls end with EIO/EUNKNOWN
 *    within their deadline, and a late reply is never taken for the answer
 *    to a later command. A release or a shortening extend whose reply comes
 *    too late may still have run: the handle must stop claiming the lock.
 * 3. A black-holed server: every call returns within its documented bound;
 *    a kept-alive lease is reported lost before its validity ends, also
 *    after a dlock_extend to a longer ttl (which the keepalive undoes).
 * 4. Replies dripped one byte at a time: slower than the timeout -> EIO,
 *    within the deadline (it covers the whole reply, not each read).
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

#define CONN_MS 200
#define CMD_MS 300
#define SLACK_MS 150
#define SCHED_MS 25 /* a thread's wake-up delay on a loaded machine */

static char *holder_token(th_server *s, const char *name) {
    redisReply *r = th_server_cmd(s, "HGET dlock:{%s} t", name);
    char *t = NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        t = strdup(r->str);
    freeReplyObject(r);
    return t;
}

/* ---- 1. resets during acquire ---- */

struct resetter {
    th_proxy *p;
    atomic_int stop;
    atomic_long resets;
};

static void *reset_loop(void *arg) {
    struct resetter *r = arg;
    unsigned seed = 12345;
    while (!atomic_load(&r->stop)) {
        struct timespec ts = {0, (long)(rand_r(&seed) % 1000) * 1000};
        nanosleep(&ts, NULL);
        th_proxy_set(r->p, TH_RESET, 0);
        atomic_fetch_add(&r->resets, 1);
    }
    return NULL;
}

static void resets(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_options o;
    it_options(&o, CONN_MS, CMD_MS);
    dlock_client *c = it_client(th_proxy_url(p), &o);
    struct resetter r = {.p = p};
    pthread_t th;
    TH_EQ_INT(pthread_create(&th, NULL, reset_loop, &r), 0);

    enum { N = 50000, TTL = 1000 };
    static char pending[N][32]; /* names whose lease may linger until its TTL */
    int npending = 0;
    long n_ok = 0, n_eio = 0, n_unknown = 0, n_other = 0, rel_ok = 0, rel_eio = 0,
         rel_nh = 0;
    long long slowest = 0, t_end = th_now_us() + 3000 * 1000LL;
    int i;
    for (i = 0; i < N && th_now_us() < t_end; i++) {
        char name[32];
        snprintf(name, sizeof name, "rst-%d", i);
        dlock_lock *l = NULL;
        long long t0 = th_now_us();
        int rc = dlock_try_acquire(c, name, TTL, &l);
        long long el = ft_ms_since(t0);
        if (el > slowest)
            slowest = el;
        if (rc == DLOCK_OK) {
            n_ok++;
            /* The caller holds it: the server carries its token. */
            dlock_info info;
            dlock_info_get(l, &info);
            char *t = holder_token(s, name);
            if (t == NULL || strcmp(t, info.token) != 0)
                TH_FAIL("%s: acquire said OK but the server holds %s", name, t ? t : "nothing");
            free(t);
            rc = dlock_release(l);
            if (rc == DLOCK_OK) {
                rel_ok++;
                TH_EQ_INT(ft_lock_exists(s, name), 0);
            } else if (rc == DLOCK_ENOTHELD) {
                rel_nh++; /* a re-sent release found its first copy had run */
                TH_EQ_INT(ft_lock_exists(s, name), 0);
            } else {
                TH_CHECK(rc == DLOCK_EIO);
                rel_eio++;
                snprintf(pending[npending++], sizeof pending[0], "%s", name);
            }
            dlock_lock_free(l);
        } else if (rc == DLOCK_EIO) {
            n_eio++;
            /* EIO promises no lease was left behind. */
            if (ft_lock_exists(s, name) != 0)
                TH_FAIL("%s: acquire returned EIO (%s) but a lease exists: it should have "
                        "been EUNKNOWN",
                        name, dlock_client_errstr(c));
        } else if (rc == DLOCK_EUNKNOWN) {
            n_unknown++;
            snprintf(pending[npending++], sizeof pending[0], "%s", name);
        } else {
            n_other++;
            TH_FAIL("%s: unexpected %s: %s", name, dlock_err_name(rc), dlock_client_errstr(c));
        }
        TH_CHECK(el <= CONN_MS + 2 * CMD_MS + CONN_MS + CMD_MS + SLACK_MS);
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    th_sleep_ms(TTL + 100);
    int left = 0;
    for (int k = 0; k < npending; k++)
        left += ft_lock_exists(s, pending[k]) != 0;
    redisReply *keys = th_server_cmd(s, "KEYS dlock:{rst-*}");
    TH_CHECK(keys != NULL && keys->type == REDIS_REPLY_ARRAY);
    long stray = (long)keys->elements;
    freeReplyObject(keys);
    printf("resets: %d acquires under %ld resets: OK %ld, EIO %ld, EUNKNOWN %ld; releases OK "
           "%ld, ENOTHELD %ld, EIO %ld; %d leases of unknown outcome, %d left after their "
           "TTL, %ld keys left; slowest call %lld ms\n",
           i, atomic_load(&r.resets), n_ok, n_eio, n_unknown, rel_ok, rel_nh, rel_eio, npending,
           left, stray, slowest);
    TH_EQ_INT(left, 0);
    TH_EQ_INT(stray, 0);
    TH_CHECK(n_ok > 0);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* Contended: a holder (direct connection) releases while a waiter behind
 * the proxy is queued, so the lease is handed over to the waiter while
 * resets fly. Whatever the waiter is told, no lease may be left that it
 * does not know about (only EUNKNOWN may leave one, until its TTL). */
struct releaser {
    dlock_client *c;
    dlock_lock *l;
    sem_t go, done;
    int delay_us;
    atomic_int stop;
};

static void *release_loop(void *arg) {
    struct releaser *r = arg;
    for (;;) {
        sem_wait(&r->go);
        if (atomic_load(&r->stop))
            return NULL;
        struct timespec ts = {0, (long)r->delay_us * 1000};
        nanosleep(&ts, NULL);
        int rc = dlock_release(r->l);
        if (rc != DLOCK_OK && rc != DLOCK_ENOTHELD)
            TH_FAIL("direct release: %s", dlock_err_name(rc));
        dlock_lock_free(r->l);
        sem_post(&r->done);
    }
}

static void resets_contended(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_options o;
    it_options(&o, CONN_MS, CMD_MS);
    dlock_client *c = it_client(th_proxy_url(p), &o);
    struct releaser rl = {.c = it_client(th_server_url(s), &o)};
    sem_init(&rl.go, 0, 0);
    sem_init(&rl.done, 0, 0);
    pthread_t rth, th;
    TH_EQ_INT(pthread_create(&rth, NULL, release_loop, &rl), 0);
    struct resetter r = {.p = p};
    TH_EQ_INT(pthread_create(&th, NULL, reset_loop, &r), 0);
    enum { TTL = 800 };
    static char pending[20000][32];
    int npending = 0, i;
    long counts[FT_NSTATUS] = {0};
    long long t_end = th_now_us() + 3000 * 1000LL;
    for (i = 0; i < 20000 && th_now_us() < t_end; i++) {
        char name[32];
        snprintf(name, sizeof name, "rsw-%d", i);
        IT_RC(rl.c, dlock_try_acquire(rl.c, name, 5000, &rl.l), DLOCK_OK);
        rl.delay_us = ft_rand(0, 3000);
        sem_post(&rl.go);
        dlock_lock *l = NULL;
        int rc = dlock_wait(c, name, 1000, TTL, &l);
        sem_wait(&rl.done);
        counts[-rc < FT_NSTATUS ? -rc : FT_NSTATUS - 1]++;
        if (rc == DLOCK_OK) {
            dlock_info info;
            dlock_info_get(l, &info);
            char *t = holder_token(s, name);
            if (t == NULL || strcmp(t, info.token) != 0)
                TH_FAIL("%s: wait said OK but the server holds %s", name, t ? t : "nothing");
            free(t);
            if (dlock_release(l) != DLOCK_OK)
                snprintf(pending[npending++], sizeof pending[0], "%s", name);
            dlock_lock_free(l);
        } else if (rc == DLOCK_EUNKNOWN) {
            snprintf(pending[npending++], sizeof pending[0], "%s", name);
        } else if (rc == DLOCK_EIO || rc == DLOCK_ETIMEDOUT) {
            if (ft_lock_exists(s, name) != 0)
                TH_FAIL("%s: wait returned %s (%s) but a lease exists: it should have been "
                        "EUNKNOWN",
                        name, dlock_err_name(rc), dlock_client_errstr(c));
        } else {
            TH_FAIL("%s: unexpected %s: %s", name, dlock_err_name(rc), dlock_client_errstr(c));
        }
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    atomic_store(&rl.stop, 1);
    sem_post(&rl.go);
    pthread_join(rth, NULL);
    th_sleep_ms(TTL + 2000 + 100); /* leases, and queue entries (wait + margin) */
    int left = 0;
    for (int k = 0; k < npending; k++)
        left += ft_lock_exists(s, pending[k]) != 0;
    printf("contended resets: %d waits under %ld resets: OK %ld, EIO %ld, EUNKNOWN %ld, "
           "ETIMEDOUT %ld; %d of unknown outcome, %d left after their TTL\n",
           i, atomic_load(&r.resets), counts[0], counts[-DLOCK_EIO], counts[-DLOCK_EUNKNOWN],
           counts[-DLOCK_ETIMEDOUT], npending, left);
    TH_EQ_INT(left, 0);
    dlock_client_free(rl.c);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* ---- 2. replies delayed past the timeout ---- */

static void latency(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_options o;
    it_options(&o, CONN_MS, CMD_MS);
    dlock_client *c = it_client(th_proxy_url(p), &o);
    dlock_client *direct = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL, *l2 = NULL;
    /* Warm the script cache: the first EVALSHA of a script after a restart
     * or SCRIPT FLUSH costs a second round trip (NOSCRIPT, then EVAL) inside
     * the same deadline. */
    IT_RC(direct, dlock_try_acquire(direct, "warm", 5000, &l), DLOCK_OK);
    IT_RC(direct, dlock_extend(l, 5000), DLOCK_OK);
    IT_RC(direct, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);

    /* Below the timeout: slow but fine. */
    th_proxy_set(p, TH_LATENCY, 100);
    long long t0 = th_now_us();
    IT_RC(c, dlock_try_acquire(c, "lat", 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_extend(l, 5000), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    printf("latency 100 ms (timeout %d): acquire+extend+release in %ld ms\n", CMD_MS,
           ft_ms_since(t0));

    /* Above it: bounded failures. */
    th_proxy_set(p, TH_LATENCY, 600);
    t0 = th_now_us();
    int rc = dlock_try_acquire(c, "lat2", 3000, &l);
    long el = ft_ms_since(t0);
    printf("latency 600 ms: try_acquire -> %s in %ld ms: %s\n", dlock_err_name(rc), el,
           dlock_client_errstr(c));
    TH_CHECK(rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN);
    TH_CHECK(el <= 2 * (CONN_MS + CMD_MS) + SLACK_MS);
    int locked = 0;
    t0 = th_now_us();
    IT_RC(c, dlock_is_locked(c, "lat3", &locked, NULL), DLOCK_EIO);
    el = ft_ms_since(t0);
    TH_CHECK(el <= CONN_MS + CMD_MS + SLACK_MS);

    /* The late replies are never mistaken for answers to new commands. */
    th_proxy_set(p, TH_PASS, 0);
    th_sleep_ms(700); /* the delayed requests reach the server now */
    IT_RC(c, dlock_is_locked(c, "lat3", &locked, NULL), DLOCK_OK);
    TH_EQ_INT(locked, 0);
    dlock_holder hd;
    IT_RC(c, dlock_inspect(c, "lat2", &hd), DLOCK_OK); /* may be held (EUNKNOWN) */
    printf("after the latency: lat2 %s (the unknown acquire %s)\n",
           hd.locked ? "held" : "free", hd.locked ? "ran late" : "was undone or never ran");
    if (hd.locked)
        TH_CHECK(hd.pttl_ms <= 3000);

    /* A release whose reply comes too late may have run: the caller must not
     * go on believing it holds the lock while someone else takes it. */
    IT_RC(c, dlock_try_acquire(c, "latrel", 10000, &l), DLOCK_OK);
    th_proxy_set(p, TH_LATENCY, 600);
    rc = dlock_release(l);
    TH_EQ_INT(rc, DLOCK_EIO);
    th_sleep_ms(700);
    IT_RC(direct, dlock_try_acquire(direct, "latrel", 10000, &l2), DLOCK_OK);
    printf("release timed out but ran: the old handle says held=%d while another client "
           "holds the lock\n",
           dlock_held(l));
    TH_EQ_INT(dlock_held(l), 0);
    IT_RC(direct, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l2);
    dlock_lock_free(l);

    /* Likewise an extend to a shorter TTL. */
    th_proxy_set(p, TH_PASS, 0);
    IT_RC(c, dlock_try_acquire(c, "latext", 10000, &l), DLOCK_OK);
    th_proxy_set(p, TH_LATENCY, 600);
    long long t_ext = th_now_us();
    rc = dlock_extend(l, 400);
    TH_EQ_INT(rc, DLOCK_EIO);
    th_sleep_ms(600 + 400 + 100); /* the extend ran at ~600 ms: lease over at ~1000 */
    IT_RC(direct, dlock_try_acquire(direct, "latext", 10000, &l2), DLOCK_OK);
    int held = dlock_held(l);
    printf("shortening extend timed out but ran: old handle held=%d %ld ms after the extend "
           "(new ttl 400) while another client holds the lock\n",
           held, ft_ms_since(t_ext));
    TH_EQ_INT(held, 0);
    IT_RC(direct, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l2);
    dlock_lock_free(l);
    th_proxy_set(p, TH_PASS, 0);
    dlock_client_free(direct);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* ---- 3. black hole ---- */

static atomic_long g_lost_at_us, g_lost_wall_ms;
static atomic_int g_lost_status;

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store(&g_lost_status, status);
    atomic_store(&g_lost_wall_ms, (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    atomic_store(&g_lost_at_us, th_now_us());
}

#define BOUNDED(c, expr, bound_ms, ...)                                                     \
    do {                                                                                    \
        long long t0_ = th_now_us();                                                        \
        int rc_ = (expr);                                                                   \
        long el_ = ft_ms_since(t0_);                                                        \
        printf("  %-40s -> %-15s %5ld ms (bound %d)\n", #expr, dlock_err_name(rc_), el_,    \
               (int)(bound_ms));                                                            \
        int ok_ = 0, want_[] = {__VA_ARGS__};                                               \
        for (size_t k_ = 0; k_ < sizeof want_ / sizeof want_[0]; k_++)                      \
            ok_ |= rc_ == want_[k_];                                                        \
        if (!ok_)                                                                           \
            TH_FAIL("%s: unexpected %s (%s)", #expr, dlock_err_name(rc_),                   \
                    dlock_client_errstr(c));                                                \
        if (el_ > (bound_ms) + SLACK_MS)                                                    \
            TH_FAIL("%s took %ld ms, bound %d", #expr, el_, (int)(bound_ms));               \
        n_calls++;                                                                          \
    } while (0)

static void blackhole(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_options o;
    it_options(&o, CONN_MS, CMD_MS);
    o.retry_count = 2;
    o.retry_delay_ms = 20;
    o.retry_max_delay_ms = 40;
    dlock_client *c = it_client(th_proxy_url(p), &o);
    dlock_lock *held = NULL, *kal = NULL, *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "bh", 5000, &held), DLOCK_OK);
    IT_RC(c, dlock_try_acquire(c, "bh-ka", 1000, &kal), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(kal, 200, on_lost, NULL), DLOCK_OK);
    dlock_info kinfo;
    th_sleep_ms(250); /* one extension went through */
    th_proxy_set(p, TH_BLACKHOLE, 0);
    long long t_bh = th_now_us();
    dlock_info_get(kal, &kinfo);
    int n_calls = 0;
    int one = CONN_MS + CMD_MS;       /* one command on a fresh connection */
    int acq = 2 * one;                /* an attempt and its clean-up by token */
    dlock_holder hd;
    int locked;
    printf("black hole (connect %d ms, command %d ms):\n", CONN_MS, CMD_MS);
    BOUNDED(c, dlock_client_ping(c), one, DLOCK_EIO);
    BOUNDED(c, dlock_try_acquire(c, "bh2", 1000, &l), acq, DLOCK_EIO, DLOCK_EUNKNOWN);
    /* 3 attempts, the backoff between them (20 + 40 ms + jitter), and
     * leaving the wait queue at the end. */
    BOUNDED(c, dlock_acquire(c, "bh3", 1000, &l), 3 * acq + 20 + 40 + 24 + one, DLOCK_EIO,
            DLOCK_EUNKNOWN);
    BOUNDED(c, dlock_wait(c, "bh4", 500, 1000, &l), 500 + acq, DLOCK_EIO, DLOCK_EUNKNOWN,
            DLOCK_ETIMEDOUT);
    BOUNDED(c, dlock_is_locked(c, "bh", &locked, NULL), one, DLOCK_EIO);
    BOUNDED(c, dlock_inspect(c, "bh", &hd), one, DLOCK_EIO);
    BOUNDED(c, dlock_extend(held, 5000), one, DLOCK_EIO);
    BOUNDED(c, dlock_extend_token(c, "bh", "0123456789abcdef0123456789abcdef", 5000), one,
            DLOCK_EIO);
    BOUNDED(c, dlock_release_token(c, "bh", "0123456789abcdef0123456789abcdef"), one,
            DLOCK_EIO);
    BOUNDED(c, dlock_release(held), one, DLOCK_EIO);
    /* The keepalive cannot extend: the lease must be reported lost by the
     * end of its validity, not after. The thread aims at that instant, so
     * the check allows the scheduler's delay in waking it and running the
     * callback (SCHED_MS; milliseconds of wall clock besides). */
    while (atomic_load(&g_lost_at_us) == 0 && ft_ms_since(t_bh) < 3000)
        th_sleep_ms(5);
    long long lost_at = atomic_load(&g_lost_at_us);
    TH_CHECK(lost_at != 0);
    TH_EQ_INT(dlock_held(kal), 0);
    long long lost_wall = atomic_load(&g_lost_wall_ms);
    printf("  keepalive: lease reported lost %lld ms into the black hole (%s), %lld ms before "
           "its local validity ended\n",
           (lost_at - t_bh) / 1000, dlock_err_name(atomic_load(&g_lost_status)),
           (long long)kinfo.expires_at - lost_wall);
    TH_CHECK(lost_wall <= kinfo.expires_at + SCHED_MS);
    dlock_lock_free(kal);
    dlock_lock_free(held);
    printf("black hole: %d calls, all within their bounds\n", n_calls);
    th_proxy_set(p, TH_PASS, 0);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* A kept-alive lock extended by hand to a longer ttl: the next keepalive
 * round puts the server's lease back to the keepalive's ttl, so the handle
 * must follow it down; when the keepalive is then cut off, dlock_held must
 * turn false by the server's expiry, not the longer hand-made one. */
static void keepalive_after_extend(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_options o;
    it_options(&o, CONN_MS, CMD_MS);
    dlock_client *c = it_client(th_proxy_url(p), &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "kax", 1000, &l), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(l, 300, NULL, NULL), DLOCK_OK);
    IT_RC(c, dlock_extend(l, 60000), DLOCK_OK);
    th_sleep_ms(700); /* keepalive rounds: the server's lease is 1000 ms again */
    long long pttl = th_server_int(s, "PTTL dlock:{kax}");
    th_proxy_set(p, TH_BLACKHOLE, 0);
    int gone = ft_wait_gone(s, "kax", 3000);
    int held = dlock_held(l);
    printf("keepalive after a longer extend: server lease %lld ms, gone after %d ms with the "
           "keepalive cut off; dlock_held then %d\n",
           pttl, gone, held);
    TH_CHECK(gone >= 0);
    TH_EQ_INT(held, 0);
    dlock_keepalive_stop(l);
    dlock_lock_free(l);
    th_proxy_set(p, TH_PASS, 0);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* ---- 4. drip ---- */

static void drip(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_options o;
    it_options(&o, CONN_MS, CMD_MS);
    dlock_client *c = it_client(th_proxy_url(p), &o);
    dlock_lock *l = NULL;
    int n_calls = 0;
    printf("drip:\n");
    th_proxy_set(p, TH_DRIP, 1); /* replies of 7-40 bytes at 1 ms a byte: fine */
    BOUNDED(c, dlock_try_acquire(c, "drip", 5000, &l), CONN_MS + CMD_MS, DLOCK_OK);
    BOUNDED(c, dlock_release(l), CMD_MS, DLOCK_OK);
    dlock_lock_free(l);
    /* 100 ms a byte: no reply completes in time (the shortest, a grant's
     * fence "$1\r\n2\r\n", is 7 bytes: 700 ms against CMD_MS). */
    th_proxy_set(p, TH_DRIP, 100);
    BOUNDED(c, dlock_try_acquire(c, "drip2", 5000, &l), 2 * (CONN_MS + CMD_MS), DLOCK_EIO,
            DLOCK_EUNKNOWN);
    int locked;
    BOUNDED(c, dlock_is_locked(c, "drip", &locked, NULL), CONN_MS + CMD_MS, DLOCK_EIO);
    th_proxy_set(p, TH_PASS, 0);
    th_sleep_ms(50);
    BOUNDED(c, dlock_is_locked(c, "drip", &locked, NULL), CONN_MS + CMD_MS, DLOCK_OK);
    dlock_client_free(c);
    th_proxy_stop(p);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    printf("== connection resets during acquire\n");
    resets(s);
    resets_contended(s);
    printf("== replies delayed past the command timeout\n");
    latency(s);
    printf("== black-holed server\n");
    blackhole(s);
    keepalive_after_extend(s);
    printf("== dripped replies\n");
    drip(s);
    th_server_free(s);
    IT_PASS("test_network");
    return 0;
}
