#include "perfetto.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- protobuf encoding ---- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

/* Field numbers (Perfetto's .proto files; see tests/perfetto/felix_trace.proto). */
enum {
    TRACE_PACKET = 1,
    TP_CLOCK_SNAPSHOT = 6,
    TP_TIMESTAMP = 8,
    TP_SEQUENCE_ID = 10,
    TP_TRACK_EVENT = 11,
    TP_SEQUENCE_FLAGS = 13,
    TP_TIMESTAMP_CLOCK_ID = 58,
    TP_TRACK_DESCRIPTOR = 60,
    CS_CLOCKS = 1,
    CS_PRIMARY_TRACE_CLOCK = 2,
    CLOCK_ID = 1,
    CLOCK_TIMESTAMP = 2,
    TD_UUID = 1,
    TD_NAME = 2,
    TD_PROCESS = 3,
    TD_THREAD = 4,
    TD_PARENT_UUID = 5,
    TD_COUNTER = 8,
    PD_PID = 1,
    PD_PROCESS_NAME = 6,
    THD_PID = 1,
    THD_TID = 2,
    THD_THREAD_NAME = 5,
    CD_UNIT = 3,
    CD_UNIT_NAME = 6,
    TE_TYPE = 9,
    TE_TRACK_UUID = 11,
    TE_CATEGORIES = 22,
    TE_NAME = 23,
    TE_COUNTER_VALUE = 30,
    TE_DOUBLE_COUNTER_VALUE = 44,
};

enum { CLOCK_REALTIME_ID = 1, CLOCK_MONOTONIC_ID = 3, CLOCK_BOOTTIME_ID = 6 };
enum { TYPE_INSTANT = 3, TYPE_COUNTER = 4 };
enum { UNIT_SIZE_BYTES = 3 };
enum { SEQ_INCREMENTAL_STATE_CLEARED = 1 };
#define SEQUENCE 1

/* A growable buffer; kept between messages, so it grows to the largest
 * message once (names are short) and no more. */
struct pb {
    unsigned char *p;
    size_t n, cap;
    int failed;
};

static void pb_need(struct pb *b, size_t more)
{
    if (b->n + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + more)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        b->n = 0; /* keep writing into what there is: the result is dropped */
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void pb_varint(struct pb *b, uint64_t v)
{
    pb_need(b, 10);
    if (b->failed)
        return;
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        b->p[b->n++] = (unsigned char)(c | (v ? 0x80 : 0));
    } while (v);
}

static void pb_tag(struct pb *b, unsigned field, unsigned wt) { pb_varint(b, (uint64_t)field << 3 | wt); }
static void pb_uint(struct pb *b, unsigned field, uint64_t v) { pb_tag(b, field, WT_VARINT), pb_varint(b, v); }
static void pb_int(struct pb *b, unsigned field, int64_t v) { pb_uint(b, field, (uint64_t)v); } /* int64: two's complement */

static void pb_double(struct pb *b, unsigned field, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    pb_tag(b, field, WT_I64);
    pb_need(b, 8);
    if (b->failed)
        return;
    for (int i = 0; i < 8; i++)
        b->p[b->n++] = (unsigned char)(u >> (8 * i)); /* little-endian on every host */
}

static void pb_bytes(struct pb *b, unsigned field, const void *s, size_t n)
{
    pb_tag(b, field, WT_LEN);
    pb_varint(b, n);
    pb_need(b, n);
    if (b->failed)
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void pb_str(struct pb *b, unsigned field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
static void pb_msg(struct pb *b, unsigned field, const struct pb *m) { pb_bytes(b, field, m->p, m->n); }

/* Names from outside (thread, process and region names) as printable ASCII
 * (text.h's terminal form: controls and invalid bytes as \xNN, other
 * characters as \u{XXXX}): a protobuf string is UTF-8, and a name may hold
 * any bytes. */
static const char *ascii(char *dst, size_t len, const char *src) { return text_term_str(dst, len, src, 1); }

/* ---- the trace ---- */

/* Counter tracks of the process, in this order. */
enum { C_LOAD, C_JIT_MS, C_SIGNAL_MS, C_RDLOCK_MS, C_WRLOCK_MS, C_BLOCKS, C_SMC, C_SIGBUS, C_SOFTFLOAT, C_MISS, NPC };
static const char *const counter_names[NPC] = {
    "FEX load %", "JIT ms/s", "signal ms/s", "cache read lock ms/s", "cache write lock ms/s",
    "JIT blocks/s", "SMC/s", "SIGBUS/s", "soft-float/s", "cache misses/s",
};
static const int counter_of[NPC] = {-1, FELIX_C_JIT_TIME, FELIX_C_SIGNAL_TIME, FELIX_C_CACHE_RDLOCK,
                                    FELIX_C_CACHE_WRLOCK, FELIX_C_JIT_COUNT, FELIX_C_SMC, FELIX_C_SIGBUS,
                                    FELIX_C_SOFTFLOAT, FELIX_C_CACHE_MISS};

#define PROCESS_UUID 1ull
#define COUNTER_UUID(k) (0x100ull + (uint64_t)(k))
#define REGION_UUID(k) (0x1000ull + (uint64_t)(k))
#define THREAD_UUID(n) ((1ull << 32) + 2 * (uint64_t)(n)) /* its load counter: + 1 */

/* A live thread's track: TID to the instance's number, open addressing. */
struct slot {
    uint32_t tid; /* 0: empty */
    uint32_t gone;
    uint64_t n;
    char name[64];
};

struct pf {
    pf_put put;
    struct pb pkt, msg, sub; /* a packet, a message in it, a message in that */
    int pid;
    struct slot *t;
    size_t tcap, tcount; /* tcap a power of two, at least twice tcount */
    uint64_t threads;    /* thread instances so far */
    char (*regions)[48];
    size_t nregions;
};

/* Write the packet built in p->pkt (with the sequence and, for timed
 * packets, the time on the recording's monotonic clock). */
static void emit(pf *p, int64_t ts)
{
    struct pb *k = &p->pkt;
    if (ts >= 0) {
        pb_uint(k, TP_TIMESTAMP, (uint64_t)ts);
        pb_uint(k, TP_TIMESTAMP_CLOCK_ID, CLOCK_MONOTONIC_ID);
    }
    pb_uint(k, TP_SEQUENCE_ID, SEQUENCE);
    if (!k->failed) {
        unsigned char head[20]; /* two varints: room for both, so it never needs to grow */
        struct pb h = {head, 0, sizeof head, 0};
        pb_tag(&h, TRACE_PACKET, WT_LEN);
        pb_varint(&h, k->n);
        p->put(head, h.n);
        p->put(k->p, k->n);
    }
    k->n = 0;
    k->failed = 0;
}

static void track(pf *p, uint64_t uuid, uint64_t parent, const char *name, int unit, const char *unit_name)
{
    struct pb *m = &p->msg, *s = &p->sub;
    m->n = s->n = 0;
    pb_uint(m, TD_UUID, uuid);
    if (parent)
        pb_uint(m, TD_PARENT_UUID, parent);
    pb_str(m, TD_NAME, name);
    if (unit)
        pb_uint(s, CD_UNIT, (uint64_t)unit);
    if (unit_name)
        pb_str(s, CD_UNIT_NAME, unit_name);
    pb_msg(m, TD_COUNTER, s); /* a CounterDescriptor, empty or not: a counter track */
    pb_msg(&p->pkt, TP_TRACK_DESCRIPTOR, m);
    emit(p, -1);
}

static void counter(pf *p, int64_t ts, uint64_t uuid, double v, int integer)
{
    struct pb *m = &p->msg;
    m->n = 0;
    pb_uint(m, TE_TYPE, TYPE_COUNTER);
    pb_uint(m, TE_TRACK_UUID, uuid);
    if (integer)
        pb_int(m, TE_COUNTER_VALUE, (int64_t)v);
    else
        pb_double(m, TE_DOUBLE_COUNTER_VALUE, v);
    pb_msg(&p->pkt, TP_TRACK_EVENT, m);
    emit(p, ts);
}

static void instant(pf *p, int64_t ts, uint64_t uuid, const char *name)
{
    struct pb *m = &p->msg;
    m->n = 0;
    pb_uint(m, TE_TYPE, TYPE_INSTANT);
    pb_uint(m, TE_TRACK_UUID, uuid);
    pb_str(m, TE_CATEGORIES, "felix");
    pb_str(m, TE_NAME, name);
    pb_msg(&p->pkt, TP_TRACK_EVENT, m);
    emit(p, ts);
}

pf *pf_open(pf_put put, const felix_rec_header *h)
{
    pf *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->put = put;
    p->pid = h->pid;
    /* The clocks: the recording's monotonic origin beside REALTIME and, when
     * recorded, BOOTTIME (a system trace's clock), read at the same moment. */
    struct pb *m = &p->msg, *s = &p->sub;
    pb_uint(s, CLOCK_ID, CLOCK_MONOTONIC_ID);
    pb_uint(s, CLOCK_TIMESTAMP, (uint64_t)h->start_mono_ns);
    pb_msg(m, CS_CLOCKS, s);
    s->n = 0;
    pb_uint(s, CLOCK_ID, CLOCK_REALTIME_ID);
    pb_uint(s, CLOCK_TIMESTAMP, (uint64_t)h->start_wall_ns);
    pb_msg(m, CS_CLOCKS, s);
    if (h->start_boot_ns > 0) {
        s->n = 0;
        pb_uint(s, CLOCK_ID, CLOCK_BOOTTIME_ID);
        pb_uint(s, CLOCK_TIMESTAMP, (uint64_t)h->start_boot_ns);
        pb_msg(m, CS_CLOCKS, s);
    } else {
        pb_uint(m, CS_PRIMARY_TRACE_CLOCK, CLOCK_MONOTONIC_ID); /* no BOOTTIME to convert to */
    }
    pb_msg(&p->pkt, TP_CLOCK_SNAPSHOT, m);
    pb_uint(&p->pkt, TP_SEQUENCE_FLAGS, SEQ_INCREMENTAL_STATE_CLEARED);
    emit(p, h->start_mono_ns);
    /* The process track, then its counters. */
    char name[160];
    m->n = s->n = 0;
    pb_uint(m, TD_UUID, PROCESS_UUID);
    pb_int(s, PD_PID, h->pid);
    pb_str(s, PD_PROCESS_NAME, ascii(name, sizeof name, h->name));
    pb_msg(m, TD_PROCESS, s);
    pb_msg(&p->pkt, TP_TRACK_DESCRIPTOR, m);
    emit(p, -1);
    for (int k = 0; k < NPC; k++)
        track(p, COUNTER_UUID(k), PROCESS_UUID, counter_names[k], 0,
              k == C_LOAD ? "%" : felix_counter_is_time(counter_of[k]) ? "ms/s" : "/s");
    if (p->pkt.failed || p->msg.failed || p->sub.failed) {
        pf_close(p);
        return NULL;
    }
    return p;
}

void pf_close(pf *p)
{
    if (!p)
        return;
    free(p->pkt.p);
    free(p->msg.p);
    free(p->sub.p);
    free(p->t);
    free(p->regions);
    free(p);
}

static size_t hash_tid(uint32_t tid, size_t mask) { return (size_t)(tid * 2654435761u) & mask; }

static struct slot *find(pf *p, uint32_t tid)
{
    if (!p->tcap)
        return NULL;
    size_t mask = p->tcap - 1;
    for (size_t h = hash_tid(tid, mask);; h = (h + 1) & mask) {
        if (p->t[h].tid == tid && !p->t[h].gone)
            return &p->t[h];
        if (p->t[h].tid == 0)
            return NULL;
    }
}

/* Room for one more thread: the table rebuilt without the threads gone. */
static int reserve(pf *p)
{
    size_t used = 0;
    for (size_t i = 0; i < p->tcap; i++)
        used += p->t[i].tid != 0;
    if ((used + 1) * 2 <= p->tcap)
        return 0;
    size_t cap = 64;
    while (cap < (p->tcount + 1) * 4)
        cap *= 2;
    struct slot *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < p->tcap; i++) {
        if (!p->t[i].tid || p->t[i].gone)
            continue;
        size_t h = hash_tid(p->t[i].tid, cap - 1);
        while (t[h].tid)
            h = (h + 1) & (cap - 1);
        t[h] = p->t[i];
    }
    free(p->t);
    p->t = t;
    p->tcap = cap;
    return 0;
}

static void thread_track(pf *p, const struct slot *x)
{
    struct pb *m = &p->msg, *s = &p->sub;
    m->n = s->n = 0;
    pb_uint(m, TD_UUID, THREAD_UUID(x->n));
    pb_uint(m, TD_PARENT_UUID, PROCESS_UUID);
    pb_int(s, THD_PID, p->pid);
    pb_int(s, THD_TID, x->tid);
    if (x->name[0])
        pb_str(s, THD_THREAD_NAME, x->name);
    pb_msg(m, TD_THREAD, s);
    pb_msg(&p->pkt, TP_TRACK_DESCRIPTOR, m);
    emit(p, -1);
}

static uint64_t region_track(pf *p, const char *name)
{
    for (size_t i = 0; i < p->nregions; i++)
        if (strcmp(p->regions[i], name) == 0)
            return REGION_UUID(i);
    if (p->nregions >= FELIX_MEM_MAX_REGIONS)
        return 0;
    if (!p->regions && !(p->regions = calloc(FELIX_MEM_MAX_REGIONS, sizeof *p->regions)))
        return 0;
    size_t i = p->nregions++;
    snprintf(p->regions[i], sizeof p->regions[i], "%s", name);
    char label[240], a[200];
    snprintf(label, sizeof label, "memory %s", ascii(a, sizeof a, name));
    track(p, REGION_UUID(i), PROCESS_UUID, label, UNIT_SIZE_BYTES, NULL);
    return REGION_UUID(i);
}

int pf_frame(pf *p, const felix_delta *d, const felix_snapshot *cur, const felix_source *names)
{
    const felix_frame *f = felix_delta_frame(d);
    const int64_t ts = f->mono_ns;
    /* Threads that ended: an instant on their track, which then closes. */
    for (size_t i = 0; i < f->nexited; i++) {
        struct slot *x = find(p, felix_delta_exited(d, i)->tid);
        if (x) {
            instant(p, ts, THREAD_UUID(x->n), "thread exited");
            x->gone = 1;
            p->tcount--;
        }
    }
    for (size_t i = 0; i < f->nthreads; i++) {
        const felix_thread_delta *t = felix_delta_thread(d, i);
        struct slot *x = find(p, t->tid);
        const char *nm = names ? felix_source_thread_name(names, t->tid) : NULL;
        char a[64];
        if (!x) { /* started (or seen for the first time): a new track */
            if (reserve(p) < 0)
                return -1;
            size_t h = hash_tid(t->tid, p->tcap - 1);
            while (p->t[h].tid)
                h = (h + 1) & (p->tcap - 1);
            x = &p->t[h];
            memset(x, 0, sizeof *x);
            x->tid = t->tid;
            x->n = p->threads++;
            p->tcount++;
            if (nm)
                ascii(x->name, sizeof x->name, nm);
            thread_track(p, x);
            track(p, THREAD_UUID(x->n) + 1, THREAD_UUID(x->n), "load %", 0, "%");
            if (t->state & FELIX_TD_STARTED) /* not a thread there from the start */
                instant(p, ts, THREAD_UUID(x->n), "thread started");
        } else if (nm && strcmp(ascii(a, sizeof a, nm), x->name) != 0) { /* named or renamed */
            snprintf(x->name, sizeof x->name, "%s", a);
            thread_track(p, x);
        }
        if (f->interval_ns > 0)
            counter(p, ts, THREAD_UUID(x->n) + 1, t->load_pct, 0);
    }
    if (f->interval_ns > 0) {
        counter(p, ts, COUNTER_UUID(C_LOAD), f->load_pct, 0);
        for (int k = 1; k < NPC; k++) {
            int c = counter_of[k];
            counter(p, ts, COUNTER_UUID(k), felix_counter_is_time(c) ? f->rate[c] * 1e3 : f->rate[c], 0);
        }
        static const struct {
            unsigned flag;
            const char *name;
        } flags[] = {{FELIX_FLAG_HIGH_JIT, "high JIT"},
                     {FELIX_FLAG_HIGH_SMC, "high SMC"},
                     {FELIX_FLAG_HIGH_SIGBUS, "high SIGBUS"},
                     {FELIX_FLAG_HIGH_SOFTFLOAT, "high soft-float"},
                     {FELIX_FLAG_OVER_BUDGET, "over the frame budget"}};
        for (size_t k = 0; k < sizeof flags / sizeof *flags; k++)
            if (f->flags & flags[k].flag)
                instant(p, ts, PROCESS_UUID, flags[k].name);
    }
    const felix_mem *mem = felix_snapshot_mem(cur);
    for (size_t i = 0; mem && i < felix_mem_count(mem); i++) {
        const felix_region *r = felix_mem_region(mem, i);
        uint64_t uuid = region_track(p, r->name);
        if (uuid)
            counter(p, ts, uuid, (double)r->rss, 1);
    }
    return p->pkt.failed || p->msg.failed || p->sub.failed ? -1 : 0;
}

void pf_event(pf *p, const felix_rec_event *ev)
{
    char name[96];
    switch (ev->kind) {
    case FELIX_EV_EXEC: instant(p, ev->mono_ns, PROCESS_UUID, "exec"); break;
    case FELIX_EV_PROCESS_EXITED:
        if (ev->has_status)
            snprintf(name, sizeof name, "process exited (wait status %d)", ev->status);
        else
            snprintf(name, sizeof name, "process exited");
        instant(p, ev->mono_ns, PROCESS_UUID, name);
        break;
    case FELIX_EV_INTERVAL_CHANGED:
        snprintf(name, sizeof name, "interval changed to %lld ms", (long long)(ev->interval_ns / 1000000));
        instant(p, ev->mono_ns, PROCESS_UUID, name);
        break;
    case FELIX_EV_SAMPLES_MISSED:
        snprintf(name, sizeof name, "%llu samples missed", (unsigned long long)ev->count);
        instant(p, ev->mono_ns, PROCESS_UUID, name);
        break;
    default: break;
    }
}
