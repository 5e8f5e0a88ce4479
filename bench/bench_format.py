#!/usr/bin/env python3
"""Benchmark of the recording format: size and speed.

1. Size: felix-rec records felix-sim in each documented scenario (felix-rec's
   defaults otherwise: names, CPU times and memory every second), and the
   recording is compared with `xz -9` of the raw slot bytes of the very same
   samples (bench/raw_slots: header + 8 + 8 x words per thread per sample).
   Prints per scenario: samples, thread-samples, bytes per thread-sample,
   the xz -9 figure and the ratio (goal <= 0.5, floor <= 1.0).
2. Speed, on bench_record's 24 h x 32 threads x 1 Hz file: libfelix's decode
   (bench_record), felix-csv --threads as CSV and as JSON lines, each beside
   `zstd -dc` of the same file in the same run (both writing to /dev/null); felix-csv -f perfetto on it and
   on 1 h x 32 threads at 10 ms (make_recording), with its peak RSS.

Binaries from $FELIX_SIM, $FELIX_REC, $FELIX_CSV, $BENCH_RECORD, $RAW_SLOTS;
BENCH_SECONDS scales the recordings (default 10)."""
import os
import re
import subprocess
import sys
import tempfile
import time

SIM, REC, CSV = os.environ["FELIX_SIM"], os.environ["FELIX_REC"], os.environ["FELIX_CSV"]
RAW, BENCH_RECORD = os.environ["RAW_SLOTS"], os.environ["BENCH_RECORD"]
SECS = float(os.environ.get("BENCH_SECONDS", "10"))
tmp = tempfile.mkdtemp(prefix="felix-format-")

# name, felix-sim arguments, interval, seconds (x BENCH_SECONDS / 10)
SCENARIOS = [
    ("steady 1s", ["-t", "8", "-s", "steady"], "1s", 30),
    ("steady 100ms", ["-t", "8", "-s", "steady"], "100ms", 10),
    ("steady 10ms", ["-t", "8", "-s", "steady"], "10ms", 5),
    ("warmup 100ms", ["-t", "8", "-s", "warmup"], "100ms", 8),
    ("churn 100ms", ["-t", "16", "-s", "churn"], "100ms", 10),
    ("storm 100ms", ["-t", "8", "-s", "storm"], "100ms", 10),
    ("grow 100ms", ["-t", "4", "-s", "grow"], "100ms", 1.4),  # 32,768 threads at 1.6 s: the cap
    ("legacy 100ms", ["-t", "8", "-s", "steady", "--legacy-layout"], "100ms", 10),
    ("extra fields 100ms", ["-t", "8", "-s", "steady", "--extra-fields", "4"], "100ms", 10),
]


def record(name, simargs, interval, seconds):
    seconds = seconds * SECS / 10 if not name.startswith("grow") else seconds
    sim = subprocess.Popen([SIM] + simargs + ["-d", "%gs" % (seconds + 5)], stdout=subprocess.PIPE)
    pid = int(sim.stdout.readline())
    path = os.path.join(tmp, re.sub(r"\W+", "-", name) + ".felix")
    subprocess.run([REC, str(pid), "-i", interval, "-d", "%gs" % seconds, "-q", "-o", path], check=True)
    sim.terminate()
    sim.wait()
    return path


def xz_size(path):
    """Raw slot bytes, their xz -9 size, samples and thread-samples."""
    r = subprocess.run([RAW, path], capture_output=True, check=True)
    xz = subprocess.run(["xz", "-9", "-c"], input=r.stdout, stdout=subprocess.PIPE, check=True).stdout
    samples, ts = map(int, r.stderr.split())
    return len(r.stdout), len(xz), samples, ts


print("%-20s %8s %10s %12s %12s %12s %7s" % ("scenario", "samples", "thr-samp", "file B/t-s", "xz -9 B/t-s",
                                           "raw B/t-s", "ratio"))
worst = 0.0
for name, simargs, interval, seconds in SCENARIOS:
    path = record(name, simargs, interval, seconds)
    size = os.path.getsize(path)
    raw, xz, samples, ts = xz_size(path)
    ratio = size / xz
    worst = max(worst, ratio)
    print("%-20s %8d %10d %12.2f %12.2f %12.1f %7.2f" % (name, samples, ts, size / ts, xz / ts, raw / ts, ratio),
          flush=True)
print("worst ratio to xz -9: %.2f (goal 0.5, floor 1.0)" % worst)


def best_of(n, argv):
    """The best of n runs' wall time, output to /dev/null: the tool's own
    speed, not that of a reader of its pipe (a Python reader that holds
    770 MB of JSON lines takes four times as long as felix-csv itself)."""
    best = None
    for _ in range(n):
        t = time.monotonic()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        dt = time.monotonic() - t
        best = dt if best is None else min(best, dt)
    return best


def count_lines(argv):
    """Lines of a command's output, counted as it streams, never held."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE)
    lines = 0
    while True:
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            break
        lines += chunk.count(b"\n")
    p.wait()
    return lines


big = os.path.join(tmp, "24h.felix")
out = subprocess.run([BENCH_RECORD, big], capture_output=True, text=True, check=True).stdout
print(out, end="")
zt = best_of(3, ["zstd", "-dcq", big])
print("zstd -dc of the same file: %.3f s" % zt)
for fmt in ("csv", "jsonl"):
    argv = [CSV, "--threads", "-f", fmt, big]
    dt = best_of(3, argv)
    rows = count_lines(argv) - (1 if fmt == "csv" else 0)
    print("felix-csv --threads -f %-5s %d rows in %.2f s: %.2f M rows/s (%.1fx the time of zstd -dc)" %
          (fmt, rows, dt, rows / dt / 1e6, dt / zt))
long = os.path.join(tmp, "1h-10ms.felix")
subprocess.run([os.environ["MAKE_RECORDING"], long, "360000", "10", "32"], check=True)
for name, path in (("24 h x 32 threads at 1 s", big), ("1 h x 32 threads at 10 ms", long)):
    t = time.monotonic()
    p = subprocess.Popen([os.environ["PEAK_RSS"], CSV, "-f", "perfetto", "-o", "-", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    size = 0
    while True:  # counted as it streams, never held
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
    err = p.stderr.read()
    p.wait()
    dt = time.monotonic() - t
    rss = int(re.search(rb"peak_rss (\d+)", err).group(1))
    print("felix-csv -f perfetto, %s: %.1f MB of trace in %.2f s, peak RSS %.1f MiB" %
          (name, size / 1e6, dt, rss / 1024))
m = re.search(r"decode: .* in ([0-9.]+) s", out)
if m:
    print("libfelix decode: %.1fx the time of zstd -dc" % (float(m.group(1)) / zt))
subprocess.run(["rm", "-rf", tmp])
sys.exit(0 if worst <= 1.0 else 1)
