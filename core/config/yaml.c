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

static bool failf(loader_t *L, int line, const char *why)
{
    if (L->pathlen)
        snprintf(L->err, L->errlen, "%s:%d: %s: %s", L->file, line, L->path, why);
    else
        snprintf(L->err, L->errlen, "%s:%d: %s", L->file, line, why);
    return false;
}

/*
 * The tree is built straight from libyaml's events (no document of its
 * own in between, which cost as much again as the parse). A frame per
 * open sequence or map collects its items; an alias shares the node it
 * names, and `weight` (the nodes a walk would meet, aliases expanded)
 * keeps alias bombs out.
 */
typedef struct {
    torii_cnode_t *node;
    torii_cnode_t **items, **keys; /* growing; copied into the pool at the end */
    size_t n, cap;
    torii_cnode_t *key; /* a map's key waiting for its value */
    size_t mark;        /* path mark of the item being read */
    uint64_t weight;
    char *anchor;
} frame_t;

typedef struct {
    char *name;
    torii_cnode_t *node;
    uint64_t weight;
} anchor_t;

typedef struct {
    frame_t stack[MAX_DEPTH + 1];
    int depth;
    anchor_t *anchors;
    size_t nanchors, anchors_cap;
    torii_cnode_t *root;
    uint64_t root_weight;
} builder_t;

static torii_cnode_t *new_node(loader_t *L, const yaml_event_t *e, torii_cnode_type_t type)
{
    torii_cnode_t *n = torii_palloc(L->pool, sizeof *n);
    n->type = type;
    n->file = L->file;
    n->line = (int)e->start_mark.line + 1;
    return n;
}

static bool remember(builder_t *B, const char *anchor, torii_cnode_t *node, uint64_t weight)
{
    if (!anchor)
        return true;
    if (B->nanchors == B->anchors_cap) {
        size_t cap = B->anchors_cap ? B->anchors_cap * 2 : 16;
        anchor_t *a = realloc(B->anchors, cap * sizeof *a);
        if (!a)
            abort();
        B->anchors = a;
        B->anchors_cap = cap;
    }
    B->anchors[B->nanchors++] = (anchor_t){strdup(anchor), node, weight};
    return true;
}

/* A finished node (with its weight) goes into the open collection, or is
 * the root. */
static bool attach(loader_t *L, builder_t *B, torii_cnode_t *node, uint64_t weight, int line)
{
    frame_t *f;
    if (B->depth == 0) {
        B->root = node;
        B->root_weight = weight;
        return weight <= MAX_NODES || failf(L, line, "document too large (alias expansion?)");
    }
    f = &B->stack[B->depth - 1];
    f->weight += weight;
    if (f->weight > MAX_NODES)
        return failf(L, line, "document too large (alias expansion?)");
    if (f->node->type == TORII_CN_MAP && !f->key) {
        if (node->type == TORII_CN_SEQ || node->type == TORII_CN_MAP || !node->text)
            return failf(L, line, "map keys must be strings");
        node->type = TORII_CN_STR; /* keys are names, whatever they look like */
        for (size_t i = 0; i < f->n; i++)
            if (strcmp(f->keys[i]->text, node->text) == 0) {
                f->mark = path_push(L, node->text, 0);
                return failf(L, node->line, "duplicate key");
            }
        f->key = node;
        f->mark = path_push(L, node->text, 0);
        return true;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        torii_cnode_t **items = realloc(f->items, cap * sizeof *items);
        torii_cnode_t **keys = f->node->type == TORII_CN_MAP ? realloc(f->keys, cap * sizeof *keys) : NULL;
        if (!items || (f->node->type == TORII_CN_MAP && !keys))
            abort();
        f->items = items;
        f->keys = keys;
        f->cap = cap;
    }
    if (f->node->type == TORII_CN_MAP)
        f->keys[f->n] = f->key;
    f->items[f->n++] = node;
    f->key = NULL;
    path_pop(L, f->mark);
    return true;
}

/* The next item of a sequence is at its index in the path. */
static void before_item(loader_t *L, builder_t *B)
{
    frame_t *f = B->depth ? &B->stack[B->depth - 1] : NULL;
    if (f && f->node->type == TORII_CN_SEQ)
        f->mark = path_push(L, NULL, f->n);
}

static bool on_scalar(loader_t *L, builder_t *B, const yaml_event_t *e)
{
    torii_cnode_t *n = new_node(L, e, TORII_CN_STR);
    size_t len = e->data.scalar.length;
    before_item(L, B);
    n->text = torii_pstrndup(L->pool, (const char *)e->data.scalar.value, len);
    n->len = len;
    if (memchr(e->data.scalar.value, '\0', len))
        return failf(L, n->line, "NUL character in a string");
    /* Only plain scalars are resolved; quote a value to keep it a string
     * (explicit tags are not supported). */
    if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        resolve_plain(n);
    return remember(B, (const char *)e->data.scalar.anchor, n, 1) && attach(L, B, n, 1, n->line);
}

static bool on_start(loader_t *L, builder_t *B, const yaml_event_t *e, torii_cnode_type_t type)
{
    const yaml_char_t *anchor = type == TORII_CN_SEQ ? e->data.sequence_start.anchor : e->data.mapping_start.anchor;
    frame_t *f;
    before_item(L, B);
    if (B->depth >= MAX_DEPTH)
        return failf(L, (int)e->start_mark.line + 1, "nesting too deep");
    f = &B->stack[B->depth++];
    *f = (frame_t){.node = new_node(L, e, type), .weight = 1};
    f->anchor = anchor ? strdup((const char *)anchor) : NULL;
    return true;
}

static bool on_end(loader_t *L, builder_t *B)
{
    frame_t *f = &B->stack[--B->depth];
    torii_cnode_t *n = f->node;
    bool ok;
    size_t count = f->n;
    n->n = count;
    n->items = torii_palloc(L->pool, sizeof *n->items * (count ? count : 1));
    if (count)
        memcpy(n->items, f->items, sizeof *n->items * count);
    if (n->type == TORII_CN_MAP) {
        n->keys = torii_palloc(L->pool, sizeof *n->keys * (count ? count : 1));
        if (count)
            memcpy(n->keys, f->keys, sizeof *n->keys * count);
    }
    free(f->items);
    free(f->keys);
    /* An anchor names the node once it is complete: an alias inside it
     * (a cycle) finds nothing. */
    ok = remember(B, f->anchor, n, f->weight);
    free(f->anchor);
    f->items = f->keys = NULL;
    f->anchor = NULL;
    return ok && attach(L, B, n, f->weight, n->line);
}

static bool on_alias(loader_t *L, builder_t *B, const yaml_event_t *e)
{
    const char *name = (const char *)e->data.alias.anchor;
    before_item(L, B);
    for (size_t i = B->nanchors; i-- > 0;)
        if (strcmp(B->anchors[i].name, name) == 0)
            return attach(L, B, B->anchors[i].node, B->anchors[i].weight, (int)e->start_mark.line + 1);
    return failf(L, (int)e->start_mark.line + 1, "alias to an unknown anchor");
}

static void builder_free(builder_t *B)
{
    for (int i = 0; i < B->depth; i++) {
        free(B->stack[i].items);
        free(B->stack[i].keys);
        free(B->stack[i].anchor);
    }
    for (size_t i = 0; i < B->nanchors; i++)
        free(B->anchors[i].name);
    free(B->anchors);
}

static bool load(loader_t *L, yaml_parser_t *parser, torii_cnode_t **root)
{
    builder_t B = {0};
    int documents = 0;
    bool ok = true, done = false;
    *root = NULL;
    while (ok && !done) {
        yaml_event_t e;
        if (!yaml_parser_parse(parser, &e)) {
            snprintf(L->err, L->errlen, "%s:%zu: %s%s%s", L->file, parser->problem_mark.line + 1,
                     parser->problem ? parser->problem : "syntax error", parser->context ? " " : "",
                     parser->context ? parser->context : "");
            ok = false;
            break;
        }
        switch (e.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            /* A second document would be silently ignored: refuse it. */
            if (++documents > 1)
                ok = failf(L, (int)e.start_mark.line + 1, "more than one document in the file");
            break;
        case YAML_SCALAR_EVENT: ok = on_scalar(L, &B, &e); break;
        case YAML_SEQUENCE_START_EVENT: ok = on_start(L, &B, &e, TORII_CN_SEQ); break;
        case YAML_MAPPING_START_EVENT: ok = on_start(L, &B, &e, TORII_CN_MAP); break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: ok = on_end(L, &B); break;
        case YAML_ALIAS_EVENT: ok = on_alias(L, &B, &e); break;
        default: break;
        }
        yaml_event_delete(&e);
    }
    builder_free(&B);
    if (ok)
        *root = B.root;
    /* An empty document is a plain empty scalar: no configuration. */
    if (ok && *root && (*root)->type == TORII_CN_NULL && (*root)->len == 0)
        *root = NULL;
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
