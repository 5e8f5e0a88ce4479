/*
 * felix-top's panels. Each draws a part of the model into stdscr within the
 * rows it is given, truncating to the width: nothing wraps, nothing overlaps.
 * Panels never read shared memory or recordings; they draw the model.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include "top.h"

#include "../text.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_BAR = 1, C_WARN, C_HOT, C_TITLE, C_JIT, C_SMC, C_SIGBUS, C_SOFT, C_DIM, C_BANNER, C_SEL };

void top_colors(struct top_model *m)
{
    if (!m->color)
        return;
    start_color();
    use_default_colors();
    init_pair(C_BAR, COLOR_GREEN, -1);
    init_pair(C_WARN, COLOR_YELLOW, -1);
    init_pair(C_HOT, COLOR_RED, -1);
    init_pair(C_TITLE, COLOR_BLACK, COLOR_CYAN);
    init_pair(C_JIT, COLOR_MAGENTA, -1);
    init_pair(C_SMC, COLOR_BLUE, -1);
    init_pair(C_SIGBUS, COLOR_CYAN, -1);
    init_pair(C_SOFT, COLOR_GREEN, -1);
    init_pair(C_DIM, COLOR_WHITE, -1);
    init_pair(C_BANNER, COLOR_WHITE, COLOR_RED);
    init_pair(C_SEL, COLOR_BLACK, COLOR_YELLOW);
}

static int color(const struct top_model *m, int pair) { return m->color ? COLOR_PAIR(pair) : 0; }

/* Put s at (y, x), at most n cells (ASCII text). */
static void put(int y, int x, const char *s, int n)
{
    if (n > 0 && y >= 0 && y < LINES && x < COLS)
        mvaddnstr(y, x, s, n < COLS - x ? n : COLS - x);
}

/* A horizontal bar of frac (0..1) over width cells: eighth blocks in UTF-8. */
static void bar(const struct top_model *m, int y, int x, int width, double frac, int attr)
{
    static const char *const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    if (width <= 0 || y < 0 || y >= LINES)
        return;
    if (frac < 0)
        frac = 0;
    if (frac > 1)
        frac = 1;
    int units = (int)(frac * width * 8 + 0.5);
    move(y, x);
    attron(attr);
    int cells = 0;
    for (; cells < units / 8 && cells < width; cells++)
        addstr(m->utf8 ? "█" : "#");
    if (cells < width && units % 8) {
        addstr(m->utf8 ? eighths[units % 8] : (units % 8 >= 4 ? "+" : ""));
        if (m->utf8 || units % 8 >= 4)
            cells++;
    }
    attroff(attr);
    for (; cells < width; cells++)
        addch(m->utf8 ? ' ' : '.');
}

static void human_bytes(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ull << 30))
        snprintf(buf, len, "%.1f GiB", (double)b / (1u << 30));
    else if (b >= (1u << 20))
        snprintf(buf, len, "%.1f MiB", (double)b / (1u << 20));
    else
        snprintf(buf, len, "%.0f KiB", (double)b / 1024);
}

static void human_interval(int64_t ns, char *buf, size_t len)
{
    if (ns >= 1000000000 && ns % 1000000000 == 0)
        snprintf(buf, len, "%llds", (long long)(ns / 1000000000));
    else if (ns >= 1000000)
        snprintf(buf, len, "%gms", (double)ns / 1e6);
    else
        snprintf(buf, len, "%gus", (double)ns / 1e3);
}

static void status_bar(const struct top_model *m)
{
    char iv[32], buf[512];
    human_interval(m->interval_ns, iv, sizeof iv);
    const char *state = m->state == ST_EXITED ? "PROCESS EXITED"
                        : m->view_paused      ? "PAUSED"
                        : m->replay           ? (m->replay_paused ? "REPLAY (paused)" : "REPLAY")
                                              : "LIVE";
    /* The state, the recording and any note first: they must survive a
     * narrow terminal. */
    char image[64] = "";
    if (m->restarting)
        snprintf(image, sizeof image, " | restarting (exec)");
    else if (m->image > 1)
        snprintf(image, sizeof image, " | exec'd: image %u", m->image);
    /* Names, paths and messages come from outside: shown escaped (text.h). */
    char rec[TEXT_MAX(64) + 1], msg[TEXT_MAX(128) + 1], name[TEXT_MAX(32) + 1], fex[TEXT_MAX(64) + 1];
    int ascii = !m->utf8;
    snprintf(buf, sizeof buf, " felix-top %s | %s%s%s%s | %s | %s%sPID %d %s | %s | %s | Head %u Size %u",
             felix_version(), state, image, m->record_path ? " | REC " : "",
             m->record_path ? text_term_str(rec, sizeof rec, m->record_path, ascii) : "", iv,
             m->message ? text_term_str(msg, sizeof msg, m->message, ascii) : "", m->message ? " | " : "", m->pid,
             text_term_str(name, sizeof name, m->name, ascii), text_term_str(fex, sizeof fex, m->fex_version, ascii),
             m->app_type, m->head, m->size);
    attron(A_REVERSE);
    move(0, 0);
    for (int i = 0; i < COLS; i++)
        addch(' ');
    put(0, 0, buf, COLS);
    attroff(A_REVERSE);
}

static void progress_bar(const struct top_model *m, int y)
{
    char left[64], right[64];
    int t = (int)m->time_s, T = (int)m->total_s;
    snprintf(left, sizeof left, " %02d:%02d:%04.1f ", t / 3600, t / 60 % 60, m->time_s - (t / 60) * 60);
    snprintf(right, sizeof right, " %02d:%02d:%02d  %gx ", T / 3600, T / 60 % 60, T % 60, m->speed);
    int lw = (int)strlen(left), rw = (int)strlen(right);
    put(y, 0, left, lw);
    bar(m, y, lw, COLS - lw - rw, m->total_s > 0 ? m->time_s / m->total_s : 0, color(m, C_BAR));
    put(y, COLS - rw, right, rw);
}

/* A panel's title row; remembers where it is for mouse clicks. */
static void title(struct top_model *m, int p, int y, const char *text)
{
    char buf[512];
    snprintf(buf, sizeof buf, " %s %s", m->collapsed[p] ? (m->utf8 ? "▸" : "+") : (m->utf8 ? "▾" : "-"), text);
    int attr = m->selected == p ? (m->color ? COLOR_PAIR(C_SEL) : A_REVERSE) : (A_BOLD | color(m, C_TITLE));
    attron(attr);
    move(y, 0);
    for (int i = 0; i < COLS; i++)
        addch(' ');
    put(y, 0, buf, COLS);
    attroff(attr);
    m->title_row[p] = y;
}

static const char *const sort_names[] = {"load", "blocks", "TID", "name"};

static void counters(const struct top_model *m, int y, int rows)
{
    const struct top_model *f = m;
    double F = (double)m->freq_hz;
    char items[10][64];
    snprintf(items[0], 64, "FEX load   %6.1f%%", f->load_pct);
    snprintf(items[1], 64, "JIT time   %7.1fms/s %8.2fs", f->rate[FELIX_C_JIT_TIME] * 1e3, (double)f->cum[FELIX_C_JIT_TIME] / F);
    snprintf(items[2], 64, "signal     %7.1fms/s %8.2fs", f->rate[FELIX_C_SIGNAL_TIME] * 1e3, (double)f->cum[FELIX_C_SIGNAL_TIME] / F);
    snprintf(items[3], 64, "rd lock    %7.1fms/s %8.2fs", f->rate[FELIX_C_CACHE_RDLOCK] * 1e3, (double)f->cum[FELIX_C_CACHE_RDLOCK] / F);
    snprintf(items[4], 64, "wr lock    %7.1fms/s %8.2fs", f->rate[FELIX_C_CACHE_WRLOCK] * 1e3, (double)f->cum[FELIX_C_CACHE_WRLOCK] / F);
    snprintf(items[5], 64, "JIT count  %9.0f/s %10llu", f->rate[FELIX_C_JIT_COUNT], (unsigned long long)f->cum[FELIX_C_JIT_COUNT]);
    snprintf(items[6], 64, "SIGBUS     %9.0f/s %10llu", f->rate[FELIX_C_SIGBUS], (unsigned long long)f->cum[FELIX_C_SIGBUS]);
    snprintf(items[7], 64, "SMC        %9.0f/s %10llu", f->rate[FELIX_C_SMC], (unsigned long long)f->cum[FELIX_C_SMC]);
    snprintf(items[8], 64, "soft-float %9.0f/s %10llu", f->rate[FELIX_C_SOFTFLOAT], (unsigned long long)f->cum[FELIX_C_SOFTFLOAT]);
    snprintf(items[9], 64, "cache miss %9.0f/s %10llu", f->rate[FELIX_C_CACHE_MISS], (unsigned long long)f->cum[FELIX_C_CACHE_MISS]);
    int colw = 40, ncol = COLS / colw > 0 ? COLS / colw : 1;
    for (int i = 0; i < 10; i++) {
        int r = i / ncol, c = i % ncol;
        if (r >= rows)
            break;
        put(y + r, c * colw + 1, items[i], colw - 1);
    }
}

static int counter_rows(void)
{
    int ncol = COLS / 40 > 0 ? COLS / 40 : 1;
    return (10 + ncol - 1) / ncol;
}

static void jit_panel(struct top_model *m, int y, int h)
{
    char t[160];
    snprintf(t, sizeof t, "JIT  FEX load %.1f%%  %u threads  sort: %s (s)  budget: %u fps, %.1f ms (b)",
             m->load_pct, m->nthreads, sort_names[m->sort], m->fps, m->fps ? 1000.0 / m->fps : 0.0);
    title(m, P_JIT, y, t);
    if (m->collapsed[P_JIT] || h <= 1)
        return;
    int crow = counter_rows();
    if (crow > h - 2)
        crow = h - 2 > 0 ? h - 2 : 0;
    int trows = h - 1 - crow; /* header + threads */
    /* Only the rows that fit are chosen, with one pass over all of them. */
    int over = 0; /* a JIT/CPU share above 100% is shown (see the legend) */
    size_t nview = top_select_rows(m, trows > 1 ? (size_t)(trows - 1) : 0);
    for (size_t i = 0; i < nview; i++)
        over |= m->rows[m->view[i]].cpu_share > 100.0;
    if (over && nview + 1 >= (size_t)trows && nview > 0) /* room for the legend */
        nview--;
    const int fixed = 8 + 1 + 16 + 1 + 7 + 1 + 1 + 8 + 1 + 6 + 1 + 10;
    int bw = COLS - fixed - 1;
    if (bw < 4)
        bw = 0;
    if (trows > 0) {
        char hd[160];
        snprintf(hd, sizeof hd, "%7s %-16s %6s %-*s %8s %6s %10s", "TID", "NAME", "LOAD", bw + 1, bw ? " " : "",
                 "JIT/CPU", "LOST", "BLOCKS");
        attron(A_BOLD);
        put(y + 1, 0, hd, COLS);
        attroff(A_BOLD);
    }
    for (int i = 0; (size_t)i < nview; i++) {
        const struct top_row *r = &m->rows[m->view[i]];
        int yy = y + 2 + i;
        char line[160], share[16];
        if (r->cpu_share > 100.0) /* JIT time is wall time: see the legend */
            snprintf(share, sizeof share, "  >100%%*");
        else if (r->cpu_share >= 0)
            snprintf(share, sizeof share, "%7.0f%%", r->cpu_share);
        else
            snprintf(share, sizeof share, "%8s", "-");
        int attr = r->exited ? (A_DIM | color(m, C_DIM)) : 0;
        attron(attr);
        char nm[TEXT_MAX(32) + 1];
        snprintf(line, sizeof line, "%7u %-16.16s %5.1f%% ", r->tid,
                 r->name[0] ? text_term_str(nm, sizeof nm, r->name, !m->utf8) : "?", r->load);
        put(yy, 0, line, COLS);
        attroff(attr);
        int lvl = r->load >= 75 ? C_HOT : r->load >= 50 ? C_WARN : C_BAR;
        if (bw)
            bar(m, yy, 8 + 1 + 16 + 1 + 7, bw, r->load / 100.0, color(m, lvl));
        /* Frames it lost to the budget; ! when it did in the last sample. */
        char lost[16] = "";
        if (r->budget_frames)
            snprintf(lost, sizeof lost, "%s%u", r->over_budget ? "!" : "", r->budget_frames);
        snprintf(line, sizeof line, " %s %6s %10llu", share, lost, (unsigned long long)r->jit_count);
        if (r->over_budget)
            attron(A_BOLD | color(m, C_HOT));
        put(yy, COLS - 27 < 0 ? 0 : COLS - 27, line, 27);
        if (r->over_budget)
            attroff(A_BOLD | color(m, C_HOT));
    }
    if (over && trows > 1) {
        attron(A_DIM);
        put(y + 2 + (int)nview, 0,
            " * JIT time above the thread's CPU time: it was compiling but off the CPU (preempted or blocked)",
            COLS);
        attroff(A_DIM);
    }
    counters(m, y + h - crow, crow);
}

static void mem_panel(struct top_model *m, int y, int h)
{
    char t[160], tot[32], all[32];
    human_bytes(m->mem_total, tot, sizeof tot);
    human_bytes(m->process_rss, all, sizeof all);
    if (!m->have_mem)
        snprintf(t, sizeof t, "Memory  %s", m->collapsed[P_MEM] ? "(read when open)" : "(not sampled yet)");
    else if (m->process_rss) /* FEX's share of the whole process */
        snprintf(t, sizeof t, "Memory  FEX %s of %s RSS (%.0f%%) in %zu FEX regions; %u mappings", tot, all,
                 100.0 * (double)m->mem_total / (double)m->process_rss, m->nregions, m->process_maps);
    else
        snprintf(t, sizeof t, "Memory  %s in %zu FEX regions", tot, m->nregions);
    title(m, P_MEM, y, t);
    if (m->collapsed[P_MEM] || h <= 1)
        return;
    /* Largest regions first. */
    size_t order[FELIX_MEM_MAX_REGIONS];
    for (size_t i = 0; i < m->nregions; i++)
        order[i] = i;
    for (size_t i = 1; i < m->nregions; i++)
        for (size_t j = i; j > 0 && m->regions[order[j]].rss > m->regions[order[j - 1]].rss; j--) {
            size_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    uint64_t max = m->nregions ? m->regions[order[0]].rss : 1;
    for (int i = 0; i < h - 1 && (size_t)i < m->nregions; i++) {
        char line[128], sz[32];
        human_bytes(m->regions[order[i]].rss, sz, sizeof sz);
        char nm[TEXT_MAX(48) + 1];
        unsigned maps = m->regions[order[i]].mappings;
        snprintf(line, sizeof line, " %-22.22s %10s %5u %-4s ",
                 text_term_str(nm, sizeof nm, m->regions[order[i]].name, !m->utf8), sz, maps, maps == 1 ? "map" : "maps");
        put(y + 1 + i, 0, line, COLS);
        int bw = COLS - 47;
        if (bw > 2)
            bar(m, y + 1 + i, 46, bw, max ? (double)m->regions[order[i]].rss / (double)max : 0, color(m, C_SIGBUS));
    }
}

static void hist_panel(struct top_model *m, int y, int h)
{
    title(m, P_HIST, y, m->utf8 ? "History  FEX load; flags: ■JIT ■SMC ■SIGBUS ■soft-float ■budget"
                                : "History  FEX load; flags: J=JIT S=SMC B=SIGBUS F=soft-float L=budget");
    if (m->collapsed[P_HIST] || h <= 3)
        return;
    int chart = h - 3; /* chart rows, a flag row, an axis row */
    int fy = y + 1 + chart, ay = fy + 1;
    if (m->hist_n == 0)
        return;
    /* Columns per sample: a sample's real width relative to the newest one. */
    double unit = m->hist[m->hist_head].width > 0 ? m->hist[m->hist_head].width : 1;
    int x = COLS - 1;
    double span = 0;
    int next_label = COLS - 1;
    for (size_t k = 0; k < m->hist_n && x >= 0; k++) {
        const struct top_hist *e = &m->hist[(m->hist_head + TOP_HIST - k) % TOP_HIST];
        int cols = (int)(e->width / unit + 0.5);
        if (cols < 1)
            cols = 1;
        double load = e->load > 100 ? 100 : e->load < 0 ? 0 : e->load;
        int lvl = load >= 75 ? C_HOT : load >= 50 ? C_WARN : C_BAR;
        int units = (int)(load / 100.0 * chart * 8 + 0.5);
        for (int c = 0; c < cols && x >= 0; c++, x--) {
            attron(color(m, lvl));
            for (int r = 0; r < chart; r++) {
                int fill = units - r * 8;
                const char *g;
                static const char *const v8[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
                if (fill >= 8)
                    g = m->utf8 ? "█" : "#";
                else if (fill > 0)
                    g = m->utf8 ? v8[fill] : (fill >= 4 ? "#" : ".");
                else
                    g = " ";
                mvaddstr(y + chart - r, x, g);
            }
            attroff(color(m, lvl));
            /* The flags, as FEX's viewer marks them. */
            const char *mark = " ";
            int pair = 0;
            if (e->flags & FELIX_FLAG_HIGH_JIT)
                mark = m->utf8 && m->color ? "■" : "J", pair = C_JIT;
            else if (e->flags & FELIX_FLAG_HIGH_SMC)
                mark = m->utf8 && m->color ? "■" : "S", pair = C_SMC;
            else if (e->flags & FELIX_FLAG_HIGH_SIGBUS)
                mark = m->utf8 && m->color ? "■" : "B", pair = C_SIGBUS;
            else if (e->flags & FELIX_FLAG_HIGH_SOFTFLOAT)
                mark = m->utf8 && m->color ? "■" : "F", pair = C_SOFT;
            else if (e->flags & FELIX_FLAG_OVER_BUDGET)
                mark = m->utf8 && m->color ? "■" : "L", pair = C_HOT;
            attron(color(m, pair));
            mvaddstr(fy, x, mark);
            attroff(color(m, pair));
            mvaddstr(ay, x, " ");
        }
        span += e->width;
        if (x < next_label - 8 && x >= 0) { /* a time label every ~10 columns */
            char lab[16];
            snprintf(lab, sizeof lab, "-%.0fs", span);
            put(ay, x + 1, lab, (int)strlen(lab));
            next_label = x;
        }
    }
}

static void help_overlay(void)
{
    static const char *const lines[] = {
        "felix-top keys",
        "",
        "Up/Down, k/j   select a panel",
        "Enter/Right    collapse or expand it (or click its title)",
        "s              cycle the thread order",
        "+ / -          sampling interval (live; down to 1 ms)",
        "p              pause the view (sampling goes on)",
        "b              frame budget: 30/60/90/120/144 fps",
        "LOST           frames lost: a thread spent 1/fps of JIT +",
        "               signal time within a frame's worth of time",
        "               (the interval, or the last samples spanning",
        "               a frame); ! marks the last sample",
        "JIT/CPU >100%*  JIT time counts wall time: the thread was",
        "               compiling but preempted or blocked",
        "exec'd         the process exec'd (same PID, new image);",
        "               no figure spans two images",
        "?              this help      q   quit",
        "",
        "Replay: Space pause, Left/Right one sample,",
        "        PgUp/PgDn ten seconds, [ ] speed, Home/End",
    };
    int n = (int)(sizeof lines / sizeof *lines), w = 62;
    if (w > COLS - 2)
        w = COLS - 2;
    int y0 = (LINES - n - 2) / 2, x0 = (COLS - w) / 2;
    if (y0 < 0)
        y0 = 0;
    attron(A_REVERSE);
    for (int i = 0; i < n + 2 && y0 + i < LINES; i++) {
        move(y0 + i, x0);
        for (int c = 0; c < w; c++)
            addch(' ');
        if (i > 0 && i <= n)
            put(y0 + i, x0 + 2, lines[i - 1], w - 4);
    }
    attroff(A_REVERSE);
}

static void banner(const struct top_model *m, int y)
{
    char b[96];
    if (m->exit_known && ((m->exit_status & 0x7f) == 0))
        snprintf(b, sizeof b, "  PROCESS EXITED (status %d)  press q to quit  ", m->exit_status >> 8 & 0xff);
    else if (m->exit_known)
        snprintf(b, sizeof b, "  PROCESS EXITED (signal %d)  press q to quit  ", m->exit_status & 0x7f);
    else
        snprintf(b, sizeof b, "  PROCESS EXITED  press q to quit  ");
    int w = (int)strlen(b), x = (COLS - w) / 2;
    attron(A_BOLD | (m->color ? COLOR_PAIR(C_BANNER) : A_REVERSE));
    put(y, x < 0 ? 0 : x, b, COLS);
    attroff(A_BOLD | (m->color ? COLOR_PAIR(C_BANNER) : A_REVERSE));
}

void top_draw(struct top_model *m)
{
    erase();
    for (int p = 0; p < P_COUNT; p++)
        m->title_row[p] = -1;
    status_bar(m);
    int y = 1;
    if (m->replay && m->seekable) {
        progress_bar(m, 1);
        y = 2;
    }
    int avail = LINES - y - 1; /* the last row holds the key hints */
    /* Heights: collapsed panels take their title row; history gets a quarter,
     * memory its regions (at most a quarter), the JIT panel the rest. */
    int hh = m->collapsed[P_HIST] ? 1 : avail / 4 > 5 ? avail / 4 : 5;
    int mh = m->collapsed[P_MEM] ? 1 : (int)m->nregions + 1;
    if (!m->collapsed[P_MEM] && mh > avail / 4)
        mh = avail / 4 > 3 ? avail / 4 : 3;
    int jh = avail - hh - mh;
    if (m->collapsed[P_JIT]) {
        int spare = jh - 1;
        jh = 1;
        if (!m->collapsed[P_HIST])
            hh += spare;
        else if (!m->collapsed[P_MEM])
            mh += spare;
    }
    if (jh < 1) { /* a tiny terminal: titles only */
        jh = hh = mh = 1;
    }
    if (y < LINES)
        jit_panel(m, y, jh);
    if (y + jh < LINES)
        mem_panel(m, y + jh, mh);
    if (y + jh + mh < LINES)
        hist_panel(m, y + jh + mh, avail - jh - mh);
    if (m->state == ST_EXITED)
        banner(m, y + 2 < LINES ? y + 2 : y);
    const char *hints = m->replay ? " q quit  ? help  Space pause  Left/Right step  PgUp/PgDn 10s  [ ] speed  Home/End"
                                  : " q quit  ? help  Up/Down select  Enter collapse  p pause  +/- interval  s sort  b fps";
    attron(A_DIM);
    put(LINES - 1, 0, hints, COLS);
    attroff(A_DIM);
    if (m->help)
        help_overlay();
}

void top_draw_picker(const felix_proc_list *l, size_t sel, int utf8, int colored, const char *note)
{
    erase();
    attron(A_REVERSE);
    move(0, 0);
    for (int i = 0; i < COLS; i++)
        addch(' ');
    put(0, 0, " felix-top: choose a FEX process (Up/Down, Enter attaches, q quits)", COLS);
    attroff(A_REVERSE);
    size_t n = felix_proc_list_count(l);
    if (n == 0)
        put(2, 2, "No FEX process publishes statistics yet. Start one with FEX_PROFILESTATS=1; this list follows.",
            COLS - 2);
    char hd[128];
    snprintf(hd, sizeof hd, "%8s  %-16s %s", "PID", "NAME", "COMMAND");
    attron(A_BOLD);
    if (n)
        put(1, 0, hd, COLS);
    attroff(A_BOLD);
    for (size_t i = 0; i < n && (int)i + 2 < LINES - 1; i++) {
        const felix_proc_entry *e = felix_proc_list_get(l, i);
        char line[1200], indent[64] = "", nm[TEXT_MAX(32) + 1], cmd[TEXT_MAX(100) + 1];
        for (int d = 0; d < e->depth && d < 8; d++)
            strcat(indent, d + 1 == e->depth ? (utf8 ? "└─" : "`-") : "  ");
        snprintf(line, sizeof line, "%8d  %s%-*s %s%s", (int)e->pid, indent,
                 16 - (e->depth > 0 ? 2 * e->depth : 0) > 0 ? 16 - 2 * e->depth : 1,
                 text_term_str(nm, sizeof nm, e->name, !utf8),
                 e->state == FELIX_PROC_LIVE ? text_term_str(cmd, sizeof cmd, e->cmdline, !utf8) : "",
                 e->state == FELIX_PROC_LIVE ? "" : "(stale segment)");
        int attr = i == sel ? (colored ? COLOR_PAIR(C_SEL) : A_REVERSE) : (e->state == FELIX_PROC_LIVE ? 0 : A_DIM);
        attron(attr);
        put((int)i + 2, 0, line, COLS);
        attroff(attr);
    }
    if (note) {
        attron(A_DIM);
        put(LINES - 1, 0, note, COLS);
        attroff(A_DIM);
    }
}
