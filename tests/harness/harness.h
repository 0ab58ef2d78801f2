/* harness.h - test harness for dlock: checks, real redis-server processes,
 * worker processes with timeouts, and a TCP fault proxy.
 *
 * Every test is its own process. A typical test:
 *
 *     int main(void) {
 *         th_test_init(30);                       // alarm + atexit cleanup
 *         th_server *s = th_server_start(NULL);   // private redis-server
 *         TH_CHECK(s != NULL);
 *         TH_EQ_INT(th_server_int(s, "INCR %s", "k"), 1);
 *         th_server_free(s);
 *         return 0;
 *     }
 *
 * Conventions:
 *   - Functions report failures on stderr ("harness: ...") and return an error
 *     value (NULL, -1); only the TH_ check macros end the test (exit(1)).
 *   - Every process and temporary directory the harness creates is recorded in
 *     a signal-safe registry together with the pid of the process that created
 *     it. On exit (atexit), on the th_test_init() timeout and on SIGTERM/SIGINT/
 *     SIGHUP, a process kills (SIGKILL) and removes only what it created itself:
 *     a forked worker that fails a check does not stop its parent's servers.
 *   - Servers and workers also get PR_SET_PDEATHSIG(SIGKILL), so they die if
 *     the test process is killed outright. Linux ties that signal to the
 *     *thread* that forked, so start servers and workers from a thread that
 *     lives as long as they should (normally the main thread).
 *   - Handles (th_server, th_proxy) are used by one thread at a time, like a
 *     hiredis context. Do not use a th_proxy from a forked child: its thread
 *     exists only in the process that started it.
 *   - All sockets are on 127.0.0.1.
 */
#ifndef DLOCK_TEST_HARNESS_H
#define DLOCK_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* ---- checks ------------------------------------------------------------ */

/* Each check prints "file:line: what failed: values" to stderr and calls
 * exit(1), which runs the atexit cleanup (in a forked child: only of what that
 * child created). Arguments are evaluated exactly once. */
#define TH_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            th_fail_(__FILE__, __LINE__, "TH_CHECK(%s) failed", #cond);                  \
    } while (0)
#define TH_EQ_INT(a, b) th_eq_int_(__FILE__, __LINE__, #a, #b, (long long)(a), (long long)(b))
#define TH_EQ_STR(a, b) th_eq_str_(__FILE__, __LINE__, #a, #b, (a), (b))
/* Unconditional failure with a printf-style message. */
#define TH_FAIL(...) th_fail_(__FILE__, __LINE__, __VA_ARGS__)

_Noreturn void th_fail_(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void th_eq_int_(const char *file, int line, const char *ea, const char *eb, long long a,
                long long b);
/* NULL equals NULL only. */
void th_eq_str_(const char *file, int line, const char *ea, const char *eb, const char *a,
                const char *b);

/* Call first in main(). Makes stdout line-buffered, registers the atexit
 * cleanup and handlers for SIGTERM/SIGINT/SIGHUP, and if timeout_s > 0 arms
 * alarm(timeout_s): on expiry it prints "TIMEOUT" to stderr, SIGKILLs every
 * server and child this process started, removes their temp dirs and
 * _exit(1)s. Keep timeout_s below the ctest TIMEOUT so this cleanup runs. */
void th_test_init(int timeout_s);

/* ---- time ---------------------------------------------------------------- */

long long th_now_us(void); /* CLOCK_MONOTONIC in microseconds */
void th_sleep_ms(int ms);  /* sleeps the full time even if signals interrupt */

/* ---- host names ------------------------------------------------------------ */

/* For a test that defines its own getaddrinfo (so the library's calls reach
 * it) to answer made-up names with chosen addresses: real is the libc
 * function (dlsym(RTLD_NEXT, "getaddrinfo")). Looks up each literal
 * address ips[0..n) for service (TCP) and chains the answers in that
 * order into *res (freed by freeaddrinfo, as glibc frees a chain). Returns
 * 0 or the EAI_* of the first that failed (*res NULL then). */
struct addrinfo;
typedef int (*th_gai_fn)(const char *, const char *, const struct addrinfo *,
                         struct addrinfo **);
int th_gai_chain(th_gai_fn real, const char *const *ips, int n, const char *service,
                 struct addrinfo **res);

/* ---- redis-server -------------------------------------------------------- */

typedef struct th_server th_server;

/* Starts redis-server ($DLOCK_REDIS_SERVER if set, else the first one in
 * PATH, else /usr/bin/redis-server) on a free 127.0.0.1 port with a private
 * temporary directory ($TMPDIR or /tmp, "dlock-th-XXXXXX") and no persistence:
 *   --port N --bind 127.0.0.1 --dir D --save "" --appendonly no
 *   --daemonize no --logfile D/redis.log [--enable-debug-command yes]
 * followed by extra_args (NULL-terminated array, may be NULL), which override
 * the defaults above, e.g. {"--cluster-enabled", "yes", NULL} (then a port
 * whose bus port N+10000 is free too is chosen) or {"--appendonly", "yes",
 * NULL}. Do not pass --port, --dir or --daemonize. --enable-debug-command is
 * added only if the server accepts it. Retries with another port if the
 * server cannot bind. Blocks until the server answers PING (at most 10 s per
 * attempt) and checks that it is our process answering. Returns NULL on
 * failure after printing the tail of the server log. */
th_server *th_server_start(const char *const *extra_args);
/* Same, and also listens on the unix socket <dir>/redis.sock (perm 700). */
th_server *th_server_start_unix(const char *const *extra_args);

int th_server_port(const th_server *s);
const char *th_server_url(const th_server *s);       /* "redis://127.0.0.1:PORT" */
const char *th_server_dir(const th_server *s);       /* the private directory */
const char *th_server_unix_path(const th_server *s); /* NULL unless _start_unix */
pid_t th_server_pid(const th_server *s);             /* -1 when not running */
/* Prints the last `lines` lines of the server's log to stderr. */
void th_server_dump_log(const th_server *s, int lines);

/* Process control. All return 0 on success, -1 on error (message printed).
 * kill: SIGKILL and reap. stop: SIGTERM (and SIGCONT if paused), reap, SIGKILL
 * after 5 s. pause: SIGSTOP, returns once the process is stopped. resume:
 * SIGCONT. restart: after kill/stop, starts the server again with the same
 * port, directory and arguments and waits for PING; the data is gone unless
 * persistence was enabled through extra args. kill/stop/restart only work in
 * the process that started the server. */
int th_server_kill(th_server *s);
int th_server_stop(th_server *s);
int th_server_pause(th_server *s);
int th_server_resume(th_server *s);
int th_server_restart(th_server *s);
/* Kills the server if running, removes its directory and frees s. NULL is
 * ignored. Called from a process other than the one that started it (a forked
 * child), it only releases this process's memory and leaves the server alone.
 * Servers not freed are freed by the atexit cleanup. */
void th_server_free(th_server *s);

/* Runs one command (hiredis format, e.g. "SET %s %b") over a cached admin
 * connection with a 2 s connect and command timeout; reconnects if the
 * cached connection broke (server restarted, forked child). Returns the reply,
 * which may be an error reply; the caller frees it with freeReplyObject().
 * NULL on connect or I/O failure or timeout (message printed). */
redisReply *th_server_cmd(th_server *s, const char *fmt, ...);
/* Same, for commands with an integer reply: the integer, or -1 (message
 * printed) if the command failed or the reply was not an integer. */
long long th_server_int(th_server *s, const char *fmt, ...);

/* A free 127.0.0.1 port below the kernel's ephemeral range (ports.c:
 * outgoing connections never take it), bindable when picked, for a server
 * or a server option such as --tls-port. With need_bus, port + 10000 (the
 * default cluster bus) must be free too, and below the range as well. -1
 * on failure. Another test may still take it first: retry on "in use". */
int th_free_port(int need_bus);

/* Connects a new hiredis context to 127.0.0.1:port with the given connect
 * and command timeout. NULL on failure (message printed). Free with
 * redisFree(). */
redisContext *th_connect(int port, int timeout_ms);

/* Makes a private temporary directory ($TMPDIR or /tmp, "dlock-th-XXXXXX")
 * into out (n >= 64 bytes), removed with everything in it by the exit
 * cleanup (also on the timeout and on signals). Returns 0, or -1 (message
 * printed). */
int th_tempdir(char *out, size_t n);

/* ---- processes ----------------------------------------------------------- */

/* Forks n children; child idx runs fn(idx, arg) and _exit()s with its return
 * value (nonzero values that are multiples of 256 become 1; stdio is flushed
 * first). Waits for all of them for at most timeout_s seconds (<= 0: no
 * limit), then SIGKILLs the stragglers. Returns the number of children that
 * failed (nonzero exit, killed by a signal, or timed out; each is reported on
 * stderr), or -1 if fork failed (children already started are killed). */
int th_run_workers(int n, int (*fn)(int idx, void *arg), void *arg, int timeout_s);

/* Forks one child that runs fn(arg) and _exit()s with its return value. The
 * child is registered: it is killed by the cleanup if still running. Returns
 * its pid, or -1. */
pid_t th_spawn(int (*fn)(void *arg), void *arg);
/* Waits for a child from th_spawn for at most timeout_ms (< 0: no limit).
 * Returns its exit status (0..255), 128 + signal number if a signal killed
 * it, or -1 on timeout (the child keeps running; kill it with kill(2) and
 * th_wait(pid, -1)) or error. */
int th_wait(pid_t pid, int timeout_ms);

/* ---- fault proxy --------------------------------------------------------- */

/* A TCP proxy on a free 127.0.0.1 port that forwards to 127.0.0.1:target_port
 * from a background thread of the calling process, with faults switchable at
 * any time. */
enum th_fault {
    TH_PASS,      /* forward immediately */
    TH_LATENCY,   /* delay every chunk, both directions, by param_ms; order kept */
    TH_STALL,     /* keep connections, forward nothing; afterwards buffered data
                     (in the proxy and in kernel buffers) is delivered */
    TH_DROP,      /* one-shot: close every current connection with FIN (both
                     sides); the mode then becomes TH_PASS */
    TH_RESET,     /* one-shot: close every current connection with RST
                     (SO_LINGER 0, both sides); the mode then becomes TH_PASS */
    TH_BLACKHOLE, /* accept and keep connections, read and discard all data in
                     both directions, never answer */
    TH_DRIP       /* server->client data is written one byte per write(), one
                     every param_ms (1 ms if param_ms <= 0) */
};

typedef struct th_proxy th_proxy;

/* Returns NULL on failure (message printed). */
th_proxy *th_proxy_start(int target_port);
int th_proxy_port(const th_proxy *p);
const char *th_proxy_url(const th_proxy *p); /* "redis://127.0.0.1:PORT" */
/* Switches the fault mode. Returns once the proxy thread has applied it (for
 * TH_DROP/TH_RESET: once the connections are closed), so anything the test
 * does afterwards sees the new mode. Thread-safe. */
void th_proxy_set(th_proxy *p, enum th_fault mode, int param_ms);
/* Number of client connections accepted so far. */
long th_proxy_connections(th_proxy *p);
/* Stops the thread, closes every socket, frees p. NULL is ignored. Proxies
 * not stopped are stopped by the atexit cleanup. */
void th_proxy_stop(th_proxy *p);

#endif /* DLOCK_TEST_HARNESS_H */
