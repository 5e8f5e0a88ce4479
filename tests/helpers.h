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

/* A counting allocator for libfelix (felix_set_allocator) that can fail:
 * t_alloc_install() puts it in place; t_alloc_fail_at(n) makes the nth
 * allocation from now on fail, and every one after it too (0: none fail). */
void t_alloc_install(void);
void t_alloc_fail_at(long n);
void t_alloc_heal(void);         /* no more failures (the counts go on) */
void t_alloc_pause(int paused);  /* while paused, allocations neither count nor fail */
long t_alloc_calls(void);        /* allocations since the last t_alloc_fail_at */
long t_alloc_failed(void);       /* of them, how many failed */
long t_alloc_blocks(void);       /* blocks live */
size_t t_alloc_peak(void);       /* most bytes live at once since t_alloc_reset_peak */
void t_alloc_reset_peak(void);

/* Run step(arg) with the nth allocation failing, for n = 1, 2, ... until a
 * run needs no more allocations than n - 1 (so none failed). step returns 0
 * when it got through, or the felix error it stopped at, which must be
 * FELIX_ENOMEM; every run must free what it allocated. Returns the number
 * of runs, or -1 (with a message) on a wrong error or a leak. */
long t_oom_loop(const char *what, int (*step)(void *arg), void *arg);
/* t_oom_loop, its count printed; then the C library's allocator again.
 * Returns whether it went through more than min_runs runs. */
int t_oom_every(const char *what, int (*step)(void *arg), void *arg, long min_runs);

int64_t t_now_ns(void);
void t_sleep_ms(int ms);
/* A temporary directory for this test (created once). */
const char *t_tmpdir(void);

#endif
