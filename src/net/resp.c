/* resp.c - reply helpers and server error codes. */
#include "resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *word;
    int code;
} words[] = {
#define DL_SRV_WORD_(name, value) {#name, DL_SRV_##name},
    DLOCK_SRV_MAP(DL_SRV_WORD_)
#undef DL_SRV_WORD_
};

/* 1 if the reply text starts with prefix. */
static int starts(const redisReply *r, const char *prefix) {
    size_t n = strlen(prefix);
    return r->len >= n && memcmp(r->str, prefix, n) == 0;
}

int dl_srv_code(const redisReply *r) {
    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return DL_SRV_NONE;
    /* Older wordings of the same errors, so callers see one code each. */
    if (starts(r, "ERR Protocol error: unauthenticated "))
        return DL_SRV_NOAUTH;
    if (starts(r, "ERR invalid password"))
        return DL_SRV_WRONGPASS;
    size_t w = 0;
    while (w < r->len && r->str[w] != ' ')
        w++;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strlen(words[i].word) == w && memcmp(r->str, words[i].word, w) == 0)
            return words[i].code;
    }
    return DL_SRV_OTHER;
}

const char *dl_srv_code_name(int code) {
    if (code == DL_SRV_NONE)
        return "";
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (words[i].code == code)
            return words[i].word;
    return "error";
}

int dl_srv_code_transient(int code) {
    return code == DL_SRV_LOADING || code == DL_SRV_MASTERDOWN || code == DL_SRV_BUSY ||
           code == DL_SRV_CLUSTERDOWN || code == DL_SRV_NOREPLICAS || code == DL_SRV_TRYAGAIN;
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
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0' && errno == 0)
            return v; /* exact: "9.2e+18" or a value past int64 is not */
    }
    return dflt;
}

const redisReply *dl_elem(const redisReply *r, size_t i) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    return r->element[i];
}
