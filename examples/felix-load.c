/* Example: attach to a FEX process and print its FEX load and busiest thread
 * once a second. Build: cc felix-load.c $(pkg-config --cflags --libs libfelix)
 * Usage: felix-load PID [SECONDS] */
#include <felix/felix.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PID [SECONDS]\n", argv[0]);
        return 2;
    }
    int pid = atoi(argv[1]), seconds = argc > 2 ? atoi(argv[2]) : -1;
    uint64_t hz;
    felix_shm *shm;
    felix_snapshot *prev, *cur;
    felix_delta *delta;
    int rc;
    if ((rc = felix_clock_frequency(&hz, NULL)) < 0 || (rc = felix_shm_open_pid(&shm, pid, 0)) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
        return 1;
    }
    if ((rc = felix_snapshot_new(&prev)) < 0 || (rc = felix_snapshot_new(&cur)) < 0 ||
        (rc = felix_delta_new(&delta, hz, 0)) < 0 || (rc = felix_shm_snapshot(shm, prev)) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], felix_strerror(rc));
        return 1;
    }
    printf("FEX %s, %s, %u-byte slots\n", felix_shm_get_info(shm)->fex_version,
           felix_shm_get_info(shm)->app_type_name, felix_shm_get_info(shm)->slot_size);
    for (int i = 0; seconds < 0 || i < seconds; i++) {
        sleep(1);
        if (felix_shm_snapshot(shm, cur) < 0 || felix_delta_compute(delta, prev, cur) < 0) {
            fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
            break;
        }
        const felix_frame *f = felix_delta_frame(delta);
        const felix_thread_delta *top = felix_delta_thread(delta, 0);
        printf("FEX load %5.1f%%  threads %3u  JIT %6.3f s/s  blocks %8.0f/s", f->load_pct,
               f->nthreads, f->rate[FELIX_C_JIT_TIME], f->rate[FELIX_C_JIT_COUNT]);
        if (top)
            printf("  busiest: TID %u at %.1f%%", top->tid, top->load_pct);
        printf("\n");
        fflush(stdout);
        felix_snapshot *t = prev; /* the new snapshot becomes the old one */
        prev = cur;
        cur = t;
    }
    felix_delta_free(delta);
    felix_snapshot_free(prev);
    felix_snapshot_free(cur);
    felix_shm_close(shm);
    return 0;
}
