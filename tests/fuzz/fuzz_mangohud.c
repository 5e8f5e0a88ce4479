/* Fuzz target: MangoHud frame-time logs (felix-report's parser), and the
 * date in a log's file name. */
#include "../../tools/mangohud.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mh_log log;
    mh_init(&log);
    mh_parse(&log, (const char *)data, size);
    /* What felix-report relies on: frames in time order, finite times. */
    for (size_t i = 1; i < log.n; i++)
        if (log.f[i].elapsed_ns < log.f[i - 1].elapsed_ns || !(log.f[i].frametime_ms >= 0))
            abort();
    mh_free(&log);
    char name[256];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    int64_t t;
    (void)mh_name_time(name, &t);
    return 0;
}
