/* inspect.c - read-only questions: is a lock held, and by whom. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "resp.h"

int dlock_is_locked(dlock_client *c, const char *name, int *locked, int64_t *pttl_ms) {
    dlock_holder h;
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (locked == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "locked is NULL");
    rc = dlock_inspect(c, name, &h);
    if (rc != DLOCK_OK)
        return rc;
    *locked = h.locked;
    if (pttl_ms != NULL)
        *pttl_ms = h.pttl_ms;
    return DLOCK_OK;
}

int dl_inspect(dlock_client *c, const char *name, size_t len, dlock_holder *out) {
    return dl_block_inspect(c, name, len, out);
}

int dlock_inspect(dlock_client *c, const char *name, dlock_holder *out) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (out == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL");
    memset(out, 0, sizeof *out);
    out->pttl_ms = -1;
    size_t len;
    rc = dl_check_name(c, name, &len);
    if (rc != DLOCK_OK)
        return rc;
    return dl_inspect(c, name, len, out);
}

