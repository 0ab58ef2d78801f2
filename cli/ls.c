/* ls.c - `dlock ls [PATTERN]`: the locks held now under the key prefix, on
 * every server (dlock_list does the scanning), sorted by name, as a table,
 * one JSON document (--json) or OpenMetrics text (--format openmetrics).
 * Bounded by --limit (locks inspected) and --timeout (the whole listing);
 * an incomplete listing says so (stderr, "complete": false,
 * dlock_ls_complete 0) and still exits 0. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define LS_DEFAULT_LIMIT 10000
#define LS_DEFAULT_TIMEOUT_MS 10000

typedef struct ls_item {
    char *name;
    dlock_holder h;
    int holders;
    dlock_kind kind;
} ls_item;

typedef struct ls_list {
    ls_item *v;
    size_t n, cap;
    int nomem;
} ls_list;

static int add_item(const dlock_list_entry *e, void *ud) {
    ls_list *l = ud;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        ls_item *nv = realloc(l->v, nc * sizeof *nv);
        if (nv == NULL) {
            l->nomem = 1;
            return 1;
        }
        l->v = nv;
        l->cap = nc;
    }
    ls_item *it = &l->v[l->n];
    it->name = strdup(e->name);
    if (it->name == NULL) {
        l->nomem = 1;
        return 1;
    }
    it->h = e->holder;
    it->holders = e->holders;
    it->kind = e->kind;
    l->n++;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const ls_item *)a)->name, ((const ls_item *)b)->name);
}

static const char *kind_name(dlock_kind k) {
    return k == DLOCK_KIND_MUTEX       ? "mutex"
           : k == DLOCK_KIND_SEMAPHORE ? "semaphore"
           : k == DLOCK_KIND_RW        ? "rw"
                                       : "unknown";
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long the holder has held it by our clock (0 if its clock is ahead). */
static int64_t held_for(const dlock_holder *h, int64_t now) {
    return h->acquired_at > 0 && now > h->acquired_at ? now - h->acquired_at : 0;
}

static void print_text(const ls_list *l) {
    int64_t now = wall_ms();
    int w = 4;
    char name[160], host[128], label[96], who[300], d1[32], d2[32];
    for (size_t i = 0; i < l->n; i++) {
        int k = (int)strlen(cli_safe(l->v[i].name, name, sizeof name));
        w = k > w ? k : w;
    }
    printf("%-*s  %-9s  %-36s  %-10s  %-10s  %7s  %10s\n", w, "NAME", "KIND", "HOLDERS",
           "HELD FOR", "LEASE LEFT", "WAITERS", "LAST FENCE");
    for (size_t i = 0; i < l->n; i++) {
        const dlock_holder *h = &l->v[i].h;
        cli_safe(h->host, host, sizeof host);
        char many[24] = "";
        if (l->v[i].holders > 1) /* a semaphore or rw lock: the first of them */
            snprintf(many, sizeof many, "%d: ", l->v[i].holders);
        if (h->label[0])
            snprintf(who, sizeof who, "%s%s pid %ld \"%s\"", many, host, h->pid,
                     cli_safe(h->label, label, sizeof label));
        else
            snprintf(who, sizeof who, "%s%s pid %ld", many, host, h->pid);
        printf("%-*s  %-9s  %-36s  %-10s  %-10s  %7d  %10" PRId64 "\n", w,
               cli_safe(l->v[i].name, name, sizeof name), kind_name(l->v[i].kind), who,
               cli_dur(held_for(h, now), d1, sizeof d1), cli_dur(h->pttl_ms, d2, sizeof d2),
               h->waiters, h->fence);
    }
}

static void print_json(const ls_list *l, const dlock_list_stats *st) {
    int64_t now = wall_ms();
    fputs("{\"locks\":[", stdout);
    for (size_t i = 0; i < l->n; i++) {
        const dlock_holder *h = &l->v[i].h;
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        json_string(stdout, l->v[i].name);
        printf(",\"kind\":\"%s\",\"holders\":[{\"host\":", kind_name(l->v[i].kind));
        json_string(stdout, h->host);
        printf(",\"pid\":%ld,\"label\":", h->pid);
        if (h->label[0])
            json_string(stdout, h->label);
        else
            fputs("null", stdout);
        printf(",\"fence\":%" PRId64 ",\"acquired_at\":%" PRId64 ",\"token\":\"%s\"}]", h->fence,
               h->acquired_at, h->token);
        printf(",\"holder_count\":%d", l->v[i].holders); /* holders: the first of them */
        printf(",\"held_for_ms\":%" PRId64 ",\"lease_left_ms\":%" PRId64
               ",\"waiters\":%d,\"last_fence\":%" PRId64 "}",
               held_for(h, now), h->pttl_ms, h->waiters, h->fence);
    }
    printf("],\"count\":%zu,\"complete\":%s,\"servers\":%d,\"scan_calls\":%ld}\n", l->n,
           st->complete ? "true" : "false", st->servers, st->scan_calls);
}

/* One sample per lock of a family; value() gives the number as text. */
static void om_lock_family(const ls_list *l, const char *metric, const char *help,
                           void (*value)(const ls_item *, int64_t, char *, size_t)) {
    int64_t now = wall_ms();
    char v[48];
    om_family(stdout, metric, help);
    for (size_t i = 0; i < l->n; i++) {
        value(&l->v[i], now, v, sizeof v);
        printf("%s{name=", metric);
        om_label_value(stdout, l->v[i].name);
        printf(",kind=\"%s\"} %s\n", kind_name(l->v[i].kind), v);
    }
}

static void v_held(const ls_item *it, int64_t now, char *v, size_t n) {
    (void)now;
    snprintf(v, n, "%d", it->h.locked);
}
static void v_holders(const ls_item *it, int64_t now, char *v, size_t n) {
    (void)now;
    snprintf(v, n, "%d", it->holders);
}
static void v_waiters(const ls_item *it, int64_t now, char *v, size_t n) {
    (void)now;
    snprintf(v, n, "%d", it->h.waiters);
}
static void v_lease(const ls_item *it, int64_t now, char *v, size_t n) {
    (void)now;
    snprintf(v, n, "%.3f", (double)it->h.pttl_ms / 1000.0);
}
static void v_held_for(const ls_item *it, int64_t now, char *v, size_t n) {
    snprintf(v, n, "%.3f", (double)held_for(&it->h, now) / 1000.0);
}
static void v_fence(const ls_item *it, int64_t now, char *v, size_t n) {
    (void)now;
    snprintf(v, n, "%" PRId64, it->h.fence);
}

static void print_openmetrics(const ls_list *l, const dlock_list_stats *st) {
    om_lock_family(l, "dlock_lock_held", "1 while the lock is held.", v_held);
    om_lock_family(l, "dlock_lock_holders", "Processes holding the lock.", v_holders);
    om_lock_family(l, "dlock_lock_waiters", "Processes queued for the lock.", v_waiters);
    om_lock_family(l, "dlock_lock_lease_left_seconds", "Lease left before the lock expires.",
                   v_lease);
    om_lock_family(l, "dlock_lock_held_seconds", "How long the holder has held the lock.",
                   v_held_for);
    om_lock_family(l, "dlock_lock_last_fence", "The last fencing token issued for the lock.",
                   v_fence);
    om_family(stdout, "dlock_lock_holder_info", "Who holds the lock (host, pid, label); always 1.");
    for (size_t i = 0; i < l->n; i++) {
        const dlock_holder *h = &l->v[i].h;
        char pid[24];
        snprintf(pid, sizeof pid, "%ld", h->pid);
        fputs("dlock_lock_holder_info{name=", stdout);
        om_label_value(stdout, l->v[i].name);
        printf(",kind=\"%s\",host=", kind_name(l->v[i].kind));
        om_label_value(stdout, h->host);
        printf(",pid=\"%s\",label=", pid);
        om_label_value(stdout, h->label);
        fputs("} 1\n", stdout);
    }
    om_family(stdout, "dlock_ls_locks", "Locks listed by dlock ls.");
    printf("dlock_ls_locks %zu\n", l->n);
    om_family(stdout, "dlock_ls_complete",
              "1 if the listing covered every lock, 0 if --limit or --timeout cut it.");
    printf("dlock_ls_complete %d\n# EOF\n", st->complete);
}

/* The listing was cut short: say why on stderr (the output still stands). */
static void incomplete(const cli *c, const dlock_list_stats *st, int limit) {
    char d[32];
    if (st->found >= limit)
        cli_msg("listing incomplete: stopped after --limit %d locks (%d servers scanned)", limit,
                st->servers);
    else
        cli_msg("listing incomplete: --timeout of %s reached after %ld SCAN calls",
                cli_dur((c->given & OPT_WAIT) ? c->wait_ms : LS_DEFAULT_TIMEOUT_MS, d,
                        sizeof d),
                st->scan_calls);
}

int cli_ls(cli *c, const char *pattern) {
    const char *fmt = c->format ? c->format : c->json ? "json" : "text";
    dlock_list_options o;
    dlock_list_options_init(&o);
    o.pattern = pattern;
    o.max_locks = c->limit > 0 ? c->limit : LS_DEFAULT_LIMIT;
    o.timeout_ms = (c->given & OPT_WAIT) && c->wait_ms > 0 ? c->wait_ms : LS_DEFAULT_TIMEOUT_MS;
    ls_list l = {0};
    dlock_list_stats st;
    int rc = dlock_list(c->client, &o, add_item, &l, &st);
    if (rc == DLOCK_OK && l.nomem)
        rc = DLOCK_ENOMEM;
    if (rc != DLOCK_OK) {
        for (size_t i = 0; i < l.n; i++)
            free(l.v[i].name);
        free(l.v);
        return cli_fail(c, rc, "list the locks");
    }
    if (l.n > 1) /* qsort wants a non-NULL base even for 0 elements */
        qsort(l.v, l.n, sizeof *l.v, by_name);
    if (strcmp(fmt, "json") == 0)
        print_json(&l, &st);
    else if (strcmp(fmt, "openmetrics") == 0)
        print_openmetrics(&l, &st);
    else
        print_text(&l);
    if (!st.complete)
        incomplete(c, &st, o.max_locks);
    else if (c->verbose)
        cli_msg("%zu locks held; %d servers scanned with %ld SCAN calls", l.n, st.servers,
                st.scan_calls);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].name);
    free(l.v);
    return fflush(stdout) == 0 ? 0 : EXIT_INTERNAL;
}
