/*
 * mock_upstream.c - scriptable HTTP/1.1 upstream for torii's integration
 * tests, the `make run` demo and benchmarks.
 *
 *   mock-upstream --listen HOST:PORT [--id NAME] [--idle-close MS] [--status N] [--delay MS] [--quiet]
 *
 * HOST is an IPv4 address or [v6]. Single process, one libev loop, never
 * blocks. Keep-alive (HTTP/1.0 only with "Connection: keep-alive"),
 * pipelining (answered in order), Content-Length and chunked request bodies,
 * 100-continue (sent for any HTTP/1.1 request announcing a body with
 * "Expect: 100-continue"). Malformed requests get 400 and a close. Every
 * response carries "X-Upstream-Id: NAME".
 *
 * --status N answers every request but /__stats with status N ("a node
 * that fails"); --delay MS holds every answer but /__stats that long.
 *
 * Paths (query arguments after '?'):
 *   /bench                  200 "hello, world\n" (prebuilt, fast path)
 *   /echo, anything else    200 JSON describing the request (see build_echo)
 *   /status/NNN[?body=0]    status NNN, body "status NNN\n"; none for 1xx/204/304
 *   /delay/MS               echo after MS milliseconds
 *   /stream?chunks=&size=&interval=  chunked, N chunks of B letters every MS
 *   /big?size=N[&chunked=1] N pattern bytes, generated as the socket drains
 *   /noframe?size=N         close-delimited body of N pattern bytes
 *   /truncate?size=N&send=M Content-Length N but only M bytes, then close
 *   /close, /reset          read the request, then FIN / RST, no response
 *   /garbage                non-HTTP bytes, then close
 *   /dup-cl, /cl-te         responses with conflicting framing headers
 *   /headers?name=X&value=Y echo plus response header "X: Y" (repeatable)
 *   /continue               100 Continue (always) before reading the body
 *   /early-hints            103 Early Hints, then echo
 *   /ws                     101 + raw byte echo (426 without Upgrade headers)
 *   /slowread?rate=BPS      reads the body at most rate/10 bytes per 100 ms
 *   /keepalive-close?after=MS  echo, then close the idle connection MS later
 *   /__stats                connection and request counters
 * The pattern is byte i = 'a' + i % 26. HTTP/1.0 clients never get chunked
 * responses: /big falls back to Content-Length, /stream to close-delimited.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK   (64 * 1024)   /* one recv() */
#define READ_MIN     (16 * 1024)   /* free space ensured before appending */
#define HIGH_WATER   (64 * 1024)   /* output buffered before we stop producing */
#define MAX_HEAD     (64 * 1024)   /* request line + headers */
#define MAX_LINE     4096          /* chunk-size and trailer lines */
#define BODY_KEEP    (1024 * 1024) /* bodies up to this are echoed */
#define BIG_CHUNK    (16 * 1024)   /* chunk size of /big?chunked=1 */
#define KEEP_CAP     (16 * 1024)   /* larger empty buffers are released */
#define PATTERN_LEN  (26 * 2600)   /* > HIGH_WATER + 26: one memcpy per fill */
#define LINGER_SECS  2.0
#define DRIVE_ROUNDS 16 /* fairness: ~1 MiB per callback at most */

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define LIT(s)    s, sizeof(s) - 1

static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char EARLY_HINTS_103[] = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
static const char GARBAGE[] = "HELLO THIS IS NOT HTTP\r\n\r\n";
static const char BENCH_BODY[] = "hello, world\n";

static char scratch[READ_CHUNK]; /* shared by all reads; see in_borrow() */
static char pattern[PATTERN_LEN];
static bool tchar[256];

/* ------------------------------------------------------------------ */
/* Byte buffers                                                        */

struct buf {
    char *data;
    size_t off, len, cap; /* pending bytes are data[off..len) */
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fputs("mock-upstream: out of memory\n", stderr);
        abort();
    }
    return q;
}

static size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}
static char *buf_head(const struct buf *b)
{
    return b->data + b->off;
}

/* Room for n more bytes at the tail, reclaiming consumed space first. */
static char *buf_reserve(struct buf *b, size_t n)
{
    if (b->off > 0 && b->cap - b->len < n) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), p, n);
    b->len += n;
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

static void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void buf_clear(struct buf *b)
{
    b->off = b->len = 0;
}

/* Big empty buffers are dropped so thousands of idle connections stay cheap. */
static void buf_trim(struct buf *b)
{
    if (buf_pending(b) == 0 && b->cap > KEEP_CAP)
        buf_free(b);
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = 128;
    va_start(ap, fmt);
    int n = vsnprintf(buf_reserve(b, room), room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        va_start(ap, fmt);
        vsnprintf(buf_reserve(b, (size_t)n + 1), (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* JSON string literal; bytes >= 0x80 are passed through unchanged. */
static void json_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *d = buf_reserve(b, n * 6 + 2);
    size_t k = 0;
    d[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            d[k++] = '\\';
            d[k++] = (char)ch;
        } else if (ch < 0x20) {
            memcpy(d + k, "\\u00", 4);
            k += 4;
            d[k++] = hex[ch >> 4];
            d[k++] = hex[ch & 15];
        } else {
            d[k++] = (char)ch;
        }
    }
    d[k++] = '"';
    b->len += k;
}

/* ------------------------------------------------------------------ */
/* Server and connection state                                         */

enum state {
    ST_HEAD,    /* waiting for / parsing a request head */
    ST_BODY,    /* reading the request body */
    ST_WAIT,    /* request read, response delayed by the timer */
    ST_SEND,    /* response body being generated as the socket drains */
    ST_WS,      /* upgraded: raw echo */
    ST_CLOSING, /* flush output, then close (or reset) */
    ST_LINGER,  /* write side shut down, discarding input until EOF */
};

enum framing { FR_NONE, FR_LENGTH, FR_CHUNKED };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

enum route {
    R_ECHO,
    R_BENCH,
    R_STATUS,
    R_DELAY,
    R_STREAM,
    R_BIG,
    R_NOFRAME,
    R_TRUNCATE,
    R_CLOSE,
    R_RESET,
    R_GARBAGE,
    R_DUP_CL,
    R_CL_TE,
    R_HEADERS,
    R_CONTINUE,
    R_EARLY_HINTS,
    R_WS,
    R_SLOWREAD,
    R_KA_CLOSE,
    R_STATS,
};

enum gen_kind { G_RAW, G_CHUNKED, G_STREAM };

struct hdr {
    uint32_t name, name_len, value, value_len; /* offsets into conn.head */
};

struct request {
    size_t method_len; /* the method starts at offset 0 of conn.head */
    size_t target_off, target_len;
    size_t path_off, path_len, query_off, query_len;
    size_t arg_off, arg_len; /* NNN of /status/NNN, MS of /delay/MS */
    int minor;               /* HTTP/1.minor */
    size_t nhdrs;
    enum framing framing;
    uint64_t body_left, body_length, chunks;
    enum chunk_state ch_state;
    uint64_t ch_left;
    bool keep_alive, is_head, expect_continue, conn_upgrade, upgrade_ws;
    enum route route;
};

struct gen {
    enum gen_kind kind;
    bool chunked;  /* frame segments as chunks */
    bool in_chunk; /* a chunk's trailing CRLF is still due */
    bool tick;     /* G_STREAM: the next chunk may be sent now */
    bool waiting;  /* G_STREAM: waiting for the interval timer */
    bool done;
    uint64_t seg_left;    /* pattern bytes left in the current segment */
    uint64_t pos;         /* pattern position */
    uint64_t total_left;  /* G_CHUNKED: bytes not yet put in a chunk */
    uint64_t chunks_left; /* G_STREAM */
    uint64_t chunk_size;
    double interval;
};

struct server;

struct conn {
    struct server *srv;
    struct conn *prev, *next;
    int fd, remote_port;
    uint64_t serial, nreq;
    ev_io rio, wio;
    ev_timer timer;      /* delay, stream interval, slowread pacing, linger */
    ev_timer idle_timer; /* --idle-close and /keepalive-close */
    enum state state;
    struct buf in, in_own, out, head, body;
    size_t scan_off; /* head-end search resumes here */
    struct hdr *hdrs;
    size_t hdrs_cap;
    struct request req;
    struct gen gen;
    uint64_t slow_rate, slow_budget;
    bool in_borrowed, peer_eof, dead, more;
    bool doomed;       /* close once the current exchange is over */
    bool forced_close; /* idle_timer runs regardless of activity */
    bool close_after, reset_after;
};

struct server {
    struct ev_loop *loop;
    int lfd;
    ev_io lio;
    ev_timer accept_retry;
    ev_signal sigterm, sigint;
    const char *id;
    double idle_close;  /* seconds, 0 = off */
    int force_status;   /* --status: every answer (0: off) */
    double force_delay; /* --delay: seconds before every answer */
    bool quiet;
    bool accept_paused; /* out of descriptors, retrying on a timer */
    struct conn *conns;
    uint64_t conns_total, conns_open, requests_total;
    struct buf json;  /* echo body under construction */
    struct buf bench; /* prebuilt keep-alive /bench response */
    size_t bench_head_len;
};

static void conn_drive(struct conn *c);
static void finish_response(struct conn *c);

static void timer_start(struct ev_loop *loop, ev_timer *t, double secs)
{
    ev_timer_stop(loop, t);
    ev_timer_set(t, secs, 0.);
    ev_timer_start(loop, t);
}

/* ------------------------------------------------------------------ */
/* Small parsing helpers                                               */

static bool ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Next comma-separated element of a header value, trimmed. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *len)
{
    const char *s = *p;
    while (s < end && (*s == ',' || *s == ' ' || *s == '\t'))
        s++;
    if (s >= end)
        return false;
    const char *e = memchr(s, ',', (size_t)(end - s));
    if (!e)
        e = end;
    *p = e;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *tok = s;
    *len = (size_t)(e - s);
    return true;
}

/* Next "key=value" pair of a query string (value empty without '='). */
static bool query_next(const char **p, const char *end, const char **k, size_t *kl, const char **v, size_t *vl)
{
    while (*p < end && **p == '&')
        (*p)++;
    if (*p >= end)
        return false;
    const char *s = *p, *e = memchr(s, '&', (size_t)(end - s));
    if (!e)
        e = end;
    const char *eq = memchr(s, '=', (size_t)(e - s));
    *k = s;
    *kl = (size_t)((eq ? eq : e) - s);
    *v = eq ? eq + 1 : e;
    *vl = (size_t)(e - *v);
    *p = e;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* %XX decoding; malformed escapes are kept literally. */
static void pct_decode(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = -1, lo = -1;
        if (s[i] == '%' && i + 2 < n) {
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
        }
        if (hi >= 0 && lo >= 0) {
            char ch = (char)(hi * 16 + lo);
            buf_append(b, &ch, 1);
            i += 2;
        } else {
            buf_append(b, s + i, 1);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Request head                                                        */

/* Length of the head (through its blank line) or 0 if not complete yet.
 * Bare LF line ends are accepted; *scan avoids rescanning slow heads. */
static size_t find_head_end(const char *p, size_t n, size_t *scan)
{
    size_t i = *scan;
    const char *nl;
    while (i < n && (nl = memchr(p + i, '\n', n - i))) {
        size_t pos = (size_t)(nl - p);
        if (pos >= 1 && p[pos - 1] == '\n')
            return pos + 1;
        if (pos >= 2 && p[pos - 1] == '\r' && p[pos - 2] == '\n')
            return pos + 1;
        i = pos + 1;
    }
    *scan = n;
    return 0;
}

static const char *line_end(const char *p, const char *eol)
{
    return eol > p && eol[-1] == '\r' ? eol - 1 : eol;
}

static const char *parse_request_line(struct conn *c, const char *p, const char *e)
{
    struct request *r = &c->req;
    const char *sp1 = memchr(p, ' ', (size_t)(e - p));
    if (!sp1 || sp1 == p)
        return "bad request line\n";
    for (const char *q = p; q < sp1; q++)
        if (!tchar[(unsigned char)*q])
            return "bad method\n";
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(e - t));
    if (!sp2 || sp2 == t)
        return "bad request line\n";
    for (const char *q = t; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return "bad request target\n";
    const char *v = sp2 + 1;
    if (e - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9')
        return "unsupported protocol version\n";
    r->method_len = (size_t)(sp1 - p);
    r->target_off = (size_t)(t - c->head.data);
    r->target_len = (size_t)(sp2 - t);
    r->minor = v[7] - '0';
    return NULL;
}

static void hdr_push(struct conn *c, const char *name, size_t nlen, const char *val, size_t vlen)
{
    if (c->req.nhdrs == c->hdrs_cap) {
        c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
        c->hdrs = xrealloc(c->hdrs, c->hdrs_cap * sizeof *c->hdrs);
    }
    struct hdr *h = &c->hdrs[c->req.nhdrs++];
    h->name = (uint32_t)(name - c->head.data);
    h->name_len = (uint32_t)nlen;
    h->value = (uint32_t)(val - c->head.data);
    h->value_len = (uint32_t)vlen;
}

static const char *parse_header_line(struct conn *c, const char *p, const char *e)
{
    if (*p == ' ' || *p == '\t')
        return "obsolete header line folding\n";
    const char *colon = memchr(p, ':', (size_t)(e - p));
    if (!colon || colon == p)
        return "bad header line\n";
    for (const char *q = p; q < colon; q++)
        if (!tchar[(unsigned char)*q])
            return "bad header name\n";
    const char *v = colon + 1, *ve = e;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    for (const char *q = v; q < ve; q++)
        if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
            return "bad header value\n";
    hdr_push(c, p, (size_t)(colon - p), v, (size_t)(ve - v));
    return NULL;
}

/* Content-Length may be a list ("5, 5"); all values must agree. */
static bool parse_content_length(const char *v, size_t n, bool *seen, uint64_t *cl)
{
    const char *p = v, *end = v + n, *tok;
    size_t len;
    bool any = false;
    while (next_token(&p, end, &tok, &len)) {
        uint64_t x;
        if (!parse_u64(tok, len, &x) || x > (UINT64_MAX >> 2) || (*seen && x != *cl))
            return false;
        *cl = x;
        *seen = any = true;
    }
    return any;
}

/* "chunked" must be the last coding and appear only once. */
static bool parse_transfer_encoding(const char *v, size_t n, bool *chunked)
{
    const char *p = v, *end = v + n, *tok;
    size_t len;
    while (next_token(&p, end, &tok, &len)) {
        if (*chunked)
            return false;
        *chunked = ieq(tok, len, "chunked");
    }
    return true;
}

static void parse_connection(struct request *r, const char *v, size_t n, bool *close, bool *keepalive)
{
    const char *p = v, *end = v + n, *tok;
    size_t len;
    while (next_token(&p, end, &tok, &len)) {
        *close |= ieq(tok, len, "close");
        *keepalive |= ieq(tok, len, "keep-alive");
        r->conn_upgrade |= ieq(tok, len, "upgrade");
    }
}

static bool has_websocket(const char *v, size_t n)
{
    const char *p = v, *end = v + n, *tok;
    size_t len;
    while (next_token(&p, end, &tok, &len))
        if (len >= 9 && strncasecmp(tok, "websocket", 9) == 0 && (len == 9 || tok[9] == '/'))
            return true;
    return false;
}

/* Derives framing and connection handling from the header list. */
static const char *interpret_headers(struct conn *c)
{
    struct request *r = &c->req;
    bool has_cl = false, has_te = false, chunked = false, close = false, ka = false;
    uint64_t cl = 0;
    for (size_t i = 0; i < r->nhdrs; i++) {
        const char *n = c->head.data + c->hdrs[i].name, *v = c->head.data + c->hdrs[i].value;
        size_t nl = c->hdrs[i].name_len, vl = c->hdrs[i].value_len;
        if (ieq(n, nl, "content-length") && !parse_content_length(v, vl, &has_cl, &cl))
            return "bad content-length\n";
        if (ieq(n, nl, "transfer-encoding")) {
            has_te = true;
            if (!parse_transfer_encoding(v, vl, &chunked))
                return "bad transfer-encoding\n";
        }
        if (ieq(n, nl, "connection"))
            parse_connection(r, v, vl, &close, &ka);
        if (ieq(n, nl, "expect") && ieq(v, vl, "100-continue"))
            r->expect_continue = true;
        if (ieq(n, nl, "upgrade") && has_websocket(v, vl))
            r->upgrade_ws = true;
    }
    if (has_te && has_cl)
        return "both content-length and transfer-encoding\n";
    if (has_te && !chunked)
        return "transfer-encoding does not end in chunked\n";
    r->framing = has_te ? FR_CHUNKED : has_cl ? FR_LENGTH : FR_NONE;
    r->body_left = cl;
    r->keep_alive = !close && (r->minor >= 1 || ka);
    return NULL;
}

/* Splits the target into path and query; absolute-form is reduced to its path. */
static void split_target(struct request *r, const char *head)
{
    const char *t = head + r->target_off, *end = t + r->target_len, *p = t;
    const char *scheme = memmem(t, r->target_len, "://", 3);
    if (*t != '/' && scheme) {
        p = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
        if (!p)
            p = end;
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    r->path_off = (size_t)(p - head);
    r->path_len = (size_t)((q ? q : end) - p);
    r->query_off = q ? (size_t)(q + 1 - head) : 0;
    r->query_len = q ? (size_t)(end - q - 1) : 0;
}

/* Returns NULL on success or the reason for a 400. */
static const char *parse_head(struct conn *c)
{
    const char *p = c->head.data, *end = p + c->head.len;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *err = parse_request_line(c, p, line_end(p, eol));
    if (err)
        return err;
    for (p = eol + 1;; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = line_end(p, eol);
        if (le == p)
            break; /* the blank line */
        if ((err = parse_header_line(c, p, le)))
            return err;
    }
    split_target(&c->req, c->head.data);
    return interpret_headers(c);
}

#define ROUTE(p, r)                                                                                                    \
    {                                                                                                                  \
        p, sizeof(p) - 1, r                                                                                            \
    }
static const struct {
    const char *path;
    size_t len;
    enum route route;
} routes[] = {
    ROUTE("/bench", R_BENCH),
    ROUTE("/echo", R_ECHO),
    ROUTE("/stream", R_STREAM),
    ROUTE("/big", R_BIG),
    ROUTE("/noframe", R_NOFRAME),
    ROUTE("/truncate", R_TRUNCATE),
    ROUTE("/close", R_CLOSE),
    ROUTE("/reset", R_RESET),
    ROUTE("/garbage", R_GARBAGE),
    ROUTE("/dup-cl", R_DUP_CL),
    ROUTE("/cl-te", R_CL_TE),
    ROUTE("/headers", R_HEADERS),
    ROUTE("/continue", R_CONTINUE),
    ROUTE("/early-hints", R_EARLY_HINTS),
    ROUTE("/ws", R_WS),
    ROUTE("/slowread", R_SLOWREAD),
    ROUTE("/keepalive-close", R_KA_CLOSE),
    ROUTE("/__stats", R_STATS),
};

static bool route_prefix(struct request *r, const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (r->path_len <= n || memcmp(path, prefix, n) != 0)
        return false;
    r->arg_off = r->path_off + n;
    r->arg_len = r->path_len - n;
    return true;
}

static enum route route_of(struct conn *c)
{
    struct request *r = &c->req;
    const char *path = c->head.data + r->path_off;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].len == r->path_len && memcmp(routes[i].path, path, r->path_len) == 0)
            return routes[i].route;
    if (route_prefix(r, path, "/status/"))
        return R_STATUS;
    if (route_prefix(r, path, "/delay/"))
        return R_DELAY;
    return R_ECHO;
}

/* First value of a query parameter (raw, not decoded). */
static bool query_find(const struct conn *c, const char *key, const char **v, size_t *vl)
{
    const char *p = c->head.data + c->req.query_off, *end = p + c->req.query_len, *k;
    size_t kl;
    while (c->req.query_len && query_next(&p, end, &k, &kl, v, vl))
        if (kl == strlen(key) && memcmp(k, key, kl) == 0)
            return true;
    return false;
}

/* Numeric query parameter, def when absent; false when malformed. */
static bool query_u64(const struct conn *c, const char *key, uint64_t def, uint64_t *out)
{
    const char *v;
    size_t vl;
    *out = def;
    return !query_find(c, key, &v, &vl) || parse_u64(v, vl, out);
}

/* ------------------------------------------------------------------ */
/* Request body                                                        */

/* /slowread paces the consumption of body bytes (not just socket reads) so
 * that bytes that arrived together with the head are throttled too. */
static size_t body_allowance(const struct conn *c, size_t n)
{
    return c->slow_rate ? (size_t)MIN((uint64_t)n, c->slow_budget) : n;
}

/* Counts every body byte; keeps them only while the echo will include them. */
static void body_store(struct conn *c, const char *p, size_t n)
{
    if (c->slow_rate && !(c->slow_budget -= n)) /* quantum used up: pause */
        timer_start(c->srv->loop, &c->timer, 0.1);
    c->req.body_length += n;
    if (c->req.body_length <= BODY_KEEP)
        buf_append(&c->body, p, n);
    else if (c->body.cap)
        buf_free(&c->body);
}

/* Content-Length (or absent) body: 1 when complete, 0 when more is needed. */
static int body_by_length(struct conn *c)
{
    size_t n = body_allowance(c, (size_t)MIN((uint64_t)buf_pending(&c->in), c->req.body_left));
    body_store(c, buf_head(&c->in), n);
    buf_consume(&c->in, n);
    c->req.body_left -= n;
    return c->req.body_left == 0;
}

/* Length of the next input line without its line end; -1 if incomplete. */
static ssize_t in_line(struct conn *c, size_t *consumed)
{
    const char *p = buf_head(&c->in);
    const char *nl = memchr(p, '\n', buf_pending(&c->in));
    if (!nl)
        return -1;
    *consumed = (size_t)(nl - p) + 1;
    return line_end(p, nl) - p;
}

/* "HEX[ext]" chunk-size line: returns false if malformed. */
static bool parse_chunk_size(const char *p, size_t n, uint64_t *size)
{
    size_t i = 0;
    uint64_t v = 0;
    for (; i < n && hexval(p[i]) >= 0; i++) {
        if (v >> 59)
            return false;
        v = v * 16 + (uint64_t)hexval(p[i]);
    }
    if (i == 0)
        return false;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    *size = v;
    return i == n || p[i] == ';';
}

/* One step of the chunked decoder: 1 done, 0 need input, -1 malformed, 2 go on. */
static int chunked_step(struct conn *c)
{
    struct request *r = &c->req;
    size_t used = 0, n;
    ssize_t len;
    switch (r->ch_state) {
    case CH_SIZE:
    case CH_TRAILER:
        if ((len = in_line(c, &used)) < 0)
            return buf_pending(&c->in) > MAX_LINE ? -1 : 0;
        if (r->ch_state == CH_TRAILER) {
            buf_consume(&c->in, used); /* trailer fields are ignored */
            return len == 0 ? 1 : 2;
        }
        if (!parse_chunk_size(buf_head(&c->in), (size_t)len, &r->ch_left))
            return -1;
        buf_consume(&c->in, used);
        r->chunks += r->ch_left > 0;
        r->ch_state = r->ch_left ? CH_DATA : CH_TRAILER;
        return 2;
    case CH_DATA:
        if (!(n = body_allowance(c, (size_t)MIN((uint64_t)buf_pending(&c->in), r->ch_left))))
            return 0;
        body_store(c, buf_head(&c->in), n);
        buf_consume(&c->in, n);
        if (!(r->ch_left -= n))
            r->ch_state = CH_DATA_END;
        return 2;
    case CH_DATA_END:
        if ((len = in_line(c, &used)) < 0)
            return buf_pending(&c->in) > 2 ? -1 : 0;
        if (len != 0)
            return -1;
        buf_consume(&c->in, used);
        r->ch_state = CH_SIZE;
        return 2;
    }
    return -1;
}

static int body_chunked(struct conn *c)
{
    int rc;
    while ((rc = chunked_step(c)) == 2)
        ;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Response building blocks                                            */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static bool resp_closes(const struct conn *c)
{
    return c->close_after || c->reset_after || c->doomed || !c->req.keep_alive;
}

static void resp_start(struct conn *c, int status)
{
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nX-Upstream-Id: %s\r\n", status, reason(status), c->srv->id);
}

/* Content-Length (when has_len), connection disposition, blank line. */
static void resp_end(struct conn *c, bool has_len, uint64_t len)
{
    if (has_len)
        buf_printf(&c->out, "Content-Length: %" PRIu64 "\r\n", len);
    if (resp_closes(c))
        buf_append(&c->out, LIT("Connection: close\r\n"));
    else if (c->req.minor == 0) /* HTTP/1.0 keep-alive must be confirmed */
        buf_append(&c->out, LIT("Connection: keep-alive\r\n"));
    buf_append(&c->out, LIT("\r\n"));
}

static void respond_body(struct conn *c, int status, const char *ctype, const char *body, size_t len)
{
    resp_start(c, status);
    buf_printf(&c->out, "Content-Type: %s\r\n", ctype);
    resp_end(c, true, len);
    if (!c->req.is_head)
        buf_append(&c->out, body, len);
}

static void respond_text(struct conn *c, int status, const char *body)
{
    respond_body(c, status, "text/plain", body, strlen(body));
}

/* 400 for a parameter error: the request was fully read, keep-alive is fine. */
static void respond_bad_param(struct conn *c, const char *msg)
{
    respond_text(c, 400, msg);
    finish_response(c);
}

/* Framing errors: answer and close, the stream cannot be trusted any more. */
static void fail_request(struct conn *c, int status, const char *msg)
{
    c->close_after = true;
    respond_text(c, status, msg);
    finish_response(c);
}

/* The echo document, see the header comment of the task. */
static void build_echo(const struct conn *c, struct buf *j)
{
    static const char *framing[] = {"none", "content-length", "chunked"};
    const struct request *r = &c->req;
    const char *h = c->head.data;
    buf_puts(j, "{\"id\": ");
    json_str(j, c->srv->id, strlen(c->srv->id));
    buf_printf(j,
               ", \"conn\": %" PRIu64 ", \"conn_requests\": %" PRIu64 ", \"remote_port\": %d, \"method\": ", c->serial,
               c->nreq, c->remote_port);
    json_str(j, h, r->method_len);
    buf_puts(j, ", \"target\": ");
    json_str(j, h + r->target_off, r->target_len);
    buf_printf(j, ", \"version\": \"1.%d\", \"headers\": [", r->minor);
    for (size_t i = 0; i < r->nhdrs; i++) {
        buf_puts(j, i ? ", [" : "[");
        json_str(j, h + c->hdrs[i].name, c->hdrs[i].name_len);
        buf_puts(j, ",");
        json_str(j, h + c->hdrs[i].value, c->hdrs[i].value_len);
        buf_puts(j, "]");
    }
    buf_puts(j, "], \"raw_head\": ");
    json_str(j, h, c->head.len);
    buf_printf(j, ", \"framing\": \"%s\", \"chunks\": %" PRIu64 ", \"body_length\": %" PRIu64, framing[r->framing],
               r->chunks, r->body_length);
    if (r->body_length <= BODY_KEEP) {
        buf_puts(j, ", \"body\": ");
        json_str(j, c->body.data ? c->body.data : "", buf_pending(&c->body));
    }
    buf_puts(j, "}\n");
}

/* Sends the echo document; extra holds preformatted header lines or NULL. */
static void respond_echo(struct conn *c, const struct buf *extra)
{
    struct buf *j = &c->srv->json;
    buf_clear(j);
    build_echo(c, j);
    resp_start(c, 200);
    if (extra)
        buf_append(&c->out, extra->data, extra->len);
    buf_append(&c->out, LIT("Content-Type: application/json\r\n"));
    resp_end(c, true, j->len);
    if (!c->req.is_head)
        buf_append(&c->out, j->data, j->len);
    if (j->cap > 2 * BODY_KEEP) /* keep RSS small after huge echoes */
        buf_free(j);
}

/* "name=X&value=Y" pairs of the query, as header lines; false if unsafe. */
static bool query_headers(const struct conn *c, struct buf *out)
{
    const char *p = c->head.data + c->req.query_off, *end = p + c->req.query_len, *k, *v;
    size_t kl, vl;
    struct buf name = {0};
    bool ok = true;
    while (ok && c->req.query_len && query_next(&p, end, &k, &kl, &v, &vl)) {
        if (kl == 4 && memcmp(k, "name", 4) == 0) {
            buf_clear(&name);
            pct_decode(&name, v, vl);
            for (size_t i = 0; i < name.len; i++)
                ok &= tchar[(unsigned char)name.data[i]];
            ok &= name.len > 0;
        } else if (kl == 5 && memcmp(k, "value", 5) == 0 && name.len) {
            buf_append(out, name.data, name.len);
            buf_append(out, LIT(": "));
            size_t start = out->len;
            pct_decode(out, v, vl);
            /* CR, LF or NUL would break the response framing itself */
            for (size_t i = start; i < out->len; i++)
                ok &= out->data[i] != '\r' && out->data[i] != '\n' && out->data[i] != '\0';
            buf_append(out, LIT("\r\n"));
        }
    }
    buf_free(&name);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Generated bodies (/big, /noframe, /truncate, /stream)               */

static void emit_pattern(struct conn *c, size_t n)
{
    struct gen *g = &c->gen;
    char *d = buf_reserve(&c->out, n);
    for (size_t done = 0; done < n;) {
        size_t off = (size_t)(g->pos % 26), k = MIN(n - done, PATTERN_LEN - off);
        memcpy(d + done, pattern + off, k);
        done += k;
        g->pos += k;
    }
    c->out.len += n;
    g->seg_left -= n;
}

static void open_segment(struct conn *c, uint64_t n)
{
    if (c->gen.chunked) {
        buf_printf(&c->out, "%" PRIx64 "\r\n", n);
        c->gen.in_chunk = true;
    }
    c->gen.seg_left = n;
}

static void gen_finish(struct conn *c)
{
    if (c->gen.chunked)
        buf_append(&c->out, LIT("0\r\n\r\n"));
    c->gen.done = true;
}

/* Starts the next segment, or marks the body done / waiting for the timer. */
static void gen_next(struct conn *c)
{
    struct gen *g = &c->gen;
    if (g->kind == G_RAW) {
        g->done = true;
    } else if (g->kind == G_CHUNKED) {
        uint64_t n = MIN((uint64_t)BIG_CHUNK, g->total_left);
        g->total_left -= n;
        if (n)
            open_segment(c, n);
        else
            gen_finish(c);
    } else if (g->chunks_left == 0) {
        gen_finish(c);
    } else if (g->tick) {
        g->tick = false;
        g->chunks_left--;
        open_segment(c, g->chunk_size);
    } else {
        g->waiting = true;
        timer_start(c->srv->loop, &c->timer, g->interval);
    }
}

/* Produces body bytes up to the high-water mark; true when all are out. */
static bool gen_fill(struct conn *c)
{
    struct gen *g = &c->gen;
    while (!g->done && !g->waiting && buf_pending(&c->out) < HIGH_WATER) {
        if (g->seg_left > 0) {
            size_t room = HIGH_WATER - buf_pending(&c->out);
            emit_pattern(c, (size_t)MIN(g->seg_left, (uint64_t)room));
            continue;
        }
        if (g->in_chunk) {
            buf_append(&c->out, LIT("\r\n"));
            g->in_chunk = false;
        }
        gen_next(c);
    }
    return g->done;
}

/* Headers are already queued; HEAD responses end here. */
static void gen_start(struct conn *c, enum gen_kind kind, bool chunked, uint64_t seg)
{
    memset(&c->gen, 0, sizeof c->gen);
    c->gen.kind = kind;
    c->gen.chunked = chunked;
    c->gen.seg_left = seg;
    if (c->req.is_head)
        finish_response(c);
    else
        c->state = ST_SEND;
}

/* ------------------------------------------------------------------ */
/* Route handlers (called once the request body has been read)         */

static void respond_bench(struct conn *c)
{
    struct server *s = c->srv;
    if (!resp_closes(c) && c->req.minor >= 1)
        buf_append(&c->out, s->bench.data, c->req.is_head ? s->bench_head_len : s->bench.len);
    else
        respond_body(c, 200, "text/plain", BENCH_BODY, sizeof BENCH_BODY - 1);
    finish_response(c);
}

static void respond_status(struct conn *c)
{
    uint64_t code, body;
    char text[32];
    if (c->req.arg_len != 3 || !parse_u64(c->head.data + c->req.arg_off, 3, &code) || code < 100 || code > 599 ||
        code == 101) {
        respond_bad_param(c, "bad status code\n");
        return;
    }
    if (!query_u64(c, "body", 1, &body)) {
        respond_bad_param(c, "bad body parameter\n");
        return;
    }
    resp_start(c, (int)code);
    if (code < 200 || code == 204 || code == 304) {
        resp_end(c, false, 0);
    } else {
        int n = body ? snprintf(text, sizeof text, "status %d\n", (int)code) : 0;
        buf_append(&c->out, LIT("Content-Type: text/plain\r\n"));
        resp_end(c, true, (uint64_t)n);
        if (!c->req.is_head)
            buf_append(&c->out, text, (size_t)n);
    }
    finish_response(c);
}

static void respond_delay(struct conn *c)
{
    uint64_t ms;
    if (!parse_u64(c->head.data + c->req.arg_off, c->req.arg_len, &ms)) {
        respond_bad_param(c, "bad delay\n");
        return;
    }
    c->state = ST_WAIT; /* on_timer answers */
    timer_start(c->srv->loop, &c->timer, (double)ms / 1000.);
}

static void respond_stream(struct conn *c)
{
    uint64_t n, size, ms;
    if (!query_u64(c, "chunks", 5, &n) || !query_u64(c, "size", 10, &size) || !query_u64(c, "interval", 100, &ms) ||
        size == 0) {
        respond_bad_param(c, "bad stream parameters\n");
        return;
    }
    bool chunked = c->req.minor >= 1;
    c->close_after |= !chunked; /* HTTP/1.0: close-delimited instead */
    resp_start(c, 200);
    buf_append(&c->out, LIT("Content-Type: text/plain\r\n"));
    if (chunked)
        buf_append(&c->out, LIT("Transfer-Encoding: chunked\r\n"));
    resp_end(c, false, 0);
    gen_start(c, G_STREAM, chunked, 0);
    c->gen.chunks_left = n;
    c->gen.chunk_size = size;
    c->gen.interval = (double)ms / 1000.;
    c->gen.tick = true; /* the first chunk goes out immediately */
}

static void respond_big(struct conn *c)
{
    uint64_t size, chunked;
    if (!query_u64(c, "size", 1024, &size) || !query_u64(c, "chunked", 0, &chunked)) {
        respond_bad_param(c, "bad size\n");
        return;
    }
    chunked = chunked && c->req.minor >= 1; /* HTTP/1.0 gets Content-Length */
    resp_start(c, 200);
    buf_append(&c->out, LIT("Content-Type: text/plain\r\n"));
    if (chunked)
        buf_append(&c->out, LIT("Transfer-Encoding: chunked\r\n"));
    resp_end(c, !chunked, size);
    gen_start(c, chunked ? G_CHUNKED : G_RAW, chunked, chunked ? 0 : size);
    c->gen.total_left = chunked ? size : 0;
}

/* /noframe and /truncate: raw pattern bytes, then close. */
static void respond_unframed(struct conn *c, bool truncate)
{
    uint64_t size, send;
    if (!query_u64(c, "size", 1024, &size) || !query_u64(c, "send", size / 2, &send)) {
        respond_bad_param(c, "bad size\n");
        return;
    }
    c->close_after = true;
    resp_start(c, 200);
    buf_append(&c->out, LIT("Content-Type: text/plain\r\n"));
    resp_end(c, truncate, size);
    gen_start(c, G_RAW, false, truncate ? MIN(send, size) : size);
}

static void respond_dup_cl(struct conn *c)
{
    resp_start(c, 200);
    buf_append(&c->out, LIT("Content-Length: 2\r\nContent-Length: 2\r\n"));
    resp_end(c, false, 0);
    if (!c->req.is_head)
        buf_append(&c->out, LIT("ok"));
    finish_response(c);
}

static void respond_cl_te(struct conn *c)
{
    c->close_after = true; /* framing is ambiguous: never reuse */
    resp_start(c, 200);
    buf_append(&c->out, LIT("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n"));
    resp_end(c, false, 0);
    if (!c->req.is_head)
        buf_append(&c->out, LIT("2\r\nok\r\n0\r\n\r\n"));
    finish_response(c);
}

static void respond_headers(struct conn *c)
{
    struct buf extra = {0};
    if (query_headers(c, &extra)) {
        respond_echo(c, &extra);
        finish_response(c);
    } else {
        respond_bad_param(c, "bad header name or value\n");
    }
    buf_free(&extra);
}

static void respond_ws(struct conn *c)
{
    if (!c->req.upgrade_ws || !c->req.conn_upgrade) {
        resp_start(c, 426);
        buf_append(&c->out, LIT("Upgrade: websocket\r\nContent-Type: text/plain\r\n"));
        resp_end(c, true, 27);
        if (!c->req.is_head)
            buf_append(&c->out, LIT("websocket upgrade required\n"));
        finish_response(c);
        return;
    }
    buf_printf(&c->out,
               "HTTP/1.1 101 Switching Protocols\r\nX-Upstream-Id: %s\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
               c->srv->id);
    c->state = ST_WS;
}

static void respond_ka_close(struct conn *c)
{
    uint64_t ms;
    if (!query_u64(c, "after", 50, &ms)) {
        respond_bad_param(c, "bad after\n");
        return;
    }
    respond_echo(c, NULL);
    c->forced_close = true;
    timer_start(c->srv->loop, &c->idle_timer, (double)ms / 1000.);
    finish_response(c);
}

static void respond_stats(struct conn *c)
{
    struct server *s = c->srv;
    char text[160];
    int n = snprintf(text, sizeof text,
                     "{\"connections_total\": %" PRIu64 ", \"connections_open\": %" PRIu64
                     ", \"requests_total\": %" PRIu64 "}\n",
                     s->conns_total, s->conns_open, s->requests_total);
    respond_body(c, 200, "application/json", text, (size_t)n);
    finish_response(c);
}

static void respond_closing(struct conn *c, bool reset, bool garbage)
{
    if (garbage)
        buf_append(&c->out, GARBAGE, sizeof GARBAGE - 1);
    c->close_after = true;
    c->reset_after = reset;
    finish_response(c);
}

/* --status: this node fails whatever is asked. */
static void respond_forced(struct conn *c)
{
    int code = c->srv->force_status, n;
    char text[32];
    n = snprintf(text, sizeof text, "status %d\n", code);
    resp_start(c, code);
    buf_append(&c->out, LIT("Content-Type: text/plain\r\n"));
    resp_end(c, true, (uint64_t)n);
    if (!c->req.is_head)
        buf_append(&c->out, text, (size_t)n);
    finish_response(c);
}

static void respond(struct conn *c)
{
    if (c->req.route != R_STATS && c->srv->force_delay > 0 && c->state != ST_WAIT) {
        c->state = ST_WAIT; /* on_timer answers */
        timer_start(c->srv->loop, &c->timer, c->srv->force_delay);
        return;
    }
    if (c->req.route != R_STATS && c->srv->force_status) {
        respond_forced(c);
        return;
    }
    switch (c->req.route) {
    case R_BENCH: respond_bench(c); return;
    case R_STATUS: respond_status(c); return;
    case R_DELAY: respond_delay(c); return;
    case R_STREAM: respond_stream(c); return;
    case R_BIG: respond_big(c); return;
    case R_NOFRAME: respond_unframed(c, false); return;
    case R_TRUNCATE: respond_unframed(c, true); return;
    case R_CLOSE: respond_closing(c, false, false); return;
    case R_RESET: respond_closing(c, true, false); return;
    case R_GARBAGE: respond_closing(c, false, true); return;
    case R_DUP_CL: respond_dup_cl(c); return;
    case R_CL_TE: respond_cl_te(c); return;
    case R_HEADERS: respond_headers(c); return;
    case R_WS: respond_ws(c); return;
    case R_KA_CLOSE: respond_ka_close(c); return;
    case R_STATS: respond_stats(c); return;
    case R_EARLY_HINTS: buf_append(&c->out, EARLY_HINTS_103, sizeof EARLY_HINTS_103 - 1); break;
    case R_ECHO:
    case R_CONTINUE:
    case R_SLOWREAD: break;
    }
    respond_echo(c, NULL);
    finish_response(c);
}

/* ------------------------------------------------------------------ */
/* Connection state machine                                            */

static void req_reset(struct conn *c)
{
    memset(&c->req, 0, sizeof c->req);
    memset(&c->gen, 0, sizeof c->gen);
    buf_clear(&c->body);
    buf_trim(&c->body);
    buf_clear(&c->head);
    buf_trim(&c->head);
    if (c->hdrs_cap > 256) {
        free(c->hdrs);
        c->hdrs = NULL;
        c->hdrs_cap = 0;
    }
}

static uint64_t slow_quantum(const struct conn *c)
{
    return c->slow_rate >= 10 ? c->slow_rate / 10 : 1;
}

static void end_slowread(struct conn *c)
{
    if (c->slow_rate)
        ev_timer_stop(c->srv->loop, &c->timer);
    c->slow_rate = c->slow_budget = 0;
}

/* The whole response is queued: next request, or close once flushed. */
static void finish_response(struct conn *c)
{
    bool close = resp_closes(c);
    c->close_after |= close;
    end_slowread(c); /* a failed /slowread body ends here too */
    req_reset(c);
    c->state = close ? ST_CLOSING : ST_HEAD;
}

/* Work that must happen before the body is read. */
static void begin_request(struct conn *c)
{
    struct request *r = &c->req;
    c->srv->requests_total++;
    c->nreq++;
    r->is_head = r->method_len == 4 && memcmp(c->head.data, "HEAD", 4) == 0;
    r->route = route_of(c);
    bool body = r->framing == FR_CHUNKED || r->body_left > 0;
    if (r->route == R_CONTINUE || (r->expect_continue && body && r->minor >= 1))
        buf_append(&c->out, CONTINUE_100, sizeof CONTINUE_100 - 1);
    if (r->route == R_SLOWREAD) {
        uint64_t rate;
        if (!query_u64(c, "rate", 1024, &rate) || rate == 0) {
            fail_request(c, 400, "bad rate\n");
            return;
        }
        c->slow_rate = rate;
        c->slow_budget = slow_quantum(c);
    }
    c->state = ST_BODY;
}

static void skip_leading_newlines(struct conn *c)
{
    /* RFC 9112 2.2: ignore empty lines before a request line */
    while (c->scan_off == 0 && buf_pending(&c->in) && (*buf_head(&c->in) == '\r' || *buf_head(&c->in) == '\n'))
        buf_consume(&c->in, 1);
}

static bool step_head(struct conn *c)
{
    if (buf_pending(&c->out) >= HIGH_WATER)
        return false; /* pipelining back-pressure: let the client read first */
    skip_leading_newlines(c);
    size_t avail = buf_pending(&c->in);
    if (avail == 0 && (c->doomed || c->peer_eof)) {
        c->state = ST_CLOSING;
        return true;
    }
    size_t len = find_head_end(buf_head(&c->in), avail, &c->scan_off);
    if (len > MAX_HEAD || (len == 0 && avail > MAX_HEAD)) {
        fail_request(c, 431, "request head too large\n");
        return true;
    }
    if (len == 0) {
        if (c->peer_eof)
            c->state = ST_CLOSING; /* truncated head: nothing to answer */
        return c->peer_eof;
    }
    buf_clear(&c->head);
    buf_append(&c->head, buf_head(&c->in), len);
    buf_consume(&c->in, len);
    c->scan_off = 0;
    const char *err = parse_head(c);
    if (err)
        fail_request(c, 400, err);
    else
        begin_request(c);
    return true;
}

static bool step_body(struct conn *c)
{
    size_t before = buf_pending(&c->in);
    int rc = c->req.framing == FR_CHUNKED ? body_chunked(c) : body_by_length(c);
    if (rc < 0) {
        fail_request(c, 400, "bad chunked body\n");
        return true;
    }
    if (rc == 0) {
        /* with budget left, all that could be decoded was: truly truncated */
        bool truncated = c->peer_eof && !(c->slow_rate && c->slow_budget == 0);
        if (truncated)
            c->state = ST_CLOSING; /* nothing to answer */
        return truncated || buf_pending(&c->in) != before;
    }
    end_slowread(c);
    respond(c);
    return true;
}

static bool step_send(struct conn *c)
{
    if (c->gen.waiting || buf_pending(&c->out) >= HIGH_WATER)
        return false;
    if (gen_fill(c))
        finish_response(c);
    return true;
}

/* Upgraded: everything received is sent back unchanged. */
static bool step_ws(struct conn *c)
{
    size_t n = MIN(buf_pending(&c->in), (size_t)HIGH_WATER);
    if (n && buf_pending(&c->out) < HIGH_WATER) {
        buf_append(&c->out, buf_head(&c->in), n);
        buf_consume(&c->in, n);
        return true;
    }
    if (!n && c->peer_eof) {
        c->state = ST_CLOSING;
        return true;
    }
    return false;
}

/* Once flushed: reset, or half-close and drain the input so that the
 * kernel does not answer unread request bytes with a RST that could
 * destroy the response still in flight. */
static bool step_closing(struct conn *c)
{
    if (buf_pending(&c->out))
        return false;
    if (c->reset_after || c->peer_eof) {
        c->dead = true;
        return true;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = ST_LINGER;
    timer_start(c->srv->loop, &c->timer, LINGER_SECS);
    return true;
}

static bool conn_step(struct conn *c)
{
    switch (c->state) {
    case ST_HEAD: return step_head(c);
    case ST_BODY: return step_body(c);
    case ST_SEND: return step_send(c);
    case ST_WS: return step_ws(c);
    case ST_CLOSING: return step_closing(c);
    case ST_LINGER: buf_clear(&c->in); return false;
    case ST_WAIT: return false;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Socket I/O and watchers                                             */

static size_t conn_flush(struct conn *c)
{
    size_t total = 0;
    while (buf_pending(&c->out)) {
        ssize_t n = send(c->fd, buf_head(&c->out), buf_pending(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            total += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                c->dead = true;
            break;
        }
    }
    buf_trim(&c->out);
    return total;
}

/* Reads into the shared scratch buffer while the connection has no
 * pending input (the common case), avoiding a per-connection read buffer;
 * leftovers are copied into c->in by in_unborrow() before the callback ends. */
static void in_borrow(struct conn *c, size_t n)
{
    c->in_own = c->in;
    c->in = (struct buf){scratch, 0, n, sizeof scratch};
    c->in_borrowed = true;
}

static void in_unborrow(struct conn *c)
{
    struct buf view = c->in;
    c->in = c->in_own;
    memset(&c->in_own, 0, sizeof c->in_own);
    buf_append(&c->in, buf_head(&view), buf_pending(&view));
    buf_trim(&c->in);
    c->in_borrowed = false;
}

static void note_read(struct conn *c)
{
    if (!c->forced_close)
        ev_timer_stop(c->srv->loop, &c->idle_timer); /* restarts when idle again */
}

static void conn_read(struct conn *c)
{
    size_t limit = c->slow_rate ? (size_t)MIN((uint64_t)READ_CHUNK, c->slow_budget) : READ_CHUNK;
    bool borrow = buf_pending(&c->in) == 0;
    char *dst = borrow ? scratch : buf_reserve(&c->in, READ_MIN);
    if (!borrow)
        limit = MIN(limit, c->in.cap - c->in.len);
    if (limit == 0)
        return;
    ssize_t n = recv(c->fd, dst, limit, 0);
    if (n > 0) {
        if (borrow)
            in_borrow(c, (size_t)n);
        else
            c->in.len += (size_t)n;
        note_read(c);
    } else if (n == 0) {
        c->peer_eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->dead = true;
    }
}

static void linger_read(struct conn *c)
{
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        c->dead = true;
}

static bool conn_wants_read(const struct conn *c)
{
    bool room = buf_pending(&c->out) < HIGH_WATER;
    switch (c->state) {
    case ST_HEAD: return !c->peer_eof && room && buf_pending(&c->in) <= MAX_HEAD;
    case ST_BODY: return !c->peer_eof && !(c->slow_rate && c->slow_budget == 0);
    case ST_WS: return !c->peer_eof && room;
    case ST_LINGER: return true;
    default: return false; /* busy answering: pipelined input waits in the kernel */
    }
}

static void io_want(struct ev_loop *loop, ev_io *w, bool on)
{
    if (on && !ev_is_active(w))
        ev_io_start(loop, w);
    else if (!on && ev_is_active(w))
        ev_io_stop(loop, w);
}

/* --idle-close: the timer runs only while nothing at all is going on. */
static void idle_watch(struct conn *c)
{
    struct server *s = c->srv;
    if (s->idle_close <= 0 || c->forced_close)
        return;
    bool idle = c->state == ST_HEAD && !buf_pending(&c->in) && !buf_pending(&c->out) && !c->doomed;
    if (idle && !ev_is_active(&c->idle_timer))
        timer_start(s->loop, &c->idle_timer, s->idle_close);
    else if (!idle)
        ev_timer_stop(s->loop, &c->idle_timer);
}

static void conn_free(struct conn *c)
{
    struct server *s = c->srv;
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->timer);
    ev_timer_stop(s->loop, &c->idle_timer);
    if (c->reset_after) { /* close() then sends RST instead of FIN */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd);
    if (c->in_borrowed)
        in_unborrow(c);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->head);
    buf_free(&c->body);
    free(c->hdrs);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->conns_open--;
    free(c);
}

/* Runs the state machine until it stalls, flushing as it goes. The round
 * limit keeps one fast reader from starving others; c->more then keeps
 * the write watcher on so that we come back on the next loop iteration. */
static void conn_drive(struct conn *c)
{
    c->more = false;
    for (int round = 0; !c->dead; round++) {
        bool progress = false;
        while (!c->dead && conn_step(c))
            progress = true;
        if (c->dead)
            break;
        size_t wrote = conn_flush(c);
        if (c->dead || (!progress && wrote == 0))
            break;
        if (round == DRIVE_ROUNDS) {
            c->more = true;
            break;
        }
    }
    if (c->in_borrowed)
        in_unborrow(c);
    if (c->dead) {
        conn_free(c);
        return;
    }
    io_want(c->srv->loop, &c->rio, conn_wants_read(c));
    io_want(c->srv->loop, &c->wio, buf_pending(&c->out) > 0 || c->more);
    idle_watch(c);
}

/* ------------------------------------------------------------------ */
/* Event callbacks                                                     */

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop, (void)revents;
    if (c->state == ST_LINGER)
        linger_read(c);
    else
        conn_read(c);
    conn_drive(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    conn_drive(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)loop, (void)revents;
    switch (c->state) {
    case ST_WAIT: /* /delay or --delay elapsed */
        if (c->srv->force_status) {
            respond_forced(c);
            break;
        }
        respond_echo(c, NULL);
        finish_response(c);
        break;
    case ST_SEND: /* /stream interval elapsed */
        c->gen.waiting = false;
        c->gen.tick = true;
        break;
    case ST_BODY: /* /slowread: next read quantum */ c->slow_budget = slow_quantum(c); break;
    case ST_LINGER: c->dead = true; break;
    default: break;
    }
    conn_drive(c);
}

/* --idle-close or /keepalive-close: close now if idle, else after the
 * exchange in progress. */
static void on_idle_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)loop, (void)revents;
    c->doomed = true;
    conn_drive(c);
}

static int peer_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static void conn_new(struct server *s, int fd, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    int one = 1; /* responses are written whole; don't let Nagle delay them */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->srv = s;
    c->fd = fd;
    c->remote_port = peer_port(ss);
    c->serial = ++s->conns_total;
    s->conns_open++;
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_init(&c->timer, on_timer);
    ev_init(&c->idle_timer, on_idle_timer);
    c->rio.data = c->wio.data = c->timer.data = c->idle_timer.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    ev_io_start(s->loop, &c->rio);
    idle_watch(c);
}

/* Out of descriptors: stop accepting for a moment instead of spinning. */
static void pause_accept(struct server *s)
{
    s->accept_paused = true; /* warn once per episode, not every 100 ms */
    ev_io_stop(s->loop, &s->lio);
    timer_start(s->loop, &s->accept_retry, 0.1);
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = w->data;
    (void)revents;
    ev_io_start(loop, &s->lio);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *s = w->data;
    (void)loop, (void)revents;
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            s->accept_paused = false; /* a later exhaustion warns again */
            conn_new(s, fd, &ss);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        bool exhausted = errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
        if (errno != EAGAIN && errno != EWOULDBLOCK && !s->quiet && !s->accept_paused)
            fprintf(stderr, "mock-upstream: accept: %s\n", strerror(errno));
        if (exhausted)
            pause_accept(s);
        return;
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* ------------------------------------------------------------------ */
/* Startup                                                             */

static void die(const char *msg, const char *detail)
{
    fprintf(stderr, "mock-upstream: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void usage(void)
{
    die("usage: mock-upstream --listen HOST:PORT [--id NAME] [--idle-close MS] [--status N] [--delay MS] [--quiet]",
        NULL);
}

/* "1.2.3.4:80" or "[::1]:80" */
static socklen_t parse_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *end = spec[0] == '[' ? strchr(spec, ']') : strrchr(spec, ':');
    const char *hs = spec[0] == '[' ? spec + 1 : spec;
    const char *port = end && spec[0] == '[' ? end + 1 : end;
    uint64_t p;
    if (!end || !port || *port != ':' || (size_t)(end - hs) >= sizeof host ||
        !parse_u64(port + 1, strlen(port + 1), &p) || p > 65535)
        die("bad --listen address", spec);
    memcpy(host, hs, (size_t)(end - hs));
    host[end - hs] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (spec[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        return sizeof *v4;
    }
    if (spec[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        return sizeof *v6;
    }
    die("bad --listen address", spec);
    return 0;
}

static int open_listener(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t len = parse_listen(spec, &ss);
    int one = 1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        die("bind", strerror(errno));
    if (listen(fd, 65535) < 0) /* the kernel caps this at somaxconn */
        die("listen", strerror(errno));
    return fd;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void init_tables(void)
{
    for (int ch = 0; ch < 256; ch++)
        tchar[ch] = ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
    for (size_t i = 0; i < PATTERN_LEN; i++)
        pattern[i] = (char)('a' + i % 26);
}

static void build_bench(struct server *s)
{
    buf_printf(&s->bench,
               "HTTP/1.1 200 OK\r\nX-Upstream-Id: %s\r\nContent-Type: text/plain\r\n"
               "Content-Length: %zu\r\n\r\n",
               s->id, sizeof BENCH_BODY - 1);
    s->bench_head_len = s->bench.len;
    buf_append(&s->bench, BENCH_BODY, sizeof BENCH_BODY - 1);
}

static void parse_args(struct server *s, int argc, char **argv, const char **listen_spec)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t ms;
        if (strcmp(a, "--quiet") == 0) {
            s->quiet = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--listen") == 0)
            *listen_spec = v;
        else if (strcmp(a, "--id") == 0)
            s->id = v;
        else if (strcmp(a, "--idle-close") == 0 && parse_u64(v, strlen(v), &ms))
            s->idle_close = (double)ms / 1000.;
        else if (strcmp(a, "--status") == 0 && parse_u64(v, strlen(v), &ms) && ms >= 200 && ms <= 599 && ms != 204 &&
                 ms != 304)
            s->force_status = (int)ms;
        else if (strcmp(a, "--delay") == 0 && parse_u64(v, strlen(v), &ms))
            s->force_delay = (double)ms / 1000.;
        else
            usage();
    }
    if (!*listen_spec)
        usage();
    for (const char *p = s->id; *p; p++) /* it goes into a header verbatim */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            die("--id must not contain control characters", NULL);
}

static void server_cleanup(struct server *s)
{
    while (s->conns)
        conn_free(s->conns);
    ev_io_stop(s->loop, &s->lio);
    ev_timer_stop(s->loop, &s->accept_retry);
    ev_signal_stop(s->loop, &s->sigterm);
    ev_signal_stop(s->loop, &s->sigint);
    close(s->lfd);
    buf_free(&s->json);
    buf_free(&s->bench);
    ev_loop_destroy(s->loop);
}

int main(int argc, char **argv)
{
    struct server s = {.id = "mock"};
    const char *listen_spec = NULL;
    parse_args(&s, argc, argv, &listen_spec);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    init_tables();
    s.lfd = open_listener(listen_spec);
    s.loop = ev_default_loop(EVFLAG_AUTO);
    if (!s.loop)
        die("cannot initialise libev", NULL);
    build_bench(&s);
    ev_io_init(&s.lio, on_accept, s.lfd, EV_READ);
    ev_init(&s.accept_retry, on_accept_retry);
    ev_signal_init(&s.sigterm, on_signal, SIGTERM);
    ev_signal_init(&s.sigint, on_signal, SIGINT);
    s.lio.data = s.accept_retry.data = &s;
    ev_io_start(s.loop, &s.lio);
    ev_signal_start(s.loop, &s.sigterm);
    ev_signal_start(s.loop, &s.sigint);
    ev_run(s.loop, 0);
    server_cleanup(&s);
    return 0;
}
