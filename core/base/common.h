/*
 * common.h — definitions every layer of the core shares: return codes,
 * branch hints, small helpers. Nothing here depends on any library.
 */
#ifndef TORII_COMMON_H
#define TORII_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* One set of return codes for the whole core (mirrored in Lua later). */
#define TORII_OK       0
#define TORII_ERROR    -1
#define TORII_AGAIN    -2 /* need more input, or would block */
#define TORII_DECLINED -3 /* not handled here; try the next handler */
#define TORII_DONE     -4 /* finished; nothing more to do */

#define TORII_VERSION "0.1.0"

#define torii_likely(x)   __builtin_expect(!!(x), 1)
#define torii_unlikely(x) __builtin_expect(!!(x), 0)

#define TORII_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define TORII_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define TORII_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The struct that holds `member` at address `ptr`. */
#define torii_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Size of the caller-owned buffers that receive error messages. */
#define TORII_ERRLEN 256

#endif
