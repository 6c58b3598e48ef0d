/*
 * rpay.h — what a tree node (rnode.h) or an exact shape holds: groups of
 * entries, one group per shape ending there, with the shape's text and
 * the entries' capture names.
 *
 * One block per node, made again on every change: a lookup that reaches
 * a node reads its entries, the text to check them against and the names
 * of the captures in one or two neighbouring cache lines. A node usually
 * has one group; siblings whose segments hash alike share nodes, so a
 * node can end several shapes, and the text tells them apart.
 */
#ifndef TORII_RPAY_H
#define TORII_RPAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/radix.h"

/* Followed by its n entries, its text padded to 8 bytes, then for each
 * entry its names (rg_nnames). */
typedef struct {
    uint32_t n;       /* entries, by priority then order */
    uint32_t len;     /* shape text */
    uint32_t cut;     /* a prefix shape's last '/', where its partial segment starts; len otherwise */
    uint16_t prefix;  /* the shape ends with '*' (dropped from the text) */
    uint16_t nparams; /* parameters in the shape */
} rgroup_t;

struct rpay_s {
    uint32_t size; /* bytes of the block */
    uint32_t ngroups;
};

static inline const rgroup_t *rpay_first(const struct rpay_s *p)
{
    return (const rgroup_t *)(p + 1);
}

static inline const torii_rentry_t *rg_entries(const rgroup_t *g)
{
    return (const torii_rentry_t *)(g + 1);
}

static inline const char *rg_text(const rgroup_t *g)
{
    return (const char *)(rg_entries(g) + g->n);
}

/* Names per entry: one per parameter, then a prefix's '*' name (empty if
 * it has none). */
static inline uint32_t rg_nnames(const rgroup_t *g)
{
    return (uint32_t)g->nparams + g->prefix;
}

static inline const torii_rname_t *rg_names(const rgroup_t *g)
{
    return (const torii_rname_t *)(rg_text(g) + ((g->len + 7) & ~(size_t)7));
}

static inline const rgroup_t *rg_next(const rgroup_t *g)
{
    return (const rgroup_t *)(rg_names(g) + g->n * rg_nnames(g));
}

/* a before b in a list? (higher priority, then declared first) */
static inline bool rentry_before(const torii_rentry_t *a, const torii_rentry_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->order < b->order;
}

/* A shape as a group keeps it: its text, where a prefix shape's partial
 * segment starts (len for a whole one), its parameters. */
typedef struct {
    const char *text;
    size_t len, cut;
    bool prefix;
    uint32_t nparams;
} rshape_t;

/* Add an entry, with its names (nparams + prefix of them), to its shape's
 * group in *pp (a new block; a route is in a group once). */
void rpay_add(size_t *bytes, struct rpay_s **pp, const rshape_t *s, const torii_rentry_t *e,
              const torii_rname_t *names);

/* Take a route out of its shape's group; the group goes when empty, the
 * block (*pp = NULL) when no group is left. */
void rpay_remove(size_t *bytes, struct rpay_s **pp, const rshape_t *s, const torii_route_conf_t *route);

/* Does the block hold a prefix shape (prefix) or a whole one (!prefix)? */
bool rpay_has(const struct rpay_s *p, bool prefix);

void rpay_free(size_t *bytes, struct rpay_s *p);

#endif
