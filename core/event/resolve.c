/* resolve.c — non-blocking host name lookups (see resolve.h). */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/list.h"
#include "base/log.h"
#include "event/resolve.h"

#define MAX_INFLIGHT 256   /* lookups at once, per worker */
#define POLL_SECONDS 0.005 /* how often outcomes are looked for */
#define EXIT_WAIT    5     /* seconds a stopping worker waits for running lookups */

struct torii_resolve_s {
    struct gaicb gcb; /* first: glibc holds a pointer to it */
    struct addrinfo hints;
    char host[256];
    char port[8];
    uint16_t portnum;
    torii_resolve_cb cb; /* NULL once cancelled */
    void *data;
    torii_list_t link;
};

static torii_loop_t *loop;
static torii_timer_t poll_timer;
static torii_list_t inflight = {&inflight, &inflight};
static unsigned ninflight;

static void on_poll(torii_loop_t *l, torii_timer_t *t, int revents);

static const char *why_not(int rc)
{
    switch (rc) {
    case EAI_NONAME:
    case EAI_NODATA: return "host not found";
    case EAI_AGAIN: return "temporary failure in name resolution";
    default: return gai_strerror(rc);
    }
}

static void query_free(torii_resolve_t *q)
{
    if (q->gcb.ar_result)
        freeaddrinfo(q->gcb.ar_result);
    free(q);
}

torii_resolve_t *torii_resolve_start(torii_loop_t *l, const char *host, size_t n, uint16_t port, torii_resolve_cb cb,
                                     void *data, const char **why)
{
    torii_resolve_t *q;
    struct gaicb *list[1];
    int rc;
    if (n == 0 || n >= sizeof q->host || memchr(host, '\0', n)) {
        *why = "bad host name";
        return NULL;
    }
    if (ninflight >= MAX_INFLIGHT) {
        *why = "too many name lookups in flight";
        return NULL;
    }
    if (!(q = calloc(1, sizeof *q)))
        abort();
    memcpy(q->host, host, n);
    q->portnum = port;
    q->hints.ai_socktype = SOCK_STREAM; /* any family: glibc orders them by preference (RFC 6724) */
    q->gcb.ar_name = q->host;
    q->gcb.ar_request = &q->hints;
    q->cb = cb;
    q->data = data;
    list[0] = &q->gcb;
    if ((rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL)) != 0) {
        *why = why_not(rc);
        free(q);
        return NULL;
    }
    loop = l;
    torii_list_push(&inflight, &q->link);
    if (ninflight++ == 0) {
        torii_timer_init(&poll_timer, on_poll, POLL_SECONDS, POLL_SECONDS);
        torii_timer_start(loop, &poll_timer);
    }
    torii_log_debug("name lookup started: %s", q->host);
    return q;
}

void torii_resolve_cancel(torii_resolve_t *q)
{
    q->cb = NULL;
    gai_cancel(&q->gcb); /* a lookup not started yet never starts; others end by themselves */
}

/* The first address of a finished lookup, with the port. */
static const char *outcome(torii_resolve_t *q, int rc, torii_addr_t *addr)
{
    const struct addrinfo *ai = q->gcb.ar_result;
    if (rc != 0)
        return why_not(rc);
    for (; ai; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ai->ai_addrlen <= sizeof addr->sa) {
            memset(addr, 0, sizeof *addr);
            memcpy(&addr->sa, ai->ai_addr, ai->ai_addrlen);
            addr->len = ai->ai_addrlen;
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)&addr->sa)->sin_port = htons(q->portnum);
            else
                ((struct sockaddr_in6 *)&addr->sa)->sin6_port = htons(q->portnum);
            return NULL;
        }
    }
    return "host not found";
}

static void on_poll(torii_loop_t *l, torii_timer_t *t, int revents)
{
    torii_list_t done = {&done, &done};
    (void)t, (void)revents;
    /* Collect first: a callback may start or cancel lookups. */
    for (torii_list_t *n = inflight.next, *next; n != &inflight; n = next) {
        torii_resolve_t *q = torii_list_entry(n, torii_resolve_t, link);
        next = n->next;
        if (gai_error(&q->gcb) == EAI_INPROGRESS)
            continue;
        torii_list_remove(&q->link);
        torii_list_push(&done, &q->link);
        ninflight--;
    }
    if (ninflight == 0)
        torii_timer_stop(l, &poll_timer);
    while (!torii_list_empty(&done)) {
        torii_resolve_t *q = torii_list_entry(done.prev, torii_resolve_t, link);
        torii_addr_t addr;
        const char *why;
        torii_list_remove(&q->link);
        if (q->cb) {
            why = outcome(q, gai_error(&q->gcb), &addr);
            torii_log_debug("name lookup done: %s: %s", q->host, why ? why : "found");
            q->cb(q->data, why ? NULL : &addr, why);
        }
        query_free(q);
    }
}

void torii_resolve_shutdown(void)
{
    time_t give_up = time(NULL) + EXIT_WAIT;
    if (loop)
        torii_timer_stop(loop, &poll_timer);
    while (!torii_list_empty(&inflight)) {
        torii_resolve_t *q = torii_list_entry(inflight.next, torii_resolve_t, link);
        const struct gaicb *one[1] = {&q->gcb};
        struct timespec step = {0, 100 * 1000 * 1000};
        gai_cancel(&q->gcb);
        if (gai_error(&q->gcb) == EAI_INPROGRESS) {
            if (time(NULL) >= give_up) {
                /* Still in glibc's hands: left as it is (still listed, so
                 * not a leak) rather than freed under its feet. */
                torii_log_warn("worker exits with name lookups still running");
                return;
            }
            gai_suspend(one, 1, &step);
            continue;
        }
        torii_list_remove(&q->link);
        ninflight--;
        query_free(q);
    }
}
