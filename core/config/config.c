/*
 * config.c — process settings, defaults, includes: the top of the
 * configuration schema. Routes are in routes.c.
 */
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "base/units.h"
#include "config/loader.h"

#define SEC 1000
#define DAY (86400 * SEC)

static bool dec_workers(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (n->type == TORII_CN_STR && strcmp(n->text, "auto") == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        *(uint32_t *)dst = cpus > 0 ? (uint32_t)cpus : 1;
        return true;
    }
    if (n->type != TORII_CN_INT)
        return torii_dctx_fail(c, n, "must be \"auto\" or a number of workers");
    if (n->v.i < 1 || n->v.i > 256)
        return torii_dctx_fail(c, n, "must be between 1 and 256, got %lld", (long long)n->v.i);
    *(uint32_t *)dst = (uint32_t)n->v.i;
    return true;
}

static bool dec_level(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    int level = torii_log_level_parse(n->text);
    if (level < 0)
        return torii_dctx_fail(c, n, "must be one of debug, info, notice, warn, error, crit, alert, emerg");
    *(int *)dst = level;
    return true;
}

/* A string or a list of strings, visited one by one. */
static bool each_string(torii_dctx_t *c, const torii_cnode_t *n,
                        bool (*fn)(torii_dctx_t *, const torii_cnode_t *, size_t, void *), void *arg, size_t *count)
{
    if (n->type == TORII_CN_STR) {
        *count = 1;
        return fn(c, n, 0, arg);
    }
    if (n->type != TORII_CN_SEQ)
        return torii_dctx_fail(c, n, "must be a string or a list of strings");
    *count = n->n;
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        if (!torii_dec_expect(c, n->items[i], TORII_CN_STR) || !fn(c, n->items[i], i, arg))
            return false;
        torii_dctx_pop(c, mark);
    }
    return true;
}

static size_t list_len(const torii_cnode_t *n)
{
    return n->type == TORII_CN_SEQ ? n->n : 1;
}

static bool one_listen(torii_dctx_t *c, const torii_cnode_t *n, size_t i, void *arg)
{
    torii_listen_conf_t *l = (torii_listen_conf_t *)arg + i;
    char host[256], err[TORII_ERRLEN];
    uint16_t port;
    const char *why;
    if (!torii_addr_split(n->text, host, sizeof host, &port, true, &why))
        return torii_dctx_fail(c, n, "invalid address \"%s\": %s", n->text, why);
    if (!torii_addr_resolve(host, port, &l->addr, err, sizeof err))
        return torii_dctx_fail(c, n, "%s", err);
    l->text = torii_pstrdup(c->pool, n->text);
    return true;
}

static bool dec_listen(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    size_t count;
    (void)dst, (void)f;
    torii_listen_conf_t *l = torii_palloc(c->pool, sizeof *l * list_len(n));
    if (!each_string(c, n, one_listen, l, &count))
        return false;
    if (count == 0)
        return torii_dctx_fail(c, n, "must list at least one address");
    conf->listen = l;
    conf->nlisten = (uint32_t)count;
    return true;
}

static bool one_cidr(torii_dctx_t *c, const torii_cnode_t *n, size_t i, void *arg)
{
    if (!torii_cidr_parse(n->text, n->len, (torii_cidr_t *)arg + i))
        return torii_dctx_fail(c, n, "invalid address or CIDR \"%s\"", n->text);
    return true;
}

static bool dec_trusted(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    size_t count;
    (void)dst, (void)f;
    torii_cidr_t *list = torii_palloc(c->pool, sizeof *list * list_len(n));
    if (!each_string(c, n, one_cidr, list, &count))
        return false;
    conf->trusted_proxies = list;
    conf->ntrusted = (uint32_t)count;
    return true;
}

static bool one_plugin_dir(torii_dctx_t *c, const torii_cnode_t *n, size_t i, void *arg)
{
    ((char **)arg)[i] = torii_pstrndup(c->pool, n->text, n->len);
    return true;
}

/* Directories of extra plugins; relative ones are made absolute against
 * the main file's directory once it is known (torii_config_load). */
static bool dec_plugin_dirs(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    size_t count;
    (void)dst, (void)f;
    conf->plugin_dirs = torii_palloc(c->pool, sizeof(char *) * list_len(n));
    if (!each_string(c, n, one_plugin_dir, conf->plugin_dirs, &count))
        return false;
    conf->nplugin_dirs = (uint32_t)count;
    return true;
}

/* [{id, plugins: {...}}, ...]: the shape is checked here, each plugin's
 * configuration by the Lua runtime against the plugin's schema. */
static bool dec_global_rules(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    (void)dst, (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    for (size_t i = 0; i < n->n; i++) {
        const torii_cnode_t *rule = n->items[i];
        size_t mark = torii_dctx_push_index(c, i);
        if (!torii_dec_expect(c, rule, TORII_CN_MAP))
            return false;
        for (size_t k = 0; k < rule->n; k++) {
            const char *key = rule->keys[k]->text;
            size_t km = torii_dctx_push_key(c, key);
            if (strcmp(key, "id") == 0) {
                if (!torii_dec_expect(c, rule->items[k], TORII_CN_STR))
                    return false;
            } else if (strcmp(key, "plugins") == 0) {
                if (!torii_dec_expect(c, rule->items[k], TORII_CN_MAP) ||
                    !torii_compile_plugin_confs(c, rule->items[k]))
                    return false;
            } else if (strcmp(key, "desc") != 0) {
                torii_dctx_pop(c, km);
                return torii_dctx_fail(c, rule->keys[k], "unknown key \"%s\" (a global rule has id, plugins, desc)",
                                       key);
            }
            torii_dctx_pop(c, km);
        }
        if (!torii_cnode_get(rule, "id") || !torii_cnode_get(rule, "plugins"))
            return torii_dctx_fail(c, rule, "a global rule needs \"id\" and \"plugins\"");
        torii_dctx_pop(c, mark);
    }
    conf->global_rules = n;
    return true;
}

/* [{username, plugins: {...}, desc}, ...]: the shape is checked here, each
 * plugin's part by the Lua runtime against the plugin's consumer schema. */
static bool dec_consumers(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    (void)dst, (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    for (size_t i = 0; i < n->n; i++) {
        const torii_cnode_t *cons = n->items[i], *name;
        size_t mark = torii_dctx_push_index(c, i);
        if (!torii_dec_expect(c, cons, TORII_CN_MAP))
            return false;
        for (size_t k = 0; k < cons->n; k++) {
            const char *key = cons->keys[k]->text;
            const torii_cnode_t *v = cons->items[k];
            size_t km = torii_dctx_push_key(c, key);
            if (strcmp(key, "username") == 0 || strcmp(key, "desc") == 0) {
                if (!torii_dec_expect(c, v, TORII_CN_STR))
                    return false;
            } else if (strcmp(key, "plugins") == 0) {
                if (!torii_dec_expect(c, v, TORII_CN_MAP) || !torii_compile_plugin_confs(c, v))
                    return false;
            } else {
                torii_dctx_pop(c, km);
                return torii_dctx_fail(c, cons->keys[k], "unknown key \"%s\" (a consumer has username, plugins, desc)",
                                       key);
            }
            torii_dctx_pop(c, km);
        }
        name = torii_cnode_get(cons, "username");
        if (!name)
            return torii_dctx_fail(c, cons, "missing required key \"username\"");
        for (size_t k = 0; k < name->len; k++) {
            char ch = name->text[k];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '-' || ch == '.'))
                return torii_dctx_fail(c, name, "invalid username \"%s\" (letters, digits, '_', '-', '.')", name->text);
        }
        if (name->len == 0)
            return torii_dctx_fail(c, name, "username must not be empty");
        for (size_t j = 0; j < i; j++) {
            const torii_cnode_t *other = torii_cnode_get(n->items[j], "username");
            if (other && other->len == name->len && memcmp(other->text, name->text, name->len) == 0)
                return torii_dctx_fail(c, name, "duplicate username \"%s\" (first at line %d)", name->text,
                                       other->line);
        }
        torii_dctx_pop(c, mark);
    }
    conf->consumers = n;
    return true;
}

/* shared_dicts: {limits: 10m}: zones of shared memory for plugins. */
static bool dec_shared_dicts(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_config_t *conf = ((torii_loader_t *)c->user)->conf;
    (void)dst, (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_MAP))
        return false;
    conf->shdict_names = torii_palloc(c->pool, sizeof(char *) * (n->n + 1));
    conf->shdict_sizes = torii_palloc(c->pool, sizeof(uint64_t) * (n->n + 1));
    for (size_t i = 0; i < n->n; i++) {
        const torii_cnode_t *v = n->items[i];
        const char *name = n->keys[i]->text;
        uint64_t size = 0;
        size_t mark = torii_dctx_push_key(c, name);
        if (name[0] == '\0' || strlen(name) > 63)
            return torii_dctx_fail(c, n->keys[i], "invalid name \"%s\" (1 to 63 characters)", name);
        for (const char *p = name; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                  *p == '-'))
                return torii_dctx_fail(c, n->keys[i], "invalid name \"%s\" (letters, digits, '_', '-')", name);
        if (v->type == TORII_CN_STR ? !torii_parse_size(v->text, &size)
                                    : !(v->type == TORII_CN_INT && v->v.i > 0 && (size = (uint64_t)v->v.i)))
            return torii_dctx_fail(c, v, "must be a size such as 10m");
        if (size < 32 * 1024 || size > (64ull << 30))
            return torii_dctx_fail(c, v, "must be between 32k and 64g, got %llu bytes", (unsigned long long)size);
        conf->shdict_names[i] = torii_pstrdup(c->pool, name);
        conf->shdict_sizes[i] = size;
        torii_dctx_pop(c, mark);
    }
    conf->nshdicts = (uint32_t)n->n;
    return true;
}

static bool one_include(torii_dctx_t *c, const torii_cnode_t *n, size_t i, void *arg)
{
    ((char **)arg)[i] = torii_pstrndup(c->pool, n->text, n->len);
    return true;
}

static bool dec_include(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_loader_t *L = c->user;
    size_t count;
    (void)dst, (void)f;
    L->includes = torii_palloc(c->pool, sizeof(char *) * list_len(n));
    if (!each_string(c, n, one_include, L->includes, &count))
        return false;
    L->nincludes = (uint32_t)count;
    return true;
}

#define F(name, fn, type, member, lo, hi)                                                                              \
    {                                                                                                                  \
        name, fn, offsetof(type, member), lo, hi, NULL, false                                                          \
    }

static const torii_field_t log_fields[] = {
    {"level", dec_level, offsetof(torii_config_t, log_level), 0, 0, NULL, false},
    F("error", torii_dec_string, torii_config_t, error_log, 1, 0),
    F("access", torii_dec_string, torii_config_t, access_log, 1, 0),
    {0},
};

static const torii_field_t lua_fields[] = {
    F("cpu_budget", torii_dec_duration, torii_config_t, lua_cpu_budget_ms, 0, 3600 * SEC),
    F("memory_limit", torii_dec_size, torii_config_t, lua_memory_limit, 0, (int64_t)1 << 40),
    {0},
};

static const torii_field_t client_fields[] = {
    F("header_timeout", torii_dec_duration, torii_client_conf_t, header_timeout_ms, 1, DAY),
    F("body_timeout", torii_dec_duration, torii_client_conf_t, body_timeout_ms, 1, DAY),
    F("send_timeout", torii_dec_duration, torii_client_conf_t, send_timeout_ms, 1, DAY),
    F("keepalive_timeout", torii_dec_duration, torii_client_conf_t, keepalive_timeout_ms, 0, DAY),
    F("keepalive_requests", torii_dec_uint, torii_client_conf_t, keepalive_requests, 1, 1000000000),
    F("max_header_size", torii_dec_size32, torii_client_conf_t, max_header_size, 1024, 1 << 20),
    F("max_headers", torii_dec_uint, torii_client_conf_t, max_headers, 1, 10000),
    F("max_body_size", torii_dec_size, torii_client_conf_t, max_body_size, 0, 1LL << 62),
    F("max_connections", torii_dec_uint, torii_client_conf_t, max_connections, 1, 1000000),
    {0},
};

const torii_field_t torii_timeout_fields[] = {
    F("connect", torii_dec_duration, torii_timeouts_t, connect_ms, 1, DAY),
    F("send", torii_dec_duration, torii_timeouts_t, send_ms, 1, DAY),
    F("read", torii_dec_duration, torii_timeouts_t, read_ms, 1, DAY),
    {0},
};

static const torii_field_t pool_fields[] = {
    F("size", torii_dec_uint, torii_proxy_conf_t, pool_size, 0, 100000),
    F("idle_timeout", torii_dec_duration, torii_proxy_conf_t, pool_idle_timeout_ms, 1, DAY),
    F("requests", torii_dec_uint, torii_proxy_conf_t, pool_requests, 1, 1000000000),
    {0},
};

static const torii_field_t proxy_fields[] = {
    {"timeout", torii_dec_object, offsetof(torii_proxy_conf_t, timeout), 0, 0, torii_timeout_fields, false},
    {"keepalive_pool", torii_dec_object, 0, 0, 0, pool_fields, false},
    F("buffer_size", torii_dec_size32, torii_proxy_conf_t, buffer_size, 4096, 16 << 20),
    {0},
};

static const torii_field_t top_fields[] = {
    {"listen", dec_listen, 0, 0, 0, NULL, true},
    {"workers", dec_workers, offsetof(torii_config_t, workers), 0, 0, NULL, false},
    F("pid_file", torii_dec_string, torii_config_t, pid_file, 1, 0),
    {"log", torii_dec_object, 0, 0, 0, log_fields, false},
    {"lua", torii_dec_object, 0, 0, 0, lua_fields, false},
    F("shutdown_timeout", torii_dec_duration, torii_config_t, shutdown_timeout_ms, 0, DAY),
    F("watch", torii_dec_bool, torii_config_t, watch, 0, 0),
    F("io_uring", torii_dec_bool, torii_config_t, io_uring, 0, 0),
    {"trusted_proxies", dec_trusted, 0, 0, 0, NULL, false},
    {"client", torii_dec_object, offsetof(torii_config_t, client), 0, 0, client_fields, false},
    {"proxy", torii_dec_object, offsetof(torii_config_t, proxy), 0, 0, proxy_fields, false},
    {"include", dec_include, 0, 0, 0, NULL, false},
    {"routes", torii_dec_routes, 0, 0, 0, NULL, false},
    {"plugin_dirs", dec_plugin_dirs, 0, 0, 0, NULL, false},
    {"global_rules", dec_global_rules, 0, 0, 0, NULL, false},
    {"consumers", dec_consumers, 0, 0, 0, NULL, false},
    {"shared_dicts", dec_shared_dicts, 0, 0, 0, NULL, false},
    {"services", torii_dec_services, 0, 0, 0, NULL, false},
    {"upstreams", torii_dec_upstreams, 0, 0, 0, NULL, false},
    {"resolver", torii_dec_resolver, offsetof(torii_config_t, resolver), 0, 0, NULL, false},
    {0},
};

/* What an included file may declare. */
static const torii_field_t include_fields[] = {
    {"routes", torii_dec_routes, 0, 0, 0, NULL, false},
    {"upstreams", torii_dec_upstreams, 0, 0, 0, NULL, false},
    {0},
};

static void set_defaults(torii_config_t *conf)
{
    conf->workers = 1;
    conf->io_uring = true;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0)
        conf->workers = (uint32_t)cpus;
    conf->pid_file = "logs/torii.pid";
    conf->error_log = "logs/error.log";
    conf->access_log = "logs/access.log";
    conf->log_level = TORII_LOG_INFO;
    conf->shutdown_timeout_ms = 30 * SEC;
    conf->lua_cpu_budget_ms = 1 * SEC;
    conf->lua_memory_limit = 512 << 20;
    conf->client = (torii_client_conf_t){
        .header_timeout_ms = 10 * SEC,
        .body_timeout_ms = 60 * SEC,
        .send_timeout_ms = 60 * SEC,
        .keepalive_timeout_ms = 75 * SEC,
        .keepalive_requests = 1000,
        .max_header_size = 32 * 1024,
        .max_headers = 100,
        .max_body_size = 1024 * 1024,
        .max_connections = 10000,
    };
    conf->proxy = (torii_proxy_conf_t){
        .timeout = {.connect_ms = 5 * SEC, .send_ms = 60 * SEC, .read_ms = 60 * SEC},
        .pool_size = 64,
        .pool_idle_timeout_ms = 60 * SEC,
        .pool_requests = 1000,
        .buffer_size = 64 * 1024,
    };
    conf->resolver = (torii_dns_policy_t){
        .servers = {.timeout_ms = 2 * SEC, .retries = 2},
        .min_ttl_ms = 1 * SEC,
        .max_ttl_ms = 3600 * SEC,
        .stale_ms = 3600 * SEC,
    };
}

/* Paths in the configuration are relative to the prefix. */
static char *prefixed(torii_pool_t *pool, const char *prefix, const char *path)
{
    size_t n;
    char *out;
    if (path[0] == '/' || strcmp(path, "stderr") == 0 || strcmp(path, "stdout") == 0 || strcmp(path, "off") == 0)
        return torii_pstrdup(pool, path);
    n = strlen(prefix) + strlen(path) + 2;
    out = torii_palloc(pool, n);
    snprintf(out, n, "%s/%s", prefix, path);
    return out;
}

static bool load_includes(torii_dctx_t *c, const char *dir)
{
    torii_loader_t *L = c->user;
    L->conf->include_dirs = torii_palloc(c->pool, sizeof(char *) * (L->nincludes + 1));
    for (uint32_t i = 0; i < L->nincludes; i++) {
        char pattern[4096];
        glob_t g;
        int rc;
        if (L->includes[i][0] == '/')
            snprintf(pattern, sizeof pattern, "%s", L->includes[i]);
        else
            snprintf(pattern, sizeof pattern, "%s/%s", dir, L->includes[i]);
        {
            char *d = torii_pstrdup(c->pool, pattern);
            L->conf->include_dirs[L->conf->ninclude_dirs++] = dirname(d);
        }
        rc = glob(pattern, 0, NULL, &g);
        if (rc == GLOB_NOMATCH)
            continue; /* an empty conf.d/ is fine */
        if (rc != 0) {
            snprintf(c->err, c->errlen, "%s: include \"%s\": cannot read", L->conf->path, L->includes[i]);
            return false;
        }
        for (size_t k = 0; k < g.gl_pathc; k++) {
            torii_cnode_t *root;
            bool ok = torii_cnode_load_file(c->pool, g.gl_pathv[k], &root, c->err, c->errlen);
            torii_dctx_pop(c, 0);
            if (ok && root)
                ok = torii_decode_object(c, root, L->conf, include_fields);
            if (!ok) {
                globfree(&g);
                return false;
            }
        }
        globfree(&g);
    }
    return true;
}

static torii_config_t *load_tree(torii_pool_t *pool, const char *path, torii_cnode_t *root, const char *prefix,
                                 char *err, size_t errlen)
{
    torii_config_t *conf = torii_palloc(pool, sizeof *conf);
    torii_loader_t L = {.conf = conf};
    torii_dctx_t c = {.pool = pool, .err = err, .errlen = errlen, .user = &L};
    char *dircopy;
    const char *dir;
    conf->pool = pool;
    conf->path = torii_pstrdup(pool, path);
    conf->prefix = torii_pstrdup(pool, prefix);
    set_defaults(conf);
    if (!root) {
        snprintf(err, errlen, "%s: the configuration is empty (it needs at least \"listen\")", path);
        return NULL;
    }
    if (!torii_decode_object(&c, root, conf, top_fields))
        return NULL;
    dircopy = torii_pstrdup(pool, path);
    dir = dirname(dircopy);
    if (!load_includes(&c, dir) || !torii_routes_finish(&c, conf) || !torii_upstreams_resolve(&c, conf))
        return NULL;
    for (uint32_t i = 0; i < conf->nplugin_dirs; i++)
        conf->plugin_dirs[i] = prefixed(pool, dir, conf->plugin_dirs[i]);
    conf->pid_file = prefixed(pool, prefix, conf->pid_file);
    conf->error_log = prefixed(pool, prefix, conf->error_log);
    conf->access_log = prefixed(pool, prefix, conf->access_log);
    return conf;
}

torii_config_t *torii_config_load(const char *path, const char *prefix, char *err, size_t errlen)
{
    torii_pool_t *pool = torii_pool_create(16384);
    torii_cnode_t *root;
    torii_config_t *conf = NULL;
    if (torii_cnode_load_file(pool, path, &root, err, errlen))
        conf = load_tree(pool, path, root, prefix, err, errlen);
    if (!conf)
        torii_pool_destroy(pool);
    return conf;
}

torii_config_t *torii_config_load_string(const char *name, const char *text, const char *prefix, char *err,
                                         size_t errlen)
{
    torii_pool_t *pool = torii_pool_create(16384);
    torii_cnode_t *root;
    torii_config_t *conf = NULL;
    if (torii_cnode_load_string(pool, name, text, strlen(text), &root, err, errlen))
        conf = load_tree(pool, name, root, prefix, err, errlen);
    if (!conf)
        torii_pool_destroy(pool);
    return conf;
}

void torii_config_free(torii_config_t *conf)
{
    if (conf)
        torii_pool_destroy(conf->pool);
}
