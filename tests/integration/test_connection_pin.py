"""Requests pipelined or multiplexed on one connection that carry no
persistence yet all go to the server chosen for the first (docs/behaviour.md#persistence), in
every persistence mode: learn only (the server's session cookie arrives after
the followers left), source only, none, and the insert cookie; over HTTP/1.1
pipelining and HTTP/2 streams (issue 16)."""

import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, RawConnection, main, parse_responses)  # noqa: E402
from h2client import H2Client  # noqa: E402
from standin import h2_config  # noqa: E402

MODES = {
    "learn": {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}},
    "source": {"source": {"ttl": "30m"}},
    "none": {},
    "cookie": {"cookie": {"name": "SRV", "mode": "insert"}},
}
N = 10


class ConnectionPinTest(GatewayTestCase):
    def start(self, persistence):
        servers = self.servers("s1", "s2", "s3")
        cfg = h2_config(servers)
        cfg["backends"][0]["persistence"] = persistence
        cfg["backends"][0]["balance"] = "roundrobin"
        return self.gateway(cfg)

    def pipelined(self, gw, listener):
        # A login page: each response sets the app's own session cookie.
        reqs = b"".join(b"GET /setcookie?name=JSESSIONID&value=v%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
                        % (i, b"Connection: close\r\n" if i == N - 1 else b"") for i in range(N))
        with RawConnection(LOCAL, gw.port(listener), tls=(listener == "https"), timeout=10) as c:
            c.send(reqs)
            self.assertTrue(c.wait_closed(10))
            rs = parse_responses(bytes(c.buf))
        self.assertEqual([r.status for r in rs], [200] * N)
        return collections.Counter(r.header("x-server") for r in rs)

    def multiplexed(self, gw):
        c = H2Client(LOCAL, gw.port("https"))
        self.addCleanup(c.close)
        sids = [c.request("GET", "/setcookie?name=JSESSIONID&value=h%d" % i) for i in range(N)]
        sts = c.responses(sids, 20)
        self.assertEqual([st.status for st in sts], [200] * N)
        return collections.Counter(st.header("x-server") for st in sts)

    def test_every_mode_pins_the_first_requests_of_a_connection(self):
        for mode, persistence in MODES.items():
            gw = self.start(persistence)
            for round_ in range(3):
                for how in ("http", "https", "h2"):
                    with self.subTest(mode=mode, how=how, round=round_):
                        seen = self.multiplexed(gw) if how == "h2" else self.pipelined(gw, how)
                        self.assertEqual(len(seen), 1, "first requests of one connection spread "
                                         "over servers: %r\n%s" % (seen, gw.describe()))
            gw.stop()

    def test_separate_connections_still_spread_without_persistence(self):
        gw = self.start({})
        seen = collections.Counter()
        for _ in range(6):
            seen.update(self.pipelined(gw, "http"))
        self.assertGreater(len(seen), 1, "round robin never moved between connections: %r" % seen)


if __name__ == "__main__":
    main()
