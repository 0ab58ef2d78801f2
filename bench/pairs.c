/* pairs.c - dlock-pairs URL N [KIND]: N try-acquire + release pairs on one
 * key, nothing else. KIND: mutex (default), sem (3 permits), rw-shared,
 * rw-exclusive or multi (2 names of one hash slot). The subject of
 * bench/profile.sh (heap allocations, instructions and system calls per
 * pair), kept free of the benchmark's own bookkeeping so those counts are
 * the library's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlock.h"

static int take(dlock_client *c, const char *kind, dlock_lock **l) {
    static const char *const two[] = {"{dlock-pairs}0", "{dlock-pairs}1"};
    if (strcmp(kind, "sem") == 0)
        return dlock_sem_try_acquire(c, "dlock-pairs-sem", 3, 5000, l);
    if (strcmp(kind, "rw-shared") == 0 || strcmp(kind, "rw-exclusive") == 0)
        return dlock_rw_try_acquire(c, "dlock-pairs-rw",
                                    kind[3] == 's' ? DLOCK_SHARED : DLOCK_EXCLUSIVE, 5000, l);
    if (strcmp(kind, "multi") == 0)
        return dlock_multi_try_acquire(c, two, 2, 5000, l);
    return dlock_try_acquire(c, "dlock-pairs", 5000, l);
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: dlock-pairs URL N [mutex|sem|rw-shared|rw-exclusive|multi]\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    const char *kind = argc == 4 ? argv[3] : "mutex";
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, argv[1], NULL);
    for (long i = 0; rc == DLOCK_OK && i < n; i++) {
        dlock_lock *l = NULL;
        rc = take(c, kind, &l);
        if (rc == DLOCK_OK)
            rc = dlock_release(l);
        dlock_lock_free(l);
    }
    if (rc != DLOCK_OK)
        fprintf(stderr, "dlock-pairs: %s: %s\n", dlock_err_name(rc),
                c ? dlock_client_errstr(c) : "");
    dlock_client_free(c);
    return rc == DLOCK_OK ? 0 : 1;
}
