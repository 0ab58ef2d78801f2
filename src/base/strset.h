/* strset.h - a set of byte strings (open addressing, FNV-1a), for
 * remembering which names a scan has already seen. Pure: no I/O. */
#ifndef DLOCK_STRSET_H
#define DLOCK_STRSET_H

#include <stddef.h>

#include "ctx.h"

typedef struct dl_strset {
    char **slot; /* each entry: a size_t length, then the bytes */
    size_t cap;  /* a power of two, or 0 */
    size_t n;
} dl_strset;

/* Add s[0..len) (a copy). Returns 1 if added, 0 if it was there already,
 * -1 out of memory (the set is unchanged). An all-zero dl_strset is empty. */
DL_INTERNAL int dl_strset_add(dl_strset *set, const char *s, size_t len);
/* Free every entry; the set is empty again. */
DL_INTERNAL void dl_strset_free(dl_strset *set);

#endif
