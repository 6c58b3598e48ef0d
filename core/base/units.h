/*
 * units.h — human units used in configuration: sizes (`512`, `32k`, `1m`,
 * `2g`, binary multiples) and durations (`500ms`, `3s`, `2m`, `1h`, `1d`;
 * a bare number is seconds and may have a fraction: `0.5`).
 */
#ifndef TORII_UNITS_H
#define TORII_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* Parse a size in bytes. False if malformed or over 2^62. */
bool torii_parse_size(const char *s, uint64_t *bytes);

/* Parse a duration in milliseconds. False if malformed or over 2^31 ms. */
bool torii_parse_duration(const char *s, uint64_t *ms);

#endif
