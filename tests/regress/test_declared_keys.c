/* test_declared_keys.c - issue 9, "Undeclared keys".
 *
 * Every key a script touches must be one of its declared KEYS[i]: servers
 * that enforce declared keys (Redis functions with flags, Dragonfly,
 * Valkey's stricter modes) refuse anything else, and Cluster routing is
 * only right for declared keys. This unit test reads every script source
 * and checks each redis.call / redis.pcall: its key arguments must be
 * written literally as KEYS[<n or loop variable>]. A key built by
 * concatenation (KEYS[1] .. ':w:' .. token) or held in a local variable is
 * reported with the script, its line and the call.
 *
 * It failed on the waiter's wake list (ACQUIRE, RELEASE, CANCEL) until
 * waiters were woken through their engine's pub/sub channel instead.
 * Deterministic; no server needed.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "proto.h"

/* ---- INTERNAL: where the scripts live (port this when scripts move) ---- */

static int nscripts(void) { return DL_NSCRIPTS; }

static const char *script_source(int id, size_t *len) {
    return dl_script_source((enum dl_script_id)id, len);
}

/* ---- the check ---- */

/* Commands by where their keys are: none, every argument, or the first. */
/* PUBLISH names a channel, not a key (its key spec is empty). */
/* CLUSTER INFO (the node's epoch, for the fence's floor) names no key. */
static const char *const keyless[] = {"TIME", "PING", "ECHO", "PUBLISH", "CLUSTER", NULL};
static const char *const all_keys[] = {"DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", NULL};
static const char *const first_key[] = {
    "GET",     "SET",       "INCR",   "INCRBY", "DECR",    "HGET",   "HSET",  "HDEL",
    "HMGET",   "HGETALL",   "HEXISTS", "HLEN",  "HINCRBY", "ZADD",   "ZREM",  "ZRANGE",
    "ZCARD",   "ZSCORE",    "ZRANK",  "PTTL",   "TTL",     "PEXPIRE", "EXPIRE", "PEXPIREAT",
    "PERSIST", "RPUSH",     "LPUSH",  "LPOP",   "RPOP",    "LRANGE", "LLEN",  "TYPE",
    "ZRANGEBYSCORE", "ZREMRANGEBYSCORE", NULL};

static int in(const char *const *list, const char *w) {
    for (int i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], w) == 0)
            return 1;
    return 0;
}

/* Splits the argument list starting after '(' at s[*pos] into args (trimmed,
 * copied into buf); stops at the matching ')'. Returns the count, or -1. */
static int split_args(const char *s, size_t len, size_t *pos, char args[][256], int max) {
    int n = 0, depth = 0;
    size_t start = *pos;
    for (size_t i = *pos; i < len; i++) {
        char ch = s[i];
        if (ch == '\'' || ch == '"') {
            for (i++; i < len && s[i] != ch; i++)
                if (s[i] == '\\')
                    i++;
            continue;
        }
        if (ch == '(' || ch == '[' || ch == '{') {
            depth++;
        } else if ((ch == ')' || ch == ']' || ch == '}') && depth > 0) {
            depth--;
        } else if ((ch == ',' || ch == ')') && depth == 0) {
            if (n == max)
                return -1;
            size_t a = start, b = i;
            while (a < b && isspace((unsigned char)s[a]))
                a++;
            while (b > a && isspace((unsigned char)s[b - 1]))
                b--;
            size_t k = b - a < 255 ? b - a : 255;
            memcpy(args[n], s + a, k);
            args[n][k] = '\0';
            n++;
            start = i + 1;
            if (ch == ')') {
                *pos = i;
                return n;
            }
        }
    }
    return -1;
}

/* KEYS[<digits or identifier>], nothing else. */
static int declared(const char *a) {
    if (strncmp(a, "KEYS[", 5) != 0)
        return 0;
    const char *p = a + 5;
    if (!isalnum((unsigned char)*p) && *p != '_')
        return 0;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    return p[0] == ']' && p[1] == '\0';
}

static int line_of(const char *s, size_t pos) {
    int line = 1;
    for (size_t i = 0; i < pos; i++)
        line += s[i] == '\n';
    return line;
}

static const char *const names[] = {"ACQUIRE",       "RELEASE",       "EXTEND",
                                    "INSPECT",       "CANCEL",        "FENCE",
                                    "SEM_ACQUIRE",   "SEM_RELEASE",   "SEM_EXTEND",
                                    "SEM_CANCEL",    "SEM_INSPECT",   "MULTI_ACQUIRE",
                                    "MULTI_RELEASE", "MULTI_EXTEND",  "MULTI_CANCEL",
                                    "SEM_FENCE"};

/* Returns the number of problems found in script id (each printed). */
static int check_script(int id) {
    size_t len;
    const char *s = script_source(id, &len);
    const char *name = id < (int)(sizeof names / sizeof names[0]) ? names[id] : "?";
    int bad = 0, calls = 0;
    for (size_t i = 0; i < len; i++) {
        size_t skip = 0;
        if (strncmp(s + i, "redis.call(", 11) == 0)
            skip = 11;
        else if (strncmp(s + i, "redis.pcall(", 12) == 0)
            skip = 12;
        if (skip == 0)
            continue;
        size_t at = i, pos = i + skip;
        char args[32][256];
        int n = split_args(s, len, &pos, args, 32);
        const char *eol = memchr(s + at, '\n', len - at);
        int shown = eol ? (int)(eol - (s + at)) : (int)(len - at);
        calls++;
        if (n < 1) {
            printf("script %d (%s), line %d: cannot parse: %.*s\n", id, name, line_of(s, at),
                   shown, s + at);
            bad++;
            continue;
        }
        i = pos;
        size_t cl = strlen(args[0]);
        char cmd[64];
        if (cl < 3 || cl - 2 >= sizeof cmd || (args[0][0] != '\'' && args[0][0] != '"')) {
            printf("script %d (%s), line %d: command is not a literal: %.*s\n", id, name,
                   line_of(s, at), shown, s + at);
            bad++;
            continue;
        }
        for (size_t k = 1; k + 1 < cl; k++)
            cmd[k - 1] = (char)toupper((unsigned char)args[0][k]);
        cmd[cl - 2] = '\0';
        int from, to;
        if (in(keyless, cmd)) {
            continue;
        } else if (in(all_keys, cmd)) {
            from = 1;
            to = n - 1;
        } else if (in(first_key, cmd)) {
            from = to = 1;
        } else {
            printf("script %d (%s), line %d: command %s unknown to this test (add its key "
                   "positions): %.*s\n",
                   id, name, line_of(s, at), cmd, shown, s + at);
            bad++;
            continue;
        }
        for (int k = from; k <= to && k < n; k++) {
            if (!declared(args[k])) {
                printf("script %d (%s), line %d: %s touches the undeclared key `%s`: %.*s\n", id,
                       name, line_of(s, at), cmd, args[k], shown, s + at);
                bad++;
            }
        }
    }
    printf("script %d (%s): %d redis.call(s), %d undeclared\n", id, name, calls, bad);
    return bad;
}

/* The checker itself: it must catch what it is meant to catch. */
static void self_test(void) {
    char args[8][256];
    const char *src = "'DEL', KEYS[1] .. ':w:' .. ARGV[1])";
    size_t pos = 0;
    TH_EQ_INT(split_args(src, strlen(src), &pos, args, 8), 2);
    TH_EQ_STR(args[1], "KEYS[1] .. ':w:' .. ARGV[1]");
    TH_CHECK(!declared(args[1]));
    TH_CHECK(declared("KEYS[2]") && declared("KEYS[i]") && !declared("w"));
    src = "'ZADD', KEYS[3], 'NX', f(a, b), ARGV[1])";
    pos = 0;
    TH_EQ_INT(split_args(src, strlen(src), &pos, args, 8), 5);
}

int main(void) {
    th_test_init(20);
    self_test();
    int bad = 0;
    for (int id = 0; id < nscripts(); id++)
        bad += check_script(id);
    if (bad > 0) {
        fprintf(stderr,
                "%s:%d: FAILED: %d redis.call(s) touch keys that are not declared KEYS[i] "
                "(listed above)\n",
                __FILE__, __LINE__, bad);
        return 1;
    }
    printf("test_declared_keys: 1 passed, 0 failed\n");
    return 0;
}
