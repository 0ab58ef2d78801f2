/* test_url.c - dl_url_parse and dl_url_redact: every accepted form, every
 * rejection (with the key word of its message), redaction. No server. */
#include "url.h"

#include <limits.h>

#include "unit.h"

static dl_url u;
static char err[256];

/* Parse s, which must succeed. */
#define OK(s) parse_ok(__FILE__, __LINE__, (s))
static dl_url *parse_ok(const char *file, int line, const char *s)
{
    err[0] = '\0';
    if (dl_url_parse(s, &u, err, sizeof err) != 0)
        UNIT_FAIL_(file, line, "parse \"%s\" failed: %s", s, err);
    CHECK_AT(file, line, err[0] == '\0');
    return &u;
}

/* Parse s, which must fail with a one-line message containing `word` and
 * not containing `secret` (when given). */
#define BAD(s, word) parse_bad(__FILE__, __LINE__, (s), (word), NULL)
#define BAD_SECRET(s, word, secret) parse_bad(__FILE__, __LINE__, (s), (word), (secret))
static void parse_bad(const char *file, int line, const char *s, const char *word,
                      const char *secret)
{
    memset(err, 'x', sizeof err);
    if (dl_url_parse(s, &u, err, sizeof err) == 0)
        UNIT_FAIL_(file, line, "parse \"%s\" succeeded, expected an error with \"%s\"",
                   s ? s : "(null)", word);
    CHECK_AT(file, line, memchr(err, '\0', sizeof err) != NULL);
    CHECK_CONTAINS_AT(file, line, err, word);
    CHECK_AT(file, line, strchr(err, '\n') == NULL);
    if (secret != NULL && strstr(err, secret) != NULL)
        UNIT_FAIL_(file, line, "error for \"%s\" leaks the password: %s", s, err);
    /* On failure the struct is left empty: no half-parsed password. */
    CHECK_INT_AT(file, line, u.nhosts, 0);
    CHECK_AT(file, line, u.password[0] == '\0' && u.has_password == 0);
    CHECK_AT(file, line, u.user[0] == '\0');
}

static const char *redact(const char *s)
{
    static char buf[512];
    dl_url_redact(s, buf, sizeof buf);
    return buf;
}

static void test_single(void)
{
    dl_url *p = OK("redis://localhost");
    CHECK_INT(p->kind, DL_URL_SINGLE);
    CHECK_INT(p->nhosts, 1);
    CHECK_STR(p->hosts[0].host, "localhost");
    CHECK_INT(p->hosts[0].port, 6379);
    CHECK_INT(p->tls, 0);
    CHECK_INT(p->unix_socket, 0);
    CHECK_STR(p->path, "");
    CHECK_STR(p->user, "");
    CHECK_STR(p->password, "");
    CHECK_INT(p->has_password, 0);
    CHECK_INT(p->db, 0);
    CHECK_STR(p->master_name, "");
    CHECK_INT(p->connect_timeout_ms, -1);
    CHECK_INT(p->command_timeout_ms, -1);
    CHECK_INT(p->replicas, -1);
    CHECK_INT(p->replica_timeout_ms, -1);
    CHECK_INT(p->has_prefix, 0);
    CHECK_STR(p->prefix, "");

    p = OK("redis://127.0.0.1:6380");
    CHECK_STR(p->hosts[0].host, "127.0.0.1");
    CHECK_INT(p->hosts[0].port, 6380);

    p = OK("redis://h:6379/3");
    CHECK_INT(p->db, 3);
    p = OK("redis://h/");
    CHECK_INT(p->db, 0);
    p = OK("redis://h/0");
    CHECK_INT(p->db, 0);
    p = OK("redis://h:1/2147483647");
    CHECK_INT(p->hosts[0].port, 1);
    CHECK_INT(p->db, INT_MAX);
    p = OK("redis://h:65535");
    CHECK_INT(p->hosts[0].port, 65535);
    p = OK("redis://h:06379");
    CHECK_INT(p->hosts[0].port, 6379);

    p = OK("REDIS://Cache-01.Example.COM");
    CHECK_STR(p->hosts[0].host, "Cache-01.Example.COM");
    p = OK("redis://my_host-1.example.com.");
    CHECK_STR(p->hosts[0].host, "my_host-1.example.com.");

    p = OK("rediss://secure.example.com:6390");
    CHECK_INT(p->tls, 1);
    CHECK_INT(p->kind, DL_URL_SINGLE);
    CHECK_INT(p->hosts[0].port, 6390);

    p = OK("redis://h/?timeout=5");
    CHECK_INT(p->db, 0);
    CHECK_INT(p->command_timeout_ms, 5);
    p = OK("redis://h/7?timeout=5");
    CHECK_INT(p->db, 7);
}

static void test_userinfo(void)
{
    dl_url *p = OK("redis://user:pass@h");
    CHECK_STR(p->user, "user");
    CHECK_STR(p->password, "pass");
    CHECK_INT(p->has_password, 1);
    CHECK_STR(p->hosts[0].host, "h");

    p = OK("redis://:pass@h:7000");
    CHECK_STR(p->user, "");
    CHECK_STR(p->password, "pass");
    CHECK_INT(p->has_password, 1);
    CHECK_INT(p->hosts[0].port, 7000);

    p = OK("redis://user@h");
    CHECK_STR(p->user, "user");
    CHECK_INT(p->has_password, 0);

    p = OK("redis://user:@h");
    CHECK_STR(p->password, "");
    CHECK_INT(p->has_password, 1);

    p = OK("redis://@h");
    CHECK_STR(p->user, "");
    CHECK_INT(p->has_password, 0);

    /* Percent-decoding of user and password. */
    p = OK("redis://us%65r:p%40ss%3Aw%2Fd%3f%25%20x@h");
    CHECK_STR(p->user, "user");
    CHECK_STR(p->password, "p@ss:w/d?% x");
    p = OK("redis://%41%62:%e2%82%AC@h");
    CHECK_STR(p->user, "Ab");
    CHECK_STR(p->password, "\xe2\x82\xac");

    /* Raw '@' and ':' in the password: the userinfo ends at the last '@',
     * the user name at the first ':'. */
    p = OK("redis://u:p@ss:w@h:6380");
    CHECK_STR(p->user, "u");
    CHECK_STR(p->password, "p@ss:w");
    CHECK_STR(p->hosts[0].host, "h");
    CHECK_INT(p->hosts[0].port, 6380);
    p = OK("redis://u:a#b!$&'()*+,;=@h");
    CHECK_STR(p->password, "a#b!$&'()*+,;=");
    p = OK("redis://u:\xc3\xa9t\xc3\xa9@h");
    CHECK_STR(p->password, "\xc3\xa9t\xc3\xa9");

    /* Length limits: user 127 bytes, password 255 bytes (decoded). */
    char s[1024], longs[300];
    memset(longs, 'a', 127);
    longs[127] = '\0';
    snprintf(s, sizeof s, "redis://%s:pw@h", longs);
    p = OK(s);
    CHECK_INT(strlen(p->user), 127);
    memset(longs, 'b', 255);
    longs[255] = '\0';
    snprintf(s, sizeof s, "redis://u:%s@h", longs);
    p = OK(s);
    CHECK_INT(strlen(p->password), 255);
    /* 255 decoded bytes written as %XX. */
    s[0] = '\0';
    strcat(s, "redis://u:");
    for (int i = 0; i < 255; i++)
        strcat(s, "%41");
    strcat(s, "@h");
    p = OK(s);
    CHECK_INT(strlen(p->password), 255);
}

static void test_redlock(void)
{
    dl_url *p = OK("redis://h1:6379,h2:6380,h3");
    CHECK_INT(p->kind, DL_URL_REDLOCK);
    CHECK_INT(p->nhosts, 3);
    CHECK_STR(p->hosts[0].host, "h1");
    CHECK_INT(p->hosts[0].port, 6379);
    CHECK_STR(p->hosts[1].host, "h2");
    CHECK_INT(p->hosts[1].port, 6380);
    CHECK_STR(p->hosts[2].host, "h3");
    CHECK_INT(p->hosts[2].port, 6379);

    p = OK("redis://:pw@10.0.0.1:7000,10.0.0.2:7000,[::1]:7000/2?timeout=100");
    CHECK_INT(p->kind, DL_URL_REDLOCK);
    CHECK_INT(p->nhosts, 3);
    CHECK_STR(p->hosts[2].host, "::1");
    CHECK_INT(p->db, 2);
    CHECK_STR(p->password, "pw");
    CHECK_INT(p->command_timeout_ms, 100);

    p = OK("rediss://a,b");
    CHECK_INT(p->kind, DL_URL_REDLOCK);
    CHECK_INT(p->tls, 1);

    /* Same name, different ports: distinct servers. */
    p = OK("redis://h:7000,h:7001,h:7002");
    CHECK_INT(p->nhosts, 3);

    /* Exactly DL_URL_MAX_HOSTS hosts. */
    char s[512] = "redis://";
    for (int i = 0; i < DL_URL_MAX_HOSTS; i++) {
        char h[32];
        snprintf(h, sizeof h, "%shost%d:%d", i ? "," : "", i, 7000 + i);
        strcat(s, h);
    }
    p = OK(s);
    CHECK_INT(p->nhosts, DL_URL_MAX_HOSTS);
    CHECK_STR(p->hosts[DL_URL_MAX_HOSTS - 1].host, "host15");
    CHECK_INT(p->hosts[DL_URL_MAX_HOSTS - 1].port, 7015);
    strcat(s, ",one-more");
    BAD(s, "too many hosts");
}

static void test_ipv6(void)
{
    dl_url *p = OK("redis://[::1]");
    CHECK_STR(p->hosts[0].host, "::1");
    CHECK_INT(p->hosts[0].port, 6379);
    p = OK("redis://[::1]:7000");
    CHECK_STR(p->hosts[0].host, "::1");
    CHECK_INT(p->hosts[0].port, 7000);
    p = OK("redis://[::]");
    CHECK_STR(p->hosts[0].host, "::");
    p = OK("redis://[2001:DB8:0:0:8:800:200C:417A]:6380");
    CHECK_STR(p->hosts[0].host, "2001:DB8:0:0:8:800:200C:417A");
    p = OK("redis://[2001:db8::1]:6379,[::ffff:10.0.0.1]");
    CHECK_STR(p->hosts[0].host, "2001:db8::1");
    CHECK_STR(p->hosts[1].host, "::ffff:10.0.0.1");
    CHECK_INT(p->hosts[1].port, 6379);
    p = OK("redis://[fe80::1%25eth0]:6379");
    CHECK_STR(p->hosts[0].host, "fe80::1%eth0");
    p = OK("redis://[fe80::1%eth0]");
    CHECK_STR(p->hosts[0].host, "fe80::1%eth0");
    p = OK("redis://[1::]");
    CHECK_STR(p->hosts[0].host, "1::");
    p = OK("redis-sentinel://[::1]/m");
    CHECK_INT(p->hosts[0].port, 26379);

    BAD("redis://[::1", "unterminated IPv6");
    BAD("redis://[::1:6379", "unterminated IPv6");
    BAD("redis://h1,[::1", "unterminated IPv6");
    BAD("redis://[::1]x", "after ']'");
    BAD("redis://[::1]:", "port");
    BAD("redis://[::1]:0", "port");
    BAD("redis://[]", "IPv6");
    BAD("redis://[localhost]", "IPv6");
    BAD("redis://[zz::1]", "IPv6");
    BAD("redis://[1:2:3:4:5:6:7:8:9]", "IPv6");
    BAD("redis://[1:2:3:4:5:6:7]", "IPv6");
    BAD("redis://[1::2::3]", "IPv6");
    BAD("redis://[12345::1]", "IPv6");
    BAD("redis://[:1]", "IPv6");
    BAD("redis://[1:]", "IPv6");
    BAD("redis://[::1.2.3.256]", "IPv6");
    BAD("redis://[::1%]", "IPv6");
    BAD("redis://[::1%25]", "IPv6");
    BAD("redis://[::1%e/0]", "IPv6");
    BAD("redis://::1", "brackets");
    BAD("redis://fe80::1:6379", "brackets");
    BAD("redis://[::1 ]", "whitespace");
}

static void test_unix(void)
{
    dl_url *p = OK("unix:///tmp/redis.sock");
    CHECK_INT(p->kind, DL_URL_SINGLE);
    CHECK_INT(p->unix_socket, 1);
    CHECK_STR(p->path, "/tmp/redis.sock");
    CHECK_INT(p->nhosts, 0);
    CHECK_INT(p->tls, 0);
    CHECK_INT(p->db, 0);

    p = OK("unix:///tmp/redis.sock?db=2&timeout=100&connect_timeout=50");
    CHECK_STR(p->path, "/tmp/redis.sock");
    CHECK_INT(p->db, 2);
    CHECK_INT(p->command_timeout_ms, 100);
    CHECK_INT(p->connect_timeout_ms, 50);

    p = OK("UNIX:///run/my%20redis/r%2Esock");
    CHECK_STR(p->path, "/run/my redis/r.sock");

    p = OK("unix://:secret@/tmp/r.sock");
    CHECK_STR(p->password, "secret");
    CHECK_INT(p->has_password, 1);
    CHECK_STR(p->path, "/tmp/r.sock");
    p = OK("unix://alice:secret@/tmp/r.sock?db=1");
    CHECK_STR(p->user, "alice");
    CHECK_INT(p->db, 1);

    /* sun_path is 108 bytes: a 107-byte path fits, 108 does not. */
    char s[300] = "unix://", path[200];
    path[0] = '/';
    memset(path + 1, 'p', 106);
    path[107] = '\0';
    strcat(s, path);
    p = OK(s);
    CHECK_INT(strlen(p->path), 107);
    strcat(s, "p");
    BAD(s, "too long");

    BAD("unix://", "empty unix socket path");
    BAD("unix:///", "empty unix socket path");
    BAD("unix:///?db=1", "empty unix socket path");
    BAD("unix://localhost/tmp/r.sock", "no host");
    BAD("unix://tmp/r.sock", "no host");
    BAD("unix://u:pw@host/tmp/r.sock", "no host");
    BAD("unix:///tmp/r%2.sock", "percent-encoding");
    BAD("unix:///tmp/r%00.sock", "NUL");
    BAD("unix:///tmp/my redis.sock", "whitespace");
    BAD("unix:///tmp/r.sock?db=x", "integer");
    BAD("unix:///tmp/r.sock?db=-1", "negative");
    BAD("unix:///tmp/r.sock?db=2147483648", "range");
    BAD("unix:///tmp/r.sock?db=1&db=2", "twice");
}

static void test_sentinel(void)
{
    dl_url *p = OK("redis-sentinel://s1,s2:26380/mymaster");
    CHECK_INT(p->kind, DL_URL_SENTINEL);
    CHECK_INT(p->nhosts, 2);
    CHECK_STR(p->hosts[0].host, "s1");
    CHECK_INT(p->hosts[0].port, 26379);
    CHECK_INT(p->hosts[1].port, 26380);
    CHECK_STR(p->master_name, "mymaster");
    CHECK_INT(p->tls, 0);

    p = OK("redis-sentinel://s1/mymaster");
    CHECK_INT(p->kind, DL_URL_SENTINEL);
    CHECK_INT(p->nhosts, 1);

    p = OK("redis-sentinel://u:pw@s1:5000/my%2Dmaster%2Fx?timeout=200");
    CHECK_STR(p->master_name, "my-master/x");
    CHECK_STR(p->password, "pw");
    CHECK_INT(p->command_timeout_ms, 200);

    BAD("redis-sentinel://s1", "master name");
    BAD("redis-sentinel://s1/", "master name");
    BAD("redis-sentinel://s1?timeout=5", "master name");
    BAD("redis-sentinel://s1/m/0", "master name");
    BAD("redis-sentinel://s1/m%20x", "master name");
    BAD("redis-sentinel://s1/m%zz", "percent-encoding");
    BAD("redis-sentinel:///m", "missing host");
    BAD("redis-sentinel://s1/m?db=1", "only for unix");
    char s[300] = "redis-sentinel://s1/";
    memset(s + strlen(s), 'm', 128);
    s[20 + 128] = '\0';
    BAD(s, "master name too long");
    s[20 + 127] = '\0';
    OK(s);
}

static void test_cluster(void)
{
    dl_url *p = OK("redis-cluster://c1:7000,c2:7001");
    CHECK_INT(p->kind, DL_URL_CLUSTER);
    CHECK_INT(p->nhosts, 2);
    CHECK_INT(p->hosts[0].port, 7000);
    p = OK("redis-cluster://c1");
    CHECK_INT(p->kind, DL_URL_CLUSTER);
    CHECK_INT(p->nhosts, 1);
    CHECK_INT(p->hosts[0].port, 6379);
    p = OK("redis-cluster://:pw@c1/?connect_timeout=100");
    CHECK_INT(p->connect_timeout_ms, 100);

    BAD("redis-cluster://c1/0", "path");
    BAD("redis-cluster://c1:7000/x/y", "path");
    BAD("redis-cluster://", "missing host");
}

static void test_options(void)
{
    dl_url *p = OK("redis://h?connect_timeout=250&timeout=1000&replicas=1&replica_timeout=50"
                   "&prefix=app%3Alocks%3A");
    CHECK_INT(p->connect_timeout_ms, 250);
    CHECK_INT(p->command_timeout_ms, 1000);
    CHECK_INT(p->replicas, 1);
    CHECK_INT(p->replica_timeout_ms, 50);
    CHECK_INT(p->has_prefix, 1);
    CHECK_STR(p->prefix, "app:locks:");

    p = OK("redis://h?prefix=");
    CHECK_INT(p->has_prefix, 1);
    CHECK_STR(p->prefix, "");
    p = OK("redis://h?prefix=a@b:{c}");
    CHECK_STR(p->prefix, "a@b:{c}");
    p = OK("redis://h?prefix=a+b");
    CHECK_STR(p->prefix, "a+b");
    p = OK("redis://h?");
    CHECK_INT(p->command_timeout_ms, -1);
    p = OK("redis://h?&&timeout=5&");
    CHECK_INT(p->command_timeout_ms, 5);
    p = OK("redis://h?timeout=3600000&replicas=0&connect_timeout=1");
    CHECK_INT(p->command_timeout_ms, 3600000);
    CHECK_INT(p->replicas, 0);
    CHECK_INT(p->connect_timeout_ms, 1);
    /* 0: WAIT as long as the call allows (dlock_options.replica_timeout_ms). */
    p = OK("redis://h?replica_timeout=0");
    CHECK_INT(p->replica_timeout_ms, 0);
    p = OK("redis://h?replicas=100&timeout=007");
    CHECK_INT(p->replicas, 100);
    CHECK_INT(p->command_timeout_ms, 7);

    BAD("redis://h?foo=1", "unknown option 'foo'");
    BAD("redis://h?timeout=5&Timeout=5", "unknown option 'Timeout'");
    BAD("redis://h?=5", "unknown option ''");
    BAD("redis://h?password=x", "unknown option 'password'");
    BAD("redis://h?timeout", "needs a value");
    BAD("redis://h?prefix", "needs a value");
    BAD("redis://h?timeout=", "integer");
    BAD("redis://h?timeout=abc", "integer");
    BAD("redis://h?timeout=1.5", "integer");
    BAD("redis://h?timeout=5s", "integer");
    BAD("redis://h?timeout=+5", "integer");
    BAD("redis://h?timeout= 5", "integer");
    BAD("redis://h?timeout=0x10", "integer");
    BAD("redis://h?timeout=-5", "negative");
    BAD("redis://h?connect_timeout=-1", "negative");
    BAD("redis://h?replicas=-1", "negative");
    BAD("redis://h?replica_timeout=-0", "negative");
    BAD("redis://h?timeout=0", "range");
    BAD("redis://h?timeout=3600001", "range");
    BAD("redis://h?connect_timeout=99999999999999999999", "range");
    BAD("redis://h?replica_timeout=3600001", "range");
    BAD("redis://h?replicas=101", "range");
    BAD("redis://h?timeout=1&timeout=2", "twice");
    BAD("redis://h?db=1", "only for unix");
    BAD("redis-cluster://h?db=0", "only for unix");
    BAD("redis://h?prefix=%4", "percent-encoding");
    BAD("redis://h?prefix=%00", "NUL");
    BAD("redis://h?prefix=a b", "whitespace");
    char s[300] = "redis://h?prefix=";
    memset(s + strlen(s), 'p', 128);
    s[17 + 128] = '\0';
    BAD(s, "too long");
    s[17 + 127] = '\0';
    CHECK_INT(strlen(OK(s)->prefix), 127);
}

static void test_sentinel_watch(void)
{
    CHECK_INT(OK("redis-sentinel://s1/m")->sentinel_watch, 1);
    CHECK_INT(OK("redis-sentinel://s1/m?sentinel_watch=off")->sentinel_watch, 0);
    CHECK_INT(OK("rediss-sentinel://s1/m?sentinel_watch=on")->sentinel_watch, 1);
    BAD("redis-sentinel://s1/m?sentinel_watch=no", "on or off");
    BAD("redis-sentinel://s1/m?sentinel_watch=off&sentinel_watch=on", "twice");
    BAD("redis://h?sentinel_watch=off", "only for redis-sentinel://");
    BAD("redis-cluster://h?sentinel_watch=off", "only for redis-sentinel://");
}

static void test_tls(void)
{
    dl_url *p = OK("rediss://h");
    CHECK_INT(p->tls, 1);
    CHECK_INT(p->tls_verify, 1);
    CHECK_STR(p->tls_ca, "");
    CHECK_INT(OK("redis://h")->tls_verify, 1);
    p = OK("rediss-sentinel://s1,s2/mymaster?tls_ca=/etc/ca.pem");
    CHECK_INT(p->kind, DL_URL_SENTINEL);
    CHECK_INT(p->tls, 1);
    CHECK_INT(p->hosts[0].port, 26379);
    CHECK_STR(p->master_name, "mymaster");
    CHECK_STR(p->tls_ca, "/etc/ca.pem");
    p = OK("REDISS-CLUSTER://c1:7000,c2:7001?tls_server_name=redis.example.com");
    CHECK_INT(p->kind, DL_URL_CLUSTER);
    CHECK_INT(p->tls, 1);
    CHECK_STR(p->tls_server_name, "redis.example.com");
    BAD("rediss-cluster://c1/0", "path");
    p = OK("rediss://:pw@h:6390/2?tls_ca=ca.pem&tls_ca_dir=/etc/ssl/certs&tls_cert=%2Ftmp%2Fc.pem"
           "&tls_key=k%20ey.pem&timeout=50");
    CHECK_STR(p->tls_ca, "ca.pem");
    CHECK_STR(p->tls_ca_dir, "/etc/ssl/certs");
    CHECK_STR(p->tls_cert, "/tmp/c.pem");
    CHECK_STR(p->tls_key, "k ey.pem");
    CHECK_INT(p->db, 2);
    CHECK_INT(p->command_timeout_ms, 50);
    p = OK("rediss://h?tls_verify=off");
    CHECK_INT(p->tls_verify, 0);
    CHECK_INT(OK("rediss://h?tls_verify=on")->tls_verify, 1);
    p = OK("rediss://h?tls_verify=off&tls_server_name=x");
    CHECK_STR(p->tls_server_name, "x");

    /* TLS options never silently go with a clear-text scheme. */
    BAD("redis://h?tls_ca=ca.pem", "needs TLS");
    BAD("redis://h?tls_verify=off", "needs TLS");
    BAD("redis-cluster://h?tls_server_name=x", "needs TLS");
    BAD("unix:///tmp/r.sock?tls_cert=c&tls_key=k", "needs TLS");
    BAD("redis://h?tls_verify=on", "needs TLS");
    BAD_SECRET("redis://u:s3cret@h?tls_ca=x", "rediss://", "s3cret");
    BAD("rediss://h?tls_cert=c.pem", "go together");
    BAD("rediss://h?tls_key=k.pem", "go together");
    BAD("rediss://h?tls_verify=off&tls_ca=ca.pem", "no use");
    BAD("rediss://h?tls_verify=off&tls_ca_dir=/d", "no use");
    BAD("rediss://h?tls_verify=no", "on or off");
    BAD("rediss://h?tls_verify=OFF", "on or off");
    BAD("rediss://h?tls_verify", "needs a value");
    BAD("rediss://h?tls_ca=", "needs a value");
    BAD("rediss://h?tls_ca=a&tls_ca=b", "twice");
    BAD("rediss://h?tls_ca=a%0Ab", "control character");
    BAD("rediss://h?tls_ca=a b", "whitespace");
    BAD("rediss://h?tls_ca=a%00", "NUL");
    BAD("rediss://h?tls_ca=a@b", "percent-encode");
    CHECK_STR(OK("rediss://h?tls_ca=a%40b")->tls_ca, "a@b");
    BAD("rediss://h?tls_cafile=x", "unknown option 'tls_cafile'");
    CHECK_CONTAINS(err, "tls_verify");
    char s[700] = "rediss://h?tls_ca=";
    size_t n0 = strlen(s);
    memset(s + n0, 'f', DL_URL_PATH_MAX);
    s[n0 + DL_URL_PATH_MAX] = '\0';
    BAD(s, "too long");
    s[n0 + DL_URL_PATH_MAX - 1] = '\0';
    CHECK_INT(strlen(OK(s)->tls_ca), DL_URL_PATH_MAX - 1);
}

static void test_rejections(void)
{
    BAD("", "empty URL");
    BAD(NULL, "empty URL");

    BAD("http://h", "unsupported scheme 'http'");
    CHECK_STR(err, "unsupported scheme 'http' (expected redis://, rediss://, unix://, "
                   "redis-sentinel://, rediss-sentinel://, redis-cluster:// or "
                   "rediss-cluster://)");
    BAD("rediss-unix://h", "unsupported scheme");
    BAD("redis+tls://h", "unsupported scheme");
    BAD("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa://h", "unsupported scheme");
    CHECK(strlen(err) < 200);
    BAD("localhost:6379", "missing scheme");
    BAD("127.0.0.1", "missing scheme");
    BAD("//h", "missing scheme");
    BAD("redis:/h", "malformed URL");
    BAD("redis:h:6379", "malformed URL");
    BAD("u:S3cr3tPw@h", "missing scheme"); /* no echo of anything */

    BAD("redis://", "missing host");
    BAD("redis://user:S3cr3tPw@", "missing host");
    BAD("redis://:6379", "missing host");
    BAD("redis:///0", "missing host");
    BAD("redis://?timeout=1", "missing host");
    BAD("redis://h1,:6380", "missing host");

    BAD("redis://h:0", "port");
    BAD("redis://h:65536", "out of range");
    BAD("redis://h:99999", "bad port '99999' in URL");
    BAD("redis://h:", "bad port ''");
    BAD("redis://h:abc", "bad port 'abc'");
    BAD("redis://h:-1", "port");
    BAD("redis://h:+1", "port");
    BAD("redis://h:6379x", "port");
    BAD("redis://h:99999999999999999999999", "port");
    BAD("redis://h1:6379,h2:70000", "port");
    BAD_SECRET("redis://u:S3cr3tPw@h:99999", "port", "S3cr3tPw");

    BAD("redis://h/abc", "bad db 'abc'");
    BAD("redis://h/-1", "bad db");
    BAD("redis://h/1/2", "bad db");
    BAD("redis://h/2147483648", "bad db");
    BAD("redis://h/0x1", "bad db");
    BAD("redis://h/%31", "bad db");

    BAD("redis://h1,,h2", "empty host");
    BAD("redis://h1,", "empty host");
    BAD("redis://,h1", "empty host");
    BAD("redis://h1,H1:6379", "duplicate host");
    BAD("redis://h1:7000,h2,h1:7000", "duplicate host");
    BAD("redis://[::1],[::1]:6379", "duplicate host");

    /* Host characters and length. */
    BAD("redis://ho st", "whitespace or control character in host");
    BAD("redis:// h", "whitespace or control character in host");
    BAD("redis://h\t:6379", "whitespace or control character in host");
    BAD("redis://h\x01", "whitespace or control character in host");
    BAD("redis://h\x7f", "whitespace or control character in host");
    BAD("redis://h\r\n", "whitespace or control character in host");
    BAD("redis://h!x", "invalid character '!'");
    BAD("redis://h%41", "invalid character '%'");
    BAD("redis://h#x", "invalid character '#'");
    BAD("redis://a]b", "invalid character ']'");
    BAD("redis://a[b", "invalid character '['");
    BAD("redis://h\xc3\xa9", "non-ASCII");
    char s[600] = "redis://";
    memset(s + 8, 'h', 255);
    s[8 + 255] = '\0';
    CHECK_INT(strlen(OK(s)->hosts[0].host), 255);
    strcat(s, "h:6379");
    BAD(s, "host too long");
    CHECK(strlen(err) < 120); /* does not quote the whole host */

    /* Bad percent-encoding and limits in user info: never quoted. */
    BAD_SECRET("redis://us%4:S3cr3tPw@h", "percent-encoding in user name", "S3cr3tPw");
    BAD_SECRET("redis://u:S3cr3tPw%zz@h", "percent-encoding in password", "S3cr3tPw");
    BAD_SECRET("redis://u:S3cr3tPw%G1@h", "percent-encoding in password", "S3cr3tPw");
    BAD_SECRET("redis://u:S3cr3tPw%@h", "percent-encoding in password", "S3cr3tPw");
    BAD_SECRET("redis://u:S3cr3tPw%00@h", "NUL", "S3cr3tPw");
    BAD_SECRET("redis://u:S3cr3t Pw@h", "whitespace or control character in password",
               "S3cr3t");
    BAD_SECRET("redis://u:S3cr3tPw\x01@h", "password", "S3cr3tPw");
    BAD_SECRET("redis://us er:S3cr3tPw@h", "user name", "S3cr3tPw");
    char big[600] = "redis://u:S3cr3tPw";
    memset(big + strlen(big), 'x', 300);
    strcpy(big + 18 + 300, "@h");
    BAD_SECRET(big, "password too long", "S3cr3tPw");
    strcpy(big, "redis://");
    memset(big + 8, 'u', 128);
    strcpy(big + 8 + 128, ":S3cr3tPw@h");
    BAD_SECRET(big, "user name too long", "S3cr3tPw");

    /* A raw '/' or '?' in a password ends the authority early; the parser
     * refuses the stray '@' before quoting any host or port. */
    BAD_SECRET("redis://u:S3cr/3tPw@h", "percent-encode", "3tPw");
    BAD_SECRET("redis://u:S3cr/3tPw@h", "percent-encode", "S3cr");
    BAD_SECRET("redis://u:S3cr?3tPw@h", "percent-encode", "S3cr");
    BAD_SECRET("redis://u:S3cr?x=3tPw@h", "percent-encode", "S3cr");
    BAD_SECRET("redis://u:S3cr:1/3tPw@h", "percent-encode", "S3cr");
    BAD_SECRET("redis-sentinel://u:S3cr/3tPw@h/m", "percent-encode", "S3cr");
    BAD_SECRET("unix://u:S3cr/3tPw@/tmp/s", "percent-encode", "S3cr");
    BAD("redis://h/1@2", "percent-encode");
    BAD("redis://h?timeout=1@2", "percent-encode");
    BAD("http://u:S3cr3tPw@h", "unsupported scheme 'http'");
    CHECK(strstr(err, "S3cr3tPw") == NULL);
}

static void test_err_buffer(void)
{
    char small[8];
    dl_url v;

    /* Truncated but terminated. */
    memset(small, 'x', sizeof small);
    CHECK_INT(dl_url_parse("http://h", &v, small, sizeof small), -1);
    CHECK_STR(small, "unsuppo");
    memset(small, 'x', sizeof small);
    CHECK_INT(dl_url_parse("http://h", &v, small, 1), -1);
    CHECK_INT(small[0], '\0');
    CHECK_INT(small[1], 'x');
    /* errlen 0 and err NULL: nothing written, still fails. */
    memset(small, 'x', sizeof small);
    CHECK_INT(dl_url_parse("http://h", &v, small, 0), -1);
    CHECK_INT(small[0], 'x');
    CHECK_INT(dl_url_parse("http://h", &v, NULL, 100), -1);
    CHECK_INT(dl_url_parse("redis://h", &v, NULL, 0), 0);
    /* Success clears a previous message. */
    strcpy(small, "old");
    CHECK_INT(dl_url_parse("redis://h", &v, small, sizeof small), 0);
    CHECK_STR(small, "");
    /* No output struct. */
    CHECK_INT(dl_url_parse("redis://h", NULL, err, sizeof err), -1);
    CHECK(err[0] != '\0');

    /* A failed parse wipes what an earlier parse left in the struct. */
    CHECK_INT(dl_url_parse("redis://u:pw@h?prefix=x", &v, err, sizeof err), 0);
    CHECK_STR(v.password, "pw");
    CHECK_INT(dl_url_parse("redis://u:pw2@h:0", &v, err, sizeof err), -1);
    CHECK_STR(v.password, "");
    CHECK_INT(v.has_password, 0);
    CHECK_INT(v.nhosts, 0);
    CHECK_INT(v.has_prefix, 0);
    CHECK_INT(v.command_timeout_ms, -1);
}

static void test_redact(void)
{
    CHECK_STR(redact("redis://user:secret@h:6379/0"), "redis://user:***@h:6379/0");
    CHECK_STR(redact("redis://:secret@h"), "redis://:***@h");
    CHECK_STR(redact("redis://user:@h"), "redis://user:***@h");
    CHECK_STR(redact("redis://user@h"), "redis://user@h");
    CHECK_STR(redact("redis://h:6379"), "redis://h:6379");
    CHECK_STR(redact("redis://@h"), "redis://@h");
    CHECK_STR(redact("redis://u:p@ss:w@h"), "redis://u:***@h");
    CHECK_STR(redact("redis://u:p%40ss@h1,h2/3?timeout=5"), "redis://u:***@h1,h2/3?timeout=5");
    CHECK_STR(redact("rediss://u:pw@[::1]:6380"), "rediss://u:***@[::1]:6380");
    CHECK_STR(redact("redis-sentinel://u:pw@s1,s2/m?prefix=a:b@c"),
              "redis-sentinel://u:***@s1,s2/m?prefix=a:b@c");
    CHECK_STR(redact("redis://h?prefix=a:b@c"), "redis://h?prefix=a:b@c");
    CHECK_STR(redact("unix://:pw@/tmp/s.sock?db=1"), "unix://:***@/tmp/s.sock?db=1");
    CHECK_STR(redact("unix:///tmp/s.sock"), "unix:///tmp/s.sock");
    CHECK_STR(redact("http://u:pw@h"), "http://u:***@h");
    CHECK_STR(redact("u:secret@h"), "u:***@h");
    CHECK_STR(redact("h:6379"), "h:6379");
    CHECK_STR(redact(""), "");
    CHECK_STR(redact(NULL), "");
    CHECK_STR(redact("redis://u:***@h"), "redis://u:***@h");
    /* Mis-encoded passwords (rejected by the parser) are still hidden. */
    CHECK_STR(redact("redis://u:pa/ss@h"), "redis://u:***@h");
    CHECK_STR(redact("redis://u:pa?ss@h"), "redis://u:***@h");
    CHECK_STR(redact("redis://u:pa?x=1@h/0"), "redis://u:***@h/0");
    CHECK_STR(redact("redis://u:pa/b?c@d@h?timeout=1"), "redis://u:***@h?timeout=1");

    /* Truncation. */
    char b[16];
    memset(b, 'x', sizeof b);
    dl_url_redact("redis://u:secret@h", b, 10);
    CHECK_STR(b, "redis://u");
    dl_url_redact("redis://u:secret@h", b, 11);
    CHECK_STR(b, "redis://u:");
    dl_url_redact("redis://u:secret@h", b, 12);
    CHECK_STR(b, "redis://u:*");
    dl_url_redact("redis://u:secret@h", b, 14);
    CHECK_STR(b, "redis://u:***");
    dl_url_redact("redis://u:secret@h", b, 16);
    CHECK_STR(b, "redis://u:***@h");
    dl_url_redact("redis://u:secret@h", b, 1);
    CHECK_STR(b, "");
    memset(b, 'x', sizeof b);
    dl_url_redact("redis://u:secret@h", b, 0);
    CHECK_INT(b[0], 'x');
    dl_url_redact("redis://u:secret@h", NULL, 10);

    /* A redacted URL still parses, with the password "***". */
    dl_url *p = OK(redact("redis://u:S3cr3t@h1,h2:7000/2?timeout=9"));
    CHECK_STR(p->password, "***");
    CHECK_INT(p->nhosts, 2);
    CHECK_INT(p->db, 2);
}

int main(void)
{
    test_single();
    test_userinfo();
    test_redlock();
    test_ipv6();
    test_unix();
    test_sentinel();
    test_cluster();
    test_options();
    test_tls();
    test_sentinel_watch();
    test_rejections();
    test_err_buffer();
    test_redact();
    UNIT_DONE();
}
