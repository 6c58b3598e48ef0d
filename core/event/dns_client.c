/* dns_client.c — DNS queries over UDP (see dns_client.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/list.h"
#include "base/log.h"
#include "event/dns_client.h"

#define MAX_INFLIGHT 64 /* queries with a socket open, per client */
#define PORT_TRIES   8  /* random source ports tried before the kernel picks one */
#define PORT_LOW     1024

struct torii_dns_client_s {
    torii_loop_t *loop;
    torii_dns_servers_t s;
    torii_list_t inflight, waiting;
    uint32_t ninflight, nwaiting;
};

struct torii_dns_query_s {
    torii_list_t link; /* in inflight or waiting */
    torii_dns_client_t *c;
    char name[TORII_DNS_NAME_MAX + 2];
    uint16_t qtype, id;
    uint32_t tries; /* made so far */
    uint32_t ns;    /* the nameserver of the current try */
    int fd;
    torii_io_t io;
    torii_timer_t timer;
    torii_dns_result_t failed; /* the last try's failure */
    const char *why;
    torii_dns_cb cb;
    void *data;
};

static void on_read(torii_loop_t *loop, torii_io_t *io, int revents);
static void on_timeout(torii_loop_t *loop, torii_timer_t *t, int revents);

torii_dns_client_t *torii_dns_client_new(torii_loop_t *loop, const torii_dns_servers_t *s)
{
    torii_dns_client_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->loop = loop;
    c->s = *s;
    torii_list_init(&c->inflight);
    torii_list_init(&c->waiting);
    return c;
}

void torii_dns_client_set(torii_dns_client_t *c, const torii_dns_servers_t *s)
{
    if (s->nns > 0) /* queries in flight go on to a server of the list */
        c->s = *s;
}

uint32_t torii_dns_client_pending(const torii_dns_client_t *c)
{
    return c->ninflight + c->nwaiting;
}

/* Bind to a random source port (arc4random: a CSPRNG, fork-safe), so
 * that a forged answer must guess the port as well as the id. */
static void bind_random(int fd, int family)
{
    for (int i = 0; i < PORT_TRIES; i++) {
        uint16_t port = (uint16_t)(PORT_LOW + arc4random_uniform(65536 - PORT_LOW));
        int rc;
        if (family == AF_INET) {
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
            rc = bind(fd, (struct sockaddr *)&sin, sizeof sin);
        } else {
            struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
            rc = bind(fd, (struct sockaddr *)&sin6, sizeof sin6);
        }
        if (rc == 0 || errno != EADDRINUSE)
            return; /* on other errors connect() binds an ephemeral port */
    }
}

static void close_try(torii_dns_query_t *q)
{
    torii_timer_stop(q->c->loop, &q->timer);
    if (q->fd >= 0) {
        torii_io_stop(q->c->loop, &q->io);
        close(q->fd);
        q->fd = -1;
    }
}

/* One try to the next nameserver. A failure to send counts as a failed
 * try, reported from the loop (a zero timer), never from here. */
static void send_try(torii_dns_query_t *q)
{
    torii_dns_client_t *c = q->c;
    const torii_addr_t *ns = &c->s.ns[q->ns = q->tries++ % c->s.nns];
    uint8_t pkt[TORII_DNS_UDP_MAX];
    size_t n;
    close_try(q);
    q->id = (uint16_t)arc4random_uniform(65536);
    n = torii_dns_query_build(pkt, sizeof pkt, q->id, q->name, q->qtype);
    q->fd = socket(ns->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd >= 0)
        bind_random(q->fd, ns->sa.ss_family);
    if (q->fd < 0 || connect(q->fd, (const struct sockaddr *)&ns->sa, ns->len) != 0 || send(q->fd, pkt, n, 0) < 0) {
        torii_log_debug("dns: %s: cannot send to a nameserver: %s", q->name, strerror(errno));
        q->failed = TORII_DNS_FAILED;
        q->why = "cannot send to the nameserver";
        torii_timer_arm(c->loop, &q->timer, 0.);
        return;
    }
    torii_io_init(&q->io, on_read, q->fd, TORII_EV_READ);
    q->io.data = q;
    torii_io_start(c->loop, &q->io);
    torii_timer_arm(c->loop, &q->timer, c->s.timeout_ms / 1000.0);
}

static void start(torii_dns_query_t *q)
{
    torii_dns_client_t *c = q->c;
    torii_list_push(&c->inflight, &q->link);
    c->ninflight++;
    send_try(q);
}

/* A query left: the oldest waiting one takes its place. */
static void start_waiting(torii_dns_client_t *c)
{
    torii_dns_query_t *next;
    if (torii_list_empty(&c->waiting) || c->ninflight >= MAX_INFLIGHT)
        return;
    next = torii_list_entry(c->waiting.prev, torii_dns_query_t, link);
    torii_list_remove(&next->link);
    c->nwaiting--;
    start(next);
}

/* The query is over: free it, let a waiting one go, then tell. */
static void finish(torii_dns_query_t *q, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why)
{
    torii_dns_client_t *c = q->c;
    torii_dns_cb cb = q->cb;
    void *data = q->data;
    close_try(q);
    torii_list_remove(&q->link);
    c->ninflight--;
    free(q);
    start_waiting(c);
    cb(data, rc, ans, why);
}

/* A try failed: the next, or the end. */
static void try_failed(torii_dns_query_t *q, torii_dns_result_t rc, const char *why)
{
    torii_dns_client_t *c = q->c;
    char ns[TORII_ADDRSTRLEN];
    torii_addr_format((const struct sockaddr *)&c->s.ns[q->ns].sa, ns, sizeof ns);
    torii_log_debug("dns: %s (type %u): nameserver %s: %s", q->name, q->qtype, ns, why);
    q->failed = rc;
    q->why = why;
    if (q->tries < 1 + c->s.retries) {
        send_try(q);
        return;
    }
    finish(q, rc, NULL, why);
}

static void on_timeout(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_dns_query_t *q = t->data;
    (void)loop, (void)revents;
    if (q->fd < 0) /* the send had failed */
        try_failed(q, q->failed, q->why);
    else
        try_failed(q, TORII_DNS_FAILED, "no answer from the nameservers (timed out)");
}

static void on_read(torii_loop_t *loop, torii_io_t *io, int revents)
{
    torii_dns_query_t *q = io->data;
    uint8_t msg[TORII_DNS_UDP_MAX + 1];
    torii_dns_answer_t ans;
    const char *why;
    (void)loop, (void)revents;
    /* A few datagrams per wake-up: forged ones must not starve the loop. */
    for (int i = 0; i < 4; i++) {
        ssize_t n = recv(q->fd, msg, sizeof msg, 0);
        torii_dns_result_t rc;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) { /* ICMP port unreachable, on a connected socket */
            try_failed(q, TORII_DNS_FAILED, "the nameserver refused the connection");
            return;
        }
        if ((size_t)n > TORII_DNS_UDP_MAX) /* more than asked for: not an answer we read */
            continue;
        rc = torii_dns_parse(msg, (size_t)n, q->id, q->name, q->qtype, &ans, &why);
        if (rc == TORII_DNS_IGNORE)
            continue;
        if (rc == TORII_DNS_FAILED || rc == TORII_DNS_TRUNCATED)
            try_failed(q, rc, why);
        else
            finish(q, rc, rc == TORII_DNS_FOUND ? &ans : NULL, why);
        return;
    }
}

torii_dns_query_t *torii_dns_query(torii_dns_client_t *c, const char *name, uint16_t qtype, torii_dns_cb cb, void *data,
                                   const char **why)
{
    torii_dns_query_t *q;
    if (!torii_dns_name_ok(name, why))
        return NULL;
    if (c->s.nns == 0) {
        *why = "no nameserver";
        return NULL;
    }
    if (!(q = calloc(1, sizeof *q)))
        abort();
    q->c = c;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->qtype = qtype;
    q->fd = -1;
    q->cb = cb;
    q->data = data;
    torii_timer_init(&q->timer, on_timeout, 0., 0.);
    q->timer.data = q;
    if (c->ninflight >= MAX_INFLIGHT) {
        torii_list_push(&c->waiting, &q->link);
        c->nwaiting++;
        return q;
    }
    start(q);
    return q;
}

void torii_dns_query_cancel(torii_dns_query_t *q)
{
    torii_dns_client_t *c = q->c;
    bool started = q->tries > 0;
    close_try(q);
    torii_list_remove(&q->link);
    free(q);
    if (!started) {
        c->nwaiting--;
        return;
    }
    c->ninflight--;
    start_waiting(c);
}

void torii_dns_client_free(torii_dns_client_t *c)
{
    if (!c)
        return;
    while (!torii_list_empty(&c->waiting))
        torii_dns_query_cancel(torii_list_entry(c->waiting.next, torii_dns_query_t, link));
    while (!torii_list_empty(&c->inflight))
        torii_dns_query_cancel(torii_list_entry(c->inflight.next, torii_dns_query_t, link));
    free(c);
}
