/* path.c — canonical request paths and hosts, and route pattern parsing. */
#include <string.h>

#include "router/path.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = torii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Start of the segment that ends at out[n) (the index of its '/'). */
static size_t segment_slash(const char *out, size_t n)
{
    while (n > 0 && out[n - 1] != '/')
        n--;
    return n > 0 ? n - 1 : 0;
}

/*
 * Decode one segment at a time into out, then look at what it decoded to:
 * resolving dot segments on decoded text is what makes "/%2e%2e/admin"
 * the same as "/../admin".
 */
int torii_path_normalise(torii_str_t path, char *out, const char **why)
{
    size_t i = 0, n = 0;
    if (path.n == 0 || path.p[0] != '/') {
        *why = "path must start with '/'";
        return -1;
    }
    while (i < path.n) {
        size_t seg;
        bool last;
        i++; /* the '/' */
        out[n++] = '/';
        seg = n;
        while (i < path.n && path.p[i] != '/') {
            char c = path.p[i];
            int hi, lo;
            if (c != '%') {
                out[n++] = c;
                i++;
                continue;
            }
            if (i + 2 >= path.n || (hi = hexval(path.p[i + 1])) < 0 || (lo = hexval(path.p[i + 2])) < 0) {
                *why = "invalid percent-encoding in path";
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 3;
            if (c == 0) {
                *why = "encoded NUL in path";
                return -1;
            }
            if (c == '/' || c == '%') { /* stays escaped, in one spelling */
                out[n++] = '%';
                out[n++] = '2';
                out[n++] = c == '/' ? 'F' : '5';
                continue;
            }
            out[n++] = c;
        }
        last = i == path.n;
        if (n - seg == 1 && out[seg] == '.') {
            n = last ? seg : seg - 1; /* "/a/." is "/a/"; "/a/./b" is "/a/b" */
        } else if (n - seg == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            n = segment_slash(out, seg - 1); /* the '/' of the segment before, or the root's */
            if (last)
                n++; /* "/a/b/.." is "/a/" */
        }
    }
    return (int)n;
}

size_t torii_host_normalise(torii_str_t host, char *out)
{
    size_t n = host.n, i;
    if (n == 0)
        return 0;
    if (host.p[0] == '[') { /* IP literal: up to the ']' */
        const char *end = memchr(host.p, ']', n);
        n = end ? (size_t)(end - host.p) + 1 : n;
    } else {
        const char *colon = memchr(host.p, ':', n);
        if (colon)
            n = (size_t)(colon - host.p);
    }
    if (n > 0 && host.p[n - 1] == '.')
        n--; /* "example.com." is "example.com" */
    for (i = 0; i < n; i++)
        out[i] = torii_lower(host.p[i]);
    return n;
}

/* Index of the segment that starts at pattern[i] (after its '/'). */
static size_t segments_before(const char *pattern, size_t i)
{
    size_t k = 0;
    for (size_t j = 0; j < i; j++)
        k += pattern[j] == '/';
    return k - 1;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int torii_pattern_parse(const char *pattern, char *buf, torii_pattern_t *out, const char **why)
{
    size_t len = strlen(pattern), i = 0, lit_start;
    char *shape = buf;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    out->kind = TORII_PAT_EXACT;
    if (len == 0 || pattern[0] != '/') {
        *why = "must start with '/'";
        return -1;
    }
    lit_start = 0;
    while (i <= len) {
        bool at_end = i == len;
        char c = at_end ? '\0' : pattern[i];
        bool seg_start = i > 0 && pattern[i - 1] == '/';
        if (at_end || c == '*' || (c == ':' && seg_start)) {
            /* Normalise the literal run before this point as a request path
             * would be (a run always starts with '/' or follows a parameter,
             * which is followed by '/'). */
            if (i > lit_start) {
                const char *w;
                int k = torii_path_normalise(torii_str(pattern + lit_start, i - lit_start), shape + n, &w);
                if (k < 0) {
                    *why = w;
                    return -1;
                }
                /* A dot segment in a pattern is a mistake, not something to
                 * resolve: without escapes, the normalised text must be the
                 * text as written. */
                if (memchr(pattern + lit_start, '%', i - lit_start) == NULL &&
                    ((size_t)k != i - lit_start || memcmp(shape + n, pattern + lit_start, (size_t)k) != 0)) {
                    *why = "'.' and '..' segments are not allowed";
                    return -1;
                }
                for (int m = 1; m < k; m++) {
                    if (shape[n + m] == ':' && shape[n + m - 1] == '/') {
                        *why = "a segment cannot start with an encoded ':'";
                        return -1;
                    }
                }
                n += (size_t)k;
            }
            if (at_end)
                break;
            if (c == '*') {
                size_t j = i + 1;
                while (j < len && name_char(pattern[j]))
                    j++;
                if (j != len) {
                    *why = "'*' must be last (optionally followed by a name)";
                    return -1;
                }
                if (j > i + 1 && !seg_start) {
                    *why = "a named '*' must start a segment, as in /files/*path";
                    return -1;
                }
                out->kind = TORII_PAT_PREFIX;
                out->catchall = torii_str(pattern + i + 1, len - i - 1);
                break;
            }
            /* ':' at a segment start: a parameter up to the next '/'. */
            {
                size_t j = i + 1;
                while (j < len && name_char(pattern[j]))
                    j++;
                if (j == i + 1) {
                    *why = "parameter name missing after ':'";
                    return -1;
                }
                if (j < len && pattern[j] != '/') {
                    *why = "a parameter must be a whole segment (name: letters, digits, '_')";
                    return -1;
                }
                if (segments_before(pattern, i) >= 64) {
                    /* ranks keep one bit per segment (radix.h) */
                    *why = "parameters must be within the first 64 segments";
                    return -1;
                }
                if (out->nparams == TORII_PAT_MAX_PARAMS) {
                    *why = "too many parameters (at most 16)";
                    return -1;
                }
                out->names[out->nparams++] = torii_str(pattern + i + 1, j - i - 1);
                if (out->kind == TORII_PAT_EXACT)
                    out->kind = TORII_PAT_PARAM;
                shape[n++] = ':';
                i = j;
                lit_start = j;
                continue;
            }
        }
        i++;
    }
    shape[n] = '\0';
    out->shape = shape;
    out->shape_len = n;
    return 0;
}
