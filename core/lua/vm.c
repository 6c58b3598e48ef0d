/* vm.c — a worker's LuaJIT VM: start-up, configuration in, phases run. */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "base/pool.h"
#include "config/node.h"
#include "lua/budget.h"
#include "lua/ffi.h"
#include "lua/lalloc.h"
#include "lua/phase_times.h"
#include "lua/ffi_state.h"
#include "lua/vm.h"

#define CO_POOL 256 /* idle coroutines kept for the next requests */

/* Status a phase's coroutine yields back to C (lua/torii/runtime.lua). */
enum { PHASE_OK = 0, PHASE_EXIT = 1, PHASE_ERROR = 2, PHASE_WAIT = 3 };

struct torii_vm_s {
    lua_State *L;
    int runtime; /* registry ref: the torii.runtime module */
    int body;    /* registry ref: runtime.request (a coroutine's body) */
    int token;   /* registry ref: runtime.token, yielded at the end of a phase */
    int free_co[CO_POOL];
    int nfree_co;
    const torii_config_t *conf;
    uint8_t *route_plugins; /* per route (by index): bit p set when a plugin has phase p */
    bool *route_filters;    /* ... any with a body_filter? */
    char **dict_names;      /* shared dicts the loaded plugins want by default */
    uint64_t *dict_sizes;
    size_t ndicts;
    bool retired;       /* a newer generation is current: no new timers */
    size_t mem;         /* bytes the VM holds (its allocator's count) */
    size_t limit;       /* lua.memory_limit, 0: none */
    torii_lalloc_t *la; /* where vm_alloc takes memory from (NULL: LuaJIT's own) */
};

static torii_vm_t *active; /* the VM running Lua now, for torii_vm_active() */

/*
 * The VM's allocator: lalloc.h (size classes in chunks of the VM's own,
 * reused by the next VM), counted, so that a VM over its memory cap is
 * noticed (torii_vm_memory) and a plugin cannot pass the limit.
 */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    torii_vm_t *vm = ud;
    void *p;
    if (nsize == 0) {
        torii_lalloc(vm->la, ptr, osize, 0);
        vm->mem -= osize;
        return NULL;
    }
    /* Past the limit, a plugin's allocation fails ("not enough memory",
     * which fails its request); only while Lua runs for a request or a
     * timer, where such an error is caught, never in the VM's set-up. */
    if (vm->limit && nsize > osize && active == vm && vm->mem + (nsize - osize) > vm->limit)
        return NULL;
    p = torii_lalloc(vm->la, ptr, osize, nsize);
    if (p)
        vm->mem += nsize - osize;
    return p;
}

/* Where lua/ and plugins/ are: $TORII_HOME, else the first directory up
 * from the executable (build/torii, build/asan/torii) that has them. */
static bool find_home(char *out, size_t cap)
{
    const char *env = getenv("TORII_HOME");
    char exe[PATH_MAX];
    ssize_t n;
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return true;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    for (int up = 0; up < 4; up++) {
        char probe[PATH_MAX + 32];
        char *slash = strrchr(exe, '/');
        if (!slash)
            return false;
        *slash = '\0';
        snprintf(probe, sizeof probe, "%s/lua/torii/runtime.lua", exe);
        if (access(probe, R_OK) == 0) {
            snprintf(out, cap, "%s", exe);
            return true;
        }
    }
    return false;
}

/* A configuration subtree as Lua values; sequences carry the runtime's
 * array metatable so that [] and {} stay apart. */
static void push_cnode(lua_State *L, const torii_cnode_t *n, int array_mt)
{
    if (n->compiled) { /* compiled in C (a _meta.filter): Lua passes it back through the FFI */
        lua_pushlightuserdata(L, n->compiled);
        return;
    }
    switch (n->type) {
    case TORII_CN_NULL: lua_pushnil(L); break;
    case TORII_CN_BOOL: lua_pushboolean(L, n->v.b); break;
    case TORII_CN_INT: lua_pushnumber(L, (lua_Number)n->v.i); break;
    case TORII_CN_FLOAT: lua_pushnumber(L, n->v.f); break;
    case TORII_CN_STR: lua_pushlstring(L, n->text, n->len); break;
    case TORII_CN_SEQ:
        lua_createtable(L, (int)n->n, 0);
        for (size_t i = 0; i < n->n; i++) {
            push_cnode(L, n->items[i], array_mt);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt);
        lua_setmetatable(L, -2);
        break;
    case TORII_CN_MAP:
        lua_createtable(L, 0, (int)n->n);
        for (size_t i = 0; i < n->n; i++) {
            lua_pushlstring(L, n->keys[i]->text, n->keys[i]->len);
            push_cnode(L, n->items[i], array_mt);
            lua_rawset(L, -3);
        }
        break;
    }
}

/* Where a node came from, for messages: {file = ..., line = ...}. */
static void push_origin(lua_State *L, const char *file, int line)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, file);
    lua_setfield(L, -2, "file");
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
}

/* For a `plugins:` map: plugin name -> where its key is written. */
static void push_origins(lua_State *L, const torii_cnode_t *map)
{
    lua_createtable(L, 0, map ? (int)map->n : 0);
    for (size_t i = 0; map && i < map->n; i++) {
        lua_pushlstring(L, map->keys[i]->text, map->keys[i]->len);
        push_origin(L, map->keys[i]->file, map->keys[i]->line);
        lua_rawset(L, -3);
    }
}

/* The part of the configuration the runtime needs. */
static void push_config(lua_State *L, const torii_config_t *conf, const char *home, int array_mt)
{
    lua_createtable(L, 0, 4);
    lua_createtable(L, (int)conf->nplugin_dirs + 1, 0);
    lua_pushfstring(L, "%s/plugins", home);
    lua_rawseti(L, -2, 1);
    for (uint32_t i = 0; i < conf->nplugin_dirs; i++) {
        lua_pushstring(L, conf->plugin_dirs[i]);
        lua_rawseti(L, -2, (int)i + 2);
    }
    lua_setfield(L, -2, "plugin_dirs");
    lua_createtable(L, (int)conf->nroutes, 0);
    for (uint32_t i = 0; i < conf->nroutes; i++) {
        const torii_route_conf_t *r = &conf->routes[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, r->id);
        lua_setfield(L, -2, "id");
        if (r->plugins) {
            push_cnode(L, r->plugins, array_mt);
            lua_setfield(L, -2, "plugins");
            push_origins(L, r->plugins);
            lua_setfield(L, -2, "origins");
        }
        if (r->service) {
            lua_pushinteger(L, r->service);
            lua_setfield(L, -2, "service");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "routes");
    if (conf->global_rules) {
        push_cnode(L, conf->global_rules, array_mt);
        lua_setfield(L, -2, "global_rules");
        /* per rule: the origins of its plugins */
        lua_createtable(L, (int)conf->global_rules->n, 0);
        for (size_t i = 0; i < conf->global_rules->n; i++) {
            push_origins(L, torii_cnode_get(conf->global_rules->items[i], "plugins"));
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "global_rules_origins");
    }
    lua_createtable(L, (int)conf->nservices, 0);
    for (uint32_t i = 0; i < conf->nservices; i++) {
        const torii_route_conf_t *s = &conf->services[i];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, s->id);
        lua_setfield(L, -2, "id");
        if (s->plugins) {
            push_cnode(L, s->plugins, array_mt);
            lua_setfield(L, -2, "plugins");
            push_origins(L, s->plugins);
            lua_setfield(L, -2, "origins");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "services");
    if (conf->consumers) {
        push_cnode(L, conf->consumers, array_mt);
        lua_setfield(L, -2, "consumers");
        lua_createtable(L, (int)conf->consumers->n, 0);
        for (size_t i = 0; i < conf->consumers->n; i++) {
            push_origins(L, torii_cnode_get(conf->consumers->items[i], "plugins"));
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "consumers_origins");
    }
}

/* runtime.needed_dicts: {name = bytes} from the plugins' shared_dicts. */
static void collect_dicts(torii_vm_t *vm, lua_State *L)
{
    size_t n = 0;
    lua_getfield(L, -1, "needed_dicts");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            n++;
            lua_pop(L, 1);
        }
        vm->dict_names = calloc(n + 1, sizeof *vm->dict_names);
        vm->dict_sizes = calloc(n + 1, sizeof *vm->dict_sizes);
        if (!vm->dict_names || !vm->dict_sizes)
            abort();
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isnumber(L, -1)) {
                vm->dict_names[vm->ndicts] = strdup(lua_tostring(L, -2));
                vm->dict_sizes[vm->ndicts] = (uint64_t)lua_tonumber(L, -1);
                if (!vm->dict_names[vm->ndicts])
                    abort();
                vm->ndicts++;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static void fail_with_top(lua_State *L, const char *what, char *err, size_t errlen)
{
    const char *msg = lua_tostring(L, -1);
    snprintf(err, errlen, "%s%s", what, msg ? msg : "(error object is not a string)");
}

torii_vm_t *torii_vm_new(const torii_config_t *conf, char *err, size_t errlen)
{
    torii_vm_t *vm = calloc(1, sizeof *vm);
    char home[PATH_MAX];
    lua_State *L;
    int array_mt, rc;
    if (!vm)
        abort();
    if (!find_home(home, sizeof home)) {
        snprintf(err, errlen, "cannot find the Lua runtime (lua/torii/runtime.lua): set TORII_HOME");
        free(vm);
        return NULL;
    }
    vm->conf = conf;
    vm->limit = conf->lua_memory_limit;
    if (!(vm->la = torii_lalloc_new()))
        abort();
    vm->L = L = lua_newstate(vm_alloc, vm);
    if (!L) { /* a LuaJIT built without GC64 refuses custom allocators */
        torii_lalloc_free(vm->la);
        vm->la = NULL;
        vm->L = L = luaL_newstate();
    }
    if (!L)
        abort();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", home, home);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    lua_getglobal(L, "require");
    lua_pushstring(L, "torii.runtime");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        fail_with_top(L, "cannot load the Lua runtime: ", err, errlen);
        torii_vm_free(vm);
        return NULL;
    }
    lua_getfield(L, -1, "array_mt");
    array_mt = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "request");
    vm->body = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "token");
    vm->token = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "init");
    push_config(L, conf, home, array_mt);
    luaL_unref(L, LUA_REGISTRYINDEX, array_mt);
    /* init runs once per route and plugin: compiling it to machine code
     * costs more than it saves (and each trace toggles page protections),
     * so the JIT waits for the request paths. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    rc = lua_pcall(L, 1, 3, 0);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON);
    if (rc != 0) {
        fail_with_top(L, "Lua runtime: ", err, errlen);
        torii_vm_free(vm);
        return NULL;
    }
    if (!lua_toboolean(L, -3)) {
        lua_pop(L, 1);
        fail_with_top(L, "", err, errlen);
        torii_vm_free(vm);
        return NULL;
    }
    /* init returns true and, per route index, whether it has plugins and
     * whether it has body filters. */
    vm->route_plugins = calloc(conf->nroutes + 1, sizeof *vm->route_plugins);
    vm->route_filters = calloc(conf->nroutes + 1, sizeof *vm->route_filters);
    if (!vm->route_plugins || !vm->route_filters)
        abort();
    for (uint32_t i = 0; i < conf->nroutes; i++) {
        lua_rawgeti(L, -2, (int)i + 1);
        vm->route_plugins[i] = (uint8_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, -1, (int)i + 1);
        vm->route_filters[i] = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
    collect_dicts(vm, L);
    vm->runtime = luaL_ref(L, LUA_REGISTRYINDEX);
    return vm;
}

size_t torii_vm_dicts(const torii_vm_t *vm, char *const **names, const uint64_t **sizes)
{
    *names = vm->dict_names;
    *sizes = vm->dict_sizes;
    return vm->ndicts;
}

void torii_vm_free(torii_vm_t *vm)
{
    if (!vm)
        return;
    if (vm->L)
        lua_close(vm->L);
    torii_lalloc_free(vm->la); /* after the close, which frees through it */
    free(vm->route_plugins);
    free(vm->route_filters);
    for (size_t i = 0; i < vm->ndicts; i++)
        free(vm->dict_names[i]);
    free(vm->dict_names);
    free(vm->dict_sizes);
    free(vm);
}

bool torii_vm_route_has_plugins(const torii_vm_t *vm, const torii_route_conf_t *route)
{
    return vm && vm->route_plugins[route - vm->conf->routes];
}

bool torii_vm_route_runs(const torii_vm_t *vm, const torii_route_conf_t *route, int phase)
{
    return vm && (vm->route_plugins[route - vm->conf->routes] >> phase & 1);
}

bool torii_vm_route_filters_body(const torii_vm_t *vm, const torii_route_conf_t *route)
{
    return vm && vm->route_filters[route - vm->conf->routes];
}

/* A coroutine parked at its loop's yield, or a new one. */
static lua_State *take_coroutine(torii_vm_t *vm, torii_request_t *r, bool *fresh)
{
    lua_State *co;
    if (r->co_ref) {
        lua_rawgeti(vm->L, LUA_REGISTRYINDEX, r->co_ref);
        co = lua_tothread(vm->L, -1);
        lua_pop(vm->L, 1);
        *fresh = false;
        return co;
    }
    if (vm->nfree_co > 0) {
        r->co_ref = vm->free_co[--vm->nfree_co];
        lua_rawgeti(vm->L, LUA_REGISTRYINDEX, r->co_ref);
        co = lua_tothread(vm->L, -1);
        lua_pop(vm->L, 1);
        *fresh = true; /* parked at its yield from another request: a new ctx */
        return co;
    }
    co = lua_newthread(vm->L);
    r->co_ref = luaL_ref(vm->L, LUA_REGISTRYINDEX);
    lua_rawgeti(co, LUA_REGISTRYINDEX, vm->body);
    *fresh = true;
    return co;
}

static int resume(torii_vm_t *vm, torii_request_t *r, lua_State *co, int phase, int nargs);

static int run_phase(torii_vm_t *vm, torii_request_t *r, int phase)
{
    bool fresh;
    lua_State *co = take_coroutine(vm, r, &fresh);
    r->phase = (uint8_t)phase;
    lua_pushinteger(co, phase);
    lua_pushinteger(co, (lua_Integer)(r->route - vm->conf->routes) + 1);
    lua_pushboolean(co, fresh);
    return resume(vm, r, co, phase, 3);
}

int torii_vm_run_phase(torii_vm_t *vm, torii_request_t *r, int phase)
{
    uint64_t t0;
    int rc;
    if (!torii_phase_times_on)
        return run_phase(vm, r, phase);
    t0 = torii_phase_times_now();
    rc = run_phase(vm, r, phase);
    torii_phase_times_add(phase, torii_phase_times_now() - t0);
    return rc;
}

int torii_vm_resume(torii_vm_t *vm, torii_request_t *r)
{
    lua_State *co;
    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, r->co_ref);
    co = lua_tothread(vm->L, -1);
    lua_pop(vm->L, 1);
    return resume(vm, r, co, r->phase, 0);
}

static int resume(torii_vm_t *vm, torii_request_t *r, lua_State *co, int phase, int nargs)
{
    int rc, status;
    torii_vm_t *outer = active;
    active = vm;
    torii_ffi_enter(r, phase);
    torii_budget_enter(vm->L);
    rc = lua_resume(co, nargs);
    torii_budget_leave();
    torii_ffi_leave();
    active = outer;
    if (rc != LUA_YIELD) {
        /* The loop never returns and catches plugin errors itself: this is
         * the runtime failing. The coroutine is dead; drop it. */
        const char *msg = lua_tostring(co, -1);
        torii_log_error("Lua runtime failed in phase %d: %s, route: %s, request_id: %s", phase, msg ? msg : "?",
                        r->route->id, r->id);
        luaL_unref(vm->L, LUA_REGISTRYINDEX, r->co_ref);
        r->co_ref = 0;
        return TORII_ERROR;
    }
    lua_rawgeti(co, LUA_REGISTRYINDEX, vm->token);
    if (lua_gettop(co) != 3 || !lua_rawequal(co, 1, -1)) {
        /* A plugin yielded by itself: the chain stopped half-way. Never
         * let that pass for the end of a phase (an access check would be
         * skipped), and never resume that coroutine again. */
        torii_log_error("a plugin called coroutine.yield() in phase %d, which only torii's own waiting calls may do, "
                        "route: %s, request_id: %s",
                        phase, r->route->id, r->id);
        luaL_unref(vm->L, LUA_REGISTRYINDEX, r->co_ref);
        r->co_ref = 0;
        return TORII_ERROR;
    }
    status = (int)lua_tointeger(co, 2);
    lua_settop(co, 0);
    r->waiting = status == PHASE_WAIT;
    switch (status) {
    case PHASE_OK: return TORII_OK;
    case PHASE_EXIT: return TORII_DONE;
    case PHASE_WAIT: return TORII_AGAIN;
    default: return TORII_ERROR;
    }
}

/* Call runtime.NAME(args...) with pcall; log a failure. */
static void call_runtime(torii_vm_t *vm, const char *name, int nargs)
{
    lua_State *L = vm->L;
    torii_vm_t *outer = active;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->runtime);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    lua_insert(L, -(nargs + 1));
    active = vm;
    torii_budget_enter(L);
    if (lua_pcall(L, nargs, 0, 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        torii_log_error("Lua runtime: %s failed: %s", name, msg ? msg : "?");
        lua_pop(L, 1);
    }
    torii_budget_leave();
    active = outer;
}

size_t torii_vm_memory(const torii_vm_t *vm)
{
    return vm->mem;
}

bool torii_vm_over_limit(torii_vm_t *vm)
{
    /* A cheap check after each request; a full collection only when the
     * count (garbage included) is high, and a new VM only if what is
     * still alive after it stays high. */
    if (!vm->limit || vm->mem <= vm->limit / 4 * 3)
        return false;
    lua_gc(vm->L, LUA_GCCOLLECT, 0);
    return vm->mem > vm->limit / 4 * 3;
}

bool torii_vm_home(char *out, size_t cap)
{
    return find_home(out, cap);
}

torii_vm_t *torii_vm_active(void)
{
    return active;
}

void torii_vm_retire(torii_vm_t *vm)
{
    vm->retired = true;
}

bool torii_vm_retired(const torii_vm_t *vm)
{
    return vm->retired;
}

void torii_vm_init_worker(torii_vm_t *vm)
{
    call_runtime(vm, "init_worker", 0);
}

void torii_vm_fire_timer(torii_vm_t *vm, int id, bool premature)
{
    lua_pushinteger(vm->L, id);
    lua_pushboolean(vm->L, premature);
    call_runtime(vm, "fire_timer", 2);
}

void torii_vm_resume_task(torii_vm_t *vm, int task)
{
    lua_pushinteger(vm->L, task);
    call_runtime(vm, "resume_task", 1);
}

lua_State *torii_vm_lua(const torii_vm_t *vm)
{
    return vm->L;
}

void torii_vm_request_done(torii_vm_t *vm, torii_request_t *r)
{
    if (!r->co_ref)
        return;
    if (r->waiting && vm) { /* suspended mid-chain: it can never be reused */
        luaL_unref(vm->L, LUA_REGISTRYINDEX, r->co_ref);
        r->co_ref = 0;
        r->waiting = false;
        return;
    }
    if (vm && vm->nfree_co < CO_POOL)
        vm->free_co[vm->nfree_co++] = r->co_ref;
    else if (vm)
        luaL_unref(vm->L, LUA_REGISTRYINDEX, r->co_ref);
    r->co_ref = 0;
}
