/*
 * shdict.c — the shared dictionary's zone: layout, locking and crash
 * recovery, removing entries, finding room (expired entries, then LRU
 * eviction). The operations are shdict_ops.c, the consistency check
 * shdict_check.c, the allocator slab.c.
 *
 * Zone layout (offsets from the zone's base, which is the header):
 *
 *   header | bucket array (uint32 refs) | page map | pad | pages ...
 *
 * An entry is one chunk: entry_t, the key bytes, the value bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "shm/shdict_int.h"

#define EXPIRED_SCAN    64 /* entries examined from the LRU tail for expired ones before evicting */
#define PLAIN_EVICTIONS 8  /* tail evictions before whole pages are evicted (see shdict_alloc_entry) */
#define REAP_PER_WRITE  2
#define MAX_ZONE        ((uint64_t)UINT32_MAX * TORII_SLAB_UNIT) /* refs are uint32 */

/* --- Locking ------------------------------------------------------------------------------------------------------ */

/*
 * A dead holder left the zone as it was at its death. Undo the entry it
 * was writing (see MARK_*), verify everything, and empty the zone if it
 * does not add up: it died relinking the index or the allocator.
 */
static void recover(torii_shdict_t *d, torii_shdict_status_t *st)
{
    char why[TORII_SHDICT_WHYLEN];
    st->recovered = true;
    d->recoveries++;
    if (!d->busy)
        return;
    if (d->mark == MARK_FILL)
        shdict_free_orphan(d, d->mark_entry); /* else the check would see a leaked chunk */
    if (!shdict_check_locked(d, why, sizeof why)) {
        shdict_wipe(d);
        d->wipes++;
        st->wiped = true;
    } else if (d->mark == MARK_REWRITE) {
        shdict_drop_ref(d, d->mark_entry);
    }
    set_busy(d, 0);
}

bool shdict_lock(torii_shdict_t *d, torii_shdict_status_t *st)
{
    int rc = pthread_mutex_lock(&d->lock);
    if (torii_unlikely(rc == EOWNERDEAD)) {
        if (pthread_mutex_consistent(&d->lock) != 0) {
            pthread_mutex_unlock(&d->lock);
            return false;
        }
        recover(d, st);
    } else if (rc != 0) {
        return false; /* EDEADLK from a keys() callback, ENOTRECOVERABLE */
    }
    set_busy(d, 1);
    return true;
}

void shdict_unlock(torii_shdict_t *d)
{
    set_busy(d, 0);
    pthread_mutex_unlock(&d->lock);
}

/* --- Entries ------------------------------------------------------------------------------------------------------ */

/* Unlink from the index and the LRU list, and free the chunk. */
void shdict_remove(torii_shdict_t *d, uint32_t ref)
{
    entry_t *e = E(d, ref);
    uint32_t *link = bucket_of(d, e->hash);
    while (*link != ref)
        link = &E(d, *link)->hnext;
    *link = e->hnext;
    lru_unlink(d, e);
    d->count--;
    torii_slab_free(shdict_base(d), &d->slab, ref);
}

void shdict_wipe(torii_shdict_t *d)
{
    memset(shdict_buckets(d), 0, ((size_t)d->bucket_mask + 1) * sizeof(uint32_t));
    d->lru_head = d->lru_tail = 0;
    d->count = 0;
    torii_slab_reset(shdict_base(d), &d->slab);
}

/* Writes first free up to two expired entries from the tail, so dead entries do not pile up unseen. */
void shdict_reap_tail(torii_shdict_t *d, uint64_t now)
{
    for (int i = 0; i < REAP_PER_WRITE && d->lru_tail && expired(E(d, d->lru_tail), now); i++)
        shdict_remove(d, d->lru_tail);
}

/*
 * Evict every entry in the tail entry's page. Evicting by LRU order alone
 * frees chunks scattered over many pages; when the request needs a fresh
 * page (another size class, or a large value), only an emptied page helps.
 * Returns how many live entries went.
 */
static unsigned evict_page(torii_shdict_t *d, uint64_t now)
{
    char *base = shdict_base(d);
    uint32_t first, n, stride, victims[TORII_SLAB_PER_PAGE], nv = 0;
    unsigned live = 0;
    torii_slab_page_chunks(base, &d->slab, d->lru_tail, &first, &n, &stride);
    /* Collect first: the page is released when its last chunk goes. */
    for (uint32_t i = 0; i < n; i++)
        if (torii_slab_is_live(base, first + i * stride))
            victims[nv++] = first + i * stride;
    for (uint32_t i = 0; i < nv; i++) {
        live += !expired(E(d, victims[i]), now);
        shdict_remove(d, victims[i]);
    }
    return live;
}

/*
 * A chunk of `size` bytes: from the allocator; else after freeing expired
 * entries near the LRU tail; else (unless safe) by evicting from the tail.
 * The first few evictions take single entries (enough when the tail's
 * size class matches); then whole pages go, which ends once the zone is
 * empty, so any size torii_slab_round() accepts is eventually found.
 */
uint32_t shdict_alloc_entry(torii_shdict_t *d, size_t size, uint64_t now, bool safe, torii_shdict_status_t *st)
{
    char *base = shdict_base(d);
    uint32_t ref = torii_slab_alloc(base, &d->slab, size);
    if (ref)
        return ref;
    uint32_t cur = d->lru_tail;
    for (int i = 0; cur && i < EXPIRED_SCAN; i++) {
        uint32_t newer = E(d, cur)->prev;
        if (expired(E(d, cur), now)) {
            shdict_remove(d, cur);
            if ((ref = torii_slab_alloc(base, &d->slab, size)))
                return ref;
        }
        cur = newer;
    }
    if (safe)
        return 0;
    for (unsigned n = 0; d->lru_tail; n++) {
        unsigned live;
        if (n < PLAIN_EVICTIONS) {
            live = !expired(E(d, d->lru_tail), now);
            shdict_remove(d, d->lru_tail);
        } else {
            live = evict_page(d, now);
        }
        d->evictions += live;
        st->forcible |= live > 0;
        if ((ref = torii_slab_alloc(base, &d->slab, size)))
            return ref;
    }
    return 0;
}

/* Link a freshly allocated, filled entry at the index and the LRU head. */
void shdict_link_new(torii_shdict_t *d, uint32_t ref)
{
    entry_t *e = E(d, ref);
    uint32_t *bucket = bucket_of(d, e->hash);
    e->hnext = *bucket;
    *bucket = ref;
    lru_push(d, ref);
    d->count++;
}

/* --- Zone --------------------------------------------------------------------------------------------------------- */

torii_shdict_t *torii_shdict_create(const char *name, size_t size, char *err, size_t errlen)
{
    long sys_page = sysconf(_SC_PAGESIZE);
    size_t align = sys_page > (long)TORII_SLAB_PAGE ? (size_t)sys_page : TORII_SLAB_PAGE;
    if (!name)
        name = "";
    if (size < TORII_SHDICT_MIN_SIZE || (uint64_t)size > MAX_ZONE - align) {
        snprintf(err, errlen, "shared dict \"%s\": size %zu is out of range (32k .. 64g)", name, size);
        return NULL;
    }
    size = (size + align - 1) / align * align;

    /* About one bucket per 128 bytes: chains stay short even when every entry is tiny. */
    uint64_t nbuckets = 64;
    while (nbuckets * 2 <= size / 128)
        nbuckets *= 2;
    uint64_t buckets_off = (sizeof(torii_shdict_t) + 63) / 64 * 64;
    uint64_t map_off = buckets_off + nbuckets * sizeof(uint32_t);
    uint64_t npages = (size - map_off) / (TORII_SLAB_PAGE + sizeof(torii_slab_page_t)) + 1, pages_off;
    do {
        npages--;
        pages_off =
            (map_off + npages * sizeof(torii_slab_page_t) + TORII_SLAB_PAGE - 1) / TORII_SLAB_PAGE * TORII_SLAB_PAGE;
    } while (npages > 0 && pages_off + npages * TORII_SLAB_PAGE > size);
    if (npages == 0) {
        snprintf(err, errlen, "shared dict \"%s\": size %zu leaves no room for entries", name, size);
        return NULL;
    }

    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "shared dict \"%s\": mmap(%zu) failed: %s", name, size, strerror(errno));
        return NULL;
    }
    torii_shdict_t *d = p; /* fresh anonymous memory is zeroed: so are the buckets */

    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (rc == 0)
            rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        /* Error-checking: a keys() callback calling back in gets EDEADLK instead of hanging. */
        if (rc == 0)
            rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
        if (rc == 0)
            rc = pthread_mutex_init(&d->lock, &attr);
        pthread_mutexattr_destroy(&attr);
    }
    if (rc != 0) {
        snprintf(err, errlen, "shared dict \"%s\": mutex: %s", name, strerror(rc));
        munmap(p, size);
        return NULL;
    }
    if (getrandom(&d->seed, sizeof d->seed, GRND_NONBLOCK) != sizeof d->seed) {
        /* No entropy yet (early boot): weaker, but still not known in advance. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        d->seed = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16) ^ (uintptr_t)d;
    }
    d->magic = SHDICT_MAGIC;
    d->size = size;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->buckets_off = buckets_off;
    d->bucket_mask = (uint32_t)(nbuckets - 1);
    torii_slab_init(shdict_base(d), &d->slab, map_off, pages_off, (uint32_t)npages);
    return d;
}

void torii_shdict_destroy(torii_shdict_t *d)
{
    /* No pthread_mutex_destroy: other processes may still be using the zone. */
    if (d)
        munmap(d, d->size);
}

const char *torii_shdict_name(const torii_shdict_t *d)
{
    return d->name;
}

size_t torii_shdict_capacity(const torii_shdict_t *d)
{
    return d->size;
}

size_t torii_shdict_free_space(torii_shdict_t *d)
{
    torii_shdict_status_t sink;
    size_t n = 0;
    if (shdict_lock(d, &sink)) {
        n = (size_t)d->slab.free_pages * TORII_SLAB_PAGE;
        shdict_unlock(d);
    }
    return n;
}

void torii_shdict_stats(torii_shdict_t *d, torii_shdict_stats_t *out)
{
    torii_shdict_status_t sink;
    *out = (torii_shdict_stats_t){0};
    if (shdict_lock(d, &sink)) {
        out->entries = d->count;
        out->evictions = d->evictions;
        out->recoveries = d->recoveries;
        out->wipes = d->wipes;
        shdict_unlock(d);
    }
}

bool torii_shdict_check(torii_shdict_t *d, char *err, size_t errlen)
{
    torii_shdict_status_t sink;
    if (!shdict_lock(d, &sink)) {
        snprintf(err, errlen, "lock failed");
        return false;
    }
    bool ok = shdict_check_locked(d, err, errlen);
    shdict_unlock(d);
    return ok;
}

void torii_shdict_test_hold(torii_shdict_t *d, int mode)
{
    torii_shdict_status_t sink;
    if (!shdict_lock(d, &sink))
        return;
    if (mode == 1)
        set_mark(d, MARK_REWRITE, d->lru_head);
    else if (mode == 2)
        d->count++; /* the index no longer matches its count */
    else if (mode == 3)
        set_mark(d, MARK_FILL, torii_slab_alloc(shdict_base(d), &d->slab, 200));
}

void torii_shdict_test_release(torii_shdict_t *d)
{
    shdict_unlock(d);
}

const char *torii_shdict_strerror(torii_shdict_rc_t rc)
{
    switch (rc) {
    case TORII_SHDICT_OK: return "ok";
    case TORII_SHDICT_NOT_FOUND: return "not found";
    case TORII_SHDICT_EXISTS: return "exists";
    case TORII_SHDICT_NO_MEMORY: return "no memory";
    case TORII_SHDICT_NOT_NUMBER: return "not a number";
    case TORII_SHDICT_TRUNCATED: return "buffer too small";
    case TORII_SHDICT_BAD_KEY: return "bad key";
    case TORII_SHDICT_BAD_VALUE: return "bad value type";
    case TORII_SHDICT_LOCK_FAILED: return "lock failed";
    }
    return "unknown error";
}
