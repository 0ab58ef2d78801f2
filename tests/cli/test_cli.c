/* test_cli.c - tests of the dlock command-line tool with real processes
 * against a real redis-server started by the harness.
 *
 *   test_cli CASE PATH_TO_DLOCK     run one test case (see `cases` below)
 *   test_cli child-MODE ARGS...     helper modes: this program is also the
 *                                   COMMAND that `dlock run` starts
 *
 * Every case is its own ctest test (tests/cli/CMakeLists.txt), with its own
 * server, so they run in parallel.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "harness.h"


/* ---- helper modes (run as COMMAND by dlock) ------------------------------ */

static long long mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void append_line(const char *path, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        _exit(90);
    if (write(fd, buf, (size_t)n) != n) /* one write: lines never interleave */
        _exit(91);
    close(fd);
}

static void write_file(const char *path, const char *text) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        _exit(92);
    fputs(text, f);
    fclose(f);
    rename(tmp, path); /* appears complete or not at all */
}

static const char *g_marker;
static void on_trap(int sig) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "got %d\n", sig);
    int fd = open(g_marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t r = write(fd, buf, (size_t)n);
        (void)r;
        close(fd);
    }
    _exit(42);
}

static int child_main(int argc, char **argv) {
    const char *mode = argv[1];
    const char *env_name = getenv("DLOCK_NAME"), *env_token = getenv("DLOCK_TOKEN"),
               *env_fence = getenv("DLOCK_FENCE");
    char buf[512];
    if (strcmp(mode, "child-exit") == 0 && argc == 3)
        return atoi(argv[2]);
    if (strcmp(mode, "child-env") == 0 && argc == 3) {
        snprintf(buf, sizeof buf, "%s\n%s\n%s\n%d\n", env_name ? env_name : "(unset)",
                 env_token ? env_token : "(unset)", env_fence ? env_fence : "(unset)",
                 getpgrp() == getpid());
        write_file(argv[2], buf);
        return 0;
    }
    if (strcmp(mode, "child-crit") == 0 && argc == 5) {
        /* child-crit FILE HOLD_MS WORKER */
        append_line(argv[2], "enter %lld %s %s\n", mono_us(), env_fence ? env_fence : "0",
                    argv[4]);
        struct timespec ts = {atoi(argv[3]) / 1000, (long)(atoi(argv[3]) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        append_line(argv[2], "leave %lld %s %s\n", mono_us(), env_fence ? env_fence : "0",
                    argv[4]);
        return 0;
    }
    if (strcmp(mode, "child-trap") == 0 && argc == 4) {
        /* child-trap READY MARKER: exit 42 on TERM/INT/HUP, after a marker */
        g_marker = argv[3];
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_trap;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        snprintf(buf, sizeof buf, "%d\n", (int)getpid());
        write_file(argv[2], buf);
        for (int i = 0; i < 200; i++)
            usleep(100000);
        return 3; /* never signalled */
    }
    if (strcmp(mode, "child-sleep") == 0 && argc == 5) {
        /* child-sleep READY MS term|ignore-term */
        if (strcmp(argv[4], "ignore-term") == 0)
            signal(SIGTERM, SIG_IGN);
        snprintf(buf, sizeof buf, "%d\n", (int)getpid());
        write_file(argv[2], buf);
        long long end = mono_us() + atoll(argv[3]) * 1000;
        while (mono_us() < end)
            usleep(20000);
        return 0;
    }
    if (strcmp(mode, "child-gate") == 0 && argc == 4) {
        /* child-gate READY GATE: exit 0 once GATE exists (at most 20 s) */
        snprintf(buf, sizeof buf, "%d\n", (int)getpid());
        write_file(argv[2], buf);
        long long end = mono_us() + 20000000LL;
        while (access(argv[3], F_OK) != 0 && mono_us() < end)
            usleep(5000);
        return 0;
    }
    fprintf(stderr, "test_cli: bad helper mode %s\n", mode);
    return 99;
}

/* ---- test cases ------------------------------------------------------------------ */

static void t_exit_status(void) {
    result r;
    dl(&r, "--url", g_url, "run", "st", "--", g_self, "child-exit", "0", NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "run", "st", "--", g_self, "child-exit", "3", NULL);
    EXPECT_CODE(&r, 3);
    dl(&r, "--url", g_url, "run", "st", "--", g_self, "child-exit", "255", NULL);
    EXPECT_CODE(&r, 255);
    /* options after the command word, and after NAME when "--" ends them */
    dl(&r, "run", "--url", g_url, "st", "-n", "--ttl=5000", "--", g_self, "child-exit", "6",
       NULL);
    EXPECT_CODE(&r, 6);
    /* without "--", like flock */
    dl(&r, "--url", g_url, "run", "st", g_self, "child-exit", "4", NULL);
    EXPECT_CODE(&r, 4);
    /* killed by a signal: 128 + N */
    dl(&r, "--url", g_url, "run", "st", "--", "/bin/sh", "-c", "kill -9 $$", NULL);
    EXPECT_CODE(&r, 128 + 9);
    dl(&r, "--url", g_url, "run", "st", "--", "/nonexistent/cmd", NULL);
    EXPECT_CODE(&r, 127);
    EXPECT_IN(r.err, "cannot run");
    /* --json summary on stderr, last line */
    dl(&r, "--url", g_url, "run", "--json", "st", "--", g_self, "child-exit", "5", NULL);
    EXPECT_CODE(&r, 5);
    jobj o;
    jparse(last_line(r.err), &o);
    TH_EQ_INT(jget(&o, "exit_code", 'n')->n, 5);
    TH_EQ_INT(jget(&o, "command_status", 'n')->n, 5);
    TH_EQ_INT(jget(&o, "lost", 'b')->n, 0);
    TH_CHECK(jget(&o, "fence", 'n')->n >= 1);
    TH_EQ_INT(key_exists("st"), 0); /* released every time */
}

static void t_env(void) {
    char envf[300];
    path_in_dir(envf, sizeof envf, "env.txt");
    result r;
    /* Server from $DLOCK_URL this time. */
    setenv("DLOCK_URL", g_url, 1);
    dl(&r, "run", "env-lock", "--", g_self, "child-env", envf, NULL);
    EXPECT_CODE(&r, 0);
    char text[1024], name[600], token[100];
    long long fence = -1;
    int own_group = -1;
    slurp(envf, text, sizeof text);
    TH_CHECK(sscanf(text, "%599[^\n]\n%99[^\n]\n%lld\n%d", name, token, &fence, &own_group) == 4);
    TH_EQ_STR(name, "env-lock");
    TH_EQ_INT(strlen(token), 32);
    TH_EQ_INT(strspn(token, "0123456789abcdef"), 32);
    TH_CHECK(fence >= 1);
    TH_EQ_INT(own_group, 1); /* the command leads its own process group */
    /* The fence rises on the next run. */
    dl(&r, "run", "env-lock", "--", g_self, "child-env", envf, NULL);
    EXPECT_CODE(&r, 0);
    long long fence2 = -1;
    slurp(envf, text, sizeof text);
    TH_CHECK(sscanf(text, "%599[^\n]\n%99[^\n]\n%lld", name, token, &fence2) == 3);
    TH_CHECK(fence2 > fence);
    unsetenv("DLOCK_URL");
}

static void t_conflict(void) {
    result r, h;
    dl(&h, "--url", g_url, "acquire", "--ttl", "20000", "--label", "holder", "busy", NULL);
    EXPECT_CODE(&h, 0);
    char token[64];
    long long fence;
    TH_CHECK(sscanf(h.out, "%63s %lld", token, &fence) == 2);

    dl(&r, "--url", g_url, "run", "-n", "busy", "--", g_self, "child-exit", "0", NULL);
    EXPECT_CODE(&r, 1);
    TH_CHECK(r.ms < 1500);
    EXPECT_IN(r.err, "held by");
    EXPECT_IN(r.err, "holder");
    dl(&r, "--url", g_url, "run", "--no-wait", "-E", "7", "busy", "--", g_self, "child-exit",
       "0", NULL);
    EXPECT_CODE(&r, 7);
    TH_CHECK(r.ms < 1500);
    dl(&r, "--url", g_url, "run", "--conflict-exit-code=0", "-n", "busy", g_self, "child-exit",
       "9", NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "acquire", "-n", "busy", NULL);
    EXPECT_CODE(&r, 1);

    /* -w 1 gives up after about a second. */
    dl(&r, "--url", g_url, "run", "-w", "1", "busy", "--", g_self, "child-exit", "0", NULL);
    EXPECT_CODE(&r, 1);
    if (r.ms < 800 || r.ms > 2500)
        TH_FAIL("-w 1 took %lld ms", r.ms);
    EXPECT_IN(r.err, "gave up");
    dl(&r, "--url", g_url, "run", "--wait=0.5", "-E", "9", "busy", "--", g_self, "child-exit",
       "0", NULL);
    EXPECT_CODE(&r, 9);
    if (r.ms < 300 || r.ms > 2000)
        TH_FAIL("-w 0.5 took %lld ms", r.ms);
    TH_EQ_INT(key_exists("busy"), 1);
}

static void t_roundtrip(void) {
    result r;
    dl(&r, "--url", g_url, "acquire", "--json", "-t", "2000", "rt", NULL);
    EXPECT_CODE(&r, 0);
    jobj o;
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "name", 's')->s, "rt");
    TH_EQ_INT(jget(&o, "acquired", 'b')->n, 1);
    TH_EQ_INT(jget(&o, "ttl_ms", 'n')->n, 2000);
    char token[64];
    snprintf(token, sizeof token, "%s", jget(&o, "token", 's')->s);
    TH_EQ_INT(strlen(token), 32);
    TH_CHECK(jget(&o, "fence", 'n')->n >= 1);
    TH_EQ_INT(key_exists("rt"), 1);

    /* extend: only with the right token */
    dl(&r, "--url", g_url, "extend", "--ttl", "30000", "rt", token, NULL);
    EXPECT_CODE(&r, 0);
    TH_CHECK(th_server_int(g_srv, "PTTL %s", "dlock:{rt}") > 20000);
    dl(&r, "--url", g_url, "extend", "-j", "-t", "30000", "rt",
       "0123456789abcdef0123456789abcdef", NULL);
    EXPECT_CODE(&r, 1);
    jparse(r.out, &o);
    TH_EQ_INT(jget(&o, "extended", 'b')->n, 0);

    /* release: wrong token refused, right token frees, second time refused */
    dl(&r, "--url", g_url, "release", "rt", "0123456789abcdef0123456789abcdef", NULL);
    EXPECT_CODE(&r, 1);
    TH_EQ_INT(key_exists("rt"), 1);
    dl(&r, "--url", g_url, "release", "--json", "rt", token, NULL);
    EXPECT_CODE(&r, 0);
    jparse(r.out, &o);
    TH_EQ_INT(jget(&o, "released", 'b')->n, 1);
    TH_EQ_INT(key_exists("rt"), 0);
    dl(&r, "--url", g_url, "release", "rt", token, NULL);
    EXPECT_CODE(&r, 1);
    EXPECT_IN(r.err, "not held");

    /* plain acquire output: "TOKEN FENCE" */
    dl(&r, "--url", g_url, "acquire", "rt", NULL);
    EXPECT_CODE(&r, 0);
    long long fence;
    char tok2[64], extra[8];
    TH_EQ_INT(sscanf(r.out, "%63s %lld %7s", tok2, &fence, extra), 2);
    TH_EQ_INT(strlen(tok2), 32);
    dl(&r, "--url", g_url, "release", "rt", tok2, NULL);
    EXPECT_CODE(&r, 0);
}

static void t_status_json(void) {
    /* A name and label that need escaping. */
    const char *name = "we\"ird\\name\t\x01 \xc3\xa9";
    const char *label = "la\"bel\\ \xe2\x9c\x93";
    result r, h;
    dl(&r, "--url", g_url, "status", "--json", name, NULL);
    EXPECT_CODE(&r, 0);
    jobj o;
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "name", 's')->s, name);
    TH_EQ_INT(jget(&o, "locked", 'b')->n, 0);
    jget(&o, "ttl_ms", 'z');
    jget(&o, "token", 'z');
    TH_EQ_INT(jget(&o, "last_fence", 'n')->n, 0);

    dl(&h, "--url", g_url, "acquire", "--label", label, "--ttl", "15000", name, NULL);
    EXPECT_CODE(&h, 0);
    char token[64];
    long long fence;
    TH_CHECK(sscanf(h.out, "%63s %lld", token, &fence) == 2);

    dl(&r, "--url", g_url, "status", "--json", name, NULL);
    EXPECT_CODE(&r, 0);
    jparse(r.out, &o);
    TH_EQ_STR(jget(&o, "name", 's')->s, name);
    TH_EQ_INT(jget(&o, "locked", 'b')->n, 1);
    long long ttl = jget(&o, "ttl_ms", 'n')->n;
    TH_CHECK(ttl > 5000 && ttl <= 15000);
    TH_EQ_INT(jget(&o, "fence", 'n')->n, fence);
    TH_EQ_INT(jget(&o, "last_fence", 'n')->n, fence);
    TH_EQ_STR(jget(&o, "label", 's')->s, label);
    TH_EQ_STR(jget(&o, "token", 's')->s, token);
    TH_CHECK(jget(&o, "pid", 'n')->n > 0);
    char host[256];
    gethostname(host, sizeof host);
    TH_EQ_STR(jget(&o, "host", 's')->s, host);
    TH_CHECK(jget(&o, "acquired_at", 'n')->n > 1600000000000LL);
    TH_EQ_INT(jget(&o, "waiters", 'n')->n, 0);

    /* Text form: says held, by whom, and the label. */
    dl(&r, "--url", g_url, "status", name, NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "held by");
    EXPECT_IN(r.out, "la\"bel");

    dl(&r, "--url", g_url, "release", name, token, NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "status", "-j", name, NULL);
    jparse(r.out, &o);
    TH_EQ_INT(jget(&o, "locked", 'b')->n, 0);
    TH_EQ_INT(jget(&o, "last_fence", 'n')->n, fence);
    dl(&r, "--url", g_url, "status", name, NULL);
    EXPECT_IN(r.out, "free");
}

/* Workers take turns: each runs dlock run ROUNDS times; the critical
 * sections (enter/leave lines written by the children) must not overlap. */
#define WORKERS 3
#define ROUNDS 4
static char g_crit[300];

static int worker(int idx, void *arg) {
    (void)arg;
    char widx[8];
    snprintf(widx, sizeof widx, "%d", idx);
    for (int i = 0; i < ROUNDS; i++) {
        result r;
        dl(&r, "--url", g_url, "run", "--ttl", "3000", "turns", "--", g_self, "child-crit",
           g_crit, "80", widx, NULL);
        EXPECT_CODE(&r, 0);
    }
    return 0;
}

static void t_overlap(void) {
    path_in_dir(g_crit, sizeof g_crit, "crit.log");
    TH_EQ_INT(th_run_workers(WORKERS, worker, NULL, 40), 0);
    FILE *f = fopen(g_crit, "r");
    TH_CHECK(f != NULL);
    char kind[8];
    long long t, fence, last_fence = 0, last_leave = 0;
    int w, inside = 0, enters = 0, cur_w = -1;
    long long cur_fence = -1;
    while (fscanf(f, "%7s %lld %lld %d", kind, &t, &fence, &w) == 4) {
        if (strcmp(kind, "enter") == 0) {
            if (inside)
                TH_FAIL("worker %d entered at %lld while worker %d was inside", w, t, cur_w);
            if (t < last_leave)
                TH_FAIL("enter at %lld before the previous leave at %lld", t, last_leave);
            if (fence <= last_fence)
                TH_FAIL("fence %lld not above the previous %lld", fence, last_fence);
            inside = 1;
            cur_w = w;
            cur_fence = fence;
            last_fence = fence;
            enters++;
        } else {
            if (!inside || w != cur_w || fence != cur_fence)
                TH_FAIL("leave of worker %d (fence %lld) without its enter", w, fence);
            inside = 0;
            last_leave = t;
        }
    }
    fclose(f);
    TH_CHECK(!inside);
    TH_EQ_INT(enters, WORKERS * ROUNDS);
}

static void t_signals(void) {
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char ready[300], marker[300], want[32];
        char rn[32], mn[32];
        snprintf(rn, sizeof rn, "ready.%zu", i);
        snprintf(mn, sizeof mn, "marker.%zu", i);
        path_in_dir(ready, sizeof ready, rn);
        path_in_dir(marker, sizeof marker, mn);
        proc p;
        start(&p, "--url", g_url, "run", "sig", "--", g_self, "child-trap", ready, marker,
              NULL);
        if (wait_file(ready, 5000) != 0)
            TH_FAIL("the command did not start");
        TH_EQ_INT(key_exists("sig"), 1);
        TH_EQ_INT(kill(p.pid, sigs[i]), 0);
        result r;
        finish(&p, 5000, &r);
        EXPECT_CODE(&r, 42); /* the command's own status */
        char text[64];
        slurp(marker, text, sizeof text);
        snprintf(want, sizeof want, "got %d\n", sigs[i]);
        TH_EQ_STR(text, want);
        TH_EQ_INT(key_exists("sig"), 0); /* released after the command exited */
    }
}

static void lost_case(const char *kill_after, const char *term_mode, int min_ms) {
    char ready[300], rn[48];
    snprintf(rn, sizeof rn, "ready.lost.%s", term_mode);
    path_in_dir(ready, sizeof ready, rn);
    proc p;
    start(&p, "--url", g_url, "run", "--ttl", "1000", "--kill-after", kill_after, "lost", "--",
          g_self, "child-sleep", ready, "20000", term_mode, NULL);
    if (wait_file(ready, 5000) != 0)
        TH_FAIL("the command did not start");
    char text[32];
    slurp(ready, text, sizeof text);
    pid_t child = (pid_t)atoi(text);
    TH_CHECK(child > 0);
    th_sleep_ms(400); /* let keepalive extend at least once */
    long long t0 = th_now_us();
    TH_EQ_INT(th_server_int(g_srv, "DEL %s", "dlock:{lost}"), 1);
    result r;
    finish(&p, 10000, &r);
    long long ms = (th_now_us() - t0) / 1000;
    EXPECT_CODE(&r, 75);
    EXPECT_IN(r.err, "lost lock 'lost'");
    /* Noticed within a keepalive interval (ttl/3) plus the grace period. */
    if (ms < min_ms || ms > min_ms + 2500)
        TH_FAIL("dlock ended %lld ms after the key was deleted (expected %d..%d)", ms, min_ms,
                min_ms + 2500);
    TH_CHECK(kill(child, 0) != 0 && errno == ESRCH); /* the command is gone */
}

static void t_lost(void) {
    lost_case("1", "term", 0);
}

static void t_lost_kill(void) {
    /* The command ignores SIGTERM: SIGKILL after --kill-after. */
    lost_case("0.7", "ignore-term", 700);
}

static void t_verbose(void) {
    result h, r;
    dl(&h, "--url", g_url, "acquire", "--ttl", "1500", "--label", "the-holder", "vb", NULL);
    EXPECT_CODE(&h, 0);
    dl(&r, "--url", g_url, "run", "-v", "-w", "5", "vb", "--", g_self, "child-exit", "0", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.err, "waiting for 'vb'");
    EXPECT_IN(r.err, "held by");
    EXPECT_IN(r.err, "the-holder");
    EXPECT_IN(r.err, "lease ends in");
    EXPECT_IN(r.err, "acquired 'vb'");
    TH_CHECK(strchr(r.err, '\r') == NULL); /* not a terminal: plain lines */
}

static void t_usage(void) {
    static const char *const bad[][8] = {
        {NULL},
        {"frobnicate", NULL},
        {"--bogus", "status", "x", NULL},
        {"run", NULL},
        {"run", "x", NULL},
        {"run", "x", "--", NULL},
        {"run", "-w", "abc", "x", "--", "true", NULL},
        {"run", "-w", "-1", "x", "--", "true", NULL},
        {"run", "-t", "0", "x", "--", "true", NULL},
        {"run", "-E", "300", "x", "--", "true", NULL},
        {"run", "-n", "-w", "1", "x", "--", "true", NULL},
        {"run", "x", "-n", "true", NULL},
        {"run", "--ttl", NULL},
        {"acquire", NULL},
        {"acquire", "a", "b", NULL},
        {"acquire", "--kill-after", "1", "x", NULL},
        {"release", "x", NULL},
        {"release", "x", "not-a-token", NULL},
        {"extend", "x", "0123456789abcdef0123456789abcdef", "extra", NULL},
        {"status", NULL},
        {"status", "--ttl", "5", "x", NULL},
        {"status", "", NULL},
        {"help", "nope", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proc p;
        const char *const *a = bad[i];
        const char *args[12] = {"--url", g_url};
        int n = 2;
        while (a[n - 2] != NULL)
            args[n] = a[n - 2], n++;
        start_arr(&p, args, n);
        result r;
        finish(&p, 5000, &r);
        if (r.code != 2 || strstr(r.err, "usage:") == NULL)
            TH_FAIL("case %zu (%s %s): exit %d, stderr: %s", i, a[0] ? a[0] : "",
                    a[0] && a[1] ? a[1] : "", r.code, r.err);
        TH_EQ_STR(r.out, "");
    }
    /* A bad URL is a usage problem too, but without the synopsis. */
    result r;
    dl(&r, "--url", "http://x", "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "bad server URL");
    /* Help and version go to stdout with status 0. */
    dl(&r, "--help", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "usage: dlock");
    dl(&r, "run", "--help", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "usage: dlock run");
    EXPECT_IN(r.out, "--kill-after");
    const char *cmds[] = {"acquire", "release", "extend", "status"};
    for (int i = 0; i < 4; i++) {
        dl(&r, cmds[i], "-h", NULL);
        EXPECT_CODE(&r, 0);
        EXPECT_IN(r.out, cmds[i]);
    }
    dl(&r, "help", "status", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "usage: dlock status");
    dl(&r, "--version", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "dlock ");
}

static void t_connect_error(void) {
    int port = th_server_port(g_srv);
    TH_EQ_INT(th_server_kill(g_srv), 0); /* nothing listens on port now */
    char url[128], where[64], marker[300];
    snprintf(url, sizeof url, "redis://:s3cr3t-pw@127.0.0.1:%d", port);
    snprintf(where, sizeof where, "cannot connect to 127.0.0.1:%d", port);
    path_in_dir(marker, sizeof marker, "ran");
    result r;
    dl(&r, "--url", url, "status", "x", NULL);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.err, where);
    EXPECT_IN(r.err, "DLOCK_URL");
    TH_CHECK(strstr(r.err, "s3cr3t") == NULL);
    TH_EQ_INT((int)(strchr(r.err, '\n') - r.err + 1), (int)strlen(r.err)); /* one line */
    setenv("DLOCK_URL", url, 1);
    dl(&r, "run", "-v", "x", "--", g_self, "child-env", marker, NULL);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.err, where);
    TH_CHECK(strstr(r.err, "s3cr3t") == NULL);
    struct stat st;
    TH_CHECK(stat(marker, &st) != 0); /* the command never ran */
    dl(&r, "acquire", "--json", "x", NULL);
    EXPECT_CODE(&r, 69);
    TH_CHECK(strstr(r.err, "s3cr3t") == NULL);
    dl(&r, "--url", "redis://user:s3cr3t-pw@127.0.0.1:99999", "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    TH_CHECK(strstr(r.err, "s3cr3t") == NULL);
    unsetenv("DLOCK_URL");
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"exit_status", t_exit_status}, {"env", t_env},
    {"conflict", t_conflict},       {"roundtrip", t_roundtrip},
    {"status_json", t_status_json}, {"overlap", t_overlap},
    {"signals", t_signals},         {"lost", t_lost},
    {"lost_kill", t_lost_kill},     {"verbose", t_verbose},
    {"usage", t_usage},             {"connect_error", t_connect_error},
    {"lease_pause", t_lease_pause}, {"parent_death", t_parent_death},
    {"stopped_dlock", t_stopped_dlock},
    {"lost_at_release", t_lost_at_release}, {"nested", t_nested},
    {"flock_opts", t_flock_opts},   {"json_errors", t_json_errors},
    {"hints", t_hints},             {"hints_topo", t_hints_topo},
    {"holder_pid", t_holder_pid},
    {"ls_bigdb", t_ls_bigdb},       {"ls_json", t_ls_json},
    {"ls_openmetrics", t_ls_openmetrics}, {"ls_cluster", t_ls_cluster},
    {"ls_sentinel", t_ls_sentinel}, {"max_time", t_max_time},       {"metrics_file", t_metrics_file},
    {"kinds_holders", t_kinds_holders}, {"kinds_shared", t_kinds_shared},
    {"kinds_multi", t_kinds_multi}, {"kinds_usage", t_kinds_usage},
    {"replica_gate", t_replica_gate}, {"eviction", t_eviction},
    {"failover_wait", t_failover_wait},
};

int main(int argc, char **argv) {
    if (argc >= 2 && strncmp(argv[1], "child-", 6) == 0)
        return child_main(argc, argv);
    if (argc != 3) {
        fprintf(stderr, "usage: test_cli CASE PATH_TO_DLOCK\n");
        return 2;
    }
    cli_test_init(argv[2], 50);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(cases[i].name, argv[1]) != 0)
            continue;
        g_srv = th_server_start(NULL);
        TH_CHECK(g_srv != NULL);
        snprintf(g_url, sizeof g_url, "%s", th_server_url(g_srv));
        long long t0 = th_now_us();
        cases[i].fn();
        printf("cli %s: ok (%.1f s)\n", cases[i].name, (double)(th_now_us() - t0) / 1e6);
        th_server_free(g_srv);
        return 0;
    }
    fprintf(stderr, "test_cli: no case %s\n", argv[1]);
    return 2;
}
