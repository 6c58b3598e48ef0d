/*
 * exchange.c — one request of a spec through a gateway, step by step as
 * the driver walks a client's: head parsed, routed, rewrite and access
 * (waiting on the event loop when a plugin waits), the head sent upstream,
 * the upstream's head through header_filter, each body piece through
 * body_filter, then the log phase. Between the steps the Lua side
 * (lua/torii/test.lua) plays the upstream: a canned answer, or a real
 * server it talks to.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cidr.h"
#include "base/common.h"
#include "base/log.h"
#include "base/pool.h"
#include "http/forward.h"
#include "http/status.h"
#include "lua/ffi.h"
#include "proxy/steps.h"
#include "testmode/testmode.h"

#define EXCHANGE_MT "torii.testmode.request"

struct tm_exchange_s {
    tm_gateway_t *gw; /* NULL once finished */
    tm_exchange_t *next, **pprev;
    torii_request_t *r;
    char *head;      /* the client's head (r->head points into it) */
    char *resp_head; /* the upstream's head (r->resp points into it) */
    torii_buf_t out; /* what goes out: upstream head, client head or answer */
    char ip[46];
    uint8_t ip16[16];
    torii_timer_t wake, deadline;
    bool woken, expired;
};

static tm_exchange_t *check_exchange(lua_State *L)
{
    tm_exchange_t *x = *(tm_exchange_t **)luaL_checkudata(L, 1, EXCHANGE_MT);
    if (!x->gw)
        luaL_error(L, "this request is finished");
    return x;
}

static torii_request_t *request_new(const tm_gateway_t *gw)
{
    uint32_t max = gw->conf->client.max_headers;
    torii_request_t *r = calloc(1, sizeof *r + 2 * max * sizeof(torii_header_t));
    if (!r)
        abort();
    r->head.headers = r->storage;
    r->head.max_headers = max;
    r->resp.headers = r->storage + max;
    r->resp.max_headers = max;
    snprintf(r->id, sizeof r->id, "%016llx", (unsigned long long)gw->seq);
    return r;
}

static void request_free(torii_request_t *r)
{
    if (r->pool)
        torii_pool_destroy(r->pool);
    free(r->path_buf);
    free(r->bf_buf);
    free(r);
}

/* As a worker's client: may the connection carry another request? */
static bool may_keep(const tm_exchange_t *x)
{
    const torii_client_conf_t *cc = &x->gw->conf->client;
    return x->r->head.f.keepalive && cc->keepalive_requests > 1 && cc->keepalive_timeout_ms > 0;
}

/* torii's own answer (torii_client_error's bytes). */
static void answer_error(tm_exchange_t *x, int status, const char *why)
{
    torii_request_t *r = x->r;
    r->error = why;
    r->status = status;
    r->close_after |= !r->body.done || !may_keep(x);
    r->response_started = r->response_done = true;
    x->out.start = x->out.end = 0;
    torii_error_response(&x->out, status, why, r->id, r->close_after, r->head.method == TORII_M_HEAD, r->resp_edits);
}

/* A plugin's answer (torii_client_respond's bytes). */
static void answer_exit(tm_exchange_t *x)
{
    torii_request_t *r = x->r;
    r->status = r->exit_status;
    r->close_after |= !r->body.done || !may_keep(x);
    r->response_started = r->response_done = true;
    torii_exit_response(&x->out, r->exit_status, r->resp_edits, r->exit_body.p, r->exit_body.n, r->close_after,
                        r->head.method == TORII_M_HEAD);
}

static void on_wake(torii_loop_t *l, torii_timer_t *t, int revents)
{
    (void)l, (void)revents;
    ((tm_exchange_t *)t->data)->woken = true;
}

static void on_deadline(torii_loop_t *l, torii_timer_t *t, int revents)
{
    (void)l, (void)revents;
    ((tm_exchange_t *)t->data)->expired = true;
}

/* A plugin waits: run the loop (other timers fire meanwhile) until its
 * wait is over, or the spec's patience is. False when it still waits. */
static bool wait_for_wake(tm_exchange_t *x, double timeout)
{
    torii_loop_t *loop = torii_testmode_loop();
    x->woken = x->expired = false;
    torii_timer_stop(loop, &x->wake); /* a socket may have armed it meanwhile */
    torii_timer_init(&x->wake, on_wake, x->r->wait_ms / 1000.0, 0.);
    torii_timer_init(&x->deadline, on_deadline, timeout, 0.);
    x->wake.data = x->deadline.data = x;
    torii_timer_start(loop, &x->wake);
    torii_timer_start(loop, &x->deadline);
    while (!x->woken && !x->expired)
        torii_loop_run_once(loop);
    torii_timer_stop(loop, &x->wake);
    torii_timer_stop(loop, &x->deadline);
    return x->woken;
}

/* rewrite and access, waiting as often as the plugins do. */
static int access_phases(tm_exchange_t *x, double timeout)
{
    for (;;) {
        int rc;
        torii_testmode_enter(x->gw);
        rc = torii_step_access_phases(x->gw->vm, x->r);
        torii_testmode_leave();
        if (rc != TORII_AGAIN || !wait_for_wake(x, timeout))
            return rc;
    }
}

/* Parse the client's head and route it: false when torii answers. */
static bool accept_head(lua_State *L, tm_exchange_t *x)
{
    torii_request_t *r = x->r;
    size_t n, scanned = 0;
    const char *head = luaL_checklstring(L, 2, &n), *why = NULL;
    uint32_t head_len;
    int status = 400, rc;
    if (!(x->head = malloc(n + 1)))
        abort();
    memcpy(x->head, head, n + 1);
    rc = torii_head_find_end(x->head, n, x->gw->conf->client.max_header_size, &scanned, &head_len, &status, &why);
    if (rc == TORII_AGAIN)
        luaL_error(L, "the request head is incomplete (no blank line at its end)");
    if (rc != TORII_OK || torii_request_head_parse(x->head, head_len, &r->head, &status, &why) != TORII_OK) {
        r->close_after = true; /* as for a client: answered, then closed */
        answer_error(x, status, why);
        return false;
    }
    r->line = torii_str(x->head, strcspn(x->head, "\r"));
    r->body.in = r->head.f.body;
    r->body.left = r->head.f.content_length;
    r->body.done = r->body.in == TORII_BODY_NONE;
    r->body.out_chunked = r->body.in == TORII_BODY_CHUNKED;
    status = torii_step_route(x->gw->router, r, &why);
    if (status != TORII_OK) {
        answer_error(x, status, why);
        return false;
    }
    if (r->body.in == TORII_BODY_LENGTH && r->body.left > r->route->max_body_size) {
        answer_error(x, 413, "request body too large");
        return false;
    }
    return true;
}

/* gw:begin(head, client_ip, timeout) -> request, "upstream" (go on with
 * upstream_head), "exit" (a plugin answered) or "answered" (torii did). */
int torii_testmode_exchange_begin(lua_State *L, tm_gateway_t *gw)
{
    const char *ip = luaL_checkstring(L, 3);
    double timeout = luaL_optnumber(L, 4, 60);
    tm_exchange_t *x = calloc(1, sizeof *x), **ud;
    int rc = TORII_OK;
    if (!x)
        abort();
    ud = lua_newuserdata(L, sizeof *ud);
    *ud = x;
    luaL_getmetatable(L, EXCHANGE_MT);
    lua_setmetatable(L, -2);
    x->gw = gw;
    x->next = gw->live;
    if (gw->live)
        gw->live->pprev = &x->next;
    x->pprev = &gw->live;
    gw->live = x;
    gw->seq++;
    x->r = request_new(gw);
    /* A plugin's socket ends a wait early through it, as a connection's
     * wait timer does in a worker. */
    torii_timer_init(&x->wake, on_wake, 0., 0.);
    x->wake.data = x;
    x->r->wake = &x->wake;
    snprintf(x->ip, sizeof x->ip, "%s", ip);
    if (!torii_ip_parse(x->ip, strlen(x->ip), x->ip16))
        return luaL_error(L, "remote_addr \"%s\" is not an IP address", ip);
    x->r->client_ip = x->ip;
    x->r->client16 = x->ip16;
    torii_loop_update_now(torii_testmode_loop()); /* as a worker's loop does when a request arrives */
    x->r->t_start = torii_loop_now(torii_testmode_loop());
    if (!accept_head(L, x)) {
        lua_pushliteral(L, "answered");
        return 2;
    }
    if (torii_vm_route_has_plugins(gw->vm, x->r->route))
        rc = access_phases(x, timeout);
    if (rc == TORII_OK && torii_vm_route_runs(gw->vm, x->r->route, TORII_PHASE_BALANCER)) {
        /* One try: the balancer phase runs as before a worker's first
         * try; a node it names is the one the request goes to. */
        rc = torii_vm_run_phase(gw->vm, x->r, TORII_PHASE_BALANCER);
        if (rc == TORII_AGAIN)
            rc = TORII_ERROR;
    }
    switch (rc) {
    case TORII_OK:
        x->r->node =
            &x->r->route->nodes[x->r->bal_node && x->r->bal_node <= x->r->route->nnodes ? x->r->bal_node - 1 : 0];
        lua_pushliteral(L, "upstream");
        return 2;
    case TORII_DONE:
        answer_exit(x);
        lua_pushliteral(L, "exit");
        return 2;
    case TORII_AGAIN: return luaL_error(L, "a plugin still waits after %f seconds", timeout);
    default:
        answer_error(x, 500, "a plugin failed");
        lua_pushliteral(L, "answered");
        return 2;
    }
}

/* req:balancer() -> the upstream id and the node the balancer phase
 * chose (each nil when it chose none). */
static int l_balancer(lua_State *L)
{
    tm_exchange_t *x = check_exchange(L);
    torii_str_t up = x->r->bal_test_up, node = x->r->bal_test_node;
    if (up.n)
        lua_pushlstring(L, up.p, up.n);
    else
        lua_pushnil(L);
    if (node.n)
        lua_pushlstring(L, node.p, node.n);
    else
        lua_pushnil(L);
    return 2;
}

/* req:answer() -> the whole response torii sent itself. */
static int l_answer(lua_State *L)
{
    tm_exchange_t *x = check_exchange(L);
    lua_pushlstring(L, torii_buf_pos(&x->out), torii_buf_len(&x->out));
    return 1;
}

/* req:upstream_head() -> the head that goes upstream. The body follows it
 * unchanged (the Lua side sends it). */
static int l_upstream_head(lua_State *L)
{
    tm_exchange_t *x = check_exchange(L);
    x->out.start = x->out.end = 0;
    torii_step_upstream_head(&x->out, x->r, x->gw->conf);
    x->r->body.done = x->r->request_sent = true;
    x->r->tries++;
    x->r->t_upstream = torii_loop_now(torii_testmode_loop());
    lua_pushlstring(L, torii_buf_pos(&x->out), torii_buf_len(&x->out));
    return 1;
}

/* req:respond(head) -> "head", client head, filtered | "answered". The
 * upstream's final head, through header_filter. */
static int l_respond(lua_State *L)
{
    tm_exchange_t *x = check_exchange(L);
    torii_request_t *r = x->r;
    size_t n, scanned = 0;
    const char *head = luaL_checklstring(L, 2, &n), *why = NULL;
    uint32_t head_len;
    int status = 400, rc;
    torii_response_ctx_t ctx;
    free(x->resp_head);
    if (!(x->resp_head = malloc(n + 1)))
        abort();
    memcpy(x->resp_head, head, n + 1);
    rc = torii_head_find_end(x->resp_head, n, x->gw->conf->client.max_header_size, &scanned, &head_len, &status, &why);
    if (rc == TORII_AGAIN)
        return luaL_error(L, "the upstream's head is incomplete (no blank line at its end)");
    if (rc == TORII_ERROR && status != 400)
        why = "response head too large";
    if (rc == TORII_ERROR || torii_response_head_parse(x->resp_head, head_len, r->head.method, &r->resp, &why) != 0) {
        torii_log_error("upstream %s sent an invalid response: %s, client: %s, route: %s, request_id: %s",
                        r->node->addr_text, why, r->client_ip, r->route->id, r->id);
        answer_error(x, 502, "invalid response from the upstream");
        lua_pushliteral(L, "answered");
        return 1;
    }
    if (r->resp.status < 200)
        return luaL_error(L, "interim (1xx) answers are not supported here");
    torii_step_response_framing(x->gw->vm, r, may_keep(x), &ctx);
    if (torii_vm_route_runs(x->gw->vm, r->route, TORII_PHASE_HEADER_FILTER)) {
        torii_testmode_enter(x->gw);
        rc = torii_vm_run_phase(x->gw->vm, r, TORII_PHASE_HEADER_FILTER);
        torii_testmode_leave();
        if (rc != TORII_OK) {
            answer_error(x, 500, "a plugin failed");
            lua_pushliteral(L, "answered");
            return 1;
        }
    }
    ctx.edits = r->resp_edits;
    ctx.no_length = r->filtered;
    x->out.start = x->out.end = 0;
    torii_forward_response_head(&x->out, &r->resp, &ctx);
    r->status = r->resp.status;
    r->response_started = true;
    lua_pushliteral(L, "head");
    lua_pushlstring(L, torii_buf_pos(&x->out), torii_buf_len(&x->out));
    lua_pushboolean(L, r->filtered);
    return 3;
}

/* req:body(piece, eof) -> what the client gets of it, or nil when a
 * body_filter failed (a worker then cuts the stream). */
static int l_body(lua_State *L)
{
    tm_exchange_t *x = check_exchange(L);
    torii_request_t *r = x->r;
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    int rc;
    r->resp_body.total += n;
    if (!r->filtered) {
        lua_pushvalue(L, 2);
        return 1;
    }
    r->bf_chunk = torii_str(p, n);
    r->bf_eof = lua_toboolean(L, 3);
    torii_testmode_enter(x->gw);
    rc = torii_vm_run_phase(x->gw->vm, r, TORII_PHASE_BODY_FILTER);
    torii_testmode_leave();
    if (rc != TORII_OK) {
        r->error = "a plugin failed";
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, r->bf_chunk.p, r->bf_chunk.n);
    return 1;
}

/* The request's ctx, from the frame of the runtime's loop where its
 * coroutine is parked (the outermost frame with a local named ctx). */
static void push_ctx(lua_State *L, tm_exchange_t *x)
{
    lua_State *V = torii_vm_lua(x->gw->vm), *co;
    lua_Debug ar;
    int found = 0;
    if (!x->r->co_ref) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(V, LUA_REGISTRYINDEX, x->r->co_ref);
    co = lua_tothread(V, -1);
    lua_pop(V, 1);
    for (int level = 0; co && lua_getstack(co, level, &ar); level++) {
        const char *name;
        for (int i = 1; (name = lua_getlocal(co, &ar, i)) != NULL; i++) {
            if (strcmp(name, "ctx") == 0 && lua_istable(co, -1)) {
                if (found)
                    lua_pop(L, 1);
                torii_testmode_copy(co, -1, L);
                found = 1;
            }
            lua_pop(co, 1);
        }
    }
    if (!found)
        lua_pushnil(L);
}

/* End the request: the log phase, then everything freed. */
static void finish(lua_State *L, tm_exchange_t *x)
{
    tm_gateway_t *gw = x->gw;
    torii_request_t *r = x->r;
    torii_testmode_enter(gw);
    /* A chain suspended mid-phase is dropped; the log phase then runs on a
     * fresh coroutine (as in torii_worker_request_free). */
    if (r->waiting)
        torii_vm_request_done(gw->vm, r);
    if (r->route && torii_vm_route_runs(gw->vm, r->route, TORII_PHASE_LOG))
        torii_vm_run_phase(gw->vm, r, TORII_PHASE_LOG);
    if (L)
        push_ctx(L, x);
    torii_vm_request_done(gw->vm, r);
    torii_testmode_leave();
    torii_timer_stop(torii_testmode_loop(), &x->wake);
    request_free(r); /* closes the sockets its plugins left open */
    x->r = NULL;
    free(x->head);
    free(x->resp_head);
    x->head = x->resp_head = NULL;
    torii_buf_release(&x->out);
    *x->pprev = x->next;
    if (x->next)
        x->next->pprev = x->pprev;
    x->gw = NULL;
}

/* req:finish(status) -> ctx. status: what the client got (for the log
 * phase), when the upstream answered. */
static int l_finish(lua_State *L)
{
    tm_exchange_t *x = check_exchange(L);
    if (!lua_isnoneornil(L, 2) && x->r->status == 0)
        x->r->status = (int)luaL_checkinteger(L, 2);
    finish(L, x);
    return 1;
}

static int l_gc(lua_State *L)
{
    tm_exchange_t *x = *(tm_exchange_t **)luaL_checkudata(L, 1, EXCHANGE_MT);
    if (x->gw)
        finish(NULL, x);
    free(x);
    return 0;
}

void torii_testmode_exchange_abort_all(tm_gateway_t *gw)
{
    while (gw->live)
        finish(NULL, gw->live);
}

void torii_testmode_exchange_init(lua_State *L)
{
    static const luaL_Reg methods[] = {{"answer", l_answer},
                                       {"upstream_head", l_upstream_head},
                                       {"respond", l_respond},
                                       {"body", l_body},
                                       {"finish", l_finish},
                                       {"balancer", l_balancer},
                                       {NULL, NULL}};
    if (luaL_newmetatable(L, EXCHANGE_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_newtable(L);
        luaL_register(L, NULL, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
