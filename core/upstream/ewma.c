/*
 * ewma.c — latency-aware choice by "power of two choices".
 *
 * Each node keeps cost[i], an estimate of its response time in µs, as of
 * stamp[i]. A finished try moves it towards the try's latency:
 *   - at once when the try was slower than the estimate (a "peak" EWMA): a
 *     node that turns slow is avoided from its first slow answer, not after
 *     many of them;
 *   - otherwise by a weight exp(-dt / decay), dt being the time since the
 *     last update, so the estimate forgets at the same speed however many
 *     requests arrive (a per-request factor would forget faster under load).
 * A failed try counts as at least `penalty` µs (1 s by default), so a node
 * that refuses connections at once does not look fast.
 *
 * A pick draws two different eligible nodes at random and takes the one
 * with the lower cost * (active + 1), where cost decays towards 0 with the
 * time the node has gone unused: a node avoided after failures looks
 * better the longer it rests, is eventually drawn and wins, and its next
 * answer sets its estimate afresh. Drawing two rather than taking the best
 * of all keeps workers that share stale estimates from piling onto one
 * node. Equal scores (new nodes have cost 0) go to the one with fewer
 * active requests.
 */
#include <math.h>

#include "base/common.h"
#include "upstream/balancer_int.h"
#include "upstream/hash64.h"

#define DRAW_NONE UINT32_MAX

static uint64_t next_random(torii_balancer_t *b)
{
    b->rng += TORII_H64_GOLDEN;
    return torii_h64_mix(b->rng);
}

/* Uniform in [0, n), by scaling 32 random bits rather than a division. */
static uint32_t below(torii_balancer_t *b, uint32_t n)
{
    return (uint32_t)(((next_random(b) >> 32) * n) >> 32);
}

/* The k1-th and k2-th eligible nodes, in one walk. */
static void eligible_at(const torii_balancer_t *b, unsigned mask, uint32_t k1, uint32_t k2, uint32_t *i1, uint32_t *i2)
{
    uint32_t seen = 0, want = TORII_MAX(k1, k2);
    *i1 = *i2 = 0;
    for (uint32_t i = 0; i < b->n && seen <= want; i++) {
        if (b->flags[i] & mask)
            continue;
        if (seen == k1)
            *i1 = i;
        if (seen == k2)
            *i2 = i;
        seen++;
    }
}

/*
 * Two different eligible nodes, uniformly. Drawing among all nodes and
 * drawing again when the node is excluded is uniform among the others and,
 * with a few nodes down or tried, costs no walk; when many are excluded,
 * a few failed draws hand over to counting eligible nodes.
 */
static void draw_two(torii_balancer_t *b, unsigned mask, uint32_t avail, uint32_t *i, uint32_t *j)
{
    uint32_t k1, k2;
    if (mask) {
        uint32_t x = DRAW_NONE, y = DRAW_NONE;
        for (int tries = 0; tries < 8 && y == DRAW_NONE; tries++) {
            uint32_t c = below(b, b->n);
            if ((b->flags[c] & mask) || c == x)
                continue;
            if (x == DRAW_NONE)
                x = c;
            else
                y = c;
        }
        if (y != DRAW_NONE) {
            *i = x;
            *j = y;
            return;
        }
    }
    k1 = below(b, avail);
    k2 = below(b, avail - 1);
    if (k2 >= k1)
        k2++; /* a second draw among the others: never the same node twice */
    if (mask) {
        eligible_at(b, mask, k1, k2, i, j);
    } else {
        *i = k1;
        *j = k2;
    }
}

static double score(const torii_balancer_t *b, uint32_t i, uint64_t now)
{
    double c = b->cost[i];
    if (c > 0 && now > b->stamp[i])
        c *= exp(-(double)(now - b->stamp[i]) / b->decay_us);
    return c * (b->active[i] + 1.0);
}

int torii_bal_ewma_pick(torii_balancer_t *b, unsigned mask, uint32_t avail)
{
    uint32_t i, j;
    uint64_t now;
    double si, sj;

    if (avail == 1) {
        eligible_at(b, mask, 0, 0, &i, &j);
        return (int)i;
    }
    draw_two(b, mask, avail, &i, &j);
    now = b->clock(b->clock_ud);
    si = score(b, i, now);
    sj = score(b, j, now);
    if (si != sj)
        return (int)(si < sj ? i : j);
    return (int)(b->active[j] < b->active[i] ? j : i);
}

void torii_bal_ewma_finish(torii_balancer_t *b, uint32_t i, uint32_t latency_us, bool failed)
{
    uint64_t now = b->clock(b->clock_ud);
    double sample = latency_us, c = b->cost[i];

    if (failed && sample < b->penalty_us)
        sample = b->penalty_us;
    if (sample >= c) {
        c = sample;
    } else {
        double w = now > b->stamp[i] ? exp(-(double)(now - b->stamp[i]) / b->decay_us) : 1.0;
        c = sample + (c - sample) * w;
    }
    b->cost[i] = c;
    b->stamp[i] = now;
}
