/*
 * health.c — active health checks (see health.h): worker 1's probes, and
 * every worker's view of the shared states.
 *
 * An http probe is one HTTP/1.1 request on a new connection ("Connection:
 * close"), judged by its status line: a healthy status is a success; any
 * other status, a refused or reset connection, or no status line within
 * the timeout is a failure of its kind. A tcp probe is a connect: done in
 * time is a success, refused or reset a tcp failure, else a timeout.
 * Enough consecutive failures of one kind take the node down; enough
 * successes bring it back. Probes run at
 * the healthy interval while the node is up, the unhealthy one while down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "event/sock.h"
#include "proxy/gen.h"
#include "proxy/health.h"
#include "shm/zones.h"
#include "upstream/balancer.h"

#define SYNC_EVERY 0.1 /* seconds between two looks at the shared version */

typedef enum { P_IDLE, P_CONNECTING, P_SENDING, P_READING } probe_state_t;
typedef enum { OK_STATUS, FAIL_HTTP, FAIL_TCP, FAIL_TIMEOUT } outcome_t;

typedef struct probe_s {
    struct probe_s *next;
    torii_loop_t *loop;
    torii_node_conf_t node; /* the node's address, port and host name (referenced) only */
    char key[320];          /* "upstream|host:port" in the zone */
    char label[320];        /* for logs */
    char req[1024];
    size_t reqlen, sent;
    int fd;
    probe_state_t state;
    torii_io_t io;
    torii_timer_t tick, deadline;
    char buf[128];
    size_t got;
    /* copied from the configuration: a probe outlives nothing it points to */
    double healthy_every, unhealthy_every, timeout;
    uint32_t successes_needed, http_limit, tcp_limit, timeout_limit;
    uint16_t ok[16];
    uint32_t nok;
    uint32_t successes, http, tcp, timeouts;
    bool down;
    bool connect_only; /* type tcp */
} probe_t;

static probe_t *probes;

static torii_shdict_t *zone(void)
{
    static torii_shdict_t *z;
    if (!z)
        z = torii_zones_find(TORII_HEALTH_ZONE, strlen(TORII_HEALTH_ZONE));
    return z;
}

static void node_key(const torii_upstream_conf_t *u, const torii_node_conf_t *node, char *out, size_t cap)
{
    /* Inline upstreams have no id: their state is kept by position. */
    if (u->id)
        snprintf(out, cap, "%s|%s", u->id, node->text);
    else
        snprintf(out, cap, "#%u|%s", u->index, node->text);
}

static uint64_t ms(double now)
{
    return (uint64_t)(now * 1000);
}

/* ---- worker 1: probing ------------------------------------------------ */

static void schedule(probe_t *p)
{
    torii_timer_arm(p->loop, &p->tick, p->down ? p->unhealthy_every : p->healthy_every);
}

static void publish(probe_t *p)
{
    torii_shdict_t *z = zone();
    torii_shdict_value_t v = torii_shdict_boolean(p->down);
    double version;
    uint64_t now = ms(torii_loop_now(p->loop));
    if (!z)
        return;
    torii_shdict_set(z, p->key, strlen(p->key), &v, 0, 0, now, NULL);
    torii_shdict_incr(z, "version", 7, 1, 0, true, 0, now, &version, NULL);
}

static void judge(probe_t *p, outcome_t o, int status)
{
    const char *kind = NULL;
    uint32_t count = 0;
    if (o == OK_STATUS) {
        p->http = p->tcp = p->timeouts = 0;
        if (p->down && ++p->successes >= p->successes_needed) {
            p->down = false;
            p->successes = 0;
            torii_log_notice("health check: %s is up again (%u successful probes)", p->label, p->successes_needed);
            publish(p);
        }
        return;
    }
    p->successes = 0;
    if (o == FAIL_HTTP && ++p->http >= p->http_limit && p->http_limit)
        kind = "answered an unhealthy status", count = p->http;
    else if (o == FAIL_TCP && ++p->tcp >= p->tcp_limit && p->tcp_limit)
        kind = "refused, reset or closed", count = p->tcp;
    else if (o == FAIL_TIMEOUT && ++p->timeouts >= p->timeout_limit && p->timeout_limit)
        kind = "timed out", count = p->timeouts;
    if (kind && !p->down) {
        p->down = true;
        p->http = p->tcp = p->timeouts = 0;
        char last[32] = "";
        if (status)
            snprintf(last, sizeof last, ", last status %d", status);
        torii_log_warn("health check: %s is down: %u consecutive probes %s%s", p->label, count, kind, last);
        publish(p);
    }
}

static void finish(probe_t *p, outcome_t o, int status)
{
    torii_timer_stop(p->loop, &p->deadline);
    if (p->fd >= 0) {
        torii_io_stop(p->loop, &p->io);
        close(p->fd);
        p->fd = -1;
    }
    p->state = P_IDLE;
    judge(p, o, status);
    schedule(p);
}

/* "HTTP/1.x NNN" at the start of what came back. */
static int status_of(const char *b, size_t n)
{
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ')
        return 0;
    if (b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9')
        return 0;
    return (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
}

static void on_io(torii_loop_t *loop, torii_io_t *io, int revents)
{
    probe_t *p = io->data;
    (void)loop, (void)revents;
    if (p->state == P_CONNECTING) {
        if (torii_sock_connect_error(p->fd) != 0) {
            finish(p, FAIL_TCP, 0);
            return;
        }
        if (p->connect_only) {
            finish(p, OK_STATUS, 0);
            return;
        }
        p->state = P_SENDING;
    }
    if (p->state == P_SENDING) {
        ssize_t n = torii_sock_write(p->fd, p->req + p->sent, p->reqlen - p->sent);
        if (n < 0 && errno != EAGAIN) {
            finish(p, FAIL_TCP, 0);
            return;
        }
        if (n > 0)
            p->sent += (size_t)n;
        if (p->sent < p->reqlen)
            return;
        p->state = P_READING;
        torii_io_stop(p->loop, &p->io);
        torii_io_init(&p->io, on_io, p->fd, TORII_EV_READ);
        p->io.data = p;
        torii_io_start(p->loop, &p->io);
        return;
    }
    if (p->state == P_READING) {
        ssize_t n = torii_sock_read(p->fd, p->buf + p->got, sizeof p->buf - 1 - p->got);
        int status;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            finish(p, FAIL_TCP, 0);
            return;
        }
        p->got += (size_t)n;
        if (p->got < 12 && p->got < sizeof p->buf - 1)
            return;
        status = status_of(p->buf, p->got);
        if (!status) {
            finish(p, FAIL_HTTP, 0);
            return;
        }
        for (uint32_t i = 0; i < p->nok; i++)
            if (p->ok[i] == status) {
                finish(p, OK_STATUS, status);
                return;
            }
        finish(p, FAIL_HTTP, status);
    }
}

static void on_deadline(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    (void)loop, (void)revents;
    finish(t->data, FAIL_TIMEOUT, 0);
}

static void on_tick(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    probe_t *p = t->data;
    torii_addr_t addr;
    int in_progress = 0;
    (void)loop, (void)revents;
    p->sent = p->got = 0;
    /* A host name's node: its current address (they take turns, as tries do). */
    p->fd = torii_node_addr(&p->node, &addr) ? torii_sock_connect(&addr, &in_progress) : -1;
    if (p->fd < 0) {
        judge(p, FAIL_TCP, 0);
        schedule(p);
        return;
    }
    /* Even a connect done at once is judged from the loop, on the write
     * event, so that every outcome takes one path. */
    p->state = in_progress || p->connect_only ? P_CONNECTING : P_SENDING;
    torii_io_init(&p->io, on_io, p->fd, TORII_EV_WRITE);
    p->io.data = p;
    torii_io_start(p->loop, &p->io);
    torii_timer_arm(p->loop, &p->deadline, p->timeout);
}

static void add_probe(torii_worker_t *w, const torii_upstream_conf_t *u, const torii_node_conf_t *node)
{
    probe_t *p = calloc(1, sizeof *p);
    torii_shdict_got_t got;
    if (!p)
        abort();
    p->loop = w->loop;
    p->node = (torii_node_conf_t){.addr = node->addr, .port = node->port, .dns = node->dns};
    if (p->node.dns) /* the probe may outlive the configuration */
        torii_dns_name_ref(p->node.dns);
    p->fd = -1;
    node_key(u, node, p->key, sizeof p->key);
    snprintf(p->label, sizeof p->label, "upstream %s node %s", u->id ? u->id : "(inline)", node->text);
    p->reqlen = (size_t)snprintf(p->req, sizeof p->req,
                                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: torii-health-check\r\nConnection: "
                                 "close\r\n\r\n",
                                 u->active.path, u->active.host ? u->active.host : node->text);
    if (p->reqlen >= sizeof p->req)
        p->reqlen = sizeof p->req - 1;
    p->healthy_every = u->active.healthy_interval_ms / 1000.0;
    p->unhealthy_every = u->active.unhealthy_interval_ms / 1000.0;
    p->timeout = u->active.timeout_ms / 1000.0;
    p->successes_needed = u->active.healthy_successes;
    p->http_limit = u->active.http_failures;
    p->tcp_limit = u->active.tcp_failures;
    p->timeout_limit = u->active.timeouts;
    p->connect_only = u->active.tcp;
    for (uint32_t i = 0; i < u->active.nhealthy_statuses && p->nok < 16; i++)
        p->ok[p->nok++] = u->active.healthy_statuses[i];
    /* A reload keeps what the probes found so far. */
    if (zone() && torii_shdict_get(zone(), p->key, strlen(p->key), ms(torii_loop_now(w->loop)), NULL, 0, &got, NULL) ==
                      TORII_SHDICT_OK)
        p->down = got.type == TORII_SHDICT_BOOLEAN && got.boolean;
    torii_timer_init(&p->tick, on_tick, 0., 0.);
    torii_timer_init(&p->deadline, on_deadline, 0., 0.);
    p->tick.data = p->deadline.data = p;
    torii_timer_arm(w->loop, &p->tick, 0.01 * (double)(rand() % 10)); /* spread the first round */
    p->next = probes;
    probes = p;
}

void torii_health_stop(torii_worker_t *w)
{
    while (probes) {
        probe_t *p = probes;
        probes = p->next;
        torii_timer_stop(w->loop, &p->tick);
        torii_timer_stop(w->loop, &p->deadline);
        if (p->fd >= 0) {
            torii_io_stop(w->loop, &p->io);
            close(p->fd);
        }
        torii_dns_name_release(p->node.dns);
        free(p);
    }
}

void torii_health_start(torii_worker_t *w)
{
    const torii_config_t *conf = w->gen->conf;
    torii_health_stop(w);
    if (w->id != 1) /* one prober for the whole instance */
        return;
    if (!zone()) {
        torii_log_error("health check: the shared zone is missing; active checks are off");
        return;
    }
    for (uint32_t i = 0; i < conf->nupstreams; i++) {
        const torii_upstream_conf_t *u = conf->upstreams[i];
        if (!u->active.on)
            continue;
        for (uint32_t k = 0; k < u->nnodes; k++)
            add_probe(w, u, &u->nodes[k]);
    }
}

/* ---- every worker: the shared states ---------------------------------- */

void torii_health_sync(torii_gen_t *g, const torii_upstream_conf_t *u, double now)
{
    torii_shdict_t *z = zone();
    torii_shdict_got_t got;
    bool *down = g->active_down[u->index];
    char key[320];
    if (!u->active.on || !z || !down || now - g->health_checked[u->index] < SYNC_EVERY)
        return;
    g->health_checked[u->index] = now;
    if (torii_shdict_get(z, "version", 7, ms(now), NULL, 0, &got, NULL) != TORII_SHDICT_OK ||
        got.type != TORII_SHDICT_NUMBER || got.num == g->health_version[u->index])
        return;
    g->health_version[u->index] = got.num;
    for (uint32_t i = 0; i < u->nnodes; i++) {
        bool passive = g->health[u->index] && g->health[u->index][i].down_until > 0;
        node_key(u, &u->nodes[i], key, sizeof key);
        down[i] = torii_shdict_get(z, key, strlen(key), ms(now), NULL, 0, &got, NULL) == TORII_SHDICT_OK &&
                  got.type == TORII_SHDICT_BOOLEAN && got.boolean;
        torii_balancer_set_down(g->bal[u->index], (int)i, down[i] || passive);
    }
}

bool torii_health_active_down(const torii_gen_t *g, const torii_upstream_conf_t *u, uint32_t i)
{
    return g->active_down[u->index] && g->active_down[u->index][i];
}
