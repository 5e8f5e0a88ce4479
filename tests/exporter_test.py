#!/usr/bin/env python3
"""End-to-end tests of felix-exporter against felix-sim, promtool and a real
Prometheus server.

Usage: exporter_test.py CASE   ($FELIX_EXPORTER, and tools_test.py's variables)."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import tools_test as T
from tools_test import NASTY, SIM, WRAP, Sim, check, need, run, wait_until

EXPORTER = WRAP + [os.environ["FELIX_EXPORTER"]]
TMP = tempfile.mkdtemp(prefix="felix-exporter-")


class Exporter:
    """felix-exporter on 127.0.0.1, a port of its own choosing."""

    def __init__(self, *args):
        self.p = subprocess.Popen(EXPORTER + ["--listen", "127.0.0.1:0"] + list(args), stderr=subprocess.PIPE,
                                  text=True)
        line = self.p.stderr.readline()
        m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
        check(m is not None, "felix-exporter says where it serves: %r" % line)
        self.port = int(m.group(1)) if m else 0
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path="/metrics", accept=None, method="GET", data=None):
        req = urllib.request.Request(self.url + path, method=method, data=data)
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def metrics(self, accept=None):
        status, headers, body = self.get(accept=accept)
        check(status == 200, "GET /metrics: %d" % status)
        return parse(body.decode("utf-8")), headers, body

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        rc = self.p.wait(timeout=20)
        rest = self.p.stderr.read()
        return rc, rest


LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def unescape(v):
    return re.sub(r'\\([\\"n])', lambda m: {"\\": "\\", '"': '"', "n": "\n"}[m.group(1)], v)


def parse(text):
    """The exposition text as {"families": {name: {type, help, unit}}, "samples":
    [(name, labels, value)]}, checking the structure both formats share:
    every family's samples contiguous, after its # HELP and # TYPE."""
    fams, samples, order = {}, [], []
    check(not text or text.endswith("\n"), "ends with a newline")
    for line in text.splitlines():
        check(line != "", "no blank line")
        if line.startswith("# "):
            kw, _, rest = line[2:].partition(" ")
            if kw == "EOF":
                continue
            name, _, val = rest.partition(" ")
            check(kw in ("HELP", "TYPE", "UNIT"), "comment kind %r" % kw)
            fams.setdefault(name, {})[kw.lower()] = val
            if not order or order[-1] != name:
                check(name not in order, "family %s in one piece" % name)
                order.append(name)
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        check(m is not None, "a sample line: %r" % line)
        if not m:
            continue
        name, lab, value = m.groups()
        labels = {}
        if lab:
            pos = 0
            while pos < len(lab):
                lm = LABEL.match(lab, pos)
                check(lm is not None, "labels of %r" % line)
                if not lm:
                    break
                check(lm.group(1) not in labels, "label %s once" % lm.group(1))
                labels[lm.group(1)] = unescape(lm.group(2))
                pos = lm.end()
                if pos < len(lab):
                    check(lab[pos] == ",", "labels separated by commas: %r" % line)
                    pos += 1
        fam = name if name in fams else re.sub(r"_total$", "", name)
        check(fam in fams and "type" in fams[fam] and "help" in fams[fam], "%s after its # HELP and # TYPE" % name)
        check(order and order[-1] == fam, "%s in its family's piece" % name)
        samples.append((name, labels, float(value)))
    return {"families": fams, "samples": samples}


def values(m, name, **want):
    return [v for n, l, v in m["samples"] if n == name and all(l.get(k) == str(x) for k, x in want.items())]


def promtool_clean(body):
    need("promtool")
    r = run(["promtool", "check", "metrics"], input=body)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          "promtool check metrics: exit %d %r %r" % (r.returncode, r.stdout, r.stderr))


def case_metrics_valid():
    """/metrics passes promtool (lint included), names follow Prometheus' rules,
    values are the processes' own, labels of any bytes are escaped and valid
    UTF-8, OpenMetrics on request, only GET/HEAD of / and /metrics, and the
    bounds on request size, connections per address and idle time."""
    link = os.path.join(TMP.encode(), b"fx\x1b\x7f\x85")
    if not os.path.lexists(link):
        os.symlink(SIM[-1], link)
    plain = Sim("-t", "3", "-s", "steady")
    nasty = subprocess.Popen(SIM[:-1] + [link, b"-t", b"2", b"--no-mem", b"--thread-name", NASTY,
                                         b"--fex-version", b'FEX"\\\n\xff'], stdout=subprocess.PIPE)
    npid = int(nasty.stdout.readline())
    ex = Exporter("--threads")
    try:
        m, headers, body = ex.metrics()
        check(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), "text format's type")
        promtool_clean(body)
        for name, f in m["families"].items():
            check(name.startswith("fex_"), "family %s in the fex_ namespace" % name)
            if f["type"] == "counter":
                check(name.endswith("_total"), "counter %s ends in _total" % name)
        pids = {l.get("pid") for n, l, v in m["samples"] if n == "fex_threads"}
        check({str(plain.pid), str(npid)} <= pids, "both processes: %s" % pids)
        check(values(m, "fex_threads", pid=plain.pid) == [3], "fex_threads of the steady sim: %s" % values(
            m, "fex_threads", pid=plain.pid))
        lab = [l for n, l, v in m["samples"] if n == "fex_threads" and l["pid"] == str(plain.pid)][0]
        check(lab.get("app_type") == "Linux64" and lab.get("fex_version", "").startswith("FEX-"), "labels %s" % lab)
        check(set(lab) == {"pid", "process", "app_type", "fex_version"}, "process labels: %s" % sorted(lab))
        check(values(m, "fex_memory_bytes", pid=plain.pid, region="FEXMemJIT") == [2097152], "FEXMemJIT bytes")
        # Thread series: one per worker, named.
        th = {l["thread"]: v for n, l, v in m["samples"] if n == "fex_thread_jit_blocks_total"
              and l["pid"] == str(plain.pid)}
        check(sorted(th) == ["sim-worker-1", "sim-worker-2", "sim-worker-3"], "thread series: %s" % sorted(th))
        total = values(m, "fex_jit_blocks_total", pid=plain.pid)
        check(total and total[0] >= sum(th.values()), "process blocks %s >= its threads' %s" % (total, th))
        # Names of any bytes.
        nl = [l for n, l, v in m["samples"] if n == "fex_threads" and l["pid"] == str(npid)]
        check(nl, "the nasty process is reported")
        for l in nl + [l for n, l, v in m["samples"] if n == "fex_thread_smc_total" and l["pid"] == str(npid)]:
            for k, v in l.items():
                check(not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in v), "no control in %s=%r" % (k, v))
        if nl:
            v = nl[0]["fex_version"]
            check(v.startswith('FEX"\\') and "\\x0a" in v and "\\xff" in v and "\n" not in v, "fex_version %r" % v)
            if not WRAP:  # under an emulator, comm is the emulator's
                check(nl[0]["process"] == "fx\\x1b\\x7f\\x85", "process name %r" % nl[0]["process"])
        names = {l["thread"] for n, l, v in m["samples"] if n == "fex_thread_smc_total" and l["pid"] == str(npid)}
        check(len(names) == 2 and all(x.startswith('q"b\\') and "\\x1b" in x and "\u00e9" in x for x in names),
              "thread names %r" % names)
        # OpenMetrics when asked for.
        om, headers, body = ex.metrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        check(headers.get("Content-Type", "").startswith("application/openmetrics-text; version=1.0.0"),
              "OpenMetrics type: %s" % headers.get("Content-Type"))
        check(body.endswith(b"# EOF\n") and body.count(b"# EOF") == 1, "OpenMetrics ends with # EOF")
        f = om["families"]
        check("fex_jit_seconds" in f and f["fex_jit_seconds"]["type"] == "counter" and
              f["fex_jit_seconds"].get("unit") == "seconds", "OpenMetrics family without _total, with its unit")
        check("fex_jit_seconds_total" not in f, "no _total in OpenMetrics family names")
        check(values(om, "fex_jit_seconds_total", pid=plain.pid), "OpenMetrics counter samples end in _total")
        # HTTP: the two paths, GET and HEAD only.
        st, h, b = ex.get("/")
        check(st == 200 and b"/metrics" in b, "GET /: %d" % st)
        st, h, b = ex.get("/nothing")
        check(st == 404, "GET /nothing: %d" % st)
        st, h, b = ex.get("/metrics", method="POST", data=b"x=1")
        check(st == 405 and h.get("Allow") == "GET, HEAD", "POST: %d, Allow %s" % (st, h.get("Allow")))
        st, h, b = ex.get("/metrics", method="HEAD")
        check(st == 200 and b == b"", "HEAD: %d, %d bytes" % (st, len(b)))
        # A request bigger than the bound is refused, and the exporter serves on.
        s = socket.create_connection(("127.0.0.1", ex.port), timeout=30)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
            reply = s.recv(4096)
        except OSError:
            reply = b""
        s.close()
        check(not reply.startswith(b"HTTP/1.1 200"), "an oversized request is refused: %r" % reply[:40])
        check(ex.get()[0] == 200, "serves after an oversized request")
        # At most 8 connections from one address: a ninth is closed unanswered,
        # and the server serves again once they go.
        idle = [socket.create_connection(("127.0.0.1", ex.port), timeout=30) for _ in range(8)]
        s = socket.create_connection(("127.0.0.1", ex.port), timeout=30)
        try:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            reply = s.recv(64)
        except OSError:
            reply = b""
        s.close()
        check(reply == b"", "a ninth connection from one address is refused: %r" % reply[:40])
        # An idle connection is closed after the 10 s bound (and not long before).
        t0 = time.monotonic()
        try:
            idle[0].settimeout(30)
            eof = idle[0].recv(64) == b""
        except OSError:
            eof = False
        waited = time.monotonic() - t0
        check(eof and 8 <= waited <= 25, "an idle connection closed after %.1f s" % waited)
        for c in idle:
            c.close()

        # Until the server has seen all eight go, a new connection may still be
        # over the per-address bound and be closed unanswered: that is "not yet".
        def serving():
            try:
                return ex.get()[0] == 200
            except (OSError, http.client.HTTPException):
                return False
        wait_until(serving, 20, "serving again after the idle connections")
    finally:
        rc, err = ex.stop()
        plain.stop()
        nasty.terminate()
        nasty.wait(timeout=20)
    check(rc == 0, "SIGTERM: exit %d" % rc)
    check(err.strip() == "", "nothing more on stderr: %r" % err)


def case_churn_and_lifecycle():
    """Counters never go back while threads exit (exited threads stay in the
    totals); a process that starts is reported, one that ends leaves."""
    churn = Sim("-t", "8", "-s", "churn", "--no-mem")
    ex = Exporter("--no-memory")
    late = None
    try:
        last, seen_threads, scrapes = {}, set(), 0
        end = time.monotonic() + 60
        while time.monotonic() < end and (len(seen_threads) < 4 or scrapes < 15):
            m, _, _ = ex.metrics()
            scrapes += 1
            seen_threads.update(values(m, "fex_threads", pid=churn.pid))
            for name in ("fex_jit_blocks_total", "fex_jit_seconds_total", "fex_smc_total"):
                v = values(m, name, pid=churn.pid)
                check(len(v) == 1, "%s of the churning process" % name)
                if v:
                    check(v[0] >= last.get(name, 0), "%s went back: %s -> %s" % (name, last.get(name), v[0]))
                    last[name] = v[0]
            time.sleep(0.05)
        check(len(seen_threads) >= 4, "thread counts seen: %s" % sorted(seen_threads))
        # A process that execs keeps its series, and its counters go on.
        ex_sim = Sim("-t", "2", "-s", "steady", "--no-mem", "--exec", "2", "--exec-every", "300ms")
        try:
            wait_until(lambda: values(ex.metrics()[0], "fex_threads", pid=ex_sim.pid) == [2], 20, "the exec'ing process")
            prev, end = 0, time.monotonic() + 5
            while time.monotonic() < end:
                v = values(ex.metrics()[0], "fex_jit_blocks_total", pid=ex_sim.pid)
                check(len(v) == 1, "the exec'ing process is reported throughout")
                if v:
                    check(v[0] >= prev, "blocks across an exec: %s -> %s" % (prev, v[0]))
                    prev = v[0]
                time.sleep(0.02)
            check(prev > 0, "its blocks were counted")
        finally:
            ex_sim.stop()
        late = Sim("-t", "2", "-s", "steady", "--no-mem")
        wait_until(lambda: values(ex.metrics()[0], "fex_threads", pid=late.pid) == [2], 20, "the new process")
        late.stop()
        wait_until(lambda: not values(ex.metrics()[0], "fex_threads", pid=late.pid), 20, "the ended process to leave")
        m, _, _ = ex.metrics()
        check(values(m, "fex_processes") == [len(values(m, "fex_threads"))], "fex_processes counts the reported")
    finally:
        ex.stop()
        churn.stop()
        if late:
            late.stop()


def case_textfile():
    """--textfile writes DIR/felix-exporter.prom atomically (promtool-clean, no
    temporary left), --once exits 0, the loop rewrites it; bad options."""
    sim = Sim("-t", "2", "-s", "steady", "--no-mem")
    d = os.path.join(TMP, "textfile")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "felix-exporter.prom")
    try:
        r = run(EXPORTER + ["--textfile", d, "--once", "--no-memory"])
        check(r.returncode == 0 and r.stderr == b"", "--once: exit %d %r" % (r.returncode, r.stderr))
        check(os.listdir(d) == ["felix-exporter.prom"], "only the file: %s" % os.listdir(d))
        with open(path, "rb") as f:
            body = f.read()
        promtool_clean(body)
        m = parse(body.decode())
        check(values(m, "fex_threads", pid=sim.pid) == [2], "the process in the file")
        p = subprocess.Popen(EXPORTER + ["--textfile", d, "--interval", "200ms", "--no-memory"], stderr=subprocess.PIPE)

        def blocks():
            with open(path, "rb") as f:
                v = values(parse(f.read().decode()), "fex_jit_blocks_total", pid=sim.pid)
            return v[0] if v else 0
        first = blocks()
        wait_until(lambda: blocks() > first, 20, "the file to be rewritten with newer values")
        p.send_signal(signal.SIGTERM)
        check(p.wait(timeout=20) == 0, "the loop exits 0 on SIGTERM")
        check(os.listdir(d) == ["felix-exporter.prom"], "no temporary left: %s" % os.listdir(d))
    finally:
        sim.stop()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    for args, want, what in [(["--bogus"], 2, "unknown option"), (["--once"], 2, "--once without --textfile"),
                             (["--listen", "nowhere"], 2, "bad address"),
                             (["--listen", "127.0.0.1:%d" % busy.getsockname()[1]], 1, "address in use"),
                             (["--dir", os.path.join(TMP, "missing")], 2, "missing --dir"),
                             (["--textfile", path], 2, "--textfile a file"), (["--max-threads", "0"], 2, "--max-threads 0"),
                             (["extra"], 2, "an argument")]:
        r = run(EXPORTER + args, text=True)
        lines = r.stderr.splitlines()
        check(r.returncode == want and len(lines) == 1 and lines[0].startswith("felix-exporter: "),
              "%s: exit %d, want %d, %r" % (what, r.returncode, want, r.stderr))
    busy.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_prometheus():
    """A real Prometheus scrapes felix-exporter every second: rate() over
    felix-sim's steady scenario equals its documented rates within 5% (a time
    share that a loaded machine made run over: what the process really did,
    read from the exporter over the same window, within 5%), a process that
    starts appears and one that ends disappears."""
    need("prometheus")
    work = os.path.join(TMP, "prom")
    os.makedirs(work, exist_ok=True)
    sim = Sim("-t", "3", "-s", "steady", "--no-mem")
    ex = Exporter("--no-memory")
    port = free_port()
    conf = os.path.join(work, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: felix\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % ex.port)
    prom = subprocess.Popen(["prometheus", "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(work, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
    api = "http://127.0.0.1:%d/api/v1/" % port

    def query(q, at=None):
        args = {"query": q} if at is None else {"query": q, "time": "%.3f" % at}
        try:
            with urllib.request.urlopen(api + "query?" + urllib.parse.urlencode(args), timeout=10) as r:
                d = json.load(r)
        except (OSError, ValueError):
            return None
        return d["data"]["result"] if d.get("status") == "success" else None

    def scalar(q, at=None):
        r = query(q, at)
        return float(r[0]["value"][1]) if r else None
    late = None
    try:
        wait_until(lambda: query("up") is not None, 60, "Prometheus to answer")
        wait_until(lambda: scalar('up{job="felix"}') == 1, 30, "the felix target to be up")
        with urllib.request.urlopen(api + "targets", timeout=10) as r:
            t = [x for x in json.load(r)["data"]["activeTargets"] if x["labels"].get("job") == "felix"]
        check(t and t[0]["health"] == "up" and t[0]["lastError"] == "", "target health: %s" % t)
        # Rates over ten seconds of the steady process. The test reads the
        # exporter itself at both ends of the window, for the short timed
        # shares below.
        sel = '{pid="%d"}' % sim.pid
        wait_until(lambda: (scalar("count_over_time(fex_jit_blocks_total%s[30s])" % sel) or 0) >= 2, 60,
                   "Prometheus' first samples")
        small = ("fex_jit_seconds_total", "fex_signal_seconds_total", "fex_cache_read_lock_seconds_total",
                 "fex_cache_write_lock_seconds_total")  # the time counters
        w_a, m_a = time.time(), ex.metrics()[0]
        time.sleep(10)  # the window measured (its length is the point): not a wait for a condition
        w_b, m_b = time.time(), ex.metrics()[0]
        wait_until(lambda: scalar("timestamp(fex_threads%s)" % sel) is not None and
                   scalar("timestamp(fex_threads%s)" % sel) >= w_b + 1, 30, "a scrape after the window")
        span = "%dms" % int((w_b - w_a) * 1000)
        share = sum((k % 10 + 1) * 0.05 for k in (1, 2, 3))
        want = {"fex_jit_blocks_total": 600, "fex_sigbus_total": 60, "fex_smc_total": 6, "fex_softfloat_total": 6000,
                "fex_cache_misses_total": 300, "fex_jit_seconds_total": share, "fex_signal_seconds_total": 0.06,
                "fex_cache_read_lock_seconds_total": 0.03, "fex_cache_write_lock_seconds_total": 0.015}
        for name, rate in want.items():
            got = scalar("rate(%s%s[%s])" % (name, sel, span), w_b)
            close = got is not None and abs(got - rate) <= 0.05 * rate
            check(close or name in small, "rate(%s) = %s, felix-sim's %s" % (name, got, rate))
            if name in small and got is not None and not close:
                # Times are real: felix-sim spins through short blocks (0.05
                # to 0.2 ms) and a preempted spin counts the preemption (as
                # FEX would), so on a loaded or emulated machine a share can
                # run over (test_sim.c's share_ok). Prometheus' rate must then equal
                # what the process really did in the same window, read from
                # the exporter directly, within 5%, and stay near felix-sim's
                # share (a unit or scale error would not).
                a, b = values(m_a, name, pid=sim.pid), values(m_b, name, pid=sim.pid)
                direct = (b[0] - a[0]) / (w_b - w_a) if a and b else None
                print("rate(%s): Prometheus %.5f, direct %.5f, felix-sim %.3f" % (name, got, direct or 0, rate),
                      file=sys.stderr)
                check(direct is not None and abs(got - direct) <= 0.05 * direct,
                      "rate(%s) = %s, the exporter's own %s over the same window" % (name, got, direct))
                check(abs(got - rate) <= 0.35 * rate, "rate(%s) = %s near felix-sim's %s" % (name, got, rate))
        check(scalar("fex_threads%s" % sel) == 3, "fex_threads")
        late = Sim("-t", "2", "-s", "steady", "--no-mem")
        wait_until(lambda: scalar('fex_threads{pid="%d"}' % late.pid) == 2, 30, "the new process in Prometheus")
        sim.stop()
        wait_until(lambda: query("fex_threads%s" % sel) == [], 30, "the ended process to disappear from Prometheus")
        check(scalar('fex_threads{pid="%d"}' % late.pid) == 2, "the other process stays")
        check(scalar('fex_processes') == 1, "fex_processes after the end")
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        ex.stop()
        sim.stop()
        if late:
            late.stop()


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    T.main(CASES, TMP)
