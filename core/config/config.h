/*
 * config.h — the checked, typed configuration: process settings and the
 * routes, loaded from conf/torii.yaml (YAML or JSON) and the files it
 * includes. Every key is checked; the first problem is reported as
 * `file:line: path.to.key: reason` and nothing is applied.
 *
 * A configuration lives in one arena (`pool`) and is freed as a unit.
 */
#ifndef TORII_CONFIG_H
#define TORII_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"
#include "base/cidr.h"
#include "base/pool.h"
#include "event/dns_cache.h"

typedef struct {
    uint32_t connect_ms;
    uint32_t send_ms;
    uint32_t read_ms;
} torii_timeouts_t;

typedef struct {
    char *text; /* "host:port" */
    char *host;
    uint16_t port;
    torii_addr_t addr;  /* resolved at load */
    char addr_text[64]; /* the resolved address, for logs: "127.0.0.1:9000" */
    uint32_t weight;    /* default 1; 0: never chosen */
    char *id;           /* optional name of the node */
    char *retry_to;     /* optional: where its retries go (a node id of its upstream, or an upstream id) */
    int retry_node;     /* retry_to as a node index of the same upstream, or -1 */
    struct torii_upstream_conf_s *retry_up; /* retry_to as an upstream, or NULL */
    torii_dns_name_t *dns; /* host is a name: its current addresses (addr is the first, at load); NULL: a literal */
} torii_node_conf_t;

/* What a failed try may be retried on (retry.on). */
enum {
    TORII_RETRY_CONNECT = 1, /* connect_error: refused, unreachable */
    TORII_RETRY_TIMEOUT = 2, /* timeout: connect, send or read */
    TORII_RETRY_ERROR = 4,   /* error: the connection reset or closed before a response */
    TORII_RETRY_5XX = 8,     /* 5xx: any 5xx status */
};

/* An upstream's `retry:`. */
typedef struct {
    uint32_t count; /* tries after the first; 0: no retries */
    uint32_t on;    /* TORII_RETRY_* */
    uint16_t *statuses;
    uint32_t nstatuses;
    char *to; /* an upstream id: where retries go */
    struct torii_upstream_conf_s *to_up;
    uint32_t per_try_timeout_ms; /* 0: the route's read timeout */
    uint32_t timeout_ms;         /* every try together, from the first; 0: none */
    uint32_t backoff_ms;         /* before the first retry; doubles, with jitter */
    uint32_t backoff_max_ms;
    bool non_idempotent;     /* retry POST, PATCH... too */
    uint64_t body_limit;     /* request bodies up to this are kept for a retry (0: none retried) */
    uint32_t budget_percent; /* retries at most this share of recent requests... */
    uint32_t budget_min;     /* ...or this many per second, whichever is more */
} torii_retry_conf_t;

struct torii_expr_s;
struct torii_expr_var_s;
struct torii_cnode_s;

/* What chash hashes (upstream `hash_on`). */
enum { TORII_HASH_VARS, TORII_HASH_HEADER, TORII_HASH_COOKIE, TORII_HASH_CONSUMER };

/* An upstream: declared in `upstreams:` (id set), or inline in a route or
 * service. Its index is its balancer's in each generation. */
typedef struct torii_upstream_conf_s {
    char *id;
    const char *type; /* "roundrobin", "least_conn", "chash", "ewma" */
    uint8_t hash_on;
    const struct torii_cnode_s *key;
    struct torii_expr_var_s *key_var; /* chash, hash_on vars/header/cookie */
    torii_node_conf_t *nodes;
    uint32_t nnodes;
    torii_retry_conf_t retry;
    struct {
        bool on;                /* checks.passive given */
        uint32_t http_failures; /* consecutive tries answered one of statuses (0: not counted) */
        uint32_t tcp_failures;  /* ... refused, reset, closed */
        uint32_t timeouts;      /* ... timed out */
        uint16_t *statuses;
        uint32_t nstatuses;
        uint32_t cooldown_ms; /* down this long, then tried again */
    } passive;
    struct {
        bool on;    /* checks.active given */
        bool tcp;   /* type tcp: a connect is the whole probe */
        char *path; /* http_path, default "/" */
        char *host; /* Host header, default the node's address */
        uint32_t timeout_ms;
        uint32_t healthy_interval_ms, healthy_successes;
        uint16_t *healthy_statuses;
        uint32_t nhealthy_statuses;
        uint32_t unhealthy_interval_ms, http_failures, tcp_failures, timeouts;
    } active;
    bool all_down_fail;       /* all_down: fail (a 503 at once), else try a node anyway */
    uint32_t max_connections; /* circuit_breaker, per worker (0: no cap): tries in flight */
    uint32_t max_pending;     /* requests waiting to retry */
    uint32_t max_retries;     /* retries in flight */
    uint32_t index;
    bool declared; /* in upstreams: */
    const char *file;
    int line;
} torii_upstream_conf_t;

typedef struct {
    char *id;
    char *name;
    char **uris;
    uint32_t nuris;
    char **hosts; /* lowercased; "*.example.com" for a suffix */
    uint32_t nhosts;
    uint32_t methods; /* bit (1 << torii_method_t) per method; 0 = any */
    torii_cidr_t *remote_addrs;
    uint32_t nremote_addrs;
    struct torii_expr_s *vars;           /* NULL = no conditions */
    int32_t priority;                    /* higher first, default 0 */
    uint32_t order;                      /* declaration order across all files */
    const struct torii_cnode_s *plugins; /* `plugins:` map, checked by the Lua runtime */
    char *service_id;                    /* `service_id:`, or NULL */
    char *upstream_id;                   /* `upstream_id:`, or NULL */
    torii_upstream_conf_t *upstream;     /* its upstream (nodes below are its nodes) */
    uint32_t service;                    /* its index in services + 1 (0: none) */
    torii_node_conf_t *nodes;
    uint32_t nnodes;
    torii_timeouts_t timeout; /* defaults filled in from proxy.timeout */
    uint64_t max_body_size;   /* default: client.max_body_size */
    const char *file;
    int line;
} torii_route_conf_t;

typedef struct {
    char *text;
    torii_addr_t addr;
} torii_listen_conf_t;

typedef struct {
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;
    uint32_t send_timeout_ms;
    uint32_t keepalive_timeout_ms;
    uint32_t keepalive_requests;
    uint32_t max_header_size;
    uint32_t max_headers;
    uint64_t max_body_size;
    uint32_t max_connections; /* per worker */
} torii_client_conf_t;

typedef struct {
    torii_timeouts_t timeout;
    uint32_t pool_size; /* idle keep-alive connections kept per node */
    uint32_t pool_idle_timeout_ms;
    uint32_t pool_requests; /* requests per upstream connection */
    uint32_t buffer_size;   /* bytes in flight per direction before pausing */
} torii_proxy_conf_t;

typedef struct {
    torii_pool_t *pool;
    char *path; /* the main file */
    char *prefix;
    torii_listen_conf_t *listen;
    uint32_t nlisten;
    uint32_t workers;
    char *pid_file;
    char *error_log;
    int log_level;
    char *access_log; /* "off" disables */
    uint32_t shutdown_timeout_ms;
    uint32_t lua_cpu_budget_ms; /* `lua.cpu_budget`: a plugin phase's CPU time (0: none) */
    uint64_t lua_memory_limit;  /* `lua.memory_limit`: a worker's Lua VM (0: none) */
    torii_cidr_t *trusted_proxies;
    uint32_t ntrusted;
    torii_client_conf_t client;
    torii_proxy_conf_t proxy;
    torii_route_conf_t *routes;
    uint32_t nroutes;
    char **plugin_dirs; /* besides the built-in plugins/, absolute */
    uint32_t nplugin_dirs;
    const struct torii_cnode_s *global_rules; /* `global_rules:` list, or NULL */
    const struct torii_cnode_s *consumers;    /* `consumers:` list, or NULL */
    /* Services: what routes share (upstream, plugins), in the route shape
     * (id, nodes, plugins, file, line; the rest unused). */
    torii_route_conf_t *services;
    uint32_t nservices;
    torii_upstream_conf_t **upstreams; /* declared and inline ones, by index */
    uint32_t nupstreams, upstreams_cap;
    bool watch;          /* reload when a configuration or plugin file changes */
    bool io_uring;       /* socket calls in rounds through io_uring, where the kernel allows */
    char **include_dirs; /* where the include patterns look (for the watcher) */
    uint32_t ninclude_dirs;
    char **shdict_names; /* `shared_dicts: {name: size}` */
    uint64_t *shdict_sizes;
    uint32_t nshdicts;
    torii_dns_policy_t resolver; /* `resolver:`; nameservers from /etc/resolv.conf when not given */
} torii_config_t;

/*
 * Load and check the configuration at `path`; relative paths inside it
 * (logs, pid file) are taken from `prefix`, include patterns from the main
 * file's directory. Returns NULL with the error in err.
 */
torii_config_t *torii_config_load(const char *path, const char *prefix, char *err, size_t errlen);

/* Same, from a string (for tests); includes are resolved from `dir`. */
torii_config_t *torii_config_load_string(const char *name, const char *text, const char *prefix, char *err,
                                         size_t errlen);

void torii_config_free(torii_config_t *conf);

/* The address for the node's next try: its IP literal's, or the next of
 * its host name's current addresses (they take turns). False when the name
 * has none now (it stopped resolving longer than resolver.stale ago). */
bool torii_node_addr(const torii_node_conf_t *node, torii_addr_t *out);

/* Format a duration for messages: "500ms", "3s", "2m". */
void torii_format_duration(uint64_t ms, char *out, size_t outlen);

#endif
