#!/usr/bin/env python3
"""Benchmarks of the tools, printing their figures:
felix-csv --threads rows/s (csv, jsonl); bytes per thread-sample of real
felix-rec recordings of felix-sim (steady at 1 s, churn at 100 ms); felix-rec
CPU at a 1 s interval with memory sampling; felix-rec interval jitter and
drift at 10 ms. Binaries from $FELIX_SIM, $FELIX_REC, $FELIX_CSV,
$BENCH_RECORD; BENCH_SECONDS scales the runs (default 20)."""
import json
import os
import subprocess
import sys
import tempfile
import time

SIM, REC, CSV = os.environ["FELIX_SIM"], os.environ["FELIX_REC"], os.environ["FELIX_CSV"]
SECS = float(os.environ.get("BENCH_SECONDS", "20"))
tmp = tempfile.mkdtemp(prefix="felix-bench-")


def sim(*args):
    p = subprocess.Popen([SIM] + list(args), stdout=subprocess.PIPE)
    return p, int(p.stdout.readline())


def rec(pid, out, interval, seconds, *extra):
    p = subprocess.Popen([REC, str(pid), "-i", interval, "-d", "%gs" % seconds, "-q", "-o", out] + list(extra))
    return p


def wait_rusage(p):
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = status
    return ru.ru_utime + ru.ru_stime


def thread_samples(path):
    out = subprocess.run([CSV, "-f", "jsonl", path], capture_output=True, text=True).stdout
    rows = [json.loads(l) for l in out.splitlines()]
    return rows, sum(r["threads"] for r in rows) + (rows[0]["threads"] if rows else 0)


# 1. felix-csv rows/s on the 24-hour recording bench_record writes.
big = os.path.join(tmp, "24h.felix")
subprocess.run([os.environ["BENCH_RECORD"], big], check=True, capture_output=True)
for fmt in ("csv", "jsonl"):
    t = time.monotonic()
    r = subprocess.run([CSV, "--threads", "-f", fmt, big], stdout=subprocess.PIPE, check=True)
    dt = time.monotonic() - t
    rows = r.stdout.count(b"\n") - (1 if fmt == "csv" else 0)
    print("felix-csv --threads -f %-5s %d rows in %.2f s: %.2f M rows/s" % (fmt, rows, dt, rows / dt / 1e6))
os.unlink(big)

# 2-3. Real recordings: steady, 32 threads, 1 s with memory (CPU measured);
# churn at 100 ms; run side by side.
s1, p1 = sim("-t", "32", "-s", "steady")
s2, p2 = sim("-t", "16", "-s", "churn")
steady, churn = os.path.join(tmp, "steady.felix"), os.path.join(tmp, "churn.felix")
t0 = time.monotonic()
r1 = rec(p1, steady, "1s", SECS)
r2 = rec(p2, churn, "100ms", SECS / 2)
cpu = wait_rusage(r1)
wall = time.monotonic() - t0
wait_rusage(r2)
for s in (s1, s2):
    s.terminate()
    s.wait()
for name, path in (("steady, 32 threads, 1 s, memory on", steady), ("churn, 100 ms", churn)):
    rows, ts = thread_samples(path)
    size = os.path.getsize(path)
    print("bytes per thread-sample (%s): %.2f (%d bytes, %d thread-samples)" % (name, size / max(ts, 1), size, ts))
print("felix-rec CPU at 1 s with memory sampling: %.4f%% of a core (%.3f s CPU over %.1f s)" % (100 * cpu / wall, cpu, wall))

# 4. felix-top in a real terminal: CPU and peak RSS at 1 s and at 10 ms.
TOP = os.environ.get("FELIX_TOP")
if TOP:
    sock = os.path.join(tmp, "tmux.sock")
    for interval in ("1s", "10ms"):
        s4, p4 = sim("-t", "8")
        subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "120", "-y", "40",
                        "%s -i %s %d" % (TOP, interval, p4)], check=True)
        time.sleep(1.0)
        tpid = int(subprocess.run(["pgrep", "-f", "^%s -i %s" % (TOP, interval)], capture_output=True, text=True).stdout.split()[0])
        hz = os.sysconf("SC_CLK_TCK")
        def cpu():
            f = open("/proc/%d/stat" % tpid).read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / hz
        c0, t0 = cpu(), time.monotonic()
        time.sleep(SECS)
        c1, t1 = cpu(), time.monotonic()
        hwm = [l for l in open("/proc/%d/status" % tpid) if l.startswith("VmHWM")][0].split()[1]
        subprocess.run(["tmux", "-S", sock, "kill-server"])
        s4.terminate()
        s4.wait()
        print("felix-top at %s over %.0f s: CPU %.3f%% of a core, peak RSS %.1f MB" % (
            interval, t1 - t0, 100 * (c1 - c0) / (t1 - t0), int(hwm) / 1024))

# 5. Jitter and drift at 10 ms.
s3, p3 = sim("-t", "8", "--no-mem")
jit = os.path.join(tmp, "jitter.felix")
r3 = rec(p3, jit, "10ms", SECS)
cpu10 = wait_rusage(r3)
s3.terminate()
s3.wait()
rows, _ = thread_samples(jit)
late = [r["time_s"] - r["frame"] * 0.010 for r in rows]
base = late[0]
dev = sorted(abs(x - base) for x in late)
p99 = dev[int(0.99 * (len(dev) - 1))]
drift = (sum(late[-50:]) / 50) - (sum(late[:50]) / 50)
print("felix-rec at 10 ms over %.0f s: interval jitter p99 %.0f us, drift %+.0f us, CPU %.2f%% of a core" % (
    SECS, p99 * 1e6, drift * 1e6, 100 * cpu10 / SECS))

# 6. A 16 MiB segment (209,714 threads, felix86's largest) held by a live
#    process: felix-top's reaction to a key and to q; felix-rec at 1 s on the
#    largest sample a recording holds (32,768 threads).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from segimage import huge_segment_image, segment_image  # noqa: E402
holder = subprocess.Popen(["sleep", "600"])
seg = "/dev/shm/fex-%d-stats" % holder.pid
image, n = huge_segment_image()
with open(seg, "wb") as f:
    f.write(image)
if TOP:
    sock = os.path.join(tmp, "tmux-huge.sock")
    def tm(*a):
        return subprocess.run(["tmux", "-S", sock] + list(a), capture_output=True, text=True).stdout
    tm("new-session", "-d", "-x", "200", "-y", "60", "%s -i 1s %d; echo FELIX-TOP-EXIT; sleep 60" % (TOP, holder.pid))
    def wait_screen(pred, limit=30):
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if pred(tm("capture-pane", "-p")):
                return time.monotonic() - t0
            time.sleep(0.01)  # each poll starts a tmux client: not too often on 2 cores
        return float("inf")
    first = wait_screen(lambda s: "%d threads" % n in s)
    lat = []
    time.sleep(3)  # past the first frames, which fault in ~100 MB of buffers
    for k in range(40):
        time.sleep(0.05)
        tm("send-keys", "?")
        lat.append(wait_screen(lambda s: "felix-top keys" in s, 10))
        tm("send-keys", "?")
        lat.append(wait_screen(lambda s: "felix-top keys" not in s, 10))
    lat.sort()
    tm("send-keys", "q")
    quit_s = wait_screen(lambda s: "FELIX-TOP-EXIT" in s, 20)
    tm("kill-server")
    print("felix-top on a 16 MiB segment (%d threads): first screen after %.1f s; then key reaction median %.0f ms, "
          "p90 %.0f ms, max %.0f ms over %d keys (with tmux polling); quit %.0f ms after q" % (
              n, first, 1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.9)], 1000 * lat[-1], len(lat),
              1000 * quit_s))
n = 32768
with open(seg, "wb") as f:
    f.write(segment_image(range(0x40000000, 0x40000000 + n), (64 + 80 * n + 4095) // 4096 * 4096))
hugerec = os.path.join(tmp, "huge.felix")
r6 = rec(holder.pid, hugerec, "1s", 10)
cpu6 = wait_rusage(r6)
holder.kill()
holder.wait()
os.unlink(seg)
samples = thread_samples(hugerec)[1] // n
print("felix-rec at 1 s on 32,768 threads (the most a recording's sample holds): %d samples in 10 s, %.0f ms CPU "
      "per sample" % (samples, 1000 * cpu6 / max(samples, 1)))

# 7. felix-top at 1 s on a process with 3,000 mappings besides FEX's: CPU per
#    second with the memory panel expanded (smaps read every second) and
#    collapsed (not read).
if TOP:
    p7, pid7 = sim("-t", "4", "--mappings", "3000")
    sock = os.path.join(tmp, "tmux-maps.sock")
    def tm7(*a):
        return subprocess.run(["tmux", "-S", sock] + list(a), capture_output=True, text=True).stdout
    cmd7 = "%s -i 1s %d" % (TOP, pid7)
    tm7("new-session", "-d", "-x", "160", "-y", "50", cmd7 + "; sleep 60")
    t0 = time.monotonic()
    while "mappings" not in tm7("capture-pane", "-p") and time.monotonic() - t0 < 20:
        time.sleep(0.1)
    top7 = int(subprocess.run(["pgrep", "-n", "-f", cmd7], capture_output=True, text=True).stdout.split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    def cpu7():
        with open("/proc/%d/stat" % top7) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / tick
    span = max(10.0, SECS / 2)
    c0 = cpu7(); time.sleep(span); open_cpu = (cpu7() - c0) / span
    tm7("send-keys", "Down", "Enter")  # collapse the memory panel
    time.sleep(1.5)
    c0 = cpu7(); time.sleep(span); closed_cpu = (cpu7() - c0) / span
    tm7("kill-server")
    p7.terminate()
    p7.wait()
    print("felix-top at 1 s, a process with 3,000 more mappings: memory panel open %.2f%% CPU, collapsed %.2f%% "
          "(smaps not read)" % (100 * open_cpu, 100 * closed_cpu))
