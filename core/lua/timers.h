/* timers.h — the worker side of torii.timer (see timers.c). */
#ifndef TORII_TIMERS_H
#define TORII_TIMERS_H

#include "event/loop.h"
#include "lua/vm.h"

/* The worker's loop and VM: timers may start from now on, and belong to
 * that VM (NULL: timers are refused). */
void torii_timers_attach(torii_loop_t *loop, torii_vm_t *vm);

/* The worker stops: fire every pending timer once with premature = true. */
void torii_timers_shutdown(void);

/* A VM goes away while the loop runs on: fire its pending timers once
 * with premature = true. */
void torii_timers_release(torii_vm_t *vm);

#endif
