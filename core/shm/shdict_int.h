/*
 * shdict_int.h — the zone header and entry layout shared by shdict.c and
 * shdict_check.c. Not for other callers.
 */
#ifndef TORII_SHDICT_INT_H
#define TORII_SHDICT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/common.h"
#include "shm/shdict.h"
#include "shm/slab.h"

#define SHDICT_MAGIC        0x746f726969736864ull /* "toriishd" */
#define TORII_SHDICT_WHYLEN 160

/* The zone's first bytes; the handle callers hold is its address. */
struct torii_shdict_s {
    uint64_t magic;
    uint64_t size; /* bytes mapped */
    pthread_mutex_t lock;
    char name[64];
    uint64_t buckets_off; /* byte offset of bucket_mask + 1 uint32 refs */
    uint32_t bucket_mask;
    uint32_t lru_head, lru_tail; /* most and least recently used entry */
    uint32_t count;
    uint64_t seed;          /* of the index hash, random per zone */
    volatile uint32_t busy; /* a lock holder is inside an operation */
    volatile uint32_t mark; /* MARK_*: what it is doing to mark_entry */
    volatile uint32_t mark_entry;
    uint64_t evictions, recoveries, wipes;
    torii_slab_t slab;
};

/*
 * An entry: this header, the key, the value (8-byte double, 1-byte
 * boolean, or the string). The first two words follow slab.h's chunk
 * contract: hnext doubles as the allocator's link once freed; tag is the
 * allocator's.
 */
typedef struct {
    uint32_t hnext; /* next entry in the hash chain */
    uint32_t tag;
    uint32_t prev; /* LRU neighbour toward the head (more recent) */
    uint32_t next; /* ... toward the tail */
    uint32_t hash; /* its low bits pick the bucket */
    uint32_t vlen;
    uint64_t expires; /* absolute ms; 0 = never */
    uint32_t flags;
    uint16_t klen;
    uint8_t type; /* torii_shdict_type_t */
    uint8_t unused;
} entry_t;

_Static_assert(sizeof(entry_t) == 40, "entry header size");
_Static_assert(offsetof(entry_t, tag) == 4, "the allocator's tag is the second word");

static inline char *shdict_base(torii_shdict_t *d)
{
    return (char *)d;
}

static inline entry_t *E(torii_shdict_t *d, uint32_t ref)
{
    return (entry_t *)((char *)d + (size_t)ref * TORII_SLAB_UNIT);
}

static inline uint32_t *shdict_buckets(torii_shdict_t *d)
{
    return (uint32_t *)((char *)d + d->buckets_off);
}

static inline char *entry_key(entry_t *e)
{
    return (char *)(e + 1);
}

static inline char *entry_value(entry_t *e)
{
    return (char *)(e + 1) + e->klen;
}

/*
 * The index hash, keyed by the zone's random seed. Keys are often chosen
 * by clients (addresses, API keys, URLs); with a fixed function anyone can
 * compute keys that share a chain, and every worker would then crawl that
 * chain under the one lock. Starting from a secret state, which keys
 * collide cannot be worked out in advance.
 */
static inline uint32_t shdict_hash(uint64_t seed, const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32; /* bring high bits down: products' low bits only see the factors' low bits */
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 32;
    }
    h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* Point st at a local when the caller passed NULL, and clear it. */
#define STATUS_INIT(st)                                                                                                \
    torii_shdict_status_t st##_sink;                                                                                   \
    if (!(st))                                                                                                         \
        (st) = &st##_sink;                                                                                             \
    memset((st), 0, sizeof *(st))

/* Expired entries are absent for everything but get_stale. */
static inline bool expired(const entry_t *e, uint64_t now)
{
    return e->expires != 0 && e->expires <= now;
}

static inline uint64_t expiry(uint64_t now, uint64_t ttl)
{
    if (ttl == 0)
        return 0;
    return now + ttl < now ? UINT64_MAX : now + ttl; /* saturate: a far future, not "never" by accident */
}

static inline uint32_t *bucket_of(torii_shdict_t *d, uint32_t hash)
{
    return &shdict_buckets(d)[hash & d->bucket_mask];
}

static inline uint32_t shdict_lookup(torii_shdict_t *d, const void *key, size_t klen, uint32_t hash)
{
    for (uint32_t ref = *bucket_of(d, hash); ref; ref = E(d, ref)->hnext) {
        entry_t *e = E(d, ref);
        if (e->hash == hash && e->klen == klen && memcmp(entry_key(e), key, klen) == 0)
            return ref;
    }
    return 0;
}

static inline void lru_unlink(torii_shdict_t *d, entry_t *e)
{
    if (e->prev)
        E(d, e->prev)->next = e->next;
    else
        d->lru_head = e->next;
    if (e->next)
        E(d, e->next)->prev = e->prev;
    else
        d->lru_tail = e->prev;
}

static inline void lru_push(torii_shdict_t *d, uint32_t ref)
{
    entry_t *e = E(d, ref);
    e->prev = 0;
    e->next = d->lru_head;
    if (d->lru_head)
        E(d, d->lru_head)->prev = ref;
    else
        d->lru_tail = ref;
    d->lru_head = ref;
}

/* Make ref the most recently used. */
static inline void lru_touch(torii_shdict_t *d, uint32_t ref)
{
    if (d->lru_head != ref) {
        lru_unlink(d, E(d, ref));
        lru_push(d, ref);
    }
}

/*
 * The journal a dead lock holder leaves for recover(): busy while inside
 * an operation, and a mark while writing one entry's bytes, the long part
 * of a write (a value can be megabytes). The compiler barriers keep these
 * stores ordered with the changes they cover, so a process killed at any
 * instruction leaves them truthful (its stores already issued still reach
 * the shared pages; only the program stops).
 */
enum {
    MARK_NONE,
    MARK_REWRITE, /* rewriting a linked entry's value in place: it may be half old, half new */
    MARK_FILL,    /* filling a chunk just allocated and not yet linked anywhere */
};

static inline void set_busy(torii_shdict_t *d, uint32_t busy)
{
    atomic_signal_fence(memory_order_seq_cst);
    d->busy = busy;
    d->mark = MARK_NONE;
    d->mark_entry = 0;
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void set_mark(torii_shdict_t *d, uint32_t mark, uint32_t ref)
{
    atomic_signal_fence(memory_order_seq_cst);
    d->mark_entry = ref;
    d->mark = mark;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Take the zone's lock (recovering it from a dead holder: st->recovered); false if unusable. */
bool shdict_lock(torii_shdict_t *d, torii_shdict_status_t *st);
void shdict_unlock(torii_shdict_t *d);

/* Unlink from the index and the LRU list, and free the chunk. */
void shdict_remove(torii_shdict_t *d, uint32_t ref);

/* Forget every entry; all pages free. */
void shdict_wipe(torii_shdict_t *d);

/* Writes first free up to two expired entries from the LRU tail. */
void shdict_reap_tail(torii_shdict_t *d, uint64_t now);

/* A chunk of size bytes, freeing expired entries and (unless safe) evicting live ones; 0 if none. */
uint32_t shdict_alloc_entry(torii_shdict_t *d, size_t size, uint64_t now, bool safe, torii_shdict_status_t *st);

/* Link a filled entry into the index, at the LRU head. */
void shdict_link_new(torii_shdict_t *d, uint32_t ref);

/* Verify everything; the zone may hold garbage. */
bool shdict_check_locked(torii_shdict_t *d, char *err, size_t errlen);

/* Remove the entry at ref if it is one the index holds (ref may be stale). */
void shdict_drop_ref(torii_shdict_t *d, uint32_t ref);

/* Free the allocated chunk at ref, known to be linked nowhere (ref may be stale). */
void shdict_free_orphan(torii_shdict_t *d, uint32_t ref);

#endif
