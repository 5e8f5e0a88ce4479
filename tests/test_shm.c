/* Attach and snapshot: header validation, the list walk on hostile images,
 * and files that grow, shrink or lie about their size. */
#include "helpers.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static felix_snapshot *snap_of(img *im)
{
    felix_snapshot *s;
    if (felix_snapshot_new(&s) < 0)
        return NULL;
    if (felix_shm_snapshot_image(im->p, im->len, s) < 0) {
        felix_snapshot_free(s);
        return NULL;
    }
    return s;
}

static void header_too_short(void)
{
    img im;
    img_init(&im, 4096, 80);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    CHECK_EQ(felix_shm_snapshot_image(im.p, 63, s), FELIX_ETRUNC);
    CHECK(strstr(felix_error_detail(), "63 bytes") != NULL);
    CHECK_EQ(felix_shm_snapshot_image(im.p, 64, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 0);
    felix_snapshot_free(s);
    img_free(&im);
}

static void version_mismatch(void)
{
    img im;
    img_init(&im, 4096, 80);
    im.p[0] = 3;
    felix_shm_info info;
    CHECK_EQ(felix_shm_parse_header(im.p, im.len, &info), FELIX_EVERSION);
    CHECK(strstr(felix_error_detail(), "version 3") != NULL);
    CHECK(strstr(felix_error_detail(), "version 2") != NULL);
    im.p[0] = 2;
    CHECK_EQ(felix_shm_parse_header(im.p, im.len, &info), 0);
    CHECK_EQ(info.version, 2);
    img_free(&im);
}

static void slot_size_rules(void)
{
    static const struct { unsigned tss; int ok; unsigned eff; } cases[] = {
        {0, 1, 48}, {48, 1, 48}, {80, 1, 80}, {96, 1, 96}, {40, 0, 0},
        {88, 0, 0}, {81, 0, 0}, {16, 0, 0}, {4096, 1, 4096}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        img im;
        img_init(&im, 8192, 0);
        im.p[2] = (unsigned char)(cases[i].tss & 0xff);
        im.p[3] = (unsigned char)(cases[i].tss >> 8);
        felix_shm_info info;
        int rc = felix_shm_parse_header(im.p, im.len, &info);
        if (cases[i].ok) {
            CHECK_EQ(rc, 0);
            CHECK_EQ(info.slot_size, cases[i].eff);
        } else {
            CHECK_EQ(rc, FELIX_ECORRUPT);
        }
        img_free(&im);
    }
    /* Legacy layout holds five counters, current FEX nine, larger keeps extras. */
    img im;
    img_init(&im, 4096, 0);
    felix_shm_info info;
    felix_shm_parse_header(im.p, im.len, &info);
    CHECK_EQ(info.nknown, 5);
    CHECK_EQ(info.nextra, 0);
    img_free(&im);
    img_init(&im, 4096, 112);
    felix_shm_parse_header(im.p, im.len, &info);
    CHECK_EQ(info.nknown, 9);
    CHECK_EQ(info.nextra, 4);
    img_free(&im);
}

static void app_type_names(void)
{
    static const char *const want[] = {"Linux32", "Linux64", "arm64ec", "wow64", "unknown(4)"};
    for (int t = 0; t < 5; t++) {
        img im;
        img_init(&im, 4096, 80);
        im.p[1] = (unsigned char)t;
        felix_shm_info info;
        CHECK_EQ(felix_shm_parse_header(im.p, im.len, &info), 0);
        CHECK(strcmp(info.app_type_name, want[t]) == 0);
        img_free(&im);
    }
    char buf[16];
    CHECK(strcmp(felix_app_type_name(255, buf, sizeof buf), "unknown(255)") == 0);
}

static void fex_version_escaped(void)
{
    img im;
    img_init(&im, 4096, 80);
    memset(im.p + 4, 'A', 48); /* all 48 bytes, no NUL */
    im.p[4] = 0x01;
    im.p[5] = '\\';
    felix_shm_info info;
    CHECK_EQ(felix_shm_parse_header(im.p, im.len, &info), 0);
    CHECK(strncmp(info.fex_version, "\\x01\\x5cAAA", 11) == 0);
    CHECK_EQ(strlen(info.fex_version), 8 + 46);
    /* The header's Head and Size fields are not part of the string. */
    CHECK(strchr(info.fex_version, '\x02') == NULL);
    img_free(&im);
}

static void walk_reads_counters(void)
{
    img im;
    img_init(&im, 4096, 80);
    uint64_t w1[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w2[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
    uint32_t offs[2] = {img_slot(&im, 3, 111, w1, 9), img_slot(&im, 0, 222, w2, 9)};
    img_link(&im, offs, 2);
    felix_snapshot *s = snap_of(&im);
    REQUIRE(s);
    const felix_snapshot_info *si = felix_snapshot_get_info(s);
    CHECK_EQ(si->nthreads, 2);
    CHECK_EQ(felix_snapshot_thread(s, 0)->tid, 111);
    CHECK_EQ(felix_snapshot_thread(s, 0)->offset, offs[0]);
    CHECK_EQ(felix_snapshot_find(s, 222)->c[FELIX_C_JIT_COUNT], 90);
    CHECK_EQ(felix_snapshot_find(s, 111)->c[FELIX_C_CACHE_MISS], 6);
    CHECK_EQ(felix_snapshot_find(s, 111)->c[FELIX_C_SIGBUS], 3);
    CHECK(felix_snapshot_find(s, 333) == NULL);
    CHECK(si->mono_ns > 0 && si->wall_ns > 1600000000LL * 1000000000LL);
    felix_snapshot_free(s);
    img_free(&im);
}

static void walk_legacy_and_extra(void)
{
    img im;
    img_init(&im, 4096, 0);
    uint64_t w[5] = {100, 200, 300, 400, 500};
    uint32_t off = img_slot(&im, 0, 7, w, 5);
    img_link(&im, &off, 1);
    felix_snapshot *s = snap_of(&im);
    REQUIRE(s);
    const felix_thread *t = felix_snapshot_find(s, 7);
    REQUIRE(t);
    CHECK_EQ(t->c[FELIX_C_SOFTFLOAT], 500);
    CHECK_EQ(t->c[FELIX_C_CACHE_MISS], 0);
    CHECK_EQ(t->c[FELIX_C_JIT_COUNT], 0);
    CHECK_EQ(felix_snapshot_get_info(s)->slot_size, 48);
    felix_snapshot_free(s);
    img_free(&im);

    img_init(&im, 4096, 112);
    uint64_t x[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1001, 1002, 1003, 1004};
    off = img_slot(&im, 1, 9, x, 13);
    img_link(&im, &off, 1);
    s = snap_of(&im);
    REQUIRE(s);
    CHECK_EQ(felix_snapshot_get_info(s)->nextra, 4);
    const uint64_t *e = felix_snapshot_extra(s, 0);
    REQUIRE(e);
    CHECK_EQ(e[0], 1001);
    CHECK_EQ(e[3], 1004);
    felix_snapshot_free(s);
    img_free(&im);
}

static void walk_bad_offsets(void)
{
    static const uint32_t bad[] = {8, 63, 64 + 40, 4096 - 16, 4096, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        img im;
        img_init(&im, 4096, 80);
        uint64_t w[9] = {5};
        uint32_t good = img_slot(&im, 0, 42, w, 9);
        img_link(&im, &good, 1);
        img_set_u32(&im, good, bad[i]); /* good -> bad */
        felix_snapshot *s = snap_of(&im);
        REQUIRE(s);
        CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 1);
        CHECK_EQ(felix_snapshot_get_info(s)->anomaly_bad_offset, 1);
        felix_snapshot_free(s);
        img_free(&im);
    }
}

static void walk_cycle_ends(void)
{
    img im;
    img_init(&im, 4096, 80);
    uint64_t w[9] = {0};
    uint32_t a = img_slot(&im, 0, 1, w, 9), b = img_slot(&im, 1, 2, w, 9), c = img_slot(&im, 2, 3, w, 9);
    uint32_t offs[3] = {a, b, c};
    img_link(&im, offs, 3);
    img_set_u32(&im, c, b); /* c -> b: a cycle */
    felix_snapshot *s = snap_of(&im);
    REQUIRE(s);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 3);
    CHECK_EQ(felix_snapshot_get_info(s)->anomaly_cycle, 1);
    img_set_u32(&im, a, a); /* self loop */
    felix_snapshot_free(s);
    s = snap_of(&im);
    REQUIRE(s);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 1);
    CHECK_EQ(felix_snapshot_get_info(s)->anomaly_cycle, 1);
    felix_snapshot_free(s);
    img_free(&im);
}

static void walk_free_and_duplicate(void)
{
    img im;
    img_init(&im, 4096, 80);
    uint64_t w[9] = {1};
    uint32_t offs[4] = {img_slot(&im, 0, 5, w, 9), img_slot(&im, 1, 0, w, 9),
                        img_slot(&im, 2, 5, w, 9), img_slot(&im, 3, 6, w, 9)};
    img_link(&im, offs, 4);
    felix_snapshot *s = snap_of(&im);
    REQUIRE(s);
    const felix_snapshot_info *si = felix_snapshot_get_info(s);
    CHECK_EQ(si->nthreads, 2);
    CHECK_EQ(si->skipped_free, 1);
    CHECK_EQ(si->anomaly_dup_tid, 1);
    CHECK_EQ(felix_snapshot_find(s, 5)->offset, offs[0]); /* the first kept */
    felix_snapshot_free(s);
    img_free(&im);
}

static void lying_size_is_ignored(void)
{
    img im;
    img_init(&im, 4096, 80);
    img_set_u32(&im, 56, 4u << 20); /* claims 4 MiB */
    uint64_t w[9] = {1};
    uint32_t off = img_slot(&im, 48, 9, w, 9);
    img_link(&im, &off, 1);
    char path[128];
    snprintf(path, sizeof path, "%s/lying", t_tmpdir());
    REQUIRE(img_write(&im, path) == 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_path(&shm, path, 0) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 1);
    CHECK_EQ(felix_shm_get_info(shm)->size, 4u << 20);
    CHECK_EQ(felix_shm_get_info(shm)->mapped_size, 4096);
    /* A head beyond the real size is refused, not read. */
    img_set_u32(&im, 52, 8192 + 64);
    REQUIRE(img_write(&im, path) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 0);
    CHECK_EQ(felix_snapshot_get_info(s)->anomaly_bad_offset, 1);
    felix_snapshot_free(s);
    felix_shm_close(shm);
    img_free(&im);
}

/* The file grows (remap, new slots seen) and shrinks (never read past EOF). */
static void grow_and_shrink(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/grow", t_tmpdir());
    img im;
    img_init(&im, 4096, 80);
    uint64_t w[9] = {1};
    uint32_t off = img_slot(&im, 0, 1, w, 9);
    img_link(&im, &off, 1);
    REQUIRE(img_write(&im, path) == 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_path(&shm, path, 0) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 1);
    img_free(&im);

    /* Grow to 16 KiB with a thread in the new part. */
    img_init(&im, 16384, 80);
    uint32_t offs[2] = {img_slot(&im, 0, 1, w, 9), img_slot(&im, 150, 2, w, 9)};
    img_link(&im, offs, 2);
    REQUIRE(img_write(&im, path) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 2);
    CHECK_EQ(felix_shm_get_info(shm)->mapped_size, 16384);
    CHECK_EQ(felix_shm_get_info(shm)->remaps, 1);

    /* Shrink behind the reader's back: the slot past the new end is not read. */
    REQUIRE(truncate(path, 8192) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 1);
    CHECK_EQ(felix_snapshot_get_info(s)->anomaly_bad_offset, 1);
    REQUIRE(truncate(path, 10) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, s), FELIX_ETRUNC);
    CHECK(strstr(felix_error_detail(), "10 bytes") != NULL);
    felix_snapshot_free(s);
    felix_shm_close(shm);
    img_free(&im);
}

static void open_errors(void)
{
    felix_shm *shm = NULL;
    /* A PID that does not exist. */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    CHECK_EQ(felix_shm_open_pid(&shm, dead, 0), FELIX_ESRCH);
    CHECK(strstr(felix_error_detail(), "no process") != NULL);
    /* A live process without statistics (ourselves). */
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_ENOSTATS);
    CHECK(strstr(felix_error_detail(), "FEX_PROFILESTATS") != NULL);
    /* A stale segment of a dead process. */
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)dead);
    img im;
    img_init(&im, 4096, 80);
    REQUIRE(img_write(&im, path) == 0);
    CHECK_EQ(felix_shm_open_pid(&shm, dead, 0), FELIX_ESTALE);
    CHECK(strstr(felix_error_detail(), "stale") != NULL);
    CHECK_EQ(felix_shm_open_pid(&shm, dead, FELIX_SHM_ALLOW_STALE), 0);
    felix_shm_close(shm);
    /* By path, a stale image is just an image. */
    CHECK_EQ(felix_shm_open_path(&shm, path, 0), 0);
    felix_shm_close(shm);
    unlink(path);
    /* A missing file by path. */
    CHECK_EQ(felix_shm_open_path(&shm, "/nonexistent/fex-1-stats", 0), FELIX_ENOSTATS);
    img_free(&im);
}

static void foreign_owner_refused(void)
{
    if (geteuid() != 0) {
        /* Needs chown; the CI runs as root. Fail loudly rather than skip. */
        fprintf(stderr, "foreign_owner_refused needs root to chown a file\n");
        t_failures++;
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)getpid());
    img im;
    img_init(&im, 4096, 80);
    REQUIRE(img_write(&im, path) == 0);
    REQUIRE(chown(path, 12345, 12345) == 0);
    felix_shm *shm = NULL;
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_EOWNER);
    CHECK(strstr(felix_error_detail(), "uid 12345") != NULL);
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), FELIX_SHM_ALLOW_FOREIGN_OWNER), 0);
    CHECK_EQ(felix_shm_get_info(shm)->owner_uid, 12345);
    felix_shm_close(shm);
    REQUIRE(chown(path, 0, 0) == 0);
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), 0);
    CHECK_EQ(felix_shm_get_info(shm)->pid, getpid());
    felix_shm_close(shm);
    unlink(path);
    img_free(&im);
}

/* Our own segment path: a live process (this one) owned by us. */
static const char *own_path(void)
{
    static char path[64];
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)getpid());
    return path;
}

/* An image of n threads (TIDs 100..) in slots 0..n-1 of an object of size
 * bytes, 80-byte slots, with fex the version string. */
static void make_image(img *im, size_t size, unsigned n, const char *fex, uint64_t base)
{
    img_init(im, size, 80);
    memset(im->p + 4, 0, 48);
    memcpy(im->p + 4, fex, strlen(fex));
    uint32_t offs[64];
    for (unsigned i = 0; i < n && i < 64; i++) {
        uint64_t w[9];
        for (int k = 0; k < 9; k++)
            w[k] = base + i * 10 + (uint64_t)k;
        offs[i] = img_slot(im, i, 100 + i, w, 9);
    }
    img_link(im, offs, n < 64 ? n : 64);
}

struct racer {
    int fd;
    atomic_int stop;
    unsigned long cycles;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A hostile writer: truncate to 0, regrow to a random size, rewrite the
 * header and a list of 8 threads; now and then shrink in the middle. */
static void *race_writer(void *arg)
{
    struct racer *r = arg;
    static const size_t sizes[] = {4096, 8192, 65536, 1 << 20};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    while (!atomic_load(&r->stop)) {
        size_t size = sizes[xorshift(&seed) % 4];
        img im;
        make_image(&im, 4096, 8, "FEX-race", r->cycles);
        img_set_u32(&im, 56, (uint32_t)size);
        if (ftruncate(r->fd, 0) < 0 || ftruncate(r->fd, (off_t)size) < 0 ||
            pwrite(r->fd, im.p, 4096, 0) != 4096)
            break;
        if (xorshift(&seed) % 4 == 0 && ftruncate(r->fd, (off_t)(64 + 80 * (xorshift(&seed) % 8))) < 0)
            break;
        img_free(&im);
        r->cycles++;
    }
    return NULL;
}

/* A reader snapshotting while the object is truncated and regrown under it
 * never gets a signal: every snapshot is valid or FELIX_ERESTART. */
static void truncate_race_never_faults(void)
{
    const char *path = own_path();
    img im;
    make_image(&im, 4096, 8, "FEX-race", 0);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, getpid(), 0) == 0);
    struct racer r = {.fd = open(path, O_RDWR)};
    REQUIRE(r.fd >= 0);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, race_writer, &r) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    unsigned long ok = 0, restart = 0, other = 0, bad_tid = 0;
    int64_t end = t_now_ns() + 3000000000LL;
    while (t_now_ns() < end) {
        int rc = felix_shm_snapshot(shm, s);
        if (rc == FELIX_ERESTART) {
            restart++;
            CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 0);
            continue;
        }
        if (rc != 0) {
            if (other++ < 5)
                fprintf(stderr, "unexpected %d: %s\n", rc, felix_error_detail());
            continue;
        }
        ok++;
        const felix_snapshot_info *si = felix_snapshot_get_info(s);
        CHECK(si->nthreads <= 8);
        for (uint32_t i = 0; i < si->nthreads; i++) {
            uint32_t tid = felix_snapshot_thread(s, i)->tid;
            bad_tid += tid < 100 || tid >= 108;
        }
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    fprintf(stderr, "race: %lu writer cycles, %lu good snapshots, %lu restarting, image %u\n", r.cycles, ok,
            restart, felix_shm_get_info(shm)->image);
    CHECK_EQ(other, 0);
    CHECK_EQ(bad_tid, 0);
    CHECK(ok > 100);
    CHECK(restart > 0);
    CHECK(r.cycles > 100);
    CHECK(felix_shm_get_info(shm)->image > 1);
    CHECK_EQ(felix_shm_get_info(shm)->restarts, restart);
    close(r.fd);
    felix_snapshot_free(s);
    felix_shm_close(shm);
    unlink(path);
}

/* A FIFO, a directory, a device and a symbolic link at the path are refused
 * as "not a FEX statistics object" at once; a FIFO never blocks. */
static void not_regular_files(void)
{
    const char *path = own_path();
    felix_shm *shm = NULL;
    unlink(path);
    REQUIRE(mkfifo(path, 0600) == 0);
    int64_t t0 = t_now_ns();
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_ENOSTATS);
    CHECK(strstr(felix_error_detail(), "not a FEX statistics object (a FIFO)") != NULL);
    CHECK(t_now_ns() - t0 < 1000000000LL); /* did not wait for a writer */
    CHECK_EQ(felix_shm_open_path(&shm, path, 0), FELIX_ENOSTATS);
    unlink(path);
    REQUIRE(mkdir(path, 0700) == 0);
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_ENOSTATS);
    CHECK(strstr(felix_error_detail(), "a directory") != NULL);
    rmdir(path);
    REQUIRE(mknod(path, S_IFCHR | 0600, makedev(1, 5)) == 0); /* /dev/zero's device */
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_ENOSTATS);
    CHECK(strstr(felix_error_detail(), "a character device") != NULL);
    unlink(path);
    CHECK_EQ(felix_shm_open_path(&shm, "/dev/zero", 0), FELIX_ENOSTATS);
    /* A link to a good image is refused too: it is not what FEX creates. */
    char target[128];
    snprintf(target, sizeof target, "%s/good", t_tmpdir());
    img im;
    make_image(&im, 4096, 2, "FEX", 0);
    REQUIRE(img_write(&im, target) == 0);
    img_free(&im);
    REQUIRE(symlink(target, path) == 0);
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_ENOSTATS);
    CHECK(strstr(felix_error_detail(), "a symbolic link") != NULL);
    unlink(path);
    CHECK_EQ(felix_shm_open_path(&shm, target, 0), 0);
    felix_shm_close(shm);
}

struct later {
    int fd;
    int delay_ms;
};

static void *write_header_later(void *arg)
{
    struct later *l = arg;
    t_sleep_ms(l->delay_ms);
    img im;
    make_image(&im, 4096, 3, "FEX-late", 0);
    if (ftruncate(l->fd, 4096) == 0 && pwrite(l->fd, im.p, 4096, 0) == 4096) {
    }
    img_free(&im);
    return NULL;
}

/* Attaching to a brand-new object (0 bytes, then zeros, then the header)
 * waits for the header, bounded; FELIX_SHM_NO_WAIT and a header that never
 * comes give the usual errors. */
static void new_object_waits_for_header(void)
{
    const char *path = own_path();
    unlink(path);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    felix_shm *shm = NULL;
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), FELIX_SHM_NO_WAIT), FELIX_ETRUNC);
    struct later l = {fd, 150};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, write_header_later, &l) == 0);
    int64_t t0 = t_now_ns();
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), 0);
    int64_t waited = t_now_ns() - t0;
    pthread_join(th, NULL);
    CHECK(waited >= 140000000LL);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 3);
    CHECK_EQ(felix_snapshot_get_info(s)->image, 1);
    felix_shm_close(shm);
    /* All zero for good: the bounded wait ends with "version 0". */
    REQUIRE(ftruncate(fd, 0) == 0 && ftruncate(fd, 4096) == 0);
    t0 = t_now_ns();
    CHECK_EQ(felix_shm_open_pid(&shm, getpid(), 0), FELIX_EVERSION);
    CHECK(strstr(felix_error_detail(), "version 0") != NULL);
    waited = t_now_ns() - t0;
    CHECK(waited >= (int64_t)FELIX_SHM_READY_TIMEOUT_MS * 1000000);
    CHECK(waited < (int64_t)FELIX_SHM_READY_TIMEOUT_MS * 1000000 * 5);
    felix_snapshot_free(s);
    close(fd);
    unlink(path);
}

struct execer {
    int fd;
    int execs;
    atomic_uint seen;  /* the reader's image after its last good snapshot */
    atomic_ulong reads; /* the reader's snapshots so far */
    atomic_int done;
};

/* Exec the way FEX does: truncate to 0, grow to one page, write the header
 * through a shared mapping (its first write fault moves the mtime); then
 * wait, bounded, until the reader has seen the new image and read it more. */
static void *exec_through_mapping(void *arg)
{
    struct execer *e = arg;
    for (int k = 0; k < e->execs; k++) {
        img im;
        make_image(&im, 4096, 2, "FEX", (uint64_t)k * 1000);
        if (ftruncate(e->fd, 0) != 0 || ftruncate(e->fd, 4096) != 0) {
            img_free(&im);
            break;
        }
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
        if (m != MAP_FAILED) {
            memcpy(m, im.p, 4096);
            munmap(m, 4096);
        }
        img_free(&im);
        int64_t end = t_now_ns() + 5000000000LL;
        while (atomic_load(&e->seen) < (unsigned)k + 2 && t_now_ns() < end)
            sched_yield();
        unsigned long r = atomic_load(&e->reads);
        while (atomic_load(&e->reads) < r + 20 && t_now_ns() < end)
            sched_yield();
    }
    atomic_store(&e->done, 1);
    return NULL;
}

/* A reader snapshotting without pause while a one-page object is recreated
 * counts exactly one image per exec, although its fstat may come before the
 * writer's first write fault and its read of the header after it. */
static void header_written_during_read_is_one_image(void)
{
    const char *path = own_path();
    img im;
    make_image(&im, 4096, 2, "FEX", 0);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, getpid(), 0) == 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    struct execer e = {.fd = fd, .execs = 150};
    atomic_store(&e.seen, 1);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, exec_through_mapping, &e) == 0);
    unsigned long bad = 0;
    int64_t end = t_now_ns() + 60000000000LL;
    while (!atomic_load(&e.done) && t_now_ns() < end) {
        int rc = felix_shm_snapshot(shm, s);
        if (rc == 0) {
            atomic_store(&e.seen, felix_snapshot_get_info(s)->image);
        } else if (rc != FELIX_ERESTART) {
            bad++;
        }
        atomic_fetch_add(&e.reads, 1);
    }
    pthread_join(th, NULL);
    CHECK_EQ(bad, 0);
    CHECK_EQ(felix_shm_get_info(shm)->image, 1 + 150);
    felix_snapshot_free(s);
    felix_shm_close(shm);
    close(fd);
    unlink(path);
}

/* exec: same object truncated to 0, then a new header; a smaller object; a
 * new FEX version. Each is a new image, and delta never spans two. */
static void exec_is_a_new_image(void)
{
    const char *path = own_path();
    img im;
    make_image(&im, 8192, 4, "FEX-old", 1000);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, getpid(), 0) == 0);
    felix_snapshot *a, *b;
    felix_snapshot_new(&a);
    felix_snapshot_new(&b);
    felix_delta *d;
    felix_delta_new(&d, 1000000000, 4);
    REQUIRE(felix_shm_snapshot(shm, a) == 0);
    CHECK_EQ(felix_snapshot_get_info(a)->image, 1);
    felix_delta_compute(d, NULL, a);
    /* The new image opens with O_TRUNC: 0 bytes, then a page of zeros. */
    REQUIRE(truncate(path, 0) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, b), FELIX_ERESTART);
    CHECK(strstr(felix_error_detail(), "being (re)created") != NULL);
    REQUIRE(truncate(path, 8192) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, b), FELIX_ERESTART);
    make_image(&im, 8192, 1, "FEX-old", 5);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    t_sleep_ms(2);
    REQUIRE(felix_shm_snapshot(shm, b) == 0);
    CHECK_EQ(felix_snapshot_get_info(b)->image, 2);
    CHECK_EQ(felix_shm_get_info(shm)->image, 2);
    REQUIRE(felix_delta_compute(d, a, b) == 0);
    const felix_frame *f = felix_delta_frame(d);
    CHECK_EQ(f->events, FELIX_FRAME_EXEC);
    CHECK_EQ(f->interval_ns, 0);
    CHECK_EQ(f->nstarted, 1);
    CHECK_EQ(f->nexited, 4);
    CHECK_EQ(f->d[FELIX_C_JIT_TIME], 0);
    CHECK_EQ(f->image, 2);
    /* Thread 100 lives on in both images, counters lower: no wrapped delta,
     * and the old image's totals stay counted. */
    CHECK_EQ(felix_delta_thread(d, 0)->state & FELIX_TD_STARTED, FELIX_TD_STARTED);
    CHECK(f->cum[FELIX_C_JIT_TIME] >= 1000 + 1010 + 1020 + 1030 + 5);
    /* Same image again: an ordinary frame. */
    t_sleep_ms(2);
    REQUIRE(felix_shm_snapshot(shm, a) == 0);
    REQUIRE(felix_delta_compute(d, b, a) == 0);
    CHECK_EQ(felix_delta_frame(d)->events, 0);
    CHECK(felix_delta_frame(d)->interval_ns > 0);
    /* An exec whose window we missed: the object got smaller. */
    make_image(&im, 4096, 1, "FEX-old", 5);
    REQUIRE(truncate(path, 4096) == 0 && img_write(&im, path) == 0);
    img_free(&im);
    REQUIRE(felix_shm_snapshot(shm, b) == 0);
    CHECK_EQ(felix_snapshot_get_info(b)->image, 3);
    t_sleep_ms(60); /* past the 50 ms a new header's identity must read the same */
    REQUIRE(felix_shm_snapshot(shm, b) == 0); /* settled */
    /* Or another FEX (same size). */
    make_image(&im, 4096, 1, "FEX-new", 5);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    REQUIRE(felix_shm_snapshot(shm, a) == 0);
    CHECK_EQ(felix_snapshot_get_info(a)->image, 4);
    CHECK(strcmp(felix_shm_get_info(shm)->fex_version, "FEX-new") == 0);
    /* An exec whose window we missed with the same size and header: the
     * truncation moved the object's mtime (coarse: wait until it shows). */
    struct stat before, after;
    REQUIRE(stat(path, &before) == 0);
    make_image(&im, 4096, 1, "FEX-new", 2);
    for (int i = 0; i < 1000; i++) {
        REQUIRE(truncate(path, 0) == 0 && img_write(&im, path) == 0 && stat(path, &after) == 0);
        if (after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)
            break;
        t_sleep_ms(1);
    }
    img_free(&im);
    REQUIRE(felix_shm_snapshot(shm, b) == 0);
    CHECK_EQ(felix_snapshot_get_info(b)->image, 5);
    /* Growth is not an exec. */
    make_image(&im, 16384, 1, "FEX-new", 6);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    REQUIRE(felix_shm_snapshot(shm, b) == 0);
    CHECK_EQ(felix_snapshot_get_info(b)->image, 5);
    /* A new image's header caught half-written (version byte first, the
     * rest still zero), then complete: one exec, not two. */
    REQUIRE(felix_shm_snapshot(shm, b) == 0); /* settled */
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0 && ftruncate(fd, 0) == 0 && ftruncate(fd, 4096) == 0);
    CHECK_EQ(felix_shm_snapshot(shm, b), FELIX_ERESTART);
    /* Written through a mapping, as FEX writes (write() would move the mtime). */
    unsigned char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(map != MAP_FAILED);
    map[0] = 2;
    REQUIRE(felix_shm_snapshot(shm, b) == 0);
    CHECK_EQ(felix_snapshot_get_info(b)->image, 6);
    make_image(&im, 4096, 1, "FEX-new", 2);
    memcpy(map, im.p, 4096);
    img_free(&im);
    munmap(map, 4096);
    close(fd);
    REQUIRE(felix_shm_snapshot(shm, b) == 0);
    CHECK_EQ(felix_snapshot_get_info(b)->image, 6);
    CHECK_EQ(felix_snapshot_get_info(b)->nthreads, 1);
    /* FEX unlinking the object at its exit is not an exec either. */
    t_sleep_ms(20);
    REQUIRE(unlink(path) == 0);
    REQUIRE(felix_shm_snapshot(shm, a) == 0);
    CHECK_EQ(felix_snapshot_get_info(a)->image, 6);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
    felix_delta_free(d);
    felix_shm_close(shm);
}

/* A 16 MiB object (felix86's largest) with threads far apart: the walk
 * reads on past its first blocks and finds every one. */
static void sparse_huge_object(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/huge", t_tmpdir());
    img im;
    img_init(&im, FELIX_SHM_MAP_LIMIT, 80);
    static const unsigned at[] = {0, 1, 52, 100000, 209713};
    uint32_t offs[5];
    for (int i = 0; i < 5; i++) {
        uint64_t w[9] = {(uint64_t)i + 1};
        offs[i] = img_slot(&im, at[i], 10 + (uint32_t)i, w, 9);
    }
    img_link(&im, offs, 5);
    REQUIRE(img_write(&im, path) == 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_path(&shm, path, 0) == 0);
    CHECK_EQ(felix_shm_get_info(shm)->nslots, 209714);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    for (int round = 0; round < 2; round++) {
        REQUIRE(felix_shm_snapshot(shm, s) == 0);
        CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 5);
        for (uint32_t i = 0; i < 5; i++)
            CHECK_EQ(felix_snapshot_find(s, 10 + i)->c[0], i + 1);
    }
    /* The same bytes in memory read the same. */
    felix_snapshot *m;
    felix_snapshot_new(&m);
    CHECK_EQ(felix_shm_snapshot_image(im.p, im.len, m), 0);
    CHECK_EQ(felix_snapshot_get_info(m)->nthreads, 5);
    felix_snapshot_free(m);
    felix_snapshot_free(s);
    felix_shm_close(shm);
    img_free(&im);
    unlink(path);
}

/* A digest of a snapshot's threads and counters. */
static uint64_t snap_digest(const felix_snapshot *s)
{
    const felix_snapshot_info *si = felix_snapshot_get_info(s);
    uint64_t h = 1469598103934665603ull ^ si->nthreads;
    for (size_t i = 0; i < si->nthreads; i++) {
        const felix_thread *t = felix_snapshot_thread(s, i);
        h = (h ^ t->tid) * 1099511628211ull;
        for (int k = 0; k < FELIX_NCOUNTERS; k++)
            h = (h ^ t->c[k]) * 1099511628211ull;
        for (size_t k = 0; k < si->nextra; k++)
            h = (h ^ felix_snapshot_extra(s, i)[k]) * 1099511628211ull;
    }
    return h;
}

struct oom_snap {
    const char *path;
    img *im;
    uint64_t want;
};

/* Open, snapshot twice (the object and its image); a snapshot that ran out
 * of memory is taken again once memory is back, and must then be whole. */
static int oom_snap_step(void *arg)
{
    struct oom_snap *o = arg;
    felix_shm *shm;
    felix_snapshot *s;
    int rc = felix_snapshot_new(&s), oom = 0;
    if (rc < 0)
        return rc;
    if ((rc = felix_shm_open_path(&shm, o->path, 0)) < 0) {
        felix_snapshot_free(s);
        return rc;
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        rc = pass ? felix_shm_snapshot_image(o->im->p, o->im->len, s) : felix_shm_snapshot(shm, s);
        if (rc == FELIX_ENOMEM) {
            oom = 1;
            if (felix_snapshot_get_info(s)->nthreads != 0)
                rc = -100; /* never a thread list with threads missing */
            t_alloc_heal();
            if (rc == FELIX_ENOMEM)
                rc = pass ? felix_shm_snapshot_image(o->im->p, o->im->len, s) : felix_shm_snapshot(shm, s);
        }
        if (rc == 0 && o->want && snap_digest(s) != o->want)
            rc = -101;
        if (rc == 0 && !o->want)
            o->want = snap_digest(s);
    }
    felix_shm_close(shm);
    felix_snapshot_free(s);
    return rc < 0 ? rc : oom ? FELIX_ENOMEM : 0;
}

/* Out of memory at every allocation in turn: clean failures, no leaks, no
 * partial thread lists, and a whole snapshot once memory is back. */
static void oom_snapshot(void)
{
    img im;
    img_init(&im, 65536, 112);
    uint32_t offs[300];
    for (unsigned i = 0; i < 300; i++) {
        uint64_t w[13];
        for (int k = 0; k < 13; k++)
            w[k] = i * 100u + (unsigned)k;
        offs[i] = img_slot(&im, i, 5000 + i, w, 13);
    }
    img_link(&im, offs, 300);
    char path[256];
    snprintf(path, sizeof path, "%s/fex-oom-stats", t_tmpdir());
    REQUIRE(img_write(&im, path) == 0);
    struct oom_snap o = {path, &im, 0};
    t_alloc_install();
    REQUIRE(oom_snap_step(&o) == 0 && o.want != 0);
    CHECK(t_oom_every("snapshot", oom_snap_step, &o, 10));
    img_free(&im);
}

T_MAIN(T(oom_snapshot), T(header_too_short), T(version_mismatch), T(slot_size_rules), T(app_type_names),
       T(fex_version_escaped), T(walk_reads_counters), T(walk_legacy_and_extra),
       T(walk_bad_offsets), T(walk_cycle_ends), T(walk_free_and_duplicate),
       T(lying_size_is_ignored), T(grow_and_shrink), T(open_errors), T(foreign_owner_refused),
       T(truncate_race_never_faults), T(not_regular_files), T(new_object_waits_for_header), T(header_written_during_read_is_one_image),
       T(exec_is_a_new_image), T(sparse_huge_object))
