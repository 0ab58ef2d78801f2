/* test_secret.c - the dlock tool keeps the server password out of sight:
 * not in `dlock run`'s child environment, not in /proc/PID/cmdline, and the
 * URL may come from a file (--url-file, DLOCK_URL_FILE) with safe
 * permissions. Real dlock processes against a real redis-server with an ACL
 * user, so a wrong or mangled password would fail the connection.
 *
 *   test_secret CASE PATH_TO_DLOCK     run one case (see `cases` below)
 *   test_secret child-MODE ARGS...     helper modes, the COMMAND of dlock run
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "harness.h"

#define PW "S3cret-pw-7f1c"
/* g_self (cli_util.h): this program, also the COMMAND dlock runs. */
static char g_pw_url[200]; /* redis://alice:PW@127.0.0.1:PORT */

/* ---- helper modes ----------------------------------------------------------- */

static void put_file(const char *path, const char *text, mode_t mode) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        _exit(92);
    fchmod(fd, mode);
    close(fd);
    rename(tmp, path); /* appears complete or not at all */
}

static int child_main(int argc, char **argv) {
    char buf[1024];
    if (strcmp(argv[1], "child-url-env") == 0 && argc == 3) {
        /* child-url-env OUT: what the command sees of the URL variables */
        const char *u = getenv("DLOCK_URL"), *f = getenv("DLOCK_URL_FILE");
        snprintf(buf, sizeof buf, "DLOCK_URL=%s\nDLOCK_URL_FILE=%s\n", u ? u : "(unset)",
                 f ? f : "(unset)");
        put_file(argv[2], buf, 0600);
        return 0;
    }
    if (strcmp(argv[1], "child-hold") == 0 && argc == 4) {
        /* child-hold READY GO: say we run, then wait (at most 20 s) for GO */
        put_file(argv[2], "ready\n", 0600);
        struct stat st;
        for (int i = 0; i < 2000 && stat(argv[3], &st) != 0; i++)
            usleep(10000);
        return 0;
    }
    fprintf(stderr, "test_secret: bad helper mode %s\n", argv[1]);
    return 99;
}

/* ---- cases ------------------------------------------------------------------- */

/* The command of `dlock run` does not inherit DLOCK_URL (password) or
 * DLOCK_URL_FILE, unless --pass-url-env asks for it. */
static void t_child_env(void) {
    char out[300], text[1024];
    path_in_dir(out, sizeof out, "env.out");
    result r;
    setenv("DLOCK_URL", g_pw_url, 1);
    dl(&r, "run", "envl", "--", g_self, "child-url-env", out, NULL);
    EXPECT_CODE(&r, 0);
    slurp(out, text, sizeof text);
    if (strstr(text, PW) != NULL)
        TH_FAIL("the command inherited the password:\n%s", text);
    EXPECT_IN(text, "DLOCK_URL=(unset)");
    /* Opt-in: passed as it was. */
    dl(&r, "run", "--pass-url-env", "envl", "--", g_self, "child-url-env", out, NULL);
    EXPECT_CODE(&r, 0);
    slurp(out, text, sizeof text);
    EXPECT_IN(text, g_pw_url);
    unsetenv("DLOCK_URL");
}

/* A URL given with --url is scrubbed from /proc/PID/cmdline while dlock run
 * holds the lock (all three spellings of the option). */
static void t_cmdline(void) {
    char arg[240];
    snprintf(arg, sizeof arg, "--url=%s", g_pw_url);
    char uarg[240];
    snprintf(uarg, sizeof uarg, "-u%s", g_pw_url);
    const char *forms[3][2] = {{"--url", g_pw_url}, {arg, NULL}, {uarg, NULL}};
    for (int i = 0; i < 3; i++) {
        char ready[300], go[300], rn[32], gn[32];
        snprintf(rn, sizeof rn, "ready.%d", i);
        snprintf(gn, sizeof gn, "go.%d", i);
        path_in_dir(ready, sizeof ready, rn);
        path_in_dir(go, sizeof go, gn);
        const char *args[12];
        int n = 0;
        args[n++] = forms[i][0];
        if (forms[i][1])
            args[n++] = forms[i][1];
        args[n++] = "run";
        args[n++] = "cmdl";
        args[n++] = "--";
        args[n++] = g_self;
        args[n++] = "child-hold";
        args[n++] = ready;
        args[n++] = go;
        proc p;
        start_arr(&p, args, n);
        if (wait_file(ready, 5000) != 0)
            TH_FAIL("the command did not start");
        char path[64], cmdline[4096];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)p.pid);
        int fd = open(path, O_RDONLY);
        TH_CHECK(fd >= 0);
        ssize_t k = read(fd, cmdline, sizeof cmdline - 1);
        close(fd);
        TH_CHECK(k > 0);
        for (ssize_t j = 0; j < k; j++)
            if (cmdline[j] == '\0')
                cmdline[j] = ' ';
        cmdline[k] = '\0';
        put_file(go, "go\n", 0600);
        result r;
        finish(&p, 10000, &r);
        EXPECT_CODE(&r, 0); /* the password still worked */
        if (strstr(cmdline, PW) != NULL)
            TH_FAIL("form %d: /proc/%d/cmdline shows the password: %s", i, (int)p.pid, cmdline);
        EXPECT_IN(cmdline, "alice:***@127.0.0.1");
        EXPECT_IN(cmdline, "child-hold"); /* the rest is intact */
    }
}

/* --url-file and DLOCK_URL_FILE: the URL (final newline stripped) from a
 * file only the owner may access; other modes are refused. */
static void t_url_file(void) {
    char f[300], text[600];
    path_in_dir(f, sizeof f, "url");
    snprintf(text, sizeof text, "%s\n", g_pw_url);
    put_file(f, text, 0600);
    result r;
    dl(&r, "--url-file", f, "status", "x", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "free");
    dl(&r, "status", "--url-file", f, "x", NULL);
    EXPECT_CODE(&r, 0);
    setenv("DLOCK_URL_FILE", f, 1);
    dl(&r, "status", "x", NULL);
    EXPECT_CODE(&r, 0);
    /* run: the child does not get DLOCK_URL_FILE either */
    char out[300];
    path_in_dir(out, sizeof out, "env2.out");
    dl(&r, "run", "fl", "--", g_self, "child-url-env", out, NULL);
    EXPECT_CODE(&r, 0);
    slurp(out, text, sizeof text);
    EXPECT_IN(text, "DLOCK_URL_FILE=(unset)");
    /* both variables: ambiguous */
    setenv("DLOCK_URL", g_pw_url, 1);
    dl(&r, "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "DLOCK_URL_FILE");
    unsetenv("DLOCK_URL");
    /* readable by others: refused, and says how to fix it */
    chmod(f, 0644);
    dl(&r, "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "chmod 600");
    unsetenv("DLOCK_URL_FILE");
    chmod(f, 0640);
    dl(&r, "--url-file", f, "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "0640");
    TH_CHECK(strstr(r.err, PW) == NULL);
    /* missing file, empty file, both --url and --url-file */
    dl(&r, "--url-file", "/nonexistent/url", "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "/nonexistent/url");
    put_file(f, "\n", 0600);
    dl(&r, "--url-file", f, "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "empty");
    dl(&r, "--url-file", f, "--url", g_url, "status", "x", NULL);
    EXPECT_CODE(&r, 2);
    /* --pass-url-env is for run only */
    dl(&r, "--url", g_url, "status", "--pass-url-env", "x", NULL);
    EXPECT_CODE(&r, 2);
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"child_env", t_child_env},
    {"cmdline", t_cmdline},
    {"url_file", t_url_file},
};

int main(int argc, char **argv) {
    if (argc >= 2 && strncmp(argv[1], "child-", 6) == 0)
        return child_main(argc, argv);
    if (argc != 3) {
        fprintf(stderr, "usage: test_secret CASE PATH_TO_DLOCK\n");
        return 2;
    }
    cli_test_init(argv[2], 50);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(cases[i].name, argv[1]) != 0)
            continue;
        /* An ACL user with a password; the default user stays open for the
         * harness's own connection. */
        const char *extra[] = {"--user", "alice", "on", ">" PW, "~*", "&*", "+@all", NULL};
        g_srv = th_server_start(extra);
        TH_CHECK(g_srv != NULL);
        snprintf(g_url, sizeof g_url, "%s", th_server_url(g_srv));
        snprintf(g_pw_url, sizeof g_pw_url, "redis://alice:%s@127.0.0.1:%d", PW,
                 th_server_port(g_srv));
        long long t0 = th_now_us();
        cases[i].fn();
        printf("secret %s: ok (%.1f s)\n", cases[i].name, (double)(th_now_us() - t0) / 1e6);
        th_server_free(g_srv);
        return 0;
    }
    fprintf(stderr, "test_secret: no case %s\n", argv[1]);
    return 2;
}
