/* test_ls.c - `dlock ls` (table, --json, --format openmetrics, glob
 * characters in names, a server with 200000 other keys, a 3-master
 * Cluster) and `dlock run --max-time` / `--metrics-file`. Cases of test_cli. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "formats.h"
#include "topo.h"

/* `dlock acquire` NAME for ttl_ms on url; returns its token in tok[33]. */
static void take(const char *url, const char *name, const char *ttl, const char *label,
                 char *tok) {
    result r;
    if (label != NULL)
        dl(&r, "--url", url, "acquire", "--ttl", ttl, "--label", label, "--", name, NULL);
    else
        dl(&r, "--url", url, "acquire", "--ttl", ttl, "--", name, NULL);
    EXPECT_CODE(&r, 0);
    if (tok != NULL) {
        memcpy(tok, r.out, 32);
        tok[32] = '\0';
    }
}

/* The lock in the "locks" array of ls --json named `name`, or NULL. */
static const jnode *find_lock(const jnode *doc, const char *name) {
    const jnode *locks = jt_get(doc, "locks", 'a');
    for (size_t i = 0; i < locks->n; i++)
        if (strcmp(jt_get(locks->kids[i], "name", 's')->str, name) == 0)
            return locks->kids[i];
    return NULL;
}

/* `dlock ls --json` on url, complete, with `count` locks from `servers`
 * servers; the caller frees the document. */
static jnode *ls_json(const char *url, int count, int servers) {
    result r;
    dl(&r, "--url", url, "ls", "--json", NULL);
    EXPECT_CODE(&r, 0);
    jnode *doc = jt_parse(r.out);
    TH_EQ_INT((long long)jt_get(doc, "count", 'n')->num, count);
    TH_EQ_INT((long long)jt_get(doc, "servers", 'n')->num, servers);
    TH_EQ_INT((long long)jt_get(doc, "complete", 'b')->num, 1);
    return doc;
}

static long cmd_calls(th_server *s, const char *cmd) {
    return tt_cmd_calls(s, cmd);
}

/* 200000 keys that are not locks, a few locks and many old fence counters:
 * ls lists exactly the held locks, quickly, with SCAN and never KEYS. */
void t_ls_bigdb(void) {
    redisReply *rp = th_server_cmd(g_srv, "DEBUG POPULATE %d %s", 200000, "other");
    TH_CHECK(rp != NULL);
    freeReplyObject(rp);
    if (th_server_int(g_srv, "DBSIZE") < 200000) /* no DEBUG: a script does it */
        freeReplyObject(th_server_cmd(g_srv, "EVAL %s 0",
                                      "for i=1,200000 do redis.call('SET','o'..i,'v') end"));
    TH_CHECK(th_server_int(g_srv, "DBSIZE") >= 200000);
    /* Fence counters of 1000 locks taken before: they stay, and must not
     * make ls slower or list them. */
    freeReplyObject(th_server_cmd(
        g_srv, "EVAL %s 0", "for i=1,1000 do redis.call('SET','dlock:{old'..i..'}:fence',i) end"));
    const char *names[] = {"job-a", "job-b", "job-c", "other-d", "other-e"};
    for (int i = 0; i < 5; i++)
        take(g_url, names[i], "60000", NULL, NULL);
    result r;
    long long t0 = th_now_us();
    dl(&r, "--url", g_url, "ls", "-v", NULL);
    long long ms = (th_now_us() - t0) / 1000;
    EXPECT_CODE(&r, 0);
    printf("ls over %lld keys: %lld ms (%s", th_server_int(g_srv, "DBSIZE"), ms, r.err + 7);
    TH_CHECK(ms < 3000);
    for (int i = 0; i < 5; i++)
        EXPECT_IN(r.out, names[i]);
    TH_CHECK(strstr(r.out, "old1") == NULL);
    int lines = 0;
    for (const char *p = r.out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    TH_EQ_INT(lines, 1 + 5);
    TH_EQ_INT(cmd_calls(g_srv, "keys"), 0);
    TH_CHECK(cmd_calls(g_srv, "scan") > 100);
    /* A pattern, and the bounds. */
    dl(&r, "--url", g_url, "ls", "--json", "job-*", NULL);
    EXPECT_CODE(&r, 0);
    jnode *doc = jt_parse(r.out);
    TH_EQ_INT((long long)jt_get(doc, "count", 'n')->num, 3);
    TH_EQ_INT((long long)jt_get(doc, "complete", 'b')->num, 1);
    jt_free(doc);
    dl(&r, "--url", g_url, "ls", "--json", "--limit", "2", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.err, "listing incomplete: stopped after --limit 2");
    doc = jt_parse(r.out);
    TH_CHECK(jt_get(doc, "count", 'n')->num <= 2);
    TH_EQ_INT((long long)jt_get(doc, "complete", 'b')->num, 0);
    jt_free(doc);
    dl(&r, "--url", g_url, "ls", "--timeout", "0.001", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.err, "listing incomplete: --timeout");
    TH_CHECK(r.ms < 2000);
}

/* --json parsed: holders, lease, waiters, fences; names with glob
 * characters, quotes, a newline and a byte that is not UTF-8; escaped
 * patterns select them exactly. */
void t_ls_json(void) {
    static const char *const names[] = {"a*b", "axb", "a[1]", "a1", "q\"uo\\te", "new\nline",
                                        "bad\377byte"};
    for (int i = 0; i < 7; i++)
        take(g_url, names[i], "60000", i == 0 ? "the label" : NULL, NULL);
    char tok[33];
    take(g_url, "busy", "60000", NULL, tok);
    /* A waiter for "busy". */
    proc w;
    start(&w, "--url", g_url, "run", "-w", "20", "busy", "--", "true", NULL);
    long long end = th_now_us() + 5000000;
    while (th_server_int(g_srv, "ZCARD %s", "dlock:{busy}:q") < 1 && th_now_us() < end)
        th_sleep_ms(10);
    result r;
    dl(&r, "--url", g_url, "ls", "--json", NULL);
    EXPECT_CODE(&r, 0);
    jnode *doc = jt_parse(r.out);
    TH_EQ_INT((long long)jt_get(doc, "count", 'n')->num, 8);
    TH_EQ_INT((long long)jt_get(doc, "servers", 'n')->num, 1);
    const jnode *b = find_lock(doc, "busy");
    TH_CHECK(b != NULL);
    TH_EQ_STR(jt_get(b, "kind", 's')->str, "mutex");
    TH_EQ_INT((long long)jt_get(b, "waiters", 'n')->num, 1);
    double left = jt_get(b, "lease_left_ms", 'n')->num;
    TH_CHECK(left > 50000 && left <= 60000);
    TH_CHECK(jt_get(b, "held_for_ms", 'n')->num >= 0);
    TH_EQ_INT((long long)jt_get(b, "last_fence", 'n')->num, 1);
    const jnode *h = jt_at(jt_get(b, "holders", 'a'), 0);
    TH_CHECK(jt_get(h, "pid", 'n')->num > 0);
    TH_CHECK(jt_get(h, "host", 's')->len > 0);
    jt_get(h, "label", 'z');
    TH_EQ_STR(jt_get(h, "token", 's')->str, tok);
    const jnode *a = find_lock(doc, "a*b");
    TH_CHECK(a != NULL);
    TH_EQ_STR(jt_get(jt_at(jt_get(a, "holders", 'a'), 0), "label", 's')->str, "the label");
    TH_CHECK(find_lock(doc, "q\"uo\\te") != NULL && find_lock(doc, "new\nline") != NULL);
    TH_CHECK(find_lock(doc, "bad\357\277\275byte") != NULL); /* U+FFFD */
    jt_free(doc);
    /* Patterns: a backslash quotes a glob character. */
    static const struct {
        const char *pattern;
        const char *want[3];
    } pats[] = {{"a\\*b", {"a*b"}}, {"a*b", {"a*b", "axb"}}, {"a\\[1\\]", {"a[1]"}},
                {"a[1]", {"a1"}},   {"q\"*", {"q\"uo\\te"}}};
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        dl(&r, "--url", g_url, "ls", "--json", "--", pats[i].pattern, NULL);
        EXPECT_CODE(&r, 0);
        doc = jt_parse(r.out);
        size_t nw = 0;
        for (; nw < 3 && pats[i].want[nw] != NULL; nw++)
            if (find_lock(doc, pats[i].want[nw]) == NULL)
                TH_FAIL("ls '%s' does not list '%s': %s", pats[i].pattern, pats[i].want[nw],
                        r.out);
        if (jt_get(doc, "count", 'n')->num != (double)nw)
            TH_FAIL("ls '%s' lists more than it should: %s", pats[i].pattern, r.out);
        jt_free(doc);
    }
    dl(&r, "--url", g_url, "release", "busy", tok, NULL);
    EXPECT_CODE(&r, 0);
    finish(&w, 10000, &r);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "ls", "--format", "json", "busy", NULL);
    doc = jt_parse(r.out);
    TH_EQ_INT((long long)jt_get(doc, "count", 'n')->num, 0); /* released by the waiter */
    jt_free(doc);
    dl(&r, "--url", g_url, "ls", "--json", "--format", "openmetrics", NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "--url", g_url, "ls", "a", "b", NULL);
    EXPECT_CODE(&r, 2);
}

/* --format openmetrics passes the format checker, with label values
 * escaped; the values match the locks. */
void t_ls_openmetrics(void) {
    take(g_url, "plain", "30000", "lab\"el", NULL);
    take(g_url, "q\"uo\\te\nnl\xff", "30000", NULL, NULL);
    result r;
    dl(&r, "--url", g_url, "ls", "--format", "openmetrics", NULL);
    EXPECT_CODE(&r, 0);
    TH_CHECK(om_check(r.out) >= 2 * 7 + 2);
    TH_EQ_INT((long long)om_value(r.out, "dlock_lock_held{name=\"plain\",kind=\"mutex\"}"), 1);
    TH_EQ_INT((long long)om_value(r.out, "dlock_lock_holders{name=\"plain\",kind=\"mutex\"}"), 1);
    TH_EQ_INT((long long)om_value(r.out, "dlock_lock_waiters{name=\"plain\",kind=\"mutex\"}"), 0);
    TH_EQ_INT((long long)om_value(r.out, "dlock_lock_last_fence{name=\"plain\",kind=\"mutex\"}"),
              1);
    double left =
        om_value(r.out, "dlock_lock_lease_left_seconds{name=\"plain\",kind=\"mutex\"}");
    TH_CHECK(left > 20 && left <= 30);
    const char *esc = "{name=\"q\\\"uo\\\\te\\nnl\xef\xbf\xbd\",kind=\"mutex\"}";
    char series[200];
    snprintf(series, sizeof series, "dlock_lock_held%s", esc);
    TH_EQ_INT((long long)om_value(r.out, series), 1);
    EXPECT_IN(r.out, "label=\"lab\\\"el\"} 1\n");
    TH_EQ_INT((long long)om_value(r.out, "dlock_ls_locks"), 2);
    TH_EQ_INT((long long)om_value(r.out, "dlock_ls_complete"), 1);
    /* No locks: still valid. */
    dl(&r, "--url", g_url, "ls", "--format", "openmetrics", "none*", NULL);
    EXPECT_CODE(&r, 0);
    om_check(r.out);
    TH_EQ_INT((long long)om_value(r.out, "dlock_ls_locks"), 0);
}

/* A 3-master Cluster: ls finds the locks on every master. */
void t_ls_cluster(void) {
    tt_cluster *k = tt_cluster_start(3);
    TH_CHECK(k != NULL);
    char names[3][64];
    for (int i = 0; i < 3; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "ls%d", i);
        TH_CHECK(tt_name_on_node(k, i, "dlock:", tag, names[i], sizeof names[i]) >= 0);
        take(k->url, names[i], "60000", NULL, NULL);
    }
    jnode *doc = ls_json(k->url, 3, 3);
    for (int i = 0; i < 3; i++)
        TH_CHECK(find_lock(doc, names[i]) != NULL);
    jt_free(doc);
    result r;
    dl(&r, "--url", k->url, "ls", "--format", "openmetrics", NULL);
    EXPECT_CODE(&r, 0);
    om_check(r.out);
    TH_EQ_INT((long long)om_value(r.out, "dlock_ls_locks"), 3);
    for (int i = 0; i < 3; i++)
        TH_CHECK(tt_cmd_calls(k->node[i], "scan") >= 2);
    tt_cluster_free(k);
}

/* Sentinel: ls scans the master that the sentinels name. */
void t_ls_sentinel(void) {
    tt_sentinels *g = tt_sentinels_start(1);
    TH_CHECK(g != NULL);
    take(g->url, "via-sentinel", "60000", NULL, NULL);
    jnode *doc = ls_json(g->url, 1, 1);
    TH_CHECK(find_lock(doc, "via-sentinel") != NULL);
    jt_free(doc);
    TH_CHECK(tt_cmd_calls(g->data[0], "scan") >= 1);
    tt_sentinels_free(g);
}

/* The command ignores SIGTERM: --max-time ends it with SIGKILL before the
 * lease left runs out (--kill-after 30 is cut), exit 124, and the JSON
 * summary and the metrics file say why. */
void t_max_time(void) {
    char ready[300], metrics[300];
    path_in_dir(ready, sizeof ready, "ready.mt");
    path_in_dir(metrics, sizeof metrics, "run.prom");
    proc p;
    start(&p, "--url", g_url, "run", "--json", "--ttl", "2000", "--max-time", "1s",
          "--kill-after", "30", "--metrics-file", metrics, "mt", "--", g_self, "child-sleep",
          ready, "20000", "ignore-term", NULL);
    pid_t child = ready_pid(ready, 5000);
    long long t_start = p.t0_us;
    /* Past the limit no extension comes: the lease now ends at a fixed time. */
    while (th_now_us() < t_start + 1300000)
        th_sleep_ms(10);
    long long t_before = th_now_us();
    long long pttl = th_server_int(g_srv, "PTTL %s", "dlock:{mt}");
    TH_CHECK(pttl > 0);
    long long lease_end = t_before + pttl * 1000;
    long long dead = wait_dead(child, 10000);
    if (dead < 0)
        TH_FAIL("the command outlived --max-time by 10 s");
    printf("max-time 1 s: command dead after %lld ms, %lld ms before its lease's end\n",
           (dead - t_start) / 1000, (lease_end - dead) / 1000);
    TH_CHECK(dead < lease_end);
    TH_CHECK(dead - t_start > 1000000);
    result r;
    finish(&p, 10000, &r);
    EXPECT_CODE(&r, 124);
    EXPECT_IN(r.err, "for --max-time (1.0 s)");
    jobj o;
    jparse(last_line(r.err), &o);
    TH_EQ_INT(jget(&o, "max_time_reached", 'b')->n, 1);
    TH_EQ_INT(jget(&o, "lost", 'b')->n, 0);
    TH_EQ_INT(jget(&o, "exit_code", 'n')->n, 124);
    TH_EQ_INT(jget(&o, "signal", 'n')->n, SIGKILL);
    TH_EQ_INT(key_exists("mt"), 0); /* released once the command was dead */
    char text[8192];
    slurp(metrics, text, sizeof text);
    om_check(text);
    TH_EQ_INT((long long)om_value(text, "dlock_run_exit_status{name=\"mt\"}"), 124);
    TH_EQ_INT((long long)om_value(text, "dlock_run_max_time_reached{name=\"mt\"}"), 1);
    TH_EQ_INT((long long)om_value(text, "dlock_run_outcome{name=\"mt\",outcome=\"max_time\"}"), 1);
    /* A command that ends in time keeps its status. */
    dl(&r, "--url", g_url, "run", "--max-time", "5", "mt", "--", g_self, "child-exit", "3", NULL);
    EXPECT_CODE(&r, 3);
    dl(&r, "--url", g_url, "run", "--max-time", "0", "mt", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "--url", g_url, "run", "--max-time", "1x", "mt", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
}

/* 1 if dir holds a file whose name contains `part`. */
static int dir_has(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    TH_CHECK(d != NULL);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL)
        found |= strstr(e->d_name, part) != NULL;
    closedir(d);
    return found;
}

/* --metrics-file: the command's status, a conflict, a server down; the
 * file is replaced whole (no temporary file left); a path that cannot be
 * written is reported without changing the exit status. */
void t_metrics_file(void) {
    char path[300], text[8192];
    path_in_dir(path, sizeof path, "job.prom");
    result r;
    dl(&r, "--url", g_url, "run", "--metrics-file", path, "mf", "--", g_self, "child-exit", "3",
       NULL);
    EXPECT_CODE(&r, 3);
    slurp(path, text, sizeof text);
    om_check(text);
    TH_EQ_INT((long long)om_value(text, "dlock_run_acquired{name=\"mf\"}"), 1);
    TH_EQ_INT((long long)om_value(text, "dlock_run_exit_status{name=\"mf\"}"), 3);
    TH_EQ_INT((long long)om_value(text, "dlock_run_lost{name=\"mf\"}"), 0);
    TH_EQ_INT((long long)om_value(text, "dlock_run_outcome{name=\"mf\",outcome=\"failed\"}"), 1);
    TH_EQ_INT((long long)om_value(text, "dlock_run_outcome{name=\"mf\",outcome=\"ok\"}"), 0);
    TH_CHECK(om_value(text, "dlock_run_wait_seconds{name=\"mf\"}") >= 0);
    TH_CHECK(om_value(text, "dlock_run_hold_seconds{name=\"mf\"}") > 0);
    TH_CHECK(om_value(text, "dlock_run_end_timestamp_seconds{name=\"mf\"}") > 1e9);
    TH_CHECK(!dir_has(th_server_dir(g_srv), ".tmp"));
    /* Not obtained. */
    char tok[33];
    take(g_url, "mf", "30000", NULL, tok);
    dl(&r, "--url", g_url, "run", "-n", "--metrics-file", path, "mf", "--", "true", NULL);
    EXPECT_CODE(&r, 1);
    slurp(path, text, sizeof text);
    om_check(text);
    TH_EQ_INT((long long)om_value(text, "dlock_run_acquired{name=\"mf\"}"), 0);
    TH_EQ_INT((long long)om_value(text, "dlock_run_hold_seconds{name=\"mf\"}"), 0);
    TH_EQ_INT((long long)om_value(text, "dlock_run_outcome{name=\"mf\",outcome=\"not_acquired\"}"),
              1);
    /* Cannot write: said on stderr, the status is the command's. */
    dl(&r, "--url", g_url, "run", "--metrics-file", "/nonexistent/dir/x.prom", "other", "--",
       "true", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.err, "cannot write --metrics-file /nonexistent/dir/x.prom");
    /* The server is down: recorded as an error. */
    TH_EQ_INT(th_server_kill(g_srv), 0);
    dl(&r, "--url", g_url, "run", "--metrics-file", path, "mf", "--", "true", NULL);
    EXPECT_CODE(&r, 69);
    slurp(path, text, sizeof text);
    om_check(text);
    TH_EQ_INT((long long)om_value(text, "dlock_run_exit_status{name=\"mf\"}"), 69);
    TH_EQ_INT((long long)om_value(text, "dlock_run_outcome{name=\"mf\",outcome=\"error\"}"), 1);
}
