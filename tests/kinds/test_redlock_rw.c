/* test_redlock_rw.c - read-write locks on a Redlock set of three real
 * servers (docs/REDLOCK.md, "Read-write locks"):
 *   1. readers share, a writer excludes all: every grant is held on all
 *      three servers; fences rise on every write, a reader gets the last
 *      write's; dlock_holders_get and dlock_list give the majority's view;
 *   2. a minority granting is undone: with a writer held on two servers
 *      (one-server clients), a Redlock reader is granted by the third
 *      only, and leaves no trace there; counters that disagree are
 *      settled by the FENCE step (a writer: max + 1; a reader: max, so
 *      the next writer still rises above it);
 *   3. one server down: readers and a writer still work on the majority,
 *      extend (by handle and by token) and keepalive too;
 *   4. async: a waiter is woken by the release (push, not a slice), and a
 *      cancelled waiter leaves no queue entry on any server;
 *   5. 6 reader and 2 writer processes for 4 s, one server killed
 *      halfway: the history shows never a writer with anyone else, fences
 *      rising on writes, and every worker served in bounded time (FIFO).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etest.h"
#include "ktest.h"

static th_server *S[3];
static char URL[256];

static dlock_client *client(void) {
    dlock_options o;
    it_options(&o, 300, 500);
    return it_client(URL, &o);
}

/* A client of server i alone. */
static dlock_client *single(int i) {
    dlock_options o;
    it_options(&o, 300, 500);
    return it_client(th_server_url(S[i]), &o);
}

static int64_t fence_of(const dlock_lock *l) {
    dlock_info in;
    dlock_info_get(l, &in);
    return in.fence;
}

/* On how many running servers l's token holds `name`. */
static int held_on(const char *name, const dlock_lock *l) {
    dlock_info in;
    dlock_info_get(l, &in);
    int n = 0;
    for (int i = 0; i < 3; i++) {
        if (th_server_pid(S[i]) <= 0)
            continue;
        redisReply *r = th_server_cmd(S[i], "ZSCORE dlock:{%s} %s", name, in.token);
        n += r != NULL && r->type == REDIS_REPLY_STRING;
        freeReplyObject(r);
    }
    return n;
}

/* Holders and queued waiters of `name`, summed over the running servers. */
static long long on_servers(const char *name, const char *suffix) {
    long long n = 0;
    for (int i = 0; i < 3; i++)
        if (th_server_pid(S[i]) > 0)
            n += th_server_int(S[i], "ZCARD dlock:{%s}%s", name, suffix);
    return n;
}

/* dlock_list's callback: the rw locks it lists, and their holders. */
static int list_rw(const dlock_list_entry *e, void *ud) {
    int *n = ud;
    if (e->kind == DLOCK_KIND_RW)
        *n += e->holders;
    return 0;
}

static void basics(void) {
    dlock_client *c = client();
    dlock_lock *r1, *r2, *w, *x = NULL;
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_SHARED, 5000, &r1), DLOCK_OK);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_SHARED, 5000, &r2), DLOCK_OK);
    TH_CHECK(dlock_lock_shared(r1) && dlock_lock_kind(r1) == DLOCK_KIND_RW);
    TH_EQ_INT(held_on("rw-a", r1), 3);
    TH_EQ_INT(held_on("rw-a", r2), 3);
    TH_EQ_INT(fence_of(r1), 0); /* no writer yet */
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_EXCLUSIVE, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(on_servers("rw-a", ""), 6); /* the writer left nothing */
    dlock_holders *h;
    IT_RC(c, dlock_holders_get(c, "rw-a", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_kind(h), DLOCK_KIND_RW);
    TH_EQ_INT(dlock_holders_count(h), 2);
    TH_CHECK(dlock_holders_shared(h, 0) && dlock_holders_shared(h, 1));
    dlock_holders_free(h);
    int listed = 0;
    IT_RC(c, dlock_list(c, NULL, list_rw, &listed, NULL), DLOCK_OK);
    TH_EQ_INT(listed, 2);
    IT_RC(c, dlock_release(r1), DLOCK_OK);
    IT_RC(c, dlock_release(r2), DLOCK_OK);
    TH_EQ_INT(on_servers("rw-a", ""), 0);
    dlock_lock_free(r1);
    dlock_lock_free(r2);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_EXCLUSIVE, 5000, &w), DLOCK_OK);
    TH_EQ_INT(held_on("rw-a", w), 3);
    int64_t f1 = fence_of(w);
    TH_CHECK(f1 >= 1);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_SHARED, 5000, &x), DLOCK_EBUSY);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_EXCLUSIVE, 5000, &x), DLOCK_EBUSY);
    /* Not a mutex: every master refuses it (WRONGTYPE), so no majority. */
    IT_RC(c, dlock_try_acquire(c, "rw-a", 5000, &x), DLOCK_ENOQUORUM);
    TH_CHECK(strstr(dlock_client_errstr(c), "WRONGTYPE") != NULL);
    IT_RC(c, dlock_holders_get(c, "rw-a", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_count(h), 1);
    TH_CHECK(!dlock_holders_shared(h, 0));
    TH_EQ_INT(dlock_holders_at(h, 0)->fence, f1);
    dlock_holders_free(h);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    dlock_lock_free(w);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_EXCLUSIVE, 5000, &w), DLOCK_OK);
    int64_t f2 = fence_of(w);
    TH_CHECK(f2 > f1);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    dlock_lock_free(w);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-a", DLOCK_SHARED, 5000, &r1), DLOCK_OK);
    TH_EQ_INT(fence_of(r1), f2); /* the last write's */
    IT_RC(c, dlock_release(r1), DLOCK_OK);
    dlock_lock_free(r1);
    IT_RC(c, dlock_holders_get(c, "rw-a", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_count(h), 0);
    TH_EQ_INT(dlock_holders_last_fence(h), f2);
    dlock_holders_free(h);
    dlock_client_free(c);
}

static void minority_grant(void) {
    dlock_client *c = client(), *s0 = single(0), *s1 = single(1);
    dlock_lock *w0, *w1, *x = NULL, *w, *r;
    /* A writer on servers 0 and 1 (their counters: 1), none on 2. */
    IT_RC(s0, dlock_rw_try_acquire(s0, "rw-m", DLOCK_EXCLUSIVE, 5000, &w0), DLOCK_OK);
    IT_RC(s1, dlock_rw_try_acquire(s1, "rw-m", DLOCK_EXCLUSIVE, 5000, &w1), DLOCK_OK);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-m", DLOCK_SHARED, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(th_server_int(S[2], "EXISTS dlock:{rw-m}"), 0); /* its grant there undone */
    IT_RC(c, dlock_rw_wait(c, "rw-m", DLOCK_SHARED, 200, 5000, &x), DLOCK_ETIMEDOUT);
    TH_EQ_INT(th_server_int(S[2], "EXISTS dlock:{rw-m}"), 0);
    TH_EQ_INT(on_servers("rw-m", ":pq"), 0); /* and its queue entries */
    IT_RC(s0, dlock_release(w0), DLOCK_OK);
    IT_RC(s1, dlock_release(w1), DLOCK_OK);
    dlock_lock_free(w0);
    dlock_lock_free(w1);
    /* Counters 1, 1, 0, INCRed to 2, 2, 1: the writer writes max + 1 to a
     * majority (here all three, where it holds). */
    IT_RC(c, dlock_rw_try_acquire(c, "rw-m", DLOCK_EXCLUSIVE, 5000, &w), DLOCK_OK);
    TH_EQ_INT(fence_of(w), 3);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(th_server_int(S[i], "INCRBY dlock:{rw-m}:fence 0"), 3);
    TH_EQ_INT(held_on("rw-m", w), 3);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    dlock_lock_free(w);
    /* Counters that disagree for a reader: it takes the highest and
     * raises a majority to it, so the next writer rises above it. */
    TH_EQ_INT(th_server_int(S[2], "INCRBY dlock:{rw-m}:fence 4"), 7);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-m", DLOCK_SHARED, 5000, &r), DLOCK_OK);
    TH_EQ_INT(fence_of(r), 7);
    TH_EQ_INT(th_server_int(S[0], "INCRBY dlock:{rw-m}:fence 0") +
                  th_server_int(S[1], "INCRBY dlock:{rw-m}:fence 0"), 14);
    IT_RC(c, dlock_release(r), DLOCK_OK);
    dlock_lock_free(r);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-m", DLOCK_EXCLUSIVE, 5000, &w), DLOCK_OK);
    TH_CHECK(fence_of(w) > 7);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    dlock_lock_free(w);
    dlock_client_free(s0);
    dlock_client_free(s1);
    dlock_client_free(c);
}

static void minority_down(void) {
    dlock_client *c = client();
    dlock_lock *w, *r1, *r2, *x = NULL;
    IT_RC(c, dlock_rw_try_acquire(c, "rw-d", DLOCK_EXCLUSIVE, 5000, &w), DLOCK_OK);
    int64_t before = fence_of(w);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    dlock_lock_free(w);
    TH_EQ_INT(th_server_kill(S[2]), 0);
    IT_RC(c, dlock_rw_wait(c, "rw-d", DLOCK_SHARED, 3000, 800, &r1), DLOCK_OK);
    IT_RC(c, dlock_rw_wait(c, "rw-d", DLOCK_SHARED, 3000, 800, &r2), DLOCK_OK);
    TH_EQ_INT(fence_of(r1), before);
    IT_RC(c, dlock_rw_try_acquire(c, "rw-d", DLOCK_EXCLUSIVE, 5000, &x), DLOCK_EBUSY);
    IT_RC(c, dlock_extend(r1, 10000), DLOCK_OK);
    TH_CHECK(th_server_int(S[0], "PTTL %s", "dlock:{rw-d}") > 9000);
    dlock_info in;
    dlock_info_get(r1, &in);
    IT_RC(c, dlock_extend_token(c, "rw-d", in.token, 12000), DLOCK_OK); /* by token too */
    TH_CHECK(th_server_int(S[1], "PTTL %s", "dlock:{rw-d}") > 11000);
    IT_RC(c, dlock_keepalive_start(r2, 0, NULL, NULL), DLOCK_OK);
    th_sleep_ms(1200); /* past r2's 800 ms lease: the keepalive extended it */
    TH_CHECK(dlock_held(r2));
    TH_EQ_INT(held_on("rw-d", r2), 2);
    dlock_keepalive_stop(r2);
    IT_RC(c, dlock_release(r1), DLOCK_OK);
    IT_RC(c, dlock_release(r2), DLOCK_OK);
    dlock_lock_free(r1);
    dlock_lock_free(r2);
    IT_RC(c, dlock_rw_wait(c, "rw-d", DLOCK_EXCLUSIVE, 3000, 800, &w), DLOCK_OK);
    TH_CHECK(fence_of(w) > before);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    dlock_lock_free(w);
    TH_EQ_INT(on_servers("rw-d", ""), 0);
    TH_EQ_INT(th_server_restart(S[2]), 0);
    dlock_client_free(c);
}

static void async_wait(void) {
    dlock_client *c = client(), *a = client();
    dlock_lock *w;
    IT_RC(c, dlock_rw_try_acquire(c, "rw-y", DLOCK_EXCLUSIVE, 10000, &w), DLOCK_OK);
    et_res ww = {0}, gone = {0};
    uint64_t gone_id = 0;
    IT_RC(a, dlock_rw_wait_async(a, "rw-y", DLOCK_EXCLUSIVE, 5000, 5000, et_cb, &ww, NULL),
          DLOCK_OK);
    IT_RC(a, dlock_rw_wait_async(a, "rw-y", DLOCK_SHARED, 5000, 5000, et_cb, &gone, &gone_id),
          DLOCK_OK);
    et_run_until(a, &ww.done, 400);
    TH_CHECK(!ww.done && !gone.done);
    TH_EQ_INT(on_servers("rw-y", ":pq"), 6); /* both queued on every server */
    IT_RC(a, dlock_op_cancel(a, gone_id), DLOCK_OK);
    et_run_until(a, &gone.done, 2000);
    ET_STATUS(gone, DLOCK_ECANCELED);
    long long t0 = th_now_us();
    while (on_servers("rw-y", ":pq") > 3 && th_now_us() - t0 < 2000000)
        et_run_until(a, &ww.done, 10);
    TH_EQ_INT(on_servers("rw-y", ":pq"), 3); /* the cancelled one left every queue */
    t0 = th_now_us();
    IT_RC(c, dlock_release(w), DLOCK_OK);
    et_run_until(a, &ww.done, 3000);
    ET_STATUS(ww, DLOCK_OK);
    long long ms = (ww.at_us - t0) / 1000;
    printf("redlock rw writer woken %lld ms after the release\n", ms);
    TH_CHECK(ms < 200);
    TH_EQ_INT(held_on("rw-y", ww.lock), 3);
    TH_EQ_INT(on_servers("rw-y", ":pq"), 0);
    TH_CHECK(fence_of(ww.lock) > fence_of(w));
    et_res rel = {0};
    IT_RC(a, dlock_release_async(ww.lock, et_cb, &rel, NULL), DLOCK_OK);
    et_run_until(a, &rel.done, 3000);
    ET_STATUS(rel, DLOCK_OK);
    TH_EQ_INT(on_servers("rw-y", ""), 0);
    dlock_lock_free(ww.lock);
    dlock_lock_free(w);
    dlock_client_free(a);
    dlock_client_free(c);
}

/* ---- 5: history ---- */

static hist *H;

static int rw_worker(int idx, void *arg) {
    (void)arg;
    dlock_client *c = client();
    int writer = idx < 2, n = 0;
    long long worst = 0;
    srand((unsigned)(getpid() * 31));
    long long end = th_now_us() + 4000000;
    while (th_now_us() < end) {
        dlock_lock *l;
        long long req = th_now_us();
        int rc = dlock_rw_wait(c, "rw-h", writer ? DLOCK_EXCLUSIVE : DLOCK_SHARED, 10000, 3000,
                               &l);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "worker %d: %s: %s\n", idx, dlock_err_name(rc),
                    dlock_client_errstr(c));
            return 1;
        }
        long long start = th_now_us(), last = kt_hold(l, start, 1 + rand() % 10);
        if (start - req > worst)
            worst = start - req;
        hist_rec r = {.fence = fence_of(l), .req_us = req, .start_us = start, .end_us = last,
                      .worker = idx, .limit = writer ? 1 : HIST_ANY, .shared = !writer};
        snprintf(r.name, sizeof r.name, "rw-h");
        hist_add_rec(H, &r);
        if (dlock_release(l) != DLOCK_OK)
            return 2;
        dlock_lock_free(l);
        n++;
    }
    printf("worker %d (%s): %d acquisitions, longest wait %lld ms\n", idx,
           writer ? "writer" : "reader", n, worst / 1000);
    dlock_client_free(c);
    /* FIFO: nobody starves, and a wait lasts a few holds, not a lease. */
    return n >= 5 && worst < 2500000 ? 0 : 3;
}

static int spawned(void *arg) { return rw_worker(*(const int *)arg, NULL); }

int main(void) {
    th_test_init(100);
    for (int i = 0; i < 3; i++) {
        S[i] = th_server_start(NULL);
        TH_CHECK(S[i] != NULL);
    }
    snprintf(URL, sizeof URL, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(S[0]), th_server_port(S[1]), th_server_port(S[2]));
    basics();
    minority_grant();
    minority_down();
    async_wait();
    H = hist_new(100000);
    static int idx[8];
    pid_t pids[8];
    for (int i = 0; i < 8; i++) {
        idx[i] = i;
        pids[i] = th_spawn(spawned, &idx[i]);
        TH_CHECK(pids[i] > 0);
    }
    th_sleep_ms(2000);
    TH_EQ_INT(th_server_kill(S[1]), 0); /* the majority goes on */
    for (int i = 0; i < 8; i++)
        TH_EQ_INT(th_wait(pids[i], 30000), 0);
    TH_EQ_INT(th_server_restart(S[1]), 0);
    hist_result res;
    TH_EQ_INT(hist_check(H, "redlock: 6 readers, 2 writers", &res), 0);
    printf("most holders at once: %lld\n", (long long)res.max_holders);
    TH_CHECK(res.max_holders >= 2);
    hist_free(H);
    for (int i = 0; i < 3; i++)
        th_server_free(S[i]);
    IT_PASS("test_redlock_rw");
    return 0;
}
