/*
 * Attaching to a statistics segment and walking its thread list.
 *
 * Invariants:
 *  - Nothing is mapped. The object is read with pread() into buf, which
 *    mirrors the object's first `readable` bytes at their own offsets; block
 *    b (4 KiB) of buf holds this snapshot's data when blk_gen[b] == rgen. A
 *    truncation under us makes pread return short: an error code, never a
 *    signal.
 *  - Every offset taken from the segment is checked before use: at or after
 *    byte 64, on a slot boundary, and with the whole slot inside `readable`
 *    (the real size from the fstat of this snapshot, capped at 16 MiB).
 *  - The walk marks each visited slot with a generation number, so a cycle
 *    ends at the first revisit, and the walk can never take more steps than
 *    there are slots.
 *  - image counts the process images seen: it moves on when a good snapshot
 *    follows a restart window, the object shrank, was truncated without
 *    growing (its mtime moved while it was one host page), or its identity (FEX version, app type, slot
 *    size) changed once the image's header had settled (read the same for
 *    SETTLE_NS: FEX writes a new header field by field, and a writer
 *    preempted halfway, under an emulator for milliseconds, must not look
 *    like two images).
 */
#include "felix/felix.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "FEX's statistics are little-endian; libfelix supports little-endian hosts"
#endif

/* The segment's layout (fex-shm.md): header fields and slot fields. */
enum {
    HDR_VERSION = 0,     /* u8 */
    HDR_APP_TYPE = 1,    /* u8 */
    HDR_TSS = 2,         /* u16 ThreadStatsSize */
    HDR_FEX_VERSION = 4, /* char[48] */
    HDR_FEX_VERSION_LEN = 48,
    HDR_HEAD = 52,       /* u32 */
    HDR_SIZE = 56,       /* u32 */
    SLOT_NEXT = 0,       /* u32 */
    SLOT_TID = 4,        /* u32 */
    SLOT_WORDS = 8       /* the counters, u64 each */
};

#define BLOCK 4096u

struct felix_shm {
    felix_shm_info info;
    int fd;
    int live;             /* a live process's segment: restart semantics */
    unsigned char *buf;   /* the object's bytes, at their offsets */
    size_t buf_cap;
    void *buf_block;    /* what buf was carved from (page-aligned inside) */
    uint32_t *blk_gen;    /* per block: the read generation it was filled in */
    size_t nblk_cap;
    uint32_t rgen;        /* this snapshot's read generation */
    size_t readable;      /* bytes readable this snapshot */
    size_t blocks_read;   /* blocks read this snapshot (run length hint) */
    uint32_t *gens;       /* per-slot visit generation */
    size_t gens_cap;
    uint32_t gen;
    /* lifecycle */
    int have_good;        /* a good header was seen */
    int restarted;        /* a restart window was seen since then */
    int settling;         /* the image's header has not read the same for SETTLE_NS yet */
    int64_t ident_since;  /* when the header's identity last changed */
    uint32_t good_real;   /* real size at the last good header */
    struct timespec good_mtime; /* the object's mtime then */
    unsigned char ident[HDR_FEX_VERSION + HDR_FEX_VERSION_LEN]; /* header bytes 0..51 */
};

/* How long a new header's identity must read the same before a change of
 * it counts as another image. */
#define SETTLE_NS 50000000LL

/* Escape the FEX version: printable ASCII kept, the rest as \xNN, stop at NUL. */
static void escape_version(const unsigned char *src, char *dst)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < HDR_FEX_VERSION_LEN && src[i]; i++) {
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

static uint32_t le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Validate a 64-byte header of an object of len bytes. */
static int parse_header64(const unsigned char *b, size_t len, felix_shm_info *out)
{
    if (len < FELIX_HEADER_SIZE)
        return fx_fail(FELIX_ETRUNC, "segment is %zu bytes, shorter than its 64-byte header", len);
    if (b[HDR_VERSION] != FELIX_STATS_VERSION)
        return fx_fail(FELIX_EVERSION, "statistics version %u found; this libfelix reads version %d",
                       b[HDR_VERSION], FELIX_STATS_VERSION);
    uint16_t tss = (uint16_t)(b[HDR_TSS] | (b[HDR_TSS + 1] << 8));
    unsigned eff = felix_slot_size_valid(tss);
    if (!eff || eff > FELIX_SHM_FEX_MAX_SIZE - FELIX_HEADER_SIZE)
        return fx_fail(FELIX_ECORRUPT,
                       "ThreadStatsSize %u is invalid: it must be 0 (48-byte slots) or at least 48 and a multiple of 16",
                       tss);
    out->version = b[HDR_VERSION];
    out->app_type = b[HDR_APP_TYPE];
    felix_app_type_name(b[HDR_APP_TYPE], out->app_type_name, sizeof out->app_type_name);
    out->thread_stats_size = tss;
    out->slot_size = (uint16_t)eff;
    unsigned nwords = (eff - SLOT_WORDS) / 8;
    out->nknown = (uint16_t)(nwords < FELIX_NCOUNTERS ? nwords : FELIX_NCOUNTERS);
    out->nextra = (uint16_t)(nwords > FELIX_NCOUNTERS ? nwords - FELIX_NCOUNTERS : 0);
    escape_version(b + HDR_FEX_VERSION, out->fex_version);
    out->head = le32(b + HDR_HEAD);
    out->size = le32(b + HDR_SIZE);
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
    unsigned char hdr[FELIX_HEADER_SIZE] = {0};
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
 * Where the walk reads slots: an image in memory (shm NULL; memory another
 * process may be writing, so each slot is copied with aligned 16-byte loads
 * into slotbuf), or a handle's buffer, filled on demand with pread.
 */
struct source {
    const unsigned char *p; /* the image, or the handle's buffer */
    size_t len;             /* image bytes (images only) */
    felix_shm *shm;
    uint64_t *slotbuf;      /* images: one slot's copy */
};

static int read_fully(int fd, unsigned char *dst, size_t n, size_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, dst + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *got = done;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* The object ended before what we need: a live segment is being recreated;
 * a file shrank under us. */
static int cut_short(felix_shm *shm, size_t at)
{
    if (shm->live)
        return fx_fail(FELIX_ERESTART, "%s shrank to %zu bytes while being read (restarting)", shm->info.path, at);
    return fx_fail(FELIX_ETRUNC, "%s shrank to %zu bytes while being read", shm->info.path, at);
}

/*
 * Make bytes [off, off + n) of the object present in the handle's buffer for
 * this snapshot. Missing blocks are read in runs as long as what was read so
 * far (at least the blocks needed), so a walk over a large list costs a few
 * preads and a short list in a large object one or two.
 */
static int need(felix_shm *shm, size_t off, size_t n)
{
    if (off + n > shm->readable)
        return cut_short(shm, shm->readable);
    size_t nblk = (shm->readable + BLOCK - 1) / BLOCK;
    size_t last = (off + n - 1) / BLOCK;
    for (size_t b = off / BLOCK; b <= last; b++) {
        if (shm->blk_gen[b] == shm->rgen)
            continue;
        size_t run = shm->blocks_read > last - b + 1 ? shm->blocks_read : last - b + 1;
        if (run > nblk - b)
            run = nblk - b;
        size_t start = b * BLOCK, len = run * BLOCK;
        if (len > shm->readable - start)
            len = shm->readable - start;
        size_t got;
        int e = read_fully(shm->fd, shm->buf + start, len, start, &got);
        if (e < 0)
            return fx_fail(fx_errno_code(-e), "cannot read %s: %s", shm->info.path, strerror(-e));
        /* Blocks wholly read (the last one may end at the object's end). */
        size_t full = start + got == shm->readable ? run : got / BLOCK;
        for (size_t k = 0; k < full; k++)
            shm->blk_gen[b + k] = shm->rgen;
        shm->blocks_read += full;
        if (got < len) { /* shrank since our fstat */
            shm->readable = start + got;
            if (off + n > shm->readable)
                return cut_short(shm, shm->readable);
        }
    }
    return 0;
}

/* Slot at off (checked to lie inside the object): its u64 words, word 0
 * holding Next and TID. NULL with *rc set when the object shrank. */
static const uint64_t *slot_at(struct source *src, uint32_t off, size_t ss, int *rc)
{
    if (!src->shm) {
        fx_copy16(src->slotbuf, src->p + off, ss);
        return src->slotbuf;
    }
    if ((*rc = need(src->shm, off, ss)) < 0)
        return NULL;
    return (const uint64_t *)(const void *)(src->p + off);
}

/*
 * Walk the list into snap (already begun). gens has at least nslots entries.
 * Returns 0, or an error: the object shrank under the walk, or memory ran out.
 */
static int walk(struct source *src, size_t readable, const felix_shm_info *h, felix_snapshot *snap,
                uint32_t *gens, uint32_t gen)
{
    felix_snapshot_info *si = felix_snapshot_info_mut(snap);
    const size_t ss = h->slot_size;
    const size_t nwords = ss / 8 - 1;
    uint32_t off = h->head;
    while (off != 0) {
        if (off < FELIX_HEADER_SIZE || (off - FELIX_HEADER_SIZE) % ss != 0 || (size_t)off + ss > readable) {
            si->anomaly_bad_offset++;
            break;
        }
        size_t idx = (off - FELIX_HEADER_SIZE) / ss;
        if (gens[idx] == gen) {
            si->anomaly_cycle++;
            break;
        }
        gens[idx] = gen;
        int rc = 0;
        const uint64_t *slot = slot_at(src, off, ss, &rc);
        if (!slot)
            return rc;
        uint32_t next = (uint32_t)slot[0];
        uint32_t tid = (uint32_t)(slot[0] >> 32);
        if (tid == 0) {
            si->skipped_free++;
        } else if (!src->shm && fx_load32(src->p + off + SLOT_TID) != tid) {
            /* Freed (and maybe reused) while we copied: counters are mixed. */
            si->skipped_racing++;
        } else if ((rc = felix_snapshot_append(snap, tid, off, slot + 1, nwords)) < 0) {
            return rc; /* out of memory: never a snapshot with a thread missing */
        }
        off = next;
    }
    return 0;
}

static void fill_snapshot_header(felix_snapshot *snap, const felix_shm_info *h)
{
    felix_snapshot_info *si = felix_snapshot_info_mut(snap);
    si->version = h->version;
    si->app_type = h->app_type;
    si->head = h->head;
    si->size = h->size;
    si->real_size = h->real_size;
    si->image = h->image ? h->image : 1;
}

int felix_shm_snapshot_image(const void *image, size_t len, felix_snapshot *snap)
{
    if (!image || !snap || ((uintptr_t)image & 15))
        return fx_fail(FELIX_EINVAL, "felix_shm_snapshot_image: NULL or misaligned image");
    felix_shm_info h;
    int rc = felix_shm_parse_header(image, len, &h);
    if (rc < 0)
        return rc;
    rc = felix_snapshot_begin(snap, fx_now_ns(CLOCK_MONOTONIC), fx_now_ns(CLOCK_REALTIME), h.slot_size);
    if (rc < 0)
        return rc;
    fill_snapshot_header(snap, &h);
    uint32_t *gens = fx_calloc(h.nslots ? h.nslots : 1, sizeof *gens);
    uint64_t *buf = fx_malloc(h.slot_size);
    if (!gens || !buf) {
        fx_free(gens);
        fx_free(buf);
        return fx_fail(FELIX_ENOMEM, "out of memory walking a %zu-byte image", len);
    }
    struct source src = {image, len, NULL, buf};
    rc = walk(&src, h.mapped_size, &h, snap, gens, 1);
    fx_free(gens);
    fx_free(buf);
    if (rc < 0) /* no thread list with a thread missing */
        felix_snapshot_begin(snap, felix_snapshot_get_info(snap)->mono_ns, felix_snapshot_get_info(snap)->wall_ns,
                             h.slot_size);
    return rc;
}

/* Make the buffers hold an object of `readable` bytes with slots of ss. */
static int reserve(felix_shm *shm, size_t readable, size_t nslots)
{
    size_t nblk = (readable + BLOCK - 1) / BLOCK;
    if (nblk * BLOCK > shm->buf_cap) {
        /* Never used past what pread fills, so untouched pages of a large
         * object's buffer stay virtual. */
        void *blk = fx_malloc(nblk * BLOCK + BLOCK - 1);
        if (!blk)
            return fx_fail(FELIX_ENOMEM, "out of memory for a %zu-byte copy of %s", readable, shm->info.path);
        fx_free(shm->buf_block);
        shm->buf_block = blk;
        shm->buf = (unsigned char *)(((uintptr_t)blk + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1));
        shm->buf_cap = nblk * BLOCK;
    }
    if (nblk > shm->nblk_cap) {
        uint32_t *g = fx_calloc(nblk, sizeof *g);
        if (!g)
            return fx_fail(FELIX_ENOMEM, "out of memory for %zu blocks", nblk);
        fx_free(shm->blk_gen);
        shm->blk_gen = g;
        shm->nblk_cap = nblk;
        shm->rgen = 0;
    }
    if (nslots > shm->gens_cap) {
        uint32_t *g = fx_calloc(nslots, sizeof *g);
        if (!g)
            return fx_fail(FELIX_ENOMEM, "out of memory for %zu slots", nslots);
        fx_free(shm->gens);
        shm->gens = g;
        shm->gens_cap = nslots;
        shm->gen = 0;
    }
    return 0;
}

/* A restart window: counted, and the next good header starts a new image. */
static int restarting(felix_shm *shm, const char *why, size_t size)
{
    shm->info.restarts++;
    if (shm->have_good)
        shm->restarted = 1;
    return fx_fail(FELIX_ERESTART, "%s is being (re)created: %s (%zu bytes)", shm->info.path, why, size);
}

/* fstat and copy the header (into buf, and reserve for the object's size). */
static int copy_header(felix_shm *shm, struct stat *st)
{
    if (fstat(shm->fd, st) < 0)
        return fx_fail(FELIX_EIO, "cannot stat %s: %s", shm->info.path, strerror(errno));
    size_t size = (size_t)st->st_size;
    if (size < FELIX_HEADER_SIZE) {
        if (shm->live)
            return restarting(shm, "shorter than its header", size);
        return fx_fail(FELIX_ETRUNC, "%s is %zu bytes, shorter than its 64-byte header", shm->info.path, size);
    }
    size_t readable = size > FELIX_SHM_MAP_LIMIT ? FELIX_SHM_MAP_LIMIT : size;
    /* The slot count is known only after the header; reserve for the most
     * slots an object of this size can have (48-byte slots). */
    int rc = reserve(shm, readable, (readable - FELIX_HEADER_SIZE) / 48 + 1);
    if (rc < 0)
        return rc;
    if (++shm->rgen == 0) { /* wrapped: forget old marks */
        memset(shm->blk_gen, 0, shm->nblk_cap * sizeof *shm->blk_gen);
        shm->rgen = 1;
    }
    shm->readable = readable;
    shm->blocks_read = 0;
    if ((rc = need(shm, 0, FELIX_HEADER_SIZE)) < 0)
        return rc == FELIX_ERESTART ? restarting(shm, "truncated while read", shm->readable) : rc;
    return 0;
}

/* fstat, copy and validate the header: the first half of every snapshot. */
static int read_header(felix_shm *shm)
{
    /* An object of one host page has its header copied between two fstats
     * that agree, so the mtime kept below is the object's as of the bytes
     * read: a writer creating the object meanwhile (its first write fault
     * moves the mtime) would pass for a truncation at the next snapshot. */
    struct stat st, after;
    int rc;
    long host_page = sysconf(_SC_PAGESIZE);
    for (int attempt = 0;; attempt++) {
        if ((rc = copy_header(shm, &st)) < 0)
            return rc;
        /* The mtime only counts for an object of one host page (below): a
         * larger one needs no second look. */
        if ((uint64_t)st.st_size > (uint64_t)(host_page > 0 ? host_page : 4096))
            break;
        if (fstat(shm->fd, &after) < 0)
            return fx_fail(FELIX_EIO, "cannot stat %s: %s", shm->info.path, strerror(errno));
        if (after.st_size == st.st_size && after.st_mtim.tv_sec == st.st_mtim.tv_sec &&
            after.st_mtim.tv_nsec == st.st_mtim.tv_nsec)
            break;
        if (attempt == 3) { /* still changing: a window like the others */
            shm->info.restarts++;
            return fx_fail(FELIX_ERESTART, "%s is being (re)created: it changed while its header was read",
                           shm->info.path);
        }
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *b = shm->buf;
    if (shm->live && all_zero(b, FELIX_HEADER_SIZE))
        return restarting(shm, "its header is not written yet", size);
    felix_shm_info h = shm->info;
    if ((rc = parse_header64(b, size, &h)) < 0) {
        char why[384];
        snprintf(why, sizeof why, "%s", felix_error_detail());
        return fx_fail(rc, "%s: %s", shm->info.path, why);
    }
    h.owner_uid = st.st_uid;
    if (h.mapped_size != shm->info.mapped_size && shm->info.mapped_size)
        h.remaps++;
    /* A new image: after a restart window, a smaller object (FEX never
     * shrinks one it runs in), another FEX, app type or layout, or a
     * truncation we did not see: the mtime moved (truncation, growth and the
     * first write to a page move it; later writes through FEX's mapping and
     * the unlink at FEX's exit do not; read_header's two fstats keep that
     * first write from landing between the mtime and the bytes) and the
     * object did not grow. */
    int mtime_moved = st.st_mtim.tv_sec != shm->good_mtime.tv_sec || st.st_mtim.tv_nsec != shm->good_mtime.tv_nsec;
    /* Only for an object of one host page: in a larger one, FEX's first
     * write to a page it had not touched (a thread slot after a growth)
     * moves a tmpfs object's mtime too. A new image starts at one page, so
     * an exec from a larger object shows as a smaller one. */
    mtime_moved &= h.real_size <= (uint64_t)(host_page > 0 ? host_page : 4096);
    /* A new image writes its header field by field: until its identity has
     * read the same for SETTLE_NS, a change is that header being completed. */
    int ident_changed = memcmp(shm->ident, b, sizeof shm->ident) != 0;
    int64_t now = fx_now_ns(CLOCK_MONOTONIC);
    int new_image = shm->have_good && (shm->restarted || h.real_size < shm->good_real ||
                                       (mtime_moved && h.real_size <= shm->good_real) ||
                                       (ident_changed && !shm->settling));
    if (new_image)
        h.image++;
    if (!shm->have_good || new_image || ident_changed)
        shm->ident_since = now;
    shm->settling = !shm->have_good || new_image || (shm->settling && now - shm->ident_since < SETTLE_NS);
    if (!h.image)
        h.image = 1;
    shm->restarted = 0;
    shm->have_good = 1;
    shm->good_real = h.real_size;
    shm->good_mtime = st.st_mtim;
    memcpy(shm->ident, b, sizeof shm->ident);
    shm->info = h;
    return 0;
}

int felix_shm_refresh(felix_shm *shm)
{
    if (!shm)
        return fx_fail(FELIX_EINVAL, "felix_shm_refresh: NULL handle");
    return read_header(shm);
}

int felix_shm_snapshot(felix_shm *shm, felix_snapshot *snap)
{
    if (!shm || !snap)
        return fx_fail(FELIX_EINVAL, "felix_shm_snapshot: NULL argument");
    int rc = read_header(shm);
    if (rc < 0) {
        /* No stale threads for a caller that ignores the code. */
        if (felix_snapshot_begin(snap, fx_now_ns(CLOCK_MONOTONIC), fx_now_ns(CLOCK_REALTIME),
                                 shm->info.slot_size) == 0)
            felix_snapshot_info_mut(snap)->image = shm->info.image ? shm->info.image : 1;
        return rc;
    }
    rc = felix_snapshot_begin(snap, fx_now_ns(CLOCK_MONOTONIC), fx_now_ns(CLOCK_REALTIME), shm->info.slot_size);
    if (rc < 0)
        return rc;
    fill_snapshot_header(snap, &shm->info);
    if (++shm->gen == 0) { /* wrapped: forget old marks */
        memset(shm->gens, 0, shm->gens_cap * sizeof *shm->gens);
        shm->gen = 1;
    }
    struct source src = {shm->buf, 0, shm, NULL};
    rc = walk(&src, shm->readable, &shm->info, snap, shm->gens, shm->gen);
    if (rc < 0) { /* truncated under the walk, or out of memory: no threads */
        if (rc == FELIX_ERESTART)
            restarting(shm, "truncated while read", shm->readable);
        const felix_snapshot_info *si = felix_snapshot_get_info(snap);
        felix_snapshot_begin(snap, si->mono_ns, si->wall_ns, shm->info.slot_size);
        felix_snapshot_info_mut(snap)->image = shm->info.image;
    }
    return rc;
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

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symbolic link"
                                                                          : "not a regular file";
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int open_common(felix_shm **out, const char *path, pid_t pid, unsigned flags)
{
    if (!out || !path)
        return fx_fail(FELIX_EINVAL, "felix_shm_open: NULL argument");
    if (strlen(path) >= sizeof ((felix_shm_info *)0)->path)
        return fx_fail(FELIX_EINVAL, "path too long: %.64s...", path);
    /* Never block (a FIFO), never follow a link planted at the path. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && pid > 0)
            return fx_fail(FELIX_ENOSTATS,
                           "process %d has no FEX statistics (%s is missing): not a FEX process, or FEX_PROFILESTATS=1 not set",
                           (int)pid, path);
        if (e == ELOOP)
            return fx_fail(FELIX_ENOSTATS, "%s is not a FEX statistics object (a symbolic link)", path);
        return fx_fail(fx_errno_code(e), "cannot open %s: %s", path, strerror(e));
    }
    struct stat st;
    memset(&st, 0, sizeof st);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fx_fail(FELIX_ENOSTATS, "%s is not a FEX statistics object (%s)", path, file_kind(st.st_mode));
    }
    int state = FELIX_PROC_STALE_DEAD;
    if (pid > 0) {
        state = fx_segment_state(pid, &st);
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
                           "%s is owned by uid %u but process %d runs as uid %u (refused: another user could write what it shows)",
                           path, (unsigned)st.st_uid, (int)pid, (unsigned)pst.st_uid);
        }
    }
    felix_shm *shm = fx_calloc(1, sizeof *shm);
    if (!shm) {
        close(fd);
        return fx_fail(FELIX_ENOMEM, "out of memory attaching %s", path);
    }
    shm->fd = fd;
    shm->live = pid > 0 && state == FELIX_PROC_LIVE;
    snprintf(shm->info.path, sizeof shm->info.path, "%s", path);
    shm->info.pid = pid > 0 ? pid : -1;
    int rc = read_header(shm);
    /* A brand-new object (or one mid-exec): wait, bounded, for its header. */
    for (int waited = 0; rc == FELIX_ERESTART && !(flags & FELIX_SHM_NO_WAIT) &&
                         waited < FELIX_SHM_READY_TIMEOUT_MS;
         waited++) {
        sleep_ms(1);
        rc = read_header(shm);
    }
    if (rc == FELIX_ERESTART) { /* then the usual error: read as a plain file */
        shm->live = 0;
        rc = read_header(shm);
        shm->live = 1;
    }
    if (rc < 0) {
        felix_shm_close(shm);
        return rc;
    }
    shm->info.remaps = 0;
    shm->info.restarts = 0;
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
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
    if (kill(pid, 0) < 0 && errno == ESRCH && !(flags & FELIX_SHM_ALLOW_STALE)) {
        struct stat st;
        if (lstat(path, &st) == 0)
            return fx_fail(FELIX_ESTALE, "%s is stale: process %d is gone", path, (int)pid);
        return fx_fail(FELIX_ESRCH, "no process with PID %d", (int)pid);
    }
    return open_common(out, path, pid, flags);
}

void felix_shm_close(felix_shm *shm)
{
    if (!shm)
        return;
    if (shm->fd >= 0)
        close(shm->fd);
    fx_free(shm->buf_block);
    fx_free(shm->blk_gen);
    fx_free(shm->gens);
    fx_free(shm);
}

const felix_shm_info *felix_shm_get_info(const felix_shm *shm)
{
    return shm ? &shm->info : NULL;
}
