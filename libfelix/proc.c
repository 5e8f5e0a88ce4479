/*
 * FEX processes through /dev/shm and /proc: listing, tree, names, CPU times,
 * liveness with PID-reuse detection (process start time), exit watching.
 */
#include "felix/felix.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Fields of /proc/<pid>/stat after "(comm)": field 3 is index 0. */
static int stat_fields(const char *path, unsigned long long *vals, const int *want, int nwant)
{
    char buf[1024];
    long n = fx_read_small(path, buf, sizeof buf);
    if (n <= 0)
        return FELIX_ESRCH;
    const char *p = strrchr(buf, ')');
    if (!p)
        return FELIX_ESRCH;
    p++;
    int field = 3, got = 0;
    while (*p && got < nwant) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        for (int i = 0; i < nwant; i++)
            if (want[i] == field) {
                vals[i] = strtoull(p, NULL, 10);
                got++;
            }
        while (*p && *p != ' ')
            p++;
        field++;
    }
    return got == nwant ? 0 : FELIX_ESRCH;
}

int felix_proc_start_time(pid_t pid, uint64_t *out)
{
    char path[48];
    unsigned long long v;
    static const int want[] = {22};
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!out || stat_fields(path, &v, want, 1) < 0)
        return fx_fail(FELIX_ESRCH, "no process with PID %d", (int)pid);
    *out = v;
    return 0;
}

int felix_proc_ppid(pid_t pid, pid_t *out)
{
    char path[48];
    unsigned long long v;
    static const int want[] = {4};
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!out || stat_fields(path, &v, want, 1) < 0)
        return fx_fail(FELIX_ESRCH, "no process with PID %d", (int)pid);
    *out = (pid_t)v;
    return 0;
}

static int read_comm(const char *path, char *buf, size_t len, pid_t pid)
{
    char tmp[64];
    if (!buf || len == 0)
        return fx_fail(FELIX_EINVAL, "no buffer for a name");
    if (fx_read_small(path, tmp, sizeof tmp) < 0)
        return fx_fail(FELIX_ESRCH, "no process or thread %d (%s)", (int)pid, path);
    tmp[strcspn(tmp, "\n")] = '\0';
    snprintf(buf, len, "%s", tmp);
    return 0;
}

int felix_proc_name(pid_t pid, char *buf, size_t len)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    return read_comm(path, buf, len, pid);
}

int felix_proc_thread_name(pid_t pid, pid_t tid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    return read_comm(path, buf, len, tid);
}

int felix_proc_cmdline(pid_t pid, char *buf, size_t len)
{
    char path[48];
    if (!buf || len == 0)
        return fx_fail(FELIX_EINVAL, "no buffer for a command line");
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    long n = fx_read_small(path, buf, len);
    if (n < 0)
        return fx_fail(FELIX_ESRCH, "no process with PID %d", (int)pid);
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (long i = 0; i < n; i++)
        if (buf[i] == '\0' || buf[i] == '\n')
            buf[i] = ' ';
    buf[n] = '\0';
    return 0;
}

int felix_proc_thread_cpu_ns(pid_t pid, pid_t tid, uint64_t *out)
{
    char path[64];
    unsigned long long v[2];
    static const int want[] = {14, 15};
    if (!out)
        return fx_fail(FELIX_EINVAL, "felix_proc_thread_cpu_ns: out is NULL");
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    if (stat_fields(path, v, want, 2) < 0)
        return fx_fail(FELIX_ESRCH, "no thread %d in process %d", (int)tid, (int)pid);
    long hz = sysconf(_SC_CLK_TCK);
    *out = (v[0] + v[1]) * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
    return 0;
}

int felix_proc_alive(pid_t pid, uint64_t start_ticks)
{
    if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
        return 0;
    uint64_t now;
    if (felix_proc_start_time(pid, &now) < 0)
        return 0; /* a zombie reaped between the two checks */
    return start_ticks == 0 || now == start_ticks;
}

/* Boot time (Unix seconds) from /proc/stat, cached. */
static long long boot_time(void)
{
    static long long cached;
    long long v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v)
        return v;
    char buf[8192];
    if (fx_read_small("/proc/stat", buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, "\nbtime ");
    if (!p)
        return 0;
    v = strtoll(p + 7, NULL, 10);
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* Is the process of a segment live, gone, or a newer one under its PID?
 * A FEX process creates its segment after it starts and only grows it, so a
 * process that started after the segment was last changed is not its owner. */
int fx_segment_state(int pid, const struct stat *st)
{
    if (!felix_proc_alive(pid, 0))
        return FELIX_PROC_STALE_DEAD;
    uint64_t start;
    long long bt = boot_time();
    long hz = sysconf(_SC_CLK_TCK);
    if (bt <= 0 || hz <= 0 || felix_proc_start_time(pid, &start) < 0)
        return FELIX_PROC_LIVE;
    long long started = bt + (long long)(start / (uint64_t)hz);
    if (started > (long long)st->st_mtime + 2)
        return FELIX_PROC_STALE_REUSED;
    return FELIX_PROC_LIVE;
}

/* --- listing ------------------------------------------------------------ */

struct felix_proc_list {
    felix_proc_entry *raw;    /* as found */
    size_t n, cap;
    felix_proc_entry *sorted; /* tree order */
    size_t sorted_cap;
    int *parent;              /* index into raw, or -1 */
    size_t parent_cap;
    size_t out;
};

int felix_proc_list_new(felix_proc_list **out)
{
    if (!out)
        return fx_fail(FELIX_EINVAL, "felix_proc_list_new: out is NULL");
    *out = fx_calloc(1, sizeof **out);
    return *out ? 0 : fx_fail(FELIX_ENOMEM, "out of memory creating a process list");
}

void felix_proc_list_free(felix_proc_list *l)
{
    if (!l)
        return;
    fx_free(l->raw);
    fx_free(l->sorted);
    fx_free(l->parent);
    fx_free(l);
}

size_t felix_proc_list_count(const felix_proc_list *l) { return l ? l->n : 0; }

const felix_proc_entry *felix_proc_list_get(const felix_proc_list *l, size_t i)
{
    return (l && i < l->n) ? &l->sorted[i] : NULL;
}

static long find_live(const felix_proc_list *l, pid_t pid)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->raw[i].pid == pid && l->raw[i].state == FELIX_PROC_LIVE)
            return (long)i;
    return -1;
}

/* Append raw[i] and its descendants to sorted[], depth first. raw[] is in
 * PID order, so siblings come out by PID. raw[].depth marks emitted (-1). */
static void emit(felix_proc_list *l, size_t i, int depth)
{
    l->sorted[l->out] = l->raw[i];
    l->sorted[l->out++].depth = depth;
    for (size_t j = 0; j < l->n && depth < 64; j++)
        if (l->parent[j] == (int)i && l->raw[j].depth == 0) {
            l->raw[j].depth = -1;
            emit(l, j, depth + 1);
        }
}

static int by_pid(const void *a, const void *b)
{
    const felix_proc_entry *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

int felix_proc_list_scan(felix_proc_list *l, const char *dir)
{
    if (!l)
        return fx_fail(FELIX_EINVAL, "felix_proc_list_scan: NULL list");
    if (!dir)
        dir = "/dev/shm";
    DIR *d = opendir(dir);
    if (!d)
        return fx_fail(fx_errno_code(errno), "cannot list %s: %s", dir, strerror(errno));
    l->n = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        int pid = 0, len = 0;
        if (sscanf(de->d_name, "fex-%d-stats%n", &pid, &len) != 1 || de->d_name[len] || pid <= 0)
            continue;
        if ((rc = fx_grow((void **)&l->raw, &l->cap, l->n + 1, sizeof *l->raw)) < 0)
            break;
        felix_proc_entry *e = &l->raw[l->n];
        memset(e, 0, sizeof *e);
        e->pid = pid;
        if (snprintf(e->path, sizeof e->path, "%s/%s", dir, de->d_name) >= (int)sizeof e->path)
            continue; /* a directory path too long to report */
        struct stat st;
        if (stat(e->path, &st) < 0)
            continue; /* removed while we looked */
        e->uid = st.st_uid;
        e->state = fx_segment_state(pid, &st);
        if (e->state == FELIX_PROC_LIVE) {
            struct stat pst;
            char proc[32];
            snprintf(proc, sizeof proc, "/proc/%d", pid);
            if (stat(proc, &pst) == 0)
                e->uid = pst.st_uid;
            felix_proc_ppid(pid, &e->ppid);
            felix_proc_start_time(pid, &e->start_ticks);
            felix_proc_name(pid, e->name, sizeof e->name);
            felix_proc_cmdline(pid, e->cmdline, sizeof e->cmdline);
        }
        l->n++;
    }
    closedir(d);
    if (rc < 0)
        return rc;
    if (l->n)
        qsort(l->raw, l->n, sizeof *l->raw, by_pid);
    if ((rc = fx_grow((void **)&l->sorted, &l->sorted_cap, l->n, sizeof *l->sorted)) < 0 ||
        (rc = fx_grow((void **)&l->parent, &l->parent_cap, l->n, sizeof *l->parent)) < 0)
        return rc;
    /* Nearest live FEX ancestor of each live entry. */
    for (size_t i = 0; i < l->n; i++) {
        l->parent[i] = -1;
        l->raw[i].depth = 0;
        if (l->raw[i].state != FELIX_PROC_LIVE)
            continue;
        pid_t p = l->raw[i].ppid;
        for (int steps = 0; p > 1 && steps < 64; steps++) {
            long j = find_live(l, p);
            if (j >= 0 && (size_t)j != i) {
                l->parent[i] = (int)j;
                break;
            }
            if (felix_proc_ppid(p, &p) < 0)
                break;
        }
    }
    l->out = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->raw[i].state == FELIX_PROC_LIVE && l->parent[i] < 0 && l->raw[i].depth == 0) {
            l->raw[i].depth = -1;
            emit(l, i, 0);
        }
    for (size_t i = 0; i < l->n; i++) /* parent chains that loop: list them flat */
        if (l->raw[i].state == FELIX_PROC_LIVE && l->raw[i].depth == 0) {
            l->raw[i].depth = -1;
            emit(l, i, 0);
        }
    for (size_t i = 0; i < l->n; i++)
        if (l->raw[i].state != FELIX_PROC_LIVE) {
            l->sorted[l->out] = l->raw[i];
            l->sorted[l->out++].depth = 0;
        }
    return 0;
}

/* --- exit watching -------------------------------------------------------- */

struct felix_proc_watch {
    pid_t pid;
    int pidfd;
    unsigned flags;
    uint64_t start;
    int exited, status;
};

int felix_proc_watch_open(felix_proc_watch **out, pid_t pid, unsigned flags)
{
    if (!out || pid <= 0)
        return fx_fail(FELIX_EINVAL, "invalid PID %d", (int)pid);
    felix_proc_watch *w = fx_calloc(1, sizeof *w);
    if (!w)
        return fx_fail(FELIX_ENOMEM, "out of memory watching process %d", (int)pid);
    w->pid = pid;
    w->flags = flags;
    w->status = -1;
    if (felix_proc_start_time(pid, &w->start) < 0) {
        fx_free(w);
        return fx_fail(FELIX_ESRCH, "no process with PID %d", (int)pid);
    }
    long fd = syscall(SYS_pidfd_open, pid, 0);
    w->pidfd = fd >= 0 ? (int)fd : -1;
    if (w->pidfd >= 0)
        fcntl(w->pidfd, F_SETFD, FD_CLOEXEC);
    *out = w;
    return 0;
}

void felix_proc_watch_close(felix_proc_watch *w)
{
    if (!w)
        return;
    if (w->pidfd >= 0)
        close(w->pidfd);
    fx_free(w);
}

int felix_proc_watch_fd(const felix_proc_watch *w) { return w ? w->pidfd : -1; }

int felix_proc_watch_check(felix_proc_watch *w, int *out_exited, int *out_status)
{
    if (!w || !out_exited)
        return fx_fail(FELIX_EINVAL, "felix_proc_watch_check: NULL argument");
    if (!w->exited) {
        if (w->flags & FELIX_PROC_WATCH_CHILD) {
            int st;
            pid_t r = waitpid(w->pid, &st, WNOHANG);
            if (r == w->pid) {
                w->exited = 1;
                w->status = st;
            } else if (r < 0 && errno == ECHILD) {
                w->exited = !felix_proc_alive(w->pid, w->start);
            }
        } else if (w->pidfd >= 0) {
            struct pollfd p = {w->pidfd, POLLIN, 0};
            w->exited = poll(&p, 1, 0) > 0;
        } else {
            w->exited = !felix_proc_alive(w->pid, w->start);
        }
    }
    *out_exited = w->exited;
    if (out_status)
        *out_status = w->exited ? w->status : -1;
    return 0;
}

/* ---- new processes ---- */

struct seen {
    pid_t pid;
    uint64_t start_ticks;
};

struct felix_proc_starts {
    char dir[256];
    felix_proc_list *l;
    struct seen *seen; /* processes present or reported: never reported (again) */
    size_t nseen, seen_cap;
    felix_proc_entry last;
};

static int was_seen(const felix_proc_starts *w, const felix_proc_entry *e)
{
    for (size_t k = 0; k < w->nseen; k++)
        if (w->seen[k].pid == e->pid && w->seen[k].start_ticks == e->start_ticks)
            return 1;
    return 0;
}

static int remember(felix_proc_starts *w, const felix_proc_entry *e)
{
    int rc = fx_grow((void **)&w->seen, &w->seen_cap, w->nseen + 1, sizeof *w->seen);
    if (rc < 0)
        return rc;
    w->seen[w->nseen].pid = e->pid;
    w->seen[w->nseen].start_ticks = e->start_ticks;
    w->nseen++;
    return 0;
}

int felix_proc_starts_open(felix_proc_starts **out, const char *dir)
{
    if (!out)
        return fx_fail(FELIX_EINVAL, "felix_proc_starts_open: out is NULL");
    felix_proc_starts *w = fx_calloc(1, sizeof *w);
    if (!w)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a process watch");
    snprintf(w->dir, sizeof w->dir, "%s", dir ? dir : "/dev/shm");
    int rc = felix_proc_list_new(&w->l);
    if (rc == 0)
        rc = felix_proc_list_scan(w->l, w->dir);
    for (size_t i = 0; rc == 0 && i < felix_proc_list_count(w->l); i++)
        rc = remember(w, felix_proc_list_get(w->l, i));
    if (rc < 0) {
        felix_proc_starts_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void felix_proc_starts_close(felix_proc_starts *w)
{
    if (!w)
        return;
    felix_proc_list_free(w->l);
    fx_free(w->seen);
    fx_free(w);
}

int felix_proc_starts_next(felix_proc_starts *w, const felix_proc_entry **out)
{
    if (!w || !out)
        return fx_fail(FELIX_EINVAL, "felix_proc_starts_next: NULL argument");
    *out = NULL;
    int rc = felix_proc_list_scan(w->l, w->dir);
    if (rc < 0)
        return rc;
    size_t n = felix_proc_list_count(w->l);
    /* Forget processes that are gone: one never comes back with the same
     * PID and start time, and the list stays as short as the live one. */
    size_t keep = 0;
    for (size_t k = 0; k < w->nseen; k++) {
        int present = 0;
        for (size_t i = 0; i < n && !present; i++) {
            const felix_proc_entry *e = felix_proc_list_get(w->l, i);
            present = e->pid == w->seen[k].pid && e->start_ticks == w->seen[k].start_ticks;
        }
        if (present)
            w->seen[keep++] = w->seen[k];
    }
    w->nseen = keep;
    for (size_t i = 0; i < n; i++) {
        const felix_proc_entry *e = felix_proc_list_get(w->l, i);
        if (e->state != FELIX_PROC_LIVE || was_seen(w, e))
            continue;
        if ((rc = remember(w, e)) < 0)
            return rc;
        w->last = *e;
        *out = &w->last;
        return 0;
    }
    return 0;
}
