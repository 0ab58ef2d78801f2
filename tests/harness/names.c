/* names.c - made-up host names for tests that interpose getaddrinfo
 * (harness.h, "host names"). */
#include "harness.h"

#include <netdb.h>
#include <stddef.h>

int th_gai_chain(th_gai_fn real, const char *const *ips, int n, const char *service,
                 struct addrinfo **res) {
    struct addrinfo h = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo **tail = res;
    *res = NULL;
    for (int i = 0; i < n; i++) {
        int rc = real(ips[i], service, &h, tail);
        if (rc != 0) {
            if (*res != NULL)
                freeaddrinfo(*res);
            *res = NULL;
            return rc;
        }
        while (*tail != NULL)
            tail = &(*tail)->ai_next;
    }
    return 0;
}
