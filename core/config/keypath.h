/*
 * keypath.h — the "routes[2].upstream.nodes[0]" text that configuration
 * errors start with, kept up to date while walking a tree. It is built for
 * every node of every file, so it is done with plain copies: snprintf here
 * was a tenth of the time to load 10,000 routes.
 */
#ifndef TORII_KEYPATH_H
#define TORII_KEYPATH_H

#include <stddef.h>
#include <string.h>

/* Append ".key" (or "key" at the start) to path[0..*len), cut at cap - 1. */
static inline size_t torii_keypath_key(char *path, size_t *len, size_t cap, const char *key)
{
    size_t mark = *len, n = strlen(key), at = mark;
    if (at > 0 && at + 1 < cap)
        path[at++] = '.';
    if (at + n >= cap)
        n = at < cap - 1 ? cap - 1 - at : 0;
    memcpy(path + at, key, n);
    *len = at + n;
    path[*len] = '\0';
    return mark;
}

/* Append "[i]". */
static inline size_t torii_keypath_index(char *path, size_t *len, size_t cap, size_t i)
{
    char digits[24], *d = digits + sizeof digits;
    size_t mark = *len, at = mark, n;
    *--d = ']';
    do
        *--d = (char)('0' + i % 10);
    while ((i /= 10) > 0);
    *--d = '[';
    n = (size_t)(digits + sizeof digits - d);
    if (at + n >= cap)
        n = at < cap - 1 ? cap - 1 - at : 0;
    memcpy(path + at, d, n);
    *len = at + n;
    path[*len] = '\0';
    return mark;
}

#endif
