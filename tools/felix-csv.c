/*
 * felix-csv: turn a recording into rows for pipelines (CSV, TSV, JSON lines)
 * or a summary. Every figure comes from libfelix's delta module, exactly as
 * felix-top shows it live.
 */
#include "common.h"
#include "summary.h"
#include "perfetto.h"
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

enum fmt { F_CSV, F_TSV, F_JSONL, F_PERFETTO };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-csv [OPTIONS] FILE|-\n"
            "Turn a felix recording into rows: one per sample (default) or one per thread per\n"
            "sample (--threads), as CSV (RFC 4180 quoting), TSV or JSON lines; or a summary;\n"
            "or into a Perfetto trace (-f perfetto) for ui.perfetto.dev.\n\n"
            "  -o, --output FILE    write there instead of standard output, through a temporary\n"
            "                       file renamed over FILE when the export is complete (a failed\n"
            "                       export leaves no half file); never the input itself or a\n"
            "                       FEX statistics object; - is standard output\n"
            "  -t, --threads        one row per thread per sample\n"
            "  -f, --format FMT     csv (default), tsv, jsonl, or perfetto: a Perfetto trace\n"
            "                       (protobuf; not to a terminal), see below\n"
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
            "  empty otherwise, e.g. between the slow samples of felix-rec (its memory interval).\n"
            "  over_budget: 1 when the thread spent a whole frame's budget (1/fps) in JIT and\n"
            "  signal handling within one frame's worth of time: at intervals of a frame or\n"
            "  more, in the interval; at shorter ones, over the latest samples spanning a frame).\n"
            );
    fprintf(f,
            "Perfetto traces (-f perfetto, e.g. -o run.pftrace): a process track (PID, name);\n"
            "  counter tracks for FEX load %%, JIT / signal / cache read and write lock time in\n"
            "  ms per second, JIT blocks, SMC, SIGBUS, soft-float and cache misses per second,\n"
            "  and memory per region in bytes; a thread track per thread (TID, name; a reused\n"
            "  TID is a new track) with its load %%; instant events for the history flags\n"
            "  (high JIT, SMC, SIGBUS, soft-float, over the frame budget), exec, exit, thread\n"
            "  start and exit, interval changes and missed samples. Timestamps are the\n"
            "  recording's CLOCK_MONOTONIC ns; a clock snapshot ties them to REALTIME and,\n"
            "  for recordings of libfelix 0.3 on, BOOTTIME, so the trace lines up with a\n"
            "  system trace of the same machine. Written as read, in memory that does not grow\n"
            "  with the recording; --from/--to apply. It is felix-csv's own output so that a\n"
            "  trace gets the same reading, ranges, damage handling and safe -o as the rows.\n"
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
static void pf_out(const void *p, size_t n) { oput(p, n); }

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
/* Row columns after load_pct: the four times, then the counts, in the
 * summary's order (summary_time_counters, summary_count_counters). */

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

/* Thread rows in JSON: each column's lead-in (comma, quoted key, colon),
 * built once and copied at a fixed size (rows reserve room for it). */
#define NTHREAD_COLS (sizeof thread_cols / sizeof *thread_cols)
static struct {
    char s[32];
    unsigned char n;
} json_lead[NTHREAD_COLS];

static void json_leads_init(void)
{
    for (size_t c = 0; c < NTHREAD_COLS; c++)
        json_lead[c].n = (unsigned char)snprintf(json_lead[c].s, sizeof json_lead[c].s, "%s\"%s\":", c ? "," : "",
                                                 thread_cols[c]);
}

/* Before a value: separator, and the key in JSON. */
static inline void row_key(struct row *r, const char *key)
{
    if (r->col++) {
        if (r->f == F_TSV)
            *r->p++ = '\t';
        else
            *r->p++ = ',';
    }
    if (r->f == F_JSONL) {
        *r->p++ = '"';
        size_t n = __builtin_strlen(key);
        memcpy(r->p, key, n);
        r->p += n;
        *r->p++ = '"';
        *r->p++ = ':';
    }
}

static inline void row_u64(struct row *r, const char *key, uint64_t v)
{
    row_key(r, key);
    r->p = tool_fmt_u64(r->p, v);
}

static inline void row_fixed(struct row *r, const char *key, double v, int dec)
{
    row_key(r, key);
    r->p = tool_fmt_fixed(r->p, v, dec);
}

static inline void row_null(struct row *r, const char *key)
{
    row_key(r, key);
    if (r->f == F_JSONL) {
        memcpy(r->p, "null", 4);
        r->p += 4;
    }
}

/* Thread names as the format writes them, cached by TID: a name is escaped
 * once, not once per row (names change rarely; the cache checks the bytes). */
static struct {
    uint32_t tid; /* 0: empty (a snapshot never holds TID 0) */
    unsigned char rawlen;
    unsigned short esclen;
    char raw[32];
    char esc[TEXT_MAX(31)];
} name_cache[256];

/* Thread rows, the hot path of --threads: one copy of the loop per format,
 * with the format a constant in each, so separators, keys and decimals fold
 * at compile time instead of being decided per value. */
struct shared {
    const char *frame_s, *time_s;
    size_t frame_n, time_n;
};

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE char *lead(char *p, enum fmt f, size_t c)
{
    if (f == F_JSONL) {
        memcpy(p, json_lead[c].s, sizeof json_lead[c].s);
        return p + json_lead[c].n;
    }
    if (c)
        *p++ = f == F_TSV ? '\t' : ',';
    return p;
}

static ALWAYS_INLINE char *name_field(char *p, enum fmt f, uint32_t tid, const char *nm, size_t n)
{
    if (n >= sizeof name_cache[0].raw) /* not a comm name: as it comes (rows reserve room) */
        return f == F_JSONL ? text_json(p, nm, n) : f == F_TSV ? text_tsv(p, nm, n) : text_csv(p, nm, n);
    __typeof__(name_cache[0]) *c = &name_cache[tid & 255];
    if (c->tid != tid || c->rawlen != n || memcmp(c->raw, nm, n) != 0) {
        c->tid = tid;
        c->rawlen = (unsigned char)n;
        memcpy(c->raw, nm, n);
        char *e = f == F_JSONL ? text_json(c->esc, nm, n) : f == F_TSV ? text_tsv(c->esc, nm, n)
                                                                      : text_csv(c->esc, nm, n);
        c->esclen = (unsigned short)(e - c->esc);
    }
    memcpy(p, c->esc, c->esclen);
    return p + c->esclen;
}

static ALWAYS_INLINE void thread_rows(enum fmt f, const felix_delta *d, size_t n, const struct shared *sh,
                                      const felix_source *src)
{
    for (size_t i = 0; i < n; i++) {
        const felix_thread_delta *td = felix_delta_thread(d, i);
        const char *nm = felix_source_thread_name(src, td->tid);
        nm = nm ? nm : "";
        size_t nl = strnlen(nm, 256); /* names are at most 31 bytes: never more than the row's room */
        char *p = oreserve(1024 + TEXT_MAX(nl));
        if (f == F_JSONL)
            *p++ = '{';
        p = lead(p, f, 0);
        memcpy(p, sh->frame_s, sh->frame_n), p += sh->frame_n;
        p = lead(p, f, 1);
        memcpy(p, sh->time_s, sh->time_n), p += sh->time_n;
        p = lead(p, f, 2);
        p = tool_fmt_u64(p, td->tid);
        p = lead(p, f, 3);
        p = name_field(p, f, td->tid, nm, nl);
        p = lead(p, f, 4);
        p = tool_fmt_fixed(p, td->load_pct, 3);
        for (int k = 0; k < 4; k++) {
            p = lead(p, f, 5 + (size_t)k);
            p = tool_fmt_fixed(p, td->value[summary_time_counters[k]], 9);
        }
        for (int k = 0; k < 5; k++) {
            p = lead(p, f, 9 + (size_t)k);
            p = tool_fmt_u64(p, td->d[summary_count_counters[k]]);
        }
        p = lead(p, f, 14);
        if (td->cpu_s >= 0) /* the delta's: CPU time measured at both ends */
            p = tool_fmt_fixed(p, td->cpu_s, 6);
        else if (f == F_JSONL)
            memcpy(p, "null", 4), p += 4;
        p = lead(p, f, 15);
        *p++ = (char)('0' + ((td->state & FELIX_TD_OVER_BUDGET) != 0));
        if (f == F_JSONL)
            *p++ = '}';
        *p++ = '\n';
        olen = (size_t)(p - obuf);
    }
}

static void thread_rows_csv(const felix_delta *d, size_t n, const struct shared *sh, const felix_source *src)
{
    thread_rows(F_CSV, d, n, sh, src);
}

static void thread_rows_tsv(const felix_delta *d, size_t n, const struct shared *sh, const felix_source *src)
{
    thread_rows(F_TSV, d, n, sh, src);
}

static void thread_rows_jsonl(const felix_delta *d, size_t n, const struct shared *sh, const felix_source *src)
{
    thread_rows(F_JSONL, d, n, sh, src);
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

/* ---- summary (summary.c accumulates) ---- */
static void print_summary(tool_summary *s, const felix_rec_header *h, uint64_t freq, enum fmt f, int truncated)
{
    summary_sort_by_jit(s);
    double mean = summary_mean_load(s);
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
        for (int i = 0; i < SUMMARY_NTIMES; i++) {
            snprintf(line, sizeof line, ",\"%s\":%.9f", summary_time_keys[i],
                     (double)s->d[summary_time_counters[i]] / (double)freq);
            ostr(line);
        }
        for (int i = 0; i < SUMMARY_NCOUNTS; i++) {
            snprintf(line, sizeof line, ",\"%s\":%llu", summary_count_keys[i],
                     (unsigned long long)s->d[summary_count_counters[i]]);
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
        summary_sort_by_over(s);
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
        for (size_t i = 0; i < s->nspikes && i < SUMMARY_SPIKES; i++) {
            char fl[80];
            summary_flag_names(s->spikes[i].flags, fl, sizeof fl);
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
    for (int i = 0; i < SUMMARY_NTIMES; i++) {
        snprintf(line, sizeof line, "%-12s %.6f s\n", summary_time_keys[i],
                 (double)s->d[summary_time_counters[i]] / (double)freq);
        ostr(line);
    }
    for (int i = 0; i < SUMMARY_NCOUNTS; i++) {
        snprintf(line, sizeof line, "%-12s %llu\n", summary_count_keys[i],
                 (unsigned long long)s->d[summary_count_counters[i]]);
        ostr(line);
    }
    ostr("busiest threads by JIT time:\n");
    for (size_t i = 0; i < s->nt && i < 5; i++) {
        char nm[TEXT_MAX(32) + 1];
        snprintf(line, sizeof line, "  %-8u %-16s %.6f s\n", s->t[i].tid,
                 s->t[i].name[0] ? text_term_str(nm, sizeof nm, s->t[i].name, 0) : "?", (double)s->t[i].jit / (double)freq);
        ostr(line);
    }
    summary_sort_by_over(s);
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
    for (size_t i = 0; i < s->nspikes && i < SUMMARY_SPIKES; i++) {
        char fl[80];
        summary_flag_names(s->spikes[i].flags, fl, sizeof fl);
        snprintf(line, sizeof line, "  %10.3f s %s\n", s->spikes[i].t, fl);
        ostr(line);
    }
    if (s->nspikes > SUMMARY_SPIKES)
        ostr("  ...\n");
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

int main(int argc, char **argv)
{
    enum { OPT_FROM = 256, OPT_TO, OPT_FPS };
    json_leads_init();
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
            else if (strcmp(optarg, "perfetto") == 0)
                f = F_PERFETTO;
            else {
                return tool_bad_value(prog, c, lo, optarg, "csv, tsv, jsonl or perfetto");
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
    if (outpath && strcmp(outpath, "-") == 0)
        outpath = NULL; /* standard output */
    if (f == F_PERFETTO && (summary || threads)) {
        tool_error(prog, "-f perfetto writes a trace with every thread: not with --%s", summary ? "summary" : "threads");
        return EXIT_USAGE;
    }
    if (f == F_PERFETTO && !outpath && isatty(1)) {
        tool_error(prog, "refusing to write a binary Perfetto trace to a terminal: give -o FILE (or pipe it)");
        return EXIT_USAGE;
    }
    if ((c = tool_check_output(prog, outpath, in, 1)) != 0)
        return c;
    felix_source *src;
    int rc = felix_source_open_recording(&src, in, NULL);
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
    const felix_rec_header *h = felix_source_header(src);
    felix_rec_reader *r = felix_source_reader(src); /* sample numbers, warnings */
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
    pf *trace = NULL;
    if (f == F_PERFETTO && !(trace = pf_open(pf_out, h))) {
        tool_error(prog, "out of memory");
        return EXIT_FAILURE_GENERIC;
    }
    if (!summary && !trace)
        header_line(f, threads ? thread_cols : frame_cols,
                    threads ? sizeof thread_cols / sizeof *thread_cols : sizeof frame_cols / sizeof *frame_cols,
                    regions, threads ? 0 : nreg, threads ? NULL : "mem_process_rss");
    uint64_t *mem = calloc(nreg ? nreg : 1, sizeof *mem);
    uint64_t mem_total = 0, process_rss = 0;
    int have_mem = 0, have_prev = 0, status = EXIT_OK, truncated = 0;
    tool_summary sum;
    summary_init(&sum, (unsigned)fps);
    for (;;) {
        if (interrupted)
            break;
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        int item;
        rc = felix_source_next(src, cur, &ev, &item);
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
            double et = (double)(ev.mono_ns - h->start_mono_ns) / 1e9;
            if (trace && (from < 0 || et >= from) && (to < 0 || et <= to))
                pf_event(trace, &ev);
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
            summary_mem(&sum, m);
        }
        /* A row per frame; with --from, the first sample at or after S is a
         * row too: a baseline row (interval 0) when no sample precedes it. */
        int row = have_prev ? felix_delta_compute(d, prev, cur) == 0
                            : from >= 0 && felix_delta_compute(d, NULL, cur) == 0;
        if (row && t >= (from >= 0 ? from : 0)) {
            const felix_frame *fr = felix_delta_frame(d);
            int64_t frame = felix_rec_sample_number(r);
            if (trace) {
                if (pf_frame(trace, d, cur, src) < 0) {
                    oflush();
                    tool_error(prog, "out of memory");
                    status = EXIT_FAILURE_GENERIC;
                    break;
                }
            } else if (summary && !have_prev) {
                /* a baseline row has no interval to sum */
            } else if (summary) {
                summary_frame(&sum, d, t, (double)(felix_snapshot_get_info(prev)->mono_ns - h->start_mono_ns) / 1e9,
                              src);
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
                    row_fixed(&w, frame_cols[6 + k], fr->value[summary_time_counters[k]], 9);
                for (int k = 0; k < 5; k++)
                    row_u64(&w, frame_cols[10 + k], fr->d[summary_count_counters[k]]);
                for (int k = 0; k < 5; k++)
                    row_u64(&w, frame_cols[15 + k], fr->cum[summary_count_counters[k]]);
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
                /* What every row of the sample shares, formatted once. */
                char frame_s[24], time_s[40];
                struct shared sh = {frame_s, time_s, 0, 0};
                sh.frame_n = (size_t)(tool_fmt_u64(frame_s, (uint64_t)frame) - frame_s);
                sh.time_n = (size_t)(tool_fmt_fixed(time_s, t, 6) - time_s);
                if (f == F_JSONL)
                    thread_rows_jsonl(d, fr->nthreads, &sh, src);
                else if (f == F_TSV)
                    thread_rows_tsv(d, fr->nthreads, &sh, src);
                else
                    thread_rows_csv(d, fr->nthreads, &sh, src);
            }
            if (realtime)
                oflush();
            if (out_failed)
                break;
        }
        felix_snapshot *tmp = prev;
        prev = cur;
        cur = tmp;
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
    summary_free(&sum);
    pf_close(trace);
    felix_delta_free(d);
    felix_snapshot_free(prev);
    felix_snapshot_free(cur);
    felix_source_close(src);
    return status ? status : (interrupted && !follow ? 128 + interrupted : EXIT_OK);
}
