/* test_balance.c — the upstream balancer (core/upstream): smooth weighted
 * round robin, least_conn, consistent hashing, ewma; down, tried and
 * weight-0 nodes; the codes when nothing is left; bad input. */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

#include "upstream/balancer.h"

#define MAXN 64

static const char *const types[] = {"roundrobin", "least_conn", "chash", "ewma"};
#define NTYPES (sizeof types / sizeof types[0])

static char names[MAXN][32];
static char err[256];
static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static const torii_balancer_opts_t test_opts = {.seed = 42, .clock = fake_clock};

/* Nodes "10.0.0.<i+1>:80" with the given weights. */
static torii_balancer_t *mk(const char *type, const uint32_t *w, uint32_t n)
{
    torii_bnode_t nodes[MAXN];
    torii_balancer_t *b;
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "10.0.0.%u:80", i + 1);
        nodes[i] = (torii_bnode_t){names[i], w[i]};
    }
    err[0] = '\0';
    b = torii_balancer_new(type, nodes, n, &test_opts, err, sizeof err);
    if (!b)
        fprintf(stderr, "  torii_balancer_new(%s): %s\n", type, err);
    return b;
}

static torii_balancer_t *mk_equal(const char *type, uint32_t n)
{
    uint32_t w[MAXN];
    for (uint32_t i = 0; i < n; i++)
        w[i] = 1;
    return mk(type, w, n);
}

/* A pick as a request makes it: a key, then start and finish at once. */
static int pick_one(torii_balancer_t *b, uint32_t seq, const torii_btried_t *tried, unsigned flags)
{
    char key[32];
    int n = snprintf(key, sizeof key, "client-%u", seq);
    int i = torii_balancer_pick(b, key, (size_t)n, tried, flags);
    if (i >= 0) {
        torii_balancer_start(b, i);
        torii_balancer_finish(b, i, 1000, false);
    }
    return i;
}

/* ---- roundrobin ---- */

TEST(rr_smooth_sequence)
{
    const uint32_t w[] = {70, 20, 10};
    torii_balancer_t *b = mk("roundrobin", w, 3);
    char seq[31];
    CHECK(b != NULL);
    if (!b)
        return;
    for (int k = 0; k < 30; k++)
        seq[k] = (char)('A' + torii_balancer_pick(b, NULL, 0, NULL, 0));
    seq[30] = '\0';
    CHECK_STR(seq, "AABAACAABAAABAACAABAAABAACAABA");
    torii_balancer_free(b);
}

/* Over every cycle of W picks (W the weight sum), each node exactly its
 * weight; no node more than ceil(w / (W - w)) + 1 times in a row. */
static void check_cycles(const uint32_t *w, uint32_t n, uint32_t cycles)
{
    torii_balancer_t *b = mk("roundrobin", w, n);
    uint32_t total = 0, count[MAXN] = {0}, run = 0, maxrun[MAXN] = {0};
    int last = -1;
    bool exact = true;
    if (!b) {
        CHECK(b != NULL);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        total += w[i];
    for (uint32_t c = 0; c < cycles; c++) {
        uint32_t in_cycle[MAXN] = {0};
        for (uint32_t k = 0; k < total; k++) {
            int i = torii_balancer_pick(b, NULL, 0, NULL, 0);
            in_cycle[i]++;
            count[i]++;
            run = i == last ? run + 1 : 1;
            last = i;
            if (run > maxrun[i])
                maxrun[i] = run;
        }
        for (uint32_t i = 0; i < n; i++)
            exact &= in_cycle[i] == w[i];
    }
    CHECK(exact);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t rest = total - w[i], bound = rest ? (w[i] + rest - 1) / rest + 1 : total;
        CHECK_INT(count[i], w[i] * cycles);
        CHECK(maxrun[i] <= bound);
    }
    torii_balancer_free(b);
}

TEST(rr_exact_distribution)
{
    const uint32_t a[] = {70, 20, 10}, c[] = {5, 1, 1}, d[] = {3, 1, 1, 1, 4}, e[] = {1, 1, 1, 1, 1, 1, 1, 1};
    const uint32_t f[] = {100, 99, 1, 37};
    check_cycles(a, 3, 100); /* 10,000 picks: 7,000 / 2,000 / 1,000 */
    check_cycles(c, 3, 50);
    check_cycles(d, 5, 50);
    check_cycles(e, 8, 50);
    check_cycles(f, 4, 5);
}

TEST(rr_equal_weights_rotate)
{
    torii_balancer_t *b = mk_equal("roundrobin", 4);
    bool rotates = true;
    for (int k = 0; k < 40; k++)
        rotates &= torii_balancer_pick(b, NULL, 0, NULL, 0) == k % 4;
    CHECK(rotates);
    torii_balancer_free(b);
}

/* A node down for a while: the others share its turns by weight, and it
 * rejoins without a burst. */
TEST(rr_down_and_back)
{
    const uint32_t w[] = {2, 1, 1};
    torii_balancer_t *b = mk("roundrobin", w, 3);
    uint32_t count[3] = {0};
    torii_balancer_set_down(b, 0, true);
    for (int k = 0; k < 100; k++)
        count[torii_balancer_pick(b, NULL, 0, NULL, 0)]++;
    CHECK_INT(count[0], 0);
    CHECK_INT(count[1], 50);
    CHECK_INT(count[2], 50);
    torii_balancer_set_down(b, 0, false);
    count[0] = count[1] = count[2] = 0;
    for (int k = 0; k < 400; k++)
        count[torii_balancer_pick(b, NULL, 0, NULL, 0)]++;
    CHECK_INT(count[0], 200);
    CHECK_INT(count[1], 100);
    CHECK_INT(count[2], 100);
    torii_balancer_free(b);
}

/* The rule written out plainly: every eligible node adds its weight, the
 * highest score wins (the first on a tie) and gives back the eligible
 * sum; a skipped node's score stays as it was. The balancer parks the
 * scores of skipped nodes to avoid testing flags; over random downs,
 * retries and picks that ignore health, it must choose exactly as this. */
TEST(rr_matches_reference_model)
{
    enum { N = 13 };
    uint32_t w[N];
    int64_t cur[N] = {0};
    bool down[N] = {false};
    uint64_t rng = 7;
    uint32_t mismatches = 0, picks = 0;
    torii_balancer_t *b;
    for (uint32_t i = 0; i < N; i++)
        w[i] = i % 5 == 4 ? 0 : 1 + i * 7 % 9;
    b = mk("roundrobin", w, N);
    CHECK(b != NULL);
    if (!b)
        return;
    for (uint32_t step = 0; step < 20000; step++) {
        torii_btried_t tried = {0};
        bool ignore, any_up = false;
        int64_t best = INT64_MIN, total = 0;
        int want = -1, got;
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (rng % 8 == 0) {
            uint32_t i = (uint32_t)(rng >> 8) % N;
            down[i] = !down[i];
            torii_balancer_set_down(b, (int)i, down[i]);
        }
        for (uint32_t k = (uint32_t)(rng >> 20) % 3; k > 0; k--)
            torii_btried_add(&tried, (int)((rng >> (24 + 4 * k)) % N));
        for (uint32_t i = 0; i < N; i++)
            any_up |= w[i] > 0 && !down[i];
        ignore = !any_up || (rng >> 40) % 16 == 0;
        for (uint32_t i = 0; i < N; i++) {
            bool skip = w[i] == 0 || (down[i] && !ignore);
            for (uint32_t k = 0; k < tried.n; k++)
                skip |= tried.idx[k] == i;
            if (skip)
                continue;
            cur[i] += w[i];
            total += w[i];
            if (cur[i] > best)
                best = cur[i], want = (int)i;
        }
        if (want >= 0)
            cur[want] -= total;
        got = torii_balancer_pick(b, NULL, 0, &tried, ignore ? TORII_BAL_IGNORE_HEALTH : 0);
        if (want >= 0) {
            picks++;
            mismatches += got != want;
        } else {
            mismatches += got >= 0;
        }
    }
    CHECK(picks > 10000);
    CHECK(mismatches == 0);
    if (mismatches)
        fprintf(stderr, "  %u of %u picks differ from the model\n", mismatches, picks);
    torii_balancer_free(b);
}

/* ---- least_conn ---- */

TEST(lc_uneven_load_and_weights)
{
    const uint32_t w[] = {1, 2, 1};
    torii_balancer_t *b = mk("least_conn", w, 3);
    /* active 2, 3, 1: loads 2/1, 3/2, 1/1 */
    torii_balancer_start(b, 0);
    torii_balancer_start(b, 0);
    for (int k = 0; k < 3; k++)
        torii_balancer_start(b, 1);
    torii_balancer_start(b, 2);
    CHECK_INT(torii_balancer_pick(b, NULL, 0, NULL, 0), 2);
    /* active 2, 3, 3: loads 2, 1.5, 3 — the heavier node, although it
     * has the most requests */
    torii_balancer_start(b, 2);
    torii_balancer_start(b, 2);
    CHECK_INT(torii_balancer_pick(b, NULL, 0, NULL, 0), 1);
    /* node 0 finishes both: load 0 */
    torii_balancer_finish(b, 0, 100, false);
    torii_balancer_finish(b, 0, 100, false);
    CHECK_INT(torii_balancer_active(b, 0), 0);
    CHECK_INT(torii_balancer_pick(b, NULL, 0, NULL, 0), 0);
    torii_balancer_free(b);
}

/* Requests that stay open: the active counts follow the weights. */
TEST(lc_concurrent_follows_weights)
{
    const uint32_t w[] = {1, 3, 4};
    torii_balancer_t *b = mk("least_conn", w, 3);
    for (int k = 0; k < 800; k++)
        torii_balancer_start(b, torii_balancer_pick(b, NULL, 0, NULL, 0));
    CHECK_INT(torii_balancer_active(b, 0), 100);
    CHECK_INT(torii_balancer_active(b, 1), 300);
    CHECK_INT(torii_balancer_active(b, 2), 400);
    torii_balancer_free(b);
}

/* Requests that end before the next: every node is tied at 0 each time,
 * and the ties take turns (by weight), rather than one node taking all. */
TEST(lc_ties_take_turns)
{
    const uint32_t w[] = {1, 2, 1};
    torii_balancer_t *b = mk_equal("least_conn", 3);
    uint32_t count[3] = {0};
    bool rotates = true;
    for (uint32_t k = 0; k < 300; k++)
        rotates &= pick_one(b, k, NULL, 0) == (int)(k % 3);
    CHECK(rotates);
    torii_balancer_free(b);

    b = mk("least_conn", w, 3);
    for (uint32_t k = 0; k < 400; k++)
        count[pick_one(b, k, NULL, 0)]++;
    CHECK_INT(count[0], 100);
    CHECK_INT(count[1], 200);
    CHECK_INT(count[2], 100);
    torii_balancer_free(b);
}

/* A node back from down takes its turn with the others, not a burst of
 * every tie until it has caught up on what it missed. */
TEST(lc_rejoin_without_burst)
{
    torii_balancer_t *b = mk_equal("least_conn", 3);
    uint32_t count[3] = {0};
    for (uint32_t k = 0; k < 30; k++)
        pick_one(b, k, NULL, 0);
    torii_balancer_set_down(b, 2, true);
    for (uint32_t k = 0; k < 300; k++)
        count[pick_one(b, k, NULL, 0)]++;
    CHECK_INT(count[0], 150);
    CHECK_INT(count[1], 150);
    torii_balancer_set_down(b, 2, false);
    count[0] = count[1] = 0;
    for (uint32_t k = 0; k < 30; k++)
        count[pick_one(b, k, NULL, 0)]++;
    CHECK(count[0] >= 9 && count[0] <= 11);
    CHECK(count[1] >= 9 && count[1] <= 11);
    CHECK(count[2] >= 9 && count[2] <= 11);
    torii_balancer_free(b);
}

/* A picked node has no lower load (active / weight) than any other node
 * the pick could have chosen. */
static bool lc_is_least(const torii_balancer_t *b, int r, const uint32_t *w, const bool *ok, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++) {
        uint64_t mine = (uint64_t)torii_balancer_active(b, r) * w[j];
        uint64_t theirs = (uint64_t)torii_balancer_active(b, (int)j) * w[r];
        if (ok[j] && theirs < mine)
            return false;
    }
    return true;
}

/* ---- every type, random operations ---- */

static uint64_t test_rng = 0x1234567;

static uint32_t rnd(uint32_t n)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (uint32_t)((test_rng >> 11) % n);
}

/*
 * Random starts, finishes, health changes and picks with random tried
 * sets: every pick returns a node it may choose, or the right code; for
 * least_conn, one of the least loaded.
 */
TEST(random_operations)
{
    enum { N = 12, STEPS = 20000 };
    const uint32_t w[N] = {1, 2, 3, 4, 5, 0, 1, 2, 3, 1, 1, 5};
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk(types[t], w, N);
        bool down[N] = {false}, bad = false, not_least = false;
        int inflight[64];
        uint32_t ninflight = 0, codes[3] = {0};
        for (uint32_t s = 0; s < STEPS && !bad; s++) {
            uint32_t op = rnd(10);
            if (op == 0) {
                /* phases where nodes fail, then recover: all of them, at times */
                uint32_t i = rnd(N);
                down[i] = (s / 2500) % 2 == 1;
                torii_balancer_set_down(b, (int)i, down[i]);
            } else if (op <= 3 && ninflight > 0) {
                uint32_t k = rnd(ninflight);
                torii_balancer_finish(b, inflight[k], rnd(50000), rnd(4) == 0);
                inflight[k] = inflight[--ninflight];
            } else {
                torii_btried_t tried = {0};
                unsigned flags = rnd(4) == 0 ? TORII_BAL_IGNORE_HEALTH : 0;
                bool ok[N], any_live_up = false, any_ok = false;
                char key[16];
                int r, kl = snprintf(key, sizeof key, "k%u", rnd(1000));
                for (uint32_t k = rnd(4); k > 0; k--)
                    torii_btried_add(&tried, (int)rnd(N));
                for (uint32_t j = 0; j < N; j++) {
                    bool was_tried = false;
                    for (uint32_t k = 0; k < tried.n; k++)
                        was_tried |= tried.idx[k] == j;
                    any_live_up |= w[j] > 0 && !down[j];
                    ok[j] = w[j] > 0 && (!down[j] || flags) && !was_tried;
                    any_ok |= ok[j];
                }
                r = torii_balancer_pick(b, key, (size_t)kl, &tried, flags);
                if (r >= 0) {
                    bad |= r >= N || !ok[r];
                    if (t == 1 && r < N)
                        not_least |= !lc_is_least(b, r, w, ok, N);
                    if (ninflight < 64 && !bad) {
                        torii_balancer_start(b, r);
                        inflight[ninflight++] = r;
                    }
                    codes[0]++;
                } else if (r == TORII_BAL_ALL_DOWN) {
                    bad |= flags || any_live_up;
                    codes[1]++;
                } else {
                    bad |= r != TORII_BAL_ALL_TRIED || any_ok || (!flags && !any_live_up);
                    codes[2]++;
                }
            }
        }
        CHECK(!bad);
        CHECK(!not_least);
        CHECK(codes[0] > 1000 && codes[1] > 0 && codes[2] > 0); /* each outcome seen */
        if (bad || not_least || !codes[1] || !codes[2])
            fprintf(stderr, "  (type %s: %u picked, %u all down, %u all tried)\n", types[t], codes[0], codes[1],
                    codes[2]);
        for (uint32_t k = 0; k < ninflight; k++)
            torii_balancer_finish(b, inflight[k], 1, false);
        for (uint32_t j = 0; j < N; j++)
            CHECK_INT(torii_balancer_active(b, (int)j), 0);
        torii_balancer_free(b);
    }
}

/* ---- chash ---- */

#define NKEYS 100000

static void key_of(uint32_t k, char *out, size_t outlen)
{
    snprintf(out, outlen, "10.%u.%u.%u", (k >> 16) & 255, (k >> 8) & 255, k & 255);
}

/* The node name each key maps to (an index into names[]). */
static void map_keys(torii_balancer_t *b, const torii_bnode_t *nodes, uint16_t *out)
{
    char key[32];
    for (uint32_t k = 0; k < NKEYS; k++) {
        key_of(k, key, sizeof key);
        int i = torii_balancer_pick(b, key, strlen(key), NULL, 0);
        /* store the node's number from its name, so that maps of
         * different node lists compare */
        out[k] = (uint16_t)atoi(nodes[i].name + 7);
    }
}

static torii_balancer_t *mk_ring(torii_bnode_t *nodes, const uint32_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "10.0.0.%u:8080", ids[i]);
        nodes[i] = (torii_bnode_t){names[i], 1};
    }
    return torii_balancer_new("chash", nodes, n, NULL, err, sizeof err);
}

TEST(chash_spread_and_removal)
{
    static uint16_t before[NKEYS], after[NKEYS];
    torii_bnode_t nodes[MAXN];
    const uint32_t ten[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, nine[] = {1, 2, 4, 5, 6, 7, 8, 9, 10};
    uint32_t count[16] = {0}, moved = 0, strays = 0, min = NKEYS, max = 0;
    torii_balancer_t *b = mk_ring(nodes, ten, 10);
    CHECK(b != NULL);
    if (!b)
        return;
    map_keys(b, nodes, before);
    torii_balancer_free(b);
    for (uint32_t k = 0; k < NKEYS; k++)
        count[before[k]]++;
    for (uint32_t i = 1; i <= 10; i++) {
        min = count[i] < min ? count[i] : min;
        max = count[i] > max ? count[i] : max;
    }
    /* 10,000 keys each on average; 160 points per node keep them near */
    CHECK(min > 8000);
    CHECK(max < 12000);

    b = mk_ring(nodes, nine, 9);
    map_keys(b, nodes, after);
    torii_balancer_free(b);
    for (uint32_t k = 0; k < NKEYS; k++) {
        moved += before[k] != after[k];
        strays += before[k] != 3 && before[k] != after[k]; /* a key of a surviving node moved */
    }
    CHECK_INT(strays, 0);
    CHECK_INT(moved, count[3]); /* exactly the removed node's keys */
    CHECK(moved > 7000 && moved < 13000);
}

TEST(chash_adding_a_node)
{
    static uint16_t before[NKEYS], after[NKEYS];
    torii_bnode_t nodes[MAXN];
    const uint32_t ten[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, eleven[] = {11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint32_t moved = 0, elsewhere = 0;
    torii_balancer_t *b = mk_ring(nodes, ten, 10);
    map_keys(b, nodes, before);
    torii_balancer_free(b);
    /* the new node first: indexes shift, names do not */
    b = mk_ring(nodes, eleven, 11);
    map_keys(b, nodes, after);
    torii_balancer_free(b);
    for (uint32_t k = 0; k < NKEYS; k++) {
        moved += before[k] != after[k];
        elsewhere += before[k] != after[k] && after[k] != 11;
    }
    CHECK_INT(elsewhere, 0);              /* keys move only to the new node */
    CHECK(moved > 6000 && moved < 12500); /* about 1/11 */
}

TEST(chash_weights)
{
    const uint32_t w[] = {1, 3};
    torii_balancer_t *b = mk("chash", w, 2);
    uint32_t count[2] = {0};
    char key[32];
    for (uint32_t k = 0; k < NKEYS; k++) {
        key_of(k, key, sizeof key);
        count[torii_balancer_pick(b, key, strlen(key), NULL, 0)]++;
    }
    CHECK(count[0] > NKEYS / 4 - 5000 && count[0] < NKEYS / 4 + 5000);
    torii_balancer_free(b);
    /* 100/300 is 1/3 once divided: the same ring as 1/3 */
    {
        const uint32_t w2[] = {100, 300};
        torii_balancer_t *b2 = mk("chash", w2, 2), *b1 = mk("chash", w, 2);
        CHECK_INT(torii_balancer_memory(b2), torii_balancer_memory(b1));
        torii_balancer_free(b1);
        torii_balancer_free(b2);
    }
}

/* A down node's keys go elsewhere (the same place a retry goes), the
 * others stay, and they all come back when it is up again. */
TEST(chash_down_and_tried)
{
    static uint16_t before[NKEYS], during[NKEYS], back[NKEYS];
    torii_bnode_t nodes[MAXN];
    const uint32_t ids[] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t strays = 0, retry_differs = 0, n4 = 0;
    torii_balancer_t *b = mk_ring(nodes, ids, 8);
    char key[32];
    map_keys(b, nodes, before);
    torii_balancer_set_down(b, 3, true); /* "10.0.0.4" */
    map_keys(b, nodes, during);
    torii_balancer_set_down(b, 3, false);
    map_keys(b, nodes, back);
    for (uint32_t k = 0; k < NKEYS; k++) {
        strays += before[k] != 4 && during[k] != before[k];
        n4 += during[k] == 4;
        CHECK(back[k] == before[k]);
    }
    CHECK_INT(strays, 0);
    CHECK_INT(n4, 0);
    for (uint32_t k = 0; k < NKEYS; k += 97) {
        torii_btried_t tried = {0};
        int first, second;
        key_of(k, key, sizeof key);
        first = torii_balancer_pick(b, key, strlen(key), NULL, 0);
        torii_btried_add(&tried, first);
        second = torii_balancer_pick(b, key, strlen(key), &tried, 0);
        retry_differs += second != first && second >= 0;
        if (first == 3)
            CHECK_INT(atoi(nodes[second].name + 7), during[k]); /* next on the ring, both ways */
    }
    CHECK_INT(retry_differs, (NKEYS + 96) / 97);
    torii_balancer_free(b);
}

/* The ring depends on names, not on the order of the nodes. */
TEST(chash_order_independent)
{
    static uint16_t a[NKEYS], z[NKEYS];
    torii_bnode_t nodes[MAXN];
    const uint32_t fwd[] = {1, 2, 3, 4, 5}, rev[] = {5, 4, 3, 2, 1};
    torii_balancer_t *b = mk_ring(nodes, fwd, 5);
    map_keys(b, nodes, a);
    torii_balancer_free(b);
    b = mk_ring(nodes, rev, 5);
    map_keys(b, nodes, z);
    torii_balancer_free(b);
    CHECK(memcmp(a, z, sizeof a) == 0);
}

TEST(chash_ring_size)
{
    uint32_t w[MAXN];
    torii_balancer_t *b;
    for (uint32_t i = 0; i < MAXN; i++)
        w[i] = 1000 + i; /* divisor 1: 64 * ~1000 * 160 points, capped */
    b = mk("chash", w, MAXN);
    CHECK(b != NULL);
    CHECK(torii_balancer_memory(b) < 3u << 20);
    torii_balancer_free(b);
    b = mk_equal("chash", 10);
    CHECK(torii_balancer_memory(b) >= 1600 * 8); /* 160 points of 8 bytes per node */
    torii_balancer_free(b);
}

/* ---- ewma ---- */

static const uint32_t node_latency[] = {10000, 30000, 50000}; /* µs */

/* n sequential requests, each taking its node's latency (or failing
 * quickly for node `failing`); returns how many went to each node. */
static void ewma_run(torii_balancer_t *b, uint32_t n, int failing, uint32_t *count)
{
    for (uint32_t k = 0; k < n; k++) {
        int i = torii_balancer_pick(b, NULL, 0, NULL, 0);
        count[i]++;
        torii_balancer_start(b, i);
        fake_now += 1000;
        if (i == failing)
            torii_balancer_finish(b, i, 100, true);
        else
            torii_balancer_finish(b, i, node_latency[i], false);
    }
}

TEST(ewma_prefers_faster_and_recovers)
{
    torii_balancer_t *b = mk_equal("ewma", 3);
    uint32_t warm[3] = {0}, count[3] = {0}, failing[3] = {0}, rested[3] = {0};
    ewma_run(b, 100, -1, warm);
    ewma_run(b, 1000, -1, count);
    /* the fastest wins whenever it is drawn (2 draws in 3), the slowest
     * only when idle long enough to look fast again */
    CHECK(count[0] > 600);
    CHECK(count[2] < 30);
    CHECK(count[0] > count[1] && count[1] > count[2]);

    /* node 0 fails (fast): penalised at once */
    ewma_run(b, 1, 0, failing);
    ewma_run(b, 500, 0, failing);
    CHECK(failing[0] <= 2);

    /* a minute later its penalty has faded; it answers well again */
    fake_now += 60u * 1000000u;
    ewma_run(b, 1000, -1, rested);
    CHECK(rested[0] > 600);
    torii_balancer_free(b);
}

/* Requests in flight count: 20 ms with 3 of them loses to 30 ms idle;
 * with equal latencies, fewer in flight wins. */
TEST(ewma_active_requests)
{
    torii_balancer_t *b = mk_equal("ewma", 2);
    bool other = true;
    torii_balancer_start(b, 0);
    torii_balancer_finish(b, 0, 20000, false);
    torii_balancer_start(b, 1);
    torii_balancer_finish(b, 1, 30000, false);
    for (int k = 0; k < 50; k++)
        other &= torii_balancer_pick(b, NULL, 0, NULL, 0) == 0;
    for (int k = 0; k < 3; k++)
        torii_balancer_start(b, 0);
    for (int k = 0; k < 50; k++)
        other &= torii_balancer_pick(b, NULL, 0, NULL, 0) == 1;
    CHECK(other);
    torii_balancer_free(b);

    b = mk_equal("ewma", 2);
    other = true;
    torii_balancer_start(b, 1);
    for (int k = 0; k < 50; k++)
        other &= torii_balancer_pick(b, NULL, 0, NULL, 0) == 0; /* no latency yet: both 0 */
    CHECK(other);
    torii_balancer_free(b);
}

/* ---- every type: down, tried, weight 0, nothing left ---- */

TEST(down_nodes_skipped)
{
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk_equal(types[t], 4);
        uint32_t count[4] = {0}, again = 0;
        torii_balancer_set_down(b, 1, true);
        CHECK(torii_balancer_is_down(b, 1));
        for (uint32_t k = 0; k < 2000; k++)
            count[pick_one(b, k, NULL, 0)]++;
        CHECK_INT(count[1], 0);
        CHECK(count[0] > 0 && count[2] > 0 && count[3] > 0);
        torii_balancer_set_down(b, 1, false);
        for (uint32_t k = 0; k < 2000; k++)
            again += pick_one(b, k, NULL, 0) == 1;
        CHECK(again > 0);
        if (count[1] != 0 || again == 0)
            fprintf(stderr, "  (type %s)\n", types[t]);
        torii_balancer_free(b);
    }
}

TEST(tried_nodes_skipped)
{
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk_equal(types[t], 4);
        torii_btried_t tried = {0};
        uint32_t hits = 0;
        for (uint32_t k = 0; k < 500; k++) {
            torii_btried_t one = {0};
            torii_btried_add(&one, (int)(k % 4));
            hits += pick_one(b, k, &one, 0) == (int)(k % 4);
        }
        CHECK_INT(hits, 0);
        torii_btried_add(&tried, 0);
        torii_btried_add(&tried, 2);
        torii_btried_add(&tried, 1);
        torii_btried_add(&tried, 2); /* recorded once */
        CHECK_INT(tried.n, 3);
        CHECK_INT(pick_one(b, 7, &tried, 0), 3);
        torii_btried_add(&tried, 3);
        CHECK_INT(pick_one(b, 7, &tried, 0), TORII_BAL_ALL_TRIED);
        /* the tried marks do not outlive the pick */
        hits = 0;
        for (uint32_t k = 0; k < 400; k++)
            hits |= 1u << pick_one(b, k, NULL, 0);
        CHECK_INT(hits, 0xf);
        torii_balancer_free(b);
    }
}

/* Up nodes all tried, a down one left: ALL_TRIED, and the down one only
 * when health is ignored. */
TEST(tried_and_down)
{
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk_equal(types[t], 3);
        torii_btried_t tried = {0};
        torii_balancer_set_down(b, 2, true);
        torii_btried_add(&tried, 0);
        CHECK_INT(pick_one(b, 1, &tried, 0), 1);
        torii_btried_add(&tried, 1);
        CHECK_INT(pick_one(b, 1, &tried, 0), TORII_BAL_ALL_TRIED);
        CHECK_INT(pick_one(b, 1, &tried, TORII_BAL_IGNORE_HEALTH), 2);
        /* out-of-range entries are ignored */
        tried.idx[tried.n++] = 77;
        CHECK_INT(pick_one(b, 1, &tried, TORII_BAL_IGNORE_HEALTH), 2);
        torii_balancer_free(b);
    }
}

TEST(all_down)
{
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk_equal(types[t], 3);
        torii_btried_t tried = {0};
        uint32_t seen = 0;
        for (int i = 0; i < 3; i++)
            torii_balancer_set_down(b, i, true);
        torii_balancer_set_down(b, 2, true); /* twice: still counted once */
        CHECK_INT(pick_one(b, 1, NULL, 0), TORII_BAL_ALL_DOWN);
        torii_btried_add(&tried, 0);
        CHECK_INT(pick_one(b, 1, &tried, 0), TORII_BAL_ALL_DOWN);
        /* try anyway: every node, minus the tried ones */
        for (uint32_t k = 0; k < 300; k++)
            seen |= 1u << pick_one(b, k, &tried, TORII_BAL_IGNORE_HEALTH);
        CHECK_INT(seen, 0x6);
        torii_balancer_set_down(b, 2, false);
        CHECK_INT(pick_one(b, 1, NULL, 0), 2);
        torii_balancer_free(b);
    }
}

TEST(load_down_bitmap)
{
    torii_balancer_t *b = mk_equal("roundrobin", 40);
    uint64_t bits[1] = {~0ull & ~(1ull << 33)};
    bool only33 = true;
    torii_balancer_load_down(b, bits);
    for (int k = 0; k < 10; k++)
        only33 &= torii_balancer_pick(b, NULL, 0, NULL, 0) == 33;
    CHECK(only33);
    bits[0] = 0;
    torii_balancer_load_down(b, bits);
    CHECK_INT(torii_balancer_pick(b, NULL, 0, NULL, 0), 0);
    CHECK(!torii_balancer_is_down(b, 5));
    torii_balancer_free(b);
}

TEST(single_node)
{
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk_equal(types[t], 1);
        torii_btried_t tried = {0};
        bool always = true;
        for (uint32_t k = 0; k < 50; k++)
            always &= pick_one(b, k, NULL, 0) == 0;
        CHECK(always);
        torii_btried_add(&tried, 0);
        CHECK_INT(pick_one(b, 1, &tried, 0), TORII_BAL_ALL_TRIED);
        torii_balancer_set_down(b, 0, true);
        CHECK_INT(pick_one(b, 1, NULL, 0), TORII_BAL_ALL_DOWN);
        CHECK_INT(pick_one(b, 1, NULL, TORII_BAL_IGNORE_HEALTH), 0);
        torii_balancer_free(b);
    }
}

TEST(weight_zero_never_chosen)
{
    const uint32_t w[] = {1, 0, 1};
    for (size_t t = 0; t < NTYPES; t++) {
        torii_balancer_t *b = mk(types[t], w, 3);
        uint32_t count[3] = {0};
        for (uint32_t k = 0; k < 1000; k++)
            count[pick_one(b, k, NULL, 0)]++;
        CHECK_INT(count[1], 0);
        CHECK(count[0] > 0 && count[2] > 0);
        torii_balancer_set_down(b, 0, true);
        torii_balancer_set_down(b, 2, true);
        torii_balancer_set_down(b, 1, false);
        CHECK_INT(pick_one(b, 1, NULL, 0), TORII_BAL_ALL_DOWN);
        for (uint32_t k = 0; k < 100; k++)
            CHECK(pick_one(b, k, NULL, TORII_BAL_IGNORE_HEALTH) != 1);
        torii_balancer_free(b);
    }
}

/* ---- input ---- */

static const char *new_err(const char *type, const torii_bnode_t *nodes, uint32_t n)
{
    torii_balancer_t *b = torii_balancer_new(type, nodes, n, NULL, err, sizeof err);
    if (b) {
        torii_balancer_free(b);
        return "(created)";
    }
    return err;
}

TEST(bad_input)
{
    torii_bnode_t ok[] = {{"a:80", 1}, {"b:80", 2}};
    torii_bnode_t heavy[] = {{"a:80", 1}, {"b:80", 2000000}};
    torii_bnode_t zeros[] = {{"a:80", 0}, {"b:80", 0}};
    torii_bnode_t unnamed[] = {{"a:80", 1}, {NULL, 1}};
    torii_bnode_t empty_name[] = {{"", 1}};
    torii_bnode_t dup[] = {{"a:80", 1}, {"b:80", 1}, {"a:80", 3}};
    torii_bnode_t *many;
    torii_balance_type_t t;

    CHECK_STR(new_err("roundrobin", ok, 0), "no nodes");
    CHECK_STR(new_err("chash", NULL, 3), "no nodes");
    CHECK_STR(new_err("robin", ok, 2),
              "unknown balancer type \"robin\" (expected roundrobin, least_conn, chash or ewma)");
    CHECK_STR(new_err("", ok, 2), "unknown balancer type \"\" (expected roundrobin, least_conn, chash or ewma)");
    CHECK_STR(new_err("ewma", heavy, 2), "nodes[1] (\"b:80\"): weight 2000000 is above 1000000");
    CHECK_STR(new_err("least_conn", zeros, 2), "every node has weight 0: at least one must weigh more");
    CHECK_STR(new_err("chash", unnamed, 2), "nodes[1]: chash needs a node name (it places the node on the ring)");
    CHECK_STR(new_err("chash", empty_name, 1), "nodes[0]: chash needs a node name (it places the node on the ring)");
    CHECK_STR(new_err("chash", dup, 3), "nodes[2] (\"a:80\"): same name as nodes[0] (chash places nodes by name)");
    CHECK_STR(new_err("roundrobin", unnamed, 2), "(created)"); /* names matter to chash only */
    CHECK_STR(new_err(NULL, ok, 2), "(created)");

    many = calloc(TORII_BAL_MAX_NODES + 1, sizeof *many);
    for (uint32_t i = 0; i <= TORII_BAL_MAX_NODES; i++)
        many[i].weight = 1;
    CHECK_STR(new_err("roundrobin", many, TORII_BAL_MAX_NODES + 1), "too many nodes (65536, at most 65535)");
    CHECK_STR(new_err("least_conn", many, TORII_BAL_MAX_NODES), "(created)");
    free(many);

    CHECK(torii_balance_type_parse("least_conn", 10, &t) && t == TORII_BALANCE_LEAST_CONN);
    CHECK(!torii_balance_type_parse("least_connx", 11, &t));
    CHECK(!torii_balance_type_parse("least", 5, &t));
    CHECK_STR(torii_balance_type_name(TORII_BALANCE_EWMA), "ewma");
    {
        torii_balancer_t *b = torii_balancer_new(NULL, ok, 2, NULL, err, sizeof err);
        CHECK(torii_balancer_type(b) == TORII_BALANCE_ROUNDROBIN);
        CHECK_INT(torii_balancer_count(b), 2);
        torii_balancer_free(b);
    }
}

/* Indexes the balancer never returned, and a finish without its start,
 * change nothing. */
TEST(bad_indexes_ignored)
{
    torii_balancer_t *b = mk_equal("least_conn", 2);
    torii_balancer_start(b, -1);
    torii_balancer_start(b, 2);
    torii_balancer_finish(b, 9, 10, true);
    torii_balancer_set_down(b, -3, true);
    torii_balancer_set_down(b, 2, true);
    torii_balancer_finish(b, 1, 10, false);
    CHECK_INT(torii_balancer_active(b, 1), 0);
    CHECK(!torii_balancer_is_down(b, 2));
    CHECK_INT(pick_one(b, 0, NULL, 0), 0);
    CHECK_INT(pick_one(b, 0, NULL, 0), 1);
    torii_balancer_free(b);
    torii_balancer_free(NULL);
}

int main(void)
{
    RUN(rr_smooth_sequence);
    RUN(rr_exact_distribution);
    RUN(rr_equal_weights_rotate);
    RUN(rr_down_and_back);
    RUN(rr_matches_reference_model);
    RUN(lc_uneven_load_and_weights);
    RUN(lc_concurrent_follows_weights);
    RUN(lc_ties_take_turns);
    RUN(lc_rejoin_without_burst);
    RUN(chash_spread_and_removal);
    RUN(chash_adding_a_node);
    RUN(chash_weights);
    RUN(chash_down_and_tried);
    RUN(chash_order_independent);
    RUN(chash_ring_size);
    RUN(ewma_prefers_faster_and_recovers);
    RUN(ewma_active_requests);
    RUN(down_nodes_skipped);
    RUN(tried_nodes_skipped);
    RUN(tried_and_down);
    RUN(all_down);
    RUN(load_down_bitmap);
    RUN(single_node);
    RUN(weight_zero_never_chosen);
    RUN(random_operations);
    RUN(bad_input);
    RUN(bad_indexes_ignored);
    return unit_report("test_balance");
}
