/* doctor_out.c - the report of `dlock doctor`: per server, its findings,
 * the findings about the set, and a verdict, as text or as JSON lines (one
 * flat object per server, per finding, and a summary last). */
#include <math.h>
#include <stdio.h>

#include "doctor.h"

static const char *const sev_name[] = {"ok", "info", "warn", "unsafe"};
static const char *const sev_label[] = {"ok    ", "info  ", "warn  ", "UNSAFE"};

static const char *kind_name(const dl_url *u) {
    switch (u->kind) {
    case DL_URL_REDLOCK: return "redlock";
    case DL_URL_SENTINEL: return "sentinel";
    case DL_URL_CLUSTER: return "cluster";
    default: return "single";
    }
}

static void print_findings(const findings *fs, const char *server_addr, int json) {
    for (int i = 0; i < fs->n; i++) {
        const finding *f = &fs->f[i];
        if (json) {
            jw w;
            jw_begin(&w, stdout);
            jw_str(&w, "type", "check");
            jw_str(&w, "server", server_addr);
            jw_str(&w, "check", f->check);
            jw_str(&w, "severity", sev_name[f->sev]);
            jw_str(&w, "value", f->value);
            jw_str(&w, "message", f->msg);
            jw_end(&w);
        } else {
            printf("  %s  %-12s %s\n", sev_label[f->sev], f->check, f->msg);
        }
    }
}

static void print_server(const server *s, int json) {
    if (json) {
        jw w;
        jw_begin(&w, stdout);
        jw_str(&w, "type", "server");
        jw_str(&w, "server", s->addr);
        jw_bool(&w, "reachable", s->ok);
        if (!s->ok) {
            jw_str(&w, "error", s->error);
        } else {
            jw_str(&w, "version", s->version);
            jw_str(&w, "role", s->role);
            jw_str(&w, "run_id", s->run_id[0] ? s->run_id : NULL);
            if (s->nlat > 0) {
                jw_int(&w, "latency_min_us", llround(s->lat_ms[0] * 1e3));
                jw_int(&w, "latency_p50_us", llround(s->lat_ms[s->nlat / 2] * 1e3));
                jw_int(&w, "latency_max_us", llround(s->lat_ms[s->nlat - 1] * 1e3));
            }
            if (s->has_time)
                jw_int(&w, "clock_offset_us", llround(s->offset_ms * 1e3));
        }
        jw_end(&w);
    } else if (!s->ok) {
        printf("%s: UNREACHABLE: %s\n", s->addr, s->error);
    } else {
        printf("%s: Redis %s, %s\n", s->addr, s->version, s->role);
    }
    print_findings(&s->fs, s->addr, json);
}

int doctor_report(doctor *d) {
    int json = d->c->json, unreachable = 0, counts[4] = {0};
    if (!json)
        printf("dlock doctor: %s (%s, %d server%s)\n\n", d->c->url_shown, kind_name(&d->u),
               d->n, d->n == 1 ? "" : "s");
    for (int i = 0; i < d->n; i++) {
        print_server(&d->s[i], json);
        unreachable += !d->s[i].ok;
        for (int j = 0; j < d->s[i].fs.n; j++)
            counts[d->s[i].fs.f[j].sev]++;
        if (!json)
            putchar('\n');
    }
    if (d->set.n > 0 && !json)
        printf("%s:\n", d->u.kind == DL_URL_SENTINEL ? "Sentinel" : "Redlock set");
    print_findings(&d->set, NULL, json);
    for (int j = 0; j < d->set.n; j++)
        counts[d->set.f[j].sev]++;
    if (d->n == 0)
        unreachable++;
    int code = counts[SEV_UNSAFE] ? EXIT_UNSAFE : unreachable ? EXIT_SERVER
                                              : counts[SEV_WARN] ? 1 : 0;
    const char *status = counts[SEV_UNSAFE] ? "unsafe" : unreachable ? "unreachable"
                                           : counts[SEV_WARN] ? "warnings" : "ok";
    if (json) {
        jw w;
        jw_begin(&w, stdout);
        jw_str(&w, "type", "summary");
        jw_str(&w, "url", d->c->url_shown);
        jw_str(&w, "kind", kind_name(&d->u));
        jw_int(&w, "servers", d->n);
        jw_int(&w, "unreachable", unreachable);
        jw_int(&w, "unsafe", counts[SEV_UNSAFE]);
        jw_int(&w, "warnings", counts[SEV_WARN]);
        jw_str(&w, "status", status);
        jw_int(&w, "exit_code", code);
        jw_end(&w);
    } else {
        if (d->set.n > 0)
            putchar('\n');
        printf("verdict: %s: %d unsafe, %d warning%s, %d unreachable (exit %d)\n",
               counts[SEV_UNSAFE] ? "UNSAFE" : status, counts[SEV_UNSAFE], counts[SEV_WARN],
               counts[SEV_WARN] == 1 ? "" : "s", unreachable, code);
    }
    return code;
}
