/* test_redlock_fence.c - Redlock fences: one round trip when the granting
 * servers' counters agree, two (FENCE with max+1) when they have diverged.
 *
 * Every granting server INCRs its own fencing counter in the ACQUIRE
 * script. When all grants carry the same value, that value is the fence
 * (docs/REDLOCK.md proves it is stored on a majority and above every
 * earlier fence); otherwise the client writes max+1 with FENCE. Checked on
 * the storage side: fences strictly rising across every case, each
 * server's counter and the fence stored with the holder, and the scripts
 * each server ran (INFO commandstats) for one acquire + release: 2 when
 * the counters agreed, 3 when FENCE had to follow. The counters diverge
 * three ways: raised by hand, by an acquire that a majority refused (the
 * minority that granted INCRed), and by a server restarted empty. Last,
 * the read-only fencing mode 2 of ACQUIRE that older Redlock clients send. */
#include <stdlib.h>
#include <unistd.h>

#include "itest.h"
#include "proto.h"

#define MAXS 5

static th_server *srv[MAXS];
static char url[1024];
static int64_t last_fence; /* every fence of the test must be above it */

static void make_url(int n) { it_redlock_url(url, sizeof url, srv, n); }

static long info_field(th_server *s, const char *section, const char *field) {
    redisReply *r = th_server_cmd(s, "INFO %s", section);
    long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, field);
        v = p ? strtol(p + strlen(field), NULL, 10) : 0;
    }
    freeReplyObject(r);
    return v;
}

/* Scripts server s ran since its last CONFIG RESETSTAT. */
static long scripts_run(th_server *s) {
    return info_field(s, "commandstats", "cmdstat_evalsha:calls=") +
           info_field(s, "commandstats", "cmdstat_eval:calls=");
}

/* Every script dlock may send, cached on every server, so that no EVALSHA
 * meets NOSCRIPT (which would count as an extra call); then zero the
 * counts. */
static void reset_counts(int n) {
    for (int i = 0; i < n; i++) {
        it_cache_scripts(srv[i]);
        freeReplyObject(th_server_cmd(srv[i], "CONFIG RESETSTAT"));
    }
}

/* The client that sent the requests is gone: wait until every server has
 * seen it go (only the harness's own connection left), so that everything
 * it sent has run. */
static void settle(int n) {
    long long until = th_now_us() + 5000000;
    for (int i = 0; i < n; i++)
        while (info_field(srv[i], "clients", "connected_clients:") > 1) {
            if (th_now_us() > until)
                TH_FAIL("server %d still has the client's connection", i);
            th_sleep_ms(2);
        }
}

static void foreign_holder(int i, const char *key) {
    freeReplyObject(th_server_cmd(srv[i], "HSET %s t %s f 0 o x a 0", key,
                                  "ffffffffffffffffffffffffffffffff"));
    freeReplyObject(th_server_cmd(srv[i], "PEXPIRE %s 60000", key));
}

static long long counter(int i, const char *name) {
    redisReply *r = th_server_cmd(srv[i], "GET dlock:{%s}:fence", name);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* The fence server i stores with the holder, polled until it is `want` (a
 * straggler's ACQUIRE or FENCE may still be on its way). */
static void stored_fence_is(int i, const char *name, int64_t want) {
    long long until = th_now_us() + 2000000, v = -1;
    for (;;) {
        redisReply *r = th_server_cmd(srv[i], "HGET dlock:{%s} f", name);
        v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
        freeReplyObject(r);
        if (v == want || th_now_us() > until)
            break;
        th_sleep_ms(2);
    }
    if (v != want)
        TH_FAIL("server %d stores fence %lld with the holder, want %lld", i, v,
                (long long)want);
}

/* One acquire + release of `name` by a fresh client; servers in `busy`
 * (a bit mask) refuse. Returns the fence, checked to rise above every
 * earlier one, and checks that each of the n servers ran `scripts`
 * scripts (2: ACQUIRE and RELEASE; 3: FENCE in between). */
static int64_t pair(int n, const char *name, unsigned busy, long scripts) {
    dlock_options o;
    it_options(&o, 500, 1000);
    reset_counts(n);
    dlock_client *c = it_client(url, &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 10000, &l), DLOCK_OK);
    dlock_info info;
    dlock_info_get(l, &info);
    int64_t f = info.fence;
    if (f <= last_fence)
        TH_FAIL("fence %lld not above the previous %lld", (long long)f, (long long)last_fence);
    last_fence = f;
    for (int i = 0; i < n; i++)
        if (!(busy & (1u << i)))
            stored_fence_is(i, name, f);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    settle(n);
    for (int i = 0; i < n; i++) {
        long k = scripts_run(srv[i]);
        if (k != scripts)
            TH_FAIL("server %d ran %ld scripts for one acquire + release of '%s' (fence %lld), "
                    "want %ld",
                    i, k, name, (long long)f, scripts);
    }
    return f;
}

/* A new case on servers 0..n-1: the lock's name is stem + n, and the
 * fences start again (a new name starts at 1). */
static void begin(int n, const char *stem, char name[16]) {
    snprintf(name, 16, "%s%d", stem, n);
    make_url(n);
    last_fence = 0;
}

/* Counters that agree: every acquire is one round trip. */
static void agreeing(int n) {
    char name[16];
    begin(n, "agree", name);
    for (int k = 1; k <= 3; k++)
        TH_EQ_INT(pair(n, name, 0, 2), k);
    for (int i = 0; i < n; i++)
        TH_EQ_INT(counter(i, name), 3);
    printf("redlock-%d, counters agree: fences 1 2 3, one round trip each\n", n);
}

/* Key of lock `name`, for a foreign holder. */
static const char *lock_key(const char *name) {
    static char k[64];
    snprintf(k, sizeof k, "dlock:{%s}", name);
    return k;
}

/* A counter raised by hand. Servers 1..n-Q hold the lock for someone
 * else, so exactly servers 0 and n-Q+1..n-1 (a bare majority) grant: with
 * server 0's counter ahead they disagree and FENCE writes max+1; after
 * that they agree again. */
static void raised_by_hand(int n) {
    char name[16];
    begin(n, "hand", name);
    int minority = n - (n / 2 + 1);
    unsigned busy = 0;
    for (int i = 1; i <= minority; i++) {
        foreign_holder(i, lock_key(name));
        busy |= 1u << i;
    }
    int64_t f1 = pair(n, name, busy, 2);
    freeReplyObject(th_server_cmd(srv[0], "INCRBY dlock:{%s}:fence 10", name));
    int64_t f2 = pair(n, name, busy, 3); /* server 0: f1+11, the others f1+1 */
    TH_EQ_INT(f2, f1 + 12);
    for (int i = 0; i < n; i++)
        if (!(busy & (1u << i)))
            TH_EQ_INT(counter(i, name), f2);
    int64_t f3 = pair(n, name, busy, 2);
    TH_EQ_INT(f3, f2 + 1);
    for (int i = 1; i <= minority; i++)
        freeReplyObject(th_server_cmd(srv[i], "DEL %s", lock_key(name)));
    printf("redlock-%d, a counter raised by hand: fences %lld, then %lld (two round trips), "
           "then %lld (one again)\n",
           n, (long long)f1, (long long)f2, (long long)f3);
}

/* An acquire refused by a majority still INCRs the minority that granted:
 * the next acquire that meets those counters takes two round trips. Server
 * 0 stays busy for it, so that its majority must include server 2. */
static void refused_acquire(void) {
    char name[16];
    begin(3, "refused", name);
    int64_t f1 = pair(3, name, 0, 2);
    foreign_holder(0, lock_key(name));
    foreign_holder(1, lock_key(name));
    dlock_options o;
    it_options(&o, 500, 1000);
    dlock_client *c = it_client(url, &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 10000, &l), DLOCK_EBUSY);
    dlock_client_free(c);
    settle(3);
    TH_EQ_INT(counter(2, name), f1 + 1); /* the grant of server 2, undone */
    TH_EQ_INT(counter(1, name), f1);
    freeReplyObject(th_server_cmd(srv[1], "DEL %s", lock_key(name)));
    int64_t f2 = pair(3, name, 1u << 0, 3); /* servers 1 and 2: f1+1, f1+2 */
    TH_EQ_INT(f2, f1 + 3);
    freeReplyObject(th_server_cmd(srv[0], "DEL %s", lock_key(name)));
    printf("redlock-3, after an acquire a majority refused: fences %lld, then %lld (two "
           "round trips)\n",
           (long long)f1, (long long)f2);
}

/* A server restarted empty counts from 1 again: the acquire that meets it
 * takes two round trips, and FENCE brings its counter back up. Server 0
 * stays busy, so the restarted server 2 is in the granting majority. */
static void restarted_empty(void) {
    char name[16];
    begin(3, "restart", name);
    int64_t f1 = pair(3, name, 0, 2);
    TH_EQ_INT(th_server_kill(srv[2]), 0);
    TH_EQ_INT(th_server_restart(srv[2]), 0);
    TH_EQ_INT(counter(2, name), 0);
    foreign_holder(0, lock_key(name));
    int64_t f2 = pair(3, name, 1u << 0, 3); /* servers 1 and 2: f1+1 and 1 */
    TH_EQ_INT(f2, f1 + 2);
    TH_EQ_INT(counter(2, name), f2);
    freeReplyObject(th_server_cmd(srv[0], "DEL %s", lock_key(name)));
    printf("redlock-3, a server restarted empty: fences %lld, then %lld (two round trips)\n",
           (long long)f1, (long long)f2);
}

/* Fencing mode 2 (older Redlock clients): ACQUIRE reads the counter and
 * leaves it as it is; FENCE then writes the fence. */
static void read_only_mode(void) {
    size_t len;
    const char *src = dl_script_source(DL_S_ACQUIRE, &len);
    freeReplyObject(th_server_cmd(srv[0], "SET dlock:{legacy}:fence 41"));
    redisReply *r = th_server_cmd(srv[0],
                                  "EVAL %b 4 dlock:{legacy} dlock:{legacy}:fence dlock:{legacy}:q "
                                  "dlock:{legacy}:qi 0123456789abcdef0123456789abcdef 10000 "
                                  "meta 2 0 1 1700000000000",
                                  src, len);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, "41") == 0);
    freeReplyObject(r);
    TH_EQ_INT(counter(0, "legacy"), 41);
    printf("fencing mode 2: ACQUIRE reads the counter (41) and leaves it\n");
}

int main(void) {
    th_test_init(110);
    for (int i = 0; i < MAXS; i++) {
        srv[i] = th_server_start(NULL);
        TH_CHECK(srv[i] != NULL);
    }
    agreeing(3);
    agreeing(5);
    raised_by_hand(3);
    raised_by_hand(5);
    refused_acquire();
    restarted_empty();
    read_only_mode();
    for (int i = 0; i < MAXS; i++)
        th_server_free(srv[i]);
    IT_PASS("test_redlock_fence");
    return 0;
}
