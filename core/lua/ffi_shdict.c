/* ffi_shdict.c — shared dicts for Lua (declared in ffi.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "lua/ffi.h"
#include "lua/ffi_state.h"
#include "shm/zones.h"

/* One worker runs one phase at a time: a get copies strings here, and Lua
 * turns them into Lua strings before anything else runs. */
static char *scratch;
static size_t scratch_cap;

/* The clock every worker shares: expiry times are compared across them. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t ttl_ms(double seconds)
{
    return seconds > 0 ? (uint64_t)ceil(seconds * 1000.0) : 0;
}

/* Log what a crashed worker left behind; map the result code. */
static int result(torii_shdict_t *d, torii_shdict_rc_t rc, const torii_shdict_status_t *st)
{
    if (st->recovered)
        torii_log_error("shared dict \"%s\": a worker died holding its lock; %s", torii_shdict_name(d),
                        st->wiped ? "the dict was inconsistent and was emptied" : "one entry may have been lost");
    if (rc == TORII_SHDICT_OK)
        return TORII_FFI_OK;
    if (rc == TORII_SHDICT_NOT_FOUND)
        return TORII_FFI_NOT_FOUND;
    torii_ffi_set_error(torii_shdict_strerror(rc));
    return rc == TORII_SHDICT_EXISTS ? TORII_FFI_DECLINED : TORII_FFI_ERROR;
}

struct torii_shdict_s *torii_ffi_shdict(const char *name, size_t n)
{
    return torii_zones_find(name, n);
}

int torii_ffi_shdict_get(struct torii_shdict_s *d, const char *key, size_t klen, int *type, double *num,
                         const char **str, size_t *slen)
{
    torii_shdict_got_t got;
    torii_shdict_status_t st;
    torii_shdict_rc_t rc = torii_shdict_get(d, key, klen, now_ms(), scratch, scratch_cap, &got, &st);
    if (rc == TORII_SHDICT_TRUNCATED) { /* grow once to the size it said, and ask again */
        char *bigger = realloc(scratch, got.len + 1);
        if (!bigger)
            abort();
        scratch = bigger;
        scratch_cap = got.len + 1;
        rc = torii_shdict_get(d, key, klen, now_ms(), scratch, scratch_cap, &got, &st);
    }
    *type = 0;
    if (rc != TORII_SHDICT_OK)
        return result(d, rc, &st);
    *type = (int)got.type;
    *num = got.type == TORII_SHDICT_BOOLEAN ? (got.boolean ? 1 : 0) : got.num;
    *str = scratch;
    *slen = got.len;
    return result(d, rc, &st);
}

int torii_ffi_shdict_store(struct torii_shdict_s *d, int op, const char *key, size_t klen, int type, double num,
                           const char *str, size_t slen, double ttl, int *forcible)
{
    torii_shdict_value_t v = type == TORII_SHDICT_STRING   ? torii_shdict_string(str, slen)
                             : type == TORII_SHDICT_NUMBER ? torii_shdict_number(num)
                                                           : torii_shdict_boolean(num != 0);
    torii_shdict_status_t st;
    torii_shdict_rc_t rc;
    uint64_t now = now_ms(), t = ttl_ms(ttl);
    switch (op) {
    case 0: rc = torii_shdict_set(d, key, klen, &v, t, 0, now, &st); break;
    case 1: rc = torii_shdict_add(d, key, klen, &v, t, 0, now, &st); break;
    case 2: rc = torii_shdict_replace(d, key, klen, &v, t, 0, now, &st); break;
    case 3: rc = torii_shdict_safe_set(d, key, klen, &v, t, 0, now, &st); break;
    case 4: rc = torii_shdict_safe_add(d, key, klen, &v, t, 0, now, &st); break;
    default: torii_ffi_set_error("bad store operation"); return TORII_FFI_ERROR;
    }
    *forcible = st.forcible;
    return result(d, rc, &st);
}

int torii_ffi_shdict_incr(struct torii_shdict_s *d, const char *key, size_t klen, double delta, double init,
                          int has_init, double ttl, double *out)
{
    torii_shdict_status_t st;
    torii_shdict_rc_t rc = torii_shdict_incr(d, key, klen, delta, init, has_init != 0, ttl_ms(ttl), now_ms(), out, &st);
    return result(d, rc, &st);
}

int torii_ffi_shdict_delete(struct torii_shdict_s *d, const char *key, size_t klen)
{
    torii_shdict_status_t st;
    return result(d, torii_shdict_delete(d, key, klen, now_ms(), &st), &st);
}

int torii_ffi_shdict_expire(struct torii_shdict_s *d, const char *key, size_t klen, double ttl)
{
    torii_shdict_status_t st;
    return result(d, torii_shdict_expire(d, key, klen, ttl_ms(ttl), now_ms(), &st), &st);
}

int torii_ffi_shdict_ttl(struct torii_shdict_s *d, const char *key, size_t klen, double *ttl)
{
    torii_shdict_status_t st;
    uint64_t ms = 0;
    torii_shdict_rc_t rc = torii_shdict_ttl(d, key, klen, now_ms(), &ms, &st);
    *ttl = (double)ms / 1000.0;
    return result(d, rc, &st);
}

int torii_ffi_shdict_flush_all(struct torii_shdict_s *d)
{
    torii_shdict_status_t st;
    torii_shdict_flush_all(d, &st);
    return result(d, TORII_SHDICT_OK, &st);
}
