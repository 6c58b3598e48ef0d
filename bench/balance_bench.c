/*
 * balance_bench.c — the cost of choosing a node (core/upstream) for each
 * balancer type, over 100 nodes of weights 1 to 5.
 *
 * One step is what a request costs the balancer: a pick, its start, and
 * the finish of the request started 32 steps earlier (so least_conn and
 * ewma see a steady number in flight and ewma keeps learning latencies).
 * chash hashes a client address out of 4096. Three cases: every node up,
 * one node down, and a retry (the first choice in the tried set, which
 * also makes the pick step over it).
 *
 * Each figure is ns per step over RUNS runs of STEPS steps: the median
 * and the minimum (the minimum is the better guide on a busy machine).
 * Times are the thread's CPU time, so that time spent descheduled on a
 * busy machine does not count. Environment: BALANCE_BENCH_RUNS (default 21).
 * Run with `make build/bench/balance_bench && build/bench/balance_bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upstream/balancer.h"

#define NODES    100
#define STEPS    200000
#define KEYS     4096 /* a power of two */
#define INFLIGHT 32   /* a power of two */

static const char *const types[] = {"roundrobin", "least_conn", "chash", "ewma"};

enum { CASE_UP, CASE_DOWN, CASE_RETRY, NCASES };
static const char *const case_names[] = {"all up", "1 down", "retry"};

static char keys[KEYS][16];
static uint8_t keylen[KEYS];
static uint32_t latency[NODES];

/* This thread's CPU time: on a shared machine, the time the benchmark
 * spends descheduled does not count. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x5eed2024c0ffeeULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* One run of STEPS steps; returns ns per step. */
static double run(torii_balancer_t *b, int c)
{
    int inflight[INFLIGHT];
    uint64_t sink = 0;
    double t0;
    for (int k = 0; k < INFLIGHT; k++)
        inflight[k] = -1;
    t0 = now_ns();
    for (uint32_t s = 0; s < STEPS; s++) {
        uint32_t k = s & (KEYS - 1);
        int old = inflight[s & (INFLIGHT - 1)], i;
        if (old >= 0)
            torii_balancer_finish(b, old, latency[old], false);
        if (c == CASE_RETRY) {
            torii_btried_t tried = {0};
            torii_btried_add(&tried, (int)(s % NODES));
            i = torii_balancer_pick(b, keys[k], keylen[k], &tried, 0);
        } else {
            i = torii_balancer_pick(b, keys[k], keylen[k], NULL, 0);
        }
        torii_balancer_start(b, i);
        inflight[s & (INFLIGHT - 1)] = i;
        sink += (uint64_t)i;
    }
    for (int k = 0; k < INFLIGHT; k++)
        if (inflight[k] >= 0)
            torii_balancer_finish(b, inflight[k], latency[inflight[k]], false);
    if (sink == 42)
        printf(" ");
    return (now_ns() - t0) / STEPS;
}

int main(void)
{
    static char names[NODES][24];
    torii_bnode_t nodes[NODES];
    char err[256];
    const char *env = getenv("BALANCE_BENCH_RUNS");
    int runs = env ? atoi(env) : 21;
    double *v;

    if (runs < 1)
        runs = 1;
    v = calloc((size_t)runs, sizeof *v);
    for (int i = 0; i < NODES; i++) {
        snprintf(names[i], sizeof names[i], "10.1.%d.%d:8080", i / 250, i % 250 + 1);
        nodes[i] = (torii_bnode_t){names[i], (uint32_t)(i % 5 + 1)};
        latency[i] = 2000 + rnd() % 20000;
    }
    for (int k = 0; k < KEYS; k++)
        keylen[k] = (uint8_t)snprintf(keys[k], sizeof keys[k], "10.%u.%u.%u", rnd() % 256, rnd() % 256, rnd() % 256);

    printf("balancer: %d nodes (weights 1-5), CPU ns per pick+start+finish, median / min of %d runs of %d\n", NODES,
           runs, STEPS);
    printf("%-11s %10s %18s %18s %18s\n", "type", "memory", case_names[0], case_names[1], case_names[2]);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        double t0 = now_ns(), build_ms;
        torii_balancer_t *b = torii_balancer_new(types[t], nodes, NODES, NULL, err, sizeof err);
        if (!b) {
            fprintf(stderr, "balance_bench: %s: %s\n", types[t], err);
            return 1;
        }
        build_ms = (now_ns() - t0) / 1e6;
        printf("%-11s %8.0fKB", types[t], torii_balancer_memory(b) / 1024.0);
        for (int c = 0; c < NCASES; c++) {
            torii_balancer_set_down(b, 37, c == CASE_DOWN);
            run(b, c); /* warm up */
            for (int r = 0; r < runs; r++)
                v[r] = run(b, c);
            qsort(v, (size_t)runs, sizeof v[0], cmp_double);
            printf(" %9.1f / %6.1f", v[runs / 2], v[0]);
        }
        if (torii_balancer_type(b) == TORII_BALANCE_CHASH)
            printf("   (ring built in %.2f ms)", build_ms);
        printf("\n");
        torii_balancer_free(b);
    }
    free(v);
    return 0;
}
