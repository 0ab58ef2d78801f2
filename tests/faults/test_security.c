/* test_security.c - the checks behind docs/SECURITY.md.
 *
 * 1. No password in any detail string: wrong password, unknown user,
 *    connection refused, connect timeout (black hole), malformed URLs; after
 *    every public call; and in the dlock tool's output (text and --json) for
 *    the same failures.
 * 2. Names never become Lua source: names that look like Lua, contain
 *    quotes, CR/LF, braces or bytes >= 0x80 lock exactly the key
 *    <prefix>{name}, and nothing else on the server changes.
 * 3. Name length: DLOCK_NAME_MAX bytes accepted, one more refused.
 * 4. Tokens: 2000 acquisitions give 2000 distinct 32-digit lowercase hex
 *    tokens, with every hex digit used at every position; and a client's
 *    pool of kernel randomness used on both sides of a fork() never hands
 *    out the same token twice (a forked child finds it wiped), while the
 *    child cannot use the parent's client at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faults.h"
#include "token.h"

#define PW "Sup3rS3cretPw"

static int n_checked;

static void no_pw(const dlock_client *c, const char *what) {
    const char *e = dlock_client_errstr(c);
    if (strstr(e, PW) != NULL)
        TH_FAIL("%s: the password appears in the detail string: %s", what, e);
    n_checked++;
}

static int g_ev_leak;
static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->name && strstr(ev->name, PW))
        g_ev_leak = 1;
}

static void all_calls(const char *url, const char *label) {
    dlock_options o;
    it_options(&o, 200, 300);
    o.on_event = on_event;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    if (c == NULL)
        TH_FAIL("%s: no client (%s)", label, dlock_err_name(rc));
    no_pw(c, label);
    dlock_lock *l = NULL;
    dlock_holder h;
    int locked;
    dlock_client_ping(c);
    no_pw(c, label);
    dlock_try_acquire(c, "sec", 1000, &l);
    no_pw(c, label);
    dlock_acquire(c, "sec", 1000, &l);
    no_pw(c, label);
    dlock_wait(c, "sec", 100, 1000, &l);
    no_pw(c, label);
    dlock_inspect(c, "sec", &h);
    no_pw(c, label);
    dlock_is_locked(c, "sec", &locked, NULL);
    no_pw(c, label);
    dlock_release_token(c, "sec", "0123456789abcdef0123456789abcdef");
    no_pw(c, label);
    dlock_extend_token(c, "sec", "0123456789abcdef0123456789abcdef", 1000);
    no_pw(c, label);
    printf("  %-34s ping -> %s: %.110s\n", label, dlock_err_name(dlock_client_ping(c)),
           dlock_client_errstr(c));
    no_pw(c, label);
    TH_EQ_INT(g_ev_leak, 0);
    dlock_client_free(c);
}

/* Run the dlock tool; returns its combined output (static buffer). */
static const char *run_cli(const char *const *argv, const char *env_url) {
    static char out[16384];
    int fds[2];
    TH_EQ_INT(pipe(fds), 0);
    pid_t pid = fork();
    TH_CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        if (env_url)
            setenv("DLOCK_URL", env_url, 1);
        else
            unsetenv("DLOCK_URL");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return out;
}

static void cli_checks(const char *const *urls, int nurls) {
#ifdef DLOCK_CLI
    for (int i = 0; i < nurls; i++) {
        const char *argvs[][12] = {
            {DLOCK_CLI, "-T", "300", "status", "sec", NULL},
            {DLOCK_CLI, "-T", "300", "--json", "status", "sec", NULL},
            {DLOCK_CLI, "-T", "300", "-n", "acquire", "sec", NULL},
            {DLOCK_CLI, "-T", "300", "-v", "-w", "0.2", "run", "sec", "--", "true", NULL},
        };
        for (size_t k = 0; k < sizeof argvs / sizeof argvs[0]; k++) {
            /* Through the environment (the safe way) and on the command line. */
            const char *out = run_cli(argvs[k], urls[i]);
            if (strstr(out, PW) != NULL)
                TH_FAIL("dlock %s with DLOCK_URL=%s printed the password:\n%s", argvs[k][3],
                        urls[i], out);
            const char *withu[16];
            int n = 0;
            withu[n++] = argvs[k][0];
            withu[n++] = "-u";
            withu[n++] = urls[i];
            for (int j = 1; argvs[k][j] != NULL; j++)
                withu[n++] = argvs[k][j];
            withu[n] = NULL;
            out = run_cli(withu, NULL);
            if (strstr(out, PW) != NULL)
                TH_FAIL("dlock -u %s printed the password:\n%s", urls[i], out);
            n_checked += 2;
        }
    }
    printf("  dlock tool: status, status --json, acquire, run -v: no password in any output\n");
#else
    (void)urls;
    (void)nurls;
    printf("  dlock tool not built: its output not checked\n");
#endif
}

static void passwords(th_server *s) {
    printf("== no password in any detail string\n");
    freeReplyObject(th_server_cmd(s, "ACL SETUSER sec on >rightpw ~* +@all"));
    th_proxy *bh = th_proxy_start(th_server_port(s));
    TH_CHECK(bh != NULL);
    th_proxy_set(bh, TH_BLACKHOLE, 0);
    char urls[6][256];
    snprintf(urls[0], 256, "redis://sec:" PW "@127.0.0.1:%d", th_server_port(s));
    snprintf(urls[1], 256, "redis://nosuchuser:" PW "@127.0.0.1:%d", th_server_port(s));
    snprintf(urls[2], 256, "redis://:" PW "@127.0.0.1:%d/3", th_server_port(s));
    snprintf(urls[3], 256, "redis://sec:" PW "@127.0.0.1:1");
    snprintf(urls[4], 256, "redis://sec:" PW "@127.0.0.1:%d", th_proxy_port(bh));
    snprintf(urls[5], 256, "redis://sec:" PW "@127.0.0.1:%d,127.0.0.1:1,127.0.0.1:2",
             th_server_port(s));
    const char *labels[6] = {"wrong password",          "unknown user",
                             "password only, db 3",     "connection refused",
                             "black hole (timeouts)",   "Redlock, 2 of 3 refused"};
    for (int i = 0; i < 6; i++)
        all_calls(urls[i], labels[i]);
    /* Malformed URLs that carry a password. */
    const char *bad[] = {
        "redis://u:" PW "@127.0.0.1:99999",  "redis://u:" PW "@:6379",
        "redis://u:" PW "@127.0.0.1:6379/x", "redis://u:" PW "@h1:1,h1:1",
        "rediss://u:" PW "@127.0.0.1:6379?tls_ca=/nonexistent/ca.pem",
        "redis://u:" PW "@127.0.0.1:6379?timeout=-1",
        "redis-sentinel://u:" PW "@127.0.0.1:26379", "redis://u:" PW "%zz@127.0.0.1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dlock_client *c = NULL;
        int rc = dlock_client_new(&c, bad[i], NULL);
        if (c != NULL) {
            no_pw(c, bad[i]);
            printf("  malformed URL %zu               new -> %s: %.100s\n", i + 1,
                   dlock_err_name(rc), dlock_client_errstr(c));
            dlock_lock *l = NULL;
            dlock_try_acquire(c, "x", 1000, &l); /* a refused client repeats why */
            no_pw(c, bad[i]);
            dlock_client_free(c);
        }
    }
    const char *cli_urls[] = {urls[0], urls[3], urls[4], bad[0], bad[4]};
    cli_checks(cli_urls, 5);
    printf("passwords: %d detail strings and outputs checked, none carries the password\n",
           n_checked);
    th_proxy_stop(bh);
}

static void names(th_server *s) {
    printf("== names never become Lua source\n");
    freeReplyObject(th_server_cmd(s, "FLUSHALL"));
    freeReplyObject(th_server_cmd(s, "SET canary alive"));
    static const char *const evil[] = {
        "x') redis.call('FLUSHALL') --",
        "]] redis.call('SET','canary','dead') --[[",
        "\" .. redis.call('FLUSHALL') .. \"",
        "line\r\nFLUSHALL\r\n",
        "{inner}braces}",
        "\xff\xfe\x80 bytes",
        "%s%n%x",
    };
    dlock_client *c = it_client(th_server_url(s), NULL);
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_try_acquire(c, evil[i], 5000, &l), DLOCK_OK);
        size_t n = strlen(evil[i]);
        redisReply *r = th_server_cmd(s, "EXISTS dlock:{%b}", evil[i], n);
        TH_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
        freeReplyObject(r);
        dlock_holder h;
        IT_RC(c, dlock_inspect(c, evil[i], &h), DLOCK_OK);
        TH_EQ_INT(h.locked, 1);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    redisReply *r = th_server_cmd(s, "GET canary");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, "alive") == 0);
    freeReplyObject(r);
    /* Only the fence counters of those names remain. */
    r = th_server_cmd(s, "DBSIZE");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    printf("names: %zu hostile names locked their own key only; canary intact, %lld keys "
           "(canary + fence counters)\n",
           sizeof evil / sizeof evil[0], r->integer);
    TH_EQ_INT(r->integer, 1 + (long long)(sizeof evil / sizeof evil[0]));
    freeReplyObject(r);

    printf("== name length\n");
    char name[DLOCK_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[DLOCK_NAME_MAX] = '\0';
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    name[DLOCK_NAME_MAX] = 'n';
    name[DLOCK_NAME_MAX + 1] = '\0';
    IT_RC(c, dlock_try_acquire(c, name, 5000, &l), DLOCK_EINVAL);
    IT_RC(c, dlock_try_acquire(c, "", 5000, &l), DLOCK_EINVAL);
    printf("names: %d bytes accepted, %d refused (EINVAL), empty refused\n", DLOCK_NAME_MAX,
           DLOCK_NAME_MAX + 1);
    dlock_client_free(c);
}

static int cmp_tok(const void *a, const void *b) { return strcmp(a, b); }

static void tokens(th_server *s) {
    printf("== tokens\n");
    enum { N = 2000 };
    static char tok[N][33];
    int seen[32][16];
    memset(seen, 0, sizeof seen);
    dlock_client *c = it_client(th_server_url(s), NULL);
    for (int i = 0; i < N; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_try_acquire(c, "tok", 5000, &l), DLOCK_OK);
        dlock_info info;
        dlock_info_get(l, &info);
        TH_EQ_INT(strlen(info.token), 32);
        for (int k = 0; k < 32; k++) {
            char ch = info.token[k];
            TH_CHECK((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
            seen[k][ch <= '9' ? ch - '0' : ch - 'a' + 10]++;
        }
        memcpy(tok[i], info.token, 33);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    qsort(tok, N, sizeof tok[0], cmp_tok);
    for (int i = 1; i < N; i++)
        if (strcmp(tok[i - 1], tok[i]) == 0)
            TH_FAIL("duplicate token %s", tok[i]);
    int min = N;
    for (int k = 0; k < 32; k++)
        for (int d = 0; d < 16; d++)
            if (seen[k][d] < min)
                min = seen[k][d];
    printf("tokens: %d distinct; every hex digit at every position, least frequent %d times "
           "(expected %d)\n",
           N, min, N / 16);
    TH_CHECK(min > N / 16 / 2);
    dlock_client_free(c);
}

/* Parent and child of a fork() draw tokens from one randomness pool filled
 * before the fork (as a client's is): no token may repeat. The child cannot
 * draw through the parent's client itself: every call on an inherited
 * client is refused. */
static void tokens_across_fork(th_server *s) {
    enum { N = 200 };
    dlock_client *c = it_client(th_server_url(s), NULL);
    dl_rand_pool pool;
    dl_pool_init(&pool);
    char first[DL_TOKEN_HEX + 1];
    TH_EQ_INT(dl_pool_token(&pool, first), 0); /* pool filled */
    int fds[2];
    TH_EQ_INT(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    TH_CHECK(pid >= 0);
    static char mine[N][33], theirs[N][33];
    if (pid == 0)
        close(fds[0]);
    for (int i = 0; i < N; i++)
        if (dl_pool_token(&pool, mine[i]) != 0) {
            if (pid == 0)
                _exit(2);
            TH_FAIL("dl_pool_token failed");
        }
    if (pid == 0) {
        dlock_lock *l = NULL;
        int refused = dlock_try_acquire(c, "tokf", 5000, &l) == DLOCK_EINVAL && l == NULL;
        ssize_t w = write(fds[1], mine, sizeof mine);
        dlock_client_free(c); /* the child's copy (leak checkers look) */
        dl_pool_free(&pool);
        _exit(!refused ? 4 : w == (ssize_t)sizeof mine ? 0 : 3);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got < sizeof theirs && (r = read(fds[0], (char *)theirs + got, sizeof theirs - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    TH_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    TH_EQ_INT((long long)got, (long long)sizeof theirs);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++)
            if (strcmp(mine[i], theirs[k]) == 0)
                TH_FAIL("parent and child of a fork both drew token %s", mine[i]);
    printf("tokens: %d in the parent and %d in the child of a fork, from one pool: no "
           "token shared; the child's inherited client refused\n",
           N, N);
    dl_pool_free(&pool);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    passwords(s);
    names(s);
    tokens(s);
    tokens_across_fork(s);
    th_server_free(s);
    IT_PASS("test_security");
    return 0;
}
