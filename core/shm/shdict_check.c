/*
 * shdict_check.c — verify a zone end to end: the allocator, every hash
 * chain, the LRU list, and that they agree. Runs on a zone a dead process
 * may have left half changed, so every ref is checked before it is read
 * and every walk is bounded by the entry count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/shdict_int.h"

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(err, errlen, __VA_ARGS__);                                                                            \
        goto out;                                                                                                      \
    } while (0)

/* ref is an allocated chunk holding a well-formed entry whose hash matches its key. */
static bool entry_ok(torii_shdict_t *d, const uint8_t *starts, uint32_t ref, char *err, size_t errlen)
{
    size_t cap;
    if (!torii_slab_check_chunk(shdict_base(d), &d->slab, starts, ref, &cap))
        FAIL("entry %u is not an allocated chunk", ref);
    entry_t *e = E(d, ref);
    if (e->type < TORII_SHDICT_STRING || e->type > TORII_SHDICT_BOOLEAN)
        FAIL("entry %u: type %u", ref, e->type);
    if (e->klen == 0 || sizeof(entry_t) + e->klen + (uint64_t)e->vlen > cap)
        FAIL("entry %u: key %u + value %u bytes overflow its %zu-byte chunk", ref, e->klen, e->vlen, cap);
    if ((e->type == TORII_SHDICT_NUMBER && e->vlen != sizeof(double)) ||
        (e->type == TORII_SHDICT_BOOLEAN && e->vlen != 1))
        FAIL("entry %u: value of %u bytes for type %u", ref, e->vlen, e->type);
    if (e->hash != shdict_hash(d->seed, entry_key(e), e->klen))
        FAIL("entry %u: stored hash does not match its key", ref);
    return true;
out:
    return false;
}

bool shdict_check_locked(torii_shdict_t *d, char *err, size_t errlen)
{
    uint8_t *starts = NULL;
    uint64_t live, nb = (uint64_t)d->bucket_mask + 1, total = 0, n = 0;
    bool ok = false;
    if (d->magic != SHDICT_MAGIC)
        FAIL("bad magic");
    if ((nb & (nb - 1)) != 0 || d->buckets_off < sizeof *d || d->buckets_off + nb * sizeof(uint32_t) > d->slab.map_off)
        FAIL("bucket array out of place");
    if (!torii_slab_check(shdict_base(d), &d->slab, d->size, &starts, &live, err, errlen))
        goto out;

    const uint32_t *buckets = shdict_buckets(d);
    for (uint64_t i = 0; i < nb; i++) {
        for (uint32_t ref = buckets[i]; ref; ref = E(d, ref)->hnext) {
            if (++total > d->count)
                FAIL("hash chains hold more than the %u entries counted (or loop)", d->count);
            if (!entry_ok(d, starts, ref, err, errlen))
                goto out;
            if ((E(d, ref)->hash & d->bucket_mask) != i)
                FAIL("entry %u is in bucket %llu, its hash says otherwise", ref, (unsigned long long)i);
        }
    }
    if (total != d->count)
        FAIL("hash chains hold %llu entries, %u counted", (unsigned long long)total, d->count);

    uint32_t prev = 0;
    for (uint32_t ref = d->lru_head; ref; prev = ref, ref = E(d, ref)->next) {
        if (++n > d->count)
            FAIL("LRU list longer than the %u entries counted (or loops)", d->count);
        if (!entry_ok(d, starts, ref, err, errlen))
            goto out;
        entry_t *e = E(d, ref);
        if (e->prev != prev)
            FAIL("LRU entry %u: back link %u, expected %u", ref, e->prev, prev);
        /* The chains were walked safely above, so lookup terminates. First match: also catches duplicates. */
        if (shdict_lookup(d, entry_key(e), e->klen, e->hash) != ref)
            FAIL("LRU entry %u is not what the index finds for its key", ref);
    }
    if (prev != d->lru_tail)
        FAIL("LRU tail is %u, the list ends at %u", d->lru_tail, prev);
    if (n != d->count)
        FAIL("LRU list holds %llu entries, %u counted", (unsigned long long)n, d->count);
    if (live != d->count)
        FAIL("%llu chunks allocated for %u entries", (unsigned long long)live, d->count);
    ok = true;
out:
    free(starts);
    return ok;
}

void shdict_drop_ref(torii_shdict_t *d, uint32_t ref)
{
    uint64_t off = (uint64_t)ref * TORII_SLAB_UNIT;
    if (off < d->slab.pages_off || off + sizeof(entry_t) > d->size)
        return;
    entry_t *e = E(d, ref);
    if (e->klen == 0 || off + sizeof(entry_t) + e->klen > d->size)
        return;
    /* Hash the key afresh: the stored hash may be what was half written. */
    if (shdict_lookup(d, entry_key(e), e->klen, shdict_hash(d->seed, entry_key(e), e->klen)) == ref)
        shdict_remove(d, ref);
}

void shdict_free_orphan(torii_shdict_t *d, uint32_t ref)
{
    uint64_t off = (uint64_t)ref * TORII_SLAB_UNIT;
    if (off < d->slab.pages_off || off >= d->slab.pages_off + (uint64_t)d->slab.npages * TORII_SLAB_PAGE)
        return;
    if (torii_slab_is_live(shdict_base(d), ref))
        torii_slab_free(shdict_base(d), &d->slab, ref);
}
