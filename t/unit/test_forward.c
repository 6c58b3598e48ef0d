/* test_forward.c — heads torii writes upstream and downstream
 * (core/http/forward.c). */
#include "unit.h"

#include "base/cidr.h"
#include "base/common.h"
#include "http/forward.h"
#include "http/head.h"

static torii_header_t slots[64];

static torii_http_head_t parse(const char *raw)
{
    torii_http_head_t h = {.headers = slots, .max_headers = 64};
    size_t scanned = 0;
    uint32_t hl;
    int status;
    const char *why;
    if (torii_head_find_end(raw, strlen(raw), 65536, &scanned, &hl, &status, &why) != TORII_OK ||
        torii_request_head_parse(raw, hl, &h, &status, &why) != TORII_OK)
        fprintf(stderr, "  parse failed: %s\n", why);
    return h;
}

static char out_text[4096];

static const char *forward(const char *raw, bool trusted, bool chunked)
{
    torii_http_head_t h = parse(raw);
    torii_buf_t out = {0};
    static torii_cidr_t trust[1];
    uint8_t ip16[16];
    torii_cidr_parse("10.0.0.0/8", 10, &trust[0]);
    torii_ip_parse("10.0.0.2", 8, ip16);
    torii_forward_ctx_t ctx = {.client_ip = "10.0.0.2",
                               .client_ip16 = ip16,
                               .trusted = trusted,
                               .trusted_list = trust,
                               .ntrusted = 1,
                               .scheme = "http",
                               .default_host = "up:9000",
                               .chunked = chunked};
    torii_forward_request_head(&out, &h, &ctx);
    snprintf(out_text, sizeof out_text, "%.*s", (int)torii_buf_len(&out), torii_buf_pos(&out));
    torii_buf_release(&out);
    return out_text;
}

#define FWD_UNTRUSTED "X-Forwarded-For: 10.0.0.2\r\nX-Real-IP: 10.0.0.2\r\nX-Forwarded-Proto: http\r\n"

TEST(plain_request)
{
    CHECK_STR(forward("GET /a?b HTTP/1.1\r\nHost: ex\r\nuser-agent: t\r\n\r\n", false, false),
              "GET /a?b HTTP/1.1\r\nHost: ex\r\nuser-agent: t\r\n" FWD_UNTRUSTED "X-Forwarded-Host: ex\r\n\r\n");
}

TEST(hop_by_hop_removed)
{
    CHECK_STR(forward("GET / HTTP/1.1\r\nHost: ex\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n"
                      "X-Secret: 1\r\nTE: trailers\r\nTrailer: X\r\nProxy-Connection: x\r\nUpgrade: h2c\r\n"
                      "X-Kept: y\r\n\r\n",
                      false, false),
              "GET / HTTP/1.1\r\nHost: ex\r\nX-Kept: y\r\n" FWD_UNTRUSTED "X-Forwarded-Host: ex\r\n\r\n");
}

TEST(one_framing_header)
{
    CHECK_STR(forward("POST / HTTP/1.1\r\nHost: ex\r\ncontent-length: 3\r\n\r\n", false, false),
              "POST / HTTP/1.1\r\nHost: ex\r\ncontent-length: 3\r\n" FWD_UNTRUSTED "X-Forwarded-Host: ex\r\n\r\n");
    CHECK_STR(forward("POST / HTTP/1.1\r\nHost: ex\r\ntransfer-encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
                      false, true),
              "POST / HTTP/1.1\r\nHost: ex\r\nTransfer-Encoding: chunked\r\n" FWD_UNTRUSTED
              "X-Forwarded-Host: ex\r\n\r\n");
}

TEST(untrusted_forwarding_headers_replaced)
{
    CHECK_STR(forward("GET / HTTP/1.1\r\nHost: ex\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"
                      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n",
                      false, false),
              "GET / HTTP/1.1\r\nHost: ex\r\n" FWD_UNTRUSTED "X-Forwarded-Host: ex\r\n\r\n");
}

TEST(trusted_chain)
{
    /* 1.1.1.1 is the client; 10.9.9.9 a trusted proxy in front of us. */
    CHECK_STR(forward("GET / HTTP/1.1\r\nHost: ex\r\nX-Forwarded-For: 2.2.2.2, 1.1.1.1\r\n"
                      "X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: pub\r\n\r\n",
                      true, false),
              "GET / HTTP/1.1\r\nHost: ex\r\nX-Forwarded-For: 2.2.2.2, 1.1.1.1, 10.9.9.9, 10.0.0.2\r\n"
              "X-Real-IP: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: pub\r\n\r\n");
    CHECK_STR(forward("GET / HTTP/1.1\r\nHost: ex\r\n\r\n", true, false),
              "GET / HTTP/1.1\r\nHost: ex\r\n" FWD_UNTRUSTED "X-Forwarded-Host: ex\r\n\r\n");
    /* garbage in the chain stops the walk there */
    CHECK(strstr(forward("GET / HTTP/1.1\r\nHost: ex\r\nX-Forwarded-For: 1.1.1.1, junk\r\n\r\n", true, false),
                 "X-Real-IP: junk\r\n"));
}

TEST(host_fallbacks)
{
    CHECK(strstr(forward("GET / HTTP/1.0\r\n\r\n", false, false), "\r\nHost: up:9000\r\n"));
    CHECK_STR(forward("GET http://api.ex:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n", false, false),
              "GET /p?q HTTP/1.1\r\nHost: api.ex:81\r\n" FWD_UNTRUSTED "X-Forwarded-Host: api.ex:81\r\n\r\n");
    /* found by the fuzzer: an absolute-form target without a path */
    CHECK_STR(forward("GET http://a HTTP/1.1\r\nHost: b\r\n\r\n", false, false),
              "GET / HTTP/1.1\r\nHost: a\r\n" FWD_UNTRUSTED "X-Forwarded-Host: a\r\n\r\n");
    /* an empty path before a query is "/" (RFC 3986 6.2.3) */
    CHECK_STR(forward("GET http://a?x=1 HTTP/1.1\r\nHost: b\r\n\r\n", false, false),
              "GET /?x=1 HTTP/1.1\r\nHost: a\r\n" FWD_UNTRUSTED "X-Forwarded-Host: a\r\n\r\n");
}

TEST(upgrade_kept)
{
    CHECK_STR(
        forward("GET /ws HTTP/1.1\r\nHost: ex\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, false),
        "GET /ws HTTP/1.1\r\nHost: ex\r\nConnection: upgrade\r\nUpgrade: websocket\r\n" FWD_UNTRUSTED
        "X-Forwarded-Host: ex\r\n\r\n");
}

static const char *respond(const char *raw, torii_response_ctx_t ctx)
{
    torii_http_head_t h = {.headers = slots, .max_headers = 64};
    torii_buf_t out = {0};
    size_t scanned = 0;
    uint32_t hl;
    int status;
    const char *why;
    torii_head_find_end(raw, strlen(raw), 65536, &scanned, &hl, &status, &why);
    torii_response_head_parse(raw, hl, TORII_M_GET, &h, &why);
    torii_forward_response_head(&out, &h, &ctx);
    snprintf(out_text, sizeof out_text, "%.*s", (int)torii_buf_len(&out), torii_buf_pos(&out));
    torii_buf_release(&out);
    return out_text;
}

TEST(response_heads)
{
    torii_response_ctx_t plain = {0}, chunk = {.chunked = true}, close = {.close = true}, ka10 = {.keepalive_10 = true};
    CHECK_STR(respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-H\r\nX-H: 1\r\n"
                      "Keep-Alive: timeout=5\r\nSet-Cookie: a\r\n\r\n",
                      plain),
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a\r\n\r\n");
    CHECK_STR(respond("HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\n\r\n", chunk),
              "HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK_STR(respond("HTTP/1.0 200 OK\r\n\r\n", close), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    CHECK_STR(respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ka10),
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_STR(respond("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", plain),
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
}

int main(void)
{
    RUN(plain_request);
    RUN(hop_by_hop_removed);
    RUN(one_framing_header);
    RUN(untrusted_forwarding_headers_replaced);
    RUN(trusted_chain);
    RUN(host_fallbacks);
    RUN(upgrade_kept);
    RUN(response_heads);
    return unit_report("test_forward");
}
