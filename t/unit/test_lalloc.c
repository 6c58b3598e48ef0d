/* test_lalloc.c — the Lua VMs' allocator: size classes, resizes across
 * the small/big line, chunks reused by the next allocator, a real VM. */
#include "unit.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

#include "lua/lalloc.h"

#define CHUNK (2u << 20)

TEST(blocks_apart_and_aligned)
{
    enum { N = 4000 };
    static unsigned char *blk[N];
    static size_t len[N];
    torii_lalloc_t *a = torii_lalloc_new();
    for (size_t i = 0; i < N; i++) {
        len[i] = 1 + (i * 53) % 1500; /* small and big */
        blk[i] = torii_lalloc(a, NULL, 0, len[i]);
        CHECK(blk[i] != NULL);
        CHECK((uintptr_t)blk[i] % 16 == 0);
        memset(blk[i], (int)(i & 0xff), len[i]);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < len[i]; k++)
            if (blk[i][k] != (unsigned char)(i & 0xff)) {
                CHECK(!"a block overlaps another");
                break;
            }
    CHECK(torii_lalloc_held(a) >= CHUNK);
    for (size_t i = 0; i < N; i++)
        CHECK(torii_lalloc(a, blk[i], len[i], 0) == NULL);
    torii_lalloc_free(a);
}

TEST(a_freed_block_is_next_of_its_class)
{
    torii_lalloc_t *a = torii_lalloc_new();
    void *x = torii_lalloc(a, NULL, 0, 40), *y;
    torii_lalloc(a, x, 40, 0);
    y = torii_lalloc(a, NULL, 0, 33); /* the same class of 16-byte grains */
    CHECK(y == x);
    torii_lalloc(a, y, 33, 0);
    torii_lalloc_free(a);
}

TEST(resizes_keep_the_bytes)
{
    torii_lalloc_t *a = torii_lalloc_new();
    size_t held0;
    char *p = torii_lalloc(a, NULL, 0, 10), *q;
    memcpy(p, "0123456789", 10);
    q = torii_lalloc(a, p, 10, 12); /* same class: in place */
    CHECK(q == p);
    q = torii_lalloc(a, q, 12, 500); /* another class */
    CHECK(q != NULL && memcmp(q, "0123456789", 10) == 0);
    held0 = torii_lalloc_held(a);
    memset(q + 10, 'x', 490);
    q = torii_lalloc(a, q, 500, 5000); /* small to big */
    CHECK(q != NULL && memcmp(q, "0123456789", 10) == 0 && q[499] == 'x');
    CHECK_INT(torii_lalloc_held(a), held0 + 5000);
    q[4999] = 'y';
    q = torii_lalloc(a, q, 5000, 9000); /* big to big */
    CHECK(q != NULL && q[4999] == 'y' && q[0] == '0');
    CHECK_INT(torii_lalloc_held(a), held0 + 9000);
    q = torii_lalloc(a, q, 9000, 7); /* big to small */
    CHECK(q != NULL && memcmp(q, "0123456", 7) == 0);
    CHECK_INT(torii_lalloc_held(a), held0);
    torii_lalloc(a, q, 7, 0);
    torii_lalloc_free(a);
}

TEST(the_next_allocator_reuses_the_chunks)
{
    torii_lalloc_t *a = torii_lalloc_new(), *b;
    void *first = torii_lalloc(a, NULL, 0, 64), *again;
    torii_lalloc_free(a); /* blocks still out go with it */
    b = torii_lalloc_new();
    again = torii_lalloc(b, NULL, 0, 64);
    CHECK(again == first); /* the same chunk, the same first block */
    torii_lalloc(b, again, 64, 0);
    torii_lalloc_free(b);
    torii_lalloc_cache_drain();
}

/* LuaJIT with GC64 takes a custom allocator; a build without refuses it. */
TEST(a_vm_runs_on_it)
{
    torii_lalloc_t *a = torii_lalloc_new();
    lua_State *L = lua_newstate(torii_lalloc, a);
    if (!L) {
        torii_lalloc_free(a);
        return;
    }
    luaL_openlibs(L);
    CHECK(luaL_dostring(L, "local t = {}\n"
                           "for i = 1, 20000 do t[i] = ('x'):rep(i % 300) .. i end\n"
                           "local big = table.concat(t, ',')\n"
                           "t = nil; collectgarbage()\n"
                           "local u = {}\n"
                           "for i = 1, 5000 do u['k' .. i] = { i, tostring(i) } end\n"
                           "return #big > 0 and u.k4999[2] == '4999'") == 0);
    CHECK(lua_toboolean(L, -1));
    lua_close(L);
    torii_lalloc_free(a);
    torii_lalloc_cache_drain();
}

int main(void)
{
    RUN(blocks_apart_and_aligned);
    RUN(a_freed_block_is_next_of_its_class);
    RUN(resizes_keep_the_bytes);
    RUN(the_next_allocator_reuses_the_chunks);
    RUN(a_vm_runs_on_it);
    return unit_report("test_lalloc");
}
