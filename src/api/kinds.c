/* kinds.c - the public calls of the other kinds of locks: semaphores,
 * read-write locks and multi-locks, blocking and async. Arguments are
 * checked here (a multi-lock's names sorted bytewise, repeats dropped);
 * the acquire itself is lock/kind_async.c, or lock/multi.c across hash
 * slots. */
#include <inttypes.h>
#include <string.h>

#include "kinds.h"

/* A checked request: r points into it. */
typedef struct kargs {
    dl_kreq r;
    const char *names[DLOCK_MULTI_MAX];
    size_t lens[DLOCK_MULTI_MAX];
} kargs;

static int name_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

/* names[0..n): checked, sorted bytewise, repeats dropped. */
static int check_names(dlock_client *c, const char *const *names, int n, kargs *a) {
    if (names == NULL || n < 1 || n > DLOCK_MULTI_MAX)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "a multi-lock takes 1..%d names",
                         DLOCK_MULTI_MAX);
    int k = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        int rc = dl_check_name(c, names[i], &len);
        if (rc != DLOCK_OK)
            return rc;
        int j = k;
        while (j > 0 && name_cmp(a->names[j - 1], a->lens[j - 1], names[i], len) > 0) {
            a->names[j] = a->names[j - 1];
            a->lens[j] = a->lens[j - 1];
            j--;
        }
        if (j > 0 && name_cmp(a->names[j - 1], a->lens[j - 1], names[i], len) == 0) {
            memmove(a->names + j, a->names + j + 1, (size_t)(k - j) * sizeof *a->names);
            memmove(a->lens + j, a->lens + j + 1, (size_t)(k - j) * sizeof *a->lens);
            continue; /* a repeat */
        }
        a->names[j] = names[i];
        a->lens[j] = len;
        k++;
    }
    a->r = (dl_kreq){.kind = DL_LK_MULTI, .n = k, .names = a->names, .lens = a->lens};
    return DLOCK_OK;
}

static int check_one(dlock_client *c, int kind, const char *name, int want, kargs *a) {
    int rc = dl_check_name(c, name, &a->lens[0]);
    if (rc != DLOCK_OK)
        return rc;
    if (kind == DL_LK_SEM && (want < 1 || want > DLOCK_PERMITS_MAX))
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "permits %d out of range 1..%d", want,
                         DLOCK_PERMITS_MAX);
    if (kind == DL_LK_RW && want != DLOCK_SHARED && want != DLOCK_EXCLUSIVE)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "mode must be DLOCK_SHARED or DLOCK_EXCLUSIVE");
    a->names[0] = name;
    a->r = (dl_kreq){.kind = kind, .want = kind == DL_LK_RW ? want == DLOCK_EXCLUSIVE : want,
                     .n = 1, .names = a->names, .lens = a->lens};
    return DLOCK_OK;
}

static int check_times(dlock_client *c, int64_t ttl_ms, int mode, int64_t timeout_ms) {
    int rc = dl_check_ttl(c, ttl_ms);
    if (rc == DLOCK_OK && mode == DL_AM_DEADLINE && (timeout_ms < 0 || timeout_ms > DLOCK_TTL_MAX))
        rc = dl_seterr(&c->ctx, DLOCK_EINVAL, "timeout %" PRId64 " ms out of range 0..%" PRId64,
                       timeout_ms, (int64_t)DLOCK_TTL_MAX);
    return rc;
}

/* The arguments of every call: the kind, what it names, how it stops. */
typedef struct kcall {
    int kind;
    const char *name;         /* SEM, RW */
    int want;                 /* SEM: permits; RW: the mode */
    const char *const *names; /* MULTI */
    int n;
    int64_t ttl_ms, timeout_ms;
    int mode, is_wait;
} kcall;

static int prepare(dlock_client *c, const kcall *k, kargs *a) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    rc = k->kind == DL_LK_MULTI ? check_names(c, k->names, k->n, a)
                                : check_one(c, k->kind, k->name, k->want, a);
    return rc != DLOCK_OK ? rc : check_times(c, k->ttl_ms, k->mode, k->timeout_ms);
}

static int blocking(dlock_client *c, const kcall *k, dlock_lock **out) {
    kargs a;
    if (out == NULL)
        return c == NULL ? DLOCK_EINVAL : dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL");
    *out = NULL;
    int rc = prepare(c, k, &a);
    if (rc != DLOCK_OK)
        return rc;
    return dl_block_kind(c, &a.r, k->ttl_ms, k->mode, k->timeout_ms, k->is_wait, out);
}

static int async(dlock_client *c, const kcall *k, dlock_done_fn cb, void *ud, uint64_t *id) {
    kargs a;
    int rc = prepare(c, k, &a);
    if (rc == DLOCK_OK && cb == NULL)
        rc = dl_seterr(&c->ctx, DLOCK_EINVAL, "callback is NULL");
    if (rc != DLOCK_OK)
        return rc;
    dl_engine *e = dl_engine_get(c, &rc);
    if (e == NULL)
        return rc;
    return dl_kind_start(e, &a.r, k->ttl_ms, k->mode, k->timeout_ms, k->is_wait, cb, ud, id);
}

/* dlock_*_wait: the deadline rule (0: one try), as dlock_wait's. */
static kcall wait_call(kcall k, int64_t timeout_ms) {
    k.timeout_ms = timeout_ms;
    k.mode = timeout_ms == 0 ? DL_AM_TRY : DL_AM_DEADLINE;
    k.is_wait = 1;
    return k;
}

/* ---- semaphores ---- */

int dlock_sem_acquire(dlock_client *c, const char *name, int permits, int64_t ttl_ms,
                      dlock_lock **out) {
    kcall k = {DL_LK_SEM, name, permits, NULL, 0, ttl_ms, 0, DL_AM_RETRY, 0};
    return blocking(c, &k, out);
}

int dlock_sem_try_acquire(dlock_client *c, const char *name, int permits, int64_t ttl_ms,
                          dlock_lock **out) {
    kcall k = {DL_LK_SEM, name, permits, NULL, 0, ttl_ms, 0, DL_AM_TRY, 0};
    return blocking(c, &k, out);
}

int dlock_sem_wait(dlock_client *c, const char *name, int permits, int64_t timeout_ms,
                   int64_t ttl_ms, dlock_lock **out) {
    kcall k = {DL_LK_SEM, name, permits, NULL, 0, ttl_ms, 0, 0, 0};
    k = wait_call(k, timeout_ms);
    return blocking(c, &k, out);
}

int dlock_sem_acquire_async(dlock_client *c, const char *name, int permits, int64_t ttl_ms,
                            dlock_done_fn cb, void *userdata, uint64_t *op) {
    kcall k = {DL_LK_SEM, name, permits, NULL, 0, ttl_ms, 0, DL_AM_RETRY, 0};
    return async(c, &k, cb, userdata, op);
}

int dlock_sem_try_acquire_async(dlock_client *c, const char *name, int permits,
                                int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                uint64_t *op) {
    kcall k = {DL_LK_SEM, name, permits, NULL, 0, ttl_ms, 0, DL_AM_TRY, 0};
    return async(c, &k, cb, userdata, op);
}

int dlock_sem_wait_async(dlock_client *c, const char *name, int permits, int64_t timeout_ms,
                         int64_t ttl_ms, dlock_done_fn cb, void *userdata, uint64_t *op) {
    kcall k = {DL_LK_SEM, name, permits, NULL, 0, ttl_ms, 0, 0, 0};
    k = wait_call(k, timeout_ms);
    return async(c, &k, cb, userdata, op);
}

/* ---- read-write locks ---- */

int dlock_rw_acquire(dlock_client *c, const char *name, int mode, int64_t ttl_ms,
                     dlock_lock **out) {
    kcall k = {DL_LK_RW, name, mode, NULL, 0, ttl_ms, 0, DL_AM_RETRY, 0};
    return blocking(c, &k, out);
}

int dlock_rw_try_acquire(dlock_client *c, const char *name, int mode, int64_t ttl_ms,
                         dlock_lock **out) {
    kcall k = {DL_LK_RW, name, mode, NULL, 0, ttl_ms, 0, DL_AM_TRY, 0};
    return blocking(c, &k, out);
}

int dlock_rw_wait(dlock_client *c, const char *name, int mode, int64_t timeout_ms,
                  int64_t ttl_ms, dlock_lock **out) {
    kcall k = {DL_LK_RW, name, mode, NULL, 0, ttl_ms, 0, 0, 0};
    k = wait_call(k, timeout_ms);
    return blocking(c, &k, out);
}

int dlock_rw_acquire_async(dlock_client *c, const char *name, int mode, int64_t ttl_ms,
                           dlock_done_fn cb, void *userdata, uint64_t *op) {
    kcall k = {DL_LK_RW, name, mode, NULL, 0, ttl_ms, 0, DL_AM_RETRY, 0};
    return async(c, &k, cb, userdata, op);
}

int dlock_rw_try_acquire_async(dlock_client *c, const char *name, int mode, int64_t ttl_ms,
                               dlock_done_fn cb, void *userdata, uint64_t *op) {
    kcall k = {DL_LK_RW, name, mode, NULL, 0, ttl_ms, 0, DL_AM_TRY, 0};
    return async(c, &k, cb, userdata, op);
}

int dlock_rw_wait_async(dlock_client *c, const char *name, int mode, int64_t timeout_ms,
                        int64_t ttl_ms, dlock_done_fn cb, void *userdata, uint64_t *op) {
    kcall k = {DL_LK_RW, name, mode, NULL, 0, ttl_ms, 0, 0, 0};
    k = wait_call(k, timeout_ms);
    return async(c, &k, cb, userdata, op);
}

/* ---- multi-locks ---- */

int dlock_multi_acquire(dlock_client *c, const char *const *names, int n, int64_t ttl_ms,
                        dlock_lock **out) {
    kcall k = {DL_LK_MULTI, NULL, 0, names, n, ttl_ms, 0, DL_AM_RETRY, 0};
    return blocking(c, &k, out);
}

int dlock_multi_try_acquire(dlock_client *c, const char *const *names, int n, int64_t ttl_ms,
                            dlock_lock **out) {
    kcall k = {DL_LK_MULTI, NULL, 0, names, n, ttl_ms, 0, DL_AM_TRY, 0};
    return blocking(c, &k, out);
}

int dlock_multi_wait(dlock_client *c, const char *const *names, int n, int64_t timeout_ms,
                     int64_t ttl_ms, dlock_lock **out) {
    kcall k = {DL_LK_MULTI, NULL, 0, names, n, ttl_ms, 0, 0, 0};
    k = wait_call(k, timeout_ms);
    return blocking(c, &k, out);
}

int dlock_multi_acquire_async(dlock_client *c, const char *const *names, int n,
                              int64_t ttl_ms, dlock_done_fn cb, void *userdata, uint64_t *op) {
    kcall k = {DL_LK_MULTI, NULL, 0, names, n, ttl_ms, 0, DL_AM_RETRY, 0};
    return async(c, &k, cb, userdata, op);
}

int dlock_multi_try_acquire_async(dlock_client *c, const char *const *names, int n,
                                  int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                  uint64_t *op) {
    kcall k = {DL_LK_MULTI, NULL, 0, names, n, ttl_ms, 0, DL_AM_TRY, 0};
    return async(c, &k, cb, userdata, op);
}

int dlock_multi_wait_async(dlock_client *c, const char *const *names, int n,
                           int64_t timeout_ms, int64_t ttl_ms, dlock_done_fn cb,
                           void *userdata, uint64_t *op) {
    kcall k = {DL_LK_MULTI, NULL, 0, names, n, ttl_ms, 0, 0, 0};
    k = wait_call(k, timeout_ms);
    return async(c, &k, cb, userdata, op);
}
