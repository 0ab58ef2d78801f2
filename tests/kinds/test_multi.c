/* test_multi.c - multi-locks on one server:
 *   1. all or nothing: a set is taken at once with a fence per name (names
 *      sorted, repeats dropped); a plain mutex of a member is busy; a set
 *      that overlaps a held one takes nothing; release frees every name;
 *   2. a multi waiter queues with plain mutex waiters and gets the names
 *      handed over by their releases, woken without polling;
 *   3. extend and keepalive act on every name; a name lost meanwhile makes
 *      the release ENOTHELD and the others are still released;
 *   4. async: try, wait woken by a release, cancel (leaves every queue);
 *   5. a waiter that gives up hands its place on: W waits for {x, y} (y
 *      held), V for {x, z} behind W on x; when W's deadline passes, x goes
 *      to V at once (V is woken, and gets both names), not after V's own
 *      slice or deadline;
 *   6. no deadlock: 6 processes take overlapping sets in opposite orders
 *      ({a,b}, {b,c}, {c,a}, reversed) and 2 take plain mutexes, for 4 s:
 *      every one finishes, and the history (one interval per name held)
 *      shows mutual exclusion and rising fences on every name.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etest.h"
#include "ktest.h"

static th_server *S;

static dlock_client *client(void) {
    dlock_options o;
    it_options(&o, 1000, 2000);
    return it_client(th_server_url(S), &o);
}

static long long exists(const char *name) {
    char key[128];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return th_server_int(S, "EXISTS %s", key);
}

static void all_or_nothing(void) {
    dlock_client *c = client();
    const char *abc[] = {"m-c", "m-a", "m-b", "m-a"};
    dlock_lock *l, *x = NULL;
    IT_RC(c, dlock_multi_try_acquire(c, abc, 4, 5000, &l), DLOCK_OK);
    TH_EQ_INT(dlock_lock_kind(l), DLOCK_KIND_MULTI);
    TH_EQ_INT(dlock_lock_names(l), 3);
    const char *want[] = {"m-a", "m-b", "m-c"};
    for (int i = 0; i < 3; i++) {
        const char *n;
        int64_t f;
        IT_RC(c, dlock_lock_name_at(l, i, &n, &f), DLOCK_OK);
        TH_EQ_STR(n, want[i]);
        TH_CHECK(f >= 1);
        TH_EQ_INT(exists(want[i]), 1);
    }
    IT_RC(c, dlock_lock_name_at(l, 3, NULL, NULL), DLOCK_EINVAL);
    dlock_info in;
    dlock_info_get(l, &in);
    TH_EQ_STR(in.name, "m-a");
    TH_CHECK(in.held);
    IT_RC(c, dlock_try_acquire(c, "m-b", 5000, &x), DLOCK_EBUSY);
    const char *cd[] = {"m-c", "m-d"};
    IT_RC(c, dlock_multi_try_acquire(c, cd, 2, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(exists("m-d"), 0); /* nothing taken */
    dlock_holder h;
    IT_RC(c, dlock_inspect(c, "m-b", &h), DLOCK_OK);
    TH_CHECK(h.locked);
    TH_EQ_STR(h.token, in.token);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(exists(want[i]), 0);
    IT_RC(c, dlock_multi_try_acquire(c, cd, 2, 5000, &x), DLOCK_OK);
    IT_RC(c, dlock_release(x), DLOCK_OK);
    dlock_lock_free(x);
    dlock_lock_free(l);
    const char *bad[] = {"ok", ""};
    IT_RC(c, dlock_multi_try_acquire(c, bad, 2, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_multi_try_acquire(c, bad, 0, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_multi_try_acquire(c, bad, DLOCK_MULTI_MAX + 1, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_multi_try_acquire(c, NULL, 1, 5000, &x), DLOCK_EINVAL);
    dlock_client_free(c);
}

/* ---- 2: hand-over from plain mutexes ---- */

static int multi_waiter(void *arg) {
    (void)arg;
    dlock_client *c = client();
    const char *xy[] = {"h-x", "h-y"};
    dlock_lock *l;
    if (dlock_multi_wait(c, xy, 2, 8000, 5000, &l) != DLOCK_OK)
        return 1;
    redisReply *r = th_server_cmd(S, "SET %s %lld", "h-got", th_now_us());
    freeReplyObject(r);
    int rc = dlock_release(l);
    dlock_lock_free(l);
    dlock_client_free(c);
    return rc == DLOCK_OK ? 0 : 2;
}

static void handover(void) {
    dlock_client *c = client();
    dlock_lock *x, *y;
    IT_RC(c, dlock_try_acquire(c, "h-x", 10000, &x), DLOCK_OK);
    IT_RC(c, dlock_try_acquire(c, "h-y", 10000, &y), DLOCK_OK);
    pid_t pid = th_spawn(multi_waiter, NULL);
    long long end = th_now_us() + 5000000;
    while ((th_server_int(S, "ZCARD %s", "dlock:{h-x}:q") < 1 ||
            th_server_int(S, "ZCARD %s", "dlock:{h-y}:q") < 1) &&
           th_now_us() < end)
        th_sleep_ms(5);
    TH_EQ_INT(th_server_int(S, "ZCARD %s", "dlock:{h-y}:q"), 1);
    IT_RC(c, dlock_release(x), DLOCK_OK); /* handed to the waiter, which keeps it */
    th_sleep_ms(300);
    TH_EQ_INT(exists("h-x"), 1);
    dlock_lock *z = NULL;
    IT_RC(c, dlock_try_acquire(c, "h-x", 1000, &z), DLOCK_EBUSY);
    long long t0 = th_now_us();
    IT_RC(c, dlock_release(y), DLOCK_OK);
    TH_EQ_INT(th_wait(pid, 8000), 0);
    redisReply *r = th_server_cmd(S, "GET %s", "h-got");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    long long ms = (atoll(r->str) - t0) / 1000;
    freeReplyObject(r);
    printf("multi waiter got both names %lld ms after the last release\n", ms);
    TH_CHECK(ms < 500);
    TH_EQ_INT(exists("h-x") + exists("h-y"), 0);
    dlock_lock_free(x);
    dlock_lock_free(y);
    dlock_client_free(c);
}

/* ---- 3: extend, keepalive, a lost name ---- */

static void extend_keepalive(void) {
    dlock_client *c = client();
    const char *pq[] = {"k-p", "k-q"};
    dlock_lock *l;
    IT_RC(c, dlock_multi_try_acquire(c, pq, 2, 600, &l), DLOCK_OK);
    IT_RC(c, dlock_extend(l, 10000), DLOCK_OK);
    TH_CHECK(th_server_int(S, "PTTL %s", "dlock:{k-p}") > 9000);
    TH_CHECK(th_server_int(S, "PTTL %s", "dlock:{k-q}") > 9000);
    IT_RC(c, dlock_extend(l, 600), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(l, 0, NULL, NULL), DLOCK_OK);
    th_sleep_ms(1500);
    TH_CHECK(dlock_held(l));
    TH_EQ_INT(exists("k-p") + exists("k-q"), 2);
    dlock_keepalive_stop(l);
    TH_EQ_INT(th_server_int(S, "DEL %s", "dlock:{k-q}"), 1);
    IT_RC(c, dlock_extend(l, 5000), DLOCK_ENOTHELD);
    IT_RC(c, dlock_release(l), DLOCK_ENOTHELD); /* k-p is released all the same */
    TH_EQ_INT(exists("k-p"), 0);
    dlock_lock_free(l);
    IT_RC(c, dlock_multi_try_acquire(c, pq, 2, 5000, &l), DLOCK_OK);
    TH_EQ_INT(th_server_int(S, "DEL %s", "dlock:{k-q}"), 1);
    IT_RC(c, dlock_release(l), DLOCK_ENOTHELD);
    TH_CHECK(strstr(dlock_client_errstr(c), "only 1 of the 2") != NULL);
    TH_EQ_INT(exists("k-p"), 0);
    dlock_lock_free(l);
    dlock_client_free(c);
}

/* ---- 4: async ---- */

static void async_api(void) {
    dlock_client *c = client(), *a = client();
    const char *st[] = {"a-s", "a-t"};
    et_res t = {0};
    IT_RC(a, dlock_multi_try_acquire_async(a, st, 2, 5000, et_cb, &t, NULL), DLOCK_OK);
    et_run_until(a, &t.done, 3000);
    ET_STATUS(t, DLOCK_OK);
    et_res w = {0}, k = {0};
    IT_RC(a, dlock_multi_wait_async(a, st, 2, 8000, 5000, et_cb, &w, NULL), DLOCK_OK);
    uint64_t kid;
    const char *tu[] = {"a-t", "a-u"};
    IT_RC(a, dlock_multi_wait_async(a, tu, 2, 8000, 5000, et_cb, &k, &kid), DLOCK_OK);
    et_run_until(a, &w.done, 300);
    TH_CHECK(!w.done && !k.done);
    TH_EQ_INT(th_server_int(S, "ZCARD %s", "dlock:{a-u}:q"), 1);
    IT_RC(a, dlock_op_cancel(a, kid), DLOCK_OK);
    et_run_until(a, &k.done, 3000);
    ET_STATUS(k, DLOCK_ECANCELED);
    TH_EQ_INT(dlock_poll_run(a, 3000), 1); /* the clean-up finishes; w waits on */
    TH_EQ_INT(th_server_int(S, "ZCARD %s", "dlock:{a-u}:q"), 0);
    TH_EQ_INT(exists("a-u"), 0);
    long long t0 = th_now_us();
    et_res rel = {0};
    IT_RC(a, dlock_release_async(t.lock, et_cb, &rel, NULL), DLOCK_OK);
    et_run_until(a, &w.done, 3000);
    ET_STATUS(w, DLOCK_OK);
    TH_CHECK((th_now_us() - t0) / 1000 < 500);
    et_run_until(a, &rel.done, 3000);
    ET_STATUS(rel, DLOCK_OK);
    et_res ex = {0};
    IT_RC(a, dlock_extend_async(w.lock, 9000, et_cb, &ex, NULL), DLOCK_OK);
    et_run_until(a, &ex.done, 3000);
    ET_STATUS(ex, DLOCK_OK);
    TH_CHECK(th_server_int(S, "PTTL %s", "dlock:{a-t}") > 8000);
    IT_RC(c, dlock_release(w.lock), DLOCK_OK);
    dlock_lock_free(t.lock);
    dlock_lock_free(w.lock);
    dlock_client_free(a);
    dlock_client_free(c);
}

/* ---- 5: a waiter gives up ---- */

static void gives_up(void) {
    dlock_client *h = client(), *a = client(), *b = client();
    dlock_lock *y;
    IT_RC(h, dlock_try_acquire(h, "g-y", 10000, &y), DLOCK_OK);
    const char *xy[] = {"g-x", "g-y"}, *xz[] = {"g-x", "g-z"};
    et_res w = {0}, v = {0};
    IT_RC(a, dlock_multi_wait_async(a, xy, 2, 600, 5000, et_cb, &w, NULL), DLOCK_OK);
    long long t0 = th_now_us();
    while (th_server_int(S, "ZCARD %s", "dlock:{g-x}:q") < 1 && th_now_us() < t0 + 2000000)
        dlock_poll_once(a, 5);
    IT_RC(b, dlock_multi_wait_async(b, xz, 2, 5000, 5000, et_cb, &v, NULL), DLOCK_OK);
    while (!(w.done && v.done) && th_now_us() < t0 + 6000000) {
        dlock_poll_once(a, 2);
        dlock_poll_once(b, 2);
    }
    ET_STATUS(w, DLOCK_ETIMEDOUT);
    ET_STATUS(v, DLOCK_OK);
    long long ms = (v.at_us - w.at_us) / 1000;
    printf("the waiter behind got both names %lld ms after the one ahead gave up\n", ms);
    TH_CHECK(ms < 300);
    IT_RC(b, dlock_release(v.lock), DLOCK_OK);
    IT_RC(h, dlock_release(y), DLOCK_OK);
    dlock_lock_free(v.lock);
    dlock_lock_free(y);
    dlock_client_free(a);
    dlock_client_free(b);
    dlock_client_free(h);
}

/* ---- 6: no deadlock ---- */

static hist *H;

static int crossing(int idx, void *arg) {
    (void)arg;
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
        long long start = th_now_us();
        long long last = kt_hold(l, start, 2);
        if (idx < 6) {
            kt_record_names(H, l, 2, req, start, last, idx);
        } else {
            const char *name;
            int64_t fence;
            dlock_lock_name_at(l, 0, &name, &fence);
            hist_add(H, name, fence, start, last, idx);
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

int main(void) {
    th_test_init(100);
    S = th_server_start(NULL);
    TH_CHECK(S != NULL);
    all_or_nothing();
    handover();
    extend_keepalive();
    async_api();
    gives_up();
    H = hist_new(100000);
    TH_EQ_INT(th_run_workers(8, crossing, NULL, 60), 0);
    TH_EQ_INT(hist_check(H, "overlapping multi-locks", NULL), 0);
    hist_free(H);
    th_server_free(S);
    IT_PASS("test_multi");
    return 0;
}
