/* check.c - argument checks shared by the lock operations. */
#include <inttypes.h>
#include <string.h>

#include "client.h"

int dl_check_name(dlock_client *c, const char *name, size_t *len) {
    if (name == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "lock name is NULL");
    size_t n = strnlen(name, DLOCK_NAME_MAX + 1);
    if (n == 0)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "lock name is empty");
    if (n > DLOCK_NAME_MAX)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "lock name longer than %d bytes",
                         DLOCK_NAME_MAX);
    *len = n;
    return DLOCK_OK;
}

int dl_check_ttl(dlock_client *c, int64_t ttl_ms) {
    if (ttl_ms < 1 || ttl_ms > DLOCK_TTL_MAX)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "ttl %" PRId64 " ms out of range 1..%" PRId64,
                         ttl_ms, (int64_t)DLOCK_TTL_MAX);
    return DLOCK_OK;
}
