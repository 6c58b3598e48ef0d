/* test_ioq.c — rounds of queued socket operations, through io_uring and
 * with plain calls: results as read() and send() give them, the order of
 * done calls, cancelling, prep's answers, follow-up rounds, the bound. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/common.h"
#include "event/ioq.h"

#define NPAIRS 300 /* more than one submission's worth (256) */

typedef struct conn_s {
    torii_ioop_t op;
    int fd, peer;
    char buf[64];
    const char *msg; /* what a send sends */
    ssize_t res;     /* what done got; -999 until then */
    int order;       /* when done was called */
    int err;         /* errno, when done got TORII_ERROR */
    torii_ioop_prep_t answer;
    torii_ioop_t *cancel_in_done; /* done cancels this op */
    torii_ioq_t *requeue;         /* done queues the op again */
} conn_t;

static int done_calls;

static torii_ioop_prep_t prep(torii_ioop_t *op, void **buf, size_t *len)
{
    conn_t *c = torii_container_of(op, conn_t, op);
    if (op->kind == TORII_IOOP_SEND) {
        *buf = (void *)c->msg;
        *len = strlen(c->msg);
    } else {
        *buf = c->buf;
        *len = sizeof c->buf - 1;
    }
    return c->answer;
}

static void done(torii_ioop_t *op, ssize_t res)
{
    conn_t *c = torii_container_of(op, conn_t, op);
    c->res = res;
    c->err = res == TORII_ERROR ? errno : 0;
    c->order = ++done_calls;
    if (res > 0 && op->kind == TORII_IOOP_READ)
        c->buf[res] = '\0';
    if (c->cancel_in_done)
        torii_ioop_cancel(c->cancel_in_done);
    if (c->requeue)
        torii_ioq_add(c->requeue, op, c->fd);
}

static void pair(conn_t *c, torii_ioop_kind_t kind)
{
    int sv[2];
    memset(c, 0, sizeof *c);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    c->fd = sv[0];
    c->peer = sv[1];
    c->res = -999;
    c->answer = TORII_IOOP_GO;
    torii_ioop_init(&c->op, kind, prep, done);
}

static void unpair(conn_t *c)
{
    close(c->fd);
    if (c->peer >= 0)
        close(c->peer);
}

static torii_ioq_t *queue(bool ring)
{
    const char *why = NULL;
    torii_ioq_t *q = torii_ioq_new();
    CHECK(!torii_ioq_has_uring(q)); /* none until asked for */
    torii_ioq_set_uring(q, ring, &why);
    if (ring && !torii_ioq_has_uring(q))
        printf("  note: no io_uring here (%s): the ring cases ran with plain calls\n", why ? why : "?");
    return q;
}

static void sends_and_reads(bool ring)
{
    static conn_t c[NPAIRS];
    static char want[NPAIRS][32];
    torii_ioq_t *q = queue(ring);
    done_calls = 0;
    for (int i = 0; i < NPAIRS; i++) {
        pair(&c[i], TORII_IOOP_SEND);
        snprintf(want[i], sizeof want[i], "message %d", i);
        c[i].msg = want[i];
        torii_ioq_add(q, &c[i].op, c[i].fd);
        torii_ioq_add(q, &c[i].op, c[i].fd); /* queued once */
    }
    CHECK(!torii_ioq_idle(q));
    CHECK(torii_ioq_run(q));
    CHECK(torii_ioq_idle(q));
    for (int i = 0; i < NPAIRS; i++) {
        char got[64] = {0};
        CHECK_INT(c[i].res, strlen(want[i]));
        CHECK_INT(c[i].order, i + 1); /* in the order asked */
        CHECK(!torii_ioop_pending(&c[i].op));
        CHECK_INT(read(c[i].peer, got, sizeof got), strlen(want[i]));
        CHECK_STR(got, want[i]);
    }
    /* Now the other way: reads of what the peers send. */
    for (int i = 0; i < NPAIRS; i++) {
        torii_ioop_init(&c[i].op, TORII_IOOP_READ, prep, done);
        c[i].res = -999;
        CHECK_INT(write(c[i].peer, want[i], strlen(want[i])), strlen(want[i]));
        torii_ioq_add(q, &c[i].op, c[i].fd);
    }
    CHECK(torii_ioq_run(q));
    for (int i = 0; i < NPAIRS; i++) {
        CHECK_INT(c[i].res, strlen(want[i]));
        CHECK_STR(c[i].buf, want[i]);
        unpair(&c[i]);
    }
    const torii_ioq_stats_t *st = torii_ioq_stats(q);
    CHECK_INT(st->ops, 2 * NPAIRS);
    CHECK_INT(st->rounds, 2);
    if (torii_ioq_has_uring(q)) {
        CHECK_INT(st->batched, 2 * NPAIRS);
        CHECK_INT(st->direct, 0);
        CHECK(st->enters >= 4 && st->enters <= 6); /* 2 rounds of 256 + 44 */
    } else {
        CHECK_INT(st->direct, 2 * NPAIRS);
        CHECK_INT(st->enters, 0);
    }
    torii_ioq_free(q);
}

TEST(sends_and_reads_with_ring)
{
    sends_and_reads(true);
}

TEST(sends_and_reads_with_plain_calls)
{
    sends_and_reads(false);
}

/* Would block, EOF, a reset peer, and a full socket, as read()/send() say. */
static void edge_results(bool ring)
{
    conn_t empty, eof, gone, full;
    static char big[1 << 20];
    torii_ioq_t *q = queue(ring);
    pair(&empty, TORII_IOOP_READ);
    pair(&eof, TORII_IOOP_READ);
    close(eof.peer);
    eof.peer = -1;
    pair(&gone, TORII_IOOP_SEND);
    gone.msg = "to nobody";
    close(gone.peer);
    gone.peer = -1;
    pair(&full, TORII_IOOP_SEND);
    memset(big, 'x', sizeof big - 1);
    full.msg = big;
    torii_ioq_add(q, &empty.op, empty.fd);
    torii_ioq_add(q, &eof.op, eof.fd);
    torii_ioq_add(q, &gone.op, gone.fd);
    torii_ioq_add(q, &full.op, full.fd);
    CHECK(torii_ioq_run(q));
    CHECK_INT(empty.res, TORII_AGAIN);
    CHECK_INT(eof.res, 0);
    CHECK_INT(gone.res, TORII_ERROR);
    CHECK_INT(gone.err == EPIPE || gone.err == ECONNRESET, 1); /* no SIGPIPE either: we are alive */
    CHECK(full.res > 0 && full.res < (ssize_t)strlen(big));    /* a short send, never a wait */
    /* Once the socket is full: "would block". */
    full.res = -999;
    torii_ioq_add(q, &full.op, full.fd);
    torii_ioq_add(q, &empty.op, empty.fd);
    CHECK(torii_ioq_run(q));
    CHECK_INT(full.res, TORII_AGAIN);
    unpair(&empty);
    unpair(&eof);
    unpair(&gone);
    unpair(&full);
    torii_ioq_free(q);
}

TEST(edge_results_with_ring)
{
    edge_results(true);
}

TEST(edge_results_with_plain_calls)
{
    edge_results(false);
}

/* A done may cancel ops of its round (not yet done) and queued ones; a
 * cancelled op is neither performed nor told. */
static void cancelling(bool ring)
{
    conn_t a, b, later;
    torii_ioq_t *q = queue(ring);
    done_calls = 0;
    pair(&a, TORII_IOOP_READ);
    pair(&b, TORII_IOOP_READ);
    pair(&later, TORII_IOOP_READ);
    CHECK_INT(write(a.peer, "a", 1), 1);
    CHECK_INT(write(b.peer, "b", 1), 1);
    CHECK_INT(write(later.peer, "l", 1), 1);
    a.cancel_in_done = &b.op;
    torii_ioq_add(q, &a.op, a.fd);
    torii_ioq_add(q, &b.op, b.fd);
    torii_ioq_add(q, &later.op, later.fd);
    torii_ioop_cancel(&later.op); /* before the round */
    torii_ioop_cancel(&later.op); /* twice is harmless */
    CHECK(torii_ioq_run(q));
    CHECK_INT(a.res, 1);
    CHECK_INT(b.res, -999);
    CHECK(!torii_ioop_pending(&b.op));
    CHECK_INT(later.res, -999);
    CHECK_INT(done_calls, 1);
    char x;
    CHECK_INT(read(later.fd, &x, 1), 1); /* its byte was left unread */
    unpair(&a);
    unpair(&b);
    unpair(&later);
    torii_ioq_free(q);
}

TEST(cancelling_with_ring)
{
    cancelling(true);
}

TEST(cancelling_with_plain_calls)
{
    cancelling(false);
}

/* prep's DROP and SYNC; a done that queues makes a second round. */
static void prep_answers_and_rounds(bool ring)
{
    conn_t drop, sync, go, again;
    torii_ioq_t *q = queue(ring);
    pair(&drop, TORII_IOOP_READ);
    pair(&sync, TORII_IOOP_READ);
    pair(&go, TORII_IOOP_READ);
    pair(&again, TORII_IOOP_SEND);
    drop.answer = TORII_IOOP_DROP;
    sync.answer = TORII_IOOP_SYNC;
    again.msg = "x";
    go.requeue = q; /* once: cleared by the test below after the first done */
    CHECK_INT(write(go.peer, "go", 2), 2);
    torii_ioq_add(q, &drop.op, drop.fd);
    torii_ioq_add(q, &sync.op, sync.fd);
    torii_ioq_add(q, &go.op, go.fd);
    torii_ioq_add(q, &again.op, again.fd);
    /* go's done re-queues it for ever: the run stops at its bound. */
    CHECK(!torii_ioq_run(q));
    CHECK(!torii_ioq_idle(q));
    CHECK_INT(drop.res, -999);
    CHECK_INT(sync.res, TORII_IOOP_SKIPPED);
    CHECK_INT(go.res, TORII_AGAIN); /* its later rounds found nothing */
    CHECK_INT(again.res, 1);
    CHECK_INT(torii_ioq_stats(q)->rounds, 64);
    go.requeue = NULL;
    CHECK(torii_ioq_run(q));
    CHECK(torii_ioq_idle(q));
    /* A round of one op makes the plain call, ring or not. */
    uint64_t direct = torii_ioq_stats(q)->direct;
    CHECK_INT(write(go.peer, "1", 1), 1);
    torii_ioq_add(q, &go.op, go.fd);
    CHECK(torii_ioq_run(q));
    CHECK_INT(go.res, 1);
    CHECK_INT(torii_ioq_stats(q)->direct, direct + 1);
    unpair(&drop);
    unpair(&sync);
    unpair(&go);
    unpair(&again);
    torii_ioq_free(q);
}

TEST(prep_answers_and_rounds_with_ring)
{
    prep_answers_and_rounds(true);
}

TEST(prep_answers_and_rounds_with_plain_calls)
{
    prep_answers_and_rounds(false);
}

/* A round of two reads, a byte each. */
static void read_one_byte_each(torii_ioq_t *q, conn_t *a, conn_t *b)
{
    CHECK_INT(write(a->peer, "a", 1), 1);
    CHECK_INT(write(b->peer, "b", 1), 1);
    torii_ioq_add(q, &a->op, a->fd);
    torii_ioq_add(q, &b->op, b->fd);
    CHECK(torii_ioq_run(q));
    CHECK_INT(a->res + b->res, 2);
}

TEST(ring_given_up_and_taken_again)
{
    const char *why;
    conn_t a, b;
    torii_ioq_t *q = queue(true);
    bool had = torii_ioq_has_uring(q);
    torii_ioq_set_uring(q, false, &why);
    CHECK(!torii_ioq_has_uring(q));
    CHECK(why == NULL);
    pair(&a, TORII_IOOP_READ);
    pair(&b, TORII_IOOP_READ);
    read_one_byte_each(q, &a, &b);
    CHECK_INT(torii_ioq_stats(q)->direct, 2);
    torii_ioq_set_uring(q, true, &why);
    CHECK(torii_ioq_has_uring(q) == had);
    read_one_byte_each(q, &a, &b);
    CHECK_INT(torii_ioq_stats(q)->batched, had ? 2 : 0);
    unpair(&a);
    unpair(&b);
    torii_ioq_free(q);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a send to a closed peer must not raise it */
    RUN(sends_and_reads_with_ring);
    RUN(sends_and_reads_with_plain_calls);
    RUN(edge_results_with_ring);
    RUN(edge_results_with_plain_calls);
    RUN(cancelling_with_ring);
    RUN(cancelling_with_plain_calls);
    RUN(prep_answers_and_rounds_with_ring);
    RUN(prep_answers_and_rounds_with_plain_calls);
    RUN(ring_given_up_and_taken_again);
    return unit_report("test_ioq");
}
