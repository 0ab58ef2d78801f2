/* scripts.c - the key names, the Lua sources and their digests, and the
 * one place that turns a script call into an EVALSHA request. */
#include <string.h>

#include "proto.h"
#include "kinds.lua.h"
#include "scripts.lua.h"
#include "sha1.h"

/* The scripts' own bounds are the client's. */
_Static_assert(DL_LUA_TTL_MAX == DLOCK_TTL_MAX, "scripts.lua.h: TTL bound");
_Static_assert(DL_LUA_PERMITS_MAX == DLOCK_PERMITS_MAX, "kinds.lua.h: permits bound");

static const char *const sources[DL_NSCRIPTS] = {
    [DL_S_ACQUIRE] = DL_LUA_ACQUIRE, [DL_S_RELEASE] = DL_LUA_RELEASE,
    [DL_S_EXTEND] = DL_LUA_EXTEND,   [DL_S_INSPECT] = DL_LUA_INSPECT,
    [DL_S_CANCEL] = DL_LUA_CANCEL,   [DL_S_FENCE] = DL_LUA_FENCE,
    [DL_S_SEM_ACQUIRE] = DL_LUA_SEM_ACQUIRE,     [DL_S_SEM_RELEASE] = DL_LUA_SEM_RELEASE,
    [DL_S_SEM_EXTEND] = DL_LUA_SEM_EXTEND,       [DL_S_SEM_CANCEL] = DL_LUA_SEM_CANCEL,
    [DL_S_SEM_INSPECT] = DL_LUA_SEM_INSPECT,     [DL_S_MULTI_ACQUIRE] = DL_LUA_MULTI_ACQUIRE,
    [DL_S_MULTI_RELEASE] = DL_LUA_MULTI_RELEASE, [DL_S_MULTI_EXTEND] = DL_LUA_MULTI_EXTEND,
    [DL_S_MULTI_CANCEL] = DL_LUA_MULTI_CANCEL,   [DL_S_SEM_FENCE] = DL_LUA_SEM_FENCE,
};

const char *dl_script_source(enum dl_script_id id, size_t *len) {
    *len = strlen(sources[id]);
    return sources[id];
}

int dl_script_floor_arg(enum dl_script_id id) {
    switch (id) {
    case DL_S_ACQUIRE:
    case DL_S_SEM_ACQUIRE:
        return 10;
    case DL_S_MULTI_ACQUIRE:
        return 9;
    case DL_S_RELEASE:
    case DL_S_SEM_RELEASE:
    case DL_S_MULTI_RELEASE:
        return 2;
    case DL_S_SEM_CANCEL:
    case DL_S_MULTI_CANCEL:
        return 3;
    default:
        return 0; /* issues no fence */
    }
}

int dl_proto_init(dl_proto *p, const char *prefix) {
    p->prefix = strdup(prefix);
    if (p->prefix == NULL)
        return DLOCK_ENOMEM;
    p->prefix_len = strlen(prefix);
    for (int i = 0; i < DL_NSCRIPTS; i++)
        dl_sha1_hex(sources[i], strlen(sources[i]), p->sha[i]);
    return DLOCK_OK;
}

void dl_proto_free(dl_proto *p) {
    free(p->prefix);
    p->prefix = NULL;
}

/* A name whose keys need the NUL marker: one starting with '}' would leave
 * the hash tag "{}" empty (scripts.lua.h, "Keys"). */
static int braced(const char *name, size_t name_len) { return name_len > 0 && name[0] == '}'; }

size_t dl_key_size(const dl_proto *p, const char *name, size_t name_len, const char *suffix) {
    return p->prefix_len + 1 + (braced(name, name_len) ? 1 : 0) + name_len + 1 + strlen(suffix);
}

size_t dl_key_put(const dl_proto *p, const char *name, size_t name_len, const char *suffix,
                  char *d) {
    char *start = d;
    size_t sl = strlen(suffix);
    memcpy(d, p->prefix, p->prefix_len);
    d += p->prefix_len;
    *d++ = '{';
    if (braced(name, name_len))
        *d++ = '\0';
    memcpy(d, name, name_len);
    d += name_len;
    *d++ = '}';
    memcpy(d, suffix, sl);
    return (size_t)(d - start) + sl;
}

int dl_keys_make(const dl_proto *p, const char *name, size_t name_len, dl_keys *out) {
    static const char *const suffix[DL_NKEYS] = {"", ":fence", ":q", ":qi"};
    size_t total = 0;
    for (int i = 0; i < DL_NKEYS; i++)
        total += dl_key_size(p, name, name_len, suffix[i]);
    char *d = out->small;
    out->buf = NULL;
    if (total > sizeof out->small) {
        out->buf = malloc(total);
        if (out->buf == NULL)
            return DLOCK_ENOMEM;
        d = out->buf;
    }
    for (int i = 0; i < DL_NKEYS; i++) {
        out->k[i] = d;
        out->len[i] = dl_key_put(p, name, name_len, suffix[i], d);
        d += out->len[i];
    }
    return DLOCK_OK;
}

int dl_prefix_tag_ok(const dl_proto *p) {
    const char *open = memchr(p->prefix, '{', p->prefix_len);
    return open == NULL || open + 1 == p->prefix + p->prefix_len || open[1] != '}';
}

/* Glob metacharacters of SCAN MATCH (Redis's stringmatchlen). */
static int glob_special(char ch) {
    return ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\';
}

/* "<prefix>{[NUL]<glob>}", the prefix's glob characters escaped. */
static int pattern(const dl_proto *p, const char *glob, size_t glen, int mark, char **out,
                   size_t *outlen) {
    char *d = malloc(2 * p->prefix_len + glen + 4);
    if (d == NULL)
        return DLOCK_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < p->prefix_len; i++) {
        if (glob_special(p->prefix[i]))
            d[n++] = '\\';
        d[n++] = p->prefix[i];
    }
    d[n++] = '{';
    if (mark)
        d[n++] = '\0';
    memcpy(d + n, glob, glen);
    n += glen;
    d[n++] = '}';
    *out = d;
    *outlen = n;
    return DLOCK_OK;
}

int dl_scan_pattern(const dl_proto *p, const char *glob, size_t glen, char **out,
                    size_t *outlen) {
    return pattern(p, glob, glen, 0, out, outlen);
}

/* Which names starting with '}' a glob can match, and how to find them:
 *   a glob of leading stars followed by a literal (or nothing) matches
 *   NUL + name exactly when it matches name, so the plain pattern finds
 *   them too (that covers "*");
 *   any other glob whose first element can match '}' needs a pattern of
 *   its own; the rest cannot match such a name. */
int dl_scan_plan(const dl_proto *p, const char *glob, size_t glen, dl_scan_pass out[2],
                 int *n) {
    size_t stars = 0;
    while (stars < glen && glob[stars] == '*')
        stars++;
    char first = stars < glen ? glob[stars] : '\0';
    int own = first == '?' || first == '[';
    int plain_too = stars > 0 && !own;
    if (stars == 0)
        own |= first == '}' || (first == '\\' && glen > 1 && glob[1] == '}');
    *n = 0;
    int rc = pattern(p, glob, glen, 0, &out[0].pat, &out[0].len);
    if (rc != DLOCK_OK)
        return rc;
    out[0].accept = DL_KEYS_PLAIN | (plain_too ? DL_KEYS_BRACED : 0);
    *n = 1;
    if (!own)
        return DLOCK_OK;
    rc = pattern(p, glob, glen, 1, &out[1].pat, &out[1].len);
    if (rc != DLOCK_OK) {
        free(out[0].pat);
        *n = 0;
        return rc;
    }
    out[1].accept = DL_KEYS_BRACED;
    *n = 2;
    return DLOCK_OK;
}

int dl_key_name(const dl_proto *p, const char *key, size_t klen, int accept, const char **name,
                size_t *name_len) {
    size_t pl = p->prefix_len;
    if (klen < pl + 3 || memcmp(key, p->prefix, pl) != 0 || key[pl] != '{' ||
        key[klen - 1] != '}')
        return 0;
    const char *s = key + pl + 1;
    size_t n = klen - pl - 2;
    int mark = s[0] == '\0';
    if (mark) {
        s++;
        n--;
    }
    /* Each name has one key: a '}'-name only with the marker, others only
     * without (an unmarked "P{}...}" is an older layout's, not a lock of
     * this protocol's). */
    if (n == 0 || n > DLOCK_NAME_MAX || memchr(s, '\0', n) != NULL || braced(s, n) != mark)
        return 0;
    if (!(accept & (mark ? DL_KEYS_BRACED : DL_KEYS_PLAIN)))
        return -1;
    *name = s;
    *name_len = n;
    return 1;
}

int dl_script_req(const dl_proto *p, enum dl_script_id id, const dl_keys *keys, int nargs,
                  const char **args, const size_t *alens, const char **argv, size_t *lens,
                  dl_req *req) {
    if (3 + DL_NKEYS + nargs > DL_REQ_MAX_ARGV)
        return DLOCK_EINVAL;
    int argc = 0;
    argv[argc] = "EVALSHA";
    lens[argc++] = 7;
    argv[argc] = p->sha[id];
    lens[argc++] = 40;
    argv[argc] = "4";
    lens[argc++] = 1;
    for (int i = 0; i < DL_NKEYS; i++) {
        argv[argc] = keys->k[i];
        lens[argc++] = keys->len[i];
    }
    for (int i = 0; i < nargs; i++) {
        argv[argc] = args[i];
        lens[argc++] = alens[i];
    }
    *req = (dl_req){.argc = argc, .argv = argv, .lens = lens, .key = keys->k[0],
                    .klen = keys->len[0], .script = sources[id],
                    .script_len = strlen(sources[id])};
    return DLOCK_OK;
}

int dl_wake_channel(const dl_proto *p, const char *id, char *out, size_t cap, size_t *len) {
    size_t il = strlen(id);
    if (p->prefix_len + 5 + il + 1 > cap)
        return DLOCK_EINVAL;
    memcpy(out, p->prefix, p->prefix_len);
    memcpy(out + p->prefix_len, "wake:", 5);
    memcpy(out + p->prefix_len + 5, id, il + 1);
    *len = p->prefix_len + 5 + il;
    return DLOCK_OK;
}
