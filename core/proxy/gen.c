/* gen.c — building, retiring and freeing configuration generations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "lua/timers.h"
#include "lua/wait.h"
#include "lua/vm.h"
#include "proxy/gen.h"
#include "upstream/balancer.h"
#include "shm/zones.h"

static uint32_t nalive;

/* A configuration and the generations (VMs) that use it. */
typedef struct torii_conf_ref_s {
    torii_config_t *conf;
    uint32_t refs;
} conf_ref_t;

/* Shared dicts live in memory mapped before the workers forked: a
 * generation can use the ones that exist, not make new ones. */
static bool dicts_exist(const torii_config_t *conf, const torii_vm_t *vm, char *err, size_t errlen)
{
    char *const *names;
    const uint64_t *sizes;
    size_t n = torii_vm_dicts(vm, &names, &sizes);
    for (uint32_t i = 0; i < conf->nshdicts; i++) {
        if (!torii_zones_has(conf->shdict_names[i])) {
            snprintf(err, errlen, "shared_dicts.%s: a new shared dict needs a restart (the running ones stay)",
                     conf->shdict_names[i]);
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!torii_zones_has(names[i])) {
            snprintf(err, errlen, "a plugin wants shared dict \"%s\", which needs a restart to be created", names[i]);
            return false;
        }
    }
    return true;
}

static void conf_release(conf_ref_t *cref)
{
    if (--cref->refs == 0) {
        torii_config_free(cref->conf);
        free(cref);
    }
}

/* The balancer of one upstream (per worker, per generation). */
static torii_balancer_t *balancer_for(const torii_upstream_conf_t *u, char *err, size_t errlen)
{
    torii_bnode_t nodes[u->nnodes];
    char why[256];
    torii_balancer_t *b;
    for (uint32_t i = 0; i < u->nnodes; i++)
        nodes[i] = (torii_bnode_t){.name = u->nodes[i].text, .weight = u->nodes[i].weight};
    b = torii_balancer_new(u->type, nodes, u->nnodes, NULL, why, sizeof why);
    if (!b)
        snprintf(err, errlen, "%s:%d: upstream%s%s: %s", u->file, u->line, u->id ? " " : "", u->id ? u->id : "", why);
    return b;
}

static void free_balancers(torii_gen_t *g)
{
    if (!g->bal)
        return;
    for (uint32_t i = 0; i < g->conf->nupstreams; i++)
        torii_balancer_free(g->bal[i]);
    free(g->bal);
    g->bal = NULL;
    free(g->budget);
    g->budget = NULL;
    free(g->load);
    g->load = NULL;
    for (uint32_t i = 0; g->health && i < g->conf->nupstreams; i++)
        free(g->health[i]);
    free(g->health);
    g->health = NULL;
    free(g->next_recheck);
    g->next_recheck = NULL;
    for (uint32_t i = 0; g->active_down && i < g->conf->nupstreams; i++)
        free(g->active_down[i]);
    free(g->active_down);
    g->active_down = NULL;
    free(g->health_checked);
    free(g->health_version);
}

static torii_gen_t *build(conf_ref_t *cref, uint64_t id, char *err, size_t errlen)
{
    torii_config_t *conf = cref->conf;
    torii_gen_t *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->id = id;
    g->conf = conf;
    g->cref = cref;
    cref->refs++;
    g->vm = torii_vm_new(conf, err, errlen);
    if (!g->vm || !dicts_exist(conf, g->vm, err, errlen)) {
        torii_vm_free(g->vm);
        conf_release(cref);
        free(g);
        return NULL;
    }
    g->router = torii_router_build(conf);
    g->bal = calloc(conf->nupstreams + 1, sizeof *g->bal);
    g->budget = calloc(conf->nupstreams + 1, sizeof *g->budget);
    g->load = calloc(conf->nupstreams + 1, sizeof *g->load);
    g->health = calloc(conf->nupstreams + 1, sizeof *g->health);
    g->next_recheck = calloc(conf->nupstreams + 1, sizeof *g->next_recheck);
    g->active_down = calloc(conf->nupstreams + 1, sizeof *g->active_down);
    g->health_checked = calloc(conf->nupstreams + 1, sizeof *g->health_checked);
    g->health_version = calloc(conf->nupstreams + 1, sizeof *g->health_version);
    if (!g->router || !g->bal || !g->budget || !g->load || !g->health || !g->next_recheck || !g->active_down ||
        !g->health_checked || !g->health_version)
        abort();
    for (uint32_t i = 0; i < conf->nupstreams; i++) {
        if (conf->upstreams[i]->passive.on && !(g->health[i] = calloc(conf->upstreams[i]->nnodes, sizeof **g->health)))
            abort();
        if (conf->upstreams[i]->active.on &&
            !(g->active_down[i] = calloc(conf->upstreams[i]->nnodes, sizeof **g->active_down)))
            abort();
    }
    for (uint32_t i = 0; i < conf->nupstreams; i++) {
        if (!(g->bal[i] = balancer_for(conf->upstreams[i], err, errlen))) {
            free_balancers(g);
            torii_router_free(g->router);
            torii_vm_free(g->vm);
            conf_release(cref);
            free(g);
            return NULL;
        }
    }
    g->refs = 1; /* current */
    nalive++;
    return g;
}

torii_gen_t *torii_gen_build(torii_config_t *conf, uint64_t id, char *err, size_t errlen)
{
    conf_ref_t *cref = calloc(1, sizeof *cref);
    torii_gen_t *g;
    if (!cref)
        abort();
    cref->conf = conf;
    cref->refs = 1;
    g = build(cref, id, err, errlen);
    conf_release(cref); /* the generation holds it now, or nobody */
    return g;
}

torii_gen_t *torii_gen_rebuild(const torii_gen_t *old, char *err, size_t errlen)
{
    return build(old->cref, old->id, err, errlen);
}

static void gen_free(torii_gen_t *g)
{
    torii_vm_retire(g->vm);      /* premature callbacks start no new timers */
    torii_timers_stop_vm(g->vm); /* none left after retire; at exit, the current one's */
    torii_wait_drop_vm(g->vm);   /* its timer callbacks still waiting never resume */
    torii_vm_free(g->vm);
    torii_router_free(g->router);
    free_balancers(g);
    conf_release(g->cref);
    free(g);
    nalive--;
}

void torii_gen_release(torii_gen_t *g)
{
    if (--g->refs == 0) {
        if (g->retired)
            torii_log_info("generation %llu freed: its last request ended", (unsigned long long)g->id);
        gen_free(g);
    }
}

void torii_gen_retire(torii_gen_t *g)
{
    g->retired = true;
    torii_vm_retire(g->vm);
    torii_timers_stop_vm(g->vm);
    torii_gen_release(g);
}

const torii_upstream_conf_t *torii_gen_upstream(const torii_gen_t *g, const char *id, size_t n)
{
    for (uint32_t i = 0; i < g->conf->nupstreams; i++) {
        const torii_upstream_conf_t *u = g->conf->upstreams[i];
        if (u->declared && strlen(u->id) == n && memcmp(u->id, id, n) == 0)
            return u;
    }
    return NULL;
}

const torii_upstream_conf_t *torii_gen_upstream_inline(const torii_gen_t *g, const void *u)
{
    /* u comes from Lua: compared, never read, until it is known to be ours. */
    for (uint32_t i = 0; i < g->conf->nupstreams; i++)
        if ((const void *)g->conf->upstreams[i] == u && !g->conf->upstreams[i]->declared)
            return g->conf->upstreams[i];
    return NULL;
}

uint32_t torii_gen_alive(void)
{
    return nalive;
}
