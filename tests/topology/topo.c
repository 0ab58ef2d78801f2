/* topo.c - Sentinel groups and small clusters for the topology tests
 * (fake servers: fake.c). See topo.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "topo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "crc16.h"

/* ---- small helpers ------------------------------------------------------------ */

int tt_free_port(void) { return th_free_port(0); }

/* One command on 127.0.0.1:port over a fresh connection (1 s timeouts).
 * Returns the reply (caller frees) or NULL. */
static redisReply *port_cmd(int port, const char *fmt, ...) {
    redisContext *c = th_connect(port, 1000);
    if (c == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* Quiet variant for polling: no harness message when the port is closed. */
static redisContext *quiet_connect(int port) {
    struct timeval tv = {0, 300000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err || redisSetTimeout(c, (struct timeval){1, 0}) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int tt_lock_slot(const char *prefix, const char *name) {
    char key[1024];
    int n = snprintf(key, sizeof key, "%s{%s}", prefix, name);
    return dl_key_slot(key, (size_t)n);
}

int tt_name_in_slot(int slot, const char *prefix, const char *tag, char *out, size_t outlen) {
    for (long i = 0; i < 2000000; i++) {
        snprintf(out, outlen, "%s-%ld", tag, i);
        if (tt_lock_slot(prefix, out) == slot)
            return 0;
    }
    return -1;
}

long tt_cmd_calls(th_server *s, const char *cmd) {
    redisReply *r = th_server_cmd(s, "INFO commandstats");
    long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        char pat[96];
        snprintf(pat, sizeof pat, "cmdstat_%s:calls=", cmd);
        const char *p = strstr(r->str, pat);
        v = p ? strtol(p + strlen(pat), NULL, 10) : 0;
    }
    freeReplyObject(r);
    return v;
}

/* ---- exec'd helper processes (sentinels, redis-cli) ------------------------------ */

typedef struct exec_spec {
    const char *argv[16];
    char log[600];
} exec_spec;

/* Runs in a child forked by th_spawn (already registered, with the parent-
 * death signal set): redirect output to the log and exec. */
static int exec_child(void *arg) {
    exec_spec *e = arg;
    int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nul = open("/dev/null", O_RDONLY);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (fd < 0 || nul < 0)
        return 126;
    dup2(nul, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        for (int i = 3; i < 1024; i++)
            close(i);
    }
    const char *bin = e->argv[0];
    const char *env = getenv("DLOCK_REDIS_SERVER");
    if (env != NULL && env[0] != '\0' && strcmp(bin, "redis-server") == 0)
        bin = env;
    execvp(bin, (char *const *)e->argv);
    static const char msg[] = "topo: exec failed\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
        return 127;
    return 127;
}

/* ---- Sentinel ------------------------------------------------------------------ */

int tt_wait_replica_synced(th_server *s, int timeout_ms) {
    long long end = th_now_us() + (long long)timeout_ms * 1000;
    for (;;) {
        redisContext *c = quiet_connect(th_server_port(s));
        int ok = 0;
        if (c != NULL) {
            redisReply *r = redisCommand(c, "INFO replication");
            ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "role:slave") != NULL &&
                 strstr(r->str, "master_link_status:up") != NULL;
            freeReplyObject(r);
            redisFree(c);
        }
        if (ok)
            return 0;
        if (th_now_us() >= end) {
            fprintf(stderr, "topo: replica on %d not in sync after %d ms\n", th_server_port(s),
                    timeout_ms);
            return -1;
        }
        th_sleep_ms(50);
    }
}

int tt_wait_replica_acks(th_server *m, const char *key, int n, int timeout_ms) {
    long long end = th_now_us() + (long long)timeout_ms * 1000;
    for (;;) {
        /* WAIT counts the acknowledgements of this connection's writes. */
        redisReply *w = th_server_cmd(m, "SET %s 1", key);
        int ok = w != NULL && w->type == REDIS_REPLY_STATUS;
        freeReplyObject(w);
        if (ok && th_server_int(m, "WAIT %d 200", n) >= n)
            return 0;
        if (th_now_us() >= end) {
            fprintf(stderr, "topo: master on %d: %d replicas do not acknowledge writes after %d ms\n",
                    th_server_port(m), n, timeout_ms);
            return -1;
        }
    }
}

/* 0 once the process on port is our sentinel (INFO names its pid). */
static int sentinel_ready(int port, pid_t pid) {
    redisContext *c = quiet_connect(port);
    if (c == NULL)
        return -1;
    redisReply *r = redisCommand(c, "INFO server");
    char want[48];
    snprintf(want, sizeof want, "process_id:%d\r", (int)pid);
    int ok = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL &&
             strstr(r->str, "redis_mode:sentinel") != NULL;
    freeReplyObject(r);
    redisFree(c);
    return ok ? 0 : -1;
}

/* 1 if pid (our child) has exited: it is a zombie until reaped. */
static int exited(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp == NULL || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X';
}

/* Writes the config of sentinel i. The sentinels are told about each other
 * and about the replica up front (as a sentinel would have rewritten its
 * own config), so the group is ready without waiting for hello messages. */
static int write_sentinel_conf(tt_sentinels *g, int i, const char *path, char ids[][41]) {
    const char *dir = th_server_dir(g->data[0]);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "topo: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir \"%s\"\n"
            "sentinel myid %s\n"
            "sentinel resolve-hostnames no\n"
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 3000\n"
            "sentinel parallel-syncs %s 1\n"
            "sentinel known-replica %s 127.0.0.1 %d\n",
            g->sport[i], dir, ids[i], TT_MASTER_NAME, th_server_port(g->data[0]),
            TT_MASTER_NAME, TT_MASTER_NAME, TT_MASTER_NAME, TT_MASTER_NAME,
            th_server_port(g->data[1]));
    for (int j = 0; j < g->nsent; j++)
        if (j != i)
            fprintf(f, "sentinel known-sentinel %s 127.0.0.1 %d %s\n", TT_MASTER_NAME,
                    g->sport[j], ids[j]);
    fclose(f);
    return 0;
}

static void kill_sentinels(tt_sentinels *g) {
    for (int i = 0; i < g->nsent; i++) {
        if (g->spid[i] > 0) {
            kill(g->spid[i], SIGKILL);
            th_wait(g->spid[i], -1);
            g->spid[i] = 0;
        }
    }
}

/* Starts all sentinels; on any failure (a port taken meanwhile) kills them
 * and tries again with new ports. */
static int start_sentinels(tt_sentinels *g) {
    const char *dir = th_server_dir(g->data[0]);
    char ids[TT_MAX_SENTINELS][41];
    static exec_spec spec[TT_MAX_SENTINELS]; /* read by the children */
    static char conf[TT_MAX_SENTINELS][600];
    for (int i = 0; i < g->nsent; i++)
        for (int k = 0; k < 40; k++)
            ids[i][k] = "0123456789abcdef"[(i * 7 + k * 13 + (int)getpid()) & 15];
    for (int i = 0; i < g->nsent; i++) {
        ids[i][0] = "0123456789abcdef"[i]; /* distinct */
        ids[i][40] = '\0';
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        for (int i = 0; i < g->nsent; i++)
            if ((g->sport[i] = tt_free_port()) < 0)
                return -1;
        int ok = 1;
        for (int i = 0; ok && i < g->nsent; i++) {
            snprintf(conf[i], sizeof conf[i], "%s/sentinel-%d.conf", dir, i);
            if (write_sentinel_conf(g, i, conf[i], ids) != 0)
                return -1;
            memset(&spec[i], 0, sizeof spec[i]);
            snprintf(spec[i].log, sizeof spec[i].log, "%s/sentinel-%d.log", dir, i);
            spec[i].argv[0] = "redis-server";
            spec[i].argv[1] = conf[i];
            spec[i].argv[2] = "--sentinel";
            spec[i].argv[3] = NULL;
            g->spid[i] = th_spawn(exec_child, &spec[i]);
            ok = g->spid[i] > 0;
        }
        long long end = th_now_us() + 10000000LL;
        int ready = 0;
        while (ok && ready < g->nsent && th_now_us() < end) {
            ready = 0;
            for (int i = 0; ok && i < g->nsent; i++) {
                if (sentinel_ready(g->sport[i], g->spid[i]) == 0)
                    ready++;
                else if (exited(g->spid[i]))
                    ok = 0; /* port taken? try another set */
            }
            if (ok && ready < g->nsent)
                th_sleep_ms(20);
        }
        if (ok && ready == g->nsent)
            return 0;
        fprintf(stderr, "topo: sentinels did not start (attempt %d), see %s/sentinel-*.log\n",
                attempt + 1, dir);
        kill_sentinels(g);
    }
    return -1;
}

/* Value of field `name` in a flat field/value array reply, or NULL. */
static const char *field(const redisReply *r, const char *name) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            return r->element[i + 1]->str;
    return NULL;
}

tt_sentinels *tt_sentinels_start(int nsent) {
    if (nsent < 1 || nsent > TT_MAX_SENTINELS)
        return NULL;
    tt_sentinels *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    /* Full syncs without the default 5 s wait for more replicas. */
    const char *margs[] = {"--repl-diskless-sync-delay", "0", NULL};
    g->data[0] = th_server_start(margs);
    if (g->data[0] == NULL)
        goto fail;
    char mport[16];
    snprintf(mport, sizeof mport, "%d", th_server_port(g->data[0]));
    const char *rargs[] = {"--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", mport,
                           NULL};
    g->data[1] = th_server_start(rargs);
    if (g->data[1] == NULL || tt_wait_replica_synced(g->data[1], 10000) != 0 ||
        tt_wait_replica_acks(g->data[0], "topo-sync", 1, 10000) != 0)
        goto fail;
    g->nsent = nsent;
    if (start_sentinels(g) != 0)
        goto fail;
    int n = snprintf(g->url, sizeof g->url, "redis-sentinel://");
    for (int i = 0; i < nsent; i++)
        n += snprintf(g->url + n, sizeof g->url - (size_t)n, "%s127.0.0.1:%d", i ? "," : "",
                      g->sport[i]);
    snprintf(g->url + n, sizeof g->url - (size_t)n, "/%s", TT_MASTER_NAME);

    /* Each sentinel was told about the others and the replica; wait until
     * every one has them (and the master) on its books. */
    long long end = th_now_us() + 20000000LL;
    for (;;) {
        int good = 0;
        for (int i = 0; i < nsent; i++) {
            redisReply *r = port_cmd(g->sport[i], "SENTINEL master %s", TT_MASTER_NAME);
            const char *ns = field(r, "num-slaves"), *no = field(r, "num-other-sentinels");
            if (ns != NULL && no != NULL && atoi(ns) >= 1 && atoi(no) == nsent - 1)
                good++;
            freeReplyObject(r);
        }
        if (good == nsent)
            break;
        if (th_now_us() >= end) {
            fprintf(stderr, "topo: sentinels did not discover each other in 20 s\n");
            goto fail;
        }
        th_sleep_ms(100);
    }
    return g;
fail:
    tt_sentinels_free(g);
    return NULL;
}

void tt_sentinels_free(tt_sentinels *g) {
    if (g == NULL)
        return;
    kill_sentinels(g);
    th_server_free(g->data[1]);
    th_server_free(g->data[0]);
    free(g);
}

int tt_sentinel_master_port(tt_sentinels *g, int i) {
    redisContext *c = quiet_connect(g->sport[i]);
    if (c == NULL)
        return -1;
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", TT_MASTER_NAME);
    int port = -1;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(r->element[1]->str);
    freeReplyObject(r);
    redisFree(c);
    return port;
}

long long tt_sentinel_config_epoch(tt_sentinels *g, int i) {
    redisContext *c = quiet_connect(g->sport[i]);
    if (c == NULL)
        return -1;
    redisReply *r = redisCommand(c, "SENTINEL MASTER %s", TT_MASTER_NAME);
    long long epoch = -1;
    for (size_t k = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2)
        if (r->element[k]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[k]->str, "config-epoch") == 0 &&
            r->element[k + 1]->type == REDIS_REPLY_STRING)
            epoch = atoll(r->element[k + 1]->str);
    freeReplyObject(r);
    redisFree(c);
    return epoch;
}

static int role_is_master(int port) {
    redisContext *c = quiet_connect(port);
    if (c == NULL)
        return 0;
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

int tt_sentinels_wait_master(tt_sentinels *g, int port, int timeout_ms) {
    long long end = th_now_us() + (long long)timeout_ms * 1000;
    for (;;) {
        int good = role_is_master(port);
        for (int i = 0; good && i < g->nsent; i++)
            good = tt_sentinel_master_port(g, i) == port;
        if (good)
            return 0;
        if (th_now_us() >= end)
            return -1;
        th_sleep_ms(50);
    }
}

th_server *tt_sentinels_server(tt_sentinels *g, int port) {
    for (int i = 0; i < 2; i++)
        if (g->data[i] != NULL && th_server_port(g->data[i]) == port)
            return g->data[i];
    return NULL;
}

/* ---- Cluster --------------------------------------------------------------------- */

int tt_cluster_index(tt_cluster *k, int port) {
    for (int i = 0; i < k->n; i++)
        if (th_server_port(k->node[i]) == port)
            return i;
    return -1;
}

/* Fill owner[16384] (node index, -1 unknown) from node `ask`'s CLUSTER SLOTS.
 * Returns the number of ranges, or -1. */
static int slot_owners(tt_cluster *k, int ask, int *owner) {
    for (int i = 0; i < 16384; i++)
        owner[i] = -1;
    redisReply *r = th_server_cmd(k->node[ask], "CLUSTER SLOTS");
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return -1;
    }
    int ranges = (int)r->elements;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        int idx = tt_cluster_index(k, (int)e->element[2]->element[1]->integer);
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer && s < 16384; s++)
            if (s >= 0)
                owner[s] = idx;
    }
    freeReplyObject(r);
    return ranges;
}

int tt_cluster_owner(tt_cluster *k, int ask, int slot) {
    static int owner[16384];
    if (slot < 0 || slot >= 16384 || slot_owners(k, ask, owner) < 0)
        return -1;
    return owner[slot];
}

int tt_name_on_node(tt_cluster *k, int want, const char *prefix, const char *tag, char *out,
                    size_t outlen) {
    static int owner[16384];
    if (slot_owners(k, 0, owner) < 0)
        return -1;
    for (long i = 0; i < 1000000; i++) {
        snprintf(out, outlen, "%s-%ld", tag, i);
        int slot = tt_lock_slot(prefix, out);
        if (owner[slot] == want)
            return slot;
    }
    return -1;
}

static int cluster_settled(tt_cluster *k) {
    static int owner[16384];
    for (int i = 0; i < k->n; i++) {
        redisReply *r = th_server_cmd(k->node[i], "CLUSTER INFO");
        int ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "cluster_state:ok") != NULL;
        freeReplyObject(r);
        if (!ok)
            return 0;
        /* Replicas in sync, and counted by their masters (WAIT needs the
         * master to have seen the replica's first ACK). */
        r = th_server_cmd(k->node[i], "INFO replication");
        ok = r != NULL && r->type == REDIS_REPLY_STRING &&
             (strstr(r->str, "master_link_status:up") != NULL ||
              (strstr(r->str, "role:master") != NULL &&
               (k->masters == k->n || strstr(r->str, "state=online") != NULL)));
        freeReplyObject(r);
        if (!ok)
            return 0;
        if (slot_owners(k, i, owner) != k->masters)
            return 0;
        for (int s = 0; s < 16384; s++)
            if (owner[s] < 0)
                return 0;
    }
    return 1;
}

tt_cluster *tt_cluster_start(int n) { return tt_cluster_start_replicated(n, 0); }

tt_cluster *tt_cluster_start_replicated(int masters, int replicas) {
    int n = masters * (1 + replicas);
    if (masters < 3 || replicas < 0 || n > TT_MAX_NODES)
        return NULL;
    tt_cluster *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->masters = masters;
    const char *args[] = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0",
                          NULL};
    for (int i = 0; i < n; i++) {
        k->node[i] = th_server_start(args);
        if (k->node[i] == NULL)
            goto fail;
        k->n++;
        redisReply *r = th_server_cmd(k->node[i], "CLUSTER MYID");
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            goto fail;
        }
        snprintf(k->id[i], sizeof k->id[i], "%s", r->str);
        freeReplyObject(r);
    }
    static exec_spec spec;
    static char addrs[TT_MAX_NODES][32];
    memset(&spec, 0, sizeof spec);
    int a = 0;
    spec.argv[a++] = "redis-cli";
    spec.argv[a++] = "--cluster";
    spec.argv[a++] = "create";
    for (int i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", th_server_port(k->node[i]));
        spec.argv[a++] = addrs[i];
    }
    static char nrep[8];
    snprintf(nrep, sizeof nrep, "%d", replicas);
    spec.argv[a++] = "--cluster-replicas";
    spec.argv[a++] = nrep;
    spec.argv[a++] = "--cluster-yes";
    spec.argv[a] = NULL;
    snprintf(spec.log, sizeof spec.log, "%s/cluster-create.log", th_server_dir(k->node[0]));
    pid_t pid = th_spawn(exec_child, &spec);
    if (pid < 0)
        goto fail;
    int st = th_wait(pid, 30000);
    if (st != 0) {
        fprintf(stderr, "topo: redis-cli --cluster create failed (status %d), log %s\n", st,
                spec.log);
        if (st < 0) {
            kill(pid, SIGKILL);
            th_wait(pid, -1);
        }
        goto fail;
    }
    int n2 = snprintf(k->url, sizeof k->url, "redis-cluster://");
    for (int i = 0; i < n; i++)
        n2 += snprintf(k->url + n2, sizeof k->url - (size_t)n2, "%s127.0.0.1:%d", i ? "," : "",
                       th_server_port(k->node[i]));
    long long end = th_now_us() + 20000000LL;
    while (!cluster_settled(k)) {
        if (th_now_us() >= end) {
            fprintf(stderr, "topo: cluster not ok after 20 s\n");
            goto fail;
        }
        th_sleep_ms(50);
    }
    if (replicas > 0) {
        static int owner[16384];
        if (slot_owners(k, 0, owner) < 0)
            goto fail;
        for (int i = 0; i < k->n; i++) {
            int slot = -1;
            for (int s2 = 0; s2 < 16384 && slot < 0; s2++)
                if (owner[s2] == i)
                    slot = s2;
            if (slot < 0)
                continue; /* a replica */
            char key[64];
            if (tt_name_in_slot(slot, "", "topo-sync", key + 1, sizeof key - 2) != 0)
                goto fail;
            key[0] = '{';
            strcat(key, "}");
            if (tt_wait_replica_acks(k->node[i], key, replicas, 10000) != 0)
                goto fail;
        }
    }
    return k;
fail:
    tt_cluster_free(k);
    return NULL;
}

void tt_cluster_free(tt_cluster *k) {
    if (k == NULL)
        return;
    for (int i = 0; i < k->n; i++)
        th_server_free(k->node[i]);
    free(k);
}

static int expect_ok(redisReply *r, const char *what) {
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (!ok)
        fprintf(stderr, "topo: %s: %s\n", what,
                r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int tt_slot_begin(tt_cluster *k, int slot, int from, int to) {
    if (expect_ok(th_server_cmd(k->node[to], "CLUSTER SETSLOT %d IMPORTING %s", slot,
                                k->id[from]),
                  "SETSLOT IMPORTING") != 0)
        return -1;
    return expect_ok(th_server_cmd(k->node[from], "CLUSTER SETSLOT %d MIGRATING %s", slot,
                                   k->id[to]),
                     "SETSLOT MIGRATING");
}

int tt_slot_keys(tt_cluster *k, int slot, int from, int to) {
    for (;;) {
        redisReply *keys = th_server_cmd(k->node[from], "CLUSTER GETKEYSINSLOT %d 100", slot);
        if (keys == NULL || keys->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(keys);
            return -1;
        }
        if (keys->elements == 0) {
            freeReplyObject(keys);
            return 0;
        }
        const char *argv[120];
        size_t lens[120];
        char port[16];
        int argc = 0;
        snprintf(port, sizeof port, "%d", th_server_port(k->node[to]));
        const char *head[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS"};
        for (int i = 0; i < 7; i++) {
            argv[argc] = head[i];
            lens[argc++] = strlen(head[i]);
        }
        for (size_t i = 0; i < keys->elements && argc < 120; i++) {
            argv[argc] = keys->element[i]->str;
            lens[argc++] = keys->element[i]->len;
        }
        redisContext *c = th_connect(th_server_port(k->node[from]), 5000);
        redisReply *r = c ? redisCommandArgv(c, argc, argv, lens) : NULL;
        redisFree(c);
        freeReplyObject(keys);
        if (expect_ok(r, "MIGRATE") != 0)
            return -1;
    }
}

/* Whether s says ROLE master. */
static int is_master(th_server *s) {
    redisReply *r = th_server_cmd(s, "ROLE");
    int yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return yes;
}

int tt_slot_finish(tt_cluster *k, int slot, int to) {
    if (expect_ok(th_server_cmd(k->node[to], "CLUSTER SETSLOT %d NODE %s", slot, k->id[to]),
                  "SETSLOT NODE (target)") != 0)
        return -1;
    for (int i = 0; i < k->n; i++) {
        if (i == to || !is_master(k->node[i]))
            continue; /* a replica follows its master (and refuses SETSLOT) */
        if (expect_ok(th_server_cmd(k->node[i], "CLUSTER SETSLOT %d NODE %s", slot, k->id[to]),
                      "SETSLOT NODE") != 0)
            return -1;
    }
    return 0;
}
