/* resp.h - reading replies: integers, array elements, and the server's error
 * code as a value (LOADING, MOVED, NOPERM ...), so that no layer above
 * decides anything by searching an error message. */
#ifndef DLOCK_RESP_H
#define DLOCK_RESP_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "ctx.h"

/* The server error codes are the public ones (dlock.h: dlock_srv_code,
 * generated from DLOCK_SRV_MAP) under internal names, so the code kept in
 * dl_ctx is what dlock_client_errcode returns, with no table to keep in
 * step. An error reply whose first word is none of these is DL_SRV_OTHER. */
enum dl_srv_code {
    DL_SRV_NONE = DLOCK_SRV_NONE, /* not an error reply */
    DL_SRV_OTHER = DLOCK_SRV_OTHER,
#define DL_SRV_ENUM_(name, value) DL_SRV_##name = DLOCK_SRV_##name,
    DLOCK_SRV_MAP(DL_SRV_ENUM_)
#undef DL_SRV_ENUM_
    DL_SRV_NOMASTER = DLOCK_SRV_NOMASTER, /* set by topo/sentinel.c, not from a reply */
    DL_SRV_EVICTION = DLOCK_SRV_EVICTION  /* set by lock/, from maxmemory-policy */
};

/* The code of an error reply (its first word, and the two older spellings
 * dlock.h lists), DL_SRV_NONE for any other reply or NULL. */
DL_INTERNAL int dl_srv_code(const redisReply *r);
/* The first word of the code ("LOADING"), "" for NONE, "error" for OTHER
 * and for values that are no reply's word. */
DL_INTERNAL const char *dl_srv_code_name(int code);
/* Errors that say "try again shortly": the server is loading, between
 * masters (MASTERDOWN), busy in a script, short of replicas (NOREPLICAS,
 * min-replicas-to-write), or the cluster is down or migrating for now. */
DL_INTERNAL int dl_srv_code_transient(int code);

/* Integer value of an integer reply, or of a string reply that is exactly
 * a decimal int64 (scripts return fences as strings: Lua numbers are not
 * exact above 2^53), else dflt. */
DL_INTERNAL int64_t dl_reply_int(const redisReply *r, int64_t dflt);
/* Element i of an array reply, or NULL. */
DL_INTERNAL const redisReply *dl_elem(const redisReply *r, size_t i);

#endif
