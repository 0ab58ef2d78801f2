/* call.c - what every request over 1..N servers is read with (see
 * quorum.h): the deciders that settle a call early, and the detail of a
 * call's failures. The requests themselves go out through fan.c. */
#include <stdio.h>
#include <string.h>

#include "quorum.h"

int dl_decided_majority(const dl_call *call) { return call->nok >= call->quorum; }

int dl_settled(const dl_call *call, dl_yes_fn yes) {
    int y = 0, no = 0;
    for (int i = 0; i < call->n; i++) {
        if (!call->done[i])
            continue;
        if (call->status[i] == DLOCK_OK && yes(call->replies[i]))
            y++;
        else
            no++;
    }
    return y >= call->quorum || no > call->n - call->quorum;
}

static void reply_text(const redisReply *r, char *out, size_t n) {
    if (r != NULL && (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS))
        snprintf(out, n, "%.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    else
        snprintf(out, n, "unexpected reply");
}

int dl_call_error(dl_ctx *x, const dl_call *call, const char *what) {
    if (call->n == 1 && call->status[0] != DLOCK_OK && call->why != NULL) {
        /* No server to name: the discovery's own words, as they are. */
        dl_seterr(x, call->status[0], "%s", call->why);
        x->code = call->code[0];
        return call->status[0];
    }
    char detail[sizeof x->err];
    size_t off = 0;
    int first = DLOCK_OK, first_code = 0;
    int nfail = 0;
    detail[0] = '\0';
    for (int i = 0; i < call->n; i++) {
        if (call->status[i] == DLOCK_OK)
            continue;
        char one[260];
        if (call->status[i] == DLOCK_ESERVER && call->replies[i] != NULL)
            reply_text(call->replies[i], one, sizeof one);
        else if (!call->done[i])
            snprintf(one, sizeof one, "no answer yet when the others settled the call");
        else if ((call->why != NULL && call->why_at == i) || call->conns[i] == NULL)
            snprintf(one, sizeof one, "%s",
                     call->why != NULL && call->why_at == i ? call->why : "no server known");
        else
            snprintf(one, sizeof one, "%s", call->conns[i]->err);
        if (first == DLOCK_OK) {
            first = call->status[i];
            first_code = call->code[i];
        }
        nfail++;
        if (off < sizeof detail) {
            int w;
            if (call->status[i] == DLOCK_ESERVER || call->n > 1)
                w = snprintf(detail + off, sizeof detail - off, "%s%s: %s", nfail > 1 ? "; " : "",
                             call->conns[i] != NULL ? call->conns[i]->addr : "?", one);
            else
                w = snprintf(detail + off, sizeof detail - off, "%s", one);
            if (w > 0)
                off += (size_t)w;
        }
    }
    if (first == DLOCK_OK)
        return DLOCK_OK;
    if (call->n > 1) {
        if (call->nok >= call->quorum)
            return DLOCK_OK;
        dl_seterr(x, DLOCK_ENOQUORUM, "%s: %d of %d servers answered, %d needed: %s", what,
                  call->nok, call->n, call->quorum, detail);
        x->code = first_code;
        return DLOCK_ENOQUORUM;
    }
    dl_seterr(x, first, "%s: %s", what, detail);
    x->code = first_code;
    return first;
}
