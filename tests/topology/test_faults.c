/* test_faults.c - Sentinel and Cluster clients against servers that are
 * down, silent, or hostile. Every call must fail with a clear status within
 * its time bound, and never crash (run it under ASan/UBSan too).
 *
 *   1. all servers down (refused + a black hole that accepts and never
 *      answers): dlock_client_new succeeds (connections are lazy, see
 *      dlock.h), and the first calls fail with DLOCK_EIO within
 *      connect + 2 * command timeout (+ slack);
 *   2. fake sentinels answering nonsense: bad addresses, wrong types, huge
 *      arrays, unknown master, a "master" whose ROLE says slave;
 *   3. fake cluster nodes: malformed CLUSTER SLOTS replies (ranges, types,
 *      ports, too many nodes), and MOVED / ASK / TRYAGAIN loops and garbage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlock.h"
#include "harness.h"
#include "topo.h"

#define CONNECT_MS 300
#define COMMAND_MS 300
/* A failed call may take: discovery polling (command) + its last steps
 * (connect + command) + the command itself; plus scheduling slack. */
#define BOUND_MS (CONNECT_MS + 3 * COMMAND_MS + 400)

static dlock_client *client(const char *url) {
    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = CONNECT_MS;
    o.command_timeout_ms = COMMAND_MS;
    o.retry_count = 0;
    dlock_client *c = NULL;
    long long t = th_now_us();
    int rc = dlock_client_new(&c, url, &o);
    if (rc != DLOCK_OK)
        TH_FAIL("dlock_client_new(%s): %s: %s", url, dlock_err_name(rc), dlock_client_errstr(c));
    TH_CHECK(th_now_us() - t < 100000); /* lazy: no network in client_new */
    return c;
}

/* Runs try_acquire and ping; checks the status is one of want1/want2 and the
 * time bound. */
static void expect_fail(dlock_client *c, const char *what, int want1, int want2) {
    for (int k = 0; k < 2; k++) {
        long long t = th_now_us();
        dlock_lock *l = NULL;
        int rc = k == 0 ? dlock_try_acquire(c, "x", 1000, &l) : dlock_client_ping(c);
        long long ms = (th_now_us() - t) / 1000;
        printf("  %-34s %-9s %-14s in %4lld ms: %s\n", what, k == 0 ? "acquire" : "ping",
               dlock_err_name(rc), ms, dlock_client_errstr(c));
        TH_CHECK(l == NULL);
        if (rc != want1 && rc != want2)
            TH_FAIL("%s: got %s, want %s or %s", what, dlock_err_name(rc), dlock_err_name(want1),
                    dlock_err_name(want2));
        TH_CHECK(dlock_client_errstr(c)[0] != '\0');
        if (ms > BOUND_MS)
            TH_FAIL("%s: took %lld ms, bound %d", what, ms, BOUND_MS);
    }
}

/* ---- fake servers ---- */

typedef struct script {
    const char *sentinel; /* reply to SENTINEL ... */
    const char *role;     /* reply to ROLE */
    const char *slots;    /* reply to CLUSTER SLOTS */
    const char *other;    /* reply to anything else */
    size_t slots_len;     /* when slots has NULs or is long (0: strlen) */
} script;

/* A black hole: accepts and reads, never answers. */
static const char *silent_reply(const char *req, size_t len, size_t *outlen, void *ud) {
    (void)req;
    (void)len;
    (void)ud;
    *outlen = 0;
    return "";
}

static const char *fake_reply(const char *req, size_t len, size_t *outlen, void *ud) {
    const script *s = ud;
    const char *out = s->other;
    if (memmem(req, len, "ASKING", 6) != NULL)
        out = "+OK\r\n";
    else if (memmem(req, len, "SENTINEL", 8) != NULL)
        out = s->sentinel;
    else if (memmem(req, len, "ROLE", 4) != NULL)
        out = s->role;
    else if (memmem(req, len, "SLOTS", 5) != NULL) {
        *outlen = s->slots_len ? s->slots_len : strlen(s->slots);
        return s->slots;
    }
    if (out == NULL)
        out = "-ERR not scripted\r\n";
    *outlen = strlen(out);
    return out;
}

/* ---- 1. everything down ---- */

static void all_down(void) {
    int p1 = tt_free_port(), p2;
    do /* nothing binds them: a second pick may repeat the first */
        p2 = tt_free_port();
    while (p2 == p1);
    tt_fake *hole = tt_fake_start(silent_reply, NULL);
    TH_CHECK(hole != NULL);
    char url[256];
    printf("all servers down:\n");

    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster", p1, p2);
    dlock_client *c = client(url);
    expect_fail(c, "sentinels refused", DLOCK_EIO, DLOCK_EIO);
    dlock_client_free(c);
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster",
             tt_fake_port(hole), p1);
    c = client(url);
    expect_fail(c, "sentinels black hole + refused", DLOCK_EIO, DLOCK_EIO);
    dlock_client_free(c);

    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    c = client(url);
    expect_fail(c, "cluster refused", DLOCK_EIO, DLOCK_EIO);
    dlock_client_free(c);
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", tt_fake_port(hole),
             p2);
    c = client(url);
    expect_fail(c, "cluster black hole + refused", DLOCK_EIO, DLOCK_EIO);
    dlock_client_free(c);
    tt_fake_stop(hole);
}

static void fake_sentinels(void) {
    static char self_addr[128], self_role_master[64];
    printf("fake sentinels:\n");
    struct {
        const char *what;
        script s;
        int want1, want2;
    } cases[] = {
        {"unknown master (nil)", {"*-1\r\n", 0, 0, 0, 0}, DLOCK_EIO, DLOCK_EIO},
        {"error reply", {"-ERR No such master with that name\r\n", 0, 0, 0, 0}, DLOCK_ESERVER,
         DLOCK_ESERVER},
        {"integer instead of address", {":7\r\n", 0, 0, 0, 0}, DLOCK_EPROTO, DLOCK_EPROTO},
        {"port 99999", {"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n", 0, 0, 0, 0}, DLOCK_EPROTO,
         DLOCK_EPROTO},
        {"port 0", {"*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n", 0, 0, 0, 0}, DLOCK_EPROTO,
         DLOCK_EPROTO},
        {"port not a number", {"*2\r\n$9\r\n127.0.0.1\r\n$3\r\nabc\r\n", 0, 0, 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"three elements",
         {"*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n$1\r\nx\r\n", 0, 0, 0, 0}, DLOCK_EPROTO,
         DLOCK_EPROTO},
        {"empty host", {"*2\r\n$0\r\n\r\n$4\r\n6379\r\n", 0, 0, 0, 0}, DLOCK_EPROTO,
         DLOCK_EPROTO},
        {"nested arrays", {"*2\r\n*1\r\n*1\r\n:1\r\n*0\r\n", 0, 0, 0, 0}, DLOCK_EPROTO,
         DLOCK_EPROTO},
        {"huge array header", {"*2147483647\r\n", 0, 0, 0, 0}, DLOCK_EPROTO, DLOCK_EIO},
        {"huge bulk header", {"$2147483647\r\n", 0, 0, 0, 0}, DLOCK_EPROTO, DLOCK_EIO},
        {"protocol garbage", {"hello\r\n", 0, 0, 0, 0}, DLOCK_EPROTO, DLOCK_EIO},
        {"master says ROLE slave", {self_addr, "*1\r\n$5\r\nslave\r\n", 0, 0, 0}, DLOCK_EIO,
         DLOCK_EIO},
        {"master ROLE is an integer", {self_addr, ":1\r\n", 0, 0, 0}, DLOCK_EIO, DLOCK_EIO},
        {"master ROLE ok, commands fail",
         {self_addr, self_role_master, 0, "-ERR nope\r\n", 0}, DLOCK_ESERVER, DLOCK_ESERVER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tt_fake *f = tt_fake_start(fake_reply, &cases[i].s);
        TH_CHECK(f != NULL);
        char port[8];
        int pl = snprintf(port, sizeof port, "%d", tt_fake_port(f));
        snprintf(self_addr, sizeof self_addr, "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n", pl, port);
        snprintf(self_role_master, sizeof self_role_master, "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        char url[128];
        snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d/mymaster", tt_fake_port(f));
        dlock_client *c = client(url);
        expect_fail(c, cases[i].what, cases[i].want1, cases[i].want2);
        dlock_client_free(c);
        tt_fake_stop(f);
    }
}

/* A sentinel that names itself as the master, and as the master refuses
 * the URL's password. */
static char auth_self_addr[128];
static const char *auth_fail_reply(const char *req, size_t len, size_t *outlen, void *ud) {
    (void)ud;
    const char *out = "-ERR not scripted\r\n";
    if (memmem(req, len, "SENTINEL", 8) != NULL)
        out = auth_self_addr;
    else if (memmem(req, len, "AUTH", 4) != NULL)
        out = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    else if (memmem(req, len, "ROLE", 4) != NULL)
        out = "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";
    *outlen = strlen(out);
    return out;
}

static void sentinel_wrong_password(void) {
    tt_fake *f = tt_fake_start(auth_fail_reply, NULL);
    TH_CHECK(f != NULL);
    char port[8];
    int pl = snprintf(port, sizeof port, "%d", tt_fake_port(f));
    snprintf(auth_self_addr, sizeof auth_self_addr, "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n",
             pl, port);
    char url[128];
    snprintf(url, sizeof url, "redis-sentinel://:secret@127.0.0.1:%d/mymaster", tt_fake_port(f));
    dlock_client *c = client(url);
    expect_fail(c, "master refuses the password", DLOCK_ESERVER, DLOCK_ESERVER);
    TH_CHECK(strstr(dlock_client_errstr(c), "WRONGPASS") != NULL);
    TH_CHECK(strstr(dlock_client_errstr(c), "secret") == NULL);
    dlock_client_free(c);
    tt_fake_stop(f);
}

/* A CLUSTER SLOTS reply with n single-slot ranges, each on its own port. */
static char *many_nodes(int n, size_t *len) {
    size_t cap = (size_t)n * 80 + 32;
    char *b = malloc(cap);
    TH_CHECK(b != NULL);
    size_t off = (size_t)snprintf(b, cap, "*%d\r\n", n);
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(b + off, cap - off,
                                "*3\r\n:%d\r\n:%d\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n", i, i,
                                20000 + i);
    *len = off;
    return b;
}

static void fake_cluster(void) {
    static char self_map[160], moved_self[64], ask_self[64];
    printf("fake cluster nodes:\n");
    size_t many_len = 0;
    char *many = many_nodes(1100, &many_len);
    struct {
        const char *what;
        script s;
        int want1, want2;
    } cases[] = {
        {"CLUSTER SLOTS error", {0, 0, "-ERR This instance has cluster support disabled\r\n", 0,
                                 0},
         DLOCK_ESERVER, DLOCK_ESERVER},
        {"CLUSTER SLOTS empty", {0, 0, "*0\r\n", 0, 0}, DLOCK_EPROTO, DLOCK_EPROTO},
        {"CLUSTER SLOTS integer", {0, 0, ":3\r\n", 0, 0}, DLOCK_EPROTO, DLOCK_EPROTO},
        {"range end 16384",
         {0, 0, "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n", 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"range start > end",
         {0, 0, "*1\r\n*3\r\n:9\r\n:3\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n", 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"negative range",
         {0, 0, "*1\r\n*3\r\n:-5\r\n:3\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n", 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"range as strings",
         {0, 0, "*1\r\n*3\r\n$1\r\n0\r\n$5\r\n16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n", 0,
          0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"port 70000",
         {0, 0, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:70000\r\n", 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"port as string",
         {0, 0, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n$4\r\n7000\r\n", 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"master not an array", {0, 0, "*1\r\n*3\r\n:0\r\n:16383\r\n:1\r\n", 0, 0},
         DLOCK_EPROTO, DLOCK_EPROTO},
        {"range too short", {0, 0, "*1\r\n*2\r\n:0\r\n:16383\r\n", 0, 0}, DLOCK_EPROTO,
         DLOCK_EPROTO},
        {"host 300 bytes", {0, 0, NULL, 0, 0}, DLOCK_EPROTO, DLOCK_EPROTO},
        {"1100 nodes", {0, 0, many, 0, many_len}, DLOCK_EPROTO, DLOCK_EPROTO},
        {"unknown endpoint '?'",
         {0, 0, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\n?\r\n:7000\r\n", "-MOVED 1 ?:7000\r\n",
          0},
         DLOCK_ESERVER, DLOCK_ESERVER},
        {"MOVED to itself forever", {0, 0, self_map, moved_self, 0}, DLOCK_ESERVER,
         DLOCK_ESERVER},
        {"ASK to itself forever", {0, 0, self_map, ask_self, 0}, DLOCK_ESERVER, DLOCK_ESERVER},
        /* try_acquire reports a migrating slot as EBUSY; ping as ESERVER. */
        {"TRYAGAIN forever", {0, 0, self_map, "-TRYAGAIN Multiple keys\r\n", 0}, DLOCK_EBUSY,
         DLOCK_ESERVER},
        {"CLUSTERDOWN", {0, 0, self_map, "-CLUSTERDOWN The cluster is down\r\n", 0},
         DLOCK_ESERVER, DLOCK_ESERVER},
        {"MOVED slot 99999", {0, 0, self_map, "-MOVED 99999 127.0.0.1:7000\r\n", 0},
         DLOCK_ESERVER, DLOCK_ESERVER},
        {"MOVED port 0", {0, 0, self_map, "-MOVED 5 127.0.0.1:0\r\n", 0}, DLOCK_ESERVER,
         DLOCK_ESERVER},
        {"MOVED no port", {0, 0, self_map, "-MOVED 5 127.0.0.1\r\n", 0}, DLOCK_ESERVER,
         DLOCK_ESERVER},
        {"MOVED garbage", {0, 0, self_map, "-MOVED\r\n", 0}, DLOCK_ESERVER, DLOCK_ESERVER},
        {"MOVED to a dead node", {0, 0, self_map, "-MOVED 5 127.0.0.1:1\r\n", 0}, DLOCK_EIO,
         DLOCK_EIO},
        {"script reply garbage", {0, 0, self_map, "*1\r\n:1\r\n", 0}, DLOCK_EPROTO,
         DLOCK_OK},
    };
    static char longhost[600];
    char h300[301];
    memset(h300, 'h', 300);
    h300[300] = '\0';
    snprintf(longhost, sizeof longhost, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$300\r\n%s\r\n:7000\r\n",
             h300);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].s.slots == NULL)
            cases[i].s.slots = longhost;
        tt_fake *f = tt_fake_start(fake_reply, &cases[i].s);
        TH_CHECK(f != NULL);
        int port = tt_fake_port(f);
        snprintf(self_map, sizeof self_map,
                 "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n", port);
        snprintf(moved_self, sizeof moved_self, "-MOVED 5 127.0.0.1:%d\r\n", port);
        snprintf(ask_self, sizeof ask_self, "-ASK 5 :%d\r\n", port);
        char url[128];
        snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d", port);
        dlock_client *c = client(url);
        if (cases[i].want2 == DLOCK_OK) {
            /* Only acquire is meaningful (ping accepts any reply). */
            dlock_lock *l = NULL;
            int rc = dlock_try_acquire(c, "x", 1000, &l);
            printf("  %-34s %-9s %-14s: %s\n", cases[i].what, "acquire", dlock_err_name(rc),
                   dlock_client_errstr(c));
            TH_EQ_INT(rc, cases[i].want1);
        } else {
            expect_fail(c, cases[i].what, cases[i].want1, cases[i].want2);
        }
        dlock_client_free(c);
        tt_fake_stop(f);
    }
    free(many);
}

int main(void) {
    th_test_init(60);
    long long t0 = th_now_us();
    all_down();
    fake_sentinels();
    sentinel_wrong_password();
    fake_cluster();
    printf("test_faults: ok in %.1f s\n", (th_now_us() - t0) / 1e6);
    return 0;
}
