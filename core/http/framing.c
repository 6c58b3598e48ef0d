/* framing.c — body length and connection persistence of messages. */
#include "base/common.h"
#include "http/framing.h"
#include "http/hdrkind.h"

typedef struct {
    int content_length; /* index of the header, -1 if none */
    int transfer_encoding;
    int ncl, nte, nhost, nexpect;
    bool close, keepalive, upgrade_token, has_upgrade;
} scan_t;

static void scan_headers(const torii_http_head_t *h, scan_t *s, int *host)
{
    *s = (scan_t){.content_length = -1, .transfer_encoding = -1};
    *host = -1;
    for (uint32_t i = 0; i < h->nheaders; i++) {
        torii_str_t v = h->headers[i].value;
        switch (h->headers[i].kind) {
        case TORII_H_CONTENT_LENGTH:
            s->content_length = (int)i;
            s->ncl++;
            break;
        case TORII_H_TRANSFER_ENCODING:
            s->transfer_encoding = (int)i;
            s->nte++;
            break;
        case TORII_H_HOST:
            *host = (int)i;
            s->nhost++;
            break;
        case TORII_H_CONNECTION:
            s->close |= torii_str_list_has(v, "close");
            s->keepalive |= torii_str_list_has(v, "keep-alive");
            s->upgrade_token |= torii_str_list_has(v, "upgrade");
            break;
        case TORII_H_UPGRADE: s->has_upgrade = true; break;
        case TORII_H_EXPECT: s->nexpect++; break;
        default: break;
        }
    }
}

static int fail(int *status, const char **reason, int code, const char *why)
{
    if (status)
        *status = code;
    *reason = why;
    return TORII_ERROR;
}

/* Content-Length: 1*DIGIT, no sign, no list, no overflow. */
static int parse_length(const torii_http_head_t *h, const scan_t *s, uint64_t *len, int *status, const char **reason)
{
    if (s->ncl > 1)
        return fail(status, reason, 400, "multiple Content-Length headers");
    if (!torii_str_to_u64(h->headers[s->content_length].value, len))
        return fail(status, reason, 400, "invalid Content-Length");
    if (*len > TORII_MAX_CONTENT_LENGTH)
        return fail(status, reason, 400, "Content-Length too large");
    return TORII_OK;
}

/* The coding list must be exactly "chunked"; other codings are refused. */
static int check_chunked(const torii_http_head_t *h, const scan_t *s, int *status, const char **reason)
{
    torii_str_t rest = h->headers[s->transfer_encoding].value, tok, last = {0};
    int n = 0;
    if (s->nte > 1)
        return fail(status, reason, 400, "multiple Transfer-Encoding headers");
    while (torii_str_next_token(&rest, &tok)) {
        last = tok;
        n++;
    }
    if (n == 0 || !torii_str_ieq(last, "chunked"))
        return fail(status, reason, 400, "Transfer-Encoding must end with chunked");
    if (n > 1)
        return fail(status, reason, 501, "unsupported transfer coding");
    return TORII_OK;
}

/* reg-name or IP literal, optional port: nothing that could bend a URL. */
static bool host_is_valid(torii_str_t v)
{
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c <= ' ' || c == '/' || c == '\\' || c == '@' || c == '?' || c == '#' || c == '"' || c == '<' || c == '>' ||
            c == '{' || c == '}' || c == '|' || c == '^' || c == '`' || c == ',' || c >= 0x7f)
            return false;
    }
    return true;
}

static int check_host(torii_http_head_t *h, const scan_t *s, int host, int *status, const char **reason)
{
    if (s->nhost > 1)
        return fail(status, reason, 400, "multiple Host headers");
    if (s->nhost == 0 && h->minor >= 1)
        return fail(status, reason, 400, "missing Host header");
    if (host >= 0 && !host_is_valid(h->headers[host].value))
        return fail(status, reason, 400, "invalid Host header");
    h->f.host = host;
    return TORII_OK;
}

static int check_expect(const torii_http_head_t *h, const scan_t *s, bool *cont, int *status, const char **reason)
{
    int i;
    *cont = false;
    if (s->nexpect == 0)
        return TORII_OK;
    i = torii_head_find(h, "expect");
    if (s->nexpect > 1 || !torii_str_ieq(h->headers[i].value, "100-continue"))
        return fail(status, reason, 417, "unsupported expectation");
    /* HTTP/1.0 clients do not know 100 Continue (RFC 9110 10.1.1). */
    *cont = h->minor >= 1;
    return TORII_OK;
}

int torii_request_framing(torii_http_head_t *h, int *status, const char **reason)
{
    scan_t s;
    int host;
    scan_headers(h, &s, &host);
    h->f = (torii_framing_t){.body = TORII_BODY_NONE, .host = -1};
    if (s.ncl > 0 && s.nte > 0)
        return fail(status, reason, 400, "both Content-Length and Transfer-Encoding");
    if (s.nte > 0) {
        if (h->minor == 0)
            return fail(status, reason, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (check_chunked(h, &s, status, reason) != TORII_OK)
            return TORII_ERROR;
        h->f.body = TORII_BODY_CHUNKED;
    } else if (s.ncl > 0) {
        if (parse_length(h, &s, &h->f.content_length, status, reason) != TORII_OK)
            return TORII_ERROR;
        h->f.body = h->f.content_length > 0 ? TORII_BODY_LENGTH : TORII_BODY_NONE;
    }
    if (check_host(h, &s, host, status, reason) != TORII_OK)
        return TORII_ERROR;
    if (check_expect(h, &s, &h->f.expect_continue, status, reason) != TORII_OK)
        return TORII_ERROR;
    h->f.keepalive = h->minor >= 1 ? !s.close : (s.keepalive && !s.close);
    /* An upgrade with a body is not one we tunnel: it stays plain HTTP. */
    h->f.upgrade = s.upgrade_token && s.has_upgrade && h->f.body == TORII_BODY_NONE;
    return TORII_OK;
}

static bool response_has_body(const torii_http_head_t *h, torii_method_t method)
{
    return method != TORII_M_HEAD && h->status >= 200 && h->status != 204 && h->status != 304;
}

int torii_response_framing(torii_http_head_t *h, torii_method_t method, const char **reason)
{
    scan_t s;
    int host;
    scan_headers(h, &s, &host);
    h->f = (torii_framing_t){.body = TORII_BODY_CLOSE, .host = -1};
    if (s.ncl > 0 && s.nte > 0)
        return fail(NULL, reason, 502, "upstream sent both Content-Length and Transfer-Encoding");
    if (s.nte > 0 && (s.nte > 1 || !torii_str_ieq(torii_str_trim(h->headers[s.transfer_encoding].value), "chunked")))
        return fail(NULL, reason, 502, "upstream sent an unsupported Transfer-Encoding");
    if (s.ncl > 0 && parse_length(h, &s, &h->f.content_length, NULL, reason) != TORII_OK)
        return fail(NULL, reason, 502,
                    s.ncl > 1 ? "upstream sent multiple Content-Length headers"
                              : "upstream sent an invalid Content-Length");
    if (!response_has_body(h, method))
        h->f.body = TORII_BODY_NONE;
    else if (s.nte > 0)
        h->f.body = TORII_BODY_CHUNKED;
    else if (s.ncl > 0)
        h->f.body = h->f.content_length > 0 ? TORII_BODY_LENGTH : TORII_BODY_NONE;
    h->f.keepalive = (h->minor >= 1 ? !s.close : (s.keepalive && !s.close)) && h->f.body != TORII_BODY_CLOSE;
    h->f.upgrade = h->status == 101;
    return TORII_OK;
}
