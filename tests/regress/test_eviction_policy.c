/* test_eviction_policy.c - issue 10 §3: the library checks the eviction
 * policy.
 *
 * With maxmemory-policy allkeys-* a full server evicts lock keys and their
 * fence counters (one lock, two holders, the same fence); volatile-* evicts
 * keys with a TTL, and lock keys always have one. dlock_doctor says so, but
 * a program that never runs it was told nothing. Now each connection asks
 * CONFIG GET maxmemory-policy once, pipelined behind AUTH/SELECT (no round
 * trip of its own, none per command), and:
 *   - an unsafe policy raises one DLOCK_EV_WARNING per connection;
 *   - with opts.require_noeviction an acquire there fails with
 *     DLOCK_ENOTSUP (code DLOCK_SRV_EVICTION) and leaves no lease;
 *   - a server that refuses CONFIG (managed services, ACLs) is "unknown":
 *     no warning, no failure; noeviction is quiet. */
#include "itest.h"

static int g_warnings;
static char g_last[600];

static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->type != DLOCK_EV_WARNING)
        return;
    g_warnings++;
    snprintf(g_last, sizeof g_last, "%s", ev->message ? ev->message : "");
    printf("warning: %s\n", g_last);
}

static dlock_client *client(th_server *s, int require) {
    dlock_options o;
    it_options(&o, 1000, 1000);
    o.on_event = on_event;
    o.require_noeviction = require;
    return it_client(th_server_url(s), &o);
}

static long config_calls(th_server *s) {
    redisReply *r = th_server_cmd(s, "INFO commandstats");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "cmdstat_config|get:calls=");
    long n = p ? strtol(p + 25, NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

/* Acquire and release `n` times; returns the warnings raised meanwhile. */
static int cycle(dlock_client *c, const char *name, int n) {
    int before = g_warnings;
    for (int i = 0; i < n; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_try_acquire(c, name, 10000, &l), DLOCK_OK);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    return g_warnings - before;
}

static void unsafe(const char *policy) {
    const char *args[] = {"--maxmemory-policy", policy, NULL};
    th_server *s = th_server_start(args);
    TH_CHECK(s != NULL);
    dlock_client *c = client(s, 0);
    long calls0 = config_calls(s);
    TH_EQ_INT(cycle(c, "e", 10), 1); /* once per connection, not per call */
    TH_CHECK(strstr(g_last, policy) != NULL && strstr(g_last, "noeviction") != NULL);
    TH_CHECK(config_calls(s) - calls0 <= 2); /* the connection (and at most one more) */
    long calls1 = config_calls(s);
    cycle(c, "e", 10);
    TH_EQ_INT(config_calls(s), calls1); /* no CONFIG per command */
    dlock_client_free(c);

    /* require_noeviction: a clear error, and nothing held. */
    c = client(s, 1);
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "r", 10000, &l);
    printf("require_noeviction on %s: %s (code %d): %s\n", policy, dlock_err_name(rc),
           dlock_client_errcode(c), dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ENOTSUP);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_EVICTION);
    TH_CHECK(strstr(dlock_client_errstr(c), policy) != NULL);
    TH_CHECK(l == NULL);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{r}"), 0);
    rc = dlock_wait(c, "r", 1000, 10000, &l); /* not retried: it cannot pass */
    TH_EQ_INT(rc, DLOCK_ENOTSUP);
    dlock_client_free(c);
    th_server_free(s);
}

static void quiet(const char *const *args, const char *what) {
    th_server *s = th_server_start(args);
    TH_CHECK(s != NULL);
    for (int require = 0; require < 2; require++) {
        dlock_client *c = client(s, require);
        int w = cycle(c, "q", 3);
        printf("%s (require %d): %d warnings\n", what, require, w);
        TH_EQ_INT(w, 0);
        dlock_client_free(c);
    }
    th_server_free(s);
}

static void on_done(const dlock_result *r, void *ud) {
    int *st = ud;
    *st = r->status;
    if (r->lock != NULL)
        dlock_lock_free(r->lock);
}

/* The async API's connections are checked the same way. */
static void async_warns(void) {
    const char *args[] = {"--maxmemory-policy", "volatile-lru", NULL};
    th_server *s = th_server_start(args);
    TH_CHECK(s != NULL);
    dlock_client *c = client(s, 0);
    int before = g_warnings, st = 1;
    IT_RC(c, dlock_try_acquire_async(c, "a", 10000, on_done, &st, NULL), DLOCK_OK);
    long long end = th_now_us() + 3000000;
    while (st == 1 && th_now_us() < end)
        dlock_client_process(c), th_sleep_ms(1);
    TH_EQ_INT(st, DLOCK_OK);
    TH_EQ_INT(g_warnings - before, 1);
    dlock_client_free(c);
    th_server_free(s);
}

/* The lock kinds obey it too: a semaphore, an rw lock (both modes) and a
 * multi-lock fail with ENOTSUP on an unsafe server and hold nothing, and a
 * client without require_noeviction is warned by the kinds' first acquire
 * (found while merging the kinds' Redlock core: only the mutex checked). */
static void kinds(void) {
    const char *args[] = {"--maxmemory-policy", "allkeys-lru", NULL};
    th_server *s = th_server_start(args);
    TH_CHECK(s != NULL);
    dlock_client *c = client(s, 1);
    dlock_lock *l = NULL;
    const char *names[2] = {"km-a", "km-b"};
    int rc[4] = {dlock_sem_try_acquire(c, "ks", 2, 10000, &l),
                 dlock_rw_try_acquire(c, "kr", DLOCK_SHARED, 10000, &l),
                 dlock_rw_try_acquire(c, "kw", DLOCK_EXCLUSIVE, 10000, &l),
                 dlock_multi_try_acquire(c, names, 2, 10000, &l)};
    const char *what[4] = {"semaphore", "rw shared", "rw exclusive", "multi"};
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        printf("require_noeviction, %s: %s\n", what[i], dlock_err_name(rc[i]));
        if (rc[i] != DLOCK_ENOTSUP) {
            fprintf(stderr, "%s:%d: FAILED: %s acquired on an allkeys-lru server with "
                            "require_noeviction (%s)\n",
                    __FILE__, __LINE__, what[i], dlock_err_name(rc[i]));
            bad++;
        }
        if (rc[i] == DLOCK_OK) {
            dlock_release(l);
            dlock_lock_free(l);
        }
    }
    /* Nothing held, no queue left: only fencing counters (they never
     * expire) may remain. */
    redisReply *keys = th_server_cmd(s, "KEYS *");
    TH_CHECK(keys != NULL && keys->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < keys->elements; i++) {
        printf("left: %s\n", keys->element[i]->str);
        size_t n = keys->element[i]->len;
        TH_CHECK(n > 6 && strcmp(keys->element[i]->str + n - 6, ":fence") == 0);
    }
    freeReplyObject(keys);
    dlock_client_free(c);
    c = client(s, 0);
    int before = g_warnings;
    TH_EQ_INT(dlock_sem_try_acquire(c, "ks", 2, 10000, &l), DLOCK_OK);
    TH_EQ_INT(g_warnings - before, 1);
    dlock_release(l);
    dlock_lock_free(l);
    dlock_client_free(c);
    th_server_free(s);
    TH_EQ_INT(bad, 0);
}

int main(void) {
    th_test_init(60);
    kinds();
    unsafe("allkeys-lru");
    unsafe("volatile-lru");
    const char *safe[] = {"--maxmemory-policy", "noeviction", NULL};
    quiet(safe, "noeviction");
    const char *no_config[] = {"--maxmemory-policy", "allkeys-lru", "--rename-command",
                               "CONFIG", "", NULL};
    quiet(no_config, "CONFIG refused");
    async_warns();
    IT_PASS("test_eviction_policy");
    return 0;
}
