/* test_fork.c - a child process after fork() leaves the parent's client,
 * connections and keepalive alone.
 *
 * The parent takes a lock, kept alive (by the keepalive thread for a
 * blocking acquire, by engine timers for an async one), and forks. The
 * child finds every call on the inherited client and lock refused with
 * DLOCK_EINVAL and a detail naming fork(), dlock_held 0, a client of its
 * own working (it sees the parent holding the lock), and frees the
 * inherited objects (in either order) without hanging on the keepalive
 * thread it does not have. Then the parent's lock is still held and kept
 * alive past several ttls, every connection the parent had before the
 * fork is still open on the server (the child closed only its copies and
 * sent nothing), and the parent releases normally. A burst of forks while
 * the keepalive thread extends every few ms shows the child never hangs
 * whatever the thread was doing at the fork.
 *
 * Built twice: test_fork over plain TCP, and tls_fork (tests/tls, with
 * DLOCK_FORK_TLS) over rediss://, where a close_notify sent by the child
 * would end the parent's TLS sessions. */
#include <sys/types.h>
#include <unistd.h>

#include "dlock/adapters/poll.h"
#include "itest.h"
#ifdef DLOCK_FORK_TLS
#include "tls_env.h"
#endif

#define TTL 500

static char g_url[800]; /* the server's, plain or TLS */

typedef struct fork_case {
    th_server *s;
    dlock_client *c;
    dlock_lock *l;
    const char *name;
    int async;
    int lock_first; /* the child frees the lock before the client */
} fork_case;

static int g_lost;
static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l, (void)ud;
    fprintf(stderr, "on_lost: %s\n", dlock_err_name(status));
    g_lost++;
}

typedef struct done {
    int done, status;
    dlock_lock *lock;
} done;

static void on_done(const dlock_result *r, void *ud) {
    done *d = ud;
    d->done = 1;
    d->status = r->status;
    d->lock = r->lock;
}

/* The connection ids the server has now, as "id=N " strings joined. */
static void client_ids(th_server *s, char *out, size_t cap) {
    redisReply *r = th_server_cmd(s, "CLIENT LIST");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    out[0] = '\0';
    size_t n = 0;
    for (const char *p = r->str; (p = strstr(p, "id=")) != NULL; p++) {
        size_t len = strcspn(p, " ");
        if (n + len + 2 >= cap)
            break;
        memcpy(out + n, p, len);
        n += len;
        out[n++] = ' ';
        out[n] = '\0';
    }
    freeReplyObject(r);
}

/* Every id in `before` (but the admin connection's) is in `after`. */
static void same_connections(th_server *s, const char *before, const char *after) {
    long long admin = th_server_int(s, "CLIENT ID");
    char mine[32];
    snprintf(mine, sizeof mine, "id=%lld", admin);
    for (const char *p = before; *p != '\0';) {
        size_t len = strcspn(p, " ");
        char id[32];
        snprintf(id, sizeof id, "%.*s", (int)len, p);
        char pat[40];
        snprintf(pat, sizeof pat, "%s ", id);
        if (strcmp(id, mine) != 0 && strstr(after, pat) == NULL)
            TH_FAIL("connection %s of the parent is gone after the child (now: %s)", id, after);
        p += len + (p[len] == ' ');
    }
}

static int child(void *arg) {
    fork_case *k = arg;
    TH_EQ_INT(dlock_held(k->l), 0); /* the child holds nothing */
    dlock_info in;
    TH_EQ_INT(dlock_info_get(k->l, &in), DLOCK_OK);
    TH_EQ_STR(in.name, k->name);
    TH_EQ_INT(in.held, 0);
    TH_EQ_INT(dlock_release(k->l), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(k->c), "fork()") != NULL);
    TH_EQ_INT(dlock_extend(k->l, 1000), DLOCK_EINVAL);
    TH_EQ_INT(dlock_keepalive_start(k->l, 100, on_lost, NULL), DLOCK_EINVAL);
    dlock_lock *l2 = NULL;
    TH_EQ_INT(dlock_try_acquire(k->c, "fork-other", 1000, &l2), DLOCK_EINVAL);
    TH_EQ_INT(dlock_client_ping(k->c), DLOCK_EINVAL);
    TH_EQ_INT(dlock_client_process(k->c), DLOCK_EINVAL);
    TH_EQ_INT(dlock_client_fd(k->c), -1);
    TH_EQ_INT(dlock_client_timeout(k->c), -1);
    done r = {0};
    TH_EQ_INT(dlock_release_async(k->l, on_done, &r, NULL), DLOCK_EINVAL);
    TH_EQ_INT(dlock_try_acquire_async(k->c, "fork-other", 1000, on_done, &r, NULL),
              DLOCK_EINVAL);

    /* A client of its own works, and sees the parent's lock. */
    dlock_client *mine = it_client(g_url, NULL);
    dlock_holder h;
    IT_RC(mine, dlock_inspect(mine, k->name, &h), DLOCK_OK);
    TH_EQ_INT(h.locked, 1);
    TH_EQ_STR(h.token, in.token);
    IT_RC(mine, dlock_try_acquire(mine, k->name, 1000, &l2), DLOCK_EBUSY);
    dlock_client_free(mine);

    if (k->lock_first) {
        dlock_lock_free(k->l);
        dlock_client_free(k->c);
    } else {
        dlock_client_free(k->c);
        dlock_lock_free(k->l);
    }
    return 0;
}

/* Let time pass in the parent: the engine's timers need the loop. */
static void pass(fork_case *k, int ms) {
    long long end = th_now_us() + ms * 1000LL;
    while (th_now_us() < end) {
        if (k->async)
            dlock_poll_once(k->c, 20);
        else
            th_sleep_ms(20);
        TH_CHECK(dlock_held(k->l));
    }
}

static void acquire(fork_case *k, int64_t interval_ms) {
    if (k->async) {
        done r = {0};
        IT_RC(k->c, dlock_try_acquire_async(k->c, k->name, TTL, on_done, &r, NULL), DLOCK_OK);
        long long end = th_now_us() + 5000000;
        while (!r.done && th_now_us() < end)
            dlock_poll_once(k->c, 50);
        TH_EQ_INT(r.status, DLOCK_OK);
        k->l = r.lock;
    } else {
        IT_RC(k->c, dlock_try_acquire(k->c, k->name, TTL, &k->l), DLOCK_OK);
    }
    IT_RC(k->c, dlock_keepalive_start(k->l, interval_ms, on_lost, NULL), DLOCK_OK);
}

static void release(fork_case *k) {
    if (k->async) {
        done r = {0};
        IT_RC(k->c, dlock_release_async(k->l, on_done, &r, NULL), DLOCK_OK);
        long long end = th_now_us() + 5000000;
        while (!r.done && th_now_us() < end)
            dlock_poll_once(k->c, 50);
        TH_EQ_INT(r.status, DLOCK_OK);
    } else {
        IT_RC(k->c, dlock_release(k->l), DLOCK_OK);
    }
    dlock_lock_free(k->l);
}

static void one_case(th_server *s, const char *name, int async, int lock_first) {
    fork_case k = {.s = s, .name = name, .async = async, .lock_first = lock_first};
    k.c = it_client(g_url, NULL);
    acquire(&k, 100);
    pass(&k, 250); /* the keepalive's connections are open */
    char before[4096], after[4096];
    client_ids(s, before, sizeof before);

    pid_t pid = th_spawn(child, &k);
    TH_CHECK(pid > 0);
    TH_EQ_INT(th_wait(pid, 10000), 0);

    pass(&k, 3 * TTL); /* kept alive, by the parent alone, past 3 ttls */
    client_ids(s, after, sizeof after);
    same_connections(s, before, after);
    TH_EQ_INT(g_lost, 0);
    release(&k);
    dlock_client_free(k.c);
    printf("%s: parent kept its lock and connections\n", name);
}

static int child_free(void *arg) {
    fork_case *k = arg;
    dlock_client_free(k->c); /* whatever the keepalive thread was doing */
    dlock_lock_free(k->l);
    return 0;
}

/* Forks while the keepalive thread extends every 2 ms: a child may catch
 * it with its mutex held or a round in flight. It must never hang. */
static void test_burst(th_server *s) {
    fork_case k = {.s = s, .name = "fork-burst"};
    k.c = it_client(g_url, NULL);
    acquire(&k, 2);
    for (int i = 0; i < 40; i++) {
        pid_t pid = th_spawn(child_free, &k);
        TH_CHECK(pid > 0);
        TH_EQ_INT(th_wait(pid, 5000), 0);
        th_sleep_ms(1 + i % 5);
    }
    pass(&k, TTL);
    TH_EQ_INT(g_lost, 0);
    release(&k);
    dlock_client_free(k.c);
}

int main(void) {
    th_test_init(90);
#ifdef DLOCK_FORK_TLS
    te_init();
    int port;
    th_server *s = te_server("server", NULL, &port);
    te_url(g_url, sizeof g_url, port, NULL);
#else
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    snprintf(g_url, sizeof g_url, "%s", th_server_url(s));
#endif
    one_case(s, "fork-thread", 0, 0);
    one_case(s, "fork-thread-lock-first", 0, 1);
    one_case(s, "fork-engine", 1, 0);
    one_case(s, "fork-engine-lock-first", 1, 1);
    test_burst(s);
    th_server_free(s);
    printf("%s: 1 passed, 0 failed\n", g_url[5] == 's' ? "tls_fork" : "test_fork");
    return 0;
}
