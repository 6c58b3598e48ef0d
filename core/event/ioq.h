/*
 * ioq.h — a worker's socket reads and sends, gathered and done together.
 *
 * A proxied request costs four socket calls (read the request, send it
 * upstream, read the answer, send it back). Done one by one, each is a
 * system call, and on a busy worker the calls' entry and exit cost as much
 * as the work itself. So the hot paths do not call the socket: they queue
 * an operation, and once per loop pass, before the loop waits again,
 * torii_ioq_run performs everything queued. With io_uring, a round of
 * operations is one system call; without it (old kernel, a seccomp policy,
 * `io_uring: false`), the same operations are plain calls. Either way the
 * operations are non-blocking: each finishes during the submission, with
 * bytes, EOF, or "would block", exactly as read() and send() would say.
 *
 * An operation is embedded in its connection and asks for its buffer only
 * when the round starts (prep), so the buffer may move while it waits; its
 * result goes to done() once every operation of the round is finished.
 * prep must have no effect beyond its own connection's buffers: the
 * round's buffers are in the kernel's hands until the last one is done.
 * done() may queue more operations (they make the next round) and cancel
 * any operation, its own connection's or another's.
 */
#ifndef TORII_IOQ_H
#define TORII_IOQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/list.h"

typedef struct torii_ioq_s torii_ioq_t;
typedef struct torii_ioop_s torii_ioop_t;

typedef enum { TORII_IOOP_READ, TORII_IOOP_SEND } torii_ioop_kind_t;

/* What prep decided. */
typedef enum {
    TORII_IOOP_GO,   /* perform it on *buf, *len */
    TORII_IOOP_DROP, /* nothing to do: done is not called */
    TORII_IOOP_SYNC, /* not for this path: done gets TORII_IOOP_SKIPPED */
} torii_ioop_prep_t;

/* done's result when prep said SYNC: the owner handles the event itself. */
#define TORII_IOOP_SKIPPED ((ssize_t)-10000) /* below every -errno */

/* res: bytes (0 from a read is EOF), TORII_AGAIN, TORII_ERROR (errno set)
 * or TORII_IOOP_SKIPPED. */
typedef torii_ioop_prep_t (*torii_ioop_prep_fn)(torii_ioop_t *op, void **buf, size_t *len);
typedef void (*torii_ioop_done_fn)(torii_ioop_t *op, ssize_t res);

struct torii_ioop_s {
    torii_list_t link; /* queued or awaiting done; self-linked otherwise */
    torii_ioop_prep_fn prep;
    torii_ioop_done_fn done;
    ssize_t res;
    size_t len; /* what prep gave, for telling a short send from a full one */
    int fd;
    uint8_t kind; /* torii_ioop_kind_t */
};

typedef struct {
    uint64_t ops;     /* operations performed */
    uint64_t rounds;  /* rounds with at least one operation */
    uint64_t enters;  /* io_uring submissions (system calls) */
    uint64_t direct;  /* operations done with a plain call */
    uint64_t batched; /* operations done through io_uring */
} torii_ioq_stats_t;

/* A queue without a ring: plain calls until torii_ioq_set_uring (NULL on
 * out of memory). */
torii_ioq_t *torii_ioq_new(void);
void torii_ioq_free(torii_ioq_t *q);
bool torii_ioq_has_uring(const torii_ioq_t *q);

/* Take an io_uring if the kernel grants one, or give it up, for the passes
 * to come. `why` says why there is no ring when one was wanted. */
void torii_ioq_set_uring(torii_ioq_t *q, bool use_uring, const char **why);

void torii_ioop_init(torii_ioop_t *op, torii_ioop_kind_t kind, torii_ioop_prep_fn prep, torii_ioop_done_fn done);

/* Queue op on fd for the next round; a queued op stays queued once. */
void torii_ioq_add(torii_ioq_t *q, torii_ioop_t *op, int fd);

static inline bool torii_ioop_pending(const torii_ioop_t *op)
{
    return op->link.next != &op->link;
}

/* Forget op: queued, it is not performed; performed, its done is not
 * called. Safe on an op that is neither. */
static inline void torii_ioop_cancel(torii_ioop_t *op)
{
    torii_list_remove(&op->link);
}

/* A connection's send of its output buffer `out`: prep gives what `out`
 * holds (SYNC when it is empty), and torii_ioq_sent, called by done with
 * the result, drops from `out` what went and says what the owner does. */
torii_ioop_prep_t torii_ioop_prep_out(const torii_buf_t *out, void **buf, size_t *len);

typedef enum {
    TORII_SENT_ALL,    /* `out` is empty */
    TORII_SENT_WAIT,   /* the socket is full: wait for a write event */
    TORII_SENT_QUEUED, /* more came meanwhile: the op is queued again */
    TORII_SENT_FLUSH,  /* prep said SYNC: the owner sends with plain calls */
    TORII_SENT_ERROR,  /* errno set */
} torii_sent_t;

torii_sent_t torii_ioq_sent(torii_ioq_t *q, torii_ioop_t *op, torii_buf_t *out, ssize_t res);

/* Perform what is queued, round after round, until nothing is (bounded:
 * returns false if work is still queued after the last round). */
bool torii_ioq_run(torii_ioq_t *q);

bool torii_ioq_idle(const torii_ioq_t *q);
const torii_ioq_stats_t *torii_ioq_stats(const torii_ioq_t *q);

#endif
