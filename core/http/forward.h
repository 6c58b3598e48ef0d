/*
 * forward.h — the heads torii writes: the request it sends upstream, and
 * the response head it sends back to the client.
 *
 * Both keep header names as received (case and order), drop hop-by-hop
 * headers (RFC 9110 7.6.1: Connection and the headers it names,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade),
 * and write exactly one framing header. No header the client sent once
 * is sent twice.
 */
#ifndef TORII_FORWARD_H
#define TORII_FORWARD_H

#include <stdbool.h>

#include "base/buf.h"
#include "base/cidr.h"
#include "http/head.h"

/* A plugin's change to a header of the upstream request (or of an
 * answer it makes itself): set replaces every occurrence, add appends,
 * clear removes. Kept in order in the request's arena. */
typedef enum { TORII_EDIT_SET, TORII_EDIT_ADD, TORII_EDIT_CLEAR } torii_edit_op_t;

typedef struct torii_hdr_edit_s {
    struct torii_hdr_edit_s *next;
    torii_str_t name, value;
    torii_edit_op_t op;
} torii_hdr_edit_t;

typedef struct {
    const char *client_ip;            /* text form of the peer address */
    const uint8_t *client_ip16;       /* 16-byte form, for CIDR checks */
    bool trusted;                     /* peer is a trusted proxy: keep its X-Forwarded-* */
    const torii_cidr_t *trusted_list; /* to find X-Real-IP in a chain */
    uint32_t ntrusted;
    const char *scheme;               /* "http" */
    const char *default_host;         /* Host for HTTP/1.0 requests without one */
    bool chunked;                     /* re-frame the body as chunked */
    const torii_hdr_edit_t *edits;    /* plugins' header changes, or NULL */
    torii_str_t target, method, host; /* plugins' replacements, when not empty */
} torii_forward_ctx_t;

/* Append the upstream request head for client request h. */
void torii_forward_request_head(torii_buf_t *out, const torii_http_head_t *h, const torii_forward_ctx_t *ctx);

typedef struct {
    bool chunked;                  /* torii chunks the body for the client */
    bool close;                    /* the client connection closes after this response */
    bool keepalive_10;             /* HTTP/1.0 client keeps the connection: say so */
    bool no_length;                /* the body's length will change (body_filter): drop Content-Length */
    const torii_hdr_edit_t *edits; /* plugins' header changes, or NULL */
} torii_response_ctx_t;

/* Append the header lines a list of edits leaves (for torii's own answers). */
void torii_put_header_edits(torii_buf_t *out, const torii_hdr_edit_t *edits);

/* Append the client response head for upstream response h. */
void torii_forward_response_head(torii_buf_t *out, const torii_http_head_t *h, const torii_response_ctx_t *ctx);

/* Append "<hex size>\r\n" (chunk header) for n > 0 bytes. */
void torii_chunk_header(torii_buf_t *out, size_t n);

#endif
