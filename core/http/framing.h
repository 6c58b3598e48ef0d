/*
 * framing.h — how long a message's body is, and whether the connection
 * survives it: the Content-Length / Transfer-Encoding rules of RFC 9112
 * section 6, applied strictly, since disagreeing with an upstream about
 * where a message ends is what request smuggling is made of.
 */
#ifndef TORII_FRAMING_H
#define TORII_FRAMING_H

#include "http/head.h"

/* Largest body length torii accepts in a Content-Length (2^62). */
#define TORII_MAX_CONTENT_LENGTH (1ULL << 62)

/*
 * Fill h->f for a request. Rejects (400) two Content-Length headers, a
 * non-numeric or overflowing one, Content-Length with Transfer-Encoding, two
 * Transfer-Encoding headers, a coding list not ending in chunked, chunked in
 * HTTP/1.0, a missing or repeated Host in HTTP/1.1, a malformed Host; 501 for
 * codings before chunked (none are implemented); 417 for an Expect other than
 * 100-continue.
 */
int torii_request_framing(torii_http_head_t *h, int *status, const char **reason);

/*
 * Fill h->f for a response to a request made with `method`. Rejects
 * repeated or malformed Content-Length, Transfer-Encoding other than
 * chunked, and both together.
 */
int torii_response_framing(torii_http_head_t *h, torii_method_t method, const char **reason);

#endif
