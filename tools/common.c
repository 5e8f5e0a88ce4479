#include "common.h"

#include <felix/felix.h>
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
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int tool_exit_status(int code)
{
    switch (code) {
    case FELIX_OK: return EXIT_OK;
    case FELIX_EINVAL: return EXIT_USAGE;
    case FELIX_ESRCH: return EXIT_NO_PROCESS;
    case FELIX_ENOSTATS:
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

void tool_error(const char *prog, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, msg);
}
