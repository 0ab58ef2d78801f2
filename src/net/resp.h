/* resp.h - reading replies: integers, array elements, and the server's error
 * code as a value (LOADING, MOVED, NOPERM ...), so that no layer above
 * decides anything by searching an error message. */
#ifndef DLOCK_RESP_H
#define DLOCK_RESP_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "ctx.h"

/* The error codes the library acts on: X(name). An error reply whose first
 * word is none of these is DL_SRV_OTHER. */
#define DL_SRV_CODES(X)                                                              \
    X(ERR) X(LOADING) X(MASTERDOWN) X(BUSY) X(CLUSTERDOWN) X(MOVED) X(ASK)           \
    X(TRYAGAIN) X(READONLY) X(NOSCRIPT) X(NOPERM) X(NOAUTH) X(WRONGPASS) X(OOM)      \
    X(WRONGTYPE) X(UNBLOCKED) X(CROSSSLOT) X(EXECABORT) X(NOREPLICAS)

enum dl_srv_code {
    DL_SRV_NONE = 0, /* not an error reply */
    DL_SRV_OTHER,    /* an error with another first word */
#define DL_SRV_ENUM_(name) DL_SRV_##name,
    DL_SRV_CODES(DL_SRV_ENUM_)
#undef DL_SRV_ENUM_
    DL_SRV_NCODES
};

/* The code of an error reply (its first word), DL_SRV_NONE for any other
 * reply or NULL. */
DL_INTERNAL int dl_srv_code(const redisReply *r);
/* The first word of the code ("LOADING"), "" for NONE, "error" for OTHER. */
DL_INTERNAL const char *dl_srv_code_name(int code);
/* Errors that say "try again shortly": the server is loading, between
 * masters, busy in a script, or the cluster is down for now. */
DL_INTERNAL int dl_srv_code_transient(int code);

/* Integer value of an integer or numeric-string reply, else dflt. */
DL_INTERNAL int64_t dl_reply_int(const redisReply *r, int64_t dflt);
/* Element i of an array reply, or NULL. */
DL_INTERNAL const redisReply *dl_elem(const redisReply *r, size_t i);

#endif
