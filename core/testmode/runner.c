/*
 * runner.c — `torii test [busted options] [spec paths]`: the process set
 * up as a worker's (an event loop, an error log, shared dicts made on
 * demand), then busted's runner in a LuaJIT VM that can require
 * "torii.test".
 */
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "lua/timers.h"
#include "shm/zones.h"
#include "testmode/testmode.h"

static torii_loop_t *loop;

torii_loop_t *torii_testmode_loop(void)
{
    return loop;
}

void torii_testmode_enter(tm_gateway_t *gw)
{
    /* Timers belong to the VM whose Lua runs (torii_vm_active): outside a
     * gateway's phases there is none, so torii.timer called from a spec is
     * refused. */
    torii_log_level = gw->conf->log_level;
}

void torii_testmode_leave(void)
{
}

/* A scratch directory for the gateways' prefix and the error log. */
static bool make_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/torii-test-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(out) != NULL;
}

static void remove_tmpdir(const char *dir)
{
    const char *keep = getenv("TORII_KEEP_TMP");
    char cmd[PATH_MAX + 32];
    if (keep && *keep && strcmp(keep, "0") != 0) {
        fprintf(stderr, "torii test: kept %s\n", dir);
        return;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* mkdtemp's name has no quote */
    if (system(cmd) != 0)
        fprintf(stderr, "torii test: could not remove %s\n", dir);
}

static void set_package_path(lua_State *L, const char *home)
{
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", home, home);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, torii_testmode_open);
    lua_setfield(L, -2, "torii.testmode");
    lua_pop(L, 2);
}

/* torii.testmode.dir: the scratch directory, for the Lua side. */
static void set_globals(lua_State *L, int argc, char **argv, const char *dir)
{
    lua_createtable(L, argc, 1);
    lua_pushstring(L, "torii test");
    lua_rawseti(L, -2, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg"); /* busted reads its command line from there */
    lua_pushstring(L, dir);
    lua_setfield(L, LUA_REGISTRYINDEX, "torii.testmode.dir");
}

/* Busted's runner, as /usr/bin/busted calls it. It returns when every
 * spec passed; on failures it raises an error without a message (its way
 * to make a Lua 5.1 interpreter exit with 1). */
static int run_busted(lua_State *L)
{
    static const char chunk[] = "require 'busted.runner'({ standalone = false })";
    /* A file name ("@torii test", which busted shows as its own name), so
     * that busted ends with error(), not os.exit(), and the process can
     * clean up after it. */
    if (luaL_loadbuffer(L, chunk, sizeof chunk - 1, "@torii test") != 0 || lua_pcall(L, 0, 0, 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        if (msg)
            fprintf(stderr, "torii test: %s\n", msg);
        return 1;
    }
    return 0;
}

int torii_testmode_main(int argc, char **argv)
{
    char home[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 16], err[TORII_ERRLEN];
    lua_State *L;
    int rc;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("torii test runs busted specs inside torii: `require \"torii.test\"` builds gateways\n"
               "from a configuration and runs requests through their plugins in this process.\n"
               "Busted's own options follow.\n\n");
        fflush(stdout); /* before busted's text, which goes to stderr */
    }
    if (!torii_vm_home(home, sizeof home)) {
        fprintf(stderr, "torii test: cannot find the Lua runtime (lua/torii/runtime.lua): set TORII_HOME\n");
        return 1;
    }
    if (!make_tmpdir(dir, sizeof dir)) {
        perror("torii test: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/error.log", dir);
    if (torii_log_open(path, TORII_LOG_DEBUG, err, sizeof err) != TORII_OK) {
        fprintf(stderr, "torii test: %s\n", err);
        remove_tmpdir(dir);
        return 1;
    }
    loop = torii_loop_new();
    torii_timers_attach(loop);
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    set_package_path(L, home);
    set_globals(L, argc, argv, dir);
    rc = run_busted(L);
    lua_close(L); /* the gateways' finalizers free them */
    torii_timers_shutdown();
    torii_zones_close();
    torii_loop_destroy(loop);
    torii_log_close();
    remove_tmpdir(dir);
    return rc;
}
