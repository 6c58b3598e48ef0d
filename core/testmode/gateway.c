/*
 * gateway.c — the torii.testmode module: gateways built from a
 * configuration as a worker builds them, the event loop for specs that
 * wait, and the scratch directory.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "lua/timers.h"
#include "shm/zones.h"
#include "testmode/testmode.h"

#define GATEWAY_MT "torii.testmode.gateway"

/* A dict the gateway wants: made when new, emptied when an earlier
 * gateway made it (a real gateway's dicts outlive reloads, but each spec
 * wants a clean slate; a dict is never unmapped while a VM may hold it). */
static bool want_zone(const char *name, uint64_t size, char *err, size_t errlen)
{
    torii_shdict_t *d = torii_zones_find(name, strlen(name));
    torii_shdict_status_t st;
    if (!d)
        return torii_zones_add(name, size, err, errlen);
    torii_shdict_flush_all(d, &st);
    return true;
}

static bool open_zones(const torii_config_t *conf, const torii_vm_t *vm, char *err, size_t errlen)
{
    char *const *names;
    const uint64_t *sizes;
    size_t n = torii_vm_dicts(vm, &names, &sizes);
    for (uint32_t i = 0; i < conf->nshdicts; i++)
        if (!want_zone(conf->shdict_names[i], conf->shdict_sizes[i], err, errlen))
            return false;
    for (size_t i = 0; i < n; i++) {
        bool declared = false;
        for (uint32_t k = 0; k < conf->nshdicts; k++)
            declared |= strcmp(conf->shdict_names[k], names[i]) == 0; /* the configuration's size wins */
        if (!declared && !want_zone(names[i], sizes[i], err, errlen))
            return false;
    }
    return true;
}

static void gateway_free(tm_gateway_t *gw)
{
    if (!gw->conf)
        return;
    torii_testmode_exchange_abort_all(gw);
    if (gw->vm) {
        torii_testmode_enter(gw);
        torii_timers_stop_vm(gw->vm); /* as at a worker's stop: premature */
        torii_testmode_leave();
        torii_vm_free(gw->vm);
    }
    torii_router_free(gw->router);
    torii_config_free(gw->conf);
    memset(gw, 0, sizeof *gw);
}

/* gateway(text, name, prefix) -> gateway | nil, error. `name` stands for
 * the configuration's file: relative paths in it start from its directory. */
static int l_gateway(lua_State *L)
{
    const char *text = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2), *prefix = luaL_checkstring(L, 3);
    char err[1024];
    tm_gateway_t *gw = lua_newuserdata(L, sizeof *gw);
    memset(gw, 0, sizeof *gw);
    luaL_getmetatable(L, GATEWAY_MT);
    lua_setmetatable(L, -2);
    gw->conf = torii_config_load_string(name, text, prefix, err, sizeof err);
    if (!gw->conf)
        goto fail;
    gw->vm = torii_vm_new(gw->conf, err, sizeof err);
    if (!gw->vm || !open_zones(gw->conf, gw->vm, err, sizeof err))
        goto fail;
    gw->router = torii_router_build(gw->conf);
    torii_testmode_enter(gw);
    torii_vm_init_worker(gw->vm);
    torii_testmode_leave();
    return 1;
fail:
    gateway_free(gw);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static tm_gateway_t *check_gateway(lua_State *L)
{
    tm_gateway_t *gw = luaL_checkudata(L, 1, GATEWAY_MT);
    if (!gw->conf)
        luaL_error(L, "this gateway is closed");
    return gw;
}

static int l_gateway_gc(lua_State *L)
{
    gateway_free(luaL_checkudata(L, 1, GATEWAY_MT));
    return 0;
}

/* gw:begin(head, body, client_ip) -> request, outcome. */
static int l_gateway_begin(lua_State *L)
{
    return torii_testmode_exchange_begin(L, check_gateway(L));
}

/* A callback of wait(): the time is up. */
static void on_wait_over(torii_loop_t *l, torii_timer_t *t, int revents)
{
    (void)l, (void)revents;
    *(bool *)t->data = true;
}

/* wait(seconds): run the loop that long (timers fire, waiting requests
 * of other callers go on). */
static int l_wait(lua_State *L)
{
    double seconds = luaL_checknumber(L, 1);
    torii_timer_t t;
    bool over = false;
    torii_loop_update_now(torii_testmode_loop());
    torii_timer_init(&t, on_wait_over, seconds > 0 ? seconds : 0., 0.);
    t.data = &over;
    torii_timer_start(torii_testmode_loop(), &t);
    while (!over)
        torii_loop_run_once(torii_testmode_loop());
    return 0;
}

int torii_testmode_open(lua_State *L)
{
    static const luaL_Reg gw_methods[] = {{"begin", l_gateway_begin}, {NULL, NULL}};
    if (luaL_newmetatable(L, GATEWAY_MT)) {
        lua_pushcfunction(L, l_gateway_gc);
        lua_setfield(L, -2, "__gc");
        lua_newtable(L);
        luaL_register(L, NULL, gw_methods);
        lua_pushcfunction(L, l_gateway_gc);
        lua_setfield(L, -2, "close");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    torii_testmode_exchange_init(L);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, l_gateway);
    lua_setfield(L, -2, "gateway");
    lua_pushcfunction(L, l_wait);
    lua_setfield(L, -2, "wait");
    lua_getfield(L, LUA_REGISTRYINDEX, "torii.testmode.dir");
    lua_setfield(L, -2, "dir");
    return 1;
}
