/*
 * zones.h — the process's shared dictionaries by name: created by the
 * master before it forks (so every worker maps the same memory), found by
 * name from Lua.
 */
#ifndef TORII_ZONES_H
#define TORII_ZONES_H

#include <stddef.h>
#include <stdint.h>

#include "shm/shdict.h"

#define TORII_ZONE_NAME_MAX 63 /* the zone keeps its name in 64 bytes */

/* Is this a usable zone name and size? False with the reason in err. */
bool torii_zones_check(const char *name, uint64_t size, char *err, size_t errlen);

/* Create one zone (names must be unique). False with a message in err. */
bool torii_zones_add(const char *name, uint64_t size, char *err, size_t errlen);

/* Is there a zone of this name? (for plugins that want one by default) */
bool torii_zones_has(const char *name);

torii_shdict_t *torii_zones_find(const char *name, size_t n);

/* Unmap every zone (at exit). */
void torii_zones_close(void);

#endif
