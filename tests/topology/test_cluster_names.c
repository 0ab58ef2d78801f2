/* test_cluster_names.c - issue 10 §4, "Names and Cluster".
 *
 * Redis Cluster hashes the part of a key between its first '{' and the
 * first '}' after it, or the whole key when that part is empty. dlock's
 * keys were "<prefix>{<name>}<suffix>": a name starting with '}' made the
 * tag empty, so the 4 keys of one lock hashed whole, into different slots,
 * and every script failed with CROSSSLOT. The header promises any bytes but
 * NUL. Here, on a real 3-master Cluster, each awkward name (and a prefix
 * with a hash tag of its own) is acquired, waited on (which queues and
 * leaves the queue: all 4 keys), inspected, listed back by `dlock ls`'s
 * call and released. A prefix whose tag is empty ("p{}") cannot keep a
 * lock's keys together whatever the name: the client refuses it on a
 * Cluster URL. */
#include <stdio.h>
#include <string.h>

#include "topo.h"

static const char *const names[] = {"}x", "a{b}c", "{", "}", "}}", "x}", "{}", "}{x}", "a}b{",
                                    "plain", NULL};

struct seen {
    const char *want;
    int found;
    int total;
};

static int on_entry(const dlock_list_entry *e, void *ud) {
    struct seen *s = ud;
    s->total++;
    if (e->name_len == strlen(s->want) && memcmp(e->name, s->want, e->name_len) == 0)
        s->found++;
    return 0;
}

/* Backslash before every glob character, so the pattern is the name. */
static void glob_quote(const char *name, char *out, size_t n) {
    size_t k = 0;
    for (; *name && k + 3 < n; name++) {
        if (strchr("*?[]\\", *name))
            out[k++] = '\\';
        out[k++] = *name;
    }
    out[k] = '\0';
}

static void one(dlock_client *c, dlock_client *w, const char *prefix, const char *name) {
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, name, 20000, &l);
    if (rc != DLOCK_OK)
        TH_FAIL("prefix '%s' name '%s': acquire: %s: %s", prefix, name, dlock_err_name(rc),
                dlock_client_errstr(c));
    /* A waiter queues (:q, :qi) and leaves the queue at its deadline. */
    dlock_lock *wl = NULL;
    rc = dlock_wait(w, name, 300, 20000, &wl);
    if (rc != DLOCK_ETIMEDOUT)
        TH_FAIL("prefix '%s' name '%s': wait: %s: %s", prefix, name, dlock_err_name(rc),
                dlock_client_errstr(w));
    dlock_holder h;
    TH_EQ_INT(dlock_inspect(w, name, &h), DLOCK_OK);
    TH_EQ_INT(h.locked, 1);
    /* Listed back under its own name, with every name and with its own. */
    char quoted[64];
    glob_quote(name, quoted, sizeof quoted);
    const char *pats[2] = {NULL, quoted};
    for (int i = 0; i < 2; i++) {
        dlock_list_options lo;
        dlock_list_options_init(&lo);
        lo.pattern = pats[i];
        struct seen s = {.want = name};
        rc = dlock_list(w, &lo, on_entry, &s, NULL);
        if (rc != DLOCK_OK || s.found != 1 || (i == 1 && s.total != 1))
            TH_FAIL("prefix '%s' name '%s': list (pattern %s): %s, found %d of %d: %s", prefix,
                    name, pats[i] ? pats[i] : "*", dlock_err_name(rc), s.found, s.total,
                    dlock_client_errstr(w));
    }
    TH_EQ_INT(dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    TH_EQ_INT(dlock_inspect(w, name, &h), DLOCK_OK);
    TH_EQ_INT(h.locked, 0);
    printf("prefix '%s' name '%s': ok (fence %lld)\n", prefix, name, (long long)h.fence);
}

/* Names starting with '}' found by a pattern that starts with '}'. */
static void list_brace_glob(dlock_client *c) {
    dlock_lock *a = NULL, *b = NULL, *p = NULL;
    TH_EQ_INT(dlock_try_acquire(c, "}a", 20000, &a), DLOCK_OK);
    TH_EQ_INT(dlock_try_acquire(c, "}b", 20000, &b), DLOCK_OK);
    TH_EQ_INT(dlock_try_acquire(c, "plain", 20000, &p), DLOCK_OK);
    const char *pats[4] = {"}*", "?a", "*", "*a"};
    int want[4] = {2, 1, 3, 1};
    for (int i = 0; i < 4; i++) {
        dlock_list_options lo;
        dlock_list_options_init(&lo);
        lo.pattern = pats[i];
        struct seen s = {.want = "}a"};
        TH_EQ_INT(dlock_list(c, &lo, on_entry, &s, NULL), DLOCK_OK);
        printf("pattern '%s': %d listed\n", pats[i], s.total);
        TH_EQ_INT(s.total, want[i]);
        TH_EQ_INT(s.found, 1);
    }
    dlock_release(a), dlock_release(b), dlock_release(p);
    dlock_lock_free(a), dlock_lock_free(b), dlock_lock_free(p);
}

static dlock_client *client(const char *url, const char *prefix) {
    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = 1000;
    o.command_timeout_ms = 1000;
    o.key_prefix = prefix;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    if (rc != DLOCK_OK)
        TH_FAIL("client (prefix '%s'): %s: %s", prefix, dlock_err_name(rc),
                dlock_client_errstr(c));
    return c;
}

int main(void) {
    th_test_init(80);
    tt_cluster *k = tt_cluster_start(3);
    TH_CHECK(k != NULL);
    const char *prefixes[3] = {"dlock:", "p{x}:", "q{:"};
    for (int p = 0; p < 3; p++) {
        dlock_client *c = client(k->url, prefixes[p]);
        dlock_client *w = client(k->url, prefixes[p]);
        for (int i = 0; names[i] != NULL; i++)
            one(c, w, prefixes[p], names[i]);
        if (p == 0)
            list_brace_glob(c);
        dlock_client_free(w);
        dlock_client_free(c);
    }
    /* An empty hash tag in the prefix: refused, with the reason. */
    dlock_options o;
    dlock_options_init(&o);
    o.key_prefix = "p{}:";
    dlock_client *bad = NULL;
    int rc = dlock_client_new(&bad, k->url, &o);
    printf("prefix 'p{}:' on a Cluster: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(bad));
    TH_EQ_INT(rc, DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(bad), "hash tag") != NULL);
    dlock_client_free(bad);
    tt_cluster_free(k);
    printf("test_cluster_names: 1 passed, 0 failed\n");
    return 0;
}
