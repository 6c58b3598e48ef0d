/* budget.c — the CPU budget of a plugin phase (see budget.h). */
#include <lauxlib.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "lua/budget.h"

#define TICK_MS      10   /* CPU time between two checks */
#define HARD_STOP_MS 1000 /* past the budget, when the hook could not stop it */

static lua_State *volatile running; /* the VM in a request's phase, or NULL */
static volatile uint32_t ticks;     /* ticks since it entered */
static volatile uint32_t limit;     /* budget in ticks, 0: none */
static volatile bool hooked;        /* the hook is set */
static bool started;

static void on_budget(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    hooked = false;
    luaL_error(L, "CPU budget of %d ms exceeded", (int)(limit * TICK_MS));
}

/* Only async-signal-safe work here: lua_sethook is made for it. */
static void on_tick(int sig)
{
    lua_State *L = running;
    (void)sig;
    if (!L || limit == 0)
        return;
    ticks++;
    if (ticks == limit) {
        hooked = true;
        lua_sethook(L, on_budget, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    } else if (ticks >= limit + HARD_STOP_MS / TICK_MS) {
        static const char msg[] = "torii: a plugin overran its CPU budget where it cannot be interrupted "
                                  "(compiled loop or C call): worker exits\n";
        torii_log_emergency_write(msg, sizeof msg - 1);
        _exit(TORII_BUDGET_EXIT);
    }
}

void torii_budget_set(uint32_t budget_ms)
{
    limit = budget_ms ? (budget_ms + TICK_MS - 1) / TICK_MS : 0;
}

void torii_budget_start(uint32_t budget_ms)
{
    struct sigaction sa;
    struct itimerval it = {{0, TICK_MS * 1000}, {0, TICK_MS * 1000}};
    torii_budget_set(budget_ms);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, NULL) != 0 || setitimer(ITIMER_PROF, &it, NULL) != 0) {
        torii_log_error("CPU budget timer: cannot start; plugins run without a CPU budget");
        return;
    }
    started = true;
}

void torii_budget_enter(lua_State *L)
{
    ticks = 0;
    running = L;
}

void torii_budget_leave(void)
{
    lua_State *L = running;
    running = NULL;
    if (hooked && L) { /* set just as the phase ended: nothing left to stop */
        hooked = false;
        lua_sethook(L, NULL, 0, 0);
    }
}

void torii_budget_stop(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    if (started)
        setitimer(ITIMER_PROF, &off, NULL);
    started = false;
    running = NULL;
}
