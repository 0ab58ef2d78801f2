/* cli_util.h - helpers of the dlock tool tests (test_cli.c). */
#ifndef DLOCK_TEST_CLI_UTIL_H
#define DLOCK_TEST_CLI_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

extern const char *g_dlock; /* path of the dlock binary */

/* Common start of a CLI test program: th_test_init(timeout_s), g_dlock, this
 * program's own path in g_self, and no DLOCK_URL / DLOCK_URL_FILE inherited
 * from whoever runs the tests. */
void cli_test_init(const char *dlock_path, int timeout_s);
extern th_server *g_srv;    /* the test's server; files go in its directory */
extern char g_url[128];     /* its URL */
extern const char *g_self;  /* path of test_cli, also the COMMAND dlock runs */

/* A dlock process started in the background, output going to files. */
typedef struct proc {
    pid_t pid;
    char out[300], err[300];
    char *argv[40];
    long long t0_us;
} proc;

typedef struct result {
    int code; /* exit status or 128+signal */
    long long ms;
    char out[16384];
    char err[16384];
} result;

/* buf = <server dir>/name */
void path_in_dir(char *buf, size_t n, const char *name);
/* Start dlock with args[0..n) / with a NULL-terminated list. */
void start_arr(proc *p, const char *const *args, int n);
void start(proc *p, ...);
/* Wait for it (failing the test after timeout_ms) and collect the output. */
void finish(proc *p, int timeout_ms, result *r);
/* start + finish with 15 s. */
void dl(result *r, ...);
void slurp(const char *path, char *buf, size_t n);
/* 0 once path exists, -1 after timeout_ms. */
int wait_file(const char *path, int timeout_ms);
/* EXISTS dlock:{name} on the test's server. */
long long key_exists(const char *name);

#define EXPECT_CODE(r, want)                                                                 \
    do {                                                                                     \
        if ((r)->code != (want))                                                             \
            TH_FAIL("exit status %d, expected %d\nstdout: %s\nstderr: %s", (r)->code, (want), \
                    (r)->out, (r)->err);                                                     \
    } while (0)
#define EXPECT_IN(hay, needle)                                                         \
    do {                                                                               \
        if (strstr((hay), (needle)) == NULL)                                           \
            TH_FAIL("expected \"%s\" in:\n%s", (needle), (hay));                       \
    } while (0)

/* The pid written in a READY file by a child-* helper; fails the test if
 * the file does not appear within timeout_ms. */
pid_t ready_pid(const char *path, int timeout_ms);
/* 1 if pid has exited (gone, or a zombie not yet reaped), else 0. */
int pid_dead(pid_t pid);
/* Polls pid_dead every 2 ms; returns the time (th_now_us) it was first seen
 * dead, or -1 after timeout_ms. */
long long wait_dead(pid_t pid, int timeout_ms);

/* Test cases in test_lease.c (section "the command never outlives the lease"). */
void t_lease_pause(void);
void t_parent_death(void);
void t_stopped_dlock(void);
void t_lost_at_release(void);
void t_nested(void);
/* test_kinds.c: --holders, -s/-x, several names. */
void t_kinds_holders(void);
void t_kinds_shared(void);
void t_kinds_multi(void);
void t_kinds_usage(void);
/* test_flock.c: flock(1) habits, JSON errors, hints, holder pid. */
void t_flock_opts(void);
void t_json_errors(void);
void t_hints(void);
void t_hints_topo(void);
void t_holder_pid(void);
/* test_ls.c: dlock ls, run --max-time and --metrics-file. */
void t_ls_bigdb(void);
void t_ls_json(void);
void t_ls_openmetrics(void);
void t_ls_cluster(void);
void t_ls_sentinel(void);
void t_max_time(void);
void t_metrics_file(void);
void t_replica_gate(void);
void t_eviction(void);
void t_failover_wait(void);

/* A tiny JSON reader for flat objects of scalars. */
typedef struct jval {
    char key[64];
    int type; /* 's' string, 'n' number, 'b' bool, 'z' null */
    char s[1024];
    long long n;
} jval;

typedef struct jobj {
    jval v[40];
    int count;
} jobj;

/* Parses one object followed by a newline; fails the test if invalid. */
void jparse(const char *text, jobj *obj);
/* The member `key`, which must exist with the given type. */
const jval *jget(const jobj *o, const char *key, int type);
/* The last line of text. */
const char *last_line(const char *text);

#endif
