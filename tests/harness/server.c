/* server.c - private redis-server processes for tests: start on a free
 * loopback port, kill, stop, pause, restart, and an admin connection. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "harness.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TH_PATH_MAX 512
#define TH_DIR_SIZE (TH_PATH_MAX - 32) /* room for "/redis.sock" after it */
#define TH_START_TIMEOUT_MS 10000
#define TH_STOP_TIMEOUT_MS 5000
#define TH_ADMIN_TIMEOUT_MS 2000
#define TH_PORT_ATTEMPTS 10

struct th_server {
    struct th_server *next; /* list of live servers, for the exit cleanup */
    pid_t owner;            /* process that started it */
    pid_t pid;              /* running redis-server, 0 when not running */
    int paused;
    int port;
    int reg; /* slot in the process registry */
    int with_unix;
    int nextra;
    char **extra;
    redisContext *admin; /* cached connection for th_server_cmd */
    pid_t admin_owner;   /* process that opened it (children reconnect) */
    char port_str[16];
    char url[48];
    char dir[TH_DIR_SIZE];
    char log[TH_PATH_MAX];
    char sock[TH_PATH_MAX];
};

static th_server *g_servers;
static pthread_mutex_t g_servers_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_no_debug_cmd; /* the server rejected --enable-debug-command */

enum { ST_OK, ST_RETRY_PORT, ST_RETRY_NODEBUG, ST_FAIL };

/* ---- helpers ---------------------------------------------------------------- */

static void reap(pid_t pid, int *st)
{
    while (waitpid(pid, st, 0) < 0 && errno == EINTR)
        ;
}

static const char *find_redis_server(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("DLOCK_REDIS_SERVER");

    if (env != NULL && env[0] != '\0') {
        if (access(env, X_OK) != 0) {
            fprintf(stderr, "harness: DLOCK_REDIS_SERVER=%s: %s\n", env, strerror(errno));
            return NULL;
        }
        return env;
    }
    if (path[0] != '\0')
        return path;
    const char *pathenv = getenv("PATH");
    if (pathenv != NULL) {
        for (const char *p = pathenv; *p != '\0';) {
            size_t len = strcspn(p, ":");
            int n = len == 0 ? snprintf(path, sizeof path, "./redis-server")
                             : snprintf(path, sizeof path, "%.*s/redis-server", (int)len, p);
            if (n > 0 && (size_t)n < sizeof path && access(path, X_OK) == 0)
                return path;
            p += len;
            if (*p == ':')
                p++;
        }
    }
    snprintf(path, sizeof path, "/usr/bin/redis-server");
    if (access(path, X_OK) == 0)
        return path;
    path[0] = '\0';
    fprintf(stderr, "harness: redis-server not found in PATH or /usr/bin; "
                    "set DLOCK_REDIS_SERVER\n");
    return NULL;
}

static int wants_cluster(const char *const *extra)
{
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (strcmp(extra[i], "--cluster-enabled") == 0 && extra[i + 1] != NULL &&
            strcasecmp(extra[i + 1], "yes") == 0)
            return 1;
    }
    return 0;
}

/* Reads what the log gained since offset `from` (at most its last 64 KiB).
 * Returns a malloc'd NUL-terminated string or NULL. */
static char *read_log(const char *path, off_t from)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0) {
        if (st.st_size - from > 65536)
            from = st.st_size - 65536;
        if (from < 0)
            from = 0;
        size_t want = st.st_size > from ? (size_t)(st.st_size - from) : 0;
        buf = malloc(want + 1);
        ssize_t n = buf != NULL ? pread(fd, buf, want, from) : -1;
        if (buf != NULL)
            buf[n > 0 ? n : 0] = '\0';
    }
    close(fd);
    return buf;
}

void th_server_dump_log(const th_server *s, int lines)
{
    if (s == NULL)
        return;
    char *text = read_log(s->log, 0);
    if (text == NULL) {
        fprintf(stderr, "harness: no log at %s\n", s->log);
        return;
    }
    size_t len = strlen(text);
    size_t start = len;
    int seen = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && start != len && ++seen >= lines)
            break;
        start--;
    }
    fprintf(stderr, "harness: --- last lines of %s ---\n", s->log);
    for (char *line = text + start; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        fprintf(stderr, "  | %.*s\n", (int)n, line);
        line += n;
        if (*line == '\n')
            line++;
    }
    fprintf(stderr, "harness: --- end of log ---\n");
    free(text);
}

/* ---- starting ------------------------------------------------------------------ */

static const char **build_argv(th_server *s, const char *bin, int debug)
{
    const char **a = calloc((size_t)s->nextra + 32, sizeof *a);
    int n = 0;

    if (a == NULL)
        return NULL;
    a[n++] = bin;
    a[n++] = "--port";
    a[n++] = s->port_str;
    a[n++] = "--bind";
    a[n++] = "127.0.0.1";
    a[n++] = "--dir";
    a[n++] = s->dir;
    a[n++] = "--save";
    a[n++] = "";
    a[n++] = "--appendonly";
    a[n++] = "no";
    a[n++] = "--daemonize";
    a[n++] = "no";
    a[n++] = "--logfile";
    a[n++] = s->log;
    if (debug) {
        a[n++] = "--enable-debug-command";
        a[n++] = "yes";
    }
    if (s->with_unix) {
        a[n++] = "--unixsocket";
        a[n++] = s->sock;
        a[n++] = "--unixsocketperm";
        a[n++] = "700";
    }
    for (int i = 0; i < s->nextra; i++)
        a[n++] = s->extra[i];
    a[n] = NULL;
    return a;
}

/* fork + exec. Between the two only async-signal-safe calls: the test may
 * have other threads (the fault proxy). */
static pid_t spawn(th_server *s, const char *bin, const char **argv)
{
    int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    long maxfd = sysconf(_SC_OPEN_MAX);
    pid_t parent = getpid();
    pid_t pid = -1;

    if (logfd < 0 || nullfd < 0) {
        fprintf(stderr, "harness: open %s: %s\n", s->log, strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid == 0) {
        static const int sigs[] = {SIGALRM, SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD};
        struct sigaction dfl;
        sigset_t none;

        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            sigaction(sigs[i], &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0); /* keep terminal signals (Ctrl-C) away from it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(nullfd, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        /* Inherited sockets (proxy connections, hiredis contexts) would keep
         * connections open after the test closes them. */
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
            for (long fd = 3; fd < maxfd; fd++)
                close((int)fd);
        }
        execv(bin, (char *const *)argv);
        static const char msg[] = "harness: exec redis-server failed\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
            _exit(127);
        _exit(127);
    }
    if (pid < 0)
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
out:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    return pid;
}

/* Polls until the server answers PING and INFO names our pid (so a server
 * of another test that won a port race is not mistaken for ours).
 * Returns 0 when ready, 1 if the process exited (*status set), -1 on timeout. */
static int wait_ready(th_server *s, int timeout_ms, int *status)
{
    long long deadline = th_now_us() + (long long)timeout_ms * 1000LL;
    struct timeval tv = {0, 200000};
    char want[48];

    snprintf(want, sizeof want, "process_id:%d\r", (int)s->pid);
    for (;;) {
        pid_t r = waitpid(s->pid, status, WNOHANG);
        if (r == s->pid)
            return 1;
        int ready = 0;
        redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
        if (c != NULL && c->err == 0 && redisSetTimeout(c, (struct timeval){1, 0}) == REDIS_OK) {
            redisReply *pong = redisCommand(c, "PING");
            if (pong != NULL && pong->type == REDIS_REPLY_STATUS &&
                strcmp(pong->str, "PONG") == 0) {
                redisReply *info = redisCommand(c, "INFO server");
                ready = info != NULL && info->type == REDIS_REPLY_STRING &&
                        strstr(info->str, want) != NULL;
                freeReplyObject(info);
            }
            freeReplyObject(pong);
        }
        redisFree(c);
        if (ready)
            return 0;
        if (th_now_us() >= deadline)
            return -1;
        th_sleep_ms(10);
    }
}

static void drop_admin(th_server *s)
{
    if (s->admin != NULL) {
        redisFree(s->admin);
        s->admin = NULL;
    }
}

static void mark_stopped(th_server *s)
{
    s->pid = 0;
    s->paused = 0;
    th__reg_set_pid(s->reg, 0);
    drop_admin(s);
}

static int start_attempt(th_server *s, int port)
{
    const char *bin = find_redis_server();
    struct stat st;
    int status = 0;

    if (bin == NULL)
        return ST_FAIL;
    s->port = port;
    snprintf(s->port_str, sizeof s->port_str, "%d", port);
    snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", port);
    off_t log_from = stat(s->log, &st) == 0 ? st.st_size : 0;
    const char **argv = build_argv(s, bin, !atomic_load(&g_no_debug_cmd));
    if (argv == NULL) {
        fprintf(stderr, "harness: out of memory\n");
        return ST_FAIL;
    }
    pid_t pid = spawn(s, bin, argv);
    free(argv);
    if (pid < 0)
        return ST_FAIL;
    s->pid = pid;
    s->paused = 0;
    th__reg_set_pid(s->reg, pid);

    int rc = wait_ready(s, TH_START_TIMEOUT_MS, &status);
    if (rc == 0)
        return ST_OK;
    if (rc < 0) {
        fprintf(stderr, "harness: redis-server (pid %d, port %d) did not answer PING in %d ms\n",
                (int)pid, port, TH_START_TIMEOUT_MS);
        kill(pid, SIGKILL);
        reap(pid, NULL);
        mark_stopped(s);
        return ST_FAIL;
    }
    mark_stopped(s);
    char *text = read_log(s->log, log_from);
    int verdict = ST_FAIL;
    if (!atomic_load(&g_no_debug_cmd) && text != NULL &&
        strstr(text, "enable-debug-command") != NULL) {
        atomic_store(&g_no_debug_cmd, 1);
        verdict = ST_RETRY_NODEBUG;
    } else if (text != NULL && (strstr(text, "Address already in use") != NULL ||
                                strstr(text, "Could not create server TCP") != NULL)) {
        verdict = ST_RETRY_PORT;
    } else if (WIFEXITED(status)) {
        fprintf(stderr, "harness: redis-server on port %d exited with status %d during startup\n",
                port, WEXITSTATUS(status));
    } else {
        fprintf(stderr, "harness: redis-server on port %d died during startup (signal %d)\n",
                port, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    free(text);
    return verdict;
}

static void server_destroy(th_server *s)
{
    int mine = s->owner == getpid();

    if (mine && s->pid > 0) {
        kill(s->pid, SIGKILL);
        reap(s->pid, NULL);
    }
    drop_admin(s);
    if (mine) {
        th__reg_del(s->reg);
        if (s->dir[0] != '\0')
            th__rm_tree(s->dir);
    }
    for (int i = 0; i < s->nextra; i++)
        free(s->extra[i]);
    free(s->extra);
    free(s);
}

static void server_cleanup_all(void)
{
    for (;;) {
        th_server *s;
        pthread_mutex_lock(&g_servers_mu);
        for (s = g_servers; s != NULL && s->owner != getpid(); s = s->next)
            ;
        pthread_mutex_unlock(&g_servers_mu);
        if (s == NULL)
            break;
        th_server_free(s);
    }
}

static th_server *server_new(const char *const *extra, int with_unix)
{
    th_server *s = calloc(1, sizeof *s);
    const char *base = getenv("TMPDIR");

    if (s == NULL)
        goto oom;
    s->owner = getpid();
    s->reg = -1;
    s->with_unix = with_unix;
    while (extra != NULL && extra[s->nextra] != NULL)
        s->nextra++;
    s->extra = calloc((size_t)s->nextra + 1, sizeof *s->extra);
    if (s->extra == NULL)
        goto oom;
    for (int i = 0; i < s->nextra; i++) {
        if ((s->extra[i] = strdup(extra[i])) == NULL)
            goto oom;
    }
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(s->dir, sizeof s->dir, "%s/dlock-th-XXXXXX", base);
    if (n < 0 || (size_t)n + 16 >= sizeof s->dir) {
        fprintf(stderr, "harness: TMPDIR path too long: %s\n", base);
        goto fail;
    }
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", s->dir, strerror(errno));
        s->dir[0] = '\0';
        goto fail;
    }
    s->reg = th__reg_add(0, s->dir);
    snprintf(s->log, sizeof s->log, "%s/redis.log", s->dir);
    snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
    if (with_unix && strlen(s->sock) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        fprintf(stderr, "harness: unix socket path too long (%zu bytes): %s\n", strlen(s->sock),
                s->sock);
        goto fail;
    }
    return s;
oom:
    fprintf(stderr, "harness: out of memory\n");
fail:
    if (s != NULL)
        server_destroy(s);
    return NULL;
}

static th_server *server_start(const char *const *extra, int with_unix)
{
    th__at_cleanup(server_cleanup_all);
    th_server *s = server_new(extra, with_unix);
    int need_bus = wants_cluster(extra);
    int rc = ST_FAIL;

    if (s == NULL)
        return NULL;
    for (int attempt = 0; attempt < TH_PORT_ATTEMPTS; attempt++) {
        int port = th_free_port(need_bus);
        if (port < 0)
            break;
        rc = start_attempt(s, port);
        if (rc == ST_RETRY_NODEBUG)
            rc = start_attempt(s, port);
        if (rc != ST_RETRY_PORT)
            break;
    }
    if (rc != ST_OK) {
        if (rc == ST_RETRY_PORT)
            fprintf(stderr, "harness: redis-server could not bind a port in %d attempts\n",
                    TH_PORT_ATTEMPTS);
        fprintf(stderr, "harness: th_server_start failed\n");
        th_server_dump_log(s, 20);
        server_destroy(s);
        return NULL;
    }
    pthread_mutex_lock(&g_servers_mu);
    s->next = g_servers;
    g_servers = s;
    pthread_mutex_unlock(&g_servers_mu);
    return s;
}

th_server *th_server_start(const char *const *extra_args)
{
    return server_start(extra_args, 0);
}

th_server *th_server_start_unix(const char *const *extra_args)
{
    return server_start(extra_args, 1);
}

/* ---- accessors ------------------------------------------------------------------ */

int th_server_port(const th_server *s)
{
    return s != NULL ? s->port : -1;
}

const char *th_server_url(const th_server *s)
{
    return s != NULL ? s->url : NULL;
}

const char *th_server_dir(const th_server *s)
{
    return s != NULL ? s->dir : NULL;
}

const char *th_server_unix_path(const th_server *s)
{
    return s != NULL && s->with_unix ? s->sock : NULL;
}

pid_t th_server_pid(const th_server *s)
{
    return s != NULL && s->pid > 0 ? s->pid : -1;
}

/* ---- process control ------------------------------------------------------------ */

static int check_running(const th_server *s, const char *what, int need_owner)
{
    if (s == NULL) {
        fprintf(stderr, "harness: %s: server is NULL\n", what);
        return -1;
    }
    if (need_owner && s->owner != getpid()) {
        fprintf(stderr, "harness: %s: server on port %d belongs to pid %d, not to pid %d\n", what,
                s->port, (int)s->owner, (int)getpid());
        return -1;
    }
    if (s->pid <= 0) {
        fprintf(stderr, "harness: %s: server on port %d is not running\n", what, s->port);
        return -1;
    }
    return 0;
}

int th_server_kill(th_server *s)
{
    if (check_running(s, "th_server_kill", 1) != 0)
        return -1;
    kill(s->pid, SIGKILL);
    reap(s->pid, NULL);
    mark_stopped(s);
    return 0;
}

int th_server_stop(th_server *s)
{
    if (check_running(s, "th_server_stop", 1) != 0)
        return -1;
    kill(s->pid, SIGTERM);
    if (s->paused)
        kill(s->pid, SIGCONT);
    long long deadline = th_now_us() + TH_STOP_TIMEOUT_MS * 1000LL;
    for (;;) {
        pid_t r = waitpid(s->pid, NULL, WNOHANG);
        if (r == s->pid || (r < 0 && errno != EINTR))
            break;
        if (th_now_us() >= deadline) {
            fprintf(stderr, "harness: redis-server pid %d ignored SIGTERM for %d ms; SIGKILL\n",
                    (int)s->pid, TH_STOP_TIMEOUT_MS);
            kill(s->pid, SIGKILL);
            reap(s->pid, NULL);
            break;
        }
        th_sleep_ms(5);
    }
    mark_stopped(s);
    return 0;
}

int th_server_pause(th_server *s)
{
    int st = 0;

    if (check_running(s, "th_server_pause", 0) != 0)
        return -1;
    if (s->paused)
        return 0; /* a second SIGSTOP would not be reported to waitpid */
    if (kill(s->pid, SIGSTOP) != 0) {
        fprintf(stderr, "harness: th_server_pause: kill: %s\n", strerror(errno));
        return -1;
    }
    if (s->owner == getpid()) {
        /* Wait until it is really stopped. */
        while (waitpid(s->pid, &st, WUNTRACED) < 0 && errno == EINTR)
            ;
        if (!WIFSTOPPED(st)) {
            fprintf(stderr, "harness: th_server_pause: redis-server pid %d died\n", (int)s->pid);
            mark_stopped(s);
            return -1;
        }
    }
    s->paused = 1;
    return 0;
}

int th_server_resume(th_server *s)
{
    if (check_running(s, "th_server_resume", 0) != 0)
        return -1;
    if (kill(s->pid, SIGCONT) != 0) {
        fprintf(stderr, "harness: th_server_resume: kill: %s\n", strerror(errno));
        return -1;
    }
    s->paused = 0;
    return 0;
}

int th_server_restart(th_server *s)
{
    if (s == NULL || s->owner != getpid()) {
        fprintf(stderr, "harness: th_server_restart: server is NULL or not ours\n");
        return -1;
    }
    if (s->pid > 0) {
        fprintf(stderr, "harness: th_server_restart: pid %d still running; kill or stop it first\n",
                (int)s->pid);
        return -1;
    }
    int rc = ST_FAIL;
    for (int attempt = 0; attempt < 5; attempt++) {
        rc = start_attempt(s, s->port);
        if (rc == ST_RETRY_NODEBUG)
            rc = start_attempt(s, s->port);
        if (rc != ST_RETRY_PORT)
            break;
        th_sleep_ms(200); /* someone else holds the port: wait a little */
    }
    if (rc != ST_OK) {
        fprintf(stderr, "harness: th_server_restart on port %d failed\n", s->port);
        th_server_dump_log(s, 20);
        return -1;
    }
    return 0;
}

void th_server_free(th_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&g_servers_mu);
    for (th_server **pp = &g_servers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_servers_mu);
    server_destroy(s);
}

/* ---- commands -------------------------------------------------------------------- */

redisContext *th_connect(int port, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (c == NULL) {
        fprintf(stderr, "harness: connect 127.0.0.1:%d: out of memory\n", port);
        return NULL;
    }
    if (c->err == 0 && redisSetTimeout(c, tv) != REDIS_OK && c->err == 0) {
        c->err = REDIS_ERR_IO;
        snprintf(c->errstr, sizeof c->errstr, "cannot set timeout");
    }
    if (c->err != 0) {
        fprintf(stderr, "harness: connect 127.0.0.1:%d: %s\n", port, c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* A cached connection with nothing outstanding that polls readable has seen
 * EOF or an error (the server went away). */
static int conn_broken(redisContext *c)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};

    return c->err != 0 || poll(&pfd, 1, 0) != 0;
}

static redisReply *server_vcmd(th_server *s, const char *fmt, va_list ap)
{
    if (s == NULL || fmt == NULL) {
        fprintf(stderr, "harness: th_server_cmd: NULL argument\n");
        return NULL;
    }
    if (s->admin != NULL && (s->admin_owner != getpid() || conn_broken(s->admin)))
        drop_admin(s);
    if (s->admin == NULL) {
        s->admin = th_connect(s->port, TH_ADMIN_TIMEOUT_MS);
        if (s->admin == NULL)
            return NULL;
        s->admin_owner = getpid();
    }
    redisReply *r = redisvCommand(s->admin, fmt, ap);
    if (r == NULL) {
        fprintf(stderr, "harness: th_server_cmd(\"%s\") on port %d: %s\n", fmt, s->port,
                s->admin->errstr);
        drop_admin(s);
    }
    return r;
}

redisReply *th_server_cmd(th_server *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    redisReply *r = server_vcmd(s, fmt, ap);
    va_end(ap);
    return r;
}

long long th_server_int(th_server *s, const char *fmt, ...)
{
    va_list ap;
    long long v = -1;

    va_start(ap, fmt);
    redisReply *r = server_vcmd(s, fmt, ap);
    va_end(ap);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "harness: th_server_int(\"%s\"): error reply: %s\n", fmt, r->str);
    else
        fprintf(stderr, "harness: th_server_int(\"%s\"): reply type %d is not an integer\n", fmt,
                r->type);
    freeReplyObject(r);
    return v;
}
