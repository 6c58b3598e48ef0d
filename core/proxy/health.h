/*
 * health.h — active health checks (`checks.active`), run once per
 * instance, not once per worker: worker 1 probes every node of every
 * upstream that asks for it and writes each node's state into a shared
 * zone ("torii-health", made by the master before it forks); every worker
 * reads the states it needs when the zone's version moved, at most every
 * 100 ms. A node's state is keyed by its upstream's id and address, so it
 * survives reloads.
 */
#ifndef TORII_HEALTH_H
#define TORII_HEALTH_H

#include <stdbool.h>

#include "proxy/conn.h"

#define TORII_HEALTH_ZONE      "torii-health"
#define TORII_HEALTH_ZONE_SIZE (1u << 20)

/* Worker 1: probe the upstreams of the current generation (again, after a
 * reload); others: nothing. */
void torii_health_start(torii_worker_t *w);

/* Stop every probe (the worker exits). */
void torii_health_stop(torii_worker_t *w);

/* Before a pick on upstream u of generation g: bring its balancer up to
 * date with the shared states (cheap when nothing changed). */
void torii_health_sync(struct torii_gen_s *g, const torii_upstream_conf_t *u, double now);

/* Is node i of u down by the active checks (as last synced)? */
bool torii_health_active_down(const struct torii_gen_s *g, const torii_upstream_conf_t *u, uint32_t i);

#endif
