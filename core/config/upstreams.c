/*
 * upstreams.c — upstream objects: declared once in `upstreams:` (with an
 * id that routes and services name as `upstream_id`), or inline as a
 * route's or service's `upstream:`. APISIX's shape:
 *
 *   upstreams:
 *     - id: search
 *       type: chash                 # roundrobin (default), least_conn, chash, ewma
 *       hash_on: header             # chash: vars (default), header, cookie, consumer
 *       key: X-User                 # vars: remote_addr (default), uri, host, arg_NAME, http_NAME, cookie_NAME
 *       nodes:
 *         - "10.0.0.1:8080"                          # weight 1
 *         - {host: 10.0.0.2, port: 8080, weight: 3, id: b, retry_to: c}
 *   # or nodes: {"10.0.0.1:8080": 1, "10.0.0.2:8080": 3}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/addr.h"
#include "base/common.h"
#include "config/loader.h"
#include "config/node.h"
#include "event/dns_sys.h"
#include "router/expr.h"
#include "upstream/balancer.h"

/* Keep a node with a host name for torii_upstreams_resolve. */
static void add_named(torii_dctx_t *c, const torii_cnode_t *at, torii_node_conf_t *node)
{
    torii_loader_t *L = c->user;
    if (L->nnamed == L->named_cap) {
        uint32_t cap = L->named_cap ? L->named_cap * 2 : 16;
        torii_named_node_t *list = torii_palloc(c->pool, sizeof *list * cap);
        if (L->nnamed)
            memcpy(list, L->named, sizeof *list * L->nnamed);
        L->named = list;
        L->named_cap = cap;
    }
    L->named[L->nnamed++] = (torii_named_node_t){node, at->file, at->line, torii_pstrdup(c->pool, c->path)};
}

/* One node's address: "host:port" text; an IP literal now, a host name
 * once the whole configuration is read. */
static bool node_addr(torii_dctx_t *c, const torii_cnode_t *at, const char *host, uint16_t port,
                      torii_node_conf_t *node)
{
    char text[300];
    const char *why;
    if (torii_addr_literal(host, strlen(host), port, &node->addr))
        torii_addr_format((const struct sockaddr *)&node->addr.sa, node->addr_text, sizeof node->addr_text);
    else if (!torii_dns_name_ok(host, &why))
        return torii_dctx_fail(c, at, "invalid host \"%s\": %s", host, why);
    else
        add_named(c, at, node);
    snprintf(text, sizeof text, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    node->text = torii_pstrdup(c->pool, text);
    node->host = torii_pstrdup(c->pool, host);
    node->port = port;
    return true;
}

static bool node_from_text(torii_dctx_t *c, const torii_cnode_t *n, torii_node_conf_t *node)
{
    char host[256];
    const char *why;
    uint16_t port;
    if (!torii_addr_split(n->text, host, sizeof host, &port, false, &why) || host[0] == '\0')
        return torii_dctx_fail(c, n, "invalid node \"%s\": %s", n->text, host[0] ? why : "expected host:port");
    return node_addr(c, n, host, port, node);
}

static bool dec_weight(torii_dctx_t *c, const torii_cnode_t *n, uint32_t *out)
{
    if (n->type != TORII_CN_INT)
        return torii_dctx_fail(c, n, "must be an integer, got %s", torii_cnode_type_name(n->type));
    if (n->v.i < 0 || n->v.i > TORII_BAL_MAX_WEIGHT)
        return torii_dctx_fail(c, n, "must be 0..%u, got %lld", TORII_BAL_MAX_WEIGHT, (long long)n->v.i);
    *out = (uint32_t)n->v.i;
    return true;
}

/* {host, port, weight, id, retry_to} */
static bool node_from_map(torii_dctx_t *c, const torii_cnode_t *n, torii_node_conf_t *node)
{
    const torii_cnode_t *host = NULL, *port = NULL;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->text;
        const torii_cnode_t *v = n->items[i];
        size_t mark = torii_dctx_push_key(c, k);
        if (strcmp(k, "host") == 0) {
            if (!torii_dec_expect(c, v, TORII_CN_STR))
                return false;
            host = v;
        } else if (strcmp(k, "port") == 0) {
            if (v->type != TORII_CN_INT || v->v.i < 1 || v->v.i > 65535)
                return torii_dctx_fail(c, v, "must be a port number 1..65535");
            port = v;
        } else if (strcmp(k, "weight") == 0) {
            if (!dec_weight(c, v, &node->weight))
                return false;
        } else if (strcmp(k, "id") == 0 || strcmp(k, "retry_to") == 0) {
            if (!torii_dec_expect(c, v, TORII_CN_STR) || v->len == 0)
                return v->len == 0 ? torii_dctx_fail(c, v, "must not be empty") : false;
            *(k[0] == 'i' ? &node->id : &node->retry_to) = torii_pstrndup(c->pool, v->text, v->len);
        } else {
            return torii_dctx_fail(c, n->keys[i], "unknown key (host, port, weight, id, retry_to)");
        }
        torii_dctx_pop(c, mark);
    }
    if (!host)
        return torii_dctx_fail(c, n, "missing required key \"host\"");
    return node_addr(c, host, host->text, port ? (uint16_t)port->v.i : 80, node);
}

static bool dec_nodes(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    (void)f;
    if (n->type != TORII_CN_SEQ && n->type != TORII_CN_MAP)
        return torii_dctx_fail(c, n, "must be a list of nodes or a map of \"host:port\" to weight, got %s",
                               torii_cnode_type_name(n->type));
    if (n->n == 0)
        return torii_dctx_fail(c, n, "must list at least one node");
    u->nodes = torii_palloc(c->pool, sizeof *u->nodes * n->n);
    for (size_t i = 0; i < n->n; i++) {
        torii_node_conf_t *node = &u->nodes[i];
        const torii_cnode_t *item = n->items[i];
        node->retry_node = -1;
        size_t mark = n->type == TORII_CN_MAP ? torii_dctx_push_key(c, n->keys[i]->text) : torii_dctx_push_index(c, i);
        bool ok;
        node->weight = 1;
        if (n->type == TORII_CN_MAP) /* APISIX's {"host:port": weight} */
            ok = node_from_text(c, n->keys[i], node) && dec_weight(c, item, &node->weight);
        else if (item->type == TORII_CN_STR)
            ok = node_from_text(c, item, node);
        else if (item->type == TORII_CN_MAP)
            ok = node_from_map(c, item, node);
        else
            ok = torii_dctx_fail(c, item, "must be a \"host:port\" string or {host, port, weight}, got %s",
                                 torii_cnode_type_name(item->type));
        if (!ok)
            return false;
        torii_dctx_pop(c, mark);
    }
    u->nnodes = (uint32_t)n->n;
    return true;
}

static bool dec_type(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    torii_balance_type_t t;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    if (!torii_balance_type_parse(n->text, n->len, &t))
        return torii_dctx_fail(c, n, "unknown type \"%s\" (roundrobin, least_conn, chash or ewma)", n->text);
    u->type = torii_balance_type_name(t);
    return true;
}

static bool dec_hash_on(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    static const char *const names[] = {"vars", "header", "cookie", "consumer"};
    torii_upstream_conf_t *u = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(n->text, names[i]) == 0) {
            u->hash_on = (uint8_t)i;
            return true;
        }
    }
    return torii_dctx_fail(c, n, "unknown hash_on \"%s\" (vars, header, cookie or consumer)", n->text);
}

static bool dec_key(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    if (n->len == 0)
        return torii_dctx_fail(c, n, "must not be empty");
    u->key = n;
    return true;
}

/* retry.on: connect_error, timeout, error, 5xx, or statuses. */
static bool add_statuses(torii_dctx_t *c, const torii_cnode_t *n, torii_retry_conf_t *rc, bool names_too)
{
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    rc->statuses = torii_palloc(c->pool, sizeof *rc->statuses * (n->n + rc->nstatuses + 1));
    for (size_t i = 0; i < n->n; i++) {
        const torii_cnode_t *v = n->items[i];
        size_t mark = torii_dctx_push_index(c, i);
        if (v->type == TORII_CN_INT && v->v.i >= 100 && v->v.i <= 599) {
            rc->statuses[rc->nstatuses++] = (uint16_t)v->v.i;
        } else if (names_too && v->type == TORII_CN_STR && strcmp(v->text, "connect_error") == 0) {
            rc->on |= TORII_RETRY_CONNECT;
        } else if (names_too && v->type == TORII_CN_STR && strcmp(v->text, "timeout") == 0) {
            rc->on |= TORII_RETRY_TIMEOUT;
        } else if (names_too && v->type == TORII_CN_STR && strcmp(v->text, "error") == 0) {
            rc->on |= TORII_RETRY_ERROR;
        } else if (names_too && v->type == TORII_CN_STR && strcmp(v->text, "5xx") == 0) {
            rc->on |= TORII_RETRY_5XX;
        } else {
            return torii_dctx_fail(c, v,
                                   names_too ? "must be connect_error, timeout, error, 5xx or a status 100..599"
                                             : "must be a status 100..599");
        }
        torii_dctx_pop(c, mark);
    }
    return true;
}

static bool dec_retry_on(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    ((torii_retry_conf_t *)dst)->on |= 0x100; /* given: no default */
    return add_statuses(c, n, dst, true);
}

static bool dec_retry_status(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    return add_statuses(c, n, dst, false);
}

static bool dec_flag(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_BOOL))
        return false;
    *(bool *)dst = n->v.b;
    return true;
}

#define RF(name, fn, member, lo, hi)                                                                                   \
    {                                                                                                                  \
        name, fn, offsetof(torii_retry_conf_t, member), lo, hi, NULL, false                                            \
    }

static const torii_field_t backoff_fields[] = {
    RF("base", torii_dec_duration, backoff_ms, 0, 60000),
    RF("max", torii_dec_duration, backoff_max_ms, 0, 600000),
    {0},
};

static const torii_field_t budget_fields[] = {
    RF("percent", torii_dec_uint, budget_percent, 0, 100),
    RF("min_per_second", torii_dec_uint, budget_min, 0, 1000000),
    {0},
};

static const torii_field_t retry_fields[] = {
    RF("count", torii_dec_uint, count, 0, 100),
    {"on", dec_retry_on, 0, 0, 0, NULL, false}, /* these two fill the whole retry_conf */
    {"status", dec_retry_status, 0, 0, 0, NULL, false},
    RF("to", torii_dec_string, to, 1, 0),
    RF("per_try_timeout", torii_dec_duration, per_try_timeout_ms, 1, 86400000),
    RF("timeout", torii_dec_duration, timeout_ms, 1, 86400000),
    RF("non_idempotent", dec_flag, non_idempotent, 0, 0),
    RF("body_limit", torii_dec_size, body_limit, 0, 1 << 30),
    {"backoff", torii_dec_object, 0, 0, 0, backoff_fields, false},
    {"budget", torii_dec_object, 0, 0, 0, budget_fields, false},
    {0},
};

static bool dec_retry(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    torii_retry_conf_t *rc = &u->retry;
    (void)f;
    rc->count = 1;
    rc->backoff_ms = 25;
    rc->backoff_max_ms = 1000;
    rc->budget_percent = 20;
    rc->budget_min = 3;
    rc->body_limit = 64 * 1024;
    if (!torii_decode_object(c, n, rc, retry_fields))
        return false;
    if (!(rc->on & 0x100)) /* no `on`: connection failures and timeouts, plus any `status` */
        rc->on |= TORII_RETRY_CONNECT | TORII_RETRY_TIMEOUT | TORII_RETRY_ERROR;
    rc->on &= ~0x100u;
    if (rc->backoff_max_ms < rc->backoff_ms)
        rc->backoff_max_ms = rc->backoff_ms;
    return true;
}

#define CF(name, member)                                                                                               \
    {                                                                                                                  \
        name, torii_dec_uint, offsetof(torii_upstream_conf_t, member), 0, 10000000, NULL, false                        \
    }

static const torii_field_t breaker_fields[] = {
    CF("max_connections", max_connections),
    CF("max_pending", max_pending),
    CF("max_retries", max_retries),
    {0},
};

/* checks.passive.unhealthy.http_statuses */
/* A list of statuses 200..599 (health checks), into *out / *count. */
static bool status_list(torii_dctx_t *c, const torii_cnode_t *n, bool nonempty, uint16_t **out, uint32_t *count)
{
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    if (nonempty && n->n == 0)
        return torii_dctx_fail(c, n, "must list at least one status");
    *out = torii_palloc(c->pool, sizeof **out * (n->n + 1));
    *count = 0;
    for (size_t i = 0; i < n->n; i++) {
        const torii_cnode_t *v = n->items[i];
        if (v->type != TORII_CN_INT || v->v.i < 200 || v->v.i > 599) {
            torii_dctx_push_index(c, i);
            return torii_dctx_fail(c, v, "must be a status 200..599");
        }
        (*out)[(*count)++] = (uint16_t)v->v.i;
    }
    return true;
}

/* checks.passive.unhealthy.http_statuses */
static bool dec_passive_statuses(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    (void)f;
    return status_list(c, n, false, &u->passive.statuses, &u->passive.nstatuses);
}

#define PF(name, member, hi)                                                                                           \
    {                                                                                                                  \
        name, torii_dec_uint, offsetof(torii_upstream_conf_t, passive.member), 0, hi, NULL, false                      \
    }

static const torii_field_t unhealthy_fields[] = {
    {"http_statuses", dec_passive_statuses, 0, 0, 0, NULL, false},
    PF("http_failures", http_failures, 255),
    PF("tcp_failures", tcp_failures, 255),
    PF("timeouts", timeouts, 255),
    {0},
};

static const torii_field_t passive_fields[] = {
    {"unhealthy", torii_dec_object, 0, 0, 0, unhealthy_fields, false},
    {"cooldown", torii_dec_duration, offsetof(torii_upstream_conf_t, passive.cooldown_ms), 1, 86400000, NULL, false},
    {0},
};

static bool dec_passive(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    static const uint16_t statuses[] = {429, 404, 500, 501, 502, 503, 504, 505}; /* APISIX's defaults */
    torii_upstream_conf_t *u = dst;
    (void)f;
    u->passive.on = true;
    u->passive.http_failures = 5;
    u->passive.tcp_failures = 2;
    u->passive.timeouts = 7;
    u->passive.cooldown_ms = 10000;
    u->passive.statuses = (uint16_t *)statuses;
    u->passive.nstatuses = sizeof statuses / sizeof statuses[0];
    return torii_decode_object(c, n, u, passive_fields);
}

static bool dec_healthy_statuses(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    (void)f;
    return status_list(c, n, true, &u->active.healthy_statuses, &u->active.nhealthy_statuses);
}

#define AF(name, fn, member, lo, hi)                                                                                   \
    {                                                                                                                  \
        name, fn, offsetof(torii_upstream_conf_t, active.member), lo, hi, NULL, false                                  \
    }

static const torii_field_t active_healthy_fields[] = {
    AF("interval", torii_dec_duration, healthy_interval_ms, 10, 3600000),
    AF("successes", torii_dec_uint, healthy_successes, 1, 255),
    {"http_statuses", dec_healthy_statuses, 0, 0, 0, NULL, false},
    {0},
};

static const torii_field_t active_unhealthy_fields[] = {
    AF("interval", torii_dec_duration, unhealthy_interval_ms, 10, 3600000),
    AF("http_failures", torii_dec_uint, http_failures, 0, 255),
    AF("tcp_failures", torii_dec_uint, tcp_failures, 0, 255),
    AF("timeouts", torii_dec_uint, timeouts, 0, 255),
    {0},
};

static bool dec_probe_type(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    if (strcmp(n->text, "https") == 0)
        return torii_dctx_fail(c, n,
                               "https probes need TLS to upstreams, which torii does not speak yet (use http or tcp)");
    if (strcmp(n->text, "http") != 0 && strcmp(n->text, "tcp") != 0)
        return torii_dctx_fail(c, n, "must be http or tcp, got \"%s\"", n->text);
    u->active.tcp = strcmp(n->text, "tcp") == 0;
    return true;
}

static const torii_field_t active_fields[] = {
    {"type", dec_probe_type, 0, 0, 0, NULL, false},
    AF("http_path", torii_dec_string, path, 1, 0),
    AF("host", torii_dec_string, host, 1, 0),
    AF("timeout", torii_dec_duration, timeout_ms, 1, 3600000),
    {"healthy", torii_dec_object, 0, 0, 0, active_healthy_fields, false},
    {"unhealthy", torii_dec_object, 0, 0, 0, active_unhealthy_fields, false},
    {0},
};

static bool dec_active(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    static const uint16_t ok[] = {200, 302}; /* APISIX's defaults */
    torii_upstream_conf_t *u = dst;
    (void)f;
    u->active.on = true;
    u->active.path = "/";
    u->active.timeout_ms = 1000;
    u->active.healthy_interval_ms = 1000;
    u->active.healthy_successes = 2;
    u->active.healthy_statuses = (uint16_t *)ok;
    u->active.nhealthy_statuses = 2;
    u->active.unhealthy_interval_ms = 1000;
    u->active.http_failures = 5;
    u->active.tcp_failures = 2;
    u->active.timeouts = 3;
    if (!torii_decode_object(c, n, u, active_fields))
        return false;
    if (u->active.path[0] != '/')
        return torii_dctx_fail(c, n, "http_path must start with /");
    if (u->active.tcp) { /* a tcp probe sends nothing: an HTTP setting here is a mistake */
        static const char *const http_only[][2] = {
            {NULL, "http_path"}, {NULL, "host"}, {"healthy", "http_statuses"}, {"unhealthy", "http_failures"}};
        for (size_t i = 0; i < sizeof http_only / sizeof http_only[0]; i++) {
            const torii_cnode_t *in = http_only[i][0] ? torii_cnode_get(n, http_only[i][0]) : n, *at;
            if (in && in->type == TORII_CN_MAP && (at = torii_cnode_get(in, http_only[i][1])))
                return torii_dctx_fail(c, at, "%s%s%s is for http probes; a tcp probe only connects",
                                       http_only[i][0] ? http_only[i][0] : "", http_only[i][0] ? "." : "",
                                       http_only[i][1]);
        }
    }
    return true;
}

static const torii_field_t checks_fields[] = {
    {"passive", dec_passive, 0, 0, 0, NULL, false},
    {"active", dec_active, 0, 0, 0, NULL, false},
    {0},
};

static bool dec_note(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)dst, (void)f;
    return torii_dec_expect(c, n, TORII_CN_STR);
}

/* all_down: what a try does when health checks have every node down. */
static bool dec_all_down(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_upstream_conf_t *u = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    if (strcmp(n->text, "try") != 0 && strcmp(n->text, "fail") != 0)
        return torii_dctx_fail(c, n, "must be try (a node anyway) or fail (503 at once), got \"%s\"", n->text);
    u->all_down_fail = strcmp(n->text, "fail") == 0;
    return true;
}

static const torii_field_t upstream_fields[] = {
    {"id", torii_dec_string, offsetof(torii_upstream_conf_t, id), 1, 0, NULL, false},
    {"name", dec_note, 0, 0, 0, NULL, false},
    {"desc", dec_note, 0, 0, 0, NULL, false},
    {"type", dec_type, 0, 0, 0, NULL, false},
    {"hash_on", dec_hash_on, 0, 0, 0, NULL, false},
    {"key", dec_key, 0, 0, 0, NULL, false},
    {"nodes", dec_nodes, 0, 0, 0, NULL, true},
    {"retry", dec_retry, 0, 0, 0, NULL, false},
    {"circuit_breaker", torii_dec_object, 0, 0, 0, breaker_fields, false},
    {"checks", torii_dec_object, 0, 0, 0, checks_fields, false},
    {"all_down", dec_all_down, 0, 0, 0, NULL, false},
    {0},
};

/* What chash hashes: compiled once (a variable of the router's language). */
static bool compile_key(torii_dctx_t *c, const torii_cnode_t *at, torii_upstream_conf_t *u)
{
    char name[300];
    torii_cnode_t var;
    const char *key = u->key ? u->key->text : NULL;
    size_t mark;
    if (strcmp(u->type, "chash") != 0) {
        if (u->key || u->hash_on != TORII_HASH_VARS)
            return torii_dctx_fail(c, u->key ? u->key : at, "hash_on and key are for type chash");
        return true;
    }
    for (uint32_t i = 0; i < u->nnodes; i++) /* chash places nodes by name */
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(u->nodes[i].text, u->nodes[k].text) == 0) {
                mark = torii_dctx_push_key(c, "nodes");
                return torii_dctx_fail(c, at, "node \"%s\" is listed twice (chash places nodes by address)",
                                       u->nodes[i].text);
            }
    switch (u->hash_on) {
    case TORII_HASH_CONSUMER:
        if (u->key)
            return torii_dctx_fail(c, u->key, "hash_on consumer takes no key");
        return true;
    case TORII_HASH_HEADER:
    case TORII_HASH_COOKIE:
        if (!key)
            return torii_dctx_fail(c, at, "hash_on %s needs a key (the %s's name)",
                                   u->hash_on == TORII_HASH_HEADER ? "header" : "cookie",
                                   u->hash_on == TORII_HASH_HEADER ? "header" : "cookie");
        snprintf(name, sizeof name, "%s%s", u->hash_on == TORII_HASH_HEADER ? "http_" : "cookie_", key);
        break;
    default: snprintf(name, sizeof name, "%s", key ? key : "remote_addr"); break;
    }
    var = (torii_cnode_t){.type = TORII_CN_STR, .file = at->file, .line = u->key ? u->key->line : at->line};
    var.text = torii_pstrdup(c->pool, name);
    var.len = strlen(name);
    mark = torii_dctx_push_key(c, "key");
    u->key_var = torii_expr_var_compile(c, &var);
    if (!u->key_var)
        return false;
    torii_dctx_pop(c, mark);
    return true;
}

static bool check_weights(torii_dctx_t *c, const torii_cnode_t *at, const torii_upstream_conf_t *u)
{
    for (uint32_t i = 0; i < u->nnodes; i++)
        if (u->nodes[i].weight > 0)
            return true;
    return torii_dctx_fail(c, at, "nodes: every weight is 0: no node could ever be chosen");
}

/* Keep u in the configuration's list (its index is the balancer's). */
static void add(torii_dctx_t *c, torii_upstream_conf_t *u)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    if (conf->nupstreams == conf->upstreams_cap) {
        uint32_t cap = conf->upstreams_cap ? conf->upstreams_cap * 2 : 16;
        torii_upstream_conf_t **list = torii_palloc(c->pool, sizeof *list * cap);
        if (conf->nupstreams)
            memcpy(list, conf->upstreams, sizeof *list * conf->nupstreams);
        conf->upstreams = list;
        conf->upstreams_cap = cap;
    }
    u->index = conf->nupstreams;
    conf->upstreams[conf->nupstreams++] = u;
}

static torii_upstream_conf_t *decode_one(torii_dctx_t *c, const torii_cnode_t *n, bool named)
{
    torii_upstream_conf_t *u = torii_palloc(c->pool, sizeof *u);
    u->type = "roundrobin";
    u->file = n->file;
    u->line = n->line;
    if (!torii_decode_object(c, n, u, upstream_fields) || !check_weights(c, n, u) || !compile_key(c, n, u))
        return NULL;
    if (named && !u->id) {
        torii_dctx_fail(c, n, "missing required key \"id\"");
        return NULL;
    }
    add(c, u);
    return u;
}

torii_upstream_conf_t *torii_upstream_inline(torii_dctx_t *c, const torii_cnode_t *n)
{
    if (!torii_dec_expect(c, n, TORII_CN_MAP))
        return NULL;
    if (torii_cnode_get(n, "id")) {
        torii_dctx_fail(c, n, "an inline upstream has no id (declare it in upstreams: and use upstream_id)");
        return NULL;
    }
    return decode_one(c, n, false);
}

bool torii_dec_upstream_inline(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_route_conf_t *r = dst;
    (void)f;
    r->upstream = torii_upstream_inline(c, n);
    if (!r->upstream)
        return false;
    r->nodes = r->upstream->nodes;
    r->nnodes = r->upstream->nnodes;
    return true;
}

bool torii_dec_upstreams(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)dst, (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        torii_upstream_conf_t *u;
        if (!torii_dec_expect(c, n->items[i], TORII_CN_MAP) || !(u = decode_one(c, n->items[i], true)))
            return false;
        u->declared = true;
        torii_dctx_pop(c, mark);
    }
    return true;
}

bool torii_upstreams_link(torii_dctx_t *c, torii_config_t *conf, torii_route_conf_t *r, const char *what)
{
    if (!r->upstream_id)
        return true;
    if (r->upstream) {
        snprintf(c->err, c->errlen, "%s:%d: %s \"%s\": both upstream and upstream_id", r->file, r->line, what, r->id);
        return false;
    }
    for (uint32_t i = 0; i < conf->nupstreams; i++) {
        torii_upstream_conf_t *u = conf->upstreams[i];
        if (u->declared && strcmp(u->id, r->upstream_id) == 0) {
            r->upstream = u;
            r->nodes = u->nodes;
            r->nnodes = u->nnodes;
            return true;
        }
    }
    snprintf(c->err, c->errlen, "%s:%d: %s \"%s\": upstream_id \"%s\" names no upstream in upstreams:", r->file,
             r->line, what, r->id, r->upstream_id);
    return false;
}

static torii_upstream_conf_t *find_declared(const torii_config_t *conf, const char *id)
{
    for (uint32_t i = 0; i < conf->nupstreams; i++)
        if (conf->upstreams[i]->declared && strcmp(conf->upstreams[i]->id, id) == 0)
            return conf->upstreams[i];
    return NULL;
}

/* retry.to and the nodes' retry_to name upstreams (or, for retry_to, a
 * node of the same upstream by its id). */
static bool link_retries(torii_dctx_t *c, torii_config_t *conf, torii_upstream_conf_t *u)
{
    const char *where = u->id ? u->id : "(inline)";
    if (u->retry.to && !(u->retry.to_up = find_declared(conf, u->retry.to))) {
        snprintf(c->err, c->errlen, "%s:%d: upstream %s: retry.to \"%s\" names no upstream in upstreams:", u->file,
                 u->line, where, u->retry.to);
        return false;
    }
    for (uint32_t i = 0; i < u->nnodes; i++) {
        torii_node_conf_t *node = &u->nodes[i];
        if (!node->retry_to)
            continue;
        for (uint32_t k = 0; k < u->nnodes; k++)
            if (k != i && u->nodes[k].id && strcmp(u->nodes[k].id, node->retry_to) == 0)
                node->retry_node = (int)k;
        if (node->retry_node < 0 && !(node->retry_up = find_declared(conf, node->retry_to))) {
            snprintf(c->err, c->errlen,
                     "%s:%d: upstream %s: nodes[%u].retry_to \"%s\" names neither a node id of this upstream nor an "
                     "upstream",
                     u->file, u->line, where, i, node->retry_to);
            return false;
        }
        if (!u->retry.count) /* retry_to alone asks for one retry */
            u->retry = (torii_retry_conf_t){.count = 1,
                                            .on = TORII_RETRY_CONNECT | TORII_RETRY_TIMEOUT | TORII_RETRY_ERROR,
                                            .backoff_ms = 25,
                                            .backoff_max_ms = 1000,
                                            .budget_percent = 20,
                                            .budget_min = 3,
                                            .body_limit = 64 * 1024};
    }
    return true;
}

bool torii_upstreams_finish(torii_dctx_t *c, torii_config_t *conf)
{
    for (uint32_t i = 0; i < conf->nupstreams; i++)
        if (!link_retries(c, conf, conf->upstreams[i]))
            return false;
    for (uint32_t i = 0; i < conf->nupstreams; i++) {
        const torii_upstream_conf_t *u = conf->upstreams[i];
        if (!u->declared)
            continue;
        for (uint32_t k = 0; k < i; k++) {
            const torii_upstream_conf_t *v = conf->upstreams[k];
            if (v->declared && strcmp(u->id, v->id) == 0) {
                snprintf(c->err, c->errlen, "%s:%d: upstreams: duplicate upstream id \"%s\" (first declared at %s:%d)",
                         u->file, u->line, u->id, v->file, v->line);
                return false;
            }
        }
    }
    return true;
}

bool torii_node_addr(const torii_node_conf_t *node, torii_addr_t *out)
{
    if (!node->dns) {
        *out = node->addr;
        return true;
    }
    return torii_dns_name_addr(node->dns, node->port, out);
}

typedef struct {
    torii_dns_want_t *w;
    size_t n;
} wants_t;

static void release_wants(void *data)
{
    wants_t *ws = data;
    for (size_t i = 0; i < ws->n; i++)
        torii_dns_name_release(ws->w[i].name);
}

/* Nameservers not given: those of /etc/resolv.conf, else the local one
 * (as the C library does). */
static void default_nameservers(torii_dns_servers_t *s)
{
    char *text = torii_dns_read_file(TORII_DNS_RESOLV_CONF);
    if (text)
        s->nns = (uint32_t)torii_dns_resolv_nameservers(text, s->ns, TORII_DNS_MAX_NS);
    free(text);
    if (s->nns == 0) {
        torii_addr_literal("127.0.0.1", 9, 53, &s->ns[0]);
        s->nns = 1;
    }
}

bool torii_upstreams_resolve(torii_dctx_t *c, torii_config_t *conf)
{
    torii_loader_t *L = c->user;
    wants_t *ws;
    bool ok;
    if (L->nnamed == 0)
        return true;
    if (conf->resolver.servers.nns == 0)
        default_nameservers(&conf->resolver.servers);
    ws = torii_palloc(c->pool, sizeof *ws);
    ws->w = torii_palloc(c->pool, sizeof *ws->w * L->nnamed);
    for (uint32_t i = 0; i < L->nnamed; i++)
        ws->w[i].host = L->named[i].node->host;
    ws->n = L->nnamed;
    /* The references go with the configuration, whatever happens next. */
    torii_pool_cleanup(c->pool, release_wants, ws);
    ok = torii_dns_cache_resolve(&conf->resolver, ws->w, ws->n);
    for (uint32_t i = 0; i < L->nnamed; i++) {
        const torii_named_node_t *nn = &L->named[i];
        torii_node_conf_t *node = nn->node;
        if (!ok && ws->w[i].why) {
            snprintf(c->err, c->errlen, "%s:%d: %s: cannot resolve \"%s\": %s", nn->file, nn->line,
                     nn->path[0] ? nn->path : "(top level)", node->host, ws->w[i].why);
            return false;
        }
        node->dns = ws->w[i].name;
        if (torii_node_addr(node, &node->addr))
            torii_addr_format((const struct sockaddr *)&node->addr.sa, node->addr_text, sizeof node->addr_text);
    }
    return true;
}
