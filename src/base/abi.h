/* abi.h - public structs that grow by appending fields: copying between a
 * caller's struct of the size it was compiled with and the library's own.
 * Pure: no I/O. The rules the copies rely on are in dlock.h ("Structs and
 * versions"). */
#ifndef DLOCK_ABI_H
#define DLOCK_ABI_H

#include <stddef.h>

#include "ctx.h"

/* Largest struct size accepted from a caller: far above any dlock struct,
 * so that a struct_size no header could produce (an options struct that
 * was never initialised) is refused instead of read. */
#define DL_ABI_MAX_SIZE 4096

/* Whether size can be a struct_size a dlock header produced: it covers the
 * leading size_t struct_size field and is at most DL_ABI_MAX_SIZE. */
DL_INTERNAL int dl_abi_size_ok(size_t size);

/* Read a caller's struct src of src_size bytes into dst (dst_size bytes,
 * already holding the defaults): the bytes both know are copied, dst's
 * bytes past src_size keep their defaults. When src is larger (a program
 * built against a newer header), its extra bytes must all be zero (fields
 * this library does not know, left at their default). Returns 0, or the
 * offset of the first nonzero extra byte (> 0: nothing is copied). */
DL_INTERNAL size_t dl_abi_copy_in(void *dst, size_t dst_size, const void *src, size_t src_size);

/* Write the library's struct src (src_size bytes) into a caller's dst of
 * dst_size bytes: the bytes both know are copied, and a larger dst's extra
 * bytes (fields of a newer header) are zeroed. Never writes past
 * dst_size. */
DL_INTERNAL void dl_abi_copy_out(void *dst, size_t dst_size, const void *src, size_t src_size);

/* Options structs start with size_t struct_size. */

/* A *_init_sized call: the defaults (a struct of dsize bytes) into the
 * caller's opts of size bytes, whose struct_size becomes size. No-op when
 * opts is NULL or size cannot hold struct_size. */
DL_INTERNAL void dl_abi_init_sized(void *opts, size_t size, const void *defaults, size_t dsize);

/* Read the caller's options src (NULL: keep the defaults) into dst
 * (dst_size bytes, holding the defaults), then set dst's struct_size to
 * dst_size. Errors, with x's detail naming `what` and its `init` call:
 * DLOCK_EINVAL (a struct_size no header produces: not initialised),
 * DLOCK_ENOTSUP (a field this library does not know is set). */
DL_INTERNAL int dl_abi_read_options(dl_ctx *x, void *dst, size_t dst_size, const void *src,
                                    const char *what, const char *init);

#endif
