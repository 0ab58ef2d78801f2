/* test_abi.c - public structs that grow: programs built against an older
 * (smaller) or a newer (larger) dlock.h, simulated with the *_sized calls
 * (what the header's macros call with sizeof).
 *
 * An "old program" is compiled against a truncated copy of a struct (its
 * first fields, as if the others were added later) and passes that size.
 * Its struct is malloc'ed at exactly that size, so under AddressSanitizer
 * any read or write past it fails the test; without ASan, a copy whose
 * bytes past that size hold 0xAB shows that they are neither read nor
 * written. A "new program" passes a size 16 bytes past today's struct: the
 * library zeroes what it does not know, and refuses options that set it. */
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "itest.h"

#define EXTRA 16
#define FILL 0xAB

/* The truncated copies, each checked field by field against dlock.h. */
#define SAME(old, cur, f) _Static_assert(offsetof(old, f) == offsetof(cur, f), #f)

/* dlock_options before owner_pid and max_hold_ms. */
typedef struct old_options {
    size_t struct_size;
    const char *key_prefix;
    int connect_timeout_ms, command_timeout_ms, retry_count, retry_delay_ms;
    int retry_max_delay_ms, retry_jitter_pct;
    double drift_factor;
    int fencing;
    dlock_waiting waiting;
    const char *owner_label;
    int replicas, replica_timeout_ms;
    dlock_event_fn on_event;
    void *event_userdata;
} old_options;
SAME(old_options, dlock_options, drift_factor);
SAME(old_options, dlock_options, owner_label);
SAME(old_options, dlock_options, event_userdata);
_Static_assert(sizeof(old_options) == offsetof(dlock_options, owner_pid), "old_options");

/* dlock_holder before host, label and token. */
typedef struct old_holder {
    int locked;
    int64_t pttl_ms, fence, acquired_at;
    long pid;
    int waiters;
} old_holder;
SAME(old_holder, dlock_holder, pid);
SAME(old_holder, dlock_holder, waiters);

/* dlock_info before expires_at and held. */
typedef struct old_info {
    const char *name;
    size_t name_len;
    const char *token;
    int64_t fence, acquired_at;
} old_info;
SAME(old_info, dlock_info, token);
SAME(old_info, dlock_info, acquired_at);

/* dlock_list_options before scan_count, dlock_list_stats before complete. */
typedef struct old_list_options {
    size_t struct_size;
    const char *pattern;
    int max_locks;
    int64_t timeout_ms;
} old_list_options;
SAME(old_list_options, dlock_list_options, timeout_ms);
typedef struct old_list_stats {
    int servers;
    long scan_calls;
    int found, listed, skipped;
} old_list_stats;
SAME(old_list_stats, dlock_list_stats, skipped);

/* A buffer of `size` bytes, every byte FILL. */
static void *filled(size_t size) {
    unsigned char *p = malloc(size);
    TH_CHECK(p != NULL);
    memset(p, FILL, size);
    return p;
}

static int all_bytes(const void *p, size_t from, size_t to, unsigned char v) {
    for (size_t i = from; i < to; i++)
        if (((const unsigned char *)p)[i] != v)
            return 0;
    return 1;
}

/* Options of an old program: everything before owner_pid (owner_pid and
 * max_hold_ms came later). The library must default those two. */
static void test_options_old(th_server *s, dlock_client *probe) {
    size_t old = sizeof(old_options);
    old_options *oo = malloc(old); /* exactly the old size: ASan sees overreads */
    TH_CHECK(oo != NULL);
    dlock_options_init_sized((dlock_options *)oo, old);
    TH_EQ_INT(oo->struct_size, old);
    TH_EQ_INT(oo->connect_timeout_ms, 1000);
    oo->owner_label = "abi-old";
    dlock_client *c = it_client(th_server_url(s), (dlock_options *)oo);
    free(oo);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "abi-old", 5000, &l), DLOCK_OK);
    dlock_holder h;
    IT_RC(probe, dlock_inspect(probe, "abi-old", &h), DLOCK_OK);
    TH_EQ_INT(h.pid, (long)getpid()); /* owner_pid defaulted to 0: this process */
    TH_EQ_STR(h.label, "abi-old");
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);

    /* The bytes past the old size are neither written by init nor read by
     * dlock_client_new (0xAB... would be an invalid owner_pid). */
    dlock_options *o = filled(sizeof *o);
    dlock_options_init_sized(o, old);
    TH_CHECK(all_bytes(o, old, sizeof *o, FILL));
    c = it_client(th_server_url(s), o);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    dlock_client_free(c);
    free(o);
}

/* Options of a newer program: EXTRA bytes of fields this library lacks. */
static void test_options_new(th_server *s) {
    size_t big = sizeof(dlock_options) + EXTRA;
    dlock_options *o = filled(big);
    dlock_options_init_sized(o, big);
    TH_EQ_INT(o->struct_size, big);
    TH_EQ_INT(o->command_timeout_ms, 1000);
    TH_CHECK(all_bytes(o, sizeof *o, big, 0)); /* unknown fields: 0 */
    dlock_client *c = it_client(th_server_url(s), o);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    dlock_client_free(c);

    /* A field this library does not know, set: refused, not ignored. */
    ((unsigned char *)o)[sizeof *o + 3] = 1;
    c = NULL;
    TH_EQ_INT(dlock_client_new(&c, th_server_url(s), o), DLOCK_ENOTSUP);
    TH_CHECK(c != NULL);
    TH_CHECK(strstr(dlock_client_errstr(c), "newer dlock.h") != NULL);
    IT_RC(c, dlock_client_ping(c), DLOCK_ENOTSUP); /* the client says why, again */
    dlock_client_free(c);
    free(o);

    /* Options never initialised (struct_size 0 or garbage): refused. */
    dlock_options z;
    memset(&z, 0, sizeof z);
    c = NULL;
    TH_EQ_INT(dlock_client_new(&c, th_server_url(s), &z), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(c), "dlock_options_init") != NULL);
    dlock_client_free(c);
    z.struct_size = (size_t)-1;
    TH_EQ_INT(dlock_client_new(&c, th_server_url(s), &z), DLOCK_EINVAL);
    dlock_client_free(c);
}

/* dlock_holder and dlock_info filled into old (smaller) and new (larger)
 * structs. */
static void test_out_structs(dlock_client *c) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "abi-out", 5000, &l), DLOCK_OK);

    old_holder *oh = malloc(sizeof *oh);
    TH_CHECK(oh != NULL);
    IT_RC(c, dlock_inspect_sized(c, "abi-out", (dlock_holder *)oh, sizeof *oh), DLOCK_OK);
    TH_EQ_INT(oh->locked, 1);
    TH_EQ_INT(oh->pid, (long)getpid());
    free(oh);
    size_t hbig = sizeof(dlock_holder) + EXTRA;
    dlock_holder *h = filled(hbig);
    IT_RC(c, dlock_inspect_sized(c, "abi-out", h, hbig), DLOCK_OK);
    TH_EQ_INT(h->locked, 1);
    TH_CHECK(h->host[0] != '\0');
    TH_CHECK(all_bytes(h, sizeof(dlock_holder), hbig, 0));
    free(h);
    IT_RC(c, dlock_inspect_sized(c, "abi-out", &(dlock_holder){0}, 0), DLOCK_EINVAL);

    old_info *oi = malloc(sizeof *oi);
    TH_CHECK(oi != NULL);
    TH_EQ_INT(dlock_info_get_sized(l, (dlock_info *)oi, sizeof *oi), DLOCK_OK);
    TH_EQ_STR(oi->name, "abi-out");
    TH_CHECK(oi->fence >= 1);
    free(oi);
    size_t ibig = sizeof(dlock_info) + EXTRA;
    dlock_info *in = filled(ibig);
    TH_EQ_INT(dlock_info_get_sized(l, in, ibig), DLOCK_OK);
    TH_EQ_INT(in->held, 1);
    TH_CHECK(all_bytes(in, sizeof(dlock_info), ibig, 0));
    free(in);

    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

static int count_entry(const dlock_list_entry *e, void *ud) {
    (void)e;
    ++*(int *)ud;
    return 0;
}

/* dlock_list's options and stats, old and new. */
static void test_list(dlock_client *c) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "abi-list", 5000, &l), DLOCK_OK);

    old_list_options *oo = malloc(sizeof *oo);
    old_list_stats *os = malloc(sizeof *os);
    TH_CHECK(oo != NULL && os != NULL);
    dlock_list_options_init_sized((dlock_list_options *)oo, sizeof *oo);
    TH_EQ_INT(oo->max_locks, 10000);
    oo->pattern = "abi-*";
    int n = 0;
    IT_RC(c, dlock_list_sized(c, (dlock_list_options *)oo, count_entry, &n,
                              (dlock_list_stats *)os, sizeof *os),
          DLOCK_OK);
    TH_EQ_INT(n, 1);
    TH_EQ_INT(os->listed, 1);
    free(oo);
    free(os);

    size_t obig = sizeof(dlock_list_options) + EXTRA;
    dlock_list_options *o = filled(obig);
    dlock_list_options_init_sized(o, obig);
    TH_CHECK(all_bytes(o, sizeof(dlock_list_options), obig, 0));
    o->pattern = "abi-*";
    size_t sbig = sizeof(dlock_list_stats) + EXTRA;
    dlock_list_stats *st = filled(sbig);
    n = 0;
    IT_RC(c, dlock_list_sized(c, o, count_entry, &n, st, sbig), DLOCK_OK);
    TH_EQ_INT(n, 1);
    TH_EQ_INT(st->complete, 1);
    TH_CHECK(all_bytes(st, sizeof(dlock_list_stats), sbig, 0));
    ((unsigned char *)o)[sizeof(dlock_list_options) + 1] = 7;
    IT_RC(c, dlock_list_sized(c, o, count_entry, &n, st, sbig), DLOCK_ENOTSUP);
    free(o);
    free(st);

    dlock_list_options z;
    memset(&z, 0, sizeof z);
    IT_RC(c, dlock_list(c, &z, count_entry, &n, NULL), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(c), "dlock_list_options_init") != NULL);

    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_client *c = it_client(th_server_url(s), NULL);
    test_options_old(s, c);
    test_options_new(s);
    test_out_structs(c);
    test_list(c);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_abi");
    return 0;
}
