/* handle.c - what a lock handle does: release, extend, held, info, free,
 * and the same release/extend by (name, token) for tools. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "client.h"
#include "resp.h"

static void mark_gone(dlock_lock *l) {
    atomic_store(&l->valid_until_us, 0);
}



/* Release (name, token) everywhere. *released: 1 if some server held it. */
static int release_by_token(dlock_client *c, const char *name, size_t name_len,
                            const char *token, int *released) {
    const char *args[1] = {token};
    size_t lens[1] = {DL_TOKEN_HEX};
    dl_call call;
    int rc = dl_script_named(&c->topo, &c->proto, &call, DL_S_RELEASE, name, name_len, 1, args,
                             lens, 0, dl_release_decided);
    if (rc != DLOCK_OK)
        return rc;
    return dl_release_read(&c->ctx, &call, released);
}

/* Extend (name, token) everywhere; *extended set when a majority did. */
static int extend_by_token(dlock_client *c, const char *name, size_t name_len,
                           const char *token, int64_t ttl_ms, int64_t *start_us,
                           int *extended) {
    char ttl_s[24];
    size_t tl = dl_fmt_i64(ttl_s, ttl_ms);
    const char *args[2] = {token, ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, tl};
    dl_call call;
    *start_us = dl_mono_us();
    int rc = dl_script_named(&c->topo, &c->proto, &call, DL_S_EXTEND, name, name_len, 2, args,
                             lens, 0, dl_extend_decided);
    if (rc != DLOCK_OK)
        return rc;
    rc = dl_extend_read(&c->ctx, &call, extended);
    if (rc == DLOCK_OK && *extended &&
        dl_mono_us() >= dl_valid_until_us(*start_us, ttl_ms, c->opts.drift_factor))
        *extended = 0; /* took longer than the lease itself */
    return rc;
}

int dlock_release(dlock_lock *l) {
    if (l == NULL)
        return DLOCK_EINVAL;
    dlock_client *c = l->client;
    dl_clearerr(&c->ctx);
    dlock_keepalive_stop(l);
    if (atomic_load(&l->released))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' was already released", l->name);
    if (dl_engine_serves(c))
        return dl_block_release(l);
    int released = 0;
    int rc = release_by_token(c, l->name, l->name_len, l->token, &released);
    if (rc != DLOCK_OK) {
        /* The release may have run (reply lost or late): the lease could
         * have ended, so stop claiming it. A retry of release still works. */
        mark_gone(l);
        dl_emit(&c->ctx, DLOCK_EV_ERROR, l->name, rc, l->fence, 0, 0);
        return rc;
    }
    atomic_store(&l->released, 1);
    mark_gone(l);
    if (!released) {
        atomic_store(&l->lost, 1);
        dl_emit(&c->ctx, DLOCK_EV_LOST, l->name, DLOCK_ENOTHELD, l->fence, 0, 0);
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD,
                         "lock '%s' was no longer held by this handle (expired or taken)",
                         l->name);
    }
    dl_emit(&c->ctx, DLOCK_EV_RELEASED, l->name, DLOCK_OK, l->fence, 0, 0);
    return DLOCK_OK;
}

int dlock_extend(dlock_lock *l, int64_t ttl_ms) {
    if (l == NULL)
        return DLOCK_EINVAL;
    dlock_client *c = l->client;
    dl_clearerr(&c->ctx);
    int rc = dl_check_ttl(c, ttl_ms);
    if (rc != DLOCK_OK)
        return rc;
    if (dl_hold_over(l, dl_mono_us()))
        return dl_seterr(&c->ctx, DLOCK_EMAXHOLD,
                         "lock '%s' has been held for max_hold_ms (%" PRId64 " ms)", l->name,
                         c->opts.max_hold_ms);
    if (atomic_load(&l->released) || atomic_load(&l->lost))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held", l->name);
    if (dl_engine_serves(c))
        return dl_block_extend(l, ttl_ms);
    /* Keep the keepalive out of the way: with both in flight, the server's
     * order of the two (and so the lease left) could not be known. */
    atomic_store(&l->user_ext, 1);
    dl_keepalive_quiesce(l);
    int64_t start = dl_mono_us();
    int ok = 0;
    rc = extend_by_token(c, l->name, l->name_len, l->token, ttl_ms, &start, &ok);
    if (rc != DLOCK_OK) {
        /* The extend may have run: a shorter ttl_ms may have cut the lease,
         * so keep the earlier of the old and the new end. */
        int64_t worst = dl_valid_until_us(start, ttl_ms, c->opts.drift_factor);
        if (worst < atomic_load(&l->valid_until_us))
            atomic_store(&l->valid_until_us, worst);
        atomic_store(&l->user_ext, 0);
        dl_emit(&c->ctx, DLOCK_EV_ERROR, l->name, rc, l->fence, 0, 0);
        return rc;
    }
    if (!ok) {
        atomic_store(&l->lost, 1);
        mark_gone(l);
        atomic_store(&l->user_ext, 0);
        dl_emit(&c->ctx, DLOCK_EV_LOST, l->name, DLOCK_ENOTHELD, l->fence, 0, 0);
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is no longer held by this handle",
                         l->name);
    }
    /* A running keepalive goes on renewing the ttl it was started with. */
    atomic_store(&l->ttl_ms, ttl_ms);
    atomic_store(&l->valid_until_us, dl_valid_until_us(start, ttl_ms, c->opts.drift_factor));
    atomic_store(&l->user_ext, 0);
    dl_emit(&c->ctx, DLOCK_EV_EXTENDED, l->name, DLOCK_OK, l->fence, 0, 0);
    return DLOCK_OK;
}

int dlock_held(const dlock_lock *l) {
    if (l == NULL)
        return 0;
    return dl_lock_valid(l, dl_mono_us());
}

int dlock_info_get(const dlock_lock *l, dlock_info *out) {
    if (l == NULL || out == NULL)
        return DLOCK_EINVAL;
    memset(out, 0, sizeof *out);
    out->name = l->name;
    out->name_len = l->name_len;
    out->token = l->token;
    out->fence = l->fence;
    out->acquired_at = l->acquired_wall_ms;
    int64_t vu = atomic_load(&l->valid_until_us);
    int64_t left = vu > 0 ? (vu - dl_mono_us()) / 1000 : 0;
    out->expires_at = dl_wall_ms() + (left > 0 ? left : 0);
    out->held = dlock_held(l);
    return DLOCK_OK;
}

void dlock_lock_free(dlock_lock *l) {
    if (l == NULL)
        return;
    dlock_keepalive_stop(l);
    free(l);
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
    int released = 0;
    rc = release_by_token(c, name, len, token, &released);
    if (rc != DLOCK_OK)
        return rc;
    if (!released)
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held with that token", name);
    dl_emit(&c->ctx, DLOCK_EV_RELEASED, name, DLOCK_OK, 0, 0, 0);
    return DLOCK_OK;
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
    int64_t start;
    int ok = 0;
    rc = extend_by_token(c, name, len, token, ttl_ms, &start, &ok);
    if (rc != DLOCK_OK)
        return rc;
    if (!ok)
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held with that token", name);
    dl_emit(&c->ctx, DLOCK_EV_EXTENDED, name, DLOCK_OK, 0, 0, 0);
    return DLOCK_OK;
}
