/* dns_sys.c — /etc/hosts and /etc/resolv.conf (see dns_sys.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event/dns_sys.h"

#define MAX_FILE (1 << 20) /* larger "small files" are not read */

/* The next whitespace-separated word of line[*pos..end), or false. */
static bool word(const char *line, size_t end, size_t *pos, const char **w, size_t *n)
{
    size_t i = *pos;
    while (i < end && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i >= end)
        return false;
    *w = line + i;
    while (i < end && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
        i++;
    *n = (size_t)(line + i - *w);
    *pos = i;
    return true;
}

/* Where the line at text[start] ends, its comment left out; *next: the
 * start of the following line. */
static size_t line_end(const char *text, size_t start, size_t *next)
{
    size_t end = start + strcspn(text + start, "\n");
    const char *hash = memchr(text + start, '#', end - start);
    *next = text[end] ? end + 1 : end;
    return hash ? (size_t)(hash - text) : end;
}

static bool parse_ip(const char *w, size_t n, torii_dns_ip_t *ip)
{
    char buf[64];
    if (n >= sizeof buf)
        return false;
    memcpy(buf, w, n);
    buf[n] = '\0';
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, buf, ip->ip) == 1)
        ip->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, ip->ip) == 1)
        ip->family = AF_INET6;
    return ip->family != 0;
}

size_t torii_dns_hosts_find(const char *text, const char *name, torii_dns_ip_t *out, size_t cap)
{
    size_t nlen = strlen(name), found = 0;
    if (nlen && name[nlen - 1] == '.')
        nlen--;
    for (size_t start = 0, next; text[start]; start = next) {
        size_t stop = line_end(text, start, &next), pos = start, n;
        const char *w;
        torii_dns_ip_t ip;
        if (!word(text, stop, &pos, &w, &n) || !parse_ip(w, n, &ip))
            continue;
        while (found < cap && word(text, stop, &pos, &w, &n)) {
            if (n && w[n - 1] == '.')
                n--;
            if (n == nlen && strncasecmp(w, name, n) == 0) {
                out[found++] = ip;
                break;
            }
        }
    }
    return found;
}

size_t torii_dns_resolv_nameservers(const char *text, torii_addr_t *out, size_t cap)
{
    size_t found = 0;
    for (size_t start = 0, next; text[start]; start = next) {
        size_t stop = line_end(text, start, &next), pos = start, n;
        const char *w;
        if (found >= cap || !word(text, stop, &pos, &w, &n) || n != 10 || memcmp(w, "nameserver", 10) != 0 ||
            !word(text, stop, &pos, &w, &n))
            continue;
        /* "fe80::1%eth0": a scope is not supported, the line is skipped */
        if (torii_addr_literal(w, n, 53, &out[found]))
            found++;
    }
    return found;
}

char *torii_dns_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text, *small;
    size_t n;
    if (!f)
        return NULL;
    if (!(text = malloc(MAX_FILE + 1)))
        abort();
    n = fread(text, 1, MAX_FILE, f);
    fclose(f);
    text[n] = '\0';
    small = realloc(text, n + 1);
    return small ? small : text;
}
