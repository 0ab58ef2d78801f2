/* handle_api.c - the async starts that work on a handle or a name:
 * dlock_release_async, dlock_extend_async, dlock_inspect_async. A
 * multi-lock over several hash slots goes to its parts (lock/multi.c);
 * every other handle, whatever its kind, to lock/handle_async.c. */
#include "kinds.h"

/* The async engine of l's client, after the common checks. */
static dl_engine *lock_engine(dlock_lock *l, dlock_done_fn cb, int *rc) {
    dlock_client *c = l->client;
    if ((*rc = dl_refuse_forked(c)) != DLOCK_OK)
        return NULL;
    dl_clearerr(&c->ctx);
    if (cb == NULL) {
        *rc = dl_seterr(&c->ctx, DLOCK_EINVAL, "callback is NULL");
        return NULL;
    }
    return dl_engine_get(c, rc);
}

/* A handle the async calls can take: not NULL, its client not freed. */
static int lock_usable(const dlock_lock *l) { return l != NULL && !atomic_load(&l->orphaned); }

int dlock_release_async(dlock_lock *l, dlock_done_fn cb, void *userdata, uint64_t *id) {
    int rc;
    dl_engine *e = lock_usable(l) ? lock_engine(l, cb, &rc) : NULL;
    if (e == NULL)
        return !lock_usable(l) ? DLOCK_EINVAL : rc;
    if (l->nparts > 0)
        return dl_parts_start(e, l, 0, 0, cb, userdata, id);
    return dl_release_start(e, l, cb, userdata, id);
}

int dlock_extend_async(dlock_lock *l, int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                       uint64_t *id) {
    int rc;
    dl_engine *e = lock_usable(l) ? lock_engine(l, cb, &rc) : NULL;
    if (e == NULL)
        return !lock_usable(l) ? DLOCK_EINVAL : rc;
    if (l->nparts > 0)
        return dl_parts_start(e, l, 1, ttl_ms, cb, userdata, id);
    return dl_extend_start(e, l, ttl_ms, cb, userdata, id);
}

int dlock_inspect_async(dlock_client *c, const char *name, dlock_done_fn cb, void *userdata,
                        uint64_t *id) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (cb == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "callback is NULL");
    size_t len;
    rc = dl_check_name(c, name, &len);
    if (rc != DLOCK_OK)
        return rc;
    dl_engine *e = dl_engine_get(c, &rc);
    if (e == NULL)
        return rc;
    return dl_inspect_start(e, name, len, cb, userdata, id);
}
