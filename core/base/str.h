/*
 * str.h — byte slices (pointer + length) and the few string helpers the
 * HTTP and config code need. Slices never own memory.
 */
#ifndef TORII_STR_H
#define TORII_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t n;
} torii_str_t;

#define TORII_STR(lit) ((torii_str_t){(lit), sizeof(lit) - 1})

static inline torii_str_t torii_str(const char *p, size_t n)
{
    return (torii_str_t){p, n};
}

static inline char torii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Case-insensitive equality of a slice and a NUL-terminated lowercase literal. */
bool torii_str_ieq(torii_str_t s, const char *lower_lit);

/* Case-insensitive equality of two slices. */
bool torii_str_ieq2(torii_str_t a, torii_str_t b);

/* Strip leading and trailing spaces and tabs. */
torii_str_t torii_str_trim(torii_str_t s);

/*
 * Iterate over a comma-separated list (HTTP list syntax): returns the next
 * trimmed element and advances *rest; returns false when none is left.
 * Empty elements ("a,,b") are skipped, as RFC 9110 section 5.6.1 allows.
 */
bool torii_str_next_token(torii_str_t *rest, torii_str_t *tok);

/* True if the comma-separated list contains `lower_lit` (case-insensitive). */
bool torii_str_list_has(torii_str_t list, const char *lower_lit);

/* Parse a non-negative decimal integer; false on empty, non-digit or overflow. */
bool torii_str_to_u64(torii_str_t s, uint64_t *out);

/* strndup that aborts on allocation failure (config-time only). */
char *torii_strndup(const char *p, size_t n);

#endif
