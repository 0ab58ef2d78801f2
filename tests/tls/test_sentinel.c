/* test_sentinel.c - Sentinel over TLS (rediss-sentinel://): the client asks
 * the sentinel over TLS for the master, checks its ROLE over TLS, and takes
 * and releases a lock there (the key is checked on the master). A plain
 * redis-sentinel:// URL to the sentinel's TLS port fails clearly. */
#include <string.h>

#include "tls_env.h"

int main(void) {
    th_test_init(80);
    te_init();
    te_sentinel g;
    te_sentinel_start(&g);
    printf("sentinel: %s\n", g.url);
    dlock_client *c = te_client(g.url, 1000, 1000);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "tls-sentinel", 10000, &l), DLOCK_OK);
    TH_EQ_INT(th_server_int(g.master, "EXISTS dlock:{tls-sentinel}"), 1);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    printf("lock taken and released on the master Sentinel named, over TLS\n");

    char url[300];
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d/mymaster", g.tls_port);
    c = te_client(url, 1000, 1000);
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(c, "tls-sentinel", 10000, &l);
    long long ms = (th_now_us() - t0) / 1000;
    printf("plain URL to the TLS port -> %s in %lld ms: %s\n", dlock_err_name(rc), ms,
           dlock_client_errstr(c));
    TH_CHECK(rc != DLOCK_OK);
    TE_IN(dlock_client_errstr(c), "use rediss://");
    dlock_client_free(c);
    te_sentinel_free(&g);
    printf("tls_sentinel: 1 passed, 0 failed\n");
    return 0;
}
