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
        if key:  # each column's last header in the chunk: linked words, new TID/offset/words, first deltas
            colhdr = [None] * (3 * nw + 2)
            new_id = [0, 0]  # the chunk's last new thread's TID and offset
            recent = []  # the chunk's recent names
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
            # Bit columns, LSB first, after the two varints.
            bits = int.from_bytes(b[i:], "little")
            pos = 0

            def take(nb):
                nonlocal pos
                v = (bits >> pos) & ((1 << nb) - 1)
                pos += nb
                return v

            def rice(p):  # q zero bits, a one, p bits; 24 zero bits escape to a 6-bit length - 1 and the bits
                qq = 0
                while qq < 24 and take(1) == 0:
                    qq += 1
                return take(take(6) + 1) if qq == 24 else qq << p | take(p)

            # Links (mode 2): 1 = the previous sample's thread after the last
            # one linked, 01 = new, 00 + Rice(p=1) = that distance's zigzag less 1.
            links, cursor, linked = [], 0, set()
            for q in range(n):
                if mode != 2:
                    links.append(q if mode == 1 else None)
                    continue
                if take(1):
                    j = cursor
                elif take(1):
                    links.append(None)
                    continue
                else:
                    j = cursor + unzigzag(rice(1) + 1)
                assert delta and 0 <= j < len(prev) and j not in linked
                links.append(j)
                linked.add(j)
                cursor = j + 1
            ids = [prev[j][:2] if j is not None else None for j in links]
            cols = [[0] * nw for _ in range(n)]
            deltas = [[0] * nw if j is not None else None for j in links]

            def column(slot):
                # A 1 bit (the column's last header in the chunk again) or a 0
                # bit and an 8-bit header: a 6-bit Rice parameter p (63: all
                # zero), 0x40: zero flags, 0x80: the column's other mode.
                h = colhdr[slot] if take(1) else take(8)
                assert h is not None, "a column header repeated before any"
                colhdr[slot] = h
                return h & 63, h & 0x40, h & 0x80

            def value(p, zeros):
                if p == 63 or (zeros and take(1)):
                    return 0
                return rice(p) + (1 if zeros else 0)

            # New threads first: TID and offset differences from the chunk's
            # last new thread's, then each word absolute (0x80: as the
            # difference from the previous new thread's).
            new = [q for q in range(n) if links[q] is None]
            for c in range(nw + 2 if new else 0):
                p, zeros, other = column(nw + c)
                assert not (c == 0 and other)
                last = new_id[c] if c < 2 else 0
                if c == 1 and other:
                    # Free-slot mode: each offset is the v-th slot (from 0) that
                    # no linked thread and no earlier new thread holds; slot x
                    # is at 64 + x * slot size.
                    held = {(ids[q][1] - 64) // slot for q in range(n) if links[q] is not None and
                            ids[q][1] >= 64 and (ids[q][1] - 64) % slot == 0}
                    lowest = 0  # no free slot below it
                    for q in new:
                        while lowest in held:
                            lowest += 1
                        v, x = value(p, zeros), lowest
                        while x in held or v:
                            v -= x not in held
                            x += 1
                        assert x <= (4194304 - 64) // slot
                        held.add(x)
                        last = 64 + x * slot
                        ids[q] = (ids[q][0], last)
                    new_id[1] = last
                    continue
                for q in new:
                    v = value(p, zeros)
                    if c >= 2:
                        last = cols[q][c - 2] = ((last + unzigzag(v)) if other else v) & M64
                        continue
                    last += unzigzag(v)
                    ids[q] = (last, 0) if c == 0 else (ids[q][0], last)
                if c < 2:
                    new_id[c] = last
            # Then per word the linked threads: those whose previous sample
            # had a delta (the delta's difference from it; 0x80: the delta),
            # then the others (the delta; 0x80: its difference from the
            # previous such thread's).
            had = [q for q in range(n) if links[q] is not None and prev[links[q]][3] is not None]
            first = [q for q in range(n) if links[q] is not None and prev[links[q]][3] is None]
            for k in range(nw if len(new) < n else 0):
                for group, cslot in ((had, k), (first, 2 * nw + 2 + k)):
                    if not group:
                        continue
                    p, zeros, other = column(cslot)
                    last = 0
                    for q in group:
                        pr = prev[links[q]]
                        z = unzigzag(value(p, zeros))
                        if group is had:
                            d = (z + (0 if other else pr[3][k])) & M64
                        else:
                            d = (z + (last if other else 0)) & M64
                            last = d
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
            # First a code per new thread of the sample (0: none, 1: a name
            # follows, k >= 2: the chunk's recent name k - 2, most recent
            # first), then entries of linked threads: the index step and a
            # code (1 or k >= 2). A name that follows is the bytes shared with
            # the last name given, the suffix length and the suffix. Every
            # name given goes to the front of the recent list (64 at most).
            b, i, idx, last = it[4], 0, 0, b""
            new_q = [q for q in range(len(cur)) if cur[q][3] is None] if version >= 2 else []
            while i < len(b):
                if new_q:
                    target = new_q.pop(0)
                    code, i = varint(b, i)
                    if code == 0:
                        continue
                else:
                    skip, i = varint(b, i)
                    code, i = varint(b, i)
                    idx += skip
                    target = idx
                    idx += 1
                if code >= 2:
                    last = recent.pop(code - 2)
                else:
                    shared, i = varint(b, i)
                    ln, i = varint(b, i)
                    last = last[:shared] + b[i:i + ln]
                    i += ln
                    if len(recent) == 64:
                        recent.pop()
                recent.insert(0, last)
                names[cur[target][0]] = last
        clean = {t: bytes(c if c >= 0x20 else 0x3F for c in nm[:31]) for t, nm in names.items()}
        out.append("S %d %d %s" % (t, it.get(10, 1), " ".join(
            "%d:%d:%s%s%s" % (c[0], c[1], ",".join(map(str, c[2])), ":%d" % cpu[c[0]] if c[0] in cpu else "",
                              "/" + clean[c[0]].hex() if clean.get(c[0]) else "")
            for c in cur)))
        prev, prev_slot = cur, slot
    print("\n".join(out))


if __name__ == "__main__":
    main()
