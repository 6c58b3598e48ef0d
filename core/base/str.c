/* str.c — slice helpers. */
#include <stdint.h>
#include <stdlib.h>

#include "base/str.h"

bool torii_str_ieq(torii_str_t s, const char *lower_lit)
{
    size_t i;
    for (i = 0; i < s.n; i++) {
        if (lower_lit[i] == '\0' || torii_lower(s.p[i]) != lower_lit[i])
            return false;
    }
    return lower_lit[i] == '\0';
}

bool torii_str_ieq2(torii_str_t a, torii_str_t b)
{
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++) {
        if (torii_lower(a.p[i]) != torii_lower(b.p[i]))
            return false;
    }
    return true;
}

torii_str_t torii_str_trim(torii_str_t s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

bool torii_str_next_token(torii_str_t *rest, torii_str_t *tok)
{
    while (rest->n > 0) {
        const char *comma = memchr(rest->p, ',', rest->n);
        size_t len = comma ? (size_t)(comma - rest->p) : rest->n;
        *tok = torii_str_trim(torii_str(rest->p, len));
        rest->p += comma ? len + 1 : len;
        rest->n -= comma ? len + 1 : len;
        if (tok->n > 0)
            return true;
    }
    return false;
}

bool torii_str_list_has(torii_str_t list, const char *lower_lit)
{
    torii_str_t tok;
    while (torii_str_next_token(&list, &tok)) {
        if (torii_str_ieq(tok, lower_lit))
            return true;
    }
    return false;
}

bool torii_str_to_u64(torii_str_t s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

char *torii_strndup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}
