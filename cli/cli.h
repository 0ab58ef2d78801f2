/* cli.h - shared pieces of the dlock command-line tool.
 *
 * dlock.c   main, option parsing, the acquire/release/extend/status
 *           subcommands
 * report.c  error messages with cause-specific hints, JSON error objects
 * help.c    help texts and the table of subcommands
 * wait.c    acquiring with a deadline, and the --verbose waiting display
 * run.c     the run subcommand: acquire, keepalive, release, exit status
 * supervise.c  run's command process: signals, the shutdown scheduled
 *           from the lease, the watchdog that outlives dlock (run.h)
 * out.c     JSON writer and text sanitizing for messages
 * secret.c  where the URL comes from (--url-file, DLOCK_URL_FILE), scrubbing
 *           the password from argv and the child's environment, wiping it
 * doctor.c  the doctor subcommand: is a deployment safe for locks?
 *           (doctor_out.c prints its report)
 * ls.c      the ls subcommand: the locks held now, as text, JSON or metrics
 * status.c  the status subcommand and the "not obtained" message, every kind
 * metrics.c OpenMetrics text: label escaping, metric families, and run's
 *           --metrics-file (written atomically)
 */
#ifndef DLOCK_CLI_H
#define DLOCK_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "dlock.h"

/* Exit codes (documented in man/dlock.1 and `dlock --help`). */
#define EXIT_CONFLICT 1  /* lock not obtained / not held with that token */
#define EXIT_USAGE 2     /* bad command line, bad URL, bad name */
#define EXIT_SERVER 69   /* server unreachable or answered with an error */
#define EXIT_INTERNAL 70 /* out of memory, fork/pipe failed */
#define EXIT_LOST 75     /* run: lease lost or ending while the command ran: dlock
                            terminated the command */
#define EXIT_LOST_AFTER 76 /* run: the command ended by itself, then the lease was
                              found gone (it may have run past its lease) */
#define EXIT_MAXTIME 124 /* run: --max-time reached: dlock terminated the command
                            (timeout(1)'s status) */
#define EXIT_NOEXEC 126  /* run: command found but not executable */
#define EXIT_NOTFOUND 127 /* run: command not found */

#define CLI_DEFAULT_URL "redis://127.0.0.1:6379"
#define CLI_DEFAULT_TTL_MS 10000
#define CLI_DEFAULT_KILL_AFTER_MS 5000

/* Which options were given (to reject those a subcommand does not take). */
enum {
    OPT_URL = 1 << 0,
    OPT_TTL = 1 << 1,
    OPT_WAIT = 1 << 2,
    OPT_NOWAIT = 1 << 3,
    OPT_CONFLICT = 1 << 4,
    OPT_KILLAFTER = 1 << 5,
    OPT_LABEL = 1 << 6,
    OPT_TIMEOUT = 1 << 7,
    OPT_JSON = 1 << 8,
    OPT_VERBOSE = 1 << 9,
    OPT_INTERVAL = 1 << 10,
    OPT_COMMAND = 1 << 11,
    OPT_URLFILE = 1 << 12,
    OPT_PASSENV = 1 << 13,
    OPT_PID = 1 << 14,
    OPT_MAXTIME = 1 << 15,
    OPT_METRICS = 1 << 16,
    OPT_FORMAT = 1 << 17,
    OPT_LIMIT = 1 << 18,
    OPT_HOLDERS = 1 << 19,
    OPT_RWMODE = 1 << 20  /* -s/--shared or -x/--exclusive */
};

/* getopt values of long options without a short form (secret.c). */
#define CLI_LONG_URL_FILE 0x101
#define CLI_LONG_PASS_URL_ENV 0x102

/* A subcommand: its name, help text, synopsis and the OPT_* it takes
 * (help.c). cli_subcmds[0] is run, [1] acquire, [2] release, [3] extend,
 * [4] status, [5] ls. */
struct subcmd {
    const char *name;
    const char *usage;
    const char *synopsis;
    unsigned allowed;
};
extern const struct subcmd cli_subcmds[];
extern const size_t cli_nsubcmds;
extern const char *const cli_usage_main;

typedef struct cli {
    const char *cmd;      /* subcommand name */
    const char *name;     /* the lock name, once known */
    unsigned given;       /* OPT_* bits seen */
    const char *url;      /* --url, $DLOCK_URL or the default */
    int64_t ttl_ms;       /* --ttl */
    int64_t wait_ms;      /* --wait; -1: wait without a deadline */
    int no_wait;          /* --no-wait */
    int conflict_code;    /* --conflict-exit-code */
    int64_t kill_after_ms;/* --kill-after */
    int64_t interval_ms;  /* --interval; 0: ttl/3 */
    const char *label;    /* --label */
    long owner_pid;       /* --pid; 0: the library's default (dlock's own pid) */
    int timeout_ms;       /* --io-timeout; 0: library default */
    const char *shell_cmd;/* run -c: a command line for /bin/sh */
    int json;             /* --json */
    int verbose;          /* --verbose */
    const char *url_file; /* --url-file */
    int pass_url_env;     /* --pass-url-env */
    char *url_copy;       /* the URL in use, wiped by cli_url_wipe */
    char url_shown[256];  /* url with any password removed, for messages */
    int64_t max_time_ms;  /* run --max-time; 0: none */
    const char *metrics_file; /* run --metrics-file */
    const char *format;   /* ls --format: "text", "json" or "openmetrics" */
    int limit;            /* ls --limit */
    int holders;          /* --holders N: a semaphore of N permits; 0: not one */
    int rw_mode;          /* -s / -x: DLOCK_SHARED or DLOCK_EXCLUSIVE; 0: not rw */
    char *const *names;   /* run: the names before '--' (a multi-lock when 2+) */
    int nnames;           /* 1, or how many names run was given */
    dlock_client *client;
    /* What one run did, for --metrics-file (run.c fills it). */
    struct {
        int acquired;
        int64_t wait_ms, hold_ms;
        const char *outcome; /* ok failed not_acquired lost lost_after max_time; NULL: error */
        int written;
    } run;
} cli;

/* dlock.c */
/* Prints "dlock: " + the formatted message + newline on stderr. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* report.c */
/* Reports a failed library call on one line of stderr (server, what
 * failed, what to do) and returns the exit code for status rc. `what` says
 * what dlock tried ("acquire 'jobs'"). */
int cli_fail(cli *c, int rc, const char *what);
/* With --json, writes the error object {"name","acquired" (run and
 * acquire),"error","status","exit_code","message"}: on stderr for run
 * (stdout is the command's), else on stdout. rc DLOCK_OK writes status null. */
void cli_json_error(cli *c, const char *error, int rc, int code, const char *msg);
/* Connects the client (c->client) from the options; returns 0 or an exit
 * code after reporting the problem. */
int cli_connect(cli *c);

/* wait.c */
/* Acquires `name` following --no-wait / --wait / --verbose, as the kind the
 * options say: --holders (semaphore), -s/-x (rw lock), several names (a
 * multi-lock of c->names), else a mutex. Returns a library status; on
 * DLOCK_OK *out is the lock. Busy and timed-out both come back as
 * DLOCK_EBUSY / DLOCK_ETIMEDOUT with nothing printed. */
int cli_take(cli *c, const char *name, dlock_lock **out);
/* What to call the lock in messages: "lock 'NAME'", "semaphore 'NAME'",
 * "read-write lock 'NAME'", or "locks 'A', 'B' and 1 more"; into buf. */
const char *cli_what(const cli *c, const char *name, char *buf, size_t n);

/* run.c */
/* Records the signal dispositions dlock started with and ignores SIGPIPE.
 * Call first in main. */
void cli_signals_init(void);
int cli_run(cli *c, const char *name, char **argv);
/* 0, or EXIT_USAGE after a message if this process runs under a dlock run
 * that holds `name` already (DLOCK_NAME and DLOCK_TOKEN inherited). */
int cli_nested(const char *name);

/* status.c */
/* `dlock status NAME`: who holds it, whatever its kind. Returns the exit
 * status. */
int cli_status(cli *c, const char *name);
/* The lock was not obtained (rc DLOCK_EBUSY or DLOCK_ETIMEDOUT): says who
 * holds it on stderr (for a multi-lock: the first of its names that is
 * held), and writes the JSON object to jf with --json. Returns the
 * conflict exit code (1 or --conflict-exit-code). */
int cli_conflict(cli *c, const char *name, int rc, FILE *jf);

/* ls.c */
/* `dlock ls [PATTERN]`: pattern may be NULL. Returns the exit status. */
int cli_ls(cli *c, const char *pattern);

/* metrics.c */
/* Writes s as an OpenMetrics label value, quotes included: backslash,
 * double quote and newline escaped, invalid UTF-8 bytes as U+FFFD. */
void om_label_value(FILE *f, const char *s);
/* Writes the HELP and TYPE (gauge) lines of metric family `name`. */
void om_family(FILE *f, const char *name, const char *help);
/* With --metrics-file, writes the run's metrics (c->run, exit status
 * `code`) to a temporary file next to it and renames it into place; says
 * on stderr if that fails (the exit status stays). Once per process. */
void cli_run_metrics(cli *c, int code);

/* secret.c */
/* Records --url-file FILE or --pass-url-env (opt is CLI_LONG_*). */
void cli_secret_opt(cli *c, int opt, const char *arg);
/* Settles c->url: --url, else --url-file, else $DLOCK_URL, else
 * $DLOCK_URL_FILE, else the default (--url with --url-file, or both
 * variables set, are usage errors; a URL file that group or others may
 * access is refused). c->url then points to a private copy and c->url_shown
 * is set. Scrubs the password from the argv bytes --url pointed to, and
 * unless --pass-url-env removes DLOCK_URL and DLOCK_URL_FILE from the
 * environment (so `dlock run`'s command does not inherit them). Call once,
 * while single-threaded. Returns -1 to go on, or an exit code after a
 * message. */
int cli_url_settle(cli *c);
/* Wipes (explicit_bzero) and frees the private copy of the URL. */
void cli_url_wipe(cli *c);

/* doctor.c */
extern const char cli_doctor_usage[];
/* `dlock doctor [OPTIONS] [URL]`: argv[0] is "doctor". Options given
 * before the command word are already in c. Returns the exit status. */
int cli_doctor(cli *c, int argc, char **argv);

/* out.c */
/* A minimal JSON object writer on a FILE (one object per line). */
typedef struct jw {
    FILE *f;
    int n; /* members written */
} jw;
void jw_begin(jw *w, FILE *f);
void jw_str(jw *w, const char *key, const char *val); /* NULL writes null */
void jw_int(jw *w, const char *key, long long val);
void jw_bool(jw *w, const char *key, int val);
void jw_null(jw *w, const char *key);
void jw_end(jw *w);
/* Writes s as a JSON string literal (quotes included). Invalid UTF-8 bytes
 * become U+FFFD, control characters \uXXXX escapes. */
void json_string(FILE *f, const char *s);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there
 * are not valid UTF-8. */
int cli_utf8_len(const unsigned char *s);
/* Copies s into buf (size n) for a human-readable message: control
 * characters become '?', long strings are cut with "...". Returns buf. */
const char *cli_safe(const char *s, char *buf, size_t n);
/* Copies url into buf with any user name and password replaced by "***". */
void cli_redact_url(const char *url, char *buf, size_t n);
/* Whether url names a TLS deployment (rediss://, rediss-sentinel://,
 * rediss-cluster://): a look at the scheme, for hints only. */
int cli_url_is_tls(const char *url);
/* Formats a duration in ms as "4.2 s", "350 ms", "2 min 5 s". */
const char *cli_dur(int64_t ms, char *buf, size_t n);

#endif /* DLOCK_CLI_H */
