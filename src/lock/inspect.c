/* inspect.c - read-only questions: is a lock held, and by whom. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
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

int dlock_inspect_sized(dlock_client *c, const char *name, dlock_holder *out, size_t out_size) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (out == NULL || out_size < 1 || out_size > DL_ABI_MAX_SIZE)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL or out_size %zu not 1..%d",
                         out_size, DL_ABI_MAX_SIZE);
    dlock_holder h;
    memset(&h, 0, sizeof h);
    h.pttl_ms = -1;
    size_t len;
    rc = dl_check_name(c, name, &len);
    if (rc == DLOCK_OK)
        rc = dl_inspect(c, name, len, &h);
    dl_abi_copy_out(out, out_size, &h, sizeof h);
    return rc;
}

