/*
 * expr.h — route conditions (`vars`), in APISIX's shape so that configs
 * carry over: a list of conditions that must all hold, each
 * `[var, op, value]` or `[var, "!", op, value]`, or a group whose first
 * item is "AND", "OR", "!AND" or "!OR" followed by conditions or groups.
 *
 * Variables: uri (the normalised path), request_uri (the target as sent),
 * host, request_method, remote_addr, scheme, http_NAME (request header,
 * '_' read as '-', any case), arg_NAME (query argument, percent-decoded),
 * cookie_NAME. Operators: == ~= (also !=) > >= < <= (numbers), ~~ ~*
 * (PCRE2 regex, case-sensitive / not), in (a list of values), has (an
 * item of a comma-separated list), ipmatch (an address or CIDR, or a list).
 * A variable the request lacks makes every operator false except ~=.
 */
#ifndef TORII_EXPR_H
#define TORII_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"
#include "base/str.h"
#include "config/decode.h"
#include "http/head.h"

typedef struct torii_expr_s torii_expr_t;

/* What the evaluator reads from a request; all slices, nothing copied. */
typedef struct {
    torii_str_t method;      /* "GET" */
    torii_str_t uri;         /* the normalised path */
    torii_str_t request_uri; /* the request target as sent */
    torii_str_t host;        /* lowercased, without the port */
    torii_str_t query;       /* after '?', without it */
    const torii_header_t *headers;
    uint32_t nheaders;
    const uint8_t *client;   /* 16-byte address (IPv4 mapped), see base/cidr.h */
    torii_str_t client_text; /* "127.0.0.1" */
} torii_expr_req_t;

/*
 * Compile the `vars` node n (a sequence) at the decoder's current path.
 * Allocates from c->pool (regexes are freed by a pool cleanup). On a bad
 * expression returns NULL with `file:line: path: reason` set through
 * torii_dctx_fail, e.g. `routes[0].vars[1][1]: unknown operator "=~"`.
 */
torii_expr_t *torii_expr_compile(torii_dctx_t *c, const torii_cnode_t *n);

/* Does the request satisfy the expression? */
bool torii_expr_eval(const torii_expr_t *e, const torii_expr_req_t *req);

/* One variable of the same language (uri, host, remote_addr, http_NAME,
 * arg_NAME, cookie_NAME, ...), for what reads a request value by name (an
 * upstream's chash key). NULL with the error in c when the name is bad. */
typedef struct torii_expr_var_s torii_expr_var_t;
torii_expr_var_t *torii_expr_var_compile(torii_dctx_t *c, const torii_cnode_t *n);

/* Its value in req, percent-decoded into buf when needed; false when the
 * request has none (or it does not fit in buf). */
bool torii_expr_var_get(const torii_expr_var_t *v, const torii_expr_req_t *req, char *buf, size_t cap,
                        torii_str_t *out);

#endif
