/* url.h - parse a dlock connection URL into a fixed-size description.
 *
 * Pure helper: no I/O, no allocation, no global state. Unit-tested and fuzzed
 * without a server (tests/unit/test_url.c, fuzz/fuzz_url.c).
 *
 * Accepted forms (README.md "Connection URLs"):
 *   redis://[user[:password]@]host[:port][/db][?opts]      one server
 *   redis://[user[:password]@]h1:p1,h2:p2,h3:p3[/db][?opts]  Redlock set
 *   unix:///path/to/redis.sock[?db=N&opts]                   Unix socket
 *   redis-sentinel://[user[:password]@]h1:p1,h2:p2/mastername[?opts]
 *   redis-cluster://[user[:password]@]h1:p1,h2:p2[?opts]
 *   rediss://, rediss-sentinel://, rediss-cluster://          the same over TLS
 *                                                            (every server: sentinels too)
 * Hosts may be names, IPv4 literals or bracketed IPv6 literals ([::1]:6379,
 * [fe80::1%25eth0]). Default port 6379 (26379 for sentinel). user and password are
 * percent-decoded. Query options (integers, milliseconds unless noted):
 *   connect_timeout, timeout, db (unix only), replicas (count),
 *   replica_timeout, prefix (string, percent-decoded);
 *   TLS schemes only: tls_ca (file), tls_ca_dir, tls_cert, tls_key (files),
 *   tls_server_name (the name to check and send as SNI), tls_verify=on|off;
 *   sentinel schemes only: sentinel_watch=on|off (subscribe to the
 *   sentinels' +switch-master: on unless off).
 *
 * Details of what is accepted (tests/unit/test_url.c has a case for each):
 *   - Scheme names are case-insensitive; hosts are kept as written.
 *   - The user info ends at the LAST '@' before the first '/' or '?', the user
 *     name at its first ':', so raw ':' and '@' work in passwords. A raw '/'
 *     or '?' in a password does not; such a URL leaves an '@' after the host
 *     part and is rejected with a hint to percent-encode it.
 *   - Host names: letters, digits, '-', '.', '_' (1..255 bytes). At most
 *     DL_URL_MAX_HOSTS hosts; the same host:port twice is an error (it would
 *     count twice in a Redlock quorum).
 *   - redis:// and rediss:// take an optional /db (0..INT_MAX); a trailing
 *     "/" alone means db 0. redis-sentinel:// needs /mastername (percent-
 *     decoded, no '/'); redis-cluster:// takes no path.
 *   - unix:///path: absolute path, percent-decoded, 1..107 bytes; user info
 *     is allowed (unix://:password@/path), a host is not. nhosts is 0.
 *   - connect_timeout and timeout: 1..3600000 ms; replica_timeout:
 *     0..3600000 ms, 0 meaning "as long as the call allows" (never WAIT's
 *     own "forever": dlock_options.replica_timeout_ms); replicas: 0..100.
 *     The same limits as dlock_options. Plain decimal digits only: no
 *     sign, no units.
 *     An option given twice, without '=', or unknown is an error; empty
 *     '&'-separated segments are ignored.
 *   - TLS options: percent-decoded, non-empty, no control characters (a raw
 *     '@' in a value must be written %40); on a scheme without TLS they are
 *     an error, not ignored. tls_cert and tls_key come together; tls_ca and
 *     tls_ca_dir are refused with tls_verify=off.
 *   - Raw whitespace or control characters are errors everywhere (write
 *     them as %XX where a component is percent-decoded); %00 is an error.
 */
#ifndef DLOCK_URL_H
#define DLOCK_URL_H

#include <stddef.h>

#define DL_URL_MAX_HOSTS 16
#define DL_URL_HOST_MAX 256 /* buffer size, includes the NUL */
#define DL_URL_PATH_MAX 512 /* TLS file names: buffer size, includes the NUL */

enum dl_url_kind {
    DL_URL_SINGLE,   /* one server (TCP or unix socket) */
    DL_URL_REDLOCK,  /* several independent masters */
    DL_URL_SENTINEL, /* sentinels + master name */
    DL_URL_CLUSTER   /* cluster seed nodes */
};

typedef struct dl_host {
    char host[DL_URL_HOST_MAX]; /* without IPv6 brackets */
    int port;
} dl_host;

typedef struct dl_url {
    enum dl_url_kind kind;
    int tls;         /* 1 for rediss://, rediss-sentinel://, rediss-cluster:// */
    int unix_socket; /* 1 for unix://, path in `path` */
    char path[108];  /* unix socket path (sun_path size) */
    int nhosts;
    dl_host hosts[DL_URL_MAX_HOSTS];
    char user[128];     /* "" when absent */
    char password[256]; /* "" when absent */
    int has_password;   /* 1 when a password was given (it may be empty) */
    int db;             /* 0 when absent; 0..15 checked by the server, 0..INT_MAX here */
    char master_name[128]; /* sentinel only */
    int connect_timeout_ms; /* -1 when absent */
    int command_timeout_ms; /* -1 when absent */
    int replicas;           /* -1 when absent */
    int replica_timeout_ms; /* -1 when absent */
    char prefix[128];       /* "" when absent */
    int has_prefix;
    /* TLS (tls == 1): files and names are "" when absent. */
    char tls_ca[DL_URL_PATH_MAX];
    char tls_ca_dir[DL_URL_PATH_MAX];
    char tls_cert[DL_URL_PATH_MAX];
    char tls_key[DL_URL_PATH_MAX];
    char tls_server_name[DL_URL_HOST_MAX];
    int tls_verify; /* 1 unless tls_verify=off */
    int sentinel_watch; /* sentinel: 1 unless sentinel_watch=off (+switch-master) */
} dl_url;

/* Parse `s` into `*out`. Returns 0 on success (err, when given, is set to "").
 * On failure returns -1, resets *out to the empty state (no part of a
 * password is left in it) and writes a one-line message naming the problem
 * into err (truncated, always NUL-terminated when errlen > 0; err may be
 * NULL), e.g. "bad port '99999' in URL (out of range, expected 1..65535)".
 * The message never contains the user name or password. Pure: no
 * allocation, no I/O, safe from any thread. s may be NULL ("empty URL"). */
int dl_url_parse(const char *s, dl_url *out, char *err, size_t errlen);

/* Copy `s` into out with any password replaced by "***" (for logs and
 * error messages). The password is what dl_url_parse would take for one:
 * from the first ':' of the user info to its '@'. For malformed input with
 * an '@' after the host part (a password with a raw '/' or '?'), everything
 * up to that '@' is hidden. Input without "scheme://" is treated as starting
 * with the user info. Always NUL-terminates when outlen > 0; truncates;
 * s == NULL gives "". The output is at most 3 bytes longer than s. */
void dl_url_redact(const char *s, char *out, size_t outlen);

#endif
