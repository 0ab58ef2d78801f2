/* options.c - dlock-bench's modes and command line: the table of modes
 * (--help is printed from it), usage() and parse_args(). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench.h"
#include <getopt.h>
#include "kinds_mode.h"

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

const char *mode_name(enum mode m) {
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

int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dlock-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'dlock-bench --help'.\n", stderr);
    return EXIT_USAGE;
}

int fail(const char *fmt, ...) {
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

int parse_args(int argc, char **argv, bench_opts *o) {
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
    long long v = 0;
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

