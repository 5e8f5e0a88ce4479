/* Pieces every felix tool shares: option values, exit statuses, messages. */
#ifndef FELIX_TOOLS_COMMON_H
#define FELIX_TOOLS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
    EXIT_INCOMPLETE = 8,      /* a recording without its end item (never closed) */
    EXIT_INTERRUPTED = 130    /* stopped by SIGINT (128 + 2) */
};

/* Parse a duration: "250ms", "1s", "500us", "2m", "1.5s"; a bare number
 * means default_unit_ns units. Returns 0 and stores ns, or -1. */
int tool_parse_duration(const char *s, int64_t default_unit_ns, int64_t *out_ns);

/* Parse a non-negative decimal integer (digits only: "010" is ten, "0x10"
 * is refused) within [min, max]; returns 0 or -1. */
int tool_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Map a libfelix error code to a tool exit status. */
int tool_exit_status(int felix_code);

/* getopt_long's '?' or ':' (optstring starts with ':', opterr 0): one line
 * naming the option, then EXIT_USAGE. */
int tool_bad_option(const char *prog, int c, char **argv);

/* How the user spelled option c of getopt_long's table lo: "-t/--threads",
 * "--seed" (a static buffer, valid until the next call). */
struct option;
const char *tool_option_name(int c, const struct option *lo);

/* An invalid value for option c: one line naming the option, the value and
 * what is expected (hint may be NULL); returns EXIT_USAGE. */
int tool_bad_value(const char *prog, int c, const struct option *lo, const char *value, const char *hint);

/* After --help or --version: standard output written and flushed, 0; else a
 * one-line message and EXIT_FAILURE_GENERIC (e.g. --help > /dev/full). */
int tool_stdout_done(const char *prog);

/* Print "prog: message\n" to stderr (printf-style). */
void tool_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

#include <sys/types.h>

/* Choose a FEX process: with watch, wait for one that starts after the call
 * (until *stop becomes non-zero); otherwise among the live ones now. With a
 * regex (may be NULL), only those whose name or command line match.
 * Returns the PID, or a negative exit status after printing why. */
pid_t tool_pick_process(const char *prog, const char *regex, int watch, volatile int *stop);

/* CLOCK_MONOTONIC now, in ns (the clock of snapshots and headers). */
int64_t tool_now(void);

/* Grow *buf (*cap elements of elem bytes) to hold need; 0 or -1. */
int tool_grow(void **buf, size_t *cap, size_t need, size_t elem);

/*
 * Outputs that never destroy data. tool_check_output() refuses, with one
 * line and EXIT_USAGE, an output path that is the input itself (same device
 * and inode, through any link; input may be NULL or "-"), a FEX statistics
 * object (anything under /dev/shm named fex-<n>-stats, or a file that is
 * one), or, unless replace, an existing file. Returns 0 when it is safe.
 */
int tool_check_output(const char *prog, const char *path, const char *input, int replace);

/* A file written through a temporary one in the same directory, renamed over
 * path only by tool_atomic_commit(): a failed export leaves nothing behind,
 * and an older file of that name untouched. */
typedef struct tool_atomic {
    char tmp[4096];
    const char *path;
    FILE *f;
} tool_atomic;
/* Create the temporary file; prints why and returns -1 on failure. */
int tool_atomic_open(const char *prog, tool_atomic *a, const char *path);
/* Flush, sync and rename it over path (0), or print why and remove it (-1). */
int tool_atomic_commit(const char *prog, tool_atomic *a);
/* Remove the temporary file (an export that failed). */
void tool_atomic_abort(tool_atomic *a);

/* Format helpers for fast text output into a buffer: each appends to *p. */
/* Decimal formatting for the exporters' hot loops (inline, so a constant
 * decimals folds): digits two and eight at a time. */
static const char tool_digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* Exactly 8 digits of v < 10^8, as two halves of four and pairs. */
static inline void tool_fmt8(char *p, uint32_t v)
{
    uint32_t hi = v / 10000, lo = v - hi * 10000, h1 = hi / 100, l1 = lo / 100;
    memcpy(p, tool_digit_pairs + 2 * h1, 2);
    memcpy(p + 2, tool_digit_pairs + 2 * (hi - h1 * 100), 2);
    memcpy(p + 4, tool_digit_pairs + 2 * l1, 2);
    memcpy(p + 6, tool_digit_pairs + 2 * (lo - l1 * 100), 2);
}

/* The last n digits of v (leading zeros kept): eight at a time in 32-bit
 * arithmetic, then pairs. */
static inline void tool_fmt_digits(char *end, uint64_t v, int n)
{
    for (; n >= 8; n -= 8) {
        uint64_t q = v / 100000000;
        end -= 8;
        tool_fmt8(end, (uint32_t)(v - q * 100000000));
        v = q;
    }
    uint32_t w = (uint32_t)v;
    for (; n >= 2; n -= 2) {
        uint32_t q = w / 100;
        end -= 2;
        memcpy(end, tool_digit_pairs + 2 * (w - q * 100), 2);
        w = q;
    }
    if (n)
        *--end = (char)('0' + w);
}

static inline int tool_ndigits(uint64_t v)
{
    static const uint64_t p10[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                     100000000ull, 1000000000ull, 10000000000ull, 100000000000ull,
                                     1000000000000ull, 10000000000000ull, 100000000000000ull,
                                     1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
                                     1000000000000000000ull, 10000000000000000000ull};
    int t = (64 - __builtin_clzll(v | 1)) * 1233 >> 12; /* digits of 2^bits, less one or not */
    return t + (t < 20 && v >= p10[t]);
}

static inline char *tool_fmt_u64(char *p, uint64_t v)
{
    if (v < 100) { /* counts are mostly small */
        if (v < 10) {
            *p = (char)('0' + v);
            return p + 1;
        }
        memcpy(p, tool_digit_pairs + 2 * v, 2);
        return p + 2;
    }
    int n = tool_ndigits(v);
    tool_fmt_digits(p + n, v, n);
    return p + n;
}

static inline char *tool_fmt_fixed(char *p, double v, int decimals)
{
    static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    static const double limit[] = {9e18, 9e17, 9e16, 9e15, 9e14, 9e13, 9e12, 9e11, 9e10, 9e9};
    if (v != v) /* NaN */
        return p;
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    if (v >= limit[decimals]) /* too large for the fast path */
        return p + sprintf(p, "%.*f", decimals, v);
    uint64_t x = (uint64_t)(v * scale[decimals] + 0.5), ip;
    switch (decimals) { /* constant divisors: multiplications, not a divide */
    case 3: ip = x / 1000; break;
    case 6: ip = x / 1000000; break;
    case 9: ip = x / 1000000000; break;
    default: ip = x / (uint64_t)scale[decimals]; break;
    }
    uint64_t fp = x - ip * (uint64_t)scale[decimals];
    p = tool_fmt_u64(p, ip);
    if (decimals) {
        *p++ = '.';
        tool_fmt_digits(p + decimals, fp, decimals);
        p += decimals;
    }
    return p;
}
char *tool_fmt_i64(char *p, int64_t v);
/* A double with a fixed number of decimals (0..9), no exponent. */
