/*
 * yaml.c — the only file that talks to libyaml: loads YAML (and JSON, which
 * libyaml reads as flow-style YAML) into a torii_cnode_t tree.
 *
 * Plain scalars resolve by the YAML 1.2 core schema, not libyaml's 1.1
 * habits: only true/false are booleans, so keys like `on:` or values like
 * `no` stay strings; quoted scalars are always strings.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/common.h"
#include "config/keypath.h"
#include "config/node.h"

#define MAX_DEPTH 64
#define MAX_NODES 2000000 /* alias bombs stop here */

typedef struct {
    torii_pool_t *pool;
    yaml_document_t *doc;
    const char *file;
    size_t nodes;
    char *err;
    size_t errlen;
    char path[512]; /* where the converter is, for messages: "routes[2].id" */
    size_t pathlen;
} loader_t;

static size_t path_push(loader_t *L, const char *key, size_t index)
{
    return key ? torii_keypath_key(L->path, &L->pathlen, sizeof L->path, key)
               : torii_keypath_index(L->path, &L->pathlen, sizeof L->path, index);
}

static void path_pop(loader_t *L, size_t mark)
{
    L->pathlen = mark;
    L->path[mark] = '\0';
    L->path[mark] = '\0';
}

static bool is_int(const char *s, int64_t *out)
{
    char *end;
    int base = 10;
    const char *p = s;
    if ((p[0] == '-' || p[0] == '+') && p[1] != '\0')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
        if (p != s)
            return false;
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
        s = p;
    }
    for (const char *q = p; *q; q++) {
        if (!(*q >= '0' && *q <= '9') && !(base == 16 && strchr("abcdefABCDEF", *q)))
            return false;
        if (base == 8 && *q > '7')
            return false;
    }
    if (*p == '\0')
        return false;
    errno = 0;
    *out = strtoll(s, &end, base);
    return errno == 0 && *end == '\0';
}

static bool is_float(const char *s, double *out)
{
    const char *p = s;
    char *end;
    bool digits = false;
    if (strcmp(s, ".inf") == 0 || strcmp(s, "+.inf") == 0 || strcmp(s, ".Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(s, "-.inf") == 0 || strcmp(s, "-.Inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0) {
        *out = NAN;
        return true;
    }
    /* [-+]? ( . digits | digits ( . digits? )? ) ( [eE] [-+]? digits )? */
    if (*p == '-' || *p == '+')
        p++;
    for (; *p >= '0' && *p <= '9'; p++)
        digits = true;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits = true;
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return false;
    *out = strtod(s, &end);
    return true;
}

static void resolve_plain(torii_cnode_t *n)
{
    const char *s = n->text;
    if (n->len > 0 && !strchr("~nNtTfF+-.0123456789", s[0]))
        return; /* a plain string: no null, boolean or number starts so */
    if (n->len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0) {
        n->type = TORII_CN_NULL;
    } else if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        n->type = TORII_CN_BOOL;
        n->v.b = true;
    } else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
        n->type = TORII_CN_BOOL;
        n->v.b = false;
    } else if (is_int(s, &n->v.i)) {
        n->type = TORII_CN_INT;
    } else if (is_float(s, &n->v.f)) {
        n->type = TORII_CN_FLOAT;
    }
}

static torii_cnode_t *convert(loader_t *L, yaml_node_t *y, int depth);

static bool failf(loader_t *L, int line, const char *why)
{
    if (L->pathlen)
        snprintf(L->err, L->errlen, "%s:%d: %s: %s", L->file, line, L->path, why);
    else
        snprintf(L->err, L->errlen, "%s:%d: %s", L->file, line, why);
    return false;
}

static torii_cnode_t *new_node(loader_t *L, yaml_node_t *y)
{
    torii_cnode_t *n;
    if (++L->nodes > MAX_NODES) {
        failf(L, (int)y->start_mark.line + 1, "document too large (alias expansion?)");
        return NULL;
    }
    n = torii_palloc(L->pool, sizeof *n);
    n->file = L->file;
    n->line = (int)y->start_mark.line + 1;
    return n;
}

static torii_cnode_t *convert_scalar(loader_t *L, yaml_node_t *y)
{
    torii_cnode_t *n = new_node(L, y);
    if (!n)
        return NULL;
    n->type = TORII_CN_STR;
    n->text = torii_pstrndup(L->pool, (const char *)y->data.scalar.value, y->data.scalar.length);
    n->len = y->data.scalar.length;
    if (strlen(n->text) != n->len) {
        failf(L, n->line, "NUL character in a string");
        return NULL;
    }
    /* Only plain scalars are resolved; quote a value to keep it a string.
     * (libyaml's document API tags every untagged scalar !!str, so explicit
     * tags cannot be told apart and are not supported.) */
    if (y->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        resolve_plain(n);
    return n;
}

static torii_cnode_t *convert_seq(loader_t *L, yaml_node_t *y, int depth)
{
    torii_cnode_t *n = new_node(L, y);
    size_t count = (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
    if (!n)
        return NULL;
    n->type = TORII_CN_SEQ;
    n->n = count;
    n->items = torii_palloc(L->pool, sizeof(*n->items) * (count ? count : 1));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *c = yaml_document_get_node(L->doc, y->data.sequence.items.start[i]);
        size_t mark = path_push(L, NULL, i);
        if (!(n->items[i] = convert(L, c, depth + 1)))
            return NULL;
        path_pop(L, mark);
    }
    return n;
}

static torii_cnode_t *convert_map(loader_t *L, yaml_node_t *y, int depth)
{
    torii_cnode_t *n = new_node(L, y);
    size_t count = (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start);
    if (!n)
        return NULL;
    n->type = TORII_CN_MAP;
    n->items = torii_palloc(L->pool, sizeof(*n->items) * (count ? count : 1));
    n->keys = torii_palloc(L->pool, sizeof(*n->keys) * (count ? count : 1));
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = &y->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(L->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pair->value);
        if (k->type != YAML_SCALAR_NODE) {
            failf(L, (int)k->start_mark.line + 1, "map keys must be strings");
            return NULL;
        }
        if (!(n->keys[i] = convert_scalar(L, k)))
            return NULL;
        n->keys[i]->type = TORII_CN_STR; /* keys are names, whatever they look like */
        size_t mark = path_push(L, n->keys[i]->text, 0);
        if (torii_cnode_get(n, n->keys[i]->text)) {
            failf(L, n->keys[i]->line, "duplicate key");
            return NULL;
        }
        if (!(n->items[i] = convert(L, v, depth + 1)))
            return NULL;
        path_pop(L, mark);
        n->n = i + 1;
    }
    return n;
}

static torii_cnode_t *convert(loader_t *L, yaml_node_t *y, int depth)
{
    if (depth > MAX_DEPTH) {
        failf(L, (int)y->start_mark.line + 1, "nesting too deep");
        return NULL;
    }
    switch (y->type) {
    case YAML_SCALAR_NODE: return convert_scalar(L, y);
    case YAML_SEQUENCE_NODE: return convert_seq(L, y, depth);
    case YAML_MAPPING_NODE: return convert_map(L, y, depth);
    default: failf(L, (int)y->start_mark.line + 1, "unsupported YAML node"); return NULL;
    }
}

static bool load(loader_t *L, yaml_parser_t *parser, torii_cnode_t **root)
{
    yaml_document_t doc, extra;
    yaml_node_t *top;
    bool ok = true;
    *root = NULL;
    if (!yaml_parser_load(parser, &doc)) {
        snprintf(L->err, L->errlen, "%s:%zu: %s%s%s", L->file, parser->problem_mark.line + 1,
                 parser->problem ? parser->problem : "syntax error", parser->context ? " " : "",
                 parser->context ? parser->context : "");
        return false;
    }
    L->doc = &doc;
    top = yaml_document_get_root_node(&doc);
    if (top)
        ok = (*root = convert(L, top, 0)) != NULL;
    yaml_document_delete(&doc);
    if (ok && top) {
        /* A second document would be silently ignored: refuse it. */
        if (!yaml_parser_load(parser, &extra))
            return failf(L, (int)parser->problem_mark.line + 1, "syntax error after the document");
        if (yaml_document_get_root_node(&extra)) {
            int line = (int)extra.start_mark.line + 1;
            yaml_document_delete(&extra);
            return failf(L, line, "more than one document in the file");
        }
        yaml_document_delete(&extra);
    }
    return ok;
}

bool torii_cnode_load_string(torii_pool_t *pool, const char *name, const char *text, size_t len, torii_cnode_t **root,
                             char *err, size_t errlen)
{
    loader_t L = {.pool = pool, .file = torii_pstrdup(pool, name), .err = err, .errlen = errlen};
    yaml_parser_t parser;
    bool ok;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    ok = load(&L, &parser, root);
    yaml_parser_delete(&parser);
    return ok;
}

bool torii_cnode_load_file(torii_pool_t *pool, const char *path, torii_cnode_t **root, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long size;
    bool ok;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(text);
        fclose(f);
        return false;
    }
    fclose(f);
    ok = torii_cnode_load_string(pool, path, text, (size_t)size, root, err, errlen);
    free(text);
    return ok;
}

torii_cnode_t *torii_cnode_get(const torii_cnode_t *map, const char *name)
{
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i]->text, name) == 0)
            return map->items[i];
    }
    return NULL;
}

const char *torii_cnode_type_name(torii_cnode_type_t t)
{
    static const char *const names[] = {"null", "a boolean", "an integer", "a number", "a string", "a list", "a map"};
    return names[t];
}
