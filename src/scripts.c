/* scripts.c - the Lua sources and their digests. */
#include <string.h>

#include "internal.h"
#include "scripts.lua.h"
#include "sha1.h"

static const char *const sources[DL_NSCRIPTS] = {
    [DL_S_ACQUIRE] = DL_LUA_ACQUIRE, [DL_S_RELEASE] = DL_LUA_RELEASE,
    [DL_S_EXTEND] = DL_LUA_EXTEND,   [DL_S_INSPECT] = DL_LUA_INSPECT,
    [DL_S_CANCEL] = DL_LUA_CANCEL,   [DL_S_FENCE] = DL_LUA_FENCE,
};

const char *dl_script_source(enum dl_script_id id, size_t *len) {
    *len = strlen(sources[id]);
    return sources[id];
}

void dl_scripts_digest(char sha[][41]) {
    for (int i = 0; i < DL_NSCRIPTS; i++)
        dl_sha1_hex(sources[i], strlen(sources[i]), sha[i]);
}
