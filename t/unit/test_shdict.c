/*
 * test_shdict.c — the shared dictionary (core/shm): every operation and
 * error, TTLs on a controlled clock, LRU eviction and `forcible`, safe
 * stores, large values, binary keys, keys(), flushes, several processes
 * at once, a process dying with the lock held, and a soak against a
 * reference model.
 */
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/shdict.h"
#include "shm/shdict_int.h" /* hash_chains looks at the index */
#include "shm/slab.h"

#define KS(s) (s), strlen(s)

static torii_shdict_t *zone(size_t size)
{
    char err[256];
    torii_shdict_t *d = torii_shdict_create("test", size, err, sizeof err);
    if (!d)
        fprintf(stderr, "  create: %s\n", err);
    return d;
}

static bool zone_ok(torii_shdict_t *d)
{
    char err[256];
    if (torii_shdict_check(d, err, sizeof err))
        return true;
    fprintf(stderr, "  check: %s\n", err);
    return false;
}

static size_t entries(torii_shdict_t *d)
{
    torii_shdict_stats_t s;
    torii_shdict_stats(d, &s);
    return s.entries;
}

static torii_shdict_rc_t set_str(torii_shdict_t *d, const char *k, const char *v, uint64_t ttl, uint64_t now,
                                 torii_shdict_status_t *st)
{
    torii_shdict_value_t val = torii_shdict_string(v, strlen(v));
    return torii_shdict_set(d, KS(k), &val, ttl, 0, now, st);
}

/* The string stored at k (NUL-terminated copy), or NULL. */
static const char *get_str(torii_shdict_t *d, const char *k, uint64_t now)
{
    static char buf[4096];
    torii_shdict_got_t got;
    if (torii_shdict_get(d, KS(k), now, buf, sizeof buf - 1, &got, NULL) != TORII_SHDICT_OK ||
        got.type != TORII_SHDICT_STRING)
        return NULL;
    buf[got.len] = 0;
    return buf;
}

static bool has(torii_shdict_t *d, const char *k, uint64_t now)
{
    torii_shdict_got_t got;
    char buf[256];
    return torii_shdict_get(d, KS(k), now, buf, sizeof buf, &got, NULL) != TORII_SHDICT_NOT_FOUND;
}

TEST(slab_classes)
{
    for (size_t n = 1; n <= TORII_SLAB_MAX_SMALL; n++) {
        int c = torii_slab_class(n);
        if (c < 0 || c >= TORII_SLAB_CLASSES || torii_slab_class_size(c) < n ||
            (c > 0 && torii_slab_class_size(c - 1) >= n) || (n > 64 && torii_slab_class_size(c) * 4 > n * 5 + 64)) {
            fprintf(stderr, "  FAIL size %zu -> class %d\n", n, c);
            CHECK(0);
            break;
        }
    }
    CHECK_INT(torii_slab_class_size(TORII_SLAB_CLASSES - 1), TORII_SLAB_MAX_SMALL);
    for (int c = 0; c < TORII_SLAB_CLASSES; c++)
        CHECK(torii_slab_class_size(c) % TORII_SLAB_UNIT == 0);
}

TEST(hash_chains)
{
    torii_shdict_t *a = zone(4 << 20), *b = zone(4 << 20);
    torii_shdict_value_t one = torii_shdict_number(1);
    char key[32];
    CHECK(a->seed != b->seed);
    /* Keys that differ in a byte or two, as addresses do, spread over the buckets. */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        CHECK_INT(torii_shdict_safe_set(a, KS(key), &one, 0, 0, 0, NULL), TORII_SHDICT_OK);
    }
    unsigned longest = 0, used = 0, nb = a->bucket_mask + 1;
    for (unsigned i = 0; i < nb; i++) {
        unsigned len = 0;
        for (uint32_t ref = shdict_buckets(a)[i]; ref; ref = E(a, ref)->hnext)
            len++;
        used += len > 0;
        longest = len > longest ? len : longest;
    }
    /* 20000 keys in 32768 buckets: about 15000 buckets used if uniform; chains of 8 would be very unlikely. */
    CHECK(nb == 32768);
    CHECK(used > 14000);
    CHECK(longest < 9);
    torii_shdict_destroy(a);
    torii_shdict_destroy(b);
}

TEST(create_and_errors)
{
    char err[256], big[TORII_SHDICT_MAX_KEY + 1];
    torii_shdict_value_t v = torii_shdict_string("v", 1), nil = {.type = TORII_SHDICT_NIL};
    torii_shdict_value_t bad_str = {.type = TORII_SHDICT_STRING, .str = NULL, .len = 5};
    torii_shdict_got_t got;
    uint64_t ttl;
    double x;

    CHECK(torii_shdict_create("tiny", 1000, err, sizeof err) == NULL);
    CHECK(strstr(err, "\"tiny\"") && strstr(err, "out of range"));
    CHECK(torii_shdict_create("tiny", TORII_SHDICT_MIN_SIZE - 1, err, sizeof err) == NULL);
    CHECK(torii_shdict_create("huge", (size_t)1 << 40, err, sizeof err) == NULL);

    torii_shdict_t *d = zone(TORII_SHDICT_MIN_SIZE);
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK_STR(torii_shdict_name(d), "test");
    CHECK_INT(torii_shdict_capacity(d), TORII_SHDICT_MIN_SIZE);
    CHECK(torii_shdict_free_space(d) >= 20 * 1024 && torii_shdict_free_space(d) < TORII_SHDICT_MIN_SIZE);
    CHECK(zone_ok(d));

    memset(big, 'k', sizeof big);
    CHECK_INT(torii_shdict_set(d, "", 0, &v, 0, 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_set(d, NULL, 3, &v, 0, 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_set(d, big, sizeof big, &v, 0, 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_set(d, KS("k"), &nil, 0, 0, 0, NULL), TORII_SHDICT_BAD_VALUE);
    CHECK_INT(torii_shdict_set(d, KS("k"), NULL, 0, 0, 0, NULL), TORII_SHDICT_BAD_VALUE);
    CHECK_INT(torii_shdict_set(d, KS("k"), &bad_str, 0, 0, 0, NULL), TORII_SHDICT_BAD_VALUE);
    /* A legal key too large for this zone. */
    CHECK_INT(torii_shdict_set(d, big, TORII_SHDICT_MAX_KEY, &v, 0, 0, 0, NULL), TORII_SHDICT_NO_MEMORY);
    CHECK_INT(torii_shdict_incr(d, big, TORII_SHDICT_MAX_KEY, 1, 0, true, 0, 0, &x, NULL), TORII_SHDICT_NO_MEMORY);
    CHECK_INT(torii_shdict_add(d, "", 0, &v, 0, 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_replace(d, "", 0, &v, 0, 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_safe_set(d, "", 0, &v, 0, 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_safe_add(d, KS("k"), &nil, 0, 0, 0, NULL), TORII_SHDICT_BAD_VALUE);
    CHECK_INT(torii_shdict_get(d, "", 0, 0, NULL, 0, &got, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_get_stale(d, big, sizeof big, 0, NULL, 0, &got, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_incr(d, "", 0, 1, 0, true, 0, 0, &x, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_delete(d, "", 0, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_expire(d, "", 0, 5, 0, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(torii_shdict_ttl(d, "", 0, 0, &ttl, NULL), TORII_SHDICT_BAD_KEY);
    CHECK_INT(entries(d), 0);

    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_OK), "ok");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_NOT_FOUND), "not found");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_EXISTS), "exists");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_NO_MEMORY), "no memory");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_NOT_NUMBER), "not a number");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_TRUNCATED), "buffer too small");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_BAD_KEY), "bad key");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_BAD_VALUE), "bad value type");
    CHECK_STR(torii_shdict_strerror(TORII_SHDICT_LOCK_FAILED), "lock failed");
    CHECK_STR(torii_shdict_strerror((torii_shdict_rc_t)99), "unknown error");
    torii_shdict_destroy(d);
    torii_shdict_destroy(NULL);
}

TEST(values)
{
    torii_shdict_t *d = zone(256 * 1024);
    torii_shdict_got_t got;
    torii_shdict_status_t st;
    char buf[512];
    const char bin[] = "a\0b\0\xff";
    torii_shdict_value_t s = torii_shdict_string(bin, sizeof bin), n = torii_shdict_number(-2.5),
                         t = torii_shdict_boolean(true), f = torii_shdict_boolean(false),
                         empty = torii_shdict_string(NULL, 0);

    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, sizeof buf, &got, &st), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(got.type, TORII_SHDICT_NIL);
    CHECK(!st.forcible && !st.recovered && !st.wiped);

    CHECK_INT(torii_shdict_set(d, KS("s"), &s, 0, 42, 0, &st), TORII_SHDICT_OK);
    CHECK(!st.forcible);
    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, sizeof buf, &got, &st), TORII_SHDICT_OK);
    CHECK_INT(got.type, TORII_SHDICT_STRING);
    CHECK_INT(got.len, sizeof bin);
    CHECK(memcmp(buf, bin, sizeof bin) == 0);
    CHECK_INT(got.flags, 42);
    CHECK_INT(got.ttl_ms, 0);
    CHECK(!got.stale);

    /* Too small a buffer: nothing copied, the length says what to retry with. */
    memset(buf, '#', sizeof buf);
    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, 3, &got, NULL), TORII_SHDICT_TRUNCATED);
    CHECK_INT(got.len, sizeof bin);
    CHECK_INT(got.type, TORII_SHDICT_STRING);
    CHECK(buf[0] == '#');
    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, got.len, &got, NULL), TORII_SHDICT_OK);

    CHECK_INT(torii_shdict_set(d, KS("n"), &n, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("n"), 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_NUMBER && got.num == -2.5);
    CHECK_INT(torii_shdict_set(d, KS("t"), &t, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("t"), 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_BOOLEAN && got.boolean);
    CHECK_INT(torii_shdict_set(d, KS("f"), &f, 0, 7, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("f"), 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_BOOLEAN && !got.boolean && got.flags == 7);
    CHECK_INT(torii_shdict_set(d, KS("e"), &empty, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("e"), 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_STRING && got.len == 0);

    /* Overwrites change type and size: in place when the chunk size stays, moved when not. */
    CHECK_INT(torii_shdict_set(d, KS("s"), &n, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_NUMBER && got.num == -2.5 && got.flags == 0);
    memset(buf, 'x', 400);
    torii_shdict_value_t longer = torii_shdict_string(buf, 400);
    CHECK_INT(torii_shdict_set(d, KS("s"), &longer, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_STRING && got.len == 400 && buf[399] == 'x');
    CHECK_INT(torii_shdict_set(d, KS("s"), &t, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("s"), 0, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_BOOLEAN && got.boolean);
    CHECK_INT(entries(d), 5);
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(add_replace)
{
    torii_shdict_t *d = zone(64 * 1024);
    torii_shdict_value_t a = torii_shdict_string("A", 1), b = torii_shdict_string("B", 1);

    CHECK_INT(torii_shdict_replace(d, KS("k"), &a, 0, 0, 0, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK(!has(d, "k", 0));
    CHECK_INT(torii_shdict_add(d, KS("k"), &a, 100, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_add(d, KS("k"), &b, 0, 0, 0, NULL), TORII_SHDICT_EXISTS);
    CHECK_INT(torii_shdict_safe_add(d, KS("k"), &b, 0, 0, 0, NULL), TORII_SHDICT_EXISTS);
    CHECK_STR(get_str(d, "k", 0), "A");
    CHECK_INT(torii_shdict_replace(d, KS("k"), &b, 0, 0, 10, NULL), TORII_SHDICT_OK);
    CHECK_STR(get_str(d, "k", 10), "B");
    /* replace took ttl 0: it no longer expires at 100. */
    CHECK_STR(get_str(d, "k", 1000), "B");

    /* An expired key counts as absent. */
    CHECK_INT(torii_shdict_set(d, KS("x"), &a, 50, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_replace(d, KS("x"), &b, 0, 0, 50, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_set(d, KS("y"), &a, 50, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_add(d, KS("y"), &b, 0, 0, 50, NULL), TORII_SHDICT_OK);
    CHECK_STR(get_str(d, "y", 60), "B");
    CHECK_INT(torii_shdict_set(d, KS("z"), &a, 50, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_safe_add(d, KS("z"), &b, 0, 0, 50, NULL), TORII_SHDICT_OK);
    CHECK_STR(get_str(d, "z", 60), "B");
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(incr)
{
    torii_shdict_t *d = zone(64 * 1024);
    torii_shdict_value_t s = torii_shdict_string("str", 3), b = torii_shdict_boolean(true), n = torii_shdict_number(5);
    torii_shdict_got_t got;
    uint64_t ttl;
    double x = -1;

    CHECK_INT(torii_shdict_incr(d, KS("c"), 1, 0, false, 0, 0, &x, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK(x == -1 && !has(d, "c", 0));
    CHECK_INT(torii_shdict_incr(d, KS("c"), 1, 10, true, 500, 1000, &x, NULL), TORII_SHDICT_OK);
    CHECK(x == 11);
    CHECK_INT(torii_shdict_incr(d, KS("c"), -0.5, 99, true, 9999, 1100, &x, NULL), TORII_SHDICT_OK);
    CHECK(x == 10.5);
    /* The TTL is the creating call's; later incrs keep it. */
    CHECK_INT(torii_shdict_ttl(d, KS("c"), 1100, &ttl, NULL), TORII_SHDICT_OK);
    CHECK_INT(ttl, 400);
    CHECK_INT(torii_shdict_get(d, KS("c"), 1499, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.type == TORII_SHDICT_NUMBER && got.num == 10.5 && got.ttl_ms == 1);
    /* Expired: absent without init, recreated with it. */
    CHECK_INT(torii_shdict_incr(d, KS("c"), 1, 0, false, 0, 1500, &x, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_set(d, KS("c"), &n, 10, 0, 1500, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_incr(d, KS("c"), 2, 100, true, 0, 1600, &x, NULL), TORII_SHDICT_OK);
    CHECK(x == 102);
    CHECK_INT(torii_shdict_ttl(d, KS("c"), 1600, &ttl, NULL), TORII_SHDICT_OK);
    CHECK_INT(ttl, 0);

    /* Flags survive an incr of a stored number. */
    CHECK_INT(torii_shdict_set(d, KS("n"), &n, 0, 9, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_incr(d, KS("n"), 3, 0, false, 0, 0, &x, NULL), TORII_SHDICT_OK);
    CHECK(x == 8);
    CHECK_INT(torii_shdict_get(d, KS("n"), 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 8 && got.flags == 9);

    CHECK_INT(torii_shdict_set(d, KS("s"), &s, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_incr(d, KS("s"), 1, 0, true, 0, 0, &x, NULL), TORII_SHDICT_NOT_NUMBER);
    CHECK_STR(get_str(d, "s", 0), "str");
    CHECK_INT(torii_shdict_set(d, KS("b"), &b, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_incr(d, KS("b"), 1, 0, false, 0, 0, &x, NULL), TORII_SHDICT_NOT_NUMBER);
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(delete_expire_ttl)
{
    torii_shdict_t *d = zone(64 * 1024);
    uint64_t ttl = 99;

    CHECK_INT(torii_shdict_delete(d, KS("a"), 0, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_expire(d, KS("a"), 10, 0, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_ttl(d, KS("a"), 0, &ttl, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(ttl, 0);

    CHECK_INT(set_str(d, "a", "1", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_ttl(d, KS("a"), 0, &ttl, NULL), TORII_SHDICT_OK);
    CHECK_INT(ttl, 0);
    CHECK_INT(torii_shdict_expire(d, KS("a"), 300, 1000, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_ttl(d, KS("a"), 1100, &ttl, NULL), TORII_SHDICT_OK);
    CHECK_INT(ttl, 200);
    CHECK_INT(torii_shdict_expire(d, KS("a"), 0, 1200, NULL), TORII_SHDICT_OK); /* never again */
    CHECK_INT(torii_shdict_ttl(d, KS("a"), 1200, &ttl, NULL), TORII_SHDICT_OK);
    CHECK_INT(ttl, 0);
    CHECK_STR(get_str(d, "a", 1000000), "1");
    CHECK_INT(torii_shdict_delete(d, KS("a"), 1000000, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_delete(d, KS("a"), 1000000, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK(!has(d, "a", 1000000));

    /* Expired entries: delete, expire and ttl all say not found. */
    CHECK_INT(set_str(d, "b", "1", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "c", "1", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "e", "1", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_delete(d, KS("b"), 10, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_expire(d, KS("c"), 100, 10, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_ttl(d, KS("e"), 10, &ttl, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(entries(d), 0);
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(ttl_clock)
{
    torii_shdict_t *d = zone(64 * 1024);
    torii_shdict_got_t got;
    char buf[64];
    uint64_t ttl;

    CHECK_INT(set_str(d, "a", "alpha", 100, 1000, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("a"), 1099, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK_INT(got.ttl_ms, 1);
    CHECK(!got.stale);
    CHECK_INT(torii_shdict_ttl(d, KS("a"), 1099, &ttl, NULL), TORII_SHDICT_OK);
    CHECK_INT(ttl, 1);
    /* Expiry is inclusive: at 1100 it is gone for get, still there for get_stale. */
    CHECK_INT(torii_shdict_get_stale(d, KS("a"), 1100, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.stale && got.ttl_ms == 0 && got.len == 5 && memcmp(buf, "alpha", 5) == 0);
    CHECK_INT(entries(d), 1);
    CHECK_INT(torii_shdict_get(d, KS("a"), 1100, buf, sizeof buf, &got, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(entries(d), 0); /* the get freed it */
    CHECK_INT(torii_shdict_get_stale(d, KS("a"), 1100, buf, sizeof buf, &got, NULL), TORII_SHDICT_NOT_FOUND);
    /* get_stale of a live entry is a plain get. */
    CHECK_INT(set_str(d, "b", "beta", 50, 2000, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get_stale(d, KS("b"), 2010, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(!got.stale && got.ttl_ms == 40);

    /* A TTL that would overflow the clock saturates into "practically never", not "never". */
    CHECK_INT(set_str(d, "far", "x", UINT64_MAX, 5, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_ttl(d, KS("far"), 5, &ttl, NULL), TORII_SHDICT_OK);
    CHECK(ttl == UINT64_MAX - 5);
    CHECK(has(d, "far", UINT64_MAX - 1));
    CHECK(!has(d, "far", UINT64_MAX));
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(reap_on_write)
{
    torii_shdict_t *d = zone(64 * 1024);
    torii_shdict_got_t got;
    char buf[16];
    /* LRU order, oldest first: a b c (expire at 10), then k (never). */
    CHECK_INT(set_str(d, "a", "1", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "b", "1", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "c", "1", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "k", "1", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(entries(d), 4);
    /* Each write frees up to two expired entries from the tail: a and b. */
    CHECK_INT(set_str(d, "x", "1", 0, 20, NULL), TORII_SHDICT_OK);
    CHECK_INT(entries(d), 3);
    CHECK_INT(torii_shdict_get_stale(d, KS("a"), 20, NULL, 0, &got, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_get_stale(d, KS("c"), 20, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.stale && got.len == 1);
    /* The reaping stops at the first live tail entry. */
    CHECK_INT(torii_shdict_delete(d, KS("nothing"), 20, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(entries(d), 2);
    CHECK_INT(torii_shdict_delete(d, KS("nothing"), 20, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(entries(d), 2);
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

/* Fill a fresh zone with safe_set until it refuses: keys "k%04d", 40-byte values. Returns how many fit. */
static int fill(torii_shdict_t *d, uint64_t now)
{
    char key[16], val[40];
    memset(val, 'v', sizeof val);
    torii_shdict_value_t v = torii_shdict_string(val, sizeof val);
    for (int i = 0; i < 10000; i++) {
        torii_shdict_status_t st;
        snprintf(key, sizeof key, "k%04d", i);
        torii_shdict_rc_t rc = torii_shdict_safe_set(d, KS(key), &v, 0, 0, now, &st);
        if (st.forcible)
            return -1;
        if (rc == TORII_SHDICT_NO_MEMORY)
            return i;
        if (rc != TORII_SHDICT_OK)
            return -1;
    }
    return -1;
}

/* Is "k%04d" present? Through ttl(), which leaves the LRU order alone. */
static bool has_k(torii_shdict_t *d, int i, uint64_t now)
{
    char key[16];
    uint64_t ttl;
    snprintf(key, sizeof key, "k%04d", i);
    return torii_shdict_ttl(d, KS(key), now, &ttl, NULL) == TORII_SHDICT_OK;
}

TEST(lru_eviction)
{
    torii_shdict_t *d = zone(TORII_SHDICT_MIN_SIZE);
    torii_shdict_status_t st;
    torii_shdict_stats_t stats;
    char val[40];
    memset(val, 'n', sizeof val);
    torii_shdict_value_t v = torii_shdict_string(val, sizeof val);

    int n = fill(d, 0);
    CHECK(n > 100);
    CHECK_INT(entries(d), n);
    CHECK_INT(torii_shdict_free_space(d), 0);
    /* Touch the oldest: k0001 becomes the least recently used. */
    CHECK(has(d, "k0000", 0));
    CHECK_INT(torii_shdict_set(d, KS("n0001"), &v, 0, 0, 0, &st), TORII_SHDICT_OK);
    CHECK(st.forcible);
    CHECK(!has_k(d, 1, 0));
    CHECK(has_k(d, 0, 0) && has_k(d, 2, 0));
    CHECK_INT(torii_shdict_add(d, KS("n0002"), &v, 0, 0, 0, &st), TORII_SHDICT_OK);
    CHECK(st.forcible);
    CHECK(!has_k(d, 2, 0) && has_k(d, 3, 0));
    /* A number under a longer key needs the same chunk size (96 bytes). */
    double x;
    CHECK_INT(torii_shdict_incr(d, KS("n0003-a-key-long-enough-for-the-class"), 1, 0, true, 0, 0, &x, &st),
              TORII_SHDICT_OK);
    CHECK(st.forcible);
    CHECK(!has_k(d, 3, 0) && has_k(d, 4, 0));
    /* replace of an existing key of the same size is in place: nothing evicted. */
    CHECK_INT(torii_shdict_replace(d, KS("k0004"), &v, 0, 0, 0, &st), TORII_SHDICT_OK);
    CHECK(!st.forcible);
    CHECK_INT(entries(d), n);
    torii_shdict_stats(d, &stats);
    CHECK_INT(stats.evictions, 3);
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);

    /* Expired entries go before live ones, even when not at the tail. */
    d = zone(TORII_SHDICT_MIN_SIZE);
    n = fill(d, 0);
    CHECK(n > 100);
    CHECK_INT(torii_shdict_expire(d, KS("k0005"), 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_set(d, KS("n0001"), &v, 0, 0, 20, &st), TORII_SHDICT_OK);
    CHECK(!st.forcible);
    CHECK(has_k(d, 0, 20) && has_k(d, 4, 20) && has_k(d, 6, 20) && !has_k(d, 5, 20));
    CHECK_INT(entries(d), n);
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(safe_refuses)
{
    torii_shdict_t *d = zone(TORII_SHDICT_MIN_SIZE);
    torii_shdict_status_t st;
    torii_shdict_stats_t stats;
    char val[300];
    memset(val, 's', sizeof val);
    torii_shdict_value_t same = torii_shdict_string(val, 40), bigger = torii_shdict_string(val, 300);

    int n = fill(d, 0);
    CHECK(n > 100);
    CHECK_INT(torii_shdict_safe_add(d, KS("new"), &same, 0, 0, 0, &st), TORII_SHDICT_NO_MEMORY);
    CHECK(!st.forcible);
    CHECK_INT(torii_shdict_safe_set(d, KS("new"), &same, 0, 0, 0, &st), TORII_SHDICT_NO_MEMORY);
    /* Same chunk size: rewritten in place, no room needed. */
    CHECK_INT(torii_shdict_safe_set(d, KS("k0007"), &same, 0, 3, 0, &st), TORII_SHDICT_OK);
    /* A bigger value has no room: the old one stays. */
    CHECK_INT(torii_shdict_safe_set(d, KS("k0008"), &bigger, 0, 0, 0, &st), TORII_SHDICT_NO_MEMORY);
    CHECK(!st.forcible);
    char buf[512];
    torii_shdict_got_t got;
    CHECK_INT(torii_shdict_get(d, KS("k0008"), 0, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.len == 40 && buf[0] == 'v');
    CHECK_INT(entries(d), n);
    torii_shdict_stats(d, &stats);
    CHECK_INT(stats.evictions, 0);
    for (int i = 0; i < n; i++)
        CHECK(has_k(d, i, 0));

    /* An expired entry is not live: safe stores may take its room. */
    CHECK_INT(torii_shdict_expire(d, KS("k0010"), 5, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_safe_add(d, KS("new"), &same, 0, 0, 10, &st), TORII_SHDICT_OK);
    CHECK(!st.forcible);
    CHECK(!has_k(d, 10, 10));

    /* The unsafe set makes room. */
    CHECK_INT(torii_shdict_set(d, KS("k0008"), &bigger, 0, 0, 10, &st), TORII_SHDICT_OK);
    CHECK(st.forcible);
    CHECK_INT(torii_shdict_get(d, KS("k0008"), 10, buf, sizeof buf, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.len == 300 && buf[299] == 's');
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(large_values)
{
    torii_shdict_t *d = zone(1024 * 1024);
    torii_shdict_status_t st;
    torii_shdict_got_t got;
    size_t free0 = torii_shdict_free_space(d), big = free0 - 40 - 3;
    unsigned char *v = malloc(big + 1), *out = malloc(big + 1);
    for (size_t i = 0; i <= big; i++)
        v[i] = (unsigned char)(i * 7 + (i >> 11));

    torii_shdict_value_t a = torii_shdict_string(v, 100 * 1024), b = torii_shdict_string(v + 1, 300 * 1024);
    CHECK_INT(torii_shdict_set(d, KS("a"), &a, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_set(d, KS("b"), &b, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, KS("a"), 0, out, big, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.len == 100 * 1024 && memcmp(out, v, got.len) == 0);
    CHECK_INT(torii_shdict_get(d, KS("b"), 0, out, big, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.len == 300 * 1024 && memcmp(out, v + 1, got.len) == 0);
    CHECK(torii_shdict_free_space(d) <= free0 - 400 * 1024);
    CHECK_INT(torii_shdict_delete(d, KS("a"), 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_delete(d, KS("b"), 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_free_space(d), free0); /* runs merged back */

    /* The largest value the zone holds takes every page, evicting everything else. */
    CHECK_INT(set_str(d, "small", "x", 0, 0, NULL), TORII_SHDICT_OK);
    torii_shdict_value_t whole = torii_shdict_string(v, big), over = torii_shdict_string(v, big + 1);
    CHECK_INT(torii_shdict_set(d, KS("big"), &over, 0, 0, 0, &st), TORII_SHDICT_NO_MEMORY);
    CHECK(!st.forcible && has(d, "small", 0)); /* refused before touching anything */
    CHECK_INT(torii_shdict_safe_set(d, KS("big"), &whole, 0, 0, 0, &st), TORII_SHDICT_NO_MEMORY);
    CHECK_INT(torii_shdict_set(d, KS("big"), &whole, 0, 0, 0, &st), TORII_SHDICT_OK);
    CHECK(st.forcible && !has(d, "small", 0));
    CHECK_INT(torii_shdict_free_space(d), 0);
    CHECK_INT(torii_shdict_get(d, KS("big"), 0, out, big, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.len == big && memcmp(out, v, big) == 0);
    CHECK_INT(torii_shdict_delete(d, KS("big"), 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_free_space(d), free0);

    /* Pages full of small entries make way for a large value. */
    char key[16];
    torii_shdict_value_t small = torii_shdict_string(v, 100);
    for (int i = 0; torii_shdict_free_space(d) > 0; i++) {
        snprintf(key, sizeof key, "s%05d", i);
        CHECK_INT(torii_shdict_safe_set(d, KS(key), &small, 0, 0, 0, NULL), TORII_SHDICT_OK);
    }
    /* Scatter the LRU order so no single page empties early. */
    for (int i = 0; i < 3000; i += 3) {
        snprintf(key, sizeof key, "s%05d", i);
        has(d, key, 0);
    }
    size_t before = entries(d);
    torii_shdict_value_t mid = torii_shdict_string(v, 64 * 1024);
    CHECK_INT(torii_shdict_set(d, KS("mid"), &mid, 0, 0, 0, &st), TORII_SHDICT_OK);
    CHECK(st.forcible && entries(d) < before);
    CHECK_INT(torii_shdict_get(d, KS("mid"), 0, out, big, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.len == 64 * 1024 && memcmp(out, v, got.len) == 0);
    CHECK(zone_ok(d));
    free(v);
    free(out);
    torii_shdict_destroy(d);
}

TEST(binary_keys)
{
    torii_shdict_t *d = zone(1024 * 1024);
    torii_shdict_value_t one = torii_shdict_number(1), two = torii_shdict_number(2), three = torii_shdict_number(3),
                         four = torii_shdict_number(4);
    torii_shdict_got_t got;

    CHECK_INT(torii_shdict_set(d, "a\0b", 3, &one, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_set(d, "a\0c", 3, &two, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_set(d, "a", 1, &three, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_set(d, "a\0", 2, &four, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, "a\0b", 3, 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 1);
    CHECK_INT(torii_shdict_get(d, "a\0c", 3, 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 2);
    CHECK_INT(torii_shdict_get(d, "a", 1, 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 3);
    CHECK_INT(torii_shdict_get(d, "a\0", 2, 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 4);
    CHECK_INT(torii_shdict_get(d, "a\0d", 3, 0, NULL, 0, &got, NULL), TORII_SHDICT_NOT_FOUND);

    /* The longest keys, differing in their last byte. */
    char *k = malloc(TORII_SHDICT_MAX_KEY);
    memset(k, 0xff, TORII_SHDICT_MAX_KEY);
    CHECK_INT(torii_shdict_set(d, k, TORII_SHDICT_MAX_KEY, &one, 0, 0, 0, NULL), TORII_SHDICT_OK);
    k[TORII_SHDICT_MAX_KEY - 1] = 0;
    CHECK_INT(torii_shdict_get(d, k, TORII_SHDICT_MAX_KEY, 0, NULL, 0, &got, NULL), TORII_SHDICT_NOT_FOUND);
    CHECK_INT(torii_shdict_set(d, k, TORII_SHDICT_MAX_KEY, &two, 0, 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(torii_shdict_get(d, k, TORII_SHDICT_MAX_KEY, 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 2);
    k[TORII_SHDICT_MAX_KEY - 1] = (char)0xff;
    CHECK_INT(torii_shdict_get(d, k, TORII_SHDICT_MAX_KEY, 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == 1);
    CHECK_INT(torii_shdict_delete(d, k, TORII_SHDICT_MAX_KEY, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(entries(d), 5);
    CHECK(zone_ok(d));
    free(k);
    torii_shdict_destroy(d);
}

typedef struct {
    char seen[16][8];
    int n, stop_after;
    torii_shdict_t *d;
    torii_shdict_rc_t reentry;
} keys_ctx_t;

static bool collect(void *ud, const void *key, size_t klen)
{
    keys_ctx_t *c = ud;
    if (c->n < 16 && klen < 8) {
        memcpy(c->seen[c->n], key, klen);
        c->seen[c->n][klen] = 0;
    }
    c->n++;
    if (c->d) {
        torii_shdict_got_t got;
        c->reentry = torii_shdict_get(c->d, key, klen, 0, NULL, 0, &got, NULL);
    }
    return c->stop_after == 0 || c->n < c->stop_after;
}

TEST(keys)
{
    torii_shdict_t *d = zone(64 * 1024);
    keys_ctx_t c = {0};
    CHECK_INT(torii_shdict_keys(d, 0, 0, collect, &c, NULL), 0);
    CHECK_INT(set_str(d, "k1", "", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "k2", "", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "k3", "", 10, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "k4", "", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "k5", "", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK(has(d, "k2", 0));

    /* Most recent first; expired k3 skipped. */
    CHECK_INT(torii_shdict_keys(d, 20, 0, collect, &c, NULL), 4);
    CHECK_STR(c.seen[0], "k2");
    CHECK_STR(c.seen[1], "k5");
    CHECK_STR(c.seen[2], "k4");
    CHECK_STR(c.seen[3], "k1");
    c = (keys_ctx_t){0};
    CHECK_INT(torii_shdict_keys(d, 20, 2, collect, &c, NULL), 2);
    CHECK_INT(c.n, 2);
    c = (keys_ctx_t){.stop_after = 1};
    CHECK_INT(torii_shdict_keys(d, 20, 0, collect, &c, NULL), 1);
    CHECK_STR(c.seen[0], "k2");
    CHECK_INT(torii_shdict_keys(d, 0, 0, collect, &(keys_ctx_t){0}, NULL), 5);

    /* Calling back into the zone from the callback fails instead of deadlocking. */
    c = (keys_ctx_t){.stop_after = 1, .d = d};
    CHECK_INT(torii_shdict_keys(d, 0, 0, collect, &c, NULL), 1);
    CHECK_INT(c.reentry, TORII_SHDICT_LOCK_FAILED);
    CHECK(has(d, "k1", 0));
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

TEST(flushes)
{
    torii_shdict_t *d = zone(256 * 1024);
    size_t free0 = torii_shdict_free_space(d);
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "f%d", i);
        CHECK_INT(set_str(d, key, "value", i % 2 ? 10 : 0, 0, NULL), TORII_SHDICT_OK);
    }
    CHECK_INT(torii_shdict_flush_expired(d, 5, 0, NULL), 0);
    CHECK_INT(torii_shdict_flush_expired(d, 10, 10, NULL), 10);
    CHECK_INT(entries(d), 90);
    CHECK_INT(torii_shdict_flush_expired(d, 10, 0, NULL), 40);
    CHECK_INT(entries(d), 50);
    CHECK(has(d, "f0", 10) && !has(d, "f1", 10));
    CHECK(zone_ok(d));

    torii_shdict_flush_all(d, NULL);
    CHECK_INT(entries(d), 0);
    CHECK(!has(d, "f0", 10));
    CHECK_INT(torii_shdict_free_space(d), free0);
    CHECK(zone_ok(d));
    CHECK_INT(set_str(d, "after", "yes", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_STR(get_str(d, "after", 0), "yes");
    torii_shdict_destroy(d);
}

/* --- Several processes ------------------------------------------------------------------------------------------ */

#define PROCS 4
#define INCRS 20000

static int child_work(torii_shdict_t *d, int id)
{
    char key[32], val[600];
    double x;
    memset(val, 'a' + id, sizeof val);
    for (int j = 0; j < INCRS; j++) {
        if (torii_shdict_incr(d, KS("counter"), 1, 0, true, 0, 0, &x, NULL) != TORII_SHDICT_OK)
            return 1;
        if (j % 10 == 0) {
            torii_shdict_value_t v = torii_shdict_string(val, (size_t)(j % 590) + 1);
            snprintf(key, sizeof key, "c%d-%d", id, j % 100);
            if (torii_shdict_add(d, KS(key), &v, 0, 0, 0, NULL) != TORII_SHDICT_OK)
                return 2;
            if (torii_shdict_set(d, KS("shared"), &v, 0, 0, 0, NULL) != TORII_SHDICT_OK)
                return 3;
            if (torii_shdict_delete(d, KS(key), 0, NULL) != TORII_SHDICT_OK)
                return 4;
        }
    }
    return 0;
}

static int wait_child(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(processes)
{
    torii_shdict_t *d = zone(1024 * 1024);
    pid_t pids[PROCS];
    fflush(NULL);
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(child_work(d, i));
        CHECK(pids[i] > 0);
    }
    for (int i = 0; i < PROCS; i++)
        if (pids[i] > 0)
            CHECK_INT(wait_child(pids[i]), 0);
    torii_shdict_got_t got;
    CHECK_INT(torii_shdict_get(d, KS("counter"), 0, NULL, 0, &got, NULL), TORII_SHDICT_OK);
    CHECK(got.num == PROCS * INCRS);
    CHECK_INT(entries(d), 2); /* counter and shared */
    CHECK(zone_ok(d));
    torii_shdict_destroy(d);
}

/* A child takes the lock the given way and dies holding it. */
static void die_holding(torii_shdict_t *d, int mode)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        torii_shdict_test_hold(d, mode);
        _exit(0);
    }
    CHECK(pid > 0 && wait_child(pid) == 0);
}

TEST(robust_lock)
{
    torii_shdict_t *d = zone(64 * 1024);
    torii_shdict_status_t st;
    torii_shdict_stats_t stats;
    CHECK_INT(set_str(d, "a", "A", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_INT(set_str(d, "b", "B", 0, 0, NULL), TORII_SHDICT_OK);

    /* The same thread taking the lock twice is refused, not deadlocked. */
    torii_shdict_test_hold(d, 0);
    CHECK_INT(set_str(d, "c", "C", 0, 0, NULL), TORII_SHDICT_LOCK_FAILED);
    torii_shdict_test_release(d);

    /* Died between changes: the zone checks out, nothing is lost. */
    die_holding(d, 0);
    CHECK_INT(set_str(d, "c", "C", 0, 0, &st), TORII_SHDICT_OK);
    CHECK(st.recovered && !st.wiped);
    CHECK_INT(set_str(d, "d", "D", 0, 0, &st), TORII_SHDICT_OK);
    CHECK(!st.recovered);
    CHECK_STR(get_str(d, "a", 0), "A");
    CHECK_STR(get_str(d, "b", 0), "B");
    CHECK_STR(get_str(d, "c", 0), "C");

    /* Died rewriting the most recent entry (c, just read): that entry is dropped. */
    CHECK(has(d, "c", 0));
    die_holding(d, 1);
    torii_shdict_got_t got;
    CHECK_INT(torii_shdict_get(d, KS("c"), 0, NULL, 0, &got, &st), TORII_SHDICT_NOT_FOUND);
    CHECK(st.recovered && !st.wiped);
    CHECK_STR(get_str(d, "a", 0), "A");
    CHECK_STR(get_str(d, "d", 0), "D");
    CHECK_INT(entries(d), 3);

    /* Died filling a new entry: its chunk goes back, nothing else changes. */
    size_t free_before = torii_shdict_free_space(d);
    die_holding(d, 3);
    CHECK_INT(torii_shdict_get(d, KS("a"), 0, NULL, 0, &got, &st), TORII_SHDICT_TRUNCATED); /* "A" needs 1 byte */
    CHECK(st.recovered && !st.wiped);
    CHECK_STR(get_str(d, "a", 0), "A");
    CHECK_INT(torii_shdict_free_space(d), free_before);
    CHECK_INT(entries(d), 3);
    CHECK(zone_ok(d));

    /* Died half way through relinking: the zone is emptied, and usable. */
    die_holding(d, 2);
    CHECK_INT(torii_shdict_get(d, KS("a"), 0, NULL, 0, &got, &st), TORII_SHDICT_NOT_FOUND);
    CHECK(st.recovered && st.wiped);
    CHECK_INT(entries(d), 0);
    CHECK(zone_ok(d));
    CHECK_INT(set_str(d, "a", "again", 0, 0, NULL), TORII_SHDICT_OK);
    CHECK_STR(get_str(d, "a", 0), "again");
    torii_shdict_stats(d, &stats);
    CHECK_INT(stats.recoveries, 4);
    CHECK_INT(stats.wipes, 1);
    torii_shdict_destroy(d);
}

/*
 * Real deaths: a child storing large values (the copy happens under the
 * lock, so most kills land inside it) is SIGKILLed at varying moments.
 * Whatever it was doing, the next caller carries on and the zone verifies.
 */
TEST(killed_mid_operation)
{
    torii_shdict_t *d = zone(1 << 20);
    unsigned char *v = malloc(100000);
    int recovered = 0;
    memset(v, 'z', 100000);
    for (int round = 0; round < 20; round++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            for (unsigned i = 0;; i++) {
                char key[16];
                snprintf(key, sizeof key, "r%u", i % 64);
                torii_shdict_value_t val = torii_shdict_string(v, (i * 7919u) % 90000);
                torii_shdict_set(d, KS(key), &val, 0, 0, 0, NULL);
                if (i % 3 == 0)
                    torii_shdict_delete(d, KS(key), 0, NULL);
            }
        }
        CHECK(pid > 0);
        usleep(2000 + (unsigned)round * 150);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        torii_shdict_status_t st;
        CHECK_INT(set_str(d, "after", "x", 0, 0, &st), TORII_SHDICT_OK);
        recovered += st.recovered;
        CHECK(zone_ok(d));
        CHECK_STR(get_str(d, "after", 0), "x");
    }
    CHECK(recovered > 0); /* else the test did not test recovery; in practice most rounds recover */
    free(v);
    torii_shdict_destroy(d);
}

/* --- Soak against a reference model ----------------------------------------------------------------------------- */

typedef struct {
    bool present; /* stored, possibly expired (the zone may or may not have freed it) */
    uint8_t type;
    uint32_t len, flags;
    double num;
    bool boolean;
    uint64_t expires;
    unsigned char *data;
} model_t;

typedef struct {
    size_t zone;
    unsigned nkeys, nbig, bigmax, smallmax, steps, check_every;
    bool pressure; /* small zone: evictions expected, the model resyncs after each */
    uint64_t seed;
} soak_cfg_t;

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Key bytes for id: binary, with a NUL, lengths 4..8. */
static size_t soak_key(unsigned id, unsigned char *k)
{
    size_t n = 4 + id % 5;
    k[0] = 'k';
    k[1] = (unsigned char)(id & 0xff);
    k[2] = (unsigned char)(id >> 8);
    k[3] = 0;
    memset(k + 4, 0xab, n - 4);
    return n;
}

static bool m_live(const model_t *m, uint64_t now)
{
    return m->present && !(m->expires && m->expires <= now);
}

typedef struct {
    unsigned nkeys, n;
    bool bad;
    uint8_t *seen;
} seen_t;

static bool mark_seen(void *ud, const void *key, size_t klen)
{
    seen_t *s = ud;
    const unsigned char *k = key;
    unsigned id = klen >= 4 ? (unsigned)k[1] | (unsigned)k[2] << 8 : UINT32_MAX;
    unsigned char want[16];
    if (id >= s->nkeys || soak_key(id, want) != klen || memcmp(want, k, klen) != 0 || s->seen[id])
        s->bad = true;
    else
        s->seen[id] = 1;
    s->n++;
    return true;
}

static bool same_value(const model_t *m, torii_shdict_rc_t rc, const torii_shdict_got_t *g, const unsigned char *buf,
                       uint64_t now, bool stale)
{
    if (g->type != m->type || g->flags != m->flags || g->stale != stale)
        return false;
    if (g->ttl_ms != (stale || !m->expires ? 0 : m->expires - now))
        return false;
    switch (m->type) {
    case TORII_SHDICT_STRING:
        return g->len == m->len && (rc == TORII_SHDICT_TRUNCATED || !m->len || memcmp(buf, m->data, m->len) == 0);
    case TORII_SHDICT_NUMBER: return g->num == m->num;
    default: return g->boolean == m->boolean;
    }
}

#define SOAK_FAIL(...)                                                                                                 \
    do {                                                                                                               \
        fprintf(stderr, "  FAIL soak seed %llu step %u key %u: ", (unsigned long long)c->seed, step, id);              \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fprintf(stderr, "\n");                                                                                         \
        CHECK(0);                                                                                                      \
        goto end;                                                                                                      \
    } while (0)

static void soak(const soak_cfg_t *c)
{
    torii_shdict_t *d = zone(c->zone);
    model_t *m = calloc(c->nkeys, sizeof *m);
    unsigned char *store = malloc((size_t)c->nkeys * c->bigmax), *vbuf = malloc(c->bigmax), *gbuf = malloc(c->bigmax);
    uint8_t *seen = malloc(c->nkeys);
    unsigned char key[16];
    uint64_t now = 1000;
    unsigned step = 0, id = 0, evicting_ops = 0;
    char err[256];
    for (unsigned i = 0; i < c->nkeys; i++)
        m[i].data = store + (size_t)i * c->bigmax;
    rng = c->seed;

    for (step = 1; step <= c->steps; step++) {
        now += rnd() % 3;
        id = (unsigned)(rnd() % c->nkeys);
        size_t klen = soak_key(id, key);
        model_t *e = &m[id];
        bool live = m_live(e, now), safe = false;
        unsigned op = (unsigned)(rnd() % 100);
        uint64_t ttl = rnd() % 10 < 4 ? 1 + rnd() % 2000 : 0;
        torii_shdict_status_t st = {0};
        torii_shdict_got_t got;
        torii_shdict_rc_t rc = TORII_SHDICT_OK;

        if (op < 25) {
            bool stale = rnd() % 5 == 0;
            size_t buflen = rnd() % 8 == 0 ? (size_t)(rnd() % (e->len + 1)) : c->bigmax;
            rc = (stale ? torii_shdict_get_stale : torii_shdict_get)(d, key, klen, now, gbuf, buflen, &got, &st);
            if (live) {
                torii_shdict_rc_t want =
                    e->type == TORII_SHDICT_STRING && e->len > buflen ? TORII_SHDICT_TRUNCATED : TORII_SHDICT_OK;
                if (rc != want || !same_value(e, rc, &got, gbuf, now, false))
                    SOAK_FAIL("get: rc %d (want %d), type %d/%d, len %zu/%u", rc, want, got.type, e->type, got.len,
                              e->len);
            } else if (stale && e->present) {
                if (rc != TORII_SHDICT_NOT_FOUND && !same_value(e, rc, &got, gbuf, now, true))
                    SOAK_FAIL("get_stale of an expired entry: rc %d", rc);
            } else {
                if (rc != TORII_SHDICT_NOT_FOUND)
                    SOAK_FAIL("get of an absent key: rc %d", rc);
                if (!stale)
                    e->present = false;
            }
        } else if (op < 55) {
            torii_shdict_value_t v;
            unsigned kind = (unsigned)(rnd() % 6), t = (unsigned)(rnd() % 10);
            uint32_t flags = rnd() % 4 ? 0 : (uint32_t)rnd();
            if (t < 6) {
                size_t max = id < c->nbig ? c->bigmax : c->smallmax;
                size_t len = (size_t)(rnd() % (max + 1));
                for (size_t i = 0; i < len; i++)
                    vbuf[i] = (unsigned char)(rnd() >> 24);
                v = torii_shdict_string(vbuf, len);
            } else if (t < 9) {
                v = torii_shdict_number((double)((int64_t)(rnd() % 2001) - 1000));
            } else {
                v = torii_shdict_boolean(rnd() % 2);
            }
            torii_shdict_rc_t want = TORII_SHDICT_OK;
            switch (kind) {
            case 0:
            case 1: rc = torii_shdict_set(d, key, klen, &v, ttl, flags, now, &st); break;
            case 2:
                safe = true;
                rc = torii_shdict_safe_set(d, key, klen, &v, ttl, flags, now, &st);
                break;
            case 3:
                want = live ? TORII_SHDICT_EXISTS : TORII_SHDICT_OK;
                rc = torii_shdict_add(d, key, klen, &v, ttl, flags, now, &st);
                break;
            case 4:
                safe = true;
                want = live ? TORII_SHDICT_EXISTS : TORII_SHDICT_OK;
                rc = torii_shdict_safe_add(d, key, klen, &v, ttl, flags, now, &st);
                break;
            default:
                want = live ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND;
                rc = torii_shdict_replace(d, key, klen, &v, ttl, flags, now, &st);
                break;
            }
            if (rc != want && !(c->pressure && safe && want == TORII_SHDICT_OK && rc == TORII_SHDICT_NO_MEMORY))
                SOAK_FAIL("store kind %u: rc %d, want %d", kind, rc, want);
            if (rc == TORII_SHDICT_OK) {
                e->present = true;
                e->type = (uint8_t)v.type;
                e->len = (uint32_t)v.len;
                if (v.type == TORII_SHDICT_STRING && v.len)
                    memcpy(e->data, v.str, v.len);
                e->num = v.num;
                e->boolean = v.boolean;
                e->flags = flags;
                e->expires = ttl ? now + ttl : 0;
            } else if (!live) {
                e->present = false; /* the zone met the expired entry and freed it */
            }
        } else if (op < 70) {
            double delta = (double)((int)(rnd() % 11) - 5), init = (double)(rnd() % 100), x = 0;
            bool has_init = rnd() % 2;
            rc = torii_shdict_incr(d, key, klen, delta, init, has_init, ttl, now, &x, &st);
            if (live && e->type == TORII_SHDICT_NUMBER) {
                e->num += delta;
                if (rc != TORII_SHDICT_OK || x != e->num)
                    SOAK_FAIL("incr: rc %d, %g want %g", rc, x, e->num);
            } else if (live) {
                if (rc != TORII_SHDICT_NOT_NUMBER)
                    SOAK_FAIL("incr of a non-number: rc %d", rc);
            } else if (has_init) {
                if (rc != TORII_SHDICT_OK || x != init + delta)
                    SOAK_FAIL("incr with init: rc %d, %g", rc, x);
                *e = (model_t){.present = true, .type = TORII_SHDICT_NUMBER, .num = x, .data = e->data};
                e->expires = ttl ? now + ttl : 0;
            } else {
                if (rc != TORII_SHDICT_NOT_FOUND)
                    SOAK_FAIL("incr of an absent key: rc %d", rc);
                e->present = false;
            }
        } else if (op < 78) {
            rc = torii_shdict_delete(d, key, klen, now, &st);
            if (rc != (live ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND))
                SOAK_FAIL("delete: rc %d, live %d", rc, live);
            e->present = false;
        } else if (op < 84) {
            rc = torii_shdict_expire(d, key, klen, ttl, now, &st);
            if (rc != (live ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND))
                SOAK_FAIL("expire: rc %d, live %d", rc, live);
            if (live)
                e->expires = ttl ? now + ttl : 0;
            else
                e->present = false;
        } else if (op < 90) {
            uint64_t left = 0;
            rc = torii_shdict_ttl(d, key, klen, now, &left, &st);
            if (rc != (live ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND) ||
                (live && left != (e->expires ? e->expires - now : 0)))
                SOAK_FAIL("ttl: rc %d, %llu", rc, (unsigned long long)left);
            if (!live)
                e->present = false;
        } else if (op < 96) {
            now += rnd() % 400;
        } else if (op < 99) {
            seen_t s = {.nkeys = c->nkeys, .seen = seen};
            unsigned nlive = 0;
            memset(seen, 0, c->nkeys);
            size_t n = torii_shdict_keys(d, now, 0, mark_seen, &s, &st);
            for (unsigned i = 0; i < c->nkeys; i++) {
                nlive += m_live(&m[i], now);
                if (m_live(&m[i], now) != (seen[i] != 0))
                    SOAK_FAIL("keys(): key %u listed %d, live in the model %d", i, seen[i], m_live(&m[i], now));
            }
            if (s.bad || n != s.n || n != nlive)
                SOAK_FAIL("keys(): %zu listed, %u live", n, nlive);
        } else if (rnd() % 40 != 0) {
            size_t max = rnd() % 2 ? 0 : 1 + rnd() % 20, n = torii_shdict_flush_expired(d, now, max, &st);
            if (max && n > max)
                SOAK_FAIL("flush_expired freed %zu > %zu", n, max);
            if (!max) {
                for (unsigned i = 0; i < c->nkeys; i++)
                    if (!m_live(&m[i], now))
                        m[i].present = false;
                unsigned nlive = 0;
                for (unsigned i = 0; i < c->nkeys; i++)
                    nlive += m[i].present;
                if (entries(d) != nlive)
                    SOAK_FAIL("after flush_expired: %zu entries, %u live", entries(d), nlive);
            }
        } else {
            torii_shdict_flush_all(d, &st);
            for (unsigned i = 0; i < c->nkeys; i++)
                m[i].present = false;
        }

        if (st.recovered || st.wiped)
            SOAK_FAIL("unexpected recovery");
        if (st.forcible) {
            if (!c->pressure || safe)
                SOAK_FAIL("op %u evicted (safe %d)", op, safe);
            /* Evictions are the zone's choice: drop from the model what is gone, and nothing else may differ. */
            seen_t s = {.nkeys = c->nkeys, .seen = seen};
            memset(seen, 0, c->nkeys);
            torii_shdict_keys(d, now, 0, mark_seen, &s, NULL);
            if (s.bad)
                SOAK_FAIL("keys(): a key listed twice or malformed");
            for (unsigned i = 0; i < c->nkeys; i++) {
                if (seen[i] && !m_live(&m[i], now))
                    SOAK_FAIL("key %u live in the zone, not in the model", i);
                if (!seen[i] && m_live(&m[i], now))
                    m[i].present = false;
            }
            if (!seen[id] && op >= 25 && op < 70 && rc == TORII_SHDICT_OK)
                SOAK_FAIL("the key just stored was evicted");
            evicting_ops++;
        }
        if (step % c->check_every == 0) {
            unsigned nlive = 0, npresent = 0;
            size_t n = entries(d);
            for (unsigned i = 0; i < c->nkeys; i++) {
                nlive += m_live(&m[i], now);
                npresent += m[i].present;
            }
            if (!torii_shdict_check(d, err, sizeof err))
                SOAK_FAIL("check: %s", err);
            if (n < nlive || n > npresent)
                SOAK_FAIL("%zu entries; the model has %u live, %u present", n, nlive, npresent);
        }
    }
    if (c->pressure && evicting_ops < c->steps / 100)
        SOAK_FAIL("only %u evicting operations: the zone was not under pressure", evicting_ops);
    step = 0;
end:
    CHECK(step == 0);
    CHECK(zone_ok(d));
    free(seen);
    free(gbuf);
    free(vbuf);
    free(store);
    free(m);
    torii_shdict_destroy(d);
}

TEST(soak_exact)
{
    /* Room for every key at its largest: no eviction may ever happen, every answer is exact. */
    soak(&(soak_cfg_t){.zone = 4 << 20,
                       .nkeys = 512,
                       .nbig = 8,
                       .bigmax = 12000,
                       .smallmax = 200,
                       .steps = 150000,
                       .check_every = 1000,
                       .seed = 0x5eed0001});
}

TEST(soak_pressure)
{
    /* A 32 KiB zone (7 pages) for values up to 9 KB: constant eviction, large and small chunks mixed. */
    soak(&(soak_cfg_t){.zone = 32 << 10,
                       .nkeys = 256,
                       .nbig = 8,
                       .bigmax = 9000,
                       .smallmax = 300,
                       .steps = 60000,
                       .check_every = 500,
                       .pressure = true,
                       .seed = 0x5eed0002});
}

int main(void)
{
    RUN(slab_classes);
    RUN(hash_chains);
    RUN(create_and_errors);
    RUN(values);
    RUN(add_replace);
    RUN(incr);
    RUN(delete_expire_ttl);
    RUN(ttl_clock);
    RUN(reap_on_write);
    RUN(lru_eviction);
    RUN(safe_refuses);
    RUN(large_values);
    RUN(binary_keys);
    RUN(keys);
    RUN(flushes);
    RUN(processes);
    RUN(robust_lock);
    RUN(killed_mid_operation);
    RUN(soak_exact);
    RUN(soak_pressure);
    return unit_report("test_shdict");
}
