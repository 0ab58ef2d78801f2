/* proxy.c - a TCP fault proxy on 127.0.0.1 for tests: forwards between
 * clients and a target port from one background thread (poll-based), and
 * injects latency, stalls, drops, resets, a black hole or byte-wise drip.
 *
 * Each connection has two FIFO queues of chunks, client->server (up, d = 0)
 * and server->client (down, d = 1). Reading appends a chunk stamped with the
 * time it may be written (now + latency); writing sends from the head of the
 * queue when the mode allows. The thread sleeps in ppoll() until a socket is
 * ready, the next chunk is due, or the wake pipe says the mode changed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "harness.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 16384
#define QUEUE_MAX (1u << 20) /* stop reading a side while its queue is this full */
#define SET_ACK_TIMEOUT_MS 2000

struct chunk {
    struct chunk *next;
    long long due_us;
    size_t len, off;
    char data[];
};

struct queue {
    struct chunk *head, *tail;
    size_t bytes;
    long long last_due; /* keeps due times, hence order, monotonic */
};

struct pconn {
    struct pconn *next;
    int cfd, sfd;
    int connecting;  /* upstream connect() in progress */
    int eof[2];      /* the source side of direction d sent FIN */
    int shut[2];     /* we passed that FIN on */
    int dead;        /* 1: close with RST (error), 2: close cleanly */
    int pi[2];       /* pollfd index of cfd, sfd; -1 if not polled */
    struct queue q[2];
    long long next_drip_us;
};

struct th_proxy {
    struct th_proxy *next; /* list of live proxies, for the exit cleanup */
    pid_t owner;
    pthread_t thread;
    int lfd;
    int wake[2];
    int port;
    int target_port;
    char url[48];
    atomic_long nconn;
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;
    enum th_fault mode;
    int param_ms;
    int has_action; /* a one-shot TH_DROP / TH_RESET is pending */
    enum th_fault action;
    unsigned long gen, applied;
    int stop;
    struct pconn *conns; /* proxy thread only (and th_proxy_stop after join) */
};

static th_proxy *g_proxies;
static pthread_mutex_t g_proxies_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- proxy file descriptors and fork ------------------------------------------
 * A forked child (worker) inherits the proxy's sockets; while it lives, a
 * connection the proxy closes would stay open. So every proxy fd is recorded
 * here, and a pthread_atfork child handler closes them all. Opening+recording
 * and forgetting+closing happen under g_fd_mu, which the prepare handler
 * holds across fork(), so the child's list is exact. */

static pthread_mutex_t g_fd_mu = PTHREAD_MUTEX_INITIALIZER;
static int *g_fds;
static size_t g_nfds, g_capfds;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void fd_prepare(void)
{
    pthread_mutex_lock(&g_fd_mu);
}

static void fd_parent(void)
{
    pthread_mutex_unlock(&g_fd_mu);
}

static void fd_child(void)
{
    for (size_t i = 0; i < g_nfds; i++)
        close(g_fds[i]);
    g_nfds = 0;
    pthread_mutex_unlock(&g_fd_mu);
}

static void install_atfork(void)
{
    pthread_atfork(fd_prepare, fd_parent, fd_child);
}

/* Call with g_fd_mu held. */
static void fd_add_locked(int fd)
{
    if (fd < 0)
        return;
    if (g_nfds == g_capfds) {
        size_t cap = g_capfds ? g_capfds * 2 : 64;
        int *n = realloc(g_fds, cap * sizeof *n);
        if (n == NULL)
            return; /* only forked children are affected */
        g_fds = n;
        g_capfds = cap;
    }
    g_fds[g_nfds++] = fd;
}

/* Closes a proxy fd: with rst, abortively (SO_LINGER 0 sends RST); otherwise
 * FIN first, then unread input is drained so close() does not turn into RST. */
static void fd_close(int fd, int rst)
{
    if (fd < 0)
        return;
    if (rst) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else {
        char buf[4096];
        shutdown(fd, SHUT_WR);
        for (int i = 0; i < 256 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0; i++)
            ;
    }
    pthread_mutex_lock(&g_fd_mu);
    for (size_t i = 0; i < g_nfds; i++) {
        if (g_fds[i] == fd) {
            g_fds[i] = g_fds[--g_nfds];
            break;
        }
    }
    close(fd);
    pthread_mutex_unlock(&g_fd_mu);
}

/* ---- queues ---------------------------------------------------------------------- */

static int q_push(struct queue *q, const char *data, size_t len, long long due)
{
    struct chunk *ch = malloc(sizeof *ch + len);

    if (ch == NULL)
        return -1;
    if (due < q->last_due)
        due = q->last_due;
    q->last_due = due;
    ch->next = NULL;
    ch->due_us = due;
    ch->len = len;
    ch->off = 0;
    memcpy(ch->data, data, len);
    if (q->tail != NULL)
        q->tail->next = ch;
    else
        q->head = ch;
    q->tail = ch;
    q->bytes += len;
    return 0;
}

static void q_pop(struct queue *q)
{
    struct chunk *ch = q->head;

    q->head = ch->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->bytes -= ch->len - ch->off;
    free(ch);
}

static void q_clear(struct queue *q)
{
    while (q->head != NULL)
        q_pop(q);
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_free(struct pconn *c, int rst)
{
    fd_close(c->cfd, rst);
    fd_close(c->sfd, rst);
    q_clear(&c->q[0]);
    q_clear(&c->q[1]);
    free(c);
}

static void close_all(th_proxy *p, int rst)
{
    while (p->conns != NULL) {
        struct pconn *c = p->conns;
        p->conns = c->next;
        conn_free(c, rst);
    }
}

static void set_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void accept_new(th_proxy *p)
{
    for (;;) {
        int cfd, sfd = -1, err;

        pthread_mutex_lock(&g_fd_mu);
        cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        err = errno;
        if (cfd >= 0) {
            fd_add_locked(cfd);
            sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            err = errno;
            fd_add_locked(sfd);
        }
        pthread_mutex_unlock(&g_fd_mu);
        if (cfd < 0) {
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err != EAGAIN && err != EWOULDBLOCK) {
                fprintf(stderr, "harness: proxy %d: accept: %s\n", p->port, strerror(err));
                th_sleep_ms(10); /* e.g. EMFILE: do not spin */
            }
            return;
        }
        atomic_fetch_add(&p->nconn, 1);
        struct pconn *c = sfd >= 0 ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            fprintf(stderr, "harness: proxy %d: %s\n", p->port,
                    sfd < 0 ? strerror(err) : "out of memory");
            fd_close(cfd, 1);
            fd_close(sfd, 1);
            continue;
        }
        c->cfd = cfd;
        c->sfd = sfd;
        c->pi[0] = c->pi[1] = -1;
        set_nodelay(cfd);
        set_nodelay(sfd);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((unsigned short)p->target_port);
        if (connect(sfd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            if (errno == EINPROGRESS)
                c->connecting = 1;
            else
                c->dead = 1; /* target down: the client sees a reset */
        }
        c->next = p->conns;
        p->conns = c;
    }
}

static int forwarding(enum th_fault mode)
{
    return mode != TH_STALL && mode != TH_BLACKHOLE;
}

static int want_read(const struct pconn *c, int d, enum th_fault mode)
{
    if (c->dead || c->eof[d] || mode == TH_STALL || (d == 1 && c->connecting))
        return 0;
    return mode == TH_BLACKHOLE || c->q[d].bytes < QUEUE_MAX;
}

/* When the head of queue d may be written: -1 never (empty or the mode
 * forbids it), else a monotonic time in us (<= now: right away). */
static long long ready_at(const struct pconn *c, int d, enum th_fault mode, long long now)
{
    if (c->q[d].head == NULL || c->connecting || c->dead || !forwarding(mode))
        return -1;
    if (mode == TH_LATENCY)
        return c->q[d].head->due_us;
    if (mode == TH_DRIP && d == 1)
        return c->next_drip_us;
    return now;
}

static void do_read(struct pconn *c, int d, enum th_fault mode, int param_ms, long long now)
{
    char buf[CHUNK_MAX];
    ssize_t n = recv(d == 0 ? c->cfd : c->sfd, buf, sizeof buf, 0);

    if (n > 0) {
        if (mode == TH_BLACKHOLE)
            return;
        long long due = now + (mode == TH_LATENCY ? (long long)param_ms * 1000LL : 0);
        if (q_push(&c->q[d], buf, (size_t)n, due) != 0)
            c->dead = 1;
    } else if (n == 0) {
        c->eof[d] = 1;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->dead = 1;
    }
}

static void do_write(struct pconn *c, int d, enum th_fault mode, int param_ms, long long now)
{
    int fd = d == 0 ? c->sfd : c->cfd;
    int drip = mode == TH_DRIP && d == 1;

    for (;;) {
        long long at = ready_at(c, d, mode, now);
        if (at < 0 || at > now)
            return;
        struct chunk *ch = c->q[d].head;
        size_t len = drip ? 1 : ch->len - ch->off;
        ssize_t n = send(fd, ch->data + ch->off, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                c->dead = 1;
            return; /* EAGAIN: ready_at() stays "now", so we poll for POLLOUT */
        }
        ch->off += (size_t)n;
        c->q[d].bytes -= (size_t)n;
        if (ch->off == ch->len)
            q_pop(&c->q[d]);
        if (drip) {
            c->next_drip_us = now + (param_ms > 0 ? param_ms : 1) * 1000LL;
            return;
        }
    }
}

/* Writes what is due, passes FINs on, frees finished connections. */
static void service(th_proxy *p, enum th_fault mode, int param_ms, long long now)
{
    for (struct pconn **pp = &p->conns; *pp != NULL;) {
        struct pconn *c = *pp;
        for (int d = 0; d < 2 && !c->dead; d++) {
            do_write(c, d, mode, param_ms, now);
            if (!c->dead && c->eof[d] && c->q[d].head == NULL && !c->shut[d] && !c->connecting &&
                forwarding(mode)) {
                shutdown(d == 0 ? c->sfd : c->cfd, SHUT_WR);
                c->shut[d] = 1;
            }
        }
        if (!c->dead && c->shut[0] && c->shut[1])
            c->dead = 2;
        if (c->dead) {
            *pp = c->next;
            conn_free(c, c->dead == 1);
        } else {
            pp = &c->next;
        }
    }
}

static void *proxy_main(void *arg)
{
    th_proxy *p = arg;
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    unsigned long applied = 0;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stop;
        enum th_fault mode = p->mode;
        int param_ms = p->param_ms;
        unsigned long gen = p->gen;
        int has_action = p->has_action;
        enum th_fault action = p->action;
        p->has_action = 0;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (has_action)
            close_all(p, action == TH_RESET);
        if (gen != applied) {
            applied = gen;
            pthread_mutex_lock(&p->mu);
            p->applied = gen;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }

        long long now = th_now_us();
        service(p, mode, param_ms, now);

        size_t n = 2;
        for (struct pconn *c = p->conns; c != NULL; c = c->next)
            n += 2;
        if (n > cap) {
            struct pollfd *np = realloc(pfd, n * 2 * sizeof *np);
            if (np == NULL) {
                th_sleep_ms(10);
                continue;
            }
            pfd = np;
            cap = n * 2;
        }
        pfd[0] = (struct pollfd){p->wake[0], POLLIN, 0};
        pfd[1] = (struct pollfd){p->lfd, POLLIN, 0};
        size_t k = 2;
        long long next = -1;
        for (struct pconn *c = p->conns; c != NULL; c = c->next) {
            short ev[2] = {0, 0}; /* events for cfd, sfd */
            for (int d = 0; d < 2; d++) {
                if (want_read(c, d, mode))
                    ev[d] |= POLLIN;
                long long at = ready_at(c, d, mode, now);
                if (at >= 0 && at <= now)
                    ev[1 - d] |= POLLOUT; /* direction d writes to the other fd */
                else if (at > now && (next < 0 || at < next))
                    next = at;
            }
            if (c->connecting)
                ev[1] |= POLLOUT;
            for (int i = 0; i < 2; i++) {
                int fd = i == 0 ? c->cfd : c->sfd;
                /* Not polling a socket at all (fd -1) keeps a HUP or error we
                 * are not ready to handle (STALL) from waking us in a loop. */
                c->pi[i] = (int)k;
                pfd[k++] = (struct pollfd){ev[i] != 0 ? fd : -1, ev[i], 0};
            }
        }
        struct timespec ts, *tsp = NULL;
        if (next >= 0) {
            long long wait = next - now;
            ts.tv_sec = (time_t)(wait / 1000000LL);
            ts.tv_nsec = (long)(wait % 1000000LL) * 1000L;
            tsp = &ts;
        }
        if (ppoll(pfd, k, tsp, NULL) < 0) {
            if (errno != EINTR) {
                fprintf(stderr, "harness: proxy %d: poll: %s\n", p->port, strerror(errno));
                th_sleep_ms(10);
            }
            continue;
        }
        if (pfd[0].revents != 0) {
            char buf[64];
            while (read(p->wake[0], buf, sizeof buf) > 0)
                ;
        }
        now = th_now_us();
        for (struct pconn *c = p->conns; c != NULL; c = c->next) {
            if (c->pi[0] < 0)
                continue; /* accepted below, not polled yet */
            short rev_c = pfd[c->pi[0]].revents, rev_s = pfd[c->pi[1]].revents;
            if (c->connecting && rev_s != 0) {
                int err = 0;
                socklen_t len = sizeof err;
                if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
                    c->dead = 1;
                else
                    c->connecting = 0;
                rev_s &= ~POLLOUT;
            }
            if (!c->dead && (rev_c & (POLLIN | POLLHUP | POLLERR)))
                do_read(c, 0, mode, param_ms, now);
            if (!c->dead && !c->connecting && (rev_s & (POLLIN | POLLHUP | POLLERR)))
                do_read(c, 1, mode, param_ms, now);
        }
        if (pfd[1].revents != 0)
            accept_new(p);
    }
    free(pfd);
    return NULL;
}

/* ---- public API --------------------------------------------------------------------- */

static void wake(th_proxy *p)
{
    char b = 1;

    if (write(p->wake[1], &b, 1) < 0 && errno != EAGAIN)
        fprintf(stderr, "harness: proxy %d: wake: %s\n", p->port, strerror(errno));
}

static void proxy_cleanup_all(void)
{
    for (;;) {
        th_proxy *p;
        pthread_mutex_lock(&g_proxies_mu);
        for (p = g_proxies; p != NULL && p->owner != getpid(); p = p->next)
            ;
        pthread_mutex_unlock(&g_proxies_mu);
        if (p == NULL)
            break;
        th_proxy_stop(p);
    }
}

th_proxy *th_proxy_start(int target_port)
{
    th_proxy *p = calloc(1, sizeof *p);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    pthread_condattr_t ca;
    sigset_t old;
    int rc;

    if (p == NULL) {
        fprintf(stderr, "harness: th_proxy_start: out of memory\n");
        return NULL;
    }
    if (target_port <= 0 || target_port > 65535) {
        fprintf(stderr, "harness: th_proxy_start: bad target port %d\n", target_port);
        free(p);
        return NULL;
    }
    th__at_cleanup(proxy_cleanup_all);
    pthread_once(&g_atfork_once, install_atfork);
    p->owner = getpid();
    p->target_port = target_port;
    p->wake[0] = p->wake[1] = -1;
    pthread_mutex_lock(&g_fd_mu);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fd_add_locked(p->lfd);
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) == 0) {
        fd_add_locked(p->wake[0]);
        fd_add_locked(p->wake[1]);
    }
    pthread_mutex_unlock(&g_fd_mu);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p->lfd < 0 || p->wake[0] < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->lfd, 128) != 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "harness: th_proxy_start: socket: %s\n", strerror(errno));
        goto fail;
    }
    p->port = ntohs(sa.sin_port);
    snprintf(p->url, sizeof p->url, "redis://127.0.0.1:%d", p->port);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->mode = TH_PASS;

    /* The thread takes no signals: the test's SIGALRM timeout handler then
     * runs on a test thread. */
    th__block_signals(&old);
    rc = pthread_create(&p->thread, NULL, proxy_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fprintf(stderr, "harness: th_proxy_start: pthread_create: %s\n", strerror(rc));
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        goto fail;
    }
    pthread_mutex_lock(&g_proxies_mu);
    p->next = g_proxies;
    g_proxies = p;
    pthread_mutex_unlock(&g_proxies_mu);
    return p;
fail:
    fd_close(p->lfd, 0);
    fd_close(p->wake[0], 0);
    fd_close(p->wake[1], 0);
    free(p);
    return NULL;
}

int th_proxy_port(const th_proxy *p)
{
    return p != NULL ? p->port : -1;
}

const char *th_proxy_url(const th_proxy *p)
{
    return p != NULL ? p->url : NULL;
}

long th_proxy_connections(th_proxy *p)
{
    return p != NULL ? atomic_load(&p->nconn) : -1;
}

void th_proxy_set(th_proxy *p, enum th_fault mode, int param_ms)
{
    struct timespec ts;

    if (p == NULL || (int)mode < TH_PASS || (int)mode > TH_DRIP) {
        fprintf(stderr, "harness: th_proxy_set: bad arguments\n");
        return;
    }
    if (p->owner != getpid()) {
        fprintf(stderr, "harness: th_proxy_set: the proxy's thread lives in pid %d, not %d\n",
                (int)p->owner, (int)getpid());
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (mode == TH_DROP || mode == TH_RESET) {
        p->has_action = 1;
        p->action = mode;
        p->mode = TH_PASS;
        p->param_ms = 0;
    } else {
        p->mode = mode;
        p->param_ms = param_ms;
    }
    unsigned long my = ++p->gen;
    pthread_mutex_unlock(&p->mu);
    wake(p);

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += SET_ACK_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    while (p->applied < my) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
            fprintf(stderr, "harness: th_proxy_set: proxy thread did not respond in %d ms\n",
                    SET_ACK_TIMEOUT_MS);
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void th_proxy_stop(th_proxy *p)
{
    if (p == NULL)
        return;
    if (p->owner != getpid()) {
        fprintf(stderr, "harness: th_proxy_stop: the proxy belongs to pid %d; ignored in pid %d\n",
                (int)p->owner, (int)getpid());
        return;
    }
    pthread_mutex_lock(&g_proxies_mu);
    for (th_proxy **pp = &g_proxies; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_proxies_mu);
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_mutex_unlock(&p->mu);
    wake(p);
    pthread_join(p->thread, NULL);
    close_all(p, 0);
    fd_close(p->lfd, 0);
    fd_close(p->wake[0], 0);
    fd_close(p->wake[1], 0);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
