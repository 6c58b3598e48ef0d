/*
 * node.h — a parsed configuration document: a tree of maps, sequences and
 * typed scalars, each node remembering the file and line it came from so
 * that every error can point at it. YAML and JSON files load into the same
 * tree (see yaml.c); the schema checks in config.c walk it.
 */
#ifndef TORII_NODE_H
#define TORII_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"

typedef enum {
    TORII_CN_NULL,
    TORII_CN_BOOL,
    TORII_CN_INT,
    TORII_CN_FLOAT,
    TORII_CN_STR,
    TORII_CN_SEQ,
    TORII_CN_MAP,
} torii_cnode_type_t;

typedef struct torii_cnode_s torii_cnode_t;

struct torii_cnode_s {
    torii_cnode_type_t type;
    const char *file;
    int line;         /* 1-based */
    const char *text; /* scalars: the text as written (a string's value) */
    size_t len;       /* length of text */
    union {
        bool b;
        int64_t i;
        double f;
    } v;
    size_t n;              /* SEQ and MAP: number of items */
    torii_cnode_t **items; /* SEQ: the items; MAP: the values */
    torii_cnode_t **keys;  /* MAP: the keys (string nodes) */
    void *compiled;        /* what a decoder made of this node (a plugin's _meta.filter) */
};

/*
 * Load one file into a tree allocated from `pool`. An empty file gives a
 * NULL *root. Returns false with "file:line: reason" in err on a syntax
 * error, a duplicate key, a non-scalar key or more than one document.
 */
bool torii_cnode_load_file(torii_pool_t *pool, const char *path, torii_cnode_t **root, char *err, size_t errlen);

/* Same, from memory (for tests); `name` stands for the file name. */
bool torii_cnode_load_string(torii_pool_t *pool, const char *name, const char *text, size_t len, torii_cnode_t **root,
                             char *err, size_t errlen);

/* Value of key `name` in a MAP node, or NULL. */
torii_cnode_t *torii_cnode_get(const torii_cnode_t *map, const char *name);

/* "a map", "a string", ... for error messages. */
const char *torii_cnode_type_name(torii_cnode_type_t t);

#endif
