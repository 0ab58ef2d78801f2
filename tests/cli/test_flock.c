/* test_flock.c - flock(1) habits, JSON errors, cause-specific hints and the
 * holder pid of dlock acquire.
 * Cases of test_cli. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "topo.h"

/* -w/--wait and --timeout both mean the wait; --io-timeout is the I/O one;
 * --nonblock/--nb; -c 'shell command'; a missing name is refused. */
void t_flock_opts(void) {
    result r, h;
    dl(&h, "--url", g_url, "acquire", "--ttl", "20000", "fb", NULL);
    EXPECT_CODE(&h, 0);
    dl(&r, "--url", g_url, "run", "--timeout", "1", "fb", "--", "true", NULL);
    EXPECT_CODE(&r, 1);
    if (r.ms < 800 || r.ms > 2500)
        TH_FAIL("--timeout 1 took %lld ms", r.ms);
    EXPECT_IN(r.err, "gave up");
    dl(&r, "--url", g_url, "run", "--timeout=0.3", "-E", "9", "fb", "true", NULL);
    EXPECT_CODE(&r, 9);
    const char *nb[] = {"--nonblock", "--nb", "-n", "--no-wait"};
    for (int i = 0; i < 4; i++) {
        dl(&r, "--url", g_url, "run", nb[i], "fb", "--", "true", NULL);
        EXPECT_CODE(&r, 1);
        TH_CHECK(r.ms < 1500);
    }
    dl(&r, "--url", g_url, "--io-timeout", "500", "status", "fb", NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "-T", "500", "status", "fb", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "--io-timeout");

    dl(&r, "--url", g_url, "run", "sh", "-c", "echo hi && echo there", NULL);
    EXPECT_CODE(&r, 0);
    TH_EQ_STR(r.out, "hi\nthere\n");
    dl(&r, "--url", g_url, "run", "-c", "echo one; echo two", "sh", NULL);
    EXPECT_CODE(&r, 0);
    TH_EQ_STR(r.out, "one\ntwo\n");
    dl(&r, "--url", g_url, "run", "sh", "--command", "exit 7", NULL);
    EXPECT_CODE(&r, 7);
    dl(&r, "--url", g_url, "run", "sh", "-c", "true", "extra", NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "--url", g_url, "run", "sh", "echo hi && echo there", NULL);
    EXPECT_CODE(&r, 127);
    EXPECT_IN(r.err, "-c '");
    dl(&r, "--url", g_url, "run", "--", "echo", "hi", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "missing lock name");
    TH_EQ_STR(r.out, "");
    TH_EQ_INT(key_exists("echo"), 0);
}

/* --json writes an error object on failures too: stdout, or for run
 * stderr's last line. */
void t_json_errors(void) {
    char url[128];
    snprintf(url, sizeof url, "%s", g_url);
    TH_EQ_INT(th_server_kill(g_srv), 0);
    result r;
    jobj o;
    dl(&r, "--url", url, "acquire", "--json", "je", NULL);
    EXPECT_CODE(&r, 69);
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "name", 's')->s, "je");
    TH_EQ_INT(jget(&o, "acquired", 'b')->n, 0);
    TH_EQ_STR(jget(&o, "error", 's')->s, "io");
    TH_EQ_STR(jget(&o, "status", 's')->s, "DLOCK_EIO");
    TH_EQ_INT(jget(&o, "exit_code", 'n')->n, 69);
    EXPECT_IN(jget(&o, "message", 's')->s, "cannot connect");
    dl(&r, "--url", url, "status", "-j", "je", NULL);
    EXPECT_CODE(&r, 69);
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "status", 's')->s, "DLOCK_EIO");
    dl(&r, "--url", url, "release", "-j", "je", "0123456789abcdef0123456789abcdef", NULL);
    EXPECT_CODE(&r, 69);
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "error", 's')->s, "io");
    dl(&r, "--url", url, "run", "-j", "je", "--", "true", NULL);
    EXPECT_CODE(&r, 69);
    TH_EQ_STR(r.out, "");
    jparse(last_line(r.err), &o);
    TH_EQ_STR(jget(&o, "status", 's')->s, "DLOCK_EIO");
    dl(&r, "--url", "http://x", "status", "--json", "je", NULL);
    EXPECT_CODE(&r, 2);
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "error", 's')->s, "usage");
    dl(&r, "--url", "rediss://127.0.0.1:6379?tls_ca=/nonexistent/ca.pem", "status", "je", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "tls_ca /nonexistent/ca.pem");
}

static void expect_hint(const char *url, const char *cmd, const char *name, int code,
                        const char *hint) {
    result r;
    dl(&r, "--url", url, cmd, name, NULL);
    EXPECT_CODE(&r, code);
    EXPECT_IN(r.err, hint);
}

/* NOAUTH (also in the wording Redis uses for a long command before AUTH),
 * a password taken as a user name, WRONGTYPE, OOM, and a Redlock set whose
 * every server wants a password: each says its cause. */
void t_hints(void) {
    char url[200];
    int port = th_server_port(g_srv);
    th_server *more[2] = {th_server_start(NULL), th_server_start(NULL)};
    TH_CHECK(more[0] != NULL && more[1] != NULL);
    freeReplyObject(th_server_cmd(g_srv, "SET %s %s", "dlock:{wt}", "a string"));
    expect_hint(g_url, "acquire", "wt", 69, "in use as another kind of lock");
    th_server *all[3] = {g_srv, more[0], more[1]};
    for (int i = 0; i < 3; i++) {
        redisReply *rep = th_server_cmd(all[i], "CONFIG SET requirepass s3cr3t");
        TH_CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS);
        freeReplyObject(rep);
    }
    expect_hint(g_url, "status", "h", 69, "the server wants a password");
    expect_hint(g_url, "acquire", "h", 69, "the server wants a password");
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port,
             th_server_port(more[0]), th_server_port(more[1]));
    expect_hint(url, "acquire", "h", 69, "the server wants a password");
    redisReply *rep;
    snprintf(url, sizeof url, "redis://s3cr3t@127.0.0.1:%d", port);
    expect_hint(url, "status", "h", 69, "taken as a user name");
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", port);
    expect_hint(url, "status", "h", 69, "password");
    snprintf(url, sizeof url, "redis://:s3cr3t@127.0.0.1:%d", port);
    rep = th_server_cmd(g_srv, "CONFIG SET maxmemory 1");
    TH_CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    expect_hint(url, "acquire", "h", 69, "maxmemory");
    result r;
    dl(&r, "--url", url, "acquire", "h", NULL);
    TH_CHECK(strstr(r.err, "password/ACL") == NULL);
}

/* A Cluster node named with redis://: MOVED says to use redis-cluster://.
 * A Sentinel that does not know the master name says so. */
void t_hints_topo(void) {
    tt_cluster *k = tt_cluster_start(3);
    TH_CHECK(k != NULL);
    char name[64], url[128];
    TH_CHECK(tt_name_on_node(k, 1, "dlock:", "mv", name, sizeof name) >= 0);
    snprintf(url, sizeof url, "%s", th_server_url(k->node[0]));
    expect_hint(url, "acquire", name, 69, "redis-cluster://");
    tt_cluster_free(k);
    tt_sentinels *g = tt_sentinels_start(1);
    TH_CHECK(g != NULL);
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d/nosuchmaster", g->sport[0]);
    result r;
    dl(&r, "--url", url, "status", "x", NULL);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.err, "does not know a master named 'nosuchmaster'");
    TH_CHECK(strstr(r.err, "is up") == NULL);
    tt_sentinels_free(g);
}

/* The holder pid `status` shows for a lock taken by `dlock acquire` is the
 * process that ran it (the shell that owns the lease), or --pid. */
void t_holder_pid(void) {
    result r;
    jobj o;
    dl(&r, "--url", g_url, "acquire", "hp1", NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "status", "--json", "hp1", NULL);
    EXPECT_CODE(&r, 0);
    jparse(r.out, &o);
    TH_EQ_INT(jget(&o, "pid", 'n')->n, (long long)getpid()); /* dlock's parent: us */

    /* The README's form, in a shell script: the script's own pid. */
    char cmd[600], line[64] = "";
    snprintf(cmd, sizeof cmd,
             "sh -c 'out=$(\"%s\" --url %s acquire hp2) || exit 1; echo $$'", g_dlock, g_url);
    FILE *f = popen(cmd, "r");
    TH_CHECK(f != NULL);
    TH_CHECK(fgets(line, sizeof line, f) != NULL);
    TH_EQ_INT(pclose(f), 0);
    dl(&r, "--url", g_url, "status", "--json", "hp2", NULL);
    jparse(r.out, &o);
    TH_EQ_INT(jget(&o, "pid", 'n')->n, atoll(line));

    dl(&r, "--url", g_url, "acquire", "--pid", "4242", "hp3", NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "status", "hp3", NULL);
    EXPECT_IN(r.out, "pid 4242\n");
    dl(&r, "--url", g_url, "acquire", "--pid", "0", "hp4", NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "--url", g_url, "status", "--pid", "1", "hp3", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "takes no --pid");
}
