/*
 * loop.h — the only file that talks to libev. The rest of the core uses
 * these names, so moving to another event library touches this file alone.
 *
 * Watchers are level-triggered: a read watcher fires while bytes are
 * waiting, so handlers read once per wake-up and need not drain the socket.
 */
#ifndef TORII_LOOP_H
#define TORII_LOOP_H

#include <ev.h>

typedef struct ev_loop torii_loop_t;
typedef ev_io torii_io_t;
typedef ev_timer torii_timer_t;
typedef ev_prepare torii_prepare_t;
typedef ev_signal torii_signal_t;
typedef ev_idle torii_idle_t;

#define TORII_EV_READ  EV_READ
#define TORII_EV_WRITE EV_WRITE

#define torii_io_init       ev_io_init
#define torii_io_start      ev_io_start
#define torii_io_stop       ev_io_stop
#define torii_io_active     ev_is_active
#define torii_timer_init    ev_timer_init
#define torii_timer_start   ev_timer_start
#define torii_timer_stop    ev_timer_stop
#define torii_timer_active  ev_is_active
#define torii_prepare_init  ev_prepare_init
#define torii_prepare_start ev_prepare_start
#define torii_prepare_stop  ev_prepare_stop
#define torii_idle_init     ev_idle_init
#define torii_idle_start    ev_idle_start
#define torii_idle_stop     ev_idle_stop
#define torii_signal_init   ev_signal_init
#define torii_signal_start  ev_signal_start
#define torii_signal_stop   ev_signal_stop

/* Current loop time in seconds (cached once per loop pass). */
#define torii_loop_now ev_now

/* (Re)arm a one-shot timer `after` seconds from now. */
static inline void torii_timer_arm(torii_loop_t *loop, torii_timer_t *t, double after)
{
    ev_timer_stop(loop, t);
    ev_timer_set(t, after, 0.);
    ev_timer_start(loop, t);
}

static inline torii_loop_t *torii_loop_new(void)
{
    return ev_default_loop(EVBACKEND_EPOLL | EVFLAG_NOENV);
}

/* A loop of its own, apart from the process's default one: for a short
 * job that must not run the default loop's watchers (NULL on failure). */
static inline torii_loop_t *torii_loop_new_private(void)
{
    return ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
}

static inline void torii_loop_run(torii_loop_t *loop)
{
    ev_run(loop, 0);
}

/* One pass: wait for events (at most until the next timer), handle them. */
static inline void torii_loop_run_once(torii_loop_t *loop)
{
    ev_run(loop, EVRUN_ONCE);
}

/* Refresh the loop's cached time (after time passed outside the loop). */
static inline void torii_loop_update_now(torii_loop_t *loop)
{
    ev_now_update(loop);
}

static inline void torii_loop_break(torii_loop_t *loop)
{
    ev_break(loop, EVBREAK_ALL);
}

static inline void torii_loop_destroy(torii_loop_t *loop)
{
    ev_loop_destroy(loop);
}

#endif
