/* conn.h - one server connection over hiredis: the caller's poll set says
 * when it may read or write (dl_conn_events, dl_conn_step), and pipe.h
 * drives it with requests and deadlines.
 *
 * hiredis does the protocol (command formatting, reply parsing) and the
 * non-blocking TCP connect (to an address: a host name is looked up first,
 * off this thread, by resolve.h); the bytes move through a transport
 * (transport.h: plain, or TLS in tls.c). This file owns the socket life
 * cycle:
 *   - connections are non-blocking and made lazily; with TLS the
 *     handshake counts against the connect timeout; the one wait in a
 *     read is dl_conn_read_wait's, for a blocking caller, at most a slice;
 *   - AUTH and SELECT are sent in the same write as the first command after
 *     every (re)connect (hiredis 0.14's redisReconnect re-applies neither);
 *   - it counts the bytes queued and written, so the pipe knows which
 *     requests reached the server whole (and may have run);
 *   - replies are bounded: array sizes, string sizes, object counts and the
 *     unread buffer are checked as they arrive, before hiredis allocates.
 * After any I/O error or timeout the connection is closed (a context with a
 * half-read reply is unusable) and re-made by the next request.
 */
#ifndef DLOCK_CONN_H
#define DLOCK_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "ctx.h"
#include "transport.h"

/* A fence carries its master's failover epoch above this many bits
 * (docs/FAILOVER.md); epochs must stay below 2^(63 - DL_EPOCH_SHIFT). */
#define DL_EPOCH_SHIFT 40
#define DL_EPOCH_MAX ((INT64_C(1) << (63 - DL_EPOCH_SHIFT)) - 1)

/* Limits on what a server may send us (hostile-server protection). */
#define DL_REPLY_MAX_ELEMENTS (1 << 17) /* elements in one array */
#define DL_REPLY_MAX_STRING (1 << 20)   /* bytes in one bulk string */
#define DL_REPLY_MAX_OBJECTS (1 << 20)  /* objects in one reply tree */
#define DL_READBUF_MAX (4 << 20)        /* unparsed bytes buffered */

/* What every connection of a client needs to (re)connect. Owned by the
 * client; connections keep a pointer. */
typedef struct dl_conn_cfg {
    const char *user;     /* NULL or "" for none */
    const char *password; /* used when has_password */
    int has_password;
    int db;
    int connect_timeout_ms; /* TCP connect and TLS handshake together */
    int ask_policy;         /* ask maxmemory-policy on every connect (dl_conn.policy) */
    const dl_tls *tls;      /* NULL: plain; else every connection is TLS */
    /* 1 in a child process after fork() (dlock_client_free sets it): the
     * sockets are shared with the parent, so closing one must send nothing
     * on it (the transport closes quietly: no TLS close_notify). */
    int forked;
} dl_conn_cfg;

enum dl_conn_state { DL_CONN_CLOSED, DL_CONN_CONNECTING, DL_CONN_READY };

/* What the server said of its maxmemory-policy (dl_conn_cfg.ask_policy). */
enum dl_policy {
    DL_POLICY_UNKNOWN, /* not asked, not answered yet, or CONFIG refused */
    DL_POLICY_SAFE,    /* noeviction */
    DL_POLICY_UNSAFE   /* any other: lock keys may be evicted */
};

typedef struct dl_conn {
    redisContext *ctx;
    dl_transport tr; /* moves the bytes on ctx->fd: plain or TLS */
    enum dl_conn_state state;
    char host[256];
    int port;
    char path[108];
    int is_unix;
    char addr[300]; /* "host:port" or the socket path, for messages */
    const dl_conn_cfg *cfg;

    redisReplyObjectFunctions fn; /* limit-checking wrappers around... */
    redisReplyObjectFunctions *orig_fn; /* ...hiredis's own */
    long objects;                  /* objects in the reply being parsed */

    int64_t connect_deadline_us; /* covers the host name look-up too */
    /* Connecting to a host name: its look-up (resolve.h). Until it is
     * answered (res_next 0) ctx is a placeholder on the look-up's
     * descriptor: requests queue in its output buffer, and move to the
     * socket's with it. Then the addresses found are tried in turn: one
     * whose connect fails gives way to the next (res_next: the next to
     * try, of res_n), the buffer moving again. Dropped once TCP is up. */
    struct dl_resolve *res;
    int res_n, res_next;
    int skip;      /* AUTH/SELECT replies to check and drop first */
    int64_t last_io_us; /* last read: idle connections are checked before use */
    int tcp_up;         /* connecting: the TCP connect completed (TLS handshake next) */
    short hs_ev;        /* connecting: poll events the connect or handshake waits for */
    short rd_ev, wr_ev; /* ready: poll events the transport's read / write waits for */
    char *fmt; /* RESP formatting buffer, reused */
    size_t fmt_cap;
    int status;    /* DLOCK_OK, or why the connection last failed */
    int code;      /* server error code behind status (AUTH/SELECT), or 0 */
    int timed_out; /* it failed by a deadline (not by an error) */
    uint64_t app_bytes;  /* bytes appended to the output buffer since connect */
    uint64_t wr_bytes;   /* bytes written to the socket since connect */
    uint64_t auth_end;   /* app_bytes at the end of AUTH (0: none): wiped once written */
    char err[256];
    /* Set by the pipe (pipe.c): every reply goes to on_reply, and on_fail
     * runs after the connection failed and was closed (status/err say
     * why). */
    void (*on_reply)(struct dl_conn *c, redisReply *r);
    void (*on_fail)(struct dl_conn *c);
    /* When set, called just before the socket is closed, its descriptor
     * still open (the engine stops watching it first: an event loop must
     * not watch a closed descriptor, whose number a new socket may take). */
    void (*on_close)(struct dl_conn *c);
    unsigned gen; /* sockets closed so far: tells a new socket from the old */
    /* ask_policy: CONFIG GET maxmemory-policy goes last in the setup
     * pipeline (after AUTH/SELECT); its reply is read here, never passed
     * on, and an error reply (CONFIG refused) leaves the policy unknown.
     * Reset on every connect. */
    int probing;           /* its reply is the last setup reply still due */
    int policy;            /* enum dl_policy */
    char policy_name[32];  /* as the server named it */
    int policy_told;       /* free for the layer above: reset on connect */
    /* The failover epoch of this server as a master, as the topology last
     * learned it with its address (Sentinel: config-epoch), or -1: the
     * high bits of its fences (docs/FAILOVER.md). Kept across reconnects. */
    int64_t epoch;
    int refused;  /* the peer refused the session before taking any request */
} dl_conn;

/* Set up a closed connection to host:port (or the unix socket path when
 * path is non-NULL). Never fails; nothing is connected yet. */
void dl_conn_init(dl_conn *c, const char *host, int port, const char *path,
                  const dl_conn_cfg *cfg);

/* Close the socket (if any) and drop the half-read reply. The conn may be
 * reused. */
void dl_conn_close(dl_conn *c);

/* Close an idle connection that the server has closed meanwhile (so the
 * next request reconnects). The pipe calls it before a request when none is
 * in flight (with replies due, their bytes would look like unexpected
 * input); callers that need to know whether a connection is reused call it
 * first. */
void dl_conn_check_idle(dl_conn *c);

/* Queue one command's bytes (argv with explicit lengths, never a format
 * string): connect first if closed. Returns DLOCK_OK, DLOCK_EIO (the
 * connect could not even start: c->err says why) or DLOCK_ENOMEM. On
 * DLOCK_OK *end is the byte count that marks this command written whole
 * (compare with c->wr_bytes): a command can run only once the server has
 * all of it, so before that a failure means it did not run. */
DL_INTERNAL int dl_conn_put(dl_conn *c, int argc, const char **argv, const size_t *lens,
                            uint64_t *end);

/* The poll events this connection waits for (0: closed), and one step of
 * I/O after poll reported `revents` on dl_conn_fd(c). */
DL_INTERNAL short dl_conn_events(const dl_conn *c);
DL_INTERNAL int dl_conn_fd(const dl_conn *c);
DL_INTERNAL void dl_conn_step(dl_conn *c, short revents);

/* For a blocking caller whose only wait is this
 * connection's reply: one read that waits up to slice_ms for bytes (in
 * place of a poll and a read), then the replies it completed, as
 * dl_conn_step would. Only on a connected plain socket with nothing left to
 * write; the first call sets the socket up for it (dl_transport_wait_slice).
 * 0 when it read or waited (a signal or the slice's end returns with
 * nothing), -1 when this connection cannot: poll it instead. */
DL_INTERNAL int dl_conn_read_wait(dl_conn *c, int slice_ms);
/* Why a connection still connecting at its deadline failed: the TLS
 * handshake once TCP was up, else `tcp` (words for the TCP connect). */
DL_INTERNAL const char *dl_conn_connect_late(const dl_conn *c, const char *tcp);

/* Fail the connection (a reply overdue, a connect timed out): close it,
 * set status, timed_out and err (fmt takes the address, then detail), and
 * run on_fail. */
DL_INTERNAL void dl_conn_fail(dl_conn *c, int status, int timed_out, const char *fmt,
                              const char *detail);

#endif
