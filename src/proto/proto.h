/* proto.h - everything that lives in Redis: the key names of a lock and the
 * scripts with the KEYS they declare. No other module builds a key name or
 * names a script's source. The layout is described at the top of
 * scripts.lua.h. */
#ifndef DLOCK_PROTO_H
#define DLOCK_PROTO_H

#include <stddef.h>
#include <stdlib.h>

#include "dlock.h"
#include "quorum.h"

/* Bounds the scripts enforce themselves (docs/SECURITY.md, "What the
 * scripts check"): whoever can run scripts can send any ARGV, and the
 * client's checks do not apply to it. The client's own numbers, checked at
 * compile time where they are defined (scripts.c, acquire_async.c,
 * core.c). */
#define DL_LUA_TTL_MAX 2073600000 /* DLOCK_TTL_MAX: 24 days */
#define DL_LUA_WAIT_MAX 3602100   /* a queue entry's life: a 2 s slice, the 1 h
                                     longest command timeout, a 100 ms margin */
#define DL_LUA_META_MAX 599       /* owner metadata, as the client builds it */
#define DL_LUA_CHAN_MAX 399       /* a wake channel, as the engine names it */
#define DL_LUA_PERMITS_MAX 1000000 /* DLOCK_PERMITS_MAX: a semaphore's permits */

enum dl_script_id { DL_S_ACQUIRE, DL_S_RELEASE, DL_S_EXTEND, DL_S_INSPECT, DL_S_CANCEL,
                    DL_S_FENCE,
                    /* kinds.lua.h: semaphores and read-write locks, multi-locks */
                    DL_S_SEM_ACQUIRE, DL_S_SEM_RELEASE, DL_S_SEM_EXTEND, DL_S_SEM_CANCEL,
                    DL_S_SEM_INSPECT, DL_S_MULTI_ACQUIRE, DL_S_MULTI_RELEASE,
                    DL_S_MULTI_EXTEND, DL_S_MULTI_CANCEL,
                    DL_S_SEM_FENCE, /* Redlock rw locks: a fence to a majority */
                    DL_NSCRIPTS };

/* Keys of one lock: all share the hash tag {name}. Structs of keys hold
 * them in DL_KEYS_SMALL bytes of their own (with the default prefix, the
 * keys of a name up to about 60 bytes); longer ones take one allocation.
 * They point into themselves: never copy one by assignment. */
#define DL_KEYS_SMALL 320
enum { DL_KEY_LOCK, DL_KEY_FENCE, DL_KEY_QUEUE, DL_KEY_QINFO, DL_NKEYS };
typedef struct dl_keys {
    char *buf; /* one allocation holding all keys, or NULL when `small` does */
    const char *k[DL_NKEYS];
    size_t len[DL_NKEYS];
    char small[DL_KEYS_SMALL];
} dl_keys;

/* What a client needs to speak the protocol: the key prefix and the
 * scripts' digests. */
typedef struct dl_proto {
    char *prefix;
    size_t prefix_len;
    char sha[DL_NSCRIPTS][41]; /* EVALSHA digests */
} dl_proto;

/* Copy the prefix and compute the digests. DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_proto_init(dl_proto *p, const char *prefix);
DL_INTERNAL void dl_proto_free(dl_proto *p);

/* Write the key "<prefix>{<name>}<suffix>", the one format of every key,
 * at d (room for dl_key_size bytes, no NUL written); for a name starting
 * with '}' (whose tag "{}" would be empty) a NUL byte follows the '{'
 * (scripts.lua.h, "Keys"). Returns its length. */
DL_INTERNAL size_t dl_key_put(const dl_proto *p, const char *name, size_t name_len,
                              const char *suffix, char *d);
/* The length dl_key_put writes. */
DL_INTERNAL size_t dl_key_size(const dl_proto *p, const char *name, size_t name_len,
                               const char *suffix);
/* Build the keys of lock `name` (dl_key_put). DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_keys_make(const dl_proto *p, const char *name, size_t name_len,
                             dl_keys *out);
static inline void dl_keys_free(dl_keys *k) { free(k->buf); }

/* 0 if the prefix's first '{' is directly followed by '}': Redis Cluster
 * then hashes every key whole, and no name can keep a lock's keys in one
 * slot. 1 otherwise (a prefix with a tag of its own, "p{x}:", puts every
 * lock into that tag's slot, which is allowed). */
DL_INTERNAL int dl_prefix_tag_ok(const dl_proto *p);

/* The SCAN MATCH pattern of the main keys of the locks whose names match
 * `glob` (Redis glob syntax, taken as given) and do not start with '}':
 * "<prefix>{<glob>}" with the prefix's glob metacharacters (* ? [ ] and
 * backslash) escaped. Only main keys end in '}' (no other key of a lock
 * does, scripts.lua.h), so the pattern skips the fence counters and
 * queues. *out is malloc'd (not NUL-terminated); DLOCK_OK or
 * DLOCK_ENOMEM. */
DL_INTERNAL int dl_scan_pattern(const dl_proto *p, const char *glob, size_t glen, char **out,
                                size_t *outlen);

/* Which main keys a SCAN pass takes (dl_key_name's accept). */
enum { DL_KEYS_PLAIN = 1, DL_KEYS_BRACED = 2 /* names starting with '}' */ };
typedef struct dl_scan_pass {
    char *pat; /* SCAN MATCH pattern, malloc'd, not NUL-terminated */
    size_t len;
    int accept; /* DL_KEYS_* */
} dl_scan_pass;

/* The SCAN passes that find the main keys of every lock whose name
 * matches glob: dl_scan_pattern's, and for a glob that can match a name
 * starting with '}' and that pattern does not find exactly, a second one
 * ("<prefix>{<NUL><glob>}"). "*" needs one pass. Sets *n to 1 or 2; the
 * caller frees each pat. DLOCK_OK or DLOCK_ENOMEM (nothing to free). */
DL_INTERNAL int dl_scan_plan(const dl_proto *p, const char *glob, size_t glen,
                             dl_scan_pass out[2], int *n);

/* If `key` is the main key of a lock (as dl_keys_make builds it, the name
 * of 1..DLOCK_NAME_MAX bytes without NUL) of a kind in `accept`, point
 * *name into key and return 1; -1 if it is one, of a kind not accepted;
 * else 0. */
DL_INTERNAL int dl_key_name(const dl_proto *p, const char *key, size_t klen, int accept,
                            const char **name, size_t *name_len);

/* Which ARGV (1-based) of script `id` takes the fence's failover floor
 * (scripts.lua.h, DL_LUA_FENCES): ACQUIRE and SEM_ACQUIRE 10,
 * MULTI_ACQUIRE 9, the RELEASEs 2, SEM_CANCEL and MULTI_CANCEL 3; 0 for
 * the scripts that issue no fence. */
DL_INTERNAL int dl_script_floor_arg(enum dl_script_id id);

/* The Lua source of a script. */
DL_INTERNAL const char *dl_script_source(enum dl_script_id id, size_t *len);

/* Build the EVALSHA request of script `id` on the keys of one lock into
 * argv/lens (DL_REQ_MAX_ARGV entries) and *req, without sending it (the
 * engine sends it through dl_fan_start). DLOCK_EINVAL if it would pass
 * DL_REQ_MAX_ARGV. */
DL_INTERNAL int dl_script_req(const dl_proto *p, enum dl_script_id id, const dl_keys *keys,
                              int nargs, const char **args, const size_t *alens,
                              const char **argv, size_t *lens, dl_req *req);

/* The keys of one script call of the other kinds (keyset.c): a
 * semaphore's or rw lock's DL_SEM_NKEYS (kinds.lua.h), or the DL_NKEYS
 * mutex keys of each of up to DLOCK_MULTI_MAX names in turn (a multi-lock;
 * a mutex's own keys are the set of one name). */
enum { DL_SEM_KEY_MAIN, DL_SEM_KEY_INFO, DL_SEM_KEY_FENCE, DL_SEM_KEY_QUEUE, DL_SEM_KEY_QINFO,
       DL_SEM_NKEYS };
#define DL_KEYSET_MAX (DL_NKEYS * DLOCK_MULTI_MAX)
typedef struct dl_keyset {
    int n;
    const char *k[DL_KEYSET_MAX];
    size_t len[DL_KEYSET_MAX];
    char nk[8]; /* n in decimal, for EVALSHA */
    size_t nk_len;
    char *buf;  /* holds every key, or NULL when `small` does */
    char small[DL_KEYS_SMALL];
} dl_keyset;

/* The keys of semaphore or rw lock `name`. DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_keyset_sem(const dl_proto *p, const char *name, size_t len, dl_keyset *out);
/* The mutex keys of names[0..n) (1 <= n <= DLOCK_MULTI_MAX), name by name.
 * DLOCK_OK, DLOCK_EINVAL (n out of range) or DLOCK_ENOMEM. */
DL_INTERNAL int dl_keyset_mutexes(const dl_proto *p, int n, const char *const *names,
                                  const size_t *lens, dl_keyset *out);
/* Free what a dl_keyset_* call made (a zeroed set is fine). */
DL_INTERNAL void dl_keyset_free(dl_keyset *ks);
/* As dl_script_req, on the keys of ks. */
DL_INTERNAL int dl_keyset_req(const dl_proto *p, enum dl_script_id id, const dl_keyset *ks,
                              int nargs, const char **args, const size_t *alens,
                              const char **argv, size_t *lens, dl_req *req);

/* The pub/sub channel an engine's waiters are woken on: "<prefix>wake:<id>"
 * (id: the engine's random hex id). A channel, not a key: it needs no hash
 * slot. DLOCK_OK, or DLOCK_EINVAL if it does not fit in cap bytes. */
DL_INTERNAL int dl_wake_channel(const dl_proto *p, const char *id, char *out, size_t cap,
                                size_t *len);

#endif
