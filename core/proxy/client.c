/*
 * client.c — downstream connections.
 *
 * Buffer discipline: while a request is ACTIVE, its head stays where it was
 * parsed at the front of c->in (header slices point into it), body bytes
 * are read into the space behind it and handed to the driver, and nothing
 * in c->in may move. Between requests the buffer may be compacted, and an
 * idle connection gives both buffers back, so it holds no buffer memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "event/sock.h"
#include "http/status.h"
#include "proxy/accesslog.h"
#include "proxy/client.h"
#include "proxy/driver.h"
#include "proxy/worker.h"

#define LINGER_SECONDS 5.0  /* how long to drain a client after an error */
#define HEAD_ROOM      8192 /* free bytes kept behind a parsed head for its body */

static void on_read(torii_loop_t *loop, torii_io_t *io, int revents);
static void on_write(torii_loop_t *loop, torii_io_t *io, int revents);
static void on_timer(torii_loop_t *loop, torii_timer_t *t, int revents);
static void process_input(torii_client_t *c);
static torii_ioop_prep_t prep_read(torii_ioop_t *op, void **buf, size_t *len);
static void read_done(torii_ioop_t *op, ssize_t n);
static torii_ioop_prep_t prep_send(torii_ioop_t *op, void **buf, size_t *len);
static void send_done(torii_ioop_t *op, ssize_t n);

static const char *state_name(torii_client_state_t s)
{
    static const char *const names[] = {"idle", "head", "active", "tunnel", "linger"};
    return names[s];
}

static void set_state(torii_client_t *c, torii_client_state_t s)
{
    torii_log_debug("client %d: %s -> %s", c->fd, state_name(c->state), state_name(s));
    c->state = s;
}

void torii_client_accept(torii_worker_t *w, int fd, const torii_addr_t *peer)
{
    torii_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->peer = *peer;
    torii_addr_to16((const struct sockaddr *)&peer->sa, c->peer16);
    torii_addr_format_ip((const struct sockaddr *)&peer->sa, c->ip, sizeof c->ip);
    torii_io_init(&c->rio, on_read, fd, TORII_EV_READ);
    torii_io_init(&c->wio, on_write, fd, TORII_EV_WRITE);
    torii_ioop_init(&c->rop, TORII_IOOP_READ, prep_read, read_done);
    torii_ioop_init(&c->sop, TORII_IOOP_SEND, prep_send, send_done);
    torii_timer_init(&c->timer, on_timer, 0., 0.);
    torii_timer_init(&c->wait_timer, torii_driver_wait_over, 0., 0.);
    torii_timer_init(&c->retry_timer, torii_driver_retry_due, 0., 0.);
    c->retry_timer.data = c;
    torii_list_push(&w->clients, &c->link);
    w->nclients++;
    c->state = TORII_CLIENT_IDLE;
    torii_io_start(w->loop, &c->rio);
    /* A new connection gets the header timeout for its first request. */
    torii_timer_arm(w->loop, &c->timer, w->conf->client.header_timeout_ms / 1000.0);
}

void torii_client_close(torii_client_t *c, bool reset)
{
    torii_worker_t *w = c->w;
    if (c->up || c->req)
        torii_driver_abort(c);
    torii_io_stop(w->loop, &c->rio);
    torii_io_stop(w->loop, &c->wio);
    torii_ioop_cancel(&c->rop);
    torii_ioop_cancel(&c->sop);
    torii_timer_stop(w->loop, &c->timer);
    torii_timer_stop(w->loop, &c->wait_timer);
    torii_timer_stop(w->loop, &c->retry_timer);
    if (reset)
        torii_sock_reset(c->fd);
    else
        close(c->fd);
    torii_buf_release(&c->in);
    torii_buf_release(&c->out);
    torii_list_remove(&c->link);
    w->nclients--;
    free(c);
    torii_worker_client_closed(w);
}

void torii_client_pause_read(torii_client_t *c)
{
    if (!c->read_paused) {
        c->read_paused = true;
        torii_io_stop(c->w->loop, &c->rio);
    }
}

void torii_client_resume_read(torii_client_t *c)
{
    if (c->read_paused) {
        c->read_paused = false;
        torii_io_start(c->w->loop, &c->rio);
    }
}

void torii_client_update_timer(torii_client_t *c)
{
    const torii_client_conf_t *cc = &c->w->conf->client;
    double after = 0;
    if (c->state == TORII_CLIENT_TUNNEL || c->state == TORII_CLIENT_LINGER)
        return; /* these states keep their own timer */
    if (torii_buf_len(&c->out) > 0 && torii_io_active(&c->wio))
        after = cc->send_timeout_ms / 1000.0;
    else if (c->state == TORII_CLIENT_ACTIVE && c->req && !c->req->body.done && !c->read_paused)
        after = cc->body_timeout_ms / 1000.0;
    if (after > 0)
        torii_timer_arm(c->w->loop, &c->timer, after);
    else
        torii_timer_stop(c->w->loop, &c->timer);
}

static void write_waits(torii_client_t *c)
{
    if (!torii_io_active(&c->wio)) {
        torii_io_start(c->w->loop, &c->wio);
        torii_client_update_timer(c);
    }
}

static void write_done(torii_client_t *c)
{
    if (torii_io_active(&c->wio)) {
        torii_io_stop(c->w->loop, &c->wio);
        torii_client_update_timer(c);
    }
}

/* Send what c->out holds now, with plain calls. */
static int flush_now(torii_client_t *c)
{
    while (torii_buf_len(&c->out) > 0) {
        ssize_t n = torii_sock_write(c->fd, torii_buf_pos(&c->out), torii_buf_len(&c->out));
        if (n == TORII_AGAIN) {
            write_waits(c);
            return TORII_AGAIN;
        }
        if (n < 0) {
            torii_log_info("client %s: write failed: %s", c->ip, strerror(errno));
            torii_client_close(c, false);
            return TORII_ERROR;
        }
        if (c->req)
            c->req->bytes_sent += (uint64_t)n;
        torii_buf_consume(&c->out, (size_t)n);
    }
    write_done(c);
    return TORII_OK;
}

/* All the output went: what waits on it goes on (not before: a finished
 * response's connection is reused or closed there). */
static void drained(torii_client_t *c)
{
    if (c->state == TORII_CLIENT_TUNNEL)
        torii_driver_tunnel_drained(c);
    else if (c->state == TORII_CLIENT_LINGER) {
        if (torii_buf_len(&c->out) == 0)
            shutdown(c->fd, SHUT_WR);
    } else /* ACTIVE, or HEAD with an answer to a rejected head */
        torii_driver_client_drained(c);
}

/* Output is sent in the loop pass's round of socket calls (event/ioq.h),
 * so this says AGAIN: the rest follows from drained(), as after a write
 * event. With nothing to send it is done at once. */
int torii_client_flush(torii_client_t *c)
{
    if (torii_buf_len(&c->out) == 0)
        return flush_now(c);
    if (!torii_io_active(&c->wio)) /* else the write event comes first */
        torii_ioq_add(c->w->ioq, &c->sop, c->fd);
    return TORII_AGAIN;
}

static torii_ioop_prep_t prep_send(torii_ioop_t *op, void **buf, size_t *len)
{
    return torii_ioop_prep_out(&torii_container_of(op, torii_client_t, sop)->out, buf, len);
}

static void send_done(torii_ioop_t *op, ssize_t n)
{
    torii_client_t *c = torii_container_of(op, torii_client_t, sop);
    if (n > 0 && c->req)
        c->req->bytes_sent += (uint64_t)n;
    switch (torii_ioq_sent(c->w->ioq, op, &c->out, n)) {
    case TORII_SENT_ALL:
        write_done(c);
        drained(c);
        break;
    case TORII_SENT_WAIT: write_waits(c); break;
    case TORII_SENT_QUEUED: break;
    case TORII_SENT_FLUSH:
        if (flush_now(c) == TORII_OK)
            drained(c);
        break;
    case TORII_SENT_ERROR:
        torii_log_info("client %s: write failed: %s", c->ip, strerror(errno));
        torii_client_close(c, false);
        break;
    }
}

static void on_write(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_client_t *c = torii_container_of(io, torii_client_t, wio);
    (void)loop, (void)revents;
    if (flush_now(c) == TORII_OK)
        drained(c);
}

/* Close gracefully: send what is queued, then stop sending and discard
 * what the client still sends for a while, so it reads our answer instead
 * of an RST caused by its unread request bytes (RFC 9112 9.6). */
static void linger(torii_client_t *c)
{
    torii_worker_t *w = c->w;
    set_state(c, TORII_CLIENT_LINGER);
    torii_client_resume_read(c);
    torii_timer_arm(w->loop, &c->timer, LINGER_SECONDS);
    if (torii_client_flush(c) == TORII_OK)
        shutdown(c->fd, SHUT_WR);
}

static void linger_read(torii_client_t *c)
{
    char sink[4096];
    ssize_t n = torii_sock_read(c->fd, sink, sizeof sink);
    if (n == 0 || n == TORII_ERROR)
        torii_client_close(c, false);
}

bool torii_client_may_keep(const torii_client_t *c)
{
    const torii_worker_t *w = c->w;
    return c->req->head.f.keepalive && !w->quitting && !c->eof &&
           c->nrequests + 1 < w->conf->client.keepalive_requests && w->conf->client.keepalive_timeout_ms > 0;
}

void torii_client_error(torii_client_t *c, int status, const char *why)
{
    torii_request_t *r = c->req;
    r->error = why;
    r->status = status;
    /* Unread body bytes would be taken for the next request: close. */
    r->close_after |= !r->body.done || !torii_client_may_keep(c);
    r->response_started = r->response_done = true;
    torii_error_response(&c->out, status, why, r->id, r->close_after, r->head.method == TORII_M_HEAD, r->resp_edits);
    if (torii_client_flush(c) == TORII_OK)
        torii_client_request_done(c);
}

void torii_client_respond(torii_client_t *c, int status, const torii_hdr_edit_t *headers, torii_str_t body)
{
    torii_request_t *r = c->req;
    r->status = status;
    r->close_after |= !r->body.done || !torii_client_may_keep(c);
    r->response_started = r->response_done = true;
    torii_exit_response(&c->out, status, headers, body.p, body.n, r->close_after, r->head.method == TORII_M_HEAD);
    if (torii_client_flush(c) == TORII_OK)
        torii_client_request_done(c);
}

/* Drop the finished request's bytes from c->in (the pipelined rest stays). */
static void consume_request(torii_client_t *c)
{
    uint32_t used = c->body_pos - c->in.start;
    torii_buf_consume(&c->in, used);
    c->body_pos = 0;
    c->scanned = 0;
}

void torii_client_request_done(torii_client_t *c)
{
    torii_worker_t *w = c->w;
    /* A plugin's wait ends with its request (answered meanwhile, say by a
     * timeout): its timer must not wake the next request on this connection. */
    torii_timer_stop(w->loop, &c->wait_timer);
    torii_timer_stop(w->loop, &c->retry_timer);
    bool keep = !c->req->close_after && !w->quitting && !c->eof;
    bool unread = !c->req->body.done;
    torii_access_log(c);
    c->nrequests++;
    torii_worker_request_free(w, c->req);
    c->req = NULL;
    if (!keep) {
        if (unread || torii_buf_len(&c->out) > 0)
            linger(c);
        else
            torii_client_close(c, false);
        return;
    }
    consume_request(c);
    set_state(c, TORII_CLIENT_IDLE);
    torii_client_resume_read(c);
    if (torii_buf_len(&c->in) > 0) { /* pipelined: the next request is here */
        process_input(c);
        return;
    }
    torii_buf_release(&c->in);
    torii_buf_release(&c->out);
    torii_timer_arm(w->loop, &c->timer, w->conf->client.keepalive_timeout_ms / 1000.0);
}

/* The first line of what the client sent, as far as it got (for logs). */
static torii_str_t request_line(const torii_client_t *c)
{
    size_t n = torii_buf_len(&c->in) < 8192 ? torii_buf_len(&c->in) : 8192;
    const char *p = torii_buf_pos(&c->in), *cr = memchr(p, '\r', n), *lf = memchr(p, '\n', n);
    if (cr && (!lf || cr < lf))
        n = (size_t)(cr - p);
    else if (lf)
        n = (size_t)(lf - p);
    return torii_str(p, n);
}

/* Reject a request whose head could not be accepted: answer and close. */
static void reject_head(torii_client_t *c, int status, const char *why)
{
    if (!c->req)
        c->req = torii_worker_request_new(c->w);
    c->req->line = request_line(c);
    c->req->body.done = false; /* unread input may follow: linger */
    c->req->close_after = true;
    c->body_pos = c->in.end;
    torii_log_info("client %s: %d: %s", c->ip, status, why);
    /* Nothing more is read as a request: linger() discards what comes. */
    torii_client_pause_read(c);
    torii_client_error(c, status, why);
}

static void skip_empty_lines(torii_client_t *c)
{
    /* RFC 9112 2.2: a server should ignore empty lines before a request. */
    while (torii_buf_len(&c->in) >= 2 && torii_buf_pos(&c->in)[0] == '\r' && torii_buf_pos(&c->in)[1] == '\n')
        torii_buf_consume(&c->in, 2);
}

static void process_head(torii_client_t *c)
{
    const torii_client_conf_t *cc = &c->w->conf->client;
    uint32_t head_len;
    int status = 400;
    const char *why = NULL;
    int rc = torii_head_find_end(torii_buf_pos(&c->in), torii_buf_len(&c->in), cc->max_header_size, &c->scanned,
                                 &head_len, &status, &why);
    if (rc == TORII_AGAIN)
        return;
    if (rc == TORII_ERROR) {
        reject_head(c, status, why);
        return;
    }
    /* Room for the body behind the head, before slices pin the buffer. */
    torii_buf_space(&c->in, HEAD_ROOM, (size_t)cc->max_header_size + HEAD_ROOM + TORII_BUF_BLOCK, true);
    c->req = torii_worker_request_new(c->w);
    c->req->wake = &c->wait_timer; /* a plugin's socket ends a wait early through it */
    if (torii_request_head_parse(torii_buf_pos(&c->in), head_len, &c->req->head, &status, &why) != TORII_OK) {
        reject_head(c, status, why);
        return;
    }
    c->req->line = request_line(c);
    c->body_pos = c->in.start + head_len;
    set_state(c, TORII_CLIENT_ACTIVE);
    torii_timer_stop(c->w->loop, &c->timer);
    torii_driver_begin(c);
}

static void process_input(torii_client_t *c)
{
    skip_empty_lines(c);
    if (torii_buf_len(&c->in) == 0) {
        if (c->state == TORII_CLIENT_HEAD)
            set_state(c, TORII_CLIENT_IDLE);
        return;
    }
    if (c->state == TORII_CLIENT_IDLE) {
        set_state(c, TORII_CLIENT_HEAD);
        if (c->nrequests > 0) /* the first request's timer runs since accept */
            torii_timer_arm(c->w->loop, &c->timer, c->w->conf->client.header_timeout_ms / 1000.0);
    }
    process_head(c);
}

static size_t head_room(torii_client_t *c)
{
    /* One byte more than the limit, so an oversized head is detected. */
    return torii_buf_space(&c->in, 4096, (size_t)c->w->conf->client.max_header_size + 1, true);
}

static void head_read(torii_client_t *c, ssize_t n)
{
    if (n == TORII_AGAIN)
        return;
    if (n <= 0) {
        if (c->state == TORII_CLIENT_HEAD)
            torii_log_info("client %s closed the connection in the middle of a request head", c->ip);
        torii_client_close(c, false);
        return;
    }
    c->in.end += (uint32_t)n;
    process_input(c);
}

static void read_head(torii_client_t *c)
{
    size_t room = head_room(c);
    if (room == 0) {
        reject_head(c, 431, "request header fields too large");
        return;
    }
    head_read(c, torii_sock_read(c->fd, c->in.data + c->in.end, room));
}

/* While a request is active, bytes are body (or the next pipelined
 * request, kept for later). EOF or an error aborts the request. */
static void read_active(torii_client_t *c)
{
    size_t room = torii_buf_space(&c->in, 1, 0, false);
    ssize_t n;
    if (room == 0) {
        torii_client_pause_read(c); /* resumed when the driver consumes */
        return;
    }
    n = torii_sock_read(c->fd, c->in.data + c->in.end, room);
    if (n == TORII_AGAIN)
        return;
    if (n <= 0) {
        c->eof = true;
        torii_driver_client_gone(c, n == 0 ? "client closed the connection" : strerror(errno));
        return;
    }
    c->in.end += (uint32_t)n;
    if (!c->req->body.done)
        torii_driver_body(c);
}

static void read_now(torii_client_t *c)
{
    switch (c->state) {
    case TORII_CLIENT_IDLE:
    case TORII_CLIENT_HEAD: read_head(c); break;
    case TORII_CLIENT_ACTIVE: read_active(c); break;
    case TORII_CLIENT_TUNNEL: torii_driver_tunnel_client_readable(c); break;
    case TORII_CLIENT_LINGER: linger_read(c); break;
    }
}

/* A request head is read in the loop pass's round of socket calls
 * (event/ioq.h); other reads are rarer and made here. */
static void on_read(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_client_t *c = torii_container_of(io, torii_client_t, rio);
    (void)loop, (void)revents;
    if (c->state == TORII_CLIENT_IDLE || c->state == TORII_CLIENT_HEAD)
        torii_ioq_add(c->w->ioq, &c->rop, c->fd);
    else
        read_now(c);
}

static torii_ioop_prep_t prep_read(torii_ioop_t *op, void **buf, size_t *len)
{
    torii_client_t *c = torii_container_of(op, torii_client_t, rop);
    if (c->read_paused)
        return TORII_IOOP_DROP; /* its resumed watcher asks again */
    if ((c->state != TORII_CLIENT_IDLE && c->state != TORII_CLIENT_HEAD) || c->req)
        return TORII_IOOP_SYNC;
    *len = head_room(c);
    if (*len == 0)
        return TORII_IOOP_SYNC; /* read_head says 431 */
    *buf = c->in.data + c->in.end;
    return TORII_IOOP_GO;
}

static void read_done(torii_ioop_t *op, ssize_t n)
{
    torii_client_t *c = torii_container_of(op, torii_client_t, rop);
    if (n == TORII_IOOP_SKIPPED) {
        if (!c->read_paused)
            read_now(c);
    } else if ((c->state == TORII_CLIENT_IDLE || c->state == TORII_CLIENT_HEAD) && !c->req)
        head_read(c, n);
    else if (n == 0 || n == TORII_ERROR)
        torii_client_close(c, false);
    /* Else the connection was answered and closes meanwhile (a rejected
     * head): what came is not a request and is dropped, as linger does. */
}

static void on_timer(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_client_t *c = torii_container_of(t, torii_client_t, timer);
    (void)loop, (void)revents;
    switch (c->state) {
    case TORII_CLIENT_IDLE:
        if (c->nrequests == 0 && torii_buf_len(&c->in) == 0)
            torii_log_info("client %s sent no request within the header timeout", c->ip);
        torii_client_close(c, false);
        break;
    case TORII_CLIENT_HEAD: reject_head(c, 408, "request head not received in time"); break;
    case TORII_CLIENT_ACTIVE: torii_driver_client_timeout(c); break;
    case TORII_CLIENT_TUNNEL:
        torii_log_info("client %s: tunnel idle timeout", c->ip);
        torii_client_close(c, false);
        break;
    case TORII_CLIENT_LINGER: torii_client_close(c, false); break;
    }
}

void torii_client_shutdown_idle(torii_worker_t *w)
{
    torii_list_t *n = w->clients.next;
    while (n != &w->clients) {
        torii_client_t *c = torii_list_entry(n, torii_client_t, link);
        n = n->next;
        if (c->state == TORII_CLIENT_IDLE && torii_buf_len(&c->in) == 0)
            torii_client_close(c, false);
    }
}
