/* ports.c - free loopback ports for the servers the tests start.
 *
 * Ports come from below the kernel's ephemeral range
 * (/proc/sys/net/ipv4/ip_local_port_range), not from a bind to port 0:
 * an ephemeral port, once closed, is what the next outgoing connection of
 * any test running in parallel may get as its local port, and a server
 * started (or restarted after a kill) on it a moment later then fails to
 * bind. Below the range only other tests' servers compete, and a port is
 * checked by binding it first. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT_LOW 10000 /* the lowest port handed out */
#define BUS_OFFSET 10000 /* a cluster node's bus: its port + 10000 */

static int bindable(int port) {
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* The first port of the kernel's ephemeral range (32768 if unreadable). */
static int ephemeral_low(void) {
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    return lo;
}

int th_free_port(int need_bus) {
    /* Spread processes and calls over the range, so that tests started
     * together do not try the same ports in the same order. */
    static atomic_uint calls;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec ^
                    atomic_fetch_add(&calls, 1) * 40503u;
    int high = ephemeral_low() - (need_bus ? BUS_OFFSET : 0); /* exclusive */
    int span = high - PORT_LOW;
    if (span < 1000) { /* an unusual range: no room to pick from */
        fprintf(stderr, "harness: no room below the ephemeral ports (%d)\n", high);
        return -1;
    }
    for (int tries = 0; tries < 500; tries++) {
        seed = seed * 1103515245u + 12345u;
        int port = PORT_LOW + (int)((seed >> 8) % (unsigned)span);
        if (bindable(port) && (!need_bus || bindable(port + BUS_OFFSET)))
            return port;
    }
    fprintf(stderr, "harness: cannot find a free 127.0.0.1 port: %s\n", strerror(errno));
    return -1;
}
