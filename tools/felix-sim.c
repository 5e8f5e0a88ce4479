/*
 * felix-sim: a stand-in FEX process. It publishes /dev/shm/fex-<pid>-stats
 * exactly as FEX does (see docs/felix-sim.md): one-page start, doubling growth
 * up to 4 MiB, first-free slot reuse (zeroed), list linking and unlinking
 * under a process-wide lock, TID 0 then a store barrier on exit, relaxed
 * atomic adds of real cycle-counter ticks from real threads, plain counter
 * increments from the owning thread. It names memory regions like FEX.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static const char *prog = "felix-sim";

/* ---- options ---- */
enum scenario { SC_STEADY, SC_WARMUP, SC_CHURN, SC_STORM, SC_GROW };
static const char *const scenario_names[] = {"steady", "warmup", "churn", "storm", "grow"};

static struct {
    unsigned threads;
    enum scenario scenario;
    int64_t duration_ns; /* 0 = until signalled */
    uint64_t seed;
    int legacy;
    unsigned extra;
    unsigned app_type;
    size_t page;
    const char *fex_version;
    int mem;
    int unlink_at_exit;
    int exit_status;
    int64_t period_ns;
    const char *name;
    unsigned execs;        /* re-exec this many more times */
    int64_t exec_every_ns; /* after running this long */
    int64_t exec_gap_ns;   /* 0 bytes, then zeros, for this long in a new image */
    int spin;              /* timed blocks use the CPU instead of sleeping */
    double time_scale;     /* every time share multiplied by this */
    unsigned mappings;     /* --mappings: more mappings, not FEX's */
} opt = {4, SC_STEADY, 0, 1, 0, 0, 1, 0, "FEX-2610-felix-sim", 1, 1, 0, 10000000, "sim-worker",
         0, 1000000000, 20000000, 0, 1.0, 0};

/* Which image of this process we are (1 = first; more after each exec). */
static unsigned image = 1;

/* ---- the segment, written as FEX writes it ---- */
#define RESERVE (4u << 20)
static struct {
    int fd;
    char path[64];
    unsigned char *base; /* RESERVE bytes of address space, segment at start */
    uint32_t size;
    uint32_t slot;       /* bytes per slot */
    uint32_t tail;       /* offset of the list's tail, 0 if empty */
    uint32_t hint;       /* lowest slot index that may be free */
    pthread_mutex_t lock;
} seg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t freq_hz;
static atomic_int stop_flag;

static _Atomic uint32_t *u32at(uint32_t off) { return (_Atomic uint32_t *)(void *)(seg.base + off); }
static _Atomic uint64_t *u64at(uint32_t off) { return (_Atomic uint64_t *)(void *)(seg.base + off); }

/* Size the object and map it; publish the new Size once a header exists. */
static int seg_map(uint32_t size, int publish)
{
    if (ftruncate(seg.fd, size) < 0)
        return -1;
    if (mmap(seg.base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, seg.fd, 0) == MAP_FAILED)
        return -1;
    seg.size = size;
    if (publish)
        atomic_store_explicit(u32at(56), size, memory_order_relaxed);
    return 0;
}

static void sleep_ns(int64_t ns);

static int seg_create(void)
{
    snprintf(seg.path, sizeof seg.path, "/dev/shm/fex-%d-stats", (int)getpid());
    mode_t um = umask(0);
    umask(um);
    /* After an exec this truncates the same object to 0 bytes, as FEX's
     * shm_open(O_CREAT | O_TRUNC) does; then it is a page of zeros, and
     * only then gets a header. --exec-gap holds each state a while. */
    seg.fd = open(seg.path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0777 & ~um);
    if (seg.fd < 0)
        return -1;
    if (image > 1)
        sleep_ns(opt.exec_gap_ns / 2);
    seg.base = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (seg.base == MAP_FAILED)
        return -1;
    seg.slot = opt.legacy ? 48 : 80 + 8 * opt.extra;
    seg.slot = (seg.slot + 15) & ~15u;
    if (seg_map((uint32_t)opt.page, 0) < 0)
        return -1;
    if (image > 1)
        sleep_ns(opt.exec_gap_ns - opt.exec_gap_ns / 2);
    atomic_store_explicit(u32at(56), seg.size, memory_order_relaxed);
    seg.base[0] = 2;
    seg.base[1] = (unsigned char)opt.app_type;
    uint16_t tss = opt.legacy ? 0 : (uint16_t)seg.slot;
    memcpy(seg.base + 2, &tss, 2);
    strncpy((char *)seg.base + 4, opt.fex_version, 48);
    return 0;
}

static uint32_t nslots(void) { return (seg.size - 64) / seg.slot - 1; }

/* Take a slot for tid (FEX's thread start); 0 when the segment is full. */
static uint32_t slot_alloc(uint32_t tid)
{
    pthread_mutex_lock(&seg.lock);
    uint32_t off = 0;
    for (;;) {
        uint32_t n = nslots();
        for (uint32_t i = seg.hint; i < n; i++) {
            uint32_t o = 64 + i * seg.slot;
            if (atomic_load_explicit(u32at(o + 4), memory_order_relaxed) == 0) {
                off = o;
                seg.hint = i + 1;
                break;
            }
        }
        if (off || seg.size >= RESERVE || seg_map(seg.size * 2, 1) < 0)
            break;
    }
    if (off) {
        for (uint32_t w = 8; w < seg.slot; w += 8)
            atomic_store_explicit(u64at(off + w), 0, memory_order_relaxed);
        atomic_store_explicit(u32at(off), 0, memory_order_relaxed);
        atomic_store_explicit(u32at(off + 4), tid, memory_order_relaxed);
        if (atomic_load_explicit(u32at(52), memory_order_relaxed) == 0)
            atomic_store_explicit(u32at(52), off, memory_order_relaxed);
        else
            atomic_store_explicit(u32at(seg.tail), off, memory_order_relaxed);
        seg.tail = off;
    }
    pthread_mutex_unlock(&seg.lock);
    return off;
}

/* Give a slot back (FEX's thread exit). */
static void slot_free(uint32_t off)
{
    pthread_mutex_lock(&seg.lock);
    atomic_store_explicit(u32at(off + 4), 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* dmb ishst on ARM64 */
    uint32_t next = atomic_load_explicit(u32at(off), memory_order_relaxed);
    uint32_t head = atomic_load_explicit(u32at(52), memory_order_relaxed);
    uint32_t prev = 0;
    if (head == off) {
        atomic_store_explicit(u32at(52), next, memory_order_relaxed);
    } else {
        for (uint32_t o = head; o; o = atomic_load_explicit(u32at(o), memory_order_relaxed)) {
            if (atomic_load_explicit(u32at(o), memory_order_relaxed) == off) {
                prev = o;
                atomic_store_explicit(u32at(o), next, memory_order_relaxed);
                break;
            }
        }
    }
    if (seg.tail == off)
        seg.tail = prev;
    uint32_t idx = (off - 64) / seg.slot;
    if (idx < seg.hint)
        seg.hint = idx;
    pthread_mutex_unlock(&seg.lock);
}

/* ---- time ---- */
static void sleep_until(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void sleep_ns(int64_t ns)
{
    if (ns > 0)
        sleep_until(tool_now() + ns);
}

/* ---- a worker's activity ---- */
/* Shares of wall time (fractions) and rates per second for one thread. */
struct profile {
    double share[4];        /* JIT, signal, cache read lock, cache write lock */
    double rate[5];         /* jit_count, smc, sigbus, softfloat, cache_miss */
};
static const int time_field[4] = {8, 16, 56, 64};   /* byte offsets in a slot */
static const int count_field[5] = {72, 32, 24, 40, 48};

/* Whether a counter at this byte offset exists in the slot layout: legacy
 * 48-byte slots hold only JIT time, signal time, SIGBUS, SMC and soft-float,
 * and a write past them would land in the next slot's Next and TID. */
static int in_slot(int field) { return (uint32_t)field + 8 <= seg.slot; }

/* The documented rates of each scenario for thread k (1-based) at time t s. */
static void profile_for(struct profile *p, unsigned k, double t)
{
    memset(p, 0, sizeof *p);
    switch (opt.scenario) {
    case SC_STEADY:
    case SC_CHURN:
    case SC_GROW:
        p->share[0] = (double)(k % 10 + 1) * 0.05;
        p->share[1] = 0.02;
        p->share[2] = 0.01;
        p->share[3] = 0.005;
        p->rate[0] = 100.0 * k;
        p->rate[1] = k;
        p->rate[2] = 10.0 * k;
        p->rate[3] = 1000.0 * k;
        p->rate[4] = 50.0 * k;
        break;
    case SC_WARMUP:
        if (t < 3.0) {
            p->share[0] = 0.90;
            p->rate[0] = 2000.0 * k;
            p->rate[4] = 500.0 * k;
        } else {
            p->share[0] = 0.01;
            p->rate[0] = k;
            p->rate[4] = k;
        }
        p->share[1] = 0.005;
        break;
    case SC_STORM:
        p->share[0] = 0.20;
        p->share[1] = 0.10;
        p->rate[0] = 100.0 * k;
        p->rate[1] = 1000.0;
        p->rate[2] = 10000.0;
        p->rate[3] = 2000000.0;
        p->rate[4] = 50.0 * k;
        break;
    }
}

struct worker {
    pthread_t th;
    unsigned k;            /* 1-based thread number */
    int64_t lifetime_ns;   /* 0 = until stop */
    uint32_t fake_tid;     /* publish this TID instead of our own (TID reuse) */
    atomic_int done;
    uint32_t published_tid;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint32_t tid = w->fake_tid ? w->fake_tid : (uint32_t)syscall(SYS_gettid);
    w->published_tid = tid;
    uint32_t off = slot_alloc(tid);
    char name[16];
    snprintf(name, sizeof name, "%s-%u", opt.name, w->k);
    prctl(PR_SET_NAME, name);
    int64_t t0 = tool_now();
    double acc[4] = {0};   /* ticks added per timed activity */
    double sum_t[4] = {0}; /* target ticks so far */
    int64_t last[4] = {t0, t0, t0, t0}, clast = t0;
    double added[5] = {0}; /* counts added */
    double target[5] = {0};
    for (uint64_t p = 1; !atomic_load(&stop_flag); p++) {
        int64_t now = tool_now();
        if (w->lifetime_ns && now - t0 >= w->lifetime_ns)
            break;
        double t = (double)(now - t0) / 1e9;
        struct profile pr;
        profile_for(&pr, w->k, t);
        for (int a = 0; a < 4; a++) {
            if (!in_slot(time_field[a]))
                continue;
            pr.share[a] *= opt.time_scale;
            /* The target follows elapsed time, so a late or long sleep is
             * made up at the next turn and the total never drifts. */
            int64_t at = tool_now();
            sum_t[a] += pr.share[a] * (double)(at - last[a]) / 1e9 * (double)freq_hz;
            last[a] = at;
            double need = sum_t[a] - acc[a];
            if (need <= 0)
                continue;
            uint64_t b = felix_clock_ticks(), e;
            int64_t need_ns = (int64_t)(need / (double)freq_hz * 1e9);
            if (need_ns < 500000 || opt.spin) {
                /* Short blocks spin: a sleep would overshoot them several
                 * times over, and the overshoot shows at a window's edge. */
                while ((e = felix_clock_ticks()) - b < (uint64_t)need)
                    ;
            } else {
                sleep_until(tool_now() + need_ns);
                e = felix_clock_ticks();
            }
            acc[a] += (double)(e - b);
            if (off)
                atomic_fetch_add_explicit(u64at(off + (uint32_t)time_field[a]), e - b,
                                          memory_order_relaxed);
        }
        int64_t cnow = tool_now();
        for (int c = 0; c < 5; c++) {
            if (!in_slot(count_field[c]))
                continue;
            target[c] += pr.rate[c] * (double)(cnow - clast) / 1e9; /* by elapsed time */
            uint64_t add = (uint64_t)(target[c] - added[c]);
            added[c] += (double)add;
            if (off && add) {
                _Atomic uint64_t *f = u64at(off + (uint32_t)count_field[c]);
                atomic_store_explicit(f, atomic_load_explicit(f, memory_order_relaxed) + add,
                                      memory_order_relaxed);
            }
        }
        clast = cnow;
        /* Extra trailing words: word j counts (j + 1) * k per second. */
        for (unsigned j = 0; off && j < opt.extra; j++) {
            _Atomic uint64_t *f = u64at(off + 80 + 8 * j);
            uint64_t want = (uint64_t)((double)(j + 1) * w->k * (double)(cnow - t0) / 1e9);
            atomic_store_explicit(f, want, memory_order_relaxed);
        }
        sleep_until(t0 + (int64_t)p * opt.period_ns);
    }
    if (off)
        slot_free(off);
    atomic_store(&w->done, 1);
    return NULL;
}

static int start_worker(struct worker *w)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024); /* >= PTHREAD_STACK_MIN on ARM64 */
    int rc = pthread_create(&w->th, &a, worker_main, w);
    pthread_attr_destroy(&a);
    return rc;
}

/* ---- scenarios that manage threads ---- */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* churn: a population following a triangle wave between 1 and peak over 4 s,
 * each thread living 20..300 ms; every fifth new thread publishes the TID of
 * a thread that just exited, as Linux does when TIDs wrap. */
static void run_churn(int64_t end)
{
    unsigned first_page = (unsigned)((opt.page - 64) / seg.slot - 1);
    unsigned peak = opt.threads > first_page + 8 ? opt.threads : first_page + 8;
    enum { MAXW = 4096 };
    static struct worker pool[MAXW];
    unsigned counter = 0;
    uint32_t last_exited_tid = 0;
    int64_t t0 = tool_now();
    while (!atomic_load(&stop_flag) && (!end || tool_now() < end)) {
        double t = (double)(tool_now() - t0) / 1e9;
        double phase = t / 4.0 - (double)(long)(t / 4.0);
        unsigned want = 1 + (unsigned)((double)(peak - 1) * (phase < 0.5 ? phase * 2 : (1 - phase) * 2));
        unsigned alive = 0;
        for (unsigned i = 0; i < MAXW; i++) {
            struct worker *w = &pool[i];
            if (w->k && atomic_load(&w->done)) {
                pthread_join(w->th, NULL);
                last_exited_tid = w->published_tid;
                w->k = 0;
            }
            alive += w->k != 0;
        }
        for (unsigned i = 0; i < MAXW && alive < want; i++) {
            struct worker *w = &pool[i];
            if (w->k)
                continue;
            memset(w, 0, sizeof *w);
            w->k = ++counter % 10 + 1;
            w->lifetime_ns = (int64_t)(20 + rng() % 281) * 1000000;
            w->fake_tid = (counter % 5 == 0) ? last_exited_tid : 0;
            if (start_worker(w) != 0) {
                w->k = 0;
                break;
            }
            alive++;
        }
        sleep_until(tool_now() + 2000000);
    }
    atomic_store(&stop_flag, 1);
    for (unsigned i = 0; i < MAXW; i++)
        if (pool[i].k)
            pthread_join(pool[i].th, NULL);
}

/* grow: besides the real workers, virtual threads (TIDs from 0x40000000 up)
 * are registered at 20,000 per second until the segment reaches 4 MiB and
 * is full; every 10 ms each adds 1 compiled block and 1 SMC. */
static void run_grow(int64_t end)
{
    uint32_t *offs = NULL;
    size_t n = 0, cap = 0;
    int full = 0;
    int64_t t = tool_now();
    while (!atomic_load(&stop_flag) && (!end || tool_now() < end)) {
        for (int i = 0; i < 200 && !full; i++) {
            uint32_t off = slot_alloc(0x40000000u + (uint32_t)n);
            if (!off) {
                full = 1;
                break;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                offs = realloc(offs, cap * sizeof *offs);
                if (!offs)
                    exit(EXIT_FAILURE_GENERIC);
            }
            offs[n++] = off;
        }
        for (size_t i = 0; i < n; i++) {
            _Atomic uint64_t *jc = u64at(offs[i] + 72), *smc = u64at(offs[i] + 32);
            atomic_store_explicit(jc, atomic_load_explicit(jc, memory_order_relaxed) + 1, memory_order_relaxed);
            atomic_store_explicit(smc, atomic_load_explicit(smc, memory_order_relaxed) + 1, memory_order_relaxed);
        }
        t += 10000000;
        sleep_until(t);
    }
    for (size_t i = 0; i < n; i++)
        slot_free(offs[i]);
    free(offs);
}

/* ---- memory regions named like FEX's ---- */
static const struct { const char *name; size_t kib; } regions[] = {
    {"FEXMem", 64},           {"FEXMemJIT", 2048},          {"FEXMem_OpDispatcher", 64},
    {"FEXMem_Frontend", 256}, {"FEXMem_CPUBackend", 256},   {"FEXMem_Lookup", 512},
    {"FEXMem_Lookup_L1", 128},{"FEXMem_ThreadState", 256},  {"FEXMem_BlockLinks", 128},
    {"FEXMem_CallRetStacks", 128}, {"FEXMem_Misc", 64},     {"FEXAllocator", 2048},
    {"FEXAllocator", 1024},
};

/* n one-page mappings that are not FEX's, resident, each its own VMA
 * (alternate protections keep the kernel from merging neighbours). */
static void make_game_mappings(unsigned n)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t page = ps > 0 ? (size_t)ps : 4096;
    for (unsigned i = 0; i < n; i++) {
        unsigned char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return;
        p[0] = 1;
        if (i % 2)
            mprotect(p, page, PROT_READ);
    }
}

static void make_regions(void)
{
    for (size_t i = 0; i < sizeof regions / sizeof *regions; i++) {
        size_t len = regions[i].kib * 1024;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED &&
            prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, len, (unsigned long)regions[i].name) != 0) {
            /* No anon VMA names in this kernel: a memfd carries the name. */
            munmap(p, len);
            p = MAP_FAILED;
            int fd = memfd_create(regions[i].name, MFD_CLOEXEC);
            if (fd >= 0 && ftruncate(fd, (off_t)len) == 0)
                p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (fd >= 0)
                close(fd);
        }
        if (p != MAP_FAILED)
            memset(p, 0xfe, len); /* resident */
    }
}

static int64_t run_end;
static void *mgr_main(void *arg)
{
    (void)arg;
    if (opt.scenario == SC_CHURN)
        run_churn(run_end);
    else
        run_grow(run_end);
    return NULL;
}

/* exec ourselves, as a launcher chain does: the same PID, a new image. The
 * other threads vanish mid-whatever, as they do in a real exec; the segment
 * is left as it is until the new image truncates it. */
static void reexec(char **argv, int64_t end, pid_t child)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%u", image + 1);
    setenv("FELIX_SIM_IMAGE", buf, 1);
    snprintf(buf, sizeof buf, "%u", opt.execs - 1);
    setenv("FELIX_SIM_EXECS", buf, 1);
    snprintf(buf, sizeof buf, "%lld", (long long)end);
    setenv("FELIX_SIM_END", buf, 1);
    snprintf(buf, sizeof buf, "%d", (int)(child > 0 ? child : 0));
    setenv("FELIX_SIM_CHILD", buf, 1);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    /* Under an emulator (FELIX_EXEC_WRAPPER=qemu-aarch64), exec it again. */
    const char *wrap = getenv("FELIX_EXEC_WRAPPER");
    char *args[512];
    size_t k = 0;
    if (wrap && *wrap)
        args[k++] = (char *)wrap;
    args[k++] = self;
    for (int i = 1; argv[i] && k < 511; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    execvp(args[0], args);
    tool_error(prog, "cannot exec %s: %s", args[0], strerror(errno));
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-sim [OPTIONS] [--] [COMMAND [ARG...]]\n"
            "A stand-in FEX process: publishes /dev/shm/fex-<pid>-stats as FEX does, from real\n"
            "threads with the real cycle counter, and names memory regions like FEX.\n"
            "Prints its PID as the first line of stdout once the segment is ready.\n"
            "With COMMAND, runs it with each {} argument replaced by that PID (also in\n"
            "$FELIX_PID) and exits with its status when it ends.\n\n"
            "  -t, --threads N        worker threads (default 4; churn: the peak population)\n"
            "  -s, --scenario NAME    steady, warmup, churn, storm or grow (default steady)\n"
            "  -d, --duration D       exit after D (e.g. 10s, 500ms; bare number = seconds)\n"
            "      --seed S           seed for churn's random lifetimes (default 1)\n"
            "      --legacy-layout    ThreadStatsSize 0 and 48-byte slots (older FEX)\n"
            "      --extra-fields K   K extra trailing u64 words per slot (word j counts (j+1)*k/s)\n"
            "      --app-type T       0-255 or Linux32, Linux64, arm64ec, wow64 (default Linux64)\n"
            "      --page-size B      initial segment size in bytes (default: the host page)\n"
            "      --fex-version STR  the version string to publish\n"
            "      --period D         activity period of each worker (default 10ms)\n"
            "      --thread-name P    name worker k \"P-k\" (default sim-worker; 15 bytes kept)\n"
            "      --no-mem           do not create FEX-named memory regions\n"
            "      --exec N           re-exec itself N times while running (same PID), as a\n"
            "                         launcher chain does; each new image truncates the object\n"
            "                         to 0 bytes, extends it to a page, then writes the header\n"
            "      --exec-every D     run each image this long before the next exec (default 1s)\n"
            "      --exec-gap D       hold the 0-byte and all-zero states this long (default 20ms)\n"
            "      --spin             timed blocks use the CPU (busy-wait) instead of sleeping,\n"
            "                         as real FEX compiles on the CPU\n"
            "      --time-scale F     multiply every time share by F (0.01-1; default 1)\n"
            "      --no-unlink        leave the segment behind on exit (like a crashed FEX)\n"
            "      --mappings N       N more mappings of one resident page each, not FEX's (a\n"
            "                         game's: smaps grows with them)\n"
            "      --exit-status N    exit with status N (default 0)\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n\n"
            "Scenarios (thread k = 1..N; rates per second of wall time):\n"
            "  steady  JIT (k mod 10 + 1) x 5%% of wall time, signal 2%%, cache read lock 1%%,\n"
            "          write lock 0.5%%; 100k blocks, k SMC, 10k SIGBUS, 1000k soft-float,\n"
            "          50k cache misses\n"
            "  warmup  first 3 s: JIT 90%%, 2000k blocks, 500k misses; then JIT 1%%, k blocks\n"
            "  churn   steady rates; threads live 20-300 ms, population a 4 s triangle wave up\n"
            "          to max(N, first-page slots + 8); every 5th thread reuses an exited TID\n"
            "  storm   JIT 20%%, signal 10%%; 1000 SMC, 10000 SIGBUS, 2000000 soft-float per thread\n"
            "  grow    steady workers plus virtual threads added at 20000/s until 4 MiB is full\n\n"
            "Exit status: 0 done, 2 usage, 1 any other failure; --exit-status N; with\n"
            "COMMAND, the command's status.\n");
}

int main(int argc, char **argv)
{
    enum { O_SEED = 256, O_LEGACY, O_EXTRA, O_APP, O_PAGE, O_FEXV, O_NOMEM, O_NOUNLINK, O_EXIT, O_PERIOD, O_NAME,
           O_EXEC, O_EXEC_EVERY, O_EXEC_GAP, O_SPIN, O_TSCALE, O_MAPPINGS };
    static const struct option lo[] = {
        {"threads", 1, 0, 't'},       {"scenario", 1, 0, 's'},      {"duration", 1, 0, 'd'},
        {"seed", 1, 0, O_SEED},       {"legacy-layout", 0, 0, O_LEGACY}, {"extra-fields", 1, 0, O_EXTRA},
        {"app-type", 1, 0, O_APP},    {"page-size", 1, 0, O_PAGE},  {"fex-version", 1, 0, O_FEXV},
        {"no-mem", 0, 0, O_NOMEM},    {"no-unlink", 0, 0, O_NOUNLINK}, {"exit-status", 1, 0, O_EXIT},
        {"period", 1, 0, O_PERIOD},   {"thread-name", 1, 0, O_NAME}, {"exec", 1, 0, O_EXEC},
        {"exec-every", 1, 0, O_EXEC_EVERY}, {"exec-gap", 1, 0, O_EXEC_GAP}, {"spin", 0, 0, O_SPIN},
        {"time-scale", 1, 0, O_TSCALE}, {"help", 0, 0, 'h'},          {"version", 0, 0, 'V'},
        {"mappings", 1, 0, O_MAPPINGS},
        {0, 0, 0, 0}};
    long ps = sysconf(_SC_PAGESIZE);
    opt.page = ps > 0 ? (size_t)ps : 4096;
    uint64_t v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:t:s:d:hV", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            if (tool_parse_uint(optarg, 1, 4000, &v) < 0)
                goto bad;
            opt.threads = (unsigned)v;
            break;
        case 's': {
            size_t i;
            for (i = 0; i < 5 && strcmp(optarg, scenario_names[i]); i++)
                ;
            if (i == 5) {
                return tool_bad_value(prog, c, lo, optarg, "steady, warmup, churn, storm or grow");
            }
            opt.scenario = (enum scenario)i;
            break;
        }
        case 'd':
            if (tool_parse_duration(optarg, 1000000000, &opt.duration_ns) < 0)
                goto bad;
            break;
        case O_SEED:
            if (tool_parse_uint(optarg, 0, UINT64_MAX, &opt.seed) < 0)
                goto bad;
            break;
        case O_LEGACY: opt.legacy = 1; break;
        case O_EXTRA:
            if (tool_parse_uint(optarg, 0, 64, &v) < 0)
                goto bad;
            opt.extra = (unsigned)v;
            break;
        case O_APP: {
            static const char *names[] = {"Linux32", "Linux64", "arm64ec", "wow64"};
            int found = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(optarg, names[i]) == 0)
                    found = i;
            if (found < 0 && tool_parse_uint(optarg, 0, 255, &v) < 0)
                goto bad;
            opt.app_type = found >= 0 ? (unsigned)found : (unsigned)v;
            break;
        }
        case O_PAGE:
            if (tool_parse_uint(optarg, 256, 1u << 20, &v) < 0 || (v & (v - 1)))
                goto bad;
            opt.page = (size_t)v;
            break;
        case O_FEXV: opt.fex_version = optarg; break;
        case O_NAME: opt.name = optarg; break;
        case O_NOMEM: opt.mem = 0; break;
        case O_MAPPINGS:
            if (tool_parse_uint(optarg, 0, 100000, &v) < 0)
                return tool_bad_value(prog, c, lo, optarg, "a count of mappings, 0 to 100000");
            opt.mappings = (unsigned)v;
            break;
        case O_NOUNLINK: opt.unlink_at_exit = 0; break;
        case O_EXIT:
            if (tool_parse_uint(optarg, 0, 255, &v) < 0)
                goto bad;
            opt.exit_status = (int)v;
            break;
        case O_PERIOD:
            if (tool_parse_duration(optarg, 1000000, &opt.period_ns) < 0 || opt.period_ns < 100000)
                goto bad;
            break;
        case O_EXEC:
            if (tool_parse_uint(optarg, 0, 1000, &v) < 0)
                goto bad;
            opt.execs = (unsigned)v;
            break;
        case O_EXEC_EVERY:
            if (tool_parse_duration(optarg, 1000000000, &opt.exec_every_ns) < 0 || opt.exec_every_ns < 10000000)
                goto bad;
            break;
        case O_EXEC_GAP:
            if (tool_parse_duration(optarg, 1000000, &opt.exec_gap_ns) < 0 || opt.exec_gap_ns > 10000000000LL)
                goto bad;
            break;
        case O_SPIN: opt.spin = 1; break;
        case O_TSCALE: {
            char *end;
            opt.time_scale = strtod(optarg, &end);
            if (*end || !(opt.time_scale >= 0.01 && opt.time_scale <= 1))
                goto bad;
            break;
        }
        case 'h': usage(stdout); return tool_stdout_done(prog);
        case 'V': printf("felix-sim %s\n", felix_version()); return tool_stdout_done(prog);
        default: return tool_bad_option(prog, c, argv);
        }
        continue;
    bad:
        return tool_bad_value(prog, c, lo, optarg, NULL);
    }
    char **cmd = optind < argc ? argv + optind : NULL;
    /* An image after an exec: what the first image started with. */
    const char *env_image = getenv("FELIX_SIM_IMAGE");
    int64_t env_end = 0;
    pid_t env_child = 0;
    if (env_image) {
        image = (unsigned)atoi(env_image);
        opt.execs = (unsigned)atoi(getenv("FELIX_SIM_EXECS") ? getenv("FELIX_SIM_EXECS") : "0");
        env_end = getenv("FELIX_SIM_END") ? atoll(getenv("FELIX_SIM_END")) : 0;
        env_child = getenv("FELIX_SIM_CHILD") ? (pid_t)atoi(getenv("FELIX_SIM_CHILD")) : 0;
    }
    if (felix_clock_frequency(&freq_hz, NULL) < 0) {
        tool_error(prog, "no cycle counter: %s", felix_error_detail());
        return EXIT_FAILURE_GENERIC;
    }
    rng_state = opt.seed * 2654435761u + 88172645463325252ull;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* workers inherit the mask */

    if (seg_create() < 0) {
        tool_error(prog, "cannot create %s: %s", seg.path, strerror(errno));
        if (seg.path[0])
            unlink(seg.path);
        return EXIT_FAILURE_GENERIC;
    }
    if (opt.mem)
        make_regions();
    make_game_mappings(opt.mappings);

    int64_t start = tool_now();
    int64_t end = env_image ? env_end : opt.duration_ns ? start + opt.duration_ns : 0;
    struct worker *ws = NULL;
    unsigned nw = opt.scenario == SC_CHURN ? 0 : opt.threads;
    if (nw) {
        ws = calloc(nw, sizeof *ws);
        if (!ws)
            return EXIT_FAILURE_GENERIC;
        for (unsigned i = 0; i < nw; i++) {
            ws[i].k = i + 1;
            if (start_worker(&ws[i]) != 0) {
                tool_error(prog, "cannot start thread %u", i + 1);
                nw = i;
                break;
            }
        }
    }
    /* The PID line says: the segment exists and the first threads are being
     * registered. Wait until they are, so readers see every thread at once. */
    for (int tries = 0; tries < 2000 && opt.scenario != SC_CHURN; tries++) {
        unsigned linked = 0;
        for (uint32_t o = atomic_load_explicit(u32at(52), memory_order_relaxed); o && linked <= nw;
             o = atomic_load_explicit(u32at(o), memory_order_relaxed))
            linked++;
        if (linked >= nw)
            break;
        sleep_until(tool_now() + 1000000);
    }
    if (!env_image) { /* said once, by the first image */
        printf("%d\n", (int)getpid());
        fflush(stdout);
    }

    /* -- COMMAND: run it with {} replaced by our PID; end when it ends. */
    pid_t child = env_child > 0 ? env_child : -1;
    int child_status = 0;
    if (cmd && !env_image) {
        char pidstr[16];
        snprintf(pidstr, sizeof pidstr, "%d", (int)getpid());
        setenv("FELIX_PID", pidstr, 1);
        for (char **a = cmd; *a; a++)
            if (strcmp(*a, "{}") == 0)
                *a = pidstr;
        child = fork();
        if (child == 0) {
            pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
            execvp(cmd[0], cmd);
            tool_error(prog, "cannot run %s: %s", cmd[0], strerror(errno));
            _exit(127);
        }
    }

    pthread_t mgr;
    int have_mgr = 0;
    run_end = end;
    if (opt.scenario == SC_CHURN || opt.scenario == SC_GROW)
        have_mgr = pthread_create(&mgr, NULL, mgr_main, NULL) == 0;

    /* Wait for the end of the duration, a signal, or the next exec. */
    int64_t exec_at = opt.execs ? start + opt.exec_every_ns : 0;
    for (;;) {
        int sig = 0;
        if (exec_at && tool_now() >= exec_at && (!end || exec_at < end))
            reexec(argv, end, child), exec_at = 0; /* returns only when exec failed */
        if (!end && !exec_at) {
            if (sigwait(&sigs, &sig) != 0)
                continue;
        } else {
            int64_t until = end && (!exec_at || end < exec_at) ? end : exec_at;
            int64_t left = until - tool_now();
            if (left <= 0) {
                if (until == end)
                    break;
                continue;
            }
            struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
            sig = sigtimedwait(&sigs, NULL, &ts);
            if (sig <= 0)
                continue;
        }
        if (sig != SIGCHLD)
            break;
        if (child > 0 && waitpid(child, &child_status, WNOHANG) == child) {
            opt.exit_status = WIFEXITED(child_status) ? WEXITSTATUS(child_status) : 128 + WTERMSIG(child_status);
            child = -1;
            break;
        }
    }
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
    }
    atomic_store(&stop_flag, 1);
    if (have_mgr)
        pthread_join(mgr, NULL);
    for (unsigned i = 0; i < nw; i++)
        pthread_join(ws[i].th, NULL);
    free(ws);
    if (opt.unlink_at_exit)
        unlink(seg.path);
    return opt.exit_status;
}
