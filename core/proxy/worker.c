/*
 * worker.c — worker process life: accept loop, connection limit, signals,
 * graceful and immediate shutdown.
 *
 * Signals: SIGQUIT drains (stop accepting, close idle keep-alive
 * connections, let requests in flight finish, bounded by
 * shutdown_timeout); SIGTERM and SIGINT close everything now; SIGUSR1
 * reopens the log files.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "event/dns_cache.h"
#include "event/sock.h"
#include "proxy/client.h"
#include "proxy/cosocket.h"
#include "proxy/upstream.h"
#include "lua/budget.h"
#include "lua/ffi.h"
#include "lua/lalloc.h"
#include "lua/phase_times.h"
#include "lua/timers.h"
#include "lua/vm.h"
#include "base/pool.h"
#include "proxy/gen.h"
#include "proxy/health.h"
#include "proxy/pick.h"
#include "proxy/worker.h"
#include "proxy/worker_reload.h"
#include "process/reload_msg.h"

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY 0.1 /* seconds to wait after running out of descriptors */

static void start_accepting(torii_worker_t *w)
{
    if (w->accepting || w->quitting)
        return;
    for (uint32_t i = 0; i < w->nlisten; i++)
        torii_io_start(w->loop, &w->lio[i]);
    w->accepting = true;
}

static void stop_accepting(torii_worker_t *w)
{
    if (!w->accepting)
        return;
    for (uint32_t i = 0; i < w->nlisten; i++)
        torii_io_stop(w->loop, &w->lio[i]);
    w->accepting = false;
}

static void on_accept_retry(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_worker_t *w = t->data;
    (void)loop, (void)revents;
    if (w->nclients < w->conf->client.max_connections)
        start_accepting(w);
}

static torii_timer_t accept_retry;

static void on_accept(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_worker_t *w = io->data;
    (void)loop, (void)revents;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        torii_addr_t peer;
        int fd = torii_sock_accept(io->fd, &peer);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered: without a pause this would spin. */
                torii_log_error("accept() failed: %s; pausing accept for %.1fs", strerror(errno), ACCEPT_RETRY);
                stop_accepting(w);
                torii_timer_arm(w->loop, &accept_retry, ACCEPT_RETRY);
            }
            return; /* EAGAIN: another worker took it, or none left */
        }
        torii_client_accept(w, fd, &peer);
        if (w->nclients >= w->conf->client.max_connections) {
            torii_log_warn("worker connection limit (%u) reached; not accepting until one closes",
                           w->conf->client.max_connections);
            stop_accepting(w);
            return;
        }
    }
}

void torii_worker_client_closed(torii_worker_t *w)
{
    if (w->quitting) {
        if (w->nclients == 0)
            torii_loop_break(w->loop);
        return;
    }
    if (!w->accepting && w->nclients < w->conf->client.max_connections && !torii_timer_active(&accept_retry))
        start_accepting(w);
}

torii_request_t *torii_worker_request_new(torii_worker_t *w)
{
    uint32_t slots = w->conf->client.max_headers * 2;
    torii_request_t *r;
    /* Kept requests have the slots of the configuration they were made
     * for; after a reload that changed max_headers they go. */
    while (w->nfree_reqs > 0 && w->free_reqs[w->nfree_reqs - 1]->head.max_headers != w->conf->client.max_headers)
        free(w->free_reqs[--w->nfree_reqs]);
    if (w->nfree_reqs > 0) {
        r = w->free_reqs[--w->nfree_reqs];
        memset(r, 0, sizeof *r);
    } else {
        r = calloc(1, sizeof *r + slots * sizeof(torii_header_t));
        if (!r)
            abort();
    }
    r->head.headers = r->storage;
    r->head.max_headers = w->conf->client.max_headers;
    r->resp.headers = r->storage + w->conf->client.max_headers;
    r->resp.max_headers = w->conf->client.max_headers;
    r->gen = w->gen;
    torii_gen_hold(r->gen);
    /* Request ids: a random per-worker prefix and a counter, in hex. */
    uint64_t id = ((uint64_t)w->seed << 32) | (uint32_t)++w->seq;
    for (int i = 15; i >= 0; i--, id >>= 4)
        r->id[i] = "0123456789abcdef"[id & 15];
    r->id[16] = '\0';
    return r;
}

void torii_worker_request_free(torii_worker_t *w, torii_request_t *r)
{
    torii_gen_t *gen = r->gen;
    torii_buf_release(&r->replay_buf);
    free(r->path_buf);
    r->path_buf = NULL;
    free(r->bf_buf);
    r->bf_buf = NULL;
    r->bf_cap = 0;
    /* A chain suspended mid-phase (the client left while a plugin waited)
     * is dropped; the log phase then runs on a fresh coroutine. */
    if (r->waiting)
        torii_vm_request_done(gen->vm, r);
    /* The log phase: after the last byte, whatever the outcome. */
    if (r->route && torii_vm_route_runs(gen->vm, r->route, TORII_PHASE_LOG))
        torii_vm_run_phase(gen->vm, r, TORII_PHASE_LOG);
    torii_vm_request_done(gen->vm, r);
    if (r->pool) {
        torii_pool_destroy(r->pool);
        r->pool = NULL;
    }
    torii_pick_done(r, torii_loop_now(w->loop)); /* before the generation may go */
    r->gen = NULL;
    torii_gen_release(gen); /* frees a retired generation with its last request */
    if (r->head.max_headers == w->conf->client.max_headers && w->nfree_reqs < TORII_ARRAY_LEN(w->free_reqs))
        w->free_reqs[w->nfree_reqs++] = r;
    else
        free(r);
}

static void close_all_clients(torii_worker_t *w)
{
    while (!torii_list_empty(&w->clients))
        torii_client_close(torii_list_entry(w->clients.next, torii_client_t, link), false);
}

static void on_shutdown_timeout(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_worker_t *w = t->data;
    (void)revents;
    torii_log_warn("shutdown timeout: closing %u connection(s) still open", w->nclients);
    close_all_clients(w);
    torii_loop_break(loop);
}

static void begin_quit(torii_worker_t *w)
{
    if (w->quitting)
        return;
    torii_log_notice("worker %d: graceful shutdown, %u connection(s) open", w->id, w->nclients);
    stop_accepting(w);
    /* Close our copies of the listening sockets: once the master and every
     * worker have, new clients are refused instead of queued unanswered. */
    for (uint32_t i = 0; i < w->nlisten; i++)
        close(w->listen_fds[i]);
    w->nlisten = 0;
    w->quitting = true;
    torii_timer_stop(w->loop, &accept_retry);
    torii_client_shutdown_idle(w);
    torii_upool_close_idle(w->upool);
    if (w->nclients == 0) {
        torii_loop_break(w->loop);
        return;
    }
    torii_timer_arm(w->loop, &w->shutdown_timer, w->conf->shutdown_timeout_ms / 1000.0);
}

static void on_signal(torii_loop_t *loop, torii_signal_t *s, int revents)
{
    torii_worker_t *w = s->data;
    (void)revents;
    switch (s->signum) {
    case SIGQUIT: begin_quit(w); break;
    case SIGUSR1: torii_log_reopen(); break;
    case SIGHUP: break; /* the master runs reloads (worker_reload.c) */
    default:            /* SIGTERM, SIGINT: now */
        w->quitting = true;
        close_all_clients(w);
        torii_loop_break(loop);
        break;
    }
}

/* The socket calls the pass's handlers queued (event/ioq.h), before the
 * loop waits again. What a bounded run leaves makes the wait a poll. */
static void run_ioq(torii_worker_t *w)
{
    if (torii_ioq_run(w->ioq))
        torii_idle_stop(w->loop, &w->ioq_more);
    else
        torii_idle_start(w->loop, &w->ioq_more);
}

static void on_ioq_more(torii_loop_t *loop, torii_idle_t *i, int revents)
{
    (void)loop, (void)revents;
    run_ioq(i->data);
}

static void on_prepare(torii_loop_t *loop, torii_prepare_t *p, int revents)
{
    torii_worker_t *w = p->data;
    (void)loop, (void)revents;
    run_ioq(w);
    torii_access_log_flush(); /* one write per loop pass, not per request */
    torii_worker_check_vm(w);
}

static void setup_watchers(torii_worker_t *w)
{
    static const int signums[] = {SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGHUP};
    for (uint32_t i = 0; i < w->nlisten; i++) {
        torii_io_init(&w->lio[i], on_accept, w->listen_fds[i], TORII_EV_READ);
        w->lio[i].data = w;
    }
    for (size_t i = 0; i < TORII_ARRAY_LEN(signums); i++) {
        torii_signal_init(&w->sigs[i], on_signal, signums[i]);
        w->sigs[i].data = w;
        torii_signal_start(w->loop, &w->sigs[i]);
    }
    torii_idle_init(&w->ioq_more, on_ioq_more);
    w->ioq_more.data = w;
    torii_prepare_init(&w->flush, on_prepare);
    w->flush.data = w;
    torii_prepare_start(w->loop, &w->flush);
    torii_timer_init(&w->shutdown_timer, on_shutdown_timeout, 0., 0.);
    w->shutdown_timer.data = w;
    torii_timer_init(&accept_retry, on_accept_retry, 0., 0.);
    accept_retry.data = w;
}

void torii_worker_configure_ioq(torii_worker_t *w)
{
    const char *why;
    bool had = torii_ioq_has_uring(w->ioq);
    torii_ioq_set_uring(w->ioq, w->conf->io_uring, &why);
    if (why)
        torii_log_warn("worker %d: no io_uring (%s): plain socket calls", w->id, why);
    else if (had != torii_ioq_has_uring(w->ioq))
        torii_log_info("worker %d: socket calls %s", w->id, had ? "made one by one" : "through io_uring");
}

static void report_ioq(const torii_worker_t *w)
{
    const torii_ioq_stats_t *st = torii_ioq_stats(w->ioq);
    torii_log_info("worker %d: socket I/O: %llu operations in %llu rounds, %llu through io_uring in %llu "
                   "submissions, %llu plain calls",
                   w->id, (unsigned long long)st->ops, (unsigned long long)st->rounds, (unsigned long long)st->batched,
                   (unsigned long long)st->enters, (unsigned long long)st->direct);
}

static void cleanup(torii_worker_t *w)
{
    close_all_clients(w);
    report_ioq(w);
    torii_idle_stop(w->loop, &w->ioq_more);
    torii_ioq_free(w->ioq);
    w->ioq = NULL;
    torii_cosocket_detach();
    torii_upool_free(w->upool, w->loop);
    for (uint32_t i = 0; i < w->nfree_reqs; i++)
        free(w->free_reqs[i]);
    torii_worker_reload_close(w);
    torii_health_stop(w);
    torii_dns_cache_detach();
    torii_budget_stop();
    torii_timers_shutdown();
    torii_gen_release(w->gen); /* the last reference: requests are gone */
    w->gen = NULL;
    free(w->lio);
    torii_access_log_flush();
    torii_buf_freelist_drain();
    torii_pool_spares_drain();
    torii_lalloc_cache_drain();
    torii_loop_destroy(w->loop);
}

int torii_worker_run(torii_config_t *conf, uint64_t gen_id, const int *listen_fds, uint32_t nlisten, int ctl_fd, int id,
                     pid_t master)
{
    torii_worker_t w = {0};
    char err[1024];
    /* Die with the master, whatever kills it (and if it is gone already). */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        return 1;
    torii_log_set_worker(id);
    torii_sock_raise_nofile();
    w.loop = torii_loop_new();
    w.id = id;
    w.listen_fds = listen_fds;
    w.nlisten = nlisten;
    w.ctl_fd = ctl_fd;
    w.lio = calloc(nlisten, sizeof *w.lio);
    if (!w.lio)
        abort();
    torii_list_init(&w.clients);
    w.upool = torii_upool_new();
    w.gen = torii_gen_build(conf, gen_id, err, sizeof err); /* checked by the master already */
    if (!w.gen) {
        torii_log_error("worker %d: %s", id, err);
        return 1;
    }
    w.conf = w.gen->conf;
    w.ioq = torii_ioq_new();
    if (!w.ioq)
        abort();
    torii_worker_configure_ioq(&w);
    if (getrandom(&w.seed, sizeof w.seed, GRND_NONBLOCK) != sizeof w.seed)
        w.seed = (uint32_t)getpid() * 2654435761u;
    torii_timers_attach(w.loop);
    torii_dns_cache_attach(w.loop, &w.conf->resolver); /* host names refreshed on their TTL */
    torii_cosocket_attach(&w);
    torii_budget_start(w.conf->lua_cpu_budget_ms);
    torii_phase_times_init();
    torii_vm_init_worker(w.gen->vm);
    setup_watchers(&w);
    torii_worker_reload_start(&w);
    torii_health_start(&w);
    {
        sigset_t none; /* blocked since the fork (master.c): handlers are ready now */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    start_accepting(&w);
    /* A reload that replaces the workers waits for this. */
    if (w.ctl_fd >= 0)
        torii_reload_send(w.ctl_fd, "current %llu 0", (unsigned long long)gen_id);
    torii_log_info("worker %d started", id);
    torii_loop_run(w.loop);
    cleanup(&w);
    torii_phase_times_report(id);
    torii_log_info("worker %d exiting", id);
    return 0;
}
