/*
 * dns.h — the DNS wire format (RFC 1035) as a stub resolver needs it: one
 * question for the A or AAAA records of a name goes out; the answer's
 * addresses come back, following a CNAME chain inside the answer, with the
 * least TTL of the records used. Pure functions: no sockets, no clock.
 */
#ifndef TORII_DNS_H
#define TORII_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TORII_DNS_A     1
#define TORII_DNS_CNAME 5
#define TORII_DNS_AAAA  28

#define TORII_DNS_MAX_ADDRS 16  /* addresses kept per answer */
#define TORII_DNS_NAME_MAX  253 /* a name as text, without the final dot */
#define TORII_DNS_UDP_MAX   512 /* a UDP message without EDNS */

/* One address of an answer. */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t ip[16];
} torii_dns_ip_t;

/* What an answer says about the question. */
typedef enum {
    TORII_DNS_FOUND,     /* addresses of the type asked */
    TORII_DNS_NODATA,    /* the name exists without a record of that type */
    TORII_DNS_NXDOMAIN,  /* the name does not exist */
    TORII_DNS_FAILED,    /* SERVFAIL, REFUSED, a malformed answer: another server may do better */
    TORII_DNS_TRUNCATED, /* TC set and no complete address record (TCP is not used) */
    TORII_DNS_IGNORE,    /* not an answer to this query (id, question, garbage): keep waiting */
} torii_dns_result_t;

typedef struct {
    torii_dns_ip_t addrs[TORII_DNS_MAX_ADDRS];
    uint32_t naddrs;
    uint32_t ttl; /* seconds: the least of the CNAMEs and addresses used */
} torii_dns_answer_t;

/* Is name (text, an optional final dot) fit for a question: labels of 1 to
 * 63 letters, digits, '-' or '_', at most 253 characters? Why not in *why. */
bool torii_dns_name_ok(const char *name, const char **why);

/* The query for qtype records of name, with the id and recursion desired,
 * into out. Its length, or 0 when name is not fit or cap too small. */
size_t torii_dns_query_build(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype);

/*
 * Read the answer msg[0..n) to the query (id, name, qtype). Messages that
 * do not answer it (another id, another question, too short) give
 * TORII_DNS_IGNORE: they may be forged, and the real answer may follow.
 * The reason of anything but FOUND in *why (a static string).
 */
torii_dns_result_t torii_dns_parse(const uint8_t *msg, size_t n, uint16_t id, const char *name, uint16_t qtype,
                                   torii_dns_answer_t *ans, const char **why);

/* The name at msg[off] (compression pointers followed, lowercased, no
 * final dot; "" for the root) into out[cap]; the offset just after it in
 * the message in *next. False when malformed: out of bounds, a pointer
 * that does not point backwards, too many pointers, longer than 255 bytes,
 * a label holding a dot or NUL. */
bool torii_dns_read_name(const uint8_t *msg, size_t n, size_t off, char *out, size_t cap, size_t *next);

#endif
