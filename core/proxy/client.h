/*
 * client.h — downstream connections: accepting, reading request heads,
 * reading bodies on the driver's behalf, writing responses, keep-alive,
 * pipelining, timeouts and closing.
 */
#ifndef TORII_CLIENT_H
#define TORII_CLIENT_H

#include "proxy/conn.h"

/* Take over an accepted socket. */
void torii_client_accept(torii_worker_t *w, int fd, const torii_addr_t *peer);

/* Write what is queued in c->out. TORII_OK when it is all out, TORII_AGAIN
 * when the rest waits for writability, TORII_ERROR if the client is gone
 * (the connection is then already closed: do not touch c again). */
int torii_client_flush(torii_client_t *c);

/* Stop or restart reading (back-pressure on the request body). */
void torii_client_pause_read(torii_client_t *c);
void torii_client_resume_read(torii_client_t *c);

/* Re-arm the timer that fits what the connection waits for now. */
void torii_client_update_timer(torii_client_t *c);

/* The current request is over (its response fully queued and flushed):
 * log it, then keep the connection for the next one or close it. */
void torii_client_request_done(torii_client_t *c);

/* Close now; with reset, send an RST (for a response cut short). */
void torii_client_close(torii_client_t *c, bool reset);

/* May the connection carry another request after the current one? */
bool torii_client_may_keep(const torii_client_t *c);

/* Answer the current request with torii's own error page, then finish it. */
void torii_client_error(torii_client_t *c, int status, const char *why);

/* Answer the request with torii's own response (a plugin's exit). */
void torii_client_respond(torii_client_t *c, int status, const torii_hdr_edit_t *headers, torii_str_t body);

/* Close idle connections and mark the others to close after their
 * response (graceful shutdown). */
void torii_client_shutdown_idle(torii_worker_t *w);

#endif
