"""FEX statistics segment images for the Python tests and benchmarks:
a version-2 header and 80-byte slots, linked in order."""
import struct


def segment_image(threads, size=4096, fex=b"FEX-test"):
    """An image of `size` bytes whose list holds `threads` (TIDs) in slots
    0, 1, ...; thread i's JIT time is 1000 * (i + 1) ticks."""
    b = bytearray(size)
    b[0], b[1] = 2, 1  # version 2, Linux64
    struct.pack_into("<H", b, 2, 80)  # ThreadStatsSize
    b[4:4 + len(fex)] = fex
    struct.pack_into("<II", b, 52, 64 if threads else 0, size)  # Head, Size
    for i, tid in enumerate(threads):
        off = 64 + 80 * i
        nxt = off + 80 if i + 1 < len(threads) else 0
        struct.pack_into("<IIQ", b, off, nxt, tid, 1000 * (i + 1))
    return bytes(b)


def huge_segment_image():
    """A full 16 MiB segment (felix86's largest): 209,714 threads."""
    size = 16 << 20
    n = (size - 64) // 80
    return segment_image(range(0x40000000, 0x40000000 + n), size), n
