/* test_safety.c - the tool on unsafe deployments (issue 10): a replica gate
 * that cannot pass, and (t_eviction) a server whose eviction policy may
 * drop lock keys. Cases of test_cli. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "topo.h"

static long long counter(const char *name) {
    char key[96];
    snprintf(key, sizeof key, "dlock:{%s}:fence", name);
    redisReply *r = th_server_cmd(g_srv, "GET %s", key);
    TH_CHECK(r != NULL);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* ?replicas=1 with no replica: a clear message and exit 69, not "held by
 * another owner" (-n) or a silent loop that burns fences (-w). */
void t_replica_gate(void) {
    char url[200];
    snprintf(url, sizeof url, "%s?replicas=1&replica_timeout=50", g_url);
    result r;
    dl(&r, "--url", url, "run", "-n", "rg", "--", "true", NULL);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.err, "only 0 of 1 replicas");
    TH_CHECK(strstr(r.err, "held") == NULL);
    long long f0 = counter("rg");
    dl(&r, "--url", url, "run", "-w", "1.5", "rg", "--", "true", NULL);
    printf("run -w 1.5: exit %d after %lld ms, fences used %lld\nstderr: %s", r.code, r.ms,
           counter("rg") - f0, r.err);
    EXPECT_CODE(&r, 69);
    TH_CHECK(r.ms >= 1400 && r.ms < 4000);
    EXPECT_IN(r.err, "warning: ");
    EXPECT_IN(r.err, "waiting for the replicas");
    TH_CHECK(counter("rg") - f0 <= 1);
    TH_EQ_INT(key_exists("rg"), 0);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* A server that may evict lock keys: one warning line, and the command
 * still runs (doctor and require_noeviction are the strict ways). */
void t_eviction(void) {
    redisReply *r0 = th_server_cmd(g_srv, "CONFIG SET maxmemory-policy allkeys-lru");
    TH_CHECK(r0 != NULL && r0->type == REDIS_REPLY_STATUS);
    freeReplyObject(r0);
    result r;
    dl(&r, "--url", g_url, "run", "ev", "--", "true", NULL);
    printf("stderr: %s", r.err);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.err, "warning: ");
    EXPECT_IN(r.err, "maxmemory-policy is allkeys-lru");
    TH_EQ_INT(count(r.err, "warning: "), 1);
    r0 = th_server_cmd(g_srv, "CONFIG SET maxmemory-policy noeviction");
    TH_CHECK(r0 != NULL && r0->type == REDIS_REPLY_STATUS);
    freeReplyObject(r0);
    dl(&r, "--url", g_url, "run", "ev", "--", "true", NULL);
    EXPECT_CODE(&r, 0);
    TH_EQ_STR(r.err, "");
}

/* `dlock run --wait 20` while the master dies and a replica takes over:
 * the run waits (the failover costs time), instead of exiting 69 with
 * "no master found", "Connection refused" or CLUSTERDOWN. */
void t_failover_wait(void) {
    tt_sentinels *g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    TH_EQ_INT(th_server_kill(g->data[0]), 0);
    result r;
    dl(&r, "--url", g->url, "--io-timeout", "500", "run", "-w", "20", "fw", "--", "true", NULL);
    printf("sentinel: exit %d after %lld ms\nstderr: %s", r.code, r.ms, r.err);
    EXPECT_CODE(&r, 0);
    tt_sentinels_free(g);

    tt_cluster *k = tt_cluster_start_replicated(3, 1);
    TH_CHECK(k != NULL);
    int victim = tt_cluster_owner(k, 0, 100);
    char name[64];
    TH_CHECK(tt_name_on_node(k, victim, "dlock:", "fw", name, sizeof name) >= 0);
    TH_EQ_INT(th_server_kill(k->node[victim]), 0);
    dl(&r, "--url", k->url, "--io-timeout", "500", "run", "-w", "20", name, "--", "true", NULL);
    printf("cluster: exit %d after %lld ms\nstderr: %s", r.code, r.ms, r.err);
    EXPECT_CODE(&r, 0);
    tt_cluster_free(k);
}
