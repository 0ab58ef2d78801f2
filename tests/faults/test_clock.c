/* test_clock.c - a client whose clock is wrong must not overstate validity.
 *
 * clock_helper runs under faketime(1) (Debian's libfaketime), acquires a
 * lock with a 1000 ms lease and reports through a pipe when it acquired and
 * when dlock_held() turned false. This process, on the true clock, reads the
 * lease's remaining time on the server right after the acquire and so knows
 * the earliest moment the server may expire it. dlock_held() must turn false
 * before that moment:
 *   - wall clock shifted +1 h / -1 h (libfaketime also offsets the
 *     monotonic clock; only its rate matters): safe, dlock's validity uses
 *     CLOCK_MONOTONIC differences only;
 *   - every clock 2x fast: safe (held ends early);
 *   - wall clock 0.5x slow, monotonic true (--exclude-monotonic): safe.
 * And the limit, reported, not asserted: with CLOCK_MONOTONIC itself running
 * at half speed, no client-side lease can know; dlock_held() overstates by
 * about the TTL. dlock assumes the monotonic clock's rate is off by at most
 * drift_factor (1 %); docs/RELIABILITY.md says so.
 *
 * Skipped (exit 77) when faketime is not installed.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faults.h"

#ifndef CLOCK_HELPER
#error "CLOCK_HELPER must be the path of clock_helper"
#endif

#define TTL 1000

typedef struct variant {
    const char *label;
    const char *opts[4]; /* faketime options, NULL-terminated */
    int must_be_safe;
} variant;

/* One report from the helper: a letter and its true monotonic time. */
static int read_report(int fd, int timeout_ms, char *what, long long *us) {
    char buf[1 + sizeof(int64_t)];
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < sizeof buf) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    int64_t v;
    memcpy(&v, buf + 1, sizeof v);
    *what = buf[0];
    *us = v;
    return 0;
}

static int have_faketime(void) {
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("faketime", "faketime", "-f", "+0", "true", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void run(th_server *s, const variant *v, int idx) {
    char name[32], ttl_s[16], fd_s[16];
    snprintf(name, sizeof name, "clk-%d", idx);
    snprintf(ttl_s, sizeof ttl_s, "%d", TTL);
    int fds[2];
    TH_EQ_INT(pipe(fds), 0);
    snprintf(fd_s, sizeof fd_s, "%d", fds[1]);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    TH_CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(111);
        close(fds[0]);
        /* An ASan build complains when libfaketime is preloaded first. */
        const char *ao = getenv("ASAN_OPTIONS");
        char asan[512];
        snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", ao ? ao : "",
                 ao && *ao ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        const char *argv[16];
        int n = 0;
        argv[n++] = "faketime";
        for (int i = 0; v->opts[i] != NULL; i++)
            argv[n++] = v->opts[i];
        argv[n++] = CLOCK_HELPER;
        argv[n++] = th_server_url(s);
        argv[n++] = name;
        argv[n++] = ttl_s;
        argv[n++] = fd_s;
        argv[n] = NULL;
        execvp("faketime", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char b = 0;
    long long t_a = 0, t_f = 0;
    TH_EQ_INT(read_report(fds[0], 10000, &b, &t_a), 0);
    TH_EQ_INT(b, 'A');
    /* The server's lease: it ends no earlier than t_send + pttl. */
    long long t_send = th_now_us();
    long long pttl = th_server_int(s, "PTTL dlock:{%s}", name);
    TH_CHECK(pttl > 0 && pttl <= TTL);
    long long earliest_expiry = t_send + pttl * 1000;
    TH_EQ_INT(read_report(fds[0], 10000, &b, &t_f), 0);
    TH_EQ_INT(b, 'F');
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    close(fds[0]);
    TH_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long long margin_ms = (earliest_expiry - t_f) / 1000;
    printf("%-62s held for %4lld ms (ttl %d), %s by %lld ms\n", v->label,
           (t_f - t_a) / 1000, TTL,
           margin_ms >= 0 ? "false before the server's expiry" : "OVERSTATED: true past expiry",
           margin_ms >= 0 ? margin_ms : -margin_ms);
    if (v->must_be_safe)
        TH_CHECK(t_f <= earliest_expiry);
}

int main(void) {
    th_test_init(50);
    if (!have_faketime()) {
        printf("test_clock: faketime not installed: skipped\n");
        return 77;
    }
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    static const variant vs[] = {
        {"wall clock +1 h (faketime -f '+1h')", {"-f", "+1h", NULL}, 1},
        {"wall clock -1 h (faketime -f '-1h')", {"-f", "-1h", NULL}, 1},
        {"all clocks 2x fast (faketime -f '+0 x2')", {"-f", "+0 x2", NULL}, 1},
        {"wall clock 0.5x slow, monotonic true (--exclude-monotonic)",
         {"--exclude-monotonic", "-f", "+0 x0.5", NULL},
         1},
        {"all clocks 0.5x slow, monotonic too (known limit)", {"-f", "+0 x0.5", NULL}, 0},
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
        run(s, &vs[i], (int)i);
    th_server_free(s);
    IT_PASS("test_clock");
    return 0;
}
