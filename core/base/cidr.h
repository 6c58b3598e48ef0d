/*
 * cidr.h — IPv4 and IPv6 addresses and CIDR blocks, for trusted-proxy lists
 * (and later the router's remote_addrs). Addresses are kept as 16 bytes,
 * IPv4 mapped into ::ffff:0:0/96 so one comparison serves both families.
 */
#ifndef TORII_CIDR_H
#define TORII_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t addr[16];
    uint8_t bits; /* prefix length over the 128-bit form */
} torii_cidr_t;

/* Parse "10.0.0.0/8", "::1", "2001:db8::/32", "127.0.0.1". */
bool torii_cidr_parse(const char *s, size_t n, torii_cidr_t *out);

/* Parse a single address (no prefix) into 16-byte form. */
bool torii_ip_parse(const char *s, size_t n, uint8_t out[16]);

/* Does the address (16-byte form) fall in the block? */
bool torii_cidr_match(const torii_cidr_t *c, const uint8_t addr[16]);

/* Any block of the list matches? */
bool torii_cidr_list_match(const torii_cidr_t *list, size_t n, const uint8_t addr[16]);

#endif
