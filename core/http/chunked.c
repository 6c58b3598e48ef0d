/* chunked.c — strict chunked-body decoder. */
#include "base/common.h"
#include "http/chunked.h"

#define MAX_CHUNK (1ULL << 62) /* as for Content-Length */

enum {
    S_SIZE_FIRST, /* first hex digit of a size */
    S_SIZE,       /* more hex digits, or what follows them */
    S_SIZE_WS,    /* blanks after the size: only ';' may follow */
    S_EXT,        /* chunk extension up to CR */
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TRAILER_START, /* start of a trailer line, or the final CRLF */
    S_TRAILER,       /* inside a trailer line */
    S_TRAILER_LF,
    S_END_LF,
    S_DONE,
};

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static bool is_ctl(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

static int fail(const char **reason, const char *why)
{
    *reason = why;
    return TORII_ERROR;
}

/* One byte of framing (everything but chunk data). */
static int step(torii_chunked_t *c, unsigned char ch, const char **reason)
{
    int v;
    switch (c->state) {
    case S_SIZE_FIRST:
    case S_SIZE:
        if ((v = hexval(ch)) >= 0) {
            if (c->size > (MAX_CHUNK >> 4))
                return fail(reason, "chunk size too large");
            c->size = (c->size << 4) | (uint64_t)v;
            c->state = S_SIZE;
        } else if (c->state == S_SIZE_FIRST) {
            return fail(reason, "invalid chunk size");
        } else if (ch == '\r') {
            c->state = S_SIZE_LF;
        } else if (ch == ';') {
            c->state = S_EXT;
        } else if (ch == ' ' || ch == '\t') {
            c->state = S_SIZE_WS;
        } else {
            return fail(reason, "invalid chunk size");
        }
        break;
    case S_SIZE_WS:
        if (ch == ';')
            c->state = S_EXT;
        else if (ch != ' ' && ch != '\t')
            return fail(reason, "invalid chunk size line");
        break;
    case S_EXT:
        if (ch == '\r')
            c->state = S_SIZE_LF;
        else if (is_ctl(ch))
            return fail(reason, "invalid byte in chunk extension");
        break;
    case S_SIZE_LF:
        if (ch != '\n')
            return fail(reason, "chunk size line not ended by CRLF");
        c->line = 0;
        c->state = c->size > 0 ? S_DATA : S_TRAILER_START;
        break;
    case S_DATA_CR:
        if (ch != '\r')
            return fail(reason, "chunk data not followed by CRLF");
        c->state = S_DATA_LF;
        break;
    case S_DATA_LF:
        if (ch != '\n')
            return fail(reason, "chunk data not followed by CRLF");
        c->state = S_SIZE_FIRST;
        break;
    case S_TRAILER_START:
        if (ch == '\r') {
            c->state = S_END_LF;
            break;
        }
        if (ch == ' ' || ch == '\t' || ch == ':' || is_ctl(ch))
            return fail(reason, "invalid trailer field");
        c->state = S_TRAILER;
        break;
    case S_TRAILER:
        if (ch == '\r')
            c->state = S_TRAILER_LF;
        else if (is_ctl(ch))
            return fail(reason, "invalid byte in trailer field");
        break;
    case S_TRAILER_LF:
        if (ch != '\n')
            return fail(reason, "trailer field not ended by CRLF");
        c->line = 0;
        c->state = S_TRAILER_START;
        break;
    case S_END_LF:
        if (ch != '\n')
            return fail(reason, "chunked body not ended by CRLF");
        c->state = S_DONE;
        break;
    }
    if (c->state == S_SIZE || c->state == S_SIZE_WS || c->state == S_EXT) {
        if (++c->line > TORII_CHUNK_LINE_MAX)
            return fail(reason, "chunk size line too long");
    }
    if (c->state == S_TRAILER || c->state == S_TRAILER_LF || c->state == S_END_LF) {
        if (++c->trailer > TORII_CHUNK_TRAILER_MAX)
            return fail(reason, "trailer section too large");
    }
    return TORII_OK;
}

int torii_chunked_decode(torii_chunked_t *c, const char *in, size_t len, size_t *consumed, torii_str_t *data,
                         const char **reason)
{
    size_t i = 0;
    *data = torii_str(in, 0);
    while (i < len) {
        if (c->state == S_DATA) {
            size_t n = len - i < c->size ? len - i : (size_t)c->size;
            *data = torii_str(in + i, n);
            c->size -= n;
            if (c->size == 0)
                c->state = S_DATA_CR;
            *consumed = i + n;
            return TORII_OK;
        }
        if (step(c, (unsigned char)in[i++], reason) != TORII_OK) {
            *consumed = i;
            return TORII_ERROR;
        }
        if (c->state == S_DONE) {
            *consumed = i;
            return TORII_DONE;
        }
    }
    *consumed = i;
    return TORII_AGAIN;
}
