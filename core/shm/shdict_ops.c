/* shdict_ops.c — the dictionary's operations, each one locked call (see shdict.h). */
#include <string.h>

#include "shm/shdict_int.h"

enum { STORE_SET, STORE_ADD, STORE_REPLACE };

/* --- Values ------------------------------------------------------------------------------------------------------- */

static torii_shdict_rc_t check_key(const void *key, size_t klen)
{
    return klen == 0 || klen > TORII_SHDICT_MAX_KEY || !key ? TORII_SHDICT_BAD_KEY : TORII_SHDICT_OK;
}

static torii_shdict_rc_t value_len(const torii_shdict_value_t *v, size_t *len)
{
    switch (v ? v->type : TORII_SHDICT_NIL) {
    case TORII_SHDICT_STRING:
        if (v->len > UINT32_MAX || (v->len && !v->str))
            return TORII_SHDICT_BAD_VALUE;
        *len = v->len;
        return TORII_SHDICT_OK;
    case TORII_SHDICT_NUMBER: *len = sizeof(double); return TORII_SHDICT_OK;
    case TORII_SHDICT_BOOLEAN: *len = 1; return TORII_SHDICT_OK;
    default: return TORII_SHDICT_BAD_VALUE;
    }
}

/* Value, TTL and flags of an entry whose key is already in place. */
static void fill_value(entry_t *e, const torii_shdict_value_t *v, size_t vlen, uint64_t ttl, uint32_t flags,
                       uint64_t now)
{
    char *p = entry_value(e);
    e->type = (uint8_t)v->type;
    e->vlen = (uint32_t)vlen;
    e->flags = flags;
    e->expires = expiry(now, ttl);
    if (v->type == TORII_SHDICT_STRING) {
        if (vlen)
            memcpy(p, v->str, vlen);
    } else if (v->type == TORII_SHDICT_NUMBER) {
        memcpy(p, &v->num, sizeof(double));
    } else {
        *p = v->boolean ? 1 : 0;
    }
}

static void init_key(entry_t *e, const void *key, size_t klen, uint32_t hash)
{
    e->hash = hash;
    e->klen = (uint16_t)klen;
    memcpy(entry_key(e), key, klen);
}

/* --- Operations --------------------------------------------------------------------------------------------------- */

static torii_shdict_rc_t get(torii_shdict_t *d, const void *key, size_t klen, uint64_t now, void *buf, size_t buflen,
                             torii_shdict_got_t *got, bool stale_ok, torii_shdict_status_t *st)
{
    torii_shdict_rc_t rc = check_key(key, klen);
    STATUS_INIT(st);
    *got = (torii_shdict_got_t){0};
    if (rc != TORII_SHDICT_OK)
        return rc;
    uint32_t hash = shdict_hash(d->seed, key, klen);
    if (!shdict_lock(d, st))
        return TORII_SHDICT_LOCK_FAILED;
    uint32_t ref = shdict_lookup(d, key, klen, hash);
    if (!ref) {
        rc = TORII_SHDICT_NOT_FOUND;
        goto out;
    }
    entry_t *e = E(d, ref);
    if (expired(e, now)) {
        if (!stale_ok) {
            shdict_remove(d, ref);
            rc = TORII_SHDICT_NOT_FOUND;
            goto out;
        }
        got->stale = true; /* not touched: it should stay first in line for reuse */
    } else {
        got->ttl_ms = e->expires ? e->expires - now : 0;
        lru_touch(d, ref);
    }
    got->type = (torii_shdict_type_t)e->type;
    got->flags = e->flags;
    const char *v = entry_value(e);
    if (e->type == TORII_SHDICT_NUMBER) {
        memcpy(&got->num, v, sizeof(double));
    } else if (e->type == TORII_SHDICT_BOOLEAN) {
        got->boolean = *v != 0;
    } else {
        got->len = e->vlen;
        if (e->vlen > buflen)
            rc = TORII_SHDICT_TRUNCATED;
        else if (e->vlen)
            memcpy(buf, v, e->vlen);
    }
out:
    shdict_unlock(d);
    return rc;
}

torii_shdict_rc_t torii_shdict_get(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms, void *buf,
                                   size_t buflen, torii_shdict_got_t *got, torii_shdict_status_t *st)
{
    return get(d, key, klen, now_ms, buf, buflen, got, false, st);
}

torii_shdict_rc_t torii_shdict_get_stale(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms, void *buf,
                                         size_t buflen, torii_shdict_got_t *got, torii_shdict_status_t *st)
{
    return get(d, key, klen, now_ms, buf, buflen, got, true, st);
}

static torii_shdict_rc_t store(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                               uint64_t ttl, uint32_t flags, uint64_t now, int mode, bool safe,
                               torii_shdict_status_t *st)
{
    size_t vlen = 0;
    torii_shdict_rc_t rc = check_key(key, klen);
    STATUS_INIT(st);
    if (rc == TORII_SHDICT_OK)
        rc = value_len(v, &vlen);
    if (rc != TORII_SHDICT_OK)
        return rc;
    size_t need = sizeof(entry_t) + klen + vlen, chunk = torii_slab_round(&d->slab, need);
    if (chunk == 0)
        return TORII_SHDICT_NO_MEMORY;
    uint32_t hash = shdict_hash(d->seed, key, klen);
    if (!shdict_lock(d, st))
        return TORII_SHDICT_LOCK_FAILED;
    char *base = shdict_base(d);
    shdict_reap_tail(d, now);
    uint32_t old = shdict_lookup(d, key, klen, hash);
    if (old && expired(E(d, old), now)) {
        shdict_remove(d, old);
        old = 0;
    }
    if ((mode == STORE_ADD && old) || (mode == STORE_REPLACE && !old)) {
        rc = old ? TORII_SHDICT_EXISTS : TORII_SHDICT_NOT_FOUND;
        goto out;
    }
    if (old && torii_slab_chunk_size(base, &d->slab, old) == chunk) {
        /* Same chunk size: rewrite in place. */
        set_mark(d, MARK_REWRITE, old);
        fill_value(E(d, old), v, vlen, ttl, flags, now);
        set_mark(d, MARK_NONE, 0);
        lru_touch(d, old);
        goto out;
    }
    /*
     * Unsafe: free the old entry first. Its room counts, and a page eviction
     * could otherwise remove it under us. Safe: keep it until the new one
     * exists, so a refusal leaves it in place (nothing live is evicted meanwhile).
     */
    if (old && !safe) {
        shdict_remove(d, old);
        old = 0;
    }
    uint32_t ref = shdict_alloc_entry(d, need, now, safe, st);
    if (!ref) {
        rc = TORII_SHDICT_NO_MEMORY;
        goto out;
    }
    set_mark(d, MARK_FILL, ref);
    if (old)
        shdict_remove(d, old);
    init_key(E(d, ref), key, klen, hash);
    fill_value(E(d, ref), v, vlen, ttl, flags, now);
    set_mark(d, MARK_NONE, 0);
    shdict_link_new(d, ref);
out:
    shdict_unlock(d);
    return rc;
}

torii_shdict_rc_t torii_shdict_set(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                   uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st)
{
    return store(d, key, klen, v, ttl_ms, flags, now_ms, STORE_SET, false, st);
}

torii_shdict_rc_t torii_shdict_add(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                   uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st)
{
    return store(d, key, klen, v, ttl_ms, flags, now_ms, STORE_ADD, false, st);
}

torii_shdict_rc_t torii_shdict_replace(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                       uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st)
{
    return store(d, key, klen, v, ttl_ms, flags, now_ms, STORE_REPLACE, false, st);
}

torii_shdict_rc_t torii_shdict_safe_set(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                        uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st)
{
    return store(d, key, klen, v, ttl_ms, flags, now_ms, STORE_SET, true, st);
}

torii_shdict_rc_t torii_shdict_safe_add(torii_shdict_t *d, const void *key, size_t klen, const torii_shdict_value_t *v,
                                        uint64_t ttl_ms, uint32_t flags, uint64_t now_ms, torii_shdict_status_t *st)
{
    return store(d, key, klen, v, ttl_ms, flags, now_ms, STORE_ADD, true, st);
}

torii_shdict_rc_t torii_shdict_incr(torii_shdict_t *d, const void *key, size_t klen, double delta, double init,
                                    bool has_init, uint64_t init_ttl_ms, uint64_t now_ms, double *out,
                                    torii_shdict_status_t *st)
{
    torii_shdict_rc_t rc = check_key(key, klen);
    STATUS_INIT(st);
    if (rc != TORII_SHDICT_OK)
        return rc;
    size_t need = sizeof(entry_t) + klen + sizeof(double);
    uint32_t hash = shdict_hash(d->seed, key, klen);
    if (!shdict_lock(d, st))
        return TORII_SHDICT_LOCK_FAILED;
    shdict_reap_tail(d, now_ms);
    uint32_t ref = shdict_lookup(d, key, klen, hash);
    if (ref && expired(E(d, ref), now_ms)) {
        shdict_remove(d, ref);
        ref = 0;
    }
    if (ref) {
        entry_t *e = E(d, ref);
        double x;
        if (e->type != TORII_SHDICT_NUMBER) {
            rc = TORII_SHDICT_NOT_NUMBER;
            goto out;
        }
        /* Not marked: the 8-byte copy is one store, so a process killed here leaves the old or the new sum. */
        memcpy(&x, entry_value(e), sizeof x);
        x += delta;
        memcpy(entry_value(e), &x, sizeof x);
        *out = x;
        lru_touch(d, ref);
    } else if (!has_init) {
        rc = TORII_SHDICT_NOT_FOUND;
    } else if (torii_slab_round(&d->slab, need) == 0 || !(ref = shdict_alloc_entry(d, need, now_ms, false, st))) {
        rc = TORII_SHDICT_NO_MEMORY;
    } else {
        torii_shdict_value_t v = torii_shdict_number(init + delta);
        set_mark(d, MARK_FILL, ref);
        init_key(E(d, ref), key, klen, hash);
        fill_value(E(d, ref), &v, sizeof(double), init_ttl_ms, 0, now_ms);
        set_mark(d, MARK_NONE, 0);
        shdict_link_new(d, ref);
        *out = v.num;
    }
out:
    shdict_unlock(d);
    return rc;
}

/* Lock, free expired tail entries if writing, and find the live entry for key (0 if none). */
static torii_shdict_rc_t find_live(torii_shdict_t *d, const void *key, size_t klen, uint64_t now, bool write,
                                   uint32_t *ref, torii_shdict_status_t *st)
{
    torii_shdict_rc_t rc = check_key(key, klen);
    if (rc != TORII_SHDICT_OK)
        return rc;
    uint32_t hash = shdict_hash(d->seed, key, klen);
    if (!shdict_lock(d, st))
        return TORII_SHDICT_LOCK_FAILED;
    if (write)
        shdict_reap_tail(d, now);
    *ref = shdict_lookup(d, key, klen, hash);
    if (*ref && expired(E(d, *ref), now)) {
        shdict_remove(d, *ref);
        *ref = 0;
    }
    return TORII_SHDICT_OK;
}

torii_shdict_rc_t torii_shdict_delete(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms,
                                      torii_shdict_status_t *st)
{
    uint32_t ref;
    STATUS_INIT(st);
    torii_shdict_rc_t rc = find_live(d, key, klen, now_ms, true, &ref, st);
    if (rc != TORII_SHDICT_OK)
        return rc;
    if (ref)
        shdict_remove(d, ref);
    shdict_unlock(d);
    return ref ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND;
}

torii_shdict_rc_t torii_shdict_expire(torii_shdict_t *d, const void *key, size_t klen, uint64_t ttl_ms, uint64_t now_ms,
                                      torii_shdict_status_t *st)
{
    uint32_t ref;
    STATUS_INIT(st);
    torii_shdict_rc_t rc = find_live(d, key, klen, now_ms, true, &ref, st);
    if (rc != TORII_SHDICT_OK)
        return rc;
    if (ref)
        E(d, ref)->expires = expiry(now_ms, ttl_ms);
    shdict_unlock(d);
    return ref ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND;
}

torii_shdict_rc_t torii_shdict_ttl(torii_shdict_t *d, const void *key, size_t klen, uint64_t now_ms, uint64_t *ttl_ms,
                                   torii_shdict_status_t *st)
{
    uint32_t ref;
    STATUS_INIT(st);
    *ttl_ms = 0;
    torii_shdict_rc_t rc = find_live(d, key, klen, now_ms, false, &ref, st);
    if (rc != TORII_SHDICT_OK)
        return rc;
    if (ref && E(d, ref)->expires)
        *ttl_ms = E(d, ref)->expires - now_ms;
    shdict_unlock(d);
    return ref ? TORII_SHDICT_OK : TORII_SHDICT_NOT_FOUND;
}

size_t torii_shdict_keys(torii_shdict_t *d, uint64_t now_ms, size_t max, torii_shdict_key_fn fn, void *ud,
                         torii_shdict_status_t *st)
{
    size_t n = 0;
    STATUS_INIT(st);
    if (!shdict_lock(d, st))
        return 0;
    for (uint32_t ref = d->lru_head; ref && (max == 0 || n < max); ref = E(d, ref)->next) {
        entry_t *e = E(d, ref);
        if (expired(e, now_ms))
            continue;
        n++;
        if (!fn(ud, entry_key(e), e->klen))
            break;
    }
    shdict_unlock(d);
    return n;
}

void torii_shdict_flush_all(torii_shdict_t *d, torii_shdict_status_t *st)
{
    STATUS_INIT(st);
    if (!shdict_lock(d, st))
        return;
    shdict_wipe(d);
    shdict_unlock(d);
}

size_t torii_shdict_flush_expired(torii_shdict_t *d, uint64_t now_ms, size_t max, torii_shdict_status_t *st)
{
    size_t n = 0;
    STATUS_INIT(st);
    if (!shdict_lock(d, st))
        return 0;
    for (uint32_t ref = d->lru_tail; ref && (max == 0 || n < max);) {
        uint32_t newer = E(d, ref)->prev;
        if (expired(E(d, ref), now_ms)) {
            shdict_remove(d, ref);
            n++;
        }
        ref = newer;
    }
    shdict_unlock(d);
    return n;
}
