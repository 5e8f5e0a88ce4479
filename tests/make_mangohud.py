#!/usr/bin/env python3
"""Write a MangoHud frame-time log (v1: version line, system-info block,
header, one row per frame) whose frames follow a recording's FEX load and
whose slow frames end at known times.

As a module: write_log(path, rows, start, slow, seed) where rows are
felix-csv frame rows (time_s, interval_s, load_pct), start is the log's start
in the recording's seconds, slow a list of (end time, frame ms). Frame time
is 10 ms + 0.4 ms per % of FEX's mean load over the frame, with a little
noise; each slow frame ends exactly at its time.

As a program: make_mangohud.py RECORDING.csv OUT.csv START [T:MS ...]."""
import csv
import random
import sys


def load_at(rows, t):
    for r in rows:
        end = float(r["time_s"])
        if end - float(r["interval_s"]) < t <= end:
            return float(r["load_pct"])
    return 0.0


def load_over(rows, a, b):
    """FEX's mean load over [a, b], the intervals weighted by overlap."""
    w = l = 0.0
    for r in rows:
        end = float(r["time_s"])
        lo, hi = max(a, end - float(r["interval_s"])), min(b, end)
        if hi > lo:
            w += hi - lo
            l += (hi - lo) * float(r["load_pct"])
    return l / w if w else 0.0


def frames(rows, start, slow, seed=1):
    """(elapsed ns, frame ms) of every frame, from start to the last row."""
    rnd = random.Random(seed)
    end = float(rows[-1]["time_s"])
    slow = sorted(slow)
    out, t, k = [], start, 0
    while t < end:
        noise = rnd.uniform(-0.5, 0.5)
        ft = (10 + 0.4 * load_at(rows, t) + noise) / 1e3
        for _ in range(3):  # the mean load over the frame itself
            ft = (10 + 0.4 * load_over(rows, t, t + ft) + noise) / 1e3
        if k < len(slow) and t + ft + slow[k][1] / 1e3 >= slow[k][0]:
            filler = slow[k][0] - slow[k][1] / 1e3 - t  # ends where the slow frame starts
            if filler > 0.002:
                t += filler
                out.append((t, filler * 1e3))
            t = slow[k][0]
            out.append((t, slow[k][1]))
            k += 1
            continue
        t += ft
        out.append((t, ft * 1e3))
    return [(int(round((x - start) * 1e9)), ms) for x, ms in out]


def write_log(path, rows, start, slow, seed=1):
    with open(path, "w") as f:
        f.write("v1\n0.7.2\n---------------------SYSTEM INFO---------------------\n")
        f.write("os,cpu,gpu,ram,kernel,driver,cpuscheduler\n")
        f.write("Debian GNU/Linux 12,Cortex-A78AE,Mali-G78,16 GB,6.1.0,panfrost,performance\n")
        f.write("--------------------FRAME METRICS--------------------\n")
        f.write("fps,frametime,cpu_load,gpu_load,cpu_temp,gpu_temp,gpu_core_clock,gpu_mem_clock,gpu_vram_used,"
                "gpu_power,ram_used,swap_used,process_rss,elapsed\n")
        for elapsed, ms in frames(rows, start, slow, seed):
            f.write("%.1f,%.4f,31.0,64.0,55,48,900,1000,1.2,6.5,3.1,0.0,1.8,%d\n" % (1000.0 / ms, ms, elapsed))


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        rows = [r for r in csv.DictReader(f) if float(r["interval_s"]) > 0]
    slow = [(float(a), float(b)) for a, b in (x.split(":") for x in sys.argv[4:])]
    write_log(sys.argv[2], rows, float(sys.argv[3]), slow)
