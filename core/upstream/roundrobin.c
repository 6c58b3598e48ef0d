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
 * and does not count in that pick's sum. Such a node is "parked": its
 * score is set aside and replaced by a value no real score reaches, and
 * its weight in ew[] is 0. A pick then runs the same branch-free scan over
 * every node whatever is down or tried (a skip test per node costs a
 * mispredicted branch or a longer dependency chain, a third of the pick).
 * Only a pick that takes down nodes too (every node down: try anyway)
 * brings their scores back for its scan.
 */
#include "upstream/balancer_int.h"

/* Below any score a node can reach, and constant (its ew is 0). */
#define PARKED_SCORE (INT64_MIN / 2)

void torii_bal_rr_sync(torii_balancer_t *b, uint32_t i)
{
    uint8_t *f = &b->flags[i];
    bool park = (*f & (BF_DOWN | BF_TRIED | BF_OFF)) != 0;
    if (park == !!(*f & BF_PARKED))
        return;
    if (park) {
        b->saved[i] = b->cur[i];
        b->cur[i] = PARKED_SCORE;
        b->ewsum -= b->ew[i];
        b->ew[i] = 0;
    } else {
        b->cur[i] = b->saved[i];
        b->ew[i] = b->weight[i];
        b->ewsum += b->ew[i];
    }
    *f ^= BF_PARKED;
}

/*
 * Every unparked node eligible: no flag tests, and the weight sum is known. The
 * running maximum is kept in two chains (even and odd nodes), written as
 * selects: the leader changes unpredictably during a scan, and a single
 * chain makes each node wait on the comparison before it. The chains merge
 * by the same rule as one scan: the higher score, then the lower index.
 */
static int rr_all(torii_balancer_t *b)
{
    int64_t *cur = b->cur;
    const uint32_t *w = b->ew;
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
    cur[bi] -= b->ewsum;
    return (int)bi;
}

/*
 * Down nodes eligible too (every node down: try anyway): their real
 * scores come back for a scan that tests each node's flags.
 */
static int rr_with_down(torii_balancer_t *b, unsigned mask)
{
    int64_t *cur = b->cur;
    const uint32_t *w = b->weight;
    const uint8_t *f = b->flags;
    int64_t best = INT64_MIN, total = 0;
    uint32_t bi = 0;

    for (uint32_t i = 0; i < b->n; i++) {
        int64_t c;
        if (f[i] & mask)
            continue;
        c = ((f[i] & BF_PARKED) ? b->saved[i] : cur[i]) + w[i];
        cur[i] = c;
        total += w[i];
        if (c > best) {
            best = c;
            bi = i;
        }
    }
    cur[bi] -= total;
    for (uint32_t i = 0; i < b->n; i++)
        if ((f[i] & BF_PARKED) && !(f[i] & mask)) {
            b->saved[i] = cur[i];
            cur[i] = PARKED_SCORE;
        }
    return (int)bi;
}

int torii_bal_rr_pick(torii_balancer_t *b, unsigned mask)
{
    /* The parked nodes are the down, tried and off ones; the mask always
     * excludes the tried and off ones, and the down ones unless the pick
     * ignores health. */
    if (!(mask & BF_DOWN) && b->nup < b->nlive)
        return rr_with_down(b, mask);
    return rr_all(b);
}
