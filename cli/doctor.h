/* doctor.h - private to `dlock doctor`: what doctor.c finds out about
 * each server, and what doctor_out.c prints from it. */
#ifndef DLOCK_CLI_DOCTOR_H
#define DLOCK_CLI_DOCTOR_H

#include <hiredis/hiredis.h>

#include "cli.h"
#include "tls.h"
#include "url.h"

#define EXIT_UNSAFE 78 /* doctor: an unsafe setting (sysexits EX_CONFIG) */
#define NPINGS 20
#define MAX_FINDINGS 16

enum sev { SEV_OK, SEV_INFO, SEV_WARN, SEV_UNSAFE };

typedef struct finding {
    enum sev sev;
    const char *check; /* short name: "eviction", "persistence", ... */
    char value[96];    /* the setting found, "unknown" */
    char msg[600];
} finding;

typedef struct findings {
    finding f[MAX_FINDINGS];
    int n;
} findings;

typedef struct server {
    char host[DL_URL_HOST_MAX]; /* "" for a unix socket */
    int port;
    const char *path; /* unix socket path, or NULL */
    char addr[300];   /* for output */
    int ok;           /* connected and authenticated */
    char error[300];
    char version[32], role[16], run_id[48], replid[48], master_of[300];
    int has_time;
    double offset_ms, offset_err_ms; /* server clock - ours */
    double lat_ms[NPINGS];
    int nlat;
    findings fs;
} server;

typedef struct doctor {
    cli *c;
    dl_url u;
    dl_tls *tls; /* rediss*: the URL's TLS settings, for every connection */
    int timeout_ms;
    char prefix[130];
    server s[DL_URL_MAX_HOSTS];
    int n;
    findings set; /* about the URL / the set as a whole */
} doctor;

/* doctor_conn.c: a blocking connection to one server, plain or TLS, with
 * d->timeout_ms for connecting and for each command. */
typedef struct dconn {
    redisContext *ctx; /* the socket and the reply reader */
    dl_transport tr;   /* TLS: moves the bytes; plain: unused (hiredis does) */
    int timeout_ms;
    char err[240]; /* why the connection broke; once set, no more commands */
} dconn;
/* Connect (and with TLS, handshake) to host:port or the unix socket path.
 * 0, or -1 with s->error set (nothing to close). */
int dconn_open(doctor *d, server *s, dconn *dc, const char *host, int port, const char *path);
void dconn_close(dconn *dc);
/* One command (hiredis format, or argv with NUL-terminated strings) and its
 * reply, NULL when the connection failed (dconn_error says why). */
redisReply *dcmd(dconn *dc, const char *fmt, ...);
redisReply *dcmd_argv(dconn *dc, int argc, const char **argv);
/* Why the connection broke, or NULL. */
const char *dconn_error(const dconn *dc);
/* AUTH with the URL's credentials (if any), from a buffer wiped once sent;
 * the reply is checked, never shown. 0, or -1 with s->error set. */
int dconn_auth(doctor *d, server *s, dconn *dc);

/* doctor_out.c: prints the report (text or JSON lines) and returns the
 * exit status: 78 if anything is unsafe, else 69 if a server could not be
 * checked, else 1 if anything deserves a warning, else 0. */
int doctor_report(doctor *d);

#endif
