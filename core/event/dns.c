/* dns.c — DNS messages: building a question, reading an answer (see dns.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "event/dns.h"

#define HEADER      12
#define CLASS_IN    1
#define MAX_JUMPS   32 /* compression pointers followed in one name */
#define MAX_RECORDS 64 /* answer records looked at */
#define MAX_CHAIN   8  /* CNAMEs followed */

/* Flags of the header's second 16 bits. */
#define F_QR     0x8000
#define F_OPCODE 0x7800
#define F_TC     0x0200
#define F_RD     0x0100
#define F_RCODE  0x000f

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static bool label_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

bool torii_dns_name_ok(const char *name, const char **why)
{
    size_t n = strlen(name), label = 0;
    if (n > 0 && name[n - 1] == '.')
        n--;
    *why = "invalid host name";
    if (n == 0 || n > TORII_DNS_NAME_MAX) {
        *why = n ? "host name longer than 253 characters" : "empty host name";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return false; /* an empty label */
            label = 0;
        } else if (!label_char(name[i]) || ++label > 63) {
            if (label > 63)
                *why = "host name label longer than 63 characters";
            return false;
        }
    }
    return label > 0;
}

size_t torii_dns_query_build(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    const char *why;
    size_t n = strlen(name), pos = HEADER;
    if (!torii_dns_name_ok(name, &why))
        return 0;
    if (name[n - 1] == '.')
        n--;
    if (cap < HEADER + n + 2 + 4)
        return 0;
    memset(out, 0, HEADER);
    put16(out, id);
    put16(out + 2, F_RD);
    put16(out + 4, 1); /* one question */
    for (size_t start = 0; start <= n;) {
        const char *dot = memchr(name + start, '.', n - start);
        size_t len = dot ? (size_t)(dot - name) - start : n - start;
        out[pos++] = (uint8_t)len;
        memcpy(out + pos, name + start, len);
        pos += len;
        start += len + 1;
    }
    out[pos++] = 0;
    put16(out + pos, qtype);
    put16(out + pos + 2, CLASS_IN);
    return pos + 4;
}

bool torii_dns_read_name(const uint8_t *msg, size_t n, size_t off, char *out, size_t cap, size_t *next)
{
    size_t pos = off, len = 0, wire = 1;
    int jumps = 0;
    bool jumped = false;
    for (;;) {
        uint8_t l;
        if (pos >= n)
            return false;
        l = msg[pos];
        if ((l & 0xc0) == 0xc0) {
            size_t to;
            if (pos + 1 >= n)
                return false;
            to = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
            /* Backwards only, and not too often: a loop of pointers ends. */
            if (to >= pos || ++jumps > MAX_JUMPS)
                return false;
            if (!jumped)
                *next = pos + 2;
            jumped = true;
            pos = to;
            continue;
        }
        if (l & 0xc0) /* the extended label types never caught on */
            return false;
        if (l == 0)
            break;
        wire += 1u + l;
        if (wire > 255 || pos + 1 + l > n || len + l + 2 > cap)
            return false;
        if (len)
            out[len++] = '.';
        for (size_t i = 0; i < l; i++) {
            char ch = (char)msg[pos + 1 + i];
            if (ch == '.' || ch == '\0') /* would read as another name */
                return false;
            out[len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        pos += 1u + l;
    }
    if (!jumped)
        *next = pos + 1;
    if (cap == 0)
        return false;
    out[len] = '\0';
    return true;
}

/* The same name, but for case and a final dot. */
static bool same_name(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na && a[na - 1] == '.')
        na--;
    if (nb && b[nb - 1] == '.')
        nb--;
    return na == nb && strncasecmp(a, b, na) == 0;
}

typedef struct {
    size_t owner; /* offset of the owner name */
    uint16_t type;
    uint32_t ttl;
    size_t rdata;
    uint16_t rdlen;
} record_t;

/* The answer section's records of class IN, up to cap; *cut when the
 * message ends inside one. False when malformed past what TC explains. */
static bool read_records(const uint8_t *msg, size_t n, size_t pos, uint16_t count, bool tc, record_t *rr, size_t cap,
                         size_t *nrr)
{
    char name[256];
    *nrr = 0;
    for (uint16_t i = 0; i < count && *nrr < cap; i++) {
        size_t owner = pos, next;
        if (!torii_dns_read_name(msg, n, pos, name, sizeof name, &next) || next + 10 > n)
            return tc; /* a truncated answer ends where it ends */
        record_t r = {.owner = owner, .type = get16(msg + next), .ttl = get32(msg + next + 4)};
        r.rdlen = get16(msg + next + 8);
        r.rdata = next + 10;
        if (r.rdata + r.rdlen > n)
            return tc;
        if (r.ttl > 0x7fffffff) /* RFC 2181: as zero */
            r.ttl = 0;
        if (get16(msg + next + 2) == CLASS_IN)
            rr[(*nrr)++] = r;
        pos = r.rdata + r.rdlen;
    }
    return true;
}

/* Follow the chain from the question's name: addresses owned by the
 * current name, else its CNAME. */
static torii_dns_result_t follow(const uint8_t *msg, size_t n, const record_t *rr, size_t nrr, const char *qname,
                                 uint16_t qtype, torii_dns_answer_t *ans, const char **why)
{
    char cur[256], owner[256];
    uint32_t ttl = UINT32_MAX;
    size_t next;
    snprintf(cur, sizeof cur, "%s", qname);
    for (int hop = 0; hop <= MAX_CHAIN; hop++) {
        const record_t *cname = NULL;
        for (size_t i = 0; i < nrr; i++) {
            if (!torii_dns_read_name(msg, n, rr[i].owner, owner, sizeof owner, &next) || !same_name(owner, cur))
                continue;
            if (rr[i].type == TORII_DNS_CNAME && !cname) {
                cname = &rr[i];
            } else if (rr[i].type == qtype && rr[i].rdlen == (qtype == TORII_DNS_A ? 4 : 16) &&
                       ans->naddrs < TORII_DNS_MAX_ADDRS) {
                torii_dns_ip_t *ip = &ans->addrs[ans->naddrs++];
                ip->family = qtype == TORII_DNS_A ? AF_INET : AF_INET6;
                memset(ip->ip, 0, sizeof ip->ip);
                memcpy(ip->ip, msg + rr[i].rdata, rr[i].rdlen);
                ttl = rr[i].ttl < ttl ? rr[i].ttl : ttl;
            }
        }
        if (ans->naddrs > 0) {
            ans->ttl = ttl;
            return TORII_DNS_FOUND;
        }
        if (!cname)
            break;
        if (!torii_dns_read_name(msg, n, cname->rdata, cur, sizeof cur, &next) || next > cname->rdata + cname->rdlen) {
            *why = "malformed CNAME record";
            return TORII_DNS_FAILED;
        }
        ttl = cname->ttl < ttl ? cname->ttl : ttl;
    }
    *why = qtype == TORII_DNS_A ? "no A record" : "no AAAA record";
    return TORII_DNS_NODATA;
}

static const char *rcode_text(unsigned rcode)
{
    switch (rcode) {
    case 1: return "the server could not read the query (FORMERR)";
    case 2: return "server failure (SERVFAIL)";
    case 4: return "the server does not do such queries (NOTIMP)";
    case 5: return "the server refused the query (REFUSED)";
    default: return "the server answered an error code";
    }
}

torii_dns_result_t torii_dns_parse(const uint8_t *msg, size_t n, uint16_t id, const char *name, uint16_t qtype,
                                   torii_dns_answer_t *ans, const char **why)
{
    char qname[256];
    record_t rr[MAX_RECORDS];
    size_t pos, nrr;
    uint16_t flags;
    bool tc;
    memset(ans, 0, sizeof *ans);
    *why = "not an answer to the query";
    if (n < HEADER || get16(msg) != id)
        return TORII_DNS_IGNORE;
    flags = get16(msg + 2);
    if (!(flags & F_QR) || (flags & F_OPCODE) || get16(msg + 4) != 1)
        return TORII_DNS_IGNORE;
    if (!torii_dns_read_name(msg, n, HEADER, qname, sizeof qname, &pos) || pos + 4 > n || !same_name(qname, name) ||
        get16(msg + pos) != qtype || get16(msg + pos + 2) != CLASS_IN)
        return TORII_DNS_IGNORE;
    pos += 4;
    tc = flags & F_TC;
    if ((flags & F_RCODE) == 3) {
        *why = "name not found (NXDOMAIN)";
        return TORII_DNS_NXDOMAIN;
    }
    if (flags & F_RCODE) {
        *why = rcode_text(flags & F_RCODE);
        return TORII_DNS_FAILED;
    }
    if (!read_records(msg, n, pos, get16(msg + 6), tc, rr, MAX_RECORDS, &nrr)) {
        *why = "malformed answer";
        return TORII_DNS_FAILED;
    }
    torii_dns_result_t rc = follow(msg, n, rr, nrr, name, qtype, ans, why);
    if (rc == TORII_DNS_NODATA && tc) {
        /* The records we need may be past the cut. */
        *why = "answer truncated (TC) without a complete address; TCP is not used";
        return TORII_DNS_TRUNCATED;
    }
    return rc;
}
