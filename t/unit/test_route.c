/* test_route.c — the interim route matcher (core/http/route.c). */
#include "unit.h"

#include "config/config.h"
#include "http/route.h"

static char err[1024];

static const char *match(const torii_router_t *r, const char *path)
{
    const torii_route_conf_t *route = torii_router_match(r, torii_str(path, strlen(path)));
    return route ? route->id : "(none)";
}

#define NODE "    upstream: {nodes: [\"127.0.0.1:1\"]}\n"

TEST(precedence)
{
    torii_config_t *c = torii_config_load_string(
        "t.yaml",
        "listen: 127.0.0.1:1\n"
        "routes:\n"
        "  - {id: all, uri: \"/*\", upstream: {nodes: [\"127.0.0.1:1\"]}}\n"
        "  - id: api\n    uri: /api/*\n" NODE "  - id: api-exact\n    uri: /api/users\n" NODE
        "  - id: api-v1\n    uri: /api/v1*\n" NODE "  - id: api-dup\n    uri: /api/*\n" NODE
        "  - id: exact-dup\n    uri: /api/users\n" NODE "  - id: multi\n    uris: [/x, /y/*]\n" NODE,
        "/", err, sizeof err);
    torii_router_t *r;
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    r = torii_router_build(c);
    CHECK_STR(match(r, "/api/users"), "api-exact"); /* exact beats prefixes, first declared wins */
    CHECK_STR(match(r, "/api/users/7"), "api");     /* longest prefix; tie to the first declared */
    CHECK_STR(match(r, "/api/v1"), "api-v1");
    CHECK_STR(match(r, "/api/v10/x"), "api-v1");
    CHECK_STR(match(r, "/api"), "all"); // the /api/ prefix needs its slash
    CHECK_STR(match(r, "/"), "all");
    CHECK_STR(match(r, "/x"), "multi");
    CHECK_STR(match(r, "/x/"), "all");
    CHECK_STR(match(r, "/y/z"), "multi");
    torii_router_free(r);
    torii_config_free(c);
}

TEST(no_match)
{
    torii_config_t *c = torii_config_load_string(
        "t.yaml", "listen: 127.0.0.1:1\nroutes:\n  - id: a\n    uri: /a\n" NODE, "/", err, sizeof err);
    torii_router_t *r = torii_router_build(c);
    CHECK_STR(match(r, "/a"), "a");
    CHECK_STR(match(r, "/a/"), "(none)");
    CHECK_STR(match(r, "/b"), "(none)");
    CHECK_STR(match(r, ""), "(none)");
    torii_router_free(r);
    torii_config_free(c);
}

int main(void)
{
    RUN(precedence);
    RUN(no_match);
    return unit_report("test_route");
}
