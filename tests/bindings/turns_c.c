/* turns_c.c - the C library's participant in the cross-implementation test
 * (tests/bindings/turns.py): ROUNDS times, wait for lock NAME with
 * dlock_wait, check and hold the in-Redis marker for HOLD_MS, release, and
 * append one record per round to OUT:
 *
 *     c <round> <fence> <t0_ns> <t1_ns> <marker>
 *
 * t0 is taken once the lock is held and t1 before it is released, both on
 * CLOCK_MONOTONIC (the clock the other participants read too); marker is
 * "ok" if SET turns:holder NX succeeded (nobody else inside), else "taken".
 * Before the first round it joins the start barrier: INCR turns:ready,
 * then wait for turns:go to exist.
 *
 *     turns_c URL PORT NAME ROUNDS HOLD_MS OUT
 *
 * Uses only the public API (linked to libdlock.so), and hiredis for the
 * marker. Exit 0 after all rounds, 1 on any error (said on stderr), 2 on
 * bad usage. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <dlock.h>
#include <hiredis/hiredis.h>

#define WAIT_MS 60000 /* one acquisition waits at most this long */
#define TTL_MS 10000
#define BARRIER_MS 60000

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One command; NULL (said on stderr) on a connection or server error. */
static redisReply *cmd(redisContext *r, const char *fmt, const char *arg) {
    redisReply *rep = redisCommand(r, fmt, arg);
    if (rep == NULL) {
        fprintf(stderr, "turns_c: redis: %s\n", r->errstr);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "turns_c: redis: %s\n", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* INCR turns:ready, then poll turns:go until it exists. 0 or -1. */
static int barrier(redisContext *r) {
    redisReply *rep = cmd(r, "INCR %s", "turns:ready");
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    int64_t end = mono_ns() + (int64_t)BARRIER_MS * 1000000;
    while (mono_ns() < end) {
        if ((rep = cmd(r, "EXISTS %s", "turns:go")) == NULL)
            return -1;
        int go = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        freeReplyObject(rep);
        if (go)
            return 0;
        sleep_ms(2);
    }
    fprintf(stderr, "turns_c: no start signal within %d ms\n", BARRIER_MS);
    return -1;
}

/* Inside the lock: take the marker, hold, give it back. Sets *taken to 1 if
 * someone else's marker was there. 0 or -1 (Redis failed). */
static int hold(redisContext *r, int round, int hold_ms, int *taken) {
    char who[32];
    snprintf(who, sizeof who, "c %d", round);
    redisReply *rep = redisCommand(r, "SET turns:holder %s NX", who);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "turns_c: SET NX: %s\n", rep ? rep->str : r->errstr);
        freeReplyObject(rep);
        return -1;
    }
    *taken = rep->type != REDIS_REPLY_STATUS; /* nil: someone else is inside */
    freeReplyObject(rep);
    sleep_ms(hold_ms);
    if (!*taken) {
        if ((rep = cmd(r, "DEL %s", "turns:holder")) == NULL)
            return -1;
        freeReplyObject(rep);
    }
    return 0;
}

/* One round: wait, hold, release, record. 0 or -1. */
static int round_once(dlock_client *c, redisContext *r, const char *name, int round,
                      int hold_ms, FILE *out) {
    dlock_lock *l = NULL;
    int rc = dlock_wait(c, name, WAIT_MS, TTL_MS, &l);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "turns_c: round %d: dlock_wait: %s: %s\n", round, dlock_err_name(rc),
                dlock_client_errstr(c));
        return -1;
    }
    int64_t t0 = mono_ns();
    int taken = 0;
    int hrc = hold(r, round, hold_ms, &taken);
    int64_t t1 = mono_ns();
    dlock_info info;
    dlock_info_get(l, &info);
    rc = dlock_release(l);
    if (rc != DLOCK_OK)
        fprintf(stderr, "turns_c: round %d: dlock_release: %s: %s\n", round, dlock_err_name(rc),
                dlock_client_errstr(c));
    if (hrc == 0)
        fprintf(out, "c %d %lld %lld %lld %s\n", round, (long long)info.fence, (long long)t0,
                (long long)t1, taken ? "taken" : "ok");
    dlock_lock_free(l);
    return rc == DLOCK_OK && hrc == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: turns_c URL PORT NAME ROUNDS HOLD_MS OUT\n");
        return 2;
    }
    const char *url = argv[1], *name = argv[3];
    int port = atoi(argv[2]), rounds = atoi(argv[4]), hold_ms = atoi(argv[5]);
    FILE *out = fopen(argv[6], "w");
    if (out == NULL) {
        perror(argv[6]);
        return 1;
    }
    setvbuf(out, NULL, _IOLBF, 0);
    struct timeval tv = {5, 0};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (r == NULL || r->err || redisSetTimeout(r, tv) != REDIS_OK) {
        fprintf(stderr, "turns_c: connect: %s\n", r ? r->errstr : "out of memory");
        return 1;
    }
    dlock_options o;
    dlock_options_init(&o);
    o.owner_label = "turns-c";
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "turns_c: dlock_client_new: %s\n", c ? dlock_client_errstr(c) : "?");
        return 1;
    }
    int failed = barrier(r) != 0;
    for (int i = 0; i < rounds && !failed; i++)
        failed = round_once(c, r, name, i, hold_ms, out) != 0;
    dlock_client_free(c);
    redisFree(r);
    fclose(out);
    return failed;
}
