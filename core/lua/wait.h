/*
 * wait.h — who may wait, and how a wait ends.
 *
 * Two kinds of Lua coroutine may wait without blocking the worker: a
 * request's phase (rewrite, access) and a timer callback's run, a "task".
 * A waiting call (torii.sleep, a socket operation) sets the waiter's
 * deadline, then the Lua side yields. The waiter is resumed when the
 * deadline passes, or earlier when the operation it waits on wakes it; the
 * resumed Lua side then asks the operation for its outcome, and an
 * operation with none yet has timed out. Both kinds are resumed from a
 * timer (the request's connection's wait timer, or the task's own), so an
 * event handler that wakes a waiter never runs Lua under its own feet.
 */
#ifndef TORII_WAIT_H
#define TORII_WAIT_H

#include <stdbool.h>

#include "base/list.h"
#include "event/loop.h"
#include "http/request.h"
#include "lua/vm.h"

typedef struct {
    torii_request_t *r; /* a request's phase, or NULL */
    char rid[17];       /* r's id when taken: request structs are recycled, ids are not */
    int task;           /* else a timer task */
    torii_vm_t *vm;     /* ... of this VM */
} torii_waiter_t;

/* The worker's loop: tasks may wait from now on. */
void torii_wait_attach(torii_loop_t *loop);

/* vm is being freed: drop its tasks still waiting (what they hold is
 * released; they never resume). */
void torii_wait_drop_vm(torii_vm_t *vm);

/* The worker stops: tasks still waiting are dropped (what they hold is
 * released) and nothing may wait any more. */
void torii_wait_shutdown(void);

/* The coroutine running now, if it may wait: NULL and *w filled, or why
 * not (a static message naming the phase). */
const char *torii_waiter_current(torii_waiter_t *w);

/* Is w's coroutine the one running now (in any phase)? */
bool torii_waiter_running(const torii_waiter_t *w);

/* Resume w after ms milliseconds unless woken before. */
void torii_waiter_deadline(const torii_waiter_t *w, double ms);

/* Resume w soon (at the next pass of the loop). */
void torii_waiter_wake(const torii_waiter_t *w);

/* Something a waiter holds (a socket) that must go when the waiter's
 * request or task ends, however it ends. */
typedef struct torii_held_s {
    torii_list_t link; /* in the waiter's list */
    void (*release)(struct torii_held_s *h);
} torii_held_t;

/* h->release(h) runs when w ends, unless torii_waiter_unhold(h) came
 * first (a list, not an arena's cleanup hooks: a task that runs for days
 * opening sockets must not grow). */
void torii_waiter_hold(const torii_waiter_t *w, torii_held_t *h);
void torii_waiter_unhold(torii_held_t *h);

#endif
