/* The item checks: CRC-32 (format 1) and CRC-32C (format 2), hardware and
 * table paths, against the standard check values and each other. The
 * library's file is compiled in, so its static paths can be called. */
#include "../libfelix/crc32.c"

#include "t.h"

static void vectors_both_paths(void)
{
    static const char nine[] = "123456789";
    pthread_once(&once, init);
    CHECK_EQ(fx_crc32(nine, 9), 0xCBF43926u);  /* CRC-32 check value */
    CHECK_EQ(fx_crc32c(nine, 9), 0xE3069283u); /* CRC-32C check value */
    CHECK_EQ(crc_soft(table[1], (const unsigned char *)nine, 9), 0xE3069283u);
    fprintf(stderr, "hardware CRC-32C: %s\n", hw ? "yes" : "no (table only)");
    /* Every length and alignment up to 64 bytes, and a long buffer: the
     * hardware path (when there is one) equals the table path. */
    static unsigned char buf[4096 + 16];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len <= 64; len++)
            CHECK_EQ(crc32c_hw(buf + off, len), crc_soft(table[1], buf + off, len));
    CHECK_EQ(crc32c_hw(buf + 3, 4096), crc_soft(table[1], buf + 3, 4096));
    CHECK(fx_crc32(buf, 100) != fx_crc32c(buf, 100));
}

T_MAIN(T(vectors_both_paths))
