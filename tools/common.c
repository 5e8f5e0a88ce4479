#include "common.h"
#include "text.h"

#include <errno.h>
#include <felix/felix.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tool_parse_duration(const char *s, int64_t default_unit_ns, int64_t *out_ns)
{
    if (!s || !*s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || v > 1e12)
        return -1;
    double unit;
    if (*end == '\0')
        unit = (double)default_unit_ns;
    else if (strcmp(end, "ns") == 0)
        unit = 1;
    else if (strcmp(end, "us") == 0)
        unit = 1e3;
    else if (strcmp(end, "ms") == 0)
        unit = 1e6;
    else if (strcmp(end, "s") == 0)
        unit = 1e9;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        unit = 60e9;
    else if (strcmp(end, "h") == 0)
        unit = 3600e9;
    else
        return -1;
    double ns = v * unit;
    if (ns > 9.2e18)
        return -1;
    *out_ns = (int64_t)llround(ns);
    return 0;
}

int tool_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

const char *tool_option_name(int c, const struct option *lo)
{
    static char buf[96];
    const char *longname = NULL;
    for (const struct option *o = lo; o && o->name; o++)
        if (o->val == c && !o->flag)
            longname = o->name;
    if (c > 32 && c < 127 && longname)
        snprintf(buf, sizeof buf, "-%c/--%s", c, longname);
    else if (longname)
        snprintf(buf, sizeof buf, "--%s", longname);
    else if (c > 32 && c < 127)
        snprintf(buf, sizeof buf, "-%c", c);
    else
        snprintf(buf, sizeof buf, "an option");
    return buf;
}

int tool_bad_value(const char *prog, int c, const struct option *lo, const char *value, const char *hint)
{
    tool_error(prog, "invalid value '%s' for %s%s%s%s", value ? value : "", tool_option_name(c, lo),
               hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
    return EXIT_USAGE;
}

int tool_stdout_done(const char *prog)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        tool_error(prog, "cannot write to standard output: %s", strerror(errno ? errno : EIO));
        return EXIT_FAILURE_GENERIC;
    }
    return EXIT_OK;
}

int tool_exit_status(int code)
{
    switch (code) {
    case FELIX_OK: return EXIT_OK;
    case FELIX_EINVAL: return EXIT_USAGE;
    case FELIX_ESRCH: return EXIT_NO_PROCESS;
    case FELIX_ENOSTATS:
    case FELIX_ERESTART:
    case FELIX_ESTALE: return EXIT_NO_STATS;
    case FELIX_EVERSION: return EXIT_VERSION;
    case FELIX_EACCES:
    case FELIX_EOWNER: return EXIT_PERMISSION;
    case FELIX_EIO:
    case FELIX_ENOSPC:
    case FELIX_EPIPE:
    case FELIX_ETRUNC:
    case FELIX_ECORRUPT: return EXIT_IO;
    default: return EXIT_FAILURE_GENERIC;
    }
}

int tool_bad_option(const char *prog, int c, char **argv)
{
    extern int optind, optopt;
    const char *arg = argv[optind - 1];
    if (c == ':')
        tool_error(prog, "option '%s' needs a value (see %s --help)", arg, prog);
    else if (optopt && arg[0] == '-' && arg[1] != '-')
        tool_error(prog, "unknown option '-%c' (see %s --help)", optopt, prog);
    else
        tool_error(prog, "unknown option '%s' (see %s --help)", arg, prog);
    return EXIT_USAGE;
}

void tool_error(const char *prog, const char *fmt, ...)
{
    char msg[1024], shown[TEXT_MAX(1024) + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages name things from outside (paths, process and thread names):
     * no control byte reaches a terminal, and it stays one line. */
    fprintf(stderr, "%s: %s\n", prog, text_term_str(shown, sizeof shown, msg, 0));
}

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Whether path names a FEX statistics object: /dev/shm/fex-<n>-stats after
 * resolving links in its directory (the file itself need not exist). */
static int is_fex_stats_path(const char *path)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? (slash == path ? "/" : path) : ".");
    int n = 0, pid = 0;
    if (sscanf(base, "fex-%d-stats%n", &pid, &n) == 1 && base[n] == '\0' && realpath(dir, real) &&
        strcmp(real, "/dev/shm") == 0)
        return 1;
    /* Or a link (of any name) that resolves to one. */
    if (realpath(path, real) && strncmp(real, "/dev/shm/", 9) == 0 &&
        sscanf(real + 9, "fex-%d-stats%n", &pid, &n) == 1 && real[9 + n] == '\0')
        return 1;
    return 0;
}

int tool_check_output(const char *prog, const char *path, const char *input, int replace)
{
    if (!path || strcmp(path, "-") == 0)
        return 0;
    if (is_fex_stats_path(path)) {
        tool_error(prog, "refusing to write %s: it is a FEX statistics object (the emulated process would break)",
                   path);
        return EXIT_USAGE;
    }
    struct stat out, in;
    if (stat(path, &out) != 0)
        return 0; /* a new file */
    if (input && strcmp(input, "-") != 0 && stat(input, &in) == 0 && in.st_dev == out.st_dev &&
        in.st_ino == out.st_ino) {
        tool_error(prog, "refusing to write %s: it is the input %s", path, input);
        return EXIT_USAGE;
    }
    if (S_ISREG(out.st_mode) && !replace) {
        tool_error(prog, "refusing to replace %s, which exists (use --force to replace it)", path);
        return EXIT_USAGE;
    }
    return 0;
}

int tool_atomic_open(const char *prog, tool_atomic *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    a->path = path;
    if (snprintf(a->tmp, sizeof a->tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
                 slash ? slash + 1 : path) >= (int)sizeof a->tmp) {
        tool_error(prog, "cannot create %s: path too long", path);
        return -1;
    }
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        tool_error(prog, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um); /* as fopen would have made it */
    if (!(a->f = fdopen(fd, "w"))) {
        tool_error(prog, "cannot create %s: %s", path, strerror(errno));
        close(fd);
        unlink(a->tmp);
        return -1;
    }
    return 0;
}

int tool_atomic_commit(const char *prog, tool_atomic *a)
{
    int bad = fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int err = errno;
    if (fclose(a->f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    a->f = NULL;
    if (!bad && rename(a->tmp, a->path) != 0) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        tool_error(prog, "cannot write %s: %s (nothing was replaced)", a->path, strerror(err));
        unlink(a->tmp);
        return -1;
    }
    return 0;
}

void tool_atomic_abort(tool_atomic *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
}

static int matches(const regex_t *re, const felix_proc_entry *e)
{
    return !re || regexec(re, e->name, 0, NULL, 0) == 0 || regexec(re, e->cmdline, 0, NULL, 0) == 0;
}

/* The one running FEX process that matches re (NULL: any), or -status. */
static pid_t pick_running(const char *prog, const regex_t *re, const char *regex)
{
    felix_proc_list *l;
    int rc = felix_proc_list_new(&l);
    if (rc == 0)
        rc = felix_proc_list_scan(l, NULL);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        felix_proc_list_free(l);
        return -tool_exit_status(rc);
    }
    pid_t found = 0;
    size_t n = 0;
    char list[256] = "";
    for (size_t i = 0; i < felix_proc_list_count(l); i++) {
        const felix_proc_entry *e = felix_proc_list_get(l, i);
        if (e->state != FELIX_PROC_LIVE || !matches(re, e))
            continue;
        if (n++ == 0)
            found = e->pid;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%d (%s)", len ? ", " : "", (int)e->pid, e->name);
    }
    if (n == 0) {
        tool_error(prog, "no running FEX process%s%s%s (is FEX_PROFILESTATS=1 set?)", regex ? " matches '" : "",
                   regex ? regex : "", regex ? "'" : "");
        found = -EXIT_NO_PROCESS;
    } else if (n > 1) {
        tool_error(prog, "%zu FEX processes match: %s; name one by PID or narrow --match", n, list);
        found = -EXIT_USAGE;
    }
    felix_proc_list_free(l);
    return found;
}

/* The first FEX process matching re that starts from now on: what exists
 * now (by PID and start time) is not new, a PID that comes back as a new
 * process is. -status when stopped or on error. */
static pid_t wait_for_start(const char *prog, const regex_t *re, volatile int *stop)
{
    felix_proc_starts *ws;
    int rc = felix_proc_starts_open(&ws, NULL);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return -tool_exit_status(rc);
    }
    pid_t found = 0;
    while (!found && !(stop && *stop)) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        const felix_proc_entry *e;
        while (!found && felix_proc_starts_next(ws, &e) == 0 && e)
            if (matches(re, e))
                found = e->pid;
    }
    felix_proc_starts_close(ws);
    return found ? found : -EXIT_INTERRUPTED;
}

pid_t tool_pick_process(const char *prog, const char *regex, int watch, volatile int *stop)
{
    regex_t re;
    if (regex && regcomp(&re, regex, REG_EXTENDED | REG_NOSUB) != 0) {
        tool_error(prog, "invalid regular expression '%s'", regex);
        return -EXIT_USAGE;
    }
    pid_t found = watch ? wait_for_start(prog, regex ? &re : NULL, stop) : pick_running(prog, regex ? &re : NULL, regex);
    if (regex)
        regfree(&re);
    return found;
}

int64_t tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tool_grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * elem);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

char *tool_fmt_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return tool_fmt_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return tool_fmt_u64(p, (uint64_t)v);
}

