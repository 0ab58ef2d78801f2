/* test_sentinel_watch.c - a client told of a failover by the sentinels
 * (+switch-master) never sends to the deposed master, even while that
 * master still answers as one.
 *
 * Master + replica + 3 sentinels (down-after 1 s). Two clients connect to
 * the master: one watching the sentinels (the default), one with
 * sentinel_watch=off. The master is paused past down-after; Sentinel
 * promotes the replica; both clients stay idle meanwhile (blocking API:
 * nothing reads their sockets). The old master resumes and, until
 * Sentinel gets round to demoting it, still says ROLE master and takes
 * writes on the connections it had:
 *   - the watching client's next acquire lands on the new master (the
 *     switch message waiting in its subscription is read before the
 *     request is routed);
 *   - the other one's lands on the deposed master: the hazard the watch
 *     removes (fences still rise: docs/FAILOVER.md).
 * The same for the non-blocking API: a client whose loop did not run
 * during the failover. */
#include <stdio.h>
#include <string.h>

#include "dlock.h"
#include "dlock/adapters/poll.h"
#include "harness.h"
#include "topo.h"

static long long key_exists(th_server *s, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return th_server_int(s, "EXISTS %s", key);
}

static int is_master(th_server *s) {
    redisReply *r = th_server_cmd(s, "ROLE");
    int yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return yes;
}

/* Clients subscribed to a channel, over all the sentinels (a sentinel has
 * no PUBSUB: CLIENT LIST's "sub=1"). Only ours subscribe here. */
static long long subscribers(tt_sentinels *g) {
    long long n = 0;
    for (int i = 0; i < g->nsent; i++) {
        redisContext *c = th_connect(g->sport[i], 1000);
        TH_CHECK(c != NULL);
        redisReply *r = redisCommand(c, "CLIENT LIST");
        for (const char *p = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "";
             (p = strstr(p, " sub=1 ")) != NULL; p++)
            n++;
        freeReplyObject(r);
        redisFree(c);
    }
    return n;
}

static void pair(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    TH_EQ_INT(dlock_try_acquire(c, name, 60000, &l), DLOCK_OK);
    TH_EQ_INT(dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

/* An async try_acquire of name, driven by a poll loop until it ends. */
static int async_try(dlock_client *c, const char *name, dlock_lock **out) {
    tt_res o = {0};
    TH_EQ_INT(dlock_try_acquire_async(c, name, 60000, tt_on_done, &o, NULL), DLOCK_OK);
    long long end = th_now_us() + 5000000;
    while (!o.done && th_now_us() < end)
        dlock_poll_once(c, 20);
    TH_CHECK(o.done);
    *out = o.lock;
    return o.status;
}

int main(void) {
    th_test_init(85);
    tt_sentinels *g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    th_server *m = g->data[0], *r = g->data[1];
    char off[700];
    snprintf(off, sizeof off, "%s?sentinel_watch=off", g->url);
    dlock_client *on = tt_client(g->url, 500, 1000);
    dlock_client *unwatched = tt_client(off, 500, 1000);
    dlock_client *aon = tt_client(g->url, 500, 1000);
    pair(on, "w-warm");
    pair(unwatched, "w-warm");
    dlock_lock *l = NULL;
    TH_EQ_INT(async_try(aon, "w-warm", &l), DLOCK_OK);
    dlock_lock_free(l); /* its lease just runs out */

    /* Both watching clients are subscribed before the fault (a real loop
     * runs all along; this one is driven a moment, the blocking client
     * makes one more call). */
    long long t0 = th_now_us();
    while (subscribers(g) < 2 && th_now_us() - t0 < 3000000) {
        dlock_poll_once(aon, 10);
        TH_EQ_INT(dlock_client_ping(on), DLOCK_OK);
    }
    TH_EQ_INT(subscribers(g), 2);
    t0 = th_now_us();
    TH_EQ_INT(th_server_pause(m), 0);
    TH_EQ_INT(tt_sentinels_wait_master(g, th_server_port(r), 30000), 0);
    printf("paused master %d; the sentinels name %d after %.1f s\n", th_server_port(m),
           th_server_port(r), (th_now_us() - t0) / 1e6);
    th_sleep_ms(300); /* the switch message reaches the subscriptions */
    TH_EQ_INT(th_server_resume(m), 0);

    /* Right away: the old master has not been demoted yet. */
    dlock_lock *lon = NULL, *loff = NULL, *laon = NULL;
    TH_EQ_INT(dlock_try_acquire(on, "w-on", 60000, &lon), DLOCK_OK);
    TH_EQ_INT(async_try(aon, "w-async", &laon), DLOCK_OK);
    TH_EQ_INT(dlock_try_acquire(unwatched, "w-off", 60000, &loff), DLOCK_OK);
    int deposed_serving = is_master(m);
    printf("watching, blocking: on the new master %lld, on the old %lld\n",
           key_exists(r, "w-on"), key_exists(m, "w-on"));
    printf("watching, non-blocking: on the new master %lld, on the old %lld\n",
           key_exists(r, "w-async"), key_exists(m, "w-async"));
    printf("sentinel_watch=off: on the new master %lld, on the old %lld (the old master %s)\n",
           key_exists(r, "w-off"), key_exists(m, "w-off"),
           deposed_serving ? "still says master" : "was demoted already");
    TH_EQ_INT(key_exists(r, "w-on"), 1);
    TH_EQ_INT(key_exists(m, "w-on"), 0);
    TH_EQ_INT(key_exists(r, "w-async"), 1);
    TH_EQ_INT(key_exists(m, "w-async"), 0);
    if (deposed_serving) /* what the watch prevents */
        TH_EQ_INT(key_exists(m, "w-off"), 1);

    dlock_lock_free(lon);
    dlock_lock_free(laon);
    dlock_lock_free(loff);
    dlock_client_free(on);
    dlock_client_free(aon);
    dlock_client_free(unwatched);
    tt_sentinels_free(g);
    printf("test_sentinel_watch: ok\n");
    return 0;
}
