#!/usr/bin/env python3
"""End-to-end tests of felix-report: its figures against felix-csv's, HTML
validity (html5lib, strict), a real browser (headless Chromium), the MangoHud
join, and bad input.

Usage: report_test.py CASE   ($FELIX_REPORT, and tools_test.py's variables)."""
import csv
import html.parser
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import make_mangohud
import tools_test as T
from tools_test import CSV, WRAP, Sim, check, need, record, run

REPORT = WRAP + [os.environ["FELIX_REPORT"]]
TMP = tempfile.mkdtemp(prefix="felix-report-")
TZ = "Europe/Paris"  # local time in MangoHud's file names: the same for the generator and felix-report
os.environ["TZ"] = TZ
time.tzset()

CHARTS = ["chart-load", "chart-heatmap", "chart-rate-blocks", "chart-rate-smc", "chart-rate-sigbus",
          "chart-rate-softfloat", "chart-rate-misses", "chart-rate-locks", "chart-memory"]
TABLES = ["summary", "table-worst", "table-threads", "table-events"]


class Page(html.parser.HTMLParser):
    """Ids, data-* attributes by id, and table rows' attributes."""

    def __init__(self):
        super().__init__()
        self.ids, self.rows, self.table, self.text = {}, {}, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "table":
            self.table = a.get("id")
        if tag == "tr" and self.table and "data-sample" in a or tag == "tr" and "data-tid" in a:
            self.rows.setdefault(self.table, []).append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None

    def handle_data(self, data):
        self.text.append(data)


def page(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    p = Page()
    p.feed(text)
    return p, text


def strict_html(path):
    """A strict HTML5 parse: any parse error fails."""
    try:
        import html5lib
    except ImportError:
        need("python3-html5lib")  # not a program: says it is missing (a failure in CI)
    with open(path, "rb") as f:
        data = f.read()
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    try:
        parser.parse(data)
        return True
    except Exception as e:  # html5lib.html5parser.ParseError
        check(False, "HTML5 parse error in %s: %s" % (path, e))
        return False


def summary(path, *args):
    r = run(CSV + ["--summary", "-f", "jsonl"] + list(args) + [path], text=True)
    check(r.returncode == 0, "felix-csv --summary: %d %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


def make_report(path, *args, want=0):
    out = os.path.join(TMP, "r-%d.html" % len(os.listdir(TMP)))
    r = run(REPORT + [path, "-o", out] + list(args), text=True)
    check(r.returncode == want, "felix-report %s: exit %d (want %d) %r" % (args, r.returncode, want, r.stderr))
    return out, r


SUMMARY_KEYS = {"duration_s": "%.6f", "samples": "%d", "load_mean_pct": "%.3f", "load_peak_pct": "%.3f",
                "jit_s": "%.9f", "signal_s": "%.9f", "cache_rdlock_s": "%.9f", "cache_wrlock_s": "%.9f",
                "jit_count": "%d", "sigbus": "%d", "smc": "%d", "softfloat": "%d", "cache_miss": "%d"}


def agree(out, s):
    """The report's header equals felix-csv --summary's figures, exactly."""
    p, _ = page(out)
    for k, f in SUMMARY_KEYS.items():
        got = p.ids.get("s-" + k, {}).get("data-value")
        check(got == f % s[k], "%s: report %s, felix-csv %s" % (k, got, f % s[k]))
    if s.get("process_rss_peak"):
        check(p.ids.get("s-process_rss_peak", {}).get("data-value") == str(s["process_rss_peak"]), "process_rss_peak")
    tids = [int(r["data-tid"]) for r in p.rows.get("table-threads", [])][:5]
    check(tids == [t["tid"] for t in s["busiest_threads"]], "busiest threads %s vs %s" % (tids, s["busiest_threads"]))
    return p


def case_figures_agree():
    """Every chart and table is there, the HTML is valid, and the header's
    figures equal felix-csv --summary's, for the whole recording and a range."""
    sim = Sim("-t", "4", "-s", "storm")
    path = record(sim, 2.0, "50ms", "--mem-interval", "200ms")
    sim.stop()
    out, r = make_report(path)
    check(r.stderr == "", "nothing on stderr: %r" % r.stderr)
    strict_html(out)
    p = agree(out, summary(path))
    for i in CHARTS + TABLES:
        check(i in p.ids, "element #%s" % i)
    check(os.path.getsize(out) < 2 << 20, "size %d" % os.path.getsize(out))
    check(len(p.rows.get("table-worst", [])) == 20, "20 worst intervals")
    out, r = make_report(path, "--from", "0.5", "--to", "1.5")
    agree(out, summary(path, "--from", "0.5", "--to", "1.5"))
    # Nothing from outside: no URL but the page's own.
    with open(out) as f:
        text = f.read()
    check(not re.search(r"(src|href)=\"(https?:)?//", text) and "@import" not in text and "url(" not in text,
          "self-contained: no external resource")
    # Names of any bytes: still valid HTML and UTF-8, no control character.
    nasty = subprocess.Popen(T.SIM + ["-t", "2", "--no-mem", "--thread-name", T.NASTY, "--fex-version", b'<b>"&\x01\xff'],
                             stdout=subprocess.PIPE)
    npid = int(nasty.stdout.readline())
    npath = os.path.join(TMP, "nasty.felix")
    r = run(T.REC + [str(npid), "-i", "50ms", "-d", "400ms", "-q", "-o", npath])
    nasty.terminate()
    nasty.wait(timeout=20)
    out, r = make_report(npath)
    strict_html(out)
    p, text = page(out)
    check(not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text), "no control character in the report")
    check("<b>" not in text and "&lt;b&gt;" in text, "markup in names is escaped")
    check(any(x.startswith('q"b\\') for x in p.text), "thread names shown, escaped: %r" % [x for x in p.text if "q" in x][:3])
    # One sample: no interval, still a valid report that says so.
    one = os.path.join(TMP, "one.felix")
    r = run(WRAP + [os.environ["FELIX_MAKE_RECORDING"], one, "1", "10", "2"])
    check(r.returncode == 0, "make_recording: %d" % r.returncode)
    out, r = make_report(one)
    strict_html(out)
    check("empty" in page(out)[0].ids, "a one-sample recording says there is no interval")
    # The default output path, beside the recording.
    r = run(REPORT + [path], text=True)
    check(r.returncode == 0 and os.path.exists(path[:-6] + ".html"), "default output %s.html" % path[:-6])


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    need("chromium")


def browse(out, dark=False):
    """Headless Chromium: the DOM after the scripts ran, and a screenshot."""
    exe = chromium()
    prof = tempfile.mkdtemp(prefix="chromium-", dir=TMP)
    base = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + prof,
            "--window-size=1280,800", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    if dark:  # the dark color scheme (Blink's enum: 0 is dark)
        base.append("--blink-settings=preferredColorScheme=0")
    url = "file://" + os.path.abspath(out)
    dom = run(base + ["--dump-dom", url], text=True, timeout=120)
    check(dom.returncode == 0, "chromium --dump-dom: %d %s" % (dom.returncode, dom.stderr[-500:]))
    png = os.path.join(TMP, "shot-%d.png" % len(os.listdir(TMP)))
    shot = run(base + ["--screenshot=" + png, url], text=True, timeout=120)
    check(shot.returncode == 0 and os.path.exists(png), "chromium --screenshot: %d" % shot.returncode)
    logs = dom.stderr + shot.stderr
    bad = [l for l in logs.splitlines() if "CONSOLE" in l and ("rror" in l or "Uncaught" in l)]
    check(not bad, "no console errors: %s" % bad[:3])
    return dom.stdout, png


def pixel_variance(png):
    try:
        from PIL import Image
    except ImportError:
        need("python3-pil")
    im = Image.open(png).convert("L")
    px = list(im.getdata())
    mean = sum(px) / len(px)
    return im.size, sum((v - mean) ** 2 for v in px) / len(px), mean


def case_browser():
    """Headless Chromium opens the report (and one joined with a MangoHud log):
    no console errors, the scripts ran, the charts are there, and the
    screenshots at 1280x800 are not blank, light in the light color scheme
    and dark in the dark one."""
    chromium()
    sim = Sim("-t", "3", "-s", "warmup")
    path = record(sim, 4.0, "100ms", "--mem-interval", "200ms")
    sim.stop()
    rows = [r for r in T.csv_rows(path) if float(r["interval_s"]) > 0]
    log = os.path.join(TMP, "game_2026-01-01_00-00-00.csv")
    make_mangohud.write_log(log, rows, 0.3, [(2.0, 150.0)])
    for args in ([], ["--mangohud", log, "--mangohud-offset", "0.3"]):
        out, r = make_report(path, *args)
        dom, png = browse(out)
        body = re.search(r"<body[^>]*>", dom)
        body = body.group(0) if body else ""
        check('data-ready="1"' in body, "the report's script ran %s: %s" % (args, body))
        check("data-errors" not in body, "no script error %s: %s" % (args, body))
        for i in CHARTS + (["table-frames"] if args else []):
            check('id="%s"' % i in dom, "#%s in the browser's DOM %s" % (i, args))
        size, var, mean = pixel_variance(png)
        check(size == (1280, 800), "screenshot size %s" % (size,))
        check(var > 100, "the screenshot is not blank: variance %.1f" % var)
        check(mean > 170, "light scheme: a light page (mean %.0f)" % mean)
        dom, png = browse(out, dark=True)
        size, var, mean = pixel_variance(png)
        check(var > 100 and mean < 90, "dark scheme: a dark page, not blank (mean %.0f, variance %.0f)" % (mean, var))


def offset_of(stderr):
    m = re.search(r"offset ([+-]\d+\.\d+) s", stderr)
    check(m is not None, "the offset is printed: %r" % stderr)
    return float(m.group(1)) if m else None


def case_mangohud_join():
    """A generated log whose slow frames end at known times of a warmup
    recording: the join finds the offset from the file name off by +-0.9 s,
    puts each slow frame in its sample interval, and the worst-frames table
    names them."""
    sim = Sim("-t", "2", "-s", "warmup")
    path = record(sim, 5.0, "100ms")
    sim.stop()
    rows = [r for r in T.csv_rows(path) if float(r["interval_s"]) > 0]
    check(len(rows) > 40, "rows: %d" % len(rows))
    wall0 = float(rows[0]["unix_time_s"]) - float(rows[0]["time_s"])  # the recording's start
    # Slow frames end in the middle of these intervals (after the warm-up's end, and within it).
    picks = [rows[i] for i in (14, 20, 33, 38, 44)]  # after the log starts (by 1.2 s)
    for err in (0.9, -0.9):
        name_s = math.ceil(wall0 + 0.2 + err)  # the second in the file name: the true start + err
        start = name_s - err - wall0           # the log's true start, 0.2 to 1.2 s into the recording
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(name_s))
        log = os.path.join(TMP, "game_%s.csv" % stamp)
        slow = [(float(r["time_s"]) - float(r["interval_s"]) / 2, 150.0 + 10 * i) for i, r in enumerate(picks)]
        make_mangohud.write_log(log, rows, start, slow)
        out, r = make_report(path, "--mangohud", log)
        off = offset_of(r.stderr)
        check(off is not None and abs(off - start) < 0.03, "offset %s, true %.3f (name off by %+.1f s)" % (off, start, err))
        p, _ = page(out)
        got = [(int(x["data-sample"]), float(x["data-ms"])) for x in p.rows.get("table-frames", [])][:5]
        want = sorted([(int(r["frame"]), 150.0 + 10 * i) for i, r in enumerate(picks)], key=lambda x: -x[1])
        check([g[0] for g in got] == [w[0] for w in want] and all(abs(g[1] - w[1]) < 0.01 for g, w in zip(got, want)),
              "worst frames in their intervals (name off by %+.1f s): %s, want %s" % (err, got, want))
        check("mangohud-note" in p.ids, "the offset is in the report")
    # --mangohud-offset is used as given.
    out, r = make_report(path, "--mangohud", log, "--mangohud-offset", "%.6f" % start)
    check(offset_of(r.stderr) == round(start, 3), "offset as given: %r" % r.stderr)


def case_bad_input():
    """Bad logs, a damaged or unclosed recording, and mistakes with paths:
    one line, the documented status, and a report of what was readable."""
    sim = Sim("-t", "2", "-s", "steady", "--no-mem")
    path = record(sim, 1.0, "50ms")
    sim.stop()
    good = os.path.join(TMP, "good_2026-01-01_00-00-00.csv")
    rows = [r for r in T.csv_rows(path) if float(r["interval_s"]) > 0]
    make_mangohud.write_log(good, rows, 0.1, [])
    with open(good) as f:
        lines = f.read().splitlines(True)

    def log(name, text):
        p = os.path.join(TMP, name)
        with open(p, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        return p
    for name, text, what in [("cols.csv", "v1\n0.7\nfps,frame_time,elapsed\n60,16,1\n", "no frametime column"),
                             ("norows.csv", "".join(lines[:7]), "no rows"), ("empty.csv", "", "an empty file"),
                             ("bin.csv", bytes(range(256)) * 8, "binary garbage")]:
        r = run(REPORT + [path, "-o", os.path.join(TMP, "bad.html"), "--mangohud", log(name, text)], text=True)
        l = r.stderr.splitlines()
        check(r.returncode == 7 and len(l) == 1 and l[0].startswith("felix-report: "), "%s: exit %d %r" % (
            what, r.returncode, r.stderr))
    for dev in ("/dev/zero", TMP):  # never ends; a directory
        r = run(REPORT + [path, "-o", os.path.join(TMP, "bad.html"), "--mangohud", dev], text=True, timeout=30)
        check(r.returncode == 7 and "not a regular file" in r.stderr, "%s as a log: %d %r" % (dev, r.returncode, r.stderr))
    r = run(REPORT + [path, "-o", os.path.join(TMP, "bad.html"), "--mangohud", os.path.join(TMP, "missing.csv")], text=True)
    check(r.returncode == 7 and "missing.csv" in r.stderr, "a missing log: %d %r" % (r.returncode, r.stderr))
    # Garbage rows and a cut last line: skipped, counted, said.
    junk = log("junk_2026-01-01_00-00-00.csv", "".join(lines[:20]) + "garbage,,,\n\x00\xff\n" + "".join(lines[20:])[:-7])
    out, r = make_report(path, "--mangohud", junk)
    check("rows that did not parse were skipped" in r.stderr, "skipped rows said: %r" % r.stderr)
    check("did not parse skipped" in page(out)[1], "skipped rows noted in the report")
    # A name without a date: the documented fallback.
    nodate = log("nodate.csv", "".join(lines))
    out, r = make_report(path, "--mangohud", nodate)
    check("holds no date" in r.stderr and "table-frames" in page(out)[0].ids, "no date: %r" % r.stderr)
    # A recording cut short (never closed) and one damaged in the middle.
    with open(path, "rb") as f:
        data = f.read()
    cut = log("cut.felix", data[: len(data) * 2 // 3])
    out, r = make_report(cut, want=8)
    p, _ = page(out)
    check("damage" in p.ids and len(r.stderr.splitlines()) == 1, "unclosed: a note, one line: %r" % r.stderr)
    broken = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 64):
        broken[i] ^= 0x5A
    bad = log("broken.felix", bytes(broken))
    out, r = make_report(bad, want=7)
    p, _ = page(out)
    check("damage" in p.ids, "damaged: a note in the report")
    strict_html(out)
    check(0 < int(p.ids["s-samples"]["data-value"]) < len(rows) + 1, "the samples before the damage")
    # Paths and options.
    for args, want, what in [([path, "-o", path], 2, "the recording as output"), (["-"], 2, "standard input"),
                             ([path, "--bogus"], 2, "an unknown option"), ([path, "--mangohud-offset", "1"], 2,
                                                                          "--mangohud-offset alone"),
                             ([path, "--from", "2", "--to", "1"], 2, "an empty range"),
                             ([os.path.join(TMP, "none.felix")], 7, "a missing recording"),
                             ([path, "-o", "/dev/shm/fex-1-stats"], 2, "a FEX object as output")]:
        r = run(REPORT + args, text=True)
        l = r.stderr.splitlines()
        check(r.returncode == want and len(l) == 1 and l[0].startswith("felix-report: "), "%s: exit %d %r" % (
            what, r.returncode, r.stderr))
    check(os.path.getsize(path) == len(data), "the recording is untouched")


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    T.main(CASES, TMP)
