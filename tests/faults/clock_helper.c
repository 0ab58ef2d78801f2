/* clock_helper.c - run by test_clock under faketime(1): acquire a lock and
 * report, through a pipe, the moment it was acquired and the moment
 * dlock_held() turned false by this process's (faked) clocks.
 *
 * usage: clock_helper URL NAME TTL_MS FD
 * Writes 'A' after the acquire returned, then 'F' once dlock_held() is 0,
 * each followed by the TRUE CLOCK_MONOTONIC time in microseconds (int64),
 * read with the raw system call, which libfaketime does not intercept: the
 * test compares it with its own clock, immune to scheduling delays.
 * Exit status 0, or 1 on any failure (message on stderr). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dlock.h"

static int report(int fd, char what) {
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    char buf[1 + sizeof us];
    buf[0] = what;
    memcpy(buf + 1, &us, sizeof us);
    return write(fd, buf, sizeof buf) == (ssize_t)sizeof buf ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: clock_helper URL NAME TTL_MS FD\n");
        return 2;
    }
    int fd = atoi(argv[4]);
    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = 2000;
    o.command_timeout_ms = 2000;
    dlock_client *c = NULL;
    if (dlock_client_new(&c, argv[1], &o) != DLOCK_OK) {
        fprintf(stderr, "clock_helper: %s\n", dlock_client_errstr(c));
        return 1;
    }
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, argv[2], atoll(argv[3]), &l);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "clock_helper: acquire: %s: %s\n", dlock_err_name(rc),
                dlock_client_errstr(c));
        return 1;
    }
    if (report(fd, 'A') != 0)
        return 1;
    while (dlock_held(l)) {
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    if (report(fd, 'F') != 0)
        return 1;
    dlock_info info;
    dlock_info_get(l, &info);
    printf("clock_helper: acquired_at %lld (wall clock as this process sees it)\n",
           (long long)info.acquired_at);
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}
