/* test_auth_echo.c - issue 10: a reply to AUTH is never quoted in the
 * detail string. A server whose AUTH is renamed answers "ERR unknown command
 * 'AUTH', with args beginning with: 'u' 'S3cret...'": the password must not
 * reach dlock_client_errstr. */
#include <stdio.h>
#include <string.h>

#include "dlock.h"
#include "harness.h"

#define SECRET "S3cret-echo-51a7"

int main(void) {
    th_test_init(30);
    const char *args[] = {"--rename-command", "AUTH", "AUTH-renamed", NULL};
    th_server *s = th_server_start(args);
    TH_CHECK(s != NULL);
    char url[200];
    snprintf(url, sizeof url, "redis://u:" SECRET "@127.0.0.1:%d", th_server_port(s));
    dlock_client *c = NULL;
    TH_EQ_INT(dlock_client_new(&c, url, NULL), DLOCK_OK);
    int rc = dlock_client_ping(c);
    const char *err = dlock_client_errstr(c);
    printf("ping -> %s: %s\n", dlock_err_name(rc), err);
    TH_CHECK(rc != DLOCK_OK);
    if (strstr(err, SECRET) != NULL)
        TH_FAIL("the password appears in the detail string: %s", err);
    TH_CHECK(strstr(err, "AUTH") != NULL); /* it still says what failed */
    dlock_client_free(c);
    th_server_free(s);
    return 0;
}
