/* resolve.h - a host name looked up off the caller's thread.
 *
 * getaddrinfo has no timeout and no non-blocking form: called on the
 * thread that drives the engine, a slow resolver would hold up every
 * operation of an event loop, and make a blocking call overrun its
 * connect timeout (hiredis 0.14 resolves inside its connect). So conn.c
 * hands a name (anything that is not a literal address) to a short-lived
 * thread of its own, and watches a descriptor that becomes readable when
 * the answer is in; the connection then connects to the address found.
 * The connect timeout covers the look-up: a look-up still running then is
 * dropped, and its thread frees what is left when it ends.
 *
 * Like hiredis, IPv4 is preferred: the answer lists the name's IPv4
 * addresses first, then its IPv6 ones (at most DL_RESOLVE_MAX in all),
 * and conn.c tries them in that order. */
#ifndef DLOCK_RESOLVE_H
#define DLOCK_RESOLVE_H

#include <stddef.h>

typedef struct dl_resolve dl_resolve;

/* The most addresses of one name that are kept (and tried). */
#define DL_RESOLVE_MAX 8

/* Whether host is a literal IPv4 or IPv6 address (with an optional
 * "%zone"): those need no look-up. */
int dl_host_is_address(const char *host);

/* Start looking up host (at most 255 bytes) for port. Returns the look-up
 * and sets *fd to a descriptor (close-on-exec, non-blocking) that becomes
 * readable once the answer is in; the caller owns *fd and closes it (at
 * any time: the thread never writes to a closed descriptor). NULL when no
 * thread or descriptor could be had (errno set). */
dl_resolve *dl_resolve_start(const char *host, int port, int *fd);

/* Whether the answer is in (*fd is readable then; a wake-up for any other
 * reason finds 0). */
int dl_resolve_done(const dl_resolve *r);

/* The answer, once done: the number of addresses found (1 to
 * DL_RESOLVE_MAX), or -1 and the resolver's reason in why. */
int dl_resolve_count(const dl_resolve *r, char *why, size_t why_cap);

/* Address i (0 <= i < dl_resolve_count) as text: IPv4 ones first. Lives
 * as long as r. */
const char *dl_resolve_addr(const dl_resolve *r, int i);

/* Drop the look-up (NULL: nothing), answered or not. Never waits. */
void dl_resolve_drop(dl_resolve *r);

#endif
