#!/usr/bin/env python3
"""The shared library exports only felix_* symbols (and its version nodes)."""
import subprocess
import sys

out = subprocess.run(["nm", "-D", "--defined-only", sys.argv[1]], capture_output=True, text=True, check=True).stdout
syms = [l.split()[-1] for l in out.splitlines() if l.strip()]
bad = [s for s in syms if not s.startswith("felix_") and not s.startswith("LIBFELIX_")]
felix = [s for s in syms if s.startswith("felix_")]
print("%d felix_* symbols exported" % len(felix))
if bad or len(felix) < 50:
    print("unexpected exports:", bad, file=sys.stderr)
    sys.exit(1)
