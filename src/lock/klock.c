/* klock.c - the handles of the other kinds (kinds.h): what a handle holds,
 * the keys and scripts that extend and release it. Every handle, a
 * mutex's too, answers dl_lock_keys, so keepalive need not know kinds. */
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "kinds.h"

static const dl_kscripts mutex_sc = {DL_S_ACQUIRE, DL_S_RELEASE, DL_S_EXTEND, DL_S_CANCEL};
static const dl_kscripts sem_sc = {DL_S_SEM_ACQUIRE, DL_S_SEM_RELEASE, DL_S_SEM_EXTEND,
                                   DL_S_SEM_CANCEL};
static const dl_kscripts multi_sc = {DL_S_MULTI_ACQUIRE, DL_S_MULTI_RELEASE, DL_S_MULTI_EXTEND,
                                     DL_S_MULTI_CANCEL};

const dl_kscripts *dl_kind_scripts(int kind) {
    switch (kind) {
    case DL_LK_MUTEX:
        return &mutex_sc;
    case DL_LK_MULTI:
        return &multi_sc;
    default:
        return &sem_sc;
    }
}

void dl_kreq_of(const dlock_lock *l, dl_kreq *r) {
    r->kind = l->kind;
    r->want = l->want;
    if (l->nnames > 0) {
        r->n = l->nnames;
        r->names = l->names;
        r->lens = l->lens;
    } else {
        r->n = 1;
        r->names = (const char *const *)&l->name;
        r->lens = &l->name_len;
    }
}

int dl_kreq_keys(const dl_proto *p, const dl_kreq *r, dl_keyset *ks) {
    if (r->kind == DL_LK_SEM || r->kind == DL_LK_RW)
        return dl_keyset_sem(p, r->names[0], r->lens[0], ks);
    return dl_keyset_mutexes(p, r->n, r->names, r->lens, ks);
}

int dl_lock_keys(const dlock_lock *l, dl_keyset *ks, const dl_kscripts **sc) {
    dl_kreq r;
    dl_kreq_of(l, &r);
    *sc = dl_kind_scripts(l->kind);
    return dl_kreq_keys(&l->client->proto, &r, ks) == DLOCK_OK ? DLOCK_OK : DLOCK_ENOMEM;
}

size_t dl_kreq_want(const dl_kreq *r, char *buf, size_t n) {
    int k = r->kind == DL_LK_RW ? snprintf(buf, n, "r%d", r->want ? 1 : 0)
                                : snprintf(buf, n, "s%d", r->want);
    return k < 0 ? 0 : (size_t)k;
}

/* One allocation: the handle, then (multi) the arrays of names, lengths
 * and fences, then the names' bytes; dl_lock_destroy frees it all. */
dlock_lock *dl_klock_new(dlock_client *c, const dl_kreq *r, int64_t ttl_ms, int64_t start_us) {
    size_t multi = r->kind == DL_LK_MULTI ? (size_t)r->n : 0;
    size_t bytes = 0;
    for (int i = 0; i < r->n; i++)
        bytes += r->lens[i] + 1;
    size_t head = (sizeof(dlock_lock) + 15) & ~(size_t)15;
    size_t arrays = multi * (sizeof(char *) + sizeof(size_t) + sizeof(int64_t));
    dlock_lock *l = calloc(1, head + arrays + bytes);
    if (l == NULL)
        return NULL;
    const char **names = (const char **)((char *)l + head);
    size_t *lens = (size_t *)(names + multi);
    int64_t *fences = (int64_t *)(lens + multi);
    char *d = (char *)(fences + multi);
    for (int i = 0; i < r->n; i++) {
        memcpy(d, r->names[i], r->lens[i]);
        d[r->lens[i]] = '\0';
        if (multi > 0) {
            names[i] = d;
            lens[i] = r->lens[i];
        }
        if (i == 0)
            l->name = d;
        d += r->lens[i] + 1;
    }
    l->name_len = r->lens[0];
    dl_lock_register(c, l); /* so dlock_client_free can orphan it */
    l->kind = r->kind;
    l->want = r->want;
    if (multi > 0) {
        l->nnames = r->n;
        l->names = names;
        l->lens = lens;
        l->fences = fences;
    }
    l->ttl_ms = ttl_ms;
    l->acquired_us = start_us;
    l->acquired_wall_ms = dl_wall_ms() - (dl_mono_us() - start_us) / 1000;
    atomic_store(&l->valid_until_us, dl_valid_until_us(start_us, ttl_ms, c->opts.drift_factor));
    return l;
}
