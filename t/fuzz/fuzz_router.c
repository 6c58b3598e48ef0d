/*
 * fuzz_router.c — libFuzzer target for the router: the radix router
 * (core/router) against the brute-force reference (t/support/router_ref.c).
 *
 * The input bytes are read as choices: a small route set drawn from a tiny
 * alphabet of segments ("a", "ab", ":p0", "*", ...) so that patterns
 * collide and overlap, with hosts (exact, "*.suffix" or none), method
 * masks, priorities in a small range and sometimes client address blocks;
 * the routes are added in a shuffled order, then some are removed, put
 * back or changed (remove, new uri, add). Then many requests, half of them
 * made from a route's own pattern so that they hit, are normalised as the
 * gateway does and given to both matchers, which must pick the same route
 * with the same captures. On a difference both answers are printed with the
 * route set and the request, and the target aborts.
 *
 * Inputs whose length is a multiple of 3 run with the router's hash keys
 * narrowed to 3 bits (torii_rnode_key_mask), so that nodes and exact
 * shapes collide all the time and the text checks behind every hash are
 * fuzzed too; the other inputs read the same way, with full keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cidr.h"
#include "router/path.h"
#include "router/rnode.h"
#include "router/router.h"
#include "support/router_ref.h"

#define MAX_ROUTES 48
#define MAX_URIS   3
#define MAX_HOSTS  2
#define MAX_ADDRS  2
#define PAT_LEN    64
#define PATH_LEN   96

typedef struct {
    const uint8_t *p;
    size_t n, i;
} src_t;

/* The next choice; an exhausted input keeps answering 0. */
static unsigned take(src_t *s)
{
    return s->i < s->n ? s->p[s->i++] : 0;
}

static unsigned pick(src_t *s, unsigned n)
{
    return take(s) % n;
}

typedef struct {
    torii_route_conf_t conf;
    char id[8];
    char *uri_ptrs[MAX_URIS];
    char uri_text[MAX_URIS][PAT_LEN];
    char *host_ptrs[MAX_HOSTS];
    char host_text[MAX_HOSTS][24];
    torii_cidr_t addrs[MAX_ADDRS];
    const char *addr_text[MAX_ADDRS];
    bool active; /* in the router (and so in the reference set) */
} froute_t;

static const char *const literal_segs[] = {"a", "b", "ab", "a:b", "c", "", "%61", "%2f"};
static const char *const route_hosts[] = {"example.com",     "a.example.com", "*.example.com",
                                          "*.a.example.com", "x.org",         "*.org"};
static const char *const cidrs[] = {"10.0.0.0/8", "10.1.0.0/16", "127.0.0.1", "::1", "2001:db8::/32", "0.0.0.0/0"};
static const torii_method_t methods[] = {TORII_M_GET,  TORII_M_POST,  TORII_M_PUT,  TORII_M_DELETE,
                                         TORII_M_HEAD, TORII_M_OTHER, TORII_M_PATCH};
static const char *const method_names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "FOO", "PATCH"};

static const char *const path_segs[] = {"a",   "b",   "ab", "a:b", "c",   "",  "x", "%61",   "%2f",
                                        "%2F", "abc", ".",  "..",  "%2e", "A", "1", "a%2fb", "%25"};
static const char *const param_values[] = {"a", "b", "x", "ab", "1", "%2F", "a:b"};
static const char *const rest_values[] = {"", "a", "/", "/a", "b/c", "a/b", "/x/", "b"};
/* The first stands for a made-up "hN.org" or "z.hN.org". */
static const char *const req_hosts[] = {NULL,    "example.com", "a.example.com", "b.a.example.com", "c.b.a.example.com",
                                        "x.org", "y.x.org",     "org",           "other.net",       "b.example.com",
                                        ""};
static const char *const clients[] = {"10.1.2.3", "10.2.0.1", "127.0.0.1", "::1", "2001:db8::5", "192.168.0.1"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void append(char *buf, size_t *n, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (*n + l >= cap)
        l = cap - 1 - *n;
    memcpy(buf + *n, s, l);
    *n += l;
    buf[*n] = '\0';
}

/* A valid pattern: up to four segments, rarely eight (literals or parameters), then
 * nothing, or a '*' (after a slash or not; a named one after a slash). */
static void gen_pattern(src_t *s, char *buf)
{
    unsigned nseg = pick(s, 5), np = 0, tail;
    if (nseg == 4 && pick(s, 4) == 0) /* now and then a deeper one */
        nseg += pick(s, 5);
    size_t n = 0;
    bool last_param = false;
    buf[0] = '\0';
    for (unsigned k = 0; k < nseg; k++) {
        unsigned v = pick(s, 3 + COUNT(literal_segs));
        append(buf, &n, PAT_LEN, "/");
        if (v < 3) {
            char name[8];
            snprintf(name, sizeof name, v == 0 ? ":id" : ":p%u", np);
            append(buf, &n, PAT_LEN, name);
            np++;
            last_param = true;
        } else {
            append(buf, &n, PAT_LEN, literal_segs[v - 3]);
            last_param = false;
        }
    }
    tail = pick(s, 6);
    if (tail >= 3 && (nseg == 0 || last_param || tail != 4 || pick(s, 2)))
        append(buf, &n, PAT_LEN, "/"); /* the star after a slash */
    if (tail >= 3)
        append(buf, &n, PAT_LEN, tail == 5 ? "*rest" : "*");
    if (n == 0)
        append(buf, &n, PAT_LEN, "/");
}

static void gen_route(src_t *s, froute_t *fr, uint32_t order)
{
    torii_route_conf_t *c = &fr->conf;
    unsigned v;
    memset(fr, 0, sizeof *fr);
    snprintf(fr->id, sizeof fr->id, "r%u", (unsigned)order);
    c->id = fr->id;
    c->order = order;
    c->nuris = 1 + (pick(s, 4) == 0) + (pick(s, 8) == 0);
    for (uint32_t u = 0; u < c->nuris; u++) {
        gen_pattern(s, fr->uri_text[u]);
        fr->uri_ptrs[u] = fr->uri_text[u];
    }
    c->uris = fr->uri_ptrs;
    v = pick(s, 4);
    c->nhosts = v < 2 ? 0 : v - 1;
    for (uint32_t h = 0; h < c->nhosts; h++) {
        unsigned k = pick(s, 2 * COUNT(route_hosts));
        if (k < COUNT(route_hosts)) /* a few names, overlapping */
            snprintf(fr->host_text[h], sizeof fr->host_text[h], "%s", route_hosts[k]);
        else /* many names, to fill and empty the host tables */
            snprintf(fr->host_text[h], sizeof fr->host_text[h], "%sh%u.org", k & 1 ? "*." : "", pick(s, 32));
        fr->host_ptrs[h] = fr->host_text[h];
    }
    c->hosts = c->nhosts ? fr->host_ptrs : NULL;
    if (pick(s, 2)) {
        unsigned bits = take(s);
        for (unsigned b = 0; b < COUNT(methods); b++) {
            if (bits & (1u << b))
                c->methods |= 1u << methods[b];
        }
    }
    {
        static const int32_t prios[] = {0, 0, 1, -1, 2};
        c->priority = prios[pick(s, COUNT(prios))];
    }
    if (pick(s, 6) == 0) {
        c->nremote_addrs = 1 + pick(s, MAX_ADDRS);
        for (uint32_t a = 0; a < c->nremote_addrs; a++) {
            const char *t = cidrs[pick(s, COUNT(cidrs))];
            fr->addr_text[a] = t;
            if (!torii_cidr_parse(t, strlen(t), &fr->addrs[a]))
                abort();
        }
        c->remote_addrs = fr->addrs;
    }
}

/* A request path: random segments, or one of a route's patterns filled in. */
static void gen_path(src_t *s, const froute_t *routes, size_t nroutes, char *buf)
{
    size_t n = 0;
    buf[0] = '\0';
    if (pick(s, 2)) {
        const froute_t *fr = &routes[pick(s, (unsigned)nroutes)];
        const char *p = fr->conf.uris[pick(s, fr->conf.nuris)];
        for (size_t i = 0; p[i];) {
            if (p[i] == '*') {
                append(buf, &n, PATH_LEN, rest_values[pick(s, COUNT(rest_values))]);
                break;
            }
            if (p[i] == ':' && i > 0 && p[i - 1] == '/') {
                append(buf, &n, PATH_LEN, param_values[pick(s, COUNT(param_values))]);
                while (p[i] && p[i] != '/')
                    i++;
                continue;
            }
            {
                char one[2] = {p[i], '\0'};
                append(buf, &n, PATH_LEN, one);
                i++;
            }
        }
        if (pick(s, 8) == 0)
            append(buf, &n, PATH_LEN, "/");
    } else {
        unsigned nseg = pick(s, 5);
        if (nseg == 4 && pick(s, 4) == 0)
            nseg += pick(s, 5);
        for (unsigned k = 0; k < nseg; k++) {
            append(buf, &n, PATH_LEN, "/");
            append(buf, &n, PATH_LEN, path_segs[pick(s, COUNT(path_segs))]);
        }
        if (nseg == 0 || pick(s, 6) == 0)
            append(buf, &n, PATH_LEN, "/");
    }
}

static void print_str(const char *label, torii_str_t v)
{
    fprintf(stderr, "%s\"%.*s\"", label, (int)v.n, v.p ? v.p : "");
}

static void print_match(const char *who, const torii_route_match_t *m)
{
    fprintf(stderr, "  %s: %s", who, m->route ? m->route->id : "(none)");
    for (uint32_t i = 0; i < m->nparams && i <= TORII_PAT_MAX_PARAMS; i++) {
        print_str(i ? ", " : " {", m->params[i].name);
        print_str("=", m->params[i].value);
    }
    fprintf(stderr, "%s\n", m->nparams ? "}" : "");
}

static void print_routes(const froute_t *routes, size_t nroutes)
{
    fprintf(stderr, "routes in the router:\n");
    for (size_t i = 0; i < nroutes; i++) {
        const froute_t *fr = &routes[i];
        const torii_route_conf_t *c = &fr->conf;
        if (!fr->active)
            continue;
        fprintf(stderr, "  %s order=%u priority=%d uris=[", c->id, (unsigned)c->order, (int)c->priority);
        for (uint32_t u = 0; u < c->nuris; u++)
            fprintf(stderr, "%s\"%s\"", u ? ", " : "", c->uris[u]);
        fprintf(stderr, "]");
        if (c->nhosts) {
            fprintf(stderr, " hosts=[");
            for (uint32_t h = 0; h < c->nhosts; h++)
                fprintf(stderr, "%s\"%s\"", h ? ", " : "", c->hosts[h]);
            fprintf(stderr, "]");
        }
        if (c->methods) {
            fprintf(stderr, " methods=[");
            for (unsigned m = 0, first = 1; m < COUNT(methods); m++) {
                if (c->methods & (1u << methods[m])) {
                    fprintf(stderr, "%s%s", first ? "" : ",", method_names[m]);
                    first = 0;
                }
            }
            fprintf(stderr, "]");
        }
        if (c->nremote_addrs) {
            fprintf(stderr, " remote_addrs=[");
            for (uint32_t a = 0; a < c->nremote_addrs; a++)
                fprintf(stderr, "%s%s", a ? ", " : "", fr->addr_text[a]);
            fprintf(stderr, "]");
        }
        fprintf(stderr, "\n");
    }
}

static void mismatch(const char *why, const froute_t *routes, size_t nroutes, const char *raw,
                     const torii_route_req_t *req, const char *client, const torii_route_match_t *got,
                     const torii_route_match_t *want)
{
    fprintf(stderr, "\nROUTER MISMATCH: %s\n", why);
    print_routes(routes, nroutes);
    fprintf(stderr, "request: %.*s path \"%s\"", (int)req->x.method.n, req->x.method.p, raw);
    print_str(" (normalised ", req->x.uri);
    print_str(") host ", req->x.host);
    fprintf(stderr, " client %s\n", client);
    print_match("router   ", got);
    print_match("reference", want);
    abort();
}

static void add_route(torii_router_t *r, froute_t *fr)
{
    char err[256] = "";
    if (!torii_router_add(r, &fr->conf, err, sizeof err)) {
        fprintf(stderr, "torii_router_add rejected a valid route %s (\"%s\"...): %s\n", fr->conf.id, fr->conf.uris[0],
                err);
        abort();
    }
    fr->active = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    src_t s = {data, size, 0};
    size_t nroutes = 1 + pick(&s, MAX_ROUTES), nops, nreq;
    froute_t *routes = calloc(nroutes, sizeof *routes);
    const torii_route_conf_t **active = calloc(nroutes, sizeof *active);
    size_t perm[MAX_ROUTES];
    uint8_t client_addrs[COUNT(clients)][16];
    torii_router_t *r;

    if (!routes || !active)
        abort();
    torii_rnode_key_mask = size % 3 == 0 ? 0x7 : UINT64_MAX;
    for (size_t i = 0; i < COUNT(clients); i++) {
        if (!torii_ip_parse(clients[i], strlen(clients[i]), client_addrs[i]))
            abort();
    }
    for (size_t i = 0; i < nroutes; i++) {
        gen_route(&s, &routes[i], (uint32_t)i);
        perm[i] = i;
    }
    /* Insertion order must not matter: `order` ranks, not the add calls. */
    for (size_t i = nroutes; i > 1; i--) {
        size_t j = pick(&s, (unsigned)i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    r = torii_router_new();
    if (!r)
        abort();
    for (size_t i = 0; i < nroutes; i++)
        add_route(r, &routes[perm[i]]);

    /* Remove, put back, change. */
    nops = pick(&s, 6);
    for (size_t k = 0; k < nops; k++) {
        froute_t *fr = &routes[pick(&s, (unsigned)nroutes)];
        switch (pick(&s, 3)) {
        case 0: /* remove (a no-op if it is out already) */
            torii_router_remove(r, &fr->conf);
            fr->active = false;
            break;
        case 1: /* put back */
            if (!fr->active)
                add_route(r, fr);
            break;
        default: { /* change one uri */
            uint32_t u = pick(&s, fr->conf.nuris);
            if (fr->active)
                torii_router_remove(r, &fr->conf);
            gen_pattern(&s, fr->uri_text[u]);
            add_route(r, fr);
            break;
        }
        }
    }
    (void)torii_router_memory(r);

    size_t nactive = 0;
    for (size_t i = 0; i < nroutes; i++) {
        if (routes[i].active)
            active[nactive++] = &routes[i].conf;
    }

    nreq = 8 + pick(&s, 57);
    for (size_t q = 0; q < nreq; q++) {
        char raw[PATH_LEN], norm[PATH_LEN], host[24];
        const char *why = NULL;
        unsigned m = pick(&s, COUNT(methods)), h = pick(&s, COUNT(req_hosts)), a = pick(&s, COUNT(clients));
        torii_route_req_t req;
        torii_route_match_t got, want, alts[MAX_URIS];
        const torii_route_conf_t *got_route;
        int len;
        bool ok = false;
        size_t nalts;

        if (h == 0)
            snprintf(host, sizeof host, "%sh%u.org", pick(&s, 2) ? "z." : "", pick(&s, 32));
        else
            snprintf(host, sizeof host, "%s", req_hosts[h]);
        gen_path(&s, routes, nroutes, raw);
        len = torii_path_normalise(torii_str(raw, strlen(raw)), norm, &why);
        if (len < 0)
            continue;
        memset(&req, 0, sizeof req);
        req.method = methods[m];
        req.x.method = torii_str(method_names[m], strlen(method_names[m]));
        req.x.uri = torii_str(norm, (size_t)len);
        req.x.request_uri = torii_str(raw, strlen(raw));
        req.x.host = torii_str(host, strlen(host));
        req.x.client = client_addrs[a];
        req.x.client_text = torii_str(clients[a], strlen(clients[a]));

        memset(&got, 0, sizeof got);
        ok = torii_router_match(r, &req, &got);
        if (!ok)
            got.route = NULL, got.nparams = 0;
        got_route = got.route;
        router_ref_match_list(active, nactive, &req, &want);
        if (got_route != want.route)
            mismatch("different routes", routes, nroutes, raw, &req, clients[a], &got, &want);
        if (!got_route)
            continue;
        if (got.nparams > TORII_PAT_MAX_PARAMS + 1)
            mismatch("nparams out of range", routes, nroutes, raw, &req, clients[a], &got, &want);
        for (uint32_t i = 0; i < got.nparams; i++) {
            torii_str_t v = got.params[i].value;
            if (v.n > 0 && (v.p < norm || v.p + v.n > norm + len))
                mismatch("a captured value is not a slice of the normalised path", routes, nroutes, raw, &req,
                         clients[a], &got, &want);
        }
        /* Equal uris of one route may tie: any of their captures is right. */
        nalts = router_ref_route_matches(got_route, &req, alts, MAX_URIS);
        bool same = false;
        for (size_t i = 0; i < nalts && i < MAX_URIS; i++)
            same = same || router_ref_same_params(&got, &alts[i]);
        if (!same)
            mismatch("different captures", routes, nroutes, raw, &req, clients[a], &got, &want);
    }

    torii_router_free(r);
    free(active);
    free(routes);
    return 0;
}
