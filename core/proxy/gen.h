/*
 * gen.h — a configuration generation in a worker: the checked
 * configuration, the router built from it, the Lua VM with its plugins
 * and chains, and per-route balancing state.
 *
 * A worker serves new requests from its current generation; a request
 * keeps the generation it started on until it ends, so a reload never
 * changes the ground under a request in flight. A retired generation is
 * freed when its last request ends.
 */
#ifndef TORII_GEN_H
#define TORII_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "router/router.h"

struct torii_vm_s;

/* Requests and retries of one upstream, per worker, in two windows. */
typedef struct {
    double start;
    uint32_t requests[2], retries[2];
} torii_retry_budget_t;

/* What one upstream has in flight in this worker (circuit_breaker). */
typedef struct {
    uint32_t active;   /* tries in flight */
    uint32_t pending;  /* requests in a retry's back-off */
    uint32_t retrying; /* retries in flight */
} torii_upstream_load_t;

/* A node's passive health in this worker. */
typedef struct {
    uint16_t http, tcp, timeouts; /* consecutive failed tries of each kind */
    double down_until;            /* 0: up */
} torii_node_health_t;

typedef struct torii_gen_s {
    uint64_t id;          /* 1 at start, +1 per reload that became current */
    torii_config_t *conf; /* shared by the VMs of the generation */
    struct torii_conf_ref_s *cref;
    torii_router_t *router;
    struct torii_vm_s *vm;         /* the plugins' Lua VM */
    struct torii_balancer_s **bal; /* per upstream (conf->upstreams[i]->index) */
    torii_retry_budget_t *budget;  /* per upstream */
    torii_upstream_load_t *load;   /* per upstream */
    torii_node_health_t **health;  /* per upstream with checks.passive: per node */
    double *next_recheck;          /* per upstream: when a node's cool-down ends */
    bool **active_down;            /* per upstream with checks.active: per node, as last synced */
    double *health_checked;        /* per upstream: when the shared version was last read */
    double *health_version;        /* ... and what it was */
    uint32_t refs;                 /* requests on it, +1 while it is current */
    bool retired;
} torii_gen_t;

/*
 * Build a generation from a loaded configuration (taken over, freed on
 * failure too). NULL with the reason in err: a plugin that fails to load,
 * a plugin configuration its schema rejects, a shared dict that does not
 * exist in this process.
 */
torii_gen_t *torii_gen_build(torii_config_t *conf, uint64_t id, char *err, size_t errlen);

/* The same generation on a fresh Lua VM (the old one grew past its
 * memory limit): same configuration, new VM and router. */
torii_gen_t *torii_gen_rebuild(const torii_gen_t *g, char *err, size_t errlen);

/* The upstream declared with this id in g's configuration, or NULL. */
const torii_upstream_conf_t *torii_gen_upstream(const torii_gen_t *g, const char *id, size_t n);

/* u if it is one of g's inline upstreams (as a plugin's configuration
 * hands it over), else NULL. */
const torii_upstream_conf_t *torii_gen_upstream_inline(const torii_gen_t *g, const void *u);

/* A request starts on g. */
static inline void torii_gen_hold(torii_gen_t *g)
{
    g->refs++;
}

/* A request on g ended (or g stopped being current): frees g when it was
 * the last reference. */
void torii_gen_release(torii_gen_t *g);

/* g is no longer current: its timers fire once more with premature set,
 * new ones are refused, and it goes once its requests have ended. */
void torii_gen_retire(torii_gen_t *g);

/* Generations alive in this process (current and retired): for logs and
 * tests of the freeing. */
uint32_t torii_gen_alive(void);

#endif
