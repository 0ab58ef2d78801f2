/* metrics.c - OpenMetrics text (which Prometheus's text format and
 * node_exporter's textfile collector read too): label values escaped,
 * metric families, and `dlock run --metrics-file`, written to a temporary
 * file and renamed into place so a collector never reads half a file.
 *
 * Every family is a gauge (the one type both formats know alike), HELP
 * texts hold no backslash or quote, and the text ends with "# EOF", which
 * the Prometheus format reads as a comment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void om_label_value(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    putc('"', f);
    while (*p) {
        if (*p == '\\' || *p == '"') {
            putc('\\', f);
            putc(*p++, f);
        } else if (*p == '\n') {
            fputs("\\n", f);
            p++;
        } else {
            int n = cli_utf8_len(p);
            if (n == 0) {
                fputs("\xef\xbf\xbd", f); /* U+FFFD for a byte that is not UTF-8 */
                p++;
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            }
        }
    }
    putc('"', f);
}

void om_family(FILE *f, const char *name, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* One sample of a run family: NAME{name="LOCK"} VALUE. */
static void run_sample(FILE *f, const cli *c, const char *metric, const char *help,
                       const char *value) {
    om_family(f, metric, help);
    fprintf(f, "%s{name=", metric);
    om_label_value(f, c->name);
    fprintf(f, "} %s\n", value);
}

static const char *const outcomes[] = {"ok",   "failed",     "not_acquired", "lost",
                                       "lost_after", "max_time", "error"};

static void run_text(FILE *f, const cli *c, int code) {
    char v[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(v, sizeof v, "%d", c->run.acquired);
    run_sample(f, c, "dlock_run_acquired", "1 if dlock run obtained the lock.", v);
    snprintf(v, sizeof v, "%.3f", (double)c->run.wait_ms / 1000.0);
    run_sample(f, c, "dlock_run_wait_seconds", "Time spent acquiring the lock.", v);
    snprintf(v, sizeof v, "%.3f", (double)c->run.hold_ms / 1000.0);
    run_sample(f, c, "dlock_run_hold_seconds", "Time the lock was held (0 if not obtained).", v);
    snprintf(v, sizeof v, "%d", code);
    run_sample(f, c, "dlock_run_exit_status", "Exit status of dlock run.", v);
    const char *o = c->run.outcome ? c->run.outcome : "error";
    int lost = strcmp(o, "lost") == 0 || strcmp(o, "lost_after") == 0;
    run_sample(f, c, "dlock_run_lost", "1 if the lease was lost while or after the command ran.",
               lost ? "1" : "0");
    run_sample(f, c, "dlock_run_max_time_reached", "1 if --max-time ended the command.",
               strcmp(o, "max_time") == 0 ? "1" : "0");
    snprintf(v, sizeof v, "%lld.%03ld", (long long)now.tv_sec, now.tv_nsec / 1000000);
    run_sample(f, c, "dlock_run_end_timestamp_seconds", "When the run ended, in Unix time.", v);
    om_family(f, "dlock_run_outcome", "How the run ended: 1 for its outcome, 0 for the others.");
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
        fputs("dlock_run_outcome{name=", f);
        om_label_value(f, c->name);
        fprintf(f, ",outcome=\"%s\"} %d\n", outcomes[i], strcmp(o, outcomes[i]) == 0);
    }
    fputs("# EOF\n", f);
}

void cli_run_metrics(cli *c, int code) {
    if (c->metrics_file == NULL || c->run.written || c->name == NULL)
        return;
    c->run.written = 1;
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.%ld.tmp", c->metrics_file, (long)getpid());
    const char *why = NULL;
    int fd = n > 0 && (size_t)n < sizeof tmp
                 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)
                 : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        why = n > 0 && (size_t)n < sizeof tmp ? strerror(errno) : "path too long";
        if (fd >= 0)
            close(fd);
    } else {
        run_text(f, c, code);
        int bad = fflush(f) != 0 || fsync(fd) != 0 || ferror(f);
        int e = errno;
        if (fclose(f) != 0 && !bad) {
            bad = 1;
            e = errno;
        }
        if (bad || rename(tmp, c->metrics_file) != 0) {
            why = strerror(bad ? e : errno);
            unlink(tmp);
        }
    }
    if (why != NULL) {
        char p[200];
        cli_msg("cannot write --metrics-file %s: %s", cli_safe(c->metrics_file, p, sizeof p),
                why);
    }
}
