/*
 * upstream.h — connections to upstream nodes and their keep-alive pools.
 *
 * Each worker keeps, per upstream address, a LIFO list of idle
 * connections. An idle connection keeps its read watcher on: if the
 * upstream closes it (or sends anything) while it waits, it is discarded at
 * once instead of failing the next request. Pools are keyed by address,
 * not by configuration object, so they outlive configuration reloads.
 */
#ifndef TORII_UPSTREAM_H
#define TORII_UPSTREAM_H

#include "proxy/conn.h"

/* A pooled connection to addr, or a new one being connected; NULL with
 * errno set if the connect failed at once. */
torii_upstream_t *torii_upstream_get(torii_worker_t *w, const torii_addr_t *addr);

/* Always a new connection (for a retry). */
torii_upstream_t *torii_upstream_connect(torii_worker_t *w, const torii_addr_t *addr);

/* Write what is queued in up->out (starting the write watcher if it must
 * wait). TORII_OK when all is out, TORII_AGAIN, or TORII_ERROR (the driver
 * has been told: do not touch up again). */
int torii_upstream_flush(torii_upstream_t *up);

void torii_upstream_pause_read(torii_upstream_t *up);
void torii_upstream_resume_read(torii_upstream_t *up);

/* Re-arm the timer for what the connection waits for now. */
void torii_upstream_update_timer(torii_upstream_t *up);

/* Done with a request: back to the pool if reusable, else closed. */
void torii_upstream_release(torii_upstream_t *up, bool reusable);

void torii_upstream_close(torii_upstream_t *up);

/*
 * Plugin sockets (core/proxy/cosocket.c) share these pools as bare
 * descriptors. take: an idle connection to addr, out of the pool (-1 when
 * none); *uses says how many times it served before. put: a connected,
 * clean fd into addr's pool for idle_s seconds, or closed when max_idle
 * connections wait there already or the worker is quitting.
 */
int torii_upool_take(torii_worker_t *w, const torii_addr_t *addr, uint32_t *uses);
void torii_upool_put(torii_worker_t *w, const torii_addr_t *addr, int fd, uint32_t uses, double idle_s,
                     uint32_t max_idle);

torii_upool_t *torii_upool_new(void);

/* Close every idle connection (shutdown) and free the pool. */
void torii_upool_free(torii_upool_t *pool, torii_loop_t *loop);

/* Close idle connections but keep the pool (graceful quit). */
void torii_upool_close_idle(torii_upool_t *pool);

#endif
