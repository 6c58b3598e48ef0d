/* upstream.c — upstream connections and keep-alive pools. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "event/sock.h"
#include "proxy/driver.h"
#include "proxy/upstream.h"

#define POOL_BUCKETS 64

struct torii_upool_node_s {
    torii_addr_t addr;
    torii_list_t idle;
    uint32_t nidle;
    torii_upool_node_t *next;
};

struct torii_upool_s {
    torii_upool_node_t *buckets[POOL_BUCKETS];
};

static void on_read(torii_loop_t *loop, torii_io_t *io, int revents);
static void on_write(torii_loop_t *loop, torii_io_t *io, int revents);
static void on_timer(torii_loop_t *loop, torii_timer_t *t, int revents);
static torii_ioop_prep_t prep_read(torii_ioop_t *op, void **buf, size_t *len);
static void read_done(torii_ioop_t *op, ssize_t n);
static torii_ioop_prep_t prep_send(torii_ioop_t *op, void **buf, size_t *len);
static void send_done(torii_ioop_t *op, ssize_t n);

static void init_watchers(torii_upstream_t *up, int fd)
{
    torii_io_init(&up->rio, on_read, fd, TORII_EV_READ);
    torii_io_init(&up->wio, on_write, fd, TORII_EV_WRITE);
    torii_ioop_init(&up->rop, TORII_IOOP_READ, prep_read, read_done);
    torii_ioop_init(&up->sop, TORII_IOOP_SEND, prep_send, send_done);
    torii_timer_init(&up->timer, on_timer, 0., 0.);
}

/* Nothing may stay queued for a connection that goes idle or away. */
static void stop_io(torii_upstream_t *up)
{
    torii_loop_t *loop = up->w->loop;
    torii_io_stop(loop, &up->rio);
    torii_io_stop(loop, &up->wio);
    torii_ioop_cancel(&up->rop);
    torii_ioop_cancel(&up->sop);
}

static unsigned addr_hash(const torii_addr_t *a)
{
    const unsigned char *p = (const unsigned char *)&a->sa;
    unsigned h = 2166136261u;
    for (socklen_t i = 0; i < a->len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % POOL_BUCKETS;
}

static torii_upool_node_t *pool_node(torii_upool_t *pool, const torii_addr_t *addr)
{
    unsigned h = addr_hash(addr);
    torii_upool_node_t *n;
    for (n = pool->buckets[h]; n; n = n->next) {
        if (torii_addr_equal(&n->addr, addr))
            return n;
    }
    n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->addr = *addr;
    torii_list_init(&n->idle);
    n->next = pool->buckets[h];
    pool->buckets[h] = n;
    return n;
}

torii_upool_t *torii_upool_new(void)
{
    torii_upool_t *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    return p;
}

static void set_state(torii_upstream_t *up, torii_upstream_state_t s)
{
    static const char *const names[] = {"connecting", "busy", "idle", "tunnel"};
    torii_log_debug("upstream %d: %s -> %s", up->fd, names[up->state], names[s]);
    up->state = s;
}

static torii_upstream_t *connect_new(torii_worker_t *w, torii_upool_node_t *node)
{
    int in_progress;
    int fd = torii_sock_connect(&node->addr, &in_progress);
    torii_upstream_t *up;
    if (fd < 0)
        return NULL;
    up = calloc(1, sizeof *up);
    if (!up)
        abort();
    up->w = w;
    up->fd = fd;
    up->pool = node;
    torii_list_init(&up->link);
    init_watchers(up, fd);
    up->state = in_progress ? TORII_UP_CONNECTING : TORII_UP_BUSY;
    /* The write watcher reports the end of a connect in progress. */
    torii_io_start(w->loop, in_progress ? &up->wio : &up->rio);
    return up;
}

torii_upstream_t *torii_upstream_connect(torii_worker_t *w, const torii_addr_t *addr)
{
    return connect_new(w, pool_node(w->upool, addr));
}

torii_upstream_t *torii_upstream_get(torii_worker_t *w, const torii_addr_t *addr)
{
    torii_upool_node_t *node = pool_node(w->upool, addr);
    torii_upstream_t *up;
    if (!torii_list_empty(&node->idle)) {
        up = torii_list_entry(node->idle.next, torii_upstream_t, link);
        torii_list_remove(&up->link);
        node->nidle--;
        torii_timer_stop(w->loop, &up->timer);
        set_state(up, TORII_UP_BUSY);
        up->reused = true;
        up->got_bytes = false;
        return up;
    }
    up = connect_new(w, node);
    return up;
}

void torii_upstream_close(torii_upstream_t *up)
{
    torii_loop_t *loop = up->w->loop;
    if (up->state == TORII_UP_IDLE) {
        torii_list_remove(&up->link);
        up->pool->nidle--;
    }
    stop_io(up);
    torii_timer_stop(loop, &up->timer);
    close(up->fd);
    torii_buf_release(&up->in);
    torii_buf_release(&up->out);
    free(up);
}

void torii_upstream_release(torii_upstream_t *up, bool reusable)
{
    torii_worker_t *w = up->w;
    const torii_proxy_conf_t *pc = &w->conf->proxy;
    up->client = NULL;
    up->nrequests++;
    if (!reusable || up->eof || w->quitting || up->pool->nidle >= pc->pool_size || up->nrequests >= pc->pool_requests ||
        torii_buf_len(&up->in) > 0 || torii_buf_len(&up->out) > 0) {
        torii_upstream_close(up);
        return;
    }
    set_state(up, TORII_UP_IDLE);
    torii_buf_release(&up->in);
    torii_buf_release(&up->out);
    up->scanned = 0;
    up->read_paused = false;
    stop_io(up);
    torii_io_start(w->loop, &up->rio);
    torii_list_push(&up->pool->idle, &up->link);
    up->pool->nidle++;
    torii_timer_arm(w->loop, &up->timer, pc->pool_idle_timeout_ms / 1000.0);
}

/* An idle connection is a torii_upstream_t whichever side pooled it, so
 * the proxy and plugins reuse each other's connections, and one set of
 * watchers discards those the peer closes while they wait. */
int torii_upool_take(torii_worker_t *w, const torii_addr_t *addr, uint32_t *uses)
{
    torii_upool_node_t *node = pool_node(w->upool, addr);
    torii_upstream_t *up;
    int fd;
    if (torii_list_empty(&node->idle))
        return -1;
    up = torii_list_entry(node->idle.next, torii_upstream_t, link);
    torii_list_remove(&up->link);
    node->nidle--;
    stop_io(up);
    torii_timer_stop(w->loop, &up->timer);
    fd = up->fd;
    *uses = up->nrequests;
    torii_log_debug("upstream %d: idle connection taken by a plugin socket", fd);
    free(up);
    return fd;
}

void torii_upool_put(torii_worker_t *w, const torii_addr_t *addr, int fd, uint32_t uses, double idle_s,
                     uint32_t max_idle)
{
    torii_upool_node_t *node = pool_node(w->upool, addr);
    torii_upstream_t *up;
    if (w->quitting || node->nidle >= max_idle) {
        close(fd);
        return;
    }
    up = calloc(1, sizeof *up);
    if (!up)
        abort();
    up->w = w;
    up->fd = fd;
    up->pool = node;
    up->nrequests = uses;
    up->state = TORII_UP_IDLE;
    init_watchers(up, fd);
    torii_io_start(w->loop, &up->rio);
    torii_list_push(&node->idle, &up->link);
    node->nidle++;
    torii_timer_arm(w->loop, &up->timer, idle_s);
}

void torii_upstream_pause_read(torii_upstream_t *up)
{
    if (!up->read_paused) {
        up->read_paused = true;
        torii_io_stop(up->w->loop, &up->rio);
        torii_upstream_update_timer(up);
    }
}

void torii_upstream_resume_read(torii_upstream_t *up)
{
    if (up->read_paused) {
        up->read_paused = false;
        if (up->state != TORII_UP_CONNECTING)
            torii_io_start(up->w->loop, &up->rio);
        torii_upstream_update_timer(up);
    }
}

void torii_upstream_update_timer(torii_upstream_t *up)
{
    const torii_timeouts_t *to = torii_driver_timeouts(up);
    double after = 0;
    if (up->state == TORII_UP_CONNECTING)
        after = to->connect_ms / 1000.0;
    else if (torii_buf_len(&up->out) > 0 && torii_io_active(&up->wio))
        after = to->send_ms / 1000.0;
    else if (!up->read_paused && up->state == TORII_UP_BUSY)
        after = to->read_ms / 1000.0;
    /* A tunnel's idleness is watched by its client connection's timer. */
    if (after > 0)
        torii_timer_arm(up->w->loop, &up->timer, after);
    else
        torii_timer_stop(up->w->loop, &up->timer);
}

static void write_waits(torii_upstream_t *up)
{
    if (!torii_io_active(&up->wio)) {
        torii_io_start(up->w->loop, &up->wio);
        torii_upstream_update_timer(up);
    }
}

static void write_done(torii_upstream_t *up)
{
    if (torii_io_active(&up->wio)) {
        torii_io_stop(up->w->loop, &up->wio);
        torii_upstream_update_timer(up);
    }
}

/* Send what up->out holds now, with plain calls. */
static int flush_now(torii_upstream_t *up)
{
    while (torii_buf_len(&up->out) > 0) {
        ssize_t n = torii_sock_write(up->fd, torii_buf_pos(&up->out), torii_buf_len(&up->out));
        if (n == TORII_AGAIN) {
            write_waits(up);
            return TORII_AGAIN;
        }
        if (n < 0) {
            torii_driver_upstream_error(up, TORII_UPERR_IO, errno);
            return TORII_ERROR;
        }
        torii_buf_consume(&up->out, (size_t)n);
    }
    write_done(up);
    return TORII_OK;
}

/* As torii_client_flush: sent in the loop pass's round of socket calls,
 * and torii_driver_upstream_writable follows once it all went. */
int torii_upstream_flush(torii_upstream_t *up)
{
    if (up->state == TORII_UP_CONNECTING)
        return TORII_AGAIN; /* flushed once connected */
    if (torii_buf_len(&up->out) == 0)
        return flush_now(up);
    if (!torii_io_active(&up->wio)) /* else the write event comes first */
        torii_ioq_add(up->w->ioq, &up->sop, up->fd);
    return TORII_AGAIN;
}

static torii_ioop_prep_t prep_send(torii_ioop_t *op, void **buf, size_t *len)
{
    /* Never queued while connecting (flushed once connected), and pooling
     * cancels it (stop_io). */
    return torii_ioop_prep_out(&torii_container_of(op, torii_upstream_t, sop)->out, buf, len);
}

static void send_done(torii_ioop_t *op, ssize_t n)
{
    torii_upstream_t *up = torii_container_of(op, torii_upstream_t, sop);
    switch (torii_ioq_sent(up->w->ioq, op, &up->out, n)) {
    case TORII_SENT_ALL:
        write_done(up);
        torii_driver_upstream_writable(up);
        break;
    case TORII_SENT_WAIT: write_waits(up); break;
    case TORII_SENT_QUEUED: break;
    case TORII_SENT_FLUSH:
        if (flush_now(up) == TORII_OK)
            torii_driver_upstream_writable(up);
        break;
    case TORII_SENT_ERROR: torii_driver_upstream_error(up, TORII_UPERR_IO, errno); break;
    }
}

static void connected(torii_upstream_t *up)
{
    int err = torii_sock_connect_error(up->fd);
    if (err != 0) {
        torii_driver_upstream_error(up, TORII_UPERR_CONNECT, err);
        return;
    }
    set_state(up, TORII_UP_BUSY);
    torii_io_stop(up->w->loop, &up->wio);
    if (!up->read_paused)
        torii_io_start(up->w->loop, &up->rio);
    torii_upstream_update_timer(up);
    torii_driver_upstream_writable(up);
}

static void on_write(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_upstream_t *up = torii_container_of(io, torii_upstream_t, wio);
    (void)loop, (void)revents;
    if (up->state == TORII_UP_CONNECTING) {
        connected(up);
        return;
    }
    if (flush_now(up) == TORII_OK)
        torii_driver_upstream_writable(up);
}

/* An idle pooled connection became readable: the upstream closed it or
 * sent bytes nobody asked for. Either way it is unusable. */
static void idle_readable(torii_upstream_t *up)
{
    char probe[64];
    ssize_t n = torii_sock_read(up->fd, probe, sizeof probe);
    if (n == TORII_AGAIN)
        return;
    torii_log_debug("upstream %d: idle connection %s, discarded", up->fd,
                    n == 0 ? "closed by the upstream" : "unusable");
    torii_upstream_close(up);
}

static size_t in_room(torii_upstream_t *up)
{
    return torii_buf_space(&up->in, 4096, (size_t)up->w->conf->client.max_header_size + TORII_BUF_BLOCK, true);
}

static void busy_read(torii_upstream_t *up, ssize_t n)
{
    if (n == TORII_AGAIN)
        return;
    if (n < 0) {
        torii_driver_upstream_error(up, TORII_UPERR_IO, errno);
        return;
    }
    if (n == 0) {
        up->eof = true;
        torii_driver_upstream_eof(up);
        return;
    }
    up->in.end += (uint32_t)n;
    up->got_bytes = true;
    torii_upstream_update_timer(up);
    torii_driver_upstream_readable(up);
}

static void read_now(torii_upstream_t *up)
{
    size_t room;
    if (up->state == TORII_UP_IDLE) {
        idle_readable(up);
        return;
    }
    if (up->state == TORII_UP_TUNNEL) {
        torii_driver_tunnel_upstream_readable(up);
        return;
    }
    room = in_room(up);
    if (room == 0) {
        torii_upstream_pause_read(up); /* the driver has not taken the last bytes yet */
        return;
    }
    busy_read(up, torii_sock_read(up->fd, up->in.data + up->in.end, room));
}

/* A response is read in the loop pass's round of socket calls
 * (event/ioq.h); an idle or tunnelled connection's reads are made here. */
static void on_read(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_upstream_t *up = torii_container_of(io, torii_upstream_t, rio);
    (void)loop, (void)revents;
    if (up->state == TORII_UP_BUSY)
        torii_ioq_add(up->w->ioq, &up->rop, up->fd);
    else
        read_now(up);
}

static torii_ioop_prep_t prep_read(torii_ioop_t *op, void **buf, size_t *len)
{
    torii_upstream_t *up = torii_container_of(op, torii_upstream_t, rop);
    if (up->read_paused)
        return TORII_IOOP_DROP; /* its resumed watcher asks again */
    if (up->state != TORII_UP_BUSY)
        return TORII_IOOP_SYNC;
    *len = in_room(up);
    if (*len == 0)
        return TORII_IOOP_SYNC; /* read_now pauses */
    *buf = up->in.data + up->in.end;
    return TORII_IOOP_GO;
}

static void read_done(torii_ioop_t *op, ssize_t n)
{
    torii_upstream_t *up = torii_container_of(op, torii_upstream_t, rop);
    if (n == TORII_IOOP_SKIPPED) {
        if (!up->read_paused)
            read_now(up);
    } else
        busy_read(up, n);
}

static void on_timer(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_upstream_t *up = torii_container_of(t, torii_upstream_t, timer);
    (void)loop, (void)revents;
    switch (up->state) {
    case TORII_UP_IDLE: torii_upstream_close(up); break;
    case TORII_UP_CONNECTING: torii_driver_upstream_error(up, TORII_UPERR_TIMEOUT_CONNECT, ETIMEDOUT); break;
    case TORII_UP_BUSY:
    case TORII_UP_TUNNEL:
        torii_driver_upstream_error(
            up, torii_buf_len(&up->out) > 0 ? TORII_UPERR_TIMEOUT_SEND : TORII_UPERR_TIMEOUT_READ, ETIMEDOUT);
        break;
    }
}

void torii_upool_close_idle(torii_upool_t *pool)
{
    for (unsigned i = 0; i < POOL_BUCKETS; i++) {
        for (torii_upool_node_t *n = pool->buckets[i]; n; n = n->next) {
            while (!torii_list_empty(&n->idle))
                torii_upstream_close(torii_list_entry(n->idle.next, torii_upstream_t, link));
        }
    }
}

void torii_upool_free(torii_upool_t *pool, torii_loop_t *loop)
{
    (void)loop;
    if (!pool)
        return;
    torii_upool_close_idle(pool);
    for (unsigned i = 0; i < POOL_BUCKETS; i++) {
        torii_upool_node_t *n = pool->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            free(n);
        }
    }
    free(pool);
}
