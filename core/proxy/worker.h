/*
 * worker.h — a worker process: one event loop that accepts on the
 * inherited listening sockets and proxies requests until told to stop.
 */
#ifndef TORII_WORKER_H
#define TORII_WORKER_H

#include <sys/types.h>

#include "proxy/conn.h"

/* Run worker number `id` (1-based) until it is stopped; returns the exit
 * status. The listening sockets were opened by the master. */
int torii_worker_run(const torii_config_t *conf, const int *listen_fds, uint32_t nlisten, int id, pid_t master);

/* A request object with header slots for the configured limits. */
torii_request_t *torii_worker_request_new(torii_worker_t *w);
void torii_worker_request_free(torii_worker_t *w, torii_request_t *r);

/* Bookkeeping after a client connection closed (accept limit, shutdown). */
void torii_worker_client_closed(torii_worker_t *w);

#endif
