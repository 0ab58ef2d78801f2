/* doctor.h - private to `dlock doctor`: what doctor.c finds out about
 * each server, and what doctor_out.c prints from it. */
#ifndef DLOCK_CLI_DOCTOR_H
#define DLOCK_CLI_DOCTOR_H

#include "cli.h"
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
    int timeout_ms;
    char prefix[130];
    server s[DL_URL_MAX_HOSTS];
    int n;
    findings set; /* about the URL / the set as a whole */
} doctor;

/* doctor_out.c: prints the report (text or JSON lines) and returns the
 * exit status: 78 if anything is unsafe, else 69 if a server could not be
 * checked, else 1 if anything deserves a warning, else 0. */
int doctor_report(doctor *d);

#endif
