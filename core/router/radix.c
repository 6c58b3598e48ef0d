/* radix.c — the path tree: insert, remove, and the static-first walk. */
#include <stdlib.h>
#include <string.h>

#include "router/radix.h"
#include "router/rexact.h"
#include "router/rnode.h"
#include "router/rpay.h"
#include "router/rterm.h"

struct torii_rtree_s {
    rnode_t root; /* outside the table: key RN_ROOT_KEY, serial RN_ROOT */
    rntab_t nodes;
    rxtab_t exact;
    rttab_t term;
    size_t *bytes;
};

torii_rtree_t *torii_rtree_new(size_t *bytes)
{
    torii_rtree_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->bytes = bytes;
    *bytes += sizeof *t;
    t->root.key = RN_ROOT_KEY;
    t->root.serial = RN_ROOT;
    rn_init(&t->nodes, bytes);
    rx_init(&t->exact, bytes);
    rt_init(&t->term, bytes);
    return t;
}

void torii_rtree_free(torii_rtree_t *t)
{
    if (!t)
        return;
    if (t->nodes.slots)
        for (uint32_t i = 0; i <= t->nodes.mask; i++)
            rpay_free(t->bytes, t->nodes.slots[i].pay);
    rpay_free(t->bytes, t->root.pay);
    rn_free(&t->nodes);
    rx_free(&t->exact);
    rt_free(&t->term);
    *t->bytes -= sizeof *t;
    free(t);
}

bool torii_rtree_empty(const torii_rtree_t *t)
{
    return t->root.kids == 0 && !t->root.pay && t->exact.n == 0;
}

/* ---- insert and remove ---- */

/* A pattern's shape as the tree keeps it: whole segments down to a node,
 * then, for a prefix, the partial segment from the last '/' on. */
static rshape_t shape_of(const torii_pattern_t *p)
{
    rshape_t s = {p->shape, p->shape_len, p->shape_len, p->kind == TORII_PAT_PREFIX, p->nparams};
    if (s.prefix) {
        const char *slash = memrchr(s.text, '/', s.len); /* shapes start with '/' */
        s.cut = (size_t)(slash - s.text);
    }
    return s;
}

/* One step down: the segment of text (len bytes) at [a, e). */
typedef struct {
    uint64_t key;
    uint32_t seglen;
} step_t;

static step_t step_of(uint64_t key, const char *text, size_t len, size_t a, size_t e)
{
    step_t st;
    if (e - a == 1 && text[a] == ':') { /* a literal segment never starts with ':' in a shape */
        st.key = rn_param_key(key);
        st.seglen = RN_PARAM;
    } else {
        st.key = rn_child_key(key, rn_seg(text + a, e - a, len - a));
        st.seglen = (uint32_t)(e - a);
    }
    return st;
}

/* Where the segment from `from` ends: the next '/' or n. Eight bytes at a
 * time (a zero byte of w ^ "////////" is a '/'): segments are short, and a
 * call to memchr per segment costs more than the search. */
static inline size_t seg_end(const char *p, size_t from, size_t n)
{
    size_t i = from;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t w, z;
        memcpy(&w, p + i, 8);
        w ^= 0x2f2f2f2f2f2f2f2full;
        z = (w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull;
        if (z) /* the lowest flag is the first '/' (flags above it may be false) */
            return i + (size_t)(__builtin_ctzll(z) >> 3);
    }
#endif
    for (; i < n; i++)
        if (p[i] == '/')
            return i;
    return n;
}

/* Walk the whole segments of s as far as nodes exist: the deepest node
 * found, its key, and how much of the text it covers. */
static rnode_t *descend(torii_rtree_t *t, const rshape_t *s, uint64_t *key, size_t *pos)
{
    rnode_t *nd = &t->root;
    *key = RN_ROOT_KEY;
    *pos = 0;
    while (*pos < s->cut) {
        size_t e = seg_end(s->text, *pos + 1, s->cut);
        step_t st = step_of(*key, s->text, s->len, *pos + 1, e);
        rnode_t *c = rn_find(&t->nodes, st.key, nd->serial, st.seglen);
        if (!c)
            break;
        nd = c;
        *key = st.key;
        *pos = e;
    }
    return nd;
}

/* The node's line in the terminal table, after its payload changed: the
 * group of its whole shape when it has exactly one, else none (had: the
 * node had whole shapes before, so it may have a line). */
static void term_refresh(torii_rtree_t *t, const rnode_t *nd, bool had)
{
    const rgroup_t *g, *full = NULL;
    uint32_t nfull = 0;
    if (nd == &t->root || (!had && !(nd->kids & RN_HAS_FULL)))
        return; /* no whole shape ends here, before or now */
    if (nd->pay) {
        g = rpay_first(nd->pay);
        for (uint32_t i = 0; i < nd->pay->ngroups; i++, g = rg_next(g))
            if (!g->prefix && nfull++ == 0)
                full = g;
    }
    if (nfull == 1)
        rt_set(&t->term, nd->key, nd->serial, nd->pay, full);
    else
        rt_del(&t->term, nd->key, nd->serial);
}

void torii_rtree_insert(torii_rtree_t *t, const torii_pattern_t *p, const torii_rentry_t *e)
{
    rshape_t s = shape_of(p);
    uint64_t key;
    size_t pos;
    uint32_t missing = 0;
    rnode_t *nd;
    torii_rname_t names[TORII_PAT_MAX_PARAMS + 1];
    if (p->kind == TORII_PAT_EXACT) {
        rx_add(&t->exact, &s, e);
        return;
    }
    /* Names as offsets into the entry's pattern, which they point into. */
    for (uint32_t i = 0; i < p->nparams; i++)
        names[i] = (torii_rname_t){(uint32_t)(p->names[i].p - e->pattern), (uint32_t)p->names[i].n};
    names[p->nparams] =
        (torii_rname_t){p->catchall.n ? (uint32_t)(p->catchall.p - e->pattern) : 0, (uint32_t)p->catchall.n};
    /* Count the nodes to make, so the table grows (moving every node)
     * before the way down, not during it. */
    nd = descend(t, &s, &key, &pos);
    for (size_t i = pos; i < s.cut; i++)
        missing += s.text[i] == '/';
    if (missing) {
        if (rn_reserve(&t->nodes, missing))
            nd = descend(t, &s, &key, &pos); /* the same node, moved */
        while (pos < s.cut) {
            size_t end = seg_end(s.text, pos + 1, s.cut);
            step_t st = step_of(key, s.text, s.len, pos + 1, end);
            nd->kids += st.seglen == RN_PARAM ? RN_HAS_PARAM : RN_STATIC_ONE;
            nd = rn_insert(&t->nodes, st.key, nd->serial, st.seglen); /* may move nd's old slot: not used again */
            if (st.seglen != RN_PARAM && st.seglen > RN_SHORT)
                nd->kids |= RN_LONG;
            key = st.key;
            pos = end;
        }
    }
    rpay_add(t->bytes, &nd->pay, &s, e, names);
    nd->kids |= s.prefix ? RN_HAS_PREFIX : RN_HAS_FULL;
    term_refresh(t, nd, false); /* adding takes no whole shape away */
}

void torii_rtree_remove(torii_rtree_t *t, const torii_pattern_t *p, const torii_route_conf_t *route)
{
    /* The way down, to find each node again (deletes move nodes) and
     * prune those left empty on the way back up. */
    typedef struct {
        uint64_t key;
        uint32_t seglen, serial;
    } way_t;
    way_t local[32], *way = local;
    rshape_t s = shape_of(p);
    size_t depth = 0, nseg = 0, pos = 0;
    rnode_t *nd = &t->root;
    uint64_t key = RN_ROOT_KEY;
    bool had;
    if (p->kind == TORII_PAT_EXACT) {
        rx_remove(&t->exact, &s, route);
        return;
    }
    for (size_t i = 0; i < s.cut; i++)
        nseg += s.text[i] == '/';
    if (nseg >= sizeof local / sizeof local[0] && !(way = malloc((nseg + 1) * sizeof *way)))
        abort(); /* a deep tree: no depth limit, or a removal could silently fail */
    way[0] = (way_t){RN_ROOT_KEY, 0, RN_ROOT};
    while (pos < s.cut) {
        size_t e = seg_end(s.text, pos + 1, s.cut);
        step_t st = step_of(key, s.text, s.len, pos + 1, e);
        nd = rn_find(&t->nodes, st.key, nd->serial, st.seglen);
        if (!nd)
            goto out; /* not in the tree */
        way[++depth] = (way_t){st.key, st.seglen, nd->serial};
        key = st.key;
        pos = e;
    }
    had = nd->kids & RN_HAS_FULL;
    rpay_remove(t->bytes, &nd->pay, &s, route);
    nd->kids &= ~(RN_HAS_FULL | RN_HAS_PREFIX);
    if (rpay_has(nd->pay, false))
        nd->kids |= RN_HAS_FULL;
    if (rpay_has(nd->pay, true))
        nd->kids |= RN_HAS_PREFIX;
    term_refresh(t, nd, had);
    while (depth > 0 && (nd->kids & ~RN_LONG) == 0 && !nd->pay) {
        uint32_t gone = way[depth].seglen == RN_PARAM ? RN_HAS_PARAM : RN_STATIC_ONE;
        rn_delete(&t->nodes, nd);
        depth--;
        nd = depth == 0 ? &t->root : rn_find(&t->nodes, way[depth].key, way[depth - 1].serial, way[depth].seglen);
        nd->kids -= gone;
    }
out:
    if (way != local)
        free(way);
}

/* ---- lookup ---- */

#define BURST 8 /* levels asked for ahead of the walk */
/* Tables from this many slots (1 MB of nodes) on are walked with prefetch
 * bursts: smaller ones stay in the caches, where asking costs more than it
 * saves (measured: 10% slower at 1k and 10k routes). */
#define BURSTS (1u << 15)
/* From this many slots (2 MB of nodes) on the first burst is deeper. */
#define DEEP_BURST (1u << 16)

/* A node with prefix shapes met on the way, at pos, with the parameters
 * taken to reach it. */
typedef struct {
    const struct rpay_s *pay;
    uint32_t pos;
    uint32_t nparams;
    uint32_t param[TORII_PAT_MAX_PARAMS][2];
} pcand_t;

typedef struct {
    const char *p;
    size_t n;
    const torii_rpath_t *rp;
    const torii_rtree_t *t;
    const torii_rfilter_t *f;
    uint32_t nparams;
    uint32_t param[TORII_PAT_MAX_PARAMS][2];
    uint64_t mask;
    torii_rhit_t *hit;
    pcand_t *cands; /* prefix candidates met on the way */
    size_t ncands, capcands;
    pcand_t local[8];
} walk_t;

void torii_rpath_prepare(torii_rpath_t *rp, torii_str_t path)
{
    size_t pos = 0;
    uint32_t k = 0;
    rp->p = path.p;
    rp->n = path.n;
    rp->xh = rx_hash(path.p, path.n);
    rp->tree = path.n > 0 && path.p[0] == '/'; /* else no shape can match it */
    while (rp->tree && pos < path.n && k < TORII_RPATH_LEVELS) {
        size_t e = seg_end(path.p, pos + 1, path.n);
        rp->end[k] = (uint32_t)e;
        rp->seg[k] = rn_seg(path.p + pos + 1, e - pos - 1, path.n - pos - 1);
        k++;
        pos = e;
    }
    rp->nlev = k;
    rp->last = pos == path.n ? k : 0;
}

/* Ask for a node's line, and for its terminal line when it is at the end
 * of the path (level `level`). */
static inline void ask(const torii_rtree_t *t, const torii_rpath_t *rp, uint64_t key, uint32_t level)
{
    rn_prefetch(&t->nodes, key);
    if (level == rp->last && t->term.slots)
        rt_prefetch(&t->term, key);
}

/* Ask for the lines of the nodes below `key` (at level k) along the path,
 * and of each one's parameter child: the walk then finds them in cache
 * instead of waiting for one node after the other. */
static void burst(const torii_rtree_t *t, const torii_rpath_t *rp, uint64_t key, uint32_t k)
{
    if (t->nodes.mask < BURSTS)
        return;
    for (uint32_t j = k; j < rp->nlev && j < k + BURST; j++) {
        ask(t, rp, rn_param_key(key), j + 1);
        key = rn_child_key(key, rp->seg[j]);
        ask(t, rp, key, j + 1);
    }
}

/* The first burst of a walk in a table too big for the caches also guesses
 * one parameter at any level, followed by a literal and a parameter
 * (/users/:id/orders/:oid): most parameter paths are found with no second
 * wait. In a small table the extra keys would cost more than they save. */
static void first_burst(const torii_rtree_t *t, const torii_rpath_t *rp)
{
    uint64_t key = RN_ROOT_KEY;
    if (t->nodes.mask < BURSTS)
        return;
    if (t->nodes.mask < DEEP_BURST) {
        burst(t, rp, key, 0);
        return;
    }
    for (uint32_t j = 0; j < rp->nlev && j < BURST; j++) {
        uint64_t pk = rn_param_key(key);
        ask(t, rp, pk, j + 1);
        if (j + 1 < rp->nlev) {
            uint64_t q = rn_child_key(pk, rp->seg[j + 1]);
            ask(t, rp, q, j + 2);
            ask(t, rp, rn_param_key(q), j + 3);
        }
        key = rn_child_key(key, rp->seg[j]);
        ask(t, rp, key, j + 1);
    }
}

/* Does the shape s (":" standing for a parameter) spell p[0..pn)? The walk
 * matched segment kinds and lengths by hash; this checks the text. */
static bool spells(const char *s, size_t sn, bool params, const char *p, size_t pn)
{
    size_t i = 0, j = 0;
    if (!params)
        return sn == pn && memcmp(s, p, sn) == 0;
    while (i < sn) {
        size_t r = i;
        for (;;) { /* the literal run up to the next parameter */
            const char *c = memchr(s + r, ':', sn - r);
            r = c ? (size_t)(c - s) : sn;
            if (!c || s[r - 1] == '/') /* s[0] is '/', so r > 0 */
                break;
            r++;
        }
        if (pn - j < r - i || memcmp(s + i, p + j, r - i) != 0)
            return false;
        j += r - i;
        i = r;
        if (i < sn) { /* a parameter: the path's segment, whatever it holds */
            i++;
            j = seg_end(p, j, pn);
        }
    }
    return j == pn;
}

/* Keep the node for later (its payload is read only if no whole shape
 * wins) and ask for its payload now. */
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
    __builtin_prefetch(nd->pay);
    c = &w->cands[w->ncands++];
    c->pay = nd->pay;
    c->pos = (uint32_t)pos;
    c->nparams = w->nparams;
    memcpy(c->param, w->param, w->nparams * sizeof w->param[0]);
}

static bool pass(const torii_rfilter_t *f, const torii_rentry_t *e)
{
    return torii_rfilter_pass(f, e->methods, e->check, e->route);
}

static void hit_entry(torii_rhit_t *h, const rgroup_t *g, uint32_t k)
{
    const torii_rentry_t *e = &rg_entries(g)[k];
    h->entry = e;
    h->route = e->route;
    h->pattern = e->pattern;
    h->captures = e->captures;
    h->names = rg_names(g) + (size_t)k * rg_nnames(g);
    h->short_names = NULL;
}

/* The first accepted entry of the node's whole shape that spells the path. */
static bool full_match(walk_t *w, const rnode_t *nd)
{
    const rgroup_t *g = rpay_first(nd->pay);
    for (uint32_t i = 0; i < nd->pay->ngroups; i++, g = rg_next(g)) {
        if (g->prefix || !spells(rg_text(g), g->len, g->nparams > 0, w->p, w->n))
            continue;
        for (uint32_t k = 0; k < g->n; k++) {
            if (pass(w->f, &rg_entries(g)[k])) {
                torii_rhit_t *h = w->hit;
                hit_entry(h, g, k);
                h->rank = (torii_rrank_t){0, w->mask};
                h->consumed = (uint32_t)w->n;
                h->nparams = w->nparams;
                memcpy(h->param, w->param, w->nparams * sizeof w->param[0]);
                return true;
            }
        }
        return false; /* one group at most spells the path */
    }
    return false;
}

/* A node reached by exact steps: its whole shape spells the path, so its
 * terminal line answers when its first entry passes (else the payload). */
static bool term_match(walk_t *w, const rnode_t *nd)
{
    const rtslot_t *ts = rt_find(&w->t->term, nd->key, nd->serial);
    torii_rhit_t *h = w->hit;
    if (!ts || !ts->named || !torii_rfilter_pass(w->f, ts->methods, ts->check, ts->route))
        return false;
    /* only an address until two hits tie on rank */
    h->entry = rg_entries((const rgroup_t *)((const char *)nd->pay + ts->group));
    h->route = ts->route;
    h->pattern = ts->pattern;
    h->captures = ts->captures;
    h->names = NULL;
    h->short_names = ts->names;
    h->rank = (torii_rrank_t){0, w->mask};
    h->consumed = (uint32_t)w->n;
    h->nparams = w->nparams;
    memcpy(h->param, w->param, w->nparams * sizeof w->param[0]);
    return true;
}

/* Depth first, the static child before the parameter child: full matches
 * come in rank order, so the first accepted one is the answer. nd is at
 * level k (k segments down), at pos: a '/' or the end of the path; exact:
 * every literal step down to it was by the segment's own bytes, so its
 * shape is the path's (rnode.h). */
static bool walk(walk_t *w, const rnode_t *nd, size_t pos, uint32_t k, bool exact)
{
    size_t a, e;
    if (nd->kids & RN_HAS_PREFIX)
        note_prefix(w, nd, pos);
    if (pos == w->n)
        return (nd->kids & RN_HAS_FULL) && ((exact && term_match(w, nd)) || full_match(w, nd));
    a = pos + 1;
    e = k < w->rp->nlev ? w->rp->end[k] : seg_end(w->p, a, w->n);
    if (nd->kids >= RN_STATIC_ONE) {
        uint64_t h = k < w->rp->nlev ? w->rp->seg[k] : rn_seg(w->p + a, e - a, w->n - a);
        uint64_t key = rn_child_key(nd->key, h);
        const rnode_t *c = rn_find(&w->t->nodes, key, nd->serial, (uint32_t)(e - a));
        if (c && walk(w, c, e, k + 1, exact && !(c->kids & RN_LONG)))
            return true;
    }
    if ((nd->kids & RN_HAS_PARAM) && e > a && w->nparams < TORII_PAT_MAX_PARAMS) {
        uint64_t key = rn_param_key(nd->key), saved = w->mask;
        const rnode_t *c = rn_find(&w->t->nodes, key, nd->serial, RN_PARAM);
        if (e < w->n)
            burst(w->t, w->rp, key, k + 1);
        w->param[w->nparams][0] = (uint32_t)a;
        w->param[w->nparams][1] = (uint32_t)e;
        w->nparams++;
        if (k < 64)
            w->mask |= 1ull << (63 - k);
        if (c && walk(w, c, e, k + 1, exact))
            return true;
        w->nparams--;
        w->mask = saved;
    }
    return false;
}

/* A prefix group that matches: the partial segment at its node's pos,
 * the whole segments before it. */
typedef struct {
    const rgroup_t *g;
    const pcand_t *from;
    uint32_t consumed; /* path bytes before the '*' */
} pchoice_t;

static int by_consumed_desc(const void *a, const void *b)
{
    const pchoice_t *x = a, *y = b;
    return x->consumed != y->consumed ? (x->consumed > y->consumed ? -1 : 1) : 0;
}

/* The matching prefix groups of the noted nodes, into *out (grown from
 * `local` as needed); returns how many. */
static size_t prefix_choices(const walk_t *w, pchoice_t *local, size_t cap, pchoice_t **out)
{
    size_t n = 0;
    *out = local;
    for (size_t i = 0; i < w->ncands; i++) {
        const pcand_t *c = &w->cands[i];
        const rgroup_t *g = rpay_first(c->pay);
        for (uint32_t k = 0; k < c->pay->ngroups; k++, g = rg_next(g)) {
            size_t plen = g->len - g->cut;
            if (!g->prefix || plen > w->n - c->pos || memcmp(rg_text(g) + g->cut, w->p + c->pos, plen) != 0 ||
                !spells(rg_text(g), g->cut, g->nparams > 0, w->p, c->pos))
                continue;
            if (n == cap) { /* rare: many prefixes of one path */
                pchoice_t *more = malloc(cap * 2 * sizeof *more);
                if (!more)
                    abort();
                memcpy(more, *out, n * sizeof *more);
                if (*out != local)
                    free(*out);
                *out = more;
                cap *= 2;
            }
            (*out)[n++] = (pchoice_t){g, c, c->pos + (uint32_t)plen};
        }
    }
    return n;
}

/* The best accepted prefix: longest first; between groups of the same
 * length (reached through different parameters), the first accepted entry
 * of each competes on priority and order. */
static bool best_prefix(walk_t *w)
{
    pchoice_t local[16], *ch = local;
    size_t n = w->ncands ? prefix_choices(w, local, sizeof local / sizeof local[0], &ch) : 0, i = 0;
    bool found = false;
    if (n > 1)
        qsort(ch, n, sizeof *ch, by_consumed_desc);
    while (i < n && !found) {
        size_t j = i;
        const pchoice_t *best = NULL;
        uint32_t bestk = 0;
        for (; j < n && ch[j].consumed == ch[i].consumed; j++) {
            const rgroup_t *g = ch[j].g;
            for (uint32_t k = 0; k < g->n; k++) {
                const torii_rentry_t *e = &rg_entries(g)[k];
                if (best && !rentry_before(e, &rg_entries(best->g)[bestk]))
                    break;
                if (pass(w->f, e)) {
                    best = &ch[j];
                    bestk = k;
                    break;
                }
            }
        }
        if (best) {
            torii_rhit_t *h = w->hit;
            hit_entry(h, best->g, bestk);
            h->rank = (torii_rrank_t){1, UINT64_MAX - best->consumed};
            h->consumed = best->consumed;
            h->nparams = best->from->nparams;
            memcpy(h->param, best->from->param, best->from->nparams * sizeof best->from->param[0]);
            found = true;
        }
        i = j;
    }
    if (n && ch != local)
        free(ch);
    return found;
}

/* The first accepted entry of the exact shape in slot x: from the copy of
 * the first one in the slot if it passes, else from the payload. */
static bool exact_match(const rxslot_t *x, torii_str_t path, const torii_rfilter_t *f, torii_rhit_t *hit)
{
    const rgroup_t *g = x->pay ? rpay_first(x->pay) : NULL; /* only an address until read */
    uint32_t k = 0;
    if (torii_rfilter_pass(f, x->methods, x->check, x->route)) {
        hit->entry = g ? &rg_entries(g)[0] : NULL;
        hit->route = x->route;
    } else {
        if (!g)
            return false;
        for (k = 1; k < g->n && !pass(f, &rg_entries(g)[k]); k++)
            ;
        if (k == g->n)
            return false;
        hit->entry = &rg_entries(g)[k];
        hit->route = hit->entry->route;
    }
    hit->pattern = NULL;
    hit->captures = false; /* an exact shape has nothing to capture */
    hit->names = NULL;
    hit->short_names = NULL;
    hit->rank = (torii_rrank_t){0, 0};
    hit->consumed = (uint32_t)path.n;
    hit->nparams = 0;
    return true;
}

/* A path that a big table's filter says may be an exact shape asks for
 * its slot only: most such paths are one, and the walk's burst would
 * compete with that one line for memory. The walk asks for its levels if
 * the slot does not answer. */
void torii_rtree_prefetch(const torii_rtree_t *t, const torii_rpath_t *rp)
{
    bool probe = rx_worth_probing(&t->exact, rp->xh);
    if (probe)
        rx_prefetch(&t->exact, rp->xh);
    if (!(probe && t->exact.filter) && rp->tree && t->root.kids != 0)
        first_burst(t, rp);
}

bool torii_rtree_lookup(const torii_rtree_t *t, const torii_rpath_t *rp, const torii_rfilter_t *f, torii_rhit_t *hit)
{
    walk_t w;
    bool found;
    torii_str_t path = torii_str(rp->p, rp->n);
    if (rx_worth_probing(&t->exact, rp->xh)) {
        const rxslot_t *x = rx_find(&t->exact, rp->p, rp->n, rp->xh);
        if (x && exact_match(x, path, f, hit))
            return true;
        if (t->exact.filter && rp->tree && t->root.kids != 0)
            first_burst(t, rp); /* skipped by torii_rtree_prefetch */
    }
    if (!rp->tree || t->root.kids == 0)
        return false;
    w.p = rp->p;
    w.n = rp->n;
    w.rp = rp;
    w.t = t;
    w.f = f;
    w.nparams = 0;
    w.mask = 0;
    w.hit = hit;
    w.cands = w.local;
    w.ncands = 0;
    w.capcands = sizeof w.local / sizeof w.local[0];
    found = walk(&w, &t->root, 0, 0, rn_exact_keys()) || best_prefix(&w);
    if (w.cands != w.local)
        free(w.cands);
    return found;
}

/* A hit's priority and order: its entry's, or for an exact shape held
 * whole in its slot (no entry), its route's, which entries copy. */
static torii_rentry_t ranked(const torii_rhit_t *h)
{
    if (h->entry)
        return *h->entry;
    return (torii_rentry_t){.priority = h->route->priority, .order = h->route->order};
}

bool torii_rhit_better(const torii_rhit_t *a, const torii_rhit_t *b)
{
    torii_rentry_t x, y;
    if (a->rank.cls != b->rank.cls)
        return a->rank.cls < b->rank.cls;
    if (a->rank.key != b->rank.key)
        return a->rank.key < b->rank.key;
    x = ranked(a);
    y = ranked(b);
    return rentry_before(&x, &y);
}
