"""Shutdown (docs/behaviour.md#signals signals), the access log (docs/behaviour.md#access-log) and pipelining (docs/behaviour.md#persistence)."""

import calendar
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, RawConnection, basic_config,  # noqa: E402
                     connect_refused, json_log_time, main, parse_responses, srv_cookie,
                     status_of)

LISTENERS = ("https", "http")

LOG_RE = re.compile(
    r'^(?P<client>\S+):(?P<port>\d+) '
    r'\[(?P<date>\d{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2})'
    r'\.(?P<ms>\d{3})\] '
    r'(?P<listener>\S+) (?P<backend>\S+)/(?P<server>\S+) '
    r'(?P<tq>-?\d+)/(?P<tw>-?\d+)/(?P<tc>-?\d+)/(?P<tr>-?\d+)/(?P<tt>-?\d+) '
    r'(?P<status>\d{3}) (?P<bytes>\d+) '
    r'(?P<persist>cookie-hit|learn-hit|source-hit|new|redispatch|invalid|expired|-) '
    r'(?P<retries>\d+) '
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<proto>HTTP/[0-9.]+)" '
    r'(?P<termination>ok|client-close|client-timeout|bad-request|no-route|redirect|no-server|'
    r'connect-failed|server-timeout|server-close|bad-response|shutdown)$')


def parse_log(lines):
    out = []
    for line in lines:
        m = LOG_RE.match(line)
        if not m:
            raise AssertionError("access log line does not match docs/behaviour.md#access-log: %r" % line)
        out.append(m.groupdict())
    return out


class ShutdownTest(GatewayTestCase):
    def setUp(self):
        self.s1 = self.servers("s1")
        self.gw = self.gateway(basic_config([self.s1], timeouts={"shutdown": "20s"}))

    def test_sigterm_finishes_in_flight_requests_and_refuses_new_connections(self):
        results = {}

        def slow(listener):
            try:
                with Http11Client(LOCAL, self.gw.port(listener), tls=(listener == "https"),
                                  timeout=15) as c:
                    results[listener] = c.get("/slow?ms=2000&l=" + listener)
            except Exception as e:   # reported below
                results[listener] = e

        threads = [threading.Thread(target=slow, args=(l,), daemon=True) for l in LISTENERS]
        for t in threads:
            t.start()
        for l in LISTENERS:
            self.assertIsNotNone(self.s1.wait_for(lambda r, l=l: r.query.get("l") == l, timeout=5),
                                 "the slow request via %s never reached the server" % l)
        t0 = time.monotonic()
        self.gw.send_signal(signal.SIGTERM)
        refused = {}
        while time.monotonic() - t0 < 1.5 and len(refused) < len(LISTENERS):
            for l in LISTENERS:
                if l not in refused and connect_refused(LOCAL, self.gw.port(l), timeout=0.5):
                    refused[l] = time.monotonic() - t0
            time.sleep(0.02)
        self.assertEqual(sorted(refused), sorted(LISTENERS),
                         "listeners still accept after SIGTERM: refused only %r" % refused)
        for l in LISTENERS:
            self.assertLess(refused[l], 1.0, "listener %s closed only after %.2fs" % (l, refused[l]))
        for t in threads:
            t.join(15)
        for l in LISTENERS:
            r = results.get(l)
            self.assertFalse(isinstance(r, Exception) or r is None,
                             "in-flight request via %s failed: %r\n%s" % (l, r, self.gw.describe()))
            self.assertStatus(r, 200, self.gw)
            self.assertEqual(r.body, b"slow done\n")
        rc = self.gw.wait(10)
        self.assertEqual(rc, 0, "exit code after SIGTERM\n" + self.gw.describe())
        self.assertLess(time.monotonic() - t0, 6.0,
                        "exit took far longer than the in-flight request (shutdown timeout is 20s)")

    def test_sigterm_closes_idle_keepalive_connections(self):
        conns = []
        for l in LISTENERS:
            c = RawConnection(LOCAL, self.gw.port(l), tls=(l == "https"), timeout=10)
            self.addCleanup(c.close)
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertStatus(c.read_response(), 200, self.gw)
            conns.append((l, c))
        t0 = time.monotonic()
        self.gw.send_signal(signal.SIGTERM)
        for l, c in conns:
            self.assertTrue(c.wait_closed(5), "idle keep-alive connection via %s not closed" % l)
            self.assertEqual(bytes(c.buf), b"", "unexpected bytes on an idle connection: %r" % c.buf)
        rc = self.gw.wait(10)
        self.assertEqual(rc, 0, self.gw.describe())
        self.assertLess(time.monotonic() - t0, 5.0, "idle connections held up the exit")

    def test_a_connection_accepted_before_sigterm_gets_its_first_request_served(self):
        # A client that connected just before the stop (or before a binary
        # upgrade's old process stopped) sends its request right after: it
        # is answered, not dropped. TLS: the handshake too.
        conns = []
        for l in LISTENERS:
            c = RawConnection(LOCAL, self.gw.port(l), tls=(l == "https"), timeout=10)
            self.addCleanup(c.close)
            conns.append((l, c))
        time.sleep(0.2)   # accepted (and handshaken) by the gateway
        self.gw.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        for l, c in conns:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 200, self.gw)
            self.assertEqual(r.header("connection"), "close", l)
        self.assertEqual(self.gw.wait(10), 0, self.gw.describe())

    def test_sigint_exits_0_too(self):
        self.assertEqual(self.fresh_get(self.gw, "http", "/").status, 200)
        self.assertEqual(self.gw.stop(signal.SIGINT, timeout=10), 0, self.gw.describe())


class AccessLogTest(GatewayTestCase):
    def test_text_access_log(self):
        s1 = self.servers("s1")
        gw = self.gateway(basic_config([s1]))   # access_log absent: stdout, text
        port = gw.port("http")
        expected = []   # (local port or None, listener, status, persist, exact bytes or None, path)

        def raw(data, persist, status=200, path="/"):
            with RawConnection(LOCAL, port, timeout=10) as c:
                local = c.sock.getsockname()[1]
                c.send(data)
                self.assertTrue(c.wait_closed(10))
                got = bytes(c.buf)
            self.assertEqual(status_of(got), status, got[:300])
            expected.append((local, "http", status, persist, len(got), path))
            return got

        first = raw(b"GET /?n=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "new", path="/?n=1")
        value = srv_cookie(parse_responses(first)[0])
        self.assertTrue(value)
        raw(b"GET /?n=2 HTTP/1.1\r\nHost: x\r\nCookie: SRV=%s\r\nConnection: close\r\n\r\n"
            % value.encode(), "cookie-hit", path="/?n=2")
        raw(b"GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\nCookie: SRV=%s\r\nConnection: close\r\n\r\n"
            % value.encode(), "cookie-hit", path="/slow?ms=300")
        with Http11Client(LOCAL, gw.port("https"), tls=True) as c:
            self.assertEqual(c.get("/?n=4").status, 200)
            expected.append((c.local_ports[0], "https", 200, "new", None, "/?n=4"))
        raw(b"GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n", None, status=400)

        lines = gw.wait_log_lines(len(expected), timeout=5)
        self.assertEqual(len(lines), len(expected),
                         "want one line per request on stdout, got:\n%s" % "\n".join(lines))
        entries = parse_log(lines)
        now = time.time()
        for line, e, (local, listener, status, persist, nbytes, path) in zip(lines, entries, expected):
            self.assertEqual(e["client"], "127.0.0.1", line)
            self.assertEqual(int(e["port"]), local, line)
            t = calendar.timegm(time.strptime(e["date"], "%d/%b/%Y:%H:%M:%S"))
            self.assertLess(abs(t - now), 60, "date not now (UTC): " + line)
            self.assertEqual(e["listener"], listener, line)
            self.assertEqual(int(e["status"]), status, line)
            self.assertEqual(e["retries"], "0", line)
            self.assertEqual(e["method"], "GET", line)
            self.assertEqual(e["proto"], "HTTP/1.1", line)
            times = [int(e[k]) for k in ("tq", "tw", "tc", "tr", "tt")]
            for v in times:
                self.assertGreaterEqual(v, -1, line)
            self.assertGreaterEqual(times[4], 0, line)
            if nbytes is not None:
                self.assertEqual(int(e["bytes"]), nbytes,
                                 "BYTES must be what the client received, headers included: " + line)
            self.assertEqual(e["termination"], "ok" if status == 200 else "bad-request", line)
            if status == 200:
                self.assertEqual(e["backend"], "app", line)
                self.assertEqual(e["server"], "s1", line)
                self.assertEqual(e["persist"], persist, line)
                self.assertIn(e["path"], (path, path.split("?")[0]), line)
                self.assertGreaterEqual(times[3], 0, line)
                self.assertGreaterEqual(times[4], times[3], line)
            else:
                self.assertEqual(e["server"], "-", "the gateway answered itself: " + line)
        slow = entries[2]
        self.assertGreaterEqual(int(slow["tr"]), 250, "Tr of a 300 ms response: %r" % slow)
        self.assertGreaterEqual(int(slow["tt"]), 250, "Tt of a 300 ms response: %r" % slow)
        self.assertLess(int(slow["tt"]), 5000)

    def test_json_access_log(self):
        s1 = self.servers("s1")
        gw = self.gateway(basic_config([s1], access_log={"path": "-", "format": "json"}))
        r = self.fresh_get(gw, "http", "/?j=1")
        value = srv_cookie(r)
        self.fresh_get(gw, "https", "/?j=2", [("Cookie", "SRV=" + value)])
        lines = gw.wait_log_lines(2, timeout=5)
        self.assertEqual(len(lines), 2, lines)
        keys = {"time", "client_ip", "client_port", "listener", "backend", "server", "tq", "tw", "tc",
                "tr", "tt", "status", "bytes", "persist", "retries", "method", "path", "protocol",
                "termination"}
        objs = []
        for l in lines:
            try:
                objs.append(json.loads(l))
            except ValueError:
                self.fail("access log line is not one JSON object: %r" % l)
        for o in objs:
            self.assertLessEqual(keys, set(o), "missing keys %r" % (keys - set(o)))
            self.assertEqual(o["client_ip"], "127.0.0.1")
            self.assertEqual(o["backend"], "app")
            self.assertEqual(o["server"], "s1")
            self.assertEqual(int(o["status"]), 200)
            self.assertEqual(o["method"], "GET")
            self.assertRegex(o["time"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
        self.assertEqual([o["listener"] for o in objs], ["http", "https"])
        self.assertEqual([o["persist"] for o in objs], ["new", "cookie-hit"])

        # Later requests of a keep-alive connection: their start time is
        # derived when the line is written (the end less the time taken); it
        # must fall between the test's clock readings around the request.
        with Http11Client(LOCAL, gw.port("http")) as c:
            self.assertEqual(c.get("/?j=3").status, 200)
            before = time.time()
            self.assertEqual(c.get("/slow?ms=300").status, 200)
            after = time.time()
            self.assertEqual(len(c.local_ports), 1, "one keep-alive connection")
        lines = gw.wait_log_lines(4, timeout=5)
        self.assertEqual(len(lines), 4, lines)
        slow = json.loads(lines[3])
        self.assertGreaterEqual(int(slow["tt"]), 250, slow)
        start = json_log_time(slow)
        self.assertGreaterEqual(start, before - 0.05, slow)
        self.assertLessEqual(start + int(slow["tt"]) / 1000.0, after + 0.05, slow)


class PipeliningTest(GatewayTestCase):
    def setUp(self):
        self.s = self.servers("s1", "s2", "s3")
        self.gw = self.gateway(basic_config(self.s))

    def pipeline(self, listener, targets, extra=b""):
        reqs = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n%s%s\r\n"
                        % (t.encode(), extra, b"Connection: close\r\n" if i == len(targets) - 1 else b"")
                        for i, t in enumerate(targets))
        with RawConnection(LOCAL, self.gw.port(listener), tls=(listener == "https"), timeout=10) as c:
            c.send(reqs)   # one write
            self.assertTrue(c.wait_closed(10), "no close after the last pipelined request")
            return parse_responses(bytes(c.buf))

    def test_pipelined_requests_answered_in_order(self):
        targets = ["/slow?ms=300&p=1", "/?p=2", "/?p=3"]
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                rs = self.pipeline(listener, targets)
                self.assertEqual([r.status for r in rs], [200, 200, 200], rs)
                self.assertEqual(rs[0].body, b"slow done\n")
                self.assertTrue(rs[1].body.endswith(b"GET /?p=2\n"), rs[1].body)
                self.assertTrue(rs[2].body.endswith(b"GET /?p=3\n"), rs[2].body)

    def test_pipelined_cookieless_requests_share_a_server_and_cookie(self):
        for listener in LISTENERS:
            for _ in range(3):
                with self.subTest(listener=listener):
                    rs = self.pipeline(listener, ["/?q=1", "/?q=2", "/?q=3"])
                    self.assertEqual(len(rs), 3)
                    self.assertEqual(len({r.header("x-server") for r in rs}), 1,
                                     "pipelined requests split over servers: %r"
                                     % [r.header("x-server") for r in rs])
                    cookies = [srv_cookie(r) for r in rs]
                    self.assertTrue(cookies[0], rs[0].headers)
                    self.assertEqual(len(set(cookies)), 1, "different cookies: %r" % cookies)


if __name__ == "__main__":
    main()
