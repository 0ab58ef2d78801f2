/* conn.c - one non-blocking connection: connect, setup, writes, reads
 * and bounded replies (conn.h). */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <hiredis/sds.h>

#include "clock.h"
#include "dlock.h"
#include "resolve.h"
#include "resp.h"

/* ---- reply limits: wrappers around hiredis's reply object functions ---- */

static dl_conn *task_conn(const redisReadTask *task) { return task ? task->privdata : NULL; }

static int count_object(const redisReadTask *task) {
    dl_conn *c = task_conn(task);
    if (c == NULL)
        return 0;
    return ++c->objects > DL_REPLY_MAX_OBJECTS ? -1 : 0;
}

static void *limited_string(const redisReadTask *task, char *str, size_t len) {
    dl_conn *c = task_conn(task);
    if (c == NULL || len > DL_REPLY_MAX_STRING || count_object(task) != 0)
        return NULL;
    return c->orig_fn->createString(task, str, len);
}

static void *limited_array(const redisReadTask *task, int elements) {
    dl_conn *c = task_conn(task);
    if (c == NULL || elements < 0 || elements > DL_REPLY_MAX_ELEMENTS || count_object(task) != 0)
        return NULL;
    return c->orig_fn->createArray(task, elements);
}

static void *limited_integer(const redisReadTask *task, long long v) {
    dl_conn *c = task_conn(task);
    if (c == NULL || count_object(task) != 0)
        return NULL;
    return c->orig_fn->createInteger(task, v);
}

static void *limited_nil(const redisReadTask *task) {
    dl_conn *c = task_conn(task);
    if (c == NULL || count_object(task) != 0)
        return NULL;
    return c->orig_fn->createNil(task);
}

static void limited_free(void *obj) { freeReplyObject(obj); }

/* ---- life cycle ---- */

void dl_conn_init(dl_conn *c, const char *host, int port, const char *path,
                  const dl_conn_cfg *cfg) {
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->epoch = -1;
    c->state = DL_CONN_CLOSED;
    c->status = DLOCK_OK;
    if (path != NULL) {
        c->is_unix = 1;
        snprintf(c->path, sizeof c->path, "%s", path);
        snprintf(c->addr, sizeof c->addr, "%s", path);
    } else {
        snprintf(c->host, sizeof c->host, "%s", host ? host : "");
        c->port = port;
        if (strchr(c->host, ':') != NULL)
            snprintf(c->addr, sizeof c->addr, "[%s]:%d", c->host, port);
        else
            snprintf(c->addr, sizeof c->addr, "%s:%d", c->host, port);
    }
    c->fn.createString = limited_string;
    c->fn.createArray = limited_array;
    c->fn.createInteger = limited_integer;
    c->fn.createNil = limited_nil;
    c->fn.freeObject = limited_free;
}

/* Forget why the last connection failed: a new one starts clean. */
static void reset(dl_conn *c) {
    c->skip = 0;
    c->timed_out = 0;
    c->code = 0;
    c->status = DLOCK_OK;
    c->err[0] = '\0';
}

/* Close the socket (on_close hears of it first) and free the hiredis
 * context (if any). */
static void drop_ctx(dl_conn *c) {
    if (c->ctx != NULL && c->on_close != NULL)
        c->on_close(c);
    c->tr.quiet = c->cfg != NULL && c->cfg->forked;
    dl_transport_close(&c->tr);
    if (c->ctx != NULL) {
        /* Give hiredis back its own reply functions so redisFree can free a
         * half-built reply with the matching allocator. */
        if (c->ctx->reader != NULL && c->orig_fn != NULL)
            c->ctx->reader->fn = c->orig_fn;
        redisFree(c->ctx);
        c->ctx = NULL;
        c->gen++;
    }
    dl_resolve_drop(c->res); /* still running: it ends alone */
    c->res = NULL;
    c->state = DL_CONN_CLOSED;
}

void dl_conn_close(dl_conn *c) {
    reset(c);
    free(c->fmt);
    c->fmt = NULL;
    c->fmt_cap = 0;
    drop_ctx(c);
}

static void fail(dl_conn *c, int status, const char *fmt, const char *detail) {
    c->status = status;
    snprintf(c->err, sizeof c->err, fmt, c->addr, detail);
    drop_ctx(c);
    if (c->on_fail != NULL)
        c->on_fail(c);
}

void dl_conn_fail(dl_conn *c, int status, int timed_out, const char *fmt, const char *detail) {
    c->timed_out = timed_out;
    fail(c, status, fmt, detail);
}

/* What goes first in a new connection's pipeline: AUTH and SELECT, then
 * (cfg->ask_policy) the maxmemory-policy question; their replies are
 * checked and dropped by the reader loop (c->skip). DLOCK_OK or
 * DLOCK_ENOMEM. */
static int queue_setup(dl_conn *c) {
    redisContext *ctx = c->ctx;
    if (c->cfg != NULL && c->cfg->has_password) {
        const char *argv[3];
        size_t lens[3];
        int argc = 0;
        argv[argc] = "AUTH";
        lens[argc++] = 4;
        if (c->cfg->user != NULL && c->cfg->user[0] != '\0') {
            argv[argc] = c->cfg->user;
            lens[argc++] = strlen(c->cfg->user);
        }
        argv[argc] = c->cfg->password;
        lens[argc++] = strlen(c->cfg->password);
        if (redisAppendCommandArgv(ctx, argc, argv, lens) != REDIS_OK)
            return DLOCK_ENOMEM;
        c->skip++;
        c->auth_end = sdslen(ctx->obuf);
    }
    if (c->cfg != NULL && c->cfg->db != 0) {
        char num[24];
        int n = snprintf(num, sizeof num, "%d", c->cfg->db);
        const char *argv[2] = {"SELECT", num};
        size_t lens[2] = {6, (size_t)n};
        if (redisAppendCommandArgv(ctx, 2, argv, lens) != REDIS_OK)
            return DLOCK_ENOMEM;
        c->skip++;
    }
    c->policy = DL_POLICY_UNKNOWN;
    c->policy_name[0] = '\0';
    c->policy_told = 0;
    c->probing = 0;
    if (c->cfg != NULL && c->cfg->ask_policy) {
        const char *argv[3] = {"CONFIG", "GET", "maxmemory-policy"};
        size_t lens[3] = {6, 3, 16};
        if (redisAppendCommandArgv(ctx, 3, argv, lens) != REDIS_OK)
            return DLOCK_ENOMEM;
        c->skip++;
        c->probing = 1;
    }
    return DLOCK_OK;
}

/* Make ctx c's context, on the socket it connects: close-on-exec, the
 * transport, the reply limits. The context it replaces (the look-up's
 * placeholder, or a socket whose connect failed: nothing was written to
 * either) hands over the requests queued in it, and its descriptor leaves
 * the loop (on_close) before it closes. */
static int attach_socket(dl_conn *c, redisContext *ctx) {
    if (c->ctx != NULL) {
        sds queued = c->ctx->obuf;
        c->ctx->obuf = ctx->obuf;
        ctx->obuf = queued;
        if (c->on_close != NULL)
            c->on_close(c);
        dl_transport_close(&c->tr); /* a socket whose connect failed: nothing read */
        if (c->ctx->reader != NULL && c->ctx->reader->fn == &c->fn)
            c->ctx->reader->fn = c->orig_fn;
        redisFree(c->ctx);
        c->gen++;
    }
    c->ctx = ctx;
    if (ctx->err) {
        fail(c, DLOCK_EIO, "connect %s: %s", ctx->errstr);
        return DLOCK_EIO;
    }
    /* A program that forks and execs must not hand our sockets on. */
    fcntl(ctx->fd, F_SETFD, FD_CLOEXEC);
    int trc = dl_transport_open(&c->tr, ctx->fd, c->cfg ? c->cfg->tls : NULL, c->host);
    if (trc != DLOCK_OK) {
        fail(c, trc, "connect %s: %s", c->tr.err);
        return trc;
    }
    c->hs_ev = POLLOUT; /* the TCP connect completes */
    c->orig_fn = ctx->reader->fn;
    ctx->reader->fn = &c->fn;
    ctx->reader->privdata = c;
    return DLOCK_OK;
}

/* Start connecting to c's own address or path. */
static int connect_to(dl_conn *c) {
    redisContext *ctx = c->is_unix ? redisConnectUnixNonBlock(c->path)
                                   : redisConnectNonBlock(c->host, c->port);
    if (ctx == NULL) {
        fail(c, DLOCK_ENOMEM, "connect %s: %s", "out of memory");
        return DLOCK_ENOMEM;
    }
    return attach_socket(c, ctx);
}

/* Connect to the look-up's next address. One that fails at once (no
 * route, no such address here) gives way to the next; the last one's
 * failure is the connection's. */
static void connect_next(dl_conn *c) {
    for (;;) {
        const char *ip = dl_resolve_addr(c->res, c->res_next++);
        redisContext *ctx = redisConnectNonBlock(ip, c->port);
        if (ctx != NULL && ctx->err && c->res_next < c->res_n) {
            redisFree(ctx);
            continue;
        }
        if (ctx == NULL)
            fail(c, DLOCK_ENOMEM, "connect %s: %s", "out of memory");
        else
            attach_socket(c, ctx);
        return;
    }
}

/* A host name: looked up on a thread (resolve.h) while a placeholder
 * context on the look-up's descriptor collects the requests. */
static int start_lookup(dl_conn *c) {
    int fd = -1;
    c->res_n = c->res_next = 0;
    c->res = dl_resolve_start(c->host, c->port, &fd);
    if (c->res == NULL) {
        fail(c, DLOCK_EIO, "connect %s: cannot start the host name lookup: %s",
             strerror(errno));
        return DLOCK_EIO;
    }
    c->ctx = redisConnectFd(fd); /* owns fd: redisFree closes it */
    if (c->ctx == NULL) {
        close(fd);
        fail(c, DLOCK_ENOMEM, "connect %s: %s", "out of memory");
        return DLOCK_ENOMEM;
    }
    c->hs_ev = POLLIN; /* the answer is in */
    return DLOCK_OK;
}

static int start_connect(dl_conn *c) {
    c->tcp_up = 0;
    c->refused = 0;
    c->rd_ev = POLLIN;
    c->wr_ev = POLLOUT;
    c->objects = 0;
    c->app_bytes = c->wr_bytes = c->auth_end = 0;
    int ms = c->cfg ? c->cfg->connect_timeout_ms : 1000;
    c->connect_deadline_us = dl_mono_us() + (int64_t)ms * 1000;
    int rc = c->is_unix || dl_host_is_address(c->host) ? connect_to(c) : start_lookup(c);
    if (rc != DLOCK_OK)
        return rc;
    c->state = DL_CONN_CONNECTING;
    rc = queue_setup(c);
    if (rc != DLOCK_OK) {
        fail(c, rc, "connect %s: %s", "out of memory");
        return rc;
    }
    c->app_bytes = sdslen(c->ctx->obuf);
    return DLOCK_OK;
}

/* Write n in decimal at p; returns the end. */
static char *put_uint(char *p, size_t n) {
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    while (k > 0)
        *p++ = tmp[--k];
    return p;
}

/* Format argv as a RESP array into c->fmt. hiredis's formatter builds each
 * "$len" header with sdscatfmt and dominated the client's CPU profile. */
static int format_command(dl_conn *c, int argc, const char **argv, const size_t *lens,
                          size_t *out_len) {
    size_t need = 16;
    for (int i = 0; i < argc; i++)
        need += lens[i] + 24;
    if (need > c->fmt_cap) {
        size_t cap = c->fmt_cap ? c->fmt_cap : 256;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(c->fmt, cap);
        if (nb == NULL)
            return -1;
        c->fmt = nb;
        c->fmt_cap = cap;
    }
    char *p = c->fmt;
    *p++ = '*';
    p = put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = put_uint(p, lens[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *out_len = (size_t)(p - c->fmt);
    return 0;
}

/* Whether what an idle connection received leaves it usable: only TLS
 * records that carry no data do (the session tickets a TLS 1.3 server sends
 * after the handshake); EOF, a reset or any byte of data do not. */
static int idle_input_ok(dl_conn *c, short revents) {
    char b[512];
    size_t n;
    return revents == POLLIN && !c->tr.ops->pending(&c->tr) &&
           c->tr.ops->read(&c->tr, b, sizeof b, &n) == DL_IO_WANT_READ;
}

/* An idle connection the server closed meanwhile (restart, CLIENT KILL,
 * timeout) is found before we send on it, so that a later EOF really means
 * "the request may have run". Skipped for connections used within the last
 * millisecond: a hot loop pays no extra system call. */
void dl_conn_check_idle(dl_conn *c) {
    if (c->state != DL_CONN_READY)
        return;
    if (dl_mono_us() - c->last_io_us < 1000)
        return;
    struct pollfd p = {.fd = c->ctx->fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) > 0 && p.revents != 0 && !idle_input_ok(c, p.revents))
        dl_conn_close(c); /* EOF, reset or unexpected bytes: start afresh */
}

int dl_conn_put(dl_conn *c, int argc, const char **argv, const size_t *lens, uint64_t *end) {
    if (c->state == DL_CONN_CLOSED) {
        reset(c);
        int rc = start_connect(c);
        if (rc != DLOCK_OK)
            return rc;
    }
    size_t flen;
    if (format_command(c, argc, argv, lens, &flen) != 0 ||
        redisAppendFormattedCommand(c->ctx, c->fmt, flen) != REDIS_OK) {
        /* Nothing was queued; the connection stays usable (its status is
         * left alone: in pipelined mode it is the connection's health). */
        snprintf(c->err, sizeof c->err, "%s: out of memory", c->addr);
        return DLOCK_ENOMEM;
    }
    c->app_bytes += flen;
    *end = c->app_bytes;
    return DLOCK_OK;
}

/* A transport call that moved nothing: remember the poll events it waits
 * for in *ev (returns 0), or fail the connection with fmt (returns -1). A
 * refusal before any reply means the server read no request of ours. */
static int io_blocked(dl_conn *c, int r, short *ev, const char *fmt) {
    if (r == DL_IO_WANT_READ || r == DL_IO_WANT_WRITE) {
        *ev = r == DL_IO_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    if (r == DL_IO_REFUSED)
        c->refused = 1; /* no request on it ran */
    fail(c, DLOCK_EIO, fmt, c->tr.err);
    return -1;
}

/* One step of connecting: a host name's look-up answered (connect to its
 * first address), the TCP connect's outcome (refused: the name's next
 * address, if any), then (TLS) the handshake, until the transport is
 * ready or asks to wait (hs_ev). */
static void finish_connect(dl_conn *c) {
    if (c->res != NULL && c->res_next == 0) { /* the look-up answered */
        if (!dl_resolve_done(c->res))
            return; /* not yet (woken for another reason) */
        char why[200];
        c->res_n = dl_resolve_count(c->res, why, sizeof why);
        if (c->res_n < 0)
            fail(c, DLOCK_EIO, "connect %s: %s", why);
        else
            connect_next(c);
        return; /* a TCP connect takes a while: wait for it */
    }
    if (!c->tcp_up) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->ctx->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0 && c->res != NULL && c->res_next < c->res_n) {
            connect_next(c); /* refused: the name's next address */
            return;
        }
        if (err != 0) {
            char why[160];
            if (c->res != NULL && c->res_n > 1)
                snprintf(why, sizeof why, "%s (each of its %d addresses)", strerror(err),
                         c->res_n);
            else
                snprintf(why, sizeof why, "%s", strerror(err));
            fail(c, DLOCK_EIO, "connect %s: %s", why);
            return;
        }
        c->tcp_up = 1;
        dl_resolve_drop(c->res); /* connected: the other addresses are not needed */
        c->res = NULL;
    }
    int r = c->tr.ops->handshake(&c->tr);
    if (r == DL_IO_DONE)
        c->state = DL_CONN_READY;
    else
        io_blocked(c, r, &c->hs_ev, "connect %s: %s");
}

/* Why a connection that was still connecting at its deadline failed: the
 * host name's look-up while it runs, the TLS handshake once TCP was up,
 * else `tcp` (the TCP connect's words). */
const char *dl_conn_connect_late(const dl_conn *c, const char *tcp) {
    if (c->res != NULL && c->res_next == 0)
        return "host name lookup did not complete in time";
    if (c->tcp_up)
        return "TLS handshake did not complete in time (a plain-text port, or a server that "
               "accepts connections but does not answer)";
    return tcp;
}

/* The answer to CONFIG GET maxmemory-policy: {"maxmemory-policy", name},
 * or an error (CONFIG refused: unknown). */
static void note_policy(dl_conn *c, const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[1]->len == 0 ||
        r->element[1]->len >= sizeof c->policy_name)
        return;
    memcpy(c->policy_name, r->element[1]->str, r->element[1]->len);
    c->policy_name[r->element[1]->len] = '\0';
    c->policy = strcmp(c->policy_name, "noeviction") == 0 ? DL_POLICY_SAFE : DL_POLICY_UNSAFE;
}

/* Pull every complete reply out of the reader. */
static void drain_replies(dl_conn *c) {
    while (c->status == DLOCK_OK && c->ctx != NULL) {
        void *r = NULL;
        if (redisGetReplyFromReader(c->ctx, &r) != REDIS_OK) {
            const char *why = c->ctx->err == REDIS_ERR_OOM
                                  ? "reply exceeds the size limits (or out of memory)"
                                  : c->ctx->errstr;
            fail(c, DLOCK_EPROTO, "bad reply from %s: %s", why);
            return;
        }
        if (r == NULL)
            return;
        c->objects = 0;
        redisReply *reply = r;
        if (c->skip > 0) {
            c->skip--;
            if (c->probing && c->skip == 0) { /* the policy question went last */
                c->probing = 0;
                note_policy(c, reply);
                freeReplyObject(reply);
                continue;
            }
            if (reply->type == REDIS_REPLY_ERROR) {
                /* Only the error code: a server (or a renamed AUTH) may echo
                 * the arguments, and the password is one of them. */
                char msg[64];
                int code = dl_srv_code(reply);
                snprintf(msg, sizeof msg, "%s (reply not shown: it may quote the password)",
                         code == DL_SRV_OTHER ? "error" : dl_srv_code_name(code));
                freeReplyObject(reply);
                c->code = code; /* before fail(): its on_fail hands it on */
                fail(c, DLOCK_ESERVER, "AUTH/SELECT on %s failed: %s", msg);
                c->code = code;
                return;
            }
            freeReplyObject(reply);
            continue;
        }
        c->on_reply(c, reply); /* may fail (close) the connection */
    }
}

/* Write what the output buffer holds, through the transport (never
 * hiredis's write(2), which can raise SIGPIPE). */
static void do_write(dl_conn *c) {
    redisContext *ctx = c->ctx;
    size_t len = sdslen(ctx->obuf);
    if (len > 0) {
        size_t n = 0;
        int r = c->tr.ops->write(&c->tr, ctx->obuf, len, &n);
        if (r != DL_IO_DONE) {
            io_blocked(c, r, &c->wr_ev, "write to %s: %s");
            return;
        }
        c->wr_ev = POLLOUT;
        c->wr_bytes += (uint64_t)n; /* a request is written whole (it may
                                       run) once this passes its end */
        /* This write carried (part of) AUTH and its password: wipe it from
         * the buffer before the buffer is reused. Later writes skip this. */
        if (c->wr_bytes - (uint64_t)n < c->auth_end)
            explicit_bzero(ctx->obuf, n);
        if (n == len) {
            sdsclear(ctx->obuf); /* keep the allocation for the next command */
        } else {
            sdsrange(ctx->obuf, (int)n, -1);
        }
    }
}

/* Read what the socket has into hiredis's reader (and, with TLS, what the
 * session still holds: poll cannot see it), then take out the replies.
 * wait: the first read waits for bytes (read_wait, bounded by its slice). */
static void read_some(dl_conn *c, int wait) {
    char buf[16 * 1024];
    redisReader *rd = c->ctx->reader;
    for (;;) {
        size_t n = 0;
        int r = wait ? c->tr.ops->read_wait(&c->tr, buf, sizeof buf, &n)
                     : c->tr.ops->read(&c->tr, buf, sizeof buf, &n);
        wait = 0;
        if (r != DL_IO_DONE) {
            if (io_blocked(c, r, &c->rd_ev, "read from %s: %s") != 0)
                return;
            break;
        }
        c->rd_ev = POLLIN;
        if (redisReaderFeed(rd, buf, n) != REDIS_OK) {
            fail(c, DLOCK_EIO, "read from %s: %s", rd->errstr[0] ? rd->errstr : "out of memory");
            return;
        }
        if (rd->len - rd->pos > DL_READBUF_MAX) {
            fail(c, DLOCK_EPROTO, "bad reply from %s: %s", "reply larger than the buffer limit");
            return;
        }
        if (!c->tr.ops->pending(&c->tr))
            break;
    }
    c->last_io_us = dl_mono_us();
    drain_replies(c);
}

static void do_read(dl_conn *c) { read_some(c, 0); }

int dl_conn_read_wait(dl_conn *c, int slice_ms) {
    if (c->ctx == NULL || c->state != DL_CONN_READY || sdslen(c->ctx->obuf) > 0 ||
        dl_transport_wait_slice(&c->tr, slice_ms) != 0)
        return -1;
    read_some(c, 1);
    return 0;
}

short dl_conn_events(const dl_conn *c) {
    if (c->ctx == NULL)
        return 0;
    if (c->state == DL_CONN_CONNECTING)
        return c->hs_ev; /* the TCP connect, then (TLS) the handshake */
    return (short)(c->rd_ev | (sdslen(c->ctx->obuf) > 0 ? c->wr_ev : 0));
}

int dl_conn_fd(const dl_conn *c) { return c->ctx != NULL ? c->ctx->fd : -1; }

void dl_conn_step(dl_conn *c, short revents) {
    if (c->ctx == NULL)
        return;
    if (c->state == DL_CONN_CONNECTING) {
        if (revents == 0)
            return;
        finish_connect(c);
        if (c->state != DL_CONN_READY)
            return;
    }
    /* A connected socket almost always has room: write without waiting.
     * A failure's callbacks may already have started a new connection:
     * the events polled were the old socket's, so stop there. */
    redisContext *was = c->ctx;
    if (sdslen(c->ctx->obuf) > 0)
        do_write(c);
    /* Bytes a TLS session already holds show up in no poll: read them too. */
    if (c->ctx == was &&
        ((revents & (c->rd_ev | POLLERR | POLLHUP)) || c->tr.ops->pending(&c->tr)))
        do_read(c);
}
