/* keyset.c - the keys of the other kinds' script calls: a semaphore's or
 * rw lock's own keys, and the mutex keys of several names (a multi-lock),
 * and the EVALSHA request over them. The mutex keys themselves are named
 * by dl_keys_make (scripts.c); every key is written by dl_key_put. */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* kinds.lua.h: KEYS[1..5] of the SEM family. */
static const char *const sem_suffix[DL_SEM_NKEYS] = {"", ":h", ":fence", ":pq", ":pqi"};

void dl_keyset_free(dl_keyset *ks) {
    free(ks->buf);
    ks->buf = NULL;
    ks->n = 0;
}

/* An empty set. Only what is read is cleared (k and len are read below n
 * only): a set is 1.4 KB, and one is made for every release and extend. */
static void reset(dl_keyset *ks) {
    ks->n = 0;
    ks->buf = NULL;
    ks->nk[0] = '\0';
    ks->nk_len = 0;
}

/* Room for total bytes of keys: ks's own, or one allocation (NULL when
 * out of memory). */
static char *key_room(dl_keyset *ks, size_t total) {
    if (total <= sizeof ks->small)
        return ks->small;
    return ks->buf = malloc(total);
}

static void set_count(dl_keyset *ks, int n) {
    ks->n = n;
    ks->nk_len = (size_t)snprintf(ks->nk, sizeof ks->nk, "%d", n);
}

int dl_keyset_sem(const dl_proto *p, const char *name, size_t len, dl_keyset *out) {
    reset(out);
    size_t total = 0;
    for (int i = 0; i < DL_SEM_NKEYS; i++)
        total += dl_key_size(p, name, len, sem_suffix[i]);
    char *d = key_room(out, total);
    if (d == NULL)
        return DLOCK_ENOMEM;
    for (int i = 0; i < DL_SEM_NKEYS; i++) {
        out->k[i] = d;
        out->len[i] = dl_key_put(p, name, len, sem_suffix[i], d);
        d += out->len[i];
    }
    set_count(out, DL_SEM_NKEYS);
    return DLOCK_OK;
}

int dl_keyset_mutexes(const dl_proto *p, int n, const char *const *names, const size_t *lens,
                      dl_keyset *out) {
    reset(out);
    if (n < 1 || n > DLOCK_MULTI_MAX)
        return DLOCK_EINVAL;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += DL_NKEYS * dl_key_size(p, names[i], lens[i], ":fence"); /* the longest */
    char *d = key_room(out, total);
    if (d == NULL)
        return DLOCK_ENOMEM;
    for (int i = 0; i < n; i++) {
        dl_keys one;
        if (dl_keys_make(p, names[i], lens[i], &one) != DLOCK_OK) {
            dl_keyset_free(out);
            return DLOCK_ENOMEM;
        }
        for (int j = 0; j < DL_NKEYS; j++) {
            memcpy(d, one.k[j], one.len[j]);
            out->k[i * DL_NKEYS + j] = d;
            out->len[i * DL_NKEYS + j] = one.len[j];
            d += one.len[j];
        }
        dl_keys_free(&one);
    }
    set_count(out, n * DL_NKEYS);
    return DLOCK_OK;
}

int dl_keyset_req(const dl_proto *p, enum dl_script_id id, const dl_keyset *ks, int nargs,
                  const char **args, const size_t *alens, const char **argv, size_t *lens,
                  dl_req *req) {
    if (3 + ks->n + nargs > DL_REQ_MAX_ARGV)
        return DLOCK_EINVAL;
    int argc = 0;
    argv[argc] = "EVALSHA";
    lens[argc++] = 7;
    argv[argc] = p->sha[id];
    lens[argc++] = 40;
    argv[argc] = ks->nk;
    lens[argc++] = ks->nk_len;
    for (int i = 0; i < ks->n; i++) {
        argv[argc] = ks->k[i];
        lens[argc++] = ks->len[i];
    }
    for (int i = 0; i < nargs; i++) {
        argv[argc] = args[i];
        lens[argc++] = alens[i];
    }
    size_t slen;
    const char *src = dl_script_source(id, &slen);
    *req = (dl_req){.argc = argc, .argv = argv, .lens = lens, .key = ks->k[0],
                    .klen = ks->len[0], .script = src, .script_len = slen};
    return DLOCK_OK;
}
