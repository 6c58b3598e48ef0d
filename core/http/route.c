/* route.c — interim matcher: sorted exact paths, then prefixes by length. */
#include <stdlib.h>
#include <string.h>

#include "http/route.h"

typedef struct {
    const char *path; /* without the trailing '*' for prefixes */
    size_t len;
    uint32_t order; /* declaration order, for ties */
    const torii_route_conf_t *route;
} entry_t;

struct torii_router_s {
    entry_t *exact; /* sorted by (len, bytes, order) for binary search */
    size_t nexact;
    entry_t *prefix; /* sorted longest first, then by order */
    size_t nprefix;
};

static int cmp_exact(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    if ((c = memcmp(x->path, y->path, x->len)) != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_prefix(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

torii_router_t *torii_router_build(const torii_config_t *conf)
{
    torii_router_t *r = calloc(1, sizeof *r);
    size_t total = 0;
    uint32_t order = 0;
    if (!r)
        abort();
    for (uint32_t i = 0; i < conf->nroutes; i++)
        total += conf->routes[i].nuris;
    r->exact = calloc(total + 1, sizeof *r->exact);
    r->prefix = calloc(total + 1, sizeof *r->prefix);
    if (!r->exact || !r->prefix)
        abort();
    for (uint32_t i = 0; i < conf->nroutes; i++) {
        for (uint32_t k = 0; k < conf->routes[i].nuris; k++) {
            const char *u = conf->routes[i].uris[k];
            size_t len = strlen(u);
            bool is_prefix = len > 0 && u[len - 1] == '*';
            entry_t e = {u, is_prefix ? len - 1 : len, order++, &conf->routes[i]};
            if (is_prefix)
                r->prefix[r->nprefix++] = e;
            else
                r->exact[r->nexact++] = e;
        }
    }
    qsort(r->exact, r->nexact, sizeof *r->exact, cmp_exact);
    qsort(r->prefix, r->nprefix, sizeof *r->prefix, cmp_prefix);
    return r;
}

static const torii_route_conf_t *match_exact(const torii_router_t *r, torii_str_t path)
{
    size_t lo = 0, hi = r->nexact;
    while (lo < hi) { /* first entry >= path, so ties resolve to the earliest declared */
        size_t mid = (lo + hi) / 2;
        const entry_t *e = &r->exact[mid];
        int c = e->len != path.n ? (e->len < path.n ? -1 : 1) : memcmp(e->path, path.p, path.n);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->nexact && r->exact[lo].len == path.n && memcmp(r->exact[lo].path, path.p, path.n) == 0)
        return r->exact[lo].route;
    return NULL;
}

const torii_route_conf_t *torii_router_match(const torii_router_t *r, torii_str_t path)
{
    const torii_route_conf_t *route = match_exact(r, path);
    if (route)
        return route;
    for (size_t i = 0; i < r->nprefix; i++) {
        const entry_t *e = &r->prefix[i];
        if (e->len <= path.n && memcmp(e->path, path.p, e->len) == 0)
            return e->route;
    }
    return NULL;
}

void torii_router_free(torii_router_t *r)
{
    if (!r)
        return;
    free(r->exact);
    free(r->prefix);
    free(r);
}
