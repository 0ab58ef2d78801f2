/* test_engine_auth.c - with a wrong password the async calls report what
 * the blocking ones do: DLOCK_ESERVER, with WRONGPASS in the detail (the
 * async acquire used to report DLOCK_EUNKNOWN: the script was pipelined
 * behind AUTH and counted as sent; an inspect after it gave an empty
 * detail). Found by the Node binding's tests; fixed on main since. */
#include "etest.h"

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    freeReplyObject(th_server_cmd(s, "CONFIG SET requirepass right"));
    char url[128];
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", th_server_port(s));
    dlock_client *c = it_client(url, NULL);

    dlock_lock *l = NULL;
    TH_EQ_INT(dlock_try_acquire(c, "auth", 1000, &l), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGPASS);

    et_res a = {0}, in = {0};
    IT_RC(c, dlock_try_acquire_async(c, "auth", 1000, et_cb, &a, NULL), DLOCK_OK);
    et_run_until(c, &a.done, 5000);
    IT_RC(c, dlock_inspect_async(c, "auth", et_cb, &in, NULL), DLOCK_OK);
    et_run_until(c, &in.done, 5000);
    printf("async try_acquire: %s (%s)\n", dlock_err_name(a.status), a.detail);
    printf("async inspect: %s (%s)\n", dlock_err_name(in.status), in.detail);
    ET_STATUS(a, DLOCK_ESERVER);
    TH_CHECK(strstr(in.detail, "WRONGPASS") != NULL);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_engine_auth");
    return 0;
}
