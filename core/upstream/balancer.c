/* balancer.c — creating a balancer, checking its nodes, health flags,
 * start/finish bookkeeping, and the part of a pick common to every type:
 * which nodes are eligible, and the codes when none is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "upstream/balancer_int.h"

static const char *const type_names[] = {
    [TORII_BALANCE_ROUNDROBIN] = "roundrobin",
    [TORII_BALANCE_LEAST_CONN] = "least_conn",
    [TORII_BALANCE_CHASH] = "chash",
    [TORII_BALANCE_EWMA] = "ewma",
};

bool torii_balance_type_parse(const char *name, size_t len, torii_balance_type_t *type)
{
    for (size_t t = 0; t < sizeof type_names / sizeof type_names[0]; t++) {
        if (strlen(type_names[t]) == len && memcmp(type_names[t], name, len) == 0) {
            *type = (torii_balance_type_t)t;
            return true;
        }
    }
    return false;
}

const char *torii_balance_type_name(torii_balance_type_t type)
{
    return (unsigned)type < sizeof type_names / sizeof type_names[0] ? type_names[type] : "?";
}

void torii_bal_node_label(const torii_bnode_t *nodes, uint32_t i, char *out, size_t outlen)
{
    if (nodes[i].name && nodes[i].name[0])
        snprintf(out, outlen, "nodes[%u] (\"%.80s\")", i, nodes[i].name);
    else
        snprintf(out, outlen, "nodes[%u]", i);
}

static uint64_t default_clock(void *ud)
{
    struct timespec ts;
    (void)ud;
    /* Coarse (a few ms) is plenty for a decay measured in seconds, and
     * costs a fraction of the precise clock. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool check_nodes(const torii_bnode_t *nodes, uint32_t n, char *err, size_t errlen)
{
    char label[128];
    bool any = false;
    if (!nodes || n == 0) {
        snprintf(err, errlen, "no nodes");
        return false;
    }
    if (n > TORII_BAL_MAX_NODES) {
        snprintf(err, errlen, "too many nodes (%u, at most %u)", n, TORII_BAL_MAX_NODES);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].weight > TORII_BAL_MAX_WEIGHT) {
            torii_bal_node_label(nodes, i, label, sizeof label);
            snprintf(err, errlen, "%s: weight %u is above %u", label, nodes[i].weight, TORII_BAL_MAX_WEIGHT);
            return false;
        }
        any |= nodes[i].weight > 0;
    }
    if (!any) {
        snprintf(err, errlen, "every node has weight 0: at least one must weigh more");
        return false;
    }
    return true;
}

/* Carve the per-node arrays out of one allocation, widest first so each
 * stays aligned. */
static bool alloc_arrays(torii_balancer_t *b)
{
    size_t n = b->n;
    bool rr = b->type == TORII_BALANCE_ROUNDROBIN;
    bool lc = b->type == TORII_BALANCE_LEAST_CONN;
    bool ew = b->type == TORII_BALANCE_EWMA;
    size_t bytes = (rr ? n * 20 : 0) + (lc ? n * 8 : 0) + (ew ? n * 16 : 0) + n * 2 * sizeof(uint32_t) + n;
    char *p = calloc(1, bytes);
    if (!p)
        return false;
    b->bytes += bytes;
    if (rr) {
        b->cur = (int64_t *)(void *)p;
        p += n * sizeof(int64_t);
        b->saved = (int64_t *)(void *)p;
        p += n * sizeof(int64_t);
    }
    if (lc) {
        b->picks = (uint64_t *)(void *)p;
        p += n * sizeof(uint64_t);
    }
    if (ew) {
        b->cost = (double *)(void *)p;
        p += n * sizeof(double);
        b->stamp = (uint64_t *)(void *)p;
        p += n * sizeof(uint64_t);
    }
    b->weight = (uint32_t *)(void *)p;
    p += n * sizeof(uint32_t);
    if (rr) {
        b->ew = (uint32_t *)(void *)p;
        p += n * sizeof(uint32_t);
    }
    b->active = (uint32_t *)(void *)p;
    p += n * sizeof(uint32_t);
    b->flags = (uint8_t *)p;
    return true;
}

/* The first array carved out of the allocation (its start). */
static void *arrays_base(const torii_balancer_t *b)
{
    if (b->cur)
        return b->cur;
    if (b->picks)
        return b->picks;
    if (b->cost)
        return b->cost;
    return b->weight;
}

torii_balancer_t *torii_balancer_new(const char *type, const torii_bnode_t *nodes, uint32_t n,
                                     const torii_balancer_opts_t *opts, char *err, size_t errlen)
{
    static const torii_balancer_opts_t no_opts;
    torii_balance_type_t t = TORII_BALANCE_ROUNDROBIN;
    torii_balancer_t *b;

    if (type && !torii_balance_type_parse(type, strlen(type), &t)) {
        snprintf(err, errlen, "unknown balancer type \"%.40s\" (expected roundrobin, least_conn, chash or ewma)", type);
        return NULL;
    }
    if (!check_nodes(nodes, n, err, errlen))
        return NULL;
    if (!opts)
        opts = &no_opts;

    b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->type = t;
    b->n = n;
    b->bytes = sizeof *b;
    if (!alloc_arrays(b)) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        b->weight[i] = nodes[i].weight;
        b->wsum += nodes[i].weight;
        if (nodes[i].weight == 0)
            b->flags[i] = BF_OFF;
        else
            b->nlive++;
    }
    b->nup = b->nlive;
    if (t == TORII_BALANCE_ROUNDROBIN) {
        for (uint32_t i = 0; i < n; i++) {
            b->ew[i] = b->weight[i];
            b->ewsum += b->weight[i];
            torii_bal_rr_sync(b, i);
        }
    }

    b->clock = opts->clock ? opts->clock : default_clock;
    b->clock_ud = opts->clock_ud;
    b->decay_us = (opts->ewma_decay_ms ? opts->ewma_decay_ms : 10000) * 1000.0;
    b->penalty_us = opts->ewma_penalty_us ? opts->ewma_penalty_us : 1000000;
    b->rng = opts->seed ? opts->seed : default_clock(NULL) ^ (uint64_t)(uintptr_t)b;

    if (t == TORII_BALANCE_CHASH && !torii_bal_chash_build(b, nodes, err, errlen)) {
        torii_balancer_free(b);
        return NULL;
    }
    if (t == TORII_BALANCE_LEAST_CONN && !torii_bal_lc_init(b)) {
        torii_balancer_free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return b;
}

void torii_balancer_free(torii_balancer_t *b)
{
    if (!b)
        return;
    torii_bal_chash_free(b);
    torii_bal_lc_free(b);
    free(arrays_base(b));
    free(b);
}

/*
 * The tried nodes are flagged for the duration of the pick, so that each
 * type tests one byte per node instead of searching the list (and
 * least_conn takes them out of its tree); the balancer belongs to one
 * worker, so nothing else sees the flags.
 */
static uint32_t mark_tried(torii_balancer_t *b, const torii_btried_t *tried, unsigned skip)
{
    uint32_t marked = 0, n = TORII_MIN(tried->n, (uint32_t)TORII_BTRIED_MAX);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = tried->idx[k];
        if (i < b->n && !(b->flags[i] & (skip | BF_OFF | BF_TRIED))) {
            b->flags[i] |= BF_TRIED;
            marked++;
            if (b->tree)
                torii_bal_lc_update(b, i);
            if (b->ew)
                torii_bal_rr_sync(b, i);
        }
    }
    return marked;
}

static void unmark_tried(torii_balancer_t *b, const torii_btried_t *tried)
{
    uint32_t n = TORII_MIN(tried->n, (uint32_t)TORII_BTRIED_MAX);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = tried->idx[k];
        if (i < b->n && (b->flags[i] & BF_TRIED)) {
            b->flags[i] &= (uint8_t)~BF_TRIED;
            if (b->tree)
                torii_bal_lc_update(b, i);
            if (b->ew)
                torii_bal_rr_sync(b, i);
        }
    }
}

int torii_balancer_pick(torii_balancer_t *b, const void *key, size_t keylen, const torii_btried_t *tried,
                        unsigned flags)
{
    unsigned down = (flags & TORII_BAL_IGNORE_HEALTH) ? 0 : BF_DOWN;
    uint32_t avail = down ? b->nup : b->nlive;
    uint32_t marked = 0;
    unsigned mask;
    int r;

    if (avail == 0)
        return TORII_BAL_ALL_DOWN;
    if (tried && tried->n > 0) {
        marked = mark_tried(b, tried, down);
        if (marked == avail) {
            unmark_tried(b, tried);
            return TORII_BAL_ALL_TRIED;
        }
        avail -= marked;
    }
    /* mask 0 (every node eligible) lets each type take its fast path. */
    mask = (avail < b->nlive ? down | BF_TRIED : 0) | (b->nlive < b->n ? BF_OFF : 0);

    switch (b->type) {
    case TORII_BALANCE_LEAST_CONN: r = torii_bal_lc_pick(b, mask); break;
    case TORII_BALANCE_CHASH: r = torii_bal_chash_pick(b, key, keylen, mask); break;
    case TORII_BALANCE_EWMA: r = torii_bal_ewma_pick(b, mask, avail); break;
    default: r = torii_bal_rr_pick(b, mask); break;
    }
    if (marked)
        unmark_tried(b, tried);
    return r;
}

void torii_balancer_start(torii_balancer_t *b, int i)
{
    if (i < 0 || (uint32_t)i >= b->n)
        return;
    b->active[i]++;
    if (b->tree) {
        b->picks[i]++;
        torii_bal_lc_update(b, (uint32_t)i);
    }
}

void torii_balancer_finish(torii_balancer_t *b, int i, uint32_t latency_us, bool failed)
{
    if (i < 0 || (uint32_t)i >= b->n)
        return;
    /* A finish without its start must not wrap the count around. */
    if (b->active[i] > 0)
        b->active[i]--;
    if (b->tree)
        torii_bal_lc_update(b, (uint32_t)i);
    if (b->type == TORII_BALANCE_EWMA)
        torii_bal_ewma_finish(b, (uint32_t)i, latency_us, failed);
}

void torii_balancer_set_down(torii_balancer_t *b, int i, bool down)
{
    uint8_t *f;
    if (i < 0 || (uint32_t)i >= b->n)
        return;
    f = &b->flags[i];
    if (down == !!(*f & BF_DOWN))
        return;
    *f ^= BF_DOWN;
    if (b->ew)
        torii_bal_rr_sync(b, (uint32_t)i);
    if (*f & BF_OFF)
        return;
    if (down)
        b->nup--;
    else
        b->nup++;
    if (b->tree) {
        if (!down)
            torii_bal_lc_rejoin(b, (uint32_t)i);
        torii_bal_lc_update(b, (uint32_t)i);
    }
}

void torii_balancer_load_down(torii_balancer_t *b, const uint64_t *bits)
{
    for (uint32_t i = 0; i < b->n; i++)
        torii_balancer_set_down(b, (int)i, (bits[i / 64] >> (i % 64)) & 1);
}

bool torii_balancer_is_down(const torii_balancer_t *b, int i)
{
    return i >= 0 && (uint32_t)i < b->n && (b->flags[i] & BF_DOWN);
}

uint32_t torii_balancer_active(const torii_balancer_t *b, int i)
{
    return i >= 0 && (uint32_t)i < b->n ? b->active[i] : 0;
}

uint32_t torii_balancer_count(const torii_balancer_t *b)
{
    return b->n;
}

torii_balance_type_t torii_balancer_type(const torii_balancer_t *b)
{
    return b->type;
}

size_t torii_balancer_memory(const torii_balancer_t *b)
{
    return b->bytes;
}
