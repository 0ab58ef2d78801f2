/* dlock.c - the dlock command-line tool: main, options, help, error
 * reporting, and the acquire / release / extend / status subcommands.
 * The run subcommand lives in run.c, ls in ls.c, waiting in wait.c. */
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
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cli.h"

/* The tool's version is the library's, from dlock.h (the one place it lives). */
#define CLI_STR_(x) #x
#define CLI_STR(x) CLI_STR_(x)
#define DLOCK_CLI_VERSION                                                             \
    CLI_STR(DLOCK_VERSION_MAJOR) "." CLI_STR(DLOCK_VERSION_MINOR) "." CLI_STR(DLOCK_VERSION_PATCH)


#define OPT_IO_TIMEOUT_CH 1000 /* --io-timeout has no short form */
#define OPT_PID_CH 1001        /* nor these */
#define OPT_MAX_TIME_CH 1002
#define OPT_METRICS_CH 1003
#define OPT_FORMAT_CH 1004
#define OPT_LIMIT_CH 1005
#define OPT_HOLDERS_CH 1006

static const struct option long_opts[] = {
    {"url", required_argument, NULL, 'u'},
    {"ttl", required_argument, NULL, 't'},
    {"wait", required_argument, NULL, 'w'},
    {"timeout", required_argument, NULL, 'w'}, /* flock's name for the wait */
    {"no-wait", no_argument, NULL, 'n'},
    {"nonblock", no_argument, NULL, 'n'},       /* flock's names */
    {"nb", no_argument, NULL, 'n'},
    {"command", required_argument, NULL, 'c'},
    {"conflict-exit-code", required_argument, NULL, 'E'},
    {"kill-after", required_argument, NULL, 'k'},
    {"interval", required_argument, NULL, 'i'},
    {"label", required_argument, NULL, 'l'},
    {"io-timeout", required_argument, NULL, OPT_IO_TIMEOUT_CH},
    {"pid", required_argument, NULL, OPT_PID_CH},
    {"json", no_argument, NULL, 'j'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"url-file", required_argument, NULL, CLI_LONG_URL_FILE},
    {"pass-url-env", no_argument, NULL, CLI_LONG_PASS_URL_ENV},
    {"max-time", required_argument, NULL, OPT_MAX_TIME_CH},
    {"metrics-file", required_argument, NULL, OPT_METRICS_CH},
    {"format", required_argument, NULL, OPT_FORMAT_CH},
    {"limit", required_argument, NULL, OPT_LIMIT_CH},
    {"holders", required_argument, NULL, OPT_HOLDERS_CH},
    {"shared", no_argument, NULL, 's'},
    {"exclusive", no_argument, NULL, 'x'},
    {NULL, 0, NULL, 0},
};
/* -T was the I/O timeout before --timeout came to mean the wait (as in
 * flock): it is refused with a pointer to --io-timeout, not reinterpreted. */
#define SHORT_OPTS "u:t:w:nE:k:i:l:c:T:jvhVsx"

static const struct {
    unsigned bit;
    const char *name;
} opt_names[] = {
    {OPT_URL, "--url"},           {OPT_TTL, "--ttl"},     {OPT_WAIT, "--wait"},
    {OPT_NOWAIT, "--no-wait"},    {OPT_CONFLICT, "--conflict-exit-code"},
    {OPT_KILLAFTER, "--kill-after"}, {OPT_LABEL, "--label"}, {OPT_TIMEOUT, "--io-timeout"},
    {OPT_JSON, "--json"},         {OPT_VERBOSE, "--verbose"}, {OPT_INTERVAL, "--interval"},
    {OPT_COMMAND, "-c/--command"},
    {OPT_URLFILE, "--url-file"},  {OPT_PASSENV, "--pass-url-env"}, {OPT_PID, "--pid"},
    {OPT_MAXTIME, "--max-time"},  {OPT_METRICS, "--metrics-file"},
    {OPT_FORMAT, "--format"},     {OPT_LIMIT, "--limit"},
    {OPT_HOLDERS, "--holders"},   {OPT_RWMODE, "-s/--shared or -x/--exclusive"},
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

/* A duration: seconds with an optional fraction, or a number with a unit
 * (500ms, 90s, 15m, 2h, 1d), into ms of 1..DLOCK_TTL_MAX. */
static int parse_duration(const char *s, int64_t *out_ms) {
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char num[32];
    size_t n = s ? strspn(s, "0123456789.") : 0;
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = '\0';
    double scale = 1000;
    if (s[n] != '\0') {
        size_t u = 0;
        while (u < sizeof units / sizeof units[0] && strcmp(s + n, units[u].unit) != 0)
            u++;
        if (u == sizeof units / sizeof units[0])
            return -1;
        scale = units[u].ms;
    }
    char *end;
    double v = strtod(num, &end);
    if (*end != '\0' || !isfinite(v) || v * scale < 1 || v * scale > (double)DLOCK_TTL_MAX)
        return -1;
    *out_ms = (int64_t)llround(v * scale);
    return 0;
}

/* The options without a short form (getopt values >= CLI_LONG_URL_FILE)
 * that value_opt does not take (it takes --io-timeout and --pid).
 * Returns -1 to go on, or an exit code. */
static int parse_long_only(cli *c, const struct subcmd *sc, int ch) {
    long long v;
    switch (ch) {
    case CLI_LONG_URL_FILE:
    case CLI_LONG_PASS_URL_ENV:
        cli_secret_opt(c, ch, optarg);
        return -1;
    case OPT_MAX_TIME_CH:
        if (parse_duration(optarg, &c->max_time_ms) != 0)
            return usage_error(sc, "--max-time wants a duration, e.g. 90, 1.5, 500ms, 15m or "
                                   "2h (at most 24 days); got '%s'", optarg);
        c->given |= OPT_MAXTIME;
        return -1;
    case OPT_METRICS_CH:
        if (optarg[0] == '\0')
            return usage_error(sc, "--metrics-file wants a path");
        c->metrics_file = optarg;
        c->given |= OPT_METRICS;
        return -1;
    case OPT_FORMAT_CH:
        if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0 &&
            strcmp(optarg, "openmetrics") != 0)
            return usage_error(sc, "--format is text, json or openmetrics; got '%s'", optarg);
        c->format = optarg;
        c->given |= OPT_FORMAT;
        return -1;
    case OPT_HOLDERS_CH:
        if (parse_int(optarg, 1, DLOCK_PERMITS_MAX, &v) != 0)
            return usage_error(sc, "--holders wants a number of permits, 1..%d; got '%s'",
                               DLOCK_PERMITS_MAX, optarg);
        c->holders = (int)v;
        c->given |= OPT_HOLDERS;
        return -1;
    default: /* OPT_LIMIT_CH */
        if (parse_int(optarg, 1, 1000000, &v) != 0)
            return usage_error(sc, "--limit wants a number of locks, 1..1000000; got '%s'",
                               optarg);
        c->limit = (int)v;
        c->given |= OPT_LIMIT;
        return -1;
    }
}

/* ---- option parsing ------------------------------------------------------- */

/* Options that take a number (--ttl, --wait, -E, --kill-after, --interval,
 * --io-timeout, --pid): parses ch's value into c. Returns -1 when done, an
 * exit code after a message, or -2 when ch is not one of them. */
static int value_opt(cli *c, const struct subcmd *sc, int ch) {
    long long v;
    switch (ch) {
    case 't':
        if (parse_int(optarg, 1, DLOCK_TTL_MAX, &v) != 0)
            return usage_error(sc, "--ttl wants milliseconds, 1..%lld; got '%s'",
                               (long long)DLOCK_TTL_MAX, optarg);
        c->ttl_ms = v;
        c->given |= OPT_TTL;
        return -1;
    case 'w':
        if (parse_seconds(optarg, &c->wait_ms) != 0)
            return usage_error(sc, "--wait/--timeout wants seconds (e.g. 10 or 0.5); "
                               "got '%s'", optarg);
        c->given |= OPT_WAIT;
        return -1;
    case 'E':
        if (parse_int(optarg, 0, 255, &v) != 0)
            return usage_error(sc, "--conflict-exit-code wants 0..255; got '%s'", optarg);
        c->conflict_code = (int)v;
        c->given |= OPT_CONFLICT;
        return -1;
    case 'k':
        if (parse_seconds(optarg, &c->kill_after_ms) != 0)
            return usage_error(sc, "--kill-after wants seconds (e.g. 5 or 0.5); got '%s'",
                               optarg);
        c->given |= OPT_KILLAFTER;
        return -1;
    case 'i':
        if (parse_int(optarg, 1, DLOCK_TTL_MAX, &v) != 0)
            return usage_error(sc, "--interval wants milliseconds; got '%s'", optarg);
        c->interval_ms = v;
        c->given |= OPT_INTERVAL;
        return -1;
    case OPT_IO_TIMEOUT_CH:
        if (parse_int(optarg, 1, 3600000, &v) != 0)
            return usage_error(sc, "--io-timeout wants milliseconds, 1..3600000; got '%s'",
                               optarg);
        c->timeout_ms = (int)v;
        c->given |= OPT_TIMEOUT;
        return -1;
    case OPT_PID_CH:
        if (parse_int(optarg, 1, 2147483647, &v) != 0)
            return usage_error(sc, "--pid wants a process id, 1..2147483647; got '%s'",
                               optarg);
        c->owner_pid = (long)v;
        c->given |= OPT_PID;
        return -1;
    default:
        return -2;
    }
}

/* Parses options of argv[0..argc) with getopt_long into c. Returns -1 to go
 * on, or an exit code (help, version, bad option). */
static int parse_opts(cli *c, const struct subcmd *sc, int argc, char **argv, int stop_at_arg) {
    char shortopts[64];
    snprintf(shortopts, sizeof shortopts, "%s:%s", stop_at_arg ? "+" : "", SHORT_OPTS);
    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    int ch;
    while ((ch = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
        int rc = value_opt(c, sc, ch);
        if (rc != -2) {
            if (rc >= 0)
                return rc;
            continue;
        }
        switch (ch) {
        case 'u':
            c->url = optarg;
            c->given |= OPT_URL;
            break;
        case 'n':
            c->no_wait = 1;
            c->given |= OPT_NOWAIT;
            break;
        case 'l':
            if (strlen(optarg) > DLOCK_LABEL_MAX)
                return usage_error(sc, "--label is longer than %d bytes", DLOCK_LABEL_MAX);
            c->label = optarg;
            c->given |= OPT_LABEL;
            break;
        case 'T':
            return usage_error(sc, "-T is gone: the I/O timeout is --io-timeout MS, and "
                                   "--timeout SECONDS is the wait, as in flock");
        case 'c':
            c->shell_cmd = optarg;
            c->given |= OPT_COMMAND;
            break;
        case 'j':
            c->json = 1;
            c->given |= OPT_JSON;
            break;
        case 's':
        case 'x':
            if (c->rw_mode != 0 && c->rw_mode != (ch == 's' ? DLOCK_SHARED : DLOCK_EXCLUSIVE))
                return usage_error(sc, "use either -s/--shared or -x/--exclusive");
            c->rw_mode = ch == 's' ? DLOCK_SHARED : DLOCK_EXCLUSIVE;
            c->given |= OPT_RWMODE;
            break;
        case 'v':
            c->verbose = 1;
            c->given |= OPT_VERBOSE;
            break;
        case 'h':
            fputs(sc ? sc->usage : cli_usage_main, stdout);
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
            if (ch >= CLI_LONG_URL_FILE) {
                rc = parse_long_only(c, sc, ch);
                if (rc >= 0)
                    return rc;
                break;
            }
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

/* ---- main ------------------------------------------------------------------- */

static const struct subcmd *find_subcmd(const char *name) {
    for (size_t i = 0; i < cli_nsubcmds; i++)
        if (strcmp(cli_subcmds[i].name, name) == 0)
            return &cli_subcmds[i];
    return NULL;
}

/* Checks that do not depend on one option alone: the lock name (ls: the
 * pattern, may be NULL) and option pairs. Returns -1 or an exit code. */
static int check_args(const cli *c, const struct subcmd *sc, int is_ls, const char *name) {
    if ((c->given & OPT_WAIT) && c->no_wait)
        return usage_error(sc, "use either --wait or --no-wait");
    if (c->json && c->format != NULL && strcmp(c->format, "json") != 0)
        return usage_error(sc, "use either --json or --format %s", c->format);
    if (is_ls && name != NULL && (name[0] == '\0' || strlen(name) > 2 * DLOCK_NAME_MAX))
        return usage_error(sc, "a PATTERN has 1..%d bytes", 2 * DLOCK_NAME_MAX);
    if (!is_ls && (name[0] == '\0' || strlen(name) > DLOCK_NAME_MAX))
        return usage_error(sc, "a lock name has 1..%d bytes", DLOCK_NAME_MAX);
    for (int i = 1; i < c->nnames; i++)
        if (c->names[i][0] == '\0' || strlen(c->names[i]) > DLOCK_NAME_MAX)
            return usage_error(sc, "a lock name has 1..%d bytes", DLOCK_NAME_MAX);
    if (c->holders && c->rw_mode)
        return usage_error(sc, "use either --holders (a semaphore) or -s/-x (a read-write "
                               "lock)");
    if (c->nnames > 1 && (c->holders || c->rw_mode))
        return usage_error(sc, "--holders and -s/-x take one NAME; several names make a "
                               "multi-lock of plain locks");
    return -1;
}

/* run: options, NAME, then COMMAND, optionally after "--" (as flock), or
 * -c/--command 'shell command' (as flock). Options may also follow NAME
 * when "--" ends them: dlock run NAME -n -- cmd. Sets *command and leaves
 * optind at NAME; returns -1 to go on, or an exit code. */
static int parse_run(cli *c, const struct subcmd *sc, int sargc, char **sargv, char ***command) {
    static char *sh_argv[4] = {"/bin/sh", "-c", NULL, NULL};
    int rc = parse_opts(c, sc, sargc, sargv, 1);
    if (rc >= 0)
        return rc;
    if (optind >= sargc || strcmp(sargv[optind], "--") == 0 ||
        (optind > 1 && strcmp(sargv[optind - 1], "--") == 0))
        return usage_error(sc, "missing lock name: it comes first, before '--' and COMMAND");
    int ni = optind;
    /* Several names: every word before a '--', none of them an option. */
    int nn = 1;
    for (int k = ni + 1; k < sargc && sargv[k][0] != '-'; k++)
        if (k + 1 < sargc && strcmp(sargv[k + 1], "--") == 0)
            nn = k + 1 - ni;
    if (nn > DLOCK_MULTI_MAX)
        return usage_error(sc, "at most %d names (%d given before '--')", DLOCK_MULTI_MAX, nn);
    c->names = sargv + ni;
    c->nnames = nn;
    char **cmd = sargv + ni + nn;
    if (*cmd != NULL && (strcmp(*cmd, "-c") == 0 || strcmp(*cmd, "--command") == 0)) {
        if (cmd[1] == NULL)
            return usage_error(sc, "option %s needs a value", *cmd);
        c->shell_cmd = cmd[1];
        c->given |= OPT_COMMAND;
        cmd += 2;
    } else if (*cmd != NULL && strncmp(*cmd, "--command=", 10) == 0) {
        c->shell_cmd = *cmd + 10;
        c->given |= OPT_COMMAND;
        cmd++;
    } else if (*cmd != NULL && strcmp(*cmd, "--") == 0) {
        cmd++;
    } else if (*cmd != NULL && (*cmd)[0] == '-') {
        int dd = 0;
        for (int i = ni + 1; i < sargc && dd == 0; i++)
            if (strcmp(sargv[i], "--") == 0)
                dd = i;
        if (dd == 0)
            return usage_error(sc, "options after NAME must end with '--' (got '%s')", *cmd);
        /* Parse argv[ni+1..dd) with NAME standing in as argv[0]. */
        rc = parse_opts(c, sc, dd - ni, sargv + ni, 1);
        if (rc >= 0)
            return rc;
        if (optind != dd - ni)
            return usage_error(sc, "unexpected argument '%s' before '--'", sargv[ni + optind]);
        cmd = sargv + dd + 1;
    }
    if (c->shell_cmd != NULL) {
        if (*cmd != NULL)
            return usage_error(sc, "-c takes the whole shell command as one argument; "
                                   "unexpected '%s'", *cmd);
        sh_argv[2] = (char *)c->shell_cmd;
        cmd = sh_argv;
    }
    if (*cmd == NULL)
        return usage_error(sc, "missing COMMAND to run");
    *command = cmd;
    optind = ni;
    return -1;
}

/* The names of the command (run's several, or the one NAME at pos); 0, or
 * EXIT_USAGE when run or acquire would take a name this process already
 * holds through a dlock run around it. */
static int names_nested(cli *c, const struct subcmd *sc, char **pos) {
    if (c->nnames == 0 && c->name != NULL) {
        c->names = pos;
        c->nnames = 1;
    }
    for (int i = 0; (sc == &cli_subcmds[0] || sc == &cli_subcmds[1]) && i < c->nnames; i++) {
        int rc = cli_nested(c->names[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
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
        fputs(hs ? hs->usage : cli_usage_main, stdout);
        return 0;
    }
    const struct subcmd *sc = find_subcmd(argv[ci]);
    if (sc == NULL)
        return usage_error(NULL, "unknown command '%s' (run, acquire, release, extend, status, "
                           "ls, doctor)", argv[ci]);
    c->cmd = sc->name;

    int sargc = argc - ci;
    char **sargv = argv + ci;
    char **command = NULL;
    if (sc == &cli_subcmds[0]) {
        rc = parse_run(c, sc, sargc, sargv, &command);
        if (rc >= 0)
            return rc;
    } else {
        rc = parse_opts(c, sc, sargc, sargv, 0);
        if (rc >= 0)
            return rc;
    }
    char **pos = sargv + optind;
    int npos = command ? 1 : sargc - optind;
    int is_ls = sc == &cli_subcmds[5];
    int want = (sc == &cli_subcmds[2] || sc == &cli_subcmds[3]) ? 2 : is_ls && npos == 0 ? 0 : 1;
    if (npos < want)
        return usage_error(sc, npos == 0 ? "missing lock name" : "missing TOKEN");
    if (npos > want)
        return usage_error(sc, "unexpected argument '%s'", pos[want]);

    unsigned bad = c->given & ~sc->allowed;
    for (size_t i = 0; bad && i < sizeof opt_names / sizeof opt_names[0]; i++)
        if (bad & opt_names[i].bit)
            return usage_error(sc, "'dlock %s' takes no %s", sc->name, opt_names[i].name);
    const char *name = want > 0 ? pos[0] : NULL;
    rc = check_args(c, sc, is_ls, name);
    if (rc >= 0)
        return rc;
    c->name = is_ls ? NULL : name;
    rc = names_nested(c, sc, pos);
    if (rc != 0)
        return rc;
    /* acquire leaves the lease to whoever ran it: record that process (the
     * shell or script) as the holder, not this short-lived one. */
    if (sc == &cli_subcmds[1] && !(c->given & OPT_PID))
        c->owner_pid = (long)getppid();
    rc = cli_url_settle(c);
    if (rc >= 0)
        return rc;
    rc = cli_connect(c);
    if (rc != 0) {
        cli_run_metrics(c, rc); /* run only: --metrics-file records the failure too */
        return rc;
    }
    switch (sc - cli_subcmds) {
    case 0: return cli_run(c, name, command);
    case 1: return cmd_acquire(c, name);
    case 2: return cmd_token_op(c, sc, name, pos[1], 0);
    case 3: return cmd_token_op(c, sc, name, pos[1], 1);
    case 5: return cli_ls(c, name);
    default: return cli_status(c, name);
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
