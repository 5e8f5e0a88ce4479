/*
 * Deltas: everything derived from two snapshots. This is the one place where
 * loads, per-second rates, history flags and thread churn are computed, for
 * live views, replays and exports alike.
 *
 * For an interval of T seconds (measured from the snapshots' monotonic
 * times), a counter frequency F and n threads seen on C host CPUs:
 *   thread load %  = (dJIT + dSignal) / (F * T) * 100
 *   FEX load %     = sum(dJIT + dSignal) / (F * T * min(n, C)) * 100
 *   rate           = delta / T            (per second; seconds per second
 *                                          for the time counters)
 *   flags          HIGH_JIT when sum(dJIT + dSignal) >= F * T; HIGH_SMC at
 *                  >= 500 * T invalidations; HIGH_SIGBUS at >= 5000 * T;
 *                  HIGH_SOFTFLOAT at >= 1,000,000 * T.
 * Churn: a thread first seen is a baseline (no delta, no spike) and is
 * reported as started; one that vanished is reported as exited with its last
 * totals; a counter that went backwards or a TID that moved to another slot
 * (slot or TID reused) ends the old thread and starts a new one, never a
 * wrapped 2^64 delta. A thread whose JIT + signal time exceeds the interval
 * is flagged FELIX_TD_OVERTIME (FEX adds a timed block's ticks when it ends,
 * so one long compile can land in one interval).
 * Frame budget: at a frame rate R (felix_delta_set_fps, default 60), a frame
 * lasts B = 1/R s; a thread's JIT + signal time is time the game did not get.
 * A thread is flagged FELIX_TD_OVER_BUDGET when it spent a whole frame's
 * budget within one frame's worth of time:
 *   T >= B: when dJIT + dSignal >= F * B in the interval (a lower bound: at
 *           least one frame was certainly lost);
 *   T <  B: when its JIT + signal time summed over the latest samples that
 *           together span at least B (the last frame's span) reaches F * B;
 *           the window then starts over, so each flag is one more frame.
 * budget_frames counts a thread's flags while it lives (a thread first seen
 * starts at 0); the window holds at most FELIX_BUDGET_WINDOW samples. The
 * frame gets FELIX_FLAG_OVER_BUDGET when any thread was flagged.
 * CPU: where snapshots carry measured host CPU times, cpu_s is a thread's
 * CPU time in the interval and jit_cpu_pct = dJIT / F / dCPU * 100 over the
 * span between its last two measurements.
 * Exec: when the two snapshots come from different process images
 * (felix_snapshot_info.image, see shm.h), no delta is computed across them:
 * the frame is a baseline (interval 0, every thread started, every thread of
 * prev exited, cumulative totals kept) with FELIX_FRAME_EXEC in events.
 *
 * A felix_delta is a reusable context: computing allocates only when the
 * thread count grows. One context is used by one thread at a time.
 */
#ifndef FELIX_DELTA_H
#define FELIX_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include <felix/snapshot.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Per-sample history flags (felix_frame.flags). */
enum felix_frame_flag {
    FELIX_FLAG_HIGH_JIT = 1u << 0,
    FELIX_FLAG_HIGH_SMC = 1u << 1,
    FELIX_FLAG_HIGH_SIGBUS = 1u << 2,
    FELIX_FLAG_HIGH_SOFTFLOAT = 1u << 3,
    FELIX_FLAG_OVER_BUDGET = 1u << 4 /**< a thread spent a frame's budget (see top) */
};

/** Lifecycle events of a frame (felix_frame.events). */
enum felix_frame_event {
    /** The process exec'd between the two snapshots: a new image, so the
     *  frame is a baseline (see top). */
    FELIX_FRAME_EXEC = 1u << 0
};

/** Thresholds per second of interval (scaled by T). */
#define FELIX_THRESHOLD_SMC_PER_S 500.0
#define FELIX_THRESHOLD_SIGBUS_PER_S 5000.0
#define FELIX_THRESHOLD_SOFTFLOAT_PER_S 1000000.0

/** Per-thread state flags (felix_thread_delta.state). */
enum felix_thread_state {
    FELIX_TD_STARTED = 1u << 0,  /**< first seen in this frame: a baseline */
    FELIX_TD_REUSED = 1u << 1,   /**< started because its TID or slot was reused */
    FELIX_TD_EXITED = 1u << 2,   /**< gone in this frame (exited list only) */
    FELIX_TD_OVERTIME = 1u << 3, /**< JIT + signal time above the interval */
    FELIX_TD_OVER_BUDGET = 1u << 4 /**< spent a frame's budget (see top) */
};

/** The default frame rate of the budget rule, and the most samples its
 *  window holds (a frame at 30 fps sampled every 0.84 ms or more). */
#define FELIX_DEFAULT_FPS 60
#define FELIX_BUDGET_WINDOW 40

/** One thread's figures in a frame. Owned by the context. */
typedef struct felix_thread_delta {
    uint32_t tid;
    uint32_t state;                  /**< enum felix_thread_state bits */
    double load_pct;                 /**< thread load % (see top) */
    uint64_t d[FELIX_NCOUNTERS];     /**< raw delta (ticks or counts) */
    double value[FELIX_NCOUNTERS];   /**< delta in seconds (times) or counts */
    double rate[FELIX_NCOUNTERS];    /**< value / T */
    uint64_t abs[FELIX_NCOUNTERS];   /**< the thread's cumulative raw counters */
    uint32_t budget_frames;          /**< times flagged FELIX_TD_OVER_BUDGET while it lives */
    /** Host CPU seconds in the interval, when both snapshots measured the
     *  thread's CPU time (felix_snapshot_thread_cpu_ns); else -1. */
    double cpu_s;
    /** JIT time as a % of host CPU time between the thread's last two CPU
     *  measurements (kept while no new one comes, as successive frames
     *  carry it); -1 until two measurements with CPU time between them. */
    double jit_cpu_pct;
} felix_thread_delta;

/** Totals of a frame. Owned by the context. */
typedef struct felix_frame {
    uint64_t seq;                 /**< frames computed since new/reset */
    int64_t mono_ns;              /**< current snapshot's monotonic time */
    int64_t wall_ns;              /**< current snapshot's wall-clock time */
    int64_t interval_ns;          /**< measured interval (0 for a baseline) */
    double interval_s;
    uint64_t freq_hz;             /**< counter frequency used */
    uint32_t ncpus;               /**< host CPUs used in FEX load */
    uint32_t nthreads;            /**< threads in the current snapshot */
    uint32_t nstarted;            /**< threads first seen (baselines) */
    uint32_t nexited;             /**< threads gone (see felix_delta_exited()) */
    uint32_t novertime;           /**< threads flagged FELIX_TD_OVERTIME */
    double load_pct;              /**< FEX load % (see top) */
    uint64_t d[FELIX_NCOUNTERS];  /**< summed raw deltas */
    double value[FELIX_NCOUNTERS];/**< summed deltas, seconds or counts */
    double rate[FELIX_NCOUNTERS]; /**< value / T */
    /** Cumulative raw totals of every thread seen since new/reset, including
     *  what a thread did before it was first seen and threads that exited. */
    uint64_t cum[FELIX_NCOUNTERS];
    uint32_t flags;               /**< enum felix_frame_flag bits */
    uint32_t events;              /**< enum felix_frame_event bits */
    uint32_t image;               /**< the current snapshot's image */
    uint32_t nover_budget;        /**< threads flagged FELIX_TD_OVER_BUDGET */
    uint32_t fps;                 /**< the frame rate of the budget rule */
} felix_frame;

typedef struct felix_delta felix_delta;

/**
 * Create a context. freq_hz: the counter frequency (felix_clock_frequency()
 * live, the recording's header on replay); ncpus: host CPUs (0 = this host's
 * online CPUs). Errors: FELIX_EINVAL (freq_hz 0), FELIX_ENOMEM.
 */
int felix_delta_new(felix_delta **out, uint64_t freq_hz, unsigned ncpus);
/** Free (NULL is allowed). */
void felix_delta_free(felix_delta *d);
/** Forget cumulative totals, the frame counter and budget counts. */
void felix_delta_reset(felix_delta *d);
/** The frame rate of the budget rule (1 to 1000; default 60). Budget windows
 *  start over; counts so far are kept. Errors: FELIX_EINVAL. */
int felix_delta_set_fps(felix_delta *d, unsigned fps);

/**
 * Compute a frame from prev to cur. prev may be NULL: a baseline frame where
 * every thread is started and every delta is 0. cur must be later than prev
 * (FELIX_EINVAL otherwise). Successive calls should pass successive
 * snapshots: cumulative totals add up what each frame saw exit.
 */
int felix_delta_compute(felix_delta *d, const felix_snapshot *prev,
                        const felix_snapshot *cur);

/** The last frame computed. */
const felix_frame *felix_delta_frame(const felix_delta *d);
/** Live thread i of the last frame, ordered by load (highest first, then
 *  by TID), or NULL when i >= nthreads. */
const felix_thread_delta *felix_delta_thread(const felix_delta *d, size_t i);
/** Exited thread i of the last frame (state FELIX_TD_EXITED, abs = last
 *  totals, deltas 0), or NULL when i >= nexited. */
const felix_thread_delta *felix_delta_exited(const felix_delta *d, size_t i);

#ifdef __cplusplus
}
#endif
#endif
