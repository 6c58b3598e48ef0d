/*
 * dns_client.h — DNS questions over UDP on an event loop, never blocking.
 *
 * Each try of a query has a socket of its own, bound to a random source
 * port and connected to one nameserver (so the kernel drops datagrams from
 * anyone else), with a random query id; an answer counts only when its id
 * and question match (dns.h). A try that times out, or gets SERVFAIL,
 * REFUSED or a malformed answer, is followed by one to the next
 * nameserver, up to 1 + retries tries. At most MAX_INFLIGHT queries are
 * in flight per client; more wait their turn.
 */
#ifndef TORII_DNS_CLIENT_H
#define TORII_DNS_CLIENT_H

#include <stdint.h>

#include "base/addr.h"
#include "event/dns.h"
#include "event/dns_sys.h"
#include "event/loop.h"

/* Where and how questions go. */
typedef struct {
    torii_addr_t ns[TORII_DNS_MAX_NS];
    uint32_t nns;
    uint32_t timeout_ms; /* per try */
    uint32_t retries;    /* tries after the first */
} torii_dns_servers_t;

typedef struct torii_dns_client_s torii_dns_client_t;
typedef struct torii_dns_query_s torii_dns_query_t;

/* A query's outcome: FOUND with ans, or NODATA, NXDOMAIN, FAILED (every
 * try failed or timed out) or TRUNCATED, with why (a short text). */
typedef void (*torii_dns_cb)(void *data, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why);

/* A client on loop asking the servers in s (copied). */
torii_dns_client_t *torii_dns_client_new(torii_loop_t *loop, const torii_dns_servers_t *s);

/* Later tries go to these servers, with these timeouts (a list without
 * any server is ignored). */
void torii_dns_client_set(torii_dns_client_t *c, const torii_dns_servers_t *s);

/* Cancel every query (no callback runs) and free the client. */
void torii_dns_client_free(torii_dns_client_t *c);

/* Ask for the qtype records of name (torii_dns_name_ok). cb runs from the
 * loop, never from here. NULL when the name is not fit or no server is
 * known (*why set). */
torii_dns_query_t *torii_dns_query(torii_dns_client_t *c, const char *name, uint16_t qtype, torii_dns_cb cb, void *data,
                                   const char **why);

/* Forget a query: its callback will not run. */
void torii_dns_query_cancel(torii_dns_query_t *q);

/* Queries in flight and waiting (for tests and logs). */
uint32_t torii_dns_client_pending(const torii_dns_client_t *c);

#endif
