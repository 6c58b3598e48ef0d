/* decode.c — schema-driven configuration decoding. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "base/units.h"
#include "config/config.h"
#include "config/decode.h"
#include "config/keypath.h"

bool torii_dctx_fail(torii_dctx_t *c, const torii_cnode_t *n, const char *fmt, ...)
{
    va_list ap;
    int k = snprintf(c->err, c->errlen, "%s:%d: %s: ", n ? n->file : "?", n ? n->line : 0,
                     c->pathlen ? c->path : "(top level)");
    if (k < 0 || (size_t)k >= c->errlen)
        return false;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return false;
}

size_t torii_dctx_push_key(torii_dctx_t *c, const char *key)
{
    return torii_keypath_key(c->path, &c->pathlen, sizeof c->path, key);
}

size_t torii_dctx_push_index(torii_dctx_t *c, size_t i)
{
    return torii_keypath_index(c->path, &c->pathlen, sizeof c->path, i);
}

void torii_dctx_pop(torii_dctx_t *c, size_t mark)
{
    c->pathlen = mark;
    c->path[mark] = '\0';
}

bool torii_dec_expect(torii_dctx_t *c, const torii_cnode_t *n, torii_cnode_type_t t)
{
    if (n->type == t)
        return true;
    return torii_dctx_fail(c, n, "must be %s, got %s", torii_cnode_type_name(t), torii_cnode_type_name(n->type));
}

static const torii_field_t *find_field(const torii_field_t *fields, const char *name)
{
    for (; fields->name; fields++) {
        if (strcmp(fields->name, name) == 0)
            return fields;
    }
    return NULL;
}

bool torii_decode_object(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *fields)
{
    if (!torii_dec_expect(c, n, TORII_CN_MAP))
        return false;
    for (size_t i = 0; i < n->n; i++) {
        const torii_field_t *f = find_field(fields, n->keys[i]->text);
        size_t mark = torii_dctx_push_key(c, n->keys[i]->text);
        if (!f)
            return torii_dctx_fail(c, n->keys[i], "unknown key");
        if (!f->decode(c, n->items[i], (char *)dst + f->off, f))
            return false;
        torii_dctx_pop(c, mark);
    }
    for (const torii_field_t *f = fields; f->name; f++) {
        if (f->required && !torii_cnode_get(n, f->name))
            return torii_dctx_fail(c, n, "missing required key \"%s\"", f->name);
    }
    return true;
}

bool torii_dec_string(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    if (!torii_dec_expect(c, n, TORII_CN_STR))
        return false;
    if (f && f->min > 0 && n->len < (size_t)f->min)
        return torii_dctx_fail(c, n, "must not be empty");
    *(char **)dst = torii_pstrndup(c->pool, n->text, n->len);
    return true;
}

bool torii_dec_bool(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    (void)f;
    if (!torii_dec_expect(c, n, TORII_CN_BOOL))
        return false;
    *(bool *)dst = n->v.b;
    return true;
}

static bool check_range(torii_dctx_t *c, const torii_cnode_t *n, int64_t v, const torii_field_t *f)
{
    if (v < f->min)
        return torii_dctx_fail(c, n, "must be >= %lld, got %lld", (long long)f->min, (long long)v);
    if (v > f->max)
        return torii_dctx_fail(c, n, "must be <= %lld, got %lld", (long long)f->max, (long long)v);
    return true;
}

bool torii_dec_uint(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    if (!torii_dec_expect(c, n, TORII_CN_INT) || !check_range(c, n, n->v.i, f))
        return false;
    *(uint32_t *)dst = (uint32_t)n->v.i;
    return true;
}

static bool size_value(torii_dctx_t *c, const torii_cnode_t *n, const torii_field_t *f, uint64_t *out)
{
    if (n->type == TORII_CN_INT && n->v.i >= 0) {
        *out = (uint64_t)n->v.i;
    } else if (n->type == TORII_CN_STR) {
        if (!torii_parse_size(n->text, out))
            return torii_dctx_fail(c, n, "invalid size \"%s\" (use bytes or 32k, 1m, 1g)", n->text);
    } else {
        return torii_dctx_fail(c, n, "must be a size such as 1m, got %s", torii_cnode_type_name(n->type));
    }
    if (*out < (uint64_t)f->min)
        return torii_dctx_fail(c, n, "must be at least %lld bytes, got %llu", (long long)f->min,
                               (unsigned long long)*out);
    if (*out > (uint64_t)f->max)
        return torii_dctx_fail(c, n, "must be at most %lld bytes, got %llu", (long long)f->max,
                               (unsigned long long)*out);
    return true;
}

bool torii_dec_size(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    return size_value(c, n, f, (uint64_t *)dst);
}

bool torii_dec_size32(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    uint64_t v;
    if (!size_value(c, n, f, &v))
        return false;
    *(uint32_t *)dst = (uint32_t)v;
    return true;
}

void torii_format_duration(uint64_t ms, char *out, size_t outlen)
{
    if (ms % 86400000 == 0 && ms > 0)
        snprintf(out, outlen, "%llud", (unsigned long long)(ms / 86400000));
    else if (ms % 3600000 == 0 && ms > 0)
        snprintf(out, outlen, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms > 0)
        snprintf(out, outlen, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0 && ms > 0)
        snprintf(out, outlen, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, outlen, "%llums", (unsigned long long)ms);
}

bool torii_dec_duration(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    uint64_t ms;
    char got[32], lim[32];
    if (n->type == TORII_CN_INT && n->v.i >= 0 && n->v.i <= 86400 * 365) {
        ms = (uint64_t)n->v.i * 1000;
    } else if (n->type == TORII_CN_FLOAT && n->v.f >= 0 && n->v.f <= 86400.0 * 365) {
        ms = (uint64_t)(n->v.f * 1000 + 0.5);
    } else if (n->type == TORII_CN_STR) {
        if (!torii_parse_duration(n->text, &ms))
            return torii_dctx_fail(c, n, "invalid duration \"%s\" (use 500ms, 3s, 2m, 1h)", n->text);
    } else {
        return torii_dctx_fail(c, n, "must be a duration such as 5s, got %s", torii_cnode_type_name(n->type));
    }
    torii_format_duration(ms, got, sizeof got);
    if (ms < (uint64_t)f->min) {
        torii_format_duration((uint64_t)f->min, lim, sizeof lim);
        return torii_dctx_fail(c, n, "must be at least %s, got %s", lim, got);
    }
    if (ms > (uint64_t)f->max) {
        torii_format_duration((uint64_t)f->max, lim, sizeof lim);
        return torii_dctx_fail(c, n, "must be at most %s, got %s", lim, got);
    }
    *(uint32_t *)dst = (uint32_t)ms;
    return true;
}

bool torii_dec_object(torii_dctx_t *c, const torii_cnode_t *n, void *dst, const torii_field_t *f)
{
    return torii_decode_object(c, n, dst, f->sub);
}
