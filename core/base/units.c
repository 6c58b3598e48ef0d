/* units.c — sizes and durations in human units. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/units.h"

/* Leading digits with an optional fraction; returns chars consumed (0 if
 * none). The value is scaled by 1000 so "0.5" and "500ms" share one path. */
static size_t parse_milli(const char *s, uint64_t *milli)
{
    size_t i = 0;
    uint64_t whole = 0, frac = 0, scale = 1000;
    while (isdigit((unsigned char)s[i])) {
        whole = whole * 10 + (uint64_t)(s[i] - '0');
        if (whole > (1ULL << 40))
            return 0;
        i++;
    }
    if (i == 0)
        return 0;
    if (s[i] == '.') {
        size_t j = i + 1;
        while (isdigit((unsigned char)s[j])) {
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(s[j] - '0') * scale;
            }
            j++;
        }
        if (j == i + 1)
            return 0;
        i = j;
    }
    *milli = whole * 1000 + frac;
    return i;
}

bool torii_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t milli, mult = 1;
    size_t i = parse_milli(s, &milli);
    if (i == 0 || strchr(s, '.'))
        return false; /* sizes are whole numbers */
    if (s[i] != '\0') {
        switch (s[i] | 0x20) {
        case 'k': mult = 1ULL << 10; break;
        case 'm': mult = 1ULL << 20; break;
        case 'g': mult = 1ULL << 30; break;
        default: return false;
        }
        if (s[i + 1] != '\0' && strcasecmp(s + i + 1, "b") != 0)
            return false;
    }
    milli /= 1000;
    if (milli > (1ULL << 62) / mult)
        return false;
    *bytes = milli * mult;
    return true;
}

bool torii_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    uint64_t milli;
    size_t i = parse_milli(s, &milli);
    if (i == 0)
        return false;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        if (strcmp(s + i, units[u].suffix) == 0) {
            /* milli is value*1000; scale to ms exactly for whole units */
            uint64_t v = milli / 1000 * units[u].ms + milli % 1000 * units[u].ms / 1000;
            if (v > (1ULL << 31))
                return false;
            *ms = v;
            return true;
        }
    }
    return false;
}
