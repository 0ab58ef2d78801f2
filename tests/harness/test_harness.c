/* test_harness.c - self-test of the test harness against real redis-server
 * processes. Some steps make the harness print messages on purpose (failed
 * connects, a worker that fails, a child that times out); they are announced
 * with "expect:" lines. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_INCR 200

static void ok(const char *what)
{
    printf("ok - %s\n", what);
}

static void expect_pong(redisReply *r)
{
    TH_CHECK(r != NULL);
    TH_EQ_INT(r->type, REDIS_REPLY_STATUS);
    TH_EQ_STR(r->str, "PONG");
    freeReplyObject(r);
}

static void ping_ok(redisContext *c)
{
    expect_pong(redisCommand(c, "PING"));
}

static int dir_exists(const char *dir)
{
    return access(dir, F_OK) == 0;
}

/* Connect without the harness (no error message when it fails). */
static int port_refuses(int port)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, (struct timeval){0, 200000});
    int refused = c == NULL || c->err != 0;
    redisFree(c);
    return refused;
}

static void test_start(th_server *s)
{
    char url[64];

    TH_CHECK(th_server_port(s) > 0);
    TH_CHECK(th_server_pid(s) > 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", th_server_port(s));
    TH_EQ_STR(th_server_url(s), url);
    TH_CHECK(dir_exists(th_server_dir(s)));
    TH_CHECK(th_server_unix_path(s) == NULL);
    expect_pong(th_server_cmd(s, "PING"));
    redisReply *r = th_server_cmd(s, "DEBUG SLEEP 0"); /* --enable-debug-command */
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = th_server_cmd(s, "CONFIG GET save");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    TH_EQ_STR(r->element[1]->str, "");
    freeReplyObject(r);
    TH_EQ_INT(th_server_int(s, "INCR %s", "start"), 1);
    ok("start, PING, DEBUG, no persistence");
}

static void test_admin_reconnect(th_server *s)
{
    /* Kill the cached admin connection from another client: the next
     * th_server_cmd must notice and reconnect. */
    expect_pong(th_server_cmd(s, "PING"));
    redisContext *c = th_connect(th_server_port(s), 1000);
    TH_CHECK(c != NULL);
    redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    freeReplyObject(r);
    redisFree(c);
    th_sleep_ms(20);
    expect_pong(th_server_cmd(s, "PING"));
    ok("admin connection reconnects after it broke");
}

static void test_pause(th_server *s)
{
    TH_EQ_INT(th_server_pause(s), 0);
    redisContext *c = th_connect(th_server_port(s), 200); /* the kernel still accepts */
    TH_CHECK(c != NULL);
    long long t0 = th_now_us();
    redisReply *r = redisCommand(c, "PING");
    long long dt = th_now_us() - t0;
    TH_CHECK(r == NULL);
    TH_CHECK(c->err != 0);
    TH_CHECK(dt >= 150000 && dt < 2000000);
    redisFree(c);
    TH_EQ_INT(th_server_resume(s), 0);
    expect_pong(th_server_cmd(s, "PING"));
    ok("pause makes a 200 ms command time out, resume works");
}

static void test_kill_restart(th_server *s)
{
    int port = th_server_port(s);
    pid_t pid = th_server_pid(s);

    redisReply *r = th_server_cmd(s, "SET %s %s", "k", "v");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    TH_EQ_INT(th_server_kill(s), 0);
    TH_EQ_INT(th_server_pid(s), -1);
    TH_CHECK(port_refuses(port));
    printf("expect: a 'not running' message\n");
    TH_EQ_INT(th_server_kill(s), -1);
    TH_EQ_INT(th_server_restart(s), 0);
    TH_EQ_INT(th_server_port(s), port);
    TH_CHECK(th_server_pid(s) > 0 && th_server_pid(s) != pid);
    expect_pong(th_server_cmd(s, "PING"));
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "k"), 0); /* no persistence */

    /* stop (SIGTERM) while paused, then restart again */
    TH_EQ_INT(th_server_pause(s), 0);
    long long t0 = th_now_us();
    TH_EQ_INT(th_server_stop(s), 0);
    TH_CHECK(th_now_us() - t0 < 4000000);
    TH_CHECK(port_refuses(port));
    TH_EQ_INT(th_server_restart(s), 0);
    expect_pong(th_server_cmd(s, "PING"));
    ok("kill, restart on the same port, stop while paused");
}

struct incr_arg {
    th_server *s;
    int port;
};

static int incr_worker(int idx, void *arg)
{
    struct incr_arg *a = arg;
    redisContext *c = th_connect(a->port, 2000);

    (void)idx;
    if (c == NULL)
        return 2;
    for (int i = 0; i < N_INCR; i++) {
        redisReply *r = redisCommand(c, "INCR counter");
        if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            redisFree(c);
            return 3;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    /* Also through the parent's server handle: the inherited admin
     * connection must not be shared with the parent. */
    for (int i = 0; i < N_INCR; i++) {
        if (th_server_int(a->s, "INCR counter2") < 1)
            return 4;
    }
    return 0;
}

static int mixed_worker(int idx, void *arg)
{
    (void)arg;
    switch (idx) {
    case 1:
        return 5;
    case 2:
        TH_CHECK(idx == 0); /* exit(1) in a child: must not stop the server */
        return 0;
    case 3:
        th_sleep_ms(20000);
        return 0;
    default:
        return 0;
    }
}

static long long get_int(th_server *s, const char *key)
{
    redisReply *r = th_server_cmd(s, "GET %s", key);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    long long v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

static void test_workers(th_server *s)
{
    struct incr_arg a = {s, th_server_port(s)};

    expect_pong(th_server_cmd(s, "PING")); /* parent has a cached admin connection */
    TH_EQ_INT(th_run_workers(4, incr_worker, &a, 20), 0);
    TH_EQ_INT(get_int(s, "counter"), 4 * N_INCR);
    TH_EQ_INT(get_int(s, "counter2"), 4 * N_INCR);
    ok("th_run_workers: 4 children INCR, counter = 4*N");

    printf("expect: worker 1 exits 5, worker 2 fails a check, worker 3 times out\n");
    long long t0 = th_now_us();
    TH_EQ_INT(th_run_workers(4, mixed_worker, NULL, 1), 3);
    long long dt = th_now_us() - t0;
    TH_CHECK(dt >= 900000 && dt < 5000000);
    expect_pong(th_server_cmd(s, "PING"));
    ok("th_run_workers counts failures and timeouts; a failing child leaves the server alone");
}

static int ret7(void *arg)
{
    (void)arg;
    return 7;
}

static int sleeper(void *arg)
{
    (void)arg;
    th_sleep_ms(30000);
    return 0;
}

static void test_spawn(void)
{
    pid_t pid = th_spawn(ret7, NULL);
    TH_CHECK(pid > 0);
    TH_EQ_INT(th_wait(pid, 5000), 7);
    pid = th_spawn(sleeper, NULL);
    TH_CHECK(pid > 0);
    printf("expect: a 'still running' message\n");
    TH_EQ_INT(th_wait(pid, 100), -1);
    kill(pid, SIGKILL);
    TH_EQ_INT(th_wait(pid, 5000), 128 + SIGKILL);
    ok("th_spawn / th_wait");
}

struct report {
    pid_t pid;
    char dir[512];
};

/* Child: starts its own server, reports it, waits for the parent's go, then
 * either hangs past its th_test_init timeout or fails a check. */
static int cleanup_child(void *arg)
{
    int *a = arg; /* a[0]: report fd, a[1]: go fd, a[2]: 1 = time out, 0 = fail */
    struct report rep;
    char go;

    th_server *cs = th_server_start(NULL);
    if (cs == NULL)
        return 2;
    memset(&rep, 0, sizeof rep);
    rep.pid = th_server_pid(cs);
    snprintf(rep.dir, sizeof rep.dir, "%s", th_server_dir(cs));
    if (write(a[0], &rep, sizeof rep) != (ssize_t)sizeof rep || read(a[1], &go, 1) != 1)
        return 3;
    if (a[2]) {
        th_test_init(1);
        th_sleep_ms(20000);
    }
    TH_CHECK(rep.pid == 0); /* fails: exit(1) runs the atexit cleanup */
    return 4;
}

static void check_cleanup(int timeout)
{
    int rfd[2], gfd[2];
    struct report rep;

    TH_EQ_INT(pipe(rfd), 0);
    TH_EQ_INT(pipe(gfd), 0);
    int a[3] = {rfd[1], gfd[0], timeout};
    pid_t pid = th_spawn(cleanup_child, a);
    TH_CHECK(pid > 0);
    close(rfd[1]);
    close(gfd[0]);
    TH_EQ_INT(read(rfd[0], &rep, sizeof rep), (long long)sizeof rep);
    close(rfd[0]);
    TH_CHECK(kill(rep.pid, 0) == 0);
    TH_CHECK(dir_exists(rep.dir));
    TH_EQ_INT(write(gfd[1], "g", 1), 1);
    close(gfd[1]);
    TH_EQ_INT(th_wait(pid, 10000), 1);
    TH_CHECK(kill(rep.pid, 0) != 0 && errno == ESRCH);
    TH_CHECK(!dir_exists(rep.dir));
}

/* Worker that starts its own server and returns without freeing it. */
static int server_worker(int idx, void *arg)
{
    int fd = *(int *)arg;
    struct report rep;

    (void)idx;
    th_server *ws = th_server_start(NULL);
    if (ws == NULL)
        return 2;
    memset(&rep, 0, sizeof rep);
    rep.pid = th_server_pid(ws);
    snprintf(rep.dir, sizeof rep.dir, "%s", th_server_dir(ws));
    return write(fd, &rep, sizeof rep) == (ssize_t)sizeof rep ? 0 : 3;
}

static void test_cleanup(th_server *s)
{
    int fds[2];
    struct report rep;

    TH_EQ_INT(pipe(fds), 0);
    TH_EQ_INT(th_run_workers(1, server_worker, &fds[1], 20), 0);
    TH_EQ_INT(read(fds[0], &rep, sizeof rep), (long long)sizeof rep);
    close(fds[0]);
    close(fds[1]);
    TH_CHECK(kill(rep.pid, 0) != 0 && errno == ESRCH);
    TH_CHECK(!dir_exists(rep.dir));
    ok("a worker's own server is cleaned up when the worker returns");

    printf("expect: a TIMEOUT message from a child\n");
    check_cleanup(1);
    ok("timeout kills the child's server and removes its dir");
    printf("expect: a failed TH_CHECK in a child\n");
    check_cleanup(0);
    ok("a failed check (exit) kills the child's server and removes its dir");
    expect_pong(th_server_cmd(s, "PING"));
    ok("the parent's server survived both");
}

/* ---- proxy -------------------------------------------------------------------- */

static int raw_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    TH_CHECK(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    TH_EQ_INT(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Reads until "+PONG\r\n" arrived or timeout_ms passed; 1 if it did. */
static int raw_read_pong(int fd, int timeout_ms)
{
    char buf[64];
    size_t have = 0;
    long long deadline = th_now_us() + timeout_ms * 1000LL;

    while (have < 7) {
        long long left = (deadline - th_now_us()) / 1000;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return 0;
        ssize_t n = recv(fd, buf + have, sizeof buf - have - 1, 0);
        if (n <= 0)
            return 0;
        have += (size_t)n;
    }
    buf[have] = '\0';
    return strcmp(buf, "+PONG\r\n") == 0;
}

static long long timed_ping(redisContext *c)
{
    long long t0 = th_now_us();
    ping_ok(c);
    return th_now_us() - t0;
}

static void test_proxy(th_server *s)
{
    th_proxy *p = th_proxy_start(th_server_port(s));
    long expected_conns = 0;

    TH_CHECK(p != NULL);
    TH_CHECK(th_proxy_port(p) > 0 && th_proxy_port(p) != th_server_port(s));

    /* PASS, with a value larger than one chunk */
    redisContext *c = th_connect(th_proxy_port(p), 2000);
    TH_CHECK(c != NULL);
    expected_conns++;
    ping_ok(c);
    size_t big_len = 300000;
    char *big = malloc(big_len);
    TH_CHECK(big != NULL);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    redisReply *r = redisCommand(c, "SET big %b", big, big_len);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(c, "GET big");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING && r->len == big_len);
    TH_CHECK(memcmp(r->str, big, big_len) == 0);
    freeReplyObject(r);
    free(big);
    ok("proxy PASS round trip (300 KB value)");

    /* LATENCY */
    th_proxy_set(p, TH_LATENCY, 50);
    long long dt = timed_ping(c);
    TH_CHECK(dt >= 50000);
    printf("   latency 50 ms: PING took %lld us\n", dt);
    th_proxy_set(p, TH_PASS, 0);
    dt = timed_ping(c);
    TH_CHECK(dt < 50000);
    ok("proxy LATENCY adds >= 50 ms, PASS removes it");

    /* BLACKHOLE */
    th_proxy_set(p, TH_BLACKHOLE, 0);
    redisContext *c2 = th_connect(th_proxy_port(p), 200);
    TH_CHECK(c2 != NULL);
    expected_conns++;
    long long t0 = th_now_us();
    r = redisCommand(c2, "PING");
    TH_CHECK(r == NULL && c2->err != 0);
    TH_CHECK(th_now_us() - t0 >= 150000);
    redisFree(c2);
    th_proxy_set(p, TH_PASS, 0);
    ping_ok(c); /* c was idle during the black hole: still usable */
    ok("proxy BLACKHOLE makes a 200 ms command time out");

    /* RESET, with a forked child alive that must not hold the proxy's
     * sockets open (else close() would not send the RST). */
    pid_t child = th_spawn(sleeper, NULL);
    TH_CHECK(child > 0);
    th_proxy_set(p, TH_RESET, 0);
    r = redisCommand(c, "PING");
    TH_CHECK(r == NULL && c->err != 0);
    printf("   after RESET: %s\n", c->errstr);
    TH_CHECK(strstr(c->errstr, "reset") != NULL || strstr(c->errstr, "Broken pipe") != NULL);
    redisFree(c);
    kill(child, SIGKILL);
    TH_EQ_INT(th_wait(child, 5000), 128 + SIGKILL);
    c = th_connect(th_proxy_port(p), 2000);
    TH_CHECK(c != NULL);
    expected_conns++;
    ping_ok(c);
    ok("proxy RESET breaks an open connection; new ones work");

    /* DROP */
    th_proxy_set(p, TH_DROP, 0);
    r = redisCommand(c, "PING");
    TH_CHECK(r == NULL && c->err != 0);
    printf("   after DROP: %s\n", c->errstr);
    redisFree(c);
    c = th_connect(th_proxy_port(p), 2000);
    TH_CHECK(c != NULL);
    expected_conns++;
    ping_ok(c);
    ok("proxy DROP closes an open connection; new ones work");

    /* DRIP */
    const char *val = "0123456789012345678901234567890123456789012345678901234567890123";
    r = redisCommand(c, "SET drip %s", val);
    TH_CHECK(r != NULL);
    freeReplyObject(r);
    th_proxy_set(p, TH_DRIP, 1);
    t0 = th_now_us();
    r = redisCommand(c, "GET drip");
    dt = th_now_us() - t0;
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    TH_EQ_STR(r->str, val);
    freeReplyObject(r);
    TH_CHECK(dt >= 60000); /* 71 bytes, one per ms */
    printf("   drip: 71-byte reply took %lld us\n", dt);
    th_proxy_set(p, TH_PASS, 0);
    ok("proxy DRIP still yields a correct reply");

    /* STALL then PASS */
    int fd = raw_connect(th_proxy_port(p));
    expected_conns++;
    TH_EQ_INT(send(fd, "PING\r\n", 6, 0), 6);
    TH_CHECK(raw_read_pong(fd, 2000));
    th_proxy_set(p, TH_STALL, 0);
    TH_EQ_INT(send(fd, "PING\r\n", 6, 0), 6);
    TH_CHECK(!raw_read_pong(fd, 300));
    th_proxy_set(p, TH_PASS, 0);
    TH_CHECK(raw_read_pong(fd, 2000));
    close(fd);
    ping_ok(c);
    ok("proxy STALL holds data, PASS delivers it");

    TH_EQ_INT(th_proxy_connections(p), expected_conns);
    redisFree(c);
    th_proxy_stop(p);
    ok("proxy connection count, stop");
}

static void test_unix_and_args(void)
{
    const char *const args[] = {"--maxmemory", "10mb", NULL};
    th_server *s = th_server_start_unix(args);

    TH_CHECK(s != NULL);
    const char *path = th_server_unix_path(s);
    TH_CHECK(path != NULL);
    redisContext *c = redisConnectUnixWithTimeout(path, (struct timeval){1, 0});
    TH_CHECK(c != NULL && c->err == 0);
    ping_ok(c);
    redisFree(c);
    redisReply *r = th_server_cmd(s, "CONFIG GET maxmemory");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    TH_EQ_STR(r->element[1]->str, "10485760");
    freeReplyObject(r);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", th_server_dir(s));
    th_server_free(s);
    TH_CHECK(!dir_exists(dir));
    ok("unix socket server, extra args, free removes the dir");
}

static void test_cluster(void)
{
    const char *const args[] = {"--cluster-enabled", "yes", NULL};
    th_server *s = th_server_start(args);

    TH_CHECK(s != NULL);
    TH_CHECK(th_server_port(s) + 10000 <= 65535);
    redisReply *r = th_server_cmd(s, "CLUSTER INFO");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    TH_CHECK(strstr(r->str, "cluster_state:") != NULL);
    freeReplyObject(r);
    TH_EQ_INT(th_server_stop(s), 0);
    th_server_free(s);
    ok("cluster-enabled server");
}

int main(void)
{
    th_test_init(50);

    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    test_start(s);
    test_admin_reconnect(s);
    test_pause(s);
    test_kill_restart(s);
    test_workers(s);
    test_spawn();
    test_cleanup(s);
    test_proxy(s);
    test_unix_and_args();
    test_cluster();

    char dir[512];
    snprintf(dir, sizeof dir, "%s", th_server_dir(s));
    th_server_free(s);
    TH_CHECK(!dir_exists(dir));
    /* a server left running is cleaned up at exit */
    TH_CHECK(th_server_start(NULL) != NULL);
    printf("all harness self-tests passed\n");
    return 0;
}
