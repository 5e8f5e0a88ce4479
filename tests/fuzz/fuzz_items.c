/* Fuzz target: the recording reader at the CBOR level. The input is a
 * recording's decompressed bytes (its CBOR items); each run compresses it
 * as a recording writer would (one frame for the header item, then frames
 * of the rest) so mutations reach the item parser instead of zstd's
 * checksum. The corpus holds decompressed recordings. */
#include "fuzz_read.h"

#include <string.h>
#include <zstd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ZSTD_CCtx *c;
    static unsigned char *out;
    static size_t cap;
    if (!c) {
        c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
        ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 20);
    }
    size_t bound = 2 * ZSTD_compressBound(size) + 64;
    if (bound > cap) {
        free(out);
        out = malloc(bound);
        cap = out ? bound : 0;
        if (!out)
            return 0;
    }
    /* Frame boundaries from the input itself: its first byte picks where the
     * first frame ends, so frames split items in every way too. */
    size_t cut = size ? (size_t)data[0] * size / 256 : 0, n = 0;
    const unsigned char *parts[2] = {data, data + cut};
    size_t lens[2] = {cut, size - cut};
    for (int i = 0; i < 2; i++) {
        if (!lens[i])
            continue;
        size_t k = ZSTD_compress2(c, out + n, cap - n, parts[i], lens[i]);
        if (ZSTD_isError(k))
            return 0;
        n += k;
    }
    fuzz_read(out, n);
    return 0;
}
