/* test_script_limits.c - issue 10 §4, "Limits only in the client".
 *
 * The scripts trusted their arguments: one raw EVALSHA, as anyone allowed
 * to run scripts can send, planted a waiter with a 10-year wait and a
 * 10-year lease; the next release handed it the lock, and it would have
 * been held (by nobody) for ten years. The client checks its arguments,
 * but the scripts are the last line: they must refuse what the client
 * would refuse (the same bounds: DLOCK_TTL_MAX, the longest queue wait),
 * and non-numeric or malformed arguments, changing nothing. Each call here
 * is a raw EVAL of the library's own script source, except one that runs
 * the mutex scripts' inline checks and the kinds' num/token side by side
 * on tricky inputs: they must agree. */
#include <stdarg.h>

#include "itest.h"
#include "proto.h"
#include "scripts.lua.h"

static th_server *g_s;
static redisContext *g_rc;

#define TOK "0123456789abcdef0123456789abcdef"
#define TOK2 "fedcba9876543210fedcba9876543210"
#define TEN_YEARS "315360000000"

/* EVAL script `id` on the keys of lock `name` with the given ARGV. */
static redisReply *run(enum dl_script_id id, const char *name, int nargs, ...) {
    const char *argv[24];
    size_t lens[24];
    char keys[4][64];
    const char *suffix[4] = {"", ":fence", ":q", ":qi"};
    size_t slen;
    argv[0] = "EVAL";
    argv[1] = dl_script_source(id, &slen);
    argv[2] = "4";
    for (int i = 0; i < 4; i++) {
        snprintf(keys[i], sizeof keys[i], "dlock:{%s}%s", name, suffix[i]);
        argv[3 + i] = keys[i];
    }
    va_list ap;
    va_start(ap, nargs);
    for (int i = 0; i < nargs; i++)
        argv[7 + i] = va_arg(ap, const char *);
    va_end(ap);
    for (int i = 0; i < 7 + nargs; i++)
        lens[i] = i == 1 ? slen : strlen(argv[i]);
    redisReply *r = redisCommandArgv(g_rc, 7 + nargs, argv, lens);
    TH_CHECK(r != NULL);
    return r;
}

/* The call must be refused and must change nothing under `name`. */
static void refused(const char *what, const char *name, redisReply *r) {
    char pat[64];
    snprintf(pat, sizeof pat, "dlock:{%s}*", name);
    redisReply *k = th_server_cmd(g_s, "KEYS %s", pat);
    TH_CHECK(k != NULL);
    size_t nkeys = k->elements;
    freeReplyObject(k);
    if (r->type != REDIS_REPLY_ERROR || nkeys != 0)
        TH_FAIL("%s: not refused (reply type %d '%s', %zu keys)", what, r->type,
                r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STRING ? r->str : "",
                nkeys);
    printf("%s: %s\n", what, r->str);
    freeReplyObject(r);
}

static void acquire_args(void) {
    /* token, ttl, meta, fencing, enqueue, wait, acquired_ms, chan */
    refused("10-year lease", "a",
            run(DL_S_ACQUIRE, "a", 8, TOK, TEN_YEARS, "h\t1\t", "1", "0", "100", "1", "-"));
    refused("ttl past DLOCK_TTL_MAX", "a",
            run(DL_S_ACQUIRE, "a", 8, TOK, "2073600001", "h\t1\t", "1", "0", "100", "1", "-"));
    const char *bad_ttl[] = {"0", "-5", "abc", "", "1e9", "10.5", " 10", "0x10",
                             "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ttl / sizeof bad_ttl[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "ttl '%s'", bad_ttl[i]);
        refused(what, "a",
                run(DL_S_ACQUIRE, "a", 8, TOK, bad_ttl[i], "h\t1\t", "1", "0", "100", "1", "-"));
    }
    refused("token with upper case", "a",
            run(DL_S_ACQUIRE, "a", 8, "0123456789ABCDEF0123456789ABCDEF", "1000", "m", "1", "0",
                "100", "1", "-"));
    refused("short token", "a",
            run(DL_S_ACQUIRE, "a", 8, "abc", "1000", "m", "1", "0", "100", "1", "-"));
    refused("fencing 7", "a", run(DL_S_ACQUIRE, "a", 8, TOK, "1000", "m", "7", "0", "100", "1", "-"));
    refused("enqueue x", "a", run(DL_S_ACQUIRE, "a", 8, TOK, "1000", "m", "1", "x", "100", "1", "-"));
    refused("acquired_ms x", "a",
            run(DL_S_ACQUIRE, "a", 8, TOK, "1000", "m", "1", "0", "100", "x", "-"));
    char meta[700];
    memset(meta, 'm', sizeof meta - 1);
    meta[sizeof meta - 1] = '\0';
    refused("meta of 699 bytes", "a",
            run(DL_S_ACQUIRE, "a", 8, TOK, "1000", meta, "1", "0", "100", "1", "-"));
}

/* The case: a planted waiter with a 10-year wait and lease is
 * refused, so the release hands the lock to nobody. */
static void planted_waiter(dlock_client *c) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "p", 10000, &l), DLOCK_OK);
    redisReply *r = run(DL_S_ACQUIRE, "p", 8, TOK, TEN_YEARS, "evil\t1\t", "1", "1", TEN_YEARS,
                        "1", "-");
    printf("planted waiter: type %d %s\n", r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
    TH_EQ_INT(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = run(DL_S_ACQUIRE, "p", 8, TOK, "1000", "evil\t1\t", "1", "1", TEN_YEARS, "1", "-");
    TH_EQ_INT(r->type, REDIS_REPLY_ERROR); /* the wait alone, too */
    freeReplyObject(r);
    r = run(DL_S_ACQUIRE, "p", 8, TOK, "1000", "evil\t1\t", "1", "1", "100", "1", "a b");
    TH_EQ_INT(r->type, REDIS_REPLY_ERROR); /* a channel with a space */
    freeReplyObject(r);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{p}:q"), 0);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{p}"), 0);
}

/* EXTEND, CANCEL and FENCE check theirs, and change nothing. */
static void other_scripts(dlock_client *c) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "o", 10000, &l), DLOCK_OK);
    dlock_info info;
    dlock_info_get(l, &info);
    redisReply *r = run(DL_S_EXTEND, "o", 2, info.token, TEN_YEARS);
    printf("extend 10 years: type %d %s\n", r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
    TH_EQ_INT(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = run(DL_S_EXTEND, "o", 2, info.token, "soon");
    TH_EQ_INT(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    TH_CHECK(th_server_int(g_s, "PTTL %s", "dlock:{o}") <= 10000);
    r = run(DL_S_CANCEL, "o", 2, info.token, TEN_YEARS);
    TH_EQ_INT(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    TH_CHECK(th_server_int(g_s, "PTTL %s", "dlock:{o}") <= 10000);
    const char *bad_cand[] = {"abc", "-1", "0123", "9223372036854775808", "1e3", ""};
    for (size_t i = 0; i < sizeof bad_cand / sizeof bad_cand[0]; i++) {
        r = run(DL_S_FENCE, "o", 2, info.token, bad_cand[i]);
        printf("fence candidate '%s': type %d %s\n", bad_cand[i], r->type,
               r->type == REDIS_REPLY_ERROR ? r->str : "");
        TH_EQ_INT(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
    r = th_server_cmd(g_s, "GET %s", "dlock:{o}:fence");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0);
    freeReplyObject(r);
    /* The client's own calls still pass. */
    IT_RC(c, dlock_extend(l, 20000), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    r = run(DL_S_ACQUIRE, "o", 8, TOK2, "2073600000", "m", "1", "1", "3602100", "1", "-");
    TH_EQ_INT(r->type, REDIS_REPLY_STRING); /* granted: the longest the client itself sends */
    freeReplyObject(r);
}

/* The mutex scripts check inline (DL_LUA_NUM_OK, DL_LUA_TOKEN_OK: no
 * closure, no tonumber); the kinds' scripts call DL_LUA_ARGS's num and
 * token. Both must refuse exactly the same inputs: one EVAL runs both on
 * every ARGV and returns the inputs where they disagree. */
static void inline_checks_agree(void) {
    static const char src[] =
        DL_LUA_ARGS
        "local diff = {}\n"
        "for i = 1, #ARGV do\n"
        "  local v = ARGV[i]\n"
        "  local a = num(v, TTL_MAX) ~= nil\n"
        "  local b = " DL_LUA_NUM_OK("v", DL_LUA_STR(DL_LUA_TTL_MAX)) " and true or false\n"
        "  local c = num(v, 1e15) ~= nil\n"
        "  local d = " DL_LUA_NUM_OK("v", "1000000000000000") " and true or false\n"
        "  local e = token(v)\n"
        "  local f = " DL_LUA_TOKEN_OK("v") " and true or false\n"
        "  if a ~= b or c ~= d or e ~= f then diff[#diff + 1] = v end\n"
        "end\n"
        "return diff\n";
    static const char *const in[] = {
        "1", "9", "10", "0", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "",
        "2073600000", "2073600001", "2073599999", "3000000000", "999999999", "20736000000",
        "1000000000000000", "1000000000000001", "999999999999999", "9999999999999999",
        "10000000000000000", "99999999999999999999", "inf", "nan", "1\n", "12a",
        "a12", "\xd9\xa1", TOK, TOK2, "0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0", "0123456789abcdef 123456789abcdef",
        "0x23456789abcdef0123456789abcdef", "-0123456789abcdef0123456789abcde"};
    enum { N = sizeof in / sizeof in[0] };
    const char *argv[3 + N];
    size_t lens[3 + N];
    argv[0] = "EVAL";
    argv[1] = src;
    argv[2] = "0";
    lens[0] = 4;
    lens[1] = sizeof src - 1;
    lens[2] = 1;
    for (int i = 0; i < N; i++) {
        argv[3 + i] = in[i];
        lens[3 + i] = strlen(in[i]);
    }
    redisReply *r = redisCommandArgv(g_rc, 3 + N, argv, lens);
    TH_CHECK(r != NULL);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 0)
        TH_FAIL("inline checks disagree with num/token (reply type %d, %zu inputs, first '%s')",
                r->type, r->elements,
                r->type == REDIS_REPLY_ERROR ? r->str
                : r->elements > 0           ? r->element[0]->str
                                            : "");
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
    inline_checks_agree();
    acquire_args();
    planted_waiter(c);
    other_scripts(c);
    dlock_client_free(c);
    redisFree(g_rc);
    th_server_free(g_s);
    IT_PASS("test_script_limits");
    return 0;
}
