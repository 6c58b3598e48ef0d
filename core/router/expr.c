/*
 * expr.c — route conditions (`vars`): compiled once at load, evaluated per
 * request without allocating.
 *
 * Compilation flattens the expression into one array of terms in prefix
 * order: a group is followed by its members, and every term records the
 * index just past its subtree, so evaluation walks the array and
 * short-circuits by jumping over whole subtrees.
 *
 * Query arguments are percent-decoded while they are read ("cursors"),
 * never into a heap buffer: equality, `in` and `has` compare decoded bytes
 * one at a time, whatever the length. Only a regex needs the decoded value
 * in one piece; it gets a bounded stack buffer (RX_SUBJECT_MAX), and an
 * argument whose decoded value is longer does not match (see rx_match).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "base/cidr.h"
#include "router/expr.h"

#define MAX_DEPTH      32   /* nesting of groups, the top level counting as one */
#define RX_SUBJECT_MAX 8192 /* decoded bytes of an argument a regex can see */
#define NUM_MAX        128  /* longer text is not read as a number */

enum { V_URI, V_REQUEST_URI, V_HOST, V_METHOD, V_REMOTE_ADDR, V_SCHEME, V_HTTP, V_ARG, V_COOKIE };
enum { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_RE, OP_RE_CASELESS, OP_IN, OP_HAS, OP_IPMATCH };
enum { T_COND, T_AND, T_OR };

#define OPERATORS "==, ~=, !=, >, >=, <, <=, ~~, ~*, in, has, ipmatch"

static const struct {
    const char *name;
    uint8_t op;
} operators[] = {
    {"==", OP_EQ}, {"~=", OP_NE}, {"!=", OP_NE},          {">", OP_GT},  {">=", OP_GE},   {"<", OP_LT},
    {"<=", OP_LE}, {"~~", OP_RE}, {"~*", OP_RE_CASELESS}, {"in", OP_IN}, {"has", OP_HAS}, {"ipmatch", OP_IPMATCH},
};

static const struct {
    const char *name;
    uint8_t var;
} fixed_vars[] = {
    {"uri", V_URI},
    {"request_uri", V_REQUEST_URI},
    {"host", V_HOST},
    {"request_method", V_METHOD},
    {"remote_addr", V_REMOTE_ADDR},
    {"scheme", V_SCHEME},
};

static const struct {
    const char *prefix;
    uint8_t var;
    const char *what; /* for "empty ... name" */
} prefixed_vars[] = {
    {"http_", V_HTTP, "header"},
    {"arg_", V_ARG, "argument"},
    {"cookie_", V_COOKIE, "cookie"},
};

typedef struct {
    pcre2_code *code;
    pcre2_match_data *md; /* one per regex: workers are single-threaded */
} rx_t;

/* A value written in the configuration: a string, or a YAML number. */
typedef struct {
    torii_str_t s;
    double num;
    bool is_num;
} konst_t;

typedef struct {
    uint8_t kind; /* T_COND, T_AND, T_OR */
    uint8_t var, op;
    bool neg;         /* "!" of a condition, or a "!AND" / "!OR" group */
    uint32_t end;     /* index just past this term and its members */
    torii_str_t name; /* NAME of http_/arg_/cookie_ (http_: lowercase, '-' for '_') */
    konst_t *vals;    /* ==, ~=, numeric comparisons and has: one; in: the list */
    uint32_t nvals;
    torii_cidr_t *cidrs; /* ipmatch */
    uint32_t ncidrs;
    rx_t *rx; /* ~~, ~* */
} term_t;

struct torii_expr_s {
    term_t *terms;
    uint32_t n;
};

/* ---- reading request values ------------------------------------------- */

/* A variable's value: a slice of the request, percent-decoded as it is
 * read when `dec` (query arguments containing '%' or '+'). */
typedef struct {
    torii_str_t s;
    bool dec;
} val_t;

typedef struct {
    const char *p, *end;
    bool dec;
} cursor_t;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = torii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static cursor_t cursor(torii_str_t s, bool dec)
{
    return (cursor_t){s.p, s.p + s.n, dec};
}

/* Next byte (0..255) of the value, -1 at the end. A '%' not followed by
 * two hex digits stays a literal '%', as browsers and most servers do. */
static int cursor_next(cursor_t *c)
{
    unsigned char ch;
    if (c->p == c->end)
        return -1;
    ch = (unsigned char)*c->p++;
    if (!c->dec)
        return ch;
    if (ch == '+')
        return ' ';
    if (ch == '%' && c->end - c->p >= 2) {
        int hi = hexval(c->p[0]), lo = hexval(c->p[1]);
        if (hi >= 0 && lo >= 0) {
            c->p += 2;
            return hi * 16 + lo;
        }
    }
    return ch;
}

static bool val_eq(const val_t *v, torii_str_t lit)
{
    cursor_t c;
    size_t i = 0;
    int ch;
    if (!v->dec)
        return v->s.n == lit.n && (lit.n == 0 || memcmp(v->s.p, lit.p, lit.n) == 0);
    c = cursor(v->s, true);
    while ((ch = cursor_next(&c)) >= 0) {
        if (i == lit.n || ch != (unsigned char)lit.p[i])
            return false;
        i++;
    }
    return i == lit.n;
}

/*
 * Is `item` an element of the value read as a comma-separated list with
 * spaces and tabs trimmed? Streams over the value; correct because the
 * compiler guarantees the item is non-empty, has no comma and no leading
 * or trailing blank: an element matches iff it is blanks, item, blanks.
 */
static bool val_has(const val_t *v, torii_str_t item)
{
    cursor_t c = cursor(v->s, v->dec);
    int ch = cursor_next(&c);
    for (;;) {
        size_t k = 0;
        bool match;
        while (ch == ' ' || ch == '\t')
            ch = cursor_next(&c);
        while (k < item.n && ch == (unsigned char)item.p[k]) {
            k++;
            ch = cursor_next(&c);
        }
        match = k == item.n;
        while (ch >= 0 && ch != ',') {
            if (ch != ' ' && ch != '\t')
                match = false;
            ch = cursor_next(&c);
        }
        if (match)
            return true;
        if (ch < 0)
            return false;
        ch = cursor_next(&c);
    }
}

/* The value in one piece: the slice itself, or decoded into buf. False if
 * the decoded value does not fit in cap bytes. */
static bool val_flat(const val_t *v, char *buf, size_t cap, torii_str_t *out)
{
    cursor_t c;
    size_t n = 0;
    int ch;
    if (!v->dec) {
        *out = v->s;
        return true;
    }
    c = cursor(v->s, true);
    while ((ch = cursor_next(&c)) >= 0) {
        if (n == cap)
            return false;
        buf[n++] = (char)ch;
    }
    *out = torii_str(buf, n);
    return true;
}

/* Decimal syntax only: [+-] digits [. digits] [e [+-] digits]. No blanks,
 * hex, inf or nan, so that "0x10" or " 5" are strings, not numbers. */
static bool is_decimal(torii_str_t s)
{
    size_t i = 0;
    bool digits = false;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-'))
        i++;
    for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++)
        digits = true;
    if (i < s.n && s.p[i] == '.')
        for (i++; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++)
            digits = true;
    if (!digits)
        return false;
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '+' || s.p[i] == '-'))
            i++;
        if (i == s.n || s.p[i] < '0' || s.p[i] > '9')
            return false;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9')
            i++;
    }
    return i == s.n;
}

static bool val_number(const val_t *v, double *out)
{
    char buf[NUM_MAX];
    torii_str_t s;
    /* One byte kept for the NUL strtod needs. */
    if (!val_flat(v, buf, sizeof buf - 1, &s) || s.n >= sizeof buf || !is_decimal(s))
        return false;
    if (s.p != buf)
        memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

/* Header names compare ignoring case, with '_' and '-' the same. */
static char hdr_fold(char c)
{
    return c == '_' ? '-' : torii_lower(c);
}

static bool find_header(const torii_expr_req_t *r, torii_str_t name, torii_str_t *out)
{
    for (uint32_t i = 0; i < r->nheaders; i++) {
        torii_str_t h = r->headers[i].name;
        size_t k = 0;
        if (h.n != name.n)
            continue;
        while (k < h.n && hdr_fold(h.p[k]) == name.p[k])
            k++;
        if (k == h.n) {
            *out = r->headers[i].value;
            return true;
        }
    }
    return false;
}

/* First `name=value` of the query whose key decodes to name; a key
 * without '=' has the empty value. */
static bool find_arg(torii_str_t q, torii_str_t name, torii_str_t *out)
{
    const char *p = q.p, *end = q.p + q.n;
    if (q.n == 0)
        return false;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        val_t key = {torii_str(p, (size_t)((eq ? eq : stop) - p)), true};
        if (val_eq(&key, name)) {
            *out = eq ? torii_str(eq + 1, (size_t)(stop - eq - 1)) : torii_str(stop, 0);
            return true;
        }
        p = amp ? amp + 1 : end;
    }
    return false;
}

/* First cookie `name` of the Cookie headers, in order ("a=1; b=2"). Pairs
 * without '=' are not cookies and are skipped. */
static bool find_cookie(const torii_expr_req_t *r, torii_str_t name, torii_str_t *out)
{
    for (uint32_t i = 0; i < r->nheaders; i++) {
        torii_str_t v = r->headers[i].value;
        const char *p = v.p, *end = v.p + v.n;
        if (!torii_str_ieq(r->headers[i].name, "cookie") || v.n == 0)
            continue;
        while (p < end) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            if (eq) {
                torii_str_t k = torii_str_trim(torii_str(p, (size_t)(eq - p)));
                if (k.n == name.n && memcmp(k.p, name.p, k.n) == 0) {
                    *out = torii_str_trim(torii_str(eq + 1, (size_t)(stop - eq - 1)));
                    return true;
                }
            }
            p = semi ? semi + 1 : end;
        }
    }
    return false;
}

/* The variable's value; false if the request has no such variable. */
static bool fetch(const term_t *t, const torii_expr_req_t *r, val_t *v)
{
    *v = (val_t){{NULL, 0}, false};
    switch (t->var) {
    case V_URI: v->s = r->uri; break;
    case V_REQUEST_URI: v->s = r->request_uri; break;
    case V_HOST: v->s = r->host; break;
    case V_METHOD: v->s = r->method; break;
    case V_REMOTE_ADDR: v->s = r->client_text; break;
    case V_SCHEME: v->s = TORII_STR("http"); break;
    case V_HTTP:
        if (!find_header(r, t->name, &v->s))
            return false;
        break;
    case V_ARG:
        if (!find_arg(r->query, t->name, &v->s))
            return false;
        /* Values needing no decoding are read as plain slices (no bound). */
        v->dec = memchr(v->s.p, '%', v->s.n) || memchr(v->s.p, '+', v->s.n);
        break;
    case V_COOKIE:
        if (!find_cookie(r, t->name, &v->s))
            return false;
        break;
    }
    if (!v->s.p) /* an unset slice: keep memcmp and pcre2 away from NULL */
        v->s = TORII_STR("");
    return true;
}

/* ---- evaluation -------------------------------------------------------- */

/* Parsed once per condition, and only if a number is compared. */
typedef struct {
    int state; /* 0 not yet parsed, 1 a number, -1 not a number */
    double x;
} lazy_num_t;

static bool lazy_number(const val_t *v, lazy_num_t *ln, double *out)
{
    if (ln->state == 0)
        ln->state = val_number(v, &ln->x) ? 1 : -1;
    *out = ln->x;
    return ln->state == 1;
}

static bool konst_eq(const konst_t *k, const val_t *v, lazy_num_t *ln)
{
    double x;
    if (!k->is_num)
        return val_eq(v, k->s);
    return lazy_number(v, ln, &x) && x == k->num;
}

/*
 * A regex sees the value in one piece. Arguments that need decoding are
 * decoded into a stack buffer; one whose decoded value exceeds it does not
 * match (no heap, and such a value is far past any sane argument).
 */
static bool rx_match(const rx_t *rx, const val_t *v)
{
    char buf[RX_SUBJECT_MAX];
    torii_str_t s;
    if (!val_flat(v, buf, sizeof buf, &s))
        return false;
    return pcre2_match(rx->code, (PCRE2_SPTR)s.p, s.n, 0, 0, rx->md, NULL) >= 0;
}

static bool ip_match(const term_t *t, const torii_expr_req_t *r, const val_t *v)
{
    uint8_t addr[16];
    char buf[64]; /* longer than any address text torii_ip_parse accepts */
    torii_str_t s;
    if (t->var == V_REMOTE_ADDR && r->client)
        return torii_cidr_list_match(t->cidrs, t->ncidrs, r->client);
    if (!val_flat(v, buf, sizeof buf, &s) || !torii_ip_parse(s.p, s.n, addr))
        return false;
    return torii_cidr_list_match(t->cidrs, t->ncidrs, addr);
}

static bool apply(const term_t *t, const torii_expr_req_t *r, const val_t *v)
{
    lazy_num_t ln = {0, 0};
    double x;
    switch (t->op) {
    case OP_EQ: return konst_eq(&t->vals[0], v, &ln);
    case OP_NE: return !konst_eq(&t->vals[0], v, &ln);
    case OP_GT: return lazy_number(v, &ln, &x) && x > t->vals[0].num;
    case OP_GE: return lazy_number(v, &ln, &x) && x >= t->vals[0].num;
    case OP_LT: return lazy_number(v, &ln, &x) && x < t->vals[0].num;
    case OP_LE: return lazy_number(v, &ln, &x) && x <= t->vals[0].num;
    case OP_RE:
    case OP_RE_CASELESS: return rx_match(t->rx, v);
    case OP_IN:
        for (uint32_t i = 0; i < t->nvals; i++) {
            if (konst_eq(&t->vals[i], v, &ln))
                return true;
        }
        return false;
    case OP_HAS: return val_has(v, t->vals[0].s);
    case OP_IPMATCH: return ip_match(t, r, v);
    }
    return false;
}

static bool eval_cond(const term_t *t, const torii_expr_req_t *r)
{
    val_t v;
    /* A missing variable fails every test but "is not equal to". */
    bool ok = fetch(t, r, &v) ? apply(t, r, &v) : t->op == OP_NE;
    return ok != t->neg;
}

static bool eval_at(const torii_expr_t *e, uint32_t i, const torii_expr_req_t *r)
{
    const term_t *t = &e->terms[i];
    bool all = t->kind == T_AND, res = all;
    if (t->kind == T_COND)
        return eval_cond(t, r);
    /* AND: true until a member is false; OR: false until one is true. */
    for (uint32_t j = i + 1; j < t->end; j = e->terms[j].end) {
        if (eval_at(e, j, r) != all) {
            res = !all;
            break;
        }
    }
    return res != t->neg;
}

bool torii_expr_eval(const torii_expr_t *e, const torii_expr_req_t *req)
{
    return e == NULL || eval_at(e, 0, req);
}

/* ---- compilation ------------------------------------------------------- */

typedef struct {
    torii_dctx_t *c;
    term_t *terms;
    uint32_t n;
} comp_t;

/* Is n a group, i.e. a list starting with a combinator? */
static bool is_group(const torii_cnode_t *n, uint8_t *kind, bool *neg)
{
    const torii_cnode_t *first;
    if (n->type != TORII_CN_SEQ || n->n == 0 || n->items[0]->type != TORII_CN_STR)
        return false;
    first = n->items[0];
    *neg = first->text[0] == '!';
    if (strcmp(first->text + *neg, "AND") == 0)
        *kind = T_AND;
    else if (strcmp(first->text + *neg, "OR") == 0)
        *kind = T_OR;
    else
        return false;
    return true;
}

/* Terms a group (at nesting level `depth`) compiles to, at most: itself
 * plus its members. Too-deep groups count as one; compiling stops there. */
static size_t count_terms(const torii_cnode_t *n, size_t first, int depth)
{
    size_t total = 1;
    uint8_t kind;
    bool neg;
    for (size_t i = first; i < n->n; i++) {
        if (is_group(n->items[i], &kind, &neg) && depth < MAX_DEPTH)
            total += count_terms(n->items[i], 1, depth + 1);
        else
            total++;
    }
    return total;
}

static bool konst_from(torii_dctx_t *c, const torii_cnode_t *n, konst_t *k)
{
    switch (n->type) {
    case TORII_CN_STR: k->s = torii_str(torii_pstrndup(c->pool, n->text, n->len), n->len); return true;
    case TORII_CN_INT:
        k->is_num = true;
        k->num = (double)n->v.i;
        return true;
    case TORII_CN_FLOAT:
        k->is_num = true;
        k->num = n->v.f;
        return true;
    default: return torii_dctx_fail(c, n, "must be a string or a number, got %s", torii_cnode_type_name(n->type));
    }
}

static void rx_free(void *p)
{
    rx_t *rx = p;
    pcre2_match_data_free(rx->md);
    pcre2_code_free(rx->code);
}

static bool comp_regex(torii_dctx_t *c, const torii_cnode_t *n, bool caseless, term_t *t)
{
    int code;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[256];
    rx_t *rx;
    if (n->type != TORII_CN_STR)
        return torii_dctx_fail(c, n, "must be a regular expression (a string), got %s", torii_cnode_type_name(n->type));
    rx = torii_palloc(c->pool, sizeof *rx);
    rx->code = pcre2_compile((PCRE2_SPTR)n->text, n->len, caseless ? PCRE2_CASELESS : 0, &code, &off, NULL);
    if (!rx->code) {
        pcre2_get_error_message(code, msg, sizeof msg);
        return torii_dctx_fail(c, n, "invalid regular expression \"%s\": %s at offset %zu", n->text, (char *)msg,
                               (size_t)off);
    }
    rx->md = pcre2_match_data_create(1, NULL);
    if (!rx->md) {
        pcre2_code_free(rx->code);
        return torii_dctx_fail(c, n, "out of memory compiling the regular expression");
    }
    torii_pool_cleanup(c->pool, rx_free, rx);
    /* JIT may be unavailable (platform, SELinux); the interpreter then
     * runs the same pattern, so a failure here is not an error. */
    (void)pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE);
    t->rx = rx;
    return true;
}

static bool comp_cidr(torii_dctx_t *c, const torii_cnode_t *n, torii_cidr_t *out)
{
    if (n->type != TORII_CN_STR)
        return torii_dctx_fail(c, n, "must be an address or CIDR block (a string), got %s",
                               torii_cnode_type_name(n->type));
    if (!torii_cidr_parse(n->text, n->len, out))
        return torii_dctx_fail(c, n, "invalid address or CIDR block \"%s\"", n->text);
    return true;
}

static bool comp_list(torii_dctx_t *c, const torii_cnode_t *n, term_t *t)
{
    if (n->n == 0)
        return torii_dctx_fail(c, n, "must list at least one value");
    if (t->op == OP_IN)
        t->vals = torii_palloc(c->pool, sizeof *t->vals * n->n);
    else
        t->cidrs = torii_palloc(c->pool, sizeof *t->cidrs * n->n);
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(c, i);
        if (t->op == OP_IN ? !konst_from(c, n->items[i], &t->vals[i]) : !comp_cidr(c, n->items[i], &t->cidrs[i]))
            return false;
        torii_dctx_pop(c, mark);
    }
    if (t->op == OP_IN)
        t->nvals = (uint32_t)n->n;
    else
        t->ncidrs = (uint32_t)n->n;
    return true;
}

/* The value of a condition whose operator is `op` (its text: opname). */
static bool comp_value(torii_dctx_t *c, const torii_cnode_t *n, const char *opname, term_t *t)
{
    const char *tn = torii_cnode_type_name(n->type);
    switch (t->op) {
    case OP_EQ:
    case OP_NE: t->vals = torii_palloc(c->pool, sizeof *t->vals); return konst_from(c, n, &t->vals[0]);
    case OP_GT:
    case OP_GE:
    case OP_LT:
    case OP_LE:
        if (n->type != TORII_CN_INT && n->type != TORII_CN_FLOAT)
            return torii_dctx_fail(c, n, "operator \"%s\" compares numbers: must be a number, got %s", opname, tn);
        t->vals = torii_palloc(c->pool, sizeof *t->vals);
        return konst_from(c, n, &t->vals[0]);
    case OP_RE:
    case OP_RE_CASELESS: return comp_regex(c, n, t->op == OP_RE_CASELESS, t);
    case OP_IN:
        if (n->type != TORII_CN_SEQ)
            return torii_dctx_fail(c, n, "operator \"in\" needs a list of values, got %s", tn);
        return comp_list(c, n, t);
    case OP_HAS:
        if (n->type != TORII_CN_STR)
            return torii_dctx_fail(c, n, "operator \"has\" needs a string, got %s", tn);
        /* val_has relies on these; such an item could never match anyway. */
        if (n->len == 0 || memchr(n->text, ',', n->len) || torii_str_trim(torii_str(n->text, n->len)).n != n->len)
            return torii_dctx_fail(c, n, "must be one list item: not empty, no comma, no leading or trailing blanks");
        t->vals = torii_palloc(c->pool, sizeof *t->vals);
        return konst_from(c, n, &t->vals[0]);
    case OP_IPMATCH:
        if (n->type == TORII_CN_SEQ)
            return comp_list(c, n, t);
        t->cidrs = torii_palloc(c->pool, sizeof *t->cidrs);
        t->ncidrs = 1;
        return comp_cidr(c, n, &t->cidrs[0]);
    }
    return false;
}

static bool comp_var(torii_dctx_t *c, const torii_cnode_t *n, term_t *t)
{
    if (n->type != TORII_CN_STR)
        return torii_dctx_fail(c, n, "must be a variable name (a string), got %s", torii_cnode_type_name(n->type));
    for (size_t i = 0; i < sizeof fixed_vars / sizeof fixed_vars[0]; i++) {
        if (strcmp(n->text, fixed_vars[i].name) == 0) {
            t->var = fixed_vars[i].var;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof prefixed_vars / sizeof prefixed_vars[0]; i++) {
        size_t plen = strlen(prefixed_vars[i].prefix);
        char *name;
        if (n->len < plen || memcmp(n->text, prefixed_vars[i].prefix, plen) != 0)
            continue;
        if (n->len == plen)
            return torii_dctx_fail(c, n, "empty %s name in \"%s\"", prefixed_vars[i].what, n->text);
        t->var = prefixed_vars[i].var;
        name = torii_pstrndup(c->pool, n->text + plen, n->len - plen);
        if (t->var == V_HTTP) {
            for (char *q = name; *q; q++)
                *q = hdr_fold(*q);
        }
        t->name = torii_str(name, n->len - plen);
        return true;
    }
    return torii_dctx_fail(c, n,
                           "unknown variable \"%s\" (use uri, request_uri, host, request_method, remote_addr, scheme, "
                           "http_NAME, arg_NAME or cookie_NAME)",
                           n->text);
}

/* A condition [var, op, value] or [var, "!", op, value]. */
static bool comp_cond(comp_t *k, const torii_cnode_t *n)
{
    torii_dctx_t *c = k->c;
    term_t *t = &k->terms[k->n++];
    size_t opi = 1, mark;
    const torii_cnode_t *op;
    t->kind = T_COND;
    t->end = k->n;
    if (n->n != 3 && n->n != 4)
        return torii_dctx_fail(c, n, "a condition is [var, op, value] or [var, \"!\", op, value], got %zu items", n->n);
    mark = torii_dctx_push_index(c, 0);
    if (!comp_var(c, n->items[0], t))
        return false;
    torii_dctx_pop(c, mark);
    if (n->n == 4) {
        const torii_cnode_t *bang = n->items[1];
        mark = torii_dctx_push_index(c, 1);
        if (bang->type != TORII_CN_STR)
            return torii_dctx_fail(c, bang, "expected \"!\" before the operator, got %s",
                                   torii_cnode_type_name(bang->type));
        if (strcmp(bang->text, "!") != 0)
            return torii_dctx_fail(c, bang, "expected \"!\" before the operator, got \"%s\"", bang->text);
        torii_dctx_pop(c, mark);
        t->neg = true;
        opi = 2;
    }
    op = n->items[opi];
    mark = torii_dctx_push_index(c, opi);
    if (op->type != TORII_CN_STR)
        return torii_dctx_fail(c, op, "must be an operator (a string: " OPERATORS "), got %s",
                               torii_cnode_type_name(op->type));
    for (size_t i = 0;; i++) {
        if (i == sizeof operators / sizeof operators[0])
            return torii_dctx_fail(c, op, "unknown operator \"%s\" (use " OPERATORS ")", op->text);
        if (strcmp(op->text, operators[i].name) == 0) {
            t->op = operators[i].op;
            break;
        }
    }
    torii_dctx_pop(c, mark);
    mark = torii_dctx_push_index(c, opi + 1);
    if (!comp_value(c, n->items[opi + 1], op->text, t))
        return false;
    torii_dctx_pop(c, mark);
    return true;
}

static bool comp_item(comp_t *k, const torii_cnode_t *n, int depth);

/* Members n->items[first..] of a group at nesting level `depth`. */
static bool comp_group(comp_t *k, const torii_cnode_t *n, size_t first, uint8_t kind, bool neg, int depth)
{
    uint32_t self = k->n++;
    k->terms[self].kind = kind;
    k->terms[self].neg = neg;
    for (size_t i = first; i < n->n; i++) {
        size_t mark = torii_dctx_push_index(k->c, i);
        if (!comp_item(k, n->items[i], depth))
            return false;
        torii_dctx_pop(k->c, mark);
    }
    k->terms[self].end = k->n;
    return true;
}

/* A member of a group at level `depth`: a condition or a nested group. */
static bool comp_item(comp_t *k, const torii_cnode_t *n, int depth)
{
    uint8_t kind;
    bool neg;
    if (n->type != TORII_CN_SEQ)
        return torii_dctx_fail(k->c, n,
                               "must be a condition [var, op, value] or a group [\"AND\" or \"OR\", ...], got %s",
                               torii_cnode_type_name(n->type));
    if (n->n == 0)
        return torii_dctx_fail(k->c, n, "empty condition");
    if (!is_group(n, &kind, &neg))
        return comp_cond(k, n);
    if (depth + 1 > MAX_DEPTH)
        return torii_dctx_fail(k->c, n, "groups nest too deep (at most %d levels)", MAX_DEPTH);
    if (n->n < 2)
        return torii_dctx_fail(k->c, n, "\"%s\" needs at least one condition or group", n->items[0]->text);
    return comp_group(k, n, 1, kind, neg, depth + 1);
}

torii_expr_t *torii_expr_compile(torii_dctx_t *c, const torii_cnode_t *n)
{
    torii_expr_t *e;
    comp_t k = {.c = c};
    uint8_t kind = T_AND;
    bool neg = false, explicit;
    size_t first;
    if (!torii_dec_expect(c, n, TORII_CN_SEQ))
        return NULL;
    explicit = is_group(n, &kind, &neg);
    if (explicit && n->n < 2) {
        torii_dctx_fail(c, n, "\"%s\" needs at least one condition or group", n->items[0]->text);
        return NULL;
    }
    /* An explicit group's members start after the combinator; an empty
     * list of conditions is an AND of nothing: always true. */
    first = explicit ? 1 : 0;
    e = torii_palloc(c->pool, sizeof *e);
    e->terms = torii_palloc(c->pool, sizeof *e->terms * count_terms(n, first, 1));
    k.terms = e->terms;
    if (!comp_group(&k, n, first, kind, neg, 1))
        return NULL;
    e->n = k.n;
    return e;
}

/* ---- single variables --------------------------------------------------- */

struct torii_expr_var_s {
    term_t t;
};

torii_expr_var_t *torii_expr_var_compile(torii_dctx_t *c, const torii_cnode_t *n)
{
    torii_expr_var_t *v = torii_palloc(c->pool, sizeof *v);
    if (!comp_var(c, n, &v->t))
        return NULL;
    return v;
}

bool torii_expr_var_get(const torii_expr_var_t *v, const torii_expr_req_t *req, char *buf, size_t cap, torii_str_t *out)
{
    val_t val;
    return fetch(&v->t, req, &val) && val_flat(&val, buf, cap, out);
}
