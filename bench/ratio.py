#!/usr/bin/env python3
"""Prints, per scenario, a peer's proxy CPU µs/request and p99 next to a
reference peer's from the same results.tsv (medians over repetitions), and
their ratio: the figure bench/TARGETS.md compares (lower is better).
usage: ratio.py results.tsv PEER REFERENCE"""
import csv
import statistics
import sys
from collections import defaultdict


def main(path, peer, ref):
    vals = defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r.get("mode") != "pinned" or r["scenario"] == "start-failed":
                continue
            for col in ("proxy_us_per_req", "p99_ms", "rps"):
                try:
                    vals[(r["peer"], r["scenario"], col)].append(float(r[col]))
                except (KeyError, ValueError):
                    pass

    def med(p, s, c):
        xs = [x for x in vals.get((p, s, c), []) if x == x]
        return statistics.median(xs) if xs else float("nan")

    scen = sorted({k[1] for k in vals if k[0] == peer})
    print("\n| scenario | %s µs/req | %s µs/req | ratio | %s p99 ms | %s p99 ms |" % (peer, ref, peer, ref))
    print("|---|---|---|---|---|---|")
    for s in scen:
        a, b = med(peer, s, "proxy_us_per_req"), med(ref, s, "proxy_us_per_req")
        ratio = "%.2f" % (a / b) if a == a and b == b and b > 0 else "-"
        print("| %s | %.1f | %.1f | %s | %.2f | %.2f |" % (
            s, a, b, ratio, med(peer, s, "p99_ms"), med(ref, s, "p99_ms")))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
