/*
 * path.h — what the router compares: request paths and hosts in a
 * canonical form, and route path patterns split into their parts.
 *
 * A request path is normalised before matching: %XX escapes are decoded
 * except %2F and %25, which stay escaped (uppercase) so that an encoded
 * slash never acts as a separator and decoding never runs twice; then "."
 * and ".." segments are resolved (RFC 3986 5.2.4), never climbing above
 * "/". Slashes are not merged. The upstream still receives the path as
 * the client sent it.
 */
#ifndef TORII_PATH_H
#define TORII_PATH_H

#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

/*
 * Normalise `path` (starting with '/') into out, which holds at least
 * path.n bytes. Returns the length, or -1 with *why set for a bad escape
 * ("%zz", a lone '%'), an escaped NUL, or a path not starting with '/'.
 */
int torii_path_normalise(torii_str_t path, char *out, const char **why);

/* Host for matching: lowercased, without ":port" or a trailing dot
 * ("[::1]:80" gives "[::1]"). out holds at least host.n bytes. */
size_t torii_host_normalise(torii_str_t host, char *out);

/*
 * Route patterns. "/a/b" exact; "/users/:id" a named parameter matching
 * one non-empty segment (':' only at the start of a segment, the name
 * [A-Za-z0-9_]+ running to the next '/' or the end); a trailing '*'
 * matches any rest of the path, including none (after "/a/" or "/a");
 * "*name" at the end, starting a segment (after "/files/"), is the same,
 * capturing the rest as `name`.
 */
typedef enum {
    TORII_PAT_EXACT,  /* only literal text */
    TORII_PAT_PARAM,  /* literal text and parameters, matching the whole path */
    TORII_PAT_PREFIX, /* ends with '*' (after literal text and parameters) */
} torii_pat_kind_t;

#define TORII_PAT_MAX_PARAMS 16

typedef struct {
    torii_pat_kind_t kind;
    /* The pattern with parameter names removed: ":" stands for a parameter
     * ("/users/:/posts"), the trailing '*' dropped. Literal text is
     * normalised like a request path. */
    char *shape;
    size_t shape_len;
    uint32_t nparams;
    torii_str_t names[TORII_PAT_MAX_PARAMS]; /* parameter names, in order */
    torii_str_t catchall;                    /* name after '*', empty if none */
} torii_pattern_t;

/*
 * Parse a pattern; `shape` points into `buf` (at least strlen(pattern)+1
 * bytes), names into the pattern itself. Returns 0, or -1 with *why
 * ("'*' must be the last character", "parameter name missing", ...).
 */
int torii_pattern_parse(const char *pattern, char *buf, torii_pattern_t *out, const char **why);

#endif
