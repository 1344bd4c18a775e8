"""Connection limits (issue 10):

- `limits.max_connections`: a connection over the limit is closed at once,
  counted in gateway_connections_refused_total{listener} and logged on
  stderr, at most one warning a minute per listener;
- the admin listener stays reachable under a flood of idle or slow
  connections: at its limit (64) a new connection replaces the one that has
  waited longest for its request; a request head must be complete within
  5 s, a kept-alive connection may idle 10 s.
"""

import http.client
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, basic_config, wait_until,  # noqa: E402
                     main)
from admin import Admin, value  # noqa: E402

ADMIN = {"bind": "127.0.0.1:0"}
REFUSAL_WARNING = "connection refused: limits.max_connections"


def admin_get(port, path, timeout=2.0):
    """GET on a new connection to the admin listener: (status, seconds taken)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection(LOCAL, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def closed_by_peer(sock, timeout):
    """True when the peer closes `sock` (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class MaxConnectionsTest(GatewayTestCase):
    def test_refusals_are_closed_at_once_counted_and_logged_once(self):
        s1 = self.servers("s1")
        gw = self.gateway(basic_config([s1], admin=ADMIN, limits={"max_connections": 2}))
        port = gw.port("http")
        # Two connections held open, each answered once (so both are counted).
        # The harness's readiness probes (one connection per listener) count
        # against the process-wide limit until the gateway has seen them close.
        probe = Admin(gw)
        self.addCleanup(probe.close)
        self.assertTrue(wait_until(lambda: all(
            value(probe.metrics(), "gateway_connections_active", listener=l) == 0
            for l in ("http", "https"))), "readiness probes still counted")
        held = [Http11Client(LOCAL, port) for _ in range(2)]
        for c in held:
            self.addCleanup(c.close)
            self.assertStatus(c.get("/"), 200, gw)

        extra = []
        for _ in range(5):
            c = socket.create_connection((LOCAL, port), timeout=5)
            self.addCleanup(c.close)
            extra.append(c)
        t0 = time.monotonic()
        for c in extra:
            self.assertTrue(closed_by_peer(c, 2.0), "a connection over the limit was left open")
        self.assertLess(time.monotonic() - t0, 1.0, "refused connections were not closed at once")

        admin = Admin(gw)
        self.addCleanup(admin.close)

        def refused():
            m = admin.metrics()
            n = value(m, "gateway_connections_refused_total", listener="http")
            return m if n == 5 else None

        m = wait_until(refused)
        self.assertTrue(m, admin.get("/metrics").text)
        self.assertEqual(value(m, "gateway_connections_refused_total", listener="https"), 0)
        self.assertEqual(value(m, "gateway_connections_active", listener="http"), 2)
        r = admin.get("/metrics")
        self.assertIn("# TYPE gateway_connections_refused_total counter", r.text)
        self.assertIn("# HELP gateway_connections_refused_total ", r.text)

        # One warning for the five (the others wait a minute), naming the
        # listener and the limit.
        def warnings():
            return [l for l in gw.stderr().splitlines() if REFUSAL_WARNING in l]

        self.assertTrue(wait_until(warnings), gw.describe())
        time.sleep(0.3)
        lines = warnings()
        self.assertEqual(len(lines), 1, gw.describe())
        self.assertIn(" warning ", lines[0])
        self.assertIn("listener 'http'", lines[0])
        self.assertIn("limits.max_connections (2)", lines[0])

        # The held connections still work; once they are gone, new ones are
        # accepted again.
        for c in held:
            self.assertStatus(c.get("/"), 200, gw)
            c.close()

        def accepted():
            try:
                return self.fresh_get(gw, "http", "/", timeout=2).status == 200
            except (OSError, http.client.HTTPException):
                return False

        self.assertTrue(wait_until(accepted), gw.describe())


class AdminFloodTest(GatewayTestCase):
    def setUp(self):
        self.gw = self.gateway(basic_config([self.servers("s1")], admin=ADMIN))
        self.port = self.gw.port("admin")
        self.flood = []
        self.addCleanup(self.close_flood)

    def close_flood(self):
        for c in self.flood:
            c.close()
        self.flood = []

    def open_flood(self, n, half_every=4):
        """n idle connections; every `half_every`-th sends half a request head and stops."""
        for i in range(n):
            c = socket.create_connection((LOCAL, self.port), timeout=5)
            self.flood.append(c)
            if i % half_every == 0:
                c.sendall(b"GET /api/backends HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")

    def assert_answers(self):
        for path in ("/healthz", "/api/backends"):
            status, took = admin_get(self.port, path)
            self.assertEqual(status, 200, path)
            self.assertLess(took, 2.0, path)

    def test_healthz_and_api_answer_under_a_flood(self):
        self.open_flood(250)
        for _ in range(5):
            self.assert_answers()
            self.open_flood(30)   # the flood goes on between probes
            self.assert_answers()
            time.sleep(0.2)
        # The gateway closes every flood connection itself: the oldest at
        # once to make room, the others when their head is 5 s late.
        sel = selectors.DefaultSelector()
        for c in self.flood:
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
        open_ = set(self.flood)
        deadline = time.monotonic() + 8
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    sel.unregister(c)
                    open_.discard(c)
        sel.close()
        self.assertEqual(len(open_), 0, "%d flood connections still open after 8 s" % len(open_))
        self.close_flood()
        self.assert_answers()
        # The evictions are logged, not once per connection.
        lines = [l for l in self.gw.stderr().splitlines() if "admin: 64 connections open" in l]
        self.assertEqual(len(lines), 1, self.gw.describe())

    def test_a_slowloris_head_and_an_idle_keepalive_are_cut(self):
        slow = socket.create_connection((LOCAL, self.port), timeout=5)
        self.flood.append(slow)
        t_slow = time.monotonic()
        idle = socket.create_connection((LOCAL, self.port), timeout=5)
        self.flood.append(idle)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = b""
        while b"\r\n\r\nok\n" not in got:
            chunk = idle.recv(4096)
            self.assertTrue(chunk, "no answer to /healthz")
            got += chunk
        t_idle = time.monotonic()
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got)

        # One byte of a request head every 250 ms: cut 5 s after the accept.
        head = b"GET /api/backends HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100
        slow_closed = None
        slow.setblocking(False)
        for i in range(len(head)):
            try:
                slow.send(head[i:i + 1])
                if slow.recv(1) == b"":
                    slow_closed = time.monotonic() - t_slow
                    break
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                slow_closed = time.monotonic() - t_slow
                break
            time.sleep(0.25)
        self.assertIsNotNone(slow_closed, "a request head trickled for 25 s")
        self.assertGreater(slow_closed, 4.0)
        self.assertLess(slow_closed, 7.0)

        # The kept-alive connection, idle since its answer: closed after 10 s.
        self.assertTrue(closed_by_peer(idle, 12 - (time.monotonic() - t_idle)),
                        "an idle keep-alive admin connection outlived 12 s")
        self.assertGreater(time.monotonic() - t_idle, 9.0)
        self.assert_answers()


if __name__ == "__main__":
    main()
