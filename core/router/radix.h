/*
 * radix.h — one tree of route path shapes (see path.h), by whole
 * segments: a node per run of segments from the root, each literal or
 * ":" (a parameter, one segment), kept in a hash table (rnode.h); at each
 * node the routes whose shape ends there, as a whole path or as a prefix
 * (rpay.h), and for a whole shape a line with its first entry (rterm.h);
 * exact shapes in a table of their own (rexact.h). Used by router.c, once
 * per host and once for routes without hosts.
 *
 * A lookup computes the keys of the path's levels from the path alone and
 * asks memory for all of them before walking: in a big table a match waits
 * for memory about once, not once per level.
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
 * then order (lower first). What the usual filter and the captures need is
 * copied in, so that a match reads neither the route nor its pattern
 * (each one more cache miss in a big table). */
typedef struct {
    const torii_route_conf_t *route;
    const char *pattern; /* route->uris[k], the uri this entry stands for */
    int32_t priority;
    uint32_t order;
    uint32_t methods; /* route->methods */
    bool check;       /* the route has addresses or vars to check */
    bool captures;    /* the pattern has parameters or a named '*' */
} torii_rentry_t;

/* A capture's name: pattern + off, len bytes. */
typedef struct {
    uint32_t off, len;
} torii_rname_t;

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
    /* Read for priority and order only when two hits tie on rank; NULL for
     * an exact shape held whole in its slot (then the route's are used). */
    const torii_rentry_t *entry;
    const torii_route_conf_t *route;
    const char *pattern; /* the entry's, for the names of its captures */
    bool captures;       /* the entry's */
    /* The entry's parameter names, then (prefixes) its '*' name: in names,
     * or when that is NULL in short_names (offset, length pairs). */
    const torii_rname_t *names;
    const uint16_t (*short_names)[2];
    torii_rrank_t rank;
    uint32_t consumed; /* path bytes before the '*' of a prefix */
    uint32_t nparams;
    uint32_t param[TORII_PAT_MAX_PARAMS][2]; /* start, end in the path */
} torii_rhit_t;

/* What a candidate must pass to win: its methods (0 = any) must hold the
 * request's, then, for an entry with `check`, the callback (addresses,
 * vars). The usual case is settled without reading the route. */
typedef struct {
    uint32_t method; /* 1u << the request's method */
    bool (*check)(const torii_route_conf_t *route, void *ud);
    void *ud;
} torii_rfilter_t;

static inline bool torii_rfilter_pass(const torii_rfilter_t *f, uint32_t methods, bool check,
                                      const torii_route_conf_t *route)
{
    if (methods && !(methods & f->method))
        return false;
    return !check || f->check(route, f->ud);
}

/* Trees count their bytes into *bytes. */
torii_rtree_t *torii_rtree_new(size_t *bytes);
void torii_rtree_free(torii_rtree_t *t);
bool torii_rtree_empty(const torii_rtree_t *t);

/* Add or remove a route's entry for one shape. */
void torii_rtree_insert(torii_rtree_t *t, const torii_pattern_t *p, const torii_rentry_t *e);
void torii_rtree_remove(torii_rtree_t *t, const torii_pattern_t *p, const torii_route_conf_t *route);

/* A normalised request path, prepared once for lookups in any number of
 * trees: the hash of the whole, the bounds and key words of the first
 * TORII_RPATH_LEVELS segments (the rest are split as the walk gets there). */
#define TORII_RPATH_LEVELS 64
typedef struct {
    const char *p;
    size_t n;
    uint32_t xh;                      /* for the exact shapes */
    bool tree;                        /* the path starts with '/', so a tree shape may match */
    uint32_t nlev;                    /* segments with end[] and seg[] set */
    uint32_t last;                    /* nlev if that is the whole path (a node there ends it), else 0 */
    uint32_t end[TORII_RPATH_LEVELS]; /* where segment k ends: the next '/' or n */
    uint64_t seg[TORII_RPATH_LEVELS]; /* what segment k puts in a key (rn_seg) */
} torii_rpath_t;

void torii_rpath_prepare(torii_rpath_t *rp, torii_str_t path);

/* Ask for the memory a lookup of the path in t will read first, so that
 * lookups in several trees wait for memory together, not one by one. */
void torii_rtree_prefetch(const torii_rtree_t *t, const torii_rpath_t *rp);

/* The best accepted candidate for the path, into *hit. */
bool torii_rtree_lookup(const torii_rtree_t *t, const torii_rpath_t *rp, const torii_rfilter_t *f, torii_rhit_t *hit);

/* a before b? (rank, then priority, then order) */
bool torii_rhit_better(const torii_rhit_t *a, const torii_rhit_t *b);

#endif
