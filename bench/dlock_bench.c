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
 * machine-readable: RESULT mode=... (see usage() in options.c).
 *
 * Files: this one runs --mode uncontended and dispatches; options.c parses
 * the command line, report.c counts commands and prints latency,
 * raw_mode.c, contended_mode.c, keepalive_mode.c, pipelined_mode.c and
 * kinds_mode.c run the other modes.
 */
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
#include <signal.h>
#include "keepalive_mode.h"
#include "kinds_mode.h"
#include "pipelined_mode.h"

/* ---- uncontended ---- */

int client_make(const bench_opts *o, dlock_client **out) {
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
