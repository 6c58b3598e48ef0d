/*
 * loader.h — state shared by the configuration loader's files (config.c
 * for process settings and includes, routes.c for routes). Internal to
 * core/config.
 */
#ifndef TORII_LOADER_H
#define TORII_LOADER_H

#include "config/config.h"
#include "config/decode.h"

/* A node whose host is a name, resolved once every file is read (so that
 * `resolver:` may come after it, and all names are asked for at once). */
typedef struct {
    torii_node_conf_t *node;
    const char *file;
    int line;
    char *path; /* "upstreams[0].nodes[1]", for the error */
} torii_named_node_t;

typedef struct {
    torii_config_t *conf;
    torii_named_node_t *named; /* nodes with host names */
    uint32_t nnamed, named_cap;
    char **includes;
    uint32_t nincludes;
    uint32_t routes_cap;
} torii_loader_t;

/* Schema of {connect, send, read} timeouts (config.c). */
extern const torii_field_t torii_timeout_fields[];

/* Decoder for `services:` (routes.c). */
bool torii_dec_services(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f);

/* Decoder for a `routes:` list; appends to the configuration's routes. */
bool torii_dec_routes(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f);

/* What C compiles in a `plugins:` map, keeping each in its node's
 * `compiled`: every `_meta.filter` (the router's vars language), and the
 * upstreams written inline in traffic-split's weighted_upstreams. */
bool torii_compile_plugin_confs(torii_dctx_t *c, const torii_cnode_t *plugins);

/* Upstreams (upstreams.c): `upstreams:`, an inline `upstream:` (dst: a
 * route or service), linking `upstream_id`, and the final checks. */
bool torii_dec_upstreams(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f);
bool torii_dec_upstream_inline(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f);
torii_upstream_conf_t *torii_upstream_inline(torii_dctx_t *c, const torii_cnode_t *n);
bool torii_upstreams_link(torii_dctx_t *c, torii_config_t *conf, torii_route_conf_t *r, const char *what);
bool torii_upstreams_finish(torii_dctx_t *c, torii_config_t *conf);

/* Resolve the nodes' host names (last: it may wait on the nameservers). */
bool torii_upstreams_resolve(torii_dctx_t *c, torii_config_t *conf);

/* Decoder for `resolver:` (resolver.c). */
bool torii_dec_resolver(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f);

/* After every file is read: fill route defaults, reject duplicate ids. */
bool torii_routes_finish(torii_dctx_t *c, torii_config_t *conf);

#endif
