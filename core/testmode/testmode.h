/*
 * testmode.h — `torii test`: busted runs in a LuaJIT VM of the torii
 * process, and its specs build gateways (a configuration, the plugins' VM,
 * the router, as a worker has them) and walk requests through them on the
 * worker's own paths (core/proxy/steps.h, lua/vm.h, the FFI functions on a
 * real torii_request_t). The Lua side is lua/torii/test.lua.
 *
 * The spec's VM never runs a plugin: each gateway has its own VM, entered
 * from C, so that a waiting plugin can be resumed by the event loop while
 * the spec's call into C is still on the stack (LuaJIT cannot re-enter a
 * VM from an FFI call, and a coroutine cannot be resumed across one).
 */
#ifndef TORII_TESTMODE_H
#define TORII_TESTMODE_H

#include <lua.h>

#include "config/config.h"
#include "event/loop.h"
#include "lua/vm.h"
#include "router/router.h"

typedef struct tm_exchange_s tm_exchange_t;

/* A gateway: what a worker builds from a configuration. */
typedef struct {
    torii_config_t *conf;
    torii_vm_t *vm;
    torii_router_t *router;
    uint64_t seq;        /* request ids */
    tm_exchange_t *live; /* requests not finished yet */
} tm_gateway_t;

/* `torii test ARGS...`: argv[0] is "test". Returns the exit status. */
int torii_testmode_main(int argc, char **argv);

/* The process's loop (timers and waits of every gateway). */
torii_loop_t *torii_testmode_loop(void);

/* Enter or leave a gateway's VM: its timers, its log level. */
void torii_testmode_enter(tm_gateway_t *gw);
void torii_testmode_leave(void);

/* luaopen-style: the torii.testmode module (gateway.c). */
int torii_testmode_open(lua_State *L);

/* The request methods (exchange.c): registers the metatable. */
void torii_testmode_exchange_init(lua_State *L);

/* Start a request on gw from a raw head, a body and a client address;
 * pushes the request object and its outcome (exchange.c). */
int torii_testmode_exchange_begin(lua_State *L, tm_gateway_t *gw);

/* End every request gw still has (the gateway goes away). */
void torii_testmode_exchange_abort_all(tm_gateway_t *gw);

/* Push a copy of the value at `idx` in `from` onto `to`: nil, booleans,
 * numbers, strings and tables (depth-limited, cycles kept); other values
 * become a string naming their type (lcopy.c). */
void torii_testmode_copy(lua_State *from, int idx, lua_State *to);

#endif
