/*
 * router_ref.c — the brute-force reference matcher (see router_ref.h).
 * Deliberately simple: no index, no precomputation, each pattern is read
 * character by character against the path on every request.
 */
#include <string.h>

#include "base/cidr.h"
#include "router_ref.h"

enum { REF_EXACT, REF_PARAM, REF_PREFIX };

typedef struct {
    int kind;
    size_t consumed;     /* prefixes: path bytes before the '*' */
    const char *pattern; /* parameter patterns: their segment kinds decide */
} ref_rank_t;

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The bytes one literal unit of the pattern (a character or a %XX escape)
 * stands for in a normalised path; advances *i past it. */
static size_t literal_unit(const char *pat, size_t *i, char out[3])
{
    int hi, lo;
    if (pat[*i] == '%' && (hi = hex(pat[*i + 1])) >= 0 && (lo = hex(pat[*i + 2])) >= 0) {
        char d = (char)(hi * 16 + lo);
        *i += 3;
        if (d == '/' || d == '%') { /* an escaped '/' or '%' stays escaped */
            out[0] = '%';
            out[1] = '2';
            out[2] = d == '/' ? 'F' : '5';
            return 3;
        }
        out[0] = d;
        return 1;
    }
    out[0] = pat[*i];
    (*i)++;
    return 1;
}

static bool pattern_match(const char *pat, torii_str_t path, ref_rank_t *rank, torii_route_match_t *m)
{
    torii_route_param_t caps[TORII_PAT_MAX_PARAMS + 1];
    uint32_t np = 0;
    size_t i = 0, s = 0;
    int kind = REF_EXACT;
    size_t consumed = 0;
    for (;;) {
        char c = pat[i];
        if (c == '\0') {
            if (s != path.n)
                return false;
            break;
        }
        if (c == '*') {
            size_t namelen = strlen(pat + i + 1);
            kind = REF_PREFIX;
            consumed = s;
            if (namelen > 0 && np <= TORII_PAT_MAX_PARAMS)
                caps[np++] = (torii_route_param_t){torii_str(pat + i + 1, namelen), torii_str(path.p + s, path.n - s)};
            break;
        }
        if (c == ':' && i > 0 && pat[i - 1] == '/') {
            size_t j = i + 1, e = s;
            while (name_char(pat[j]))
                j++;
            while (e < path.n && path.p[e] != '/')
                e++;
            if (e == s)
                return false; /* a parameter needs a non-empty segment */
            if (np < TORII_PAT_MAX_PARAMS)
                caps[np++] = (torii_route_param_t){torii_str(pat + i + 1, j - i - 1), torii_str(path.p + s, e - s)};
            if (kind == REF_EXACT)
                kind = REF_PARAM;
            i = j;
            s = e;
            continue;
        }
        {
            char lit[3];
            size_t k = literal_unit(pat, &i, lit);
            if (path.n - s < k || path.p[s] != lit[0] || (k > 1 && memcmp(path.p + s, lit, k) != 0))
                return false;
            s += k;
        }
    }
    rank->kind = kind;
    rank->consumed = consumed;
    rank->pattern = pat;
    if (m) {
        m->nparams = np;
        memcpy(m->params, caps, np * sizeof caps[0]);
    }
    return true;
}

/* Two parameter patterns matching the same path have as many segments;
 * at the first segment whose kinds differ, the literal one is better. */
static int segment_kinds_cmp(const char *a, const char *b)
{
    while (*a == '/' && *b == '/') {
        bool pa = a[1] == ':', pb = b[1] == ':';
        if (pa != pb)
            return pa ? 1 : -1;
        a++;
        b++;
        while (*a && *a != '/')
            a++;
        while (*b && *b != '/')
            b++;
    }
    return 0;
}

/* <0: a ranks first */
static int rank_cmp(const ref_rank_t *a, const ref_rank_t *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->kind == REF_PARAM)
        return segment_kinds_cmp(a->pattern, b->pattern);
    if (a->kind == REF_PREFIX && a->consumed != b->consumed)
        return a->consumed > b->consumed ? -1 : 1;
    return 0;
}

static bool ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (torii_lower(a[i]) != torii_lower(b[i]))
            return false;
    }
    return true;
}

static bool host_ok(const torii_route_conf_t *r, torii_str_t host)
{
    if (r->nhosts == 0)
        return true;
    for (uint32_t k = 0; k < r->nhosts; k++) {
        const char *h = r->hosts[k];
        size_t hl = strlen(h);
        if (hl >= 2 && h[0] == '*' && h[1] == '.') {
            const char *suffix = h + 1; /* ".example.com" */
            size_t sl = hl - 1;
            if (host.n > sl && ieq(host.p + host.n - sl, suffix, sl))
                return true;
        } else if (host.n == hl && ieq(host.p, h, hl)) {
            return true;
        }
    }
    return false;
}

static bool filters_ok(const torii_route_conf_t *r, const torii_route_req_t *req)
{
    if (r->methods != 0 && ((unsigned)req->method >= 32 || !(r->methods & (1u << req->method))))
        return false;
    if (r->nremote_addrs > 0 &&
        (req->x.client == NULL || !torii_cidr_list_match(r->remote_addrs, r->nremote_addrs, req->x.client)))
        return false;
    return host_ok(r, req->x.host);
}

/* The route's best uri for the request (the first of equals). */
static bool route_best(const torii_route_conf_t *r, const torii_route_req_t *req, ref_rank_t *best,
                       torii_route_match_t *m)
{
    bool found = false;
    if (!filters_ok(r, req))
        return false;
    for (uint32_t u = 0; u < r->nuris; u++) {
        ref_rank_t rank;
        torii_route_match_t tmp;
        if (!pattern_match(r->uris[u], req->x.uri, &rank, &tmp))
            continue;
        if (!found || rank_cmp(&rank, best) < 0) {
            *best = rank;
            *m = tmp;
            found = true;
        }
    }
    return found;
}

/* <0: route a (with rank ra) comes first */
static int route_cmp(const torii_route_conf_t *a, const ref_rank_t *ra, const torii_route_conf_t *b,
                     const ref_rank_t *rb)
{
    int c = rank_cmp(ra, rb);
    if (c != 0)
        return c;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    return 0;
}

static const torii_route_conf_t *match_any(const torii_route_conf_t *array, const torii_route_conf_t *const *list,
                                           size_t n, const torii_route_req_t *req, torii_route_match_t *m)
{
    const torii_route_conf_t *best = NULL;
    ref_rank_t best_rank = {0};
    m->route = NULL;
    m->nparams = 0;
    for (size_t i = 0; i < n; i++) {
        const torii_route_conf_t *r = array ? &array[i] : list[i];
        ref_rank_t rank;
        torii_route_match_t tmp;
        if (!route_best(r, req, &rank, &tmp))
            continue;
        if (best == NULL || route_cmp(r, &rank, best, &best_rank) < 0) {
            best = r;
            best_rank = rank;
            *m = tmp;
            m->route = r;
        }
    }
    return best;
}

const torii_route_conf_t *router_ref_match(const torii_route_conf_t *routes, size_t n, const torii_route_req_t *req,
                                           torii_route_match_t *m)
{
    return match_any(routes, NULL, n, req, m);
}

const torii_route_conf_t *router_ref_match_list(const torii_route_conf_t *const *routes, size_t n,
                                                const torii_route_req_t *req, torii_route_match_t *m)
{
    return match_any(NULL, routes, n, req, m);
}

size_t router_ref_route_matches(const torii_route_conf_t *route, const torii_route_req_t *req, torii_route_match_t *out,
                                size_t max)
{
    ref_rank_t best;
    torii_route_match_t first;
    size_t count = 0;
    if (!route_best(route, req, &best, &first))
        return 0;
    for (uint32_t u = 0; u < route->nuris; u++) {
        ref_rank_t rank;
        torii_route_match_t tmp;
        if (!pattern_match(route->uris[u], req->x.uri, &rank, &tmp) || rank_cmp(&rank, &best) != 0)
            continue;
        if (count < max) {
            out[count] = tmp;
            out[count].route = route;
        }
        count++;
    }
    return count;
}

bool router_ref_pattern_match(const char *pattern, torii_str_t path, torii_route_match_t *m)
{
    ref_rank_t rank;
    return pattern_match(pattern, path, &rank, m);
}

static bool str_eq(torii_str_t a, torii_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool router_ref_same_params(const torii_route_match_t *a, const torii_route_match_t *b)
{
    if (a->nparams != b->nparams)
        return false;
    for (uint32_t i = 0; i < a->nparams; i++) {
        if (!str_eq(a->params[i].name, b->params[i].name) || !str_eq(a->params[i].value, b->params[i].value))
            return false;
    }
    return true;
}
