/* run.c - `dlock run NAME -- COMMAND...`: hold a lock while a command runs.
 *
 * Sequence: refuse a nested run on the lock the caller already holds; take
 * the lock; export DLOCK_NAME/DLOCK_TOKEN/DLOCK_FENCE (while the process is
 * still single-threaded); block the handled signals and install their
 * handlers; start the keepalive thread (which inherits the blocked mask, so
 * signals always reach the main thread); start the command (supervise.c);
 * supervise it until it exits; release the lock; pick the exit status;
 * write --metrics-file.
 *
 * --max-time is the library's max_hold_ms (set in cli_connect): at that
 * hold time keepalive stops and reports DLOCK_EMAXHOLD, and supervise.c
 * ends the command as for a lost lock, before the lease left runs out.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether `name` is one of the lines of list. */
static int in_lines(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

int cli_nested(const char *name) {
    const char *held = getenv("DLOCK_NAME"), *token = getenv("DLOCK_TOKEN");
    const char *all = getenv("DLOCK_NAMES");
    if (token == NULL || token[0] == '\0' ||
        !((held != NULL && strcmp(held, name) == 0) || (all != NULL && in_lines(all, name))))
        return 0;
    char sname[96];
    cli_msg("this process already holds '%s' (DLOCK_NAME and DLOCK_TOKEN come from the "
            "dlock run around it): taking it again would wait for itself \xe2\x80\x94 use the "
            "lock you hold, or unset DLOCK_TOKEN if this is meant to be another lock",
            cli_safe(name, sname, sizeof sname));
    return EXIT_USAGE;
}

/* The shutdown schedule (supervise.c): SIGKILL margin_ms before the end of
 * the lease's validity, SIGTERM grace_ms before that. The grace is
 * --kill-after, cut so that SIGTERM never comes before an extension that
 * is due had its chance to succeed: ttl - interval - I/O timeout - drift.
 * The watchdog's deadline is renewed every half interval. */
static void schedule(cli *c, int64_t interval, run_state *st) {
    int64_t ttl = c->ttl_ms;
    int64_t io = c->timeout_ms > 0 ? c->timeout_ms : 1000;
    int64_t drift = ttl / 100 + 2; /* the library's default drift */
    st->margin_ms = ttl / 10 > 500 ? 500 : ttl / 10;
    int64_t room = ttl - interval - io - drift - st->margin_ms;
    st->grace_ms = c->kill_after_ms < room ? c->kill_after_ms : room > 0 ? room : 0;
    st->refresh_ms = interval / 2 > 0 ? interval / 2 : 1;
}

static void json_summary(cli *c, const dlock_info *info, const run_state *st, int lost_rc,
                         int code, int64_t held_ms) {
    jw w;
    jw_begin(&w, stderr);
    jw_str(&w, "name", st->name);
    jw_bool(&w, "acquired", 1);
    jw_int(&w, "fence", info->fence);
    jw_int(&w, "exit_code", code);
    if (WIFSIGNALED(st->status))
        jw_int(&w, "signal", WTERMSIG(st->status));
    else
        jw_null(&w, "signal");
    if (WIFEXITED(st->status))
        jw_int(&w, "command_status", WEXITSTATUS(st->status));
    else
        jw_null(&w, "command_status");
    int lost = lost_rc != DLOCK_OK && lost_rc != DLOCK_EMAXHOLD;
    jw_bool(&w, "lost", lost);
    if (lost)
        jw_str(&w, "lost_reason", dlock_err_name(lost_rc));
    jw_bool(&w, "max_time_reached", code == EXIT_MAXTIME && lost_rc == DLOCK_EMAXHOLD);
    jw_bool(&w, "terminated", st->killed);
    jw_int(&w, "held_ms", held_ms);
    jw_int(&w, "ttl_ms", c->ttl_ms);
    jw_end(&w);
}

/* After the command exited: release the lock and pick the exit status.
 * *lost_rc is why the lease was lost, DLOCK_OK if it was not. */
static int finish_run(cli *c, run_state *st, int *lost_rc) {
    char sname[96], what[160];
    cli_safe(st->name, sname, sizeof sname);
    int code = WIFSIGNALED(st->status) ? 128 + WTERMSIG(st->status) : WEXITSTATUS(st->status);
    *lost_rc = run_lost_flag() ? run_lost_status() : DLOCK_OK;
    /* After a loss the server may only have been unreachable: our key may
     * still be there. */
    int rc = dlock_release(st->lock);
    if (*lost_rc == DLOCK_EMAXHOLD) {
        /* The lease was still ours: released now (or it ran out after the
         * command was killed). A command that ended by itself meanwhile
         * keeps its own status. */
        c->run.outcome = st->killed ? "max_time" : code == 0 ? "ok" : "failed";
        return st->killed ? EXIT_MAXTIME : code;
    }
    if (*lost_rc == DLOCK_OK && rc == DLOCK_ENOTHELD)
        *lost_rc = DLOCK_ENOTHELD;
    if (*lost_rc == DLOCK_OK && st->killed)
        *lost_rc = DLOCK_ETIMEDOUT; /* terminated: no extension came in time */
    c->run.outcome = code == 0 ? "ok" : "failed";
    if (st->killed) {
        c->run.outcome = "lost";
        return EXIT_LOST;
    }
    if (*lost_rc != DLOCK_OK) {
        c->run.outcome = "lost_after";
        cli_msg("%s ended by itself (status %d), but the lease of '%s' was then found gone: "
                "%s \xe2\x80\x94 it may have run past its lease (was dlock stopped?)",
                st->what, code, sname, run_lost_reason(*lost_rc));
        return EXIT_LOST_AFTER;
    }
    if (rc != DLOCK_OK) {
        snprintf(what, sizeof what, "release '%s' (its lease ends by itself within %" PRId64 " ms)",
                 sname, c->ttl_ms);
        cli_fail(c, rc, what);
    }
    return code;
}

/* ^C on the terminal reached only the command's process group, which had
 * the terminal. Pass it on to the group dlock was started in (dlock
 * included), which the terminal would have signalled without dlock: a
 * calling shell script stops rather than go on with its next command. */
static void pass_on_sigint(cli *c) {
    fflush(NULL);
    dlock_client_free(c->client);
    c->client = NULL;
    signal(SIGINT, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    kill(0, SIGINT);
    raise(SIGINT);
}

/* A multi-lock: DLOCK_NAMES (one name a line) and DLOCK_FENCES (their
 * fences, space-separated), in the lock's (bytewise) order. 0 or -1. */
static int export_names(const dlock_lock *l) {
    int n = dlock_lock_names(l);
    if (n < 2)
        return 0;
    size_t cap = 1, len = 0, flen = 0;
    for (int i = 0; i < n; i++) {
        const char *name;
        dlock_lock_name_at(l, i, &name, NULL);
        cap += strlen(name) + 1;
    }
    char *names = malloc(cap), *fences = malloc((size_t)n * 24 + 1);
    if (names == NULL || fences == NULL) {
        free(names);
        free(fences);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *name;
        int64_t f;
        dlock_lock_name_at(l, i, &name, &f);
        len += (size_t)snprintf(names + len, cap - len, "%s%s", i ? "\n" : "", name);
        flen += (size_t)snprintf(fences + flen, (size_t)n * 24 + 1 - flen, "%s%" PRId64,
                                 i ? " " : "", f);
    }
    int rc = setenv("DLOCK_NAMES", names, 1) != 0 || setenv("DLOCK_FENCES", fences, 1) != 0;
    free(names);
    free(fences);
    return rc ? -1 : 0;
}

/* Runs the command under the lock l (kept alive); returns the exit status. */
static int run_locked(cli *c, run_state *st, char **argv, int64_t interval) {
    char sname[96], what[160], d[32];
    cli_safe(st->name, sname, sizeof sname);
    int64_t t_acquired = now_ms();
    dlock_info info;
    dlock_info_get(st->lock, &info);
    char fence_s[24];
    snprintf(fence_s, sizeof fence_s, "%" PRId64, info.fence);
    /* A multi-lock: its first name (bytewise), whose fence DLOCK_FENCE is. */
    if (setenv("DLOCK_NAME", info.name, 1) != 0 || setenv("DLOCK_TOKEN", info.token, 1) != 0 ||
        setenv("DLOCK_FENCE", fence_s, 1) != 0 || export_names(st->lock) != 0 ||
        run_pipe_init() != 0) {
        cli_msg("cannot prepare to run the command: %s", strerror(errno));
        return EXIT_INTERNAL;
    }
    sigset_t handled, orig;
    run_signals_take(&handled, &orig);
    int rc = dlock_keepalive_start(st->lock, interval, run_on_lost, NULL);
    if (rc != DLOCK_OK) {
        sigprocmask(SIG_SETMASK, &orig, NULL);
        snprintf(what, sizeof what, "keep lock '%s' alive", sname);
        return cli_fail(c, rc, what);
    }
    if (run_start(c, st, argv, &handled, &orig) != 0) {
        if (st->tty >= 0)
            close(st->tty);
        return EXIT_INTERNAL;
    }
    run_supervise(c, st);
    int had_tty = st->tty >= 0;
    if (had_tty) {
        tcsetpgrp(st->tty, getpgrp());
        close(st->tty);
    }
    dlock_keepalive_stop(st->lock);
    int lost_rc;
    int code = finish_run(c, st, &lost_rc);
    run_watchdog_done(st);
    int64_t held_ms = now_ms() - t_acquired;
    c->run.hold_ms = held_ms;
    if (code != EXIT_LOST && code != EXIT_LOST_AFTER && code != EXIT_MAXTIME && c->verbose)
        cli_msg("released '%s' after %s", sname, cli_dur(held_ms, d, sizeof d));
    if (c->json)
        json_summary(c, &info, st, lost_rc, code, held_ms);
    if (had_tty && lost_rc == DLOCK_OK && WIFSIGNALED(st->status) &&
        WTERMSIG(st->status) == SIGINT && !run_was_ignored(SIGINT)) {
        dlock_lock_free(st->lock);
        st->lock = NULL;
        cli_run_metrics(c, code);
        pass_on_sigint(c);
    }
    return code;
}

int cli_run(cli *c, const char *name, char **argv) {
    char sname[96], what[160], cmd[128];
    cli_safe(name, sname, sizeof sname);
    int64_t interval = c->interval_ms ? c->interval_ms : c->ttl_ms / 3;
    if (interval < 1 || interval >= c->ttl_ms) {
        cli_msg("--interval must be at least 1 ms and below --ttl (%" PRId64 " ms); "
                "a --ttl of at least 3 ms is needed",
                c->ttl_ms);
        return EXIT_USAGE;
    }
    dlock_lock *l;
    int64_t t0 = now_ms();
    int rc = cli_take(c, name, &l), code;
    c->run.wait_ms = now_ms() - t0;
    if (rc == DLOCK_EBUSY || rc == DLOCK_ETIMEDOUT) {
        c->run.outcome = "not_acquired";
        code = cli_conflict(c, name, rc, stderr);
        cli_run_metrics(c, code);
        return code;
    }
    if (rc != DLOCK_OK) {
        char lock[300];
        snprintf(what, sizeof what, "acquire %s", cli_what(c, name, lock, sizeof lock));
        code = cli_fail(c, rc, what);
        cli_run_metrics(c, code);
        return code;
    }
    c->run.acquired = 1;
    cli_safe(argv[0], cmd, sizeof cmd);
    snprintf(what, sizeof what, "'%s'", cmd);
    run_state st = {.lock = l, .name = name, .what = what, .pid = -1, .tty = -1,
                    .kill_at = -1, .watchdog = -1, .watchdog_fd = -1,
                    .wd_at = -1};
    schedule(c, interval, &st);
    code = run_locked(c, &st, argv, interval);
    if (st.pid < 0) /* the command never started: give the lock back */
        dlock_release(l);
    dlock_lock_free(st.lock);
    cli_run_metrics(c, code);
    return code;
}
