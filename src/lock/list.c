/* list.c - dlock_list: the locks held under the client's prefix, on every
 * server that holds locks.
 *
 * Each server is scanned over a connection of its own (a Cluster map
 * reload during the inspections may drop the topology's node connections),
 * a pipe that the client's blocking engine drives like its own,
 * with SCAN MATCH on the main-key pattern that proto builds. Every name a
 * page brings is inspected at once through the quorum layer (one round
 * trip, the dlock_inspect rules), so the whole listing runs under one
 * deadline without a phase that could starve another. A set of the names
 * seen merges SCAN's repeats and, on a Redlock set, the servers' copies of
 * one lock. */
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "clock.h"
#include "kinds.h"
#include "pipe.h"
#include "resp.h"
#include "strset.h"

#define LIST_MAX_LOCKS 1000000
#define LIST_MAX_COUNT 10000

typedef struct list_run {
    dlock_client *c;
    const dlock_list_options *o;
    dlock_list_fn fn;
    void *ud;
    dlock_list_stats *st;
    dl_strset seen;
    dl_scan_pass pass[2]; /* SCAN MATCH patterns (proto's dl_scan_plan) */
    int npass;
    const dl_scan_pass *cur; /* the pass under way */
    char count[16];
    size_t count_len;
    int64_t deadline_us;
    int stop; /* max_locks, the deadline or the callback ended the listing */
} list_run;

/* Where one server is, copied out of the topology. */
typedef struct list_addr {
    char host[sizeof(((dl_conn *)0)->host)];
    char path[sizeof(((dl_conn *)0)->path)];
    int port, is_unix;
} list_addr;

static void default_list_options(dlock_list_options *o) {
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->pattern = NULL;
    o->max_locks = 10000;
    o->timeout_ms = 10000;
    o->scan_count = 1000;
}

void dlock_list_options_init_sized(dlock_list_options *opts, size_t size) {
    dlock_list_options d;
    default_list_options(&d);
    dl_abi_init_sized(opts, size, &d, sizeof d);
}

static int check_list_options(dlock_client *c, const dlock_list_options *o) {
    if (o->max_locks < 1 || o->max_locks > LIST_MAX_LOCKS)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "max_locks must be 1..%d", LIST_MAX_LOCKS);
    if (o->timeout_ms < 1 || o->timeout_ms > DLOCK_TTL_MAX)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "timeout_ms must be 1..%lld",
                         (long long)DLOCK_TTL_MAX);
    if (o->scan_count < 1 || o->scan_count > LIST_MAX_COUNT)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "scan_count must be 1..%d", LIST_MAX_COUNT);
    if (o->pattern != NULL) {
        size_t n = strnlen(o->pattern, 2 * DLOCK_NAME_MAX + 1);
        if (n == 0 || n > 2 * DLOCK_NAME_MAX)
            return dl_seterr(&c->ctx, DLOCK_EINVAL, "pattern must have 1..%d bytes",
                             2 * DLOCK_NAME_MAX);
    }
    return DLOCK_OK;
}

/* True once the listing's deadline has passed (an error then only means
 * that a call was cut: the listing is incomplete, not failed). */
static int past_deadline(const list_run *r) {
    return dl_mono_us() >= r->deadline_us;
}

/* Inspect one name found by SCAN and pass it on if held. */
static int list_one(list_run *r, const char *name, size_t len) {
    char buf[DLOCK_NAME_MAX + 1];
    memcpy(buf, name, len);
    buf[len] = '\0';
    dlock_list_entry e;
    memset(&e, 0, sizeof e);
    int rc = dl_inspect(r->c, buf, len, &e.holder);
    e.kind = DLOCK_KIND_MUTEX;
    e.holders = 1;
    if ((rc == DLOCK_ESERVER || rc == DLOCK_ENOQUORUM) && r->c->ctx.code == DL_SRV_WRONGTYPE) {
        /* Not a mutex (on Redlock every master refuses it, so there is no
         * majority): a semaphore or an rw lock (only rw on Redlock), or
         * not dlock's at all. */
        e.holders = 0;
        rc = dl_holders_entry(r->c, buf, len, &e);
        e.holder.locked = e.holders > 0;
    }
    if ((rc == DLOCK_ESERVER || rc == DLOCK_ENOQUORUM) && r->c->ctx.code == DL_SRV_WRONGTYPE) {
        r->st->skipped++; /* a key of that shape, but not a lock */
        return DLOCK_OK;
    }
    if (rc != DLOCK_OK) {
        r->stop = past_deadline(r);
        return r->stop ? DLOCK_OK : rc;
    }
    if (!e.holder.locked)
        return DLOCK_OK; /* released since the scan saw it */
    e.name = buf;
    e.name_len = len;
    r->st->listed++;
    if (r->fn(&e, r->ud) != 0)
        r->stop = 1;
    return DLOCK_OK;
}

/* The names in one page of SCAN keys. */
static int list_page(list_run *r, const redisReply *keys) {
    for (size_t i = 0; i < keys->elements && !r->stop; i++) {
        const redisReply *k = keys->element[i];
        const char *name;
        size_t len;
        int is = k->type == REDIS_REPLY_STRING
                     ? dl_key_name(&r->c->proto, k->str, k->len, r->cur->accept, &name, &len)
                     : 0;
        if (is < 0)
            continue; /* a lock key the other pass lists */
        if (is == 0) {
            r->st->skipped++;
            continue;
        }
        int added = dl_strset_add(&r->seen, name, len);
        if (added < 0)
            return dl_seterr(&r->c->ctx, DLOCK_ENOMEM, "out of memory");
        if (added == 0)
            continue; /* SCAN repeats, or another Redlock server's copy */
        if (r->st->found == r->o->max_locks) {
            r->stop = 1;
            break;
        }
        r->st->found++;
        int rc = list_one(r, name, len);
        if (rc != DLOCK_OK)
            return rc;
    }
    return DLOCK_OK;
}

/* A SCAN reply is {cursor (decimal string), {key...}}. */
static int scan_shape_ok(const redisReply *rep) {
    const redisReply *cur = dl_elem(rep, 0), *keys = dl_elem(rep, 1);
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || cur == NULL || keys == NULL ||
        cur->type != REDIS_REPLY_STRING || keys->type != REDIS_REPLY_ARRAY)
        return 0;
    return cur->len >= 1 && cur->len <= 20 && strspn(cur->str, "0123456789") == cur->len;
}

/* One SCAN round trip on p, driven by the blocking engine; on DLOCK_OK
 * *rep is the reply, which the caller frees. */
static int scan_call(list_run *r, dl_pipe *p, const char *cursor, redisReply **rep) {
    dlock_client *c = r->c;
    const dl_conn *cn = &p->conn;
    const char *argv[6] = {"SCAN", cursor, "MATCH", r->cur->pat, "COUNT", r->count};
    size_t lens[6] = {4, strlen(cursor), 5, r->cur->len, 5, r->count_len};
    int64_t d = dl_mono_us() + (int64_t)c->opts.command_timeout_ms * 1000;
    if (cn->state != DL_CONN_READY)
        d += (int64_t)c->opts.connect_timeout_ms * 1000;
    r->st->scan_calls++;
    int rc = dl_block_pipe_command(c, p, 6, argv, lens, dl_capped(&c->ctx, d), rep);
    if (rc != DLOCK_OK)
        return dl_seterr(&c->ctx, rc, "scan %s: %s", cn->addr, cn->err);
    if ((*rep)->type == REDIS_REPLY_ERROR) {
        dl_seterr(&c->ctx, DLOCK_ESERVER, "scan %s: %.200s", cn->addr, (*rep)->str);
        c->ctx.code = dl_srv_code(*rep);
        rc = DLOCK_ESERVER;
    } else if (!scan_shape_ok(*rep)) {
        rc = dl_seterr(&c->ctx, DLOCK_EPROTO, "unexpected reply to SCAN from %s", cn->addr);
    }
    if (rc != DLOCK_OK) {
        freeReplyObject(*rep);
        *rep = NULL;
    }
    return rc;
}

/* SCAN one server to its end with one pass's pattern (or until the
 * listing stops). */
static int scan_pass(list_run *r, dl_pipe *p) {
    char cursor[21] = "0";
    int rc = DLOCK_OK;
    do {
        if (past_deadline(r)) {
            r->stop = 1;
            break;
        }
        redisReply *rep;
        rc = scan_call(r, p, cursor, &rep);
        if (rc != DLOCK_OK) {
            r->stop = past_deadline(r);
            rc = r->stop ? DLOCK_OK : rc;
            break;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        rc = list_page(r, rep->element[1]);
        freeReplyObject(rep);
    } while (rc == DLOCK_OK && !r->stop && strcmp(cursor, "0") != 0);
    return rc;
}

static int scan_server(list_run *r, const list_addr *a) {
    dl_pipe p;
    dl_pipe_init(&p, a->host, a->port, a->is_unix ? a->path : NULL, &r->c->cfg);
    int rc = DLOCK_OK;
    for (int i = 0; i < r->npass && rc == DLOCK_OK && !r->stop; i++) {
        r->cur = &r->pass[i];
        rc = scan_pass(r, &p);
    }
    dl_pipe_close(&p, DLOCK_ECANCELED, "listing done");
    return rc;
}

/* The servers' addresses, copied: each scan makes a connection of its own. */
static int list_servers(dlock_client *c, list_addr **out, int *n) {
    const dl_conn **m = malloc(DL_TOPO_MAX_MASTERS * sizeof *m);
    if (m == NULL)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    int rc = dl_block_masters(c, c->ctx.cap_us, m, DL_TOPO_MAX_MASTERS, n);
    *out = rc == DLOCK_OK ? calloc((size_t)(*n > 0 ? *n : 1), sizeof **out) : NULL;
    if (rc == DLOCK_OK && *out == NULL)
        rc = dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    for (int i = 0; rc == DLOCK_OK && i < *n; i++) {
        list_addr *a = &(*out)[i];
        memcpy(a->host, m[i]->host, sizeof a->host);
        memcpy(a->path, m[i]->path, sizeof a->path);
        a->port = m[i]->port;
        a->is_unix = m[i]->is_unix;
    }
    free(m);
    return rc;
}

/* Scan every server. On a Redlock set a minority may fail: a lock held by
 * a majority is on at least one server of every majority. */
static int scan_all(list_run *r, const list_addr *addrs, int n) {
    int redlock = r->c->url.kind == DL_URL_REDLOCK, failed = 0, rc = DLOCK_OK;
    char first_err[sizeof r->c->ctx.err] = "";
    for (int i = 0; i < n && !r->stop; i++) {
        r->st->servers++;
        int src = scan_server(r, &addrs[i]);
        if (src == DLOCK_OK)
            continue;
        if (!redlock || src == DLOCK_ENOMEM)
            return src;
        if (failed++ == 0)
            memcpy(first_err, r->c->ctx.err, sizeof first_err);
        if (failed > n - (n / 2 + 1))
            rc = dl_seterr(&r->c->ctx, DLOCK_ENOQUORUM, "list: fewer than a majority of the "
                           "servers could be scanned: %s", first_err);
        if (rc != DLOCK_OK)
            return rc;
    }
    return DLOCK_OK;
}

/* dlock_list with options copied in and the stats in the library's own
 * struct. */
static int list_locks(dlock_client *c, const dlock_list_options *opts, dlock_list_fn fn,
                      void *userdata, dlock_list_stats *stats) {
    dlock_list_options o;
    list_run r = {.c = c, .o = &o, .fn = fn, .ud = userdata, .st = stats};
    default_list_options(&o);
    int rc = dl_abi_read_options(&c->ctx, &o, sizeof o, opts, "list options",
                                 "dlock_list_options_init");
    if (rc != DLOCK_OK)
        return rc;
    if (fn == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "fn is NULL");
    rc = check_list_options(c, r.o);
    if (rc != DLOCK_OK)
        return rc;
    const char *glob = r.o->pattern ? r.o->pattern : "*";
    if (dl_scan_plan(&c->proto, glob, strlen(glob), r.pass, &r.npass) != DLOCK_OK)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    r.count_len = (size_t)snprintf(r.count, sizeof r.count, "%d", r.o->scan_count);
    r.deadline_us = dl_mono_us() + r.o->timeout_ms * 1000;
    int64_t saved_cap = c->ctx.cap_us;
    c->ctx.cap_us = r.deadline_us;
    list_addr *addrs = NULL;
    int n = 0;
    rc = list_servers(c, &addrs, &n);
    if (rc == DLOCK_OK)
        rc = scan_all(&r, addrs, n);
    c->ctx.cap_us = saved_cap;
    r.st->complete = rc == DLOCK_OK && !r.stop;
    free(addrs);
    for (int i = 0; i < r.npass; i++)
        free(r.pass[i].pat);
    dl_strset_free(&r.seen);
    if (rc == DLOCK_OK)
        dl_clearerr(&c->ctx);
    return rc;
}

int dlock_list_sized(dlock_client *c, const dlock_list_options *opts, dlock_list_fn fn,
                     void *userdata, dlock_list_stats *stats, size_t stats_size) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (stats != NULL && (stats_size < 1 || stats_size > DL_ABI_MAX_SIZE))
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "stats_size %zu is not 1..%d", stats_size,
                         DL_ABI_MAX_SIZE);
    dlock_list_stats st;
    memset(&st, 0, sizeof st);
    rc = list_locks(c, opts, fn, userdata, &st);
    if (stats != NULL)
        dl_abi_copy_out(stats, stats_size, &st, sizeof st);
    return rc;
}
