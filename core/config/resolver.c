/*
 * resolver.c — the `resolver:` block: how upstream host names are looked
 * up (see event/dns_cache.h for what is done with it).
 *
 *   resolver:
 *     nameservers: ["127.0.0.1:5353", "10.0.0.2"]  # default: /etc/resolv.conf; port 53 by default
 *     timeout: 2s      # per try
 *     retries: 2       # tries after the first, across the nameservers
 *     valid: 30s       # instead of the answers' TTLs (default: the TTLs)
 *     min_ttl: 1s      # TTLs are clamped to [min_ttl, max_ttl]
 *     max_ttl: 1h
 *     stale: 1h        # the last good addresses stay in use this long when refreshes fail
 */
#include <string.h>

#include "base/common.h"
#include "config/loader.h"

#define SEC 1000

/* "ip" or "ip:port" or "[v6]:port": a nameserver is never a name. */
static bool one_nameserver(torii_dctx_t *c, const torii_cnode_t *n, torii_addr_t *out)
{
    char host[256];
    const char *why;
    uint16_t port;
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    if (torii_addr_literal(n->text, n->len, 53, out))
        return true;
    if (torii_addr_split(n->text, host, sizeof host, &port, false, &why) && host[0] &&
        torii_addr_literal(host, strlen(host), port, out))
        return true;
    return torii_dctx_fail(c, n,
                           "invalid nameserver \"%s\": an IP address with an optional port (\"10.0.0.2\", "
                           "\"127.0.0.1:5353\", \"[::1]:53\")",
                           n->text);
}

static bool dec_nameservers(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_dns_servers_t *s = dst;
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return false;
    if (n->n == 0 || n->n > TORII_DNS_MAX_NS)
        return torii_dctx_fail(c, n, "must list 1 to %d nameservers", TORII_DNS_MAX_NS);
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        if (!one_nameserver(c, n->items[i], &s->ns[i]))
            return false;
        torii_dctx_pop(c, mark);
    }
    s->nns = (uint32_t)n->n;
    return true;
}

#define RF(name, fn, member, lo, hi)                                                                                   \
    {                                                                                                                  \
        name, fn, offsetof(torii_dns_policy_t, member), lo, hi, NULL, false                                            \
    }

static const torii_field_t resolver_fields[] = {
    RF("nameservers", dec_nameservers, servers, 0, 0),
    RF("timeout", torii_dec_duration, servers.timeout_ms, 10, 60 * SEC),
    RF("retries", torii_dec_uint, servers.retries, 0, 10),
    RF("valid", torii_dec_duration, valid_ms, 1 * SEC, 7 * 86400 * SEC),
    /* A TTL of 0 asks again at once: a floor keeps that from a storm. */
    RF("min_ttl", torii_dec_duration, min_ttl_ms, 100, 86400 * SEC),
    RF("max_ttl", torii_dec_duration, max_ttl_ms, 1 * SEC, 7 * 86400 * SEC),
    RF("stale", torii_dec_duration, stale_ms, 0, 7 * 86400 * SEC),
    {0},
};

bool torii_dec_resolver(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    torii_dns_policy_t *p = dst;
    (void)f;
    if (!torii_decode_object(c, n, p, resolver_fields))
        return false;
    if (p->min_ttl_ms > p->max_ttl_ms)
        return torii_dctx_fail(c, n, "min_ttl must not be more than max_ttl");
    return true;
}
