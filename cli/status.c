/* status.c - who holds a lock, for people and scripts: `dlock status NAME`
 * and the message when a lock is not obtained (cli_conflict). A mutex has
 * one holder (dlock_inspect); a semaphore or read-write lock has several
 * (dlock_holders_get); a multi-lock is reported by the first of its names
 * that is held. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

const char *cli_what(const cli *c, const char *name, char *buf, size_t n) {
    char s0[96], s1[96];
    if (c->nnames > 1) {
        cli_safe(c->names[0], s0, sizeof s0);
        cli_safe(c->names[1], s1, sizeof s1);
        if (c->nnames == 2)
            snprintf(buf, n, "locks '%s' and '%s'", s0, s1);
        else
            snprintf(buf, n, "locks '%s', '%s' and %d more", s0, s1, c->nnames - 2);
        return buf;
    }
    cli_safe(name, s0, sizeof s0);
    snprintf(buf, n, "%s '%s'",
             c->holders ? "semaphore" : c->rw_mode ? "read-write lock" : "lock", s0);
    return buf;
}

/* "host pid N ("label"), lease ends in D" */
static const char *who(const dlock_holder *h, char *buf, size_t n) {
    char host[128], label[96], d[32];
    cli_safe(h->host, host, sizeof host);
    if (h->label[0])
        snprintf(buf, n, "%s pid %ld (\"%s\"), lease ends in %s", host, h->pid,
                 cli_safe(h->label, label, sizeof label), cli_dur(h->pttl_ms, d, sizeof d));
    else
        snprintf(buf, n, "%s pid %ld, lease ends in %s", host, h->pid,
                 cli_dur(h->pttl_ms, d, sizeof d));
    return buf;
}

/* Who holds what the options name: *h the holder to show (its name in
 * *held), *count how many hold it. 0 if nobody could be found. */
static int find_holder(cli *c, const char *name, dlock_holder *h, const char **held,
                       int *count) {
    *count = 0;
    if (c->holders || c->rw_mode) {
        dlock_holders *hs;
        if (dlock_holders_get(c->client, name, &hs) != DLOCK_OK)
            return 0;
        const dlock_holder *first = dlock_holders_at(hs, 0);
        if (first != NULL)
            *h = *first;
        *count = dlock_holders_total(hs);
        *held = name;
        dlock_holders_free(hs);
        return first != NULL;
    }
    for (int i = 0; i < (c->nnames > 1 ? c->nnames : 1); i++) {
        const char *n = c->nnames > 1 ? c->names[i] : name;
        if (dlock_inspect(c->client, n, h) == DLOCK_OK && h->locked) {
            *held = n;
            *count = 1;
            return 1;
        }
    }
    return 0;
}

int cli_conflict(cli *c, const char *name, int rc, FILE *jf) {
    dlock_holder h;
    const char *held = name;
    int count;
    int known = find_holder(c, name, &h, &held, &count);
    char what[300], sheld[96], w[300], by[400], d[32];
    cli_what(c, name, what, sizeof what);
    by[0] = '\0';
    if (known && c->nnames > 1)
        snprintf(by, sizeof by, ": '%s' is held by %s", cli_safe(held, sheld, sizeof sheld),
                 who(&h, w, sizeof w));
    else if (known && count > 1)
        snprintf(by, sizeof by, " by %d holders, e.g. %s", count, who(&h, w, sizeof w));
    else if (known)
        snprintf(by, sizeof by, " by %s", who(&h, w, sizeof w));
    if (rc == DLOCK_ETIMEDOUT)
        cli_msg("gave up waiting for %s after %s%s%s", what, cli_dur(c->wait_ms, d, sizeof d),
                known && c->nnames <= 1 ? ": held" : "", by);
    else if (c->nnames > 1)
        cli_msg("%s are not all free%s", what, known ? by : "");
    else
        cli_msg("%s is held%s", what, known ? by : " by another owner");
    if (c->json) {
        jw j;
        jw_begin(&j, jf);
        jw_str(&j, "name", name);
        jw_bool(&j, "acquired", 0);
        jw_str(&j, "error", rc == DLOCK_ETIMEDOUT ? "timeout" : "busy");
        if (known) {
            if (c->nnames > 1)
                jw_str(&j, "held_name", held);
            jw_str(&j, "holder_host", h.host);
            jw_int(&j, "holder_pid", h.pid);
            jw_str(&j, "holder_label", h.label[0] ? h.label : NULL);
            jw_int(&j, "ttl_ms", h.pttl_ms);
            jw_int(&j, "fence", h.fence);
            if (c->holders || c->rw_mode)
                jw_int(&j, "holders", count);
        }
        jw_end(&j);
    }
    return (c->given & OPT_CONFLICT) ? c->conflict_code : EXIT_CONFLICT;
}

/* ---- dlock status ---- */

/* A holder's members; with last_fence (status of a mutex) in between, in
 * the order dlock status has always printed them. */
static void holder_json(jw *w, const dlock_holder *h, int with_last) {
    jw_int(w, "ttl_ms", h->pttl_ms);
    jw_int(w, "fence", h->fence);
    if (with_last)
        jw_int(w, "last_fence", h->fence);
    jw_str(w, "host", h->host);
    jw_int(w, "pid", h->pid);
    jw_str(w, "label", h->label[0] ? h->label : NULL);
    jw_int(w, "acquired_at", h->acquired_at);
    jw_str(w, "token", h->token);
}

static void status_json(const char *name, const dlock_holder *h) {
    jw w;
    jw_begin(&w, stdout);
    jw_str(&w, "name", name);
    jw_bool(&w, "locked", h->locked);
    if (h->locked) {
        holder_json(&w, h, 1);
    } else {
        jw_null(&w, "ttl_ms");
        jw_null(&w, "fence");
        jw_int(&w, "last_fence", h->fence);
        const char *nulls[] = {"host", "pid", "label", "acquired_at", "token"};
        for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
            jw_null(&w, nulls[i]);
    }
    jw_int(&w, "waiters", h->waiters);
    jw_end(&w);
}

/* "YYYY-MM-DD HH:MM:SS +ZZZZ (D ago)" of a wall-clock time in ms. */
static const char *when(int64_t at_ms, char *buf, size_t n) {
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    char date[64], d[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - at_ms;
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tm));
    snprintf(buf, n, "%s (%s ago)", date, cli_dur(age, d, sizeof d));
    return buf;
}

static int status_mutex(cli *c, const char *name) {
    dlock_holder h;
    int rc = dlock_inspect(c->client, name, &h);
    if (rc != DLOCK_OK) {
        char what[160], sname[96];
        snprintf(what, sizeof what, "read the status of '%s'", cli_safe(name, sname, sizeof sname));
        return cli_fail(c, rc, what);
    }
    if (c->json) {
        status_json(name, &h);
        return 0;
    }
    char sname[256], d[32], at[120];
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
    if (h.acquired_at > 0)
        printf("  acquired: %s\n", when(h.acquired_at, at, sizeof at));
    printf("  expires:  in %s\n", cli_dur(h.pttl_ms, d, sizeof d));
    printf("  waiters:  %d\n", h.waiters);
    printf("  token:    %s\n", h.token);
    return 0;
}

static void kinds_json(const char *name, const dlock_holders *hs) {
    int sem = dlock_holders_kind(hs) == DLOCK_KIND_SEMAPHORE;
    printf("{\"name\":");
    json_string(stdout, name);
    printf(",\"locked\":true,\"kind\":\"%s\"", sem ? "semaphore" : "rw");
    if (sem)
        printf(",\"permits\":%d", dlock_holders_permits(hs));
    printf(",\"holders\":[");
    for (int i = 0; i < dlock_holders_count(hs); i++) {
        jw w;
        printf(i ? "," : "");
        jw_begin(&w, stdout);
        holder_json(&w, dlock_holders_at(hs, i), 0);
        if (!sem)
            jw_bool(&w, "shared", dlock_holders_shared(hs, i));
        fputs("}", stdout); /* jw_end would end the line */
    }
    printf("],\"last_fence\":%" PRId64 ",\"waiters\":%d}\n", dlock_holders_last_fence(hs),
           dlock_holders_waiters(hs));
}

static void kinds_text(const char *name, const dlock_holders *hs) {
    char sname[256], host[128], label[160], d[32], at[120];
    int n = dlock_holders_total(hs);
    cli_safe(name, sname, sizeof sname);
    if (dlock_holders_kind(hs) == DLOCK_KIND_SEMAPHORE)
        printf("%s: semaphore, %d of %d permits held\n", sname, n, dlock_holders_permits(hs));
    else if (dlock_holders_shared(hs, 0))
        printf("%s: read-write lock, held shared by %d reader%s\n", sname, n, n > 1 ? "s" : "");
    else
        printf("%s: read-write lock, held exclusive by a writer\n", sname);
    for (int i = 0; i < dlock_holders_count(hs); i++) {
        const dlock_holder *h = dlock_holders_at(hs, i);
        printf("  holder:   %s pid %ld", cli_safe(h->host, host, sizeof host), h->pid);
        if (h->label[0])
            printf(" (\"%s\")", cli_safe(h->label, label, sizeof label));
        printf(", fence %" PRId64 ", expires in %s, token %s\n", h->fence,
               cli_dur(h->pttl_ms, d, sizeof d), h->token);
        if (h->acquired_at > 0)
            printf("            acquired %s\n", when(h->acquired_at, at, sizeof at));
    }
    printf("  last fence: %" PRId64 "\n", dlock_holders_last_fence(hs));
    printf("  waiters:  %d\n", dlock_holders_waiters(hs));
}

int cli_status(cli *c, const char *name) {
    dlock_holders *hs = NULL;
    int rc = dlock_holders_get(c->client, name, &hs);
    if (rc != DLOCK_OK || dlock_holders_kind(hs) == DLOCK_KIND_MUTEX ||
        dlock_holders_count(hs) == 0) {
        dlock_holders_free(hs); /* a mutex, a free name, or Redlock (mutexes only) */
        return status_mutex(c, name);
    }
    if (c->json)
        kinds_json(name, hs);
    else
        kinds_text(name, hs);
    dlock_holders_free(hs);
    return 0;
}
