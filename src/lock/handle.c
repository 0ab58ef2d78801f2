/* handle.c - what a lock handle does: release, extend, held, info, free,
 * and the same release/extend by (name, token) for tools. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "backoff.h"
#include "clock.h"
#include "kinds.h"
#include "resp.h"

int dlock_release(dlock_lock *l) {
    if (l == NULL || atomic_load(&l->orphaned))
        return DLOCK_EINVAL;
    dlock_client *c = l->client;
    if (dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    dl_clearerr(&c->ctx);
    dlock_keepalive_stop(l);
    if (atomic_load(&l->released))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' was already released", l->name);
    return dl_block_release(l);
}

int dlock_extend(dlock_lock *l, int64_t ttl_ms) {
    if (l == NULL || atomic_load(&l->orphaned))
        return DLOCK_EINVAL;
    dlock_client *c = l->client;
    if (dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    dl_clearerr(&c->ctx);
    /* The ttl, max_hold_ms and 'not held' checks are dl_extend_start's. */
    return dl_block_extend(l, ttl_ms);
}

/* When l's validity ends: a multi-lock over several slots ends with its
 * first part. */
static int64_t valid_until(const dlock_lock *l) {
    int64_t vu = atomic_load(&l->valid_until_us);
    for (int i = 0; i < l->nparts; i++) {
        int64_t p = atomic_load(&l->parts[i]->valid_until_us);
        vu = p < vu ? p : vu;
    }
    return vu;
}

int dlock_held(const dlock_lock *l) {
    if (l == NULL || l->fork_gen != dl_fork_gen()) /* a child holds nothing */
        return 0;
    int64_t now = dl_mono_us();
    for (int i = 0; i < l->nparts; i++)
        if (!dl_lock_valid(l->parts[i], now))
            return 0;
    return dl_lock_valid(l, now);
}

int dlock_info_get_sized(const dlock_lock *l, dlock_info *out, size_t out_size) {
    if (l == NULL || out == NULL || out_size < 1 || out_size > DL_ABI_MAX_SIZE)
        return DLOCK_EINVAL;
    dlock_info in;
    memset(&in, 0, sizeof in);
    in.name = l->name;
    in.name_len = l->name_len;
    in.token = l->token;
    in.fence = l->fence;
    in.acquired_at = l->acquired_wall_ms;
    int64_t vu = valid_until(l);
    int64_t left = vu > 0 ? (vu - dl_mono_us()) / 1000 : 0;
    in.expires_at = dl_wall_ms() + (left > 0 ? left : 0);
    in.held = dlock_held(l);
    dl_abi_copy_out(out, out_size, &in, sizeof in);
    return DLOCK_OK;
}

void dlock_lock_free(dlock_lock *l) {
    if (l == NULL)
        return;
    dlock_keepalive_stop(l);
    for (int i = 0; i < l->nparts; i++)
        dlock_lock_free(l->parts[i]);
    free(l->parts);
    dl_lock_destroy(l);
}

dlock_kind dlock_lock_kind(const dlock_lock *l) {
    static const dlock_kind kinds[] = {[DL_LK_MUTEX] = DLOCK_KIND_MUTEX,
                                       [DL_LK_SEM] = DLOCK_KIND_SEMAPHORE,
                                       [DL_LK_RW] = DLOCK_KIND_RW,
                                       [DL_LK_MULTI] = DLOCK_KIND_MULTI};
    return l == NULL ? DLOCK_KIND_MUTEX : kinds[l->kind];
}

int dlock_lock_names(const dlock_lock *l) {
    return l == NULL ? 0 : l->nnames > 0 ? l->nnames : 1;
}

int dlock_lock_name_at(const dlock_lock *l, int i, const char **name, int64_t *fence) {
    if (l == NULL || i < 0 || i >= dlock_lock_names(l))
        return DLOCK_EINVAL;
    if (name != NULL)
        *name = l->nnames > 0 ? l->names[i] : l->name;
    if (fence != NULL)
        *fence = l->nnames > 0 ? l->fences[i] : l->fence;
    return DLOCK_OK;
}

int dlock_lock_shared(const dlock_lock *l) {
    return l != NULL && l->kind == DL_LK_RW && !l->want;
}

static int check_token_args(dlock_client *c, const char *name, const char *token,
                            size_t *name_len) {
    int rc = dl_check_name(c, name, name_len);
    if (rc != DLOCK_OK)
        return rc;
    if (!dl_token_valid(token))
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "token must be 32 lowercase hex digits");
    return DLOCK_OK;
}

int dlock_release_token(dlock_client *c, const char *name, const char *token) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    size_t len;
    rc = check_token_args(c, name, token, &len);
    if (rc != DLOCK_OK)
        return rc;
    return dl_block_by_token(c, name, len, token, 0);
}

int dlock_extend_token(dlock_client *c, const char *name, const char *token, int64_t ttl_ms) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    size_t len;
    rc = check_token_args(c, name, token, &len);
    if (rc == DLOCK_OK)
        rc = dl_check_ttl(c, ttl_ms);
    if (rc != DLOCK_OK)
        return rc;
    return dl_block_by_token(c, name, len, token, ttl_ms);
}
