#!/usr/bin/env python3
"""felix-report: generation time and output size for a 24 h x 32 threads x
1 Hz recording (bench_record's case) and for 1 h x 32 threads x 10 ms, each
next to felix-csv --summary of the same file (the first of the report's two
passes does what the summary does). Goals: <= 2 s and <= 2 MB."""
import os
import subprocess
import sys
import tempfile
import time

TMP = tempfile.mkdtemp(prefix="felix-bench-report-")


def best_of(n, argv):
    best = None
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        dt = time.monotonic() - t0
        best = dt if best is None or dt < best else best
    return best


print("felix-report: time (best of 3) and size; felix-csv --summary of the same file for scale")
print("%-28s %10s %10s %12s %10s" % ("recording", "file MB", "report s", "report MB", "summary s"))
for name, samples, ms in [("24 h x 32 threads x 1 s", 86400, 1000), ("1 h x 32 threads x 10 ms", 360000, 10)]:
    rec = os.path.join(TMP, "r.felix")
    out = os.path.join(TMP, "r.html")
    subprocess.run([os.environ["MAKE_RECORDING"], rec, str(samples), str(ms), "32"], check=True)
    t = best_of(3, [os.environ["FELIX_REPORT"], rec, "-o", out])
    s = best_of(3, [os.environ["FELIX_CSV"], "--summary", rec])
    print("%-28s %10.1f %10.2f %12.2f %10.2f" % (name, os.path.getsize(rec) / 1e6, t, os.path.getsize(out) / 1e6, s))
    os.unlink(rec)
    os.unlink(out)
os.rmdir(TMP)
sys.exit(0)
