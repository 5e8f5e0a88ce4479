/* Error codes, their sentences, and the per-thread detail of the last failure. */
#include "felix/felix.h"
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static __thread char detail[512];

const char *felix_version(void) { return FELIX_VERSION_STRING; }

const char *felix_strerror(int code)
{
    switch (code) {
    case FELIX_OK: return "success";
    case FELIX_EINVAL: return "invalid argument";
    case FELIX_ENOMEM: return "out of memory";
    case FELIX_ESRCH: return "no such process";
    case FELIX_ENOSTATS: return "no FEX statistics (not a FEX process, or FEX_PROFILESTATS is off)";
    case FELIX_ESTALE: return "stale statistics segment: its process is gone";
    case FELIX_EACCES: return "permission denied";
    case FELIX_EOWNER: return "statistics segment not owned by the process's user";
    case FELIX_EVERSION: return "unsupported statistics version";
    case FELIX_ETRUNC: return "data truncated";
    case FELIX_ECORRUPT: return "data corrupt";
    case FELIX_EIO: return "input/output error";
    case FELIX_ENOTSUP: return "not supported on this system";
    case FELIX_EAGAIN: return "nothing available yet";
    case FELIX_EEOF: return "end of data";
    case FELIX_ENOSPC: return "no space left on device";
    case FELIX_EPIPE: return "output closed by its reader";
    case FELIX_ERANGE: return "value out of range";
    case FELIX_ERESTART: return "statistics being (re)created (process starting or exec'd); try again";
    default: return "unknown error";
    }
}

const char *felix_error_detail(void) { return detail; }

int fx_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return code;
}

int fx_errno_code(int err)
{
    switch (err) {
    case ENOENT: return FELIX_ENOSTATS;
    case ESRCH: return FELIX_ESRCH;
    case EACCES:
    case EPERM: return FELIX_EACCES;
    case ENOMEM: return FELIX_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return FELIX_ENOSPC;
    case EPIPE: return FELIX_EPIPE;
    case EAGAIN: return FELIX_EAGAIN;
    case EINVAL: return FELIX_EINVAL;
    case ENOSYS:
    case EOPNOTSUPP: return FELIX_ENOTSUP;
    default: return FELIX_EIO;
    }
}

long fx_read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, len - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            close(fd);
            return -err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return (long)n;
}
