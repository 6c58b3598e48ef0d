/* timers.h — the worker side of torii.timer (see timers.c). */
#ifndef TORII_TIMERS_H
#define TORII_TIMERS_H

#include "event/loop.h"
#include "lua/vm.h"

/* The worker's loop: timers may start from now on. */
void torii_timers_attach(torii_loop_t *loop);

/* vm was retired (or is freed): fire each of its pending timers once with
 * premature = true. */
void torii_timers_stop_vm(torii_vm_t *vm);

/* The worker stops: fire every pending timer once with premature = true. */
void torii_timers_shutdown(void);

#endif
