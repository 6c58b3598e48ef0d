/*
 * pick.c — choosing the node (see pick.h). For chash, the key is read
 * from the request as the upstream's hash_on and key say (a variable of
 * the router's language, or the consumer an authentication plugin
 * attached); a request without it hashes on the client's address, as
 * APISIX does.
 */
#include <stdio.h>
#include <string.h>

#include "base/log.h"

#include "proxy/gen.h"
#include "proxy/health.h"
#include "proxy/pick.h"
#include "proxy/steps.h"
#include "router/expr.h"
#include "upstream/balancer.h"

static torii_str_t hash_key(const torii_request_t *r, const torii_upstream_conf_t *u, char *buf, size_t cap)
{
    torii_str_t key = torii_str(NULL, 0);
    if (u->hash_on == TORII_HASH_CONSUMER) {
        key = r->consumer;
    } else if (u->key_var) {
        char host[256];
        torii_expr_req_t x;
        torii_step_expr_req(r, host, &x);
        if (!torii_expr_var_get(u->key_var, &x, buf, cap, &key))
            key = torii_str(NULL, 0);
    }
    if (key.n == 0)
        key = torii_str(r->client_ip, strlen(r->client_ip));
    return key;
}

/* Where the next try goes by the configuration: the first to the
 * route's upstream; a retry to the failed node's retry_to (a node of its
 * upstream, or an upstream), else to the upstream's retry.to, else to
 * another node of the same upstream. *forced: a node chosen by retry_to,
 * or -1. */
static const torii_upstream_conf_t *configured_target(torii_request_t *r, int *forced)
{
    const torii_upstream_conf_t *u = torii_pick_base(r);
    *forced = -1;
    if (r->retries == 0 || !r->try_up)
        return u;
    if (r->node && r->node->retry_node >= 0) {
        *forced = r->node->retry_node;
        return r->try_up;
    }
    if (r->node && r->node->retry_up)
        return r->node->retry_up;
    if (u->retry.to_up)
        return u->retry.to_up;
    return r->try_up;
}

/* ... unless the balancer phase chose the upstream or the node. */
static const torii_upstream_conf_t *target(torii_request_t *r, int *forced)
{
    const torii_upstream_conf_t *u = configured_target(r, forced);
    if (r->bal_up) {
        u = r->bal_up;
        *forced = -1;
    }
    if (r->bal_node)
        *forced = (int)r->bal_node - 1;
    return u;
}

const torii_upstream_conf_t *torii_pick_target(torii_request_t *r)
{
    int forced;
    return r->route->upstream ? target(r, &forced) : NULL;
}

const torii_upstream_conf_t *torii_pick_base(torii_request_t *r)
{
    /* A plugin's choice was looked up when it was made (torii_ffi_up_upstream). */
    if (!r->base_up)
        r->base_up = r->route->upstream;
    return r->base_up;
}

/* Recent requests and retries per upstream, in two 10 s windows. */
#define BUDGET_WINDOW 10.0

static torii_retry_budget_t *budget_of(torii_request_t *r, double now)
{
    torii_retry_budget_t *b = &r->gen->budget[torii_pick_base(r)->index];
    if (now - b->start >= BUDGET_WINDOW) {
        bool stale = now - b->start >= 2 * BUDGET_WINDOW;
        b->requests[1] = stale ? 0 : b->requests[0];
        b->retries[1] = stale ? 0 : b->retries[0];
        b->requests[0] = b->retries[0] = 0;
        b->start = now;
    }
    return b;
}

bool torii_pick_retry_budget(torii_request_t *r, double now)
{
    const torii_retry_conf_t *rc = &torii_pick_base(r)->retry;
    torii_retry_budget_t *b = budget_of(r, now);
    double requests = b->requests[0] + b->requests[1], retries = b->retries[0] + b->retries[1];
    double allowed = requests * rc->budget_percent / 100.0;
    if (allowed < rc->budget_min * 2 * BUDGET_WINDOW)
        allowed = rc->budget_min * 2 * BUDGET_WINDOW;
    if (retries + 1 > allowed)
        return false;
    b->retries[0]++;
    return true;
}

/* Passive checks: nodes whose cool-down is over are tried again. */
static void recheck(torii_gen_t *g, const torii_upstream_conf_t *u, torii_balancer_t *b, double now)
{
    torii_node_health_t *h = g->health[u->index];
    double next = 0;
    if (!h || now < g->next_recheck[u->index])
        return;
    for (uint32_t i = 0; i < u->nnodes; i++) {
        if (h[i].down_until == 0)
            continue;
        if (now >= h[i].down_until) {
            h[i] = (torii_node_health_t){0};
            torii_balancer_set_down(b, (int)i, torii_health_active_down(g, u, i));
            torii_log_notice("upstream %s: node %s back after its cool-down", u->id ? u->id : "(inline)",
                             u->nodes[i].text);
        } else if (next == 0 || h[i].down_until < next) {
            next = h[i].down_until;
        }
    }
    g->next_recheck[u->index] = next ? next : 1e300;
}

/* The try on node i of u ended so: count it, and take the node out for
 * a cool-down when a kind of failure reached its threshold. */
static void passive(torii_gen_t *g, const torii_upstream_conf_t *u, int i, const torii_request_t *r, double now)
{
    torii_node_health_t *h = g->health[u->index] ? &g->health[u->index][i] : NULL;
    const char *kind = NULL;
    uint32_t count = 0;
    bool bad_status = false;
    if (!h || h->down_until)
        return;
    for (uint32_t k = 0; k < u->passive.nstatuses && r->try_status; k++)
        bad_status |= u->passive.statuses[k] == r->try_status;
    if (r->try_error == TORII_TRY_TCP) {
        h->tcp++;
        if (u->passive.tcp_failures && h->tcp >= u->passive.tcp_failures)
            kind = "refused, reset or closed", count = h->tcp;
    } else if (r->try_error == TORII_TRY_TIMEOUT) {
        h->timeouts++;
        if (u->passive.timeouts && h->timeouts >= u->passive.timeouts)
            kind = "timed out", count = h->timeouts;
    } else if (bad_status) {
        h->http++;
        if (u->passive.http_failures && h->http >= u->passive.http_failures)
            kind = "answered a failing status", count = h->http;
    } else if (r->try_status) {
        h->http = h->tcp = h->timeouts = 0; /* a good answer: consecutive counts start over */
    }
    if (!kind)
        return;
    h->down_until = now + u->passive.cooldown_ms / 1000.0;
    if (g->next_recheck[u->index] == 0 || h->down_until < g->next_recheck[u->index])
        g->next_recheck[u->index] = h->down_until;
    torii_balancer_set_down(g->bal[u->index], i, true);
    torii_log_warn("upstream %s: node %s marked down for %.1fs: %u consecutive failed tries (%s)",
                   u->id ? u->id : "(inline)", u->nodes[i].text, u->passive.cooldown_ms / 1000.0, count, kind);
}

void torii_pick_refresh(torii_request_t *r, double now)
{
    const torii_upstream_conf_t *u = torii_pick_target(r);
    if (!u)
        return;
    torii_health_sync(r->gen, u, now);
    recheck(r->gen, u, r->gen->bal[u->index], now);
}

bool torii_pick_node(torii_request_t *r, double now, const char **why)
{
    int forced = -1;
    const torii_upstream_conf_t *u = r->route->upstream ? target(r, &forced) : NULL;
    torii_balancer_t *b;
    torii_str_t key = torii_str(NULL, 0);
    char buf[1024];
    int i;
    r->bal_up = NULL; /* the balancer phase chooses for one try */
    r->bal_node = 0;
    if (!u) { /* every route has one; keep a safe answer anyway */
        r->node = &r->route->nodes[0];
        return true;
    }
    if (r->retries == 0)
        budget_of(r, now)->requests[0]++;
    if (u != r->try_up) { /* the nodes tried belong to another balancer */
        r->tried.n = 0;
        r->try_up = u;
    }
    b = r->gen->bal[u->index];
    torii_health_sync(r->gen, u, now);
    recheck(r->gen, u, b, now);
    r->try_error = 0;
    r->try_status = 0;
    if (u->max_connections && r->gen->load[u->index].active >= u->max_connections) {
        *why = "upstream circuit open: max_connections requests in flight";
        return false;
    }
    if (forced >= 0) {
        i = forced;
    } else {
        if (torii_balancer_type(b) == TORII_BALANCE_CHASH)
            key = hash_key(r, u, buf, sizeof buf);
        i = torii_balancer_pick(b, key.p, key.n, &r->tried, 0);
        if (i == TORII_BAL_ALL_TRIED) /* every node had its try: one may get another */
            i = torii_balancer_pick(b, key.p, key.n, NULL, 0);
        if (i == TORII_BAL_ALL_DOWN && u->all_down_fail) {
            /* A fixed text: it goes to the client; the log line names the route. */
            *why = "every node of the upstream is down (all_down: fail)";
            return false;
        }
        if (i < 0) /* every node down: try one anyway, health checks may be wrong (all_down: try) */
            i = torii_balancer_pick(b, key.p, key.n, NULL, TORII_BAL_IGNORE_HEALTH);
        if (i < 0) {
            *why = "no upstream node can take the request";
            return false;
        }
    }
    torii_btried_add(&r->tried, i);
    r->gen->load[u->index].active++;
    if (r->retries > 0)
        r->gen->load[torii_pick_base(r)->index].retrying++;
    r->node = &u->nodes[i];
    r->node_index = i;
    r->balanced = true;
    torii_balancer_start(b, i);
    return true;
}

void torii_pick_try_ended(torii_request_t *r, double now, bool failed)
{
    double end, secs;
    if (!r->balanced)
        return;
    r->balanced = false;
    r->gen->load[r->try_up->index].active--;
    passive(r->gen, r->try_up, r->node_index, r, now);
    if (r->retries > 0)
        r->gen->load[torii_pick_base(r)->index].retrying--;
    end = r->t_upstream_done > 0 ? r->t_upstream_done : now;
    secs = end > r->t_upstream ? end - r->t_upstream : 0;
    torii_balancer_finish(r->gen->bal[r->try_up->index], r->node_index, (uint32_t)(secs * 1e6), failed);
}

bool torii_pick_may_retry(torii_request_t *r, const char **why)
{
    const torii_upstream_conf_t *u = torii_pick_base(r);
    const torii_upstream_load_t *l = &r->gen->load[u->index];
    /* The failed try is still counted as in flight here. */
    if (u->max_retries && l->retrying - (r->retries > 0) >= u->max_retries) {
        *why = "max_retries retries in flight";
        return false;
    }
    if (u->max_pending && l->pending >= u->max_pending) {
        *why = "max_pending requests waiting to retry";
        return false;
    }
    return true;
}

void torii_pick_backoff(torii_request_t *r, bool on)
{
    torii_upstream_load_t *l = &r->gen->load[torii_pick_base(r)->index];
    if (on == r->backing_off)
        return;
    r->backing_off = on;
    if (on)
        l->pending++;
    else
        l->pending--;
}

void torii_pick_done(torii_request_t *r, double now)
{
    if (r->backing_off) /* the client went away during a back-off */
        torii_pick_backoff(r, false);
    torii_pick_try_ended(r, now, r->status >= 500 || r->status == 0);
}
