/* Fuzz target: smaps text. */
#include "fuzz_alloc.h"

#include <felix/felix.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static felix_mem *m;
    if (!m)
        fuzz_alloc_install();
    if (!m && felix_mem_new(&m) < 0)
        return 0;
    (void)felix_mem_parse(m, (const char *)data, size);
    for (size_t i = 0; i < felix_mem_count(m); i++)
        (void)felix_mem_find(m, felix_mem_region(m, i)->name);
    return 0;
}
