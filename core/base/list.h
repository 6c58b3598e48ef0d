/*
 * list.h — intrusive circular doubly-linked lists (the node lives inside
 * the element; torii_container_of gets the element back).
 */
#ifndef TORII_LIST_H
#define TORII_LIST_H

#include <stdbool.h>

#include "base/common.h"

typedef struct torii_list_s {
    struct torii_list_s *prev, *next;
} torii_list_t;

static inline void torii_list_init(torii_list_t *l)
{
    l->prev = l->next = l;
}

static inline bool torii_list_empty(const torii_list_t *l)
{
    return l->next == l;
}

static inline void torii_list_push(torii_list_t *l, torii_list_t *n)
{
    n->next = l->next;
    n->prev = l;
    l->next->prev = n;
    l->next = n;
}

static inline void torii_list_remove(torii_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define torii_list_entry(node, type, member) torii_container_of(node, type, member)

#endif
