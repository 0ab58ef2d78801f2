/* tls.c - the TLS transport (tls.h, transport.h) over OpenSSL 3.
 *
 * Non-blocking throughout: the handshake, reads and writes return
 * WANT_READ / WANT_WRITE to the poll loop over conn.c, so the connect deadline
 * covers the handshake and a peer that accepts TCP but never answers costs
 * at most the connect timeout.
 *
 * Socket I/O goes through a BIO of ours (one BIO_METHOD per dl_tls, not a
 * global) that writes with send(MSG_NOSIGNAL): OpenSSL's own socket BIO
 * uses write(2), which raises SIGPIPE on a closed peer.
 *
 * OpenSSL keeps an error queue per thread. Every entry point clears it
 * before its call and after reading it, so nothing we leave there misleads
 * other OpenSSL users in the program, and nothing of theirs misleads us.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct dl_tls {
    SSL_CTX *ctx;
    BIO_METHOD *bio; /* socket I/O with MSG_NOSIGNAL */
    int verify;
    char server_name[256]; /* "" for each connection's own host */
};

/* One connection's TLS state (dl_transport.impl). Heap-allocated so the
 * BIO can point at it. */
typedef struct tls_conn {
    SSL *ssl;
    int fd;
    int sys_errno; /* errno of the BIO's last failed send/recv, 0 at EOF */
    int shook;     /* the handshake finished */
    int fatal;     /* a fatal error: no close_notify */
    int verify;
} tls_conn;

/* ---- the BIO --------------------------------------------------------------- */

static int bio_write(BIO *b, const char *buf, int len) {
    tls_conn *tc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(tc->fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n >= 0)
        return (int)n;
    tc->sys_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    return -1;
}

static int bio_read(BIO *b, char *buf, int len) {
    tls_conn *tc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(tc->fd, buf, (size_t)len, 0);
    if (n >= 0) {
        tc->sys_errno = 0;
        return (int)n;
    }
    tc->sys_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_read(b);
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is buffered here */
}

static int bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

/* A fixed BIO type: BIO_get_new_index() would draw from a process-wide
 * counter that grows with every client made (types need not be unique). */
#define DL_BIO_TYPE (BIO_TYPE_SOURCE_SINK | 0x7e)

static BIO_METHOD *bio_method(void) {
    BIO_METHOD *m = BIO_meth_new(DL_BIO_TYPE, "dlock socket");
    if (m != NULL &&
        (BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
         BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    return m;
}

/* ---- messages -------------------------------------------------------------- */

/* The reason of the last OpenSSL error ("no such file", "wrong version
 * number"), then an empty queue. */
static const char *last_reason(char *buf, size_t n) {
    unsigned long e = ERR_peek_last_error();
    const char *r = NULL;
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
        r = strerror(ERR_GET_REASON(e));
    else if (e != 0)
        r = ERR_reason_error_string(e);
    snprintf(buf, n, "%s", r != NULL ? r : e != 0 ? "unknown error" : "no detail");
    ERR_clear_error();
    return buf;
}

/* What to do about a failed verification, by its code. */
static const char *verify_hint(long v) {
    switch (v) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return " (the certificate does not name this host: connect by a name or address "
               "it names, or give that name with tls_server_name=)";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return " (check this host's clock)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return " (not signed by a CA this client trusts: give the server's CA with "
               "tls_ca=FILE or tls_ca_dir=DIR)";
    default:
        return "";
    }
}

/* A fatal alert the server sent, with a hint by its kind. */
static const char *alert_hint(int reason) {
    switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return " (the server requires a client certificate: give tls_cert= and tls_key=)";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        return " (the server does not accept our client certificate)";
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        return " (no common protocol or cipher, or a client certificate is required)";
    default:
        return "";
    }
}

/* SSL_ERROR_SSL: say what failed, and whether the server can have taken any
 * of our bytes as a request. */
static int ssl_failure(dl_transport *t, tls_conn *tc, const char *what) {
    char why[160];
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
    last_reason(why, sizeof why);
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(tc->ssl);
        snprintf(t->err, sizeof t->err, "%s: server certificate verification failed: %s%s",
                 what, X509_verify_cert_error_string(v), verify_hint(v));
        return DL_IO_ERROR;
    }
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        snprintf(t->err, sizeof t->err, "%s: connection closed by the server", what);
        return DL_IO_CLOSED;
    }
    if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        /* TLS 1.3 finishes the client's handshake before the server has
         * checked the client's certificate: the server's verdict arrives as
         * an alert on the first read. It came before any reply, so the
         * server never read a request from this connection. */
        snprintf(t->err, sizeof t->err, "%s: the server refused the session: %s%s", what, why,
                 alert_hint(reason));
        return t->got_bytes ? DL_IO_ERROR : DL_IO_REFUSED;
    }
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
        reason == SSL_R_HTTP_REQUEST) {
        snprintf(t->err, sizeof t->err,
                 "%s: %s (the server does not speak TLS here: a plain-text port? use redis://)",
                 what, why);
        return DL_IO_ERROR;
    }
    snprintf(t->err, sizeof t->err, "%s: %s", what, why);
    return DL_IO_ERROR;
}

/* Map a failed SSL_connect/read/write (return value ret) to enum dl_io. */
static int tls_failed(dl_transport *t, tls_conn *tc, int ret, const char *what) {
    int e = SSL_get_error(tc->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return DL_IO_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return DL_IO_WANT_WRITE;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->err, sizeof t->err, "%s: the server closed the TLS session", what);
        ERR_clear_error();
        return DL_IO_CLOSED;
    }
    tc->fatal = 1;
    if (e == SSL_ERROR_SYSCALL) {
        int se = tc->sys_errno;
        ERR_clear_error();
        snprintf(t->err, sizeof t->err, "%s: %s", what,
                 se != 0 ? strerror(se) : "connection closed by the server");
        return se == 0 || se == ECONNRESET ? DL_IO_CLOSED : DL_IO_ERROR;
    }
    return ssl_failure(t, tc, what);
}

/* ---- the transport --------------------------------------------------------- */

static int tls_handshake(dl_transport *t) {
    tls_conn *tc = t->impl;
    ERR_clear_error();
    int r = SSL_connect(tc->ssl);
    if (r == 1) {
        tc->shook = 1;
        return DL_IO_DONE;
    }
    return tls_failed(t, tc, r, "TLS handshake");
}

static int tls_read(dl_transport *t, char *buf, size_t cap, size_t *n) {
    tls_conn *tc = t->impl;
    size_t got = 0;
    *n = 0;
    ERR_clear_error();
    if (SSL_read_ex(tc->ssl, buf, cap, &got) == 1) {
        *n = got;
        t->got_bytes = 1;
        return DL_IO_DONE;
    }
    return tls_failed(t, tc, 0, "TLS");
}

/* A write that fails before any reply may have met a server that refused
 * the session (TLS 1.3: after our side of the handshake) and closed: its
 * alert can still wait in the receive buffer, and says more than "reset". */
static int alert_behind(dl_transport *t, tls_conn *tc, int r) {
    char keep[sizeof t->err], b[64];
    size_t n = 0;
    if (t->got_bytes || (r != DL_IO_ERROR && r != DL_IO_CLOSED))
        return r;
    memcpy(keep, t->err, sizeof keep);
    ERR_clear_error();
    if (SSL_read_ex(tc->ssl, b, sizeof b, &n) != 1 &&
        tls_failed(t, tc, 0, "TLS") == DL_IO_REFUSED)
        return DL_IO_REFUSED;
    ERR_clear_error();
    memcpy(t->err, keep, sizeof keep);
    return r;
}

static int tls_write(dl_transport *t, const char *buf, size_t len, size_t *n) {
    tls_conn *tc = t->impl;
    size_t put = 0;
    *n = 0;
    ERR_clear_error();
    if (SSL_write_ex(tc->ssl, buf, len, &put) == 1) {
        *n = put;
        return DL_IO_DONE;
    }
    return alert_behind(t, tc, tls_failed(t, tc, 0, "TLS"));
}

/* Records already read off the socket (decrypted or not) are invisible to
 * poll. */
static int tls_pending(const dl_transport *t) {
    const tls_conn *tc = t->impl;
    return tc != NULL && SSL_has_pending(tc->ssl);
}

static void tls_close(dl_transport *t) {
    tls_conn *tc = t->impl;
    if (tc == NULL)
        return;
    /* One try at a close_notify, never waiting for it to leave; none on a
     * socket shared with another process (t->quiet). */
    if (tc->shook && !tc->fatal && !t->quiet)
        SSL_shutdown(tc->ssl);
    SSL_free(tc->ssl); /* and the BIO */
    ERR_clear_error();
    free(tc);
    t->impl = NULL;
}

static const dl_transport_ops tls_ops = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .close = tls_close,
};

/* 1 if name is an IPv4 or IPv6 literal; the address without an IPv6 zone
 * ("%eth0") is copied to ip. */
static int ip_literal(const char *name, char *ip, size_t n) {
    unsigned char bin[16];
    snprintf(ip, n, "%.*s", (int)strcspn(name, "%"), name);
    return inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1;
}

/* SNI and the name (or address) the certificate must carry. */
static int set_names(dl_transport *t, tls_conn *tc, const dl_tls *tls, const char *host) {
    const char *name = tls->server_name[0] ? tls->server_name : host;
    char ip[64];
    int is_ip = ip_literal(name, ip, sizeof ip);
    if (!is_ip && SSL_set_tlsext_host_name(tc->ssl, name) != 1) {
        snprintf(t->err, sizeof t->err, "TLS: bad server name '%.64s' for SNI", name);
        return DLOCK_EINVAL;
    }
    if (!tls->verify)
        return DLOCK_OK;
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tc->ssl), ip) != 1
              : SSL_set1_host(tc->ssl, name) != 1) {
        snprintf(t->err, sizeof t->err, "TLS: cannot check the certificate against '%.64s'",
                 name);
        return DLOCK_EINVAL;
    }
    SSL_set_hostflags(tc->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return DLOCK_OK;
}

int dl_tls_attach(dl_transport *t, const dl_tls *tls, const char *host) {
    tls_conn *tc = calloc(1, sizeof *tc);
    if (tc == NULL) {
        snprintf(t->err, sizeof t->err, "out of memory");
        return DLOCK_ENOMEM;
    }
    ERR_clear_error();
    tc->fd = t->fd;
    tc->verify = tls->verify;
    tc->ssl = SSL_new(tls->ctx);
    BIO *b = tc->ssl != NULL ? BIO_new(tls->bio) : NULL;
    if (b == NULL) {
        SSL_free(tc->ssl);
        free(tc);
        ERR_clear_error();
        snprintf(t->err, sizeof t->err, "out of memory");
        return DLOCK_ENOMEM;
    }
    BIO_set_data(b, tc);
    SSL_set_bio(tc->ssl, b, b);
    SSL_set_connect_state(tc->ssl);
    int rc = set_names(t, tc, tls, host);
    if (rc != DLOCK_OK) {
        SSL_free(tc->ssl);
        free(tc);
        ERR_clear_error();
        return rc;
    }
    t->impl = tc;
    t->ops = &tls_ops;
    return DLOCK_OK;
}

/* ---- settings ---------------------------------------------------------------- */

/* Never ask for a key's passphrase (OpenSSL's default asks on the terminal). */
static int no_passphrase(char *buf, int size, int rwflag, void *ud) {
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* A file we are about to hand to OpenSSL can be read; else why not (OpenSSL's
 * own message for a missing file is "system lib"). */
static int readable(const char *opt, const char *path, char *err, size_t errlen) {
    if (path == NULL || access(path, R_OK) == 0)
        return 1;
    snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
    return 0;
}

static int load_files(dl_tls *t, const dl_tls_opts *o, char *err, size_t errlen) {
    char why[160];
    if (o->verify && (o->ca_file != NULL || o->ca_dir != NULL)) {
        if (!readable("tls_ca", o->ca_file, err, errlen) ||
            (o->ca_dir != NULL && !readable("tls_ca_dir", o->ca_dir, err, errlen)))
            return DLOCK_EINVAL;
        if (SSL_CTX_load_verify_locations(t->ctx, o->ca_file, o->ca_dir) != 1) {
            snprintf(err, errlen, "tls_ca %s: cannot load: %s", o->ca_file ? o->ca_file : "",
                     last_reason(why, sizeof why));
            return DLOCK_EINVAL;
        }
    } else if (o->verify && SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        snprintf(err, errlen, "cannot load the system's CA certificates: %s",
                 last_reason(why, sizeof why));
        return DLOCK_EINVAL;
    }
    if (o->cert_file == NULL)
        return DLOCK_OK;
    const char *key = o->key_file != NULL ? o->key_file : o->cert_file;
    if (!readable("tls_cert", o->cert_file, err, errlen) ||
        !readable("tls_key", key, err, errlen))
        return DLOCK_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1) {
        snprintf(err, errlen, "tls_cert %s: cannot load: %s", o->cert_file,
                 last_reason(why, sizeof why));
        return DLOCK_EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(t->ctx) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errlen, "tls_key %s does not match tls_cert %s", key, o->cert_file);
        else
            snprintf(err, errlen, "tls_key %s: cannot load (unencrypted PEM expected): %s", key,
                     last_reason(why, sizeof why));
        ERR_clear_error();
        return DLOCK_EINVAL;
    }
    return DLOCK_OK;
}

int dl_tls_new(dl_tls **out, const dl_tls_opts *o, char *err, size_t errlen) {
    *out = NULL;
    dl_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return DLOCK_ENOMEM;
    ERR_clear_error();
    t->ctx = SSL_CTX_new(TLS_client_method());
    t->bio = bio_method();
    if (t->ctx == NULL || t->bio == NULL) {
        dl_tls_free(t);
        ERR_clear_error();
        snprintf(err, errlen, "out of memory");
        return DLOCK_ENOMEM;
    }
    t->verify = o->verify;
    snprintf(t->server_name, sizeof t->server_name, "%s",
             o->server_name != NULL ? o->server_name : "");
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* Partial writes and a buffer that may move between retries: hiredis's
     * output buffer is written as far as the socket takes it. No automatic
     * retry inside SSL_read: a record that carries no data (a session
     * ticket) returns WANT_READ to the poll loop. */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_clear_mode(t->ctx, SSL_MODE_AUTO_RETRY);
    /* Read what the socket has in one recv, not a record header and then
     * its body in two; what is left over is found with tls_pending. */
    SSL_CTX_set_read_ahead(t->ctx, 1);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(t->ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_default_passwd_cb(t->ctx, no_passphrase);
    int rc = load_files(t, o, err, errlen);
    if (rc != DLOCK_OK) {
        dl_tls_free(t);
        return rc;
    }
    *out = t;
    return DLOCK_OK;
}

int dl_tls_from_url(dl_tls **out, const dl_url *u, char *err, size_t errlen) {
    dl_tls_opts o = {
        .ca_file = u->tls_ca[0] ? u->tls_ca : NULL,
        .ca_dir = u->tls_ca_dir[0] ? u->tls_ca_dir : NULL,
        .cert_file = u->tls_cert[0] ? u->tls_cert : NULL,
        .key_file = u->tls_key[0] ? u->tls_key : NULL,
        .server_name = u->tls_server_name[0] ? u->tls_server_name : NULL,
        .verify = u->tls_verify,
    };
    return dl_tls_new(out, &o, err, errlen);
}

void dl_tls_free(dl_tls *tls) {
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    BIO_meth_free(tls->bio);
    free(tls);
    ERR_clear_error();
}

/* ---- dlock doctor ------------------------------------------------------------ */

int dl_tls_info_get(const dl_transport *t, dl_tls_info *out) {
    memset(out, 0, sizeof *out);
    const tls_conn *tc = t->ops == &tls_ops ? t->impl : NULL;
    if (tc == NULL || !tc->shook)
        return -1;
    snprintf(out->version, sizeof out->version, "%s", SSL_get_version(tc->ssl));
    snprintf(out->cipher, sizeof out->cipher, "%s", SSL_get_cipher_name(tc->ssl));
    out->verified = tc->verify && SSL_get_verify_result(tc->ssl) == X509_V_OK;
    X509 *cert = SSL_get0_peer_certificate(tc->ssl);
    if (cert != NULL) {
        X509_NAME_oneline(X509_get_subject_name(cert), out->subject, sizeof out->subject);
        X509_NAME_oneline(X509_get_issuer_name(cert), out->issuer, sizeof out->issuer);
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
            out->not_after = (int64_t)timegm(&tm);
    }
    ERR_clear_error();
    return 0;
}
