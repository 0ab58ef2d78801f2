/* test_oom.c - allocation failure, curl-torture style: fail the Nth
 * allocation, for every N, through a whole cycle of client calls.
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup:
 * every allocation made by the libdlock objects (linked statically) and by
 * this file goes through the wrappers below. hiredis is a shared library:
 * its own allocations are not wrapped (and hiredis 0.14 aborts on OOM in
 * hi_malloc by design; docs/RELIABILITY.md says so).
 *
 * For N = 1, 2, ... the cycle runs with the Nth wrapped allocation failing:
 *   client_new, try_acquire, inspect, list, extend, keepalive start/stop, a
 *   contended wait (push waiting, queue + BLPOP), release, free.
 * Every call must succeed or return DLOCK_ENOMEM (a few calls have a
 * documented alternative, listed where they are made), the server must be
 * left consistent (no lease after a failed acquire; a failed release leaves
 * at most a lease that ends by its TTL), and later calls on the same client
 * must still work. It stops at the first N that no longer fails anything.
 * Leaks: the ASan build's LeakSanitizer checks at exit; the plain build
 * compares mallinfo2() before and after.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"

/* ---- the wrappers ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static atomic_int g_armed;
static atomic_long g_count, g_fail_at, g_failed;

static int should_fail(void) {
    if (!atomic_load(&g_armed))
        return 0;
    long k = atomic_fetch_add(&g_count, 1) + 1;
    if (k == atomic_load(&g_fail_at)) {
        atomic_fetch_add(&g_failed, 1);
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return should_fail() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }

/* ---- the cycle ---- */

static int count_listed(const dlock_list_entry *e, void *ud) {
    (void)e;
    ++*(int *)ud;
    return 0;
}

#define ARMED(expr)                                                                       \
    ({                                                                                    \
        atomic_store(&g_armed, 1);                                                        \
        int rc_ = (expr);                                                                 \
        atomic_store(&g_armed, 0);                                                        \
        rc_;                                                                              \
    })

static long g_enomem[16]; /* ENOMEM returns per call site */

#define EXPECT(site, rc, ...)                                                             \
    do {                                                                                  \
        const int ok_[] = {DLOCK_OK, DLOCK_ENOMEM, __VA_ARGS__};                          \
        int hit_ = 0;                                                                     \
        for (size_t k_ = 0; k_ < sizeof ok_ / sizeof ok_[0]; k_++)                        \
            hit_ |= (rc) == ok_[k_];                                                      \
        if (!hit_)                                                                        \
            TH_FAIL("N=%ld: %s returned %s: %s", atomic_load(&g_fail_at), site,           \
                    dlock_err_name(rc), c ? dlock_client_errstr(c) : "");                 \
        if ((rc) == DLOCK_ENOMEM)                                                         \
            g_enomem[__COUNTER__ % 16]++;                                                 \
    } while (0)

static void cycle(th_server *s, dlock_client *holder) {
    dlock_options o;
    it_options(&o, 1000, 2000);
    o.owner_label = "torture";
    dlock_client *c = NULL;
    int rc = ARMED(dlock_client_new(&c, th_server_url(s), &o));
    EXPECT("client_new", rc, DLOCK_OK);
    if (rc != DLOCK_OK) {
        dlock_client_free(c); /* NULL, or a client that refuses every call */
        return;
    }
    dlock_lock *l = NULL;
    rc = ARMED(dlock_try_acquire(c, "oom", 5000, &l));
    EXPECT("try_acquire", rc, DLOCK_OK);
    if (rc != DLOCK_OK) {
        TH_CHECK(l == NULL);
        /* No lease may be left behind by a failed acquire. */
        if (ft_lock_exists(s, "oom") != 0)
            TH_FAIL("N=%ld: try_acquire returned ENOMEM but left a lease",
                    atomic_load(&g_fail_at));
        /* The client still works. */
        IT_RC(c, dlock_try_acquire(c, "oom", 5000, &l), DLOCK_OK);
    }
    dlock_holder h;
    rc = ARMED(dlock_inspect(c, "oom", &h));
    EXPECT("inspect", rc, DLOCK_OK);
    if (rc == DLOCK_OK)
        TH_EQ_INT(h.locked, 1);
    int listed = 0;
    rc = ARMED(dlock_list(c, NULL, count_listed, &listed, NULL));
    EXPECT("list", rc, DLOCK_OK);
    if (rc == DLOCK_OK)
        TH_CHECK(listed >= 1);
    rc = ARMED(dlock_extend(l, 5000));
    EXPECT("extend", rc, DLOCK_OK);
    /* keepalive_start may also say EIO when its thread's connections could
     * not be made (the clone's allocation failed). */
    rc = ARMED(dlock_keepalive_start(l, 1000, NULL, NULL));
    EXPECT("keepalive_start", rc, DLOCK_OK, DLOCK_EIO);
    atomic_store(&g_armed, 1);
    dlock_keepalive_stop(l);
    atomic_store(&g_armed, 0);

    /* A contended wait: the holder client (never failing) holds "oom-w". */
    dlock_lock *lw = NULL;
    rc = ARMED(dlock_wait(c, "oom-w", 30, 5000, &lw));
    EXPECT("wait", rc, DLOCK_ETIMEDOUT, DLOCK_EUNKNOWN);
    TH_CHECK(lw == NULL);
    (void)holder;

    rc = ARMED(dlock_release(l));
    EXPECT("release", rc, DLOCK_OK);
    if (rc != DLOCK_OK) {
        TH_EQ_INT(dlock_held(l), 0); /* may have run: no longer claimed */
        IT_RC(c, dlock_release(l), DLOCK_OK); /* and a retry works */
    }
    TH_EQ_INT(ft_lock_exists(s, "oom"), 0);
    atomic_store(&g_armed, 1);
    dlock_lock_free(l);
    dlock_client_free(c);
    atomic_store(&g_armed, 0);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_client *holder = it_client(th_server_url(s), NULL);
    dlock_lock *hl = NULL;
    IT_RC(holder, dlock_try_acquire(holder, "oom-w", 600000, &hl), DLOCK_OK);

    /* Warm up (scripts cached, lazy libc state), then measure. */
    cycle(s, holder);
    struct mallinfo2 m0 = mallinfo2();
    long n;
    long total_failed = 0;
    for (n = 1; n < 100000; n++) {
        atomic_store(&g_count, 0);
        atomic_store(&g_fail_at, n);
        atomic_store(&g_failed, 0);
        cycle(s, holder);
        total_failed += atomic_load(&g_failed);
        /* Stale queue entries of failed waits must not pile up. */
        freeReplyObject(th_server_cmd(s, "DEL dlock:{oom-w}:q dlock:{oom-w}:qi"));
        if (atomic_load(&g_count) < n)
            break; /* the cycle made fewer than n allocations: all covered */
    }
    atomic_store(&g_fail_at, 0);
    for (int i = 0; i < 3; i++)
        cycle(s, holder);
    struct mallinfo2 m1 = mallinfo2();
    long grow = (long)m1.uordblks - (long)m0.uordblks;
    long enomem = 0;
    for (int i = 0; i < 16; i++)
        enomem += g_enomem[i];
    printf("allocation failure: a cycle makes %ld wrapped allocations; failed each in turn "
           "(%ld failures injected): %ld calls returned ENOMEM, the rest succeeded; heap in "
           "use %+ld bytes after %ld cycles\n",
           n - 1, total_failed, enomem, grow, n + 3);
    TH_CHECK(n > 10);
    TH_CHECK(total_failed >= n - 1);
    /* Coarse: the harness's own hiredis traffic moves the main arena by a
     * few kB. The exact check is LeakSanitizer in the ASan build (where
     * mallinfo does not see ASan's allocator and reads 0). */
    TH_CHECK(grow < 64 * 1024);
    IT_RC(holder, dlock_release(hl), DLOCK_OK);
    dlock_lock_free(hl);
    dlock_client_free(holder);
    th_server_free(s);
    IT_PASS("test_oom");
    return 0;
}
