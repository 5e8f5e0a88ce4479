/* Pieces every felix tool shares: option values, exit statuses, messages. */
#ifndef FELIX_TOOLS_COMMON_H
#define FELIX_TOOLS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Exit statuses, documented in every tool's --help and man page. */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_GENERIC = 1, /* an error not listed below */
    EXIT_USAGE = 2,           /* bad option or argument */
    EXIT_NO_PROCESS = 3,      /* no such process */
    EXIT_NO_STATS = 4,        /* not a FEX process, ProfileStats off, or stale */
    EXIT_VERSION = 5,         /* unsupported statistics version */
    EXIT_PERMISSION = 6,      /* permission denied (or foreign owner) */
    EXIT_IO = 7,              /* input/output error, disk full, corrupt data */
    EXIT_INTERRUPTED = 130    /* stopped by SIGINT (128 + 2) */
};

/* Parse a duration: "250ms", "1s", "500us", "2m", "1.5s"; a bare number
 * means default_unit_ns units. Returns 0 and stores ns, or -1. */
int tool_parse_duration(const char *s, int64_t default_unit_ns, int64_t *out_ns);

/* Parse a non-negative integer within [min, max]; returns 0 or -1. */
int tool_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Map a libfelix error code to a tool exit status. */
int tool_exit_status(int felix_code);

/* getopt_long's '?' or ':' (optstring starts with ':', opterr 0): one line
 * naming the option, then EXIT_USAGE. */
int tool_bad_option(const char *prog, int c, char **argv);

/* Print "prog: message\n" to stderr (printf-style). */
void tool_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

#include <sys/types.h>

/* Choose a FEX process: with watch, wait for one that starts after the call
 * (until *stop becomes non-zero); otherwise among the live ones now. With a
 * regex (may be NULL), only those whose name or command line match.
 * Returns the PID, or a negative exit status after printing why. */
pid_t tool_pick_process(const char *prog, const char *regex, int watch, volatile int *stop);

/* Grow *buf (*cap elements of elem bytes) to hold need; 0 or -1. */
int tool_grow(void **buf, size_t *cap, size_t need, size_t elem);

/* Format helpers for fast text output into a buffer: each appends to *p. */
char *tool_fmt_u64(char *p, uint64_t v);
char *tool_fmt_i64(char *p, int64_t v);
/* A double with a fixed number of decimals (0..9), no exponent. */
char *tool_fmt_fixed(char *p, double v, int decimals);
