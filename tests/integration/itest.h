/* itest.h - small helpers shared by the integration tests. */
#ifndef DLOCK_ITEST_H
#define DLOCK_ITEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dlock.h"
#include "harness.h"
#include "proto.h" /* INTERNAL: the scripts' sources, for it_cache_scripts */

/* Check a dlock status, printing the client's detail on failure. */
#define IT_RC(c, expr, want)                                                              \
    do {                                                                                  \
        int it_rc_ = (expr);                                                              \
        if (it_rc_ != (want))                                                             \
            TH_FAIL("%s returned %s, want %s (detail: %s)", #expr, dlock_err_name(it_rc_), \
                    dlock_err_name(want), (c) ? dlock_client_errstr(c) : "");             \
    } while (0)

static inline dlock_client *it_client(const char *url, const dlock_options *o) {
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, o);
    if (rc != DLOCK_OK)
        TH_FAIL("dlock_client_new(%s): %s: %s", url, dlock_err_name(rc),
                c ? dlock_client_errstr(c) : "");
    return c;
}

static inline void it_options(dlock_options *o, int connect_ms, int command_ms) {
    dlock_options_init(o);
    o->connect_timeout_ms = connect_ms;
    o->command_timeout_ms = command_ms;
}

/* Cache every dlock script on s (SCRIPT LOAD), so that no request of the
 * library meets NOSCRIPT there. On a Redlock set a straggler whose NOSCRIPT
 * comes back after the call settled is not re-sent as EVAL (its answer no
 * longer counts), so a test that expects the lock on EVERY server of a
 * fresh set caches the scripts first. */
static inline void it_cache_scripts(th_server *s) {
    for (int id = 0; id < DL_NSCRIPTS; id++) {
        size_t len;
        const char *src = dl_script_source((enum dl_script_id)id, &len);
        redisReply *r = th_server_cmd(s, "SCRIPT LOAD %b", src, len);
        TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
}

/* The Redlock URL of servers s[0..n): "redis://127.0.0.1:P1,127.0.0.1:P2,...". */
static inline void it_redlock_url(char *url, size_t cap, th_server *const *s, int n) {
    size_t off = (size_t)snprintf(url, cap, "redis://");
    for (int i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(url + off, cap - off, "%s127.0.0.1:%d", i ? "," : "",
                                th_server_port(s[i]));
}

#define IT_PASS(name) printf("%s: 1 passed, 0 failed\n", name)

#endif
