#!/usr/bin/env python3
"""An independent decoder of felix recordings, written from
docs/recording-format.md alone (no libfelix): zstd's CLI decompresses, cbor2
decodes (it refuses text strings that are not UTF-8), and this file rebuilds
every sample's absolute words from format 1's thread lists or format 2's
thread blocks. Prints one line per sample and event:

  S <time> <image> <tid>:<offset>:<w0>,<w1>,...[:<cpu ns>][/<name, hex>] ...
  E <time> <kind> <tid>

(cpu: the thread's CPU time when measured in that sample)

(thread events of format 2 come from the links, before their sample, exited
threads first). Usage: felix_decode.py FILE
"""
import subprocess
import sys

import cbor2

M64 = (1 << 64) - 1


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def unzigzag(z):
    return (z >> 1) ^ -(z & 1)


def main():
    raw = subprocess.run(["zstd", "-dcq", sys.argv[1]], check=True, stdout=subprocess.PIPE).stdout
    items, spans = [], []
    dec = cbor2.CBORDecoder(__import__("io").BytesIO(raw))
    while dec.fp.tell() < len(raw):
        start = dec.fp.tell()
        items.append(dec.decode())
        spans.append(raw[start:dec.fp.tell()])
    hdr = items[0]
    # Every item ends with key 23: a CRC-32 (format 1, zlib's) or CRC-32C
    # (format 2) of its bytes before that key, as 0x17 0x1a and 4 bytes.
    check = __import__("zlib").crc32 if hdr[2] == 1 else crc32c
    for it, b in zip(items, spans):
        assert b[-6:-4] == b"\x17\x1a" and int.from_bytes(b[-4:], "big") == check(b[:-6]) == it[23], it
    assert hdr[0] == 0 and hdr[1] == "felix-recording", hdr
    version = hdr[2]
    slot0 = hdr[14] or 48
    prev = None  # [(tid, offset, words, delta or None)]
    prev_slot = None
    prev_cpu = {}  # tid: last CPU time in the chunk
    names = {}  # tid: name (carried while the TID is in every sample)
    last_t = last_dt = None
    out = []
    for it in items[1:]:
        if it[0] == 2:
            out.append("E %d %d %d" % (it[1], it[2], it.get(3, 0)))
            continue
        if it[0] != 1:
            continue
        key = it.get(2) is True
        t = it[1]
        if version >= 2 and not key:  # the interval, second order once known
            dt = t if last_dt is None else last_dt + t
            t = last_t + dt
            last_dt = dt
        else:
            last_dt = None
        last_t = t
        slot = it[11][0] if 11 in it else slot0
        nw = slot // 8 - 1
        delta = not key and prev is not None and prev_slot == slot
        if key:  # each column's last header in the chunk: linked words, new TID/offset/words
            colhdr = [None] * (2 * nw + 2)
        cur = []
        if key or not delta:
            prev_cpu = {} if key else prev_cpu
        if version == 1:
            byt = {p[0]: p for p in prev} if delta else {}
            for th in it[3]:
                tid, ws = th[0], th[1:] + [0] * (nw - len(th) + 1)
                p = byt.get(tid)
                if p is None:
                    cur.append((tid, 0, [w & M64 for w in ws[:nw]], None))
                else:
                    d = [((p[3][k] if p[3] else 0) + ws[k]) & M64 for k in range(nw)]
                    cur.append((tid, 0, [(p[2][k] + d[k]) & M64 for k in range(nw)], d))
        else:
            b = it[3]
            n, i = varint(b, 0)
            mode, i = varint(b, i)
            links, cursor = [], 0
            for q in range(n):
                if mode != 2:
                    links.append(q if mode == 1 else None)
                    continue
                c, i = varint(b, i)
                if c == 0:
                    links.append(None)
                else:
                    j = cursor + unzigzag(c - 1)
                    assert delta and 0 <= j < len(prev)
                    links.append(j)
                    cursor = j + 1
            ids = [prev[j][:2] if j is not None else None for j in links]
            cols = [[0] * nw for _ in range(n)]
            # Bit columns, LSB first: per word a 1 bit (the column's last
            # header in the chunk again) or a 0 bit and an 8-bit header (a 6-bit Rice
            # parameter p, 63: all zero; 0x40: zero flags; 0x80: first
            # differences), then per linked thread [a zero flag] q zero bits,
            # a one and p bits; 24 zero bits escape to a 6-bit length - 1 and
            # the bits.
            bits = int.from_bytes(b[i:], "little")
            pos = 0

            def take(nb):
                nonlocal pos
                v = (bits >> pos) & ((1 << nb) - 1)
                pos += nb
                return v

            deltas = [[0] * nw if j is not None else None for j in links]

            def column(slot):
                h = colhdr[slot] if take(1) else take(8)
                assert h is not None, "a column header repeated before any"
                colhdr[slot] = h
                return h & 63, h & 0x40, h & 0x80

            def value(p, zeros):
                if p == 63 or (zeros and take(1)):
                    return 0
                qq = 0
                while qq < 24 and take(1) == 0:
                    qq += 1
                z = take(take(6) + 1) if qq == 24 else qq << p | take(p)
                return z + (1 if zeros else 0)

            # New threads first: TID and offset differences from the last new
            # thread's, then each word absolute.
            new = [q for q in range(n) if links[q] is None]
            for c in range(nw + 2 if new else 0):
                p, zeros, _ = column(nw + c)
                last = 0
                for q in new:
                    v = value(p, zeros)
                    if c >= 2:
                        cols[q][c - 2] = v
                        continue
                    last += unzigzag(v)
                    ids[q] = (last, 0) if c == 0 else (ids[q][0], last)
            # Then the linked threads, a column per word.
            for k in range(nw if len(new) < n else 0):
                p, zeros, first = column(k)
                for q in range(n):
                    j = links[q]
                    if j is None:
                        continue
                    z = value(p, zeros)
                    pr = prev[j]
                    d = (unzigzag(z) + (pr[3][k] if pr[3] and not first else 0)) & M64
                    deltas[q][k] = d
                    cols[q][k] = (pr[2][k] + d) & M64
            assert pos <= 8 * (len(b) - i), "bit columns past the block"
            cur = [(ids[q][0], ids[q][1], cols[q], deltas[q]) for q in range(n)]
            if delta:
                used = {j for j in links if j is not None}
                for j, p in enumerate(prev):
                    if j not in used:
                        out.append("E %d 2 %d" % (t, p[0]))
                for k in range(n):
                    if links[k] is None:
                        out.append("E %d 1 %d" % (t, cur[k][0]))
        # CPU times: a time, or its difference from the thread's last one in
        # the chunk (version 1: [tid, v] pairs; version 2: a block).
        cpu = {}
        if 5 in it and version == 1:
            pairs = it[5]
        elif 5 in it:
            b = it[5]
            e, i = varint(b, 0)
            pairs = []
            for c in cur:
                if i >= len(b):
                    break
                code, i = varint(b, i)
                if code:
                    pairs.append((c[0], unzigzag(code - 1) * 10 ** e))
        else:
            pairs = []
        tids = {c[0] for c in cur}
        for tid, v in pairs:
            if tid in tids:
                cpu[tid] = ((prev_cpu[tid] + v) if tid in prev_cpu else v) & M64
        prev_cpu = {c[0]: prev_cpu[c[0]] for c in cur if c[0] in prev_cpu and delta}
        prev_cpu.update(cpu)
        # Names: version 1 [tid, name] pairs; version 2 a block of entries
        # (index step, bytes shared with the last name, suffix length, suffix).
        names = {c[0]: names[c[0]] for c in cur if c[0] in names}
        if 4 in it and version == 1:
            for tid, nm in it[4]:
                if tid in tids:
                    names[tid] = nm.encode() if isinstance(nm, str) else nm
        elif 4 in it:
            b, i, idx, last = it[4], 0, 0, b""
            while i < len(b):
                skip, i = varint(b, i)
                shared, i = varint(b, i)
                ln, i = varint(b, i)
                idx += skip
                last = last[:shared] + b[i:i + ln]
                i += ln
                names[cur[idx][0]] = last
                idx += 1
        clean = {t: bytes(c if c >= 0x20 else 0x3F for c in nm[:31]) for t, nm in names.items()}
        out.append("S %d %d %s" % (t, it.get(10, 1), " ".join(
            "%d:%d:%s%s%s" % (c[0], c[1], ",".join(map(str, c[2])), ":%d" % cpu[c[0]] if c[0] in cpu else "",
                              "/" + clean[c[0]].hex() if clean.get(c[0]) else "")
            for c in cur)))
        prev, prev_slot = cur, slot
    print("\n".join(out))


if __name__ == "__main__":
    main()
