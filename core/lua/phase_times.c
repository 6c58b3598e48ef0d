/* phase_times.c — per-phase run times in a worker (see phase_times.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/ffi.h"
#include "lua/phase_times.h"

#define NPHASES (TORII_PHASE_BALANCER + 1)
#define OUTLIER 1000000u /* ns: a run this long was preempted, not slow */

bool torii_phase_times_on;

static struct {
    uint64_t runs, ns, outliers;
} by_phase[NPHASES];

static uint64_t clock_cost; /* ns two readings take, back to back */

uint64_t torii_phase_times_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void torii_phase_times_init(void)
{
    const char *env = getenv("TORII_PHASE_TIMES");
    torii_phase_times_on = env && *env && strcmp(env, "0") != 0;
    memset(by_phase, 0, sizeof by_phase);
    if (!torii_phase_times_on)
        return;
    /* The least of many back-to-back pairs: what a timed run adds. */
    clock_cost = UINT64_MAX;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = torii_phase_times_now(), b = torii_phase_times_now();
        if (b - a < clock_cost)
            clock_cost = b - a;
    }
}

void torii_phase_times_add(int phase, uint64_t ns)
{
    if (phase < 0 || phase >= NPHASES)
        return;
    if (ns >= OUTLIER) {
        by_phase[phase].outliers++;
        return;
    }
    by_phase[phase].runs++;
    by_phase[phase].ns += ns > clock_cost ? ns - clock_cost : 0;
}

void torii_phase_times_report(int worker)
{
    static const char *const names[NPHASES] = {
        [TORII_PHASE_REWRITE] = "rewrite",
        [TORII_PHASE_ACCESS] = "access",
        [TORII_PHASE_HEADER_FILTER] = "header_filter",
        [TORII_PHASE_LOG] = "log",
        [TORII_PHASE_BODY_FILTER] = "body_filter",
        [TORII_PHASE_TIMER] = "timer",
        [TORII_PHASE_BALANCER] = "balancer",
    };
    char line[1024];
    size_t n = 0;
    if (!torii_phase_times_on)
        return;
    for (int p = 0; p < NPHASES; p++) {
        if (!by_phase[p].runs || !names[p])
            continue;
        n += (size_t)snprintf(line + n, sizeof line - n, " %s %llu runs, mean %.0f ns (%llu over 1 ms left out);",
                              names[p], (unsigned long long)by_phase[p].runs,
                              (double)by_phase[p].ns / (double)by_phase[p].runs,
                              (unsigned long long)by_phase[p].outliers);
        if (n >= sizeof line)
            break;
    }
    if (n > 0)
        fprintf(stderr, "torii: worker %d phase times:%s\n", worker, line);
}
