/*
 * router_ref.h — a brute-force reference for the router (core/router),
 * written from its precedence rules rather than from its code: every
 * route, every uri, is tried against the request, and the best one wins.
 * The fuzzer (t/fuzz/fuzz_router.c) compares the router with it, and the
 * router benchmark (bench/router_bench.c) uses it as the linear scan.
 *
 * What it implements:
 *   - patterns: literal text (with %XX escapes decoded, %2F and %25 kept
 *     escaped, as a request path is normalised), ":name" as a whole
 *     segment matching one non-empty segment, a final "*" (or "*name"
 *     starting a segment) matching any rest of the path, including none;
 *   - hosts: exact (case-insensitive) or "*.suffix" (any host ending in
 *     ".suffix" with at least one more label before it); no hosts = any;
 *   - methods: bit (1u << method), 0 = any; remote_addrs: any block holds
 *     the client address (no address: no match); `vars` are not evaluated
 *     (the reference is only used with vars == NULL);
 *   - rank: exact < parameter < prefix; two parameter patterns compare by
 *     their segment kinds, a literal beating a parameter at the first
 *     segment where they differ; two prefixes by the number of path bytes
 *     matched before the '*', more first; then higher priority, then lower
 *     order. A route's rank is that of its best matching uri (the first
 *     such uri when several tie).
 *
 * Patterns must be valid (as torii_pattern_parse accepts them); request
 * paths must be normalised (torii_path_normalise), hosts lowercase.
 */
#ifndef TORII_ROUTER_REF_H
#define TORII_ROUTER_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "router/router.h"

/* The best of routes[0..n) for the request, with its captures in m
 * (m->route is set too; NULL and m->nparams == 0 when nothing matches). */
const torii_route_conf_t *router_ref_match(const torii_route_conf_t *routes, size_t n, const torii_route_req_t *req,
                                           torii_route_match_t *m);

/* Same, over an array of pointers (a set that routes come and go from). */
const torii_route_conf_t *router_ref_match_list(const torii_route_conf_t *const *routes, size_t n,
                                                const torii_route_req_t *req, torii_route_match_t *m);

/*
 * Does the route accept the request (host, method, address), and which of
 * its uris match the path with the route's best rank? Fills up to `max`
 * match results (one per such uri, in uri order) and returns how many uris
 * there are (0: the route does not match). When a route's uris tie, the
 * rules do not say whose captures win, so any of these is a right answer.
 */
size_t router_ref_route_matches(const torii_route_conf_t *route, const torii_route_req_t *req, torii_route_match_t *out,
                                size_t max);

/* Match one pattern against a normalised path (no route filters): true if
 * it matches, with its captures in m (m->route left alone). */
bool router_ref_pattern_match(const char *pattern, torii_str_t path, torii_route_match_t *m);

/* Same captures? (names and values compared as text) */
bool router_ref_same_params(const torii_route_match_t *a, const torii_route_match_t *b);

#endif
