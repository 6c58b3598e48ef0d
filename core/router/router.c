/* router.c — host tables over path trees, candidate filters, the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cidr.h"
#include "base/hash.h"
#include "router/radix.h"
#include "router/router.h"

/* Host → tree, open addressing with linear probing. */
typedef struct {
    char *key; /* NULL: free slot */
    size_t len;
    uint64_t hash;
    torii_rtree_t *tree;
} hslot_t;

typedef struct {
    hslot_t *slots;
    size_t cap, n;
} hmap_t;

struct torii_router_s {
    size_t bytes;
    torii_rtree_t *any;    /* routes without hosts */
    hmap_t exact;          /* "api.example.com" */
    hmap_t wild;           /* ".example.com", for "*.example.com" */
    uint64_t wild_lens[4]; /* bit n: some wildcard suffix is n bytes long (n < 256) */
};

/* The exact-host map hashes whole keys; the wildcard map hashes from the
 * right, so that matching walks a host once for all its suffixes. */
static uint64_t key_hash(const torii_router_t *r, const hmap_t *m, const char *p, size_t n)
{
    return m == &r->wild ? torii_hash_rev(p, n) : torii_hash(p, n);
}

static hslot_t *hmap_find(const hmap_t *m, const char *key, size_t len, uint64_t h)
{
    size_t mask, i;
    if (m->cap == 0)
        return NULL;
    mask = m->cap - 1;
    for (i = h & mask;; i = (i + 1) & mask) {
        hslot_t *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

static void hmap_put_slot(hmap_t *m, hslot_t v)
{
    size_t mask = m->cap - 1, i;
    for (i = v.hash & mask; m->slots[i].key; i = (i + 1) & mask)
        ;
    m->slots[i] = v;
    m->n++;
}

static void hmap_grow(torii_router_t *r, hmap_t *m)
{
    hmap_t bigger = {NULL, m->cap ? m->cap * 2 : 16, 0};
    bigger.slots = calloc(bigger.cap, sizeof *bigger.slots);
    if (!bigger.slots)
        abort();
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            hmap_put_slot(&bigger, m->slots[i]);
    r->bytes += bigger.cap * sizeof *bigger.slots;
    r->bytes -= m->cap * sizeof *m->slots;
    free(m->slots);
    *m = bigger;
}

static torii_rtree_t *hmap_tree(torii_router_t *r, hmap_t *m, const char *key, size_t len)
{
    uint64_t h = key_hash(r, m, key, len);
    hslot_t *s = hmap_find(m, key, len, h), v;
    if (s)
        return s->tree;
    if ((m->n + 1) * 10 > m->cap * 7)
        hmap_grow(r, m);
    v.key = malloc(len + 1);
    if (!v.key)
        abort();
    memcpy(v.key, key, len);
    v.key[len] = '\0';
    v.len = len;
    v.hash = h;
    v.tree = torii_rtree_new(&r->bytes);
    r->bytes += len + 1;
    hmap_put_slot(m, v);
    return v.tree;
}

/* Remove a slot and shift later members of its probe run back into the
 * gap, so lookups never meet a hole inside a run. */
static void hmap_delete(torii_router_t *r, hmap_t *m, hslot_t *s)
{
    size_t mask = m->cap - 1, i = (size_t)(s - m->slots), j = i;
    r->bytes -= s->len + 1;
    free(s->key);
    torii_rtree_free(s->tree);
    m->slots[i].key = NULL;
    m->n--;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            return;
        home = m->slots[j].hash & mask;
        /* Can slot j's member move to i? Only if i lies on its way from home. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
}

static void hmap_free(hmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key) {
            free(m->slots[i].key);
            torii_rtree_free(m->slots[i].tree);
        }
    }
    free(m->slots);
}

torii_router_t *torii_router_new(void)
{
    torii_router_t *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->bytes = sizeof *r;
    r->any = torii_rtree_new(&r->bytes);
    return r;
}

void torii_router_free(torii_router_t *r)
{
    if (!r)
        return;
    torii_rtree_free(r->any);
    hmap_free(&r->exact);
    hmap_free(&r->wild);
    free(r);
}

size_t torii_router_memory(const torii_router_t *r)
{
    return r->bytes;
}

/* The tree for a host pattern, made on demand. */
static torii_rtree_t *host_tree(torii_router_t *r, const char *host)
{
    if (host[0] == '*' && host[1] == '.') {
        size_t n = strlen(host + 1);
        if (n < 256)
            r->wild_lens[n / 64] |= 1ull << (n % 64); /* kept after removals: only a hint */
        return hmap_tree(r, &r->wild, host + 1, n);
    }
    return hmap_tree(r, &r->exact, host, strlen(host));
}

/* Parse uri k of a route; buf holds strlen(uri) + 1 bytes. */
static bool parse_uri(const torii_route_conf_t *route, uint32_t k, char *buf, torii_pattern_t *p, char *err,
                      size_t errlen)
{
    const char *why;
    if (torii_pattern_parse(route->uris[k], buf, p, &why) != 0) {
        snprintf(err, errlen, "route %s: uri \"%s\": %s", route->id ? route->id : "?", route->uris[k], why);
        return false;
    }
    return true;
}

bool torii_router_add(torii_router_t *r, const torii_route_conf_t *route, char *err, size_t errlen)
{
    for (uint32_t k = 0; k < route->nuris; k++) {
        char small[256], *buf = small;
        size_t len = strlen(route->uris[k]);
        torii_pattern_t p;
        torii_rentry_t e = {.route = route,
                            .pattern = route->uris[k],
                            .priority = route->priority,
                            .order = route->order,
                            .methods = route->methods,
                            .check = route->nremote_addrs > 0 || route->vars};
        if (len >= sizeof small && !(buf = malloc(len + 1)))
            abort();
        if (!parse_uri(route, k, buf, &p, err, errlen)) {
            if (buf != small)
                free(buf);
            for (uint32_t j = 0; j < k; j++) /* all or nothing */
                torii_router_remove(r, route);
            return false;
        }
        e.captures = p.nparams > 0 || p.catchall.n > 0;
        if (route->nhosts == 0)
            torii_rtree_insert(r->any, &p, &e);
        for (uint32_t h = 0; h < route->nhosts; h++)
            torii_rtree_insert(host_tree(r, route->hosts[h]), &p, &e);
        if (buf != small)
            free(buf);
    }
    return true;
}

void torii_router_remove(torii_router_t *r, const torii_route_conf_t *route)
{
    for (uint32_t k = 0; k < route->nuris; k++) {
        char small[256], *buf = small, err[8];
        size_t len = strlen(route->uris[k]);
        torii_pattern_t p;
        if (len >= sizeof small && !(buf = malloc(len + 1)))
            abort();
        if (parse_uri(route, k, buf, &p, err, sizeof err)) {
            if (route->nhosts == 0)
                torii_rtree_remove(r->any, &p, route);
            for (uint32_t h = 0; h < route->nhosts; h++) {
                const char *host = route->hosts[h];
                hmap_t *m = host[0] == '*' && host[1] == '.' ? &r->wild : &r->exact;
                const char *key = m == &r->wild ? host + 1 : host;
                size_t klen = strlen(key);
                hslot_t *s = hmap_find(m, key, klen, key_hash(r, m, key, klen));
                if (!s)
                    continue;
                torii_rtree_remove(s->tree, &p, route);
                if (torii_rtree_empty(s->tree))
                    hmap_delete(r, m, s);
            }
        }
        if (buf != small)
            free(buf);
    }
}

torii_router_t *torii_router_build(const torii_config_t *conf)
{
    torii_router_t *r = torii_router_new();
    char err[256];
    for (uint32_t i = 0; i < conf->nroutes; i++) {
        if (!torii_router_add(r, &conf->routes[i], err, sizeof err)) {
            fprintf(stderr, "torii: %s\n", err); /* the config check let a bad pattern through */
            abort();
        }
    }
    return r;
}

/* ---- matching ---- */

/* The slow part of the filter, for routes with addresses or vars. */
static bool route_checks(const torii_route_conf_t *r, void *ud)
{
    const torii_route_req_t *q = ud;
    if (r->nremote_addrs && !(q->x.client && torii_cidr_list_match(r->remote_addrs, r->nremote_addrs, q->x.client)))
        return false;
    if (r->vars && !torii_expr_eval(r->vars, &q->x))
        return false;
    return true;
}

static void consider(const torii_rtree_t *t, const torii_rpath_t *rp, const torii_rfilter_t *f, torii_rhit_t *best,
                     bool *found)
{
    torii_rhit_t hit;
    if (torii_rtree_lookup(t, rp, f, &hit) && (!*found || torii_rhit_better(&hit, best))) {
        *best = hit;
        *found = true;
    }
}

/* Name k of the hit's entry, an offset and a length in its pattern. */
static torii_str_t name_of(const torii_rhit_t *hit, uint32_t k)
{
    if (hit->names)
        return torii_str(hit->pattern + hit->names[k].off, hit->names[k].len);
    return torii_str(hit->pattern + hit->short_names[k][0], hit->short_names[k][1]);
}

/* Names from the entry (offsets into its pattern), values from the path. */
static void fill_params(const torii_rhit_t *hit, torii_str_t path, torii_route_match_t *m)
{
    uint32_t k;
    m->nparams = 0;
    if (!hit->captures)
        return; /* most routes: no names to give */
    for (k = 0; k < hit->nparams; k++)
        m->params[m->nparams++] = (torii_route_param_t){
            name_of(hit, k), torii_str(path.p + hit->param[k][0], hit->param[k][1] - hit->param[k][0])};
    if (hit->rank.cls == 1 && name_of(hit, k).n) /* a named '*': the rest of the path */
        m->params[m->nparams++] =
            (torii_route_param_t){name_of(hit, k), torii_str(path.p + hit->consumed, path.n - hit->consumed)};
}

bool torii_router_match(const torii_router_t *r, const torii_route_req_t *req, torii_route_match_t *m)
{
    /* The trees to look in: the exact host's, the wildcards' (at most one
     * per suffix length under 256), the one for any host. */
    const torii_rtree_t *trees[1 + 255 + 1];
    size_t ntrees = 0;
    torii_rhit_t best;
    bool found = false;
    torii_str_t host = req->x.host;
    torii_rfilter_t f = {1u << req->method, route_checks, (void *)req};
    torii_rpath_t rp;
    torii_rpath_prepare(&rp, req->x.uri);
    /* Each tree's first memory is asked for as soon as the tree is known,
     * so the trees' waits overlap; they are then looked in, in order. */
    torii_rtree_prefetch(r->any, &rp);
    if (host.n > 0 && r->exact.n > 0) {
        hslot_t *s = hmap_find(&r->exact, host.p, host.n, torii_hash(host.p, host.n));
        if (s) {
            torii_rtree_prefetch(s->tree, &rp);
            trees[ntrees++] = s->tree;
        }
    }
    if (r->wild.n > 0 && host.n > 0) {
        /* Every suffix starting at a dot, with at least one label before
         * it, shortest first, and only lengths some wildcard has: a suffix
         * is hashed only then (most hosts have none to look up). */
        for (size_t i = host.n - 1; i > 0; i--) {
            size_t len = host.n - i;
            if (host.p[i] == '.' && len < 256 && (r->wild_lens[len / 64] >> (len % 64) & 1)) {
                hslot_t *s = hmap_find(&r->wild, host.p + i, len, torii_hash_rev(host.p + i, len));
                if (s) {
                    torii_rtree_prefetch(s->tree, &rp);
                    trees[ntrees++] = s->tree;
                }
            }
        }
    }
    trees[ntrees++] = r->any;
    for (size_t i = 0; i < ntrees; i++)
        consider(trees[i], &rp, &f, &best, &found);
    if (!found)
        return false;
    m->route = best.route;
    fill_params(&best, req->x.uri, m);
    return true;
}
