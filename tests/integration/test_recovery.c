/* test_recovery.c - SCRIPT FLUSH, restarts, CLIENT KILL between calls are
 * survived transparently; a paused (SIGSTOP) server makes calls fail with
 * EIO after the command timeout instead of hanging. */
#include "itest.h"

static void cycle(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_extend(l, 5000), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

static void test_transparent(th_server *s) {
    dlock_client *c = it_client(th_server_url(s), NULL);
    cycle(c, "rec");
    freeReplyObject(th_server_cmd(s, "SCRIPT FLUSH"));
    cycle(c, "rec"); /* NOSCRIPT -> EVAL, invisible to the caller */
    freeReplyObject(th_server_cmd(s, "FLUSHALL"));
    cycle(c, "rec");
    freeReplyObject(th_server_cmd(s, "CLIENT KILL TYPE normal"));
    cycle(c, "rec"); /* dead connection found and re-made */
    TH_EQ_INT(th_server_kill(s), 0);
    TH_EQ_INT(th_server_restart(s), 0);
    cycle(c, "rec"); /* restart: reconnect + scripts reloaded */
    int locked = 1;
    freeReplyObject(th_server_cmd(s, "CLIENT KILL TYPE normal"));
    IT_RC(c, dlock_is_locked(c, "rec", &locked, NULL), DLOCK_OK);
    TH_EQ_INT(locked, 0);
    dlock_client_free(c);
}

static void test_paused(th_server *s) {
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "paused", 5000, &l), DLOCK_OK);
    TH_EQ_INT(th_server_pause(s), 0);

    long long t0 = th_now_us();
    IT_RC(c, dlock_extend(l, 5000), DLOCK_EIO);
    long long el = (th_now_us() - t0) / 1000;
    printf("extend on a paused server failed after %lld ms: %s\n", el, dlock_client_errstr(c));
    TH_CHECK(el >= 250 && el < 800);
    TH_CHECK(strstr(dlock_client_errstr(c), "timeout") != NULL);

    /* An acquire whose outcome is unknown: clean-up by token also times out,
     * so the caller hears EUNKNOWN, bounded by connect + 2 command timeouts. */
    dlock_lock *l2 = NULL;
    t0 = th_now_us();
    int rc = dlock_try_acquire(c, "paused2", 5000, &l2);
    el = (th_now_us() - t0) / 1000;
    printf("acquire on a paused server: %s after %lld ms: %s\n", dlock_err_name(rc), el,
           dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_EUNKNOWN);
    TH_CHECK(el < 200 + 2 * 300 + 400);

    t0 = th_now_us();
    IT_RC(c, dlock_release(l), DLOCK_EIO);
    el = (th_now_us() - t0) / 1000;
    TH_CHECK(el < 200 + 300 + 400);
    /* dlock_wait with a deadline is bounded too. */
    t0 = th_now_us();
    rc = dlock_wait(c, "paused3", 500, 5000, &l2);
    el = (th_now_us() - t0) / 1000;
    printf("wait on a paused server: %s after %lld ms\n", dlock_err_name(rc), el);
    TH_CHECK(rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN);
    /* Never later than the deadline plus one command timeout. */
    TH_CHECK(el < 500 + 300 + 100);
    TH_EQ_INT(th_server_resume(s), 0);

    /* Back to normal without re-creating the client. The timed-out release
     * may have run once the server woke up (it read the buffered request):
     * its outcome was unknown, so either answer is right now. */
    rc = dlock_release(l);
    TH_CHECK(rc == DLOCK_OK || rc == DLOCK_ENOTHELD);
    dlock_lock_free(l);
    cycle(c, "paused");
    dlock_client_free(c);
}

static void test_killed(th_server *s) {
    dlock_options o;
    it_options(&o, 300, 500);
    dlock_client *c = it_client(th_server_url(s), &o);
    cycle(c, "killed");
    TH_EQ_INT(th_server_kill(s), 0);
    /* A connection idle for over 1 ms is checked before use, so a server
     * that died meanwhile is a plain EIO, not an unknown outcome. */
    th_sleep_ms(5);
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(c, "killed", 1000, &l);
    long long el = (th_now_us() - t0) / 1000;
    printf("server killed: %s after %lld ms: %s\n", dlock_err_name(rc), el,
           dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_EIO);
    TH_CHECK(el < 300 + 100);
    TH_EQ_INT(th_server_restart(s), 0);
    cycle(c, "killed");
    dlock_client_free(c);
}

/* A wait rides out a server restart shorter than its patience. */
static th_server *g_srv;
static int wait_through(void *arg) {
    (void)arg;
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *c = it_client(th_server_url(g_srv), &o);
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_wait(c, "through-restart", 5000, 5000, &l);
    printf("wait through a restart: %s after %lld ms %s\n", dlock_err_name(rc),
           (th_now_us() - t0) / 1000, dlock_client_errstr(c));
    if (rc == DLOCK_OK) {
        dlock_release(l);
        dlock_lock_free(l);
    }
    dlock_client_free(c);
    return rc == DLOCK_OK ? 0 : 1;
}

static void test_wait_through_restart(th_server *s) {
    g_srv = s;
    TH_EQ_INT(th_server_kill(s), 0);
    pid_t w = th_spawn(wait_through, NULL);
    th_sleep_ms(600);
    TH_EQ_INT(th_server_restart(s), 0);
    TH_EQ_INT(th_wait(w, 10000), 0);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    test_transparent(s);
    test_paused(s);
    test_killed(s);
    test_wait_through_restart(s);
    th_server_free(s);
    IT_PASS("test_recovery");
    return 0;
}
