/*
 * pick.c — choosing the node (see pick.h). For chash, the key is read
 * from the request as the upstream's hash_on and key say (a variable of
 * the router's language, or the consumer an authentication plugin
 * attached); a request without it hashes on the client's address, as
 * APISIX does.
 */
#include <string.h>

#include "proxy/gen.h"
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

bool torii_pick_node(torii_request_t *r)
{
    const torii_upstream_conf_t *u = r->route->upstream;
    torii_balancer_t *b;
    torii_str_t key = torii_str(NULL, 0);
    char buf[1024];
    int i;
    if (!u) { /* every route has one; keep a safe answer anyway */
        r->node = &r->route->nodes[0];
        return true;
    }
    b = r->gen->bal[u->index];
    if (torii_balancer_type(b) == TORII_BALANCE_CHASH)
        key = hash_key(r, u, buf, sizeof buf);
    i = torii_balancer_pick(b, key.p, key.n, NULL, 0);
    if (i < 0) /* every node down: try anyway (health checks come later) */
        i = torii_balancer_pick(b, key.p, key.n, NULL, TORII_BAL_IGNORE_HEALTH);
    if (i < 0)
        return false;
    r->node = &u->nodes[i];
    r->node_index = i;
    r->balanced = true;
    torii_balancer_start(b, i);
    return true;
}

void torii_pick_done(torii_request_t *r, double now)
{
    const torii_upstream_conf_t *u;
    double end, secs;
    if (!r->balanced)
        return;
    r->balanced = false;
    u = r->route->upstream;
    end = r->t_upstream_done > 0 ? r->t_upstream_done : now;
    secs = end > r->t_upstream ? end - r->t_upstream : 0;
    torii_balancer_finish(r->gen->bal[u->index], r->node_index, (uint32_t)(secs * 1e6),
                          r->status >= 500 || r->status == 0);
}
