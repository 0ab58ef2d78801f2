/* fuzz_reply.c - libFuzzer target for every place that interprets a server
 * reply: the reply reader with dlock's limits (src/net/conn.c), and through the
 * public API the acquire / wait / release / extend / inspect interpreters
 * (src/lock/replies.c and the state machines, src/quorum/fan.c) and the
 * Cluster and Sentinel topology parsers (cluster_map.c, sentinel_ask.c).
 *
 * A fake server lives in this process: a thread serving three loopback TCP
 * listeners and a unix socket. Every connection it accepts gets the fuzz
 * bytes as the server's whole output, then a FIN; whatever the client sends
 * is read and dropped. So every reply the client reads, on every connection
 * and every retry, comes from the input; the FIN makes a truncated reply end
 * the call at once instead of at a timeout.
 *
 * Input: byte 0 picks the scenario, the rest is the server's output.
 *   0  net level: 1..4 commands on one pipe (src/net/pipe.c, driven as
 *      the engine drives it; AUTH and SELECT first when byte 1 says so);
 *      every reply tree is walked with dl_elem and dl_reply_int and
 *      checked against the DL_REPLY_* limits
 *   1  try_acquire, then held/info/extend/release on success
 *   2  inspect and is_locked
 *   3  release_token and extend_token
 *   4  dlock_wait (push waiting: subscribe, acquire, wake message, cancel, refresh)
 *   5  the same on a Redlock set of three servers
 *   6  redis-cluster:// (CLUSTER SLOTS, MOVED, ASK, TRYAGAIN)
 *   7  redis-sentinel:// (get-master-addr-by-name, ROLE)
 * It abort()s when a call returns a status outside its documented set, when
 * the detail string is unterminated or longer than the buffer, or when the
 * URL's password shows up in it (unless the server itself sent those bytes).
 *
 * The client must never reach anything but the fake server, whatever host
 * names the replies (MOVED, CLUSTER SLOTS, Sentinel) contain: connect() and
 * getaddrinfo() are interposed below: only this process's listeners are
 * reachable, and names are never resolved through DNS.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "../tests/harness/pipe_drive.h" /* pipe.h and a poll loop over it */
#include "dlock.h"
#include "client.h"

#define MAX_INPUT 65536
#define PASSWORD "FuzzPw7Canary"
#define NTCP 3
#define MAXCONN 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_reply: requirement failed: %s (line %d)\n", \
                    #cond, __LINE__);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* ---- the fake server ---- */

static int g_tcp_fd[NTCP], g_tcp_port[NTCP];
static int g_unix_fd, g_direct_fd; /* thread's unix listener; main thread's own */
static char g_unix_path[108], g_direct_path[108], g_dir[64];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char g_out[MAX_INPUT];
static size_t g_out_len;

static int listen_tcp(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0)
        abort();
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int listen_unix(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0)
        abort();
    return fd;
}

/* Give a fresh connection the whole output, then FIN. */
static void serve(int fd) {
    unsigned char buf[MAX_INPUT];
    size_t n;
    pthread_mutex_lock(&g_mu);
    n = g_out_len;
    memcpy(buf, g_out, n);
    pthread_mutex_unlock(&g_mu);
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
}

static void *server_main(void *arg) {
    (void)arg;
    struct pollfd p[NTCP + 1 + MAXCONN];
    int conns[MAXCONN], nconn = 0;
    for (;;) {
        int np = 0;
        for (int i = 0; i < NTCP; i++)
            p[np++] = (struct pollfd){.fd = g_tcp_fd[i], .events = POLLIN};
        p[np++] = (struct pollfd){.fd = g_unix_fd, .events = POLLIN};
        for (int i = 0; i < nconn; i++)
            p[np++] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        if (poll(p, (nfds_t)np, -1) < 0)
            continue;
        /* Drain what clients send; close on their EOF. */
        int kept = 0;
        for (int k = NTCP + 1; k < np; k++) {
            int fd = p[k].fd;
            if (p[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                char junk[4096];
                ssize_t r = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    close(fd);
                    continue;
                }
            }
            conns[kept++] = fd;
        }
        nconn = kept;
        for (int i = 0; i < NTCP + 1; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            serve(fd);
            if (nconn < MAXCONN)
                conns[nconn++] = fd;
            else
                close(fd);
        }
    }
    return NULL;
}

static void cleanup(void) {
    unlink(g_unix_path);
    unlink(g_direct_path);
    rmdir(g_dir);
}

static void setup(void) {
    static int done;
    if (done)
        return;
    done = 1;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/dlock-fuzz-reply-%d", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    mkdir(g_dir, 0700);
    atexit(cleanup);
    snprintf(g_unix_path, sizeof g_unix_path, "%s/s.sock", g_dir);
    snprintf(g_direct_path, sizeof g_direct_path, "%s/d.sock", g_dir);
    for (int i = 0; i < NTCP; i++)
        g_tcp_fd[i] = listen_tcp(&g_tcp_port[i]);
    g_unix_fd = listen_unix(g_unix_path);
    g_direct_fd = listen_unix(g_direct_path);
    pthread_t th;
    if (pthread_create(&th, NULL, server_main, NULL) != 0)
        abort();
    pthread_detach(th);
}

/* ---- nothing but the fake server is reachable ---- */

static int reachable(const struct sockaddr *sa) {
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *u = (const struct sockaddr_un *)sa;
        return strcmp(u->sun_path, g_unix_path) == 0 || strcmp(u->sun_path, g_direct_path) == 0;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (in->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
            return 0;
        for (int i = 0; i < NTCP; i++)
            if (ntohs(in->sin_port) == g_tcp_port[i])
                return 1;
    }
    return 0;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "connect");
    if (sa == NULL || !reachable(sa)) {
        errno = ECONNREFUSED;
        return -1;
    }
    return real(fd, sa, len);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    /* Looked up on every call: the library's look-up threads call this
     * too (resolve.c), and a lazily set static would be a data race. */
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    if (hints != NULL)
        h = *hints;
    h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV; /* never DNS */
    return real(node, service, &h, res);
}

/* ---- checks ---- */

static const uint8_t *g_in;
static size_t g_in_len;

static int input_has(const char *s) {
    size_t n = strlen(s);
    if (n > g_in_len)
        return 0;
    for (size_t i = 0; i + n <= g_in_len; i++)
        if (memcmp(g_in + i, s, n) == 0)
            return 1;
    return 0;
}

static void check_err(const dlock_client *c) {
    const char *e = dlock_client_errstr(c);
    REQUIRE(e != NULL);
    REQUIRE(memchr(e, '\0', 512) != NULL);
    if (strstr(e, PASSWORD) != NULL)
        REQUIRE(input_has(PASSWORD)); /* only if the server sent it back */
}

static int in_set(int rc, const int *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (rc == set[i])
            return 1;
    return 0;
}

#define EXPECT(rc, ...)                                                    \
    do {                                                                   \
        const int set_[] = {__VA_ARGS__};                                  \
        if (!in_set((rc), set_, sizeof set_ / sizeof set_[0])) {           \
            fprintf(stderr, "fuzz_reply: %s returned %s (line %d)\n", #rc, \
                    dlock_err_name(rc), __LINE__);                         \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* Walk a reply tree; check the limits the reader promises. */
static long walk(const redisReply *r, int depth) {
    REQUIRE(r != NULL);
    REQUIRE(depth <= 8);
    (void)dl_reply_int(r, -1);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        REQUIRE(r->len <= DL_REPLY_MAX_STRING);
        REQUIRE(r->str != NULL && r->str[r->len] == '\0');
        return 1;
    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
        return 1;
    case REDIS_REPLY_ARRAY: {
        REQUIRE(r->elements <= DL_REPLY_MAX_ELEMENTS);
        long n = 1;
        for (size_t i = 0; i < r->elements; i++) {
            REQUIRE(dl_elem(r, i) == r->element[i]);
            n += walk(r->element[i], depth + 1);
        }
        REQUIRE(dl_elem(r, r->elements) == NULL);
        return n;
    }
    default:
        abort();
    }
}

/* ---- scenarios ---- */

static void conn_level(const uint8_t *d, size_t n) {
    int flags = n > 0 ? d[0] : 0;
    dl_conn_cfg cfg = {.user = (flags & 4) ? "fuzzuser" : NULL,
                       .password = PASSWORD,
                       .has_password = (flags & 8) != 0,
                       .db = (flags & 16) ? 3 : 0,
                       .connect_timeout_ms = 200};
    dl_pipe p;
    dl_pipe_init(&p, NULL, 0, g_direct_path, &cfg);
    int ncmd = (flags & 3) + 1;
    const char *argv[3] = {"EVALSHA", "0123456789012345678901234567890123456789", "0"};
    size_t lens[3] = {7, 40, 1};
    pd_reply rep[4];
    memset(rep, 0, sizeof rep);
    int64_t deadline = dl_mono_us() + 200 * 1000;
    for (int i = 0; i < ncmd; i++)
        if (dl_pipe_send(&p, 3, argv, lens, deadline, pd_cb, &rep[i]) != DLOCK_OK)
            abort(); /* a unix connect to a live listener starts fine */
    /* The connect is queued in our own listener's backlog: accept and play
     * the server ourselves, single-threaded and deterministic. */
    int fd = accept4(g_direct_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "fuzz_reply: accept: %s\n", strerror(errno));
        abort();
    }
    size_t off = 0;
    while (off < g_out_len) {
        ssize_t w = send(fd, g_out + off, g_out_len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    REQUIRE(pd_run(&p, &rep[ncmd - 1], deadline + 1000 * 1000));
    /* Requests settle in order: the replies first, then one failure for
     * all that are left. */
    int got = 0;
    while (got < ncmd && rep[got].status == DLOCK_OK)
        got++;
    for (int i = 0; i < ncmd; i++) {
        REQUIRE(rep[i].done);
        REQUIRE((rep[i].r != NULL) == (rep[i].status == DLOCK_OK));
        if (i >= got) {
            EXPECT(rep[i].status, DLOCK_EIO, DLOCK_EPROTO, DLOCK_ESERVER);
            REQUIRE(rep[i].status == rep[got].status);
        }
    }
    REQUIRE(memchr(p.conn.err, '\0', sizeof p.conn.err) != NULL);
    REQUIRE(strstr(p.conn.err, PASSWORD) == NULL || input_has(PASSWORD));
    long objects = 0;
    for (int i = 0; i < got; i++)
        objects += walk(rep[i].r, 0);
    REQUIRE(objects <= (long)DL_REPLY_MAX_OBJECTS * ncmd);
    for (int i = 0; i < ncmd; i++)
        if (rep[i].r != NULL)
            freeReplyObject(rep[i].r);
    dl_pipe_close(&p, DLOCK_ECANCELED, "done");
    close(fd);
}

static dlock_client *make_client(int scenario, int flags) {
    char url[512];
    const char *auth = (flags & 1) ? ":" PASSWORD "@" : "";
    switch (scenario) {
    case 5:
        snprintf(url, sizeof url, "redis://%s127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", auth,
                 g_tcp_port[0], g_tcp_port[1], g_tcp_port[2]);
        break;
    case 6:
        snprintf(url, sizeof url, "redis-cluster://%s127.0.0.1:%d,127.0.0.1:%d", auth,
                 g_tcp_port[0], g_tcp_port[1]);
        break;
    case 7:
        snprintf(url, sizeof url, "redis-sentinel://%s127.0.0.1:%d/mymaster", auth,
                 g_tcp_port[0]);
        break;
    default:
        snprintf(url, sizeof url, "redis://%s127.0.0.1:%d%s", auth, g_tcp_port[0],
                 (flags & 2) ? "/2" : "");
    }
    dlock_options o;
    dlock_options_init(&o);
    /* Short: every reply is already there, or EOF is. */
    o.connect_timeout_ms = 20;
    o.command_timeout_ms = 20;
    o.retry_count = 1;
    o.retry_delay_ms = 1;
    o.retry_max_delay_ms = 2;
    o.waiting = (flags & 4) ? DLOCK_WAIT_POLL : DLOCK_WAIT_PUSH;
    o.fencing = (flags & 8) ? 0 : 1;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "fuzz_reply: client for %s: %s\n", url, dlock_client_errstr(c));
        abort();
    }
    return c;
}

static void api_level(int scenario, int flags) {
    dlock_client *c = make_client(scenario, flags);
    dlock_lock *l = NULL;
    int rc;
    switch (scenario) {
    case 1:
    case 5:
    case 6:
    case 7:
        rc = dlock_try_acquire(c, "fz", 1000, &l);
        check_err(c);
        EXPECT(rc, DLOCK_OK, DLOCK_EBUSY, DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM,
               DLOCK_EUNKNOWN, DLOCK_EPROTO);
        REQUIRE((rc == DLOCK_OK) == (l != NULL));
        if (rc == DLOCK_OK) {
            dlock_info info;
            REQUIRE(dlock_info_get(l, &info) == DLOCK_OK);
            REQUIRE(strlen(info.token) == 32 && info.fence >= 0);
            rc = dlock_extend(l, 1000);
            check_err(c);
            EXPECT(rc, DLOCK_OK, DLOCK_ENOTHELD, DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM,
                   DLOCK_EPROTO);
            if (rc == DLOCK_ENOTHELD)
                REQUIRE(!dlock_held(l));
            rc = dlock_release(l);
            check_err(c);
            EXPECT(rc, DLOCK_OK, DLOCK_ENOTHELD, DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM,
                   DLOCK_EPROTO);
            REQUIRE(!dlock_held(l)); /* released, or may have been */
            dlock_lock_free(l);
        }
        if (scenario != 1) {
            dlock_holder h;
            rc = dlock_inspect(c, "fz", &h);
            check_err(c);
            EXPECT(rc, DLOCK_OK, DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM, DLOCK_EPROTO);
        }
        break;
    case 2: {
        dlock_holder h;
        rc = dlock_inspect(c, "fz", &h);
        check_err(c);
        EXPECT(rc, DLOCK_OK, DLOCK_EIO, DLOCK_ESERVER, DLOCK_EPROTO);
        if (rc == DLOCK_OK) {
            REQUIRE(h.locked == 0 || h.locked == 1);
            REQUIRE(memchr(h.host, '\0', sizeof h.host) != NULL);
            REQUIRE(memchr(h.label, '\0', sizeof h.label) != NULL);
            REQUIRE(memchr(h.token, '\0', sizeof h.token) != NULL);
            REQUIRE(h.locked || h.pttl_ms == -1);
        }
        int locked = -1;
        int64_t pttl = 0;
        rc = dlock_is_locked(c, "fz", &locked, &pttl);
        check_err(c);
        EXPECT(rc, DLOCK_OK, DLOCK_EIO, DLOCK_ESERVER, DLOCK_EPROTO);
        if (rc == DLOCK_OK)
            REQUIRE(locked == 0 || locked == 1);
        break;
    }
    case 3:
        rc = dlock_release_token(c, "fz", "0123456789abcdef0123456789abcdef");
        check_err(c);
        EXPECT(rc, DLOCK_OK, DLOCK_ENOTHELD, DLOCK_EIO, DLOCK_ESERVER, DLOCK_EPROTO);
        rc = dlock_extend_token(c, "fz", "0123456789abcdef0123456789abcdef", 1000);
        check_err(c);
        EXPECT(rc, DLOCK_OK, DLOCK_ENOTHELD, DLOCK_EIO, DLOCK_ESERVER, DLOCK_EPROTO);
        break;
    case 4:
        rc = dlock_wait(c, "fz", 20, 1000, &l);
        check_err(c);
        EXPECT(rc, DLOCK_OK, DLOCK_ETIMEDOUT, DLOCK_EIO, DLOCK_ESERVER, DLOCK_EUNKNOWN,
               DLOCK_EPROTO, DLOCK_ENOTHELD);
        REQUIRE((rc == DLOCK_OK) == (l != NULL));
        if (rc == DLOCK_OK) {
            rc = dlock_release(l);
            check_err(c);
            dlock_lock_free(l);
        }
        break;
    }
    dlock_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 2 || size > MAX_INPUT)
        return 0;
    int scenario = data[0] % 8;
    int flags = data[0] / 8;
    g_in = data + 1;
    g_in_len = size - 1;
    pthread_mutex_lock(&g_mu);
    memcpy(g_out, data + 1, size - 1);
    g_out_len = size - 1;
    pthread_mutex_unlock(&g_mu);
    if (scenario == 0)
        conn_level(data, size); /* flags from byte 0 */
    else
        api_level(scenario, flags);
    return 0;
}
