/*
 * decode.h — a small schema-driven decoder from configuration trees
 * (node.h) into C structs. A schema is a table of fields: name, decoder,
 * offset in the destination struct and limits. Unknown keys, wrong types
 * and out-of-range values stop decoding with `file:line: path: reason`.
 */
#ifndef TORII_DECODE_H
#define TORII_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"
#include "config/node.h"

typedef struct {
    torii_pool_t *pool;
    char *err;
    size_t errlen;
    char path[512]; /* where we are: "routes[2].upstream.nodes[0]" */
    size_t pathlen;
    void *user; /* the configuration being filled */
} torii_dctx_t;

typedef struct torii_field_s torii_field_t;
typedef bool (*torii_decode_fn)(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f);

struct torii_field_s {
    const char *name;
    torii_decode_fn decode;
    size_t off;
    int64_t min, max;         /* inclusive limits (units: bytes, ms, or plain) */
    const torii_field_t *sub; /* nested object schema, NULL-name terminated */
    bool required;
};

/* Report an error at node n (at the current path); always returns false. */
bool torii_dctx_fail(torii_dctx_t *c, const torii_cnode_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path bookkeeping: push returns a mark to pop back to. */
size_t torii_dctx_push_key(torii_dctx_t *c, const char *key);
size_t torii_dctx_push_index(torii_dctx_t *c, size_t i);
void torii_dctx_pop(torii_dctx_t *c, size_t mark);

/* Decode a MAP node into the struct at dst with the given schema. */
bool torii_decode_object(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *fields);

/* Field decoders. Destination types in brackets. */
bool torii_dec_string(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *);   /* char* */
bool torii_dec_uint(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *);     /* uint32_t */
bool torii_dec_size(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *);     /* uint64_t */
bool torii_dec_size32(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *);   /* uint32_t */
bool torii_dec_duration(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *); /* uint32_t ms */
bool torii_dec_object(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *);   /* sub */
bool torii_dec_bool(torii_dctx_t *, const torii_cnode_t *, void *, const torii_field_t *);     /* bool */

/* Require node type t (error names the expected and actual types). */
bool torii_dec_expect(torii_dctx_t *c, const torii_cnode_t *n, torii_cnode_type_t t);

#endif
