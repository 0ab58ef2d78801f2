/* doctor.c - `dlock doctor [URL]`: is this deployment safe for locks?
 *
 * Owns the doctor subcommand: its options and help, connecting to every
 * server the URL names (the master Sentinel names, for redis-sentinel://),
 * the per-server checks (version and role, TLS, eviction policy,
 * persistence, replication, Cluster mode, clock, latency, ACL rights), the
 * checks across a Redlock set (the same server twice, members of one
 * replication group, clock skew). doctor_out.c prints the report;
 * doctor.h holds the types.
 *
 * It uses its own blocking connections (doctor_conn.c: one timeout for
 * connecting and for each command: --timeout, else the URL's
 * connect_timeout, else 1 s; TLS through the library's transport for
 * rediss URLs), not the library's lock connections: it must go on where
 * the library would stop (a refused CONFIG, an INFO denied by ACL is
 * "unknown", never a failure). The password goes out once per server in an
 * AUTH from a buffer wiped afterwards, and neither it nor the server's
 * reply to AUTH is ever printed. Over TLS it reports the protocol, the
 * cipher, whether the certificate was checked and when it expires.
 *
 * Exit status: 0 nothing unsafe or questionable, 1 warnings, 2 usage,
 * 69 a server could not be checked (unreachable, AUTH refused), 78 an
 * unsafe or broken setting (sysexits' EX_CONFIG). 78 wins over 69, 69 over 1.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "cli.h"
#include "doctor.h"

#define CLOCK_WARN_MS 1000.0

const char cli_doctor_usage[] =
    "usage: dlock doctor [OPTIONS] [URL]\n"
    "\n"
    "Connect to every server URL names (default --url, --url-file, $DLOCK_URL,\n"
    "$DLOCK_URL_FILE) and report what makes locks unsafe there, and why:\n"
    "server version and role; TLS (rediss URLs: protocol, certificate checked,\n"
"expiry); maxmemory-policy (only noeviction keeps leases and\n"
    "fence counters); persistence (AOF, appendfsync); replicas and\n"
    "min-replicas-to-write; a Cluster node behind a plain URL; clock offset and\n"
    "round-trip latency (20 PINGs); the ACL user's rights on the key prefix; and\n"
    "for a Redlock set, the same server twice or members replicating one another,\n"
    "and clock skew between them. Settings the server will not show (CONFIG or\n"
    "INFO refused, as on many managed services) are reported as unknown.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (or give URL as the argument)\n"
    "      --url-file FILE     read the URL from FILE (chmod 600)\n"
    "      --io-timeout MS     connect and command timeout per server (default 1000;\n"
    "                          -T, --timeout MS: the same)\n"
    "  -j, --json              one JSON object per line: per server, per check, and\n"
    "                          a summary last\n"
    "\n"
    "Exit status: 0 safe; 1 warnings only; 2 usage; 69 a server could not be\n"
    "checked (unreachable, AUTH refused); 78 an unsafe setting (wins over 69).\n";

static void add(findings *fs, enum sev sev, const char *check, const char *value,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(findings *fs, enum sev sev, const char *check, const char *value,
                const char *fmt, ...) {
    if (fs->n == MAX_FINDINGS)
        return;
    finding *f = &fs->f[fs->n++];
    f->sev = sev;
    f->check = check;
    snprintf(f->value, sizeof f->value, "%s", value);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
}

/* ---- talking to one server ------------------------------------------------------- */

/* The value of `key` in an INFO reply into out; 1 if found. */
static int info_field(const char *info, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = info; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
            size_t vl = strcspn(p + kl + 1, "\r\n");
            snprintf(out, n, "%.*s", (int)vl, p + kl + 1);
            return 1;
        }
    }
    out[0] = '\0';
    return 0;
}

/* CONFIG GET name into out: 1 known, 0 refused or absent. */
static int config_get(dconn *dc, const char *name, char *out, size_t n) {
    redisReply *r = dcmd(dc, "CONFIG GET %s", name);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_STRING;
    if (ok)
        snprintf(out, n, "%s", r->element[1]->str);
    else
        out[0] = '\0';
    freeReplyObject(r);
    return ok;
}

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double real_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int select_db(doctor *d, server *s, dconn *dc) {
    if (d->u.db == 0)
        return 0;
    redisReply *r = dcmd(dc, "SELECT %d", d->u.db);
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (!ok) {
        char why[160];
        const char *e = r && r->type == REDIS_REPLY_ERROR ? r->str : dconn_error(dc);
        cli_safe(e != NULL ? e : "no reply", why, sizeof why);
        snprintf(s->error, sizeof s->error, "SELECT %d failed: %s", d->u.db, why);
    }
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* ---- per-server checks ------------------------------------------------------------- */

static void check_eviction(server *s, dconn *dc, const char *info) {
    char policy[48], mm[32], human[32];
    if (!info_field(info, "maxmemory_policy", policy, sizeof policy))
        config_get(dc, "maxmemory-policy", policy, sizeof policy);
    if (!info_field(info, "maxmemory", mm, sizeof mm))
        config_get(dc, "maxmemory", mm, sizeof mm);
    if (!info_field(info, "maxmemory_human", human, sizeof human))
        snprintf(human, sizeof human, "%s", mm[0] ? mm : "unknown");
    long long maxmem = mm[0] ? atoll(mm) : -1;
    if (policy[0] == '\0') {
        add(&s->fs, SEV_INFO, "eviction", "unknown",
            "maxmemory-policy unknown (INFO and CONFIG GET refused): make sure it is "
            "noeviction, the only policy that never drops a lock key");
    } else if (strcmp(policy, "noeviction") == 0) {
        add(&s->fs, SEV_OK, "eviction", policy,
            "maxmemory-policy noeviction: a full server refuses writes (acquires fail "
            "loudly) instead of dropping lock keys");
    } else {
        int volatile_ = strncmp(policy, "volatile-", 9) == 0;
        const char *why =
            volatile_ ? "evicts keys that have a TTL when memory is full: every lock key "
                        "has one, and they are often the only keys that do, so they go "
                        "first; the lock is free again while its holder still works, and "
                        "a second client takes it"
                      : "evicts any key when memory is full, lock keys and their fence "
                        "counters included: a second client takes the lock while its "
                        "holder still works, with a fence that starts again from 1";
        add(&s->fs, maxmem == 0 ? SEV_WARN : SEV_UNSAFE, "eviction", policy,
            "maxmemory-policy %s (maxmemory %s) %s%s. Set maxmemory-policy noeviction "
            "(or keep locks on a server of their own)",
            policy, human, why,
            maxmem == 0 ? " (nothing is evicted while maxmemory is 0, but a limit set "
                          "later makes this policy apply)"
                        : "");
    }
}

static void check_persistence(server *s, dconn *dc, const char *info) {
    char aof[16], fsync_[16];
    if (!info_field(info, "aof_enabled", aof, sizeof aof) &&
        config_get(dc, "appendonly", aof, sizeof aof))
        snprintf(aof, sizeof aof, "%s", strcmp(aof, "yes") == 0 ? "1" : "0");
    if (aof[0] == '\0') {
        add(&s->fs, SEV_INFO, "persistence", "unknown",
            "AOF unknown (INFO and CONFIG GET refused): without AOF a restart loses every "
            "lease and fence counter");
        return;
    }
    if (strcmp(aof, "1") != 0) {
        add(&s->fs, SEV_WARN, "persistence", "aof off",
            "AOF is off: a restart (crash, upgrade, OOM kill) loses every lease and every "
            "fence counter; fences start again at 1, below those a storage system has "
            "already seen. Set appendonly yes with appendfsync everysec or always");
        return;
    }
    if (!config_get(dc, "appendfsync", fsync_, sizeof fsync_))
        add(&s->fs, SEV_INFO, "persistence", "aof on, appendfsync unknown",
            "AOF on; appendfsync unknown (CONFIG GET refused): with 'no' a host crash can "
            "lose recent acquires and fence increments");
    else if (strcmp(fsync_, "no") == 0)
        add(&s->fs, SEV_WARN, "persistence", "aof on, appendfsync no",
            "AOF on, but appendfsync no leaves it to the kernel when writes reach the disk: "
            "a host crash can lose many seconds of acquires and fence increments. Use "
            "everysec or always");
    else
        add(&s->fs, SEV_OK, "persistence", strcmp(fsync_, "always") == 0
                                               ? "aof on, appendfsync always"
                                               : "aof on, appendfsync everysec",
            "AOF on, appendfsync %s: a restart keeps leases and fence counters%s", fsync_,
            strcmp(fsync_, "always") == 0 ? ""
                                          : " (a host crash can lose the last second)");
}

static void check_replication(doctor *d, server *s, dconn *dc, const char *info) {
    char v[32], minr[16];
    if (strcmp(s->role, "slave") == 0 || strcmp(s->role, "replica") == 0) {
        add(&s->fs, SEV_UNSAFE, "role", "replica",
            "this server is a replica of %s: it is read-only, so every lock operation "
            "fails (READONLY). Name the master, or use redis-sentinel://",
            s->master_of[0] ? s->master_of : "another server");
        return;
    }
    if (!info_field(info, "connected_slaves", v, sizeof v)) {
        add(&s->fs, SEV_INFO, "replication", "unknown", "replication unknown (INFO refused)");
        return;
    }
    int n = atoi(v);
    int have_min = config_get(dc, "min-replicas-to-write", minr, sizeof minr);
    char value[64];
    snprintf(value, sizeof value, "%d replicas, min-replicas-to-write %s", n,
             have_min ? minr : "unknown");
    if (n == 0) {
        add(&s->fs, SEV_INFO, "replication", value,
            "no replicas: locks live on this server alone (%s)",
            d->u.kind == DL_URL_REDLOCK ? "as a Redlock member should"
                                        : "a lost server takes its locks with it");
    } else if (d->u.replicas > 0 || (have_min && atoi(minr) > 0)) {
        add(&s->fs, SEV_OK, "replication", value,
            "%d replica(s); acquires wait for replicas (%s), so a failover keeps them", n,
            d->u.replicas > 0 ? "?replicas= in the URL" : "min-replicas-to-write");
    } else {
        add(&s->fs, d->u.kind == DL_URL_SENTINEL ? SEV_WARN : SEV_INFO, "replication", value,
            "%d replica(s), replication is asynchronous: a replica promoted by a failover "
            "may not have a lock granted just before, and grants it again. Add ?replicas=1 "
            "to the URL (each acquire waits for a replica) or set min-replicas-to-write",
            n);
    }
}

static void check_cluster(doctor *d, server *s, const char *info) {
    char v[8];
    if (!info_field(info, "cluster_enabled", v, sizeof v))
        return;
    int on = strcmp(v, "1") == 0;
    const char *ss = d->u.tls ? "s" : ""; /* rediss-cluster:// for a TLS URL */
    if (on && d->u.kind != DL_URL_CLUSTER)
        add(&s->fs, SEV_UNSAFE, "cluster", "cluster_enabled:1",
            "this is a Redis Cluster node, but the URL is not redis%s-cluster://: every lock "
            "whose hash slot another node owns fails with MOVED. Use redis%s-cluster://%s",
            ss, ss, s->addr);
    else if (!on && d->u.kind == DL_URL_CLUSTER)
        add(&s->fs, SEV_UNSAFE, "cluster", "cluster_enabled:0",
            "the URL is redis%s-cluster://, but this server is not a Cluster node: use "
            "redis%s://",
            ss, ss);
}

/* Clock offset from one TIME, against the midpoint of our send and receive. */
static void measure_clock(server *s, dconn *dc) {
    double t0 = real_ms();
    redisReply *r = dcmd(dc, "TIME");
    double t1 = real_ms();
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        double srv = atof(r->element[0]->str) * 1e3 + atof(r->element[1]->str) / 1e3;
        s->offset_ms = srv - (t0 + t1) / 2;
        s->offset_err_ms = (t1 - t0) / 2;
        s->has_time = 1;
        char v[64];
        snprintf(v, sizeof v, "%+.1f ms", s->offset_ms);
        if (fabs(s->offset_ms) > CLOCK_WARN_MS)
            add(&s->fs, SEV_WARN, "clock", v,
                "the server's clock is %+.0f ms off this host's: leases use relative TTLs, "
                "but clocks this far apart are not kept by NTP, and a clock that is stepped "
                "forward ends leases early on the server",
                s->offset_ms);
    }
    freeReplyObject(r);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure_latency(server *s, dconn *dc, int timeout_ms) {
    for (int i = 0; i < NPINGS; i++) {
        double t0 = mono_ms();
        redisReply *r = dcmd(dc, "PING");
        double t1 = mono_ms();
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok)
            break;
        s->lat_ms[s->nlat++] = t1 - t0;
    }
    if (s->nlat == 0)
        return;
    qsort(s->lat_ms, (size_t)s->nlat, sizeof s->lat_ms[0], cmp_double);
    double mn = s->lat_ms[0], p50 = s->lat_ms[s->nlat / 2], mx = s->lat_ms[s->nlat - 1];
    char v[96];
    snprintf(v, sizeof v, "min %.2f ms, p50 %.2f ms, max %.2f ms", mn, p50, mx);
    int slow = mx > timeout_ms / 2.0;
    add(&s->fs, slow ? SEV_WARN : SEV_INFO, "latency", v, "%d PINGs: %s%s", s->nlat, v,
        slow ? " (the slowest took over half the timeout: raise --timeout or the URL's "
               "timeout=)"
             : "");
}

/* What the ACL user may do on the prefix: ACL DRYRUN (Redis >= 7.0, needs
 * admin rights) for every command dlock sends or its scripts call; else
 * EVALSHA of an unknown script, which NOSCRIPT shows to be allowed. */
static void check_acl(doctor *d, server *s, dconn *dc) {
    static const char *const cmds[][6] = {
        {"evalsha", "0000000000000000000000000000000000000000", "1", "K"},
        {"eval", "return 1", "1", "K"}, {"ping"}, {"time"},
        {"get", "K"}, {"set", "K", "v"}, {"incr", "K"}, {"del", "K"}, {"pexpire", "K", "1"},
        {"pttl", "K"}, {"hget", "K", "f"}, {"hset", "K", "f", "v"}, {"hdel", "K", "f"},
        {"hmget", "K", "f"}, {"zadd", "K", "1", "m"}, {"zrange", "K", "0", "1"},
        {"zrem", "K", "m"}, {"zcard", "K"}};
    char key[200], user[64] = "", denied[400] = "";
    snprintf(key, sizeof key, "%s{dlock-doctor}", d->prefix);
    redisReply *r = dcmd(dc, "ACL WHOAMI");
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        cli_safe(r->str, user, sizeof user);
    freeReplyObject(r);
    int dry = user[0] != '\0';
    for (size_t i = 0; dry && i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *argv[9] = {"ACL", "DRYRUN", user};
        int argc = 3;
        for (int j = 0; j < 6 && cmds[i][j]; j++)
            argv[argc++] = strcmp(cmds[i][j], "K") == 0 ? key : cmds[i][j];
        r = dcmd_argv(dc, argc, argv);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            dry = 0; /* DRYRUN refused or unknown: fall back */
        else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
            if (strcmp(r->str, "OK") != 0 && strlen(denied) + 12 < sizeof denied)
                snprintf(denied + strlen(denied), sizeof denied - strlen(denied), "%s%s",
                         denied[0] ? " " : "", cmds[i][0]);
        }
        freeReplyObject(r);
    }
    char v[96];
    snprintf(v, sizeof v, "user %s", user[0] ? user : "unknown");
    if (dry && denied[0])
        add(&s->fs, SEV_WARN, "acl", v,
            "ACL user %s may not run, on %s*: %s. dlock's calls will fail (NOPERM); see "
            "docs/SECURITY.md for the least-privilege user",
            user, d->prefix, denied);
    else if (dry)
        add(&s->fs, SEV_OK, "acl", v,
            "ACL user %s may run every command dlock sends or its scripts call, on %s*",
            user, d->prefix);
    if (dry)
        return;
    const char *probe[] = {"EVALSHA", "0000000000000000000000000000000000000000", "1", key};
    r = dcmd_argv(dc, 4, probe);
    int allowed = r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
    freeReplyObject(r);
    add(&s->fs, allowed ? SEV_INFO : SEV_WARN, "acl", v,
        allowed ? "EVALSHA on %s* allowed; the commands the scripts call are unknown (ACL "
                  "DRYRUN needs admin rights)"
                : "EVALSHA on %s* refused: dlock's calls will fail. See docs/SECURITY.md for "
                  "the least-privilege user",
        d->prefix);
}

/* rediss*: what the TLS session is, and whether it is checked. */
static void check_tls(doctor *d, server *s, dconn *dc) {
    dl_tls_info ti;
    if (dc->tr.ops == NULL || dl_tls_info_get(&dc->tr, &ti) != 0)
        return;
    char v[96], subj[160];
    double days = ti.not_after > 0 ? difftime((time_t)ti.not_after, time(NULL)) / 86400 : 1e9;
    cli_safe(ti.subject, subj, sizeof subj);
    snprintf(v, sizeof v, "%s %s%s", ti.version, ti.cipher, ti.verified ? "" : ", not verified");
    if (!d->u.tls_verify)
        add(&s->fs, SEV_WARN, "tls", v,
            "%s, but tls_verify=off: the certificate (%s) is not checked, so anyone on the "
            "network path can pose as this server, read the password and grant locks. "
            "Give the server's CA with tls_ca= instead",
            ti.version, subj);
    else if (days < 30)
        add(&s->fs, SEV_WARN, "tls", v,
            "%s, certificate %s verified, but it expires in %.0f days: renew it before "
            "clients start refusing the server",
            ti.version, subj, days < 0 ? 0 : days);
    else
        add(&s->fs, SEV_OK, "tls", v,
            "%s with %s; certificate %s verified (chain and host name), expires in %.0f days",
            ti.version, ti.cipher, subj, days);
}

/* Connects, authenticates and runs every check on one server. */
static void check_server(doctor *d, server *s) {
    dconn conn, *dc = &conn;
    if (dconn_open(d, s, dc, s->host, s->port, s->path) != 0)
        return;
    if (dconn_auth(d, s, dc) != 0 || select_db(d, s, dc) != 0) {
        dconn_close(dc);
        return;
    }
    s->ok = 1;
    check_tls(d, s, dc);
    redisReply *r = dcmd(dc, "INFO");
    const char *info = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "";
    if (!info_field(info, "redis_version", s->version, sizeof s->version))
        snprintf(s->version, sizeof s->version, "unknown");
    if (!info_field(info, "role", s->role, sizeof s->role))
        snprintf(s->role, sizeof s->role, "unknown");
    info_field(info, "run_id", s->run_id, sizeof s->run_id);
    info_field(info, "master_replid", s->replid, sizeof s->replid);
    char mh[256], mp[16];
    if (info_field(info, "master_host", mh, sizeof mh) &&
        info_field(info, "master_port", mp, sizeof mp))
        snprintf(s->master_of, sizeof s->master_of, "%s:%s", mh, mp);
    if (info[0] == '\0')
        add(&s->fs, SEV_INFO, "info", "refused",
            "INFO refused: version, role and most settings are unknown");
    check_cluster(d, s, info);
    check_replication(d, s, dc, info);
    check_eviction(s, dc, info);
    check_persistence(s, dc, info);
    freeReplyObject(r);
    measure_clock(s, dc);
    measure_latency(s, dc, d->timeout_ms);
    check_acl(d, s, dc);
    if (dconn_error(dc) != NULL) { /* a timeout or reset half-way */
        char why[160];
        snprintf(s->error, sizeof s->error, "connection lost during the checks: %s",
                 cli_safe(dconn_error(dc), why, sizeof why));
        s->ok = 0;
    }
    dconn_close(dc);
}

/* ---- the servers a URL names -------------------------------------------------------- */

static void set_addr(server *s) {
    if (s->path != NULL)
        snprintf(s->addr, sizeof s->addr, "%s", s->path);
    else if (strchr(s->host, ':') != NULL)
        snprintf(s->addr, sizeof s->addr, "[%s]:%d", s->host, s->port);
    else
        snprintf(s->addr, sizeof s->addr, "%s:%d", s->host, s->port);
}

/* redis-sentinel://: asks the sentinels (without AUTH, as the library
 * does) for the master's address; the master becomes the one server. */
static void sentinel_master(doctor *d) {
    int answered = 0;
    server tmp;
    for (int i = 0; i < d->u.nhosts; i++) {
        memset(&tmp, 0, sizeof tmp);
        dconn conn, *dc = &conn;
        if (dconn_open(d, &tmp, dc, d->u.hosts[i].host, d->u.hosts[i].port, NULL) != 0)
            continue;
        redisReply *r = dcmd(dc, "SENTINEL get-master-addr-by-name %s", d->u.master_name);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING) {
            answered++;
            if (d->n == 0) {
                snprintf(d->s[0].host, sizeof d->s[0].host, "%s", r->element[0]->str);
                d->s[0].port = atoi(r->element[1]->str);
                set_addr(&d->s[0]);
                d->n = 1;
            }
        }
        freeReplyObject(r);
        dconn_close(dc);
    }
    char v[64], name[130];
    snprintf(v, sizeof v, "%d of %d answered", answered, d->u.nhosts);
    cli_safe(d->u.master_name, name, sizeof name);
    if (d->n == 0)
        add(&d->set, SEV_WARN, "sentinel", v,
            "no sentinel named a master '%s': nothing to check", name);
    else
        add(&d->set, answered * 2 > d->u.nhosts ? SEV_INFO : SEV_WARN, "sentinel", v,
            "%d of %d sentinels name %s as master '%s'%s", answered, d->u.nhosts,
            d->s[0].addr, name,
            answered * 2 > d->u.nhosts ? "" : ": fewer than a majority answered");
}

static void list_servers(doctor *d) {
    if (d->u.kind == DL_URL_SENTINEL) {
        sentinel_master(d);
        return;
    }
    if (d->u.unix_socket) {
        d->s[0].path = d->u.path;
        set_addr(&d->s[0]);
        d->n = 1;
        return;
    }
    for (int i = 0; i < d->u.nhosts; i++) {
        snprintf(d->s[i].host, sizeof d->s[i].host, "%s", d->u.hosts[i].host);
        d->s[i].port = d->u.hosts[i].port;
        set_addr(&d->s[i]);
    }
    d->n = d->u.nhosts;
}

/* Across a Redlock set: members must be independent servers. */
static void check_set(doctor *d) {
    if (d->u.kind != DL_URL_REDLOCK)
        return;
    for (int i = 0; i < d->n; i++)
        for (int j = i + 1; j < d->n; j++) {
            server *a = &d->s[i], *b = &d->s[j];
            if (!a->ok || !b->ok)
                continue;
            if (a->run_id[0] && strcmp(a->run_id, b->run_id) == 0)
                add(&d->set, SEV_UNSAFE, "independence", "same server",
                    "%s and %s are the same redis-server (run_id %.12s...): the Redlock "
                    "quorum counts it twice, so one server decides alone",
                    a->addr, b->addr, a->run_id);
            else if (a->replid[0] && strcmp(a->replid, b->replid) == 0)
                add(&d->set, SEV_UNSAFE, "independence", "one replication group",
                    "%s and %s replicate one another (master_replid %.12s...): a replica "
                    "copies its master's locks and refuses writes, so the members are not "
                    "independent",
                    a->addr, b->addr, a->replid);
        }
    double lo = 0, hi = 0, err = 0;
    int k = 0;
    for (int i = 0; i < d->n; i++) {
        if (!d->s[i].has_time)
            continue;
        double o = d->s[i].offset_ms;
        lo = k == 0 || o < lo ? o : lo;
        hi = k == 0 || o > hi ? o : hi;
        err += d->s[i].offset_err_ms;
        k++;
    }
    if (k >= 2) {
        char v[64];
        snprintf(v, sizeof v, "%.1f ms", hi - lo);
        add(&d->set, hi - lo > CLOCK_WARN_MS / 2 ? SEV_WARN : SEV_INFO, "clock-skew", v,
            "clocks of the %d servers differ by up to %.1f ms (measured to within %.1f ms)%s",
            k, hi - lo, err,
            hi - lo > CLOCK_WARN_MS / 2 ? ": run NTP on them; Redlock assumes clocks that run "
                                          "at nearly the same rate and are never stepped"
                                        : "");
    }
    if (d->n == 2)
        add(&d->set, SEV_WARN, "quorum", "2 servers",
            "a Redlock set of 2 needs both: it tolerates no failure. Use 3 or 5");
}

/* ---- entry ------------------------------------------------------------------------- */

static int doctor_usage_error(const char *fmt, const char *arg) {
    fputs("dlock: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(cli_doctor_usage, stderr);
    return EXIT_USAGE;
}

/* Parses doctor's own options into c. -1 to go on, or an exit status. */
static int doctor_opts(cli *c, int argc, char **argv) {
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"url-file", required_argument, NULL, CLI_LONG_URL_FILE},
        {"io-timeout", required_argument, NULL, 'T'}, /* as every other command */
        {"timeout", required_argument, NULL, 'T'},    /* doctor's first name for it */
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    int ch;
    while ((ch = getopt_long(argc, argv, ":u:T:jh", opts, NULL)) != -1) {
        char *end;
        long v;
        switch (ch) {
        case 'u': c->url = optarg; c->given |= OPT_URL; break;
        case CLI_LONG_URL_FILE: cli_secret_opt(c, ch, optarg); break;
        case 'j': c->json = 1; c->given |= OPT_JSON; break;
        case 'h': fputs(cli_doctor_usage, stdout); return 0;
        case 'T':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > 3600000)
                return doctor_usage_error("--io-timeout wants milliseconds, 1..3600000; got '%s'",
                                          optarg);
            c->timeout_ms = (int)v;
            c->given |= OPT_TIMEOUT;
            break;
        case ':': return doctor_usage_error("option %s needs a value", argv[optind - 1]);
        default: return doctor_usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    unsigned ok = OPT_URL | OPT_URLFILE | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE;
    if (c->given & ~ok)
        return doctor_usage_error("%s", "'dlock doctor' takes only --url, --url-file, "
                                        "--io-timeout and --json");
    if (optind < argc - 1)
        return doctor_usage_error("unexpected argument '%s'", argv[optind + 1]);
    if (optind == argc - 1) {
        if (c->given & (OPT_URL | OPT_URLFILE))
            return doctor_usage_error("%s", "give the URL once: as the argument or with --url");
        c->url = argv[optind]; /* in argv: settled and scrubbed like --url */
        c->given |= OPT_URL;
    }
    return -1;
}

/* rediss*: the TLS settings every connection uses, as the library makes
 * them (a file that cannot be loaded is a usage error). 0 or -1. */
static int doctor_tls(doctor *d) {
    char err[400], e[400];
    if (dl_tls_from_url(&d->tls, &d->u, err, sizeof err) != DLOCK_OK) {
        cli_msg("bad server URL '%s': %s", d->c->url_shown, cli_safe(err, e, sizeof e));
        return -1;
    }
    if (!d->u.tls_verify)
        cli_msg("warning: %s", DL_WARN_TLS_NO_VERIFY);
    return 0;
}

int cli_doctor(cli *c, int argc, char **argv) {
    c->cmd = "doctor";
    int rc = doctor_opts(c, argc, argv);
    if (rc < 0)
        rc = cli_url_settle(c);
    if (rc >= 0)
        return rc;
    doctor *d = calloc(1, sizeof *d);
    if (d == NULL) {
        cli_msg("out of memory");
        return EXIT_INTERNAL;
    }
    d->c = c;
    char err[200];
    if (dl_url_parse(c->url, &d->u, err, sizeof err) != 0) {
        char e[200];
        cli_msg("bad server URL '%s': %s", c->url_shown, cli_safe(err, e, sizeof e));
        free(d);
        return EXIT_USAGE;
    }
    d->timeout_ms = c->timeout_ms > 0            ? c->timeout_ms
                    : d->u.connect_timeout_ms > 0 ? d->u.connect_timeout_ms
                                                  : 1000;
    if (d->u.tls && doctor_tls(d) != 0) {
        explicit_bzero(&d->u, sizeof d->u);
        free(d);
        return EXIT_USAGE;
    }
    snprintf(d->prefix, sizeof d->prefix, "%s", d->u.has_prefix ? d->u.prefix : "dlock:");
    list_servers(d);
    for (int i = 0; i < d->n; i++)
        check_server(d, &d->s[i]);
    check_set(d);
    rc = doctor_report(d);
    dl_tls_free(d->tls);
    explicit_bzero(&d->u, sizeof d->u); /* the parsed password */
    free(d);
    return rc;
}
