/* rterm.c — the terminal table: Robin Hood probing by node key. */
#include <stdlib.h>
#include <string.h>

#include "router/robin.h"
#include "router/rterm.h"

#define MIN_CAP 8

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

static bool term_used(const void *slot)
{
    return ((const rtslot_t *)slot)->serial != 0;
}

static uint32_t term_home(const void *slot)
{
    return (uint32_t)((const rtslot_t *)slot)->key;
}

static const robin_kind_t term_kind = {sizeof(rtslot_t), term_used, term_home};

static void grow(rttab_t *t)
{
    rtslot_t *old = t->slots;
    void *oldblock = t->block;
    uint32_t oldcap = old ? t->mask + 1 : 0, cap = oldcap ? oldcap * 2 : MIN_CAP;
    if (cap == 0)
        abort();
    t->slots = rn_table_alloc((size_t)cap * sizeof *t->slots, &t->block, t->bytes);
    t->mask = cap - 1;
    robin_rehash(&term_kind, t->slots, t->mask, old, oldcap);
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
    robin_place(&term_kind, t->slots, t->mask, &v);
    t->n++;
}

void rt_del(rttab_t *t, uint64_t key, uint32_t serial)
{
    rtslot_t *s = (rtslot_t *)rt_find(t, key, serial);
    if (!s)
        return;
    if (--t->n == 0) { /* the last one: give the table back */
        rt_free(t);
        return;
    }
    robin_erase(&term_kind, t->slots, t->mask, (uint32_t)(s - t->slots));
}
