/*
 * asan.h — telling AddressSanitizer about memory torii recycles itself
 * (pool blocks kept for reuse, a Lua VM's free blocks): poisoned while
 * unused, so that a use after its release is still reported. Nothing
 * without the sanitizer.
 */
#ifndef TORII_ASAN_H
#define TORII_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define TORII_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TORII_ASAN 1
#endif
#endif

#ifdef TORII_ASAN
#include <sanitizer/asan_interface.h>
#define TORII_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define TORII_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define TORII_POISON(p, n)   ((void)(p), (void)(n))
#define TORII_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
