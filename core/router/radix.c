/* radix.c — the path tree: insert, remove, and the static-first walk. */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "router/radix.h"

typedef struct {
    uint32_t n;
    torii_rentry_t e[];
} elist_t;

typedef struct rnode_s rnode_t;

/* One allocation per node: the header, the label, then the first byte of
 * each child (sorted) and, 8-byte aligned, the child pointers, so a step
 * down the tree touches one block of memory, not three. */
struct rnode_s {
    rnode_t *param;  /* ":" — the next segment, whatever it holds */
    elist_t *full;   /* shapes ending here */
    elist_t *prefix; /* shapes ending here, then '*' */
    uint16_t nkids, capkids;
    uint32_t len;
    char label[];
};

/* Exact shapes (no parameter, no '*') skip the tree: they always rank
 * first, so one hash lookup settles them before any walk. */
typedef struct {
    uint64_t hash;
    char *key; /* NULL: free slot */
    uint32_t len;
    elist_t *list;
} xslot_t;

struct torii_rtree_s {
    rnode_t *root;
    size_t *bytes;
    xslot_t *xs; /* exact shapes, open addressing */
    uint32_t xcap, xn;
};

static size_t kids_offset(uint32_t len, uint16_t cap)
{
    return (sizeof(rnode_t) + len + cap + 7) & ~(size_t)7;
}

static size_t node_bytes(uint32_t len, uint16_t cap)
{
    return kids_offset(len, cap) + cap * sizeof(rnode_t *);
}

static inline uint8_t *KEYS(const rnode_t *nd)
{
    return (uint8_t *)nd->label + nd->len;
}

static inline rnode_t **KIDS(const rnode_t *nd)
{
    return (rnode_t **)((char *)nd + kids_offset(nd->len, nd->capkids));
}

/* ---- allocation, counted into the router's total ---- */

static void *talloc(torii_rtree_t *t, size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    *t->bytes += n;
    return p;
}

static void tfree(torii_rtree_t *t, void *p, size_t n)
{
    if (p) {
        *t->bytes -= n;
        free(p);
    }
}

static size_t elist_size(uint32_t n)
{
    return sizeof(elist_t) + n * sizeof(torii_rentry_t);
}
static rnode_t *node_new(torii_rtree_t *t, const char *label, size_t len, uint16_t cap)
{
    rnode_t *nd = talloc(t, node_bytes((uint32_t)len, cap));
    nd->len = (uint32_t)len;
    nd->capkids = cap;
    memcpy(nd->label, label, len);
    return nd;
}

static void node_free(torii_rtree_t *t, rnode_t *nd)
{
    if (nd->full)
        tfree(t, nd->full, elist_size(nd->full->n));
    if (nd->prefix)
        tfree(t, nd->prefix, elist_size(nd->prefix->n));
    tfree(t, nd, node_bytes(nd->len, nd->capkids));
}

/* Copy *slot into a node with room for cap children (its parent's pointer,
 * *slot, is the only pointer to it, so moving it is safe). */
static rnode_t *node_resize(torii_rtree_t *t, rnode_t **slot, uint16_t cap)
{
    rnode_t *old = *slot, *nd = node_new(t, old->label, old->len, cap);
    nd->param = old->param;
    nd->full = old->full;
    nd->prefix = old->prefix;
    nd->nkids = old->nkids;
    if (old->nkids) {
        memcpy(KEYS(nd), KEYS(old), old->nkids);
        memcpy(KIDS(nd), KIDS(old), old->nkids * sizeof(rnode_t *));
    }
    tfree(t, old, node_bytes(old->len, old->capkids));
    *slot = nd;
    return nd;
}

static void free_subtree(torii_rtree_t *t, rnode_t *nd)
{
    for (uint16_t i = 0; i < nd->nkids; i++)
        free_subtree(t, KIDS(nd)[i]);
    if (nd->param)
        free_subtree(t, nd->param);
    node_free(t, nd);
}

torii_rtree_t *torii_rtree_new(size_t *bytes)
{
    torii_rtree_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->bytes = bytes;
    *bytes += sizeof *t;
    t->root = node_new(t, "", 0, 0);
    return t;
}

void torii_rtree_free(torii_rtree_t *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->xcap; i++) {
        if (t->xs[i].key) {
            tfree(t, t->xs[i].key, t->xs[i].len + 1);
            tfree(t, t->xs[i].list, elist_size(t->xs[i].list->n));
        }
    }
    tfree(t, t->xs, t->xcap * sizeof *t->xs);
    free_subtree(t, t->root);
    *t->bytes -= sizeof *t;
    free(t);
}

bool torii_rtree_empty(const torii_rtree_t *t)
{
    const rnode_t *r = t->root;
    return r->nkids == 0 && !r->param && !r->full && !r->prefix && t->xn == 0;
}

/* ---- exact shapes ---- */

static void elist_add(torii_rtree_t *t, elist_t **lp, const torii_rentry_t *e);
static void elist_remove(torii_rtree_t *t, elist_t **lp, const torii_route_conf_t *route);

static xslot_t *x_find(const torii_rtree_t *t, const char *p, size_t n, uint64_t h)
{
    uint32_t mask = t->xcap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        xslot_t *x = &t->xs[i];
        if (!x->key || (x->hash == h && x->len == n && memcmp(x->key, p, n) == 0))
            return x;
    }
}

static void x_grow(torii_rtree_t *t)
{
    xslot_t *old = t->xs;
    uint32_t oldcap = t->xcap;
    t->xcap = oldcap ? oldcap * 2 : 8;
    t->xs = talloc(t, t->xcap * sizeof *t->xs);
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].key)
            *x_find(t, old[i].key, old[i].len, old[i].hash) = old[i];
    tfree(t, old, oldcap * sizeof *old);
}

static void x_insert(torii_rtree_t *t, const torii_pattern_t *p, const torii_rentry_t *e)
{
    uint64_t h = torii_hash(p->shape, p->shape_len);
    xslot_t *x;
    if ((t->xn + 1) * 4 > t->xcap * 3)
        x_grow(t);
    x = x_find(t, p->shape, p->shape_len, h);
    if (!x->key) {
        x->key = talloc(t, p->shape_len + 1);
        memcpy(x->key, p->shape, p->shape_len);
        x->len = (uint32_t)p->shape_len;
        x->hash = h;
        t->xn++;
    }
    elist_add(t, &x->list, e);
}

static void x_remove(torii_rtree_t *t, const torii_pattern_t *p, const torii_route_conf_t *route)
{
    uint32_t mask = t->xcap - 1, i, j;
    xslot_t *x;
    if (t->xn == 0)
        return;
    x = x_find(t, p->shape, p->shape_len, torii_hash(p->shape, p->shape_len));
    if (!x->key)
        return;
    elist_remove(t, &x->list, route);
    if (x->list)
        return;
    tfree(t, x->key, x->len + 1);
    x->key = NULL;
    if (--t->xn == 0) { /* the last one: give the table back */
        tfree(t, t->xs, t->xcap * sizeof *t->xs);
        t->xs = NULL;
        t->xcap = 0;
        return;
    }
    /* Shift the rest of the probe run back over the hole. */
    i = (uint32_t)(x - t->xs);
    for (j = (i + 1) & mask; t->xs[j].key; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)t->xs[j].hash & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->xs[i] = t->xs[j];
            t->xs[j].key = NULL;
            t->xs[j].list = NULL;
            i = j;
        }
    }
}

/* The first accepted entry of the exact shape equal to the path. */
static bool x_lookup(const torii_rtree_t *t, torii_str_t path, torii_raccept_fn accept, void *ud, torii_rhit_t *hit)
{
    const xslot_t *x = x_find(t, path.p, path.n, torii_hash(path.p, path.n));
    if (!x->key)
        return false;
    for (uint32_t i = 0; i < x->list->n; i++) {
        if (accept(&x->list->e[i], ud)) {
            hit->entry = &x->list->e[i];
            hit->rank = (torii_rrank_t){0, 0};
            hit->consumed = (uint32_t)path.n;
            hit->nparams = 0;
            return true;
        }
    }
    return false;
}

/* ---- children ---- */

/* Index of the child starting with byte c, or -1. Keys are sorted. */
static int kid_index(const rnode_t *nd, uint8_t c)
{
    const uint8_t *keys;
    int lo = 0, hi = nd->nkids;
    if (hi == 0)
        return -1;
    keys = KEYS(nd);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (keys[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nd->nkids && keys[lo] == c ? lo : -1;
}

/* Add a child to *slot (which may move); returns the child's slot. */
static rnode_t **kid_add(torii_rtree_t *t, rnode_t **slot, rnode_t *kid)
{
    rnode_t *nd = *slot;
    uint8_t c = (uint8_t)kid->label[0];
    int at = 0;
    if (nd->nkids == nd->capkids)
        nd = node_resize(t, slot, (uint16_t)(nd->capkids ? (nd->capkids * 2 > 256 ? 256 : nd->capkids * 2) : 1));
    while (at < nd->nkids && KEYS(nd)[at] < c)
        at++;
    memmove(KIDS(nd) + at + 1, KIDS(nd) + at, (nd->nkids - at) * sizeof(rnode_t *));
    memmove(KEYS(nd) + at + 1, KEYS(nd) + at, (size_t)(nd->nkids - at));
    KIDS(nd)[at] = kid;
    KEYS(nd)[at] = c;
    nd->nkids++;
    return &KIDS(nd)[at];
}

static void kid_remove(torii_rtree_t *t, rnode_t **slot, int at)
{
    rnode_t *nd = *slot;
    memmove(KIDS(nd) + at, KIDS(nd) + at + 1, (nd->nkids - at - 1) * sizeof(rnode_t *));
    memmove(KEYS(nd) + at, KEYS(nd) + at + 1, (size_t)(nd->nkids - at - 1));
    nd->nkids--;
    if (nd->nkids == 0)
        node_resize(t, slot, 0); /* a leaf again: give the child array back */
}

/* Split *slot after k label bytes: a new node holds the first k bytes and
 * has one child, the rest of the old node. */
static rnode_t *split(torii_rtree_t *t, rnode_t **slot, uint32_t k)
{
    rnode_t *old = *slot;
    rnode_t *upper = node_new(t, old->label, k, 1);
    rnode_t *lower = node_new(t, old->label + k, old->len - k, old->capkids);
    lower->param = old->param;
    lower->full = old->full;
    lower->prefix = old->prefix;
    lower->nkids = old->nkids;
    if (old->nkids) {
        memcpy(KEYS(lower), KEYS(old), old->nkids);
        memcpy(KIDS(lower), KIDS(old), old->nkids * sizeof(rnode_t *));
    }
    tfree(t, old, node_bytes(old->len, old->capkids));
    KEYS(upper)[0] = (uint8_t)lower->label[0];
    KIDS(upper)[0] = lower;
    upper->nkids = 1;
    *slot = upper;
    return upper;
}

/* ---- entry lists ---- */

static bool entry_before(const torii_rentry_t *a, const torii_rentry_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->order < b->order;
}

static void elist_add(torii_rtree_t *t, elist_t **lp, const torii_rentry_t *e)
{
    elist_t *old = *lp, *l;
    uint32_t n = old ? old->n : 0, at = 0;
    for (uint32_t i = 0; i < n; i++)
        if (old->e[i].route == e->route)
            return; /* one route, one place in a list (e.g. two spellings of a host) */
    while (at < n && entry_before(&old->e[at], e))
        at++;
    l = talloc(t, elist_size(n + 1));
    l->n = n + 1;
    if (n) {
        memcpy(l->e, old->e, at * sizeof *l->e);
        memcpy(l->e + at + 1, old->e + at, (n - at) * sizeof *l->e);
        tfree(t, old, elist_size(n));
    }
    l->e[at] = *e;
    *lp = l;
}

static void elist_remove(torii_rtree_t *t, elist_t **lp, const torii_route_conf_t *route)
{
    elist_t *old = *lp, *l = NULL;
    uint32_t at = 0;
    if (!old)
        return;
    while (at < old->n && old->e[at].route != route)
        at++;
    if (at == old->n)
        return;
    if (old->n > 1) {
        l = talloc(t, elist_size(old->n - 1));
        l->n = old->n - 1;
        memcpy(l->e, old->e, at * sizeof *l->e);
        memcpy(l->e + at, old->e + at + 1, (old->n - at - 1) * sizeof *l->e);
    }
    tfree(t, old, elist_size(old->n));
    *lp = l;
}

/* ---- insert and remove ---- */

/* A ':' in a shape is a parameter when it starts a segment. */
static bool param_at(const char *s, size_t i)
{
    return s[i] == ':' && i > 0 && s[i - 1] == '/';
}

void torii_rtree_insert(torii_rtree_t *t, const torii_pattern_t *p, const torii_rentry_t *e)
{
    rnode_t **slot = &t->root;
    const char *s = p->shape;
    size_t n = p->shape_len, i = 0;
    if (p->kind == TORII_PAT_EXACT) {
        x_insert(t, p, e);
        return;
    }
    for (;;) {
        rnode_t *nd = *slot;
        uint32_t k = 0;
        int at;
        while (k < nd->len && i + k < n && nd->label[k] == s[i + k] && !param_at(s, i + k))
            k++;
        if (k < nd->len)
            nd = split(t, slot, k);
        i += k;
        if (i == n) {
            elist_add(t, p->kind == TORII_PAT_PREFIX ? &nd->prefix : &nd->full, e);
            return;
        }
        if (param_at(s, i)) {
            if (!nd->param)
                nd->param = node_new(t, "", 0, 0);
            slot = &nd->param;
            i++;
            continue;
        }
        at = kid_index(nd, (uint8_t)s[i]);
        if (at >= 0) {
            slot = &KIDS(nd)[at];
        } else {
            size_t j = i + 1;
            while (j < n && !param_at(s, j))
                j++;
            slot = kid_add(t, slot, node_new(t, s + i, j - i, 0));
        }
    }
}

static bool node_unused(const rnode_t *nd)
{
    return nd->nkids == 0 && !nd->param && !nd->full && !nd->prefix;
}

void torii_rtree_remove(torii_rtree_t *t, const torii_pattern_t *p, const torii_route_conf_t *route)
{
    /* The way down (the slot holding each node, and its index in its
     * parent), to prune nodes left empty on the way back up. */
    typedef struct {
        rnode_t **slot;
        int kid; /* index in the parent's children, or -1 for its param child */
    } step_t;
    step_t local[64], *way = local;
    size_t depth = 0, cap = sizeof local / sizeof local[0];
    rnode_t *nd;
    const char *s = p->shape;
    size_t n = p->shape_len, i = 0;
    if (p->kind == TORII_PAT_EXACT) {
        x_remove(t, p, route);
        return;
    }
    way[0].slot = &t->root;
    way[0].kid = -1;
    for (;;) {
        rnode_t **next;
        int at = -1;
        nd = *way[depth].slot;
        if (nd->len > n - i || memcmp(nd->label, s + i, nd->len) != 0)
            goto out; /* not in the tree */
        i += nd->len;
        if (i == n)
            break;
        if (param_at(s, i)) {
            next = nd->param ? &nd->param : NULL;
            i++;
        } else {
            at = kid_index(nd, (uint8_t)s[i]);
            next = at >= 0 ? &KIDS(nd)[at] : NULL;
        }
        if (!next)
            goto out;
        if (depth + 1 == cap) { /* a deep tree: no depth limit, or a removal could silently fail */
            step_t *more = malloc(cap * 2 * sizeof *more);
            if (!more)
                abort();
            memcpy(more, way, cap * sizeof *more);
            if (way != local)
                free(way);
            way = more;
            cap *= 2;
        }
        depth++;
        way[depth].slot = next;
        way[depth].kid = at;
    }
    elist_remove(t, p->kind == TORII_PAT_PREFIX ? &nd->prefix : &nd->full, route);
    while (depth > 0 && node_unused(nd)) {
        rnode_t **parent_slot = way[depth - 1].slot;
        int kid = way[depth].kid;
        node_free(t, nd);
        if (kid < 0)
            (*parent_slot)->param = NULL;
        else
            kid_remove(t, parent_slot, kid);
        depth--;
        nd = *parent_slot;
    }
out:
    if (way != local)
        free(way);
}

/* ---- lookup ---- */

typedef struct {
    const rnode_t *node;
    uint32_t pos;
    uint32_t nparams;
    uint32_t param[TORII_PAT_MAX_PARAMS][2];
} pcand_t;

typedef struct {
    const char *p;
    size_t n;
    torii_raccept_fn accept;
    void *ud;
    uint32_t nparams;
    uint32_t param[TORII_PAT_MAX_PARAMS][2];
    uint64_t mask;
    torii_rhit_t *hit;
    pcand_t *cands; /* prefix candidates met on the way */
    size_t ncands, capcands;
    pcand_t local[32];
} walk_t;

static void note_prefix(walk_t *w, const rnode_t *nd, size_t pos)
{
    pcand_t *c;
    if (w->ncands == w->capcands) { /* rare: many prefixes of one path */
        size_t cap = w->capcands * 2;
        pcand_t *more = malloc(cap * sizeof *more);
        if (!more)
            abort();
        memcpy(more, w->cands, w->ncands * sizeof *more);
        if (w->cands != w->local)
            free(w->cands);
        w->cands = more;
        w->capcands = cap;
    }
    c = &w->cands[w->ncands++];
    c->node = nd;
    c->pos = (uint32_t)pos;
    c->nparams = w->nparams;
    memcpy(c->param, w->param, w->nparams * sizeof w->param[0]);
}

static uint32_t segment_index(const char *p, size_t pos)
{
    uint32_t k = 0;
    for (size_t i = 0; i < pos; i++)
        k += p[i] == '/';
    return k - 1; /* pos follows the '/' that opens the segment */
}

/* Depth first, a static child before the parameter child: full matches
 * come in rank order, so the first accepted one is the answer. Each node
 * is reached at most once (its depth in segments fixes its position). */
static bool walk(walk_t *w, const rnode_t *nd, size_t pos)
{
    int at;
    if (nd->prefix)
        note_prefix(w, nd, pos);
    if (pos == w->n) {
        if (!nd->full)
            return false;
        for (uint32_t i = 0; i < nd->full->n; i++) {
            if (w->accept(&nd->full->e[i], w->ud)) {
                torii_rhit_t *h = w->hit;
                h->entry = &nd->full->e[i];
                h->rank = (torii_rrank_t){0, w->mask};
                h->consumed = (uint32_t)pos;
                h->nparams = w->nparams;
                memcpy(h->param, w->param, w->nparams * sizeof w->param[0]);
                return true;
            }
        }
        return false;
    }
    at = kid_index(nd, (uint8_t)w->p[pos]);
    if (at >= 0) {
        const rnode_t *kid = KIDS(nd)[at];
        if (kid->len <= w->n - pos && memcmp(kid->label, w->p + pos, kid->len) == 0 && walk(w, kid, pos + kid->len))
            return true;
    }
    if (nd->param && w->p[pos] != '/' && w->nparams < TORII_PAT_MAX_PARAMS) {
        const char *slash = memchr(w->p + pos, '/', w->n - pos);
        size_t end = slash ? (size_t)(slash - w->p) : w->n;
        uint32_t seg = segment_index(w->p, pos);
        uint64_t saved = w->mask;
        w->param[w->nparams][0] = (uint32_t)pos;
        w->param[w->nparams][1] = (uint32_t)end;
        w->nparams++;
        if (seg < 64)
            w->mask |= 1ull << (63 - seg);
        if (walk(w, nd->param, end))
            return true;
        w->nparams--;
        w->mask = saved;
    }
    return false;
}

static int by_consumed_desc(const void *a, const void *b)
{
    const pcand_t *x = a, *y = b;
    return x->pos != y->pos ? (x->pos > y->pos ? -1 : 1) : 0;
}

/* The best accepted prefix candidate: longest first; between nodes of the
 * same length (reached through different parameters), the first accepted
 * entry of each list competes on priority and order. */
static bool best_prefix(walk_t *w)
{
    size_t i = 0;
    if (w->ncands > 1)
        qsort(w->cands, w->ncands, sizeof *w->cands, by_consumed_desc);
    while (i < w->ncands) {
        size_t j = i;
        const torii_rentry_t *best = NULL;
        const pcand_t *from = NULL;
        while (j < w->ncands && w->cands[j].pos == w->cands[i].pos) {
            const elist_t *l = w->cands[j].node->prefix;
            for (uint32_t k = 0; k < l->n; k++) {
                if (best && !entry_before(&l->e[k], best))
                    break;
                if (w->accept(&l->e[k], w->ud)) {
                    best = &l->e[k];
                    from = &w->cands[j];
                    break;
                }
            }
            j++;
        }
        if (best) {
            torii_rhit_t *h = w->hit;
            h->entry = best;
            h->rank = (torii_rrank_t){1, UINT64_MAX - from->pos};
            h->consumed = from->pos;
            h->nparams = from->nparams;
            memcpy(h->param, from->param, from->nparams * sizeof from->param[0]);
            return true;
        }
        i = j;
    }
    return false;
}

bool torii_rtree_lookup(const torii_rtree_t *t, torii_str_t path, torii_raccept_fn accept, void *ud, torii_rhit_t *hit)
{
    walk_t w;
    bool found;
    const rnode_t *root = t->root;
    if (t->xn > 0 && x_lookup(t, path, accept, ud, hit))
        return true;
    w.p = path.p;
    w.n = path.n;
    w.accept = accept;
    w.ud = ud;
    w.nparams = 0;
    w.mask = 0;
    w.hit = hit;
    w.cands = w.local;
    w.ncands = 0;
    w.capcands = sizeof w.local / sizeof w.local[0];
    found = walk(&w, root, 0) || best_prefix(&w);
    if (w.cands != w.local)
        free(w.cands);
    return found;
}

bool torii_rhit_better(const torii_rhit_t *a, const torii_rhit_t *b)
{
    if (a->rank.cls != b->rank.cls)
        return a->rank.cls < b->rank.cls;
    if (a->rank.key != b->rank.key)
        return a->rank.key < b->rank.key;
    return entry_before(a->entry, b->entry);
}
