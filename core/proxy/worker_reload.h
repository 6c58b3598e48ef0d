/*
 * worker_reload.h — the worker's side of a reload: build the next
 * generation when the master says prepare, make it current on commit
 * (see process/reload_msg.h for the exchange).
 */
#ifndef TORII_WORKER_RELOAD_H
#define TORII_WORKER_RELOAD_H

#include "proxy/conn.h"

/* Watch the reload channel (w->ctl_fd). */
void torii_worker_reload_start(torii_worker_t *w);

/* Once per loop pass: a Lua VM past its memory limit is replaced by a
 * fresh one for new requests (same generation). */
void torii_worker_check_vm(torii_worker_t *w);

/* Stop watching it and drop a generation that was built but not
 * committed. */
void torii_worker_reload_close(torii_worker_t *w);

#endif
