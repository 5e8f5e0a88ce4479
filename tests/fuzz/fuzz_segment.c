/* Fuzz target: attach + snapshot + delta on arbitrary segment bytes. */
#include "fuzz_alloc.h"

#include <felix/felix.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static felix_snapshot *a, *b;
    static felix_delta *d;
    if (!a)
        fuzz_alloc_install();
    if (!a && (felix_snapshot_new(&a) < 0 || felix_snapshot_new(&b) < 0 ||
               felix_delta_new(&d, 1000000000, 4) < 0))
        return 0;
    /* Snapshots need a 16-byte aligned image, as a mapping is. */
    size_t cap = (size + 15) & ~(size_t)15;
    unsigned char *img = aligned_alloc(16, cap ? cap : 16);
    if (!img)
        return 0;
    memcpy(img, data, size);
    felix_shm_info info;
    (void)felix_shm_parse_header(img, size, &info);
    if (felix_shm_snapshot_image(img, size, a) == 0) {
        /* A second look, with every counter bumped, exercises the delta. */
        for (size_t i = 64; i + 16 <= size; i += 8)
            img[i] ^= 1;
        if (felix_shm_snapshot_image(img, size, b) == 0) {
            felix_snapshot_info *bi = felix_snapshot_info_mut(b);
            bi->mono_ns = felix_snapshot_get_info(a)->mono_ns + 1000000;
            (void)felix_delta_compute(d, a, b);
        }
    }
    free(img);
    return 0;
}
