/*
 * cosocket.h — plugin TCP sockets (torii.socket) in a worker. Lua reaches
 * them through the torii_ffi_sock_* functions of lua/ffi.h; this is the
 * worker's side of their life.
 */
#ifndef TORII_COSOCKET_H
#define TORII_COSOCKET_H

#include "proxy/conn.h"

/* The worker runs: sockets may open from now on (w outlives them). */
void torii_cosocket_attach(torii_worker_t *w);

/* The worker stops, before its upstream pool goes: close every socket
 * still open (those of dropped timer tasks) and refuse new ones. */
void torii_cosocket_detach(void);

#endif
