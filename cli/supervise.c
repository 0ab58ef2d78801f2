/* supervise.c - the command's process under `dlock run`: starting it,
 * signals, and stopping it before its lease can end.
 *
 * Signal handlers only write the signal number to a self-pipe; the lost-lock
 * callback, which runs on the keepalive thread, sets an atomic flag and
 * writes a byte. Everything else happens in the main thread, in
 * run_supervise(): forwarding signals to the command's process group,
 * reaping it, and shutting it down.
 *
 * The shutdown is scheduled from the lease, not from a loss report: with V
 * the end of the lease's local validity (which every successful extension
 * moves on), the command's group gets SIGTERM at V - margin - grace and
 * SIGKILL at V - margin. So when extensions keep failing, the command is
 * dead before the lease can end on the server (the local validity already
 * allows for clock drift). If the lock is found lost (its key gone or
 * taken), the group gets SIGTERM at once and SIGKILL --kill-after later.
 * When --max-time is reached (the keepalive reports DLOCK_EMAXHOLD and
 * stops extending), likewise, but SIGKILL comes no later than margin
 * before the end of the lease left.
 *
 * If dlock itself dies, the command dies too: the command's first process
 * has PR_SET_PDEATHSIG(SIGKILL), and a small watchdog process, which holds
 * the read end of a pipe only dlock writes to, SIGKILLs the command's whole
 * process group when the pipe reports end-of-file without dlock's "done".
 * If dlock is stopped (SIGSTOP, a debugger, a frozen cgroup) or hangs,
 * nothing extends the lease and nothing carries out the schedule above, so
 * dlock also hands the watchdog a deadline, renewed as the lease moves on:
 * margin/2 after dlock's own SIGKILL is due, which is still margin/2 before
 * the lease's validity ends. Past it, the watchdog SIGKILLs the group.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

/* Signals passed on to the command's process group. */
static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFWD (sizeof fwd_signals / sizeof fwd_signals[0])
#define LOST_BYTE 0 /* written by the lost callback; signals write their number */

/* What dlock writes to the watchdog: one int64_t each (atomic pipe
 * writes): a deadline (> 0, CLOCK_BOOTTIME ms, which runs on while the
 * machine sleeps, as the lease does on the server), WD_NONE or WD_DONE. */
#define WD_NONE 0   /* no deadline (again) */
#define WD_DONE (-1) /* dlock ends normally: exit without killing */
#define WD_EXIT_DEADLINE 3 /* the watchdog's exit status after a deadline kill */

static int self_pipe[2] = {-1, -1};
static atomic_int lost_flag;
static atomic_int lost_status;

int run_lost_flag(void) {
    return atomic_load(&lost_flag);
}

int run_lost_status(void) {
    return atomic_load(&lost_status);
}

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(self_pipe[1], &b, 1); /* full pipe: a wake-up is already queued */
    (void)r;
    errno = saved;
}

/* Keepalive thread: only async-signal-safe work here. */
void run_on_lost(dlock_lock *l, int status, void *ud) {
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

int run_pipe_init(void) {
    return pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t boot_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *run_lost_reason(int status) {
    switch (status) {
    case DLOCK_ENOTHELD:
        return "its key is gone or carries another token (deleted, expired or taken)";
    case DLOCK_ETIMEDOUT:
        return "the lease ran out before an extension succeeded (server unreachable?)";
    case DLOCK_EMAXHOLD:
        return "it was held for --max-time";
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
    /* A peer that closed must give EPIPE, not kill the tool. libdlock's
     * sockets (TLS included) and doctor's are written with MSG_NOSIGNAL;
     * this covers every other write. */
    sigaction(SIGPIPE, &ign, NULL);
}

int run_was_ignored(int sig) {
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
        if (!run_was_ignored(fwd_signals[i]))
            sigaction(fwd_signals[i], &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGTTOU, &sa, NULL);
}

void run_signals_take(sigset_t *handled, sigset_t *orig) {
    sigemptyset(handled);
    for (size_t i = 0; i < NFWD; i++)
        sigaddset(handled, fwd_signals[i]);
    sigaddset(handled, SIGCHLD);
    sigprocmask(SIG_BLOCK, handled, orig);
    set_handlers();
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
static _Noreturn void child(char **argv, pid_t parent, const sigset_t *orig_mask,
                            const sigset_t *handled, int go_fd, int err_fd) {
    setpgid(0, 0);
    /* Die with dlock; if dlock died before this call, nothing will signal
     * us: the parent is then no longer the one that forked us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(EXIT_INTERNAL);
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

/* The watchdog (a forked process, in a process group of its own so that a
 * signal to dlock's group does not reach it): reads dlock's messages on fd
 * (WD_*) and SIGKILLs the command's group on end-of-file (dlock died) or
 * once the last deadline it was given has passed. Only async-signal-safe
 * calls (dlock has threads). */
static _Noreturn void watchdog(int fd, pid_t group) {
    setpgid(0, 0);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (int i = 3; i < 1024; i++) /* dlock's sockets and pipes */
        if (i != fd)
            close(i);
    int64_t deadline = WD_NONE;
    for (;;) {
        int timeout = -1;
        if (deadline != WD_NONE) {
            int64_t left = deadline - boot_ms();
            if (left <= 0) {
                kill(-group, SIGKILL);
                _exit(WD_EXIT_DEADLINE);
            }
            timeout = left > 60000 ? 60000 : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout) <= 0)
            continue; /* the deadline (or a spurious failure): look again */
        int64_t msg;
        ssize_t n = read(fd, &msg, sizeof msg);
        if (n == 0) {
            kill(-group, SIGKILL);
            _exit(0);
        }
        if (n == (ssize_t)sizeof msg && msg == WD_DONE)
            _exit(0);
        if (n == (ssize_t)sizeof msg)
            deadline = msg;
    }
}

static void start_watchdog(run_state *st) {
    int wd[2];
    st->watchdog = -1;
    st->watchdog_fd = -1;
    if (pipe2(wd, O_CLOEXEC) != 0)
        return; /* PR_SET_PDEATHSIG still covers the command itself */
    pid_t pid = fork();
    if (pid == 0) {
        close(wd[1]);
        watchdog(wd[0], st->pid);
    }
    close(wd[0]);
    if (pid < 0) {
        close(wd[1]);
        return;
    }
    /* dlock never waits on its watchdog: a full pipe (which a live
     * watchdog never lets happen) loses one message. */
    fcntl(wd[1], F_SETFL, O_NONBLOCK);
    st->watchdog = pid;
    st->watchdog_fd = wd[1];
    st->wd_at = -1;
}

static void watchdog_send(run_state *st, int64_t msg) {
    ssize_t r = write(st->watchdog_fd, &msg, sizeof msg);
    (void)r; /* EPIPE: it is gone already (reaped in run_watchdog_done) */
}

/* The watchdog's deadline: at (monotonic ms, as dlock's own schedule), or
 * -1 for none. Sent when it changes. */
static void watchdog_arm(run_state *st, int64_t at) {
    if (st->watchdog < 0 || at == st->wd_at)
        return;
    st->wd_at = at;
    int64_t msg = at < 0 ? WD_NONE : boot_ms() + (at - now_ms());
    watchdog_send(st, msg > 0 ? msg : 1);
}

/* Whether the watchdog has ended, killing the command at its deadline
 * (dlock was stopped or hung past it); reaps it if it has ended. */
static int watchdog_fired(run_state *st) {
    int ws;
    if (st->watchdog < 0 || waitpid(st->watchdog, &ws, WNOHANG) != st->watchdog)
        return 0;
    st->watchdog = -1;
    close(st->watchdog_fd);
    return WIFEXITED(ws) && WEXITSTATUS(ws) == WD_EXIT_DEADLINE;
}

void run_watchdog_done(run_state *st) {
    if (st->watchdog < 0)
        return;
    watchdog_send(st, WD_DONE);
    close(st->watchdog_fd);
    while (waitpid(st->watchdog, NULL, 0) < 0 && errno == EINTR) {
    }
    st->watchdog = -1;
}

int run_start(cli *c, run_state *st, char **argv, const sigset_t *handled, const sigset_t *orig) {
    (void)c;
    st->tty = foreground_tty();
    int go[2], errp[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        cli_msg("cannot run %s: pipe: %s", st->what, strerror(errno));
        sigprocmask(SIG_SETMASK, orig, NULL);
        return -1;
    }
    pid_t parent = getpid();
    st->pid = fork();
    if (st->pid < 0) {
        cli_msg("cannot run %s: fork: %s", st->what, strerror(errno));
        sigprocmask(SIG_SETMASK, orig, NULL);
        return -1;
    }
    if (st->pid == 0) {
        close(go[1]);
        close(errp[0]);
        child(argv, parent, orig, handled, go[0], errp[1]);
    }
    setpgid(st->pid, st->pid); /* also done by the child: no race either way */
    if (st->tty >= 0 && tcsetpgrp(st->tty, st->pid) != 0) {
        close(st->tty);
        st->tty = -1;
    }
    close(go[0]);
    close(errp[1]);
    start_watchdog(st); /* before the command runs: it covers it from the start */
    close(go[1]);       /* the child may exec now */
    /* Unblock what we handle even if dlock inherited it blocked: the
     * self-pipe must see SIGCHLD. */
    sigprocmask(SIG_SETMASK, orig, NULL);
    sigprocmask(SIG_UNBLOCK, handled, NULL);

    int exec_errno = 0;
    ssize_t r;
    while ((r = read(errp[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    close(errp[0]);
    if (r == (ssize_t)sizeof exec_errno) {
        cli_msg("cannot run %s: %s", st->what, strerror(exec_errno));
        if (exec_errno == ENOENT && argv[1] == NULL && strpbrk(argv[0], " \t;&|<>$`'\"(") != NULL)
            cli_msg("to run a shell command, use: dlock run %s -c '...'", st->name);
    }
    return 0;
}

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

/* When the lease's local validity ends, by the monotonic clock (ms), held
 * or not (after DLOCK_EMAXHOLD the lease still runs until then); -1 if
 * unknown. */
static int64_t lease_end(const run_state *st) {
    dlock_info info;
    if (dlock_info_get(st->lock, &info) != DLOCK_OK)
        return -1;
    /* expires_at is the validity on the wall clock; 1 ms for rounding. */
    return now_ms() + (info.expires_at - wall_ms()) - 1;
}

/* --max-time reached: SIGTERM now, SIGKILL --kill-after later, but margin
 * before the lease left runs out at the latest. */
static void max_time_now(cli *c, run_state *st) {
    char sname[96], d[32], d2[32];
    int64_t now = now_ms(), kill_at = now + c->kill_after_ms, end = lease_end(st);
    if (end >= 0 && end - st->margin_ms < kill_at)
        kill_at = end - st->margin_ms;
    st->killed = 1;
    cli_safe(st->name, sname, sizeof sname);
    cli_dur(c->max_time_ms, d, sizeof d);
    if (kill_at <= now) {
        cli_msg("%s held lock '%s' for --max-time (%s) â killing its process group "
                "%ld (SIGKILL)", st->what, sname, d, (long)st->pid);
        kill(-st->pid, SIGKILL);
        st->kill_at = -1;
        return;
    }
    if (!st->lease_term) {
        cli_msg("%s held lock '%s' for --max-time (%s) â sent SIGTERM to its process "
                "group %ld, SIGKILL follows in %s", st->what, sname, d, (long)st->pid,
                cli_dur(kill_at - now, d2, sizeof d2));
        kill(-st->pid, SIGTERM);
        kill(-st->pid, SIGCONT);
    }
    st->kill_at = kill_at;
}

/* The keepalive found the lock lost: SIGTERM now, SIGKILL --kill-after
 * later (the key is gone: the lease no longer bounds anything). */
static void lost_now(cli *c, run_state *st) {
    char sname[96], d[32];
    int status = atomic_load(&lost_status);
    st->lost_seen = 1;
    if (st->lease_kill)
        return; /* already SIGKILLed, and said why */
    if (status == DLOCK_EMAXHOLD) {
        max_time_now(c, st);
        return;
    }
    st->killed = 1;
    cli_safe(st->name, sname, sizeof sname);
    if (c->kill_after_ms == 0 || st->lease_term) {
        cli_msg("lost lock '%s' while %s was running: %s \xe2\x80\x94 killing its process "
                "group %ld (SIGKILL)",
                sname, st->what, run_lost_reason(status), (long)st->pid);
        kill(-st->pid, SIGKILL);
        st->kill_at = -1;
        return;
    }
    cli_msg("lost lock '%s' while %s was running: %s \xe2\x80\x94 sent SIGTERM to its process "
            "group %ld, SIGKILL follows in %s",
            sname, st->what, run_lost_reason(status), (long)st->pid,
            cli_dur(c->kill_after_ms, d, sizeof d));
    kill(-st->pid, SIGTERM);
    kill(-st->pid, SIGCONT);
    st->kill_at = now_ms() + c->kill_after_ms;
}

/* When the lease's local validity ends, by the monotonic clock (ms), or -1
 * once the lock is not held. Every successful extension moves it on. */
static int64_t valid_until(const run_state *st) {
    return dlock_held(st->lock) ? lease_end(st) : -1;
}

/* The watchdog's deadline for dlock's SIGKILL schedule: margin/2 after
 * the SIGKILL due at the lease's end (vu, -1: none) or after a loss or
 * --max-time (st->kill_at, -1: none), whichever comes first; -1 if none. */
static int64_t watchdog_deadline(const run_state *st, int64_t vu) {
    int64_t half = st->margin_ms / 2, at = vu >= 0 ? vu - st->margin_ms + half : -1;
    if (st->kill_at >= 0 && (at < 0 || st->kill_at + half < at))
        at = st->kill_at + half;
    return at;
}

/* Acts on the lease's schedule and renews the watchdog's deadline;
 * returns the poll timeout until the next step (ms, -1: none). */
static int lease_step(run_state *st) {
    int64_t vu = valid_until(st), now = now_ms(), next = -1;
    char sname[96], d[32], d2[32];
    if (vu < 0 && !st->lost_seen && !run_lost_flag()) {
        /* Not held by the clock, the loss not reported yet: the lease may
         * end any moment. */
        vu = now + st->margin_ms;
    }
    if (vu >= 0) {
        int64_t term_at = vu - st->margin_ms - st->grace_ms, kill_at = vu - st->margin_ms;
        if (now >= kill_at) {
            if (!st->lease_term) /* else the SIGTERM message said it */
                cli_msg("the lease of '%s' could not be extended and ends in %s \xe2\x80\x94 "
                        "killing %s (process group %ld, SIGKILL)",
                        cli_safe(st->name, sname, sizeof sname), cli_dur(vu - now, d, sizeof d),
                        st->what, (long)st->pid);
            kill(-st->pid, SIGKILL);
            st->lease_term = st->lease_kill = st->killed = 1;
            return 50; /* wait for the exit; check again shortly */
        }
        if (now >= term_at && !st->lease_term) {
            cli_msg("the lease of '%s' could not be extended and ends in %s \xe2\x80\x94 sent "
                    "SIGTERM to %s (process group %ld), SIGKILL follows in %s",
                    cli_safe(st->name, sname, sizeof sname), cli_dur(vu - now, d, sizeof d),
                    st->what, (long)st->pid, cli_dur(kill_at - now, d2, sizeof d2));
            kill(-st->pid, SIGTERM);
            kill(-st->pid, SIGCONT);
            st->lease_term = st->killed = 1;
        }
        next = st->lease_term ? kill_at : term_at;
    }
    if (st->kill_at >= 0) {
        if (now >= st->kill_at) {
            kill(-st->pid, SIGKILL);
            st->kill_at = -1;
        } else if (next < 0 || st->kill_at < next) {
            next = st->kill_at;
        }
    }
    watchdog_arm(st, watchdog_deadline(st, vu));
    /* Look again at least every refresh_ms: the deadline moves on with
     * every extension, long before dlock's own next step is due. */
    if (st->wd_at >= 0 && (next < 0 || now + st->refresh_ms < next))
        next = now + st->refresh_ms;
    if (next < 0)
        return -1;
    int64_t left = next - now_ms();
    return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* The watchdog killed the command: dlock did not renew its deadline in time
 * (stopped or hung), so the lease was not extended either. */
static void stopped_kill(run_state *st) {
    char sname[96];
    st->lease_term = st->lease_kill = st->killed = 1;
    cli_msg("dlock was stopped (or hung) until the lease of '%s' was about to end: its "
            "watchdog killed %s (process group %ld, SIGKILL)",
            cli_safe(st->name, sname, sizeof sname), st->what, (long)st->pid);
}

/* Reaps the command if it has exited (or stopped). */
static void reap(run_state *st) {
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
            watchdog_arm(st, -1); /* the group may be gone: never signal it again */
            if (watchdog_fired(st) && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL)
                stopped_kill(st);
        } else if (w < 0) {
            /* ECHILD: cannot happen for our own child; do not hang. */
            cli_msg("waitpid: %s", strerror(errno));
            st->status = EXIT_INTERNAL << 8;
            st->exited = 1;
        }
        return;
    }
}

void run_supervise(cli *c, run_state *st) {
    for (;;) {
        /* Reap first: a command that ended by itself (seen late because
         * dlock was stopped) is not one that dlock terminated. */
        reap(st);
        if (st->exited)
            return;
        if (run_lost_flag() && !st->lost_seen)
            lost_now(c, st);
        int timeout = lease_step(st);
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
    }
}
