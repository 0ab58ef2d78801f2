/* test_redlock_nofence_queue.c - a Redlock waiter is never handed the lock
 * by one master, with fencing off too (found reviewing the shared Redlock
 * acquire core, not one of issue 9's list).
 *
 * A master's RELEASE hands a free lock straight to the head of its queue
 * unless the head queued as a Redlock member (fencing mode 2 or 3 in its
 * queue entry: then it is only woken, and takes the lock with its next
 * ACQUIRE on every master). The mutex sent mode 3 on a Redlock set with
 * fencing on, but "0" with fencing off: each master could then give the
 * lock away on its own, and a waiter whose deadline came right after such
 * a hand-over read its CANCEL's "handed to you" from the first master
 * alone as a grant: one master's word for a Redlock lock.
 * Checked on the servers: a waiter's queue entry on every master says 2 or
 * 3, with fencing on and off. Deterministic: the entry is read directly.
 */
#include <string.h>

#include "etest.h" /* tests/engine: et_cb, et_run_until */

static int g_failed;

/* The fencing field of the only entry in name's queue on s ("expiry ttl
 * fencing chan meta"), or -1 while there is none. */
static int queued_mode(th_server *s, const char *name) {
    redisReply *r = th_server_cmd(s, "HVALS dlock:{%s}:qi", name);
    int mode = -1;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const char *v = r->element[0]->str;
        const char *sp1 = strchr(v, ' ');
        const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (sp2 != NULL && sp2[1] >= '0' && sp2[1] <= '9')
            mode = sp2[1] - '0';
    }
    freeReplyObject(r);
    return mode;
}

static void one_case(th_server **s, const char *url, int fencing, const char *name) {
    dlock_options o;
    it_options(&o, 500, 1000);
    o.fencing = fencing;
    dlock_client *h = it_client(url, &o);
    dlock_client *w = it_client(url, &o);
    dlock_lock *held;
    IT_RC(h, dlock_try_acquire(h, name, 20000, &held), DLOCK_OK);
    et_res r = {0};
    uint64_t op;
    IT_RC(w, dlock_wait_async(w, name, 10000, 10000, et_cb, &r, &op), DLOCK_OK);
    /* Each master queues it when its copy of the attempt arrives: the
     * attempt settles on a majority, so wait for all three. */
    long long end = th_now_us() + 5000000;
    while ((queued_mode(s[0], name) < 0 || queued_mode(s[1], name) < 0 ||
            queued_mode(s[2], name) < 0) &&
           th_now_us() < end)
        dlock_poll_once(w, 10);
    for (int i = 0; i < 3; i++) {
        int m = queued_mode(s[i], name);
        printf("fencing %s: master %d queues the waiter with mode %d\n", fencing ? "on" : "off",
               i, m);
        if (m != 2 && m != 3) {
            fprintf(stderr, "%s:%d: FAILED: fencing %s: master %d would hand the lock to the "
                            "waiter on its own (queue entry mode %d, want 2 or 3)\n",
                    __FILE__, __LINE__, fencing ? "on" : "off", i, m);
            g_failed++;
        }
    }
    IT_RC(w, dlock_op_cancel(w, op), DLOCK_OK);
    et_run_until(w, &r.done, 5000);
    TH_CHECK(r.done);
    IT_RC(h, dlock_release(held), DLOCK_OK);
    dlock_lock_free(held);
    dlock_client_free(w);
    dlock_client_free(h);
}

int main(void) {
    th_test_init(50);
    th_server *s[3];
    for (int i = 0; i < 3; i++)
        TH_CHECK((s[i] = th_server_start(NULL)) != NULL);
    char url[256];
    it_redlock_url(url, sizeof url, s, 3);
    one_case(s, url, 1, "nf-on");
    one_case(s, url, 0, "nf-off");
    for (int i = 0; i < 3; i++)
        th_server_free(s[i]);
    if (g_failed) {
        fprintf(stderr, "test_redlock_nofence_queue: %d masters would hand over alone\n",
                g_failed);
        return 1;
    }
    IT_PASS("test_redlock_nofence_queue");
    return 0;
}
