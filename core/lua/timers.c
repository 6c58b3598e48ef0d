/*
 * timers.c — torii.timer for Lua: one libev timer per pending Lua timer,
 * firing into the runtime (runtime.fire_timer) with the timer's id. When
 * the worker stops, every pending timer fires once more with premature =
 * true, so that plugins can flush what they hold.
 *
 * A timer fires into the VM that started it: a worker has one, but
 * `torii test` runs the VMs of several gateways on one loop, and their
 * timer ids overlap.
 */
#include <stdlib.h>
#include <time.h>

#include "base/list.h"
#include "base/log.h"
#include "event/loop.h"
#include "lua/ffi.h"
#include "lua/ffi_state.h"
#include "lua/timers.h"
#include "lua/vm.h"

#define MAX_TIMERS 4096 /* pending at once, per worker */

typedef struct {
    torii_timer_t ev;
    torii_list_t link;
    torii_vm_t *vm;
    int id;
    double interval;
} ltimer_t;

static torii_loop_t *loop; /* NULL outside a worker: timers refused */
static torii_vm_t *vm;     /* the VM new timers belong to (NULL: refused) */
static torii_list_t pending = {&pending, &pending};
static size_t npending;

static void drop(ltimer_t *t)
{
    torii_timer_stop(loop, &t->ev);
    torii_list_remove(&t->link);
    npending--;
    free(t);
}

static void on_fire(torii_loop_t *l, torii_timer_t *ev, int revents)
{
    ltimer_t *t = torii_container_of(ev, ltimer_t, ev);
    torii_vm_t *owner = t->vm, *was = vm;
    int id = t->id;
    (void)l, (void)revents;
    if (t->interval > 0)
        torii_timer_arm(loop, &t->ev, t->interval);
    else
        drop(t);
    vm = owner; /* timers the callback starts are its VM's too */
    torii_vm_fire_timer(owner, id, false);
    vm = was;
}

void torii_timers_attach(torii_loop_t *l, torii_vm_t *v)
{
    loop = l;
    vm = v;
}

/* Fire once, premature, every pending timer of `of` (NULL: of any VM). */
static void end_timers(torii_loop_t *l, torii_vm_t *of)
{
    torii_list_t *n = pending.next;
    while (n != &pending) {
        ltimer_t *t = torii_list_entry(n, ltimer_t, link);
        torii_vm_t *owner = t->vm;
        int id = t->id;
        if (of && owner != of) {
            n = n->next;
            continue;
        }
        torii_timer_stop(l, &t->ev);
        torii_list_remove(&t->link);
        npending--;
        free(t);
        torii_vm_fire_timer(owner, id, true);
        n = pending.next; /* the callback may have changed the list */
    }
}

void torii_timers_shutdown(void)
{
    /* A callback that starts new timers gets them refused (loop is gone
     * by then). */
    torii_loop_t *l = loop;
    loop = NULL;
    end_timers(l, NULL);
}

void torii_timers_release(torii_vm_t *of)
{
    torii_vm_t *was = vm;
    vm = NULL; /* a callback that starts new timers gets them refused */
    end_timers(loop, of);
    vm = was == of ? NULL : was;
}

static ltimer_t *find(int id)
{
    for (torii_list_t *n = pending.next; n != &pending; n = n->next) {
        ltimer_t *t = torii_list_entry(n, ltimer_t, link);
        if (t->id == id && t->vm == vm)
            return t;
    }
    return NULL;
}

int torii_ffi_timer_start(int id, double delay, double interval)
{
    ltimer_t *t;
    if (!loop || !vm) {
        torii_ffi_set_error("timers run in workers only (start them in init_worker or a phase)");
        return TORII_FFI_ERROR;
    }
    if (npending >= MAX_TIMERS) {
        torii_ffi_set_error("too many timers");
        return TORII_FFI_DECLINED;
    }
    if (!(delay >= 0) || !(interval >= 0)) {
        torii_ffi_set_error("delays are seconds >= 0");
        return TORII_FFI_ERROR;
    }
    t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->id = id;
    t->vm = vm;
    t->interval = interval;
    torii_timer_init(&t->ev, on_fire, 0., 0.);
    torii_list_push(&pending, &t->link);
    npending++;
    torii_timer_arm(loop, &t->ev, delay);
    return TORII_FFI_OK;
}

double torii_ffi_now(void)
{
    struct timespec ts;
    if (loop)
        return torii_loop_now(loop);    /* the loop's cached time: no system call */
    clock_gettime(CLOCK_REALTIME, &ts); /* outside a worker (the checking VM) */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int torii_ffi_timer_stop(int id)
{
    ltimer_t *t = loop ? find(id) : NULL;
    if (!t)
        return TORII_FFI_NOT_FOUND;
    drop(t);
    return TORII_FFI_OK;
}
