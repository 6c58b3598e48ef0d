/* hdrkind.c — recognising header names: by length first, then bytes. */
#include "http/hdrkind.h"

torii_hdr_kind_t torii_hdr_kind(torii_str_t n)
{
    switch (n.n) {
    case 2: return torii_str_ieq(n, "te") ? TORII_H_TE : TORII_H_OTHER;
    case 4: return torii_str_ieq(n, "host") ? TORII_H_HOST : TORII_H_OTHER;
    case 6: return torii_str_ieq(n, "expect") ? TORII_H_EXPECT : TORII_H_OTHER;
    case 7:
        if (torii_str_ieq(n, "upgrade"))
            return TORII_H_UPGRADE;
        return torii_str_ieq(n, "trailer") ? TORII_H_TRAILER : TORII_H_OTHER;
    case 9: return torii_str_ieq(n, "x-real-ip") ? TORII_H_X_REAL_IP : TORII_H_OTHER;
    case 10:
        if (torii_str_ieq(n, "connection"))
            return TORII_H_CONNECTION;
        return torii_str_ieq(n, "keep-alive") ? TORII_H_KEEP_ALIVE : TORII_H_OTHER;
    case 14: return torii_str_ieq(n, "content-length") ? TORII_H_CONTENT_LENGTH : TORII_H_OTHER;
    case 15:
        if (torii_str_ieq(n, "x-forwarded-for"))
            return TORII_H_X_FORWARDED_FOR;
        return TORII_H_OTHER;
    case 16:
        if (torii_str_ieq(n, "x-forwarded-host"))
            return TORII_H_X_FORWARDED_HOST;
        return torii_str_ieq(n, "proxy-connection") ? TORII_H_PROXY_CONNECTION : TORII_H_OTHER;
    case 17:
        if (torii_str_ieq(n, "transfer-encoding"))
            return TORII_H_TRANSFER_ENCODING;
        return torii_str_ieq(n, "x-forwarded-proto") ? TORII_H_X_FORWARDED_PROTO : TORII_H_OTHER;
    default: return TORII_H_OTHER;
    }
}
