/* test_try_bound.c - dlock_try_acquire's documented bound against a paused
 * server (found while timing the blocking path, not one of issue 9's
 * list).
 *
 * include/dlock.h: dlock_try_acquire "blocks at most one command timeout,
 * plus a connect timeout if a reconnect is needed, plus one more of each
 * for the clean-up by token when the first request's outcome is unknown".
 * A server paused with SIGSTOP still accepts TCP connections (the kernel
 * does) and answers nothing: the acquire's outcome is unknown, the
 * clean-up runs and gets no answer either. The call must end within
 * 2 x (connect + command timeout) plus scheduling slack, with EUNKNOWN
 * (the clean-up could not confirm that no lease was left). Checked on a
 * fresh client (the connect is part of the call) and on one whose
 * connection is already up, for two pairs of timeouts.
 * Deterministic: the server never answers, so every bound is a timeout.
 */
#include "itest.h"

#define SLACK_MS 150

static int g_failed;

static void one_case(th_server *s, int connect_ms, int command_ms, int warm) {
    dlock_options o;
    it_options(&o, connect_ms, command_ms);
    dlock_client *c = it_client(th_server_url(s), &o);
    if (warm)
        IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    TH_CHECK(th_server_pause(s) == 0);
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(c, "bound", 10000, &l);
    long long ms = (th_now_us() - t0) / 1000;
    TH_CHECK(th_server_resume(s) == 0);
    int limit = 2 * (connect_ms + command_ms) + SLACK_MS;
    printf("connect %d, command %d ms, %s client: try_acquire -> %s after %lld ms (limit %d)"
           "; detail: %s\n",
           connect_ms, command_ms, warm ? "connected" : "fresh", dlock_err_name(rc), ms, limit,
           dlock_client_errstr(c));
    if (rc == DLOCK_OK || ms > limit) {
        fprintf(stderr, "%s:%d: FAILED: try_acquire on a paused server: %s after %lld ms, "
                        "the documented bound is %d ms\n",
                __FILE__, __LINE__, dlock_err_name(rc), ms, limit - SLACK_MS);
        g_failed++;
    }
    dlock_lock_free(l);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(50);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    one_case(s, 100, 500, 0);
    one_case(s, 100, 500, 1);
    one_case(s, 300, 300, 0);
    one_case(s, 300, 300, 1);
    th_server_free(s);
    if (g_failed) {
        fprintf(stderr, "test_try_bound: %d of 4 cases failed\n", g_failed);
        return 1;
    }
    IT_PASS("test_try_bound");
    return 0;
}
