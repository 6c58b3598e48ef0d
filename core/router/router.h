/*
 * router.h — the route matcher: a tree of normalised path shapes by whole
 * segments (radix.h), one tree per host (exact and "*.suffix" hosts,
 * looked up by hash) plus one for routes without hosts; then each
 * candidate's methods, client address blocks and `vars` conditions.
 *
 * Precedence, first to last:
 *   1. exact paths, then parameter paths, then prefixes ('*');
 *   2. among parameter paths, at the first segment where two differ, a
 *      literal segment beats a parameter; among prefixes, the one that
 *      consumes more of the path;
 *   3. higher `priority`;
 *   4. the route declared first.
 * Hosts, methods, addresses and vars only filter: a candidate failing one
 * passes the request on to the next candidate in that order.
 *
 * Routes can be added and removed one at a time; nothing is rebuilt.
 */
#ifndef TORII_ROUTER_H
#define TORII_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "config/config.h"
#include "http/head.h"
#include "router/expr.h"
#include "router/path.h"

typedef struct torii_router_s torii_router_t;

typedef struct {
    torii_str_t name;
    torii_str_t value; /* a slice of the normalised path */
} torii_route_param_t;

typedef struct {
    const torii_route_conf_t *route;
    uint32_t nparams;
    torii_route_param_t params[TORII_PAT_MAX_PARAMS + 1]; /* named parameters, then a named catch-all */
} torii_route_match_t;

/* A request as the router sees it: x.uri is the normalised path, x.host the
 * normalised host (torii_path_normalise, torii_host_normalise). */
typedef struct {
    torii_method_t method;
    torii_expr_req_t x;
} torii_route_req_t;

torii_router_t *torii_router_new(void);

/* Add a route (its uris, hosts, methods, remote_addrs, vars, priority,
 * order); it must stay valid while it is in the router. Returns false with
 * the reason in err (a bad pattern; config checks make this rare). */
bool torii_router_add(torii_router_t *r, const torii_route_conf_t *route, char *err, size_t errlen);

/* Remove a route added before (a no-op for one that is not there). */
void torii_router_remove(torii_router_t *r, const torii_route_conf_t *route);

/* Every route of a configuration, in order (aborts on allocation failure;
 * the configuration was checked, so patterns are valid). */
torii_router_t *torii_router_build(const torii_config_t *conf);

/* The best route for the request, or false. */
bool torii_router_match(const torii_router_t *r, const torii_route_req_t *req, torii_route_match_t *m);

/* Bytes the router holds (tree nodes, host tables, entries). */
size_t torii_router_memory(const torii_router_t *r);

void torii_router_free(torii_router_t *r);

#endif
