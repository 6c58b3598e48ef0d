/* forward.c — upstream request heads and client response heads. */
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "http/forward.h"
#include "http/hdrkind.h"

static void put(torii_buf_t *out, const char *p, size_t n)
{
    torii_buf_append(out, p, n);
}

static void put_str(torii_buf_t *out, torii_str_t s)
{
    torii_buf_append(out, s.p, s.n);
}

static void put_header(torii_buf_t *out, torii_str_t name, torii_str_t value)
{
    put_str(out, name);
    put(out, ": ", 2);
    put_str(out, value);
    put(out, "\r\n", 2);
}

/* Header names listed in Connection headers (beyond the standard
 * hop-by-hop ones): they are hop-by-hop too. Collected once per head. */
typedef struct {
    torii_str_t names[16];
    unsigned n;
    bool overflow; /* more than fit: fall back to scanning */
} conn_names_t;

static void collect_connection_names(const torii_http_head_t *h, conn_names_t *cn)
{
    cn->n = 0;
    cn->overflow = false;
    for (uint32_t i = 0; i < h->nheaders; i++) {
        torii_str_t rest = h->headers[i].value, tok;
        if (h->headers[i].kind != TORII_H_CONNECTION)
            continue;
        while (torii_str_next_token(&rest, &tok)) {
            if (torii_str_ieq(tok, "close") || torii_str_ieq(tok, "keep-alive") || torii_str_ieq(tok, "upgrade"))
                continue;
            if (cn->n == TORII_ARRAY_LEN(cn->names)) {
                cn->overflow = true;
                return;
            }
            cn->names[cn->n++] = tok;
        }
    }
}

static bool named_by_connection(const torii_http_head_t *h, const conn_names_t *cn, torii_str_t name)
{
    if (cn->overflow) {
        for (uint32_t i = 0; i < h->nheaders; i++) {
            torii_str_t rest = h->headers[i].value, tok;
            if (h->headers[i].kind != TORII_H_CONNECTION)
                continue;
            while (torii_str_next_token(&rest, &tok)) {
                if (torii_str_ieq2(tok, name))
                    return true;
            }
        }
        return false;
    }
    for (unsigned i = 0; i < cn->n; i++) {
        if (torii_str_ieq2(cn->names[i], name))
            return true;
    }
    return false;
}

/* Join every X-Forwarded-For value (a client may send several) and append
 * the peer: "a, b, peer". */
static void put_xff(torii_buf_t *out, const torii_http_head_t *h, const torii_forward_ctx_t *ctx)
{
    put(out, "X-Forwarded-For: ", 17);
    if (ctx->trusted) {
        for (uint32_t i = 0; i < h->nheaders; i++) {
            if (h->headers[i].kind == TORII_H_X_FORWARDED_FOR && h->headers[i].value.n) {
                put_str(out, h->headers[i].value);
                put(out, ", ", 2);
            }
        }
    }
    put(out, ctx->client_ip, strlen(ctx->client_ip));
    put(out, "\r\n", 2);
}

/* The client address as seen through trusted proxies: walking the chain
 * from the right, the first address that is not a trusted proxy. */
static torii_str_t real_ip(const torii_http_head_t *h, const torii_forward_ctx_t *ctx)
{
    torii_str_t best = torii_str(ctx->client_ip, strlen(ctx->client_ip));
    if (!ctx->trusted)
        return best;
    for (uint32_t i = h->nheaders; i-- > 0;) {
        torii_str_t v = h->headers[i].value, tok, last;
        if (h->headers[i].kind != TORII_H_X_FORWARDED_FOR)
            continue;
        /* Elements of one header, right to left. */
        for (;;) {
            torii_str_t rest = v;
            last.n = 0;
            while (torii_str_next_token(&rest, &tok))
                last = tok;
            if (last.n == 0)
                break;
            uint8_t ip[16];
            best = last;
            if (!torii_ip_parse(last.p, last.n, ip) || !torii_cidr_list_match(ctx->trusted_list, ctx->ntrusted, ip))
                return last;
            v.n = (size_t)(last.p - v.p);
        }
    }
    return best;
}

static torii_str_t first_value(const torii_http_head_t *h, torii_hdr_kind_t kind)
{
    for (uint32_t i = 0; i < h->nheaders; i++) {
        if (h->headers[i].kind == kind)
            return h->headers[i].value;
    }
    return torii_str("", 0);
}

static void put_forwarding(torii_buf_t *out, const torii_http_head_t *h, const torii_forward_ctx_t *ctx,
                           torii_str_t host)
{
    torii_str_t proto = ctx->trusted ? first_value(h, TORII_H_X_FORWARDED_PROTO) : torii_str("", 0);
    torii_str_t fhost = ctx->trusted ? first_value(h, TORII_H_X_FORWARDED_HOST) : torii_str("", 0);
    put_xff(out, h, ctx);
    put_header(out, TORII_STR("X-Real-IP"), real_ip(h, ctx));
    if (proto.n == 0)
        proto = torii_str(ctx->scheme, strlen(ctx->scheme));
    put_header(out, TORII_STR("X-Forwarded-Proto"), proto);
    if (fhost.n == 0)
        fhost = host;
    if (fhost.n)
        put_header(out, TORII_STR("X-Forwarded-Host"), fhost);
}

/* Does a set or clear edit replace the client's header of this name? */
static bool edited_away(const torii_hdr_edit_t *e, torii_str_t name)
{
    for (; e; e = e->next)
        if (e->op != TORII_EDIT_ADD && torii_str_ieq2(e->name, name))
            return true;
    return false;
}

/* An edit's value goes out unless a later set or clear of the same name
 * replaced it (edits apply in order: set, set gives the second value). */
static void put_edits(torii_buf_t *out, const torii_hdr_edit_t *e)
{
    for (; e; e = e->next)
        if (e->op != TORII_EDIT_CLEAR && !edited_away(e->next, e->name))
            put_header(out, e->name, e->value);
}

void torii_put_header_edits(torii_buf_t *out, const torii_hdr_edit_t *edits)
{
    put_edits(out, edits);
}

void torii_forward_request_head(torii_buf_t *out, const torii_http_head_t *h, const torii_forward_ctx_t *ctx)
{
    torii_str_t host = h->f.host >= 0 ? h->headers[h->f.host].value : torii_str("", 0);
    if (h->authority.n)
        host = h->authority;        /* RFC 9112 3.2.2: the target's authority wins */
    torii_str_t client_host = host; /* X-Forwarded-Host says what the client asked for */
    if (ctx->host.n)
        host = ctx->host;
    put_str(out, ctx->method.n ? ctx->method : h->method_name);
    put(out, " ", 1);
    if (ctx->target.n) {
        put_str(out, ctx->target);
    } else {
        if (h->origin.n == 0 || h->origin.p[0] == '?')
            put(out, "/", 1); /* "http://host?q" has the path "/" */
        put_str(out, h->origin);
    }
    put(out, " HTTP/1.1\r\n", 11);
    conn_names_t cn;
    collect_connection_names(h, &cn);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        torii_str_t n = h->headers[i].name;
        torii_hdr_kind_t k = h->headers[i].kind;
        if (torii_hdr_hop_by_hop(k) || torii_hdr_forwarding(k) || k == TORII_H_EXPECT)
            continue;
        if (k == TORII_H_OTHER && (cn.n || cn.overflow) && named_by_connection(h, &cn, n))
            continue;
        if (ctx->edits && k == TORII_H_OTHER && edited_away(ctx->edits, n))
            continue;
        put_header(out, n, k == TORII_H_HOST ? host : h->headers[i].value);
    }
    put_edits(out, ctx->edits);
    if (h->f.host < 0)
        put_header(out, TORII_STR("Host"), host.n ? host : torii_str(ctx->default_host, strlen(ctx->default_host)));
    if (ctx->chunked)
        put(out, "Transfer-Encoding: chunked\r\n", 28);
    if (h->f.upgrade) {
        put(out, "Connection: upgrade\r\n", 21);
        put_header(out, TORII_STR("Upgrade"), first_value(h, TORII_H_UPGRADE));
    }
    put_forwarding(out, h, ctx, client_host.n ? client_host : host);
    put(out, "\r\n", 2);
}

void torii_forward_response_head(torii_buf_t *out, const torii_http_head_t *h, const torii_response_ctx_t *ctx)
{
    char line[13] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + h->status / 100);
    line[10] = (char)('0' + h->status / 10 % 10);
    line[11] = (char)('0' + h->status % 10);
    put(out, line, sizeof line);
    put_str(out, h->reason);
    put(out, "\r\n", 2);
    conn_names_t cn;
    collect_connection_names(h, &cn);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        torii_str_t name = h->headers[i].name;
        torii_hdr_kind_t k = h->headers[i].kind;
        if (h->status == 101 && k == TORII_H_UPGRADE) {
            put_header(out, name, h->headers[i].value);
            continue;
        }
        if (torii_hdr_hop_by_hop(k) || ((ctx->chunked || ctx->no_length) && k == TORII_H_CONTENT_LENGTH))
            continue;
        if (k == TORII_H_OTHER && (cn.n || cn.overflow) && named_by_connection(h, &cn, name))
            continue;
        if (ctx->edits && k == TORII_H_OTHER && edited_away(ctx->edits, name))
            continue;
        put_header(out, name, h->headers[i].value);
    }
    put_edits(out, ctx->edits);
    if (h->status == 101)
        put(out, "Connection: upgrade\r\n", 21);
    else if (ctx->close)
        put(out, "Connection: close\r\n", 19);
    else if (ctx->keepalive_10)
        put(out, "Connection: keep-alive\r\n", 24);
    if (ctx->chunked)
        put(out, "Transfer-Encoding: chunked\r\n", 28);
    put(out, "\r\n", 2);
}

void torii_chunk_header(torii_buf_t *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char hdr[24];
    int k = (int)sizeof hdr;
    hdr[--k] = '\n';
    hdr[--k] = '\r';
    do {
        hdr[--k] = hex[n & 15];
        n >>= 4;
    } while (n);
    put(out, hdr + k, sizeof hdr - (size_t)k);
}
