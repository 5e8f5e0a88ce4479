/* MangoHud frame-time logs (see mangohud.h). */
#include "mangohud.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void mh_init(mh_log *log)
{
    memset(log, 0, sizeof *log);
    log->col_frametime = log->col_elapsed = -1;
}

void mh_free(mh_log *log)
{
    free(log->f);
    log->f = NULL;
    log->n = log->cap = 0;
}

/* Field k of a CSV line (no quoting in MangoHud's logs): start and length. */
static int field(const char *s, size_t n, int k, const char **out, size_t *outn)
{
    size_t i = 0;
    for (int c = 0; c < k; c++) {
        const char *comma = memchr(s + i, ',', n - i);
        if (!comma)
            return -1;
        i = (size_t)(comma - s) + 1;
    }
    const char *comma = memchr(s + i, ',', n - i);
    *out = s + i;
    *outn = comma ? (size_t)(comma - (s + i)) : n - i;
    return 0;
}

static int is_name(const char *s, size_t n, const char *name)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == strlen(name) && memcmp(s, name, n) == 0;
}

static void header(mh_log *log, const char *s, size_t n)
{
    int ncols = 1;
    for (size_t i = 0; i < n; i++)
        ncols += s[i] == ',';
    int ft = -1, el = -1;
    for (int k = 0; k < ncols && k < 4096; k++) {
        const char *f;
        size_t fn;
        if (field(s, n, k, &f, &fn) < 0)
            break;
        if (is_name(f, fn, "frametime"))
            ft = k;
        else if (is_name(f, fn, "elapsed"))
            el = k;
    }
    if (ft >= 0 && el >= 0) {
        log->have_header = 1;
        log->col_frametime = ft;
        log->col_elapsed = el;
        log->ncols = ncols;
    }
}

static int number(const char *s, size_t n, double *out)
{
    char tmp[64];
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static void row(mh_log *log, const char *s, size_t n)
{
    const char *f;
    size_t fn;
    double ft, el;
    if (field(s, n, log->col_frametime, &f, &fn) < 0 || number(f, fn, &ft) < 0 ||
        field(s, n, log->col_elapsed, &f, &fn) < 0 || number(f, fn, &el) < 0 || !(ft >= 0 && ft < 1e7) ||
        !(el >= 0 && el < 9e18)) {
        log->skipped++;
        return;
    }
    int64_t e = (int64_t)el;
    if (log->n && e < log->f[log->n - 1].elapsed_ns) { /* time going back: not this log's */
        log->skipped++;
        return;
    }
    if (log->n >= MH_MAX_FRAMES) {
        log->too_many = 1;
        return;
    }
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 4096;
        mh_frame *p = realloc(log->f, cap * sizeof *p);
        if (!p) {
            log->oom = 1;
            return;
        }
        log->f = p;
        log->cap = cap;
    }
    log->f[log->n].elapsed_ns = e;
    log->f[log->n].frametime_ms = ft;
    log->n++;
}

void mh_line(mh_log *log, const char *s, size_t n)
{
    log->lines++;
    if (n && s[n - 1] == '\r')
        n--;
    if (log->oom || log->too_many)
        return;
    if (!log->have_header) {
        if (log->lines == 2 && n < sizeof log->version && memchr(s, ',', n) == NULL) {
            memcpy(log->version, s, n);
            log->version[n] = '\0';
        }
        header(log, s, n);
        return;
    }
    if (n == 0)
        return;
    row(log, s, n);
}

void mh_parse(mh_log *log, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
        if (n <= MH_MAX_LINE)
            mh_line(log, buf + i, n);
        else
            log->skipped += log->have_header;
        i += n + 1;
    }
}

int mh_read(const char *path, mh_log *log, char *err, size_t errlen)
{
    /* A regular file only: a FIFO would block, /dev/zero never end. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot open the MangoHud log %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the MangoHud log %s is not a regular file", path);
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open the MangoHud log %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char *line = malloc(MH_MAX_LINE + 2);
    if (!line) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int c;
    size_t n = 0, too_long = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            if (too_long)
                log->skipped += log->have_header;
            else
                mh_line(log, line, n);
            n = too_long = 0;
        } else if (n < MH_MAX_LINE) {
            line[n++] = (char)c;
        } else {
            too_long = 1;
        }
    }
    if (n && !too_long) /* a last line without its newline: kept if it parses */
        mh_line(log, line, n);
    int rd = ferror(f);
    fclose(f);
    free(line);
    if (rd)
        snprintf(err, errlen, "cannot read the MangoHud log %s", path);
    else if (log->oom)
        snprintf(err, errlen, "out of memory reading the MangoHud log %s", path);
    else if (log->too_many)
        snprintf(err, errlen, "the MangoHud log %s has more than %u frames", path, MH_MAX_FRAMES);
    else if (!log->have_header)
        snprintf(err, errlen, "%s is not a MangoHud log: no header line with frametime and elapsed columns", path);
    else if (!log->n)
        snprintf(err, errlen, "the MangoHud log %s has no frames%s", path, log->skipped ? " that parse" : "");
    else
        return 0;
    return -1;
}

int mh_name_time(const char *path, int64_t *out_unix_s)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    /* The last _YYYY-MM-DD_HH-MM-SS, right before ".csv" or the end. */
    for (size_t i = n; i-- > 0;) {
        if (base[i] != '_' || n - i < 20)
            continue;
        const char *d = base + i + 1;
        int ok = 1;
        static const char pat[] = "dddd-dd-dd_dd-dd-dd";
        for (int k = 0; k < 19; k++)
            ok &= pat[k] == 'd' ? (d[k] >= '0' && d[k] <= '9') : d[k] == pat[k];
        const char *rest = d + 19;
        if (!ok || !(*rest == '\0' || strcmp(rest, ".csv") == 0))
            continue;
        struct tm tm = {0};
        tm.tm_year = atoi(d) - 1900;
        tm.tm_mon = atoi(d + 5) - 1;
        tm.tm_mday = atoi(d + 8);
        tm.tm_hour = atoi(d + 11);
        tm.tm_min = atoi(d + 14);
        tm.tm_sec = atoi(d + 17);
        tm.tm_isdst = -1;
        if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60)
            return -1;
        time_t t = mktime(&tm);
        if (t == (time_t)-1)
            return -1;
        *out_unix_s = (int64_t)t;
        return 0;
    }
    return -1;
}
