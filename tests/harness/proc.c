/* proc.c - checks, the process registry, the test timeout and exit cleanup,
 * worker processes and time helpers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "harness.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- checks ------------------------------------------------------------- */

static pid_t g_test_pid; /* process that called th_test_init(), 0 if none */

_Noreturn void th_fail_(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (g_test_pid != 0 && getpid() != g_test_pid)
        fprintf(stderr, " [in child pid %d]", (int)getpid());
    fputc('\n', stderr);
    exit(1);
}

void th_eq_int_(const char *file, int line, const char *ea, const char *eb, long long a,
                long long b)
{
    if (a != b)
        th_fail_(file, line, "TH_EQ_INT(%s, %s) failed: %lld != %lld", ea, eb, a, b);
}

void th_eq_str_(const char *file, int line, const char *ea, const char *eb, const char *a,
                const char *b)
{
    if (a == NULL && b == NULL)
        return;
    if (a != NULL && b != NULL && strcmp(a, b) == 0)
        return;
    th_fail_(file, line, "TH_EQ_STR(%s, %s) failed: %s%s%s != %s%s%s", ea, eb, a ? "\"" : "",
             a ? a : "NULL", a ? "\"" : "", b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
}

/* ---- time --------------------------------------------------------------- */

long long th_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

void th_sleep_ms(int ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- registry ------------------------------------------------------------- */

/* Fixed array of atomics so that the signal handler can read it at any time.
 * A slot goes free (0) -> being written (1) -> live (2); the handler only looks
 * at live slots, and dir is written before the slot becomes live. */
#define TH_REG_MAX 256
#define TH_DIR_MAX 512

struct th_reg {
    atomic_int state;
    atomic_int pid;
    atomic_int owner;
    char dir[TH_DIR_MAX];
};

static struct th_reg g_reg[TH_REG_MAX];

int th__reg_add(pid_t pid, const char *dir)
{
    for (int i = 0; i < TH_REG_MAX; i++) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&g_reg[i].state, &expected, 1))
            continue;
        atomic_store(&g_reg[i].owner, (int)getpid());
        atomic_store(&g_reg[i].pid, (int)pid);
        g_reg[i].dir[0] = '\0';
        if (dir != NULL && strlen(dir) < TH_DIR_MAX)
            memcpy(g_reg[i].dir, dir, strlen(dir) + 1);
        atomic_store(&g_reg[i].state, 2);
        return i;
    }
    fprintf(stderr, "harness: process registry full (%d); pid %d will not be cleaned up\n",
            TH_REG_MAX, (int)pid);
    return -1;
}

void th__reg_set_pid(int slot, pid_t pid)
{
    if (slot >= 0 && slot < TH_REG_MAX)
        atomic_store(&g_reg[slot].pid, (int)pid);
}

void th__reg_del(int slot)
{
    if (slot < 0 || slot >= TH_REG_MAX)
        return;
    atomic_store(&g_reg[slot].pid, 0);
    atomic_store(&g_reg[slot].state, 0);
}

static int reg_find(pid_t pid)
{
    int me = (int)getpid();

    for (int i = 0; i < TH_REG_MAX; i++) {
        if (atomic_load(&g_reg[i].state) == 2 && atomic_load(&g_reg[i].pid) == (int)pid &&
            atomic_load(&g_reg[i].owner) == me)
            return i;
    }
    return -1;
}

/* True if pid is still an unreaped child of this process (so that a pid we
 * reaped elsewhere, and the system reused, is never killed). */
static int is_my_child(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) ==
           0;
}

/* True if slot i is live, owned by this process and selected: `all`, or a
 * plain child (slots with a directory belong to servers). */
static int reg_mine(int i, int me, int all)
{
    return atomic_load(&g_reg[i].state) == 2 && atomic_load(&g_reg[i].owner) == me &&
           (all || g_reg[i].dir[0] == '\0');
}

/* Kills and reaps the registered processes this process owns (all of them,
 * or only plain children), then with `all` removes the registered
 * directories. Async-signal-safe. */
static void reg_cleanup(int all)
{
    int me = (int)getpid();

    for (int i = 0; i < TH_REG_MAX; i++) {
        int pid = atomic_load(&g_reg[i].pid);
        if (reg_mine(i, me, all) && pid > 0 && is_my_child(pid))
            kill(pid, SIGKILL);
    }
    for (int i = 0; i < TH_REG_MAX; i++) {
        int pid = atomic_load(&g_reg[i].pid);
        if (!reg_mine(i, me, all) || pid <= 0)
            continue;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        atomic_store(&g_reg[i].pid, 0);
    }
    if (!all)
        return;
    for (int i = 0; i < TH_REG_MAX; i++) {
        if (reg_mine(i, me, 1) && g_reg[i].dir[0] != '\0')
            th__rm_tree(g_reg[i].dir);
    }
}

/* ---- directory removal (async-signal-safe) -------------------------------- */

struct th_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int rm_entries(int dfd, int depth)
{
    _Alignas(8) char buf[4096];
    int removed = 0;
    long n;

    while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct th_dirent64 *d = (struct th_dirent64 *)(void *)(buf + off);
            const char *name = d->d_name;
            off += d->d_reclen;
            if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
                continue;
            if (unlinkat(dfd, name, 0) == 0) {
                removed++;
                continue;
            }
            if (errno != EISDIR || depth >= 8)
                continue;
            int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                while (rm_entries(sub, depth + 1) > 0 && lseek(sub, 0, SEEK_SET) == 0)
                    ;
                close(sub);
            }
            if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
                removed++;
        }
    }
    return removed;
}

void th__rm_tree(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (dfd >= 0) {
        /* Removing entries while reading may skip some: rescan until a pass
         * removes nothing. */
        for (int pass = 0; pass < 8; pass++) {
            if (rm_entries(dfd, 0) == 0 || lseek(dfd, 0, SEEK_SET) != 0)
                break;
        }
        close(dfd);
    }
    rmdir(dir);
}

/* ---- exit cleanup, timeout, signals ---------------------------------------- */

#define TH_HOOKS_MAX 8
static void (*g_hooks[TH_HOOKS_MAX])(void);
static int g_nhooks;
static pthread_mutex_t g_hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atexit_once = PTHREAD_ONCE_INIT;

static void at_exit_cleanup(void)
{
    /* Children first (they may be using servers), then hooks in reverse
     * order of registration (proxies, servers), then whatever remains. */
    reg_cleanup(0);
    for (int i = g_nhooks - 1; i >= 0; i--)
        g_hooks[i]();
    reg_cleanup(1);
}

static void register_atexit(void)
{
    atexit(at_exit_cleanup);
}

void th__at_cleanup(void (*fn)(void))
{
    pthread_once(&g_atexit_once, register_atexit);
    pthread_mutex_lock(&g_hooks_mu);
    int found = 0;
    for (int i = 0; i < g_nhooks; i++)
        found |= g_hooks[i] == fn;
    if (!found && g_nhooks < TH_HOOKS_MAX)
        g_hooks[g_nhooks++] = fn;
    pthread_mutex_unlock(&g_hooks_mu);
}

static char g_timeout_msg[128];
static size_t g_timeout_len;

static void write_all(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    write_all(g_timeout_msg, g_timeout_len);
    reg_cleanup(1);
    _exit(1);
}

static void on_term(int sig)
{
    static const char msg[] = "harness: terminated by a signal; killing harness processes\n";
    struct sigaction sa;

    write_all(msg, sizeof msg - 1);
    reg_cleanup(1);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    raise(sig);
    _exit(128 + sig);
}

void th_test_init(int timeout_s)
{
    struct sigaction sa;

    g_test_pid = getpid();
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_once(&g_atexit_once, register_atexit);

    int len = snprintf(g_timeout_msg, sizeof g_timeout_msg,
                       "TIMEOUT: test pid %d exceeded %d s; killing harness processes\n",
                       (int)g_test_pid, timeout_s);
    g_timeout_len = len > 0 ? strlen(g_timeout_msg) : 0;

    memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (timeout_s > 0)
        alarm((unsigned)timeout_s);
}

void th__block_signals(sigset_t *old)
{
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

/* ---- processes ------------------------------------------------------------ */

/* fork() for a child that runs harness or test code (no exec). Flushes stdio
 * first so buffered output is not printed twice. */
static pid_t fork_child(void)
{
    pid_t parent = getpid();

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(111);
    } else if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
    }
    return pid;
}

/* Ends a forked child: what the child itself started (servers, proxies,
 * children) is cleaned up as exit() would, but the parent's atexit handlers
 * and stdio state are not run. */
static _Noreturn void child_exit(int rc)
{
    at_exit_cleanup();
    fflush(stdout);
    fflush(stderr);
    _exit(rc == 0 ? 0 : (rc & 0xff) != 0 ? (rc & 0xff) : 1);
}

/* Describes a wait status as "exited with status N" / "killed by signal N". */
static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "wait status 0x%x", st);
}

static void reap_blocking(pid_t pid, int *st)
{
    while (waitpid(pid, st, 0) < 0 && errno == EINTR)
        ;
}

int th_run_workers(int n, int (*fn)(int idx, void *arg), void *arg, int timeout_s)
{
    if (n < 0 || fn == NULL) {
        fprintf(stderr, "harness: th_run_workers: bad arguments (n=%d)\n", n);
        return -1;
    }
    if (n == 0)
        return 0;
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    int *slots = calloc((size_t)n, sizeof *slots);
    if (pids == NULL || slots == NULL) {
        fprintf(stderr, "harness: th_run_workers: out of memory\n");
        free(pids);
        free(slots);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        pid_t pid = fork_child();
        if (pid == 0) {
            /* The parent's bookkeeping is not the child's: free it so that
             * leak checkers (valgrind on the test) see a clean child. */
            free(pids);
            free(slots);
            child_exit(fn(i, arg));
        }
        if (pid < 0) {
            for (int j = 0; j < i; j++) {
                kill(pids[j], SIGKILL);
                reap_blocking(pids[j], NULL);
                th__reg_del(slots[j]);
            }
            free(pids);
            free(slots);
            return -1;
        }
        pids[i] = pid;
        slots[i] = th__reg_add(pid, NULL);
    }

    long long deadline = timeout_s > 0 ? th_now_us() + (long long)timeout_s * 1000000LL : 0;
    int remaining = n, failed = 0, nap_us = 200;
    char what[96];
    while (remaining > 0) {
        for (int i = 0; i < n; i++) {
            int st = 0;
            if (pids[i] == 0)
                continue;
            pid_t r = waitpid(pids[i], &st, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR))
                continue;
            if (r < 0) {
                fprintf(stderr, "harness: worker %d (pid %d): waitpid: %s\n", i, (int)pids[i],
                        strerror(errno));
                failed++;
            } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                describe_status(st, what, sizeof what);
                fprintf(stderr, "harness: worker %d (pid %d) %s\n", i, (int)pids[i], what);
                failed++;
            }
            th__reg_del(slots[i]);
            pids[i] = 0;
            remaining--;
        }
        if (remaining == 0)
            break;
        if (deadline != 0 && th_now_us() >= deadline) {
            for (int i = 0; i < n; i++) {
                if (pids[i] == 0)
                    continue;
                kill(pids[i], SIGKILL);
                reap_blocking(pids[i], NULL);
                fprintf(stderr, "harness: worker %d (pid %d) timed out after %d s, killed\n", i,
                        (int)pids[i], timeout_s);
                th__reg_del(slots[i]);
                failed++;
            }
            break;
        }
        struct timespec ts = {0, (long)nap_us * 1000L};
        nanosleep(&ts, NULL);
        if (nap_us < 5000)
            nap_us *= 2;
    }
    free(pids);
    free(slots);
    return failed;
}

int th_tempdir(char *out, size_t n)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int len = snprintf(out, n, "%s/dlock-th-XXXXXX", base);
    if (len < 0 || (size_t)len >= n) {
        fprintf(stderr, "harness: th_tempdir: TMPDIR path too long: %s\n", base);
        return -1;
    }
    if (mkdtemp(out) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", out, strerror(errno));
        return -1;
    }
    pthread_once(&g_atexit_once, register_atexit);
    if (th__reg_add(0, out) < 0) {
        fprintf(stderr, "harness: th_tempdir: registry full\n");
        th__rm_tree(out);
        return -1;
    }
    return 0;
}

pid_t th_spawn(int (*fn)(void *arg), void *arg)
{
    if (fn == NULL) {
        fprintf(stderr, "harness: th_spawn: fn is NULL\n");
        return -1;
    }
    pid_t pid = fork_child();
    if (pid == 0)
        child_exit(fn(arg));
    if (pid > 0)
        th__reg_add(pid, NULL);
    return pid;
}

int th_wait(pid_t pid, int timeout_ms)
{
    long long deadline = timeout_ms >= 0 ? th_now_us() + (long long)timeout_ms * 1000LL : 0;
    int nap_us = 200;

    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid) {
            th__reg_del(reg_find(pid));
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
            return -1;
        }
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "harness: th_wait(%d): %s\n", (int)pid, strerror(errno));
            return -1;
        }
        if (r == 0 && th_now_us() >= deadline) {
            fprintf(stderr, "harness: th_wait(%d): still running after %d ms\n", (int)pid,
                    timeout_ms);
            return -1;
        }
        if (r == 0) {
            struct timespec ts = {0, (long)nap_us * 1000L};
            nanosleep(&ts, NULL);
            if (nap_us < 5000)
                nap_us *= 2;
        }
    }
}
