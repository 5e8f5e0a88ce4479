/* Fuzz target: the recording reader on arbitrary bytes (zstd frames,
 * skippable frames, the index). fuzz_items reaches the CBOR items. */
#include "fuzz_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read(data, size);
    return 0;
}
