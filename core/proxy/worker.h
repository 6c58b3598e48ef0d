/*
 * worker.h — a worker process: one event loop that accepts on the
 * inherited listening sockets and proxies requests until told to stop.
 */
#ifndef TORII_WORKER_H
#define TORII_WORKER_H

#include <sys/types.h>

#include "proxy/conn.h"

/* Run worker number `id` (1-based) on configuration generation gen_id
 * (conf is taken over) until it is stopped; returns the exit status. The
 * listening sockets were opened by the master; ctl_fd is the worker's end
 * of its reload channel. */
int torii_worker_run(torii_config_t *conf, uint64_t gen_id, const int *listen_fds, uint32_t nlisten, int ctl_fd, int id,
                     pid_t master);

/* A request object with header slots for the configured limits. */
torii_request_t *torii_worker_request_new(torii_worker_t *w);
void torii_worker_request_free(torii_worker_t *w, torii_request_t *r);

/* Bookkeeping after a client connection closed (accept limit, shutdown). */
void torii_worker_client_closed(torii_worker_t *w);

/* Apply the current configuration's `io_uring` (at start, after a reload). */
void torii_worker_configure_ioq(torii_worker_t *w);

#endif
