/*
 * test_framing.c — request/response head parsing and the strict framing
 * rules (core/http/head.c, framing.c, chunked.c).
 */
#include "unit.h"

#include "base/common.h"
#include "http/chunked.h"
#include "http/framing.h"
#include "http/head.h"

#define MAXH 100

static torii_header_t slots[MAXH];

typedef struct {
    int rc, status;
    const char *reason;
    torii_http_head_t h;
} parsed_t;

/* Find the head's end and parse it, the way the client connection does. */
static parsed_t parse_req(const char *raw, size_t max_head)
{
    parsed_t p = {.status = 0};
    size_t scanned = 0;
    uint32_t head_len = 0;
    p.h.headers = slots;
    p.h.max_headers = MAXH;
    p.rc = torii_head_find_end(raw, strlen(raw), max_head, &scanned, &head_len, &p.status, &p.reason);
    if (p.rc == TORII_OK)
        p.rc = torii_request_head_parse(raw, head_len, &p.h, &p.status, &p.reason);
    return p;
}

static parsed_t req(const char *raw)
{
    return parse_req(raw, 32768);
}

/* Expect a rejection with this status and a reason containing `word`. */
static int rejected(const char *raw, int status, const char *word)
{
    parsed_t p = req(raw);
    if (p.rc != TORII_ERROR || p.status != status || !p.reason || !strstr(p.reason, word)) {
        fprintf(stderr, "  for %s\n  got rc=%d status=%d reason=%s\n", raw, p.rc, p.status,
                p.reason ? p.reason : "(none)");
        return 0;
    }
    return 1;
}

TEST(simple_get)
{
    parsed_t p = req("GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK_INT(p.h.method, TORII_M_GET);
    CHECK_SLICE(p.h.method_name, "GET");
    CHECK_SLICE(p.h.target, "/a/b?x=1&y");
    CHECK_SLICE(p.h.path, "/a/b");
    CHECK_SLICE(p.h.query, "x=1&y");
    CHECK_INT(p.h.major, 1);
    CHECK_INT(p.h.minor, 1);
    CHECK_INT(p.h.nheaders, 2);
    CHECK_SLICE(p.h.headers[0].name, "Host");
    CHECK_SLICE(p.h.headers[0].value, "example.com");
    CHECK_INT(p.h.f.body, TORII_BODY_NONE);
    CHECK(p.h.f.keepalive);
    CHECK_INT(p.h.f.host, 0);
}

TEST(header_values_trimmed_case_kept)
{
    parsed_t p = req("GET / HTTP/1.1\r\nhOsT:   x  \r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK_SLICE(p.h.headers[0].name, "hOsT");
    CHECK_SLICE(p.h.headers[0].value, "x");
    CHECK_SLICE(p.h.headers[1].value, "");
    CHECK_SLICE(p.h.headers[2].value, "v");
}

TEST(content_length_body)
{
    parsed_t p = req("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 42\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK_INT(p.h.f.body, TORII_BODY_LENGTH);
    CHECK_INT(p.h.f.content_length, 42);
    p = req("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(p.h.f.body, TORII_BODY_NONE);
}

TEST(chunked_body)
{
    parsed_t p = req("POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK_INT(p.h.f.body, TORII_BODY_CHUNKED);
}

TEST(connection_semantics)
{
    parsed_t p = req("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(!p.h.f.keepalive);
    p = req("GET / HTTP/1.0\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK(!p.h.f.keepalive);
    CHECK_INT(p.h.f.host, -1);
    p = req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK(p.h.f.keepalive);
    p = req("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    CHECK(p.h.f.upgrade);
    p = req("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
    CHECK(!p.h.f.upgrade);
    p = req("POST /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\n");
    CHECK(!p.h.f.upgrade); /* an upgrade with a body stays plain HTTP */
}

TEST(expect)
{
    parsed_t p = req("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    CHECK(p.h.f.expect_continue);
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417, "expectation"));
    p = req("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    CHECK(!p.h.f.expect_continue); /* 1.0 clients do not know 100 */
}

TEST(absolute_form)
{
    parsed_t p = req("GET http://api.example:8080/v1/x?q=2 HTTP/1.1\r\nHost: other\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK_SLICE(p.h.authority, "api.example:8080");
    CHECK_SLICE(p.h.path, "/v1/x");
    CHECK_SLICE(p.h.query, "q=2");
    p = req("GET http://api.example HTTP/1.1\r\nHost: other\r\n\r\n");
    CHECK_SLICE(p.h.path, "/");
    CHECK(rejected("GET ftp://a/b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "scheme"));
    CHECK(rejected("GET http://u@a/b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "authority"));
    CHECK(rejected("GET x/y HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request"));
    p = req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(p.rc, TORII_OK);
    CHECK(rejected("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "target"));
}

TEST(rejects_cl_and_te)
{
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                   "both Content-Length and Transfer-Encoding"));
    CHECK(
        rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both"));
}

TEST(rejects_bad_transfer_encoding)
{
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "end with chunked"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "end with chunked"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400, "chunked"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", 400, "chunked"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400, "chunked"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "transfer coding"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                   400, "multiple Transfer-Encoding"));
    CHECK(rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"));
}

TEST(rejects_bad_content_length)
{
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400,
                   "multiple Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "invalid Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400, "invalid Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400, "invalid Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n", 400, "invalid Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400, "invalid Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400,
                   "Content-Length"));
    CHECK(rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n", 400, "too large"));
}

TEST(rejects_bad_header_lines)
{
    CHECK(rejected("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace before colon"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400, "whitespace before colon"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "folding"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\n\tX-A: 1\r\n\r\n", 400, "folding"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A 1\r\n\r\n", 400, "without colon"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400, "empty header name"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\nX(A): v\r\n\r\n", 400, "header name"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400, "header value"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", 400, "header value"));
}

TEST(rejects_bare_cr_lf_nul)
{
    CHECK(rejected("GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\n\r\n", 400, "bare LF"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\n\n", 400, "bare LF"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, "bare CR"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\r\n\r\n", 400, "bare CR"));
    /* A NUL cannot be written in a C literal passed to strlen: build it. */
    char raw[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: aZb\r\n\r\n";
    size_t scanned = 0;
    uint32_t hl;
    int status = 0;
    const char *why = NULL;
    *strchr(raw, 'Z') = '\0';
    CHECK_INT(torii_head_find_end(raw, sizeof raw - 1, 32768, &scanned, &hl, &status, &why), TORII_ERROR);
    CHECK(why && strstr(why, "NUL"));
}

TEST(rejects_bad_request_line)
{
    CHECK(rejected("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line"));
    CHECK(rejected("GET /\r\nHost: x\r\n\r\n", 400, "request line"));
    CHECK(rejected("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, "version"));
    CHECK(rejected("GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400, "version"));
    CHECK(rejected("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line"));
    CHECK(rejected("FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "unknown method"));
    CHECK(rejected("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version"));
    CHECK(rejected("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405, "CONNECT"));
}

TEST(rejects_bad_host)
{
    CHECK(rejected("GET / HTTP/1.1\r\n\r\n", 400, "missing Host"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "multiple Host"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "invalid Host"));
    CHECK(rejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host"));
    CHECK_INT(req("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").rc, TORII_OK);
}

TEST(limits)
{
    char big[2048];
    parsed_t p;
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    big[sizeof big - 1] = '\0';
    p = parse_req(big, 1024);
    CHECK_INT(p.status, 414);
    p = parse_req(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 40);
    CHECK_INT(p.status, 431);
    /* Incomplete but within the limit: wait for more. */
    p = parse_req("GET / HTTP/1.1\r\nHost: x\r\n", 1024);
    CHECK_INT(p.rc, TORII_AGAIN);
    p = parse_req("GET / HTTP/1.1\r\nHost: x\r", 1024);
    CHECK_INT(p.rc, TORII_AGAIN);
}

TEST(too_many_headers)
{
    char raw[8192] = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < MAXH; i++)
        strcat(raw, "X-A: 1\r\n");
    strcat(raw, "\r\n");
    CHECK(rejected(raw, 431, "too many"));
}

TEST(incremental_find_end)
{
    const char *raw = "GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
    size_t scanned = 0;
    uint32_t hl = 0;
    int status;
    const char *why;
    for (size_t n = 1; n < 27; n++)
        CHECK_INT(torii_head_find_end(raw, n, 1024, &scanned, &hl, &status, &why), TORII_AGAIN);
    CHECK_INT(torii_head_find_end(raw, strlen(raw), 1024, &scanned, &hl, &status, &why), TORII_OK);
    CHECK_INT(hl, 27);
}

/* Decode a whole chunked body fed in pieces of `step` bytes. */
static int decode_all(const char *in, size_t len, size_t step, char *out, size_t *outlen, const char **why, size_t *end)
{
    torii_chunked_t c;
    size_t pos = 0, avail_to = 0;
    *outlen = 0;
    torii_chunked_init(&c);
    while (pos < len) {
        size_t used;
        torii_str_t data;
        int rc;
        if (avail_to < pos + 1)
            avail_to = pos + step < len ? pos + step : len;
        rc = torii_chunked_decode(&c, in + pos, avail_to - pos, &used, &data, why);
        memcpy(out + *outlen, data.p, data.n);
        *outlen += data.n;
        pos += used;
        if (rc == TORII_DONE) {
            *end = pos;
            return rc;
        }
        if (rc == TORII_ERROR)
            return rc;
    }
    return TORII_AGAIN;
}

TEST(chunked_decode_ok)
{
    const char *body =
        "5\r\nhello\r\n6;ext=1;q=\"x\"\r\n world\r\nA \t;e\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
    char out[64];
    size_t outlen, end = 0;
    const char *why;
    for (size_t step = 1; step <= strlen(body); step++) {
        CHECK_INT(decode_all(body, strlen(body), step, out, &outlen, &why, &end), TORII_DONE);
        CHECK_INT(outlen, 21);
        CHECK(memcmp(out, "hello world0123456789", 21) == 0);
        CHECK_INT(end, strlen(body) - 4);
    }
}

static int chunk_rejected(const char *body, const char *word)
{
    char out[256];
    size_t outlen, end;
    const char *why = NULL;
    int rc = decode_all(body, strlen(body), strlen(body), out, &outlen, &why, &end);
    if (rc != TORII_ERROR || !why || !strstr(why, word)) {
        fprintf(stderr, "  chunked %s: rc=%d why=%s\n", body, rc, why ? why : "(none)");
        return 0;
    }
    return 1;
}

TEST(chunked_decode_rejects)
{
    CHECK(chunk_rejected("zz\r\n", "invalid chunk size"));
    CHECK(chunk_rejected("\r\n", "invalid chunk size"));
    CHECK(chunk_rejected("5 x\r\nhello\r\n0\r\n\r\n", "size line"));
    CHECK(chunk_rejected("5 \r\nhello\r\n0\r\n\r\n", "size line"));
    CHECK(chunk_rejected("0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"));
    CHECK(chunk_rejected("-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"));
    CHECK(chunk_rejected("5\r\nhelloXX0\r\n\r\n", "not followed by CRLF"));
    CHECK(chunk_rejected("5\r\nhello\n0\r\n\r\n", "not followed by CRLF"));
    CHECK(chunk_rejected("5\nhello\r\n0\r\n\r\n", "invalid chunk size"));
    CHECK(chunk_rejected("5\r\rhello\r\n", "CRLF"));
    CHECK(chunk_rejected("fffffffffffffffffff\r\n", "too large"));
    CHECK(chunk_rejected("5;a\x01\r\nhello\r\n", "extension"));
    CHECK(chunk_rejected("0\r\nX: a\x01\r\n\r\n", "trailer"));
    CHECK(chunk_rejected("0\r\n folded\r\n\r\n", "trailer"));
    CHECK(chunk_rejected("0\r\n\rX", "CRLF"));
}

TEST(chunked_limits)
{
    char line[TORII_CHUNK_LINE_MAX + 32] = "1;";
    memset(line + 2, 'a', TORII_CHUNK_LINE_MAX);
    strcpy(line + 2 + TORII_CHUNK_LINE_MAX, "\r\n");
    CHECK(chunk_rejected(line, "too long"));
}

static parsed_t resp(const char *raw, torii_method_t m)
{
    parsed_t p = {0};
    size_t scanned = 0;
    uint32_t hl;
    p.h.headers = slots;
    p.h.max_headers = MAXH;
    p.rc = torii_head_find_end(raw, strlen(raw), 32768, &scanned, &hl, &p.status, &p.reason);
    if (p.rc == TORII_OK)
        p.rc = torii_response_head_parse(raw, hl, m, &p.h, &p.reason);
    return p;
}

TEST(response_framing)
{
    parsed_t p = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", TORII_M_GET);
    CHECK_INT(p.rc, TORII_OK);
    CHECK_INT(p.h.status, 200);
    CHECK_SLICE(p.h.reason, "OK");
    CHECK_INT(p.h.f.body, TORII_BODY_LENGTH);
    CHECK(p.h.f.keepalive);
    p = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", TORII_M_HEAD);
    CHECK_INT(p.h.f.body, TORII_BODY_NONE);
    p = resp("HTTP/1.1 204 No Content\r\n\r\n", TORII_M_GET);
    CHECK_INT(p.h.f.body, TORII_BODY_NONE);
    p = resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", TORII_M_GET);
    CHECK_INT(p.h.f.body, TORII_BODY_NONE);
    p = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TORII_M_GET);
    CHECK_INT(p.h.f.body, TORII_BODY_CHUNKED);
    p = resp("HTTP/1.1 200 OK\r\n\r\n", TORII_M_GET);
    CHECK_INT(p.h.f.body, TORII_BODY_CLOSE);
    CHECK(!p.h.f.keepalive);
    p = resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", TORII_M_GET);
    CHECK(!p.h.f.keepalive);
    p = resp("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", TORII_M_GET);
    CHECK_INT(p.rc, TORII_OK);
    CHECK_SLICE(p.h.reason, "");
    p = resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", TORII_M_GET);
    CHECK(p.h.f.upgrade);
}

TEST(response_rejects)
{
    CHECK_INT(resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
    CHECK_INT(resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", TORII_M_GET).rc,
              TORII_ERROR);
    CHECK_INT(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
    CHECK_INT(resp("HTTP/1.1 2000 OK\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
    CHECK_INT(resp("HTTP/2 200 OK\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
    CHECK_INT(resp("HELLO THIS IS NOT HTTP\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
    CHECK_INT(resp("HTTP/1.1 200 OK\r\nX : y\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
    CHECK_INT(resp("HTTP/1.1 200 O\x01K\r\n\r\n", TORII_M_GET).rc, TORII_ERROR);
}

int main(void)
{
    RUN(simple_get);
    RUN(header_values_trimmed_case_kept);
    RUN(content_length_body);
    RUN(chunked_body);
    RUN(connection_semantics);
    RUN(expect);
    RUN(absolute_form);
    RUN(rejects_cl_and_te);
    RUN(rejects_bad_transfer_encoding);
    RUN(rejects_bad_content_length);
    RUN(rejects_bad_header_lines);
    RUN(rejects_bare_cr_lf_nul);
    RUN(rejects_bad_request_line);
    RUN(rejects_bad_host);
    RUN(limits);
    RUN(too_many_headers);
    RUN(incremental_find_end);
    RUN(chunked_decode_ok);
    RUN(chunked_decode_rejects);
    RUN(chunked_limits);
    RUN(response_framing);
    RUN(response_rejects);
    return unit_report("test_framing");
}
