/* resp.c - reply helpers and server error codes. */
#include "resp.h"

#include <stdlib.h>
#include <string.h>

static const char *const code_names[DL_SRV_NCODES] = {
    [DL_SRV_NONE] = "",
    [DL_SRV_OTHER] = "error",
#define DL_SRV_NAME_(name) [DL_SRV_##name] = #name,
    DL_SRV_CODES(DL_SRV_NAME_)
#undef DL_SRV_NAME_
};

int dl_srv_code(const redisReply *r) {
    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return DL_SRV_NONE;
    size_t w = 0;
    while (w < r->len && r->str[w] != ' ')
        w++;
    for (int c = DL_SRV_OTHER + 1; c < DL_SRV_NCODES; c++) {
        if (strlen(code_names[c]) == w && memcmp(r->str, code_names[c], w) == 0)
            return c;
    }
    return DL_SRV_OTHER;
}

const char *dl_srv_code_name(int code) {
    if (code < 0 || code >= DL_SRV_NCODES)
        return "error";
    return code_names[code];
}

int dl_srv_code_transient(int code) {
    return code == DL_SRV_LOADING || code == DL_SRV_MASTERDOWN || code == DL_SRV_BUSY ||
           code == DL_SRV_CLUSTERDOWN;
}

int64_t dl_reply_int(const redisReply *r, int64_t dflt) {
    if (r == NULL)
        return dflt;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 24) {
        char buf[24];
        memcpy(buf, r->str, r->len);
        buf[r->len] = '\0';
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0')
            return v;
    }
    return dflt;
}

const redisReply *dl_elem(const redisReply *r, size_t i) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    return r->element[i];
}
