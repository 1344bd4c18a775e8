#!/usr/bin/env python3
"""Per-request profile from the two runs bench/instructions.sh keeps.

Start-up and shut-down cost the same in the short and the long run, so the
difference of each function's self cost, divided by the difference in
requests, is what one request costs in it.
  SAG_INSTR_KEEP=/tmp/prof bench/instructions.sh s3
  bench/callgrind_diff.py /tmp/prof/callgrind.s3.1000 /tmp/prof/callgrind.s3.6000 [--top 40] [--inclusive]
  ... --event D1mw   # another event of a SAG_INSTR_CACHE run (D1mr, I1mr, Bcm...)
"""
import argparse
import re
import subprocess
import sys


def costs(path, inclusive, event):
    show = [f"--show={event}", f"--sort={event}"] if event else []
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
         *show, path],
        check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?:\*\s+)?(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))
            table[name] = table.get(name, 0) + int(m.group(1).replace(",", ""))
    return table


def requests_of(path):
    m = re.search(r"\.(\d+)$", path)
    if not m:
        sys.exit(f"{path}: the file name ends in its request count (callgrind.s3.6000)")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("short")
    ap.add_argument("long")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--inclusive", action="store_true")
    ap.add_argument("--width", type=int, default=150)
    ap.add_argument("--event", help="an event other than Ir (the first), e.g. D1mw")
    a = ap.parse_args()
    n = requests_of(a.long) - requests_of(a.short)
    s, l = costs(a.short, a.inclusive, a.event), costs(a.long, a.inclusive, a.event)
    rows = sorted(((l.get(k, 0) - s.get(k, 0)) / n, k) for k in set(s) | set(l))
    rows.reverse()
    if not a.inclusive:
        print(f"{sum(r for r, _ in rows):10.1f}  total per request")
    for per, name in rows[:a.top]:
        print(f"{per:10.1f}  {name[:a.width]}")


if __name__ == "__main__":
    main()
