/* test_doctor.c - `dlock doctor` over TLS (a real dlock process):
 *   - a verified session: every check runs over TLS, and a "tls" finding
 *     names the protocol and says the certificate was verified (ok);
 *   - a certificate that expires in 5 days: a warning;
 *   - tls_verify=off: a warning on stderr and a "tls" warning;
 *   - a CA the client does not trust: the server is unreachable (exit 69)
 *     with the verification error, and the password in no output;
 *   - dlock status over TLS with tls_verify=off prints the warning too.
 *
 *   tls_doctor PATH_TO_DLOCK
 */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "tls_env.h"

#define PW "D0ctor-tls-pw-51"

/* The JSON line of the "tls" check in out, parsed into o. */
static void tls_finding(const char *out, jobj *o) {
    const char *p = strstr(out, "\"check\":\"tls\"");
    TH_CHECK(p != NULL);
    while (p > out && p[-1] != '\n')
        p--;
    jparse(p, o);
}

int main(int argc, char **argv) {
    TH_CHECK(argc == 2);
    cli_test_init(argv[1], 60);
    te_init();
    const char *aof[] = {"--appendonly", "yes", NULL};
    int port, sport;
    th_server *s = te_server("server", aof, &port);
    th_server *soon = te_server("soon", aof, &sport);
    g_srv = s;
    char url[900];
    result r;
    jobj o;

    dl(&r, "doctor", te_url(url, sizeof url, port, NULL), NULL);
    printf("%s", r.out);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.out, "TLSv1.3");
    EXPECT_IN(r.out, "verified (chain and host name)");
    EXPECT_IN(r.out, "noeviction");
    dl(&r, "doctor", "--json", url, NULL);
    EXPECT_CODE(&r, 0);
    tls_finding(r.out, &o);
    TH_EQ_STR(jget(&o, "severity", 's')->s, "ok");

    dl(&r, "doctor", "--json", te_url(url, sizeof url, sport, NULL), NULL);
    EXPECT_CODE(&r, 1);
    tls_finding(r.out, &o);
    TH_EQ_STR(jget(&o, "severity", 's')->s, "warn");
    EXPECT_IN(jget(&o, "message", 's')->s, "expires in");

    snprintf(url, sizeof url, "rediss://127.0.0.1:%d?tls_verify=off", port);
    dl(&r, "doctor", "--json", url, NULL);
    EXPECT_CODE(&r, 1);
    EXPECT_IN(r.err, "warning: tls_verify=off");
    tls_finding(r.out, &o);
    TH_EQ_STR(jget(&o, "severity", 's')->s, "warn");
    dl(&r, "--url", url, "status", "doctor-x", NULL);
    EXPECT_CODE(&r, 0);
    EXPECT_IN(r.err, "warning: tls_verify=off");

    snprintf(url, sizeof url, "rediss://u:" PW "@127.0.0.1:%d?tls_ca=%s", port,
             te_file("other-ca.crt"));
    dl(&r, "doctor", url, NULL);
    printf("%s", r.out);
    EXPECT_CODE(&r, 69);
    EXPECT_IN(r.out, "verification failed");
    TH_CHECK(strstr(r.out, PW) == NULL && strstr(r.err, PW) == NULL);

    th_server_free(soon);
    th_server_free(s);
    printf("tls_doctor: 1 passed, 0 failed\n");
    return 0;
}
