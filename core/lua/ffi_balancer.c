/*
 * ffi_balancer.c — the balancer phase's choices for Lua (declared in
 * ffi.h). The phase runs before each try; what it chooses holds for that
 * try only (core/proxy/pick.c reads it and forgets it).
 */
#include <string.h>

#include "base/pool.h"
#include "lua/ffi.h"
#include "lua/ffi_state.h"
#include "proxy/gen.h"
#include "proxy/pick.h"
#include "upstream/balancer.h"

static int refuse(const char *why)
{
    torii_ffi_set_error(why);
    return TORII_FFI_ERROR;
}

/* torii test has no generation to look upstreams up in: it keeps the
 * names the phase chose, for the spec to see (a copy: Lua's string may go). */
static torii_str_t keep(torii_request_t *r, const char *p, size_t n)
{
    return torii_str(torii_pstrndup(torii_ffi_request_pool(r), p, n), n);
}

static int check(torii_request_t *r)
{
    if (!r || r != torii_ffi_request())
        return refuse("no request here (a request handle is valid only in its own phases)");
    if (torii_ffi_phase() != TORII_PHASE_BALANCER) {
        torii_ffi_set_error("only the balancer phase chooses a try's node or upstream");
        return TORII_FFI_BAD_PHASE;
    }
    return TORII_FFI_OK;
}

int torii_ffi_bal_set_node(struct torii_request_s *r, const char *name, size_t n)
{
    const torii_upstream_conf_t *u;
    int rc = check(r);
    if (rc != TORII_FFI_OK)
        return rc;
    if (!r->gen && r->bal_test_up.n) { /* torii test: another upstream, not known here */
        r->bal_test_node = keep(r, name, n);
        return TORII_FFI_OK;
    }
    if (!(u = torii_pick_target(r)))
        return refuse("the route has no upstream");
    /* A node's id first, then its "host:port" as configured. */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < u->nnodes; i++) {
            const char *k = pass == 0 ? u->nodes[i].id : u->nodes[i].text;
            if (k && strlen(k) == n && memcmp(k, name, n) == 0) {
                r->bal_node = i + 1;
                if (!r->gen)
                    r->bal_test_node = torii_str(u->nodes[i].text, strlen(u->nodes[i].text));
                return TORII_FFI_OK;
            }
        }
    torii_ffi_set_error("no node with this id or address in the try's upstream");
    return TORII_FFI_NOT_FOUND;
}

int torii_ffi_bal_set_upstream(struct torii_request_s *r, const char *id, size_t n)
{
    const torii_upstream_conf_t *u = NULL;
    int rc = check(r);
    if (rc != TORII_FFI_OK)
        return rc;
    /* torii test runs without a generation: there the id is taken as it is. */
    if (r->gen && !(u = torii_gen_upstream(r->gen, id, n))) {
        torii_ffi_set_error("no upstream with this id in upstreams:");
        return TORII_FFI_NOT_FOUND;
    }
    r->bal_up = u;
    r->bal_node = 0; /* a node chosen before belonged to the other upstream */
    if (!r->gen) {
        r->bal_test_up = keep(r, id, n);
        r->bal_test_node = torii_str(NULL, 0);
    }
    return TORII_FFI_OK;
}

int torii_ffi_bal_try(struct torii_request_s *r, int *try_no, int *last, int *last_status)
{
    int rc = check(r);
    if (rc != TORII_FFI_OK)
        return rc;
    *try_no = r->retries + 1;
    *last = 0;
    *last_status = 0;
    if (r->retries > 0) { /* the failed try's outcome is still there: the pick resets it */
        *last = r->try_error == TORII_TRY_TCP ? 1 : r->try_error == TORII_TRY_TIMEOUT ? 2 : r->try_status ? 3 : 0;
        *last_status = r->try_status;
    }
    return TORII_FFI_OK;
}

int torii_ffi_bal_node(struct torii_request_s *r, int i, const char **id, size_t *idlen, const char **name,
                       size_t *namelen, int *weight, int *down)
{
    const torii_upstream_conf_t *u;
    const torii_node_conf_t *node;
    int rc = check(r);
    if (rc != TORII_FFI_OK)
        return rc;
    if (!(u = torii_pick_target(r)) || i < 0 || (uint32_t)i >= u->nnodes) {
        torii_ffi_set_error("no such node");
        return TORII_FFI_NOT_FOUND;
    }
    node = &u->nodes[i];
    *id = node->id ? node->id : "";
    *idlen = strlen(*id);
    *name = node->text;
    *namelen = strlen(node->text);
    *weight = (int)node->weight;
    *down = r->gen && r->gen->bal[u->index] && torii_balancer_is_down(r->gen->bal[u->index], i);
    return TORII_FFI_OK;
}
