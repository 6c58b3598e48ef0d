/* rpay.c — node payloads: groups of entries, made again on each change. */
#include <stdlib.h>
#include <string.h>

#include "router/rpay.h"

static size_t group_size(uint32_t n, const rshape_t *s)
{
    uint32_t nn = s->nparams + s->prefix;
    return sizeof(rgroup_t) + n * sizeof(torii_rentry_t) + ((s->len + 7) & ~(size_t)7) + n * nn * sizeof(torii_rname_t);
}

static rshape_t shape_of(const rgroup_t *g)
{
    return (rshape_t){rg_text(g), g->len, g->cut, g->prefix != 0, g->nparams};
}

static bool same_shape(const rgroup_t *g, const rshape_t *s)
{
    return (g->prefix != 0) == s->prefix && g->len == s->len && memcmp(rg_text(g), s->text, s->len) == 0;
}

/* A group to write: n entries (and their names) from an old group or
 * none, with one entry put in at `ins` or taken out at `del` (-1: not). */
typedef struct {
    rshape_t s;
    const torii_rentry_t *e;
    const torii_rname_t *names;
    uint32_t n;
    int64_t ins, del;
    const torii_rentry_t *ie;
    const torii_rname_t *inames;
} gview_t;

static rgroup_t *put_group(rgroup_t *w, const gview_t *v)
{
    uint32_t nn = v->s.nparams + v->s.prefix, k = 0;
    torii_rentry_t *de;
    torii_rname_t *dn;
    w->n = v->n + (v->ins >= 0) - (v->del >= 0);
    w->len = (uint32_t)v->s.len;
    w->cut = (uint32_t)v->s.cut;
    w->prefix = v->s.prefix;
    w->nparams = (uint16_t)v->s.nparams;
    de = (torii_rentry_t *)(w + 1);
    dn = (torii_rname_t *)rg_names(w);
    for (uint32_t i = 0; i <= v->n; i++) {
        if (i == v->ins) {
            de[k] = *v->ie;
            if (nn)
                memcpy(dn + (size_t)k * nn, v->inames, nn * sizeof *dn);
            k++;
        }
        if (i == v->n)
            break;
        if (i == v->del)
            continue;
        de[k] = v->e[i];
        if (nn)
            memcpy(dn + (size_t)k * nn, v->names + (size_t)i * nn, nn * sizeof *dn);
        k++;
    }
    memcpy((char *)rg_text(w), v->s.text, v->s.len);
    return (rgroup_t *)rg_next(w);
}

static gview_t view_of(const rgroup_t *g)
{
    return (gview_t){shape_of(g), rg_entries(g), rg_names(g), g->n, -1, -1, NULL, NULL};
}

static struct rpay_s *block_new(size_t *bytes, size_t size, uint32_t ngroups)
{
    struct rpay_s *p = calloc(1, size);
    if (!p)
        abort();
    *bytes += size;
    p->size = (uint32_t)size;
    p->ngroups = ngroups;
    return p;
}

void rpay_free(size_t *bytes, struct rpay_s *p)
{
    if (p) {
        *bytes -= p->size;
        free(p);
    }
}

void rpay_add(size_t *bytes, struct rpay_s **pp, const rshape_t *s, const torii_rentry_t *e, const torii_rname_t *names)
{
    struct rpay_s *old = *pp, *p;
    const rgroup_t *g, *mine = NULL;
    uint32_t ng = old ? old->ngroups : 0, at = 0;
    rgroup_t *w;
    g = ng ? rpay_first(old) : NULL;
    for (uint32_t i = 0; i < ng; i++, g = rg_next(g))
        if (same_shape(g, s))
            mine = g;
    if (mine) {
        const torii_rentry_t *l = rg_entries(mine);
        for (uint32_t i = 0; i < mine->n; i++)
            if (l[i].route == e->route)
                return; /* one route, one place in a group (e.g. two spellings of a host) */
        while (at < mine->n && rentry_before(&l[at], e))
            at++;
    }
    if (mine)
        p = block_new(bytes, old->size + group_size(mine->n + 1, s) - group_size(mine->n, s), ng);
    else
        p = block_new(bytes, (old ? old->size : sizeof *p) + group_size(1, s), ng + 1);
    w = (rgroup_t *)(p + 1);
    g = ng ? rpay_first(old) : NULL;
    for (uint32_t i = 0; i < ng; i++, g = rg_next(g)) {
        gview_t v = view_of(g);
        if (g == mine) {
            v.ins = at;
            v.ie = e;
            v.inames = names;
        }
        w = put_group(w, &v);
    }
    if (!mine) {
        gview_t v = {*s, NULL, NULL, 0, 0, -1, e, names};
        put_group(w, &v);
    }
    rpay_free(bytes, old);
    *pp = p;
}

void rpay_remove(size_t *bytes, struct rpay_s **pp, const rshape_t *s, const torii_route_conf_t *route)
{
    struct rpay_s *old = *pp, *p;
    const rgroup_t *g, *mine = NULL;
    uint32_t at = 0;
    rgroup_t *w;
    if (!old)
        return;
    g = rpay_first(old);
    for (uint32_t i = 0; i < old->ngroups; i++, g = rg_next(g))
        if (same_shape(g, s))
            mine = g;
    if (!mine)
        return;
    while (at < mine->n && rg_entries(mine)[at].route != route)
        at++;
    if (at == mine->n)
        return;
    if (mine->n == 1 && old->ngroups == 1) {
        rpay_free(bytes, old);
        *pp = NULL;
        return;
    }
    if (mine->n == 1)
        p = block_new(bytes, old->size - group_size(1, s), old->ngroups - 1);
    else
        p = block_new(bytes, old->size - group_size(mine->n, s) + group_size(mine->n - 1, s), old->ngroups);
    w = (rgroup_t *)(p + 1);
    g = rpay_first(old);
    for (uint32_t i = 0; i < old->ngroups; i++, g = rg_next(g)) {
        gview_t v = view_of(g);
        if (g == mine) {
            if (g->n == 1)
                continue; /* the group goes */
            v.del = at;
        }
        w = put_group(w, &v);
    }
    rpay_free(bytes, old);
    *pp = p;
}

bool rpay_has(const struct rpay_s *p, bool prefix)
{
    const rgroup_t *g;
    if (!p)
        return false;
    g = rpay_first(p);
    for (uint32_t i = 0; i < p->ngroups; i++, g = rg_next(g))
        if ((g->prefix != 0) == prefix)
            return true;
    return false;
}
