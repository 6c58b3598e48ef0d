/*
 * phase_times.h — how long the plugin runtime's phases take in a worker,
 * on request: with TORII_PHASE_TIMES=1 in its environment, a worker times
 * every run of a phase (from its start to its end or its first wait: the
 * Lua code of the route's plugins for that phase and torii's way in and
 * out) and, when it exits, writes per phase the number of runs and their
 * mean time to stderr, the clock's own cost taken off.
 *
 * For benchmarks (bench/plugins.sh reports a no-op plugin's cost per phase
 * this way) and for an operator asking what the plugins cost. Off, it
 * costs one branch per phase.
 */
#ifndef TORII_PHASE_TIMES_H
#define TORII_PHASE_TIMES_H

#include <stdbool.h>
#include <stdint.h>

extern bool torii_phase_times_on;

/* Read the environment and, when asked, measure the clock; once per worker. */
void torii_phase_times_init(void);

uint64_t torii_phase_times_now(void);

/* A phase run (TORII_PHASE_*) that took ns, the clock's cost included. */
void torii_phase_times_add(int phase, uint64_t ns);

/* The report, to stderr (nothing when off or when no phase ran). */
void torii_phase_times_report(int worker);

#endif
