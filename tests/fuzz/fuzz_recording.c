/* Fuzz target: the recording reader on arbitrary bytes (streaming, index,
 * and seeking). */

#include <felix/felix.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static felix_snapshot *s;
    if (!s && felix_snapshot_new(&s) < 0)
        return 0;
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return 0;
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
    return 0;
}
