/* test_engine_uv.c - the libuv adapter: the scenario of scenario.h (1,000
 * waits on 100 names, then a kept-alive lock) run by
 * uv_run, which must return by itself once nothing is in flight. */
#include "dlock/adapters/libuv.h"
#include "scenario.h"

static void on_uv_timer(uv_timer_t *t) {
    (void)t;
    sc_timer_fired();
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_client *c = it_client(th_server_url(s), NULL);
    uv_loop_t *loop = uv_default_loop();
    dlock_uv *a = NULL;
    IT_RC(c, dlock_uv_attach(loop, c, &a), DLOCK_OK);
    TH_EQ_INT(uv_run(loop, UV_RUN_DEFAULT), 0); /* idle client: returns at once */
    sc_start_waits(c);
    uv_run(loop, UV_RUN_DEFAULT);
    sc_check_waits();

    IT_RC(c, dlock_try_acquire_async(c, "kept", 500, sc_on_kept, NULL, NULL), DLOCK_OK);
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_uv_timer, 1500, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    TH_CHECK(sc_kept_released);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{kept}"), 0);
    dlock_lock_free(sc_kept);
    uv_close((uv_handle_t *)&t, NULL);
    dlock_uv_detach(a);
    uv_run(loop, UV_RUN_DEFAULT);
    TH_EQ_INT(uv_loop_close(loop), 0);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_engine_uv");
    return 0;
}
