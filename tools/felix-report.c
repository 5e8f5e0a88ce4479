/*
 * felix-report: a recording as one self-contained HTML file (inline SVG and
 * CSS, a little inline JS for hover read-outs), optionally joined with a
 * MangoHud frame-time log.
 *
 * Two passes over the recording through felix_source and felix_delta. The
 * first gives the summary (summary.c, the same accumulator felix-csv
 * --summary uses, so the two agree exactly), the time span, each frame's
 * load (to align a MangoHud log), the worst intervals, the events, the
 * busiest threads and the memory regions. The second reduces every series to
 * min/max envelopes per pixel column (a 10 ms spike still shows in a 24 h
 * chart) and fills in the details of the intervals the tables name. Memory
 * stays bounded by the columns, not the recording's length (the first
 * pass's per-frame array aside: 16 bytes a frame).
 */
#include "common.h"
#include "mangohud.h"
#include "summary.h"
#include "text.h"

#include <errno.h>
#include <felix/felix.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "felix-report";

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-report [OPTIONS] RECORDING\n"
            "Write a recording as one self-contained HTML report (inline SVG and CSS, no network):\n"
            "a header, FEX load over time with the history flags, a per-thread load heat map,\n"
            "rates of JIT blocks, SMC, SIGBUS, soft-float, cache misses and cache-lock time,\n"
            "memory per region, the worst intervals, the busiest threads and lifecycle events.\n"
            "Long recordings are reduced to min/max envelopes per pixel column, so a 10 ms\n"
            "spike still shows. Every figure comes from libfelix; the header's are felix-csv's\n"
            "summary figures, computed by the same code.\n\n"
            "  -o, --output FILE        the report (default: RECORDING without .felix, plus .html;\n"
            "                           '-' writes to standard output); written through a\n"
            "                           temporary file, never over the recording or a FEX object\n"
            "      --from S, --to S     only this range, in seconds from the start\n"
            "      --fps N              frame rate of the frame budget (1 to 1000; default 60)\n"
            "      --mangohud LOG.csv   join a MangoHud frame-time log: frame time on the load\n"
            "                           chart and the worst frames with what FEX did in them\n"
            "      --mangohud-offset S  the log starts S seconds after the recording (may be\n"
            "                           negative); default: from the log's file name\n"
            "                           (NAME_YYYY-MM-DD_HH-MM-SS.csv, local time), refined\n"
            "                           within +-1 s by the best match of frame time and FEX\n"
            "                           load; a name without a date starts at the recording's\n"
            "                           start\n"
            "  -h, --help               this help\n"
            "  -V, --version            version\n\n"
            "The offset used is printed on standard error. Rows of the log that do not parse are\n"
            "skipped and counted (a warning, and a note in the report).\n\n"
            "Exit status:\n"
            "  0    report written\n"
            "  1    out of memory, or any other error (e.g. --help could not be written)\n"
            "  2    usage error, or an output that would destroy data (the recording itself, a\n"
            "       FEX statistics object)\n"
            "  5    a recording of a newer format\n"
            "  6    permission denied\n"
            "  7    I/O error, an unreadable MangoHud log (no header, no frames), or a damaged\n"
            "       recording: the report of what was readable is written, with a note\n"
            "  8    a recording without its end item (never closed): the report is written\n");
}

#define NCOL 1120 /* pixel columns of the line charts */
#define HCOL 280  /* columns of the heat map */
#define NHEAT 16  /* threads in the heat map */
#define NWORST 20
#define NEVENTS 400
#define NREG 7 /* memory regions drawn; the rest are "other" */
#define CHART_W 1250 /* the plot, its left axis, and a right axis for frame time */
#define PLOT_X 70
#define PLOT_W NCOL

/* The rate charts: counter, title, unit, scale (to the unit, per second). */
static const struct {
    int c;
    const char *id, *title, *unit;
    double scale;
} rates[] = {
    {FELIX_C_JIT_COUNT, "blocks", "JIT blocks compiled", "blocks/s", 1},
    {FELIX_C_SMC, "smc", "Self-modifying-code invalidations", "SMC/s", 1},
    {FELIX_C_SIGBUS, "sigbus", "SIGBUS events", "SIGBUS/s", 1},
    {FELIX_C_SOFTFLOAT, "softfloat", "x87 soft-float fallbacks", "fallbacks/s", 1},
    {FELIX_C_CACHE_MISS, "misses", "JIT lookup-cache misses", "misses/s", 1},
    {-1, "locks", "Code-cache lock time (read + write)", "ms/s", 1e3},
};
#define NRATES (sizeof rates / sizeof rates[0])

struct env { /* a min/max envelope per column */
    float min[NCOL], max[NCOL];
};

static void env_init(struct env *e)
{
    for (int i = 0; i < NCOL; i++) {
        e->min[i] = INFINITY;
        e->max[i] = -INFINITY;
    }
}

static void env_add(struct env *e, int col, double v)
{
    if (v < e->min[col])
        e->min[col] = (float)v;
    if (v > e->max[col])
        e->max[col] = (float)v;
}

/* What a table says of one interval (filled in the second pass). */
struct detail {
    int64_t sample;
    double t0, t1, load;
    unsigned flags;
    double v[FELIX_NCOUNTERS]; /* seconds (times) or counts */
    uint32_t top_tid[3];
    double top_load[3];
    char top_name[3][32];
    int filled;
};

struct frame1 { /* pass 1, per frame */
    double t0, t1;
    float load;
    int64_t sample;
};

struct event {
    double t;
    char text[96];
};

struct wframe { /* a worst frame of the MangoHud log */
    double t, ft;
    size_t frame; /* index into frames */
};

struct report {
    const char *in;
    const felix_rec_header *h;
    double from, to;
    unsigned fps;
    tool_summary sum;
    struct frame1 *fr;
    size_t nfr, frcap;
    struct event ev[NEVENTS];
    size_t nev, nev_total;
    size_t nstarted, nexited;
    struct detail worst[NWORST];
    size_t nworst;
    char regions[64][48];
    uint64_t region_peak[64];
    size_t nregions;
    int reg_pick[NREG]; /* indices into regions, -1 unused */
    size_t nreg_pick;
    double t0, t1; /* the span drawn */
    /* pass 2 */
    struct env load, rate[NRATES], ft;
    float mem[NREG + 1][NCOL];
    int have_mem[NCOL];
    float heat[NHEAT][HCOL];
    uint32_t heat_tid[NHEAT];
    char heat_name[NHEAT][32];
    size_t nheat;
    unsigned colflags[NCOL];
    /* MangoHud */
    int mh;
    mh_log log;
    double mh_offset;
    char mh_note[256];
    struct wframe wf[NWORST];
    struct detail wfd[NWORST];
    size_t nwf;
    felix_source *src1; /* pass 1's, open to the end: R->h is its header */
    /* damage */
    int status;
    char damage[512];
};

static int col_of(const struct report *R, double t, int n)
{
    double span = R->t1 - R->t0;
    int c = span > 0 ? (int)((t - R->t0) / span * n) : 0;
    return c < 0 ? 0 : c >= n ? n - 1 : c;
}

static void add_event(struct report *R, double t, const char *text)
{
    R->nev_total++;
    if (R->nev < NEVENTS) {
        R->ev[R->nev].t = t;
        snprintf(R->ev[R->nev].text, sizeof R->ev[R->nev].text, "%s", text);
        R->nev++;
    }
}

/* A top-NWORST list of *n entries whose values val(list, i) gives: the
 * index where value x goes (appended, or over the smallest), or -1 when x
 * does not make the list. */
static long top_slot(size_t *n, const void *list, double (*val)(const void *, size_t), double x)
{
    if (*n < NWORST)
        return (long)(*n)++;
    size_t lo = 0;
    for (size_t i = 1; i < *n; i++)
        if (val(list, i) < val(list, lo))
            lo = i;
    return x > val(list, lo) ? (long)lo : -1;
}

static double load_at_i(const void *list, size_t i) { return ((const struct detail *)list)[i].load; }
static double ft_at_i(const void *list, size_t i) { return ((const struct wframe *)list)[i].ft; }

/* Keep the NWORST frames of highest load (pass 1). */
static void consider_worst(struct report *R, const felix_frame *f, double t0, double t1, int64_t sample)
{
    long k = top_slot(&R->nworst, R->worst, load_at_i, f->load_pct);
    if (k < 0)
        return;
    memset(&R->worst[k], 0, sizeof R->worst[k]);
    R->worst[k].sample = sample;
    R->worst[k].t0 = t0;
    R->worst[k].t1 = t1;
    R->worst[k].load = f->load_pct;
    R->worst[k].flags = f->flags;
}

static void fill_detail(struct detail *x, const felix_delta *d, const felix_source *src)
{
    const felix_frame *f = felix_delta_frame(d);
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        x->v[k] = f->value[k];
    x->load = f->load_pct;
    x->flags = f->flags;
    for (size_t i = 0; i < 3 && i < f->nthreads; i++) { /* threads come by load, highest first */
        const felix_thread_delta *td = felix_delta_thread(d, i);
        x->top_tid[i] = td->tid;
        x->top_load[i] = td->load_pct;
        const char *nm = felix_source_thread_name(src, td->tid);
        snprintf(x->top_name[i], sizeof x->top_name[i], "%s", nm ? nm : "");
    }
    x->filled = 1;
}

/* One pass over the recording; pass 2 reduces into columns. Returns 0, or
 * an exit status for a failure before any sample. */
static int pass(struct report *R, int second)
{
    felix_source *src;
    int rc = felix_source_open_recording(&src, R->in, NULL);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return rc == FELIX_EVERSION ? EXIT_VERSION : rc == FELIX_EACCES ? EXIT_PERMISSION
                                     : rc == FELIX_ENOMEM                ? EXIT_FAILURE_GENERIC
                                                                         : EXIT_IO;
    }
    const felix_rec_header *h = felix_source_header(src);
    felix_rec_reader *r = felix_source_reader(src);
    if (!second)
        R->h = h; /* kept: the source of pass 1 stays open until the end */
    felix_delta *d;
    felix_snapshot *prev, *cur;
    if (felix_delta_new(&d, h->freq_hz, h->ncpus) < 0 || felix_delta_set_fps(d, R->fps) < 0 ||
        felix_snapshot_new(&prev) < 0 || felix_snapshot_new(&cur) < 0) {
        tool_error(prog, "out of memory");
        return EXIT_FAILURE_GENERIC;
    }
    int have_prev = 0;
    size_t k = 0; /* frame index (as in pass 1) */
    double from = R->from >= 0 ? R->from : 0;
    for (;;) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        int item;
        rc = felix_source_next(src, cur, &ev, &item);
        if (rc == FELIX_EEOF)
            break;
        if (rc < 0) {
            if (!second) {
                if (rc == FELIX_ETRUNC) {
                    R->status = EXIT_INCOMPLETE;
                    snprintf(R->damage, sizeof R->damage, "The recording was never closed (a killed recorder, a "
                             "full disk, or a copy taken while recording): %s. Every sample in it is shown.",
                             felix_error_detail());
                } else {
                    R->status = rc == FELIX_ENOMEM ? EXIT_FAILURE_GENERIC : EXIT_IO;
                    snprintf(R->damage, sizeof R->damage, "The recording is damaged: %s. What comes before the "
                             "damage is shown; nothing after it.", felix_error_detail());
                }
            }
            break;
        }
        if (item == FELIX_REC_END)
            continue;
        if (item == FELIX_REC_EVENT) {
            if (second)
                continue;
            if (ev.kind == FELIX_EV_SAMPLES_MISSED) /* as felix-csv --summary counts them: all */
                R->sum.missed += ev.count;
            double et = (double)(ev.mono_ns - h->start_mono_ns) / 1e9;
            if (et < from || (R->to >= 0 && et > R->to))
                continue;
            char text[96];
            switch (ev.kind) {
            case FELIX_EV_THREAD_STARTED: R->nstarted++; continue;
            case FELIX_EV_THREAD_EXITED: R->nexited++; continue;
            case FELIX_EV_SAMPLES_MISSED:
                snprintf(text, sizeof text, "%llu samples missed by the recorder", (unsigned long long)ev.count);
                break;
            case FELIX_EV_INTERVAL_CHANGED:
                snprintf(text, sizeof text, "interval changed to %.3f s", (double)ev.interval_ns / 1e9);
                break;
            case FELIX_EV_PROCESS_EXITED:
                if (ev.has_status)
                    snprintf(text, sizeof text, "process exited (wait status %d)", ev.status);
                else
                    snprintf(text, sizeof text, "process exited");
                break;
            case FELIX_EV_EXEC:
                snprintf(text, sizeof text, "exec: process image %llu", (unsigned long long)ev.count);
                break;
            case FELIX_EV_STOPPED: snprintf(text, sizeof text, "recording stopped"); break;
            default: snprintf(text, sizeof text, "event %d", ev.kind); break;
            }
            add_event(R, et, text);
            continue;
        }
        const felix_snapshot_info *ci = felix_snapshot_get_info(cur);
        double t = (double)(ci->mono_ns - h->start_mono_ns) / 1e9;
        if (R->to >= 0 && t > R->to)
            break;
        const felix_mem *m = felix_snapshot_mem(cur);
        if (m && !second)
            summary_mem(&R->sum, m); /* as felix-csv --summary: every memory sample up to --to */
        if (m && t >= from) {
            if (!second) {
                for (size_t i = 0; i < felix_mem_count(m); i++) {
                    const felix_region *g = felix_mem_region(m, i);
                    size_t j = 0;
                    while (j < R->nregions && strcmp(R->regions[j], g->name) != 0)
                        j++;
                    if (j == R->nregions && R->nregions < 64)
                        snprintf(R->regions[R->nregions++], sizeof R->regions[0], "%s", g->name);
                    if (j < R->nregions && g->rss > R->region_peak[j])
                        R->region_peak[j] = g->rss;
                }
            } else {
                int c = col_of(R, t, NCOL);
                uint64_t picked = 0;
                for (size_t i = 0; i < R->nreg_pick; i++) {
                    const felix_region *g = felix_mem_find(m, R->regions[R->reg_pick[i]]);
                    R->mem[i][c] = g ? (float)g->rss : 0;
                    picked += g ? g->rss : 0;
                }
                uint64_t total = felix_mem_total(m);
                R->mem[NREG][c] = total > picked ? (float)(total - picked) : 0;
                R->have_mem[c] = 1;
            }
        }
        /* Every pair is computed, as felix-csv does (the delta's budget
         * windows see every frame); the range selects what is counted. */
        if (have_prev && felix_delta_compute(d, prev, cur) == 0 && t >= from) {
            const felix_frame *f = felix_delta_frame(d);
            double pt = (double)(felix_snapshot_get_info(prev)->mono_ns - h->start_mono_ns) / 1e9;
            int64_t sample = felix_rec_sample_number(r);
            if (!second) {
                summary_frame(&R->sum, d, t, pt, src);
                if (f->events & FELIX_FRAME_EXEC) {
                    /* the exec event itself says it */
                } else if (f->interval_ns > 0) {
                    consider_worst(R, f, pt, t, sample);
                }
                if (tool_grow((void **)&R->fr, &R->frcap, R->nfr + 1, sizeof *R->fr) < 0) {
                    tool_error(prog, "out of memory");
                    R->status = EXIT_FAILURE_GENERIC;
                    break;
                }
                R->fr[R->nfr].t0 = pt;
                R->fr[R->nfr].t1 = t;
                R->fr[R->nfr].load = (float)f->load_pct;
                R->fr[R->nfr].sample = sample;
                R->nfr++;
            } else if (k < R->nfr) {
                if (f->interval_ns > 0) {
                    /* The interval (pt, t] covers these columns (several
                     * when there are fewer frames than columns). */
                    for (int c = col_of(R, pt, NCOL); c <= col_of(R, t, NCOL); c++) {
                        env_add(&R->load, c, f->load_pct);
                        R->colflags[c] |= f->flags;
                        for (size_t i = 0; i < NRATES; i++) {
                            double v = rates[i].c >= 0 ? f->rate[rates[i].c]
                                                       : f->rate[FELIX_C_CACHE_RDLOCK] + f->rate[FELIX_C_CACHE_WRLOCK];
                            env_add(&R->rate[i], c, v * rates[i].scale);
                        }
                    }
                    int h0 = col_of(R, pt, HCOL), h1 = col_of(R, t, HCOL);
                    for (size_t i = 0; i < f->nthreads; i++) {
                        const felix_thread_delta *td = felix_delta_thread(d, i);
                        for (size_t j = 0; j < R->nheat; j++)
                            if (R->heat_tid[j] == td->tid)
                                for (int hc = h0; hc <= h1; hc++)
                                    if (td->load_pct > R->heat[j][hc])
                                        R->heat[j][hc] = (float)td->load_pct;
                    }
                }
                for (size_t i = 0; i < R->nworst; i++)
                    if (R->worst[i].sample == sample && !R->worst[i].filled)
                        fill_detail(&R->worst[i], d, src);
                for (size_t i = 0; i < R->nwf; i++)
                    if (R->wf[i].frame == k && !R->wfd[i].filled) {
                        R->wfd[i].sample = sample;
                        R->wfd[i].t0 = pt;
                        R->wfd[i].t1 = t;
                        fill_detail(&R->wfd[i], d, src);
                    }
                k++;
            }
        }
        felix_snapshot *tmp = prev;
        prev = cur;
        cur = tmp;
        have_prev = 1;
    }
    if (!second && felix_rec_reader_warning(r) && !R->damage[0]) {
        R->status = EXIT_IO;
        snprintf(R->damage, sizeof R->damage, "The recording's index was damaged and rebuilt: %s.",
                 felix_rec_reader_warning(r));
    }
    felix_delta_free(d);
    felix_snapshot_free(prev);
    felix_snapshot_free(cur);
    if (second)
        felix_source_close(src);
    else
        R->src1 = src;
    return 0;
}

/* ---- MangoHud join ---- */

/* Index of the frame whose interval holds t (frames ordered), or -1. */
static long frame_at(const struct report *R, double t)
{
    size_t lo = 0, hi = R->nfr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (R->fr[mid].t1 < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < R->nfr && t > R->fr[lo].t0 && t <= R->fr[lo].t1)
        return (long)lo;
    return -1;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* How well the log placed at offset matches FEX's activity: the correlation
 * of each frame's time with FEX's mean load over the frame (the intervals it
 * spans, weighted by overlap, so a frame across a change of load gets a
 * share of each side). Frame times are capped at cap (the 95th percentile),
 * so a few very slow frames do not outweigh every other. -2 when undefined. */
static double match(const struct report *R, double cap, double offset)
{
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    size_t n = 0, j = 0;
    for (size_t i = 0; i < R->log.n; i++) {
        double ft = R->log.f[i].frametime_ms;
        double b = offset + (double)R->log.f[i].elapsed_ns / 1e9, a = b - ft / 1e3;
        while (j < R->nfr && R->fr[j].t1 <= a)
            j++;
        if (j == R->nfr)
            break;
        if (a < R->fr[j].t0 || b > R->fr[R->nfr - 1].t1)
            continue; /* not wholly within the recording */
        double w = 0, l = 0;
        for (size_t k = j; k < R->nfr && R->fr[k].t0 < b; k++) {
            double lo = a > R->fr[k].t0 ? a : R->fr[k].t0, hi = b < R->fr[k].t1 ? b : R->fr[k].t1;
            if (hi > lo) {
                w += hi - lo;
                l += (hi - lo) * R->fr[k].load;
            }
        }
        if (w <= 0)
            continue;
        double x = ft < cap ? ft : cap, y = l / w;
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
        n++;
    }
    if (n < 10)
        return -2;
    double vx = sxx - sx * sx / (double)n, vy = syy - sy * sy / (double)n;
    if (vx <= 1e-9 * (sxx + 1) || vy <= 1e-9 * (syy + 1))
        return -2;
    return (sxy - sx * sy / (double)n) / sqrt(vx * vy);
}

/* Place the log: the offset given, or the file name's refined by the best
 * match within +-1 s (50 ms steps, then 5 ms around the best). */
static void align(struct report *R, const char *path, int given, double offset)
{
    char when[64] = "";
    if (given) {
        R->mh_offset = offset;
        snprintf(R->mh_note, sizeof R->mh_note, "offset %+.3f s, as given (--mangohud-offset)", offset);
        return;
    }
    int64_t name_s;
    double base;
    int named = mh_name_time(path, &name_s) == 0;
    if (named) {
        base = (double)name_s - (double)R->h->start_wall_ns / 1e9;
        time_t tt = (time_t)name_s;
        struct tm tm;
        localtime_r(&tt, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S local", &tm);
    } else {
        base = 0;
    }
    double cap = INFINITY;
    double *sorted = malloc((R->log.n ? R->log.n : 1) * sizeof *sorted);
    if (sorted) {
        for (size_t i = 0; i < R->log.n; i++)
            sorted[i] = R->log.f[i].frametime_ms;
        qsort(sorted, R->log.n, sizeof *sorted, by_double);
        cap = sorted[R->log.n * 95 / 100];
        free(sorted);
    }
    double best = base, best_r = match(R, cap, base);
    for (int k = -20; k <= 20; k++) {
        double r = match(R, cap, base + k * 0.05);
        if (r > best_r + 1e-12) {
            best_r = r;
            best = base + k * 0.05;
        }
    }
    double coarse = best;
    for (int k = -10; k <= 10; k++) {
        double r = match(R, cap, coarse + k * 0.005);
        if (r > best_r + 1e-12) {
            best_r = r;
            best = coarse + k * 0.005;
        }
    }
    R->mh_offset = best;
    if (best_r < -1.5)
        snprintf(R->mh_note, sizeof R->mh_note, "offset %+.3f s, from %s (no FEX activity to refine it by)", best,
                 named ? when : "the recording's start: the file name holds no date");
    else
        snprintf(R->mh_note, sizeof R->mh_note, "offset %+.3f s, from %s, refined by %+.3f s (correlation %.2f)",
                 best, named ? when : "the recording's start (the file name holds no date)", best - base, best_r);
}

/* The worst frames (highest frame time) within the recording, and the
 * frame-time envelope. */
static void join(struct report *R)
{
    for (size_t i = 0; i < R->log.n; i++) {
        double t = R->mh_offset + (double)R->log.f[i].elapsed_ns / 1e9;
        if (t < R->t0 || t > R->t1)
            continue;
        double ft = R->log.f[i].frametime_ms;
        env_add(&R->ft, col_of(R, t, NCOL), ft);
        long j = frame_at(R, t);
        if (j < 0)
            continue;
        long k = top_slot(&R->nwf, R->wf, ft_at_i, ft);
        if (k < 0)
            continue;
        R->wf[k].t = t;
        R->wf[k].ft = ft;
        R->wf[k].frame = (size_t)j;
    }
}

/* ---- HTML ---- */

static FILE *o;
static double g_t0, g_span; /* the span drawn */

static void html(const char *s)
{
    fputs(s, o);
}

/* Outside text: valid UTF-8, controls as \xNN (text.h), then HTML-escaped. */
static void html_text(const char *s)
{
    char tmp[TEXT_MAX(512)];
    size_t n = strnlen(s, 512);
    char *end = text_term(tmp, s, n, 0);
    for (const char *p = tmp; p < end; p++) {
        switch (*p) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&#39;", o); break;
        default: fputc(*p, o);
        }
    }
}

static void fmt_time(char *buf, size_t len, double t, double span)
{
    if (span < 120) {
        snprintf(buf, len, "%.*f s", span < 10 ? 2 : 1, t);
        return;
    }
    long s = (long)floor(t);
    if (span < 7200)
        snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
    else
        snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static double nice_step(double range, int ticks)
{
    double raw = range / ticks, p = pow(10, floor(log10(raw > 0 ? raw : 1)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void fmt_num(char *buf, size_t len, double v)
{
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(buf, len, "%.3gG", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, len, "%.3gM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%.3gk", v / 1e3);
    else
        snprintf(buf, len, "%.4g", v);
}

/* Axes of a plot (x: time; y: 0..ymax with unit), inside an open <svg>. */
static void axes(int y0, int h, double ymax, const char *unit)
{
    fprintf(o, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", PLOT_X, y0, PLOT_W, h);
    double step = nice_step(ymax, 4);
    for (double v = 0; v <= ymax * 1.0001; v += step) {
        double y = y0 + h - v / ymax * h;
        char lab[32];
        fmt_num(lab, sizeof lab, v);
        fprintf(o, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"yl\" x=\"%d\" y=\"%.1f\">%s</text>\n",
                PLOT_X, PLOT_X + PLOT_W, y, y, PLOT_X - 6, y + 4, lab);
    }
    fprintf(o, "<text class=\"unit\" x=\"12\" y=\"%d\" transform=\"rotate(-90 12 %d)\">%s</text>\n", y0 + h / 2,
            y0 + h / 2, unit);
    double span = g_span;
    double tstep = nice_step(span, 8);
    static const double nice_t[] = {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200};
    if (span >= 60)
        for (size_t i = 0; i < sizeof nice_t / sizeof *nice_t; i++)
            if (nice_t[i] >= span / 8) {
                tstep = nice_t[i];
                break;
            }
    for (double t = ceil(g_t0 / tstep) * tstep; t <= g_t0 + span + 1e-9; t += tstep) {
        double x = PLOT_X + (t - g_t0) / span * PLOT_W;
        char lab[32];
        fmt_time(lab, sizeof lab, t, span);
        fprintf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>"
                   "<text class=\"xl\" x=\"%.1f\" y=\"%d\">%s</text>\n",
                x, x, y0, y0 + h, x, y0 + h + 16, lab);
    }
}

static void json_arr(const float *v, const int *have, int n, double scale)
{
    fputc('[', o);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', o);
        if ((have && !have[i]) || !isfinite(v[i]))
            fputs("null", o);
        else
            fprintf(o, "%.4g", v[i] * scale);
    }
    fputc(']', o);
}

/* An envelope as a closed path (max left to right, min back), through the
 * columns that have data. */
static void env_path(const struct env *e, int y0, int h, double ymax, const char *cls)
{
    int first = 1;
    fprintf(o, "<path class=\"%s\" d=\"", cls);
    for (int i = 0; i < NCOL; i++)
        if (isfinite(e->max[i])) {
            double v = e->max[i] > ymax ? ymax : e->max[i];
            fprintf(o, "%c%d %.1f", first ? 'M' : 'L', PLOT_X + i, y0 + h - v / ymax * h);
            first = 0;
        }
    for (int i = NCOL; i-- > 0;)
        if (isfinite(e->min[i])) {
            double v = e->min[i] > ymax ? ymax : e->min[i];
            fprintf(o, "L%d %.1f", PLOT_X + i + 1, y0 + h - v / ymax * h);
        }
    fputs(first ? "\"/>\n" : "Z\"/>\n", o);
}

static double env_max(const struct env *e)
{
    double m = 0;
    for (int i = 0; i < NCOL; i++)
        if (isfinite(e->max[i]) && e->max[i] > m)
            m = e->max[i];
    return m;
}

static double nice_max(double v, double floor_)
{
    if (v < floor_)
        v = floor_;
    double s = nice_step(v, 4);
    return ceil(v / s * 1.0001) * s;
}

static void svg_open(const char *id, int height, const char *label)
{
    fprintf(o, "<svg class=\"chart\" id=\"%s\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\" "
               "preserveAspectRatio=\"xMinYMin meet\">\n", id, CHART_W, height, label);
}

static void svg_close(const char *id, int y0, int h)
{
    fprintf(o, "<line class=\"cursor\" x1=\"0\" x2=\"0\" y1=\"%d\" y2=\"%d\" style=\"display:none\"/>\n</svg>\n"
               "<div class=\"readout\" id=\"%s-readout\">&#160;</div>\n", y0, y0 + h, id);
}

static const char *const flag_label[4] = {"JIT", "SMC", "SIGBUS", "soft-float"};

static void chart_load(struct report *R)
{
    int y0 = 10, h = 200;
    double ymax = nice_max(env_max(&R->load), 100);
    int lanes = 4, lane_h = 9, ly = y0 + h + 26;
    int height = ly + lanes * (lane_h + 4) + 10;
    svg_open("chart-load", height, "FEX load over time");
    axes(y0, h, ymax, "FEX load %");
    env_path(&R->load, y0, h, ymax, "env load");
    if (R->mh && R->nwf) {
        double fmax = nice_max(env_max(&R->ft), 10);
        env_path(&R->ft, y0, h, fmax, "env ft");
        double step = nice_step(fmax, 4);
        for (double v = 0; v <= fmax * 1.0001; v += step)
            fprintf(o, "<text class=\"yr\" x=\"%d\" y=\"%.1f\">%g</text>\n", PLOT_X + PLOT_W + 6,
                    y0 + h - v / fmax * h + 4, v);
        fprintf(o, "<text class=\"unit\" x=\"%d\" y=\"%d\" transform=\"rotate(90 %d %d)\">frame time ms</text>\n",
                CHART_W - 14, y0 + h / 2, CHART_W - 14, y0 + h / 2);
    }
    for (int k = 0; k < lanes; k++) {
        int y = ly + k * (lane_h + 4);
        fprintf(o, "<text class=\"lane\" x=\"%d\" y=\"%d\">%s</text>\n", PLOT_X - 6, y + lane_h, flag_label[k]);
        for (int i = 0; i < NCOL; i++)
            if (R->colflags[i] & (1u << k))
                fprintf(o, "<rect class=\"flag f%d\" x=\"%d\" y=\"%d\" width=\"2\" height=\"%d\"/>", k, PLOT_X + i, y,
                        lane_h);
        fputc('\n', o);
    }
    svg_close("chart-load", y0, h);
    html("<p class=\"legend\"><span class=\"key load\"></span>FEX load (min to max in each pixel column)");
    if (R->mh && R->nwf)
        html(" <span class=\"key ft\"></span>MangoHud frame time (right axis)");
    html(" <span class=\"key f0\"></span>high JIT <span class=\"key f1\"></span>high SMC "
         "<span class=\"key f2\"></span>high SIGBUS <span class=\"key f3\"></span>high soft-float</p>\n");
}

static void chart_heat(struct report *R)
{
    int y0 = 10, row = 18, h = (int)R->nheat * row;
    int height = y0 + h + 30;
    svg_open("chart-heatmap", height, "per-thread load heat map");
    fprintf(o, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", PLOT_X + 90, y0, PLOT_W - 90, h);
    double cw = (double)(PLOT_W - 90) / HCOL;
    for (size_t j = 0; j < R->nheat; j++) {
        int y = y0 + (int)j * row;
        fprintf(o, "<text class=\"hl\" x=\"%d\" y=\"%d\">", PLOT_X + 84, y + 13);
        html_text(R->heat_name[j][0] ? R->heat_name[j] : "?");
        fprintf(o, " (%u)</text>\n", R->heat_tid[j]);
        for (int c = 0; c < HCOL; c++) {
            double v = R->heat[j][c];
            if (v < 0.5)
                continue;
            fprintf(o, "<rect class=\"cell\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill-opacity=\"%.2f\"/>",
                    PLOT_X + 90 + c * cw, y + 1, cw + 0.3, row - 2, v >= 100 ? 1.0 : 0.08 + 0.92 * v / 100);
        }
        fputc('\n', o);
    }
    double span = g_span, tstep = nice_step(span, 6);
    for (double t = ceil(g_t0 / tstep) * tstep; t <= g_t0 + span + 1e-9; t += tstep) {
        char lab[32];
        fmt_time(lab, sizeof lab, t, span);
        fprintf(o, "<text class=\"xl\" x=\"%.1f\" y=\"%d\">%s</text>\n",
                PLOT_X + 90 + (t - g_t0) / span * (PLOT_W - 90), y0 + h + 16, lab);
    }
    fprintf(o, "</svg>\n");
    html("<p class=\"legend\">Each row is a thread (the busiest by JIT time), each cell its highest load in that "
         "stretch of time: <span class=\"key cell\" style=\"opacity:.2\"></span>low "
         "<span class=\"key cell\"></span>100%.</p>\n");
}

static void chart_rate(struct report *R, size_t i)
{
    char id[48];
    snprintf(id, sizeof id, "chart-rate-%s", rates[i].id);
    int y0 = 10, h = 110;
    double ymax = nice_max(env_max(&R->rate[i]), 1);
    svg_open(id, y0 + h + 24, rates[i].title);
    axes(y0, h, ymax, rates[i].unit);
    env_path(&R->rate[i], y0, h, ymax, "env rate");
    svg_close(id, y0, h);
}

static void chart_memory(struct report *R)
{
    int y0 = 10, h = 200;
    /* Carry each region's last value forward over columns without a sample. */
    float cur[NREG + 1] = {0};
    int seen = 0, any = 0;
    double top = 0;
    static float stack[NREG + 2][NCOL];
    for (int c = 0; c < NCOL; c++) {
        if (R->have_mem[c]) {
            for (size_t k = 0; k <= NREG; k++)
                cur[k] = R->mem[k][c];
            seen = 1;
        }
        double acc = 0;
        stack[0][c] = 0;
        for (size_t k = 0; k <= NREG; k++) {
            acc += seen ? cur[k] : 0;
            stack[k + 1][c] = (float)acc;
        }
        any |= seen;
        if (acc > top)
            top = acc;
    }
    double ymax = nice_max(top / 1048576.0, 1);
    svg_open("chart-memory", y0 + h + 24, "memory per region");
    axes(y0, h, ymax, "MiB resident");
    if (any) {
        for (size_t k = 0; k <= NREG; k++) {
            if (k < NREG && k >= R->nreg_pick)
                continue;
            fprintf(o, "<path class=\"mem m%zu\" d=\"", k);
            for (int c = 0; c < NCOL; c++)
                fprintf(o, "%c%d %.1f", c ? 'L' : 'M', PLOT_X + c, y0 + h - stack[k + 1][c] / 1048576.0 / ymax * h);
            for (int c = NCOL; c-- > 0;)
                fprintf(o, "L%d %.1f", PLOT_X + c + 1, y0 + h - stack[k][c] / 1048576.0 / ymax * h);
            fputs("Z\"/>\n", o);
        }
    } else {
        fprintf(o, "<text class=\"empty\" x=\"%d\" y=\"%d\">no memory samples in this recording</text>\n",
                PLOT_X + PLOT_W / 2, y0 + h / 2);
    }
    svg_close("chart-memory", y0, h);
    html("<p class=\"legend\">");
    for (size_t k = 0; k < R->nreg_pick; k++) {
        fprintf(o, "<span class=\"key m%zu\"></span>", k);
        html_text(R->regions[R->reg_pick[k]]);
        html(" ");
    }
    fprintf(o, "<span class=\"key m%d\"></span>other regions (stacked, resident bytes)</p>\n", NREG);
}

static void detail_cells(const struct detail *x)
{
    fprintf(o, "<td>%.1f</td><td>%.1f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>",
            x->v[FELIX_C_JIT_TIME] * 1e3, (x->v[FELIX_C_CACHE_RDLOCK] + x->v[FELIX_C_CACHE_WRLOCK]) * 1e3,
            x->v[FELIX_C_JIT_COUNT], x->v[FELIX_C_SMC], x->v[FELIX_C_SIGBUS], x->v[FELIX_C_SOFTFLOAT],
            x->v[FELIX_C_CACHE_MISS]);
    for (int k = 0; k < 3 && x->top_tid[k]; k++) {
        if (k)
            html(", ");
        html_text(x->top_name[k][0] ? x->top_name[k] : "?");
        fprintf(o, " (%u) %.0f%%", x->top_tid[k], x->top_load[k]);
    }
    html("</td>");
}

static int by_load_desc(const void *a, const void *b)
{
    const struct detail *x = a, *y = b;
    return (x->load < y->load) - (x->load > y->load);
}

static int by_ft_desc(const void *a, const void *b)
{
    const struct wframe *x = a, *y = b;
    return (x->ft < y->ft) - (x->ft > y->ft);
}

static const char style[] =
    ":root{color-scheme:light dark;--bg:#fff;--fg:#1d2330;--mut:#5b6475;--grid:#d8dce4;--plot:#f6f7f9;"
    "--load:#2f6fdf;--ft:#d9480f;--cell:#7b2cbf;--f0:#e03131;--f1:#f08c00;--f2:#2b8a3e;--f3:#1971c2;"
    "--m0:#4c6ef5;--m1:#15aabf;--m2:#82c91e;--m3:#fab005;--m4:#fd7e14;--m5:#e64980;--m6:#7950f2;--m7:#adb5bd}"
    "@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e6e9ef;--mut:#9aa3b2;--grid:#2c323c;"
    "--plot:#1b1f26;--load:#6ea8fe;--ft:#ff8a50;--cell:#c77dff;--m7:#6c757d}}"
    "body{background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
    "margin:0 auto;max-width:1240px;padding:16px 20px 40px}"
    "h1{font-size:22px;margin:4px 0 8px}h2{font-size:17px;margin:26px 0 6px}"
    "dl{display:grid;grid-template-columns:repeat(3,max-content minmax(0,1fr));gap:2px 14px;margin:8px 0}"
    "dt{color:var(--mut)}dd{margin:0;overflow-wrap:anywhere}#s-cmdline{grid-column:2/-1}"
    "@media (max-width:900px){dl{grid-template-columns:max-content 1fr}#s-cmdline{grid-column:auto}}"
    "svg.chart{width:100%;height:auto;display:block}"
    ".plot{fill:var(--plot)}.grid{stroke:var(--grid);stroke-width:1}"
    "text{fill:var(--mut);font-size:12px}.yl,.lane,.hl{text-anchor:end}.yr{text-anchor:start}.xl{text-anchor:middle}"
    ".unit{text-anchor:middle;font-size:12px}.empty{text-anchor:middle}"
    ".env.load{fill:var(--load);fill-opacity:.55;stroke:var(--load);stroke-width:1}"
    ".env.rate{fill:var(--load);fill-opacity:.45;stroke:var(--load);stroke-width:1}"
    ".env.ft{fill:var(--ft);fill-opacity:.35;stroke:var(--ft);stroke-width:1}"
    ".flag.f0,.key.f0{fill:var(--f0);background:var(--f0)}.flag.f1,.key.f1{fill:var(--f1);background:var(--f1)}"
    ".flag.f2,.key.f2{fill:var(--f2);background:var(--f2)}.flag.f3,.key.f3{fill:var(--f3);background:var(--f3)}"
    ".cell{fill:var(--cell)}.key.cell{background:var(--cell)}"
    ".mem{fill-opacity:.85}"
    ".m0{fill:var(--m0);background:var(--m0)}.m1{fill:var(--m1);background:var(--m1)}"
    ".m2{fill:var(--m2);background:var(--m2)}.m3{fill:var(--m3);background:var(--m3)}"
    ".m4{fill:var(--m4);background:var(--m4)}.m5{fill:var(--m5);background:var(--m5)}"
    ".m6{fill:var(--m6);background:var(--m6)}.m7{fill:var(--m7);background:var(--m7)}"
    ".cursor{stroke:var(--fg);stroke-width:1;stroke-dasharray:3 3}"
    ".readout{color:var(--mut);font:12px ui-monospace,monospace;min-height:1.4em}"
    ".legend{color:var(--mut);font-size:13px;margin:2px 0 8px}"
    ".key{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:-1px;border-radius:2px}"
    ".key.load{background:var(--load)}.key.ft{background:var(--ft)}"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:3px 8px;border-bottom:1px solid "
    "var(--grid);text-align:right;vertical-align:top}th{color:var(--mut);font-weight:600}"
    "td.l,th.l{text-align:left}.note{border-left:4px solid var(--f0);padding:6px 10px;background:var(--plot)}"
    ".info{border-left:4px solid var(--load);padding:6px 10px;background:var(--plot)}";

static const char script[] =
    "(function(){var D=JSON.parse(document.getElementById('felix-data').textContent);"
    "function f(v){return Math.abs(v)>=1e4?v.toExponential(2):(Math.round(v*100)/100).toString();}"
    "Array.prototype.forEach.call(document.querySelectorAll('svg.chart'),function(svg){"
    "var d=D.series[svg.id];if(!d)return;var out=document.getElementById(svg.id+'-readout');"
    "var cur=svg.querySelector('.cursor');"
    "svg.addEventListener('mousemove',function(e){var p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;"
    "var q=p.matrixTransform(svg.getScreenCTM().inverse());var c=Math.floor(q.x-D.x0);"
    "if(c<0||c>=D.n){cur.style.display='none';return;}"
    "cur.setAttribute('x1',q.x);cur.setAttribute('x2',q.x);cur.style.display='';"
    "var t=D.t0+(c+0.5)/D.n*(D.t1-D.t0);var s='t = '+t.toFixed(3)+' s';"
    "d.forEach(function(z){var a=z.min[c],b=z.max[c];if(a!==null&&b!==null)"
    "s+='   '+z.name+' '+(a===b?f(a):f(a)+' to '+f(b))+' '+z.unit;});out.textContent=s;});"
    "svg.addEventListener('mouseleave',function(){cur.style.display='none';});});"
    "document.body.setAttribute('data-ready','1');})();";

static void series_json(const char *name, const char *unit, const struct env *e, double scale, int first)
{
    fprintf(o, "%s{\"name\":\"%s\",\"unit\":\"%s\",\"min\":", first ? "" : ",", name, unit);
    json_arr(e->min, NULL, NCOL, scale);
    html(",\"max\":");
    json_arr(e->max, NULL, NCOL, scale);
    html("}");
}

/* A fact of the header, with the exact figure felix-csv --summary -f jsonl
 * prints under the same key in data-value. */
static void fact(const char *key, const char *label, const char *value_attr, const char *shown)
{
    fprintf(o, "<dt>%s</dt><dd id=\"s-%s\"", label, key);
    if (value_attr)
        fprintf(o, " data-value=\"%s\"", value_attr);
    html(">");
    html_text(shown);
    html("</dd>\n");
}

static void write_report(struct report *R)
{
    const felix_rec_header *h = R->h;
    tool_summary *s = &R->sum;
    double freq = (double)(h->freq_hz ? h->freq_hz : 1);
    char a[128], b[256];
    html("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>felix report: ");
    html_text(h->name[0] ? h->name : "FEX process");
    fprintf(o, " (%d)</title>\n<style>%s</style>\n</head>\n<body>\n", (int)h->pid, style);
    html("<h1>FEX statistics: ");
    html_text(h->name[0] ? h->name : "?");
    fprintf(o, " (PID %d)</h1>\n", (int)h->pid);
    if (R->damage[0]) {
        html("<p class=\"note\" id=\"damage\">");
        html_text(R->damage);
        html("</p>\n");
    }
    /* Header. */
    html("<section id=\"summary\"><dl>\n");
    fact("cmdline", "command line", NULL, h->cmdline);
    fact("fex_version", "FEX version", NULL, h->fex_version);
    char app[32];
    fact("app_type", "app type", NULL, felix_app_type_name(h->app_type, app, sizeof app));
    snprintf(b, sizeof b, "%s, %u CPUs", h->host, h->ncpus);
    fact("host", "host", NULL, b);
    snprintf(a, sizeof a, "%llu", (unsigned long long)h->freq_hz);
    snprintf(b, sizeof b, "%.6g MHz (%s)", (double)h->freq_hz / 1e6, h->freq_source);
    fact("freq", "counter frequency", a, b);
    time_t st = (time_t)(h->start_wall_ns / 1000000000);
    struct tm tm;
    gmtime_r(&st, &tm);
    strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(a, sizeof a, "%lld", (long long)h->start_wall_ns);
    fact("start", "start", a, b);
    double dur = s->frames ? s->last_t - s->first_t : 0.0;
    snprintf(a, sizeof a, "%.6f", dur);
    snprintf(b, sizeof b, "%.3f s%s", dur, R->from >= 0 || R->to >= 0 ? " (the range asked for)" : "");
    fact("duration_s", "duration", a, b);
    snprintf(a, sizeof a, "%.6f", (double)h->interval_ns / 1e9);
    snprintf(b, sizeof b, "%.3f s", (double)h->interval_ns / 1e9);
    fact("interval_s", "interval", a, b);
    unsigned long long samples = s->frames ? s->frames + 1 : 0;
    snprintf(a, sizeof a, "%llu", samples);
    snprintf(b, sizeof b, "%llu (%llu missed by the recorder)", samples, (unsigned long long)s->missed);
    fact("samples", "samples", a, b);
    snprintf(a, sizeof a, "%.3f", summary_mean_load(s));
    snprintf(b, sizeof b, "%.1f%%", summary_mean_load(s));
    fact("load_mean_pct", "mean FEX load", a, b);
    snprintf(a, sizeof a, "%.3f", s->peak_load);
    snprintf(b, sizeof b, "%.1f%% at %.3f s", s->peak_load, s->peak_t);
    fact("load_peak_pct", "peak FEX load", a, b);
    static const char *const tlabel[SUMMARY_NTIMES] = {"JIT time", "signal time", "cache read-lock time",
                                                       "cache write-lock time"};
    for (int i = 0; i < SUMMARY_NTIMES; i++) {
        double v = (double)s->d[summary_time_counters[i]] / freq;
        snprintf(a, sizeof a, "%.9f", v);
        snprintf(b, sizeof b, "%.3f s", v);
        fact(summary_time_keys[i], tlabel[i], a, b);
    }
    static const char *const clabel[SUMMARY_NCOUNTS] = {"blocks compiled", "SIGBUS", "SMC invalidations",
                                                        "soft-float fallbacks", "cache misses"};
    for (int i = 0; i < SUMMARY_NCOUNTS; i++) {
        snprintf(a, sizeof a, "%llu", (unsigned long long)s->d[summary_count_counters[i]]);
        fact(summary_count_keys[i], clabel[i], a, a);
    }
    snprintf(a, sizeof a, "%llu", (unsigned long long)s->nspikes);
    snprintf(b, sizeof b, "%llu samples over the flag thresholds", (unsigned long long)s->nspikes);
    fact("spikes", "spikes", a, b);
    if (s->peak_rss) {
        snprintf(a, sizeof a, "%llu", (unsigned long long)s->peak_rss);
        snprintf(b, sizeof b, "%.1f MiB resident, FEX %.1f MiB of it", (double)s->peak_rss / 1048576.0,
                 (double)s->peak_fex / 1048576.0);
        fact("process_rss_peak", "memory peak", a, b);
    }
    html("</dl></section>\n");
    if (R->mh) {
        html("<p class=\"info\" id=\"mangohud-note\">MangoHud log: ");
        html_text(R->mh_note);
        fprintf(o, "; %zu frames", R->log.n);
        if (R->log.skipped)
            fprintf(o, ", %zu rows that did not parse skipped", R->log.skipped);
        html(".</p>\n");
    }
    if (!s->frames) {
        html("<p class=\"note\" id=\"empty\">No interval to show: the recording (or the range) holds fewer than two "
             "samples.</p>\n");
    }
    /* Charts. */
    html("<section id=\"load\"><h2>FEX load over time</h2>\n");
    chart_load(R);
    html("</section>\n<section id=\"heatmap\"><h2>Per-thread load</h2>\n");
    if (R->nheat)
        chart_heat(R);
    else
        html("<p>No threads.</p>\n");
    html("</section>\n<section id=\"rates\"><h2>Rates</h2>\n");
    for (size_t i = 0; i < NRATES; i++) {
        fprintf(o, "<h3>%s (%s)</h3>\n", rates[i].title, rates[i].unit);
        chart_rate(R, i);
    }
    html("</section>\n<section id=\"memory\"><h2>Memory per region</h2>\n");
    chart_memory(R);
    html("</section>\n");
    /* Tables. */
    qsort(R->worst, R->nworst, sizeof *R->worst, by_load_desc);
    html("<section id=\"worst\"><h2>Worst intervals</h2>\n<table id=\"table-worst\"><thead><tr><th>time</th>"
         "<th>FEX load %</th><th class=\"l\">flags</th><th>JIT ms</th><th>lock ms</th><th>blocks</th><th>SMC</th>"
         "<th>SIGBUS</th><th>soft-float</th><th>misses</th><th class=\"l\">busiest threads</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < R->nworst; i++) {
        struct detail *x = &R->worst[i];
        char fl[96];
        summary_flag_names(x->flags, fl, sizeof fl);
        fmt_time(a, sizeof a, x->t1, g_span);
        fprintf(o, "<tr data-sample=\"%lld\" data-t=\"%.6f\"><td>%s</td><td>%.1f</td><td class=\"l\">%s</td>",
                (long long)x->sample, x->t1, a, x->load, fl[0] ? fl + 1 : "");
        detail_cells(x);
        html("</tr>\n");
    }
    html("</tbody></table></section>\n");
    /* The threads are in the summary's order already (prepare() sorted them). */
    html("<section id=\"threads\"><h2>Busiest threads</h2>\n<table id=\"table-threads\"><thead><tr><th>TID</th>"
         "<th class=\"l\">name</th><th>JIT s</th><th>signal s</th><th>blocks</th><th>intervals over budget</th>"
         "</tr></thead><tbody>\n");
    for (size_t i = 0; i < s->nt && i < 12; i++) {
        fprintf(o, "<tr data-tid=\"%u\"><td>%u</td>", s->t[i].tid, s->t[i].tid);
        html("<td class=\"l\">");
        html_text(s->t[i].name[0] ? s->t[i].name : "?");
        fprintf(o, "</td><td>%.3f</td><td>%.3f</td><td>%llu</td><td>%llu</td></tr>\n", (double)s->t[i].jit / freq,
                (double)s->t[i].signal / freq, (unsigned long long)s->t[i].blocks, (unsigned long long)s->t[i].over);
    }
    fprintf(o, "</tbody></table><p class=\"legend\">Over budget: intervals in which the thread spent a whole frame "
               "(1/%u s) in JIT and signal handling.</p></section>\n", R->fps);
    html("<section id=\"events\"><h2>Lifecycle events</h2>\n");
    fprintf(o, "<p id=\"churn\">Threads started: %zu; exited: %zu.</p>\n", R->nstarted, R->nexited);
    html("<table id=\"table-events\"><thead><tr><th>time</th><th class=\"l\">event</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < R->nev; i++) {
        fmt_time(a, sizeof a, R->ev[i].t, g_span);
        fprintf(o, "<tr><td>%s</td>", a);
        html("<td class=\"l\">");
        html_text(R->ev[i].text);
        html("</td></tr>\n");
    }
    html("</tbody></table>");
    if (R->nev_total > R->nev)
        fprintf(o, "<p>and %zu more.</p>", R->nev_total - R->nev);
    html("</section>\n");
    if (R->mh) {
        qsort(R->wf, R->nwf, sizeof *R->wf, by_ft_desc);
        html("<section id=\"frames\"><h2>Worst frames (MangoHud) and what FEX did in them</h2>\n"
             "<table id=\"table-frames\"><thead><tr><th>time</th><th>frame ms</th><th>sample</th><th>JIT ms</th>"
             "<th>lock ms</th><th>blocks</th><th>SMC</th><th>SIGBUS</th><th>soft-float</th><th>misses</th>"
             "<th class=\"l\">busiest threads</th></tr></thead><tbody>\n");
        for (size_t i = 0; i < R->nwf; i++) {
            const struct detail *x = NULL;
            for (size_t k = 0; k < R->nwf; k++)
                if (R->wfd[k].filled && R->fr[R->wf[i].frame].sample == R->wfd[k].sample)
                    x = &R->wfd[k];
            fmt_time(a, sizeof a, R->wf[i].t, g_span);
            fprintf(o, "<tr data-sample=\"%lld\" data-t=\"%.6f\" data-ms=\"%.3f\"><td>%s</td><td>%.1f</td><td>%lld</td>",
                    (long long)R->fr[R->wf[i].frame].sample, R->wf[i].t, R->wf[i].ft, a, R->wf[i].ft,
                    (long long)R->fr[R->wf[i].frame].sample);
            if (x)
                detail_cells(x);
            else
                html("<td colspan=\"8\"></td>");
            html("</tr>\n");
        }
        html("</tbody></table>\n<p class=\"legend\">Each frame's figures are those of the sample interval it ended "
             "in.</p></section>\n");
    }
    /* Data for the hover read-outs. */
    fprintf(o, "<script type=\"application/json\" id=\"felix-data\">{\"t0\":%.6f,\"t1\":%.6f,\"n\":%d,\"x0\":%d,"
               "\"series\":{\"chart-load\":[", R->t0, R->t1, NCOL, PLOT_X);
    series_json("FEX load", "%", &R->load, 1, 1);
    if (R->mh && R->nwf)
        series_json("frame time", "ms", &R->ft, 1, 0);
    html("]");
    for (size_t i = 0; i < NRATES; i++) {
        fprintf(o, ",\"chart-rate-%s\":[", rates[i].id);
        series_json(rates[i].title, rates[i].unit, &R->rate[i], 1, 1);
        html("]");
    }
    html("}}</script>\n<script>window.onerror=function(){document.body.setAttribute('data-errors','1');};");
    html(script);
    fprintf(o, "</script>\n<p class=\"legend\">felix-report %s, libfelix.</p>\n</body>\n</html>\n", felix_version());
}

static int by_peak_desc(const void *a, const void *b, void *ctx)
{
    const struct report *R = ctx;
    uint64_t x = R->region_peak[*(const int *)a], y = R->region_peak[*(const int *)b];
    return (x < y) - (x > y);
}

static void prepare(struct report *R)
{
    /* The span drawn: the frames', or the range asked for. */
    R->t0 = R->nfr ? R->fr[0].t0 : 0;
    R->t1 = R->nfr ? R->fr[R->nfr - 1].t1 : 1;
    if (R->t1 <= R->t0)
        R->t1 = R->t0 + 1;
    g_t0 = R->t0;
    g_span = R->t1 - R->t0;
    /* Regions: the largest by peak. */
    int idx[64];
    for (size_t i = 0; i < R->nregions; i++)
        idx[i] = (int)i;
    qsort_r(idx, R->nregions, sizeof *idx, by_peak_desc, R);
    for (size_t i = 0; i < R->nregions && i < NREG; i++)
        R->reg_pick[R->nreg_pick++] = idx[i];
    /* The heat map's threads: the busiest by JIT time (as the summary's). */
    summary_sort_by_jit(&R->sum);
    for (size_t i = 0; i < R->sum.nt && i < NHEAT; i++) {
        R->heat_tid[R->nheat] = R->sum.t[i].tid;
        snprintf(R->heat_name[R->nheat], sizeof R->heat_name[0], "%s", R->sum.t[i].name);
        R->nheat++;
    }
    env_init(&R->load);
    env_init(&R->ft);
    for (size_t i = 0; i < NRATES; i++)
        env_init(&R->rate[i]);
}

static int parse_seconds(const char *s, int allow_negative, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v) || (!allow_negative && v < 0) || fabs(v) > 1e9)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_FROM = 256, OPT_TO, OPT_FPS, OPT_MH, OPT_MHOFF };
    static const struct option lo[] = {{"output", 1, 0, 'o'}, {"from", 1, 0, OPT_FROM}, {"to", 1, 0, OPT_TO},
                                       {"fps", 1, 0, OPT_FPS}, {"mangohud", 1, 0, OPT_MH},
                                       {"mangohud-offset", 1, 0, OPT_MHOFF}, {"help", 0, 0, 'h'},
                                       {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    static struct report rep; /* large: columns */
    struct report *R = &rep;
    R->from = R->to = -1;
    R->fps = FELIX_DEFAULT_FPS;
    const char *outpath = NULL, *mhpath = NULL;
    double mhoff = 0;
    int mhoff_given = 0, c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'o': outpath = optarg; break;
        case OPT_FROM:
        case OPT_TO: {
            double x;
            if (parse_seconds(optarg, 0, &x) < 0)
                return tool_bad_value(prog, c, lo, optarg, "seconds from the start, e.g. 12.5");
            if (c == OPT_FROM)
                R->from = x;
            else
                R->to = x;
            break;
        }
        case OPT_FPS:
            if (tool_parse_uint(optarg, 1, 1000, &v) < 0)
                return tool_bad_value(prog, c, lo, optarg, "frames per second, 1 to 1000");
            R->fps = (unsigned)v;
            break;
        case OPT_MH: mhpath = optarg; break;
        case OPT_MHOFF:
            if (parse_seconds(optarg, 1, &mhoff) < 0)
                return tool_bad_value(prog, c, lo, optarg, "seconds, e.g. 12.5 or -0.4");
            mhoff_given = 1;
            break;
        case 'h': usage(stdout); return tool_stdout_done(prog);
        case 'V': printf("felix-report %s\n", felix_version()); return tool_stdout_done(prog);
        default: return tool_bad_option(prog, c, argv);
        }
    }
    if (optind + 1 != argc) {
        tool_error(prog, optind == argc ? "no recording given" : "one recording at a time");
        return EXIT_USAGE;
    }
    if (mhoff_given && !mhpath) {
        tool_error(prog, "--mangohud-offset needs --mangohud LOG.csv");
        return EXIT_USAGE;
    }
    if (R->from >= 0 && R->to >= 0 && R->to <= R->from) {
        tool_error(prog, "--to %g is not after --from %g", R->to, R->from);
        return EXIT_USAGE;
    }
    R->in = argv[optind];
    if (strcmp(R->in, "-") == 0) {
        tool_error(prog, "a report reads its recording twice: give a file, not standard input");
        return EXIT_USAGE;
    }
    char defpath[4096];
    if (!outpath) {
        size_t n = strlen(R->in);
        if (n > 6 && strcmp(R->in + n - 6, ".felix") == 0)
            n -= 6;
        if (n + 6 > sizeof defpath) {
            tool_error(prog, "the recording's name is too long for a default output: give -o FILE");
            return EXIT_USAGE;
        }
        snprintf(defpath, sizeof defpath, "%.*s.html", (int)n, R->in);
        outpath = defpath;
    }
    int to_stdout = strcmp(outpath, "-") == 0;
    if (!to_stdout && (c = tool_check_output(prog, outpath, R->in, 1)) != 0)
        return c;
    struct stat ist;
    if (stat(R->in, &ist) == 0 && !S_ISREG(ist.st_mode)) {
        tool_error(prog, "%s: not a regular file (a report reads its recording twice)", R->in);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    summary_init(&R->sum, R->fps);
    int st = pass(R, 0);
    if (st)
        return st;
    if (mhpath) {
        char err[512];
        mh_init(&R->log);
        if (mh_read(mhpath, &R->log, err, sizeof err) < 0) {
            tool_error(prog, "%s", err);
            return EXIT_IO;
        }
        R->mh = 1;
    }
    prepare(R);
    if (R->mh) {
        align(R, mhpath, mhoff_given, mhoff);
        join(R);
        fprintf(stderr, "%s: MangoHud log %s: %s\n", prog, mhpath, R->mh_note);
        if (R->log.skipped)
            fprintf(stderr, "%s: MangoHud log %s: %zu rows that did not parse were skipped\n", prog, mhpath,
                    R->log.skipped);
        if (!R->nwf)
            fprintf(stderr, "%s: MangoHud log %s: no frame falls within the recording at that offset\n", prog,
                    mhpath);
    }
    if (R->nfr && (st = pass(R, 1)) != 0)
        return st;
    tool_atomic out;
    if (to_stdout) {
        o = stdout;
    } else {
        if (tool_atomic_open(prog, &out, outpath) < 0)
            return EXIT_IO;
        o = out.f;
    }
    write_report(R);
    if (to_stdout) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
            tool_error(prog, "cannot write the report: %s", strerror(errno));
            return EXIT_IO;
        }
    } else if (tool_atomic_commit(prog, &out) < 0) {
        return EXIT_IO;
    }
    if (R->damage[0])
        tool_error(prog, "%s: %s", R->in, R->damage);
    mh_free(&R->log);
    summary_free(&R->sum);
    free(R->fr);
    felix_source_close(R->src1);
    return R->status;
}
