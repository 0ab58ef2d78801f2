/*
 * dlock.h - distributed locks on Redis-compatible servers.
 *
 * The one public header of libdlock. Every symbol is prefixed dlock_ /
 * DLOCK_. All handles are opaque; every *_new has a *_free that accepts NULL.
 *
 * Threads: a dlock_client, and every dlock_lock acquired through it, is used
 * by one thread at a time (like a hiredis context). Different clients may be
 * used from different threads freely. The optional keepalive thread
 * (dlock_keepalive_start) owns its own connections and never touches the
 * caller's; the functions documented as "any thread" below may be called
 * while it runs. A server named by host name (not an address) is looked up
 * on a short-lived thread of the library's (getaddrinfo has no timeout),
 * within the connect timeout: no call waits for a resolver past it, and
 * dlock_client_process never waits for one; that thread takes no signals
 * and touches nothing of the caller's. The name's addresses (IPv4 ones
 * first, at most 8) are tried in turn while one refuses the connection or
 * cannot be reached; the connect timeout covers them all.
 *
 * Processes: a client and its handles belong to the process that created
 * them. In a child after fork(), every call on an inherited client or
 * handle returns DLOCK_EINVAL (the client's detail says why), dlock_held
 * gives 0 (the parent holds the locks, and its keepalive goes on), and
 * dlock_info_get still works. dlock_client_free and dlock_lock_free free the
 * child's copies: they close the child's copies of the sockets, send
 * nothing on them, and do not wait for the parent's keepalive thread, which
 * does not exist in the child (if the fork caught it mid-round, the child
 * leaves that thread's state unfreed rather than risk it). A child that
 * needs locks creates a client of its own. As for any library after a
 * fork() in a multithreaded program, no other thread may be inside a call
 * on that client at the fork. The library's sockets are close-on-exec.
 * The check relies on pthread_atfork: fork() itself, not a raw clone(2).
 *
 * Signals: the library never raises SIGPIPE (it writes with MSG_NOSIGNAL,
 * TLS included) and installs no signal handlers.
 *
 * Time: every duration is in milliseconds (int64_t). Lease validity is
 * tracked with CLOCK_MONOTONIC; wall-clock times are only reported.
 *
 * Errors: fallible calls return an int from the DLOCK_ERRNO_MAP table
 * (DLOCK_OK == 0, errors are negative). dlock_strerror() describes the code;
 * dlock_client_errstr() says what exactly failed in the client's last call.
 *
 * Structs and versions: a program keeps working with a newer libdlock.so
 * than the header it was compiled with. Public structs only ever grow at
 * their end, and the library learns the size the program was compiled
 * with:
 *   - structs the program fills (dlock_options, dlock_list_options) start
 *     with struct_size, which dlock_options_init / dlock_list_options_init
 *     set (they are macros passing sizeof). The library reads only that
 *     many bytes and gives fields past them their defaults. A struct larger
 *     than the library knows (a program built against a newer header) is
 *     accepted if its unknown fields are zero, and refused with
 *     DLOCK_ENOTSUP otherwise;
 *   - structs the library fills in the program's memory (dlock_holder,
 *     dlock_info, dlock_list_stats) are written through macros that pass
 *     sizeof: the library writes exactly that many bytes, zeroing fields it
 *     does not know;
 *   - structs the library hands to callbacks (dlock_event, dlock_result,
 *     dlock_list_entry, and the dlock_holder they point to) stay owned by
 *     the library: a program reads only the fields it knows.
 * So every field added later reads 0 for "off", "default" or "unknown",
 * and starts at or after the struct's previous sizeof (never in its old
 * trailing padding, which an old program does not keep zero).
 * FFI bindings that cannot use the macros call the *_sized functions with
 * the size of their own copy of the struct.
 */
#ifndef DLOCK_H
#define DLOCK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DLOCK_BUILDING)
#define DLOCK_API __attribute__((visibility("default")))
#else
#define DLOCK_API
#endif

/* The version, in one place: CMake reads these three lines. */
#define DLOCK_VERSION_MAJOR 0
#define DLOCK_VERSION_MINOR 2
#define DLOCK_VERSION_PATCH 0
/* MAJOR * 1000000 + MINOR * 1000 + PATCH, for #if checks. */
#define DLOCK_VERSION_NUMBER \
    (DLOCK_VERSION_MAJOR * 1000000 + DLOCK_VERSION_MINOR * 1000 + DLOCK_VERSION_PATCH)

/* Longest lock name accepted, in bytes. Names are NUL-terminated strings of
 * 1..DLOCK_NAME_MAX bytes; any bytes but NUL are allowed (they travel as
 * Redis keys, never as Lua source), and every name keeps the keys of its
 * lock in one Redis Cluster slot, braces included. */
#define DLOCK_NAME_MAX 512
/* Longest lease accepted: 24 days (keeps every deadline far from overflow). */
#define DLOCK_TTL_MAX ((int64_t)24 * 24 * 3600 * 1000)
/* Longest owner label accepted (dlock_options.owner_label), in bytes. */
#define DLOCK_LABEL_MAX 128
/* Most names one multi-lock may take (dlock_multi_acquire). */
#define DLOCK_MULTI_MAX 16
/* Most permits a semaphore may have (dlock_sem_acquire). */
#define DLOCK_PERMITS_MAX 1000000

/* The status codes: X(name, value, description). */
#define DLOCK_ERRNO_MAP(X)                                                          \
    X(OK, 0, "success")                                                             \
    X(EBUSY, -1, "lock is held by another owner")                                   \
    X(ETIMEDOUT, -2, "deadline passed before the lock could be acquired")           \
    X(ENOTHELD, -3, "lock is not held by this handle (expired, released or taken)") \
    X(EINVAL, -4, "invalid argument")                                               \
    X(EIO, -5, "cannot reach the server (connect, read or write failed or timed out)") \
    X(ESERVER, -6, "the server answered with an error")                            \
    X(ENOQUORUM, -7, "too few servers answered to form a majority")                 \
    X(EUNKNOWN, -8, "outcome unknown: a lease may exist until its TTL ends")        \
    X(ENOMEM, -9, "out of memory")                                                  \
    X(EPROTO, -10, "unexpected reply from the server")                              \
    X(ENOTSUP, -11, "not supported by this build or this server")                   \
    X(ECANCELED, -12, "the operation was cancelled")                                \
    X(EMAXHOLD, -13, "the maximum hold time was reached: the lease is not extended") \
    X(ENOREPLICAS, -14, "too few replicas acknowledged the lock in time: nothing is held")

typedef enum dlock_status {
#define DLOCK_ENUM_(name, value, desc) DLOCK_##name = value,
    DLOCK_ERRNO_MAP(DLOCK_ENUM_)
#undef DLOCK_ENUM_
} dlock_status;

/* Description of a status code ("lock is held by another owner"). Never NULL;
 * unknown codes give "unknown status". The string is static. */
DLOCK_API const char *dlock_strerror(int status);
/* Name of a status code ("DLOCK_EBUSY"). Never NULL; static string. */
DLOCK_API const char *dlock_err_name(int status);
/* Library version, "MAJOR.MINOR.PATCH". Static string. */
DLOCK_API const char *dlock_version(void);
/* DLOCK_VERSION_NUMBER of the library actually linked (it may differ from
 * the header a program was compiled with). Any thread. */
DLOCK_API int dlock_version_number(void);

typedef struct dlock_client dlock_client;
typedef struct dlock_lock dlock_lock;

/* ---- Events (metrics and logging hook) ------------------------------ */

typedef enum dlock_event_type {
    DLOCK_EV_ACQUIRED,  /* a lock was acquired (fence, attempts, wait_us set) */
    DLOCK_EV_CONTENDED, /* an attempt found the lock held and will wait */
    DLOCK_EV_RELEASED,  /* a lock was released */
    DLOCK_EV_EXTENDED,  /* a lease was extended (also by keepalive) */
    DLOCK_EV_LOST,      /* a lease was found gone or ran out while believed held */
    DLOCK_EV_ERROR,     /* a call failed with status (not EBUSY/ETIMEDOUT) */
    DLOCK_EV_WARNING    /* a setting weakens a guarantee (message says which and why);
                           e.g. from dlock_client_new for tls_verify=off */
} dlock_event_type;

/* Owned by the library; grows at its end. */
typedef struct dlock_event {
    dlock_event_type type;
    const char *name;   /* lock name */
    int status;         /* DLOCK_OK or the error */
    int64_t fence;      /* fencing token, 0 when unknown or fencing is off */
    int64_t wait_us;    /* time spent acquiring, for ACQUIRED/contended ends */
    int attempts;       /* acquire attempts so far */
    const char *message; /* DLOCK_EV_WARNING: one line for a log; NULL otherwise */
} dlock_event;

/* Called synchronously from the thread that made the call (the keepalive
 * thread for its own extensions and losses). Must not call back into the
 * same client. The event and its strings are valid only during the call. */
typedef void (*dlock_event_fn)(const dlock_event *ev, void *userdata);

/* ---- Options --------------------------------------------------------- */

typedef enum dlock_waiting {
    DLOCK_WAIT_PUSH = 0, /* waiters queue and are woken by the release (default) */
    DLOCK_WAIT_POLL = 1  /* the seed's design: retry with exponential backoff */
} dlock_waiting;

/* Fields are only ever added at the end (see "Structs and versions" at the
 * top); dlock_options_init sets them all. */
typedef struct dlock_options {
    size_t struct_size;       /* set by dlock_options_init: do not change */
    const char *key_prefix;   /* prepended to every key; default "dlock:"; copied. On a
                                 Cluster URL a prefix whose first '{' is directly
                                 followed by '}' is refused (DLOCK_EINVAL): it would
                                 split every lock's keys across slots */
    int connect_timeout_ms;   /* per server connect; default 1000 */
    int command_timeout_ms;   /* per command round trip; default 1000 */
    int retry_count;          /* dlock_acquire: retries after the first try; default 10 */
    int retry_delay_ms;       /* backoff base, doubled each retry; default 100 */
    int retry_max_delay_ms;   /* backoff cap; default 1000 */
    int retry_jitter_pct;     /* +-% random jitter on each delay; default 20 */
    double drift_factor;      /* validity = ttl - elapsed - (ttl*drift + 2 ms); default 0.01 */
    int fencing;              /* 1: maintain a per-name fencing counter; default 1 */
    dlock_waiting waiting;    /* default DLOCK_WAIT_PUSH */
    const char *owner_label;  /* stored with the lock for dlock_inspect; default NULL; copied */
    /* The replica gate: after a grant, WAIT until this many replicas have
     * the lock (0..100; default 0: off). Fewer within replica_timeout_ms:
     * the lock is given back and the acquire fails with DLOCK_ENOREPLICAS;
     * dlock_wait keeps waiting until its deadline, trying again only once
     * a WAIT shows enough replicas (no fence is spent meanwhile), and says
     * so once with a DLOCK_EV_WARNING event. A WAIT holds its connection:
     * other operations pipelined on it wait too. Extensions too
     * (dlock_extend, keepalive; a lock on one master, not a Redlock set):
     * a WAIT follows each, and an extension fewer replicas acknowledged
     * does not extend the handle's validity (dlock_extend: ENOREPLICAS;
     * keepalive: retried until the validity runs out, then lost with
     * DLOCK_ETIMEDOUT). */
    int replicas;
    /* WAIT timeout, 0..3600000 ms; default 100. 0: as long as the call
     * allows (dlock_wait: until its deadline; other calls: one command
     * timeout), never Redis's "forever". URL: ?replica_timeout=. */
    int replica_timeout_ms;
    dlock_event_fn on_event;  /* default NULL */
    void *event_userdata;
    /* The process id stored with every lock this client takes, which
     * dlock_inspect reports as dlock_holder.pid. Default 0: this process
     * (getpid() when the client is created). A program that takes locks on
     * behalf of another process names that process here; `dlock acquire`
     * names the shell or script that ran it. Only reported: the library never
     * signals, waits for or checks it. 0..2147483647, else dlock_client_new
     * fails with DLOCK_EINVAL. */
    long owner_pid;
    /* Longest a lock may be held, from its acquisition, in ms (0..DLOCK_TTL_MAX);
     * default 0: no limit. Once reached, keepalive stops extending the lease
     * and reports the lock lost with DLOCK_EMAXHOLD, and dlock_extend returns
     * DLOCK_EMAXHOLD. The lease is not released: it runs out by itself (at
     * most one ttl later), which leaves the holder that time to stop before
     * anyone else can take the lock. */
    int64_t max_hold_ms;
    /* Every connection asks the server's maxmemory-policy once (CONFIG GET,
     * pipelined behind AUTH/SELECT: no round trip of its own). Any policy
     * but noeviction may evict lock keys and fence counters, which gives
     * one lock to two holders: that raises one DLOCK_EV_WARNING per
     * connection. With require_noeviction 1, an acquire on such a server
     * fails instead with DLOCK_ENOTSUP (dlock_client_errcode:
     * DLOCK_SRV_EVICTION) and leaves no lease. A server that refuses
     * CONFIG (managed services, ACLs) counts as unknown: no warning, no
     * failure. Default 0. */
    int require_noeviction;
} dlock_options;

/* Fill *opts with the documented defaults and set opts->struct_size to
 * the size this program was compiled with. Always call it before setting
 * fields: dlock_client_new refuses options whose struct_size was never set
 * (DLOCK_EINVAL), and fields added later get their defaults. A macro over
 * dlock_options_init_sized; any thread. */
#define dlock_options_init(opts) dlock_options_init_sized((opts), sizeof(dlock_options))
/* The same for a struct of `size` bytes (FFI bindings: the size of their
 * copy of the struct): fields within size get their defaults, bytes past the
 * fields this library knows are zeroed. No-op when opts is NULL or size is
 * smaller than a size_t. */
DLOCK_API void dlock_options_init_sized(dlock_options *opts, size_t size);

/* ---- Client ---------------------------------------------------------- */

/*
 * Create a client for the deployment named by `url` (see README, "Connection
 * URLs"): redis://, unix://, a comma-separated Redlock set, redis-sentinel://
 * or redis-cluster://, and rediss://, rediss-sentinel://, rediss-cluster://
 * for the same over TLS (server certificate and host name checked unless
 * ?tls_verify=off, which raises a DLOCK_EV_WARNING event from this call).
 * Query options in the URL (?connect_timeout=&timeout=) override the
 * matching fields of opts. opts may be NULL for the defaults.
 *
 * Connections are made lazily by the first call that needs them (use
 * dlock_client_ping to connect eagerly), and re-made transparently once
 * after a connection breaks.
 *
 * Sentinel and Cluster: the first call that needs the master (or the slot
 * map) finds it first, and so does a call after a failover made the master
 * doubtful (its connection broke, or it answered READONLY) or a MOVED made
 * the map stale. Asking the sentinels (all at once, then ROLE on the
 * address they give) goes on for at most one command timeout while no
 * master answers (a failover in progress), each question within a connect
 * plus a command timeout; loading the slot map takes at most a connect plus
 * a command timeout. That time comes on top of a call's own bounds below
 * (dlock_wait's deadline cuts it too). In the non-blocking API it is I/O
 * and timers in the caller's loop, never a blocking wait.
 *
 * Only opts->struct_size bytes of *opts are read; fields past them get
 * their defaults (see "Structs and versions").
 *
 * Returns DLOCK_OK, DLOCK_EINVAL (bad URL or option, opts->struct_size not
 * set by dlock_options_init, or a TLS file that cannot be loaded; *out is
 * still set to a client whose dlock_client_errstr says why: free it),
 * DLOCK_ENOTSUP (options from a newer header that set a field this library
 * does not know; *out set likewise) or DLOCK_ENOMEM (*out is NULL).
 * Ownership of *out passes to the caller.
 */
DLOCK_API int dlock_client_new(dlock_client **out, const char *url, const dlock_options *opts);

/*
 * Close every connection and free the client. Accepts NULL.
 *
 * Handles acquired through it and not yet freed are orphaned, not freed:
 * their leases are neither released nor extended any more (keepalive
 * stops and its on_lost is not called), so each runs out by its TTL.
 * dlock_held gives 0, dlock_info_get still works (name and token stay
 * valid; expires_at is the latest the lease can end), dlock_release,
 * dlock_extend, dlock_keepalive_start and the async calls return
 * DLOCK_EINVAL, dlock_keepalive_stop does nothing, and dlock_lock_free
 * frees the handle. Release and free handles first to end leases at once.
 *
 * Async operations in flight are dropped: their callbacks never run (a
 * lease an acquire may have obtained runs out by its TTL).
 *
 * Not from inside a callback of this client, nor while another thread uses
 * the client or one of its handles. May wait for a keepalive round in
 * flight to end (its command and connect timeouts bound it). In a child
 * after fork(): frees the child's copy only (see "Processes" at the top).
 */
DLOCK_API void dlock_client_free(dlock_client *c);

/* Detail of the client's last failed call ("connect 127.0.0.1:6390:
 * Connection refused"), or "" after a success. Valid until the next call on
 * the client. Passwords never appear in it. For display: decide on the
 * status and on dlock_client_errcode, not on this text. */
DLOCK_API const char *dlock_client_errstr(const dlock_client *c);

/* What kind of error a server answered with, as a value: X(name, value).
 * An error reply is classified by its first word ("NOAUTH Authentication
 * required." is DLOCK_SRV_NOAUTH), with two older spellings mapped to the
 * current ones: "ERR invalid password" (Redis < 6) is WRONGPASS, and "ERR
 * Protocol error: unauthenticated ..." (a long command sent before AUTH) is
 * NOAUTH. Values never change; new kinds get new values. FENCEMAX is
 * dlock's own: a lock's fencing counter is at 2^63-1 and no higher fence
 * can be issued (the acquire fails with DLOCK_ESERVER and changes nothing). */
#define DLOCK_SRV_MAP(X)                                                                \
    X(ERR, 2) X(LOADING, 3) X(MASTERDOWN, 4) X(BUSY, 5) X(CLUSTERDOWN, 6) X(MOVED, 7)   \
    X(ASK, 8) X(TRYAGAIN, 9) X(READONLY, 10) X(NOSCRIPT, 11) X(NOPERM, 12)              \
    X(NOAUTH, 13) X(WRONGPASS, 14) X(OOM, 15) X(WRONGTYPE, 16) X(UNBLOCKED, 17)         \
    X(CROSSSLOT, 18) X(EXECABORT, 19) X(NOREPLICAS, 20) X(FENCEMAX, 21)

typedef enum dlock_srv_code {
    DLOCK_SRV_NONE = 0,  /* no server error: success, or a failure no server
                            answered (connect refused, timeout, bad URL) */
    DLOCK_SRV_OTHER = 1, /* an error reply whose first word is not listed */
#define DLOCK_SRV_ENUM_(name, value) DLOCK_SRV_##name = value,
    DLOCK_SRV_MAP(DLOCK_SRV_ENUM_)
#undef DLOCK_SRV_ENUM_
    /* Answers that are not error replies start at 100. */
    DLOCK_SRV_NOMASTER = 100, /* Sentinel: no sentinel that answered knows a
                                 master by the URL's name (they replied nil) */
    DLOCK_SRV_EVICTION = 101  /* the server's maxmemory-policy may evict lock
                                 keys (opts.require_noeviction) */
} dlock_srv_code;

/* The server error behind the client's last failed call, a dlock_srv_code:
 * what the server answered (for a call over several servers, the first one
 * that answered with an error), or DLOCK_SRV_NONE after a success, after a
 * failure no server answered, and for NULL. Decide on this (and the status)
 * rather than on the text of dlock_client_errstr: DLOCK_SRV_NOAUTH means a
 * password is needed whatever the server's wording. Valid until the next call
 * on the client; same thread rules as the client. Never blocks. */
DLOCK_API int dlock_client_errcode(const dlock_client *c);

/* Connect to (and PING) every server now. Returns DLOCK_OK, DLOCK_EIO,
 * DLOCK_ENOQUORUM (Redlock: too few reachable), DLOCK_ESERVER (e.g. AUTH
 * failed). Blocks at most connect + command timeout. */
DLOCK_API int dlock_client_ping(dlock_client *c);

/* ---- Acquiring -------------------------------------------------------- */

/*
 * Acquire `name` for a lease of ttl_ms (1..DLOCK_TTL_MAX), retrying up to
 * opts.retry_count times. Between tries the call sleeps with exponential
 * backoff and jitter (base retry_delay_ms, doubling, capped at
 * retry_max_delay_ms); with DLOCK_WAIT_PUSH a release of the lock ends the
 * sleep at once and hands the lock to the longest waiter (FIFO), and no sleep
 * outlasts the holder's remaining lease.
 *
 * Transient failures (see dlock_wait) use up retries like a busy lock.
 *
 * On DLOCK_OK *out is a new handle the caller owns (dlock_lock_free).
 * Errors: DLOCK_EBUSY (still held after every retry), DLOCK_EINVAL,
 * DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM, DLOCK_EUNKNOWN (the connection
 * broke while an acquire was in flight and the clean-up could not confirm
 * that no lease was left: one may exist until ttl_ms ends), DLOCK_ENOMEM,
 * DLOCK_ENOREPLICAS (opts.replicas: too few replicas acknowledged the
 * grant; it was given back). Blocks at most the sum of the backoff delays
 * plus, per attempt, what dlock_try_acquire may block, plus one command
 * (and connect) timeout to leave the wait queue when it gives up.
 */
DLOCK_API int dlock_acquire(dlock_client *c, const char *name, int64_t ttl_ms, dlock_lock **out);

/* Like dlock_acquire with exactly one attempt and no waiting: DLOCK_EBUSY at
 * once when the lock is held (or promised to a queued waiter). Blocks at most
 * one command timeout, plus a connect timeout if a reconnect is needed, plus
 * one more of each for the clean-up by token when the first request's
 * outcome is unknown (then DLOCK_EIO if the clean-up worked, DLOCK_EUNKNOWN
 * if not), plus, with opts.replicas, the WAIT's timeout. */
DLOCK_API int dlock_try_acquire(dlock_client *c, const char *name, int64_t ttl_ms,
                                dlock_lock **out);

/* Acquire `name`, waiting as long as needed up to timeout_ms (0: one try).
 * Waiting is woken by the release (DLOCK_WAIT_PUSH) or polls (POLL).
 * Transient failures (server unreachable or restarting, LOADING, no quorum,
 * an attempt of unknown outcome) are retried with a fresh token until the
 * deadline, so a short outage costs time, not the call; the last such error
 * is returned if the deadline passes during it (DLOCK_EUNKNOWN if an
 * earlier attempt's outcome stayed open: its lease may exist until its
 * TTL). A replica gate that did not pass (opts.replicas) is waited for
 * too, without taking the lock again until a WAIT shows the replicas
 * back: DLOCK_ENOREPLICAS if they are not by the deadline. Returns
 * DLOCK_ETIMEDOUT once the deadline passes with the lock held by others;
 * other errors as dlock_acquire. Never returns later than the deadline
 * plus one command timeout, whatever the server does (every call inside,
 * the last try and leaving the wait queue included, is cut at that
 * instant). */
DLOCK_API int dlock_wait(dlock_client *c, const char *name, int64_t timeout_ms, int64_t ttl_ms,
                         dlock_lock **out);

/* Whether `name` is currently held by anyone. *locked is set to 1 or 0;
 * pttl_ms (may be NULL) receives the holder's remaining lease in ms, or -1
 * when free. Errors: DLOCK_EINVAL, DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM. */
DLOCK_API int dlock_is_locked(dlock_client *c, const char *name, int *locked, int64_t *pttl_ms);

/* Who holds a lock, as stored next to its token. Grows at its end:
 * dlock_inspect writes exactly the size the program was compiled with. */
typedef struct dlock_holder {
    int locked;          /* 1 if held */
    int64_t pttl_ms;     /* remaining lease, -1 when free */
    int64_t fence;       /* holder's fencing token (when locked), else the fencing counter:
                            the last fence issued (on a Redlock set the highest counter,
                            which an acquire refused by a majority may have raised past
                            it); 0 if none */
    int64_t acquired_at; /* holder's wall-clock acquire time, ms since the epoch; 0 if free */
    long pid;            /* holder's process id, 0 if free */
    int waiters;         /* processes queued for the lock (push waiting), held or not */
    char host[256];      /* holder's host name, "" if free */
    char label[DLOCK_LABEL_MAX + 1]; /* holder's owner_label, "" if none */
    char token[33];      /* holder's token (hex), "" if free */
} dlock_holder;

/* Fill *out with what the server knows about `name`. Same errors as
 * dlock_is_locked, and DLOCK_EINVAL for a NULL out. A macro over
 * dlock_inspect_sized. */
#define dlock_inspect(c, name, out) dlock_inspect_sized((c), (name), (out), sizeof(dlock_holder))
/* The same for a dlock_holder of out_size bytes (1..4096): exactly out_size
 * bytes of *out are written, fields this library does not know are 0. */
DLOCK_API int dlock_inspect_sized(dlock_client *c, const char *name, dlock_holder *out,
                                  size_t out_size);

/* ---- Listing the locks that are held ------------------------------------- */

/* The kind of a lock: of a listed lock, of a handle (dlock_lock_kind), of
 * what holds a name (dlock_holders_kind). */
typedef enum dlock_kind {
    DLOCK_KIND_MUTEX = 0,     /* dlock_acquire & co. */
    DLOCK_KIND_SEMAPHORE = 1, /* dlock_sem_acquire & co. */
    DLOCK_KIND_RW = 2,        /* dlock_rw_acquire & co. */
    DLOCK_KIND_MULTI = 3      /* a handle of dlock_multi_acquire & co. (its names are mutexes) */
} dlock_kind;

/* Fields are only ever added at the end; dlock_list_options_init sets them. */
typedef struct dlock_list_options {
    size_t struct_size;  /* set by dlock_list_options_init: do not change */
    const char *pattern; /* glob over lock names in Redis's MATCH syntax (* ? [a-z] [^a];
                            a backslash quotes the next character); NULL: every name */
    int max_locks;       /* inspect at most this many distinct names (1..1000000);
                            default 10000 */
    int64_t timeout_ms;  /* the whole call (1..DLOCK_TTL_MAX); default 10000 */
    int scan_count;      /* SCAN's COUNT per round trip (1..10000); default 1000 */
} dlock_list_options;

/* Fill *opts with the documented defaults and set opts->struct_size, as
 * dlock_options_init does. Always call it before setting fields. A macro
 * over dlock_list_options_init_sized (same rules as
 * dlock_options_init_sized); any thread. */
#define dlock_list_options_init(opts) \
    dlock_list_options_init_sized((opts), sizeof(dlock_list_options))
DLOCK_API void dlock_list_options_init_sized(dlock_list_options *opts, size_t size);

/* One listed lock. Owned by the library; grows at its end. */
typedef struct dlock_list_entry {
    const char *name;    /* NUL-terminated, valid only during the callback */
    size_t name_len;
    dlock_kind kind;     /* a mutex, a semaphore or a read-write lock */
    int holders;         /* processes holding it (a mutex: 1) */
    dlock_holder holder; /* as dlock_inspect says (locked is 1); for a semaphore or
                            rw lock the holder whose lease ends first */
} dlock_list_entry;

/* Called once per listed lock, on the calling thread. Must not call back
 * into the same client. Return 0 to go on, nonzero to stop the listing. */
typedef int (*dlock_list_fn)(const dlock_list_entry *e, void *userdata);

/* What a listing did. Grows at its end: dlock_list writes exactly the size
 * the program was compiled with. */
typedef struct dlock_list_stats {
    int servers;     /* servers scanned (to the end, or until the listing stopped) */
    long scan_calls; /* SCAN round trips */
    int found;       /* distinct lock names SCAN returned (each inspected once) */
    int listed;      /* entries passed to the callback */
    int skipped;     /* keys of that shape that are not dlock's (e.g. WRONGTYPE) */
    int complete;    /* 1: every server was scanned to its end (Redlock: at
                        least a majority); 0: max_locks, timeout_ms or the
                        callback stopped the listing early */
} dlock_list_stats;

/*
 * Call fn for every lock under the client's key prefix that is held now
 * and whose name matches opts->pattern, on every server that holds locks:
 * the one server, the Sentinel master, every master of a Cluster (its slot
 * map is reloaded first), every server of a Redlock set. opts may be NULL
 * for the defaults (only opts->struct_size bytes of it are read); stats
 * (may be NULL) says what was done, written once the call ends.
 *
 * How: on each server, over a connection of its own, SCAN with MATCH
 * "<prefix>{<pattern>}" (the prefix's glob characters escaped) and COUNT
 * scan_count; never KEYS. (The keys of a name starting with '}' carry a
 * marker, docs/PROTOCOL.md: a pattern that can match such a name and does
 * not start with '*' takes a second SCAN pass for them.) Only a lock's
 * main key matches (it exists while the lock is held), not its fence
 * counter, queue or wake lists, so only held locks travel over the
 * network; SCAN itself still walks every key of the database, about
 * keys / scan_count round trips per server. Each name found is then
 * inspected once (the INSPECT script, one round trip, as dlock_inspect; a
 * semaphore or rw lock, whose main key INSPECT finds of another type, one
 * more, as dlock_holders_get) and listed if held. On a Redlock set the
 * names found on
 * any server are merged, and a lock counts as held only when a majority of
 * servers hold it, as in dlock_inspect. Names come in the servers' SCAN
 * order, not sorted. A lock whose holder has just ended and whose queue
 * head has not yet taken it over is not listed (it has no holder).
 *
 * Bounds: the call stops once max_locks names have been inspected, at
 * timeout_ms, or when fn returns nonzero; it then returns DLOCK_OK with
 * stats->complete 0. Every server call is cut at that deadline.
 *
 * Errors: DLOCK_EINVAL (bad options, opts->struct_size not set by
 * dlock_list_options_init; pattern empty or longer than
 * 2 * DLOCK_NAME_MAX), DLOCK_ENOTSUP (options from a newer header that set
 * a field this library does not know), DLOCK_EIO / DLOCK_ESERVER (a server could not be
 * scanned, e.g. an ACL without SCAN, or a lock not inspected),
 * DLOCK_ENOQUORUM (Redlock: fewer than a majority could be scanned),
 * DLOCK_ENOMEM. Entries passed to fn before an error stand.
 * Blocks at most timeout_ms plus one command timeout.
 */
#define dlock_list(c, opts, fn, userdata, stats) \
    dlock_list_sized((c), (opts), (fn), (userdata), (stats), sizeof(dlock_list_stats))
/* dlock_list for a dlock_list_stats of stats_size bytes (1..4096; any value
 * when stats is NULL): exactly stats_size bytes are written. */
DLOCK_API int dlock_list_sized(dlock_client *c, const dlock_list_options *opts,
                               dlock_list_fn fn, void *userdata, dlock_list_stats *stats,
                               size_t stats_size);

/* ---- The lock handle -------------------------------------------------- */

/*
 * Release the lock: delete it if (and only if) it still carries this
 * handle's token, and hand it to the longest waiter. Returns DLOCK_OK,
 * DLOCK_ENOTHELD (already released, expired, or taken by another owner;
 * the server was not changed), DLOCK_EIO, DLOCK_ESERVER, DLOCK_ENOQUORUM,
 * DLOCK_EINVAL (NULL, or a handle orphaned by dlock_client_free).
 * Stops the handle's keepalive first. The handle stays valid (free it).
 */
DLOCK_API int dlock_release(dlock_lock *l);

/*
 * Set the remaining lease to ttl_ms (1..DLOCK_TTL_MAX) if the lock still
 * carries this handle's token. Returns DLOCK_OK (validity restarts from the
 * moment the request was sent), DLOCK_ENOTHELD (the handle is then marked not
 * held), DLOCK_EMAXHOLD (opts.max_hold_ms has passed since the acquisition:
 * no server call is made), DLOCK_EINVAL (bad ttl_ms, NULL, or a handle
 * orphaned by dlock_client_free), DLOCK_EIO, DLOCK_ESERVER,
 * DLOCK_ENOQUORUM, DLOCK_ENOREPLICAS (opts.replicas: fewer replicas than
 * that acknowledged the extension in replica_timeout_ms; the master may
 * have extended it, but the handle's validity is not extended).
 */
DLOCK_API int dlock_extend(dlock_lock *l, int64_t ttl_ms);

/* 1 while the lease is valid by this process's monotonic clock (validity =
 * ttl - elapsed since the request was sent - drift) and the lock was not
 * released or reported lost, else 0 (also once dlock_client_free orphaned
 * the handle). Local: no server call. Any thread. */
DLOCK_API int dlock_held(const dlock_lock *l);

/* A handle's description. Grows at its end: dlock_info_get writes exactly
 * the size the program was compiled with. */
typedef struct dlock_info {
    const char *name;    /* valid while the handle lives */
    size_t name_len;
    const char *token;   /* 32 hex digits, valid while the handle lives */
    int64_t fence;       /* fencing token, 0 when fencing is off */
    int64_t acquired_at; /* wall clock, ms since the epoch */
    int64_t expires_at;  /* wall clock, ms since the epoch, end of local validity
                            (after a DLOCK_EMAXHOLD loss: when the lease runs out) */
    int held;            /* as dlock_held */
} dlock_info;

/* Describe the handle. Never fails for a non-NULL handle (returns
 * DLOCK_EINVAL for NULL arguments). Any thread. A macro over
 * dlock_info_get_sized. */
#define dlock_info_get(l, out) dlock_info_get_sized((l), (out), sizeof(dlock_info))
/* The same for a dlock_info of out_size bytes (1..4096): exactly out_size
 * bytes of *out are written, fields this library does not know are 0. */
DLOCK_API int dlock_info_get_sized(const dlock_lock *l, dlock_info *out, size_t out_size);

/* Free the handle, stopping its keepalive. Does not release the lease (it
 * ends by TTL): call dlock_release first. Accepts NULL, and handles whose
 * client was freed already (orphaned: see dlock_client_free). */
DLOCK_API void dlock_lock_free(dlock_lock *l);

/* ---- Automatic extension (keepalive) ------------------------------------ */

/* Called once, from the keepalive thread (or, for a lock of the
 * non-blocking API, from dlock_client_process), when a kept-alive lease is
 * lost: status DLOCK_ENOTHELD (token gone), DLOCK_EMAXHOLD (opts.max_hold_ms
 * reached: the lease is no longer extended and runs out by itself; see
 * dlock_info's expires_at), or DLOCK_ETIMEDOUT (the lease's validity ran
 * out before an extension was confirmed: no server, or no majority,
 * answered in time). dlock_held(l) is already 0. Do not free or release l
 * from inside the callback. */
typedef void (*dlock_lost_fn)(dlock_lock *l, int status, void *userdata);

/*
 * Keep the lease alive: a background thread (one per client, shared by all
 * its kept-alive locks, with its own connections) extends the lease to its
 * original ttl every interval_ms (0: ttl/3), pipelining the extensions of
 * all locks due together. If an extension fails and the validity runs out,
 * or the token is gone, the lock is marked not held and on_lost is called
 * once; likewise once opts.max_hold_ms has passed since the acquisition
 * (no further extension is made). Returns DLOCK_OK, DLOCK_EINVAL (interval
 * not below the ttl, NULL, or an orphaned handle), DLOCK_ENOTHELD (already not held), DLOCK_EMAXHOLD
 * (max_hold_ms already passed), DLOCK_ENOMEM, DLOCK_EIO (thread or
 * connection could not be started).
 */
DLOCK_API int dlock_keepalive_start(dlock_lock *l, int64_t interval_ms, dlock_lost_fn on_lost,
                                    void *userdata);

/* Stop keeping the lease alive (no-op if not started). Waits for an
 * extension in flight for this lock to finish. Once it returns, on_lost is
 * not called for l (an engine lock's loss found in this process call but
 * not yet reported is dropped). Safe in any order with dlock_release and
 * dlock_lock_free. */
DLOCK_API void dlock_keepalive_stop(dlock_lock *l);

/* ---- Operations by token (for tools and other processes) ---------------- */

/* Release `name` if it carries `token` (32 hex digits, as from dlock_info).
 * Works for a mutex, and for one holder of a semaphore or read-write lock
 * (tried next when the name is held as one: two round trips), not for a
 * multi-lock (release each name's token: its names carry one).
 * Returns DLOCK_OK, DLOCK_ENOTHELD, and the I/O errors. */
DLOCK_API int dlock_release_token(dlock_client *c, const char *name, const char *token);

/* Set the remaining lease of `name` to ttl_ms if it carries `token`, for
 * the same kinds as dlock_release_token.
 * Returns DLOCK_OK, DLOCK_ENOTHELD, DLOCK_EINVAL and the I/O errors. */
DLOCK_API int dlock_extend_token(dlock_client *c, const char *name, const char *token,
                                 int64_t ttl_ms);


/* ---- Semaphores, read-write locks, multi-locks ---------------------------
 *
 * Three more kinds of locks, on the same ground as the mutex: a 128-bit
 * token, a lease, a fence and owner metadata per holder; waiters queued
 * FIFO and woken by the release itself (no polling); a crashed holder's
 * share returns when its lease ends. Each acquire comes in the mutex's
 * three stopping rules (_acquire: retries with backoff; _try_acquire: one
 * attempt; _wait: until a deadline, 0 meaning one try), with the same
 * statuses, events and bounds on blocking as dlock_acquire,
 * dlock_try_acquire and dlock_wait. On a Redlock URL, multi-locks work
 * (each name a Redlock mutex: see dlock_multi_acquire), read-write locks
 * work (held when a majority of the masters grant, as a Redlock mutex),
 * and semaphores return DLOCK_ENOTSUP (a quorum of independent masters
 * cannot count permits; docs/REDLOCK.md says why, kind by kind).
 *
 * The handle is a dlock_lock like a mutex's: dlock_release, dlock_extend,
 * dlock_held, dlock_info_get, dlock_keepalive_start/stop, dlock_lock_free
 * and the async release/extend work on it, for that holder alone (one
 * permit, one reader). dlock_lock_kind says which kind a handle is.
 *
 * A name is one kind of lock at a time: while a name is held as a mutex,
 * a semaphore or rw acquire of it fails with DLOCK_ESERVER
 * (dlock_client_errcode DLOCK_SRV_WRONGTYPE), and the other way round; a
 * semaphore and an rw lock of one name refuse each other the same way. A
 * multi-lock's names ARE mutexes: it excludes, and queues with, plain
 * mutexes of those names. Fences rise per name across kinds (one
 * counter). Key layout and scripts: docs/PROTOCOL.md.
 */

/*
 * A leased semaphore: take one of `permits` (1..DLOCK_PERMITS_MAX)
 * permits of `name` for ttl_ms. Each permit has its own token, lease and
 * fence (every grant increments the name's fencing counter). Waiters are
 * admitted in FIFO order: a release admits the oldest waiter, and a
 * waiter never overtakes an older one that does not fit yet.
 *
 * `permits` is the caller's view: a permit is granted while fewer than
 * `permits` holders (by the count this caller passes) hold one. Callers
 * that disagree, or a change of N while permits are held, are safe in
 * this sense: holders over a lowered N keep their permits until they
 * release or their lease ends (nobody is revoked), and no one is admitted
 * until the count is below the N of the waiter at the queue's head; a
 * raised N admits waiters at the next release or attempt.
 *
 * Errors as dlock_acquire; DLOCK_EINVAL for permits out of range,
 * DLOCK_ESERVER (WRONGTYPE) when the name is held as another kind.
 */
DLOCK_API int dlock_sem_acquire(dlock_client *c, const char *name, int permits, int64_t ttl_ms,
                                dlock_lock **out);
/* As dlock_sem_acquire with exactly one attempt (DLOCK_EBUSY when every
 * permit is taken or older waiters queue); bounds as dlock_try_acquire. */
DLOCK_API int dlock_sem_try_acquire(dlock_client *c, const char *name, int permits,
                                    int64_t ttl_ms, dlock_lock **out);
/* As dlock_sem_acquire, waiting up to timeout_ms (0: one try); statuses
 * and bounds as dlock_wait (DLOCK_ETIMEDOUT). */
DLOCK_API int dlock_sem_wait(dlock_client *c, const char *name, int permits, int64_t timeout_ms,
                             int64_t ttl_ms, dlock_lock **out);

/* The modes of a read-write lock. */
#define DLOCK_SHARED 1    /* many holders at once (readers) */
#define DLOCK_EXCLUSIVE 2 /* one holder, no reader (a writer) */

/*
 * A read-write lock: take `name` shared (DLOCK_SHARED) or exclusive
 * (DLOCK_EXCLUSIVE) for ttl_ms. Fair, FIFO: a waiting writer is not passed
 * by readers that come after it (they queue behind it), and when a writer
 * releases, every reader queued before the next writer is admitted at
 * once. Every exclusive grant increments the name's fencing counter; a
 * reader's fence is the counter's current value (the last writer's
 * fence), so storage can tell which writer's data a reader saw.
 * dlock_lock_shared(l) says which mode a handle holds.
 *
 * Errors as dlock_acquire; DLOCK_EINVAL for another mode, DLOCK_ESERVER
 * (WRONGTYPE) when the name is held as another kind.
 */
DLOCK_API int dlock_rw_acquire(dlock_client *c, const char *name, int mode, int64_t ttl_ms,
                               dlock_lock **out);
/* One attempt (DLOCK_EBUSY), as dlock_try_acquire. */
DLOCK_API int dlock_rw_try_acquire(dlock_client *c, const char *name, int mode, int64_t ttl_ms,
                                   dlock_lock **out);
/* Waiting up to timeout_ms (0: one try), as dlock_wait. */
DLOCK_API int dlock_rw_wait(dlock_client *c, const char *name, int mode, int64_t timeout_ms,
                            int64_t ttl_ms, dlock_lock **out);

/*
 * A multi-lock: take the mutexes names[0..n) (1..DLOCK_MULTI_MAX names;
 * repeats count once) all or nothing, as one handle. On one server or
 * Sentinel, and on Cluster when the names share a hash slot (put a {tag}
 * in them: "{db}users", "{db}orders"), one script takes them all at once.
 * On Cluster otherwise the names are taken in slot groups, in a fixed
 * global order (hash slot, then name bytewise), each group at once, so two
 * callers with overlapping sets never deadlock; the handle is then held
 * once every group is (a group taken early whose lease ran half out is
 * extended at the end; if one was lost, everything is given back and taken
 * again while the deadline allows). On a Redlock set each name is a
 * Redlock mutex of its own (quorum, fence on a majority), taken one after
 * the other in bytewise order, the same global-order rule, and given back
 * if a later one cannot be taken. The names are sorted bytewise:
 * dlock_lock_name_at lists them with their fences; dlock_info_get reports
 * the first. dlock_release, dlock_extend and keepalive act on every name
 * (a release that finds some name no longer held releases the others and
 * returns DLOCK_ENOTHELD). A waiter queues on every name it lacks and
 * keeps the names handed to it while it waits for the rest.
 *
 * Errors as dlock_acquire; DLOCK_EINVAL for bad names or n.
 */
DLOCK_API int dlock_multi_acquire(dlock_client *c, const char *const *names, int n,
                                  int64_t ttl_ms, dlock_lock **out);
/* One attempt (DLOCK_EBUSY if any name is held or queued for), as
 * dlock_try_acquire (per slot group across Cluster slots, per name on
 * Redlock). */
DLOCK_API int dlock_multi_try_acquire(dlock_client *c, const char *const *names, int n,
                                      int64_t ttl_ms, dlock_lock **out);
/* Waiting up to timeout_ms (0: one try), as dlock_wait; across Cluster
 * slots (and on Redlock, per name) the deadline covers every group, plus
 * one command timeout per group. */
DLOCK_API int dlock_multi_wait(dlock_client *c, const char *const *names, int n,
                               int64_t timeout_ms, int64_t ttl_ms, dlock_lock **out);

/* The kind of handle l (DLOCK_KIND_MUTEX for NULL). Any thread. */
DLOCK_API dlock_kind dlock_lock_kind(const dlock_lock *l);
/* 1 if l is a read-write lock held shared, else 0. Any thread. */
DLOCK_API int dlock_lock_shared(const dlock_lock *l);
/* How many names l holds: a multi-lock's count, 1 for the other kinds, 0
 * for NULL. Any thread. */
DLOCK_API int dlock_lock_names(const dlock_lock *l);
/* The i-th name of l (0..dlock_lock_names(l)-1; bytewise order for a
 * multi-lock) and its fence; either out pointer may be NULL. The name is
 * valid while l lives. DLOCK_OK or DLOCK_EINVAL. Any thread. */
DLOCK_API int dlock_lock_name_at(const dlock_lock *l, int i, const char **name,
                                 int64_t *fence);

/* Who holds a name now, whatever its kind: an opaque snapshot read with
 * the accessors below (which return 0 / NULL for NULL or an index out of
 * range), freed with dlock_holders_free. */
typedef struct dlock_holders dlock_holders;

/*
 * Read who holds `name`: its kind, its holders (at most 1000 listed,
 * soonest lease end first; each a dlock_holder with locked 1, its lease
 * left, token, fence, host, pid, label and acquisition time), the waiters
 * and the last fence issued. A free name has no holders (its kind then
 * reads DLOCK_KIND_MUTEX). One round trip (two for a name held as a
 * mutex). On a Redlock set the view is a majority's: a holder is listed
 * when a majority of the masters list its token (with the highest fence
 * and the shortest lease they report), the waiters and the last fence are
 * the most any master reports. Errors: DLOCK_EINVAL, DLOCK_EIO,
 * DLOCK_ESERVER, DLOCK_EPROTO, DLOCK_ENOMEM, DLOCK_ENOQUORUM (Redlock:
 * fewer than a majority answered). On DLOCK_OK *out is the caller's.
 * Blocks at most one command (and connect) timeout per round trip.
 */
DLOCK_API int dlock_holders_get(dlock_client *c, const char *name, dlock_holders **out);
DLOCK_API void dlock_holders_free(dlock_holders *h); /* accepts NULL */
DLOCK_API dlock_kind dlock_holders_kind(const dlock_holders *h);
/* Holders listed (at most 1000) and holding in all. */
DLOCK_API int dlock_holders_count(const dlock_holders *h);
DLOCK_API int dlock_holders_total(const dlock_holders *h);
/* The i-th holder (0..count-1), valid while h lives; NULL out of range. */
DLOCK_API const dlock_holder *dlock_holders_at(const dlock_holders *h, int i);
/* 1 if the i-th holder holds a read-write lock shared. */
DLOCK_API int dlock_holders_shared(const dlock_holders *h, int i);
/* A semaphore: the permits of its last grant (callers pass their own). */
DLOCK_API int dlock_holders_permits(const dlock_holders *h);
/* Processes queued for the name (entries not yet pruned included). */
DLOCK_API int dlock_holders_waiters(const dlock_holders *h);
/* The last fence issued for the name (any kind), 0 if none. */
DLOCK_API int64_t dlock_holders_last_fence(const dlock_holders *h);

/* ---- Non-blocking API (the engine) ---------------------------------------
 *
 * Every operation above also exists as an "async start" that returns at
 * once and reports through a callback. The caller's event loop drives the
 * client: watch dlock_client_fd() for readability, call
 * dlock_client_process() when it is readable or when
 * dlock_client_timeout() has passed (or watch each socket:
 * dlock_client_set_socket_fn). Adapters for libuv, libevent and a plain
 * poll loop are in <dlock/adapters/...>.
 *
 * Many operations, on many names, may be in flight at once; they are
 * pipelined on one connection per server, separate from the connections of
 * the blocking calls. Waiters are woken by the release through one pub/sub
 * connection per client (no connection is parked per waiter). Keepalive of
 * a lock acquired here runs as timers inside the engine (no thread).
 *
 * Every deployment works here, as in the blocking calls. On Sentinel and
 * Cluster, finding the master (the sentinels, then ROLE) and loading the
 * slot map (again after MOVED, a demoted master or a lost connection) are
 * requests on the same connections, driven by dlock_client_process: an
 * operation that needs them waits for them in the loop (see
 * dlock_client_new for their bounds), and fails with their reason
 * (DLOCK_EIO and the sentinels' answers, say) if they find nothing.
 *
 * Threads: as for the rest of the client: one thread at a time, and
 * callbacks run on the thread that calls dlock_client_process.
 */

/* What an operation ended with, passed to its callback. Valid only during
 * the callback. Owned by the library; grows at its end. */
typedef struct dlock_result {
    uint64_t op;                /* the id the start returned */
    int status;                 /* DLOCK_OK or the error, as the blocking twin */
    dlock_lock *lock;           /* acquire ops, DLOCK_OK: a new handle the callback
                                   owns (dlock_lock_free); release/extend: the handle */
    int64_t fence;              /* acquire ops: the fencing token */
    const dlock_holder *holder; /* inspect, DLOCK_OK: what was found */
    const char *detail;         /* what failed, "" on success; never NULL */
    int code;                   /* the server's error kind behind status
                                   (dlock_srv_code), DLOCK_SRV_NONE if none */
} dlock_result;

/* Completion callback: runs exactly once per started operation, from
 * dlock_client_process (never from the start call). It may start new
 * operations and release or free handles, but must not free the client. */
typedef void (*dlock_done_fn)(const dlock_result *res, void *userdata);

/* The async starts. Each validates its arguments and returns DLOCK_OK (the
 * callback will run; *op, when op is not NULL, receives an id for
 * dlock_op_cancel), or an error at once (DLOCK_EINVAL, DLOCK_ENOMEM,
 * DLOCK_ENOTSUP; the callback will not run; dlock_client_errstr says why).
 * The statuses the callback sees are those of the blocking twin, plus
 * DLOCK_ECANCELED. Deadlines: dlock_wait_async ends by timeout_ms plus one
 * command timeout, a discovery included (a wait whose deadline passes
 * while the master or slot map is still being looked for ends with
 * DLOCK_EIO); every other operation by its retries' backoff plus a
 * command (and connect) timeout per round trip, plus on Sentinel and
 * Cluster the discovery it waits for (see dlock_client_new). Never
 * blocks. */
DLOCK_API int dlock_acquire_async(dlock_client *c, const char *name, int64_t ttl_ms,
                                  dlock_done_fn cb, void *userdata, uint64_t *op);
DLOCK_API int dlock_try_acquire_async(dlock_client *c, const char *name, int64_t ttl_ms,
                                      dlock_done_fn cb, void *userdata, uint64_t *op);
DLOCK_API int dlock_wait_async(dlock_client *c, const char *name, int64_t timeout_ms,
                               int64_t ttl_ms, dlock_done_fn cb, void *userdata, uint64_t *op);
DLOCK_API int dlock_inspect_async(dlock_client *c, const char *name, dlock_done_fn cb,
                                  void *userdata, uint64_t *op);
/* Release or extend a handle (from either API). The handle must outlive
 * the operation; the callback's res->lock is it. DLOCK_EINVAL at once for
 * a handle orphaned by dlock_client_free. */
DLOCK_API int dlock_release_async(dlock_lock *l, dlock_done_fn cb, void *userdata, uint64_t *op);
DLOCK_API int dlock_extend_async(dlock_lock *l, int64_t ttl_ms, dlock_done_fn cb,
                                 void *userdata, uint64_t *op);

/* The other kinds, as their blocking twins above (dlock_sem_acquire,
 * dlock_rw_acquire, dlock_multi_acquire & co.), with the rules of the
 * async starts: an error at once, or DLOCK_OK and cb later; res->lock
 * is the new handle and res->fence its (first name's) fence. Release and
 * extend them with dlock_release_async / dlock_extend_async. Never blocks. */
DLOCK_API int dlock_sem_acquire_async(dlock_client *c, const char *name, int permits,
                                      int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                      uint64_t *op);
DLOCK_API int dlock_sem_try_acquire_async(dlock_client *c, const char *name, int permits,
                                          int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                          uint64_t *op);
DLOCK_API int dlock_sem_wait_async(dlock_client *c, const char *name, int permits,
                                   int64_t timeout_ms, int64_t ttl_ms, dlock_done_fn cb,
                                   void *userdata, uint64_t *op);
DLOCK_API int dlock_rw_acquire_async(dlock_client *c, const char *name, int mode,
                                     int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                     uint64_t *op);
DLOCK_API int dlock_rw_try_acquire_async(dlock_client *c, const char *name, int mode,
                                         int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                         uint64_t *op);
DLOCK_API int dlock_rw_wait_async(dlock_client *c, const char *name, int mode,
                                  int64_t timeout_ms, int64_t ttl_ms, dlock_done_fn cb,
                                  void *userdata, uint64_t *op);
DLOCK_API int dlock_multi_acquire_async(dlock_client *c, const char *const *names, int n,
                                        int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                        uint64_t *op);
DLOCK_API int dlock_multi_try_acquire_async(dlock_client *c, const char *const *names, int n,
                                            int64_t ttl_ms, dlock_done_fn cb, void *userdata,
                                            uint64_t *op);
DLOCK_API int dlock_multi_wait_async(dlock_client *c, const char *const *names, int n,
                                     int64_t timeout_ms, int64_t ttl_ms, dlock_done_fn cb,
                                     void *userdata, uint64_t *op);

/* Cancel an operation in flight. Its callback then runs (from the next
 * dlock_client_process) with DLOCK_ECANCELED, unless it had already
 * finished. A cancelled acquire leaves nothing behind: it leaves the wait
 * queue, and a lease it may have obtained is released by token (in the
 * background, pipelined ahead of any later request). Returns DLOCK_OK, or
 * DLOCK_EINVAL for an id that is not in flight (finished, or never
 * started). Never blocks. */
DLOCK_API int dlock_op_cancel(dlock_client *c, uint64_t op);

/* The one file descriptor to watch for readability (an epoll descriptor
 * owned by the client; do not close it). Creates the engine on first use.
 * Returns -1 on failure (dlock_client_errstr says why). Stable for the
 * client's life. Reports nothing while a socket function is set
 * (dlock_client_set_socket_fn: the loop watches each socket instead). */
DLOCK_API int dlock_client_fd(dlock_client *c);

/* Milliseconds until dlock_client_process must be called even if the fd
 * stays quiet: 0 for "now", -1 when nothing is pending. Changes after every
 * start and every process call: ask again each time. */
DLOCK_API int64_t dlock_client_timeout(dlock_client *c);

/* Advance every operation: read and write what the sockets allow, fire due
 * timers, and run the callbacks of finished operations. Never blocks (a
 * host name is looked up on a thread, see "Threads" above: while it is, the
 * descriptor to watch is the look-up's).
 * Returns the number of operations (and kept-alive locks) still in
 * flight, or a negative status. */
DLOCK_API int dlock_client_process(dlock_client *c);

/* Per-socket watching, for event loops that watch sockets themselves
 * (libuv's uv_poll_t, libevent's events): the loop then wakes the client
 * straight from the socket that is ready, not through dlock_client_fd's
 * epoll descriptor (one system call less per round trip). The adapters in
 * <dlock/adapters/libuv.h> and <dlock/adapters/libevent.h> use it. */
#define DLOCK_READABLE 1
#define DLOCK_WRITABLE 2

/* Told that socket fd must now be watched for `events` (DLOCK_READABLE
 * and/or DLOCK_WRITABLE, replacing what was asked before), or, with events
 * 0, no longer watched. The 0 always comes before the client closes fd, so
 * the loop never watches a closed descriptor or one a new socket reuses.
 * Called from inside dlock calls on the thread that drives the client
 * (starts, cancels, dlock_client_process*, dlock_client_set_socket_fn,
 * dlock_client_free); it must not call back into dlock. */
typedef void (*dlock_socket_fn)(dlock_client *c, int fd, int events, void *userdata);

/* Switch the client's non-blocking API to per-socket watching: fn is told
 * at once of every socket already watched, then of every change. From then
 * on dlock_client_fd reports nothing: watch the sockets fn names, call
 * dlock_client_process_fd when one is ready and dlock_client_process when
 * dlock_client_timeout has passed. A new fn (or NULL, back to
 * dlock_client_fd) is set only after the old one was told 0 for each of
 * its sockets: an adapter detaches by setting NULL.
 * Creates the engine on first use. Returns DLOCK_OK, or DLOCK_EINVAL (a
 * NULL client, or after fork), DLOCK_EIO / DLOCK_ENOMEM when the engine
 * cannot be made (dlock_client_errstr says why). Never blocks. Blocking
 * calls and the keepalive thread have engines of their own: not affected. */
DLOCK_API int dlock_client_set_socket_fn(dlock_client *c, dlock_socket_fn fn, void *userdata);

/* dlock_client_process for a loop that watches each socket: fd became
 * ready for `revents` (DLOCK_READABLE / DLOCK_WRITABLE; pass both on an
 * error or hang-up, and the read or write finds out). Reads or writes only
 * that socket, then fires due timers and runs finished operations'
 * callbacks. An fd the client no longer watches is ignored (its timers
 * still run). Same returns, threads and bounds as dlock_client_process. */
DLOCK_API int dlock_client_process_fd(dlock_client *c, int fd, int revents);

/* Tell an event-loop adapter that dlock_client_timeout may have become
 * shorter (called after every async start and cancel, never from inside
 * dlock_client_process). NULL to remove. */
typedef void (*dlock_notify_fn)(dlock_client *c, void *userdata);
DLOCK_API void dlock_client_set_notify(dlock_client *c, dlock_notify_fn fn, void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* DLOCK_H */
