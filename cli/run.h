/* run.h - pieces of `dlock run` shared by run.c (the subcommand: acquire,
 * start, release, exit status) and supervise.c (the command's process,
 * signals, and the shutdown scheduled from the lease). */
#ifndef DLOCK_CLI_RUN_H
#define DLOCK_CLI_RUN_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"

typedef struct run_state {
    dlock_lock *lock;
    const char *name;   /* lock name */
    const char *what;   /* the command, quoted, for messages */
    pid_t pid;          /* the command (leader of its own process group) */
    int tty;            /* terminal fd handed to the command, or -1 */
    int status;         /* waitpid status once exited */
    int exited;
    int lost_seen;      /* the keepalive's lost report was acted upon */
    int lease_term;     /* SIGTERM sent because the lease was about to end */
    int lease_kill;     /* SIGKILL sent for the same reason */
    int killed;         /* dlock sent the command SIGTERM or SIGKILL itself */
    int64_t kill_at;    /* after a lost report: when to SIGKILL, or -1 */
    int64_t margin_ms;  /* SIGKILL this long before the lease's validity ends */
    int64_t grace_ms;   /* SIGTERM this long before that SIGKILL */
    pid_t watchdog;     /* kills the command's group if dlock dies, or is stopped
                           past the deadline it was given; -1: none */
    int watchdog_fd;    /* write end of its pipe */
    int64_t wd_at;      /* the deadline it was given (monotonic ms), -1: none */
    int64_t refresh_ms; /* renew that deadline at least this often */
} run_state;

/* The lost-lock flag and status, set by the keepalive thread. */
int run_lost_flag(void);
int run_lost_status(void);
/* The keepalive's lost-lock callback. */
void run_on_lost(dlock_lock *l, int status, void *ud);
/* Why a lock was lost, for messages. */
const char *run_lost_reason(int status);
/* 1 if sig was ignored when dlock started. */
int run_was_ignored(int sig);

/* Sets up the self-pipe; 0 or -1 (errno set). */
int run_pipe_init(void);
/* Blocks the handled signals (old mask in *orig, the handled set in
 * *handled) and installs the handlers. */
void run_signals_take(sigset_t *handled, sigset_t *orig);
/* Forks the command (st->pid), hands it the terminal, starts the watchdog,
 * and reports an exec failure. Returns 0, or -1 after a message. Restores
 * the signal mask either way. */
int run_start(cli *c, run_state *st, char **argv, const sigset_t *handled, const sigset_t *orig);
/* Waits for the command to exit, forwarding signals, and terminates it when
 * the lease is about to end or was lost. */
void run_supervise(cli *c, run_state *st);
/* Tells the watchdog that dlock ends normally, and reaps it. */
void run_watchdog_done(run_state *st);

#endif
