/*
 * accesslog.c — the access-log line:
 *
 *   127.0.0.1 - - [22/Nov/2026:08:53:24 +0000] "GET /users/7 HTTP/1.1" 200 512
 *   upstream=127.0.0.1:9000 upstream_time=0.001 time=0.002 route=users
 *   request_id=5f0e2a7c00000001
 *
 * (one line). Bytes from the request line are escaped as \xHH where they
 * could forge a line or a field: control bytes, '"', '\' and non-ASCII.
 */
#include <stdio.h>

#include "base/log.h"
#include "proxy/accesslog.h"

#define LINE_REQ_MAX   2048 /* request-line bytes kept (up to 4x once escaped) */
#define LINE_MAX_BYTES (LINE_REQ_MAX * 4 + 1024)

static size_t put_escaped(char *out, size_t room, torii_str_t s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < s.n && i < max && o + 4 < room; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

void torii_access_log(const torii_client_t *c)
{
    const torii_request_t *r = c->req;
    double now = torii_loop_now(c->w->loop);
    char *line, request[LINE_REQ_MAX * 4 + 8], uptime[32];
    size_t rn;
    int n;
    if (!torii_access_log_enabled() || !r)
        return;
    line = torii_access_log_reserve(LINE_MAX_BYTES);
    if (!line)
        return;
    rn = put_escaped(request, sizeof request, r->line, LINE_REQ_MAX);
    if (r->t_upstream > 0)
        snprintf(uptime, sizeof uptime, "%.3f", (r->t_upstream_done > 0 ? r->t_upstream_done : now) - r->t_upstream);
    else
        snprintf(uptime, sizeof uptime, "-");
    n = snprintf(line, LINE_MAX_BYTES,
                 "%s - - [%s] \"%.*s\" %d %llu upstream=%s upstream_time=%s time=%.3f "
                 "route=%s request_id=%s\n",
                 c->ip, torii_log_time_access(), (int)rn, request, r->status, (unsigned long long)r->bytes_sent,
                 r->node && r->up_addr_text[0] ? r->up_addr_text : "-", uptime, r->t_start > 0 ? now - r->t_start : 0.0,
                 r->route ? r->route->id : "-", r->id);
    if (n <= 0)
        return;
    if (n >= LINE_MAX_BYTES) { /* cannot happen with the bounds above; keep the line whole anyway */
        n = LINE_MAX_BYTES - 1;
        line[n - 1] = '\n';
    }
    torii_access_log_commit((size_t)n);
}
