/* Shared by the recording fuzz targets: read a recording's bytes every way
 * the API allows (streaming, index, seeking), with libfelix's memory capped
 * (fuzz_alloc.h). */
#ifndef FELIX_FUZZ_READ_H
#define FELIX_FUZZ_READ_H

#include "fuzz_alloc.h"

#include <felix/felix.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void fuzz_read(const void *data, size_t size)
{
    static felix_snapshot *s;
    if (!s) {
        fuzz_alloc_install();
        if (felix_snapshot_new(&s) < 0)
            return;
    }
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return;
    if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return;
    }
    felix_rec_reader *r;
    if (felix_rec_reader_open_fd(&r, fd) == 0) {
        felix_rec_event ev;
        int item, n = 0;
        while (n++ < 10000 && felix_rec_next(r, s, &ev, &item) == 0)
            (void)felix_rec_thread_name(r, 1);
        uint64_t total = 0;
        if (felix_rec_summary(r, &total, NULL) == 0 && total > 0) {
            (void)felix_rec_seek_sample(r, total / 2);
            (void)felix_rec_next_sample(r, s);
            (void)felix_rec_seek_time(r, 1000000);
            (void)felix_rec_next_sample(r, s);
        }
        const char *const *names;
        size_t nn;
        (void)felix_rec_region_names(r, &names, &nn);
        felix_rec_reader_close(r);
    }
    close(fd);
}

#endif
