#!/usr/bin/env python3
"""End-to-end tests of felix-rec and felix-csv against felix-sim.

Usage: tools_test.py CASE   (binaries from $FELIX_SIM, $FELIX_REC, $FELIX_CSV;
$FELIX_EXEC_WRAPPER, e.g. qemu-aarch64, is put in front of each)."""
import csv
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from segimage import huge_segment_image, segment_image

WRAP = os.environ.get("FELIX_EXEC_WRAPPER", "").split()
SIM = WRAP + [os.environ["FELIX_SIM"]]
REC = WRAP + [os.environ["FELIX_REC"]]
CSV = WRAP + [os.environ["FELIX_CSV"]]
TMP = tempfile.mkdtemp(prefix="felix-tools-")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("CHECK failed:", what, file=sys.stderr)


def wait_until(cond, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    check(False, "timed out waiting for " + what)
    return False


class Sim:
    """felix-sim in the background; its PID once it printed it."""

    def __init__(self, *args):
        self.p = subprocess.Popen(SIM + list(args), stdout=subprocess.PIPE)
        self.pid = int(self.p.stdout.readline())

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        return self.p.wait(timeout=20)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, **kw)


def csv_rows(path, *args):
    r = run(CSV + list(args) + [path], text=True)
    check(r.returncode == 0, "felix-csv %s exit %d: %s" % (args, r.returncode, r.stderr))
    return list(csv.DictReader(io.StringIO(r.stdout)))


def record(sim, seconds, interval="100ms", *extra):
    out = os.path.join(TMP, "rec-%d.felix" % random.randrange(1 << 30))
    r = run(REC + [str(sim.pid), "-i", interval, "-d", "%gs" % seconds, "-q", "-o", out] + list(extra))
    check(r.returncode == 0, "felix-rec exit %d: %s" % (r.returncode, r.stderr))
    return out


def case_steady_rates():
    """felix-rec on the steady scenario; felix-csv's numbers match the documented rates."""
    sim = Sim("-t", "4", "-s", "steady")
    path = record(sim, 3.0, "100ms")
    sim.stop()
    rows = csv_rows(path, "--threads")
    check(len(rows) > 20, "thread rows: %d" % len(rows))
    per = {}
    for row in rows:
        k = int(row["name"].rsplit("-", 1)[1])
        t = per.setdefault(k, {"jit": 0.0, "sig": 0.0, "blocks": 0, "smc": 0, "frames": set()})
        t["jit"] += float(row["jit_s"])
        t["sig"] += float(row["signal_s"])
        t["blocks"] += int(row["jit_count"])
        t["smc"] += int(row["smc"])
    frames = csv_rows(path)
    span = sum(float(f["interval_s"]) for f in frames)
    check(sorted(per) == [1, 2, 3, 4], "threads: %s" % sorted(per))
    for k, t in per.items():
        share = (k % 10 + 1) * 0.05
        check(abs(t["jit"] / span - share) <= 0.05 * share, "thread %d JIT share %.4f vs %.4f" % (k, t["jit"] / span, share))
        # 5%, or one scheduler slice (10 ms) of signal time: a preempted
        # spin in felix-sim counts the preemption (see test_sim.c share_ok).
        check(abs(t["sig"] - 0.02 * span) <= max(0.05 * 0.02 * span, 0.010), "thread %d signal share %.4f" % (
            k, t["sig"] / span))
        check(abs(t["blocks"] / span - 100 * k) <= max(0.05 * 100 * k, 1.5 / span), "thread %d blocks/s %.1f" % (k, t["blocks"] / span))
    loads = [float(f["load_pct"]) for f in frames]
    ncpu = os.cpu_count()
    want = sum((k % 10 + 1) * 5 + 2 for k in range(1, 5)) / min(4, ncpu)
    mean = sum(loads) / len(loads)
    check(abs(mean - want) <= 0.05 * want, "mean FEX load %.2f vs %.2f" % (mean, want))
    check(all(f["mem_FEXMemJIT"] == "2097152" for f in frames), "FEXMemJIT column")
    check(int(frames[-1]["cum_jit_count"]) >= sum(int(f["jit_count"]) for f in frames), "cumulative blocks")


def case_exit_statuses():
    """Every documented exit status, each with a one-line message."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    cases = [
        (REC + ["--bogus"], 2),
        (REC + ["1"], 2),                                  # no -o
        (REC + [str(dead.pid), "-o", os.path.join(TMP, "x")], 3),
        (REC + [str(os.getpid()), "-o", os.path.join(TMP, "x")], 4),
        (CSV + ["--bogus"], 2),
        (CSV + [os.path.join(TMP, "missing.felix")], 7),
        (CSV + ["-f", "xml", "x"], 2),
    ]
    for cmd, want in cases:
        r = run(cmd, text=True)
        check(r.returncode == want, "%s: exit %d, want %d" % (cmd[-1], r.returncode, want))
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(len(lines) == 1 and lines[0].startswith(("felix-rec: ", "felix-csv: ")), "one-line message: %r" % r.stderr)
    # A stale segment, an unsupported version, a foreign owner.
    seg = "/dev/shm/fex-%d-stats" % dead.pid
    with open(seg, "wb") as f:
        f.write(bytes([2, 1, 80, 0]) + bytes(4092))
    r = run(REC + [str(dead.pid), "-o", os.path.join(TMP, "x")], text=True)
    check(r.returncode == 4, "stale segment of a dead PID: exit %d" % r.returncode)
    check("stale" in r.stderr, "stale message: %r" % r.stderr)
    os.unlink(seg)
    holder = subprocess.Popen(["sleep", "30"])
    seg = "/dev/shm/fex-%d-stats" % holder.pid
    with open(seg, "wb") as f:
        f.write(bytes([3, 1, 80, 0]) + bytes(4092))
    r = run(REC + [str(holder.pid), "-o", os.path.join(TMP, "x")], text=True)
    check(r.returncode == 5 and "version 3" in r.stderr, "version 3: exit %d %r" % (r.returncode, r.stderr))
    if os.geteuid() == 0:
        with open(seg, "wb") as f:
            f.write(bytes([2, 1, 80, 0]) + bytes(4092))
        os.chown(seg, 4321, 4321)
        r = run(REC + [str(holder.pid), "-o", os.path.join(TMP, "x")], text=True)
        check(r.returncode == 6 and "uid 4321" in r.stderr, "foreign owner: exit %d %r" % (r.returncode, r.stderr))
    os.unlink(seg)
    holder.kill()
    holder.wait()
    sim = Sim("-t", "1", "--no-mem")
    r = run(REC + [str(sim.pid), "-d", "1s", "-o", "/nonexistent-dir/x.felix"], text=True)
    check(r.returncode == 7 and "/nonexistent-dir/x.felix" in r.stderr, "unwritable output: %d %r" % (r.returncode, r.stderr))
    r = run(REC + [str(sim.pid), "-d", "1s", "-o", "/dev/full"], text=True)
    check(r.returncode == 7, "/dev/full: exit %d %r" % (r.returncode, r.stderr))
    sim.stop()


def case_signals_finalize():
    """SIGINT, SIGTERM and SIGHUP stop the recorder with a complete recording."""
    for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
        sim = Sim("-t", "2", "--no-mem")
        out = os.path.join(TMP, "sig-%d.felix" % sig)
        rec = subprocess.Popen(REC + [str(sim.pid), "-i", "50ms", "-q", "-o", out])
        wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 300, 10, "samples")
        rec.send_signal(sig)
        check(rec.wait(timeout=10) == status, "signal %d: exit %s" % (sig, rec.returncode))
        sim.stop()
        r = run(CSV + ["-s", "-f", "jsonl", out], text=True)
        check(r.returncode == 0, "complete recording after signal %d: %s" % (sig, r.stderr))
        check(not json.loads(r.stdout)["truncated"], "not truncated")


def case_process_exit():
    """The recorder stops when the process exits and records the exit event."""
    sim = Sim("-t", "2", "--no-mem", "-d", "1s")
    out = os.path.join(TMP, "exit.felix")
    r = run(REC + [str(sim.pid), "-i", "50ms", "-q", "-o", out], text=True)
    sim.stop()
    check(r.returncode == 0, "exit when the process exits: %d %s" % (r.returncode, r.stderr))
    kinds = events(out)
    check(5 in kinds and 6 in kinds, "process-exited and stopped events: %s" % kinds)


def events(path):
    """Event kinds, decoded with zstd and Python's cbor2 (not libfelix)."""
    code = ("import sys, cbor2\nf = sys.stdin.buffer\nwhile True:\n"
            "    try: i = cbor2.load(f)\n    except cbor2.CBORDecodeEOF: break\n"
            "    if i[0] == 2: print(i[2])\n")
    z = subprocess.run(["zstd", "-dcq", path], capture_output=True, check=True).stdout
    r = subprocess.run(["/usr/bin/python3", "-c", code], input=z, capture_output=True, check=True)
    return [int(x) for x in r.stdout.split()]


def case_sigkill_loses_at_most_one():
    """felix-rec killed with SIGKILL at random moments loses at most the sample being written."""
    random.seed(11)
    for trial in range(4):
        sim = Sim("-t", "4", "--no-mem")
        out = os.path.join(TMP, "kill-%d.felix" % trial)
        rec = subprocess.Popen(REC + [str(sim.pid), "-i", "10ms", "-q", "-o", out])
        wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 200, 10, "recording start")
        time.sleep(random.uniform(0.2, 1.2))
        killed_at = time.monotonic()
        rec.kill()
        rec.wait()
        sim.stop()
        r = run(CSV + ["-f", "jsonl", out], text=True)
        # Never closed: status 8 and a line saying so; every sample flushed is read.
        check(r.returncode == 8 and "without its end item" in r.stderr, "read after SIGKILL: exit %d %s" % (r.returncode, r.stderr))
        rows = [json.loads(l) for l in r.stdout.splitlines()]
        frames = [x["frame"] for x in rows]
        check(frames == list(range(1, len(frames) + 1)), "consecutive frames")
        start = read_start_mono(out)
        last = start + rows[-1]["time_s"] if rows else 0
        # Samples every 10 ms: the last one read is at most two intervals
        # (plus scheduling slack) before the kill.
        check(killed_at - last <= 0.02 + 0.1, "last sample %.3f s before the kill" % (killed_at - last))


def read_start_mono(path):
    code = "import sys, cbor2\nh = cbor2.load(sys.stdin.buffer)\nprint(h[16])\n"
    z = subprocess.run(["zstd", "-dcq", path], capture_output=True).stdout
    r = subprocess.run(["/usr/bin/python3", "-c", code], input=z, capture_output=True, check=True)
    return int(r.stdout) / 1e9


def case_disk_full():
    """A file size limit mid-recording: exit 7, and the file reads up to the last sample."""
    sim = Sim("-t", "8", "--no-mem")
    out = os.path.join(TMP, "full.felix")
    r = run(["bash", "-c", "ulimit -f 12; exec \"$@\"", "rec"] + REC + [str(sim.pid), "-i", "5ms", "-q", "-o", out], text=True)
    sim.stop()
    check(r.returncode == 7, "disk full: exit %d %r" % (r.returncode, r.stderr))
    check("readable up to the last sample" in r.stderr, "message: %r" % r.stderr)
    rows = csv_rows_any(out)
    check(len(rows) > 5, "rows before the limit: %d" % len(rows))


def csv_rows_any(path):
    """Rows of a recording that was never closed (status 8: no end item)."""
    r = run(CSV + [path], text=True)
    check(r.returncode == 8 and "without its end item" in r.stderr, "felix-csv: %d %s" % (r.returncode, r.stderr))
    return list(csv.DictReader(io.StringIO(r.stdout)))


def case_pipeline_realtime():
    """felix-rec PID -o - | felix-csv - prints each row within one interval."""
    sim = Sim("-t", "2", "--no-mem")
    rec = subprocess.Popen(REC + [str(sim.pid), "-i", "300ms", "-q", "-o", "-"], stdout=subprocess.PIPE)
    csvp = subprocess.Popen(CSV + ["-"], stdin=rec.stdout, stdout=subprocess.PIPE, text=True)
    rec.stdout.close()
    t0 = time.monotonic()
    header = csvp.stdout.readline()
    check(header.startswith("frame,"), "header: %r" % header)
    arrivals = []
    for _ in range(5):
        line = csvp.stdout.readline()
        arrivals.append(time.monotonic() - t0)
    rec.send_signal(signal.SIGINT)
    rec.wait(timeout=10)
    csvp.wait(timeout=10)
    sim.stop()
    # Row n (1-based) is sample n, taken n * 0.3 s after the start.
    for n, at in enumerate(arrivals, 1):
        check(at <= n * 0.3 + 0.3 + 0.5, "row %d arrived at %.2f s" % (n, at))
    check(csvp.returncode == 0, "felix-csv exit %d" % csvp.returncode)


def case_closed_pipe():
    """A reader that goes away: felix-rec exits 7 with a message; felix-csv | head is quiet."""
    sim = Sim("-t", "2", "--no-mem")
    r = run(["bash", "-c", "\"$@\" | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}", "x"] + REC +
            [str(sim.pid), "-i", "20ms", "-q", "-o", "-"], text=True)
    check(r.returncode == 7, "felix-rec into a closed pipe: exit %d %r" % (r.returncode, r.stderr))
    check("pipe" in r.stderr.lower(), "message names the pipe: %r" % r.stderr)
    path = record(sim, 1.0, "20ms")
    sim.stop()
    r = run(["bash", "-c", "\"$@\" | head -1 >/dev/null; exit ${PIPESTATUS[0]}", "x"] + CSV + ["-t", path], text=True)
    check(r.returncode == 0 and r.stderr == "", "felix-csv | head -1: %d %r" % (r.returncode, r.stderr))


def case_watch_match():
    """--watch --match waits for the next matching FEX process and records it."""
    out = os.path.join(TMP, "watch.felix")
    rec = subprocess.Popen(REC + ["--watch", "--match", "felix-sim", "-i", "50ms", "-q", "-o", out])
    time.sleep(0.3)
    sim = Sim("-t", "2", "--no-mem", "-d", "1s")
    check(rec.wait(timeout=20) == 0, "felix-rec --watch exit %s" % rec.returncode)
    sim.stop()
    rows = csv_rows(out)
    check(len(rows) >= 5, "rows recorded after --watch: %d" % len(rows))
    r = run(REC + ["--match", "no-such-process-name", "-o", out + ".2"], text=True)
    check(r.returncode == 3 and "no running FEX process" in r.stderr, "--match nothing: %d %r" % (r.returncode, r.stderr))


def case_formats_and_range():
    """TSV, JSON lines, RFC 4180 quoting, --from/--to, and the summary agree."""
    sim = Sim("-t", "2", "--no-mem", "--thread-name", 'a,"b')
    path = record(sim, 2.5, "100ms")
    sim.stop()
    r = run(CSV + ["-t", path], text=True)
    check('"a,""b-1"' in r.stdout, "CSV quoting of a thread name: %r" % r.stdout[:300])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    check(rows and rows[0]["name"].startswith('a,"b-'), "round trip through a CSV reader")
    tsv = run(CSV + ["-f", "tsv", path], text=True).stdout.splitlines()
    check(tsv[0].split("\t")[0] == "frame" and len(tsv[1].split("\t")) == len(tsv[0].split("\t")), "TSV")
    jl = [json.loads(l) for l in run(CSV + ["-f", "jsonl", path], text=True).stdout.splitlines()]
    frames = csv_rows(path)
    check(len(jl) == len(frames) and jl[3]["jit_count"] == int(frames[3]["jit_count"]), "JSON lines match CSV")
    part = csv_rows(path, "--from", "1", "--to", "2")
    times = [float(x["time_s"]) for x in part]
    check(times and min(times) >= 1.0 and max(times) <= 2.0, "--from/--to: %s" % times[:3])
    check(len(part) >= 9, "rows between 1 and 2 s: %d" % len(part))
    s = json.loads(run(CSV + ["-s", "-f", "jsonl", path], text=True).stdout)
    check(s["jit_count"] == sum(int(f["jit_count"]) for f in frames), "summary totals")
    check(abs(s["load_peak_pct"] - max(float(f["load_pct"]) for f in frames)) < 0.01, "summary peak")
    check(s["busiest_threads"][0]["name"].startswith('a,"b-'), "busiest thread named")
    text = run(CSV + ["-s", path], text=True).stdout
    check("FEX load" in text and "busiest threads" in text, "text summary")


def case_follow():
    """--follow reads a recording while it is written, and ends with it."""
    sim = Sim("-t", "2", "--no-mem")
    out = os.path.join(TMP, "follow.felix")
    rec = subprocess.Popen(REC + [str(sim.pid), "-i", "50ms", "-q", "-o", out])
    wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 100, 10, "recording start")
    fol = subprocess.Popen(CSV + ["--follow", out], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    rec.send_signal(signal.SIGINT)
    rec.wait(timeout=10)
    sim.stop()
    try:
        got, _ = fol.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        fol.kill()
        got, _ = fol.communicate()
        check(False, "--follow did not end with the recording")
    whole = run(CSV + [out], text=True).stdout
    # Memory columns differ (a file being written cannot list its regions up
    # front); every sample column must match.
    cut = lambda text: [l.split(",")[:21] for l in text.splitlines()]
    check(cut(got) == cut(whole), "--follow saw every row (%d vs %d lines)" % (got.count("\n"), whole.count("\n")))


def case_truncated_csv():
    """A cut recording: the rows before the cut, then status 8 (no end item) naming the byte offset;
    a file and standard input give the same rows and the same status."""
    sim = Sim("-t", "2", "--no-mem")
    path = record(sim, 1.5, "50ms")
    sim.stop()
    data = open(path, "rb").read()
    cut = os.path.join(TMP, "cut.felix")
    open(cut, "wb").write(data[: len(data) * 2 // 3])
    r = run(CSV + [cut], text=True)
    check(r.returncode == 8, "exit %d" % r.returncode)
    check("byte" in r.stderr and r.stderr.count("\n") == 1, "one line naming the offset: %r" % r.stderr)
    check(len(r.stdout.splitlines()) > 5, "rows before the cut")
    with open(cut, "rb") as f:
        p = run(CSV + ["-"], stdin=f, text=True)
    check(p.returncode == r.returncode and p.stdout == r.stdout, "standard input: exit %d, same rows: %s" % (
        p.returncode, p.stdout == r.stdout))


def case_example_jit_totals():
    """examples/felix-jit-totals prints each thread's JIT time from a recording."""
    sim = Sim("-t", "3", "--no-mem")
    path = record(sim, 1.5, "100ms")
    sim.stop()
    r = run(WRAP + [os.environ["FELIX_JIT_TOTALS"], path], text=True)
    check(r.returncode == 0, "exit %d %s" % (r.returncode, r.stderr))
    lines = r.stdout.splitlines()[1:]
    got = {l.split()[1]: float(l.split()[2]) for l in lines}
    check(sorted(got) == ["sim-worker-1", "sim-worker-2", "sim-worker-3"], "threads: %s" % got)
    check(got.get("sim-worker-3", 0) > got.get("sim-worker-1", 1), "thread 3 compiles more than thread 1")


def case_example_events():
    """examples/felix-events: the same loop, live and on a recording, prints the
    same lifecycle events: an exec, the old image's threads exited and the new
    one's started."""
    sim = Sim("-t", "2", "--no-mem", "--exec", "1", "--exec-every", "700ms")
    r = run(WRAP + [os.environ["FELIX_EVENTS"], str(sim.pid), "1.5"], text=True)
    check(r.returncode == 0, "live: exit %d %s" % (r.returncode, r.stderr))
    live = [l.split(" s  ", 1)[1] for l in r.stdout.splitlines()[1:] if "FEX load" not in l]
    check(live.count("exec") == 1, "live: one exec: %s" % live)
    check(sum(l.startswith("thread exited") for l in live) >= 2 and
          sum(l.startswith("thread started") for l in live) >= 2, "live: the old threads exit, new ones start: %s" % live)
    check(r.stdout.startswith("live PID %d" % sim.pid), "live: the header line: %r" % r.stdout[:80])
    path = record(sim, 1.5, "100ms")
    sim.stop()
    r = run(WRAP + [os.environ["FELIX_EVENTS"], path], text=True)
    check(r.returncode == 0, "recording: exit %d %s" % (r.returncode, r.stderr))
    check(r.stdout.startswith("recording PID %d" % sim.pid), "recording: the header line: %r" % r.stdout[:80])
    check("FEX load" in r.stdout and "recording stopped" in r.stdout, "recording: samples and its end: %r" % r.stdout[-300:])


PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "perfetto")


class Skip(Exception):
    """A tool the case needs is missing (outside CI only: FELIX_CI=1 makes it a failure)."""


def need(tool):
    if shutil.which(tool):
        return
    if os.environ.get("FELIX_CI"):
        check(False, "%s is not installed (CI installs it with .ci/install-deps --test)" % tool)
        raise Skip()
    print("skipped: %s is not installed (.ci/install-deps --test installs it)" % tool, file=sys.stderr)
    raise Skip()


def parse_text_proto(text):
    """protoc --decode's text format as nested dicts; repeated fields as lists."""
    tok = re.findall(r'"(?:[^"\\]|\\.)*"|[{}:]|[^\s{}:"]+', text)
    pos = 0

    def value(t):
        if t.startswith('"'):
            return bytes(t[1:-1], "latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
        try:
            return int(t)
        except ValueError:
            try:
                return float(t)
            except ValueError:
                return t  # an enum name

    def message():
        nonlocal pos
        m = {}
        while pos < len(tok) and tok[pos] != "}":
            key = tok[pos]
            pos += 1
            if tok[pos] == ":":
                pos += 1
                v = value(tok[pos])
                pos += 1
            else:
                pos += 1  # "{"
                v = message()
                pos += 1  # "}"
            m.setdefault(key, []).append(v)
        return m

    return message()


def decode_trace(data):
    r = subprocess.run(["protoc", "--decode=perfetto.protos.Trace", "--proto_path=" + PROTO_DIR,
                        os.path.join(PROTO_DIR, "felix_trace.proto")], input=data, capture_output=True)
    check(r.returncode == 0, "protoc decodes the trace: %s" % r.stderr[-500:])
    return parse_text_proto(r.stdout.decode("utf-8", "replace")).get("packet", [])


def one(m, key, default=None):
    return m.get(key, [default])[0]


def case_perfetto_trace():
    """felix-csv -f perfetto -o - | protoc --decode: a clock snapshot tying the
    monotonic origin to REALTIME and BOOTTIME; the process track; a thread track
    per thread with felix-csv's TIDs and names; FEX load, rates, thread loads and
    memory per region equal felix-csv's numbers at the same times; instants for
    the exec, the flags, thread starts and exits."""
    need("protoc")
    sim = Sim("-t", "3", "-s", "storm", "--exec", "1", "--exec-every", "800ms")
    path = record(sim, 1.6, "100ms", "--mem-interval", "100ms")
    sim.stop()
    r = run(CSV + ["-f", "perfetto", "-o", "-", path])
    check(r.returncode == 0, "felix-csv -f perfetto exit %d: %r" % (r.returncode, r.stderr))
    packets = decode_trace(r.stdout)
    check(len(packets) > 50, "packets: %d" % len(packets))
    rows = [r for r in csv_rows(path) if float(r["interval_s"]) > 0]  # a baseline (the exec) has no values
    timed = {r["frame"] for r in rows}
    all_trows = csv_rows(path, "--threads")
    trows = [r for r in all_trows if r["frame"] in timed]
    clocks = {one(c, "clock_id"): one(c, "timestamp") for c in one(packets[0], "clock_snapshot", {}).get("clocks", [])}
    check(set(clocks) == {1, 3, 6}, "REALTIME, MONOTONIC and BOOTTIME in the first packet: %s" % clocks)
    m0, w0 = clocks.get(3, 0), clocks.get(1, 0)
    tracks = {}
    named = set()  # every (TID, name) a thread descriptor gave: a rename is a new descriptor
    events = []
    for p in packets:
        if "track_descriptor" in p:
            td = one(p, "track_descriptor")
            tracks[one(td, "uuid")] = td
            if "thread" in td:
                named.add((one(one(td, "thread"), "tid"), one(one(td, "thread"), "thread_name", "")))
        if "track_event" in p:
            check(one(p, "timestamp_clock_id") == 3, "events on the monotonic clock")
            events.append((one(p, "timestamp"), one(p, "track_event")))
    procs = [t for t in tracks.values() if "process" in t]
    check(len(procs) == 1 and one(one(procs[0], "process"), "pid") == sim.pid, "one process track, PID %d" % sim.pid)
    by_name = {one(t, "name"): u for u, t in tracks.items() if "counter" in t and one(t, "parent_uuid") == 1}

    def series(uuid):
        return [(ts, one(e, "double_counter_value", one(e, "counter_value"))) for ts, e in events
                if one(e, "track_uuid") == uuid and one(e, "type") == "TYPE_COUNTER"]

    load = series(by_name.get("FEX load %"))
    check(len(load) == len(rows), "a FEX load value per felix-csv row: %d and %d" % (len(load), len(rows)))
    for (ts, v), row in zip(load, rows):
        check(abs((ts - m0) / 1e9 - float(row["time_s"])) < 2e-6, "time %d vs %s" % (ts - m0, row["time_s"]))
        check(abs((w0 + ts - m0) / 1e9 - float(row["unix_time_s"])) < 0.01, "wall time of frame %s" % row["frame"])
        check(abs(v - float(row["load_pct"])) <= 0.0005 + 1e-9, "load %s vs %s" % (v, row["load_pct"]))
    for name, col, scale in [("JIT blocks/s", "jit_count", 1), ("SIGBUS/s", "sigbus", 1), ("SMC/s", "smc", 1),
                             ("JIT ms/s", "jit_s", 1e3), ("signal ms/s", "signal_s", 1e3)]:
        got = series(by_name.get(name))
        check(len(got) == len(rows), "%s: a value per row" % name)
        for (ts, v), row in zip(got, rows):
            iv = float(row["interval_s"])
            want = float(row[col]) * scale / iv if iv > 0 else 0
            check(abs(v - want) <= 1e-3 * abs(want) + 1e-3 * scale, "%s %s vs %s at frame %s" % (name, v, want, row["frame"]))
    mem = [n for n in by_name if n.startswith("memory ")]
    check("memory FEXMemJIT" in mem, "memory tracks per region: %s" % mem)
    got = dict(series(by_name.get("memory FEXMemJIT")))
    matched = 0
    for row in rows:
        ts = m0 + round(float(row["time_s"]) * 1e9)
        near = [v for t, v in got.items() if abs(t - ts) < 2000]
        if near and row["mem_FEXMemJIT"]:
            matched += 1
            check(near[0] == int(row["mem_FEXMemJIT"]), "FEXMemJIT bytes at frame %s" % row["frame"])
    check(matched > 5, "memory values matched at %d frames" % matched)
    threads = {u: one(t, "thread") for u, t in tracks.items() if "thread" in t}
    want_pairs = {(int(r["tid"]), r["name"]) for r in all_trows}
    check(named == want_pairs, "thread tracks (TID, name) as felix-csv's: %s vs %s" % (sorted(named), sorted(want_pairs)))
    # A thread renamed while recorded (under qemu a new thread reads as
    # "qemu-aarch64" until it names itself) ends with its last name.
    last = {int(r["tid"]): r["name"] for r in all_trows}
    final = {(one(t, "tid"), one(t, "thread_name", "")) for t in threads.values()}
    check(set(last.items()) <= final, "last names %s in the tracks %s" % (sorted(last.items()), sorted(final)))
    check(all(one(t, "pid") == sim.pid for t in threads.values()), "thread tracks in the process")
    loads = {}
    for u in threads:
        tid = one(threads[u], "tid")
        child = [cu for cu, t in tracks.items() if one(t, "parent_uuid") == u and "counter" in t]
        for ts, v in series(child[0]) if child else []:
            loads[(tid, round((ts - m0) / 1e3))] = v
    compared = 0
    for r in trows:
        key = (int(r["tid"]), round(float(r["time_s"]) * 1e6))
        if key in loads:
            compared += 1
            check(abs(loads[key] - float(r["load_pct"])) <= 0.0005 + 1e-9, "thread load at %s" % (key,))
    check(compared == len(trows), "every thread row has its thread counter value: %d of %d" % (compared, len(trows)))
    instants = [one(e, "name") for ts, e in events if one(e, "type") == "TYPE_INSTANT"]
    check(instants.count("exec") == 1, "one exec instant: %s" % sorted(set(instants)))
    check(instants.count("thread started") >= 3 and instants.count("thread exited") >= 3,
          "the old image's threads exit, the new one's start")
    check(any(n in instants for n in ("high SIGBUS", "high SMC", "high soft-float")), "storm's flags as instants")
    check(len(threads) >= 6, "a reused or new TID after the exec is a new track: %d" % len(threads))
    bad = run(CSV + ["-f", "perfetto", "--summary", path])
    check(bad.returncode == 2 and b"--summary" in bad.stderr, "perfetto with --summary: usage (%d)" % bad.returncode)


def case_perfetto_bounded():
    """felix-csv -f perfetto streams: its peak memory is the same for a recording
    five times longer (32 threads at 10 ms), and a damaged recording gives the
    trace up to the damage and status 7."""
    need("protoc")
    peaks = []
    for n in (2000, 10000):
        path = os.path.join(TMP, "long-%d.felix" % n)
        subprocess.run(WRAP + [os.environ["FELIX_MAKE_RECORDING"], path, str(n), "10", "32"], check=True)
        # Through a small C parent: Linux carries a peak across exec, so a child
        # of this Python process would report Python's.
        r = subprocess.run(WRAP + [os.environ["FELIX_PEAK_RSS"]] + CSV + ["-f", "perfetto", "-o", "-", path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        check(r.returncode == 0, "conversion of %d samples: status %d %r" % (n, r.returncode, r.stderr))
        peaks.append(int(re.search(r"peak_rss (\d+)", r.stderr).group(1)))
    print("peak RSS %d KiB for 2,000 samples of 32 threads, %d KiB for 10,000" % tuple(peaks), file=sys.stderr)
    check(peaks[1] - peaks[0] < 512, "memory does not grow with the recording: %s KiB" % peaks)
    limit = 16 * 1024 * (4 if os.environ.get("FELIX_SANITIZE", "none") != "none" or WRAP else 1)
    check(peaks[1] <= limit, "at most 16 MiB: %d KiB" % peaks[1])
    data = open(os.path.join(TMP, "long-2000.felix"), "rb").read()
    cut = os.path.join(TMP, "cut.felix")
    with open(cut, "wb") as f:
        f.write(data[:len(data) // 2])
    r = run(CSV + ["-f", "perfetto", "-o", "-", cut])
    check(r.returncode in (7, 8) and len(r.stderr.splitlines()) == 1, "damage: one line and 7 or 8: %d %r" % (r.returncode, r.stderr))
    d = subprocess.run(["protoc", "--decode=perfetto.protos.Trace", "--proto_path=" + PROTO_DIR,
                        os.path.join(PROTO_DIR, "felix_trace.proto")], input=r.stdout, capture_output=True)
    check(d.returncode == 0, "the trace up to the damage decodes: %s" % d.stderr[-300:])
    check(d.stdout.count(b"\npacket {") > 1000, "the trace up to the damage: %d packets" % d.stdout.count(b"\npacket {"))


def items(path):
    """Every CBOR item of a recording, decoded with zstd and cbor2 (not libfelix);
    byte strings (names, reasons) as text."""
    code = ("import sys, cbor2, json\nf = sys.stdin.buffer\nout = []\nwhile True:\n"
            "    try: i = cbor2.load(f)\n    except cbor2.CBORDecodeEOF: break\n"
            "    out.append({str(k): (v.decode('utf-8', 'replace') if isinstance(v, bytes) else\n"
            "                          v if isinstance(v, (int, str, bool)) else None) for k, v in i.items()})\n"
            "print(json.dumps(out))\n")
    z = subprocess.run(["zstd", "-dcq", path], capture_output=True).stdout
    r = subprocess.run(["/usr/bin/python3", "-c", code], input=z, capture_output=True, check=True)
    return json.loads(r.stdout)


def case_v1_recordings_read():
    """Format 1 recordings (tests/data, written by libfelix 0.1) read forever:
    felix-csv's sample rows, thread rows as JSON lines and summary are the
    bytes libfelix 0.1 gave for them (tests/data/*.expected)."""
    data = os.environ["FELIX_TEST_DATA"]
    for name in ("v1-steady", "v1-churn", "v1-exec"):
        path = os.path.join(data, name + ".felix")
        out = b""
        for args in ([], ["-t", "-f", "jsonl"], ["-s"]):
            r = run(CSV + args + [path])
            check(r.returncode == 0, "%s %s: exit %d %r" % (name, args, r.returncode, r.stderr))
            out += r.stdout
        with open(os.path.join(data, name + ".expected"), "rb") as f:
            want = f.read()
        check(out == want, "%s: felix-csv output differs from libfelix 0.1's" % name)


def case_exec_recorded():
    """felix-rec keeps recording a process that execs itself three times: the
    recording marks each exec, and no row spans two images."""
    sim = Sim("-t", "2", "--no-mem", "--exec", "3", "--exec-every", "600ms", "-d", "3s")
    out = os.path.join(TMP, "exec.felix")
    r = run(REC + [str(sim.pid), "-i", "20ms", "-q", "-o", out], text=True)
    check(r.returncode == 0, "felix-rec exit %d: %s" % (r.returncode, r.stderr))
    sim.stop()
    it = items(out)
    execs = [i for i in it if i.get("0") == 2 and i.get("2") == 7]
    check([e.get("8") for e in execs] == [2, 3, 4], "exec events with image numbers: %s" % execs)
    samples = [i for i in it if i.get("0") == 1]
    check(len(samples) > 60, "samples across the execs: %d" % len(samples))
    check(max(s.get("10", 1) for s in samples) == 4, "samples of the fourth image")
    check(any(i.get("0") == 2 and i.get("5") == "process exited" for i in it), "stopped at the process's exit")
    rows = csv_rows(out, "--threads")
    for row in rows:
        # A wrapped delta across an exec would show as seconds of JIT in 20 ms.
        check(float(row["jit_s"]) <= 0.2, "no delta across images: %s" % row)
    check(len(rows) > 60, "thread rows: %d" % len(rows))


def case_not_a_stats_object():
    """A FIFO, a directory or a device at the segment's path: status 4 at once,
    with the path and what it is; SIGTERM ends a waiting recorder promptly."""
    holder = subprocess.Popen(["sleep", "60"])
    seg = "/dev/shm/fex-%d-stats" % holder.pid
    out = os.path.join(TMP, "x.felix")
    for make, what in ((lambda: os.mkfifo(seg), "a FIFO"), (lambda: os.mkdir(seg), "a directory"),
                       (lambda: os.symlink("/dev/zero", seg), "a symbolic link"),
                       (lambda: os.mknod(seg, 0o600 | 0o020000, os.makedev(1, 5)), "a character device")):
        make()
        t0 = time.monotonic()
        r = run(REC + [str(holder.pid), "-o", out], text=True, timeout=20)
        check(r.returncode == 4, "%s: exit %d %r" % (what, r.returncode, r.stderr))
        check("not a FEX statistics object (%s)" % what in r.stderr and seg in r.stderr, "message: %r" % r.stderr)
        check(time.monotonic() - t0 < 5, "%s: did not block" % what)
        (os.rmdir if what == "a directory" else os.unlink)(seg)
    holder.kill()
    holder.wait()
    # Waiting for a FEX process: SIGTERM ends it at once.
    rec = subprocess.Popen(REC + ["--watch", "-q", "-o", out])
    time.sleep(0.3)
    rec.terminate()
    check(rec.wait(timeout=5) != 0, "felix-rec --watch ended by SIGTERM")


def case_watch_before_header():
    """--watch attaches to a brand-new object before FEX wrote its header,
    waits for the header, and records."""
    out = os.path.join(TMP, "early.felix")
    rec = subprocess.Popen(REC + ["--watch", "-i", "50ms", "-q", "-o", out], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    holder = subprocess.Popen(["sleep", "60"])
    seg = "/dev/shm/fex-%d-stats" % holder.pid
    fd = os.open(seg, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)  # 0 bytes, as FEX's shm_open
    time.sleep(0.3)
    os.ftruncate(fd, 4096)  # a page of zeros
    time.sleep(0.3)
    os.pwrite(fd, segment_image([holder.pid]), 0)  # then the header
    time.sleep(1.0)
    holder.kill()
    holder.wait()
    check(rec.wait(timeout=20) == 0, "felix-rec exit %s: %s" % (rec.returncode, rec.stderr.read()))
    os.close(fd)
    os.unlink(seg)
    samples = [i for i in items(out) if i.get("0") == 1]
    check(len(samples) >= 5, "samples after the header appeared: %d" % len(samples))


def case_outputs_protected():
    """No output destroys data: an existing recording needs --force, a tool never
    writes its own input (by name, symlink or hard link) or a FEX statistics
    object, and a failed felix-csv export leaves the old file and no half file."""
    import hashlib
    digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
    sim = Sim("-t", "2", "--no-mem")
    old = record(sim, 0.5, "100ms")
    before = digest(old)
    r = run(REC + [str(sim.pid), "-d", "300ms", "-q", "-o", old], text=True)
    check(r.returncode == 2 and "--force" in r.stderr and old in r.stderr, "existing file: %d %r" % (r.returncode, r.stderr))
    check(digest(old) == before, "the existing recording is untouched")
    r = run(REC + [str(sim.pid), "-d", "300ms", "-q", "--force", "-o", old], text=True)
    check(r.returncode == 0 and digest(old) != before, "--force replaces it: %d %r" % (r.returncode, r.stderr))
    seg = "/dev/shm/fex-%d-stats" % sim.pid
    seg_before = open(seg, "rb").read(64)
    for target in (seg, "/dev/shm/fex-999999-stats", "/dev/shm/../shm/fex-%d-stats" % sim.pid):
        r = run(REC + [str(sim.pid), "-d", "300ms", "-q", "--force", "-o", target], text=True)
        check(r.returncode == 2 and "FEX statistics object" in r.stderr, "%s: %d %r" % (target, r.returncode, r.stderr))
    check(not os.path.exists("/dev/shm/fex-999999-stats"), "nothing created in /dev/shm")
    check(open(seg, "rb").read(64) == seg_before and sim.p.poll() is None, "the live segment and its process are intact")
    link = os.path.join(TMP, "link-to-seg")
    os.symlink(seg, link)
    r = run(CSV + ["-o", link, old], text=True)
    check(r.returncode == 2 and "FEX statistics object" in r.stderr, "a link to the segment: %d %r" % (r.returncode, r.stderr))
    sim.stop()
    rec_digest = digest(old)
    sym, hard = os.path.join(TMP, "sym.felix"), os.path.join(TMP, "hard.felix")
    os.symlink(old, sym)
    os.link(old, hard)
    for target in (old, sym, hard):
        r = run(CSV + ["-o", target, old], text=True)
        check(r.returncode == 2 and "is the input" in r.stderr, "-o %s: %d %r" % (target, r.returncode, r.stderr))
    check(digest(old) == rec_digest, "the recording read is untouched")
    good = os.path.join(TMP, "good.csv")
    r = run(CSV + ["-o", good, old], text=True)
    check(r.returncode == 0 and open(good).read().startswith("frame,"), "an export: %d %r" % (r.returncode, r.stderr))
    good_digest = digest(good)
    # A big export that cannot be written (a file size limit): the old file stays.
    big = os.path.join(TMP, "big.felix")
    subprocess.run(WRAP + [os.environ["FELIX_MAKE_RECORDING"], big, "5000", "100", "8"], check=True)
    r = run(["bash", "-c", "ulimit -f 4; exec \"$@\"", "csv"] + CSV + ["--threads", "-o", good, big], text=True)
    check(r.returncode == 7, "a failed export: exit %d %r" % (r.returncode, r.stderr))
    check(digest(good) == good_digest, "the old export is untouched")
    check(not [f for f in os.listdir(TMP) if f.startswith(".good.csv.")], "no temporary file left")


def case_cli_edges():
    """PIDs are decimal digits only; --help and --version that cannot be written
    fail with a message; every rejected value names its option."""
    TOP = os.environ.get("FELIX_TOP")
    holder = subprocess.Popen(["sleep", "30"])
    for pid in (hex(holder.pid), "+%d" % holder.pid, " %d" % holder.pid, "1e3"):
        r = run(REC + [pid, "-o", os.path.join(TMP, "cli.felix")], text=True)
        check(r.returncode == 2 and "decimal" in r.stderr, "PID %r: %d %r" % (pid, r.returncode, r.stderr))
    # A leading zero is still decimal: 0NNN is process NNN, not an octal number.
    r = run(REC + ["0%d" % holder.pid, "-o", os.path.join(TMP, "cli.felix")], text=True)
    check(r.returncode == 4 and "process %d has no FEX statistics" % holder.pid in r.stderr, "PID 0%d: %d %r" % (
        holder.pid, r.returncode, r.stderr))
    holder.kill()
    holder.wait()
    tools = [("felix-rec", REC), ("felix-csv", CSV), ("felix-sim", SIM)]
    if TOP:
        tools.append(("felix-top", WRAP + [TOP]))
    for name, cmd in tools:
        for opt in ("--help", "--version"):
            with open("/dev/full", "w") as full:
                r = subprocess.run(cmd + [opt], stdout=full, stderr=subprocess.PIPE, text=True, timeout=30)
            check(r.returncode == 1 and r.stderr.startswith(name + ": cannot write"),
                  "%s %s > /dev/full: %d %r" % (name, opt, r.returncode, r.stderr))
    for cmd, opt in ((SIM + ["-t", "0"], "-t/--threads"), (SIM + ["--seed=x"], "--seed"),
                     (SIM + ["--page-size", "0x1000"], "--page-size"), (REC + ["-i", "0", "1", "-o", "x"], "-i/--interval"),
                     (REC + ["--chunk", "-1s", "1", "-o", "x"], "--chunk"), (CSV + ["--from", "abc", "x"], "--from"),
                     (CSV + ["-f", "xml", "x"], "-f/--format")):
        r = run(cmd, text=True)
        lines = r.stderr.splitlines()
        check(r.returncode == 2 and len(lines) == 1 and opt in lines[0] and "option 0" not in lines[0],
              "%s: %d %r" % (cmd[1:], r.returncode, r.stderr))


def case_damage_never_shown():
    """A flipped bit anywhere in a recording: every row printed is a row of the
    intact file, in order from the first (a prefix), a file and standard input
    give the same rows and status, and damage is named (byte offset) with a
    non-zero status."""
    path = os.path.join(TMP, "intact.felix")
    subprocess.run(WRAP + [os.environ["FELIX_MAKE_RECORDING"], path, "300", "50", "4"], check=True)
    intact = run(CSV + ["--threads", path], text=True)
    check(intact.returncode == 0, "intact: %d %r" % (intact.returncode, intact.stderr))
    good = intact.stdout.splitlines()
    data = bytearray(open(path, "rb").read())
    rng = random.Random(7)
    bad = os.path.join(TMP, "flipped.felix")
    named = 0
    for trial in range(60):
        pos = rng.randrange(len(data))
        bit = 1 << rng.randrange(8)
        data[pos] ^= bit
        open(bad, "wb").write(data)
        data[pos] ^= bit
        r = run(CSV + ["--threads", bad], text=True)
        with open(bad, "rb") as f:
            p = run(CSV + ["--threads", "-"], stdin=f, text=True)
        rows = r.stdout.splitlines()
        check(rows == good[:len(rows)], "byte %d bit %d: rows are a prefix of the intact rows" % (pos, bit))
        check(p.stdout == r.stdout and p.returncode == r.returncode,
              "byte %d: file %d, stdin %d, same rows %s" % (pos, r.returncode, p.returncode, p.stdout == r.stdout))
        if r.returncode != 0:
            named += 1
            check(r.returncode in (1, 7, 8) and "byte" in r.stderr and len(r.stderr.splitlines()) == 1,
                  "byte %d: status %d, one line naming the byte: %r" % (pos, r.returncode, r.stderr))
        else:
            check(rows == good, "byte %d: exit 0 only with every row" % pos)
    check(named > 30, "most flips are caught: %d of 60" % named)


def case_ranges_and_cpu():
    """--from S starts at the first sample at or after S; cumulative and memory
    columns in a range equal the full read's; a file and a pipe give the same
    bytes; cpu_s is empty where the recorder did not measure both ends."""
    sim = Sim("-t", "2")
    path = record(sim, 2.0, "100ms", "--mem-interval", "1s")
    sim.stop()
    full = csv_rows(path)
    with open(path, "rb") as f:
        piped = run(CSV + ["-"], stdin=f, text=True)
    check(piped.stdout == run(CSV + [path], text=True).stdout, "file and standard input: the same bytes")
    t = [float(x["time_s"]) for x in full]
    start = (t[4] + t[5]) / 2  # between two samples: no rounding can move it
    part = csv_rows(path, "--from", "%.6f" % start)
    check(part and part[0]["frame"] == full[5]["frame"], "--from: the first row is the first sample at or after S: %s vs %s" % (
        part[0]["frame"] if part else None, full[5]["frame"]))
    cols = [c for c in full[0] if c.startswith("cum_") or c.startswith("mem_")]
    for a, b in zip(part, full[5:]):
        check(all(a[c] == b[c] for c in cols), "frame %s: cum_* and mem_* as in the full read" % a["frame"])
    first = csv_rows(path, "--from", "0")
    check(first and first[0]["frame"] == "0" and float(first[0]["interval_s"]) == 0.0, "--from 0: a baseline row for frame 0")
    rows = csv_rows(path, "--threads")
    # 100 ms samples, CPU times measured once a second: no interval has both ends.
    check(rows and all(r["cpu_s"] == "" for r in rows), "cpu_s empty when not measured: %s" % [r["cpu_s"] for r in rows[:4]])
    sim = Sim("-t", "2")
    path = record(sim, 3.5, "1s")
    sim.stop()
    rows = csv_rows(path, "--threads")
    check(rows and all(r["cpu_s"] != "" for r in rows), "cpu_s at every 1 s sample: %s" % [r["cpu_s"] for r in rows])


NASTY = b'q"b\\\x1b\x7f\x85\xff\xc2\x85\xc3\xa9'  # quote, backslash, ESC, DEL, raw C1, invalid, C1, e-acute


def no_controls(data):
    """No C0 (but newline), DEL or C1 byte or code point, and valid UTF-8."""
    text = data.decode("utf-8")  # strict: raises on invalid UTF-8
    return not any((ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f for c in text)


def case_names_any_bytes():
    """Names holding every class of byte: JSON lines stay valid JSON and UTF-8,
    CSV stays RFC 4180 and UTF-8, text and messages carry no control bytes."""
    # Started through a link with a nasty name, so the process name (comm) is
    # nasty too (under an emulator, comm is the emulator's).
    link = os.path.join(TMP.encode(), b"fx\x1b\x7f\x85")
    if not os.path.lexists(link):
        os.symlink(SIM[-1], link)
    sims = [subprocess.Popen(SIM[:-1] + [link, b"-t", b"2", b"--no-mem", b"--thread-name", NASTY],
                             stdout=subprocess.PIPE) for _ in range(2)]
    pids = [int(p.stdout.readline()) for p in sims]
    out = os.path.join(TMP, "names.felix")
    r = run(REC + [str(pids[0]), "-i", "100ms", "-d", "600ms", "-q", "-o", out])
    check(r.returncode == 0, "felix-rec: %d %r" % (r.returncode, r.stderr))
    j = run(CSV + ["--threads", "-f", "jsonl", out])
    check(j.returncode == 0, "jsonl: %d" % j.returncode)
    try:
        rows = [json.loads(l) for l in j.stdout.decode("utf-8").splitlines()]
    except ValueError as e:
        rows = []
        check(False, "JSON lines are valid UTF-8 and JSON: %s" % e)
    names = {x["name"] for x in rows}
    check(rows and all(n.startswith('q"b\\') and "\ufffd\ufffd\u0085\u00e9-" in n for n in names),
          "names decoded: %r" % names)
    c = run(CSV + ["--threads", out])
    try:
        parsed = list(csv.DictReader(io.StringIO(c.stdout.decode("utf-8"), newline="")))
    except ValueError as e:
        parsed = []
        check(False, "CSV is valid UTF-8: %s" % e)
    check(parsed and {x["name"] for x in parsed} == names, "CSV fields equal the JSON ones: %r" % (
        {x["name"] for x in parsed} if parsed else None))
    t = run(CSV + ["--threads", "-f", "tsv", out])
    check(all(len(l.split(b"\t")) == 16 for l in t.stdout.splitlines()), "TSV: 16 fields a row")
    summ = run(CSV + ["--summary", out])
    check(summ.returncode == 0 and no_controls(summ.stdout), "summary text: no control bytes")
    # A Perfetto trace: names as printable ASCII (a protobuf string is UTF-8),
    # escaped as felix-top shows them.
    if shutil.which("protoc") or os.environ.get("FELIX_CI"):
        tr = run(CSV + ["-f", "perfetto", "-o", "-", out])
        check(tr.returncode == 0, "perfetto: %d %r" % (tr.returncode, tr.stderr))
        tnames = {one(one(one(p, "track_descriptor"), "thread"), "thread_name", "") for p in decode_trace(tr.stdout)
                  if "thread" in one(p, "track_descriptor", {})}
        check(tnames and all(n.startswith('q"b\\?\\x7f\\x85\\xff\\xc2\\x85\\u{e9}-') for n in tnames),
              "perfetto thread names escaped: %r" % tnames)
        check(all(all(0x20 <= ord(ch) < 0x7f for ch in n) for n in tnames), "perfetto names: printable ASCII")
    # Two processes match: the listing names them; the message has no control.
    m = run(REC + ["--match", "fx|felix-sim|qemu", "-o", os.path.join(TMP, "names2.felix")])
    check(m.returncode == 2 and no_controls(m.stderr), "--match listing: %d %r" % (m.returncode, m.stderr))
    for p in sims:
        p.terminate()
        p.wait()


def case_hostile_memory():
    """Each amplification class of make_hostile (files of at most 1 MiB): felix-csv
    reads it with at most 64 MiB of RSS, prints only what the file holds, and
    names damage with status 7."""
    gen = os.environ["FELIX_MAKE_HOSTILE"]
    peak = 0
    for cls in ["bomb", "bomb-big", "declared", "slots", "slots-over", "threads", "threads-over", "churn", "tokens",
                "deep", "index", "v2-threads", "v2-declared"]:
        path = os.path.join(TMP, "hostile-%s.felix" % cls)
        outcome = subprocess.run(WRAP + [gen, cls, path], capture_output=True, text=True, check=True).stdout.split()
        check(os.path.getsize(path) <= 1 << 20, "%s: at most 1 MiB" % cls)
        with open(path + ".out", "wb") as o, open(path + ".err", "wb") as e:
            p = subprocess.Popen(CSV + [path], stdout=o, stderr=e)
            _, status, usage = os.wait4(p.pid, 0)  # this child's own peak RSS
            p.returncode = os.waitstatus_to_exitcode(status)
        rc, err = p.returncode, open(path + ".err", "rb").read()
        rows = open(path + ".out", "rb").read().decode().splitlines()[1:]
        peak = max(peak, usage.ru_maxrss)
        if outcome[0] == "corrupt":
            check(rc == 7 and len(err.splitlines()) == 1 and b"byte" in err,
                  "%s: status 7 and one line naming the byte: %d %r" % (cls, rc, err[:300]))
        else:
            # A row per sample after the first (its baseline).
            check(rc == 0 and len(rows) == int(outcome[1]) - 1,
                  "%s: %d rows, status 0: %d rows, %d %r" % (cls, int(outcome[1]) - 1, len(rows), rc, err[:300]))
        print("%-12s felix-csv status %d, %.1f MiB RSS" % (cls, rc, usage.ru_maxrss / 1024), file=sys.stderr)
    peak_kib = peak
    print("hostile recordings: felix-csv peaked at %.1f MiB RSS" % (peak_kib / 1024), file=sys.stderr)
    # Under an emulator (qemu-user) the RSS is the emulator's, and sanitizers
    # add shadow memory; the library's own peak is checked there by
    # test_record's memory_bounded, which counts what it allocates.
    if not WRAP and os.environ.get("FELIX_SANITIZE", "none") == "none":
        check(peak_kib <= 64 * 1024, "felix-csv RSS %.1f MiB <= 64 MiB" % (peak_kib / 1024))


def case_too_many_threads():
    """A live segment with more threads than a recording holds (felix86's 16 MiB,
    209,714 threads): felix-rec says so in one line, exits 1, and what it wrote
    is a closed recording that reads cleanly."""
    holder = subprocess.Popen(["sleep", "120"])
    seg = "/dev/shm/fex-%d-stats" % holder.pid
    image, n = huge_segment_image()
    with open(seg, "wb") as f:
        f.write(image)
    out = os.path.join(TMP, "huge.felix")
    try:
        r = run(REC + [str(holder.pid), "-i", "100ms", "-d", "2s", "-q", "-o", out], text=True)
        check(r.returncode == 1 and len(r.stderr.splitlines()) == 1 and "32768 threads" in r.stderr,
              "status 1, one line naming the limit: %d %r" % (r.returncode, r.stderr))
        c = run(CSV + [out], text=True)
        check(c.returncode == 0, "the recording reads cleanly: %d %r" % (c.returncode, c.stderr))
    finally:
        os.unlink(seg)
        holder.kill()
        holder.wait()


def case_budget_and_process_memory():
    """felix-csv: over_budget in thread rows at --fps, the worst threads in
    --summary, and mem_process_rss (the whole process) in sample rows."""
    sim = Sim("-t", "2", "-s", "storm", "--mappings", "500")  # 30 ms of JIT + signal per 100 ms
    out = record(sim, 1.5, "100ms")
    sim.stop()
    rows = csv_rows(out)
    have = [r for r in rows if r["mem_process_rss"]]
    check(have, "mem_process_rss in sample rows")
    check(all(int(r["mem_process_rss"]) >= int(r["mem_total"]) + 500 * 4096 for r in have),
          "the whole process holds FEX's regions and 500 more pages")
    t60 = csv_rows(out, "--threads")
    over = [r for r in t60 if r["over_budget"] == "1"]
    check(len(over) >= len(t60) // 2, "30 ms of 100 spends a 16.7 ms frame: %d of %d" % (len(over), len(t60)))
    t5 = csv_rows(out, "--threads", "--fps", "5")
    check(all(r["over_budget"] == "0" for r in t5), "30 ms of 100 never spends a 200 ms frame")
    summ = run(CSV + ["--summary", "-f", "jsonl", out], text=True)
    j = json.loads(summ.stdout)
    check(j["fps"] == 60 and len(j["over_budget_threads"]) == 2 and j["over_budget_threads"][0]["intervals"] >= 1,
          "summary: the threads over budget %r" % j.get("over_budget_threads"))
    check(j["process_rss_peak"] >= j["fex_rss_at_peak"] > 0, "summary: peak process RSS and FEX's part")
    bad = run(CSV + ["--fps", "0", out], text=True)
    check(bad.returncode == 2 and "--fps" in bad.stderr, "--fps 0 refused, naming the option: %r" % bad.stderr)


def case_options_documented():
    """Every long option a tool's --help names is in its man page and its bash
    completion, and the completion offers none that --help does not name."""
    src = os.path.dirname(os.path.abspath(__file__)) + "/.."
    with open(os.path.join(src, "tools", "completion", "felix")) as f:
        comp = f.read()
    opt = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]+)")
    tools = {"felix-sim": SIM, "felix-rec": REC, "felix-csv": CSV, "felix-top": WRAP + [os.environ["FELIX_TOP"]]}
    if os.environ.get("FELIX_REPORT"):
        tools["felix-report"] = WRAP + [os.environ["FELIX_REPORT"]]
    if os.environ.get("FELIX_EXPORTER"):
        tools["felix-exporter"] = WRAP + [os.environ["FELIX_EXPORTER"]]
    for name, cmd in tools.items():
        r = run(cmd + ["--help"], text=True)
        check(r.returncode == 0, "%s --help: exit %d" % (name, r.returncode))
        helped = set(opt.findall(r.stdout))
        check(len(helped) >= 3, "%s --help names its options: %s" % (name, sorted(helped)))
        with open(os.path.join(src, "docs", "man", name + ".1")) as f:
            man = set(opt.findall(f.read().replace("\\-", "-")))
        check(helped <= man, "%s: in --help, not in the man page: %s" % (name, sorted(helped - man)))
        fn = "_" + name.replace("-", "_") + "()"
        body = comp[comp.index(fn):] if fn in comp else ""
        body = body[:body.find("\n}\n")]
        offered = set(opt.findall(body))
        check(helped == offered, "%s: --help %s, completion %s" % (name, sorted(helped - offered), sorted(offered - helped)))
        check(("complete -F _%s %s" % (name.replace("-", "_"), name)) in comp, "%s: completion registered" % name)


def main(cases, cleanup=None):
    """Run the cases named on the command line (all by default); exit 0, 1
    on a failure, or 77 (meson's "skipped") when every one was skipped."""
    names = sys.argv[1:] or list(cases)
    skipped = 0
    for n in names:
        before = failures
        try:
            cases[n]()
        except Skip:
            skipped += failures == before
            continue
        print(("ok: " if failures == before else "FAIL: ") + n, file=sys.stderr)
    if cleanup:
        shutil.rmtree(cleanup, ignore_errors=True)
    sys.exit(1 if failures else 77 if skipped == len(names) else 0)


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    main(CASES)
