/* transport.h - the bytes under one connection: plain (TCP or a unix
 * socket) or TLS, behind one small table of functions.
 *
 * conn.c makes the socket (hiredis's non-blocking connect) and says what it
 * waits for; the engine's poll set (src/lock) and the pipes' deadlines
 * bound it; a transport moves bytes on that socket and says
 * what it is waiting for. Every operation but read_wait is non-blocking
 * and returns one of enum dl_io: done, or "call again when the socket is
 * readable / writable", or a failure whose message is in t->err. A TLS
 * operation may need the other direction (a read that must write, a write
 * that must read), so the caller polls for what the last call asked for,
 * not for what it wanted to do. Bytes a TLS session has already taken off the socket do not show in
 * poll: after a read, call `pending` and read again while it says so.
 *
 * A transport never closes the socket (redisFree does) and never blocks,
 * but in read_wait, for at most the slice its socket was given. The plain
 * one passes MSG_DONTWAIT to every other recv and send, so that its socket
 * may be made blocking for read_wait (dl_transport_wait_slice), and writes
 * with send(MSG_NOSIGNAL); the TLS one (tls.c) does its socket I/O through
 * its own BIO, which also sends with MSG_NOSIGNAL, so neither can raise
 * SIGPIPE (a TLS socket has no read_wait and stays non-blocking).
 */
#ifndef DLOCK_TRANSPORT_H
#define DLOCK_TRANSPORT_H

#include <stddef.h>

#include "ctx.h"

/* What a transport operation did. */
enum dl_io {
    DL_IO_DONE = 0,   /* the handshake finished, or *n > 0 bytes were moved */
    DL_IO_WANT_READ,  /* nothing moved: call again once the socket is readable */
    DL_IO_WANT_WRITE, /* nothing moved: call again once the socket is writable */
    DL_IO_CLOSED,     /* read: the peer closed the connection (err says how) */
    DL_IO_REFUSED,    /* the peer refused the session before it took any of our
                         bytes as a request (a TLS alert before any reply): nothing
                         we sent can have run */
    DL_IO_ERROR       /* failed (err says why); the connection must be closed */
};

typedef struct dl_tls dl_tls; /* a client's TLS settings (tls.h) */
typedef struct dl_transport dl_transport;

typedef struct dl_transport_ops {
    const char *name; /* "plain", "tls" */
    /* After the TCP connect completed: the TLS handshake (plain: done). */
    int (*handshake)(dl_transport *t);
    /* Up to cap bytes into buf; *n set on DL_IO_DONE. */
    int (*read)(dl_transport *t, char *buf, size_t cap, size_t *n);
    /* Up to len bytes from buf; *n set on DL_IO_DONE. After a WANT_*, call
     * again with the same bytes first (buf may have moved, len grown). */
    int (*write)(dl_transport *t, const char *buf, size_t len, size_t *n);
    /* read, but waiting up to the slice dl_transport_wait_slice set for
     * bytes to arrive (DL_IO_WANT_READ when none did). NULL: the transport
     * cannot (TLS). */
    int (*read_wait)(dl_transport *t, char *buf, size_t cap, size_t *n);
    /* Nonzero when bytes can be read without waiting for the socket. */
    int (*pending)(const dl_transport *t);
    /* Free the transport's state (not the socket). */
    void (*close)(dl_transport *t);
} dl_transport_ops;

struct dl_transport {
    const dl_transport_ops *ops; /* NULL while closed */
    int fd;
    int got_bytes; /* bytes were read since open */
    int quiet;     /* close without a word: the socket is also another
                      process's (a child after fork()), so TLS sends no
                      close_notify on it */
    int wait_ms;   /* read_wait's slice, set on the socket; 0: not yet,
                      -1: the socket refused (read_wait is not used) */
    void *impl;    /* tls.c's per-connection state */
    char err[240]; /* why the last operation failed */
};

/* Attach a transport to the socket fd (connected or still connecting).
 * tls NULL: plain. host is the name or address the socket was connected
 * to: with TLS, checked against the server's certificate (unless the
 * settings name another) and sent as SNI unless it is an IP literal.
 * Returns DLOCK_OK, DLOCK_ENOMEM or DLOCK_EINVAL (t->err says why); on
 * failure nothing is left to close. */
DL_INTERNAL int dl_transport_open(dl_transport *t, int fd, const dl_tls *tls, const char *host);

/* Free the transport's state; the socket stays open. Safe when closed.
 * Sends nothing when t->quiet is set. */
DL_INTERNAL void dl_transport_close(dl_transport *t);

/* Let read_wait wait up to ms on this socket: SO_RCVTIMEO, and the socket
 * made blocking (the other reads and writes pass MSG_DONTWAIT, so they still
 * never wait). Costs system calls the first time only (per socket: a
 * reconnect opens the transport afresh). 0 when read_wait may be used, -1
 * when it may not (TLS, or the socket refused). */
DL_INTERNAL int dl_transport_wait_slice(dl_transport *t, int ms);

#endif
