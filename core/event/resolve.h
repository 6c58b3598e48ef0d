/*
 * resolve.h — host names looked up without blocking the worker.
 *
 * glibc's getaddrinfo_a does each lookup on threads of its own (with
 * /etc/hosts and DNS as nsswitch.conf says); a timer of the loop polls
 * for outcomes while lookups are in flight. Polling, rather than a
 * notification thread calling into the loop, means no other thread ever
 * touches the loop or our memory, so nothing races the worker's exit.
 */
#ifndef TORII_RESOLVE_H
#define TORII_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"
#include "event/loop.h"

typedef struct torii_resolve_s torii_resolve_t;

/* The outcome, from the loop: an address (the first the system prefers),
 * or why not (a static message). */
typedef void (*torii_resolve_cb)(void *data, const torii_addr_t *addr, const char *why);

/* Start looking host (at most 255 bytes) up for a connection to port.
 * NULL with *why set when it cannot start (too many in flight). */
torii_resolve_t *torii_resolve_start(torii_loop_t *loop, const char *host, size_t n, uint16_t port, torii_resolve_cb cb,
                                     void *data, const char **why);

/* Forget a lookup: its callback will not run (its memory goes when the
 * lookup thread is done with it). */
void torii_resolve_cancel(torii_resolve_t *q);

/* The worker stops: cancel what can be, wait a few seconds at most for
 * lookups already running, free what is done. */
void torii_resolve_shutdown(void);

#endif
