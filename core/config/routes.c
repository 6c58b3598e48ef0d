/*
 * routes.c — the `routes:` schema: id, uri or uris, upstream nodes,
 * timeouts and body limit, checked and with defaults filled in.
 */
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "config/loader.h"
#include "http/head.h"
#include "router/expr.h"
#include "router/path.h"

/* Unset markers, replaced by the process defaults in torii_routes_finish. */
#define UNSET32 UINT32_MAX
#define UNSET64 UINT64_MAX

static bool check_uri(torii_dctx_t *c, const torii_cnode_t *n)
{
    char buf[1024];
    torii_pattern_t p;
    const char *why;
    if (n->len == 0 || n->text[0] != '/')
        return torii_dctx_fail(c, n, "must start with \"/\", got \"%s\"", n->text);
    if (n->len >= sizeof buf)
        return torii_dctx_fail(c, n, "longer than %zu bytes", sizeof buf - 1);
    for (size_t i = 0; i < n->len; i++) {
        unsigned char ch = (unsigned char)n->text[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#')
            return torii_dctx_fail(c, n, "invalid character in path \"%s\"", n->text);
    }
    if (torii_pattern_parse(n->text, buf, &p, &why) != 0)
        return torii_dctx_fail(c, n, "invalid path pattern \"%s\": %s", n->text, why);
    return true;
}

static bool dec_uri(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_route_conf_t *r = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR) || !check_uri(c, n))
        return false;
    r->uris = torii_palloc(c->pool, sizeof(char *));
    r->uris[0] = torii_pstrndup(c->pool, n->text, n->len);
    r->nuris = 1;
    return true;
}

static bool dec_uris(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_route_conf_t *r = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    if (n->n == 0)
        return torii_dctx_fail(c, n, "must list at least one path");
    r->uris = torii_palloc(c->pool, sizeof(char *) * n->n);
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        if (!torii_dec_expect(c, n->items[i], TORII_CN_STR) || !check_uri(c, n->items[i]))
            return false;
        r->uris[i] = torii_pstrndup(c->pool, n->items[i]->text, n->items[i]->len);
        torii_dctx_pop(c, mark);
    }
    r->nuris = (uint32_t)n->n;
    return true;
}

/* Exact "api.example.com" or leading wildcard "*.example.com"; stored
 * lowercased; no port (the request's port is ignored when matching). */
static bool check_host(torii_dctx_t *c, const torii_cnode_t *n, char **out)
{
    const char *h = n->text;
    size_t len = n->len, i = 0;
    char *copy;
    if (len == 0 || len > 253)
        return torii_dctx_fail(c, n, "invalid host \"%s\": must be 1 to 253 characters", h);
    if (len > 2 && h[0] == '*' && h[1] == '.')
        i = 2;
    if (h[i] == '[') { /* IPv6 literal */
        uint8_t ip[16];
        if (i != 0 || h[len - 1] != ']' || !torii_ip_parse(h + 1, len - 2, ip))
            return torii_dctx_fail(c, n, "invalid host \"%s\": bad IPv6 literal", h);
    } else {
        for (; i < len; i++) {
            char ch = h[i];
            if (ch == ':')
                return torii_dctx_fail(c, n, "invalid host \"%s\": no port here (hosts match whatever the port)", h);
            if (ch == '*')
                return torii_dctx_fail(c, n, "invalid host \"%s\": '*' only as a leading \"*.\"", h);
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                  ch == '.' || ch == '_'))
                return torii_dctx_fail(c, n, "invalid host \"%s\": unexpected character '%c'", h, ch);
        }
        if (h[len - 1] == '.' || strstr(h, ".."))
            return torii_dctx_fail(c, n, "invalid host \"%s\": empty label", h);
    }
    copy = torii_pstrndup(c->pool, h, len);
    for (i = 0; i < len; i++)
        copy[i] = torii_lower(copy[i]);
    *out = copy;
    return true;
}

/* One string or a list of them, each checked by fn into out[]. */
static bool dec_string_list(torii_dctx_t *c, const torii_cnode_t *n, bool single, const char *what,
                            bool (*fn)(torii_dctx_t *, const torii_cnode_t *, void *, size_t), void *out,
                            uint32_t *count)
{
    if (single) {
        if (!torii_dec_expect(c, n, TORII_CN_STR) || !fn(c, n, out, 0))
            return false;
        *count = 1;
        return true;
    }
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    if (n->n == 0)
        return torii_dctx_fail(c, n, "must list at least one %s", what);
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        if (!torii_dec_expect(c, n->items[i], TORII_CN_STR) || !fn(c, n->items[i], out, i))
            return false;
        torii_dctx_pop(c, mark);
    }
    *count = (uint32_t)n->n;
    return true;
}

static bool one_host(torii_dctx_t *c, const torii_cnode_t *n, void *out, size_t i)
{
    return check_host(c, n, &((char **)out)[i]);
}

static bool dec_hosts_any(torii_dctx_t *c, const torii_cnode_t *n, void *dst, bool single)
{
    torii_route_conf_t *r = dst;
    size_t cap = single ? 1 : (n->type == TORII_CN_SEQ ? n->n : 1);
    r->hosts = torii_palloc(c->pool, sizeof(char *) * (cap ? cap : 1));
    return dec_string_list(c, n, single, "host", one_host, r->hosts, &r->nhosts);
}

static bool dec_host(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    return dec_hosts_any(c, n, dst, true);
}

static bool dec_hosts(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    return dec_hosts_any(c, n, dst, false);
}

static bool one_addr(torii_dctx_t *c, const torii_cnode_t *n, void *out, size_t i)
{
    if (!torii_cidr_parse(n->text, n->len, &((torii_cidr_t *)out)[i]))
        return torii_dctx_fail(c, n, "invalid address or CIDR block \"%s\"", n->text);
    return true;
}

static bool dec_addrs_any(torii_dctx_t *c, const torii_cnode_t *n, void *dst, bool single)
{
    torii_route_conf_t *r = dst;
    size_t cap = single ? 1 : (n->type == TORII_CN_SEQ ? n->n : 1);
    r->remote_addrs = torii_palloc(c->pool, sizeof(torii_cidr_t) * (cap ? cap : 1));
    return dec_string_list(c, n, single, "address", one_addr, r->remote_addrs, &r->nremote_addrs);
}

static bool dec_remote_addr(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    return dec_addrs_any(c, n, dst, true);
}

static bool dec_remote_addrs(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    return dec_addrs_any(c, n, dst, false);
}

static const struct {
    const char *name;
    torii_method_t m;
} method_names[] = {
    {"GET", TORII_M_GET},       {"HEAD", TORII_M_HEAD},       {"POST", TORII_M_POST},   {"PUT", TORII_M_PUT},
    {"DELETE", TORII_M_DELETE}, {"OPTIONS", TORII_M_OPTIONS}, {"TRACE", TORII_M_TRACE}, {"PATCH", TORII_M_PATCH},
};

static bool one_method(torii_dctx_t *c, const torii_cnode_t *n, void *out, size_t i)
{
    (void)i;
    for (size_t k = 0; k < TORII_ARRAY_LEN(method_names); k++) {
        if (strcmp(n->text, method_names[k].name) == 0) {
            *(uint32_t *)out |= 1u << method_names[k].m;
            return true;
        }
    }
    return torii_dctx_fail(c, n, "unknown method \"%s\" (one of GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH)",
                           n->text);
}

static bool dec_methods(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_route_conf_t *r = dst;
    uint32_t count;
    (void)f;
    return dec_string_list(c, n, false, "method", one_method, &r->methods, &count);
}

static bool dec_priority(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_INT))
        return false;
    if (n->v.i < INT32_MIN || n->v.i > INT32_MAX)
        return torii_dctx_fail(c, n, "must be a 32-bit integer, got %lld", (long long)n->v.i);
    ((torii_route_conf_t *)dst)->priority = (int32_t)n->v.i;
    return true;
}

/* traffic-split's `rules[].weighted_upstreams[].upstream`: an upstream
 * written inline, decoded here like a route's (same checks, same
 * balancer and health state) and handed to the plugin as its compiled
 * node. Shapes other than these are left to the plugin's schema. */
static bool compile_split_upstreams(torii_dctx_t *c, const torii_cnode_t *conf)
{
    const torii_cnode_t *rules = conf->type == TORII_CN_MAP ? torii_cnode_get(conf, "rules") : NULL;
    if (!rules || rules->type != TORII_CN_SEQ)
        return true;
    for (size_t i = 0; i < rules->n; i++) {
        const torii_cnode_t *wus =
            rules->items[i]->type == TORII_CN_MAP ? torii_cnode_get(rules->items[i], "weighted_upstreams") : NULL;
        size_t mark;
        if (!wus || wus->type != TORII_CN_SEQ)
            continue;
        mark = torii_dctx_push_key(c, "rules");
        torii_dctx_push_index(c, i);
        torii_dctx_push_key(c, "weighted_upstreams");
        for (size_t k = 0; k < wus->n; k++) {
            const torii_cnode_t *wu = wus->items[k], *up;
            size_t wm;
            /* An upstream met again through a YAML alias is compiled once. */
            if (wu->type != TORII_CN_MAP || !(up = torii_cnode_get(wu, "upstream")) || up->compiled)
                continue;
            wm = torii_dctx_push_index(c, k);
            if (torii_cnode_get(wu, "upstream_id"))
                return torii_dctx_fail(c, wu, "give upstream_id or upstream, not both");
            torii_dctx_push_key(c, "upstream");
            if (!(((torii_cnode_t *)up)->compiled = torii_upstream_inline(c, up)))
                return false;
            torii_dctx_pop(c, wm);
        }
        torii_dctx_pop(c, mark);
    }
    return true;
}

/* Each plugin's configuration is checked by the Lua runtime against the
 * plugin's own schema; here only the parts C compiles. */
bool torii_compile_plugin_confs(torii_dctx_t *c, const torii_cnode_t *plugins)
{
    for (size_t i = 0; i < plugins->n; i++) {
        const torii_cnode_t *conf = plugins->items[i];
        const torii_cnode_t *meta = conf->type == TORII_CN_MAP ? torii_cnode_get(conf, "_meta") : NULL;
        const torii_cnode_t *off = NULL, *filter = NULL;
        size_t mark = torii_dctx_push_key(c, plugins->keys[i]->text);
        if (meta && meta->type == TORII_CN_MAP) {
            off = torii_cnode_get(meta, "disable");
            filter = torii_cnode_get(meta, "filter");
        }
        /* A disabled instance never runs: its upstreams are not built (nor probed). */
        if (strcmp(plugins->keys[i]->text, "traffic-split") == 0 && !(off && off->type == TORII_CN_BOOL && off->v.b) &&
            !compile_split_upstreams(c, conf))
            return false;
        if (filter && !filter->compiled) { /* compiled once when YAML aliases share it */
            torii_dctx_push_key(c, "_meta");
            torii_dctx_push_key(c, "filter");
            if (!torii_dec_expect(c, filter, TORII_CN_SEQ))
                return false;
            ((torii_cnode_t *)filter)->compiled = torii_expr_compile(c, filter);
            if (!filter->compiled)
                return false;
        }
        torii_dctx_pop(c, mark);
    }
    return true;
}

static bool dec_plugins(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_MAP) || !torii_compile_plugin_confs(c, n))
        return false;
    ((torii_route_conf_t *)dst)->plugins = n;
    return true;
}

static bool dec_vars(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    return (((torii_route_conf_t *)dst)->vars = torii_expr_compile(c, n)) != NULL;
}

/* A string kept for people, not for torii (desc). */
static bool dec_note(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)dst, (void)f;
    return torii_dec_expect(c, n, TORII_CN_STR);
}

static const torii_field_t route_fields[] = {
    {"id", torii_dec_string, offsetof(torii_route_conf_t, id), 1, 0, NULL, true},
    {"name", torii_dec_string, offsetof(torii_route_conf_t, name), 0, 0, NULL, false},
    {"desc", dec_note, 0, 0, 0, NULL, false},
    {"uri", dec_uri, 0, 0, 0, NULL, false},
    {"uris", dec_uris, 0, 0, 0, NULL, false},
    {"host", dec_host, 0, 0, 0, NULL, false},
    {"hosts", dec_hosts, 0, 0, 0, NULL, false},
    {"methods", dec_methods, 0, 0, 0, NULL, false},
    {"remote_addr", dec_remote_addr, 0, 0, 0, NULL, false},
    {"remote_addrs", dec_remote_addrs, 0, 0, 0, NULL, false},
    {"vars", dec_vars, 0, 0, 0, NULL, false},
    {"priority", dec_priority, 0, 0, 0, NULL, false},
    {"plugins", dec_plugins, 0, 0, 0, NULL, false},
    {"upstream", torii_dec_upstream_inline, 0, 0, 0, NULL, false},
    {"upstream_id", torii_dec_string, offsetof(torii_route_conf_t, upstream_id), 1, 0, NULL, false},
    {"service_id", torii_dec_string, offsetof(torii_route_conf_t, service_id), 1, 0, NULL, false},
    {"timeout", torii_dec_object, offsetof(torii_route_conf_t, timeout), 0, 0, torii_timeout_fields, false},
    {"max_body_size", torii_dec_size, offsetof(torii_route_conf_t, max_body_size), 0, 1LL << 62, NULL, false},
    {0},
};

static const torii_field_t service_fields[] = {
    {"id", torii_dec_string, offsetof(torii_route_conf_t, id), 1, 0, NULL, true},
    {"name", torii_dec_string, offsetof(torii_route_conf_t, name), 0, 0, NULL, false},
    {"desc", dec_note, 0, 0, 0, NULL, false},
    {"plugins", dec_plugins, 0, 0, 0, NULL, false},
    {"upstream", torii_dec_upstream_inline, 0, 0, 0, NULL, false},
    {"upstream_id", torii_dec_string, offsetof(torii_route_conf_t, upstream_id), 1, 0, NULL, false},
    {0},
};

/* services: [{id, upstream, plugins}]: shared by the routes naming them. */
bool torii_dec_services(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    (void)dst, (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    conf->services = torii_palloc(c->pool, sizeof *conf->services * (n->n + 1));
    for (size_t i = 0; i < n->n; i++) {
        torii_route_conf_t *s = &conf->services[i];
        size_t mark = torii_dctx_push_index(c, i);
        s->file = n->items[i]->file;
        s->line = n->items[i]->line;
        if (!torii_decode_object(c, n->items[i], s, service_fields))
            return false;
        for (size_t k = 0; k < i; k++)
            if (strcmp(conf->services[k].id, s->id) == 0)
                return torii_dctx_fail(c, n->items[i], "duplicate service id \"%s\" (first at line %d)", s->id,
                                       conf->services[k].line);
        torii_dctx_pop(c, mark);
    }
    conf->nservices = (uint32_t)n->n;
    return true;
}

static bool dec_route(torii_dctx_t *c, const torii_cnode_t *n, torii_route_conf_t *r)
{
    r->timeout = (torii_timeouts_t){UNSET32, UNSET32, UNSET32};
    r->max_body_size = UNSET64;
    r->file = n->file;
    r->line = n->line;
    if (!torii_decode_object(c, n, r, route_fields))
        return false;
    if (torii_cnode_get(n, "uri") && torii_cnode_get(n, "uris"))
        return torii_dctx_fail(c, n, "give either \"uri\" or \"uris\", not both");
    if (!r->uris)
        return torii_dctx_fail(c, n, "missing required key \"uri\" (or \"uris\")");
    if (!r->nodes && !r->service_id && !r->upstream_id)
        return torii_dctx_fail(c, n, "missing required key \"upstream\" (or \"upstream_id\" or \"service_id\")");
    if (torii_cnode_get(n, "host") && torii_cnode_get(n, "hosts"))
        return torii_dctx_fail(c, n, "give either \"host\" or \"hosts\", not both");
    if (torii_cnode_get(n, "remote_addr") && torii_cnode_get(n, "remote_addrs"))
        return torii_dctx_fail(c, n, "give either \"remote_addr\" or \"remote_addrs\", not both");
    return true;
}

bool torii_dec_routes(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_loader_t *L = c->user;
    torii_config_t *conf = L->conf;
    (void)dst, (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    if (conf->nroutes + n->n > L->routes_cap) {
        uint32_t cap = (uint32_t)(L->routes_cap * 2 + n->n);
        torii_route_conf_t *grown = torii_palloc(c->pool, sizeof *grown * cap);
        if (conf->nroutes)
            memcpy(grown, conf->routes, sizeof *grown * conf->nroutes);
        conf->routes = grown;
        L->routes_cap = cap;
    }
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        conf->routes[conf->nroutes].order = conf->nroutes;
        if (!dec_route(c, n->items[i], &conf->routes[conf->nroutes]))
            return false;
        conf->nroutes++;
        torii_dctx_pop(c, mark);
    }
    return true;
}

static void fill_defaults(torii_route_conf_t *r, const torii_config_t *conf)
{
    if (r->timeout.connect_ms == UNSET32)
        r->timeout.connect_ms = conf->proxy.timeout.connect_ms;
    if (r->timeout.send_ms == UNSET32)
        r->timeout.send_ms = conf->proxy.timeout.send_ms;
    if (r->timeout.read_ms == UNSET32)
        r->timeout.read_ms = conf->proxy.timeout.read_ms;
    if (r->max_body_size == UNSET64)
        r->max_body_size = conf->client.max_body_size;
}

/* A route's service_id: the service must exist; a route without its own
 * upstream takes the service's. */
static bool link_service(torii_dctx_t *c, torii_config_t *conf, torii_route_conf_t *r)
{
    if (!torii_upstreams_link(c, conf, r, "route"))
        return false;
    if (r->service_id) {
        for (uint32_t s = 0; s < conf->nservices && !r->service; s++)
            if (strcmp(conf->services[s].id, r->service_id) == 0)
                r->service = s + 1;
        if (!r->service) {
            snprintf(c->err, c->errlen, "%s:%d: routes: route \"%s\": unknown service_id \"%s\"", r->file, r->line,
                     r->id, r->service_id);
            return false;
        }
        if (!r->nodes) {
            r->upstream = conf->services[r->service - 1].upstream;
            r->nodes = conf->services[r->service - 1].nodes;
            r->nnodes = conf->services[r->service - 1].nnodes;
        }
    }
    if (!r->nodes) {
        snprintf(c->err, c->errlen, "%s:%d: routes: route \"%s\": service \"%s\" has no upstream, and the route none",
                 r->file, r->line, r->id, r->service_id);
        return false;
    }
    return true;
}

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

bool torii_routes_finish(torii_dctx_t *c, torii_config_t *conf)
{
    /* Duplicate ids through a hash set of route indexes (+1; 0 is free):
     * large route tables must not cost a quadratic scan. */
    size_t cap = 16;
    uint32_t *seen;
    while (cap < (size_t)conf->nroutes * 2)
        cap *= 2;
    seen = torii_palloc(c->pool, cap * sizeof *seen);
    if (!torii_upstreams_finish(c, conf))
        return false;
    for (uint32_t s = 0; s < conf->nservices; s++)
        if (!torii_upstreams_link(c, conf, &conf->services[s], "service"))
            return false;
    for (uint32_t i = 0; i < conf->nroutes; i++) {
        torii_route_conf_t *r = &conf->routes[i];
        size_t k = id_hash(r->id) & (cap - 1);
        if (!link_service(c, conf, r))
            return false;
        fill_defaults(r, conf);
        for (; seen[k]; k = (k + 1) & (cap - 1)) {
            const torii_route_conf_t *first = &conf->routes[seen[k] - 1];
            if (strcmp(first->id, r->id) == 0) {
                snprintf(c->err, c->errlen, "%s:%d: routes: duplicate route id \"%s\" (first declared at %s:%d)",
                         r->file, r->line, r->id, first->file, first->line);
                return false;
            }
        }
        seen[k] = i + 1;
    }
    return true;
}
