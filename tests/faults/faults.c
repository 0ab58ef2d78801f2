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
    c->permits = 2;
    c->writer_pct = 20;
    c->multi_max = 3;
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

static const char STORE_MULTI_LUA[] =
    "for i = 1, #KEYS do\n"
    "  if tonumber(ARGV[i]) <= tonumber(redis.call('GET', KEYS[i]) or '0') then return 0 end\n"
    "end\n"
    "for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end\n"
    "return 1\n";

int ft_store_commit_multi(redisContext *store, int n, const char *const *names,
                          const int64_t *fences) {
    enum { MAXN = 8 };
    char keys[MAXN][128], fs[MAXN][24], nk[8];
    const char *argv[3 + 2 * MAXN];
    if (n < 1 || n > MAXN)
        return -1;
    snprintf(nk, sizeof nk, "%d", n);
    argv[0] = "EVAL";
    argv[1] = STORE_MULTI_LUA;
    argv[2] = nk;
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "store:{%s}:fence", names[i]);
        snprintf(fs[i], sizeof fs[i], "%lld", (long long)fences[i]);
        argv[3 + i] = keys[i];
        argv[3 + n + i] = fs[i];
    }
    redisReply *r = redisCommandArgv(store, 3 + 2 * n, argv, NULL);
    if (r == NULL)
        return -1;
    int v = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    return v;
}

/* ---- the worker: one acquisition of its kind ---- */

#define MULTI_MAX 8

typedef struct take {
    dlock_lock *l;
    int asked;   /* names asked for */
    int writer;  /* FT_RW: exclusive */
    int plain;   /* a mutex (FT_MUTEX, or FT_MULTI's plain take) */
    const char *names[MULTI_MAX];
    char buf[MULTI_MAX][HIST_NAME_MAX];
} take;

/* The names of this iteration: one, or (multi) 2..multi_max distinct. */
static void pick(const ft_cfg *x, take *t) {
    int k = 1;
    if (x->kind == FT_MULTI && ft_rand(0, 3) > 0) {
        int hi = x->multi_max < x->nnames ? x->multi_max : x->nnames;
        k = ft_rand(2, hi < 2 ? 2 : hi > MULTI_MAX ? MULTI_MAX : hi);
    }
    int idx[16];
    int n = x->nnames < 16 ? x->nnames : 16;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = 0; i < k; i++) { /* a partial shuffle: k distinct names */
        int j = ft_rand(i, n > i ? n - 1 : i);
        int tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        if (x->nnames > 1)
            snprintf(t->buf[i], sizeof t->buf[i], "%s-%d", x->name, idx[i]);
        else
            snprintf(t->buf[i], sizeof t->buf[i], "%s", x->name);
        t->names[i] = t->buf[i];
    }
    t->asked = k;
    t->plain = x->kind == FT_MUTEX || (x->kind == FT_MULTI && k == 1);
    t->writer = x->kind == FT_RW && ft_rand(1, 100) <= x->writer_pct;
}

static int acquire(dlock_client *c, const ft_cfg *x, take *t) {
    pick(x, t);
    t->l = NULL;
    if (t->plain)
        return dlock_wait(c, t->names[0], x->wait_ms, x->ttl_ms, &t->l);
    switch (x->kind) {
    case FT_SEM:
        return dlock_sem_wait(c, t->names[0], x->permits, x->wait_ms, x->ttl_ms, &t->l);
    case FT_RW:
        return dlock_rw_wait(c, t->names[0], t->writer ? DLOCK_EXCLUSIVE : DLOCK_SHARED,
                             x->wait_ms, x->ttl_ms, &t->l);
    default:
        return dlock_multi_wait(c, t->names, t->asked, x->wait_ms, x->ttl_ms, &t->l);
    }
}

/* The believed-held interval [start, last] in the history, as its kind. */
static int record(const ft_cfg *x, const take *t, int64_t req, int64_t start, int64_t last,
                  int idx) {
    const char *names[MULTI_MAX];
    int64_t fences[MULTI_MAX];
    int n = dlock_lock_names(t->l);
    for (int i = 0; i < n && i < MULTI_MAX; i++)
        dlock_lock_name_at(t->l, i, &names[i], &fences[i]);
    if (x->kind == FT_MULTI && !t->plain)
        return hist_add_multi(x->h, t->asked, n, names, fences, req, start, last, idx);
    hist_rec r = {.fence = fences[0], .req_us = req, .start_us = start, .end_us = last,
                  .worker = idx};
    snprintf(r.name, sizeof r.name, "%s", names[0]);
    if (x->kind == FT_SEM)
        r.limit = x->permits;
    else if (x->kind == FT_RW)
        r.limit = t->writer ? 1 : HIST_ANY;
    r.shared = x->kind == FT_RW && !t->writer;
    return hist_add_rec(x->h, &r);
}

/* The fenced write of a holder that excludes others (a mutex, a writer,
 * a multi-lock's every name): 1, 0, -1 as ft_store_commit; 2 when the
 * kind has no single writer to fence (a semaphore permit, a reader). */
static int commit(redisContext *store, const ft_cfg *x, const take *t) {
    if (!t->plain && (x->kind == FT_SEM || (x->kind == FT_RW && !t->writer)))
        return 2;
    const char *names[MULTI_MAX];
    int64_t fences[MULTI_MAX];
    int n = dlock_lock_names(t->l);
    for (int i = 0; i < n && i < MULTI_MAX; i++)
        dlock_lock_name_at(t->l, i, &names[i], &fences[i]);
    return n == 1 ? ft_store_commit(store, names[0], fences[0])
                  : ft_store_commit_multi(store, n, names, fences);
}

/* ---- the worker ---- */

static int g_idx;

/* Hold t for the configured steps, checking dlock_held, extending once
 * halfway if asked; then the fenced commit. Returns the last instant held
 * was seen true (0: never). */
static int64_t hold(const ft_cfg *x, ft_stats *st, redisContext *store, const take *t) {
    int64_t last = 0, t1 = th_now_us();
    if (dlock_held(t->l))
        last = t1;
    int steps = x->random_hold ? ft_rand(1, x->hold_steps) : x->hold_steps;
    for (int s = 0; last && s < steps; s++) {
        struct timespec ts = {0, (long)x->step_us * 1000};
        nanosleep(&ts, NULL);
        if (x->extend && s == steps / 2) {
            long long t0 = th_now_us();
            int erc = dlock_extend(t->l, x->ttl_ms);
            note_time(st, t0);
            count(st->extend, erc);
        }
        t1 = th_now_us();
        if (!dlock_held(t->l)) {
            atomic_fetch_add(&st->lost, 1);
            break;
        }
        last = t1;
    }
    if (last && store != NULL) {
        /* Check, then write: a pause between the two is exactly what
         * the fence check at the storage is for. */
        t1 = th_now_us();
        if (dlock_held(t->l)) {
            last = t1;
            int cr = commit(store, x, t);
            if (cr == 1)
                atomic_fetch_add(&st->commit_ok, 1);
            else if (cr == 0)
                atomic_fetch_add(&st->commit_rej, 1);
            else if (cr < 0)
                atomic_fetch_add(&st->commit_err, 1);
        } else {
            atomic_fetch_add(&st->lost, 1);
        }
    }
    return last;
}

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
    while (th_now_us() < x->end_us) {
        take t;
        long long t0 = th_now_us();
        int rc = acquire(c, x, &t);
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
        /* The believed-held interval: [t_ok, last time held was seen true].
         * Each time is taken just before the dlock_held() call, so held was
         * true at an instant no earlier than it. */
        int64_t last = hold(x, st, store, &t);
        if (last && x->h != NULL && record(x, &t, t0, t_ok, last, idx) != 0)
            TH_FAIL("worker %d: history log full", idx);
        t0 = th_now_us();
        rc = dlock_release(t.l);
        note_time(st, t0);
        count(st->release, rc);
        dlock_lock_free(t.l);
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

/* ---- faults ---- */

static const char *const fault_names[FT_NFAULTS] = {
    "latency", "stall",        "drop",          "reset",       "blackhole",  "drip",
    "server-pause", "restart", "script-flush", "client-kill", "worker-stop"};

const char *ft_fault_name(enum ft_fault f) {
    return f >= 0 && f < FT_NFAULTS ? fault_names[f] : "?";
}

void ft_inject(const ft_env *env, enum ft_fault f, int dur_ms) {
    th_proxy *p = env->proxy;
    th_server *s = env->server;
    hist_fault(env->h);
    switch (f) {
    case FT_LATENCY:
        th_proxy_set(p, TH_LATENCY, ft_rand(20, 600));
        th_sleep_ms(dur_ms);
        break;
    case FT_STALL:
        th_proxy_set(p, TH_STALL, 0);
        th_sleep_ms(dur_ms);
        break;
    case FT_DROP:
        th_proxy_set(p, TH_DROP, 0);
        break;
    case FT_RESET:
        th_proxy_set(p, TH_RESET, 0);
        break;
    case FT_BLACKHOLE:
        th_proxy_set(p, TH_BLACKHOLE, 0);
        th_sleep_ms(dur_ms);
        break;
    case FT_DRIP:
        th_proxy_set(p, TH_DRIP, ft_rand(1, 20));
        th_sleep_ms(dur_ms);
        break;
    case FT_PAUSE:
        TH_EQ_INT(th_server_pause(s), 0);
        th_sleep_ms(dur_ms);
        TH_EQ_INT(th_server_resume(s), 0);
        break;
    case FT_RESTART: {
        int64_t t_kill = th_now_us();
        TH_EQ_INT(th_server_kill(s), 0);
        th_sleep_ms(dur_ms / 4);
        TH_EQ_INT(th_server_restart(s), 0);
        if (env->lossy)
            hist_loss(env->h, t_kill);
        break;
    }
    case FT_SCRIPT_FLUSH:
        freeReplyObject(th_server_cmd(s, "SCRIPT FLUSH"));
        break;
    case FT_CLIENT_KILL:
        freeReplyObject(th_server_cmd(s, "CLIENT KILL TYPE normal"));
        break;
    case FT_WORKER_STOP: {
        pid_t v = env->pids[ft_rand(0, env->nworkers - 1)];
        kill(v, SIGSTOP);
        th_sleep_ms(env->ttl_ms + dur_ms / 2);
        kill(v, SIGCONT);
        break;
    }
    case FT_NFAULTS:
        break;
    }
    th_proxy_set(p, TH_PASS, 0);
}
