/* addr.c — socket addresses. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/addr.h"

static bool parse_port(const char *s, uint16_t *port)
{
    char *end;
    long v;
    if (*s < '0' || *s > '9')
        return false;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

bool torii_addr_split(const char *spec, char *host, size_t hostlen, uint16_t *port, bool port_only_ok, const char **why)
{
    const char *colon;
    size_t hlen;
    *why = "expected host:port";
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return false;
        hlen = (size_t)(close - spec - 1);
        if (hlen == 0 || hlen >= hostlen)
            return false;
        memcpy(host, spec + 1, hlen);
        host[hlen] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon) {
            if (!port_only_ok)
                return false;
            host[0] = '\0';
            *why = "port must be 1..65535";
            return parse_port(spec, port);
        }
        hlen = (size_t)(colon - spec);
        if (hlen >= hostlen || memchr(spec, ':', hlen))
            return false; /* a bare IPv6 address needs brackets */
        memcpy(host, spec, hlen);
        host[hlen] = '\0';
        if (strcmp(host, "*") == 0)
            host[0] = '\0';
    }
    *why = "port must be 1..65535";
    return parse_port(colon + 1, port);
}

bool torii_addr_resolve(const char *host, uint16_t port, torii_addr_t *out, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    int rc;
    if (host[0] == '\0') {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
        memset(out, 0, sizeof *out);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        out->len = sizeof *sin;
        return true;
    }
    /* Literals need no lookup: a table of 10,000 routes with IP nodes
     * loads without 10,000 trips through getaddrinfo. */
    if (torii_addr_literal(host, strlen(host), port, out))
        return true;
    snprintf(portstr, sizeof portstr, "%u", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return false;
    }
    memset(out, 0, sizeof *out);
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

bool torii_addr_literal(const char *host, size_t n, uint16_t port, torii_addr_t *out)
{
    char text[INET6_ADDRSTRLEN + 2];
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof text || memchr(host, '\0', n))
        return false;
    memcpy(text, host, n);
    text[n] = '\0';
    if (strcasecmp(text, "localhost") == 0)
        strcpy(text, "127.0.0.1");
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out->len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out->len = sizeof *v6;
        return true;
    }
    return false;
}

void torii_addr_format_ip(const struct sockaddr *sa, char *out, size_t outlen)
{
    if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
    else if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    else
        snprintf(out, outlen, "unix");
}

void torii_addr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    torii_addr_format_ip(sa, ip, sizeof ip);
    if (sa->sa_family == AF_INET6)
        snprintf(out, outlen, "[%s]:%u", ip, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    else if (sa->sa_family == AF_INET)
        snprintf(out, outlen, "%s:%u", ip, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    else
        snprintf(out, outlen, "%s", ip);
}

void torii_addr_to16(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

bool torii_addr_equal(const torii_addr_t *a, const torii_addr_t *b)
{
    return a->len == b->len && memcmp(&a->sa, &b->sa, a->len) == 0;
}
