#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void img_init(img *im, size_t len, unsigned tss)
{
    im->len = len;
    im->p = aligned_alloc(64, (len + 63) & ~(size_t)63);
    memset(im->p, 0, len);
    im->slot = tss ? tss : 48;
    im->p[0] = 2;
    im->p[1] = 1;
    im->p[2] = (unsigned char)(tss & 0xff);
    im->p[3] = (unsigned char)(tss >> 8);
    memcpy(im->p + 4, "FEX-test", 8);
    uint32_t size = (uint32_t)len;
    memcpy(im->p + 56, &size, 4);
}

void img_free(img *im) { free(im->p); }

void img_set_u32(img *im, size_t off, uint32_t v) { memcpy(im->p + off, &v, 4); }

uint32_t img_slot(img *im, unsigned i, uint32_t tid, const uint64_t *words, size_t nwords)
{
    uint32_t off = 64 + i * im->slot;
    img_set_u32(im, off + 4, tid);
    size_t max = im->slot / 8 - 1;
    for (size_t w = 0; w < nwords && w < max; w++)
        memcpy(im->p + off + 8 + 8 * w, &words[w], 8);
    return off;
}

void img_link(img *im, const uint32_t *offs, size_t n)
{
    img_set_u32(im, 52, n ? offs[0] : 0);
    for (size_t i = 0; i < n; i++)
        img_set_u32(im, offs[i], i + 1 < n ? offs[i + 1] : 0);
}

int img_write(const img *im, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(im->p, 1, im->len, f);
    return (fclose(f) == 0 && w == im->len) ? 0 : -1;
}

int64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void t_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

const char *t_tmpdir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/felix-test-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

pid_t sim_start(const char *const *args)
{
    const char *sim = getenv("FELIX_SIM");
    if (!sim)
        sim = "felix-sim";
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    const char *argv[64];
    size_t n = 0;
    /* Cross builds run felix-sim through the same emulator as the tests,
     * e.g. FELIX_EXEC_WRAPPER="qemu-aarch64". */
    static char wrapper[256];
    const char *w = getenv("FELIX_EXEC_WRAPPER");
    if (w && *w) {
        snprintf(wrapper, sizeof wrapper, "%s", w);
        for (char *tok = strtok(wrapper, " "); tok && n < 8; tok = strtok(NULL, " "))
            argv[n++] = tok;
    }
    const char *file = n ? argv[0] : sim;
    argv[n++] = sim;
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(file, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t got = 0;
    int64_t deadline = t_now_ns() + 20000000000LL;
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        int left = (int)((deadline - t_now_ns()) / 1000000);
        struct pollfd p = {fds[0], POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    if (atoi(line) != pid) {
        fprintf(stderr, "felix-sim did not print its PID (got '%s')\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

int sim_wait(pid_t pid, int ms)
{
    int64_t deadline = t_now_ns() + (int64_t)ms * 1000000;
    int st;
    while (t_now_ns() < deadline) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        t_sleep_ms(5);
    }
    return -1;
}

int sim_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = sim_wait(pid, 20000);
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    return st;
}

/* ---- the counting allocator ---- */

#include <felix/felix.h>
#include <pthread.h>

struct block_head {
    size_t size;
    size_t pad; /* keeps blocks 16-byte aligned */
};

static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static long a_calls, a_fail_at, a_failed, a_blocks;
static int a_paused;
static size_t a_live, a_peak;

static int a_should_fail(void)
{
    if (a_paused)
        return 0;
    a_calls++;
    if (a_fail_at > 0 && a_calls >= a_fail_at) {
        a_failed++;
        return 1;
    }
    return 0;
}

static void *a_malloc(size_t n, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&alloc_lock);
    struct block_head *b = a_should_fail() ? NULL : malloc(sizeof *b + n);
    if (b) {
        b->size = n;
        a_blocks++;
        a_live += n;
        if (a_live > a_peak)
            a_peak = a_live;
    }
    pthread_mutex_unlock(&alloc_lock);
    return b ? b + 1 : NULL;
}

static void a_free(void *p, void *ctx)
{
    (void)ctx;
    if (!p)
        return;
    struct block_head *b = (struct block_head *)p - 1;
    pthread_mutex_lock(&alloc_lock);
    a_blocks--;
    a_live -= b->size;
    pthread_mutex_unlock(&alloc_lock);
    free(b);
}

static void *a_realloc(void *p, size_t n, void *ctx)
{
    if (!p)
        return a_malloc(n, ctx);
    struct block_head *old = (struct block_head *)p - 1;
    pthread_mutex_lock(&alloc_lock);
    size_t was = old->size;
    struct block_head *b = a_should_fail() ? NULL : realloc(old, sizeof *b + n);
    if (b) {
        b->size = n;
        a_live = a_live - was + n;
        if (a_live > a_peak)
            a_peak = a_live;
    }
    pthread_mutex_unlock(&alloc_lock);
    return b ? b + 1 : NULL;
}

void t_alloc_install(void)
{
    static const felix_allocator a = {FELIX_ALLOCATOR_VERSION, a_malloc, a_realloc, a_free, NULL};
    felix_set_allocator(&a);
}

void t_alloc_fail_at(long n)
{
    pthread_mutex_lock(&alloc_lock);
    a_fail_at = n;
    a_calls = a_failed = 0;
    pthread_mutex_unlock(&alloc_lock);
}

void t_alloc_heal(void)
{
    pthread_mutex_lock(&alloc_lock);
    a_fail_at = 0;
    pthread_mutex_unlock(&alloc_lock);
}

void t_alloc_pause(int paused)
{
    pthread_mutex_lock(&alloc_lock);
    a_paused = paused;
    pthread_mutex_unlock(&alloc_lock);
}

long t_alloc_calls(void) { return a_calls; }
long t_alloc_failed(void) { return a_failed; }
long t_alloc_blocks(void) { return a_blocks; }
size_t t_alloc_peak(void) { return a_peak; }
void t_alloc_reset_peak(void) { a_peak = a_live; }

long t_oom_loop(const char *what, int (*step)(void *arg), void *arg)
{
    t_alloc_install();
    for (long n = 1;; n++) {
        long blocks = t_alloc_blocks();
        t_alloc_fail_at(n);
        int rc = step(arg);
        long calls = t_alloc_calls(), failed = t_alloc_failed();
        t_alloc_fail_at(0);
        if (t_alloc_blocks() != blocks) {
            fprintf(stderr, "%s: failing allocation %ld: %ld blocks leaked\n", what, n, t_alloc_blocks() - blocks);
            return -1;
        }
        if (rc != 0 && rc != FELIX_ENOMEM) {
            fprintf(stderr, "%s: failing allocation %ld: error %d (%s), not FELIX_ENOMEM\n", what, n, rc,
                    felix_error_detail());
            return -1;
        }
        if (rc != 0 && failed == 0) {
            fprintf(stderr, "%s: FELIX_ENOMEM with no allocation failed\n", what);
            return -1;
        }
        if (calls < n) { /* nothing failed: the whole step ran */
            if (rc != 0) {
                fprintf(stderr, "%s: error %d with no allocation failing\n", what, rc);
                return -1;
            }
            return n;
        }
    }
}

int t_oom_every(const char *what, int (*step)(void *arg), void *arg, long min_runs)
{
    long runs = t_oom_loop(what, step, arg);
    fprintf(stderr, "%s: %ld runs, one failing allocation each\n", what, runs);
    felix_set_allocator(NULL);
    return runs > min_runs;
}
