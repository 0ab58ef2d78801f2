/* test_list.c - dlock_list: held locks under the prefix, with their
 * holders; names and prefixes with glob characters; the bounds (max_locks,
 * timeout); keys of that shape that are not locks; a Redlock set (names
 * merged, majority rule, a server down). */
#include <stdlib.h>
#include <unistd.h>

#include "itest.h"

#define MAXN 64

typedef struct seen {
    int n;
    char name[MAXN][80];
    dlock_list_entry e[MAXN];
    int stop_after; /* callback returns 1 after this many (0: never) */
} seen;

static int collect(const dlock_list_entry *e, void *ud) {
    seen *s = ud;
    TH_CHECK(s->n < MAXN);
    TH_EQ_INT((long long)strlen(e->name), (long long)e->name_len);
    snprintf(s->name[s->n], sizeof s->name[s->n], "%s", e->name);
    s->e[s->n] = *e;
    s->e[s->n].name = s->name[s->n];
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static const dlock_list_entry *find(const seen *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return &s->e[i];
    return NULL;
}

/* List with `pattern`; expect exactly the names in `want` (NULL-ended). */
static void expect_list(dlock_client *c, const char *pattern, const char *const *want) {
    dlock_list_options o;
    dlock_list_options_init(&o);
    o.pattern = pattern;
    seen s = {0};
    dlock_list_stats st;
    IT_RC(c, dlock_list(c, &o, collect, &s, &st), DLOCK_OK);
    int nw = 0;
    for (; want[nw] != NULL; nw++)
        if (find(&s, want[nw]) == NULL)
            TH_FAIL("pattern '%s': '%s' not listed (%d listed)", pattern ? pattern : "(all)",
                    want[nw], s.n);
    if (s.n != nw)
        TH_FAIL("pattern '%s': %d listed, want %d (first '%s')", pattern ? pattern : "(all)",
                s.n, nw, s.n ? s.name[0] : "");
    TH_EQ_INT(st.complete, 1);
    TH_EQ_INT(st.listed, nw);
}

static void test_patterns(th_server *s) {
    dlock_options o;
    dlock_options_init(&o);
    o.owner_label = "lister";
    dlock_client *c = it_client(th_server_url(s), &o);
    static const char *const names[] = {"a*b", "axb", "a[1]", "a1", "q?x", "back\\slash",
                                        "plain", "br}ace", NULL};
    dlock_lock *l[8];
    for (int i = 0; names[i] != NULL; i++)
        IT_RC(c, dlock_try_acquire(c, names[i], 30000, &l[i]), DLOCK_OK);
    expect_list(c, NULL, names);
    expect_list(c, "*", names);
    expect_list(c, "a\\*b", (const char *const[]){"a*b", NULL});
    expect_list(c, "a*b", (const char *const[]){"a*b", "axb", NULL});
    expect_list(c, "a\\[1\\]", (const char *const[]){"a[1]", NULL});
    expect_list(c, "a[1]", (const char *const[]){"a1", NULL});
    expect_list(c, "q\\?x", (const char *const[]){"q?x", NULL});
    expect_list(c, "back\\\\slash", (const char *const[]){"back\\slash", NULL});
    expect_list(c, "br}*", (const char *const[]){"br}ace", NULL});
    expect_list(c, "nothing*", (const char *const[]){NULL});
    /* The holder's metadata, as dlock_inspect gives it. */
    seen all = {0};
    IT_RC(c, dlock_list(c, NULL, collect, &all, NULL), DLOCK_OK);
    const dlock_list_entry *e = find(&all, "plain");
    TH_CHECK(e != NULL);
    TH_EQ_INT(e->kind, DLOCK_KIND_MUTEX);
    TH_EQ_INT(e->holders, 1);
    TH_EQ_INT(e->holder.locked, 1);
    TH_EQ_INT(e->holder.pid, (long long)getpid());
    TH_EQ_STR(e->holder.label, "lister");
    TH_CHECK(e->holder.pttl_ms > 25000 && e->holder.fence >= 1 && e->holder.acquired_at > 0);
    dlock_info info;
    dlock_info_get(l[6], &info);
    TH_EQ_STR(e->holder.token, info.token);
    /* Released: no longer listed; the fence counter stays but is not a lock. */
    IT_RC(c, dlock_release(l[6]), DLOCK_OK);
    expect_list(c, "plain", (const char *const[]){NULL});
    for (int i = 0; names[i] != NULL; i++)
        dlock_lock_free(l[i]);
    dlock_client_free(c);
}

/* A prefix with glob characters is matched literally: "t*[x]:" must not
 * match the keys of prefix "tAx:". */
static void test_prefix(th_server *s) {
    dlock_options o;
    dlock_options_init(&o);
    o.key_prefix = "t*[x]:";
    dlock_client *a = it_client(th_server_url(s), &o);
    o.key_prefix = "tAx:";
    dlock_client *b = it_client(th_server_url(s), &o);
    dlock_lock *la, *lb;
    IT_RC(a, dlock_try_acquire(a, "p1", 30000, &la), DLOCK_OK);
    IT_RC(b, dlock_try_acquire(b, "p2", 30000, &lb), DLOCK_OK);
    expect_list(a, NULL, (const char *const[]){"p1", NULL});
    expect_list(b, NULL, (const char *const[]){"p2", NULL});
    dlock_release(la);
    dlock_release(lb);
    dlock_lock_free(la);
    dlock_lock_free(lb);
    dlock_client_free(a);
    dlock_client_free(b);
}

static void test_bounds(th_server *s) {
    dlock_client *c = it_client(th_server_url(s), NULL);
    dlock_lock *l[10];
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "bound-%d", i);
        IT_RC(c, dlock_try_acquire(c, name, 30000, &l[i]), DLOCK_OK);
    }
    /* A key of the lock's shape that is not a lock is skipped. */
    freeReplyObject(th_server_cmd(s, "SET %s %s", "dlock:{bound-x}", "not a lock"));
    dlock_list_options o;
    dlock_list_options_init(&o);
    o.pattern = "bound-*";
    seen sn = {0};
    dlock_list_stats st;
    IT_RC(c, dlock_list(c, &o, collect, &sn, &st), DLOCK_OK);
    TH_EQ_INT(sn.n, 10);
    TH_EQ_INT(st.skipped, 1);
    TH_EQ_INT(st.found, 11);
    TH_EQ_INT(st.complete, 1);
    TH_EQ_INT(st.servers, 1);
    /* max_locks */
    o.max_locks = 4;
    memset(&sn, 0, sizeof sn);
    IT_RC(c, dlock_list(c, &o, collect, &sn, &st), DLOCK_OK);
    TH_CHECK(sn.n <= 4 && st.found == 4);
    TH_EQ_INT(st.complete, 0);
    /* The callback stops it. */
    o.max_locks = 10000;
    memset(&sn, 0, sizeof sn);
    sn.stop_after = 3;
    IT_RC(c, dlock_list(c, &o, collect, &sn, &st), DLOCK_OK);
    TH_EQ_INT(sn.n, 3);
    TH_EQ_INT(st.complete, 0);
    /* The timeout: many small SCAN pages over many keys cannot finish in
     * 30 ms; the call ends near the deadline, incomplete. */
    freeReplyObject(th_server_cmd(s, "DEBUG POPULATE %d %s", 50000, "filler"));
    o.scan_count = 1;
    o.timeout_ms = 30;
    memset(&sn, 0, sizeof sn);
    long long t0 = th_now_us();
    IT_RC(c, dlock_list(c, &o, collect, &sn, &st), DLOCK_OK);
    long long ms = (th_now_us() - t0) / 1000;
    printf("timeout 30 ms: returned after %lld ms, %ld SCAN calls, complete %d\n", ms,
           st.scan_calls, st.complete);
    TH_EQ_INT(st.complete, 0);
    TH_CHECK(ms < 30 + 1000);
    /* Bad options. */
    o.timeout_ms = 0;
    IT_RC(c, dlock_list(c, &o, collect, &sn, NULL), DLOCK_EINVAL);
    dlock_list_options_init(&o);
    o.pattern = "";
    IT_RC(c, dlock_list(c, &o, collect, &sn, NULL), DLOCK_EINVAL);
    IT_RC(c, dlock_list(c, NULL, NULL, NULL, NULL), DLOCK_EINVAL);
    for (int i = 0; i < 10; i++)
        dlock_lock_free(l[i]);
    dlock_client_free(c);
}

/* Redlock: a lock on all three servers is listed once; one held on a
 * single server (a minority) is not; one server down changes nothing; two
 * down is no quorum. */
static void test_redlock(void) {
    th_server *s[3];
    for (int i = 0; i < 3; i++)
        TH_CHECK((s[i] = th_server_start(NULL)) != NULL);
    char url[512];
    it_redlock_url(url, sizeof url, s, 3);
    dlock_options o;
    it_options(&o, 300, 500);
    dlock_client *c = it_client(url, &o);
    dlock_client *one = it_client(th_server_url(s[1]), &o);
    dlock_lock *l, *m;
    IT_RC(c, dlock_try_acquire(c, "majority", 30000, &l), DLOCK_OK);
    IT_RC(one, dlock_try_acquire(one, "minority", 30000, &m), DLOCK_OK);
    dlock_list_stats st;
    expect_list(c, NULL, (const char *const[]){"majority", NULL});
    seen sn = {0};
    IT_RC(c, dlock_list(c, NULL, collect, &sn, &st), DLOCK_OK);
    TH_EQ_INT(st.servers, 3);
    TH_EQ_INT(st.found, 2);
    TH_EQ_INT(th_server_kill(s[0]), 0);
    expect_list(c, NULL, (const char *const[]){"majority", NULL});
    TH_EQ_INT(th_server_kill(s[2]), 0);
    IT_RC(c, dlock_list(c, NULL, collect, &sn, &st), DLOCK_ENOQUORUM);
    dlock_lock_free(l);
    dlock_lock_free(m);
    dlock_client_free(c);
    dlock_client_free(one);
    for (int i = 0; i < 3; i++)
        th_server_free(s[i]);
}

/* A paused server: the listing (its SCAN driven by the blocking engine)
 * ends at its own deadline, incomplete, not at the command timeout. */
static void test_paused(void) {
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options co;
    it_options(&co, 300, 5000);
    dlock_client *c = it_client(th_server_url(s), &co);
    dlock_lock *l;
    IT_RC(c, dlock_try_acquire(c, "held", 30000, &l), DLOCK_OK);
    TH_CHECK(th_server_pause(s) == 0);
    dlock_list_options o;
    dlock_list_options_init(&o);
    o.timeout_ms = 300;
    seen sn;
    memset(&sn, 0, sizeof sn);
    dlock_list_stats st;
    long long t0 = th_now_us();
    int rc = dlock_list(c, &o, collect, &sn, &st);
    long long ms = (th_now_us() - t0) / 1000;
    printf("paused server, timeout 300 ms: %s after %lld ms\n", dlock_err_name(rc), ms);
    TH_EQ_INT(rc, DLOCK_OK);
    TH_EQ_INT(st.complete, 0);
    TH_CHECK(ms >= 250 && ms < 300 + 700);
    TH_CHECK(th_server_resume(s) == 0);
    IT_RC(c, dlock_list(c, &o, collect, &sn, &st), DLOCK_OK);
    TH_EQ_INT(st.complete, 1);
    TH_EQ_INT(st.listed, 1);
    dlock_lock_free(l);
    dlock_client_free(c);
    th_server_free(s);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    test_patterns(s);
    test_prefix(s);
    test_bounds(s);
    th_server_free(s);
    test_redlock();
    test_paused();
    IT_PASS("test_list");
    return 0;
}
