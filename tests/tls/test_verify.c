/* test_verify.c - the server's certificate is checked, and failures say why:
 *   - a CA the client does not trust (tls_ca of another CA, or none: the
 *     system store) -> a verification error naming tls_ca;
 *   - a certificate for another host: IP address mismatch (127.0.0.1 not in
 *     it) and host name mismatch (tls_server_name not in it); a certificate
 *     that names only "localhost" works with tls_server_name=localhost,
 *     and with a URL that names the host localhost (looked up, checked by
 *     name); a made-up name whose first address refuses: the next one's
 *     connection is checked against tls_server_name (getaddrinfo is
 *     interposed: "two.dlock.test" is 127.0.0.2, then 127.0.0.1);
 *     IPv6: [::1] checked against the certificate's IP entries;
 *   - an expired certificate;
 *   - SNI: openssl s_server presents a second certificate to clients that
 *     send the name sni.example; only that one names sni.example, so the
 *     handshake succeeds only if the name was sent;
 *   - tls_verify=off connects to the expired certificate, and says so loudly
 *     (a DLOCK_EV_WARNING event from dlock_client_new);
 *   - mutual TLS: no client certificate -> refused with a hint, and EIO (the
 *     server read no request: not an unknown outcome), no key written; our
 *     client certificate works; one from another CA is refused;
 *   - files that cannot be loaded fail dlock_client_new with EINVAL;
 *   - no detail string carries the URL's password.
 * Every failure must come well within the connect timeout (no hang). */
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "tls_env.h"

#define SECRET "pw-verify-7e31"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    static const char *const two[] = {"127.0.0.2", "127.0.0.1"};
    th_gai_fn real = (th_gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    if (node != NULL && strcmp(node, "two.dlock.test") == 0)
        return th_gai_chain(real, two, 2, service, res);
    return real(node, service, hints, res);
}

/* ping url; expect want; the detail must contain each of the words, not the
 * password, and the failure must come fast. */
static void expect_ping(const char *what, const char *url, int want, const char *w1,
                        const char *w2) {
    dlock_client *c = te_client(url, 2000, 2000);
    long long t0 = th_now_us();
    int rc = dlock_client_ping(c);
    long long ms = (th_now_us() - t0) / 1000;
    printf("%-28s -> %s in %lld ms: %s\n", what, dlock_err_name(rc), ms, dlock_client_errstr(c));
    IT_RC(c, rc, want);
    if (w1 != NULL)
        TE_IN(dlock_client_errstr(c), w1);
    if (w2 != NULL)
        TE_IN(dlock_client_errstr(c), w2);
    TH_CHECK(strstr(dlock_client_errstr(c), SECRET) == NULL);
    TH_CHECK(ms < 1500);
    dlock_client_free(c);
}

static void wrong_ca_and_names(void) {
    int port, wport, lport;
    th_server *s = te_server("server", NULL, &port);
    th_server *w = te_server("wronghost", NULL, &wport);
    th_server *lh = te_server("localhost", NULL, &lport);
    char url[900];
    snprintf(url, sizeof url, "rediss://u:" SECRET "@127.0.0.1:%d?tls_ca=%s", port,
             te_file("other-ca.crt"));
    expect_ping("wrong CA", url, DLOCK_EIO, "verification failed", "tls_ca=");
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", port);
    expect_ping("system CA store", url, DLOCK_EIO, "verification failed", "tls_ca=");
    expect_ping("IP mismatch", te_url(url, sizeof url, wport, NULL), DLOCK_EIO,
                "IP address mismatch", "tls_server_name=");
    expect_ping("host name mismatch",
                te_url(url, sizeof url, port, "tls_server_name=wrong.example"), DLOCK_EIO,
                "hostname mismatch", NULL);
    expect_ping("certificate without our IP", te_url(url, sizeof url, lport, NULL), DLOCK_EIO,
                "IP address mismatch", NULL);
    expect_ping("tls_server_name=localhost", te_url(url, sizeof url, lport,
                                                    "tls_server_name=localhost"),
                DLOCK_OK, NULL, NULL);
    expect_ping("tls_server_name=wrong.example",
                te_url(url, sizeof url, wport, "tls_server_name=wrong.example"), DLOCK_OK, NULL,
                NULL);
    /* A host name in the URL: looked up (resolve.c), and the certificate
     * checked against the name, not the address found. */
    snprintf(url, sizeof url, "rediss://localhost:%d?tls_ca=%s", lport, te_file("ca.crt"));
    expect_ping("rediss://localhost", url, DLOCK_OK, NULL, NULL);
    snprintf(url, sizeof url, "rediss://localhost:%d?tls_ca=%s", wport, te_file("ca.crt"));
    expect_ping("rediss://localhost, a certificate for another name", url, DLOCK_EIO,
                "hostname mismatch", NULL);
    snprintf(url, sizeof url, "rediss://two.dlock.test:%d?tls_ca=%s&tls_server_name=localhost",
             lport, te_file("ca.crt"));
    expect_ping("the second address of a name", url, DLOCK_OK, NULL, NULL);
    snprintf(url, sizeof url, "rediss://two.dlock.test:%d?tls_ca=%s", lport, te_file("ca.crt"));
    expect_ping("… checked against that name", url, DLOCK_EIO, "hostname mismatch", NULL);
    th_server_free(s);
    th_server_free(w);
    th_server_free(lh);
}

/* IPv6: the certificate's IP entry ::1 is checked like 127.0.0.1 (no SNI:
 * an IP literal). Skipped where ::1 is not configured. */
static void ipv6(void) {
    FILE *f = fopen("/proc/net/if_inet6", "r");
    char line[128];
    int have = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        have |= strncmp(line, "00000000000000000000000000000001", 32) == 0;
    if (f != NULL)
        fclose(f);
    if (!have) {
        printf("IPv6: ::1 not configured, skipped\n");
        return;
    }
    const char *both[] = {"--bind", "127.0.0.1 ::1", NULL};
    int port, lport;
    th_server *s = te_server("server", both, &port);
    th_server *lh = te_server("localhost", both, &lport);
    char url[900];
    snprintf(url, sizeof url, "rediss://[::1]:%d?tls_ca=%s", port, te_file("ca.crt"));
    expect_ping("IPv6 [::1], IP in certificate", url, DLOCK_OK, NULL, NULL);
    snprintf(url, sizeof url, "rediss://[::1]:%d?tls_ca=%s", lport, te_file("ca.crt"));
    expect_ping("IPv6 [::1], not in certificate", url, DLOCK_EIO, "IP address mismatch", NULL);
    th_server_free(s);
    th_server_free(lh);
}

static int g_warnings;
static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->type == DLOCK_EV_WARNING && ev->message != NULL &&
        strstr(ev->message, "tls_verify=off") != NULL)
        g_warnings++;
}

static void expired(void) {
    int port;
    th_server *s = te_server("expired", NULL, &port);
    char url[900];
    expect_ping("expired certificate", te_url(url, sizeof url, port, NULL), DLOCK_EIO,
                "certificate has expired", NULL);
    /* tls_verify=off: it connects, and says so. */
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d?tls_verify=off", port);
    dlock_options o;
    dlock_options_init(&o);
    o.on_event = on_event;
    dlock_client *c = NULL;
    TH_EQ_INT(dlock_client_new(&c, url, &o), DLOCK_OK);
    TH_EQ_INT(g_warnings, 1);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    dlock_client_free(c);
    printf("tls_verify=off: connected to the expired certificate, 1 warning event\n");
    th_server_free(s);
}

/* ---- SNI: openssl s_server picks its certificate by the name sent ---- */

static int g_sni_port;
static int run_s_server(void *arg) {
    (void)arg;
    char accept[32];
    snprintf(accept, sizeof accept, "127.0.0.1:%d", g_sni_port);
    int fd = open(te_file("s_server.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int nul = open("/dev/null", O_RDONLY);
    if (fd < 0 || nul < 0)
        return 126;
    dup2(nul, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept, "-cert",
           te_file("server.crt"), "-key", te_file("server.key"), "-servername", "sni.example",
           "-cert2", te_file("sni.crt"), "-key2", te_file("sni.key"), (char *)NULL);
    return 127;
}

static int accepting(int port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sni(void) {
    g_sni_port = th_free_port(0);
    pid_t pid = th_spawn(run_s_server, NULL);
    TH_CHECK(pid > 0);
    long long end = th_now_us() + 5000000;
    while (!accepting(g_sni_port)) {
        if (th_now_us() > end)
            TH_FAIL("openssl s_server did not start (log %s)", te_file("s_server.log"));
        th_sleep_ms(20);
    }
    char url[900];
    /* s_server answers no Redis command: a failure after the handshake
     * ("read from ...") shows the handshake, and so the name, passed. */
    expect_ping("SNI sni.example", te_url(url, sizeof url, g_sni_port,
                                          "tls_server_name=sni.example"),
                DLOCK_EIO, "read from", NULL);
    expect_ping("SNI other.example", te_url(url, sizeof url, g_sni_port,
                                            "tls_server_name=other.example"),
                DLOCK_EIO, "hostname mismatch", NULL);
    kill(pid, SIGKILL);
    th_wait(pid, -1);
}

/* ---- mutual TLS ---- */

static void mutual(void) {
    const char *need_cert[] = {"--tls-auth-clients", "yes", NULL};
    int port;
    th_server *s = te_server("server", need_cert, &port);
    char url[1400], q[900];
    snprintf(url, sizeof url, "rediss://u:" SECRET "@127.0.0.1:%d?tls_ca=%s", port,
             te_file("ca.crt"));
    dlock_client *c = te_client(url, 2000, 2000);
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "mtls", 10000, &l);
    printf("%-28s -> %s: %s\n", "no client certificate", dlock_err_name(rc),
           dlock_client_errstr(c));
    IT_RC(c, rc, DLOCK_EIO); /* not EUNKNOWN: the server read nothing */
    TE_IN(dlock_client_errstr(c), "certificate required");
    TE_IN(dlock_client_errstr(c), "tls_cert=");
    TH_CHECK(strstr(dlock_client_errstr(c), SECRET) == NULL);
    TH_EQ_INT(th_server_int(s, "EXISTS dlock:{mtls}"), 0);
    dlock_client_free(c);

    snprintf(q, sizeof q, "tls_cert=%s&tls_key=%s", te_file("client.crt"), te_file("client.key"));
    c = te_client(te_url(url, sizeof url, port, q), 2000, 2000);
    IT_RC(c, dlock_try_acquire(c, "mtls", 10000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    printf("%-28s -> DLOCK_OK\n", "our client certificate");

    snprintf(q, sizeof q, "tls_cert=%s&tls_key=%s", te_file("rogue-client.crt"),
             te_file("rogue-client.key"));
    expect_ping("client cert of another CA", te_url(url, sizeof url, port, q), DLOCK_EIO,
                "refused the session", "does not accept our client certificate");
    th_server_free(s);
}

static void bad_files(void) {
    char url[1400], q[900];
    struct {
        const char *what, *query, *word;
    } cases[] = {
        {"missing tls_ca", "tls_ca=/nonexistent/ca.pem", "tls_ca /nonexistent/ca.pem"},
        {"tls_ca not PEM", NULL, "tls_ca"},
        {"missing tls_ca_dir", "tls_ca_dir=/nonexistent", "tls_ca_dir /nonexistent"},
        {"key of another cert", NULL, "does not match"},
        {"missing tls_key", NULL, "tls_key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *query = cases[i].query;
        if (i == 1)
            snprintf(q, sizeof q, "tls_ca=%s", te_file("mkcerts.log"));
        else if (i == 3)
            snprintf(q, sizeof q, "tls_cert=%s&tls_key=%s", te_file("client.crt"),
                     te_file("server.key"));
        else if (i == 4)
            snprintf(q, sizeof q, "tls_cert=%s&tls_key=/nonexistent.key", te_file("client.crt"));
        if (query == NULL)
            query = q;
        snprintf(url, sizeof url, "rediss://u:" SECRET "@127.0.0.1:1?%s", query);
        dlock_client *c = NULL;
        int rc = dlock_client_new(&c, url, NULL);
        printf("%-28s -> %s: %s\n", cases[i].what, dlock_err_name(rc), dlock_client_errstr(c));
        TH_EQ_INT(rc, DLOCK_EINVAL);
        TE_IN(dlock_client_errstr(c), cases[i].word);
        TH_CHECK(strstr(dlock_client_errstr(c), SECRET) == NULL);
        dlock_client_free(c);
    }
}

int main(void) {
    th_test_init(80);
    te_init();
    wrong_ca_and_names();
    ipv6();
    expired();
    sni();
    mutual();
    bad_files();
    printf("tls_verify: 1 passed, 0 failed\n");
    return 0;
}
