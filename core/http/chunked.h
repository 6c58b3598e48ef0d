/*
 * chunked.h — a strict, incremental decoder for chunked bodies
 * (RFC 9112 section 7.1). It returns the data of each chunk as slices of
 * the input, without copying, and rejects anything a lenient parser would
 * have to guess about: missing CRLF after chunk data, a size that is not
 * hex, an overflowing size, a bare LF, control bytes in extensions or
 * trailers, oversized size lines or trailer sections.
 *
 * Chunk extensions and trailer fields are checked and dropped; the bytes
 * torii forwards are re-framed by the caller.
 */
#ifndef TORII_CHUNKED_H
#define TORII_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

#define TORII_CHUNK_LINE_MAX    4096  /* size line with extensions */
#define TORII_CHUNK_TRAILER_MAX 16384 /* whole trailer section */

typedef struct {
    uint8_t state;
    uint64_t size;    /* bytes left in the current chunk */
    uint32_t line;    /* bytes of the current size or trailer line */
    uint32_t trailer; /* bytes of the trailer section so far */
} torii_chunked_t;

static inline void torii_chunked_init(torii_chunked_t *c)
{
    *c = (torii_chunked_t){0};
}

/*
 * Decode from in[0..len). Sets *consumed and *data (body bytes found, a
 * slice of `in`, possibly empty). Returns:
 *   TORII_OK    some progress; call again with the rest of the input,
 *   TORII_AGAIN all input used; more is needed,
 *   TORII_DONE  the last chunk and trailers are complete: the message ends
 *               at in + *consumed,
 *   TORII_ERROR malformed; *reason says how.
 */
int torii_chunked_decode(torii_chunked_t *c, const char *in, size_t len, size_t *consumed, torii_str_t *data,
                         const char **reason);

#endif
