/* dlock_bench.c - dlock-bench, the benchmark program (not a test).
 *
 *   dlock-bench --mode MODE [--workers W] [--seconds D]
 *               (--url URL | --host H [--port P]) [--ttl MS] [--waiting push|poll]
 *               [--name KEY] [--hold-us N] [--warmup S] [--raw-script minimal|dlock]
 *               [--locks N] [--kind K] [--permits N] [--readers R] [--writers W]
 *               [--names M] [--set S] [--writer-hold-us N] [--wait-ms MS]
 *
 * uncontended  one client, try-acquire + release pairs on one key (--kind:
 *              of a mutex, by default, or of another kind).
 * raw          the ceiling: the same pair as two raw hiredis EVALSHA round trips
 *              on one blocking connection (a minimal SET NX PX script and a
 *              compare-and-delete script, or with --raw-script dlock the
 *              library's own acquire and release scripts).
 * contended    W forked workers, each with its own dlock_client and its own
 *              hiredis connection, take one lock with dlock_wait, do a
 *              non-atomic GET / SET n+1 of a counter under it, release, repeat.
 * keepalive    N locks kept alive by one client's keepalive thread
 *              (keepalive_mode.c).
 * semaphore, rwlock, multilock: the other kinds contended (kinds_mode.c).
 *
 * Commands per acquisition come from INFO commandstats before and after the
 * measured window, over separate connections. Redis counts the commands a
 * Lua script calls as well as the EVALSHA itself; commands named inside the
 * scripts in use are therefore attributed to the scripts, not to the client
 * (the bench adds back the GET/SET it sent itself). The last line of output is
 * machine-readable: RESULT mode=... (see usage()).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "keepalive_mode.h"
#include "kinds_mode.h"
#include "pipelined_mode.h"
#include "dlock.h"
#include "client.h" /* dl_script_source: the library's Lua, for --raw-script dlock */

#define EXIT_USAGE 2
#define WAIT_TIMEOUT_MS 30000 /* dlock_wait timeout of a contended worker */
#define SAMPLE_CAP ((size_t)8 << 20)
#define LOG_BUDGET ((int64_t)8 << 20) /* log entries over all workers */

enum mode { M_NONE, M_UNCONTENDED, M_CONTENDED, M_RAW, M_KEEPALIVE, M_PIPELINED, M_SEMAPHORE,
            M_RWLOCK, M_MULTILOCK };
/* Every mode, in the order --help lists them. --mode is parsed from this
 * table and usage() prints it, so the two cannot disagree
 * (tests/docs/bench_modes.sh checks the help and the README against it). */
static const struct {
    enum mode mode;
    const char *name;
    const char *help; /* "\n" starts a continuation line */
} modes[] = {
    {M_UNCONTENDED, "uncontended",
     "one client: dlock_try_acquire + dlock_release pairs on one key (or\n"
     "of another --kind); prints pairs/s and p50/p99 pair latency"},
    {M_RAW, "raw",
     "the ceiling: the same pair as two raw hiredis EVALSHA round trips\n"
     "(SET NX PX acquire script + compare-and-delete release script)"},
    {M_CONTENDED, "contended",
     "W worker processes take one lock with dlock_wait, do a non-atomic\n"
     "GET/SET increment of a counter under it, release, repeat; prints\n"
     "acquisitions/s, handoffs/s, per-worker shares, wait latency,\n"
     "Redis commands per acquisition, mutual-exclusion violations"},
    {M_KEEPALIVE, "keepalive",
     "one client keeps --locks locks alive with its keepalive thread;\n"
     "prints the extensions/s the server sees, the client's CPU, and\n"
     "whether every lease was still held at the end"},
    {M_PIPELINED, "pipelined",
     "one client, one thread: --inflight acquire+release pairs in flight on\n"
     "--names names through the non-blocking API, pipelined on one\n"
     "connection per server; prints pairs/s and p50/p99 pair latency"},
    {M_SEMAPHORE, "semaphore",
     "W worker processes (default 8) wait for one of --permits permits\n"
     "(default 3), hold --hold-us, release; prints per-worker shares\n"
     "(min_share), waits, the most holders seen at once"},
    {M_RWLOCK, "rwlock",
     "--readers (default 7) shared and --writers (default 1) exclusive\n"
     "worker processes on one rw lock; prints the writers' wait p99\n"
     "against one reader's hold (--hold-us)"},
    {M_MULTILOCK, "multilock",
     "W worker processes (default 8) take random sets of --set (default 3)\n"
     "of --names (default 6) names, in random order; prints waits, the\n"
     "longest time nobody acquired, waits that reached --wait-ms (stalls)"},
};
#define NMODES (sizeof modes / sizeof modes[0])

/* The mode called `name`, or M_NONE. */
static enum mode mode_by_name(const char *name) {
    for (size_t i = 0; i < NMODES; i++)
        if (strcmp(name, modes[i].name) == 0)
            return modes[i].mode;
    return M_NONE;
}

static const char *mode_name(enum mode m) {
    for (size_t i = 0; i < NMODES; i++)
        if (modes[i].mode == m)
            return modes[i].name;
    return "none";
}

/* "a, b, c or d" (sep ", ") or "a|b|c|d" (sep "|", last NULL) into buf. */
static const char *mode_list(char *buf, size_t n, const char *sep, const char *last) {
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NMODES && off < n; i++) {
        const char *s = i == 0 ? "" : (i + 1 == NMODES && last) ? last : sep;
        int w = snprintf(buf + off, n - off, "%s%s", s, modes[i].name);
        if (w > 0)
            off += (size_t)w;
    }
    return buf;
}

typedef struct bench_opts {
    enum mode mode;
    int workers;
    double seconds;
    double warmup;
    const char *url;
    char url_buf[600];
    const char *host;
    int port;
    int64_t ttl_ms;
    int poll;
    int no_fence;
    int locks; /* keepalive mode */
    int inflight, names; /* pipelined mode; multilock: names in the pool */
    int kind;            /* uncontended: enum kb_kind */
    int permits, readers, writers, set;
    int64_t writer_hold_us, wait_ms;
    const char *name;
    int64_t hold_us;
    int raw_dlock;
} bench_opts;

typedef struct result {
    double pairs_per_s, p50_us, p99_us;
    double acq_per_s, handoffs_per_s, min_share, wait_p99_us;
    double cmds_per_acq;
    long long violations;
} result;

static void usage(FILE *f) {
    char list[128];
    fprintf(f,
"usage: dlock-bench --mode %s [options]\n"
"\n"
"Benchmarks dlock against a Redis server (use a private one: the bench writes keys).\n"
"\n"
"Modes:\n", mode_list(list, sizeof list, "|", NULL));
    for (size_t i = 0; i < NMODES; i++) {
        fprintf(f, "  %-13s ", modes[i].name);
        for (const char *p = modes[i].help; *p; p++) {
            if (*p == '\n')
                fputs("\n                ", f);
            else
                fputc(*p, f);
        }
        fputc('\n', f);
    }
    fprintf(f,
"\n"
"Options:\n"
"  --mode M            one of the modes above (required)\n"
"  --url URL           any dlock URL: redis://[user[:pass]@]host[:port][/db], unix://,\n"
"                      a Redlock list, redis-sentinel://, redis-cluster://; TLS with\n"
"                      rediss://host or a rediss:// Redlock list, --mode uncontended\n"
"                      only (e.g. rediss://127.0.0.1:6380?tls_ca=ca.crt; commands per\n"
"                      pair are then not counted: cmds_per_acq=-1)\n"
"  --host H            server host (instead of --url; default 127.0.0.1)\n"
"  --port P            server port (instead of --url; default 6379)\n"
"  --workers W         contended: worker processes, 1..1024 (default 1); semaphore,\n"
"                      multilock: default 8\n"
"  --seconds D         measured duration, > 0 (default 5)\n"
"  --warmup S          uncontended/raw: unmeasured warm-up seconds (default 1)\n"
"  --ttl MS            lease in milliseconds (default 10000)\n"
"  --waiting push|poll contended: dlock_options.waiting (default push; poll is the\n"
"                      seed's retry with backoff, 100 ms doubling to 1 s)\n"
"  --name KEY          lock name (default dlock-bench); the counter key is\n"
"                      dlock-bench:{KEY}:counter\n"
"  --hold-us N         contended: sleep N microseconds while holding (default 0);\n"
"                      semaphore, multilock: default 1000; rwlock: a reader's, 5000\n"
"  --raw-script S      raw: minimal (default) or dlock (the library's own scripts)\n"
"  --no-fence          uncontended/contended: dlock_options.fencing = 0\n"
"  --locks N           keepalive: locks kept alive by one client (default 10000);\n"
"                      --mode keepalive prints extensions/s seen by the server and\n"
"                      the client's CPU\n"
"  --inflight N        pipelined: pairs in flight at once (default 64)\n"
"  --names M           pipelined: distinct names they use (default: --inflight);\n"
"                      multilock: names in the pool (2..16, default 6)\n"
"  --kind K            uncontended: mutex (default), sem, rw-shared, rw-exclusive or\n"
"                      multi (names {KEY}0..{KEY}<set-1>, one hash slot)\n"
"  --permits N         semaphore, uncontended --kind sem: permits (default 3)\n"
"  --readers R         rwlock: reader processes (default 7)\n"
"  --writers W         rwlock: writer processes (default 1)\n"
"  --set S             multilock, uncontended --kind multi: names per multi-lock\n"
"                      (default 3 and 2)\n"
"  --writer-hold-us N  rwlock: a writer's hold (default 500)\n"
"  --wait-ms MS        semaphore, rwlock, multilock: each wait's timeout; a wait that\n"
"                      reaches it counts as a stall (default 30000)\n"
"  --help              this text\n"
"\n"
"Last line: RESULT mode= pairs_per_s= p50_us= p99_us= acq_per_s= handoffs_per_s=\n"
"min_share= wait_p99_us= cmds_per_acq= violations= workers= waiting=  (0 where a\n"
"field does not apply to the mode; cmds_per_acq=-1 when INFO could not be read);\n"
"keepalive: RESULT mode=keepalive locks= ttl_ms= ext_per_s= client_cpu_pct= held=\n"
"lost=.  pipelined: RESULT mode=pipelined pairs_per_s= p50_us= p99_us= inflight=\n"
"names= busy= errors=.  uncontended adds kind=.  semaphore, rwlock and multilock\n"
"print their own RESULT fields (min_share=, writer_p99_per_hold=, stalls=, violations=).\n"
"Exit status: 0 done (keepalive: every lease still held), 1 run failed, 2 bad usage.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dlock-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'dlock-bench --help'.\n", stderr);
    return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dlock-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int parse_ll(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return usage_error("%s: expected an integer %lld..%lld, got '%s'", opt, lo, hi, s);
    *out = v;
    return 0;
}

static int parse_secs(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi)
        return usage_error("%s: expected seconds %g..%g, got '%s'", opt, lo, hi, s);
    *out = v;
    return 0;
}

/* The options of the kinds' modes, in the order of O_KIND.. in parse_args:
 * --kind, --permits, --readers, --writers, --set, --writer-hold-us,
 * --wait-ms. 0, or the usage error's status. */
static int parse_kind_opt(int which, const char *arg, bench_opts *o) {
    static const char *const name[] = {"--kind", "--permits", "--readers", "--writers",
                                       "--set", "--writer-hold-us", "--wait-ms"};
    static const long long lo[] = {0, 1, 0, 1, 2, 0, 1};
    static const long long hi[] = {0, DLOCK_PERMITS_MAX, 256, 256, 16, 60000000, DLOCK_TTL_MAX};
    long long v = 0;
    if (which == 0) {
        if ((o->kind = kb_kind_by_name(arg)) < 0)
            return usage_error("--kind: expected mutex, sem, rw-shared, rw-exclusive or "
                               "multi, got '%s'", arg);
        return 0;
    }
    if (parse_ll(name[which], arg, lo[which], hi[which], &v))
        return EXIT_USAGE;
    int *ints[] = {NULL, &o->permits, &o->readers, &o->writers, &o->set};
    if (which <= 4)
        *ints[which] = (int)v;
    else
        *(which == 5 ? &o->writer_hold_us : &o->wait_ms) = v;
    return 0;
}

/* --mode semaphore, rwlock, multilock: their defaults and limits. */
static int check_kinds_opts(bench_opts *o, int workers_set, int hold_set) {
    if (!workers_set)
        o->workers = 8;
    if (!hold_set)
        o->hold_us = o->mode == M_RWLOCK ? 5000 : 1000;
    if (o->set == 0)
        o->set = 3;
    if (o->names == 0)
        o->names = 6;
    if (o->mode == M_MULTILOCK && (o->names > 16 || o->set > o->names))
        return usage_error("--names 2..16 and --set 2..--names for --mode multilock");
    if (o->mode == M_RWLOCK && o->readers + o->writers < 1)
        return usage_error("--mode rwlock needs a reader or a writer");
    if (o->hold_us * 2 / 1000 >= o->ttl_ms || o->writer_hold_us * 2 / 1000 >= o->ttl_ms)
        return usage_error("the holds are too close to --ttl: leases would expire");
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    enum { O_MODE = 1, O_WORKERS, O_SECONDS, O_URL, O_HOST, O_PORT, O_TTL, O_WAITING, O_NAME,
           O_HOLD, O_WARMUP, O_RAWSCRIPT, O_NOFENCE, O_LOCKS, O_INFLIGHT, O_NAMES, O_KIND,
           O_PERMITS, O_READERS, O_WRITERS, O_SET, O_WHOLD, O_WAITMS, O_HELP };
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, O_MODE},
        {"workers", required_argument, NULL, O_WORKERS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"url", required_argument, NULL, O_URL},
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"ttl", required_argument, NULL, O_TTL},
        {"waiting", required_argument, NULL, O_WAITING},
        {"name", required_argument, NULL, O_NAME},
        {"hold-us", required_argument, NULL, O_HOLD},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"raw-script", required_argument, NULL, O_RAWSCRIPT},
        {"no-fence", no_argument, NULL, O_NOFENCE},
        {"locks", required_argument, NULL, O_LOCKS},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"names", required_argument, NULL, O_NAMES},
        {"kind", required_argument, NULL, O_KIND},
        {"permits", required_argument, NULL, O_PERMITS},
        {"readers", required_argument, NULL, O_READERS},
        {"writers", required_argument, NULL, O_WRITERS},
        {"set", required_argument, NULL, O_SET},
        {"writer-hold-us", required_argument, NULL, O_WHOLD},
        {"wait-ms", required_argument, NULL, O_WAITMS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->seconds = 5;
    o->warmup = 1;
    o->ttl_ms = 10000;
    o->name = "dlock-bench";
    o->permits = 3;
    o->readers = 7;
    o->writers = 1;
    o->writer_hold_us = 500;
    o->wait_ms = 30000;
    int kinds_set = 0;
    int workers_set = 0, port_set = 0, waiting_set = 0, hold_set = 0;
    long long v;
    char list[128];
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        case O_MODE:
            if ((o->mode = mode_by_name(optarg)) == M_NONE)
                return usage_error("--mode: expected %s, got '%s'",
                                   mode_list(list, sizeof list, ", ", " or "), optarg);
            break;
        case O_WORKERS:
            if (parse_ll("--workers", optarg, 1, 1024, &v))
                return EXIT_USAGE;
            o->workers = (int)v;
            workers_set = 1;
            break;
        case O_SECONDS:
            if (parse_secs("--seconds", optarg, 0.001, 86400, &o->seconds))
                return EXIT_USAGE;
            break;
        case O_WARMUP:
            if (parse_secs("--warmup", optarg, 0, 3600, &o->warmup))
                return EXIT_USAGE;
            break;
        case O_URL:
            if (optarg[0] == '\0')
                return usage_error("--url: empty URL");
            o->url = optarg;
            break;
        case O_HOST:
            if (optarg[0] == '\0' || strlen(optarg) >= 256)
                return usage_error("--host: expected a host name or address, got '%s'", optarg);
            o->host = optarg;
            break;
        case O_PORT:
            if (parse_ll("--port", optarg, 1, 65535, &v))
                return EXIT_USAGE;
            o->port = (int)v;
            port_set = 1;
            break;
        case O_TTL:
            if (parse_ll("--ttl", optarg, 1, DLOCK_TTL_MAX, &v))
                return EXIT_USAGE;
            o->ttl_ms = v;
            break;
        case O_NOFENCE:
            o->no_fence = 1;
            break;
        case O_LOCKS:
            if (parse_ll("--locks", optarg, 1, 1000000, &v))
                return EXIT_USAGE;
            o->locks = (int)v;
            break;
        case O_INFLIGHT:
        case O_NAMES:
            if (parse_ll(ch == O_INFLIGHT ? "--inflight" : "--names", optarg, 1, 100000, &v))
                return EXIT_USAGE;
            *(ch == O_INFLIGHT ? &o->inflight : &o->names) = (int)v;
            break;
        case O_KIND:
        case O_PERMITS:
        case O_READERS:
        case O_WRITERS:
        case O_SET:
        case O_WHOLD:
        case O_WAITMS:
            if (parse_kind_opt(ch - O_KIND, optarg, o))
                return EXIT_USAGE;
            kinds_set = 1;
            break;
        case O_WAITING:
            if (strcmp(optarg, "push") == 0)
                o->poll = 0;
            else if (strcmp(optarg, "poll") == 0)
                o->poll = 1;
            else
                return usage_error("--waiting: expected push or poll, got '%s'", optarg);
            waiting_set = 1;
            break;
        case O_NAME:
            if (optarg[0] == '\0' || strlen(optarg) > DLOCK_NAME_MAX)
                return usage_error("--name: expected 1..%d bytes", DLOCK_NAME_MAX);
            o->name = optarg;
            break;
        case O_HOLD:
            if (parse_ll("--hold-us", optarg, 0, 60000000, &v))
                return EXIT_USAGE;
            o->hold_us = v;
            hold_set = 1;
            break;
        case O_RAWSCRIPT:
            if (strcmp(optarg, "minimal") == 0)
                o->raw_dlock = 0;
            else if (strcmp(optarg, "dlock") == 0)
                o->raw_dlock = 1;
            else
                return usage_error("--raw-script: expected minimal or dlock, got '%s'", optarg);
            break;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->mode == M_NONE)
        return usage_error("--mode is required (%s)",
                           mode_list(list, sizeof list, ", ", " or "));
    if (o->url && (o->host || port_set))
        return usage_error("give either --url or --host/--port, not both");
    if (!o->url && !o->host && !port_set)
        return usage_error("say where the server is: --url URL or --host H --port P");
    if (!o->url) {
        const char *h = o->host ? o->host : "127.0.0.1";
        int p = port_set ? o->port : 6379;
        if (strchr(h, ':') && h[0] != '[')
            snprintf(o->url_buf, sizeof o->url_buf, "redis://[%s]:%d", h, p);
        else
            snprintf(o->url_buf, sizeof o->url_buf, "redis://%s:%d", h, p);
        o->url = o->url_buf;
    }
    int kinds_mode = o->mode == M_SEMAPHORE || o->mode == M_RWLOCK || o->mode == M_MULTILOCK;
    if (kinds_set && !kinds_mode && o->mode != M_UNCONTENDED)
        return usage_error("--kind, --permits, --readers, --writers, --set, --writer-hold-us "
                           "and --wait-ms apply to --mode uncontended (--kind, --permits, "
                           "--set), semaphore, rwlock and multilock");
    if (kinds_mode) {
        if (check_kinds_opts(o, workers_set, hold_set))
            return EXIT_USAGE;
    } else if (o->mode != M_CONTENDED) {
        if (o->set == 0)
            o->set = 2;
        if (workers_set && o->workers != 1)
            return usage_error("--workers applies to --mode contended only");
        if (hold_set)
            return usage_error("--hold-us applies to --mode contended only");
        if (waiting_set && o->mode == M_RAW)
            return usage_error("--waiting does not apply to --mode raw");
    }
    if (o->mode != M_UNCONTENDED && strncasecmp(o->url, "rediss", 6) == 0)
        return usage_error("TLS URLs work with --mode uncontended only: the other modes need "
                           "plain connections of the bench's own (hiredis 0.14 has no TLS)");
    if (o->raw_dlock && o->mode != M_RAW)
        return usage_error("--raw-script applies to --mode raw only");
    if (o->mode == M_CONTENDED && o->hold_us * 2 / 1000 >= o->ttl_ms)
        return usage_error("--hold-us %" PRId64 " is too close to --ttl %" PRId64
                           " ms: leases would expire under the lock",
                           o->hold_us, o->ttl_ms);
    return 0;
}

/* ---- commands per acquisition, from INFO commandstats ---- */

#define MAX_INNER 96

typedef struct inner_set {
    int n;
    char name[MAX_INNER][32];
} inner_set;

/* Collect the command names a Lua source calls: redis.call('X' / redis.pcall("X". */
static void inner_scan(inner_set *s, const char *src) {
    static const char *const pats[] = {"redis.call(", "redis.pcall("};
    for (int k = 0; k < 2; k++) {
        const char *p = src;
        while ((p = strstr(p, pats[k])) != NULL) {
            p += strlen(pats[k]);
            while (*p == ' ')
                p++;
            if (*p != '\'' && *p != '"')
                continue;
            char q = *p++;
            const char *e = strchr(p, q);
            if (e == NULL || e - p >= 32 || e == p)
                continue;
            char nm[32];
            size_t n = (size_t)(e - p);
            for (size_t i = 0; i < n; i++)
                nm[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
            nm[n] = '\0';
            int dup = 0;
            for (int i = 0; i < s->n; i++)
                dup |= strcmp(s->name[i], nm) == 0;
            if (!dup && s->n < MAX_INNER)
                snprintf(s->name[s->n++], sizeof s->name[0], "%s", nm);
            p = e;
        }
    }
}

static void inner_library(inner_set *s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < DL_NSCRIPTS; i++) {
        size_t len;
        inner_scan(s, dl_script_source((enum dl_script_id)i, &len));
    }
}

static int inner_has(const inner_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return 1;
    return 0;
}

typedef struct stats_conns {
    const bu_target *t;
    int n;
    redisContext *ctx[BU_MAX_SERVERS];
    int ok;
} stats_conns;

static void stats_open(stats_conns *sc, const bu_target *t) {
    memset(sc, 0, sizeof *sc);
    sc->t = t;
    if (t->url.tls) {
        printf("note: commands per pair are not counted over TLS (the bench's own INFO "
               "connections are plain hiredis 0.14)\n");
        return;
    }
    sc->n = t->nservers;
    for (int i = 0; i < t->nservers; i++) {
        char err[512];
        sc->ctx[i] = bu_connect(t, &t->servers[i], 2000, 0, err, sizeof err);
        if (sc->ctx[i] == NULL)
            fprintf(stderr, "dlock-bench: warning: INFO commandstats: %s (server left out)\n",
                    err);
        else
            sc->ok++;
    }
}

static void stats_close(stats_conns *sc) {
    for (int i = 0; i < sc->n; i++)
        if (sc->ctx[i])
            redisFree(sc->ctx[i]);
    memset(sc, 0, sizeof *sc);
}

/* Sum of every reachable server's commandstats. Returns the servers read. */
static int stats_read(stats_conns *sc, bu_cmdstats *out) {
    memset(out, 0, sizeof *out);
    int got = 0;
    for (int i = 0; i < sc->n; i++) {
        if (sc->ctx[i] == NULL)
            continue;
        char err[512];
        if (bu_cmdstats_add(sc->ctx[i], out, err, sizeof err) != 0) {
            char a[300];
            fprintf(stderr, "dlock-bench: warning: %s: %s (server left out)\n",
                    bu_server_addr(&sc->t->servers[i], a, sizeof a), err);
            redisFree(sc->ctx[i]);
            sc->ctx[i] = NULL;
            continue;
        }
        got++;
    }
    return got;
}

/* What the bench itself sent of commands that scripts also call (GET, SET). */
typedef struct own_calls {
    long long get, set;
} own_calls;

/* Print the per-command breakdown and return client commands per
 * acquisition: every command but INFO and the ones the scripts call, plus
 * the bench's own GET/SET (which the scripts' GET/SET would otherwise hide).
 * *lib_only receives the same without the bench's own commands. */
static double cmds_report(const bu_cmdstats *b, const bu_cmdstats *a, const inner_set *inner,
                          const own_calls *own, long long acq, const char *unit,
                          double *lib_only) {
    long long own_total = own->get + own->set;
    long long client = own_total, in_scripts = 0;
    char line[2048] = "", iline[2048] = "";
    size_t ll = 0, il = 0;
    *lib_only = 0;
    if (acq <= 0)
        return 0;
    for (int i = 0; i < a->n; i++) {
        const char *nm = a->e[i].name;
        if (strcmp(nm, "info") == 0)
            continue;
        long long d = a->e[i].calls - bu_cmdstats_get(b, nm);
        if (!inner_has(inner, nm)) {
            if (d > 0) {
                client += d;
                if (ll < sizeof line - 64)
                    ll += (size_t)snprintf(line + ll, sizeof line - ll, " %s=%.3f", nm,
                                           (double)d / (double)acq);
            }
            continue;
        }
        if (strcmp(nm, "get") == 0)
            d -= own->get;
        else if (strcmp(nm, "set") == 0)
            d -= own->set;
        if (d > 0) {
            in_scripts += d;
            if (il < sizeof iline - 64)
                il += (size_t)snprintf(iline + il, sizeof iline - il, " %s=%.2f", nm,
                                       (double)d / (double)acq);
        }
    }
    if (own_total > 0)
        snprintf(line + ll, sizeof line - ll, " | bench: get=%.3f set=%.3f",
                 (double)own->get / (double)acq, (double)own->set / (double)acq);
    double per = (double)client / (double)acq;
    *lib_only = (double)(client - own_total) / (double)acq;
    printf("commands per %s: %.3f  (client-sent:%s)\n", unit, per, line);
    printf("  called inside scripts per %s: %.2f (%s )\n", unit,
           (double)in_scripts / (double)acq, iline);
    return per;
}

/* The server that holds `key`: the first server of the URL, or in a
 * cluster the node its slot lives on (EXISTS, following MOVED). */
static int locate_server(const bu_target *t, const char *key, bu_server *out, char *err,
                         size_t errlen) {
    *out = t->servers[0];
    if (t->url.kind != DL_URL_CLUSTER)
        return 0;
    for (int hop = 0; hop < 3; hop++) {
        redisContext *ctx = bu_connect(t, out, 2000, 0, err, errlen);
        if (ctx == NULL)
            return -1;
        redisReply *r = redisCommand(ctx, "EXISTS %s", key);
        const char *addr = NULL, *colon = NULL;
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0) {
            addr = strchr(r->str + 6, ' ');
            colon = addr ? strrchr(addr, ':') : NULL;
        }
        if (addr && colon && colon > addr + 1) {
            memset(out, 0, sizeof *out);
            size_t hl = (size_t)(colon - addr - 1);
            if (hl >= sizeof out->host)
                hl = sizeof out->host - 1;
            memcpy(out->host, addr + 1, hl);
            out->port = atoi(colon + 1);
            freeReplyObject(r);
            redisFree(ctx);
            continue;
        }
        int ok = r && r->type == REDIS_REPLY_INTEGER;
        if (!ok)
            snprintf(err, errlen, "EXISTS %s: %s", key,
                     r == NULL                       ? ctx->errstr
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "unexpected reply");
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
        return ok ? 0 : -1;
    }
    snprintf(err, errlen, "%s: too many MOVED redirections", key);
    return -1;
}

/* ---- uncontended ---- */

static int client_make(const bench_opts *o, dlock_client **out) {
    dlock_options dopt;
    dlock_options_init(&dopt);
    dopt.waiting = o->poll ? DLOCK_WAIT_POLL : DLOCK_WAIT_PUSH;
    dopt.fencing = !o->no_fence;
    int rc = dlock_client_new(out, o->url, &dopt);
    if (rc != DLOCK_OK) {
        int r = fail("client: %s: %s", dlock_err_name(rc),
                     *out ? dlock_client_errstr(*out) : dlock_strerror(rc));
        dlock_client_free(*out);
        *out = NULL;
        return r;
    }
    rc = dlock_client_ping(*out);
    if (rc != DLOCK_OK) {
        int r = fail("connect: %s: %s", dlock_err_name(rc), dlock_client_errstr(*out));
        dlock_client_free(*out);
        *out = NULL;
        return r;
    }
    return 0;
}

/* One acquire+release pair through the library, of the --kind asked for
 * (a mutex's: dlock_try_acquire + dlock_release). */
static int lib_pair(dlock_client *c, const bench_opts *o, char *err, size_t errlen) {
    return kb_pair(c, o->kind, o->name, o->permits, o->set, o->ttl_ms, err, errlen);
}

static void print_latency(const char *what, uint64_t n, double secs, const bu_samples *s,
                          result *res) {
    res->pairs_per_s = (double)n / secs;
    res->p50_us = bu_samples_quantile(s, 0.50) / 1000.0;
    res->p99_us = bu_samples_quantile(s, 0.99) / 1000.0;
    printf("%s: %" PRIu64 " pairs in %.3f s = %.1f pairs/s\n", what, n, secs, res->pairs_per_s);
    printf("pair latency: p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
           res->p50_us, bu_samples_quantile(s, 0.90) / 1000.0, res->p99_us,
           bu_samples_quantile(s, 0.999) / 1000.0, bu_samples_quantile(s, 1.0) / 1000.0);
}

static int run_uncontended(const bench_opts *o, const bu_target *t, result *res) {
    dlock_client *c;
    if (client_make(o, &c))
        return 1;
    char err[600];
    int64_t now = bu_now_ns();
    int64_t warm_end = now + (int64_t)(o->warmup * 1e9);
    do {
        if (lib_pair(c, o, err, sizeof err) != DLOCK_OK) {
            dlock_client_free(c);
            return fail("warm-up: %s", err);
        }
    } while (bu_now_ns() < warm_end);

    bu_samples s;
    if (bu_samples_init(&s, SAMPLE_CAP) != 0) {
        dlock_client_free(c);
        return fail("out of memory");
    }
    stats_conns sc;
    stats_open(&sc, t);
    bu_cmdstats before, after;
    int got_before = stats_read(&sc, &before);

    uint64_t n = 0, errors = 0;
    int64_t t_start = bu_now_ns(), t_end = t_start + (int64_t)(o->seconds * 1e9), t1 = t_start;
    while (t1 < t_end) {
        int64_t t0 = t1;
        int rc = lib_pair(c, o, err, sizeof err);
        t1 = bu_now_ns();
        if (rc != DLOCK_OK) {
            if (errors++ == 0)
                fprintf(stderr, "dlock-bench: %s\n", err);
            if (errors >= 1000)
                break;
            continue;
        }
        n++;
        bu_samples_add(&s, t1 - t0);
    }
    double secs = (double)(t1 - t_start) / 1e9;
    int got_after = stats_read(&sc, &after);
    stats_close(&sc);
    dlock_client_free(c);
    if (errors >= 1000) {
        bu_samples_free(&s);
        return fail("giving up after %" PRIu64 " failed pairs", errors);
    }
    bu_samples_sort(&s);
    char red[600];
    dl_url_redact(o->url, red, sizeof red);
    printf("mode uncontended: %s, %s '%s', ttl %" PRId64 " ms, %d server(s)\n", red,
           kb_kind_name(o->kind), o->name, o->ttl_ms, t->nservers);
    print_latency("dlock uncontended", n, secs, &s, res);
    if (errors)
        printf("failed pairs: %" PRIu64 "\n", errors);
    if (got_before > 0 && got_before == got_after) {
        inner_set in;
        inner_library(&in);
        double lib;
        own_calls none = {0, 0};
        res->cmds_per_acq = cmds_report(&before, &after, &in, &none, (long long)n, "pair", &lib);
    } else {
        res->cmds_per_acq = -1;
    }
    bu_samples_free(&s);
    return 0;
}

/* ---- raw: two EVALSHA round trips on one blocking hiredis connection ---- */

static const char RAW_ACQ[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
    "return 0\n";
static const char RAW_REL[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

static int script_load(redisContext *ctx, const char *src, char sha[41], char *err,
                       size_t errlen) {
    redisReply *r = redisCommand(ctx, "SCRIPT LOAD %s", src);
    int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok)
        memcpy(sha, r->str, 41);
    else
        snprintf(err, errlen, "SCRIPT LOAD: %s",
                 r == NULL                       ? ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

typedef struct raw_ctx {
    redisContext *ctx;
    int dlock_scripts;
    const char *acq_argv[16], *rel_argv[16];
    size_t acq_len[16], rel_len[16];
    int acq_argc, rel_argc;
    char tok[33];
    uint64_t tok_hi, tok_seq;
} raw_ctx;

static int raw_pair(raw_ctx *x, char *err, size_t errlen) {
    snprintf(x->tok, sizeof x->tok, "%016" PRIx64 "%016" PRIx64, x->tok_hi, x->tok_seq++);
    redisReply *r = redisCommandArgv(x->ctx, x->acq_argc, x->acq_argv, x->acq_len);
    int ok = r != NULL && (x->dlock_scripts
                               ? r->type == REDIS_REPLY_STRING /* the fence: granted */
                               : r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    if (!ok) {
        snprintf(err, errlen, "raw acquire: %s",
                 r == NULL                       ? x->ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not granted (key held?) or unexpected reply");
        if (r)
            freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    r = redisCommandArgv(x->ctx, x->rel_argc, x->rel_argv, x->rel_len);
    ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
    if (!ok) {
        snprintf(err, errlen, "raw release: %s",
                 r == NULL                       ? x->ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not released or unexpected reply");
        if (r)
            freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static int run_raw(const bench_opts *o, const bu_target *t, result *res) {
    char err[600];
    char a[300];
    /* Keys: the library's layout (prefix{name}, :fence, :q, :qi) under a
     * prefix of our own, so the raw runs never touch the library's lock. */
    char keys[4][DLOCK_NAME_MAX + 64];
    static const char *const sfx[4] = {"", ":fence", ":q", ":qi"};
    int nkeys = o->raw_dlock ? 4 : 1;
    for (int i = 0; i < nkeys; i++)
        snprintf(keys[i], sizeof keys[i], "dlock-bench-raw:{%s}%s", o->name, sfx[i]);
    bu_server srv;
    if (locate_server(t, keys[0], &srv, err, sizeof err) != 0)
        return fail("%s", err);
    if (t->url.kind == DL_URL_REDLOCK)
        fprintf(stderr, "dlock-bench: note: raw mode uses only the first server, %s\n",
                bu_server_addr(&srv, a, sizeof a));
    raw_ctx x;
    memset(&x, 0, sizeof x);
    x.dlock_scripts = o->raw_dlock;
    x.ctx = bu_connect(t, &srv, 2000, 1, err, sizeof err);
    if (x.ctx == NULL)
        return fail("%s", err);
    if (getrandom(&x.tok_hi, sizeof x.tok_hi, 0) != (ssize_t)sizeof x.tok_hi)
        x.tok_hi = (uint64_t)bu_now_ns();
    char sha_acq[41], sha_rel[41];
    size_t len;
    const char *src_acq = o->raw_dlock ? dl_script_source(DL_S_ACQUIRE, &len) : RAW_ACQ;
    const char *src_rel = o->raw_dlock ? dl_script_source(DL_S_RELEASE, &len) : RAW_REL;
    if (script_load(x.ctx, src_acq, sha_acq, err, sizeof err) ||
        script_load(x.ctx, src_rel, sha_rel, err, sizeof err)) {
        redisFree(x.ctx);
        return fail("%s", err);
    }
    char ttl[24], nk[4], host[256] = "", meta[400];
    snprintf(ttl, sizeof ttl, "%" PRId64, o->ttl_ms);
    snprintf(nk, sizeof nk, "%d", nkeys);
    gethostname(host, sizeof host - 1);
    snprintf(meta, sizeof meta, "%s\t%ld\t", host, (long)getpid());
    int n = 0;
    x.acq_argv[n++] = "EVALSHA";
    x.acq_argv[n++] = sha_acq;
    x.acq_argv[n++] = nk;
    for (int i = 0; i < nkeys; i++)
        x.acq_argv[n++] = keys[i];
    x.acq_argv[n++] = x.tok;
    x.acq_argv[n++] = ttl;
    if (o->raw_dlock) {
        /* ARGV: token, ttl_ms, meta, fencing (1: INCR), enqueue 0, wait_ms
         * (unused without enqueue, but the script wants 1 or more),
         * acquired_ms */
        x.acq_argv[n++] = meta;
        x.acq_argv[n++] = "1";
        x.acq_argv[n++] = "0";
        x.acq_argv[n++] = "1";
        x.acq_argv[n++] = "0";
    }
    x.acq_argc = n;
    n = 0;
    x.rel_argv[n++] = "EVALSHA";
    x.rel_argv[n++] = sha_rel;
    x.rel_argv[n++] = nk;
    for (int i = 0; i < nkeys; i++)
        x.rel_argv[n++] = keys[i];
    x.rel_argv[n++] = x.tok;
    x.rel_argc = n;
    for (int i = 0; i < x.acq_argc; i++)
        x.acq_len[i] = strlen(x.acq_argv[i]);
    for (int i = 0; i < x.rel_argc; i++)
        x.rel_len[i] = strlen(x.rel_argv[i]);
    x.acq_len[3 + nkeys] = 32; /* the token, filled in per pair */
    x.rel_len[3 + nkeys] = 32;

    int64_t warm_end = bu_now_ns() + (int64_t)(o->warmup * 1e9);
    do {
        if (raw_pair(&x, err, sizeof err) != 0) {
            redisFree(x.ctx);
            return fail("warm-up: %s", err);
        }
    } while (bu_now_ns() < warm_end);

    bu_samples s;
    if (bu_samples_init(&s, SAMPLE_CAP) != 0) {
        redisFree(x.ctx);
        return fail("out of memory");
    }
    stats_conns sc;
    stats_open(&sc, t);
    bu_cmdstats before, after;
    int got_before = stats_read(&sc, &before);
    uint64_t cnt = 0;
    int rc = 0;
    int64_t t_start = bu_now_ns(), t_end = t_start + (int64_t)(o->seconds * 1e9), t1 = t_start;
    while (t1 < t_end) {
        int64_t t0 = t1;
        if (raw_pair(&x, err, sizeof err) != 0) {
            rc = fail("%s", err);
            break;
        }
        t1 = bu_now_ns();
        cnt++;
        bu_samples_add(&s, t1 - t0);
    }
    double secs = (double)(t1 - t_start) / 1e9;
    int got_after = stats_read(&sc, &after);
    stats_close(&sc);
    redisFree(x.ctx);
    if (rc == 0) {
        bu_samples_sort(&s);
        printf("mode raw (%s scripts): server %s, key '%s', ttl %" PRId64 " ms\n",
               o->raw_dlock ? "dlock's" : "minimal", bu_server_addr(&srv, a, sizeof a),
               keys[0], o->ttl_ms);
        print_latency("raw hiredis EVALSHA pairs", cnt, secs, &s, res);
        if (got_before > 0 && got_before == got_after) {
            inner_set in;
            memset(&in, 0, sizeof in);
            inner_scan(&in, src_acq);
            inner_scan(&in, src_rel);
            double lib;
            own_calls none = {0, 0};
            res->cmds_per_acq =
                cmds_report(&before, &after, &in, &none, (long long)cnt, "pair", &lib);
        } else {
            res->cmds_per_acq = -1;
        }
    }
    bu_samples_free(&s);
    return rc;
}

/* ---- contended: W forked workers ---- */

typedef struct log_ent {
    int64_t t_ns;  /* when dlock_wait returned the lock (CLOCK_MONOTONIC) */
    int64_t fence;
    int64_t wait_ns;
} log_ent;

typedef struct wres {
    int64_t acq_total;  /* every acquisition, also after the window closed */
    int64_t acq_window; /* acquisitions that returned inside the window */
    int64_t cs_ok;      /* critical sections whose GET and SET both succeeded */
    int64_t gets, sets; /* GET and SET commands sent */
    int64_t errors;     /* dlock_wait / dlock_release failures */
    int64_t cs_errors;  /* GET/SET failures */
    int64_t lost;       /* release found the lease gone (ENOTHELD) */
    int64_t log_n, log_cap;
    int truncated;
    int setup_failed;
    char errmsg[256];
} wres;

typedef struct shm_hdr {
    int64_t start_ns, end_ns;
    int abort;
} shm_hdr;

typedef struct data_srv {
    bu_server srv;
    char key[DLOCK_NAME_MAX + 64];
} data_srv;

/* Where the counter lives (see locate_server); the counter starts at 0. */
static int data_locate(const bu_target *t, data_srv *d, const char *name, char *err,
                       size_t errlen) {
    snprintf(d->key, sizeof d->key, "dlock-bench:{%s}:counter", name);
    if (locate_server(t, d->key, &d->srv, err, errlen) != 0)
        return -1;
    redisContext *ctx = bu_connect(t, &d->srv, 2000, 1, err, errlen);
    if (ctx == NULL)
        return -1;
    redisReply *r = redisCommand(ctx, "DEL %s", d->key);
    int ok = r && r->type == REDIS_REPLY_INTEGER;
    if (!ok)
        snprintf(err, errlen, "DEL %s: %s", d->key,
                 r == NULL                       ? ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    if (r)
        freeReplyObject(r);
    redisFree(ctx);
    return ok ? 0 : -1;
}

/* The critical section: GET, parse, SET n+1 (deliberately not atomic). */
static int counter_incr(redisContext *d, const char *key, wres *w) {
    w->gets++;
    redisReply *r = redisCommand(d, "GET %s", key);
    long long v = 0;
    int ok = r != NULL && (r->type == REDIS_REPLY_NIL || r->type == REDIS_REPLY_STRING);
    if (ok && r->type == REDIS_REPLY_STRING) {
        char *end;
        v = strtoll(r->str, &end, 10);
        ok = r->len > 0 && *end == '\0';
    }
    if (!ok && w->errmsg[0] == '\0')
        snprintf(w->errmsg, sizeof w->errmsg, "GET %s: %s", key,
                 r == NULL                       ? d->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not an integer");
    if (r)
        freeReplyObject(r);
    if (!ok)
        return -1;
    w->sets++;
    r = redisCommand(d, "SET %s %lld", key, v + 1);
    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (!ok && w->errmsg[0] == '\0')
        snprintf(w->errmsg, sizeof w->errmsg, "SET %s: %s", key,
                 r == NULL ? d->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected");
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static void worker_main(const bench_opts *o, const bu_target *t, const data_srv *ds,
                        volatile shm_hdr *hdr, wres *w, log_ent *log, int ready_fd, int go_fd) {
    dlock_client *c = NULL;
    dlock_options dopt;
    dlock_options_init(&dopt);
    dopt.waiting = o->poll ? DLOCK_WAIT_POLL : DLOCK_WAIT_PUSH;
    dopt.fencing = !o->no_fence;
    int rc = dlock_client_new(&c, o->url, &dopt);
    if (rc == DLOCK_OK)
        rc = dlock_client_ping(c);
    redisContext *d = NULL;
    if (rc != DLOCK_OK) {
        snprintf(w->errmsg, sizeof w->errmsg, "client: %s: %s", dlock_err_name(rc),
                 c ? dlock_client_errstr(c) : dlock_strerror(rc));
    } else {
        d = bu_connect(t, &ds->srv, 5000, 1, w->errmsg, sizeof w->errmsg);
    }
    char b = (c && rc == DLOCK_OK && d) ? 'R' : 'E';
    w->setup_failed = b == 'E';
    if (write(ready_fd, &b, 1) != 1 || b == 'E')
        _exit(1);
    close(ready_fd);
    while (read(go_fd, &b, 1) < 0 && errno == EINTR) { /* EOF: go */
    }
    if (__atomic_load_n(&hdr->abort, __ATOMIC_ACQUIRE))
        _exit(1);
    int64_t start = __atomic_load_n(&hdr->start_ns, __ATOMIC_ACQUIRE);
    int64_t end = __atomic_load_n(&hdr->end_ns, __ATOMIC_ACQUIRE);
    bu_sleep_until_ns(start);

    int64_t now = bu_now_ns();
    while (now < end) {
        dlock_lock *l = NULL;
        int64_t t0 = now;
        rc = dlock_wait(c, o->name, WAIT_TIMEOUT_MS, o->ttl_ms, &l);
        int64_t t1 = bu_now_ns();
        if (rc != DLOCK_OK) {
            if (w->errmsg[0] == '\0')
                snprintf(w->errmsg, sizeof w->errmsg, "dlock_wait: %s: %s", dlock_err_name(rc),
                         dlock_client_errstr(c));
            if (++w->errors >= 100)
                break;
            bu_sleep_ns(1000000);
            now = bu_now_ns();
            continue;
        }
        dlock_info info;
        dlock_info_get(l, &info);
        if (counter_incr(d, ds->key, w) == 0)
            w->cs_ok++;
        else if (++w->cs_errors >= 100)
            now = end; /* stop after releasing */
        if (o->hold_us > 0)
            bu_sleep_ns(o->hold_us * 1000);
        rc = dlock_release(l);
        if (rc == DLOCK_ENOTHELD) {
            w->lost++;
        } else if (rc != DLOCK_OK) {
            if (w->errmsg[0] == '\0')
                snprintf(w->errmsg, sizeof w->errmsg, "dlock_release: %s: %s",
                         dlock_err_name(rc), dlock_client_errstr(c));
            w->errors++;
        }
        dlock_lock_free(l);
        w->acq_total++;
        if (t1 < end)
            w->acq_window++;
        if (w->log_n < w->log_cap) {
            log_ent *e = &log[w->log_n++];
            e->t_ns = t1;
            e->fence = info.fence;
            e->wait_ns = t1 - t0;
        } else {
            w->truncated = 1;
        }
        if (now < end)
            now = bu_now_ns();
    }
    redisFree(d);
    dlock_client_free(c);
    _exit(0);
}

typedef struct merged {
    int64_t t_ns, fence, wait_ns;
    int wid;
} merged;

static int cmp_fence(const void *a, const void *b) {
    const merged *x = a, *y = b;
    if (x->fence != y->fence)
        return (x->fence > y->fence) - (x->fence < y->fence);
    return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

static int cmp_time(const void *a, const void *b) {
    const merged *x = a, *y = b;
    return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

/* Wait for every worker (killing them past deadline_ns); report workers
 * that did not exit cleanly. Returns how many did not. */
static int reap(pid_t *pids, int n, int64_t deadline_ns) {
    int left = 0, bad = 0;
    for (int i = 0; i < n; i++)
        left += pids[i] > 0;
    while (left > 0) {
        for (int i = 0; i < n; i++) {
            if (pids[i] <= 0)
                continue;
            int st = 0;
            pid_t r = waitpid(pids[i], &st, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR))
                continue;
            if (r == pids[i] && WIFSIGNALED(st)) {
                fprintf(stderr, "dlock-bench: worker %d killed by signal %d\n", i, WTERMSIG(st));
                bad++;
            } else if (r == pids[i] && WEXITSTATUS(st) != 0) {
                fprintf(stderr, "dlock-bench: worker %d exited with status %d\n", i,
                        WEXITSTATUS(st));
                bad++;
            }
            pids[i] = 0;
            left--;
        }
        if (left == 0)
            break;
        if (bu_now_ns() > deadline_ns) {
            fprintf(stderr, "dlock-bench: %d worker(s) still running; killing them\n", left);
            for (int i = 0; i < n; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGKILL);
            deadline_ns = INT64_MAX;
        }
        bu_sleep_ns(2000000);
    }
    return bad;
}

static int run_contended(const bench_opts *o, const bu_target *t, result *res) {
    const int W = o->workers;
    char err[600];
    data_srv ds;
    if (data_locate(t, &ds, o->name, err, sizeof err) != 0)
        return fail("counter: %s", err);

    /* Warm-up in the parent: connects, loads the scripts into the server's
     * cache, and waits out a lease left by an earlier, killed run. */
    {
        dlock_client *c;
        if (client_make(o, &c))
            return 1;
        dlock_lock *l = NULL;
        int rc = dlock_wait(c, o->name, WAIT_TIMEOUT_MS, o->ttl_ms, &l);
        if (rc == DLOCK_OK)
            rc = dlock_release(l);
        dlock_lock_free(l);
        if (rc != DLOCK_OK) {
            fail("warm-up: %s: %s", dlock_err_name(rc), dlock_client_errstr(c));
            dlock_client_free(c);
            return 1;
        }
        dlock_client_free(c);
    }

    int64_t cap = (int64_t)((o->seconds + 5) * 50000) + 10000;
    if (cap > LOG_BUDGET / W)
        cap = LOG_BUDGET / W;
    size_t off_w = (sizeof(shm_hdr) + 63) & ~(size_t)63;
    size_t off_log = (off_w + (size_t)W * sizeof(wres) + 63) & ~(size_t)63;
    size_t total = off_log + (size_t)W * (size_t)cap * sizeof(log_ent);
    void *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (mem == MAP_FAILED)
        return fail("mmap %zu bytes: %s", total, strerror(errno));
    volatile shm_hdr *hdr = mem;
    wres *wr = (wres *)((char *)mem + off_w);
    log_ent *logs = (log_ent *)((char *)mem + off_log);
    for (int i = 0; i < W; i++)
        wr[i].log_cap = cap;

    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) {
        munmap(mem, total);
        return fail("pipe: %s", strerror(errno));
    }
    fflush(stdout);
    fflush(stderr);
    pid_t *pids = calloc((size_t)W, sizeof *pids);
    if (pids == NULL) {
        munmap(mem, total);
        return fail("out of memory");
    }
    int forked = 0, rc = 0;
    for (int i = 0; i < W; i++) {
        pid_t p = fork();
        if (p < 0) {
            rc = fail("fork: %s", strerror(errno));
            break;
        }
        if (p == 0) {
            close(ready[0]);
            close(go[1]);
            worker_main(o, t, &ds, hdr, &wr[i], logs + (size_t)i * (size_t)cap, ready[1],
                        go[0]);
            _exit(1);
        }
        pids[i] = p;
        forked++;
    }
    close(ready[1]);
    close(go[0]);

    /* Wait until every worker has connected (or failed to). */
    int readies = 0, bad = 0;
    int64_t setup_deadline = bu_now_ns() + 30 * (int64_t)1000000000;
    while (rc == 0 && readies + bad < forked) {
        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        int64_t left_ms = (setup_deadline - bu_now_ns()) / 1000000;
        if (left_ms <= 0) {
            rc = fail("workers did not connect within 30 s");
            break;
        }
        int pr = poll(&pfd, 1, (int)left_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        char buf[64];
        ssize_t nr = pr > 0 ? read(ready[0], buf, sizeof buf) : 0;
        if (nr <= 0 && pr > 0) {
            rc = fail("a worker exited during set-up");
            break;
        }
        for (ssize_t k = 0; k < nr; k++)
            *(buf[k] == 'R' ? &readies : &bad) += 1;
    }
    close(ready[0]);
    if (rc == 0 && bad > 0) {
        for (int i = 0; i < W; i++)
            if (wr[i].setup_failed) {
                rc = fail("worker %d: %s", i, wr[i].errmsg);
                break;
            }
        if (rc == 0)
            rc = fail("%d worker(s) failed to set up", bad);
    }

    stats_conns sc;
    bu_cmdstats before, after;
    int got_before = 0, got_after = 0;
    if (rc == 0) {
        stats_open(&sc, t);
        got_before = stats_read(&sc, &before);
        int64_t start = bu_now_ns() + 20000000; /* 20 ms: every worker is past read() */
        __atomic_store_n(&hdr->start_ns, start, __ATOMIC_RELEASE);
        __atomic_store_n(&hdr->end_ns, start + (int64_t)(o->seconds * 1e9), __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&hdr->abort, 1, __ATOMIC_RELEASE);
    }
    close(go[1]); /* EOF on every worker's go pipe: start */
    int64_t run_deadline =
        bu_now_ns() + (int64_t)((o->seconds + 2 * WAIT_TIMEOUT_MS / 1000.0 + 10) * 1e9);
    int crashed = reap(pids, W, run_deadline);
    free(pids);
    if (rc != 0) {
        munmap(mem, total);
        return rc;
    }
    got_after = stats_read(&sc, &after);
    stats_close(&sc);

    /* The counter as the workers left it. */
    long long actual = -1;
    {
        redisContext *d = bu_connect(t, &ds.srv, 5000, 1, err, sizeof err);
        redisReply *r = d ? redisCommand(d, "GET %s", ds.key) : NULL;
        if (r && r->type == REDIS_REPLY_STRING)
            actual = strtoll(r->str, NULL, 10);
        else if (r && r->type == REDIS_REPLY_NIL)
            actual = 0;
        else
            fprintf(stderr, "dlock-bench: warning: reading the counter: %s\n",
                    d == NULL ? err : r == NULL ? d->errstr : "unexpected reply");
        if (r)
            freeReplyObject(r);
        if (d)
            redisFree(d);
    }

    /* Merge the logs. */
    int64_t start = hdr->start_ns, end = hdr->end_ns;
    int64_t cutoff = end;
    int64_t n_log = 0, acq_total = 0, acq_window = 0, cs_ok = 0, gets = 0, sets = 0, errors = 0,
            cs_errors = 0, lost = 0, min_w = INT64_MAX, max_w = 0;
    for (int i = 0; i < W; i++) {
        const wres *w = &wr[i];
        n_log += w->log_n;
        acq_total += w->acq_total;
        acq_window += w->acq_window;
        cs_ok += w->cs_ok;
        gets += w->gets;
        sets += w->sets;
        errors += w->errors;
        cs_errors += w->cs_errors;
        lost += w->lost;
        if (w->acq_window < min_w)
            min_w = w->acq_window;
        if (w->acq_window > max_w)
            max_w = w->acq_window;
        if (w->truncated && w->log_n > 0) {
            int64_t last = logs[(size_t)i * (size_t)cap + (size_t)w->log_n - 1].t_ns;
            if (last < cutoff)
                cutoff = last;
        }
        if (w->errmsg[0])
            fprintf(stderr, "dlock-bench: worker %d: %s\n", i, w->errmsg);
    }
    merged *m = malloc((size_t)(n_log > 0 ? n_log : 1) * sizeof *m);
    bu_samples waits;
    if (m == NULL || bu_samples_init(&waits, SAMPLE_CAP) != 0) {
        free(m);
        munmap(mem, total);
        return fail("out of memory");
    }
    int64_t k = 0, zero_fence = 0;
    for (int i = 0; i < W; i++) {
        const log_ent *lg = logs + (size_t)i * (size_t)cap;
        for (int64_t j = 0; j < wr[i].log_n; j++) {
            m[k].t_ns = lg[j].t_ns;
            m[k].fence = lg[j].fence;
            m[k].wait_ns = lg[j].wait_ns;
            m[k].wid = i;
            zero_fence += lg[j].fence == 0;
            /* Every wait began inside the window; those that ended after
             * it count too (a long wait is no less long for ending late). */
            if (cutoff == end || lg[j].t_ns < cutoff)
                bu_samples_add(&waits, lg[j].wait_ns);
            k++;
        }
    }
    /* Global order: by fence (strictly increasing per grant); by time when
     * fencing tokens are missing. */
    qsort(m, (size_t)n_log, sizeof *m, zero_fence ? cmp_time : cmp_fence);
    int64_t handoffs = 0, dup_fence = 0, inversions = 0;
    for (int64_t i = 1; i < n_log; i++) {
        if (m[i].wid != m[i - 1].wid && m[i].t_ns >= start && m[i].t_ns < cutoff)
            handoffs++;
        if (!zero_fence && m[i].fence == m[i - 1].fence)
            dup_fence++;
        if (m[i].t_ns < m[i - 1].t_ns)
            inversions++;
    }
    bu_samples_sort(&waits);
    double secs = (double)(end - start) / 1e9;
    double hsecs = (double)(cutoff - start) / 1e9;
    double mean = (double)acq_window / W;

    res->acq_per_s = (double)acq_window / secs;
    res->handoffs_per_s = hsecs > 0 ? (double)handoffs / hsecs : 0;
    res->min_share = mean > 0 ? (double)min_w / mean : 0;
    res->wait_p99_us = bu_samples_quantile(&waits, 0.99) / 1000.0;
    res->violations = actual < 0 ? -1 : cs_ok - actual;

    printf("mode contended: %d worker(s), waiting %s, key '%s', ttl %" PRId64
           " ms, hold %" PRId64 " us, %d server(s)\n",
           W, o->poll ? "poll" : "push", o->name, o->ttl_ms, o->hold_us, t->nservers);
    printf("acquisitions: %" PRId64 " in %.3f s = %.1f /s  (%" PRId64
           " more after the window closed)\n",
           acq_window, secs, res->acq_per_s, acq_total - acq_window);
    printf("handoffs:     %" PRId64 " = %.1f /s  (%.1f%% of acquisitions)\n", handoffs,
           res->handoffs_per_s, acq_window > 0 ? 100.0 * (double)handoffs / (double)acq_window
                                               : 0.0);
    printf("per worker:   min %" PRId64 "  max %" PRId64 "  mean %.1f  min_share %.3f\n", min_w,
           max_w, mean, res->min_share);
    printf("  shares:");
    for (int i = 0; i < W && i < 64; i++)
        printf(" %" PRId64, wr[i].acq_window);
    printf("%s\n", W > 64 ? " ..." : "");
    printf("wait (time in dlock_wait): p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  "
           "max %.1f us\n",
           bu_samples_quantile(&waits, 0.5) / 1000.0, bu_samples_quantile(&waits, 0.9) / 1000.0,
           res->wait_p99_us, bu_samples_quantile(&waits, 0.999) / 1000.0,
           bu_samples_quantile(&waits, 1.0) / 1000.0);
    if (got_before > 0 && got_before == got_after) {
        inner_set in;
        inner_library(&in);
        double lib;
        own_calls own = {gets, sets};
        res->cmds_per_acq =
            cmds_report(&before, &after, &in, &own, acq_total, "acquisition", &lib);
        printf("  library commands per acquisition (without the bench's GET+SET): %.3f\n", lib);
        if (handoffs > 0)
            printf("  client commands per handoff: %.2f\n",
                   res->cmds_per_acq * (double)acq_total / (double)handoffs);
    } else {
        res->cmds_per_acq = -1;
        fprintf(stderr, "dlock-bench: warning: INFO commandstats unavailable\n");
    }
    printf("counter: expected %" PRId64 " (critical sections), actual %lld: violations %lld\n",
           cs_ok, actual, res->violations);
    if (errors || cs_errors || lost)
        printf("errors: %" PRId64 " lock call failures, %" PRId64 " GET/SET failures, %" PRId64
               " leases lost before release\n",
               errors, cs_errors, lost);
    if (dup_fence || inversions)
        printf("ORDER ANOMALIES: %" PRId64 " duplicate fences, %" PRId64
               " acquisitions earlier than the previous fence's\n",
               dup_fence, inversions);
    if (crashed)
        printf("WARNING: %d worker(s) did not finish cleanly; figures are partial\n", crashed);
    if (zero_fence)
        printf("note: %" PRId64 " acquisitions without a fence; ordered by time\n", zero_fence);
    if (cutoff < end)
        printf("note: a worker's log filled up; handoffs and waits cover the first %.3f s\n",
               hsecs);
    if (res->violations != 0)
        fprintf(stderr, "dlock-bench: MUTUAL EXCLUSION VIOLATED: %lld lost updates\n",
                res->violations);
    bu_samples_free(&waits);
    free(m);
    munmap(mem, total);
    return 0;
}

int main(int argc, char **argv) {
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    bu_target *t = calloc(1, sizeof *t);
    if (t == NULL)
        return fail("out of memory");
    char err[600];
    if (bu_target_resolve(t, o.url, err, sizeof err) != 0) {
        free(t);
        /* A URL the parser refuses is a usage error; an unreachable one is not. */
        dl_url u;
        char e2[8];
        return dl_url_parse(o.url, &u, e2, sizeof e2) != 0 ? usage_error("--url: %s", err)
                                                           : fail("%s", err);
    }
    if (o.mode == M_PIPELINED) {
        int inflight = o.inflight ? o.inflight : 64;
        rc = run_pipelined_mode(o.url, inflight, o.names ? o.names : inflight, o.seconds, o.warmup,
                                o.ttl_ms, o.no_fence);
        free(t);
        return rc;
    }
    if (o.mode == M_SEMAPHORE || o.mode == M_RWLOCK || o.mode == M_MULTILOCK) {
        kb_opts k = {.mode = o.mode == M_SEMAPHORE ? KB_SEMAPHORE
                             : o.mode == M_RWLOCK ? KB_RWLOCK : KB_MULTILOCK,
                     .url = o.url, .name = o.name, .workers = o.workers, .permits = o.permits,
                     .readers = o.readers, .writers = o.writers, .names = o.names,
                     .set = o.set, .seconds = o.seconds, .ttl_ms = o.ttl_ms,
                     .hold_us = o.hold_us, .writer_hold_us = o.writer_hold_us,
                     .wait_ms = o.wait_ms};
        free(t);
        return run_kinds_mode(&k);
    }
    if (o.mode == M_KEEPALIVE) {
        rc = run_keepalive_mode(o.url, t, o.locks ? o.locks : 10000, o.seconds, o.ttl_ms);
        free(t);
        return rc;
    }
    result res;
    memset(&res, 0, sizeof res);
    switch (o.mode) {
    case M_UNCONTENDED:
        rc = run_uncontended(&o, t, &res);
        break;
    case M_RAW:
        rc = run_raw(&o, t, &res);
        break;
    case M_CONTENDED:
        rc = run_contended(&o, t, &res);
        break;
    default:
        rc = EXIT_USAGE;
    }
    free(t);
    if (rc != 0)
        return rc;
    printf("RESULT mode=%s pairs_per_s=%.1f p50_us=%.1f p99_us=%.1f acq_per_s=%.1f "
           "handoffs_per_s=%.1f min_share=%.3f wait_p99_us=%.1f cmds_per_acq=%.3f "
           "violations=%lld workers=%d waiting=%s%s%s\n",
           mode_name(o.mode), res.pairs_per_s, res.p50_us, res.p99_us, res.acq_per_s,
           res.handoffs_per_s, res.min_share, res.wait_p99_us, res.cmds_per_acq, res.violations,
           o.mode == M_CONTENDED ? o.workers : 1, o.poll ? "poll" : "push",
           o.mode == M_UNCONTENDED ? " kind=" : "", o.mode == M_UNCONTENDED ? kb_kind_name(o.kind) : "");
    return 0;
}
