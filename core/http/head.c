/*
 * head.c — finding and parsing message heads, strictly.
 *
 * Every line of a head is checked here (CRLF ends only, no NUL, no
 * obs-fold, header names made of token characters with the colon right
 * after them) and split into slices; http-parser then runs over a request's
 * bytes as a second judge of its request line. If either one
 * objects, the message is rejected.
 */
#include <http_parser.h>
#include <string.h>

#include "base/common.h"
#include "http/framing.h"
#include "http/hdrkind.h"
#include "http/head.h"

/* RFC 9110 tchar: the characters allowed in a header name or a method. */
static const char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
    ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1,  ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1,  ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1,
    ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,  ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,
    ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,  ['z'] = 1,
};

static int fail(int *status, const char **reason, int code, const char *why)
{
    if (status)
        *status = code;
    *reason = why;
    return TORII_ERROR;
}

/* A line's content (CRLF excluded) may hold no CR and no NUL. */
static const char *check_line_bytes(const char *p, size_t n)
{
    if (memchr(p, '\r', n))
        return "bare CR in message head";
    if (memchr(p, '\0', n))
        return "NUL byte in message head";
    return NULL;
}

int torii_head_find_end(const char *buf, size_t len, size_t max_head, size_t *scanned, uint32_t *head_len, int *status,
                        const char **reason)
{
    size_t i = *scanned;
    for (;;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        const char *bad;
        size_t end;
        if (!nl) {
            /* A CR may end the partial line (its LF is on the way). */
            size_t n = len - i;
            if (n > 0 && buf[len - 1] == '\r')
                n--;
            if ((bad = check_line_bytes(buf + i, n)))
                return fail(status, reason, 400, bad);
            *scanned = i;
            if (len > max_head)
                return fail(status, reason, i == 0 ? 414 : 431,
                            i == 0 ? "request line too long" : "request header fields too large");
            return TORII_AGAIN;
        }
        end = (size_t)(nl - buf);
        if (end == i || buf[end - 1] != '\r')
            return fail(status, reason, 400, "bare LF in message head");
        if ((bad = check_line_bytes(buf + i, end - 1 - i)))
            return fail(status, reason, 400, bad);
        if (end + 1 > max_head)
            return fail(status, reason, i == 0 ? 414 : 431,
                        i == 0 ? "request line too long" : "request header fields too large");
        if (end - 1 == i && i > 0) {
            *head_len = (uint32_t)(end + 1);
            return TORII_OK;
        }
        if (end - 1 == i)
            return fail(status, reason, 400, "empty first line");
        i = end + 1;
    }
}

/* Split "Name: value" lines after the first line into h->headers. */
static int split_headers(const char *buf, size_t pos, size_t head_len, torii_http_head_t *h, int *status,
                         const char **reason)
{
    while (pos < head_len - 2) {
        const char *line = buf + pos;
        const char *eol = memchr(line, '\r', head_len - pos);
        size_t n = (size_t)(eol - line), k;
        const char *colon;
        torii_str_t value;
        if (line[0] == ' ' || line[0] == '\t')
            return fail(status, reason, 400, "obsolete line folding in header");
        colon = memchr(line, ':', n);
        if (!colon || colon == line)
            return fail(status, reason, 400, colon ? "empty header name" : "header line without colon");
        for (k = 0; line + k < colon; k++) {
            unsigned char c = (unsigned char)line[k];
            if (!tchar[c])
                return fail(status, reason, 400,
                            (c == ' ' || c == '\t') ? "whitespace before colon in header"
                                                    : "invalid character in header name");
        }
        value = torii_str_trim(torii_str(colon + 1, (size_t)(eol - colon - 1)));
        for (k = 0; k < value.n; k++) {
            unsigned char c = (unsigned char)value.p[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(status, reason, 400, "invalid character in header value");
        }
        if (h->nheaders == h->max_headers)
            return fail(status, reason, 431, "too many header fields");
        h->headers[h->nheaders].name = torii_str(line, (size_t)(colon - line));
        h->headers[h->nheaders].value = value;
        h->headers[h->nheaders].kind = (uint8_t)torii_hdr_kind(h->headers[h->nheaders].name);
        h->nheaders++;
        pos += n + 2;
    }
    return TORII_OK;
}

static bool parse_version(const char *p, size_t n, torii_http_head_t *h)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
        return false;
    if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return false;
    h->major = (uint8_t)(p[5] - '0');
    h->minor = (uint8_t)(p[7] - '0');
    return true;
}

static torii_method_t method_from_parser(unsigned m)
{
    switch (m) {
    case HTTP_GET: return TORII_M_GET;
    case HTTP_HEAD: return TORII_M_HEAD;
    case HTTP_POST: return TORII_M_POST;
    case HTTP_PUT: return TORII_M_PUT;
    case HTTP_DELETE: return TORII_M_DELETE;
    case HTTP_OPTIONS: return TORII_M_OPTIONS;
    case HTTP_TRACE: return TORII_M_TRACE;
    case HTTP_PATCH: return TORII_M_PATCH;
    case HTTP_CONNECT: return TORII_M_CONNECT;
    default: return TORII_M_OTHER;
    }
}

/* METHOD SP request-target SP HTTP-version, nothing more, nothing less. */
static int split_request_line(const char *buf, size_t n, torii_http_head_t *h, int *status, const char **reason)
{
    size_t i = 0, t;
    while (i < n && tchar[(unsigned char)buf[i]])
        i++;
    if (i == 0 || i == n || buf[i] != ' ')
        return fail(status, reason, 400, "malformed request line");
    h->method_name = torii_str(buf, i);
    t = ++i;
    while (i < n && (unsigned char)buf[i] > 0x20 && buf[i] != 0x7f)
        i++;
    if (i == t || i == n || buf[i] != ' ')
        return fail(status, reason, 400, "malformed request line");
    h->target = torii_str(buf + t, i - t);
    if (!parse_version(buf + i + 1, n - i - 1, h))
        return fail(status, reason, 400, "malformed HTTP version");
    if (h->major != 1)
        return fail(status, reason, 505, "HTTP version not supported");
    return TORII_OK;
}

/* Origin-form, absolute-form (http/https) or "*" for OPTIONS. */
static int split_target(torii_http_head_t *h, int *status, const char **reason)
{
    torii_str_t t = h->target;
    const char *q;
    if (t.p[0] != '/') {
        struct http_parser_url u;
        const char *slash;
        if (t.n == 1 && t.p[0] == '*' && h->method == TORII_M_OPTIONS) {
            h->path = h->origin = t;
            h->query = torii_str(t.p + 1, 0);
            return TORII_OK;
        }
        http_parser_url_init(&u);
        if (http_parser_parse_url(t.p, t.n, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
            !(u.field_set & (1 << UF_HOST)))
            return fail(status, reason, 400, "invalid request target");
        if (!torii_str_ieq(torii_str(t.p + u.field_data[UF_SCHEMA].off, u.field_data[UF_SCHEMA].len), "http") &&
            !torii_str_ieq(torii_str(t.p + u.field_data[UF_SCHEMA].off, u.field_data[UF_SCHEMA].len), "https"))
            return fail(status, reason, 400, "invalid request target scheme");
        {
            const char *auth = t.p + u.field_data[UF_SCHEMA].len + 3; /* after "://" */
            const char *end = t.p + t.n;
            slash = auth;
            while (slash < end && *slash != '/' && *slash != '?')
                slash++;
            h->authority = torii_str(auth, (size_t)(slash - auth));
            if (h->authority.n == 0 || memchr(auth, '@', h->authority.n))
                return fail(status, reason, 400, "invalid authority in request target");
            if (slash < end && *slash == '?') {
                /* "http://host?q": the path is "/" (a static slice); the
                 * origin form sent upstream gets its '/' back in forward.c. */
                h->origin = torii_str(slash, (size_t)(end - slash));
                h->path = torii_str("/", 1);
                h->query = torii_str(slash + 1, (size_t)(end - slash - 1));
                return TORII_OK;
            }
            if (slash == end)
                slash = NULL;
        }
        /* "http://host" alone means the path "/" (a static slice). */
        t = slash ? torii_str(slash, (size_t)(t.p + t.n - slash)) : torii_str("/", 1);
    }
    h->origin = t;
    q = memchr(t.p, '?', t.n);
    h->path = torii_str(t.p, q ? (size_t)(q - t.p) : t.n);
    h->query = q ? torii_str(q + 1, (size_t)(t.p + t.n - q - 1)) : torii_str(t.p + t.n, 0);
    return TORII_OK;
}

typedef struct {
    bool done;
} judge_t;

static int judge_headers_complete(http_parser *p)
{
    ((judge_t *)p->data)->done = true;
    return 1; /* no body: the head is all we feed */
}

/* http-parser's verdict on the same head: NULL when it agrees, else why not. */
static const char *parser_objection(const char *buf, size_t len, unsigned *method)
{
    static http_parser_settings settings = {.on_headers_complete = judge_headers_complete};
    http_parser p;
    judge_t j = {false};
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &j;
    http_parser_execute(&p, &settings, buf, len);
    *method = p.method;
    /* Framing errors are ours to report (with better reasons), and an
     * upgrade stops the parser early without error. */
    if (j.done || HTTP_PARSER_ERRNO(&p) == HPE_OK)
        return NULL;
    /* Our own scan accepted the token, so this is a method it does not know. */
    return HTTP_PARSER_ERRNO(&p) == HPE_INVALID_METHOD ? "unknown method" : "malformed request";
}

int torii_request_head_parse(const char *buf, uint32_t head_len, torii_http_head_t *h, int *status, const char **reason)
{
    const char *eol = memchr(buf, '\r', head_len);
    unsigned method;
    const char *objection;
    h->nheaders = 0;
    h->head_len = head_len;
    h->authority = torii_str(buf, 0);
    if (split_request_line(buf, (size_t)(eol - buf), h, status, reason) != TORII_OK)
        return TORII_ERROR;
    if (split_headers(buf, (size_t)(eol - buf) + 2, head_len, h, status, reason) != TORII_OK)
        return TORII_ERROR;
    if (torii_request_framing(h, status, reason) != TORII_OK)
        return TORII_ERROR;
    if ((objection = parser_objection(buf, head_len, &method)) != NULL)
        return fail(status, reason, 400, objection);
    h->method = method_from_parser(method);
    if (h->method == TORII_M_CONNECT)
        return fail(status, reason, 405, "CONNECT is not supported");
    return split_target(h, status, reason);
}

/* HTTP-version SP 3DIGIT [SP reason-phrase] */
static int split_status_line(const char *buf, size_t n, torii_http_head_t *h, const char **reason)
{
    if (n < 12 || !parse_version(buf, 8, h) || buf[8] != ' ' || (n > 12 && buf[12] != ' '))
        return fail(NULL, reason, 502, "malformed status line");
    if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9')
        return fail(NULL, reason, 502, "malformed status code");
    if (h->major != 1)
        return fail(NULL, reason, 502, "unsupported HTTP version");
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    h->reason = n > 13 ? torii_str(buf + 13, n - 13) : torii_str(buf + n, 0);
    for (size_t i = 0; i < h->reason.n; i++) {
        unsigned char c = (unsigned char)h->reason.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(NULL, reason, 502, "malformed reason phrase");
    }
    return TORII_OK;
}

int torii_response_head_parse(const char *buf, uint32_t head_len, torii_method_t req_method, torii_http_head_t *h,
                              const char **reason)
{
    const char *eol = memchr(buf, '\r', head_len);
    int status;
    h->nheaders = 0;
    h->head_len = head_len;
    if (split_status_line(buf, (size_t)(eol - buf), h, reason) != TORII_OK)
        return TORII_ERROR;
    if (split_headers(buf, (size_t)(eol - buf) + 2, head_len, h, &status, reason) != TORII_OK)
        return TORII_ERROR;
    /* No second opinion from http-parser here: the line checks above are
     * stricter than it, and this path runs once per proxied response. */
    return torii_response_framing(h, req_method, reason);
}

int torii_head_find(const torii_http_head_t *h, const char *lower_name)
{
    for (uint32_t i = 0; i < h->nheaders; i++) {
        if (torii_str_ieq(h->headers[i].name, lower_name))
            return (int)i;
    }
    return -1;
}

bool torii_http_token(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)p[i]])
            return false;
    return true;
}
