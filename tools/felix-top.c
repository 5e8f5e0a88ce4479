/*
 * felix-top: live and replay terminal UI for FEX-Emu's statistics.
 * The sampling side (live attachment or a recording) turns snapshots into
 * libfelix frames and fills the model; panels (top/panels.c) draw the model.
 * It sleeps in getch() until the next sample or a key: no busy polling.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include "common.h"
#include "top/top.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <getopt.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const char *prog = "felix-top";
static volatile sig_atomic_t quit_signal;
static struct termios saved_tio;
static int have_tio, curses_on;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-top [OPTIONS] [PID | FILE | -]\n"
            "Watch a FEX process's statistics live (PID), replay a recording (FILE, or - for\n"
            "standard input), or, with no argument, choose a FEX process from a list.\n\n"
            "  -i, --interval D     sampling interval (default 1s; 250ms, 500us; bare number = ms)\n"
            "  -r, --record FILE    record while watching (the felix-rec format); an existing\n"
            "                       FILE is not replaced unless --force is given\n"
            "  -f, --force          replace FILE of --record if it exists\n"
            "  -w, --watch          attach to the next FEX process that starts\n"
            "      --demo           start felix-sim and watch it\n"
            "      --fps N          frame rate of the frame budget (default 60; 1-1000; b cycles\n"
            "                       30/60/90/120/144)\n"
            "  -h, --help           this help\n"
            "  -V, --version        version\n\n"
            "Keys: Up/Down or k/j select a panel; Enter/Right collapse or expand it (or click its\n"
            "title); s cycles the thread order; +/- change the interval; p pauses the view;\n"
            "b cycles the frame budget's rate; ? help; q quits. Replay: Space pause,\n"
            "Left/Right one sample, PgUp/PgDn ten seconds, [ and ] speed (0.25x to 64x),\n"
            "Home/End.\n\n"
            "Frame budget: a thread's JIT + signal time is time the game did not get. LOST counts\n"
            "the frames in which a thread spent a whole frame's budget (1/fps) within one frame's\n"
            "worth of time: at intervals of a frame or more, within the interval (at least one\n"
            "frame was lost); at shorter ones, over the latest samples that span a frame. ! marks\n"
            "a thread that did in the last sample; the history marks such samples.\n"
            "The memory panel shows the whole process's RSS beside FEX's regions; smaps is read\n"
            "only while that panel is open (or while recording with -r).\n\n"
            "NO_COLOR turns colors off; a locale that is not UTF-8 gets ASCII bars.\n\n"
            "Exit status: 0 quit; 1 any other error (e.g. --help could not be written);\n"
            "  2 usage; 3 no such process; 4 no statistics (not FEX,\n"
            "  FEX_PROFILESTATS off, stale); 5 unsupported version; 6 permission denied;\n"
            "  7 unreadable or damaged recording, or I/O error; 8 a recording without its end item\n"
            "  (never closed); 129, 130, 143 ended by SIGHUP, SIGINT, SIGTERM.\n");
}

/* ---- the terminal, restored on every way out ---- */

static void restore_terminal(void)
{
    if (curses_on) {
        endwin();
        curses_on = 0;
    }
}

static void on_quit_signal(int sig) { quit_signal = sig; }

static void on_crash(int sig)
{
    /* Only async-signal-safe calls: leave the alternate screen, show the
     * cursor, reset attributes, put the tty modes back, then die as we would. */
    static const char reset[] = "\033[0m\033[?1000l\033[?1049l\033[?25h\r\n";
    if (write(STDOUT_FILENO, reset, sizeof reset - 1) < 0) {
    }
    if (have_tio)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void setup_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit_signal; /* no SA_RESTART: getch() returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_RESETHAND;
    int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof crash / sizeof *crash; i++)
        sigaction(crash[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void start_curses(struct top_model *m)
{
    if (tcgetattr(STDIN_FILENO, &saved_tio) == 0)
        have_tio = 1;
    initscr();
    curses_on = 1;
    atexit(restore_terminal);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    mousemask(BUTTON1_PRESSED | BUTTON1_CLICKED, NULL);
    mouseinterval(0);
    set_escdelay(25);
    m->color = has_colors() && !getenv("NO_COLOR");
    top_colors(m);
}

/* ---- the model ---- */

/* A new frame: rows, history, memory. names (may be NULL) gives a name to a
 * row that has none yet. Live, the names the source read this time (renames
 * too) are applied with model_live_info() as well. */
static void model_frame(struct top_model *m, felix_delta *d, const felix_snapshot *cur, int64_t start_mono,
                        const felix_source *names, int64_t now)
{
    const felix_frame *f = felix_delta_frame(d);
    const felix_snapshot_info *si = felix_snapshot_get_info(cur);
    m->load_pct = f->load_pct; /* the figures shown: a library-owned frame is not copied */
    m->nthreads = f->nthreads;
    m->interval_ns_measured = f->interval_ns;
    memcpy(m->rate, f->rate, sizeof m->rate);
    memcpy(m->cum, f->cum, sizeof m->cum);
    m->have_frame = 1;
    m->time_s = (double)(si->mono_ns - start_mono) / 1e9;
    m->head = si->head;
    m->size = si->size;
    m->image = f->image;
    m->restarting = 0;
    for (size_t i = 0; i < m->nrows; i++)
        m->rows[i].load = m->rows[i].exited ? 0 : -1; /* -1: not seen yet */
    for (size_t i = 0; i < f->nthreads; i++) {
        const felix_thread_delta *t = felix_delta_thread(d, i);
        struct top_row *r = top_add_row(m, t->tid);
        if (!r)
            break;
        if (r->exited || (t->state & FELIX_TD_STARTED && f->events & FELIX_FRAME_EXEC)) {
            /* the TID came back, or lives on in a new image: a new thread */
            memset(r, 0, sizeof *r);
            r->tid = t->tid;
            r->cpu_share = -1;
        }
        r->load = t->load_pct;
        r->jit_count = t->abs[FELIX_C_JIT_COUNT];
        r->budget_frames = t->budget_frames;
        r->over_budget = (t->state & FELIX_TD_OVER_BUDGET) != 0;
        const char *name = !r->name[0] && names ? felix_source_thread_name(names, t->tid) : NULL;
        if (name)
            snprintf(r->name, sizeof r->name, "%s", name);
        r->cpu_share = t->jit_cpu_pct; /* the delta's JIT share of CPU time; -1 unknown */
    }
    /* Threads that left: dimmed for a grace period, then gone. */
    size_t before = m->nrows;
    for (size_t i = 0; i < m->nrows;) {
        struct top_row *r = &m->rows[i];
        if (r->load < 0 && !r->exited) {
            r->exited = 1;
            r->exited_at = now;
            r->load = 0;
        }
        if (r->exited && now - r->exited_at > 3000000000LL) {
            m->rows[i] = m->rows[--m->nrows];
            continue;
        }
        i++;
    }
    if (m->nrows != before)
        top_reindex(m);
    if (f->interval_ns > 0) {
        m->hist_head = (m->hist_head + 1) % TOP_HIST;
        struct top_hist *h = &m->hist[m->hist_head];
        h->load = f->load_pct;
        h->flags = f->flags;
        h->t = m->time_s;
        h->width = f->interval_s;
        if (m->hist_n < TOP_HIST)
            m->hist_n++;
    }
    const felix_mem *mem = felix_snapshot_mem(cur);
    if (mem) {
        m->have_mem = 1;
        m->mem_total = felix_mem_total(mem);
        m->process_rss = felix_mem_process_rss(mem);
        m->process_maps = felix_mem_process_mappings(mem);
        m->nregions = 0;
        for (size_t i = 0; i < felix_mem_count(mem) && i < FELIX_MEM_MAX_REGIONS; i++) {
            const felix_region *r = felix_mem_region(mem, i);
            snprintf(m->regions[i].name, sizeof m->regions[i].name, "%s", r->name);
            m->regions[i].rss = r->rss;
            m->regions[i].mappings = r->mappings;
            m->nregions++;
        }
    }
}

/* Names the live source read this time (a bounded number; renames too). */
static void model_live_info(struct top_model *m, const felix_rec_thread_info *info, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct top_row *r = info[i].name ? top_find_row(m, info[i].tid) : NULL;
        if (r && !r->exited)
            snprintf(r->name, sizeof r->name, "%s", info[i].name);
    }
}

/* Keys every mode shares; returns 1 when the screen should be redrawn. */
static int common_key(struct top_model *m, int ch, int *quit)
{
    MEVENT ev;
    switch (ch) {
    case 'q':
    case 'Q': *quit = 1; return 0;
    case '?': m->help = !m->help; return 1;
    case KEY_UP:
    case 'k': m->selected = (m->selected + P_COUNT - 1) % P_COUNT; return 1;
    case KEY_DOWN:
    case 'j': m->selected = (m->selected + 1) % P_COUNT; return 1;
    case KEY_RIGHT:
        if (m->replay)
            return 0; /* replay: one sample forward */
        __attribute__((fallthrough)); /* live: Right is Enter */
    case '\n':
    case '\r':
    case KEY_ENTER: m->collapsed[m->selected] = !m->collapsed[m->selected]; return 1;
    case 's': m->sort = (m->sort + 1) % SORT_COUNT; return 1;
    case 'b': { /* the frame budget's rate */
        static const unsigned rates[] = {30, 60, 90, 120, 144};
        size_t k = 0;
        while (k < 5 && rates[k] != m->fps)
            k++;
        m->fps = rates[k >= 4 ? 0 : k + 1];
        return 1;
    }
    case KEY_RESIZE: return 1;
    case 27: m->help = 0; return 1;
    case KEY_MOUSE:
        if (getmouse(&ev) == OK)
            for (int p = 0; p < P_COUNT; p++)
                if (m->title_row[p] == ev.y) {
                    m->selected = p;
                    m->collapsed[p] = !m->collapsed[p];
                    return 1;
                }
        return 0;
    default: return 0;
    }
}

/* The delta's frame budget follows the model's rate (the 'b' key). */
static void apply_fps(felix_delta *d, const struct top_model *m)
{
    if (felix_delta_frame(d)->fps != m->fps)
        felix_delta_set_fps(d, m->fps);
}

static unsigned opt_fps = FELIX_DEFAULT_FPS;

static void redraw(struct top_model *m)
{
    top_draw(m);
    refresh();
}

/* ---- live ---- */

static const int64_t intervals[] = {1000000, 2000000, 5000000, 10000000, 20000000, 50000000, 100000000,
                                    200000000, 500000000, 1000000000, 2000000000, 5000000000LL, 10000000000LL};

/* A key in live mode; returns whether the screen should be redrawn. */
static int live_key(struct top_model *m, int ch, int *quit, int64_t *next, felix_source *src)
{
    int dirty = common_key(m, ch, quit);
    size_t k = 0;
    while (k + 1 < sizeof intervals / sizeof *intervals && intervals[k] < m->interval_ns)
        k++;
    int64_t old = m->interval_ns;
    if (ch == '+' && m->state != ST_EXITED)
        m->interval_ns = intervals[k + 1 < sizeof intervals / sizeof *intervals && intervals[k] <= old ? k + 1 : k];
    if (ch == '-' && m->state != ST_EXITED)
        m->interval_ns = k > 0 ? intervals[k - 1] : intervals[0];
    if (m->interval_ns != old) {
        *next = tool_now() + m->interval_ns;
        felix_source_set_interval(src, m->interval_ns); /* a recording gets the event from the source */
        dirty = 1;
    }
    if (ch == 'p') {
        m->view_paused = !m->view_paused;
        dirty = 1;
    }
    return dirty;
}

/* Keys that arrived while a sample was being taken, handled between its
 * steps: with hundreds of thousands of threads (a 16 MiB segment) a sample
 * takes a good part of a second here, and a key must not wait for all of it. */
static void keys_meanwhile(struct top_model *m, int *quit, int64_t *next, felix_source *src)
{
    timeout(0);
    int ch, dirty = 0;
    while (!*quit && (ch = getch()) != ERR)
        dirty |= live_key(m, ch, quit, next, src);
    if (dirty && !*quit)
        redraw(m);
}

/* The source's items up to its next sample, events acted on: a recording
 * gets the interval changes and the exit (thread events and execs the
 * writer derives itself); the model learns of an exit. Returns 0 with a
 * sample in snap, FELIX_EEOF once the process is gone, or an error. */
static int live_next(felix_source *src, felix_snapshot *snap, struct top_model *m, felix_rec_writer **w)
{
    for (;;) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        int item = 0;
        int rc = felix_source_next(src, snap, &ev, &item);
        if (rc < 0)
            return rc;
        if (item == FELIX_REC_SAMPLE)
            return 0;
        if (item == FELIX_REC_END)
            return FELIX_EEOF;
        if (ev.kind == FELIX_EV_INTERVAL_CHANGED && *w)
            felix_rec_write_event(*w, &ev);
        if (ev.kind == FELIX_EV_PROCESS_EXITED) {
            m->state = ST_EXITED;
            m->exit_known = ev.has_status;
            m->exit_status = ev.status;
            if (*w) {
                felix_rec_write_event(*w, &ev);
                felix_rec_writer_close(*w, "process exited");
                *w = NULL;
                m->message = "recording finalized";
            }
        }
    }
}

static int run_live(pid_t pid, int64_t interval, const char *record, int child)
{
    struct top_model m;
    memset(&m, 0, sizeof m);
    m.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    felix_source_options so = FELIX_SOURCE_OPTIONS_INIT;
    so.interval_ns = interval;
    so.flags = child ? FELIX_SOURCE_CHILD : 0;
    felix_source *src;
    int rc = felix_source_open_pid(&src, pid, &so);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return tool_exit_status(rc);
    }
    const felix_rec_header *h = felix_source_header(src);
    const felix_shm_info *si = felix_shm_get_info(felix_source_shm(src));
    m.pid = pid;
    snprintf(m.name, sizeof m.name, "%s", h->name);
    snprintf(m.fex_version, sizeof m.fex_version, "%s", si->fex_version);
    snprintf(m.app_type, sizeof m.app_type, "%s", si->app_type_name);
    m.freq_hz = h->freq_hz;
    m.ncpus = h->ncpus;
    m.interval_ns = interval;
    m.state = ST_LIVE;
    m.fps = opt_fps;
    felix_rec_writer *w = NULL;
    if (record) {
        if ((rc = felix_rec_writer_open_path(&w, record, h, NULL)) < 0) {
            tool_error(prog, "%s", felix_error_detail());
            felix_source_close(src);
            return tool_exit_status(rc);
        }
        m.record_path = record;
    }
    felix_snapshot *s[2];
    felix_delta *d;
    felix_snapshot_new(&s[0]);
    felix_snapshot_new(&s[1]);
    felix_delta_new(&d, h->freq_hz, h->ncpus);
    start_curses(&m);
    int cur = 0, have_prev = 0, quit = 0, dirty = 1, status = EXIT_OK;
    int64_t next = tool_now();
    int exit_fd = felix_source_fd(src);
    while (!quit && !quit_signal) {
        int64_t now = tool_now();
        /* The process's exit shows at once, not at the next interval. */
        struct pollfd ep = {exit_fd, POLLIN, 0};
        if (m.state != ST_EXITED && exit_fd >= 0 && poll(&ep, 1, 0) > 0)
            next = now;
        if (m.state != ST_EXITED && now >= next) {
            static char why[256];
            /* smaps costs milliseconds in a process with thousands of
             * mappings: read only for an open memory panel or a recording. */
            felix_source_set_memory(src, w != NULL || !m.collapsed[P_MEM]);
            apply_fps(d, &m);
            rc = live_next(src, s[cur], &m, &w);
            if (rc == FELIX_ERESTART) {
                /* exec'ing: the new image's numbers come next */
                m.restarting = 1;
                dirty = 1;
            } else if (rc == FELIX_EEOF || m.state == ST_EXITED) {
                dirty = 1;
            } else if (rc < 0) { /* say why the numbers stopped */
                snprintf(why, sizeof why, "%s", felix_error_detail());
                m.message = why;
                dirty = 1;
            } else {
                keys_meanwhile(&m, &quit, &next, src);
                if (m.message == why)
                    m.message = NULL;
                const felix_rec_thread_info *info;
                size_t ninfo;
                felix_source_thread_info(src, &info, &ninfo);
                if (w && felix_rec_write_sample(w, s[cur], info, ninfo) < 0) {
                    m.message = "recording stopped: write error";
                    felix_rec_writer_close(w, "I/O error");
                    w = NULL;
                    m.record_path = NULL;
                }
                if (felix_delta_compute(d, have_prev ? s[cur ^ 1] : NULL, s[cur]) == 0) {
                    keys_meanwhile(&m, &quit, &next, src);
                    model_frame(&m, d, s[cur], h->start_mono_ns, NULL, now);
                    model_live_info(&m, info, ninfo);
                    dirty = !have_prev || !m.view_paused || (felix_delta_frame(d)->events & FELIX_FRAME_EXEC);
                }
                if (felix_delta_frame(d)->events & FELIX_FRAME_EXEC) {
                    /* A new image: its name, FEX and app type may differ. */
                    felix_proc_name(pid, m.name, sizeof m.name);
                    snprintf(m.fex_version, sizeof m.fex_version, "%s", si->fex_version);
                    snprintf(m.app_type, sizeof m.app_type, "%s", si->app_type_name);
                }
                have_prev = 1;
                cur ^= 1;
            }
            /* The first frame needs a second sample: take it soon. */
            next += have_prev && m.have_frame && m.interval_ns_measured == 0 && m.interval_ns > 200000000
                        ? 200000000
                        : m.interval_ns;
            if (next < now) /* overran: skip ahead, keep the phase */
                next += ((now - next) / m.interval_ns + 1) * m.interval_ns;
        }
        if (dirty) {
            redraw(&m);
            dirty = 0;
        }
        if (quit)
            break; /* a key handled while sampling: do not wait for another */
        /* Block only once the process is gone: a sample and a redraw that
         * took longer than the interval leave next behind now, a wait of 0. */
        now = tool_now();
        int64_t wait = m.state == ST_EXITED ? -1 : next <= now ? 0 : (next - now + 999999) / 1000000;
        timeout(wait < 0 ? -1 : wait > INT_MAX ? INT_MAX : (int)wait);
        int ch = getch();
        if (ch == ERR)
            continue;
        dirty |= live_key(&m, ch, &quit, &next, src);
    }
    restore_terminal();
    if (w) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        ev.kind = FELIX_EV_STOPPED;
        ev.mono_ns = tool_now();
        snprintf(ev.reason, sizeof ev.reason, "%s", quit_signal ? "signal" : "quit");
        felix_rec_write_event(w, &ev);
        if (felix_rec_writer_close(w, quit_signal ? "signal" : "quit") < 0) {
            tool_error(prog, "%s", felix_error_detail());
            status = EXIT_IO;
        }
    }
    if (quit_signal)
        status = 128 + quit_signal;
    felix_snapshot_free(s[0]);
    felix_snapshot_free(s[1]);
    felix_delta_free(d);
    free(m.rows);
    free(m.row_index);
    free(m.view);
    felix_source_close(src);
    return status;
}

/* ---- replay ---- */

struct replay {
    felix_source *src;
    felix_rec_reader *r; /* the source's, for sample numbers */
    const felix_rec_header *h;
    felix_delta *d;
    felix_snapshot *s[2];
    int cur, have_prev;
    uint64_t total;
};

/* Read the next sample into the model; 0, FELIX_EEOF, or an error. */
static int replay_step(struct replay *p, struct top_model *m)
{
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
    int item = 0, rc;
    for (;;) {
        rc = felix_source_next(p->src, p->s[p->cur], &ev, &item);
        if (rc < 0)
            return rc;
        if (item == FELIX_REC_EVENT && ev.kind == FELIX_EV_EXEC)
            m->message = "the process exec'd here (new image)";
        if (item == FELIX_REC_EVENT && ev.kind == FELIX_EV_PROCESS_EXITED) {
            m->exit_known = ev.has_status;
            m->exit_status = ev.status;
            m->message = "the process exited here";
        }
        if (item == FELIX_REC_SAMPLE)
            break;
    }
    apply_fps(p->d, m);
    if (p->have_prev && felix_delta_compute(p->d, p->s[p->cur ^ 1], p->s[p->cur]) == 0)
        model_frame(m, p->d, p->s[p->cur], p->h->start_mono_ns, p->src, tool_now());
    p->have_prev = 1;
    p->cur ^= 1;
    return 0;
}

/* Go to sample n (shown as the frame ending there), refilling the history. */
static int replay_goto(struct replay *p, struct top_model *m, int64_t n)
{
    if (!m->seekable)
        return FELIX_ENOTSUP;
    if (n < 1)
        n = 1;
    if ((uint64_t)n >= p->total)
        n = (int64_t)p->total - 1;
    int64_t from = n > 300 ? n - 300 : 0;
    int rc = felix_source_seek_sample(p->src, (uint64_t)from);
    if (rc < 0)
        return rc;
    p->have_prev = 0;
    m->hist_n = 0;
    m->nrows = 0;
    top_reindex(m);
    felix_delta_reset(p->d);
    while (felix_rec_sample_number(p->r) < n)
        if ((rc = replay_step(p, m)) < 0)
            return rc;
    return 0;
}

static int run_replay(const char *path)
{
    struct top_model m;
    memset(&m, 0, sizeof m);
    m.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    struct replay p;
    memset(&p, 0, sizeof p);
    int rc = felix_source_open_recording(&p.src, path, NULL);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return rc == FELIX_EVERSION ? EXIT_VERSION : rc == FELIX_EACCES ? EXIT_PERMISSION : EXIT_IO;
    }
    p.r = felix_source_reader(p.src);
    p.h = felix_source_header(p.src);
    m.pid = p.h->pid;
    snprintf(m.name, sizeof m.name, "%s", p.h->name);
    snprintf(m.fex_version, sizeof m.fex_version, "%s", p.h->fex_version);
    felix_app_type_name(p.h->app_type, m.app_type, sizeof m.app_type);
    m.freq_hz = p.h->freq_hz;
    m.ncpus = p.h->ncpus;
    m.interval_ns = p.h->interval_ns;
    m.replay = 1;
    m.state = ST_REPLAY;
    m.speed = 1;
    m.fps = opt_fps;
    felix_delta_new(&p.d, p.h->freq_hz, p.h->ncpus);
    felix_snapshot_new(&p.s[0]);
    felix_snapshot_new(&p.s[1]);
    if (felix_source_summary(p.src, &p.total, NULL) == 0 && p.total > 1) {
        m.seekable = 1;
        felix_snapshot *last;
        felix_snapshot_new(&last);
        if (felix_source_seek_sample(p.src, p.total - 1) == 0 && felix_rec_next_sample(p.r, last) == 0)
            m.total_s = (double)(felix_snapshot_get_info(last)->mono_ns - p.h->start_mono_ns) / 1e9;
        felix_snapshot_free(last);
        felix_source_seek_sample(p.src, 0);
    }
    start_curses(&m);
    int quit = 0, dirty = 1, status = EXIT_OK, at_end = 0, err_code = 0;
    const char *err = NULL;
    char errbuf[512];
    /* The baseline, then play. */
    if ((rc = replay_step(&p, &m)) == 0)
        rc = replay_step(&p, &m);
    if (rc < 0 && rc != FELIX_EEOF) {
        snprintf(errbuf, sizeof errbuf, "%s", felix_error_detail());
        err = errbuf;
        err_code = rc;
    }
    at_end = rc < 0;
    int64_t base_wall = tool_now();
    double base_t = m.time_s;
    while (!quit && !quit_signal) {
        int64_t now = tool_now();
        /* The next sample is due when its time, scaled by the speed, comes. */
        int64_t wait = -1;
        if (!m.replay_paused && !at_end) {
            double due_t = m.time_s + (m.interval_ns > 0 ? (double)m.interval_ns / 1e9 : 1.0);
            int64_t due = base_wall + (int64_t)((due_t - base_t) / m.speed * 1e9);
            if (now >= due) {
                rc = replay_step(&p, &m);
                if (rc < 0) {
                    at_end = 1;
                    if (rc != FELIX_EEOF) {
                        snprintf(errbuf, sizeof errbuf, "%s", felix_error_detail());
                        err = errbuf;
                        err_code = rc;
                    } else {
                        m.message = "end of the recording";
                    }
                }
                dirty = 1;
                continue;
            }
            wait = due <= now ? 0 : (due - now + 999999) / 1000000;
        }
        if (err)
            m.message = err;
        if (dirty) {
            redraw(&m);
            dirty = 0;
        }
        timeout(wait < 0 ? -1 : wait > INT_MAX ? INT_MAX : (int)wait);
        int ch = getch();
        if (ch == ERR)
            continue;
        dirty |= common_key(&m, ch, &quit);
        int64_t n = felix_rec_sample_number(p.r), target = -1;
        switch (ch) {
        case ' ': m.replay_paused = !m.replay_paused; dirty = 1; break;
        case ']': if (m.speed < 64) m.speed *= 2; dirty = 1; break;
        case '[': if (m.speed > 0.25) m.speed /= 2; dirty = 1; break;
        case KEY_RIGHT: /* one sample forward, then hold */
            m.replay_paused = 1;
            if (!at_end && replay_step(&p, &m) < 0)
                at_end = 1;
            dirty = 1;
            break;
        case KEY_LEFT: target = n - 1; m.replay_paused = 1; break;
        case KEY_NPAGE:
        case KEY_PPAGE: {
            double per = m.interval_ns > 0 ? (double)m.interval_ns / 1e9 : 1.0;
            int64_t step = (int64_t)(10.0 / per + 0.5);
            target = ch == KEY_NPAGE ? n + step : n - step;
            break;
        }
        case KEY_HOME: target = 1; break;
        case KEY_END: target = (int64_t)p.total - 1; break;
        default: break;
        }
        if (target >= 0) {
            if (!m.seekable)
                m.message = "this input cannot seek (standard input)";
            else if (replay_goto(&p, &m, target) == 0)
                at_end = felix_rec_sample_number(p.r) >= (int64_t)p.total - 1, m.message = NULL;
            dirty = 1;
        }
        base_wall = tool_now();
        base_t = m.time_s;
    }
    restore_terminal();
    if (err) { /* never closed (8), or damaged (7): the samples before were shown */
        tool_error(prog, "%s: %s", path, err);
        status = err_code == FELIX_ETRUNC ? EXIT_INCOMPLETE : EXIT_IO;
    }
    if (felix_rec_reader_warning(p.r)) {
        tool_error(prog, "%s: %s", path, felix_rec_reader_warning(p.r));
        if (status == EXIT_OK)
            status = EXIT_IO;
    }
    if (quit_signal)
        status = 128 + quit_signal;
    felix_delta_free(p.d);
    felix_snapshot_free(p.s[0]);
    felix_snapshot_free(p.s[1]);
    felix_source_close(p.src);
    free(m.rows);
    free(m.row_index);
    free(m.view);
    return status;
}

/* ---- the picker and --watch ---- */

/* Choose a process in a list that follows processes as they come and go.
 * With watch, take the first new one instead. Returns a PID or 0 to quit. */
static pid_t pick(int watch)
{
    struct top_model m;
    memset(&m, 0, sizeof m);
    m.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    felix_proc_list *l;
    if (felix_proc_list_new(&l) < 0)
        return 0;
    /* With watch: what exists now (by PID and start time) is not new. */
    felix_proc_starts *ws = NULL;
    if (watch && felix_proc_starts_open(&ws, NULL) < 0) {
        felix_proc_list_free(l);
        return 0;
    }
    start_curses(&m);
    size_t sel = 0;
    pid_t chosen = 0;
    const char *note = watch ? " waiting for a FEX process to start... (q quits)" : NULL;
    while (!chosen && !quit_signal) {
        felix_proc_list_scan(l, NULL);
        size_t n = felix_proc_list_count(l);
        const felix_proc_entry *e;
        if (watch && felix_proc_starts_next(ws, &e) == 0 && e) {
            chosen = e->pid;
            break;
        }
        if (sel >= n && n)
            sel = n - 1;
        top_draw_picker(l, sel, m.utf8, m.color, note);
        refresh();
        timeout(250);
        int ch = getch();
        if (ch == 'q' || ch == 'Q')
            break;
        if ((ch == KEY_DOWN || ch == 'j') && sel + 1 < n)
            sel++;
        if ((ch == KEY_UP || ch == 'k') && sel > 0)
            sel--;
        if ((ch == '\n' || ch == '\r' || ch == KEY_ENTER) && n && !watch) {
            const felix_proc_entry *pe = felix_proc_list_get(l, sel);
            if (pe->state == FELIX_PROC_LIVE)
                chosen = pe->pid;
            else
                note = " that segment is stale: its process is gone";
        }
    }
    restore_terminal();
    felix_proc_starts_close(ws);
    felix_proc_list_free(l);
    return chosen;
}

/* --demo: start felix-sim (next to this binary, else on PATH). */
static pid_t start_demo(void)
{
    char self[PATH_MAX], sim[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    snprintf(sim, sizeof sim, "felix-sim");
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(sim, sizeof sim, "%s/felix-sim", self);
            if (access(sim, X_OK) != 0)
                snprintf(sim, sizeof sim, "felix-sim");
        }
    }
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0)
            dup2(devnull, 2);
        /* Timed blocks on the CPU, as FEX compiles, at a quarter of the
         * steady rates: about 0.4 of a core, and JIT/CPU shares below 100%. */
        execlp(sim, sim, "-t", "6", "-s", "steady", "--spin", "--time-scale", "0.25", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    ssize_t r = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    if (r <= 0 || atoi(line) != pid) {
        tool_error(prog, "cannot start felix-sim (%s): is it installed next to felix-top?", sim);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    enum { OPT_DEMO = 256, OPT_FPS };
    static const struct option lo[] = {{"interval", 1, 0, 'i'}, {"record", 1, 0, 'r'}, {"watch", 0, 0, 'w'},
                                       {"demo", 0, 0, OPT_DEMO}, {"help", 0, 0, 'h'},  {"version", 0, 0, 'V'},
                                       {"force", 0, 0, 'f'},     {"fps", 1, 0, OPT_FPS}, {0, 0, 0, 0}};
    uint64_t fps;
    int64_t interval = 1000000000;
    const char *record = NULL;
    int watch = 0, demo = 0, force = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:r:wfhV", lo, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (tool_parse_duration(optarg, 1000000, &interval) < 0 || interval < 1000000) {
                return tool_bad_value(prog, c, lo, optarg, "at least 1ms, e.g. 250ms, 1s");
            }
            break;
        case 'r': record = optarg; break;
        case 'w': watch = 1; break;
        case 'f': force = 1; break;
        case OPT_DEMO: demo = 1; break;
        case OPT_FPS:
            if (tool_parse_uint(optarg, 1, 1000, &fps) < 0)
                return tool_bad_value(prog, c, lo, optarg, "frames per second, 1 to 1000");
            opt_fps = (unsigned)fps;
            break;
        case 'h': usage(stdout); return tool_stdout_done(prog);
        case 'V': printf("felix-top %s\n", felix_version()); return tool_stdout_done(prog);
        default: return tool_bad_option(prog, c, argv);
        }
    }
    if (optind + 1 < argc || (optind < argc && (watch || demo))) {
        tool_error(prog, "give one PID or FILE, or --watch, or --demo");
        return EXIT_USAGE;
    }
    if (!isatty(STDOUT_FILENO)) {
        tool_error(prog, "standard output is not a terminal (for rows, use felix-csv)");
        return EXIT_USAGE;
    }
    if (record && (c = tool_check_output(prog, record, NULL, force)) != 0)
        return c;
    setup_signals();
    const char *arg = optind < argc ? argv[optind] : NULL;
    if (arg && (strspn(arg, "0123456789") != strlen(arg) || !*arg)) {
        if (record) {
            tool_error(prog, "--record is for live processes, not replays");
            return EXIT_USAGE;
        }
        if (strcmp(arg, "-") == 0) { /* keys come from the terminal, data from stdin */
            int data = dup(STDIN_FILENO);
            int tty = open("/dev/tty", O_RDONLY);
            if (data < 0 || tty < 0) {
                tool_error(prog, "replaying standard input needs a terminal for keys (/dev/tty)");
                return EXIT_USAGE;
            }
            dup2(tty, STDIN_FILENO);
            close(tty);
            char path[32];
            snprintf(path, sizeof path, "/dev/fd/%d", data);
            return run_replay(path);
        }
        return run_replay(arg);
    }
    pid_t pid = 0, child = 0;
    if (demo) {
        if ((child = start_demo()) < 0)
            return EXIT_FAILURE_GENERIC;
        pid = child;
    } else if (arg) {
        uint64_t v;
        if (tool_parse_uint(arg, 1, 0x7fffffff, &v) < 0) {
            tool_error(prog, "invalid PID '%s' (decimal digits, 1 to 2147483647)", arg);
            return EXIT_USAGE;
        }
        pid = (pid_t)v;
    } else {
        pid = pick(watch);
        if (!pid)
            return quit_signal ? 128 + quit_signal : EXIT_OK;
    }
    int status = run_live(pid, interval, record, child != 0);
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
    }
    return status;
}
