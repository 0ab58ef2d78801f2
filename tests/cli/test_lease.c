/* test_lease.c - `dlock run`: the command never outlives the lease by
 * dlock's own fault (README.md "The tool"; man/dlock.1). Cases of test_cli. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"

/* Extensions keep failing (the server is paused) and the command ignores
 * SIGTERM: the command must be dead before the lease can end on the
 * server, whatever --kill-after says. */
void t_lease_pause(void) {
    char ready[300];
    path_in_dir(ready, sizeof ready, "ready.pause");
    proc p;
    start(&p, "--url", g_url, "run", "--ttl", "2000", "--kill-after", "5", "pz", "--", g_self,
          "child-sleep", ready, "20000", "ignore-term", NULL);
    pid_t child = ready_pid(ready, 5000);
    /* The key cannot expire before t_before + pttl (server time runs on
     * while we measure); a later extension only moves it further. */
    long long t_before = th_now_us();
    long long pttl = th_server_int(g_srv, "PTTL %s", "dlock:{pz}");
    TH_CHECK(pttl > 0);
    TH_EQ_INT(th_server_pause(g_srv), 0);
    long long dead = wait_dead(child, 10000);
    TH_EQ_INT(th_server_resume(g_srv), 0);
    if (dead < 0)
        TH_FAIL("the command outlived its lease by more than 10 s");
    long long margin_ms = (t_before + pttl * 1000 - dead) / 1000;
    if (margin_ms < 0)
        TH_FAIL("the command was still running %lld ms after its lease could end", -margin_ms);
    result r;
    finish(&p, 10000, &r);
    EXPECT_CODE(&r, 75);
    EXPECT_IN(r.err, "the lease of 'pz' could not be extended");
    EXPECT_IN(r.err, "SIGKILL");
}

/* dlock itself stopped (SIGSTOP to its pid alone; the command, in a
 * process group of its own, runs on, and so would a job whose dlock a
 * debugger, a cgroup freeze or a `kill -STOP` of dlock's own group
 * halted): nothing extends the lease any more, and the command must still
 * be dead before the lease can end. Continued later, dlock says what
 * happened and exits 75. */
void t_stopped_dlock(void) {
    char ready[300];
    path_in_dir(ready, sizeof ready, "ready.stop");
    proc p;
    start(&p, "--url", g_url, "run", "--ttl", "2000", "sd", "--", g_self, "child-sleep", ready,
          "20000", "ignore-term", NULL);
    pid_t child = ready_pid(ready, 5000);
    long long t_before = th_now_us();
    long long pttl = th_server_int(g_srv, "PTTL %s", "dlock:{sd}");
    TH_CHECK(pttl > 0);
    TH_EQ_INT(kill(p.pid, SIGSTOP), 0);
    long long dead = wait_dead(child, 6000);
    TH_EQ_INT(kill(p.pid, SIGCONT), 0);
    result r;
    finish(&p, 10000, &r);
    if (dead < 0)
        TH_FAIL("the command ran on for 6 s while its dlock was stopped (lease 2 s)");
    long long margin_ms = (t_before + pttl * 1000 - dead) / 1000;
    printf("stopped dlock: the command died %lld ms before its lease could end\n", margin_ms);
    if (margin_ms < 0)
        TH_FAIL("the command was still running %lld ms after its lease could end", -margin_ms);
    EXPECT_CODE(&r, 75);
    EXPECT_IN(r.err, "dlock was stopped");
}

/* SIGKILL to dlock: the command and what it started in its process group
 * die too, instead of running on while the next holder takes the lock. */
void t_parent_death(void) {
    char r1[300], r2[300], script[700];
    path_in_dir(r1, sizeof r1, "ready.pd1");
    path_in_dir(r2, sizeof r2, "ready.pd2");
    snprintf(script, sizeof script,
             "\"$0\" child-sleep \"$1\" 20000 ignore-term & "
             "exec \"$0\" child-sleep \"$2\" 20000 ignore-term");
    proc p;
    start(&p, "--url", g_url, "run", "--ttl", "20000", "pd", "--", "/bin/sh", "-c", script,
          g_self, r1, r2, NULL);
    pid_t bg = ready_pid(r1, 5000), fg = ready_pid(r2, 5000);
    TH_EQ_INT(kill(p.pid, SIGKILL), 0);
    result r;
    finish(&p, 5000, &r);
    TH_EQ_INT(r.code, 128 + SIGKILL);
    if (wait_dead(fg, 3000) < 0)
        TH_FAIL("the command survived SIGKILL of its dlock");
    if (wait_dead(bg, 3000) < 0)
        TH_FAIL("a process of the command's group survived SIGKILL of its dlock");
}

/* The command ended while the lease was valid, but dlock was stopped and
 * found the lease gone only afterwards: not 75 ("terminated because the
 * lock was lost"), and --json says why. */
void t_lost_at_release(void) {
    char ready[300], gate[300];
    path_in_dir(ready, sizeof ready, "ready.lar");
    path_in_dir(gate, sizeof gate, "gate.lar");
    proc p;
    start(&p, "--url", g_url, "run", "--json", "--ttl", "1000", "lar", "--", g_self,
          "child-gate", ready, gate, NULL);
    pid_t child = ready_pid(ready, 5000);
    TH_EQ_INT(kill(p.pid, SIGSTOP), 0);
    FILE *f = fopen(gate, "w");
    TH_CHECK(f != NULL);
    fclose(f);
    if (wait_dead(child, 5000) < 0) {
        kill(p.pid, SIGCONT);
        TH_FAIL("the command did not end");
    }
    /* Now let the lease run out while dlock cannot extend it. */
    long long end = th_now_us() + 5000000;
    while (key_exists("lar") != 0 && th_now_us() < end)
        th_sleep_ms(20);
    TH_EQ_INT(kill(p.pid, SIGCONT), 0);
    TH_EQ_INT(key_exists("lar"), 0);
    result r;
    finish(&p, 10000, &r);
    EXPECT_CODE(&r, 76);
    EXPECT_IN(r.err, "ended by itself");
    jobj o;
    jparse(last_line(r.err), &o);
    TH_EQ_INT(jget(&o, "lost", 'b')->n, 1);
    TH_EQ_INT(jget(&o, "command_status", 'n')->n, 0);
    TH_EQ_INT(jget(&o, "exit_code", 'n')->n, 76);
    const char *why = jget(&o, "lost_reason", 's')->s;
    if (strcmp(why, "DLOCK_ENOTHELD") != 0 && strcmp(why, "DLOCK_ETIMEDOUT") != 0)
        TH_FAIL("lost_reason %s", why);
}

/* A nested dlock run (or acquire) on the lock its command already holds
 * would wait for itself: refused at once. Another name is fine. */
void t_nested(void) {
    result r;
    dl(&r, "--url", g_url, "run", "nest", "--", g_dlock, "--url", g_url, "run", "-w", "3",
       "nest", "--", "true", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "already holds 'nest'");
    TH_CHECK(r.ms < 2500);
    dl(&r, "--url", g_url, "run", "nest", "--", g_dlock, "--url", g_url, "acquire", "-w", "3",
       "nest", NULL);
    EXPECT_CODE(&r, 2);
    EXPECT_IN(r.err, "already holds 'nest'");
    dl(&r, "--url", g_url, "run", "nest", "--", g_dlock, "--url", g_url, "run", "-n", "other",
       "--", "true", NULL);
    EXPECT_CODE(&r, 0);
    TH_EQ_INT(key_exists("nest"), 0);
}
