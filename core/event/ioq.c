/*
 * ioq.c — rounds of queued socket operations, through io_uring when the
 * kernel gives one (see ioq.h for the contract).
 *
 * The ring is used as a way to make many non-blocking calls in one system
 * call, not as an asynchronous engine: every operation carries
 * MSG_DONTWAIT, so the kernel finishes it while it is being submitted
 * (with EAGAIN where read() or send() would say so) and never keeps a
 * buffer past the submission. A round with a single operation makes the
 * plain call, which is cheaper than a ring submission for one.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/common.h"
#include "base/log.h"
#include "event/ioq.h"

#define RING_ENTRIES 256 /* operations per submission; a round may take several */
#define MAX_ROUNDS   64  /* rounds per run; more waits for the next loop pass */

struct torii_ioq_s {
    torii_list_t queue;
    struct io_uring ring;
    bool have_ring;
    torii_ioq_stats_t st;
};

static bool ring_open(torii_ioq_t *q, const char **why)
{
    /* SUBMIT_ALL (5.18): one bad operation does not stop the rest of the
     * submission; COOP_TASKRUN and SINGLE_ISSUER (5.19, 6.0) spare the
     * kernel work a single-threaded user does not need. Older kernels
     * refuse the flags: try again without them. */
    unsigned flags[] = {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER, 0};
    int rc = -EINVAL;
    for (size_t i = 0; i < TORII_ARRAY_LEN(flags) && rc == -EINVAL; i++)
        rc = io_uring_queue_init(RING_ENTRIES, &q->ring, flags[i]);
    if (rc < 0) {
        *why = rc == -ENOSYS  ? "the kernel has no io_uring"
               : rc == -EPERM ? "io_uring is not permitted here (sysctl kernel.io_uring_disabled, or a seccomp policy)"
                              : strerror(-rc);
        return false;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&q->ring);
    bool ok =
        probe && io_uring_opcode_supported(probe, IORING_OP_SEND) && io_uring_opcode_supported(probe, IORING_OP_RECV);
    if (probe)
        io_uring_free_probe(probe);
    if (!ok) {
        io_uring_queue_exit(&q->ring);
        *why = "the kernel's io_uring has no send and recv operations";
        return false;
    }
    q->have_ring = true;
    return true;
}

static void ring_close(torii_ioq_t *q)
{
    if (q->have_ring) {
        io_uring_queue_exit(&q->ring);
        q->have_ring = false;
    }
}

torii_ioq_t *torii_ioq_new(void)
{
    torii_ioq_t *q = calloc(1, sizeof *q);
    if (q)
        torii_list_init(&q->queue);
    return q;
}

void torii_ioq_free(torii_ioq_t *q)
{
    if (!q)
        return;
    while (!torii_list_empty(&q->queue))
        torii_list_remove(q->queue.next);
    ring_close(q);
    free(q);
}

bool torii_ioq_has_uring(const torii_ioq_t *q)
{
    return q->have_ring;
}

void torii_ioq_set_uring(torii_ioq_t *q, bool use_uring, const char **why)
{
    *why = NULL;
    if (use_uring && !q->have_ring)
        ring_open(q, why);
    else if (!use_uring)
        ring_close(q);
}

void torii_ioop_init(torii_ioop_t *op, torii_ioop_kind_t kind, torii_ioop_prep_fn prep, torii_ioop_done_fn done)
{
    torii_list_init(&op->link);
    op->prep = prep;
    op->done = done;
    op->kind = (uint8_t)kind;
    op->fd = -1;
    op->res = 0;
    op->len = 0;
}

static void append(torii_list_t *l, torii_ioop_t *op)
{
    op->link.prev = l->prev;
    op->link.next = l;
    l->prev->next = &op->link;
    l->prev = &op->link;
}

static torii_ioop_t *pop(torii_list_t *l)
{
    torii_ioop_t *op = torii_list_entry(l->next, torii_ioop_t, link);
    torii_list_remove(&op->link);
    return op;
}

void torii_ioq_add(torii_ioq_t *q, torii_ioop_t *op, int fd)
{
    if (torii_ioop_pending(op))
        return;
    op->fd = fd;
    append(&q->queue, op); /* operations run in the order they were asked for */
}

bool torii_ioq_idle(const torii_ioq_t *q)
{
    return torii_list_empty(&q->queue);
}

const torii_ioq_stats_t *torii_ioq_stats(const torii_ioq_t *q)
{
    return &q->st;
}

torii_ioop_prep_t torii_ioop_prep_out(const torii_buf_t *out, void **buf, size_t *len)
{
    if (torii_buf_len(out) == 0)
        return TORII_IOOP_SYNC;
    *buf = (void *)torii_buf_pos(out);
    *len = torii_buf_len(out);
    return TORII_IOOP_GO;
}

torii_sent_t torii_ioq_sent(torii_ioq_t *q, torii_ioop_t *op, torii_buf_t *out, ssize_t res)
{
    if (res == TORII_IOOP_SKIPPED)
        return TORII_SENT_FLUSH;
    if (res == TORII_AGAIN)
        return TORII_SENT_WAIT;
    if (res < 0)
        return TORII_SENT_ERROR;
    torii_buf_consume(out, (size_t)res);
    if (torii_buf_len(out) == 0)
        return TORII_SENT_ALL;
    if ((size_t)res < op->len)
        return TORII_SENT_WAIT; /* a short send: the socket is full */
    torii_ioq_add(q, op, op->fd);
    return TORII_SENT_QUEUED;
}

/* Move every queued op to `to` (empty), leaving the queue empty. */
static void take_queue(torii_ioq_t *q, torii_list_t *to)
{
    if (torii_list_empty(&q->queue))
        return;
    to->next = q->queue.next;
    to->prev = q->queue.prev;
    to->next->prev = to->prev->next = to;
    torii_list_init(&q->queue);
}

/* A raw result (bytes or -errno) in the sock.h convention, errno set. */
static ssize_t result(ssize_t raw)
{
    if (raw >= 0 || raw == TORII_IOOP_SKIPPED)
        return raw;
    if (raw == -EAGAIN || raw == -EWOULDBLOCK || raw == -EINTR || raw == -ECANCELED)
        return TORII_AGAIN; /* cancelled: as if it would have blocked */
    errno = (int)-raw;
    return TORII_ERROR;
}

static ssize_t call(const torii_ioop_t *op, void *buf, size_t len)
{
    ssize_t r;
    do {
        r = op->kind == TORII_IOOP_READ ? recv(op->fd, buf, len, 0) : send(op->fd, buf, len, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r >= 0 ? r : -errno;
}

/* Call done for each op of `l` in order; a done may cancel any of the rest. */
static void finish(torii_list_t *l)
{
    while (!torii_list_empty(l)) {
        torii_ioop_t *op = pop(l);
        op->done(op, result(op->res));
    }
}

/* prep every op of `in` into `out` (dropped ones left out); with a ring,
 * into SQEs, at most RING_ENTRIES of them. Returns the SQEs made. */
static unsigned prepare(torii_ioq_t *q, torii_list_t *in, torii_list_t *out, bool ring)
{
    unsigned sqes = 0;
    while (!torii_list_empty(in) && sqes < RING_ENTRIES) {
        torii_ioop_t *op = pop(in);
        void *buf = NULL;
        size_t len = 0;
        switch (op->prep(op, &buf, &len)) {
        case TORII_IOOP_DROP: continue;
        case TORII_IOOP_SYNC: op->res = TORII_IOOP_SKIPPED; break;
        case TORII_IOOP_GO:
            op->len = len;
            q->st.ops++;
            if (!ring) {
                q->st.direct++;
                op->res = call(op, buf, len);
                break;
            }
            struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
            if (op->kind == TORII_IOOP_READ)
                io_uring_prep_recv(sqe, op->fd, buf, len, MSG_DONTWAIT);
            else
                io_uring_prep_send(sqe, op->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            io_uring_sqe_set_data(sqe, op);
            op->res = -EINPROGRESS;
            sqes++;
            break;
        }
        append(out, op);
    }
    return sqes;
}

/* Collect the CQEs there are; returns how many were operations' (a
 * cancel request's own CQE carries no op). */
static unsigned reap(torii_ioq_t *q)
{
    struct io_uring_cqe *cqe;
    unsigned head, all = 0, ops = 0;
    io_uring_for_each_cqe(&q->ring, head, cqe)
    {
        torii_ioop_t *op = io_uring_cqe_get_data(cqe);
        all++;
        if (op) {
            op->res = cqe->res;
            ops++;
        }
    }
    io_uring_cq_advance(&q->ring, all);
    return ops;
}

/* Submit the round's `n` SQEs and collect every result. False when the
 * ring misbehaved (a submission refused, or a kernel that kept an
 * operation past its submission): the caller gives the ring up, and the
 * ops still -EINPROGRESS were never submitted. */
static bool submit(torii_ioq_t *q, torii_list_t *ops, unsigned n, const char **why)
{
    unsigned submitted = 0, got;
    while (submitted < n) {
        int rc = io_uring_submit(&q->ring);
        q->st.enters++;
        if (rc == -EINTR)
            continue;
        if (rc <= 0) {
            *why = rc < 0 ? strerror(-rc) : "the kernel took no operation";
            break;
        }
        submitted += (unsigned)rc;
    }
    q->st.batched += submitted;
    got = reap(q);
    if (got < submitted) {
        /* MSG_DONTWAIT operations finish inside the submission; one that
         * did not holds a buffer: cancel it (unless entries that were not
         * submitted would go with the cancels) and wait until the kernel
         * lets go of every one. */
        *why = "the kernel kept operations past their submission";
        if (submitted == n) {
            for (torii_list_t *l = ops->next; l != ops; l = l->next) {
                torii_ioop_t *op = torii_list_entry(l, torii_ioop_t, link);
                struct io_uring_sqe *sqe = op->res == -EINPROGRESS ? io_uring_get_sqe(&q->ring) : NULL;
                if (sqe) {
                    io_uring_prep_cancel(sqe, op, 0);
                    io_uring_sqe_set_data(sqe, NULL);
                }
            }
            io_uring_submit(&q->ring);
        }
        while (got < submitted) {
            struct io_uring_cqe *cqe;
            int rc = io_uring_wait_cqe(&q->ring, &cqe);
            if (rc < 0 && rc != -EINTR)
                abort(); /* the kernel still owns buffers we would free */
            got += reap(q);
        }
    }
    return *why == NULL;
}

/* After a ring failure: give the ring up (its unsubmitted entries with it)
 * and make the calls that were not submitted. */
static void ring_failed(torii_ioq_t *q, torii_list_t *ops, const char *why)
{
    ring_close(q);
    torii_log_warn("io_uring: %s; plain socket calls from now on", why);
    for (torii_list_t *l = ops->next; l != ops; l = l->next) {
        torii_ioop_t *op = torii_list_entry(l, torii_ioop_t, link);
        void *buf = NULL;
        size_t len = 0;
        /* prep already gave the buffer; asked again, it says the same. */
        if (op->res == -EINPROGRESS && op->prep(op, &buf, &len) == TORII_IOOP_GO) {
            op->res = call(op, buf, len);
            q->st.direct++;
        } else if (op->res == -EINPROGRESS)
            op->res = -EAGAIN;
    }
}

static void round_once(torii_ioq_t *q)
{
    torii_list_t todo, done;
    torii_list_init(&todo);
    torii_list_init(&done);
    take_queue(q, &todo);
    bool ring = q->have_ring && todo.next != todo.prev; /* two ops or more */
    q->st.rounds++;
    while (!torii_list_empty(&todo)) {
        const char *why = NULL;
        unsigned sqes = prepare(q, &todo, &done, ring);
        if (sqes > 0 && !submit(q, &done, sqes, &why)) {
            ring_failed(q, &done, why);
            ring = false;
        }
        finish(&done);
    }
}

bool torii_ioq_run(torii_ioq_t *q)
{
    for (int i = 0; i < MAX_ROUNDS && !torii_list_empty(&q->queue); i++)
        round_once(q);
    return torii_list_empty(&q->queue);
}
