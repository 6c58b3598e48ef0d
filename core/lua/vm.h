/*
 * vm.h — the Lua side of a worker: one LuaJIT VM, the plugins it loaded
 * and the chains it built for a configuration, and the coroutines that run
 * a request's phases. C enters Lua once per phase (a resume of the
 * request's coroutine); the loop over the plugin chain runs in Lua.
 */
#ifndef TORII_VM_H
#define TORII_VM_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "http/request.h"

typedef struct torii_vm_s torii_vm_t;

/* Where lua/ and plugins/ are: $TORII_HOME, else the first directory up
 * from the executable (build/torii, build/asan/torii) that has them. */
bool torii_vm_home(char *out, size_t cap);

/*
 * A VM for a configuration: every plugin loaded, every plugin's
 * configuration checked against its schema, every route's chain built.
 * NULL with the reason in err (`routes[0].plugins.foo: ...`).
 */
torii_vm_t *torii_vm_new(const torii_config_t *conf, char *err, size_t errlen);

void torii_vm_free(torii_vm_t *vm);

/* Shared dicts the loaded plugins want when the configuration does not
 * declare them (plugin field shared_dicts = {name = "10m"}). */
size_t torii_vm_dicts(const torii_vm_t *vm, char *const **names, const uint64_t **sizes);

/* Does a request on this route meet any plugin (its own or a global rule)? */
bool torii_vm_route_has_plugins(const torii_vm_t *vm, const torii_route_conf_t *route);

/* ... one that has this phase (TORII_PHASE_*)? */
bool torii_vm_route_runs(const torii_vm_t *vm, const torii_route_conf_t *route, int phase);

/* ... one with a body_filter (the response is then re-framed: its length
 * may change)? */
bool torii_vm_route_filters_body(const torii_vm_t *vm, const torii_route_conf_t *route);

/*
 * Run one phase of r's chain. TORII_OK: go on; TORII_AGAIN: a plugin waits
 * (see torii_vm_resume); TORII_DONE: a plugin
 * answered (r->exit_status, r->exit_body, r->resp_edits); TORII_ERROR: a
 * plugin failed (logged with plugin, route, request id and traceback).
 */
int torii_vm_run_phase(torii_vm_t *vm, torii_request_t *r, int phase);

/* TORII_AGAIN from run_phase: a plugin waits (r->wait_ms); call this when
 * the wait is over. Same results as run_phase. */
int torii_vm_resume(torii_vm_t *vm, torii_request_t *r);

/* In a worker, once its loop runs: the plugins' init_worker hooks. */
void torii_vm_init_worker(torii_vm_t *vm);

/* A timer of torii.timer fired (premature: the worker is stopping). */
void torii_vm_fire_timer(torii_vm_t *vm, int id, bool premature);

/* Bytes the VM holds now. */
size_t torii_vm_memory(const torii_vm_t *vm);

/* After a full collection, is the VM still over 3/4 of lua.memory_limit?
 * Then the worker replaces it with a fresh one (worker_reload.c). */
bool torii_vm_over_limit(torii_vm_t *vm);

/* The VM whose Lua is running now (NULL when none is): FFI functions
 * that keep state per VM (timers) use it. */
torii_vm_t *torii_vm_active(void);

/* A newer generation is current: this VM finishes its requests but
 * starts no new timers. */
void torii_vm_retire(torii_vm_t *vm);
bool torii_vm_retired(const torii_vm_t *vm);

/* A timer callback's run that waits (core/lua/wait.c) is due: resume it. */
void torii_vm_resume_task(torii_vm_t *vm, int task);

/* The VM's Lua state, for tools that look into a request's coroutine
 * (`torii test` reads its ctx). */
struct lua_State *torii_vm_lua(const torii_vm_t *vm);

/* The request ended: its coroutine goes back to the pool. */
void torii_vm_request_done(torii_vm_t *vm, torii_request_t *r);

#endif
