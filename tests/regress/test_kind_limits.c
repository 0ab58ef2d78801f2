/* test_kind_limits.c - issue 10 §4, "Limits only in the client", for the
 * other kinds (semaphores and read-write locks: the SEM scripts;
 * multi-locks: the MULTI scripts, src/proto/kinds.lua.h).
 *
 * The mutex scripts check their arguments (test_script_limits.c); the
 * kinds' scripts trusted theirs: one raw EVAL granted a semaphore permit
 * or a multi-lock with a 10-year lease, planted a waiter with a 10-year
 * wait and lease that the next release admitted, and extended a lease by
 * ten years. Whoever can run scripts can send any ARGV; the scripts must
 * refuse what the client would refuse (the same bounds: DLOCK_TTL_MAX, the
 * longest queue wait, the metadata and channel lengths, the permits), and
 * malformed arguments, changing nothing. Each call here is a raw EVAL of
 * the library's own script source. */
#include <stdarg.h>

#include "itest.h"
#include "proto.h"

static th_server *g_s;
static redisContext *g_rc;

#define TOK "0123456789abcdef0123456789abcdef"
#define TOK2 "fedcba9876543210fedcba9876543210"
#define TEN_YEARS "315360000000"

/* EVAL script `id` on keys[0..nkeys) with args[0..nargs). */
static redisReply *eval(enum dl_script_id id, int nkeys, char keys[][80], int nargs,
                        const char *const *args) {
    const char *argv[96];
    size_t lens[96];
    char nk[8];
    size_t slen;
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = dl_script_source(id, &slen);
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    for (int i = 0; i < 3 + nkeys + nargs; i++)
        lens[i] = i == 1 ? slen : strlen(argv[i]);
    redisReply *r = redisCommandArgv(g_rc, 3 + nkeys + nargs, argv, lens);
    TH_CHECK(r != NULL);
    return r;
}

/* A SEM script on name's five keys. */
static redisReply *sem(enum dl_script_id id, const char *name, int nargs, ...) {
    static const char *const suffix[5] = {"", ":h", ":fence", ":pq", ":pqi"};
    char keys[5][80];
    const char *args[16];
    for (int i = 0; i < 5; i++)
        snprintf(keys[i], sizeof keys[i], "dlock:{%s}%s", name, suffix[i]);
    va_list ap;
    va_start(ap, nargs);
    for (int i = 0; i < nargs; i++)
        args[i] = va_arg(ap, const char *);
    va_end(ap);
    return eval(id, 5, keys, nargs, args);
}

/* A MULTI script on the mutex keys of names a and b. */
static redisReply *multi(enum dl_script_id id, const char *a, const char *b, int nargs, ...) {
    static const char *const suffix[4] = {"", ":fence", ":q", ":qi"};
    char keys[8][80];
    const char *args[16];
    for (int i = 0; i < 8; i++)
        snprintf(keys[i], sizeof keys[i], "dlock:{%s}%s", i < 4 ? a : b, suffix[i % 4]);
    va_list ap;
    va_start(ap, nargs);
    for (int i = 0; i < nargs; i++)
        args[i] = va_arg(ap, const char *);
    va_end(ap);
    return eval(id, 8, keys, nargs, args);
}

static size_t nkeys(const char *name) {
    char pat[80];
    snprintf(pat, sizeof pat, "dlock:{%s}*", name);
    redisReply *k = th_server_cmd(g_s, "KEYS %s", pat);
    TH_CHECK(k != NULL && k->type == REDIS_REPLY_ARRAY);
    size_t n = k->elements;
    freeReplyObject(k);
    return n;
}

/* The call must be an error and leave no key of `name`. */
static void refused(const char *what, const char *name, redisReply *r) {
    size_t n = nkeys(name);
    if (r->type != REDIS_REPLY_ERROR || n != 0)
        TH_FAIL("%s: not refused (reply type %d '%s', %zu keys)", what, r->type,
                r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STRING ? r->str : "", n);
    printf("%s: %s\n", what, r->str);
    freeReplyObject(r);
}

static void error_reply(const char *what, redisReply *r) {
    if (r->type != REDIS_REPLY_ERROR)
        TH_FAIL("%s: not refused (reply type %d)", what, r->type);
    printf("%s: %s\n", what, r->str);
    freeReplyObject(r);
}

/* SEM_ACQUIRE: token, ttl, meta, fencing, enqueue, wait, acquired_ms, chan,
 * want [, floor [, queue score]]. */
static void sem_acquire_args(void) {
    refused("sem: 10-year lease", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, TEN_YEARS, "m", "1", "0", "100", "1", "-", "s3"));
    refused("sem: ttl past DLOCK_TTL_MAX", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "2073600001", "m", "1", "0", "100", "1", "-",
                "s3"));
    const char *bad_ttl[] = {"0", "-5", "abc", "", "1e9", "10.5", "0x10"};
    for (size_t i = 0; i < sizeof bad_ttl / sizeof bad_ttl[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "sem: ttl '%s'", bad_ttl[i]);
        refused(what, "s",
                sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, bad_ttl[i], "m", "1", "0", "100", "1", "-",
                    "s3"));
    }
    refused("sem: short token", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, "abc", "1000", "m", "1", "0", "100", "1", "-", "s3"));
    refused("sem: fencing 4", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "1000", "m", "4", "0", "100", "1", "-", "s3"));
    refused("sem: fencing x", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "1000", "m", "x", "0", "100", "1", "-", "s3"));
    const char *bad_score[] = {"0", "-5", "abc", "", "1e9", "9007199254740992"};
    for (size_t i = 0; i < sizeof bad_score / sizeof bad_score[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "sem: queue score '%s'", bad_score[i]);
        refused(what, "s",
                sem(DL_S_SEM_ACQUIRE, "s", 11, TOK, "1000", "m", "3", "1", "100", "1", "-", "r1",
                    "", bad_score[i]));
    }
    /* SEM_FENCE (Redlock rw locks): token, candidate 1..2^63-1. */
    const char *bad_cand[] = {"0", "-1", "abc", "", "01", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_cand / sizeof bad_cand[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "sem fence: candidate '%s'", bad_cand[i]);
        refused(what, "s", sem(DL_S_SEM_FENCE, "s", 2, TOK, bad_cand[i]));
    }
    refused("sem fence: short token", "s", sem(DL_S_SEM_FENCE, "s", 2, "abc", "5"));
    refused("sem: enqueue x", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "1000", "m", "1", "x", "100", "1", "-", "s3"));
    refused("sem: acquired_ms x", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "1000", "m", "1", "0", "100", "x", "-", "s3"));
    const char *bad_want[] = {"s0", "s1000001", "s-1", "s", "x3", "r2", "r", "s03", ""};
    for (size_t i = 0; i < sizeof bad_want / sizeof bad_want[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "sem: want '%s'", bad_want[i]);
        refused(what, "s",
                sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "1000", "m", "1", "0", "100", "1", "-",
                    bad_want[i]));
    }
    char meta[700];
    memset(meta, 'm', sizeof meta - 1);
    meta[sizeof meta - 1] = '\0';
    refused("sem: meta of 699 bytes", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 9, TOK, "1000", meta, "1", "0", "100", "1", "-", "s3"));
    refused("sem: floor abc", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 10, TOK, "1000", "m", "1", "0", "100", "1", "-", "s3",
                "abc"));
    refused("sem: floor past 2^63-1", "s",
            sem(DL_S_SEM_ACQUIRE, "s", 10, TOK, "1000", "m", "1", "0", "100", "1", "-", "s3",
                "9223372036854775808"));
}

/* A waiter planted with a 10-year wait and lease is refused, so a release
 * admits nobody; EXTEND and CANCEL refuse a 10-year lease too. */
static void sem_planted(dlock_client *c) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_sem_try_acquire(c, "p", 1, 10000, &l), DLOCK_OK);
    error_reply("sem: planted waiter, 10-year wait and lease",
                sem(DL_S_SEM_ACQUIRE, "p", 9, TOK, TEN_YEARS, "evil", "1", "1", TEN_YEARS, "1",
                    "-", "s1"));
    error_reply("sem: planted waiter, 10-year wait",
                sem(DL_S_SEM_ACQUIRE, "p", 9, TOK, "1000", "evil", "1", "1", TEN_YEARS, "1", "-",
                    "s1"));
    error_reply("sem: waiter with a channel with a space",
                sem(DL_S_SEM_ACQUIRE, "p", 9, TOK, "1000", "evil", "1", "1", "100", "1", "a b",
                    "s1"));
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{p}:pq"), 0);
    dlock_info info;
    dlock_info_get(l, &info);
    error_reply("sem: extend by 10 years", sem(DL_S_SEM_EXTEND, "p", 2, info.token, TEN_YEARS));
    error_reply("sem: extend 'soon'", sem(DL_S_SEM_EXTEND, "p", 2, info.token, "soon"));
    error_reply("sem: cancel with a 10-year lease",
                sem(DL_S_SEM_CANCEL, "p", 2, info.token, TEN_YEARS));
    error_reply("sem: release with floor x", sem(DL_S_SEM_RELEASE, "p", 2, info.token, "x"));
    TH_CHECK(th_server_int(g_s, "PTTL %s", "dlock:{p}") <= 10000);
    IT_RC(c, dlock_extend(l, 20000), DLOCK_OK); /* the client's own calls pass */
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    TH_EQ_INT(nkeys("p") <= 1, 1); /* at most the fence counter */
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{p}"), 0);
    redisReply *r = sem(DL_S_SEM_ACQUIRE, "p", 9, TOK2, "2073600000", "m", "1", "1", "3602100",
                        "1", "-", "s1000000");
    TH_EQ_INT(r->type, REDIS_REPLY_STRING); /* granted (the fence): the longest the client
                                              * itself sends */
    freeReplyObject(r);
}

/* MULTI_ACQUIRE: token, ttl, meta, fencing, enqueue, wait, acquired_ms,
 * chan [, floor]. */
static void multi_args(void) {
    refused("multi: 10-year lease", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 8, TOK, TEN_YEARS, "m", "1", "0", "100", "1",
                  "-"));
    TH_EQ_INT(nkeys("mb"), 0);
    refused("multi: ttl 0", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 8, TOK, "0", "m", "1", "0", "100", "1", "-"));
    refused("multi: upper-case token", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 8, "0123456789ABCDEF0123456789ABCDEF", "1000",
                  "m", "1", "0", "100", "1", "-"));
    refused("multi: fencing 2", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 8, TOK, "1000", "m", "2", "0", "100", "1",
                  "-"));
    refused("multi: wait 10 years", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 8, TOK, "1000", "m", "1", "1", TEN_YEARS, "1",
                  "-"));
    refused("multi: channel with a space", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 8, TOK, "1000", "m", "1", "1", "100", "1",
                  "a b"));
    refused("multi: floor abc", "ma",
            multi(DL_S_MULTI_ACQUIRE, "ma", "mb", 9, TOK, "1000", "m", "1", "0", "100", "1", "-",
                  "abc"));
    TH_EQ_INT(nkeys("mb"), 0);
}

static void multi_planted(dlock_client *c) {
    const char *names[2] = {"pa", "pb"};
    dlock_lock *l = NULL;
    IT_RC(c, dlock_multi_try_acquire(c, names, 2, 10000, &l), DLOCK_OK);
    error_reply("multi: planted waiter, 10-year wait and lease",
                multi(DL_S_MULTI_ACQUIRE, "pa", "pb", 8, TOK, TEN_YEARS, "evil", "1", "1",
                      TEN_YEARS, "1", "-"));
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{pa}:q"), 0);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{pb}:q"), 0);
    dlock_info info;
    dlock_info_get(l, &info);
    error_reply("multi: extend by 10 years",
                multi(DL_S_MULTI_EXTEND, "pa", "pb", 2, info.token, TEN_YEARS));
    error_reply("multi: cancel with a 10-year lease",
                multi(DL_S_MULTI_CANCEL, "pa", "pb", 2, info.token, TEN_YEARS));
    error_reply("multi: release with floor x",
                multi(DL_S_MULTI_RELEASE, "pa", "pb", 2, info.token, "x"));
    TH_CHECK(th_server_int(g_s, "PTTL %s", "dlock:{pa}") <= 10000);
    TH_CHECK(th_server_int(g_s, "PTTL %s", "dlock:{pb}") <= 10000);
    IT_RC(c, dlock_extend(l, 20000), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{pa}"), 0);
    redisReply *r = multi(DL_S_MULTI_ACQUIRE, "pa", "pb", 8, TOK2, "2073600000", "m", "1", "1",
                          "3602100", "1", "-");
    TH_EQ_INT(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
}

int main(void) {
    th_test_init(30);
    g_s = th_server_start(NULL);
    TH_CHECK(g_s != NULL);
    g_rc = th_connect(th_server_port(g_s), 2000);
    TH_CHECK(g_rc != NULL);
    dlock_options o;
    it_options(&o, 1000, 1000);
    dlock_client *c = it_client(th_server_url(g_s), &o);
    sem_acquire_args();
    sem_planted(c);
    multi_args();
    multi_planted(c);
    dlock_client_free(c);
    redisFree(g_rc);
    th_server_free(g_s);
    IT_PASS("test_kind_limits");
    return 0;
}
