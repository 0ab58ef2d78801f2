/* help.c - the help texts of the dlock tool and its table of subcommands. */
#include <stddef.h>

#include "cli.h"

/* ---- help --------------------------------------------------------------- */

static const char usage_main[] =
    "usage: dlock [OPTIONS] COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "Distributed locks on Redis: run a command while holding a fleet-wide lock.\n"
    "\n"
    "Commands:\n"
    "  run NAME [--] COMMAND [ARGS...]  run COMMAND while holding lock NAME\n"
    "  run NAME -c 'SHELL COMMAND'      the same, through /bin/sh -c\n"
    "  acquire NAME                     take NAME, print \"TOKEN FENCE\"\n"
    "  release NAME TOKEN               release NAME if it carries TOKEN\n"
    "  extend NAME TOKEN                reset NAME's lease to --ttl if it carries TOKEN\n"
    "  status NAME                      who holds NAME, for how long, last fence\n"
    "  ls [PATTERN]                     every lock held now (on every server)\n"
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
    "  -w, --wait, --timeout SECONDS  give up after SECONDS (fractions allowed;\n"
    "                          default: wait as long as it takes)\n"
    "  -n, --no-wait, --nonblock, --nb  fail at once if the lock is held\n"
    "  -E, --conflict-exit-code N  exit status when the lock is not obtained (default 1)\n"
    "  -k, --kill-after SECONDS    run: SIGKILL this long after SIGTERM (default 5)\n"
    "  -c, --command CMD       run: run CMD with /bin/sh -c\n"
    "  -i, --interval MS       run: extend the lease every MS (default ttl/3)\n"
    "      --max-time DURATION run: end COMMAND once it held the lock this long\n"
    "      --metrics-file PATH run: write the run's metrics there (OpenMetrics)\n"
    "      --format FORMAT     ls: text, json or openmetrics\n"
    "      --limit N           ls: inspect at most N locks (default 10000)\n"
    "  -l, --label TEXT        label stored with the lock, shown by status\n"
    "  --pid N                 acquire: holder pid stored with the lock (default:\n"
    "                          dlock's parent, the shell that owns the lease)\n"
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
    "  -j, --json              machine-readable output (one JSON object, also on errors)\n"
    "  -v, --verbose           report waiting (who holds the lock), acquiring, releasing\n"
    "  -h, --help              show help\n"
    "  -V, --version           show the version\n"
    "\n"
    "Exit status: 0 success (run: the command's status, 128+N if killed by signal N),\n"
    "1 lock not obtained or not held with that token (see -E), 2 usage error,\n"
    "69 server unreachable or error, 70 internal error, 75 lease lost or ending while\n"
    "the command ran: dlock terminated it, 76 the command ended by itself but the\n"
    "lease was then found gone, 124 --max-time reached: dlock terminated the\n"
    "command, 126 command not executable, 127 command not found;\n"
    "doctor: 0 safe, 1 warnings, 69 a server unreachable, 78 unsafe settings.\n"
    "See dlock(1).\n";

static const char usage_run[] =
    "usage: dlock run [OPTIONS] NAME [--] COMMAND [ARGS...]\n"
    "       dlock run [OPTIONS] NAME -c 'SHELL COMMAND'\n"
    "\n"
    "Take lock NAME (waiting for it unless -n or -w say otherwise), run COMMAND in\n"
    "its own process group with DLOCK_NAME, DLOCK_TOKEN and DLOCK_FENCE set, keep\n"
    "the lease alive while it runs, release the lock when it exits, and exit with\n"
    "its status. Signals INT, TERM, HUP, QUIT, USR1, USR2 sent to dlock are passed\n"
    "to the command. If extensions keep failing, COMMAND's process group gets\n"
    "SIGTERM and then SIGKILL early enough to be dead before the lease can end;\n"
    "if the lock is found lost, SIGTERM at once and SIGKILL after --kill-after;\n"
    "dlock then exits 75. Once COMMAND held the lock for --max-time, the lease is\n"
    "no longer extended: SIGTERM, then SIGKILL after --kill-after but before the\n"
    "lease left ends; dlock then exits 124. If dlock dies, COMMAND's process group\n"
    "is killed.\n"
    "Inside COMMAND, dlock run or acquire on the same NAME is refused (exit 2).\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "      --pass-url-env      let COMMAND inherit DLOCK_URL / DLOCK_URL_FILE (removed\n"
    "                          from its environment by default: they may hold a password)\n"
    "  -t, --ttl MS            lease length (default 10000); kept alive while running\n"
    "  -i, --interval MS       extend the lease every MS (default ttl/3)\n"
    "      --max-time DURATION hold the lock at most this long (90, 1.5, 500ms, 15m,\n"
    "                          2h, 1d; default: no limit), then end COMMAND (124)\n"
    "  -w, --wait, --timeout SECONDS  give up waiting after SECONDS (default: no limit)\n"
    "  -n, --no-wait, --nonblock, --nb  fail at once if the lock is held\n"
    "  -E, --conflict-exit-code N  exit status when the lock is not obtained (default 1)\n"
    "  -k, --kill-after SECONDS    grace between SIGTERM and SIGKILL (default 5; cut\n"
    "                          to fit in the lease when extensions fail)\n"
    "      --metrics-file PATH when done, write wait time, hold time, exit status and\n"
    "                          outcome to PATH as OpenMetrics text (atomically, for\n"
    "                          node_exporter's textfile collector)\n"
    "  -c, --command CMD       run CMD with /bin/sh -c instead of COMMAND\n"
    "  -l, --label TEXT        label stored with the lock, shown by status\n"
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
    "  -j, --json              when done, write a JSON summary (or error) to stderr\n"
    "  -v, --verbose           show who holds the lock while waiting\n"
    "\n"
    "Exit status: COMMAND's status (128+N if killed by signal N); 1 (or -E N) lock\n"
    "not obtained; 2 usage; 69 server error; 70 internal error; 75 lease lost or\n"
    "ending: COMMAND terminated by dlock; 76 COMMAND ended by itself, then the lease\n"
    "was found gone; 124 --max-time reached: COMMAND terminated by dlock; 126\n"
    "COMMAND not executable; 127 COMMAND not found.\n";

static const char usage_acquire[] =
    "usage: dlock acquire [OPTIONS] NAME\n"
    "\n"
    "Take lock NAME for --ttl milliseconds and print \"TOKEN FENCE\" (one line) for\n"
    "shell scripts. The lease is not kept alive: extend it with dlock extend and\n"
    "give it back with dlock release NAME TOKEN. The holder recorded for status is\n"
    "this host and dlock's parent process (the shell or script that ran it), or\n"
    "--pid.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -t, --ttl MS            lease length (default 10000)\n"
    "  -w, --wait, --timeout SECONDS  give up waiting after SECONDS (default: no limit)\n"
    "  -n, --no-wait, --nonblock, --nb  fail at once if the lock is held\n"
    "  -E, --conflict-exit-code N  exit status when the lock is not obtained (default 1)\n"
    "  -l, --label TEXT        label stored with the lock, shown by status\n"
    "  --pid N                 holder pid stored with the lock, shown by status\n"
    "                          (default: dlock's parent, the shell or script that\n"
    "                          ran it and owns the lease)\n"
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
    "  -j, --json              print {\"name\",\"acquired\",\"token\",\"fence\",...}\n"
    "  -v, --verbose           show who holds the lock while waiting\n"
    "\n"
    "Exit status: 0 acquired; 1 (or -E N) not obtained; 2 usage (also: NAME is held\n"
    "by the dlock run around this process); 69 server error.\n";

static const char usage_release[] =
    "usage: dlock release [OPTIONS] NAME TOKEN\n"
    "\n"
    "Release lock NAME if it still carries TOKEN (from dlock acquire, or\n"
    "$DLOCK_TOKEN inside dlock run).\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
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
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
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
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
    "  -j, --json              print one JSON object (see dlock(1))\n"
    "  -v, --verbose           no effect\n"
    "\n"
    "Exit status: 0 (held or free); 2 usage; 69 server error.\n";

static const char usage_ls[] =
    "usage: dlock ls [OPTIONS] [PATTERN]\n"
    "\n"
    "List every lock held now under the key prefix whose name matches PATTERN (a\n"
    "glob: * ? [abc] [^a] [a-z]; a backslash quotes the next character, so 'a\\*'\n"
    "is the name a*), on every server: each master of a Cluster, each server of a\n"
    "Redlock set (a lock counts as held when a majority holds it). Columns: name,\n"
    "kind, holders (host, pid, label), held for, lease left, waiters, last fence.\n"
    "Uses SCAN on the locks' main keys (never KEYS): cheap on the network however\n"
    "many other keys a server has, though SCAN still walks them all.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL           server (default $DLOCK_URL, else " CLI_DEFAULT_URL ")\n"
    "      --url-file FILE     read the URL from FILE (chmod 600; default $DLOCK_URL_FILE)\n"
    "  -j, --json              print one JSON document {\"locks\":[...],\"complete\":...}\n"
    "      --format FORMAT     text (default), json, or openmetrics (Prometheus)\n"
    "      --limit N           inspect at most N locks (default 10000)\n"
    "  -w, --wait, --timeout SECONDS  give up listing after SECONDS (default 10)\n"
    "  --io-timeout MS         connect and command timeout per server (default 1000)\n"
    "  -v, --verbose           say how many servers and SCAN calls it took\n"
    "\n"
    "A listing cut by --limit or --timeout says so on stderr (JSON: \"complete\":\n"
    "false; openmetrics: dlock_ls_complete 0) and still exits 0.\n"
    "Exit status: 0 listed; 2 usage; 69 server error (a server could not be\n"
    "scanned, e.g. an ACL without SCAN).\n";

const struct subcmd cli_subcmds[] = {
    {"run", usage_run, "dlock run [OPTIONS] NAME [--] COMMAND [ARGS...]",
     OPT_URL | OPT_TTL | OPT_WAIT | OPT_NOWAIT | OPT_CONFLICT | OPT_KILLAFTER | OPT_LABEL |
         OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_INTERVAL | OPT_COMMAND | OPT_URLFILE |
         OPT_PASSENV | OPT_MAXTIME | OPT_METRICS},
    {"acquire", usage_acquire, "dlock acquire [OPTIONS] NAME",
     OPT_URL | OPT_TTL | OPT_WAIT | OPT_NOWAIT | OPT_CONFLICT | OPT_LABEL | OPT_TIMEOUT |
         OPT_JSON | OPT_VERBOSE | OPT_URLFILE | OPT_PID},
    {"release", usage_release, "dlock release [OPTIONS] NAME TOKEN",
     OPT_URL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
    {"extend", usage_extend, "dlock extend [OPTIONS] NAME TOKEN",
     OPT_URL | OPT_TTL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
    {"status", usage_status, "dlock status [OPTIONS] NAME",
     OPT_URL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE},
    {"ls", usage_ls, "dlock ls [OPTIONS] [PATTERN]",
     OPT_URL | OPT_TIMEOUT | OPT_JSON | OPT_VERBOSE | OPT_URLFILE | OPT_WAIT | OPT_FORMAT |
         OPT_LIMIT},
};
const size_t cli_nsubcmds = sizeof cli_subcmds / sizeof cli_subcmds[0];
const char *const cli_usage_main = usage_main;
