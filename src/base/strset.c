/* strset.c - a set of byte strings; see strset.h. */
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static size_t entry_len(const char *e) {
    size_t len;
    memcpy(&len, e, sizeof len);
    return len;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t find(const dl_strset *set, const char *s, size_t len) {
    size_t i = (size_t)hash(s, len) & (set->cap - 1);
    while (set->slot[i] != NULL) {
        const char *e = set->slot[i];
        if (entry_len(e) == len && memcmp(e + sizeof len, s, len) == 0)
            return i;
        i = (i + 1) & (set->cap - 1);
    }
    return i;
}

/* Double the table (or make the first one). 0 or -1. */
static int grow(dl_strset *set) {
    size_t ncap = set->cap ? set->cap * 2 : 64;
    char **old = set->slot;
    size_t ocap = set->cap;
    set->slot = calloc(ncap, sizeof *set->slot);
    if (set->slot == NULL) {
        set->slot = old;
        return -1;
    }
    set->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] != NULL)
            set->slot[find(set, old[i] + sizeof(size_t), entry_len(old[i]))] = old[i];
    free(old);
    return 0;
}

int dl_strset_add(dl_strset *set, const char *s, size_t len) {
    if ((set->n + 1) * 2 > set->cap && grow(set) != 0)
        return -1;
    size_t i = find(set, s, len);
    if (set->slot[i] != NULL)
        return 0;
    char *e = malloc(sizeof len + len);
    if (e == NULL)
        return -1;
    memcpy(e, &len, sizeof len);
    memcpy(e + sizeof len, s, len);
    set->slot[i] = e;
    set->n++;
    return 1;
}

void dl_strset_free(dl_strset *set) {
    for (size_t i = 0; i < set->cap; i++)
        free(set->slot[i]);
    free(set->slot);
    memset(set, 0, sizeof *set);
}
