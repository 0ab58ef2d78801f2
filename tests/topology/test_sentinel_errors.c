/* test_sentinel_errors.c - when Sentinel discovery fails, the detail string
 * names every sentinel and why it failed, within a bounded length.
 *
 *   1. three sentinels, each failing its own way: nothing listening
 *      (connection refused), a black hole (timeout), and a live sentinel
 *      that knows no master by the URL's name (nil): the detail names all
 *      three, and dlock_client_errcode says DLOCK_SRV_NOMASTER;
 *   2. the most sentinels a URL may name, all refusing: the detail stays
 *      within its buffer and says that more failed than it lists.
 */
#include <stdio.h>
#include <string.h>

#include "dlock.h"
#include "harness.h"
#include "topo.h"

static void expect_in(const char *hay, const char *needle) {
    if (strstr(hay, needle) == NULL)
        TH_FAIL("expected \"%s\" in the detail:\n%s", needle, hay);
}

static void three_ways(void) {
    int refused = tt_free_port();
    TH_CHECK(refused > 0);
    tt_sentinels *g = tt_sentinels_start(1);
    TH_CHECK(g != NULL);
    th_proxy *hole = th_proxy_start(g->sport[0]); /* the proxy wants a live target */
    TH_CHECK(hole != NULL);
    th_proxy_set(hole, TH_BLACKHOLE, 0);
    char url[300];
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/nosuch",
             refused, th_proxy_port(hole), g->sport[0]);
    dlock_client *c = tt_client(url, 200, 200);
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "x", 1000, &l);
    const char *d = dlock_client_errstr(c);
    printf("%s: %s\n", dlock_err_name(rc), d);
    TH_EQ_INT(rc, DLOCK_EIO);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d: Connection refused", refused);
    expect_in(d, addr);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", th_proxy_port(hole));
    expect_in(d, addr);
    expect_in(d, "timeout");
    snprintf(addr, sizeof addr, "127.0.0.1:%d does not know a master named 'nosuch'",
             g->sport[0]);
    expect_in(d, addr);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_NOMASTER);
    dlock_client_free(c);
    tt_sentinels_free(g);
    th_proxy_stop(hole);
}

static void many(void) {
    char url[1024] = "redis-sentinel://";
    int first = 0, used[16];
    for (int i = 0; i < 16; i++) {
        /* Distinct: nothing binds the ports, so a pick may repeat (and the
         * URL parser refuses a duplicate host). */
        int p, again;
        do {
            p = tt_free_port();
            TH_CHECK(p > 0);
            again = 0;
            for (int k = 0; k < i; k++)
                again |= used[k] == p;
        } while (again);
        used[i] = p;
        if (i == 0)
            first = p;
        size_t n = strlen(url);
        snprintf(url + n, sizeof url - n, "%s127.0.0.1:%d", i ? "," : "", p);
    }
    strcat(url, "/mymaster");
    dlock_client *c = tt_client(url, 200, 200);
    dlock_lock *l = NULL;
    TH_EQ_INT(dlock_try_acquire(c, "x", 1000, &l), DLOCK_EIO);
    const char *d = dlock_client_errstr(c);
    printf("16 refused (%zu bytes): %s\n", strlen(d), d);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d: Connection refused", first);
    expect_in(d, addr);
    expect_in(d, "more");
    TH_CHECK(strlen(d) < 512);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_NONE);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(80);
    three_ways();
    many();
    printf("topology_sentinel_errors: ok\n");
    return 0;
}
