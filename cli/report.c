/* report.c - reporting a failed library call: one line on stderr that says
 * what failed and what to do about it, and with --json an error object.
 *
 * The library gives a status code, the server's error kind as a value
 * (dlock_client_errcode: DLOCK_SRV_OOM, _NOAUTH, ...) and a detail string
 * ("acquire: 127.0.0.1:6379: OOM command not allowed ..."). Hints are chosen
 * by the status and the error kind; the detail is only shown. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/* The library says "connect HOST:PORT: reason", possibly after a prefix
 * naming the operation ("inspect: connect ..."). Returns "HOST:PORT: reason". */
static const char *connect_part(const char *d) {
    for (const char *p = d; (p = strstr(p, "connect ")) != NULL; p++)
        if (p == d || (p >= d + 2 && p[-1] == ' ' && p[-2] == ':'))
            return p + 8;
    return NULL;
}

/* 1 if the URL's first authority has user info without a ':' (a password
 * alone written as redis://secret@host is taken as a user name). */
static int user_without_password(const char *url) {
    const char *a = strstr(url, "://");
    if (a == NULL)
        return 0;
    a += 3;
    size_t len = strcspn(a, "/?,");
    const char *at = NULL;
    for (size_t i = 0; i < len; i++)
        if (a[i] == '@')
            at = a + i;
    return at != NULL && at > a && memchr(a, ':', (size_t)(at - a)) == NULL;
}

/* What to do about a server error of kind `code` (a dlock_srv_code). */
static const char *server_hint(const cli *c, int code) {
    if ((code == DLOCK_SRV_NOAUTH || code == DLOCK_SRV_WRONGPASS) &&
        user_without_password(c->url))
        return "the text before '@' in the URL was taken as a user name, with no password; "
               "for a password alone write redis://:PASSWORD@host";
    switch (code) {
    case DLOCK_SRV_NOAUTH:
        return "the server wants a password: put it in the URL, "
               "redis://:PASSWORD@host (or redis://USER:PASSWORD@host)";
    case DLOCK_SRV_WRONGPASS:
        return "the user name or password in the URL is wrong";
    case DLOCK_SRV_NOPERM:
        return "the ACL user in the URL lacks a permission dlock needs (EVALSHA, EVAL, "
               "SCRIPT, the lock's keys; SCAN for ls); see docs/SECURITY.md";
    case DLOCK_SRV_OOM:
        return "the server's memory is full (maxmemory): free memory, raise maxmemory, or "
               "choose an eviction policy";
    case DLOCK_SRV_MOVED:
    case DLOCK_SRV_ASK:
    case DLOCK_SRV_CROSSSLOT:
    case DLOCK_SRV_CLUSTERDOWN:
        return "the server is a Redis Cluster node: use redis-cluster://host:port,... "
               "in the URL";
    case DLOCK_SRV_READONLY:
        return "the server is a read-only replica: name the master, or use "
               "redis-sentinel://";
    case DLOCK_SRV_WRONGTYPE:
        return "the name is in use as another kind of lock (a plain lock, a semaphore "
               "--holders N, or a read-write lock -s/-x) or by another program: use the same "
               "kind as the others, choose another name or ?prefix=";
    case DLOCK_SRV_FENCEMAX:
        return "the lock's fencing counter is at 2^63-1: use another lock name (resetting "
               "the counter would let old fences win at the store)";
    case DLOCK_SRV_LOADING:
    case DLOCK_SRV_BUSY:
        return "the server is busy (loading its data or running a script): try again";
    default:
        return "check the password/ACL in the URL and that the server is a writable master";
    }
}

/* A short word for the error member of --json's error object. */
static const char *category(int rc) {
    switch (rc) {
    case DLOCK_EIO: return "io";
    case DLOCK_ESERVER: return "server";
    case DLOCK_ENOQUORUM: return "no quorum";
    case DLOCK_EUNKNOWN: return "unknown outcome";
    case DLOCK_EPROTO: return "protocol";
    case DLOCK_ENOTSUP: return "not supported";
    case DLOCK_ENOREPLICAS: return "no replicas";
    case DLOCK_EINVAL: return "usage";
    case DLOCK_ENOMEM: return "no memory";
    case DLOCK_ENOTHELD: return "not held";
    case DLOCK_ETIMEDOUT: return "timeout";
    case DLOCK_EBUSY: return "busy";
    default: return "internal";
    }
}

void cli_json_error(cli *c, const char *error, int rc, int code, const char *msg) {
    if (!c->json)
        return;
    jw w;
    jw_begin(&w, c->cmd != NULL && strcmp(c->cmd, "run") == 0 ? stderr : stdout);
    jw_str(&w, "name", c->name);
    if (c->cmd != NULL && (strcmp(c->cmd, "run") == 0 || strcmp(c->cmd, "acquire") == 0))
        jw_bool(&w, "acquired", 0);
    jw_str(&w, "error", error);
    jw_str(&w, "status", rc == DLOCK_OK ? NULL : dlock_err_name(rc));
    jw_int(&w, "exit_code", code);
    jw_str(&w, "message", msg);
    jw_end(&w);
}

/* Writes the message for status rc (server error kind `code`, detail d)
 * into m; returns the exit code. */
static int describe(cli *c, int rc, int code, const char *what, const char *d, char *m,
                    size_t n) {
    const char *dash = " \xe2\x80\x94 ";
    switch (rc) {
    case DLOCK_EIO:
        if (code == DLOCK_SRV_NOMASTER)
            snprintf(m, n, "cannot %s: %s%scheck the master name at the end of the URL "
                     "(redis-cli -p SENTINEL_PORT SENTINEL MASTERS lists them)", what, d, dash);
        else if (connect_part(d) != NULL)
            snprintf(m, n, "cannot connect to %s%sis redis-server running there%s? set "
                     "DLOCK_URL or --url (using %s)", connect_part(d), dash,
                     cli_url_is_tls(c->url) ? ", with TLS on that port" : "", c->url_shown);
        else if (strstr(d, "timeout") != NULL || strstr(d, "timed out") != NULL)
            snprintf(m, n, "cannot %s: %s%sthe server is slow or unreachable; check it, or "
                     "raise --io-timeout", what, d, dash);
        else
            snprintf(m, n, "cannot %s: %s%scheck that the server at %s is up", what, d, dash,
                     c->url_shown);
        return EXIT_SERVER;
    case DLOCK_ESERVER:
        snprintf(m, n, "cannot %s: the server answered with an error: %s%s%s", what, d, dash,
                 server_hint(c, code));
        return EXIT_SERVER;
    case DLOCK_ENOQUORUM:
        /* Servers that answered with an error are up: say what their error means. */
        if (code != DLOCK_SRV_NONE)
            snprintf(m, n, "cannot %s: %s%s%s", what, d, dash, server_hint(c, code));
        else
            snprintf(m, n, "cannot %s: %s%stoo few of the servers in %s answered; a "
                     "majority must be up", what, d, dash, c->url_shown);
        return EXIT_SERVER;
    case DLOCK_EUNKNOWN:
        snprintf(m, n, "cannot %s: %s%sthe outcome is unknown: a lease may exist until its "
                 "TTL ends", what, d, dash);
        return EXIT_SERVER;
    case DLOCK_EPROTO:
        snprintf(m, n, "cannot %s: %s%sis %s a Redis-compatible server?", what, d, dash,
                 c->url_shown);
        return EXIT_SERVER;
    case DLOCK_ENOTSUP:
        snprintf(m, n, "cannot %s: %s", what, d);
        return EXIT_SERVER;
    case DLOCK_ENOREPLICAS:
        snprintf(m, n, "cannot %s: %s%sthe URL asks for replicas (?replicas=N): check that "
                 "the master has that many replicas connected (dlock doctor), or lower N",
                 what, d, dash);
        return EXIT_SERVER;
    case DLOCK_EINVAL:
        snprintf(m, n, "cannot %s: %s", what, d);
        return EXIT_USAGE;
    case DLOCK_ENOMEM:
        snprintf(m, n, "cannot %s: out of memory", what);
        return EXIT_INTERNAL;
    case DLOCK_EBUSY:
    case DLOCK_ETIMEDOUT:
    case DLOCK_ENOTHELD:
        snprintf(m, n, "cannot %s: %s", what, d);
        return EXIT_CONFLICT;
    default:
        snprintf(m, n, "cannot %s: %s (%s)", what, d, dlock_err_name(rc));
        return EXIT_INTERNAL;
    }
}

int cli_fail(cli *c, int rc, const char *what) {
    const char *detail = c->client ? dlock_client_errstr(c->client) : "";
    if (detail[0] == '\0')
        detail = dlock_strerror(rc);
    char d[400], m[1200];
    cli_safe(detail, d, sizeof d);
    int code = describe(c, rc, dlock_client_errcode(c->client), what, d, m, sizeof m);
    cli_msg("%s", m);
    cli_json_error(c, category(rc), rc, code, m);
    return code;
}

/* The library's warnings (tls_verify=off) go to stderr, whatever else is
 * asked for: they are about the safety of what follows. */
static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->type == DLOCK_EV_WARNING && ev->message != NULL)
        cli_msg("warning: %s", ev->message);
}

int cli_url_is_tls(const char *url) {
    return url != NULL && strncasecmp(url, "rediss", 6) == 0;
}

int cli_connect(cli *c) {
    dlock_options o;
    dlock_options_init(&o);
    o.owner_label = c->label;
    o.owner_pid = c->owner_pid;
    o.max_hold_ms = c->max_time_ms;
    o.on_event = on_event;
    if (c->timeout_ms > 0) {
        o.connect_timeout_ms = c->timeout_ms;
        o.command_timeout_ms = c->timeout_ms;
    }
    int rc = dlock_client_new(&c->client, c->url, &o);
    if (rc == DLOCK_OK)
        return 0;
    char d[400], m[1200];
    if (c->client == NULL) {
        snprintf(m, sizeof m, "cannot create a client: %s", dlock_strerror(rc));
        cli_msg("%s", m);
        cli_json_error(c, category(rc), rc, EXIT_INTERNAL, m);
        return EXIT_INTERNAL;
    }
    cli_safe(dlock_client_errstr(c->client), d, sizeof d);
    if (rc == DLOCK_EINVAL)
        snprintf(m, sizeof m, "bad server URL '%s': %s \xe2\x80\x94 expected e.g. "
                 "redis://host:6379 or redis://:password@host:6379/0 (set DLOCK_URL or --url)",
                 c->url_shown, d);
    else
        snprintf(m, sizeof m, "cannot use server URL '%s': %s", c->url_shown, d);
    dlock_client_free(c->client);
    c->client = NULL;
    /* A bad URL, and one this build cannot serve, are usage errors: the
     * command line must change. */
    int code = rc == DLOCK_EINVAL || rc == DLOCK_ENOTSUP ? EXIT_USAGE : EXIT_SERVER;
    cli_msg("%s", m);
    cli_json_error(c, code == EXIT_USAGE ? "usage" : category(rc), rc, code, m);
    return code;
}
