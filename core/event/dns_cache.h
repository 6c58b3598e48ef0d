/*
 * dns_cache.h — upstream host names and their current addresses, one
 * cache per process.
 *
 * A configuration being loaded asks for its names (torii_dns_cache_resolve):
 * names in /etc/hosts are fixed; a name whose answer is still fresh (and
 * came from the same nameservers) is taken as it is, so that a reload does
 * not ask again; the others are asked for at once, together, blocking the
 * caller at most about timeout × tries. A worker then attaches the cache
 * to its loop: each name is asked for again when its TTL runs out, without
 * blocking, and every configuration generation using the name sees the new
 * addresses on its next tries. When the nameservers fail, the last good
 * addresses stay in use for up to `stale` past their expiry (with a warning
 * per failed refresh, retried with back-off); then the name has none until
 * it resolves again.
 *
 * Queries ask for A records, and for AAAA only when the name has no A
 * record: one query per refresh for the common case.
 */
#ifndef TORII_DNS_CACHE_H
#define TORII_DNS_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"
#include "event/dns_client.h"
#include "event/loop.h"

/* The `resolver:` settings. */
typedef struct {
    torii_dns_servers_t servers;
    uint32_t valid_ms;   /* set: used instead of the answers' TTLs */
    uint32_t min_ttl_ms; /* TTLs are clamped to [min_ttl, max_ttl] */
    uint32_t max_ttl_ms;
    uint32_t stale_ms; /* last good addresses kept this long past expiry when refreshes fail */
} torii_dns_policy_t;

typedef struct torii_dns_name_s torii_dns_name_t;

/* One host name a configuration needs. */
typedef struct {
    const char *host;       /* in: a name that is not an IP literal */
    torii_dns_name_t *name; /* out: a reference, always (release it) */
    const char *why;        /* out: NULL, or why it does not resolve */
} torii_dns_want_t;

/* Resolve every wanted name (see above). False when one did not resolve
 * (its why set); each want holds a reference either way. */
bool torii_dns_cache_resolve(const torii_dns_policy_t *p, torii_dns_want_t *w, size_t n);

void torii_dns_name_ref(torii_dns_name_t *e);

/* Drop a reference: the name leaves the cache with its last one. */
void torii_dns_name_release(torii_dns_name_t *e);

/* The next of the name's addresses (they take turns), with port. False
 * when the name has none now. */
bool torii_dns_name_addr(torii_dns_name_t *e, uint16_t port, torii_addr_t *out);

/* The worker's loop takes the names over: refreshes run on it, asked as p
 * says. */
void torii_dns_cache_attach(torii_loop_t *loop, const torii_dns_policy_t *p);

/* A new generation is current: refreshes follow its resolver settings. */
void torii_dns_cache_configure(const torii_dns_policy_t *p);

/* The worker stops: timers and queries end (names stay until released). */
void torii_dns_cache_detach(void);

#endif
