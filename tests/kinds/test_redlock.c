/* test_redlock.c - the kinds on a Redlock set of three real servers:
 *   1. a multi-lock is a Redlock mutex per name: every name held on all
 *      three servers with the handle's part token, a fence per name; a
 *      plain Redlock mutex of a member is busy; release frees every name;
 *   2. all or nothing: a set with a held member fails and leaves none of
 *      its names behind (the ones taken first are given back);
 *   3. one server down: multi-locks still work on the majority, fences
 *      still rise; extend and keepalive act on every name;
 *   4. async: a multi-lock waiter is woken by the release of a member;
 *   5. no deadlock: 6 processes take overlapping sets in opposite orders
 *      and 2 take plain mutexes of the same names, for 4 s, one server
 *      killed for the second half: every one finishes, the history shows
 *      mutual exclusion, rising fences per name and no partial multi-lock;
 *   6. semaphores are refused (DLOCK_ENOTSUP): a majority of independent
 *      masters cannot count permits (README, "Kinds of locks";
 *      docs/REDLOCK.md). Read-write locks are supported:
 *      test_redlock_rw.c.
 */
#include <signal.h>
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

/* The token that holds `name` on server i, or "" (a static buffer). */
static const char *token_on(int i, const char *name) {
    static char buf[64];
    redisReply *r = th_server_cmd(S[i], "HGET dlock:{%s} t", name);
    snprintf(buf, sizeof buf, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

/* On how many of the running servers `name` is held. */
static int held_on(const char *name) {
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += th_server_pid(S[i]) > 0 && token_on(i, name)[0] != '\0';
    return n;
}

static void basics(void) {
    dlock_client *c = client();
    const char *abc[] = {"r-c", "r-a", "r-b"};
    dlock_lock *l, *x = NULL;
    IT_RC(c, dlock_multi_try_acquire(c, abc, 3, 5000, &l), DLOCK_OK);
    TH_EQ_INT(dlock_lock_kind(l), DLOCK_KIND_MULTI);
    TH_EQ_INT(dlock_lock_names(l), 3);
    const char *want[] = {"r-a", "r-b", "r-c"};
    for (int i = 0; i < 3; i++) {
        const char *n;
        int64_t f;
        IT_RC(c, dlock_lock_name_at(l, i, &n, &f), DLOCK_OK);
        TH_EQ_STR(n, want[i]);
        TH_CHECK(f >= 1);
        TH_EQ_INT(held_on(want[i]), 3);
    }
    TH_CHECK(dlock_held(l));
    IT_RC(c, dlock_try_acquire(c, "r-b", 5000, &x), DLOCK_EBUSY);
    const char *cd[] = {"r-d", "r-c"};
    IT_RC(c, dlock_multi_try_acquire(c, cd, 2, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(held_on("r-d"), 0); /* r-d, taken first, was given back */
    IT_RC(c, dlock_release(l), DLOCK_OK);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(held_on(want[i]), 0);
    TH_CHECK(!dlock_held(l));
    dlock_lock_free(l);
    /* Fences rise per name across holders. */
    int64_t f1, f2;
    IT_RC(c, dlock_multi_try_acquire(c, cd, 2, 5000, &l), DLOCK_OK);
    dlock_lock_name_at(l, 0, NULL, &f1); /* r-c */
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    IT_RC(c, dlock_multi_try_acquire(c, cd, 2, 5000, &l), DLOCK_OK);
    dlock_lock_name_at(l, 0, NULL, &f2);
    TH_CHECK(f2 > f1);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
}

static void minority_down(void) {
    dlock_client *c = client();
    const char *pq[] = {"r-p", "r-q"};
    dlock_lock *l;
    IT_RC(c, dlock_multi_try_acquire(c, pq, 2, 5000, &l), DLOCK_OK);
    int64_t before;
    dlock_lock_name_at(l, 1, NULL, &before);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    TH_EQ_INT(th_server_kill(S[2]), 0);
    IT_RC(c, dlock_multi_wait(c, pq, 2, 3000, 800, &l), DLOCK_OK);
    int64_t after;
    dlock_lock_name_at(l, 1, NULL, &after);
    TH_CHECK(after > before);
    IT_RC(c, dlock_extend(l, 10000), DLOCK_OK);
    TH_CHECK(th_server_int(S[0], "PTTL %s", "dlock:{r-q}") > 9000);
    IT_RC(c, dlock_extend(l, 800), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(l, 0, NULL, NULL), DLOCK_OK);
    th_sleep_ms(1500); /* past the 800 ms lease: the keepalive extended both names */
    TH_CHECK(dlock_held(l));
    TH_EQ_INT(held_on("r-p"), 2);
    TH_EQ_INT(held_on("r-q"), 2);
    dlock_keepalive_stop(l);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    TH_EQ_INT(held_on("r-p") + held_on("r-q"), 0);
    dlock_lock_free(l);
    TH_EQ_INT(th_server_restart(S[2]), 0);
    dlock_client_free(c);
}

static void async_wait(void) {
    dlock_client *c = client(), *a = client();
    dlock_lock *y;
    IT_RC(c, dlock_try_acquire(c, "r-y", 10000, &y), DLOCK_OK);
    const char *xy[] = {"r-x", "r-y"};
    et_res w = {0};
    IT_RC(a, dlock_multi_wait_async(a, xy, 2, 5000, 5000, et_cb, &w, NULL), DLOCK_OK);
    et_run_until(a, &w.done, 300);
    TH_CHECK(!w.done);
    long long t0 = th_now_us();
    IT_RC(c, dlock_release(y), DLOCK_OK);
    et_run_until(a, &w.done, 3000);
    ET_STATUS(w, DLOCK_OK);
    long long ms = (w.at_us - t0) / 1000;
    printf("redlock multi waiter got both names %lld ms after the release\n", ms);
    TH_CHECK(ms < 500);
    TH_EQ_INT(held_on("r-x") + held_on("r-y"), 6);
    et_res rel = {0};
    IT_RC(a, dlock_release_async(w.lock, et_cb, &rel, NULL), DLOCK_OK);
    et_run_until(a, &rel.done, 3000);
    ET_STATUS(rel, DLOCK_OK);
    TH_EQ_INT(held_on("r-x") + held_on("r-y"), 0);
    dlock_lock_free(w.lock);
    dlock_lock_free(y);
    dlock_client_free(a);
    dlock_client_free(c);
}

static hist *H;

static int crossing(void *arg) {
    int idx = *(const int *)arg;
    static const char *const sets[6][2] = {{"d-a", "d-b"}, {"d-b", "d-c"}, {"d-c", "d-a"},
                                           {"d-b", "d-a"}, {"d-c", "d-b"}, {"d-a", "d-c"}};
    dlock_client *c = client();
    long long end = th_now_us() + 4000000;
    int n = 0;
    while (th_now_us() < end) {
        dlock_lock *l;
        long long req = th_now_us();
        int rc = idx < 6 ? dlock_multi_wait(c, sets[idx], 2, 10000, 3000, &l)
                         : dlock_wait(c, idx == 6 ? "d-a" : "d-c", 10000, 3000, &l);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "worker %d: %s: %s\n", idx, dlock_err_name(rc),
                    dlock_client_errstr(c));
            return 1;
        }
        long long start = th_now_us(), last = kt_hold(l, start, 2);
        if (idx < 6) {
            kt_record_names(H, l, 2, req, start, last, idx);
        } else {
            dlock_info in;
            dlock_info_get(l, &in);
            hist_add(H, in.name, in.fence, start, last, idx);
        }
        if (dlock_release(l) != DLOCK_OK)
            return 2;
        dlock_lock_free(l);
        n++;
    }
    printf("worker %d: %d acquisitions\n", idx, n);
    dlock_client_free(c);
    return n >= 5 ? 0 : 3;
}

static void refused(void) {
    dlock_client *c = client();
    dlock_lock *x = NULL;
    IT_RC(c, dlock_sem_try_acquire(c, "r-s", 2, 5000, &x), DLOCK_ENOTSUP);
    IT_RC(c, dlock_sem_wait(c, "r-s", 1, 100, 5000, &x), DLOCK_ENOTSUP);
    TH_CHECK(strstr(dlock_client_errstr(c), "Redlock") != NULL);
    TH_CHECK(x == NULL);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(100);
    for (int i = 0; i < 3; i++) {
        S[i] = th_server_start(NULL);
        TH_CHECK(S[i] != NULL);
    }
    snprintf(URL, sizeof URL, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(S[0]), th_server_port(S[1]), th_server_port(S[2]));
    basics();
    minority_down();
    async_wait();
    H = hist_new(100000);
    static int idx[8];
    pid_t pids[8];
    for (int i = 0; i < 8; i++) {
        idx[i] = i;
        pids[i] = th_spawn(crossing, &idx[i]);
        TH_CHECK(pids[i] > 0);
    }
    th_sleep_ms(2000);
    TH_EQ_INT(th_server_kill(S[1]), 0); /* the majority goes on */
    for (int i = 0; i < 8; i++)
        TH_EQ_INT(th_wait(pids[i], 30000), 0);
    TH_EQ_INT(th_server_restart(S[1]), 0);
    hist_result res;
    TH_EQ_INT(hist_check(H, "redlock: overlapping multi-locks", &res), 0);
    TH_CHECK(res.multi > 20);
    TH_EQ_INT(res.partial_multi, 0);
    hist_free(H);
    refused();
    for (int i = 0; i < 3; i++)
        th_server_free(S[i]);
    IT_PASS("test_redlock");
    return 0;
}
