/*
 * FEX memory regions from /proc/<pid>/smaps.
 *
 * The parser is a line machine over one reusable buffer: a mapping's header
 * line ("start-end perms offset dev inode [name]") selects the region the
 * following field lines belong to (or none, for mappings that are not FEX's);
 * its "Rss:" line adds to that region. Any other line is skipped, so new
 * kernel fields, odd units and garbage never stop it.
 *
 * Invariants: regions[0..count) have distinct names; regions[count..cap)
 * keep names from earlier reads so clearing and re-reading allocates nothing.
 */
#include "felix/felix.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)

struct felix_mem {
    felix_region *regions;
    size_t count, cap;
    uint64_t total;
    uint64_t largest_alloc;
    uint64_t process_rss;     /* every mapping's Rss, FEX's or not */
    uint32_t process_maps;    /* every mapping */
    /* parser state */
    long cur;           /* region of the current mapping, or -1 */
    uint64_t cur_size;
    int cur_alloc;      /* current mapping is FEXAllocator/JEMalloc */
    int skipping;       /* inside an over-long line */
    char *buf;
    size_t fill;
};

int felix_mem_new(felix_mem **out)
{
    if (!out)
        return fx_fail(FELIX_EINVAL, "felix_mem_new: out is NULL");
    felix_mem *m = fx_calloc(1, sizeof *m);
    if (!m)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a region table");
    m->cur = -1;
    *out = m;
    return 0;
}

void felix_mem_free(felix_mem *m)
{
    if (!m)
        return;
    fx_free(m->regions);
    fx_free(m->buf);
    fx_free(m);
}

void felix_mem_clear(felix_mem *m)
{
    if (!m)
        return;
    m->count = 0;
    m->total = 0;
    m->largest_alloc = 0;
    m->process_rss = 0;
    m->process_maps = 0;
    m->cur = -1;
    m->skipping = 0;
    m->fill = 0;
}

size_t felix_mem_count(const felix_mem *m) { return m ? m->count : 0; }

const felix_region *felix_mem_region(const felix_mem *m, size_t i)
{
    return (m && i < m->count) ? &m->regions[i] : NULL;
}

uint64_t felix_mem_total(const felix_mem *m) { return m ? m->total : 0; }

uint64_t felix_mem_largest_allocator(const felix_mem *m) { return m ? m->largest_alloc : 0; }

uint64_t felix_mem_process_rss(const felix_mem *m) { return m ? m->process_rss : 0; }

uint32_t felix_mem_process_mappings(const felix_mem *m) { return m ? m->process_maps : 0; }

int felix_mem_set_process(felix_mem *m, uint64_t rss, uint32_t mappings)
{
    if (!m)
        return fx_fail(FELIX_EINVAL, "felix_mem_set_process: NULL table");
    m->process_rss = rss;
    m->process_maps = mappings;
    return 0;
}

static long find_n(const felix_mem *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->count; i++)
        if (strncmp(m->regions[i].name, name, len) == 0 && m->regions[i].name[len] == '\0')
            return (long)i;
    return -1;
}

const felix_region *felix_mem_find(const felix_mem *m, const char *name)
{
    if (!m || !name)
        return NULL;
    long i = find_n(m, name, strlen(name));
    return i < 0 ? NULL : &m->regions[i];
}

/* The region for a name, added (zeroed) when new; -1 on allocation failure. */
static long region_for(felix_mem *m, const char *name, size_t len)
{
    if (len >= sizeof m->regions[0].name)
        len = sizeof m->regions[0].name - 1;
    long i = find_n(m, name, len);
    if (i >= 0)
        return i;
    if (m->count >= FELIX_MEM_MAX_REGIONS - 1) {
        /* The last place is the catch-all for names beyond the limit. */
        name = "FEXMem_other";
        len = strlen(name);
        if ((i = find_n(m, name, len)) >= 0)
            return i;
    }
    if (m->count == m->cap &&
        fx_grow((void **)&m->regions, &m->cap, m->count + 1, sizeof *m->regions) < 0)
        return -1;
    felix_region *r = &m->regions[m->count];
    memset(r, 0, sizeof *r);
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    return (long)m->count++;
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static uint64_t parse_hex(const char **p, const char *end)
{
    uint64_t v = 0;
    while (*p < end && is_hex(**p)) {
        char c = **p;
        v = v * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        (*p)++;
    }
    return v;
}

/* A mapping's header line: find its FEX name, if any. */
static void header_line(felix_mem *m, const char *p, const char *end)
{
    m->cur = -1;
    m->cur_alloc = 0;
    uint64_t start = parse_hex(&p, end);
    if (p >= end || *p != '-')
        return;
    p++;
    if (m->process_maps < UINT32_MAX)
        m->process_maps++;
    uint64_t stop = parse_hex(&p, end);
    m->cur_size = stop > start ? stop - start : 0;
    /* Skip perms, offset, dev, inode. */
    for (int field = 0; field < 4; field++) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            return;
        while (p < end && *p != ' ')
            p++;
    }
    while (p < end && *p == ' ')
        p++;
    const char *name;
    size_t len;
    if (end - p > 7 && memcmp(p, "[anon:", 6) == 0 && end[-1] == ']') {
        name = p + 6;
        len = (size_t)(end - 1 - name);
    } else if (end - p > 7 && memcmp(p, "/memfd:", 7) == 0) {
        name = p + 7;
        const char *del = end - 10;
        len = (end - name > 10 && memcmp(del, " (deleted)", 10) == 0) ? (size_t)(del - name)
                                                                      : (size_t)(end - name);
    } else {
        return;
    }
    int alloc = (len == 12 && memcmp(name, "FEXAllocator", 12) == 0) ||
                (len == 8 && memcmp(name, "JEMalloc", 8) == 0);
    if (!alloc && !(len >= 6 && memcmp(name, "FEXMem", 6) == 0))
        return;
    long r = region_for(m, name, len);
    if (r < 0)
        return;
    m->cur = r;
    m->cur_alloc = alloc;
    m->regions[r].mappings++;
    m->regions[r].size += m->cur_size;
}

/* A field line of the current mapping: only "Rss: N kB" matters (for
 * the process's total, and for the mapping's FEX region if it has one). */
static void field_line(felix_mem *m, const char *p, const char *end)
{
    if (end - p < 5 || memcmp(p, "Rss:", 4) != 0)
        return;
    p += 4;
    while (p < end && *p == ' ')
        p++;
    uint64_t v = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && v < UINT64_MAX / 16)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == digits)
        return;
    while (p < end && *p == ' ')
        p++;
    uint64_t unit;
    if (end - p == 2 && memcmp(p, "kB", 2) == 0)
        unit = 1024;
    else if (end - p == 2 && memcmp(p, "MB", 2) == 0)
        unit = 1024 * 1024;
    else if (end - p == 1 && *p == 'B')
        unit = 1;
    else
        return; /* a unit we do not know */
    uint64_t bytes = v > UINT64_MAX / unit ? UINT64_MAX : v * unit;
    m->process_rss = bytes > UINT64_MAX - m->process_rss ? UINT64_MAX : m->process_rss + bytes;
    if (m->cur < 0)
        return;
    felix_region *r = &m->regions[m->cur];
    r->rss += bytes;
    m->total += bytes;
    if (bytes > r->largest_rss)
        r->largest_rss = bytes;
    if (m->cur_alloc && bytes > m->largest_alloc)
        m->largest_alloc = bytes;
}

static void line(felix_mem *m, const char *p, const char *end)
{
    if (end > p && end[-1] == '\r')
        end--;
    if (p < end && is_hex(*p))
        header_line(m, p, end);
    else
        field_line(m, p, end);
}

/* Feed text; complete lines are parsed, a partial last line is left at
 * the start of consumed..len and its length returned. */
static size_t feed(felix_mem *m, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if (!m->skipping)
            line(m, p, nl);
        m->skipping = 0;
        p = nl + 1;
    }
    return (size_t)(end - p);
}

int felix_mem_parse(felix_mem *m, const char *text, size_t len)
{
    if (!m || (!text && len))
        return fx_fail(FELIX_EINVAL, "felix_mem_parse: NULL argument");
    felix_mem_clear(m);
    size_t rest = feed(m, text, len);
    if (rest)
        line(m, text + len - rest, text + len);
    m->cur = -1;
    return 0;
}

int felix_mem_read_fd(felix_mem *m, int fd)
{
    if (!m || fd < 0)
        return fx_fail(FELIX_EINVAL, "felix_mem_read_fd: NULL table or bad descriptor");
    if (!m->buf && !(m->buf = fx_malloc(READ_BUF)))
        return fx_fail(FELIX_ENOMEM, "out of memory for a read buffer");
    felix_mem_clear(m);
    for (;;) {
        ssize_t r = read(fd, m->buf + m->fill, READ_BUF - m->fill);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            return fx_fail(e == ESRCH ? FELIX_ESRCH : fx_errno_code(e), "cannot read smaps: %s",
                           strerror(e));
        }
        if (r == 0)
            break;
        size_t total = m->fill + (size_t)r;
        size_t rest = feed(m, m->buf, total);
        if (rest == READ_BUF) { /* a line longer than the buffer: skip it */
            m->skipping = 1;
            rest = 0;
        }
        memmove(m->buf, m->buf + total - rest, rest);
        m->fill = rest;
    }
    if (m->fill && !m->skipping)
        line(m, m->buf, m->buf + m->fill);
    m->fill = 0;
    m->cur = -1;
    return 0;
}

int felix_mem_read_pid(felix_mem *m, pid_t pid)
{
    if (!m || pid <= 0)
        return fx_fail(FELIX_EINVAL, "invalid PID %d", (int)pid);
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fx_fail(e == ENOENT ? FELIX_ESRCH : fx_errno_code(e), "cannot open %s: %s", path,
                       strerror(e));
    }
    int rc = felix_mem_read_fd(m, fd);
    close(fd);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", felix_error_detail());
        return fx_fail(rc, "%s: %s", path, why);
    }
    return 0;
}

int felix_mem_set(felix_mem *m, const char *name, uint64_t rss, uint64_t size, uint32_t mappings,
                  uint64_t largest_rss)
{
    if (!m || !name || !*name)
        return fx_fail(FELIX_EINVAL, "felix_mem_set: empty region name");
    long i = region_for(m, name, strlen(name));
    if (i < 0)
        return FELIX_ENOMEM;
    felix_region *r = &m->regions[i];
    m->total = m->total - r->rss + rss;
    r->rss = rss;
    r->size = size;
    r->mappings = mappings;
    r->largest_rss = largest_rss;
    if ((strcmp(r->name, "FEXAllocator") == 0 || strcmp(r->name, "JEMalloc") == 0) &&
        largest_rss > m->largest_alloc)
        m->largest_alloc = largest_rss;
    return 0;
}

int felix_mem_copy(felix_mem *dst, const felix_mem *src)
{
    if (!dst || !src)
        return fx_fail(FELIX_EINVAL, "felix_mem_copy: NULL table");
    if (dst == src)
        return 0;
    if (src->count > dst->cap &&
        fx_grow((void **)&dst->regions, &dst->cap, src->count, sizeof *dst->regions) < 0)
        return FELIX_ENOMEM;
    if (src->count)
        memcpy(dst->regions, src->regions, src->count * sizeof *src->regions);
    dst->count = src->count;
    dst->total = src->total;
    dst->largest_alloc = src->largest_alloc;
    dst->process_rss = src->process_rss;
    dst->process_maps = src->process_maps;
    return 0;
}
