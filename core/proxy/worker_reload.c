/*
 * worker_reload.c — a worker's side of the two-phase reload.
 *
 * prepare: load the configuration files again and build a generation
 * (plugins loaded fresh into a new VM, their configurations checked,
 * router built) while requests keep flowing on the current one. commit:
 * new requests start on it; the old one is retired (its timers fire once,
 * premature) and freed when its last request ends. Upstream keep-alive
 * pools, shared dicts and client connections belong to the worker, not to
 * a generation, so they carry over.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "event/dns_cache.h"
#include "lua/budget.h"
#include "lua/vm.h"
#include "process/reload_msg.h"
#include "proxy/gen.h"
#include "proxy/health.h"
#include "proxy/worker.h"
#include "proxy/worker_reload.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void drop_next(torii_worker_t *w)
{
    if (w->next) {
        torii_gen_t *g = w->next;
        w->next = NULL;
        torii_gen_release(g); /* never current: no init_worker ran, no timers */
    }
}

static void prepare(torii_worker_t *w, uint64_t id)
{
    char err[1024];
    double t0 = now_ms();
    torii_config_t *conf;
    drop_next(w);
    conf = torii_config_load(w->conf->path, w->conf->prefix, err, sizeof err);
    if (conf)
        w->next = torii_gen_build(conf, id, err, sizeof err);
    if (!w->next) {
        torii_log_error("reload: generation %llu not built: %s", (unsigned long long)id, err);
        torii_reload_send(w->ctl_fd, "failed %llu %s", (unsigned long long)id, err);
        return;
    }
    torii_reload_send(w->ctl_fd, "ready %llu %.1f", (unsigned long long)id, now_ms() - t0);
}

/* Process settings that change without new sockets: log level and files. */
static void apply_logs(const torii_config_t *old, const torii_config_t *conf)
{
    char err[512];
    if (strcmp(old->error_log, conf->error_log) != 0) {
        if (torii_log_open(conf->error_log, conf->log_level, err, sizeof err) != TORII_OK)
            torii_log_error("reload: %s; keeping the old error log", err);
    }
    torii_log_level = conf->log_level;
    if (strcmp(old->access_log, conf->access_log) != 0 &&
        torii_access_log_open(conf->access_log, err, sizeof err) != TORII_OK)
        torii_log_error("reload: %s; keeping the old access log", err);
}

static void commit(torii_worker_t *w, uint64_t id)
{
    double t0 = now_ms();
    torii_gen_t *old = w->gen;
    if (!w->next || w->next->id != id) {
        torii_reload_send(w->ctl_fd, "failed %llu generation %llu was not prepared in worker %d",
                          (unsigned long long)id, (unsigned long long)id, w->id);
        return;
    }
    w->gen = w->next;
    w->next = NULL;
    w->conf = w->gen->conf;
    apply_logs(old->conf, w->conf);
    torii_budget_set(w->conf->lua_cpu_budget_ms);
    torii_dns_cache_configure(&w->conf->resolver);
    torii_worker_configure_ioq(w);
    torii_vm_init_worker(w->gen->vm);
    torii_health_start(w); /* the probes of the new generation's upstreams */
    /* Say so first: freeing the old generation (its VM, router and
     * configuration) when it has no request left is not the reload's
     * business to wait for. */
    torii_reload_send(w->ctl_fd, "current %llu %.1f", (unsigned long long)id, now_ms() - t0);
    torii_gen_retire(old);
    torii_log_info("reload: generation %llu is current (%u alive)", (unsigned long long)id, torii_gen_alive());
}

static void on_message(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_worker_t *w = io->data;
    char msg[TORII_RELOAD_MSG_MAX];
    const char *rest;
    size_t vlen;
    uint64_t id;
    int n = torii_reload_recv(w->ctl_fd, msg, sizeof msg);
    (void)revents;
    if (n == 0) { /* the master is gone; PDEATHSIG stops us */
        torii_io_stop(loop, io);
        return;
    }
    if (n < 0)
        return;
    if (!torii_reload_parse(msg, &vlen, &id, &rest)) {
        torii_log_error("reload channel: malformed message \"%.64s\"", msg);
        return;
    }
    if (vlen == 7 && memcmp(msg, "prepare", 7) == 0)
        prepare(w, id);
    else if (vlen == 6 && memcmp(msg, "commit", 6) == 0)
        commit(w, id);
    else if (vlen == 5 && memcmp(msg, "abort", 5) == 0)
        drop_next(w);
    else
        torii_log_error("reload channel: unknown message \"%.64s\"", msg);
}

#define RECYCLE_PAUSE 5000.0 /* ms between two VM replacements */

void torii_worker_check_vm(torii_worker_t *w)
{
    static double last;
    char err[1024];
    torii_gen_t *old = w->gen, *g;
    size_t before;
    if ((last > 0 && now_ms() - last < RECYCLE_PAUSE) || !torii_vm_over_limit(old->vm))
        return;
    last = now_ms();
    before = torii_vm_memory(old->vm);
    g = torii_gen_rebuild(old, err, sizeof err);
    if (!g) {
        torii_log_error("Lua VM over its memory limit, and a fresh one could not be built: %s", err);
        return;
    }
    w->gen = g;
    torii_gen_retire(old); /* freed when its requests end */
    torii_vm_init_worker(g->vm);
    torii_log_warn("Lua VM holds %zu KiB, over 3/4 of lua.memory_limit (%llu KiB): new requests run on a fresh VM "
                   "(generation %llu)",
                   before / 1024, (unsigned long long)w->conf->lua_memory_limit / 1024, (unsigned long long)g->id);
}

void torii_worker_reload_start(torii_worker_t *w)
{
    if (w->ctl_fd < 0)
        return;
    torii_io_init(&w->ctl_io, on_message, w->ctl_fd, TORII_EV_READ);
    w->ctl_io.data = w;
    torii_io_start(w->loop, &w->ctl_io);
}

void torii_worker_reload_close(torii_worker_t *w)
{
    drop_next(w);
    if (w->ctl_fd >= 0) {
        torii_io_stop(w->loop, &w->ctl_io);
        close(w->ctl_fd);
        w->ctl_fd = -1;
    }
}
