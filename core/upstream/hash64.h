/*
 * hash64.h — a 64-bit hash of a byte string and a 64-bit mixer, for the
 * consistent-hash ring and ewma's random choices.
 *
 * Ring keys are often nearly identical (10.0.0.1 and 10.0.0.2, /items/1
 * and /items/2) and must still land far apart, so every input bit has to
 * reach every output bit: each 8-byte word is multiplied, rotated and
 * multiplied into the state, and the result goes through a finaliser of
 * two xor-shift-multiply rounds. The multipliers are odd constants with
 * evenly spread bits (the fractional parts of the square roots of 3, 5
 * and 7, and of the golden ratio).
 */
#ifndef TORII_HASH64_H
#define TORII_HASH64_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TORII_H64_GOLDEN 0x9e3779b97f4a7c15ull
#define TORII_H64_SQRT3  0xbb67ae8584caa73bull
#define TORII_H64_SQRT5  0x3c6ef372fe94f82bull
#define TORII_H64_SQRT7  0xa54ff53a5f1d36f1ull

static inline uint64_t torii_h64_rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

/* A bijection on 64 bits in which each input bit flips about half the
 * output bits. */
static inline uint64_t torii_h64_mix(uint64_t x)
{
    x ^= x >> 32;
    x *= TORII_H64_SQRT3;
    x ^= x >> 29;
    x *= TORII_H64_SQRT7;
    x ^= x >> 32;
    return x;
}

static inline uint64_t torii_h64_word(uint64_t h, uint64_t w)
{
    h ^= torii_h64_rotl(w * TORII_H64_SQRT5, 31) * TORII_H64_GOLDEN;
    return torii_h64_rotl(h, 27) * TORII_H64_SQRT3 + TORII_H64_SQRT7;
}

static inline uint64_t torii_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    /* The length enters first: "a" and "a\0" differ. */
    uint64_t h = seed ^ ((uint64_t)n * TORII_H64_GOLDEN);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = torii_h64_word(h, w);
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = torii_h64_word(h, w);
    }
    return torii_h64_mix(h);
}

#endif
