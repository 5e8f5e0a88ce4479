/* Example: read a recording and print each thread's total JIT time.
 * Build: cc felix-jit-totals.c $(pkg-config --cflags --libs libfelix)
 * Usage: felix-jit-totals FILE */
#include <felix/felix.h>
#include <stdio.h>
#include <stdlib.h>

struct total {
    uint32_t tid;
    char name[32];
    double jit_s;
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s RECORDING\n", argv[0]);
        return 2;
    }
    felix_rec_reader *r;
    felix_snapshot *prev, *cur;
    felix_delta *d;
    if (felix_rec_reader_open_path(&r, argv[1]) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
        return 1;
    }
    const felix_rec_header *h = felix_rec_reader_header(r);
    if (felix_snapshot_new(&prev) < 0 || felix_snapshot_new(&cur) < 0 || felix_delta_new(&d, h->freq_hz, h->ncpus) < 0)
        return 1;
    struct total *t = NULL;
    size_t n = 0;
    int rc, have_prev = 0;
    while ((rc = felix_rec_next_sample(r, cur)) == 0) {
        if (have_prev && felix_delta_compute(d, prev, cur) == 0) {
            for (size_t i = 0; i < felix_delta_frame(d)->nthreads; i++) {
                const felix_thread_delta *td = felix_delta_thread(d, i);
                size_t k = 0;
                while (k < n && t[k].tid != td->tid)
                    k++;
                if (k == n) { /* a thread not seen before */
                    struct total *nt = realloc(t, (n + 1) * sizeof *t);
                    if (!nt)
                        return 1;
                    t = nt;
                    t[n].tid = td->tid;
                    t[n].jit_s = 0;
                    t[n++].name[0] = '\0';
                }
                t[k].jit_s += td->value[FELIX_C_JIT_TIME];
                const char *name = felix_rec_thread_name(r, td->tid);
                if (name)
                    snprintf(t[k].name, sizeof t[k].name, "%s", name);
            }
        }
        felix_snapshot *tmp = prev; /* the new sample becomes the old one */
        prev = cur;
        cur = tmp;
        have_prev = 1;
    }
    if (rc != FELIX_EEOF)
        fprintf(stderr, "%s: %s (totals up to there)\n", argv[0], felix_error_detail());
    printf("%-10s %-16s %s\n", "TID", "NAME", "JIT SECONDS");
    for (size_t k = 0; k < n; k++)
        printf("%-10u %-16s %.6f\n", t[k].tid, t[k].name[0] ? t[k].name : "?", t[k].jit_s);
    free(t);
    felix_delta_free(d);
    felix_snapshot_free(prev);
    felix_snapshot_free(cur);
    felix_rec_reader_close(r);
    return rc == FELIX_EEOF ? 0 : 1;
}
