/*
 * steps.h — the parts of a request's walk that touch no connection:
 * routing it, running its rewrite and access phases, writing the head it
 * sends upstream. The driver calls them for the requests of a worker;
 * `torii test` calls the same for the requests a spec makes, so that
 * plugins are tested on the paths they run on in production.
 */
#ifndef TORII_STEPS_H
#define TORII_STEPS_H

#include "base/buf.h"
#include "config/config.h"
#include "http/request.h"
#include "lua/vm.h"
#include "router/router.h"

/* What the vars language reads from r (host: storage for the lowercased
 * Host, 256 bytes). */
void torii_step_expr_req(const torii_request_t *r, char host[256], torii_expr_req_t *x);

/*
 * Match r (its head parsed, r->client_ip and r->client16 set) to a route:
 * r->path, r->match and r->route are set. TORII_OK, or the status to
 * answer (400 for a path that cannot be normalised, 404 for no route)
 * with the reason in *why (a fixed string).
 */
int torii_step_route(const torii_router_t *router, torii_request_t *r, const char **why);

/*
 * rewrite, then access, from r->phase_at on; a phase that no plugin of the
 * route's chain has is skipped without entering Lua. TORII_OK: go
 * upstream; TORII_AGAIN: a plugin waits (r->wait_ms), call again when the
 * wait is over; TORII_DONE: a plugin answered (r->exit_status,
 * r->exit_body, r->resp_edits); TORII_ERROR: a plugin failed (logged).
 */
int torii_step_access_phases(torii_vm_t *vm, torii_request_t *r);

/* Append the head r sends upstream: the client's, with the plugins'
 * edits (headers, target, method, Host) and the forwarding headers. */
void torii_step_upstream_head(torii_buf_t *out, const torii_request_t *r, const torii_config_t *conf);

/*
 * The final response head is in r->resp: how its body reaches the client
 * (r->resp_body, r->filtered, r->close_after) and the framing of the
 * client's head (*ctx, whose edits are for the caller to add once
 * header_filter has run). may_keep: the client connection may carry
 * another request.
 */
void torii_step_response_framing(const torii_vm_t *vm, torii_request_t *r, bool may_keep, torii_response_ctx_t *ctx);

#endif
