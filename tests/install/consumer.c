/* consumer.c - a program built against an installed libdlock, as a user
 * builds one (tests/install/consumers.sh): shared or static, through
 * pkg-config or CMake. It defines functions named like the library's
 * internal ones: a static link must not clash with them (libdlock.a
 * exports only dlock_*), and the library must not call them. */
#include <stdio.h>
#include <string.h>

#include <dlock.h>

int dl_begin(void);
int dl_url_parse(void);
int dl_begin(void) { return 42; }
int dl_url_parse(void) { return 43; }

int main(void) {
    if (dlock_version_number() != DLOCK_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header %d, library %d\n", DLOCK_VERSION_NUMBER,
                dlock_version_number());
        return 1;
    }
    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = 100;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, "nosuch://x", &o);
    if (rc != DLOCK_EINVAL || c == NULL || strstr(dlock_client_errstr(c), "nosuch") == NULL) {
        fprintf(stderr, "consumer: bad URL gave %s: %s\n", dlock_err_name(rc),
                c ? dlock_client_errstr(c) : "");
        return 1;
    }
    dlock_client_free(c);
    if (dl_begin() != 42 || dl_url_parse() != 43)
        return 1;
    printf("consumer: libdlock %s ok\n", dlock_version());
    return 0;
}
