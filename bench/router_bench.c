/*
 * router_bench.c — how the router (core/router) scales: for 1k, 10k, 100k
 * and 1M routes, the time to build the table, the memory it holds per
 * route, the median time per match for path-only and host-bound requests,
 * the cost of changing one route in a big table, and, at 1k and 10k, the
 * brute-force linear scan (t/support/router_ref.c) for comparison.
 *
 * The route set mimics a gateway's: ~40% exact paths
 * (/api/v2/svc123/items/list), ~30% parameter paths
 * (/api/v1/svc77/users/:id/orders/:oid), ~20% prefixes (/static/app42/js/
 * then a '*'), ~10% bound to a host (svc123.example.com or
 * *.tenant45.example.com) with paths of the same kinds. Requests are
 * normalised with torii_path_normalise first, as the gateway does; that
 * cost is reported on its own line, not inside the match figures.
 *
 * Environment: ROUTER_BENCH_MAX caps the table size (default 1000000).
 * Run with `make build/bench/router_bench && build/bench/router_bench`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cidr.h"
#include "router/path.h"
#include "router/router.h"
#include "support/router_ref.h"

#define POOL         16384 /* requests per pool (a power of two) */
#define BATCHES      101
#define PER_BATCH    1000
#define UPDATE_TRIES 100
#define URI_MAX      96

/* ---- deterministic randomness ---- */

static uint64_t rng_state = 0x5eed2024c0ffeeULL;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t rndn(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], cmp_double);
    return v[n / 2];
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "router_bench: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- the route set ---- */

enum { K_EXACT, K_PARAM, K_PREFIX };

typedef struct {
    torii_route_conf_t *routes;
    char **uri_ptrs;  /* one uri per route */
    char **host_ptrs; /* one host per host-bound route */
    uint8_t *kind;
    uint8_t *wild; /* host is "*.suffix" */
    char *arena;
    size_t arena_used, arena_cap;
    size_t n;
    uint32_t *path_only, *host_bound; /* indexes, by kind of binding */
    size_t npath_only, nhost_bound;
} routeset_t;

static const char *const resources[] = {"items",    "users",   "orders",   "carts",   "products", "invoices",
                                        "accounts", "reports", "sessions", "tickets", "payments", "shipments",
                                        "reviews",  "coupons", "messages", "events"};
static const char *const actions[] = {"list", "search", "export", "stats", "count", "recent", "summary", "batch"};
static const char *const assets[] = {"js", "css", "img", "fonts"};
static torii_cidr_t office_block;

static char *arena_put(routeset_t *rs, const char *s)
{
    size_t l = strlen(s) + 1;
    char *p;
    if (rs->arena_used + l > rs->arena_cap) {
        fprintf(stderr, "router_bench: string arena full\n");
        exit(1);
    }
    p = rs->arena + rs->arena_used;
    memcpy(p, s, l);
    rs->arena_used += l;
    return p;
}

/* A path of the given kind; `unit` and `j` make it unique within its kind. */
static int make_path(char *out, size_t cap, int kind, uint32_t unit, uint32_t j, bool host_bound)
{
    uint32_t v = 1 + unit % 3;
    if (host_bound) {
        switch (kind) {
        case K_EXACT: return snprintf(out, cap, "/v1/%s/%s", resources[j], actions[j % 8]);
        case K_PARAM: return snprintf(out, cap, "/v1/%s/:id%s", resources[j], j % 2 ? "/history" : "");
        default: return snprintf(out, cap, "/assets/%s/*", resources[j]);
        }
    }
    switch (kind) {
    case K_EXACT: /* 8 per service */
        return snprintf(out, cap, "/api/v%u/svc%u/%s/%s", v, unit, resources[(unit * 3 + j) % 16],
                        actions[(j + unit) % 8]);
    case K_PARAM: /* 4 per service */
        switch (j) {
        case 0: return snprintf(out, cap, "/api/v%u/svc%u/users/:id/orders/:oid", v, unit);
        case 1: return snprintf(out, cap, "/api/v%u/svc%u/%s/:id", v, unit, resources[(unit + 5) % 16]);
        case 2:
            return snprintf(out, cap, "/api/v%u/svc%u/%s/:id/%s", v, unit, resources[(unit + 9) % 16],
                            actions[unit % 8]);
        default: return snprintf(out, cap, "/api/v%u/svc%u/:tenant/%s/:id", v, unit, resources[unit % 16]);
        }
    default: /* 4 per app; every fourth app also proxies an API subtree */
        if (j == 0 && unit % 4 == 0)
            return snprintf(out, cap, "/api/v%u/svc%u/proxy/*", v, unit);
        return snprintf(out, cap, "/static/app%u/%s/*", unit, assets[j]);
    }
}

static void routeset_init(routeset_t *rs, size_t n)
{
    uint32_t count[3] = {0, 0, 0}, hcount = 0;
    char buf[URI_MAX];
    memset(rs, 0, sizeof *rs);
    rs->n = n;
    rs->routes = xcalloc(n, sizeof *rs->routes);
    rs->uri_ptrs = xcalloc(n, sizeof *rs->uri_ptrs);
    rs->host_ptrs = xcalloc(n, sizeof *rs->host_ptrs);
    rs->kind = xcalloc(n, 1);
    rs->wild = xcalloc(n, 1);
    rs->path_only = xcalloc(n, sizeof *rs->path_only);
    rs->host_bound = xcalloc(n, sizeof *rs->host_bound);
    rs->arena_cap = n * 96 + 4096;
    rs->arena = xcalloc(rs->arena_cap, 1);
    if (!torii_cidr_parse("10.0.0.0/8", 10, &office_block))
        exit(1);
    for (size_t i = 0; i < n; i++) {
        torii_route_conf_t *c = &rs->routes[i];
        uint32_t r = rndn(100), m = rndn(10);
        int kind;
        c->order = (uint32_t)i;
        c->nuris = 1;
        c->uris = &rs->uri_ptrs[i];
        if (r < 90) {
            static const uint32_t per_unit[3] = {8, 4, 4};
            kind = r < 40 ? K_EXACT : r < 70 ? K_PARAM : K_PREFIX;
            make_path(buf, sizeof buf, kind, count[kind] / per_unit[kind], count[kind] % per_unit[kind], false);
            count[kind]++;
            rs->path_only[rs->npath_only++] = (uint32_t)i;
        } else {
            uint32_t k = hcount % 10, host = hcount / 10; /* ten routes per host */
            kind = k < 4 ? K_EXACT : k < 7 ? K_PARAM : K_PREFIX;
            make_path(buf, sizeof buf, kind, host, k, true);
            rs->wild[i] = host % 4 == 3;
            {
                char h[64];
                if (rs->wild[i])
                    snprintf(h, sizeof h, "*.tenant%u.example.com", host);
                else
                    snprintf(h, sizeof h, "svc%u.example.com", host);
                rs->host_ptrs[i] = arena_put(rs, h);
            }
            c->hosts = &rs->host_ptrs[i];
            c->nhosts = 1;
            hcount++;
            rs->host_bound[rs->nhost_bound++] = (uint32_t)i;
        }
        rs->kind[i] = (uint8_t)kind;
        rs->uri_ptrs[i] = arena_put(rs, buf);
        /* most routes take any method; some only reads, some reads and writes */
        if (m == 7 || m == 8)
            c->methods = (1u << TORII_M_GET) | (1u << TORII_M_HEAD);
        else if (m == 9)
            c->methods = (1u << TORII_M_GET) | (1u << TORII_M_POST);
        if (rndn(100) == 0) {
            c->remote_addrs = &office_block;
            c->nremote_addrs = 1;
        }
    }
}

static void routeset_free(routeset_t *rs)
{
    free(rs->routes);
    free(rs->uri_ptrs);
    free(rs->host_ptrs);
    free(rs->kind);
    free(rs->wild);
    free(rs->path_only);
    free(rs->host_bound);
    free(rs->arena);
}

/* ---- requests ---- */

typedef struct {
    char raw[POOL][URI_MAX];
    size_t rawlen[POOL];
    char norm[POOL][URI_MAX];
    char host[POOL][64];
    const torii_route_conf_t *intended[POOL]; /* the route the request was made for, NULL for a miss */
    torii_route_req_t req[POOL];
} pool_t;

static uint8_t client_addr[16];

/* Fill a pattern in: parameters become ids, a '*' some rest of a path. */
static void instantiate(const char *pat, char *out, size_t cap)
{
    static const char *const rests[] = {"main.3f2a9c.js", "img/logo.png", "", "a/b/c/site.css", "v2/chunk-17.js"};
    size_t n = 0;
    for (size_t i = 0; pat[i] && n + 24 < cap;) {
        if (pat[i] == '*') {
            n += (size_t)snprintf(out + n, cap - n, "%s", rests[rndn(5)]);
            break;
        }
        if (pat[i] == ':' && i > 0 && pat[i - 1] == '/') {
            n += (size_t)snprintf(out + n, cap - n, "%u", rndn(1000000));
            while (pat[i] && pat[i] != '/')
                i++;
            continue;
        }
        out[n++] = pat[i++];
    }
    out[n] = '\0';
}

/* Path-only requests (host_bound false) or requests for host-bound routes:
 * ~90% made from a route, ~10% misses; a few carry a "/./" to resolve. */
static void pool_fill(pool_t *p, const routeset_t *rs, bool host_bound)
{
    for (size_t q = 0; q < POOL; q++) {
        char path[URI_MAX - 4];
        const torii_route_conf_t *c = NULL;
        uint32_t idx = 0;
        bool miss = rndn(10) == 0;
        if (host_bound && rs->nhost_bound) {
            idx = rs->host_bound[rndn((uint32_t)rs->nhost_bound)];
            c = &rs->routes[idx];
            if (rs->wild[idx])
                snprintf(p->host[q], sizeof p->host[q], "t%u%s", rndn(100), c->hosts[0] + 1);
            else
                snprintf(p->host[q], sizeof p->host[q], "%s", c->hosts[0]);
            instantiate(c->uris[0], path, sizeof path);
            if (miss && rndn(2)) { /* a host nobody serves */
                snprintf(p->host[q], sizeof p->host[q], "nosuch%u.example.com", rndn(100000));
            } else if (miss) { /* a known host, a path it does not have */
                snprintf(path, sizeof path, "/v1/nosuch/%u", rndn(100000));
            }
        } else {
            idx = rs->path_only[rndn((uint32_t)rs->npath_only)];
            c = &rs->routes[idx];
            snprintf(p->host[q], sizeof p->host[q], "api.example.com");
            instantiate(c->uris[0], path, sizeof path);
            if (miss) {
                switch (rndn(3)) {
                case 0: snprintf(path, sizeof path, "/api/v1/svc%u/nosuch/%u", rndn(100000), rndn(1000)); break;
                case 1: snprintf(path, sizeof path, "/static/app%u", rndn(100000)); break;
                default: snprintf(path, sizeof path, "/unknown/%u/x", rndn(100000)); break;
                }
            }
        }
        p->intended[q] = miss ? NULL : c;
        if (rndn(32) == 0)
            snprintf(p->raw[q], sizeof p->raw[q], "/.%s", path);
        else
            snprintf(p->raw[q], sizeof p->raw[q], "%s", path);
        p->rawlen[q] = strlen(p->raw[q]);
    }
}

static void pool_normalise(pool_t *p)
{
    for (size_t q = 0; q < POOL; q++) {
        const char *why;
        int len = torii_path_normalise(torii_str(p->raw[q], p->rawlen[q]), p->norm[q], &why);
        if (len < 0) {
            fprintf(stderr, "router_bench: cannot normalise %s: %s\n", p->raw[q], why);
            exit(1);
        }
        memset(&p->req[q], 0, sizeof p->req[q]);
        p->req[q].method = TORII_M_GET;
        p->req[q].x.method = torii_str("GET", 3);
        p->req[q].x.uri = torii_str(p->norm[q], (size_t)len);
        p->req[q].x.request_uri = torii_str(p->raw[q], p->rawlen[q]);
        p->req[q].x.host = torii_str(p->host[q], strlen(p->host[q]));
        p->req[q].x.client = client_addr;
        p->req[q].x.client_text = torii_str("10.1.2.3", 8);
    }
}

/* Median ns per normalisation over batches of PER_BATCH. */
static double time_normalise(const pool_t *p)
{
    double t[BATCHES];
    char out[URI_MAX];
    size_t k = 0;
    volatile int sink = 0;
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_ns();
        for (int i = 0; i < PER_BATCH; i++) {
            const char *why;
            sink += torii_path_normalise(torii_str(p->raw[k], p->rawlen[k]), out, &why);
            k = (k + 1) & (POOL - 1);
        }
        t[b] = (now_ns() - t0) / PER_BATCH;
    }
    (void)sink;
    return median(t, BATCHES);
}

/* Median ns per router match over `batches` batches of `per` requests. */
static double time_router(const torii_router_t *r, const pool_t *p, int batches, int per)
{
    double *t = xcalloc((size_t)batches, sizeof *t), med;
    torii_route_match_t m;
    volatile uintptr_t sink = 0;
    size_t k = 0;
    for (size_t q = 0; q < 4 * POOL; q++) /* warm up */
        sink += torii_router_match(r, &p->req[q & (POOL - 1)], &m);
    for (int b = 0; b < batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < per; i++) {
            if (torii_router_match(r, &p->req[k], &m))
                sink += (uintptr_t)m.route;
            k = (k + 1) & (POOL - 1);
        }
        t[b] = (now_ns() - t0) / per;
    }
    (void)sink;
    med = median(t, (size_t)batches);
    free(t);
    return med;
}

/* The linear scan over the same requests. */
static double time_linear(const routeset_t *rs, size_t n, const pool_t *p, int batches, int per)
{
    double *t = xcalloc((size_t)batches, sizeof *t), med;
    torii_route_match_t m;
    volatile uintptr_t sink = 0;
    size_t k = 0;
    for (int b = 0; b < batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < per; i++) {
            sink += (uintptr_t)router_ref_match(rs->routes, n, &p->req[k], &m);
            k = (k + 1) & (POOL - 1);
        }
        t[b] = (now_ns() - t0) / per;
    }
    (void)sink;
    med = median(t, (size_t)batches);
    free(t);
    return med;
}

/* Sanity: how many requests got the route they were made for (or nothing,
 * for a miss); and, when `n` is small enough, how many answers differ from
 * the reference. */
static void check_answers(const torii_router_t *r, const routeset_t *rs, size_t n, const pool_t *p, size_t nref,
                          size_t *as_intended, size_t *hits, size_t *ref_diff)
{
    *as_intended = *hits = *ref_diff = 0;
    for (size_t q = 0; q < POOL; q++) {
        torii_route_match_t m, w;
        const torii_route_conf_t *got = torii_router_match(r, &p->req[q], &m) ? m.route : NULL;
        *hits += got != NULL;
        *as_intended += p->intended[q] == NULL || got == p->intended[q]; /* a miss may fall back */
        if (q < nref && router_ref_match(rs->routes, n, &p->req[q], &w) != got)
            (*ref_diff)++;
    }
}

/* ---- updates ---- */

typedef struct {
    double add_us, change_us, remove_us;
} updates_t;

static updates_t time_updates(torii_router_t *r, routeset_t *rs, size_t n)
{
    double ta[UPDATE_TRIES], tc[UPDATE_TRIES], tr[UPDATE_TRIES];
    torii_route_conf_t *fresh = xcalloc(UPDATE_TRIES, sizeof *fresh);
    char(*text)[URI_MAX] = xcalloc(UPDATE_TRIES, sizeof *text);
    char **ptrs = xcalloc(UPDATE_TRIES, sizeof *ptrs);
    char err[256];
    updates_t u;
    for (int t = 0; t < UPDATE_TRIES; t++) { /* new endpoints of existing services, all over the tree */
        uint32_t svc = rndn((uint32_t)(n / 20));
        snprintf(text[t], URI_MAX, "/api/v%u/svc%u/widgets%d/:id", 1 + svc % 3, svc, t);
        ptrs[t] = text[t];
    }
    /* add one new route (removed again, untimed) */
    for (int t = 0; t < UPDATE_TRIES; t++) {
        double t0;
        fresh[t].uris = &ptrs[t];
        fresh[t].nuris = 1;
        fresh[t].order = (uint32_t)(n + (size_t)t);
        t0 = now_ns();
        if (!torii_router_add(r, &fresh[t], err, sizeof err)) {
            fprintf(stderr, "router_bench: add %s: %s\n", text[t], err);
            exit(1);
        }
        ta[t] = (now_ns() - t0) / 1000;
        torii_router_remove(r, &fresh[t]);
    }
    /* change one: remove, new uri, add (put back afterwards, untimed) */
    for (int t = 0; t < UPDATE_TRIES; t++) {
        torii_route_conf_t *c = &rs->routes[rndn((uint32_t)n)];
        char **old = c->uris;
        double t0 = now_ns();
        torii_router_remove(r, c);
        c->uris = &ptrs[t];
        if (!torii_router_add(r, c, err, sizeof err)) {
            fprintf(stderr, "router_bench: change to %s: %s\n", text[t], err);
            exit(1);
        }
        tc[t] = (now_ns() - t0) / 1000;
        torii_router_remove(r, c);
        c->uris = old;
        if (!torii_router_add(r, c, err, sizeof err))
            exit(1);
    }
    /* remove one (put back, untimed) */
    for (int t = 0; t < UPDATE_TRIES; t++) {
        torii_route_conf_t *c = &rs->routes[rndn((uint32_t)n)];
        double t0 = now_ns();
        torii_router_remove(r, c);
        tr[t] = (now_ns() - t0) / 1000;
        if (!torii_router_add(r, c, err, sizeof err))
            exit(1);
    }
    u.add_us = median(ta, UPDATE_TRIES);
    u.change_us = median(tc, UPDATE_TRIES);
    u.remove_us = median(tr, UPDATE_TRIES);
    free(fresh);
    free(text);
    free(ptrs);
    return u;
}

/* ---- the run ---- */

typedef struct {
    size_t n;
    double build_ms, bytes_per_route, path_ns, host_ns, linear_ns;
    size_t hits, as_intended, ref_checked, ref_diff;
    bool linear;
} result_t;

static const char *verdict(bool measured, bool met)
{
    return !measured ? "not measured" : met ? "met" : "NOT MET";
}

int main(void)
{
    static const size_t sizes[] = {1000, 10000, 100000, 1000000};
    size_t max = 1000000, nres = 0;
    const char *env = getenv("ROUTER_BENCH_MAX");
    result_t res[4];
    routeset_t rs;
    pool_t *paths = xcalloc(1, sizeof *paths), *hosts = xcalloc(1, sizeof *hosts);
    double norm_ns = 0;
    updates_t upd = {0, 0, 0};
    size_t upd_n = 0;

    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || v < 1000) {
            fprintf(stderr, "router_bench: ROUTER_BENCH_MAX must be a number >= 1000\n");
            return 2;
        }
        max = (size_t)v;
    }
    if (!torii_ip_parse("10.1.2.3", 8, client_addr))
        return 1;
    {
        size_t top = 0;
        for (size_t s = 0; s < 4; s++)
            if (sizes[s] <= max)
                top = sizes[s];
        double t0 = now_ns();
        routeset_init(&rs, top);
        printf("router_bench: %zu routes generated in %.0f ms (%zu path-only, %zu host-bound); each size uses the "
               "first N\n",
               top, (now_ns() - t0) / 1e6, rs.npath_only, rs.nhost_bound);
    }

    for (size_t s = 0; s < 4 && sizes[s] <= max; s++) {
        size_t n = sizes[s];
        result_t *R = &res[nres++];
        routeset_t view = rs; /* the first n routes */
        char err[256];
        torii_router_t *r = torii_router_new();
        double t0;
        memset(R, 0, sizeof *R);
        R->n = n;
        view.n = n;
        view.npath_only = view.nhost_bound = 0;
        for (size_t i = 0; i < rs.npath_only && rs.path_only[i] < n; i++)
            view.npath_only++;
        for (size_t i = 0; i < rs.nhost_bound && rs.host_bound[i] < n; i++)
            view.nhost_bound++;

        t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            if (!torii_router_add(r, &rs.routes[i], err, sizeof err)) {
                fprintf(stderr, "router_bench: add %s: %s\n", rs.routes[i].uris[0], err);
                return 1;
            }
        }
        R->build_ms = (now_ns() - t0) / 1e6;
        R->bytes_per_route = (double)torii_router_memory(r) / (double)n;

        pool_fill(paths, &view, false);
        pool_fill(hosts, &view, true);
        pool_normalise(paths);
        pool_normalise(hosts);
        if (s == 0)
            norm_ns = time_normalise(paths);

        R->path_ns = time_router(r, paths, BATCHES, PER_BATCH);
        R->host_ns = time_router(r, hosts, BATCHES, PER_BATCH);
        {
            size_t nref = n <= 10000 ? 1000 : 0, hits, intended, diff, hits2, intended2, diff2;
            check_answers(r, &rs, n, paths, nref, &intended, &hits, &diff);
            check_answers(r, &rs, n, hosts, nref, &intended2, &hits2, &diff2);
            R->hits = hits + hits2;
            R->as_intended = intended + intended2;
            R->ref_checked = 2 * nref;
            R->ref_diff = diff + diff2;
        }
        if (n <= 10000) {
            R->linear = true;
            R->linear_ns = n <= 1000 ? time_linear(&rs, n, paths, 21, 200) : time_linear(&rs, n, paths, 21, 20);
        }
        if (n == 100000 || (upd_n == 0 && (s + 1 == 4 || sizes[s + 1] > max))) {
            upd = time_updates(r, &rs, n);
            upd_n = n;
        }
        torii_router_free(r);
        fprintf(stderr, "router_bench: %zu routes done\n", n);
    }

    printf("\n| routes | build (ms) | bytes/route | path-only (ns/match) | host-bound (ns/match) | host/path | "
           "linear scan (ns/match) | speedup |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < nres; i++) {
        const result_t *R = &res[i];
        char lin[32] = "n/a (too slow)", sp[32] = "n/a";
        if (R->linear) {
            snprintf(lin, sizeof lin, "%.0f", R->linear_ns);
            snprintf(sp, sizeof sp, "%.0fx", R->linear_ns / R->path_ns);
        }
        printf("| %zu | %.1f | %.0f | %.0f | %.0f | %.2f | %s | %s |\n", R->n, R->build_ms, R->bytes_per_route,
               R->path_ns, R->host_ns, R->host_ns / R->path_ns, lin, sp);
    }
    printf("\nMatch times are medians of %d batches of %d matches over %d pre-normalised requests per kind "
           "(~90%% hits mixing exact, parameter and prefix routes, ~10%% misses).\n",
           BATCHES, PER_BATCH, POOL);
    printf("The linear scan (t/support/router_ref.c) is measured at 1k and 10k routes only (21 batches of 200 and "
           "20 matches): above that it takes milliseconds per match.\n");
    printf("Path normalisation (torii_path_normalise), not included above: %.0f ns per request path.\n", norm_ns);
    for (size_t i = 0; i < nres; i++) {
        const result_t *R = &res[i];
        printf("Sanity at %zu routes: %zu/%d answers were the intended route (or a miss), %zu hits", R->n,
               R->as_intended, 2 * POOL, R->hits);
        if (R->ref_checked)
            printf(", %zu/%zu differ from the reference", R->ref_diff, R->ref_checked);
        printf(".\n");
    }
    if (upd_n)
        printf("One-route updates in the %zu-route table (median of %d): add %.2f us, change (remove + add) %.2f us, "
               "remove %.2f us.\n",
               upd_n, UPDATE_TRIES, upd.add_us, upd.change_us, upd.remove_us);

    {
        const result_t *r10k = NULL, *r100k = NULL, *r1m = NULL;
        double worst_ratio = 0, worst_bytes = 0, worst_upd;
        for (size_t i = 0; i < nres; i++) {
            if (res[i].n == 10000)
                r10k = &res[i];
            if (res[i].n == 100000)
                r100k = &res[i];
            if (res[i].n == 1000000)
                r1m = &res[i];
            if (res[i].host_ns / res[i].path_ns > worst_ratio)
                worst_ratio = res[i].host_ns / res[i].path_ns;
            if (res[i].bytes_per_route > worst_bytes)
                worst_bytes = res[i].bytes_per_route;
        }
        worst_upd = upd.add_us > upd.change_us ? upd.add_us : upd.change_us;
        worst_upd = worst_upd > upd.remove_us ? worst_upd : upd.remove_us;
        printf("\nTargets:\n");
        printf("- <= 200 ns per match at 10k routes (path-only): %s", verdict(r10k, r10k && r10k->path_ns <= 200));
        if (r10k)
            printf(" (%.0f ns)", r10k->path_ns);
        printf("\n- <= 500 ns per match at 1M routes (path-only): %s", verdict(r1m, r1m && r1m->path_ns <= 500));
        if (r1m)
            printf(" (%.0f ns)", r1m->path_ns);
        printf("\n- host-bound <= 2x path-only (worst size): %s (%.2fx)\n", verdict(nres > 0, worst_ratio <= 2.0),
               worst_ratio);
        printf("- <= 300 bytes per route (worst size): %s (%.0f bytes)\n", verdict(nres > 0, worst_bytes <= 300),
               worst_bytes);
        printf("- 100k routes built in <= 200 ms: %s", verdict(r100k, r100k && r100k->build_ms <= 200));
        if (r100k)
            printf(" (%.1f ms)", r100k->build_ms);
        printf("\n- one-route change <= 1 ms (worst of add, change, remove at 100k): %s",
               verdict(upd_n == 100000, worst_upd <= 1000));
        if (upd_n)
            printf(" (%.1f us at %zu routes)", worst_upd, upd_n);
        printf("\n");
        for (size_t i = 0; i < nres; i++) {
            if (res[i].ref_diff) {
                printf("WARNING: the router and the reference disagree (see the sanity lines)\n");
                break;
            }
        }
    }
    routeset_free(&rs);
    free(paths);
    free(hosts);
    return 0;
}
