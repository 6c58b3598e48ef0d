/*
 * roundrobin.c — smooth weighted round robin.
 *
 * Every node carries a running score cur[i]. A pick adds each eligible
 * node's weight to its score, takes the highest score (the first one on a
 * tie), and takes the sum of the eligible weights back from the winner.
 * Over W picks (W the sum of weights) each node wins exactly weight times
 * and the scores return to where they started; a heavy node wins often but
 * never many times in a row, because each win sets it W behind.
 * With weights 7/2/1: A A B A A C A A B A.
 *
 * A node skipped in a pick (down, tried, weight 0) keeps its score frozen
 * and does not count in that pick's sum.
 */
#include "upstream/balancer_int.h"

/*
 * Every node eligible: no flag tests, and the weight sum is known. The
 * running maximum is kept in two chains (even and odd nodes), written as
 * selects: the leader changes unpredictably during a scan, and a single
 * chain makes each node wait on the comparison before it. The chains merge
 * by the same rule as one scan: the higher score, then the lower index.
 */
static int rr_all(torii_balancer_t *b)
{
    int64_t *cur = b->cur;
    const uint32_t *w = b->weight;
    int64_t m0 = INT64_MIN, m1 = INT64_MIN;
    uint32_t a0 = 0, a1 = 0, i = 0, n = b->n, bi;

    for (; i + 1 < n; i += 2) {
        int64_t c0 = cur[i] + w[i], c1 = cur[i + 1] + w[i + 1];
        bool g0 = c0 > m0, g1 = c1 > m1;
        cur[i] = c0;
        cur[i + 1] = c1;
        m0 = g0 ? c0 : m0;
        a0 = g0 ? i : a0;
        m1 = g1 ? c1 : m1;
        a1 = g1 ? i + 1 : a1;
    }
    if (i < n) {
        int64_t c = cur[i] + w[i];
        bool g = c > m0;
        cur[i] = c;
        m0 = g ? c : m0;
        a0 = g ? i : a0;
    }
    bi = m1 > m0 || (m1 == m0 && a1 < a0) ? a1 : a0;
    cur[bi] -= (int64_t)b->wsum;
    return (int)bi;
}

int torii_bal_rr_pick(torii_balancer_t *b, unsigned mask)
{
    int64_t *cur = b->cur;
    const uint32_t *w = b->weight;
    const uint8_t *f = b->flags;
    int64_t best = INT64_MIN, total = 0;
    uint32_t bi = 0;

    if (mask == 0)
        return rr_all(b);
    for (uint32_t i = 0; i < b->n; i++) {
        int64_t c;
        if (f[i] & mask)
            continue;
        c = cur[i] + w[i];
        cur[i] = c;
        total += w[i];
        if (c > best) {
            best = c;
            bi = i;
        }
    }
    cur[bi] -= total;
    return (int)bi;
}
