/* acquire.c - taking a lock: dlock_acquire, dlock_try_acquire, dlock_wait
 * and their async starts. The arguments are checked here; the acquire
 * itself is the engine's state machine (acquire_async.c), driven to its
 * end by blocking.c for the blocking calls. Three stopping rules: one try,
 * a retry count, or a deadline.
 */
#include <inttypes.h>

#include "client.h"
#include "engine.h"

static int acquire_blocking(dlock_client *c, const char *name, int64_t ttl_ms, int mode,
                            int64_t timeout_ms, int is_wait, dlock_lock **out) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (out == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL");
    *out = NULL;
    size_t len;
    rc = dl_check_name(c, name, &len);
    if (rc == DLOCK_OK)
        rc = dl_check_ttl(c, ttl_ms);
    if (rc == DLOCK_OK && mode == DL_AM_DEADLINE &&
        (timeout_ms < 0 || timeout_ms > DLOCK_TTL_MAX))
        rc = dl_seterr(&c->ctx, DLOCK_EINVAL, "timeout %" PRId64 " ms out of range 0..%" PRId64,
                       timeout_ms, (int64_t)DLOCK_TTL_MAX);
    if (rc != DLOCK_OK)
        return rc;
    return dl_block_acquire(c, name, len, ttl_ms, mode, timeout_ms, is_wait, out);
}

int dlock_acquire(dlock_client *c, const char *name, int64_t ttl_ms, dlock_lock **out) {
    return acquire_blocking(c, name, ttl_ms, DL_AM_RETRY, 0, 0, out);
}

int dlock_try_acquire(dlock_client *c, const char *name, int64_t ttl_ms, dlock_lock **out) {
    return acquire_blocking(c, name, ttl_ms, DL_AM_TRY, 0, 0, out);
}

int dlock_wait(dlock_client *c, const char *name, int64_t timeout_ms, int64_t ttl_ms,
               dlock_lock **out) {
    return acquire_blocking(c, name, ttl_ms, timeout_ms == 0 ? DL_AM_TRY : DL_AM_DEADLINE,
                            timeout_ms, 1, out);
}

/* The public starts: check the arguments, then start on the async engine. */
static int start(dlock_client *c, const char *name, int64_t ttl_ms, int mode, int64_t timeout_ms,
                 int is_wait, dlock_done_fn cb, void *ud, uint64_t *id) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    size_t len;
    if (cb == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "callback is NULL");
    rc = dl_check_name(c, name, &len);
    if (rc == DLOCK_OK)
        rc = dl_check_ttl(c, ttl_ms);
    if (rc == DLOCK_OK && (timeout_ms < 0 || timeout_ms > DLOCK_TTL_MAX))
        rc = dl_seterr(&c->ctx, DLOCK_EINVAL, "timeout %" PRId64 " ms out of range 0..%" PRId64,
                       timeout_ms, (int64_t)DLOCK_TTL_MAX);
    if (rc != DLOCK_OK)
        return rc;
    dl_engine *e = dl_engine_get(c, &rc);
    if (e == NULL)
        return rc;
    return dl_acquire_start(e, name, len, ttl_ms, mode, timeout_ms, is_wait, cb, ud, id);
}

int dlock_acquire_async(dlock_client *c, const char *name, int64_t ttl_ms, dlock_done_fn cb,
                        void *userdata, uint64_t *op) {
    return start(c, name, ttl_ms, DL_AM_RETRY, 0, 0, cb, userdata, op);
}

int dlock_try_acquire_async(dlock_client *c, const char *name, int64_t ttl_ms, dlock_done_fn cb,
                            void *userdata, uint64_t *op) {
    return start(c, name, ttl_ms, DL_AM_TRY, 0, 0, cb, userdata, op);
}

int dlock_wait_async(dlock_client *c, const char *name, int64_t timeout_ms, int64_t ttl_ms,
                     dlock_done_fn cb, void *userdata, uint64_t *op) {
    return start(c, name, ttl_ms, timeout_ms == 0 ? DL_AM_TRY : DL_AM_DEADLINE, timeout_ms, 1,
                 cb, userdata, op);
}
