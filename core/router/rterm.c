/* rterm.c — the terminal table: Robin Hood probing by node key. */
#include <stdlib.h>
#include <string.h>

#include "router/rterm.h"

#define MIN_CAP 8

static inline uint32_t dist(const rttab_t *t, uint32_t i)
{
    return rt_dist(t, i);
}

void rt_init(rttab_t *t, size_t *bytes)
{
    memset(t, 0, sizeof *t);
    t->bytes = bytes;
}

void rt_free(rttab_t *t)
{
    if (t->slots)
        rn_table_free(t->block, ((size_t)t->mask + 1) * sizeof *t->slots, t->bytes);
    rt_init(t, t->bytes);
}

static void place(rttab_t *t, const rtslot_t *src)
{
    rtslot_t v = *src;
    uint32_t i = (uint32_t)v.key & t->mask, d = 0;
    for (;; i = (i + 1) & t->mask, d++) {
        rtslot_t *s = &t->slots[i];
        uint32_t sd;
        if (!s->serial) {
            *s = v;
            return;
        }
        sd = dist(t, i);
        if (sd < d) {
            rtslot_t out = *s;
            *s = v;
            v = out;
            d = sd;
        }
    }
}

static void grow(rttab_t *t)
{
    rtslot_t *old = t->slots;
    void *oldblock = t->block;
    uint32_t oldcap = old ? t->mask + 1 : 0, cap = oldcap ? oldcap * 2 : MIN_CAP;
    if (cap == 0)
        abort();
    t->slots = rn_table_alloc((size_t)cap * sizeof *t->slots, &t->block, t->bytes);
    t->mask = cap - 1;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].serial)
            place(t, &old[i]);
    rn_table_free(oldblock, (size_t)oldcap * sizeof *old, t->bytes);
}

/* The line's copy of g's first entry and, if they fit, its names. */
static void fill(rtslot_t *s, const struct rpay_s *pay, const rgroup_t *g)
{
    const torii_rentry_t *e = rg_entries(g);
    const torii_rname_t *nm = rg_names(g);
    uint32_t nn = rg_nnames(g);
    s->check = e->check;
    s->captures = e->captures;
    s->route = e->route;
    s->pattern = e->pattern;
    s->methods = e->methods;
    s->group = (uint32_t)((const char *)g - (const char *)pay);
    s->named = nn <= RT_NAMES;
    for (uint32_t i = 0; i < nn && s->named; i++) {
        if (nm[i].off > UINT16_MAX || nm[i].len > UINT16_MAX)
            s->named = 0;
        else
            s->names[i][0] = (uint16_t)nm[i].off, s->names[i][1] = (uint16_t)nm[i].len;
    }
}

void rt_set(rttab_t *t, uint64_t key, uint32_t serial, const struct rpay_s *pay, const rgroup_t *g)
{
    rtslot_t *s = (rtslot_t *)rt_find(t, key, serial), v;
    if (s) {
        fill(s, pay, g);
        return;
    }
    if (!t->slots || ((uint64_t)t->n + 1) * 4 > ((uint64_t)t->mask + 1) * 3)
        grow(t);
    memset(&v, 0, sizeof v);
    v.key = key;
    v.serial = serial;
    fill(&v, pay, g);
    place(t, &v);
    t->n++;
}

void rt_del(rttab_t *t, uint64_t key, uint32_t serial)
{
    rtslot_t *s = (rtslot_t *)rt_find(t, key, serial);
    uint32_t i, j;
    if (!s)
        return;
    if (--t->n == 0) { /* the last one: give the table back */
        rt_free(t);
        return;
    }
    i = (uint32_t)(s - t->slots);
    for (j = (i + 1) & t->mask; t->slots[j].serial && dist(t, j) > 0; j = (j + 1) & t->mask) {
        t->slots[i] = t->slots[j];
        i = j;
    }
    memset(&t->slots[i], 0, sizeof t->slots[i]);
}
