/* fake.c - fake servers for the topology tests: a loopback listener whose
 * replies a test function writes (down, silent and hostile servers). See
 * topo.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "topo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TT_FAKE_MAXC 16
#define TT_FAKE_BUF 65536

struct tt_fake {
    int lfd;
    int port;
    tt_fake_fn fn;
    void *ud;
    pthread_t th;
    atomic_int stop;
    atomic_long requests;
};

typedef struct fake_conn {
    int fd;
    size_t len;
    char buf[TT_FAKE_BUF];
} fake_conn;

/* Length of the first complete RESP command (array of bulk strings) in
 * b[0..len), 0 if incomplete, -1 if it is not one (then the whole chunk
 * counts as one request). */
static long one_command(const char *b, size_t len) {
    size_t i = 0;
    if (len == 0)
        return 0;
    if (b[0] != '*')
        return -1;
    char *end;
    const char *nl = memchr(b, '\n', len);
    if (nl == NULL)
        return 0;
    long n = strtol(b + 1, &end, 10);
    if (n < 0 || n > 1000)
        return -1;
    i = (size_t)(nl - b) + 1;
    for (long k = 0; k < n; k++) {
        if (i >= len)
            return 0;
        if (b[i] != '$')
            return -1;
        nl = memchr(b + i, '\n', len - i);
        if (nl == NULL)
            return 0;
        long bl = strtol(b + i + 1, &end, 10);
        if (bl < 0 || bl > TT_FAKE_BUF)
            return -1;
        i = (size_t)(nl - b) + 1 + (size_t)bl + 2;
        if (i > len)
            return 0;
    }
    return (long)i;
}

/* Answers every complete command buffered on fc. Returns 0 to keep the
 * connection, -1 to close it. */
static int fake_serve(tt_fake *f, fake_conn *fc) {
    for (;;) {
        long n = one_command(fc->buf, fc->len);
        if (n == 0)
            return 0;
        if (n < 0)
            n = (long)fc->len;
        atomic_fetch_add(&f->requests, 1);
        size_t olen = 0;
        const char *out = f->fn(fc->buf, (size_t)n, &olen, f->ud);
        memmove(fc->buf, fc->buf + n, fc->len - (size_t)n);
        fc->len -= (size_t)n;
        if (out == NULL)
            return -1;
        for (size_t off = 0; off < olen;) {
            /* MSG_NOSIGNAL: the client may have closed already (it gives up
             * on a fake that answers nonsense), and a SIGPIPE would end the
             * whole test process. */
            ssize_t w = send(fc->fd, out + off, olen - off, MSG_NOSIGNAL);
            if (w <= 0)
                return -1;
            off += (size_t)w;
        }
    }
}

static void *fake_main(void *arg) {
    tt_fake *f = arg;
    fake_conn *cs[TT_FAKE_MAXC];
    int nc = 0;
    while (!atomic_load(&f->stop)) {
        struct pollfd p[TT_FAKE_MAXC + 1];
        p[0].fd = f->lfd;
        p[0].events = nc < TT_FAKE_MAXC ? POLLIN : 0;
        for (int i = 0; i < nc; i++) {
            p[i + 1].fd = cs[i]->fd;
            p[i + 1].events = POLLIN;
        }
        int pr = poll(p, (nfds_t)nc + 1, 50);
        if (pr <= 0)
            continue;
        for (int i = 0; i < nc; i++) {
            if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            fake_conn *fc = cs[i];
            ssize_t n = fc->len < TT_FAKE_BUF
                            ? read(fc->fd, fc->buf + fc->len, TT_FAKE_BUF - fc->len)
                            : -1;
            if (n > 0)
                fc->len += (size_t)n;
            if (n <= 0 || fake_serve(f, fc) != 0) {
                close(fc->fd);
                free(fc);
                cs[i] = NULL;
            }
        }
        int k = 0;
        for (int i = 0; i < nc; i++)
            if (cs[i] != NULL)
                cs[k++] = cs[i];
        nc = k;
        if (p[0].revents & POLLIN) {
            int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
            fake_conn *fc = fd >= 0 ? malloc(sizeof *fc) : NULL;
            if (fc != NULL) {
                fc->fd = fd;
                fc->len = 0;
                cs[nc++] = fc;
            } else if (fd >= 0) {
                close(fd);
            }
        }
    }
    for (int i = 0; i < nc; i++) {
        close(cs[i]->fd);
        free(cs[i]);
    }
    return NULL;
}

tt_fake *tt_fake_start(tt_fake_fn fn, void *ud) {
    tt_fake *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->fn = fn;
    f->ud = ud;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->lfd, 16) != 0 || getsockname(f->lfd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "topo: fake server: %s\n", strerror(errno));
        if (f->lfd >= 0)
            close(f->lfd);
        free(f);
        return NULL;
    }
    f->port = ntohs(sa.sin_port);
    if (pthread_create(&f->th, NULL, fake_main, f) != 0) {
        close(f->lfd);
        free(f);
        return NULL;
    }
    return f;
}

int tt_fake_port(const tt_fake *f) { return f->port; }

long tt_fake_requests(tt_fake *f) { return atomic_load(&f->requests); }

void tt_fake_stop(tt_fake *f) {
    if (f == NULL)
        return;
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->lfd);
    free(f);
}
