/* test_base.c — units, CIDR blocks, slices, buffers, arenas (core/base). */
#include "unit.h"

#include "base/addr.h"
#include "base/buf.h"
#include "base/cidr.h"
#include "base/common.h"
#include "base/pool.h"
#include "base/str.h"
#include "base/units.h"

TEST(sizes)
{
    uint64_t v;
    CHECK(torii_parse_size("512", &v) && v == 512);
    CHECK(torii_parse_size("32k", &v) && v == 32768);
    CHECK(torii_parse_size("32K", &v) && v == 32768);
    CHECK(torii_parse_size("1m", &v) && v == 1048576);
    CHECK(torii_parse_size("1mb", &v) && v == 1048576);
    CHECK(torii_parse_size("2g", &v) && v == 2147483648ULL);
    CHECK(!torii_parse_size("", &v));
    CHECK(!torii_parse_size("k", &v));
    CHECK(!torii_parse_size("1.5m", &v));
    CHECK(!torii_parse_size("1x", &v));
    CHECK(!torii_parse_size("1 m", &v));
    CHECK(!torii_parse_size("-1", &v));
    CHECK(!torii_parse_size("99999999999g", &v));
}

TEST(durations)
{
    uint64_t v;
    CHECK(torii_parse_duration("500ms", &v) && v == 500);
    CHECK(torii_parse_duration("3s", &v) && v == 3000);
    CHECK(torii_parse_duration("2m", &v) && v == 120000);
    CHECK(torii_parse_duration("1h", &v) && v == 3600000);
    CHECK(torii_parse_duration("1d", &v) && v == 86400000);
    CHECK(torii_parse_duration("0.5", &v) && v == 500);
    CHECK(torii_parse_duration("1.5s", &v) && v == 1500);
    CHECK(torii_parse_duration("10", &v) && v == 10000);
    CHECK(!torii_parse_duration("", &v));
    CHECK(!torii_parse_duration("s", &v));
    CHECK(!torii_parse_duration("5 s", &v));
    CHECK(!torii_parse_duration("5parsecs", &v));
    CHECK(!torii_parse_duration("1.s", &v));
    CHECK(!torii_parse_duration("100d", &v));
}

TEST(cidrs)
{
    torii_cidr_t c;
    uint8_t a[16];
    CHECK(torii_cidr_parse("10.0.0.0/8", 10, &c));
    CHECK(torii_ip_parse("10.1.2.3", 8, a) && torii_cidr_match(&c, a));
    CHECK(torii_ip_parse("11.1.2.3", 8, a) && !torii_cidr_match(&c, a));
    CHECK(torii_cidr_parse("192.168.1.7/31", 14, &c));
    CHECK(torii_ip_parse("192.168.1.6", 11, a) && torii_cidr_match(&c, a));
    CHECK(torii_ip_parse("192.168.1.8", 11, a) && !torii_cidr_match(&c, a));
    CHECK(torii_cidr_parse("127.0.0.1", 9, &c));
    CHECK(torii_ip_parse("127.0.0.1", 9, a) && torii_cidr_match(&c, a));
    /* An IPv6 block wider than ::ffff:0:0/96 holds no IPv4 client. */
    CHECK(torii_cidr_parse("::/0", 4, &c));
    CHECK(torii_ip_parse("10.1.2.3", 8, a) && !torii_cidr_match(&c, a));
    CHECK(torii_ip_parse("::1", 3, a) && torii_cidr_match(&c, a));
    CHECK(torii_cidr_parse("::ffff:0:0/96", 13, &c));
    CHECK(torii_ip_parse("10.1.2.3", 8, a) && torii_cidr_match(&c, a));
    CHECK(torii_cidr_parse("0.0.0.0/0", 9, &c));
    CHECK(torii_ip_parse("::1", 3, a) && !torii_cidr_match(&c, a));
    CHECK(torii_cidr_parse("2001:db8::/32", 13, &c));
    CHECK(torii_ip_parse("2001:db8:1::5", 13, a) && torii_cidr_match(&c, a));
    CHECK(torii_ip_parse("2001:db9::5", 11, a) && !torii_cidr_match(&c, a));
    CHECK(torii_cidr_parse("0.0.0.0/0", 9, &c));
    CHECK(torii_ip_parse("8.8.8.8", 7, a) && torii_cidr_match(&c, a));
    CHECK(torii_ip_parse("::1", 3, a) && !torii_cidr_match(&c, a)); /* v4 /0 is not all of v6 */
    CHECK(!torii_cidr_parse("10.0.0.0/33", 11, &c));
    CHECK(!torii_cidr_parse("10.0.0/8", 8, &c));
    CHECK(!torii_cidr_parse("10.0.0.0/", 9, &c));
    CHECK(!torii_cidr_parse("::1/129", 7, &c));
}

TEST(slices)
{
    torii_str_t rest = TORII_STR(" a, ,b ,\tc,"), tok;
    const char *want[] = {"a", "b", "c"};
    int i = 0;
    uint64_t v;
    while (torii_str_next_token(&rest, &tok)) {
        CHECK(i < 3);
        if (i < 3)
            CHECK_SLICE(tok, want[i]);
        i++;
    }
    CHECK_INT(i, 3);
    CHECK(torii_str_list_has(TORII_STR("keep-alive, Upgrade"), "upgrade"));
    CHECK(!torii_str_list_has(TORII_STR("keep-alive, upgrades"), "upgrade"));
    CHECK(torii_str_ieq(TORII_STR("Content-Length"), "content-length"));
    CHECK(!torii_str_ieq(TORII_STR("Content-Lengt"), "content-length"));
    CHECK(torii_str_to_u64(TORII_STR("18446744073709551615"), &v) && v == UINT64_MAX);
    CHECK(!torii_str_to_u64(TORII_STR("18446744073709551616"), &v));
    CHECK(!torii_str_to_u64(TORII_STR(""), &v));
}

TEST(buffers)
{
    torii_buf_t b = {0};
    size_t room;
    torii_buf_append(&b, "hello", 5);
    CHECK_INT(torii_buf_len(&b), 5);
    torii_buf_consume(&b, 2);
    CHECK(memcmp(torii_buf_pos(&b), "llo", 3) == 0);
    /* Without moving, only the space at the end counts. */
    b.end = b.cap;
    CHECK_INT(torii_buf_space(&b, 10, 1 << 20, false), 0);
    room = torii_buf_space(&b, 10, 1 << 20, true); /* compacts */
    CHECK(room >= 2);
    CHECK_INT(b.start, 0);
    torii_buf_printf(&b, "%d-%s", 42, "x");
    torii_buf_consume(&b, torii_buf_len(&b));
    CHECK_INT(b.start, 0);
    CHECK_INT(b.end, 0);
    /* Growth past the block size for large appends. */
    char big[40000];
    memset(big, 'z', sizeof big);
    torii_buf_append(&b, big, sizeof big);
    CHECK_INT(torii_buf_len(&b), sizeof big);
    CHECK(b.cap >= sizeof big);
    torii_buf_release(&b);
    CHECK(b.data == NULL);
    torii_buf_freelist_drain();
}

static int cleaned;
static void on_cleanup(void *p)
{
    cleaned += *(int *)p;
}

TEST(arena)
{
    torii_pool_t *p = torii_pool_create(256);
    int one = 1, two = 2;
    char *s = torii_pstrdup(p, "abc");
    void *big = torii_palloc(p, 10000);
    CHECK_STR(s, "abc");
    CHECK(((uintptr_t)big & 15) == 0);
    for (int i = 0; i < 100; i++)
        CHECK(torii_palloc(p, 24) != NULL);
    torii_pool_cleanup(p, on_cleanup, &one);
    torii_pool_cleanup(p, on_cleanup, &two);
    torii_pool_destroy(p);
    CHECK_INT(cleaned, 3);
    torii_pool_spares_drain();
}

/* A destroyed pool waits, with its first block, for the next create of
 * its block size: handed out again empty, zeroed, with no cleanups. */
TEST(arena_reuse)
{
    torii_pool_t *p = torii_pool_create(1024), *q, *other;
    int one = 1;
    unsigned char *a = torii_palloc(p, 100), *b;
    memset(a, 0xab, 100);
    torii_palloc(p, 5000); /* a big block of its own: freed, not kept */
    for (int i = 0; i < 50; i++)
        torii_palloc(p, 100); /* more standard blocks: all but one freed */
    torii_pool_cleanup(p, on_cleanup, &one);
    cleaned = 0;
    torii_pool_destroy(p);
    CHECK_INT(cleaned, 1);
    other = torii_pool_create(2048); /* another size: a fresh pool */
    CHECK(other != p);
    q = torii_pool_create(1024);
    CHECK(q == p);
    b = torii_palloc(q, 100);
    for (int i = 0; i < 100; i++)
        CHECK(b[i] == 0);
    torii_pool_destroy(q); /* no cleanup left from before */
    CHECK_INT(cleaned, 1);
    torii_pool_destroy(other);
    torii_pool_spares_drain();
    q = torii_pool_create(1024); /* after a drain, a fresh one */
    CHECK(q != NULL && torii_palloc(q, 10) != NULL);
    torii_pool_destroy(q);
    torii_pool_spares_drain();
}

/* Literal addresses for plugin sockets: never a lookup. */
TEST(address_literals)
{
    torii_addr_t a;
    char text[TORII_ADDRSTRLEN];
    CHECK(torii_addr_literal("127.0.0.1", 9, 80, &a));
    torii_addr_format((const struct sockaddr *)&a.sa, text, sizeof text);
    CHECK_STR(text, "127.0.0.1:80");
    CHECK(torii_addr_literal("LOCALHOST", 9, 8080, &a));
    torii_addr_format((const struct sockaddr *)&a.sa, text, sizeof text);
    CHECK_STR(text, "127.0.0.1:8080");
    CHECK(torii_addr_literal("::1", 3, 443, &a));
    torii_addr_format((const struct sockaddr *)&a.sa, text, sizeof text);
    CHECK_STR(text, "[::1]:443");
    CHECK(torii_addr_literal("[2001:db8::7]", 13, 9, &a));
    torii_addr_format((const struct sockaddr *)&a.sa, text, sizeof text);
    CHECK_STR(text, "[2001:db8::7]:9");
    CHECK(torii_addr_literal("10.0.0.1:80", 8, 1, &a)); /* only the first n bytes count */
    CHECK(!torii_addr_literal("example.com", 11, 80, &a));
    CHECK(!torii_addr_literal("localhost.", 10, 80, &a));
    CHECK(!torii_addr_literal("1.2.3", 5, 80, &a));
    CHECK(!torii_addr_literal("", 0, 80, &a));
    CHECK(!torii_addr_literal("[]", 2, 80, &a));
    CHECK(!torii_addr_literal("127.0.0.1\0x", 11, 80, &a));
}

int main(void)
{
    RUN(sizes);
    RUN(durations);
    RUN(cidrs);
    RUN(slices);
    RUN(buffers);
    RUN(arena);
    RUN(arena_reuse);
    RUN(address_literals);
    return unit_report("test_base");
}
