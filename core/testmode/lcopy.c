/* lcopy.c — values from one Lua state into another (a request's ctx into
 * the spec's VM). */
#include <lauxlib.h>

#include "testmode/testmode.h"

#define MAX_DEPTH 32

/* `seen` (in `to`): source table -> its copy, so that shared and cyclic
 * references stay shared and cyclic. */
static void copy_value(lua_State *from, int idx, lua_State *to, int seen, int depth)
{
    switch (lua_type(from, idx)) {
    case LUA_TNIL: lua_pushnil(to); break;
    case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); break;
    case LUA_TNUMBER: lua_pushnumber(to, lua_tonumber(from, idx)); break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, idx, &n);
        lua_pushlstring(to, s, n);
        break;
    }
    case LUA_TTABLE:
        if (depth >= MAX_DEPTH) {
            lua_pushliteral(to, "<table nested too deep>");
            break;
        }
        lua_pushlightuserdata(to, (void *)lua_topointer(from, idx));
        lua_rawget(to, seen);
        if (!lua_isnil(to, -1))
            break;
        lua_pop(to, 1);
        luaL_checkstack(from, 3, "copying a table");
        luaL_checkstack(to, 4, "copying a table");
        lua_newtable(to);
        lua_pushlightuserdata(to, (void *)lua_topointer(from, idx));
        lua_pushvalue(to, -2);
        lua_rawset(to, seen);
        lua_pushnil(from);
        while (lua_next(from, idx)) {
            int top = lua_gettop(from);
            copy_value(from, top - 1, to, seen, depth + 1);
            copy_value(from, top, to, seen, depth + 1);
            lua_rawset(to, -3);
            lua_pop(from, 1);
        }
        break;
    default: /* functions, userdata, cdata, threads stay where they are */
        lua_pushfstring(to, "<%s>", lua_typename(from, lua_type(from, idx)));
        break;
    }
}

void torii_testmode_copy(lua_State *from, int idx, lua_State *to)
{
    int seen;
    if (idx < 0)
        idx = lua_gettop(from) + idx + 1;
    lua_newtable(to);
    seen = lua_gettop(to);
    copy_value(from, idx, to, seen, 0);
    lua_remove(to, seen);
}
