/* The raw bytes FEX's segment held for each sample of a recording, as a
 * generic compressor would see them if one copied the segment every sample:
 * the 64-byte header, then per thread its 8-byte Next/TID word and its
 * counter words (header + 8 + 8 x words per thread per sample; free slots
 * and the rest of the object left out). bench_format.py compresses this with
 * xz -9 to compare with the recording. Prints "SAMPLES THREAD-SAMPLES" on
 * standard error. Usage: raw_slots REC > FILE */
#include <felix/felix.h>
#include <stdio.h>
#include <string.h>

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

int main(int argc, char **argv)
{
    felix_rec_reader *r;
    if (argc != 2 || felix_rec_reader_open_path(&r, argv[1]) < 0) {
        fprintf(stderr, "raw_slots: %s\n", argc == 2 ? felix_error_detail() : "usage: raw_slots REC");
        return 2;
    }
    const felix_rec_header *h = felix_rec_reader_header(r);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    static unsigned char buf[1 << 16];
    int rc;
    unsigned long long samples = 0, ts = 0;
    while ((rc = felix_rec_next_sample(r, s)) == 0) {
        const felix_snapshot_info *si = felix_snapshot_get_info(s);
        unsigned char hd[64] = {0};
        hd[0] = si->version;
        hd[1] = si->app_type;
        uint16_t tss = h->thread_stats_size;
        memcpy(hd + 2, &tss, 2);
        memcpy(hd + 4, h->fex_version, strnlen(h->fex_version, 48));
        put32(hd + 52, si->head);
        put32(hd + 56, si->size);
        fwrite(hd, 1, 64, stdout);
        samples++, ts += si->nthreads;
        for (uint32_t i = 0; i < si->nthreads; i++) {
            const felix_thread *t = felix_snapshot_thread(s, i), *n = felix_snapshot_thread(s, i + 1);
            put32(buf, n ? n->offset : 0);
            put32(buf + 4, t->tid);
            size_t len = 8;
            memcpy(buf + len, t->c, si->nknown * 8u);
            len += si->nknown * 8u;
            const uint64_t *e = felix_snapshot_extra(s, i);
            if (e)
                memcpy(buf + len, e, si->nextra * 8u), len += si->nextra * 8u;
            fwrite(buf, 1, len, stdout);
        }
    }
    fprintf(stderr, "%llu %llu\n", samples, ts);
    felix_snapshot_free(s);
    felix_rec_reader_close(r);
    return rc == FELIX_EEOF ? 0 : 1;
}
