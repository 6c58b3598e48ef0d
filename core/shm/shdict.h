/*
 * shdict.h — a key/value dictionary in shared memory, shared by the worker
 * processes: rate-limit counters, caches.
 *
 * The master creates each zone before forking; workers inherit the
 * mapping. Everything (header, hash index, LRU list, entries, allocator)
 * lives inside the zone and refers to itself by offsets, so nothing
 * depends on where it is mapped. One process-shared robust mutex guards a
 * zone; every operation below is one locked call.
 *
 * Keys are 1..65535 arbitrary bytes. Values are byte strings, numbers
 * (double) or booleans, each with optional user flags (uint32) and an
 * expiry. Time is the caller's: every call takes now_ms, a monotonic
 * clock in milliseconds, and TTLs are relative to it (0 = never expires).
 * An expired entry is absent for every operation but get_stale, and is
 * freed lazily: when a lookup meets it, when a write frees up to two from
 * the LRU tail, or when room is needed.
 *
 * When the zone is full, writes evict least-recently-used entries (expired
 * ones first) and say so through status.forcible; safe_set/safe_add never
 * evict a live entry and fail with TORII_SHDICT_NO_MEMORY instead.
 *
 * Crashes: if a process dies holding the lock (killed mid-operation), the
 * next caller takes the lock over, reports it through status.recovered,
 * and repairs the zone. The entry the dead process was writing, if any, is
 * lost: a value rewritten in place may be half written, so that entry is
 * deleted; a new entry not yet linked is freed. Then the whole zone is
 * verified (time proportional to its size, once per takeover); if the
 * dead process was relinking the index or the allocator (a few dozen
 * instructions per write), it does not add up and is emptied
 * (status.wiped). Nothing is logged here; the caller logs the flags.
 */
#ifndef TORII_SHDICT_H
#define TORII_SHDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct torii_shdict_s torii_shdict_t;

#define TORII_SHDICT_MIN_SIZE (32 * 1024)
#define TORII_SHDICT_MAX_KEY  65535

typedef enum {
    TORII_SHDICT_NIL = 0, /* no value (a get that found nothing) */
    TORII_SHDICT_STRING,
    TORII_SHDICT_NUMBER,
    TORII_SHDICT_BOOLEAN,
} torii_shdict_type_t;

typedef enum {
    TORII_SHDICT_OK = 0,
    TORII_SHDICT_NOT_FOUND,   /* absent or expired */
    TORII_SHDICT_EXISTS,      /* add: the key is present */
    TORII_SHDICT_NO_MEMORY,   /* larger than the zone, or safe_*: no room without evicting */
    TORII_SHDICT_NOT_NUMBER,  /* incr on a string or boolean */
    TORII_SHDICT_TRUNCATED,   /* get: the string is longer than the buffer; got.len is its length */
    TORII_SHDICT_BAD_KEY,     /* empty, or longer than 65535 bytes */
    TORII_SHDICT_BAD_VALUE,   /* type NIL or unknown, string too long (4 GiB) */
    TORII_SHDICT_LOCK_FAILED, /* the lock is unusable, or already held by this thread */
} torii_shdict_rc_t;

/* "not found", "exists", "no memory", "not a number", ... */
const char *torii_shdict_strerror(torii_shdict_rc_t rc);

/* What happened beside the answer; every call clears it first. May be NULL. */
typedef struct {
    bool forcible;  /* live entries were evicted to make room */
    bool recovered; /* the previous holder of the lock died holding it (see "Crashes") */
    bool wiped;     /* ... and the zone was inconsistent, so it was emptied */
} torii_shdict_status_t;

/* A value to store. */
typedef struct {
    torii_shdict_type_t type;
    const void *str; /* STRING: len bytes */
    size_t len;
    double num;   /* NUMBER */
    bool boolean; /* BOOLEAN */
} torii_shdict_value_t;

static inline torii_shdict_value_t torii_shdict_string(const void *p, size_t n)
{
    return (torii_shdict_value_t){.type = TORII_SHDICT_STRING, .str = p, .len = n};
}

static inline torii_shdict_value_t torii_shdict_number(double x)
{
    return (torii_shdict_value_t){.type = TORII_SHDICT_NUMBER, .num = x};
}

static inline torii_shdict_value_t torii_shdict_boolean(bool b)
{
    return (torii_shdict_value_t){.type = TORII_SHDICT_BOOLEAN, .boolean = b};
}

/* What a get found. */
typedef struct {
    torii_shdict_type_t type;
    size_t len;      /* STRING: its length (copied into the buffer unless TRUNCATED) */
    double num;      /* NUMBER */
    bool boolean;    /* BOOLEAN */
    uint32_t flags;  /* the user flags stored with it */
    uint64_t ttl_ms; /* ms until it expires, 0 = never (and 0 when stale) */
    bool stale;      /* get_stale returned an expired entry */
} torii_shdict_got_t;

/*
 * A zone of `size` bytes (at least 32 KiB, at most 64 GiB; rounded up to
 * whole pages) named `name` (kept for messages, truncated to 63 bytes).
 * Call before forking. NULL with a message in err on failure.
 */
torii_shdict_t *torii_shdict_create(const char *name, size_t size, char *err, size_t errlen);

/* Unmap this process's view. The memory goes when the last process unmaps or exits. */
void torii_shdict_destroy(torii_shdict_t *d);

const char *torii_shdict_name(const torii_shdict_t *d);

/*
 * Look key up and make it the most recently used. Numbers and booleans
 * land in got; a string is copied into buf when it fits, else
 * TORII_SHDICT_TRUNCATED with got->len its length (call again with a
 * larger buffer). An expired entry is freed and reported NOT_FOUND.
 */
torii_shdict_rc_t torii_shdict_get(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms, void *buf,
                                   size_t buflen, torii_shdict_got_t *got, torii_shdict_status_t *st);

/* Like get, but an expired entry not yet freed is returned with got->stale set. */
torii_shdict_rc_t torii_shdict_get_stale(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms, void *buf,
                                         size_t buflen, torii_shdict_got_t *got, torii_shdict_status_t *st);

/* Store, replacing any value. ttl_ms 0 = never expires. May evict (status.forcible). */
torii_shdict_rc_t torii_shdict_set(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                   uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st);

/* Store only if the key is absent (or expired): else TORII_SHDICT_EXISTS. May evict. */
torii_shdict_rc_t torii_shdict_add(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                   uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st);

/* Store only if the key is present: else TORII_SHDICT_NOT_FOUND. May evict. */
torii_shdict_rc_t torii_shdict_replace(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                       uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st);

/*
 * set and add that never evict live entries (expired ones may be freed):
 * TORII_SHDICT_NO_MEMORY when there is no room. A failed safe_set leaves
 * the old value in place.
 */
torii_shdict_rc_t torii_shdict_safe_set(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                        uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st);
torii_shdict_rc_t torii_shdict_safe_add(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                        uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st);

/*
 * Add delta to a number and store the sum in *out; its TTL and flags stay.
 * If the key is absent: with has_init, create it as init + delta expiring
 * in init_ttl_ms (may evict); without, TORII_SHDICT_NOT_FOUND. A string or
 * boolean gives TORII_SHDICT_NOT_NUMBER.
 */
torii_shdict_rc_t torii_shdict_incr(torii_shdict_t *d, const void *key, size_t klen, double delta, double init,
                                    bool has_init, uint64_t init_ttl_ms, uint64_t now_ms, double *out,
                                    torii_shdict_status_t *st);

/* Remove; TORII_SHDICT_NOT_FOUND if absent or expired. */
torii_shdict_rc_t torii_shdict_delete(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms,
                                      torii_shdict_status_t *st);

/* Give a present key a new TTL from now (0 = never expires). */
torii_shdict_rc_t torii_shdict_expire(torii_shdict_t *d, const void *key, size_t klen, uint64_t ttl_ms, uint64_t now_ms,
                                      torii_shdict_status_t *st);

/* Remaining TTL of a present key in *ttl_ms, 0 = never expires. */
torii_shdict_rc_t torii_shdict_ttl(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms, uint64_t *ttl_ms,
                                   torii_shdict_status_t *st);

/*
 * Call fn for each live key, most recently used first, at most max keys
 * (0 = all) or until fn returns false; returns how many were passed. fn
 * runs with the lock held: it must be quick and must not call into any
 * dictionary on this zone (that returns TORII_SHDICT_LOCK_FAILED).
 */
typedef bool (*torii_shdict_key_fn)(void *ud, const void *key, size_t klen);
size_t torii_shdict_keys(torii_shdict_t *d, uint64_t now_ms, size_t max, torii_shdict_key_fn fn, void *ud,
                         torii_shdict_status_t *st);

/* Remove every entry, and return all memory to the allocator. */
void torii_shdict_flush_all(torii_shdict_t *d, torii_shdict_status_t *st);

/* Free expired entries, oldest first, at most max (0 = all); returns how many. */
size_t torii_shdict_flush_expired(torii_shdict_t *d, uint64_t now_ms, size_t max, torii_shdict_status_t *st);

/* Bytes mapped for the zone. */
size_t torii_shdict_capacity(const torii_shdict_t *d);

/* Bytes in wholly free pages (partly used pages of small entries hold more). */
size_t torii_shdict_free_space(torii_shdict_t *d);

typedef struct {
    size_t entries;      /* including expired entries not yet freed */
    uint64_t evictions;  /* live entries evicted to make room, ever */
    uint64_t recoveries; /* lock takeovers from dead processes, ever */
    uint64_t wipes;      /* zones emptied by a takeover, ever */
} torii_shdict_stats_t;

void torii_shdict_stats(torii_shdict_t *d, torii_shdict_stats_t *out);

/* Verify the whole zone (index, LRU list, allocator) under the lock: for tests and recovery. */
bool torii_shdict_check(torii_shdict_t *d, char *err, size_t errlen);

/*
 * Tests only: take the lock and return holding it, as a process about to
 * die would. mode 0: only the lock (the zone stays consistent); 1: as if
 * rewriting the most recent entry's value in place; 2: as if half way
 * through relinking (the entry count no longer adds up); 3: as if filling
 * a new entry, allocated and not yet linked.
 * torii_shdict_test_release() drops the lock again.
 */
void torii_shdict_test_hold(torii_shdict_t *d, int mode);
void torii_shdict_test_release(torii_shdict_t *d);

#endif
