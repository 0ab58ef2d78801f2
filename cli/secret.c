/* secret.c - keeping the server password out of sight in the dlock tool.
 *
 * Owns: where the URL comes from (--url, --url-file, $DLOCK_URL,
 * $DLOCK_URL_FILE, the default), the permission check on a URL file,
 * scrubbing the password out of the argv bytes (so /proc/PID/cmdline and
 * ps no longer show it) and out of the inherited DLOCK_URL string, removing
 * DLOCK_URL and DLOCK_URL_FILE from the environment that `dlock run` hands
 * to its command (unless --pass-url-env), and wiping the tool's own copy of
 * the URL when it is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "url.h"

#define URL_FILE_MAX 4096 /* bytes; a URL is far shorter */

void cli_secret_opt(cli *c, int opt, const char *arg) {
    if (opt == CLI_LONG_URL_FILE) {
        c->url_file = arg;
        c->given |= OPT_URLFILE;
    } else if (opt == CLI_LONG_PASS_URL_ENV) {
        c->pass_url_env = 1;
        c->given |= OPT_PASSENV;
    }
}

/* Overwrites, in place, the password in the URL string s with "***" (the
 * rest moves left, the freed bytes become NULs), keeping s's length. If the
 * redacted form is longer than s (a password of 1 or 2 bytes), it is cut to
 * s's length, which cuts the password too. */
static void scrub_in_place(char *s) {
    size_t n = strlen(s);
    char *red = malloc(n + 4);
    if (red == NULL) {
        explicit_bzero(s, n); /* no memory to redact: hide all of it */
        return;
    }
    dl_url_redact(s, red, n + 4);
    if (strcmp(red, s) != 0) {
        size_t m = strlen(red);
        if (m > n)
            m = n;
        memcpy(s, red, m);
        memset(s + m, 0, n - m);
    }
    free(red);
}

/* Reads the URL from path into a new string (*out, to be wiped and freed
 * by the caller). `from` names where the path came from, for messages.
 * Refuses files that group or others may access in any way: the file holds
 * a password. Returns -1 on success or an exit code after a message. */
static int read_url_file(const char *path, const char *from, char **out) {
    char sp[256];
    cli_safe(path, sp, sizeof sp);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        cli_msg("cannot read the URL file '%s' (%s): %s", sp, from, strerror(errno));
        return EXIT_USAGE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        cli_msg("the URL file '%s' (%s) is not a regular file or a pipe", sp, from);
        close(fd);
        return EXIT_USAGE;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        cli_msg("refusing the URL file '%s' (%s): it holds the server password but its "
                "mode %04o lets group or others access it \xe2\x80\x94 run 'chmod 600 %s'",
                sp, from, (unsigned)(st.st_mode & 07777), sp);
        close(fd);
        return EXIT_USAGE;
    }
    char buf[URL_FILE_MAX + 1];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cli_msg("cannot read the URL file '%s' (%s): %s", sp, from, strerror(errno));
            close(fd);
            explicit_bzero(buf, sizeof buf);
            return EXIT_USAGE;
        }
        if (r == 0 || (len += (size_t)r) == sizeof buf)
            break;
    }
    close(fd);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--; /* "echo URL > file" and editors add a final newline */
    const char *problem = len > URL_FILE_MAX           ? "is longer than 4096 bytes"
                          : len == 0                   ? "is empty"
                          : memchr(buf, '\0', len) ? "contains a NUL byte"
                                                       : NULL;
    if (problem == NULL && (*out = malloc(len + 1)) == NULL)
        problem = "cannot be copied: out of memory";
    if (problem != NULL) {
        explicit_bzero(buf, sizeof buf);
        cli_msg("the URL file '%s' (%s) %s", sp, from, problem);
        return EXIT_USAGE;
    }
    memcpy(*out, buf, len);
    (*out)[len] = '\0';
    explicit_bzero(buf, sizeof buf);
    return -1;
}

/* Copies s into c->url_copy. Returns -1, or EXIT_INTERNAL after a message. */
static int keep_copy(cli *c, const char *s) {
    c->url_copy = strdup(s);
    if (c->url_copy == NULL) {
        cli_msg("out of memory");
        return EXIT_INTERNAL;
    }
    return -1;
}

int cli_url_settle(cli *c) {
    const char *env_url = getenv("DLOCK_URL");
    const char *env_file = getenv("DLOCK_URL_FILE");
    int rc = -1;
    if ((c->given & OPT_URL) && (c->given & OPT_URLFILE)) {
        cli_msg("use either --url or --url-file, not both");
        return EXIT_USAGE;
    }
    if (c->given & OPT_URL) {
        rc = keep_copy(c, c->url);
        if (rc < 0)
            scrub_in_place((char *)c->url); /* bytes of argv: ours to change */
    } else if (c->given & OPT_URLFILE) {
        rc = read_url_file(c->url_file, "--url-file", &c->url_copy);
    } else if (env_url != NULL && *env_url != '\0' && env_file != NULL && *env_file != '\0') {
        cli_msg("both DLOCK_URL and DLOCK_URL_FILE are set: unset one of them");
        return EXIT_USAGE;
    } else if (env_url != NULL && *env_url != '\0') {
        rc = keep_copy(c, env_url);
    } else if (env_file != NULL && *env_file != '\0') {
        rc = read_url_file(env_file, "DLOCK_URL_FILE", &c->url_copy);
    } else {
        rc = keep_copy(c, CLI_DEFAULT_URL);
    }
    if (rc >= 0)
        return rc;
    c->url = c->url_copy;
    cli_redact_url(c->url, c->url_shown, sizeof c->url_shown);
    if (!c->pass_url_env) {
        /* Nothing after this point reads them; `dlock run`'s command must
         * not inherit the password. The original bytes of DLOCK_URL stay in
         * the process's initial environment block (/proc/PID/environ, which
         * only the same user and root may read): scrub them too. */
        if (env_url != NULL)
            scrub_in_place((char *)env_url);
        unsetenv("DLOCK_URL");
        unsetenv("DLOCK_URL_FILE");
    }
    return -1;
}

void cli_url_wipe(cli *c) {
    if (c->url_copy != NULL) {
        explicit_bzero(c->url_copy, strlen(c->url_copy));
        free(c->url_copy);
        c->url_copy = NULL;
        c->url = NULL;
    }
}
