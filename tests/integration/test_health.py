"""Active health checks (docs/configuration.md `health_check`, §4 usable servers).

Fake servers answer GET /healthz with their `health_status`, which a test
changes at run time. Every request the gateway sends on behalf of a client
carries another path, so a server's non-/healthz requests are exactly the
client traffic it got.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, FakeServer, basic_config, count_servers,  # noqa: E402
                     srv_cookie, wait_until, main)

NAMES = ("s1", "s2", "s3")
INTERVAL = 0.2
RISE = 2
FALL = 2
HEALTH = {"type": "http", "path": "/healthz", "interval": "200ms", "timeout": "200ms",
          "rise": RISE, "fall": FALL}
# Scheduling slack on a loaded machine (two shared cores, Python clients).
SLACK = 0.6


def traffic(server):
    """Client requests the server got (health checks left out)."""
    return [r for r in server.requests if r.path != "/healthz"]


class HealthCheckTest(GatewayTestCase):
    def start(self, servers, **kw):
        return self.gateway(basic_config(servers, tls=False, health_check=dict(HEALTH), **kw))

    def pinned_cookie(self, gw, owner):
        """A SRV cookie value that pins to `owner` (fresh requests until it answers)."""
        for _ in range(12):
            r = self.fresh_get(gw, "http", "/")
            self.assertStatus(r, 200, gw)
            if r.header("x-server") == owner.name:
                return srv_cookie(r)
        self.fail("%s never answered a fresh request\n%s" % (owner.name, gw.describe()))

    def test_checks_use_the_configured_request(self):
        s = self.servers(*NAMES)
        gw = self.start(s)
        req = s[0].wait_for(lambda r: r.path == "/healthz", timeout=3)
        self.assertIsNotNone(req, "no health check reached s1\n" + gw.describe())
        self.assertEqual((req.method, req.target, req.version), ("GET", "/healthz", "HTTP/1.1"))
        self.assertEqual(req.header("host"), s[0].address)
        self.assertEqual(req.header("user-agent"), "sag-health-check")
        self.assertEqual(req.header("connection"), "close")

    def test_failing_server_is_taken_out_and_comes_back(self):
        s = self.servers(*NAMES)
        victim = s[1]
        gw = self.start(s)
        value = self.pinned_cookie(gw, victim)
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])
        self.assertEqual(r.header("x-server"), victim.name)

        # Failing checks: down within fall x interval (+ one interval for the
        # check in progress), then no new client and no pinned one reaches it.
        victim.health_status = 500
        failed_at = time.monotonic()
        redispatched = wait_until(
            lambda: (lambda r: r if r.header("x-server") != victim.name else None)(
                self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])),
            timeout=5, interval=0.02)
        took = time.monotonic() - failed_at
        self.assertTrue(redispatched, "the pinned session never left the failing server\n" + gw.describe())
        self.assertStatus(redispatched, 200, gw)
        self.assertLessEqual(took, (FALL + 1) * INTERVAL * 1.1 + SLACK,
                             "down after %.2fs\n%s" % (took, gw.describe()))
        new_value = srv_cookie(redispatched)
        self.assertIsNotNone(new_value, "a redispatched session gets a new cookie")
        new_owner = redispatched.header("x-server")

        seen_before = len(traffic(victim))
        seen = count_servers(self.fresh_get(gw, "http", "/") for _ in range(12))
        self.assertNotIn(victim.name, seen, "a down server took new clients: %r" % seen)
        self.assertEqual(set(seen), {n for n in NAMES if n != victim.name}, seen)
        for _ in range(3):
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])
            self.assertNotEqual(r.header("x-server"), victim.name)
        self.assertEqual(len(traffic(victim)), seen_before, "client traffic reached a down server")

        # Healthy again: back after `rise` successes, not after one.
        victim.health_status = 200
        healed_at = time.monotonic()

        def victim_answers():
            return any(self.fresh_get(gw, "http", "/").header("x-server") == victim.name
                       for _ in range(len(NAMES)))

        self.assertTrue(wait_until(victim_answers, timeout=5, interval=0.02),
                        "the server never took new clients again\n" + gw.describe())
        took = time.monotonic() - healed_at
        self.assertGreaterEqual(took, (RISE - 1) * INTERVAL * 0.9 - 0.03,
                                "up after %.2fs: one success must not be enough" % took)
        self.assertLessEqual(took, (RISE + 1) * INTERVAL * 1.1 + SLACK, "up after %.2fs" % took)

        # The redispatched session stays where it went (docs/behaviour.md#persistence).
        for _ in range(4):
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + new_value)])
            self.assertEqual(r.header("x-server"), new_owner)

    def test_closed_port_at_start_is_never_chosen(self):
        s1, s2 = self.servers("s1", "s2")
        dead = FakeServer("s3")
        dead.stop()   # its port now refuses connections
        self.addCleanup(dead.stop)
        gw = self.start([s1, s2, dead])
        # The very first request already knows s3 is down: no retry, no error.
        first = self.fresh_get(gw, "http", "/")
        self.assertStatus(first, 200, gw)
        self.assertIn(first.header("x-server"), ("s1", "s2"))
        responses = [self.fresh_get(gw, "http", "/") for _ in range(20)]
        for r in responses:
            self.assertStatus(r, 200, gw)
        seen = count_servers(responses)
        self.assertEqual(set(seen), {"s1", "s2"}, seen)
        # A try on s3 would show as a retry (its port refuses): none may.
        lines = gw.wait_log_lines(21)
        self.assertEqual(len(lines), 21, lines)
        retried = [l for l in lines if l.split('"')[0].split()[-1] != "0"]
        self.assertEqual(retried, [], "s3 was tried")


if __name__ == "__main__":
    main()
