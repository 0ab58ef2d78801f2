/* tls_env.h - what the TLS tests share: certificates made at test time by
 * mkcerts.sh (the openssl tool) in a private directory, redis-servers with a
 * TLS port next to their plain one (the harness's admin connection stays
 * plain), a Redis Cluster whose nodes talk TLS, and URLs for them.
 *
 * Everything is started through the harness (tests/harness/harness.h):
 * killed and removed on exit, on the test timeout and on signals.
 */
#ifndef DLOCK_TLS_ENV_H
#define DLOCK_TLS_ENV_H

#include <stddef.h>

#include "dlock.h"
#include "harness.h"
#include "itest.h" /* IT_RC, it_client (tests/integration) */

/* Makes the certificates (mkcerts.sh lists them). Ends the test on failure. */
void te_init(void);
/* Path of a file in the certificate directory, e.g. te_file("ca.crt").
 * Points into one of 16 rotating static buffers. */
const char *te_file(const char *name);

/* A redis-server on a free plain port with a TLS port too, serving the
 * certificate `cert` (mkcerts.sh's name: "server", "expired", ...) and
 * trusting ca.crt for client certificates. Client certificates are not
 * asked for unless extra says --tls-auth-clients yes. extra (NULL-terminated,
 * may be NULL) is appended. Sets *tls_port. Ends the test on failure. */
th_server *te_server(const char *cert, const char *const *extra, int *tls_port);

/* "rediss://127.0.0.1:port?tls_ca=<dir>/ca.crt" and "&query" (when query is
 * not NULL) into buf; returns buf. */
const char *te_url(char *buf, size_t n, int port, const char *query);

/* A Redis Cluster of n (3..6) masters with --tls-cluster yes (the cluster
 * bus is TLS too), slots split evenly, built with CLUSTER ADDSLOTSRANGE and
 * CLUSTER MEET over the plain admin ports. */
#define TE_MAX_NODES 6
typedef struct te_cluster {
    int n;
    th_server *node[TE_MAX_NODES];
    int tls_port[TE_MAX_NODES];
    char url[600]; /* rediss-cluster://127.0.0.1:T1,...?tls_ca=... */
} te_cluster;
/* Ends the test on failure. */
void te_cluster_start(te_cluster *k, int n);
void te_cluster_free(te_cluster *k);
/* Index of the node whose CLUSTER SLOTS (asked of node 0) serves `slot`. */
int te_cluster_owner(te_cluster *k, int slot);

/* Sentinel over TLS: a TLS master and one sentinel (quorum 1) that talks
 * to it over TLS (tls-replication yes) and serves clients on a TLS port
 * too. The sentinel's plain port is for the test's own checks. */
typedef struct te_sentinel {
    th_server *master;
    int master_tls_port;
    pid_t pid;
    int port, tls_port; /* the sentinel's */
    char url[600];      /* rediss-sentinel://127.0.0.1:TLS/mymaster?tls_ca=... */
} te_sentinel;
/* Ends the test on failure. */
void te_sentinel_start(te_sentinel *g);
void te_sentinel_free(te_sentinel *g);

/* TH_FAIL unless s contains sub. */
#define TE_IN(s, sub)                                                                     \
    do {                                                                                  \
        const char *te_s_ = (s);                                                          \
        if (te_s_ == NULL || strstr(te_s_, (sub)) == NULL)                                \
            TH_FAIL("expected \"%s\" in \"%s\"", (sub), te_s_ ? te_s_ : "(null)");        \
    } while (0)

/* A client for url with the given timeouts; ends the test if creation fails. */
dlock_client *te_client(const char *url, int connect_ms, int command_ms);

#endif
