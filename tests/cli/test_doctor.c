/* test_doctor.c - `dlock doctor` against real redis-server processes with
 * safe and unsafe settings: exit status by severity, the setting named in
 * the text and in --json, a Redlock set naming one server twice, an
 * unreachable server, a password that never shows, and host names: looked
 * up within --io-timeout, and a name's next address tried when the first
 * refuses (fake_dns.c, preloaded into dlock, makes the names up).
 *
 *   test_doctor CASE PATH_TO_DLOCK PATH_TO_FAKE_DNS_SO
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "harness.h"

#define PW "D0ctor-pw-93a1"

/* Finds, among the JSON lines of text, the first object whose member `key`
 * is the string `val`; fails the test if there is none. */
static void jfind(const char *text, const char *key, const char *val, jobj *o) {
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        jparse(p, o);
        for (int i = 0; i < o->count; i++)
            if (strcmp(o->v[i].key, key) == 0 && o->v[i].type == 's' &&
                strcmp(o->v[i].s, val) == 0)
                return;
        if (strchr(p, '\n') == NULL)
            break;
    }
    TH_FAIL("no JSON line with %s = \"%s\" in:\n%s", key, val, text);
}

static th_server *start_with(const char *const *extra) {
    th_server *s = th_server_start(extra);
    TH_CHECK(s != NULL);
    return s;
}

/* noeviction and AOF: nothing to warn about. */
static void t_safe(void) {
    const char *extra[] = {"--appendonly", "yes", "--appendfsync", "everysec", NULL};
    th_server *s = start_with(extra);
    result r;
    dl(&r, "doctor", th_server_url(s), NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "noeviction");
    EXPECT_IN(r.out, "Redis ");
    EXPECT_IN(r.out, "20 PINGs");
    dl(&r, "--url", th_server_url(s), "doctor", "--json", NULL);
    EXPECT_CODE(&r, 0);
    jobj o;
    jfind(r.out, "type", "summary", &o);
    TH_EQ_STR(jget(&o, "status", 's')->s, "ok");
    TH_EQ_INT(jget(&o, "exit_code", 'n')->n, 0);
    jfind(r.out, "check", "eviction", &o);
    TH_EQ_STR(jget(&o, "severity", 's')->s, "ok");
    TH_EQ_STR(jget(&o, "value", 's')->s, "noeviction");
    jfind(r.out, "type", "server", &o);
    TH_EQ_STR(jget(&o, "role", 's')->s, "master");
    TH_CHECK(jget(&o, "latency_p50_us", 'n')->n > 0);
    /* Without AOF: a warning, exit 1. */
    dl(&r, "doctor", g_url, NULL);
    EXPECT_CODE(&r, 1);
    EXPECT_IN(r.out, "AOF is off");
    th_server_free(s);
}

static void unsafe_policy(const char *policy, const char *why) {
    const char *extra[] = {"--maxmemory", "2mb", "--maxmemory-policy", policy, NULL};
    th_server *s = start_with(extra);
    result r;
    dl(&r, "doctor", th_server_url(s), NULL);
    EXPECT_CODE(&r, 78);
    EXPECT_IN(r.out, "UNSAFE");
    EXPECT_IN(r.out, policy);
    EXPECT_IN(r.out, why);
    dl(&r, "doctor", "-j", th_server_url(s), NULL);
    EXPECT_CODE(&r, 78);
    jobj o;
    jfind(r.out, "check", "eviction", &o);
    TH_EQ_STR(jget(&o, "severity", 's')->s, "unsafe");
    TH_EQ_STR(jget(&o, "value", 's')->s, policy);
    jfind(r.out, "type", "summary", &o);
    TH_EQ_STR(jget(&o, "status", 's')->s, "unsafe");
    TH_EQ_INT(jget(&o, "exit_code", 'n')->n, 78);
    th_server_free(s);
}

static void t_allkeys(void) {
    unsafe_policy("allkeys-lru", "fence counters");
}

static void t_volatile(void) {
    unsafe_policy("volatile-lru", "often the only keys");
}

/* One server named twice in a Redlock set (IPv4 and IPv6 loopback). */
static void t_same_server(void) {
    const char *extra[] = {"--bind", "127.0.0.1", "::1", NULL};
    th_server *s = start_with(extra);
    char url[200];
    int port = th_server_port(s);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,[::1]:%d,%s", port, port, g_url + 8);
    result r;
    dl(&r, "doctor", url, NULL);
    EXPECT_CODE(&r, 78);
    EXPECT_IN(r.out, "same redis-server");
    dl(&r, "doctor", "--json", url, NULL);
    jobj o;
    jfind(r.out, "check", "independence", &o);
    TH_EQ_STR(jget(&o, "severity", 's')->s, "unsafe");
    jget(&o, "server", 'z');
    th_server_free(s);
}

/* Nothing listens: 69 at once, naming the address. */
static void t_unreachable(void) {
    int port = th_server_port(g_srv);
    TH_EQ_INT(th_server_kill(g_srv), 0);
    char url[100], where[64];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d", PW, port);
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    result r;
    dl(&r, "doctor", url, NULL);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.out, where);
    EXPECT_IN(r.out, "UNREACHABLE");
    TH_CHECK(r.ms < 2000);
    TH_CHECK(strstr(r.out, PW) == NULL && strstr(r.err, PW) == NULL);
}

/* An ACL user: checked with its password, which never shows; a wrong one
 * is "could not be checked" (69) without quoting the server's reply. */
static void t_auth(void) {
    const char *extra[] = {"--user", "bob", "on", ">" PW, "~dlock:*", "+@all", NULL};
    th_server *s = start_with(extra);
    char url[200];
    snprintf(url, sizeof url, "redis://bob:%s@127.0.0.1:%d", PW, th_server_port(s));
    result r;
    dl(&r, "doctor", url, NULL);
    TH_CHECK(r.code == 0 || r.code == 1);
    EXPECT_IN(r.out, "ACL user bob");
    EXPECT_IN(r.out, "redis://***@127.0.0.1");
    TH_CHECK(strstr(r.out, PW) == NULL && strstr(r.err, PW) == NULL);
    snprintf(url, sizeof url, "redis://bob:wrong-%s@127.0.0.1:%d", PW, th_server_port(s));
    dl(&r, "doctor", url, NULL);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.out, "refused AUTH");
    TH_CHECK(strstr(r.out, PW) == NULL && strstr(r.err, PW) == NULL);
    th_server_free(s);
}

/* A Cluster node behind a plain URL. */
static void t_cluster_node(void) {
    const char *extra[] = {"--cluster-enabled", "yes", NULL};
    th_server *s = start_with(extra);
    result r;
    dl(&r, "doctor", th_server_url(s), NULL);
    EXPECT_CODE(&r, 78);
    EXPECT_IN(r.out, "redis-cluster://");
    th_server_free(s);
}

static void t_usage(void) {
    result r;
    dl(&r, "doctor", g_url, "extra", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "usage: dlock doctor");
    dl(&r, "--ttl", "5", "doctor", g_url, NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "doctor", "--url", g_url, g_url, NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "doctor", "http://x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "bad server URL");
    dl(&r, "doctor", "--help", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "78");
    dl(&r, "help", "doctor", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "usage: dlock doctor");
    dl(&r, "--help", NULL);
    EXPECT_IN(r.out, "doctor");
    /* The I/O timeout is --io-timeout MS for every command (README, "The
     * tool"), after the command word too; doctor's older -T/--timeout MS
     * still works. g_srv has AOF off: exit 1, warnings only. */
    dl(&r, "doctor", "--io-timeout", "2000", g_url, NULL);
    EXPECT_CODE(&r, 1);
    dl(&r, "doctor", "--io-timeout=2000", "--url", g_url, NULL);
    EXPECT_CODE(&r, 1);
    dl(&r, "--io-timeout", "2000", "doctor", g_url, NULL);
    EXPECT_CODE(&r, 1);
    dl(&r, "doctor", "-T", "2000", g_url, NULL);
    EXPECT_CODE(&r, 1);
    dl(&r, "doctor", "--io-timeout", "0", g_url, NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "--io-timeout wants milliseconds");
}

static const char *g_fake_dns;

/* Host names, as the library treats them: a look-up slower than
 * --io-timeout ends at that timeout, saying so; a name whose first address
 * refuses is reached at its second. */
static void t_names(void) {
    char pre[600];
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(pre, sizeof pre, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan ? ":" : "");
    setenv("ASAN_OPTIONS", pre, 1); /* a preloaded library comes before ASan's */
    setenv("LD_PRELOAD", g_fake_dns, 1);
    setenv("DLOCK_FAKE_DNS_DELAY_MS", "3000", 1);
    int port = th_server_port(g_srv);
    char url[100];
    result r;
    snprintf(url, sizeof url, "redis://slow.dlock.test:%d", port);
    dl(&r, "doctor", "--io-timeout", "300", url, NULL);
    printf("a 3 s look-up, --io-timeout 300: exit %d after %lld ms\n", r.code, r.ms);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.out, "lookup did not complete in time");
    TH_CHECK(r.ms < 2000);
    snprintf(url, sizeof url, "redis://two.dlock.test:%d", port);
    dl(&r, "doctor", url, NULL);
    printf("two addresses, the first refusing: exit %d\n", r.code);
    EXPECT_CODE(&r, 1); /* reached: AOF is off on this server, a warning */
    EXPECT_IN(r.out, "noeviction");
    EXPECT_IN(r.out, "0 unreachable");
    unsetenv("LD_PRELOAD");
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"safe", t_safe},           {"allkeys", t_allkeys},         {"volatile", t_volatile},
    {"same_server", t_same_server}, {"unreachable", t_unreachable}, {"auth", t_auth},
    {"cluster_node", t_cluster_node}, {"usage", t_usage},     {"names", t_names},
};

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_doctor CASE PATH_TO_DLOCK PATH_TO_FAKE_DNS_SO\n");
        return 2;
    }
    g_fake_dns = argv[3];
    cli_test_init(argv[2], 50);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(cases[i].name, argv[1]) != 0)
            continue;
        g_srv = th_server_start(NULL); /* a plain server; output files go in its dir */
        TH_CHECK(g_srv != NULL);
        snprintf(g_url, sizeof g_url, "%s", th_server_url(g_srv));
        long long t0 = th_now_us();
        cases[i].fn();
        printf("doctor %s: ok (%.1f s)\n", cases[i].name, (double)(th_now_us() - t0) / 1e6);
        th_server_free(g_srv);
        return 0;
    }
    fprintf(stderr, "test_doctor: no case %s\n", argv[1]);
    return 2;
}
