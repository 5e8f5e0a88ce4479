/*
 * felix-csv: turn a recording into rows for pipelines (CSV, TSV, JSON lines)
 * or a summary. Every figure comes from libfelix's delta module, exactly as
 * felix-top shows it live.
 */
#include "common.h"
#include "text.h"

#include <errno.h>
#include <felix/felix.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "felix-csv";

enum fmt { F_CSV, F_TSV, F_JSONL };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-csv [OPTIONS] FILE|-\n"
            "Turn a felix recording into rows: one per sample (default) or one per thread per\n"
            "sample (--threads), as CSV (RFC 4180 quoting), TSV or JSON lines; or a summary.\n\n"
            "  -o, --output FILE    write there instead of standard output, through a temporary\n"
            "                       file renamed over FILE when the export is complete (a failed\n"
            "                       export leaves no half file); never the input itself or a\n"
            "                       FEX statistics object\n"
            "  -t, --threads        one row per thread per sample\n"
            "  -f, --format FMT     csv (default), tsv or jsonl\n"
            "      --from S         start S seconds after the recording's start\n"
            "      --to S           stop S seconds after the recording's start\n"
            "  -F, --follow         keep reading a recording still being written (like tail -f),\n"
            "                       until its end item or SIGINT\n"
            "  -s, --summary        duration, samples, mean and peak FEX load, totals, busiest\n"
            "                       threads, threads over the frame budget, peak memory, and\n"
            "                       the spikes (jsonl: one JSON object)\n"
            "      --fps N          frame rate of the frame-budget rule (default 60; 1-1000)\n"
            "  -h, --help           this help\n"
            "  -V, --version        version\n\n"
            "Sample rows: frame,time_s,unix_time_s,interval_s,threads,load_pct,jit_s,signal_s,\n"
            "  cache_rdlock_s,cache_wrlock_s,jit_count,sigbus,smc,softfloat,cache_miss,\n"
            "  cum_jit_count,cum_sigbus,cum_smc,cum_softfloat,cum_cache_miss,mem_total, then\n"
            "  mem_FEXMem, mem_FEXMemJIT, mem_FEXMem_OpDispatcher, mem_FEXMem_Frontend,\n"
            "  mem_FEXMem_CPUBackend, mem_FEXMem_Lookup, mem_FEXMem_Lookup_L1,\n"
            "  mem_FEXMem_ThreadState, mem_FEXMem_BlockLinks, mem_FEXMem_CallRetStacks,\n"
            "  mem_FEXMem_Misc, mem_FEXAllocator, mem_other (every other region) and\n"
            "  mem_process_rss (the whole process, FEX's and the game's) in bytes, as of the\n"
            "  latest memory sample (empty before the first). Counts are per interval;\n"
            "  *_s are seconds. A file and standard input give the same bytes.\n"
            "Thread rows: frame,time_s,tid,name,load_pct,jit_s,signal_s,cache_rdlock_s,\n"
            "  cache_wrlock_s,jit_count,sigbus,smc,softfloat,cache_miss,cpu_s,over_budget\n"
            "  (cpu_s: host CPU time in the interval, when the recorder measured it at both ends;\n"
            "  empty otherwise, e.g. between slow samples of felix-rec --mem-interval.\n"
            "  over_budget: 1 when the thread spent a whole frame's budget (1/fps) in JIT and\n"
            "  signal handling within one frame's worth of time: at intervals of a frame or\n"
            "  more, in the interval; at shorter ones, over the latest samples spanning a frame).\n"
            "The first sample is the baseline: rows start at frame 1. --from S starts at the\n"
            "first sample at or after S, against the sample before it (a baseline row with\n"
            "interval 0 when there is none); cumulative and memory columns are those of a full\n"
            "read.\n\n"
            "Exit status: 0 done; 2 usage (or an output that is the input or a FEX statistics\n"
            "  object); 5 a newer recording format; 6 permission denied;\n"
            "  8 the recording has no end item (never closed: the recorder was killed, the disk\n"
            "  filled, or it is still being written): every sample in it was written out;\n"
            "  7 unreadable or damaged recording (a corrupt item, a bad checksum, a wrong index):\n"
            "  every row before the damage is written, and a line names its byte offset;\n"
            "  1 any other error.\n");
}

/* ---- output buffer ---- */
static char obuf[1 << 17];
static size_t olen;
static FILE *ofile;
static int out_failed;

static void oflush(void)
{
    if (olen && !out_failed && fwrite(obuf, 1, olen, ofile) != olen)
        out_failed = errno ? errno : EIO;
    olen = 0;
    if (!out_failed && fflush(ofile) != 0)
        out_failed = errno ? errno : EIO;
}

static char *oreserve(size_t n)
{
    if (olen + n > sizeof obuf)
        oflush();
    return obuf + olen;
}

static void oput(const char *s, size_t n)
{
    if (n > sizeof obuf / 2) {
        oflush();
        if (!out_failed && fwrite(s, 1, n, ofile) != n)
            out_failed = errno ? errno : EIO;
        return;
    }
    memcpy(oreserve(n), s, n);
    olen += n;
}

static void ostr(const char *s) { oput(s, strlen(s)); }

/* A text field from outside (names, versions), as the format needs it:
 * JSON strings, RFC 4180 fields, TSV fields (see text.h). */
static void ofield_text(enum fmt f, const char *s)
{
    size_t n = strlen(s);
    if (TEXT_MAX(n) > sizeof obuf / 2)
        n = (sizeof obuf / 2 - 2) / 10; /* names are short; never overrun */
    char *p = oreserve(TEXT_MAX(n));
    p = f == F_JSONL ? text_json(p, s, n) : f == F_TSV ? text_tsv(p, s, n) : text_csv(p, s, n);
    olen = (size_t)(p - obuf);
}

/* Outside text in the plain-text summary (it may go to a terminal). */
static void oterm(const char *s)
{
    char buf[TEXT_MAX(512) + 1];
    ostr(text_term_str(buf, sizeof buf, s, 0));
}

/* ---- rows ---- */
static const char *const frame_cols[] = {
    "frame", "time_s", "unix_time_s", "interval_s", "threads", "load_pct", "jit_s", "signal_s",
    "cache_rdlock_s", "cache_wrlock_s", "jit_count", "sigbus", "smc", "softfloat", "cache_miss",
    "cum_jit_count", "cum_sigbus", "cum_smc", "cum_softfloat", "cum_cache_miss", "mem_total"};
static const char *const thread_cols[] = {"frame", "time_s", "tid", "name", "load_pct", "jit_s", "signal_s",
                                          "cache_rdlock_s", "cache_wrlock_s", "jit_count", "sigbus", "smc",
                                          "softfloat", "cache_miss", "cpu_s", "over_budget"};
/* Counters in column order after the four times. */
static const int count_cols[] = {FELIX_C_JIT_COUNT, FELIX_C_SIGBUS, FELIX_C_SMC, FELIX_C_SOFTFLOAT, FELIX_C_CACHE_MISS};
static const int time_cols[] = {FELIX_C_JIT_TIME, FELIX_C_SIGNAL_TIME, FELIX_C_CACHE_RDLOCK, FELIX_C_CACHE_WRLOCK};

struct row {
    enum fmt f;
    const char *const *names;
    int col;
    char *p;
};

static void row_begin(struct row *r, enum fmt f, const char *const *names)
{
    r->f = f;
    r->names = names;
    r->col = 0;
    r->p = oreserve(4096);
    if (f == F_JSONL)
        *r->p++ = '{';
}

/* Before a value: separator, and the key in JSON. */
static void row_key(struct row *r, const char *key)
{
    if (r->col++) {
        if (r->f == F_TSV)
            *r->p++ = '\t';
        else
            *r->p++ = ',';
    }
    if (r->f == F_JSONL) {
        *r->p++ = '"';
        size_t n = strlen(key);
        memcpy(r->p, key, n);
        r->p += n;
        *r->p++ = '"';
        *r->p++ = ':';
    }
}

static void row_u64(struct row *r, const char *key, uint64_t v)
{
    row_key(r, key);
    r->p = tool_fmt_u64(r->p, v);
}

static void row_fixed(struct row *r, const char *key, double v, int dec)
{
    row_key(r, key);
    r->p = tool_fmt_fixed(r->p, v, dec);
}

static void row_null(struct row *r, const char *key)
{
    row_key(r, key);
    if (r->f == F_JSONL) {
        memcpy(r->p, "null", 4);
        r->p += 4;
    }
}

static void row_text(struct row *r, const char *key, const char *s)
{
    row_key(r, key);
    olen = (size_t)(r->p - obuf);
    ofield_text(r->f, s);
    r->p = oreserve(4096);
}

static void row_end(struct row *r)
{
    if (r->f == F_JSONL)
        *r->p++ = '}';
    *r->p++ = '\n';
    olen = (size_t)(r->p - obuf);
}

static void header_line(enum fmt f, const char *const *cols, size_t n, const char *const *regions, size_t nreg,
                        const char *last)
{
    if (f == F_JSONL)
        return;
    char sep = f == F_TSV ? '\t' : ',';
    for (size_t i = 0; i < n; i++) {
        if (i)
            oput(&sep, 1);
        ostr(cols[i]);
    }
    for (size_t i = 0; i < nreg; i++) {
        char name[64];
        snprintf(name, sizeof name, "mem_%s", regions[i]);
        oput(&sep, 1);
        ofield_text(f, name);
    }
    if (last) {
        oput(&sep, 1);
        ostr(last);
    }
    ostr("\n");
}

/* ---- summary ---- */
struct tsum {
    uint32_t tid;
    char name[32];
    uint64_t jit;
    uint64_t over; /* intervals over the frame budget */
};

struct summary {
    uint64_t frames;
    double first_t, last_t, load_weighted, time_total, peak_load, peak_t;
    uint64_t d[FELIX_NCOUNTERS];
    struct tsum *t;
    size_t nt, tcap;
    uint32_t *idx; /* open addressing: tid -> t index + 1 */
    size_t icap;
    uint64_t nspikes, missed, process_exited;
    uint64_t peak_rss, peak_fex; /* the whole process's, and FEX's at that sample */
    unsigned fps;
    struct { double t; unsigned flags; } spikes[50];
};

static struct tsum *sum_thread(struct summary *s, uint32_t tid)
{
    if (s->nt * 2 >= s->icap) {
        size_t cap = s->icap ? s->icap * 2 : 256;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            return NULL;
        for (size_t i = 0; i < s->nt; i++) {
            size_t h = (s->t[i].tid * 2654435761u) & (cap - 1);
            while (idx[h])
                h = (h + 1) & (cap - 1);
            idx[h] = (uint32_t)i + 1;
        }
        free(s->idx);
        s->idx = idx;
        s->icap = cap;
    }
    size_t h = (tid * 2654435761u) & (s->icap - 1);
    while (s->idx[h]) {
        if (s->t[s->idx[h] - 1].tid == tid)
            return &s->t[s->idx[h] - 1];
        h = (h + 1) & (s->icap - 1);
    }
    if (tool_grow((void **)&s->t, &s->tcap, s->nt + 1, sizeof *s->t) < 0)
        return NULL;
    struct tsum *x = &s->t[s->nt];
    memset(x, 0, sizeof *x);
    x->tid = tid;
    s->idx[h] = (uint32_t)++s->nt;
    return x;
}

static int by_jit(const void *a, const void *b)
{
    const struct tsum *x = a, *y = b;
    return (x->jit < y->jit) - (x->jit > y->jit);
}

static int by_over(const void *a, const void *b)
{
    const struct tsum *x = a, *y = b;
    int c = (x->over < y->over) - (x->over > y->over);
    return c ? c : by_jit(a, b);
}

static void flag_names(unsigned flags, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s", flags & FELIX_FLAG_HIGH_JIT ? " high-JIT" : "",
             flags & FELIX_FLAG_HIGH_SMC ? " high-SMC" : "", flags & FELIX_FLAG_HIGH_SIGBUS ? " high-SIGBUS" : "",
             flags & FELIX_FLAG_HIGH_SOFTFLOAT ? " high-softfloat" : "",
             flags & FELIX_FLAG_OVER_BUDGET ? " over-budget" : "");
}

static void print_summary(struct summary *s, const felix_rec_header *h, uint64_t freq, enum fmt f, int truncated)
{
    if (s->nt)
        qsort(s->t, s->nt, sizeof *s->t, by_jit);
    double mean = s->time_total > 0 ? s->load_weighted / s->time_total : 0;
    static const char *const cnames[] = {"jit_count", "sigbus", "smc", "softfloat", "cache_miss"};
    static const char *const tnames[] = {"jit_s", "signal_s", "cache_rdlock_s", "cache_wrlock_s"};
    char line[512];
    if (f == F_JSONL) {
        ostr("{\"pid\":");
        snprintf(line, sizeof line, "%d", (int)h->pid);
        ostr(line);
        ostr(",\"name\":");
        ofield_text(f, h->name);
        ostr(",\"fex_version\":");
        ofield_text(f, h->fex_version);
        snprintf(line, sizeof line,
                 ",\"duration_s\":%.6f,\"samples\":%llu,\"load_mean_pct\":%.3f,\"load_peak_pct\":%.3f,\"load_peak_time_s\":%.6f",
                 s->frames ? s->last_t - s->first_t : 0.0, (unsigned long long)(s->frames ? s->frames + 1 : 0),
                 mean, s->peak_load, s->peak_t);
        ostr(line);
        for (int i = 0; i < 4; i++) {
            snprintf(line, sizeof line, ",\"%s\":%.9f", tnames[i], (double)s->d[time_cols[i]] / (double)freq);
            ostr(line);
        }
        for (int i = 0; i < 5; i++) {
            snprintf(line, sizeof line, ",\"%s\":%llu", cnames[i], (unsigned long long)s->d[count_cols[i]]);
            ostr(line);
        }
        snprintf(line, sizeof line, ",\"samples_missed\":%llu,\"truncated\":%s,\"busiest_threads\":[",
                 (unsigned long long)s->missed, truncated ? "true" : "false");
        ostr(line);
        for (size_t i = 0; i < s->nt && i < 5; i++) {
            snprintf(line, sizeof line, "%s{\"tid\":%u,\"name\":", i ? "," : "", s->t[i].tid);
            ostr(line);
            ofield_text(f, s->t[i].name);
            snprintf(line, sizeof line, ",\"jit_s\":%.9f}", (double)s->t[i].jit / (double)freq);
            ostr(line);
        }
        if (s->nt)
            qsort(s->t, s->nt, sizeof *s->t, by_over);
        snprintf(line, sizeof line, "],\"fps\":%u,\"over_budget_threads\":[", s->fps);
        ostr(line);
        for (size_t i = 0, k = 0; i < s->nt && k < 5 && s->t[i].over; i++, k++) {
            snprintf(line, sizeof line, "%s{\"tid\":%u,\"name\":", k ? "," : "", s->t[i].tid);
            ostr(line);
            ofield_text(f, s->t[i].name);
            snprintf(line, sizeof line, ",\"intervals\":%llu}", (unsigned long long)s->t[i].over);
            ostr(line);
        }
        if (s->peak_rss)
            snprintf(line, sizeof line, "],\"process_rss_peak\":%llu,\"fex_rss_at_peak\":%llu", (unsigned long long)s->peak_rss,
                     (unsigned long long)s->peak_fex);
        else
            snprintf(line, sizeof line, "],\"process_rss_peak\":null,\"fex_rss_at_peak\":null");
        ostr(line);
        snprintf(line, sizeof line, ",\"spikes\":%llu,\"spike_list\":[", (unsigned long long)s->nspikes);
        ostr(line);
        for (size_t i = 0; i < s->nspikes && i < 50; i++) {
            char fl[80];
            flag_names(s->spikes[i].flags, fl, sizeof fl);
            snprintf(line, sizeof line, "%s{\"time_s\":%.6f,\"flags\":\"%s\"}", i ? "," : "", s->spikes[i].t, fl + 1);
            ostr(line);
        }
        ostr("]}\n");
        return;
    }
    snprintf(line, sizeof line, "process      %d ", (int)h->pid);
    ostr(line);
    oterm(h->name);
    ostr("  (");
    oterm(h->cmdline);
    ostr(")\nFEX          ");
    oterm(h->fex_version);
    ostr("\n");
    snprintf(line, sizeof line, "duration     %.3f s%s\nsamples      %llu (%llu missed by the recorder)\n",
             s->frames ? s->last_t - s->first_t : 0.0, truncated ? " (the recording is truncated)" : "",
             (unsigned long long)(s->frames ? s->frames + 1 : 0), (unsigned long long)s->missed);
    ostr(line);
    snprintf(line, sizeof line, "FEX load     mean %.1f%%, peak %.1f%% at %.3f s\n", mean, s->peak_load, s->peak_t);
    ostr(line);
    for (int i = 0; i < 4; i++) {
        snprintf(line, sizeof line, "%-12s %.6f s\n", tnames[i], (double)s->d[time_cols[i]] / (double)freq);
        ostr(line);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof line, "%-12s %llu\n", cnames[i], (unsigned long long)s->d[count_cols[i]]);
        ostr(line);
    }
    ostr("busiest threads by JIT time:\n");
    for (size_t i = 0; i < s->nt && i < 5; i++) {
        char nm[TEXT_MAX(32) + 1];
        snprintf(line, sizeof line, "  %-8u %-16s %.6f s\n", s->t[i].tid,
                 s->t[i].name[0] ? text_term_str(nm, sizeof nm, s->t[i].name, 0) : "?", (double)s->t[i].jit / (double)freq);
        ostr(line);
    }
    if (s->nt)
        qsort(s->t, s->nt, sizeof *s->t, by_over);
    snprintf(line, sizeof line, "over the frame budget at %u fps (intervals a thread spent a frame in JIT + signal):\n",
             s->fps);
    ostr(line);
    for (size_t i = 0; i < s->nt && i < 5 && s->t[i].over; i++) {
        char nm[TEXT_MAX(32) + 1];
        snprintf(line, sizeof line, "  %-8u %-16s %llu\n", s->t[i].tid,
                 s->t[i].name[0] ? text_term_str(nm, sizeof nm, s->t[i].name, 0) : "?", (unsigned long long)s->t[i].over);
        ostr(line);
    }
    if (!s->nt || !s->t[0].over)
        ostr("  none\n");
    if (s->peak_rss) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%.1f MiB", (double)s->peak_fex / 1048576.0);
        snprintf(b, sizeof b, "%.1f MiB", (double)s->peak_rss / 1048576.0);
        snprintf(line, sizeof line, "memory       peak %s RSS, FEX %s of it (%.0f%%)\n", b, a,
                 100.0 * (double)s->peak_fex / (double)s->peak_rss);
        ostr(line);
    }
    snprintf(line, sizeof line, "spikes       %llu samples over the flag thresholds\n", (unsigned long long)s->nspikes);
    ostr(line);
    for (size_t i = 0; i < s->nspikes && i < 50; i++) {
        char fl[80];
        flag_names(s->spikes[i].flags, fl, sizeof fl);
        snprintf(line, sizeof line, "  %10.3f s %s\n", s->spikes[i].t, fl);
        ostr(line);
    }
    if (s->nspikes > 50)
        ostr("  ...\n");
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

int main(int argc, char **argv)
{
    enum { OPT_FROM = 256, OPT_TO, OPT_FPS };
    static const struct option lo[] = {{"output", 1, 0, 'o'},  {"threads", 0, 0, 't'}, {"format", 1, 0, 'f'},
                                       {"from", 1, 0, OPT_FROM}, {"to", 1, 0, OPT_TO}, {"follow", 0, 0, 'F'},
                                       {"summary", 0, 0, 's'}, {"help", 0, 0, 'h'},  {"version", 0, 0, 'V'},
                                       {"fps", 1, 0, OPT_FPS}, {0, 0, 0, 0}};
    const char *outpath = NULL;
    int threads = 0, follow = 0, summary = 0, c;
    uint64_t fps = FELIX_DEFAULT_FPS;
    enum fmt f = F_CSV;
    double from = -1, to = -1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:tf:FshV", lo, NULL)) != -1) {
        switch (c) {
        case 'o': outpath = optarg; break;
        case 't': threads = 1; break;
        case 'f':
            if (strcmp(optarg, "csv") == 0)
                f = F_CSV;
            else if (strcmp(optarg, "tsv") == 0)
                f = F_TSV;
            else if (strcmp(optarg, "jsonl") == 0)
                f = F_JSONL;
            else {
                return tool_bad_value(prog, c, lo, optarg, "csv, tsv or jsonl");
            }
            break;
        case OPT_FROM:
        case OPT_TO: {
            char *end;
            double v = strtod(optarg, &end);
            if (*end || !(v >= 0)) {
                return tool_bad_value(prog, c, lo, optarg, "seconds from the start, e.g. 12.5");
            }
            if (c == OPT_FROM)
                from = v;
            else
                to = v;
            break;
        }
        case OPT_FPS:
            if (tool_parse_uint(optarg, 1, 1000, &fps) < 0)
                return tool_bad_value(prog, c, lo, optarg, "frames per second, 1 to 1000");
            break;
        case 'F': follow = 1; break;
        case 's': summary = 1; break;
        case 'h': usage(stdout); return tool_stdout_done(prog);
        case 'V': printf("felix-csv %s\n", felix_version()); return tool_stdout_done(prog);
        default: return tool_bad_option(prog, c, argv);
        }
    }
    if (optind + 1 != argc) {
        tool_error(prog, optind == argc ? "no recording given (a FILE, or - for standard input)"
                                        : "one recording at a time");
        return EXIT_USAGE;
    }
    const char *in = argv[optind];
    if ((c = tool_check_output(prog, outpath, in, 1)) != 0)
        return c;
    felix_rec_reader *r;
    int rc = felix_rec_reader_open_path(&r, in);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return rc == FELIX_EVERSION ? EXIT_VERSION : rc == FELIX_EACCES ? EXIT_PERMISSION : EXIT_IO;
    }
    ofile = stdout;
    tool_atomic out;
    if (outpath) {
        if (tool_atomic_open(prog, &out, outpath) < 0)
            return EXIT_IO;
        ofile = out.f;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed output shows as EPIPE */
    signal(SIGXFSZ, SIG_IGN); /* a file size limit shows as EFBIG, not death */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    const felix_rec_header *h = felix_rec_reader_header(r);
    struct stat st;
    int regular = strcmp(in, "-") != 0 && stat(in, &st) == 0 && S_ISREG(st.st_mode); /* only for flushing */
    int realtime = follow || !regular; /* rows go out as samples come in */

    /* Memory columns: FEX's known regions, then mem_other for every other
     * name (JEMalloc of older FEX, future FEXMem_* names). Fixed, so a file
     * and a pipe give the same columns, and nothing is read ahead: the
     * index is never needed for a full read. */
    static const char *const regions[] = {"FEXMem", "FEXMemJIT", "FEXMem_OpDispatcher", "FEXMem_Frontend",
                                          "FEXMem_CPUBackend", "FEXMem_Lookup", "FEXMem_Lookup_L1",
                                          "FEXMem_ThreadState", "FEXMem_BlockLinks", "FEXMem_CallRetStacks",
                                          "FEXMem_Misc", "FEXAllocator", "other"};
    const size_t nreg = sizeof regions / sizeof *regions, nknown = nreg - 1;
    /* --from reads from the start too: cumulative totals and the memory
     * columns of a range then equal the full read's. */

    uint64_t freq = h->freq_hz;
    felix_delta *d;
    felix_snapshot *prev, *cur;
    if (felix_delta_new(&d, freq, h->ncpus) < 0 || felix_delta_set_fps(d, (unsigned)fps) < 0 ||
        felix_snapshot_new(&prev) < 0 || felix_snapshot_new(&cur) < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return EXIT_FAILURE_GENERIC;
    }
    if (!summary)
        header_line(f, threads ? thread_cols : frame_cols,
                    threads ? sizeof thread_cols / sizeof *thread_cols : sizeof frame_cols / sizeof *frame_cols,
                    regions, threads ? 0 : nreg, threads ? NULL : "mem_process_rss");
    uint64_t *mem = calloc(nreg ? nreg : 1, sizeof *mem);
    uint64_t mem_total = 0, process_rss = 0, *prev_cpu = NULL, *cur_cpu = NULL;
    unsigned char *prev_has = NULL, *cur_has = NULL;
    size_t cpu_cap = 0;
    int have_mem = 0, have_prev = 0, status = EXIT_OK, truncated = 0;
    struct summary sum;
    memset(&sum, 0, sizeof sum);
    sum.first_t = -1;
    sum.fps = (unsigned)fps;
    for (;;) {
        if (interrupted)
            break;
        felix_rec_event ev;
        int item;
        rc = felix_rec_next(r, cur, &ev, &item);
        if (rc == FELIX_EEOF || rc == FELIX_ETRUNC || rc == FELIX_EAGAIN) {
            if (follow && !interrupted) {
                oflush();
                struct timespec ts = {0, 100000000};
                nanosleep(&ts, NULL);
                continue;
            }
            if (rc == FELIX_ETRUNC) { /* never closed: every sample was read */
                oflush();
                tool_error(prog, "%s: %s", in, felix_error_detail());
                truncated = 1;
                status = EXIT_INCOMPLETE;
            }
            break;
        }
        if (rc < 0) {
            oflush();
            tool_error(prog, "%s: %s", in, felix_error_detail());
            status = rc == FELIX_ENOMEM ? EXIT_FAILURE_GENERIC : EXIT_IO;
            truncated = 1;
            break;
        }
        if (item == FELIX_REC_END) {
            if (follow)
                break;
            continue;
        }
        if (item == FELIX_REC_EVENT) {
            if (ev.kind == FELIX_EV_SAMPLES_MISSED)
                sum.missed += ev.count;
            continue;
        }
        /* A sample. */
        const felix_snapshot_info *ci = felix_snapshot_get_info(cur);
        double t = (double)(ci->mono_ns - h->start_mono_ns) / 1e9;
        if (to >= 0 && t > to)
            break;
        const felix_mem *m = felix_snapshot_mem(cur);
        if (m) {
            have_mem = 1;
            mem_total = felix_mem_total(m);
            uint64_t known_sum = 0;
            for (size_t i = 0; i < nknown; i++) {
                const felix_region *reg = felix_mem_find(m, regions[i]);
                mem[i] = reg ? reg->rss : 0;
                known_sum += mem[i];
            }
            mem[nknown] = mem_total - known_sum;
            process_rss = felix_mem_process_rss(m); /* 0: not recorded */
            if (process_rss > sum.peak_rss) {
                sum.peak_rss = process_rss;
                sum.peak_fex = mem_total;
            }
        }
        size_t n = ci->nthreads;
        if (threads && n > cpu_cap) {
            cpu_cap = n * 2;
            cur_cpu = realloc(cur_cpu, cpu_cap * sizeof *cur_cpu);
            prev_cpu = realloc(prev_cpu, cpu_cap * sizeof *prev_cpu);
            cur_has = realloc(cur_has, cpu_cap);
            prev_has = realloc(prev_has, cpu_cap);
            if (!cur_cpu || !prev_cpu || !cur_has || !prev_has) {
                tool_error(prog, "out of memory");
                return EXIT_FAILURE_GENERIC;
            }
        }
        for (size_t i = 0; threads && i < n; i++)
            cur_has[i] = felix_rec_thread_cpu_ns(r, felix_snapshot_thread(cur, i)->tid, &cur_cpu[i]) == 0;
        /* A row per frame; with --from, the first sample at or after S is a
         * row too: a baseline row (interval 0) when no sample precedes it. */
        int row = have_prev ? felix_delta_compute(d, prev, cur) == 0
                            : from >= 0 && felix_delta_compute(d, NULL, cur) == 0;
        if (row && t >= (from >= 0 ? from : 0)) {
            const felix_frame *fr = felix_delta_frame(d);
            int64_t frame = felix_rec_sample_number(r);
            if (summary && !have_prev) {
                /* a baseline row has no interval to sum */
            } else if (summary) {
                if (sum.first_t < 0)
                    sum.first_t = (double)(felix_snapshot_get_info(prev)->mono_ns - h->start_mono_ns) / 1e9;
                sum.last_t = t;
                sum.frames++;
                sum.time_total += fr->interval_s;
                sum.load_weighted += fr->load_pct * fr->interval_s;
                if (fr->load_pct > sum.peak_load || sum.frames == 1) {
                    sum.peak_load = fr->load_pct;
                    sum.peak_t = t;
                }
                for (int k = 0; k < FELIX_NCOUNTERS; k++)
                    sum.d[k] += fr->d[k];
                if (fr->flags) {
                    if (sum.nspikes < 50) {
                        sum.spikes[sum.nspikes].t = t;
                        sum.spikes[sum.nspikes].flags = fr->flags;
                    }
                    sum.nspikes++;
                }
                for (size_t i = 0; i < fr->nthreads; i++) {
                    const felix_thread_delta *td = felix_delta_thread(d, i);
                    struct tsum *x = sum_thread(&sum, td->tid);
                    if (!x)
                        continue;
                    x->jit += td->d[FELIX_C_JIT_TIME];
                    x->over += (td->state & FELIX_TD_OVER_BUDGET) != 0;
                    const char *nm = felix_rec_thread_name(r, td->tid);
                    if (nm)
                        snprintf(x->name, sizeof x->name, "%s", nm);
                }
            } else if (!threads) {
                struct row w;
                row_begin(&w, f, frame_cols);
                row_u64(&w, "frame", (uint64_t)frame);
                row_fixed(&w, "time_s", t, 6);
                row_fixed(&w, "unix_time_s", (double)ci->wall_ns / 1e9, 6);
                row_fixed(&w, "interval_s", fr->interval_s, 6);
                row_u64(&w, "threads", fr->nthreads);
                row_fixed(&w, "load_pct", fr->load_pct, 3);
                for (int k = 0; k < 4; k++)
                    row_fixed(&w, frame_cols[6 + k], fr->value[time_cols[k]], 9);
                for (int k = 0; k < 5; k++)
                    row_u64(&w, frame_cols[10 + k], fr->d[count_cols[k]]);
                for (int k = 0; k < 5; k++)
                    row_u64(&w, frame_cols[15 + k], fr->cum[count_cols[k]]);
                if (have_mem)
                    row_u64(&w, "mem_total", mem_total);
                else
                    row_null(&w, "mem_total");
                for (size_t i = 0; i < nreg; i++) {
                    char key[64];
                    snprintf(key, sizeof key, "mem_%s", regions[i]);
                    if (w.p - obuf > (long)(sizeof obuf - 200)) { /* very many regions: make room */
                        olen = (size_t)(w.p - obuf);
                        oflush();
                        w.p = obuf;
                    }
                    if (have_mem)
                        row_u64(&w, key, mem[i]);
                    else
                        row_null(&w, key);
                }
                if (have_mem && process_rss)
                    row_u64(&w, "mem_process_rss", process_rss);
                else
                    row_null(&w, "mem_process_rss");
                row_end(&w);
            } else {
                for (size_t i = 0; i < fr->nthreads; i++) {
                    const felix_thread_delta *td = felix_delta_thread(d, i);
                    struct row w;
                    row_begin(&w, f, thread_cols);
                    row_u64(&w, "frame", (uint64_t)frame);
                    row_fixed(&w, "time_s", t, 6);
                    row_u64(&w, "tid", td->tid);
                    const char *nm = felix_rec_thread_name(r, td->tid);
                    row_text(&w, "name", nm ? nm : "");
                    row_fixed(&w, "load_pct", td->load_pct, 3);
                    for (int k = 0; k < 4; k++)
                        row_fixed(&w, thread_cols[5 + k], td->value[time_cols[k]], 9);
                    for (int k = 0; k < 5; k++)
                        row_u64(&w, thread_cols[9 + k], td->d[count_cols[k]]);
                    long ci_ = felix_snapshot_index(cur, td->tid), pi = felix_snapshot_index(prev, td->tid);
                    if (ci_ >= 0 && pi >= 0 && cur_has[ci_] && prev_has[pi] && cur_cpu[ci_] >= prev_cpu[pi] &&
                        !(td->state & FELIX_TD_STARTED))
                        row_fixed(&w, "cpu_s", (double)(cur_cpu[ci_] - prev_cpu[pi]) / 1e9, 6);
                    else
                        row_null(&w, "cpu_s");
                    row_u64(&w, "over_budget", (td->state & FELIX_TD_OVER_BUDGET) != 0);
                    row_end(&w);
                }
            }
            if (realtime)
                oflush();
            if (out_failed)
                break;
        }
        felix_snapshot *tmp = prev;
        prev = cur;
        cur = tmp;
        if (threads) {
            uint64_t *tc = prev_cpu;
            prev_cpu = cur_cpu;
            cur_cpu = tc;
            unsigned char *th = prev_has;
            prev_has = cur_has;
            cur_has = th;
        }
        have_prev = 1;
    }
    if (summary && !out_failed)
        print_summary(&sum, h, freq, f, truncated);
    if (felix_rec_reader_warning(r)) { /* damage worked around: said, and not 0 */
        oflush();
        tool_error(prog, "%s: %s", in, felix_rec_reader_warning(r));
        if (status == EXIT_OK)
            status = EXIT_IO;
    }
    oflush();
    if (out_failed) {
        if (out_failed != EPIPE) /* a reader that stopped early (| head) is not an error */
            tool_error(prog, "cannot write the output: %s", strerror(out_failed));
        status = out_failed == EPIPE ? status : EXIT_IO;
    }
    if (ofile != stdout) {
        /* A complete export replaces FILE; a failed one leaves it as it was.
         * Rows read before damage in the input are complete rows: kept. */
        if (out_failed || interrupted)
            tool_atomic_abort(&out);
        else if (tool_atomic_commit(prog, &out) < 0 && status == EXIT_OK)
            status = EXIT_IO;
        if (out_failed)
            status = EXIT_IO;
    }
    free(mem);
    free(prev_cpu);
    free(cur_cpu);
    free(prev_has);
    free(cur_has);
    free(sum.t);
    free(sum.idx);
    felix_delta_free(d);
    felix_snapshot_free(prev);
    felix_snapshot_free(cur);
    felix_rec_reader_close(r);
    return status ? status : (interrupted && !follow ? 128 + interrupted : EXIT_OK);
}
