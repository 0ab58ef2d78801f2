/* resolve.c - host names looked up on a thread of their own (resolve.h). */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Shared by the caller and the look-up's thread; the last of the two to
 * let go frees it. The thread writes rc, sys_errno and ip, then sets done,
 * then sends the byte that makes the caller's descriptor readable. */
struct dl_resolve {
    atomic_int refs;
    atomic_int done;
    int wfd; /* the thread's end of the socket pair */
    int port;
    int rc;        /* 0, or getaddrinfo's / getnameinfo's EAI_* */
    int sys_errno; /* errno, for EAI_SYSTEM */
    int n;         /* addresses in ip (at least 1 when rc is 0) */
    char host[256];
    char ip[DL_RESOLVE_MAX][64];
};

int dl_host_is_address(const char *host) {
    char buf[64];
    unsigned char bin[16];
    const char *zone = strchr(host, '%');
    if (zone != NULL) { /* fe80::1%eth0: the address before the zone */
        size_t n = (size_t)(zone - host);
        if (n >= sizeof buf)
            return 0;
        memcpy(buf, host, n);
        buf[n] = '\0';
        host = buf;
    }
    return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

static void let_go(dl_resolve *r) {
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
}

/* Add the addresses of family fam in ai to r's list, in the resolver's
 * order, each once, while there is room. */
static int collect(dl_resolve *r, const struct addrinfo *ai, int fam) {
    for (; ai != NULL && r->n < DL_RESOLVE_MAX; ai = ai->ai_next) {
        if (ai->ai_family != fam)
            continue;
        char *ip = r->ip[r->n];
        int rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof r->ip[0], NULL, 0,
                             NI_NUMERICHOST);
        if (rc != 0)
            return rc;
        int seen = 0;
        for (int i = 0; i < r->n && !seen; i++)
            seen = strcmp(r->ip[i], ip) == 0;
        r->n += !seen;
    }
    return 0;
}

/* One query for both families; IPv4 addresses first, as hiredis prefers
 * them (a client cannot afford to find out whether IPv6 works on every
 * connect), then IPv6 ones, for conn.c to try in turn. */
static int lookup_all(dl_resolve *r) {
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(r->host, port, &hints, &ai);
    if (rc == 0) {
        rc = collect(r, ai, AF_INET);
        if (rc == 0)
            rc = collect(r, ai, AF_INET6);
        if (rc == 0 && r->n == 0)
            rc = EAI_NONAME; /* neither family: nothing to connect to */
        freeaddrinfo(ai);
    }
    if (rc == EAI_SYSTEM)
        r->sys_errno = errno;
    return rc;
}

static void *lookup_thread(void *arg) {
    dl_resolve *r = arg;
    r->rc = lookup_all(r);
    atomic_store(&r->done, 1);
    /* A closed other end (the caller dropped the look-up) is EPIPE, never
     * SIGPIPE. */
    (void)send(r->wfd, "x", 1, MSG_NOSIGNAL);
    close(r->wfd);
    let_go(r);
    return NULL;
}

dl_resolve *dl_resolve_start(const char *host, int port, int *fd) {
    if (strlen(host) >= sizeof ((dl_resolve *)0)->host) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    dl_resolve *r = calloc(1, sizeof *r);
    int sv[2];
    if (r == NULL)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 2);
    atomic_init(&r->done, 0);
    r->wfd = sv[1];
    r->port = port;
    memcpy(r->host, host, strlen(host) + 1);
    /* The thread takes no signal: the program's handlers run where it
     * expects them, and a signalfd user's signals stay blocked. */
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&t, &attr, lookup_thread, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        close(sv[0]);
        close(sv[1]);
        free(r);
        errno = rc;
        return NULL;
    }
    *fd = sv[0];
    return r;
}

int dl_resolve_done(const dl_resolve *r) { return atomic_load(&r->done); }

int dl_resolve_count(const dl_resolve *r, char *why, size_t why_cap) {
    if (!atomic_load(&r->done)) {
        snprintf(why, why_cap, "host name lookup gave no answer");
        return -1;
    }
    if (r->rc != 0) {
        snprintf(why, why_cap, "host name lookup failed: %s",
                 r->rc == EAI_SYSTEM ? strerror(r->sys_errno) : gai_strerror(r->rc));
        return -1;
    }
    return r->n;
}

const char *dl_resolve_addr(const dl_resolve *r, int i) { return r->ip[i]; }

void dl_resolve_drop(dl_resolve *r) {
    if (r != NULL)
        let_go(r);
}
