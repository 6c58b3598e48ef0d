/* status.c — status phrases and error responses. */
#include <stdio.h>

#include "http/forward.h"
#include "http/status.h"

const char *torii_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void torii_error_response(torii_buf_t *out, int status, const char *why, const char *request_id, bool close, bool head,
                          const struct torii_hdr_edit_s *extra)
{
    char body[512];
    const char *phrase = torii_status_reason(status);
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}\n", phrase, why,
                     request_id);
    if (n < 0 || n >= (int)sizeof body)
        n = 0;
    torii_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", status, phrase,
                     n);
    torii_put_header_edits(out, extra);
    torii_buf_printf(out, "%s\r\n", close ? "Connection: close\r\n" : "");
    if (!head)
        torii_buf_append(out, body, (size_t)n);
}

void torii_exit_response(torii_buf_t *out, int status, const struct torii_hdr_edit_s *headers, const char *body,
                         size_t blen, bool close, bool head)
{
    torii_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, torii_status_reason(status));
    torii_put_header_edits(out, headers);
    /* 204 and 304 have no body, and 204 no Content-Length (RFC 9110 8.6). */
    if (status == 204 || status == 304)
        blen = 0;
    if (status != 204)
        torii_buf_printf(out, "Content-Length: %zu\r\n", blen);
    torii_buf_printf(out, "%s\r\n", close ? "Connection: close\r\n" : "");
    if (!head)
        torii_buf_append(out, body, blen);
}
