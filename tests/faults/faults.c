/* faults.c - the lock worker, shared counters and helpers of the fault tests. */
#include "faults.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *shared(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        TH_FAIL("mmap %zu bytes: %s", n, strerror(errno));
    memset(p, 0, n);
    return p;
}

ft_stats *ft_stats_new(void) { return shared(sizeof(ft_stats)); }

ft_cfg *ft_cfg_new(void) {
    ft_cfg *c = shared(sizeof(ft_cfg));
    c->nnames = 1;
    c->ttl_ms = 2000;
    c->wait_ms = 2000;
    c->hold_steps = 3;
    c->step_us = 500;
    c->connect_ms = 200;
    c->command_ms = 300;
    c->waiting = DLOCK_WAIT_PUSH;
    return c;
}

static uint64_t g_rng;

int ft_rand(int lo, int hi) {
    if (g_rng == 0)
        g_rng = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)th_now_us();
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return lo + (int)(g_rng % (uint64_t)(hi - lo + 1));
}

static void count(_Atomic int64_t *by_status, int rc) {
    int i = -rc;
    if (i < 0 || i >= FT_NSTATUS)
        i = FT_NSTATUS - 1;
    atomic_fetch_add(&by_status[i], 1);
}

static void note_time(ft_stats *st, long long t0) {
    int64_t d = th_now_us() - t0;
    int64_t cur = atomic_load(&st->max_call_us);
    while (d > cur && !atomic_compare_exchange_weak(&st->max_call_us, &cur, d)) {
    }
}

/* ---- storage ---- */

static const char STORE_LUA[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local f = tonumber(ARGV[1])\n"
    "if f > cur then\n"
    "  redis.call('SET', KEYS[1], ARGV[1])\n"
    "  redis.call('INCR', KEYS[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

int ft_store_commit(redisContext *store, const char *name, int64_t fence) {
    char k1[128], k2[128], f[24];
    snprintf(k1, sizeof k1, "store:{%s}:fence", name);
    snprintf(k2, sizeof k2, "store:{%s}:commits", name);
    snprintf(f, sizeof f, "%lld", (long long)fence);
    redisReply *r = redisCommand(store, "EVAL %s 2 %s %s %s", STORE_LUA, k1, k2, f);
    if (r == NULL)
        return -1;
    int v = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    return v;
}

/* ---- the worker ---- */

static int g_idx;

static int worker_main(void *arg) {
    ft_cfg *x = arg;
    int idx = g_idx;
    while (!atomic_load(&x->go))
        th_sleep_ms(1);
    ft_stats *st = x->st;
    dlock_options o;
    it_options(&o, x->connect_ms, x->command_ms);
    o.waiting = x->waiting;
    o.retry_delay_ms = 5;
    o.retry_max_delay_ms = 50;
    dlock_client *c = it_client(x->url, &o);
    redisContext *store = NULL;
    if (x->store_port > 0) {
        store = th_connect(x->store_port, 5000);
        TH_CHECK(store != NULL);
    }
    int iter = 0;
    while (th_now_us() < x->end_us) {
        char name[HIST_NAME_MAX];
        if (x->nnames > 1)
            snprintf(name, sizeof name, "%s-%d", x->name, ft_rand(0, x->nnames - 1));
        else
            snprintf(name, sizeof name, "%s", x->name);
        dlock_lock *l = NULL;
        long long t0 = th_now_us();
        int rc = dlock_wait(c, name, x->wait_ms, x->ttl_ms, &l);
        note_time(st, t0);
        int64_t t_ok = th_now_us();
        count(st->acquire, rc);
        int si = -rc >= 0 && -rc < FT_NSTATUS ? -rc : FT_NSTATUS - 1;
        if (rc != DLOCK_OK && atomic_exchange(&st->sample_set[si], 1) == 0)
            snprintf(st->sample[si], sizeof st->sample[si], "%s", dlock_client_errstr(c));
        if (rc != DLOCK_OK) {
            if (rc != DLOCK_ETIMEDOUT && rc != DLOCK_EBUSY)
                th_sleep_ms(ft_rand(2, 10)); /* server down: do not spin */
            continue;
        }
        dlock_info info;
        dlock_info_get(l, &info);
        /* The believed-held interval: [t_ok, last time held was seen true].
         * Each time is taken just before the dlock_held() call, so held was
         * true at an instant no earlier than it. */
        int64_t last = 0, t = th_now_us();
        if (dlock_held(l))
            last = t;
        int steps = x->random_hold ? ft_rand(1, x->hold_steps) : x->hold_steps;
        for (int s = 0; last && s < steps; s++) {
            struct timespec ts = {0, (long)x->step_us * 1000};
            nanosleep(&ts, NULL);
            if (x->extend && s == steps / 2) {
                t0 = th_now_us();
                int erc = dlock_extend(l, x->ttl_ms);
                note_time(st, t0);
                count(st->extend, erc);
            }
            t = th_now_us();
            if (!dlock_held(l)) {
                atomic_fetch_add(&st->lost, 1);
                break;
            }
            last = t;
        }
        if (last && store != NULL) {
            /* Check, then write: a pause between the two is exactly what
             * the fence check at the storage is for. */
            t = th_now_us();
            if (dlock_held(l)) {
                last = t;
                int cr = ft_store_commit(store, name, info.fence);
                if (cr == 1)
                    atomic_fetch_add(&st->commit_ok, 1);
                else if (cr == 0)
                    atomic_fetch_add(&st->commit_rej, 1);
                else
                    atomic_fetch_add(&st->commit_err, 1);
            } else {
                atomic_fetch_add(&st->lost, 1);
            }
        }
        if (last && x->h != NULL && hist_add(x->h, name, info.fence, t_ok, last, idx) != 0)
            TH_FAIL("worker %d: history log full", idx);
        t0 = th_now_us();
        rc = dlock_release(l);
        note_time(st, t0);
        count(st->release, rc);
        dlock_lock_free(l);
        iter++;
    }
    if (store != NULL)
        redisFree(store);
    dlock_client_free(c);
    return 0;
}

pid_t ft_spawn_worker(ft_cfg *cfg, int idx) {
    g_idx = idx;
    g_rng = 0;
    pid_t pid = th_spawn(worker_main, cfg);
    TH_CHECK(pid > 0);
    return pid;
}

void ft_go(ft_cfg *cfg) { atomic_store(&cfg->go, 1); }

int ft_join(const pid_t *pids, int n, int timeout_ms) {
    long long deadline = th_now_us() + (long long)timeout_ms * 1000;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        long long left = (deadline - th_now_us()) / 1000;
        int st = th_wait(pids[i], left > 0 ? (int)left : 0);
        if (st == -1) {
            /* A hung worker is a finding: show where it hangs. */
            char cmd[160];
            snprintf(cmd, sizeof cmd,
                     "command -v gdb >/dev/null && gdb -q -p %d -batch -ex 'thread apply all bt' "
                     "2>/dev/null | grep -E '^#|^Thread' >&2",
                     (int)pids[i]);
            if (system(cmd) != 0)
                fprintf(stderr, "(no stack: gdb not available)\n");
            kill(pids[i], SIGKILL);
            th_wait(pids[i], -1);
            fprintf(stderr, "worker %d (pid %d) did not finish in time, killed\n", i,
                    (int)pids[i]);
            failed++;
        } else if (st != 0) {
            fprintf(stderr, "worker %d (pid %d) failed with status %d\n", i, (int)pids[i], st);
            failed++;
        }
    }
    return failed;
}

int64_t ft_stats_total(const _Atomic int64_t *by_status) {
    int64_t n = 0;
    for (int i = 0; i < FT_NSTATUS; i++)
        n += atomic_load(&by_status[i]);
    return n;
}

static void print_counts(const char *what, const _Atomic int64_t *by_status) {
    printf(" %s:", what);
    int any = 0;
    for (int i = 0; i < FT_NSTATUS; i++) {
        int64_t v = atomic_load(&by_status[i]);
        if (v == 0)
            continue;
        printf("%s %s %lld", any ? "," : "", dlock_err_name(-i) + 6, (long long)v);
        any = 1;
    }
    if (!any)
        printf(" none");
    printf(";");
}

void ft_stats_print(const char *label, const ft_stats *st) {
    printf("stats [%s]:", label);
    print_counts("acquire", st->acquire);
    print_counts("release", st->release);
    if (ft_stats_total(st->extend) > 0)
        print_counts("extend", st->extend);
    printf(" lost in critical section %lld; commits ok %lld, rejected %lld, error %lld; "
           "slowest call %lld ms\n",
           (long long)atomic_load(&st->lost), (long long)atomic_load(&st->commit_ok),
           (long long)atomic_load(&st->commit_rej), (long long)atomic_load(&st->commit_err),
           (long long)atomic_load(&st->max_call_us) / 1000);
    for (int i = 1; i < FT_NSTATUS; i++)
        if (st->sample_set[i] && i != -DLOCK_ETIMEDOUT && i != -DLOCK_EBUSY)
            printf("  first %s detail: %s\n", dlock_err_name(-i), st->sample[i]);
}

/* ---- memory ---- */

long ft_rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

long ft_peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* ---- server-side checks ---- */

int ft_lock_exists(th_server *s, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return (int)th_server_int(s, "EXISTS %s", key);
}

int ft_wait_gone(th_server *s, const char *name, int timeout_ms) {
    long long t0 = th_now_us();
    for (;;) {
        int e = ft_lock_exists(s, name);
        if (e == 0)
            return (int)ft_ms_since(t0);
        if (ft_ms_since(t0) > timeout_ms)
            return -1;
        th_sleep_ms(5);
    }
}
