/* rexact.c — the exact-shape table. */
#include <stdlib.h>
#include <string.h>

#include "router/rexact.h"
#include "router/robin.h"

#define MIN_CAP 8

void rx_init(rxtab_t *t, size_t *bytes)
{
    memset(t, 0, sizeof *t);
    t->bytes = bytes;
}

static size_t filter_words(uint32_t cap)
{
    return cap >= RX_FILTER_MIN ? cap / 8 : 0; /* eight bits a slot */
}

static void slots_free(rxtab_t *t)
{
    if (t->slots) {
        rn_table_free(t->block, ((size_t)t->mask + 1) * sizeof *t->slots, t->bytes);
        *t->bytes -= filter_words(t->mask + 1) * sizeof *t->filter;
        free(t->filter);
    }
    t->slots = NULL;
    t->block = NULL;
    t->filter = NULL;
    t->mask = 0;
}

static void filter_add(rxtab_t *t, uint32_t h)
{
    if (t->filter)
        t->filter[rx_filter_word(t, h)] |= rx_filter_bits(h);
}

void rx_free(rxtab_t *t)
{
    if (t->slots)
        for (uint32_t i = 0; i <= t->mask; i++)
            rpay_free(t->bytes, t->slots[i].pay);
    slots_free(t);
    t->n = 0;
}

static bool exact_used(const void *slot)
{
    return ((const rxslot_t *)slot)->hash != 0;
}

static uint32_t exact_home(const void *slot)
{
    return ((const rxslot_t *)slot)->hash;
}

static const robin_kind_t exact_kind = {sizeof(rxslot_t), exact_used, exact_home};

static void grow(rxtab_t *t)
{
    rxslot_t *old = t->slots;
    void *oldblock = t->block;
    uint32_t oldcap = old ? t->mask + 1 : 0, cap = oldcap ? oldcap * 2 : MIN_CAP;
    if (cap == 0)
        abort();
    size_t words = filter_words(cap), oldwords = old ? filter_words(oldcap) : 0;
    t->slots = rn_table_alloc((size_t)cap * sizeof *t->slots, &t->block, t->bytes);
    t->mask = cap - 1;
    robin_rehash(&exact_kind, t->slots, t->mask, old, oldcap);
    /* The filter anew, from the shapes there are (removed ones drop out). */
    free(t->filter);
    t->filter = NULL;
    *t->bytes += (words - oldwords) * sizeof *t->filter;
    if (words) {
        if (!(t->filter = calloc(words, sizeof *t->filter)))
            abort();
        t->fshift = 32 - (uint32_t)__builtin_ctzll(words);
        for (uint32_t i = 0; i < cap; i++)
            if (t->slots[i].hash)
                filter_add(t, t->slots[i].hash);
    }
    rn_table_free(oldblock, (size_t)oldcap * sizeof *old, t->bytes);
}

static rxslot_t *slot_of(const rxtab_t *t, const char *p, size_t n, uint32_t h)
{
    return (rxslot_t *)rx_find(t, p, n, h);
}

/* The slot's copy of an entry (and of the text, if it fits). */
static void copy_in(rxslot_t *x, const rshape_t *s, const torii_rentry_t *e)
{
    x->len = s->len <= RX_INLINE ? (uint8_t)s->len : 0;
    memcpy(x->text, s->text, x->len);
    x->route = e->route;
    x->methods = e->methods;
    x->check = e->check;
}

/* After the payload changed: copy its first entry in, and let the slot
 * hold the shape alone when it can. */
static void refresh(rxtab_t *t, rxslot_t *x, const rshape_t *s)
{
    const rgroup_t *g = rpay_first(x->pay);
    copy_in(x, s, rg_entries(g));
    if (g->n == 1 && x->len) {
        rpay_free(t->bytes, x->pay);
        x->pay = NULL;
    }
}

/* The entry a slot holds alone, as a payload would hold it. */
static torii_rentry_t held(const rxslot_t *x)
{
    return (torii_rentry_t){.route = x->route,
                            .priority = x->route->priority,
                            .order = x->route->order,
                            .methods = x->methods,
                            .check = x->check};
}

void rx_add(rxtab_t *t, const rshape_t *s, const torii_rentry_t *e)
{
    uint32_t h = rx_hash(s->text, s->len);
    rxslot_t *x = slot_of(t, s->text, s->len, h), v;
    if (x) {
        if (!x->pay) {
            torii_rentry_t first = held(x);
            rpay_add(t->bytes, &x->pay, s, &first, NULL);
        }
        rpay_add(t->bytes, &x->pay, s, e, NULL);
        refresh(t, x, s);
        return;
    }
    if (!t->slots || ((uint64_t)t->n + 1) * 4 > ((uint64_t)t->mask + 1) * 3)
        grow(t);
    memset(&v, 0, sizeof v);
    v.hash = h;
    copy_in(&v, s, e);
    if (!v.len) /* a long text lives in a payload */
        rpay_add(t->bytes, &v.pay, s, e, NULL);
    robin_place(&exact_kind, t->slots, t->mask, &v);
    filter_add(t, h);
    t->n++;
}

void rx_remove(rxtab_t *t, const rshape_t *s, const torii_route_conf_t *route)
{
    rxslot_t *x = slot_of(t, s->text, s->len, rx_hash(s->text, s->len));
    if (!x)
        return;
    if (x->pay) {
        rpay_remove(t->bytes, &x->pay, s, route);
        if (x->pay) {
            refresh(t, x, s);
            return;
        }
    } else if (x->route != route) {
        return;
    }
    if (--t->n == 0) { /* the last one: give the table back */
        slots_free(t);
        return;
    }
    robin_erase(&exact_kind, t->slots, t->mask, (uint32_t)(x - t->slots));
}
