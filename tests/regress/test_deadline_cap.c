/* test_deadline_cap.c - issue 9, "Deadline cap".
 *
 * dlock_wait promises to return "never later than the deadline plus one
 * command timeout, whatever the server does". Each case below gives
 * dlock_wait WAIT_MS with a command timeout of CMD_MS (connect timeout left
 * at its default, 1000 ms) and fails if the call takes longer than
 * WAIT_MS + CMD_MS + SLACK_MS:
 *   a. the replica gate (?replicas=1&replica_timeout=3000) on a server with
 *      no replica: WAIT blocks for the replica timeout;
 *   b. Sentinel discovery against sentinels that are all paused (SIGSTOP:
 *      the kernel still accepts connections, nothing answers). Plain
 *      redis-server processes stand in for the sentinels: paused, a
 *      sentinel and a data server look the same on the wire;
 *   c. the Cluster slot map load (CLUSTER SLOTS) against a paused seed.
 * Every case runs; the test fails at the end if any broke the promise.
 * Deterministic: the servers never answer, so every bound is a timeout.
 */
#include "itest.h"

#define WAIT_MS 500
#define CMD_MS 300
#define SLACK_MS 150

static int g_failed;

static void one_case(const char *what, const char *url) {
    dlock_options o;
    dlock_options_init(&o);
    o.command_timeout_ms = CMD_MS;
    dlock_client *c = it_client(url, &o);
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_wait(c, "cap", WAIT_MS, 10000, &l);
    long long ms = (th_now_us() - t0) / 1000;
    int over = ms > WAIT_MS + CMD_MS + SLACK_MS;
    printf("%s: dlock_wait(%d ms) -> %s after %lld ms (limit %d ms)%s; detail: %s\n", what,
           WAIT_MS, dlock_err_name(rc), ms, WAIT_MS + CMD_MS + SLACK_MS,
           over ? " TOO LATE" : "", dlock_client_errstr(c));
    if (over) {
        fprintf(stderr, "%s:%d: FAILED: %s: dlock_wait took %lld ms, more than the deadline "
                        "(%d ms) plus one command timeout (%d ms) plus %d ms slack\n",
                __FILE__, __LINE__, what, ms, WAIT_MS, CMD_MS, SLACK_MS);
        g_failed++;
    }
    dlock_lock_free(l);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(80);
    char url[512];

    /* a. WAIT for a replica that does not exist. */
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    snprintf(url, sizeof url, "%s?replicas=1&replica_timeout=3000", th_server_url(s));
    one_case("a. replica gate", url);

    /* b. Sentinels that accept connections and never answer. */
    th_server *sent[2];
    for (int i = 0; i < 2; i++) {
        sent[i] = th_server_start(NULL);
        TH_CHECK(sent[i] != NULL);
        TH_EQ_INT(th_server_pause(sent[i]), 0);
    }
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster",
             th_server_port(sent[0]), th_server_port(sent[1]));
    one_case("b. sentinel discovery, sentinels paused", url);

    /* c. The slot map from a paused seed. */
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d", th_server_port(sent[0]));
    one_case("c. cluster slot map, seed paused", url);

    for (int i = 0; i < 2; i++)
        th_server_free(sent[i]);
    th_server_free(s);
    if (g_failed) {
        fprintf(stderr, "test_deadline_cap: %d of 3 cases broke the promise\n", g_failed);
        return 1;
    }
    IT_PASS("test_deadline_cap");
    return 0;
}
