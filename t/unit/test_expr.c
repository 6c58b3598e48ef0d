/* test_expr.c — route conditions (core/router/expr.c). */
#include <stdlib.h>

#include "unit.h"

#include "config/decode.h"
#include "config/node.h"
#include "router/expr.h"

#define OPS  "==, ~=, !=, >, >=, <, <=, ~~, ~*, in, has, ipmatch"
#define VARS "uri, request_uri, host, request_method, remote_addr, scheme, http_NAME, arg_NAME or cookie_NAME"

static torii_pool_t *pool;
static char err[1024];
static size_t path_after; /* path length once compile returns */

/* 192.168.1.20 and 2001:db8::1 in 16-byte form. */
static const uint8_t client4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 20};
static const uint8_t client6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static torii_header_t hdrs[16];
static torii_expr_req_t rq;

static torii_str_t S(const char *s)
{
    return torii_str(s, strlen(s));
}

/* A fresh request: GET http://example.com/api/v1/users?<query> from 192.168.1.20. */
static void request(const char *query)
{
    rq = (torii_expr_req_t){
        .method = S("GET"),
        .uri = S("/api/v1/users"),
        .request_uri = S("/api//v1/./users?x=1"),
        .host = S("example.com"),
        .query = S(query),
        .headers = hdrs,
        .client = client4,
        .client_text = S("192.168.1.20"),
    };
}

static void header(const char *name, const char *value)
{
    hdrs[rq.nheaders++] = (torii_header_t){S(name), S(value), 0};
}

/* Compile `vars` (YAML text) as routes[0].vars. */
static torii_expr_t *compile(const char *yaml)
{
    torii_cnode_t *root = NULL;
    torii_dctx_t c = {.pool = pool, .err = err, .errlen = sizeof err};
    torii_expr_t *e;
    err[0] = '\0';
    if (!torii_cnode_load_string(pool, "t.yaml", yaml, strlen(yaml), &root, err, sizeof err) || !root) {
        fprintf(stderr, "  bad test YAML: %s\n", err);
        return NULL;
    }
    torii_dctx_push_key(&c, "routes");
    torii_dctx_push_index(&c, 0);
    torii_dctx_push_key(&c, "vars");
    e = torii_expr_compile(&c, root);
    path_after = c.pathlen;
    return e;
}

/* 1 if the current request matches, 0 if not, -1 if it does not compile. */
static int ev(const char *yaml)
{
    torii_expr_t *e = compile(yaml);
    if (!e) {
        fprintf(stderr, "  compile failed: %s\n", err);
        return -1;
    }
    if (path_after != strlen("routes[0].vars")) {
        fprintf(stderr, "  path not restored after compiling %s\n", yaml);
        return -1;
    }
    return torii_expr_eval(e, &rq) ? 1 : 0;
}

#define YES(y) CHECK_INT(ev(y), 1)
#define NO(y)  CHECK_INT(ev(y), 0)

/* Compiling fails with exactly this message. */
static int fails_with(const char *yaml, const char *message)
{
    torii_expr_t *e = compile(yaml);
    if (e || strcmp(err, message) != 0) {
        fprintf(stderr, "  vars: %s\n  got: %s\n  expected: %s\n", yaml, e ? "(compiled)" : err, message);
        return 0;
    }
    return 1;
}

#define FAILS(y, m) CHECK(fails_with(y, m))

TEST(fixed_variables)
{
    request("");
    YES("[['uri', '==', '/api/v1/users']]");
    NO("[['uri', '==', '/api/v1/user']]");
    NO("[['uri', '==', '/api/v1/users/']]");
    YES("[['request_uri', '==', '/api//v1/./users?x=1']]");
    NO("[['request_uri', '==', '/api/v1/users']]");
    YES("[['host', '==', 'example.com']]");
    NO("[['host', '==', 'example.org']]");
    YES("[['request_method', '==', 'GET']]");
    NO("[['request_method', '==', 'get']]");
    YES("[['remote_addr', '==', '192.168.1.20']]");
    NO("[['remote_addr', '==', '192.168.1.2']]");
    YES("[['scheme', '==', 'http']]");
    NO("[['scheme', '==', 'https']]");
    /* Unset slices read as empty strings, not as missing. */
    rq.host = (torii_str_t){NULL, 0};
    YES("[['host', '==', '']]");
    NO("[['host', '~=', '']]");
}

TEST(headers)
{
    request("");
    header("X-Api-Key", "Secret");
    header("X-Dup", "first");
    header("x-dup", "second");
    header("x_under", "u");
    header("X-Empty", "");
    YES("[['http_x_api_key', '==', 'Secret']]");
    YES("[['http_X_API_KEY', '==', 'Secret']]");
    YES("[['http_x-api-key', '==', 'Secret']]");
    NO("[['http_x_api_key', '==', 'secret']]"); /* values keep their case */
    NO("[['http_x_api', '==', 'Secret']]");
    NO("[['http_x_api_key_', '==', 'Secret']]");
    YES("[['http_x_dup', '==', 'first']]");
    NO("[['http_x_dup', '==', 'second']]");
    YES("[['http_x_under', '==', 'u']]");
    YES("[['http_X-Under', '==', 'u']]");
    YES("[['http_x_empty', '==', '']]");
    NO("[['http_x_empty', '~=', '']]");
    /* Missing header. */
    NO("[['http_x_none', '==', '']]");
    YES("[['http_x_none', '~=', '']]");
}

TEST(args)
{
    request("id=42&name=J%C3%B6rg+K&flag&empty=&a%20b=sp&plus+key=pk&dup=1&dup=2&&pct=100%&bad=%zz%4g%4&eq=a=b&"
            "low=%2f%2F&nul=a%00b");
    YES("[['arg_id', '==', '42']]");
    YES("[['arg_name', '==', 'J\xc3\xb6"
        "rg K']]");
    NO("[['arg_name', '==', 'J%C3%B6rg+K']]");
    YES("[['arg_flag', '==', '']]");
    NO("[['arg_flag', '~=', '']]");
    YES("[['arg_empty', '==', '']]");
    YES("[['arg_a b', '==', 'sp']]");        /* key percent-decoded */
    NO("[['arg_a%20b', '==', 'sp']]");       /* the configured name is not */
    YES("[['arg_plus key', '==', 'pk']]");   /* '+' in keys too */
    YES("[['arg_dup', '==', '1']]");         /* first occurrence */
    YES("[['arg_pct', '==', '100%']]");      /* a lone '%' stays */
    YES("[['arg_bad', '==', '%zz%4g%4']]");  /* so do malformed escapes */
    YES("[['arg_eq', '==', 'a=b']]");        /* the first '=' splits */
    YES("[['arg_low', '==', '//']]");        /* hex digits in either case */
    YES("[['arg_nul', '~~', '^a\\x00b$']]"); /* %00 is a byte like any other */
    NO("[['arg_nul', '==', 'a']]");
    NO("[['arg_ID', '==', '42']]"); /* keys are case-sensitive */
    NO("[['arg_i', '==', '42']]");
    NO("[['arg_nope', '==', '']]");
    YES("[['arg_nope', '~=', '']]");
    YES("[['arg_name', '~~', '^J\\S+ K$']]"); /* regexes see the decoded value */
    request("");
    NO("[['arg_id', '==', '']]");
    YES("[['arg_id', '!=', '']]");
    request("&&x=1&");
    YES("[['arg_x', '==', '1']]");
}

TEST(cookies)
{
    request("");
    header("Cookie", "a=1; b=2");
    header("Accept", "c=0");
    header("cookie", "c=3;a=9; flag; e = 5 ;q=\"x y\"");
    YES("[['cookie_a', '==', '1']]"); /* first match, across headers */
    NO("[['cookie_a', '==', '9']]");
    YES("[['cookie_b', '==', '2']]");
    YES("[['cookie_c', '==', '3']]"); /* second Cookie header, not Accept */
    YES("[['cookie_e', '==', '5']]");
    YES("[['cookie_q', '==', '\"x y\"']]");
    NO("[['cookie_flag', '==', '']]"); /* no '=': not a cookie */
    YES("[['cookie_flag', '~=', '']]");
    NO("[['cookie_A', '==', '1']]"); /* names are case-sensitive */
    NO("[['cookie_d', '==', '']]");
    YES("[['cookie_d', '!', '==', '']]");
    request("");
    NO("[['cookie_a', '==', '1']]");
}

TEST(equality_and_negation)
{
    request("");
    YES("[['uri', '==', '/api/v1/users']]");
    NO("[['uri', '!', '==', '/api/v1/users']]");
    NO("[['uri', '~=', '/api/v1/users']]");
    NO("[['uri', '!=', '/api/v1/users']]");
    YES("[['uri', '~=', '/other']]");
    YES("[['uri', '!=', '/other']]");
    YES("[['uri', '!', '~=', '/api/v1/users']]");
    NO("[['uri', '!', '~=', '/other']]");
    YES("[['request_method', 'in', ['POST', 'GET']]]");
    NO("[['request_method', 'in', ['POST', 'PUT']]]");
    YES("[['request_method', '!', 'in', ['POST', 'PUT']]]");
    NO("[['request_method', 'in', ['get']]]");
}

TEST(numbers)
{
    request("n=42&f=4.2e1&p=+42&plus=%2B42&sp=%2042&hex=0x2a&junk=42abc&empty=&neg=-3.5&dot=.5&trail=5.&e=1e&"
            "big=1e999&word=abc");
    YES("[['arg_n', '==', 42]]");
    YES("[['arg_n', '==', 42.0]]");
    YES("[['arg_f', '==', 42]]");
    NO("[['arg_f', '==', '42']]"); /* a quoted value compares as a string */
    YES("[['arg_plus', '==', 42]]");
    YES("[['arg_p', '~=', 42]]"); /* '+' decodes to a space: " 42" is no number */
    NO("[['arg_sp', '==', 42]]");
    NO("[['arg_hex', '==', 42]]");
    NO("[['arg_junk', '==', 42]]");
    NO("[['arg_empty', '==', 0]]");
    YES("[['arg_junk', '~=', 42]]");
    YES("[['arg_junk', '!=', 42]]");
    NO("[['arg_n', '~=', 42]]");
    YES("[['arg_n', '~=', 43]]");
    YES("[['arg_n', '!', '~=', 42]]");
    YES("[['arg_neg', '==', -3.5]]");
    YES("[['arg_dot', '==', 0.5]]");
    YES("[['arg_trail', '==', 5]]");
    NO("[['arg_e', '==', 1]]");
    YES("[['arg_big', '>', 1e300]]");
    /* Ordering. */
    YES("[['arg_n', '>', 41]]");
    NO("[['arg_n', '>', 42]]");
    YES("[['arg_n', '>=', 42]]");
    NO("[['arg_n', '>=', 42.5]]");
    YES("[['arg_n', '<', 42.5]]");
    NO("[['arg_n', '<', 42]]");
    YES("[['arg_n', '<=', 42]]");
    NO("[['arg_n', '<=', 41]]");
    YES("[['arg_neg', '<', 0]]");
    YES("[['arg_n', '!', '>', 100]]");
    NO("[['arg_n', '!', '<', 100]]");
    YES("[['arg_f', '>', 0x29]]"); /* YAML hex is an integer */
    /* A value that is no number never compares; "!" turns that around. */
    NO("[['arg_word', '>', 0]]");
    NO("[['arg_word', '<', 0]]");
    NO("[['arg_word', '>=', 0]]");
    NO("[['arg_word', '<=', 0]]");
    YES("[['arg_word', '!', '>', 0]]");
    NO("[['uri', '>', 0]]");
    /* Lists mix strings and numbers. */
    YES("[['arg_f', 'in', [1, 42, 'x']]]");
    YES("[['arg_n', 'in', ['x', 42.0]]]");
    NO("[['arg_f', 'in', ['42', 'x']]]");
    YES("[['arg_word', 'in', [1, 'abc']]]");
    NO("[['arg_word', 'in', [1, 2]]]");
    YES("[['arg_word', '!', 'in', [1, 2]]]");
    /* Headers and other variables parse the same way. */
    header("Content-Length", "1024");
    YES("[['http_content_length', '>=', 1024]]");
    NO("[['http_content_length', '>', 1024]]");
}

TEST(missing_variables)
{
    request("");
    NO("[['http_x_none', '==', 'x']]");
    NO("[['http_x_none', '==', 1]]");
    YES("[['http_x_none', '~=', 'x']]");
    YES("[['http_x_none', '!=', 1]]");
    NO("[['http_x_none', '>', 0]]");
    NO("[['http_x_none', '>=', 0]]");
    NO("[['http_x_none', '<', 0]]");
    NO("[['http_x_none', '<=', 0]]");
    NO("[['http_x_none', '~~', '']]");
    NO("[['http_x_none', '~*', '.*']]");
    NO("[['http_x_none', 'in', ['', 'x']]]");
    NO("[['http_x_none', 'has', 'x']]");
    NO("[['http_x_none', 'ipmatch', '0.0.0.0/0']]");
    NO("[['arg_none', '==', '']]");
    NO("[['cookie_none', '==', '']]");
    /* "!" inverts as usual. */
    YES("[['http_x_none', '!', '==', 'x']]");
    NO("[['http_x_none', '!', '~=', 'x']]");
    NO("[['http_x_none', '!', '!=', 'x']]");
    YES("[['http_x_none', '!', '>', 0]]");
    YES("[['http_x_none', '!', '~~', '']]");
    YES("[['http_x_none', '!', 'in', ['']]]");
    YES("[['http_x_none', '!', 'has', 'x']]");
    YES("[['http_x_none', '!', 'ipmatch', '0.0.0.0/0']]");
}

TEST(regex)
{
    request("");
    header("User-Agent", "Mozilla/5.0 (X11; Linux) Firefox/120");
    YES("[['uri', '~~', '^/api/v[0-9]+/']]");
    YES("[['uri', '~~', 'users']]"); /* a search, not anchored */
    NO("[['uri', '~~', '^users']]");
    NO("[['uri', '~~', 'USERS']]");
    YES("[['uri', '~*', 'USERS']]");
    YES("[['uri', '~*', '^/API/V1/USERS$']]");
    NO("[['uri', '~*', 'groups']]");
    YES("[['http_user_agent', '~*', 'firefox/[0-9]+']]");
    NO("[['http_user_agent', '~~', 'firefox']]");
    YES("[['uri', '!', '~~', 'USERS']]");
    NO("[['uri', '!', '~*', 'USERS']]");
    YES("[['uri', '~~', '']]");
    NO("[['uri', '~~', '\\d{3}']]");
    YES("[['uri', '~~', '/v\\d/']]");
    YES("[['uri', '~~', '(?i)API']]");
    /* The same compiled regex, many requests (one match data reused). */
    {
        torii_expr_t *e = compile("[['arg_q', '~~', '^a+b$']]");
        CHECK(e != NULL);
        request("q=aaab");
        CHECK(e && torii_expr_eval(e, &rq));
        request("q=aaac");
        CHECK(e && !torii_expr_eval(e, &rq));
        request("q=%61b");
        CHECK(e && torii_expr_eval(e, &rq));
    }
}

TEST(has)
{
    request("tags=a%2Cb+c,d&plain=x,y");
    header("Accept-Encoding", "gzip, deflate ,\tbr,,  ");
    YES("[['http_accept_encoding', 'has', 'gzip']]");
    YES("[['http_accept_encoding', 'has', 'deflate']]");
    YES("[['http_accept_encoding', 'has', 'br']]");
    NO("[['http_accept_encoding', 'has', 'def']]");
    NO("[['http_accept_encoding', 'has', 'brotli']]");
    NO("[['http_accept_encoding', 'has', 'gzip deflate']]");
    NO("[['http_accept_encoding', 'has', 'GZIP']]");
    YES("[['http_accept_encoding', '!', 'has', 'zstd']]");
    YES("[['arg_tags', 'has', 'a']]"); /* the decoded value is the list */
    YES("[['arg_tags', 'has', 'b c']]");
    YES("[['arg_tags', 'has', 'd']]");
    NO("[['arg_tags', 'has', 'b']]");
    NO("[['arg_tags', 'has', 'c']]");
    YES("[['arg_plain', 'has', 'y']]");
    YES("[['uri', 'has', '/api/v1/users']]"); /* one item, no comma */
}

TEST(ipmatch)
{
    request("ip=2001%3Adb8%3A%3A5&v4=10.1.2.3&bad=10.1.2");
    YES("[['remote_addr', 'ipmatch', '192.168.1.0/24']]");
    YES("[['remote_addr', 'ipmatch', '192.168.1.20']]");
    NO("[['remote_addr', 'ipmatch', '192.168.1.21']]");
    NO("[['remote_addr', 'ipmatch', '10.0.0.0/8']]");
    YES("[['remote_addr', 'ipmatch', ['10.0.0.0/8', '192.168.0.0/16']]]");
    NO("[['remote_addr', 'ipmatch', ['10.0.0.0/8', '2001:db8::/32']]]");
    YES("[['remote_addr', 'ipmatch', '::ffff:192.168.1.0/120']]"); /* IPv4 is mapped */
    YES("[['remote_addr', '!', 'ipmatch', '10.0.0.0/8']]");
    NO("[['remote_addr', '!', 'ipmatch', '192.168.0.0/16']]");
    /* remote_addr takes the 16-byte address, not the text. */
    rq.client_text = S("10.9.9.9");
    YES("[['remote_addr', 'ipmatch', '192.168.1.20']]");
    NO("[['remote_addr', 'ipmatch', '10.9.9.9']]");
    YES("[['remote_addr', '==', '10.9.9.9']]");
    /* Without the bytes, the text is parsed. */
    rq.client = NULL;
    YES("[['remote_addr', 'ipmatch', '10.9.9.9']]");
    rq.client_text = S("nonsense");
    NO("[['remote_addr', 'ipmatch', '0.0.0.0/0']]");
    /* IPv6. */
    request("ip=2001%3Adb8%3A%3A5&v4=10.1.2.3&bad=10.1.2");
    rq.client = client6;
    rq.client_text = S("2001:db8::1");
    YES("[['remote_addr', 'ipmatch', '2001:db8::/32']]");
    YES("[['remote_addr', 'ipmatch', '2001:db8::1']]");
    NO("[['remote_addr', 'ipmatch', '2001:db9::/32']]");
    NO("[['remote_addr', 'ipmatch', '192.168.0.0/16']]");
    YES("[['remote_addr', 'ipmatch', ['10.0.0.0/8', '2001:db8::/126']]]");
    /* Other variables: the value is parsed; not an address -> false. */
    header("X-Real-IP", "10.2.3.4");
    header("X-Junk", "10.2.3.4 ");
    YES("[['http_x_real_ip', 'ipmatch', '10.0.0.0/8']]");
    NO("[['http_x_real_ip', 'ipmatch', '11.0.0.0/8']]");
    NO("[['http_x_junk', 'ipmatch', '10.0.0.0/8']]");
    YES("[['http_x_junk', '!', 'ipmatch', '10.0.0.0/8']]");
    YES("[['arg_ip', 'ipmatch', '2001:db8::/64']]"); /* decoded first */
    YES("[['arg_v4', 'ipmatch', ['192.168.0.0/16', '10.1.2.0/24']]]");
    NO("[['arg_bad', 'ipmatch', '10.0.0.0/8']]");
    NO("[['uri', 'ipmatch', '0.0.0.0/0']]");
}

TEST(groups)
{
    request("");
    /* The top level is an AND. */
    YES("[['uri', '==', '/api/v1/users'], ['host', '==', 'example.com']]");
    NO("[['uri', '==', '/api/v1/users'], ['host', '==', 'example.org']]");
    NO("[['uri', '==', '/x'], ['host', '==', 'example.com']]");
    YES("[]"); /* no conditions: always true */
    /* ...unless it starts with a combinator. */
    YES("['OR', ['uri', '==', '/x'], ['host', '==', 'example.com']]");
    NO("['OR', ['uri', '==', '/x'], ['host', '==', 'example.org']]");
    YES("['AND', ['uri', '==', '/api/v1/users'], ['host', '==', 'example.com']]");
    NO("['AND', ['uri', '==', '/api/v1/users'], ['host', '==', 'example.org']]");
    NO("['!AND', ['uri', '==', '/api/v1/users'], ['host', '==', 'example.com']]");
    YES("['!AND', ['uri', '==', '/api/v1/users'], ['host', '==', 'example.org']]");
    NO("['!OR', ['uri', '==', '/x'], ['host', '==', 'example.com']]");
    YES("['!OR', ['uri', '==', '/x'], ['host', '==', 'example.org']]");
    /* Nested groups. */
    YES("[['OR', ['uri', '==', '/x'], ['AND', ['host', '==', 'example.com'], ['request_method', '==', 'GET']]]]");
    NO("[['OR', ['uri', '==', '/x'], ['AND', ['host', '==', 'example.com'], ['request_method', '==', 'PUT']]]]");
    YES("[['OR', ['uri', '==', '/x'], ['!AND', ['host', '==', 'example.com'], ['request_method', '==', 'PUT']]]]");
    NO("[['!OR', ['uri', '==', '/x'], ['OR', ['host', '==', 'a'], ['request_method', '==', 'GET']]]]");
    YES("[['!OR', ['uri', '==', '/x'], ['OR', ['host', '==', 'a'], ['request_method', '==', 'PUT']]]]");
    /* Members after a nested group are reached (its subtree is skipped). */
    YES("[['OR', ['AND', ['uri', '==', '/a'], ['uri', '==', '/b']], ['host', '==', 'example.com']], "
        "['request_method', '==', 'GET']]");
    NO("[['OR', ['AND', ['uri', '==', '/a'], ['uri', '==', '/b']], ['host', '==', 'example.org']], "
       "['request_method', '==', 'GET']]");
    NO("[['OR', ['AND', ['uri', '==', '/a'], ['uri', '==', '/b']], ['host', '==', 'example.com']], "
       "['request_method', '==', 'PUT']]");
    YES("['OR', ['AND', ['uri', '==', '/a'], ['OR', ['uri', '==', '/b'], ['uri', '==', '/c']]], "
        "['AND', ['host', '==', 'x'], ['host', '==', 'y']], ['!AND', ['uri', '==', '/nope']]]");
    NO("['OR', ['AND', ['uri', '==', '/a'], ['OR', ['uri', '==', '/b'], ['uri', '==', '/c']]], "
       "['AND', ['host', '==', 'x'], ['host', '==', 'y']], ['!AND', ['uri', '==', '/api/v1/users']]]");
    YES("['AND', ['OR', ['uri', '==', '/a'], ['uri', '==', '/api/v1/users']], ['!OR', ['host', '==', 'x']], "
        "['uri', '~~', 'users']]");
    /* A single member. */
    YES("['!OR', ['uri', '==', '/x']]");
    NO("['!AND', ['uri', '~~', '']]");
    /* Negated conditions inside groups. */
    YES("[['AND', ['uri', '!', '==', '/x'], ['host', '!', '~=', 'example.com']]]");
}

/* `levels` nested groups (the top level counting as the first). */
static char *nested(int levels)
{
    size_t cap = 64 + (size_t)levels * 16, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "[");
    for (int i = 1; i < levels; i++)
        n += (size_t)snprintf(s + n, cap - n, "['OR', ");
    n += (size_t)snprintf(s + n, cap - n, "['uri', '~~', 'users']");
    for (int i = 1; i < levels; i++)
        n += (size_t)snprintf(s + n, cap - n, "]");
    snprintf(s + n, cap - n, "]");
    return s;
}

TEST(depth)
{
    char *ok = nested(32), *deep = nested(33), msg[512];
    size_t n;
    request("");
    YES(ok);
    n = (size_t)snprintf(msg, sizeof msg, "t.yaml:1: routes[0].vars[0]");
    for (int i = 0; i < 31; i++)
        n += (size_t)snprintf(msg + n, sizeof msg - n, "[1]");
    snprintf(msg + n, sizeof msg - n, ": groups nest too deep (at most 32 levels)");
    FAILS(deep, msg);
    free(ok);
    free(deep);
}

/* Values longer than any fixed buffer. */
TEST(long_values)
{
    size_t n = 9000;
    char *q = malloc(4 * n + 64), *yaml = malloc(n + 64), *plain = malloc(n + 8);
    memcpy(q, "big=", 4);
    for (size_t i = 0; i < n; i++)
        memcpy(q + 4 + 3 * i, "%41", 3);
    strcpy(q + 4 + 3 * n, "&plain=");
    memset(q + 11 + 3 * n, 'A', n);
    q[11 + 4 * n] = '\0';
    request(q);
    memset(plain, 'A', n);
    plain[n] = '\0';
    /* Equality decodes as it compares, at any length. */
    snprintf(yaml, n + 64, "[['arg_big', '==', '%s']]", plain);
    YES(yaml);
    snprintf(yaml, n + 64, "[['arg_plain', '==', '%s']]", plain);
    YES(yaml);
    plain[n - 1] = '\0';
    snprintf(yaml, n + 64, "[['arg_big', '==', '%s']]", plain);
    NO(yaml);
    snprintf(yaml, n + 64, "[['arg_big', 'in', ['x', '%sAA']]]", plain);
    NO(yaml);
    snprintf(yaml, n + 64, "[['arg_big', 'in', ['x', '%sA']]]", plain);
    YES(yaml);
    NO("[['arg_big', 'has', 'A']]");
    snprintf(yaml, n + 64, "[['arg_big', 'has', '%sA']]", plain);
    YES(yaml);
    /* A regex sees at most 8192 decoded bytes; past that no match. */
    NO("[['arg_big', '~~', '^A+$']]");
    YES("[['arg_big', '!', '~~', '^A+$']]");
    YES("[['arg_plain', '~~', '^A+$']]"); /* nothing to decode: no limit */
    NO("[['arg_big', '>', 0]]");
    free(q);
    free(yaml);
    free(plain);
}

TEST(structure_errors)
{
    FAILS("{a: 1}", "t.yaml:1: routes[0].vars: must be a list, got a map");
    FAILS("['uri', '==', '/']", "t.yaml:1: routes[0].vars[0]: must be a condition [var, op, value] or a group "
                                "[\"AND\" or \"OR\", ...], got a string");
    FAILS("[[]]", "t.yaml:1: routes[0].vars[0]: empty condition");
    FAILS("[['uri', '==']]",
          "t.yaml:1: routes[0].vars[0]: a condition is [var, op, value] or [var, \"!\", op, value], got 2 items");
    FAILS("[['uri', '!', '==', '/', 'x']]",
          "t.yaml:1: routes[0].vars[0]: a condition is [var, op, value] or [var, \"!\", op, value], got 5 items");
    FAILS("[['AND']]", "t.yaml:1: routes[0].vars[0]: \"AND\" needs at least one condition or group");
    FAILS("['!OR']", "t.yaml:1: routes[0].vars: \"!OR\" needs at least one condition or group");
    FAILS("[['OR', 'uri']]", "t.yaml:1: routes[0].vars[0][1]: must be a condition [var, op, value] or a group "
                             "[\"AND\" or \"OR\", ...], got a string");
    FAILS("[['OR', ['uri', '==', '/a'], ['AND', ['uri', '==', '/b'], ['uri', '=~', 'x']]]]",
          "t.yaml:1: routes[0].vars[0][2][2][1]: unknown operator \"=~\" (use " OPS ")");
    FAILS("['AND', ['uri', '==', '/'], ['foo', '==', 'x']]",
          "t.yaml:1: routes[0].vars[2][0]: unknown variable \"foo\" (use " VARS ")");
    FAILS("- ['uri', '==', '/']\n- ['uri', '=~', 'x']\n",
          "t.yaml:2: routes[0].vars[1][1]: unknown operator \"=~\" (use " OPS ")");
    FAILS("[['and', ['uri', '==', '/']]]",
          "t.yaml:1: routes[0].vars[0]: a condition is [var, op, value] or [var, \"!\", op, value], got 2 items");
}

TEST(condition_errors)
{
    FAILS("[[1, '==', 'x']]", "t.yaml:1: routes[0].vars[0][0]: must be a variable name (a string), got an integer");
    FAILS("[['foo', '==', 'x']]", "t.yaml:1: routes[0].vars[0][0]: unknown variable \"foo\" (use " VARS ")");
    FAILS("[['URI', '==', 'x']]", "t.yaml:1: routes[0].vars[0][0]: unknown variable \"URI\" (use " VARS ")");
    FAILS("[['http_', '==', 'x']]", "t.yaml:1: routes[0].vars[0][0]: empty header name in \"http_\"");
    FAILS("[['arg_', '==', 'x']]", "t.yaml:1: routes[0].vars[0][0]: empty argument name in \"arg_\"");
    FAILS("[['cookie_', '==', 'x']]", "t.yaml:1: routes[0].vars[0][0]: empty cookie name in \"cookie_\"");
    FAILS("[['uri', 'not', '==', 'x']]",
          "t.yaml:1: routes[0].vars[0][1]: expected \"!\" before the operator, got \"not\"");
    FAILS("[['uri', 1, '==', 'x']]", "t.yaml:1: routes[0].vars[0][1]: expected \"!\" before the operator, got an "
                                     "integer");
    FAILS("[['uri', 5, 'x']]",
          "t.yaml:1: routes[0].vars[0][1]: must be an operator (a string: " OPS "), got an integer");
    FAILS("[['uri', '=~', 'x']]", "t.yaml:1: routes[0].vars[0][1]: unknown operator \"=~\" (use " OPS ")");
    FAILS("[['uri', '!', '=~', 'x']]", "t.yaml:1: routes[0].vars[0][2]: unknown operator \"=~\" (use " OPS ")");
    FAILS("[['uri', '!', '!', 'x']]", "t.yaml:1: routes[0].vars[0][2]: unknown operator \"!\" (use " OPS ")");
}

TEST(value_errors)
{
    FAILS("[['uri', '==', true]]", "t.yaml:1: routes[0].vars[0][2]: must be a string or a number, got a boolean");
    FAILS("[['uri', '~=', [1]]]", "t.yaml:1: routes[0].vars[0][2]: must be a string or a number, got a list");
    FAILS("[['uri', '!', '==', null]]", "t.yaml:1: routes[0].vars[0][3]: must be a string or a number, got null");
    FAILS("[['uri', '>', '5']]",
          "t.yaml:1: routes[0].vars[0][2]: operator \">\" compares numbers: must be a number, got a string");
    FAILS("[['uri', '!', '<=', {a: 1}]]",
          "t.yaml:1: routes[0].vars[0][3]: operator \"<=\" compares numbers: must be a number, got a map");
    FAILS("[['uri', '~~', 1]]",
          "t.yaml:1: routes[0].vars[0][2]: must be a regular expression (a string), got an integer");
    FAILS("[['uri', '~~', '(ab']]", "t.yaml:1: routes[0].vars[0][2]: invalid regular expression \"(ab\": missing "
                                    "closing parenthesis at offset 3");
    FAILS("[['uri', '~*', 'a{2,1}']]", "t.yaml:1: routes[0].vars[0][2]: invalid regular expression \"a{2,1}\": "
                                       "numbers out of order in {} quantifier at offset 5");
    FAILS("[['uri', 'in', 'x']]", "t.yaml:1: routes[0].vars[0][2]: operator \"in\" needs a list of values, got a "
                                  "string");
    FAILS("[['uri', 'in', []]]", "t.yaml:1: routes[0].vars[0][2]: must list at least one value");
    FAILS("[['uri', 'in', ['a', {b: 1}]]]",
          "t.yaml:1: routes[0].vars[0][2][1]: must be a string or a number, got a map");
    FAILS("[['uri', 'has', 1]]", "t.yaml:1: routes[0].vars[0][2]: operator \"has\" needs a string, got an integer");
    FAILS("[['uri', 'has', '']]", "t.yaml:1: routes[0].vars[0][2]: must be one list item: not empty, no comma, no "
                                  "leading or trailing blanks");
    FAILS("[['uri', 'has', 'a,b']]", "t.yaml:1: routes[0].vars[0][2]: must be one list item: not empty, no comma, "
                                     "no leading or trailing blanks");
    FAILS("[['uri', 'has', ' a']]", "t.yaml:1: routes[0].vars[0][2]: must be one list item: not empty, no comma, "
                                    "no leading or trailing blanks");
    FAILS("[['uri', 'ipmatch', '300.1.1.1']]",
          "t.yaml:1: routes[0].vars[0][2]: invalid address or CIDR block \"300.1.1.1\"");
    FAILS("[['uri', 'ipmatch', '10.0.0.0/33']]",
          "t.yaml:1: routes[0].vars[0][2]: invalid address or CIDR block \"10.0.0.0/33\"");
    FAILS("[['uri', 'ipmatch', ['10.0.0.0/8', 'x']]]",
          "t.yaml:1: routes[0].vars[0][2][1]: invalid address or CIDR block \"x\"");
    FAILS("[['uri', '!', 'ipmatch', [1]]]",
          "t.yaml:1: routes[0].vars[0][3][0]: must be an address or CIDR block (a string), got an integer");
    FAILS("[['uri', 'ipmatch', 5]]",
          "t.yaml:1: routes[0].vars[0][2]: must be an address or CIDR block (a string), got an integer");
    FAILS("[['uri', 'ipmatch', []]]", "t.yaml:1: routes[0].vars[0][2]: must list at least one value");
}

int main(void)
{
    pool = torii_pool_create(4096);
    RUN(fixed_variables);
    RUN(headers);
    RUN(args);
    RUN(cookies);
    RUN(equality_and_negation);
    RUN(numbers);
    RUN(missing_variables);
    RUN(regex);
    RUN(has);
    RUN(ipmatch);
    RUN(groups);
    RUN(depth);
    RUN(long_values);
    RUN(structure_errors);
    RUN(condition_errors);
    RUN(value_errors);
    /* Runs the regex cleanups; LeakSanitizer checks they freed everything. */
    torii_pool_destroy(pool);
    return unit_report("test_expr");
}
