/* status.h — reason phrases and torii's own error responses. */
#ifndef TORII_STATUS_H
#define TORII_STATUS_H

#include <stdbool.h>

#include "base/buf.h"

/* "Not Found" for 404; "Unknown" for codes without a phrase. */
const char *torii_status_reason(int status);

/*
 * Append a complete error response: status line, JSON body
 * {"error": reason phrase, "message": why, "request_id": id}, Content-Length,
 * and `Connection: close` when close is set. `why` must be a fixed string
 * (it is not escaped). For HEAD requests the body is left out.
 */
/* `extra`: header lines plugins set for the response (X-RateLimit-*, ...),
 * which an error answer carries too; may be NULL. */
struct torii_hdr_edit_s;
void torii_error_response(torii_buf_t *out, int status, const char *why, const char *request_id, bool close, bool head,
                          const struct torii_hdr_edit_s *extra);

/* Append a plugin's answer (torii.response.exit): status line, the header
 * lines its edits leave, Content-Length (none for 204), `Connection: close`
 * when close is set, then the body (none for 204, 304 and HEAD). */
void torii_exit_response(torii_buf_t *out, int status, const struct torii_hdr_edit_s *headers, const char *body,
                         size_t blen, bool close, bool head);

#endif
