/* Attach and snapshot: header validation, the list walk on hostile images,
 * and files that grow, shrink or lie about their size. */
#include "helpers.h"
#include "t.h"

#include <felix/felix.h>
#include <signal.h>
#include <sys/stat.h>
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

T_MAIN(T(header_too_short), T(version_mismatch), T(slot_size_rules), T(app_type_names),
       T(fex_version_escaped), T(walk_reads_counters), T(walk_legacy_and_extra),
       T(walk_bad_offsets), T(walk_cycle_ends), T(walk_free_and_duplicate),
       T(lying_size_is_ignored), T(grow_and_shrink), T(open_errors), T(foreign_owner_refused))
