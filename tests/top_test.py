#!/usr/bin/env python3
"""felix-top in a real terminal (tmux): panels, keys, replay, exit banner,
terminal restore, picker, 80x24. Usage: top_test.py CASE."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from segimage import huge_segment_image

TOP, SIM, REC = os.environ["FELIX_TOP"], os.environ["FELIX_SIM"], os.environ["FELIX_REC"]
MAKEREC = os.environ["FELIX_MAKE_RECORDING"]
TMP = tempfile.mkdtemp(prefix="felix-top-")
SOCK = os.path.join(TMP, "tmux-0.sock")
starts = 0
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("CHECK failed:", what, file=sys.stderr)
        print(screen(), file=sys.stderr)


def tmux(*args):
    return subprocess.run(["tmux", "-S", SOCK] + list(args), capture_output=True, text=True).stdout


def start(cmd, w=100, h=30, lang="C.UTF-8", extra_env=""):
    """A fresh tmux server (its own socket) running cmd in a w x h terminal."""
    global SOCK, starts
    tmux("kill-server")
    starts += 1
    SOCK = os.path.join(TMP, "tmux-%d.sock" % starts)
    shell = "cd %s; export LANG=%s LC_ALL=%s %s; %s; echo FELIX-TOP-EXIT=$?; sleep 60" % (TMP, lang, lang, extra_env, cmd)
    tmux("new-session", "-d", "-s", "t", "-x", str(w), "-y", str(h), shell)


def screen():
    return tmux("capture-pane", "-p", "-t", "t")


def keys(*k):
    tmux("send-keys", "-t", "t", *k)


def wait_for(pred, seconds=15, what=""):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = screen()
        if pred(s):
            return s
        time.sleep(0.05)
    check(False, "timed out waiting for " + what)
    return screen()


class Sim:
    def __init__(self, *args):
        self.p = subprocess.Popen([SIM] + list(args), stdout=subprocess.PIPE)
        self.pid = int(self.p.stdout.readline())

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        self.p.wait(timeout=20)


def row_load(s, name):
    m = re.search(r"\s(\d+)\s+%s\s+([\d.]+)%%" % re.escape(name), s)
    return float(m.group(2)) if m else None


def case_live_panels():
    """The steady scenario's numbers show in the panels."""
    sim = Sim("-t", "4")
    # 1 s intervals: a late timed block of the simulator (a few ms on a busy
    # machine) is a small part of the interval, as it is of FEX's.
    start("%s -i 1s %d" % (TOP, sim.pid))
    s = wait_for(lambda s: "sim-worker-4" in s and "FEXAllocator" in s and re.search(r"-\d+s", s), what="panels")
    check("LIVE" in s and "PID %d" % sim.pid in s, "status bar")
    # Each interval's loads within 10% of the scenario's: on a loaded machine
    # one interval can hold a block that ended late, so a few intervals (a
    # second each) may pass before one shows every thread on its rate.
    def on_rate(scr):
        loads = [row_load(scr, "sim-worker-%d" % k) for k in range(1, 5)]
        return all(l is not None and abs(l - ((k % 10 + 1) * 5 + 2)) <= 0.1 * ((k % 10 + 1) * 5 + 2)
                   for k, l in zip(range(1, 5), loads))
    s = wait_for(on_rate, seconds=8, what="every thread's load within 10% of its rate")
    for k in range(1, 5):
        load = row_load(s, "sim-worker-%d" % k)
        want = (k % 10 + 1) * 5 + 2
        check(load is not None and abs(load - want) <= 0.1 * want, "thread %d load %s vs %d" % (k, load, want))
    check("JIT count" in s and "SIGBUS" in s and "soft-float" in s and "cache miss" in s, "aggregate counters")
    check("3.0 MiB" in s, "FEXAllocator size")
    keys("q")
    sim.stop()


def case_keys():
    """Every documented key does what it says."""
    sim = Sim("-t", "3")
    start("%s -i 250ms %d" % (TOP, sim.pid))
    wait_for(lambda s: "sim-worker-3" in s, what="threads")
    keys("?")
    wait_for(lambda s: "felix-top keys" in s, 5, "help overlay")
    keys("?")
    wait_for(lambda s: "felix-top keys" not in s, 5, "help closed")
    keys("p")
    wait_for(lambda s: "| PAUSED |" in s, 5, "paused")
    keys("p")
    wait_for(lambda s: "| LIVE |" in s, 5, "live again")
    keys("+")
    wait_for(lambda s: "| 500ms |" in s, 5, "interval 500ms")
    keys("-")
    wait_for(lambda s: "| 200ms |" in s, 5, "interval 200ms")
    keys("-")
    wait_for(lambda s: "| 100ms |" in s, 5, "interval 100ms")
    keys("s")
    wait_for(lambda s: "sort: blocks" in s, 5, "sort order")
    keys("Down", "Enter")  # collapse the memory panel
    wait_for(lambda s: "▸ Memory" in s and "FEXAllocator" not in s, 5, "memory collapsed")
    keys("Right")  # Right expands it again
    wait_for(lambda s: "▾ Memory" in s and "FEXAllocator" in s, 5, "memory expanded")
    keys("k", "Enter")  # select the JIT panel, collapse it
    wait_for(lambda s: "▸ JIT" in s and "sim-worker" not in s, 5, "JIT collapsed")
    # A click on a panel's title (xterm mouse report) expands it again.
    row = [i for i, l in enumerate(screen().splitlines()) if "▸ JIT" in l][0]
    tmux("send-keys", "-t", "t", "-l", "\033[M %s%s" % (chr(32 + 5), chr(32 + row + 1)))
    wait_for(lambda s: "▾ JIT" in s and "sim-worker" in s, 5, "JIT expanded by a click")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 5, "exit 0 after q")
    sim.stop()


def case_exit_banner():
    """The PROCESS EXITED banner when the process ends; the data stays."""
    sim = Sim("-t", "2", "-d", "2s", "--exit-status", "3")
    start("%s -i 200ms %d" % (TOP, sim.pid))
    wait_for(lambda s: "sim-worker-2" in s, what="threads")
    s = wait_for(lambda s: "PROCESS EXITED" in s, 15, "the exit banner")
    check("FEX load" in s, "the last data stays")
    keys("q")
    sim.stop()


def case_terminal_restored():
    """The terminal leaves the alternate screen after q and after SIGTERM."""
    for how in ("q", "TERM"):
        sim = Sim("-t", "2", "--no-mem")
        start("%s -i 200ms %d" % (TOP, sim.pid))
        wait_for(lambda s: "sim-worker-2" in s, what="threads")
        check(tmux("display", "-p", "-t", "t", "#{alternate_on}").strip() == "1", "alternate screen while running")
        if how == "q":
            keys("q")
        else:
            pids = subprocess.run(["pgrep", "-f", "^%s -i 200ms %d" % (TOP, sim.pid)], capture_output=True, text=True).stdout.split()
            for p in pids:
                os.kill(int(p), signal.SIGTERM)
        want = "FELIX-TOP-EXIT=0" if how == "q" else "FELIX-TOP-EXIT=143"
        wait_for(lambda s: want in s, 10, "exit after " + how)
        check(tmux("display", "-p", "-t", "t", "#{alternate_on}").strip() == "0", "terminal restored after " + how)
        check(tmux("display", "-p", "-t", "t", "#{cursor_flag}").strip() == "1", "cursor visible after " + how)
        sim.stop()


def case_picker():
    """The picker lists two felix-sim processes and attaches to the chosen one."""
    a, b = Sim("-t", "1", "--no-mem"), Sim("-t", "1", "--no-mem")
    start(TOP)
    s = wait_for(lambda s: str(a.pid) in s and str(b.pid) in s, what="both processes")
    lines = s.splitlines()
    ia = [i for i, l in enumerate(lines) if l.strip().startswith(str(a.pid))]
    ib = [i for i, l in enumerate(lines) if l.strip().startswith(str(b.pid))]
    check(ia and ib, "each on its own row")
    # The selection starts on the first row (screen line 2); other FEX
    # processes may be listed too.
    for _ in range(ib[0] - 2 if ib else 0):
        keys("Down")
    keys("Enter")
    wait_for(lambda s: "PID %d" % b.pid in s, 10, "attached to the second")
    keys("q")
    a.stop()
    b.stop()


def case_watch():
    """--watch waits, then attaches to the next FEX process that starts."""
    start("%s --watch -i 250ms" % TOP)
    wait_for(lambda s: "waiting for a FEX process" in s, 10, "the waiting screen")
    sim = Sim("-t", "2", "--no-mem")
    wait_for(lambda s: "PID %d" % sim.pid in s and "sim-worker-2" in s, 10, "attached to the new process")
    keys("q")
    sim.stop()


def case_replay():
    """Replay: pause, step, seek ten seconds, speed, Home and End."""
    path = os.path.join(TMP, "r.felix")
    subprocess.run([MAKEREC, path, "600", "1000", "4"], check=True)  # 10 minutes at 1 s
    start("%s %s" % (TOP, path))
    wait_for(lambda s: "REPLAY" in s and "synth-4" in s, what="replay")
    keys("Space")
    wait_for(lambda s: "REPLAY (paused)" in s, 5, "paused")
    keys("Home")
    wait_for(lambda s: " 00:00:01.0 " in s, 5, "Home: the first frame")
    keys("Right")
    wait_for(lambda s: " 00:00:02.0 " in s, 5, "one sample forward")
    keys("NPage")
    wait_for(lambda s: " 00:00:12.0 " in s, 5, "ten seconds forward")
    keys("Left")
    wait_for(lambda s: " 00:00:11.0 " in s, 5, "one sample back")
    keys("PPage")
    wait_for(lambda s: " 00:00:01.0 " in s, 5, "ten seconds back")
    keys("End")
    wait_for(lambda s: " 00:09:59.0 " in s, 5, "End")
    keys("]", "]")
    wait_for(lambda s: re.search(r"\s4x\s*$", s.splitlines()[1]), 5, "speed 4x")
    keys("[", "[", "[", "[")
    wait_for(lambda s: re.search(r"\s0\.25x\s*$", s.splitlines()[1]), 5, "speed 0.25x")
    s = screen()
    load = row_load(s, "synth-4")
    check(load is not None and abs(load - 20.0) < 0.5, "replayed load %s" % load)
    keys("q")


def case_small_terminal():
    """At 80x24 every panel fits, nothing overlaps or wraps; ASCII without UTF-8."""
    sim = Sim("-t", "8")
    for lang, bar in (("C.UTF-8", "█"), ("C", "#")):
        start("%s -i 250ms %d" % (TOP, sim.pid), w=80, h=24, lang=lang, extra_env="NO_COLOR=1")
        s = wait_for(lambda s: "sim-worker-8" in s and "History" in s and re.search(r"-\d+s", s), what="panels at 80x24")
        lines = s.splitlines()
        check(len(lines) <= 24 and all(len(l) <= 80 for l in lines), "fits 80x24")
        order = [next((i for i, l in enumerate(lines) if t in l), -1) for t in ("JIT  FEX load", "Memory", "History", "q quit")]
        check(all(x >= 0 for x in order) and order == sorted(order), "panels in order: %s" % order)
        check(all(sum(t in l for t in ("JIT  FEX", "Memory ", "History ")) <= 1 for l in lines), "no overlap")
        check(bar in s, "bars drawn with %r" % bar)
        if lang == "C":
            check("█" not in s, "ASCII only without UTF-8")
        keys("q")
    sim.stop()


def case_record_while_watching():
    """-r records what is watched; the recording is finalized at exit."""
    sim = Sim("-t", "2", "--no-mem", "-d", "2s")
    out = os.path.join(TMP, "watch.felix")
    start("%s -i 100ms -r %s %d" % (TOP, out, sim.pid))
    s = wait_for(lambda s: "PROCESS EXITED" in s, 15, "exit banner")
    check("REC" in s, "recording indicator")
    keys("q")
    sim.stop()
    r = subprocess.run([os.environ["FELIX_CSV"], "-s", "-f", "jsonl", out], capture_output=True, text=True)
    check(r.returncode == 0 and '"truncated":false' in r.stdout, "a complete recording: %s %s" % (r.stdout, r.stderr))


def case_demo_resize_stdin():
    """--demo starts felix-sim and stops it at exit; resizing re-lays the screen;
    a recording replays from standard input; SIGINT restores the terminal."""
    start("%s --demo -i 250ms" % TOP)
    s = wait_for(lambda s: "sim-worker-6" in s, what="the demo's threads")
    pid = int(re.search(r"PID (\d+)", s).group(1))
    # Its timed blocks use the CPU, as FEX's JIT does: JIT/CPU shares are real
    # percentages (a preempted thread may still show >100%*, explained).
    # (JIT/CPU, then LOST when the thread lost frames, then BLOCKS.)
    share = r"sim-worker-\d.*\s(\d+)%\s+(?:!?\d+\s+)?\d+\s*$"
    s = wait_for(lambda s: re.search(share, s, re.M), 10, "a JIT/CPU share")
    shares = [int(x) for x in re.findall(share, s, re.M)]
    check(shares and min(shares) <= 100, "the demo's JIT/CPU shares are plausible: %s" % shares)
    check(os.path.exists("/dev/shm/fex-%d-stats" % pid), "the demo's segment")
    tmux("resize-window", "-t", "t", "-x", "80", "-y", "24")
    s = wait_for(lambda s: len(s.splitlines()[0]) <= 80 and "History" in s, 5, "a re-laid 80x24 screen")
    check(all(len(l) <= 80 for l in s.splitlines()), "fits after resize")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 10, "exit")
    end = time.monotonic() + 10
    while os.path.exists("/dev/shm/fex-%d-stats" % pid) and time.monotonic() < end:
        time.sleep(0.05)
    check(not os.path.exists("/dev/shm/fex-%d-stats" % pid), "the demo's felix-sim stopped with felix-top")
    path = os.path.join(TMP, "stdin.felix")
    subprocess.run([MAKEREC, path, "50", "100", "3"], check=True)
    start("cat %s | %s -" % (path, TOP))
    wait_for(lambda s: "REPLAY" in s and "synth-3" in s, 10, "a replay from standard input")
    pids = subprocess.run(["pgrep", "-f", "^%s -$" % TOP], capture_output=True, text=True).stdout.split()
    for p in pids:
        os.kill(int(p), signal.SIGINT)
    wait_for(lambda s: "FELIX-TOP-EXIT=130" in s, 10, "exit 130 after SIGINT")
    check(tmux("display", "-p", "-t", "t", "#{alternate_on}").strip() == "0", "terminal restored after SIGINT")


def case_exit_statuses():
    """Bad input: one line naming the thing, the documented status, the terminal untouched."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    for arg, status, text in ((str(dead.pid), 3, "no process with PID"), (str(os.getpid()), 4, "no FEX statistics"),
                              ("/nonexistent.felix", 7, "/nonexistent.felix"), ("--bogus", 2, "unknown option")):
        start("%s %s" % (TOP, arg), w=250)  # wide enough that the line does not wrap
        s = wait_for(lambda s: "FELIX-TOP-EXIT=" in s, 10, "exit for " + arg)
        check("FELIX-TOP-EXIT=%d" % status in s, "%s: status %d" % (arg, status))
        lines = [l for l in s.splitlines() if l.strip() and "FELIX-TOP-EXIT" not in l]
        check(len(lines) == 1 and text in lines[0], "%s: one line: %r" % (arg, lines))


def case_exec_shown():
    """A process that execs: felix-top says so in its header and keeps showing it."""
    sim = Sim("-t", "3", "--exec", "2", "--exec-every", "1500ms")
    start("%s -i 100ms %d" % (TOP, sim.pid))
    wait_for(lambda s: "sim-worker-3" in s, what="threads")
    s = wait_for(lambda s: "exec'd: image 2" in s, 10, "the first exec in the header")
    s = wait_for(lambda s: "exec'd: image 3" in s and "sim-worker-3" in s and "LIVE" in s, 10,
                 "the second exec, the process still shown")
    check("PID %d" % sim.pid in s, "same PID")
    check("PROCESS EXITED" not in s, "an exec is not an exit")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 10, "exit")
    sim.stop()


def case_huge_segment():
    """A 16 MiB segment (209,714 threads, felix86's largest): felix-top shows it and
    quits on q (the per-frame times are in bench_top). At 10 ms every sample and
    redraw overruns its interval, so q is read while sampling: felix-top must not
    then wait for another key (it blocked until one came)."""
    holder = subprocess.Popen(["sleep", "120"])
    seg = "/dev/shm/fex-%d-stats" % holder.pid
    image, n = huge_segment_image()
    with open(seg, "wb") as f:
        f.write(image)
    start("%s -i 10ms %d" % (TOP, holder.pid))
    s = wait_for(lambda s: "%d threads" % n in s, 30, "the 16 MiB segment's threads")
    keys("j")
    wait_for(lambda s: "Memory" in s, 5, "a key handled")
    t0 = time.monotonic()
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 10, "exit after q")
    print("felix-top quit %.2f s after q on a 16 MiB segment" % (time.monotonic() - t0), file=sys.stderr)
    os.unlink(seg)
    holder.kill()
    holder.wait()


def case_names_escaped():
    """A thread name with ESC, DEL and C1 bytes shows them as visible escapes."""
    p = subprocess.Popen([SIM.encode(), b"-t", b"1", b"--no-mem", b"--thread-name", b"\x1b[J\xc2\x85"],
                         stdout=subprocess.PIPE)
    pid = int(p.stdout.readline())
    start("%s -i 250ms %d" % (TOP, pid))
    s = wait_for(lambda s: "\\x1b[J\\xc2\\x85-1" in s, 10, "the escaped thread name")
    check("LIVE" in s, "the screen was not cleared by the name")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 10, "exit")
    p.terminate()
    p.wait()


def rchar(pid):
    """Bytes the process has read through read() and pread() so far."""
    with open("/proc/%d/io" % pid) as f:
        return int([l for l in f if l.startswith("rchar:")][0].split()[1])


def case_memory_context():
    """The memory panel shows the whole process's RSS beside FEX's, with each
    region's mappings; while it is collapsed, smaps is not read at all."""
    sim = Sim("-t", "2", "--mappings", "3000")
    cmd = "%s -i 100ms %d" % (TOP, sim.pid)
    start(cmd, w=120, h=40)
    pat = r"Memory  FEX [\d.]+ \w+ of [\d.]+ \w+ RSS \((\d+)%\) in \d+ FEX regions; (\d+) mappings"
    s = wait_for(lambda s: re.search(pat, s), 15, "the process's RSS and FEX's share")
    m = re.search(pat, s)
    check(m and int(m.group(2)) >= 3000 and 0 < int(m.group(1)) < 100, "share and mappings: %s" % (m and m.group(0)))
    check(re.search(r"FEXMemJIT\s+[\d.]+ \w+\s+1 map ", s), "a region's mappings")
    top = int(subprocess.run(["pgrep", "-n", "-f", cmd], capture_output=True, text=True).stdout.split()[0])
    smaps = len(open("/proc/%d/smaps" % sim.pid, "rb").read())
    # Open: smaps is read once a second. How long two reads take here...
    r0, t0 = rchar(top), time.monotonic()
    while rchar(top) - r0 < 2 * smaps and time.monotonic() - t0 < 15:
        time.sleep(0.05)
    span = time.monotonic() - t0
    check(rchar(top) - r0 >= 2 * smaps, "smaps read while the panel is open")
    keys("Down", "Enter")
    wait_for(lambda s: "▸ Memory" in s, 5, "memory collapsed")
    # ...and collapsed, as long again: not one read.
    r1, t1 = rchar(top), time.monotonic()
    while time.monotonic() - t1 < span:
        time.sleep(0.05)
    check(rchar(top) - r1 < smaps, "no smaps read while collapsed: %d bytes read (smaps is %d)" % (rchar(top) - r1, smaps))
    keys("Enter")
    wait_for(lambda s: "▾ Memory" in s, 5, "memory expanded")
    r2, t2 = rchar(top), time.monotonic()
    while rchar(top) - r2 < smaps and time.monotonic() - t2 < 15:
        time.sleep(0.05)
    check(rchar(top) - r2 >= smaps, "smaps read again once expanded")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 5, "exit 0 after q")
    # Recorded, and shown in replay.
    rec = os.path.join(TMP, "mem.felix")
    subprocess.run([REC, str(sim.pid), "-i", "100ms", "-d", "1.5s", "-q", "-o", rec], check=True)
    sim.stop()
    start("%s %s" % (TOP, rec), w=120, h=40)
    s = wait_for(lambda s: re.search(pat, s), 15, "the process's RSS in replay")
    m = re.search(pat, s)
    check(m and int(m.group(2)) >= 3000, "replay: mappings %s" % (m and m.group(0)))
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 5, "exit 0 after q")


def case_frame_budget():
    """Threads that spend a frame's budget in JIT + signal are marked with their
    count of lost frames; b cycles the frame rate; --fps sets it; the history
    and the help name the rule."""
    sim = Sim("-t", "2", "-s", "storm")  # JIT 20% + signal 10%: 30 ms of every 100 ms
    start("%s -i 100ms %d" % (TOP, sim.pid), w=120, h=40)
    s = wait_for(lambda s: re.search(r"sim-worker-\d .*!\d+\s+\d+\s*$", s, re.M), 15, "a thread marked over budget")
    check("budget: 60 fps, 16.7 ms (b)" in s and "LOST" in s, "the budget in the title, the LOST column")
    check("■budget" in s, "the fifth flag in the history")
    for fps, ms in [("90", "11.1"), ("120", "8.3"), ("144", "6.9"), ("30", "33.3"), ("60", "16.7")]:
        keys("b")
        wait_for(lambda s: "budget: %s fps, %s ms (b)" % (fps, ms) in s, 5, "%s fps" % fps)
    keys("?")
    s = wait_for(lambda s: "felix-top keys" in s, 5, "help")
    check("frame budget: 30/60/90/120/144 fps" in s and "frames lost: a thread spent 1/fps of JIT +" in s,
          "the rule in the help")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 5, "exit 0 after q")
    start("%s --fps 5 -i 100ms %d" % (TOP, sim.pid), w=120, h=40)
    s = wait_for(lambda s: "budget: 5 fps, 200.0 ms (b)" in s and "sim-worker-2" in s, 15, "--fps 5")
    # 30 ms of 100 is never a 200 ms frame: nothing lost, no mark.
    check(not re.search(r"!\d+", s), "no thread over a 200 ms budget")
    keys("q")
    wait_for(lambda s: "FELIX-TOP-EXIT=0" in s, 5, "exit 0 after q")
    sim.stop()


CASES = {n[5:]: f for n, f in list(globals().items()) if n.startswith("case_")}

if __name__ == "__main__":
    try:
        for n in sys.argv[1:] or list(CASES):
            before = failures
            CASES[n]()
            print(("ok: " if failures == before else "FAIL: ") + n, file=sys.stderr)
    finally:
        tmux("kill-server")
    sys.exit(1 if failures else 0)
