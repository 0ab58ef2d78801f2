/* dlock.c - the dlock command-line tool: main, options, help, error
 * reporting, and the acquire / release / extend / status subcommands.
 * The run subcommand lives in run.c, waiting in wait.c. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "cli.h"

#ifndef DLOCK_CLI_VERSION
#define DLOCK_CLI_VERSION "0.1.0"
#endif

/* ---- help --------------------------------------------------------------- */

static const char usage_main[] =
    "usage: dlock [OPTIONS] COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "Distributed locks on Redis: run a command while holding a fleet-wide lock.\n"
    "\n"
    "Commands:\n"
    "  run NAME [--] COMMAND [ARGS...]  run COMMAND while holding lock NAME\n"
    "  acquire NAME                     take NAME, print \"TOKEN FENCE\"\n"
    "  release NAME TOKEN               release NAME if it carries TOKEN\n"
    "  extend NAME TOKEN                reset NAME's lease to --ttl if it carries TOKEN\n"
    "  status NAME                      who holds NAME, for how long, last fence\n"
    "  doctor [URL]                     check the servers for settings unsafe for locks\n"
    "  help [COMMAND]                   show help for COMMAND\n"
    "\n"
    "Options (each command lists those it takes; see dlock COMMAND --help):\n"
    "  -u, --url URL           server, e.g. redis://[user:password@]host[:port][/db];\n"
    "                          default $DLOCK_URL, else " CLI_DEFAULT_URL "\n"
    "      --url-file FILE     read the URL from FILE, which only its owner may read\n"
    "                          (chmod 600); default $DLOCK_URL_FILE\n"
    "      --pass-url-env      run: let COMMAND inherit DLOCK_URL / DLOCK_URL_FILE\n"
    "                          (removed from its environment by default)\n"
    "  -t, --ttl MS            lease length in milliseconds (default 10000)\n"
    "  -w, --wait SECONDS      give up after SECONDS (fractions allowed; default: wait\n"
    "                          as long as it takes)\n"
    "  -n, --no-wait           fail at once if the lock is held\n"
    "  -E, --conflict-exit-code N  exit status when the lock is not obtained (default 1)\n"
    "  -k, --kill-after SECONDS    run: SIGKILL this long after SIGTERM (default 5)\n"
    "  -i, --interval MS       run: extend the lease every MS (default ttl/3)\n"
    "  -l, --label TEXT        label stored with the lock, shown by status\n"
    "  -T, --timeout MS        connect and command timeout per server (default 1000)\n"
    "  -j, --json              machine-readable output (one JSON object)\n"
    "  -v, --verbose           report waiting (who holds the lock), acquiring, releasing\n"
    "  -h, --help              show help\n"
    "  -V, --version           show the version\n"
    "\n"
    "Exit status: 0 success (run: the command's status, 128+N if killed by signal N),\n"
    "1 lock not obtained or not held with that token (see -E), 2 usage error,\n"
    "69 server unreachable or error, 70 internal error, 75 lock lost while the\n"
    "command ran, 126 command not executable, 127 command not found;\n"
    "doctor: 0 safe, 1 warnings, 69 a server unreachable, 78 unsafe settings.\n"
    "See dlock(1).\n";

static const char usage_run[] =
    "usage: dlock run [OPTIONS] NAME [--] COMMAND [ARGS...]\n"
    "\n"
    "Take lock NAME (waiting for it unless -n or -w say otherwise), run COMMAND in\n"
    "its own process group with DLOCK_NAME, DLOCK_TOKEN and DLOCK_FENCE set, keep\n"
    "the lease alive while it runs, release the lock when it exits, and exit with\n"
    "its status. Signals INT, TERM, HUP, QUIT, USR1, USR2 sent to dlock are passed\n"
    "to the command. If the lock is lost while COMMAND runs, COMMAND's process\n"
    "group gets SIGTERM, then SIGKILL after --kill-after, and dlock exits 75.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -t, --ttl MS            lease length (default 10000); kept alive while running\n"
    "      --pass-url-env      let COMMAND inherit DLOCK_URL / DLOCK_URL_FILE (removed\n"
    "                          from its environment by default: they hold the password)\n"
    "  -i, --interval MS       extend the lease every MS (default ttl/3)\n"
    "  -w, --wait SECONDS      give up waiting after SECONDS (default: no limit)\n"
    "  -n, --no-wait           fail at once if the lock is held\n"
    "  -E, --conflict-exit-code N  exit status when the lock is not obtained (default 1)\n"
    "  -k, --kill-after SECONDS    grace between SIGTERM and SIGKILL after a lost lock\n"
    "                          (default 5)\n"
    "  -l, --label TEXT        label stored with the lock, shown by status\n"
    "  -T, --timeout MS        connect and command timeout per server (default 1000)\n"
    "  -j, --json              when done, write a JSON summary to standard error\n"
    "  -v, --verbose           show who holds the lock while waiting\n"
    "\n"
    "Exit status: COMMAND's status (128+N if killed by signal N); 1 (or -E N) lock\n"
    "not obtained; 2 usage; 69 server error; 70 internal error; 75 lock lost;\n"
    "126 COMMAND not executable; 127 COMMAND not found.\n";

static const char usage_acquire[] =
    "usage: dlock acquire [OPTIONS] NAME\n"
    "\n"
    "Take lock NAME for --ttl milliseconds and print \"TOKEN FENCE\" (one line) for\n"
    "shell scripts. The lease is not kept alive: extend it with dlock extend and\n"
    "give it back with dlock release NAME TOKEN.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -t, --ttl MS            lease length (default 10000)\n"
    "  -w, --wait SECONDS      give up waiting after SECONDS (default: no limit)\n"
    "  -n, --no-wait           fail at once if the lock is held\n"
    "  -E, --conflict-exit-code N  exit status when the lock is not obtained (default 1)\n"
    "  -l, --label TEXT        label stored with the lock, shown by status\n"
    "  -T, --timeout MS        connect and command timeout per server (default 1000)\n"
    "  -j, --json              print {\"name\",\"acquired\",\"token\",\"fence\",...}\n"
    "  -v, --verbose           show who holds the lock while waiting\n"
    "\n"
    "Exit status: 0 acquired; 1 (or -E N) not obtained; 2 usage; 69 server error.\n";

static const char usage_release[] =
    "usage: dlock release [OPTIONS] NAME TOKEN\n"
    "\n"
    "Release lock NAME if it still carries TOKEN (from dlock acquire, or\n"
    "$DLOCK_TOKEN inside dlock run).\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -T, --timeout MS        connect and command timeout per server (default 1000)\n"
    "  -j, --json              print {\"name\",\"released\",...}\n"
    "  -v, --verbose           say what happened\n"
    "\n"
    "Exit status: 0 released; 1 not held with that token (expired, released or\n"
    "taken); 2 usage; 69 server error.\n";

static const char usage_extend[] =
    "usage: dlock extend [OPTIONS] NAME TOKEN\n"
    "\n"
    "Set the remaining lease of NAME to --ttl milliseconds if it still carries\n"
    "TOKEN.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -t, --ttl MS            new remaining lease (default 10000)\n"
    "  -T, --timeout MS        connect and command timeout per server (default 1000)\n"
    "  -j, --json              print {\"name\",\"extended\",\"ttl_ms\",...}\n"
    "  -v, --verbose           say what happened\n"
    "\n"
    "Exit status: 0 extended; 1 not held with that token; 2 usage; 69 server error.\n";

static const char usage_status[] =
    "usage: dlock status [OPTIONS] NAME\n"
    "\n"
    "Show whether NAME is held, by whom (host, pid, label), since when, how long\n"
    "the lease still runs, its fencing token (or the last one issued) and how many\n"
    "processes wait for it.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -T, --timeout MS        connect and command timeout per server (default 1000)\n"
    "  -j, --json              print one JSON object (see dlock(1))\n"
    "  -v, --verbose           no effect\n"
    "\n"
    "Exit status: 0 (held or free); 2 usage; 69 server error.\n";

static const struct subcmd {
    const char *name;
    const char *usage;
    const char *synopsis;
    unsigned allowed;
} subcmds[] = {
    {"run", usage_run, "dlock run [OPTIONS] NAME [--] COMMAND [ARGS...]",
     OPT_URL | OPT_TTL | OPT_WAIT | OPT_NOWAIT | OPT_CONFLICT | OPT_KILLAFTER | OPT_LABEL |
         OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_INTERVAL | OPT_URLFILE | OPT_PASSENV},
    {"acquire", usage_acquire, "dlock acquire [OPTIONS] NAME",
     OPT_URL | OPT_TTL | OPT_WAIT | OPT_NOWAIT | OPT_CONFLICT | OPT_LABEL | OPT_TIMEOUT |
         OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
    {"release", usage_release, "dlock release [OPTIONS] NAME TOKEN",
     OPT_URL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
    {"extend", usage_extend, "dlock extend [OPTIONS] NAME TOKEN",
     OPT_URL | OPT_TTL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
    {"status", usage_status, "dlock status [OPTIONS] NAME",
     OPT_URL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
};
#define NSUBCMDS (sizeof subcmds / sizeof subcmds[0])

static const struct option long_opts[] = {
    {"url", required_argument, NULL, 'u'},
    {"ttl", required_argument, NULL, 't'},
    {"wait", required_argument, NULL, 'w'},
    {"no-wait", no_argument, NULL, 'n'},
    {"conflict-exit-code", required_argument, NULL, 'E'},
    {"kill-after", required_argument, NULL, 'k'},
    {"interval", required_argument, NULL, 'i'},
    {"label", required_argument, NULL, 'l'},
    {"timeout", required_argument, NULL, 'T'},
    {"json", no_argument, NULL, 'j'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"url-file", required_argument, NULL, CLI_LONG_URL_FILE},
    {"pass-url-env", no_argument, NULL, CLI_LONG_PASS_URL_ENV},
    {NULL, 0, NULL, 0},
};
#define SHORT_OPTS "u:t:w:nE:k:i:l:T:jvhV"

static const struct {
    unsigned bit;
    const char *name;
} opt_names[] = {
    {OPT_URL, "--url"},           {OPT_TTL, "--ttl"},     {OPT_WAIT, "--wait"},
    {OPT_NOWAIT, "--no-wait"},    {OPT_CONFLICT, "--conflict-exit-code"},
    {OPT_KILLAFTER, "--kill-after"}, {OPT_LABEL, "--label"}, {OPT_TIMEOUT, "--timeout"},
    {OPT_JSON, "--json"},         {OPT_VERBOSE, "--verbose"}, {OPT_INTERVAL, "--interval"},
    {OPT_URLFILE, "--url-file"},  {OPT_PASSENV, "--pass-url-env"},
};

/* ---- messages ------------------------------------------------------------ */

void cli_msg(const char *fmt, ...) {
    va_list ap;
    fputs("dlock: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* Bad command line: the problem, the synopsis, where to read more; exit 2. */
static int usage_error(const struct subcmd *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const struct subcmd *sc, const char *fmt, ...) {
    va_list ap;
    fputs("dlock: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (sc != NULL)
        fprintf(stderr, "\nusage: %s\nTry 'dlock %s --help' for more.\n", sc->synopsis,
                sc->name);
    else
        fputs("\nusage: dlock [OPTIONS] COMMAND [OPTIONS] ARGS...\n"
              "Try 'dlock --help' for more.\n",
              stderr);
    return EXIT_USAGE;
}

/* The library says "connect HOST:PORT: reason", possibly after a prefix
 * naming the operation ("inspect: connect ..."). Returns "HOST:PORT: reason". */
static const char *connect_part(const char *d) {
    for (const char *p = d; (p = strstr(p, "connect ")) != NULL; p++)
        if (p == d || (p >= d + 2 && p[-1] == ' ' && p[-2] == ':'))
            return p + 8;
    return NULL;
}

int cli_fail(cli *c, int rc, const char *what) {
    const char *detail = c->client ? dlock_client_errstr(c->client) : "";
    if (detail[0] == '\0')
        detail = dlock_strerror(rc);
    char d[400];
    cli_safe(detail, d, sizeof d);
    switch (rc) {
    case DLOCK_EIO:
        if (connect_part(d) != NULL)
            cli_msg("cannot connect to %s \xe2\x80\x94 is redis-server running there? "
                    "set DLOCK_URL or --url (using %s)",
                    connect_part(d), c->url_shown);
        else if (strstr(d, "timeout") != NULL || strstr(d, "timed out") != NULL)
            cli_msg("cannot %s: %s \xe2\x80\x94 the server is slow or unreachable; "
                    "check it, or raise --timeout",
                    what, d);
        else
            cli_msg("cannot %s: %s \xe2\x80\x94 check that the server at %s is up", what, d,
                    c->url_shown);
        return EXIT_SERVER;
    case DLOCK_ESERVER:
        cli_msg("cannot %s: the server answered with an error: %s \xe2\x80\x94 check the "
                "password/ACL in the URL and that the server is a writable master",
                what, d);
        return EXIT_SERVER;
    case DLOCK_ENOQUORUM:
        cli_msg("cannot %s: %s \xe2\x80\x94 too few of the servers in %s answered; "
                "a majority must be up",
                what, d, c->url_shown);
        return EXIT_SERVER;
    case DLOCK_EUNKNOWN:
        cli_msg("cannot %s: %s \xe2\x80\x94 the outcome is unknown: a lease may exist until "
                "its TTL ends",
                what, d);
        return EXIT_SERVER;
    case DLOCK_EPROTO:
        cli_msg("cannot %s: %s \xe2\x80\x94 is %s a Redis-compatible server?", what, d,
                c->url_shown);
        return EXIT_SERVER;
    case DLOCK_ENOTSUP:
        cli_msg("cannot %s: %s", what, d);
        return EXIT_SERVER;
    case DLOCK_EINVAL:
        cli_msg("cannot %s: %s", what, d);
        return EXIT_USAGE;
    case DLOCK_ENOMEM:
        cli_msg("cannot %s: out of memory", what);
        return EXIT_INTERNAL;
    case DLOCK_EBUSY:
    case DLOCK_ETIMEDOUT:
    case DLOCK_ENOTHELD:
        cli_msg("cannot %s: %s", what, d);
        return EXIT_CONFLICT;
    default:
        cli_msg("cannot %s: %s (%s)", what, d, dlock_err_name(rc));
        return EXIT_INTERNAL;
    }
}

int cli_connect(cli *c) {
    dlock_options o;
    dlock_options_init(&o);
    o.owner_label = c->label;
    if (c->timeout_ms > 0) {
        o.connect_timeout_ms = c->timeout_ms;
        o.command_timeout_ms = c->timeout_ms;
    }
    int rc = dlock_client_new(&c->client, c->url, &o);
    if (rc == DLOCK_OK)
        return 0;
    if (c->client == NULL) {
        cli_msg("cannot create a client: %s", dlock_strerror(rc));
        return EXIT_INTERNAL;
    }
    char d[400];
    cli_safe(dlock_client_errstr(c->client), d, sizeof d);
    if (rc == DLOCK_EINVAL)
        cli_msg("bad server URL '%s': %s \xe2\x80\x94 expected e.g. redis://host:6379 or "
                "redis://:password@host:6379/0 (set DLOCK_URL or --url)",
                c->url_shown, d);
    else
        cli_msg("cannot use server URL '%s': %s", c->url_shown, d);
    dlock_client_free(c->client);
    c->client = NULL;
    return rc == DLOCK_EINVAL ? EXIT_USAGE : EXIT_SERVER;
}

/* ---- number parsing -------------------------------------------------------- */

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Seconds with an optional fraction ("1", "0.5", "2.25") into ms. */
static int parse_seconds(const char *s, int64_t *out_ms) {
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '-' || *s == '+')
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1; /* no hex, exponents, inf or nan */
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 ||
        v > (double)DLOCK_TTL_MAX / 1000.0)
        return -1;
    *out_ms = (int64_t)llround(v * 1000.0);
    return 0;
}

/* ---- option parsing ------------------------------------------------------- */

/* Parses options of argv[0..argc) with getopt_long into c. Returns -1 to go
 * on, or an exit code (help, version, bad option). */
static int parse_opts(cli *c, const struct subcmd *sc, int argc, char **argv, int stop_at_arg) {
    char shortopts[64];
    snprintf(shortopts, sizeof shortopts, "%s:%s", stop_at_arg ? "+" : "", SHORT_OPTS);
    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    int ch;
    long long v;
    while ((ch = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            c->url = optarg;
            c->given |= OPT_URL;
            break;
        case 't':
            if (parse_int(optarg, 1, DLOCK_TTL_MAX, &v) != 0)
                return usage_error(sc, "--ttl wants milliseconds, 1..%lld; got '%s'",
                                   (long long)DLOCK_TTL_MAX, optarg);
            c->ttl_ms = v;
            c->given |= OPT_TTL;
            break;
        case 'w':
            if (parse_seconds(optarg, &c->wait_ms) != 0)
                return usage_error(sc, "--wait wants seconds (e.g. 10 or 0.5); got '%s'",
                                   optarg);
            c->given |= OPT_WAIT;
            break;
        case 'n':
            c->no_wait = 1;
            c->given |= OPT_NOWAIT;
            break;
        case 'E':
            if (parse_int(optarg, 0, 255, &v) != 0)
                return usage_error(sc, "--conflict-exit-code wants 0..255; got '%s'", optarg);
            c->conflict_code = (int)v;
            c->given |= OPT_CONFLICT;
            break;
        case 'k':
            if (parse_seconds(optarg, &c->kill_after_ms) != 0)
                return usage_error(sc, "--kill-after wants seconds (e.g. 5 or 0.5); got '%s'",
                                   optarg);
            c->given |= OPT_KILLAFTER;
            break;
        case 'i':
            if (parse_int(optarg, 1, DLOCK_TTL_MAX, &v) != 0)
                return usage_error(sc, "--interval wants milliseconds; got '%s'", optarg);
            c->interval_ms = v;
            c->given |= OPT_INTERVAL;
            break;
        case 'l':
            if (strlen(optarg) > DLOCK_LABEL_MAX)
                return usage_error(sc, "--label is longer than %d bytes", DLOCK_LABEL_MAX);
            c->label = optarg;
            c->given |= OPT_LABEL;
            break;
        case 'T':
            if (parse_int(optarg, 1, 3600000, &v) != 0)
                return usage_error(sc, "--timeout wants milliseconds, 1..3600000; got '%s'",
                                   optarg);
            c->timeout_ms = (int)v;
            c->given |= OPT_TIMEOUT;
            break;
        case 'j':
            c->json = 1;
            c->given |= OPT_JSON;
            break;
        case 'v':
            c->verbose = 1;
            c->given |= OPT_VERBOSE;
            break;
        case CLI_LONG_URL_FILE:
        case CLI_LONG_PASS_URL_ENV:
            cli_secret_opt(c, ch, optarg);
            break;
        case 'h':
            fputs(sc ? sc->usage : usage_main, stdout);
            return 0;
        case 'V':
            printf("dlock %s (libdlock %s, hiredis %d.%d.%d)\n", DLOCK_CLI_VERSION,
                   dlock_version(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
            return 0;
        case ':':
            if (optopt != 0)
                return usage_error(sc, "option -%c needs a value", optopt);
            return usage_error(sc, "option %s needs a value", argv[optind - 1]);
        default:
            if (optopt != 0)
                return usage_error(sc, "unknown option -%c", optopt);
            return usage_error(sc, "unknown option %s", argv[optind - 1]);
        }
    }
    return -1;
}

/* ---- subcommands ------------------------------------------------------------ */

static int check_token(const struct subcmd *sc, char *tok) {
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++)
        tok[i] = (char)tolower((unsigned char)tok[i]);
    if (n != 32 || strspn(tok, "0123456789abcdef") != 32)
        return usage_error(sc, "a token is 32 hex digits, as printed by 'dlock acquire'");
    return -1;
}

int cli_conflict(cli *c, const char *name, int rc, FILE *jf) {
    dlock_holder h;
    int known = dlock_inspect(c->client, name, &h) == DLOCK_OK && h.locked;
    char sname[96], who[300], d[32];
    cli_safe(name, sname, sizeof sname);
    who[0] = '\0';
    if (known) {
        char host[128], label[96];
        cli_safe(h.host, host, sizeof host);
        if (h.label[0])
            snprintf(who, sizeof who, "%s pid %ld (\"%s\"), lease ends in %s", host, h.pid,
                     cli_safe(h.label, label, sizeof label), cli_dur(h.pttl_ms, d, sizeof d));
        else
            snprintf(who, sizeof who, "%s pid %ld, lease ends in %s", host, h.pid,
                     cli_dur(h.pttl_ms, d, sizeof d));
    }
    if (rc == DLOCK_ETIMEDOUT)
        cli_msg("gave up waiting for lock '%s' after %s%s%s", sname,
                cli_dur(c->wait_ms, d, sizeof d), known ? ": held by " : "", who);
    else
        cli_msg("lock '%s' is held%s%s", sname, known ? " by " : " by another owner", who);
    if (c->json) {
        jw w;
        jw_begin(&w, jf);
        jw_str(&w, "name", name);
        jw_bool(&w, "acquired", 0);
        jw_str(&w, "error", rc == DLOCK_ETIMEDOUT ? "timeout" : "busy");
        if (known) {
            jw_str(&w, "holder_host", h.host);
            jw_int(&w, "holder_pid", h.pid);
            jw_str(&w, "holder_label", h.label[0] ? h.label : NULL);
            jw_int(&w, "ttl_ms", h.pttl_ms);
            jw_int(&w, "fence", h.fence);
        }
        jw_end(&w);
    }
    return (c->given & OPT_CONFLICT) ? c->conflict_code : EXIT_CONFLICT;
}

static int cmd_acquire(cli *c, const char *name) {
    dlock_lock *l;
    int rc = cli_take(c, name, &l);
    if (rc == DLOCK_EBUSY || rc == DLOCK_ETIMEDOUT)
        return cli_conflict(c, name, rc, stdout);
    if (rc != DLOCK_OK) {
        char what[160], sname[96];
        snprintf(what, sizeof what, "acquire '%s'", cli_safe(name, sname, sizeof sname));
        return cli_fail(c, rc, what);
    }
    dlock_info info;
    dlock_info_get(l, &info);
    if (c->json) {
        jw w;
        jw_begin(&w, stdout);
        jw_str(&w, "name", name);
        jw_bool(&w, "acquired", 1);
        jw_str(&w, "token", info.token);
        jw_int(&w, "fence", info.fence);
        jw_int(&w, "ttl_ms", c->ttl_ms);
        jw_int(&w, "acquired_at", info.acquired_at);
        jw_int(&w, "expires_at", info.expires_at);
        jw_end(&w);
    } else {
        printf("%s %" PRId64 "\n", info.token, info.fence);
    }
    dlock_lock_free(l); /* the lease stays until TTL or dlock release */
    return fflush(stdout) == 0 ? 0 : EXIT_INTERNAL;
}

static int cmd_token_op(cli *c, const struct subcmd *sc, const char *name, char *token,
                        int extend) {
    int rc = check_token(sc, token);
    if (rc >= 0)
        return rc;
    char sname[96], what[160];
    cli_safe(name, sname, sizeof sname);
    snprintf(what, sizeof what, "%s '%s'", extend ? "extend" : "release", sname);
    rc = extend ? dlock_extend_token(c->client, name, token, c->ttl_ms)
                : dlock_release_token(c->client, name, token);
    if (rc != DLOCK_OK && rc != DLOCK_ENOTHELD)
        return cli_fail(c, rc, what);
    if (c->json) {
        jw w;
        jw_begin(&w, stdout);
        jw_str(&w, "name", name);
        jw_bool(&w, extend ? "extended" : "released", rc == DLOCK_OK);
        if (extend && rc == DLOCK_OK)
            jw_int(&w, "ttl_ms", c->ttl_ms);
        if (rc != DLOCK_OK)
            jw_str(&w, "error", "not held");
        jw_end(&w);
    }
    if (rc == DLOCK_ENOTHELD) {
        cli_msg("cannot %s: it is not held with that token (the lease expired, it was "
                "released, or another owner holds it now)",
                what);
        return EXIT_CONFLICT;
    }
    if (c->verbose)
        cli_msg("%s", extend ? "extended" : "released");
    return 0;
}

static int cmd_status(cli *c, const char *name) {
    dlock_holder h;
    int rc = dlock_inspect(c->client, name, &h);
    if (rc != DLOCK_OK) {
        char what[160], sname[96];
        snprintf(what, sizeof what, "read the status of '%s'", cli_safe(name, sname, sizeof sname));
        return cli_fail(c, rc, what);
    }
    if (c->json) {
        jw w;
        jw_begin(&w, stdout);
        jw_str(&w, "name", name);
        jw_bool(&w, "locked", h.locked);
        if (h.locked) {
            jw_int(&w, "ttl_ms", h.pttl_ms);
            jw_int(&w, "fence", h.fence);
            jw_int(&w, "last_fence", h.fence);
            jw_str(&w, "host", h.host);
            jw_int(&w, "pid", h.pid);
            jw_str(&w, "label", h.label[0] ? h.label : NULL);
            jw_int(&w, "acquired_at", h.acquired_at);
            jw_str(&w, "token", h.token);
        } else {
            jw_null(&w, "ttl_ms");
            jw_null(&w, "fence");
            jw_int(&w, "last_fence", h.fence);
            jw_null(&w, "host");
            jw_null(&w, "pid");
            jw_null(&w, "label");
            jw_null(&w, "acquired_at");
            jw_null(&w, "token");
        }
        jw_int(&w, "waiters", h.waiters);
        jw_end(&w);
        return 0;
    }
    char sname[256], d[32];
    cli_safe(name, sname, sizeof sname);
    if (!h.locked) {
        if (h.fence > 0)
            printf("%s: free (last fence %" PRId64 ")\n", sname, h.fence);
        else
            printf("%s: free (never locked)\n", sname);
        if (h.waiters > 0)
            printf("  waiters:  %d\n", h.waiters);
        return 0;
    }
    char host[128], label[160];
    printf("%s: held by %s pid %ld\n", sname, cli_safe(h.host, host, sizeof host), h.pid);
    if (h.label[0])
        printf("  label:    %s\n", cli_safe(h.label, label, sizeof label));
    printf("  fence:    %" PRId64 "\n", h.fence);
    if (h.acquired_at > 0) {
        time_t t = (time_t)(h.acquired_at / 1000);
        struct tm tm;
        char when[64];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t age = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - h.acquired_at;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tm));
        printf("  acquired: %s (%s ago)\n", when, cli_dur(age, d, sizeof d));
    }
    printf("  expires:  in %s\n", cli_dur(h.pttl_ms, d, sizeof d));
    printf("  waiters:  %d\n", h.waiters);
    printf("  token:    %s\n", h.token);
    return 0;
}

/* ---- main ------------------------------------------------------------------- */

static const struct subcmd *find_subcmd(const char *name) {
    for (size_t i = 0; i < NSUBCMDS; i++)
        if (strcmp(subcmds[i].name, name) == 0)
            return &subcmds[i];
    return NULL;
}

static int dispatch(cli *c, int argc, char **argv) {
    /* Top level: options up to the command word. */
    int rc = parse_opts(c, NULL, argc, argv, 1);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return usage_error(NULL, "no command given");
    int ci = optind;
    if (strcmp(argv[ci], "doctor") == 0)
        return cli_doctor(c, argc - ci, argv + ci);
    if (strcmp(argv[ci], "help") == 0) {
        if (ci + 1 < argc && strcmp(argv[ci + 1], "doctor") == 0)
            return fputs(cli_doctor_usage, stdout) < 0 ? EXIT_INTERNAL : 0;
        const struct subcmd *hs = ci + 1 < argc ? find_subcmd(argv[ci + 1]) : NULL;
        if (ci + 1 < argc && hs == NULL)
            return usage_error(NULL, "no command '%s'", argv[ci + 1]);
        fputs(hs ? hs->usage : usage_main, stdout);
        return 0;
    }
    const struct subcmd *sc = find_subcmd(argv[ci]);
    if (sc == NULL)
        return usage_error(NULL, "unknown command '%s' (run, acquire, release, extend, status)",
                           argv[ci]);
    c->cmd = sc->name;

    int sargc = argc - ci;
    char **sargv = argv + ci;
    char **command = NULL;
    if (sc == &subcmds[0]) {
        /* run: options, NAME, then COMMAND, optionally after "--" (as
         * flock). Options may also follow NAME when "--" ends them:
         * dlock run NAME -n -- cmd. */
        rc = parse_opts(c, sc, sargc, sargv, 1);
        if (rc >= 0)
            return rc;
        if (optind >= sargc || strcmp(sargv[optind], "--") == 0)
            return usage_error(sc, "missing lock name");
        int ni = optind;
        command = sargv + ni + 1;
        if (*command != NULL && strcmp(*command, "--") == 0) {
            command++;
        } else if (*command != NULL && (*command)[0] == '-') {
            int dd = 0;
            for (int i = ni + 1; i < sargc && dd == 0; i++)
                if (strcmp(sargv[i], "--") == 0)
                    dd = i;
            if (dd == 0)
                return usage_error(sc, "options after NAME must end with '--' (got '%s')",
                                   *command);
            /* Parse argv[ni+1..dd) with NAME standing in as argv[0]. */
            rc = parse_opts(c, sc, dd - ni, sargv + ni, 1);
            if (rc >= 0)
                return rc;
            if (optind != dd - ni)
                return usage_error(sc, "unexpected argument '%s' before '--'",
                                   sargv[ni + optind]);
            command = sargv + dd + 1;
        }
        if (*command == NULL)
            return usage_error(sc, "missing COMMAND to run");
        optind = ni;
    } else {
        rc = parse_opts(c, sc, sargc, sargv, 0);
        if (rc >= 0)
            return rc;
    }
    char **pos = sargv + optind;
    int npos = command ? 1 : sargc - optind;
    int want = (sc == &subcmds[2] || sc == &subcmds[3]) ? 2 : 1;
    if (npos < want)
        return usage_error(sc, npos == 0 ? "missing lock name" : "missing TOKEN");
    if (npos > want)
        return usage_error(sc, "unexpected argument '%s'", pos[want]);

    unsigned bad = c->given & ~sc->allowed;
    for (size_t i = 0; bad && i < sizeof opt_names / sizeof opt_names[0]; i++)
        if (bad & opt_names[i].bit)
            return usage_error(sc, "'dlock %s' takes no %s", sc->name, opt_names[i].name);
    if ((c->given & OPT_WAIT) && c->no_wait)
        return usage_error(sc, "use either --wait or --no-wait");
    const char *name = pos[0];
    if (name[0] == '\0' || strlen(name) > DLOCK_NAME_MAX)
        return usage_error(sc, "a lock name has 1..%d bytes", DLOCK_NAME_MAX);

    rc = cli_url_settle(c);
    if (rc >= 0)
        return rc;
    rc = cli_connect(c);
    if (rc != 0)
        return rc;
    switch (sc - subcmds) {
    case 0: return cli_run(c, name, command);
    case 1: return cmd_acquire(c, name);
    case 2: return cmd_token_op(c, sc, name, pos[1], 0);
    case 3: return cmd_token_op(c, sc, name, pos[1], 1);
    default: return cmd_status(c, name);
    }
}

int main(int argc, char **argv) {
    cli_signals_init();
    cli c;
    memset(&c, 0, sizeof c);
    c.ttl_ms = CLI_DEFAULT_TTL_MS;
    c.wait_ms = -1;
    c.conflict_code = EXIT_CONFLICT;
    c.kill_after_ms = CLI_DEFAULT_KILL_AFTER_MS;
    int rc = dispatch(&c, argc, argv);
    dlock_client_free(c.client);
    cli_url_wipe(&c);
    if (fflush(stdout) != 0 && rc == 0)
        rc = EXIT_INTERNAL;
    return rc;
}
