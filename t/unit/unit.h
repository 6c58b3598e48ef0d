/*
 * unit.h — a tiny unit-test harness for the C core.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_STR(a, "b"); }
 *   int main(void) { RUN(name); return unit_report(); }
 *
 * Every CHECK counts as one assertion; a test passes when all its checks
 * pass. The last line printed is "<file>: N passed, M failed" (tests).
 */
#ifndef TORII_UNIT_H
#define TORII_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed, unit_current_failed;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                          \
            unit_current_failed = 1;                                                                                   \
        }                                                                                                              \
    } while (0)

#define CHECK_INT(a, b)                                                                                                \
    do {                                                                                                               \
        long long _a = (long long)(a), _b = (long long)(b);                                                            \
        if (_a != _b) {                                                                                                \
            fprintf(stderr, "  FAIL %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, _a, _b);              \
            unit_current_failed = 1;                                                                                   \
        }                                                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                                                \
    do {                                                                                                               \
        const char *_a = (a), *_b = (b);                                                                               \
        if (!_a || strcmp(_a, _b) != 0) {                                                                              \
            fprintf(stderr, "  FAIL %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,                   \
                    _a ? _a : "(null)", _b);                                                                           \
            unit_current_failed = 1;                                                                                   \
        }                                                                                                              \
    } while (0)

/* A slice equals a C string. */
#define CHECK_SLICE(s, lit)                                                                                            \
    do {                                                                                                               \
        torii_str_t _s = (s);                                                                                          \
        const char *_l = (lit);                                                                                        \
        if (_s.n != strlen(_l) || memcmp(_s.p, _l, _s.n) != 0) {                                                       \
            fprintf(stderr, "  FAIL %s:%d: %s == \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__, #s, (int)_s.n,      \
                    _s.p, _l);                                                                                         \
            unit_current_failed = 1;                                                                                   \
        }                                                                                                              \
    } while (0)

#define RUN(name)                                                                                                      \
    do {                                                                                                               \
        unit_current_failed = 0;                                                                                       \
        name();                                                                                                        \
        if (unit_current_failed) {                                                                                     \
            unit_failed++;                                                                                             \
            fprintf(stderr, "FAILED %s\n", #name);                                                                     \
        } else {                                                                                                       \
            unit_passed++;                                                                                             \
        }                                                                                                              \
    } while (0)

static inline int unit_report(const char *file)
{
    printf("%s: %d passed, %d failed\n", file, unit_passed, unit_failed);
    return unit_failed ? 1 : 0;
}

#endif
