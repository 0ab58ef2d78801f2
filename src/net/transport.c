/* transport.c - the plain transport, and choosing one (transport.h). */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "tls.h"

static int plain_handshake(dl_transport *t) {
    (void)t;
    return DL_IO_DONE;
}

/* A server that resets or closes before its first byte of reply may be a
 * TLS port that took our request for a broken handshake. */
static int plain_lost(dl_transport *t, const char *what) {
    snprintf(t->err, sizeof t->err, "%s%s", what,
             t->got_bytes ? ""
                          : " before any reply (if this is a TLS port, use rediss://)");
    return DL_IO_CLOSED;
}

/* One recv with flags: MSG_DONTWAIT never waits; 0 waits (on a socket
 * dl_transport_wait_slice made blocking) for at most the slice. */
static int plain_recv(dl_transport *t, char *buf, size_t cap, size_t *n, int flags) {
    *n = 0;
    ssize_t r = recv(t->fd, buf, cap, flags);
    if (r > 0) {
        *n = (size_t)r;
        t->got_bytes = 1;
        return DL_IO_DONE;
    }
    if (r == 0)
        return plain_lost(t, "connection closed by the server");
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return DL_IO_WANT_READ;
    if (errno == ECONNRESET)
        return plain_lost(t, strerror(errno));
    snprintf(t->err, sizeof t->err, "%s", strerror(errno));
    return DL_IO_ERROR;
}

static int plain_read(dl_transport *t, char *buf, size_t cap, size_t *n) {
    return plain_recv(t, buf, cap, n, MSG_DONTWAIT);
}

static int plain_read_wait(dl_transport *t, char *buf, size_t cap, size_t *n) {
    return plain_recv(t, buf, cap, n, 0);
}

/* send(MSG_NOSIGNAL), not write(2): a peer that closed must give EPIPE,
 * not a SIGPIPE that kills the program linking us. */
static int plain_write(dl_transport *t, const char *buf, size_t len, size_t *n) {
    *n = 0;
    ssize_t w = send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0) {
        *n = (size_t)w;
        return DL_IO_DONE;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return DL_IO_WANT_WRITE;
    snprintf(t->err, sizeof t->err, "%s", strerror(errno));
    return DL_IO_ERROR;
}

static int plain_pending(const dl_transport *t) {
    (void)t;
    return 0;
}

static void plain_close(dl_transport *t) { (void)t; }

static const dl_transport_ops plain_ops = {
    .name = "plain",
    .handshake = plain_handshake,
    .read = plain_read,
    .read_wait = plain_read_wait,
    .write = plain_write,
    .pending = plain_pending,
    .close = plain_close,
};

int dl_transport_open(dl_transport *t, int fd, const dl_tls *tls, const char *host) {
    memset(t, 0, sizeof *t);
    t->fd = fd;
    if (tls == NULL) {
        t->ops = &plain_ops;
        return DLOCK_OK;
    }
    return dl_tls_attach(t, tls, host);
}

void dl_transport_close(dl_transport *t) {
    if (t->ops != NULL)
        t->ops->close(t);
    t->ops = NULL;
    t->impl = NULL;
}

/* The timeout first: a socket that waits in recv always has one. If either
 * step fails, read_wait is not used on this socket (wait_ms -1), and
 * MSG_DONTWAIT keeps every other call as it was. */
int dl_transport_wait_slice(dl_transport *t, int ms) {
    if (t->ops == NULL || t->ops->read_wait == NULL || ms <= 0 || t->wait_ms < 0)
        return -1;
    if (t->wait_ms == ms)
        return 0;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int fl;
    if (setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        (fl = fcntl(t->fd, F_GETFL)) < 0 || fcntl(t->fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        t->wait_ms = -1;
        return -1;
    }
    t->wait_ms = ms;
    return 0;
}
