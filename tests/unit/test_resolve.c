/* test_resolve.c - the order and the cap of a look-up's addresses
 * (src/net/resolve.c). No server, no resolver: getaddrinfo is interposed,
 * and names ending in ".dlock.test" get literal addresses chained in a
 * chosen order.
 *   - IPv4 addresses come first, then IPv6 ones, each family in the
 *     resolver's order, each address once;
 *   - at most DL_RESOLVE_MAX are kept;
 *   - a name with no address fails with the resolver's words. */
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include "harness.h"
#include "resolve.h"
#include "unit.h"

static const char *const mixed[] = {"::1", "127.0.0.2", "::1", "fe80::1", "127.0.0.1",
                                    "127.0.0.2"};
static const char *const many[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4",
                                   "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8",
                                   "127.0.0.9", "127.0.0.10"};

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    th_gai_fn real = (th_gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    size_t len = node ? strlen(node) : 0;
    if (len < 11 || strcmp(node + len - 11, ".dlock.test") != 0)
        return real(node, service, hints, res);
    if (strcmp(node, "mixed.dlock.test") == 0)
        return th_gai_chain(real, mixed, 6, service, res);
    if (strcmp(node, "many.dlock.test") == 0)
        return th_gai_chain(real, many, 10, service, res);
    return EAI_NONAME;
}

/* Look name up and wait (at most 5 s) for the answer: its count, the
 * reason in why. */
static dl_resolve *answer(const char *name, int *count, char *why, size_t why_cap) {
    int fd = -1;
    dl_resolve *r = dl_resolve_start(name, 6379, &fd);
    CHECK(r != NULL);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_INT(poll(&p, 1, 5000), 1);
    CHECK(dl_resolve_done(r));
    close(fd);
    *count = dl_resolve_count(r, why, why_cap);
    return r;
}

int main(void) {
    char why[200] = "";
    int n;
    dl_resolve *r = answer("mixed.dlock.test", &n, why, sizeof why);
    CHECK_INT(n, 4);
    CHECK_STR(dl_resolve_addr(r, 0), "127.0.0.2");
    CHECK_STR(dl_resolve_addr(r, 1), "127.0.0.1");
    CHECK_STR(dl_resolve_addr(r, 2), "::1");
    CHECK_STR(dl_resolve_addr(r, 3), "fe80::1");
    dl_resolve_drop(r);

    r = answer("many.dlock.test", &n, why, sizeof why);
    CHECK_INT(n, DL_RESOLVE_MAX);
    CHECK_STR(dl_resolve_addr(r, 0), "127.0.0.1");
    CHECK_STR(dl_resolve_addr(r, DL_RESOLVE_MAX - 1), "127.0.0.8");
    dl_resolve_drop(r);

    r = answer("none.dlock.test", &n, why, sizeof why);
    CHECK_INT(n, -1);
    CHECK_CONTAINS(why, "host name lookup failed");
    dl_resolve_drop(r);

    CHECK(dl_host_is_address("::1"));
    CHECK(dl_host_is_address("127.0.0.1"));
    CHECK(!dl_host_is_address("localhost"));
    UNIT_DONE();
}
