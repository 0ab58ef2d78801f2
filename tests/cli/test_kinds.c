/* test_kinds.c - the tool with the other kinds of locks (cases of
 * test_cli): --holders N (a semaphore), -s/-x (a read-write lock), several
 * names (a multi-lock), and their usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"

static void gate_paths(const char *tag, int i, char *ready, char *gate, size_t n) {
    char name[64];
    snprintf(name, sizeof name, "%s-ready-%d", tag, i);
    path_in_dir(ready, n, name);
    snprintf(name, sizeof name, "%s-gate", tag);
    path_in_dir(gate, n, name);
}

static void open_gate(const char *gate) {
    FILE *f = fopen(gate, "w");
    TH_CHECK(f != NULL);
    fclose(f);
}

/* --holders 2: two commands at once, a third is refused (-n) or waits. */
void t_kinds_holders(void) {
    char ready[2][300], gate[300];
    proc p[2], third;
    for (int i = 0; i < 2; i++) {
        gate_paths("sem", i, ready[i], gate, sizeof gate);
        start(&p[i], "--url", g_url, "run", "--holders", "2", "pool", "--", g_self,
              "child-gate", ready[i], gate, NULL);
    }
    for (int i = 0; i < 2; i++)
        TH_CHECK(wait_file(ready[i], 10000) == 0);
    result r;
    dl(&r, "--url", g_url, "run", "-n", "--holders", "2", "pool", "--", g_self, "child-exit",
       "0", NULL);
    EXPECT_CODE(&r, 1);
    EXPECT_IN(r.err, "semaphore 'pool' is held by 2 holders");
    dl(&r, "--url", g_url, "status", "pool", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "pool: semaphore, 2 of 2 permits held");
    dl(&r, "--url", g_url, "status", "--json", "pool", NULL);
    EXPECT_IN(r.out, "\"kind\":\"semaphore\",\"permits\":2,\"holders\":[{");
    dl(&r, "--url", g_url, "ls", "--json", NULL);
    EXPECT_IN(r.out, "\"kind\":\"semaphore\"");
    EXPECT_IN(r.out, "\"holder_count\":2");
    dl(&r, "--url", g_url, "run", "-n", "pool", "--", g_self, "child-exit", "0", NULL);
    EXPECT_CODE(&r, 69); /* a plain lock on a semaphore's name */
    EXPECT_IN(r.err, "in use as another kind of lock");
    start(&third, "--url", g_url, "run", "--holders", "2", "pool", "--", g_self, "child-exit",
          "5", NULL);
    th_sleep_ms(300);
    TH_CHECK(!pid_dead(third.pid)); /* waiting for a permit */
    open_gate(gate);
    for (int i = 0; i < 2; i++) {
        finish(&p[i], 10000, &r);
        EXPECT_CODE(&r, 0);
    }
    finish(&third, 10000, &r);
    EXPECT_CODE(&r, 5);
    TH_EQ_INT(key_exists("pool"), 0);
    /* acquire / release by token of one permit */
    dl(&r, "--url", g_url, "acquire", "--holders", "3", "pool", NULL);
    EXPECT_CODE(&r, 0);
    char tok[33];
    memcpy(tok, r.out, 32);
    tok[32] = '\0';
    dl(&r, "--url", g_url, "extend", "pool", tok, NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "release", "pool", tok, NULL);
    EXPECT_CODE(&r, 0);
    TH_EQ_INT(key_exists("pool"), 0);
}

/* -s twice at once; -x refused (-n), then queued: a reader that comes
 * after it waits behind it. */
void t_kinds_shared(void) {
    char ready[3][300], gate[300], wgate[300];
    proc rd[2], w, late;
    for (int i = 0; i < 2; i++) {
        gate_paths("rw", i, ready[i], gate, sizeof gate);
        start(&rd[i], "--url", g_url, "run", "--shared", "doc", "--", g_self, "child-gate",
              ready[i], gate, NULL);
    }
    for (int i = 0; i < 2; i++)
        TH_CHECK(wait_file(ready[i], 10000) == 0);
    result r;
    dl(&r, "--url", g_url, "run", "-x", "-n", "doc", "--", g_self, "child-exit", "0", NULL);
    EXPECT_CODE(&r, 1);
    EXPECT_IN(r.err, "read-write lock 'doc' is held by 2 holders");
    dl(&r, "--url", g_url, "status", "doc", NULL);
    EXPECT_IN(r.out, "doc: read-write lock, held shared by 2 readers");
    gate_paths("rw-w", 2, ready[2], wgate, sizeof wgate);
    start(&w, "--url", g_url, "run", "--exclusive", "doc", "--", g_self, "child-gate",
          ready[2], wgate, NULL);
    long long end = th_now_us() + 5000000;
    while (th_server_int(g_srv, "ZCARD %s", "dlock:{doc}:pq") < 1 && th_now_us() < end)
        th_sleep_ms(5);
    start(&late, "--url", g_url, "run", "-s", "doc", "--", g_self, "child-exit", "0", NULL);
    open_gate(gate); /* the readers end; the writer gets in, the late reader waits */
    for (int i = 0; i < 2; i++) {
        finish(&rd[i], 10000, &r);
        EXPECT_CODE(&r, 0);
    }
    TH_CHECK(wait_file(ready[2], 10000) == 0);
    th_sleep_ms(200);
    TH_CHECK(!pid_dead(late.pid));
    dl(&r, "--url", g_url, "status", "doc", NULL);
    EXPECT_IN(r.out, "held exclusive by a writer");
    open_gate(wgate);
    finish(&w, 10000, &r);
    EXPECT_CODE(&r, 0);
    finish(&late, 10000, &r);
    EXPECT_CODE(&r, 0);
}

/* Several names: all at once, DLOCK_NAMES/DLOCK_FENCES, all or nothing. */
void t_kinds_multi(void) {
    char out[300], cmd[600];
    path_in_dir(out, sizeof out, "multi-env");
    snprintf(cmd, sizeof cmd, "printf '%%s|%%s|%%s' \"$DLOCK_NAMES\" \"$DLOCK_FENCES\" "
                              "\"$DLOCK_NAME\" > '%s'", out);
    result r;
    dl(&r, "--url", g_url, "run", "m-c", "m-a", "m-b", "--", "/bin/sh", "-c", cmd, NULL);
    EXPECT_CODE(&r, 0);
    char buf[300];
    slurp(out, buf, sizeof buf);
    TH_EQ_STR(buf, "m-a\nm-b\nm-c|1 1 1|m-a");
    dl(&r, "--url", g_url, "acquire", "m-b", NULL);
    EXPECT_CODE(&r, 0);
    char tok[33];
    memcpy(tok, r.out, 32);
    tok[32] = '\0';
    dl(&r, "--url", g_url, "run", "-n", "m-a", "m-b", "m-c", "--", g_self, "child-exit", "0",
       NULL);
    EXPECT_CODE(&r, 1);
    EXPECT_IN(r.err, "locks 'm-a', 'm-b' and 1 more are not all free: 'm-b' is held by");
    TH_EQ_INT(key_exists("m-a") + key_exists("m-c"), 0); /* nothing was taken */
    dl(&r, "--url", g_url, "release", "m-b", tok, NULL);
    EXPECT_CODE(&r, 0);
    dl(&r, "--url", g_url, "run", "-n", "m-a", "m-b", "--", g_self, "child-exit", "7", NULL);
    EXPECT_CODE(&r, 7);
    /* One name with a command, no '--': as before. */
    dl(&r, "--url", g_url, "run", "m-a", g_self, "child-exit", "4", NULL);
    EXPECT_CODE(&r, 4);
}

void t_kinds_usage(void) {
    result r;
    dl(&r, "--url", g_url, "run", "--holders", "0", "x", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "--holders wants a number of permits");
    dl(&r, "--url", g_url, "run", "--holders", "2", "-s", "x", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "use either --holders");
    dl(&r, "--url", g_url, "run", "-s", "-x", "x", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "--url", g_url, "run", "--holders", "2", "a", "b", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "take one NAME");
    dl(&r, "--url", g_url, "status", "--holders", "2", "x", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "takes no --holders");
    dl(&r, "--url", g_url, "run", "a", "", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    dl(&r, "run", "--help", NULL);
    EXPECT_IN(r.out, "--holders N");
    EXPECT_IN(r.out, "NAME1 NAME2... -- COMMAND");
}
