/* test_rtree.c — the router's tables (core/router): the node table
 * (growth, deletes, keys that collide, serials), node payloads, exact
 * slots, and whole routers with hash keys narrowed to a few bits, which
 * must answer exactly as with full keys. */
#include "unit.h"

#include <stdlib.h>

#include "router/path.h"
#include "router/rexact.h"
#include "router/rnode.h"
#include "router/rpay.h"
#include "router/router.h"
#include "router/rterm.h"

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- keys ---- */

TEST(segment_words)
{
    /* A short segment's word is the same read near the end of its string
     * (byte by byte) or with room after it (one load): the key of a node
     * made from a pattern must be the key a request path finds. */
    char buf[32];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (char)(rnd() % 256);
        for (size_t n = 0; n <= RN_SHORT; n++) {
            uint64_t tight = rn_seg(buf, n, n), roomy = rn_seg(buf, n, sizeof buf);
            CHECK(tight == roomy);
        }
    }
    /* distinct short segments of one length give distinct words */
    CHECK(rn_seg("svc12345", 8, 8) != rn_seg("svc12346", 8, 8));
    CHECK(rn_seg("a", 1, 1) == 'a');
    CHECK(rn_seg("ab/", 2, 3) == rn_seg("ab", 2, 2));
}

/* ---- the node table ---- */

typedef struct {
    uint64_t key;
    uint32_t parent, seglen, serial;
    bool live;
} ref_node_t;

/* Every live node is found, with its serial; no two live serials agree. */
static void check_nodes(const rntab_t *t, const ref_node_t *ref, size_t n)
{
    uint32_t live = 0;
    for (size_t i = 0; i < n; i++) {
        const rnode_t *nd = rn_find(t, ref[i].key, ref[i].parent, ref[i].seglen);
        if (!ref[i].live) {
            CHECK(nd == NULL);
            continue;
        }
        live++;
        CHECK(nd != NULL);
        if (nd)
            CHECK_INT(nd->serial, ref[i].serial);
        for (size_t j = 0; j < i; j++)
            if (ref[j].live && ref[j].serial == ref[i].serial)
                CHECK(!"two live nodes share a serial");
    }
    CHECK_INT(t->n, live);
}

static void insert_ref(rntab_t *t, ref_node_t *r)
{
    rn_reserve(t, 1);
    r->serial = rn_insert(t, r->key, r->parent, r->seglen)->serial;
    r->live = true;
}

static void delete_ref(rntab_t *t, ref_node_t *r)
{
    rn_delete(t, rn_find(t, r->key, r->parent, r->seglen));
    r->live = false;
}

TEST(node_table_growth_and_deletes)
{
    enum { N = 3000 };
    static ref_node_t ref[N];
    size_t bytes = 0;
    rntab_t t;
    rn_init(&t, &bytes);
    for (size_t i = 0; i < N; i++) {
        ref[i] = (ref_node_t){rnd(), 2 + (uint32_t)(i % 7), (uint32_t)(i % 5), 0, false};
        insert_ref(&t, &ref[i]);
        if (i % 500 == 0)
            check_nodes(&t, ref, i + 1);
    }
    CHECK(t.mask + 1 >= N * 4 / 3); /* grew, at most three quarters full */
    check_nodes(&t, ref, N);
    /* Delete in a shuffled order, checking the rest on the way. */
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 1237) % N; /* 1237 is prime to N: every index once */
        delete_ref(&t, &ref[i]);
        if (k % 250 == 0)
            check_nodes(&t, ref, N);
    }
    CHECK(t.slots == NULL);
    CHECK_INT(bytes, 0); /* the last delete gives everything back */
}

TEST(node_table_collisions)
{
    /* One key for many nodes (told apart by parent and segment length),
     * and keys that share their low bits: long probe runs, deletes in the
     * middle of them, serials given back and used again. */
    enum { N = 401 };
    static ref_node_t ref[N];
    size_t bytes = 0;
    rntab_t t;
    rn_init(&t, &bytes);
    for (size_t i = 0; i < N - 1; i++) {
        uint64_t key = i % 2 ? 42 : 42 + ((uint64_t)i << 20);
        ref[i] = (ref_node_t){key, 2 + (uint32_t)(i / 8), (uint32_t)(i % 8), 0, false};
        insert_ref(&t, &ref[i]);
    }
    /* a parameter node with a static one's key and parent */
    ref[N - 1] = (ref_node_t){42, 2, RN_PARAM, 0, false};
    insert_ref(&t, &ref[N - 1]);
    check_nodes(&t, ref, N);
    for (size_t i = 0; i < N; i += 3)
        delete_ref(&t, &ref[i]);
    check_nodes(&t, ref, N);
    for (size_t i = 0; i < N; i += 3)
        insert_ref(&t, &ref[i]);
    check_nodes(&t, ref, N);
    for (size_t i = 0; i < N; i++)
        delete_ref(&t, &ref[i]);
    CHECK_INT(bytes, 0);
}

/* ---- payloads ---- */

static torii_route_conf_t confs[8];

static torii_rentry_t entry(int i, int32_t priority)
{
    return (torii_rentry_t){&confs[i], "/a/:x/:y", priority, (uint32_t)i, 0, false, true};
}

TEST(payload_groups)
{
    size_t bytes = 0;
    struct rpay_s *p = NULL;
    rshape_t full = {"/a/:/:", 6, 6, false, 2}, pre = {"/a/:/", 5, 4, true, 1};
    torii_rname_t n2[2] = {{4, 1}, {7, 1}}, n1[2] = {{4, 1}, {0, 0}};
    torii_rentry_t e;
    const rgroup_t *g;
    e = entry(0, 0);
    rpay_add(&bytes, &p, &full, &e, n2);
    e = entry(1, 5); /* higher priority: first */
    rpay_add(&bytes, &p, &full, &e, n2);
    e = entry(2, 0); /* same priority, declared later: last */
    rpay_add(&bytes, &p, &full, &e, n2);
    e = entry(0, 0); /* already there: no change */
    rpay_add(&bytes, &p, &full, &e, n2);
    e = entry(3, 0);
    rpay_add(&bytes, &p, &pre, &e, n1);
    CHECK_INT(p->ngroups, 2);
    CHECK(rpay_has(p, false) && rpay_has(p, true));
    g = rpay_first(p);
    CHECK_INT(g->n, 3);
    CHECK(rg_entries(g)[0].route == &confs[1]);
    CHECK(rg_entries(g)[1].route == &confs[0]);
    CHECK(rg_entries(g)[2].route == &confs[2]);
    CHECK_INT(rg_nnames(g), 2);
    CHECK_INT(rg_names(g)[2 * 2 + 1].off, 7);
    CHECK(memcmp(rg_text(g), "/a/:/:", 6) == 0);
    g = rg_next(g);
    CHECK_INT(g->n, 1);
    CHECK_INT(g->cut, 4);
    CHECK_INT(rg_nnames(g), 2); /* one parameter, the '*' name */
    CHECK(memcmp(rg_text(g), "/a/:/", 5) == 0);
    CHECK_INT(bytes, p->size);
    rpay_remove(&bytes, &p, &full, &confs[0]);
    g = rpay_first(p);
    CHECK_INT(g->n, 2);
    CHECK(rg_entries(g)[1].route == &confs[2]);
    rpay_remove(&bytes, &p, &full, &confs[7]); /* not there: no change */
    rpay_remove(&bytes, &p, &pre, &confs[3]);
    CHECK_INT(p->ngroups, 1);
    CHECK(!rpay_has(p, true));
    rpay_remove(&bytes, &p, &full, &confs[1]);
    rpay_remove(&bytes, &p, &full, &confs[2]);
    CHECK(p == NULL);
    CHECK_INT(bytes, 0);
}

/* ---- exact slots ---- */

/* A big table's filter: every shape there passes it (no false "not"),
 * most paths that are not there do not, a removed shape may still pass
 * until the table grows and the filter is made anew, and the bytes are
 * counted and given back. */
TEST(exact_filter)
{
    enum { N = 20000 };
    static char texts[N][32];
    size_t bytes = 0, passed = 0;
    rxtab_t t;
    rx_init(&t, &bytes);
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "/api/v1/svc%d/items", i);
        rshape_t s = {texts[i], strlen(texts[i]), strlen(texts[i]), false, 0};
        torii_rentry_t e = entry(i % 8, 0);
        rx_add(&t, &s, &e);
        if (i == 1000)
            CHECK(t.filter == NULL); /* small: no filter yet */
    }
    CHECK(t.filter != NULL && t.mask + 1 >= RX_FILTER_MIN);
    for (int i = 0; i < N; i++) {
        size_t n = strlen(texts[i]);
        uint32_t h = rx_hash(texts[i], n);
        CHECK(rx_filter_says_maybe(&t, h) && rx_worth_probing(&t, h));
    }
    for (int i = 0; i < N; i++) {
        char other[40];
        int n = snprintf(other, sizeof other, "/api/v1/svc%d/orders", i);
        passed += rx_worth_probing(&t, rx_hash(other, (size_t)n));
    }
    CHECK(passed < N / 10); /* about 3% expected */
    for (int i = 0; i < N; i += 2) {
        rshape_t s = {texts[i], strlen(texts[i]), strlen(texts[i]), false, 0};
        rx_remove(&t, &s, &confs[i % 8]);
    }
    for (int i = 0; i < N; i++) {
        size_t n = strlen(texts[i]);
        const rxslot_t *x = rx_find(&t, texts[i], n, rx_hash(texts[i], n));
        CHECK(i % 2 ? x != NULL && rx_worth_probing(&t, rx_hash(texts[i], n)) : x == NULL);
    }
    rx_free(&t);
    CHECK(t.filter == NULL);
    CHECK_INT(bytes, 0);
}

TEST(exact_slots)
{
    static char texts[300][64];
    size_t bytes = 0;
    rxtab_t t;
    uint64_t saved = torii_rnode_key_mask;
    torii_rnode_key_mask = 0x3; /* four hashes for 300 shapes */
    rx_init(&t, &bytes);
    for (int i = 0; i < 300; i++) {
        /* short texts live in the slot, long ones only in the payload */
        snprintf(texts[i], sizeof texts[i], i % 2 ? "/s%d" : "/a-text-longer-than-a-slot-holds/%d", i);
        rshape_t s = {texts[i], strlen(texts[i]), strlen(texts[i]), false, 0};
        torii_rentry_t e = entry(i % 8, 0);
        rx_add(&t, &s, &e);
    }
    CHECK_INT(t.n, 300);
    for (int i = 0; i < 300; i++) {
        size_t n = strlen(texts[i]);
        const rxslot_t *x = rx_find(&t, texts[i], n, rx_hash(texts[i], n));
        CHECK(x && x->route == &confs[i % 8]);
        CHECK(x && x->len == (n <= RX_INLINE ? n : 0));
    }
    CHECK(rx_find(&t, "/s1x", 4, rx_hash("/s1x", 4)) == NULL);
    {
        /* A better entry becomes the slot's copy; it goes, the copy follows. */
        rshape_t s = {texts[1], strlen(texts[1]), strlen(texts[1]), false, 0};
        torii_rentry_t e = entry(5, 9);
        const rxslot_t *x;
        rx_add(&t, &s, &e);
        x = rx_find(&t, texts[1], s.len, rx_hash(texts[1], s.len));
        CHECK(x && x->route == &confs[5] && x->pay != NULL); /* two entries: a payload */
        rx_remove(&t, &s, &confs[5]);
        x = rx_find(&t, texts[1], s.len, rx_hash(texts[1], s.len));
        CHECK(x && x->route == &confs[1] && x->pay == NULL); /* one again: the slot alone */
        rx_remove(&t, &s, &confs[7]);                        /* not there: no change */
        CHECK(rx_find(&t, texts[1], s.len, rx_hash(texts[1], s.len)) == x);
    }
    for (int i = 0; i < 300; i += 2) {
        rshape_t s = {texts[i], strlen(texts[i]), strlen(texts[i]), false, 0};
        rx_remove(&t, &s, &confs[i % 8]);
    }
    CHECK_INT(t.n, 150);
    for (int i = 0; i < 300; i++) {
        size_t n = strlen(texts[i]);
        const rxslot_t *x = rx_find(&t, texts[i], n, rx_hash(texts[i], n));
        CHECK(i % 2 ? x != NULL : x == NULL);
    }
    rx_free(&t);
    CHECK_INT(bytes, 0);
    torii_rnode_key_mask = saved;
}

/* ---- terminal lines ---- */

TEST(terminal_lines)
{
    /* Lines for many nodes, half of them sharing one key (told apart by
     * serial); an update in place, deletes in the middle of runs. */
    enum { N = 500 };
    size_t bytes = 0, pbytes = 0;
    struct rpay_s *p = NULL;
    rshape_t full = {"/a/:/:", 6, 6, false, 2};
    torii_rname_t n2[2] = {{4, 1}, {7, 1}};
    torii_rentry_t e = entry(0, 0), better = entry(1, 7);
    rttab_t t;
    rpay_add(&pbytes, &p, &full, &e, n2);
    rt_init(&t, &bytes);
    for (uint32_t i = 0; i < N; i++)
        rt_set(&t, i % 2 ? 7 : (uint64_t)i << 24, 2 + i, p, rpay_first(p));
    CHECK_INT(t.n, N);
    for (uint32_t i = 0; i < N; i++) {
        const rtslot_t *s = rt_find(&t, i % 2 ? 7 : (uint64_t)i << 24, 2 + i);
        CHECK(s && s->route == &confs[0] && s->named && s->names[1][0] == 7 && s->group == sizeof *p);
    }
    CHECK(rt_find(&t, 7, 1) == NULL);
    rpay_add(&pbytes, &p, &full, &better, n2); /* a new first entry: the line follows */
    rt_set(&t, 7, 3, p, rpay_first(p));
    CHECK(rt_find(&t, 7, 3)->route == &confs[1]);
    CHECK_INT(t.n, N);
    for (uint32_t i = 0; i < N; i += 3)
        rt_del(&t, i % 2 ? 7 : (uint64_t)i << 24, 2 + i);
    for (uint32_t i = 0; i < N; i++)
        CHECK((rt_find(&t, i % 2 ? 7 : (uint64_t)i << 24, 2 + i) != NULL) == (i % 3 != 0));
    for (uint32_t i = 0; i < N; i++)
        rt_del(&t, i % 2 ? 7 : (uint64_t)i << 24, 2 + i);
    CHECK_INT(bytes, 0);
    rpay_free(&pbytes, p);
}

/* ---- whole routers with narrowed keys ---- */

#define NR 60

typedef struct {
    torii_route_conf_t conf[NR];
    char *uri_ptrs[NR][2];
    char uri[NR][2][96];
    char *host_ptrs[NR][1];
} rset_t;

static const char *const lits[] = {"a", "b", "ab", "abc", "a:b", "", "averyveryverylongsegment"};

static void gen_pattern(char *out, size_t cap)
{
    size_t n = 0, nseg = 1 + rnd() % 3;
    bool param = false;
    for (size_t s = 0; s < nseg; s++) {
        unsigned k = (unsigned)(rnd() % 10);
        param = k >= 7;
        if (!param)
            n += (size_t)snprintf(out + n, cap - n, "/%s", lits[k]);
        else
            n += (size_t)snprintf(out + n, cap - n, "/:p%zu", s);
    }
    switch (rnd() % 5) {
    case 0: snprintf(out + n, cap - n, "/*"); break;
    case 1: snprintf(out + n, cap - n, param ? "/*" : "*"); break; /* '*' cannot end a parameter */
    case 2: snprintf(out + n, cap - n, "/*rest"); break;
    default: break;
    }
}

static void gen_routes(rset_t *rs)
{
    static char *const hosts[] = {"h.org", "*.h.org"};
    memset(rs, 0, sizeof *rs);
    for (int i = 0; i < NR; i++) {
        torii_route_conf_t *c = &rs->conf[i];
        c->order = (uint32_t)i;
        c->priority = (int32_t)(rnd() % 3);
        c->nuris = 1 + (uint32_t)(rnd() % 2);
        for (uint32_t k = 0; k < c->nuris; k++) {
            gen_pattern(rs->uri[i][k], sizeof rs->uri[i][k]);
            rs->uri_ptrs[i][k] = rs->uri[i][k];
        }
        c->uris = rs->uri_ptrs[i];
        if (rnd() % 4 == 0) {
            rs->host_ptrs[i][0] = hosts[rnd() % 2];
            c->hosts = rs->host_ptrs[i];
            c->nhosts = 1;
        }
        if (rnd() % 4 == 0)
            c->methods = 1u << TORII_M_POST;
    }
}

typedef struct {
    const torii_route_conf_t *route;
    char params[128];
} answer_t;

enum { NQ = 400 };

static void gen_path(char *out, size_t cap)
{
    static const char *const segs[] = {"a", "b", "ab", "abc", "a:b", "", "zz", "averyveryverylongsegment"};
    size_t n = 0, nseg = 1 + rnd() % 4;
    for (size_t s = 0; s < nseg; s++)
        n += (size_t)snprintf(out + n, cap - n, "/%s", segs[rnd() % 8]);
    if (rnd() % 4 == 0)
        snprintf(out + n, cap - n, "/");
}

/* Build a router under the current key mask (removing and putting back
 * some routes on the way), and answer the requests. */
static void answers(rset_t *rs, char paths[NQ][128], answer_t *out)
{
    static const char *const hosts[] = {"h.org", "x.h.org", "other"};
    torii_router_t *r = torii_router_new();
    char err[128];
    for (int i = 0; i < NR; i++) {
        bool ok = torii_router_add(r, &rs->conf[i], err, sizeof err);
        if (!ok)
            fprintf(stderr, "  %s\n", err);
        CHECK(ok);
    }
    for (int i = 0; i < NR; i += 4)
        torii_router_remove(r, &rs->conf[i]);
    for (int i = 0; i < NR; i += 8)
        CHECK(torii_router_add(r, &rs->conf[i], err, sizeof err));
    for (int q = 0; q < NQ; q++) {
        torii_route_req_t req;
        torii_route_match_t m;
        size_t n = 0;
        memset(&req, 0, sizeof req);
        req.method = q % 3 ? TORII_M_GET : TORII_M_POST;
        req.x.uri = torii_str(paths[q], strlen(paths[q]));
        req.x.host = torii_str(hosts[q % 3], strlen(hosts[q % 3]));
        memset(&out[q], 0, sizeof out[q]);
        if (!torii_router_match(r, &req, &m))
            continue;
        out[q].route = m.route;
        for (uint32_t k = 0; k < m.nparams; k++)
            n += (size_t)snprintf(out[q].params + n, sizeof out[q].params - n, "%.*s=%.*s;", (int)m.params[k].name.n,
                                  m.params[k].name.p, (int)m.params[k].value.n, m.params[k].value.p);
    }
    torii_router_free(r);
}

TEST(narrow_keys_same_answers)
{
    static rset_t rs;
    static char paths[NQ][128];
    static answer_t want[NQ], got[NQ];
    static const uint64_t masks[] = {0x0, 0x1, 0x7, 0xff};
    uint64_t saved = torii_rnode_key_mask;
    for (int round = 0; round < 20; round++) {
        gen_routes(&rs);
        for (int q = 0; q < NQ; q++)
            gen_path(paths[q], sizeof paths[q]);
        torii_rnode_key_mask = UINT64_MAX;
        answers(&rs, paths, want);
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
            torii_rnode_key_mask = masks[m];
            answers(&rs, paths, got);
            for (int q = 0; q < NQ; q++) {
                if (got[q].route != want[q].route || strcmp(got[q].params, want[q].params) != 0) {
                    fprintf(stderr, "  mask %#llx, %s: got %s, want %s\n", (unsigned long long)masks[m], paths[q],
                            got[q].route ? got[q].route->uris[0] : "-", want[q].route ? want[q].route->uris[0] : "-");
                    CHECK(!"answers differ with narrowed keys");
                    q = NQ;
                    m = sizeof masks / sizeof masks[0];
                    round = 20;
                }
            }
        }
    }
    torii_rnode_key_mask = saved;
}

TEST(ties_between_trees)
{
    /* A host's route and a host-less one tie on rank and priority: the one
     * declared first wins, even when its node's payload starts with
     * another route's prefix group. */
    static char *host[1] = {"h.org"}, *pu[1] = {"/:z/*"}, *hu[1] = {"/:y"}, *au[1] = {"/:x"};
    torii_route_conf_t p = {.id = "p", .uris = pu, .nuris = 1, .hosts = host, .nhosts = 1, .priority = 1, .order = 9};
    torii_route_conf_t h = {.id = "h", .uris = hu, .nuris = 1, .hosts = host, .nhosts = 1, .priority = 1, .order = 3};
    torii_route_conf_t a = {.id = "a", .uris = au, .nuris = 1, .priority = 1, .order = 5};
    torii_router_t *r = torii_router_new();
    torii_route_req_t req;
    torii_route_match_t m;
    char err[64];
    CHECK(torii_router_add(r, &p, err, sizeof err)); /* its group comes first in the node */
    CHECK(torii_router_add(r, &h, err, sizeof err));
    CHECK(torii_router_add(r, &a, err, sizeof err));
    memset(&req, 0, sizeof req);
    req.x.uri = torii_str("/v", 2);
    req.x.host = torii_str("h.org", 5);
    CHECK(torii_router_match(r, &req, &m) && m.route == &h);
    CHECK_SLICE(m.params[0].name, "y");
    torii_router_free(r);
}

/* The route for GET or POST path (host-less), with its captures as
 * "name=value;" in caps. */
static const torii_route_conf_t *match_caps(torii_router_t *r, torii_method_t method, const char *path, char *caps,
                                            size_t cap)
{
    torii_route_req_t req;
    torii_route_match_t m;
    size_t n = 0;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.x.uri = torii_str(path, strlen(path));
    caps[0] = '\0';
    if (!torii_router_match(r, &req, &m))
        return NULL;
    for (uint32_t k = 0; k < m.nparams; k++)
        n += (size_t)snprintf(caps + n, cap - n, "%.*s=%.*s;", (int)m.params[k].name.n, m.params[k].name.p,
                              (int)m.params[k].value.n, m.params[k].value.p);
    return m.route;
}

TEST(lines_and_payloads)
{
    /* Whole shapes answered from their terminal lines, prefix shapes from
     * payloads, and what lines leave to payloads: a first entry that fails
     * its filter; several prefix nodes on one path; a catch-all. */
    static char *u_post[1] = {"/a/:x/*rest"}, *u_any[1] = {"/a/:y/*tail"}, *u_deep[1] = {"/a/:x/b/*"},
                *u_all[1] = {"/*"}, *u_full[1] = {"/a/:x/c"};
    torii_route_conf_t post = {.id = "post", .uris = u_post, .nuris = 1, .methods = 1u << TORII_M_POST, .order = 0};
    torii_route_conf_t any = {.id = "any", .uris = u_any, .nuris = 1, .order = 1};
    torii_route_conf_t deep = {.id = "deep", .uris = u_deep, .nuris = 1, .order = 2};
    torii_route_conf_t all = {.id = "all", .uris = u_all, .nuris = 1, .order = 3};
    torii_route_conf_t full = {.id = "full", .uris = u_full, .nuris = 1, .order = 4};
    torii_router_t *r = torii_router_new();
    char err[64], caps[128];
    CHECK(torii_router_add(r, &post, err, sizeof err));
    CHECK(torii_router_add(r, &any, err, sizeof err));
    CHECK(torii_router_add(r, &full, err, sizeof err));
    CHECK(match_caps(r, TORII_M_POST, "/a/v/t/u", caps, sizeof caps) == &post); /* the first entry */
    CHECK_STR(caps, "x=v;rest=t/u;");
    CHECK(match_caps(r, TORII_M_GET, "/a/v/t/u", caps, sizeof caps) == &any); /* it fails: the next */
    CHECK_STR(caps, "y=v;tail=t/u;");
    CHECK(match_caps(r, TORII_M_GET, "/a/v/c", caps, sizeof caps) == &full); /* its line */
    CHECK_STR(caps, "x=v;");
    CHECK(match_caps(r, TORII_M_GET, "/a/v", caps, sizeof caps) == NULL); /* "/a/v/" is needed */
    CHECK(torii_router_add(r, &deep, err, sizeof err));
    CHECK(torii_router_add(r, &all, err, sizeof err));
    CHECK(match_caps(r, TORII_M_GET, "/a/v/b/z", caps, sizeof caps) == &deep); /* three prefix nodes: longest */
    CHECK(match_caps(r, TORII_M_GET, "/a/v/q", caps, sizeof caps) == &any);
    CHECK(match_caps(r, TORII_M_GET, "/zz", caps, sizeof caps) == &all);
    torii_router_remove(r, &any);
    torii_router_remove(r, &post);
    CHECK(match_caps(r, TORII_M_POST, "/a/v/t/u", caps, sizeof caps) == &all); /* removed for good */
    torii_router_free(r);
}

TEST(paths_deeper_than_the_walk_caches)
{
    /* Segments past the first 64 are split and hashed on the way. */
    char pattern[512], path[512];
    size_t n = 0, m = 0;
    torii_route_conf_t conf = {0};
    char *uris[1] = {pattern};
    torii_router_t *r = torii_router_new();
    torii_route_req_t req;
    torii_route_match_t match;
    char err[64];
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(pattern + n, sizeof pattern - n, i == 1 ? "/:x" : "/s");
        m += (size_t)snprintf(path + m, sizeof path - m, i == 1 ? "/v" : "/s");
    }
    snprintf(pattern + n, sizeof pattern - n, "/*");
    snprintf(path + m, sizeof path - m, "/tail/end");
    conf.uris = uris;
    conf.nuris = 1;
    CHECK(torii_router_add(r, &conf, err, sizeof err));
    memset(&req, 0, sizeof req);
    req.x.uri = torii_str(path, strlen(path));
    CHECK(torii_router_match(r, &req, &match) && match.route == &conf);
    CHECK_INT(match.nparams, 1);
    CHECK_SLICE(match.params[0].value, "v");
    req.x.uri = torii_str(path, m - 2); /* one segment short of the prefix */
    CHECK(!torii_router_match(r, &req, &match));
    torii_router_free(r);
}

int main(void)
{
    RUN(segment_words);
    RUN(node_table_growth_and_deletes);
    RUN(node_table_collisions);
    RUN(payload_groups);
    RUN(exact_slots);
    RUN(exact_filter);
    RUN(terminal_lines);
    RUN(narrow_keys_same_answers);
    RUN(ties_between_trees);
    RUN(lines_and_payloads);
    RUN(paths_deeper_than_the_walk_caches);
    return unit_report("test_rtree");
}
