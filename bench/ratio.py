#!/usr/bin/env python3
"""Prints, per scenario, a peer's proxy CPU µs/request and latency next to
one or more reference peers' from the same results.tsv (medians over
repetitions), and the ratio to each reference: the figure bench/TARGETS.md
compares (lower is better). Latency is p99, except where the load generator
reports only a mean (h2load, scenario s3): then the mean, marked so.
usage: ratio.py results.tsv PEER REFERENCE [REFERENCE...]
  e.g. ratio.py results.tsv sag haproxy nghttpx"""
import csv
import statistics
import sys
from collections import defaultdict


def load(path):
    vals = defaultdict(list)
    protos = defaultdict(set)
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r.get("mode") != "pinned" or r["scenario"] == "start-failed":
                continue
            for col in ("proxy_us_per_req", "p99_ms", "p50_ms", "rps", "errors"):
                try:
                    vals[(r["peer"], r["scenario"], col)].append(float(r[col]))
                except (KeyError, ValueError):
                    pass
            protos[(r["peer"], r["scenario"])].add(r.get("proto", "?"))
    return vals, protos


def main(path, peer, refs):
    vals, protos = load(path)

    def med(p, s, c):
        xs = [x for x in vals.get((p, s, c), []) if x == x]
        return statistics.median(xs) if xs else float("nan")

    def latency(p, s):
        v = med(p, s, "p99_ms")
        if v == v:
            return "%.2f" % v
        v = med(p, s, "p50_ms")   # h2load: the mean (see tools/parse_client.py)
        return "%.2f (mean)" % v if v == v else "-"

    def num(v):
        return "%.1f" % v if v == v else "-"

    scen = sorted({k[1] for k in vals if k[0] == peer})
    head = ["scenario", "%s µs/req" % peer]
    for ref in refs:
        head += ["%s µs/req" % ref, "ratio to %s" % ref]
    head += ["%s latency ms" % peer] + ["%s latency ms" % ref for ref in refs] + ["%s errors" % peer]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    notes = []
    for s in scen:
        a = med(peer, s, "proxy_us_per_req")
        row = [s, num(a)]
        for ref in refs:
            b = med(ref, s, "proxy_us_per_req")
            row += [num(b), "%.2f" % (a / b) if a == a and b == b and b > 0 else "-"]
        row += [latency(peer, s)] + [latency(ref, s) for ref in refs]
        errs = med(peer, s, "errors")
        row.append("%d" % errs if errs == errs else "-")
        print("| " + " | ".join(row) + " |")
        if s == "s3":
            for p in [peer] + list(refs):
                got = protos.get((p, s), set())
                if got and got != {"h2"}:
                    notes.append("%s negotiated %s in s3, not h2: its s3 figures are not HTTP/2"
                                 % (p, "/".join(sorted(got))))
    for ref in refs:
        if not any(k[0] == ref for k in vals):
            notes.append("no results for %s in this run" % ref)
    for n in notes:
        print("\nnote: " + n)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
