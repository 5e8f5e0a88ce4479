/* CRC-32 checks for per-item checks in recordings: zstd's frame checksum
 * only speaks at the end of a chunk. Format 1 used CRC-32 (IEEE 802.3, as
 * zlib's crc32); format 2 uses CRC-32C (Castagnoli, as iSCSI and ext4),
 * which both x86-64 (SSE4.2) and ARM64 (the CRC extension) compute in
 * hardware; elsewhere, and for IEEE, slicing by 8: eight table lookups per
 * 8 bytes. */
#include "internal.h"

#include <string.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

static uint32_t table[2][8][256]; /* [0] IEEE, [1] Castagnoli */

static void init_tables(void)
{
    static const uint32_t poly[2] = {0xEDB88320u, 0x82F63B78u};
    for (int p = 0; p < 2; p++) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? poly[p] ^ (c >> 1) : c >> 1;
            table[p][0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
            for (int t = 1; t < 8; t++)
                table[p][t][i] = (table[p][t - 1][i] >> 8) ^ table[p][0][table[p][t - 1][i] & 0xff];
    }
}

static uint32_t crc_soft(uint32_t (*tb)[256], const unsigned char *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    while (len >= 8) { /* little-endian hosts only (see shm.c) */
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + 4, 4);
        a ^= c;
        c = tb[7][a & 0xff] ^ tb[6][(a >> 8) & 0xff] ^ tb[5][(a >> 16) & 0xff] ^ tb[4][a >> 24] ^ tb[3][b & 0xff] ^
            tb[2][(b >> 8) & 0xff] ^ tb[1][(b >> 16) & 0xff] ^ tb[0][b >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = tb[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(const unsigned char *p, size_t len)
{
    uint64_t c = 0xFFFFFFFFu;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32 ^ 0xFFFFFFFFu;
}
static int have_hw(void) { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__)
static uint32_t crc32c_hw(const unsigned char *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        __asm__(".arch_extension crc\n\tcrc32cx %w0, %w0, %x1" : "+r"(c) : "r"(v));
    }
    while (len--) {
        uint32_t b = *p++;
        __asm__(".arch_extension crc\n\tcrc32cb %w0, %w0, %w1" : "+r"(c) : "r"(b));
    }
    return c ^ 0xFFFFFFFFu;
}
static int have_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
static uint32_t crc32c_hw(const unsigned char *p, size_t len) { return crc_soft(table[1], p, len); }
static int have_hw(void) { return 0; }
#endif

static int hw;

static void init(void)
{
    init_tables();
    hw = have_hw();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

uint32_t fx_crc32(const void *data, size_t len)
{
    pthread_once(&once, init);
    return crc_soft(table[0], data, len);
}

uint32_t fx_crc32c(const void *data, size_t len)
{
    pthread_once(&once, init);
    return hw ? crc32c_hw(data, len) : crc_soft(table[1], data, len);
}
