/* felix-top's model: what the panels draw. Panels read only this; the
 * sampling side (live or replay) fills it from libfelix frames. */
#ifndef FELIX_TOP_H
#define FELIX_TOP_H

#include <felix/felix.h>
#include <stddef.h>
#include <stdint.h>

enum top_state { ST_LIVE, ST_PAUSED, ST_REPLAY, ST_EXITED };
enum top_sort { SORT_LOAD, SORT_JIT_COUNT, SORT_TID, SORT_NAME, SORT_COUNT };
enum top_panel { P_JIT, P_MEM, P_HIST, P_COUNT };

#define TOP_HIST 4096

struct top_row {
    uint32_t tid;
    char name[32];
    double load;          /* % */
    double cpu_share;     /* JIT share of the thread's CPU time, %, or -1 */
    uint64_t jit_count;   /* cumulative */
    int exited;           /* gone; shown dimmed until grace ends */
    int64_t exited_at;
    uint32_t budget_frames; /* frames (or intervals) it spent a frame's budget */
    int over_budget;        /* in the last frame */
};

struct top_hist {
    double load;
    unsigned flags;
    double t;        /* seconds since the start */
    double width;    /* the sample's real interval */
};

struct top_model {
    /* what and where */
    int pid;
    char name[32];
    char fex_version[200];
    char app_type[16];
    uint32_t head, size;
    int64_t interval_ns;
    int state;              /* enum top_state, before pause */
    int view_paused;        /* 'p': the view holds still, sampling goes on */
    int exit_known, exit_status;
    const char *record_path;/* recording while watching */
    uint64_t freq_hz;
    unsigned ncpus;
    /* the last frame */
    int have_frame;
    double load_pct;        /* FEX load % */
    uint32_t nthreads;
    int64_t interval_ns_measured; /* 0: a baseline */
    double rate[FELIX_NCOUNTERS];   /* per second */
    uint64_t cum[FELIX_NCOUNTERS];  /* cumulative raw totals */
    double time_s;          /* since the start */
    struct top_row *rows;
    size_t nrows, rows_cap;
    uint32_t *row_index;    /* open addressing by TID: row + 1, 0 empty */
    size_t row_index_cap;   /* power of two, at least twice nrows */
    uint32_t *view;         /* rows drawn, in order (scratch of the JIT panel) */
    size_t view_cap;
    int sort;
    unsigned fps;           /* the frame budget's rate ('b' cycles it) */
    uint32_t image;         /* the process image shown (1, more after execs) */
    int restarting;         /* the statistics object is being recreated */
    /* memory */
    int have_mem;
    uint64_t mem_total;
    uint64_t process_rss;   /* the whole process's (0: unknown) */
    uint32_t process_maps;
    struct { char name[48]; uint64_t rss; uint32_t mappings; } regions[FELIX_MEM_MAX_REGIONS];
    size_t nregions;
    /* history ring */
    struct top_hist hist[TOP_HIST];
    size_t hist_n, hist_head; /* entries, index of the newest */
    /* replay */
    int replay, replay_paused, seekable;
    double speed, total_s;
    /* panels */
    int collapsed[P_COUNT];
    int selected;
    int help;
    int utf8, color;
    const char *message;    /* a one-line note in the status bar */
    int title_row[P_COUNT]; /* where each panel's title was drawn (-1: not) */
};

/* The row of a thread, or NULL. */
struct top_row *top_find_row(struct top_model *m, uint32_t tid);
/* The row of a thread, added when new; NULL when out of memory. */
struct top_row *top_add_row(struct top_model *m, uint32_t tid);
/* Rebuild the TID index after rows were removed or moved. */
int top_reindex(struct top_model *m);
/* The first n rows in the chosen order, into m->view (bounded work: one
 * pass over the rows, n log n per kept row); returns how many. */
size_t top_select_rows(struct top_model *m, size_t n);

/* Draw everything into stdscr (no refresh). */
void top_draw(struct top_model *m);
/* The picker: a tree of FEX processes, sel the selected one. */
void top_draw_picker(const felix_proc_list *l, size_t sel, int utf8, int color, const char *note);
/* Set up colors (when allowed). */
void top_colors(struct top_model *m);

#endif
