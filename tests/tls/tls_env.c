/* tls_env.c - certificates, TLS servers and a TLS cluster for the TLS
 * tests (tls_env.h). */
#include "tls_env.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DLOCK_TLS_MKCERTS
#error "DLOCK_TLS_MKCERTS (path of mkcerts.sh) must be defined by the build"
#endif

static char g_dir[512];

static int run_mkcerts(void *arg) {
    (void)arg;
    char log[600];
    snprintf(log, sizeof log, "%s/mkcerts.log", g_dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 126;
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execlp("sh", "sh", DLOCK_TLS_MKCERTS, g_dir, (char *)NULL);
    return 127;
}

void te_init(void) {
    if (th_tempdir(g_dir, sizeof g_dir) != 0)
        TH_FAIL("no temporary directory for the certificates");
    pid_t pid = th_spawn(run_mkcerts, NULL);
    TH_CHECK(pid > 0);
    int st = th_wait(pid, 30000);
    if (st != 0) {
        if (st < 0) {
            kill(pid, SIGKILL);
            th_wait(pid, -1);
        }
        TH_FAIL("mkcerts.sh failed (status %d): see %s/mkcerts.log", st, g_dir);
    }
}

const char *te_file(const char *name) {
    static char buf[16][600];
    static int next;
    char *b = buf[next++ % 16];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

const char *te_url(char *buf, size_t n, int port, const char *query) {
    snprintf(buf, n, "rediss://127.0.0.1:%d?tls_ca=%s%s%s", port, te_file("ca.crt"),
             query ? "&" : "", query ? query : "");
    return buf;
}

dlock_client *te_client(const char *url, int connect_ms, int command_ms) {
    dlock_options o;
    it_options(&o, connect_ms, command_ms);
    return it_client(url, &o);
}

th_server *te_server(const char *cert, const char *const *extra, int *tls_port) {
    char crt[600], key[600], ca[600], port[16];
    snprintf(crt, sizeof crt, "%s", te_file(cert));
    strcat(crt, ".crt");
    snprintf(key, sizeof key, "%s", te_file(cert));
    strcat(key, ".key");
    snprintf(ca, sizeof ca, "%s", te_file("ca.crt"));
    const char *args[48] = {"--tls-port", port, "--tls-cert-file", crt, "--tls-key-file", key,
                            "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"};
    int n = 10;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 47; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    /* The TLS port is picked here, the plain one by the harness: another
     * process may take ours first, so try a few. */
    for (int attempt = 0; attempt < 3; attempt++) {
        int p = th_free_port(0);
        TH_CHECK(p > 0);
        snprintf(port, sizeof port, "%d", p);
        th_server *s = th_server_start(args);
        if (s != NULL) {
            *tls_port = p;
            return s;
        }
    }
    TH_FAIL("cannot start a TLS redis-server with %s.crt", cert);
}

/* ---- cluster ---------------------------------------------------------------- */

static int cluster_ok(te_cluster *k) {
    for (int i = 0; i < k->n; i++) {
        redisReply *r = th_server_cmd(k->node[i], "CLUSTER INFO");
        char want[40];
        snprintf(want, sizeof want, "cluster_known_nodes:%d\r", k->n);
        int ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "cluster_state:ok") != NULL && strstr(r->str, want) != NULL;
        freeReplyObject(r);
        if (!ok)
            return 0;
    }
    return 1;
}

static void expect_ok(redisReply *r, const char *what) {
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (!ok)
        TH_FAIL("%s: %s", what, r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
    freeReplyObject(r);
}

void te_cluster_start(te_cluster *k, int n) {
    TH_CHECK(n >= 3 && n <= TE_MAX_NODES);
    memset(k, 0, sizeof *k);
    int bus[TE_MAX_NODES];
    for (int i = 0; i < n; i++) {
        char busport[16];
        bus[i] = th_free_port(0);
        TH_CHECK(bus[i] > 0);
        snprintf(busport, sizeof busport, "%d", bus[i]);
        const char *args[] = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                              "--cluster-node-timeout", "2000", "--tls-cluster", "yes",
                              "--cluster-port", busport, NULL};
        k->node[i] = te_server("server", args, &k->tls_port[i]);
        k->n++;
        int lo = 16384 * i / n, hi = 16384 * (i + 1) / n - 1;
        expect_ok(th_server_cmd(k->node[i], "CLUSTER ADDSLOTSRANGE %d %d", lo, hi),
                  "CLUSTER ADDSLOTSRANGE");
    }
    for (int i = 1; i < n; i++)
        expect_ok(th_server_cmd(k->node[0], "CLUSTER MEET 127.0.0.1 %d %d", k->tls_port[i],
                                bus[i]),
                  "CLUSTER MEET");
    long long end = th_now_us() + 20000000LL;
    while (!cluster_ok(k)) {
        if (th_now_us() >= end)
            TH_FAIL("TLS cluster not ok after 20 s");
        th_sleep_ms(50);
    }
    int len = snprintf(k->url, sizeof k->url, "rediss-cluster://");
    for (int i = 0; i < n; i++)
        len += snprintf(k->url + len, sizeof k->url - (size_t)len, "%s127.0.0.1:%d",
                        i ? "," : "", k->tls_port[i]);
    snprintf(k->url + len, sizeof k->url - (size_t)len, "?tls_ca=%s", te_file("ca.crt"));
}

void te_cluster_free(te_cluster *k) {
    for (int i = 0; i < k->n; i++)
        th_server_free(k->node[i]);
    k->n = 0;
}

int te_cluster_owner(te_cluster *k, int slot) {
    /* Asked over a plain connection, CLUSTER SLOTS names the plain ports. */
    redisReply *r = th_server_cmd(k->node[0], "CLUSTER SLOTS");
    int owner = -1;
    for (size_t j = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
        redisReply *e = r->element[j];
        if (e->elements < 3 || slot < e->element[0]->integer || slot > e->element[1]->integer)
            continue;
        for (int i = 0; i < k->n; i++)
            if (th_server_port(k->node[i]) == e->element[2]->element[1]->integer)
                owner = i;
    }
    freeReplyObject(r);
    return owner;
}

/* ---- sentinel ---------------------------------------------------------------- */

static char g_sentinel_conf[700];
static char g_sentinel_log[700];

static int run_sentinel(void *arg) {
    (void)arg;
    int fd = open(g_sentinel_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return 126;
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    const char *bin = getenv("DLOCK_REDIS_SERVER");
    if (bin == NULL || bin[0] == '\0')
        bin = "redis-server";
    execlp(bin, bin, g_sentinel_conf, "--sentinel", (char *)NULL);
    return 127;
}

/* The sentinel has seen the master over its TLS link (an INFO reply). */
static int sentinel_sees_master(te_sentinel *g) {
    redisContext *c = redisConnectWithTimeout("127.0.0.1", g->port, (struct timeval){0, 500000});
    if (c == NULL || c->err != 0 || redisSetTimeout(c, (struct timeval){1, 0}) != REDIS_OK) {
        redisFree(c); /* not listening yet: quietly try again */
        return 0;
    }
    redisReply *r = redisCommand(c, "SENTINEL master mymaster");
    int ok = 0;
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "role-reported") == 0)
            ok = strcmp(r->element[i + 1]->str, "master") == 0;
    for (size_t i = 0; ok && i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "flags") == 0)
            ok = strcmp(r->element[i + 1]->str, "master") == 0; /* not s_down */
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static int sentinel_try(te_sentinel *g) {
    g->port = th_free_port(0);
    g->tls_port = th_free_port(0);
    FILE *f = fopen(g_sentinel_conf, "w");
    TH_CHECK(f != NULL);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir \"%s\"\n"
            "tls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
            "tls-auth-clients no\ntls-replication yes\n"
            "sentinel resolve-hostnames no\n"
            "sentinel monitor mymaster 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds mymaster 2000\n",
            g->port, g_dir, g->tls_port, te_file("server.crt"), te_file("server.key"),
            te_file("ca.crt"), g->master_tls_port);
    fclose(f);
    g->pid = th_spawn(run_sentinel, NULL);
    TH_CHECK(g->pid > 0);
    long long end = th_now_us() + 10000000LL;
    while (th_now_us() < end) {
        if (sentinel_sees_master(g))
            return 0;
        th_sleep_ms(50);
    }
    return -1; /* e.g. a port taken meanwhile: the caller tries again */
}

void te_sentinel_start(te_sentinel *g) {
    memset(g, 0, sizeof *g);
    g->master = te_server("server", NULL, &g->master_tls_port);
    snprintf(g_sentinel_conf, sizeof g_sentinel_conf, "%s/sentinel.conf", g_dir);
    snprintf(g_sentinel_log, sizeof g_sentinel_log, "%s/sentinel.log", g_dir);
    for (int attempt = 0; attempt < 3; attempt++) {
        if (sentinel_try(g) == 0) {
            snprintf(g->url, sizeof g->url, "rediss-sentinel://127.0.0.1:%d/mymaster?tls_ca=%s",
                     g->tls_port, te_file("ca.crt"));
            return;
        }
        te_sentinel_free(g);
        g->master = te_server("server", NULL, &g->master_tls_port);
    }
    TH_FAIL("the TLS sentinel did not start (log %s)", g_sentinel_log);
}

void te_sentinel_free(te_sentinel *g) {
    if (g->pid > 0) {
        kill(g->pid, SIGKILL);
        th_wait(g->pid, -1);
        g->pid = 0;
    }
    th_server_free(g->master);
    g->master = NULL;
}
