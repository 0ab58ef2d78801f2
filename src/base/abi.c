/* abi.c - copies between a caller's struct and the library's (abi.h). */
#include "abi.h"

#include <string.h>

#include "dlock.h"

int dl_abi_size_ok(size_t size) { return size >= sizeof(size_t) && size <= DL_ABI_MAX_SIZE; }

size_t dl_abi_copy_in(void *dst, size_t dst_size, const void *src, size_t src_size) {
    const unsigned char *s = src;
    for (size_t i = dst_size; i < src_size; i++)
        if (s[i] != 0)
            return i;
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
    return 0;
}

void dl_abi_copy_out(void *dst, size_t dst_size, const void *src, size_t src_size) {
    size_t n = src_size < dst_size ? src_size : dst_size;
    memcpy(dst, src, n);
    if (dst_size > n)
        memset((unsigned char *)dst + n, 0, dst_size - n);
}

void dl_abi_init_sized(void *opts, size_t size, const void *defaults, size_t dsize) {
    if (opts == NULL || size < sizeof(size_t))
        return;
    dl_abi_copy_out(opts, size, defaults, dsize);
    memcpy(opts, &size, sizeof size);
}

int dl_abi_read_options(dl_ctx *x, void *dst, size_t dst_size, const void *src,
                        const char *what, const char *init) {
    if (src == NULL)
        return DLOCK_OK;
    size_t size;
    memcpy(&size, src, sizeof size);
    if (!dl_abi_size_ok(size))
        return dl_seterr(x, DLOCK_EINVAL,
                         "%s struct_size is %zu: call %s before setting fields", what, size,
                         init);
    size_t bad = dl_abi_copy_in(dst, dst_size, src, size);
    memcpy(dst, &dst_size, sizeof dst_size);
    if (bad != 0)
        return dl_seterr(x, DLOCK_ENOTSUP,
                         "%s set a field at byte %zu that this libdlock (%d.%d.%d) does not "
                         "know: the program was built against a newer dlock.h",
                         what, bad, DLOCK_VERSION_MAJOR, DLOCK_VERSION_MINOR,
                         DLOCK_VERSION_PATCH);
    return DLOCK_OK;
}
