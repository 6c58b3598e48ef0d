/*
 * ffi_state.h — which request's phase is running, for the FFI functions
 * (a worker runs one coroutine at a time, so one slot is enough).
 */
#ifndef TORII_FFI_STATE_H
#define TORII_FFI_STATE_H

#include "base/pool.h"
#include "http/request.h"

void torii_ffi_enter(torii_request_t *r, int phase);
void torii_ffi_leave(void);

/* The request's pool, made on first use: what plugins set on the request
 * (header edits, targets, names) lives there until it ends. */
torii_pool_t *torii_ffi_request_pool(torii_request_t *r);

/* What torii_ffi_errmsg() says next (a static string). */
void torii_ffi_set_error(const char *why);

#endif
