/* zones.c — the registry of shared dictionaries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/zones.h"

#define MAX_ZONES 64

static torii_shdict_t *zones[MAX_ZONES];
static size_t nzones;

bool torii_zones_has(const char *name)
{
    return torii_zones_find(name, strlen(name)) != NULL;
}

torii_shdict_t *torii_zones_find(const char *name, size_t n)
{
    for (size_t i = 0; i < nzones; i++) {
        const char *zn = torii_shdict_name(zones[i]);
        if (strlen(zn) == n && memcmp(zn, name, n) == 0)
            return zones[i];
    }
    return NULL;
}

bool torii_zones_check(const char *name, uint64_t size, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || n > TORII_ZONE_NAME_MAX) {
        snprintf(err, errlen, "shared dict name \"%s\": 1 to %d characters", name, TORII_ZONE_NAME_MAX);
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-')) {
            snprintf(err, errlen, "shared dict name \"%s\": letters, digits, '_' and '-' only", name);
            return false;
        }
    }
    if (size < TORII_SHDICT_MIN_SIZE || size > (64ull << 30)) {
        snprintf(err, errlen, "shared dict \"%s\": size %llu is out of range (32k .. 64g)", name,
                 (unsigned long long)size);
        return false;
    }
    return true;
}

bool torii_zones_add(const char *name, uint64_t size, char *err, size_t errlen)
{
    if (!torii_zones_check(name, size, err, errlen))
        return false;
    if (torii_zones_has(name)) {
        snprintf(err, errlen, "shared dict \"%s\" is declared twice", name);
        return false;
    }
    if (nzones == MAX_ZONES) {
        snprintf(err, errlen, "too many shared dicts (at most %d)", MAX_ZONES);
        return false;
    }
    zones[nzones] = torii_shdict_create(name, (size_t)size, err, errlen);
    if (!zones[nzones])
        return false;
    nzones++;
    return true;
}

void torii_zones_close(void)
{
    for (size_t i = 0; i < nzones; i++)
        torii_shdict_destroy(zones[i]);
    nzones = 0;
}
