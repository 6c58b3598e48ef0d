/* steps.c — routing, the access-side phases and the upstream head (steps.h). */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "http/forward.h"
#include "http/hdrkind.h"
#include "lua/ffi.h"
#include "proxy/steps.h"

/* The path the router sees: the client's, unless escapes or dot segments
 * make the normal form differ (then a copy). */
static bool normal_path(torii_request_t *r, const char **why)
{
    torii_str_t p = r->head.path;
    int n;
    bool plain = !memchr(p.p, '%', p.n);
    for (size_t i = 0; plain && i + 1 < p.n; i++)
        plain = !(p.p[i] == '/' && p.p[i + 1] == '.');
    if (plain && p.n > 0 && p.p[0] == '/') {
        r->path = p;
        return true;
    }
    if (!r->path_buf && !(r->path_buf = malloc(p.n + 1)))
        abort();
    n = torii_path_normalise(p, r->path_buf, why);
    if (n < 0)
        return false;
    r->path = torii_str(r->path_buf, (size_t)n);
    return true;
}

void torii_step_expr_req(const torii_request_t *r, char host[256], torii_expr_req_t *x)
{
    const torii_http_head_t *h = &r->head;
    torii_str_t raw_host = h->authority.n   ? h->authority
                           : h->f.host >= 0 ? torii_str_trim(h->headers[h->f.host].value)
                                            : torii_str(NULL, 0);
    *x = (torii_expr_req_t){
        .method = h->method_name,
        .uri = r->path,
        .request_uri = h->target,
        .host = torii_str(host, raw_host.n <= 256 ? torii_host_normalise(raw_host, host) : 0),
        .query = h->query,
        .headers = h->headers,
        .nheaders = h->nheaders,
        .client = r->client16,
        .client_text = torii_str(r->client_ip, strlen(r->client_ip)),
    };
}

int torii_step_route(const torii_router_t *router, torii_request_t *r, const char **why)
{
    const torii_http_head_t *h = &r->head;
    char host[256];
    torii_route_req_t q;
    if (h->path.n == 1 && h->path.p[0] == '*') { /* OPTIONS *: valid, but no route is for it */
        *why = "no route matches the request";
        return 404;
    }
    if (!normal_path(r, why))
        return 400;
    q.method = h->method;
    torii_step_expr_req(r, host, &q.x);
    if (!torii_router_match(router, &q, &r->match)) {
        *why = "no route matches the request";
        return 404;
    }
    r->route = r->match.route;
    return TORII_OK;
}

int torii_step_access_phases(torii_vm_t *vm, torii_request_t *r)
{
    static const int phases[] = {TORII_PHASE_REWRITE, TORII_PHASE_ACCESS};
    while (r->phase_at < TORII_ARRAY_LEN(phases)) {
        int rc;
        if (!r->waiting && !torii_vm_route_runs(vm, r->route, phases[r->phase_at])) {
            r->phase_at++; /* no plugin of the chain has this phase: no trip into Lua */
            continue;
        }
        rc = r->waiting ? torii_vm_resume(vm, r) : torii_vm_run_phase(vm, r, phases[r->phase_at]);
        if (rc != TORII_OK)
            return rc;
        r->phase_at++;
    }
    return TORII_OK;
}

void torii_step_upstream_head(torii_buf_t *out, const torii_request_t *r, const torii_config_t *conf)
{
    torii_forward_ctx_t ctx = {
        .client_ip = r->client_ip,
        .client_ip16 = r->client16,
        .trusted = torii_cidr_list_match(conf->trusted_proxies, conf->ntrusted, r->client16),
        .trusted_list = conf->trusted_proxies,
        .ntrusted = conf->ntrusted,
        .scheme = "http",
        .default_host = r->node->text,
        .chunked = r->body.out_chunked,
        .edits = r->up_edits,
        .target = r->up_target,
        .method = r->up_method,
        .host = r->up_host,
    };
    torii_forward_request_head(out, &r->head, &ctx);
}

/* A HEAD answer carries the headers a GET would have had, so a resource
 * the upstream sends chunked keeps its Transfer-Encoding (with no body). */
static bool head_of_chunked(const torii_request_t *r)
{
    if (r->head.method != TORII_M_HEAD)
        return false;
    for (uint32_t i = 0; i < r->resp.nheaders; i++)
        if (r->resp.headers[i].kind == TORII_H_TRANSFER_ENCODING)
            return true;
    return false;
}

void torii_step_response_framing(const torii_vm_t *vm, torii_request_t *r, bool may_keep, torii_response_ctx_t *ctx)
{
    torii_body_t *rb = &r->resp_body;
    bool client10 = r->head.minor == 0;
    rb->in = r->resp.f.body;
    rb->left = r->resp.f.content_length;
    rb->done = rb->in == TORII_BODY_NONE;
    /* A body_filter may change the body's length: then it is framed anew. */
    r->filtered = rb->in != TORII_BODY_NONE && torii_vm_route_filters_body(vm, r->route);
    /* Unknown length: HTTP/1.1 clients get it chunked, 1.0 ones a close. */
    rb->out_chunked = !client10 && (rb->in == TORII_BODY_CHUNKED || rb->in == TORII_BODY_CLOSE || r->filtered);
    r->close_after |= (client10 && (rb->in == TORII_BODY_CHUNKED || rb->in == TORII_BODY_CLOSE || r->filtered)) ||
                      !may_keep || !r->body.done;
    *ctx = (torii_response_ctx_t){.chunked = rb->out_chunked || (!client10 && head_of_chunked(r)),
                                  .close = r->close_after,
                                  .keepalive_10 = client10 && !r->close_after};
}
