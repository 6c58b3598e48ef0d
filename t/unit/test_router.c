/* test_router.c — path normalisation, patterns, and the router's rules
 * (core/router): every pattern kind, the precedence table, hosts,
 * methods, client addresses, incremental changes. */
#include "unit.h"

#include <stdlib.h>

#include "base/cidr.h"
#include "router/path.h"
#include "router/router.h"

/* ---- normalisation ---- */

static const char *norm(const char *in)
{
    static char out[512];
    const char *why;
    int n = torii_path_normalise(torii_str(in, strlen(in)), out, &why);
    if (n < 0)
        return why;
    out[n] = '\0';
    return out;
}

TEST(normalise_paths)
{
    CHECK_STR(norm("/"), "/");
    CHECK_STR(norm("/a/b"), "/a/b");
    CHECK_STR(norm("/a/b/"), "/a/b/");
    CHECK_STR(norm("//a//b"), "//a//b"); /* slashes are not merged */
    CHECK_STR(norm("/%61%62c"), "/abc");
    CHECK_STR(norm("/a%2fb"), "/a%2Fb"); /* an encoded slash stays one, in one spelling */
    CHECK_STR(norm("/a%2Fb"), "/a%2Fb");
    CHECK_STR(norm("/100%25"), "/100%25");
    CHECK_STR(norm("/%2525"), "/%2525"); /* decoded once, never twice */
    CHECK_STR(norm("/a/./b"), "/a/b");
    CHECK_STR(norm("/a/."), "/a/");
    CHECK_STR(norm("/a/b/.."), "/a/");
    CHECK_STR(norm("/a/b/../c"), "/a/c");
    CHECK_STR(norm("/a/../../../b"), "/b");
    CHECK_STR(norm("/.."), "/");
    CHECK_STR(norm("/../"), "/");
    CHECK_STR(norm("/public/../admin"), "/admin");
    CHECK_STR(norm("/public/%2e%2e/admin"), "/admin");
    CHECK_STR(norm("/public/%2E./admin"), "/admin");
    CHECK_STR(norm("/public/.%2e"), "/");
    CHECK_STR(norm("/a/..b/c"), "/a/..b/c"); /* not a dot segment */
    CHECK_STR(norm("/a/.b"), "/a/.b");
    CHECK_STR(norm("/a%zz"), "invalid percent-encoding in path");
    CHECK_STR(norm("/a%2"), "invalid percent-encoding in path");
    CHECK_STR(norm("/a%"), "invalid percent-encoding in path");
    CHECK_STR(norm("/a%00b"), "encoded NUL in path");
    CHECK_STR(norm("a"), "path must start with '/'");
}

static const char *host(const char *in)
{
    static char out[256];
    size_t n = torii_host_normalise(torii_str(in, strlen(in)), out);
    out[n] = '\0';
    return out;
}

TEST(normalise_hosts)
{
    CHECK_STR(host("API.Example.COM"), "api.example.com");
    CHECK_STR(host("api.example.com:8080"), "api.example.com");
    CHECK_STR(host("example.com."), "example.com");
    CHECK_STR(host("[::1]:80"), "[::1]");
    CHECK_STR(host("[::1]"), "[::1]");
    CHECK_STR(host(""), "");
}

static const char *pat(const char *p, torii_pattern_t *out)
{
    static char buf[256];
    const char *why;
    if (torii_pattern_parse(p, buf, out, &why) != 0)
        return why;
    return out->shape;
}

TEST(patterns)
{
    torii_pattern_t p;
    CHECK_STR(pat("/a/b", &p), "/a/b");
    CHECK_INT(p.kind, TORII_PAT_EXACT);
    CHECK_STR(pat("/users/:id", &p), "/users/:");
    CHECK_INT(p.kind, TORII_PAT_PARAM);
    CHECK_INT(p.nparams, 1);
    CHECK_SLICE(p.names[0], "id");
    CHECK_STR(pat("/u/:id/posts/:post_id", &p), "/u/:/posts/:");
    CHECK_INT(p.nparams, 2);
    CHECK_SLICE(p.names[1], "post_id");
    CHECK_STR(pat("/a/*", &p), "/a/");
    CHECK_INT(p.kind, TORII_PAT_PREFIX);
    CHECK_INT(p.catchall.n, 0);
    CHECK_STR(pat("/a*", &p), "/a");
    CHECK_STR(pat("/files/*path", &p), "/files/");
    CHECK_SLICE(p.catchall, "path");
    CHECK_STR(pat("/u/:id/*", &p), "/u/:/");
    CHECK_INT(p.kind, TORII_PAT_PREFIX);
    CHECK_STR(pat("/v1/models/gemini:generate", &p), "/v1/models/gemini:generate"); /* ':' mid-segment is text */
    CHECK_INT(p.kind, TORII_PAT_EXACT);
    CHECK_STR(pat("/caf%C3%A9", &p), "/caf\xc3\xa9");
    CHECK_STR(pat("a", &p), "must start with '/'");
    CHECK_STR(pat("/a*b", &p), "a named '*' must start a segment, as in /files/*path");
    CHECK_STR(pat("/a/*/b", &p), "'*' must be last (optionally followed by a name)");
    CHECK_STR(pat("/a/:", &p), "parameter name missing after ':'");
    CHECK_STR(pat("/a/:id.json", &p), "a parameter must be a whole segment (name: letters, digits, '_')");
    CHECK_STR(pat("/a/../b", &p), "'.' and '..' segments are not allowed");
    CHECK_STR(pat("/a/./b", &p), "'.' and '..' segments are not allowed");
    CHECK_STR(pat("/a/%3Ab", &p), "a segment cannot start with an encoded ':'");
    CHECK_STR(pat("/a%zz", &p), "invalid percent-encoding in path");
}

/* ---- routes ---- */

#define MAXR 16

typedef struct {
    torii_route_conf_t r[MAXR];
    char *uris[MAXR][4];
    char *hosts[MAXR][4];
    torii_cidr_t cidrs[MAXR][2];
    uint32_t n;
    torii_router_t *router;
} table_t;

/* add(t, id, "uri1 uri2", "host1 host2" or NULL, priority) */
static torii_route_conf_t *add(table_t *t, const char *id, const char *uris, const char *hosts, int priority)
{
    torii_route_conf_t *r = &t->r[t->n];
    char *copy, *tok, *save;
    memset(r, 0, sizeof *r);
    r->id = (char *)id;
    r->uris = t->uris[t->n];
    r->hosts = t->hosts[t->n];
    r->remote_addrs = t->cidrs[t->n];
    r->priority = priority;
    r->order = t->n;
    copy = strdup(uris);
    for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        r->uris[r->nuris++] = strdup(tok);
    free(copy);
    if (hosts) {
        copy = strdup(hosts);
        for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
            r->hosts[r->nhosts++] = strdup(tok);
        free(copy);
    }
    t->n++;
    return r;
}

static void build(table_t *t)
{
    char err[256];
    t->router = torii_router_new();
    for (uint32_t i = 0; i < t->n; i++)
        CHECK(torii_router_add(t->router, &t->r[i], err, sizeof err));
}

static void table_free(table_t *t)
{
    torii_router_free(t->router);
    for (uint32_t i = 0; i < t->n; i++) {
        for (uint32_t k = 0; k < t->r[i].nuris; k++)
            free(t->r[i].uris[k]);
        for (uint32_t k = 0; k < t->r[i].nhosts; k++)
            free(t->r[i].hosts[k]);
    }
    memset(t, 0, sizeof *t);
}

static torii_route_match_t last;

/* The id of the route for method/host/path from 127.0.0.1, or "-". */
static const char *match_from(table_t *t, torii_method_t m, const char *h, const char *path, const char *ip)
{
    static char npath[512], nhost[256];
    uint8_t addr[16];
    const char *why;
    int n = torii_path_normalise(torii_str(path, strlen(path)), npath, &why);
    torii_route_req_t q;
    if (n < 0)
        return why;
    CHECK(torii_ip_parse(ip, strlen(ip), addr));
    memset(&q, 0, sizeof q);
    q.method = m;
    q.x.uri = torii_str(npath, (size_t)n);
    q.x.host = torii_str(nhost, torii_host_normalise(torii_str(h, strlen(h)), nhost));
    q.x.client = addr;
    if (!torii_router_match(t->router, &q, &last))
        return "-";
    return last.route->id;
}

static const char *match(table_t *t, const char *path)
{
    return match_from(t, TORII_M_GET, "x", path, "127.0.0.1");
}

static const char *match_host(table_t *t, const char *h, const char *path)
{
    return match_from(t, TORII_M_GET, h, path, "127.0.0.1");
}

TEST(pattern_kinds)
{
    table_t t = {0};
    add(&t, "exact", "/a/b", NULL, 0);
    add(&t, "param", "/users/:id", NULL, 0);
    add(&t, "prefix", "/static/*", NULL, 0);
    add(&t, "bare-prefix", "/ab*", NULL, 0);
    add(&t, "catchall", "/files/*path", NULL, 0);
    build(&t);
    CHECK_STR(match(&t, "/a/b"), "exact");
    CHECK_STR(match(&t, "/a/b/"), "-");
    CHECK_STR(match(&t, "/a"), "-");
    CHECK_STR(match(&t, "/users/42"), "param");
    CHECK_INT(last.nparams, 1);
    CHECK_SLICE(last.params[0].name, "id");
    CHECK_SLICE(last.params[0].value, "42");
    CHECK_STR(match(&t, "/users/"), "-"); /* a parameter is one non-empty segment */
    CHECK_STR(match(&t, "/users/42/x"), "-");
    CHECK_STR(match(&t, "/static/"), "prefix");
    CHECK_STR(match(&t, "/static/css/site.css"), "prefix");
    CHECK_STR(match(&t, "/static"), "-");
    CHECK_STR(match(&t, "/ab"), "bare-prefix");
    CHECK_STR(match(&t, "/abc/d"), "bare-prefix");
    CHECK_STR(match(&t, "/files/a/b.txt"), "catchall");
    CHECK_INT(last.nparams, 1);
    CHECK_SLICE(last.params[0].name, "path");
    CHECK_SLICE(last.params[0].value, "a/b.txt");
    CHECK_STR(match(&t, "/files/"), "catchall");
    CHECK_SLICE(last.params[0].value, "");
    CHECK_STR(match(&t, "/nothing"), "-");
    table_free(&t);
}

TEST(precedence)
{
    table_t t = {0};
    /* Declared in the reverse of the order they should win in. */
    add(&t, "root-prefix", "/*", NULL, 0);
    add(&t, "short-prefix", "/api/*", NULL, 0);
    add(&t, "long-prefix", "/api/v1/*", NULL, 0);
    add(&t, "two-params", "/api/:ver/:name", NULL, 0);
    add(&t, "one-param", "/api/v1/:name", NULL, 0);
    add(&t, "exact", "/api/v1/users", NULL, 0);
    build(&t);
    CHECK_STR(match(&t, "/api/v1/users"), "exact");
    CHECK_STR(match(&t, "/api/v1/orders"), "one-param");
    CHECK_STR(match(&t, "/api/v2/orders"), "two-params");
    CHECK_STR(match(&t, "/api/v1/users/7"), "long-prefix");
    CHECK_STR(match(&t, "/api/v2/users/7"), "short-prefix");
    CHECK_STR(match(&t, "/other"), "root-prefix");
    table_free(&t);
}

TEST(literal_beats_parameter_at_first_difference)
{
    table_t t = {0};
    add(&t, "p-l", "/:a/b/:c", NULL, 0);
    add(&t, "l-p", "/x/:b/:c", NULL, 0);
    build(&t);
    /* Both match /x/b/z; at segment 0 "x" is literal in l-p only. */
    CHECK_STR(match(&t, "/x/b/z"), "l-p");
    CHECK_STR(match(&t, "/y/b/z"), "p-l");
    CHECK_INT(last.nparams, 2);
    CHECK_SLICE(last.params[0].value, "y");
    CHECK_SLICE(last.params[1].value, "z");
    table_free(&t);
}

TEST(priority_then_declaration)
{
    table_t t = {0};
    add(&t, "first", "/same", NULL, 0);
    add(&t, "second", "/same", NULL, 0);
    add(&t, "p-low", "/pri/*", NULL, 1);
    add(&t, "p-high", "/pri/*", NULL, 5);
    add(&t, "longer-low", "/pri/x/*", NULL, -10);
    build(&t);
    CHECK_STR(match(&t, "/same"), "first");
    CHECK_STR(match(&t, "/pri/a"), "p-high");
    CHECK_STR(match(&t, "/pri/x/a"), "longer-low"); /* length before priority */
    table_free(&t);
}

TEST(filters_pass_to_next_candidate)
{
    table_t t = {0};
    torii_route_conf_t *r;
    r = add(&t, "post-only", "/items", NULL, 0);
    r->methods = 1u << TORII_M_POST;
    r = add(&t, "get-or-head", "/items", NULL, 0);
    r->methods = 1u << TORII_M_GET | 1u << TORII_M_HEAD;
    r = add(&t, "ten-net", "/net/*", NULL, 9);
    CHECK(torii_cidr_parse("10.0.0.0/8", 10, &r->remote_addrs[0]));
    r->nremote_addrs = 1;
    r = add(&t, "v6-local", "/net/*", NULL, 5);
    CHECK(torii_cidr_parse("::1/128", 7, &r->remote_addrs[0]));
    r->nremote_addrs = 1;
    add(&t, "fallback", "/*", NULL, 0);
    build(&t);
    CHECK_STR(match_from(&t, TORII_M_POST, "x", "/items", "127.0.0.1"), "post-only");
    CHECK_STR(match_from(&t, TORII_M_GET, "x", "/items", "127.0.0.1"), "get-or-head");
    CHECK_STR(match_from(&t, TORII_M_HEAD, "x", "/items", "127.0.0.1"), "get-or-head");
    CHECK_STR(match_from(&t, TORII_M_PUT, "x", "/items", "127.0.0.1"), "fallback");
    CHECK_STR(match_from(&t, TORII_M_GET, "x", "/net/a", "10.1.2.3"), "ten-net");
    CHECK_STR(match_from(&t, TORII_M_GET, "x", "/net/a", "::1"), "v6-local");
    CHECK_STR(match_from(&t, TORII_M_GET, "x", "/net/a", "127.0.0.1"), "fallback");
    table_free(&t);
}

TEST(hosts)
{
    table_t t = {0};
    add(&t, "api", "/*", "api.example.com", 0);
    add(&t, "wild", "/*", "*.example.com", 0);
    add(&t, "deep-wild", "/*", "*.eu.example.com", 0);
    add(&t, "api-exact-path", "/v1", "api.example.com other.org", 0);
    add(&t, "any-host", "/v1", NULL, 0);
    add(&t, "ipv6", "/*", "[::1]", 0);
    build(&t);
    CHECK_STR(match_host(&t, "api.example.com", "/x"), "api");
    CHECK_STR(match_host(&t, "API.Example.com:8443", "/x"), "api"); /* case and port ignored */
    CHECK_STR(match_host(&t, "web.example.com", "/x"), "wild");
    CHECK_STR(match_host(&t, "a.b.example.com", "/x"), "wild");
    CHECK_STR(match_host(&t, "example.com", "/x"), "-");          /* the wildcard needs a label */
    CHECK_STR(match_host(&t, "fr.eu.example.com", "/x"), "wild"); /* same rank: declared first */
    CHECK_STR(match_host(&t, "api.example.com", "/v1"), "api-exact-path");
    CHECK_STR(match_host(&t, "other.org", "/v1"), "api-exact-path");
    CHECK_STR(match_host(&t, "third.net", "/v1"), "any-host");
    CHECK_STR(match_host(&t, "web.example.com", "/v1"), "any-host"); /* exact path beats the wildcard's prefix */
    CHECK_STR(match_host(&t, "[::1]:8080", "/x"), "ipv6");
    CHECK_STR(match_host(&t, "", "/x"), "-");
    table_free(&t);
}

TEST(normalised_before_matching)
{
    table_t t = {0};
    add(&t, "public", "/public/*", NULL, 0);
    add(&t, "admin", "/admin", NULL, 0);
    add(&t, "slash", "/a%2Fb", NULL, 0);
    add(&t, "ab", "/a/b", NULL, 0);
    build(&t);
    CHECK_STR(match(&t, "/public/../admin"), "admin");
    CHECK_STR(match(&t, "/public/%2e%2e/admin"), "admin");
    CHECK_STR(match(&t, "/public/x/../y"), "public");
    CHECK_STR(match(&t, "/%61dmin"), "admin");
    CHECK_STR(match(&t, "/a%2fb"), "slash");
    CHECK_STR(match(&t, "/a/b"), "ab");
    table_free(&t);
}

TEST(incremental_changes)
{
    table_t t = {0};
    char err[256];
    torii_route_conf_t *a = add(&t, "a", "/a/:id /a/x", "h.example.com", 0);
    add(&t, "b", "/a/*", NULL, 0);
    build(&t);
    size_t before = torii_router_memory(t.router);
    CHECK_STR(match_host(&t, "h.example.com", "/a/1"), "a");
    torii_router_remove(t.router, a);
    CHECK_STR(match_host(&t, "h.example.com", "/a/1"), "b");
    CHECK_STR(match_host(&t, "h.example.com", "/a/x"), "b");
    CHECK(torii_router_memory(t.router) < before);
    CHECK(torii_router_add(t.router, a, err, sizeof err));
    CHECK_STR(match_host(&t, "h.example.com", "/a/x"), "a");
    CHECK_INT(torii_router_memory(t.router), before); /* nothing leaks between the two */
    /* A bad pattern is refused whole. */
    torii_route_conf_t *bad = add(&t, "bad", "/ok /bad/*/x", NULL, 0);
    CHECK(!torii_router_add(t.router, bad, err, sizeof err));
    CHECK(strstr(err, "/bad/*/x") != NULL);
    CHECK_STR(match(&t, "/ok"), "-");
    table_free(&t);
}

TEST(many_routes_and_removal)
{
    /* Enough routes to split nodes and grow child arrays, then removed
     * in another order: the tree must give every answer right on the way. */
    enum { N = 600 };
    static torii_route_conf_t r[N];
    static char *uris[N][1];
    static char text[N][32];
    torii_router_t *rt = torii_router_new();
    size_t empty = torii_router_memory(rt);
    char err[64];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], i % 3 == 0 ? "/s%d/:id" : i % 3 == 1 ? "/s%d/x" : "/s%d*", i);
        uris[i][0] = text[i];
        r[i] = (torii_route_conf_t){.id = text[i], .uris = uris[i], .nuris = 1, .order = (uint32_t)i};
        CHECK(torii_router_add(rt, &r[i], err, sizeof err));
    }
    for (int step = 0; step < 2; step++) {
        for (int i = step; i < N; i += 2) {
            char path[48];
            torii_route_req_t q = {0};
            torii_route_match_t m;
            snprintf(path, sizeof path, i % 3 == 0 ? "/s%d/7" : i % 3 == 1 ? "/s%d/x" : "/s%d", i);
            q.x.uri = torii_str(path, strlen(path));
            CHECK(torii_router_match(rt, &q, &m) && m.route == &r[i]);
            torii_router_remove(rt, &r[i]);
            CHECK(!torii_router_match(rt, &q, &m) || m.route != &r[i]);
        }
    }
    CHECK_INT(torii_router_memory(rt), empty);
    torii_router_free(rt);
}

TEST(deep_trees)
{
    /* 600 prefixes of one path: a tree 600 nodes deep; removing the deepest
     * must work (it once stopped at a fixed depth and left the route in). */
    enum { N = 600 };
    static torii_route_conf_t r[N];
    static char *uris[N][1];
    static char text[N][N + 2];
    static char path[N + 2];
    torii_router_t *rt = torii_router_new();
    torii_route_req_t q = {0};
    torii_route_match_t m;
    char err[64];
    for (int i = 0; i < N; i++) {
        text[i][0] = '/';
        memset(text[i] + 1, 'a', (size_t)i + 1);
        text[i][i + 2] = '\0';
        text[i][i + 1] = '*';
        uris[i][0] = text[i];
        r[i] = (torii_route_conf_t){.id = text[i], .uris = uris[i], .nuris = 1, .order = (uint32_t)i};
        CHECK(torii_router_add(rt, &r[i], err, sizeof err));
    }
    path[0] = '/';
    memset(path + 1, 'a', N);
    q.x.uri = torii_str(path, N + 1);
    CHECK(torii_router_match(rt, &q, &m) && m.route == &r[N - 1]);
    torii_router_remove(rt, &r[N - 1]);
    CHECK(torii_router_match(rt, &q, &m) && m.route == &r[N - 2]);
    torii_router_free(rt);
}

TEST(parameters_within_64_segments)
{
    char pattern[400], buf[400];
    torii_pattern_t p;
    const char *why;
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(pattern + n, sizeof pattern - n, "/s");
    snprintf(pattern + n, sizeof pattern - n, "/:x");
    CHECK(torii_pattern_parse(pattern, buf, &p, &why) == -1);
    CHECK_STR(why, "parameters must be within the first 64 segments");
    snprintf(pattern + n - 2, sizeof pattern - n + 2, "/:x"); /* segment 63 */
    CHECK(torii_pattern_parse(pattern, buf, &p, &why) == 0);
}

int main(void)
{
    RUN(normalise_paths);
    RUN(normalise_hosts);
    RUN(patterns);
    RUN(pattern_kinds);
    RUN(precedence);
    RUN(literal_beats_parameter_at_first_difference);
    RUN(priority_then_declaration);
    RUN(filters_pass_to_next_candidate);
    RUN(hosts);
    RUN(normalised_before_matching);
    RUN(incremental_changes);
    RUN(many_routes_and_removal);
    RUN(deep_trees);
    RUN(parameters_within_64_segments);
    return unit_report("test_router");
}
