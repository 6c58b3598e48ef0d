/*
 * driver.h — the request driver: the one place that walks a request
 * through route -> (plugin phases) -> upstream -> response, and the
 * events of both connections that move it along.
 */
#ifndef TORII_DRIVER_H
#define TORII_DRIVER_H

#include "proxy/conn.h"

/* A request head was parsed into c->req: route it and start proxying. */
void torii_driver_begin(torii_client_t *c);

/* A plugin's wait (torii.sleep) is over: go on with its phase. */
void torii_driver_wait_over(torii_loop_t *loop, torii_timer_t *t, int revents);

/* A retry's back-off is over: the next try. */
void torii_driver_retry_due(torii_loop_t *loop, torii_timer_t *t, int revents);

/* Body bytes arrived in c->in (from c->body_pos on). */
void torii_driver_body(torii_client_t *c);

/* c->out drained (the client reads again): resume the response. */
void torii_driver_client_drained(torii_client_t *c);

/* The client closed or failed while its request was active. */
void torii_driver_client_gone(torii_client_t *c, const char *why);

/* The client's timer fired while its request was active. */
void torii_driver_client_timeout(torii_client_t *c);

/* Tear down the request's upstream side (the client is closing). */
void torii_driver_abort(torii_client_t *c);

/* Upstream events. */
void torii_driver_upstream_writable(torii_upstream_t *up);
void torii_driver_upstream_readable(torii_upstream_t *up);
void torii_driver_upstream_eof(torii_upstream_t *up);
void torii_driver_upstream_error(torii_upstream_t *up, torii_uperr_t kind, int err);

/* Timeouts that apply to an upstream connection's current request. */
const torii_timeouts_t *torii_driver_timeouts(const torii_upstream_t *up);

/* Tunnel (after 101 Switching Protocols). */
void torii_driver_tunnel_client_readable(torii_client_t *c);
void torii_driver_tunnel_upstream_readable(torii_upstream_t *up);
void torii_driver_tunnel_drained(torii_client_t *c);

#endif
