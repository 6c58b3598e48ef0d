/*
 * hdrkind.h — the header names torii itself acts on, recognised once per
 * header when a head is split, so that framing checks and head building do
 * not compare every name against every list again.
 */
#ifndef TORII_HDRKIND_H
#define TORII_HDRKIND_H

#include <stdint.h>

#include "base/str.h"

typedef enum {
    TORII_H_OTHER = 0,
    TORII_H_HOST,
    TORII_H_CONTENT_LENGTH,
    TORII_H_TRANSFER_ENCODING,
    TORII_H_CONNECTION,
    TORII_H_KEEP_ALIVE,
    TORII_H_PROXY_CONNECTION,
    TORII_H_TE,
    TORII_H_TRAILER,
    TORII_H_UPGRADE,
    TORII_H_EXPECT,
    TORII_H_X_FORWARDED_FOR,
    TORII_H_X_REAL_IP,
    TORII_H_X_FORWARDED_PROTO,
    TORII_H_X_FORWARDED_HOST,
} torii_hdr_kind_t;

/* The kind of a header name (case-insensitive). */
torii_hdr_kind_t torii_hdr_kind(torii_str_t name);

/* Hop-by-hop (RFC 9110 7.6.1): never forwarded as received. */
static inline int torii_hdr_hop_by_hop(torii_hdr_kind_t k)
{
    return k == TORII_H_CONNECTION || k == TORII_H_KEEP_ALIVE || k == TORII_H_PROXY_CONNECTION || k == TORII_H_TE ||
           k == TORII_H_TRAILER || k == TORII_H_TRANSFER_ENCODING || k == TORII_H_UPGRADE;
}

/* Set by torii from the connection, not taken from an untrusted client. */
static inline int torii_hdr_forwarding(torii_hdr_kind_t k)
{
    return k >= TORII_H_X_FORWARDED_FOR && k <= TORII_H_X_FORWARDED_HOST;
}

#endif
