/*
 * route.h — the interim route matcher: exact paths, and prefixes written
 * with a trailing `*`. An exact match wins; among prefixes the longest
 * wins; ties go to the route declared first. (The radix router replaces
 * this file; the interface stays.)
 */
#ifndef TORII_ROUTE_H
#define TORII_ROUTE_H

#include <stdint.h>

#include "base/str.h"
#include "config/config.h"

typedef struct torii_router_s torii_router_t;

/* Build from the configuration's routes (which must outlive the router). */
torii_router_t *torii_router_build(const torii_config_t *conf);

/* The route for a request path, or NULL. */
const torii_route_conf_t *torii_router_match(const torii_router_t *r, torii_str_t path);

void torii_router_free(torii_router_t *r);

#endif
