/* doctor_conn.c - `dlock doctor`'s connections: blocking, one timeout for
 * connecting and for each command, plain or TLS.
 *
 * Plain connections are hiredis's own blocking contexts. A TLS one uses
 * hiredis only for the TCP connect and its reply reader: the bytes go
 * through the library's TLS transport (src/net/tls.c, the same
 * verification as every other dlock connection), driven here by poll with
 * the command's deadline. A host name is looked up as the library does
 * (src/net/resolve.c: on a thread, within the timeout, which hiredis's
 * connect does not cover) and its addresses are tried in turn while one
 * refuses.
 *
 * The password goes out once per server in an AUTH formatted into a buffer
 * of ours and wiped once written (hiredis 0.14 frees its output buffer
 * without wiping it); neither it nor the server's reply to AUTH is shown.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "doctor.h"
#include "resolve.h"

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until the transport's last call may go on (r: DL_IO_WANT_*). */
static int wait_io(dconn *dc, int r, long long deadline) {
    struct pollfd p = {.fd = dc->ctx->fd, .events = r == DL_IO_WANT_READ ? POLLIN : POLLOUT};
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(dc->err, sizeof dc->err, "timed out");
            return -1;
        }
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            snprintf(dc->err, sizeof dc->err, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

/* A failed TLS step: 0 to try again (after waiting), -1 when it failed. */
static int tls_step(dconn *dc, int r, long long deadline) {
    if (r == DL_IO_WANT_READ || r == DL_IO_WANT_WRITE)
        return wait_io(dc, r, deadline);
    snprintf(dc->err, sizeof dc->err, "%s", dc->tr.err);
    return -1;
}

static int tls_write_all(dconn *dc, const char *buf, size_t len) {
    long long deadline = now_ms() + dc->timeout_ms;
    size_t off = 0;
    while (off < len) {
        size_t n = 0;
        int r = dc->tr.ops->write(&dc->tr, buf + off, len - off, &n);
        if (r == DL_IO_DONE)
            off += n;
        else if (tls_step(dc, r, deadline) != 0)
            return -1;
    }
    return 0;
}

static redisReply *tls_reply(dconn *dc) {
    long long deadline = now_ms() + dc->timeout_ms;
    char buf[16384];
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(dc->ctx->reader, &reply) != REDIS_OK) {
            snprintf(dc->err, sizeof dc->err, "bad reply: %s", dc->ctx->reader->errstr);
            return NULL;
        }
        if (reply != NULL)
            return reply;
        size_t n = 0;
        int r = dc->tr.ops->read(&dc->tr, buf, sizeof buf, &n);
        if (r == DL_IO_DONE) {
            if (redisReaderFeed(dc->ctx->reader, buf, n) != REDIS_OK) {
                snprintf(dc->err, sizeof dc->err, "out of memory");
                return NULL;
            }
        } else if (tls_step(dc, r, deadline) != 0) {
            return NULL;
        }
    }
}

/* Write len bytes and read one reply, over whichever transport. */
static redisReply *roundtrip(dconn *dc, const char *cmd, size_t len) {
    if (dc->ctx == NULL || dc->err[0] != '\0')
        return NULL;
    if (dc->tr.ops != NULL) {
        if (tls_write_all(dc, cmd, len) != 0)
            return NULL;
        return tls_reply(dc);
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(dc->ctx->fd, cmd + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(dc->err, sizeof dc->err, "write: %s", w < 0 ? strerror(errno) : "closed");
            return NULL;
        }
        off += (size_t)w;
    }
    void *r = NULL;
    if (redisGetReply(dc->ctx, &r) != REDIS_OK) {
        snprintf(dc->err, sizeof dc->err, "%s", dc->ctx->errstr);
        return NULL;
    }
    return r;
}

redisReply *dcmd_argv(dconn *dc, int argc, const char **argv) {
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0)
        return NULL;
    redisReply *r = roundtrip(dc, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

redisReply *dcmd(dconn *dc, const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    redisReply *r = roundtrip(dc, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

/* The TLS handshake on the connected socket, within the timeout. */
static int handshake(doctor *d, dconn *dc, const char *host) {
    int fl = fcntl(dc->ctx->fd, F_GETFL);
    if (fl < 0 || fcntl(dc->ctx->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        dl_transport_open(&dc->tr, dc->ctx->fd, d->tls, host) != DLOCK_OK) {
        snprintf(dc->err, sizeof dc->err, "%s", dc->tr.err[0] ? dc->tr.err : strerror(errno));
        return -1;
    }
    long long deadline = now_ms() + dc->timeout_ms;
    int r;
    while ((r = dc->tr.ops->handshake(&dc->tr)) != DL_IO_DONE) {
        if (tls_step(dc, r, deadline) != 0) {
            if (r == DL_IO_WANT_READ || r == DL_IO_WANT_WRITE)
                snprintf(dc->err, sizeof dc->err,
                         "TLS handshake did not complete in time (a plain-text port, or a "
                         "server that accepts connections but does not answer)");
            return -1;
        }
    }
    return 0;
}

static struct timeval tv_ms(long long ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Connect to host name `host` within timeout_ms, look-up included: NULL
 * with the reason in dc->err, or a context (its err set if the last
 * address failed). */
static redisContext *connect_name(dconn *dc, const char *host, int port, long long timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    int fd = -1;
    dl_resolve *r = dl_resolve_start(host, port, &fd);
    if (r == NULL) {
        snprintf(dc->err, sizeof dc->err, "cannot start the host name lookup: %s",
                 strerror(errno));
        return NULL;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (!dl_resolve_done(r) && now_ms() < deadline)
        poll(&p, 1, (int)(deadline - now_ms()));
    close(fd);
    int n = -1;
    if (!dl_resolve_done(r))
        snprintf(dc->err, sizeof dc->err, "host name lookup did not complete in time");
    else
        n = dl_resolve_count(r, dc->err, sizeof dc->err);
    redisContext *ctx = NULL;
    for (int i = 0; i < n && (ctx == NULL || ctx->err); i++) {
        long long left = deadline - now_ms();
        redisFree(ctx);
        ctx = redisConnectWithTimeout(dl_resolve_addr(r, i), port, tv_ms(left > 1 ? left : 1));
    }
    dl_resolve_drop(r);
    return ctx;
}

int dconn_open(doctor *d, server *s, dconn *dc, const char *host, int port, const char *path) {
    memset(dc, 0, sizeof *dc);
    dc->timeout_ms = d->timeout_ms;
    struct timeval tv = tv_ms(d->timeout_ms);
    if (path != NULL)
        dc->ctx = redisConnectUnixWithTimeout(path, tv);
    else if (dl_host_is_address(host))
        dc->ctx = redisConnectWithTimeout(host, port, tv);
    else
        dc->ctx = connect_name(dc, host, port, d->timeout_ms);
    const char *why = dc->ctx == NULL && dc->err[0] != '\0' ? dc->err
                      : dc->ctx == NULL                      ? "out of memory"
                      : dc->ctx->err                         ? dc->ctx->errstr
                      : redisSetTimeout(dc->ctx, tv) != REDIS_OK ? "cannot set the command timeout"
                                                               : NULL;
    if (why == NULL && d->tls != NULL && path == NULL && handshake(d, dc, host) != 0)
        why = dc->err;
    if (why != NULL) {
        snprintf(s->error, sizeof s->error, "%s", why);
        dconn_close(dc);
        return -1;
    }
    return 0;
}

void dconn_close(dconn *dc) {
    dl_transport_close(&dc->tr);
    redisFree(dc->ctx);
    dc->ctx = NULL;
}

const char *dconn_error(const dconn *dc) {
    if (dc->err[0] != '\0')
        return dc->err;
    return dc->ctx != NULL && dc->ctx->err != 0 ? dc->ctx->errstr : NULL;
}

int dconn_auth(doctor *d, server *s, dconn *dc) {
    if (!d->u.has_password)
        return 0;
    const char *argv[3] = {"AUTH"};
    size_t lens[3] = {4};
    int argc = 1;
    if (d->u.user[0] != '\0') {
        argv[argc] = d->u.user;
        lens[argc++] = strlen(d->u.user);
    }
    argv[argc] = d->u.password;
    lens[argc++] = strlen(d->u.password);
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        snprintf(s->error, sizeof s->error, "out of memory");
        return -1;
    }
    redisReply *r = roundtrip(dc, cmd, (size_t)len);
    explicit_bzero(cmd, (size_t)len);
    redisFreeCommand(cmd);
    if (r == NULL) {
        const char *why = dconn_error(dc);
        snprintf(s->error, sizeof s->error, "no answer to AUTH (%s)",
                 why != NULL ? why : "connection lost");
        return -1;
    }
    int refused = r->type == REDIS_REPLY_ERROR;
    freeReplyObject(r);
    if (refused) {
        snprintf(s->error, sizeof s->error,
                 "the server refused AUTH: wrong user name or password, or the user is "
                 "disabled (its reply is not shown: it may quote the password)");
        return -1;
    }
    return 0;
}
