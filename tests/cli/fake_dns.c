/* fake_dns.c - preloaded (LD_PRELOAD) into `dlock` by test_doctor's
 * "names" case: getaddrinfo answers made-up names ending in ".dlock.test"
 * without asking a resolver:
 *   slow.dlock.test  127.0.0.1, after $DLOCK_FAKE_DNS_DELAY_MS ms
 *   two.dlock.test   127.0.0.2 (where nothing listens), then 127.0.0.1
 *   other .dlock.test names do not exist.
 * Every other name goes to the real getaddrinfo. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    static const char *const slow[] = {"127.0.0.1"};
    static const char *const two[] = {"127.0.0.2", "127.0.0.1"};
    th_gai_fn real = (th_gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    size_t n = node != NULL ? strlen(node) : 0;
    if (n < 11 || strcmp(node + n - 11, ".dlock.test") != 0)
        return real(node, service, hints, res);
    if (strcmp(node, "two.dlock.test") == 0)
        return th_gai_chain(real, two, 2, service, res);
    if (strcmp(node, "slow.dlock.test") != 0)
        return EAI_NONAME;
    const char *d = getenv("DLOCK_FAKE_DNS_DELAY_MS");
    long ms = d != NULL ? atol(d) : 0;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return th_gai_chain(real, slow, 1, service, res);
}
