/* Sources: live and recorded snapshots through one API, with the same
 * lifecycle events. */
#include "helpers.h"
#include "t.h"

#include <felix/felix.h>
#include <sys/wait.h>
#include <unistd.h>

/* The lifecycle events of a run, as text: kind, TID, image, and for the
 * exit its status; times relative to the header's start. */
struct events {
    char text[1 << 16];
    size_t len;
    unsigned samples, execs, starts, exits, intervals, exited;
    int status;
};

static void note(struct events *e, const felix_rec_event *ev, int64_t origin)
{
    if (ev->kind == FELIX_EV_SAMPLES_MISSED || ev->kind == FELIX_EV_STOPPED)
        return;
    if (e->len < sizeof e->text - 100)
        e->len += (size_t)snprintf(e->text + e->len, sizeof e->text - e->len, "%d %u %llu %lld\n", ev->kind,
                                   ev->tid, (unsigned long long)ev->count, (long long)(ev->mono_ns - origin));
    e->execs += ev->kind == FELIX_EV_EXEC;
    e->starts += ev->kind == FELIX_EV_THREAD_STARTED;
    e->exits += ev->kind == FELIX_EV_THREAD_EXITED;
    e->intervals += ev->kind == FELIX_EV_INTERVAL_CHANGED;
    if (ev->kind == FELIX_EV_PROCESS_EXITED) {
        e->exited++;
        e->status = ev->has_status ? ev->status : -1;
    }
}

/* A felix-sim that execs once and exits with status 3, followed by a live
 * source (its child) and recorded as felix-rec records: every item until
 * the end; then the recording read by a recording source gives the same
 * events (thread starts and exits, the exec, the interval change, the
 * exit) at the same times. */
static void live_and_recorded_events_agree(void)
{
    const char *args[] = {"-t", "3", "-d", "1500ms", "--exit-status", "3", "--exec", "1", "--exec-every", "600ms",
                          "--no-mem", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_source_options so = FELIX_SOURCE_OPTIONS_INIT;
    so.interval_ns = 20000000;
    so.flags = FELIX_SOURCE_CHILD;
    felix_source *src;
    REQUIRE(felix_source_open_pid(&src, pid, &so) == 0);
    CHECK(felix_source_is_live(src));
    CHECK(felix_source_reader(src) == NULL && felix_source_shm(src) != NULL);
    CHECK_EQ(felix_source_seek_sample(src, 0), FELIX_ENOTSUP);
    const felix_rec_header *h = felix_source_header(src);
    CHECK_EQ(h->version, FELIX_REC_HEADER_VERSION);
    CHECK_EQ(h->pid, pid);
    CHECK_EQ(h->interval_ns, 20000000);
    CHECK(h->start_boot_ns >= h->start_mono_ns); /* BOOTTIME counts suspend too: never behind */
    const int64_t origin = h->start_mono_ns;
    char path[256];
    snprintf(path, sizeof path, "%s/source-events.felix", t_tmpdir());
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_path(&w, path, h, NULL) == 0);
    felix_snapshot *snap;
    REQUIRE(felix_snapshot_new(&snap) == 0);
    static struct events live, rec;
    int rc = 0, item = 0, ended = 0, changed = 0;
    uint32_t image = 1;
    int64_t deadline = t_now_ns() + 30000000000LL;
    while (t_now_ns() < deadline) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        rc = felix_source_next(src, snap, &ev, &item);
        if (rc == FELIX_ERESTART) {
            t_sleep_ms(5);
            continue;
        }
        if (rc < 0)
            break;
        if (item == FELIX_REC_END) {
            ended = 1;
            continue; /* the next call: FELIX_EEOF */
        }
        if (item == FELIX_REC_EVENT) {
            CHECK_EQ(ev.version, FELIX_REC_EVENT_VERSION);
            note(&live, &ev, origin);
            if (ev.kind == FELIX_EV_EXEC)
                image = (uint32_t)ev.count;
            if (ev.kind == FELIX_EV_INTERVAL_CHANGED || ev.kind == FELIX_EV_PROCESS_EXITED)
                CHECK_EQ(felix_rec_write_event(w, &ev), 0);
            continue;
        }
        live.samples++;
        CHECK_EQ(felix_snapshot_get_info(snap)->image, image); /* an exec's event comes before its sample */
        const felix_rec_thread_info *info;
        size_t ninfo;
        felix_source_thread_info(src, &info, &ninfo);
        CHECK_EQ(felix_rec_write_sample(w, snap, info, ninfo), 0);
        if (live.samples == 10 && !changed) {
            CHECK_EQ(felix_source_set_interval(src, 10000000), 0);
            changed = 1;
        }
        t_sleep_ms(live.samples > 10 ? 10 : 20);
    }
    CHECK_EQ(rc, FELIX_EEOF);
    CHECK(ended);
    CHECK_EQ(felix_source_next(src, snap, NULL, &item), FELIX_EEOF); /* and stays there */
    CHECK_EQ(felix_rec_writer_close(w, "test"), 0);
    felix_source_close(src);
    fprintf(stderr, "live: %u samples, %u starts, %u exits, %u execs\n", live.samples, live.starts, live.exits,
            live.execs);
    CHECK(live.samples > 20);
    CHECK_EQ(live.execs, 1);
    CHECK(live.exits >= 3 && live.starts >= 3); /* the old image's threads ended, the new one's started */
    CHECK_EQ(live.intervals, 1);
    CHECK_EQ(live.exited, 1);
    CHECK(WIFEXITED(live.status) && WEXITSTATUS(live.status) == 3);

    REQUIRE(felix_source_open_recording(&src, path, NULL) == 0);
    CHECK(!felix_source_is_live(src));
    CHECK_EQ(felix_source_set_interval(src, 1000000), FELIX_ENOTSUP);
    CHECK_EQ(felix_source_header(src)->start_mono_ns, origin);
    ended = 0;
    for (;;) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        if ((rc = felix_source_next(src, snap, &ev, &item)) < 0)
            break;
        if (item == FELIX_REC_EVENT)
            note(&rec, &ev, origin);
        rec.samples += item == FELIX_REC_SAMPLE;
        ended |= item == FELIX_REC_END;
    }
    CHECK_EQ(rc, FELIX_EEOF);
    CHECK(ended);
    CHECK_EQ(rec.samples, live.samples);
    CHECK_EQ(rec.len, live.len);
    CHECK(memcmp(rec.text, live.text, live.len) == 0);
    if (rec.len != live.len || memcmp(rec.text, live.text, live.len) != 0)
        fprintf(stderr, "live events:\n%.2000s\nrecorded events:\n%.2000s\n", live.text, rec.text);
    felix_source_close(src);
    felix_snapshot_free(snap);
}

/* Names read live and recorded come back from a recording source: by TID,
 * and as the thread info a re-recording would write. */
static void thread_facts_both_ways(void)
{
    const char *args[] = {"-t", "2", "--thread-name", "facts", "--no-mem", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_source_options so = FELIX_SOURCE_OPTIONS_INIT;
    so.slow_ns = 1; /* names and CPU times at every sample */
    felix_source *src;
    REQUIRE(felix_source_open_pid(&src, pid, &so) == 0);
    char path[256];
    snprintf(path, sizeof path, "%s/source-facts.felix", t_tmpdir());
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_path(&w, path, felix_source_header(src), NULL) == 0);
    felix_snapshot *snap;
    REQUIRE(felix_snapshot_new(&snap) == 0);
    int item, samples = 0;
    uint32_t tid = 0;
    for (int tries = 0; samples < 3 && tries < 200; tries++) {
        int rc = felix_source_next(src, snap, NULL, &item);
        if (rc == 0 && item == FELIX_REC_SAMPLE) {
            const felix_rec_thread_info *info;
            size_t n;
            felix_source_thread_info(src, &info, &n);
            CHECK_EQ(felix_rec_write_sample(w, snap, info, n), 0);
            samples++;
            if (felix_snapshot_get_info(snap)->nthreads)
                tid = felix_snapshot_thread(snap, 0)->tid;
        }
        t_sleep_ms(20);
    }
    REQUIRE(samples == 3 && tid != 0);
    const char *live_name = felix_source_thread_name(src, tid);
    REQUIRE(live_name != NULL);
    CHECK(strncmp(live_name, "facts-", 6) == 0);
    uint64_t cpu = 0;
    CHECK_EQ(felix_snapshot_thread_cpu_ns(snap, 0, &cpu), 0); /* measured with the sample */
    char name[32];
    snprintf(name, sizeof name, "%s", live_name);
    CHECK_EQ(felix_rec_writer_close(w, "test"), 0);
    felix_source_close(src);
    sim_stop(pid);

    REQUIRE(felix_source_open_recording(&src, path, NULL) == 0);
    int got = 0;
    while (felix_source_next(src, snap, NULL, &item) == 0)
        if (item == FELIX_REC_SAMPLE && ++got == 3)
            break;
    CHECK_EQ(got, 3);
    const char *rec_name = felix_source_thread_name(src, tid);
    CHECK(rec_name && strcmp(rec_name, name) == 0);
    uint64_t rec_cpu = 0;
    long i = felix_snapshot_index(snap, tid);
    CHECK(i >= 0 && felix_snapshot_thread_cpu_ns(snap, (size_t)i, &rec_cpu) == 0);
    const felix_rec_thread_info *info;
    size_t n;
    felix_source_thread_info(src, &info, &n);
    int found = 0;
    for (size_t k = 0; k < n; k++)
        if (info[k].tid == tid) {
            found = 1;
            CHECK_EQ(info[k].version, FELIX_REC_THREAD_INFO_VERSION);
            CHECK(info[k].name && strcmp(info[k].name, name) == 0);
            CHECK(info[k].has_cpu && info[k].cpu_ns == rec_cpu);
        }
    CHECK(found);
    felix_source_close(src);
    felix_snapshot_free(snap);
}

/* A saved image by path: samples without a process (no names, no exit, no
 * descriptor); bad options and arguments refused. */
static void image_and_errors(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/source-image", t_tmpdir());
    img im;
    img_init(&im, 4096, 80);
    uint64_t words[9] = {1000, 0, 0, 0, 0, 0, 0, 0, 7};
    uint32_t offs[2] = {img_slot(&im, 0, 4242, words, 9), img_slot(&im, 1, 4243, words, 9)};
    img_link(&im, offs, 2);
    REQUIRE(img_write(&im, path) == 0);
    img_free(&im);
    felix_source *src = NULL;
    felix_source_options bad;
    memset(&bad, 0, sizeof bad);
    CHECK_EQ(felix_source_open_path(&src, path, &bad), FELIX_EINVAL);
    felix_source_options_init(&bad);
    bad.interval_ns = -1;
    CHECK_EQ(felix_source_open_path(&src, path, &bad), FELIX_EINVAL);
    CHECK_EQ(felix_source_open_pid(&src, 0, NULL), FELIX_EINVAL);
    CHECK_EQ(felix_source_open_pid(&src, getpid(), NULL), FELIX_ENOSTATS); /* not FEX */
    CHECK_EQ(felix_source_open_recording(&src, path, NULL), FELIX_ECORRUPT); /* not a recording */
    CHECK(src == NULL);
    REQUIRE(felix_source_open_path(&src, path, NULL) == 0);
    CHECK(felix_source_is_live(src));
    CHECK_EQ(felix_source_fd(src), -1);
    felix_snapshot *snap;
    REQUIRE(felix_snapshot_new(&snap) == 0);
    int item = 0;
    felix_rec_event ev;
    memset(&ev, 0, sizeof ev);
    CHECK_EQ(felix_source_next(src, snap, &ev, &item), FELIX_EINVAL); /* an event without its version */
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(felix_source_next(src, snap, NULL, &item), 0);
        CHECK_EQ(item, FELIX_REC_SAMPLE);
        CHECK_EQ(felix_snapshot_get_info(snap)->nthreads, 2);
    }
    CHECK(felix_source_thread_name(src, 4242) == NULL);
    const felix_rec_thread_info *info;
    size_t n = 9;
    felix_source_thread_info(src, &info, &n);
    CHECK_EQ(n, 0);
    CHECK_EQ(felix_source_next(src, NULL, NULL, &item), 0); /* a sample nobody wants: still taken */
    felix_source_close(src);
    felix_snapshot_free(snap);
    felix_source_close(NULL);
}

/* An image by path rewritten between samples: threads {1,2}, then {2,3},
 * then {3} in a new slot (restarted). */
static void write_stage(const char *path, int stage)
{
    img im;
    img_init(&im, 65536, 80); /* above a page: a rewrite is not taken for an exec */
    uint64_t w[9] = {100, 0, 0, 0, 0, 0, 0, 0, 1};
    uint32_t offs[2];
    size_t n = 0;
    if (stage == 0) {
        offs[n++] = img_slot(&im, 0, 1, w, 9);
        offs[n++] = img_slot(&im, 1, 2, w, 9);
    } else if (stage == 1) {
        w[0] = 200;
        offs[n++] = img_slot(&im, 1, 2, w, 9);
        offs[n++] = img_slot(&im, 0, 3, w, 9);
    } else {
        w[0] = 5; /* counters back near 0 in another slot: a new thread */
        offs[n++] = img_slot(&im, 2, 3, w, 9);
    }
    img_link(&im, offs, n);
    img_write(&im, path);
    img_free(&im);
}

struct oom_source {
    char path[256];
    char want[512];
    char got[512];
};

static int oom_source_step(void *arg)
{
    struct oom_source *o = arg;
    t_alloc_pause(1);
    write_stage(o->path, 0);
    t_alloc_pause(0);
    felix_source *src;
    int rc = felix_source_open_path(&src, o->path, NULL), oom = 0;
    if (rc < 0)
        return rc;
    felix_snapshot *snap;
    if ((rc = felix_snapshot_new(&snap)) < 0) {
        felix_source_close(src);
        return rc;
    }
    size_t len = 0;
    o->got[0] = '\0';
    for (int stage = 0; stage < 3 && rc == 0; stage++) {
        t_alloc_pause(1);
        write_stage(o->path, stage);
        t_alloc_pause(0);
        for (;;) {
            felix_rec_event ev = FELIX_REC_EVENT_INIT;
            int item = 0;
            rc = felix_source_next(src, snap, &ev, &item);
            if (rc == FELIX_ENOMEM) { /* nothing consumed: the same call again */
                oom = 1;
                t_alloc_heal();
                continue;
            }
            if (rc < 0)
                break;
            if (item == FELIX_REC_EVENT)
                len += (size_t)snprintf(o->got + len, sizeof o->got - len, "E%d:%u ", ev.kind, ev.tid);
            if (item == FELIX_REC_SAMPLE) {
                const felix_snapshot_info *si = felix_snapshot_get_info(snap);
                len += (size_t)snprintf(o->got + len, sizeof o->got - len, "S%u:", si->nthreads);
                for (size_t i = 0; i < si->nthreads; i++)
                    len += (size_t)snprintf(o->got + len, sizeof o->got - len, "%u,", felix_snapshot_thread(snap, i)->tid);
                len += (size_t)snprintf(o->got + len, sizeof o->got - len, " ");
                break;
            }
        }
    }
    felix_snapshot_free(snap);
    felix_source_close(src);
    if (rc == 0 && o->want[0] && strcmp(o->got, o->want) != 0) {
        fprintf(stderr, "after out-of-memory the source gave\n  %s\ninstead of\n  %s\n", o->got, o->want);
        rc = -100;
    }
    return rc < 0 ? rc : oom ? FELIX_ENOMEM : 0;
}

/* A live source under out-of-memory at every allocation in turn: a call
 * that fails consumes nothing, and called again the source gives exactly
 * the items of a run that never failed (no event lost or twice). */
static void oom_source(void)
{
    struct oom_source o;
    memset(&o, 0, sizeof o);
    snprintf(o.path, sizeof o.path, "%s/source-oom", t_tmpdir());
    t_alloc_install();
    REQUIRE(oom_source_step(&o) == 0);
    snprintf(o.want, sizeof o.want, "%s", o.got);
    fprintf(stderr, "items: %s\n", o.want);
    /* exits in the previous sample's order, then starts: 3 restarted in place is both */
    CHECK(strcmp(o.want, "S2:1,2, E2:1 E1:3 S2:2,3, E2:2 E2:3 E1:3 S1:3, ") == 0);
    CHECK(t_oom_every("source", oom_source_step, &o, 10));
}

T_MAIN(T(live_and_recorded_events_agree), T(thread_facts_both_ways), T(image_and_errors), T(oom_source))
