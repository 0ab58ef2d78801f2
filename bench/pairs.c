/* pairs.c - dlock-pairs URL N: N dlock_try_acquire + dlock_release pairs on
 * one key, nothing else. The subject of bench/profile.sh (heap allocations,
 * instructions and system calls per pair), kept free of the benchmark's own
 * bookkeeping so those counts are the library's. */
#include <stdio.h>
#include <stdlib.h>

#include "dlock.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: dlock-pairs URL N\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, argv[1], NULL);
    for (long i = 0; rc == DLOCK_OK && i < n; i++) {
        dlock_lock *l = NULL;
        rc = dlock_try_acquire(c, "dlock-pairs", 5000, &l);
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
