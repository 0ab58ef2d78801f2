/* test_engine_faults.c - the engine under load while its server is paused,
 * then killed and restarted: 40 slots loop wait -> hold -> release on 10
 * names in one event loop. Every started operation's callback runs exactly
 * once; no name is ever granted to two slots at once by this client;
 * fences granted on a name only rise while the server keeps its data; the
 * loop never stalls past the operations' deadlines; and once the server is
 * back, every slot acquires again. */
#include <stdlib.h>

#include "etest.h"

#define SLOTS 40
#define NAMES 10

typedef struct slot {
    int id, name;
    int inflight; /* an operation of this slot awaits its callback */
    dlock_lock *held;
} slot;

static dlock_client *g_c;
static slot g_s[SLOTS];
static int g_holder[NAMES]; /* slot id + 1 holding it, 0 none */
static int64_t g_fence[NAMES];
static long g_ok, g_err, g_started, g_done;
static int g_stop;

static void start_wait(slot *s);

static void on_released(const dlock_result *r, void *ud) {
    slot *s = ud;
    s->inflight = 0;
    g_done++;
    dlock_lock_free(r->lock);
    start_wait(s);
}

static void on_granted(const dlock_result *r, void *ud) {
    slot *s = ud;
    s->inflight = 0;
    g_done++;
    if (r->status != DLOCK_OK) {
        g_err++;
        start_wait(s);
        return;
    }
    g_ok++;
    if (g_holder[s->name] != 0 && g_holder[s->name] != s->id + 1)
        TH_FAIL("name %d granted to slot %d while slot %d holds it", s->name, s->id,
                g_holder[s->name] - 1);
    if (r->fence <= g_fence[s->name])
        printf("  name %d: fence %lld after %lld (server data lost in a restart)\n", s->name,
               (long long)r->fence, (long long)g_fence[s->name]);
    g_fence[s->name] = r->fence;
    g_holder[s->name] = s->id + 1;
    s->held = r->lock;
    /* Hand it on at once: the release runs as the next operation. */
    g_holder[s->name] = 0;
    s->inflight = 1;
    g_started++;
    if (dlock_release_async(s->held, on_released, s, NULL) != DLOCK_OK) {
        s->inflight = 0;
        g_done++;
        dlock_lock_free(s->held);
        start_wait(s);
    }
}

static void start_wait(slot *s) {
    if (g_stop)
        return;
    char name[32];
    snprintf(name, sizeof name, "ef-%d", s->name);
    s->inflight = 1;
    g_started++;
    if (dlock_wait_async(g_c, name, 1500, 2000, on_granted, s, NULL) != DLOCK_OK)
        TH_FAIL("wait_async: %s", dlock_client_errstr(g_c));
}

/* Run the loop for ms, checking it never waits on nothing. */
static void run_for(int ms) {
    long long end = th_now_us() + (long long)ms * 1000;
    while (th_now_us() < end)
        dlock_poll_once(g_c, 20);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    it_options(&o, 300, 300);
    g_c = it_client(th_server_url(s), &o);
    for (int i = 0; i < SLOTS; i++) {
        g_s[i].id = i;
        g_s[i].name = i % NAMES;
        start_wait(&g_s[i]);
    }
    run_for(800);
    long ok0 = g_ok;
    printf("healthy: %ld grants in 0.8 s\n", ok0);
    TH_CHECK(ok0 > 50);

    TH_EQ_INT(th_server_pause(s), 0);
    run_for(1200);
    TH_EQ_INT(th_server_resume(s), 0);
    long ok1 = g_ok;
    run_for(800);
    printf("paused 1.2 s: %ld errors so far; %ld grants after resuming\n", g_err, g_ok - ok1);
    TH_CHECK(g_ok - ok1 > 20);

    TH_EQ_INT(th_server_kill(s), 0);
    run_for(700);
    TH_EQ_INT(th_server_restart(s), 0);
    long ok2 = g_ok;
    run_for(1500);
    printf("killed 0.7 s and restarted: %ld errors in all; %ld grants after the restart\n",
           g_err, g_ok - ok2);
    TH_CHECK(g_ok - ok2 > 20);

    g_stop = 1;
    TH_EQ_INT(dlock_poll_run(g_c, 6000), 0); /* everything ends by its deadline */
    TH_EQ_INT(g_started, g_done);
    for (int i = 0; i < SLOTS; i++)
        TH_CHECK(!g_s[i].inflight);
    dlock_client_free(g_c);
    th_server_free(s);
    IT_PASS("test_engine_faults");
    return 0;
}
