/* test_config.c — the configuration loader (core/config). */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include "base/common.h"
#include "base/log.h"
#include "config/config.h"

static char err[1024];

static torii_config_t *load(const char *text)
{
    err[0] = '\0';
    return torii_config_load_string("t.yaml", text, "/prefix", err, sizeof err);
}

/* Loading fails with exactly this message. */
static int fails_with(const char *text, const char *message)
{
    torii_config_t *c = load(text);
    if (c || strcmp(err, message) != 0) {
        fprintf(stderr, "  config:\n%s\n  got: %s\n  expected: %s\n", text, c ? "(loaded)" : err, message);
        torii_config_free(c);
        return 0;
    }
    return 1;
}

#define MIN "listen: 127.0.0.1:8080\n"

TEST(minimal_and_defaults)
{
    torii_config_t *c = load(MIN);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_INT(c->nlisten, 1);
    CHECK_STR(c->listen[0].text, "127.0.0.1:8080");
    CHECK_INT(c->client.header_timeout_ms, 10000);
    CHECK_INT(c->client.max_header_size, 32768);
    CHECK_INT(c->client.max_body_size, 1048576);
    CHECK_INT(c->proxy.timeout.connect_ms, 5000);
    CHECK_INT(c->proxy.pool_size, 64);
    CHECK_STR(c->pid_file, "/prefix/logs/torii.pid");
    CHECK_STR(c->error_log, "/prefix/logs/error.log");
    CHECK_INT(c->log_level, TORII_LOG_INFO);
    CHECK_INT(c->nroutes, 0);
    torii_config_free(c);
}

TEST(full)
{
    torii_config_t *c =
        load("listen: [\"127.0.0.1:8080\", \"[::1]:8081\", \"9090\"]\n"
             "workers: 3\n"
             "log: {level: warn, error: stderr, access: \"off\"}\n"
             "trusted_proxies: [10.0.0.0/8, \"::1\"]\n"
             "client:\n  header_timeout: 500ms\n  max_body_size: 2m\n  keepalive_timeout: 0\n"
             "proxy:\n  timeout: {connect: 1.5, read: 2m}\n  keepalive_pool: {size: 0}\n"
             "  buffer_size: 16k\n"
             "routes:\n"
             "  - id: a\n    uri: /a/*\n    upstream: {nodes: [\"127.0.0.1:9000\", \"localhost:9001\"]}\n"
             "    timeout: {read: 3s}\n    max_body_size: 10m\n"
             "  - id: b\n    uris: [/b, /c*]\n    upstream:\n      nodes:\n        - 127.0.0.1:9002\n");
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_INT(c->nlisten, 3);
    CHECK_INT(c->workers, 3);
    CHECK_INT(c->log_level, TORII_LOG_WARN);
    CHECK_STR(c->error_log, "stderr");
    CHECK_STR(c->access_log, "off");
    CHECK_INT(c->ntrusted, 2);
    CHECK_INT(c->client.header_timeout_ms, 500);
    CHECK_INT(c->client.max_body_size, 2 << 20);
    CHECK_INT(c->client.keepalive_timeout_ms, 0);
    CHECK_INT(c->proxy.timeout.connect_ms, 1500);
    CHECK_INT(c->proxy.timeout.read_ms, 120000);
    CHECK_INT(c->proxy.timeout.send_ms, 60000);
    CHECK_INT(c->proxy.pool_size, 0);
    CHECK_INT(c->proxy.buffer_size, 16384);
    CHECK_INT(c->nroutes, 2);
    CHECK_STR(c->routes[0].id, "a");
    CHECK_INT(c->routes[0].nnodes, 2);
    CHECK_INT(c->routes[0].nodes[1].port, 9001);
    CHECK_INT(c->routes[0].timeout.read_ms, 3000);
    CHECK_INT(c->routes[0].timeout.connect_ms, 1500); /* inherited */
    CHECK_INT(c->routes[0].max_body_size, 10 << 20);
    CHECK_INT(c->routes[1].nuris, 2);
    CHECK_STR(c->routes[1].uris[1], "/c*");
    CHECK_INT(c->routes[1].max_body_size, 2 << 20); /* inherited */
    CHECK_INT(c->routes[1].line, 19);
    torii_config_free(c);
}

TEST(json_config)
{
    torii_config_t *c =
        load("{\n\t\"listen\": [\"127.0.0.1:8080\"],\n\t\"workers\": 1,\n"
             "\t\"routes\": [{\"id\": \"x\", \"uri\": \"/x\", \"upstream\": {\"nodes\": [\"127.0.0.1:1\"]}}]\n}\n");
    CHECK(c != NULL);
    if (c)
        CHECK_INT(c->nroutes, 1);
    torii_config_free(c);
}

TEST(unknown_keys)
{
    CHECK(fails_with(MIN "bogus: 1\n", "t.yaml:2: bogus: unknown key"));
    CHECK(fails_with(MIN "client:\n  header_timout: 1s\n", "t.yaml:3: client.header_timout: unknown key"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"], colour: x}\n",
                     "t.yaml:5: routes[0].upstream.colour: unknown key"));
}

TEST(wrong_types)
{
    CHECK(fails_with(MIN "client: 5\n", "t.yaml:2: client: must be a map, got an integer"));
    CHECK(fails_with(MIN "client: {max_headers: \"10\"}\n",
                     "t.yaml:2: client.max_headers: must be an integer, got a string"));
    CHECK(fails_with(MIN "routes: {id: a}\n", "t.yaml:2: routes: must be a list, got a map"));
    CHECK(fails_with("listen: 8080\n", "t.yaml:1: listen: must be a string or a list of strings"));
    CHECK(fails_with(MIN "workers: on\n", "t.yaml:2: workers: must be \"auto\" or a number of workers"));
    CHECK(fails_with(MIN "log: {level: loud}\n",
                     "t.yaml:2: log.level: must be one of debug, info, notice, warn, error, crit, alert, emerg"));
}

TEST(ranges_and_units)
{
    CHECK(fails_with(MIN "workers: 0\n", "t.yaml:2: workers: must be between 1 and 256, got 0"));
    CHECK(fails_with(MIN "client: {max_headers: 0}\n", "t.yaml:2: client.max_headers: must be >= 1, got 0"));
    CHECK(fails_with(MIN "client: {max_header_size: 10}\n",
                     "t.yaml:2: client.max_header_size: must be at least 1024 bytes, got 10"));
    CHECK(fails_with(MIN "client: {header_timeout: 5 parsecs}\n",
                     "t.yaml:2: client.header_timeout: invalid duration \"5 parsecs\" (use 500ms, 3s, 2m, 1h)"));
    CHECK(fails_with(MIN "client: {header_timeout: 0}\n",
                     "t.yaml:2: client.header_timeout: must be at least 1ms, got 0ms"));
    CHECK(fails_with(MIN "client: {header_timeout: 2d}\n",
                     "t.yaml:2: client.header_timeout: must be at most 1d, got 2d"));
    CHECK(fails_with(MIN "client: {max_body_size: 1x}\n",
                     "t.yaml:2: client.max_body_size: invalid size \"1x\" (use bytes or 32k, 1m, 1g)"));
    CHECK(fails_with(MIN "proxy: {keepalive_pool: {size: -1}}\n",
                     "t.yaml:2: proxy.keepalive_pool.size: must be >= 0, got -1"));
}

TEST(listen_errors)
{
    CHECK(fails_with("listen: 70000\n", "t.yaml:1: listen: must be a string or a list of strings"));
    CHECK(fails_with("listen: \"70000\"\n", "t.yaml:1: listen: invalid address \"70000\": port must be 1..65535"));
    CHECK(fails_with("listen: \"::1:80\"\n", "t.yaml:1: listen: invalid address \"::1:80\": expected host:port"));
    CHECK(fails_with("listen: []\n", "t.yaml:1: listen: must list at least one address"));
    CHECK(fails_with("workers: 1\n", "t.yaml:1: (top level): missing required key \"listen\""));
    CHECK(fails_with("", "t.yaml: the configuration is empty (it needs at least \"listen\")"));
}

TEST(route_errors)
{
    CHECK(fails_with(MIN "routes:\n  - uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
                     "t.yaml:3: routes[0]: missing required key \"id\""));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
                     "t.yaml:3: routes[0]: missing required key \"uri\" (or \"uris\")"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    uris: [/b]\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
                     "t.yaml:3: routes[0]: give either \"uri\" or \"uris\", not both"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
                     "t.yaml:4: routes[0].uri: must start with \"/\", got \"a\""));
    CHECK(fails_with(
        MIN "routes:\n  - id: a\n    uris: [/ok, /a*b]\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        "t.yaml:4: routes[0].uris[1]: invalid path pattern \"/a*b\": a named '*' must start a segment, as in "
        "/files/*path"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: []}\n",
                     "t.yaml:5: routes[0].upstream.nodes: must list at least one node"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [localhost]}\n",
                     "t.yaml:5: routes[0].upstream.nodes[0]: invalid node \"localhost\": expected host:port"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    upstream:\n      nodes:\n        - 127.0.0.1:1\n"
                         "        - 127.0.0.1:70000\n",
                     "t.yaml:8: routes[0].upstream.nodes[1]: invalid node \"127.0.0.1:70000\": port must be 1..65535"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n",
                     "t.yaml:3: routes[0]: missing required key \"upstream\" (or \"upstream_id\" or \"service_id\")"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n"
                         "  - id: a\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
                     "t.yaml:6: routes: duplicate route id \"a\" (first declared at t.yaml:3)"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n"
                         "    timeout: {read: 0}\n",
                     "t.yaml:6: routes[0].timeout.read: must be at least 1ms, got 0ms"));
}

TEST(yaml_errors)
{
    CHECK(fails_with(MIN "client: {a: 1\n", "t.yaml:3: did not find expected ',' or '}' while parsing a flow mapping"));
    CHECK(fails_with(MIN "workers: 1\nworkers: 2\n", "t.yaml:3: workers: duplicate key"));
    CHECK(fails_with(MIN "routes:\n  - id: a\n    id: b\n", "t.yaml:4: routes[0].id: duplicate key"));
    CHECK(fails_with(MIN "---\nlisten: 127.0.0.1:1\n", "t.yaml:2: more than one document in the file"));
}

TEST(yaml_anchors_and_limits)
{
    /* an alias shares its anchor's node */
    torii_config_t *c = load(MIN "upstreams:\n  - &u {id: a, nodes: [\"127.0.0.1:1\"]}\n"
                                 "routes:\n  - {id: r1, uri: /a, upstream: {nodes: &n [\"127.0.0.1:2\"]}}\n"
                                 "  - {id: r2, uri: /b, upstream: {nodes: *n}}\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->nroutes, 2);
        CHECK_STR(c->routes[1].nodes[0].text, "127.0.0.1:2");
        torii_config_free(c);
    }
    CHECK(fails_with(MIN "routes: *nope\n", "t.yaml:2: routes: alias to an unknown anchor"));
    /* a cycle: the anchor is not known until its node is complete */
    CHECK(fails_with(MIN "x: &a [*a]\n", "t.yaml:2: x[0]: alias to an unknown anchor"));
    /* a billion laughs stops at the node count, not at memory */
    CHECK(fails_with(MIN "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                         "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
                     "t.yaml:8: g[1]: document too large (alias expansion?)"));
    CHECK(fails_with(MIN "routes:\n  - {id: a, id: b}\n", "t.yaml:3: routes[0].id: duplicate key"));
    CHECK(fails_with(MIN "? [a]\n: 1\n", "t.yaml:2: map keys must be strings"));
    CHECK(fails_with(MIN "---\nworkers: 1\n", "t.yaml:2: more than one document in the file"));
}

TEST(yaml12_scalars)
{
    /* `on`/`yes` stay strings, so a key named `on` is a key, quoted
     * numbers are strings, 0x numbers are integers. */
    CHECK(fails_with(MIN "client: {max_headers: yes}\n",
                     "t.yaml:2: client.max_headers: must be an integer, got a string"));
    torii_config_t *c = load(MIN "client: {max_headers: 0x20}\n");
    CHECK(c && c->client.max_headers == 32);
    torii_config_free(c);
    CHECK(fails_with(MIN "client: {max_headers: ~}\n", "t.yaml:2: client.max_headers: must be an integer, got null"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

TEST(includes)
{
    char dir[] = "/tmp/torii-unit-XXXXXX", main_path[256], path[256];
    torii_config_t *c;
    if (!mkdtemp(dir))
        return;
    snprintf(path, sizeof path, "%s/conf.d", dir);
    mkdir(path, 0755);
    snprintf(main_path, sizeof main_path, "%s/torii.yaml", dir);
    write_file(main_path, MIN "include: [conf.d/*.yaml, missing/*.yaml]\nroutes:\n  - id: main\n    uri: /m\n"
                              "    upstream: {nodes: [\"127.0.0.1:1\"]}\n");
    snprintf(path, sizeof path, "%s/conf.d/b.yaml", dir);
    write_file(path, "routes:\n  - id: b\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n");
    snprintf(path, sizeof path, "%s/conf.d/a.yaml", dir);
    write_file(path, "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n");
    c = torii_config_load(main_path, dir, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->nroutes, 3);
        CHECK_STR(c->routes[1].id, "a"); /* files in name order */
        CHECK_STR(c->routes[2].id, "b");
    }
    torii_config_free(c);
    /* An included file may only hold collections such as routes. */
    write_file(path, "workers: 2\n");
    c = torii_config_load(main_path, dir, err, sizeof err);
    CHECK(c == NULL && strstr(err, "conf.d/a.yaml:1: workers: unknown key"));
    /* Duplicate ids across files name both places. */
    write_file(path, "routes:\n  - id: main\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n");
    c = torii_config_load(main_path, dir, err, sizeof err);
    CHECK(c == NULL && strstr(err, "conf.d/a.yaml:2: routes: duplicate route id \"main\" (first declared at "));
    unlink(path);
    snprintf(path, sizeof path, "%s/conf.d/b.yaml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/conf.d", dir);
    rmdir(path);
    unlink(main_path);
    rmdir(dir);
}

TEST(missing_file)
{
    torii_config_t *c = torii_config_load("/nonexistent/torii.yaml", "/", err, sizeof err);
    CHECK(c == NULL);
    CHECK_STR(err, "/nonexistent/torii.yaml: cannot open: No such file or directory");
}

TEST(resolver)
{
    char text[64];
    torii_config_t *c = load(MIN "resolver:\n  nameservers: [\"10.0.0.2\", \"127.0.0.1:5353\", \"[::1]:53\"]\n"
                                 "  timeout: 500ms\n  retries: 0\n  valid: 30s\n  min_ttl: 2s\n  stale: 0s\n"
                                 "upstreams:\n  - id: u\n    nodes: [\"10.0.0.9:80\", \"localhost:81\"]\n");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_INT(c->resolver.servers.nns, 3);
    torii_addr_format((struct sockaddr *)&c->resolver.servers.ns[0].sa, text, sizeof text);
    CHECK_STR(text, "10.0.0.2:53");
    torii_addr_format((struct sockaddr *)&c->resolver.servers.ns[1].sa, text, sizeof text);
    CHECK_STR(text, "127.0.0.1:5353");
    CHECK_INT(c->resolver.servers.timeout_ms, 500);
    CHECK_INT(c->resolver.servers.retries, 0);
    CHECK_INT(c->resolver.valid_ms, 30000);
    CHECK_INT(c->resolver.min_ttl_ms, 2000);
    CHECK_INT(c->resolver.max_ttl_ms, 3600000);
    CHECK_INT(c->resolver.stale_ms, 0);
    /* IP literals need no resolver */
    CHECK(c->upstreams[0]->nodes[0].dns == NULL && c->upstreams[0]->nodes[1].dns == NULL);
    CHECK_STR(c->upstreams[0]->nodes[1].addr_text, "127.0.0.1:81");
    torii_config_free(c);
    c = load(MIN);
    CHECK(c && c->resolver.servers.nns == 0 && c->resolver.servers.timeout_ms == 2000 &&
          c->resolver.servers.retries == 2 && c->resolver.min_ttl_ms == 1000 && c->resolver.stale_ms == 3600000);
    torii_config_free(c);
    CHECK(fails_with(MIN "resolver: {max_ttl: 0s}\n", "t.yaml:2: resolver.max_ttl: must be at least 1s, got 0ms"));
    CHECK(fails_with(MIN "upstreams:\n  - id: u\n    nodes: [{host: \"a..b\", port: 1}]\n",
                     "t.yaml:4: upstreams[0].nodes[0]: invalid host \"a..b\": invalid host name"));
}

int main(void)
{
    RUN(minimal_and_defaults);
    RUN(full);
    RUN(json_config);
    RUN(unknown_keys);
    RUN(wrong_types);
    RUN(ranges_and_units);
    RUN(listen_errors);
    RUN(route_errors);
    RUN(yaml_errors);
    RUN(yaml_anchors_and_limits);
    RUN(yaml12_scalars);
    RUN(includes);
    RUN(missing_file);
    RUN(resolver);
    return unit_report("test_config");
}
