/* tls.h - TLS for dlock's connections (rediss://), with OpenSSL 3.
 *
 * A dl_tls holds one client's TLS settings: an SSL_CTX with its trust store
 * and client certificate, the name to check instead of each server's host
 * (when the URL gives one), and whether the server's certificate is checked
 * at all. Each client makes its own (no global state of ours; OpenSSL 3 needs
 * no global initialisation). A dl_tls is read-only once made, and must
 * outlive every connection attached to it.
 *
 * Verification is on unless turned off explicitly: the chain must lead to a
 * CA of ca_file / ca_dir (or of the system's store when neither is given),
 * and the certificate must name the host the connection was made to (DNS
 * name or IP address, X509_VERIFY_PARAM host / IP check; no partial
 * wildcards). SNI carries the host name (never an IP literal). TLS 1.2 is
 * the oldest version offered.
 */
#ifndef DLOCK_TLS_H
#define DLOCK_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"
#include "url.h"

typedef struct dl_tls_opts {
    const char *ca_file;     /* PEM file of trusted CAs, or NULL */
    const char *ca_dir;      /* directory of hashed CA files (c_rehash), or NULL */
    const char *cert_file;   /* client certificate chain (PEM) for mutual TLS, or NULL */
    const char *key_file;    /* its private key (PEM, not encrypted); with cert_file */
    const char *server_name; /* checked and sent as SNI instead of each server's host; NULL */
    int verify;              /* 0: do not check the server's certificate at all */
} dl_tls_opts;

/* Make a client's TLS settings. Files are read now, so a missing or bad
 * file fails here: DLOCK_EINVAL with a message in err naming the option
 * and the file. DLOCK_ENOMEM. *out is NULL on failure. */
DL_INTERNAL int dl_tls_new(dl_tls **out, const dl_tls_opts *o, char *err, size_t errlen);
/* dl_tls_new with the URL's tls_* options (u->tls must be set). */
DL_INTERNAL int dl_tls_from_url(dl_tls **out, const dl_url *u, char *err, size_t errlen);
/* Accepts NULL. */
DL_INTERNAL void dl_tls_free(dl_tls *tls);

/* For dl_transport_open: make t a TLS transport for a connection to host. */
DL_INTERNAL int dl_tls_attach(dl_transport *t, const dl_tls *tls, const char *host);

/* What an established session looks like (dlock doctor). */
typedef struct dl_tls_info {
    char version[16];  /* "TLSv1.3" */
    char cipher[64];   /* "TLS_AES_256_GCM_SHA384" */
    char subject[160]; /* the server certificate's subject, one line */
    char issuer[160];
    int verified;      /* the chain and the name were checked */
    int64_t not_after; /* the certificate's expiry (Unix seconds), 0 unknown */
} dl_tls_info;

/* Fill *out for a TLS transport whose handshake finished. Returns 0, or -1
 * for a plain transport or one not yet established. */
DL_INTERNAL int dl_tls_info_get(const dl_transport *t, dl_tls_info *out);

#endif
