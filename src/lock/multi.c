/* multi.c - the entry point of every acquire of the other kinds, and
 * multi-locks taken in parts: names in several Cluster hash slots, and
 * every multi-lock on a Redlock set.
 *
 * Cluster: a script runs in one slot, so such a multi-lock is taken one
 * slot group at a time (each group all or nothing, by one MULTI script),
 * the groups in rising slot order. That order is the same for every
 * caller, so no two callers can each hold a group the other waits for: a
 * caller waiting in slot s holds only groups of lower slots, and within
 * one slot the queue order is one for every name (kinds.lua.h).
 * Redlock: a script runs on one server, and a name is held when a majority
 * of the masters hold it, so each name is a Redlock mutex of its own
 * (acquire_async.c: quorum, fence on a majority, queue), taken one after
 * the other in bytewise order. The same argument holds with one name per
 * group: a caller waiting for a name holds only names below it in that
 * order, so no cycle of waiters can form. A group already held keeps
 * its lease while later groups are waited for (no keepalive yet); groups
 * held longer than half their ttl get it restarted at the end, and if one
 * was lost meanwhile everything is given back and, time permitting, taken
 * again. The result is one handle whose parts are the groups' handles:
 * release, extend and keepalive act on every part (handle_api.c,
 * blocking.c, keepalive.c). */
#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "crc16.h"
#include "kinds.h"

typedef struct mst {
    dl_kreq all;                        /* every name, sorted bytewise (our copies) */
    const char *all_names[DLOCK_MULTI_MAX];
    size_t all_lens[DLOCK_MULTI_MAX];
    const char *names[DLOCK_MULTI_MAX]; /* the same, grouped: by slot, then bytewise */
    size_t lens[DLOCK_MULTI_MAX];
    int first[DLOCK_MULTI_MAX + 1];     /* group g is names[first[g] .. first[g+1]) */
    int ngroups, next, pending, failed_rc;
    dlock_lock *parts[DLOCK_MULTI_MAX];
    uint64_t child;                     /* the group acquire in flight */
    char *buf;                          /* the names' bytes */
    int redlock;                        /* a Redlock set: one mutex per name */
} mst;

static mst *M(const dl_aop *op) { return op->kx; }

/* ---- grouping ---- */

/* The Cluster slot of name's keys. */
static int name_slot(const dl_proto *p, const char *name, size_t len) {
    dl_keys k;
    if (dl_keys_make(p, name, len, &k) != DLOCK_OK)
        return -1;
    int slot = dl_key_slot(k.k[DL_KEY_LOCK], k.len[DL_KEY_LOCK]);
    dl_keys_free(&k);
    return slot;
}

/* Order names[0..n) (already bytewise) by slot, stably: order[k] is the
 * k-th name in group order, group g is order[first[g] .. first[g+1]).
 * Returns the number of groups, or -1 when out of memory. */
static int group(const dl_proto *p, const dl_kreq *r, int *order, int *first) {
    int slot[DLOCK_MULTI_MAX];
    for (int i = 0; i < r->n; i++) {
        slot[i] = name_slot(p, r->names[i], r->lens[i]);
        if (slot[i] < 0)
            return -1;
        order[i] = i;
    }
    for (int i = 1; i < r->n; i++) /* insertion sort: stable, n <= 16 */
        for (int j = i; j > 0 && slot[order[j - 1]] > slot[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int ng = 0;
    for (int i = 0; i < r->n; i++)
        if (i == 0 || slot[order[i]] != slot[order[i - 1]])
            first[ng++] = i;
    first[ng] = r->n;
    return ng;
}

/* Redlock: every name a group of its own, in bytewise order. */
static int one_each(const dl_kreq *r, int *order, int *first) {
    for (int i = 0; i < r->n; i++)
        order[i] = first[i] = i;
    first[r->n] = r->n;
    return r->n;
}

/* ---- the acquire of several groups ---- */

static void m_free(dl_aop *op) {
    mst *m = op->kx;
    if (m == NULL)
        return;
    for (int g = 0; g < m->ngroups; g++)
        dl_lock_destroy(m->parts[g]); /* never delivered: no keepalive */
    if (op->lock != NULL) { /* assembled but never delivered */
        for (int i = 0; i < op->lock->nparts; i++)
            dl_lock_destroy(op->lock->parts[i]);
        free(op->lock->parts);
    }
    free(m->buf);
    free(m);
}

static void part_given_back(const dlock_result *res, void *ud) {
    (void)ud;
    dl_lock_destroy(res->lock); /* a part of an acquire that failed: never kept alive */
}

/* Give back every group held so far (in the background). */
static void give_back(dl_aop *op) {
    mst *m = M(op);
    for (int g = 0; g < m->ngroups; g++) {
        if (m->parts[g] != NULL &&
            dl_release_start(op->e, m->parts[g], part_given_back, NULL, NULL) != DLOCK_OK)
            dl_lock_destroy(m->parts[g]);
        m->parts[g] = NULL;
    }
    m->next = 0;
}

static void start_group(dl_aop *op);

static int64_t left_ms(const dl_aop *op) {
    int64_t d = op->deadline_us - dl_mono_us();
    return d <= 0 ? 0 : (d + 999) / 1000;
}

/* A multi-lock handle made of the parts. */
static void assemble(dl_aop *op) {
    mst *m = M(op);
    dlock_client *c = op->e->c;
    int64_t start = m->parts[0]->acquired_us;
    for (int g = 1; g < m->ngroups; g++)
        if (m->parts[g]->acquired_us < start)
            start = m->parts[g]->acquired_us;
    dlock_lock *l = dl_klock_new(c, &m->all, op->ttl_ms, start);
    dlock_lock **parts = l != NULL ? malloc((size_t)m->ngroups * sizeof *parts) : NULL;
    if (parts == NULL) {
        dl_lock_destroy(l);
        give_back(op);
        dl_aop_finish(op, dl_seterr(&op->x, DLOCK_ENOMEM, "out of memory"));
        return;
    }
    atomic_store(&l->valid_until_us, INT64_MAX); /* the parts say (handle.c) */
    memcpy(l->token, m->parts[0]->token, sizeof l->token);
    for (int g = 0; g < m->ngroups; g++) {
        dlock_lock *p = m->parts[g];
        dl_kreq pr; /* a part's names: a MULTI group's, or a Redlock mutex's one */
        dl_kreq_of(p, &pr);
        p->whole = l;
        p->acquired_us = start; /* max_hold_ms counts from the first group */
        for (int i = 0; i < pr.n; i++)
            for (int j = 0; j < l->nnames; j++)
                if (l->lens[j] == pr.lens[i] && memcmp(l->names[j], pr.names[i], pr.lens[i]) == 0)
                    l->fences[j] = p->nnames > 0 ? p->fences[i] : p->fence;
        parts[g] = p;
        m->parts[g] = NULL;
    }
    l->fence = l->fences[0];
    l->parts = parts;
    l->nparts = m->ngroups;
    l->eng = op->e->blocking ? NULL : op->e;
    op->lock = l;
    op->fence = l->fence;
    dl_aop_finish(op, DLOCK_OK);
}

static void on_refreshed(const dlock_result *res, void *ud) {
    dl_aop *op = ud;
    mst *m = M(op);
    if (res->status != DLOCK_OK && m->failed_rc == DLOCK_OK)
        m->failed_rc = res->status;
    if (--m->pending > 0)
        return;
    if (m->failed_rc == DLOCK_OK && !op->cancelled) {
        assemble(op);
        return;
    }
    give_back(op); /* a group was lost while later ones were waited for */
    int rc = m->failed_rc;
    m->failed_rc = DLOCK_OK;
    if (op->cancelled) {
        dl_seterr(&op->x, DLOCK_ECANCELED, "acquire of '%s' cancelled", op->name);
        dl_aop_finish(op, DLOCK_ECANCELED);
        return;
    }
    if (op->mode == DL_AM_DEADLINE && left_ms(op) > 0) {
        start_group(op); /* take them all again */
        return;
    }
    if (rc == DLOCK_ENOTHELD)
        rc = op->is_wait ? DLOCK_ETIMEDOUT : DLOCK_EBUSY;
    dl_seterr(&op->x, rc,
              "multi-lock '%s': a group of its names was lost while the next was waited for",
              op->name);
    dl_aop_finish(op, rc);
}

/* Every group is held: restart the leases that are half gone. */
static void refresh(dl_aop *op) {
    mst *m = M(op);
    m->pending = 1;
    for (int g = 0; g < m->ngroups; g++) {
        dlock_lock *p = m->parts[g];
        if (dl_mono_us() - p->acquired_us <= op->ttl_ms * 500)
            continue;
        m->pending++;
        if (dl_extend_start(op->e, p, op->ttl_ms, on_refreshed, op, NULL) != DLOCK_OK) {
            m->pending--;
            m->failed_rc = DLOCK_ENOTHELD;
        }
    }
    dlock_result none = {.status = DLOCK_OK};
    on_refreshed(&none, op); /* the 1 held above */
}

static void on_group(const dlock_result *res, void *ud) {
    dl_aop *op = ud;
    mst *m = M(op);
    int rc = res->status;
    if (rc == DLOCK_OK) {
        m->parts[m->next++] = res->lock;
        if (!op->cancelled) {
            if (m->next < m->ngroups)
                start_group(op);
            else
                refresh(op);
            return;
        }
        rc = DLOCK_ECANCELED;
    }
    give_back(op);
    if (rc == DLOCK_ECANCELED) {
        dl_seterr(&op->x, rc, "acquire of '%s' cancelled", op->name);
    } else {
        dl_seterr(&op->x, rc, "%s", res->detail);
        op->x.code = res->code;
    }
    dl_aop_finish(op, rc);
}

static void start_group(dl_aop *op) {
    mst *m = M(op);
    int g = m->next;
    dl_kreq r = {.kind = DL_LK_MULTI, .n = m->first[g + 1] - m->first[g],
                 .names = m->names + m->first[g], .lens = m->lens + m->first[g]};
    int mode = op->mode;
    int64_t timeout = 0;
    if (mode == DL_AM_DEADLINE) {
        timeout = left_ms(op);
        if (timeout == 0)
            mode = DL_AM_TRY;
    }
    int rc = m->redlock ? dl_acquire_start(op->e, r.names[0], r.lens[0], op->ttl_ms, mode,
                                           timeout, op->is_wait, on_group, op, &m->child)
                        : dl_kacquire_start(op->e, &r, op->ttl_ms, mode, timeout, op->is_wait,
                                            on_group, op, &m->child);
    if (rc != DLOCK_OK) {
        give_back(op);
        dl_seterr(&op->x, rc, "%s", op->e->c->ctx.err);
        dl_aop_finish(op, rc);
    }
}

static void m_cancel(dl_aop *op) {
    op->cancelled = 1;
    dlock_op_cancel(op->e->c, M(op)->child); /* its end ends ours */
}

/* Copies r into the op (names in one buffer), in bytewise and in group
 * order. */
static int m_make(dl_aop *op, const dl_kreq *r, int ngroups, const int *order,
                  const int *first) {
    mst *m = calloc(1, sizeof *m);
    size_t bytes = 0;
    for (int i = 0; i < r->n; i++)
        bytes += r->lens[i] + 1;
    char *d = m != NULL ? malloc(bytes) : NULL;
    op->kx = m;
    op->on_free = m_free;
    if (d == NULL)
        return DLOCK_ENOMEM;
    m->buf = d;
    for (int i = 0; i < r->n; i++) {
        memcpy(d, r->names[i], r->lens[i]);
        d[r->lens[i]] = '\0';
        m->all_names[i] = d;
        m->all_lens[i] = r->lens[i];
        d += r->lens[i] + 1;
    }
    for (int i = 0; i < r->n; i++) {
        m->names[i] = m->all_names[order[i]];
        m->lens[i] = m->all_lens[order[i]];
    }
    memcpy(m->first, first, (size_t)(ngroups + 1) * sizeof *first);
    m->ngroups = ngroups;
    m->all = *r;
    m->all.names = m->all_names;
    m->all.lens = m->all_lens;
    return DLOCK_OK;
}

int dl_kind_start(dl_engine *e, const dl_kreq *r, int64_t ttl_ms, int mode, int64_t timeout_ms,
                  int is_wait, dlock_done_fn cb, void *ud, uint64_t *id) {
    dlock_client *c = e->c;
    int redlock = e->n > 1; /* semaphores: refused by dl_kacquire_start */
    if (r->kind != DL_LK_MULTI || (!redlock && (r->n == 1 || c->url.kind != DL_URL_CLUSTER)))
        return dl_kacquire_start(e, r, ttl_ms, mode, timeout_ms, is_wait, cb, ud, id);
    int order[DLOCK_MULTI_MAX], first[DLOCK_MULTI_MAX + 1];
    int ng = redlock ? one_each(r, order, first) : group(&c->proto, r, order, first);
    if (ng < 0)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    if (ng == 1 && !redlock)
        return dl_kacquire_start(e, r, ttl_ms, mode, timeout_ms, is_wait, cb, ud, id);
    dl_aop *op = dl_aop_new(e, DL_AOP_ACQUIRE, cb, ud);
    if (op == NULL || m_make(op, r, ng, order, first) != DLOCK_OK ||
        (op->name = strdup(r->names[0])) == NULL) {
        if (op != NULL)
            dl_aop_discard(op);
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    op->name_len = r->lens[0];
    M(op)->redlock = redlock;
    op->on_cancel = m_cancel;
    op->ttl_ms = ttl_ms;
    op->mode = mode;
    op->is_wait = is_wait;
    op->deadline_us = dl_mono_us() + timeout_ms * 1000;
    if (id != NULL)
        *id = op->id;
    start_group(op);
    dl_engine_kick(e);
    return DLOCK_OK;
}

/* ---- release and extend: every part ---- */

typedef struct pst {
    int pending;
    int extend;
} pst;

static void p_free(dl_aop *op) { free(op->kx); }

static void p_cancel(dl_aop *op) { op->cancelled = 1; /* ends once every part answered */ }

/* One part's outcome: the first failure is the op's. */
static void p_note(dl_aop *op, int rc, const char *detail, int code) {
    if (rc == DLOCK_OK || op->status != DLOCK_OK)
        return;
    op->status = rc;
    dl_seterr(&op->x, rc, "%s", detail);
    op->x.code = code;
}

static void p_end(dl_aop *op) {
    pst *p = op->kx;
    dlock_lock *l = op->lock;
    int rc = op->status;
    op->status = DLOCK_OK;
    if (!p->extend) {
        atomic_store(&l->valid_until_us, 0);
        atomic_store(&l->released, 1);
        if (rc == DLOCK_ENOTHELD)
            atomic_store(&l->lost, 1);
    } else if (rc == DLOCK_OK) {
        atomic_store(&l->ttl_ms, op->ttl_ms);
    }
    if (op->cancelled)
        rc = dl_seterr(&op->x, DLOCK_ECANCELED, "cancelled");
    dl_aop_finish(op, rc);
}

static void on_part(const dlock_result *res, void *ud) {
    dl_aop *op = ud;
    p_note(op, res->status, res->detail, res->code);
    if (--((pst *)op->kx)->pending == 0)
        p_end(op);
}

int dl_parts_start(dl_engine *e, dlock_lock *l, int extend, int64_t ttl_ms, dlock_done_fn cb,
                   void *ud, uint64_t *id) {
    dlock_client *c = e->c;
    if (extend && dl_check_ttl(c, ttl_ms) != DLOCK_OK)
        return DLOCK_EINVAL;
    if (extend && dl_hold_over(l, dl_mono_us()))
        return dl_seterr(&c->ctx, DLOCK_EMAXHOLD,
                         "lock '%s' has been held for max_hold_ms (%" PRId64 " ms)", l->name,
                         c->opts.max_hold_ms);
    if (atomic_load(&l->released) || (extend && atomic_load(&l->lost)))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held", l->name);
    dl_aop *op = dl_aop_new(e, extend ? DL_AOP_EXTEND : DL_AOP_RELEASE, cb, ud);
    pst *p = op != NULL ? calloc(1, sizeof *p) : NULL;
    if (p == NULL) {
        if (op != NULL)
            dl_aop_discard(op);
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    op->kx = p;
    op->on_free = p_free;
    op->on_cancel = p_cancel;
    op->lock = l;
    op->ttl_ms = ttl_ms;
    p->extend = extend;
    p->pending = 1;
    for (int i = 0; i < l->nparts; i++) {
        p->pending++;
        int rc = extend ? dl_extend_start(e, l->parts[i], ttl_ms, on_part, op, NULL)
                        : dl_release_start(e, l->parts[i], on_part, op, NULL);
        if (rc != DLOCK_OK) {
            p->pending--;
            p_note(op, rc, c->ctx.err, c->ctx.code);
        }
    }
    if (id != NULL)
        *id = op->id;
    if (--p->pending == 0)
        p_end(op);
    dl_engine_kick(e);
    return DLOCK_OK;
}
