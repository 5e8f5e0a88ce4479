/*
 * MangoHud frame-time logs (CSV): "v1", a version line, a system-info block,
 * then a header naming the columns (fps,frametime,...,elapsed) and one row
 * per frame: frametime in ms, elapsed in ns since the log started (on the
 * monotonic clock). The header is found by its column names, so older logs
 * without the "v1" preamble are read too. The log's wall-clock start is only
 * in its file name, NAME_YYYY-MM-DD_HH-MM-SS.csv, in local time.
 *
 * Outside data: every line is bounded, every row checked; rows that do not
 * parse (garbage, a cut last line, time going back) are counted and skipped.
 */
#ifndef FELIX_TOOLS_MANGOHUD_H
#define FELIX_TOOLS_MANGOHUD_H

#include <stddef.h>
#include <stdint.h>

typedef struct mh_frame {
    int64_t elapsed_ns;
    double frametime_ms;
} mh_frame;

#define MH_MAX_FRAMES (25u * 1000 * 1000) /* 24 h at 290 fps; 400 MB */
#define MH_MAX_LINE 65536

typedef struct mh_log {
    mh_frame *f;
    size_t n, cap;
    size_t skipped;     /* rows that did not parse */
    size_t lines;       /* lines seen */
    int have_header;
    int col_frametime, col_elapsed, ncols;
    char version[64];   /* the version line, when there was one */
    int oom, too_many;
} mh_log;

void mh_init(mh_log *log);
void mh_free(mh_log *log);
/* One line (without its newline; a CR at the end is ignored). */
void mh_line(mh_log *log, const char *s, size_t n);
/* Parse a whole buffer line by line (the fuzz target's entry). */
void mh_parse(mh_log *log, const char *buf, size_t len);
/* Read a file: 0, or -1 with a one-line reason in err. A log without a
 * header, or with no frame, is an error. */
int mh_read(const char *path, mh_log *log, char *err, size_t errlen);
/* The wall-clock start from a file name ..._YYYY-MM-DD_HH-MM-SS.csv, local
 * time, as Unix seconds: 0, or -1 when the name holds no such date. */
int mh_name_time(const char *path, int64_t *out_unix_s);

#endif
