/* timer.c - the engine's timer heap (see timer.h). */
#include "timer.h"

#include <stdlib.h>

static void place(dl_heap *h, int i, dl_timer *t) {
    h->v[i] = t;
    t->idx = i;
}

static void up(dl_heap *h, int i) {
    dl_timer *t = h->v[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (h->v[p]->at_us <= t->at_us)
            break;
        place(h, i, h->v[p]);
        i = p;
    }
    place(h, i, t);
}

static void down(dl_heap *h, int i) {
    dl_timer *t = h->v[i];
    for (;;) {
        int l = 2 * i + 1, m = i;
        int64_t best = t->at_us;
        if (l < h->n && h->v[l]->at_us < best) {
            m = l;
            best = h->v[l]->at_us;
        }
        if (l + 1 < h->n && h->v[l + 1]->at_us < best)
            m = l + 1;
        if (m == i)
            break;
        place(h, i, h->v[m]);
        i = m;
    }
    place(h, i, t);
}

int dl_heap_arm(dl_heap *h, dl_timer *t, int64_t at_us) {
    if (t->idx >= 0) {
        int64_t old = t->at_us;
        t->at_us = at_us;
        if (at_us < old)
            up(h, t->idx);
        else
            down(h, t->idx);
        return 0;
    }
    if (h->n == h->cap) {
        int ncap = h->cap ? h->cap * 2 : 64;
        dl_timer **nv = realloc(h->v, (size_t)ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        h->v = nv;
        h->cap = ncap;
    }
    t->at_us = at_us;
    place(h, h->n++, t);
    up(h, t->idx);
    return 0;
}

void dl_heap_disarm(dl_heap *h, dl_timer *t) {
    int i = t->idx;
    if (i < 0)
        return;
    t->idx = -1;
    h->n--;
    if (i == h->n)
        return;
    dl_timer *moved = h->v[h->n];
    place(h, i, moved);
    up(h, i);
    down(h, moved->idx);
}

void dl_heap_free(dl_heap *h) {
    for (int i = 0; i < h->n; i++)
        h->v[i]->idx = -1;
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
