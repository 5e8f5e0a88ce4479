/* Test helper: write a synthetic recording fast.
 * Usage: make_recording FILE SAMPLES INTERVAL_MS THREADS
 * Thread k compiles (k * 5)% of the time; a memory sample every 10 samples. */
#include <felix/felix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    int n = atoi(argv[2]), ms = atoi(argv[3]), threads = atoi(argv[4]);
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    snprintf(h.host, sizeof h.host, "test");
    snprintf(h.name, sizeof h.name, "synthetic");
    snprintf(h.fex_version, sizeof h.fex_version, "FEX-synthetic");
    h.ncpus = 4;
    h.freq_hz = 1000000000;
    h.pid = 777;
    h.app_type = 1;
    h.stats_version = 2;
    h.thread_stats_size = 80;
    h.start_mono_ns = 5000000000LL;
    h.start_wall_ns = 1790000000000000000LL;
    h.interval_ns = (int64_t)ms * 1000000;
    felix_rec_writer *w;
    if (felix_rec_writer_open_path(&w, argv[1], &h, NULL) < 0)
        return 1;
    felix_snapshot *s;
    felix_snapshot_new(&s);
    uint64_t acc[64][9] = {{0}};
    felix_rec_thread_info info[64];
    char names[64][16];
    for (int i = 0; i < n; i++) {
        int64_t t = h.start_mono_ns + (int64_t)i * h.interval_ns;
        felix_snapshot_begin(s, t, h.start_wall_ns + (t - h.start_mono_ns), 80);
        for (int k = 1; k <= threads && k <= 64; k++) {
            acc[k - 1][FELIX_C_JIT_TIME] += (uint64_t)(k * 5) * (uint64_t)h.interval_ns / 100;
            acc[k - 1][FELIX_C_JIT_COUNT] += (uint64_t)(10 * k * ms);
            felix_snapshot_append(s, (uint32_t)(100 + k), 0, acc[k - 1], 9);
            snprintf(names[k - 1], sizeof names[k - 1], "synth-%d", k);
            info[k - 1] = (felix_rec_thread_info)FELIX_REC_THREAD_INFO_INIT;
            info[k - 1].tid = (uint32_t)(100 + k);
            info[k - 1].name = names[k - 1];
            info[k - 1].has_cpu = 0;
        }
        if (i % 10 == 0) {
            felix_mem_clear(felix_snapshot_mem_mut(s));
            felix_mem_set(felix_snapshot_mem_mut(s), "FEXMemJIT", 1u << 20, 1u << 21, 1, 1u << 20);
            felix_snapshot_set_has_mem(s, 1);
        }
        if (felix_rec_write_sample(w, s, info, (size_t)(threads < 64 ? threads : 64)) < 0)
            return 1;
    }
    felix_snapshot_free(s);
    return felix_rec_writer_close(w, "done") < 0;
}
