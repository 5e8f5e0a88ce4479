/* Example: a non-blocking poller an overlay can call once per rendered frame.
 * No threads, no allocation per call: felix_overlay_poll() takes a snapshot
 * only when the sampling interval has passed, otherwise returns at once with
 * the last figures. Build: cc felix-overlay-poll.c $(pkg-config --cflags --libs libfelix)
 * Usage: felix-overlay-poll PID [FRAMES] (simulates a 60 fps render loop) */
#include <felix/felix.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct felix_overlay {
    felix_shm *shm;
    felix_snapshot *snap[2];
    felix_delta *delta;
    int cur, have_prev;
    int64_t interval_ns, next_ns;
    double load_pct, jit_per_s;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Set up once (allocates); 0 or a FELIX_E* code. */
static int felix_overlay_init(struct felix_overlay *o, int pid, int64_t interval_ns)
{
    uint64_t hz;
    int rc;
    *o = (struct felix_overlay){0};
    o->interval_ns = interval_ns;
    if ((rc = felix_clock_frequency(&hz, NULL)) < 0 || (rc = felix_shm_open_pid(&o->shm, pid, 0)) < 0 ||
        (rc = felix_snapshot_new(&o->snap[0])) < 0 || (rc = felix_snapshot_new(&o->snap[1])) < 0 ||
        (rc = felix_delta_new(&o->delta, hz, 0)) < 0)
        return rc;
    return 0;
}

/* Call every frame: cheap unless a sample is due. 1 when the figures changed. */
static int felix_overlay_poll(struct felix_overlay *o)
{
    int64_t now = now_ns();
    if (now < o->next_ns)
        return 0;
    o->next_ns = now + o->interval_ns;
    felix_snapshot *cur = o->snap[o->cur];
    if (felix_shm_snapshot(o->shm, cur) < 0)
        return 0;
    int changed = 0;
    if (o->have_prev && felix_delta_compute(o->delta, o->snap[o->cur ^ 1], cur) == 0) {
        const felix_frame *f = felix_delta_frame(o->delta);
        o->load_pct = f->load_pct;
        o->jit_per_s = f->rate[FELIX_C_JIT_COUNT];
        changed = 1;
    }
    o->have_prev = 1;
    o->cur ^= 1;
    return changed;
}

static void felix_overlay_close(struct felix_overlay *o)
{
    felix_delta_free(o->delta);
    felix_snapshot_free(o->snap[0]);
    felix_snapshot_free(o->snap[1]);
    felix_shm_close(o->shm);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PID [FRAMES]\n", argv[0]);
        return 2;
    }
    int frames = argc > 2 ? atoi(argv[2]) : 600;
    struct felix_overlay o;
    if (felix_overlay_init(&o, atoi(argv[1]), 250000000) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
        return 1;
    }
    int updates = 0;
    for (int i = 0; i < frames; i++) { /* the game's render loop at ~60 fps */
        if (felix_overlay_poll(&o)) {
            printf("frame %4d: FEX load %5.1f%%, %8.0f blocks/s\n", i, o.load_pct, o.jit_per_s);
            updates++;
        }
        struct timespec frame = {0, 16666667};
        nanosleep(&frame, NULL);
    }
    felix_overlay_close(&o);
    return updates > 0 ? 0 : 1;
}
