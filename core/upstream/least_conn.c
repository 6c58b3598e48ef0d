/*
 * least_conn.c — the node with the fewest active requests per unit of
 * weight.
 *
 * Order of nodes, best first:
 *   1. active / weight, compared without dividing: a_x * w_y < a_y * w_x
 *      (exact: active counts are 32-bit, weights at most 2^20);
 *   2. on equal loads, requests started / weight, compared the same way:
 *      equal nodes take turns, and idle nodes (all tied at 0) receive
 *      requests in proportion to their weights, exactly over every W
 *      requests (W the weight sum) — a node that had already received its
 *      share of a cycle would have to be below every other, which needs W
 *      requests started first;
 *   3. the lower index.
 * The start counts are 64-bit, so the comparison stays exact for 2^44
 * requests per node per generation (years at any rate); past that, only
 * the order among tied nodes would suffer.
 *
 * Eligible nodes sit at the leaves of a tournament tree whose inner slots
 * hold the better of their two children, so the best node is always at the
 * root: a pick reads it, and start, finish and health changes replay one
 * leaf-to-root path (log2 n comparisons), instead of every pick comparing
 * every node. Nodes the current request tried leave the tree for the
 * duration of its pick. A pick that must also consider down nodes
 * (TORII_BAL_IGNORE_HEALTH while some are down) scans them all instead.
 */
#include <stdlib.h>

#include "upstream/balancer_int.h"

#define LC_NONE UINT32_MAX
#define LC_OUT  (BF_OFF | BF_DOWN | BF_TRIED) /* flags that keep a node out of the tree */

/* Is x strictly better than y (x != y)? */
static bool lc_better(const torii_balancer_t *b, uint32_t x, uint32_t y)
{
    const uint32_t *a = b->active, *w = b->weight;
    uint64_t l = (uint64_t)a[x] * w[y], r = (uint64_t)a[y] * w[x];
    if (l != r)
        return l < r;
    l = b->picks[x] * w[y];
    r = b->picks[y] * w[x];
    if (l != r)
        return l < r;
    return x < y;
}

static uint32_t lc_winner(const torii_balancer_t *b, uint32_t x, uint32_t y)
{
    if (x == LC_NONE)
        return y;
    if (y == LC_NONE)
        return x;
    return lc_better(b, y, x) ? y : x;
}

bool torii_bal_lc_init(torii_balancer_t *b)
{
    uint32_t t = 1;
    while (t < b->n)
        t <<= 1;
    b->tree = malloc(2 * (size_t)t * sizeof *b->tree);
    if (!b->tree)
        return false;
    b->tsize = t;
    b->bytes += 2 * (size_t)t * sizeof *b->tree;
    for (uint32_t j = 0; j < t; j++)
        b->tree[t + j] = j < b->n && !(b->flags[j] & LC_OUT) ? j : LC_NONE;
    for (uint32_t p = t - 1; p >= 1; p--)
        b->tree[p] = lc_winner(b, b->tree[2 * p], b->tree[2 * p + 1]);
    return true;
}

void torii_bal_lc_free(torii_balancer_t *b)
{
    free(b->tree);
}

void torii_bal_lc_update(torii_balancer_t *b, uint32_t i)
{
    uint32_t *tree = b->tree;
    uint32_t p = b->tsize + i;
    tree[p] = b->flags[i] & LC_OUT ? LC_NONE : i;
    for (p >>= 1; p >= 1; p >>= 1) {
        uint32_t old = tree[p], win = lc_winner(b, tree[2 * p], tree[2 * p + 1]);
        tree[p] = win;
        /* Same winner, and not the node that changed: the slots above
         * compare exactly what they compared before. */
        if (win == old && win != i)
            break;
    }
}

/*
 * A node back from down resumes at the others' pace: its start count is
 * raised to where the least advanced up node stands (per unit of weight),
 * or it would win every tie until it had caught up on all it missed.
 */
void torii_bal_lc_rejoin(torii_balancer_t *b, uint32_t i)
{
    const uint32_t *w = b->weight;
    uint32_t m = LC_NONE;
    uint64_t front;
    for (uint32_t j = 0; j < b->n; j++) {
        if (j == i || (b->flags[j] & (BF_OFF | BF_DOWN)))
            continue;
        if (m == LC_NONE || b->picks[j] * w[m] < b->picks[m] * w[j])
            m = j;
    }
    if (m == LC_NONE)
        return;
    front = (b->picks[m] * w[i] + w[m] - 1) / w[m];
    if (front > b->picks[i])
        b->picks[i] = front;
}

int torii_bal_lc_pick(torii_balancer_t *b, unsigned mask)
{
    uint32_t best = LC_NONE;
    /* The tree holds up nodes only; down ones count here only when
     * health is ignored (no BF_DOWN in the mask) and some are down. */
    if ((mask & BF_DOWN) || b->nup == b->nlive)
        return (int)b->tree[1];
    for (uint32_t i = 0; i < b->n; i++)
        if (!(b->flags[i] & mask) && (best == LC_NONE || lc_better(b, i, best)))
            best = i;
    return (int)best;
}
