/*
 * hash.h — hashes for the router's tables. torii_hash() reads 8 bytes at
 * a time (paths and hosts are long enough for a byte-wise hash to show);
 * torii_hash_rev_*() is FNV-1a over the bytes from last to first, so one
 * right-to-left pass over a host yields the hash of every suffix.
 */
#ifndef TORII_HASH_H
#define TORII_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t torii_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        /* The last 1..7 bytes in at most two loads: copying n bytes to a
         * word and reading it back stalls on the bytes just stored. */
        uint64_t w;
        if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, p, 4);
            memcpy(&b, p + n - 4, 4); /* overlaps a when n < 8 */
            w = (uint64_t)a | (uint64_t)b << 32;
        } else {
            w = (uint64_t)(uint8_t)p[0] | (uint64_t)(uint8_t)p[n / 2] << 8 | (uint64_t)(uint8_t)p[n - 1] << 16;
        }
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    return h ^ (h >> 29);
}

#define TORII_HASH_REV_SEED 1469598103934665603ull

static inline uint64_t torii_hash_rev_step(uint64_t h, char c)
{
    return (h ^ (uint8_t)c) * 1099511628211ull;
}

static inline uint64_t torii_hash_rev(const char *p, size_t n)
{
    uint64_t h = TORII_HASH_REV_SEED;
    while (n > 0)
        h = torii_hash_rev_step(h, p[--n]);
    return h;
}

#endif
