/*
 * Attaching to a statistics segment and walking its thread list.
 *
 * Invariants:
 *  - map is a read-only MAP_SHARED mapping of map_len bytes, and map_len never
 *    exceeds the object's size as fstat reported it at the last refresh, so no
 *    page past end-of-file is touched (that would raise SIGBUS). Every
 *    snapshot refreshes first. FEX never shrinks the object; only a hostile
 *    writer shrinking it between our fstat and our copy could still fault.
 *  - Every offset taken from the segment is checked before use: at or after
 *    byte 64, on a slot boundary, and with the whole slot inside map_len.
 *  - The walk marks each visited slot with a generation number, so a cycle
 *    ends at the first revisit, and the walk can never take more steps than
 *    there are slots.
 */
#include "felix/felix.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "FEX's statistics are little-endian; libfelix supports little-endian hosts"
#endif


struct felix_shm {
    felix_shm_info info;
    int fd;
    const unsigned char *map;
    size_t map_len;
    uint32_t *gens;     /* per-slot visit generation */
    size_t gens_cap;
    uint32_t gen;
    uint64_t *slotbuf;  /* one slot's words */
    size_t slotbuf_cap;
};

/* Escape the FEX version: printable ASCII kept, the rest as \xNN, stop at NUL. */
static void escape_version(const unsigned char *src, char *dst)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 48 && src[i]; i++) {
        unsigned char c = src[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = '\0';
}

/* Validate a header copied out of the segment (64 bytes, aligned). */
static int parse_header64(const uint64_t *hdr, size_t len, felix_shm_info *out)
{
    const unsigned char *b = (const unsigned char *)hdr;
    if (len < FELIX_HEADER_SIZE)
        return fx_fail(FELIX_ETRUNC, "segment is %zu bytes, shorter than its 64-byte header", len);
    if (b[0] != FELIX_STATS_VERSION)
        return fx_fail(FELIX_EVERSION, "statistics version %u found; this libfelix reads version %d",
                       b[0], FELIX_STATS_VERSION);
    uint16_t tss = (uint16_t)(b[2] | (b[3] << 8));
    unsigned eff = felix_slot_size_valid(tss);
    if (!eff || eff > FELIX_SHM_FEX_MAX_SIZE - FELIX_HEADER_SIZE)
        return fx_fail(FELIX_ECORRUPT,
                       "ThreadStatsSize %u is invalid: it must be 0 (48-byte slots) or at least 48 and a multiple of 16",
                       tss);
    out->version = b[0];
    out->app_type = b[1];
    felix_app_type_name(b[1], out->app_type_name, sizeof out->app_type_name);
    out->thread_stats_size = tss;
    out->slot_size = (uint16_t)eff;
    unsigned nwords = (eff - 8) / 8;
    out->nknown = (uint16_t)(nwords < FELIX_NCOUNTERS ? nwords : FELIX_NCOUNTERS);
    out->nextra = (uint16_t)(nwords > FELIX_NCOUNTERS ? nwords - FELIX_NCOUNTERS : 0);
    escape_version(b + 4, out->fex_version);
    memcpy(&out->head, b + 52, 4);
    memcpy(&out->size, b + 56, 4);
    out->real_size = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    size_t usable = len > FELIX_SHM_MAP_LIMIT ? FELIX_SHM_MAP_LIMIT : len;
    out->mapped_size = (uint32_t)usable;
    out->nslots = (uint32_t)((usable - FELIX_HEADER_SIZE) / eff);
    return 0;
}

int felix_shm_parse_header(const void *image, size_t len, felix_shm_info *out)
{
    if (!image || !out)
        return fx_fail(FELIX_EINVAL, "felix_shm_parse_header: NULL argument");
    uint64_t hdr[8] = {0};
    memcpy(hdr, image, len < sizeof hdr ? len : sizeof hdr);
    felix_shm_info info;
    memset(&info, 0, sizeof info);
    info.pid = -1;
    int rc = parse_header64(hdr, len, &info);
    if (rc == 0)
        *out = info;
    return rc;
}

/*
 * Walk the list of an image of len readable bytes into snap (already begun).
 * gens has at least nslots entries; slotbuf holds slot_size bytes.
 */
static void walk(const unsigned char *img, size_t len, const felix_shm_info *h,
                 felix_snapshot *snap, uint32_t *gens, uint32_t gen, uint64_t *slotbuf)
{
    felix_snapshot_info *si = felix_snapshot_info_mut(snap);
    const size_t ss = h->slot_size;
    const size_t nwords = ss / 8 - 1;
    uint32_t off = h->head;
    while (off != 0) {
        if (off < FELIX_HEADER_SIZE || (off - FELIX_HEADER_SIZE) % ss != 0 ||
            (size_t)off + ss > len) {
            si->anomaly_bad_offset++;
            break;
        }
        size_t idx = (off - FELIX_HEADER_SIZE) / ss;
        if (gens[idx] == gen) {
            si->anomaly_cycle++;
            break;
        }
        gens[idx] = gen;
        fx_copy16(slotbuf, img + off, ss);
        uint32_t next = (uint32_t)slotbuf[0];
        uint32_t tid = (uint32_t)(slotbuf[0] >> 32);
        if (tid == 0) {
            si->skipped_free++;
        } else if (fx_load32(img + off + 4) != tid) {
            /* Freed (and maybe reused) while we copied: counters are mixed. */
            si->skipped_racing++;
        } else {
            /* Only fails on allocation; the thread is then missing. */
            (void)felix_snapshot_append(snap, tid, off, slotbuf + 1, nwords);
        }
        off = next;
    }
}

static void fill_snapshot_header(felix_snapshot *snap, const felix_shm_info *h)
{
    felix_snapshot_info *si = felix_snapshot_info_mut(snap);
    si->version = h->version;
    si->app_type = h->app_type;
    si->head = h->head;
    si->size = h->size;
    si->real_size = h->real_size;
}

int felix_shm_snapshot_image(const void *image, size_t len, felix_snapshot *snap)
{
    if (!image || !snap || ((uintptr_t)image & 15))
        return fx_fail(FELIX_EINVAL, "felix_shm_snapshot_image: NULL or misaligned image");
    felix_shm_info h;
    int rc = felix_shm_parse_header(image, len, &h);
    if (rc < 0)
        return rc;
    rc = felix_snapshot_begin(snap, fx_now_ns(CLOCK_MONOTONIC), fx_now_ns(CLOCK_REALTIME),
                              h.slot_size);
    if (rc < 0)
        return rc;
    fill_snapshot_header(snap, &h);
    uint32_t *gens = calloc(h.nslots ? h.nslots : 1, sizeof *gens);
    uint64_t *buf = malloc(h.slot_size);
    if (!gens || !buf) {
        free(gens);
        free(buf);
        return fx_fail(FELIX_ENOMEM, "out of memory walking a %zu-byte image", len);
    }
    walk(image, h.mapped_size, &h, snap, gens, 1, buf);
    free(gens);
    free(buf);
    return 0;
}

static void unmap(felix_shm *shm)
{
    if (shm->map)
        munmap((void *)shm->map, shm->map_len);
    shm->map = NULL;
    shm->map_len = 0;
}

int felix_shm_refresh(felix_shm *shm)
{
    if (!shm)
        return fx_fail(FELIX_EINVAL, "felix_shm_refresh: NULL handle");
    struct stat st;
    if (fstat(shm->fd, &st) < 0)
        return fx_fail(FELIX_EIO, "cannot stat %s: %s", shm->info.path, strerror(errno));
    if (st.st_size < FELIX_HEADER_SIZE) {
        unmap(shm);
        return fx_fail(FELIX_ETRUNC, "%s is %lld bytes, shorter than its 64-byte header",
                       shm->info.path, (long long)st.st_size);
    }
    size_t want = (size_t)st.st_size > FELIX_SHM_MAP_LIMIT ? FELIX_SHM_MAP_LIMIT : (size_t)st.st_size;
    if (want != shm->map_len) {
        void *p = mmap(NULL, want, PROT_READ, MAP_SHARED, shm->fd, 0);
        if (p == MAP_FAILED)
            return fx_fail(fx_errno_code(errno), "cannot map %s (%zu bytes): %s", shm->info.path,
                           want, strerror(errno));
        if (shm->map)
            shm->info.remaps++;
        unmap(shm);
        shm->map = p;
        shm->map_len = want;
    }
    uint64_t hdr[8];
    fx_copy16(hdr, shm->map, sizeof hdr);
    felix_shm_info h = shm->info;
    int rc = parse_header64(hdr, (size_t)st.st_size, &h);
    if (rc < 0) {
        char why[384];
        snprintf(why, sizeof why, "%s", felix_error_detail());
        return fx_fail(rc, "%s: %s", shm->info.path, why);
    }
    h.owner_uid = st.st_uid;
    size_t nslots = h.nslots ? h.nslots : 1;
    if (nslots > shm->gens_cap) {
        uint32_t *g = calloc(nslots, sizeof *g);
        if (!g)
            return fx_fail(FELIX_ENOMEM, "out of memory for %zu slots", nslots);
        free(shm->gens);
        shm->gens = g;
        shm->gens_cap = nslots;
        shm->gen = 0;
    }
    size_t words = h.slot_size / 8;
    if (words > shm->slotbuf_cap) {
        uint64_t *b = realloc(shm->slotbuf, words * 8);
        if (!b)
            return fx_fail(FELIX_ENOMEM, "out of memory for a %u-byte slot", h.slot_size);
        shm->slotbuf = b;
        shm->slotbuf_cap = words;
    }
    shm->info = h;
    return 0;
}

int felix_shm_snapshot(felix_shm *shm, felix_snapshot *snap)
{
    if (!shm || !snap)
        return fx_fail(FELIX_EINVAL, "felix_shm_snapshot: NULL argument");
    int rc = felix_shm_refresh(shm);
    if (rc < 0)
        return rc;
    rc = felix_snapshot_begin(snap, fx_now_ns(CLOCK_MONOTONIC), fx_now_ns(CLOCK_REALTIME),
                              shm->info.slot_size);
    if (rc < 0)
        return rc;
    fill_snapshot_header(snap, &shm->info);
    if (++shm->gen == 0) { /* wrapped: forget old marks */
        memset(shm->gens, 0, shm->gens_cap * sizeof *shm->gens);
        shm->gen = 1;
    }
    walk(shm->map, shm->map_len, &shm->info, snap, shm->gens, shm->gen, shm->slotbuf);
    return 0;
}

/* Parse "fex-<pid>-stats" at the end of path; returns pid or -1. */
static pid_t pid_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int pid = 0, n = 0;
    if (sscanf(base, "fex-%d-stats%n", &pid, &n) == 1 && base[n] == '\0' && pid > 0)
        return pid;
    return -1;
}

static int open_common(felix_shm **out, const char *path, pid_t pid, unsigned flags)
{
    if (!out || !path)
        return fx_fail(FELIX_EINVAL, "felix_shm_open: NULL argument");
    if (strlen(path) >= sizeof ((felix_shm_info *)0)->path)
        return fx_fail(FELIX_EINVAL, "path too long: %.64s...", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && pid > 0)
            return fx_fail(FELIX_ENOSTATS,
                           "process %d has no FEX statistics (%s is missing): not a FEX process, or FEX_PROFILESTATS=1 not set",
                           (int)pid, path);
        return fx_fail(fx_errno_code(e), "cannot open %s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fx_fail(FELIX_EINVAL, "%s is not a regular file", path);
    }
    if (pid > 0) {
        int state = fx_segment_state(pid, &st);
        if (state != FELIX_PROC_LIVE && !(flags & FELIX_SHM_ALLOW_STALE)) {
            close(fd);
            return fx_fail(FELIX_ESTALE, "%s is stale: %s", path,
                           state == FELIX_PROC_STALE_DEAD ? "its process is gone"
                                                          : "its PID now belongs to a newer process");
        }
        struct stat pst;
        char proc[32];
        snprintf(proc, sizeof proc, "/proc/%d", (int)pid);
        if (state == FELIX_PROC_LIVE && stat(proc, &pst) == 0 && pst.st_uid != st.st_uid &&
            !(flags & FELIX_SHM_ALLOW_FOREIGN_OWNER)) {
            close(fd);
            return fx_fail(FELIX_EOWNER,
                           "%s is owned by uid %u but process %d runs as uid %u (refused; allow foreign owners to attach anyway)",
                           path, (unsigned)st.st_uid, (int)pid, (unsigned)pst.st_uid);
        }
    }
    felix_shm *shm = calloc(1, sizeof *shm);
    if (!shm) {
        close(fd);
        return fx_fail(FELIX_ENOMEM, "out of memory attaching %s", path);
    }
    shm->fd = fd;
    snprintf(shm->info.path, sizeof shm->info.path, "%s", path);
    shm->info.pid = pid > 0 ? pid : -1;
    int rc = felix_shm_refresh(shm);
    if (rc < 0) {
        felix_shm_close(shm);
        return rc;
    }
    shm->info.remaps = 0;
    *out = shm;
    return 0;
}

int felix_shm_open_path(felix_shm **out, const char *path, unsigned flags)
{
    pid_t pid = -1;
    if (path && strncmp(path, "/dev/shm/", 9) == 0 && strchr(path + 9, '/') == NULL)
        pid = pid_from_path(path);
    if (pid > 0 && !felix_proc_alive(pid, 0))
        flags |= FELIX_SHM_ALLOW_STALE; /* an image by path: stale is fine */
    return open_common(out, path, pid, flags);
}

int felix_shm_open_pid(felix_shm **out, pid_t pid, unsigned flags)
{
    if (pid <= 0)
        return fx_fail(FELIX_EINVAL, "invalid PID %d", (int)pid);
    if (kill(pid, 0) < 0 && errno == ESRCH && !(flags & FELIX_SHM_ALLOW_STALE)) {
        char path[64];
        snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
        if (access(path, F_OK) == 0)
            return fx_fail(FELIX_ESTALE, "%s is stale: process %d is gone", path, (int)pid);
        return fx_fail(FELIX_ESRCH, "no process with PID %d", (int)pid);
    }
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
    return open_common(out, path, pid, flags);
}

void felix_shm_close(felix_shm *shm)
{
    if (!shm)
        return;
    unmap(shm);
    if (shm->fd >= 0)
        close(shm->fd);
    free(shm->gens);
    free(shm->slotbuf);
    free(shm);
}

const felix_shm_info *felix_shm_get_info(const felix_shm *shm)
{
    return shm ? &shm->info : NULL;
}
