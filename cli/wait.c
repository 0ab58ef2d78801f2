/* wait.c - taking a lock as the options say (--no-wait, --wait, or without
 * a deadline), and the --verbose display of who is waited for.
 *
 * The wait itself is one dlock_wait call, so the waiter keeps its place in
 * the lock's FIFO queue for the whole wait. With --verbose, a display
 * thread with a client of its own (a client is used by one thread at a
 * time) asks the server who holds the lock once a second and prints it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* How often the --verbose display asks who holds the lock. */
#define REFRESH_MS 1000
/* Without a terminal, repeat an unchanged status line this often. */
#define PLAIN_REPEAT_MS 10000

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* count: how many hold it (a semaphore's permits, an rw lock's readers). */
static void status_line(const char *name, const dlock_holder *h, int count, int64_t waited_ms,
                        char *buf, size_t n) {
    char sname[96], host[128], label[96], who[300], many[32], d1[32], d2[32];
    cli_safe(name, sname, sizeof sname);
    cli_dur(waited_ms, d1, sizeof d1);
    if (h->locked) {
        cli_safe(h->host[0] ? h->host : "unknown host", host, sizeof host);
        if (h->label[0])
            snprintf(who, sizeof who, "%s pid %ld (\"%s\")", host, h->pid,
                     cli_safe(h->label, label, sizeof label));
        else
            snprintf(who, sizeof who, "%s pid %ld", host, h->pid);
        many[0] = '\0';
        if (count > 1)
            snprintf(many, sizeof many, "%d holders, e.g. ", count);
        snprintf(buf, n, "waiting for '%s' (%s): held by %s%s, fence %" PRId64
                         ", lease ends in %s, %d waiting",
                 sname, d1, many, who, h->fence, cli_dur(h->pttl_ms, d2, sizeof d2),
                 h->waiters);
    } else {
        snprintf(buf, n, "waiting for '%s' (%s): free, being handed over (%d waiting)", sname,
                 d1, h->waiters);
    }
}

typedef struct display {
    cli *c;
    const char *name;
    dlock_client *dc; /* the display thread's own client */
    int64_t start;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done;
    int shown; /* a \r line is on the terminal */
} display;

/* Who holds the lock waited for (the first name of a multi-lock): the
 * holder to show, and how many hold it. */
static int read_holder(display *d, dlock_holder *h, int *count) {
    *count = 1;
    if (!d->c->holders && !d->c->rw_mode)
        return dlock_inspect(d->dc, d->name, h);
    dlock_holders *hs;
    int rc = dlock_holders_get(d->dc, d->name, &hs);
    if (rc != DLOCK_OK)
        return rc;
    const dlock_holder *first = dlock_holders_at(hs, 0);
    memset(h, 0, sizeof *h);
    if (first != NULL)
        *h = *first;
    h->waiters = dlock_holders_waiters(hs);
    *count = dlock_holders_total(hs);
    dlock_holders_free(hs);
    return DLOCK_OK;
}

static void *display_main(void *arg) {
    display *d = arg;
    int tty = isatty(STDERR_FILENO);
    int64_t last_fence = -1, last_print = 0;
    int failed = 0;
    pthread_mutex_lock(&d->mu);
    while (!d->done) {
        pthread_mutex_unlock(&d->mu);
        dlock_holder h;
        int count;
        int rc = read_holder(d, &h, &count);
        int64_t now = now_ms();
        char line[700];
        if (rc == DLOCK_OK) {
            status_line(d->name, &h, count, now - d->start, line, sizeof line);
        } else {
            char e[300];
            snprintf(line, sizeof line, "waiting; cannot read the holder: %s",
                     cli_safe(dlock_client_errstr(d->dc), e, sizeof e));
        }
        pthread_mutex_lock(&d->mu);
        if (d->done)
            break;
        if (tty) {
            fprintf(stderr, "\r\033[Kdlock: %s", line);
            d->shown = 1;
        } else if ((rc == DLOCK_OK && h.fence != last_fence) || (rc != DLOCK_OK && !failed) ||
                   now - last_print >= PLAIN_REPEAT_MS) {
            fprintf(stderr, "dlock: %s\n", line);
            last_fence = rc == DLOCK_OK ? h.fence : last_fence;
            last_print = now;
        }
        failed = rc != DLOCK_OK;
        fflush(stderr);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += REFRESH_MS / 1000;
        ts.tv_nsec += (long)(REFRESH_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!d->done && pthread_cond_timedwait(&d->cond, &d->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Starts the display thread; returns 0, or -1 (then waiting goes on
 * without a display). */
static int display_start(display *d, pthread_t *th) {
    dlock_options o;
    dlock_options_init(&o);
    if (d->c->timeout_ms > 0) {
        o.connect_timeout_ms = d->c->timeout_ms;
        o.command_timeout_ms = d->c->timeout_ms;
    }
    if (dlock_client_new(&d->dc, d->c->url, &o) != DLOCK_OK) {
        dlock_client_free(d->dc);
        return -1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->mu, NULL);
    if (pthread_create(th, NULL, display_main, d) != 0) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->mu);
        dlock_client_free(d->dc);
        return -1;
    }
    return 0;
}

static void display_stop(display *d, pthread_t th) {
    pthread_mutex_lock(&d->mu);
    d->done = 1;
    pthread_cond_signal(&d->cond);
    if (d->shown)
        fputs("\r\033[K", stderr); /* clear the in-place line */
    pthread_mutex_unlock(&d->mu);
    pthread_join(th, NULL);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
    dlock_client_free(d->dc);
}

/* A failure of the first try that a wait rides out (a failover, a restart,
 * a server loading): dlock_wait retries such failures until its deadline. */
static int passing(const cli *c, int rc) {
    if (rc == DLOCK_EIO || rc == DLOCK_ENOQUORUM || rc == DLOCK_EUNKNOWN)
        return 1;
    if (rc != DLOCK_ESERVER)
        return 0;
    switch (dlock_client_errcode(c->client)) {
    case DLOCK_SRV_LOADING:
    case DLOCK_SRV_MASTERDOWN:
    case DLOCK_SRV_BUSY:
    case DLOCK_SRV_CLUSTERDOWN:
    case DLOCK_SRV_TRYAGAIN:
    case DLOCK_SRV_NOREPLICAS:
    case DLOCK_SRV_READONLY:
        return 1;
    default:
        return 0;
    }
}

/* One attempt (wait_ms < 0) or a wait of wait_ms, as the kind the options
 * say. */
static int take(cli *c, const char *name, int64_t wait_ms, dlock_lock **out) {
    dlock_client *k = c->client;
    const char *const *names = (const char *const *)c->names;
    if (c->nnames > 1)
        return wait_ms < 0 ? dlock_multi_try_acquire(k, names, c->nnames, c->ttl_ms, out)
                           : dlock_multi_wait(k, names, c->nnames, wait_ms, c->ttl_ms, out);
    if (c->holders)
        return wait_ms < 0 ? dlock_sem_try_acquire(k, name, c->holders, c->ttl_ms, out)
                           : dlock_sem_wait(k, name, c->holders, wait_ms, c->ttl_ms, out);
    if (c->rw_mode)
        return wait_ms < 0 ? dlock_rw_try_acquire(k, name, c->rw_mode, c->ttl_ms, out)
                           : dlock_rw_wait(k, name, c->rw_mode, wait_ms, c->ttl_ms, out);
    return wait_ms < 0 ? dlock_try_acquire(k, name, c->ttl_ms, out)
                       : dlock_wait(k, name, wait_ms, c->ttl_ms, out);
}

int cli_take(cli *c, const char *name, dlock_lock **out) {
    *out = NULL;
    int64_t start = now_ms();
    int rc;
    if (c->no_wait || c->wait_ms == 0) {
        rc = take(c, name, -1, out);
    } else {
        rc = take(c, name, -1, out);
        display d;
        pthread_t th;
        int shown = 0;
        if (rc == DLOCK_EBUSY && c->verbose) {
            memset(&d, 0, sizeof d);
            d.c = c;
            d.name = name;
            d.start = start;
            shown = display_start(&d, &th) == 0;
        }
        int64_t deadline = c->wait_ms < 0 ? -1 : start + c->wait_ms;
        /* A replica gate that did not pass (?replicas=N) is waited for
         * too: dlock_wait tries again once the replicas are back, and says
         * DLOCK_ENOREPLICAS if they are not by the deadline. With a
         * deadline (-w N), so is a failover: the server unreachable, or
         * between masters, costs time, not the run (without one, a server
         * that is down fails the command at once). */
        int again = rc == DLOCK_EBUSY || rc == DLOCK_ENOREPLICAS ||
                    (deadline >= 0 && passing(c, rc));
        while (again) {
            int64_t left = deadline < 0 ? DLOCK_TTL_MAX : deadline - now_ms();
            if (left <= 0) {
                rc = rc == DLOCK_EBUSY ? DLOCK_ETIMEDOUT : rc;
                break;
            }
            rc = take(c, name, left, out);
            /* ETIMEDOUT means the deadline passed */
            again = deadline < 0 && (rc == DLOCK_EBUSY || rc == DLOCK_ETIMEDOUT);
        }
        if (shown)
            display_stop(&d, th);
    }
    if (rc == DLOCK_OK && c->verbose) {
        dlock_info info;
        char what[300], sname[96], dur[32];
        dlock_info_get(*out, &info);
        if (c->nnames > 1 || c->holders || c->rw_mode)
            cli_what(c, name, what, sizeof what);
        else
            snprintf(what, sizeof what, "'%s'", cli_safe(name, sname, sizeof sname));
        cli_msg("acquired %s (fence %" PRId64 ") after %s", what, info.fence,
                cli_dur(now_ms() - start, dur, sizeof dur));
    }
    return rc;
}
