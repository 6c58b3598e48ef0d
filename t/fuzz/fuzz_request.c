/*
 * fuzz_request.c — libFuzzer target for request parsing: the head scanner,
 * the strict head parser with its framing rules, and the chunked decoder.
 *
 * Besides "no crash, no sanitizer report", it checks invariants: every
 * slice lies inside the input, a head that parsed has exactly one body
 * framing, and the chunked decoder gives the same bytes and the same
 * verdict whether the input arrives whole or one byte at a time.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "http/chunked.h"
#include "http/framing.h"
#include "http/head.h"

#define MAXH 64

static void check_slice(torii_str_t s, const char *buf, size_t len)
{
    if (s.n == 0 || (s.n == 1 && s.p[0] == '/'))
        return; /* "http://host" has the static path "/" */
    assert(s.p >= buf && s.p + s.n <= buf + len);
}

static void check_head(const torii_http_head_t *h, const char *buf, size_t len)
{
    check_slice(h->method_name, buf, len);
    check_slice(h->target, buf, len);
    check_slice(h->path, buf, len);
    check_slice(h->query, buf, len);
    check_slice(h->authority, buf, len);
    check_slice(h->origin, buf, len);
    /* '?': an absolute-form target with an empty path ("http://a?q"), sent
     * upstream as "/?q" */
    assert(h->origin.n > 0 && (h->origin.p[0] == '/' || h->origin.p[0] == '*' || h->origin.p[0] == '?'));
    assert(h->path.n > 0 && (h->path.p[0] == '/' || h->path.p[0] == '*'));
    assert(h->nheaders <= h->max_headers);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        check_slice(h->headers[i].name, buf, len);
        check_slice(h->headers[i].value, buf, len);
        assert(h->headers[i].name.n > 0);
    }
    assert(h->f.body != TORII_BODY_CLOSE);
    if (h->f.body == TORII_BODY_LENGTH)
        assert(h->f.content_length > 0 && h->f.content_length <= TORII_MAX_CONTENT_LENGTH);
    assert(!(h->f.upgrade && h->f.body != TORII_BODY_NONE));
}

/* Decode with pieces of `step` bytes; returns the verdict. */
static int decode(const char *in, size_t len, size_t step, char *out, size_t *outlen, size_t *end)
{
    torii_chunked_t c;
    size_t pos = 0;
    torii_chunked_init(&c);
    *outlen = 0;
    while (pos < len) {
        size_t avail = len - pos < step ? len - pos : step, used;
        torii_str_t data;
        const char *why;
        int rc;
        /* feed the same window until it is used up */
        size_t window_end = pos + avail;
        while (pos < window_end) {
            rc = torii_chunked_decode(&c, in + pos, window_end - pos, &used, &data, &why);
            assert(used <= window_end - pos);
            memcpy(out + *outlen, data.p, data.n);
            *outlen += data.n;
            pos += used;
            if (rc == TORII_DONE) {
                *end = pos;
                return rc;
            }
            if (rc == TORII_ERROR)
                return rc;
            if (rc == TORII_AGAIN)
                break;
        }
    }
    return TORII_AGAIN;
}

static void fuzz_chunked(const char *in, size_t len)
{
    char *a = malloc(len + 1), *b = malloc(len + 1);
    size_t alen, blen, aend = 0, bend = 0;
    int ra = decode(in, len, len ? len : 1, a, &alen, &aend);
    int rb = decode(in, len, 1, b, &blen, &bend);
    assert(ra == rb);
    if (ra != TORII_ERROR) {
        assert(alen == blen && memcmp(a, b, alen) == 0);
        assert(alen <= len);
    }
    if (ra == TORII_DONE)
        assert(aend == bend);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    torii_header_t slots[MAXH];
    torii_http_head_t h = {.headers = slots, .max_headers = MAXH};
    size_t scanned = 0;
    uint32_t head_len = 0;
    int status = 0;
    const char *why = NULL;
    int rc = torii_head_find_end(buf, size, 8192, &scanned, &head_len, &status, &why);
    if (rc == TORII_ERROR) {
        assert(why && status >= 400 && status < 600);
    } else if (rc == TORII_OK) {
        assert(head_len <= size);
        if (torii_request_head_parse(buf, head_len, &h, &status, &why) == TORII_OK)
            check_head(&h, buf, head_len);
        else
            assert(why && status >= 400 && status < 600);
        fuzz_chunked(buf + head_len, size - head_len);
    } else {
        fuzz_chunked(buf, size);
    }
    return 0;
}
