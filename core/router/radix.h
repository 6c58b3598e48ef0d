/*
 * radix.h — one radix tree of route path shapes (see path.h): static text
 * on compressed edges, a parameter child per node for ":" (one segment),
 * and at each node the routes whose shape ends there, as a whole path or
 * as a prefix. Used by router.c, once per host and once for routes
 * without hosts.
 */
#ifndef TORII_RADIX_H
#define TORII_RADIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "config/config.h"
#include "router/path.h"

/* A route's uri in a tree; lists keep them by priority (higher first),
 * then order (lower first). */
typedef struct {
    const torii_route_conf_t *route;
    uint32_t uri; /* index into route->uris */
    int32_t priority;
    uint32_t order;
    bool captures; /* the pattern has parameters or a named '*' */
} torii_rentry_t;

typedef struct torii_rtree_s torii_rtree_t;

/* Where a candidate ranks, lower first: full matches (class 0) by their
 * parameter mask (bit 63-i set when segment i was a parameter, so a
 * literal beats a parameter at the first difference), then prefixes
 * (class 1) by consumed length, longest first. */
typedef struct {
    uint32_t cls;
    uint64_t key;
} torii_rrank_t;

typedef struct {
    const torii_rentry_t *entry;
    torii_rrank_t rank;
    uint32_t consumed; /* path bytes before the '*' of a prefix */
    uint32_t nparams;
    uint32_t param[TORII_PAT_MAX_PARAMS][2]; /* start, end in the path */
} torii_rhit_t;

/* Should this candidate win (host, methods, addresses, vars)? */
typedef bool (*torii_raccept_fn)(const torii_rentry_t *e, void *ud);

/* Trees count their bytes into *bytes. */
torii_rtree_t *torii_rtree_new(size_t *bytes);
void torii_rtree_free(torii_rtree_t *t);
bool torii_rtree_empty(const torii_rtree_t *t);

/* Add or remove a route's entry for one shape. */
void torii_rtree_insert(torii_rtree_t *t, const torii_pattern_t *p, const torii_rentry_t *e);
void torii_rtree_remove(torii_rtree_t *t, const torii_pattern_t *p, const torii_route_conf_t *route);

/* The best accepted candidate for a normalised path, into *hit. */
bool torii_rtree_lookup(const torii_rtree_t *t, torii_str_t path, torii_raccept_fn accept, void *ud, torii_rhit_t *hit);

/* a before b? (rank, then priority, then order) */
bool torii_rhit_better(const torii_rhit_t *a, const torii_rhit_t *b);

#endif
