/* cidr.c — address blocks. */
#include <arpa/inet.h>
#include <string.h>

#include "base/cidr.h"

bool torii_ip_parse(const char *s, size_t n, uint8_t out[16])
{
    char tmp[64];
    struct in_addr v4;
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, tmp, out) == 1;
}

bool torii_cidr_parse(const char *s, size_t n, torii_cidr_t *out)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    unsigned bits = 0, max;
    bool v4;
    if (!torii_ip_parse(s, alen, out->addr))
        return false;
    v4 = memchr(s, ':', alen) == NULL;
    max = v4 ? 32 : 128;
    if (!slash) {
        bits = max;
    } else {
        size_t i = alen + 1;
        if (i >= n || n - i > 3)
            return false;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            bits = bits * 10 + (unsigned)(s[i] - '0');
        }
        if (bits > max)
            return false;
    }
    out->bits = (uint8_t)(v4 ? bits + 96 : bits);
    /* Clear host bits so matching is a plain masked compare. */
    for (unsigned b = out->bits; b < 128; b++)
        out->addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
    return true;
}

static bool v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, sizeof prefix) == 0;
}

bool torii_cidr_match(const torii_cidr_t *c, const uint8_t addr[16])
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    /* IPv4 addresses live in ::ffff:0:0/96, so a wider IPv6 block such as
     * ::/0 would cover every IPv4 client; an IPv6 block means IPv6 only. */
    if (c->bits < 96 && v4_mapped(addr))
        return false;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (addr[full] & mask) == c->addr[full];
}

bool torii_cidr_list_match(const torii_cidr_t *list, size_t n, const uint8_t addr[16])
{
    for (size_t i = 0; i < n; i++) {
        if (torii_cidr_match(&list[i], addr))
            return true;
    }
    return false;
}
