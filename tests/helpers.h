/* Test helpers: segment images built in memory, and felix-sim processes. */
#ifndef FELIX_TESTS_HELPERS_H
#define FELIX_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A segment image: 16-byte aligned, zeroed, with a version-2 header. */
typedef struct img {
    unsigned char *p;
    size_t len;
    unsigned slot;
} img;

/* tss: the header's ThreadStatsSize (0 = legacy 48-byte slots). */
void img_init(img *im, size_t len, unsigned tss);
void img_free(img *im);
/* Fill slot i with tid and counters (words after Next/TID: nwords of them);
 * returns its offset. Does not link it. */
uint32_t img_slot(img *im, unsigned i, uint32_t tid, const uint64_t *words, size_t nwords);
/* Link offsets in order: Head -> offs[0] -> ... -> offs[n-1] -> 0. */
void img_link(img *im, const uint32_t *offs, size_t n);
void img_set_u32(img *im, size_t off, uint32_t v);
/* Write the image to a file; returns 0. */
int img_write(const img *im, const char *path);

/* Start felix-sim (path from $FELIX_SIM) with args (NULL-terminated);
 * returns its PID once it printed it (waits at most 20 s), or -1. */
pid_t sim_start(const char *const *args);
/* SIGTERM it and wait for it (at most 20 s); returns its wait status. */
int sim_stop(pid_t pid);
/* Wait for exit (at most ms); returns wait status or -1 on timeout. */
int sim_wait(pid_t pid, int ms);

int64_t t_now_ns(void);
void t_sleep_ms(int ms);
/* A temporary directory for this test (created once). */
const char *t_tmpdir(void);

#endif
