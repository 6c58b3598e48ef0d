/*
 * cosocket.c — non-blocking TCP sockets for plugins (torii.socket).
 *
 * Lua holds a handle (id, gen) into a table of slots; C owns the
 * descriptor, its watchers and its buffers. One operation waits at a time
 * on a socket: the FFI call does what it can at once and, when it must
 * wait, starts a watcher, sets its waiter's deadline and returns
 * TORII_FFI_AGAIN. The watcher records the outcome and wakes the waiter;
 * the resumed Lua side fetches the outcome with torii_ffi_sock_result, and
 * finding none means the deadline came first.
 *
 * A socket belongs to the request or timer task that connected it (its
 * owner, lua/wait.h): only that owner may use it, and the owner holds it,
 * so that its end closes whatever it still has — the plugin forgot to, the
 * client left during a wait, the task was dropped. A host name is looked
 * up first (event/resolve.h) within the connect's deadline. Keep-alive
 * hands the descriptor to the upstream pool of its address (upstream.c),
 * shared with the proxy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "event/resolve.h"
#include "event/sock.h"
#include "lua/ffi.h"
#include "lua/ffi_state.h"
#include "lua/wait.h"
#include "proxy/cosocket.h"
#include "proxy/upstream.h"

#define READ_SIZE 16384
#define MAX_SCAN  (1u << 20)  /* a line or delimited piece longer than this fails */
#define MAX_RECV  (64u << 20) /* what one receive may gather */
#define MAX_SEND  (1u << 30)

enum { OP_NONE, OP_RESOLVE, OP_CONNECT, OP_SEND, OP_RECV };
enum { RECV_LINE = 1, RECV_ALL, RECV_COUNT, RECV_ANY, RECV_UNTIL };

/* Lookup flags: the call may wait (phase check); it is allowed while an
 * operation is pending (close, after the owner's coroutine was dropped). */
enum { WAITS = 1, ANY_STATE = 2 };

typedef struct {
    torii_held_t held; /* in its owner's list: closed when the owner ends */
    uint32_t id, gen;
    int fd;                 /* -1 once closed (or not connected yet) */
    torii_resolve_t *query; /* OP_RESOLVE: the host name's lookup */
    torii_waiter_t owner;
    torii_addr_t addr;
    torii_io_t rio, wio;
    torii_buf_t in, out;
    size_t handed;  /* bytes of `in` the last result gave Lua: dropped at the next call */
    size_t scanned; /* LINE, UNTIL: bytes of `in` searched already */
    int op, mode;
    size_t want; /* COUNT, ANY: bytes; UNTIL: the delimiter's length */
    char *delim;
    bool done; /* the waiting operation has its outcome: */
    int rc;
    const char *why;
    size_t res_len, res_used; /* RECV: bytes given, bytes consumed */
    int read_err;
    bool eof;
    uint32_t uses; /* times the connection served before (from the pool) */
} csock_t;

static torii_worker_t *worker; /* NULL outside a running worker */
static csock_t **slots;
static uint32_t *gens; /* per slot: the generation of its latest socket */
static uint32_t *free_ids;
static uint32_t nslots, nfree, cap;

static void on_read(torii_loop_t *loop, torii_io_t *io, int revents);
static void on_write(torii_loop_t *loop, torii_io_t *io, int revents);

static int fail(int code, const char *why)
{
    torii_ffi_set_error(why);
    return code;
}

/* errno as the short words plugins compare with. */
static const char *errtext(int err)
{
    switch (err) {
    case ECONNREFUSED: return "connection refused";
    case ETIMEDOUT: return "timeout";
    case ECONNRESET: return "connection reset by peer";
    case EPIPE: return "closed";
    case ENETUNREACH: return "network unreachable";
    case EHOSTUNREACH: return "host unreachable";
    case EMFILE:
    case ENFILE: return "too many open files";
    default: return strerror(err);
    }
}

static uint32_t slot_take(void)
{
    if (nfree > 0)
        return free_ids[--nfree];
    if (nslots == cap) {
        uint32_t more = cap ? cap * 2 : 16;
        csock_t **s = realloc(slots, more * sizeof *s);
        uint32_t *g = realloc(gens, more * sizeof *g);
        uint32_t *f = realloc(free_ids, more * sizeof *f);
        if (!s || !g || !f)
            abort();
        slots = s, gens = g, free_ids = f;
        cap = more;
    }
    gens[nslots] = 0;
    return nslots++;
}

static void close_fd(csock_t *s)
{
    if (s->fd < 0)
        return;
    torii_io_stop(worker->loop, &s->rio); /* libev must forget an fd before it closes */
    torii_io_stop(worker->loop, &s->wio);
    close(s->fd);
    s->fd = -1;
}

static void destroy(csock_t *s)
{
    if (s->query)
        torii_resolve_cancel(s->query);
    close_fd(s);
    torii_buf_release(&s->in);
    torii_buf_release(&s->out);
    free(s->delim);
    torii_waiter_unhold(&s->held);
    slots[s->id] = NULL;
    free_ids[nfree++] = s->id;
    free(s);
}

/* The owner ended: a socket it still has goes with it. */
static void owner_ended(torii_held_t *h)
{
    csock_t *s = torii_container_of(h, csock_t, held);
    torii_log_debug("plugin socket %d closed with its %s", s->fd, s->owner.r ? "request" : "timer task");
    destroy(s);
}

/* A socket for owner, not connected yet. */
static csock_t *sock_new(const torii_waiter_t *owner, const torii_addr_t *addr)
{
    csock_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->id = slot_take();
    s->gen = ++gens[s->id];
    s->fd = -1;
    s->owner = *owner;
    s->addr = *addr;
    slots[s->id] = s;
    s->held.release = owner_ended;
    torii_waiter_hold(owner, &s->held);
    return s;
}

/* The socket behind a handle, for a call by its owner; NULL with *rc and
 * the message set. Drops what the previous result handed to Lua. */
static csock_t *lookup(int id, unsigned gen, int flags, int *rc)
{
    torii_waiter_t now;
    const char *why;
    csock_t *s;
    if (!worker || id < 0 || (uint32_t)id >= nslots || !(s = slots[id]) || s->gen != gen) {
        *rc = fail(TORII_FFI_ERROR, "closed (a socket ends with the request or timer callback that opened it)");
        return NULL;
    }
    if ((flags & WAITS) && (why = torii_waiter_current(&now)) != NULL) {
        *rc = fail(TORII_FFI_BAD_PHASE, why);
        return NULL;
    }
    if (!torii_waiter_running(&s->owner)) {
        *rc = fail(TORII_FFI_ERROR, "the socket belongs to another request or timer callback");
        return NULL;
    }
    if (s->op != OP_NONE && !(flags & ANY_STATE)) {
        *rc = fail(TORII_FFI_ERROR, "busy: another operation waits on the socket");
        return NULL;
    }
    torii_buf_consume(&s->in, s->handed);
    s->handed = 0;
    return s;
}

static bool valid_timeout(double ms)
{
    return ms > 0 && ms <= 86400000.0;
}

static void start_wait(csock_t *s, int op, torii_io_t *io, double timeout)
{
    s->op = op;
    s->done = false;
    torii_io_start(worker->loop, io);
    torii_waiter_deadline(&s->owner, timeout);
}

/* The waiting operation has its outcome: wake the owner to fetch it. */
static void complete(csock_t *s, int rc, const char *why)
{
    torii_io_stop(worker->loop, &s->rio);
    torii_io_stop(worker->loop, &s->wio);
    s->done = true;
    s->rc = rc;
    s->why = why;
    torii_waiter_wake(&s->owner);
}

/* ---- receiving ---- */

/* A line or delimited piece grew past what is allowed: the stream cannot
 * be followed any further. */
static int too_long(csock_t *s)
{
    s->rc = TORII_FFI_ERROR;
    s->why = "too large";
    s->res_len = s->res_used = 0;
    close_fd(s);
    torii_buf_release(&s->in);
    return 1;
}

/* Does `in` hold what the receive asks for? 1 yes (or a failure), 0 not yet. */
static int match(csock_t *s)
{
    const char *b = torii_buf_pos(&s->in), *hit;
    size_t len = torii_buf_len(&s->in), from;
    s->rc = TORII_FFI_OK;
    switch (s->mode) {
    case RECV_LINE:
        hit = len > s->scanned ? memchr(b + s->scanned, '\n', len - s->scanned) : NULL;
        if (!hit)
            break;
        s->res_used = (size_t)(hit - b) + 1;
        s->res_len = hit > b && hit[-1] == '\r' ? (size_t)(hit - b) - 1 : (size_t)(hit - b);
        return 1;
    case RECV_UNTIL:
        /* Search again from where a delimiter cut by the last read starts. */
        from = s->scanned >= s->want ? s->scanned - s->want + 1 : 0;
        hit = len > from ? memmem(b + from, len - from, s->delim, s->want) : NULL;
        if (!hit)
            break;
        s->res_len = (size_t)(hit - b);
        s->res_used = s->res_len + s->want;
        return 1;
    case RECV_COUNT:
    case RECV_ANY:
        if (len == 0 || (s->mode == RECV_COUNT && len < s->want))
            return 0;
        s->res_len = s->res_used = len < s->want ? len : s->want;
        return 1;
    case RECV_ALL: return len > MAX_RECV ? too_long(s) : 0;
    }
    s->scanned = len;
    return len > MAX_SCAN ? too_long(s) : 0;
}

/* The stream ended (or failed) before the receive was satisfied: "*a"
 * gets what there is; the others fail and hand it over as partial. */
static void at_end(csock_t *s)
{
    size_t len = torii_buf_len(&s->in);
    s->res_len = s->res_used = len;
    if (s->mode == RECV_ALL && s->eof && !s->read_err) {
        s->rc = TORII_FFI_OK;
        return;
    }
    s->rc = TORII_FFI_ERROR;
    s->why = s->read_err ? errtext(s->read_err) : "closed";
}

/* Read once. False when the socket has nothing now. */
static bool fill(csock_t *s)
{
    size_t len = torii_buf_len(&s->in);
    size_t want = s->mode == RECV_COUNT && s->want > len + READ_SIZE ? s->want - len : READ_SIZE;
    size_t room = torii_buf_space(&s->in, want, MAX_RECV + TORII_BUF_BLOCK, true);
    ssize_t n = torii_sock_read(s->fd, s->in.data + s->in.end, room);
    if (n == TORII_AGAIN)
        return false;
    if (n < 0) {
        s->read_err = errno;
        close_fd(s);
    } else if (n == 0) {
        s->eof = true;
    } else {
        s->in.end += (uint32_t)n;
    }
    return true;
}

/* Try to finish the receive: true when it has an outcome. */
static bool recv_step(csock_t *s)
{
    for (;;) {
        if (match(s))
            return true;
        if (s->fd < 0 || s->eof) {
            at_end(s);
            return true;
        }
        if (!fill(s))
            return false;
    }
}

static int recv_outcome(csock_t *s, const char **p, size_t *len)
{
    *p = s->res_len ? torii_buf_pos(&s->in) : "";
    *len = s->res_len;
    s->handed = s->res_used;
    if (s->rc != TORII_FFI_OK)
        torii_ffi_set_error(s->why);
    return s->rc;
}

static void on_read(torii_loop_t *loop, torii_io_t *io, int revents)
{
    csock_t *s = torii_container_of(io, csock_t, rio);
    (void)loop, (void)revents;
    if (s->op != OP_RECV) {
        torii_io_stop(worker->loop, io);
        return;
    }
    if (recv_step(s))
        complete(s, s->rc, s->why);
}

/* ---- sending and connecting ---- */

static int flush(csock_t *s)
{
    while (torii_buf_len(&s->out) > 0) {
        ssize_t n = torii_sock_write(s->fd, torii_buf_pos(&s->out), torii_buf_len(&s->out));
        if (n == TORII_AGAIN)
            return TORII_AGAIN;
        if (n < 0)
            return TORII_ERROR;
        torii_buf_consume(&s->out, (size_t)n);
    }
    return TORII_OK;
}

static void on_write(torii_loop_t *loop, torii_io_t *io, int revents)
{
    csock_t *s = torii_container_of(io, csock_t, wio);
    int err;
    (void)loop, (void)revents;
    switch (s->op) {
    case OP_CONNECT:
        if ((err = torii_sock_connect_error(s->fd)) != 0) {
            close_fd(s);
            complete(s, TORII_FFI_ERROR, errtext(err));
            return;
        }
        complete(s, TORII_FFI_OK, NULL);
        return;
    case OP_SEND:
        switch (flush(s)) {
        case TORII_AGAIN: return;
        case TORII_OK: complete(s, TORII_FFI_OK, NULL); return;
        default:
            err = errno;
            close_fd(s);
            complete(s, TORII_FFI_ERROR, errtext(err));
            return;
        }
    default: torii_io_stop(worker->loop, io); return;
    }
}

/* ---- the FFI ---- */

/* Open a connection to s->addr (an idle one from the pool if there is
 * one): TORII_FFI_OK when connected, TORII_FFI_AGAIN when in progress,
 * else an error with the message set. */
static int open_connection(csock_t *s)
{
    int in_progress = 0;
    int fd = torii_upool_take(worker, &s->addr, &s->uses);
    if (fd < 0 && (fd = torii_sock_connect(&s->addr, &in_progress)) < 0)
        return fail(TORII_FFI_ERROR, errtext(errno));
    s->fd = fd;
    torii_io_init(&s->rio, on_read, fd, TORII_EV_READ);
    torii_io_init(&s->wio, on_write, fd, TORII_EV_WRITE);
    return in_progress ? TORII_FFI_AGAIN : TORII_FFI_OK;
}

/* The host name's lookup is over: connect, within the same deadline. */
static void on_resolved(void *data, const torii_addr_t *addr, const char *why)
{
    csock_t *s = data;
    int rc;
    s->query = NULL;
    if (!addr) {
        complete(s, TORII_FFI_ERROR, why);
        return;
    }
    s->addr = *addr;
    rc = open_connection(s);
    if (rc == TORII_FFI_AGAIN) {
        s->op = OP_CONNECT;
        torii_io_start(worker->loop, &s->wio);
        return;
    }
    complete(s, rc, rc == TORII_FFI_OK ? NULL : torii_ffi_errmsg());
}

int torii_ffi_sock_connect(const char *host, size_t hlen, int port, double timeout, int *id, unsigned *gen)
{
    torii_waiter_t owner;
    torii_addr_t addr;
    const char *why;
    csock_t *s;
    int rc;
    if (!worker)
        return fail(TORII_FFI_ERROR, "sockets open only in a running worker");
    if ((why = torii_waiter_current(&owner)) != NULL)
        return fail(TORII_FFI_BAD_PHASE, why);
    if (port < 1 || port > 65535 || !valid_timeout(timeout))
        return fail(TORII_FFI_ERROR, "bad port or timeout");
    memset(&addr, 0, sizeof addr);
    if (!torii_addr_literal(host, hlen, (uint16_t)port, &addr)) {
        /* A name: looked up on other threads, the connect follows. */
        s = sock_new(&owner, &addr);
        s->query = torii_resolve_start(worker->loop, host, hlen, (uint16_t)port, on_resolved, s, &why);
        if (!s->query) {
            destroy(s);
            return fail(TORII_FFI_ERROR, why);
        }
        rc = TORII_FFI_AGAIN;
        s->op = OP_RESOLVE;
        s->done = false;
        torii_waiter_deadline(&s->owner, timeout);
    } else {
        s = sock_new(&owner, &addr);
        if ((rc = open_connection(s)) == TORII_FFI_ERROR) {
            why = torii_ffi_errmsg();
            destroy(s);
            return fail(TORII_FFI_ERROR, why);
        }
        if (rc == TORII_FFI_AGAIN)
            start_wait(s, OP_CONNECT, &s->wio, timeout);
    }
    *id = (int)s->id;
    *gen = s->gen;
    return rc;
}

int torii_ffi_sock_send(int id, unsigned gen, const char *p, size_t n, double timeout)
{
    int rc, err;
    csock_t *s = lookup(id, gen, WAITS, &rc);
    if (!s)
        return rc;
    if (s->fd < 0)
        return fail(TORII_FFI_ERROR, "closed");
    if (n > MAX_SEND || !valid_timeout(timeout))
        return fail(TORII_FFI_ERROR, "bad size or timeout");
    while (n > 0) { /* most sends fit the socket's buffer: no copy, no wait */
        ssize_t w = torii_sock_write(s->fd, p, n);
        if (w == TORII_AGAIN)
            break;
        if (w < 0) {
            err = errno;
            close_fd(s);
            return fail(TORII_FFI_ERROR, errtext(err));
        }
        p += w;
        n -= (size_t)w;
    }
    if (n == 0)
        return TORII_FFI_OK;
    torii_buf_append(&s->out, p, n);
    start_wait(s, OP_SEND, &s->wio, timeout);
    return TORII_FFI_AGAIN;
}

int torii_ffi_sock_recv(int id, unsigned gen, int mode, size_t n, const char *delim, double timeout, const char **p,
                        size_t *len)
{
    int rc;
    csock_t *s;
    *p = "";
    *len = 0;
    if (!(s = lookup(id, gen, WAITS, &rc)))
        return rc;
    if (mode < RECV_LINE || mode > RECV_UNTIL || !valid_timeout(timeout) || n > MAX_RECV ||
        ((mode == RECV_ANY || mode == RECV_UNTIL) && n == 0) || (mode == RECV_UNTIL && n > MAX_SCAN))
        return fail(TORII_FFI_ERROR, "bad receive pattern, size or timeout");
    if (mode == RECV_COUNT && n == 0)
        return TORII_FFI_OK;
    s->mode = mode;
    s->want = n;
    s->scanned = 0;
    if (mode == RECV_UNTIL) {
        char *d = realloc(s->delim, n);
        if (!d)
            abort();
        memcpy(d, delim, n);
        s->delim = d;
    }
    if (recv_step(s))
        return recv_outcome(s, p, len);
    start_wait(s, OP_RECV, &s->rio, timeout);
    return TORII_FFI_AGAIN;
}

/* The deadline came before the outcome. A receive keeps the socket (what
 * arrived is handed over as partial); a connect or send leaves it in no
 * known state, so it is closed. */
static int timed_out(csock_t *s, int op, const char **p, size_t *len)
{
    torii_io_stop(worker->loop, &s->rio);
    torii_io_stop(worker->loop, &s->wio);
    if (s->query) {
        torii_resolve_cancel(s->query);
        s->query = NULL;
    }
    if (op != OP_RECV) {
        close_fd(s);
        return fail(TORII_FFI_ERROR, "timeout");
    }
    s->res_len = s->res_used = torii_buf_len(&s->in);
    s->rc = TORII_FFI_ERROR;
    s->why = "timeout";
    return recv_outcome(s, p, len);
}

int torii_ffi_sock_result(int id, unsigned gen, const char **p, size_t *len)
{
    int rc, op;
    csock_t *s;
    *p = "";
    *len = 0;
    if (!(s = lookup(id, gen, ANY_STATE, &rc)))
        return rc;
    op = s->op;
    if (op == OP_NONE)
        return fail(TORII_FFI_ERROR, "no operation waits on the socket");
    s->op = OP_NONE;
    if (!s->done)
        return timed_out(s, op, p, len);
    s->done = false;
    if (op == OP_RECV)
        return recv_outcome(s, p, len);
    if (s->rc != TORII_FFI_OK)
        torii_ffi_set_error(s->why);
    return s->rc;
}

int torii_ffi_sock_keepalive(int id, unsigned gen, double idle_ms, int pool_size)
{
    const torii_proxy_conf_t *pc;
    const char *why = NULL;
    csock_t *s;
    int rc, fd;
    if (!(s = lookup(id, gen, 0, &rc)))
        return rc;
    /* Only a connection at a message boundary may serve someone else. */
    if (s->fd < 0 || s->eof)
        why = "closed";
    else if (torii_buf_len(&s->in) > 0)
        why = "unread data in the buffer";
    if (why) {
        destroy(s);
        return fail(TORII_FFI_ERROR, why);
    }
    pc = &worker->conf->proxy;
    torii_io_stop(worker->loop, &s->rio);
    torii_io_stop(worker->loop, &s->wio);
    fd = s->fd;
    s->fd = -1; /* the pool has it now */
    torii_upool_put(worker, &s->addr, fd, s->uses + 1, (idle_ms > 0 ? idle_ms : pc->pool_idle_timeout_ms) / 1000.0,
                    pool_size > 0 ? (uint32_t)pool_size : pc->pool_size);
    destroy(s);
    return TORII_FFI_OK;
}

int torii_ffi_sock_close(int id, unsigned gen)
{
    int rc;
    csock_t *s = lookup(id, gen, ANY_STATE, &rc);
    if (!s)
        return rc;
    destroy(s);
    return TORII_FFI_OK;
}

int torii_ffi_sock_reused(int id, unsigned gen)
{
    int rc;
    csock_t *s = lookup(id, gen, ANY_STATE, &rc);
    return s ? (int)s->uses : rc;
}

void torii_cosocket_attach(torii_worker_t *w)
{
    worker = w;
}

void torii_cosocket_detach(void)
{
    if (!worker)
        return;
    for (uint32_t i = 0; i < nslots; i++)
        if (slots[i])
            destroy(slots[i]);
    torii_resolve_shutdown();
    free(slots);
    free(gens);
    free(free_ids);
    slots = NULL;
    gens = free_ids = NULL;
    nslots = nfree = cap = 0;
    worker = NULL;
}
