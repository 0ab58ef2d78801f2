/* run.c - `dlock run NAME -- COMMAND...`: hold a lock while a command runs.
 *
 * Sequence: take the lock; export DLOCK_NAME/DLOCK_TOKEN/DLOCK_FENCE (while
 * the process is still single-threaded); install signal handlers that write
 * the signal number to a self-pipe; start the keepalive thread with those
 * signals blocked (so they are always handled by the main thread); fork the
 * command into its own process group (and hand it the terminal if dlock has
 * it); then sleep in poll() on the self-pipe. The lost-lock callback, which
 * runs on the keepalive thread, only sets an atomic flag and writes a byte.
 * Everything else happens in the main thread: forwarding signals to the
 * command's process group, SIGTERM and later SIGKILL after a lost lock,
 * reaping the command, releasing the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Signals passed on to the command's process group. */
static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFWD (sizeof fwd_signals / sizeof fwd_signals[0])
#define LOST_BYTE 0 /* written by the lost callback; signals write their number */

static int self_pipe[2] = {-1, -1};
static atomic_int lost_flag;
static atomic_int lost_status;

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(self_pipe[1], &b, 1); /* full pipe: a wake-up is already queued */
    (void)r;
    errno = saved;
}

/* Keepalive thread: only async-signal-safe work here. */
static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    (void)ud;
    atomic_store(&lost_status, status);
    atomic_store(&lost_flag, 1);
    int saved = errno;
    unsigned char b = LOST_BYTE;
    ssize_t r = write(self_pipe[1], &b, 1);
    (void)r;
    errno = saved;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *lost_reason(int status) {
    switch (status) {
    case DLOCK_ENOTHELD:
        return "its key is gone or carries another token (deleted, expired or taken)";
    case DLOCK_ETIMEDOUT:
        return "the lease ran out before an extension succeeded (server unreachable?)";
    default:
        return dlock_strerror(status);
    }
}

/* Every signal whose disposition dlock changes, with the disposition it
 * found at start-up: the command gets those back before exec, so running
 * under dlock does not change what it inherits (e.g. SIGINT ignored in a
 * background job of a non-interactive shell). */
static const int touched[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                              SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGTTOU};
#define NTOUCHED (sizeof touched / sizeof touched[0])
static struct sigaction orig_action[NTOUCHED];

void cli_signals_init(void) {
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    sigemptyset(&ign.sa_mask);
    ign.sa_handler = SIG_IGN;
    for (size_t i = 0; i < NTOUCHED; i++)
        sigaction(touched[i], NULL, &orig_action[i]);
    /* libdlock writes to sockets with write(2): a server that closed the
     * connection must give EPIPE, not kill the tool. */
    sigaction(SIGPIPE, &ign, NULL);
}

static int was_ignored(int sig) {
    for (size_t i = 0; i < NTOUCHED; i++)
        if (touched[i] == sig)
            return orig_action[i].sa_handler == SIG_IGN;
    return 0;
}

/* Installs the self-pipe handlers for the forwarded signals (except those
 * that were ignored when dlock started: they stay ignored, as a shell keeps
 * them) and SIGCHLD, and ignores SIGTTOU (tcsetpgrp and messages while the
 * command owns the terminal). */
static void set_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NFWD; i++)
        if (!was_ignored(fwd_signals[i]))
            sigaction(fwd_signals[i], &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGTTOU, &sa, NULL);
}

static void sigset_handled(sigset_t *set) {
    sigemptyset(set);
    for (size_t i = 0; i < NFWD; i++)
        sigaddset(set, fwd_signals[i]);
    sigaddset(set, SIGCHLD);
}

/* In the child: back to the dispositions dlock started with. */
static void restore_handlers(void) {
    for (size_t i = 0; i < NTOUCHED; i++)
        sigaction(touched[i], &orig_action[i], NULL);
}

/* The terminal, if dlock runs in its foreground: the command gets it. */
static int foreground_tty(void) {
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (tcgetpgrp(fd) != getpgrp()) {
        close(fd);
        return -1;
    }
    return fd;
}

/* In the forked child: only async-signal-safe calls until exec. */
static _Noreturn void child(char **argv, const sigset_t *orig_mask, const sigset_t *handled,
                            int go_fd, int err_fd) {
    setpgid(0, 0);
    restore_handlers();
    /* The mask dlock inherited, but with the signals it forwards unblocked:
     * they are meant to reach the command. */
    sigprocmask(SIG_SETMASK, orig_mask, NULL);
    sigprocmask(SIG_UNBLOCK, handled, NULL);
    unsigned char b;
    while (read(go_fd, &b, 1) < 0 && errno == EINTR) {
    }
    close(go_fd);
    execvp(argv[0], argv);
    int e = errno;
    ssize_t r = write(err_fd, &e, sizeof e);
    (void)r;
    _exit(e == ENOENT || e == ENOTDIR ? EXIT_NOTFOUND : EXIT_NOEXEC);
}

typedef struct run_state {
    pid_t pid;
    int tty;            /* terminal fd handed to the command, or -1 */
    int status;         /* waitpid status once exited */
    int exited;
    int lost_seen;      /* the lost flag was acted upon */
    int64_t kill_at;    /* when to SIGKILL, or -1 */
} run_state;

static void handle_stop(run_state *st) {
    /* The command was stopped (^Z on its terminal): stop dlock too so the
     * shell sees a stopped job, and continue the command when continued. */
    if (st->tty < 0)
        return;
    tcsetpgrp(st->tty, getpgrp());
    raise(SIGSTOP);
    tcsetpgrp(st->tty, st->pid);
    kill(-st->pid, SIGCONT);
}

static void lost_now(cli *c, run_state *st, const char *name, const char *what) {
    char sname[96], d[32];
    int status = atomic_load(&lost_status);
    st->lost_seen = 1;
    if (c->kill_after_ms == 0) {
        cli_msg("lost lock '%s' while %s was running: %s \xe2\x80\x94 killing its process "
                "group %ld (SIGKILL)",
                cli_safe(name, sname, sizeof sname), what, lost_reason(status), (long)st->pid);
        kill(-st->pid, SIGKILL);
        return;
    }
    cli_msg("lost lock '%s' while %s was running: %s \xe2\x80\x94 sent SIGTERM to its process "
            "group %ld, SIGKILL follows in %s",
            cli_safe(name, sname, sizeof sname), what, lost_reason(status), (long)st->pid,
            cli_dur(c->kill_after_ms, d, sizeof d));
    kill(-st->pid, SIGTERM);
    kill(-st->pid, SIGCONT);
    st->kill_at = now_ms() + c->kill_after_ms;
}

/* Poll the self-pipe until the command has exited. */
static void supervise(cli *c, run_state *st, const char *name, const char *what) {
    while (!st->exited) {
        int timeout = -1;
        if (st->kill_at >= 0) {
            int64_t left = st->kill_at - now_ms();
            timeout = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
        }
        struct pollfd p = {.fd = self_pipe[0], .events = POLLIN};
        if (poll(&p, 1, timeout) < 0 && errno != EINTR) {
            cli_msg("poll: %s", strerror(errno)); /* should not happen; do not spin */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        unsigned char buf[64];
        ssize_t n;
        while ((n = read(self_pipe[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                int sig = buf[i];
                if (sig != LOST_BYTE && sig != SIGCHLD)
                    kill(-st->pid, sig); /* forward to the whole group */
            }
        }
        if (atomic_load(&lost_flag) && !st->lost_seen)
            lost_now(c, st, name, what);
        if (st->kill_at >= 0 && now_ms() >= st->kill_at) {
            kill(-st->pid, SIGKILL);
            st->kill_at = -1;
        }
        for (;;) {
            int ws;
            pid_t w = waitpid(st->pid, &ws, WNOHANG | (st->tty >= 0 ? WUNTRACED : 0));
            if (w < 0 && errno == EINTR)
                continue;
            if (w == st->pid && WIFSTOPPED(ws)) {
                handle_stop(st);
                continue;
            }
            if (w == st->pid) {
                st->status = ws;
                st->exited = 1;
            } else if (w < 0) {
                /* ECHILD: cannot happen for our own child; do not hang. */
                cli_msg("waitpid: %s", strerror(errno));
                st->status = EXIT_INTERNAL << 8;
                st->exited = 1;
            }
            break;
        }
    }
}

static void json_summary(cli *c, const char *name, const dlock_info *info, const run_state *st,
                         int lost, int code, int64_t held_ms) {
    jw w;
    jw_begin(&w, stderr);
    jw_str(&w, "name", name);
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
    jw_bool(&w, "lost", lost);
    if (lost)
        jw_str(&w, "lost_reason", dlock_err_name(atomic_load(&lost_status)));
    jw_int(&w, "held_ms", held_ms);
    jw_int(&w, "ttl_ms", c->ttl_ms);
    jw_end(&w);
}

int cli_run(cli *c, const char *name, char **argv) {
    char sname[96], what[160];
    cli_safe(name, sname, sizeof sname);
    int64_t interval = c->interval_ms ? c->interval_ms : c->ttl_ms / 3;
    if (interval < 1 || interval >= c->ttl_ms) {
        cli_msg("--interval must be at least 1 ms and below --ttl (%" PRId64 " ms); "
                "a --ttl of at least 3 ms is needed",
                c->ttl_ms);
        return EXIT_USAGE;
    }

    dlock_lock *l;
    int rc = cli_take(c, name, &l);
    if (rc == DLOCK_EBUSY || rc == DLOCK_ETIMEDOUT)
        return cli_conflict(c, name, rc, stderr);
    if (rc != DLOCK_OK) {
        snprintf(what, sizeof what, "acquire '%s'", sname);
        return cli_fail(c, rc, what);
    }
    int64_t t_acquired = now_ms();
    dlock_info info;
    dlock_info_get(l, &info);
    char fence_s[24];
    snprintf(fence_s, sizeof fence_s, "%" PRId64, info.fence);
    int code = EXIT_INTERNAL;
    if (setenv("DLOCK_NAME", name, 1) != 0 || setenv("DLOCK_TOKEN", info.token, 1) != 0 ||
        setenv("DLOCK_FENCE", fence_s, 1) != 0 || pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        cli_msg("cannot prepare to run the command: %s", strerror(errno));
        dlock_release(l);
        dlock_lock_free(l);
        return EXIT_INTERNAL;
    }

    sigset_t handled, orig;
    sigset_handled(&handled);
    sigprocmask(SIG_BLOCK, &handled, &orig);
    set_handlers();
    /* The keepalive thread inherits the blocked mask: signals go to us. */
    rc = dlock_keepalive_start(l, c->interval_ms, on_lost, NULL);
    if (rc != DLOCK_OK) {
        sigprocmask(SIG_SETMASK, &orig, NULL);
        snprintf(what, sizeof what, "keep lock '%s' alive", sname);
        code = cli_fail(c, rc, what);
        dlock_release(l);
        dlock_lock_free(l);
        return code;
    }

    char cmd[128];
    cli_safe(argv[0], cmd, sizeof cmd);
    snprintf(what, sizeof what, "'%s'", cmd);
    run_state st = {.pid = -1, .tty = foreground_tty(), .kill_at = -1};
    int go[2], errp[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        cli_msg("cannot run %s: pipe: %s", what, strerror(errno));
        goto out_release;
    }
    st.pid = fork();
    if (st.pid < 0) {
        cli_msg("cannot run %s: fork: %s", what, strerror(errno));
        goto out_release;
    }
    if (st.pid == 0) {
        close(go[1]);
        close(errp[0]);
        child(argv, &orig, &handled, go[0], errp[1]);
    }
    setpgid(st.pid, st.pid); /* also done by the child: no race either way */
    if (st.tty >= 0 && tcsetpgrp(st.tty, st.pid) != 0) {
        close(st.tty);
        st.tty = -1;
    }
    close(go[0]);
    close(go[1]); /* the child may exec now */
    close(errp[1]);
    /* Unblock what we handle even if dlock inherited it blocked: the
     * self-pipe must see SIGCHLD. */
    sigprocmask(SIG_SETMASK, &orig, NULL);
    sigprocmask(SIG_UNBLOCK, &handled, NULL);

    int exec_errno = 0;
    ssize_t r;
    while ((r = read(errp[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    close(errp[0]);
    if (r == (ssize_t)sizeof exec_errno)
        cli_msg("cannot run %s: %s", what, strerror(exec_errno));

    supervise(c, &st, name, what);
    int had_tty = st.tty >= 0;
    if (had_tty) {
        tcsetpgrp(st.tty, getpgrp());
        close(st.tty);
    }

    int lost = atomic_load(&lost_flag);
    dlock_keepalive_stop(l);
    int64_t held_ms = now_ms() - t_acquired;
    if (WIFSIGNALED(st.status))
        code = 128 + WTERMSIG(st.status);
    else
        code = WEXITSTATUS(st.status);
    if (lost) {
        if (!st.lost_seen)
            cli_msg("lost lock '%s' while %s was running: %s", sname, what,
                    lost_reason(atomic_load(&lost_status)));
        /* If the server was only unreachable, our key may still be there. */
        dlock_release(l);
        code = EXIT_LOST;
    } else {
        rc = dlock_release(l);
        if (rc == DLOCK_ENOTHELD) {
            cli_msg("lock '%s' was no longer held when %s ended (lease expired unnoticed?)",
                    sname, what);
            lost = 1;
            code = EXIT_LOST;
        } else if (rc != DLOCK_OK) {
            snprintf(what, sizeof what, "release '%s' (its lease ends by itself within %" PRId64
                                        " ms)",
                     sname, c->ttl_ms);
            cli_fail(c, rc, what);
        } else if (c->verbose) {
            char d[32];
            cli_msg("released '%s' after %s", sname, cli_dur(held_ms, d, sizeof d));
        }
    }
    if (c->json)
        json_summary(c, name, &info, &st, lost, code, held_ms);
    dlock_lock_free(l);
    if (had_tty && !lost && WIFSIGNALED(st.status) && WTERMSIG(st.status) == SIGINT &&
        !was_ignored(SIGINT)) {
        /* ^C on the terminal reached only the command's process group,
         * which had the terminal. Pass it on to the group dlock was started
         * in (dlock included), which the terminal would have signalled
         * without dlock: a calling shell script stops rather than go on
         * with its next command. */
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
    return code;

out_release:
    sigprocmask(SIG_SETMASK, &orig, NULL);
    if (st.tty >= 0)
        close(st.tty);
    dlock_release(l);
    dlock_lock_free(l);
    return EXIT_INTERNAL;
}
