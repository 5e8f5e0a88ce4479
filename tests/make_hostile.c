/* Test helper: write a small recording built to make a reader use much
 * memory, one per amplification class (tests/test_record.c memory_bounded,
 * tests/tools_test.py hostile_memory). Every file is at most 1 MiB.
 * Usage: make_hostile CLASS FILE; prints the outcome a reader must give:
 * "samples N" (N samples, then the end) or "corrupt".
 *
 * Classes:
 *   bomb       40 valid samples, each carrying a 7 MiB string in an unknown
 *              key: 280 MiB once decompressed
 *   bomb-big   one item of 64 MiB of values (larger than any item may be)
 *   declared   a thread list that declares 2^32-1 threads in a few bytes
 *   slots      64 threads in 65,520-byte slots (4 MiB of slots, the most a
 *              sample may hold), 200 samples
 *   slots-over 65 of them: more than any statistics segment holds
 *   threads    32,768 distinct threads (the most a sample may hold) in
 *              80-byte slots, 20 samples
 *   threads-over 32,769 of them
 *   churn      32,768 threads, all of them replaced in every sample
 *   tokens     10 samples each carrying 7 M one-byte values in an unknown key
 *   deep       an item nested 1,000 deep
 *   index      a sound recording whose (checked) index declares 1,000,000
 *              chunks and holds 100,000
 *   v2-threads format 2: 32,768 threads (TIDs 1..32,768) in a 12 KiB key
 *              sample, then 19 samples of them in order whose all-zero
 *              columns take 2 bytes each
 *   v2-declared format 2: a key sample that declares 32,768 new threads in
 *              a 100-byte block (fewer bits than threads)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static unsigned char *buf;
static size_t len, cap;

static void put(const void *p, size_t n)
{
    if (len + n > cap) {
        while (len + n > cap)
            cap = cap ? cap * 2 : 1 << 20;
        buf = realloc(buf, cap);
        if (!buf)
            exit(3);
    }
    memcpy(buf + len, p, n);
    len += n;
}

static void head(unsigned major, uint64_t v)
{
    unsigned char b[9];
    size_t n = 1;
    if (v < 24) {
        b[0] = (unsigned char)(major << 5 | v);
    } else {
        unsigned ai = v <= 0xff ? 24 : v <= 0xffff ? 25 : v <= 0xffffffffu ? 26 : 27;
        size_t k = (size_t)1 << (ai - 24);
        b[0] = (unsigned char)(major << 5 | ai);
        for (size_t i = 0; i < k; i++)
            b[1 + i] = (unsigned char)(v >> (8 * (k - 1 - i)));
        n = 1 + k;
    }
    put(b, n);
}

static void uint_(uint64_t v) { head(0, v); }
static void arr(uint64_t n) { head(4, n); }
static void map(uint64_t n) { head(5, n); }
static void text(const char *s)
{
    head(3, strlen(s));
    put(s, strlen(s));
}

static unsigned version = 1;

static void header(unsigned tss)
{
    map(5);
    uint_(0), uint_(0);
    uint_(1), text("felix-recording");
    uint_(2), uint_(version);
    uint_(6), uint_(1000000000);
    uint_(14), uint_(tss);
}

/* A sample's start: type, time, key flag; the thread list follows (key 3). */
static void sample_start(unsigned pairs, uint64_t t, int key)
{
    map(pairs + 2 + (unsigned)key);
    uint_(0), uint_(1);
    uint_(1), uint_(t);
    if (key) {
        uint_(2);
        unsigned char tru = 0xf5;
        put(&tru, 1);
    }
}

static void end_item(uint64_t t, uint64_t samples)
{
    map(3);
    uint_(0), uint_(3);
    uint_(1), uint_(t);
    uint_(2), uint_(samples);
}

/* Thread entries [tid] for tids first..first+n-1. */
static void threads(uint64_t first, uint64_t n)
{
    uint_(3), arr(n);
    for (uint64_t i = 0; i < n; i++)
        arr(1), uint_(first + i);
}

/* Format 2's bit columns (docs/recording-format.md, "Thread block"). */
static unsigned char bits[1 << 16];
static size_t nbits;
static void bit_put(uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++, nbits++)
        if (v >> i & 1)
            bits[nbits / 8] |= (unsigned char)(1u << (nbits % 8));
}

/* A format-2 thread block: n threads, a link mode, then the bits. */
static void block(uint64_t n, unsigned mode)
{
    unsigned char v[12];
    size_t k = 0;
    for (uint64_t x = n; ; x >>= 7) {
        v[k++] = (unsigned char)((x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
        if (x < 0x80)
            break;
    }
    v[k++] = (unsigned char)mode;
    uint_(3), head(2, k + (nbits + 7) / 8);
    put(v, k);
    put(bits, (nbits + 7) / 8);
    memset(bits, 0, sizeof bits);
    nbits = 0;
}

/* CRC-32 (IEEE), as zlib computes it: items' check (key 23). */
static uint32_t crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static int write_zstd(const char *path)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 20);
    size_t bound = ZSTD_compressBound(len);
    unsigned char *out = malloc(bound);
    size_t n = out ? ZSTD_compress2(c, out, bound, buf, len) : 0;
    ZSTD_freeCCtx(c);
    if (!out || ZSTD_isError(n))
        return 3;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out, 1, n, f) != n || fclose(f) != 0)
        return 3;
    free(out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *cls = argv[1];
    uint64_t samples = 0;
    int corrupt = 0;
    if (strcmp(cls, "bomb") == 0 || strcmp(cls, "tokens") == 0) {
        header(80);
        int tokens = cls[0] == 't';
        size_t big = 7u << 20;
        unsigned char *zeros = calloc(1, big);
        for (samples = 0; samples < (tokens ? 10u : 40u); samples++) {
            sample_start(2, samples * 1000, samples == 0);
            threads(100, 4);
            uint_(20); /* a key readers do not know: skipped */
            if (tokens) {
                arr(big);
            } else {
                head(2, big);
            }
            put(zeros, big);
        }
        free(zeros);
        end_item(samples * 1000, samples);
    } else if (strcmp(cls, "bomb-big") == 0) {
        header(80);
        size_t big = 64u << 20;
        unsigned char *zeros = calloc(1, big);
        sample_start(2, 0, 1);
        threads(100, 4);
        uint_(20), arr(big);
        put(zeros, big);
        free(zeros);
        corrupt = 1;
    } else if (strcmp(cls, "declared") == 0) {
        header(80);
        sample_start(1, 0, 1);
        uint_(3), arr(0xffffffffu);
        arr(1), uint_(7);
        corrupt = 1;
    } else if (strcmp(cls, "slots") == 0 || strcmp(cls, "slots-over") == 0) {
        header(65520);
        uint64_t n = cls[5] == '-' ? 65 : 64;
        for (samples = 0; samples < 200; samples++) {
            sample_start(1, samples * 1000, samples % 50 == 0);
            threads(1000, n);
        }
        end_item(samples * 1000, samples);
        corrupt = n == 65;
    } else if (strcmp(cls, "threads") == 0 || strcmp(cls, "threads-over") == 0 || strcmp(cls, "churn") == 0) {
        header(80);
        uint64_t n = strcmp(cls, "threads-over") == 0 ? 32769 : 32768;
        corrupt = n > 32768;
        for (samples = 0; samples < 20; samples++) {
            sample_start(1, samples * 1000, samples == 0);
            threads(cls[0] == 'c' && samples % 2 ? 1000000 : 1000, n);
        }
        end_item(samples * 1000, samples);
    } else if (strcmp(cls, "v2-threads") == 0) {
        version = 2;
        header(80);
        sample_start(1, 0, 1);
        bit_put(0, 1), bit_put(1, 8); /* TIDs: Rice p = 1, each 1 more than the last: zigzag 2 */
        for (int i = 0; i < 32768; i++)
            bit_put(2, 3);          /* q = 1: a 0 bit, a 1 bit, then the low bit 0 */
        for (int c = 1; c < 11; c++) /* offsets and words: all zero */
            bit_put(0, 1), bit_put(63, 8);
        block(32768, 0);
        for (samples = 1; samples < 20; samples++) {
            sample_start(1, 1000, 0); /* the interval, then its change: 0 */
            /* Every word's delta 0: in sample 1 the first deltas' columns,
             * from sample 2 on the second differences' (each column's
             * header once, then a bit saying it again). */
            for (int c = 0; c < 9; c++)
                samples <= 2 ? (bit_put(0, 1), bit_put(63, 8)) : bit_put(1, 1);
            block(32768, 1);
        }
        end_item(samples * 1000, samples);
    } else if (strcmp(cls, "v2-declared") == 0) {
        version = 2;
        header(80);
        sample_start(1, 0, 1);
        for (int i = 0; i < 800; i++)
            bit_put(i & 1, 1);
        block(32768, 0);
        corrupt = 1;
    } else if (strcmp(cls, "deep") == 0) {
        header(80);
        sample_start(2, 0, 1);
        threads(100, 1);
        uint_(20);
        for (int i = 0; i < 1000; i++)
            arr(1);
        uint_(0);
        corrupt = 1;
    } else if (strcmp(cls, "index") == 0) {
        header(80);
        for (samples = 0; samples < 10; samples++) {
            sample_start(1, samples * 1000, samples == 0);
            threads(100, 2);
        }
        end_item(samples * 1000, samples);
        int rc = write_zstd(argv[2]);
        if (rc)
            return rc;
        /* The index's skippable frame: a map whose chunk list declares a
         * million entries, then the seekable format's footer. */
        size_t data = 0;
        FILE *f = fopen(argv[2], "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0)
            return 3;
        data = (size_t)ftell(f);
        fclose(f);
        len = 0;
        map(4);
        uint_(0), uint_(4);
        uint_(2), uint_(10);
        uint_(1), arr(1000000);
        for (int i = 0; i < 100000; i++)
            arr(4), uint_(0), uint_(0), uint_(0), uint_(0);
        uint32_t crc = crc32(buf, len);
        uint_(23), head(0, 0x100000000ull - 1); /* room: the 5-byte form */
        len -= 4;
        for (int i = 0; i < 4; i++)
            buf[len++] = (unsigned char)(crc >> (24 - 8 * i));
        unsigned char frame[8] = {0x5f, 0x2a, 0x4d, 0x18};
        uint32_t l = (uint32_t)len;
        for (int i = 0; i < 4; i++)
            frame[4 + i] = (unsigned char)(l >> (8 * i));
        unsigned char table[8 + 8 + 9] = {0x5e, 0x2a, 0x4d, 0x18, 17, 0, 0, 0};
        uint32_t c = (uint32_t)data;
        for (int i = 0; i < 4; i++)
            table[8 + i] = (unsigned char)(c >> (8 * i));
        table[16] = 1; /* one frame */
        table[21] = 0xb1, table[22] = 0xea, table[23] = 0x92, table[24] = 0x8f;
        f = fopen(argv[2], "ab");
        if (!f || fwrite(frame, 1, 8, f) != 8 || fwrite(buf, 1, len, f) != len || fwrite(table, 1, 25, f) != 25 ||
            fclose(f) != 0)
            return 3;
        printf("samples %llu\n", (unsigned long long)samples);
        return 0;
    } else {
        fprintf(stderr, "make_hostile: unknown class '%s'\n", cls);
        return 2;
    }
    int rc = write_zstd(argv[2]);
    if (rc)
        return rc;
    if (corrupt)
        printf("corrupt\n");
    else
        printf("samples %llu\n", (unsigned long long)samples);
    return 0;
}
