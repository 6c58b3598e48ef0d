/*
 * budget.h — the CPU budget of a plugin phase (`lua.cpu_budget`).
 *
 * A profiling timer ticks every 10 ms of the worker's CPU time. When the
 * same resume of a request's coroutine has been running for the budget,
 * the tick sets a Lua hook that raises "CPU budget exceeded" at the next
 * interpreted instruction: the plugin's phase fails (500, logged with the
 * plugin and route) and the worker goes on. Code the hook cannot reach — a
 * loop compiled to machine code, a call stuck in C — is stopped the hard
 * way one second later: the worker exits with TORII_BUDGET_EXIT and the
 * master starts a new one; the other workers' requests are not affected.
 */
#ifndef TORII_BUDGET_H
#define TORII_BUDGET_H

#include <lua.h>
#include <stdint.h>

#define TORII_BUDGET_EXIT 70 /* a worker's exit code after a hard stop */

/* In a worker: start the timer (budget_ms 0: no budget). */
void torii_budget_start(uint32_t budget_ms);

/* A later configuration's budget. */
void torii_budget_set(uint32_t budget_ms);

/* Around each entry into Lua for a request (L: the VM's main state). */
void torii_budget_enter(lua_State *L);
void torii_budget_leave(void);

/* Stop the timer (the worker is exiting). */
void torii_budget_stop(void);

#endif
