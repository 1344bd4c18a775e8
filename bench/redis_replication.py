#!/usr/bin/env python3
"""Replication delay and request latency of `affinity_store: {type: redis}`
(issue 6), with the test harness of tests/support.

    SAG_BIN_DIR=build/bin python3 bench/redis_replication.py [--sessions 1000] [--requests 5000]

1. Replication delay, learn-on-A to visible-on-B: gateways A and B share a
   redis-server; for each of N sessions a client has A learn it (GET
   /setcookie on a keep-alive connection to A), then probes B at once and
   back to back with that session's cookie (keep-alive) until B answers
   from its store. "From its store" is read from B's access log afterwards
   (PERSIST = learn-hit; every probe has its own path), so a probe that the
   balancer happened to send to the right server does not count. The delay
   of a session is from A's response arriving to the sending of B's first
   learn-hit probe, at the resolution of one probe round trip (printed
   too); B usually has the entry before A's response reaches the client (A
   puts it when the server's response head arrives), so the delay from the
   sending of the learn request is printed as well: an upper bound that
   includes A's whole round trip.
2. Request latency with and without Redis: one gateway with `type: memory`,
   one with `type: redis`, same config otherwise, each driven by one
   keep-alive client, in turn: GETs carrying a learned session (a store hit:
   local in both, a refresh written to Redis at most once a minute), and
   GETs that each learn a new session (one Redis write per request).
   Median and p99 in ms, client side (Python client included).

Everything runs on 127.0.0.1 with 1 worker per gateway; figures on a shared
2-core machine are noisy: run it 2-3 times.
"""

import argparse
import os
import re
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))

from client import Http11Client  # noqa: E402
from fake_server import FakeServer  # noqa: E402
from gateway import Gateway, basic_config  # noqa: E402
from redis import RedisServer  # noqa: E402

LEARN = {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}}


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def learn_path(value):
    return "/setcookie?" + urllib.parse.urlencode({"name": "JSESSIONID", "value": value})


def config(servers, store, redis=None):
    section = {"type": store}
    if redis is not None:
        section["redis"] = {"address": redis.address}
    return basic_config(servers, tls=False, persistence=LEARN, workers=1, affinity_store=section,
                        access_log={"path": "-", "format": "text"})


def replication(servers, redis, sessions):
    cfg = config(servers, "redis", redis)
    a, b = Gateway(cfg), Gateway(cfg)
    try:
        ca = Http11Client("127.0.0.1", a.port("http"), timeout=10)
        cb = Http11Client("127.0.0.1", b.port("http"), timeout=10)
        learned_at = {}
        asked_at = {}
        probes = {}      # path -> (session, time sent)
        probe_rtt = []
        for i in range(sessions):
            session = "rep-%05d" % i
            asked = time.perf_counter()
            r = ca.get(learn_path(session))
            assert r.status == 200, r
            learned_at[session] = time.perf_counter()
            asked_at[session] = asked
            owner = r.header("x-server")
            hits = 0
            for n in range(100000):
                path = "/p/%s/%d" % (session, n)
                sent = time.perf_counter()
                rb = cb.get(path, headers=[("Cookie", "JSESSIONID=" + session)])
                probe_rtt.append(time.perf_counter() - sent)
                probes[path] = (session, sent)
                # One worker, round robin over 3 servers: two answers in a
                # row from the owner mean B has the entry (checked in its
                # log below anyway).
                hits = hits + 1 if rb.header("x-server") == owner else 0
                if hits == 2:
                    break
        ca.close()
        cb.close()
        time.sleep(0.5)  # the access log is written by a thread of its own
        first_hit = {}
        pat = re.compile(r' learn-hit \d+ "GET (/p/\S+) ')
        for line in b.log_lines():
            m = pat.search(line)
            if m and m.group(1) in probes:
                session, sent = probes[m.group(1)]
                if session not in first_hit or sent < first_hit[session]:
                    first_hit[session] = sent
        delays = [(first_hit[s] - learned_at[s]) * 1000 for s in learned_at if s in first_hit]
        whole = [(first_hit[s] - asked_at[s]) * 1000 for s in learned_at if s in first_hit]
        missing = len(learned_at) - len(delays)
        return delays, whole, missing, probe_rtt
    finally:
        a.stop()
        b.stop()


def latency(servers, store, redis, requests):
    gw = Gateway(config(servers, store, redis))
    try:
        c = Http11Client("127.0.0.1", gw.port("http"), timeout=10)
        owner_session = "lat-hit"
        c.get(learn_path(owner_session))
        for _ in range(200):  # warm up
            c.get("/", headers=[("Cookie", "JSESSIONID=" + owner_session)])
        hit = []
        for _ in range(requests):
            t = time.perf_counter()
            r = c.get("/", headers=[("Cookie", "JSESSIONID=" + owner_session)])
            hit.append((time.perf_counter() - t) * 1000)
            assert r.status == 200
        new = []
        for i in range(requests // 2):
            t = time.perf_counter()
            r = c.get(learn_path("lat-new-%s-%d" % (store, i)))
            new.append((time.perf_counter() - t) * 1000)
            assert r.status == 200
        c.close()
        return hit, new
    finally:
        gw.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=5000)
    args = ap.parse_args()
    servers = [FakeServer(n) for n in ("s1", "s2", "s3")]
    redis = RedisServer().start()
    try:
        delays, whole, missing, rtt = replication(servers, redis, args.sessions)
        print("Replication delay, learn on A -> learn-hit on B (%d sessions, %d never seen):"
              % (len(delays) + missing, missing))
        print("  from A's response:     median %.2f ms, p99 %.2f ms, max %.2f ms"
              % (statistics.median(delays), pct(delays, 0.99), max(delays)))
        print("  from the learn request: median %.2f ms, p99 %.2f ms, max %.2f ms (upper bound)"
              % (statistics.median(whole), pct(whole, 0.99), max(whole)))
        print("  (probe round trip: median %.2f ms; 0 = B had it at the first probe)"
              % (statistics.median(rtt) * 1000))
        print()
        print("Request latency, one keep-alive client (ms):")
        print("  %-8s %-22s %-22s" % ("store", "GET, store hit", "GET, learns a session"))
        for store in ("memory", "redis"):
            hit, new = latency(servers, store, redis if store == "redis" else None, args.requests)
            print("  %-8s median %.3f p99 %.3f   median %.3f p99 %.3f"
                  % (store, statistics.median(hit), pct(hit, 0.99), statistics.median(new), pct(new, 0.99)))
    finally:
        redis.close()
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
