/* kind_inspect.c - dlock_holders: who holds a name now, whatever its kind.
 * One SEM_INSPECT round trip (kinds.lua.h); a name held as a mutex is
 * then inspected as one (inspect.c). On a Redlock set (rw locks) the view
 * is a majority's: a holder is one that a majority of the masters list. */
#include <stdio.h>
#include <string.h>

#include "kinds.h"
#include "resp.h"

struct dlock_holders {
    dlock_kind kind;
    int permits, waiters, total, n;
    int64_t last_fence;
    dlock_holder *h;
    unsigned char *shared;
};

#define HOLDER_FIELDS 6 /* per holder in the reply */

static void copy_str(const redisReply *r, char *out, size_t n) {
    size_t k = r->type == REDIS_REPLY_STRING ? (r->len < n - 1 ? r->len : n - 1) : 0;
    memcpy(out, r->str, k);
    out[k] = '\0';
}

/* The reply's head: {kind, permits, last_fence, waiters, holders, ...};
 * fences are decimal strings (kinds.lua.h), the other counts integers. */
static int head_ok(const redisReply *r) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 5 ||
        r->element[0]->type != REDIS_REPLY_STRING || (r->elements - 5) % HOLDER_FIELDS != 0)
        return 0;
    for (int i = 1; i < 5; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER &&
            !(i == 2 && r->element[i]->type == REDIS_REPLY_STRING))
            return 0;
    return 1;
}

static int fill(dlock_holders *hs, const redisReply *r) {
    const redisReply *k = r->element[0];
    hs->kind = k->len == 3 && memcmp(k->str, "sem", 3) == 0 ? DLOCK_KIND_SEMAPHORE
                                                            : DLOCK_KIND_RW;
    hs->permits = (int)dl_reply_int(r->element[1], 0);
    hs->last_fence = dl_reply_int(r->element[2], 0);
    hs->waiters = (int)dl_reply_int(r->element[3], 0);
    hs->total = (int)dl_reply_int(r->element[4], 0);
    hs->n = (int)((r->elements - 5) / HOLDER_FIELDS);
    hs->h = calloc((size_t)hs->n + 1, sizeof *hs->h);
    hs->shared = calloc((size_t)hs->n + 1, 1);
    if (hs->h == NULL || hs->shared == NULL)
        return DLOCK_ENOMEM;
    for (int i = 0; i < hs->n; i++) {
        redisReply *const *e = r->element + 5 + i * HOLDER_FIELDS;
        dlock_holder *h = &hs->h[i];
        h->locked = 1;
        copy_str(e[0], h->token, sizeof h->token);
        h->pttl_ms = dl_reply_int(e[1], 0);
        h->fence = dl_reply_int(e[2], 0);
        hs->shared[i] = e[3]->type == REDIS_REPLY_STRING && e[3]->len == 2 &&
                        memcmp(e[3]->str, "r0", 2) == 0;
        h->acquired_at = dl_reply_int(e[4], 0);
        dl_meta_read(e[5], h);
        h->waiters = hs->waiters;
    }
    return DLOCK_OK;
}

/* A name held as a mutex: its one holder. */
static int as_mutex(dlock_client *c, const char *name, size_t len, dlock_holders *hs) {
    dlock_holder one;
    int rc = dl_inspect(c, name, len, &one);
    if (rc != DLOCK_OK)
        return rc;
    hs->kind = DLOCK_KIND_MUTEX;
    hs->waiters = one.waiters;
    hs->last_fence = one.fence;
    hs->h = calloc(1, sizeof *hs->h);
    hs->shared = calloc(1, 1);
    if (hs->h == NULL || hs->shared == NULL)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    hs->n = hs->total = one.locked;
    hs->h[0] = one;
    return DLOCK_OK;
}

/* Whether SEM_INSPECT's kind k is a semaphore's or rw lock's ("" free). */
static int sem_kind(const redisReply *k) {
    return k->len == 0 || (k->len == 3 && (memcmp(k->str, "sem", 3) == 0 ||
                                           memcmp(k->str, "rws", 3) == 0 ||
                                           memcmp(k->str, "rwx", 3) == 0));
}

/* A name whose key is not a lock's. */
static int not_a_lock(dlock_client *c, const char *name, const redisReply *k) {
    int rc = dl_seterr(&c->ctx, DLOCK_ESERVER,
                       "inspect '%s': WRONGTYPE its key holds a %.20s, not a lock", name, k->str);
    c->ctx.code = DL_SRV_WRONGTYPE;
    return rc;
}

/* The SEM_INSPECT call's answer about `name` into *hs. */
static int read_reply(dlock_client *c, const char *name, size_t len, dlock_holders *hs,
                      const dl_call *call) {
    int rc = dl_call_error(&c->ctx, call, "inspect");
    if (rc != DLOCK_OK)
        return rc;
    const redisReply *r = call->replies[0];
    if (!head_ok(r))
        return dl_seterr(&c->ctx, DLOCK_EPROTO, "unexpected reply to inspect of '%s'", name);
    const redisReply *k = r->element[0];
    if (k->len == 4 && memcmp(k->str, "hash", 4) == 0)
        return as_mutex(c, name, len, hs);
    if (!sem_kind(k))
        return not_a_lock(c, name, k);
    if (r->element[0]->len == 0) { /* free: maybe a mutex's queue waits */
        hs->last_fence = dl_reply_int(r->element[2], 0);
        hs->waiters = (int)dl_reply_int(r->element[3], 0);
        return DLOCK_OK;
    }
    return fill(hs, r) == DLOCK_OK ? DLOCK_OK : dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
}

/* Redlock: how many of the masters' views list `token`, and in *at the
 * entry of the last one; *pttl becomes the shortest lease they report. */
static int listed_by(const dlock_holders *per, int n, const char *token, int64_t *pttl,
                     const dlock_holder **at, int *shared) {
    int count = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < per[i].n; j++)
            if (strcmp(per[i].h[j].token, token) == 0) {
                count++;
                if (per[i].h[j].pttl_ms < *pttl)
                    *pttl = per[i].h[j].pttl_ms;
                if (*at == NULL || per[i].h[j].fence > (*at)->fence)
                    *at = &per[i].h[j];
                *shared = per[i].shared[j];
                break;
            }
    return count;
}

/* Redlock: the holders a majority of the views per[0..n) list (each once,
 * with the highest fence and the shortest lease reported), the highest
 * last fence and the longest queue. */
static int merge(dlock_holders *hs, const dlock_holders *per, int n, int quorum) {
    int cap = 0;
    for (int i = 0; i < n; i++) {
        cap += per[i].n;
        hs->last_fence = per[i].last_fence > hs->last_fence ? per[i].last_fence : hs->last_fence;
        hs->waiters = per[i].waiters > hs->waiters ? per[i].waiters : hs->waiters;
        if (per[i].n > 0)
            hs->kind = per[i].kind;
    }
    hs->h = calloc((size_t)cap + 1, sizeof *hs->h);
    hs->shared = calloc((size_t)cap + 1, 1);
    if (hs->h == NULL || hs->shared == NULL)
        return DLOCK_ENOMEM;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < per[i].n; j++) {
            const char *tok = per[i].h[j].token;
            int seen = 0;
            for (int k = 0; k < hs->n && !seen; k++)
                seen = strcmp(hs->h[k].token, tok) == 0;
            const dlock_holder *at = NULL;
            int64_t pttl = INT64_MAX;
            int shared = 0;
            if (seen || listed_by(per, n, tok, &pttl, &at, &shared) < quorum)
                continue;
            hs->h[hs->n] = *at;
            hs->h[hs->n].pttl_ms = pttl;
            hs->h[hs->n].waiters = hs->waiters;
            hs->shared[hs->n++] = (unsigned char)shared;
        }
    hs->total = hs->n;
    return DLOCK_OK;
}

/* Redlock: every master's SEM_INSPECT answer, read as one view. */
static int read_redlock(dlock_client *c, const char *name, size_t len, dlock_holders *hs,
                        const dl_call *call) {
    int rc = dl_call_error(&c->ctx, call, "inspect");
    if (rc != DLOCK_OK)
        return rc;
    dlock_holders per[DL_URL_MAX_HOSTS];
    const redisReply *other = NULL;
    int n = 0, mutexes = 0, others = 0;
    memset(per, 0, sizeof per);
    for (int i = 0; i < call->n && rc == DLOCK_OK; i++) {
        const redisReply *r = call->replies[i];
        if (call->status[i] != DLOCK_OK)
            continue;
        if (!head_ok(r))
            rc = dl_seterr(&c->ctx, DLOCK_EPROTO, "unexpected reply to inspect of '%s' from %s",
                           name, call->conns[i]->addr);
        else if (r->element[0]->len == 4 && memcmp(r->element[0]->str, "hash", 4) == 0)
            mutexes++;
        else if (!sem_kind(r->element[0]))
            others++, other = r->element[0];
        else if (r->element[0]->len == 0)
            per[n++] = (dlock_holders){.last_fence = dl_reply_int(r->element[2], 0),
                                       .waiters = (int)dl_reply_int(r->element[3], 0)};
        else if (fill(&per[n++], r) != DLOCK_OK)
            rc = dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    if (rc == DLOCK_OK && mutexes >= call->quorum)
        rc = as_mutex(c, name, len, hs);
    else if (rc == DLOCK_OK && others >= call->quorum)
        rc = not_a_lock(c, name, other);
    else if (rc == DLOCK_OK && merge(hs, per, n, call->quorum) != DLOCK_OK)
        rc = dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        free(per[i].h);
        free(per[i].shared);
    }
    return rc;
}

static int read_holders(dlock_client *c, const char *name, size_t len, dlock_holders *hs) {
    dl_keyset ks;
    if (dl_keyset_sem(&c->proto, name, len, &ks) != DLOCK_OK)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    const char *argv[DL_REQ_MAX_ARGV];
    size_t lens[DL_REQ_MAX_ARGV];
    dl_req req;
    dl_fan *f;
    dl_keyset_req(&c->proto, DL_S_SEM_INSPECT, &ks, 0, NULL, NULL, argv, lens, &req);
    int rc = dl_block_call(c, &req, NULL, &f);
    dl_keyset_free(&ks);
    if (rc != DLOCK_OK)
        return rc;
    rc = c->url.kind == DL_URL_REDLOCK ? read_redlock(c, name, len, hs, &f->call)
                                       : read_reply(c, name, len, hs, &f->call);
    dl_fan_put(f);
    return rc;
}

int dl_holders_entry(dlock_client *c, const char *name, size_t len, dlock_list_entry *e) {
    dlock_holders hs = {0};
    int rc = read_holders(c, name, len, &hs);
    if (rc == DLOCK_OK && hs.n > 0) {
        e->kind = hs.kind;
        e->holders = hs.total;
        e->holder = hs.h[0];
    }
    free(hs.h);
    free(hs.shared);
    return rc;
}

void dlock_holders_free(dlock_holders *hs) {
    if (hs == NULL)
        return;
    free(hs->h);
    free(hs->shared);
    free(hs);
}

int dlock_holders_get(dlock_client *c, const char *name, dlock_holders **out) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (out == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL");
    *out = NULL;
    size_t len;
    rc = dl_check_name(c, name, &len);
    if (rc != DLOCK_OK)
        return rc;
    dlock_holders *hs = calloc(1, sizeof *hs);
    if (hs == NULL)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    rc = read_holders(c, name, len, hs);
    if (rc != DLOCK_OK) {
        dlock_holders_free(hs);
        return rc;
    }
    *out = hs;
    return DLOCK_OK;
}

dlock_kind dlock_holders_kind(const dlock_holders *hs) {
    return hs != NULL ? hs->kind : DLOCK_KIND_MUTEX;
}
int dlock_holders_count(const dlock_holders *hs) { return hs != NULL ? hs->n : 0; }
int dlock_holders_total(const dlock_holders *hs) { return hs != NULL ? hs->total : 0; }
int dlock_holders_permits(const dlock_holders *hs) { return hs != NULL ? hs->permits : 0; }
int dlock_holders_waiters(const dlock_holders *hs) { return hs != NULL ? hs->waiters : 0; }
int64_t dlock_holders_last_fence(const dlock_holders *hs) {
    return hs != NULL ? hs->last_fence : 0;
}

const dlock_holder *dlock_holders_at(const dlock_holders *hs, int i) {
    return hs != NULL && i >= 0 && i < hs->n ? &hs->h[i] : NULL;
}

int dlock_holders_shared(const dlock_holders *hs, int i) {
    return hs != NULL && i >= 0 && i < hs->n ? hs->shared[i] : 0;
}
