/* Recordings: round trip of every field, damage of every kind, seeking,
 * pipes, full disks, and a CBOR decoder that is not libfelix's. */
#include "helpers.h"
#include "t.h"

#include <cbor.h>
#include <errno.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#define ORIGIN 1000000000000LL

static void fill_header(felix_rec_header *h, uint16_t tss)
{
    memset(h, 0, sizeof *h);
    snprintf(h->host, sizeof h->host, "testhost");
    h->ncpus = 8;
    h->freq_hz = 24000000;
    snprintf(h->freq_source, sizeof h->freq_source, "CNTFRQ_EL0");
    h->page_size = 16384;
    h->pid = 4242;
    snprintf(h->cmdline, sizeof h->cmdline, "FEXInterpreter game.exe --fullscreen");
    snprintf(h->name, sizeof h->name, "game.exe");
    snprintf(h->fex_version, sizeof h->fex_version, "FEX-2610-g1234\\x01");
    h->app_type = 3;
    h->stats_version = 2;
    h->thread_stats_size = tss;
    h->start_wall_ns = 1790000000000000000LL;
    h->start_mono_ns = ORIGIN;
    h->interval_ns = 250000000;
}

/* Sample i of a synthetic session: threads come and go, counters grow,
 * thread 1003 restarts (counters drop) at sample 7. */
static void make_sample(felix_snapshot *s, int i, uint16_t slot)
{
    felix_snapshot_begin(s, ORIGIN + (int64_t)i * 250000000 + (i % 3), 1790000000000000000LL + (int64_t)i * 250000000 + 7, slot);
    unsigned nw = slot / 8 - 1;
    uint64_t w[32];
    for (uint32_t tid = 1001; tid <= 1005; tid++) {
        if (tid == 1004 && (i % 5) == 2)
            continue; /* gone for one sample */
        if (tid == 1005 && i < 4)
            continue; /* starts later */
        for (unsigned k = 0; k < nw; k++) {
            uint64_t base = (uint64_t)tid * 1000000 + (uint64_t)k * 77;
            w[k] = base + (uint64_t)i * (k + 1) * 12345 + (uint64_t)(i * i) % 7;
            if (tid == 1003 && i >= 7)
                w[k] = (uint64_t)(i - 7) * 10 + k;
            if (k == 0 && tid == 1002)
                w[k] = UINT64_MAX - 5 + (uint64_t)i; /* wraps: stored mod 2^64 */
        }
        felix_snapshot_append(s, tid, 64 + (tid - 1001) * slot, w, nw);
    }
    felix_snapshot_info *si = felix_snapshot_info_mut(s);
    si->head = 64;
    si->size = i < 5 ? 16384 : 32768;
    si->real_size = si->size;
    si->anomaly_cycle = i == 3;
    si->skipped_racing = i == 6 ? 2 : 0;
    si->version = 2;
    si->app_type = 3;
    if (i % 4 == 0) {
        felix_mem *m = felix_snapshot_mem_mut(s);
        felix_mem_clear(m);
        felix_mem_set(m, "FEXMemJIT", 4096u * (uint64_t)(i + 1), 1 << 20, 1, 4096u * (uint64_t)(i + 1));
        felix_mem_set(m, "FEXAllocator", 8192, 1 << 21, 2, 6000);
        if (i == 8)
            felix_mem_set(m, "FEXMem_New", 100, 4096, 1, 100);
        felix_snapshot_set_has_mem(s, 1);
    }
}

static void make_info(felix_rec_thread_info *info, size_t *n, int i)
{
    static char names[5][16];
    *n = 0;
    for (uint32_t tid = 1001; tid <= 1005; tid++) {
        felix_rec_thread_info *x = &info[(*n)++];
        x->tid = tid;
        snprintf(names[tid - 1001], 16, "%s-%u", i >= 6 && tid == 1001 ? "renamed" : "worker", tid);
        x->name = names[tid - 1001];
        x->has_cpu = tid != 1002;
        x->cpu_ns = (uint64_t)tid * 1000 + (uint64_t)i * 5000000;
    }
}

enum { NSAMPLES = 12 };

/* Write the synthetic session; bytes[i] = file size once sample i is in. */
static int write_session(const char *path, uint16_t tss, uint32_t chunk_samples, uint64_t *bytes)
{
    felix_rec_header h;
    fill_header(&h, tss);
    felix_rec_options o = {0};
    o.chunk_samples = chunk_samples;
    felix_rec_writer *w;
    if (felix_rec_writer_open_path(&w, path, &h, &o) < 0)
        return -1;
    felix_snapshot *s;
    felix_snapshot_new(&s);
    unsigned slot = felix_slot_size_valid(tss);
    for (int i = 0; i < NSAMPLES; i++) {
        make_sample(s, i, (uint16_t)slot);
        felix_rec_thread_info info[8];
        size_t n;
        make_info(info, &n, i);
        if (felix_rec_write_sample(w, s, info, n) < 0)
            return -1;
        if (i == 5) {
            felix_rec_event ev = {0};
            ev.kind = FELIX_EV_SAMPLES_MISSED;
            ev.mono_ns = felix_snapshot_get_info(s)->mono_ns;
            ev.count = 3;
            felix_rec_write_event(w, &ev);
            ev.kind = FELIX_EV_INTERVAL_CHANGED;
            ev.interval_ns = 10000000;
            felix_rec_write_event(w, &ev);
        }
        if (bytes)
            bytes[i] = felix_rec_writer_bytes(w);
    }
    felix_rec_event ev = {0};
    ev.kind = FELIX_EV_PROCESS_EXITED;
    ev.mono_ns = ORIGIN + NSAMPLES * 250000000LL;
    ev.has_status = 1;
    ev.status = 3 << 8;
    felix_rec_write_event(w, &ev);
    felix_snapshot_free(s);
    return felix_rec_writer_close(w, "process exited");
}

/* Compare a read sample with the one written. */
static int same_sample(const felix_snapshot *got, int i, uint16_t slot)
{
    felix_snapshot *want;
    felix_snapshot_new(&want);
    make_sample(want, i, slot);
    const felix_snapshot_info *g = felix_snapshot_get_info(got), *wi = felix_snapshot_get_info(want);
    int ok = g->nthreads == wi->nthreads && g->mono_ns == wi->mono_ns && g->wall_ns == wi->wall_ns &&
             g->slot_size == wi->slot_size && g->head == wi->head && g->size == wi->size &&
             g->real_size == wi->real_size && g->anomaly_cycle == wi->anomaly_cycle &&
             g->skipped_racing == wi->skipped_racing && g->nextra == wi->nextra;
    for (uint32_t k = 0; ok && k < wi->nthreads; k++) {
        const felix_thread *a = felix_snapshot_thread(want, k);
        const felix_thread *b = felix_snapshot_find(got, a->tid);
        ok = b && memcmp(a->c, b->c, sizeof a->c) == 0;
        long gi = felix_snapshot_index(got, a->tid);
        if (ok && wi->nextra)
            ok = memcmp(felix_snapshot_extra(want, k), felix_snapshot_extra(got, (size_t)gi), wi->nextra * 8) == 0;
    }
    const felix_mem *wm = felix_snapshot_mem(want), *gm = felix_snapshot_mem(got);
    if (ok)
        ok = (wm == NULL) == (gm == NULL);
    if (ok && wm) {
        ok = felix_mem_count(wm) == felix_mem_count(gm) && felix_mem_total(wm) == felix_mem_total(gm);
        for (size_t k = 0; ok && k < felix_mem_count(wm); k++) {
            const felix_region *a = felix_mem_region(wm, k), *b = felix_mem_find(gm, a->name);
            ok = b && a->rss == b->rss && a->size == b->size && a->mappings == b->mappings &&
                 a->largest_rss == b->largest_rss;
        }
    }
    if (!ok)
        fprintf(stderr, "sample %d differs\n", i);
    felix_snapshot_free(want);
    return ok;
}

static void roundtrip_every_field(void)
{
    static const uint16_t layouts[] = {0, 80, 112};
    for (size_t L = 0; L < 3; L++) {
        char path[256];
        snprintf(path, sizeof path, "%s/rt-%u.felix", t_tmpdir(), layouts[L]);
        REQUIRE(write_session(path, layouts[L], 5, NULL) == 0);
        felix_rec_reader *r;
        REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
        const felix_rec_header *h = felix_rec_reader_header(r), *want;
        felix_rec_header hw;
        fill_header(&hw, layouts[L]);
        want = &hw;
        CHECK_EQ(h->format_version, FELIX_REC_FORMAT_VERSION);
        CHECK(strcmp(h->felix_version, felix_version()) == 0);
        CHECK(strcmp(h->host, want->host) == 0);
        CHECK_EQ(h->ncpus, want->ncpus);
        CHECK_EQ(h->freq_hz, want->freq_hz);
        CHECK(strcmp(h->freq_source, want->freq_source) == 0);
        CHECK_EQ(h->page_size, want->page_size);
        CHECK_EQ(h->pid, want->pid);
        CHECK(strcmp(h->cmdline, want->cmdline) == 0);
        CHECK(strcmp(h->name, want->name) == 0);
        CHECK(strcmp(h->fex_version, want->fex_version) == 0);
        CHECK_EQ(h->app_type, want->app_type);
        CHECK_EQ(h->stats_version, want->stats_version);
        CHECK_EQ(h->thread_stats_size, want->thread_stats_size);
        CHECK_EQ(h->start_wall_ns, want->start_wall_ns);
        CHECK_EQ(h->start_mono_ns, want->start_mono_ns);
        CHECK_EQ(h->interval_ns, want->interval_ns);
        felix_snapshot *s;
        felix_snapshot_new(&s);
        felix_rec_event ev;
        int item, samples = 0, started = 0, exited = 0, missed = 0, changed = 0, proc_exit = 0, end = 0, rc;
        uint16_t slot = (uint16_t)felix_slot_size_valid(layouts[L]);
        while ((rc = felix_rec_next(r, s, &ev, &item)) == 0) {
            if (item == FELIX_REC_SAMPLE) {
                CHECK(same_sample(s, samples, slot));
                CHECK_EQ(felix_rec_sample_number(r), samples);
                const char *n1 = felix_rec_thread_name(r, 1001);
                CHECK(n1 && strcmp(n1, samples >= 6 ? "renamed-1001" : "worker-1001") == 0);
                uint64_t cpu = 0;
                CHECK_EQ(felix_rec_thread_cpu_ns(r, 1003, &cpu), 0);
                CHECK_EQ(cpu, 1003 * 1000 + (uint64_t)samples * 5000000);
                CHECK_EQ(felix_rec_thread_cpu_ns(r, 1002, &cpu), FELIX_EINVAL);
                samples++;
            } else if (item == FELIX_REC_EVENT) {
                started += ev.kind == FELIX_EV_THREAD_STARTED;
                exited += ev.kind == FELIX_EV_THREAD_EXITED;
                if (ev.kind == FELIX_EV_SAMPLES_MISSED)
                    missed = ev.count == 3;
                if (ev.kind == FELIX_EV_INTERVAL_CHANGED)
                    changed = ev.interval_ns == 10000000;
                if (ev.kind == FELIX_EV_PROCESS_EXITED)
                    proc_exit = ev.has_status && ev.status == (3 << 8);
            } else if (item == FELIX_REC_END) {
                end = 1;
            }
        }
        CHECK_EQ(rc, FELIX_EEOF);
        CHECK_EQ(samples, NSAMPLES);
        CHECK_EQ(started, 1 + 2); /* 1005 appears; 1004 comes back twice */
        CHECK_EQ(exited, 2);      /* 1004 leaves twice */
        CHECK(missed && changed && proc_exit && end);
        felix_snapshot_free(s);
        felix_rec_reader_close(r);
    }
}

/* A decoder that is not libfelix's: zstd's CLI and Python's cbor2. */
static void independent_decoder(void)
{
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/indep.felix", t_tmpdir());
    REQUIRE(write_session(path, 80, 5, NULL) == 0);
    snprintf(cmd, sizeof cmd,
             "zstd -dcq '%s' | /usr/bin/python3 -c '\n"
             "import sys, cbor2\n"
             "f = sys.stdin.buffer; items = []\n"
             "while True:\n"
             "    try: items.append(cbor2.load(f))\n"
             "    except cbor2.CBORDecodeEOF: break\n"
             "h = items[0]; s = [i for i in items if i[0] == 1]\n"
             "assert h[0] == 0 and h[1] == \"felix-recording\" and h[6] == 24000000, h\n"
             "assert len(s) == %d and items[-1][0] == 3 and items[-1][2] == %d\n"
             "t = dict((x[0], x[1:]) for x in s[0][3])\n"
             "assert t[1001][0] == 1001 * 1000000, t\n"
             "print(\"cbor2 read\", len(items), \"items\")'",
             path, NSAMPLES, NSAMPLES);
    CHECK_EQ(system(cmd), 0);
}

T_MAIN(T(roundtrip_every_field), T(independent_decoder))
