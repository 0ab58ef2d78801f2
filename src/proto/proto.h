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

enum dl_script_id { DL_S_ACQUIRE, DL_S_RELEASE, DL_S_EXTEND, DL_S_INSPECT, DL_S_CANCEL,
                    DL_S_FENCE,
                    /* kinds.lua.h: semaphores and read-write locks, multi-locks */
                    DL_S_SEM_ACQUIRE, DL_S_SEM_RELEASE, DL_S_SEM_EXTEND, DL_S_SEM_CANCEL,
                    DL_S_SEM_INSPECT, DL_S_MULTI_ACQUIRE, DL_S_MULTI_RELEASE,
                    DL_S_MULTI_EXTEND, DL_S_MULTI_CANCEL, DL_NSCRIPTS };

/* Keys of one lock: all share the hash tag {name}. */
enum { DL_KEY_LOCK, DL_KEY_FENCE, DL_KEY_QUEUE, DL_KEY_QINFO, DL_NKEYS };
typedef struct dl_keys {
    char *buf; /* one allocation holding all keys, or NULL when `small` does */
    const char *k[DL_NKEYS];
    size_t len[DL_NKEYS];
    char small[4 * (DLOCK_NAME_MAX + 80)];
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

/* Write "<prefix>{<name>}<suffix>", the one format of every key, at d
 * (room for prefix_len + name_len + 2 + strlen(suffix) bytes, no NUL
 * written). Returns its length. */
DL_INTERNAL size_t dl_key_put(const dl_proto *p, const char *name, size_t name_len,
                              const char *suffix, char *d);
/* Build the keys of lock `name`. DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_keys_make(const dl_proto *p, const char *name, size_t name_len,
                             dl_keys *out);
static inline void dl_keys_free(dl_keys *k) { free(k->buf); }

/* The SCAN MATCH pattern of the main keys of the locks whose names match
 * `glob` (Redis glob syntax, taken as given): "<prefix>{<glob>}" with the
 * prefix's glob metacharacters (* ? [ ] and backslash) escaped. Only main keys end in
 * '}' (no other key of a lock does, scripts.lua.h), so the pattern skips the
 * fence counters, queues and wake lists. *out is malloc'd (not
 * NUL-terminated); DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_scan_pattern(const dl_proto *p, const char *glob, size_t glen, char **out,
                                size_t *outlen);
/* If `key` is the main key of a lock ("<prefix>{<name>}", name of
 * 1..DLOCK_NAME_MAX bytes without NUL), point *name into key and return 1;
 * else 0. */
DL_INTERNAL int dl_key_name(const dl_proto *p, const char *key, size_t klen, const char **name,
                            size_t *name_len);

/* The Lua source of a script. */
DL_INTERNAL const char *dl_script_source(enum dl_script_id id, size_t *len);

/* Build the EVALSHA request of script `id` on the keys of one lock into
 * argv/lens (DL_REQ_MAX_ARGV entries) and *req, without sending it (the
 * engine sends it through dl_fan_start). DLOCK_EINVAL if it would pass
 * DL_REQ_MAX_ARGV. */
DL_INTERNAL int dl_script_req(const dl_proto *p, enum dl_script_id id, const dl_keys *keys,
                              int nargs, const char **args, const size_t *alens,
                              const char **argv, size_t *lens, dl_req *req);

/* Run script `id` on the keys of one lock with ARGV args[0..nargs), through
 * the quorum layer (EVALSHA, EVAL after NOSCRIPT). deadline_us 0: one round
 * trip. Returns DLOCK_EINVAL if the request would pass DL_REQ_MAX_ARGV,
 * else as dl_quorum_run. */
DL_INTERNAL int dl_script_call(dl_topo *t, const dl_proto *p, dl_call *call,
                               enum dl_script_id id, const dl_keys *keys, int nargs,
                               const char **args, const size_t *alens, int64_t deadline_us,
                               dl_decided_fn decided);
/* dl_script_call on the keys of `name` (built and freed here). Returns
 * DLOCK_ENOMEM if the keys could not be built, else as dl_script_call. */
DL_INTERNAL int dl_script_named(dl_topo *t, const dl_proto *p, dl_call *call,
                                enum dl_script_id id, const char *name, size_t name_len,
                                int nargs, const char **args, const size_t *alens,
                                int64_t deadline_us, dl_decided_fn decided);

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
    char *buf;  /* holds every key */
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
