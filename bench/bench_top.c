/* Benchmark: felix-top's render time per frame at 80x24 and 200x60 (drawing
 * the model into curses and updating a terminal that writes to /dev/null).
 * Prints the median and p99 per size. Target: p99 <= 2 ms. */
#define _XOPEN_SOURCE_EXTENDED 1
#include "../tools/top/top.h"
#include "bench_common.h"

#include <curses.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(struct top_model *m, int frame)
{
    m->pid = 4242;
    snprintf(m->name, sizeof m->name, "game.exe");
    snprintf(m->fex_version, sizeof m->fex_version, "FEX-2610-g1234567");
    snprintf(m->app_type, sizeof m->app_type, "wow64");
    m->interval_ns = 1000000000;
    m->freq_hz = 1000000000;
    m->utf8 = 1;
    m->have_frame = 1;
    m->nthreads = 32;
    m->load_pct = 40 + frame % 30;
    for (int k = 0; k < FELIX_NCOUNTERS; k++) {
        m->rate[k] = 1000.0 * (k + 1) + frame;
        m->cum[k] = 100000ull * (uint64_t)(k + 1) * (uint64_t)(frame + 1);
    }
    m->nrows = 32;
    for (int i = 0; i < 32; i++) {
        struct top_row *r = &m->rows[i];
        r->tid = 1000 + (uint32_t)i;
        snprintf(r->name, sizeof r->name, "worker-%d", i);
        r->load = (double)((i * 7 + frame) % 100);
        r->cpu_share = 50;
        r->jit_count = (uint64_t)(i * 1000 + frame);
    }
    m->have_mem = 1;
    m->nregions = 12;
    for (int i = 0; i < 12; i++) {
        snprintf(m->regions[i].name, sizeof m->regions[i].name, "FEXMem_Region%d", i);
        m->regions[i].rss = (uint64_t)(i + 1) << 20;
        m->mem_total += m->regions[i].rss;
    }
    m->hist_head = (m->hist_head + 1) % TOP_HIST;
    m->hist[m->hist_head].load = m->load_pct;
    m->hist[m->hist_head].flags = frame % 7 == 0 ? FELIX_FLAG_HIGH_SMC : 0;
    m->hist[m->hist_head].width = 1;
    if (m->hist_n < TOP_HIST)
        m->hist_n++;
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8");
    FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
    SCREEN *scr = newterm("xterm-256color", out, in);
    if (!scr) {
        fprintf(stderr, "bench_top: no xterm-256color terminfo\n");
        return 1;
    }
    static struct top_row rows[64];
    static struct top_model m;
    memset(&m, 0, sizeof m);
    m.rows = rows;
    m.rows_cap = 64;
    m.color = has_colors();
    top_colors(&m);
    static const int sizes[][2] = {{80, 24}, {200, 60}};
    enum { N = 3000 };
    static int64_t t[N];
    for (int s = 0; s < 2; s++) {
        resizeterm(sizes[s][1], sizes[s][0]);
        for (int i = 0; i < N + 200; i++) {
            fill(&m, i);
            int64_t a = bench_ns();
            top_draw(&m);
            refresh();
            int64_t b = bench_ns();
            if (i >= 200)
                t[i - 200] = b - a;
        }
        int64_t med = bench_quantile(t, N, 0.5), p99 = bench_quantile(t, N, 0.99);
        endwin();
        fprintf(stdout, "felix-top render %dx%d: median %.3f ms, p99 %.3f ms per frame\n", sizes[s][0], sizes[s][1],
                (double)med / 1e6, (double)p99 / 1e6);
        fflush(stdout);
    }
    /* A 16 MiB segment's worth of rows (209,714): the panel picks the rows
     * that fit with one pass, it does not sort them all. */
    enum { HUGE = 209714, HN = 20 };
    struct top_model *hm = calloc(1, sizeof *hm);
    hm->rows = calloc(HUGE, sizeof *hm->rows);
    hm->rows_cap = HUGE;
    hm->nrows = HUGE;
    hm->freq_hz = 1000000000;
    hm->utf8 = 1;
    hm->have_frame = 1;
    hm->nthreads = HUGE;
    for (size_t i = 0; i < HUGE; i++) {
        hm->rows[i].tid = 0x40000000u + (uint32_t)i;
        hm->rows[i].load = (double)((i * 7919) % 10007) / 100.0;
        hm->rows[i].cpu_share = -1;
    }
    top_reindex(hm);
    resizeterm(60, 200);
    for (int i = 0; i < HN; i++) {
        hm->rows[(size_t)i * 977 % HUGE].load += 1; /* the order moves a little */
        int64_t a = bench_ns();
        top_draw(hm);
        refresh();
        t[i] = bench_ns() - a;
    }
    endwin();
    int64_t med = bench_quantile(t, HN, 0.5), mx = bench_quantile(t, HN, 1.0);
    fprintf(stdout, "felix-top render 200x60 with %d threads: median %.3f ms, max %.3f ms per frame\n", HUGE,
            (double)med / 1e6, (double)mx / 1e6);
    free(hm->rows);
    free(hm->row_index);
    free(hm->view);
    free(hm);
    delscreen(scr);
    return 0;
}
