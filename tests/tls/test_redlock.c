/* test_redlock.c - Redlock over three TLS servers (rediss://h1,h2,h3): the
 * lease is granted on every member (checked on each server), a second
 * client is refused, fences rise; with one member down a majority still
 * grants it; with two down the call fails with ENOQUORUM, quickly. */
#include <string.h>

#include "tls_env.h"

int main(void) {
    th_test_init(80);
    te_init();
    th_server *s[3];
    int port[3];
    for (int i = 0; i < 3; i++)
        s[i] = te_server("server", NULL, &port[i]);
    char url[900];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d?tls_ca=%s",
             port[0], port[1], port[2], te_file("ca.crt"));
    dlock_client *a = te_client(url, 500, 500), *b = te_client(url, 500, 500);
    IT_RC(a, dlock_client_ping(a), DLOCK_OK);

    dlock_lock *l = NULL, *l2 = NULL;
    IT_RC(a, dlock_try_acquire(a, "tls-redlock", 10000, &l), DLOCK_OK);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(th_server_int(s[i], "EXISTS dlock:{tls-redlock}"), 1);
    IT_RC(b, dlock_try_acquire(b, "tls-redlock", 10000, &l2), DLOCK_EBUSY);
    dlock_info i1;
    IT_RC(a, dlock_info_get(l, &i1), DLOCK_OK);
    IT_RC(a, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);

    th_server_kill(s[2]);
    IT_RC(b, dlock_try_acquire(b, "tls-redlock", 10000, &l2), DLOCK_OK);
    dlock_info i2;
    IT_RC(b, dlock_info_get(l2, &i2), DLOCK_OK);
    printf("one member down: granted by the other two, fence %lld -> %lld\n",
           (long long)i1.fence, (long long)i2.fence);
    TH_CHECK(i2.fence > i1.fence);
    IT_RC(b, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l2);

    th_server_kill(s[1]);
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(a, "tls-redlock", 10000, &l);
    long long ms = (th_now_us() - t0) / 1000;
    printf("two members down -> %s in %lld ms: %s\n", dlock_err_name(rc), ms,
           dlock_client_errstr(a));
    IT_RC(a, rc, DLOCK_ENOQUORUM);
    TH_CHECK(ms < 2000);
    dlock_client_free(a);
    dlock_client_free(b);
    for (int i = 0; i < 3; i++)
        th_server_free(s[i]);
    printf("tls_redlock: 1 passed, 0 failed\n");
    return 0;
}
