/*
 * addr.h — socket addresses: parsing "host:port" forms, resolving host
 * names (at configuration time, blocking), and printing.
 */
#ifndef TORII_ADDR_H
#define TORII_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
} torii_addr_t;

#define TORII_ADDRSTRLEN 64 /* "[ffff:...:ffff]:65535" fits */

/*
 * Split "host:port", "[v6]:port", ":port", "*:port" or "port" (when
 * `port_only_ok`) into host and port. host is "" for "any" forms. Returns
 * false with *why set if malformed.
 */
bool torii_addr_split(const char *spec, char *host, size_t hostlen, uint16_t *port, bool port_only_ok,
                      const char **why);

/* Resolve host (name or literal; "" = any IPv4) and port. Blocking. */
bool torii_addr_resolve(const char *host, uint16_t port, torii_addr_t *out, char *err, size_t errlen);

/* An IPv4 or IPv6 literal ("10.0.0.1", "::1", "[::1]") or "localhost"
 * (127.0.0.1) with port; false for anything else. Never looks a name up,
 * so it never blocks. */
bool torii_addr_literal(const char *host, size_t n, uint16_t port, torii_addr_t *out);

/* "1.2.3.4:80" / "[::1]:80" */
void torii_addr_format(const struct sockaddr *sa, char *out, size_t outlen);

/* Address without port ("1.2.3.4", "::1"). */
void torii_addr_format_ip(const struct sockaddr *sa, char *out, size_t outlen);

/* 16-byte form (IPv4 mapped) for CIDR matching. */
void torii_addr_to16(const struct sockaddr *sa, uint8_t out[16]);

bool torii_addr_equal(const torii_addr_t *a, const torii_addr_t *b);

#endif
