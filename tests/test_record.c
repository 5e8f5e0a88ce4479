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
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stddef.h>
#include <zstd.h>

#define ORIGIN 1000000000000LL

static void fill_header(felix_rec_header *h, uint16_t tss)
{
    *h = (felix_rec_header)FELIX_REC_HEADER_INIT;
    snprintf(h->host, sizeof h->host, "testhost");
    h->ncpus = 8;
    h->freq_hz = 24000000;
    snprintf(h->freq_source, sizeof h->freq_source, "CNTFRQ_EL0");
    h->page_size = 16384;
    h->pid = 4242;
    /* Bytes that are not UTF-8 (Latin-1, a lone continuation byte): a
     * strict CBOR decoder must still read every item. */
    snprintf(h->cmdline, sizeof h->cmdline, "FEXInterpreter g\xe4me.exe --fullscreen \x80\xff");
    snprintf(h->name, sizeof h->name, "g\xe4me.exe");
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
        if (i != 4) /* the whole process's (key 12); one sample without */
            felix_mem_set_process(m, (uint64_t)(i + 100) << 20, 3000u + (unsigned)i);
        felix_snapshot_set_has_mem(s, 1);
    }
}

static void make_info(felix_rec_thread_info *info, size_t *n, int i)
{
    static char names[5][16];
    *n = 0;
    for (uint32_t tid = 1001; tid <= 1005; tid++) {
        felix_rec_thread_info *x = &info[(*n)++];
        *x = (felix_rec_thread_info)FELIX_REC_THREAD_INFO_INIT;
        x->tid = tid;
        snprintf(names[tid - 1001], 16, "%s-%u", i >= 6 && tid == 1001 ? "renamed" : tid == 1005 ? "w\xc3\x28" : "worker", tid);
        x->name = names[tid - 1001];
        x->has_cpu = tid != 1002;
        x->cpu_ns = (uint64_t)tid * 1000 + (uint64_t)i * 5000000;
    }
}

enum { NSAMPLES = 12 };

/* Write the synthetic session; bytes[i] = file size once sample i is in. */
static int write_session(const char *path, uint16_t tss, uint32_t chunk_samples, uint64_t *bytes)
{
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, tss);
    felix_rec_options o = FELIX_REC_OPTIONS_INIT;
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
        if (bytes)
            bytes[i] = felix_rec_writer_bytes(w);
        if (i == 5) {
            felix_rec_event ev = FELIX_REC_EVENT_INIT;
            ev.kind = FELIX_EV_SAMPLES_MISSED;
            ev.mono_ns = felix_snapshot_get_info(s)->mono_ns;
            ev.count = 3;
            felix_rec_write_event(w, &ev);
            ev.kind = FELIX_EV_INTERVAL_CHANGED;
            ev.interval_ns = 10000000;
            felix_rec_write_event(w, &ev);
        }
    }
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
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
        ok = felix_mem_count(wm) == felix_mem_count(gm) && felix_mem_total(wm) == felix_mem_total(gm) &&
             felix_mem_process_rss(wm) == felix_mem_process_rss(gm) &&
             felix_mem_process_mappings(wm) == felix_mem_process_mappings(gm);
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
        felix_rec_header hw = FELIX_REC_HEADER_INIT;
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
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
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
        /* 1005 appears; 1004 comes back twice; 1002's first word wraps at
         * sample 6 and 1003 restarts at 7 (counters that go back: a new
         * thread, for the live delta as for the recording) */
        CHECK_EQ(started, 1 + 2 + 2);
        CHECK_EQ(exited, 2 + 2);
        CHECK(missed && changed && proc_exit && end);
        felix_snapshot_free(s);
        felix_rec_reader_close(r);
    }
}

/* What libfelix reads, in tests/felix_decode.py's lines. */
static int library_lines(const char *path, FILE *out)
{
    felix_rec_reader *r;
    if (felix_rec_reader_open_path(&r, path) < 0)
        return -1;
    int64_t origin = felix_rec_reader_header(r)->start_mono_ns;
    felix_snapshot *s;
    felix_snapshot_new(&s);
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
    int item, rc;
    uint64_t w[FELIX_NCOUNTERS + 64];
    while ((rc = felix_rec_next(r, s, &ev, &item)) == 0) {
        if (item == FELIX_REC_EVENT) {
            fprintf(out, "E %lld %d %u\n", (long long)(ev.mono_ns - origin), ev.kind, ev.tid);
        } else if (item == FELIX_REC_SAMPLE) {
            const felix_snapshot_info *si = felix_snapshot_get_info(s);
            fprintf(out, "S %lld %u", (long long)(si->mono_ns - origin), si->image);
            for (uint32_t i = 0; i < si->nthreads; i++) {
                const felix_thread *t = felix_snapshot_thread(s, i);
                size_t nw = si->nknown, k;
                memcpy(w, t->c, nw * 8);
                const uint64_t *e = felix_snapshot_extra(s, i);
                for (k = 0; e && k < si->nextra; k++)
                    w[nw++] = e[k];
                fprintf(out, " %u:%u:", t->tid, t->offset);
                for (k = 0; k < nw; k++)
                    fprintf(out, "%s%llu", k ? "," : "", (unsigned long long)w[k]);
                uint64_t cpu;
                if (felix_rec_thread_cpu_ns(r, t->tid, &cpu) == 0)
                    fprintf(out, ":%llu", (unsigned long long)cpu);
                const char *name = felix_rec_thread_name(r, t->tid);
                if (name) {
                    fputc('/', out);
                    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
                        fprintf(out, "%02x", *c);
                }
            }
            fputc('\n', out);
        }
    }
    felix_snapshot_free(s);
    felix_rec_reader_close(r);
    return rc == FELIX_EEOF ? 0 : -1;
}

/* Decode with a decoder that is not libfelix's (zstd's CLI, Python's cbor2,
 * which refuses text strings that are not UTF-8, and tests/felix_decode.py,
 * written from docs/recording-format.md) and compare every line. */
static int same_as_independent(const char *path)
{
    const char *dec = getenv("FELIX_DECODER");
    char mine[300], theirs[300], cmd[1200];
    snprintf(mine, sizeof mine, "%s.lib", path);
    snprintf(theirs, sizeof theirs, "%s.py", path);
    FILE *f = fopen(mine, "w");
    if (!f || library_lines(path, f) < 0)
        return 0;
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' > '%s' && cmp '%s' '%s'", dec ? dec : "felix_decode.py", path,
             theirs, mine, theirs);
    return system(cmd) == 0;
}

static void independent_decoder(void)
{
    static const uint16_t layouts[] = {0, 80, 112};
    for (size_t L = 0; L < 3; L++) {
        char path[256];
        snprintf(path, sizeof path, "%s/indep-%u.felix", t_tmpdir(), layouts[L]);
        REQUIRE(write_session(path, layouts[L], 5, NULL) == 0);
        CHECK(same_as_independent(path));
    }
    /* Format 1 files stay readable: the same lines from both decoders. */
    const char *data = getenv("FELIX_TEST_DATA");
    static const char *const v1[] = {"v1-steady.felix", "v1-churn.felix", "v1-exec.felix"};
    for (size_t k = 0; data && k < 3; k++) {
        char src[512], path[512], cmd[1200];
        snprintf(src, sizeof src, "%s/%s", data, v1[k]);
        snprintf(path, sizeof path, "%s/%s", t_tmpdir(), v1[k]);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, path);
        REQUIRE(system(cmd) == 0);
        CHECK(same_as_independent(path));
    }
    CHECK(data != NULL);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Read a recording held in memory (through a memfd); returns samples read,
 * the final code in *rc, and checks each sample's content. */
static int read_all(const unsigned char *data, size_t len, uint16_t slot, int *rc_out)
{
    int fd = memfd_create("rec", 0);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        return -1;
    lseek(fd, 0, SEEK_SET);
    felix_rec_reader *r;
    int rc = felix_rec_reader_open_fd(&r, fd);
    int n = 0;
    if (rc == 0) {
        felix_snapshot *s;
        felix_snapshot_new(&s);
        while ((rc = felix_rec_next_sample(r, s)) == 0) {
            if (!same_sample(s, n, slot))
                t_failures++;
            n++;
        }
        felix_snapshot_free(s);
        felix_rec_reader_close(r);
    }
    close(fd);
    *rc_out = rc;
    return n;
}

/* A file cut at every byte offset of its last chunk, and at random offsets
 * elsewhere, reads back every sample flushed before the cut. */
static void cut_anywhere(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/cut.felix", t_tmpdir());
    uint64_t bytes[NSAMPLES];
    REQUIRE(write_session(path, 80, 5, bytes) == 0);
    size_t len;
    unsigned char *data = slurp(path, &len);
    REQUIRE(data);
    /* The last chunk starts after the tenth sample's predecessor. */
    size_t last_chunk = (size_t)bytes[9];
    size_t cuts = 0;
    srand(7);
    for (size_t cut = 0; cut <= len; cut++) {
        if (cut < last_chunk && rand() % 20 != 0)
            continue;
        int rc;
        int n = read_all(data, cut, 80, &rc);
        int want = 0;
        while (want < NSAMPLES && bytes[want] <= cut)
            want++;
        if (n != want) {
            fprintf(stderr, "cut at %zu: read %d samples, %d were flushed before it\n", cut, n, want);
            t_failures++;
        }
        if (cut < len && rc == FELIX_ETRUNC)
            CHECK(strstr(felix_error_detail(), "byte") != NULL);
        CHECK(rc == FELIX_EEOF || rc == FELIX_ETRUNC || rc == FELIX_ECORRUPT);
        if (cut == len)
            CHECK_EQ(rc, FELIX_EEOF);
        cuts++;
    }
    CHECK(cuts > 100);
    free(data);
}

/* Garbage, a foreign file, and a flipped byte in the middle. */
static void corrupt_data(void)
{
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    int rc;
    CHECK_EQ(read_all(junk, sizeof junk, 80, &rc), 0);
    CHECK_EQ(rc, FELIX_ECORRUPT);
    CHECK_EQ(read_all(junk, 0, 80, &rc), 0);
    CHECK_EQ(rc, FELIX_ETRUNC);
    /* A zstd stream holding CBOR that is not a recording. */
    unsigned char cb[16], z[128];
    size_t n = cbor_encode_uint(7, cb, sizeof cb);
    size_t zn = ZSTD_compress(z, sizeof z, cb, n, 3);
    CHECK_EQ(read_all(z, zn, 80, &rc), 0);
    CHECK_EQ(rc, FELIX_ECORRUPT);
    CHECK(strstr(felix_error_detail(), "not a felix recording") != NULL);

    char path[256];
    snprintf(path, sizeof path, "%s/flip.felix", t_tmpdir());
    uint64_t bytes[NSAMPLES];
    REQUIRE(write_session(path, 80, 5, bytes) == 0);
    size_t len;
    unsigned char *data = slurp(path, &len);
    REQUIRE(data);
    size_t at = (size_t)(bytes[6] + bytes[7]) / 2; /* inside sample 7's bytes */
    data[at] ^= 0x5a;
    int before = t_failures;
    int got = read_all(data, len, 80, &rc); /* checks every sample it returns */
    CHECK_EQ(t_failures, before);            /* no damaged sample came back */
    CHECK_EQ(got, 7);                        /* the samples before the damage */
    CHECK(rc == FELIX_ECORRUPT);
    CHECK(strstr(felix_error_detail(), "byte") != NULL);
    free(data);
}

/* Unknown keys and unknown item types are skipped. */
static void unknown_keys_skipped(void)
{
    unsigned char buf[1024];
    size_t n = 0;
#define E(fn, ...) n += fn(__VA_ARGS__, buf + n, sizeof buf - n)
    E(cbor_encode_map_start, 8);
    E(cbor_encode_uint, 0), E(cbor_encode_uint, 0);
    E(cbor_encode_uint, 1), E(cbor_encode_string_start, 15);
    memcpy(buf + n, "felix-recording", 15), n += 15;
    E(cbor_encode_uint, 2), E(cbor_encode_uint, 1);
    E(cbor_encode_uint, 6), E(cbor_encode_uint, 1000);
    E(cbor_encode_uint, 14), E(cbor_encode_uint, 0);
    E(cbor_encode_uint, 99), E(cbor_encode_map_start, 1); /* unknown: a nested map */
    E(cbor_encode_uint, 1), E(cbor_encode_array_start, 2);
    E(cbor_encode_uint, 5), E(cbor_encode_negint, 5);
    E(cbor_encode_uint, 100), E(cbor_encode_tag, 1), E(cbor_encode_uint, 5);
    E(cbor_encode_uint, 101), E(cbor_encode_double, 1.5);
    /* an unknown item type */
    E(cbor_encode_map_start, 2);
    E(cbor_encode_uint, 0), E(cbor_encode_uint, 77);
    E(cbor_encode_uint, 1), E(cbor_encode_array_start, 0);
    /* a sample with an unknown key */
    E(cbor_encode_map_start, 6);
    E(cbor_encode_uint, 0), E(cbor_encode_uint, 1);
    E(cbor_encode_uint, 1), E(cbor_encode_uint, 500);
    E(cbor_encode_uint, 2), E(cbor_encode_bool, true);
    E(cbor_encode_uint, 3), E(cbor_encode_array_start, 1);
    E(cbor_encode_array_start, 6), E(cbor_encode_uint, 77), E(cbor_encode_uint, 10), E(cbor_encode_uint, 20),
        E(cbor_encode_uint, 30), E(cbor_encode_uint, 40), E(cbor_encode_uint, 50);
    E(cbor_encode_uint, 9), E(cbor_encode_uint, 123456);
    E(cbor_encode_uint, 50), E(cbor_encode_string_start, 3);
    memcpy(buf + n, "new", 3), n += 3;
#undef E
    unsigned char z[2048];
    size_t zn = ZSTD_compress(z, sizeof z, buf, n, 3);
    REQUIRE(!ZSTD_isError(zn));
    int fd = memfd_create("rec", 0);
    REQUIRE(write(fd, z, zn) == (ssize_t)zn);
    lseek(fd, 0, SEEK_SET);
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_fd(&r, fd) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    CHECK_EQ(felix_rec_next_sample(r, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 1);
    CHECK_EQ(felix_snapshot_find(s, 77)->c[FELIX_C_SOFTFLOAT], 50);
    CHECK_EQ(felix_snapshot_get_info(s)->wall_ns, 123456);
    CHECK_EQ(felix_snapshot_get_info(s)->mono_ns, 500);
    /* No end item was written: the recording was not closed. */
    CHECK_EQ(felix_rec_next_sample(r, s), FELIX_ETRUNC);
    CHECK(strstr(felix_error_detail(), "without its end item") != NULL);
    felix_snapshot_free(s);
    felix_rec_reader_close(r);
    close(fd);
}

/* A longer recording: seek by sample and by time, with the index and
 * without it (rebuilt by scanning). */
static void seek_with_and_without_index(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/seek.felix", t_tmpdir());
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, 80);
    felix_rec_options o = FELIX_REC_OPTIONS_INIT;
    o.chunk_samples = 37;
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_path(&w, path, &h, &o) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    enum { N = 2000 };
    uint64_t words[9];
    for (int i = 0; i < N; i++) {
        felix_snapshot_begin(s, ORIGIN + (int64_t)i * 10000000, (int64_t)i, 80);
        for (uint32_t tid = 1; tid <= 4; tid++) {
            for (int k = 0; k < 9; k++)
                words[k] = (uint64_t)i * tid * (k + 1);
            felix_snapshot_append(s, tid, 0, words, 9);
        }
        REQUIRE(felix_rec_write_sample(w, s, NULL, 0) == 0);
    }
    uint64_t before_index = felix_rec_writer_bytes(w);
    REQUIRE(felix_rec_writer_close(w, "done") == 0);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) /* as if killed: no end item, no index; the reader scans */
            REQUIRE(truncate(path, (off_t)before_index) == 0);
        felix_rec_reader *r;
        REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
        /* Asking for the summary mid-read (a scan without the index) keeps
         * the reading position. */
        for (int k = 0; k < 5; k++)
            CHECK_EQ(felix_rec_next_sample(r, s), 0);
        uint64_t total = 0;
        CHECK_EQ(felix_rec_summary(r, &total, NULL), 0);
        CHECK_EQ(felix_rec_next_sample(r, s), 0);
        CHECK_EQ(felix_rec_sample_number(r), 5);
        CHECK_EQ(total, N); /* every sample was flushed, index or not */
        static const uint64_t at[] = {0, 1, 36, 37, 38, 999, 1500, N - 1};
        for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
            CHECK_EQ(felix_rec_seek_sample(r, at[k]), 0);
            CHECK_EQ(felix_rec_next_sample(r, s), 0);
            CHECK_EQ(felix_rec_sample_number(r), (int64_t)at[k]);
            CHECK_EQ(felix_snapshot_find(s, 3)->c[FELIX_C_SMC], at[k] * 3 * 4);
        }
        CHECK_EQ(felix_rec_seek_sample(r, N), FELIX_ERANGE);
        /* By time: 5.005 s after the origin is sample 501. */
        CHECK_EQ(felix_rec_seek_time(r, 5005000000LL), 0);
        CHECK_EQ(felix_rec_next_sample(r, s), 0);
        CHECK_EQ(felix_snapshot_get_info(s)->mono_ns, ORIGIN + 501 * 10000000LL);
        CHECK_EQ(felix_snapshot_find(s, 2)->c[FELIX_C_JIT_TIME], 501 * 2);
        CHECK_EQ(felix_rec_next_sample(r, s), 0);
        CHECK_EQ(felix_rec_sample_number(r), 502);
        CHECK_EQ(felix_rec_seek_time(r, 0), 0);
        CHECK_EQ(felix_rec_next_sample(r, s), 0);
        CHECK_EQ(felix_rec_sample_number(r), 0);
        CHECK_EQ(felix_rec_seek_time(r, 100000000000LL), FELIX_ERANGE);
        felix_rec_reader_close(r);
    }
    felix_snapshot_free(s);
}

/* Pipes: a reader on the other end sees each sample as it is written; a
 * pipe closed by its reader gives FELIX_EPIPE, not a SIGPIPE death. */
static void pipes(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, 80);
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_fd(&w, p[1], &h, NULL) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    make_sample(s, 0, 80);
    REQUIRE(felix_rec_write_sample(w, s, NULL, 0) == 0);
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_fd(&r, p[0]) == 0); /* header is there already */
    CHECK_EQ(felix_rec_next_sample(r, s), 0);         /* and so is the sample */
    CHECK(same_sample(s, 0, 80));
    felix_rec_reader_close(r);
    close(p[0]);
    make_sample(s, 1, 80);
    CHECK_EQ(felix_rec_write_sample(w, s, NULL, 0), FELIX_EPIPE);
    CHECK(strstr(felix_error_detail(), "pipe") != NULL || strstr(felix_error_detail(), "Broken") != NULL);
    CHECK_EQ(felix_rec_write_sample(w, s, NULL, 0), FELIX_EPIPE); /* stays failed */
    felix_rec_writer_close(w, NULL);
    close(p[1]);
    felix_snapshot_free(s);
}

/* A full disk: /dev/full, and a file size limit mid-recording, after which
 * every sample the writer accepted reads back. */
static void full_disk(void)
{
    int fd = open("/dev/full", O_WRONLY);
    REQUIRE(fd >= 0);
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, 80);
    felix_rec_writer *w = NULL;
    CHECK_EQ(felix_rec_writer_open_fd(&w, fd, &h, NULL), FELIX_ENOSPC);
    close(fd);

    char path[256];
    snprintf(path, sizeof path, "%s/full.felix", t_tmpdir());
    int st[2];
    REQUIRE(pipe(st) == 0);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {6000, 6000};
        setrlimit(RLIMIT_FSIZE, &rl);
        felix_rec_writer *cw;
        int ok = 0, rc = 0;
        if (felix_rec_writer_open_path(&cw, path, &h, NULL) == 0) {
            felix_snapshot *s;
            felix_snapshot_new(&s);
            for (int i = 0; i < 100000 && rc == 0; i++) {
                felix_snapshot_begin(s, ORIGIN + i * 1000, i, 80);
                uint64_t words[9];
                for (uint32_t tid = 1; tid <= 8; tid++) {
                    for (int k = 0; k < 9; k++)
                        words[k] = (uint64_t)rand();
                    felix_snapshot_append(s, tid, 0, words, 9);
                }
                if ((rc = felix_rec_write_sample(cw, s, NULL, 0)) == 0)
                    ok++;
            }
            felix_rec_writer_close(cw, NULL);
        }
        int msg[2] = {ok, rc};
        if (write(st[1], msg, sizeof msg) < 0)
            _exit(2);
        _exit(0);
    }
    close(st[1]);
    int msg[2] = {0, 0};
    CHECK(read(st[0], msg, sizeof msg) == sizeof msg);
    close(st[0]);
    waitpid(child, NULL, 0);
    CHECK_EQ(msg[1], FELIX_ENOSPC);
    CHECK(msg[0] > 3);
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    int n = 0, rc;
    while ((rc = felix_rec_next_sample(r, s)) == 0)
        n++;
    CHECK(n >= msg[0]); /* nothing accepted was lost */
    CHECK(rc == FELIX_ETRUNC || rc == FELIX_EEOF);
    felix_snapshot_free(s);
    felix_rec_reader_close(r);
}

/* CRC-32 (IEEE), bit by bit: the tests' own, not libfelix's. */
static uint32_t test_crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static uint32_t le32_at(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* The index is a hint: damaged (its check fails), its seek table broken, or
 * lying with a good check (a chunk's offset moved), seeking still lands on
 * the right samples, and the reader says the index was rebuilt. */
static void index_is_a_hint(void)
{
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/hint.felix", t_tmpdir());
    snprintf(bad, sizeof bad, "%s/hint-bad.felix", t_tmpdir());
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, 80);
    felix_rec_options o = FELIX_REC_OPTIONS_INIT;
    o.chunk_samples = 10;
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_path(&w, path, &h, &o) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    uint64_t words[9] = {0};
    for (int i = 0; i < 100; i++) {
        felix_snapshot_begin(s, ORIGIN + (int64_t)i * 10000000, (int64_t)i, 80);
        words[3] = (uint64_t)i * 7;
        felix_snapshot_append(s, 9, 0, words, 9);
        REQUIRE(felix_rec_write_sample(w, s, NULL, 0) == 0);
    }
    REQUIRE(felix_rec_writer_close(w, "done") == 0);
    size_t len;
    unsigned char *data = slurp(path, &len);
    REQUIRE(data && len > 100);
    /* Where the index item is: the footer gives the seek table, whose sizes
     * add up to the index frame's offset. */
    uint32_t nframes = le32_at(data + len - 9);
    size_t tsize = (size_t)nframes * 8 + 9, table = len - tsize - 8, at = 0;
    for (uint32_t f = 0; f < nframes; f++)
        at += le32_at(data + table + 8 + (size_t)f * 8);
    REQUIRE(le32_at(data + at) == 0x184D2A5Fu);
    size_t ilen = le32_at(data + at + 4);
    unsigned char *item = data + at + 8;
    /* The first chunk entry: the byte after the first 0x84 (an array of 4) is
     * its offset's head; make the offset lie by one, and re-sign the item. */
    size_t e = 0;
    while (e < ilen && item[e] != 0x84)
        e++;
    REQUIRE(e + 6 < ilen && item[e + 1] >= 0x18 && item[e + 1] <= 0x1a); /* a 1-, 2- or 4-byte offset */
    size_t last = e + 1 + (item[e + 1] == 0x18 ? 1 : item[e + 1] == 0x19 ? 2 : 4); /* its low byte */
    for (int variant = 0; variant < 3; variant++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, data, len);
        if (variant == 0) { /* the check fails */
            copy[at + 8 + ilen / 2] ^= 0x40;
        } else if (variant == 1) { /* the seek table is broken */
            copy[table + 8] ^= 0x01;
        } else { /* a lie with a good check */
            unsigned char *it = copy + at + 8;
            it[last] ^= 0x01;
            uint32_t crc = test_crc32(it, ilen - 6); /* the bytes before key 23 */
            it[ilen - 4] = (unsigned char)(crc >> 24), it[ilen - 3] = (unsigned char)(crc >> 16);
            it[ilen - 2] = (unsigned char)(crc >> 8), it[ilen - 1] = (unsigned char)crc;
        }
        FILE *f = fopen(bad, "wb");
        REQUIRE(f && fwrite(copy, 1, len, f) == len && fclose(f) == 0);
        free(copy);
        felix_rec_reader *r;
        REQUIRE(felix_rec_reader_open_path(&r, bad) == 0);
        CHECK(felix_rec_reader_warning(r) == NULL);
        static const uint64_t want[] = {5, 0, 99, 42};
        for (size_t k = 0; k < 4; k++) {
            CHECK_EQ(felix_rec_seek_sample(r, want[k]), 0);
            CHECK_EQ(felix_rec_next_sample(r, s), 0);
            CHECK_EQ(felix_rec_sample_number(r), (int64_t)want[k]);
            CHECK_EQ(felix_snapshot_find(s, 9)->c[FELIX_C_SMC], want[k] * 7);
        }
        const char *warn = felix_rec_reader_warning(r);
        CHECK(warn && strstr(warn, "index") && strstr(warn, "rebuilt by scanning"));
        CHECK(warn && strstr(warn, "byte"));
        fprintf(stderr, "variant %d: %s\n", variant, warn ? warn : "(no warning)");
        felix_rec_reader_close(r);
    }
    /* The intact file: no warning. */
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
    CHECK_EQ(felix_rec_seek_sample(r, 42), 0);
    CHECK(felix_rec_reader_warning(r) == NULL);
    felix_rec_reader_close(r);
    free(data);
    felix_snapshot_free(s);
}

/* Times at the ends of int64: never a wrapped, negative interval. The writer
 * refuses what it cannot store; a reader refuses a file whose times overflow. */
/* A recording of a newer format than this reader knows (version 3) is
 * refused with FELIX_EVERSION ("newer format"), not read as damage; version
 * 2, the same bytes otherwise, opens. */
static void newer_format_refused(void)
{
    for (unsigned version = 2; version <= 3; version++) {
        /* {0: 0, 1: "felix-recording", 2: version, 6: 10^9, 14: 80}: a header
         * without a check (so none is required of later items). */
        unsigned char hdr[64] = {0xa5, 0x00, 0x00, 0x01, 0x6f};
        size_t n = 5;
        memcpy(hdr + n, "felix-recording", 15), n += 15;
        hdr[n++] = 0x02, hdr[n++] = (unsigned char)version;
        hdr[n++] = 0x06, hdr[n++] = 0x1a, hdr[n++] = 0x3b, hdr[n++] = 0x9a, hdr[n++] = 0xca, hdr[n++] = 0x00;
        hdr[n++] = 0x0e, hdr[n++] = 0x18, hdr[n++] = 0x50;
        unsigned char z[256];
        size_t zn = ZSTD_compress(z, sizeof z, hdr, n, 3);
        REQUIRE(!ZSTD_isError(zn));
        char path[256];
        snprintf(path, sizeof path, "%s/version-%u.felix", t_tmpdir(), version);
        FILE *f = fopen(path, "wb");
        REQUIRE(f && fwrite(z, 1, zn, f) == zn && fclose(f) == 0);
        felix_rec_reader *r = NULL;
        int rc = felix_rec_reader_open_path(&r, path);
        if (version == 2) {
            CHECK_EQ(rc, 0);
            felix_rec_reader_close(r);
        } else {
            CHECK_EQ(rc, FELIX_EVERSION);
            CHECK(strstr(felix_error_detail(), "version 3") != NULL);
        }
    }
}

static void extreme_times(void)
{
    felix_snapshot *a, *b;
    felix_snapshot_new(&a);
    felix_snapshot_new(&b);
    uint64_t w[9] = {0};
    felix_snapshot_begin(a, INT64_MIN + 1, 0, 80);
    felix_snapshot_append(a, 1, 0, w, 9);
    felix_snapshot_begin(b, INT64_MAX, 0, 80);
    w[0] = 5;
    felix_snapshot_append(b, 1, 0, w, 9);
    felix_delta *d;
    felix_delta_new(&d, 1000000000, 1);
    REQUIRE(felix_delta_compute(d, a, b) == 0);
    CHECK(felix_delta_frame(d)->interval_ns > 0);
    CHECK_EQ(felix_delta_frame(d)->interval_ns, INT64_MAX);
    CHECK(felix_delta_frame(d)->interval_s > 0);
    felix_delta_free(d);
    char path[256];
    snprintf(path, sizeof path, "%s/extreme.felix", t_tmpdir());
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, 80);
    h.start_mono_ns = INT64_MAX - 1000;
    felix_rec_writer *wr;
    REQUIRE(felix_rec_writer_open_path(&wr, path, &h, NULL) == 0);
    CHECK_EQ(felix_rec_write_sample(wr, a, NULL, 0), FELIX_EINVAL); /* INT64_MIN + 1 - start overflows */
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
    ev.kind = FELIX_EV_INTERVAL_CHANGED;
    ev.mono_ns = INT64_MIN + 1; /* an event's time is held to the same rule */
    CHECK_EQ(felix_rec_write_event(wr, &ev), FELIX_EINVAL);
    felix_rec_writer_close(wr, NULL);
    /* A file claiming a start near the end of time and a sample past it. */
    unsigned char buf[512];
    size_t n = 0;
#define E(fn, ...) n += fn(__VA_ARGS__, buf + n, sizeof buf - n)
    E(cbor_encode_map_start, 5);
    E(cbor_encode_uint, 0), E(cbor_encode_uint, 0);
    E(cbor_encode_uint, 1), E(cbor_encode_string_start, 15);
    memcpy(buf + n, "felix-recording", 15), n += 15;
    E(cbor_encode_uint, 2), E(cbor_encode_uint, 1);
    E(cbor_encode_uint, 6), E(cbor_encode_uint, 1000);
    E(cbor_encode_uint, 16), E(cbor_encode_uint, (uint64_t)INT64_MAX - 10);
    E(cbor_encode_map_start, 4);
    E(cbor_encode_uint, 0), E(cbor_encode_uint, 1);
    E(cbor_encode_uint, 1), E(cbor_encode_uint, 1000); /* past INT64_MAX */
    E(cbor_encode_uint, 2), E(cbor_encode_bool, true);
    E(cbor_encode_uint, 3), E(cbor_encode_array_start, 0);
#undef E
    unsigned char z[1024];
    size_t zn = ZSTD_compress(z, sizeof z, buf, n, 3);
    REQUIRE(!ZSTD_isError(zn));
    int fd = memfd_create("extreme", 0);
    REQUIRE(write(fd, z, zn) == (ssize_t)zn);
    lseek(fd, 0, SEEK_SET);
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_fd(&r, fd) == 0);
    CHECK_EQ(felix_rec_next_sample(r, b), FELIX_ECORRUPT);
    CHECK(strstr(felix_error_detail(), "time out of range") != NULL);
    felix_rec_reader_close(r);
    close(fd);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
}

/* Every amplification class of tests/make_hostile.c: a file of at most
 * 1 MiB, read whole (and summarised, and seeked in) with at most 64 MiB of
 * the library's memory live at once (zstd's included), and the outcome the
 * file calls for. */
static void memory_bounded(void)
{
    static const char *const classes[] = {"bomb", "bomb-big", "declared", "slots", "slots-over",
                                          "threads", "threads-over", "churn", "tokens", "deep", "index", "v2-threads", "v2-declared"};
    const char *gen = getenv("FELIX_MAKE_HOSTILE");
    REQUIRE(gen != NULL);
    t_alloc_install();
    for (size_t k = 0; k < sizeof classes / sizeof *classes; k++) {
        char path[256], cmd[600], outcome[64] = "";
        snprintf(path, sizeof path, "%s/hostile-%s.felix", t_tmpdir(), classes[k]);
        const char *wrap = getenv("FELIX_EXEC_WRAPPER"); /* cross builds: qemu-aarch64 */
        snprintf(cmd, sizeof cmd, "%s '%s' %s '%s'", wrap ? wrap : "", gen, classes[k], path);
        FILE *p = popen(cmd, "r");
        REQUIRE(p && fgets(outcome, sizeof outcome, p));
        REQUIRE(pclose(p) == 0);
        struct stat st;
        REQUIRE(stat(path, &st) == 0);
        CHECK(st.st_size <= (1 << 20));
        unsigned long long want = 0;
        int corrupt = strncmp(outcome, "corrupt", 7) == 0;
        REQUIRE(corrupt || sscanf(outcome, "samples %llu", &want) == 1);
        t_alloc_reset_peak();
        felix_rec_reader *r;
        felix_snapshot *s;
        REQUIRE(felix_snapshot_new(&s) == 0);
        REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
        int rc;
        unsigned long long n = 0;
        while ((rc = felix_rec_next_sample(r, s)) == 0)
            n++;
        if (corrupt) {
            CHECK_EQ(rc, FELIX_ECORRUPT);
        } else {
            CHECK_EQ(rc, FELIX_EEOF);
            CHECK_EQ(n, want);
            uint64_t total = 0;
            CHECK_EQ(felix_rec_summary(r, &total, NULL), 0);
            CHECK_EQ(total, want);
            CHECK_EQ(felix_rec_seek_sample(r, want / 2), 0);
            CHECK_EQ(felix_rec_next_sample(r, s), 0);
        }
        felix_rec_reader_close(r);
        felix_snapshot_free(s);
        size_t peak = t_alloc_peak();
        fprintf(stderr, "%-10s %7lld bytes: %s, peak %.1f MiB\n", classes[k], (long long)st.st_size,
                corrupt ? "corrupt" : "read", peak / 1048576.0);
        CHECK(peak <= (64u << 20));
    }
    felix_set_allocator(NULL);
}

/* A digest of everything a read hands out: items, samples' every field,
 * names, CPU times, regions, events. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n--)
        h = (h ^ *b++) * 1099511628211ull;
    return h;
}

/* Read r to its end into *digest; an out-of-memory failure is retried once
 * the allocator heals (the call must then go on as if it had not failed).
 * Returns 0, or the first error that is not the end. */
static int read_digest(felix_rec_reader *r, felix_snapshot *s, uint64_t *digest, int *oom)
{
    uint64_t h = 14695981039346656037ull;
    for (;;) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        int item = 0, rc = felix_rec_next(r, s, &ev, &item);
        if (rc == FELIX_ENOMEM && t_alloc_failed()) {
            *oom = 1;
            t_alloc_heal();
            continue;
        }
        if (rc == FELIX_EEOF)
            break;
        if (rc < 0)
            return rc;
        h = mix(h, &item, sizeof item);
        if (item == FELIX_REC_EVENT) {
            h = mix(h, &ev.kind, sizeof ev.kind), h = mix(h, &ev.tid, sizeof ev.tid);
            h = mix(h, &ev.count, sizeof ev.count), h = mix(h, &ev.mono_ns, sizeof ev.mono_ns);
            h = mix(h, &ev.status, sizeof ev.status), h = mix(h, ev.reason, strlen(ev.reason));
        } else if (item == FELIX_REC_SAMPLE) {
            const felix_snapshot_info *si = felix_snapshot_get_info(s);
            h = mix(h, &si->mono_ns, sizeof si->mono_ns), h = mix(h, &si->wall_ns, sizeof si->wall_ns);
            h = mix(h, &si->nthreads, sizeof si->nthreads), h = mix(h, &si->size, sizeof si->size);
            for (size_t i = 0; i < si->nthreads; i++) {
                const felix_thread *t = felix_snapshot_thread(s, i);
                h = mix(h, &t->tid, sizeof t->tid), h = mix(h, t->c, sizeof t->c);
                if (si->nextra)
                    h = mix(h, felix_snapshot_extra(s, i), si->nextra * 8);
                const char *name = felix_rec_thread_name(r, t->tid);
                if (name)
                    h = mix(h, name, strlen(name));
                uint64_t cpu;
                if (felix_rec_thread_cpu_ns(r, t->tid, &cpu) == 0)
                    h = mix(h, &cpu, sizeof cpu);
            }
            const felix_mem *m = felix_snapshot_mem(s);
            for (size_t i = 0; m && i < felix_mem_count(m); i++) {
                const felix_region *g = felix_mem_region(m, i);
                h = mix(h, g->name, strlen(g->name)), h = mix(h, &g->rss, sizeof g->rss);
            }
        }
    }
    *digest = h;
    return 0;
}

struct oom_read {
    const char *path;
    uint64_t want, want_mid;
    uint64_t mid;
};

/* Open, read, summarise, seek and read again. */
static int oom_read_step(void *arg)
{
    struct oom_read *o = arg;
    felix_rec_reader *r;
    felix_snapshot *s;
    int rc = felix_snapshot_new(&s), oom = 0;
    if (rc < 0)
        return rc;
    if ((rc = felix_rec_reader_open_path(&r, o->path)) < 0) {
        felix_snapshot_free(s);
        return rc;
    }
    uint64_t d = 0, total = 0;
    if ((rc = read_digest(r, s, &d, &oom)) == 0 && o->want && d != o->want) {
        fprintf(stderr, "a read that met out-of-memory handed out other data\n");
        rc = -100;
    }
    if (rc == 0 && (rc = felix_rec_summary(r, &total, NULL)) == FELIX_ENOMEM) {
        oom = 1;
        t_alloc_heal();
        rc = felix_rec_summary(r, &total, NULL);
    }
    if (rc == 0 && (rc = felix_rec_seek_sample(r, o->mid)) == FELIX_ENOMEM) {
        oom = 1; /* the position is undefined after a failed seek: seek again */
        t_alloc_heal();
        rc = felix_rec_seek_sample(r, o->mid);
    }
    if (rc == 0 && (rc = read_digest(r, s, &d, &oom)) == 0 && o->want_mid && d != o->want_mid) {
        fprintf(stderr, "a read after a seek that met out-of-memory handed out other data\n");
        rc = -100;
    }
    if (rc == 0 && total != NSAMPLES)
        rc = -101;
    felix_rec_reader_close(r);
    felix_snapshot_free(s);
    return rc < 0 ? rc : oom ? FELIX_ENOMEM : 0;
}

/* The reader under out-of-memory at every allocation in turn: it fails
 * cleanly, leaks nothing, and once memory is back goes on exactly as a
 * read that never failed. */
static void oom_reader(void)
{
    struct oom_read o = {0};
    char path[256];
    snprintf(path, sizeof path, "%s/oom-read.felix", t_tmpdir());
    REQUIRE(write_session(path, 112, 5, NULL) == 0);
    o.path = path;
    o.mid = NSAMPLES / 2 + 1;
    REQUIRE(oom_read_step(&o) == 0); /* the digests of a read that never fails */
    felix_rec_reader *r;
    felix_snapshot *s;
    int oom = 0;
    REQUIRE(felix_snapshot_new(&s) == 0 && felix_rec_reader_open_path(&r, path) == 0);
    REQUIRE(read_digest(r, s, &o.want, &oom) == 0);
    REQUIRE(felix_rec_seek_sample(r, o.mid) == 0 && read_digest(r, s, &o.want_mid, &oom) == 0);
    felix_rec_reader_close(r);
    felix_snapshot_free(s);
    CHECK(t_oom_every("reader", oom_read_step, &o, 20));
}

struct oom_write {
    const char *path;
    uint64_t want;
};

/* Write the session; a call that ran out of memory is made again once the
 * allocator heals: it must then go on (the file as if nothing failed), or
 * say the writer is failed for good (the file a clean prefix). */
static int oom_write_step(void *arg)
{
    struct oom_write *o = arg;
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    fill_header(&h, 80);
    felix_rec_options opt = FELIX_REC_OPTIONS_INIT;
    opt.chunk_samples = 5;
    felix_rec_writer *w;
    felix_snapshot *s;
    int rc = felix_snapshot_new(&s), oom = 0, dead = 0;
    if (rc < 0)
        return rc;
    if ((rc = felix_rec_writer_open_path(&w, o->path, &h, &opt)) < 0) {
        felix_snapshot_free(s);
        return rc;
    }
    for (int i = 0; i < NSAMPLES && !dead; i++) {
        t_alloc_pause(1);
        make_sample(s, i, 80);
        t_alloc_pause(0);
        felix_rec_thread_info info[8];
        size_t n;
        make_info(info, &n, i);
        rc = felix_rec_write_sample(w, s, info, n);
        if (rc == FELIX_ENOMEM) {
            oom = 1;
            t_alloc_heal();
            rc = felix_rec_write_sample(w, s, info, n);
            dead = rc == FELIX_ENOMEM; /* failed for good */
            if (rc < 0 && !dead)
                break;
        } else if (rc < 0) {
            break;
        }
        if (i == 5 && !dead) {
            felix_rec_event ev = FELIX_REC_EVENT_INIT;
            ev.kind = FELIX_EV_SAMPLES_MISSED;
            ev.mono_ns = felix_snapshot_get_info(s)->mono_ns;
            ev.count = 3;
            if ((rc = felix_rec_write_event(w, &ev)) == FELIX_ENOMEM) {
                oom = 1;
                t_alloc_heal();
                dead = (rc = felix_rec_write_event(w, &ev)) == FELIX_ENOMEM;
            }
        }
    }
    if (rc < 0 && !dead) {
        felix_rec_writer_close(w, NULL);
        felix_snapshot_free(s);
        return rc;
    }
    int crc = felix_rec_writer_close(w, "process exited");
    if (crc == FELIX_ENOMEM)
        oom = dead = 1;
    felix_snapshot_free(s);
    /* Read the file back with memory that does not fail. */
    t_alloc_pause(1);
    felix_rec_reader *r;
    int ok = 0;
    if (felix_snapshot_new(&s) == 0 && felix_rec_reader_open_path(&r, o->path) == 0) {
        int samples = 0, started = 0, item = 0, prc;
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        while ((prc = felix_rec_next(r, s, &ev, &item)) == 0) {
            if (item == FELIX_REC_SAMPLE && !same_sample(s, samples++, 80))
                break;
            started += item == FELIX_REC_EVENT && ev.kind == FELIX_EV_THREAD_STARTED;
        }
        felix_rec_reader_close(r);
        if (!dead) {
            uint64_t d = 0;
            int x = 0;
            ok = prc == FELIX_EEOF && samples == NSAMPLES && felix_rec_reader_open_path(&r, o->path) == 0 &&
                 read_digest(r, s, &d, &x) == 0 && (o->want == 0 || d == o->want);
            if (ok && o->want == 0)
                o->want = d;
            if (ok || prc == FELIX_EEOF)
                felix_rec_reader_close(r);
        } else {
            /* A clean prefix: every sample whole and right, no event twice. */
            ok = (prc == FELIX_EEOF || prc == FELIX_ETRUNC) && samples <= NSAMPLES && started <= 5;
        }
        if (!ok)
            fprintf(stderr, "after out-of-memory (%s) the file holds %d samples, %d thread starts, ends with %d\n",
                    dead ? "failed for good" : "retried", samples, started, prc);
    }
    felix_snapshot_free(s);
    t_alloc_pause(0);
    if (!ok)
        return -100;
    return oom ? FELIX_ENOMEM : 0;
}

/* The writer under out-of-memory at every allocation in turn: a call writes
 * a whole sample or nothing (then it can be made again), or the writer is
 * failed for good; never a sample's events twice. */
static void oom_writer(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/oom-write.felix", t_tmpdir());
    struct oom_write o = {path, 0};
    t_alloc_install();
    REQUIRE(oom_write_step(&o) == 0 && o.want != 0);
    CHECK(t_oom_every("writer", oom_write_step, &o, 20));
}

static void *v_malloc(size_t n, void *ctx) { return (void)ctx, malloc(n); }
static void *v_realloc(void *p, size_t n, void *ctx) { return (void)ctx, realloc(p, n); }
static void v_free(void *p, void *ctx) { (void)ctx, free(p); }

/* Caller-filled structs carry their layout's version: one left at 0 (not
 * initialized with its _INIT) or newer than the library's is refused with
 * FELIX_EINVAL, never read or written past; _INIT and _init() agree. */
static void struct_versions(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/versions.felix", t_tmpdir());
    felix_rec_header h;
    fill_header(&h, 0);
    felix_rec_writer *w = NULL;
    h.version = 0;
    CHECK_EQ(felix_rec_writer_open_path(&w, path, &h, NULL), FELIX_EINVAL);
    h.version = FELIX_REC_HEADER_VERSION + 1;
    CHECK_EQ(felix_rec_writer_open_path(&w, path, &h, NULL), FELIX_EINVAL);
    CHECK(strstr(felix_error_detail(), "FELIX_REC_HEADER_INIT") != NULL);
    h.version = FELIX_REC_HEADER_VERSION;
    felix_rec_options o;
    memset(&o, 0, sizeof o);
    CHECK_EQ(felix_rec_writer_open_path(&w, path, &h, &o), FELIX_EINVAL);
    felix_rec_options_init(&o);
    CHECK_EQ(o.version, FELIX_REC_OPTIONS_VERSION);
    REQUIRE(felix_rec_writer_open_path(&w, path, &h, &o) == 0);
    felix_snapshot *s;
    REQUIRE(felix_snapshot_new(&s) == 0);
    make_sample(s, 0, 80);
    felix_rec_thread_info info[8];
    size_t n;
    make_info(info, &n, 0);
    info[0].version = 0;
    CHECK_EQ(felix_rec_write_sample(w, s, info, n), FELIX_EINVAL);
    felix_rec_thread_info_init(&info[0]);
    info[0].tid = 1001;
    CHECK_EQ(felix_rec_write_sample(w, s, info, n), 0);
    felix_rec_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = FELIX_EV_STOPPED;
    CHECK_EQ(felix_rec_write_event(w, &ev), FELIX_EINVAL);
    felix_rec_event_init(&ev);
    ev.kind = FELIX_EV_STOPPED;
    ev.mono_ns = ORIGIN + 1;
    CHECK_EQ(felix_rec_write_event(w, &ev), 0);
    CHECK_EQ(felix_rec_writer_close(w, "done"), 0);
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
    CHECK_EQ(felix_rec_reader_header(r)->version, FELIX_REC_HEADER_VERSION);
    int item = 0;
    memset(&ev, 0, sizeof ev);
    CHECK_EQ(felix_rec_next(r, s, &ev, &item), FELIX_EINVAL);
    felix_rec_event e2 = FELIX_REC_EVENT_INIT;
    int events = 0;
    while (felix_rec_next(r, s, &e2, &item) == 0)
        if (item == FELIX_REC_EVENT) {
            CHECK_EQ(e2.version, FELIX_REC_EVENT_VERSION); /* kept across the fill */
            events++;
        }
    CHECK(events >= 1); /* the stop */
    felix_rec_reader_close(r);
    felix_snapshot_free(s);
    /* A program built with version 1 of the header (no start_boot_ns): the
     * writer reads only that much (ASan sees a read past it), and the
     * recording has no BOOTTIME; version 2 carries it. */
    const size_t v1 = offsetof(felix_rec_header, start_boot_ns);
    for (unsigned ver = 1; ver <= 2; ver++) {
        felix_rec_header full;
        fill_header(&full, 0);
        full.start_boot_ns = 987654321;
        full.version = ver;
        felix_rec_header *old = malloc(ver == 1 ? v1 : sizeof full);
        REQUIRE(old != NULL);
        memcpy(old, &full, ver == 1 ? v1 : sizeof full);
        REQUIRE(felix_rec_writer_open_path(&w, path, old, NULL) == 0);
        free(old);
        CHECK_EQ(felix_rec_writer_close(w, "done"), 0);
        REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
        const felix_rec_header *back = felix_rec_reader_header(r);
        CHECK_EQ(back->start_boot_ns, ver == 1 ? 0 : 987654321);
        CHECK_EQ(back->start_mono_ns, full.start_mono_ns);
        CHECK(strcmp(back->name, full.name) == 0);
        felix_rec_reader_close(r);
    }
    felix_allocator a;
    memset(&a, 0, sizeof a);
    a.malloc = v_malloc;
    a.realloc = v_realloc;
    a.free = v_free;
    CHECK_EQ(felix_set_allocator(&a), FELIX_EINVAL);
    felix_allocator_init(&a);
    CHECK_EQ(a.version, FELIX_ALLOCATOR_VERSION);
    CHECK(a.malloc == NULL);
}

T_MAIN(T(struct_versions), T(newer_format_refused), T(memory_bounded), T(oom_reader), T(oom_writer), T(index_is_a_hint), T(extreme_times), T(roundtrip_every_field), T(independent_decoder), T(cut_anywhere), T(corrupt_data),
       T(unknown_keys_skipped), T(seek_with_and_without_index), T(pipes), T(full_disk))
