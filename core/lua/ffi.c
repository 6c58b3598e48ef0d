/* ffi.c — the functions Lua calls (declared in ffi.h and lua/torii/ffi.lua). */
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/pool.h"
#include "http/hdrkind.h"
#include "http/head.h"
#include "lua/ffi.h"
#include "proxy/gen.h"
#include "lua/ffi_state.h"
#include "lua/wait.h"
#include "router/expr.h"
#include "router/path.h"

static torii_request_t *current;
static int current_phase;
static const char *errmsg = "";

void torii_ffi_enter(torii_request_t *r, int phase)
{
    current = r;
    current_phase = phase;
}

void torii_ffi_leave(void)
{
    current = NULL;
    current_phase = 0;
}

int torii_ffi_abi_version(void)
{
    return TORII_FFI_ABI;
}

struct torii_request_s *torii_ffi_request(void)
{
    return current;
}

int torii_ffi_phase(void)
{
    return current_phase;
}

const char *torii_ffi_errmsg(void)
{
    return errmsg;
}

void torii_ffi_set_error(const char *why)
{
    errmsg = why;
}

static int fail(int code, const char *why)
{
    errmsg = why;
    return code;
}

/* A handle kept past its request (in a timer, say) must not be used. */
#define CHECK_REQ(r)                                                                                                   \
    do {                                                                                                               \
        if (!(r) || (r) != current)                                                                                    \
            return fail(TORII_FFI_ERROR, "no request here (a request handle is valid only in its own phases)");        \
    } while (0)

static int out(torii_str_t s, const char **p, size_t *n)
{
    *p = s.p;
    *n = s.n;
    return TORII_FFI_OK;
}

int torii_ffi_req_method(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(r->head.method_name, p, n);
}

int torii_ffi_req_path(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(r->path, p, n);
}

int torii_ffi_req_target(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(r->head.target, p, n);
}

int torii_ffi_req_query(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(r->head.query, p, n);
}

int torii_ffi_req_client(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(torii_str(r->client_ip, strlen(r->client_ip)), p, n);
}

int torii_ffi_req_id(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(torii_str(r->id, strlen(r->id)), p, n);
}

int torii_ffi_req_route(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    return out(torii_str(r->route->id, strlen(r->route->id)), p, n);
}

int torii_ffi_req_header_count(struct torii_request_s *r)
{
    CHECK_REQ(r);
    return (int)r->head.nheaders;
}

int torii_ffi_req_header_at(struct torii_request_s *r, int i, const char **name, size_t *nlen, const char **value,
                            size_t *vlen)
{
    CHECK_REQ(r);
    if (i < 0 || (uint32_t)i >= r->head.nheaders)
        return fail(TORII_FFI_NOT_FOUND, "no such header");
    out(r->head.headers[i].name, name, nlen);
    return out(r->head.headers[i].value, value, vlen);
}

int torii_ffi_req_header(struct torii_request_s *r, const char *name, size_t nlen, const char **value, size_t *vlen)
{
    torii_str_t want = torii_str(name, nlen);
    CHECK_REQ(r);
    for (uint32_t i = 0; i < r->head.nheaders; i++)
        if (torii_str_ieq2(r->head.headers[i].name, want))
            return out(r->head.headers[i].value, value, vlen);
    return fail(TORII_FFI_NOT_FOUND, "no such header");
}

int torii_ffi_req_filter(struct torii_request_s *r, const void *filter)
{
    char host[256];
    const torii_http_head_t *h;
    torii_str_t raw;
    torii_expr_req_t x;
    CHECK_REQ(r);
    h = &r->head;
    raw = h->authority.n   ? h->authority
          : h->f.host >= 0 ? torii_str_trim(h->headers[h->f.host].value)
                           : torii_str("", 0);
    x = (torii_expr_req_t){
        .method = h->method_name,
        .uri = r->path,
        .request_uri = h->target,
        .host = torii_str(host, raw.n <= sizeof host ? torii_host_normalise(raw, host) : 0),
        .query = h->query,
        .headers = h->headers,
        .nheaders = h->nheaders,
        .client = r->client16,
        .client_text = torii_str(r->client_ip, strlen(r->client_ip)),
    };
    return torii_expr_eval(filter, &x) ? 1 : 0;
}

int torii_ffi_req_param(struct torii_request_s *r, const char *name, size_t nlen, const char **value, size_t *vlen)
{
    CHECK_REQ(r);
    for (uint32_t i = 0; i < r->match.nparams; i++) {
        torii_str_t k = r->match.params[i].name;
        if (k.n == nlen && memcmp(k.p, name, nlen) == 0)
            return out(r->match.params[i].value, value, vlen);
    }
    return fail(TORII_FFI_NOT_FOUND, "no such parameter");
}

torii_pool_t *torii_ffi_request_pool(torii_request_t *r)
{
    if (!r->pool)
        r->pool = torii_pool_create(4096);
    return r->pool;
}

/* Header names and values a plugin may write: a token, and no CR/LF/NUL. */
static const char *bad_header(const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (nlen == 0)
        return "empty header name";
    if (!torii_http_token(name, nlen))
        return "invalid character in header name";
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\r' || c == '\n' || c == 0)
            return "CR, LF or NUL in header value";
    }
    return NULL;
}

static void append_edit(torii_request_t *r, torii_hdr_edit_t **list, int op, const char *name, size_t nlen,
                        const char *value, size_t vlen)
{
    torii_pool_t *pool = torii_ffi_request_pool(r);
    torii_hdr_edit_t *e = torii_palloc(pool, sizeof *e), **tail = list;
    e->op = (torii_edit_op_t)op;
    e->name = torii_str(torii_pstrndup(pool, name, nlen), nlen);
    e->value = torii_str(torii_pstrndup(pool, value ? value : "", vlen), vlen);
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
}

int torii_ffi_up_header(struct torii_request_s *r, int op, const char *name, size_t nlen, const char *value,
                        size_t vlen)
{
    const char *why;
    CHECK_REQ(r);
    if (current_phase != TORII_PHASE_REWRITE && current_phase != TORII_PHASE_ACCESS)
        return fail(TORII_FFI_BAD_PHASE, "the upstream request can change only in rewrite and access");
    if (op < TORII_EDIT_SET || op > TORII_EDIT_CLEAR)
        return fail(TORII_FFI_ERROR, "bad header operation");
    if ((why = bad_header(name, nlen, value, op == TORII_EDIT_CLEAR ? 0 : vlen)) != NULL)
        return fail(TORII_FFI_ERROR, why);
    if (torii_hdr_kind(torii_str(name, nlen)) != TORII_H_OTHER)
        return fail(TORII_FFI_DECLINED, "framing, hop-by-hop, Host and X-Forwarded-* headers are torii's own");
    append_edit(r, &r->up_edits, op, name, nlen, value, op == TORII_EDIT_CLEAR ? 0 : vlen);
    return TORII_FFI_OK;
}

static int up_phase_check(void)
{
    if (current_phase != TORII_PHASE_REWRITE && current_phase != TORII_PHASE_ACCESS)
        return fail(TORII_FFI_BAD_PHASE, "the upstream request can change only in rewrite and access");
    return TORII_FFI_OK;
}

/* Bytes allowed in a request line's parts: no controls, no spaces. */
static bool line_safe(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
            return false;
    return n > 0;
}

int torii_ffi_up_target(struct torii_request_s *r, const char *p, size_t n)
{
    CHECK_REQ(r);
    if (up_phase_check() != TORII_FFI_OK)
        return TORII_FFI_BAD_PHASE;
    if (!line_safe(p, n) || p[0] != '/')
        return fail(TORII_FFI_ERROR, "the upstream target must start with '/' and hold no space or control byte");
    r->up_target = torii_str(torii_pstrndup(torii_ffi_request_pool(r), p, n), n);
    return TORII_FFI_OK;
}

int torii_ffi_up_get_target(struct torii_request_s *r, const char **p, size_t *n)
{
    CHECK_REQ(r);
    if (r->up_target.n)
        return out(r->up_target, p, n);
    if (r->head.origin.n && r->head.origin.p[0] == '?') { /* "http://h?q": the path is "/" */
        size_t len = r->head.origin.n + 1;
        char *t = torii_palloc(torii_ffi_request_pool(r), len + 1);
        t[0] = '/';
        memcpy(t + 1, r->head.origin.p, r->head.origin.n);
        return out(torii_str(t, len), p, n);
    }
    return out(r->head.origin, p, n);
}

int torii_ffi_up_method(struct torii_request_s *r, const char *p, size_t n)
{
    CHECK_REQ(r);
    if (up_phase_check() != TORII_FFI_OK)
        return TORII_FFI_BAD_PHASE;
    if (n == 0)
        return fail(TORII_FFI_ERROR, "empty method");
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-' || p[i] == '_'))
            return fail(TORII_FFI_ERROR, "a method is upper-case letters");
    r->up_method = torii_str(torii_pstrndup(torii_ffi_request_pool(r), p, n), n);
    return TORII_FFI_OK;
}

int torii_ffi_up_host(struct torii_request_s *r, const char *p, size_t n)
{
    CHECK_REQ(r);
    if (up_phase_check() != TORII_FFI_OK)
        return TORII_FFI_BAD_PHASE;
    if (!line_safe(p, n) || memchr(p, '/', n) || memchr(p, '@', n))
        return fail(TORII_FFI_ERROR, "invalid Host value");
    r->up_host = torii_str(torii_pstrndup(torii_ffi_request_pool(r), p, n), n);
    return TORII_FFI_OK;
}

int torii_ffi_up_upstream(struct torii_request_s *r, const char *id, size_t n)
{
    CHECK_REQ(r);
    if (up_phase_check() != TORII_FFI_OK)
        return TORII_FFI_BAD_PHASE;
    /* In a worker the id is checked and the upstream kept now; torii test
     * has no generation and accepts it as it is. */
    if (r->gen) { /* a failed lookup keeps an earlier plugin's choice */
        const torii_upstream_conf_t *u = torii_gen_upstream(r->gen, id, n);
        if (!u)
            return fail(TORII_FFI_NOT_FOUND, "no upstream with this id in upstreams:");
        r->base_up = u;
    }
    return TORII_FFI_OK;
}

int torii_ffi_up_upstream_inline(struct torii_request_s *r, const void *u)
{
    CHECK_REQ(r);
    if (up_phase_check() != TORII_FFI_OK)
        return TORII_FFI_BAD_PHASE;
    if (r->gen) {
        const torii_upstream_conf_t *up = torii_gen_upstream_inline(r->gen, u);
        if (!up)
            return fail(TORII_FFI_NOT_FOUND, "not an upstream of this configuration");
        r->base_up = up;
    }
    return TORII_FFI_OK;
}

int torii_ffi_req_set_consumer(struct torii_request_s *r, const char *p, size_t n)
{
    CHECK_REQ(r);
    r->consumer = torii_str(torii_pstrndup(torii_ffi_request_pool(r), p, n), n);
    return TORII_FFI_OK;
}

int torii_ffi_resp_header(struct torii_request_s *r, int op, const char *name, size_t nlen, const char *value,
                          size_t vlen)
{
    const char *why;
    CHECK_REQ(r);
    if (current_phase == TORII_PHASE_LOG)
        return fail(TORII_FFI_BAD_PHASE, "the response headers are sent before the log phase");
    if (op < TORII_EDIT_SET || op > TORII_EDIT_CLEAR)
        return fail(TORII_FFI_ERROR, "bad header operation");
    if ((why = bad_header(name, nlen, value, op == TORII_EDIT_CLEAR ? 0 : vlen)) != NULL)
        return fail(TORII_FFI_ERROR, why);
    if (torii_hdr_kind(torii_str(name, nlen)) != TORII_H_OTHER)
        return fail(TORII_FFI_DECLINED, "framing and hop-by-hop headers are torii's own");
    append_edit(r, &r->resp_edits, op, name, nlen, value, op == TORII_EDIT_CLEAR ? 0 : vlen);
    return TORII_FFI_OK;
}

/* A number as Lua's tostring writes it: "%.14g", NaN without a sign.
 * (C rounds exact ties of the 14th digit to even where LuaJIT may not;
 * torii keeps the C locale, so the decimal point is always a dot.) */
static size_t number_text(double v, char *buf, size_t cap)
{
    int n;
    /* Whole numbers of up to 14 digits, the usual case (counters, limits,
     * seconds), come out of "%.14g" as plain digits: write them directly,
     * at a fraction of the cost of glibc's exact float printing. -0 keeps
     * printf's "-0". */
    if (v > -1e14 && v < 1e14 && v == (double)(int64_t)v && !(v == 0 && signbit(v)) && cap >= 16) {
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)-i : (uint64_t)i;
        char tmp[16];
        size_t k = 0, len = 0;
        do {
            tmp[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (i < 0)
            buf[len++] = '-';
        while (k)
            buf[len++] = tmp[--k];
        return len;
    }
    n = isnan(v) ? snprintf(buf, cap, "nan") : snprintf(buf, cap, "%.14g", v);
    return n < 0 ? 0 : (size_t)n;
}

int torii_ffi_resp_header_num(struct torii_request_s *r, int op, const char *name, size_t nlen, double v)
{
    char buf[32];
    return torii_ffi_resp_header(r, op, name, nlen, buf, number_text(v, buf, sizeof buf));
}

int torii_ffi_up_header_num(struct torii_request_s *r, int op, const char *name, size_t nlen, double v)
{
    char buf[32];
    return torii_ffi_up_header(r, op, name, nlen, buf, number_text(v, buf, sizeof buf));
}

int torii_ffi_resp_body_chunk(struct torii_request_s *r, const char **p, size_t *n, int *eof)
{
    CHECK_REQ(r);
    if (current_phase != TORII_PHASE_BODY_FILTER)
        return fail(TORII_FFI_BAD_PHASE, "the body passes only in body_filter");
    *eof = r->bf_eof;
    return out(r->bf_chunk, p, n);
}

int torii_ffi_resp_set_body_chunk(struct torii_request_s *r, const char *p, size_t n)
{
    CHECK_REQ(r);
    if (current_phase != TORII_PHASE_BODY_FILTER)
        return fail(TORII_FFI_BAD_PHASE, "the body can change only in body_filter");
    if (n > r->bf_cap) { /* one buffer per request, reused piece after piece */
        char *bigger = realloc(r->bf_buf, n);
        if (!bigger)
            return fail(TORII_FFI_ERROR, "out of memory");
        r->bf_buf = bigger;
        r->bf_cap = n;
    }
    if (n)
        memcpy(r->bf_buf, p, n);
    r->bf_chunk = torii_str(r->bf_buf, n);
    return TORII_FFI_OK;
}

int torii_ffi_resp_status(struct torii_request_s *r)
{
    CHECK_REQ(r);
    if (current_phase == TORII_PHASE_HEADER_FILTER)
        return r->resp.status;
    if (current_phase == TORII_PHASE_LOG)
        return r->status;
    return fail(TORII_FFI_BAD_PHASE, "the status is known from header_filter on");
}

int torii_ffi_resp_exit(struct torii_request_s *r, int status, const char *body, size_t blen)
{
    CHECK_REQ(r);
    if (current_phase != TORII_PHASE_REWRITE && current_phase != TORII_PHASE_ACCESS)
        return fail(TORII_FFI_BAD_PHASE, "exit is possible only in rewrite and access");
    if (status < 200 || status > 599)
        return fail(TORII_FFI_ERROR, "exit status must be 200..599");
    r->exit_status = status;
    r->exit_body = torii_str(torii_pstrndup(torii_ffi_request_pool(r), body ? body : "", blen), blen);
    return TORII_FFI_OK;
}

int torii_ffi_sleep(struct torii_request_s *r, double ms)
{
    torii_waiter_t w;
    const char *why;
    if (r) /* NULL in a timer callback */
        CHECK_REQ(r);
    if ((why = torii_waiter_current(&w)) != NULL)
        return fail(TORII_FFI_BAD_PHASE, why);
    if (!(ms >= 0) || ms > 86400000.0)
        return fail(TORII_FFI_ERROR, "sleep takes 0 to 86400 seconds");
    torii_waiter_deadline(&w, ms);
    return TORII_FFI_OK;
}

int torii_ffi_log(int level, const char *msg, size_t n)
{
    if (level < TORII_LOG_DEBUG || level > TORII_LOG_EMERG)
        level = TORII_LOG_INFO;
    if (n > 1536)
        n = 1536; /* a log line holds 2048 bytes: keep room for the context after it */
    if (current)
        torii_log(level, "%.*s, route: %s, request_id: %s", (int)n, msg, current->route ? current->route->id : "-",
                  current->id);
    else
        torii_log(level, "%.*s", (int)n, msg);
    return TORII_FFI_OK;
}
