/*
 * driver.c — walks a request through its life: route, (plugin phases),
 * upstream connection, request body out, response back, and the retry or
 * error page when the upstream side fails.
 *
 * Bodies stream in both directions. Each direction copies into the other
 * connection's output buffer and stops reading its source when that buffer
 * holds proxy.buffer_size bytes; it resumes when the buffer drains. So a
 * slow reader never makes torii hold more than about one buffer per
 * direction, whatever the body size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "event/sock.h"
#include "http/forward.h"
#include "http/hdrkind.h"
#include "lua/ffi.h"
#include "lua/vm.h"
#include "proxy/accesslog.h"
#include "proxy/client.h"
#include "proxy/driver.h"
#include "proxy/gen.h"
#include "proxy/pick.h"
#include "proxy/steps.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

static void pump_response(torii_client_t *c, torii_upstream_t *up);
static void start_tunnel(torii_client_t *c, torii_upstream_t *up);
static bool tunnel_finished(torii_client_t *c);

static uint32_t high_water(const torii_worker_t *w)
{
    return w->conf->proxy.buffer_size;
}

const torii_timeouts_t *torii_driver_timeouts(const torii_upstream_t *up)
{
    if (up->client && up->client->req && up->client->req->route)
        return &up->client->req->try_timeout; /* the route's, per_try_timeout applied */
    return &up->w->conf->proxy.timeout;
}

static void detach_upstream(torii_client_t *c, bool reusable)
{
    torii_upstream_t *up = c->up;
    if (!up)
        return;
    c->up = NULL;
    if (reusable)
        torii_upstream_release(up, true);
    else
        torii_upstream_close(up);
}

/* The request failed on torii's side of the exchange: an error page if
 * nothing was sent yet, else the response is cut short with an RST. */
static void fail_request(torii_client_t *c, int status, const char *why)
{
    torii_request_t *r = c->req;
    detach_upstream(c, false);
    if (!r->response_started) {
        torii_client_error(c, status, why);
        return;
    }
    r->error = why;
    torii_client_close(c, true);
}

static void connect_upstream(torii_client_t *c, bool fresh)
{
    torii_worker_t *w = c->w;
    torii_request_t *r = c->req;
    const torii_route_conf_t *route = r->route;
    torii_upstream_t *up;
    const torii_retry_conf_t *rc = route->upstream ? &torii_pick_base(r)->retry : NULL;
    const char *why = NULL;
    if (!fresh && torii_vm_route_runs(r->gen->vm, route, TORII_PHASE_BALANCER)) {
        /* Before each try; it may not wait (the waiting calls refuse in
         * this phase), so it is over when the resume returns. */
        int prc;
        torii_pick_refresh(r, torii_loop_now(w->loop)); /* get_nodes() sees current health */
        prc = torii_vm_run_phase(r->gen->vm, r, TORII_PHASE_BALANCER);
        if (prc != TORII_OK) {
            if (prc == TORII_AGAIN) /* cannot happen: nothing waits here */
                torii_log_error("a plugin waited in the balancer phase, route: %s, request_id: %s", route->id, r->id);
            fail_request(c, 500, "a plugin failed in the balancer phase");
            return;
        }
    }
    if (!fresh && !torii_pick_node(r, torii_loop_now(w->loop), &why)) {
        torii_log_error("%s, route: %s, request_id: %s", why, route->id, r->id);
        torii_client_error(c, 503, why);
        return;
    }
    r->tries++;
    r->t_upstream = torii_loop_now(w->loop);
    if (r->tries == 1)
        r->t_first = r->t_upstream;
    r->try_timeout = route->timeout;
    if (rc && rc->per_try_timeout_ms && rc->per_try_timeout_ms < r->try_timeout.read_ms)
        r->try_timeout.read_ms = rc->per_try_timeout_ms;
    /* A host name's node: this try's address, from its current ones (a
     * retry on a new connection keeps the failed one's). */
    if (!fresh && !torii_node_addr(r->node, &r->up_addr)) {
        torii_log_error("upstream host %s has no address (it stopped resolving), client: %s, route: %s, "
                        "request_id: %s",
                        r->node->text, c->ip, route->id, r->id);
        torii_client_error(c, 502, "the upstream host name does not resolve");
        return;
    }
    if (!fresh)
        torii_addr_format((const struct sockaddr *)&r->up_addr.sa, r->up_addr_text, sizeof r->up_addr_text);
    up = fresh ? torii_upstream_connect(w, &r->up_addr) : torii_upstream_get(w, &r->up_addr);
    if (!up) {
        torii_log_error("connect() to upstream %s failed: %s, client: %s, route: %s, request_id: %s", r->up_addr_text,
                        strerror(errno), c->ip, route->id, r->id);
        torii_client_error(c, 502, "cannot connect to the upstream");
        return;
    }
    up->client = c;
    c->up = up;
    torii_step_upstream_head(&up->out, r, w->conf);
    if (r->retries > 0 && r->replay == 1) /* what the failed try sent of the body; the rest follows */
        torii_buf_append(&up->out, torii_buf_pos(&r->replay_buf), torii_buf_len(&r->replay_buf));
    torii_upstream_update_timer(up);
    torii_driver_body(c);
}

/* Match the request to a route, or answer it (400, 404). */
static bool route_request(torii_client_t *c)
{
    torii_request_t *r = c->req;
    const char *why;
    int status;
    r->client_ip = c->ip;
    r->client16 = c->peer16;
    status = torii_step_route(r->gen->router, r, &why);
    if (status == TORII_OK)
        return true;
    if (status == 400)
        torii_log_info("client %s: %s, request_id: %s", c->ip, why, r->id);
    torii_client_error(c, status, why);
    return false;
}

static void proceed_upstream(torii_client_t *c);

/* rewrite, then access, from r->phase_at on; a plugin may wait (then the
 * wait timer calls back here). False when the request was answered or is
 * waiting. */
static bool run_access_phases(torii_client_t *c)
{
    torii_request_t *r = c->req;
    switch (torii_step_access_phases(r->gen->vm, r)) {
    case TORII_OK: return true;
    case TORII_AGAIN: torii_timer_arm(c->w->loop, &c->wait_timer, r->wait_ms / 1000.0); return false;
    case TORII_DONE: torii_client_respond(c, r->exit_status, r->resp_edits, r->exit_body); return false;
    default: torii_client_error(c, 500, "a plugin failed"); return false;
    }
}

void torii_driver_wait_over(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_client_t *c = torii_container_of(t, torii_client_t, wait_timer);
    (void)loop, (void)revents;
    if (!c->req || !c->req->waiting)
        return;
    if (run_access_phases(c))
        proceed_upstream(c);
}

void torii_driver_begin(torii_client_t *c)
{
    torii_worker_t *w = c->w;
    torii_request_t *r = c->req;
    r->t_start = torii_loop_now(w->loop);
    r->body.in = r->head.f.body;
    r->body.left = r->head.f.content_length;
    r->body.done = r->body.in == TORII_BODY_NONE;
    r->body.out_chunked = r->body.in == TORII_BODY_CHUNKED;
    if (!route_request(c))
        return;
    if (r->body.in == TORII_BODY_LENGTH && r->body.left > r->route->max_body_size) {
        torii_client_error(c, 413, "request body too large");
        return;
    }
    /* The plugin phases run before any byte goes upstream; a plugin may
     * answer the request itself, or wait. */
    if (torii_vm_route_has_plugins(r->gen->vm, r->route) && !run_access_phases(c))
        return;
    proceed_upstream(c);
}

static void proceed_upstream(torii_client_t *c)
{
    torii_request_t *r = c->req;
    if (r->head.f.expect_continue && !r->body.done) {
        /* torii reads the body itself, so it says "go on" itself. */
        torii_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (torii_client_flush(c) == TORII_ERROR)
            return;
    }
    connect_upstream(c, false);
}

static bool request_sent(const torii_request_t *r, const torii_upstream_t *up)
{
    return r->body.done && up->state != TORII_UP_CONNECTING && torii_buf_len(&up->out) == 0;
}

/* Keep what goes upstream of the body, for a retry, while it stays within
 * the upstream's retry.body_limit. */
static void keep_for_replay(torii_request_t *r, const torii_upstream_t *up, size_t from)
{
    const torii_retry_conf_t *rc = &torii_pick_base(r)->retry;
    size_t n = torii_buf_len(&up->out) - from;
    if (r->replay == 0)
        r->replay = rc->count > 0 && rc->body_limit > 0 ? 1 : 2;
    if (r->replay != 1 || n == 0)
        return;
    if (torii_buf_len(&r->replay_buf) + n > rc->body_limit) {
        r->replay = 2; /* too large to keep: this request will not be retried */
        torii_buf_release(&r->replay_buf);
        return;
    }
    torii_buf_append(&r->replay_buf, torii_buf_pos(&up->out) + from, n);
}

/* One step of the request body: LENGTH bytes or one chunked slice.
 * Returns false when the request failed (c may be gone). */
static bool body_step(torii_client_t *c, torii_upstream_t *up)
{
    torii_request_t *r = c->req;
    const char *p = c->in.data + c->body_pos;
    size_t avail = c->in.end - c->body_pos;
    size_t before = torii_buf_len(&up->out);
    if (r->body.in == TORII_BODY_LENGTH) {
        size_t n = avail < r->body.left ? avail : (size_t)r->body.left;
        torii_buf_append(&up->out, p, n);
        r->body.left -= n;
        r->body.total += n;
        c->body_pos += (uint32_t)n;
        r->body.done = r->body.left == 0;
    } else {
        size_t used;
        torii_str_t data;
        const char *why;
        int rc = torii_chunked_decode(&r->body.chunk, p, avail, &used, &data, &why);
        c->body_pos += (uint32_t)used;
        if (rc == TORII_ERROR) {
            torii_log_info("client %s: bad chunked body: %s, request_id: %s", c->ip, why, r->id);
            fail_request(c, 400, why);
            return false;
        }
        if (data.n > 0) {
            torii_chunk_header(&up->out, data.n);
            torii_buf_append(&up->out, data.p, data.n);
            torii_buf_append(&up->out, "\r\n", 2);
            r->body.total += data.n;
        }
        if (rc == TORII_DONE) {
            torii_buf_append(&up->out, "0\r\n\r\n", 5);
            r->body.done = true;
        }
    }
    keep_for_replay(r, up, before);
    if (r->body.total > r->route->max_body_size) {
        torii_log_info("client %s: request body over %llu bytes, request_id: %s", c->ip,
                       (unsigned long long)r->route->max_body_size, r->id);
        fail_request(c, 413, "request body too large");
        return false;
    }
    return true;
}

void torii_driver_body(torii_client_t *c)
{
    torii_request_t *r = c->req;
    torii_upstream_t *up = c->up;
    uint32_t head_end;
    if (!up)
        return; /* answered already; leftover input is discarded at the end */
    for (;;) {
        int rc;
        while (!r->body.done && c->body_pos < c->in.end && torii_buf_len(&up->out) < high_water(c->w)) {
            if (!body_step(c, up))
                return;
        }
        rc = torii_upstream_flush(up);
        if (rc == TORII_ERROR)
            return;
        /* A flush that took everything raises no write event, so move the
         * rest of what was read now rather than waiting for one. */
        if (rc != TORII_OK || r->body.done || c->body_pos == c->in.end)
            break;
    }
    /* Everything read was forwarded: reuse the space behind the head. */
    head_end = c->in.start + r->head.head_len;
    if (c->body_pos == c->in.end)
        c->in.end = c->body_pos = head_end;
    /* Paused while the upstream holds a full buffer; its write event resumes. */
    if (torii_buf_len(&up->out) >= high_water(c->w))
        torii_client_pause_read(c);
    else
        torii_client_resume_read(c);
    torii_client_update_timer(c);
}

void torii_driver_upstream_writable(torii_upstream_t *up)
{
    torii_client_t *c = up->client;
    if (!c)
        return;
    if (up->state == TORII_UP_TUNNEL) {
        if (!c->eof) {
            torii_client_resume_read(c);
            return;
        }
        shutdown(up->fd, SHUT_WR);
        tunnel_finished(c);
        return;
    }
    if (torii_upstream_flush(up) != TORII_OK)
        return;
    if (!c->req->body.done)
        torii_driver_body(c);
    else
        torii_upstream_update_timer(up);
}

static const char *uperr_text(torii_uperr_t kind)
{
    switch (kind) {
    case TORII_UPERR_CONNECT: return "connect failed";
    case TORII_UPERR_IO: return "connection failed";
    case TORII_UPERR_TIMEOUT_CONNECT: return "connect timed out";
    case TORII_UPERR_TIMEOUT_SEND: return "send timed out";
    case TORII_UPERR_TIMEOUT_READ: return "read timed out";
    }
    return "failed";
}

static const char *client_reason(torii_uperr_t kind, int err)
{
    switch (kind) {
    case TORII_UPERR_CONNECT:
        return err == ECONNREFUSED ? "upstream refused the connection" : "cannot connect to the upstream";
    case TORII_UPERR_IO: return "upstream closed or reset the connection";
    case TORII_UPERR_TIMEOUT_CONNECT: return "upstream connect timed out";
    case TORII_UPERR_TIMEOUT_SEND: return "upstream send timed out";
    case TORII_UPERR_TIMEOUT_READ: return "upstream read timed out";
    }
    return "upstream failed";
}

/* A request that failed on a reused keep-alive connection before any
 * response byte came back most likely met a connection the upstream was
 * closing at that moment: one retry on a new connection is safe when the
 * request can be sent again as it was (idempotent, no body). */
static bool may_retry(const torii_request_t *r, const torii_upstream_t *up, torii_uperr_t kind)
{
    return kind == TORII_UPERR_IO && up->reused && !up->got_bytes && !r->response_started &&
           r->body.in == TORII_BODY_NONE && torii_method_idempotent(r->head.method) && r->tries < 2;
}

/* May the try that just failed (cause: TORII_RETRY_*, or a status) be
 * followed by another, as the upstream's retry: says? Only while nothing
 * was sent to the client and the request can be sent again as it was. */
static bool retry_allowed(torii_client_t *c, unsigned cause, int status)
{
    torii_request_t *r = c->req;
    const torii_retry_conf_t *rc = r->route->upstream ? &torii_pick_base(r)->retry : NULL;
    double now = torii_loop_now(c->w->loop);
    bool wanted = false;
    if (!rc || r->retries >= rc->count || r->response_started)
        return false;
    if (status) {
        wanted = (rc->on & TORII_RETRY_5XX) && status >= 500;
        for (uint32_t i = 0; i < rc->nstatuses && !wanted; i++)
            wanted = rc->statuses[i] == status;
    } else {
        wanted = (rc->on & cause) != 0;
    }
    if (!wanted)
        return false;
    /* A body is sent again from what was kept of it (up to body_limit). */
    if ((r->body.in != TORII_BODY_NONE && r->replay != 1) ||
        (!torii_method_idempotent(r->head.method) && !rc->non_idempotent))
        return false;
    if (rc->timeout_ms && (now - r->t_first) * 1000 >= rc->timeout_ms)
        return false;
    {
        const char *why;
        if (!torii_pick_may_retry(r, &why)) {
            torii_log_warn("upstream circuit breaker: %s: not retrying, route: %s, request_id: %s", why, r->route->id,
                           r->id);
            return false;
        }
    }
    if (!torii_pick_retry_budget(r, now)) {
        torii_log_warn("upstream retry budget spent (%u%% of recent requests, at least %u/s): not retrying, "
                       "route: %s, request_id: %s",
                       rc->budget_percent, rc->budget_min, r->route->id, r->id);
        return false;
    }
    return true;
}

/* Drop the failed try and start the next after a back-off: base * 2^n,
 * with jitter (0.5..1.5), capped. */
static void retry_later(torii_client_t *c, const char *why)
{
    torii_request_t *r = c->req;
    const torii_retry_conf_t *rc = &torii_pick_base(r)->retry;
    double now = torii_loop_now(c->w->loop), delay = rc->backoff_ms / 1000.0;
    for (uint8_t i = 0; i < r->retries && delay < rc->backoff_max_ms / 1000.0; i++)
        delay *= 2;
    if (delay > rc->backoff_max_ms / 1000.0)
        delay = rc->backoff_max_ms / 1000.0;
    delay *= 0.5 + (double)(r->id[15] ^ (uint8_t)(now * 1e6)) / 255.0;
    if (rc->timeout_ms && now + delay > r->t_first + rc->timeout_ms / 1000.0)
        delay = 0;
    detach_upstream(c, false);
    torii_pick_try_ended(r, now, true);
    r->retries++;
    torii_log_warn("upstream %s: %s; retry %u of %u in %.0f ms, route: %s, request_id: %s", r->up_addr_text, why,
                   r->retries, rc->count, delay * 1000, r->route->id, r->id);
    torii_pick_backoff(r, true);
    torii_timer_arm(c->w->loop, &c->retry_timer, delay);
}

void torii_driver_retry_due(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_client_t *c = t->data;
    (void)loop, (void)revents;
    if (c->req && !c->up) {
        torii_pick_backoff(c->req, false);
        connect_upstream(c, false);
    }
}

void torii_driver_upstream_error(torii_upstream_t *up, torii_uperr_t kind, int err)
{
    torii_client_t *c = up->client;
    torii_request_t *r;
    bool timeout = kind >= TORII_UPERR_TIMEOUT_CONNECT;
    if (!c) {
        torii_upstream_close(up);
        return;
    }
    r = c->req;
    if (!r->try_status) /* for passive health checks */
        r->try_error = timeout ? TORII_TRY_TIMEOUT : TORII_TRY_TCP;
    if (may_retry(r, up, kind)) {
        torii_log_info("upstream %s: reused connection failed (%s), retrying on a new one, request_id: %s",
                       r->up_addr_text, err ? strerror(err) : "closed", r->id);
        detach_upstream(c, false);
        connect_upstream(c, true);
        return;
    }
    if (!r->response_started && retry_allowed(c,
                                              timeout                       ? TORII_RETRY_TIMEOUT
                                              : kind == TORII_UPERR_CONNECT ? TORII_RETRY_CONNECT
                                                                            : TORII_RETRY_ERROR,
                                              0)) {
        retry_later(c, kind == TORII_UPERR_IO && err == 0 ? "closed the connection" : uperr_text(kind));
        return;
    }
    torii_log_error("upstream %s: %s%s%s while %s, client: %s, request: \"%.*s %.*s\", route: %s, request_id: %s",
                    r->up_addr_text, kind == TORII_UPERR_IO && err == 0 ? "closed the connection" : uperr_text(kind),
                    err && !timeout ? ": " : "", err && !timeout ? strerror(err) : "",
                    r->response_started ? "reading the response body" : "proxying the request", c->ip,
                    (int)r->head.method_name.n, r->head.method_name.p, (int)r->head.target.n, r->head.target.p,
                    r->route->id, r->id);
    fail_request(c, timeout ? 504 : 502, client_reason(kind, err));
}

void torii_driver_upstream_eof(torii_upstream_t *up)
{
    torii_client_t *c = up->client;
    if (c && c->req->response_started && c->req->resp_body.in == TORII_BODY_CLOSE) {
        pump_response(c, up); /* the close ends the body */
        return;
    }
    torii_driver_upstream_error(up, TORII_UPERR_IO, 0);
}

static void upstream_invalid(torii_client_t *c, const char *why)
{
    torii_request_t *r = c->req;
    torii_log_error("upstream %s sent an invalid response: %s, client: %s, route: %s, request_id: %s", r->up_addr_text,
                    why, c->ip, r->route->id, r->id);
    fail_request(c, 502, "invalid response from the upstream");
}

/* The final response head is in r->resp: decide how its body reaches the
 * client and queue the client's head. */
static bool start_response(torii_client_t *c)
{
    torii_request_t *r = c->req;
    torii_response_ctx_t ctx;
    torii_step_response_framing(r->gen->vm, r, torii_client_may_keep(c), &ctx);
    if (torii_vm_route_runs(r->gen->vm, r->route, TORII_PHASE_HEADER_FILTER) &&
        torii_vm_run_phase(r->gen->vm, r, TORII_PHASE_HEADER_FILTER) != TORII_OK) {
        fail_request(c, 500, "a plugin failed");
        return false;
    }
    ctx.edits = r->resp_edits;
    ctx.no_length = r->filtered;
    torii_forward_response_head(&c->out, &r->resp, &ctx);
    r->status = r->resp.status;
    r->response_started = true;
    return true;
}

/* Parse response heads until the final one. Returns TORII_OK when the
 * final head is queued, TORII_AGAIN for more input, TORII_DONE when the
 * request went elsewhere (tunnel, failure). */
static int response_head(torii_client_t *c, torii_upstream_t *up)
{
    torii_request_t *r = c->req;
    const torii_client_conf_t *cc = &c->w->conf->client;
    uint32_t head_len;
    int status;
    const char *why;
    for (;;) {
        int rc = torii_head_find_end(torii_buf_pos(&up->in), torii_buf_len(&up->in), cc->max_header_size, &up->scanned,
                                     &head_len, &status, &why);
        if (rc == TORII_AGAIN)
            return TORII_AGAIN;
        if (rc == TORII_ERROR && status != 400)
            why = "response head too large";
        if (rc == TORII_ERROR ||
            torii_response_head_parse(torii_buf_pos(&up->in), head_len, r->head.method, &r->resp, &why) != TORII_OK) {
            upstream_invalid(c, why);
            return TORII_DONE;
        }
        up->scanned = 0;
        if (r->resp.status == 101) {
            if (!r->head.f.upgrade) {
                upstream_invalid(c, "101 Switching Protocols to a request without Upgrade");
                return TORII_DONE;
            }
            start_tunnel(c, up);
            return TORII_DONE;
        }
        if (r->resp.status >= 200) {
            r->try_status = r->resp.status;
            if (retry_allowed(c, 0, r->resp.status)) {
                char why[48];
                snprintf(why, sizeof why, "answered %d", r->resp.status);
                retry_later(c, why);
                return TORII_DONE;
            }
            if (!start_response(c))
                return TORII_DONE; /* answered with an error instead */
            torii_buf_consume(&up->in, head_len);
            return TORII_OK;
        }
        /* 1xx: our own 100 Continue was already sent; others go on to
         * HTTP/1.1 clients as they are. */
        if (r->resp.status != 100 && r->head.minor >= 1) {
            torii_response_ctx_t ctx = {0};
            torii_forward_response_head(&c->out, &r->resp, &ctx);
        }
        torii_buf_consume(&up->in, head_len);
    }
}

static void put_body(torii_client_t *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (c->req->resp_body.out_chunked) {
        torii_chunk_header(&c->out, n);
        torii_buf_append(&c->out, p, n);
        torii_buf_append(&c->out, "\r\n", 2);
    } else {
        torii_buf_append(&c->out, p, n);
    }
}

/* Pass a piece of the body through the body_filter plugins (eof: the last
 * call, with no piece). False when a plugin failed: the stream is cut. */
static bool filter_body(torii_client_t *c, const char *p, size_t n, bool eof)
{
    torii_request_t *r = c->req;
    r->bf_chunk = torii_str(p, n);
    r->bf_eof = eof;
    if (torii_vm_run_phase(r->gen->vm, r, TORII_PHASE_BODY_FILTER) != TORII_OK) {
        fail_request(c, 500, "a plugin failed"); /* the head is out: this cuts the stream */
        return false;
    }
    put_body(c, r->bf_chunk.p, r->bf_chunk.n);
    return true;
}

static bool emit(torii_client_t *c, const char *p, size_t n)
{
    if (c->req->filtered)
        return n == 0 || filter_body(c, p, n, false);
    put_body(c, p, n);
    return true;
}

/* Move one piece of response body. Returns false on a framing error. */
static bool response_step(torii_client_t *c, torii_upstream_t *up)
{
    torii_body_t *rb = &c->req->resp_body;
    const char *p = torii_buf_pos(&up->in);
    size_t avail = torii_buf_len(&up->in);
    if (rb->in == TORII_BODY_LENGTH) {
        size_t n = avail < rb->left ? avail : (size_t)rb->left;
        if (!emit(c, p, n))
            return false;
        rb->left -= n;
        rb->total += n;
        rb->done = rb->left == 0;
        torii_buf_consume(&up->in, n);
    } else if (rb->in == TORII_BODY_CHUNKED) {
        size_t used;
        torii_str_t data;
        const char *why;
        int rc = torii_chunked_decode(&rb->chunk, p, avail, &used, &data, &why);
        if (rc == TORII_ERROR) {
            upstream_invalid(c, why);
            return false;
        }
        if (!emit(c, data.p, data.n))
            return false;
        rb->total += data.n;
        rb->done = rc == TORII_DONE;
        torii_buf_consume(&up->in, used);
    } else {
        if (!emit(c, p, avail))
            return false;
        rb->total += avail;
        torii_buf_consume(&up->in, avail);
    }
    return true;
}

/* False when a body_filter failed at the end (c is gone). */
static bool finish_response(torii_client_t *c, torii_upstream_t *up)
{
    torii_request_t *r = c->req;
    if (r->filtered && !filter_body(c, NULL, 0, true))
        return false;
    if (r->resp_body.out_chunked)
        torii_buf_append(&c->out, "0\r\n\r\n", 5);
    r->response_done = true;
    r->t_upstream_done = torii_loop_now(c->w->loop);
    detach_upstream(c, r->resp.f.keepalive && request_sent(r, up));
    return true;
}

/* Move response bytes from the upstream to the client while the client's
 * buffer has room. When it fills and the socket will not take more, the
 * upstream is paused until the client's write event (client_drained). */
static void pump_response(torii_client_t *c, torii_upstream_t *up)
{
    torii_request_t *r = c->req;
    torii_body_t *rb = &r->resp_body;
    for (;;) {
        while (!rb->done && torii_buf_len(&up->in) > 0 && torii_buf_len(&c->out) < high_water(c->w)) {
            if (!response_step(c, up))
                return;
        }
        if (!rb->done && rb->in == TORII_BODY_CLOSE && up->eof && torii_buf_len(&up->in) == 0)
            rb->done = true;
        if (rb->done) {
            if (!finish_response(c, up))
                return;
            break;
        }
        if (torii_buf_len(&c->out) < high_water(c->w)) {
            torii_upstream_resume_read(up); /* wants more from the upstream */
            break;
        }
        switch (torii_client_flush(c)) {
        case TORII_ERROR: return; /* c is gone */
        case TORII_AGAIN: torii_upstream_pause_read(up); return;
        default: break; /* the socket took it all: go on with up->in */
        }
    }
    if (torii_client_flush(c) == TORII_OK && r->response_done)
        torii_client_request_done(c);
}

void torii_driver_upstream_readable(torii_upstream_t *up)
{
    torii_client_t *c = up->client;
    if (!c) {
        torii_upstream_close(up);
        return;
    }
    if (!c->req->response_started && response_head(c, up) != TORII_OK)
        return;
    pump_response(c, up);
}

void torii_driver_client_drained(torii_client_t *c)
{
    torii_request_t *r = c->req;
    if (!r)
        return;
    if (r->response_done) {
        torii_client_request_done(c);
        return;
    }
    if (c->up && c->up->read_paused && r->response_started) {
        torii_upstream_resume_read(c->up);
        pump_response(c, c->up);
    }
}

void torii_driver_client_gone(torii_client_t *c, const char *why)
{
    torii_request_t *r = c->req;
    if (r->response_done) {
        torii_client_pause_read(c); /* finish sending, then close */
        return;
    }
    torii_log_info("client %s: %s while the request was being proxied, request_id: %s", c->ip, why, r->id);
    if (!r->response_started)
        r->status = 499; /* nginx's code for "client closed request" */
    torii_client_close(c, false);
}

void torii_driver_client_timeout(torii_client_t *c)
{
    torii_request_t *r = c->req;
    if (torii_buf_len(&c->out) > 0) {
        torii_log_info("client %s: send timed out, request_id: %s", c->ip, r->id);
        torii_client_close(c, true);
        return;
    }
    torii_log_info("client %s: request body not received in time, request_id: %s", c->ip, r->id);
    fail_request(c, 408, "request body not received in time");
}

void torii_driver_abort(torii_client_t *c)
{
    torii_request_t *r = c->req;
    detach_upstream(c, false);
    if (!r)
        return;
    if (r->status == 0)
        r->status = 499;
    torii_access_log(c);
    c->req = NULL;
    torii_worker_request_free(c->w, r);
}

/* ---- tunnel: after 101 Switching Protocols, bytes flow untouched ---- */

static void tunnel_touch(torii_client_t *c)
{
    const torii_timeouts_t *to = &c->req->route->timeout;
    torii_timer_arm(c->w->loop, &c->timer, to->read_ms / 1000.0);
}

static void start_tunnel(torii_client_t *c, torii_upstream_t *up)
{
    torii_request_t *r = c->req;
    torii_response_ctx_t ctx = {0};
    torii_forward_response_head(&c->out, &r->resp, &ctx);
    r->status = 101;
    r->response_started = true;
    torii_buf_consume(&up->in, r->resp.head_len);
    torii_buf_append(&c->out, torii_buf_pos(&up->in), torii_buf_len(&up->in));
    torii_buf_consume(&up->in, torii_buf_len(&up->in));
    /* Bytes the client sent after its head already belong to the tunnel. */
    torii_buf_append(&up->out, c->in.data + c->body_pos, c->in.end - c->body_pos);
    c->body_pos = c->in.end;
    c->state = TORII_CLIENT_TUNNEL;
    up->state = TORII_UP_TUNNEL;
    torii_timer_stop(c->w->loop, &up->timer);
    torii_client_resume_read(c);
    torii_upstream_resume_read(up);
    tunnel_touch(c);
    if (torii_upstream_flush(up) == TORII_ERROR)
        return;
    torii_client_flush(c);
}

/* Both sides said all they had to say: the tunnel is over. */
static bool tunnel_finished(torii_client_t *c)
{
    torii_upstream_t *up = c->up;
    if (c->eof && up->eof && torii_buf_len(&c->out) == 0 && torii_buf_len(&up->out) == 0) {
        c->req->response_done = true;
        torii_client_close(c, false);
        return true;
    }
    return false;
}

void torii_driver_tunnel_client_readable(torii_client_t *c)
{
    torii_upstream_t *up = c->up;
    size_t room;
    ssize_t n;
    if (torii_buf_len(&up->out) >= high_water(c->w)) {
        torii_client_pause_read(c);
        return;
    }
    room = torii_buf_space(&up->out, 16384, high_water(c->w) + TORII_BUF_BLOCK, true);
    n = torii_sock_read(c->fd, up->out.data + up->out.end, room);
    if (n == TORII_AGAIN)
        return;
    if (n < 0) {
        torii_client_close(c, false);
        return;
    }
    if (n == 0) { /* half-close: pass it on once the queue is out */
        c->eof = true;
        torii_client_pause_read(c);
        if (torii_buf_len(&up->out) == 0)
            shutdown(up->fd, SHUT_WR);
        tunnel_finished(c);
        return;
    }
    up->out.end += (uint32_t)n;
    c->req->body.total += (uint64_t)n;
    tunnel_touch(c);
    torii_upstream_flush(up);
}

void torii_driver_tunnel_upstream_readable(torii_upstream_t *up)
{
    torii_client_t *c = up->client;
    size_t room;
    ssize_t n;
    if (torii_buf_len(&c->out) >= high_water(c->w)) {
        torii_upstream_pause_read(up);
        return;
    }
    room = torii_buf_space(&c->out, 16384, high_water(c->w) + TORII_BUF_BLOCK, true);
    n = torii_sock_read(up->fd, c->out.data + c->out.end, room);
    if (n == TORII_AGAIN)
        return;
    if (n < 0) {
        torii_client_close(c, true);
        return;
    }
    if (n == 0) {
        up->eof = true;
        torii_upstream_pause_read(up);
        if (torii_buf_len(&c->out) == 0)
            shutdown(c->fd, SHUT_WR);
        tunnel_finished(c);
        return;
    }
    c->out.end += (uint32_t)n;
    c->req->resp_body.total += (uint64_t)n;
    tunnel_touch(c);
    torii_client_flush(c);
}

void torii_driver_tunnel_drained(torii_client_t *c)
{
    torii_upstream_t *up = c->up;
    if (!up)
        return;
    if (up->eof) {
        shutdown(c->fd, SHUT_WR);
        tunnel_finished(c);
        return;
    }
    torii_upstream_resume_read(up);
}
