/* test_api.c - every public call and every error path against one server. */
#include <unistd.h>

#include "itest.h"

static int events[6];
static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->type >= 0 && ev->type < 6)
        events[ev->type]++;
}

static void test_basics(th_server *s) {
    dlock_options o;
    dlock_options_init(&o);
    o.on_event = on_event;
    o.owner_label = "api-test";
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_client *c2 = it_client(th_server_url(s), NULL);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);

    dlock_lock *l = NULL, *l2 = NULL;
    IT_RC(c, dlock_acquire(c, "basics", 5000, &l), DLOCK_OK);
    TH_CHECK(l != NULL && dlock_held(l));
    dlock_info info;
    IT_RC(c, dlock_info_get(l, &info), DLOCK_OK);
    TH_EQ_STR(info.name, "basics");
    TH_EQ_INT(strlen(info.token), 32);
    TH_CHECK(info.fence >= 1);
    TH_CHECK(info.held == 1);
    TH_CHECK(info.expires_at > info.acquired_at);
    TH_CHECK(info.expires_at - info.acquired_at <= 5000);

    /* Held by another: try gives EBUSY at once; acquire with retries too. */
    long long t0 = th_now_us();
    IT_RC(c2, dlock_try_acquire(c2, "basics", 5000, &l2), DLOCK_EBUSY);
    TH_CHECK(l2 == NULL);
    TH_CHECK(th_now_us() - t0 < 500000);
    TH_CHECK(strstr(dlock_client_errstr(c2), "held") != NULL);

    /* is_locked / inspect see the holder and its metadata. */
    int locked = 0;
    int64_t pttl = 0;
    IT_RC(c2, dlock_is_locked(c2, "basics", &locked, &pttl), DLOCK_OK);
    TH_EQ_INT(locked, 1);
    TH_CHECK(pttl > 0 && pttl <= 5000);
    dlock_holder h;
    IT_RC(c2, dlock_inspect(c2, "basics", &h), DLOCK_OK);
    TH_EQ_INT(h.locked, 1);
    TH_EQ_STR(h.token, info.token);
    TH_EQ_INT(h.fence, info.fence);
    TH_EQ_INT(h.pid, (long)getpid());
    TH_EQ_STR(h.label, "api-test");
    TH_CHECK(h.host[0] != '\0');
    TH_CHECK(h.acquired_at > 0);

    /* owner_pid names another process as the holder. */
    dlock_options po;
    dlock_options_init(&po);
    TH_EQ_INT(po.owner_pid, 0);
    po.owner_pid = 4242;
    dlock_client *cp = it_client(th_server_url(s), &po);
    dlock_lock *lp = NULL;
    IT_RC(cp, dlock_try_acquire(cp, "basics-pid", 5000, &lp), DLOCK_OK);
    IT_RC(c2, dlock_inspect(c2, "basics-pid", &h), DLOCK_OK);
    TH_EQ_INT(h.pid, 4242);
    IT_RC(cp, dlock_release(lp), DLOCK_OK);
    dlock_lock_free(lp);
    dlock_client_free(cp);

    /* extend sets the remaining TTL. */
    IT_RC(c, dlock_extend(l, 20000), DLOCK_OK);
    IT_RC(c2, dlock_is_locked(c2, "basics", &locked, &pttl), DLOCK_OK);
    TH_CHECK(pttl > 15000);
    IT_RC(c, dlock_extend(l, 0), DLOCK_EINVAL);
    IT_RC(c, dlock_extend(l, DLOCK_TTL_MAX + 1), DLOCK_EINVAL);

    /* release, then release twice / extend after release: ENOTHELD. */
    IT_RC(c, dlock_release(l), DLOCK_OK);
    TH_CHECK(!dlock_held(l));
    IT_RC(c, dlock_release(l), DLOCK_ENOTHELD);
    IT_RC(c, dlock_extend(l, 1000), DLOCK_ENOTHELD);
    IT_RC(c2, dlock_is_locked(c2, "basics", &locked, &pttl), DLOCK_OK);
    TH_EQ_INT(locked, 0);
    TH_EQ_INT(pttl, -1);
    dlock_lock_free(l);

    /* Fences rise across holders and clients. */
    IT_RC(c2, dlock_try_acquire(c2, "basics", 5000, &l2), DLOCK_OK);
    dlock_info info2;
    dlock_info_get(l2, &info2);
    TH_CHECK(info2.fence > info.fence);
    IT_RC(c2, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l2);

    /* Events: acquired, contended (the EBUSY above was on c2: none on c). */
    TH_CHECK(events[DLOCK_EV_ACQUIRED] == 1);
    TH_CHECK(events[DLOCK_EV_RELEASED] == 1);
    TH_CHECK(events[DLOCK_EV_EXTENDED] == 1);
    TH_CHECK(events[DLOCK_EV_CONTENDED] == 0);
    IT_RC(c2, dlock_try_acquire(c2, "basics", 5000, &l2), DLOCK_OK);
    IT_RC(c, dlock_try_acquire(c, "basics", 5000, &l), DLOCK_EBUSY);
    TH_CHECK(events[DLOCK_EV_CONTENDED] == 1);
    IT_RC(c2, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l2);
    /* Lost: a lease that ran out is reported when extend finds it gone. */
    IT_RC(c, dlock_try_acquire(c, "basics-lost", 50, &l), DLOCK_OK);
    th_sleep_ms(120);
    IT_RC(c, dlock_extend(l, 1000), DLOCK_ENOTHELD);
    TH_CHECK(events[DLOCK_EV_LOST] == 1);
    dlock_lock_free(l);
    /* Error: a server-side failure. */
    freeReplyObject(th_server_cmd(s, "SET %s %s", "dlock:{basics-err}", "x"));
    IT_RC(c, dlock_try_acquire(c, "basics-err", 1000, &l), DLOCK_ESERVER);
    TH_CHECK(events[DLOCK_EV_ERROR] == 1);
    dlock_client_free(c);
    dlock_client_free(c2);
}

static void test_expiry(th_server *s) {
    dlock_client *c = it_client(th_server_url(s), NULL);
    dlock_client *c2 = it_client(th_server_url(s), NULL);
    dlock_lock *l = NULL, *l2 = NULL;
    IT_RC(c, dlock_try_acquire(c, "expiry", 150, &l), DLOCK_OK);
    th_sleep_ms(250);
    TH_CHECK(!dlock_held(l)); /* local validity ran out */
    /* After expiry: release and extend say ENOTHELD. */
    IT_RC(c, dlock_extend(l, 1000), DLOCK_ENOTHELD);
    dlock_lock_free(l);
    IT_RC(c, dlock_try_acquire(c, "expiry", 150, &l), DLOCK_OK);
    th_sleep_ms(250);
    IT_RC(c, dlock_release(l), DLOCK_ENOTHELD);
    dlock_lock_free(l);

    /* Taken by another after expiry: the old handle cannot touch it. */
    IT_RC(c, dlock_try_acquire(c, "expiry", 100, &l), DLOCK_OK);
    th_sleep_ms(200);
    IT_RC(c2, dlock_try_acquire(c2, "expiry", 5000, &l2), DLOCK_OK);
    IT_RC(c, dlock_extend(l, 5000), DLOCK_ENOTHELD);
    IT_RC(c, dlock_release(l), DLOCK_ENOTHELD);
    TH_CHECK(dlock_held(l2));
    int locked = 0;
    IT_RC(c, dlock_is_locked(c, "expiry", &locked, NULL), DLOCK_OK);
    TH_EQ_INT(locked, 1); /* c2's lease untouched */
    IT_RC(c2, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l);
    dlock_lock_free(l2);

    /* dlock_wait deadline: ETIMEDOUT, not much later than the deadline. */
    IT_RC(c, dlock_try_acquire(c, "deadline", 10000, &l), DLOCK_OK);
    long long t0 = th_now_us();
    IT_RC(c2, dlock_wait(c2, "deadline", 300, 1000, &l2), DLOCK_ETIMEDOUT);
    long long el = th_now_us() - t0;
    TH_CHECK(el >= 290000 && el < 300000 + 1000000);
    IT_RC(c2, dlock_wait(c2, "deadline", 0, 1000, &l2), DLOCK_ETIMEDOUT);
    /* acquire with a small retry budget: EBUSY after its retries. */
    dlock_options o;
    dlock_options_init(&o);
    o.retry_count = 2;
    o.retry_delay_ms = 20;
    o.retry_max_delay_ms = 40;
    dlock_client *c3 = it_client(th_server_url(s), &o);
    t0 = th_now_us();
    IT_RC(c3, dlock_acquire(c3, "deadline", 1000, &l2), DLOCK_EBUSY);
    el = th_now_us() - t0;
    TH_CHECK(el >= 40000 && el < 1000000);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c3);

    /* By token: release/extend from another client. */
    IT_RC(c, dlock_try_acquire(c, "bytoken", 5000, &l), DLOCK_OK);
    dlock_info info;
    dlock_info_get(l, &info);
    IT_RC(c2, dlock_extend_token(c2, "bytoken", info.token, 9000), DLOCK_OK);
    IT_RC(c2, dlock_extend_token(c2, "bytoken", "0123456789abcdef0123456789abcdef", 9000),
          DLOCK_ENOTHELD);
    IT_RC(c2, dlock_release_token(c2, "bytoken", "nothex"), DLOCK_EINVAL);
    IT_RC(c2, dlock_release_token(c2, "bytoken", info.token), DLOCK_OK);
    IT_RC(c2, dlock_release_token(c2, "bytoken", info.token), DLOCK_ENOTHELD);
    dlock_lock_free(l);
    dlock_client_free(c);
    dlock_client_free(c2);
}

static void test_bad_input(th_server *s) {
    dlock_client *c = it_client(th_server_url(s), NULL);
    dlock_lock *l = NULL;
    char big[DLOCK_NAME_MAX + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    IT_RC(c, dlock_acquire(c, NULL, 1000, &l), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(c), "NULL") != NULL);
    IT_RC(c, dlock_try_acquire(c, "", 1000, &l), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(c), "empty") != NULL);
    IT_RC(c, dlock_try_acquire(c, big, 1000, &l), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(c), "longer") != NULL);
    big[DLOCK_NAME_MAX] = '\0'; /* exactly the maximum: accepted */
    IT_RC(c, dlock_try_acquire(c, big, 1000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    IT_RC(c, dlock_try_acquire(c, "x", 0, &l), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(c), "ttl") != NULL);
    IT_RC(c, dlock_try_acquire(c, "x", -5, &l), DLOCK_EINVAL);
    IT_RC(c, dlock_try_acquire(c, "x", DLOCK_TTL_MAX + 1, &l), DLOCK_EINVAL);
    IT_RC(c, dlock_try_acquire(c, "x", 1000, NULL), DLOCK_EINVAL);
    IT_RC(c, dlock_wait(c, "x", -1, 1000, &l), DLOCK_EINVAL);
    IT_RC(c, dlock_is_locked(c, "x", NULL, NULL), DLOCK_EINVAL);
    IT_RC(c, dlock_inspect(c, "x", NULL), DLOCK_EINVAL);
    TH_EQ_INT(dlock_acquire(NULL, "x", 1000, &l), DLOCK_EINVAL);
    TH_EQ_INT(dlock_release(NULL), DLOCK_EINVAL);
    TH_EQ_INT(dlock_extend(NULL, 10), DLOCK_EINVAL);
    TH_EQ_INT(dlock_held(NULL), 0);
    TH_EQ_INT(dlock_info_get(NULL, NULL), DLOCK_EINVAL);
    TH_EQ_INT(dlock_keepalive_start(NULL, 0, NULL, NULL), DLOCK_EINVAL);
    dlock_lock_free(NULL);
    dlock_client_free(NULL);
    dlock_keepalive_stop(NULL);
    /* Names with Lua-ish and binary-ish content are just keys. */
    const char *odd[] = {"a'b\"c", "end) redis.call('FLUSHALL') --", "{tag}", "sp ace\n\t", "\xff\xfe"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        IT_RC(c, dlock_try_acquire(c, odd[i], 1000, &l), DLOCK_OK);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }

    /* Malformed URLs and options: EINVAL with a message naming the problem. */
    struct {
        const char *url;
        const char *word;
    } bad[] = {
        {"", "empty"},
        {"http://x", "scheme"},
        {"redis://127.0.0.1:99999", "port"},
        {"redis://127.0.0.1:6379/abc", "db"},
        {"redis://127.0.0.1:6379?bogus=1", "bogus"},
        {"redis://", "host"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dlock_client *b = NULL;
        TH_EQ_INT(dlock_client_new(&b, bad[i].url, NULL), DLOCK_EINVAL);
        TH_CHECK(b != NULL);
        if (strstr(dlock_client_errstr(b), bad[i].word) == NULL)
            TH_FAIL("URL '%s': message '%s' does not mention '%s'", bad[i].url,
                    dlock_client_errstr(b), bad[i].word);
        /* A client that failed to configure refuses work cleanly. */
        dlock_lock *bl = NULL;
        TH_EQ_INT(dlock_try_acquire(b, "x", 1000, &bl), DLOCK_EINVAL);
        TH_CHECK(strstr(dlock_client_errstr(b), "not usable") != NULL);
        TH_EQ_INT(dlock_client_ping(b), DLOCK_EINVAL);
        int lk;
        TH_EQ_INT(dlock_is_locked(b, "x", &lk, NULL), DLOCK_EINVAL);
        TH_EQ_INT(dlock_release_token(b, "x", "0123456789abcdef0123456789abcdef"), DLOCK_EINVAL);
        dlock_client_free(b);
    }
    dlock_client *b = NULL;
    TH_EQ_INT(dlock_client_new(&b, NULL, NULL), DLOCK_EINVAL);
    dlock_client_free(b);
    TH_EQ_INT(dlock_client_new(NULL, "redis://x", NULL), DLOCK_EINVAL);
    /* TLS files are read by dlock_client_new: a missing one fails there. */
    TH_EQ_INT(dlock_client_new(&b, "rediss://127.0.0.1:6379?tls_ca=/nonexistent/ca.pem", NULL),
              DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(b), "tls_ca /nonexistent/ca.pem") != NULL);
    dlock_client_free(b);
    /* The password never shows in the detail string. */
    TH_EQ_INT(dlock_client_new(&b, "redis://u:s3cretpw@127.0.0.1:99999", NULL), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(b), "s3cretpw") == NULL);
    dlock_client_free(b);
    dlock_options o;
    dlock_options_init(&o);
    o.drift_factor = 2.0;
    TH_EQ_INT(dlock_client_new(&b, th_server_url(s), &o), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(b), "drift") != NULL);
    dlock_client_free(b);
    dlock_options_init(&o);
    o.owner_pid = -1;
    TH_EQ_INT(dlock_client_new(&b, th_server_url(s), &o), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(b), "owner_pid") != NULL);
    dlock_client_free(b);

    /* Strings for every status. */
    for (int st = 0; st >= DLOCK_ENOREPLICAS; st--) {
        TH_CHECK(strcmp(dlock_strerror(st), "unknown status") != 0);
        TH_CHECK(strncmp(dlock_err_name(st), "DLOCK_", 6) == 0);
    }
    TH_EQ_STR(dlock_strerror(12345), "unknown status");
    TH_CHECK(dlock_version()[0] != '\0');
    dlock_client_free(c);
}

static void test_server_errors(th_server *s) {
    dlock_options o;
    it_options(&o, 300, 500);
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL;
    /* Wrong type at the key: ESERVER with Redis's text. */
    redisReply *r = th_server_cmd(s, "SET %s %s", "dlock:{wrongtype}", "plain-string");
    freeReplyObject(r);
    IT_RC(c, dlock_try_acquire(c, "wrongtype", 1000, &l), DLOCK_ESERVER);
    TH_CHECK(strstr(dlock_client_errstr(c), "WRONGTYPE") != NULL);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGTYPE);
    dlock_holder h;
    IT_RC(c, dlock_inspect(c, "wrongtype", &h), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGTYPE);
    IT_RC(c, dlock_inspect(c, "fine", &h), DLOCK_OK); /* a success clears it */
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_NONE);
    TH_EQ_INT(dlock_client_errcode(NULL), DLOCK_SRV_NONE);
    dlock_client_free(c);

    /* Server down: EIO within the connect timeout. */
    dlock_client *d = it_client("redis://127.0.0.1:1", &o);
    long long t0 = th_now_us();
    IT_RC(d, dlock_try_acquire(d, "x", 1000, &l), DLOCK_EIO);
    TH_CHECK(th_now_us() - t0 < 400000);
    TH_CHECK(strstr(dlock_client_errstr(d), "127.0.0.1:1") != NULL);
    TH_EQ_INT(dlock_client_errcode(d), DLOCK_SRV_NONE); /* no server answered */
    IT_RC(d, dlock_client_ping(d), DLOCK_EIO);
    dlock_client_free(d);
}

static void test_auth_db_unix(void) {
    th_server *s = th_server_start_unix(NULL);
    TH_CHECK(s != NULL);
    freeReplyObject(th_server_cmd(s, "CONFIG SET requirepass topsecret"));
    int port = th_server_port(s);
    char url[512];
    dlock_lock *l = NULL;
    /* Wrong password: ESERVER, and the password is not in the message. */
    snprintf(url, sizeof url, "redis://:wrongpass@127.0.0.1:%d", port);
    dlock_client *c = it_client(url, NULL);
    int rc;
    IT_RC(c, dlock_try_acquire(c, "auth", 1000, &l), DLOCK_ESERVER);
    TH_CHECK(strstr(dlock_client_errstr(c), "wrongpass") == NULL);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGPASS);
    dlock_client_free(c);
    /* No password: NOAUTH, for a short command and for one long enough that
     * Redis answers "ERR Protocol error: unauthenticated multibulk length". */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    c = it_client(url, NULL);
    dlock_holder h;
    IT_RC(c, dlock_inspect(c, "auth", &h), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_NOAUTH);
    rc = dlock_try_acquire(c, "auth", 1000, &l);
    if (rc != DLOCK_ESERVER && rc != DLOCK_EIO)
        TH_FAIL("acquire without AUTH: %s (%s)", dlock_err_name(rc), dlock_client_errstr(c));
    if (rc == DLOCK_ESERVER)
        TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_NOAUTH);
    dlock_client_free(c);
    /* Right password, db 3: the key lands in db 3. */
    snprintf(url, sizeof url, "redis://:topsecret@127.0.0.1:%d/3", port);
    c = it_client(url, NULL);
    IT_RC(c, dlock_try_acquire(c, "auth", 5000, &l), DLOCK_OK);
    redisReply *r = th_server_cmd(s, "AUTH topsecret");
    freeReplyObject(r);
    r = th_server_cmd(s, "SELECT 3");
    freeReplyObject(r);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{auth}"), 1);
    /* A server restart between calls is survived: AUTH and SELECT re-sent. */
    TH_EQ_INT(th_server_kill(s), 0);
    TH_EQ_INT(th_server_restart(s), 0);
    freeReplyObject(th_server_cmd(s, "CONFIG SET requirepass topsecret"));
    IT_RC(c, dlock_release(l), DLOCK_ENOTHELD); /* the data died with it */
    dlock_lock_free(l);
    IT_RC(c, dlock_try_acquire(c, "auth", 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    /* ACL user. */
    r = th_server_cmd(s, "AUTH topsecret");
    freeReplyObject(r);
    r = th_server_cmd(s, "ACL SETUSER locker on >lockpw ~dlock:* +@all");
    freeReplyObject(r);
    snprintf(url, sizeof url, "redis://locker:lockpw@127.0.0.1:%d", port);
    c = it_client(url, NULL);
    IT_RC(c, dlock_try_acquire(c, "acl", 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    /* Unix socket (with password). */
    snprintf(url, sizeof url, "unix://%s?db=2", th_server_unix_path(s));
    dlock_client *u = it_client(url, NULL);
    rc = dlock_try_acquire(u, "unix", 1000, &l);
    TH_EQ_INT(rc, DLOCK_ESERVER); /* NOAUTH: no password given */
    TH_EQ_INT(dlock_client_errcode(u), DLOCK_SRV_NOAUTH);
    dlock_client_free(u);
    th_server_free(s);

    th_server *s2 = th_server_start_unix(NULL);
    snprintf(url, sizeof url, "unix://%s", th_server_unix_path(s2));
    u = it_client(url, NULL);
    IT_RC(u, dlock_try_acquire(u, "unix", 1000, &l), DLOCK_OK);
    IT_RC(u, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(u);
    th_server_free(s2);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    test_basics(s);
    test_expiry(s);
    test_bad_input(s);
    test_server_errors(s);
    th_server_free(s);
    test_auth_db_unix();
    IT_PASS("test_api");
    return 0;
}
