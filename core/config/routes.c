/*
 * routes.c — the `routes:` schema: id, uri or uris, upstream nodes,
 * timeouts and body limit, checked and with defaults filled in.
 */
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "config/loader.h"

/* Unset markers, replaced by the process defaults in torii_routes_finish. */
#define UNSET32 UINT32_MAX
#define UNSET64 UINT64_MAX

static bool check_uri(torii_dctx_t *c, const torii_cnode_t *n)
{
    const char *star = memchr(n->text, '*', n->len);
    if (n->len == 0 || n->text[0] != '/')
        return torii_dctx_fail(c, n, "must start with \"/\", got \"%s\"", n->text);
    if (star && star != n->text + n->len - 1)
        return torii_dctx_fail(c, n, "\"*\" is only allowed at the end (prefix match), got \"%s\"", n->text);
    for (size_t i = 0; i < n->len; i++) {
        unsigned char ch = (unsigned char)n->text[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#')
            return torii_dctx_fail(c, n, "invalid character in path \"%s\"", n->text);
    }
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

static bool dec_node(torii_dctx_t *c, const torii_cnode_t *n, torii_node_conf_t *node)
{
    char host[256], err[TORII_ERRLEN];
    const char *why;
    if (n->type != TORII_CN_STR)
        return torii_dctx_fail(c, n, "must be a \"host:port\" string, got %s", torii_cnode_type_name(n->type));
    if (!torii_addr_split(n->text, host, sizeof host, &node->port, false, &why) || host[0] == '\0')
        return torii_dctx_fail(c, n, "invalid node \"%s\": %s", n->text, host[0] ? why : "expected host:port");
    if (!torii_addr_resolve(host, node->port, &node->addr, err, sizeof err))
        return torii_dctx_fail(c, n, "%s", err);
    torii_addr_format((const struct sockaddr *)&node->addr.sa, node->addr_text, sizeof node->addr_text);
    node->text = torii_pstrndup(c->pool, n->text, n->len);
    node->host = torii_pstrdup(c->pool, host);
    return true;
}

static bool dec_nodes(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_route_conf_t *r = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    if (n->n == 0)
        return torii_dctx_fail(c, n, "must list at least one node");
    r->nodes = torii_palloc(c->pool, sizeof *r->nodes * n->n);
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        if (!dec_node(c, n->items[i], &r->nodes[i]))
            return false;
        torii_dctx_pop(c, mark);
    }
    r->nnodes = (uint32_t)n->n;
    return true;
}

/* A string kept for people, not for torii (desc). */
static bool dec_note(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)dst, (void)f;
    return torii_dec_expect(c, n, TORII_CN_STR);
}

static const torii_field_t upstream_fields[] = {
    {"nodes", dec_nodes, 0, 0, 0, NULL, true},
    {0},
};

static const torii_field_t route_fields[] = {
    {"id", torii_dec_string, offsetof(torii_route_conf_t, id), 1, 0, NULL, true},
    {"name", torii_dec_string, offsetof(torii_route_conf_t, name), 0, 0, NULL, false},
    {"desc", dec_note, 0, 0, 0, NULL, false},
    {"uri", dec_uri, 0, 0, 0, NULL, false},
    {"uris", dec_uris, 0, 0, 0, NULL, false},
    {"upstream", torii_dec_object, 0, 0, 0, upstream_fields, true},
    {"timeout", torii_dec_object, offsetof(torii_route_conf_t, timeout), 0, 0, torii_timeout_fields, false},
    {"max_body_size", torii_dec_size, offsetof(torii_route_conf_t, max_body_size), 0, 1LL << 62, NULL, false},
    {0},
};

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

bool torii_routes_finish(torii_dctx_t *c, torii_config_t *conf)
{
    for (uint32_t i = 0; i < conf->nroutes; i++) {
        torii_route_conf_t *r = &conf->routes[i];
        fill_defaults(r, conf);
        for (uint32_t k = 0; k < i; k++) {
            if (strcmp(conf->routes[k].id, r->id) == 0) {
                snprintf(c->err, c->errlen, "%s:%d: routes: duplicate route id \"%s\" (first declared at %s:%d)",
                         r->file, r->line, r->id, conf->routes[k].file, conf->routes[k].line);
                return false;
            }
        }
    }
    return true;
}
