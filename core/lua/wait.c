/*
 * wait.c — waiters (see wait.h): a request's phase or a timer task.
 *
 * A task gets a record here only once it waits or opens something that
 * must end with it; the many timer runs that do neither cost nothing. A
 * record holds the task's timer (deadline and wake-up) and what it holds
 * (its sockets), released when it ends. A request's holdings are
 * released by a cleanup hook on its arena, registered once.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/pool.h"
#include "lua/ffi.h"
#include "lua/ffi_state.h"
#include "lua/wait.h"

typedef struct {
    torii_vm_t *vm; /* task ids are per VM, like timer ids */
    int id;
    torii_timer_t timer;
    torii_list_t held; /* torii_held_t */
    torii_list_t link;
} task_t;

static torii_loop_t *loop;                    /* NULL outside a worker's loop: nothing may wait */
static torii_list_t tasks = {&tasks, &tasks}; /* few: the timer runs waiting right now */
static int current_task;

static task_t *find_task(torii_vm_t *vm, int id)
{
    for (torii_list_t *n = tasks.next; n != &tasks; n = n->next) {
        task_t *t = torii_list_entry(n, task_t, link);
        if (t->id == id && t->vm == vm)
            return t;
    }
    return NULL;
}

static void on_task_timer(torii_loop_t *l, torii_timer_t *ev, int revents)
{
    task_t *t = torii_container_of(ev, task_t, timer);
    (void)l, (void)revents;
    /* The task may end inside: t must not be touched after this. */
    torii_vm_resume_task(t->vm, t->id);
}

/* The record of task id of vm. */
static task_t *task_record(torii_vm_t *vm, int id)
{
    task_t *t = find_task(vm, id);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->vm = vm;
    t->id = id;
    torii_list_init(&t->held);
    torii_timer_init(&t->timer, on_task_timer, 0., 0.);
    torii_list_push(&tasks, &t->link);
    return t;
}

static void release_all(torii_list_t *held)
{
    while (!torii_list_empty(held)) {
        torii_held_t *h = torii_list_entry(held->next, torii_held_t, link);
        torii_list_remove(&h->link);
        h->release(h);
    }
}

static void task_free(task_t *t)
{
    if (loop)
        torii_timer_stop(loop, &t->timer);
    torii_list_remove(&t->link);
    release_all(&t->held); /* closes what the task left open */
    free(t);
}

void torii_wait_attach(torii_loop_t *l)
{
    loop = l;
}

void torii_wait_drop_vm(torii_vm_t *vm)
{
    torii_list_t *n = tasks.next;
    while (n != &tasks) {
        task_t *t = torii_list_entry(n, task_t, link);
        n = n->next;
        if (t->vm == vm) {
            torii_log_debug("timer task %d dropped: its generation is gone", t->id);
            task_free(t);
        }
    }
}

void torii_wait_shutdown(void)
{
    while (!torii_list_empty(&tasks)) {
        task_t *t = torii_list_entry(tasks.next, task_t, link);
        torii_log_debug("timer task %d dropped: the worker stops", t->id);
        task_free(t);
    }
    loop = NULL;
}

int torii_ffi_task_enter(int task)
{
    if (task <= 0 || torii_ffi_request()) {
        torii_ffi_set_error("a task runs only from the worker's loop");
        return TORII_FFI_ERROR;
    }
    torii_ffi_enter(NULL, TORII_PHASE_TIMER);
    current_task = task;
    return TORII_FFI_OK;
}

int torii_ffi_task_leave(void)
{
    torii_ffi_leave();
    current_task = 0;
    return TORII_FFI_OK;
}

int torii_ffi_task_end(int task)
{
    task_t *t = find_task(torii_vm_active(), task);
    if (t)
        task_free(t);
    return TORII_FFI_OK;
}

/* Why the running coroutine may not wait, naming its phase. */
static const char *refusal(int phase)
{
    switch (phase) {
    case TORII_PHASE_HEADER_FILTER:
        return "cannot wait in header_filter (only rewrite, access and timer callbacks may wait)";
    case TORII_PHASE_BODY_FILTER:
        return "cannot wait in body_filter (only rewrite, access and timer callbacks may wait)";
    case TORII_PHASE_LOG:
        return "cannot wait in log (only rewrite, access and timer callbacks may wait: "
               "torii.timer.at(0, fn) runs fn after the response)";
    case TORII_PHASE_BALANCER: return "cannot wait in balancer (only rewrite, access and timer callbacks may wait)";
    case TORII_PHASE_TIMER: return "cannot wait: the worker is stopping";
    default: return "cannot wait here (only rewrite, access and timer callbacks may wait; not init or init_worker)";
    }
}

const char *torii_waiter_current(torii_waiter_t *w)
{
    torii_request_t *r = torii_ffi_request();
    int phase = torii_ffi_phase();
    memset(w, 0, sizeof *w);
    if (!loop)
        return refusal(phase);
    if (r && r->wake && (phase == TORII_PHASE_REWRITE || phase == TORII_PHASE_ACCESS)) {
        w->r = r;
        memcpy(w->rid, r->id, sizeof w->rid);
        return NULL;
    }
    if (!r && phase == TORII_PHASE_TIMER && current_task > 0) {
        w->task = current_task;
        w->vm = torii_vm_active(); /* task ids are per VM */
        return NULL;
    }
    return refusal(phase);
}

bool torii_waiter_running(const torii_waiter_t *w)
{
    torii_request_t *r = torii_ffi_request();
    if (w->r)
        return r == w->r && memcmp(r->id, w->rid, sizeof w->rid) == 0;
    return !r && torii_ffi_phase() == TORII_PHASE_TIMER && current_task == w->task && torii_vm_active() == w->vm;
}

void torii_waiter_deadline(const torii_waiter_t *w, double ms)
{
    if (w->r) {
        w->r->wait_ms = ms; /* the driver arms the wait timer once the phase yields */
        return;
    }
    if (loop)
        torii_timer_arm(loop, &task_record(w->vm, w->task)->timer, ms / 1000.0);
}

void torii_waiter_wake(const torii_waiter_t *w)
{
    if (!loop)
        return;
    if (w->r)
        torii_timer_arm(loop, w->r->wake, 0.);
    else
        torii_timer_arm(loop, &task_record(w->vm, w->task)->timer, 0.);
}

static void request_ended(void *data)
{
    release_all(&((torii_request_t *)data)->held);
}

void torii_waiter_hold(const torii_waiter_t *w, torii_held_t *h)
{
    torii_request_t *r = w->r;
    if (!r) {
        torii_list_push(&task_record(w->vm, w->task)->held, &h->link);
        return;
    }
    if (!r->held.next) { /* the request's first: its end will release them all */
        torii_list_init(&r->held);
        torii_pool_cleanup(torii_ffi_request_pool(r), request_ended, r);
    }
    torii_list_push(&r->held, &h->link);
}

void torii_waiter_unhold(torii_held_t *h)
{
    torii_list_remove(&h->link); /* a no-op when released already */
}
