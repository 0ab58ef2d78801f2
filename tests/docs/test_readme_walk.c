/* test_readme_walk.c - the shell examples of the README and of the man page
 * run as they are written, against a redis-server the harness starts.
 *
 *   test_readme_walk readme README.md PATH_TO_DLOCK
 *   test_readme_walk man man/dlock.1 PATH_TO_DLOCK
 *
 * README.md: every fenced block carries a language. Blocks tagged sh, shell
 * or bash are examples and run, unless the line before the fence is
 * `<!-- notest: REASON -->` (then the reason is printed); an untagged block
 * fails the test, so that no shell example is skipped by accident.
 * man/dlock.1: every .nf block is preceded by a roff comment saying what it
 * is: `.\" example: sh` runs, `.\" example: notest REASON` is skipped with the
 * reason, `.\" example: output` is a sample of output; an unmarked .nf
 * block fails the test. Roff escapes are undone before running.
 *
 * Each example is one `/bin/sh -e` script run in a scratch directory, with
 * DLOCK_URL naming the test's server and the dlock under test first in PATH.
 * Scripts the examples name as the reader's own (`./report.sh`) are stubs
 * that print their arguments. After each example no lock may be left held.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static th_server *g_srv;
static char g_dir[600];   /* scratch directory the examples run in */
static char g_path[4096]; /* PATH with the dlock under test first */
static int g_ran, g_skipped;

typedef struct block {
    const char *file;
    int line; /* of the fence / .nf */
    char text[8192];
} block;

static int exec_block(void *arg) {
    const char *script = arg;
    if (chdir(g_dir) != 0 || freopen("/dev/null", "r", stdin) == NULL)
        return 120;
    setenv("DLOCK_URL", th_server_url(g_srv), 1);
    unsetenv("DLOCK_URL_FILE");
    setenv("PATH", g_path, 1);
    if (freopen("out.txt", "w", stdout) == NULL || dup2(fileno(stdout), 2) < 0)
        return 121;
    execl("/bin/sh", "sh", "-e", script, (char *)NULL);
    return 122;
}

/* Writes an executable stub for every ./NAME.sh the example names. */
static void make_stubs(const char *text) {
    for (const char *p = text; (p = strstr(p, "./")) != NULL; p += 2) {
        size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.");
        if (n < 4 || n > 60 || strncmp(p + 2 + n - 3, ".sh", 3) != 0)
            continue;
        char path[700];
        snprintf(path, sizeof path, "%s/%.*s", g_dir, (int)n, p + 2);
        FILE *f = fopen(path, "w");
        TH_CHECK(f != NULL);
        fputs("#!/bin/sh\necho \"stub $0 $*\"\n", f);
        fclose(f);
        TH_EQ_INT(chmod(path, 0755), 0);
    }
}

/* Fails the test if a lock key (dlock:{NAME}, not its :fence counter or
 * queue) still exists. */
static void expect_no_lock_held(const block *b) {
    redisReply *r = th_server_cmd(g_srv, "KEYS %s", "dlock:*");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        const char *k = r->element[i]->str;
        if (k[strlen(k) - 1] == '}')
            TH_FAIL("%s:%d: the example left lock %s held:\n%s", b->file, b->line, k, b->text);
    }
    freeReplyObject(r);
}

static void run_block(const block *b) {
    char script[700], out[700], log[16384] = "";
    snprintf(script, sizeof script, "%s/example-%d.sh", g_dir, b->line);
    FILE *f = fopen(script, "w");
    TH_CHECK(f != NULL);
    fputs(b->text, f);
    fclose(f);
    make_stubs(b->text);
    pid_t pid = th_spawn(exec_block, script);
    TH_CHECK(pid > 0);
    int rc = th_wait(pid, 60000);
    snprintf(out, sizeof out, "%s/out.txt", g_dir);
    f = fopen(out, "r");
    if (f != NULL) {
        size_t k = fread(log, 1, sizeof log - 1, f);
        log[k] = '\0';
        fclose(f);
    }
    printf("--- %s:%d (exit %d)\n%s%s", b->file, b->line, rc, b->text, log);
    if (rc != 0)
        TH_FAIL("%s:%d: the example exited %d:\n%s\noutput:\n%s", b->file, b->line, rc, b->text,
                log);
    expect_no_lock_held(b);
    g_ran++;
}

static void skip(const block *b, const char *reason) {
    printf("--- %s:%d skipped (notest: %s)\n", b->file, b->line, reason);
    g_skipped++;
}

static void append(block *b, const char *line) {
    size_t n = strlen(b->text);
    if (n + strlen(line) + 2 > sizeof b->text)
        TH_FAIL("%s:%d: example too long", b->file, b->line);
    snprintf(b->text + n, sizeof b->text - n, "%s\n", line);
}

/* ---- README.md ------------------------------------------------------------ */

static int is_shell(const char *lang) {
    return strcmp(lang, "sh") == 0 || strcmp(lang, "shell") == 0 || strcmp(lang, "bash") == 0;
}

static void walk_readme(const char *file, FILE *f) {
    char line[2048], prev[2048] = "", notest[2048];
    static block b;
    int ln = 0, in = 0, run = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        ln++;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "```", 3) != 0) {
            if (in)
                append(&b, line);
            snprintf(prev, sizeof prev, "%s", line);
            continue;
        }
        if (in) { /* closing fence */
            in = 0;
            if (run)
                run_block(&b);
            continue;
        }
        const char *lang = line + 3;
        if (*lang == '\0')
            TH_FAIL("%s:%d: a code block without a language: tag it (sh, c, text, ...) so "
                    "the walk knows whether it is a shell example", file, ln);
        in = 1;
        b.file = file;
        b.line = ln;
        b.text[0] = '\0';
        run = is_shell(lang);
        if (run && sscanf(prev, "<!-- notest: %2000[^\n]", notest) == 1) {
            char *end = strstr(notest, " -->");
            if (end == NULL)
                TH_FAIL("%s:%d: write the marker as <!-- notest: REASON -->", file, ln - 1);
            *end = '\0';
            skip(&b, notest);
            run = 0;
        }
    }
    if (in)
        TH_FAIL("%s: a code block is not closed", file);
}

/* ---- man/dlock.1 ---------------------------------------------------------- */

/* Undoes the roff escapes of a .nf line; fails on one it does not know. */
static void unroff(const char *file, int ln, const char *in, char *out, size_t n) {
    static const struct {
        const char *esc, *text;
    } map[] = {{"\\-", "-"},  {"\\e", "\\"}, {"\\&", ""},   {"\\(dq", "\""},
               {"\\fB", ""},  {"\\fI", ""},  {"\\fR", ""},  {"\\fP", ""}};
    size_t o = 0;
    while (*in && o + 2 < n) {
        size_t i = 0;
        if (*in == '\\') {
            for (i = 0; i < sizeof map / sizeof map[0]; i++)
                if (strncmp(in, map[i].esc, strlen(map[i].esc)) == 0)
                    break;
            if (i == sizeof map / sizeof map[0])
                TH_FAIL("%s:%d: unknown roff escape in an example: %s", file, ln, in);
            size_t t = strlen(map[i].text);
            memcpy(out + o, map[i].text, t);
            o += t;
            in += strlen(map[i].esc);
            continue;
        }
        out[o++] = *in++;
    }
    out[o] = '\0';
}

static void walk_man(const char *file, FILE *f) {
    char line[2048], plain[2048], kind[2048] = "";
    static block b;
    int ln = 0, in = 0, run = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        ln++;
        line[strcspn(line, "\n")] = '\0';
        if (in && strcmp(line, ".fi") == 0) {
            in = 0;
            if (run)
                run_block(&b);
        } else if (in) {
            unroff(file, ln, line, plain, sizeof plain);
            append(&b, plain);
        } else if (strcmp(line, ".nf") == 0) {
            in = 1;
            b.file = file;
            b.line = ln;
            b.text[0] = '\0';
            run = strcmp(kind, "sh") == 0;
            if (strncmp(kind, "notest ", 7) == 0)
                skip(&b, kind + 7);
            else if (!run && strcmp(kind, "output") != 0)
                TH_FAIL("%s:%d: a .nf block without a '.\\\" example: sh|notest REASON|output' "
                        "line before it", file, ln);
        }
        if (!in && strncmp(line, ".\\\" example: ", 13) == 0)
            snprintf(kind, sizeof kind, "%s", line + 13);
        else if (!in)
            kind[0] = '\0';
    }
    if (in)
        TH_FAIL("%s: a .nf block is not closed", file);
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "readme") != 0 && strcmp(argv[1], "man") != 0)) {
        fprintf(stderr, "usage: test_readme_walk readme|man FILE PATH_TO_DLOCK\n");
        return 2;
    }
    th_test_init(100);
    g_srv = th_server_start(NULL);
    TH_CHECK(g_srv != NULL);
    snprintf(g_dir, sizeof g_dir, "%s/walk", th_server_dir(g_srv));
    TH_EQ_INT(mkdir(g_dir, 0700), 0);
    char dlock_dir[PATH_MAX];
    if (realpath(argv[3], dlock_dir) == NULL) /* the examples run elsewhere */
        TH_FAIL("no dlock at %s", argv[3]);
    char *slash = strrchr(dlock_dir, '/');
    TH_CHECK(slash != NULL && strcmp(slash, "/dlock") == 0); /* found as `dlock` in PATH */
    *slash = '\0';
    const char *path = getenv("PATH");
    snprintf(g_path, sizeof g_path, "%s:%s", dlock_dir, path ? path : "/usr/bin:/bin");
    FILE *f = fopen(argv[2], "r");
    if (f == NULL)
        TH_FAIL("cannot open %s", argv[2]);
    if (strcmp(argv[1], "readme") == 0)
        walk_readme(argv[2], f);
    else
        walk_man(argv[2], f);
    fclose(f);
    TH_CHECK(g_ran > 0);
    printf("%s: %d examples ran, %d skipped (notest)\n", argv[2], g_ran, g_skipped);
    th_server_free(g_srv);
    return 0;
}
