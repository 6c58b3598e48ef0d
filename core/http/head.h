/*
 * head.h — request and response heads: finding where a head ends, and
 * parsing it (with http-parser) into slices of the caller's buffer.
 *
 * http-parser as packaged is the lenient build: it accepts whitespace before
 * a header's colon, bare LF line ends, obs-fold continuation lines and chunk
 * data not followed by CRLF. A proxy that accepts what its upstream parses
 * differently invites request smuggling, so this file adds the strict checks
 * (RFC 9112) around it, and chunked bodies are decoded by chunked.c instead.
 */
#ifndef TORII_HEAD_H
#define TORII_HEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/str.h"

typedef enum {
    TORII_M_OTHER,
    TORII_M_GET,
    TORII_M_HEAD,
    TORII_M_POST,
    TORII_M_PUT,
    TORII_M_DELETE,
    TORII_M_OPTIONS,
    TORII_M_TRACE,
    TORII_M_PATCH,
    TORII_M_CONNECT,
} torii_method_t;

typedef enum {
    TORII_BODY_NONE,
    TORII_BODY_LENGTH,  /* Content-Length bytes */
    TORII_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    TORII_BODY_CLOSE,   /* responses only: read until the upstream closes */
} torii_body_kind_t;

typedef struct {
    torii_str_t name;
    torii_str_t value;
    uint8_t kind; /* torii_hdr_kind_t */
} torii_header_t;

/* Header flags computed while checking framing (see framing.h). */
typedef struct {
    torii_body_kind_t body;
    uint64_t content_length;
    bool keepalive;       /* the connection may carry another message */
    bool upgrade;         /* Connection: upgrade with an Upgrade header */
    bool expect_continue; /* Expect: 100-continue */
    int host;             /* index of the Host header, -1 if none */
} torii_framing_t;

typedef struct {
    /* request line, or the status line of a response */
    torii_method_t method;
    torii_str_t method_name;
    torii_str_t target;    /* as the client sent it */
    torii_str_t path;      /* target before '?' */
    torii_str_t query;     /* after '?', without it */
    torii_str_t authority; /* host of an absolute-form target, else empty */
    torii_str_t origin;    /* the target in origin form (what goes upstream) */
    int status;
    torii_str_t reason; /* reason phrase of a response */
    uint8_t major, minor;
    torii_header_t *headers; /* caller-provided storage */
    uint32_t nheaders;
    uint32_t max_headers;
    uint32_t head_len; /* bytes of the head, blank line included */
    torii_framing_t f;
} torii_http_head_t;

/*
 * Where the head in buf[0..len) ends. *scanned keeps the progress between
 * calls (start it at 0) so a slowly arriving head is not rescanned.
 * Returns TORII_OK with h->head_len set, TORII_AGAIN if incomplete (and
 * within max_head bytes), or TORII_ERROR with *status (400, 414, 431) and
 * *reason. Rejects bare CR, bare LF and NUL anywhere in the head.
 */
int torii_head_find_end(const char *buf, size_t len, size_t max_head, size_t *scanned, uint32_t *head_len, int *status,
                        const char **reason);

/*
 * Parse a complete request head buf[0..head_len) found by
 * torii_head_find_end. Slices point into buf. On TORII_ERROR, *status and
 * *reason say why (400, 431 for too many headers, 405 for CONNECT).
 */
int torii_request_head_parse(const char *buf, uint32_t head_len, torii_http_head_t *h, int *status,
                             const char **reason);

/* Parse a complete response head to a request made with req_method (which
 * decides whether a body follows); TORII_ERROR with *reason if invalid. */
int torii_response_head_parse(const char *buf, uint32_t head_len, torii_method_t req_method, torii_http_head_t *h,
                              const char **reason);

/* Index of the first header with this name (lowercase literal), or -1. */
int torii_head_find(const torii_http_head_t *h, const char *lower_name);

/* Is p[0..n) a token (RFC 9110), as a header name must be? (n > 0) */
bool torii_http_token(const char *p, size_t n);

#endif
